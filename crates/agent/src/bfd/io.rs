//! BFD's sockets (RFC 5881): one listening socket per family on port 3784 that hands each
//! datagram over with its source, destination and TTL / hop limit, and one sending socket
//! per session, from a port in 49152..=65535, with the session's TTL.

use super::packet::CONTROL_PORT;
use nix::sys::socket::{self as nixsock, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The source ports of BFD control packets (RFC 5881 section 4).
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// The listening sockets' receive buffer: about 5,000 datagrams queued, so that a burst
/// of packets that reach no session (forged, flooded) does not overflow it and crowd out
/// a neighbour's packet for a detection time.
const RECV_BUFFER: usize = 4 << 20;

/// A datagram received on port 3784.
#[derive(Debug, Clone, Copy)]
pub struct Datagram {
    /// Its length in the buffer.
    pub len: usize,
    /// Who sent it.
    pub src: IpAddr,
    /// The address it was sent to (unspecified if the kernel did not say).
    pub dst: IpAddr,
    /// Its TTL / hop limit on arrival (0 if the kernel did not say).
    pub ttl: u8,
}

/// The listening socket of one family.
pub struct Listener {
    fd: AsyncFd<Socket>,
    v6: bool,
}

fn nix_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from(e)
}

impl Listener {
    /// Binds `*:3784` (`[::]:3784` IPv6 only, for `v6`) asking for the TTL and the
    /// destination of each datagram. Must be called inside a tokio runtime.
    pub fn open(v6: bool) -> io::Result<Listener> {
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        let any: SocketAddr = match v6 {
            true => (Ipv6Addr::UNSPECIFIED, CONTROL_PORT).into(),
            false => (Ipv4Addr::UNSPECIFIED, CONTROL_PORT).into(),
        };
        if v6 {
            s.set_only_v6(true)?;
            nixsock::setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true).map_err(nix_err)?;
            nixsock::setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true).map_err(nix_err)?;
        } else {
            nixsock::setsockopt(&s, sockopt::Ipv4RecvTtl, &true).map_err(nix_err)?;
            nixsock::setsockopt(&s, sockopt::Ipv4PacketInfo, &true).map_err(nix_err)?;
        }
        // Past net.core.rmem_max when allowed (root: SO_RCVBUFFORCE), else as large as
        // the kernel grants.
        if nixsock::setsockopt(&s, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
            let _ = s.set_recv_buffer_size(RECV_BUFFER);
        }
        s.bind(&SockAddr::from(any))?;
        s.set_nonblocking(true)?;
        // `AsyncFd::new` is deprecated because a caller could hand it an object whose raw
        // fd changes or closes; a `socket2::Socket` owns its fd for its whole life.
        #[allow(deprecated)]
        let fd = AsyncFd::new(s)?;
        Ok(Listener { fd, v6 })
    }

    /// Receives the next datagram into `buf` (a longer one is cut: its length then says
    /// more than the buffer holds, and the packet check refuses it).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        let v6 = self.v6;
        self.fd
            .async_io(Interest::READABLE, |s| {
                let mut iov = [IoSliceMut::new(buf)];
                let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::c_int);
                let m =
                    nixsock::recvmsg::<SockaddrStorage>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_TRUNC)
                        .map_err(nix_err)?;
                let mut dst = if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
                let mut ttl = 0u8;
                for c in m.cmsgs().map_err(nix_err)? {
                    match c {
                        ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                            ttl = t.clamp(0, 255) as u8
                        }
                        ControlMessageOwned::Ipv4PacketInfo(pi) => {
                            dst = IpAddr::V4(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr)))
                        }
                        ControlMessageOwned::Ipv6PacketInfo(pi) => {
                            dst = IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr))
                        }
                        _ => {}
                    }
                }
                let src = m
                    .address
                    .and_then(|a| match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
                        (Some(a4), _) => Some(IpAddr::V4(a4.ip())),
                        (_, Some(a6)) => Some(IpAddr::V6(a6.ip())),
                        _ => None,
                    })
                    .ok_or_else(|| io::Error::other("datagram without a source address"))?;
                Ok(Datagram { len: m.bytes, src, dst, ttl })
            })
            .await
    }
}

/// A session's sending socket: bound to its source address (or any) and a free port of
/// RFC 5881's range, connected to the neighbour's port 3784, sending with `ttl`.
pub fn sender(neighbor: IpAddr, source: Option<IpAddr>, ttl: u8, seed: u64) -> io::Result<UdpSocket> {
    let domain = if neighbor.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if neighbor.is_ipv6() {
        s.set_unicast_hops_v6(u32::from(ttl))?;
    } else {
        s.set_ttl_v4(u32::from(ttl))?;
    }
    let ip = source.unwrap_or(match neighbor {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    // Start from a random port of the range and take the first free one.
    let span = u64::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for i in 0..span {
        let port = SOURCE_PORTS.start() + ((seed.wrapping_add(i)) % span) as u16;
        match s.bind(&SockAddr::from(SocketAddr::new(ip, port))) {
            Ok(()) => {
                s.connect(&SockAddr::from(SocketAddr::new(neighbor, CONTROL_PORT)))?;
                s.set_nonblocking(true)?;
                return UdpSocket::from_std(s.into());
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
