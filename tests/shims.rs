//! The userspace shims that stand in for kernel modules this test kernel lacks, each
//! proven against real kernel stacks in namespaces of its own (nothing of rvsd here):
//!
//! - `IpipDecap` (no `ipip` / `ip6_tunnel`): A sends hand-built IPIP (and IPv6-in-IPv6)
//!   echo requests to B; B's kernel answers them directly, which it can only do if the
//!   shim delivered the inner packets to it; without the shim, nothing answers.
//! - `VlanShim` (no `8021q`): C and D ping each other through two shims and a tagged
//!   link between them; tcpdump on that link sees VLAN 100 on every frame; frames with
//!   another VID, untagged on the trunk or tagged on the access side go nowhere.
//!
//! ```text
//!  A a0 198.18.99.1 ───── b0 198.18.99.2  B   tunl_rs 198.19.99.1/32 (IpipDecap)
//!
//!  C c0 198.18.97.1 ── sa S st ══ VLAN 100 ══ tt T ta ── d0 198.18.97.2 D
//!                       VlanShim               VlanShim
//! ```
//!
//! Needs root, iproute2, python3 and tcpdump (scripts/setup.sh).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rvs_e2e::ipip::{inner_of_ipv4, inner_of_ipv6_payload, IpipDecap, IpipStats};
use rvs_e2e::vlan::{VlanShim, VlanStats};
use testnet::{ChildGuard, NetNs};

/// Sends IPIP (`4 SRC OUTER_DST INNER_DST COUNT BAD`) or IPv6-in-IPv6 (`6 ...`) packets
/// with a raw socket of protocol 4 / 41 (the kernel adds the outer header), each an echo
/// request from SRC to INNER_DST, after BAD malformed ones; waits up to a second for each
/// reply on a plain ICMP / ICMPv6 raw socket (an encapsulated reply would not show up
/// there) and prints how many came back.
const IPIP_SENDER: &str = r#"
import os, socket, struct, sys, time

fam, src, outer_dst, inner_dst, count, bad = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
ident = os.getpid() & 0xffff
payload = b"rvs shim test"

def echo4(seq):
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                     socket.inet_aton(src), socket.inet_aton(inner_dst))
    return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + icmp

def echo6(seq):
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, inner_dst)
    icmp = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload
    pseudo = s + d + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", csum(pseudo + icmp)) + icmp[4:]
    return struct.pack("!IHBB", 0x60000000, len(icmp), 58, 64) + s + d + icmp

if fam == "4":
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    echo, garbage = echo4, b"\x45\x00\x00\x10" + b"\x00" * 16
else:
    tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
    rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    echo, garbage = echo6, b"\x45" + b"\x00" * 39
rx.settimeout(0.1)
want = socket.inet_pton(socket.AF_INET if fam == "4" else socket.AF_INET6, inner_dst)

def reply(data, addr):
    if socket.inet_pton(rx.family, addr[0]) != want:
        return None
    if fam == "4":
        data = data[(data[0] & 15) * 4:]
        kind = 0
    else:
        kind = 129
    if len(data) < 8 or data[0] != kind:
        return None
    i, seq = struct.unpack("!HH", data[4:8])
    return seq if i == ident else None

for _ in range(bad):
    tx.sendto(garbage, (outer_dst, 0))
replies = 0
for seq in range(1, count + 1):
    tx.sendto(echo(seq), (outer_dst, 0))
    end = time.time() + 1.0
    while time.time() < end:
        try:
            data, addr = rx.recvfrom(4096)
        except socket.timeout:
            continue
        if reply(data, addr) == seq:
            replies += 1
            break
print(replies)
"#;

/// Sends raw Ethernet frames out of DEV: `tagged VID` (broadcast, TPID 0x8100, VID,
/// ethertype 0x88b5) or `untagged` (broadcast, ethertype 0x88b5).
const FRAME_SENDER: &str = r#"
import socket, struct, sys
dev, kind = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x99"
body = b"\x88\xb5" + b"rvs vlan shim test".ljust(46, b"\0")
if kind == "tagged":
    s.send(head + struct.pack("!HH", 0x8100, int(sys.argv[3])) + body)
else:
    s.send(head + body)
"#;

/// Runs `python3 -c SCRIPT ARGS...` in `ns`, panicking with its output if it fails, and
/// returns its standard output.
fn python(ns: &NetNs, script: &str, args: &[&str]) -> String {
    let mut v = vec!["python3", "-c", script];
    v.extend_from_slice(args);
    let out = ns.exec(&v);
    assert!(
        out.status.success(),
        "python3 {args:?} in {}: {}{}",
        ns.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sysctl -qw K=V...` in `ns`.
fn sysctl(ns: &NetNs, settings: &[&str]) {
    let mut v = vec!["sysctl", "-qw"];
    v.extend_from_slice(settings);
    let out = ns.exec(&v);
    assert!(out.status.success(), "sysctl {settings:?} in {}: {}", ns.name(), String::from_utf8_lossy(&out.stderr));
}

/// A veth pair from `a`'s `a_dev` to `b`'s `b_dev`, both up; it goes with the namespaces.
fn link(a: &NetNs, a_dev: &str, b: &NetNs, b_dev: &str) {
    a.ip(&["link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b.name()]);
    a.ip(&["link", "set", a_dev, "up"]);
    b.ip(&["link", "set", b_dev, "up"]);
}

/// Waits until `f` holds (polling), for at most `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A and B with the decapsulator and `tunl_rs` in B, for `fam` "4" or "6"; returns the
/// namespaces, the shim and the addresses (A's, B's, the one on `tunl_rs`).
fn ipip_pair(fam: &str) -> (NetNs, NetNs, IpipDecap, [&'static str; 3]) {
    let (a, b) = (NetNs::new("rvsia"), NetNs::new("rvsib"));
    link(&a, "a0", &b, "b0");
    let decap = match fam {
        "4" => IpipDecap::start(&b, "tunl_rs"),
        _ => IpipDecap::start_v6(&b, "tunl_rs"),
    }
    .expect("start the decapsulator");
    let addrs = if fam == "4" {
        a.ip(&["addr", "add", "198.18.99.1/24", "dev", "a0"]);
        b.ip(&["addr", "add", "198.18.99.2/24", "dev", "b0"]);
        b.ip(&["addr", "add", "198.19.99.1/32", "dev", "tunl_rs"]);
        // The inner source is routed out of b0 (the connected route back to A), not the
        // TUN device it arrives on: strict reverse-path filtering would drop it.
        sysctl(&b, &["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.tunl_rs.rp_filter=0"]);
        ["198.18.99.1", "198.18.99.2", "198.19.99.1"]
    } else {
        a.ip(&["addr", "add", "2001:db8:99::1/64", "dev", "a0", "nodad"]);
        b.ip(&["addr", "add", "2001:db8:99::2/64", "dev", "b0", "nodad"]);
        b.ip(&["addr", "add", "2001:db8:98::1/128", "dev", "tunl_rs", "nodad"]);
        ["2001:db8:99::1", "2001:db8:99::2", "2001:db8:98::1"]
    };
    (a, b, decap, addrs)
}

/// The IPIP scenario for `fam`: replies come back while the shim runs, exactly the
/// packets sent are counted, and after it drops nothing answers and the device is gone.
fn ipip_round_trip(fam: &str) {
    let (a, b, decap, [a_addr, b_addr, tun_addr]) = ipip_pair(fam);
    assert_eq!(decap.tun_name(), "tunl_rs");
    let replies = python(&a, &rvs_e2e::py_script(IPIP_SENDER), &[fam, a_addr, b_addr, tun_addr, "3", "1"]);
    assert_eq!(replies.trim(), "3", "echo replies from {tun_addr} through the shim; shim: {:?}", decap.stats());
    // Counted once the thread has handled the last packet (the replies prove it has).
    let want = IpipStats { received: 4, decapsulated: 3, malformed: 1, write_errors: 0 };
    assert!(wait_for(Duration::from_secs(2), || decap.stats() == want), "{:?} != {want:?}", decap.stats());
    assert_eq!((decap.received(), decap.decapsulated(), decap.malformed()), (4, 3, 1));

    drop(decap);
    assert!(!b.exec(&["ip", "link", "show", "tunl_rs"]).status.success(), "tunl_rs outlived the shim");
    let replies = python(&a, &rvs_e2e::py_script(IPIP_SENDER), &[fam, a_addr, b_addr, tun_addr, "1", "0"]);
    assert_eq!(replies.trim(), "0", "a reply without the shim: the kernel decapsulated by itself?");
}

#[test]
fn ipip_decap_delivers_the_inner_packet_to_the_real_stack() {
    ipip_round_trip("4");
}

#[test]
fn ip6ip6_decap_delivers_the_inner_packet_to_the_real_stack() {
    ipip_round_trip("6");
}

#[test]
fn ipip_decap_refuses_a_bad_tun_name() {
    let ns = NetNs::new("rvsib");
    assert!(IpipDecap::start(&ns, "").is_err());
    assert!(IpipDecap::start(&ns, "a-name-too-long-for-linux").is_err());
}

#[test]
fn ipip_inner_packet_parsing() {
    fn ipv4(proto: u8, ihl_words: u8, payload: &[u8]) -> Vec<u8> {
        let hl = usize::from(ihl_words) * 4;
        let mut p = vec![0u8; hl];
        p[0] = 0x40 | ihl_words;
        p[2..4].copy_from_slice(&u16::try_from(hl + payload.len()).unwrap().to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p.extend_from_slice(payload);
        p
    }
    let inner = ipv4(1, 5, &[8, 0, 0, 0, 0, 1, 0, 1]);
    for ihl in [5, 6, 15] {
        assert_eq!(inner_of_ipv4(&ipv4(4, ihl, &inner)), Some(&inner[..]), "outer IHL {ihl}");
    }
    // Bytes past either total length are not part of the inner packet.
    let mut padded = ipv4(4, 5, &inner);
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(inner_of_ipv4(&padded), Some(&inner[..]));

    let good = ipv4(4, 5, &inner);
    assert!(inner_of_ipv4(&good[..19]).is_none(), "short outer header");
    assert!(inner_of_ipv4(&good[..good.len() - 1]).is_none(), "outer total length past the end");
    assert!(inner_of_ipv4(&ipv4(17, 5, &inner)).is_none(), "not protocol 4");
    let mut bad = good.clone();
    bad[0] = 0x44;
    assert!(inner_of_ipv4(&bad).is_none(), "outer IHL below 5");
    let mut bad = good.clone();
    bad[20] = 0x65;
    assert!(inner_of_ipv4(&bad).is_none(), "inner not IPv4");
    assert!(inner_of_ipv4(&ipv4(4, 5, &[0x45, 0, 0])).is_none(), "short inner");

    let mut v6 = vec![0u8; 48];
    v6[0] = 0x60;
    v6[5] = 8;
    assert_eq!(inner_of_ipv6_payload(&v6).map(<[u8]>::len), Some(48));
    assert!(inner_of_ipv6_payload(&v6[..47]).is_none(), "payload length past the end");
    v6[0] = 0x45;
    assert!(inner_of_ipv6_payload(&v6).is_none(), "inner not IPv6");
}

/// tcpdump in `ns` on `dev`, printing link-level headers, for `count` frames matching
/// `filter`; returns once it is listening. [`Tcpdump::lines`] waits for it to finish.
struct Tcpdump {
    _child: ChildGuard,
    out: mpsc::Receiver<String>,
}

impl Tcpdump {
    fn start(ns: &NetNs, dev: &str, count: u32, filter: &str) -> Tcpdump {
        let count = count.to_string();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "timeout", "10", "tcpdump", "-l", "-e", "-nn", "-i", dev, "-c", &count])
            .args(filter.split_whitespace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let child = ChildGuard::new(child);
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut s);
            let _ = tx.send(s);
        });
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = ready_tx.send(());
                }
            }
        });
        ready.recv_timeout(Duration::from_secs(5)).expect("tcpdump listening");
        Tcpdump { _child: child, out }
    }

    fn lines(self) -> Vec<String> {
        let out = self.out.recv_timeout(Duration::from_secs(12)).expect("tcpdump's output");
        out.lines().map(str::to_string).collect()
    }
}

#[test]
fn vlan_shims_carry_a_ping_over_a_tagged_link() {
    let (c, s, t, d) = (NetNs::new("rvsvc"), NetNs::new("rvsvs"), NetNs::new("rvsvt"), NetNs::new("rvsvd"));
    // IPv6 off everywhere: no stray router solicitations or MLD reports, so what the
    // shims count is this test's traffic.
    for ns in [&c, &s, &t, &d] {
        sysctl(ns, &["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    link(&c, "c0", &s, "sa");
    link(&s, "st", &t, "tt");
    link(&t, "ta", &d, "d0");
    c.ip(&["addr", "add", "198.18.97.1/24", "dev", "c0"]);
    d.ip(&["addr", "add", "198.18.97.2/24", "dev", "d0"]);

    assert!(VlanShim::start(&s, "st", 0, "sa").is_err(), "VLAN 0");
    assert!(VlanShim::start(&s, "st", 4095, "sa").is_err(), "VLAN 4095");
    assert!(VlanShim::start(&s, "nosuch", 100, "sa").is_err(), "no trunk");
    let s_shim = VlanShim::start(&s, "st", 100, "sa").expect("the shim in S");
    let t_shim = VlanShim::start(&t, "tt", 100, "ta").expect("the shim in T");
    assert_eq!(s_shim.vid(), 100);

    // Without the peer shim's untagging, nothing would answer: D sees only what T's
    // shim hands it.
    let dump = Tcpdump::start(&s, "st", 4, "vlan 100 and icmp");
    let ping = c.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.97.2"]);
    assert!(
        ping.status.success(),
        "ping C → D through both shims: {}\nS: {:?}\nT: {:?}",
        String::from_utf8_lossy(&ping.stdout),
        s_shim.stats(),
        t_shim.stats()
    );
    let lines = dump.lines();
    assert_eq!(lines.len(), 4, "tcpdump on the trunk: {lines:?}");
    for l in &lines {
        assert!(l.contains("ethertype 802.1Q (0x8100)") && l.contains("vlan 100"), "untagged on the trunk: {l}");
    }
    // ARP request and reply, then 3 echo requests and 3 replies, each way through each.
    let (ss, ts) = (s_shim.stats(), t_shim.stats());
    for (name, st) in [("S", ss), ("T", ts)] {
        assert!(st.tagged >= 4 && st.untagged >= 4, "{name}: {st:?}");
        assert_eq!((st.dropped, st.send_errors), (0, 0), "{name}: {st:?}");
    }

    // Another VID and an untagged frame on the trunk (from T, towards S), a tagged frame
    // on the access side (from C): all three dropped by S's shim, none by T's (a
    // socket does not see what goes out of its interface). A frame tagged 100 passes.
    python(&t, FRAME_SENDER, &["tt", "tagged", "101"]);
    python(&t, FRAME_SENDER, &["tt", "untagged"]);
    python(&c, FRAME_SENDER, &["c0", "tagged", "100"]);
    python(&t, FRAME_SENDER, &["tt", "tagged", "100"]);
    let want = |st: VlanStats| st.dropped == 3 && st.untagged > ss.untagged;
    assert!(wait_for(Duration::from_secs(2), || want(s_shim.stats())), "S after injection: {:?}", s_shim.stats());
    assert_eq!(t_shim.stats().dropped, 0, "T: {:?}", t_shim.stats());
    assert_eq!(s_shim.stats().send_errors, 0);

    // Stopping one shim cuts the link.
    drop(t_shim);
    let ping = c.exec(&["ping", "-c", "1", "-W", "1", "198.18.97.2"]);
    assert!(!ping.status.success(), "ping through a stopped shim");
    drop(s_shim);
}
