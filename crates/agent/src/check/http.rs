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
//!
//! A url's `regex` is searched, as keepalived 2.2.7 searches it, in the answer as
//! received: status line and headers included, offsets (`regex_min_offset`,
//! `regex_max_offset`) counted from its first byte; the answer passes when a match
//! starts within them (fails, with `regex_no_match`). keepalived runs PCRE2; rvs-agent
//! runs a DFA ([`compile_regex`]): the same syntax for what health checks ask (literals,
//! classes, alternations, repetitions, anchors, `\b`), matched byte by byte as PCRE2
//! without `utf`; what a DFA cannot do (look-around, backreferences, atomic groups,
//! possessive repetitions, Unicode properties) is refused when the file is read.

use super::CheckError;
use crate::keepalived::config::{HttpProtocol, RegexConf, UrlRegex};
use fnat::service::ProxyProtocol;
use md5::{Digest, Md5};
use regex_automata::dfa::{dense, regex::Regex};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::Input;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// TLS for one SSL_GET request: the client configuration and the server name to send
/// (SNI), if any.
pub type Tls<'a> = (&'a Arc<rustls::ClientConfig>, Option<&'a str>);

/// Largest header block accepted.
const MAX_HEADER: usize = 16 * 1024;

/// The most of an answer a `regex` is searched in: keepalived streams the whole answer
/// through PCRE2 (keeping 4 KiB for a match across reads); rvs-agent keeps the first
/// MiB and searches it once the answer is in.
pub const REGEX_SUBJECT_MAX: usize = 1 << 20;

/// The size a regex's DFA may take (a pattern such as `(a|b)*a(a|b){20}` would need
/// millions of states: refused at load rather than built per check).
const REGEX_DFA_MAX: usize = 4 << 20;

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// MD5 of the body, lowercase hex.
    pub digest: String,
    /// Whether the url's regex matched (`None`: the url has none).
    pub regex_matched: Option<bool>,
}

/// A compiled url regex (see [`compile_regex`]).
#[derive(Debug, Clone)]
pub struct RegexMatcher {
    /// Shared by the urls with the same pattern and options.
    re: Arc<Regex>,
    /// `regex_options firstline`: a match must start on the first line (from the
    /// minimum offset on).
    first_line: bool,
    /// The pattern has a `$` that PCRE2 matches before a final newline too (no
    /// `multiline`, no `dollar_endonly`).
    dollar_before_newline: bool,
}

/// The options keepalived 2.2.7 knows (`regex_options`); others it skips.
pub const REGEX_OPTIONS: [&str; 24] = [
    "allow_empty_class",
    "alt_bsux",
    "auto_callout",
    "caseless",
    "dollar_endonly",
    "dotall",
    "dupnames",
    "extended",
    "firstline",
    "match_unset_backref",
    "multiline",
    "never_ucp",
    "never_utf",
    "no_auto_capture",
    "no_auto_possess",
    "no_dotstar_anchor",
    "no_start_optimize",
    "ucp",
    "ungreedy",
    "utf",
    "never_backslash_c",
    "alt_circumflex",
    "alt_verbnames",
    "use_offset_limit",
];

/// An escape PCRE2 reads otherwise than rvs-agent's matcher would, in `pattern`:
/// refused rather than matched differently.
fn pcre_escape_difference(pattern: &str) -> Option<&'static str> {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            continue;
        }
        match chars.next() {
            Some('<' | '>') => {
                return Some("`\\<` and `\\>` are literal `<` `>` in PCRE2 and word boundaries here: write `<` or `>`")
            }
            Some('v') => {
                return Some(
                    "`\\v` is any vertical space in PCRE2 and one byte (0x0b) here: write `[\\n\\x0b\\x0c\\r]`",
                )
            }
            Some('z') => return Some("`\\z` cannot be told from PCRE2's `$` here: write `$` (with `dollar_endonly`)"),
            _ => {}
        }
    }
    None
}

/// How each of keepalived's `regex_options` (PCRE2 compile options) applies here:
/// `Ok(true)` sets the syntax option, `Ok(false)` changes nothing rvs-agent's matcher
/// does (PCRE2 tuning, or already its behaviour), `Err` is refused, with why.
fn regex_option(name: &str, cfg: &mut syntax::Config, first_line: &mut bool) -> Result<bool, String> {
    let c = *cfg;
    *cfg = match name {
        "caseless" => c.case_insensitive(true),
        "multiline" => c.multi_line(true),
        "dotall" => c.dot_matches_new_line(true),
        "extended" => c.ignore_whitespace(true),
        "ungreedy" => c.swap_greed(true),
        "firstline" => {
            *first_line = true;
            return Ok(true);
        }
        // (Turns `RegexMatcher::dollar_before_newline` off.)
        "dollar_endonly" => return Ok(false),
        "no_auto_capture" | "no_auto_possess" | "no_dotstar_anchor" | "no_start_optimize" | "auto_callout"
        | "never_utf" | "never_ucp" | "never_backslash_c" | "use_offset_limit" | "dupnames" => return Ok(false),
        "utf" | "ucp" => return Err("Unicode matching is not built into rvs-agent (bytes and ASCII classes)".into()),
        "allow_empty_class" | "alt_bsux" | "alt_circumflex" | "alt_verbnames" | "match_unset_backref" => {
            return Err("this PCRE2 syntax variant is not supported".into())
        }
        _ => return Err("not a PCRE2 option keepalived knows".into()),
    };
    Ok(true)
}

/// Compiles a url's regex as keepalived's options ask: bytes, not UTF-8 (PCRE2 without
/// `utf`: `.` is any byte but newline, `\w` `\d` `\s` `\b` are ASCII), then into a DFA
/// of bounded size. The error names what rvs-agent cannot run.
pub fn compile_regex(conf: &RegexConf) -> Result<RegexMatcher, String> {
    let mut cfg = syntax::Config::new().unicode(false).utf8(false);
    let mut first_line = false;
    for o in &conf.options {
        regex_option(o, &mut cfg, &mut first_line).map_err(|why| format!("regex_options {o}: {why}"))?;
    }
    if let Some(why) = pcre_escape_difference(&conf.pattern) {
        return Err(format!("regex '{}': {why}", conf.pattern));
    }
    let endonly = ["dollar_endonly", "multiline"].iter().any(|o| conf.options.iter().any(|x| x == o));
    let dollar_before_newline = !endonly && conf.pattern.contains('$');
    let dense = dense::Config::new().dfa_size_limit(Some(REGEX_DFA_MAX)).determinize_size_limit(Some(REGEX_DFA_MAX));
    let re = Regex::builder()
        .syntax(cfg)
        .thompson(thompson::Config::new().utf8(false))
        .dense(dense)
        .build(&conf.pattern)
        .map_err(|e| format!("regex '{}' cannot be run by rvs-agent: {}", conf.pattern, innermost(&e)))?;
    Ok(RegexMatcher { re: Arc::new(re), first_line, dollar_before_newline })
}

/// The innermost cause of `e`, on one line: regex-syntax's parse errors draw the pattern
/// over several lines and end with `error: WHAT`.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(inner) = e.source() {
        e = inner;
    }
    let text = e.to_string();
    let what = text.lines().find_map(|l| l.strip_prefix("error: ")).map(str::to_string);
    what.unwrap_or_else(|| text.lines().collect::<Vec<_>>().join(" "))
}

impl UrlRegex {
    /// Whether `answer` (status line, headers and body as received) holds a match
    /// starting between the minimum and maximum offsets (`regex_no_match` is the
    /// caller's).
    pub fn matches(&self, answer: &[u8]) -> bool {
        let (c, m) = (&self.conf, &self.matcher);
        if c.min_offset > answer.len() {
            // (keepalived does not search an answer that ends before the minimum.)
            return false;
        }
        let from = c.min_offset;
        // PCRE2's `$` also matches before a final newline: where the pattern has one, an
        // answer ending in a newline is searched without it too.
        let trimmed = match (m.dollar_before_newline, answer.split_last()) {
            (true, Some((b'\n', rest))) if rest.len() >= from => Some(rest),
            _ => None,
        };
        let Some(found) = [Some(answer), trimmed].into_iter().flatten().find_map(|hay| {
            // (No quit bytes are configured: a search cannot give up.)
            m.re.try_search(&Input::new(hay).range(from..))
                .inspect_err(|e| tracing::warn!(pattern = %c.pattern, error = %e, "regex search failed"))
                .ok()
                .flatten()
        }) else {
            return false;
        };
        let found = found.start();
        let line_end = answer[from..].iter().position(|&b| b == b'\n').map_or(answer.len(), |i| from + i);
        c.max_offset.is_none_or(|max| found <= max) && (!m.first_line || found <= line_end)
    }
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
    get_over(target, bindto, (&[], &request_text(path, host, HttpProtocol::V1_0), None), timeout, None).await
}

/// Sends `first` (a PROXY protocol header, [`proxy_check_header`], or nothing) on the
/// connection to `target`, then `request` ([`request_text`]), over TLS when `tls` is
/// given (SSL_GET; `first` goes before the TLS handshake), and reads the answer, all
/// within `timeout`; with `regex`, searches the answer for it.
pub async fn get_over(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    (first, request, regex): (&[u8], &str, Option<&UrlRegex>),
    timeout: Duration,
    tls: Option<Tls<'_>>,
) -> Result<HttpAnswer, CheckError> {
    let exchange = async {
        let mut s = super::tcp::connect(target, bindto, timeout).await?;
        if !first.is_empty() {
            s.write_all(first).await.map_err(CheckError::Io)?;
        }
        match tls {
            None => exchange(s, request, regex).await,
            Some((config, sni)) => exchange(super::ssl::handshake(s, target, config, sni).await?, request, regex).await,
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

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
    regex: Option<&UrlRegex>,
) -> Result<HttpAnswer, CheckError> {
    s.write_all(request.as_bytes()).await.map_err(CheckError::Io)?;
    let mut head = Vec::with_capacity(1024);
    // The answer as received, for the regex (up to REGEX_SUBJECT_MAX).
    let mut answer = Vec::new();
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
        if regex.is_some() {
            answer.extend_from_slice(&buf[..n.min(REGEX_SUBJECT_MAX - answer.len())]);
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
    // keepalived never searches an answer without a body.
    let has_body = answer.len() > head.len() + 4;
    Ok(HttpAnswer { status, digest, regex_matched: regex.map(|r| has_body && r.matches(&answer)) })
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
        assert_eq!(
            a,
            HttpAnswer { status: 200, digest: "b1946ac92492d2347c6235b4d2611184".into(), regex_matched: None }
        );
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
            let a = get_over(addr, None, (h, &req, None), Duration::from_secs(1), None).await.unwrap();
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
        assert_eq!(
            a,
            HttpAnswer { status: 200, digest: "b1946ac92492d2347c6235b4d2611184".into(), regex_matched: None }
        );
        hold.abort();
        // A chunked body is digested as received (keepalived's genhash digests the same).
        let chunked = b"5\r\nhello\r\n0\r\n\r\n";
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
        let a = get(addr, None, "example", "/health", Duration::from_secs(1)).await.unwrap();
        let want: String = Md5::digest(chunked).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a.digest, want);
    }

    fn regex(pattern: &str, options: &[&str], offsets: (usize, Option<usize>)) -> UrlRegex {
        let conf = RegexConf {
            pattern: pattern.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            no_match: false,
            min_offset: offsets.0,
            max_offset: offsets.1,
        };
        UrlRegex::try_from(conf).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    /// The answer as keepalived searches it: status line and headers included, bytes (not
    /// UTF-8), offsets from the first byte, `^` at the answer's start unless `multiline`.
    #[test]
    fn a_regex_is_searched_in_the_answer_as_keepalived_searches_it() {
        let answer: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nstatus: healthy\nload 0.50\n\xff\xfe";
        let m = |p: &str, o: &[&str]| regex(p, o, (0, None)).matches(answer);
        assert!(m("healthy", &[]));
        assert!(m("Content-Type: text/plain", &[]), "the headers are searched too");
        assert!(!m("unhealthy", &[]));
        assert!(m(r"load [0-9]+\.[0-9]{2}$", &["multiline"]));
        assert!(!m("^status", &[]), "^ is the answer's start");
        assert!(m("^status", &["multiline"]));
        assert!(!m("HEALTHY", &[]));
        assert!(m("HEALTHY", &["caseless"]));
        assert!(!m("healthy.load", &[]));
        assert!(m("healthy.load", &["dotall"]));
        assert!(m("heal thy  # a comment", &["extended"]));
        assert!(m(r"\bhealthy\b", &[]));
        assert!(m(r"\n\xff\xfe", &[]), "bytes that are not UTF-8");
        assert!(m(r"0\.50\n..$", &[]), "`.` is any byte");
        assert!(m("^HTTP/1.0", &["firstline"]));
        assert!(!m("healthy", &["firstline"]), "firstline: the match starts on the first line");
        // Offsets: the first byte a match may start at, and the last.
        let at = answer.windows(7).position(|w| w == b"healthy").unwrap();
        for ((min, max), want) in [
            ((at, None), true),
            ((at + 1, None), false),
            ((0, Some(at)), true),
            ((0, Some(at - 1)), false),
            ((at, Some(at)), true),
        ] {
            assert_eq!(regex("healthy", &[], (min, max)).matches(answer), want, "{min} {max:?}");
        }
        assert!(!regex("x*", &[], (answer.len() + 9, None)).matches(answer), "a minimum past the end");
        // PCRE2's `$` before a final newline, unless dollar_endonly.
        let page: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nok\n";
        assert!(regex("ok$", &[], (0, None)).matches(page));
        assert!(!regex("ok$", &["dollar_endonly"], (0, None)).matches(page));
        assert!(regex("ok$", &["multiline"], (0, None)).matches(page));
        assert!(!regex("ok$", &[], (0, None)).matches(b"ok\n\n"), "before the final newline only");
    }

    /// What a DFA cannot run is refused with what it is, when the file is read.
    #[test]
    fn a_regex_rvs_agent_cannot_run_is_refused_naming_why() {
        let conf = |p: &str, o: &[&str]| RegexConf {
            pattern: p.into(),
            options: o.iter().map(|o| o.to_string()).collect(),
            no_match: false,
            min_offset: 0,
            max_offset: None,
        };
        for (p, o, why) in [
            ("a(?=b)", &[][..], "look-around"),
            ("(a)\\1", &[], "backreference"),
            ("\\p{Greek}", &[], "Unicode"),
            ("(?>a)", &[], "unrecognized flag"),
            ("(a|b)*a(a|b){40}", &[], "size limit"),
            (r"\<word\>", &[], "literal `<` `>` in PCRE2"),
            (r"a\v", &[], "vertical space"),
            (r"ok\z", &[], "`\\z`"),
            ("a", &["utf"], "regex_options utf: Unicode"),
            ("a", &["alt_bsux"], "regex_options alt_bsux"),
            ("a", &["sloppy"], "not a PCRE2 option"),
        ] {
            let e = UrlRegex::try_from(conf(p, o)).expect_err(p);
            assert!(e.contains(why), "{p} {o:?}: {e}");
        }
        assert!(!UrlRegex::try_from(conf("a", &["ungreedy", "no_auto_capture", "dollar_endonly"]))
            .unwrap()
            .matches(b"b"));
    }

    /// The regex is searched in what a real exchange received, headers included.
    #[tokio::test]
    async fn the_exchange_searches_what_it_received() {
        let r = regex("Server: probe.*\r\n\r\nok", &["dotall"], (0, None));
        let addr = serve_once(b"HTTP/1.0 200 OK\r\nServer: probe\r\n\r\nok\n").await;
        let req = request_text("/health", "example", HttpProtocol::V1_0);
        let a = get_over(addr, None, (&[], &req, Some(&r)), Duration::from_secs(1), None).await.unwrap();
        assert_eq!(a.regex_matched, Some(true));
        // An answer without a body is not searched (keepalived's): no match.
        let r = regex("200 OK", &[], (0, None));
        let addr = serve_once(b"HTTP/1.0 200 OK\r\nServer: probe\r\n\r\n").await;
        let a = get_over(addr, None, (&[], &req, Some(&r)), Duration::from_secs(1), None).await.unwrap();
        assert_eq!(a.regex_matched, Some(false));
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
