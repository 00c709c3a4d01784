//! Start-up and exit: a start that cannot succeed (control socket in use, an unknown
//! group, an lcore this host lacks, a missing interface, a port the driver refuses) ends
//! within 2 s with a non-zero status and an error naming the key, and leaves nothing
//! behind (no DPDK runtime directory, no socket); a SIGTERM does the same for a running
//! rvsd; and the control socket keeps answering the operator's tools while 10,000 idle
//! connections are open to it.
//!
//! rvsd runs on a DPDK pcap port reading an empty capture file: no namespace is needed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rvs_e2e::{serial, workspace_bin};
use testnet::{unique, ChildGuard};

/// A start failure must be reported within this.
const FAIL_WITHIN: Duration = Duration::from_secs(2);

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(prefix: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rvs-start-{prefix}"));
        std::fs::create_dir_all(&d).unwrap();
        // An empty capture: the pcap port reads nothing.
        let mut pcap = Vec::new();
        for v in [0xa1b2c3d4u32.to_le_bytes().to_vec(), 2u16.to_le_bytes().to_vec(), 4u16.to_le_bytes().to_vec()] {
            pcap.extend(v);
        }
        for v in [0u32, 0, 65535, 1] {
            pcap.extend(v.to_le_bytes());
        }
        std::fs::write(d.join("in.pcap"), pcap).unwrap();
        Dir(d)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("rvsd.sock")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The DPDK runtime directory of a file prefix (rvsd runs as root in these tests).
fn runtime_dir(prefix: &str) -> PathBuf {
    Path::new("/var/run/dpdk").join(prefix)
}

/// A minimal rvsd: one worker, one pcap port, no services; `extra` is appended
/// (`[control]` is the last table, so keys appended land in it), `edit` rewrites lines.
fn config(dir: &Dir, prefix: &str, edit: &[(&str, &str)], extra: &str) -> PathBuf {
    let mut text = format!(
        r#"
[eal]
args = ["--no-huge", "-m", "256", "--log-level=lib.eal:warning"]
file_prefix = "{prefix}"

[workers]
lcores = [1]
cpus = [1]

[mempool]
mbufs = 4095
cache = 64

[conn]
pool_size = 1024

[[port]]
name = "st0"
vdev = "net_pcap0,rx_pcap={dir}/in.pcap,tx_pcap={dir}/out.pcap"
rss = false
twin = "none"

[control]
socket = "{sock}"
"#,
        dir = dir.0.display(),
        sock = dir.socket().display(),
    );
    for (from, to) in edit {
        assert!(text.contains(from), "{from:?} is not in the config");
        text = text.replace(from, to);
    }
    text.push_str(extra);
    let path = dir.0.join(format!("{prefix}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs rvsd on `cfg` until it exits (killed after 10 s, so a hang fails the test
/// rather than stalling it); returns its status, stderr and how long it ran.
fn run_to_exit(cfg: &Path) -> (ExitStatus, String, Duration) {
    let start = Instant::now();
    let mut child = Command::new(workspace_bin("rvsd"))
        .arg("-c")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rvsd");
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let stderr = reader.join().unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("rvsd still ran after {elapsed:?}: it hangs\n{stderr}"));
    (status, stderr, elapsed)
}

/// Asserts a start failure: within [`FAIL_WITHIN`], non-zero, `key` named in an
/// `rvsd: key: ...` line, no runtime directory left for `prefix`.
fn assert_fails_naming(cfg: &Path, prefix: &str, key: &str) -> String {
    let (status, stderr, took) = run_to_exit(cfg);
    assert!(!status.success(), "rvsd started: {stderr}");
    assert!(took < FAIL_WITHIN, "the failure took {took:?}: {stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with(&format!("rvsd: {key}: "))),
        "no `rvsd: {key}: ...` line in:\n{stderr}"
    );
    assert!(!runtime_dir(prefix).exists(), "{} left behind", runtime_dir(prefix).display());
    stderr
}

/// A running rvsd; SIGTERM and a bounded wait on drop.
struct Running {
    guard: ChildGuard,
    prefix: String,
    log: PathBuf,
}

impl Running {
    fn start(cfg: &Path, prefix: &str, dir: &Dir) -> Running {
        let log = dir.0.join(format!("{prefix}.log"));
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(workspace_bin("rvsd"))
            .arg("-c")
            .arg(cfg)
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start rvsd");
        let mut r = Running { guard: ChildGuard::new(child), prefix: prefix.to_string(), log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(r.guard.running(), "rvsd exited:\n{}", r.log());
            if std::fs::read_to_string(&r.log).unwrap_or_default().contains("rvsd: forwarding") {
                return r;
            }
            assert!(Instant::now() < deadline, "rvsd did not start:\n{}", r.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit; how long it took.
    fn terminate(&mut self) -> Duration {
        let start = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &self.guard.pid().to_string()]).status();
        while self.guard.running() && start.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.guard.running() {
            self.terminate();
        }
        // Never leave a test's runtime directory, whatever rvsd did.
        let _ = std::fs::remove_dir_all(runtime_dir(&self.prefix));
    }
}

fn cli(tool: &str, sock: &Path, args: &[&str]) -> (bool, String, Duration) {
    let start = Instant::now();
    let out = Command::new("timeout")
        .arg("20")
        .arg(workspace_bin(tool))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect(tool);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text, start.elapsed())
}

#[test]
fn sigterm_exit_leaves_nothing_behind() {
    let _g = serial();
    let prefix = unique("rvsst");
    let dir = Dir::new(&prefix);
    let cfg = config(&dir, &prefix, &[], "");
    let mut rvsd = Running::start(&cfg, &prefix, &dir);
    assert!(runtime_dir(&prefix).exists(), "the EAL's runtime directory exists while rvsd runs");
    let took = rvsd.terminate();
    assert!(!rvsd.guard.running(), "rvsd ignores SIGTERM:\n{}", rvsd.log());
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    assert!(rvsd.log().contains("rvsd: stopped"), "{}", rvsd.log());
    assert!(!runtime_dir(&prefix).exists(), "runtime directory left after SIGTERM");
    assert!(!dir.socket().exists(), "control socket left after SIGTERM");
}

#[test]
fn sigterm_during_start_up_leaves_nothing_behind() {
    let _g = serial();
    // At various points of the start: before the handlers (the default action: nothing
    // exists yet), during the EAL's start, while ports come up, as workers launch.
    for delay_ms in [20u64, 150, 300, 500, 800] {
        let prefix = unique("rvsst");
        let dir = Dir::new(&prefix);
        let cfg = config(&dir, &prefix, &[], "");
        let child = Command::new(workspace_bin("rvsd"))
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rvsd");
        let mut guard = ChildGuard::new(child);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = Command::new("kill").args(["-TERM", &guard.pid().to_string()]).status();
        let t = Instant::now();
        while guard.running() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!guard.running(), "SIGTERM {delay_ms} ms into the start: still running");
        assert!(t.elapsed() < Duration::from_secs(3), "SIGTERM {delay_ms} ms into the start took {:?}", t.elapsed());
        let left = runtime_dir(&prefix).exists();
        let _ = std::fs::remove_dir_all(runtime_dir(&prefix));
        assert!(!left, "SIGTERM {delay_ms} ms into the start left the runtime directory");
        assert!(!dir.socket().exists(), "SIGTERM {delay_ms} ms into the start left the socket");
    }
}

#[test]
fn a_socket_in_use_is_refused_and_the_running_rvsd_is_untouched() {
    let _g = serial();
    let first = unique("rvsst");
    let dir = Dir::new(&first);
    let mut rvsd = Running::start(&config(&dir, &first, &[], ""), &first, &dir);

    let second = unique("rvsst");
    let cfg = config(&dir, &second, &[], "");
    let err = assert_fails_naming(&cfg, &second, "control.socket");
    assert!(err.contains("in use by a running rvsd"), "{err}");
    // The same file prefix as the running one: refused too, and its directory kept.
    let cfg = config(&dir, &first, &[], "");
    let (status, _, took) = run_to_exit(&cfg);
    assert!(!status.success() && took < FAIL_WITHIN);
    assert!(runtime_dir(&first).exists(), "the running rvsd's runtime directory was removed");

    // --check-config of the running daemon's file: fine, with warnings.
    let out = Command::new(workspace_bin("rvsd")).arg("--check-config").arg(&cfg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("warning: ") && text.contains("control.socket"), "{text}");

    let (ok, text, _) = cli("rvsadm", &dir.socket(), &["-L", "-n"]);
    assert!(ok, "the running rvsd still answers: {text}");
    rvsd.terminate();
    assert!(!runtime_dir(&first).exists());
}

#[test]
fn an_unknown_group_is_refused_naming_control_group() {
    let _g = serial();
    let prefix = unique("rvsst");
    let dir = Dir::new(&prefix);
    let cfg = config(&dir, &prefix, &[], "group = \"rvs-no-such-group\"\n");
    let err = assert_fails_naming(&cfg, &prefix, "control.group");
    assert!(err.contains("rvs-no-such-group"), "{err}");
    assert!(!dir.socket().exists(), "socket left behind");
}

#[test]
fn an_lcore_this_host_lacks_is_refused_naming_it() {
    let _g = serial();
    let prefix = unique("rvsst");
    let dir = Dir::new(&prefix);
    // Within DPDK's lcores, beyond this host's CPUs.
    let cfg = config(&dir, &prefix, &[("lcores = [1]\ncpus = [1]", "lcores = [1, 100]")], "");
    let err = assert_fails_naming(&cfg, &prefix, "workers.lcores[1]");
    assert!(err.contains("lcore 100"), "{err}");
    // Mapped onto a CPU this host lacks: the CPU's key.
    let cfg = config(&dir, &prefix, &[("cpus = [1]", "cpus = [4000]")], "");
    assert_fails_naming(&cfg, &prefix, "workers.cpus[0]");

    // --check-config refuses it too, unless the file is for another host.
    let cfg = config(&dir, &prefix, &[("lcores = [1]\ncpus = [1]", "lcores = [1, 100]")], "");
    let out = Command::new(workspace_bin("rvsd")).arg("--check-config").arg(&cfg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("workers.lcores[1]: lcore 100"), "{text}");
    let out = Command::new(workspace_bin("rvsd")).arg("--check-config").arg(&cfg).arg("--other-host").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Beyond DPDK's lcores: the file itself is wrong (exit status 2).
    let cfg = config(&dir, &prefix, &[("lcores = [1]\ncpus = [1]", "lcores = [4095]")], "");
    let (status, stderr, took) = run_to_exit(&cfg);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(took < FAIL_WITHIN && stderr.contains("workers.lcores[0]: lcore 4095"), "{stderr}");
    assert!(!runtime_dir(&prefix).exists());
}

#[test]
fn a_missing_interface_is_refused_naming_the_port() {
    let _g = serial();
    let prefix = unique("rvsst");
    let dir = Dir::new(&prefix);
    let vdev = format!("vdev = \"net_pcap0,rx_pcap={0}/in.pcap,tx_pcap={0}/out.pcap\"", dir.0.display());
    let cfg = config(&dir, &prefix, &[(&vdev, "vdev = \"net_af_packet0,iface=nonexistent\"")], "");
    let err = assert_fails_naming(&cfg, &prefix, "port[0].vdev");
    assert!(err.contains("nonexistent"), "{err}");
    // A capture file that is not there.
    let cfg = config(&dir, &prefix, &[("/in.pcap", "/missing.pcap")], "");
    assert_fails_naming(&cfg, &prefix, "port[0].vdev");
}

#[test]
fn a_failure_after_the_eal_started_unwinds_everything() {
    let _g = serial();
    let prefix = unique("rvsst");
    let dir = Dir::new(&prefix);
    // Two workers want two queues; the pcap port has one: the port refuses its
    // configuration after the EAL is up.
    let cfg = config(&dir, &prefix, &[("lcores = [1]\ncpus = [1]", "lcores = [1, 2]\ncpus = [1, 1]")], "");
    let err = assert_fails_naming(&cfg, &prefix, "port[0]");
    assert!(err.contains("configure"), "{err}");
    assert!(!dir.socket().exists(), "socket left behind");
}

/// Open connections to `sock`, each doing nothing.
fn idle_connections(sock: &Path, n: usize) -> Vec<UnixStream> {
    (0..n).map(|i| UnixStream::connect(sock).unwrap_or_else(|e| panic!("connection {i}: {e}"))).collect()
}

/// The threads of process `pid`.
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn ten_thousand_idle_connections_do_not_starve_the_tools() {
    let _g = serial();
    // This process holds 10,000 sockets: its open-file limit goes up to the hard limit.
    let me = std::process::id().to_string();
    let hard = Command::new("prlimit")
        .args(["--pid", &me, "--nofile", "--output", "HARD", "--noheadings"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    if hard != u64::MAX {
        let _ = Command::new("prlimit").args(["--pid", &me, &format!("--nofile={hard}:")]).status();
    }
    // Where the hard limit is lower, as many as it allows (still well past max_clients).
    let n = hard.saturating_sub(300).min(10_000) as usize;
    assert!(n > 2048, "open-file hard limit {hard} is too low for this test");
    let prefix = unique("rvsst");
    let dir = Dir::new(&prefix);
    let cfg = config(&dir, &prefix, &[], "idle_timeout = 4\nio_timeout = 2\n");
    let rvsd = Running::start(&cfg, &prefix, &dir);
    let sock = dir.socket();
    let before = threads(rvsd.guard.pid());

    let start = Instant::now();
    let idle = idle_connections(&sock, n);
    let opened = start.elapsed();
    let after = threads(rvsd.guard.pid());
    assert!(after <= before + 2, "threads grew with the clients: {before} -> {after}");

    for (tool, args) in [("rvsadm", &["-L", "-n"][..]), ("rvsip", &["--json", "stats"][..])] {
        let (ok, text, took) = cli(tool, &sock, args);
        assert!(ok, "{tool} {args:?} with {n} idle connections open: {text}");
        assert!(took < Duration::from_secs(3), "{tool} took {took:?}");
    }
    drop(idle);
    eprintln!("{n} connections opened in {opened:?}; rvsd threads {before} -> {after}");

    // An idle client is closed after idle_timeout.
    let mut quiet = UnixStream::connect(&sock).unwrap();
    quiet.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 256];
    assert_eq!(quiet.read(&mut buf).unwrap_or(0), 0, "the idle client is closed");
    assert!(t.elapsed() >= Duration::from_secs(3), "closed too soon: {:?}", t.elapsed());

    // A half-sent request is answered with an error and closed after io_timeout.
    let mut slow = UnixStream::connect(&sock).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(b"{\"v\":1,\"op\":").unwrap();
    let mut reply = String::new();
    let _ = slow.read_to_string(&mut reply);
    assert!(reply.contains("bad_request") && reply.contains("not complete"), "{reply}");

    // And the operator's tools still work.
    let (ok, text, _) = cli("rvsip", &sock, &["--json", "stats"]);
    assert!(ok, "{text}");
}
