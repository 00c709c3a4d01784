//! Firewall-mark services end to end (ipvsadm `-f`, keepalived `virtual_server fwmark`),
//! with real kernel stacks: rvs's own mark rules (`[[fwmark]]`, `rvsip fwmark`) put a
//! client's connections to two ports of the VIP, and to the IPv6 VIP, into one service.
//!
//! - With persistence, every request of the client, to either port, is served by one
//!   real server (the reason operators group ports under a mark: HTTP and HTTPS on one
//!   server for a client); each real server's port is the one the client asked for.
//! - Without persistence the same service spreads them over all its servers.
//! - `rvsadm -L` lists the service as ipvsadm does (`FWM  1`); `rvsip fwmark show` lists
//!   the rules; deleting a rule at run time takes its port out (nothing else answers
//!   there), adding it back puts it in again, and the other port never stops.

use std::collections::BTreeSet;

use rvs_e2e::checks::urls_port;
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, LIP4, LIP6, VIP4, VIP6};

const PORTS: [u16; 2] = [8080, 8443];

/// The rules and services: mark 1 over the VIP's ports 8080 and 8443 (IPv4) and 8080
/// (IPv6); the IPv4 fwmark 1 service persistent, round robin, over the three servers
/// (port 0: the client's port kept); the IPv6 one over rs1 and rs2.
fn fwmark_config(t: &mut Topology) {
    let mut rules = vec![];
    for port in PORTS {
        let dst = format!("{VIP4}:{port}");
        rules.push(toml::Value::Table(toml::toml! { mark = 1 proto = "tcp" dst_range = dst }));
    }
    let dst6 = format!("[{VIP6}]:8080");
    rules.push(toml::Value::Table(toml::toml! { mark = 1 dst_range = dst6 }));
    t.config.insert("fwmark".into(), toml::Value::Array(rules));
    let servers = |addrs: Vec<String>| {
        toml::Value::Array(addrs.into_iter().map(|a| toml::Value::Table(toml::toml! { addr = a port = 0 })).collect())
    };
    let mut v4 = toml::toml! {
        fwmark = 1
        scheduler = "rr"
        persistence = 300
        laddrs = [LIP4]
    };
    v4.insert("real_server".into(), servers((1..=3).map(rs4).collect()));
    let mut v6 = toml::toml! {
        fwmark = 1
        vip = "::"
        scheduler = "rr"
        laddrs = [LIP6]
    };
    v6.insert("real_server".into(), servers((1..=2).map(rs6).collect()));
    let services = t.config["service"].as_array_mut().expect("[[service]]");
    services.push(toml::Value::Table(v4));
    services.push(toml::Value::Table(v6));
}

/// `n` requests to each of `ports` of `vip`, interleaved: the servers that answered.
fn served_by(t: &Topology, vip: &str, ports: &[u16], n: usize) -> (Vec<usize>, bool) {
    let urls: Vec<String> = (0..n).flat_map(|_| ports.iter().flat_map(|p| urls_port(vip, *p, 1, ""))).collect();
    let (bodies, ok) = t.curl_many(&urls, 30);
    (t.tally(&bodies), ok)
}

#[test]
fn a_fwmark_service_groups_ports_and_families_under_one_persistence() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 3, http: true }).expect("topology");
    for i in 1..=3 {
        t.start_http_on(i, 8443).expect("second port");
    }
    fwmark_config(&mut t);
    t.start_rvsd().expect("rvsd starts");

    // One client, two ports, persistence: one server for all of it.
    let (counts, ok) = served_by(&t, VIP4, &PORTS, 30);
    assert!(ok, "every request to 8080 and 8443 is answered: {counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 60, "{counts:?}");
    assert_eq!(counts.iter().filter(|c| **c > 0).count(), 1, "one server for the client on both ports: {counts:?}");
    let chosen = counts.iter().position(|c| *c > 0).unwrap() + 1;
    let logged_port = |port: u16| {
        let log = match port {
            8080 => t.http_log(chosen),
            _ => t.dir.join(format!("http{chosen}-{port}.log")),
        };
        std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains("\"GET ")).count()
    };
    assert_eq!((logged_port(8080), logged_port(8443)), (30, 30), "each port reached on the server as asked");

    // IPv6: the IPv6 fwmark 1 service (not persistent: both its servers).
    let (counts6, ok6) = served_by(&t, VIP6, &[8080], 20);
    assert!(ok6, "IPv6 requests are answered: {counts6:?}");
    assert_eq!(counts6, vec![10, 10, 0], "round robin over the IPv6 service's two servers");

    // As ipvsadm lists it, and the rules as given.
    let listed = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(listed.contains("FWM  1 rr persistent 300"), "{listed}");
    let rules = t.cli_ok("rvsip", &["fwmark", "show"]);
    assert_eq!(
        rules,
        format!(
            "mark 1 proto=tcp,dst-range={VIP4}:8080\nmark 1 proto=tcp,dst-range={VIP4}:8443\nmark 1 dst-range=[{VIP6}]:8080\n"
        )
    );

    // Without persistence the service spreads the client's requests over every server.
    t.cli_ok("rvsadm", &["-E", "-f", "1", "-s", "rr"]);
    let (counts, ok) = served_by(&t, VIP4, &PORTS, 30);
    assert!(ok, "{counts:?}");
    assert_eq!(counts, vec![20, 20, 20], "round robin over the three servers, both ports");

    // A rule deleted at run time: its port has no service any more; the other port
    // goes on; added back, it serves again.
    let m8443 = format!("proto=tcp,dst-range={VIP4}:8443");
    t.cli_ok("rvsip", &["fwmark", "del", "1", &m8443]);
    let (_, ok) = served_by(&t, VIP4, &[8443], 1);
    assert!(!ok, "8443 is no longer marked and no service has it");
    let (counts, ok) = served_by(&t, VIP4, &[8080], 6);
    assert!(ok && counts.iter().sum::<usize>() == 6, "8080 still served: {counts:?}");
    let (_, err, ok) = t.cli("rvsip", &["fwmark", "add", "1", "proto=tcp,dst-range=0.0.0.0:8443"]);
    assert!(!ok && err.contains("not every address"), "{err}");
    t.cli_ok("rvsip", &["fwmark", "add", "1", &m8443]);
    let (counts, ok) = served_by(&t, VIP4, &[8443], 6);
    assert!(ok && counts.iter().sum::<usize>() == 6, "8443 served again: {counts:?}");
    let servers: BTreeSet<usize> = counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, _)| i).collect();
    assert_eq!(servers.len(), 3, "over every server: {counts:?}");
}
