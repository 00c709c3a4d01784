//! NAT64 connections on the per-packet path: an IPv6 client and VIP, an IPv4 LIP and
//! real server (a FullNAT service whose VIP is IPv6 and whose servers are IPv4). The
//! header translation itself is [`crate::nat64`]'s; here the engine's side of it: the
//! packet's tuple after the header changed size, the SYN-ACK's MSS, ICMP errors.

use super::{Engine, Verdict};
use crate::buf::PacketBuf;
use crate::conn::Hit;
use crate::icmp_err::{icmp_error, IcmpError};
use crate::nat64::{self, GROWTH};
use crate::stats::DropReason;
use crate::tcp_state::Direction;
use crate::toa;
use crate::translate::{Rewrite, Tuple};
use crate::types::Proto;
use wire::TcpFlags;

impl Engine {
    /// Translates a NAT64 connection's packet to the other family with `rw` and returns
    /// its tuple as it now lies (the transport header moved with the IP header's size).
    /// The SYN-ACK to the IPv6 client has its MSS lowered by the header difference, so
    /// the client's segments still fit the server's path once translated.
    pub(super) fn translate_family<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        t: &Tuple,
        rw: &Rewrite,
        dir: Direction,
    ) -> Result<Tuple, DropReason> {
        if self.in_fragment {
            // No fragment is translated (an IPv6 fragment header, IPv4 fragment fields).
            return Err(DropReason::Nat64);
        }
        let done = match dir {
            Direction::Input => nat64::v6_to_v4(buf, l3, t, rw),
            Direction::Output => nat64::v4_to_v6(buf, l3, t, rw),
        };
        done.map_err(|_| DropReason::Nat64)?;
        let mut moved = Tuple { src: rw.src, sport: rw.sport, dst: rw.dst, dport: rw.dport, ..*t };
        moved.l4 = match dir {
            Direction::Input => t.l4 - GROWTH,
            Direction::Output => t.l4 + GROWTH,
        };
        if dir == Direction::Output && t.proto == Proto::Tcp && t.tcp_flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
            // A SYN-ACK without an MSS option keeps its (default) MSS.
            let _ = toa::clamp_mss(buf, l3, GROWTH as u16);
        }
        Ok(moved)
    }

    /// An ICMP error about a NAT64 connection: one from the IPv4 side (about a packet
    /// rvs sent the server) becomes an ICMPv6 error to the client, as RFC 7915 maps it;
    /// the rest is dropped (`nat64`). With the PROXY protocol (`pp`) the quoted
    /// sequence number is then shifted back into the client's numbering, as for a
    /// connection of one family ([`Engine::proxy_icmp`]).
    pub(super) fn icmp_nat64<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        e: &IcmpError,
        h: Hit,
        pp: bool,
    ) -> Verdict {
        let c = self.conns.get(h.conn);
        let (std::net::IpAddr::V6(vip), std::net::IpAddr::V6(cip)) = (c.vip().ip(), c.cip().ip()) else {
            return self.drop(DropReason::Nat64);
        };
        if h.dir != Direction::Output {
            return self.drop(DropReason::Nat64);
        }
        let inner = Rewrite { src: cip.into(), sport: c.cport(), dst: vip.into(), dport: c.vport() };
        let rs = c.rs;
        if nat64::icmp4_to_icmp6(buf, l3, e, (vip, cip), &inner).is_err() {
            return self.drop(DropReason::Nat64);
        }
        if pp {
            // The message was rebuilt: read again where its quote now lies.
            if let Ok(e6) = icmp_error(buf.data(), l3) {
                self.proxy_icmp(buf.data_mut(), &e6, h.conn, Direction::Output);
            }
        }
        let bytes = buf.data().len().saturating_sub(l3) as u64;
        self.stats.packet_out(self.svc_of(rs), rs, bytes);
        Verdict::Forward { dst: cip.into(), dir: Direction::Output, conn: h.conn }
    }
}
