//! Bonding: dpdk0 is an active-backup bond of two slaves on the client's segment.
//! Downing the active slave's link during a long download through the VIP moves the
//! traffic to the other slave, and the download completes bit-exact.
//!
//! The slaves are tap ports, not af_packet: DPDK 22.11's af_packet driver reports its
//! link up whatever its interface does, so a bond of af_packet slaves never fails over;
//! the tap driver reports its interface's state. The tap interfaces carry the bond's
//! MAC, so a Linux bridge would keep frames for it; they are wired to the client's
//! veth as a hub with nftables (`dup`/`fwd` at netdev ingress): both slaves receive
//! everything, as on a switch before it learns, and the bond takes frames from the
//! active slave only. The tap driver announces link interrupts the bonding driver then
//! relies on, but they do not arrive here; rvsd's control thread watches active-backup
//! bonds itself and moves the primary when its link goes down.
//!
//! Round-robin (mode 0) and balance-xor (mode 2) bonds face a static link aggregation:
//! the "switch" (nftables again) sends each frame from the client to one slave in turn,
//! and both slaves' frames to the client. What each slave sent is read from its tap
//! interface's kernel counters.

use std::time::{Duration, Instant};

use rvs_e2e::checks::spread_checks;
use rvs_e2e::{rs4, serial, Spec, Topology, LIP4, VIP4};

/// The demo with `dpdk0` a bond of two tap slaves (`bs0`, `bs1`) described by `bond`,
/// wired to the client's veth by the nftables ruleset `wire`; rvsd started, the VIP
/// answering. Returns the topology and the SHA-256 of the 100 MB file it serves.
fn bonded(bond: toml::Table, wire: &str) -> (Topology, String) {
    let mut t = Topology::build(Spec::default()).expect("topology");
    let want = t.serve_big_file().expect("big.bin");
    let mut port = toml::toml! { name = "dpdk0" promiscuous = true };
    port.insert("bond".into(), toml::Value::Table(bond));
    t.config["port"].as_array_mut().expect("ports")[0] = toml::Value::Table(port);
    t.start_rvsd_bare().expect("rvsd starts with a bond");
    for cmd in [vec!["nft", "delete", "chain", "netdev", "rvs_nic", "lb0"], vec!["nft", wire]] {
        let out = t.lb.exec(&cmd);
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !t.ping(VIP4, 1) {
        assert!(Instant::now() < deadline, "the VIP answers through the bond");
    }
    (t, want)
}

/// Frames slave `dev` sent (its tap interface received them from DPDK).
fn sent_by(t: &Topology, dev: &str) -> u64 {
    let out = t.lb.exec(&["cat", &format!("/sys/class/net/{dev}/statistics/rx_packets")]);
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a counter")
}

/// A static aggregation: each frame from the client to one slave in turn.
const LAG: &str = "table netdev bondwire { \
    chain client { type filter hook ingress device \"rvsdemo-lb0\" priority 0; \
        fwd to numgen inc mod 2 map { 0 : \"bs0\", 1 : \"bs1\" }; }; \
    chain s0 { type filter hook ingress device \"bs0\" priority 0; fwd to \"rvsdemo-lb0\"; }; \
    chain s1 { type filter hook ingress device \"bs1\" priority 0; fwd to \"rvsdemo-lb0\"; }; }";

#[test]
fn round_robin_bond_carries_a_download_over_both_slaves() {
    let _g = serial();
    let bond = toml::toml! { mode = "round-robin" slaves = ["net_tap_bs0,iface=bs0", "net_tap_bs1,iface=bs1"] };
    let (t, want) = bonded(bond, LAG);
    let links = t.cli_ok("rvsip", &["link", "show", "dpdk0"]);
    assert!(links.contains("bond mode round-robin slaves: net_tap_bs0 (active,up) net_tap_bs1 (active,up)"), "{links}");
    let (a, b) = (sent_by(&t, "bs0"), sent_by(&t, "bs1"));
    let got = t.download_sha(&format!("http://{VIP4}/big.bin"), 120).expect("download");
    assert_eq!(got, want, "100 MB through a round-robin bond, bit-exact");
    let (a, b) = (sent_by(&t, "bs0") - a, sent_by(&t, "bs1") - b);
    assert!(a > 30_000 && b > 30_000, "each slave sent its turn: bs0 {a}, bs1 {b}");
    assert!(a.abs_diff(b) * 10 < a + b, "in turn: bs0 {a}, bs1 {b}");
}

#[test]
fn balance_xor_bond_spreads_flows_by_the_layer34_policy() {
    let _g = serial();
    let bond = toml::toml! {
        mode = "balance-xor"
        slaves = ["net_tap_bs0,iface=bs0", "net_tap_bs1,iface=bs1"]
        xmit_policy = "layer3+4"
    };
    let (t, want) = bonded(bond, LAG);
    let links = t.cli_ok("rvsip", &["link", "show", "dpdk0"]);
    assert!(links.contains("bond mode balance-xor xmit layer3+4 slaves:"), "{links}");
    // 600 connections from one client (one MAC: layer2 would put them all on one
    // slave): by ports, both slaves carry some.
    let (a, b) = (sent_by(&t, "bs0"), sent_by(&t, "bs1"));
    spread_checks(&t, VIP4, 80, LIP4, rs4);
    let (a, b) = (sent_by(&t, "bs0") - a, sent_by(&t, "bs1") - b);
    assert!(a > 500 && b > 500, "flows spread over both slaves: bs0 {a}, bs1 {b}");
    let got = t.download_sha(&format!("http://{VIP4}/big.bin"), 120).expect("download");
    assert_eq!(got, want, "100 MB through a balance-xor bond, bit-exact");
}

/// A hub: every frame from the client to both slaves (the bond takes the active one's).
const HUB: &str = "table netdev bondwire { \
    chain client { type filter hook ingress device \"rvsdemo-lb0\" priority 0; dup to \"bs0\"; fwd to \"bs1\"; }; \
    chain s0 { type filter hook ingress device \"bs0\" priority 0; fwd to \"rvsdemo-lb0\"; }; \
    chain s1 { type filter hook ingress device \"bs1\" priority 0; fwd to \"rvsdemo-lb0\"; }; }";

#[test]
fn active_backup_bond_fails_over_during_a_download() {
    let _g = serial();
    let bond = toml::toml! {
        mode = "active-backup"
        slaves = ["net_tap_bs0,iface=bs0", "net_tap_bs1,iface=bs1"]
        primary = 0
        monitor_ms = 20
    };
    let (t, want) = bonded(bond, HUB);
    let links = t.cli_ok("rvsip", &["link", "show", "dpdk0"]);
    assert!(
        links.contains("bond mode active-backup slaves: net_tap_bs0 (active,up,primary) net_tap_bs1 (backup,up)"),
        "{links}"
    );

    // A long download (rate-limited so the failover lands in its middle).
    let client = t.client.name().to_string();
    let dl = std::thread::spawn(move || {
        let cmd = format!("curl -sS --max-time 90 --limit-rate 20M http://{VIP4}/big.bin | sha256sum");
        std::process::Command::new("ip").args(["netns", "exec", &client, "sh", "-c", &cmd]).output().expect("curl")
    });
    std::thread::sleep(Duration::from_millis(1500));
    t.lb.ip(&["link", "set", "bs0", "down"]);
    let out = dl.join().expect("download thread");
    let got = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string();
    assert_eq!(got, want, "the download survives the failover bit-exact: {}", String::from_utf8_lossy(&out.stderr));

    let links = t.cli_ok("rvsip", &["link", "show", "dpdk0"]);
    assert!(
        links.contains("net_tap_bs0 (backup,down) net_tap_bs1 (active,up,primary)"),
        "traffic moved to bs1:\n{links}"
    );
    assert!(t.ping(VIP4, 1), "and the VIP still answers");
}
