//! 802.1Q VLAN sub-interfaces end to end: the demo topology with its whole client side
//! on VLAN 100. The client's kernel stack is untagged behind a userspace switch
//! (`rvs_e2e::vlan::VlanShim`: the test kernel has no `8021q`), whose trunk is the wire
//! to rvsd's `dpdk0`; rvsd holds the client-side addresses and VIPs on `dpdk0.100`
//! (`[[vlan]]`). Every frame between the client and rvsd is tagged. A SIGHUP after a
//! file's VLAN was removed at run time is refused.

use rvs_e2e::checks::spread_checks;
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, CLIENT4, LIP4, LIP6, VIP4, VIP6};

#[test]
fn a_tagged_client_side_through_a_vlan_sub_interface() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let (shim, _shim_ns) = t.client_on_vlan(100).expect("the client on VLAN 100");
    // The client side's addresses and VIPs move to dpdk0.100.
    t.config
        .insert("vlan".into(), toml::Value::Array(vec![toml::Value::Table(toml::toml! { link = "dpdk0" id = 100 })]));
    for a in t.config["addr"].as_array_mut().expect("[[addr]]") {
        if a["dev"].as_str() == Some("dpdk0") {
            a["dev"] = toml::Value::String("dpdk0.100".into());
        }
    }
    let want = t.serve_big_file().expect("big.bin");
    t.start_rvsd().expect("rvsd starts");

    assert_eq!(t.cli_ok("rvsip", &["vlan", "show"]), "dpdk0.100 link dpdk0 proto 802.1q id 100\n");
    let addrs = t.cli_ok("rvsip", &["addr", "show", "dev", "dpdk0.100"]);
    assert!(addrs.contains(VIP4) && addrs.contains(VIP6), "the VIPs are on dpdk0.100:\n{addrs}");
    let twin = t.lb.exec(&["ip", "link", "show", "dpdk0.100.kni"]);
    assert!(twin.status.success(), "the VLAN's kernel twin exists: {}", String::from_utf8_lossy(&twin.stderr));

    spread_checks(&t, VIP4, 80, LIP4, rs4);
    spread_checks(&t, VIP6, 80, LIP6, rs6);
    let got = t.download_sha(&format!("http://{VIP4}/big.bin"), 120).expect("download");
    assert_eq!(got, want, "100 MB over VLAN 100 arrives bit-exact");

    let stats = t.rvsd_stats().expect("stats");
    let n = |k: &str| stats["net"][k].as_u64().unwrap_or(0);
    let s = shim.stats();
    // The client sends requests and acknowledgments (thousands), rvsd 100 MB (70,000+
    // frames): all of it tagged on the trunk.
    assert!(n("vlan_rx") > 5_000 && n("vlan_tx") > 70_000, "rvsd untagged and tagged: {}", stats["net"]);
    assert!(s.tagged > 5_000 && s.untagged > 70_000, "every frame crossed the trunk tagged: {s:?}");
    // Untagged on the trunk: only what the port's own twin's kernel sends (IPv6 router
    // solicitations, MLD), which the shim drops.
    assert!(s.dropped <= n("twin_down"), "nothing else on the trunk was untagged: {s:?}, {}", stats["net"]);

    // dpip's verbs while rvsd runs: a VLAN in use cannot go; another comes and goes.
    let (_, err, ok) = t.cli("rvsip", &["vlan", "del", "dpdk0.100"]);
    assert!(!ok && err.contains("in use") && err.contains(&format!("address {VIP4}/32")), "{err}");
    let (_, err, ok) = t.cli("rvsip", &["vlan", "add", "link", "dpdk0", "id", "100"]);
    assert!(!ok && err.contains("exists"), "{err}");
    let (_, err, ok) = t.cli("rvsip", &["vlan", "add", "link", "dpdk0", "proto", "802.1ad", "id", "5"]);
    assert!(!ok && err.contains("802.1ad"), "{err}");
    t.cli_ok("rvsip", &["vlan", "add", "link", "dpdk0", "id", "200"]);
    assert_eq!(
        t.cli_ok("rvsip", &["vlan", "show", "link", "dpdk0"]),
        "dpdk0.100 link dpdk0 proto 802.1q id 100\ndpdk0.200 link dpdk0 proto 802.1q id 200\n"
    );
    assert!(t.lb.exec(&["ip", "link", "show", "dpdk0.200.kni"]).status.success(), "its twin came");
    t.cli_ok("rvsip", &["addr", "add", "198.18.200.1/24", "dev", "dpdk0.200"]);
    t.cli_ok("rvsip", &["addr", "del", "198.18.200.1", "dev", "dpdk0.200"]);
    t.cli_ok("rvsip", &["vlan", "del", "link", "dpdk0", "id", "200"]);
    assert_eq!(t.cli_ok("rvsip", &["vlan", "show"]), "dpdk0.100 link dpdk0 proto 802.1q id 100\n");
    assert!(!t.lb.exec(&["ip", "link", "show", "dpdk0.200.kni"]).status.success(), "its twin went");
    let (_, err, ok) = t.cli("rvsip", &["addr", "add", "198.18.200.1/24", "dev", "dpdk0.200"]);
    assert!(!ok && err.contains("no port"), "{err}");
    // The client still gets through after the changes.
    assert!(t.ping(VIP4, 2), "ping {VIP4} from {CLIENT4} over VLAN 100");
    drop(t);
}

/// A `[[vlan]]` of the file removed while rvsd runs (`rvsip vlan del`) keeps its port
/// number, empty: a SIGHUP with the file unchanged would put the file's addresses for
/// it on no port. The reload is refused, naming the VLAN and its address, and nothing
/// changes; a removed VLAN the file puts nothing on stands in no reload's way.
#[test]
fn a_sighup_after_a_files_vlan_was_removed_changes_nothing() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let vlans = [toml::toml! { link = "dpdk0" id = 300 }, toml::toml! { link = "dpdk0" id = 301 }];
    t.config.insert("vlan".into(), toml::Value::Array(vlans.into_iter().map(toml::Value::Table).collect()));
    t.config["addr"].as_array_mut().expect("[[addr]]").push(toml::Value::Table(toml::toml! {
        dev = "dpdk0.300"
        addr = "198.18.30.1/24"
    }));
    t.start_rvsd().expect("rvsd starts");
    let hup = |t: &Topology, n: usize| {
        t.signal_rvsd("HUP");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while t.rvsd_log().matches("SIGHUP:").count() < n {
            assert!(std::time::Instant::now() < deadline, "the SIGHUP is handled:\n{}", t.rvsd_log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    t.cli_ok("rvsip", &["vlan", "del", "dpdk0.301"]);
    hup(&t, 1);
    assert!(t.rvsd_log().contains("applied"), "the unused VLAN's removal is no obstacle:\n{}", t.rvsd_log());

    assert!(t.cli_ok("rvsip", &["addr", "show", "dev", "dpdk0.300"]).contains("198.18.30.1"));
    t.cli_ok("rvsip", &["addr", "del", "198.18.30.1", "dev", "dpdk0.300"]);
    t.cli_ok("rvsip", &["vlan", "del", "dpdk0.300"]);
    hup(&t, 2);
    let log = t.rvsd_log();
    assert!(
        log.contains("[[vlan]] dpdk0.300 was removed while rvsd ran")
            && log.contains("address 198.18.30.1/24")
            && log.contains("nothing changed"),
        "refused by name:\n{log}"
    );
    let addrs = t.cli_ok("rvsip", &["addr", "show"]);
    assert!(!addrs.contains("198.18.30.1"), "the removed VLAN's address is on no port:\n{addrs}");
    assert_eq!(t.cli_ok("rvsip", &["vlan", "show"]), "", "and the VLANs stay removed");
    assert!(t.ping(VIP4, 1), "rvsd runs on");
}
