//! The established path.
//!
//! Nearly every packet a balancer forwards is a data or ACK segment of an established
//! FullNAT connection, or a datagram of a UDP one. For the commonest of them, IPv4
//! without options, this path reads the headers once ([`V4L4::parse`]), finds the
//! connection and, when it needs nothing but the rewrite (no SYN proxy, no PROXY
//! protocol, no TOA still due, no UOA, no TCP state change), rewrites, counts and
//! refreshes it without the general path's layers (tuple of `IpAddr`s, per-feature
//! steps, the state machine). The other packets of such connections (IPv6, IPv4 with
//! options) skip the same layers once the general parse has read them
//! ([`Engine::forward_established_tuple`]). Anything else, and any packet it is not sure
//! of, goes to the general path, which is the reference: the path gives the same
//! packet, verdict, counters and connection state as the general path would
//! (`fast_path_matches_the_general_path` in `tests/props.rs`).

use std::net::{IpAddr, Ipv4Addr};

use wire::TcpFlags;

use super::{rewrite_of, Engine, SeqNote, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{Addr, ConnFlags, ConnKey, Hit};
use crate::sanity;
use crate::stats::DropReason;
use crate::tcp_state::{Direction, TcpState};
use crate::translate::{rewrite_parsed, rewrite_v4, Tuple, V4Ends};
use crate::types::{FwdMode, Millis, Proto};

/// [`Engine`]'s gate: the path is off (tests comparing it with the general path).
pub(super) const GATE_OFF: u8 = 1;
/// [`Engine`]'s gate: some service has `expire_quiescent` (its quiescent servers'
/// packets go to the general path, which ends their connections).
pub(super) const GATE_QUIESCE: u8 = 2;

/// IPv4 header length without options: the only one this path takes.
const IP_LEN: usize = wire::ipv4::HEADER_LEN;

/// An IPv4 TCP segment or UDP datagram as this path reads it: no IP options, not a
/// fragment, the whole IP packet and its transport header (TCP options included) in
/// the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct V4L4 {
    /// TCP or UDP.
    proto: Proto,
    /// Addresses and ports as received.
    ends: V4Ends,
    /// The TCP flags (empty for UDP).
    flags: TcpFlags,
    /// The IP total length.
    total: u16,
    /// The transport header's length in bytes (TCP: above 20 with options; UDP: 8).
    l4_hdr: u8,
}

impl V4L4 {
    /// Reads the packet whose IPv4 header is at `l3`; `None` for anything else, which
    /// the general parse ([`crate::translate::tuple`]) then judges. Whatever it
    /// accepts, the general parse accepts with the same tuple ([`V4L4::tuple`]).
    #[inline]
    pub(super) fn parse(data: &[u8], l3: usize) -> Option<V4L4> {
        let ip = data.get(l3..)?;
        let h = ip.get(..IP_LEN + wire::udp::HEADER_LEN)?;
        // Version 4, IHL 5; neither more fragments nor an offset.
        if h[0] != 0x45 || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
            return None;
        }
        let total = u16::from_be_bytes([h[2], h[3]]) as usize;
        if total > ip.len() {
            return None;
        }
        let (proto, flags, l4_hdr) = match h[9] {
            6 => {
                let t = ip.get(IP_LEN..IP_LEN + wire::tcp::HEADER_LEN)?;
                let len = (t[12] >> 4) * 4;
                if len < 20 || IP_LEN + len as usize > total {
                    return None;
                }
                (Proto::Tcp, TcpFlags(t[13]), len)
            }
            17 => {
                // The UDP length as the general parse checks it: a header's worth, and
                // no more than the IP packet carries.
                let len = u16::from_be_bytes([h[IP_LEN + 4], h[IP_LEN + 5]]) as usize;
                if len < wire::udp::HEADER_LEN || IP_LEN + len > total {
                    return None;
                }
                (Proto::Udp, TcpFlags::empty(), wire::udp::HEADER_LEN as u8)
            }
            _ => return None,
        };
        let ends = V4Ends {
            src: [h[12], h[13], h[14], h[15]],
            sport: u16::from_be_bytes([h[20], h[21]]),
            dst: [h[16], h[17], h[18], h[19]],
            dport: u16::from_be_bytes([h[22], h[23]]),
        };
        Some(V4L4 { proto, ends, flags, total: total as u16, l4_hdr })
    }

    /// Its connection key.
    #[inline]
    pub(super) fn key(&self) -> ConnKey {
        let e = &self.ends;
        ConnKey::new(self.proto, Addr::v4(e.src), e.sport, Addr::v4(e.dst), e.dport)
    }

    /// The tuple the general parse gives the same packet at `l3`.
    #[inline]
    pub(super) fn tuple(&self, l3: usize) -> Tuple {
        let e = &self.ends;
        Tuple {
            proto: self.proto,
            src: IpAddr::V4(Ipv4Addr::from(e.src)),
            sport: e.sport,
            dst: IpAddr::V4(Ipv4Addr::from(e.dst)),
            dport: e.dport,
            tcp_flags: self.flags,
            l4: l3 + IP_LEN,
            l4_len: self.total as usize - IP_LEN,
        }
    }
}

impl Engine {
    /// Whether connection `hit` needs nothing but the rewrite for a packet of `proto`
    /// with `flags`: FullNAT, proven (an unproven connection's client packets are
    /// counted, `tables`), no SYN proxy or PROXY protocol, its server not quiescent
    /// ([`quiescent`](super::quiescent)); TCP: ESTABLISHED and
    /// staying so (no SYN, FIN or RST), no TOA due (it goes on the handshake's last
    /// ACK); UDP: no UOA (it marks the first datagrams towards the server).
    #[inline]
    fn needs_only_the_rewrite(&self, proto: Proto, flags: TcpFlags, hit: Hit) -> bool {
        let changes = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST;
        if flags.bits() & changes.bits() != 0 || self.in_fragment {
            return false;
        }
        let c = self.conns.get(hit.conn);
        let f = c.flags();
        let ready = match proto {
            Proto::Tcp => {
                c.state == TcpState::Established
                    && (hit.dir == Direction::Output
                        || !self.toa
                        || !f.has(ConnFlags::SYNACK_SEEN)
                        || f.has(ConnFlags::TOA_DONE))
            }
            // While some service has the passive check, a server's first answer takes the
            // general path (`udp_answered`).
            Proto::Udp => {
                !f.has(ConnFlags::UOA)
                    && (hit.dir == Direction::Input || f.has(ConnFlags::SYNACK_SEEN) || !self.dest_watching)
            }
            // (Never parsed by the established path.)
            Proto::Icmp => false,
        };
        ready
            && c.fwd() == FwdMode::FullNat
            && !c.unproven()
            && f.0 & (ConnFlags::SYNPROXY | ConnFlags::PROXY_PROTO) == 0
            && (self.gate == 0 || !self.gated(c.rs))
    }

    /// Whether the gate keeps server `rs`'s packets off this path (off in tests, or the
    /// server is quiescent).
    #[inline(never)]
    fn gated(&self, rs: u32) -> bool {
        self.gate & GATE_OFF != 0 || self.quiescent(rs)
    }

    /// After the rewrite: the packet (`bytes` long) counted, the connection's expiry
    /// pushed (its state stays), what the segment tells of its sequence numbers
    /// recorded (`note`; see `Conn::closing_matches`).
    #[inline(always)]
    fn count_and_refresh(&mut self, hit: Hit, proto: Proto, bytes: u64, now: Millis, note: SeqNote) {
        let c = self.conns.get(hit.conn);
        let (rs, old_exp, synced) = (c.rs, c.expires(now), c.synced());
        if synced {
            self.adopt(hit.conn);
        }
        self.count_packet(rs, hit.dir, bytes);
        // `move_to` without its state change: the state stays ESTABLISHED (TCP; see
        // `needs_only_the_rewrite`).
        let exp = now + self.timeout_of(rs, proto, TcpState::Established);
        if exp < old_exp {
            self.wheel.reschedule(hit.conn.index(), exp);
        }
        let c = self.conns.get_mut(hit.conn);
        c.set_expires(exp);
        note.apply(c);
    }

    /// The packet `p` at `l3` in `buf`, whose connection `hit` found, forwarded by the
    /// established path, its verdict written to `out`; `false` (nothing changed) when
    /// it needs the general path. The verdict goes to its slot directly: built in a
    /// temporary and copied, its narrow stores were read back by wide loads the store
    /// buffer cannot forward, a stall of 17 % of the core's time in cache.
    #[inline]
    pub(super) fn forward_established<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        p: &V4L4,
        hit: Hit,
        out: &mut Verdict,
    ) -> bool {
        if !self.needs_only_the_rewrite(p.proto, p.flags, hit) {
            return false;
        }
        // `rewrite_of`'s ends, read as IPv4 straight from the connection.
        let c = self.conns.get(hit.conn);
        let ends = match hit.dir {
            Direction::Input => (c.lip().as_v4(), c.lport(), c.rip().as_v4(), c.rport()),
            Direction::Output => (c.vip().as_v4(), c.vport(), c.cip().as_v4(), c.cport()),
        };
        let to = match ends {
            (Some(src), sport, Some(dst), dport) => V4Ends { src, sport, dst, dport },
            _ => return false,
        };
        let l4 = l3 + IP_LEN;
        if hit.dir == Direction::Input && p.proto == Proto::Tcp && p.l4_hdr as usize > wire::tcp::HEADER_LEN {
            // The client's options, as the general path checks them.
            let Some(seg) = buf.data_mut().get_mut(l4..l3 + p.total as usize) else { return false };
            if let Some(v) = self.client_checked(sanity::inbound_tcp_options(seg)) {
                *out = v;
                return true;
            }
        }
        // The rewrite leaves sequence and acknowledgment numbers alone.
        // (FullNAT only: the client is the outer side.)
        let outer = hit.dir == Direction::Input;
        let note = SeqNote::of(buf.data(), outer, p.proto, p.flags, l4, p.total as usize - IP_LEN);
        *out = match rewrite_v4(buf.data_mut(), l3, l4, p.proto, &to) {
            Ok(()) => {
                self.count_and_refresh(hit, p.proto, p.total as u64, now, note);
                Verdict::Forward { dst: IpAddr::V4(Ipv4Addr::from(to.dst)), dir: hit.dir, conn: hit.conn }
            }
            Err(_) => self.drop(DropReason::BadHeader),
        };
        true
    }

    /// [`forward_established`](Self::forward_established) of a packet the general
    /// parse read (IPv6; IPv4 with options): the same connections take it, the
    /// rewrite and the client's checks are the general path's own.
    #[inline]
    pub(super) fn forward_established_tuple<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        hit: Hit,
        out: &mut Verdict,
    ) -> bool {
        if !self.needs_only_the_rewrite(t.proto, t.tcp_flags, hit) {
            return false;
        }
        let rw = rewrite_of(self.conns.get(hit.conn), hit.dir);
        if rw.src.is_ipv4() != t.src.is_ipv4() || rw.dst.is_ipv4() != t.src.is_ipv4() {
            // NAT64: the general path changes the family.
            return false;
        }
        if hit.dir == Direction::Input {
            if let Some(v) = self.client_checked(sanity::inbound(buf.data_mut(), l3, t)) {
                *out = v;
                return true;
            }
        }
        let note = SeqNote::of(buf.data(), hit.dir == Direction::Input, t.proto, t.tcp_flags, t.l4, t.l4_len);
        *out = match rewrite_parsed(buf.data_mut(), l3, t, &rw) {
            Ok(()) => {
                self.count_and_refresh(hit, t.proto, (t.l4 - l3 + t.l4_len) as u64, now, note);
                Verdict::Forward { dst: rw.dst, dir: hit.dir, conn: hit.conn }
            }
            Err(_) => self.drop(DropReason::BadHeader),
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use wire::builder::PacketBuilder;

    use super::*;
    use crate::translate::tuple;

    fn seg() -> wire::builder::TcpBuilder {
        PacketBuilder::ipv4(Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(192, 0, 2, 10)).tcp(40000, 80)
    }

    /// What the path reads of a segment, as literal bytes: it is the general parse's
    /// tuple; what it leaves to the general parse, it leaves whole.
    #[test]
    fn parses_as_the_general_parse_or_declines() {
        let plain = seg().seq(1).ack(2).flags(TcpFlags::ACK).payload(b"hello").build();
        let p = V4L4::parse(&plain, 0).expect("a plain segment");
        assert_eq!(p.tuple(0), tuple(&plain, 0).unwrap());
        assert_eq!(p.ends.src, [203, 0, 113, 7]);
        assert_eq!((p.ends.sport, p.ends.dport, p.total, p.l4_hdr), (40000, 80, 45, 20));
        let ts = seg().timestamps(1, 2).flags(TcpFlags::ACK).build();
        let p = V4L4::parse(&ts, 0).expect("options are the path's too");
        assert_eq!((p.l4_hdr, p.tuple(0)), (32, tuple(&ts, 0).unwrap()));
        // Behind a 14-byte Ethernet header, with 6 bytes of padding after the packet.
        let mut framed = vec![0u8; 14];
        framed.extend_from_slice(&plain);
        framed.extend_from_slice(&[0; 6]);
        assert_eq!(V4L4::parse(&framed, 14).map(|p| p.tuple(14)), Some(tuple(&framed, 14).unwrap()));

        let declined = |mut b: Vec<u8>, edit: fn(&mut Vec<u8>)| {
            edit(&mut b);
            V4L4::parse(&b, 0)
        };
        assert_eq!(declined(plain.clone(), |b| b[0] = 0x46), None, "IP options");
        assert_eq!(declined(plain.clone(), |b| b[6] = 0x20), None, "more fragments");
        assert_eq!(declined(plain.clone(), |b| b[7] = 1), None, "a fragment offset");
        assert_eq!(declined(plain.clone(), |b| b[9] = 17), None, "UDP length 0 (the sequence number's bytes)");
        assert_eq!(declined(plain.clone(), |b| b[9] = 1), None, "ICMP");
        assert_eq!(declined(plain.clone(), |b| b[3] += 1), None, "longer than its buffer");
        assert_eq!(declined(plain.clone(), |b| b[32] = 0x40), None, "TCP data offset 4");
        assert_eq!(declined(plain.clone(), |b| b[32] = 0xf0), None, "TCP header past the packet");
        assert_eq!(declined(plain[..39].to_vec(), |_| {}), None, "cut short");
        let v6 = PacketBuilder::ipv6("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            .tcp(1, 2)
            .flags(TcpFlags::ACK)
            .build();
        assert_eq!(V4L4::parse(&v6, 0), None, "IPv6");

        // UDP: a datagram, an empty one, and lengths the general parse refuses.
        let udp = |payload: &[u8]| {
            PacketBuilder::ipv4(Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(192, 0, 2, 10))
                .udp(5353, 53)
                .payload(payload)
                .build()
        };
        for d in [udp(b"query"), udp(b"")] {
            let p = V4L4::parse(&d, 0).expect("a datagram");
            assert_eq!((p.proto, p.l4_hdr, p.tuple(0)), (Proto::Udp, 8, tuple(&d, 0).unwrap()));
        }
        assert_eq!(declined(udp(b"query"), |b| b[25] = 14), None, "a UDP length past the IP packet");
        assert_eq!(declined(udp(b"query"), |b| b[25] = 7), None, "a UDP length below its header");
    }
}
