//! Zero-copy packet views, emitters and checksums for rvs.
//!
//! One module per protocol, in the style of smoltcp's `wire`: a view such as
//! [`Ipv4Packet`] wraps any `T: AsRef<[u8]>` (a slice of a DPDK mbuf, a `Vec<u8>` in
//! tests) and reads or writes named fields in place. Nothing here allocates or panics
//! on the per-packet path:
//!
//! * `Packet::new_unchecked` wraps a buffer without looking at it; accessors of fixed
//!   fields may then panic if the buffer is too short.
//! * `Packet::new_checked` validates the lengths once; after it succeeds **no accessor
//!   panics**, including option iteration, extension-header walks and payload access.
//!   Variable-length regions (options, payloads) are additionally clamped to the buffer,
//!   so they stay panic-free even after a setter changed a length field.
//! * Setters exist on `T: AsMut<[u8]>`. They never touch checksums; use
//!   `fill_checksum` or the incremental updates in [`checksum`].
//! * Where a structured form is useful (ARP, IPv4, IPv6, Ethernet, neighbour
//!   discovery) a `Repr` offers `parse` and `emit`.
//! * What a FullNAT balancer adds so that a real server learns the client's address
//!   has its own modules: [`proxy`] (the HAProxy PROXY protocol header, v1 and v2) and
//!   [`uoa`] (DPVS's UDP option of address: an IPv4 option, or the "option protocol"
//!   shim header). Their `emit` writes into a caller's slice and returns the length,
//!   `Error::Truncated` if the slice is too short.
//! * [`sync`] is rvs's own connection synchronisation message between balancers.
//!
//! The `builder` feature adds `builder::PacketBuilder`, an allocating fluent builder
//! of valid packets for tests and tools.

use core::fmt;
use core::str::FromStr;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod proxy;
pub mod sync;
pub mod tcp;
pub mod udp;
pub mod uoa;
pub mod vlan;

#[cfg(feature = "builder")]
pub mod builder;

pub use arp::{ArpRepr, Operation as ArpOperation, Packet as ArpPacket};
pub use ethernet::{EtherType, EthernetRepr, Frame as EthernetFrame};
pub use icmpv4::{Message as Icmpv4Message, Packet as Icmpv4Packet};
pub use icmpv6::{Message as Icmpv6Message, NdiscFlags, NdiscRepr, Packet as Icmpv6Packet};
pub use ip::{IpProtocol, IpVersion};
pub use ipv4::{Ipv4Repr, Packet as Ipv4Packet};
pub use ipv6::{Ipv6Repr, Packet as Ipv6Packet, UpperLayer};
pub use proxy::{Packet as ProxyV2Packet, ProxyHeader, ProxyRepr, ProxyTransport, ProxyVersion};
pub use tcp::{Packet as TcpPacket, TcpFlags, TcpOption};
pub use udp::Packet as UdpPacket;
pub use uoa::{OppPacket, OppRepr, UoaOption, UoaRepr};
pub use vlan::Packet as VlanPacket;

/// Why a buffer could not be viewed or parsed as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field says.
    Truncated,
    /// A field holds a value that cannot be right (wrong version, a length below the
    /// minimum, a malformed option or extension header).
    Malformed,
    /// The checksum does not match the contents.
    Checksum,
    /// Well-formed, but not something this crate handles (e.g. ARP for a hardware
    /// type other than Ethernet).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Checksum => "bad checksum",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for Error {}

/// The result of parsing or viewing a packet.
pub type Result<T> = core::result::Result<T, Error>;

/// A 48-bit Ethernet (MAC) address. Displays and parses as `aa:bb:cc:dd:ee:ff`, and is
/// (de)serialised in that form, so configuration files read naturally.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The all-zero address, used e.g. as the unknown target of an ARP request.
    pub const UNSPECIFIED: EthernetAddress = EthernetAddress([0; 6]);

    /// The address from the first six bytes of `data`, or `None` if it is shorter.
    pub fn from_bytes(data: &[u8]) -> Option<EthernetAddress> {
        let b: [u8; 6] = data.get(..6)?.try_into().ok()?;
        Some(EthernetAddress(b))
    }

    /// The six address bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast, including broadcast).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the locally administered bit is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The multicast MAC an IPv6 multicast address maps to (RFC 2464: `33:33` and the
    /// low 32 bits), e.g. for a neighbour solicitation to a solicited-node address.
    pub fn from_ipv6_multicast(addr: std::net::Ipv6Addr) -> EthernetAddress {
        let o = addr.octets();
        EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not an Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseEthernetAddressError;

impl fmt::Display for ParseEthernetAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid Ethernet address (expected six hex bytes like aa:bb:cc:dd:ee:ff)")
    }
}

impl std::error::Error for ParseEthernetAddressError {}

impl FromStr for EthernetAddress {
    type Err = ParseEthernetAddressError;

    /// Parses six hex bytes of one or two digits separated by `:` or `-`.
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in out.iter_mut() {
            let part = parts.next().ok_or(ParseEthernetAddressError)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(ParseEthernetAddressError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ParseEthernetAddressError)?;
        }
        if parts.next().is_some() {
            return Err(ParseEthernetAddressError);
        }
        Ok(EthernetAddress(out))
    }
}

impl serde::Serialize for EthernetAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EthernetAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = EthernetAddress;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an Ethernet address like aa:bb:cc:dd:ee:ff")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> core::result::Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// Reads a big-endian `u16` at `at`. Panics if out of range: only for fields whose
/// presence a `check_len` has established.
#[inline]
pub(crate) fn get_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Reads a big-endian `u32` at `at` (same contract as [`get_u16`]).
#[inline]
pub(crate) fn get_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Writes a big-endian `u16` at `at` (same contract as [`get_u16`]).
#[inline]
pub(crate) fn put_u16(data: &mut [u8], at: usize, v: u16) {
    data[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian `u32` at `at` (same contract as [`get_u16`]).
#[inline]
pub(crate) fn put_u32(data: &mut [u8], at: usize, v: u32) {
    data[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// `&data[start..end]` with both ends clamped to the buffer: never panics.
#[inline]
pub(crate) fn clamped(data: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(data.len());
    let start = start.min(end);
    &data[start..end]
}

/// The mutable counterpart of [`clamped`].
#[inline]
pub(crate) fn clamped_mut(data: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    let end = end.min(data.len());
    let start = start.min(end);
    &mut data[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_parse_roundtrip() {
        let m = EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0xab, 0xff]);
        assert_eq!(m.to_string(), "02:00:5e:10:ab:ff");
        assert_eq!("02:00:5e:10:ab:ff".parse::<EthernetAddress>(), Ok(m));
        assert_eq!("02-00-5E-10-AB-FF".parse::<EthernetAddress>(), Ok(m));
        assert_eq!("2:0:5e:10:ab:ff".parse::<EthernetAddress>(), Ok(m));
        for bad in
            ["", "02:00:5e:10:ab", "02:00:5e:10:ab:ff:00", "02:00:5e:10:ab:fg", "020:0:5e:10:ab:ff", "+2:0:5e:10:ab:ff"]
        {
            assert!(bad.parse::<EthernetAddress>().is_err(), "{bad}");
        }
        assert!(m.is_local() && m.is_unicast() && !m.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert_eq!(EthernetAddress::from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn mac_multicast_for_ipv6() {
        let a: std::net::Ipv6Addr = "ff02::1:ff00:1234".parse().unwrap();
        assert_eq!(EthernetAddress::from_ipv6_multicast(a), EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x12, 0x34]));
    }
}
