//! rvsd under systemd's service protocol, with a test-owned `NOTIFY_SOCKET`: READY=1
//! once it forwards, WATCHDOG=1 at half of `WATCHDOG_USEC` while every worker makes
//! progress, RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 at SIGTERM; and no
//! WATCHDOG=1 once a worker is stuck (the `worker_stall` failpoint), so systemd would
//! restart it. Logs are journald-friendly under systemd (no timestamps: journald adds
//! them) and JSON with `--log-format json`.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use rvs_e2e::{serial, Spec, Topology};

/// Every datagram that arrives within `wait`, each with its arrival time.
fn collect(sock: &UnixDatagram, wait: Duration) -> Vec<(Instant, String)> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).expect("timeout");
        match sock.recv(&mut buf) {
            Ok(n) => out.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into_owned())),
            // A signal interrupts a receive with a timeout (signal(7)): go on waiting.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    out
}

fn count(msgs: &[(Instant, String)], what: &str) -> usize {
    msgs.iter().filter(|(_, m)| m.lines().any(|l| l == what)).count()
}

fn notify_socket(t: &mut Topology, extra: &[(&str, &str)]) -> UnixDatagram {
    let path = t.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    t.rvsd_env.push(("NOTIFY_SOCKET".into(), path.display().to_string()));
    t.rvsd_env.push(("WATCHDOG_USEC".into(), "400000".into()));
    t.rvsd_env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    sock
}

#[test]
fn ready_watchdog_reload_and_stopping_are_told_to_systemd() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    let sock = notify_socket(&mut t, &[("JOURNAL_STREAM", "8:1234")]);
    t.start_rvsd().expect("rvsd starts");
    let log = t.rvsd_log();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(" rvsd::")).collect();
    assert!(
        !ours.is_empty()
            && ours.iter().all(|l| l.trim_start().starts_with("INFO") || l.trim_start().starts_with("WARN")),
        "no timestamp under journald: {ours:#?}"
    );
    let from = Instant::now();
    let msgs = collect(&sock, Duration::from_secs(2));
    assert_eq!(count(&msgs, "READY=1"), 1, "{msgs:?}");
    // (The pings sent since READY wait in the socket: counted from 0.3 s into the
    // window, the live ones only.)
    let live: Vec<_> = msgs.iter().filter(|(at, _)| *at >= from + Duration::from_millis(300)).cloned().collect();
    let pings = count(&live, "WATCHDOG=1");
    assert!((3..=11).contains(&pings), "WATCHDOG=1 about every 200 ms: {pings} in 1.7 s: {msgs:?}");

    t.signal_rvsd("HUP");
    let msgs = collect(&sock, Duration::from_secs(1));
    let reloading = msgs.iter().position(|(_, m)| m.starts_with("RELOADING=1")).expect("RELOADING=1");
    let ready = msgs.iter().position(|(_, m)| m.starts_with("READY=1")).expect("READY=1 after the reload");
    assert!(reloading < ready, "{msgs:?}");

    let log = t.stop_rvsd().expect("stops");
    let msgs = collect(&sock, Duration::from_millis(300));
    assert_eq!(count(&msgs, "STOPPING=1"), 1, "{msgs:?}\n{log}");
}

#[test]
fn a_stuck_worker_stops_the_watchdog_pings() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    let sock = notify_socket(&mut t, &[("RVS_FAILPOINT", "worker_stall:0:2500"), ("RVS_LOG", "debug")]);
    t.rvsd_args = vec!["--log-format".into(), "json".into()];
    t.start_rvsd().expect("rvsd starts");
    let msgs = collect(&sock, Duration::from_secs(5));
    let pings: Vec<Instant> = msgs.iter().filter(|(_, m)| m == "WATCHDOG=1").map(|(at, _)| *at).collect();
    assert!(pings.len() >= 2, "pings before the stall: {msgs:?}");
    let last = *pings.last().expect("pings");
    let silent = Instant::now().duration_since(last);
    assert!(silent >= Duration::from_millis(1500), "no WATCHDOG=1 for the last {silent:?} of a stuck worker: {msgs:?}");
    let log = t.rvsd_log();
    assert!(log.contains("WATCHDOG=1 withheld"), "the log says why:\n{log}");
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON line: {e}: {l}")))
        .collect();
    // Every line is JSON, DPDK's own (`EAL: ...`, PMD messages) too.
    assert!(events.len() >= 3 && log.lines().all(|l| l.starts_with('{')), "--log-format json: {log}");
    assert!(events.iter().any(|e| e["target"] == "dpdk"), "DPDK's lines through the same log: {log}");
    assert!(events.iter().any(|e| e["level"] == "DEBUG"), "RVS_LOG=debug: {log}");
    let _ = t.stop_rvsd();
}
