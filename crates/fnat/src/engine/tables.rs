//! Keeping one worker's tables from being exhausted by one source: the `SYN_RECV`
//! limit with eviction of the oldest half-open connection, taking the port of an idle
//! half-open connection when none is left towards a real server, and TIME_WAIT reuse.
//!
//! # The `SYN_RECV` limit
//! Every connection in `SYN_RECV` is on an intrusive FIFO ([`ConnFifo`], 8 bytes per
//! pool slot, allocated at start), in the order it entered the state; it leaves it on
//! any other state or when freed. A new TCP connection that would take the list past
//! the worker's limit ([`EngineConfig::syn_recv_limit`](super::config::EngineConfig::syn_recv_limit):
//! `syn_recv_max`, by default a quarter of the pool, at least 1024) first evicts the oldest entry:
//! freed with its local port, counted `syn_recv_evicted`. O(1) per SYN, no allocation.
//! Connections in any other state (ESTABLISHED above all) are never evicted by this.
//!
//! # A port from an idle half-open connection
//! When no local port is free towards the chosen `RIP:rport` (a full sweep found none,
//! see [`crate::sapool`]), the [`STEAL_SCAN`] oldest `SYN_RECV` connections are
//! searched for one towards the same `RIP:rport` through a LIP of the same set that
//! has been idle for at least [`STEAL_IDLE_MS`]; if there is one it is evicted
//! (counted `syn_recv_evicted`) and the new connection takes its `LIP:lport`. So a
//! flood of half-open connections cannot hold every port towards a server.
//!
//! # TIME_WAIT reuse (LVS `conn_reuse_mode = 1`)
//! A client SYN (SYN without ACK, RST or FIN) that meets a connection of its own tuple
//! in `TIME_WAIT` or `CLOSE` expires that connection at once and is handled as the first
//! packet of a new connection: scheduled afresh (a new real server choice), with the
//! TOA on its handshake's ACK like any new connection. Counted `conn_reused`. Its local
//! address and port are remembered ([`crate::conn::reuse`]): the new connection takes
//! them again when they are free towards the server picked (`local_port_kept`), so a
//! server still holding the old one in TIME_WAIT sees the same ports and the same
//! client's timestamps, not another client's, which its PAWS check could refuse.
//!
//! As in LVS (`is_new_conn_expected`), no other state qualifies: a SYN in `FIN_WAIT`,
//! `CLOSE_WAIT` or `LAST_ACK` means the old connection is still being closed by one
//! side, and goes on through it (LVS reuses `FIN_WAIT` only with `conn_reuse_mode` bit
//! 2, for DR/TUN connections that see no output, which FullNAT does not have).

use super::Engine;
use crate::conn::{Addr, ConnFifo, ConnRef, Hit};
use crate::stats::ConnEvent;
use crate::tcp_state::{Direction, TcpState};
use crate::translate::Tuple;
use crate::types::{FwdMode, Millis, Proto};

/// How many of the oldest `SYN_RECV` connections are searched for a port to take when
/// none is free towards a real server.
pub const STEAL_SCAN: u32 = 8;

/// How long a `SYN_RECV` connection must have been idle before its port can be taken
/// (a handshake takes one round trip; a lost SYN-ACK is retried by the client after
/// 1 s).
pub const STEAL_IDLE_MS: Millis = 1000;

impl Engine {
    /// Keeps the `SYN_RECV` list in step with a connection's state change.
    #[inline]
    pub(super) fn syn_recv_moved(&mut self, r: ConnRef, old: TcpState, new: TcpState) {
        if new == TcpState::SynRecv {
            self.syn_q.push_back(r.index());
        } else if old == TcpState::SynRecv {
            self.syn_q.remove(r.index());
        }
    }

    /// Makes room for one more `SYN_RECV` connection: evicts the oldest while the list
    /// is at its limit.
    #[inline]
    pub(super) fn syn_recv_room(&mut self) {
        while self.syn_q.len() >= self.syn_recv_max {
            let Some(i) = self.syn_q.front() else { break };
            self.free(ConnRef::from_index(i));
            self.stats.event(ConnEvent::SynRecvEvicted);
        }
    }

    /// Connections in `SYN_RECV` now, and the limit.
    pub fn syn_recv(&self) -> (u32, u32) {
        (self.syn_q.len(), self.syn_recv_max)
    }

    /// The `SYN_RECV` list (diagnostics, tests).
    pub fn syn_recv_list(&self) -> &ConnFifo {
        &self.syn_q
    }

    /// No port is free towards `rip:rport` from set `set`: takes the `LIP:lport` of one
    /// of the [`STEAL_SCAN`] oldest `SYN_RECV` connections towards it, idle for at least
    /// [`STEAL_IDLE_MS`], evicting it. `None` if there is none.
    #[cold]
    pub(super) fn steal_syn_recv_port(
        &mut self,
        set: usize,
        proto: Proto,
        rip: Addr,
        rport: u16,
        now: Millis,
    ) -> Option<(Addr, u16)> {
        let idle_from = self.timeout(proto, TcpState::SynRecv).saturating_sub(STEAL_IDLE_MS);
        let mut cur = self.syn_q.front();
        for _ in 0..STEAL_SCAN {
            let i = cur?;
            let c = self.conns.get(ConnRef::from_index(i));
            // Idle for `STEAL_IDLE_MS`: at most `timeout − STEAL_IDLE_MS` left.
            let idle = c.expires(now) <= now + idle_from;
            if idle && c.proto() == proto && c.rip() == rip && c.rport() == rport && self.pools.set_has(set, &c.lip()) {
                let got = (c.lip(), c.lport());
                let dry = self.pools.is_dry(set, rip, rport);
                self.free(ConnRef::from_index(i));
                if dry {
                    // The freed port is taken at once: the destination stays as full.
                    self.pools.mark_dry(set, rip, rport);
                }
                self.stats.event(ConnEvent::SynRecvEvicted);
                return Some(got);
            }
            cur = self.syn_q.after(i);
        }
        None
    }

    /// TIME_WAIT reuse: whether the packet `t` that hit `h` is a client SYN meeting a
    /// `TIME_WAIT` or `CLOSE` connection, which is then freed (the caller handles the
    /// SYN as a new connection). See the module documentation.
    #[inline]
    pub(super) fn reuse(&mut self, t: &Tuple, h: Hit) -> bool {
        if h.dir != Direction::Input || t.proto != Proto::Tcp {
            return false;
        }
        if !t.tcp_flags.opens() {
            return false;
        }
        let c = self.conns.get(h.conn);
        if !matches!(c.state(), TcpState::TimeWait | TcpState::Close) {
            return false;
        }
        // (SNAT connections go by their rule's own port choice.)
        if c.fwd() == FwdMode::FullNat {
            self.port_memo.remember(&c.inbound_key(), c.lip(), c.lport());
        }
        self.free(h.conn);
        self.stats.event(ConnEvent::ConnReused);
        true
    }
}
