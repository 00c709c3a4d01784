//! What differs between the forwarding modes ([`FwdMode`]) on the per-packet path.
//!
//! Every mode uses the same connection: an inbound key `CIP:cport → VIP:vport` and an
//! outbound key `RIP:rport → LIP:lport`.
//! - **FullNAT** takes `LIP:lport` from the service's LIP set (`Engine::local_addr`);
//!   the local port decides the owning worker, so replies find it.
//! - **NAT** and **DR** keep the client's own address and port where the LIP would be
//!   (`Engine::server_side_key`): the server's reply `RIP:rport → CIP:cport` is the
//!   outbound key, and rewriting `src` to `lip` changes nothing. A NAT reply is addressed
//!   to the client's address and port, so a NAT connection lives on the worker those two
//!   hash to ([`client_side_owner`]; not the port alone: Linux clients connect from
//!   even ports only): a client packet received elsewhere is redirected there
//!   (`Engine::client_owner`), and so is a reply (`Engine::nat_reply_owner`). With
//!   one worker nothing is ever redirected.
//! - **Persistence** (any mode but NAT) needs a client's connections on one worker, where
//!   its template is: they live on the worker its masked address hashes to
//!   ([`ClientOwner::Masked`]), and client packets received elsewhere are redirected
//!   there (replies find it by their local port, as ever). A persistent service with NAT
//!   servers keeps NAT's rule (address and port), so its templates stay per worker.
//! - **DR** and **TUN** forward the packet unchanged (`Engine::forward_unchanged`): DR
//!   lets the dataplane send it to the real server's MAC; TUN puts it inside an outer
//!   header from the service's first local address of the family (found per real
//!   server where a generation is bound; see [`crate::tunnel`]). The reply never passes rvs, so the TCP
//!   state follows the client's packets alone (IPVS's input-only table), and there is
//!   no TOA, SYN proxy or per-packet rewrite.

use super::{Engine, Verdict, NO_SET};
use crate::buf::PacketBuf;
use crate::conn::{Addr, ConnKey, ConnRef, Hit};
use crate::hash::SeededFold;
use crate::sapool::AllocError;
use crate::service::SvcIdx;
use crate::stats::{ConnEvent, DropReason};
use crate::tcp_state::{Direction, TcpState};
use crate::translate::Tuple;
use crate::types::{FwdMode, Millis, Proto};
use wire::TcpFlags;

/// The worker a NAT connection of client `cip:cport` lives on, among `workers`: the
/// same from the client's packets and from the server's replies. The hash is seeded
/// (`seed`, one per process: [`crate::engine::config::EngineConfig::owner_seed`]) so a
/// client cannot choose ports that all land on one worker.
#[inline]
pub fn client_side_owner(seed: u64, cip: &Addr, cport: u16, workers: u16) -> u16 {
    use std::hash::BuildHasher;
    let h = SeededFold::with_seed(seed).hash_one((cip, cport));
    ((h >> 32) % u64::from(workers.max(1))) as u16
}

/// Which worker a service's connections live on, when the client decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOwner {
    /// Any (FullNAT, DR, TUN without persistence: the local port or RSS decides).
    Any,
    /// The worker the client's address and port hash to (NAT: replies are addressed
    /// to them).
    Port,
    /// The worker the client's address, masked with these prefix lengths (IPv4,
    /// IPv6), hashes to (persistence: the template lives there).
    Masked(u8, u8),
}

impl ClientOwner {
    /// The rule of service `s`.
    pub fn of(s: &crate::service::Service) -> ClientOwner {
        match (&s.config.persistence, s.dests.iter().any(|d| d.fwd == FwdMode::Nat)) {
            (_, true) => ClientOwner::Port,
            (Some(p), false) => ClientOwner::Masked(p.netmask_v4, p.netmask_v6),
            (None, false) => ClientOwner::Any,
        }
    }
}

impl Engine {
    /// A FullNAT connection's `LIP:lport` towards `rip:rport`, from the service's LIP set:
    /// the one the previous connection of its `client` key held when the client reused
    /// its port and it is free ([`crate::conn::reuse`]), else the set's next (a half-open
    /// connection's port is taken back when none is free).
    pub(super) fn local_addr(
        &mut self,
        svc: SvcIdx,
        proto: Proto,
        rip: Addr,
        rport: u16,
        client: &ConnKey,
        now: Millis,
    ) -> Result<(Addr, u16), DropReason> {
        let set = self.svc_set.get(svc.0 as usize).copied().unwrap_or(NO_SET);
        if set == NO_SET {
            return Err(DropReason::NoLocalAddr);
        }
        // (Only TCP connections are reused, so only TCP clients are remembered.)
        let kept = if proto == Proto::Tcp { self.port_memo.take(client) } else { None };
        if let Some((lip, lport)) = kept {
            // (A service mixing families, NAT64, may pick a server of the other one.)
            let out = ConnKey::new(proto, rip, rport, lip, lport);
            if lip.is_v4() == rip.is_v4()
                && self.pools.can_take(set as usize, &lip, lport)
                && (self.pools.known_free(&out) || !self.conns.contains(&out))
            {
                self.stats.event(ConnEvent::LocalPortKept);
                return Ok((lip, lport));
            }
        }
        self.local_addr_in(set as usize, proto, rip, rport, now)
    }

    /// `LIP:lport` towards `rip:rport` from LIP set `set` of the pools (a service's, or
    /// a SNAT rule's WAN addresses).
    pub(super) fn local_addr_in(
        &mut self,
        set: usize,
        proto: Proto,
        rip: Addr,
        rport: u16,
        now: Millis,
    ) -> Result<(Addr, u16), DropReason> {
        let conns = &self.conns;
        match self
            .pools
            .alloc(set, proto, rip, rport, |lip, lport| conns.contains(&ConnKey::new(proto, rip, rport, lip, lport)))
        {
            Ok(x) => Ok(x),
            Err(AllocError::NoLip) => Err(DropReason::NoLocalAddr),
            Err(AllocError::NoPort) => {
                self.steal_syn_recv_port(set, proto, rip, rport, now).ok_or(DropReason::NoLocalPort)
            }
        }
    }

    /// A NAT, DR or TUN connection's server-side key: the client's address and port. When
    /// another connection holds it (the same client port towards the same real server
    /// through another VIP or port), a finished TCP one (`TIME_WAIT`, `CLOSE`: the client
    /// has moved on, as its new port use shows) is expired as a SYN meeting it would be
    /// ([`Engine::reuse`]); any other is kept and the new one refused (`nat_clash`), as
    /// the server's replies could not tell the two apart.
    pub(super) fn server_side_key(
        &mut self,
        proto: Proto,
        rip: Addr,
        rport: u16,
        src: Addr,
        cport: u16,
    ) -> Result<(Addr, u16), DropReason> {
        let Some(h) = self.conns.lookup(&ConnKey::new(proto, rip, rport, src, cport)) else {
            return Ok((src, cport));
        };
        if proto != Proto::Tcp || !matches!(self.conns.get(h.conn).state(), TcpState::TimeWait | TcpState::Close) {
            return Err(DropReason::NatClash);
        }
        self.free(h.conn);
        self.stats.event(ConnEvent::ConnReused);
        Ok((src, cport))
    }

    /// The source of a TUN connection's outer header towards `rip`: the service's first
    /// local address of that family.
    pub(super) fn tunnel_source(&self, svc: SvcIdx, rip: Addr) -> Result<Addr, DropReason> {
        let set = self.svc_set.get(svc.0 as usize).copied().unwrap_or(NO_SET);
        if set == NO_SET {
            return Err(DropReason::NoLocalAddr);
        }
        self.pools.lips(set as usize).find(|a| a.is_v4() == rip.is_v4()).ok_or(DropReason::NoLocalAddr)
    }

    /// For a client packet to service `svc` without a connection here: the worker it
    /// belongs to, when that is another one ([`ClientOwner`]).
    #[inline]
    pub(super) fn client_owner(&self, svc: SvcIdx, cip: &Addr, cport: u16) -> Option<u16> {
        let workers = self.pools.ownership().workers();
        let owner = match self.svc_client_owned.get(svc.0 as usize).copied().unwrap_or(ClientOwner::Any) {
            ClientOwner::Any => return None,
            _ if workers <= 1 => return None,
            ClientOwner::Port => client_side_owner(self.owner_seed, cip, cport, workers),
            ClientOwner::Masked(v4, v6) => {
                let masked = Addr::from(crate::persist::mask_addr(cip.ip(), v4, v6));
                client_side_owner(self.owner_seed, &masked, 0, workers)
            }
        };
        (owner != self.worker).then_some(owner)
    }

    /// For a packet without a connection from a NAT real server: the worker its
    /// destination (the client) belongs to, when that is another one.
    #[inline]
    pub(super) fn nat_reply_owner(&self, k: &ConnKey) -> Option<u16> {
        if self.nat_rips.is_empty() || self.nat_rips.binary_search(&k.src).is_err() {
            return None;
        }
        let owner = client_side_owner(self.owner_seed, &k.dst, k.dport, self.pools.ownership().workers());
        (owner != self.worker).then_some(owner)
    }

    /// A client packet of a DR or TUN connection: counted, its state moved by
    /// `state_flags` (its flags, less an RST or FIN the connection does not take), sent to the
    /// real server unchanged (the dataplane puts the server's MAC on it) or in the
    /// tunnel.
    pub(super) fn forward_unchanged<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        h: Hit,
        state_flags: TcpFlags,
    ) -> Verdict {
        if h.dir == Direction::Output {
            // A DR/TUN server answers the client directly; a packet from it to the
            // client through rvs is not the connection's.
            return Verdict::NotMine;
        }
        let rs = self.conns.get(h.conn).rs;
        let svc = self.svc_of(rs);
        self.stats.packet_in(svc, rs, (t.l4 - l3 + t.l4_len) as u64);
        self.touch(h.conn, h.dir, state_flags, now);
        self.deliver_unchanged(buf, l3, h.conn)
    }

    /// Sends a packet of DR or TUN connection `conn` to its real server: as it is (DR),
    /// or inside the tunnel's outer header (TUN).
    pub(super) fn deliver_unchanged<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, conn: ConnRef) -> Verdict {
        let c = self.conns.get(conn);
        let (fwd, dst) = (c.fwd(), c.rip().ip());
        if fwd == FwdMode::Tunnel {
            let src = self.tunnel_src.get(c.rs as usize).copied().unwrap_or(Addr::UNSPECIFIED);
            if src == Addr::UNSPECIFIED {
                return self.drop(DropReason::NoLocalAddr);
            }
            if crate::tunnel::encapsulate(buf, l3, src.ip(), dst).is_err() {
                return self.drop(DropReason::TunnelNoRoom);
            }
        }
        Verdict::Forward { dst, dir: Direction::Input, conn }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    /// Linux clients use even ports only: the owners of one client's even ports are
    /// balanced whatever the seed, and another seed gives another assignment (a client
    /// cannot compute which ports land on one worker without the process's seed).
    #[test]
    fn the_owner_hash_is_seeded_and_balanced() {
        let c = Addr::from(IpAddr::from([198, 51, 100, 7]));
        let owners =
            |seed| -> Vec<u16> { (40000..42000).step_by(2).map(|p| client_side_owner(seed, &c, p, 2)).collect() };
        for seed in [0, 1, 0x5eed] {
            let on0 = owners(seed).iter().filter(|w| **w == 0).count();
            assert!((400..600).contains(&on0), "seed {seed}: {on0} of 1000 on worker 0");
        }
        assert_ne!(owners(1), owners(2), "the seed changes the assignment");
        assert_eq!(owners(7), owners(7), "one seed, one assignment (every worker agrees)");
        assert!((0..100).all(|p| client_side_owner(3, &c, p, 1) == 0), "one worker owns everything");
    }
}
