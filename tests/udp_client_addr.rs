//! The client's address on UDP FullNAT services, end to end.
//!
//! DPVS's UOA: a UDP service with `uoa`, a real dnsmasq behind it, and the option
//! decoded from what the real server's interface captured.
//!
//! - `ipo`: every query (a new flow each) reaches the server with the client's address
//!   and port in an IPv4 option; Linux ignores the unknown option, so dnsmasq answers
//!   every query.
//! - `opp`: the first three datagrams of a flow come as IP protocol 248 with the option
//!   in a shim header; this server has no `uoa` module, so it drops those, and the flow's
//!   fourth datagram (plain UDP) is the first answered.

use rvs_e2e::dns::{dns_spread, start_dnsmasq};
use rvs_e2e::{rs4, serial, Spec, Topology, CLIENT4, LIP4, VIP4};
use wire::uoa::{find_uoa, OppPacket};

/// The UDP service VIP:53 → rs1:`rport` from the LIP, with `key = value` (`uoa`,
/// `proxy_protocol`).
fn udp_service(t: &mut Topology, rport: i64, key: &str, value: &str) {
    let mut svc = toml::toml! {
        proto = "udp"
        vip = VIP4
        port = 53
        scheduler = "rr"
        laddrs = [LIP4]
        [[real_server]]
        addr = (rs4(1))
        port = rport
    };
    svc.insert(key.into(), toml::Value::String(value.into()));
    t.config["service"].as_array_mut().expect("[[service]]").push(toml::Value::Table(svc));
}

/// The UOA carried by each captured IPv4 frame to the server's port 53: in the options
/// (`ipo`) or in the shim header of protocol 248 (`opp`).
fn carried(frames: &[Vec<u8>]) -> Vec<(u8, Option<std::net::SocketAddr>)> {
    frames
        .iter()
        .filter(|f| f.len() > 34 && f[12..14] == [0x08, 0x00])
        .map(|f| {
            let ip = &f[14..];
            let hlen = usize::from(ip[0] & 0x0f) * 4;
            let uoa = match ip[9] {
                17 => find_uoa(&ip[20..hlen]).expect("well-formed options").map(|u| u.src),
                248 => OppPacket::new_checked(&ip[hlen..])
                    .expect("a shim header")
                    .uoa()
                    .expect("its option")
                    .map(|u| u.src),
                _ => None,
            };
            (ip[9], uoa)
        })
        .collect()
}

#[test]
fn uoa_in_ip_options_and_in_the_shim_header() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    udp_service(&mut t, 53, "uoa", "ipo");
    let _dns = start_dnsmasq(&t, None);
    t.start_rvsd().expect("rvsd starts");
    let listed = t.cli_ok("rvsadm", &["-L", "-n", "-u", &format!("{VIP4}:53")]);
    assert!(listed.contains("rr uoa-ipo"), "{listed}");

    let cap = t.capture_on_rs(1, "dst port 53").expect("capture");
    let (counts, fails) = dns_spread(&t, VIP4, 50);
    let frames = cap.finish().expect("frames");
    assert_eq!(fails, 0, "dnsmasq answers datagrams with the option: {counts:?}");
    let got = carried(&frames);
    assert_eq!(got.len(), 50, "one datagram per query: {got:?}");
    assert!(
        got.iter().all(|(p, u)| *p == 17 && u.is_some_and(|a| a.ip().to_string() == CLIENT4)),
        "every query carries the client {CLIENT4} in an IPv4 option: {got:?}"
    );

    // opp: one flow of five datagrams.
    t.cli_ok("rvsadm", &["-E", "-u", &format!("{VIP4}:53"), "-s", "rr", "--uoa", "opp"]);
    const FLOW: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5300))
s.settimeout(1)
for i in range(5):
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x02rs\x04test\x00" + struct.pack(">HH", 1, 1)
    s.sendto(q, (sys.argv[1], 53))
    try:
        d, a = s.recvfrom(512)
        print(i, "answered")
    except socket.timeout:
        print(i, "lost")
"#;
    let script = t.dir.join("flow.py");
    std::fs::write(&script, FLOW).unwrap();
    let cap = t.capture_on_rs(1, "ip proto 248 or dst port 53").expect("capture");
    let out = t.client_exec(&["python3", &script.display().to_string(), VIP4]);
    let frames = cap.finish().expect("frames");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "0 lost\n1 lost\n2 lost\n3 answered\n4 answered\n", "{}", String::from_utf8_lossy(&out.stderr));
    let got = carried(&frames);
    let client: std::net::SocketAddr = format!("{CLIENT4}:5300").parse().unwrap();
    assert_eq!(
        got,
        vec![(248, Some(client)), (248, Some(client)), (248, Some(client)), (17, None), (17, None)],
        "the first three in the shim header, then plain UDP"
    );
    let stats = t.rvsd_stats().expect("stats");
    assert_eq!(stats["events"]["uoa_inserted"].as_u64(), Some(53), "50 + 3: {}", stats["events"]);
}

/// A UDP server that reads the PROXY protocol v2 header in front of each datagram (as
/// nginx's `listen ... udp proxy_protocol` does) and answers with the client it names.
const PP_SERVER: &str = r#"
import socket, struct, sys
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, peer = s.recvfrom(2048)
    if d[:12] != SIG or d[12] != 0x21 or d[13] != 0x12:
        s.sendto(b"no header", peer)
        continue
    n = struct.unpack(">H", d[14:16])[0]
    src, dst = socket.inet_ntoa(d[16:20]), socket.inet_ntoa(d[20:24])
    sport, dport = struct.unpack(">HH", d[24:28])
    s.sendto(("%s:%d %s:%d %s" % (src, sport, dst, dport, d[16 + n:].decode())).encode(), peer)
"#;

/// PROXY protocol v2 on a UDP service: each datagram reaches the server with the header
/// naming the client and the VIP; the server's answers reach the client.
#[test]
fn proxy_protocol_v2_in_every_datagram() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    udp_service(&mut t, 5353, "proxy_protocol", "v2");
    let server = t.dir.join("pp_server.py");
    std::fs::write(&server, PP_SERVER).unwrap();
    let _srv = t.rs[0].spawn(&["python3", &server.display().to_string(), &rs4(1), "5353"]);
    t.start_rvsd().expect("rvsd starts");
    const CLIENT: &str = r#"
import socket, sys
for flow in range(10):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 5400 + flow))
    s.settimeout(2)
    for i in range(3):
        msg = "f%d-%d" % (flow, i)
        for attempt in range(3):
            s.sendto(msg.encode(), (sys.argv[1], 53))
            try:
                print(s.recvfrom(512)[0].decode())
                break
            except socket.timeout:
                pass
"#;
    let client = t.dir.join("pp_client.py");
    std::fs::write(&client, CLIENT).unwrap();
    let out = t.client_exec(&["python3", &client.display().to_string(), VIP4]);
    let text = String::from_utf8_lossy(&out.stdout);
    let want: String =
        (0..10).flat_map(|f| (0..3).map(move |i| format!("{CLIENT4}:{} {VIP4}:53 f{f}-{i}\n", 5400 + f))).collect();
    assert_eq!(text, want, "{}", String::from_utf8_lossy(&out.stderr));
}
