//! UOA ("UDP option of address", DPVS's): the client's address and port put into the
//! first datagrams of a UDP FullNAT connection, so a real server with DPVS's `uoa`
//! kernel module can tell its UDP clients apart (TCP has the TOA). The formats are in
//! [`wire::uoa`]; this module puts them into a datagram that rvs has translated
//! already (its addresses are the LIP's and the server's).
//!
//! - [`UoaMode::Ipo`]: an IPv4 option (31, 8 bytes for an IPv4 client, 20 for an IPv6
//!   one under NAT64) after the header's own options. Linux ignores an unknown option
//!   on receive, so a server without the module still gets the datagram.
//! - [`UoaMode::Opp`]: a 4-byte shim header and the option between the IP and UDP
//!   headers, IP protocol 248, for IPv4 and IPv6. A server without the module drops
//!   such datagrams (protocol unreachable).
//!
//! Neither changes the UDP header or its checksum (the pseudo-header keeps protocol 17
//! and the UDP length), so a datagram's checksum stays as the translation left it. A
//! datagram that cannot take the option (no room in the IPv4 header's 40 bytes of
//! options, an IPv6 extension header, a result longer than the engine's
//! `grown_max_len`: rvsd's smallest port MTU) is sent without it; the connection's next
//! datagram tries again.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use wire::uoa::{OppRepr, UoaRepr, IPPROTO_OPT};
use wire::IpProtocol;

use crate::buf::PacketBuf;

/// Where the option goes (DPVS's `uoa_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UoaMode {
    /// In the IPv4 header's options (`ipo`; IPv4 real servers only).
    Ipo,
    /// In a shim header of IP protocol 248 (`opp`; IPv4 and IPv6).
    #[default]
    Opp,
}

impl UoaMode {
    /// The name in configuration files and listings.
    pub fn name(self) -> &'static str {
        match self {
            UoaMode::Ipo => "ipo",
            UoaMode::Opp => "opp",
        }
    }

    /// The mode with this name.
    pub fn from_name(s: &str) -> Option<UoaMode> {
        match s {
            "ipo" => Some(UoaMode::Ipo),
            "opp" => Some(UoaMode::Opp),
            _ => None,
        }
    }
}

impl std::fmt::Display for UoaMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a datagram went without the option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoUoa {
    /// No room: the IPv4 options are full, or the packet would grow past the limit, or
    /// the buffer could not grow.
    NoRoom,
    /// Not a plain UDP datagram here (an IPv6 extension header, `ipo` over IPv6).
    Unsuitable,
}

/// Puts the option for client `client` into the translated UDP datagram whose IP header
/// is at `l3`, unless the IP packet would grow past `max_len` bytes; returns how many
/// bytes it grew by. Nothing is changed on error.
pub fn insert<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    mode: UoaMode,
    client: SocketAddr,
    max_len: usize,
) -> Result<usize, NoUoa> {
    let d = buf.data();
    let version = d.get(l3).ok_or(NoUoa::Unsuitable)? >> 4;
    let opt = UoaRepr { src: client };
    let (hlen, proto, ip_len) = match version {
        4 => {
            let h = d.get(l3..l3 + 20).ok_or(NoUoa::Unsuitable)?;
            (usize::from(h[0] & 0x0f) * 4, h[9], usize::from(u16::from_be_bytes([h[2], h[3]])))
        }
        6 => {
            let h = d.get(l3..l3 + 40).ok_or(NoUoa::Unsuitable)?;
            (40, h[6], 40 + usize::from(u16::from_be_bytes([h[4], h[5]])))
        }
        _ => return Err(NoUoa::Unsuitable),
    };
    if proto != IpProtocol::UDP.0 || d.len() < l3 + ip_len {
        return Err(NoUoa::Unsuitable);
    }
    let (n, at) = match mode {
        UoaMode::Ipo if version == 4 => (opt.buffer_len(), l3 + hlen),
        UoaMode::Ipo => return Err(NoUoa::Unsuitable),
        UoaMode::Opp => (OppRepr { protocol: IpProtocol::UDP, uoa: opt }.buffer_len(), l3 + hlen),
    };
    if ip_len + n > max_len || (mode == UoaMode::Ipo && hlen + n > 60) {
        return Err(NoUoa::NoRoom);
    }
    buf.insert_gap(at, n).map_err(|_| NoUoa::NoRoom)?;
    let d = buf.data_mut();
    let wrote = match mode {
        UoaMode::Ipo => opt.emit(&mut d[at..at + n]),
        UoaMode::Opp => OppRepr { protocol: IpProtocol::UDP, uoa: opt }.emit(&mut d[at..at + n]),
    };
    debug_assert_eq!(wrote, Ok(n));
    if version == 4 {
        // The header length or the protocol changes too: the checksum is computed again.
        let mut ip = wire::Ipv4Packet::new_unchecked(&mut d[l3..]);
        if mode == UoaMode::Ipo {
            ip.set_header_len(hlen + n);
        } else {
            ip.set_protocol(IPPROTO_OPT);
        }
        ip.set_total_len((ip_len + n) as u16);
        ip.fill_checksum();
    } else {
        wire::Ipv6Packet::new_unchecked(&mut d[l3..]).set_next_header(IPPROTO_OPT);
        crate::translate::set_ip_len(&mut d[l3..], false, (ip_len - 40) as u16, (ip_len + n - 40) as u16);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use wire::builder::PacketBuilder;
    use wire::uoa::{find_uoa, OppPacket};

    use super::*;
    use crate::buf::VecBuf;

    const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);

    fn client4() -> SocketAddr {
        "192.168.1.10:5353".parse().unwrap()
    }

    fn udp4() -> Vec<u8> {
        PacketBuilder::ipv4(LIP, RIP).ttl(63).udp(1029, 53).payload(b"query").build()
    }

    /// The bytes DPVS's `insert_ipopt_uoa` writes for this datagram: IHL 7, total
    /// length + 8, the option after the 20-byte header, the UDP datagram unchanged.
    #[test]
    fn ipo_puts_the_option_in_the_ipv4_header() {
        let before = udp4();
        let mut b = VecBuf::new(&before);
        assert_eq!(insert(&mut b, 0, UoaMode::Ipo, client4(), 1500), Ok(8));
        let after = b.to_vec();
        assert_eq!(after.len(), before.len() + 8);
        assert_eq!(after[0], 0x47, "IHL 7");
        assert_eq!(u16::from_be_bytes([after[2], after[3]]) as usize, after.len());
        assert_eq!(&after[20..28], &[0x1f, 0x08, 0x14, 0xe9, 192, 168, 1, 10], "the option, as on the wire");
        assert_eq!(&after[28..], &before[20..], "the UDP datagram (and its checksum) unchanged");
        let ip = wire::Ipv4Packet::new_checked(&after[..]).unwrap();
        assert!(ip.verify_checksum(), "the header checksum is recomputed");
        let s = crate::judge::judge(&after);
        assert_eq!((s.src, s.dst, s.sport, s.dport), (LIP.into(), RIP.into(), 1029, 53));
        // An IPv6 client (NAT64): the 20-byte option.
        let c6: SocketAddr = "[2001:db8::7]:4000".parse().unwrap();
        let mut b = VecBuf::new(&before);
        assert_eq!(insert(&mut b, 0, UoaMode::Ipo, c6, 1500), Ok(20));
        let after = b.to_vec();
        assert_eq!(after[0], 0x4a, "IHL 10");
        assert_eq!(find_uoa(&after[20..40]).unwrap().unwrap().src, c6);
    }

    #[test]
    fn opp_puts_a_shim_header_before_udp() {
        let before = udp4();
        let mut b = VecBuf::new(&before);
        assert_eq!(insert(&mut b, 0, UoaMode::Opp, client4(), 1500), Ok(12));
        let after = b.to_vec();
        assert_eq!((after[0], after[9]), (0x45, 248), "IHL 5, protocol 248");
        assert_eq!(
            &after[20..32],
            &[0x10, 17, 0, 12, 0x1f, 0x08, 0x14, 0xe9, 192, 168, 1, 10],
            "version 1, UDP, length 12, the option"
        );
        assert_eq!(&after[32..], &before[20..]);
        assert!(wire::Ipv4Packet::new_checked(&after[..]).unwrap().verify_checksum());
        let opp = OppPacket::new_checked(&after[20..]).unwrap();
        assert_eq!(opp.uoa().unwrap().unwrap().src, client4());
        // IPv6: next header 248, payload length + 24 for an IPv6 client.
        let (l6, r6): (Ipv6Addr, Ipv6Addr) = ("fd00::1".parse().unwrap(), "fd00:2::1".parse().unwrap());
        let before = PacketBuilder::ipv6(l6, r6).udp(1029, 53).payload(b"q6").build();
        let c6: SocketAddr = "[2001:db8::7]:4000".parse().unwrap();
        let mut b = VecBuf::new(&before);
        assert_eq!(insert(&mut b, 0, UoaMode::Opp, c6, 1500), Ok(24));
        let after = b.to_vec();
        assert_eq!(after[6], 248);
        assert_eq!(u16::from_be_bytes([after[4], after[5]]) as usize, after.len() - 40);
        assert_eq!(after[40], 0x20, "version 2: an IPv6 client");
        assert_eq!(OppPacket::new_checked(&after[40..]).unwrap().uoa().unwrap().unwrap().src, c6);
        assert_eq!(&after[64..], &before[40..]);
    }

    #[test]
    fn refusals_leave_the_datagram_alone() {
        let cases: Vec<(&str, Vec<u8>, UoaMode, NoUoa)> = vec![
            (
                "IPv4 options full",
                PacketBuilder::ipv4(LIP, RIP).ipv4_options(&[1; 36]).udp(1, 2).build(),
                UoaMode::Ipo,
                NoUoa::NoRoom,
            ),
            (
                "longer than 1500 with it",
                PacketBuilder::ipv4(LIP, RIP).udp(1, 2).payload(&[0; 1465]).build(),
                UoaMode::Opp,
                NoUoa::NoRoom,
            ),
            (
                "ipo over IPv6",
                PacketBuilder::ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap()).udp(1, 2).build(),
                UoaMode::Ipo,
                NoUoa::Unsuitable,
            ),
            (
                "an IPv6 extension header",
                PacketBuilder::ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
                    .ipv6_ext(IpProtocol(60), &[0; 6])
                    .udp(1, 2)
                    .build(),
                UoaMode::Opp,
                NoUoa::Unsuitable,
            ),
            ("TCP", PacketBuilder::ipv4(LIP, RIP).tcp(1, 2).build(), UoaMode::Opp, NoUoa::Unsuitable),
            ("truncated", udp4()[..10].to_vec(), UoaMode::Opp, NoUoa::Unsuitable),
        ];
        for (what, p, mode, want) in cases {
            let mut b = VecBuf::new(&p);
            assert_eq!(insert(&mut b, 0, mode, client4(), 1500), Err(want), "{what}");
            assert_eq!(b.to_vec(), p, "{what}: untouched");
        }
        // At the limit exactly: fits.
        let p = PacketBuilder::ipv4(LIP, RIP).udp(1, 2).payload(&[0; 1460]).build();
        assert_eq!(insert(&mut VecBuf::new(&p), 0, UoaMode::Ipo, client4(), 1500), Ok(8));
    }
}
