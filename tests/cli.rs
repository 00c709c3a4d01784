//! rvsadm and rvsip end to end: the whole demo configuration built at run time with the
//! two tools alone, then the dataplane's traffic checks; save, clear and restore; one
//! change script applied line by line and by `rvsadm -R`, with identical results.

use rvs_e2e::checks::traffic_checks;
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, CLIENT4, CLIENT6, LIP4, LIP6, VIP4, VIP6};

/// The demo configuration without addresses and services: rvsd starts bare.
fn bare() -> Topology {
    bare_with(toml::Table::new())
}

/// [`bare`], with `timeouts` as rvsd's `[timeouts]` (so that the connections a test
/// floods expire within it).
fn bare_with(timeouts: toml::Table) -> Topology {
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.config.remove("addr");
    t.config.remove("service");
    if !timeouts.is_empty() {
        t.config.insert("timeouts".into(), timeouts.into());
    }
    t.start_rvsd_bare().expect("rvsd starts without services");
    t
}

/// rvsd's count of event `name`.
fn events(t: &Topology, name: &str) -> u64 {
    t.rvsd_stats().expect("stats")["events"][name].as_u64().unwrap_or(0)
}

/// The weight `rvsadm -L -n` lists for real server `rs` of service `svc` (`-t VIP:PORT`
/// or `-u VIP:PORT`).
fn listed_weight(t: &Topology, svc: [&str; 2], rs: &str) -> String {
    let list = t.cli_ok("rvsadm", &["-L", "-n", svc[0], svc[1]]);
    let line = list.lines().find(|l| l.contains(rs)).unwrap_or_else(|| panic!("{rs} listed:\n{list}"));
    line.split_whitespace().nth(3).expect("weight column").to_string()
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
    // `-Z -t` zeroes one service's counters (and its real servers'), not the others'.
    let packets = |vip: &str| -> (u64, u64) {
        let j: serde_json::Value =
            serde_json::from_str(&t.cli_ok("rvsadm", &["-L", "-n", "--stats", "--json"])).expect("json");
        let s =
            j["services"].as_array().expect("services").iter().find(|s| s["service"]["vip"] == vip).expect("service");
        let rs: u64 =
            s["dests"].as_array().expect("dests").iter().map(|d| d["stats"]["pkts_in"].as_u64().unwrap_or(0)).sum();
        (s["stats"]["pkts_in"].as_u64().expect("pkts_in"), rs)
    };
    let (v4, v6) = (packets(VIP4), packets(VIP6));
    assert!(v4.0 > 0 && v6.0 > 0 && v6.1 > 0, "traffic counted: {v4:?} {v6:?}");
    t.cli_ok("rvsadm", &["-Z", "-t", &format!("[{VIP6}]:80")]);
    assert_eq!(packets(VIP6), (0, 0), "the IPv6 service and its real servers zeroed");
    assert!(packets(VIP4).0 >= v4.0, "the IPv4 service untouched");
    let (_, err, ok) = t.cli("rvsadm", &["-Z", "-t", "198.18.0.100:81"]);
    assert!(!ok && err.contains("no service"), "{err}");
    // dpip's habits: options after the object, a route via a gateway without dev (the
    // port whose subnet holds the gateway); addr flush at the end.
    let gw = rs4(1);
    t.cli_ok("rvsip", &["route", "-4", "add", "10.77.0.0/16", "via", &gw]);
    let routes = t.cli_ok("rvsip", &["route", "show", "-4"]);
    assert!(routes.lines().any(|l| l.contains("10.77.0.0/16") && l.contains(&gw) && l.contains("dpdk1")), "{routes}");
    t.cli_ok("rvsip", &["route", "del", "10.77.0.0/16"]);
    let conns = t.cli_ok("rvsadm", &["-L", "-n", "-c"]);
    assert!(conns.lines().any(|l| l.starts_with("[0]tcp") && l.contains(CLIENT4) && l.contains(LIP4)), "{conns}");
    // DPVS's --sockpair picks one of them by the client's socket pair, --cpu by worker.
    let line = conns.lines().find(|l| l.contains(CLIENT4)).expect("a connection of the client");
    let f: Vec<&str> = line.split_whitespace().collect();
    let one = t.cli_ok("rvsadm", &["-L", "-n", "-c", "--sockpair", &format!("tcp:{}:{}", f[3], f[4])]);
    // The same connection, whatever second its expiry (the second column) ticked to.
    let but_expiry = |l: &str| {
        l.split_whitespace().enumerate().filter(|(i, _)| *i != 1).map(|(_, w)| w.to_string()).collect::<Vec<_>>()
    };
    assert!(
        one.lines().count() == 1 && one.lines().any(|l| but_expiry(l) == but_expiry(line)),
        "{line} by --sockpair: {one}"
    );
    let none = t.cli_ok("rvsadm", &["-L", "-n", "-c", "--cpu", "7"]);
    assert!(none.is_empty(), "no worker 7: {none}");
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
    // The audit log: each change once, with the peer and the generation; refusals and
    // listings are not changes.
    let log = t.rvsd_log();
    let changes: Vec<&str> = log.lines().filter(|l| l.contains("control change")).collect();
    let route_adds: Vec<&&str> =
        changes.iter().filter(|l| l.contains("route_add") && l.contains("10.77.0.0/16")).collect();
    assert_eq!(route_adds.len(), 1, "{changes:#?}");
    assert!(
        route_adds[0].contains("uid=0") && route_adds[0].contains("pid=") && route_adds[0].contains("gen="),
        "{}",
        route_adds[0]
    );
    assert!(!changes.iter().any(|l| l.contains("wrrr") || l.contains("service_page")), "{changes:#?}");

    // DPVS's conhash: one client meets one real server; drained, its clients move to
    // another one, and come back with its weight (the ring keeps its points).
    t.cli_ok("rvsadm", &["-E", "-t", &format!("{VIP4}:80"), "-s", "conhash", "--hash-target", "sip"]);
    let list = t.cli_ok("rvsadm", &["-L", "-n", "-t", &format!("{VIP4}:80")]);
    assert!(list.contains(&format!("TCP  {VIP4}:80 conhash sip (fallback)")), "{list}");
    let urls = vec![format!("http://{VIP4}/"); 12];
    let one_server = || {
        let (bodies, ok) = t.curl_many(&urls, 5);
        let tally = t.tally(&bodies);
        assert!(ok && tally.iter().sum::<usize>() == 12, "{tally:?}\n{bodies}");
        let servers: Vec<usize> = (0..tally.len()).filter(|&i| tally[i] > 0).collect();
        assert_eq!(servers.len(), 1, "one client, one server: {tally:?}");
        servers[0] + 1
    };
    let first = one_server();
    let rs = format!("{}:8080", rs4(first));
    t.cli_ok("rvsadm", &["-e", "-t", &format!("{VIP4}:80"), "-r", &rs, "-w", "0"]);
    let moved = one_server();
    assert_ne!(moved, first, "drained: the client goes to another server");
    let weight = ["3", "2", "1"][first - 1]; // as configure_with_cli gave it
    t.cli_ok("rvsadm", &["-e", "-t", &format!("{VIP4}:80"), "-r", &rs, "-w", weight]);
    assert_eq!(one_server(), first, "back with its weight");
    let (_, err, ok) = t.cli("rvsadm", &["-E", "-t", &format!("{VIP4}:80"), "-s", "wrr", "--hash-target", "sip"]);
    assert!(!ok && err.contains("hash target can only be set when the scheduler is conhash"), "{err}");

    // Weighted failover: the heaviest server (weight 3) takes every connection; drained,
    // the next-heaviest (2) takes over; back with its weight, it is the primary again.
    t.cli_ok("rvsadm", &["-E", "-t", &format!("{VIP4}:80"), "-s", "fo"]);
    let list = t.cli_ok("rvsadm", &["-L", "-n", "-t", &format!("{VIP4}:80")]);
    assert!(list.contains(&format!("TCP  {VIP4}:80 fo\n")), "{list}");
    assert_eq!(one_server(), 1, "the heaviest");
    let primary = format!("{}:8080", rs4(1));
    t.cli_ok("rvsadm", &["-e", "-t", &format!("{VIP4}:80"), "-r", &primary, "-w", "0"]);
    assert_eq!(one_server(), 2, "the primary drained: the next-heaviest");
    t.cli_ok("rvsadm", &["-e", "-t", &format!("{VIP4}:80"), "-r", &primary, "-w", "3"]);
    assert_eq!(one_server(), 1, "the primary back");

    // dpip's `link set DEV addr MAC`: the port, its twin and the neighbours (by a
    // gratuitous ARP) take the new MAC, and traffic goes on.
    t.cli_ok("rvsip", &["link", "set", "dpdk0", "addr", "02:00:00:00:aa:01"]);
    let shown = t.cli_ok("rvsip", &["link", "show", "dpdk0"]);
    assert!(shown.contains("02:00:00:00:aa:01"), "{shown}");
    let twin = t.lb.exec(&["ip", "-br", "link", "show", "dpdk0.kni"]);
    assert!(String::from_utf8_lossy(&twin.stdout).contains("02:00:00:00:aa:01"), "the twin follows");
    let neigh = t.client_exec(&["ip", "neigh", "show", "198.18.0.1"]);
    assert!(String::from_utf8_lossy(&neigh.stdout).contains("02:00:00:00:aa:01"), "the client learned it");
    let (bodies, ok) = t.curl_many(&[format!("http://{VIP4}/")], 5);
    assert!(ok, "traffic after the MAC change: {bodies}");
    let (_, err, ok) = t.cli("rvsip", &["link", "set", "dpdk0", "addr", "01:00:5e:00:00:01"]);
    assert!(!ok && err.contains("not a unicast MAC"), "{err}");

    t.cli_ok("rvsip", &["addr", "add", "192.0.2.77/24", "dev", "dpdk0"]);
    t.cli_ok("rvsip", &["addr", "flush", "dev", "dpdk0"]);
    let addrs = t.cli_ok("rvsip", &["addr", "show", "dev", "dpdk0"]);
    assert!(!addrs.contains("192.0.2.77") && !addrs.contains(VIP4), "every address of dpdk0 gone: {addrs}");
    assert!(t.cli_ok("rvsip", &["addr", "show", "dev", "dpdk1"]).contains(LIP4), "dpdk1's untouched");
    // The SYN proxy's per-slot state (its default mode is auto) came with the first TCP
    // service, built by the control thread: the worker adopted it, wrote none.
    let log = t.rvsd_log();
    let built: Vec<&str> = log.lines().filter(|l| l.contains("per-slot state built by the control thread")).collect();
    let whole = |l: &str| {
        l.contains("adopted=SlotFeatures { synproxy: true")
            && l.contains("handed_back=SlotFeatures { synproxy: false, proxy_protocol: false, uoa: false }")
    };
    assert!(built.len() == 1 && whole(built[0]), "{built:?}");
}

#[test]
fn save_clear_restore_reproduces_the_listing() {
    let _g = serial();
    let t = bare();
    configure_with_cli(&t);
    let vip = format!("{VIP4}:80");
    t.cli_ok("rvsadm", &["-E", "-t", &vip, "-s", "sh", "-p", "120", "-M", "255.255.255.0", "--conn-timeout", "3"]);
    let before = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(before.contains(&format!("TCP  {vip} sh")) && before.contains("conn-timeout 3"), "{before}");
    let saved = t.cli_ok("rvsadm", &["-S", "-n"]);
    assert!(saved.contains("-A -t") && saved.contains("-a -t") && saved.contains("-P -t"), "{saved}");
    assert!(saved.contains("--conn-timeout 3"), "{saved}");
    t.cli_ok("rvsadm", &["-C"]);
    let empty = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(!empty.contains("TCP "), "cleared:\n{empty}");
    let (_, err, ok) = t.cli_stdin("rvsadm", &["-R"], Some(&saved));
    assert!(ok, "restore: {err}");
    assert_eq!(t.cli_ok("rvsadm", &["-L", "-n"]), before, "save, clear, restore: identical listing");
    assert_eq!(t.cli_ok("rvsadm", &["-S", "-n"]), saved, "and identical save");
    // The restored services forward, the client's /24 to one server (its template).
    let (bodies, ok) = t.curl_many(&(0..30).map(|_| format!("http://{VIP4}/")).collect::<Vec<_>>(), 20);
    let tally = t.tally(&bodies);
    assert!(ok && tally.iter().sum::<usize>() == 30, "{tally:?}");
    let server = rs4(tally.iter().position(|&n| n == 30).expect("one server for the persistent client") + 1);
    // ipvsadm's --persistent-conn: the template counted on that server, and listed.
    let counts = t.cli_ok("rvsadm", &["-L", "-n", "--persistent-conn", "-t", &vip]);
    assert!(counts.contains("Weight    PersistConn ActiveConn InActConn"), "{counts}");
    let with_one: Vec<&str> = counts.lines().filter(|l| l.starts_with("  -> 198.19")).collect();
    assert_eq!(with_one.len(), 3, "{counts}");
    for l in with_one {
        let persist = l.split_whitespace().nth(3).expect("PersistConn");
        assert_eq!(persist, if l.contains(&format!("{server}:8080")) { "1" } else { "0" }, "{counts}");
    }
    let templates = t.cli_ok("rvsadm", &["-L", "-n", "-c", "--persistent-conn"]);
    let lines: Vec<&str> = templates.lines().collect();
    assert_eq!(lines.len(), 1, "{templates}");
    let f: Vec<&str> = lines[0].split_whitespace().collect();
    let client24 = format!("{}.0:0", CLIENT4.rsplit_once('.').expect("IPv4").0);
    assert_eq!(f[2..], ["NONE", &client24, &vip, "0.0.0.0:0", &format!("{server}:8080")], "{templates}");
    let expires: u32 = f[1].trim_end_matches('s').parse().expect("seconds");
    assert!((100..=120).contains(&expires), "-p 120: {templates}");
    // Drained, the server keeps its persistent client until the template expires (LVS's
    // default: `expire_quiescent_template` off), then takes it back with its weight.
    let weight = ["3", "2", "1"][tally.iter().position(|&n| n == 30).unwrap_or(0)];
    t.cli_ok("rvsadm", &["-e", "-t", &vip, "-r", &format!("{server}:8080"), "-w", "0"]);
    let (bodies, ok) = t.curl_many(&(0..6).map(|_| format!("http://{VIP4}/")).collect::<Vec<_>>(), 6);
    assert!(ok && t.tally(&bodies) == tally.iter().map(|&n| n / 5).collect::<Vec<_>>(), "{bodies}");
    t.cli_ok("rvsadm", &["-e", "-t", &vip, "-r", &format!("{server}:8080"), "-w", weight]);

    // The service's own timeout: an idle established connection is gone after 3 s,
    // not the global 900 s.
    let script = format!("import socket,time; s=socket.create_connection(('{VIP4}',80)); time.sleep(12)");
    let _idle = t.client.spawn(&["python3", "-c", &script]);
    let idle_conn = || {
        let conns = t.cli_ok("rvsadm", &["-L", "-n", "-c"]);
        conns.lines().any(|l| l.contains("ESTABLISHED") && l.contains(CLIENT4) && l.contains(&vip))
    };
    let start = std::time::Instant::now();
    while !idle_conn() {
        assert!(start.elapsed().as_secs() < 5, "the idle connection is listed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let listed = std::time::Instant::now();
    while idle_conn() {
        assert!(listed.elapsed().as_secs() < 8, "the idle connection expires after the service's 3 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // (From `start`, which is before the client connected: `listed` may be late.)
    let gone = start.elapsed();
    assert!(gone.as_millis() >= 2500, "not before its 3 s: gone {gone:?} after the client started");
}

/// One change script: services, real servers (one with port 0, meaning the virtual
/// port, then edited by its explicit port), local addresses, edits and deletions, and a
/// service whose VIP is not an address of rvsd yet (a VRRP backup's).
const CHANGE_SCRIPT: &str = "\
-A -t 198.18.0.100:80 -s wrr
-P -t 198.18.0.100:80 -z 198.19.0.10
-P -t 198.18.0.100:80 -z 198.19.0.9
-a -t 198.18.0.100:80 -r 198.19.0.11:0 -w 3
-a -t 198.18.0.100:80 -r 198.19.0.12:8080 -w 2
-a -t 198.18.0.100:80 -r 198.19.0.13:8080
-e -t 198.18.0.100:80 -r 198.19.0.11:80 -w 5
-d -t 198.18.0.100:80 -r 198.19.0.13:8080
-Q -t 198.18.0.100:80 -z 198.19.0.9
-A -u 198.18.0.100:53 -s rr
-P -u 198.18.0.100:53 -z 198.19.0.10
-a -u 198.18.0.100:53 -r 198.19.0.21:0
-E -u 198.18.0.100:53 -s wlc -p 300
-A -t 198.18.0.200:443 -s rr
-P -t 198.18.0.200:443 -z 198.19.0.10
-a -t 198.18.0.200:443 -r 198.19.0.31:0 -w 2
-A -t 198.18.0.100:8443
-D -t 198.18.0.100:8443
";

#[test]
fn a_change_script_gives_the_same_set_through_the_socket_and_through_restore() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    t.config.remove("addr");
    t.config.remove("service");
    t.start_rvsd_bare().expect("rvsd starts without services");
    for a in [
        ["198.18.0.1/24", "dpdk0", ""],
        ["198.18.0.100/32", "dpdk0", ""],
        ["198.19.0.1/24", "dpdk1", ""],
        ["198.19.0.9/24", "dpdk1", "sapool"],
        ["198.19.0.10/24", "dpdk1", "sapool"],
    ] {
        let mut args = vec!["addr", "add", a[0], "dev", a[1]];
        if !a[2].is_empty() {
            args.push(a[2]);
        }
        t.cli_ok("rvsip", &args);
    }

    // (a) Line by line through the control socket.
    for line in CHANGE_SCRIPT.lines() {
        t.cli_ok("rvsadm", &line.split_whitespace().collect::<Vec<_>>());
    }
    let by_socket = t.cli_ok("rvsadm", &["-S", "-n"]);
    let listed_by_socket = t.cli_ok("rvsadm", &["-L", "-n"]);
    // The port-0 real server is the virtual port's, whichever spelling names it.
    for bad in ["198.19.0.11:80", "198.19.0.11:0", "198.19.0.11"] {
        let (_, err, ok) = t.cli("rvsadm", &["-a", "-t", "198.18.0.100:80", "-r", bad]);
        assert!(!ok && err.contains("real server 198.19.0.11:80 listed twice"), "-r {bad}: {err}");
    }

    // (b) The same script through `rvsadm -R` after `rvsadm -C`.
    t.cli_ok("rvsadm", &["-C"]);
    assert!(!t.cli_ok("rvsadm", &["-S", "-n"]).contains("-A"), "cleared");
    let (_, err, ok) = t.cli_stdin("rvsadm", &["-R"], Some(CHANGE_SCRIPT));
    assert!(ok, "restore: {err}");
    let by_restore = t.cli_ok("rvsadm", &["-S", "-n"]);

    assert_eq!(by_socket, by_restore, "the same script gives the same set either way");
    assert_eq!(listed_by_socket, t.cli_ok("rvsadm", &["-L", "-n"]), "and the same listing");
    for want in [
        "-A -t 198.18.0.100:80 -s wrr\n",
        // port 0 is the virtual port; the edit by the explicit port reached it
        "-a -t 198.18.0.100:80 -r 198.19.0.11:80 -b -w 5\n",
        "-a -t 198.18.0.100:80 -r 198.19.0.12:8080 -b -w 2\n",
        "-P -t 198.18.0.100:80 -z 198.19.0.10\n",
        "-A -u 198.18.0.100:53 -s wlc -p 300\n",
        "-a -u 198.18.0.100:53 -r 198.19.0.21:53 -b -w 1\n",
        // the VIP before its address
        "-A -t 198.18.0.200:443 -s rr\n",
        "-a -t 198.18.0.200:443 -r 198.19.0.31:443 -b -w 2\n",
        "-P -t 198.18.0.200:443 -z 198.19.0.10\n",
    ] {
        assert!(by_socket.contains(want), "missing {want:?} in:\n{by_socket}");
    }
    for gone in ["198.19.0.13", "198.19.0.9", ":8443"] {
        assert!(!by_socket.contains(gone), "{gone} was deleted:\n{by_socket}");
    }
    let addrs = t.cli_ok("rvsip", &["addr", "show"]);
    assert!(!addrs.contains("198.18.0.200"), "the VIP is not an address yet:\n{addrs}");
}

/// DPVS's passive health check (`--dest-check`): a real server that refuses connections
/// (nothing listens on its port: its kernel answers the SYN with an RST) is taken out
/// at its first refusal for 2 s, then, failing again, for 4 s; `-L` shows it with weight
/// 0 while it is out and `-S` keeps its weight; a spoofed-source SYN flood, which the
/// servers answer and nobody completes, takes no server out; with the check off, the
/// server is scheduled again at once.
#[test]
fn dest_check_takes_a_refusing_server_out_and_lets_it_back() {
    use std::time::{Duration, Instant};
    let _g = serial();
    // The flood's half-open connections expire within the test.
    let t = bare_with(toml::toml! { syn_recv = 2 });
    configure_with_cli(&t);
    let vip = format!("{VIP4}:80");
    t.cli_ok("rvsadm", &["-E", "-t", &vip, "-s", "rr", "--dest-check", "1,1,3s,2-4s"]);
    let list = t.cli_ok("rvsadm", &["-L", "-n", "-t", &vip]);
    assert!(list.contains(&format!("TCP  {vip} rr dest-check internal:1,1,3s,2-4s")), "{list}");

    // A flood from spoofed sources: every SYN answered by a server, none completed.
    let fl = t.second_client().expect("flooder");
    let out = fl.exec(&[
        "timeout",
        "20",
        "hping3",
        "-q",
        "-S",
        "--rand-source",
        "-p",
        "80",
        "-c",
        "1500",
        "-i",
        "u1000",
        VIP4,
    ]);
    assert!(out.status.code().is_some(), "hping3 ran");
    let json = t.cli_ok("rvsadm", &["-L", "-n", "--stats", "--json", "-t", &vip]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let opened = v.pointer("/services/0/stats/conns").and_then(|c| c.as_u64()).unwrap_or_else(|| panic!("{json}"));
    assert!(opened >= 1000, "the flood opened connections: {opened}");
    std::thread::sleep(Duration::from_secs(4));
    let list = t.cli_ok("rvsadm", &["-L", "-n", "-t", &vip]);
    assert_eq!(list.matches("FullNat 0 ").count(), 0, "the flood took no server out:\n{list}");
    assert_eq!(events(&t, "dest_down"), 0, "and reported no failure");

    // A server that refuses.
    let dead = format!("{}:9090", rs4(1));
    t.cli_ok("rvsadm", &["-a", "-t", &vip, "-r", &dead, "-b", "-w", "1"]);
    let weight = |t: &Topology| listed_weight(t, ["-t", &vip], &dead);
    // Sequential requests, one connection each: how many failed.
    let failed = |n: usize| -> usize {
        let script =
            format!("for i in $(seq {n}); do curl -s -o /dev/null -m 2 -w '%{{http_code}}\\n' http://{VIP4}/; done");
        let out = t.client_exec(&["sh", "-c", &script]);
        let codes = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(codes.lines().count(), n, "{codes}");
        codes.lines().filter(|c| *c != "200").count()
    };
    // (Taken out at the first failure: after `t0`, and before `out_at`, which follows
    // the other seven requests.)
    let t0 = Instant::now();
    assert_eq!(failed(8), 1, "the first connection to the refusing server fails, then it is out");
    let out_at = Instant::now();
    assert_eq!(weight(&t), "0", "listed with weight 0 while out");
    let json = t.cli_ok("rvsadm", &["-L", "-n", "--json", "-t", &vip]);
    assert!(json.contains("\"inhibited\":true") || json.contains("\"inhibited\": true"), "{json}");
    let saved = t.cli_ok("rvsadm", &["-S", "-n"]);
    assert!(saved.contains(&format!("-a -t {vip} -r {dead} -b -w 1")), "-S keeps the weight:\n{saved}");
    assert!(saved.contains(&format!("-A -t {vip} -s rr --dest-check 1,1,3s,2-4s")), "{saved}");
    assert!(t.rvsd_log().contains(&format!("real server {dead} taken out for 2 s")), "{}", t.rvsd_log());
    assert_eq!(events(&t, "dest_down"), 1);

    while weight(&t) == "0" {
        assert!(out_at.elapsed() < Duration::from_secs(5), "back in scheduling after its 2 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t0.elapsed() >= Duration::from_millis(1500), "not before its 2 s: {:?}", t0.elapsed());
    assert_eq!(weight(&t), "1");
    assert_eq!(failed(8), 1, "failing again");
    assert_eq!(weight(&t), "0");
    assert!(t.rvsd_log().contains(&format!("real server {dead} taken out for 4 s")), "twice as long");

    // The check off: scheduled again at once (rr: 2 of 8 requests reach it).
    t.cli_ok("rvsadm", &["-E", "-t", &vip, "-s", "rr"]);
    assert_eq!(weight(&t), "1");
    assert_eq!(failed(8), 2, "no check, no taking out");
}

/// DPVS's `--dest-check` on a UDP service: a real server whose port is closed (its kernel
/// answers a datagram with ICMP port unreachable) is taken out at its first refusal and
/// let back in after its 2 s; once something answers there, its answers confirm it and it
/// serves; datagrams a healthy server leaves unanswered (a client can send those) take no
/// server out when their connections expire, where DPVS counts every one-way expiry.
#[test]
fn dest_check_takes_a_udp_server_whose_port_is_closed_out() {
    use std::time::{Duration, Instant};
    let _g = serial();
    // The unanswered datagrams' connections expire within the test.
    let t = bare_with(toml::toml! { udp = 2 });
    configure_with_cli(&t);
    let _dns = rvs_e2e::dns::start_dnsmasq(&t, None);
    let vip = format!("{VIP4}:53");
    t.cli_ok("rvsadm", &["-A", "-u", &vip, "-s", "rr", "--dest-check", "1,1,3s,4-8s"]);
    t.cli_ok("rvsadm", &["-P", "-u", &vip, "-z", LIP4, "-F", "dpdk1"]);
    for r in [format!("{}:53", rs4(1)), format!("{}:53", rs4(2))] {
        t.cli_ok("rvsadm", &["-a", "-u", &vip, "-r", &r, "-b", "-w", "1"]);
    }
    let list = t.cli_ok("rvsadm", &["-L", "-n", "-u", &vip]);
    assert!(list.contains(&format!("UDP  {vip} rr dest-check internal:1,1,3s,4-8s")), "{list}");

    // Datagrams dnsmasq drops without a word (too short for a DNS header), from spoofed
    // sources, to both servers: their connections expire one-way.
    let fl = t.second_client().expect("flooder");
    let out = fl.exec(&[
        "timeout",
        "20",
        "hping3",
        "-q",
        "-2",
        "--rand-source",
        "-p",
        "53",
        "-d",
        "2",
        "-c",
        "300",
        "-i",
        "u2000",
        VIP4,
    ]);
    assert!(out.status.code().is_some(), "hping3 ran");
    let json = t.cli_ok("rvsadm", &["-L", "-n", "--stats", "--json", "-u", &vip]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let opened = v.pointer("/services/0/stats/conns").and_then(|c| c.as_u64()).unwrap_or_else(|| panic!("{json}"));
    assert!(opened >= 200, "the datagrams opened connections (some random sources are martians): {opened}");
    let live = || -> u64 {
        t.rvsd_stats().expect("stats")["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .map(|w| w["conns"].as_u64().unwrap_or(0))
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(12);
    while live() > 0 {
        assert!(Instant::now() < deadline, "they expired: {} live", live());
        std::thread::sleep(Duration::from_millis(200));
    }
    let list = t.cli_ok("rvsadm", &["-L", "-n", "-u", &vip]);
    assert_eq!(list.matches("FullNat 1 ").count(), 2, "unanswered datagrams took no server out:\n{list}");
    assert_eq!(events(&t, "dest_down"), 0);

    // A server whose port is closed; queries, one flow each: it refuses the first that
    // reaches it.
    let dead = format!("{}:5353", rs4(3));
    t.cli_ok("rvsadm", &["-a", "-u", &vip, "-r", &dead, "-b", "-w", "1"]);
    let weight = |t: &Topology| listed_weight(t, ["-u", &vip], &dead);
    let (counts, refused) = queries(&t, 6);
    assert_eq!(refused, 1, "one query reached the closed port, then it was out: {counts:?}");
    assert_eq!(weight(&t), "0", "listed with weight 0 while out");
    let out_at = Instant::now();
    assert!(events(&t, "dest_down") >= 1);
    assert!(t.rvsd_log().contains(&format!("real server {dead} taken out for 4 s")), "{}", t.rvsd_log());
    assert_eq!(counts.values().sum::<usize>(), 5, "the others answered: {counts:?}");

    // Something answers there now (listening before the server is let back in): let
    // back in after its 4 s (room for dnsmasq to start), its answers confirm it.
    let args = testnet::dnsmasq_args(&[rs4(3)], 5353, &format!("/rs.test/{}", rs4(3)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _back = t.rs[2].spawn(&args);
    let listening =
        || String::from_utf8_lossy(&t.rs[2].exec(&["ss", "-Hlun", "sport", "= :5353"]).stdout).contains("5353");
    while !listening() {
        assert!(out_at.elapsed() < Duration::from_millis(3500), "dnsmasq listens before the server is back");
        std::thread::sleep(Duration::from_millis(50));
    }
    while weight(&t) == "0" {
        assert!(out_at.elapsed() < Duration::from_secs(7), "back in scheduling after its 4 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (counts, refused) = queries(&t, 6);
    assert_eq!(refused, 0, "{counts:?}");
    assert_eq!(counts.get(&rs4(3)), Some(&2), "the server serves its share again: {counts:?}");
    assert!(events(&t, "dest_up") >= 1, "its answers confirmed it");
    assert_eq!(weight(&t), "1");
}

/// `n` DNS queries to VIP4:53, each from a new connected socket (a new flow, which sees
/// an ICMP port unreachable as ECONNREFUSED at once), no retry: the answers by the
/// address they carry, and how many were refused (a timeout fails the test).
fn queries(t: &Topology, n: usize) -> (std::collections::BTreeMap<String, usize>, usize) {
    const CLIENT: &str = r#"
import socket, struct, sys, time
for i in range(int(sys.argv[2])):
    time.sleep(0.05)  # (the control thread's turn to act on a refusal)
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x02rs\x04test\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.connect((sys.argv[1], 53))
    try:
        s.send(q)
        print("answer", socket.inet_ntoa(s.recv(512)[-4:]))
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("timeout")
    s.close()
"#;
    let script = t.dir.join("dns_once.py");
    std::fs::write(&script, CLIENT).expect("write the DNS client");
    let out = t.client_exec(&["python3", &script.display().to_string(), VIP4, &n.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.lines().count() == n,
        "DNS client: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("timeout"), "every query answered or refused at once:\n{text}");
    let mut counts = std::collections::BTreeMap::new();
    for a in text.lines().filter_map(|l| l.strip_prefix("answer ")) {
        *counts.entry(a.to_string()).or_insert(0) += 1;
    }
    (counts, text.lines().filter(|l| *l == "refused").count())
}

/// DPVS's `--expire-quiescent`: an established connection whose real server is drained
/// (weight 0) ends at the client's next segment, which gets an RST (the client sees
/// "connection reset" and can reconnect at once); without the option the drained server
/// still answers on it.
#[test]
fn expire_quiescent_resets_a_drained_servers_connection() {
    use std::time::{Duration, Instant};
    let _g = serial();
    let t = bare();
    configure_with_cli(&t);
    let vip = format!("{VIP4}:80");
    // One connection, idle for 3 s, then a request; the outcome written to a file.
    let outcome = |t: &Topology, quiesce: bool| -> String {
        let file = t.dir.join(format!("outcome-{quiesce}"));
        let script = format!(
            "import socket,time,sys\ns=socket.create_connection(('{VIP4}',80))\ntime.sleep(3)\ntry:\n    \
             s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n    r='ok' if s.recv(100) else 'closed'\nexcept \
             ConnectionResetError:\n    r='reset'\nopen(sys.argv[1],'w').write(r)\n"
        );
        let _client = t.client.spawn(&["python3", "-c", &script, &file.display().to_string()]);
        let start = Instant::now();
        let server = loop {
            let conns = t.cli_ok("rvsadm", &["-L", "-n", "-c"]);
            let line = conns.lines().find(|l| l.contains("ESTABLISHED") && l.contains(CLIENT4) && l.contains(&vip));
            if let Some(l) = line {
                break l.split_whitespace().last().expect("real server").to_string();
            }
            assert!(start.elapsed() < Duration::from_secs(2), "the connection is listed:\n{conns}");
            std::thread::sleep(Duration::from_millis(50));
        };
        t.cli_ok("rvsadm", &["-e", "-t", &vip, "-r", &server, "-w", "0"]);
        while !file.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "the client finished");
            std::thread::sleep(Duration::from_millis(100));
        }
        t.cli_ok("rvsadm", &["-e", "-t", &vip, "-r", &server, "-w", "1"]);
        std::fs::read_to_string(&file).expect("outcome")
    };
    t.cli_ok("rvsadm", &["-E", "-t", &vip, "-s", "rr", "--expire-quiescent"]);
    let list = t.cli_ok("rvsadm", &["-L", "-n", "-t", &vip]);
    assert!(list.contains(&format!("TCP  {vip} rr expire-quiescent")), "{list}");
    assert_eq!(outcome(&t, true), "reset", "drained: the client's next segment gets an RST");
    let stats = t.rvsd_stats().expect("stats");
    assert_eq!(stats["events"]["quiescent_expired"].as_u64(), Some(1), "{}", stats["events"]);
    t.cli_ok("rvsadm", &["-E", "-t", &vip, "-s", "rr"]);
    assert_eq!(outcome(&t, false), "ok", "without the option the connection runs on");
}
