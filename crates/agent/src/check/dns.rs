//! DNS_CHECK as keepalived 2.2.7: one query over UDP (`type`, default SOA; `name`, default
//! the root), recursion desired; up when an answer with the query's id comes back with
//! rcode 0 (NOERROR) within connect_timeout. Datagrams with another id, or that are not
//! answers, are skipped; an ICMP port unreachable means down.

use super::CheckError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A random query id.
fn random_id() -> u16 {
    crate::random::u64() as u16
}

/// The query message for `name` (dotted; `.` or empty: the root) and `qtype`, class IN.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        m.push(l.len() as u8);
        m.extend_from_slice(l);
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// One DNS_CHECK attempt.
pub async fn check(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<(), CheckError> {
    let s = super::udp::connected(target, bindto).await?;
    let id = random_id();
    s.send(&query(id, name, qtype)).await.map_err(CheckError::Io)?;
    let wait = async {
        let mut b = [0u8; 1500];
        loop {
            let n = s.recv(&mut b).await.map_err(CheckError::Io)?;
            if n < 12 || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0 {
                continue;
            }
            return match b[3] & 0x0f {
                0 => Ok(()),
                rcode => Err(CheckError::Unexpected(format!("rcode {rcode}"))),
            };
        }
    };
    tokio::time::timeout(timeout, wait).await.unwrap_or(Err(CheckError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let q = query(0x1234, "www.example.com", 1);
        assert_eq!(&q[..12], &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(&query(1, ".", 6)[12..], &[0, 0, 6, 0, 1]);
        assert_eq!(query(1, "a.b.", 1), query(1, "a.b", 1));
    }

    /// A responder that answers with another id first, then the right id and `rcode`.
    async fn responder(rcode: u8) -> SocketAddr {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 512];
            loop {
                let (n, from) = s.recv_from(&mut b).await.unwrap();
                let mut r = b[..n].to_vec();
                r[2] |= 0x80;
                r[3] = rcode;
                let mut wrong = r.clone();
                wrong[0] ^= 0xff;
                s.send_to(&wrong, from).await.unwrap();
                s.send_to(&r, from).await.unwrap();
            }
        });
        a
    }

    #[tokio::test]
    async fn same_id_and_no_error_rcode() {
        let t = Duration::from_secs(1);
        check(responder(0).await, None, "example.test", 1, t).await.unwrap();
        let r = check(responder(3).await, None, "example.test", 1, t).await;
        assert!(matches!(r, Err(CheckError::Unexpected(_))), "{r:?}");
    }
}
