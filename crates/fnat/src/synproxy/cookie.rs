//! SYN cookies: the initial sequence number the SYN proxy answers a client's SYN with,
//! and its validation when the client's ACK comes back.
//!
//! The construction is Linux's (`net/ipv4/syncookies.c`, `secure_tcp_syn_cookie`):
//!
//! ```text
//! cookie = H(secret, 4-tuple, 0) + client ISN + (count << 24) + ((H(secret, 4-tuple, count) + data) mod 2^24)
//! ```
//!
//! where `count` is a minute counter and `H` a keyed hash (SipHash-2-4 with a 128-bit
//! secret). Validation recovers `count` from the top 8 bits, accepts the current and the
//! previous minute only, and recovers `data`, which must be a valid encoding.
//!
//! `data` is where rvs differs from Linux: Linux keeps only the MSS index there (2 bits)
//! and carries window scale, SACK and ECN in the low bits of the SYN-ACK's timestamp,
//! so a client that does not send timestamps loses window scaling and SACK. rvs keeps
//! the MSS index, the client's window scale and its SACK permission all in `data`
//! (7 bits, see [`CookieData`]), so they survive with or without timestamps. The price
//! is integrity: a blind forged ACK is accepted with probability 2^-24 (its top byte
//! must give the current or the previous minute, 2 in 256, and its low 24 bits a valid
//! 7-bit `data`, 2^-17; Linux's 2-bit `data`: 2^-29 in all); what such a forgery buys
//! is one connection to a real server, the same as a legitimate client gets.

use std::net::IpAddr;

/// Bits of the cookie below the minute counter.
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// Cookies of the current and the previous minute are accepted.
const MAX_AGE: u32 = 2;
/// Milliseconds per counter step.
pub const COUNT_MS: u64 = 60_000;

/// MSS values a cookie can carry for IPv4 clients (Linux's `msstab`): the client's MSS
/// is rounded down to one of them.
pub const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
/// MSS values a cookie can carry for IPv6 clients (Linux's `msstab` for IPv6).
pub const MSS_V6: [u16; 4] = [1220, 1420, 1440, 8940];

/// The client's SYN options a cookie carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieData {
    /// Index of the client's MSS in [`MSS_V4`] / [`MSS_V6`].
    pub mss_idx: u8,
    /// The client's window scale shift (0..=14), if it sent the option.
    pub wscale: Option<u8>,
    /// Whether the client sent SACK-permitted.
    pub sack: bool,
}

impl CookieData {
    /// The options of a client SYN: its MSS (`None`: no option, the default 536 /
    /// 1220), window scale (clamped to 14 as RFC 7323 says) and SACK permission.
    pub fn from_syn(v4: bool, mss: Option<u16>, wscale: Option<u8>, sack: bool) -> CookieData {
        let tab = if v4 { &MSS_V4 } else { &MSS_V6 };
        let mss = mss.unwrap_or(tab[0]);
        let mss_idx = (1..tab.len()).rev().find(|&i| mss >= tab[i]).unwrap_or(0) as u8;
        CookieData { mss_idx, wscale: wscale.map(|w| w.min(14)), sack }
    }

    /// The MSS this data stands for.
    pub fn mss(self, v4: bool) -> u16 {
        let tab = if v4 { &MSS_V4 } else { &MSS_V6 };
        tab[self.mss_idx as usize & 3]
    }

    /// Bits 0-1: MSS index; bits 2-5: window scale + 1 (0 = none); bit 6: SACK.
    fn encode(self) -> u32 {
        let ws = self.wscale.map_or(0, |w| u32::from(w.min(14)) + 1);
        u32::from(self.mss_idx & 3) | (ws << 2) | (u32::from(self.sack) << 6)
    }

    fn decode(v: u32) -> Option<CookieData> {
        if v >= 1 << 7 {
            return None;
        }
        let ws = (v >> 2) & 0xf;
        Some(CookieData {
            mss_idx: (v & 3) as u8,
            wscale: if ws == 0 { None } else { Some(ws as u8 - 1) },
            sack: v & (1 << 6) != 0,
        })
    }
}

/// The secret cookies are made with (per process; see [`CookieKey::process`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieKey {
    k0: u64,
    k1: u64,
}

impl CookieKey {
    /// A key from two 64-bit words (tests use fixed ones).
    pub const fn new(k0: u64, k1: u64) -> CookieKey {
        CookieKey { k0, k1 }
    }

    /// The process's key: random, drawn once, shared by every worker, so a client's
    /// ACK is recognised whichever worker it reaches.
    pub fn process() -> CookieKey {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::OnceLock;
        static KEY: OnceLock<CookieKey> = OnceLock::new();
        *KEY.get_or_init(|| {
            let rs = std::collections::hash_map::RandomState::new();
            let word = |i: u64| {
                let mut h = rs.build_hasher();
                h.write_u64(i);
                h.finish()
            };
            CookieKey { k0: word(1), k1: word(2) }
        })
    }

    /// SipHash-2-4 of the connection's 4-tuple (as the client sends it) and a 32-bit
    /// salt, truncated to 32 bits.
    fn hash(&self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, salt: u32) -> u32 {
        let mut m = [0u8; 40];
        let put = |m: &mut [u8], at: usize, a: IpAddr| match a {
            IpAddr::V4(a) => m[at..at + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => m[at..at + 16].copy_from_slice(&a.octets()),
        };
        put(&mut m, 0, src);
        put(&mut m, 16, dst);
        m[32..34].copy_from_slice(&sport.to_be_bytes());
        m[34..36].copy_from_slice(&dport.to_be_bytes());
        m[36..40].copy_from_slice(&salt.to_be_bytes());
        siphash24(self.k0, self.k1, &m) as u32
    }

    /// The cookie (the SYN-ACK's sequence number) for a client SYN from `src:sport` to
    /// `dst:dport` with initial sequence number `isn`, at minute `count`.
    #[allow(clippy::too_many_arguments)]
    pub fn make(&self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, isn: u32, count: u32, d: CookieData) -> u32 {
        let h1 = self.hash(src, sport, dst, dport, 0);
        let h2 = self.hash(src, sport, dst, dport, count);
        h1.wrapping_add(isn).wrapping_add(count << COOKIE_BITS).wrapping_add(h2.wrapping_add(d.encode()) & COOKIE_MASK)
    }

    /// Checks the cookie of a client ACK (`cookie` = its acknowledgment number − 1,
    /// `isn` = its sequence number − 1) at minute `count`: the data it carries, or
    /// `None` for a forgery or a cookie older than the previous minute.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        isn: u32,
        cookie: u32,
        count: u32,
    ) -> Option<CookieData> {
        let t = cookie.wrapping_sub(self.hash(src, sport, dst, dport, 0)).wrapping_sub(isn);
        let diff = count.wrapping_sub(t >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if diff >= MAX_AGE {
            return None;
        }
        let made = count.wrapping_sub(diff);
        let data = t.wrapping_sub(self.hash(src, sport, dst, dport, made)) & COOKIE_MASK;
        CookieData::decode(data)
    }
}

/// The minute counter at `now` (milliseconds).
#[inline]
pub fn count_at(now: u64) -> u32 {
    (now / COUNT_MS) as u32
}

/// SipHash-2-4 (Aumasson and Bernstein) of `m` with key `(k0, k1)`.
fn siphash24(k0: u64, k1: u64, m: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = m.chunks_exact(8);
    for c in chunks.by_ref() {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        v[3] ^= w;
        round(&mut v);
        round(&mut v);
        v[0] ^= w;
    }
    let rest = chunks.remainder();
    let mut last = (m.len() as u64) << 56;
    for (i, b) in rest.iter().enumerate() {
        last |= u64::from(*b) << (8 * i);
    }
    v[3] ^= last;
    round(&mut v);
    round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_reference_vector() {
        // The paper's test vector: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let m: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(k0, k1, &m), 0xa129_ca61_49be_45e5);
    }

    fn addrs() -> (IpAddr, IpAddr) {
        ("203.0.113.7".parse().unwrap(), "192.0.2.1".parse().unwrap())
    }

    #[test]
    fn round_trip_every_encoding() {
        let k = CookieKey::new(1, 2);
        let (c, v) = addrs();
        for mss_idx in 0..4 {
            for wscale in [None, Some(0), Some(7), Some(14)] {
                for sack in [false, true] {
                    let d = CookieData { mss_idx, wscale, sack };
                    let isn = 0xdead_beef;
                    let cookie = k.make(c, 40000, v, 80, isn, 1000, d);
                    assert_eq!(k.check(c, 40000, v, 80, isn, cookie, 1000), Some(d));
                    assert_eq!(k.check(c, 40000, v, 80, isn, cookie, 1001), Some(d), "previous minute");
                    assert_eq!(k.check(c, 40000, v, 80, isn, cookie, 1002), None, "too old");
                    assert_eq!(k.check(c, 40000, v, 80, isn, cookie, 999), None, "from the future");
                    assert_eq!(k.check(c, 40001, v, 80, isn, cookie, 1000), None, "other port");
                    assert_eq!(k.check(c, 40000, v, 80, isn + 0x5555, cookie, 1000), None, "other isn");
                    assert_eq!(CookieKey::new(1, 3).check(c, 40000, v, 80, isn, cookie, 1000), None, "other key");
                }
            }
        }
    }

    #[test]
    fn counter_wraps() {
        let k = CookieKey::new(7, 9);
        let (c, v) = addrs();
        let d = CookieData::from_syn(true, Some(1460), Some(7), true);
        let cookie = k.make(c, 1, v, 2, 5, 255, d);
        assert_eq!(k.check(c, 1, v, 2, 5, cookie, 256), Some(d));
    }

    #[test]
    fn mss_rounds_down() {
        assert_eq!(CookieData::from_syn(true, Some(1460), None, false).mss(true), 1460);
        assert_eq!(CookieData::from_syn(true, Some(1459), None, false).mss(true), 1440);
        assert_eq!(CookieData::from_syn(true, Some(100), None, false).mss(true), 536);
        assert_eq!(CookieData::from_syn(true, None, None, false).mss(true), 536);
        assert_eq!(CookieData::from_syn(false, Some(1440), None, false).mss(false), 1440);
        assert_eq!(CookieData::from_syn(false, Some(65495), None, false).mss(false), 8940);
        assert_eq!(CookieData::from_syn(true, None, Some(15), false).wscale, Some(14));
    }

    #[test]
    fn random_acks_rarely_pass() {
        let k = CookieKey::new(11, 13);
        let (c, v) = addrs();
        let mut ok = 0;
        let mut x = 1u32;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            if k.check(c, 40000, v, 80, 1, x, 77).is_some() {
                ok += 1;
            }
        }
        // Expected: 200000 * 2 * 2^-17 / 256 ... well under 1.
        assert!(ok <= 2, "{ok} forgeries accepted");
    }
}
