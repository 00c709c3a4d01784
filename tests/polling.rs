//! Adaptive polling (`[workers] polling = "adaptive"`): an idle rvsd gives its CPU back,
//! and still forwards everything when traffic comes; busy polling (the default) keeps
//! its core. Measured in one run on the demo topology: rvsd's CPU share while idle, and
//! the round-trip time of pings to the VIP (answered by the worker itself) in both modes.
//! The CPU share is asserted loosely (a sleeping worker against a spinning one); the
//! latencies are printed, not asserted (timings on this machine are noisy).

use std::time::Duration;

use rvs_e2e::checks::spread_checks;
use rvs_e2e::{rs4, serial, Spec, Topology, LIP4, VIP4};

/// rvsd's CPU share (cores) over `secs` seconds of idleness.
fn idle_share(t: &Topology, secs: f64) -> f64 {
    std::thread::sleep(Duration::from_millis(500));
    let a = t.rvsd_cpu_secs().expect("rvsd cpu");
    std::thread::sleep(Duration::from_secs_f64(secs));
    let b = t.rvsd_cpu_secs().expect("rvsd cpu");
    (b - a) / secs
}

/// The average RTT of 20 pings to the VIP, 100 ms apart (the worker is idle between
/// them), in ms.
fn ping_rtt_ms(t: &Topology) -> f64 {
    let out = t.client_exec(&["ping", "-n", "-q", "-c", "20", "-i", "0.1", VIP4]);
    let text = String::from_utf8_lossy(&out.stdout);
    // rtt min/avg/max/mdev = 0.043/0.061/0.090/0.011 ms
    let line = text.lines().find(|l| l.contains("min/avg/max")).unwrap_or_else(|| panic!("ping: {text}"));
    line.split('=').nth(1).and_then(|v| v.trim().split('/').nth(1)).and_then(|v| v.parse().ok()).expect("avg rtt")
}

#[test]
fn adaptive_polling_sleeps_when_idle_and_forwards_under_load() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts (busy polling)");
    let busy_cpu = idle_share(&t, 2.0);
    let busy_rtt = ping_rtt_ms(&t);
    t.stop_rvsd().expect("rvsd stops");

    let workers = t.config["workers"].as_table_mut().expect("[workers]");
    workers.insert("polling".into(), toml::Value::String("adaptive".into()));
    workers.insert("max_sleep_us".into(), toml::Value::Integer(500));
    t.start_rvsd().expect("rvsd starts (adaptive polling)");
    let adaptive_cpu = idle_share(&t, 2.0);
    let adaptive_rtt = ping_rtt_ms(&t);
    eprintln!(
        "idle CPU share: busy {busy_cpu:.2} cores, adaptive {adaptive_cpu:.2}; ping RTT to the VIP: busy {busy_rtt:.3} \
         ms, adaptive {adaptive_rtt:.3} ms"
    );
    assert!(busy_cpu > 0.5, "a busy-polling worker keeps its core while idle: {busy_cpu:.2}");
    assert!(adaptive_cpu < 0.25, "an adaptive worker sleeps while idle: {adaptive_cpu:.2} cores");
    // Under load it forwards everything: the demo's 600 requests spread 3:2:1.
    spread_checks(&t, VIP4, 80, LIP4, rs4);
    let stats = t.rvsd_stats().expect("stats");
    assert!(stats["net"]["idle_sleeps"].as_u64().unwrap_or(0) > 0, "idle sleeps counted: {}", stats["net"]);
}
