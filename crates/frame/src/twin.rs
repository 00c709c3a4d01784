//! What a worker hands up to the kernel twins, and how much.
//!
//! The twins carry the box's own control protocols (a VRRP agent's adverts, BGP and BFD
//! sessions, OSPF) and everything else for the kernel's addresses (SSH, SNMP, pings to
//! them, forward2kni copies). Those addresses face the same wire as the VIPs: a flood of
//! junk to them used to share one queue, the control thread's pump and the kernel's
//! backlog with the adverts, so enough of it lost adverts (a backup taking over from a
//! master alive and well) or keepalives. So each frame going up is classed
//! ([`class_of`]): control protocols go on a queue of their own, pumped first, and
//! each class has its own budget per worker ([`TwinBudget`]: `[workers] twin_up_pps`
//! and `twin_control_pps`, shared among the workers); what is over it is dropped before
//! it reaches a queue (`twin_limited`). A flood of forged control protocol packets
//! meets the control budget, not the rest's.

use crate::bucket::Bucket;

/// Which queue and budget a frame for a kernel twin takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwinClass {
    /// VRRP, OSPF, BGP (TCP port 179 either side), BFD (UDP to 3784, 3785, 4784), ARP
    /// and neighbour discovery: what keeps the box's roles and routes.
    Control,
    /// Everything else.
    Bulk,
}

/// IP protocol numbers of the control class.
const VRRP: u8 = 112;
const OSPF: u8 = 89;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
/// BGP's TCP port.
const BGP: u16 = 179;
/// BFD's UDP ports: single hop, echo, multihop (RFC 5881, 5883).
const BFD: [u16; 3] = [3784, 3785, 4784];

/// The class of an Ethernet frame (untagged: a tagged frame, for a VLAN rvs has no
/// sub-interface for, is bulk). Reads the headers only; never panics.
pub fn class_of(frame: &[u8]) -> TwinClass {
    let ethertype = frame.get(12..14).map_or(0, |e| u16::from_be_bytes([e[0], e[1]]));
    let ip = frame.get(crate::ETH_LEN..).unwrap_or_default();
    let control = match ethertype {
        0x0806 => true,
        0x0800 => ipv4(ip),
        0x86DD => ipv6(ip),
        _ => false,
    };
    match control {
        true => TwinClass::Control,
        false => TwinClass::Bulk,
    }
}

/// An IPv4 packet of the control class (a later fragment is not: no ports).
fn ipv4(p: &[u8]) -> bool {
    if p.len() < 20 || p[0] >> 4 != 4 || u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0 {
        return false;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    upper(p[9], p.get(ihl..).unwrap_or_default())
}

/// An IPv6 packet of the control class (its protocol right after the fixed header:
/// these protocols carry no extension headers).
fn ipv6(p: &[u8]) -> bool {
    p.len() >= 40 && p[0] >> 4 == 6 && upper(p[6], &p[40..])
}

fn upper(proto: u8, l4: &[u8]) -> bool {
    let port = |at: usize| l4.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match proto {
        VRRP | OSPF => true,
        TCP => port(0) == Some(BGP) || port(2) == Some(BGP),
        UDP => port(2).is_some_and(|p| BFD.contains(&p)),
        // Router and neighbour solicitations and advertisements, redirects.
        ICMPV6 => l4.first().is_some_and(|t| (133..=137).contains(t)),
        _ => false,
    }
}

/// One worker's budgets for frames going up, a bucket per class, refilled from the
/// loop's clock ([`crate::Node::housekeeping`]).
#[derive(Debug, Clone, Copy)]
pub struct TwinBudget {
    bulk: Bucket,
    control: Bucket,
}

impl TwinBudget {
    /// Budgets of `bulk_pps` and `control_pps` frames a second (0: no limit), each
    /// with a burst of a tenth of a second's worth (at least 32 frames).
    pub fn new(bulk_pps: u64, control_pps: u64) -> TwinBudget {
        let bucket = |pps: u64| Bucket::new(pps, (pps / 10).max(32));
        TwinBudget { bulk: bucket(bulk_pps), control: bucket(control_pps) }
    }

    /// No limit on either class.
    pub fn unlimited() -> TwinBudget {
        TwinBudget::new(0, 0)
    }

    /// Adds the tokens earned since the last refill (`now` in ms).
    #[inline]
    pub fn refill(&mut self, now: u64) {
        self.bulk.refill(now);
        self.control.refill(now);
    }

    /// Takes one frame of `class` from its budget, if there is room.
    #[inline]
    pub fn take(&mut self, class: TwinClass) -> bool {
        match class {
            TwinClass::Control => self.control.take(),
            TwinClass::Bulk => self.bulk.take(),
        }
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

    /// An IPv4 header (20 bytes, no options) of `proto`, then `l4`.
    fn v4(proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, (frag >> 8) as u8, frag as u8, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        h.extend_from_slice(l4);
        h
    }

    fn v6(next: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, next, 255];
        h.extend_from_slice(&[0; 32]);
        h.extend_from_slice(l4);
        h
    }

    #[test]
    fn control_protocols_and_the_rest() {
        use TwinClass::{Bulk, Control};
        let bgp_to = [0xc3, 0x50, 0, 179, 0, 0, 0, 0];
        let bgp_from = [0, 179, 0xc3, 0x50, 0, 0, 0, 0];
        let bfd = [0xc0, 0x00, 0x0e, 0xc8, 0, 24, 0, 0];
        let ssh = [0xc3, 0x50, 0, 22, 0, 0, 0, 0];
        let dns = [0xc3, 0x50, 0, 53, 0, 8, 0, 0];
        let cases: Vec<(&str, Vec<u8>, TwinClass)> = vec![
            ("ARP", eth(0x0806, &[0; 28]), Control),
            ("VRRP", eth(0x0800, &v4(112, 0, &[0x21, 51, 100, 1])), Control),
            ("OSPF", eth(0x0800, &v4(89, 0, &[2, 1])), Control),
            ("BGP, to the kernel's port", eth(0x0800, &v4(6, 0, &bgp_to)), Control),
            ("BGP, from the peer's", eth(0x0800, &v4(6, 0, &bgp_from)), Control),
            ("BFD", eth(0x0800, &v4(17, 0, &bfd)), Control),
            ("SSH", eth(0x0800, &v4(6, 0, &ssh)), Bulk),
            ("DNS", eth(0x0800, &v4(17, 0, &dns)), Bulk),
            ("a later fragment of anything", eth(0x0800, &v4(112, 0x0010, &[0x21])), Bulk),
            ("ICMP", eth(0x0800, &v4(1, 0, &[8, 0, 0, 0])), Bulk),
            ("VRRPv3 over IPv6", eth(0x86DD, &v6(112, &[0x31, 51])), Control),
            ("a neighbour solicitation", eth(0x86DD, &v6(58, &[135, 0])), Control),
            ("a router advertisement", eth(0x86DD, &v6(58, &[134, 0])), Control),
            ("an echo request over IPv6", eth(0x86DD, &v6(58, &[128, 0])), Bulk),
            ("BGP over IPv6", eth(0x86DD, &v6(6, &bgp_to)), Control),
            ("LLDP", eth(0x88cc, &[0; 20]), Bulk),
            ("a tagged frame", eth(0x8100, &[0, 5, 8, 0]), Bulk),
            ("truncated IPv4", eth(0x0800, &[0x45, 0, 0]), Bulk),
            ("a TCP header cut short", eth(0x0800, &v4(6, 0, &[0])), Bulk),
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
        assert_eq!((0..50).filter(|_| b.take(TwinClass::Bulk)).count(), 32);
        assert!(b.take(TwinClass::Control), "the control class is untouched");
        b.refill(100);
        assert_eq!((0..50).filter(|_| b.take(TwinClass::Bulk)).count(), 10, "100 a second: 10 in 100 ms");
        let mut free = TwinBudget::unlimited();
        assert!((0..100_000).all(|_| free.take(TwinClass::Bulk)));
    }
}
