//! What IPv4 and IPv6 share: protocol numbers and the version nibble.

use core::fmt;

/// An IP protocol number (IPv4 `protocol`, IPv6 `next header`). A newtype rather than
/// an enum so that every one of the 256 values round-trips unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// IPv6 hop-by-hop options extension header.
    pub const HOPOPTS: IpProtocol = IpProtocol(0);
    /// Internet Control Message Protocol (IPv4).
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// Transmission Control Protocol.
    pub const TCP: IpProtocol = IpProtocol(6);
    /// IPv4 inside IPv4 (IPIP, RFC 2003): LVS tunnel mode.
    pub const IPIP: IpProtocol = IpProtocol(4);
    /// IPv6 inside IP (RFC 2473): LVS tunnel mode for IPv6.
    pub const IPV6: IpProtocol = IpProtocol(41);
    /// User Datagram Protocol.
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 routing extension header.
    pub const ROUTING: IpProtocol = IpProtocol(43);
    /// IPv6 fragment extension header.
    pub const FRAGMENT: IpProtocol = IpProtocol(44);
    /// Encapsulating Security Payload (opaque: nothing after it can be read).
    pub const ESP: IpProtocol = IpProtocol(50);
    /// Authentication Header (an extension header in IPv6).
    pub const AH: IpProtocol = IpProtocol(51);
    /// ICMP for IPv6.
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// IPv6 "no next header".
    pub const NONE: IpProtocol = IpProtocol(59);
    /// IPv6 destination options extension header.
    pub const DSTOPTS: IpProtocol = IpProtocol(60);

    /// Whether an IPv6 packet continues with another header of this type that the
    /// extension-header walk steps over (hop-by-hop, routing, fragment, destination
    /// options, AH).
    pub const fn is_ipv6_extension(self) -> bool {
        matches!(self.0, 0 | 43 | 44 | 51 | 60)
    }
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        IpProtocol(v)
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> Self {
        v.0
    }
}

impl fmt::Debug for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0 => "HopByHop",
            1 => "Icmp",
            6 => "Tcp",
            17 => "Udp",
            43 => "Routing",
            44 => "Fragment",
            50 => "Esp",
            51 => "Ah",
            58 => "Icmpv6",
            59 => "NoNextHeader",
            60 => "DstOpts",
            n => return write!(f, "IpProtocol({n})"),
        };
        f.write_str(name)
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("icmp"),
            6 => f.write_str("tcp"),
            17 => f.write_str("udp"),
            58 => f.write_str("icmpv6"),
            n => write!(f, "{n}"),
        }
    }
}

/// The IP version of a packet, read from its first nibble before choosing a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVersion {
    /// The version of the IP packet starting at `data[0]`, or `None` if the buffer is
    /// empty or the nibble is neither 4 nor 6.
    pub fn of(data: &[u8]) -> Option<IpVersion> {
        match data.first()? >> 4 {
            4 => Some(IpVersion::V4),
            6 => Some(IpVersion::V6),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_and_classes() {
        assert_eq!(format!("{:?}", IpProtocol::TCP), "Tcp");
        assert_eq!(format!("{:?}", IpProtocol(200)), "IpProtocol(200)");
        assert_eq!(IpProtocol::UDP.to_string(), "udp");
        assert!(IpProtocol::FRAGMENT.is_ipv6_extension());
        assert!(!IpProtocol::TCP.is_ipv6_extension());
        assert!(!IpProtocol::ESP.is_ipv6_extension());
        assert_eq!(u8::from(IpProtocol::from(58)), 58);
    }

    #[test]
    fn version_nibble() {
        assert_eq!(IpVersion::of(&[0x45]), Some(IpVersion::V4));
        assert_eq!(IpVersion::of(&[0x60, 0]), Some(IpVersion::V6));
        assert_eq!(IpVersion::of(&[0x50]), None);
        assert_eq!(IpVersion::of(&[]), None);
    }
}
