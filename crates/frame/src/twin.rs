//! What a worker hands up to the kernel twins, and how much.
//!
//! The twins carry the box's own control protocols (a VRRP agent's adverts, BGP and BFD
//! sessions, OSPF) and everything else for the kernel's addresses (SSH, SNMP, pings to
//! them, forward2kni copies). Those addresses face the same wire as the VIPs: a flood of
//! junk to them used to share one queue, the control thread's pump and the kernel's
//! backlog with the adverts, so enough of it lost adverts (a backup taking over from a
//! master alive and well) or keepalives. So each frame going up is classed
//! ([`class_of`]): the link's own protocols (VRRP, OSPF, single-hop BFD: only with the
//! TTL 255 or the link-local group no router passes on), neighbour resolution, routed
//! control protocols (BGP, multihop BFD: anyone may send to their ports), and the rest.
//! The three control classes go on a queue of their own, pumped first, and each class
//! has its own budget ([`TwinBudget`]: `[workers] twin_control_pps` for each control
//! class on each worker, `twin_up_pps` for the rest on each twin, shared among the
//! workers); what is over it is dropped before it reaches a queue (`twin_limited`,
//! `twin_limited_control`). A flood to the kernel's addresses meets the bulk budget of
//! their port's twin and leaves the other twins alone; a flood aimed at BGP's port meets
//! the routed one and leaves VRRP alone; only a host on the link can reach the link
//! classes.

use crate::bucket::Bucket;

/// Which queue and budget a frame for a kernel twin takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwinClass {
    /// Protocols of the link itself, which no router passes on (TTL or hop limit 255,
    /// or a link-local group): VRRP, OSPF, single-hop BFD (UDP 3784, 3785).
    Link,
    /// Neighbour resolution: ARP, neighbour solicitations and advertisements (hop limit
    /// 255).
    Neigh,
    /// Routed control protocols, which anyone may send to: BGP (TCP port 179 either
    /// side), multihop BFD (UDP 4784).
    Routed,
    /// Everything else.
    Bulk,
}

impl TwinClass {
    /// Whether it is one of the control classes (their ring, pumped first).
    #[inline]
    pub fn is_control(self) -> bool {
        self != TwinClass::Bulk
    }
}

/// IP protocol numbers the classes look at.
const VRRP: u8 = 112;
const OSPF: u8 = 89;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
/// BGP's TCP port.
const BGP: u16 = 179;
/// Single-hop BFD's UDP ports: control, echo (RFC 5881).
const BFD_ONE_HOP: [u16; 2] = [3784, 3785];
/// Multihop BFD's UDP port (RFC 5883).
const BFD_MULTIHOP: u16 = 4784;
/// The TTL / hop limit of a packet that cannot have crossed a router (RFC 5082).
const LINK_TTL: u8 = 255;

/// The class of an Ethernet frame (under up to two VLAN tags). Reads the headers only;
/// never panics.
pub fn class_of(frame: &[u8]) -> TwinClass {
    let mut at = 12;
    let mut ethertype = read16(frame, at).unwrap_or(0);
    for _ in 0..2 {
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            break;
        }
        at += 4;
        ethertype = read16(frame, at).unwrap_or(0);
    }
    let ip = frame.get(at + 2..).unwrap_or_default();
    match ethertype {
        0x0806 => TwinClass::Neigh,
        0x0800 => ipv4(ip),
        0x86DD => ipv6(ip),
        _ => TwinClass::Bulk,
    }
}

fn read16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

/// An IPv4 packet's class (a later fragment is bulk: no ports).
fn ipv4(p: &[u8]) -> TwinClass {
    let ihl = usize::from(p.first().map_or(0, |b| b & 0x0f)) * 4;
    if p.len() < 20 || p[0] >> 4 != 4 || ihl < 20 || read16(p, 6).unwrap_or(0) & 0x1fff != 0 {
        return TwinClass::Bulk;
    }
    let group = p[16..20] == [224, 0, 0, 5] || p[16..20] == [224, 0, 0, 6];
    upper(p[9], p[8], group, p.get(ihl..).unwrap_or_default())
}

/// An IPv6 packet's class (its protocol right after the fixed header: these protocols
/// carry no extension headers).
fn ipv6(p: &[u8]) -> TwinClass {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return TwinClass::Bulk;
    }
    let ospf_group = |last: u8| p[24..39] == [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] && p[39] == last;
    upper(p[6], p[7], ospf_group(5) || ospf_group(6), &p[40..])
}

/// The class of a packet of `proto` with TTL / hop limit `ttl`, to OSPF's groups or not
/// (`ospf_group`), whose transport header starts `l4`.
fn upper(proto: u8, ttl: u8, ospf_group: bool, l4: &[u8]) -> TwinClass {
    let (sport, dport) = (read16(l4, 0), read16(l4, 2));
    match proto {
        VRRP if ttl == LINK_TTL => TwinClass::Link,
        OSPF if ospf_group => TwinClass::Link,
        TCP if sport == Some(BGP) || dport == Some(BGP) => TwinClass::Routed,
        UDP if dport == Some(BFD_MULTIHOP) => TwinClass::Routed,
        UDP if ttl == LINK_TTL && dport.is_some_and(|p| BFD_ONE_HOP.contains(&p)) => TwinClass::Link,
        // Neighbour solicitations and advertisements (router advertisements and
        // redirects the twins refuse anyway).
        ICMPV6 if ttl == LINK_TTL && l4.first().is_some_and(|t| *t == 135 || *t == 136) => TwinClass::Neigh,
        _ => TwinClass::Bulk,
    }
}

/// Ports whose kernel twins have a bulk budget of their own in each worker (VLAN ports
/// included); those past it share the last one.
pub const TWIN_BUDGETS: usize = 16;

/// One worker's budgets for frames going up: a bucket per control class (for all the
/// twins: the control ring and the control thread's first pass are shared, and their
/// bound must not grow with the ports), and a bulk bucket per twin (a flood to one
/// port's kernel address leaves the other twins' bulk alone). Each is refilled from the
/// loop's clock as it is taken from.
#[derive(Debug, Clone, Copy)]
pub struct TwinBudget {
    link: Bucket,
    neigh: Bucket,
    routed: Bucket,
    bulk: [Bucket; TWIN_BUDGETS],
}

impl TwinBudget {
    /// Budgets of `bulk_pps` bulk frames a second for each twin and of `control_pps` for
    /// each control class (0: no limit), each with a burst of a tenth of a second's worth
    /// (at least 32 frames).
    pub fn new(bulk_pps: u64, control_pps: u64) -> TwinBudget {
        let bucket = |pps: u64| Bucket::new(pps, (pps / 10).max(32));
        let control = bucket(control_pps);
        TwinBudget { link: control, neigh: control, routed: control, bulk: [bucket(bulk_pps); TWIN_BUDGETS] }
    }

    /// No limit on any class.
    pub fn unlimited() -> TwinBudget {
        TwinBudget::new(0, 0)
    }

    /// Takes one frame of `class` for `port`'s twin from its budget, if there is room,
    /// after adding the tokens earned up to `now` (ms).
    #[inline]
    pub fn take(&mut self, class: TwinClass, port: usize, now: u64) -> bool {
        let b = match class {
            TwinClass::Link => &mut self.link,
            TwinClass::Neigh => &mut self.neigh,
            TwinClass::Routed => &mut self.routed,
            TwinClass::Bulk => &mut self.bulk[port.min(TWIN_BUDGETS - 1)],
        };
        b.refill(now);
        b.take()
    }
}

impl Default for TwinBudget {
    fn default() -> Self {
        TwinBudget::unlimited()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    /// An IPv4 header (20 bytes, no options) of `proto`, TTL `ttl`, to `dst`, then `l4`.
    fn v4(proto: u8, ttl: u8, dst: [u8; 4], frag: u16, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, (frag >> 8) as u8, frag as u8, ttl, proto, 0, 0, 10, 0, 0, 1];
        h.extend_from_slice(&dst);
        h.extend_from_slice(l4);
        h
    }

    fn v6(next: u8, hops: u8, dst_last: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, next, hops];
        h.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        h.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, dst_last]);
        h.extend_from_slice(l4);
        h
    }

    #[test]
    fn control_protocols_and_the_rest() {
        use TwinClass::{Bulk, Link, Neigh, Routed};
        const HOST: [u8; 4] = [10, 0, 0, 2];
        const VRRP_GROUP: [u8; 4] = [224, 0, 0, 18];
        let bgp_to = [0xc3, 0x50, 0, 179, 0, 0, 0, 0];
        let bgp_from = [0, 179, 0xc3, 0x50, 0, 0, 0, 0];
        let bfd = [0xc0, 0x00, 0x0e, 0xc8, 0, 24, 0, 0];
        let bfd_multihop = [0xc0, 0x00, 0x12, 0xb0, 0, 24, 0, 0];
        let ssh = [0xc3, 0x50, 0, 22, 0, 0, 0, 0];
        let vrrp = eth(0x0800, &v4(112, 255, VRRP_GROUP, 0, &[0x21, 51, 100, 1]));
        let mut tagged = vec![0u8; 12];
        tagged.extend_from_slice(&[0x81, 0, 0, 5]);
        tagged.extend_from_slice(&vrrp[12..]);
        let mut short_ihl = v4(112, 255, VRRP_GROUP, 0, &[0x21]);
        short_ihl[0] = 0x44;
        let cases: Vec<(&str, Vec<u8>, TwinClass)> = vec![
            ("ARP", eth(0x0806, &[0; 28]), Neigh),
            ("VRRP", vrrp, Link),
            ("VRRP that crossed a router (TTL 64)", eth(0x0800, &v4(112, 64, HOST, 0, &[0x21])), Bulk),
            ("OSPF hello to AllSPFRouters", eth(0x0800, &v4(89, 1, [224, 0, 0, 5], 0, &[2, 1])), Link),
            ("OSPF to a host", eth(0x0800, &v4(89, 64, HOST, 0, &[2, 1])), Bulk),
            ("BGP, to the kernel's port", eth(0x0800, &v4(6, 64, HOST, 0, &bgp_to)), Routed),
            ("BGP, from the peer's", eth(0x0800, &v4(6, 1, HOST, 0, &bgp_from)), Routed),
            ("single-hop BFD", eth(0x0800, &v4(17, 255, HOST, 0, &bfd)), Link),
            ("single-hop BFD that crossed a router", eth(0x0800, &v4(17, 254, HOST, 0, &bfd)), Bulk),
            ("multihop BFD", eth(0x0800, &v4(17, 60, HOST, 0, &bfd_multihop)), Routed),
            ("SSH", eth(0x0800, &v4(6, 64, HOST, 0, &ssh)), Bulk),
            ("a later fragment of anything", eth(0x0800, &v4(112, 255, VRRP_GROUP, 0x0010, &[0x21])), Bulk),
            ("an IHL below 5", eth(0x0800, &short_ihl), Bulk),
            ("ICMP", eth(0x0800, &v4(1, 255, HOST, 0, &[8, 0, 0, 0])), Bulk),
            ("VRRP under a VLAN tag", tagged, Link),
            ("VRRPv3 over IPv6", eth(0x86DD, &v6(112, 255, 0x12, &[0x31, 51])), Link),
            ("OSPFv3 to AllSPFRouters", eth(0x86DD, &v6(89, 1, 5, &[3, 1])), Link),
            ("a neighbour solicitation", eth(0x86DD, &v6(58, 255, 1, &[135, 0])), Neigh),
            ("a neighbour advertisement", eth(0x86DD, &v6(58, 255, 1, &[136, 0])), Neigh),
            ("a solicitation that crossed a router", eth(0x86DD, &v6(58, 64, 1, &[135, 0])), Bulk),
            ("a router advertisement (the twins refuse them)", eth(0x86DD, &v6(58, 255, 1, &[134, 0])), Bulk),
            ("an echo request over IPv6", eth(0x86DD, &v6(58, 64, 1, &[128, 0])), Bulk),
            ("BGP over IPv6", eth(0x86DD, &v6(6, 64, 1, &bgp_to)), Routed),
            ("LLDP", eth(0x88cc, &[0; 20]), Bulk),
            ("a tag with nothing after it", eth(0x8100, &[0, 5]), Bulk),
            ("truncated IPv4", eth(0x0800, &[0x45, 0, 0]), Bulk),
            ("a TCP header cut short", eth(0x0800, &v4(6, 64, HOST, 0, &[0])), Bulk),
            ("nothing", vec![], Bulk),
        ];
        for (what, frame, want) in cases {
            assert_eq!(class_of(&frame), want, "{what}");
        }
    }

    #[test]
    fn each_class_spends_its_own_budget() {
        let mut b = TwinBudget::new(100, 1000);
        // A full bucket holds 32 (a tenth of a second of 100 is less).
        assert_eq!((0..50).filter(|_| b.take(TwinClass::Bulk, 0, 0)).count(), 32);
        assert_eq!((0..50).filter(|_| b.take(TwinClass::Bulk, 1, 0)).count(), 32, "another twin's bulk: its own");
        for class in [TwinClass::Link, TwinClass::Neigh, TwinClass::Routed] {
            assert_eq!((0..150).filter(|_| b.take(class, 0, 0)).count(), 100, "{class:?}: its own 100 (1000 a second)");
            assert!(!b.take(class, 1, 0), "{class:?}: one budget for every twin");
        }
        assert_eq!((0..50).filter(|_| b.take(TwinClass::Bulk, 0, 100)).count(), 10, "100 a second: 10 in 100 ms");
        let mut free = TwinBudget::unlimited();
        assert!((0..100_000).all(|_| free.take(TwinClass::Bulk, 0, 0)));
    }
}
