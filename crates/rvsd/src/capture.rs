//! Packet capture without the copy penalty of forward2kni: while a capture runs, the
//! workers copy the frames that match its filter onto a ring and the control thread
//! writes them as pcapng (which tshark and Wireshark read); while none runs, the cost
//! is one flag test per packet.
//!
//! The filter is a small subset of tcpdump's language: `tcp`, `udp`, `icmp`, `icmp6`,
//! `arp`, `ip`, `ip6`, `vrrp`, `[src|dst] host ADDR`, `[src|dst] port N`,
//! `[src|dst] net PREFIX`, combined with `and` / `&&`, `or` / `||`, `not` / `!` and
//! parentheses. An empty filter matches everything.

use std::io::Write;
use std::net::IpAddr;

use ipnet::IpNet;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Matches everything.
    Any,
    /// An IP protocol (or ARP / a family).
    Proto(ProtoMatch),
    /// An address (`net` with a host prefix for `host`).
    Net(Dir, IpNet),
    /// A TCP/UDP port.
    Port(Dir, u16),
    /// Both.
    And(Box<Filter>, Box<Filter>),
    /// Either.
    Or(Box<Filter>, Box<Filter>),
    /// Not.
    Not(Box<Filter>),
}

/// Which address or port a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Source or destination.
    Either,
    /// Source.
    Src,
    /// Destination.
    Dst,
}

/// Protocol primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoMatch {
    /// IPv4.
    Ip,
    /// IPv6.
    Ip6,
    /// ARP.
    Arp,
    /// An IP protocol number (tcp 6, udp 17, icmp 1, icmp6 58, vrrp 112).
    L4(u8),
}

/// A filter that does not parse: the word and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capture filter: {0}")]
pub struct FilterError(pub String);

struct Parser<'a> {
    toks: Vec<&'a str>,
    pos: usize,
}

impl Filter {
    /// Parses a filter expression.
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        let spaced = s.replace('(', " ( ").replace(')', " ) ").replace('!', " ! ");
        let toks: Vec<&str> = spaced.split_whitespace().collect();
        if toks.is_empty() {
            return Ok(Filter::Any);
        }
        let mut p = Parser { toks, pos: 0 };
        let f = p.or()?;
        match p.peek() {
            None => Ok(f),
            Some(t) => Err(FilterError(format!("unexpected {t:?}"))),
        }
    }

    /// Whether an Ethernet frame matches.
    pub fn matches(&self, frame: &[u8]) -> bool {
        match self {
            Filter::Any => true,
            Filter::And(a, b) => a.matches(frame) && b.matches(frame),
            Filter::Or(a, b) => a.matches(frame) || b.matches(frame),
            Filter::Not(a) => !a.matches(frame),
            Filter::Proto(p) => {
                let Some(h) = Headers::of(frame) else { return false };
                match p {
                    ProtoMatch::Ip => h.ethertype == 0x0800,
                    ProtoMatch::Ip6 => h.ethertype == 0x86dd,
                    ProtoMatch::Arp => h.ethertype == 0x0806,
                    ProtoMatch::L4(n) => h.l4 == Some(*n),
                }
            }
            Filter::Net(dir, net) => {
                let Some(h) = Headers::of(frame) else { return false };
                let (Some(s), Some(d)) = (h.src, h.dst) else { return false };
                match dir {
                    Dir::Src => net.contains(&s),
                    Dir::Dst => net.contains(&d),
                    Dir::Either => net.contains(&s) || net.contains(&d),
                }
            }
            Filter::Port(dir, port) => {
                let Some(h) = Headers::of(frame) else { return false };
                let Some((s, d)) = h.ports else { return false };
                match dir {
                    Dir::Src => s == *port,
                    Dir::Dst => d == *port,
                    Dir::Either => s == *port || d == *port,
                }
            }
        }
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<&'a str> {
        let t = self.peek();
        self.pos += 1;
        t
    }
    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut f = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.pos += 1;
            f = Filter::Or(Box::new(f), Box::new(self.and()?));
        }
        Ok(f)
    }
    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut f = self.unary()?;
        loop {
            match self.peek() {
                Some("and" | "&&") => self.pos += 1,
                // Juxtaposition means `and`, as in tcpdump's `tcp port 80`.
                Some("or" | "||" | ")") | None => return Ok(f),
                Some(_) => {}
            }
            f = Filter::And(Box::new(f), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Filter, FilterError> {
        match self.next() {
            Some("not" | "!") => Ok(Filter::Not(Box::new(self.unary()?))),
            Some("(") => {
                let f = self.or()?;
                match self.next() {
                    Some(")") => Ok(f),
                    _ => Err(FilterError("missing )".into())),
                }
            }
            Some(t) => self.primitive(t),
            None => Err(FilterError("expression ends too early".into())),
        }
    }
    fn primitive(&mut self, t: &'a str) -> Result<Filter, FilterError> {
        let proto = |p| Ok(Filter::Proto(p));
        match t {
            "tcp" => proto(ProtoMatch::L4(6)),
            "udp" => proto(ProtoMatch::L4(17)),
            "icmp" => proto(ProtoMatch::L4(1)),
            "icmp6" => proto(ProtoMatch::L4(58)),
            "vrrp" => proto(ProtoMatch::L4(112)),
            "ip" => proto(ProtoMatch::Ip),
            "ip6" => proto(ProtoMatch::Ip6),
            "arp" => proto(ProtoMatch::Arp),
            "src" | "dst" => {
                let dir = if t == "src" { Dir::Src } else { Dir::Dst };
                let kind = self.next().ok_or_else(|| FilterError(format!("{t} what? (host, net, port)")))?;
                self.qualified(dir, kind)
            }
            "host" | "net" | "port" => self.qualified(Dir::Either, t),
            other => Err(FilterError(format!("unknown word {other:?}"))),
        }
    }
    fn qualified(&mut self, dir: Dir, kind: &str) -> Result<Filter, FilterError> {
        let v = self.next().ok_or_else(|| FilterError(format!("{kind} needs a value")))?;
        match kind {
            "host" => {
                let a: IpAddr = v.parse().map_err(|_| FilterError(format!("bad address {v:?}")))?;
                Ok(Filter::Net(dir, IpNet::from(a)))
            }
            "net" => Ok(Filter::Net(dir, v.parse().map_err(|_| FilterError(format!("bad prefix {v:?}")))?)),
            "port" => Ok(Filter::Port(dir, v.parse().map_err(|_| FilterError(format!("bad port {v:?}")))?)),
            _ => Err(FilterError(format!("unknown word {kind:?} after src/dst"))),
        }
    }
}

/// The few header fields filters look at.
struct Headers {
    ethertype: u16,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    l4: Option<u8>,
    ports: Option<(u16, u16)>,
}

impl Headers {
    /// Reads them through `wire`'s views, leniently (a capture filter sees every
    /// frame, well-formed or not; a missing part is simply absent).
    fn of(f: &[u8]) -> Option<Headers> {
        let eth = wire::EthernetFrame::new_checked(f).ok()?;
        let ethertype = eth.ethertype().0;
        let mut h = Headers { ethertype, src: None, dst: None, l4: None, ports: None };
        let l3 = eth.payload();
        let l4 = match eth.ethertype() {
            wire::EtherType::IPV4 => {
                let p = wire::Ipv4Packet::new_checked_header(l3).ok()?;
                h.src = Some(p.src_addr().into());
                h.dst = Some(p.dst_addr().into());
                h.l4 = Some(p.protocol().0);
                (p.frag_offset() == 0).then(|| &l3[p.header_len()..])
            }
            wire::EtherType::IPV6 => {
                let p = wire::Ipv6Packet::new_checked_header(l3).ok()?;
                h.src = Some(p.src_addr().into());
                h.dst = Some(p.dst_addr().into());
                let upper = p.upper_layer().ok();
                h.l4 = Some(upper.map_or(p.next_header(), |u| u.protocol).0);
                upper.filter(|u| u.fragment.is_none_or(|f| f.offset == 0)).and_then(|u| l3.get(u.offset..))
            }
            _ => None,
        };
        if let (Some(seg), Some(6 | 17)) = (l4, h.l4) {
            if seg.len() >= 4 {
                // TCP and UDP both start with the two ports.
                let p = wire::UdpPacket::new_unchecked(seg);
                h.ports = Some((p.src_port(), p.dst_port()));
            }
        }
        Some(h)
    }
}

/// Writes pcapng: a section header, one Ethernet interface, and an enhanced packet
/// block per frame (microsecond timestamps).
pub struct PcapngWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a file for an Ethernet interface named `ifname`.
    pub fn new(mut out: W, ifname: &str) -> std::io::Result<PcapngWriter<W>> {
        // Section header block.
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut out, 0x0A0D0D0A, &shb)?;
        // Interface description block: Ethernet, no snap length limit, if_name option.
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        option(&mut idb, 2, ifname.as_bytes());
        option(&mut idb, 0, &[]);
        block(&mut out, 1, &idb)?;
        Ok(PcapngWriter { out })
    }

    /// Appends one frame captured at `micros` since the epoch.
    pub fn write(&mut self, frame: &[u8], micros: u64) -> std::io::Result<()> {
        let mut epb = Vec::with_capacity(20 + frame.len() + 3);
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(micros as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        while !epb.len().is_multiple_of(4) {
            epb.push(0);
        }
        block(&mut self.out, 6, &epb)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn block<W: Write>(out: &mut W, kind: u32, body: &[u8]) -> std::io::Result<()> {
    let len = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&len.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::builder::PacketBuilder;
    use wire::{EthernetAddress, TcpFlags};

    fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
        let m = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let b = PacketBuilder::eth(m, m);
        match (src.parse::<IpAddr>().unwrap(), dst.parse::<IpAddr>().unwrap()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s, d).tcp(sport, dport).flags(TcpFlags::SYN).build(),
            (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s, d).tcp(sport, dport).flags(TcpFlags::SYN).build(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn filters_parse_and_match() {
        let syn = tcp("198.18.0.2", 40000, "198.18.0.100", 80);
        let syn6 = tcp("2001:db8:18::2", 40000, "2001:db8:18::100", 80);
        let cases: &[(&str, bool, bool)] = &[
            ("", true, true),
            ("tcp", true, true),
            ("udp", false, false),
            ("ip", true, false),
            ("ip6", false, true),
            ("tcp port 80", true, true),
            ("dst port 80 and src port 40000", true, true),
            ("src port 80", false, false),
            ("host 198.18.0.100", true, false),
            ("src host 198.18.0.100", false, false),
            ("net 198.18.0.0/24 and not port 22", true, false),
            ("(udp or tcp) && dst net 2001:db8:18::/64", false, true),
            ("not tcp or arp", false, false),
            ("!(port 81)", true, true),
        ];
        for (f, v4, v6) in cases {
            let p = Filter::parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(p.matches(&syn), *v4, "{f} on IPv4");
            assert_eq!(p.matches(&syn6), *v6, "{f} on IPv6");
        }
        for bad in ["tcp and", "port", "host 1.2.3", "frobnicate", "(tcp", "src tcp"] {
            assert!(Filter::parse(bad).is_err(), "{bad} must be refused");
        }
        assert!(!Filter::parse("tcp").unwrap().matches(&[0u8; 5]), "garbage never matches");
    }

    #[test]
    fn pcapng_is_read_back_by_etherparse_frames() {
        let mut w = PcapngWriter::new(Vec::new(), "dpdk0").unwrap();
        let f = tcp("198.18.0.2", 40000, "198.18.0.100", 80);
        w.write(&f, 1_700_000_000_000_000).unwrap();
        let out = w.finish().unwrap();
        // SHB, IDB, EPB; every block length is a multiple of 4 and repeated at its end.
        let mut off = 0;
        let mut kinds = Vec::new();
        while off < out.len() {
            let kind = u32::from_le_bytes(out[off..off + 4].try_into().unwrap());
            let len = u32::from_le_bytes(out[off + 4..off + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32::from_le_bytes(out[off + len - 4..off + len].try_into().unwrap()) as usize, len);
            kinds.push(kind);
            if kind == 6 {
                assert_eq!(&out[off + 28..off + 28 + f.len()], &f[..]);
            }
            off += len;
        }
        assert_eq!(kinds, vec![0x0A0D0D0A, 1, 6]);
    }
}
