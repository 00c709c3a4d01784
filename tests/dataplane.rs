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
    let want = t.serve_big_file().expect("big.bin");
    t.start_rvsd().expect("rvsd starts");
    for vip in [VIP4, VIP6] {
        let host = if vip.contains(':') { format!("[{vip}]") } else { vip.to_string() };
        let got = t.download_sha(&format!("http://{host}/big.bin"), 120).expect("download");
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

/// A client that writes its own TOA option (kind 254, claiming 1.2.3.4:80) into its
/// SYN, its handshake ACK and its data (raw socket, the kernel's RSTs held back): the
/// real servers see exactly one TOA, rvs's, with the client's true address and port,
/// and each client TOA is counted (`client_toa`).
#[test]
fn client_toa_never_reaches_a_server() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let script = t.dir.join("toa_client.py");
    std::fs::write(&script, rvs_e2e::py_script(TOA_CLIENT)).expect("write script");
    const SPORT: u16 = 45678;
    // The client's kernel would reset the handshake it knows nothing of.
    for rule in [
        "add table ip rvstoa",
        "add chain ip rvstoa out { type filter hook output priority 0 ; }",
        "add rule ip rvstoa out tcp sport 45678 tcp flags & rst == rst drop",
    ] {
        let out = t.client_exec(&["nft", rule]);
        assert!(out.status.success(), "nft {rule}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let caps: Vec<_> = (1..=3).map(|i| t.capture_on_rs(i, "tcp dst port 8080").expect("capture")).collect();
    let out = t.client_exec(&["python3", &script.display().to_string(), CLIENT4, VIP4, &SPORT.to_string(), "80"]);
    assert!(
        out.status.success(),
        "raw client: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: Vec<Vec<u8>> = caps.into_iter().flat_map(|c| c.finish().expect("capture frames")).collect();
    let segs: Vec<_> = frames
        .iter()
        .filter_map(|f| match etherparse::SlicedPacket::from_ethernet(f).ok()?.transport? {
            etherparse::TransportSlice::Tcp(tcp) => Some((tcp.syn(), tcp.payload().len())),
            _ => None,
        })
        .collect();
    assert!(segs.iter().any(|s| s.0), "the SYN reached a real server: {segs:?}");
    assert!(segs.iter().any(|s| s.1 > 0), "the data reached a real server: {segs:?}");
    let toas = rvs_e2e::pcap::toa_options(&frames);
    let client: std::net::IpAddr = CLIENT4.parse().unwrap();
    assert_eq!(
        toas,
        vec![rvs_e2e::pcap::Toa { addr: client, port: SPORT }],
        "exactly one TOA, rvs's, with the client's true address ({} segments seen)",
        segs.len()
    );
    let counted = t.rvsd_stats().expect("stats")["drops"]["client_toa"].as_u64().unwrap_or(0);
    assert_eq!(counted, 3, "the client's TOA in SYN, ACK and data, each counted");
}

/// The raw client of [`client_toa_never_reaches_a_server`]: SYN, handshake ACK and a
/// request, each with a TOA option claiming 1.2.3.4:80.
const TOA_CLIENT: &str = r#"
import socket, struct, sys, time
src, dst, sport, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def seg(seq, ack, flags, opts=b"", data=b""):
    while len(opts) % 4:
        opts += b"\0"
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 64240, 0, 0) + opts + data
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(h))
    return h[:16] + struct.pack("!H", csum(ph + h)) + h[18:]

lie = bytes([254, 8]) + struct.pack("!H", 80) + socket.inet_aton("1.2.3.4")
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s.settimeout(5)
isn = 1000
s.sendto(seg(isn, 0, 0x02, struct.pack("!BBH", 2, 4, 1400) + lie), (dst, 0))
while True:
    pkt, _ = s.recvfrom(65535)
    t = pkt[(pkt[0] & 0xF) * 4:]
    sp, dp, sq, ak, off, fl = struct.unpack("!HHIIBB", t[:14])
    if socket.inet_ntoa(pkt[12:16]) == dst and sp == dport and dp == sport and fl & 0x12 == 0x12:
        break
s.sendto(seg(isn + 1, sq + 1, 0x10, lie), (dst, 0))
s.sendto(seg(isn + 1, sq + 1, 0x18, lie, b"GET / HTTP/1.0\r\n\r\n"), (dst, 0))
time.sleep(1)
print("sent")
"#;
