//! HTTP_GET: a minimal HTTP client over a tokio `TcpStream` (or, for SSL_GET, a TLS
//! stream over it, see [`super::ssl`]): one request as keepalived 2.2.7 words it
//! (`http_protocol`: `1.0`, `1.0C`, `1.1`), the status code and (optionally) the MD5
//! digest of the body as keepalived computes it.
//!
//! What is digested, as keepalived (`http_process_response`): the bytes after the
//! header block, at most `Content-Length` of them when the answer has one; a chunked body
//! as received (chunk sizes included: what keepalived's `genhash` prints). The answer is
//! read until the server closes, or until `Content-Length` bytes of body are in (a server
//! that ignores `Connection: close` then still gets its verdict).

use super::CheckError;
use crate::keepalived::config::HttpProtocol;
use fnat::service::ProxyProtocol;
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

/// keepalived 2.2.7's request (`request_template`): `1.0` sends no `Connection` header,
/// `1.0C` adds `Connection: close`, `1.1` is HTTP/1.1 with `Connection: close`.
pub fn request_text(path: &str, host: &str, protocol: HttpProtocol) -> String {
    let (minor, close) = match protocol {
        HttpProtocol::V1_0 => (0, ""),
        HttpProtocol::V1_0C => (0, "Connection: close\r\n"),
        HttpProtocol::V1_1 => (1, "Connection: close\r\n"),
    };
    format!("GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n")
}

/// What a health check sends first to a real server behind a virtual server with the
/// PROXY protocol (DPVS's keepalived: `PROXY_PROTOCOL_CHECK_V1`/`_V2`): no address, so
/// the server uses the connection's own (version 1 `PROXY UNKNOWN`, version 2 command
/// `LOCAL`). A server with `listen ... proxy_protocol` refuses a connection without it.
pub fn proxy_check_header(v: ProxyProtocol) -> &'static [u8] {
    const V1: &[u8] = b"PROXY UNKNOWN\r\n";
    const V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    match v {
        ProxyProtocol::V1 => V1,
        ProxyProtocol::V2 => V2,
    }
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
    get_over(target, bindto, (&[], &request_text(path, host, HttpProtocol::V1_0)), timeout, None).await
}

/// Sends `first` (a PROXY protocol header, [`proxy_check_header`], or nothing) on the
/// connection to `target`, then `request` ([`request_text`]), over TLS when `tls` is
/// given (SSL_GET; `first` goes before the TLS handshake), and reads the answer, all
/// within `timeout`.
pub async fn get_over(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    (first, request): (&[u8], &str),
    timeout: Duration,
    tls: Option<Tls<'_>>,
) -> Result<HttpAnswer, CheckError> {
    let exchange = async {
        let mut s = super::tcp::connect(target, bindto, timeout).await?;
        if !first.is_empty() {
            s.write_all(first).await.map_err(CheckError::Io)?;
        }
        match tls {
            None => exchange(s, request).await,
            Some((config, sni)) => exchange(super::ssl::handshake(s, target, config, sni).await?, request).await,
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::Timeout),
    }
}

/// The `Content-Length` of a header block, if it has a valid one (keepalived:
/// `strtoul`, then only the end of the line).
fn content_length(head: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(head).split("\r\n").skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        if !name.eq_ignore_ascii_case("content-length") {
            return None;
        }
        value.trim().parse::<u64>().ok()
    })
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &str) -> Result<HttpAnswer, CheckError> {
    s.write_all(request.as_bytes()).await.map_err(CheckError::Io)?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 8192];
    let mut md5 = Md5::new();
    // Once the headers are in: the body bytes still to digest (none: to the end).
    let mut body: Option<Option<u64>> = None;
    let digest = |md5: &mut Md5, left: &mut Option<u64>, data: &[u8]| {
        let take = left.map_or(data.len(), |l| data.len().min(l as usize));
        md5.update(&data[..take]);
        if let Some(l) = left {
            *l -= take as u64;
        }
    };
    loop {
        if let Some(Some(0)) = body {
            break;
        }
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
        if let Some(left) = &mut body {
            digest(&mut md5, left, &buf[..n]);
            continue;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let mut left = content_length(&head[..end]);
            digest(&mut md5, &mut left, &head[end + 4..]);
            head.truncate(end);
            body = Some(left);
        } else if head.len() > MAX_HEADER {
            return Err(CheckError::Http("header too long".into()));
        }
    }
    if body.is_none() {
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
            assert_eq!(&req[..n], b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: example\r\n\r\n");
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
    async fn the_proxy_protocol_header_goes_first() {
        for (v, want) in [
            (ProxyProtocol::V1, &b"PROXY UNKNOWN\r\n"[..]),
            (
                ProxyProtocol::V2,
                &[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0, 0, 0],
            ),
        ] {
            let h = proxy_check_header(v);
            assert_eq!(h, want);
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut c, _) = l.accept().await.unwrap();
                let mut got = Vec::new();
                let mut b = [0u8; 256];
                while !got.ends_with(b"\r\n\r\n") {
                    let n = c.read(&mut b).await.unwrap();
                    assert!(n > 0);
                    got.extend_from_slice(&b[..n]);
                }
                c.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
                got
            });
            let req = request_text("/", "h", HttpProtocol::V1_0);
            let a = get_over(addr, None, (h, &req), Duration::from_secs(1), None).await.unwrap();
            assert_eq!(a.status, 200);
            assert_eq!(server.await.unwrap(), [h, req.as_bytes()].concat());
        }
    }

    #[test]
    fn requests_as_keepalived_words_them() {
        let r = |p| request_text("/h", "10.0.0.1:80", p);
        let (ua, host) = ("User-Agent: KeepAliveClient\r\n", "Host: 10.0.0.1:80\r\n\r\n");
        assert_eq!(r(HttpProtocol::V1_0), format!("GET /h HTTP/1.0\r\n{ua}{host}"));
        assert_eq!(r(HttpProtocol::V1_0C), format!("GET /h HTTP/1.0\r\n{ua}Connection: close\r\n{host}"));
        assert_eq!(r(HttpProtocol::V1_1), format!("GET /h HTTP/1.1\r\n{ua}Connection: close\r\n{host}"));
    }

    #[tokio::test]
    async fn content_length_bounds_the_digest_and_the_wait() {
        // More bytes than Content-Length, and the connection kept open: the digest is of
        // the first 6 ("hello\n"), and the answer is complete without waiting for a close.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 1024];
            let _ = c.read(&mut req).await.unwrap();
            c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhel").await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.write_all(b"lo\nEXTRA").await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let a = get(addr, None, "example", "/health", Duration::from_secs(2)).await.unwrap();
        assert_eq!(a, HttpAnswer { status: 200, digest: "b1946ac92492d2347c6235b4d2611184".into() });
        hold.abort();
        // A chunked body is digested as received (keepalived's genhash digests the same).
        let chunked = b"5\r\nhello\r\n0\r\n\r\n";
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
        let a = get(addr, None, "example", "/health", Duration::from_secs(1)).await.unwrap();
        let want: String = Md5::digest(chunked).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a.digest, want);
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
