//! The worker's network-layer counters: what happened to packets before or after the
//! load-balancing core (ARP, ND, ICMP, routing, neighbours). The core counts its own
//! drops (`fnat::stats::DropReason`); the reasons here are the dataplane's only, each
//! named once.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// Why the dataplane (not the core) dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum NetDrop {
    /// Destination MAC neither ours, broadcast nor multicast.
    NotForUs,
    /// A frame we sent ourselves, seen again on receive.
    OwnFrame,
    /// Shorter than an Ethernet header, or a bad ARP/ND message.
    BadFrame,
    /// For one of our addresses but nothing here handles it (and no kni_host route
    /// sends it to the kernel).
    LocalUnhandled,
    /// For the kernel, but the port has no twin.
    NoTwin,
    /// For the kernel, but the queue to the twin was full (the kernel is slow).
    KniFull,
    /// More packets waiting for a neighbour than the queue holds.
    PendingFull,
    /// The neighbour never answered.
    Unresolved,
    /// TTL or hop limit ran out.
    TtlExceeded,
    /// Larger than the outgoing port's MTU.
    TooBig,
    /// A reply for a local port another worker owns, and the ring to it was full.
    Redirect,
    /// The mbuf pool was empty when a packet had to be built.
    NoMbuf,
}

impl NetDrop {
    /// Every reason, in order.
    pub const ALL: [NetDrop; 12] = [
        NetDrop::NotForUs,
        NetDrop::OwnFrame,
        NetDrop::BadFrame,
        NetDrop::LocalUnhandled,
        NetDrop::NoTwin,
        NetDrop::KniFull,
        NetDrop::PendingFull,
        NetDrop::Unresolved,
        NetDrop::TtlExceeded,
        NetDrop::TooBig,
        NetDrop::Redirect,
        NetDrop::NoMbuf,
    ];

    /// The reason's name (snake_case, stable).
    pub fn name(self) -> &'static str {
        match self {
            NetDrop::NotForUs => "not_for_us",
            NetDrop::OwnFrame => "own_frame",
            NetDrop::BadFrame => "bad_frame",
            NetDrop::LocalUnhandled => "local_unhandled",
            NetDrop::NoTwin => "no_twin",
            NetDrop::KniFull => "kni_full",
            NetDrop::PendingFull => "pending_full",
            NetDrop::Unresolved => "unresolved",
            NetDrop::TtlExceeded => "ttl_exceeded",
            NetDrop::TooBig => "too_big",
            NetDrop::Redirect => "redirect",
            NetDrop::NoMbuf => "no_mbuf",
        }
    }
}

/// A worker's network-layer counters (plain integers: the worker owns them).
#[derive(Debug, Clone, Default)]
pub struct NetCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames handed to a transmit queue.
    pub tx_packets: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// ARP requests sent (resolving next hops).
    pub arp_requests: u64,
    /// Neighbour solicitations answered.
    pub nd_adverts: u64,
    /// Neighbour solicitations sent.
    pub nd_solicits: u64,
    /// Echo requests answered (ICMP and ICMPv6).
    pub echo_replies: u64,
    /// ICMP errors the dataplane sent (time exceeded, too big).
    pub icmp_errors: u64,
    /// Frames handed up to kernel twins (unhandled, kni_host, forward2kni copies).
    pub kni_up: u64,
    /// Frames from kernel twins sent out of ports.
    pub kni_down: u64,
    /// Replies handed to the worker owning their local port.
    pub redirect_out: u64,
    /// Replies received from other workers by redirect.
    pub redirect_in: u64,
    /// Main-loop iterations.
    pub loops: u64,
    /// Iterations that received at least one packet.
    pub busy_loops: u64,
    drops: [u64; NetDrop::ALL.len()],
}

impl NetCounters {
    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, r: NetDrop) {
        self.drops[r as usize] += 1;
    }

    /// Drops for one reason.
    pub fn drops(&self, r: NetDrop) -> u64 {
        self.drops[r as usize]
    }

    /// Zeroes the packet and drop counters (`rvsadm -Z`); the loop counters keep
    /// counting, since they measure the worker, not traffic.
    pub fn zero(&mut self) {
        let (loops, busy_loops) = (self.loops, self.busy_loops);
        *self = NetCounters { loops, busy_loops, ..NetCounters::default() };
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, o: &NetCounters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.arp_replies += o.arp_replies;
        self.arp_requests += o.arp_requests;
        self.nd_adverts += o.nd_adverts;
        self.nd_solicits += o.nd_solicits;
        self.echo_replies += o.echo_replies;
        self.icmp_errors += o.icmp_errors;
        self.kni_up += o.kni_up;
        self.kni_down += o.kni_down;
        self.redirect_out += o.redirect_out;
        self.redirect_in += o.redirect_in;
        self.loops += o.loops;
        self.busy_loops += o.busy_loops;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
    }

    /// Non-zero drops by name.
    pub fn drop_map(&self) -> BTreeMap<&'static str, u64> {
        NetDrop::ALL.iter().filter(|r| self.drops(**r) > 0).map(|r| (r.name(), self.drops(*r))).collect()
    }
}

impl Serialize for NetCounters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            rx_packets: u64,
            rx_bytes: u64,
            tx_packets: u64,
            arp_replies: u64,
            arp_requests: u64,
            nd_adverts: u64,
            nd_solicits: u64,
            echo_replies: u64,
            icmp_errors: u64,
            kni_up: u64,
            kni_down: u64,
            redirect_out: u64,
            redirect_in: u64,
            loops: u64,
            busy_loops: u64,
            drops: &'a BTreeMap<&'static str, u64>,
        }
        View {
            rx_packets: self.rx_packets,
            rx_bytes: self.rx_bytes,
            tx_packets: self.tx_packets,
            arp_replies: self.arp_replies,
            arp_requests: self.arp_requests,
            nd_adverts: self.nd_adverts,
            nd_solicits: self.nd_solicits,
            echo_replies: self.echo_replies,
            icmp_errors: self.icmp_errors,
            kni_up: self.kni_up,
            kni_down: self.kni_down,
            redirect_out: self.redirect_out,
            redirect_in: self.redirect_in,
            loops: self.loops,
            busy_loops: self.busy_loops,
            drops: &self.drop_map(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_drops_add_up() {
        let names: std::collections::HashSet<_> = NetDrop::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), NetDrop::ALL.len());
        for (i, r) in NetDrop::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL is in discriminant order");
        }
        let mut a = NetCounters::default();
        a.drop(NetDrop::TooBig);
        a.drop(NetDrop::TooBig);
        let mut b = NetCounters::default();
        b.drop(NetDrop::NoTwin);
        b.rx_packets = 3;
        a.add(&b);
        assert_eq!(a.drops(NetDrop::TooBig), 2);
        assert_eq!(a.drops(NetDrop::NoTwin), 1);
        assert_eq!(a.rx_packets, 3);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["drops"]["too_big"], 2);
        assert!(json["drops"].get("kni_full").is_none(), "zero drops are left out");
    }
}
