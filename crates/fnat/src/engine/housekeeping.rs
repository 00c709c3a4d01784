//! The engine's housekeeping: freeing connections whose time is up (the timer wheel),
//! reclaiming persistence templates, dropping a removed server's connections, and
//! flushing the table.
//!
//! None of this runs per packet; the worker calls [`Engine::expire`] once per loop
//! iteration with a budget, and the rest on a slower beat or on an operator's request.

use super::Engine;
use crate::conn::{Conn, ConnFlags, ConnRef};
use crate::service::RsId;
use crate::stats::Gauge;
use crate::types::Millis;

/// What [`Engine::expire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireReport {
    /// Connections freed.
    pub freed: u32,
    /// Entries whose expiry had moved later and were re-filed.
    pub refiled: u32,
    /// Whether the budget ran out before catching up with `now`.
    pub more: bool,
}

impl Engine {
    /// Frees a connection: both keys, its timer, its places on the `SYN_RECV` and unproven lists, and
    /// tells the pools (its local port), the scheduler and the counters.
    pub(super) fn free(&mut self, r: ConnRef) {
        self.wheel.cancel(r.index());
        self.lists.remove(r.index());
        self.freed_mid_burst = true;
        if let Some(s) = self.freed_slots.get_mut(self.freed_n as usize) {
            *s = r.index();
        }
        self.freed_n = self.freed_n.saturating_add(1);
        let c = self.conns.get(r);
        if c.is_live() {
            let out_key = c.outbound_key();
            let c = Conn::clone(&c);
            self.conns.remove(r);
            if c.synced() {
                self.synced_live = self.synced_live.saturating_sub(1);
            }
            let local = c.fwd().uses_local_addr();
            if local {
                self.pools.released(out_key.src, c.rport());
            }
            self.pools.closed(&out_key, local);
            if c.flags.has(ConnFlags::PROXY_PROTO) {
                self.proxy_free(r.index());
            }
            let active = c.flags.has(ConnFlags::ACTIVE);
            self.sched.conn_freed(RsId(c.rs), active);
            let svc = self.svc_of(c.rs);
            if c.flags.has(ConnFlags::SRC_COUNTED) {
                self.edge.released(svc, &c.cip());
            }
            self.stats.gauge(svc, c.rs, if active { Gauge::FreedActive } else { Gauge::FreedInactive });
        }
    }

    /// Frees the connections whose expiry has passed, doing at most `budget` units of
    /// work (one per wheel slot advanced or entry examined), so the worker loop never
    /// stalls; call it every loop iteration.
    pub fn expire(&mut self, now: Millis, budget: u32) -> ExpireReport {
        let mut rep = ExpireReport::default();
        if self.dest_stamp_due {
            self.stamp_dest_watch(now);
        }
        let mut b = budget;
        while let Some(i) = self.wheel.pop_due(now, &mut b) {
            let r = ConnRef::from_index(i);
            let c = self.conns.get(r);
            if !c.is_live() {
                continue;
            }
            let e = c.expires(now);
            if e > now {
                self.wheel.schedule(i, e);
                rep.refiled += 1;
                if self.sync.is_some() {
                    // Still busy when its timer came due: the peers' copies are refreshed.
                    self.sync_note(r, now);
                }
            } else {
                if self.dest_watching {
                    let c = Conn::clone(&c);
                    self.dest_expired(&c, e);
                }
                self.free(r);
                rep.freed += 1;
            }
        }
        rep.more = b == 0;
        rep
    }

    /// Reclaims expired persistence templates (walks the template table: call it
    /// about once a second, not per loop).
    pub fn expire_persistence(&mut self, now: Millis) -> usize {
        self.sched.expire(now)
    }

    /// Frees every connection to real server `rs` among slots `from..from+max_slots`
    /// (the `expire_nodest_conn` option, after a server is removed). Returns how many
    /// were freed and where to continue (`None` at the end of the table). Control
    /// path: bounded by `max_slots` so the worker can interleave it with traffic.
    pub fn expire_rs(&mut self, rs: RsId, from: u32, max_slots: u32) -> (u32, Option<u32>) {
        let end = from.saturating_add(max_slots).min(self.conns.capacity());
        let mut freed = 0;
        let mut i = from;
        while let Some(r) = self.conns.next_live_in(i, end) {
            if self.conns.get(r).rs == rs.0 {
                self.free(r);
                freed += 1;
            }
            i = r.index() + 1;
        }
        (freed, (end < self.conns.capacity()).then_some(end))
    }

    /// Frees every connection, with all their bookkeeping (the tests' reset between
    /// cases). Not a worker's: it walks the whole pool at once, O(capacity) (rvsd frees a
    /// removed server's connections a window at a time, [`Engine::expire_rs`]).
    pub fn flush(&mut self) -> u32 {
        let mut n = 0;
        let mut i = 0;
        while let Some(r) = self.conns.next_live(i) {
            self.free(r);
            n += 1;
            i = r.index() + 1;
        }
        self.port_memo.clear();
        n
    }
}
