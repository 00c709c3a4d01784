//! Neighbours at the edge, end to end: forged ARP / NA from the client side change
//! nothing; a flood of random-source ARP replies teaches nothing, leaves every real
//! server reachable and `rvsip neigh show` working; pings from made-up addresses of the
//! client subnet cannot keep the real servers from being resolved; a host on the server
//! subnet answering for the made-up sources of its own pings churns a full port's
//! table but evicts no real server; neighbours in use are re-confirmed before their
//! reachable time runs out, so traffic across several of those times loses nothing.
//!
//! Frames are crafted by a small python3 raw-socket sender in the client namespace (or
//! a real server's), on its own veth to rvsd (they reach nothing else). Needs root; `scripts/test.sh`
//! builds rvsd and the tools first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rvs_e2e::checks::urls;
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, CLIENT4, GW4, VIP4, VIP6};

/// Sends crafted ARP / NA frames out of `eth0`. Modes:
/// - `forge IP MAC`: an ARP reply (to rvsd's port, about its address) and a gratuitous
///   ARP claiming IP at MAC; an unsolicited NA (to all nodes) for an IPv6 IP;
/// - `flood N SEED`: N ARP replies with random sender addresses and MACs, half in the
///   client subnet 198.18.0.0/24 (the client's own .2 spared), half outside it;
/// - `pings N SECONDS SEED`: N echo requests to rvsd's port address from random made-up
///   addresses of the client subnet, spread over SECONDS (at most: as fast as python
///   sends), to rvsd's MAC as the client's ARP cache holds it;
/// - `answer N SECONDS SEED PREFIX IP MAC`: N echo requests to IP (at MAC) from random
///   made-up addresses PREFIX.100 to PREFIX.199, spread over SECONDS, answering every
///   ARP request for one of them with this host's MAC; prints how many it answered.
///
/// (`csum`: [`rvs_e2e::PY_CSUM`].)
const SENDER: &str = r#"
import random, socket, struct, sys, ipaddress

IFACE = "eth0"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((IFACE, 0))
BCAST = b"\xff" * 6

def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))

def arp(op, smac, sip, tmac, tip, dst):
    eth = dst + smac + b"\x08\x06"
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + smac + socket.inet_aton(sip) + tmac + socket.inet_aton(tip)
    return (eth + body).ljust(60, b"\x00")

def na(smac, ip):
    src = ipaddress.IPv6Address(ip).packed
    dst = ipaddress.IPv6Address("ff02::1").packed
    # Override flag, target, target link-layer address option.
    icmp = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + src + struct.pack("!BB", 2, 1) + smac
    pseudo = src + dst + struct.pack("!I", len(icmp)) + b"\x00\x00\x00\x3a"
    icmp = icmp[:2] + struct.pack("!H", csum(pseudo + icmp)) + icmp[4:]
    ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + src + dst
    return b"\x33\x33\x00\x00\x00\x01" + smac + b"\x86\xdd" + ip6 + icmp

mode = sys.argv[1]
if mode == "forge":
    ip, smac = sys.argv[2], mac_bytes(sys.argv[3])
    for _ in range(3):
        if ":" in ip:
            s.send(na(smac, ip))
        else:
            s.send(arp(2, smac, ip, BCAST, "198.18.0.1", BCAST))
            s.send(arp(1, smac, ip, BCAST, ip, BCAST))
elif mode == "flood":
    n, rnd = int(sys.argv[2]), random.Random(int(sys.argv[3]))
    sent = 0
    for i in range(n):
        if i % 2:
            sip = "198.18.0.%d" % rnd.randrange(3, 255)
        elif i % 4:
            sip = "203.0.113.%d" % rnd.randrange(1, 255)
        else:
            sip = "100.64.%d.%d" % (rnd.randrange(256), rnd.randrange(1, 255))
        smac = bytes([0x02] + [rnd.randrange(256) for _ in range(5)])
        s.send(arp(2, smac, sip, BCAST, "198.18.0.1", BCAST))
        sent += 1
    print(sent)
elif mode == "pings":
    import time
    n, secs, rnd = int(sys.argv[2]), float(sys.argv[3]), random.Random(int(sys.argv[4]))
    rvsd = next(l.split()[3] for l in open("/proc/net/arp").read().splitlines()[1:] if l.split()[5] == IFACE)
    dst = mac_bytes(rvsd)
    smac = b"\x02\x77\x77\x77\x77\x77"
    t0 = time.time()
    for i in range(n):
        sip = "198.18.0.%d" % rnd.randrange(3, 255)
        icmp = struct.pack("!BBHHH", 8, 0, 0, 1, i & 0xFFFF) + b"made-up"
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), i & 0xFFFF, 0, 64, 1, 0,
                         socket.inet_aton(sip), socket.inet_aton("198.18.0.1"))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.send(dst + smac + b"\x08\x00" + ip + icmp)
        time.sleep(max(0.0, t0 + secs * (i + 1) / n - time.time()))
    print(n)
elif mode == "answer":
    import select, time
    n, secs, rnd = int(sys.argv[2]), float(sys.argv[3]), random.Random(int(sys.argv[4]))
    prefix, dst_ip, dst = sys.argv[5], sys.argv[6], mac_bytes(sys.argv[7])
    me = mac_bytes(open("/sys/class/net/%s/address" % IFACE).read().strip())
    r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    r.bind((IFACE, 0x0806))
    r.setblocking(False)
    made_up, answered = set(), 0
    def answer_until(t):
        global answered
        while True:
            left = t - time.time()
            if left <= 0:
                return
            if not select.select([r], [], [], left)[0]:
                continue
            f = r.recv(2048)
            if len(f) >= 42 and f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x01":
                tip = socket.inet_ntoa(f[38:42])
                if tip in made_up:
                    s.send(arp(2, me, tip, f[22:28], socket.inet_ntoa(f[28:32]), f[6:12]))
                    answered += 1
    t0 = time.time()
    for i in range(n):
        sip = "%s.%d" % (prefix, rnd.randrange(100, 200))
        made_up.add(sip)
        icmp = struct.pack("!BBHHH", 8, 0, 0, 1, i & 0xFFFF) + b"made-up"
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), i & 0xFFFF, 0, 64, 1, 0,
                         socket.inet_aton(sip), socket.inet_aton(dst_ip))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.send(dst + me + b"\x08\x00" + ip + icmp)
        answer_until(t0 + secs * (i + 1) / n)
    answer_until(time.time() + 1)
    print(answered)
"#;

/// Runs the sender in the client namespace.
fn send(t: &Topology, args: &[&str]) -> String {
    let sender = rvs_e2e::py_script(SENDER);
    let mut cmd = vec!["timeout", "120", "python3", "-c", &sender];
    cmd.extend_from_slice(args);
    let out = t.client_exec(&cmd);
    assert!(out.status.success(), "sender {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rvsip --json neigh show`: address -> (mac, dev, state).
fn neighs(t: &Topology) -> BTreeMap<String, (String, String, String)> {
    let (out, err, ok) = t.cli("rvsip", &["--json", "neigh", "show"]);
    assert!(ok, "rvsip neigh show works: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("neigh show JSON");
    v["neighs"]
        .as_array()
        .expect("neighs")
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
            (s("addr"), (s("mac"), s("dev"), s("state")))
        })
        .collect()
}

/// Every real server answers through the VIP, `n` requests, none failing.
fn all_servers_answer(t: &Topology, vip: &str, n: usize) {
    let (bodies, ok) = t.curl_many(&urls(vip, n, ""), 30);
    assert!(ok, "every request through {vip} succeeds");
    let counts = t.tally(&bodies);
    assert_eq!(counts.iter().sum::<usize>(), n, "{n} answers through {vip}: {counts:?}");
    assert!(counts.iter().all(|&c| c > 0), "every real server answers through {vip}: {counts:?}");
}

#[test]
fn forged_bindings_from_the_client_side_change_nothing() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    all_servers_answer(&t, VIP4, 30);
    all_servers_answer(&t, VIP6, 30);
    let before = neighs(&t);
    for i in 1..=3 {
        assert!(before.contains_key(&rs4(i)) && before.contains_key(&rs6(i)), "real servers resolved: {before:?}");
    }

    let forged = "02:66:66:66:66:66";
    for ip in [rs4(1), rs4(2), VIP4.to_string(), GW4.to_string(), rs6(1), VIP6.to_string()] {
        send(&t, &["forge", &ip, forged]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = neighs(&t);
    for ip in [rs4(1), rs4(2), rs4(3), rs6(1), rs6(2), rs6(3)] {
        let (b, a) = (&before[&ip], &after[&ip]);
        assert_eq!((&a.0, &a.1), (&b.0, &b.1), "{ip}: MAC and port unchanged by forged bindings");
    }
    for ip in [VIP4, VIP6, GW4] {
        assert!(!after.contains_key(ip), "our own address {ip} is never learned: {after:?}");
    }
    assert!(after.values().all(|(mac, _, _)| mac != forged), "the forged MAC is nowhere: {after:?}");
    all_servers_answer(&t, VIP4, 30);
    all_servers_answer(&t, VIP6, 30);

    let stats = t.rvsd_stats().expect("stats");
    assert!(stats["net"]["neigh_refused"].as_u64().unwrap_or(0) >= 12, "refusals counted by workers: {}", stats["net"]);
    assert!(stats["neigh"]["learned"].as_u64().unwrap_or(0) >= 6, "real neighbours learned: {}", stats["neigh"]);
}

#[test]
fn random_source_arp_flood_leaves_every_server_reachable() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    // A small per-port cap: were the flood's on-link part learned, it would fill it and
    // evict.
    let mut defs = toml::Table::new();
    defs.insert("max_per_port".into(), toml::Value::Integer(64));
    t.config.insert("neigh_defs".into(), toml::Value::Table(defs));
    t.start_rvsd().expect("rvsd starts");
    all_servers_answer(&t, VIP4, 30);

    let t0 = Instant::now();
    let sent: u64 = send(&t, &["flood", "100000", "7"]).trim().parse().expect("count sent");
    assert_eq!(sent, 100_000);
    assert!(t0.elapsed() < Duration::from_secs(120), "the flood is bounded in time");

    // During and right after: every real server answers, nothing fails.
    all_servers_answer(&t, VIP4, 60);
    all_servers_answer(&t, VIP6, 30);
    let listed = neighs(&t);
    assert!(listed.keys().all(|a| !a.starts_with("203.0.113.") && !a.starts_with("100.64.")), "off-link never learned");
    for i in 1..=3 {
        assert!(listed.contains_key(&rs4(i)), "rs{i} still resolved");
    }
    // The plain form works too.
    let (out, err, ok) = t.cli("rvsip", &["neigh", "show"]);
    assert!(ok && out.lines().count() == listed.len(), "rvsip neigh show: {err}");

    assert!(
        listed.iter().all(|(a, (_, d, _))| d != "dpdk0" || a == CLIENT4 || !a.starts_with("198.18.0.")),
        "none of the flood's on-link bindings is learned: {listed:?}"
    );

    let stats = t.rvsd_stats().expect("stats");
    let neigh = &stats["neigh"];
    eprintln!("after the flood: neigh {neigh}, workers' neigh_refused {}", stats["net"]["neigh_refused"]);
    assert!(stats["net"]["neigh_refused"].as_u64().unwrap_or(0) > 10_000, "off-link refusals: {}", stats["net"]);
    assert!(neigh["refused_unsolicited"].as_u64().unwrap_or(0) > 1000, "on-link replies nobody asked for: {neigh}");
    assert_eq!(neigh["evicted"].as_u64(), Some(0), "nothing learned, so nothing evicted: {neigh}");
    let log = t.rvsd_log();
    assert!(log.matches("WARN").count() < 50, "warnings are rate-limited:\n{log}");
}

/// Pings from made-up addresses of the client subnet: rvsd answers each, so each
/// answer waits for a neighbour that never answers (three requests, three seconds). A
/// few a second used to keep every waiting slot busy, so that real servers could not be
/// resolved (`pending_full`); such next hops now take at most half the slots. The real
/// servers are forgotten in the middle of the pings, and every request through the VIPs
/// still succeeds.
#[test]
fn made_up_pingers_cannot_keep_real_servers_unresolved() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    all_servers_answer(&t, VIP4, 15);
    all_servers_answer(&t, VIP6, 15);

    let client = t.client.name().to_string();
    let pinger = std::thread::spawn(move || {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &client,
                "timeout",
                "60",
                "python3",
                "-c",
                &rvs_e2e::py_script(SENDER),
                "pings",
                "100000",
                "8",
                "11",
            ])
            .output()
            .expect("pinger")
    });
    let pending_full = || t.rvsd_stats().expect("stats")["drops"]["pending_full"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending_full() == 0 {
        assert!(Instant::now() < deadline, "the pings keep the slots their sources may take busy");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 1..=3 {
        for rs in [rs4(i), rs6(i)] {
            let (_, err, ok) = t.cli("rvsip", &["neigh", "del", &rs]);
            assert!(ok, "rvsip neigh del {rs}: {err}");
        }
    }
    // Each request must not need a SYN retransmission: a real server's SYN that found
    // no slot would have to wait for a slot freed between two pings.
    for vip in [VIP4, VIP6] {
        let (bodies, ok) = t.curl_many(&urls(vip, 9, ""), 4);
        let counts = t.tally(&bodies);
        assert!(ok && counts.iter().all(|&c| c > 0), "every real server answers through {vip} at once: {counts:?}");
    }
    let listed = neighs(&t);
    for i in 1..=3 {
        assert!(listed.contains_key(&rs4(i)) && listed.contains_key(&rs6(i)), "rs{i} resolved again: {listed:?}");
    }
    let out = pinger.join().expect("pinger thread");
    assert!(out.status.success(), "pinger: {}", String::from_utf8_lossy(&out.stderr));
    let stats = t.rvsd_stats().expect("stats");
    eprintln!("after the pings: drops {}, neigh {}", stats["drops"], stats["neigh"]);
    assert!(listed.keys().all(|a| a == CLIENT4 || !a.starts_with("198.18.0.")), "no made-up pinger learned");
}

/// A compromised real server (rs3) pings rvsd's port address from 100 made-up
/// addresses of the server subnet and answers rvsd's ARP requests for every one of
/// them, on a port that holds 16 learned neighbours: the made-up entries churn (each
/// new one evicts another), yet the other real servers' entries, learned before and
/// not confirmed since, stay in the table the whole time (the configuration names
/// them: they go last), and traffic through the VIP never has to resolve them again.
#[test]
fn a_host_answering_for_made_up_addresses_evicts_no_real_server() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let mut defs = toml::Table::new();
    defs.insert("max_per_port".into(), toml::Value::Integer(16));
    t.config.insert("neigh_defs".into(), toml::Value::Table(defs));
    t.start_rvsd().expect("rvsd starts");
    all_servers_answer(&t, VIP4, 15);
    let evicted = |t: &Topology| t.rvsd_stats().expect("stats")["neigh"]["evicted"].as_u64().unwrap_or(0);
    let before = evicted(&t);

    let (ns, mac) = (t.rs[2].name().to_string(), testnet::mac_to_string(&t.lb.mac("rvsdemo-lb1")));
    let attacker = std::thread::spawn(move || {
        let sender = rvs_e2e::py_script(SENDER);
        std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "timeout", "60", "python3", "-c", &sender])
            .args(["answer", "3000", "12", "5", "198.19.0", "198.19.0.1", &mac])
            .output()
            .expect("attacker")
    });
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..8 {
        let listed = neighs(&t);
        for i in 1..=3 {
            assert!(listed.contains_key(&rs4(i)), "rs{i} stays resolved under the churn: {listed:?}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let out = attacker.join().expect("attacker thread");
    assert!(out.status.success(), "attacker: {}", String::from_utf8_lossy(&out.stderr));
    let answered: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("answers counted");
    let churn = evicted(&t) - before;
    eprintln!("the attacker answered {answered} ARP requests; {churn} neighbours evicted");
    assert!(churn >= 50, "the made-up answers filled the port and churned it: {churn} evicted");
    all_servers_answer(&t, VIP4, 15);
}

#[test]
fn neighbours_in_use_survive_their_reachable_time() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let mut defs = toml::Table::new();
    defs.insert("reachable_ms".into(), toml::Value::Integer(2000));
    t.config.insert("neigh_defs".into(), toml::Value::Table(defs));
    t.start_rvsd().expect("rvsd starts");

    // Traffic for more than three reachable times, IPv4 and IPv6, none lost.
    let t0 = Instant::now();
    let mut rounds = 0;
    while t0.elapsed() < Duration::from_secs(7) {
        all_servers_answer(&t, VIP4, 15);
        all_servers_answer(&t, VIP6, 6);
        rounds += 1;
    }
    assert!(rounds >= 3, "{rounds} rounds");
    let stats = t.rvsd_stats().expect("stats");
    let neigh = &stats["neigh"];
    eprintln!("after {rounds} rounds: neigh {neigh}");
    assert!(neigh["probes"].as_u64().unwrap_or(0) >= 7, "entries were probed: {neigh}");
    assert!(neigh["confirmed"].as_u64().unwrap_or(0) >= 7, "and confirmed: {neigh}");
    assert_eq!(neigh["expired"].as_u64(), Some(0), "no live neighbour expired: {neigh}");
    let drops = &stats["drops"];
    for r in ["pending_full", "unresolved"] {
        assert!(drops.get(r).is_none(), "no packet waited in vain ({r}): {drops}");
    }
    let listed = neighs(&t);
    assert!(listed.contains_key(CLIENT4) && listed.contains_key(&rs4(1)), "still listed: {listed:?}");
}

/// A real server's MAC changes under a live connection (its address moved to another
/// NIC, or a backend pair's floating address failed over) and its kernel announces the
/// change with a gratuitous ARP (`arp_notify`): rvsd learns the new binding and the
/// connection's next packets follow it (the next hop the connection keeps reads the new
/// MAC), so a download in progress completes bit-exact.
#[test]
fn a_live_connection_follows_its_real_servers_new_mac() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, ..Spec::default() }).expect("topology");
    let want = t.serve_big_file().expect("big file");
    t.start_rvsd().expect("rvsd starts");
    all_servers_answer(&t, VIP4, 3);
    let rs = rs4(1);
    let before = neighs(&t).get(&rs).map(|n| n.0.clone()).expect("the real server is a neighbour");

    // A long download (rate-limited, so that the change lands in its middle).
    let client = t.client.name().to_string();
    let dl = std::thread::spawn(move || {
        let cmd = format!("curl -sS --max-time 90 --limit-rate 20M http://{VIP4}/big.bin | sha256sum");
        std::process::Command::new("ip").args(["netns", "exec", &client, "sh", "-c", &cmd]).output().expect("curl")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let new = "02:00:00:5e:00:a1";
    assert_ne!(before, new);
    let ns = &t.rs[0];
    assert!(ns.exec(&["sysctl", "-qw", "net.ipv4.conf.eth0.arp_notify=1"]).status.success());
    ns.ip(&["link", "set", "eth0", "address", new]);
    let out = dl.join().expect("download thread");
    let got = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string();
    assert_eq!(got, want, "the download survives the new MAC bit-exact: {}", String::from_utf8_lossy(&out.stderr));
    let after = neighs(&t).get(&rs).map(|n| n.0.clone());
    assert_eq!(after.as_deref(), Some(new), "rvsd holds the new binding");
    all_servers_answer(&t, VIP4, 3);
    let log = t.rvsd_log();
    assert!(log.contains(&format!("neighbour {rs} moved from {before} on dpdk1 to {new} on dpdk1")), "told:\n{log}");
}
