//! VRRP advertisements on the wire: v2 (RFC 3768, IPv4, simple password) and v3
//! (RFC 5798 / RFC 9568, IPv4 and IPv6, centisecond intervals).
//!
//! The VRRP message is encoded and decoded on its own ([`Advert::encode`],
//! [`Advert::decode`]); [`encode_ipv4`] / [`decode_ipv4`] add or strip the IPv4 header as
//! a raw socket with `IP_HDRINCL` sends and receives it, and [`check_hop_limit`] is the
//! receiver's TTL / hop-limit 255 rule for IPv6, where the kernel hands over only the payload.
//!
//! Checksums: v2 covers the VRRP message only. v3 adds the IP pseudo-header. Real IPv4 v3
//! peers differ: keepalived before 2.0 (and later with `old_unicast_checksum`) puts the
//! multicast group instead of the unicast peer in the pseudo-header, and some stacks leave
//! the pseudo-header out. On receive an IPv4 v3 advert is accepted in any of these forms
//! ([`ChecksumForm`]); on send the form is chosen by [`ChecksumMode`]. IPv6 always uses the
//! RFC pseudo-header.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The IP protocol number of IPsec AH, which carries VRRPv2 adverts of `auth_type AH`.
pub const IPPROTO_AH: u8 = 51;
/// Length of the AH header keepalived puts before a VRRP message: next header, payload
/// length, reserved, SPI, sequence number and a 96-bit HMAC-MD5 ICV.
pub const AH_LEN: usize = 24;
/// Length of the AH integrity check value (HMAC-MD5 cut to 96 bits).
const AH_ICV_LEN: usize = 12;
/// The IPv4 multicast group adverts go to.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts go to.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL / hop limit every advert is sent with and must arrive with.
pub const VRRP_TTL: u8 = 255;
/// Length of the v2 authentication data.
pub const AUTH_LEN: usize = 8;

/// The VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Version {
    /// RFC 3768: IPv4 only, whole-second intervals, optional simple password.
    #[default]
    V2,
    /// RFC 5798 / RFC 9568: IPv4 and IPv6, centisecond intervals, no authentication.
    V3,
}

/// Which checksum an IPv4 VRRPv3 advert is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ChecksumMode {
    /// The RFC 5798 form, over the IP pseudo-header and the message (keepalived's default).
    #[default]
    PseudoHeader,
    /// keepalived's `old_unicast_checksum`: the pseudo-header with the multicast group
    /// 224.0.0.18 as destination even when sent to a unicast peer.
    MulticastPseudoHeader,
    /// Over the message alone, as some other stacks compute it.
    NoPseudoHeader,
}

/// The checksum form a received advert was found valid with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumForm {
    /// Over the message only (v2, or v3 from a peer without the pseudo-header).
    Plain,
    /// Over the pseudo-header and the message.
    PseudoHeader,
    /// Over a pseudo-header naming 224.0.0.18 though the packet went to a unicast address
    /// (keepalived's old unicast checksum).
    MulticastPseudoHeader,
}

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer bytes than the headers and addresses need.
    #[error("truncated: {0} bytes")]
    Truncated(usize),
    /// Version nibble other than 2 or 3.
    #[error("unsupported VRRP version {0}")]
    BadVersion(u8),
    /// Type other than 1 (Advertisement).
    #[error("unknown VRRP type {0}")]
    BadType(u8),
    /// The checksum did not verify in any accepted form.
    #[error("bad checksum")]
    BadChecksum,
    /// TTL or hop limit other than 255: the packet crossed a router.
    #[error("TTL/hop limit {0}, expected 255")]
    BadTtl(u8),
    /// Not protocol 112.
    #[error("IP protocol {0} is not VRRP")]
    NotVrrp(u8),
    /// A v2 packet over IPv6, or addresses of the wrong family.
    #[error("address family mismatch")]
    FamilyMismatch,
    /// The message carries more or fewer bytes than its address count says.
    #[error("length {len} does not match {count} addresses")]
    BadLength {
        /// Bytes present.
        len: usize,
        /// Address count in the header.
        count: u8,
    },
    /// Not an IPv4 header.
    #[error("not an IPv4 packet")]
    NotIpv4,
    /// An interval that does not fit the version's field.
    #[error("advert interval {0} cs does not fit this version")]
    BadInterval(u16),
    /// More addresses than the 8-bit count field.
    #[error("too many addresses: {0}")]
    TooManyAddresses(usize),
    /// v2 authentication type other than 0 (none), 1 (simple password) or 2 (AH).
    #[error("unsupported v2 authentication type {0}")]
    BadAuthType(u8),
}

impl PacketError {
    /// A short name of the fault, the `reason` label of dropped adverts in metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PacketError::Truncated(_) | PacketError::BadLength { .. } => "length",
            PacketError::BadVersion(_) => "version",
            PacketError::BadType(_) => "type",
            PacketError::BadChecksum => "checksum",
            PacketError::BadTtl(_) => "ttl",
            PacketError::NotVrrp(_) | PacketError::NotIpv4 | PacketError::FamilyMismatch => "malformed",
            PacketError::BadInterval(_) | PacketError::TooManyAddresses(_) => "malformed",
            PacketError::BadAuthType(_) => "auth",
        }
    }
}

/// One VRRP advertisement, whatever its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    /// v2 or v3.
    pub version: Version,
    /// Virtual router id, 1-255.
    pub vrid: u8,
    /// Sender's priority: 255 owner, 1-254 backup-capable, 0 the master is leaving.
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds on the wire).
    pub interval_cs: u16,
    /// The virtual addresses, all of one family.
    pub addresses: Vec<IpAddr>,
    /// v2 authentication.
    pub auth: Auth,
}

/// A VRRPv2 advert's authentication (RFC 2338's types; RFC 3768 kept none of them,
/// keepalived keeps both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Auth {
    /// Type 0.
    #[default]
    None,
    /// Type 1: the password in the message, padded with zeros.
    Pass([u8; AUTH_LEN]),
    /// Type 2: an IPsec AH header before the message (see [`encode_ipv4_ah`]).
    Ah,
}

/// Pads or truncates a password to the 8 bytes v2 carries (keepalived uses the first 8).
pub fn auth_pass(pass: &str) -> [u8; AUTH_LEN] {
    let mut a = [0u8; AUTH_LEN];
    for (d, s) in a.iter_mut().zip(pass.bytes()) {
        *d = s;
    }
    a
}

/// The Internet checksum (RFC 1071) over several slices as if concatenated.
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Result<Vec<u8>, PacketError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, IPPROTO_VRRP]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            Ok(p)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, IPPROTO_VRRP]);
            Ok(p)
        }
        _ => Err(PacketError::FamilyMismatch),
    }
}

impl Advert {
    /// The address family of the advert (from its first address; IPv4 when empty and v2).
    pub fn is_ipv6(&self) -> bool {
        matches!(self.addresses.first(), Some(IpAddr::V6(_)))
    }

    /// Encodes the VRRP message (no IP header). `src`/`dst` are the IP addresses the packet
    /// travels with; they enter the v3 checksum. `mode` picks the IPv4 v3 checksum form.
    pub fn encode(&self, src: IpAddr, dst: IpAddr, mode: ChecksumMode) -> Result<Vec<u8>, PacketError> {
        let v6 = src.is_ipv6();
        if src.is_ipv6() != dst.is_ipv6() || self.addresses.iter().any(|a| a.is_ipv6() != v6) {
            return Err(PacketError::FamilyMismatch);
        }
        if v6 && self.version == Version::V2 {
            return Err(PacketError::FamilyMismatch);
        }
        if self.addresses.len() > 255 {
            return Err(PacketError::TooManyAddresses(self.addresses.len()));
        }
        let mut m = Vec::with_capacity(8 + self.addresses.len() * 16 + AUTH_LEN);
        match self.version {
            Version::V2 => {
                if !self.interval_cs.is_multiple_of(100) || self.interval_cs / 100 > 255 || self.interval_cs == 0 {
                    return Err(PacketError::BadInterval(self.interval_cs));
                }
                let auth_type = match self.auth {
                    Auth::None => 0,
                    Auth::Pass(_) => 1,
                    Auth::Ah => 2,
                };
                m.extend_from_slice(&[
                    0x21,
                    self.vrid,
                    self.priority,
                    self.addresses.len() as u8,
                    auth_type,
                    (self.interval_cs / 100) as u8,
                    0,
                    0,
                ]);
            }
            Version::V3 => {
                if self.interval_cs > 0x0fff {
                    return Err(PacketError::BadInterval(self.interval_cs));
                }
                m.extend_from_slice(&[0x31, self.vrid, self.priority, self.addresses.len() as u8]);
                m.extend_from_slice(&self.interval_cs.to_be_bytes());
                m.extend_from_slice(&[0, 0]);
            }
        }
        for a in &self.addresses {
            match a {
                IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            m.extend_from_slice(&match self.auth {
                Auth::Pass(p) => p,
                Auth::None | Auth::Ah => [0; AUTH_LEN],
            });
        }
        let ck = match (self.version, v6, mode) {
            (Version::V2, _, _) | (Version::V3, false, ChecksumMode::NoPseudoHeader) => inet_checksum(&[&m]),
            (Version::V3, false, ChecksumMode::MulticastPseudoHeader) => {
                inet_checksum(&[&pseudo_header(src, IpAddr::V4(MCAST_V4), m.len())?, &m])
            }
            _ => inet_checksum(&[&pseudo_header(src, dst, m.len())?, &m]),
        };
        m[6..8].copy_from_slice(&ck.to_be_bytes());
        Ok(m)
    }

    /// Decodes a VRRP message received from `src` to `dst`, verifying its checksum and
    /// returning the form it verified with. TTL is checked by the caller
    /// ([`decode_ipv4`], [`check_hop_limit`]).
    pub fn decode(msg: &[u8], src: IpAddr, dst: IpAddr) -> Result<(Advert, ChecksumForm), PacketError> {
        if msg.len() < 8 {
            return Err(PacketError::Truncated(msg.len()));
        }
        let v6 = src.is_ipv6();
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(PacketError::FamilyMismatch);
        }
        let (ver, typ) = (msg[0] >> 4, msg[0] & 0x0f);
        let version = match ver {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(PacketError::BadVersion(v)),
        };
        if typ != 1 {
            return Err(PacketError::BadType(typ));
        }
        if v6 && version == Version::V2 {
            return Err(PacketError::FamilyMismatch);
        }
        let count = msg[3];
        let alen = if v6 { 16 } else { 4 };
        let need = 8 + usize::from(count) * alen + if version == Version::V2 { AUTH_LEN } else { 0 };
        if msg.len() < need {
            return Err(PacketError::BadLength { len: msg.len(), count });
        }
        // Trailing bytes beyond the addresses are tolerated (RFC 3768 allows auth data; some
        // stacks pad) but the checksum covers what was sent.
        let form = match version {
            Version::V2 => {
                if inet_checksum(&[msg]) != 0 {
                    return Err(PacketError::BadChecksum);
                }
                ChecksumForm::Plain
            }
            Version::V3 => {
                let ph = pseudo_header(src, dst, msg.len())?;
                if inet_checksum(&[&ph, msg]) == 0 {
                    ChecksumForm::PseudoHeader
                } else if !v6 && inet_checksum(&[&pseudo_header(src, IpAddr::V4(MCAST_V4), msg.len())?, msg]) == 0 {
                    ChecksumForm::MulticastPseudoHeader
                } else if !v6 && inet_checksum(&[msg]) == 0 {
                    ChecksumForm::Plain
                } else {
                    return Err(PacketError::BadChecksum);
                }
            }
        };
        let mut addresses = Vec::with_capacity(usize::from(count));
        for i in 0..usize::from(count) {
            let o = 8 + i * alen;
            addresses.push(if v6 {
                let mut b = [0u8; 16];
                b.copy_from_slice(&msg[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            } else {
                IpAddr::V4(Ipv4Addr::new(msg[o], msg[o + 1], msg[o + 2], msg[o + 3]))
            });
        }
        let (interval_cs, auth) = match version {
            Version::V2 => {
                let auth = match msg[4] {
                    0 => Auth::None,
                    1 => {
                        let o = 8 + usize::from(count) * 4;
                        let mut a = [0u8; AUTH_LEN];
                        a.copy_from_slice(&msg[o..o + AUTH_LEN]);
                        Auth::Pass(a)
                    }
                    2 => Auth::Ah,
                    t => return Err(PacketError::BadAuthType(t)),
                };
                (u16::from(msg[5]) * 100, auth)
            }
            Version::V3 => (u16::from_be_bytes([msg[4], msg[5]]) & 0x0fff, Auth::None),
        };
        Ok((Advert { version, vrid: msg[1], priority: msg[2], interval_cs, addresses, auth }, form))
    }
}

/// Wraps a VRRP message in an IPv4 header (TOS 0xc0 like keepalived, TTL `ttl`: 255 but
/// for keepalived's `unicast_ttl`, protocol 112, header checksum filled) for a raw socket
/// with `IP_HDRINCL`.
pub fn encode_ipv4(msg: &[u8], src: Ipv4Addr, dst: Ipv4Addr, id: u16, ttl: u8) -> Vec<u8> {
    let total = 20 + msg.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0xc0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, ttl, IPPROTO_VRRP, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let ck = inet_checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend_from_slice(msg);
    p
}

/// HMAC-MD5 (RFC 2104) of `parts` concatenated, with a key of at most 64 bytes (the
/// 8-byte VRRP password here).
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut k = [0u8; 64];
    k[..key.len().min(64)].copy_from_slice(&key[..key.len().min(64)]);
    let pad = |b: u8| k.map(|x| x ^ b);
    let mut inner = Md5::new();
    inner.update(pad(0x36));
    parts.iter().for_each(|p| inner.update(p));
    let mut outer = Md5::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// What an AH-authenticated advert is sent with (keepalived's `auth_type AH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhSend {
    /// The password, padded to 8 bytes: the HMAC key.
    pub key: [u8; AUTH_LEN],
    /// The sequence number of this advert.
    pub seq: u32,
    /// Sent to unicast peers: the TTL is left out of the ICV too (keepalived's rule).
    pub unicast: bool,
}

/// The bytes the AH ICV covers: the IP header with its mutable fields zeroed (TOS,
/// flags and fragment offset, checksum, and for unicast the TTL, as keepalived 2.2.7's
/// `vrrp_in_chk_ipsecah`), then the AH header with a zero ICV and the VRRP message.
fn ah_icv(key: &[u8; AUTH_LEN], ip: &[u8], ah_and_msg: &[u8], unicast: bool) -> [u8; AH_ICV_LEN] {
    // An IPv4 header is 20 to 60 bytes.
    let mut buf = [0u8; 60];
    let iph = &mut buf[..ip.len()];
    iph.copy_from_slice(ip);
    iph[1] = 0;
    iph[6..8].fill(0);
    iph[10..12].fill(0);
    if unicast {
        iph[8] = 0;
    }
    let d = hmac_md5(key, &[iph, &ah_and_msg[..12], &[0; AH_ICV_LEN], &ah_and_msg[AH_LEN..]]);
    let mut icv = [0u8; AH_ICV_LEN];
    icv.copy_from_slice(&d[..AH_ICV_LEN]);
    icv
}

/// [`encode_ipv4`] for `auth_type AH`: protocol 51, and between the IP header and the
/// VRRP message (whose auth type is 2) keepalived's AH header: next header 112, payload
/// length 4, SPI the source address, the sequence number, and the HMAC-MD5-96 ICV keyed
/// by the password. `id` must not be 0 (the kernel would choose one after the ICV).
pub fn encode_ipv4_ah(msg: &[u8], src: Ipv4Addr, dst: Ipv4Addr, id: u16, ttl: u8, ah: &AhSend) -> Vec<u8> {
    let mut header = [0u8; AH_LEN];
    header[0] = IPPROTO_VRRP;
    header[1] = (AH_LEN / 4 - 2) as u8;
    header[4..8].copy_from_slice(&src.octets());
    header[8..12].copy_from_slice(&ah.seq.to_be_bytes());
    let mut body = header.to_vec();
    body.extend_from_slice(msg);
    let mut p = encode_ipv4(&body, src, dst, id, ttl);
    p[9] = IPPROTO_AH;
    p[10..12].fill(0);
    let ck = inet_checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    let icv = ah_icv(&ah.key, &p[..20], &p[20..], ah.unicast);
    p[20 + 12..20 + AH_LEN].copy_from_slice(&icv);
    p
}

/// The AH header of a received advert, with what its ICV covers, for the instance to
/// verify with its password ([`AhReceived::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AhReceived {
    /// The SPI: keepalived's is the sender's address.
    pub spi: [u8; 4],
    /// The sequence number (replays are refused by the instance).
    pub seq: u32,
    icv: [u8; AH_ICV_LEN],
    ip: Vec<u8>,
    ah_and_msg: Vec<u8>,
}

impl AhReceived {
    /// Whether the ICV is the one `key` gives (compared in constant time).
    pub fn verify(&self, key: &[u8; AUTH_LEN], unicast: bool) -> bool {
        let want = ah_icv(key, &self.ip, &self.ah_and_msg, unicast);
        want.iter().zip(self.icv).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }
}

/// A received advert with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The sender's primary address (IP source).
    pub src: IpAddr,
    /// The destination (multicast group or our unicast address).
    pub dst: IpAddr,
    /// The advert.
    pub advert: Advert,
    /// The checksum form it verified with.
    pub checksum: ChecksumForm,
    /// Its TTL / hop limit: 255 for multicast ([`check_hop_limit`]); a unicast advert
    /// may have been routed (keepalived's per-peer `min_ttl`/`max_ttl` then apply).
    pub ttl: u8,
    /// The AH header it came in (`auth_type AH`), not yet verified.
    pub ah: Option<AhReceived>,
}

/// Parses an IPv4 packet as a raw IPv4 socket delivers it (header included): enforces
/// protocol 112, then decodes the VRRP message (the TTL is the receiver's to judge:
/// [`Received::ttl`]).
pub fn decode_ipv4(pkt: &[u8]) -> Result<Received, PacketError> {
    if pkt.len() < 20 {
        return Err(PacketError::Truncated(pkt.len()));
    }
    if pkt[0] >> 4 != 4 {
        return Err(PacketError::NotIpv4);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || pkt.len() < ihl || total < ihl || pkt.len() < total {
        return Err(PacketError::Truncated(pkt.len()));
    }
    let src = IpAddr::V4(Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]));
    let (msg, ah) = match pkt[9] {
        IPPROTO_VRRP => (&pkt[ihl..total], None),
        IPPROTO_AH => {
            // keepalived's AH header: next header VRRP, payload length 4 (24 bytes).
            let body = &pkt[ihl..total];
            if body.len() < AH_LEN {
                return Err(PacketError::Truncated(pkt.len()));
            }
            if body[0] != IPPROTO_VRRP || body[1] != (AH_LEN / 4 - 2) as u8 {
                return Err(PacketError::NotVrrp(body[0]));
            }
            let mut icv = [0u8; AH_ICV_LEN];
            icv.copy_from_slice(&body[12..AH_LEN]);
            let ah = AhReceived {
                spi: [body[4], body[5], body[6], body[7]],
                seq: u32::from_be_bytes([body[8], body[9], body[10], body[11]]),
                icv,
                ip: pkt[..ihl].to_vec(),
                ah_and_msg: body.to_vec(),
            };
            (&body[AH_LEN..], Some(ah))
        }
        p => return Err(PacketError::NotVrrp(p)),
    };
    let (advert, checksum) = Advert::decode(msg, src, dst)?;
    if (advert.auth == Auth::Ah) != ah.is_some() {
        // An AH header around another auth type, or auth type AH without one.
        return Err(PacketError::BadAuthType(msg[4]));
    }
    Ok(Received { src, dst, advert, checksum, ttl: pkt[8], ah })
}

/// The receiver's rule (RFC 3768 7.1, RFC 5798 7.1): an advert whose TTL / hop limit is not
/// 255 has been routed and is dropped (multicast; keepalived does not apply it to unicast).
pub fn check_hop_limit(ttl: u8) -> Result<(), PacketError> {
    if ttl == VRRP_TTL {
        Ok(())
    } else {
        Err(PacketError::BadTtl(ttl))
    }
}

/// Decodes an IPv6 VRRP payload (raw IPv6 sockets deliver no header) given the addresses
/// and hop limit from the ancillary data (judged by the receiver: [`Received::ttl`]).
pub fn decode_ipv6(msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Result<Received, PacketError> {
    let (src, dst) = (IpAddr::V6(src), IpAddr::V6(dst));
    let (advert, checksum) = Advert::decode(msg, src, dst)?;
    if advert.auth != Auth::None {
        return Err(PacketError::BadAuthType(msg[4]));
    }
    Ok(Received { src, dst, advert, checksum, ttl: hop_limit, ah: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses tcpdump `-xx` hex (whitespace-separated groups) into bytes.
    fn hex(s: &str) -> Vec<u8> {
        let h: String = s.split_whitespace().collect();
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
    }

    // Captured with tcpdump -xx on a veth from Debian's keepalived 2.2.7 (ethernet header
    // stripped): VRRPv2, vrid 51, prio 150, auth PASS "secret12", int 1 s, two VIPs.
    const KA_V2: &str = "45c0 002c 0001 0000 ff70 d02a 0a63 0001 e000 0012 2133 9602 0101 c4bb \
                         0a63 0064 0a63 0065 7365 6372 6574 3132";
    // VRRPv3 over IPv4, vrid 52, prio 120, 100 cs, one VIP.
    const KA_V3_V4: &str = "45c0 0020 0001 0000 ff70 d036 0a63 0001 e000 0012 3134 7801 0064 60aa 0a63 0066";
    // VRRPv3 over IPv6 (payload after the 40-byte header), vrid 53, prio 100, 50 cs, two VIPs,
    // from fe80::ff:fe00:1 to ff02::12.
    const KA_V3_V6: &str = "3135 6402 0032 7032 fd00 0099 0000 0000 0000 0000 0000 0100 \
                            fd00 0099 0000 0000 0000 0000 0000 0101";
    // The same instance leaving: priority 0.
    const KA_V3_V6_PRIO0: &str = "3135 0002 0032 d432 fd00 0099 0000 0000 0000 0000 0000 0100 \
                                  fd00 0099 0000 0000 0000 0000 0000 0101";

    // keepalived 2.2.7 unicast to 10.99.0.2, VRRPv3: vrid 54 with `old_unicast_checksum`
    // (pseudo-header names 224.0.0.18), vrid 55 without (RFC form, real destination).
    const KA_V3_UNICAST_OLD: &str = "45c0 0020 0001 0000 ff70 a5e4 0a63 0001 0a63 0002 3136 7801 0064 60a6 0a63 0068";
    const KA_V3_UNICAST_RFC: &str = "45c0 0020 0001 0000 ff70 a5e4 0a63 0001 0a63 0002 3137 7801 0064 3652 0a63 0069";

    fn ka_v6_src() -> Ipv6Addr {
        "fe80::ff:fe00:1".parse().unwrap()
    }

    #[test]
    fn keepalived_v2_decodes_and_reencodes_byte_for_byte() {
        let pkt = hex(KA_V2);
        let r = decode_ipv4(&pkt).unwrap();
        assert_eq!(r.src, "10.99.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.dst, IpAddr::V4(MCAST_V4));
        let a = &r.advert;
        assert_eq!((a.version, a.vrid, a.priority, a.interval_cs), (Version::V2, 51, 150, 100));
        assert_eq!(a.addresses, vec!["10.99.0.100".parse::<IpAddr>().unwrap(), "10.99.0.101".parse().unwrap()]);
        assert_eq!(a.auth, Auth::Pass(auth_pass("secret12")));
        let msg = a.encode(r.src, r.dst, ChecksumMode::PseudoHeader).unwrap();
        let ip = encode_ipv4(&msg, "10.99.0.1".parse().unwrap(), MCAST_V4, 1, VRRP_TTL);
        assert_eq!(ip, pkt);
    }

    #[test]
    fn keepalived_v3_ipv4_uses_pseudo_header_and_reencodes() {
        let pkt = hex(KA_V3_V4);
        let r = decode_ipv4(&pkt).unwrap();
        assert_eq!(r.checksum, ChecksumForm::PseudoHeader);
        let a = &r.advert;
        assert_eq!((a.version, a.vrid, a.priority, a.interval_cs), (Version::V3, 52, 120, 100));
        assert_eq!(a.addresses, vec!["10.99.0.102".parse::<IpAddr>().unwrap()]);
        let msg = a.encode(r.src, r.dst, ChecksumMode::PseudoHeader).unwrap();
        assert_eq!(encode_ipv4(&msg, "10.99.0.1".parse().unwrap(), MCAST_V4, 1, VRRP_TTL), pkt);
    }

    #[test]
    fn v3_ipv4_without_pseudo_header_is_accepted_and_can_be_sent() {
        let r = decode_ipv4(&hex(KA_V3_V4)).unwrap();
        let msg = r.advert.encode(r.src, r.dst, ChecksumMode::NoPseudoHeader).unwrap();
        assert_eq!(
            &msg[6..8],
            &inet_checksum(&[&{
                let mut m = msg.clone();
                m[6] = 0;
                m[7] = 0;
                m
            }])
            .to_be_bytes()
        );
        let (back, form) = Advert::decode(&msg, r.src, r.dst).unwrap();
        assert_eq!(form, ChecksumForm::Plain);
        assert_eq!(back, r.advert);
    }

    #[test]
    fn keepalived_unicast_checksum_forms_decode_and_reencode() {
        let old = hex(KA_V3_UNICAST_OLD);
        let r = decode_ipv4(&old).unwrap();
        assert_eq!(r.checksum, ChecksumForm::MulticastPseudoHeader);
        assert_eq!((r.advert.vrid, r.advert.priority), (54, 120));
        let msg = r.advert.encode(r.src, r.dst, ChecksumMode::MulticastPseudoHeader).unwrap();
        assert_eq!(encode_ipv4(&msg, "10.99.0.1".parse().unwrap(), "10.99.0.2".parse().unwrap(), 1, VRRP_TTL), old);
        let rfc = hex(KA_V3_UNICAST_RFC);
        let r = decode_ipv4(&rfc).unwrap();
        assert_eq!(r.checksum, ChecksumForm::PseudoHeader);
        let msg = r.advert.encode(r.src, r.dst, ChecksumMode::PseudoHeader).unwrap();
        assert_eq!(encode_ipv4(&msg, "10.99.0.1".parse().unwrap(), "10.99.0.2".parse().unwrap(), 1, VRRP_TTL), rfc);
    }

    #[test]
    fn keepalived_v3_ipv6_decodes_and_reencodes() {
        for (h, prio) in [(KA_V3_V6, 100), (KA_V3_V6_PRIO0, 0)] {
            let msg = hex(h);
            let r = decode_ipv6(&msg, ka_v6_src(), MCAST_V6, 255).unwrap();
            let a = &r.advert;
            assert_eq!((a.version, a.vrid, a.priority, a.interval_cs), (Version::V3, 53, prio, 50));
            assert_eq!(a.addresses[1], "fd00:99::101".parse::<IpAddr>().unwrap());
            assert_eq!(a.encode(r.src, r.dst, ChecksumMode::NoPseudoHeader).unwrap(), msg, "v6 always pseudo");
        }
    }

    #[test]
    fn ipv6_without_pseudo_header_is_refused() {
        let mut msg = hex(KA_V3_V6);
        msg[6] = 0;
        msg[7] = 0;
        let ck = inet_checksum(&[&msg]);
        msg[6..8].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(decode_ipv6(&msg, ka_v6_src(), MCAST_V6, 255), Err(PacketError::BadChecksum));
    }

    #[test]
    fn ttl_other_than_255_is_recorded_for_the_receiver_to_refuse() {
        let mut pkt = hex(KA_V2);
        pkt[8] = 254;
        assert_eq!(decode_ipv4(&pkt).unwrap().ttl, 254);
        assert_eq!(check_hop_limit(254), Err(PacketError::BadTtl(254)));
        assert_eq!(decode_ipv6(&hex(KA_V3_V6), ka_v6_src(), MCAST_V6, 64).unwrap().ttl, 64);
        assert_eq!(check_hop_limit(64), Err(PacketError::BadTtl(64)));
        assert_eq!(check_hop_limit(255), Ok(()));
    }

    #[test]
    fn corrupted_checksums_and_shapes_are_refused() {
        let mut pkt = hex(KA_V2);
        pkt[22] ^= 1; // priority
        assert_eq!(decode_ipv4(&pkt), Err(PacketError::BadChecksum));
        let mut pkt = hex(KA_V3_V4);
        *pkt.last_mut().unwrap() ^= 0x10;
        assert_eq!(decode_ipv4(&pkt), Err(PacketError::BadChecksum));
        let src: IpAddr = "10.0.0.1".parse().unwrap();
        let dst = IpAddr::V4(MCAST_V4);
        assert_eq!(Advert::decode(&[0x21, 1, 2], src, dst), Err(PacketError::Truncated(3)));
        assert_eq!(Advert::decode(&[0x41, 1, 2, 0, 0, 1, 0, 0], src, dst), Err(PacketError::BadVersion(4)));
        assert_eq!(Advert::decode(&[0x22, 1, 2, 0, 0, 1, 0, 0], src, dst), Err(PacketError::BadType(2)));
        assert!(matches!(Advert::decode(&[0x31, 1, 2, 3, 0, 1, 0, 0], src, dst), Err(PacketError::BadLength { .. })));
        let mut p = hex(KA_V2);
        p[9] = 6;
        assert_eq!(decode_ipv4(&p), Err(PacketError::NotVrrp(6)));
    }

    #[test]
    fn v2_golden_without_auth_and_interval_rules() {
        let a = Advert {
            version: Version::V2,
            vrid: 7,
            priority: 100,
            interval_cs: 300,
            addresses: vec!["192.0.2.10".parse().unwrap()],
            auth: Auth::None,
        };
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let m = a.encode(src, IpAddr::V4(MCAST_V4), ChecksumMode::PseudoHeader).unwrap();
        // Checksum by hand: !(0x2107 + 0x6401 + 0x0003 + 0xc000 + 0x020a) = !0x4716 = 0xb8e9.
        assert_eq!(m, hex("2107 6401 0003 b8e9 c000 020a 0000 0000 0000 0000"));
        let bad = Advert { interval_cs: 150, ..a.clone() };
        assert_eq!(
            bad.encode(src, IpAddr::V4(MCAST_V4), ChecksumMode::PseudoHeader),
            Err(PacketError::BadInterval(150))
        );
        let v6 = Advert { addresses: vec!["fd00::1".parse().unwrap()], ..a };
        assert_eq!(
            v6.encode("fe80::1".parse().unwrap(), IpAddr::V6(MCAST_V6), ChecksumMode::PseudoHeader),
            Err(PacketError::FamilyMismatch)
        );
    }

    #[test]
    fn v3_sub_second_interval_round_trips() {
        let a = Advert {
            version: Version::V3,
            vrid: 9,
            priority: 200,
            interval_cs: 10,
            addresses: vec!["fd00::a".parse().unwrap()],
            auth: Auth::None,
        };
        let (s, d) = ("fe80::2".parse().unwrap(), IpAddr::V6(MCAST_V6));
        let m = a.encode(s, d, ChecksumMode::PseudoHeader).unwrap();
        assert_eq!(&m[4..6], &[0, 10]);
        assert_eq!(Advert::decode(&m, s, d).unwrap().0, a);
        assert_eq!(auth_pass("a-much-longer-password"), *b"a-much-l");
    }

    /// RFC 2202's HMAC-MD5 test cases 1 and 2.
    #[test]
    fn hmac_md5_matches_rfc_2202() {
        let hexs = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hexs(hmac_md5(&[0x0b; 16], &[b"Hi There"])), "9294727a3638bb1c13f48ef8158bfc9d");
        assert_eq!(
            hexs(hmac_md5(b"Jefe", &[b"what do ya ", b"want for nothing?"])),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    // Captured with tcpdump -xx on a veth from Debian's keepalived 2.2.7 (ethernet header
    // stripped): VRRPv2 in AH, vrid 51, prio 150, auth_pass "secret12", int 1 s, two VIPs,
    // sequence number 1.
    const KA_V2_AH: &str = "45c0 0044 0001 0000 ff33 d04f 0a63 0001 e000 0012 7004 0000 0a63 0001 \
                            0000 0001 1907 01f7 d4da 1441 e7ab 20be 2133 9602 0201 313a 0a63 0064 \
                            0a63 0065 0000 0000 0000 0000";

    /// keepalived's own AH advert: read and verified with its password, and the same
    /// bytes come out of [`encode_ipv4_ah`] for the same advert, id and sequence number.
    #[test]
    fn keepalived_s_ah_advert_verifies_and_is_what_we_send() {
        let pkt = hex(KA_V2_AH);
        let r = decode_ipv4(&pkt).unwrap();
        let want = Advert {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addresses: vec!["10.99.0.100".parse().unwrap(), "10.99.0.101".parse().unwrap()],
            auth: Auth::Ah,
        };
        assert_eq!(r.advert, want);
        let ah = r.ah.as_ref().unwrap();
        assert_eq!((ah.spi, ah.seq), ([10, 99, 0, 1], 1));
        assert!(ah.verify(&auth_pass("secret12"), false));
        assert!(!ah.verify(&auth_pass("secret13"), false));
        let (src, dst) = (Ipv4Addr::new(10, 99, 0, 1), MCAST_V4);
        let msg = want.encode(IpAddr::V4(src), IpAddr::V4(dst), ChecksumMode::PseudoHeader).unwrap();
        let ours =
            encode_ipv4_ah(&msg, src, dst, 1, 255, &AhSend { key: auth_pass("secret12"), seq: 1, unicast: false });
        assert_eq!(ours, pkt);
    }

    /// keepalived's `auth_type AH`: protocol 51, AH header (next header 112, length 4,
    /// SPI = source, sequence), VRRP auth type 2; the ICV holds whatever the mutable
    /// fields become on the way (TOS, fragment field, checksum; the TTL for unicast only)
    /// and fails with another password or any other change.
    #[test]
    fn ah_adverts_carry_keepalived_s_header_and_verify() {
        let advert = Advert {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addresses: vec!["10.0.0.100".parse().unwrap()],
            auth: Auth::Ah,
        };
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(224, 0, 0, 18));
        let msg = advert.encode(IpAddr::V4(src), IpAddr::V4(dst), ChecksumMode::PseudoHeader).unwrap();
        assert_eq!(msg[4], 2, "VRRP auth type AH");
        assert_eq!(&msg[12..20], &[0; 8], "no password in the message");
        let key = auth_pass("secret");
        let ah = AhSend { key, seq: 7, unicast: false };
        let p = encode_ipv4_ah(&msg, src, dst, 9, 255, &ah);
        assert_eq!((p[9], usize::from(u16::from_be_bytes([p[2], p[3]]))), (IPPROTO_AH, 20 + AH_LEN + msg.len()));
        assert_eq!(&p[20..32], &[112, 4, 0, 0, 10, 0, 0, 1, 0, 0, 0, 7]);
        assert_eq!(inet_checksum(&[&p[..20]]), 0, "the IP header checksum");
        let r = decode_ipv4(&p).unwrap();
        assert_eq!(r.advert, advert);
        let got = r.ah.as_ref().unwrap();
        assert_eq!((got.spi, got.seq), ([10, 0, 0, 1], 7));
        assert!(got.verify(&key, false));
        assert!(!got.verify(&auth_pass("other"), false), "another password");
        // Mutable fields changed on the way: still valid.
        let mut moved = p.clone();
        moved[1] = 0;
        moved[6] = 0x40;
        moved[10] ^= 0xff;
        assert!(decode_ipv4(&moved).unwrap().ah.unwrap().verify(&key, false));
        // The TTL counts for multicast, not for unicast.
        let mut routed = p.clone();
        routed[8] = 254;
        assert!(!decode_ipv4(&routed).unwrap().ah.unwrap().verify(&key, false));
        let uni = encode_ipv4_ah(&msg, src, dst, 9, 255, &AhSend { unicast: true, ..ah });
        let mut routed = uni.clone();
        routed[8] = 254;
        assert!(decode_ipv4(&routed).unwrap().ah.unwrap().verify(&key, true));
        // Anything else changed: invalid.
        for at in [4, 12, 16, 24, 28, 44, 50] {
            let mut bad = p.clone();
            bad[at] ^= 1;
            if let Ok(r) = decode_ipv4(&bad) {
                assert!(!r.ah.unwrap().verify(&key, false), "byte {at} changed");
            }
        }
        // AH around a message that is not of auth type AH, or type AH without AH: refused.
        let plain = Advert { auth: Auth::None, ..advert.clone() };
        let m = plain.encode(IpAddr::V4(src), IpAddr::V4(dst), ChecksumMode::PseudoHeader).unwrap();
        assert_eq!(decode_ipv4(&encode_ipv4_ah(&m, src, dst, 9, 255, &ah)), Err(PacketError::BadAuthType(0)));
        assert_eq!(decode_ipv4(&encode_ipv4(&msg, src, dst, 9, 255)), Err(PacketError::BadAuthType(2)));
    }
}
