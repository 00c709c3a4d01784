//! Why a per-packet function refused a frame. One error type for the ARP, ND and ICMP
//! functions, so that a worker can count refusals by kind without caring which
//! responder produced them.

/// Why a per-packet function (classifier, responder or builder) did not produce a
/// packet. Malformed input is reported here, never panicked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PacketError {
    /// The bytes could not be viewed as the expected packet (truncated, malformed, bad
    /// checksum, unsupported variant), as reported by [`wire`].
    #[error("{0}")]
    Wire(#[from] wire::Error),
    /// Not the protocol this function handles (e.g. an IPv4 frame given to the ARP
    /// classifier, a VLAN-tagged frame, a TCP segment given to the echo responder).
    #[error("not the protocol this function handles")]
    WrongProtocol,
    /// The right protocol but the wrong message (e.g. an ARP reply given to
    /// [`crate::arp::reply_in_place`], an echo reply given to the echo responder).
    #[error("not the message this function answers")]
    WrongMessage,
    /// A received neighbour discovery message whose hop limit is not 255: it may have
    /// been forwarded by a router, so RFC 4861 says to ignore it.
    #[error("neighbour discovery with hop limit {0} (must be 255)")]
    BadHopLimit(u8),
    /// The sender cannot be answered or learned: a multicast or broadcast MAC, a
    /// multicast, broadcast, unspecified or loopback IP source.
    #[error("sender address cannot be answered")]
    BadSender,
    /// Well-formed but invalid by the protocol's rules (e.g. a neighbour solicitation
    /// for a multicast target, or one from the unspecified address that carries a
    /// source link-layer option).
    #[error("invalid by the protocol's rules")]
    Invalid,
    /// The output buffer is too small for the packet.
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// An ICMP error must not be sent about this packet (RFC 1122 3.2.2, RFC 4443
    /// 2.4(e)). Not a fault: the caller drops the offending packet quietly.
    #[error("no ICMP error about this packet: {0}")]
    Suppressed(Suppressed),
}

/// Why no ICMP error is sent about a packet (see [`PacketError::Suppressed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Suppressed {
    /// The packet is itself an ICMP error (or an ICMPv6 redirect): errors about errors
    /// could loop forever.
    #[error("it is an ICMP error")]
    IcmpError,
    /// The packet is a fragment other than the first: only the first one carries the
    /// transport header the receiver needs to match the error to a socket.
    #[error("it is a non-first fragment")]
    NonFirstFragment,
    /// The source does not name a single host (multicast, broadcast, unspecified,
    /// loopback, class E): the error would go nowhere or everywhere.
    #[error("its source is not a single host")]
    SourceNotHost,
    /// The packet was sent to a multicast or broadcast address (allowed in IPv6 only
    /// for packet-too-big and parameter-problem code 2).
    #[error("it was sent to a multicast or broadcast address")]
    MulticastDestination,
}

/// The result of a per-packet function.
pub type Result<T> = core::result::Result<T, PacketError>;

/// Checks that an output buffer holds `need` bytes.
pub(crate) fn need(out: &[u8], need: usize) -> Result<()> {
    if out.len() < need {
        Err(PacketError::BufferTooSmall { need, have: out.len() })
    } else {
        Ok(())
    }
}
