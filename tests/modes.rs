//! The forwarding modes other than FullNAT end to end, with real kernel stacks: the demo
//! topology (client | rvsd on af_packet | switch with three real servers), its services
//! switched to NAT (`fwd = "nat"`, ipvsadm -m) or DR (`fwd = "dr"`, ipvsadm -g).
//!
//! - NAT: the real servers' default route points at rvsd (198.19.0.1), as LVS-NAT needs.
//! - DR: the real servers hold the VIPs on `lo` with ARP suppressed (arp_ignore=1,
//!   arp_announce=2); their replies go to the client's second leg on the servers' switch
//!   (the "router" of a DR layout), never through rvsd.
//! - TUN: as DR, and each real server decapsulates IPIP / ip6ip6 in userspace (the test
//!   kernel has no `ipip` module: `rvs_e2e::ipip`), handing the inner packet to its
//!   kernel through a tun device.
//!
//! Each checks what the mode promises: many requests spread by the scheduler, the real
//! servers see the client's own address, a 100 MB download arrives bit-exact, UDP (a
//! real dnsmasq on each server) is spread too and answered from the VIP.

use rvs_e2e::checks::{spread_checks, urls_port};
use rvs_e2e::dns::{dns_spread, start_dnsmasq};
use rvs_e2e::ipip::IpipDecap;
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, CLIENT4, CLIENT6, LIP4, LIP6, VIP4, VIP6};

/// The client's leg on the servers' switch (DR's return path).
const CLIENT_LAN4: &str = "198.19.0.2";
const CLIENT_LAN6: &str = "2001:db8:19::2";

/// Sets every real server of the demo's services to `fwd`, with the services on `vport`.
fn set_mode(t: &mut Topology, fwd: &str, vport: i64) {
    for svc in t.config["service"].as_array_mut().expect("[[service]]") {
        svc["port"] = toml::Value::Integer(vport);
        for rs in svc["real_server"].as_array_mut().expect("real servers") {
            rs.as_table_mut().expect("table").insert("fwd".into(), toml::Value::String(fwd.into()));
        }
    }
}

/// Adds a service to the config: `proto vip:vport`, the three servers on `rport`,
/// weights 3:2:1, forwarded by `fwd`.
fn add_service(t: &mut Topology, proto: &str, vip: &str, vport: i64, rport: i64, fwd: &str) {
    let rs: Vec<toml::Value> = (1..=3)
        .map(|i| {
            let addr = if vip.contains(':') { rs6(i) } else { rs4(i) };
            toml::Value::Table(toml::toml! {
                addr = addr
                port = rport
                weight = (4 - i as i64)
                fwd = fwd
            })
        })
        .collect();
    let mut svc = toml::toml! {
        proto = proto
        vip = vip
        port = vport
        scheduler = "wrr"
        real_server = rs
    };
    if fwd == "tunnel" {
        // The tunnel's outer header leaves from the service's LIP.
        let lip = if vip.contains(':') { LIP6 } else { LIP4 };
        svc.insert("laddrs".into(), toml::Value::Array(vec![toml::Value::String(lip.into())]));
    }
    t.config["service"].as_array_mut().expect("[[service]]").push(toml::Value::Table(svc));
}

/// `[synproxy] mode = "on"`: every service without its own setting would answer SYNs
/// with cookies, as auto mode does under a flood (which the tests' own SYN rate can
/// trigger on a loaded machine). NAT services take the proxy; DR, TUN and NAT64 ones
/// must not (their SYN-ACKs bypass rvs, or come in the other family).
fn syn_proxy_everywhere(t: &mut Topology) {
    t.config.insert("synproxy".into(), toml::Value::Table(toml::toml! { mode = "on" }));
}

/// How many SYNs rvsd answered with a cookie, and how many cookie ACKs opened a
/// connection.
fn syn_proxy_counts(stats: &serde_json::Value) -> (u64, u64) {
    let n = |k: &str| stats["synproxy"][k].as_u64().unwrap_or(0);
    (n("syn_cookies_sent"), n("ack_valid"))
}

/// UDP through the mode: 300 queries, every one answered from the VIP, spread 3:2:1.
fn udp_checks(t: &Topology) {
    let (counts, fails) = dns_spread(t, VIP4, 300);
    assert_eq!(fails, 0, "every DNS query through the VIP is answered from it: {counts:?}");
    let got: Vec<usize> = (1..=3).map(|i| counts.get(&rs4(i)).copied().unwrap_or(0)).collect();
    rvs_e2e::checks::assert_weighted(&got, &[3, 2, 1]);
}

/// `rvsadm -L -n` lists the mode the way ipvsadm does.
fn listing_shows(t: &Topology, word: &str) {
    let out = t.cli_ok("rvsadm", &["-L", "-n"]);
    let rs_lines: Vec<&str> =
        out.lines().filter(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress")).collect();
    assert!(!rs_lines.is_empty(), "{out}");
    assert!(rs_lines.iter().all(|l| l.contains(word)), "every real server listed as {word}:\n{out}");
}

#[test]
fn nat_mode_end_to_end() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    set_mode(&mut t, "nat", 80);
    syn_proxy_everywhere(&mut t);
    add_service(&mut t, "udp", VIP4, 53, 53, "nat");
    // An all-ports service on the same VIP: each destination port goes to that port.
    add_service(&mut t, "tcp", VIP4, 0, 0, "nat");
    for ns in &t.rs {
        ns.ip(&["route", "add", "default", "via", "198.19.0.1"]);
        ns.ip(&["-6", "route", "add", "default", "via", "2001:db8:19::1"]);
    }
    for i in 1..=3 {
        t.start_http_on(i, 8081).expect("second HTTP server");
    }
    let _dns = start_dnsmasq(&t, None);
    let want = t.serve_big_file().expect("big.bin");
    t.start_rvsd().expect("rvsd starts");
    listing_shows(&t, "Masq");

    spread_checks(&t, VIP4, 80, CLIENT4, rs4);
    spread_checks(&t, VIP6, 80, CLIENT6, rs6);
    // The all-ports service keeps the client's destination port.
    for port in [8080, 8081] {
        let (bodies, ok) = t.curl_many(&urls_port(VIP4, port, 60, ""), 30);
        assert!(
            ok,
            "requests to {VIP4}:{port} through the all-ports service succeed; rvsd: {}\nconnections:\n{}",
            t.rvsd_stats().map(|s| s.to_string()).unwrap_or_default(),
            t.cli_ok("rvsadm", &["-L", "-n", "-c"])
        );
        assert_eq!(t.tally(&bodies).iter().sum::<usize>(), 60, "60 answers on port {port}");
    }
    udp_checks(&t);
    let got = t.download_sha(&format!("http://{VIP4}/big.bin"), 120).expect("download");
    assert_eq!(got, want, "100 MB through NAT arrives bit-exact");
    let stats = t.rvsd_stats().expect("stats");
    assert_eq!(stats["drops"]["nat_clash"].as_u64().unwrap_or(0), 0, "{stats}");
    let (cookies, opened) = syn_proxy_counts(&stats);
    assert!(cookies >= 600 && opened >= 600, "NAT connections went through the SYN proxy: {}", stats["synproxy"]);
}

/// The real-server side of LVS-DR and LVS-TUN, as the operators' write-ups set it up:
/// the VIPs on `lo`, ARP for them suppressed, replies to the clients through the
/// "router" (the client's leg on the servers' switch), not through rvsd.
fn real_servers_hold_the_vip(t: &Topology) {
    t.client_on_server_lan(CLIENT_LAN4, CLIENT_LAN6);
    for ns in &t.rs {
        ns.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"]);
        ns.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", "lo"]);
        for kv in [
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
            "net.ipv4.conf.eth0.arp_ignore=1",
            "net.ipv4.conf.eth0.arp_announce=2",
        ] {
            let _ = ns.exec(&["sysctl", "-qw", kv]);
        }
        ns.ip(&["route", "add", "198.18.0.0/24", "via", CLIENT_LAN4]);
        ns.ip(&["-6", "route", "add", "2001:db8:18::/64", "via", CLIENT_LAN6]);
    }
}

#[test]
fn dr_mode_end_to_end() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    // DR keeps the port: the services are on the servers' port.
    set_mode(&mut t, "dr", 8080);
    syn_proxy_everywhere(&mut t);
    add_service(&mut t, "udp", VIP4, 53, 0, "dr");
    real_servers_hold_the_vip(&t);
    let _dns = start_dnsmasq(&t, Some(VIP4));
    let want = t.serve_big_file().expect("big.bin");
    t.start_rvsd().expect("rvsd starts");
    listing_shows(&t, "Route");

    spread_checks(&t, VIP4, 8080, CLIENT4, rs4);
    spread_checks(&t, VIP6, 8080, CLIENT6, rs6);
    udp_checks(&t);
    let got = t.download_sha(&format!("http://{VIP4}:8080/big.bin"), 120).expect("download");
    assert_eq!(got, want, "100 MB through DR arrives bit-exact");
    // The replies never passed rvsd: what it counted out is nothing next to what went in.
    let stats = t.rvsd_stats().expect("stats");
    let (pin, pout) =
        (stats["totals"]["pkts_in"].as_u64().unwrap_or(0), stats["totals"]["pkts_out"].as_u64().unwrap_or(u64::MAX));
    assert!(pin > 0 && pout == 0, "DR: {pin} packets in, {pout} out through rvsd\n{stats}");
    assert_eq!(syn_proxy_counts(&stats), (0, 0), "DR never takes the SYN proxy: {}", stats["synproxy"]);
}

/// A blind forger who knows an idle DR connection's addresses and ports, not its
/// sequence numbers, floods it with RSTs: rvsd passes them to the server (Linux drops or
/// challenges each: RFC 5961) and keeps the connection, which answers its next request
/// well after CLOSE's 10 s would have ended it here. Any client RST used to close a DR
/// connection (IPVS's input-only table); now it must stand within `BLIND_WINDOW` of the
/// client's stream seen here. The client reads its own next sequence number
/// (`TCP_REPAIR`, as CRIU does) so that the forged one is as far from it as can be and
/// the test cannot pass by luck or fail by it.
#[test]
fn dr_forged_rsts_do_not_end_an_idle_connection() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    set_mode(&mut t, "dr", 8080);
    real_servers_hold_the_vip(&t);
    t.start_rvsd().expect("rvsd starts");
    let (ends_file, outcome) = (t.dir.join("ends"), t.dir.join("outcome"));
    // TCP_REPAIR 19, TCP_REPAIR_QUEUE 20 (TCP_SEND_QUEUE 2), TCP_QUEUE_SEQ 21.
    let script = format!(
        "import socket,struct,time,sys\ns=socket.create_connection(('{VIP4}',8080))\n\
         s.setsockopt(6,19,1)\ns.setsockopt(6,20,2)\nseq=struct.unpack('I',s.getsockopt(6,21,4))[0]\n\
         s.setsockopt(6,19,0)\nopen(sys.argv[1],'w').write('%d %d'%(s.getsockname()[1],seq))\n\
         time.sleep(14)\ns.settimeout(5)\ntry:\n    s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n    \
         r='ok' if s.recv(100).startswith(b'HTTP') else 'closed'\nexcept ConnectionResetError:\n    \
         r='reset'\nexcept socket.timeout:\n    r='timeout'\nopen(sys.argv[2],'w').write(r)\n"
    );
    let _client =
        t.client.spawn(&["python3", "-c", &script, &ends_file.display().to_string(), &outcome.display().to_string()]);
    let start = std::time::Instant::now();
    let (port, seq) = loop {
        let ends = std::fs::read_to_string(&ends_file).unwrap_or_default();
        if let Some((p, s)) = ends.split_once(' ') {
            break (p.to_string(), s.parse::<u32>().expect("the client's sequence number"));
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "the client connected");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let far = seq.wrapping_add(1 << 31).to_string();
    let flooder = t.second_client().expect("flooder");
    let out = flooder.exec(&[
        "timeout", "10", "hping3", "-q", "-R", "-a", CLIENT4, "-s", &port, "-k", "-p", "8080", "-M", &far, "-c", "300",
        "-i", "u2000", VIP4,
    ]);
    assert!(out.status.code().is_some(), "hping3 ran");
    while !outcome.exists() {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the client finished");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(std::fs::read_to_string(&outcome).expect("outcome"), "ok", "the connection outlived the flood");
    let stats = t.rvsd_stats().expect("stats");
    let unmatched = stats["events"]["rst_unmatched"].as_u64().unwrap_or(0);
    assert!(unmatched >= 250, "the forged RSTs reached rvsd and were not taken: {unmatched}\n{stats}");
}

/// Two workers: a NAT connection lives on the worker its client's address and port hash
/// to, so client packets and replies the NIC's queue choice gave the other worker are
/// handed over, and the connections spread over both (Linux clients use even ports
/// only, so the port alone would not do).
#[test]
fn nat_on_two_workers() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.config["workers"] = toml::Value::Table(toml::toml! { lcores = [1, 2] cpus = [1, 1] });
    set_mode(&mut t, "nat", 80);
    for ns in &t.rs {
        ns.ip(&["route", "add", "default", "via", "198.19.0.1"]);
    }
    t.start_rvsd().expect("rvsd starts with two workers");
    spread_checks(&t, VIP4, 80, CLIENT4, rs4);
    let (stats, out_, in_) = t.settled_redirects();
    assert!(out_ > 0, "some packets were handed to the client port's owner: {stats}");
    assert_eq!(in_, out_, "every packet handed over was received by its owner");
    assert!(stats["drops"].get("redirect").is_none(), "none lost to redirect: {}", stats["drops"]);
    let live: Vec<u64> =
        stats["workers"].as_array().expect("workers").iter().map(|w| w["conns"].as_u64().unwrap_or(0)).collect();
    assert!(live.iter().all(|n| *n > 0), "both workers hold NAT connections: {live:?}");
}

#[test]
fn tunnel_mode_end_to_end() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    // TUN keeps the port too; the outer headers come from the services' LIPs.
    set_mode(&mut t, "tunnel", 8080);
    add_service(&mut t, "udp", VIP4, 53, 0, "tunnel");
    real_servers_hold_the_vip(&t);
    let mut decaps = Vec::new();
    for ns in &t.rs {
        decaps.push(IpipDecap::start(ns, "tunl4").expect("IPIP decapsulator"));
        decaps.push(IpipDecap::start_v6(ns, "tunl6").expect("ip6ip6 decapsulator"));
        // The inner packets come in on the tun devices from clients routed elsewhere.
        for kv in
            ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.tunl4.rp_filter=0", "net.ipv6.conf.tunl6.disable_ipv6=0"]
        {
            let _ = ns.exec(&["sysctl", "-qw", kv]);
        }
    }
    let _dns = start_dnsmasq(&t, Some(VIP4));
    let want = t.serve_big_file().expect("big.bin");
    t.start_rvsd().expect("rvsd starts");
    listing_shows(&t, "Tunnel");

    spread_checks(&t, VIP4, 8080, CLIENT4, rs4);
    spread_checks(&t, VIP6, 8080, CLIENT6, rs6);
    udp_checks(&t);
    let got = t.download_sha(&format!("http://{VIP4}:8080/big.bin"), 120).expect("download");
    assert_eq!(got, want, "100 MB through TUN arrives bit-exact");
    // Every packet the servers got from rvsd was a well-formed tunnel packet.
    for d in &decaps {
        let s = d.stats();
        assert_eq!(s.malformed, 0, "{s:?}");
    }
    assert!(decaps.iter().all(|d| d.decapsulated() > 0), "every server's decapsulators were used");
    let stats = t.rvsd_stats().expect("stats");
    let (pin, pout) =
        (stats["totals"]["pkts_in"].as_u64().unwrap_or(0), stats["totals"]["pkts_out"].as_u64().unwrap_or(u64::MAX));
    assert!(pin > 0 && pout == 0, "TUN: {pin} packets in, {pout} out through rvsd\n{stats}");
}

/// NAT64: an IPv6-only client reaches IPv4-only real servers through the IPv6 VIP
/// (FullNAT from an IPv4 LIP); the servers learn the client's IPv6 address from the TOA
/// option, as DPVS's NAT64 carries it.
#[test]
fn nat64_end_to_end() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    // The IPv6 VIP's service: the IPv4 real servers, from the IPv4 LIP.
    for svc in t.config["service"].as_array_mut().expect("[[service]]") {
        if svc["vip"].as_str() == Some(VIP6) {
            svc["laddrs"] = toml::Value::Array(vec![toml::Value::String(LIP4.into())]);
            for (i, rs) in svc["real_server"].as_array_mut().expect("real servers").iter_mut().enumerate() {
                rs["addr"] = toml::Value::String(rs4(i + 1));
            }
        }
    }
    syn_proxy_everywhere(&mut t);
    // IPv4-only servers.
    for ns in &t.rs {
        ns.ip(&["-6", "addr", "flush", "dev", "eth0"]);
    }
    let want = t.serve_big_file().expect("big.bin");
    t.start_rvsd().expect("rvsd starts");
    let out = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(out.contains(&format!("[{VIP6}]:80")) && out.contains(&format!("{}:8080", rs4(1))), "{out}");

    let cap = t.capture_on_rs(1, "tcp dst port 8080").expect("capture");
    spread_checks(&t, VIP6, 80, LIP4, rs4);
    let frames = cap.finish().expect("capture frames");
    let toas = rvs_e2e::pcap::toa_options(&frames);
    assert!(!toas.is_empty(), "TOA options reach rs1 ({} frames)", frames.len());
    let client: std::net::IpAddr = CLIENT6.parse().unwrap();
    assert!(toas.iter().all(|o| o.addr == client), "the TOA carries the IPv6 client {CLIENT6}: {toas:?}");
    let got = t.download_sha(&format!("http://[{VIP6}]/big.bin"), 120).expect("download");
    assert_eq!(got, want, "100 MB through NAT64 arrives bit-exact");
    let stats = t.rvsd_stats().expect("stats");
    assert_eq!(syn_proxy_counts(&stats), (0, 0), "NAT64 never takes the SYN proxy: {}", stats["synproxy"]);
}

/// Sends a forger's traffic from made-up sources (11.0.0.0/8) to `VIP PORT` through a
/// raw socket: `tcp N SEED`, N handshakes (a SYN, then an ACK of a made-up number), or
/// `udp N SEED`, N one-byte datagrams (nothing a DNS server answers). Prints how many
/// packets it sent. (`csum`: [`rvs_e2e::PY_CSUM`].)
const FORGER: &str = r#"
import random, socket, struct, sys
mode, vip, port, n, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), random.Random(int(sys.argv[5]))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton(vip)

def ip(src, proto, l4, at):
    c = csum(src + dst + struct.pack("!BBH", 0, proto, len(l4)) + l4) or 0xFFFF
    l4 = l4[:at] + struct.pack("!H", c) + l4[at + 2:]
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), rnd.randrange(65536), 0, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + l4

sent = 0
for i in range(n):
    src = socket.inet_aton("11.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)))
    sport = rnd.randrange(1024, 65536)
    if mode == "tcp":
        seq = rnd.randrange(1 << 32)
        for (sq, ack, flags) in ((seq, 0, 0x02), ((seq + 1) & 0xFFFFFFFF, rnd.randrange(1 << 32), 0x10)):
            seg = struct.pack("!HHIIBBHHH", sport, port, sq, ack, 5 << 4, flags, 64240, 0, 0)
            s.sendto(ip(src, 6, seg, 16), (vip, 0))
            sent += 1
    else:
        s.sendto(ip(src, 17, struct.pack("!HHHH", sport, port, 9, 0) + b"x", 6), (vip, 0))
        sent += 1
print(sent)
"#;

/// A blind forger floods a DR service with handshakes from made-up sources (a SYN, then
/// an ACK: each an ESTABLISHED connection here, nothing from the server passing to say
/// otherwise), then a UDP service with single datagrams, three pools' worth of each. A
/// pool full of them used to refuse every new connection (`pool_full`) until their
/// timeouts ran out; now the unproven ones give way once idle for a second: new
/// clients' requests and DNS queries are served, and a client's connection that had
/// sent more than `PROVEN_AFTER` packets before the flood completes its request after it.
#[test]
fn dr_and_udp_floods_of_made_up_sources_neither_fill_the_pool_nor_evict_a_busy_connection() {
    const POOL: usize = 2048;
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    set_mode(&mut t, "dr", 8080);
    add_service(&mut t, "udp", VIP4, 53, 0, "dr");
    t.config["conn"]["pool_size"] = toml::Value::Integer(POOL as i64);
    real_servers_hold_the_vip(&t);
    let _dns = start_dnsmasq(&t, Some(VIP4));
    t.start_rvsd().expect("rvsd starts");

    // The busy client: its request line and ten headers, a segment each, then the
    // request's end once the flood is over.
    let (ready, go, outcome) = (t.dir.join("ready"), t.dir.join("go"), t.dir.join("outcome"));
    let script = format!(
        "import os,socket,sys,time\ns=socket.create_connection(('{VIP4}',8080))\ns.setsockopt(6,1,1)\n\
         for p in [b'GET / HTTP/1.0\\r\\n']+[b'X-%d: y\\r\\n'%i for i in range(10)]:\n    s.sendall(p)\n    \
         time.sleep(0.05)\nopen(sys.argv[1],'w').write('1')\nwhile not os.path.exists(sys.argv[2]):\n    \
         time.sleep(0.1)\ns.settimeout(10)\ntry:\n    s.sendall(b'\\r\\n')\n    \
         r='ok' if s.recv(100).startswith(b'HTTP') else 'closed'\nexcept OSError as e:\n    r=repr(e)\n\
         open(sys.argv[3],'w').write(r)\n"
    );
    let paths: Vec<String> = [&ready, &go, &outcome].iter().map(|p| p.display().to_string()).collect();
    let _client = t.client.spawn(&["python3", "-c", &script, &paths[0], &paths[1], &paths[2]]);
    let start = std::time::Instant::now();
    while !ready.exists() {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "the busy client connected and sent");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let flooder = t.second_client().expect("flooder");
    let n = (3 * POOL).to_string();
    let forger = rvs_e2e::py_script(FORGER);
    let forge = |mode: &str, port: &str| {
        let out = flooder.exec(&["timeout", "60", "python3", "-c", &forger, mode, VIP4, port, &n, "7"]);
        assert!(out.status.success(), "forger {mode}: {}", String::from_utf8_lossy(&out.stderr));
    };
    forge("tcp", "8080");
    // (The flood's connections give way once idle for a second.)
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (bodies, ok) = t.curl_many(&urls_port(VIP4, 8080, 20, ""), 10);
    let stats = t.rvsd_stats().expect("stats");
    assert!(ok, "new clients are served right after the flood: {bodies}\n{}", stats["drops"]);
    std::fs::write(&go, "").expect("go");
    while !outcome.exists() {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "the busy client finished");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&outcome).expect("outcome"), "ok", "the busy connection outlived the flood");

    forge("udp", "53");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (counts, fails) = dns_spread(&t, VIP4, 30);
    let stats = t.rvsd_stats().expect("stats");
    assert_eq!(fails, 0, "DNS through the VIP right after the UDP flood: {counts:?}\n{}", stats["drops"]);
    // Each flood is three pools, sent faster than a pool a second: its connections
    // filled the pool and, past it, were refused (none idle for a second yet) or took
    // the places of those that were; then the real clients' took theirs.
    let evicted = stats["events"]["unproven_evicted"].as_u64().unwrap_or(0);
    assert!(evicted >= 20 + 30, "each real client's connection took an idle forged one's place: {evicted}\n{stats}");
}
