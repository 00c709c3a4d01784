//! [`Node`]: one worker's frame logic. It receives frames, answers ARP and ND for the
//! addresses the dataplane owns, hands IP to the core, acts on the core's verdicts
//! (route, TTL, MTU, neighbour, redirect, local delivery) and keeps the packets that
//! wait for a neighbour. It owns no queue and no buffer pool: what it sends goes
//! through the worker's [`Io`].

use std::net::{IpAddr, Ipv4Addr};

use fnat::buf::PacketBuf;
use fnat::conn::{ConnRef, NO_HOP};
use fnat::engine::{Engine, Verdict, EVERY_WORKER};
use fnat::tcp_state::Direction;
use netstack::icmp::{self, Icmpv4ErrorKind, Icmpv6ErrorKind};
use netstack::neigh::Due;
use netstack::{arp, nd, AddrTable, HopOrigin, NeighTable, Pending, PortId, RouteTable, Scope};
use wire::{EtherType, EthernetAddress, EthernetFrame, IpProtocol, Ipv6Packet};

use crate::bucket::Bucket;
use crate::counters::{NetCounter, NetCounters, NetDrop};
use crate::hops::{HopCache, Via, FORGET_PER_LOOP};
use crate::io::Io;
use crate::ip;
use crate::port::Port;
use crate::twin::{self, TwinBudget, TwinClass};
use crate::ETH_LEN;

/// The configuration generation the frame logic reads: ports, owned addresses,
/// routes and neighbours. The worker builds it from its snapshot (references only).
#[derive(Clone, Copy)]
pub struct Net<'a> {
    /// Ports by index.
    pub ports: &'a [Port],
    /// Addresses the dataplane owns.
    pub addrs: &'a AddrTable,
    /// Routes (connected, static, kni_host).
    pub routes: &'a RouteTable,
    /// Neighbours.
    pub neighs: &'a NeighTable,
}

impl Net<'_> {
    /// Whether a kni_host route covers `ip` (its traffic is the kernel's).
    #[inline]
    pub fn kni_host(&self, ip: IpAddr) -> bool {
        self.routes.lookup(ip).is_some_and(|r| r.scope == Scope::KniHost)
    }

    /// Whether the dataplane itself answers for `ip` on `port`: it owns the address
    /// there and no kni_host route hands it to the kernel.
    #[inline]
    pub fn answers_for(&self, port: usize, ip: IpAddr) -> bool {
        self.addrs.owner(ip).is_some_and(|(p, _)| p.0 as usize == port) && !self.kni_host(ip)
    }
}

/// Next hops resolved at once, and packets each may hold meanwhile (DPDK's burst).
pub const PENDING_HOPS: usize = 64;
/// Packets one next hop may hold while it is resolved.
pub const PENDING_PER_HOP: usize = 32;
/// How often the node looks for requests due and next hops given up on, ms (the
/// requests themselves go [`netstack::neigh::RETRY_INTERVAL_MS`] apart).
pub const RETRY_MS: u64 = 10;
/// Room asked of a new buffer for an ICMP error (the quoted packet is cut to fit
/// IPv6's minimum MTU).
const ICMP_ERROR_ROOM: usize = ETH_LEN + 1280;
/// Room asked of a new buffer for an ARP request or a neighbour solicitation.
const SOLICIT_ROOM: usize = 128;
/// A neighbour advertisement with its target link-layer address option.
const ADVERT_LEN: usize = ETH_LEN + 40 + 32;

/// Time-exceeded errors a worker sends a second at most, as Linux's
/// `icmp_msgs_per_sec`: rvs answers a TTL-1 packet to whatever source it claims, so
/// without a limit a spoofed flood would make every worker reflect one error per frame.
pub const ICMP_ERRORS_PER_SEC: u64 = 1000;
/// Time-exceeded errors a worker may send at once after a quiet spell, as Linux's
/// `icmp_msgs_burst`.
pub const ICMP_ERROR_BURST: u64 = 50;

/// Which ICMP error to send about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IcmpKind {
    TimeExceeded,
    TooBig(u32),
}

/// One worker's frame logic and the packets it holds for unresolved neighbours.
pub struct Node<B> {
    /// Its counters.
    pub counters: NetCounters,
    pending: Pending<B>,
    retry_at: u64,
    hops: HopCache,
    /// The worker's own time-exceeded errors ([`ICMP_ERRORS_PER_SEC`],
    /// [`ICMP_ERROR_BURST`]). "Fragmentation needed" / "packet too big" are not
    /// limited, as in Linux (PMTU discovery must not stall), and only go to the sender
    /// of a connection's packet.
    errors: Bucket,
    /// Client-side ICMP errors handed to every other worker ([`EVERY_WORKER`]): a
    /// bucket of the same size as the node's own errors' (each costs a copy per worker,
    /// and anyone can send them).
    fanouts: Bucket,
    /// What goes up to the kernel twins (see [`crate::twin`]).
    twin: TwinBudget,
    /// The loop's time at the last housekeeping (ms): the twins' budgets are refilled
    /// when a frame takes from them.
    twin_now: u64,
}

impl<B: PacketBuf> Default for Node<B> {
    fn default() -> Self {
        Node::new()
    }
}

impl<B: PacketBuf> Node<B> {
    /// A node with empty counters and an empty pending queue (sized once, here).
    pub fn new() -> Node<B> {
        Node {
            counters: NetCounters::default(),
            pending: Pending::new(PENDING_HOPS, PENDING_PER_HOP),
            retry_at: 0,
            hops: HopCache::new(),
            errors: Bucket::new(ICMP_ERRORS_PER_SEC, ICMP_ERROR_BURST),
            fanouts: Bucket::new(ICMP_ERRORS_PER_SEC, ICMP_ERROR_BURST),
            twin: TwinBudget::unlimited(),
            twin_now: 0,
        }
    }

    /// Sets this worker's budgets for frames going up to the kernel twins (unlimited
    /// until set).
    pub fn set_twin_budget(&mut self, budget: TwinBudget) {
        self.twin = budget;
    }

    /// The next hops the connections' packets take (see [`HopCache`]).
    pub fn hops(&self) -> &HopCache {
        &self.hops
    }

    /// Once per loop: after a route change, a slice of the walk that makes `engine`'s
    /// connections forget their next-hop slots (until it ends, packets are routed one
    /// by one). A caller that never calls it keeps correct routing without the cache.
    #[inline]
    pub fn tend_hops(&mut self, engine: &mut Engine) {
        if let Some(at) = self.hops.forgetting() {
            self.hops.forgot_up_to(engine.forget_hops(at, FORGET_PER_LOOP));
        }
    }

    /// Packets waiting for a neighbour.
    pub fn pending(&self) -> usize {
        self.pending.queued()
    }

    /// One frame received on `port`. ARP, ND and frames for the kernel are dealt with
    /// here; an IP frame for the core is handed back.
    /// A frame tagged for one of the port's VLAN sub-interfaces arrives on that
    /// sub-interface, its tag removed (the IP frame handed back is then the
    /// sub-interface's: `port` becomes its index).
    #[inline]
    pub fn receive(&mut self, net: &Net, port: &mut usize, mut b: B, io: &mut impl Io<B>) -> Option<B> {
        self.counters.inc(NetCounter::RxPackets);
        self.counters.counts.add_n(NetCounter::RxBytes, b.len() as u64);
        let Some(mut p) = net.ports.get(*port) else {
            self.counters.drop(NetDrop::BadFrame);
            return None;
        };
        let Ok(eth) = EthernetFrame::new_checked(b.data()) else {
            self.counters.drop(NetDrop::BadFrame);
            return None;
        };
        if eth.src_addr() == p.mac {
            self.counters.drop(NetDrop::OwnFrame);
            return None;
        }
        let dst = eth.dst_addr();
        if dst != p.mac && !dst.is_multicast() {
            self.counters.drop(NetDrop::NotForUs);
            return None;
        }
        let mut ethertype = eth.ethertype();
        if ethertype == EtherType::VLAN && p.vlan.is_none() {
            if let Some((sub, inner)) = self.untag(net, *port, &mut b) {
                *port = sub;
                p = &net.ports[sub];
                ethertype = inner;
            }
        }
        let port = *port;
        if p.forward2kni {
            // A copy of everything received, for tcpdump on the twin (off by default).
            match io.copy(&b) {
                // (Bulk whatever it carries: the original takes its own class.)
                Some(c) => self.up_to_twin_as(net, port, c, TwinClass::Bulk, io),
                None => self.counters.drop(NetDrop::NoMbuf),
            }
        }
        match ethertype {
            EtherType::IPV6 if is_nd(b.data()) => self.nd(net, port, b, io),
            EtherType::IPV4 | EtherType::IPV6 => {
                // The IPv4 header checksum, for every frame (20 bytes; the NIC's verdict
                // where it gave one): nothing with a damaged header goes further.
                if !ip::header_checksum_ok(b.data(), b.rx_checksums().ip) {
                    self.counters.drop(NetDrop::BadIpChecksum);
                    return None;
                }
                if ip::ttl(b.data()).is_some_and(|t| t <= 1) && self.expires_here(net, &b, io) {
                    return None;
                }
                return Some(b);
            }
            EtherType::ARP => self.arp(net, port, b, io),
            // Frames of VLANs without a sub-interface, and other protocols, are the
            // kernel's (it may have interfaces for them).
            _ => self.up_to_twin(net, port, b, io),
        }
        None
    }

    /// Removes the 802.1Q tag of a frame received on physical port `port` when it is
    /// for one of its sub-interfaces (or priority-tagged, VLAN 0: then for the port
    /// itself): that port's index and the inner EtherType. `None`: left as it is.
    #[inline]
    fn untag(&mut self, net: &Net, port: usize, b: &mut B) -> Option<(usize, EtherType)> {
        let tag = wire::VlanPacket::new_checked(b.data().get(ETH_LEN..)?).ok()?;
        let (vid, inner) = (tag.vlan_id(), tag.ethertype());
        let sub = match vid {
            0 => port,
            _ => crate::port::vlan_port(net.ports, port, vid)?,
        };
        // The MACs move up over the tag: the inner EtherType follows them.
        b.remove_gap(ETH_LEN - 2, wire::vlan::HEADER_LEN).ok()?;
        self.counters.inc(NetCounter::VlanRx);
        Some((sub, inner))
    }

    /// Acts on the core's verdict about an IP frame received on `port` (`engine` is
    /// the core that gave it, asked only when an error must quote the packet as it
    /// arrived).
    #[inline]
    pub fn after_core(&mut self, net: &Net, port: usize, b: B, v: Verdict, engine: &mut Engine, io: &mut impl Io<B>) {
        match v {
            Verdict::Forward { dst, dir, conn } => {
                if let Some((b, mtu)) = self.forward_conn(net, b, dst, (conn, dir), engine, io) {
                    // Too big for the way out: the error quotes the packet as the sender
                    // sent it, before translation; a packet rvs put in a tunnel (TUN)
                    // is quoted without the outer header, whose size the MTU leaves out.
                    let mut quote = [0u8; ip::QUOTE_MAX];
                    // (None for a verdict that names no connection: its arrival is
                    // not known.)
                    let key = engine.arrival_key(conn, dir);
                    let outer = fnat::tunnel::inner_offset(&b.data()[ETH_LEN..]).unwrap_or(0);
                    let quoted = (key.src != fnat::conn::Addr::UNSPECIFIED)
                        .then(|| ip::quote_as_arrived(&b.data()[ETH_LEN + outer..], &key, &mut quote))
                        .flatten();
                    if let Some(n) = quoted {
                        self.icmp_error(net, &quote[..n], IcmpKind::TooBig(mtu - outer as u32), io);
                    }
                }
            }
            Verdict::Drop(_) => {}
            Verdict::NotMine => self.local(net, port, b, io),
            Verdict::Redirect { owner: EVERY_WORKER } => self.fan_out(net, port, b, io),
            Verdict::Redirect { owner } => io.redirect(owner, port, b),
        }
    }

    /// A client-side ICMP error about a connection this worker does not hold
    /// ([`EVERY_WORKER`]): to every other worker, within the `fanouts` budget. Not a copy
    /// other workers handed over already (no worker holds it: `icmp_nowhere`), nor one
    /// about the kernel's own session on an address a kni_host route gives it (its
    /// twin's).
    #[cold]
    fn fan_out(&mut self, net: &Net, port: usize, b: B, io: &mut impl Io<B>) {
        if ip::parse(b.data()).is_some_and(|l3| net.kni_host(l3.dst)) {
            return self.local(net, port, b, io);
        }
        if io.handed_over() {
            return self.counters.drop(NetDrop::IcmpNowhere);
        }
        if !self.fanouts.take() {
            return self.counters.drop(NetDrop::IcmpRateLimited);
        }
        io.redirect(EVERY_WORKER, port, b);
    }

    /// Once per loop, with the loop's time (ms): refills the bucket of the node's own
    /// time-exceeded errors; every few milliseconds, asks again for the next hops
    /// packets wait for, and drops the packets of those that never answered. Returns
    /// whether the latter ran (the worker does its own periodic I/O duties on the same
    /// beat).
    pub fn housekeeping(&mut self, net: &Net, now: u64, io: &mut impl Io<B>) -> bool {
        self.errors.refill(now);
        self.fanouts.refill(now);
        self.twin_now = now;
        if now < self.retry_at {
            return false;
        }
        self.retry_at = now + RETRY_MS;
        let mut asks = [(PortId(0), IpAddr::V4(Ipv4Addr::UNSPECIFIED)); 16];
        let mut n = 0;
        let mut due = self.pending.due_retries(now);
        while n < asks.len() {
            match due.next() {
                Some(Due::Request { port, next_hop, .. }) => {
                    asks[n] = (port, next_hop);
                    n += 1;
                }
                Some(Due::GaveUp { packet, .. }) => {
                    drop(packet);
                    self.counters.drop(NetDrop::Unresolved);
                }
                None => break,
            }
        }
        for &(port, hop) in &asks[..n] {
            self.solicit(net, port.0 as usize, hop, io);
        }
        true
    }

    /// Sends the packets whose next hop the (new) neighbour table knows.
    pub fn release_resolved(&mut self, net: &Net, io: &mut impl Io<B>) {
        while let Some(hop) = self.pending.find_waiting(|h| net.neighs.lookup(h).is_some()) {
            let Some(e) = net.neighs.lookup(hop) else { break };
            let (mac, port) = (e.mac, e.port.0 as usize);
            let Node { counters, pending, .. } = self;
            for b in pending.take(hop) {
                send(counters, net, b, port, mac, io);
            }
        }
    }

    fn arp(&mut self, net: &Net, port: usize, mut b: B, io: &mut impl Io<B>) {
        let Ok(info) = arp::classify(b.data()) else {
            return self.counters.drop(NetDrop::BadFrame);
        };
        let answer = info.op == wire::arp::Operation::Reply && !info.gratuitous;
        self.seen(net, IpAddr::V4(info.sender_ip), info.sender_mac, port, answer, io);
        let target = IpAddr::V4(info.target_ip);
        if info.op == wire::arp::Operation::Request && !info.gratuitous && net.answers_for(port, target) {
            if arp::reply_in_place(b.data_mut(), net.ports[port].mac).is_err() {
                return self.counters.drop(NetDrop::BadFrame);
            }
            self.counters.inc(NetCounter::ArpReplies);
            return transmit(&mut self.counters, net, port, b, io);
        }
        // Replies, gratuitous ARP, requests for other addresses: the kernel's too.
        self.up_to_twin(net, port, b, io);
    }

    fn nd(&mut self, net: &Net, port: usize, mut b: B, io: &mut impl Io<B>) {
        let Ok(info) = nd::classify(b.data()) else {
            return self.counters.drop(NetDrop::BadFrame);
        };
        if let Some((ip, mac)) = info.binding() {
            let ip = IpAddr::V6(ip);
            if !info.may_override() && net.neighs.lookup(ip).is_some_and(|e| e.mac != mac) {
                self.counters.inc(NetCounter::NeighRefused);
            } else {
                let answer =
                    matches!(info.kind, nd::NdKind::Advert { flags } if flags.contains(wire::NdiscFlags::SOLICITED));
                self.seen(net, ip, mac, port, answer, io);
            }
        }
        if matches!(info.kind, nd::NdKind::Solicit) && net.answers_for(port, IpAddr::V6(info.target)) {
            // The advert may be longer than the solicitation: give it the room.
            if b.len() < ADVERT_LEN && b.grow_back(ADVERT_LEN - b.len()).is_err() {
                return self.counters.drop(NetDrop::NoMbuf);
            }
            let Ok(n) = nd::advert_in_place(b.data_mut(), net.ports[port].mac) else {
                return self.counters.drop(NetDrop::BadFrame);
            };
            b.truncate(n);
            self.counters.inc(NetCounter::NdAdverts);
            return transmit(&mut self.counters, net, port, b, io);
        }
        self.up_to_twin(net, port, b, io);
    }

    /// A packet arriving with TTL / hop limit 1 (or 0) for one of our addresses, other
    /// than ICMP (echo is answered; errors are translated): the core would forward it
    /// to a real server or client with the TTL spent, so it is dropped here and the
    /// sender told, before it takes a connection or a local port. Addresses under a
    /// kni_host route are the kernel's destination, not a hop: their packets arrive
    /// (eBGP sends with TTL 1). The error is rate limited ([`ICMP_ERRORS_PER_SEC`]):
    /// beyond it the packet is still dropped, the error not sent (`icmp_rate_limited`).
    fn expires_here(&mut self, net: &Net, b: &B, io: &mut impl Io<B>) -> bool {
        let Some(l3) = ip::parse(b.data()) else { return false };
        if net.addrs.owner(l3.dst).is_none()
            || net.kni_host(l3.dst)
            || matches!(l3.proto, IpProtocol::ICMP | IpProtocol::ICMPV6)
        {
            return false;
        }
        if fnat::sanity::martian(l3.src) {
            // No error to a source that cannot be answered: the core refuses it.
            return false;
        }
        if self.errors.take() {
            self.icmp_error(net, &b.data()[ETH_LEN..], IcmpKind::TimeExceeded, io);
        } else {
            self.counters.drop(NetDrop::IcmpRateLimited);
        }
        self.counters.drop(NetDrop::TtlExceeded);
        true
    }

    /// Tells the control thread about a neighbour binding the table does not hold (or
    /// holds in probe, awaiting this confirmation), if it may be learned at all
    /// ([`netstack::neigh::admit`]: on-link for this port, not ours, unicast, no static
    /// entry overridden); a refused one is only counted (`neigh_refused`). Senders
    /// without an address (ARP probes, DAD) tell nothing. Of a neighbour the table does
    /// not hold, only an `answer` (an ARP reply, a solicited advertisement) is told:
    /// rvs learns new neighbours only by asking for them (the control thread checks
    /// that someone did), so gratuitous ARP, requests, solicitations and unsolicited
    /// advertisements update known neighbours only (`neigh_unsolicited`).
    #[inline]
    fn seen(&mut self, net: &Net, ip: IpAddr, mac: EthernetAddress, port: usize, answer: bool, io: &mut impl Io<B>) {
        let pid = PortId(port as u16);
        if ip.is_unspecified() || net.neighs.known(ip, mac, pid) {
            return;
        }
        match netstack::admit(net.addrs, net.neighs, ip, mac, pid) {
            Ok(()) if !answer && net.neighs.lookup(ip).is_none() => self.counters.inc(NetCounter::NeighUnsolicited),
            Ok(()) => io.seen_neighbour(ip, mac, port),
            Err(_) => self.counters.inc(NetCounter::NeighRefused),
        }
    }

    /// Neither a service's packet nor a connection's. Addresses the dataplane owns:
    /// echo answered, TCP/UDP to a VIP without a service dropped (`no_service`), the
    /// rest dropped (`local_unhandled`). Addresses under a kni_host route, and
    /// everything not owned (the kernel's own addresses, multicast such as VRRP,
    /// broadcast), go up to the port's twin.
    fn local(&mut self, net: &Net, port: usize, mut b: B, io: &mut impl Io<B>) {
        let Some(l3) = ip::parse(b.data()) else {
            return self.counters.drop(NetDrop::BadFrame);
        };
        if net.kni_host(l3.dst) {
            return self.up_to_twin(net, port, b, io);
        }
        let Some((_, entry)) = net.addrs.owner(l3.dst) else {
            return self.up_to_twin(net, port, b, io);
        };
        if entry.flags.vip && matches!(l3.proto, IpProtocol::TCP | IpProtocol::UDP) {
            // A VIP port without a service: dropped, like DPVS (no RST).
            return self.counters.drop(NetDrop::NoService);
        }
        if !ip::icmp_checksum_ok(b.data(), &l3) {
            // Not answered: the reply would carry the damage back.
            return self.counters.drop(NetDrop::BadIcmpChecksum);
        }
        if icmp::echo_reply_in_place(b.data_mut(), ETH_LEN).is_err() {
            return self.counters.drop(NetDrop::LocalUnhandled);
        }
        self.counters.inc(NetCounter::EchoReplies);
        // The reply goes back to the request's source.
        self.forward(net, b, l3.src, true, io);
    }

    /// Routes an IP frame towards `dst`: TTL, MTU, neighbour, transmit. `local` frames
    /// were made here and keep their TTL. A forwarded frame larger than the outgoing
    /// port's MTU is counted and handed back with that MTU (its ICMP error must quote
    /// it as it arrived, which the caller knows); a local one is dropped.
    fn forward(&mut self, net: &Net, b: B, dst: IpAddr, local: bool, io: &mut impl Io<B>) -> Option<(B, u32)> {
        let (b, port, nh) = self.route(net, b, dst, io)?;
        let mac = net.neighs.lookup(nh).map(|e| e.mac);
        // Answers to a packet's source: a made-up one must not take a gateway's slot.
        let origin = if nh == dst { HopOrigin::Claimed } else { HopOrigin::Configured };
        self.emit(net, b, port, (nh, origin), mac, local, io)
    }

    /// [`Node::forward`] for a connection's packet going `dir`: through the next hop the
    /// connection keeps ([`HopCache`]) when it has a usable one; otherwise routed, and
    /// the next hop kept for its next packets once its MAC is known.
    #[inline]
    fn forward_conn(
        &mut self,
        net: &Net,
        b: B,
        dst: IpAddr,
        (conn, dir): (ConnRef, Direction),
        engine: &mut Engine,
        io: &mut impl Io<B>,
    ) -> Option<(B, u32)> {
        self.hops.follow(net.routes, net.neighs);
        if let Some(via) = self.hops.get(engine.hop(conn, dir), net.neighs) {
            return self.emit(net, b, via.port, (via.ip, HopOrigin::Configured), Some(via.mac), false, io);
        }
        let (b, port, ip) = self.route(net, b, dst, io)?;
        let mac = net.neighs.lookup(ip).map(|e| e.mac);
        if let Some(mac) = mac {
            let slot = self.hops.insert(Via { port, ip, mac });
            if slot != NO_HOP {
                engine.set_hop(conn, dir, slot);
            }
        }
        // Through a gateway, or to the real server a connection was scheduled to: the
        // configuration's next hop. Straight to a client on the link, or for SNAT to
        // wherever the inside host sent: an address a packet's source chose. (Only a
        // next hop to wait for needs telling: the connection is read for nothing else.)
        let chosen = mac.is_some()
            || ip != dst
            || (dir == Direction::Input && engine.fwd(conn) != Some(fnat::types::FwdMode::Snat));
        let origin = if chosen { HopOrigin::Configured } else { HopOrigin::Claimed };
        self.emit(net, b, port, (ip, origin), mac, false, io)
    }

    /// The port and next hop of a frame towards `dst`; `None` when it leaves by no port:
    /// no route (counted), or a kni_host route (handed up to the twin).
    #[inline]
    fn route(&mut self, net: &Net, b: B, dst: IpAddr, io: &mut impl Io<B>) -> Option<(B, usize, IpAddr)> {
        let Some(route) = net.routes.lookup(dst) else {
            self.counters.drop(NetDrop::NoRoute);
            return None;
        };
        let port = route.dev.0 as usize;
        if port >= net.ports.len() {
            self.counters.drop(NetDrop::NoRoute);
            return None;
        }
        if route.scope == Scope::KniHost {
            self.up_to_twin(net, port, b, io);
            return None;
        }
        Some((b, port, route.next_hop(dst)))
    }

    /// Sends a routed frame out of `port` to next hop `nh` (and who chose it), whose
    /// MAC is `mac` (`None`: unknown, the frame waits for it): TTL (unless `local`),
    /// MTU, MACs, transmit.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        net: &Net,
        mut b: B,
        port: usize,
        (nh, origin): (IpAddr, HopOrigin),
        mac: Option<EthernetAddress>,
        local: bool,
        io: &mut impl Io<B>,
    ) -> Option<(B, u32)> {
        let Some(p) = net.ports.get(port) else {
            self.counters.drop(NetDrop::NoRoute);
            return None;
        };
        if !local && !ip::decrement_ttl(b.data_mut()) {
            // (Frames with TTL 1 for our addresses were stopped before the core.)
            self.counters.drop(NetDrop::TtlExceeded);
            return None;
        }
        let mtu = p.mtu as usize;
        if b.len() - ETH_LEN > mtu && ip::parse(b.data()).is_some_and(|l3| l3.len > mtu) {
            self.counters.drop(NetDrop::TooBig);
            return (!local).then_some((b, mtu as u32));
        }
        match mac {
            Some(mac) => send(&mut self.counters, net, b, port, mac, io),
            None => {
                if self.pending.push(PortId(port as u16), nh, origin, b).is_err() {
                    self.counters.drop(NetDrop::PendingFull);
                } else {
                    // Ask at once; retries follow from `housekeeping`.
                    self.retry_at = 0;
                }
            }
        }
        None
    }

    /// Sends an ICMP error about the IP packet `quoted` (as its sender sent it, or its
    /// start) back to its source, from our address on the way back. Errors about
    /// errors, fragments and multicast are suppressed by netstack.
    fn icmp_error(&mut self, net: &Net, quoted: &[u8], kind: IcmpKind, io: &mut impl Io<B>) {
        let Some(src) = ip::source(quoted) else { return };
        let Some(back) = net.routes.lookup(src) else { return };
        let Some(ours) = net.addrs.source_for(back.dev, src) else { return };
        let Some(mut m) = io.alloc() else {
            return self.counters.drop(NetDrop::NoMbuf);
        };
        if m.grow_back(ICMP_ERROR_ROOM).is_err() {
            return self.counters.drop(NetDrop::NoMbuf);
        }
        let out = &mut m.data_mut()[ETH_LEN..];
        let (built, ethertype) = match (ours, kind) {
            (IpAddr::V4(a), IcmpKind::TimeExceeded) => {
                (icmp::build_error_v4(out, a, quoted, Icmpv4ErrorKind::TimeExceeded), EtherType::IPV4)
            }
            (IpAddr::V4(a), IcmpKind::TooBig(mtu)) => (
                icmp::build_error_v4(
                    out,
                    a,
                    quoted,
                    Icmpv4ErrorKind::FragNeeded { mtu: mtu.min(u16::MAX as u32) as u16 },
                ),
                EtherType::IPV4,
            ),
            (IpAddr::V6(a), IcmpKind::TimeExceeded) => {
                (icmp::build_error_v6(out, a, quoted, Icmpv6ErrorKind::TimeExceeded), EtherType::IPV6)
            }
            (IpAddr::V6(a), IcmpKind::TooBig(mtu)) => {
                (icmp::build_error_v6(out, a, quoted, Icmpv6ErrorKind::PacketTooBig { mtu }), EtherType::IPV6)
            }
        };
        // Suppressed (an error about an error, a fragment, multicast): nothing to send.
        let Ok(n) = built else { return };
        m.truncate(ETH_LEN + n);
        if let Ok(mut f) = EthernetFrame::new_checked(m.data_mut()) {
            f.set_ethertype(ethertype);
        }
        self.counters.inc(NetCounter::IcmpErrors);
        self.forward(net, m, src, true, io);
    }

    /// Asks who has `hop` on `port` (ARP request or neighbour solicitation), and tells
    /// the control thread that its answer may be learned.
    fn solicit(&mut self, net: &Net, port: usize, hop: IpAddr, io: &mut impl Io<B>) {
        let Some(src) = net.addrs.source_for(PortId(port as u16), hop) else { return };
        let Some(p) = net.ports.get(port) else { return };
        io.asking_neighbour(hop, port);
        let Some(mut m) = io.alloc() else {
            return self.counters.drop(NetDrop::NoMbuf);
        };
        if m.grow_back(SOLICIT_ROOM).is_err() {
            return self.counters.drop(NetDrop::NoMbuf);
        }
        let built = match (src, hop) {
            (IpAddr::V4(s), IpAddr::V4(t)) => {
                self.counters.inc(NetCounter::ArpRequests);
                arp::build_request(m.data_mut(), p.mac, s, t)
            }
            (IpAddr::V6(s), IpAddr::V6(t)) => {
                self.counters.inc(NetCounter::NdSolicits);
                nd::build_solicit(m.data_mut(), p.mac, s, t)
            }
            _ => return,
        };
        let Ok(len) = built else { return };
        m.truncate(len);
        transmit(&mut self.counters, net, port, m, io);
    }

    /// A frame the kernel sent on `port`'s twin: out of the port (tagged, for a VLAN
    /// sub-interface). (The kernel's ARP requests are not the dataplane's: their
    /// answers go up to the twin, and teach the dataplane nothing new, or anyone who
    /// can make the kernel ask could fill the neighbour table.)
    #[inline]
    pub fn from_twin(&mut self, net: &Net, port: usize, b: B, io: &mut impl Io<B>) {
        if port >= net.ports.len() {
            return self.counters.drop(NetDrop::NoRoute);
        }
        self.counters.inc(NetCounter::TwinDown);
        transmit(&mut self.counters, net, port, b, io);
    }

    /// Hands a frame to `port`'s kernel twin, within its class's budget (see
    /// [`crate::twin`]), or drops it when the port has none.
    #[inline]
    fn up_to_twin(&mut self, net: &Net, port: usize, b: B, io: &mut impl Io<B>) {
        let class = twin::class_of(b.data());
        self.up_to_twin_as(net, port, b, class, io);
    }

    /// [`up_to_twin`](Self::up_to_twin) as `class`.
    #[inline]
    fn up_to_twin_as(&mut self, net: &Net, port: usize, b: B, class: TwinClass, io: &mut impl Io<B>) {
        if !net.ports.get(port).is_some_and(|p| p.twin) {
            return self.counters.drop(NetDrop::NoTwin);
        }
        if !self.twin.take(class, port, self.twin_now) {
            return self.counters.drop(match class.is_control() {
                true => NetDrop::TwinLimitedControl,
                false => NetDrop::TwinLimited,
            });
        }
        io.up_to_twin(port, b, class);
    }
}

/// Addresses a routed frame to its next hop's MAC from `port`'s and transmits it.
#[inline]
fn send<B: PacketBuf>(
    c: &mut NetCounters,
    net: &Net,
    mut b: B,
    port: usize,
    dst: EthernetAddress,
    io: &mut impl Io<B>,
) {
    let Some(p) = net.ports.get(port) else { return c.drop(NetDrop::NoRoute) };
    if !ip::set_macs(b.data_mut(), p.mac, dst) {
        return c.drop(NetDrop::BadFrame);
    }
    transmit(c, net, port, b, io);
}

/// Every frame the node sends passes here: a VLAN sub-interface's gets its 802.1Q tag
/// (PCP 0) and leaves through its parent port.
#[inline]
fn transmit<B: PacketBuf>(c: &mut NetCounters, net: &Net, port: usize, mut b: B, io: &mut impl Io<B>) {
    let out = match net.ports.get(port).and_then(|p| p.vlan) {
        None => port,
        Some(v) => {
            if tag(&mut b, v.id).is_err() {
                return c.drop(NetDrop::NoMbuf);
            }
            c.inc(NetCounter::VlanTx);
            v.parent
        }
    };
    c.inc(NetCounter::TxPackets);
    io.transmit(out, b);
}

/// Puts an 802.1Q tag with VLAN id `vid` after the MACs of an untagged frame.
#[inline]
fn tag<B: PacketBuf>(b: &mut B, vid: u16) -> Result<(), fnat::buf::NoRoom> {
    const AT: usize = ETH_LEN - 2;
    b.insert_gap(AT, wire::vlan::HEADER_LEN)?;
    let d = b.data_mut();
    d[AT..AT + 2].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
    d[AT + 2..AT + 4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    Ok(())
}

/// Is this IPv6 frame neighbour discovery (solicitation or advertisement)?
#[inline]
fn is_nd(frame: &[u8]) -> bool {
    let Some(p) = frame.get(ETH_LEN..).and_then(|l3| Ipv6Packet::new_checked(l3).ok()) else { return false };
    p.next_header() == IpProtocol::ICMPV6
        && matches!(
            wire::Icmpv6Packet::new_checked(p.payload()).map(|m| m.msg_type()),
            Ok(wire::Icmpv6Message::NEIGHBOR_SOLICIT | wire::Icmpv6Message::NEIGHBOR_ADVERT)
        )
}
