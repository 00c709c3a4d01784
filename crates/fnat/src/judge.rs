//! The independent judge of the core's output in tests: parses a bare IP packet with
//! `etherparse` (not this project's parser) and asserts every checksum. Behind the
//! `judge` feature, for this crate's tests and anyone testing on top of it.

use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// What etherparse read from a bare IP packet, every checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TCP/UDP source port (0 otherwise).
    pub sport: u16,
    /// TCP/UDP destination port (0 otherwise).
    pub dport: u16,
    /// TCP options, raw.
    pub tcp_options: Vec<u8>,
    /// The L4 payload (for ICMP, the message body, as in `icmp_payload`).
    pub payload: Vec<u8>,
    /// An ICMP/ICMPv6 message's body (the quoted packet for errors).
    pub icmp_payload: Vec<u8>,
}

fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| c.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses the bare IP packet `data` with etherparse, asserting that the IPv4 header,
/// TCP, UDP (unless 0 over IPv4), ICMPv4 and ICMPv6 checksums are correct, and for
/// ICMPv4 errors the quoted IPv4 header's checksum too. Panics (with a hex dump) on a
/// packet etherparse cannot read.
///
/// An IPIP or ip6ip6 packet (LVS tunnel mode) is judged as its outer header (the IPv4
/// checksum, the lengths) and its inner packet, whose [`Seen`] is returned.
pub fn judge(data: &[u8]) -> Seen {
    if let Some(inner) = tunnelled(data) {
        return judge(inner);
    }
    let sp = SlicedPacket::from_ip(data).unwrap_or_else(|e| panic!("etherparse: {e:?}\n{}", hex(data)));
    let (src, dst, s4, d4, s6, d6) = match sp.net.as_ref().expect("IP") {
        NetSlice::Ipv4(v4) => {
            let h = v4.header();
            assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum(), "IPv4 header checksum");
            let (s, d) = (h.source(), h.destination());
            (IpAddr::from(s), IpAddr::from(d), s, d, [0; 16], [0; 16])
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header();
            let (s, d) = (h.source(), h.destination());
            (IpAddr::from(s), IpAddr::from(d), [0; 4], [0; 4], s, d)
        }
    };
    let v4 = src.is_ipv4();
    let mut seen = Seen { src, dst, sport: 0, dport: 0, tcp_options: vec![], payload: vec![], icmp_payload: vec![] };
    match sp.transport.expect("transport") {
        TransportSlice::Tcp(t) => {
            let c = if v4 { t.calc_checksum_ipv4(s4, d4) } else { t.calc_checksum_ipv6(s6, d6) }.expect("TCP checksum");
            assert_eq!(c, t.checksum(), "TCP checksum");
            seen.sport = t.source_port();
            seen.dport = t.destination_port();
            seen.tcp_options = t.options().to_vec();
            seen.payload = t.payload().to_vec();
        }
        TransportSlice::Udp(u) => {
            let h = u.to_header();
            if !(v4 && h.checksum == 0) {
                let c = if v4 {
                    h.calc_checksum_ipv4_raw(s4, d4, u.payload())
                } else {
                    h.calc_checksum_ipv6_raw(s6, d6, u.payload())
                }
                .expect("UDP checksum");
                assert_eq!(c, h.checksum, "UDP checksum");
            }
            seen.sport = h.source_port;
            seen.dport = h.destination_port;
            seen.payload = u.payload().to_vec();
        }
        TransportSlice::Icmpv4(i) => {
            let h = i.header();
            assert_eq!(h.icmp_type.calc_checksum(i.payload()), h.checksum, "ICMPv4 checksum");
            let q = i.payload();
            if q.len() >= 20 && q[0] >> 4 == 4 {
                let ql = ((q[0] & 0x0f) as usize) * 4;
                if let Ok(qh) = etherparse::Ipv4HeaderSlice::from_slice(&q[..ql.min(q.len())]) {
                    assert_eq!(qh.to_header().calc_header_checksum(), qh.header_checksum(), "quoted IPv4 checksum");
                }
            }
            seen.payload = q.to_vec();
            seen.icmp_payload = q.to_vec();
        }
        TransportSlice::Icmpv6(i) => {
            assert!(i.is_checksum_valid(s6, d6), "ICMPv6 checksum");
            seen.payload = i.payload().to_vec();
            seen.icmp_payload = i.payload().to_vec();
        }
    }
    seen
}

/// The inner packet of an IPIP / ip6ip6 packet, its outer header checked.
fn tunnelled(data: &[u8]) -> Option<&[u8]> {
    match data.first()? >> 4 {
        4 if data.get(9) == Some(&4) => {
            let h = etherparse::Ipv4HeaderSlice::from_slice(data).unwrap_or_else(|e| panic!("outer IPv4: {e:?}"));
            assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum(), "outer IPv4 header checksum");
            assert_eq!(h.total_len() as usize, data.len(), "outer IPv4 total length");
            Some(&data[h.slice().len()..])
        }
        6 if data.get(6) == Some(&41) => {
            let h = etherparse::Ipv6HeaderSlice::from_slice(data).unwrap_or_else(|e| panic!("outer IPv6: {e:?}"));
            assert_eq!(h.payload_length() as usize + 40, data.len(), "outer IPv6 payload length");
            Some(&data[40..])
        }
        _ => None,
    }
}
