//! rvsadm and rvsip end to end: the whole demo configuration built at run time with the
//! two tools alone, then the dataplane's traffic checks; save, clear and restore.

use rvs_e2e::checks::traffic_checks;
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, CLIENT4, CLIENT6, LIP4, LIP6, VIP4, VIP6};

/// The demo configuration without addresses and services: rvsd starts bare.
fn bare() -> Topology {
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.config.remove("addr");
    t.config.remove("service");
    t.start_rvsd_bare().expect("rvsd starts without services");
    t
}

fn configure_with_cli(t: &Topology) {
    for a in [
        ["198.18.0.1/24", "dpdk0", ""],
        ["198.18.0.100/32", "dpdk0", ""],
        ["2001:db8:18::1/64", "dpdk0", ""],
        ["2001:db8:18::100/128", "dpdk0", ""],
        ["198.19.0.1/24", "dpdk1", ""],
        ["198.19.0.10/24", "dpdk1", "sapool"],
        ["2001:db8:19::1/64", "dpdk1", ""],
        ["2001:db8:19::10/64", "dpdk1", "sapool"],
    ] {
        let mut args = vec!["addr", "add", a[0], "dev", a[1]];
        if !a[2].is_empty() {
            args.push(a[2]);
        }
        t.cli_ok("rvsip", &args);
    }
    for (vip, lip, rs) in
        [(format!("{VIP4}:80"), LIP4, rs4 as fn(usize) -> String), (format!("[{VIP6}]:80"), LIP6, rs6)]
    {
        t.cli_ok("rvsadm", &["-A", "-t", &vip, "-s", "wrr"]);
        t.cli_ok("rvsadm", &["-P", "-t", &vip, "-z", lip, "-F", "dpdk1"]);
        for (i, w) in [(1, "3"), (2, "2"), (3, "1")] {
            let r = if vip.starts_with('[') { format!("[{}]:8080", rs(i)) } else { format!("{}:8080", rs(i)) };
            t.cli_ok("rvsadm", &["-a", "-t", &vip, "-r", &r, "-b", "-w", w]);
        }
    }
}

#[test]
fn whole_topology_configured_at_runtime_with_the_tools() {
    let _g = serial();
    let t = bare();
    let (list, _, ok) = t.cli("rvsadm", &["-L", "-n"]);
    assert!(ok && !list.contains("TCP "), "no services at start:\n{list}");
    configure_with_cli(&t);
    let list = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(list.contains(&format!("TCP  {VIP4}:80 wrr")), "{list}");
    assert!(list.contains("FullNat 3"), "{list}");
    traffic_checks(&t, VIP4, CLIENT4, LIP4, rs4);
    traffic_checks(&t, VIP6, CLIENT6, LIP6, rs6);

    // Listings reflect the traffic.
    let stats = t.cli_ok("rvsadm", &["-L", "-n", "--stats"]);
    assert!(stats.contains("Conns") && stats.contains(VIP4), "{stats}");
    let conns = t.cli_ok("rvsadm", &["-L", "-n", "-c"]);
    assert!(conns.lines().any(|l| l.starts_with("[0]tcp") && l.contains(CLIENT4) && l.contains(LIP4)), "{conns}");
    let links = t.cli_ok("rvsip", &["link", "show", "-s"]);
    assert!(links.contains("dpdk0") && links.contains("dpdk1") && links.contains("ipackets"), "{links}");

    // Bad input: one line, non-zero, nothing changed.
    let saved = t.cli_ok("rvsadm", &["-S", "-n"]);
    for bad in [
        vec!["-A", "-t", "198.18.0.100:80", "-s", "wrrr"],
        vec!["-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11:8080", "-w", "70000"],
        vec!["-A", "-t", "198.18.0.100:80", "-s", "rr"],
        vec!["-d", "-t", "198.18.0.100:81", "-r", "198.19.0.11:8080"],
        vec!["--bogus"],
    ] {
        let (_, err, ok) = t.cli("rvsadm", &bad);
        assert!(!ok, "rvsadm {} must fail", bad.join(" "));
        assert_eq!(err.trim().lines().count(), 1, "one line for rvsadm {}: {err}", bad.join(" "));
    }
    assert_eq!(t.cli_ok("rvsadm", &["-S", "-n"]), saved, "refused commands changed nothing");
}

#[test]
fn save_clear_restore_reproduces_the_listing() {
    let _g = serial();
    let t = bare();
    configure_with_cli(&t);
    t.cli_ok("rvsadm", &["-E", "-t", &format!("{VIP4}:80"), "-s", "sh", "-p", "120", "-M", "255.255.255.0"]);
    let before = t.cli_ok("rvsadm", &["-L", "-n"]);
    let saved = t.cli_ok("rvsadm", &["-S", "-n"]);
    assert!(saved.contains("-A -t") && saved.contains("-a -t") && saved.contains("-P -t"), "{saved}");
    t.cli_ok("rvsadm", &["-C"]);
    let empty = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(!empty.contains("TCP "), "cleared:\n{empty}");
    let (_, err, ok) = t.cli_stdin("rvsadm", &["-R"], Some(&saved));
    assert!(ok, "restore: {err}");
    assert_eq!(t.cli_ok("rvsadm", &["-L", "-n"]), before, "save, clear, restore: identical listing");
    assert_eq!(t.cli_ok("rvsadm", &["-S", "-n"]), saved, "and identical save");
    // The restored services forward.
    let (bodies, ok) = t.curl_many(&(0..30).map(|_| format!("http://{VIP4}/")).collect::<Vec<_>>(), 20);
    assert!(ok && t.tally(&bodies).iter().sum::<usize>() == 30);
}
