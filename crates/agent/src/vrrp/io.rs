//! Sending and receiving adverts on a Linux interface: a raw IP socket for protocol 112,
//! bound to the interface, TTL / hop limit 255, joined to 224.0.0.18 / ff02::12 (or the
//! configured groups), or sending to unicast peers.
//!
//! IPv4 uses `IP_HDRINCL` so the source address (the interface's primary address or
//! `unicast_src_ip`) and the IP header are exactly as keepalived sends them. IPv6 sends
//! from the interface's link-local address (RFC 5798 5.1.2.1) and reads the destination
//! and hop limit from ancillary data, because raw IPv6 sockets deliver no header.

use super::packet::{self, Advert, AhSend, ChecksumMode, PacketError, Received};
use nix::sys::socket::{self as nixsock, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSliceMut, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A socket-level failure.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The interface has no usable address of the family.
    #[error("interface {0} has no {1} address")]
    NoAddress(String, &'static str),
    /// A packet could not be encoded.
    #[error("encode: {0}")]
    Packet(#[from] PacketError),
    /// keepalived's `unicast_fault_no_peer` with no peer: no socket, the instance stays in
    /// FAULT (instead of falling back to multicast).
    #[error("unicast_fault_no_peer: no unicast peer to talk to")]
    NoUnicastPeer,
}

impl IoError {
    /// Whether trying again cannot help (no permission for raw sockets): the agent stops.
    /// Anything else (the interface missing, down, without an address) may be cured by
    /// the interface (re)appearing, as rvsd's twins do when rvsd (re)starts.
    pub fn is_permanent(&self) -> bool {
        matches!(self, IoError::Sys { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
    }
}

fn sys(what: impl Into<String>) -> impl FnOnce(io::Error) -> IoError {
    let what = what.into();
    move |source| IoError::Sys { what, source }
}

/// Where and how a socket talks.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// Interface name (rvsd's kernel twin, or a veth in tests).
    pub interface: String,
    /// IPv6 (VRRPv3) or IPv4.
    pub ipv6: bool,
    /// Source address; the interface's primary IPv4 or link-local IPv6 when `None`.
    pub src: Option<IpAddr>,
    /// Unicast peers; multicast when empty.
    pub unicast_peers: Vec<IpAddr>,
    /// IPv4 multicast group.
    pub mcast4: Ipv4Addr,
    /// IPv6 multicast group.
    pub mcast6: Ipv6Addr,
    /// keepalived's `unicast_ttl`: the TTL / hop limit of unicast adverts (255 when none).
    pub unicast_ttl: Option<u8>,
    /// keepalived's `unicast_fault_no_peer`: without peers, no socket (FAULT) rather than
    /// multicast.
    pub unicast_only: bool,
    /// `auth_type AH`: adverts travel in IPsec AH (IP protocol 51), sent and received.
    pub ah: bool,
}

/// A raw VRRP socket on one interface.
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    src: IpAddr,
    dsts: Vec<IpAddr>,
    ip_id: AtomicU16,
    /// The IPv4 TTL its adverts carry.
    ttl: u8,
}

/// The first address of a family on an interface (IPv6: link-local only).
pub fn interface_address(interface: &str, ipv6: bool) -> Result<IpAddr, IoError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| sys("getifaddrs")(e.into()))?;
    for a in addrs.filter(|a| a.interface_name == interface) {
        let Some(s) = a.address else { continue };
        if ipv6 {
            if let Some(s6) = s.as_sockaddr_in6() {
                let ip = s6.ip();
                if ip.segments()[0] & 0xffc0 == 0xfe80 {
                    return Ok(IpAddr::V6(ip));
                }
            }
        } else if let Some(s4) = s.as_sockaddr_in() {
            return Ok(IpAddr::V4(s4.ip()));
        }
    }
    Err(IoError::NoAddress(interface.to_string(), if ipv6 { "link-local IPv6" } else { "IPv4" }))
}

/// The interface's index.
pub fn interface_index(interface: &str) -> Result<u32, IoError> {
    nix::net::if_::if_nametoindex(interface).map_err(|e| sys(format!("if_nametoindex {interface}"))(e.into()))
}

impl VrrpSocket {
    /// Opens, binds and joins. Must be called inside a tokio runtime.
    pub fn open(cfg: &SocketConfig) -> Result<VrrpSocket, IoError> {
        if cfg.unicast_only && cfg.unicast_peers.is_empty() {
            return Err(IoError::NoUnicastPeer);
        }
        let ifindex = interface_index(&cfg.interface)?;
        let src = match cfg.src {
            Some(s) => s,
            None => interface_address(&cfg.interface, cfg.ipv6)?,
        };
        let domain = if cfg.ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        let proto = if cfg.ah { packet::IPPROTO_AH } else { packet::IPPROTO_VRRP };
        let s = Socket::new(domain, Type::RAW, Some(Protocol::from(i32::from(proto))))
            .map_err(sys(format!("socket(raw, {proto})")))?;
        s.bind_device(Some(cfg.interface.as_bytes())).map_err(sys(format!("SO_BINDTODEVICE {}", cfg.interface)))?;
        let dsts = if cfg.unicast_peers.is_empty() {
            if cfg.ipv6 {
                s.join_multicast_v6(&cfg.mcast6, ifindex).map_err(sys(format!("join {}", cfg.mcast6)))?;
                s.set_multicast_if_v6(ifindex).map_err(sys("IPV6_MULTICAST_IF"))?;
                s.set_multicast_loop_v6(false).map_err(sys("IPV6_MULTICAST_LOOP"))?;
                vec![IpAddr::V6(cfg.mcast6)]
            } else {
                let IpAddr::V4(src4) = src else { return Err(IoError::NoAddress(cfg.interface.clone(), "IPv4")) };
                s.join_multicast_v4_n(&cfg.mcast4, &InterfaceIndexOrAddress::Index(ifindex))
                    .map_err(sys(format!("join {}", cfg.mcast4)))?;
                s.set_multicast_if_v4(&src4).map_err(sys("IP_MULTICAST_IF"))?;
                s.set_multicast_loop_v4(false).map_err(sys("IP_MULTICAST_LOOP"))?;
                vec![IpAddr::V4(cfg.mcast4)]
            }
        } else {
            cfg.unicast_peers.clone()
        };
        if cfg.ipv6 {
            s.set_multicast_hops_v6(u32::from(packet::VRRP_TTL)).map_err(sys("IPV6_MULTICAST_HOPS"))?;
            let hops = cfg.unicast_ttl.unwrap_or(packet::VRRP_TTL);
            s.set_unicast_hops_v6(u32::from(hops)).map_err(sys("IPV6_UNICAST_HOPS"))?;
            let IpAddr::V6(src6) = src else { return Err(IoError::NoAddress(cfg.interface.clone(), "IPv6")) };
            let scope = if src6.segments()[0] & 0xffc0 == 0xfe80 { ifindex } else { 0 };
            s.bind(&SockAddr::from(SocketAddrV6::new(src6, 0, 0, scope))).map_err(sys(format!("bind {src6}")))?;
            nixsock::setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(|e| sys("IPV6_RECVPKTINFO")(e.into()))?;
            nixsock::setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)
                .map_err(|e| sys("IPV6_RECVHOPLIMIT")(e.into()))?;
        } else {
            s.set_header_included_v4(true).map_err(sys("IP_HDRINCL"))?;
        }
        s.set_nonblocking(true).map_err(sys("O_NONBLOCK"))?;
        // `AsyncFd::new` is deprecated because a caller could hand it an object whose raw fd
        // changes or closes; a `socket2::Socket` owns its fd for its whole life, so the
        // contract of `AsyncFd::register` holds here without `unsafe`.
        #[allow(deprecated)]
        let fd = AsyncFd::new(s).map_err(sys("register with tokio"))?;
        let ttl =
            if cfg.unicast_peers.is_empty() { packet::VRRP_TTL } else { cfg.unicast_ttl.unwrap_or(packet::VRRP_TTL) };
        Ok(VrrpSocket { fd, src, dsts, ip_id: AtomicU16::new(1), ttl })
    }

    /// Our source address (used in the checksum and to ignore our own adverts).
    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Sends an advert to the group or to every unicast peer (in AH with `ah`, the same
    /// sequence number to each, as keepalived).
    pub async fn send(&self, advert: &Advert, mode: ChecksumMode, ah: Option<AhSend>) -> Result<(), IoError> {
        for &dst in &self.dsts {
            let msg = advert.encode(self.src, dst, mode)?;
            let (bytes, to) = match (self.src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    // Never 0: the kernel would choose the id then, after the AH ICV took it.
                    let id = match self.ip_id.fetch_add(1, Ordering::Relaxed) {
                        0 => self.ip_id.fetch_add(1, Ordering::Relaxed),
                        id => id,
                    };
                    let p = match &ah {
                        Some(ah) => packet::encode_ipv4_ah(&msg, s, d, id, self.ttl, ah),
                        None => packet::encode_ipv4(&msg, s, d, id, self.ttl),
                    };
                    (p, SocketAddr::V4(SocketAddrV4::new(d, 0)))
                }
                (_, IpAddr::V6(d)) => (msg, SocketAddr::V6(SocketAddrV6::new(d, 0, 0, 0))),
                _ => return Err(IoError::Packet(PacketError::FamilyMismatch)),
            };
            let to = SockAddr::from(to);
            self.fd
                .async_io(Interest::WRITABLE, |s| s.send_to(&bytes, &to))
                .await
                .map_err(sys(format!("send to {dst}")))?;
        }
        Ok(())
    }

    /// Receives the next packet: `Ok(Err(_))` for a packet that was read but refused (bad
    /// TTL, checksum...), so the caller can log and count it.
    pub async fn recv(&self) -> Result<Result<Received, PacketError>, IoError> {
        let mut buf = [0u8; 2048];
        if self.src.is_ipv4() {
            let n = self.fd.async_io(Interest::READABLE, |s| (&*s).read(&mut buf)).await.map_err(sys("recv"))?;
            return Ok(packet::decode_ipv4(&buf[..n]));
        }
        let (n, src, dst, hops) = self
            .fd
            .async_io(Interest::READABLE, |s| {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::c_int);
                let m = nixsock::recvmsg::<SockaddrIn6>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
                    .map_err(io::Error::from)?;
                let mut dst = Ipv6Addr::UNSPECIFIED;
                let mut hops = 0u8;
                for c in m.cmsgs().map_err(io::Error::from)? {
                    match c {
                        ControlMessageOwned::Ipv6PacketInfo(pi) => dst = Ipv6Addr::from(pi.ipi6_addr.s6_addr),
                        ControlMessageOwned::Ipv6HopLimit(h) => hops = h.clamp(0, 255) as u8,
                        _ => {}
                    }
                }
                let src = m.address.map(|a| a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
                Ok((m.bytes, src, dst, hops))
            })
            .await
            .map_err(sys("recvmsg"))?;
        Ok(packet::decode_ipv6(&buf[..n], src, dst, hops))
    }
}
