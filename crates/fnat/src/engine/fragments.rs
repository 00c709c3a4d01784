//! The engine's side of IP fragments (the design is in [`crate::frag`]): a first
//! fragment goes the ordinary way and its verdict is recorded; a later one follows it,
//! translated by its IP header alone.

use std::net::IpAddr;

use wire::checksum::Delta;
use wire::TcpFlags;

use super::{Engine, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{ConnFlags, Hit};
use crate::frag::{self, Frag, FragEvent, Route};
use crate::service::ServiceTable;
use crate::stats::DropReason;
use crate::tcp_state::{Direction, TcpState};
use crate::translate::write_ip_addrs;
use crate::types::{Millis, Proto};

impl Engine {
    /// A packet [`crate::translate::tuple`] called a fragment.
    #[inline(never)]
    pub(super) fn fragment<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        buf: &mut B,
        l3: usize,
        now: Millis,
    ) -> Verdict {
        let f = match frag::parse(buf.data(), l3) {
            Ok(f) => f,
            Err(_) => return self.drop(DropReason::Fragment),
        };
        if f.first.is_some() {
            self.first_fragment(table, buf, l3, now, &f)
        } else {
            self.later_fragment(buf, l3, &f, now)
        }
    }

    /// The first fragment: processed as a whole packet would be (a TCP one only on an
    /// existing connection past the SYN proxy's handshake), its verdict recorded.
    fn first_fragment<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        buf: &mut B,
        l3: usize,
        now: Millis,
        f: &Frag,
    ) -> Verdict {
        let Some(t) = f.first else { return self.drop(DropReason::Fragment) };
        let Some(k) = Self::key(&t) else { return self.drop(DropReason::BadHeader) };
        let hit = self.conns.lookup(&k);
        if t.proto == Proto::Tcp {
            let Some(h) = hit else { return self.drop(DropReason::Fragment) };
            let c = self.conns.get(h.conn);
            let handshake = c.flags().has(ConnFlags::SYNPROXY) && c.state() != TcpState::Established;
            if t.tcp_flags.contains(TcpFlags::SYN) || handshake {
                return self.drop(DropReason::Fragment);
            }
        }
        self.in_fragment = true;
        let v = self.general(table, buf, l3, now, &t, &k, hit);
        self.in_fragment = false;
        let route = match v {
            Verdict::Forward { conn, dir, .. } => Route::Forward { conn, dir },
            Verdict::Redirect { owner } => Route::Redirect { owner },
            Verdict::Drop(_) => return v,
            // Neither a service's nor a local port's: as before, a fragment is not handed on.
            Verdict::NotMine => return self.drop(DropReason::Fragment),
        };
        if f.more {
            self.frags.record(&f.key, route, now);
        }
        if matches!(v, Verdict::Forward { .. }) {
            self.frags.count(FragEvent::Forwarded);
        }
        v
    }

    /// A later fragment: where its first went, with the addresses its first got.
    fn later_fragment<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, f: &Frag, now: Millis) -> Verdict {
        let route = self.frags.lookup(&f.key, !f.more, now);
        let (conn, dir) = match route {
            Some(Route::Forward { conn, dir }) => (conn, dir),
            Some(Route::Redirect { owner }) => return Verdict::Redirect { owner },
            None => {
                self.frags.count(FragEvent::NoFirst);
                return self.drop(DropReason::FragmentNoFirst);
            }
        };
        if conn.index() >= self.conns.capacity() {
            self.frags.count(FragEvent::NoFirst);
            return self.drop(DropReason::FragmentNoFirst);
        }
        // The connection may have gone since the first fragment (its slot may be free,
        // or hold another one now): it must still be the flow of these addresses.
        let c = self.conns.get(conn);
        let arrived = match dir {
            Direction::Input => c.inbound_key(),
            Direction::Output => c.outbound_key(),
        };
        if !c.is_live() || arrived.src != f.key.src || arrived.dst != f.key.dst {
            self.frags.count(FragEvent::NoFirst);
            return self.drop(DropReason::FragmentNoFirst);
        }
        let (src, dst): (IpAddr, IpAddr) = match dir {
            Direction::Input => (c.lip().ip(), c.rip().ip()),
            Direction::Output => (c.vip().ip(), c.cip().ip()),
        };
        let rs = c.rs;
        if c.cip().is_v4() != c.rip().is_v4() {
            // NAT64 translates no fragment (see `crate::nat64`).
            return self.drop(DropReason::Nat64);
        }
        if c.fwd().keeps_packet() {
            // Unchanged, to the server's MAC or in the tunnel (see `super::modes`).
            self.stats.packet_in(self.svc_of(rs), rs, buf.data().len().saturating_sub(l3) as u64);
            let v = self.deliver_unchanged(buf, l3, conn);
            if matches!(v, Verdict::Forward { .. }) {
                self.frags.count(FragEvent::Forwarded);
            }
            return v;
        }
        let mut d = Delta::new();
        d.replace_addr(f.key.src.ip(), src);
        d.replace_addr(f.key.dst.ip(), dst);
        if write_ip_addrs(buf.data_mut(), l3, src, dst, d).is_err() {
            return self.drop(DropReason::BadHeader);
        }
        let bytes = buf.data().len().saturating_sub(l3) as u64;
        let svc = self.svc_of(rs);
        match dir {
            Direction::Input => self.stats.packet_in(svc, rs, bytes),
            Direction::Output => self.stats.packet_out(svc, rs, bytes),
        }
        self.frags.count(FragEvent::Forwarded);
        Verdict::Forward { dst, dir, conn }
    }

    /// A first fragment is forwarded without TOA: counted if TOA was due.
    pub(super) fn fragment_skips_toa(&mut self, h: Hit) {
        let c = self.conns.get(h.conn);
        if self.toa
            && h.dir == Direction::Input
            && c.proto() == Proto::Tcp
            && c.flags().has(ConnFlags::SYNACK_SEEN)
            && !c.flags().has(ConnFlags::TOA_DONE)
        {
            self.frags.count(FragEvent::ToaSkipped);
        }
    }

    /// The fragment table (diagnostics).
    pub fn frags(&self) -> &frag::FragTable {
        &self.frags
    }
}
