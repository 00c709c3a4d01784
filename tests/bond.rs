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

use std::time::{Duration, Instant};

use rvs_e2e::{serial, Spec, Topology, VIP4};

#[test]
fn active_backup_bond_fails_over_during_a_download() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let data = t.dir.join("big.bin");
    testnet::sh(&["sh", "-c", &format!("head -c 100M /dev/urandom > {}", data.display())]);
    for i in 1..=3 {
        std::fs::copy(&data, t.served_dir(i).join("big.bin")).expect("copy");
    }
    let want = testnet::sh(&["sha256sum", &data.display().to_string()]).split_whitespace().next().unwrap().to_string();

    let bond = toml::toml! {
        name = "dpdk0"
        promiscuous = true
        bond = { mode = "active-backup", slaves = ["net_tap_bs0,iface=bs0", "net_tap_bs1,iface=bs1"], primary = 0, monitor_ms = 20 }
    };
    t.config["port"].as_array_mut().expect("ports")[0] = toml::Value::Table(bond);
    t.start_rvsd_bare().expect("rvsd starts with a bond");

    // The client's veth and the two slaves as a hub.
    let hub = "table netdev bondwire { \
        chain client { type filter hook ingress device \"rvsdemo-lb0\" priority 0; dup to \"bs0\"; fwd to \"bs1\"; }; \
        chain s0 { type filter hook ingress device \"bs0\" priority 0; fwd to \"rvsdemo-lb0\"; }; \
        chain s1 { type filter hook ingress device \"bs1\" priority 0; fwd to \"rvsdemo-lb0\"; }; }";
    for cmd in [vec!["nft", "delete", "chain", "netdev", "rvs_nic", "lb0"], vec!["nft", hub]] {
        let out = t.lb.exec(&cmd);
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !t.ping(VIP4, 1) {
        assert!(Instant::now() < deadline, "the VIP answers through the bond");
    }
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
