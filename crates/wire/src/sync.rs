//! rvs's connection synchronisation message: how a balancer tells its peers about the
//! connections it forwards, so a peer that takes over the VIP keeps them.
//!
//! IPVS's sync protocol (`ip_vs_sync.c`, version 1) carries no authentication and a
//! 32-bit address per field in its common case; DPVS never merged one. rvs's message is
//! its own: one UDP datagram holds a fixed header, up to [`MAX_RECORDS`] fixed-size
//! connection records (every address in 16 bytes, IPv4 as IPv4-mapped IPv6) and a
//! 16-byte authentication tag over everything before it (HMAC-SHA-256 cut to 16 bytes,
//! computed and checked by the sender and receiver, not here). All fields are in
//! network byte order.
//!
//! # Header ([`Message`], 20 bytes)
//!
//! ```text
//!  0       version     2 ([`VERSION`])
//!  1       sync id     the cluster's id (`--syncid`): a peer of another id ignores it
//!  2       count       records that follow (0..=MAX_RECORDS)
//!  3       flags       bit 0 hello: the sender's backup role asks its peers for their
//!                      tables (a message without records); bit 1 (hellos only) walk:
//!                      it asks for them again (it refused a peer's records before
//!                      that peer proved itself); other bits are refused
//!  4..8    sender      a random number the sending process drew at start (and again
//!                      when its backup role starts)
//!  8..12   sequence    per sender, one more for every message (replays are refused)
//!  12..14  workers     the sender's worker count (connections live on the worker that
//!                      owns their local port: peers must agree on it)
//!  14..16  reserved    0 (refused otherwise)
//!  16..20  echo        a sender id the sender heard (0: none yet): a receiver takes
//!                      records only from a sender that has echoed its own current id,
//!                      so a capture of messages sent before it drew that id (an
//!                      earlier process's) installs nothing
//! ```
//!
//! A message without records and without the hello bit is an answer: it echoes the
//! hello it answers, so that the hello's sender may take the answerer's records. Other
//! messages echo the last sender the sender heard that had proved itself so.
//!
//! # Record ([`RecordRepr`], 100 bytes)
//!
//! ```text
//!  0       op          1: the connection as it stands (created, changed or refreshed;
//!                      other values are reserved and refused)
//!  1       protocol    6 TCP, 17 UDP
//!  2       forwarding  the rvs forwarding mode (0 FullNAT, 1 NAT, 2 DR, 3 TUN)
//!  3       state       the TCP state as rvs numbers them (0 for UDP)
//!  4       flags       bit 0 TOA sent, bit 1 server's SYN-ACK seen, bit 2 SYN proxy
//!                      fields valid, bit 3 PROXY protocol fields valid, bit 4 the
//!                      client proven (it sent enough packets; what a DR, TUN or UDP
//!                      connection needs not to give way first when the table fills)
//!  5       pp length   PROXY protocol header length (0 when bit 3 is clear)
//!  6       pp bits     PROXY protocol state bits (version, header sent)
//!  7       ws client   SYN proxy: client window scale (255: none)
//!  8..12   timeout     milliseconds the connection has left
//!  12..16  sp delta    SYN proxy: server ISN − the cookie
//!  16..20  sp ts       SYN proxy: server TSval − the proxy's
//!  20..24  pp first    PROXY protocol: sequence number of the client's first data byte
//!  24      ws server   SYN proxy: server window scale (255: none)
//!  25      sp bits     SYN proxy state bits
//!  26..28  reserved    0
//!  28..30  client port
//!  30..32  virtual port
//!  32..34  local port
//!  34..36  real server port
//!  36..52  client address
//!  52..68  virtual address
//!  68..84  local address
//!  84..100 real server address
//! ```

use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::{get_u16, put_u16, Error, Result};

/// The message version this module reads and writes (1 had no echo: a peer could not
/// tell a live sender from a capture of an earlier process).
pub const VERSION: u8 = 2;
/// Length of the message header.
pub const HEADER_LEN: usize = 20;
/// Length of one connection record.
pub const RECORD_LEN: usize = 100;
/// Length of the authentication tag that ends a message.
pub const TAG_LEN: usize = 16;
/// Records in one message: what fits a 1,500-byte MTU over IPv4 and UDP
/// (1,472 − header − tag = 1,436 bytes).
pub const MAX_RECORDS: usize = 14;
/// The longest message.
pub const MAX_LEN: usize = HEADER_LEN + MAX_RECORDS * RECORD_LEN + TAG_LEN;
// A whole message fits one IPv4 datagram on a 1,500-byte MTU.
const _: () = assert!(MAX_LEN <= 1472);

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const SYNC_ID: usize = 1;
    pub const COUNT: usize = 2;
    pub const HEADER_FLAGS: usize = 3;
    pub const SENDER: Range<usize> = 4..8;
    pub const SEQUENCE: Range<usize> = 8..12;
    pub const WORKERS: usize = 12;
    pub const HEADER_RESERVED: Range<usize> = 14..16;
    pub const ECHO: Range<usize> = 16..20;

    pub const OP: usize = 0;
    pub const PROTO: usize = 1;
    pub const FWD: usize = 2;
    pub const STATE: usize = 3;
    pub const FLAGS: usize = 4;
    pub const PP_LEN: usize = 5;
    pub const PP_BITS: usize = 6;
    pub const WS_CLIENT: usize = 7;
    pub const TIMEOUT: Range<usize> = 8..12;
    pub const SP_DELTA: Range<usize> = 12..16;
    pub const SP_TS: Range<usize> = 16..20;
    pub const PP_FIRST: Range<usize> = 20..24;
    pub const WS_SERVER: usize = 24;
    pub const SP_BITS: usize = 25;
    pub const CPORT: usize = 28;
    pub const VPORT: usize = 30;
    pub const LPORT: usize = 32;
    pub const RPORT: usize = 34;
    pub const CIP: Range<usize> = 36..52;
    pub const VIP: Range<usize> = 52..68;
    pub const LIP: Range<usize> = 68..84;
    pub const RIP: Range<usize> = 84..100;
}

/// Header flag: a hello (the sender's backup role asks for its peers' tables).
pub const HEADER_HELLO: u8 = 0x01;
/// Header flag, on a hello: the sender asks for the tables again.
pub const HEADER_WALK: u8 = 0x02;
const KNOWN_HEADER_FLAGS: u8 = 0x03;

/// The record op: the connection as it stands.
pub const OP_UPDATE: u8 = 1;
/// Record flag: the TOA option went to the server.
pub const FLAG_TOA_DONE: u8 = 0x01;
/// Record flag: the server's SYN-ACK went through.
pub const FLAG_SYNACK_SEEN: u8 = 0x02;
/// Record flag: the SYN proxy fields are valid.
pub const FLAG_SYNPROXY: u8 = 0x04;
/// Record flag: the PROXY protocol fields are valid.
pub const FLAG_PROXY_PROTO: u8 = 0x08;
/// Record flag: the client proved itself (sent enough packets).
pub const FLAG_PROVEN: u8 = 0x10;
const KNOWN_FLAGS: u8 = 0x1f;

fn get_u32(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_be_bytes(a)
}

fn put_u32(b: &mut [u8], r: core::ops::Range<usize>, v: u32) {
    b[r].copy_from_slice(&v.to_be_bytes());
}

fn get_addr(b: &[u8], r: core::ops::Range<usize>) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[r]);
    let v6 = Ipv6Addr::from(a);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn put_addr(b: &mut [u8], r: core::ops::Range<usize>, a: IpAddr) {
    let v6 = match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    b[r].copy_from_slice(&v6.octets());
}

/// A view of a sync message (header, records, tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Wraps a buffer without checking it; accessors panic if it is shorter than the
    /// header (records and tag: than the count says).
    pub const fn new_unchecked(buffer: T) -> Message<T> {
        Message { buffer }
    }

    /// Wraps a buffer after [`Message::check_len`].
    pub fn new_checked(buffer: T) -> Result<Message<T>> {
        let m = Self::new_unchecked(buffer);
        m.check_len()?;
        Ok(m)
    }

    /// Checks that the buffer holds the header, the records the count announces (at
    /// most [`MAX_RECORDS`]; none in a hello or an answer) and the tag, and nothing
    /// more; that the version is [`VERSION`] (an unknown version cannot be read at
    /// all); and that no unknown header flag or reserved bit is set.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN + TAG_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VERSION] != VERSION {
            return Err(Error::Unsupported);
        }
        let n = self.count() as usize;
        let flags = b[field::HEADER_FLAGS];
        if n > MAX_RECORDS
            || flags & !KNOWN_HEADER_FLAGS != 0
            || (flags & HEADER_HELLO != 0 && n > 0)
            || (flags & HEADER_WALK != 0 && flags & HEADER_HELLO == 0)
            || b[field::HEADER_RESERVED].iter().any(|&x| x != 0)
        {
            return Err(Error::Malformed);
        }
        match b.len().cmp(&(HEADER_LEN + n * RECORD_LEN + TAG_LEN)) {
            core::cmp::Ordering::Less => Err(Error::Truncated),
            core::cmp::Ordering::Greater => Err(Error::Malformed),
            core::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// The version.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The sync id.
    pub fn sync_id(&self) -> u8 {
        self.buffer.as_ref()[field::SYNC_ID]
    }

    /// How many records follow the header.
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// Whether this is a hello (no records; the sender's backup role asks for tables).
    pub fn hello(&self) -> bool {
        self.buffer.as_ref()[field::HEADER_FLAGS] & HEADER_HELLO != 0
    }

    /// Whether this hello asks for the tables again.
    pub fn walk(&self) -> bool {
        self.buffer.as_ref()[field::HEADER_FLAGS] & HEADER_WALK != 0
    }

    /// A sender id the sender heard (0: none; see the module documentation).
    pub fn echo(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ECHO)
    }

    /// The sender's random id.
    pub fn sender(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SENDER)
    }

    /// The sender's message sequence number.
    pub fn sequence(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQUENCE)
    }

    /// The sender's worker count.
    pub fn workers(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WORKERS)
    }

    /// What the tag authenticates: header and records.
    pub fn signed(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..b.len() - TAG_LEN]
    }

    /// The authentication tag.
    pub fn tag(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[b.len() - TAG_LEN..]
    }

    /// Record `i`'s bytes (`i < count`; panics otherwise, never after
    /// [`Message::new_checked`] for `i < count`).
    pub fn record(&self, i: usize) -> &[u8] {
        let at = HEADER_LEN + i * RECORD_LEN;
        &self.buffer.as_ref()[at..at + RECORD_LEN]
    }

    /// The records, parsed; a malformed one is an error in its place.
    pub fn records(&self) -> impl Iterator<Item = Result<RecordRepr>> + '_ {
        (0..self.count() as usize).map(|i| RecordRepr::parse(self.record(i)))
    }
}

/// A message's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderRepr {
    /// The cluster's sync id.
    pub sync_id: u8,
    /// The sending process's random id.
    pub sender: u32,
    /// The sender's sequence number of this message.
    pub sequence: u32,
    /// The sender's worker count.
    pub workers: u16,
    /// A hello: the sender's backup role asks for its peers' tables (no records).
    pub hello: bool,
    /// On a hello: the tables are asked for again.
    pub walk: bool,
    /// A sender id the sender heard (0: none): what proves to that id's holder that
    /// this message was made after it drew the id (see the module documentation).
    pub echo: u32,
}

impl HeaderRepr {
    /// Writes the header for `count` records (0: a hello or an answer) into `buf`'s
    /// first [`HEADER_LEN`] bytes.
    pub fn emit(&self, count: usize, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if count > MAX_RECORDS || (self.hello && count > 0) || (self.walk && !self.hello) {
            return Err(Error::Malformed);
        }
        buf[..HEADER_LEN].fill(0);
        buf[field::VERSION] = VERSION;
        buf[field::SYNC_ID] = self.sync_id;
        buf[field::COUNT] = count as u8;
        put_u32(buf, field::SENDER, self.sender);
        put_u32(buf, field::SEQUENCE, self.sequence);
        put_u16(buf, field::WORKERS, self.workers);
        buf[field::HEADER_FLAGS] = if self.hello { HEADER_HELLO } else { 0 } | if self.walk { HEADER_WALK } else { 0 };
        put_u32(buf, field::ECHO, self.echo);
        Ok(())
    }

    /// The header of a checked message.
    pub fn parse<T: AsRef<[u8]>>(m: &Message<T>) -> HeaderRepr {
        HeaderRepr {
            sync_id: m.sync_id(),
            sender: m.sender(),
            sequence: m.sequence(),
            workers: m.workers(),
            hello: m.hello(),
            walk: m.walk(),
            echo: m.echo(),
        }
    }
}

/// The SYN proxy's sequence translation of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SynProxyFields {
    /// Server ISN − the cookie.
    pub delta: u32,
    /// Server TSval − the proxy's.
    pub ts: u32,
    /// Client window scale (255: none).
    pub ws_client: u8,
    /// Server window scale (255: none).
    pub ws_server: u8,
    /// State bits.
    pub bits: u8,
}

/// The PROXY protocol header state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProxyFields {
    /// Sequence number of the client's first data byte.
    pub first: u32,
    /// The header's length.
    pub len: u8,
    /// State bits.
    pub bits: u8,
}

/// One connection record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRepr {
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// Forwarding mode, as rvs numbers them.
    pub fwd: u8,
    /// TCP state, as rvs numbers them.
    pub state: u8,
    /// The TOA went to the server.
    pub toa_done: bool,
    /// The server's SYN-ACK went through.
    pub synack_seen: bool,
    /// The client proved itself: it sent enough packets for a connection nothing else
    /// vouches for (DR, TUN, UDP) to hold its place when the table fills.
    #[serde(default)]
    pub proven: bool,
    /// Milliseconds the connection has left.
    pub timeout_ms: u32,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Virtual address and port.
    pub virt: (IpAddr, u16),
    /// Local address and port.
    pub local: (IpAddr, u16),
    /// Real server address and port.
    pub real: (IpAddr, u16),
    /// The SYN proxy's translation, for a proxied connection.
    pub synproxy: Option<SynProxyFields>,
    /// The PROXY protocol state, for a connection of such a service.
    pub proxy: Option<ProxyFields>,
}

impl RecordRepr {
    /// Parses one record (exactly [`RECORD_LEN`] bytes): an unknown op, protocol or flag
    /// bit, or nonzero reserved bytes, is `Malformed`.
    pub fn parse(b: &[u8]) -> Result<RecordRepr> {
        if b.len() != RECORD_LEN {
            return Err(Error::Truncated);
        }
        if b[field::OP] != OP_UPDATE {
            return Err(Error::Malformed);
        }
        let proto = b[field::PROTO];
        let flags = b[field::FLAGS];
        if !matches!(proto, 6 | 17) || flags & !KNOWN_FLAGS != 0 || b[26] != 0 || b[27] != 0 {
            return Err(Error::Malformed);
        }
        let synproxy = (flags & FLAG_SYNPROXY != 0).then(|| SynProxyFields {
            delta: get_u32(b, field::SP_DELTA),
            ts: get_u32(b, field::SP_TS),
            ws_client: b[field::WS_CLIENT],
            ws_server: b[field::WS_SERVER],
            bits: b[field::SP_BITS],
        });
        let proxy = (flags & FLAG_PROXY_PROTO != 0).then(|| ProxyFields {
            first: get_u32(b, field::PP_FIRST),
            len: b[field::PP_LEN],
            bits: b[field::PP_BITS],
        });
        Ok(RecordRepr {
            proto,
            fwd: b[field::FWD],
            state: b[field::STATE],
            toa_done: flags & FLAG_TOA_DONE != 0,
            synack_seen: flags & FLAG_SYNACK_SEEN != 0,
            proven: flags & FLAG_PROVEN != 0,
            timeout_ms: get_u32(b, field::TIMEOUT),
            client: (get_addr(b, field::CIP), get_u16(b, field::CPORT)),
            virt: (get_addr(b, field::VIP), get_u16(b, field::VPORT)),
            local: (get_addr(b, field::LIP), get_u16(b, field::LPORT)),
            real: (get_addr(b, field::RIP), get_u16(b, field::RPORT)),
            synproxy,
            proxy,
        })
    }

    /// Writes the record into `b`'s first [`RECORD_LEN`] bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<()> {
        let Some(b) = b.get_mut(..RECORD_LEN) else { return Err(Error::Truncated) };
        b.fill(0);
        b[field::OP] = OP_UPDATE;
        b[field::PROTO] = self.proto;
        b[field::FWD] = self.fwd;
        b[field::STATE] = self.state;
        let mut flags = 0;
        if self.toa_done {
            flags |= FLAG_TOA_DONE;
        }
        if self.synack_seen {
            flags |= FLAG_SYNACK_SEEN;
        }
        if self.proven {
            flags |= FLAG_PROVEN;
        }
        put_u32(b, field::TIMEOUT, self.timeout_ms);
        if let Some(s) = self.synproxy {
            flags |= FLAG_SYNPROXY;
            put_u32(b, field::SP_DELTA, s.delta);
            put_u32(b, field::SP_TS, s.ts);
            b[field::WS_CLIENT] = s.ws_client;
            b[field::WS_SERVER] = s.ws_server;
            b[field::SP_BITS] = s.bits;
        }
        if let Some(p) = self.proxy {
            flags |= FLAG_PROXY_PROTO;
            put_u32(b, field::PP_FIRST, p.first);
            b[field::PP_LEN] = p.len;
            b[field::PP_BITS] = p.bits;
        }
        b[field::FLAGS] = flags;
        put_u16(b, field::CPORT, self.client.1);
        put_u16(b, field::VPORT, self.virt.1);
        put_u16(b, field::LPORT, self.local.1);
        put_u16(b, field::RPORT, self.real.1);
        put_addr(b, field::CIP, self.client.0);
        put_addr(b, field::VIP, self.virt.0);
        put_addr(b, field::LIP, self.local.0);
        put_addr(b, field::RIP, self.real.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RecordRepr {
        RecordRepr {
            proto: 6,
            fwd: 0,
            state: 3,
            toa_done: true,
            synack_seen: true,
            proven: true,
            timeout_ms: 900_000,
            client: ("198.51.100.7".parse().unwrap(), 40000),
            virt: ("192.0.2.1".parse().unwrap(), 80),
            local: ("198.19.0.10".parse().unwrap(), 1029),
            real: ("198.19.0.51".parse().unwrap(), 8080),
            synproxy: None,
            proxy: None,
        }
    }

    /// The record above, as it goes on the wire.
    #[rustfmt::skip]
    const RECORD_BYTES: [u8; RECORD_LEN] = [
        0x01, 0x06, 0x00, 0x03, 0x13, 0x00, 0x00, 0x00,
        0x00, 0x0d, 0xbb, 0xa0,
        0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
        0x00, 0x00, 0x00, 0x00,
        0x9c, 0x40, 0x00, 0x50, 0x04, 0x05, 0x1f, 0x90,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 19, 0, 10,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 19, 0, 51,
    ];

    #[test]
    fn record_bytes_both_ways() {
        let mut b = [0xaau8; RECORD_LEN];
        record().emit(&mut b).unwrap();
        assert_eq!(b, RECORD_BYTES);
        assert_eq!(RecordRepr::parse(&RECORD_BYTES).unwrap(), record());
    }

    #[test]
    fn ipv6_and_optional_fields_round_trip() {
        let mut r = record();
        r.client = ("2001:db8::7".parse().unwrap(), 1);
        r.virt = ("2001:db8:ffff::1".parse().unwrap(), 443);
        r.synproxy = Some(SynProxyFields { delta: 0xdead_beef, ts: 7, ws_client: 7, ws_server: 255, bits: 3 });
        r.proxy = Some(ProxyFields { first: 0x0102_0304, len: 28, bits: 1 });
        let mut b = [0u8; RECORD_LEN];
        r.emit(&mut b).unwrap();
        assert_eq!(b[field::FLAGS], FLAG_TOA_DONE | FLAG_SYNACK_SEEN | FLAG_PROVEN | FLAG_SYNPROXY | FLAG_PROXY_PROTO);
        assert_eq!(RecordRepr::parse(&b).unwrap(), r);
    }

    #[test]
    fn record_refusals() {
        let bad = |f: fn(&mut [u8; RECORD_LEN])| {
            let mut b = RECORD_BYTES;
            f(&mut b);
            RecordRepr::parse(&b)
        };
        assert_eq!(bad(|b| b[field::OP] = 0), Err(Error::Malformed));
        assert_eq!(bad(|b| b[field::OP] = 2), Err(Error::Malformed));
        assert_eq!(bad(|b| b[field::PROTO] = 1), Err(Error::Malformed));
        assert_eq!(bad(|b| b[field::FLAGS] = 0x20), Err(Error::Malformed));
        assert_eq!(bad(|b| b[26] = 1), Err(Error::Malformed));
        assert_eq!(RecordRepr::parse(&RECORD_BYTES[..99]), Err(Error::Truncated));
        assert_eq!(record().emit(&mut [0u8; 99]), Err(Error::Truncated));
    }

    /// The header of [`message`]'s messages.
    const HEADER: HeaderRepr = HeaderRepr {
        sync_id: 9,
        sender: 0x0a0b_0c0d,
        sequence: 5,
        workers: 2,
        hello: false,
        walk: false,
        echo: 0x1122_3344,
    };

    fn message(n: usize) -> Vec<u8> {
        let mut m = vec![0u8; HEADER_LEN + n * RECORD_LEN + TAG_LEN];
        HEADER.emit(n, &mut m).unwrap();
        for i in 0..n {
            let mut r = record();
            r.client.1 = i as u16;
            r.emit(&mut m[HEADER_LEN + i * RECORD_LEN..]).unwrap();
        }
        m
    }

    #[test]
    fn message_header_and_records() {
        let m = message(2);
        assert_eq!(
            &m[..HEADER_LEN],
            &[2, 9, 2, 0, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 5, 0, 2, 0, 0, 0x11, 0x22, 0x33, 0x44]
        );
        let v = Message::new_checked(&m[..]).unwrap();
        assert_eq!(HeaderRepr::parse(&v), HEADER);
        let ports: Vec<u16> = v.records().map(|r| r.unwrap().client.1).collect();
        assert_eq!(ports, [0, 1]);
        assert_eq!(v.signed().len(), HEADER_LEN + 2 * RECORD_LEN);
        assert_eq!(v.tag().len(), TAG_LEN);
    }

    #[test]
    fn message_refusals() {
        let m = message(2);
        assert_eq!(Message::new_checked(&m[..m.len() - 1]).unwrap_err(), Error::Truncated);
        let mut longer = m.clone();
        longer.push(0);
        assert_eq!(Message::new_checked(&longer[..]).unwrap_err(), Error::Malformed);
        let mut v1 = m.clone();
        v1[0] = 1;
        assert_eq!(Message::new_checked(&v1[..]).unwrap_err(), Error::Unsupported, "version 1 had no echo");
        for (at, byte) in [(3, 0x04), (3, 0x01), (14, 1), (15, 0x80)] {
            let mut odd = m.clone();
            odd[at] = byte;
            assert_eq!(Message::new_checked(&odd[..]).unwrap_err(), Error::Malformed, "byte {at} = {byte:#x}");
        }
        let mut none = m.clone();
        none[2] = 0;
        assert_eq!(Message::new_checked(&none[..]).unwrap_err(), Error::Malformed, "longer than a hello");
        let mut hello = message(0);
        assert_eq!(hello.len(), HEADER_LEN + TAG_LEN);
        assert_eq!(Message::new_checked(&hello[..]).map(|m| m.hello()), Ok(false), "an answer");
        hello[3] = HEADER_WALK;
        assert_eq!(Message::new_checked(&hello[..]).unwrap_err(), Error::Malformed, "walk on a hello only");
        hello[3] = HEADER_HELLO;
        assert_eq!(Message::new_checked(&hello[..]).map(|m| (m.hello(), m.walk(), m.count())), Ok((true, false, 0)));
        hello[3] = HEADER_HELLO | HEADER_WALK;
        assert_eq!(Message::new_checked(&hello[..]).map(|m| (m.hello(), m.walk())), Ok((true, true)), "asks again");
        let mut many = m;
        many[2] = MAX_RECORDS as u8 + 1;
        assert_eq!(Message::new_checked(&many[..]).unwrap_err(), Error::Malformed);
        assert_eq!(Message::new_checked(&[1u8; 20][..]).unwrap_err(), Error::Truncated);
        let h = HeaderRepr { sync_id: 1, sender: 1, sequence: 1, workers: 1, hello: false, walk: false, echo: 0 };
        assert_eq!(h.emit(MAX_RECORDS + 1, &mut [0; HEADER_LEN]), Err(Error::Malformed));
        let hello = HeaderRepr { hello: true, ..h };
        assert_eq!(hello.emit(1, &mut [0; HEADER_LEN]), Err(Error::Malformed), "a hello has no records");
        let walk = HeaderRepr { walk: true, ..h };
        assert_eq!(walk.emit(0, &mut [0; HEADER_LEN]), Err(Error::Malformed), "walk on a hello only");
        let mut b = [0; HEADER_LEN];
        HeaderRepr { walk: true, ..hello }.emit(0, &mut b).unwrap();
        assert_eq!(b[3], HEADER_HELLO | HEADER_WALK);
    }
}
