//! rvsd end to end: the demo topology with real kernel stacks on both sides (client and
//! real servers in namespaces, rvsd on af_packet virtual NICs in between). The kernel
//! is the judge: a bad checksum, sequence number or address shows as a failed request.
//! Needs root (namespaces); `scripts/test.sh` builds rvsd first.

use std::time::{Duration, Instant};

use rvs_e2e::checks::{traffic_checks, urls};
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, CLIENT4, CLIENT6, LIP4, LIP6, VIP4, VIP6};

#[test]
fn ipv4_http_through_the_vip() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    traffic_checks(&t, VIP4, CLIENT4, LIP4, rs4);

    // A VIP port without a service: dropped and counted.
    let before = t.rvsd_stats().expect("stats")["drops"]["no_service"].as_u64().unwrap_or(0);
    let (_, ok) = t.curl_many(&[format!("http://{VIP4}:81/")], 2);
    assert!(!ok, "no service on port 81: the request must fail");
    let after = t.rvsd_stats().expect("stats")["drops"]["no_service"].as_u64().expect("no_service counter");
    assert!(after > before, "the dropped SYN is counted as no_service ({before} -> {after})");

    let log = t.stop_rvsd().expect("clean stop");
    assert!(log.contains("rvsd: stopped"), "clean shutdown logs final counters:\n{log}");
}

#[test]
fn ipv6_http_through_the_vip() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    traffic_checks(&t, VIP6, CLIENT6, LIP6, rs6);
}

#[test]
fn large_download_is_bit_exact() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    // The same 100 MB file on every server; the hash of what arrives must match.
    let data_path = t.dir.join("big.bin");
    testnet::sh(&["sh", "-c", &format!("head -c 100M /dev/urandom > {}", data_path.display())]);
    for i in 1..=3 {
        std::fs::copy(&data_path, t.served_dir(i).join("big.bin")).expect("copy");
    }
    let want = testnet::sh(&["sha256sum", &data_path.display().to_string()]);
    let want = want.split_whitespace().next().expect("hash").to_string();
    t.start_rvsd().expect("rvsd starts");
    for vip in [VIP4, VIP6] {
        let host = if vip.contains(':') { format!("[{vip}]") } else { vip.to_string() };
        let out =
            t.client_exec(&["sh", "-c", &format!("curl -sS -g --max-time 120 http://{host}/big.bin | sha256sum")]);
        assert!(out.status.success(), "download through {vip}: {}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string();
        assert_eq!(got, want, "100 MB through {vip} arrives bit-exact");
    }
}

#[test]
fn connections_expire_after_their_timeouts() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    for (k, v) in
        [("established", 3), ("fin_wait", 2), ("time_wait", 2), ("close", 1), ("close_wait", 2), ("last_ack", 2)]
    {
        t.config["timeouts"].as_table_mut().expect("[timeouts]").insert(k.into(), toml::Value::Integer(v));
    }
    t.start_rvsd().expect("rvsd starts");
    let (_, ok) = t.curl_many(&urls(VIP4, 50, ""), 30);
    assert!(ok);
    let live = t.rvsd_stats().expect("stats")["conns"].as_u64().expect("conns");
    assert!(live > 0, "connections are tracked right after the requests");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let live = t.rvsd_stats().expect("stats")["conns"].as_u64().expect("conns");
        if live == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{live} connections still live 20 s after traffic with 2-3 s timeouts");
        std::thread::sleep(Duration::from_millis(500));
    }
    // And the service still works afterwards (ports and pool entries were returned).
    let (_, ok) = t.curl_many(&urls(VIP4, 10, ""), 30);
    assert!(ok);
}
