//! IP fragments through a real rvsd (issue 12, scope 6). rvsd runs on two DPDK pcap
//! ports (as in `drops.rs`): dpdk0 reads crafted client frames from a capture file, at
//! start; what dpdk1 sends is written to another file, read back here after rvsd stops.
//! A UDP datagram to a UDP service, cut into three IPv4 fragments, must leave as three
//! fragments that reassemble (here) into a datagram from LIP:lport to RIP:53 whose UDP
//! checksum etherparse finds right; the same over IPv6; a later fragment whose first
//! never came is dropped as `fragment_no_first`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rvs_e2e::{serial, workspace_bin};
use testnet::{unique, ChildGuard};
use wire::builder::PacketBuilder;
use wire::{EthernetAddress, IpProtocol, Ipv4Packet, Ipv6Packet};

/// The pcap PMD's MACs: 02:70:63:61:70 ("pcap") and the device's index.
const M0: EthernetAddress = EthernetAddress([0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
const M1: EthernetAddress = EthernetAddress([0x02, 0x70, 0x63, 0x61, 0x70, 0x01]);
const CLIENT: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xc1]);
const SERVER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x51]);

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const RS: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
const ETH: usize = 14;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    for v in [0xa1b2c3d4u32.to_le_bytes().to_vec(), 2u16.to_le_bytes().to_vec(), 4u16.to_le_bytes().to_vec()] {
        out.extend(v);
    }
    for v in [0u32, 0, 65535, 1] {
        out.extend(v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for v in [1u32, i as u32, f.len() as u32, f.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend(f);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// Cuts the IPv4 packet of an Ethernet frame into fragment frames of `chunk` bytes.
fn split_v4(frame: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let (eth, pkt) = frame.split_at(ETH);
    let p = Ipv4Packet::new_checked(pkt).unwrap();
    let hl = p.header_len();
    let payload = &pkt[hl..p.total_len() as usize];
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = eth.to_vec();
            f.extend_from_slice(&pkt[..hl]);
            f.extend_from_slice(part);
            let mut q = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            q.set_total_len((hl + part.len()) as u16);
            q.set_frag_offset((i * chunk) as u16);
            q.set_more_frags(i + 1 < n);
            q.fill_checksum();
            f
        })
        .collect()
}

/// Cuts the IPv6 packet of an Ethernet frame (no extension headers) into fragment
/// frames of `chunk` bytes with identification `ident`.
fn split_v6(frame: &[u8], chunk: usize, ident: u32) -> Vec<Vec<u8>> {
    let (eth, pkt) = frame.split_at(ETH);
    let p = Ipv6Packet::new_checked(pkt).unwrap();
    let next = p.next_header();
    let payload = p.payload();
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = eth.to_vec();
            f.extend_from_slice(&pkt[..40]);
            f.extend_from_slice(&[next.0, 0]);
            f.extend_from_slice(&(((i * chunk) as u16) | u16::from(i + 1 < n)).to_be_bytes());
            f.extend_from_slice(&ident.to_be_bytes());
            f.extend_from_slice(part);
            let mut q = Ipv6Packet::new_unchecked(&mut f[ETH..]);
            q.set_next_header(IpProtocol::FRAGMENT);
            q.set_payload_len((8 + part.len()) as u16);
            f
        })
        .collect()
}

/// The IPv4 fragments (bare IP) among `frames`, reassembled, if complete.
fn reassemble_v4(frames: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut fs: Vec<&[u8]> = frames
        .iter()
        .filter(|f| f.len() > ETH + 20 && f[12..14] == [0x08, 0x00])
        .map(|f| &f[ETH..])
        .filter(|p| Ipv4Packet::new_checked(*p).is_ok_and(|q| q.is_fragment()))
        .collect();
    fs.sort_by_key(|p| Ipv4Packet::new_checked(*p).unwrap().frag_offset());
    let hl = Ipv4Packet::new_checked(*fs.first()?).unwrap().header_len();
    let mut out = fs[0][..hl].to_vec();
    let mut last = false;
    for p in fs {
        let q = Ipv4Packet::new_checked(p).unwrap();
        if q.frag_offset() as usize != out.len() - hl {
            return None;
        }
        out.extend_from_slice(q.payload());
        last = !q.more_frags();
    }
    if !last {
        return None;
    }
    let len = out.len() as u16;
    let mut q = Ipv4Packet::new_unchecked(&mut out[..]);
    q.set_total_len(len);
    q.set_frag_offset(0);
    q.set_more_frags(false);
    q.fill_checksum();
    Some(out)
}

/// The IPv6 fragments (as [`split_v6`] makes them) among `frames`, reassembled.
fn reassemble_v6(frames: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut fs: Vec<&[u8]> = frames
        .iter()
        .filter(|f| f.len() > ETH + 48 && f[12..14] == [0x86, 0xdd] && f[ETH + 6] == IpProtocol::FRAGMENT.0)
        .map(|f| &f[ETH..])
        .collect();
    let off = |p: &[u8]| u16::from_be_bytes([p[42], p[43]]);
    fs.sort_by_key(|p| off(p) & 0xfff8);
    let first = *fs.first()?;
    let mut out = first[..40].to_vec();
    let mut last = false;
    for p in &fs {
        if (off(p) & 0xfff8) as usize != out.len() - 40 {
            return None;
        }
        out.extend_from_slice(&p[48..40 + Ipv6Packet::new_checked(*p).unwrap().payload_len() as usize]);
        last = off(p) & 1 == 0;
    }
    if !last {
        return None;
    }
    let len = (out.len() - 40) as u16;
    let mut q = Ipv6Packet::new_unchecked(&mut out[..]);
    q.set_next_header(IpProtocol(first[40]));
    q.set_payload_len(len);
    Some(out)
}

/// Addresses, ports, payload of a whole UDP datagram, its checksum verified by etherparse.
fn judge_udp(ip: &[u8]) -> (IpAddr, u16, IpAddr, u16, Vec<u8>) {
    let sp = etherparse::SlicedPacket::from_ip(ip).expect("etherparse");
    let Some(etherparse::TransportSlice::Udp(u)) = sp.transport else { panic!("not UDP: {ip:02x?}") };
    let h = u.to_header();
    let (src, dst, want) = match sp.net.expect("IP") {
        etherparse::NetSlice::Ipv4(p) => {
            let (s, d) = (p.header().source(), p.header().destination());
            (IpAddr::from(s), IpAddr::from(d), h.calc_checksum_ipv4_raw(s, d, u.payload()).unwrap())
        }
        etherparse::NetSlice::Ipv6(p) => {
            let (s, d) = (p.header().source(), p.header().destination());
            (IpAddr::from(s), IpAddr::from(d), h.calc_checksum_ipv6_raw(s, d, u.payload()).unwrap())
        }
    };
    assert_eq!(h.checksum, want, "UDP checksum of the reassembled datagram");
    (src, h.source_port, dst, h.destination_port, u.payload().to_vec())
}

fn config(dir: &Path, prefix: &str) -> String {
    let p = |n: &str| dir.join(n).display().to_string();
    format!(
        r#"
[eal]
args = ["--no-huge", "-m", "256", "--log-level=lib.eal:warning"]
file_prefix = "{prefix}"

[workers]
lcores = [1]
cpus = [1]

[mempool]
mbufs = 4095
cache = 64

[[port]]
name = "fr0"
vdev = "net_pcap0,rx_pcap={in0},tx_pcap={out0}"
rss = false
twin = "none"

[[port]]
name = "fr1"
vdev = "net_pcap1,rx_pcap={in1},tx_pcap={out1}"
rss = false
twin = "none"

[[addr]]
dev = "fr0"
addr = "198.51.100.1/24"

[[addr]]
dev = "fr0"
addr = "192.0.2.1/32"

[[addr]]
dev = "fr0"
addr = "2001:db8:f::1/128"

[[addr]]
dev = "fr1"
addr = "10.1.0.1/8"
sapool = true

[[addr]]
dev = "fr1"
addr = "fd00::1/64"
sapool = true

[[neigh]]
dev = "fr1"
addr = "10.2.0.1"
mac = "02:00:00:00:00:51"

[[neigh]]
dev = "fr1"
addr = "fd00::2"
mac = "02:00:00:00:00:51"

[[service]]
proto = "udp"
vip = "192.0.2.1"
port = 53
scheduler = "rr"
laddrs = ["10.1.0.1"]
real_server = [{{ addr = "10.2.0.1", port = 53 }}]

[[service]]
proto = "udp"
vip = "2001:db8:f::1"
port = 53
scheduler = "rr"
laddrs = ["fd00::1"]
real_server = [{{ addr = "fd00::2", port = 53 }}]

[control]
socket = "{sock}"
"#,
        in0 = p("in0.pcap"),
        out0 = p("out0.pcap"),
        in1 = p("in1.pcap"),
        out1 = p("out1.pcap"),
        sock = p("rvsd.sock"),
    )
}

/// Per-worker totals (`pkts_in`, `conns`) and drops by name, summed over the
/// workers, from `rvsip --json stats`.
fn counters(sock: &Path) -> Option<BTreeMap<String, u64>> {
    let out = Command::new(workspace_bin("rvsip"))
        .args(["--socket", &sock.display().to_string(), "--json", "stats"])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut sum = BTreeMap::new();
    for w in v["workers"].as_array()? {
        for k in ["pkts_in", "conns"] {
            *sum.entry(k.to_string()).or_default() += w["totals"][k].as_u64()?;
        }
        for (k, n) in w["drops"].as_object()? {
            *sum.entry(k.clone()).or_default() += n.as_u64()?;
        }
    }
    Some(sum)
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn fragmented_udp_datagrams_leave_as_fragments_of_the_translated_datagram() {
    let _g = serial();
    let prefix = unique("rvsfr");
    let dir = Dir(std::env::temp_dir().join(&prefix));
    std::fs::create_dir_all(&dir.0).unwrap();

    let data4: Vec<u8> = (0..1000u32).map(|i| (i * 13 + 1) as u8).collect();
    let data6: Vec<u8> = (0..900u32).map(|i| (i * 7 + 5) as u8).collect();
    let d4 = PacketBuilder::eth(CLIENT, M0).ipv4(CIP, VIP).ident(0x4242).udp(5353, 53).payload(&data4).build();
    let d6 =
        PacketBuilder::eth(CLIENT, M0).ipv6(v6("2001:db8:c::7"), v6("2001:db8:f::1")).udp(5454, 53).payload(&data6);
    let mut in0 = split_v4(&d4, 400);
    assert_eq!(in0.len(), 3);
    in0.extend(split_v6(&d6.build(), 304, 0x0600_0001));
    // A later fragment whose first never comes.
    let orphan = PacketBuilder::eth(CLIENT, M0).ipv4(CIP, VIP).ident(0x4343).udp(5353, 53).payload(&data4).build();
    in0.push(split_v4(&orphan, 400)[1].clone());
    write_pcap(&dir.0.join("in0.pcap"), &in0);
    write_pcap(&dir.0.join("in1.pcap"), &[]);
    let cfg = dir.0.join("rvsd.toml");
    std::fs::write(&cfg, config(&dir.0, &prefix)).unwrap();
    let check = Command::new(workspace_bin("rvsd")).arg("--check-config").arg(&cfg).output().unwrap();
    assert!(check.status.success(), "config refused: {}", String::from_utf8_lossy(&check.stderr));

    let log = dir.0.join("rvsd.log");
    let logf = std::fs::File::create(&log).unwrap();
    let child = Command::new(workspace_bin("rvsd"))
        .arg("-c")
        .arg(&cfg)
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .expect("start rvsd");
    let mut rvsd = ChildGuard::new(child);
    let sock = dir.0.join("rvsd.sock");
    let want = [("pkts_in", 6u64), ("conns", 2), ("fragment_no_first", 1)];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = BTreeMap::new();
    while Instant::now() < deadline {
        assert!(rvsd.running(), "rvsd exited:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        if let Some(c) = counters(&sock) {
            got = c;
            if want.iter().all(|(k, n)| got.get(*k) == Some(n)) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The fragment cache's events, in the summary rvsd logs on SIGUSR1.
    let _ = Command::new("kill").args(["-USR1", &rvsd.pid().to_string()]).status();
    let mut summary = String::new();
    while Instant::now() < deadline + Duration::from_secs(5) {
        let l = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = l.lines().find(|l| l.contains("rvsd: stats")) {
            summary = line.to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-TERM", &rvsd.pid().to_string()]).status();
    let stop = Instant::now() + Duration::from_secs(15);
    while rvsd.running() && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    for (k, n) in &want {
        assert_eq!(got.get(*k), Some(n), "{k}: all counters {got:?}");
    }
    let drops: Vec<_> = got.keys().filter(|k| !want.iter().any(|(w, _)| w == k)).collect();
    assert!(drops.is_empty(), "unexpected drops {drops:?}");
    for e in ["\"frag_forwarded\":6", "\"frag_first_recorded\":2", "\"frag_no_first\":1"] {
        assert!(summary.contains(e), "{e} in the SIGUSR1 summary: {summary}");
    }

    let out = rvs_e2e::pcap::read_frames(&dir.0.join("out1.pcap")).expect("dpdk1's capture");
    for f in &out {
        assert_eq!((&f[0..6], &f[6..12]), (&SERVER.0[..], &M1.0[..]), "to the server's MAC from dpdk1's");
    }
    let ip4: Vec<Vec<u8>> = out.iter().filter(|f| f[12..14] == [0x08, 0x00]).cloned().collect();
    assert_eq!(ip4.len(), 3, "three IPv4 fragments out of dpdk1 ({} frames in all)", out.len());
    for f in &ip4 {
        let p = Ipv4Packet::new_checked(&f[ETH..]).unwrap();
        assert!(p.verify_checksum(), "IPv4 header checksum of each fragment");
        assert_eq!((p.src_addr(), p.dst_addr(), p.ident(), p.ttl()), (LIP, RS, 0x4242, 63));
    }
    let whole = reassemble_v4(&ip4).expect("the IPv4 fragments reassemble");
    let (src, sport, dst, dport, payload) = judge_udp(&whole);
    assert_eq!((src, dst, dport), (LIP.into(), RS.into(), 53));
    assert_ne!(sport, 5353, "the source port is a local port");
    assert_eq!(payload, data4);

    let whole6 = reassemble_v6(&out).expect("the IPv6 fragments reassemble");
    let (src, _, dst, dport, payload) = judge_udp(&whole6);
    assert_eq!((src, dst, dport), (v6("fd00::1").into(), v6("fd00::2").into(), 53));
    assert_eq!(payload, data6);
}
