//! The engine's side of the PROXY protocol (what and why: [`crate::proxy_proto`]): a
//! connection of a service with the option is marked when it opens, and each of its
//! packets passes [`Engine::proxy_translate`] just before its addresses are translated
//! (all its checksum changes are incremental, so the order does not matter, and a
//! packet it drops is left untouched): the client's SYN gives
//! the first data byte's number, the server's SYN-ACK has its MSS lowered by the
//! header's length, the client's first data segment takes the header, and sequence
//! numbers (client → server) and acknowledgments and SACK blocks (server → client) are
//! shifted by its length. Connections without the option never get here (one flag
//! test in `Engine::forward`).

use std::net::SocketAddr;

use wire::TcpFlags;

use super::Engine;
use crate::buf::PacketBuf;
use crate::conn::{ConnFlags, ConnRef, Hit};
use crate::frag::FragEvent;
use crate::icmp_err::IcmpError;
use crate::proxy_proto::{self, bits, ClientStep, Header, Side};
use crate::service::ProxyProtocol;
use crate::stats::DropReason;
use crate::tcp_state::Direction;
use crate::toa;
use crate::translate::Tuple;

impl Engine {
    /// A new connection `r` of a service with the PROXY protocol: marked, its header's
    /// length recorded in its slot.
    pub(super) fn proxy_open(&mut self, r: ConnRef, version: ProxyProtocol) {
        let len = self.proxy_header(r, version).len();
        self.pp[r.index() as usize] = Side::new(version, len);
        self.conns.get_mut(r).flags.set(ConnFlags::PROXY_PROTO);
    }

    /// A translated datagram of UDP connection `r` to its server: the version 2 header
    /// goes before its payload, as in every datagram. `Err`: drop it (a first fragment
    /// cannot take it; no room within the smallest port MTU).
    pub(super) fn proxy_datagram<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        t: &Tuple,
        r: ConnRef,
    ) -> Result<(), DropReason> {
        if self.in_fragment {
            return Err(DropReason::ProxyNoRoom);
        }
        let c = self.conns.get(r);
        let hdr = proxy_proto::Header::datagram(
            SocketAddr::new(c.cip().ip(), c.cport()),
            SocketAddr::new(c.vip().ip(), c.vport()),
        );
        proxy_proto::insert_datagram(buf, l3, t.l4, hdr.as_bytes(), usize::from(self.grown_max_len))
            .map_err(|_| DropReason::ProxyNoRoom)
    }

    /// The header of connection `r`: client CIP:cport, service VIP:vport.
    fn proxy_header(&self, r: ConnRef, version: ProxyProtocol) -> Header {
        let c = self.conns.get(r);
        Header::new(version, SocketAddr::new(c.cip().ip(), c.cport()), SocketAddr::new(c.vip().ip(), c.vport()))
    }

    /// A packet of a connection with the PROXY protocol, before its addresses are
    /// translated (see the module documentation): returns how many bytes the segment
    /// grew by (the header's length, or 0). `Err`: drop it, for this reason (not
    /// counted yet); the packet is then untouched.
    pub(super) fn proxy_translate<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        l3: usize,
        t: &Tuple,
        h: Hit,
    ) -> Result<usize, DropReason> {
        let idx = h.conn.index() as usize;
        let mut side = self.pp[idx];
        let f = t.tcp_flags;
        let len = u32::from(side.len);
        let Some(seg) = buf.data_mut().get_mut(t.l4..t.l4 + t.l4_len) else {
            return Err(DropReason::BadHeader);
        };
        let Ok(tcp) = wire::TcpPacket::new_checked(&*seg) else {
            return Err(DropReason::BadHeader);
        };
        let (seq, data) = (tcp.seq_number(), t.l4_len > tcp.header_len());
        match h.dir {
            Direction::Input => {
                if f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
                    // The client's SYN (or its retransmission, or a new ISN on the same
                    // port while nothing was sent yet): its first data byte follows it.
                    if side.bits & bits::SENT == 0 {
                        side.first = seq.wrapping_add(1);
                        side.bits |= bits::READY;
                        self.pp[idx] = side;
                    }
                    return Ok(0);
                }
                if side.bits & bits::READY == 0 {
                    return Ok(0);
                }
                let sent = side.bits & bits::SENT != 0;
                match proxy_proto::to_server(seq, side.first, data, f.contains(TcpFlags::RST), sent) {
                    ClientStep::Keep => Ok(0),
                    // Parsed above: cannot fail.
                    ClientStep::Shift => proxy_proto::shift_seq(seg, len).map(|_| 0).map_err(|_| DropReason::BadHeader),
                    ClientStep::Insert => {
                        if self.in_fragment {
                            self.frags.count(FragEvent::ProxySkipped);
                            return Err(DropReason::Fragment);
                        }
                        let hdr = self.proxy_header(h.conn, side.version());
                        if proxy_proto::insert_header(buf, l3, t, hdr.as_bytes()).is_err() {
                            return Err(DropReason::ProxyNoRoom);
                        }
                        self.pp[idx].bits |= bits::SENT;
                        Ok(hdr.len())
                    }
                }
            }
            Direction::Output => {
                if f.contains(TcpFlags::SYN) && f.contains(TcpFlags::ACK) {
                    // Room for the header in the client's first segment (a SYN-ACK
                    // without an MSS option keeps its default).
                    let _ = toa::clamp_mss(buf, l3, len as u16);
                    return Ok(0);
                }
                if side.bits & bits::READY == 0 {
                    return Ok(0);
                }
                proxy_proto::shift_back(seg, side.first, len).map(|_| 0).map_err(|_| DropReason::BadHeader)
            }
        }
    }

    /// An ICMP error about a connection with the PROXY protocol, already translated:
    /// one travelling to the client quotes a segment rvs sent the server, whose
    /// sequence number is in the server's numbering; it is shifted back into the
    /// client's, which the client checks before it believes the error.
    pub(super) fn proxy_icmp(&self, data: &mut [u8], e: &IcmpError, r: ConnRef, dir: Direction) {
        let side = self.pp[r.index() as usize];
        if dir != Direction::Output || side.bits & bits::READY == 0 {
            return;
        }
        let (first, len) = (side.first, u32::from(side.len));
        super::synproxy::rewrite_quoted_seq(data, e, |s| proxy_proto::to_client(s, first, len));
    }

    /// Forgets the PROXY protocol state of slot `idx` (freed).
    #[inline]
    pub(super) fn proxy_free(&mut self, idx: u32) {
        if let Some(s) = self.pp.get_mut(idx as usize) {
            *s = Side::default();
        }
    }
}
