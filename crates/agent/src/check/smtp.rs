//! SMTP_CHECK as keepalived 2.2.7: connect, a `220` greeting, `HELO helo_name` answered
//! with `250`, then `QUIT` (its answer is read, not judged), all within connect_timeout.
//! Multi-line replies (`220-...` continuation lines) are read to their last line.

use super::CheckError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Longest reply line accepted.
const MAX_LINE: usize = 4096;

/// One SMTP_CHECK attempt.
pub async fn check(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    helo_name: &str,
    timeout: Duration,
) -> Result<(), CheckError> {
    match tokio::time::timeout(timeout, exchange(target, bindto, helo_name, timeout)).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::Timeout),
    }
}

async fn exchange(target: SocketAddr, bindto: Option<IpAddr>, helo: &str, timeout: Duration) -> Result<(), CheckError> {
    let s = super::tcp::connect(target, bindto, timeout).await?;
    let mut s = BufReader::new(s);
    expect(&mut s, 220, "greeting").await?;
    s.get_mut().write_all(format!("HELO {helo}\r\n").as_bytes()).await.map_err(CheckError::Io)?;
    expect(&mut s, 250, "HELO").await?;
    s.get_mut().write_all(b"QUIT\r\n").await.map_err(CheckError::Io)?;
    reply(&mut s).await.map(drop)
}

async fn expect<R: AsyncBufReadExt + Unpin>(r: &mut R, code: u16, what: &str) -> Result<(), CheckError> {
    match reply(r).await? {
        c if c == code => Ok(()),
        c => Err(CheckError::Unexpected(format!("{what} answered {c}, not {code}"))),
    }
}

/// Reads one reply (through its continuation lines) and returns its code.
async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<u16, CheckError> {
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.map_err(CheckError::Io)?;
        if n == 0 {
            return Err(CheckError::Unexpected("connection closed".into()));
        }
        if line.len() > MAX_LINE {
            return Err(CheckError::Unexpected("reply line too long".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        match (code, line.as_bytes().get(3)) {
            (Some(_), Some(b'-')) => continue,
            (Some(c), None | Some(b' ')) => return Ok(c),
            _ => return Err(CheckError::Unexpected(format!("bad SMTP reply {line:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn server(greeting: &'static [u8], helo_answer: &'static [u8]) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            c.write_all(greeting).await.unwrap();
            let mut b = [0u8; 256];
            let n = c.read(&mut b).await.unwrap();
            assert_eq!(&b[..n], b"HELO checker.test\r\n");
            c.write_all(helo_answer).await.unwrap();
            let n = c.read(&mut b).await.unwrap();
            assert_eq!(&b[..n], b"QUIT\r\n");
            c.write_all(b"221 bye\r\n").await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn greeting_helo_quit() {
        let t = Duration::from_secs(1);
        let a = server(b"220-mx.test ESMTP\r\n220 ready\r\n", b"250 mx.test\r\n").await;
        check(a, None, "checker.test", t).await.unwrap();
        let a = server(b"220 mx.test\r\n", b"550 go away\r\n").await;
        assert!(matches!(check(a, None, "checker.test", t).await, Err(CheckError::Unexpected(_))));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            c.write_all(b"421 busy\r\n").await.unwrap();
        });
        assert!(matches!(check(a, None, "checker.test", t).await, Err(CheckError::Unexpected(_))));
    }
}
