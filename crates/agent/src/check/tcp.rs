//! TCP_CHECK: the real server accepts a TCP connection within the timeout.

use super::CheckError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `target` (from `bindto` when given) within `timeout`.
pub async fn connect(target: SocketAddr, bindto: Option<IpAddr>, timeout: Duration) -> Result<TcpStream, CheckError> {
    let sock = if target.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(CheckError::Io)?;
    if let Some(b) = bindto {
        sock.bind(SocketAddr::new(b, 0)).map_err(CheckError::Io)?;
    }
    // Closing with RST (linger 0) avoids TIME_WAIT pile-ups when checking thousands of servers.
    sock.set_zero_linger().map_err(CheckError::Io)?;
    match tokio::time::timeout(timeout, sock.connect(target)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(CheckError::Io(e)),
        Err(_) => Err(CheckError::Timeout),
    }
}

/// One TCP_CHECK attempt.
pub async fn check(target: SocketAddr, bindto: Option<IpAddr>, timeout: Duration) -> Result<(), CheckError> {
    connect(target, bindto, timeout).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn up_when_listening_down_when_refused() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        check(addr, None, Duration::from_secs(1)).await.unwrap();
        check(addr, Some("127.0.0.1".parse().unwrap()), Duration::from_secs(1)).await.unwrap();
        drop(l);
        assert!(matches!(check(addr, None, Duration::from_secs(1)).await, Err(CheckError::Io(_))));
    }
}
