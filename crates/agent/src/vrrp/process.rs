//! keepalived's `vrrp_track_process`: how many running processes match, against the
//! block's quorum, with its fork and terminate delays.
//!
//! keepalived follows the kernel's process events (the proc connector); rvs-agent reads
//! `/proc` every [`POLL`] (no netlink connector code, nothing to lose when events
//! overflow), so a process that dies is seen within that time. Matching is keepalived's
//! (`read_procs`, `check_params`): by default a process's name (`/proc/PID/stat`, at most
//! 15 bytes, zombies excluded) equals `process` exactly; with `full_command` or
//! parameters, `argv[0]` (`/proc/PID/cmdline`) equals it and the parameters match per
//! [`ParamMatch`].

use crate::keepalived::config::{ParamMatch, TrackProcess};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often `/proc` is read.
pub const POLL: Duration = Duration::from_millis(500);

/// Whether `p`'s quorum is met now (read at start).
pub fn quorum_met(p: &TrackProcess) -> bool {
    met(p, count(p, Path::new("/proc")))
}

fn met(p: &TrackProcess, n: u32) -> bool {
    n >= p.quorum && n <= p.quorum_max
}

/// Follows `p`, publishing whether its quorum is met; a change counts once it has held
/// for the block's `fork_delay` when more processes run than before (keepalived's fork
/// delay, also when too many run for `quorum_max`) or its `terminate_delay` when fewer
/// do, so that a process restarted in place does not move the priority. (keepalived
/// counts a process freshly started, not forked from a tracked one, at once; here it
/// waits `fork_delay` too.) Ends when every receiver is gone.
pub async fn run(p: TrackProcess, tx: watch::Sender<bool>) {
    let mut since: Option<(Instant, Duration)> = None;
    let mut last = count(&p, Path::new("/proc"));
    loop {
        tokio::time::sleep(POLL).await;
        if tx.is_closed() {
            return;
        }
        let q = p.clone();
        let Ok(n) = tokio::task::spawn_blocking(move || count(&q, Path::new("/proc"))).await else { return };
        let (now_met, grew) = (met(&p, n), n > last);
        last = n;
        if now_met == *tx.borrow() {
            since = None;
            continue;
        }
        let delay = Duration::from_secs_f64(if grew { p.fork_delay } else { p.terminate_delay });
        let (t0, delay) = *since.get_or_insert((Instant::now(), delay));
        if t0.elapsed() >= delay {
            let met = now_met;
            since = None;
            if met {
                tracing::info!(track_process = %p.name, "tracked process: quorum met");
            } else {
                tracing::warn!(track_process = %p.name, "tracked process: quorum lost");
            }
            let _ = tx.send(met);
        }
    }
}

/// How many processes under `proc` (a `/proc`) match `p`.
fn count(p: &TrackProcess, proc: &Path) -> u32 {
    let Ok(dir) = std::fs::read_dir(proc) else { return 0 };
    let pids = dir.filter_map(Result::ok).filter(|e| e.file_name().to_str().is_some_and(is_pid));
    pids.filter(|e| matches(p, &e.path())).count() as u32
}

fn is_pid(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the process whose `/proc` directory is `dir` matches `p` (one that ended
/// meanwhile does not). Of a command line, only what can match is read (as keepalived:
/// a long one is neither copied nor waited for).
fn matches(p: &TrackProcess, dir: &Path) -> bool {
    if p.full_command {
        use std::io::Read;
        let want = p.process.len() + p.params.iter().map(|a| a.len() + 1).sum::<usize>() + 2;
        let mut c = Vec::with_capacity(want);
        let read = std::fs::File::open(dir.join("cmdline")).and_then(|f| f.take(want as u64).read_to_end(&mut c));
        read.is_ok() && cmdline_matches(p, &c)
    } else {
        std::fs::read(dir.join("stat")).is_ok_and(|s| stat_matches(p, &s))
    }
}

/// `/proc/PID/stat`: `PID (COMM) STATE ...`; the name is between the first `(` and the
/// last `)` (it may hold either), and a zombie (`Z`) is not running.
fn stat_matches(p: &TrackProcess, stat: &[u8]) -> bool {
    let (Some(open), Some(close)) = (stat.iter().position(|&b| b == b'('), stat.iter().rposition(|&b| b == b')'))
    else {
        return false;
    };
    let zombie = stat.get(close + 2) == Some(&b'Z');
    open < close && !zombie && &stat[open + 1..close] == p.process.as_bytes()
}

/// `/proc/PID/cmdline` (`argv` NUL-terminated): `argv[0]` is `process`, and the rest
/// against the parameters as keepalived's `check_params` compares them, byte for byte
/// with their terminators.
fn cmdline_matches(p: &TrackProcess, cmdline: &[u8]) -> bool {
    let argv0_end = cmdline.iter().position(|&b| b == 0).unwrap_or(cmdline.len());
    if &cmdline[..argv0_end] != p.process.as_bytes() {
        return false;
    }
    let params = cmdline.get(argv0_end + 1..).unwrap_or_default();
    let want: Vec<u8> = p.params.iter().flat_map(|a| a.bytes().chain([0])).collect();
    match p.param_match {
        ParamMatch::None => true,
        ParamMatch::Exact => params == want.as_slice(),
        ParamMatch::Partial => params.starts_with(&want),
        ParamMatch::Initial => want.is_empty() || params.starts_with(&want[..want.len() - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::diag::Loc;

    fn tracked(process: &str, params: &[&str], param_match: ParamMatch) -> TrackProcess {
        TrackProcess {
            process: process.into(),
            params: params.iter().map(|s| s.to_string()).collect(),
            param_match,
            full_command: !params.is_empty() || param_match != ParamMatch::None,
            ..TrackProcess::new("p".into(), Loc { file: "t".into(), line: 1 })
        }
    }

    /// keepalived's matching, on literal /proc contents.
    #[test]
    fn names_and_command_lines_match_as_keepalived_s() {
        let name = tracked("haproxy", &[], ParamMatch::None);
        assert!(stat_matches(&name, b"812 (haproxy) S 1 812 812 0 -1"));
        assert!(!stat_matches(&name, b"812 (haproxy) Z 1 812 812 0 -1"), "a zombie is not running");
        assert!(!stat_matches(&name, b"813 (haproxy-wrap) S 1"), "exact, not a prefix (not pgrep)");
        // A name holding parentheses: the last ')' ends it (keepalived's start-up scan
        // stops at the first; its event path reads /proc/PID/comm, as here).
        assert!(stat_matches(&tracked("a) (b", &[], ParamMatch::None), b"9 (a) (b) R 1"));
        assert!(!stat_matches(&name, b"garbage"));
        let argv = b"/usr/sbin/haproxy\0-f\0/etc/haproxy/haproxy.cfg\0-p\0/run/haproxy.pid\0";
        let cmd = |params: &[&str], m| cmdline_matches(&tracked("/usr/sbin/haproxy", params, m), argv);
        assert!(cmd(&[], ParamMatch::None));
        assert!(!cmd(&[], ParamMatch::Exact), "param_match alone: no parameters at all");
        assert!(cmd(&["-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/haproxy.pid"], ParamMatch::Exact));
        assert!(!cmd(&["-f", "/etc/haproxy/haproxy.cfg"], ParamMatch::Exact));
        assert!(cmd(&["-f", "/etc/haproxy/haproxy.cfg"], ParamMatch::Partial));
        assert!(!cmd(&["-f", "/etc/haproxy/haproxy"], ParamMatch::Partial), "whole parameters");
        assert!(cmd(&["-f", "/etc/haproxy/haproxy"], ParamMatch::Initial), "the last one a prefix");
        assert!(!cmdline_matches(&tracked("haproxy", &[], ParamMatch::None), argv), "argv[0] exactly");
        assert!(cmdline_matches(&tracked("x", &[], ParamMatch::Exact), b"x\0"));
        assert!(!cmdline_matches(&tracked("x", &[], ParamMatch::None), b""), "a kernel thread");
    }

    /// The real /proc: a process started with unique parameters is counted while it runs.
    #[tokio::test]
    async fn a_process_is_counted_while_it_runs_and_the_delays_hold_changes() {
        let arg = format!("{}.{}", 3000 + std::process::id() % 1000, std::process::id());
        let mut p = tracked("sleep", &[&arg], ParamMatch::Exact);
        assert_eq!(count(&p, Path::new("/proc")), 0);
        let sleep = std::process::Command::new("sleep").arg(&arg).stdout(std::process::Stdio::null()).spawn();
        let child = testnet::ChildGuard::new(sleep.unwrap());
        let t = Instant::now();
        while count(&p, Path::new("/proc")) != 1 {
            assert!(t.elapsed() < Duration::from_secs(2), "the sleep process is not counted");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(quorum_met(&p));
        p.quorum = 2;
        assert!(!quorum_met(&p));
        (p.quorum, p.quorum_max) = (0, 0);
        assert!(!quorum_met(&p), "quorum_max 0: must not run");
        (p.quorum, p.quorum_max, p.terminate_delay) = (1, u32::MAX, 1.0);
        let (tx, mut rx) = watch::channel(true);
        let task = tokio::spawn(run(p, tx));
        drop(child); // killed and reaped
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert!(!*rx.borrow());
        assert!(t.elapsed() >= Duration::from_secs(1), "terminate_delay holds the loss: {:?}", t.elapsed());
        task.abort();
    }
}
