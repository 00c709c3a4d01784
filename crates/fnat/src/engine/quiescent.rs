//! DPVS's `--expire-quiescent` (keepalived `expire_quiescent_conn`): on a service that
//! asks for it, a connection whose real server is quiescent (weight 0: drained by the
//! operator, by a checker's `inhibit_on_failure`, or held out by the passive check)
//! ends at its next packet instead of running on: its clients move to the servers in
//! scheduling at once, rather than waiting on a server that is gone.
//!
//! What the packet gets: a TCP segment is answered with an RST to its sender (the
//! client, or the server), at the sender's own acknowledgment number (RFC 9293,
//! 3.10.7.1), and the connection is freed; a new SYN on the old connection's ports, or
//! a client's UDP datagram, is scheduled afresh (nothing lost); a server's datagram is
//! dropped with the connection. An RST passes as usual (it ends the connection anyway).
//! DPVS expires the connection and drops the packet; the RST spares the client its
//! retransmission timeouts.
//!
//! Off the packet path: the established path looks at the server only when some service
//! has the option (its gate, [`super::established::GATE_QUIESCE`]).

use super::{Engine, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{ConnRef, Hit};
use crate::service::ServiceTable;
use crate::stats::{ConnEvent, DropReason};
use crate::synproxy::segment::{self, craft, Craft};
use crate::tcp_state::Direction;
use crate::translate::Tuple;
use crate::types::Proto;
use wire::TcpFlags;

/// What [`Engine::expire_quiescent`] made of the packet.
pub(super) enum Quiesced {
    /// An answer (or a drop) for it.
    Done(Verdict),
    /// The connection is gone: schedule the packet as a new flow.
    Reschedule,
    /// An RST: forwarded as usual (it ends the connection).
    AsUsual,
}

impl Engine {
    /// Which servers are quiescent on services with the option, from generation
    /// `table` (where a generation is bound).
    pub(super) fn bind_quiescent(&mut self, table: &ServiceTable) {
        self.quiesce_watching = table.services().iter().any(|s| s.config.expire_quiescent);
        self.gate = match self.quiesce_watching {
            true => self.gate | super::established::GATE_QUIESCE,
            false => self.gate & !super::established::GATE_QUIESCE,
        };
        self.rs_quiescent.clear();
        if !self.quiesce_watching {
            return;
        }
        let (_, rs_ids) = table.id_bounds();
        self.rs_quiescent.resize(rs_ids as usize, false);
        for s in table.services().iter().filter(|s| s.config.expire_quiescent) {
            for d in s.dests.iter().filter(|d| d.weight == 0) {
                self.rs_quiescent[d.id.0 as usize] = true;
            }
        }
    }

    /// Whether real server `rs`'s connections end at their next packet.
    #[inline]
    pub(super) fn quiescent(&self, rs: u32) -> bool {
        self.quiesce_watching && self.rs_quiescent.get(rs as usize).copied().unwrap_or(false)
    }

    /// The packet `t` at `l3` of connection `h`, whose server is quiescent.
    #[cold]
    pub(super) fn expire_quiescent<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, t: &Tuple, h: Hit) -> Quiesced {
        let f = t.tcp_flags;
        if t.proto == Proto::Tcp && f.contains(TcpFlags::RST) {
            return Quiesced::AsUsual;
        }
        self.free(h.conn);
        self.stats.event(ConnEvent::QuiescentExpired);
        let opens = t.proto == Proto::Tcp && f.opens();
        if h.dir == Direction::Input && (opens || t.proto == Proto::Udp) {
            return Quiesced::Reschedule;
        }
        if t.proto != Proto::Tcp {
            return Quiesced::Done(self.drop(DropReason::Quiescent));
        }
        let Ok(s) = segment::read(buf.data(), t.l4, t.l4_len) else {
            return Quiesced::Done(self.drop(DropReason::BadHeader));
        };
        // RFC 9293 3.10.7.1: to a segment with an ACK, an RST at its acknowledgment
        // number; otherwise an RST+ACK acknowledging what it carried.
        let (seq, ack, flags) = match f.contains(TcpFlags::ACK) {
            true => (s.ack, 0, TcpFlags::RST),
            false => {
                let len =
                    s.payload as u32 + u32::from(f.contains(TcpFlags::SYN)) + u32::from(f.contains(TcpFlags::FIN));
                (0, s.seq.wrapping_add(len), TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0))
            }
        };
        let rst =
            Craft { src: t.dst, dst: t.src, sport: t.dport, dport: t.sport, seq, ack, flags, window: 0, opts: &[] };
        if craft(buf, l3, &rst).is_err() {
            return Quiesced::Done(self.drop(DropReason::BadHeader));
        }
        let back = match h.dir {
            Direction::Input => Direction::Output,
            Direction::Output => Direction::Input,
        };
        Quiesced::Done(Verdict::Forward { dst: t.src, dir: back, conn: ConnRef::from_index(super::synproxy::NO_CONN) })
    }
}
