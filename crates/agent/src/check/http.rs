//! HTTP_GET: a minimal HTTP/1.0 client over a tokio `TcpStream` (or, for SSL_GET, a TLS
//! stream over it, see [`super::ssl`]): one request, read to end of stream, status code
//! and (optionally) the MD5 digest of the body.

use super::CheckError;
use md5::{Digest, Md5};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// TLS for one SSL_GET request: the client configuration and the server name to send
/// (SNI), if any.
pub type Tls<'a> = (&'a Arc<rustls::ClientConfig>, Option<&'a str>);

/// Largest header block accepted.
const MAX_HEADER: usize = 16 * 1024;

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// MD5 of the body, lowercase hex.
    pub digest: String,
}

/// Sends `GET path HTTP/1.0` to `target` with `Host: host` and reads the whole answer,
/// all within `timeout`.
pub async fn get(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<HttpAnswer, CheckError> {
    get_over(target, bindto, host, path, timeout, None).await
}

/// As [`get`], over TLS when `tls` is given (SSL_GET).
pub async fn get_over(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    host: &str,
    path: &str,
    timeout: Duration,
    tls: Option<Tls<'_>>,
) -> Result<HttpAnswer, CheckError> {
    let exchange = async {
        let s = super::tcp::connect(target, bindto, timeout).await?;
        match tls {
            None => request(s, host, path).await,
            Some((config, sni)) => request(super::ssl::handshake(s, target, config, sni).await?, host, path).await,
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::Timeout),
    }
}

async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    path: &str,
) -> Result<HttpAnswer, CheckError> {
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: rvs-agent\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(CheckError::Io)?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 8192];
    let mut md5 = Md5::new();
    let mut body_started = false;
    loop {
        let n = match s.read(&mut buf).await {
            Ok(n) => n,
            // A TLS server that closes without close_notify: the answer is complete
            // all the same (keepalived accepts it too).
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(CheckError::Io(e)),
        };
        if n == 0 {
            break;
        }
        if body_started {
            md5.update(&buf[..n]);
            continue;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            md5.update(&head[end + 4..]);
            head.truncate(end);
            body_started = true;
        } else if head.len() > MAX_HEADER {
            return Err(CheckError::Http("header too long".into()));
        }
    }
    if !body_started {
        return Err(CheckError::Http("no end of headers".into()));
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => {
            code.parse::<u16>().map_err(|_| CheckError::Http(format!("bad status line {line:?}")))?
        }
        _ => return Err(CheckError::Http(format!("bad status line {line:?}"))),
    };
    let digest = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(HttpAnswer { status, digest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 1024];
            let n = c.read(&mut req).await.unwrap();
            assert!(req[..n].starts_with(b"GET /health HTTP/1.0\r\nHost: example\r\n"));
            c.write_all(answer).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn status_and_md5_of_the_body() {
        let addr = serve_once(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n").await;
        let a = get(addr, None, "example", "/health", Duration::from_secs(1)).await.unwrap();
        // md5("hello\n") = b1946ac92492d2347c6235b4d2611184
        assert_eq!(a, HttpAnswer { status: 200, digest: "b1946ac92492d2347c6235b4d2611184".into() });
        let addr = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        assert_eq!(get(addr, None, "example", "/health", Duration::from_secs(1)).await.unwrap().status, 503);
        let addr = serve_once(b"garbage\r\n\r\n").await;
        assert!(matches!(
            get(addr, None, "example", "/health", Duration::from_secs(1)).await,
            Err(CheckError::Http(_))
        ));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (c, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(c);
        });
        let r = get(addr, None, "example", "/health", Duration::from_millis(200)).await;
        assert!(matches!(r, Err(CheckError::Timeout)), "{r:?}");
        hold.abort();
    }
}
