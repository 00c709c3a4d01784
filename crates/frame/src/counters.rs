//! The dataplane's counters: what happened to frames before and after the core (ARP,
//! ND, local delivery, routing, neighbours, twins, redirects, transmit). Each counter
//! and each drop reason is declared once here, with its name and help text; the core's
//! own reasons are [`fnat::stats::DropReason`].

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

fnat::counter_set! {
    /// What the dataplane counts, other than drops.
    pub enum NetCounter in NetCounts {
        RxPackets = "rx_packets": "Frames received.",
        RxBytes = "rx_bytes": "Bytes received.",
        TxPackets = "tx_packets": "Frames handed to a transmit queue.",
        ArpReplies = "arp_replies": "ARP requests answered.",
        ArpRequests = "arp_requests": "ARP requests sent (resolving next hops).",
        NdAdverts = "nd_adverts": "Neighbour solicitations answered.",
        NdSolicits = "nd_solicits": "Neighbour solicitations sent.",
        EchoReplies = "echo_replies": "Echo requests answered (ICMP and ICMPv6).",
        IcmpErrors = "icmp_errors": "ICMP errors the dataplane sent (time exceeded, too big).",
        TwinUp = "twin_up": "Frames handed up to kernel twins (unhandled, kni_host, forward2kni copies).",
        TwinUpControl = "twin_up_control": "Of twin_up, the control protocols' (VRRP, OSPF, BFD, ARP, neighbour solicitations and advertisements, BGP): their own queue and budgets, pumped first.",
        TwinDown = "twin_down": "Frames from kernel twins sent out of ports.",
        VlanRx = "vlan_rx": "Tagged frames received for a VLAN sub-interface (or priority-tagged, VLAN 0), the tag removed.",
        VlanTx = "vlan_tx": "Frames sent from a VLAN sub-interface, tagged, out of its parent port.",
        RedirectOut = "redirect_out": "Packets handed to the worker owning their connection: a reply's local port (FullNAT), the client's port (NAT); a client-side ICMP error whose connection is not here, one copy per other worker.",
        RedirectIn = "redirect_in": "Packets received from other workers by redirect.",
        Loops = "loops": "Main-loop iterations.",
        BusyLoops = "busy_loops": "Iterations that received at least one frame.",
        IdleSleeps = "idle_sleeps": "Times an idle worker slept instead of polling again ([workers] polling = \"adaptive\").",
        NeighRefused = "neigh_refused": "ARP/ND bindings not learned: off-link for the port, one of our addresses, not unicast, against a static entry, or a neighbour advertisement without the override flag against a known address.",
        NeighUnsolicited = "neigh_unsolicited": "ARP/ND bindings of unknown neighbours that answer nothing rvs asked (gratuitous ARP, ARP requests, solicitations, unsolicited advertisements): not learned, since rvs learns a new neighbour only by resolving it.",
    }
}

fnat::counter_set! {
    /// Why the dataplane (not the core) dropped a frame.
    pub enum NetDrop in NetDrops {
        NotForUs = "not_for_us": "Destination MAC neither the port's, broadcast nor multicast.",
        OwnFrame = "own_frame": "A frame the port sent itself, seen again on receive.",
        BadFrame = "bad_frame": "Truncated Ethernet or IP header, or a malformed ARP/ND message.",
        LocalUnhandled = "local_unhandled": "For one of our addresses but nothing here handles it (and no kni_host route sends it to the kernel).",
        NoService = "no_service": "TCP or UDP to a VIP port without a virtual service (dropped, like DPVS, without a RST).",
        NoTwin = "no_twin": "For the kernel, but the port has no twin.",
        TwinFull = "twin_full": "For the kernel, but the queue to the twin was full (the kernel is slow).",
        TwinLimited = "twin_limited": "For the kernel, over the budget of what is not a control protocol ([workers] twin_up_pps, each twin's): dropped, so that a flood to one port's kernel addresses crowds out neither the control protocols nor the other twins' frames.",
        TwinLimitedControl = "twin_limited_control": "A control protocol's frame for the kernel (VRRP, OSPF, BFD; ARP and neighbour discovery; BGP: three classes), over its class's budget ([workers] twin_control_pps): dropped. Rising, it means a flood of such frames, or a budget too small for a BGP session's updates.",
        TwinFullControl = "twin_full_control": "A control protocol's frame for the kernel, but their queue to the twin was full (the control thread is slow).",
        NoRoute = "no_route": "No route to the destination.",
        PendingFull = "pending_full": "More packets waiting for a neighbour than the queue holds.",
        Unresolved = "unresolved": "The neighbour never answered ARP/ND.",
        BadIpChecksum = "bad_ip_checksum": "An IPv4 header with a wrong checksum (the NIC's verdict where it gives one, otherwise checked in software), before anything else looks at it.",
        BadIcmpChecksum = "bad_icmp_checksum": "An ICMP or ICMPv6 message to one of our addresses with a wrong checksum (an echo request is not answered).",
        TtlExceeded = "ttl_exceeded": "TTL or hop limit ran out (an ICMP time exceeded was sent, unless counted icmp_rate_limited).",
        IcmpRateLimited = "icmp_rate_limited": "An ICMP time exceeded the dataplane did not send, or a client-side ICMP error it did not hand to the other workers: the worker's token bucket for each (1000 a second, bursts of 50, as Linux's icmp_msgs_per_sec and icmp_msgs_burst) was empty. A time exceeded's frame is counted ttl_exceeded too.",
        TooBig = "too_big": "Larger than the outgoing port's MTU (an ICMP error was sent).",
        Redirect = "redirect": "A packet for a connection another worker owns (see redirect_out), and the ring to it was full.",
        IcmpNowhere = "icmp_nowhere": "A copy of an ICMP error about a client's connection, handed to this worker by the one that received it (which cannot tell who holds the connection), that this worker holds no connection for either: one per worker that looked, when no worker holds it.",
        NeighQueueFull = "neigh_queue_full": "A neighbour binding a worker saw, or a request it sent, while the control thread's queue for them was full: not learned (the neighbour's next frame, or the next request, tells it again).",
        NoMbuf = "no_mbuf": "No buffer (or no room in one) when a packet had to be built or copied.",
        TxFull = "tx_full": "The port's transmit queue did not take the frame.",
    }
}

/// A worker's dataplane counters (plain integers: the worker owns them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Events.
    pub counts: NetCounts,
    /// Drops by reason.
    pub drops: NetDrops,
}

impl NetCounters {
    /// Counts one event.
    #[inline]
    pub fn inc(&mut self, c: NetCounter) {
        self.counts.inc(c);
    }

    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, r: NetDrop) {
        self.drops.inc(r);
    }

    /// One event count.
    pub fn get(&self, c: NetCounter) -> u64 {
        self.counts.get(c)
    }

    /// Drops for one reason.
    pub fn drops(&self, r: NetDrop) -> u64 {
        self.drops.get(r)
    }

    /// Zeroes the packet and drop counters (`rvsadm -Z`); the loop counters keep
    /// counting, since they measure the worker, not traffic.
    pub fn zero(&mut self) {
        let (loops, busy) = (self.get(NetCounter::Loops), self.get(NetCounter::BusyLoops));
        *self = NetCounters::default();
        self.counts.add_n(NetCounter::Loops, loops);
        self.counts.add_n(NetCounter::BusyLoops, busy);
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, o: &NetCounters) {
        self.counts.add(&o.counts);
        self.drops.add(&o.drops);
    }
}

/// Every event counter by name (zeros too), then `drops`: the non-zero drops by name.
impl Serialize for NetCounters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(NetCounter::COUNT + 1))?;
        for c in NetCounter::ALL {
            m.serialize_entry(c.name(), &self.get(c))?;
        }
        m.serialize_entry("drops", &self.drops)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnat::stats::DropReason;

    #[test]
    fn dataplane_and_core_reasons_never_share_a_name() {
        for r in NetDrop::ALL {
            assert!(DropReason::from_name(r.name()).is_none(), "{r} is declared twice");
        }
    }

    #[test]
    fn drops_add_up_and_serialise_by_name() {
        let mut a = NetCounters::default();
        a.drop(NetDrop::TooBig);
        a.drop(NetDrop::TooBig);
        a.inc(NetCounter::Loops);
        let mut b = NetCounters::default();
        b.drop(NetDrop::NoTwin);
        b.counts.add_n(NetCounter::RxPackets, 3);
        a.add(&b);
        assert_eq!(a.drops(NetDrop::TooBig), 2);
        assert_eq!(a.drops(NetDrop::NoTwin), 1);
        assert_eq!(a.get(NetCounter::RxPackets), 3);
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["drops"]["too_big"], 2);
        assert_eq!(json["rx_packets"], 3);
        assert_eq!(json["tx_packets"], 0, "event counters are listed even at zero");
        assert!(json["drops"].get("twin_full").is_none(), "zero drops are left out");
        a.zero();
        assert_eq!(a.drops(NetDrop::TooBig), 0);
        assert_eq!(a.get(NetCounter::Loops), 1, "zeroing keeps the loop counters");
    }
}
