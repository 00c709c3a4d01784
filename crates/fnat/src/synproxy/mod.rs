//! The SYN proxy: a VIP answers a client's SYN itself, with a SYN cookie, and only
//! when the client's ACK proves the cookie does the balancer create a connection and
//! open one to a real server. A spoofed-source SYN flood then costs one SYN-ACK per
//! SYN and no state: no connection entry, no local port, nothing reaches a real
//! server.
//!
//! # A proxied connection's handshake
//! 1. Client SYN (no connection): answered in place with a SYN-ACK whose sequence
//!    number is the cookie ([`cookie`]: the client's MSS rounded to a table index,
//!    its window scale and SACK permission are in it). The SYN-ACK offers the
//!    configured MSS, SACK if the client offered it, the configured window scale if
//!    the client sent one, and timestamps if the client sent them (value: the
//!    proxy's millisecond clock). ECN is never offered. No state is kept.
//! 2. Client ACK (no connection): the cookie (ack − 1) is checked; if valid, a
//!    connection is created (scheduler, local port) and the ACK is rewritten in place
//!    into the SYN to the real server: the client's ISN, the MSS, window scale and
//!    SACK from the cookie, the client's timestamp. An invalid ACK is dropped without
//!    a reply (`synproxy_bad_ack` while the proxy is on, `no_conn` otherwise).
//! 3. Real server's SYN-ACK: the sequence offset (server ISN − cookie) and, with
//!    timestamps, the timestamp offset are set; the SYN-ACK is rewritten in place into
//!    the ACK to the server, carrying TOA (the Linux TOA module reads it from the
//!    segment that completes the server's handshake). If the client sent data before
//!    the server answered, the first such segment was held (copied into a slot of a
//!    fixed ring, `Stash`) and is sent instead of the bare ACK: it completes the
//!    server's handshake as well, with the TOA in it. Later early segments are
//!    dropped (`synproxy_early`; the client retransmits).
//! 4. From then on every packet is translated: server → client sequence numbers
//!    −offset, timestamp values −offset; client → server acknowledgments and SACK
//!    blocks +offset, timestamp echoes +offset. Windows are converted when the
//!    server's window scale differs from the one the client was told. An ICMP error
//!    travelling to the server has the sequence number of the segment it quotes shifted
//!    back into the server's numbering (the server checks it: path MTU discovery).
//!
//! # Guards
//! - Only a SYN is ever answered, with one SYN-ACK of about its size: no
//!   amplification, and no reply at all to ACKs without a valid cookie.
//! - A real server's RST before its SYN-ACK (port closed) becomes an RST to the client
//!   (at the sequence number the client expects) and closes the connection.
//! - A client SYN retransmitted while the connection waits for the server is answered
//!   with the same SYN-ACK; a server SYN-ACK retransmitted after the ACK is answered
//!   with the ACK again, at most three times.
//! - The SYN to the server is sent once; when the client retransmits before the server
//!   answered (its segment from its first byte again, or a repeated ACK), the SYN is
//!   sent again in its place, at most three times (the only retransmission timer here
//!   is the client's); a later segment of the same flight is dropped (the client sends
//!   it again).
//! - Ack storm (as DPVS): a run of identical pure ACKs from the server (same sequence,
//!   acknowledgment and first SACK edge) beyond `ack_storm_thresh` is dropped.
//!
//! # Modes
//! Each service has a mode ([`SynProxyMode`], unset = the global default, itself
//! `auto` unless configured): `on`, `off`, or `auto`: on for a worker while its SYN
//! rate (per second, measured over `interval_ms`) or its SYN_RECV population is at or
//! above the `*_on` threshold, off again once both have stayed below the `*_off`
//! thresholds for `hold_ms` (one quiet interval is not the end of a flood). Cookies are checked for every
//! service not `off`, so an ACK answering a SYN-ACK sent just before auto mode turned
//! off still opens its connection.
//!
//! # Cost
//! Per worker: one `Side` record (24 bytes) per connection slot, read only for
//! proxied connections, allocated when a service whose mode is not `off` is first
//! configured (a box whose services all have it `off` pays none), and the stash ring
//! (`stash_slots` × 2 KiB), allocated at start. Per packet of a proxied connection: a flag test, a few adds and an option
//! walk; no allocation.

pub mod cookie;
pub mod segment;

use serde::{Deserialize, Serialize};

use crate::types::Millis;

/// Whether a service's SYNs are answered by the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynProxyMode {
    /// Never (SYNs go to the real servers).
    Off,
    /// Always.
    On,
    /// While the worker sees a SYN flood (see the module documentation).
    #[default]
    Auto,
}

impl SynProxyMode {
    /// The name used in configuration files and listings.
    pub fn name(self) -> &'static str {
        match self {
            SynProxyMode::Off => "off",
            SynProxyMode::On => "on",
            SynProxyMode::Auto => "auto",
        }
    }

    /// The mode with this name (`on`/`off`/`auto`, and ipvsadm's `enable`/`disable`).
    pub fn from_name(s: &str) -> Option<SynProxyMode> {
        match s {
            "on" | "enable" => Some(SynProxyMode::On),
            "off" | "disable" => Some(SynProxyMode::Off),
            "auto" => Some(SynProxyMode::Auto),
            _ => None,
        }
    }
}

impl std::fmt::Display for SynProxyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn d_rate_on() -> u32 {
    1_000
}
fn d_rate_off() -> u32 {
    500
}
fn d_recv_on() -> u32 {
    1_000
}
fn d_recv_off() -> u32 {
    500
}
fn d_interval() -> u64 {
    100
}
fn d_hold() -> u64 {
    10_000
}
fn d_mss4() -> u16 {
    1460
}
fn d_mss6() -> u16 {
    1440
}
fn d_wscale() -> u8 {
    7
}
fn d_window() -> u16 {
    65535
}
fn d_true() -> bool {
    true
}
fn d_stash() -> u32 {
    1024
}
fn d_storm() -> u8 {
    10
}

/// The SYN proxy's global settings (rvsd's `[synproxy]` section; every worker gets the
/// same). Thresholds are per worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynProxyConfig {
    /// The mode of services that do not set their own.
    #[serde(default)]
    pub mode: SynProxyMode,
    /// Auto mode turns on at this many SYNs per second (per worker)...
    #[serde(default = "d_rate_on")]
    pub syn_rate_on: u32,
    /// ...and may turn off once the rate is below this.
    #[serde(default = "d_rate_off")]
    pub syn_rate_off: u32,
    /// Auto mode turns on at this many connections in SYN_RECV (per worker)...
    #[serde(default = "d_recv_on")]
    pub syn_recv_on: u32,
    /// ...and may turn off once below this.
    #[serde(default = "d_recv_off")]
    pub syn_recv_off: u32,
    /// How long the SYN rate is measured over, in milliseconds (short, so that at most
    /// `syn_rate_on × interval_ms / 1000` SYNs of a flood's start get through before auto
    /// mode turns on).
    #[serde(default = "d_interval")]
    pub interval_ms: u64,
    /// Auto mode turns off only after this long below both off thresholds (and never
    /// sooner than this after turning on), in milliseconds.
    #[serde(default = "d_hold")]
    pub hold_ms: u64,
    /// The MSS the SYN-ACK offers to IPv4 clients.
    #[serde(default = "d_mss4")]
    pub mss_v4: u16,
    /// The MSS the SYN-ACK offers to IPv6 clients.
    #[serde(default = "d_mss6")]
    pub mss_v6: u16,
    /// The window scale the SYN-ACK offers (0..=14) to clients that send one.
    #[serde(default = "d_wscale")]
    pub wscale: u8,
    /// The window field of the SYN-ACK.
    #[serde(default = "d_window")]
    pub window: u16,
    /// Answer timestamps when the client offers them (off: the SYN-ACK carries none,
    /// so the connection has no timestamps).
    #[serde(default = "d_true")]
    pub timestamps: bool,
    /// Client segments that arrive before the server's SYN-ACK that can be held (one
    /// per connection, 2 KiB each), per worker.
    #[serde(default = "d_stash")]
    pub stash_slots: u32,
    /// Identical pure ACKs from a server dropped after this many in a row (0 = never).
    #[serde(default = "d_storm")]
    pub ack_storm_thresh: u8,
}

impl Default for SynProxyConfig {
    fn default() -> Self {
        SynProxyConfig {
            mode: SynProxyMode::default(),
            syn_rate_on: d_rate_on(),
            syn_rate_off: d_rate_off(),
            syn_recv_on: d_recv_on(),
            syn_recv_off: d_recv_off(),
            interval_ms: d_interval(),
            hold_ms: d_hold(),
            mss_v4: d_mss4(),
            mss_v6: d_mss6(),
            wscale: d_wscale(),
            window: d_window(),
            timestamps: true,
            stash_slots: d_stash(),
            ack_storm_thresh: d_storm(),
        }
    }
}

impl SynProxyConfig {
    /// Checks the values, naming the first bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.wscale > 14 {
            return Err(format!("wscale {} is above 14", self.wscale));
        }
        if self.mss_v4 < 536 || self.mss_v6 < 1220 {
            return Err("mss_v4 must be at least 536 and mss_v6 at least 1220".into());
        }
        if self.interval_ms == 0 {
            return Err("interval_ms must be positive".into());
        }
        if self.syn_rate_off > self.syn_rate_on || self.syn_recv_off > self.syn_recv_on {
            return Err("an *_off threshold is above its *_on threshold".into());
        }
        if self.stash_slots > u32::from(u16::MAX) - 1 {
            return Err(format!("stash_slots {} is above {}", self.stash_slots, u16::MAX - 1));
        }
        Ok(())
    }
}

crate::counter_set! {
    /// What the SYN proxy did (drops are also counted as drop reasons).
    pub enum SynProxyEvent in SynProxyCounts {
        CookieSent = "syn_cookies_sent": "A client SYN was answered with a SYN cookie.",
        SynRetrans = "syn_retrans": "A client SYN for a connection waiting for its server was answered again.",
        AckValid = "ack_valid": "A client ACK carried a valid cookie: connection opened, SYN sent to the real server.",
        AckInvalid = "ack_invalid": "A client ACK without a connection carried no valid cookie (dropped).",
        AckNoConn = "ack_open_failed": "A valid cookie, but the connection could not be opened (see the drop reasons).",
        ServerSynAck = "server_synack": "A real server's SYN-ACK completed a proxied handshake.",
        SynResent = "syn_resent": "The client retransmitted before its server answered: the SYN was sent to the server again.",
        EarlyHeld = "early_held": "A client segment sent before the server's SYN-ACK was held, then sent with the handshake.",
        EarlyDropped = "early_dropped": "A client segment sent before the server's SYN-ACK was dropped (the client retransmits).",
        EarlyLost = "early_lost": "A held client segment was gone when the server's SYN-ACK came (its stash slot reused by a later connection's: raise stash_slots) or no longer fit: the handshake completed without it (the client retransmits).",
        ServerRst = "server_rst": "A real server refused a proxied connection: RST sent to the client.",
        SynAckRetrans = "synack_retrans": "A real server's retransmitted SYN-ACK was answered with the ACK again.",
        SynAckDropped = "synack_dropped": "A real server's SYN-ACK or ACK that did not fit the handshake was dropped (before the server's SYN-ACK: replaced by a reset to the server, see synproxy_bad_synack).",
        AckStorm = "ack_storm": "An identical pure ACK from a real server beyond the ack-storm threshold was dropped.",
        AutoOn = "auto_on": "Auto mode turned the proxy on for this worker.",
        AutoOff = "auto_off": "Auto mode turned the proxy off for this worker.",
    }
}

/// Bits of [`Side::bits`].
pub(crate) mod bits {
    /// The server's SYN-ACK came: `delta` and `ts` are offsets.
    pub const ESTABLISHED: u8 = 0x01;
    /// Timestamps are on.
    pub const TS: u8 = 0x02;
    /// SACK was offered.
    pub const SACK: u8 = 0x04;
}

/// No window scale (in [`Side::ws_client`] / [`Side::ws_server`]).
pub(crate) const NO_WS: u8 = 0xff;

/// The proxy's state of one connection slot (meaningful while the connection carries
/// [`crate::conn::ConnFlags::SYNPROXY`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Side {
    /// The cookie: the proxy's ISN towards the client.
    pub ours: u32,
    /// Server ISN − `ours`, once established.
    pub delta: u32,
    /// During the handshake: the proxy's TSval (the client's echo); then server TSval −
    /// the proxy's.
    pub ts: u32,
    /// During the handshake: the client's ISN + 1; then the ack-storm fingerprint.
    pub last: u32,
    /// The client's window from its ACK (for the ACK to the server).
    pub win: u16,
    /// The stash slot + 1 holding an early client segment (0: none).
    pub stash: u16,
    /// The client's window scale ([`NO_WS`]: none).
    pub ws_client: u8,
    /// The server's window scale ([`NO_WS`]: none).
    pub ws_server: u8,
    /// [`bits`].
    pub bits: u8,
    /// Repeats seen: ack-storm run length, or SYN-ACK retransmissions answered.
    pub dups: u8,
}

/// Bytes of one stash slot.
pub const STASH_SLOT: usize = 2048;

/// A fixed ring of slots holding early client segments (IP packets), reused in turn;
/// a slot remembers its connection, so a reused slot is never sent for the wrong one.
#[derive(Debug)]
pub(crate) struct Stash {
    data: Vec<u8>,
    owner: Vec<u32>,
    len: Vec<u16>,
    next: usize,
}

impl Stash {
    fn new(slots: u32) -> Stash {
        let n = slots as usize;
        Stash { data: vec![0; n * STASH_SLOT], owner: vec![u32::MAX; n], len: vec![0; n], next: 0 }
    }

    /// Stores `pkt` for connection slot `conn`; the slot number + 1, or 0 if it does
    /// not fit (or there are no slots).
    pub fn put(&mut self, conn: u32, pkt: &[u8]) -> u16 {
        let n = self.owner.len();
        if n == 0 || pkt.len() > STASH_SLOT {
            return 0;
        }
        let i = self.next;
        self.next = (i + 1) % n;
        self.data[i * STASH_SLOT..i * STASH_SLOT + pkt.len()].copy_from_slice(pkt);
        self.owner[i] = conn;
        self.len[i] = pkt.len() as u16;
        (i + 1) as u16
    }

    /// The packet in slot `slot` (+1) if it still belongs to `conn`; the slot is freed.
    pub fn take(&mut self, slot: u16, conn: u32) -> Option<&[u8]> {
        let i = (slot as usize).checked_sub(1)?;
        if *self.owner.get(i)? != conn {
            return None;
        }
        self.owner[i] = u32::MAX;
        Some(&self.data[i * STASH_SLOT..i * STASH_SLOT + self.len[i] as usize])
    }
}

/// One worker's SYN proxy state: settings, cookie key, per-slot records, the stash,
/// auto mode and counters.
#[derive(Debug)]
pub struct SynProxy {
    pub(crate) cfg: SynProxyConfig,
    pub(crate) key: cookie::CookieKey,
    /// Per connection slot, allocated once a service's mode is not `off`
    /// ([`crate::conn::slots`]).
    pub(crate) side: crate::conn::SlotArray<Side>,
    pub(crate) stash: Stash,
    pub(crate) counts: SynProxyCounts,
    /// Auto mode is on, since when, and the end of the last interval at or above the
    /// off thresholds.
    auto_on: bool,
    auto_since: Millis,
    last_hot: Millis,
    /// SYNs seen in the current interval, and when it ends.
    syns: u32,
    interval_end: Millis,
}

impl SynProxy {
    /// The memory it keeps per connection slot, in bytes, for all slots.
    pub fn slot_bytes(&self) -> usize {
        self.side.bytes()
    }

    /// The proxy of a worker with `capacity` connection slots.
    pub fn new(cfg: &SynProxyConfig, capacity: u32, key: cookie::CookieKey) -> SynProxy {
        SynProxy {
            cfg: cfg.clone(),
            key,
            side: crate::conn::SlotArray::new(capacity),
            stash: Stash::new(cfg.stash_slots),
            counts: SynProxyCounts::default(),
            auto_on: false,
            auto_since: 0,
            last_hot: 0,
            syns: 0,
            interval_end: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &SynProxyConfig {
        &self.cfg
    }

    /// The counters.
    pub fn counts(&self) -> &SynProxyCounts {
        &self.counts
    }

    /// Zeroes the counters (`ipvsadm -Z`).
    pub fn zero_counts(&mut self) {
        self.counts.zero();
    }

    /// Whether auto mode is on for this worker now.
    pub fn auto_on(&self) -> bool {
        self.auto_on
    }

    /// The effective mode of a service whose own setting is `svc`.
    #[inline]
    pub fn mode(&self, svc: Option<SynProxyMode>) -> SynProxyMode {
        svc.unwrap_or(self.cfg.mode)
    }

    /// Whether a SYN of a service with setting `svc` is answered by the proxy now.
    #[inline]
    pub fn active(&self, svc: Option<SynProxyMode>) -> bool {
        match self.mode(svc) {
            SynProxyMode::On => true,
            SynProxyMode::Off => false,
            SynProxyMode::Auto => self.auto_on,
        }
    }

    /// Counts a SYN to a service and moves auto mode; `syn_recv` is the worker's
    /// population of connections in SYN_RECV (the table's own count).
    #[inline]
    pub fn on_syn(&mut self, now: Millis, syn_recv: u32) {
        if now >= self.interval_end {
            self.roll(now, syn_recv);
        }
        self.syns = self.syns.saturating_add(1);
        if !self.auto_on && (self.syns >= self.per_interval(self.cfg.syn_rate_on) || syn_recv >= self.cfg.syn_recv_on) {
            self.turn(true, now);
        }
    }

    /// A rate per second as a count per interval (at least 1).
    fn per_interval(&self, per_s: u32) -> u32 {
        ((u64::from(per_s) * self.cfg.interval_ms).div_ceil(1000)).clamp(1, u64::from(u32::MAX)) as u32
    }

    #[cold]
    fn roll(&mut self, now: Millis, syn_recv: u32) {
        // An interval with no SYN at all (now past the end by more than one interval)
        // counts as zero.
        let last = if now >= self.interval_end + self.cfg.interval_ms { 0 } else { self.syns };
        self.syns = 0;
        self.interval_end = now + self.cfg.interval_ms;
        if self.auto_on {
            // Off only after `hold_ms` without a single interval at or above the off
            // thresholds: one quiet interval (the worker held up, a pause in the flood)
            // is not the end of a flood.
            if last >= self.per_interval(self.cfg.syn_rate_off) || syn_recv >= self.cfg.syn_recv_off {
                self.last_hot = now;
            } else if now >= self.last_hot + self.cfg.hold_ms && now >= self.auto_since + self.cfg.hold_ms {
                self.turn(false, now);
            }
        }
    }

    fn turn(&mut self, on: bool, now: Millis) {
        self.auto_on = on;
        if on {
            self.auto_since = now;
            self.last_hot = now;
            self.counts.inc(SynProxyEvent::AutoOn);
        } else {
            self.counts.inc(SynProxyEvent::AutoOff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SynProxyConfig {
        SynProxyConfig {
            syn_rate_on: 100,
            syn_rate_off: 50,
            hold_ms: 2000,
            interval_ms: 1000,
            ..SynProxyConfig::default()
        }
    }

    #[test]
    fn auto_turns_on_with_rate_and_off_with_hysteresis() {
        let mut p = SynProxy::new(&cfg(), 16, cookie::CookieKey::new(1, 2));
        for i in 0..99 {
            p.on_syn(i, 0);
        }
        assert!(!p.auto_on());
        p.on_syn(100, 0);
        assert!(p.auto_on(), "100 SYNs within a second");
        // 60 SYNs a second: above the off threshold, stays on.
        for s in 1..5u64 {
            for i in 0..60 {
                p.on_syn(s * 1000 + i, 0);
            }
        }
        assert!(p.auto_on());
        // Quiet: off once no interval was busy for the hold time.
        p.on_syn(5_000, 0);
        p.on_syn(6_500, 0);
        assert!(p.auto_on(), "the interval ending at 5 s was busy: on until 7 s");
        p.on_syn(7_600, 0);
        assert!(!p.auto_on());
        assert_eq!(p.counts().get(SynProxyEvent::AutoOn), 1);
        assert_eq!(p.counts().get(SynProxyEvent::AutoOff), 1);
    }

    #[test]
    fn auto_turns_on_with_syn_recv_population() {
        let c = SynProxyConfig { syn_recv_on: 3, syn_recv_off: 1, hold_ms: 0, ..cfg() };
        let mut p = SynProxy::new(&c, 16, cookie::CookieKey::new(1, 2));
        p.on_syn(0, 2);
        assert!(!p.auto_on());
        p.on_syn(1, 3);
        assert!(p.auto_on());
        p.on_syn(10_000, 1);
        assert!(p.auto_on(), "not below the off threshold");
        p.on_syn(20_000, 0);
        assert!(!p.auto_on());
    }

    #[test]
    fn stash_slots_are_owned() {
        let mut s = Stash::new(2);
        let a = s.put(7, b"abc");
        let b = s.put(8, b"de");
        assert_eq!(s.take(a, 8), None);
        assert_eq!(s.take(a, 7), Some(&b"abc"[..]));
        assert_eq!(s.take(a, 7), None, "taken once");
        let c = s.put(9, b"f"); // reuses slot 1
        assert_eq!(c, a);
        assert_eq!(s.take(b, 8), Some(&b"de"[..]));
        assert_eq!(Stash::new(0).put(1, b"x"), 0);
    }

    #[test]
    fn mode_names() {
        for m in [SynProxyMode::On, SynProxyMode::Off, SynProxyMode::Auto] {
            assert_eq!(SynProxyMode::from_name(m.name()), Some(m));
        }
        assert_eq!(SynProxyMode::from_name("enable"), Some(SynProxyMode::On));
        assert_eq!(SynProxyMode::from_name("maybe"), None);
    }
}
