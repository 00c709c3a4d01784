//! A worker's mutable scheduling state: connection counts and overload flags per real
//! server, rr/wrr cursors per service, persistence templates. Each worker owns one
//! [`SchedState`]; nothing in it is shared.

use std::collections::HashMap;

use crate::hash::Fold;
use std::net::IpAddr;

use super::{
    conhash, dh, fo, lc, maglev, nq, ovf, rr, sed, sh, wlc, wrr, Candidates, Pick, SchedError, SchedKind, StaticTable,
};
use crate::destcheck::DestMark;
use crate::persist::{PersistKey, PersistTable};
use crate::service::{Dest, RsId, ServiceTable, SvcId, SvcIdx};
use crate::types::Millis;

/// A real server's counters on one worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DestCounters {
    /// Whose counters these are.
    pub(crate) id: RsId,
    /// Established connections.
    pub(crate) active: u32,
    /// Other connections (opening, closing, UDP).
    pub(crate) inactive: u32,
    /// Over the upper threshold: no new connection until below the lower one.
    pub(crate) overloaded: bool,
    /// This worker's share of the upper threshold (0 = none).
    upper: u32,
    /// This worker's share of the lower threshold (0 = 3/4 of upper).
    lower: u32,
    /// Still configured in the bound generation.
    in_table: bool,
    /// The slot holds a server (false = on the free list).
    used: bool,
}

impl DestCounters {
    pub(crate) fn new(id: RsId) -> Self {
        DestCounters { id, active: 0, inactive: 0, overloaded: false, upper: 0, lower: 0, in_table: true, used: true }
    }

    fn total(&self) -> u64 {
        u64::from(self.active) + u64::from(self.inactive)
    }

    /// IPVS `ip_vs_bind_dest`: at the upper threshold the server becomes overloaded.
    fn check_upper(&mut self) {
        if self.upper != 0 && self.total() >= u64::from(self.upper) {
            self.overloaded = true;
        }
    }

    /// IPVS `ip_vs_unbind_dest`: below the lower threshold (or, without one, below 3/4
    /// of the upper one) the server takes connections again.
    fn check_lower(&mut self) {
        if !self.overloaded {
            return;
        }
        let total = self.total();
        let clear = if self.lower != 0 {
            total < u64::from(self.lower)
        } else if self.upper != 0 {
            total * 4 < u64::from(self.upper) * 3
        } else {
            true
        };
        if clear {
            self.overloaded = false;
        }
    }
}

/// A worker's cursors for one service of the bound generation.
#[derive(Debug, Clone)]
struct SvcCursor {
    id: SvcId,
    kind: SchedKind,
    /// Counter slot of each server, in the service's order.
    slots: Vec<u32>,
    /// (id, weight) of each server, to detect changes at rebind.
    members: Vec<(RsId, u32)>,
    rr_last: Option<usize>,
    wrr: wrr::WrrCursor,
}

/// What a worker's scheduling did, for `rvsadm --stats` and debugging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedStats {
    /// Connections given a real server.
    pub scheduled: u64,
    /// ... of which by a live persistence template.
    pub persist_reused: u64,
    /// Refused: no real server available ([`SchedError::NoDest`]).
    pub no_dest: u64,
    /// Refused: persistence table full ([`SchedError::PersistFull`]).
    pub persist_full: u64,
}

/// One worker's scheduling state (see the module documentation of [`crate::sched`]).
///
/// Life cycle: [`SchedState::rebind`] to each new [`ServiceTable`] generation at the
/// top of the worker loop (allocates, once per generation); then per new connection
/// [`SchedState::schedule`], and the `conn_*` calls as connections open, establish,
/// close and are freed; [`SchedState::expire`] periodically. Nothing after `rebind`
/// allocates, locks or panics.
#[derive(Debug)]
pub struct SchedState {
    bound: Option<u64>,
    workers: u32,
    counters: Vec<DestCounters>,
    free: Vec<u32>,
    by_id: HashMap<RsId, u32, Fold>,
    svcs: Vec<SvcCursor>,
    persist: PersistTable,
    /// Drop a template whose server has weight 0 ([`SchedState::expiring_quiescent_templates`]).
    expire_quiescent_template: bool,
    stats: SchedStats,
}

/// A worker's share of a box-wide threshold: `ceil(t / workers)`, at least 1 (0 stays
/// "no threshold").
pub(super) fn share(t: u32, workers: u32) -> u32 {
    if t == 0 {
        0
    } else {
        t.div_ceil(workers.max(1)).max(1)
    }
}

impl SchedState {
    /// State for the only worker, with room for `persist_capacity` persistence
    /// templates.
    pub fn new(persist_capacity: usize) -> Self {
        SchedState::with_workers(persist_capacity, 1)
    }

    /// State for one of `workers` workers. Counts are per worker, so each enforces
    /// `ceil(threshold / workers)` of every server's connection thresholds, making
    /// the configured thresholds hold for the whole box when RSS spreads clients
    /// evenly (a server's limit is never below 1 per worker).
    pub fn with_workers(persist_capacity: usize, workers: u32) -> Self {
        SchedState {
            bound: None,
            workers: workers.max(1),
            counters: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::default(),
            svcs: Vec::new(),
            persist: PersistTable::with_capacity(persist_capacity),
            expire_quiescent_template: false,
            stats: SchedStats::default(),
        }
    }

    /// With `on`, a persistence template whose real server has weight 0 is dropped and
    /// its client scheduled afresh (LVS's `expire_quiescent_template`). Without, as in LVS
    /// and DPVS by default, a drained server keeps its persistent clients until their
    /// templates expire: a graceful drain lets their sessions finish. A server the passive
    /// check holds out ([`DestMark::Inhibited`]) loses them either way: it is failing, and
    /// sending clients to it is never what an operator wants (DPVS would); so does a
    /// drained server of a service with `expire_quiescent`, which ends its connections so
    /// that their clients go elsewhere (the template would bring them back to it).
    pub fn expiring_quiescent_templates(mut self, on: bool) -> Self {
        self.expire_quiescent_template = on;
        self
    }

    /// Adopt a new generation. Counters and overload flags follow the servers by
    /// identity; a server no longer configured keeps its counters while this worker
    /// still has connections to it, and they are dropped when the count reaches 0.
    /// Cursors follow their service by identity: rr continues after the same server
    /// (or the one now at its place); wrr keeps its place when the service's servers
    /// and weights are unchanged, else restarts as IPVS does. Persistence templates
    /// are kept (keyed by stable ids). A no-op for the generation already bound.
    pub fn rebind(&mut self, table: &ServiceTable) {
        if self.bound == Some(table.generation()) {
            return;
        }
        for c in &mut self.counters {
            c.in_table = false;
        }
        let mut old: HashMap<SvcId, SvcCursor> = self.svcs.drain(..).map(|c| (c.id, c)).collect();
        let mut svcs = Vec::with_capacity(table.len());
        for svc in table.services() {
            let mut slots = Vec::with_capacity(svc.dests.len());
            for d in &svc.dests {
                let slot = match self.by_id.get(&d.id) {
                    Some(&s) => s,
                    None => {
                        let s = match self.free.pop() {
                            Some(s) => {
                                self.counters[s as usize] = DestCounters::new(d.id);
                                s
                            }
                            None => {
                                self.counters.push(DestCounters::new(d.id));
                                (self.counters.len() - 1) as u32
                            }
                        };
                        self.by_id.insert(d.id, s);
                        s
                    }
                };
                let c = &mut self.counters[slot as usize];
                c.in_table = true;
                let (upper, lower) = (share(d.upper, self.workers), share(d.lower, self.workers));
                if (upper, lower) != (c.upper, c.lower) {
                    c.upper = upper;
                    c.lower = lower;
                    c.overloaded = upper != 0 && c.total() >= u64::from(upper);
                }
                slots.push(slot);
            }
            let members: Vec<(RsId, u32)> = svc.dests.iter().map(|d| (d.id, d.weight)).collect();
            let params = match &*svc.table {
                StaticTable::Wrr(p) => *p,
                _ => wrr::WrrParams::new(&svc.dests),
            };
            let kind = svc.config.sched;
            let cursor = match old.remove(&svc.id) {
                Some(o) if o.kind == kind => {
                    let rr_last = o.rr_last.and_then(|l| {
                        let id = o.members.get(l)?.0;
                        match members.iter().position(|m| m.0 == id) {
                            Some(p) => Some(p),
                            // Gone: continue with whatever now sits at its place.
                            None => l.checked_sub(1).map(|p| p.min(members.len().saturating_sub(1))),
                        }
                    });
                    let mut w = o.wrr;
                    if o.members != members {
                        w.reset(&params);
                    }
                    SvcCursor { id: svc.id, kind, slots, members, rr_last, wrr: w }
                }
                _ => SvcCursor { id: svc.id, kind, slots, members, rr_last: None, wrr: wrr::WrrCursor::new(&params) },
            };
            svcs.push(cursor);
        }
        self.svcs = svcs;
        // Free the counters of removed servers this worker has no connection to.
        for (s, c) in self.counters.iter_mut().enumerate() {
            if c.used && !c.in_table && c.total() == 0 {
                c.used = false;
                self.by_id.remove(&c.id);
                self.free.push(s as u32);
            }
        }
        self.persist.cover(table.id_bounds().1);
        // `conn_freed` may push every slot on the free list: never reallocate there.
        self.free.reserve(self.counters.len().saturating_sub(self.free.len()));
        self.bound = Some(table.generation());
    }

    /// Pick the real server for a new connection from `client:cport` to `dst` (the VIP,
    /// or any address a fwmark service's rules mark: what `dh` hashes), service `svc`
    /// of `table`, at `now`. With persistence, a live template for the (masked)
    /// client sends it to the same server if that server is still configured, overloaded
    /// or not as in IPVS, drained (weight 0) or not unless
    /// [`SchedState::expiring_quiescent_templates`] (then the template's timeout
    /// restarts); otherwise the scheduler
    /// picks and a template is recorded. Does not count the connection: call
    /// [`SchedState::conn_new`] once it exists.
    ///
    /// If `table` is not the bound generation it is bound first (see
    /// [`SchedState::rebind`]; the worker loop should have done it already).
    pub fn schedule(
        &mut self,
        table: &ServiceTable,
        svc: SvcIdx,
        (client, cport): (IpAddr, u16),
        dst: IpAddr,
        now: Millis,
    ) -> Result<Pick, SchedError> {
        if self.bound != Some(table.generation()) {
            self.rebind(table);
        }
        let (Some(service), Some(cursor)) = (table.get(svc), self.svcs.get_mut(svc.0 as usize)) else {
            self.stats.no_dest += 1;
            return Err(SchedError::NoDest);
        };
        let persist = service
            .config
            .persistence
            .map(|p| (PersistKey { svc: service.id, client: p.mask(client) }, now.saturating_add(p.timeout_ms())));
        if let Some((key, expires)) = &persist {
            if let Some(rs) = self.persist.lookup(key, now) {
                // A drained server keeps its persistent clients unless asked otherwise,
                // the passive check holds it out, or its service ends a drained server's
                // connections (`expire_quiescent`: their clients are to go elsewhere).
                let keep = !self.expire_quiescent_template && !service.config.expire_quiescent;
                let usable = |d: &&Dest| d.weight > 0 || (keep && d.mark != DestMark::Inhibited);
                let dest = match table.locate(rs) {
                    Some((s, i)) if s == svc => service.dests.get(i).filter(usable),
                    _ => None,
                };
                if let Some(d) = dest {
                    self.persist.touch(key, *expires);
                    self.stats.scheduled += 1;
                    self.stats.persist_reused += 1;
                    return Ok(Pick { id: d.id, addr: d.addr, port: d.port, fwd: d.fwd });
                }
                // IPVS: the template's server is gone (or quiescent, as asked): reschedule.
                self.persist.remove(key);
            } else if self.persist.is_full() && !self.persist.contains(key) {
                // A brand-new key with no room: refuse before moving any cursor.
                self.stats.persist_full += 1;
                return Err(SchedError::PersistFull);
            }
        }
        let c = Candidates { dests: &service.dests, slots: &cursor.slots, counters: &self.counters };
        let cfg = &service.config;
        let picked = match (&*service.table, cfg.sched) {
            (_, SchedKind::Rr) => rr::pick(&c, &mut cursor.rr_last),
            (StaticTable::Wrr(p), _) => wrr::pick(&c, p, &mut cursor.wrr),
            (_, SchedKind::Lc) => lc::pick(&c),
            (_, SchedKind::Wlc) => wlc::pick(&c),
            (_, SchedKind::Sed) => sed::pick(&c),
            (_, SchedKind::Nq) => nq::pick(&c),
            (_, SchedKind::Fo) => fo::pick(&c),
            (_, SchedKind::Ovf) => ovf::pick(&c, self.workers),
            (StaticTable::Sh(t), _) => sh::pick(&c, t, client, cport, cfg.hash_port, cfg.hash_fallback),
            (StaticTable::Dh(t), _) => dh::pick(&c, t, dst, cfg.hash_fallback),
            (StaticTable::Mh(t), _) => maglev::pick(&c, t, client, cport, cfg.hash_port, cfg.hash_fallback),
            (StaticTable::Conhash(t), _) => conhash::pick(&c, t, client, cport, cfg.hash_port, cfg.hash_fallback),
            _ => None,
        };
        let Some(d) = picked.and_then(|i| service.dests.get(i)) else {
            self.stats.no_dest += 1;
            return Err(SchedError::NoDest);
        };
        if let Some((key, expires)) = persist {
            if self.persist.insert(key, d.id, expires).is_err() {
                self.stats.persist_full += 1;
                return Err(SchedError::PersistFull);
            }
        }
        self.stats.scheduled += 1;
        Ok(Pick { id: d.id, addr: d.addr, port: d.port, fwd: d.fwd })
    }

    /// A peer's connection to `rs` was installed here (connection sync): on a persistent
    /// service, the client's template points to `rs` from now on, as on the peer, so
    /// the client's next connections meet the same server after a failover. A new
    /// template is made only while the table is less than half full: the other half is
    /// for this box's own clients, whatever the peers send (a peer's records are
    /// bounded as connections, not as templates, which outlive them). Counted as
    /// `persist_full` otherwise.
    pub fn learn_template(&mut self, table: &ServiceTable, svc: SvcIdx, client: IpAddr, rs: RsId, now: Millis) {
        let Some(p) = table.get(svc).and_then(|s| s.config.persistence.map(|p| (s.id, p))) else { return };
        let (id, p) = p;
        let key = PersistKey { svc: id, client: p.mask(client) };
        let room = self.persist.contains(&key) || self.persist.len() < self.persist.capacity().div_ceil(2);
        if !room || self.persist.insert(key, rs, now.saturating_add(p.timeout_ms())).is_err() {
            self.stats.persist_full += 1;
        }
    }

    fn slot(&mut self, rs: RsId) -> Option<&mut DestCounters> {
        let &s = self.by_id.get(&rs)?;
        self.counters.get_mut(s as usize)
    }

    /// A connection to `rs` was created (counted inactive until established). Unknown
    /// ids are ignored.
    pub fn conn_new(&mut self, rs: RsId) {
        if let Some(c) = self.slot(rs) {
            c.inactive = c.inactive.saturating_add(1);
            c.check_upper();
        }
    }

    /// A connection to `rs` entered ESTABLISHED: inactive -> active.
    pub fn conn_activated(&mut self, rs: RsId) {
        if let Some(c) = self.slot(rs) {
            c.inactive = c.inactive.saturating_sub(1);
            c.active = c.active.saturating_add(1);
        }
    }

    /// A connection to `rs` left ESTABLISHED (closing): active -> inactive.
    pub fn conn_deactivated(&mut self, rs: RsId) {
        if let Some(c) = self.slot(rs) {
            c.active = c.active.saturating_sub(1);
            c.inactive = c.inactive.saturating_add(1);
        }
    }

    /// A connection to `rs` was freed; `was_active` says which count it was in. The
    /// overload flag may clear; the counters of a server no longer configured are
    /// dropped when this was its last connection on this worker.
    pub fn conn_freed(&mut self, rs: RsId, was_active: bool) {
        let Some(&s) = self.by_id.get(&rs) else { return };
        let Some(c) = self.counters.get_mut(s as usize) else { return };
        if was_active {
            c.active = c.active.saturating_sub(1);
        } else {
            c.inactive = c.inactive.saturating_sub(1);
        }
        c.check_lower();
        if !c.in_table && c.total() == 0 {
            c.used = false;
            self.by_id.remove(&rs);
            // Capacity reserved at rebind: no allocation.
            self.free.push(s);
        }
    }

    /// This worker's (active, inactive) connection counts for `rs`; (0, 0) if unknown.
    pub fn counts(&self, rs: RsId) -> (u32, u32) {
        self.by_id.get(&rs).and_then(|&s| self.counters.get(s as usize)).map_or((0, 0), |c| (c.active, c.inactive))
    }

    /// Whether `rs` is overloaded on this worker.
    pub fn is_overloaded(&self, rs: RsId) -> bool {
        self.by_id.get(&rs).and_then(|&s| self.counters.get(s as usize)).is_some_and(|c| c.overloaded)
    }

    /// Whether this worker still holds counters for `rs` (configured, or removed
    /// with connections left).
    pub fn tracks(&self, rs: RsId) -> bool {
        self.by_id.contains_key(&rs)
    }

    /// Reclaim expired persistence templates; returns how many. Walks the whole
    /// template table: call it periodically, not per packet.
    pub fn expire(&mut self, now: Millis) -> usize {
        self.persist.expire(now)
    }

    /// Persistence templates held now.
    pub fn persist_len(&self) -> usize {
        self.persist.len()
    }

    /// This worker's persistence templates (counts per server, listing pages).
    pub fn templates(&self) -> &PersistTable {
        &self.persist
    }

    /// What this worker's scheduling did so far.
    pub fn stats(&self) -> SchedStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::PersistConfig;
    use crate::service::{RealServerConfig, ServiceConfig};
    use crate::types::Proto;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rs(addr: &str, weight: u32) -> RealServerConfig {
        RealServerConfig { addr: ip(addr), port: 8080, weight, upper: 0, lower: 0, fwd: Default::default() }
    }

    fn svc(vport: u16, sched: SchedKind, servers: &[RealServerConfig]) -> ServiceConfig {
        let mut c = ServiceConfig::new(Proto::Tcp, ip("10.0.0.1"), vport);
        c.sched = sched;
        c.real_servers = servers.to_vec();
        c
    }

    fn table(cfgs: &[ServiceConfig], prev: Option<&ServiceTable>) -> ServiceTable {
        ServiceTable::build(cfgs, prev).unwrap()
    }

    /// The tests' services' VIP, the destination of their connections.
    fn vip() -> IpAddr {
        ip("10.0.0.1")
    }

    fn client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n * 257))
    }

    /// dh hashes the flow's destination: on a fwmark service over many addresses each
    /// destination keeps its server whoever the client is, and the servers share them.
    #[test]
    fn dh_keeps_each_destination_on_its_server() {
        let mut c = ServiceConfig::with_key(crate::service::ServiceKey::of_fwmark(1, false));
        c.sched = SchedKind::Dh;
        c.real_servers = vec![rs("10.1.0.1", 1), rs("10.1.0.2", 1), rs("10.1.0.3", 1)];
        let t = table(&[c], None);
        let mut st = SchedState::new(0);
        let dst = |n: u8| IpAddr::V4(Ipv4Addr::new(192, 0, 2, n));
        let by_dst: Vec<RsId> =
            (1..=30).map(|n| st.schedule(&t, SvcIdx(0), (client(0), 1), dst(n), 0).unwrap().id).collect();
        for n in 0..40 {
            let d = 1 + (n * 7 % 30) as u8;
            let p = st.schedule(&t, SvcIdx(0), (client(n), 2000 + n as u16), dst(d), 0).unwrap();
            assert_eq!(p.id, by_dst[usize::from(d) - 1], "destination {} keeps its server", dst(d));
        }
        let used: std::collections::HashSet<RsId> = by_dst.iter().copied().collect();
        assert_eq!(used.len(), 3, "30 destinations over the three servers: {by_dst:?}");
    }

    #[test]
    fn upper_and_lower_thresholds() {
        let mut a = rs("10.1.0.1", 1);
        a.upper = 4;
        a.lower = 2;
        let t = table(&[svc(80, SchedKind::Rr, &[a, rs("10.1.0.2", 1)])], None);
        let mut st = SchedState::new(0);
        st.rebind(&t);
        let ida = t.service(SvcIdx(0)).dests[0].id;
        for _ in 0..4 {
            st.conn_new(ida);
        }
        assert!(st.is_overloaded(ida), "at the upper threshold");
        for n in 0..6 {
            let p = st.schedule(&t, SvcIdx(0), (client(n), 1000), vip(), 0).unwrap();
            assert_ne!(p.id, ida);
        }
        st.conn_activated(ida);
        assert_eq!(st.counts(ida), (1, 3));
        st.conn_freed(ida, false);
        st.conn_freed(ida, false);
        assert!(st.is_overloaded(ida), "2 is not below the lower threshold 2");
        st.conn_freed(ida, true);
        assert!(!st.is_overloaded(ida));
        assert_eq!(st.counts(ida), (0, 1));
        let picks: Vec<RsId> =
            (0..2).map(|n| st.schedule(&t, SvcIdx(0), (client(n), 1), vip(), 0).unwrap().id).collect();
        assert!(picks.contains(&ida));
    }

    #[test]
    fn lower_defaults_to_three_quarters_and_thresholds_split_per_worker() {
        let mut a = rs("10.1.0.1", 1);
        a.upper = 8;
        let t = table(&[svc(80, SchedKind::Wlc, &[a])], None);
        let id = t.service(SvcIdx(0)).dests[0].id;
        let mut st = SchedState::with_workers(0, 2);
        st.rebind(&t);
        for _ in 0..4 {
            st.conn_new(id);
        }
        assert!(st.is_overloaded(id), "this worker's share of 8 is 4");
        assert_eq!(st.schedule(&t, SvcIdx(0), (client(1), 1), vip(), 0), Err(SchedError::NoDest));
        st.conn_freed(id, false);
        assert!(st.is_overloaded(id), "3 is not below 3/4 of 4");
        st.conn_freed(id, false);
        assert!(!st.is_overloaded(id));
        assert_eq!(st.stats().no_dest, 1);
    }

    /// ovf through a worker's own counts: the heavier server takes connections until its
    /// active ones pass this worker's share of its weight, then the lighter one, then
    /// nobody; a closing connection makes room again. fo ignores the counts.
    #[test]
    fn overflow_follows_active_counts_and_failover_ignores_them() {
        let servers = [rs("10.1.0.1", 1), rs("10.1.0.2", 3)];
        let t = table(&[svc(80, SchedKind::Ovf, &servers)], None);
        let (light, heavy) = (t.service(SvcIdx(0)).dests[0].id, t.service(SvcIdx(0)).dests[1].id);
        let mut st = SchedState::with_workers(0, 2);
        let mut picks = Vec::new();
        for n in 0..5 {
            let p = st.schedule(&t, SvcIdx(0), (client(n), 1), vip(), 0).unwrap();
            st.conn_new(p.id);
            st.conn_activated(p.id);
            picks.push(p.id);
        }
        // This worker's shares: ceil(3 / 2) = 2 and ceil(1 / 2) = 1, each taking one more
        // at its share (the kernel's `activeconns > weight`).
        assert_eq!(picks, [heavy, heavy, heavy, light, light]);
        assert_eq!(st.schedule(&t, SvcIdx(0), (client(9), 1), vip(), 0), Err(SchedError::NoDest));
        st.conn_deactivated(heavy);
        assert_eq!(st.schedule(&t, SvcIdx(0), (client(9), 1), vip(), 0).unwrap().id, heavy);

        let t = table(&[svc(80, SchedKind::Fo, &servers)], Some(&t));
        for n in 0..3 {
            assert_eq!(
                st.schedule(&t, SvcIdx(0), (client(n), 1), vip(), 0).unwrap().id,
                heavy,
                "fo: load does not move it"
            );
        }
        let t = table(&[svc(80, SchedKind::Fo, &[rs("10.1.0.1", 1), rs("10.1.0.2", 0)])], Some(&t));
        assert_eq!(st.schedule(&t, SvcIdx(0), (client(0), 1), vip(), 0).unwrap().id, light, "fo: the primary drained");
    }

    #[test]
    fn weight_zero_drains_but_counts_continue() {
        let cfg = |w| svc(80, SchedKind::Wlc, &[rs("10.1.0.1", w), rs("10.1.0.2", 1)]);
        let t1 = table(&[cfg(1)], None);
        let mut st = SchedState::new(0);
        let a = t1.service(SvcIdx(0)).dests[0].id;
        let p = st.schedule(&t1, SvcIdx(0), (client(0), 1), vip(), 0).unwrap();
        assert_eq!(p.id, a);
        st.conn_new(a);
        st.conn_activated(a);
        let t2 = table(&[cfg(0)], Some(&t1));
        st.rebind(&t2);
        for n in 0..5 {
            assert_ne!(st.schedule(&t2, SvcIdx(0), (client(n), 1), vip(), 0).unwrap().id, a);
        }
        assert_eq!(st.counts(a), (1, 0), "the existing connection continues");
        st.conn_freed(a, true);
        assert_eq!(st.counts(a), (0, 0));
        assert!(st.tracks(a), "still configured, only drained");
        let all_drained = table(&[svc(80, SchedKind::Rr, &[rs("10.1.0.1", 0)])], None);
        assert_eq!(st.schedule(&all_drained, SvcIdx(0), (client(0), 1), vip(), 0), Err(SchedError::NoDest));
    }

    #[test]
    fn removed_server_counters_live_until_last_connection() {
        let t1 = table(&[svc(80, SchedKind::Lc, &[rs("10.1.0.1", 1), rs("10.1.0.2", 1)])], None);
        let mut st = SchedState::new(0);
        st.rebind(&t1);
        let [a, b] = [0, 1].map(|i| t1.service(SvcIdx(0)).dests[i].id);
        st.conn_new(a);
        st.conn_new(a);
        st.conn_activated(a);
        st.conn_new(b);
        let t2 = table(&[svc(80, SchedKind::Lc, &[rs("10.1.0.2", 1), rs("10.1.0.3", 1)])], Some(&t1));
        st.rebind(&t2);
        assert_eq!(st.counts(b), (0, 1), "kept by identity");
        assert_eq!(st.counts(a), (1, 1), "removed but still has connections");
        // lc: b has 1 inactive, the new server 0: the new one wins.
        let c = t2.service(SvcIdx(0)).dests[1].id;
        assert_eq!(st.schedule(&t2, SvcIdx(0), (client(0), 1), vip(), 0).unwrap().id, c);
        st.conn_freed(a, true);
        assert!(st.tracks(a));
        st.conn_freed(a, false);
        assert!(!st.tracks(a), "dropped at zero");
        assert_eq!(st.counts(a), (0, 0));
        // Its slot is reused by the next new server without disturbing the others.
        let t3 =
            table(&[svc(80, SchedKind::Lc, &[rs("10.1.0.2", 1), rs("10.1.0.3", 1), rs("10.1.0.4", 1)])], Some(&t2));
        st.rebind(&t3);
        assert_eq!(st.counts(b), (0, 1));
        assert_eq!(st.counters.len(), 3);
    }

    #[test]
    fn rr_cursor_survives_rebind() {
        let servers = [rs("10.1.0.1", 1), rs("10.1.0.2", 1), rs("10.1.0.3", 1)];
        let t1 = table(&[svc(80, SchedKind::Rr, &servers)], None);
        let mut st = SchedState::new(0);
        let ids: Vec<RsId> = t1.service(SvcIdx(0)).dests.iter().map(|d| d.id).collect();
        assert_eq!(st.schedule(&t1, SvcIdx(0), (client(0), 1), vip(), 0).unwrap().id, ids[0]);
        assert_eq!(st.schedule(&t1, SvcIdx(0), (client(0), 1), vip(), 0).unwrap().id, ids[1]);
        // An unrelated service is added in front: rr continues after server 2.
        let t2 = table(&[svc(443, SchedKind::Wlc, &servers), svc(80, SchedKind::Rr, &servers)], Some(&t1));
        assert_eq!(st.schedule(&t2, SvcIdx(1), (client(0), 1), vip(), 0).unwrap().id, ids[2]);
    }

    #[test]
    fn hashing_schedulers_stable_across_unrelated_reconfiguration() {
        for kind in [SchedKind::Sh, SchedKind::Mh, SchedKind::Dh, SchedKind::Conhash] {
            let servers: Vec<_> = (1..=5).map(|i| rs(&format!("10.1.0.{i}"), 1)).collect();
            let t1 = table(&[svc(80, kind, &servers)], None);
            let mut st = SchedState::new(0);
            let before: Vec<Pick> =
                (0..200).map(|n| st.schedule(&t1, SvcIdx(0), (client(n), 7), vip(), 0).unwrap()).collect();
            for (n, p) in before.iter().enumerate() {
                let again = st.schedule(&t1, SvcIdx(0), (client(n as u32), 9), vip(), 0).unwrap();
                assert_eq!(again, *p, "{kind}: same client, same server");
            }
            // Another service appears and this one's thresholds change.
            let mut servers2 = servers.clone();
            servers2[3].upper = 1000;
            let other = svc(443, SchedKind::Rr, &servers);
            let t2 = table(&[other, svc(80, kind, &servers2)], Some(&t1));
            for (n, p) in before.iter().enumerate() {
                assert_eq!(st.schedule(&t2, SvcIdx(1), (client(n as u32), 7), vip(), 0).unwrap(), *p, "{kind}");
            }
        }
    }

    #[test]
    fn persistence_with_netmask_and_timeout() {
        let mut c = svc(80, SchedKind::Rr, &[rs("10.1.0.1", 1), rs("10.1.0.2", 1), rs("10.1.0.3", 1)]);
        c.persistence = Some(PersistConfig { timeout_s: 10, netmask_v4: 24, netmask_v6: 128 });
        let t = table(&[c.clone()], None);
        let mut st = SchedState::new(16);
        let first = st.schedule(&t, SvcIdx(0), (ip("192.0.2.10"), 1000), vip(), 0).unwrap();
        // Same /24, other ports, later: same server; rr would have moved on.
        for (n, now) in [(11, 5_000), (200, 14_000), (10, 23_000)] {
            let p = st.schedule(&t, SvcIdx(0), (IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)), 2000), vip(), now).unwrap();
            assert_eq!(p, first, "template refreshed on every use");
        }
        assert_eq!(st.stats().persist_reused, 3);
        let other = st.schedule(&t, SvcIdx(0), (ip("192.0.3.10"), 1000), vip(), 23_000).unwrap();
        assert_ne!(other, first, "another /24, another template");
        assert_eq!(st.persist_len(), 2);
        // Expired (10 s after the last use): rescheduled.
        let later = st.schedule(&t, SvcIdx(0), (ip("192.0.2.10"), 1000), vip(), 33_000).unwrap();
        assert_ne!(later, first);
        assert_eq!(st.expire(40_000), 1, "only 192.0.3.0/24's template was expired then");

        // The template's server drained: as LVS by default, its client stays with it
        // (a graceful drain); asked to (`expire_quiescent_template`), rescheduled and the
        // template replaced.
        let now = 40_000;
        let p = st.schedule(&t, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap();
        let mut drained = c.clone();
        for r in &mut drained.real_servers {
            if r.addr == p.addr {
                r.weight = 0;
            }
        }
        let t2 = table(&[drained.clone()], Some(&t));
        assert_eq!(st.schedule(&t2, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap(), p, "kept by default");
        let mut st = std::mem::replace(&mut st, SchedState::new(0)).expiring_quiescent_templates(true);
        let q = st.schedule(&t2, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap();
        assert_ne!(q.addr, p.addr);
        assert_eq!(st.schedule(&t2, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap(), q);

        // With the service's `expire_quiescent`, whose connections to it end so that
        // their clients go elsewhere: rescheduled even without the option.
        let mut st = SchedState::new(16);
        let mut quiesce = c.clone();
        quiesce.expire_quiescent = true;
        let t5 = table(&[quiesce.clone()], None);
        let p = st.schedule(&t5, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap();
        for r in &mut quiesce.real_servers {
            if r.addr == p.addr {
                r.weight = 0;
            }
        }
        let t6 = table(&[quiesce], Some(&t5));
        assert_ne!(st.schedule(&t6, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap().addr, p.addr);

        // Held out by the passive check: rescheduled even without the option.
        let mut st = SchedState::new(16);
        let mut checked = c.clone();
        checked.dest_check = Some(Default::default());
        let t3 = table(&[checked.clone()], None);
        let p = st.schedule(&t3, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap();
        let mut marks = crate::service::DestMarks::default();
        marks.insert((checked.key(), std::net::SocketAddr::new(p.addr, p.port)), DestMark::Inhibited);
        let t4 = ServiceTable::build_marked(&[checked], Some(&t3), &marks).unwrap();
        assert_ne!(st.schedule(&t4, SvcIdx(0), (ip("198.51.100.1"), 1), vip(), now).unwrap().addr, p.addr);
    }

    #[test]
    fn persistence_full_is_counted() {
        let mut c = svc(0, SchedKind::Wlc, &[]);
        c.real_servers = vec![RealServerConfig {
            addr: ip("10.1.0.1"),
            port: 0,
            weight: 1,
            upper: 0,
            lower: 0,
            fwd: Default::default(),
        }];
        c.persistence = Some(PersistConfig::default());
        let t = table(&[c], None);
        let mut st = SchedState::new(2);
        let p = st.schedule(&t, SvcIdx(0), (client(1), 1), vip(), 0).unwrap();
        assert_eq!(p.port, 0, "all-ports service: keep the client's port");
        st.schedule(&t, SvcIdx(0), (client(2), 1), vip(), 0).unwrap();
        assert_eq!(st.schedule(&t, SvcIdx(0), (client(3), 1), vip(), 0), Err(SchedError::PersistFull));
        assert!(st.schedule(&t, SvcIdx(0), (client(1), 1), vip(), 0).is_ok(), "known clients still served");
        assert_eq!(st.stats().persist_full, 1);
        assert_eq!(st.expire(300_000), 2);
        assert!(st.schedule(&t, SvcIdx(0), (client(3), 1), vip(), 300_000).is_ok());
    }

    /// A peer's records make templates in half the table at most: this box's own
    /// clients always find the other half; a template already there still follows the
    /// peer's word.
    #[test]
    fn peers_records_make_templates_in_half_the_table() {
        let mut c = svc(80, SchedKind::Rr, &[rs("10.1.0.1", 1), rs("10.1.0.2", 1)]);
        c.persistence = Some(PersistConfig::default());
        let t = table(&[c], None);
        let mut st = SchedState::new(8);
        let second = t.service(SvcIdx(0)).dests[1].id;
        for i in 1..=8 {
            st.learn_template(&t, SvcIdx(0), client(i), second, 0);
        }
        assert_eq!((st.persist.len(), st.stats().persist_full), (4, 4), "four learned, four refused");
        for i in 11..=14 {
            assert!(st.schedule(&t, SvcIdx(0), (client(i), 1), vip(), 0).is_ok(), "a client of this box's own");
        }
        assert_eq!(st.persist.len(), 8);
        let first = t.service(SvcIdx(0)).dests[0].id;
        st.learn_template(&t, SvcIdx(0), client(1), first, 0);
        assert_eq!(st.schedule(&t, SvcIdx(0), (client(1), 2), vip(), 0).unwrap().id, first, "a known template moves");
    }

    #[test]
    fn wrr_service_order_and_reset_on_weight_change() {
        let w = |a, b, c| svc(80, SchedKind::Wrr, &[rs("10.1.0.1", a), rs("10.1.0.2", b), rs("10.1.0.3", c)]);
        let t = table(&[w(4, 3, 2)], None);
        let mut st = SchedState::new(0);
        let seq: Vec<u8> = (0..9)
            .map(|_| match st.schedule(&t, SvcIdx(0), (client(0), 1), vip(), 0).unwrap().addr {
                IpAddr::V4(a) => b'a' + a.octets()[3] - 1,
                IpAddr::V6(_) => unreachable!(),
            })
            .collect();
        assert_eq!(seq, b"aababcabc");
        let t2 = table(&[w(1, 1, 1)], Some(&t));
        let p = st.schedule(&t2, SvcIdx(0), (client(0), 1), vip(), 0).unwrap();
        assert_eq!(p.addr, ip("10.1.0.1"), "restarted at the head");
    }
}
