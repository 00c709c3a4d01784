//! SNAT in the engine (see [`crate::snat`]): each rule's WAN addresses are a LIP set of
//! the worker's pools, and a new flow no service takes, towards an address that is not
//! rvs's, opens a [`FwdMode::Snat`] connection if a rule takes it. From then on the
//! connection is translated as a FullNAT one (without TOA), and replies to its WAN
//! address and port reach the worker that owns the port, as FullNAT replies do.
//!
//! ICMP echo (a `proto=icmp` rule) goes the same way, its identifier standing for the
//! ports ([`crate::translate::Tuple`]): a request opens the mapping with a WAN address
//! and an identifier of the worker's ports, the reply to them finds it. Nothing else
//! of ICMP changes: pings to rvs's own addresses, and replies to the box's own pings,
//! are the dataplane's stack's and the kernel twin's as before.

use std::sync::Arc;

use super::{refused, Engine, SetFor, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{Addr, ConnKey, ConnRef, Hit, NewConn};
use crate::sanity;
use crate::snat::SnatTable;
use crate::stats::{ConnEvent, DropReason, Gauge};
use crate::tcp_state::{Direction, TcpState};
use crate::translate::Tuple;
use crate::types::{FwdMode, Millis, Proto};

/// The real-server id SNAT connections carry: none (counted in the worker's totals
/// only; there is no service or real server to count them in).
pub const SNAT_RS: u32 = u32::MAX;

impl Engine {
    /// Adopts the SNAT rules (control path; allocates): each rule's WAN addresses
    /// become its LIP set (a rule keeps its set, and so its port cursors, across
    /// tables; the sets of rules gone are emptied). Connections already open keep
    /// their WAN address and port.
    pub fn set_snat(&mut self, table: Arc<SnatTable>) {
        for (i, r) in table.rules().iter().enumerate() {
            let wan: Vec<Addr> = r.wan.iter().map(|a| Addr::from(*a)).collect();
            match self.snat_sets.get(i) {
                Some(&set) => self.pools.set_lips(set as usize, &wan),
                None => {
                    let set = self.pools.add_set(&wan);
                    debug_assert_eq!(set, self.set_keys.len());
                    self.set_keys.push(SetFor::Snat);
                    self.snat_sets.push(set as u32);
                }
            }
        }
        for &set in self.snat_sets.iter().skip(table.rules().len()) {
            self.pools.set_lips(set as usize, &[]);
        }
        self.snat = table;
    }

    /// A flow that matched no service, no local address and no NAT reply: if a SNAT
    /// rule takes it (and neither end is rvs's own), its first packet opens the
    /// connection and goes out translated; a TCP packet other than a SYN is dropped
    /// (`no_conn`). `None`: no rule takes it (not rvs's business).
    #[inline(never)]
    pub(super) fn snat_new_flow<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        k: &ConnKey,
    ) -> Option<Verdict> {
        if self.is_own(t.dst) || self.is_own(t.src) {
            return None;
        }
        let rule = self.snat.find(t.proto, (&k.src, t.sport), (&k.dst, t.dport), buf.in_port())?;
        if t.proto == Proto::Tcp && !t.tcp_flags.opens() {
            return Some(self.drop(DropReason::NoConn));
        }
        if let Err(r) = sanity::admit(&*buf, l3, t, |a| self.is_own(a)) {
            return Some(self.drop(r));
        }
        Some(match self.snat_open(rule, now, t, k) {
            Ok(r) => self.forward(buf, l3, now, t, Hit { conn: r, dir: Direction::Input }),
            Err(reason) => self.drop(reason),
        })
    }

    /// An ICMP echo message without a connection: a request that a SNAT rule takes opens
    /// its mapping ([`Engine::snat_new_flow`]); a reply to a WAN (or local) address whose
    /// identifier another worker owns goes to that worker, which holds the mapping if
    /// there is one; anything else is not rvs's business ([`Verdict::NotMine`], as before
    /// echo was parsed: the dataplane's stack answers pings to rvs's addresses, and the
    /// kernel twin gets the replies to the box's own pings).
    pub(super) fn echo_miss<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        k: &ConnKey,
    ) -> Verdict {
        if t.tcp_flags.opens() {
            if !self.snat.is_empty() {
                if let Some(v) = self.snat_new_flow(buf, l3, now, t, k) {
                    return v;
                }
            }
            return Verdict::NotMine;
        }
        if self.pools.is_lip(&k.dst) {
            let owner = self.pools.ownership().owner(t.dport);
            if owner != self.worker {
                return Verdict::Redirect { owner };
            }
        }
        Verdict::NotMine
    }

    /// Opens rule `rule`'s connection for the first packet `t`: a WAN address and port
    /// from the rule's set towards the destination.
    fn snat_open(&mut self, rule: usize, now: Millis, t: &Tuple, k: &ConnKey) -> Result<ConnRef, DropReason> {
        if t.proto == Proto::Tcp {
            self.syn_recv_room();
        }
        if !self.pool_room(now) {
            return Err(DropReason::PoolFull);
        }
        let set = self.snat_sets.get(rule).copied().ok_or(DropReason::NoLocalAddr)?;
        let (wan, wport) = self.local_addr_in(set as usize, t.proto, k.dst, t.dport, now)?;
        let expires = now + self.timeout(t.proto, TcpState::SynRecv);
        let r = self
            .conns
            .insert(NewConn {
                proto: t.proto,
                cip: k.src,
                cport: t.sport,
                vip: k.dst,
                vport: t.dport,
                lip: wan,
                lport: wport,
                rip: k.dst,
                rport: t.dport,
                rs: SNAT_RS,
                state: TcpState::None,
                expires,
                fwd: FwdMode::Snat,
            })
            .map_err(refused)?;
        self.pools.opened(&ConnKey::new(t.proto, k.dst, t.dport, wan, wport), true);
        self.stats.event(ConnEvent::SnatOpened);
        self.stats.gauge(u32::MAX, SNAT_RS, Gauge::NewInactive);
        self.wheel.schedule(r.index(), expires);
        Ok(r)
    }
}
