//! PING_CHECK: one ICMP (IPv4) or ICMPv6 echo request, up when the matching echo reply
//! comes back within connect_timeout. An unprivileged ICMP datagram socket is used where
//! the kernel allows it (`net.ipv4.ping_group_range`), else a raw socket (root). Replies
//! are matched by sequence number and a random payload, since a datagram socket's kernel
//! rewrites the identifier.

use super::CheckError;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The Internet checksum of `b`.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo request: type, code, checksum, id, sequence, 16 bytes of `token`.
fn echo_request(v6: bool, id: u16, seq: u16, token: &[u8; 16]) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(token);
    if !v6 {
        // ICMPv6's checksum covers a pseudo-header: the kernel fills it in.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `msg` (with its IPv4 header when `raw` v4) is the reply to our request.
fn is_reply(msg: &[u8], v6: bool, raw: bool, seq: u16, token: &[u8; 16]) -> bool {
    let icmp = if raw && !v6 {
        match msg.first() {
            Some(b) if b >> 4 == 4 => msg.get(usize::from(b & 0x0f) * 4..).unwrap_or_default(),
            _ => return false,
        }
    } else {
        msg
    };
    icmp.len() >= 24
        && icmp[0] == if v6 { 129 } else { 0 }
        && icmp[6..8] == seq.to_be_bytes()
        && icmp[8..24] == token[..]
}

/// An ICMP socket for `target`'s family: datagram if allowed, else raw.
fn socket(v6: bool) -> std::io::Result<(Socket, bool)> {
    let (domain, proto) = if v6 { (Domain::IPV6, Protocol::ICMPV6) } else { (Domain::IPV4, Protocol::ICMPV4) };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, false)),
        Err(_) => Socket::new(domain, Type::RAW, Some(proto)).map(|s| (s, true)),
    }
}

/// One PING_CHECK attempt.
pub async fn check(target: IpAddr, bindto: Option<IpAddr>, timeout: Duration) -> Result<(), CheckError> {
    let v6 = target.is_ipv6();
    let (sock, raw) = socket(v6).map_err(CheckError::Io)?;
    sock.set_nonblocking(true).map_err(CheckError::Io)?;
    if let Some(b) = bindto {
        sock.bind(&SockAddr::from(SocketAddr::new(b, 0))).map_err(CheckError::Io)?;
    }
    sock.connect(&SockAddr::from(SocketAddr::new(target, 0))).map_err(CheckError::Io)?;
    // An ICMP socket is a datagram socket to tokio: send and recv are all it needs.
    let sock = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock)).map_err(CheckError::Io)?;
    let mut token = [0u8; 16];
    for c in token.chunks_mut(8) {
        c.copy_from_slice(&crate::random::u64().to_be_bytes());
    }
    let (id, seq) = (u16::from_be_bytes([token[0], token[1]]), u16::from_be_bytes([token[2], token[3]]));
    sock.send(&echo_request(v6, id, seq, &token)).await.map_err(CheckError::Io)?;
    let wait = async {
        let mut b = [0u8; 1500];
        loop {
            let n = sock.recv(&mut b).await.map_err(CheckError::Io)?;
            if is_reply(&b[..n], v6, raw, seq, &token) {
                return Ok(());
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.unwrap_or(Err(CheckError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request() {
        let p = echo_request(false, 0x1234, 1, &[0; 16]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to 0");
        let mut reply = p.clone();
        reply[0] = 0;
        assert!(is_reply(&reply, false, false, 1, &[0; 16]));
        assert!(!is_reply(&p, false, false, 1, &[0; 16]), "our own request is not the reply");
        assert!(!is_reply(&reply, false, false, 2, &[0; 16]));
    }

    #[tokio::test]
    async fn loopback_answers() {
        check("127.0.0.1".parse().unwrap(), None, Duration::from_secs(1)).await.unwrap();
    }
}
