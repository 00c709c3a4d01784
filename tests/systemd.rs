//! rvsd under systemd's service protocol, with a test-owned `NOTIFY_SOCKET`: READY=1
//! once it forwards, WATCHDOG=1 at half of `WATCHDOG_USEC` while every worker makes
//! progress, RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 at SIGTERM; and no
//! WATCHDOG=1 once a worker is stuck (the `worker_stall` failpoint), so systemd would
//! restart it.

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
    let sock = notify_socket(&mut t, &[]);
    t.start_rvsd().expect("rvsd starts");
    let msgs = collect(&sock, Duration::from_secs(2));
    assert_eq!(count(&msgs, "READY=1"), 1, "{msgs:?}");
    let pings = count(&msgs, "WATCHDOG=1");
    assert!((3..=12).contains(&pings), "WATCHDOG=1 about every 200 ms: {pings} in 2 s: {msgs:?}");

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
    let sock = notify_socket(&mut t, &[("RVS_FAILPOINT", "worker_stall:0:2500")]);
    t.start_rvsd().expect("rvsd starts");
    let msgs = collect(&sock, Duration::from_secs(5));
    let pings: Vec<Instant> = msgs.iter().filter(|(_, m)| m == "WATCHDOG=1").map(|(at, _)| *at).collect();
    assert!(pings.len() >= 2, "pings before the stall: {msgs:?}");
    let last = *pings.last().expect("pings");
    let silent = Instant::now().duration_since(last);
    assert!(silent >= Duration::from_millis(1500), "no WATCHDOG=1 for the last {silent:?} of a stuck worker: {msgs:?}");
    assert!(t.rvsd_log().contains("WATCHDOG=1 withheld"), "the log says why:\n{}", t.rvsd_log());
    let _ = t.stop_rvsd();
}
