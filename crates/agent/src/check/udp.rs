//! UDP_CHECK as keepalived 2.2.7: a datagram (`payload`, else 32 bytes of text) goes to
//! the real server over a connected socket. An ICMP port unreachable (the kernel reports
//! it as a refused receive) means down; silence means up unless `require_reply`; with
//! `require_reply HEX` the answer must match (wildcard nibbles allowed) and be
//! `min_reply_length`..=`max_reply_length` long.

use super::CheckError;
use crate::keepalived::config::HexPattern;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// What keepalived sends without a `payload`: 32 bytes of this text, repeated.
const DEFAULT_TEXT: &[u8] = b"keepalived check - ";

/// What to send and to expect.
#[derive(Debug, Clone, Copy)]
pub struct UdpExpect<'a> {
    /// The datagram (the default text when `None`).
    pub payload: Option<&'a [u8]>,
    /// An answer is needed.
    pub require_reply: bool,
    /// What the answer must start with.
    pub reply: Option<&'a HexPattern>,
    /// Shortest answer accepted (with `reply`).
    pub min_len: u16,
    /// Longest answer accepted (with `reply`).
    pub max_len: u16,
}

/// A socket connected to `target` (from `bindto` when given).
pub async fn connected(target: SocketAddr, bindto: Option<IpAddr>) -> Result<UdpSocket, CheckError> {
    let local = bindto.unwrap_or(if target.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    });
    let s = UdpSocket::bind(SocketAddr::new(local, 0)).await.map_err(CheckError::Io)?;
    s.connect(target).await.map_err(CheckError::Io)?;
    Ok(s)
}

/// One UDP_CHECK attempt.
pub async fn check(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    timeout: Duration,
    e: UdpExpect<'_>,
) -> Result<(), CheckError> {
    let s = connected(target, bindto).await?;
    let default: Vec<u8> = DEFAULT_TEXT.iter().copied().cycle().take(32).collect();
    s.send(e.payload.unwrap_or(&default)).await.map_err(CheckError::Io)?;
    let mut buf = vec![0u8; usize::from(e.max_len) + 1];
    match tokio::time::timeout(timeout, s.recv(&mut buf)).await {
        Err(_) if e.require_reply => Err(CheckError::Timeout),
        Err(_) => Ok(()),
        Ok(Err(err)) => Err(CheckError::Io(err)),
        Ok(Ok(n)) => match e.reply {
            Some(_) if n < usize::from(e.min_len) || n > usize::from(e.max_len) => {
                Err(CheckError::Unexpected(format!("reply of {n} bytes, not {}-{}", e.min_len, e.max_len)))
            }
            Some(p) if !p.matches(&buf[..n]) => Err(CheckError::Unexpected("reply does not match".into())),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::parse::hex;

    fn expect<'a>(reply: Option<&'a HexPattern>, require: bool) -> UdpExpect<'a> {
        UdpExpect { payload: Some(b"ping"), require_reply: require, reply, min_len: 0, max_len: 255 }
    }

    #[tokio::test]
    async fn refused_is_down_silence_is_up_unless_a_reply_is_required() {
        let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = quiet.local_addr().unwrap();
        let t = Duration::from_millis(200);
        check(addr, None, t, expect(None, false)).await.unwrap();
        assert!(matches!(check(addr, None, t, expect(None, true)).await, Err(CheckError::Timeout)));
        drop(quiet);
        let r = check(addr, None, t, expect(None, false)).await;
        assert!(matches!(&r, Err(CheckError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused), "{r:?}");
    }

    #[tokio::test]
    async fn reply_must_match_the_pattern_and_lengths() {
        let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = echo.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut b = [0u8; 512];
            loop {
                let (n, from) = echo.recv_from(&mut b).await.unwrap();
                echo.send_to(&b[..n], from).await.unwrap();
            }
        });
        let t = Duration::from_secs(1);
        let ok = hex("70 69 6x", true).unwrap();
        check(addr, None, t, expect(Some(&ok), true)).await.unwrap();
        let bad = hex("70 70", true).unwrap();
        assert!(matches!(check(addr, None, t, expect(Some(&bad), true)).await, Err(CheckError::Unexpected(_))));
        let short = UdpExpect { max_len: 3, ..expect(Some(&ok), true) };
        assert!(matches!(check(addr, None, t, short).await, Err(CheckError::Unexpected(_))));
        server.abort();
    }
}
