//! Connections: one worker's table of FullNAT connections.
//!
//! A connection joins a client's flow `(proto, CIP:cport → VIP:vport)` to the flow the
//! balancer opened towards a real server `(proto, LIP:lport → RIP:rport)`. The table
//! ([`ConnTable`]) finds it in O(1) from either side's packets, in a pool preallocated at
//! start-up (see [`table`] for the layout and its cost per connection).
//!
//! The ten-tuple of a connection is its two four-tuples, the protocol and the owning
//! worker, which is constant per table (each worker owns its table outright).

pub mod addrs;
pub mod fifo;
pub mod key;
pub mod reuse;
pub mod slots;
pub mod table;

pub use addrs::Addrs;
pub use fifo::{ConnLists, List};
pub use key::{Addr, ConnKey, KeyHasher};
pub use slots::SlotArray;
pub use table::{ConnError, ConnRef, ConnTable, Hit, NewConn, Staged, BUCKETS_PER_CONN, BURST};

use crate::tcp_state::{Direction, TcpState};
use crate::types::{FwdMode, Millis, Proto};

/// Per-connection flag bits (see [`ConnFlags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnFlags(pub u8);

impl ConnFlags {
    /// The slot holds a live connection.
    pub const LIVE: u8 = 0x01;
    /// Counted as active (ESTABLISHED) in the scheduler and the counters.
    pub const ACTIVE: u8 = 0x02;
    /// The real server's SYN-ACK went through: the next client ACK completes the
    /// handshake (and carries the TOA).
    pub const SYNACK_SEEN: u8 = 0x04;
    /// The TOA option was inserted (once per connection).
    pub const TOA_DONE: u8 = 0x08;
    /// Opened by the SYN proxy: its handshake and sequence numbers are translated
    /// (state in [`crate::synproxy`]).
    pub const SYNPROXY: u8 = 0x10;
    /// Counted in the worker's per-source table ([`crate::edge`]): released when freed.
    pub const SRC_COUNTED: u8 = 0x20;
    /// Of a service with the PROXY protocol: the header goes before the client's first
    /// data and sequence numbers are shifted (state in [`crate::proxy_proto`]).
    pub const PROXY_PROTO: u8 = 0x40;
    /// A UDP connection whose next datagrams to the server still carry the UOA option
    /// (see [`crate::uoa`]; how many: the engine's per-slot count).
    pub const UOA: u8 = 0x80;

    /// Whether every bit of `bits` is set.
    #[inline]
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// Sets `bits`.
    #[inline]
    pub fn set(&mut self, bits: u8) {
        self.0 |= bits;
    }

    /// Clears `bits`.
    #[inline]
    pub fn clear(&mut self, bits: u8) {
        self.0 &= !bits;
    }
}

/// One FullNAT connection, as stored in the pool: one 64-byte cache line, aligned to
/// it, so a packet's lookup and rewrite touch one line of the pool. The client's
/// address is held in full; the VIP, LIP and RIP, which many connections share, are
/// slots of the table's [`Addrs`] (read them through [`ConnView`], what
/// [`ConnTable::get`] gives). The key fields are read-only once inserted (they index
/// the table); the worker updates state, expiry and flags; the dataplane may only set
/// the next-hop cache slots ([`Conn::hop`]).
///
/// Layout (`repr(C)`, offsets in bytes): CIP 0, cport 16, vport 18, lport 20, rport 22,
/// VIP, LIP and RIP slots 24, 26, 28, next hop 30, an unproven connection's client
/// packets and the time of the last one 34, chain links 36, expiry 44, RsId 48,
/// inner host's acknowledgment 52, outer host's next sequence number 56, proto 60, state 61,
/// flags 62, mode 63.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Conn {
    cip: Addr,
    cport: u16,
    vport: u16,
    lport: u16,
    rport: u16,
    vip: u16,
    lip: u16,
    rip: u16,
    /// The dataplane's next-hop cache slots (route + neighbour), one per [`Direction`]
    /// (see [`Conn::hop`]); opaque here, [`NO_HOP`] until the dataplane fills them.
    hops: [u16; 2],
    /// While it is unproven: its client's packets so far (the low 4 bits, saturating),
    /// and when it last sent one, in [`CLIENT_TICK_MS`] ticks, wrapping (the high 12
    /// bits; see `engine::tables`).
    client: u16,
    /// Chain links: `next[0]` in the inbound key's bucket chain, `next[1]` in the
    /// outbound key's (unused while that key waits for `ConnTable::settle`); `next[0]`
    /// doubles as the free-list link of an empty slot.
    next: [u32; 2],
    /// Low 32 bits of the expiry time (see [`Conn::expires`]).
    expires: u32,
    /// The real server's stable id (`RsId`).
    pub(crate) rs: u32,
    /// The inner host's highest acknowledgment number, in the outer host's sequence
    /// space (0: none seen yet; see [`Conn::closing_matches`]).
    inner_ack: u32,
    /// The sequence number after the outer host's last in-stream segment (0: none yet;
    /// see [`Conn::saw_outer_segment`]).
    outer_next: u32,
    proto: Proto,
    /// TCP state (stays `None` for UDP).
    pub(crate) state: TcpState,
    /// Flag bits.
    pub(crate) flags: ConnFlags,
    /// Its [`FwdMode`], as a byte, with [`SYNCED`] and [`UNPROVEN`] (the flag bits are
    /// all taken).
    fwd: u8,
}

/// How far from the end of the client's stream seen here (either side, in sequence
/// numbers) a client segment still moves that end, and its RST or FIN still moves the
/// connection's state, while no acknowledgment passes (DR, TUN; see
/// [`Conn::closing_matches`]): 1 MiB, a receive window's worth of data lost before rvs
/// or in flight to the server.
pub const BLIND_WINDOW: u32 = 1 << 20;

/// The LIP slot of a connection whose local address is its client's own (NAT, DR,
/// TUN: `lip:lport = cip:cport`): slot 0, which [`Addrs`] never gives, so that those
/// clients take no shared-address slot (there are at most 65,535).
pub(crate) const LIP_IS_CIP: u16 = 0;

/// A [`Conn::hop`] slot the dataplane has not filled (or has forgotten).
pub const NO_HOP: u16 = u16::MAX;

/// The unit of an unproven connection's time of its client's last packet (12 bits of
/// them wrap every 512 s).
pub const CLIENT_TICK_MS: Millis = 125;

/// The bits of [`Conn`]'s client word below its tick: the packet count.
const CLIENT_COUNT_BITS: u32 = 4;
/// Those bits' mask.
const CLIENT_COUNT_MASK: u16 = (1 << CLIENT_COUNT_BITS) - 1;

/// `now` in [`CLIENT_TICK_MS`] ticks, wrapping at 12 bits, shifted into place.
#[inline]
fn client_tick(now: Millis) -> u16 {
    ((now / CLIENT_TICK_MS) as u16) << CLIENT_COUNT_BITS
}

/// The bit of [`Conn`]'s forwarding-mode byte that marks a synced connection.
const SYNCED: u8 = 0x80;

/// The bit of [`Conn`]'s forwarding-mode byte that marks a connection nothing has
/// shown to have a real client yet (see `engine::tables`, "Unproven connections").
const UNPROVEN: u8 = 0x40;

/// The largest distance between now and an expiry a connection can hold (2^31 − 1 ms,
/// about 24.8 days): expiries are stored as 32-bit wrapping milliseconds.
pub const MAX_EXPIRY_MS: Millis = (1 << 31) - 1;

impl Conn {
    const EMPTY: Conn = Conn {
        cip: Addr::UNSPECIFIED,
        cport: 0,
        vport: 0,
        lport: 0,
        rport: 0,
        vip: 0,
        lip: 0,
        rip: 0,
        hops: [NO_HOP; 2],
        next: [table::NIL; 2],
        expires: 0,
        rs: 0,
        inner_ack: 0,
        outer_next: 0,
        proto: Proto::Tcp,
        state: TcpState::None,
        flags: ConnFlags(0),
        fwd: 0,
        client: 0,
    };

    /// When the connection expires, given the current time `now` (the stored 32-bit
    /// value is taken as the nearest instant to `now`, within ±[`MAX_EXPIRY_MS`]).
    #[inline]
    pub fn expires(&self, now: Millis) -> Millis {
        let d = self.expires.wrapping_sub(now as u32) as i32;
        now.wrapping_add_signed(d as i64)
    }

    /// Sets the expiry (at most [`MAX_EXPIRY_MS`] from now; timeouts are capped so).
    #[inline]
    pub fn set_expires(&mut self, at: Millis) {
        self.expires = at as u32;
    }

    /// The dataplane's next-hop cache slot for this connection's packets going `dir`
    /// ([`NO_HOP`]: none). The route and neighbour of a connection's packets depend only
    /// on the connection and the direction (their destination is its RIP going in, its
    /// CIP going out), so the dataplane resolves them once and keeps the slot here.
    #[inline]
    pub fn hop(&self, dir: Direction) -> u16 {
        self.hops[dir as usize]
    }

    /// Stores the next-hop cache slot for `dir` (see [`Conn::hop`]).
    #[inline]
    pub fn set_hop(&mut self, dir: Direction, hop: u16) {
        self.hops[dir as usize] = hop;
    }

    /// The real server's stable id (`RsId`).
    #[inline]
    pub fn rs(&self) -> u32 {
        self.rs
    }
    /// The highest acknowledgment number the inner host sent (the real server; on a
    /// SNAT connection, the host behind rvs), in the outer host's sequence space (0:
    /// none seen yet).
    #[inline]
    pub fn inner_ack(&self) -> u32 {
        self.inner_ack
    }
    /// The sequence number after the outer host's last in-stream segment seen here (the
    /// client's; on a SNAT connection, the host outside's; 0: none yet).
    #[inline]
    pub fn outer_next(&self) -> u32 {
        self.outer_next
    }
    /// Records the acknowledgment number of an inner host's segment (after its
    /// translation to the outer host's sequence space): the highest one seen, so a
    /// segment overtaken on the way does not move it back; a SYN-ACK's (`syn`), which
    /// starts a stream, whatever it is.
    #[inline]
    pub(crate) fn saw_inner_ack(&mut self, ack: u32, syn: bool) {
        if syn || self.inner_ack == 0 || ack.wrapping_sub(self.inner_ack) as i32 > 0 {
            self.inner_ack = ack;
        }
    }
    /// Records an outer host's segment starting at `seq` and taking `len` sequence
    /// numbers (its payload, plus one for a SYN or a FIN), before any translation. It
    /// moves [`Conn::outer_next`] only if it continues that host's stream: it starts
    /// where the last in-stream one ended, or where the inner host's acknowledgment
    /// stands (or it is the first). A forged segment, which must guess one of those
    /// numbers, moves nothing, so it cannot set up the number a forged RST would carry.
    /// Never backwards (a retransmission from the inner host's acknowledgment leaves
    /// it). A SYN (`syn`) on a connection being opened or closed (a new connection, or a
    /// client that reuses its port once its side ended: TIME_WAIT, CLOSE) starts a new
    /// stream: it sets it afresh, and the inner host's SYN-ACK the acknowledgment. On an
    /// ESTABLISHED or half-closed (FIN_WAIT, CLOSE_WAIT) connection a SYN changes
    /// nothing (as its state), so a forged one sets nothing up.
    /// While no acknowledgment has passed (DR and TUN always: their servers answer the
    /// clients directly), a segment starting within [`BLIND_WINDOW`] of it moves it
    /// forward too, so a segment lost before rvs (and retransmitted to the server only)
    /// leaves no gap the rest of the stream cannot pass.
    #[inline]
    pub(crate) fn saw_outer_segment(&mut self, seq: u32, len: u32, syn: bool) {
        let next = seq.wrapping_add(len);
        let restarts = syn && !matches!(self.state, TcpState::Established | TcpState::FinWait | TcpState::CloseWait);
        let ahead = next.wrapping_sub(self.outer_next) as i32 > 0;
        if restarts
            || self.outer_next == 0
            || seq == self.outer_next
            || (seq == self.inner_ack && ahead)
            || (ahead && self.inner_ack == 0 && self.near_outer_next(seq))
        {
            self.outer_next = next;
        }
    }
    /// Whether `seq` stands within [`BLIND_WINDOW`] of [`Conn::outer_next`], either side.
    #[inline]
    fn near_outer_next(&self, seq: u32) -> bool {
        seq.wrapping_sub(self.outer_next).wrapping_add(BLIND_WINDOW) <= 2 * BLIND_WINDOW
    }
    /// Whether an outer host's RST or FIN (a client's; on a SNAT connection, the host
    /// outside's) with sequence number `seq` moves the connection's state here: it
    /// carries exactly the number the inner host acknowledged last (the one a host
    /// following RFC 5961 resets on; another one in its window earns a challenge ACK,
    /// whose answer does match) or the one right after the outer host's last in-stream
    /// segment (an RST or FIN sent before its data was acknowledged). So a forged RST or
    /// FIN, which must guess one of two numbers among 2^32, is forwarded for the inner
    /// host to judge but leaves the connection alone, where it used to move it to CLOSE
    /// (gone 10 s later) or CLOSE_WAIT (60 s).
    ///
    /// Before any acknowledgment has passed (DR and TUN connections always, their
    /// servers answering the clients directly; a synced connection until its server's
    /// first segment), the RST or FIN must stand within [`BLIND_WINDOW`] of
    /// [`Conn::outer_next`] (a client's RST answering a server segment carries the
    /// number the server acknowledged, which may be behind what passed here): a blind
    /// forger stepping through the sequence space needs up to 2^32 / (2 ×
    /// `BLIND_WINDOW`) = 2,048 packets (the odds of data injected into the server's own
    /// receive window), where one RST used to do. Before even a segment of the outer host's has passed (a synced connection
    /// just taken over), any RST or FIN matches, as before.
    #[inline]
    pub fn closing_matches(&self, seq: u32) -> bool {
        match self.inner_ack {
            0 => self.outer_next == 0 || self.near_outer_next(seq),
            ack => seq == ack || seq == self.outer_next,
        }
    }
    /// TCP state (`None` for UDP).
    #[inline]
    pub fn state(&self) -> TcpState {
        self.state
    }
    /// Flag bits.
    #[inline]
    pub fn flags(&self) -> ConnFlags {
        self.flags
    }
    /// Transport protocol.
    #[inline]
    pub fn proto(&self) -> Proto {
        self.proto
    }
    /// How it is forwarded.
    #[inline]
    pub fn fwd(&self) -> FwdMode {
        FwdMode::from_u8(self.fwd & !(SYNCED | UNPROVEN))
    }
    /// Installed from a peer's sync message (see [`crate::engine::sync`]), not opened
    /// here.
    #[inline]
    pub fn synced(&self) -> bool {
        self.fwd & SYNCED != 0
    }
    /// Marks it as installed from a peer.
    #[inline]
    pub(crate) fn set_synced(&mut self) {
        self.fwd |= SYNCED;
    }
    /// Makes it this box's own (it forwarded a packet of it).
    #[inline]
    pub(crate) fn clear_synced(&mut self) {
        self.fwd &= !SYNCED;
    }
    /// Its local address, the client's own for [`LIP_IS_CIP`].
    #[inline(always)]
    pub(crate) fn lip_or_cip(&self, addrs: &Addrs) -> Addr {
        match self.lip {
            LIP_IS_CIP => self.cip,
            slot => addrs.get(slot),
        }
    }
    /// On the engine's list of unproven connections (evicted first when the pool is
    /// full): opened by a packet whose source nothing has vouched for yet.
    #[inline]
    pub fn unproven(&self) -> bool {
        self.fwd & UNPROVEN != 0
    }
    /// Marks it unproven at `now` (no client packet counted yet, the client taken as
    /// heard from now).
    #[inline]
    pub(crate) fn set_unproven(&mut self, now: Millis) {
        (self.fwd, self.client) = (self.fwd | UNPROVEN, client_tick(now));
    }
    /// Marks it proven.
    #[inline]
    pub(crate) fn set_proven(&mut self) {
        self.fwd &= !UNPROVEN;
    }
    /// Counts a client packet of an unproven connection, at `now`: its client's packets
    /// so far.
    #[inline]
    pub(crate) fn count_client_packet(&mut self, now: Millis) -> u8 {
        let n = (self.client & CLIENT_COUNT_MASK).saturating_add(1).min(CLIENT_COUNT_MASK);
        self.client = client_tick(now) | n;
        n as u8
    }
    /// Whether an unproven connection's client has sent nothing for at least `ms`
    /// (up to [`CLIENT_TICK_MS`] × 4095; a longer silence may look recent again, the
    /// ticks wrapping every 512 s).
    #[inline]
    pub(crate) fn client_silent(&self, now: Millis, ms: Millis) -> bool {
        let last = self.client & !CLIENT_COUNT_MASK;
        let ticks = client_tick(now).wrapping_sub(last) >> CLIENT_COUNT_BITS;
        Millis::from(ticks) > ms.div_ceil(CLIENT_TICK_MS)
    }
    /// Client address.
    #[inline]
    pub fn cip(&self) -> Addr {
        self.cip
    }
    /// Client port.
    #[inline]
    pub fn cport(&self) -> u16 {
        self.cport
    }
    /// Virtual port.
    #[inline]
    pub fn vport(&self) -> u16 {
        self.vport
    }
    /// Local port.
    #[inline]
    pub fn lport(&self) -> u16 {
        self.lport
    }
    /// Real server port.
    #[inline]
    pub fn rport(&self) -> u16 {
        self.rport
    }
    /// Whether the slot holds a live connection.
    #[inline]
    pub fn is_live(&self) -> bool {
        self.flags.has(ConnFlags::LIVE)
    }
}

/// A connection with its shared addresses at hand: what [`ConnTable::get`] and
/// [`ConnTable::iter`] give. It reads as the [`Conn`] it wraps, plus its VIP, LIP, RIP
/// and keys.
#[derive(Clone, Copy)]
pub struct ConnView<'a> {
    conn: &'a Conn,
    addrs: &'a Addrs,
}

impl<'a> ConnView<'a> {
    #[inline]
    pub(crate) fn new(conn: &'a Conn, addrs: &'a Addrs) -> ConnView<'a> {
        ConnView { conn, addrs }
    }
    /// Virtual (service) address.
    #[inline]
    pub fn vip(&self) -> Addr {
        self.addrs.get(self.conn.vip)
    }
    /// Local address the balancer uses towards the real server (the client's own under
    /// NAT, DR and TUN).
    #[inline]
    pub fn lip(&self) -> Addr {
        self.conn.lip_or_cip(self.addrs)
    }
    /// Real server address.
    #[inline]
    pub fn rip(&self) -> Addr {
        self.addrs.get(self.conn.rip)
    }
    /// The key client packets arrive with: `(proto, CIP:cport → VIP:vport)`.
    #[inline]
    pub fn inbound_key(&self) -> ConnKey {
        let c = self.conn;
        ConnKey::new(c.proto, c.cip, c.cport, self.vip(), c.vport)
    }
    /// The key real-server replies arrive with: `(proto, RIP:rport → LIP:lport)`.
    #[inline]
    pub fn outbound_key(&self) -> ConnKey {
        let c = self.conn;
        ConnKey::new(c.proto, self.rip(), c.rport, self.lip(), c.lport)
    }
}

impl std::fmt::Debug for ConnView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnView")
            .field("conn", self.conn)
            .field("vip", &self.vip())
            .field("lip", &self.lip())
            .field("rip", &self.rip())
            .finish()
    }
}

impl std::ops::Deref for ConnView<'_> {
    type Target = Conn;
    #[inline]
    fn deref(&self) -> &Conn {
        self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_is_compact() {
        assert_eq!(std::mem::size_of::<Conn>(), 64);
        assert_eq!(std::mem::align_of::<Conn>(), 64);
    }

    #[test]
    fn a_clients_silence_is_measured_in_ticks_that_wrap() {
        let mut c = Conn::EMPTY;
        c.set_unproven(10_000);
        assert!(!c.client_silent(10_000 + 1000, 1000), "a second, to the tick, is not more than a second");
        assert!(c.client_silent(10_000 + 1125, 1000));
        assert_eq!(c.count_client_packet(12_000), 1);
        assert!(!c.client_silent(12_500, 1000) && c.client_silent(14_000, 1000));
        assert!(c.client_silent(12_000 + 511_000, 1000));
        // 4096 ticks later the last packet looks recent again (a second chance only).
        assert!(!c.client_silent(12_000 + 512_000, 1000));
        for n in 2..=15 {
            assert_eq!(c.count_client_packet(13_000), n);
        }
        assert_eq!(c.count_client_packet(13_000), 15, "saturates, the time kept apart");
        assert!(!c.client_silent(13_000, 1000) && !c.client_silent(13_500, 1000) && c.client_silent(14_250, 1000));
    }

    #[test]
    fn expiry_survives_the_32_bit_wrap() {
        let mut c = Conn::EMPTY;
        for now in [0u64, 1 << 32, (1 << 32) - 5, 10 * (1 << 32) + 7] {
            c.set_expires(now + 900_000);
            assert_eq!(c.expires(now), now + 900_000);
            assert_eq!(c.expires(now + 899_999), now + 900_000);
            assert_eq!(c.expires(now + 900_001), now + 900_000);
        }
    }
}
