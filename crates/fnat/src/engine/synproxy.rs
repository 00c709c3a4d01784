//! The engine's side of the SYN proxy (what it is and why: [`crate::synproxy`]): the
//! cookie answer to a SYN, the cookie check of an ACK that opens the connection, the
//! handshake with the real server, and the translation of every later packet. The
//! per-packet path calls in at three places: a SYN to a service
//! (`Engine::synproxy_syn`), another TCP packet to a service without a connection
//! (`Engine::synproxy_ack`), and a packet of a proxied connection
//! (`Engine::synproxy_handshake` before translation, `Engine::synproxy_translate`
//! after).

use wire::TcpFlags;

use super::{Engine, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{ConnFlags, ConnKey, ConnRef, Hit};
use crate::icmp_err::IcmpError;
use crate::sanity;
use crate::service::{ServiceTable, SvcIdx};
use crate::stats::DropReason;
use crate::synproxy::cookie::{count_at, CookieData};
use crate::synproxy::segment::{self, craft, Craft, OptBuf, Seg, Shift};
use crate::synproxy::{bits, Side, SynProxyEvent as Ev, SynProxyMode, NO_WS};
use crate::tcp_state::Direction;
use crate::toa;
use crate::translate::{rewrite_parsed, tuple, Rewrite, Tuple};
use crate::types::Millis;

/// The `conn` of a [`Verdict::Forward`] that answers for no connection (the SYN-ACK
/// with a cookie): [`Engine::arrival_key`] gives an unspecified key for it.
pub const NO_CONN: u32 = u32::MAX;

const SYNACK: TcpFlags = TcpFlags(0x12);
/// Retransmitted server SYN-ACKs answered per connection.
const MAX_SYNACK_RETRANS: u8 = 3;
/// SYNs sent to the server again (on the client's retransmissions) per connection.
const MAX_SYN_RESENT: u8 = 3;

impl Engine {
    /// A client SYN to service `svc` (no connection, input checks passed): counted
    /// for auto mode, and answered with a cookie when the proxy is on for the service.
    /// `None`: the ordinary path opens a connection.
    pub(super) fn synproxy_syn<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        svc: SvcIdx,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
    ) -> Option<Verdict> {
        let setting = table.service(svc).synproxy;
        self.synproxy.on_syn(now, self.lists.len(crate::conn::List::HalfOpen));
        if !self.synproxy.active(setting) {
            return None;
        }
        Some(self.answer_syn(buf, l3, now, t, None))
    }

    /// Rewrites a client SYN into the SYN-ACK carrying the cookie (or `ours`, for a SYN
    /// retransmitted to a connection that already has one).
    fn answer_syn<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        ours: Option<u32>,
    ) -> Verdict {
        let Ok(s) = segment::read(buf.data(), t.l4, t.l4_len) else {
            return self.drop(DropReason::BadHeader);
        };
        let cfg = &self.synproxy.cfg;
        let v4 = t.src.is_ipv4();
        let d = CookieData::from_syn(v4, s.opts.mss, s.opts.wscale, s.opts.sack_perm);
        let cookie =
            ours.unwrap_or_else(|| self.synproxy.key.make(t.src, t.sport, t.dst, t.dport, s.seq, count_at(now), d));
        let ts = if cfg.timestamps { s.opts.ts.map(|(val, _)| (now as u32, val)) } else { None };
        // Room for the TOA the client's segments get on the way to the server.
        let toa = if self.toa { toa::toa_len(t.src) as u16 } else { 0 };
        let mss = if v4 { cfg.mss_v4 } else { cfg.mss_v6 }.saturating_sub(toa);
        let mut o = OptBuf::handshake(mss, d.sack, ts, s.opts.wscale.map(|_| cfg.wscale));
        let c = Craft {
            src: t.dst,
            dst: t.src,
            sport: t.dport,
            dport: t.sport,
            seq: cookie,
            ack: s.seq.wrapping_add(1),
            flags: SYNACK,
            window: cfg.window,
            opts: o.padded(),
        };
        if craft(buf, l3, &c).is_err() {
            return self.drop(DropReason::BadHeader);
        }
        self.synproxy.counts.inc(if ours.is_some() { Ev::SynRetrans } else { Ev::CookieSent });
        Verdict::Forward { dst: t.src, dir: Direction::Output, conn: ConnRef::from_index(NO_CONN) }
    }

    /// A TCP packet other than a SYN to service `svc` without a connection: an ACK is
    /// checked for a cookie when the service's mode is not `off`, and a valid cookie
    /// opens the connection and the ACK becomes the SYN to the real server. `None`: the
    /// ordinary path drops it (`no_conn`), as it does an ACK with a bad cookie while the
    /// proxy is not active for the service.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn synproxy_ack<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        svc: SvcIdx,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        k: &ConnKey,
    ) -> Option<Verdict> {
        let f = t.tcp_flags;
        let setting = table.service(svc).synproxy;
        if !f.contains(TcpFlags::ACK)
            || f.intersects(TcpFlags::SYN | TcpFlags::RST)
            || self.synproxy.mode(setting) == SynProxyMode::Off
        {
            return None;
        }
        let active = self.synproxy.active(setting);
        let Ok(s) = segment::read(buf.data(), t.l4, t.l4_len) else {
            return Some(self.drop(DropReason::BadHeader));
        };
        let isn = s.seq.wrapping_sub(1);
        let cookie = s.ack.wrapping_sub(1);
        let Some(d) = self.synproxy.key.check(t.src, t.sport, t.dst, t.dport, isn, cookie, count_at(now)) else {
            self.synproxy.counts.inc(Ev::AckInvalid);
            return active.then(|| self.drop(DropReason::SynproxyBadAck));
        };
        // The input checks a SYN gets before it takes a connection, and those of every
        // client packet (its data may be held and forwarded).
        if let Err(r) = sanity::admit(&*buf, l3, t, |a| self.is_own(a)) {
            return Some(self.drop(r));
        }
        if let Some(v) = self.client_checked(sanity::inbound(buf.data_mut(), l3, t)) {
            return Some(v);
        }
        // The edge policy as it stands now (its lists may have changed since the cookie
        // went out), and the rate limit's token, taken here rather than by the SYN.
        let service = table.service(svc);
        let edge = self.edge.admit(svc.0 as usize, service.id.0, &service.policy, t.src, now);
        let r = match edge.and_then(|()| self.open(table, svc, now, t, k)) {
            Ok(r) => r,
            Err(reason) => {
                self.synproxy.counts.inc(Ev::AckNoConn);
                return Some(self.refuse(table.service(svc).id.0, reason));
            }
        };
        let idx = r.index();
        // Data on the ACK itself is held like any early segment.
        let mut stash = 0;
        if s.payload > 0 {
            stash = self.synproxy.stash.put(idx, &buf.data()[l3..t.l4 + t.l4_len]);
            if stash == 0 {
                self.synproxy.counts.inc(Ev::EarlyDropped);
            }
        }
        let ts = s.opts.ts.filter(|_| self.synproxy.cfg.timestamps);
        let mut b = 0;
        if ts.is_some() {
            b |= bits::TS;
        }
        if d.sack {
            b |= bits::SACK;
        }
        self.synproxy.side[idx as usize] = Side {
            ours: cookie,
            delta: 0,
            ts: ts.map_or(0, |(_, ecr)| ecr),
            last: s.seq,
            win: s.window,
            stash,
            ws_client: d.wscale.unwrap_or(NO_WS),
            ws_server: NO_WS,
            bits: b,
            dups: 0,
        };
        self.conns.get_mut(r).flags.set(ConnFlags::SYNPROXY);
        let c = self.conns.get(r);
        let (lip, lport, rip, rport, rs) = (c.lip().ip(), c.lport(), c.rip().ip(), c.rport(), c.rs);
        let win = match d.wscale {
            Some(w) => (u32::from(s.window) << w).min(0xffff) as u16,
            None => s.window,
        };
        let mut o = OptBuf::handshake(d.mss(t.src.is_ipv4()), d.sack, ts.map(|(val, _)| (val, 0)), d.wscale);
        let c = Craft {
            src: lip,
            dst: rip,
            sport: lport,
            dport: rport,
            seq: isn,
            ack: 0,
            flags: TcpFlags::SYN,
            window: win,
            opts: o.padded(),
        };
        if craft(buf, l3, &c).is_err() {
            // No room for the SYN's options: the connection just opened goes (with its
            // port); the client's next ACK to the cookie opens it again.
            self.free(r);
            return Some(self.drop(DropReason::BadHeader));
        }
        self.synproxy.counts.inc(Ev::AckValid);
        let bytes = buf.len().saturating_sub(l3) as u64;
        self.stats.packet_in(self.svc_of(rs), rs, bytes);
        self.touch(r, Direction::Input, TcpFlags::SYN, now);
        Some(Verdict::Forward { dst: rip, dir: Direction::Input, conn: r })
    }

    /// A packet of a proxied connection, before translation: the handshake with the
    /// real server and the guards. `None`: translate it as usual (then
    /// [`Engine::synproxy_translate`]).
    pub(super) fn synproxy_handshake<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        h: Hit,
    ) -> Option<Verdict> {
        let idx = h.conn.index() as usize;
        let side = self.synproxy.side[idx];
        let est = side.bits & bits::ESTABLISHED != 0;
        let f = t.tcp_flags;
        match h.dir {
            Direction::Input if est => None,
            Direction::Input => Some(self.early_client(buf, l3, now, t, h, side)),
            Direction::Output if !est => {
                if f.contains(SYNACK) && !f.contains(TcpFlags::RST) {
                    Some(self.server_synack(buf, l3, now, t, h, side))
                } else if f.contains(TcpFlags::RST) {
                    Some(self.server_rst(buf, l3, now, t, h, side))
                } else if f.contains(TcpFlags::ACK) {
                    Some(self.server_bad_ack(buf, l3, t, h))
                } else {
                    self.synproxy.counts.inc(Ev::SynAckDropped);
                    Some(self.drop(DropReason::SynproxyBadSynAck))
                }
            }
            Direction::Output => {
                if f.contains(SYNACK) {
                    return Some(self.synack_again(buf, l3, t, h, side));
                }
                self.ack_storm(buf.data(), t, idx)
            }
        }
    }

    /// A client packet before the server's SYN-ACK.
    fn early_client<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        h: Hit,
        side: Side,
    ) -> Verdict {
        let f = t.tcp_flags;
        if f.contains(TcpFlags::SYN) && !f.intersects(TcpFlags::ACK | TcpFlags::RST) {
            return self.answer_syn(buf, l3, now, t, Some(side.ours));
        }
        let Ok(s) = segment::read(buf.data(), t.l4, t.l4_len) else {
            return self.drop(DropReason::BadHeader);
        };
        let rip = self.conns.get(h.conn).rip().ip();
        if f.contains(TcpFlags::RST) {
            // The client gives up: the server hears it (no acknowledgment: the server's
            // numbers are unknown yet). Only at a number of the client's stream: from its
            // first byte to a window's worth of data sent before the server answered; a
            // blind forger who knows the addresses and ports no longer ends the
            // handshake with any number (dropped, `synproxy_early`).
            if s.seq.wrapping_sub(side.last) > u32::from(u16::MAX) {
                return self.drop(DropReason::SynproxyEarly);
            }
            let v = self.reset_server(buf, l3, h, s.seq);
            if matches!(v, Verdict::Forward { .. }) {
                self.touch(h.conn, Direction::Input, TcpFlags::RST, now);
            }
            return v;
        }
        if (s.payload > 0 || f.contains(TcpFlags::FIN)) && side.stash == 0 {
            let slot = self.synproxy.stash.put(h.conn.index(), &buf.data()[l3..t.l4 + t.l4_len]);
            if slot != 0 {
                self.synproxy.side[h.conn.index() as usize].stash = slot;
                // Not lost: a copy goes out with the server's SYN-ACK (counted then).
                return Verdict::Drop(DropReason::SynproxyEarly);
            }
        }
        // The client is retransmitting from its first byte (or repeating its ACK): the
        // server has not answered within the client's retransmission time, so its SYN
        // may be lost. Sent again, a few times at most. (A later segment of the same
        // flight is no such sign: dropped, the client sends it again.)
        if s.seq == side.last && side.dups < MAX_SYN_RESENT {
            self.synproxy.side[h.conn.index() as usize].dups += 1;
            if self.resend_syn(buf, l3, now, t, h, &side, &s).is_ok() {
                self.synproxy.counts.inc(Ev::SynResent);
                return Verdict::Forward { dst: rip, dir: Direction::Input, conn: h.conn };
            }
            return self.drop(DropReason::BadHeader);
        }
        self.synproxy.counts.inc(Ev::EarlyDropped);
        self.drop(DropReason::SynproxyEarly)
    }

    /// Rewrites a client segment of a connection still waiting for its server into the
    /// SYN to the server again (the options from the cookie, checked again).
    #[allow(clippy::too_many_arguments)]
    fn resend_syn<B: PacketBuf>(
        &self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        h: Hit,
        side: &Side,
        s: &Seg,
    ) -> Result<(), crate::translate::TranslateError> {
        let c = self.conns.get(h.conn);
        let isn = side.last.wrapping_sub(1);
        let key = &self.synproxy.key;
        let d = key.check(t.src, t.sport, t.dst, t.dport, isn, side.ours, count_at(now)).unwrap_or(CookieData {
            mss_idx: 0,
            wscale: None,
            sack: false,
        });
        let ts = s.opts.ts.filter(|_| side.bits & bits::TS != 0).map(|(val, _)| (val, 0));
        let wscale = (side.ws_client != NO_WS).then_some(side.ws_client);
        let win = match wscale {
            Some(w) => (u32::from(side.win) << w).min(0xffff) as u16,
            None => side.win,
        };
        let mut o = OptBuf::handshake(d.mss(t.src.is_ipv4()), side.bits & bits::SACK != 0, ts, wscale);
        let syn = Craft {
            src: c.lip().ip(),
            dst: c.rip().ip(),
            sport: c.lport(),
            dport: c.rport(),
            seq: isn,
            ack: 0,
            flags: TcpFlags::SYN,
            window: win,
            opts: o.padded(),
        };
        craft(buf, l3, &syn)
    }

    /// The real server's SYN-ACK: the connection's offsets are set and the SYN-ACK
    /// becomes the ACK to the server (or the held client segment), with TOA.
    fn server_synack<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        h: Hit,
        mut side: Side,
    ) -> Verdict {
        let Ok(s) = segment::read(buf.data(), t.l4, t.l4_len) else {
            return self.drop(DropReason::BadHeader);
        };
        if s.ack != side.last {
            return self.server_bad_ack(buf, l3, t, h);
        }
        let idx = h.conn.index();
        side.delta = s.seq.wrapping_sub(side.ours);
        side.bits |= bits::ESTABLISHED;
        side.ws_server = s.opts.wscale.map_or(NO_WS, |w| w.min(14));
        let mut client_ts = 0;
        let mut server_ts = 0;
        if side.bits & bits::TS != 0 {
            match s.opts.ts {
                Some((val, ecr)) => {
                    side.ts = val.wrapping_sub(side.ts);
                    client_ts = ecr;
                    server_ts = val;
                }
                None => side.bits &= !bits::TS,
            }
        }
        side.last = 0;
        side.dups = 0;
        let stash = side.stash;
        side.stash = 0;
        self.synproxy.side[idx as usize] = side;
        self.synproxy.counts.inc(Ev::ServerSynAck);
        let c = self.conns.get_mut(h.conn);
        c.flags.set(ConnFlags::SYNACK_SEEN | ConnFlags::TOA_DONE);
        let rs = c.rs;
        if stash != 0 && self.send_held(buf, l3, h.conn, stash, &side) {
            self.synproxy.counts.inc(Ev::EarlyHeld);
        } else {
            if stash != 0 {
                self.synproxy.counts.inc(Ev::EarlyLost);
            }
            let seq = s.ack;
            if self.ack_to_server(buf, l3, h.conn, seq, s.seq.wrapping_add(1), &side, (client_ts, server_ts)).is_err() {
                return self.drop(DropReason::BadHeader);
            }
        }
        let bytes = buf.len().saturating_sub(l3) as u64;
        self.stats.packet_in(self.svc_of(rs), rs, bytes);
        self.touch(h.conn, Direction::Input, TcpFlags::ACK, now);
        let rip = self.conns.get(h.conn).rip().ip();
        Verdict::Forward { dst: rip, dir: Direction::Input, conn: h.conn }
    }

    /// Writes the ACK completing the server's handshake (with TOA when on) in place.
    #[allow(clippy::too_many_arguments)]
    fn ack_to_server<B: PacketBuf>(
        &self,
        buf: &mut B,
        l3: usize,
        r: ConnRef,
        seq: u32,
        ack: u32,
        side: &Side,
        ts: (u32, u32),
    ) -> Result<(), crate::translate::TranslateError> {
        let c = self.conns.get(r);
        let mut o = OptBuf::default();
        if side.bits & bits::TS != 0 {
            o.push(&[1, 1]);
            o.opt(wire::TcpOption::Timestamps(ts.0, ts.1));
        }
        if self.toa {
            let mut opt = [0u8; toa::TOA_LEN_V6];
            let n = toa::toa_len(c.cip().ip());
            opt[0] = toa::TOA_KIND;
            opt[1] = n as u8;
            opt[2..4].copy_from_slice(&c.cport().to_be_bytes());
            match c.cip().ip() {
                std::net::IpAddr::V4(a) => opt[4..8].copy_from_slice(&a.octets()),
                std::net::IpAddr::V6(a) => opt[4..20].copy_from_slice(&a.octets()),
            }
            o.push(&opt[..n]);
        }
        let win = match shift_of(side, self.synproxy.cfg.wscale).win_up {
            Some(w) => (u32::from(side.win) << w).min(0xffff) as u16,
            None => side.win,
        };
        let a = Craft {
            src: c.lip().ip(),
            dst: c.rip().ip(),
            sport: c.lport(),
            dport: c.rport(),
            seq,
            ack,
            flags: TcpFlags::ACK,
            window: win,
            opts: o.padded(),
        };
        craft(buf, l3, &a)
    }

    /// Puts the held client segment in `buf` (in place of the server's SYN-ACK),
    /// translated towards the server with TOA. False if it is gone or does not fit.
    fn send_held<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, r: ConnRef, slot: u16, side: &Side) -> bool {
        let Some(pkt) = self.synproxy.stash.take(slot, r.index()) else {
            return false;
        };
        let need = l3 + pkt.len();
        let cur = buf.len();
        let grown = if need > cur { buf.grow_back(need - cur).is_ok() } else { true };
        if !grown {
            return false;
        }
        buf.truncate(need);
        buf.data_mut()[l3..need].copy_from_slice(pkt);
        let Ok(t) = tuple(buf.data(), l3) else {
            return false;
        };
        let c = self.conns.get(r);
        let rw = Rewrite { src: c.lip().ip(), sport: c.lport(), dst: c.rip().ip(), dport: c.rport() };
        let (cip, cport) = (c.cip().ip(), c.cport());
        if rewrite_parsed(buf.data_mut(), l3, &t, &rw).is_err() {
            return false;
        }
        let sh = shift_of(side, self.synproxy.cfg.wscale);
        if segment::translate(&mut buf.data_mut()[t.l4..t.l4 + t.l4_len], true, &sh).is_err() {
            return false;
        }
        if self.toa && toa::insert_toa(buf, l3, cip, cport).is_err() {
            self.stats.drop(DropReason::ToaNoRoom);
        }
        true
    }

    /// An RST from the proxy to the real server at sequence number `seq`, written over
    /// the packet in `buf` (the connection's state is the caller's).
    fn reset_server<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, h: Hit, seq: u32) -> Verdict {
        let c = self.conns.get(h.conn);
        let (lip, lport, rip, rport) = (c.lip().ip(), c.lport(), c.rip().ip(), c.rport());
        let rst = Craft {
            src: lip,
            dst: rip,
            sport: lport,
            dport: rport,
            seq,
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            opts: &[],
        };
        if craft(buf, l3, &rst).is_err() {
            return self.drop(DropReason::BadHeader);
        }
        Verdict::Forward { dst: rip, dir: Direction::Input, conn: h.conn }
    }

    /// The real server answered the proxy's SYN with an acknowledgment that does not fit
    /// it, typically the ACK of a TIME_WAIT it still holds for an earlier connection on
    /// the same addresses and ports (NAT mode: a client port used through another VIP
    /// port to the same server). As RFC 793 has a client in SYN-SENT do: a reset at the
    /// sequence number it acknowledged (which ends that TIME_WAIT), the segment dropped;
    /// the SYN goes again on the client's next retransmission.
    fn server_bad_ack<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, t: &Tuple, h: Hit) -> Verdict {
        let Ok(s) = segment::read(buf.data(), t.l4, t.l4_len) else {
            return self.drop(DropReason::BadHeader);
        };
        self.synproxy.counts.inc(Ev::SynAckDropped);
        self.stats.drop(DropReason::SynproxyBadSynAck);
        self.reset_server(buf, l3, h, s.ack)
    }

    /// The real server refused (RST before its SYN-ACK): an RST to the client at the
    /// sequence number it expects, and the connection closes. Only an RST that
    /// acknowledges the SYN sent to the server (RFC 793's rule in SYN-SENT) counts: any
    /// other is dropped (`synproxy_bad_synack`), so a forger who knows the addresses and
    /// ports cannot end the handshake, nor count against the server's health.
    fn server_rst<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        h: Hit,
        side: Side,
    ) -> Verdict {
        let acks_syn = segment::read(buf.data(), t.l4, t.l4_len)
            .is_ok_and(|s| t.tcp_flags.contains(TcpFlags::ACK) && s.ack == side.last);
        if !acks_syn {
            self.synproxy.counts.inc(Ev::SynAckDropped);
            return self.drop(DropReason::SynproxyBadSynAck);
        }
        let c = self.conns.get(h.conn);
        let (cip, cport, vip, vport) = (c.cip().ip(), c.cport(), c.vip().ip(), c.vport());
        let rst = Craft {
            src: vip,
            dst: cip,
            sport: vport,
            dport: cport,
            seq: side.ours.wrapping_add(1),
            ack: side.last,
            flags: TcpFlags::RST | TcpFlags::ACK,
            window: 0,
            opts: &[],
        };
        if craft(buf, l3, &rst).is_err() {
            return self.drop(DropReason::BadHeader);
        }
        self.synproxy.counts.inc(Ev::ServerRst);
        self.touch(h.conn, Direction::Output, TcpFlags::RST, now);
        Verdict::Forward { dst: cip, dir: Direction::Output, conn: h.conn }
    }

    /// A server SYN-ACK after the handshake: our ACK was lost; send it again (a few
    /// times at most).
    fn synack_again<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, t: &Tuple, h: Hit, side: Side) -> Verdict {
        let Ok(s) = segment::read(buf.data(), t.l4, t.l4_len) else {
            return self.drop(DropReason::BadHeader);
        };
        let idx = h.conn.index() as usize;
        if s.seq != side.ours.wrapping_add(side.delta) || side.dups >= MAX_SYNACK_RETRANS {
            self.synproxy.counts.inc(Ev::SynAckDropped);
            return self.drop(DropReason::SynproxyBadSynAck);
        }
        self.synproxy.side[idx].dups += 1;
        let ts = s.opts.ts.map_or((0, 0), |(val, ecr)| (ecr, val));
        if self.ack_to_server(buf, l3, h.conn, s.ack, s.seq.wrapping_add(1), &side, ts).is_err() {
            return self.drop(DropReason::BadHeader);
        }
        self.synproxy.counts.inc(Ev::SynAckRetrans);
        Verdict::Forward { dst: self.conns.get(h.conn).rip().ip(), dir: Direction::Input, conn: h.conn }
    }

    /// The ack-storm guard on a server packet of an established proxied connection.
    fn ack_storm(&mut self, data: &[u8], t: &Tuple, idx: usize) -> Option<Verdict> {
        let thresh = self.synproxy.cfg.ack_storm_thresh;
        if thresh == 0 {
            return None;
        }
        let pure = t.tcp_flags.bits() & !(TcpFlags::PSH.bits()) == TcpFlags::ACK.bits();
        let s: Option<Seg> = if pure { segment::read(data, t.l4, t.l4_len).ok() } else { None };
        let side = &mut self.synproxy.side[idx];
        let Some(s) = s.filter(|s| s.payload == 0) else {
            side.dups = 0;
            return None;
        };
        let fp = s.seq ^ s.ack.rotate_left(13) ^ sack_edge(data, t) ^ u32::from(s.window).rotate_left(7);
        if fp == side.last {
            side.dups = side.dups.saturating_add(1);
            if side.dups >= thresh {
                self.synproxy.counts.inc(Ev::AckStorm);
                return Some(self.drop(DropReason::SynproxyAckStorm));
            }
        } else {
            side.last = fp;
            side.dups = 0;
        }
        None
    }

    /// Translates an already address-translated packet of a proxied connection.
    #[inline]
    pub(super) fn synproxy_translate(&self, data: &mut [u8], t: &Tuple, r: ConnRef, dir: Direction) {
        let side = &self.synproxy.side[r.index() as usize];
        let sh = shift_of(side, self.synproxy.cfg.wscale);
        if let Some(seg) = data.get_mut(t.l4..t.l4 + t.l4_len) {
            // Parsed before; an option list it cannot walk is left as it is (the
            // checksum still follows what was rewritten).
            let _ = segment::translate(seg, dir == Direction::Input, &sh);
        }
    }
}

impl Engine {
    /// An ICMP error about a proxied connection, already translated: one travelling to
    /// the real server quotes a segment rvs sent the client, whose sequence number is
    /// in the cookie's numbering; it is shifted into the server's, which the server
    /// checks before it believes the error (path MTU discovery above all). The ICMP
    /// checksum is updated incrementally.
    pub(super) fn synproxy_icmp(&self, data: &mut [u8], e: &IcmpError, r: ConnRef, dir: Direction) {
        let side = &self.synproxy.side[r.index() as usize];
        if dir != Direction::Input || side.bits & bits::ESTABLISHED == 0 {
            return;
        }
        let delta = side.delta;
        rewrite_quoted_seq(data, e, |s| s.wrapping_add(delta));
    }
}

/// Rewrites the sequence number of the TCP segment an ICMP error quotes (already
/// translated) to `map(seq)`, with the quoted TCP checksum when it is quoted and the
/// ICMP checksum, incrementally. Nothing happens for a quoted UDP packet or one cut
/// before its sequence number.
pub(super) fn rewrite_quoted_seq(data: &mut [u8], e: &IcmpError, map: impl FnOnce(u32) -> u32) {
    if e.inner.proto != crate::types::Proto::Tcp {
        return;
    }
    let at = e.inner.l4 + 4;
    if e.inner.l4_len < 8 || data.len() < at + 4 || data.len() < e.icmp + 4 {
        return;
    }
    let old = [data[at], data[at + 1], data[at + 2], data[at + 3]];
    let new = map(u32::from_be_bytes(old)).to_be_bytes();
    if new == old {
        return;
    }
    data[at..at + 4].copy_from_slice(&new);
    let mut d = wire::checksum::Delta::new();
    d.replace_at(at - e.icmp, &old, &new);
    // The quoted TCP checksum, when quoted, follows (the ICMP checksum covers it).
    let tc = e.inner.l4 + wire::tcp::CHECKSUM_OFFSET;
    if e.inner.l4_len >= wire::tcp::CHECKSUM_OFFSET + 2 && data.len() >= tc + 2 {
        let mut q = wire::checksum::Delta::new();
        q.replace_at(4, &old, &new);
        let oc = [data[tc], data[tc + 1]];
        let nc = q.apply(u16::from_be_bytes(oc)).to_be_bytes();
        data[tc..tc + 2].copy_from_slice(&nc);
        d.replace_at(tc - e.icmp, &oc, &nc);
    }
    let c = u16::from_be_bytes([data[e.icmp + 2], data[e.icmp + 3]]);
    data[e.icmp + 2..e.icmp + 4].copy_from_slice(&d.apply(c).to_be_bytes());
}

/// The left edge of the first SACK block of the segment (0 without one).
fn sack_edge(data: &[u8], t: &Tuple) -> u32 {
    let Some(seg) = data.get(t.l4..t.l4 + t.l4_len) else { return 0 };
    let Ok(p) = wire::TcpPacket::new_checked(seg) else { return 0 };
    p.options_iter()
        .find_map(|o| match o {
            wire::TcpOption::Sack(d) if d.len() >= 4 => Some(u32::from_be_bytes([d[0], d[1], d[2], d[3]])),
            _ => None,
        })
        .unwrap_or(0)
}

/// How a proxied connection's packets are translated, from its record and the window
/// scale the client was told.
fn shift_of(side: &Side, told: u8) -> Shift {
    let ts = (side.bits & bits::TS != 0).then_some(side.ts);
    let (win_up, win_conv) = if side.ws_client == NO_WS {
        (None, None)
    } else {
        let server = if side.ws_server == NO_WS { 0 } else { side.ws_server };
        let up = (side.ws_server == NO_WS && side.ws_client > 0).then_some(side.ws_client);
        (up, (server != told).then_some((server, told)))
    };
    Shift { seq: side.delta, ts, win_up, win_conv }
}
