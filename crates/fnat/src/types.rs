//! Small types shared by every part of the core.

use serde::{Deserialize, Serialize};

/// Transport protocols of connections: TCP and UDP, which services serve, and ICMP
/// echo, which only SNAT rules translate (the echo identifier stands for the ports, see
/// [`crate::translate::Tuple`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp = 6,
    /// UDP (IP protocol 17).
    Udp = 17,
    /// ICMP echo request and reply (IP protocol 1; over IPv6, ICMPv6, 58).
    Icmp = 1,
}

impl Proto {
    /// The IP protocol number (over IPv4: ICMP over IPv6 is ICMPv6, 58).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The name listings and configuration use (`tcp`, `udp`, `icmp`).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    /// The transport protocol for an IP protocol number, if services serve it (TCP and
    /// UDP).
    pub fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    /// The protocol of a packet of this family whose IP protocol number is `n`: TCP, UDP,
    /// or ICMP (1 over IPv4, ICMPv6's 58 over IPv6), whose echo messages are the only ones
    /// with a connection (the parsers check the message type).
    pub fn from_number_in(n: u8, ipv6: bool) -> Option<Proto> {
        match (n, ipv6) {
            (1, false) | (58, true) => Some(Proto::Icmp),
            _ => Proto::from_number(n),
        }
    }
}

/// A point on the worker's monotonic clock, in milliseconds. The dataplane derives it
/// from the TSC; tests advance it by hand.
pub type Millis = u64;

/// How connections to a real server are forwarded (ipvsadm's `-b|-m|-g|-i`,
/// keepalived's `lb_kind`), chosen per real server as in IPVS.
///
/// | mode | ipvsadm | listed as | inbound | replies |
/// |---|---|---|---|---|
/// | [`FullNat`](FwdMode::FullNat) | `-b` | `FullNat` | both ends rewritten (LIP:lport → RIP:rport) | through rvs |
/// | [`Nat`](FwdMode::Nat) | `-m` | `Masq` | destination rewritten (→ RIP:rport) | through rvs (the server's gateway) |
/// | [`Dr`](FwdMode::Dr) | `-g` | `Route` | untouched, sent to the server's MAC | server → client directly |
/// | [`Tunnel`](FwdMode::Tunnel) | `-i` | `Tunnel` | untouched, inside an IPIP (IPv6: ip6ip6) header to RIP | server → client directly |
/// | [`Snat`](FwdMode::Snat) | `-J` | `SNAT` | source rewritten (→ WAN:lport) | through rvs |
///
/// NAT keeps the client's address, so the server sees it without TOA; DR and TUN keep
/// the whole packet, so the server must own the VIP (on `lo`, with ARP suppressed); DR
/// needs the server on one of rvs's links, TUN only a route to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[repr(u8)]
pub enum FwdMode {
    /// Full NAT: source and destination rewritten both ways (rvs's default).
    #[default]
    #[serde(rename = "fnat", alias = "fullnat")]
    FullNat = 0,
    /// NAT ("masquerading"): the destination rewritten inbound, the source outbound.
    #[serde(rename = "nat", alias = "masq")]
    Nat = 1,
    /// Direct routing ("gatewaying"): the frame goes unchanged to the server's MAC.
    #[serde(rename = "dr", alias = "route")]
    Dr = 2,
    /// IP-in-IP tunnelling: the packet goes unchanged inside an outer IP header from the
    /// service's first local address to the server.
    #[serde(rename = "tunnel", alias = "tun", alias = "ipip")]
    Tunnel = 3,
    /// Source NAT of a connection a host behind rvs opens to the outside (see
    /// [`crate::snat`]): never a real server's mode, only a connection's.
    #[serde(rename = "snat")]
    Snat = 4,
}

impl FwdMode {
    /// Every mode, in ipvsadm's option order.
    pub const ALL: [FwdMode; 5] = [FwdMode::FullNat, FwdMode::Nat, FwdMode::Dr, FwdMode::Tunnel, FwdMode::Snat];

    /// The name ipvsadm and DPVS's ipvsadm print in the Forward column.
    pub fn listed(self) -> &'static str {
        match self {
            FwdMode::FullNat => "FullNat",
            FwdMode::Nat => "Masq",
            FwdMode::Dr => "Route",
            FwdMode::Tunnel => "Tunnel",
            FwdMode::Snat => "SNAT",
        }
    }

    /// keepalived's `lb_kind` word for the mode.
    pub fn lb_kind(self) -> &'static str {
        match self {
            FwdMode::FullNat => "FNAT",
            FwdMode::Nat => "NAT",
            FwdMode::Dr => "DR",
            FwdMode::Tunnel => "TUN",
            FwdMode::Snat => "SNAT",
        }
    }

    /// The mode as an error message names it (`direct routing (-g, lb_kind DR)`).
    pub fn described(self) -> &'static str {
        match self {
            FwdMode::FullNat => "FullNAT (-b, lb_kind FNAT)",
            FwdMode::Nat => "NAT (-m, lb_kind NAT)",
            FwdMode::Dr => "direct routing (-g, lb_kind DR)",
            FwdMode::Tunnel => "tunnelling (-i, lb_kind TUN)",
            FwdMode::Snat => "SNAT (-J, lb_kind SNAT)",
        }
    }

    /// The mode stored in a connection's byte (unknown values read as FullNAT).
    #[inline]
    pub fn from_u8(v: u8) -> FwdMode {
        match v {
            1 => FwdMode::Nat,
            2 => FwdMode::Dr,
            3 => FwdMode::Tunnel,
            4 => FwdMode::Snat,
            _ => FwdMode::FullNat,
        }
    }

    /// Whether the server's replies come back through rvs (so its TCP state sees both
    /// directions, and sequence numbers can be translated).
    #[inline]
    pub fn replies_through(self) -> bool {
        matches!(self, FwdMode::FullNat | FwdMode::Nat | FwdMode::Snat)
    }

    /// Whether the packet reaches the server unchanged (DR, TUN): the server's port is
    /// the service's.
    #[inline]
    pub fn keeps_packet(self) -> bool {
        matches!(self, FwdMode::Dr | FwdMode::Tunnel)
    }

    /// Whether the service needs local addresses (`laddrs`) for it: FullNAT's source
    /// addresses, the tunnel's source.
    #[inline]
    pub fn needs_local_addrs(self) -> bool {
        matches!(self, FwdMode::FullNat | FwdMode::Tunnel)
    }

    /// Whether rvs picks the source address and port (a LIP and a local port).
    #[inline]
    pub fn uses_local_addr(self) -> bool {
        matches!(self, FwdMode::FullNat | FwdMode::Snat)
    }
}

impl std::fmt::Display for FwdMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.listed())
    }
}
