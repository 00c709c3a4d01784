//! One worker: a run-to-completion loop on its own lcore.
//!
//! Each iteration: notice a new configuration generation (one atomic load), answer the
//! control thread's commands, receive a burst from each port's queue, classify every
//! frame (ARP, ND, IP), run IP through the FullNAT core, route and resolve the result,
//! queue it on the outgoing port's transmit buffer, then run timers and neighbour
//! retries, and flush the transmit buffers. Nothing here allocates, locks or makes a
//! syscall per packet: buffers come from the mempool, tables are read from the
//! immutable snapshot, counters are the worker's own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dpdk::{Burst, Mbuf, Mempool, RingConsumer, RingProducer, RxQueue, TxBuffer};
use fnat::engine::{Engine, Verdict};
use fnat::stats::DropReason;
use netstack::icmp::{Icmpv4ErrorKind, Icmpv6ErrorKind};
use netstack::neigh::Due;
use netstack::{arp, icmp, nd, Pending, PortId, Scope};
use wire::checksum;
use wire::EthernetAddress;

use crate::clock::Clock;
use crate::counters::{NetCounters, NetDrop};
use crate::pktbuf::MbufSlot;
use crate::shared::{Command, Reply, Shared, Snapshot, WorkerReport};

const ETH_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Next hops resolved at once, and packets each may hold meanwhile.
const PENDING_HOPS: usize = 64;
const PENDING_PER_HOP: usize = dpdk::BURST_SIZE;
/// Connections the timer wheel may free per loop (keeps every loop short).
const EXPIRE_BUDGET: u32 = 256;

/// What a worker is made of; built by the dataplane on the main lcore.
pub struct WorkerParts {
    /// Worker id (0-based).
    pub id: u16,
    /// The lcore it runs on.
    pub lcore: u32,
    /// Its receive queue on each port (index = port id).
    pub rx: Vec<RxQueue>,
    /// Its transmit buffer on each port (index = port id).
    pub tx: Vec<TxBuffer>,
    /// The packet buffer pool (for ARP requests and ICMP errors).
    pub pool: Arc<Mempool>,
    /// Its FullNAT core.
    pub engine: Engine,
    /// State shared with the control thread.
    pub shared: Arc<Shared>,
    /// The common clock.
    pub clock: Clock,
    /// Free a removed real server's connections at once (LVS `expire_nodest_conn`).
    pub expire_nodest: bool,
    /// Frames for the kernel twins go up this ring (the control thread writes them to
    /// the twins), tagged with their port in `Mbuf::port`.
    pub kni_up: RingProducer,
    /// Frames the kernel sent on a twin, to transmit (tagged with their port); only
    /// one worker gets this.
    pub kni_down: Option<RingConsumer>,
    /// Copies of captured frames go up this ring (to the control thread's writer).
    pub capture: RingProducer,
    /// Rings to the other workers (index = worker id; `None` for this worker), for
    /// replies whose local port they own.
    pub redirect_tx: Vec<Option<RingProducer>>,
    /// Rings from the other workers.
    pub redirect_rx: Vec<RingConsumer>,
}

/// Removed real servers whose connections are being expired, at most.
const NODEST_QUEUE: usize = 1024;
/// Connection slots scanned per loop while expiring them.
const NODEST_SLOTS_PER_LOOP: u32 = 4096;

/// A running worker.
pub struct Worker {
    id: u16,
    lcore: u32,
    rx: Vec<RxQueue>,
    tx: Vec<TxBuffer>,
    pool: Arc<Mempool>,
    engine: Engine,
    shared: Arc<Shared>,
    clock: Clock,
    snap: Arc<Snapshot>,
    pending: Pending<Mbuf>,
    net: NetCounters,
    burst: Burst,
    retry_at: u64,
    persist_at: u64,
    expire_nodest: bool,
    nodest: Vec<fnat::service::RsId>,
    nodest_pos: u32,
    kni_up: RingProducer,
    kni_down: Option<RingConsumer>,
    kni_out: Burst,
    redirect_tx: Vec<Option<RingProducer>>,
    redirect_rx: Vec<RingConsumer>,
    redirect_out: Vec<Burst>,
    capture: RingProducer,
    ip_batch: [MbufSlot; dpdk::BURST_SIZE],
    verdicts: [Verdict; dpdk::BURST_SIZE],
}

/// Every frame's IP header follows a 14-byte Ethernet header.
const L3_OFFSETS: [usize; dpdk::BURST_SIZE] = [ETH_LEN; dpdk::BURST_SIZE];

impl Worker {
    /// A worker on the current snapshot.
    pub fn new(p: WorkerParts) -> Worker {
        let snap = p.shared.current();
        Worker {
            id: p.id,
            lcore: p.lcore,
            rx: p.rx,
            tx: p.tx,
            pool: p.pool,
            engine: p.engine,
            shared: p.shared,
            clock: p.clock,
            snap,
            pending: Pending::new(PENDING_HOPS, PENDING_PER_HOP),
            net: NetCounters::default(),
            burst: Burst::new(),
            retry_at: 0,
            persist_at: 0,
            expire_nodest: p.expire_nodest,
            nodest: Vec::with_capacity(NODEST_QUEUE),
            nodest_pos: 0,
            kni_up: p.kni_up,
            kni_down: p.kni_down,
            kni_out: Burst::new(),
            redirect_out: p.redirect_tx.iter().map(|_| Burst::new()).collect(),
            redirect_tx: p.redirect_tx,
            redirect_rx: p.redirect_rx,
            capture: p.capture,
            ip_batch: Default::default(),
            verdicts: [Verdict::NotMine; dpdk::BURST_SIZE],
        }
    }

    /// Runs until the control thread sets the stop flag; returns 0.
    pub fn run(mut self) -> i32 {
        self.shared.workers[self.id as usize].seen_gen.store(self.snap.gen, Ordering::Release);
        tracing::info!(worker = self.id, lcore = self.lcore, "worker running");
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.refresh();
            self.commands();
            let now = self.clock.now_ms();
            let mut got = 0;
            for port in 0..self.rx.len() {
                let n = self.rx[port].rx_burst(&mut self.burst);
                if n == 0 {
                    continue;
                }
                got += n;
                // Frames for the core are gathered and go through it together, so the
                // connection lookups of the burst overlap their cache misses.
                let mut k = 0;
                for i in 0..n {
                    if let Some(m) = self.burst.take(i) {
                        if let Some(ip) = self.handle(port, m) {
                            self.ip_batch[k] = MbufSlot(Some(ip));
                            k += 1;
                        }
                    }
                }
                self.burst.forget_taken();
                if k > 0 {
                    self.engine.process_burst(
                        &self.snap.services,
                        &mut self.ip_batch[..k],
                        &L3_OFFSETS[..k],
                        now,
                        &mut self.verdicts[..k],
                    );
                    for i in 0..k {
                        if let Some(m) = self.ip_batch[i].0.take() {
                            self.after_core(port, m, self.verdicts[i]);
                        }
                    }
                }
            }
            got += self.redirected_in(now);
            got += self.down_from_twins();
            self.net.loops += 1;
            if got > 0 {
                self.net.busy_loops += 1;
            }
            self.engine.expire(now, EXPIRE_BUDGET);
            if now >= self.persist_at {
                self.engine.expire_persistence(now);
                self.persist_at = now + 1000;
            }
            if let Some(&rs) = self.nodest.last() {
                match self.engine.expire_rs(rs, self.nodest_pos, NODEST_SLOTS_PER_LOOP).1 {
                    Some(pos) => self.nodest_pos = pos,
                    None => {
                        self.nodest.pop();
                        self.nodest_pos = 0;
                    }
                }
            }
            if now >= self.retry_at {
                self.retries(now);
                self.retry_at = now + 10;
                // 802.3ad bonds send LACPDUs from inside transmit calls: poll idle
                // ports too (DPDK asks for at least every 100 ms).
                for t in &mut self.tx {
                    t.poll();
                }
            }
            self.flush_kni();
            self.flush_redirects();
            for t in &mut self.tx {
                t.flush();
            }
        }
        // Leave a final report for the control thread's shutdown summary.
        let report = self.report();
        let _ = self.shared.workers[self.id as usize].replies.push(Reply::Stats(Box::new(report)));
        0
    }

    /// Picks up a newly published generation.
    fn refresh(&mut self) {
        let gen = self.shared.gen.load(Ordering::Acquire);
        if gen == self.snap.gen {
            return;
        }
        let new = self.shared.current();
        let mut rebind = !Arc::ptr_eq(&new.services, &self.snap.services);
        if rebind && self.expire_nodest {
            for d in self.snap.services.services().iter().flat_map(|s| &s.dests) {
                if new.services.dest(d.id).is_none() && self.nodest.len() < NODEST_QUEUE {
                    self.nodest.push(d.id);
                }
            }
        }
        if !Arc::ptr_eq(&new.laddrs, &self.snap.laddrs) {
            for set in new.laddrs.iter() {
                rebind |= self.engine.set_local_addrs(set.service, &set.lips);
            }
        }
        if rebind {
            self.engine.bind(&new.services);
        }
        if new.timeouts != self.snap.timeouts {
            self.engine.set_timeouts(new.timeouts);
        }
        self.snap = new;
        self.shared.workers[self.id as usize].seen_gen.store(self.snap.gen, Ordering::Release);
        self.flush_resolved();
    }

    /// Answers the control thread.
    fn commands(&mut self) {
        let slot = &self.shared.workers[self.id as usize];
        while let Some(cmd) = slot.commands.pop() {
            let reply = match cmd {
                Command::Stats => Reply::Stats(Box::new(self.report())),
                Command::Zero => {
                    self.engine.zero_stats();
                    self.net.zero();
                    Reply::Done
                }
                Command::ListConns { cursor, max } => {
                    let (conns, next) = self.engine.list(cursor, max, self.clock.now_ms());
                    Reply::Conns(conns, next)
                }
            };
            let _ = self.shared.workers[self.id as usize].replies.push(reply);
        }
    }

    fn report(&self) -> WorkerReport {
        WorkerReport {
            id: self.id,
            lcore: self.lcore,
            gen: self.snap.gen,
            conns: self.engine.conns().len(),
            core: self.engine.stats_snapshot(),
            net: self.net.clone(),
        }
    }

    /// One received frame: ARP, neighbour discovery and frames for the kernel are dealt
    /// with here; an IP frame for the core is handed back.
    #[inline]
    fn handle(&mut self, port: usize, m: Mbuf) -> Option<Mbuf> {
        self.net.rx_packets += 1;
        self.net.rx_bytes += m.len() as u64;
        if let Some(c) = &self.snap.ports[port].capture {
            if c.rx && c.filter.matches(m.data()) {
                self.capture_copy(&m);
            }
        }
        let d = m.data();
        if d.len() < ETH_LEN {
            self.net.drop(NetDrop::BadFrame);
            return None;
        }
        let our = self.snap.ports[port].mac.0;
        if d[6..12] == our {
            self.net.drop(NetDrop::OwnFrame);
            return None;
        }
        if d[0..6] != our && d[0] & 1 == 0 {
            self.net.drop(NetDrop::NotForUs);
            return None;
        }
        if self.snap.ports[port].forward2kni {
            // A copy of everything received, for tcpdump on the twin (off by default).
            match m.copy_to(&self.pool) {
                Some(c) => self.up_to_twin(port, c),
                None => self.net.drop(NetDrop::NoMbuf),
            }
        }
        match u16::from_be_bytes([m.data()[12], m.data()[13]]) {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 if is_nd(m.data()) => self.nd(port, m),
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Some(m),
            ETHERTYPE_ARP => self.arp(port, m),
            // VLAN-tagged frames and other protocols are the kernel's (it may have
            // interfaces for them).
            _ => self.up_to_twin(port, m),
        }
        None
    }

    /// Tells the control thread about a neighbour binding it does not know yet.
    #[inline]
    fn seen(&mut self, ip: IpAddr, mac: EthernetAddress, port: usize) {
        if ip.is_unspecified() || self.snap.neighs.lookup(ip).is_some_and(|e| e.mac == mac) {
            return;
        }
        let _ = self.shared.neigh_seen.push(crate::shared::NeighSeen { ip, mac, port: PortId(port as u16) });
    }

    fn arp(&mut self, port: usize, mut m: Mbuf) {
        let Ok(info) = arp::classify(m.data()) else {
            return self.net.drop(NetDrop::BadFrame);
        };
        self.seen(IpAddr::V4(info.sender_ip), info.sender_mac, port);
        let target = IpAddr::V4(info.target_ip);
        if info.op == wire::arp::Operation::Request && !info.gratuitous && self.answers_for(port, target) {
            let mac = self.snap.ports[port].mac;
            if arp::reply_in_place(m.data_mut(), mac).is_ok() {
                self.net.arp_replies += 1;
                self.transmit(port, m);
            }
            return;
        }
        // Replies, gratuitous ARP, requests for other addresses: the kernel's too.
        self.up_to_twin(port, m);
    }

    /// Whether the dataplane itself answers for `ip` on `port`: it owns the address
    /// there and no kni_host route hands it to the kernel.
    #[inline]
    fn answers_for(&self, port: usize, ip: IpAddr) -> bool {
        self.snap.addrs.owner(ip).is_some_and(|(p, _)| p.0 as usize == port) && !self.kni_host(ip)
    }

    /// Whether a kni_host route covers `ip`.
    #[inline]
    fn kni_host(&self, ip: IpAddr) -> bool {
        self.snap.routes.lookup(ip).is_some_and(|r| r.scope == Scope::KniHost)
    }

    fn nd(&mut self, port: usize, mut m: Mbuf) {
        let Ok(info) = nd::classify(m.data()) else {
            return self.net.drop(NetDrop::BadFrame);
        };
        if let Some((ip, mac)) = info.binding() {
            self.seen(IpAddr::V6(ip), mac, port);
        }
        if matches!(info.kind, nd::NdKind::Solicit) && self.answers_for(port, IpAddr::V6(info.target)) {
            // The advert may be longer than the solicitation: give it the room.
            const ADVERT_LEN: usize = ETH_LEN + 40 + 32;
            if m.len() < ADVERT_LEN && m.append(ADVERT_LEN - m.len()).is_none() {
                return self.net.drop(NetDrop::NoMbuf);
            }
            let mac = self.snap.ports[port].mac;
            if let Ok(n) = nd::advert_in_place(m.data_mut(), mac) {
                let extra = m.len() - n;
                m.trim(extra);
                self.net.nd_adverts += 1;
                self.transmit(port, m);
            }
            return;
        }
        self.up_to_twin(port, m);
    }

    /// Acts on the core's verdict.
    #[inline]
    fn after_core(&mut self, port: usize, m: Mbuf, v: Verdict) {
        match v {
            Verdict::Forward { dst, .. } => self.forward(m, dst, false),
            Verdict::Drop(_) => {}
            Verdict::NotMine => self.local(port, m),
            Verdict::Redirect { owner } => self.redirect(owner as usize, port, m),
        }
    }

    /// Neither a service's packet nor a connection's. Addresses the dataplane owns:
    /// echo answered, TCP/UDP to a VIP without a service dropped (`no_service`), the
    /// rest dropped (`local_unhandled`). Addresses under a kni_host route, and
    /// everything not owned (the kernel's own addresses, multicast such as VRRP,
    /// broadcast), go up to the port's twin.
    fn local(&mut self, port: usize, mut m: Mbuf) {
        let Some((dst, proto, l4)) = l3_dst(m.data()) else {
            return self.net.drop(NetDrop::BadFrame);
        };
        if self.kni_host(dst) {
            return self.up_to_twin(port, m);
        }
        let Some((_, entry)) = self.snap.addrs.owner(dst) else {
            return self.up_to_twin(port, m);
        };
        if entry.flags.vip && matches!(proto, 6 | 17) {
            // A VIP port without a service: dropped, like DPVS (no RST).
            return self.engine.count_drop(DropReason::NoService);
        }
        let echo = match dst {
            IpAddr::V4(_) => proto == 1 && m.data().get(l4) == Some(&8),
            IpAddr::V6(_) => proto == 58 && m.data().get(l4) == Some(&128),
        };
        if !echo || icmp::echo_reply_in_place(m.data_mut(), ETH_LEN).is_err() {
            return self.net.drop(NetDrop::LocalUnhandled);
        }
        self.net.echo_replies += 1;
        let Some((to, _, _)) = l3_dst(m.data()) else { return };
        self.forward(m, to, true);
    }

    /// Routes an IP packet (Ethernet header in front) towards `dst`: TTL, MTU,
    /// neighbour, transmit. `local` packets were made here and keep their TTL.
    fn forward(&mut self, mut m: Mbuf, dst: IpAddr, local: bool) {
        let Some(route) = self.snap.routes.lookup(dst) else {
            return self.engine.count_drop(DropReason::NoRoute);
        };
        let port = route.dev.0 as usize;
        if route.scope == Scope::KniHost && port < self.tx.len() {
            return self.up_to_twin(port, m);
        }
        let nh = route.next_hop(dst);
        if port >= self.tx.len() {
            return self.engine.count_drop(DropReason::NoRoute);
        }
        if !local && !decrement_ttl(m.data_mut()) {
            self.icmp_error(&m, IcmpKind::TimeExceeded);
            return self.net.drop(NetDrop::TtlExceeded);
        }
        let mtu = self.snap.ports[port].mtu as usize;
        if m.len() - ETH_LEN > mtu && l3_len(m.data()) > mtu {
            self.icmp_error(&m, IcmpKind::TooBig(mtu as u32));
            return self.net.drop(NetDrop::TooBig);
        }
        match self.snap.neighs.lookup(nh) {
            Some(e) => {
                let mac = e.mac;
                self.send(m, port, mac);
            }
            None => {
                if let Err(m) = self.pending.push(PortId(port as u16), nh, m) {
                    drop(m);
                    self.net.drop(NetDrop::PendingFull);
                } else {
                    // Ask at once; retries follow from `retries`.
                    self.retry_at = 0;
                }
            }
        }
    }

    #[inline]
    fn send(&mut self, mut m: Mbuf, port: usize, dst_mac: EthernetAddress) {
        let src = self.snap.ports[port].mac;
        let d = m.data_mut();
        d[0..6].copy_from_slice(&dst_mac.0);
        d[6..12].copy_from_slice(&src.0);
        self.transmit(port, m);
    }

    /// Queues a frame on `port`'s transmit buffer (every frame the worker sends passes
    /// here, so a capture of sent frames sees them all).
    #[inline]
    fn transmit(&mut self, port: usize, m: Mbuf) {
        if let Some(c) = &self.snap.ports[port].capture {
            if c.tx && c.filter.matches(m.data()) {
                self.capture_copy(&m);
            }
        }
        self.net.tx_packets += 1;
        self.tx[port].push(m);
    }

    /// Queues a copy of a captured frame for the control thread; never waits.
    fn capture_copy(&mut self, m: &Mbuf) {
        let Some(mut c) = m.copy_to(&self.pool) else {
            return self.net.drop(NetDrop::NoMbuf);
        };
        c.set_port(m.port());
        let mut b = Burst::new();
        let _ = b.push(c);
        self.capture.enqueue_burst(&mut b);
        // A full ring drops the copy (the burst frees it): capture never slows forwarding.
        b.clear();
    }

    /// Sends an ICMP error about `orig` back to its source, from our address on the way
    /// back. Errors about errors, fragments and multicast are suppressed by netstack.
    fn icmp_error(&mut self, orig: &Mbuf, kind: IcmpKind) {
        let d = orig.data();
        let Some(src) = l3_src(d) else { return };
        let Some(back) = self.snap.routes.lookup(src) else { return };
        let Some(ours) = self.snap.addrs.source_for(back.dev, src) else { return };
        let Some(mut m) = Mbuf::alloc(&self.pool) else {
            return self.net.drop(NetDrop::NoMbuf);
        };
        let Some(buf) = m.append(ETH_LEN + 1280) else { return };
        let built = match (ours, kind) {
            (IpAddr::V4(a), IcmpKind::TimeExceeded) => {
                icmp::build_error_v4(&mut buf[ETH_LEN..], a, &d[ETH_LEN..], Icmpv4ErrorKind::TimeExceeded)
            }
            (IpAddr::V4(a), IcmpKind::TooBig(mtu)) => icmp::build_error_v4(
                &mut buf[ETH_LEN..],
                a,
                &d[ETH_LEN..],
                Icmpv4ErrorKind::FragNeeded { mtu: mtu.min(u16::MAX as u32) as u16 },
            ),
            (IpAddr::V6(a), IcmpKind::TimeExceeded) => {
                icmp::build_error_v6(&mut buf[ETH_LEN..], a, &d[ETH_LEN..], Icmpv6ErrorKind::TimeExceeded)
            }
            (IpAddr::V6(a), IcmpKind::TooBig(mtu)) => {
                icmp::build_error_v6(&mut buf[ETH_LEN..], a, &d[ETH_LEN..], Icmpv6ErrorKind::PacketTooBig { mtu })
            }
        };
        let Ok(n) = built else { return };
        buf[12..14].copy_from_slice(&if src.is_ipv4() { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 }.to_be_bytes());
        let extra = m.len() - ETH_LEN - n;
        m.trim(extra);
        self.net.icmp_errors += 1;
        self.forward(m, src, true);
    }

    /// Hands a reply to the worker that owns its local port.
    #[inline]
    fn redirect(&mut self, owner: usize, port: usize, mut m: Mbuf) {
        if owner >= self.redirect_out.len() || self.redirect_tx[owner].is_none() {
            return self.net.drop(NetDrop::Redirect);
        }
        m.set_port(port as u16);
        if self.redirect_out[owner].is_full() {
            self.flush_redirect(owner);
        }
        if self.redirect_out[owner].push(m).is_err() {
            self.net.drop(NetDrop::Redirect);
        }
    }

    fn flush_redirect(&mut self, owner: usize) {
        let n = self.redirect_out[owner].len();
        if n == 0 {
            return;
        }
        let Some(tx) = &mut self.redirect_tx[owner] else { return };
        let sent = tx.enqueue_burst(&mut self.redirect_out[owner]);
        self.net.redirect_out += sent as u64;
        for _ in sent..n {
            self.net.drop(NetDrop::Redirect);
        }
        self.redirect_out[owner].clear();
    }

    fn flush_redirects(&mut self) {
        for owner in 0..self.redirect_out.len() {
            self.flush_redirect(owner);
        }
    }

    /// Processes the replies other workers handed over, a burst at a time through the
    /// core (their connection lookups overlap); returns how many.
    fn redirected_in(&mut self, now: u64) -> usize {
        let mut got = 0;
        for r in 0..self.redirect_rx.len() {
            let n = self.redirect_rx[r].dequeue_burst(&mut self.burst);
            got += n;
            let mut k = 0;
            for i in 0..n {
                if let Some(m) = self.burst.take(i) {
                    self.net.redirect_in += 1;
                    self.ip_batch[k] = MbufSlot(Some(m));
                    k += 1;
                }
            }
            self.burst.forget_taken();
            if k > 0 {
                self.engine.process_burst(
                    &self.snap.services,
                    &mut self.ip_batch[..k],
                    &L3_OFFSETS[..k],
                    now,
                    &mut self.verdicts[..k],
                );
                for i in 0..k {
                    if let Some(m) = self.ip_batch[i].0.take() {
                        let port = m.port() as usize;
                        self.after_core(port, m, self.verdicts[i]);
                    }
                }
            }
        }
        got
    }

    /// Hands a frame to `port`'s kernel twin (through the control thread).
    #[inline]
    fn up_to_twin(&mut self, port: usize, mut m: Mbuf) {
        if !self.snap.ports[port].twin {
            return self.net.drop(NetDrop::NoTwin);
        }
        m.set_port(port as u16);
        if self.kni_out.is_full() {
            self.flush_kni();
        }
        if self.kni_out.push(m).is_err() {
            self.net.drop(NetDrop::KniFull);
        }
    }

    /// Sends the frames gathered for the twins; a full ring drops (never waits).
    fn flush_kni(&mut self) {
        let n = self.kni_out.len();
        if n == 0 {
            return;
        }
        let sent = self.kni_up.enqueue_burst(&mut self.kni_out);
        self.net.kni_up += sent as u64;
        for _ in sent..n {
            self.net.drop(NetDrop::KniFull);
        }
        self.kni_out.clear();
    }

    /// Transmits what the kernel sent on the twins; returns how many frames.
    fn down_from_twins(&mut self) -> usize {
        let Some(down) = &mut self.kni_down else { return 0 };
        let n = down.dequeue_burst(&mut self.burst);
        for i in 0..n {
            let Some(m) = self.burst.take(i) else { continue };
            let port = m.port() as usize;
            if port < self.tx.len() {
                self.net.kni_down += 1;
                self.transmit(port, m);
            }
        }
        self.burst.forget_taken();
        n
    }

    /// Sends due ARP requests / neighbour solicitations and frees packets whose next
    /// hop never answered.
    fn retries(&mut self, now: u64) {
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
                    self.net.drop(NetDrop::Unresolved);
                }
                None => break,
            }
        }
        for &(port, hop) in &asks[..n] {
            self.solicit(port.0 as usize, hop);
        }
    }

    fn solicit(&mut self, port: usize, hop: IpAddr) {
        let Some(src) = self.snap.addrs.source_for(PortId(port as u16), hop) else { return };
        let Some(mut m) = Mbuf::alloc(&self.pool) else {
            return self.net.drop(NetDrop::NoMbuf);
        };
        let mac = self.snap.ports[port].mac;
        let Some(buf) = m.append(128) else { return };
        let built = match (src, hop) {
            (IpAddr::V4(s), IpAddr::V4(t)) => {
                self.net.arp_requests += 1;
                arp::build_request(buf, mac, s, t)
            }
            (IpAddr::V6(s), IpAddr::V6(t)) => {
                self.net.nd_solicits += 1;
                nd::build_solicit(buf, mac, s, t)
            }
            _ => return,
        };
        let Ok(len) = built else { return };
        m.trim(128 - len);
        self.transmit(port, m);
    }

    /// Sends the packets whose next hop the new snapshot knows.
    fn flush_resolved(&mut self) {
        while let Some(hop) = self.pending.find_waiting(|h| self.snap.neighs.lookup(h).is_some()) {
            let Some(e) = self.snap.neighs.lookup(hop) else { break };
            let (mac, port) = (e.mac, e.port.0 as usize);
            let mut b = Burst::new();
            for m in self.pending.take(hop) {
                let _ = b.push(m);
            }
            for m in b.drain() {
                self.send(m, port, mac);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum IcmpKind {
    TimeExceeded,
    TooBig(u32),
}

/// Is this frame IPv6 neighbour discovery (solicitation or advertisement)?
#[inline]
fn is_nd(d: &[u8]) -> bool {
    d.len() > ETH_LEN + 40
        && d[12..14] == ETHERTYPE_IPV6.to_be_bytes()
        && d[ETH_LEN + 6] == 58
        && matches!(d[ETH_LEN + 40], 135 | 136)
}

/// Destination address, protocol and L4 offset of the IP packet after the Ethernet header.
#[inline]
fn l3_dst(d: &[u8]) -> Option<(IpAddr, u8, usize)> {
    match d.get(ETH_LEN)? >> 4 {
        4 if d.len() >= ETH_LEN + 20 => {
            let ihl = (d[ETH_LEN] & 0x0f) as usize * 4;
            let a: [u8; 4] = d[ETH_LEN + 16..ETH_LEN + 20].try_into().ok()?;
            Some((IpAddr::V4(Ipv4Addr::from(a)), d[ETH_LEN + 9], ETH_LEN + ihl))
        }
        6 if d.len() >= ETH_LEN + 40 => {
            let a: [u8; 16] = d[ETH_LEN + 24..ETH_LEN + 40].try_into().ok()?;
            Some((IpAddr::V6(Ipv6Addr::from(a)), d[ETH_LEN + 6], ETH_LEN + 40))
        }
        _ => None,
    }
}

#[inline]
fn l3_src(d: &[u8]) -> Option<IpAddr> {
    match d.get(ETH_LEN)? >> 4 {
        4 if d.len() >= ETH_LEN + 20 => {
            let a: [u8; 4] = d[ETH_LEN + 12..ETH_LEN + 16].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(a)))
        }
        6 if d.len() >= ETH_LEN + 40 => {
            let a: [u8; 16] = d[ETH_LEN + 8..ETH_LEN + 24].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// The IP packet's own length (IPv4 total length / IPv6 40 + payload length).
#[inline]
fn l3_len(d: &[u8]) -> usize {
    match d.get(ETH_LEN).map(|v| v >> 4) {
        Some(4) if d.len() >= ETH_LEN + 4 => u16::from_be_bytes([d[ETH_LEN + 2], d[ETH_LEN + 3]]) as usize,
        Some(6) if d.len() >= ETH_LEN + 6 => 40 + u16::from_be_bytes([d[ETH_LEN + 4], d[ETH_LEN + 5]]) as usize,
        _ => 0,
    }
}

/// Decrements the TTL / hop limit (IPv4 checksum updated incrementally); false when it
/// would reach zero.
#[inline]
fn decrement_ttl(d: &mut [u8]) -> bool {
    match d.get(ETH_LEN).map(|v| v >> 4) {
        Some(4) if d.len() >= ETH_LEN + 20 => {
            let ttl = d[ETH_LEN + 8];
            if ttl <= 1 {
                return false;
            }
            let old = u16::from_be_bytes([ttl, d[ETH_LEN + 9]]);
            let new = u16::from_be_bytes([ttl - 1, d[ETH_LEN + 9]]);
            let c = u16::from_be_bytes([d[ETH_LEN + 10], d[ETH_LEN + 11]]);
            d[ETH_LEN + 8] = ttl - 1;
            d[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&checksum::update16(c, old, new).to_be_bytes());
            true
        }
        Some(6) if d.len() >= ETH_LEN + 40 => {
            let hl = d[ETH_LEN + 7];
            if hl <= 1 {
                return false;
            }
            d[ETH_LEN + 7] = hl - 1;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::builder::PacketBuilder;
    use wire::TcpFlags;

    fn mac(b: u8) -> EthernetAddress {
        EthernetAddress([2, 0, 0, 0, 0, b])
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid() {
        let mut f = PacketBuilder::eth(mac(1), mac(2))
            .ipv4("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            .ttl(5)
            .tcp(1000, 80)
            .flags(TcpFlags::SYN)
            .build();
        assert!(decrement_ttl(&mut f));
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH_LEN..]).unwrap();
        assert_eq!(ip.ttl(), 4);
        assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
        let mut f1 = f.clone();
        f1[ETH_LEN + 8] = 1;
        assert!(!decrement_ttl(&mut f1), "TTL 1 cannot be forwarded");
    }

    #[test]
    fn hop_limit_decrement_and_nd_detection() {
        let mut f = PacketBuilder::eth(mac(1), mac(2))
            .ipv6("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            .ttl(2)
            .udp(1, 2)
            .payload(b"x")
            .build();
        assert!(decrement_ttl(&mut f));
        assert_eq!(f[ETH_LEN + 7], 1);
        assert!(!decrement_ttl(&mut f));
        assert!(!is_nd(&f));
        assert_eq!(l3_len(&f), 40 + 8 + 1);
        assert_eq!(l3_dst(&f).map(|(a, p, o)| (a.to_string(), p, o)), Some(("2001:db8::2".into(), 17, ETH_LEN + 40)));
        let ns = PacketBuilder::eth(mac(1), EthernetAddress([0x33, 0x33, 0xff, 0, 0, 2]))
            .ipv6("2001:db8::1".parse().unwrap(), "ff02::1:ff00:2".parse().unwrap())
            .neighbour_solicit("2001:db8::2".parse().unwrap(), Some(mac(1)))
            .build();
        assert!(is_nd(&ns));
    }

    #[test]
    fn address_helpers_refuse_garbage() {
        for junk in [&[][..], &[0u8; 13][..], &[0x45u8; 20][..], &[0u8; 60][..]] {
            let _ = l3_dst(junk);
            let _ = l3_src(junk);
            let _ = l3_len(junk);
            let mut j = junk.to_vec();
            let _ = decrement_ttl(&mut j);
        }
    }
}
