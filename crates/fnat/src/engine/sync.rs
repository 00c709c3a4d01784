//! Connection synchronisation, the engine's side: which connections a worker announces
//! to its peers and when, and how it installs the connections a peer announced.
//!
//! A worker announces a connection (a [`RecordRepr`] in its outbox, which the worker
//! loop hands to the sync thread) when its TCP state changes once it is established (a
//! UDP connection when it opens), when its client proves itself (an unproven
//! connection's, see the `tables` module), and again each time its timer comes due while it
//! still carries packets (the timer wheel refiles it: about once per timeout). The
//! peer keeps its copy [`SyncSettings::grace_ms`] longer than the time the original had
//! left, so that refresh arrives before the copy expires. Nothing is added per
//! packet. Half-open connections are never announced (a SYN flood stays on the box it
//! hits), nor SNAT connections (no service to find on the peer). Nothing on the packet
//! path blocks or allocates: a full outbox loses the record (`sync_lost`), and the
//! next change or refresh announces the connection again. A peer that starts says so
//! (a message without records), and the worker then announces its whole table
//! ([`Engine::sync_walk`]), a slice per turn of its loop.
//!
//! A peer's record is installed in the worker that would own the connection here (the
//! sync thread chooses it by the engine's rule: the client's hash for NAT and
//! persistence, else the local port's owner, see [`super::modes::ClientOwner`]) with
//! the timeout the sender had left, marked as synced ([`crate::conn::Conn::synced`]):
//! it takes part in scheduling counts and the active/inactive gauges like a connection
//! of this box, but is not counted as a new connection; on a persistent service the
//! client's template points to its server from then on. A later record for the same
//! connection updates its state and expiry, or replaces an older synced copy in its
//! way; one that would take the place of a connection of this box, or exceed the
//! worker's share of synced connections ([`SyncSettings::max_synced`]), is refused and
//! counted. A copy this box forwards a packet of is adopted (`sync_adopted`: its own
//! from then on, no longer synced), so no peer's record changes a connection it
//! carries.

use wire::sync::{ProxyFields, RecordRepr, SynProxyFields};

use super::Engine;
use crate::conn::{Addr, ConnFlags, ConnKey, ConnRef, NewConn};
use crate::service::{RsId, ServiceTable};
use crate::stats::{ConnEvent, Gauge};
use crate::synproxy::NO_WS;
use crate::tcp_state::TcpState;
use crate::types::{FwdMode, Millis, Proto};

/// Records a worker may hold between two turns of its loop.
pub const OUTBOX: usize = 1024;

/// How a worker takes part in connection synchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSettings {
    /// Announce this worker's connections.
    pub announce: bool,
    /// How much longer than the original's remaining time a synced copy lives (ms): the
    /// original's refresh (when its timer comes due) must arrive within it.
    pub grace_ms: u32,
    /// At most this many synced connections live in this worker (a flood of forged or
    /// replayed records cannot take the table).
    pub max_synced: u32,
}

/// Why a peer's record was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncRefusal {
    /// Its protocol, forwarding mode or state is not one rvs syncs.
    #[error("a field rvs does not sync (protocol, forwarding mode or state)")]
    Field,
    /// No service of this box matches its protocol, VIP and port, or the service has
    /// no such real server.
    #[error("no such service or real server here")]
    NoService,
    /// The worker holds its share of synced connections, or the record's local address
    /// is not one of this box's and half the connection table's address slots are held
    /// already (see [`crate::conn::addrs`]: the other half stays for this box's own
    /// connections, whatever a peer sends).
    #[error("the worker holds its share of synced connections")]
    Full,
    /// A connection of this box holds one of its keys.
    #[error("a connection of this box holds its addresses and ports")]
    Clash,
}

/// What installing a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// A new synced connection.
    New,
    /// A synced connection's state and expiry moved.
    Updated,
}

fn syncable(fwd: FwdMode, proto: Proto, state: TcpState) -> bool {
    fwd != FwdMode::Snat
        && match proto {
            Proto::Udp => true,
            Proto::Tcp => !matches!(state, TcpState::None | TcpState::SynSent | TcpState::SynRecv),
            Proto::Icmp => false,
        }
}

impl Engine {
    /// Turns synchronisation on (with these settings) or off for this worker. Sizes the
    /// outbox once (control path).
    pub fn set_sync(&mut self, s: Option<SyncSettings>) {
        self.sync = s;
        match s {
            Some(_) if self.sync_out.capacity() == 0 => self.sync_out = Vec::with_capacity(OUTBOX),
            Some(_) => {}
            None => self.sync_out.clear(),
        }
    }

    /// Starts or stops announcing (the master role, switched at run time by
    /// `rvsadm --start-daemon|--stop-daemon master`); nothing without sync settings.
    pub fn set_sync_announce(&mut self, on: bool) {
        if let Some(s) = &mut self.sync {
            s.announce = on;
        }
    }

    /// Whether this worker announces its connections.
    pub fn sync_announces(&self) -> bool {
        self.sync.is_some_and(|s| s.announce)
    }

    /// Hands every record announced since the last call to `send` (the worker loop,
    /// towards the sync thread); `send` returns false when it has no room, and the rest
    /// are counted lost.
    pub fn take_sync(&mut self, mut send: impl FnMut(RecordRepr) -> bool) {
        let mut lost = 0;
        for r in self.sync_out.drain(..) {
            if lost > 0 || !send(r) {
                lost += 1;
            }
        }
        for _ in 0..lost {
            self.stats.event(ConnEvent::SyncLost);
        }
    }

    /// Connection `r` opened, changed state or came due while busy: announces it if this
    /// worker announces and rvs syncs such connections.
    #[cold]
    pub(super) fn sync_note(&mut self, r: ConnRef, now: Millis) {
        let Some(s) = self.sync else { return };
        let c = self.conns.get(r);
        if !s.announce || !syncable(c.fwd(), c.proto(), c.state) {
            return;
        }
        if self.sync_out.len() == self.sync_out.capacity() {
            return self.stats.event(ConnEvent::SyncLost);
        }
        let rec = self.record_of(r, now);
        self.sync_out.push(rec);
        self.stats.event(ConnEvent::SyncQueued);
    }

    /// Announces every connection rvs syncs, in table order from slot `cursor`, at most
    /// `budget` of them among at most [`LIST_SCAN_SLOTS`](super::listing::LIST_SCAN_SLOTS)
    /// slots (a peer that starts learns the whole table; the worker loop walks it a
    /// slice per turn, as its outbox drains, however sparse the pool). Returns where to
    /// go on, `None` at the end.
    pub fn sync_walk(&mut self, cursor: u32, budget: usize, now: Millis) -> Option<u32> {
        let end = cursor.saturating_add(super::listing::LIST_SCAN_SLOTS);
        let mut i = cursor;
        for _ in 0..budget {
            let Some(r) = self.conns.next_live_in(i, end) else {
                return self.conns.resume(end, 0);
            };
            self.sync_note(r, now);
            i = r.index() + 1;
        }
        self.conns.resume(i, end.saturating_sub(i))
    }

    /// Connection `r` as a record for the peers.
    fn record_of(&self, r: ConnRef, now: Millis) -> RecordRepr {
        let c = self.conns.get(r);
        let i = r.index() as usize;
        let synproxy = c.flags.has(ConnFlags::SYNPROXY).then(|| {
            let s = &self.synproxy.side[i];
            SynProxyFields { delta: s.delta, ts: s.ts, ws_client: s.ws_client, ws_server: s.ws_server, bits: s.bits }
        });
        let proxy = c.flags.has(ConnFlags::PROXY_PROTO).then(|| {
            let p = &self.pp[i];
            ProxyFields { first: p.first, len: p.len, bits: p.bits }
        });
        RecordRepr {
            proto: c.proto().number(),
            fwd: c.fwd() as u8,
            state: c.state as u8,
            toa_done: c.flags.has(ConnFlags::TOA_DONE),
            synack_seen: c.flags.has(ConnFlags::SYNACK_SEEN),
            // Set only where a copy could be unproven: a peer of an earlier version,
            // which knows no such bit, still takes FullNAT and NAT TCP records.
            proven: super::tables::needs_proof(c.proto(), c.fwd()) && !c.unproven(),
            timeout_ms: c.expires(now).saturating_sub(now).min(u32::MAX as Millis) as u32,
            client: (c.cip().ip(), c.cport()),
            virt: (c.vip().ip(), c.vport()),
            local: (c.lip().ip(), c.lport()),
            real: (c.rip().ip(), c.rport()),
            synproxy,
            proxy,
        }
    }

    /// Installs (or updates) the connection a peer announced (see the module
    /// documentation). Counted either way.
    pub fn install_synced(
        &mut self,
        table: &ServiceTable,
        rec: &RecordRepr,
        now: Millis,
    ) -> Result<Installed, SyncRefusal> {
        self.bind(table);
        let r = self.install(table, rec, now);
        self.stats.event(match r {
            Ok(Installed::New) => ConnEvent::SyncInstalled,
            Ok(Installed::Updated) => ConnEvent::SyncUpdated,
            Err(SyncRefusal::Full) => ConnEvent::SyncRefusedFull,
            Err(_) => ConnEvent::SyncRefused,
        });
        r
    }

    fn install(&mut self, table: &ServiceTable, rec: &RecordRepr, now: Millis) -> Result<Installed, SyncRefusal> {
        let proto = Proto::from_number(rec.proto).ok_or(SyncRefusal::Field)?;
        let fwd = match rec.fwd {
            0..=3 => FwdMode::from_u8(rec.fwd),
            _ => return Err(SyncRefusal::Field),
        };
        let state = TcpState::from_u8(rec.state);
        if state as u8 != rec.state || !syncable(fwd, proto, state) || (proto == Proto::Udp && state != TcpState::None)
        {
            return Err(SyncRefusal::Field);
        }
        let (cip, vip, lip, rip) =
            (Addr::from(rec.client.0), Addr::from(rec.virt.0), Addr::from(rec.local.0), Addr::from(rec.real.0));
        // Without a local address (NAT, DR, TUN) the server answers the client itself:
        // the record's local side is the client's, nothing else.
        if !fwd.uses_local_addr() && (lip, rec.local.1) != (cip, rec.client.1) {
            return Err(SyncRefusal::Field);
        }
        let svc =
            table.classify(proto, rec.client, rec.virt, || !self.pools.is_lip(&vip)).ok_or(SyncRefusal::NoService)?;
        let s = table.service(svc);
        // A server of port 0 takes each flow at its own destination port, never another.
        let port_ok = |d: &crate::service::Dest| d.port == rec.real.1 || (d.port == 0 && rec.real.1 == rec.virt.1);
        let dest = s
            .dests
            .iter()
            .find(|d| d.addr == rec.real.0 && port_ok(d) && d.fwd == fwd)
            .ok_or(SyncRefusal::NoService)?;
        // Addresses the table has no slot for yet (a foreign local address, a fwmark
        // service's VIP out of a range): only in the first half of the slots, whatever
        // the mode. (A NAT, DR or TUN client's address is its LIP too, and takes none.)
        let a = self.conns.addrs();
        let new_lip = lip != cip && !self.pools.is_lip(&lip) && !a.holds(&lip);
        if (new_lip || !a.holds(&vip)) && a.live() >= a.slots() / 2 {
            return Err(SyncRefusal::Full);
        }
        let (rs, svc_id) = (dest.id, s.id.0);
        let sync = self.sync.ok_or(SyncRefusal::Full)?;
        let expires =
            now + Millis::from(rec.timeout_ms).min(self.timeout_of(rs.0, proto, state)) + Millis::from(sync.grace_ms);
        let kin = ConnKey::new(proto, cip, rec.client.1, vip, rec.virt.1);
        let kout = ConnKey::new(proto, rip, rec.real.1, lip, rec.local.1);
        let hit_in = self.conns.lookup(&kin).map(|h| h.conn);
        let hit_out = self.conns.lookup(&kout).map(|h| h.conn);
        if let Some(r) = hit_in.filter(|r| hit_out == Some(*r)) {
            let c = self.conns.get(r);
            if c.synced() && c.rs == rs.0 {
                let old = c.state;
                self.move_to(r, old, state, expires, now);
                self.sync_flags(r, rec);
                if rec.proven && self.conns.get(r).unproven() {
                    self.prove(r);
                }
                self.sched.learn_template(table, svc, rec.client.0, rs, now);
                return Ok(Installed::Updated);
            }
        }
        // Something else holds one of its keys: a connection of this box is never
        // replaced; an older synced copy (the peer reused the client's port, or a local
        // port, before the copy expired here) gives way to the peer's newer word.
        let old: [Option<ConnRef>; 2] = [hit_in, hit_out.filter(|o| hit_in != Some(*o))];
        if old.iter().flatten().any(|r| !self.conns.get(*r).synced()) {
            return Err(SyncRefusal::Clash);
        }
        for r in old.into_iter().flatten() {
            self.free(r);
        }
        if self.synced_live >= sync.max_synced || self.conns.free() == 0 {
            return Err(SyncRefusal::Full);
        }
        let r = self
            .conns
            .insert(NewConn {
                proto,
                cip,
                cport: rec.client.1,
                vip,
                vport: rec.virt.1,
                lip,
                lport: rec.local.1,
                rip,
                rport: rec.real.1,
                rs: rs.0,
                state,
                expires,
                fwd,
            })
            .map_err(|_| SyncRefusal::Full)?;
        self.synced_live += 1;
        self.conns.get_mut(r).set_synced();
        // A copy is unproven as the peer's connection is (its forged flows are synced
        // too): it gives way like this box's own unproven connections, until the peer
        // says its client proved itself.
        self.maybe_unproven(r, proto, fwd, now);
        if rec.proven && self.conns.get(r).unproven() {
            self.prove(r);
        }
        self.pools.opened(&kout, fwd.uses_local_addr());
        self.sched.conn_new(RsId(rs.0));
        if let Some(x) = self.rs_svc.get_mut(rs.0 as usize) {
            *x = svc_id;
        }
        let active = state.is_active();
        if active {
            self.conns.get_mut(r).flags.set(ConnFlags::ACTIVE);
            self.sched.conn_activated(RsId(rs.0));
        }
        self.stats.gauge(svc_id, rs.0, Gauge::Synced { active });
        self.sync_flags(r, rec);
        self.wheel.schedule(r.index(), expires);
        self.sched.learn_template(table, svc, rec.client.0, rs, now);
        Ok(Installed::New)
    }

    /// The handshake flags and the SYN proxy and PROXY protocol state a record carries.
    fn sync_flags(&mut self, r: ConnRef, rec: &RecordRepr) {
        let i = r.index() as usize;
        let c = self.conns.get_mut(r);
        for (on, bit) in [(rec.toa_done, ConnFlags::TOA_DONE), (rec.synack_seen, ConnFlags::SYNACK_SEEN)] {
            if on {
                c.flags.set(bit);
            }
        }
        if let Some(s) = rec.synproxy {
            c.flags.set(ConnFlags::SYNPROXY);
            // Allocated already where this box has the service as the peer does.
            self.synproxy.side.allocate();
            let side = &mut self.synproxy.side[i];
            *side = Default::default();
            // Window scales as the proxy's own handshake keeps them: at most 14 (RFC 7323
            // §2.3), or none; a shift beyond would overflow.
            let ws = |w: u8| if w == NO_WS { NO_WS } else { w.min(14) };
            (side.delta, side.ts, side.ws_client, side.ws_server, side.bits) =
                (s.delta, s.ts, ws(s.ws_client), ws(s.ws_server), s.bits);
        }
        if let Some(p) = rec.proxy {
            c.flags.set(ConnFlags::PROXY_PROTO);
            self.pp.allocate();
            let side = &mut self.pp[i];
            (side.first, side.len, side.bits) = (p.first, p.len, p.bits);
        }
    }

    /// Synced connections living in this worker.
    pub fn synced_live(&self) -> u32 {
        self.synced_live
    }
}
