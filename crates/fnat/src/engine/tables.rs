//! Keeping one worker's tables from being exhausted by one source: the `SYN_RECV`
//! limit with eviction of the oldest half-open connection, taking the port of an idle
//! half-open connection when none is left towards a real server, and TIME_WAIT reuse.
//!
//! # The `SYN_RECV` limit
//! Every connection in `SYN_RECV` is on an intrusive FIFO ([`ConnLists`], 8 bytes per
//! pool slot, allocated at start, shared with the unproven connections' list below),
//! in the order it entered the state; it leaves it on any other state or when freed. A
//! new TCP connection that would take the list past the worker's limit
//! ([`EngineConfig::syn_recv_limit`](super::config::EngineConfig::syn_recv_limit):
//! `syn_recv_max`, by default a quarter of the pool, at least 1024) first evicts the
//! oldest entry: freed with its local port, counted `syn_recv_evicted`. O(1) per SYN,
//! no allocation. Connections in any other state (ESTABLISHED above all) are never
//! evicted by this.
//!
//! # Unproven connections
//! Where nothing from the server passes rvs (DR, TUN) or nothing that comes back can
//! vouch for the client (UDP: servers answer forged sources too), a forger who sends a
//! SYN then an ACK, or one datagram, from a made-up source makes a connection that holds
//! its pool slot for the state's whole timeout (TCP ESTABLISHED 900 s, UDP 300 s):
//! about a pool per timeout, 2,200 packets/s for a million slots, and then every new
//! connection was refused (`pool_full`). So such a connection (TCP of a DR or TUN
//! server, UDP of a service, or a peer's synced copy of either) is *unproven* until its
//! client has sent [`PROVEN_AFTER`] packets: it is then on a second intrusive FIFO
//! (threaded through the same links: a connection is on one list at a time, a DR or
//! TUN TCP connection on the `SYN_RECV` list first, joining this one when it leaves
//! `SYN_RECV` still unproven), in the order it was opened or left `SYN_RECV`, and
//! marked, its client's packets counted, in the connection's own line
//! (`Conn::unproven`) so that its packets find that out without another cache line.
//!
//! A new connection that finds the pool full evicts the oldest unproven one that is
//! *idle*: no packet for [`STEAL_IDLE_MS`], or none from its client (its server's
//! packets, sent wherever the forger chose, do not count: `Conn::client_silent`; so a
//! real client that has sent fewer and only listens can give way too), counted
//! `unproven_evicted`, instead of being refused. Of the [`STEAL_SCAN`] oldest, one
//! active since goes to the back of the list (a second chance); failing them, the first
//! idle unproven (DR, TUN) one of the [`STEAL_SCAN`] oldest `SYN_RECV` connections
//! gives way; if none is idle the new connection is refused. (A new connection no
//! server would take, `Service::may_schedule`, is refused before any of this, and
//! evicts nothing.) A forger must then send [`PROVEN_AFTER`] packets per connection to
//! hold a slot past the unproven ones, not two; a real client's connection that has
//! sent that many is never evicted, and one with fewer only while the pool is full,
//! once it is idle and every unproven connection ahead of it on the list has gone
//! (IPVS's `drop_entry` also drops connections of few incoming packets first, under
//! memory pressure, and none idle for less than a minute). A connection announced to
//! the peers is announced again when it is proven, and their copies are proven with it
//! (a record's `proven` flag; a copy of one still unproven is unproven, as the peer's
//! own): after a takeover, the long-lived flows do not give way first. The count of
//! unproven connections past `SYN_RECV` is a gauge of the worker's statistics
//! ([`Engine::table_gauges`]). FullNAT and NAT TCP need none of this: the server's
//! reset ends a connection a forged ACK established. (Nor do the made-up sources of
//! NAT, DR and TUN clients use up the table's 65,535 shared-address slots: their LIP is
//! the client's own address, `LIP_IS_CIP`, and takes none.)
//!
//! # A port from an idle half-open connection
//! When no local port is free towards the chosen `RIP:rport` (a full sweep found none,
//! see [`crate::sapool`]), the [`STEAL_SCAN`] oldest `SYN_RECV` connections, then the
//! [`STEAL_SCAN`] oldest unproven ones (of any destination), are searched for one towards
//! the same `RIP:rport` through a LIP of the same set that has been idle for at least
//! [`STEAL_IDLE_MS`] (an unproven one: idle as above); if there is one it is evicted (counted `syn_recv_evicted` or
//! `unproven_evicted`) and the new connection takes its `LIP:lport`. So a flood of
//! half-open connections or of forged UDP flows cannot hold every port towards a server.
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
use crate::conn::{Addr, ConnRef, Hit, List};
use crate::stats::{ConnEvent, TableGauges};
use crate::tcp_state::{Direction, TcpState};
use crate::translate::Tuple;
use crate::types::{FwdMode, Millis, Proto};

/// Whether a connection of `proto` towards a server of `fwd` starts unproven: nothing
/// from its server passes rvs (DR, TUN TCP), or nothing that comes back vouches for its
/// client (UDP).
pub(super) fn needs_proof(proto: Proto, fwd: FwdMode) -> bool {
    proto == Proto::Udp || (proto == Proto::Tcp && !fwd.replies_through())
}

/// How many of the oldest `SYN_RECV` connections, and of the oldest unproven ones, are
/// searched for a port to take when none is free towards a real server.
pub const STEAL_SCAN: u32 = 8;

/// Client packets after which a connection is no longer unproven (see the module
/// documentation): a forger's cost per pool slot, and the fewest packets a real
/// connection that can be evicted under a flood has sent.
pub const PROVEN_AFTER: u8 = 8;

/// How long a `SYN_RECV` connection must have been idle before its port can be taken
/// (a handshake takes one round trip; a lost SYN-ACK is retried by the client after
/// 1 s).
pub const STEAL_IDLE_MS: Millis = 1000;

impl Engine {
    /// Keeps the `SYN_RECV` list in step with a connection's state change: an unproven
    /// connection leaving it goes on to the unproven list.
    #[inline]
    pub(super) fn syn_recv_moved(&mut self, r: ConnRef, old: TcpState, new: TcpState) {
        let i = r.index();
        if new == TcpState::SynRecv {
            self.lists.push_back(List::HalfOpen, i);
        } else if old == TcpState::SynRecv && self.lists.list_of(i) == Some(List::HalfOpen) {
            self.lists.remove(i);
            if self.conns.get(r).unproven() {
                self.lists.push_back(List::Unproven, i);
            }
        }
    }

    /// Makes room for one more `SYN_RECV` connection: evicts the oldest while the list
    /// is at its limit.
    #[inline]
    pub(super) fn syn_recv_room(&mut self) {
        while self.lists.len(List::HalfOpen) >= self.syn_recv_max {
            let Some(i) = self.lists.front(List::HalfOpen) else { break };
            self.free(ConnRef::from_index(i));
            self.stats.event(ConnEvent::SynRecvEvicted);
        }
    }

    /// Marks connection `r`, just opened, unproven if it is of a kind nothing else
    /// proves (see the module documentation), and lists it as such unless it is on the
    /// `SYN_RECV` list (it joins the unproven one when it leaves that).
    #[inline]
    pub(super) fn maybe_unproven(&mut self, r: ConnRef, proto: Proto, fwd: FwdMode, now: Millis) {
        if needs_proof(proto, fwd) {
            self.conns.get_mut(r).set_unproven(now);
            if self.lists.list_of(r.index()) != Some(List::HalfOpen) {
                self.lists.push_back(List::Unproven, r.index());
            }
        }
    }

    /// A client packet of unproven connection `r`: counted, and the connection proven
    /// at [`PROVEN_AFTER`] (and announced to the peers, so that their copies are too).
    #[cold]
    #[inline(never)]
    pub(super) fn unproven_packet(&mut self, r: ConnRef, now: Millis) {
        if self.conns.get_mut(r).count_client_packet(now) >= PROVEN_AFTER {
            self.prove(r);
            self.sync_note(r, now);
        }
    }

    /// Unproven connection `r` is proven: off the unproven list, never evicted from
    /// then on (but as a half-open connection, while it is one).
    pub(super) fn prove(&mut self, r: ConnRef) {
        if self.lists.list_of(r.index()) == Some(List::Unproven) {
            self.lists.remove(r.index());
        }
        self.conns.get_mut(r).set_proven();
    }

    /// Room in the pool for one more connection: if the pool is full, evicts the
    /// oldest unproven connection idle for [`STEAL_IDLE_MS`]; each of the
    /// [`STEAL_SCAN`] oldest that was not idle goes to the back of the list (a second
    /// chance: a live flow, or one a packet of this very burst opened, is not evicted).
    /// Failing that, the first idle unproven one (DR, TUN) of the [`STEAL_SCAN`] oldest
    /// half-open connections. Whether there is room.
    #[inline]
    pub(super) fn pool_room(&mut self, now: Millis) -> bool {
        if self.conns.free() > 0 {
            return true;
        }
        for _ in 0..STEAL_SCAN {
            let Some(i) = self.lists.front(List::Unproven) else { break };
            let r = ConnRef::from_index(i);
            if self.idle_a_while(r, now) {
                self.free(r);
                self.stats.event(ConnEvent::UnprovenEvicted);
                return true;
            }
            self.lists.remove(i);
            self.lists.push_back(List::Unproven, i);
        }
        let mut cur = self.lists.front(List::HalfOpen);
        for _ in 0..STEAL_SCAN {
            let Some(i) = cur else { break };
            let r = ConnRef::from_index(i);
            if self.conns.get(r).unproven() && self.idle_a_while(r, now) {
                self.free(r);
                self.stats.event(ConnEvent::UnprovenEvicted);
                return true;
            }
            cur = self.lists.after(i);
        }
        false
    }

    /// Whether connection `r` has been idle for at least [`STEAL_IDLE_MS`]: at most its
    /// state's timeout less that is left (a synced copy's holds the sync grace too); or,
    /// unproven, whether its client has been (a server that goes on sending to a forged
    /// source does not keep the flow: `Conn::client_silent`).
    fn idle_a_while(&self, r: ConnRef, now: Millis) -> bool {
        let c = self.conns.get(r);
        let grace = match (c.synced(), self.sync) {
            (true, Some(s)) => Millis::from(s.grace_ms),
            _ => 0,
        };
        let idle_from = (self.timeout_of(c.rs, c.proto(), c.state) + grace).saturating_sub(STEAL_IDLE_MS);
        c.expires(now) <= now + idle_from || (c.unproven() && c.client_silent(now, STEAL_IDLE_MS))
    }

    /// Connections in `SYN_RECV` now, and the limit.
    pub fn syn_recv(&self) -> (u32, u32) {
        (self.lists.len(List::HalfOpen), self.syn_recv_max)
    }

    /// The memory of everything the worker keeps per connection slot, divided by the
    /// capacity: the table ([`ConnTable::bytes_per_conn`](crate::conn::ConnTable::bytes_per_conn))
    /// and the side arrays indexed like it (timer links, the `SYN_RECV` and unproven
    /// lists, and the PROXY protocol, UOA and SYN proxy states where allocated).
    pub fn bytes_per_slot(&self) -> f64 {
        let side =
            self.wheel.bytes() + self.lists.bytes() + self.pp.bytes() + self.uoa.bytes() + self.synproxy.slot_bytes();
        self.conns.bytes_per_conn() + side as f64 / f64::from(self.conns.capacity().max(1))
    }

    /// Unproven connections past `SYN_RECV` now (see the module documentation).
    pub fn unproven(&self) -> u32 {
        self.lists.len(List::Unproven)
    }

    /// The connections that give way first, counted (reported with the worker's
    /// statistics).
    pub fn table_gauges(&self) -> TableGauges {
        let len = |l| self.lists.len(l);
        TableGauges { half_open: len(List::HalfOpen), unproven: len(List::Unproven), synced: self.synced_live }
    }

    /// No port is free towards `rip:rport` from set `set`: takes the `LIP:lport` of one
    /// of the [`STEAL_SCAN`] oldest `SYN_RECV` connections towards it, or else of the
    /// [`STEAL_SCAN`] oldest unproven ones, idle for at least [`STEAL_IDLE_MS`],
    /// evicting it. `None` if there is none.
    #[cold]
    pub(super) fn steal_syn_recv_port(
        &mut self,
        set: usize,
        proto: Proto,
        rip: Addr,
        rport: u16,
        now: Millis,
    ) -> Option<(Addr, u16)> {
        for half_open in [true, false] {
            let list = if half_open { List::HalfOpen } else { List::Unproven };
            let mut cur = self.lists.front(list);
            let mut found = None;
            for _ in 0..STEAL_SCAN {
                let Some(i) = cur else { break };
                let c = self.conns.get(ConnRef::from_index(i));
                if self.idle_a_while(ConnRef::from_index(i), now)
                    && c.proto() == proto
                    && c.rip() == rip
                    && c.rport() == rport
                    && c.fwd().uses_local_addr()
                    && self.pools.set_has(set, &c.lip())
                {
                    found = Some(i);
                    break;
                }
                cur = self.lists.after(i);
            }
            if let Some(i) = found {
                let c = self.conns.get(ConnRef::from_index(i));
                let got = (c.lip(), c.lport());
                let dry = self.pools.is_dry(set, rip, rport);
                self.free(ConnRef::from_index(i));
                if dry {
                    // The freed port is taken at once: the destination stays as full.
                    self.pools.mark_dry(set, rip, rport);
                }
                self.stats.event(match half_open {
                    true => ConnEvent::SynRecvEvicted,
                    false => ConnEvent::UnprovenEvicted,
                });
                return Some(got);
            }
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
