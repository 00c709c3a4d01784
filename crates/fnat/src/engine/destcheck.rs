//! The passive check's eyes in the worker ([`crate::destcheck`]): which handshakes
//! tell of a real server's health, and the reports the worker hands its control
//! thread.
//!
//! Only connections of services with `dest_check` to servers in scheduling are
//! watched. UDP: DOWN, an ICMP "port unreachable" from the server itself about a
//! datagram rvs sent it; UP, a server's first answer on a connection, after it was let
//! back in (`Engine::udp_refused`, `Engine::udp_answered`). TCP: DOWN, an RST from
//! the server to the SYN (`SYN_RECV` → `CLOSE` by a server
//! packet, no SYN-ACK seen), or a connection of the SYN proxy that expires half open
//! with no SYN-ACK seen: the SYN the server left unanswered was rvs's own, sent for a
//! client that proved its address. A client's own SYN left unanswered is not counted:
//! a client can write one a healthy server drops without a word (a TCP-MD5 option the
//! server has no key for, say). Never counted either: an eviction (a SYN flood's
//! victims), a client's RST, a client that goes silent after the SYN-ACK, a connection
//! a peer synced, or one last active before the server was (re)admitted to scheduling
//! (a half-open connection from before it was taken out). UP: a connection
//! to a server let back in ([`DestMark::Reopened`]) becoming ESTABLISHED after the
//! server's SYN-ACK (a client's bare ACK proves nothing of the server), at most
//! `up_confirm` per worker after each reopening (DPVS's warm-up count).
//!
//! Off the fast path: the engine's `touch` calls in only on a state change of a service
//! that has the check, [`Engine::expire`] on an expiry, the general path on a UDP
//! connection's first answer and on an ICMP error (while some service has the check).

use std::net::IpAddr;

use super::Engine;
use crate::conn::{Conn, ConnFlags, ConnRef};
use crate::destcheck::DestMark;
use crate::icmp_err::IcmpError;
use crate::service::{RsId, ServiceTable};
use crate::stats::ConnEvent;
use crate::tcp_state::{Direction, TcpState};
use crate::types::Millis;

/// Reports a worker holds between two turns of its loop.
const OUTBOX: usize = 64;

/// What a worker saw of a real server (for rvsd's control thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestReport {
    /// The real server.
    pub rs: RsId,
    /// UP (a handshake completed after it was let back in), else DOWN.
    pub up: bool,
}

/// Per `RsId`: what this worker watches for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RsWatch {
    /// Its failures are reported (a checked service, the server in scheduling).
    down: bool,
    /// Let back in ([`DestMark::Reopened`]) in the bound generation.
    reopened: bool,
    /// UP reports still to send since it was let back in.
    up_left: u8,
    /// Since when failures are reported (it was admitted to scheduling then; a
    /// connection last active before is not its failure); [`UNSTAMPED`] until the next
    /// [`Engine::expire`] stamps it.
    since: Millis,
}

/// [`RsWatch::since`] not stamped yet.
const UNSTAMPED: Millis = Millis::MAX;

impl Engine {
    /// What to watch, from generation `table` (where a generation is bound).
    pub(super) fn bind_dest_check(&mut self, table: &ServiceTable) {
        self.dest_watching = table.services().iter().any(|s| s.config.dest_check.is_some());
        if !self.dest_watching {
            self.rs_watch.clear();
            return;
        }
        let (_, rs_ids) = table.id_bounds();
        let prev = std::mem::take(&mut self.rs_watch);
        let mut watch = vec![RsWatch::default(); rs_ids as usize];
        for s in table.services() {
            let Some(check) = s.config.dest_check else { continue };
            for d in &s.dests {
                let was = prev.get(d.id.0 as usize).copied().unwrap_or_default();
                let (down, reopened) = (d.weight > 0, d.mark == DestMark::Reopened);
                let up_left = match (reopened, was.reopened) {
                    (true, false) => check.up_confirm,
                    (true, true) => was.up_left,
                    (false, _) => 0,
                };
                let since = if down && was.down { was.since } else { UNSTAMPED };
                self.dest_stamp_due |= since == UNSTAMPED;
                watch[d.id.0 as usize] = RsWatch { down, reopened, up_left, since };
            }
        }
        self.rs_watch = watch;
        if self.dest_out.capacity() == 0 {
            self.dest_out = Vec::with_capacity(OUTBOX);
        }
    }

    /// Stamps the servers admitted since the last call with `now` (the worker's first
    /// [`Engine::expire`] after a bind).
    pub(super) fn stamp_dest_watch(&mut self, now: Millis) {
        self.dest_stamp_due = false;
        for w in &mut self.rs_watch {
            if w.since == UNSTAMPED {
                w.since = now;
            }
        }
    }

    /// Connection `r` went from `old` to `new` on a packet going `dir` (only called
    /// when some service has the check).
    #[cold]
    pub(super) fn dest_state_changed(&mut self, r: ConnRef, dir: Direction, old: TcpState, new: TcpState) {
        let c = self.conns.get(r);
        let (rs, flags) = (c.rs, c.flags);
        let Some(w) = self.rs_watch.get(rs as usize).copied() else { return };
        if new == TcpState::Established && w.up_left > 0 && flags.has(ConnFlags::SYNACK_SEEN) {
            self.rs_watch[rs as usize].up_left -= 1;
            self.dest_report(rs, true);
        } else if w.down
            && dir == Direction::Output
            && old == TcpState::SynRecv
            && new == TcpState::Close
            && !flags.has(ConnFlags::SYNACK_SEEN)
        {
            self.dest_report(rs, false);
        }
    }

    /// Connection `c`, due at `due`, expires (only called when some service has the
    /// check).
    #[cold]
    pub(super) fn dest_expired(&mut self, c: &Conn, due: Millis) {
        let half_open = matches!(c.state, TcpState::SynRecv | TcpState::SynSent);
        let f = c.flags;
        if !half_open || f.has(ConnFlags::SYNACK_SEEN) || !f.has(ConnFlags::SYNPROXY) || c.synced() {
            return;
        }
        let Some(w) = self.rs_watch.get(c.rs as usize).copied() else { return };
        let last_active = due.saturating_sub(self.timeout_of(c.rs, c.proto(), c.state));
        if w.down && w.since != UNSTAMPED && last_active >= w.since {
            self.dest_report(c.rs, false);
        }
    }

    /// UDP connection `r`'s server answered for the first time (only called when some
    /// service has the check): marked (its replies then take the established path), and,
    /// for a server let back in, an UP (DPVS's one-way → normal; at most `up_confirm`
    /// per worker, as for TCP).
    #[cold]
    pub(super) fn udp_answered(&mut self, r: ConnRef) {
        let c = self.conns.get_mut(r);
        c.flags.set(ConnFlags::SYNACK_SEEN);
        let rs = c.rs;
        if let Some(w) = self.rs_watch.get_mut(rs as usize).filter(|w| w.up_left > 0) {
            w.up_left -= 1;
            self.dest_report(rs, true);
        }
    }

    /// An ICMP error `e` from UDP connection `r`'s server itself (its source the
    /// server's address, its destination the quoted datagram's source), about a
    /// datagram rvs sent it before the server answered anything on that connection:
    /// "port unreachable" (nothing listens: the server's process is down) is a DOWN, as
    /// an RST to the SYN is for TCP. (Only called when some service has the check.) A
    /// forger must therefore hit a fresh connection's ports; an answered connection is
    /// never taken as proof. A datagram the server leaves unanswered is not a failure
    /// (DPVS counts a connection that expires one-way): a client can send what a healthy
    /// server ignores, and so take it out. The caller has vetted `e` (its ICMP checksum,
    /// its destination: `Engine::icmp`); the destination is checked here again, as this
    /// function's own condition.
    #[cold]
    pub(super) fn udp_refused(&mut self, e: &IcmpError, r: ConnRef) {
        let unreachable = match e.src {
            IpAddr::V4(_) => (e.icmp_type, e.icmp_code) == (3, 3),
            IpAddr::V6(_) => (e.icmp_type, e.icmp_code) == (1, 4),
        };
        let c = self.conns.get(r);
        let (rs, answered) = (c.rs, c.flags.has(ConnFlags::SYNACK_SEEN));
        if unreachable
            && !answered
            && e.src == c.rip().ip()
            && e.dst == e.inner.src
            && self.rs_watch.get(rs as usize).is_some_and(|w| w.down)
        {
            self.dest_report(rs, false);
        }
    }

    fn dest_report(&mut self, rs: u32, up: bool) {
        if self.dest_out.len() == self.dest_out.capacity() {
            return self.stats.event(ConnEvent::DestReportLost);
        }
        self.dest_out.push(DestReport { rs: RsId(rs), up });
        self.stats.event(if up { ConnEvent::DestUp } else { ConnEvent::DestDown });
    }

    /// Hands the passive check's reports to `send` (the worker's queue to its control
    /// thread; `false`: full, the report is counted lost). Call it once per loop.
    pub fn take_dest_reports(&mut self, mut send: impl FnMut(DestReport) -> bool) {
        let mut lost = 0;
        for r in self.dest_out.drain(..) {
            if !send(r) {
                lost += 1;
            }
        }
        for _ in 0..lost {
            self.stats.event(ConnEvent::DestReportLost);
        }
    }
}
