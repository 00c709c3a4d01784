//! IP fragments to a VIP or a LIP: forwarded, not reassembled, by a per-worker
//! fragment cache keyed on the first fragment's flow (DPVS's and IPVS's choice).
//!
//! # Design
//! - **Only the first fragment carries the ports.** It (offset 0, more fragments) is
//!   read by [`parse`] into an ordinary [`Tuple`] whose segment is the part of the
//!   transport header and payload it holds, and the engine processes it as any packet:
//!   connection lookup, a new UDP connection, translation. The TCP/UDP checksum lives
//!   in that fragment and the rewrite updates it incrementally (RFC 1624) for the new
//!   pseudo-header addresses and ports, never reading the payload it does not have, so
//!   the reassembled datagram's checksum is right at the far end.
//! - **The verdict is remembered** under the fragment key (source, destination,
//!   identification; for IPv4 also the protocol, RFC 791; IPv6 keys on source,
//!   destination and the fragment header's identification, RFC 8200): the connection
//!   and direction of a forward, or the owner of a redirect.
//! - **Later fragments** with the same key are translated by their IP header alone:
//!   both addresses (and the IPv4 header checksum); their payload is the datagram's
//!   middle and is not touched. They go where the first went. The entry is freed when
//!   the last fragment (no more fragments) passes, or ages out after
//!   [`FRAG_TIMEOUT_MS`].
//! - **A later fragment without its first** (it arrived before the first, or the first
//!   was dropped, or its entry aged out or found no room) is dropped and counted
//!   (`fragment_no_first`). Holding such fragments would make the engine own buffers
//!   of the generic `B` past the call; not doing so keeps the engine buffer-free. TCP
//!   recovers by retransmission (and uses path MTU discovery, so it is rarely
//!   fragmented at all); a UDP datagram whose fragments were reordered is lost, as on
//!   any lossy path.
//! - **TCP fragments open no connection**: a fragmented TCP segment is forwarded only
//!   on a connection that exists and, if the SYN proxy handled it, is established (the
//!   handshake segments are rewritten whole). A SYN carrying so much data that it is
//!   fragmented does not happen in practice; it is dropped (`fragment`). The handshake
//!   ACK, the one that takes TOA, is never fragmented either: a fragment never gets
//!   TOA (inserting bytes into a first fragment would break the reassembly offsets),
//!   nor a PROXY protocol header: the first fragment of the segment that must carry
//!   one is dropped instead (`frag_proxy_dropped`; without the header the server would
//!   take the client's data for a bad one), and the client retransmits it. The first
//!   fragment of a UDP datagram may open a connection.
//! - **A first fragment too short for its TCP/UDP header** (RFC 1858's tiny fragment)
//!   is dropped (`fragment`), as is a fragment of another protocol than TCP, UDP and
//!   ICMP echo (a SNAT rule's large ping: its identifier is in the first fragment, and
//!   the checksum there covers no address over IPv4, the pseudo-header's over IPv6,
//!   updated like UDP's).
//! - **Per worker.** A redirected first fragment (a reply to another worker's local
//!   port) records the redirect, so its later fragments follow it over the same ring.
//!   Replies steered by NIC flow rules on the local port are a gap with several
//!   workers: later fragments carry no port, RSS may give them to another worker, which
//!   drops them (`fragment_no_first`).
//!
//! # The table
//! Fixed size ([`FRAG_SLOTS`] entries per worker, allocated when the engine is built),
//! open addressing over a window of [`PROBES`] slots from the key's hash (seeded like the
//! connection table's, so a sender cannot aim at a window). A slot is free when empty,
//! when its entry's time is past, or when its last fragment went. A first fragment that
//! finds its window full of live entries takes the slot of the oldest of them
//! (`frag_evicted`), whose later fragments, if any are still to come, are then dropped
//! as without a first: a sender's later fragments follow its first within
//! microseconds, so a flood of first fragments (one a datagram, new identifications)
//! must record thousands of its own in that time to take a real datagram's entry,
//! where refusing new entries instead would let a few thousand a second (each held
//! [`FRAG_TIMEOUT_MS`]) keep every real datagram out. Per packet: no allocation, a
//! hash and at most [`PROBES`] slot comparisons.

use std::net::IpAddr;

use wire::{IpVersion, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket, UdpPacket};

use crate::conn::{Addr, ConnKey, ConnRef, KeyHasher};
use crate::tcp_state::Direction;
use crate::translate::{TranslateError, Tuple};
use crate::types::{Millis, Proto};

/// Fragment table entries per worker.
pub const FRAG_SLOTS: usize = 4096;
/// Slots looked at per key.
pub const PROBES: usize = 8;
/// How long an entry waits for the datagram's later fragments, ms (Linux waits 30 s to
/// reassemble; forwarding needs only the gap between fragments, which a sender
/// emits back to back).
pub const FRAG_TIMEOUT_MS: Millis = 2000;

crate::counter_set! {
    /// What the fragment cache did (drops are counted as [`DropReason`](crate::stats::DropReason)s besides).
    pub enum FragEvent in FragEvents {
        Forwarded = "frag_forwarded": "IP fragments forwarded (first and later ones).",
        FirstRecorded = "frag_first_recorded": "First fragments whose connection was recorded for their datagram's later fragments.",
        NoFirst = "frag_no_first": "Later fragments without a recorded first fragment (also counted as the drop fragment_no_first).",
        Evicted = "frag_evicted": "Live entries replaced by a newer first fragment whose window was full: the oldest goes (its later fragments, if any were still to come, are dropped).",
        Expired = "frag_expired": "Entries whose time ran out before their last fragment passed (counted when their slot is taken again or a late fragment finds them).",
        ToaSkipped = "frag_toa_skipped": "First fragments of a TCP segment that would have taken the TOA option: forwarded without it.",
        ProxySkipped = "frag_proxy_dropped": "First fragments of a TCP segment that must carry the PROXY protocol header: dropped (also counted as the drop fragment), since bytes cannot be inserted into a fragment; the client retransmits the segment.",
    }
}

/// The key of one datagram's fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// IPv4: the protocol; IPv6: 44 (the fragment header; RFC 8200 keys without it).
    pub proto: u8,
    /// The identification (IPv4: 16 bits; IPv6: 32 bits).
    pub ident: u32,
}

/// A fragment as [`parse`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frag {
    /// Its datagram's key.
    pub key: FragKey,
    /// Its offset in the datagram, bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// For the first fragment (offset 0): its tuple, the segment being the part of the
    /// transport header and payload it holds.
    pub first: Option<Tuple>,
}

/// Reads a fragment (the caller knows it is one: [`crate::translate::tuple`] said
/// `Fragment`) whose IP header is at `l3`. A first fragment must hold its whole TCP,
/// UDP or echo header (`Truncated` otherwise), and be TCP, UDP or ICMP echo
/// (`UnsupportedProtocol`); a later one may be of any protocol (it is looked up, not
/// parsed).
pub fn parse(data: &[u8], l3: usize) -> Result<Frag, TranslateError> {
    let ip = data.get(l3..).ok_or(TranslateError::Truncated)?;
    let (key, offset, more, proto, src, dst, l4_rel, l4_len) = match IpVersion::of(ip) {
        Some(IpVersion::V4) => {
            let p = Ipv4Packet::new_checked(ip)?;
            let (s, d) = (p.src_addr(), p.dst_addr());
            let key = FragKey {
                src: Addr::v4(s.octets()),
                dst: Addr::v4(d.octets()),
                proto: p.protocol().0,
                ident: p.ident() as u32,
            };
            let hl = p.header_len();
            (
                key,
                p.frag_offset(),
                p.more_frags(),
                p.protocol().0,
                IpAddr::V4(s),
                IpAddr::V4(d),
                hl,
                p.total_len() as usize - hl,
            )
        }
        Some(IpVersion::V6) => {
            let p = Ipv6Packet::new_checked(ip)?;
            let ul = p.upper_layer()?;
            let f = ul.fragment.ok_or(TranslateError::Malformed)?;
            let (s, d) = (p.src_addr(), p.dst_addr());
            let key = FragKey { src: Addr::v6(s.octets()), dst: Addr::v6(d.octets()), proto: 44, ident: f.ident };
            let end = wire::ipv6::HEADER_LEN + p.payload_len() as usize;
            (key, f.offset, f.more, ul.protocol.0, IpAddr::V6(s), IpAddr::V6(d), ul.offset, end - ul.offset)
        }
        None => return Err(TranslateError::Malformed),
    };
    if offset != 0 {
        return Ok(Frag { key, offset, more, first: None });
    }
    let unsupported = TranslateError::UnsupportedProtocol(proto);
    let proto = Proto::from_number_in(proto, src.is_ipv6()).ok_or(unsupported)?;
    let seg = ip.get(l4_rel..l4_rel + l4_len).ok_or(TranslateError::Truncated)?;
    let (sport, dport, tcp_flags) = match proto {
        Proto::Tcp => {
            let t = TcpPacket::new_checked(seg)?;
            (t.src_port(), t.dst_port(), t.flags())
        }
        Proto::Udp => {
            if seg.len() < wire::udp::HEADER_LEN {
                return Err(TranslateError::Truncated);
            }
            let u = UdpPacket::new_unchecked(seg);
            (u.src_port(), u.dst_port(), TcpFlags::empty())
        }
        Proto::Icmp => crate::translate::echo_ends(seg)?.ok_or(unsupported)?,
    };
    let t = Tuple { proto, src, sport, dst, dport, tcp_flags, l4: l3 + l4_rel, l4_len };
    Ok(Frag { key, offset, more, first: Some(t) })
}

/// Whether the segment `seg` of tuple `t`, in the IP packet `ip`, is the start of a
/// longer datagram: a first fragment, whose checksum can only be checked after
/// reassembly. UDP says so by its length ([`crate::translate::tuple`] refuses such a
/// segment in a whole packet, so only a first fragment's tuple has one); an echo has
/// no length, its IP header says more fragments follow.
#[inline]
pub fn partial(ip: &[u8], seg: &[u8], t: &Tuple) -> bool {
    match t.proto {
        Proto::Udp => seg.len() >= wire::udp::HEADER_LEN && UdpPacket::new_unchecked(seg).len() as usize > seg.len(),
        Proto::Icmp => match IpVersion::of(ip) {
            Some(IpVersion::V4) => Ipv4Packet::new_checked(ip).is_ok_and(|p| p.more_frags()),
            Some(IpVersion::V6) => Ipv6Packet::new_checked(ip)
                .and_then(|p| p.upper_layer())
                .is_ok_and(|ul| ul.fragment.is_some_and(|f| f.more)),
            None => false,
        },
        Proto::Tcp => false,
    }
}

/// Where a datagram's later fragments go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Translated for this connection, in this direction.
    Forward {
        /// The connection.
        conn: ConnRef,
        /// Which way.
        dir: Direction,
    },
    /// Handed to the worker that owns the connection's local port.
    Redirect {
        /// The owner.
        owner: u16,
    },
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: FragKey,
    /// 0: empty.
    expires: Millis,
    route: Route,
}

const EMPTY: Slot = Slot {
    key: FragKey { src: Addr::UNSPECIFIED, dst: Addr::UNSPECIFIED, proto: 0, ident: 0 },
    expires: 0,
    route: Route::Redirect { owner: 0 },
};

/// One worker's fragment table (see the module documentation).
#[derive(Debug)]
pub struct FragTable {
    slots: Box<[Slot]>,
    hasher: KeyHasher,
    counts: FragEvents,
}

impl FragTable {
    /// A table of [`FRAG_SLOTS`] entries, hashing with `hasher`.
    pub fn new(hasher: KeyHasher) -> FragTable {
        FragTable { slots: vec![EMPTY; FRAG_SLOTS].into_boxed_slice(), hasher, counts: FragEvents::default() }
    }

    #[inline]
    fn home(&self, k: &FragKey) -> usize {
        let ck = ConnKey::new(Proto::Udp, k.src, (k.ident >> 16) as u16, k.dst, k.ident as u16);
        let h = self.hasher.hash(&ck) ^ k.proto as u64;
        (h as usize) & (FRAG_SLOTS - 1)
    }

    /// Records where the datagram `k`'s later fragments go (a first fragment passed at
    /// `now`). Counts `frag_first_recorded`, and `frag_evicted` where its window had no
    /// free slot and the oldest entry gave way.
    pub fn record(&mut self, k: &FragKey, route: Route, now: Millis) {
        let home = self.home(k);
        let (mut free, mut oldest) = (None, home);
        for i in 0..PROBES {
            let at = (home + i) & (FRAG_SLOTS - 1);
            let s = &self.slots[at];
            if s.expires != 0 && s.key == *k {
                // A repeated first fragment (or a reused identification): the newest wins.
                free = Some(at);
                break;
            }
            if free.is_none() && s.expires <= now {
                free = Some(at);
            }
            if s.expires < self.slots[oldest].expires {
                oldest = at;
            }
        }
        let at = match free {
            Some(at) => at,
            None => {
                self.counts.inc(FragEvent::Evicted);
                oldest
            }
        };
        if self.slots[at].expires != 0 && self.slots[at].expires <= now {
            self.counts.inc(FragEvent::Expired);
        }
        self.slots[at] = Slot { key: *k, expires: now + FRAG_TIMEOUT_MS, route };
        self.counts.inc(FragEvent::FirstRecorded);
    }

    /// Where a later fragment of datagram `k` goes, if its first passed less than
    /// [`FRAG_TIMEOUT_MS`] ago; `last` (no more fragments) frees the entry.
    pub fn lookup(&mut self, k: &FragKey, last: bool, now: Millis) -> Option<Route> {
        let home = self.home(k);
        for i in 0..PROBES {
            let at = (home + i) & (FRAG_SLOTS - 1);
            let s = &mut self.slots[at];
            if s.expires == 0 || s.key != *k {
                continue;
            }
            if s.expires <= now {
                s.expires = 0;
                self.counts.inc(FragEvent::Expired);
                return None;
            }
            let r = s.route;
            if last {
                s.expires = 0;
            }
            return Some(r);
        }
        None
    }

    /// Counts an event.
    #[inline]
    pub fn count(&mut self, e: FragEvent) {
        self.counts.inc(e);
    }

    /// The counts.
    pub fn counts(&self) -> &FragEvents {
        &self.counts
    }

    /// Zeroes the counts.
    pub fn zero_counts(&mut self) {
        self.counts.zero();
    }

    /// Live entries at `now` (diagnostics; walks the table).
    pub fn live(&self, now: Millis) -> usize {
        self.slots.iter().filter(|s| s.expires > now).count()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use wire::builder::PacketBuilder;

    use super::*;

    const C: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const V: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn key(ident: u32) -> FragKey {
        FragKey { src: Addr::v4(C.octets()), dst: Addr::v4(V.octets()), proto: 17, ident }
    }

    #[test]
    fn parse_first_and_later() {
        let first = PacketBuilder::ipv4(C, V).ident(7).fragment(0, true).udp(1, 53).payload(&[0; 16]).build();
        let f = parse(&first, 0).unwrap();
        assert_eq!((f.key, f.offset, f.more), (key(7), 0, true));
        let t = f.first.unwrap();
        assert_eq!((t.sport, t.dport, t.l4, t.l4_len), (1, 53, 20, 24));
        let later =
            PacketBuilder::ipv4(C, V).ident(7).fragment(24, false).protocol(wire::IpProtocol::UDP).payload(&[1; 8]);
        let f = parse(&later.build(), 0).unwrap();
        assert_eq!((f.key, f.offset, f.more, f.first), (key(7), 24, false, None));
        let tiny = PacketBuilder::ipv4(C, V).fragment(0, true).protocol(wire::IpProtocol::TCP).payload(&[0; 8]).build();
        assert_eq!(parse(&tiny, 0), Err(TranslateError::Truncated));
        let six = PacketBuilder::ipv6("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            .ipv6_fragment(0, true, 99)
            .udp(5, 6)
            .payload(&[0; 8])
            .build();
        let f = parse(&six, 0).unwrap();
        assert_eq!((f.key.ident, f.key.proto, f.first.unwrap().dport), (99, 44, 6));
    }

    #[test]
    fn record_lookup_last_and_expiry() {
        let mut t = FragTable::new(KeyHasher::with_seed(1));
        let r = Route::Forward { conn: ConnRef::from_index(3), dir: Direction::Input };
        t.record(&key(1), r, 100);
        assert_eq!(t.lookup(&key(2), false, 101), None);
        assert_eq!(t.lookup(&key(1), false, 101), Some(r));
        assert_eq!(t.lookup(&key(1), true, 102), Some(r));
        assert_eq!(t.lookup(&key(1), false, 103), None, "freed by the last fragment");
        t.record(&key(5), r, 1000);
        assert_eq!(t.lookup(&key(5), false, 1000 + FRAG_TIMEOUT_MS), None);
        assert_eq!(t.counts().get(FragEvent::Expired), 1);
        assert_eq!(t.live(0), 0);
    }

    /// A flood of first fragments (each its own datagram) cannot keep a real datagram's
    /// entry out: where a window is full the oldest entry gives way (counted), so the
    /// real one, recorded after the flood began, still routes its later fragments; the
    /// flood's own oldest ones go first.
    #[test]
    fn a_full_window_gives_way_to_the_newest_first_fragment() {
        let mut t = FragTable::new(KeyHasher::with_seed(1));
        let r = Route::Redirect { owner: 1 };
        let real = Route::Redirect { owner: 2 };
        for i in 0..(FRAG_SLOTS as u32 * 4) {
            t.record(&key(i), r, 10 + Millis::from(i) / 1000);
        }
        t.record(&key(u32::MAX - 1), real, 30);
        for i in 0..64 {
            t.record(&key(FRAG_SLOTS as u32 * 4 + i), r, 30);
        }
        assert_eq!(t.lookup(&key(u32::MAX - 1), true, 31), Some(real), "the real datagram's later fragments pass");
        let c = t.counts();
        assert_eq!(c.get(FragEvent::FirstRecorded), FRAG_SLOTS as u64 * 4 + 65, "every first fragment recorded");
        assert!(c.get(FragEvent::Evicted) >= FRAG_SLOTS as u64 * 3 - 1, "{}", c.get(FragEvent::Evicted));
        assert_eq!(t.lookup(&key(0), false, 31), None, "the flood's first entries gave way");
        assert!(t.live(31) <= FRAG_SLOTS);
        // Time frees them all.
        t.record(&key(u32::MAX), r, 10 + FRAG_TIMEOUT_MS);
        assert_eq!(t.lookup(&key(u32::MAX), true, 11 + FRAG_TIMEOUT_MS), Some(r));
    }
}
