//! Real-server health checks on one tokio runtime: one lightweight task per real server
//! (no thread per check, no select() limit), TCP_CHECK ([`tcp`]), HTTP_GET ([`http`]),
//! SSL_GET ([`ssl`]), UDP_CHECK ([`udp`]), PING_CHECK ([`ping`]), SMTP_CHECK ([`smtp`]),
//! DNS_CHECK ([`dns`]), FILE_CHECK ([`file`](mod@file)), MISC_CHECK ([`misc`]) and
//! BFD_CHECK (a [`crate::bfd`] session's changes, which start a round at once) with
//! connect_timeout, retry, delay_before_retry, delay_loop, warmup (a random wait before
//! the first round) and the virtual server's ha_suspend (rounds only while its address is
//! held, [`HeldAddrs`]).
//! Up/down transitions come out of one channel ([`spawn_checkers`]); [`pool`] turns them into
//! dataplane changes (weights, removal, quorum, sorry server).
//!
//! Checks go through the Linux stack, i.e. the management interface's routes: rvsd's kernel
//! twin must not hold a route to the real servers, or the checks vanish into the dataplane
//! (DOMAIN.md, DPVS operations).

pub mod dns;
pub mod file;
pub mod http;
pub mod misc;
pub mod ping;
pub mod pool;
pub mod smtp;
pub mod ssl;
pub mod tcp;
pub mod udp;

use crate::keepalived::config::{
    CheckConf, CheckKind, HexPattern, HttpProtocol, RealServerConf, Script, SslConf, UrlConf,
};
use fnat::service::ProxyProtocol;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Why one check attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Connect, read or write failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// Nothing within the timeout.
    #[error("timeout")]
    Timeout,
    /// The HTTP answer was malformed.
    #[error("http: {0}")]
    Http(String),
    /// The HTTP status or digest was not the expected one.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// A MISC_CHECK exited non-zero (or by signal: `None`).
    #[error("exit status {0:?}")]
    Exit(Option<i32>),
    /// SSL_GET: the TLS set-up (client certificate files) or handshake failed.
    #[error("tls: {0}")]
    Tls(String),
}

/// What to probe, resolved from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// TCP connect.
    Tcp {
        /// Address to connect to.
        target: SocketAddr,
        /// Source address.
        bindto: Option<IpAddr>,
    },
    /// HTTP GET of each URL.
    Http {
        /// Address to connect to.
        target: SocketAddr,
        /// Source address.
        bindto: Option<IpAddr>,
        /// Host header (a url's own `virtualhost` wins).
        host: String,
        /// URLs with their expected status codes / digests.
        urls: Vec<UrlConf>,
        /// `http_protocol`: how the request is worded.
        protocol: HttpProtocol,
        /// The virtual server's `proxy_protocol`: the header sent first (see
        /// [`http::proxy_check_header`]).
        proxy: Option<ProxyProtocol>,
    },
    /// HTTP GET of each URL over TLS.
    Ssl {
        /// Address to connect to.
        target: SocketAddr,
        /// Source address.
        bindto: Option<IpAddr>,
        /// Host header (a url's own `virtualhost` wins).
        host: String,
        /// The server name sent (SNI) with `enable_sni`: the checker's or virtual server's
        /// `virtualhost` (a url's own wins); none without `enable_sni`.
        sni: Option<String>,
        /// `enable_sni`.
        enable_sni: bool,
        /// URLs with their expected status codes / digests.
        urls: Vec<UrlConf>,
        /// `http_protocol`: how the request is worded.
        protocol: HttpProtocol,
        /// The global `SSL` block (client certificate).
        client: Option<SslConf>,
        /// The virtual server's `proxy_protocol`: the header sent first, before TLS.
        proxy: Option<ProxyProtocol>,
    },
    /// A UDP datagram, no ICMP error (and a matching reply when required).
    Udp {
        /// Address to send to.
        target: SocketAddr,
        /// Source address.
        bindto: Option<IpAddr>,
        /// `payload`.
        payload: Option<Vec<u8>>,
        /// `require_reply`.
        require_reply: bool,
        /// `require_reply HEX`.
        reply: Option<HexPattern>,
        /// `min_reply_length`, `max_reply_length`.
        reply_len: (u16, u16),
    },
    /// An ICMP echo.
    Ping {
        /// Address to ping.
        target: IpAddr,
        /// Source address.
        bindto: Option<IpAddr>,
    },
    /// SMTP greeting, HELO, QUIT.
    Smtp {
        /// Address to connect to.
        target: SocketAddr,
        /// Source address.
        bindto: Option<IpAddr>,
        /// `helo_name`.
        helo_name: String,
    },
    /// A DNS query over UDP.
    Dns {
        /// The server.
        target: SocketAddr,
        /// Source address.
        bindto: Option<IpAddr>,
        /// Query name.
        name: String,
        /// Query type.
        qtype: u16,
    },
    /// A tracked file's number.
    File {
        /// The file.
        path: String,
        /// Weight multiplier (0: non-zero is down).
        weight: i32,
        /// `reverse`.
        reverse: bool,
    },
    /// A command.
    Misc {
        /// The script.
        cmd: Script,
        /// Time allowed.
        timeout: Duration,
        /// `misc_dynamic`: the real server's configured weight, from which the exit
        /// code moves it.
        dynamic: Option<u32>,
    },
    /// BFD_CHECK: a `bfd_instance`'s session, as it last changed.
    Bfd {
        /// The `bfd_instance`.
        name: String,
        /// What the session last said (set when the checker starts).
        event: BfdEvent,
    },
}

/// A BFD session's state as BFD_CHECK sees it: `Some(true)` Up, `Some(false)` not Up (a
/// session starts so: keepalived tells its checker the state of every session at start
/// and at each reload). No receiver (no session runs: `-B`): `None`, which counts as
/// passing. Equal whatever it holds (checkers compare by the bfd_instance's name).
#[derive(Clone, Default)]
pub struct BfdEvent(pub Option<watch::Receiver<Option<bool>>>);

impl PartialEq for BfdEvent {
    fn eq(&self, _: &BfdEvent) -> bool {
        true
    }
}

impl std::fmt::Debug for BfdEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = self.0.as_ref().map(|rx| *rx.borrow());
        write!(f, "BfdEvent({now:?})")
    }
}

impl BfdEvent {
    /// The last change, if any.
    pub fn last(&self) -> Option<bool> {
        self.0.as_ref().and_then(|rx| *rx.borrow())
    }
}

/// One checker with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// What.
    pub probe: Probe,
    /// `connect_timeout` (whole exchange for HTTP).
    pub timeout: Duration,
    /// Extra attempts before a server that was up is declared down.
    pub retry: u32,
    /// Pause between attempts.
    pub delay_before_retry: Duration,
}

/// Identifies a real server in the checker's output (index into the caller's table).
pub type RsId = usize;

/// The checks of one real server.
#[derive(Debug, Clone, PartialEq)]
pub struct RsChecks {
    /// Caller's id for this real server.
    pub id: RsId,
    /// All must pass for the server to be up; none means always up.
    pub checks: Vec<CheckSpec>,
    /// Period between rounds.
    pub delay_loop: Duration,
    /// `warmup`: the first round waits a random time between 0 and this (keepalived's
    /// `register_checkers_thread`), so that checkers started together spread out.
    pub warmup: Duration,
    /// `ha_suspend`: the virtual server's addresses; rounds run only while rvsd holds one
    /// of them ([`HeldAddrs`]), are skipped otherwise (the server keeping
    /// its health), as keepalived's disabled checkers. None: always run.
    pub ha_suspend: Option<Vec<IpAddr>>,
}

/// The addresses the box holds (in rvsd: the agent's VIPs while MASTER, `static_ipaddress`,
/// and every other address rvsd reports; `agent::held`): what keepalived's netlink
/// reflector tells its checkers about the box's addresses, for `ha_suspend`.
pub type HeldAddrs = watch::Receiver<BTreeSet<IpAddr>>;

/// A random time between 0 and `max` (keepalived's `warmup * random() / RAND_MAX`).
pub fn warmup_delay(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    max.mul_f64(crate::random::fraction())
}

/// A real server changed health (or, for one that started down, its first round's
/// result: see [`spawn_checkers_from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Which.
    pub id: RsId,
    /// Now up (true) or down.
    pub up: bool,
    /// Why, for the log.
    pub reason: String,
    /// While up: the change of the configured weight FILE_CHECKs and `misc_dynamic`
    /// MISC_CHECKs ask for (0 without them). A transition may change only this.
    pub weight_delta: i64,
    /// keepalived's mail body for it, from the checker that decided (the failing one;
    /// up: the first that has one), see [`Probe::alert_body`]; none: no mail (FILE_CHECK
    /// alone).
    pub alert: Option<Cow<'static, str>>,
}

/// Counters shared by all checker tasks.
#[derive(Debug, Default)]
pub struct CheckStats {
    /// Attempts made.
    pub attempts: AtomicU64,
    /// Attempts that failed.
    pub failures: AtomicU64,
    /// Each real server's checkers, in configuration order, while its checker task runs.
    pub per_rs: Mutex<HashMap<RsId, Vec<CheckerStats>>>,
}

/// One checker's counters (`rvs-agent status --json`, metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckerStats {
    /// keepalived's name of the checker (`TCP_CHECK`, `HTTP_GET`, ...), with `#2`, `#3`
    /// for a second and third one of the same kind on one real server.
    pub name: String,
    /// Attempts made.
    pub attempts: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// How long the last attempt took, in microseconds (none before the first).
    pub last_duration_us: Option<u64>,
    /// Whether its rounds are skipped: `ha_suspend`, and no address of the virtual
    /// server on the box.
    #[serde(default)]
    pub suspended: bool,
}

impl CheckStats {
    /// Starts counting for real server `id` (its counters start over).
    pub fn register(&self, id: RsId, checks: &[CheckSpec]) {
        let mut names: Vec<CheckerStats> = Vec::new();
        for c in checks {
            let kind = c.probe.kind();
            let n = names.iter().filter(|x| x.name.split('#').next() == Some(kind)).count();
            let name = if n == 0 { kind.to_string() } else { format!("{kind}#{}", n + 1) };
            names.push(CheckerStats { name, ..CheckerStats::default() });
        }
        self.lock().insert(id, names);
    }

    /// Stops counting for real server `id` (removed).
    pub fn forget(&self, id: RsId) {
        self.lock().remove(&id);
    }

    /// A copy of real server `id`'s checkers' counters.
    pub fn of(&self, id: RsId) -> Vec<CheckerStats> {
        self.lock().get(&id).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RsId, Vec<CheckerStats>>> {
        self.per_rs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks real server `id`'s checkers suspended (`ha_suspend`) or running.
    fn suspend(&self, id: RsId, on: bool) {
        for c in self.lock().get_mut(&id).into_iter().flatten() {
            c.suspended = on;
        }
    }

    fn record(&self, id: RsId, checker: usize, ok: bool, took: Duration) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.lock().get_mut(&id).and_then(|v| v.get_mut(checker)) {
            c.attempts += 1;
            c.failures += u64::from(!ok);
            c.last_duration_us = Some(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
    }
}

impl Probe {
    /// keepalived's name of the checker.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Tcp { .. } => "TCP_CHECK",
            Probe::Http { .. } => "HTTP_GET",
            Probe::Ssl { .. } => "SSL_GET",
            Probe::Udp { .. } => "UDP_CHECK",
            Probe::Ping { .. } => "PING_CHECK",
            Probe::Smtp { .. } => "SMTP_CHECK",
            Probe::Dns { .. } => "DNS_CHECK",
            Probe::File { .. } => "FILE_CHECK",
            Probe::Misc { .. } => "MISC_CHECK",
            Probe::Bfd { .. } => "BFD_CHECK",
        }
    }

    /// keepalived's mail body when this checker brings its server up or down (each
    /// checker's own, from 2.2.7's `check_*.c`); FILE_CHECK sends none, as keepalived. A
    /// MISC_CHECK that timed out says `failed` (keepalived: `timed out`).
    pub fn alert_body(&self, up: bool) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed(match (self, up) {
            (Probe::Tcp { .. }, true) => "=> TCP CHECK succeed on service <=",
            (Probe::Tcp { .. }, false) => "=> TCP CHECK failed on service <=",
            (Probe::Http { .. } | Probe::Ssl { .. } | Probe::Smtp { .. }, true) => "=> CHECK succeed on service <=",
            (Probe::Http { .. } | Probe::Ssl { .. }, false) => "=> CHECK failed on service : HTTP request failed <=",
            (Probe::Smtp { .. }, false) => "=> CHECK failed on service <=",
            (Probe::Udp { .. }, true) => "=> UDP CHECK succeed on service <=",
            (Probe::Udp { .. }, false) => "=> UDP CHECK failed on service <=",
            (Probe::Ping { .. }, true) => "=> ICMP CHECK succeed on service <=",
            (Probe::Ping { .. }, false) => "=> ICMP CHECK failed on service <=",
            (Probe::Dns { .. }, true) => "=> DNS_CHECK: succeed on service <=",
            (Probe::Dns { .. }, false) => "=> DNS_CHECK: failed on service <=",
            (Probe::Misc { .. }, true) => "=> MISC CHECK succeeded on service <=",
            (Probe::Misc { .. }, false) => "=> MISC CHECK failed on service <=",
            (Probe::File { .. }, _) => return None,
            (Probe::Bfd { name, .. }, up) => {
                let how = if up { "succeeded" } else { "failed" };
                return Some(Cow::Owned(format!("=> BFD CHECK {name} {how} on service <=")));
            }
        }))
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Resolves a real server's configured checks (`delay_loop` is the virtual server's unless
/// overridden). `proxy`: the virtual server's `proxy_protocol`, which HTTP_GET and
/// SSL_GET then speak first, as DPVS's keepalived does.
///
/// `warmup` as keepalived 2.2.7's `validate_check_config`: a checker's own, else the real
/// server's (which defaults to the virtual server's), else the delay_loop. The agent runs
/// a real server's checkers in one round, so the first checker's that is set stands for
/// them all. FILE_CHECKs have no warmup (keepalived starts no thread for them: the files
/// are read at once), so a server checked by FILE_CHECKs only has none. `ha_suspend` is
/// left unset (the pool knows the virtual server's addresses).
pub fn rs_checks(id: RsId, rs: &RealServerConf, vs_delay_loop: f64, proxy: Option<ProxyProtocol>) -> RsChecks {
    let checks = rs.checks.iter().map(|c| spec(rs, c, vs_delay_loop, proxy)).collect();
    let delay = rs.delay_loop.or_else(|| rs.checks.iter().find_map(|c| c.common.delay_loop)).unwrap_or(vs_delay_loop);
    let launched = || rs.checks.iter().filter(|c| !matches!(c.kind, CheckKind::File { .. } | CheckKind::Bfd { .. }));
    let warmup = if launched().next().is_none() {
        // FILE_CHECKs only: keepalived reads the files at once (no checker thread to warm up).
        0.0
    } else {
        launched().find_map(|c| c.common.warmup).or(rs.warmup).unwrap_or(delay)
    };
    RsChecks { id, checks, delay_loop: secs(delay), warmup: secs(warmup), ha_suspend: None }
}

fn spec(rs: &RealServerConf, c: &CheckConf, vs_delay_loop: f64, proxy: Option<ProxyProtocol>) -> CheckSpec {
    let target =
        SocketAddr::new(c.common.connect_ip.unwrap_or(rs.addr.ip()), c.common.connect_port.unwrap_or(rs.addr.port()));
    let probe = match &c.kind {
        CheckKind::Tcp => Probe::Tcp { target, bindto: c.common.bindto },
        CheckKind::Http { urls, virtualhost, protocol } => Probe::Http {
            target,
            bindto: c.common.bindto,
            host: virtualhost.clone().unwrap_or_else(|| match target {
                SocketAddr::V4(a) => a.to_string(),
                SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
            }),
            urls: urls.clone(),
            protocol: *protocol,
            proxy,
        },
        CheckKind::Ssl { urls, virtualhost, enable_sni, protocol, client } => Probe::Ssl {
            target,
            bindto: c.common.bindto,
            host: virtualhost.clone().unwrap_or_else(|| match target {
                SocketAddr::V4(a) => a.to_string(),
                SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
            }),
            sni: virtualhost.clone().filter(|_| *enable_sni),
            enable_sni: *enable_sni,
            urls: urls.clone(),
            protocol: *protocol,
            client: client.clone(),
            proxy,
        },
        CheckKind::Udp { payload, require_reply, reply, min_reply_length, max_reply_length } => Probe::Udp {
            target,
            bindto: c.common.bindto,
            payload: payload.clone(),
            require_reply: *require_reply,
            reply: reply.clone(),
            reply_len: (*min_reply_length, *max_reply_length),
        },
        CheckKind::Ping => Probe::Ping { target: target.ip(), bindto: c.common.bindto },
        CheckKind::Smtp { helo_name } => Probe::Smtp { target, bindto: c.common.bindto, helo_name: helo_name.clone() },
        CheckKind::Dns { qtype, name } => {
            Probe::Dns { target, bindto: c.common.bindto, name: name.clone(), qtype: *qtype }
        }
        CheckKind::File { path, weight, reverse, .. } => {
            Probe::File { path: path.clone(), weight: *weight, reverse: *reverse }
        }
        CheckKind::Bfd { name } => Probe::Bfd { name: name.clone(), event: BfdEvent::default() },
        CheckKind::Misc { path, timeout, dynamic } => Probe::Misc {
            cmd: path.clone(),
            timeout: secs(timeout.unwrap_or(c.common.delay_loop.unwrap_or(vs_delay_loop))),
            dynamic: dynamic.then_some(rs.weight),
        },
    };
    CheckSpec {
        probe,
        timeout: secs(c.common.connect_timeout),
        retry: c.common.retry,
        delay_before_retry: secs(c.common.delay_before_retry),
    }
}

/// HTTP_GET's and SSL_GET's URLs in turn: each must answer an accepted status (and
/// digest, and regex). `tls`: the TLS configuration, the SNI default and whether SNI is on;
/// `proxy`: the PROXY protocol header each connection starts with.
async fn get_urls(
    target: SocketAddr,
    bindto: Option<IpAddr>,
    host: &str,
    (urls, protocol, proxy): (&[UrlConf], HttpProtocol, Option<ProxyProtocol>),
    timeout: Duration,
    tls: Option<(&Arc<rustls::ClientConfig>, Option<&str>, bool)>,
) -> Result<(), CheckError> {
    for u in urls {
        let host = u.virtualhost.as_deref().unwrap_or(host);
        let tls = tls.map(|(c, sni, on)| (c, if on { u.virtualhost.as_deref().or(sni) } else { None }));
        let request = http::request_text(&u.path, host, protocol);
        let first = proxy.map_or(&[][..], http::proxy_check_header);
        let a = http::get_over(target, bindto, (first, &request, u.regex.as_ref()), timeout, tls).await?;
        if !u.status_codes.iter().any(|&(lo, hi)| (lo..=hi).contains(&a.status)) {
            return Err(CheckError::Unexpected(format!("{} answered {}", u.path, a.status)));
        }
        if let Some(d) = &u.digest {
            if *d != a.digest {
                return Err(CheckError::Unexpected(format!("{} digest {} != {d}", u.path, a.digest)));
            }
        }
        if let (Some(r), Some(matched)) = (&u.regex, a.regex_matched) {
            if matched == r.conf.no_match {
                let (how, p) = (if matched { "matched" } else { "did not match" }, &r.conf.pattern);
                return Err(CheckError::Unexpected(format!("{}: regex '{p}' {how}", u.path)));
            }
        }
    }
    Ok(())
}

/// One attempt of one checker.
pub async fn probe_once(spec: &CheckSpec) -> Result<(), CheckError> {
    probe_weight(spec).await.map(drop)
}

/// One attempt of one checker, with the change of weight it asks for (FILE_CHECK; 0 for
/// the others).
pub async fn probe_weight(spec: &CheckSpec) -> Result<i64, CheckError> {
    let t = spec.timeout;
    match &spec.probe {
        Probe::Tcp { target, bindto } => tcp::check(*target, *bindto, t).await,
        Probe::Http { target, bindto, host, urls, protocol, proxy } => {
            get_urls(*target, *bindto, host, (urls, *protocol, *proxy), t, None).await
        }
        Probe::Ssl { target, bindto, host, sni, enable_sni, urls, protocol, client, proxy } => {
            let config = ssl::client_config(client.as_ref())?;
            let tls = Some((&config, sni.as_deref(), *enable_sni));
            get_urls(*target, *bindto, host, (urls, *protocol, *proxy), t, tls).await
        }
        Probe::Udp { target, bindto, payload, require_reply, reply, reply_len } => {
            let e = udp::UdpExpect {
                payload: payload.as_deref(),
                require_reply: *require_reply,
                reply: reply.as_ref(),
                min_len: reply_len.0,
                max_len: reply_len.1,
            };
            udp::check(*target, *bindto, t, e).await
        }
        Probe::Ping { target, bindto } => ping::check(*target, *bindto, t).await,
        Probe::Smtp { target, bindto, helo_name } => smtp::check(*target, *bindto, helo_name, t).await,
        Probe::Dns { target, bindto, name, qtype } => dns::check(*target, *bindto, name, *qtype, t).await,
        Probe::File { path, weight, reverse } => return file::check(path, *weight, *reverse).await,
        Probe::Misc { cmd, timeout, dynamic: Some(weight) } => return misc::dynamic(cmd, *timeout, *weight).await,
        Probe::Misc { cmd, timeout, dynamic: None } => misc::check(cmd, *timeout).await,
        // Judged without I/O by `round`, first.
        Probe::Bfd { name, event } => match event.last() {
            Some(false) => Err(CheckError::Unexpected(format!("BFD session {name} is Down"))),
            Some(true) | None => Ok(()),
        },
    }
    .map(|()| 0)
}

/// One round for a server currently `up`: every checker must pass; a failing checker is
/// retried `retry` times `delay_before_retry` apart while the server is up (a server
/// already down is not retried: one success brings it back).
/// Ok: the sum of the weight changes FILE_CHECKs and `misc_dynamic` ask for.
/// Each attempt is counted in `stats` for real server `id`.
pub async fn round(id: RsId, checks: &[CheckSpec], up: bool, stats: &CheckStats) -> Result<i64, (usize, String)> {
    let mut delta = 0i64;
    // BFD_CHECKs first (they do no I/O: a session Down is known at once, before any other
    // checker's timeouts); one that has heard nothing (no session: -B) counts as passing.
    for (i, c) in checks.iter().enumerate() {
        if let Probe::Bfd { name, event } = &c.probe {
            if event.last() == Some(false) {
                stats.record(id, i, false, Duration::ZERO);
                return Err((i, format!("BFD_CHECK {name}: the session is Down")));
            }
        }
    }
    for (i, c) in checks.iter().enumerate() {
        if let Probe::Bfd { .. } = &c.probe {
            stats.record(id, i, true, Duration::ZERO);
            continue;
        }
        let tries = if up { c.retry + 1 } else { 1 };
        let mut last = None;
        for attempt in 0..tries {
            if attempt > 0 {
                tokio::time::sleep(c.delay_before_retry).await;
            }
            let started = tokio::time::Instant::now();
            let r = probe_weight(c).await;
            stats.record(id, i, r.is_ok(), started.elapsed());
            match r {
                Ok(d) => {
                    delta = delta.saturating_add(d);
                    last = None;
                    break;
                }
                Err(e) => {
                    last = Some(e);
                }
            }
        }
        if let Some(e) = last {
            return Err((i, format!("{:?}: {e}", c.probe)));
        }
    }
    Ok(delta)
}

/// Tasks aborted when this is dropped (with the task holding it).
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(JoinHandle::abort);
    }
}

/// Starts one task per real server, all assumed up at start (as keepalived without
/// `alpha`; [`spawn_checkers_from`] starts some down). Each first round waits a random
/// time up to the server's `warmup` (by default its `delay_loop`), so 10,000 servers do
/// not fire at once. Transitions are sent on `tx`; the tasks end when `tx`'s receiver is
/// dropped. No address is held: checkers with `ha_suspend` stay suspended.
pub fn spawn_checkers(
    servers: Vec<RsChecks>,
    tx: mpsc::Sender<Transition>,
    stats: Arc<CheckStats>,
) -> Vec<JoinHandle<()>> {
    let (_, held) = watch::channel(BTreeSet::new());
    spawn_checkers_from(servers.into_iter().map(|s| (s, true)).collect(), tx, stats, &held)
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

/// As [`spawn_checkers`], each server starting from the given health (a checker restarted
/// by a reload continues from the server's current state; a server under `alpha` starts
/// down, and its first passing round reports it up). A checker starting down reports its
/// first round whatever it says (a failing one as a down [`Transition`] of a server
/// already down); after that, only changes. Returns each task with its server's id
/// (servers without checks get none).
///
/// A server with `ha_suspend` runs its rounds only while `held` has one of its virtual
/// server's addresses; otherwise each round is skipped, the server keeping its health,
/// and checking resumes, from that health, at the first round after the address comes
/// (keepalived's checkers disabled by `update_checker_activity` reschedule themselves
/// every delay_loop without checking).
pub fn spawn_checkers_from(
    servers: Vec<(RsChecks, bool)>,
    tx: mpsc::Sender<Transition>,
    stats: Arc<CheckStats>,
    held: &HeldAddrs,
) -> Vec<(RsId, JoinHandle<()>)> {
    servers
        .into_iter()
        .filter(|(s, _)| !s.checks.is_empty())
        .map(|(s, initially_up)| {
            let tx = tx.clone();
            let stats = stats.clone();
            let held = held.clone();
            let offset = warmup_delay(s.warmup);
            let id = s.id;
            stats.register(id, &s.checks);
            let task = tokio::spawn(async move {
                // BFD_CHECKs: a round as soon as a session changes (keepalived acts on the
                // event), through forwarders that end with this task.
                let (wake_tx, mut wake) = mpsc::channel::<()>(1);
                let _forwarders = AbortOnDrop(
                    s.checks
                        .iter()
                        .filter_map(|c| match &c.probe {
                            Probe::Bfd { event: BfdEvent(Some(rx)), .. } => Some(rx.clone()),
                            _ => None,
                        })
                        .map(|mut rx| {
                            let tx = wake_tx.clone();
                            tokio::spawn(async move {
                                while rx.changed().await.is_ok() {
                                    let _ = tx.try_send(());
                                }
                            })
                        })
                        .collect(),
                );
                drop(wake_tx);
                let start = tokio::time::Instant::now() + offset;
                let mut tick = tokio::time::interval_at(start, s.delay_loop.max(Duration::from_millis(1)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut up = initially_up;
                let mut delta = 0;
                // Starting down, the first round is reported even when it fails: the pool
                // runs the down notifiers of a server alpha started down then
                // (keepalived's `!has_run`).
                let mut first = !initially_up;
                // Under ha_suspend, whether rounds run (logged when it changes).
                let mut active = None;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        Some(()) = wake.recv() => {}
                    }
                    if let Some(addrs) = &s.ha_suspend {
                        let on = held.borrow().iter().any(|a| addrs.contains(a));
                        if active != Some(on) {
                            let verb = if on { "activating" } else { "suspending" };
                            tracing::info!(
                                id,
                                vips = ?addrs,
                                "ha_suspend: {verb} the health checker (virtual server address {})",
                                if on { "held" } else { "not held" }
                            );
                            active = Some(on);
                            stats.suspend(id, !on);
                        }
                        if !on {
                            continue;
                        }
                    }
                    // A session's change during a round starts it over (BFD_CHECKs first).
                    let r = loop {
                        tokio::select! {
                            r = round(s.id, &s.checks, up, &stats) => break r,
                            Some(()) = wake.recv() => {}
                        }
                    };
                    let new_delta = *r.as_ref().unwrap_or(&delta);
                    let report = r.is_ok() != up || new_delta != delta || first;
                    first = false;
                    if report {
                        up = r.is_ok();
                        delta = new_delta;
                        let first_body = || s.checks.iter().find_map(|c| c.probe.alert_body(true));
                        let (reason, alert) = match r {
                            Err((i, e)) => (e, s.checks.get(i).and_then(|c| c.probe.alert_body(false))),
                            Ok(0) => ("checks pass".into(), first_body()),
                            Ok(d) => {
                                (format!("checks pass, weight change {d:+} (FILE_CHECK, misc_dynamic)"), first_body())
                            }
                        };
                        let t = Transition { id: s.id, up, reason, weight_delta: delta, alert };
                        if tx.send(t).await.is_err() {
                            return;
                        }
                    }
                }
            });
            (id, task)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::config::CheckCommon;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn tcp_spec(target: SocketAddr, retry: u32) -> CheckSpec {
        CheckSpec {
            probe: Probe::Tcp { target, bindto: None },
            timeout: Duration::from_millis(300),
            retry,
            delay_before_retry: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn retries_before_declaring_down_and_one_success_brings_back() {
        let stats = CheckStats::default();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let t = std::time::Instant::now();
        assert!(round(0, &[tcp_spec(addr, 2)], true, &stats).await.is_err());
        assert_eq!(stats.attempts.load(Ordering::Relaxed), 3);
        assert!(t.elapsed() >= Duration::from_millis(100), "two delays before retry");
        assert!(round(0, &[tcp_spec(addr, 2)], false, &stats).await.is_err());
        assert_eq!(stats.attempts.load(Ordering::Relaxed), 4, "a down server is not retried");
    }

    #[tokio::test]
    async fn checker_reports_down_then_up_transitions() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let stats = Arc::new(CheckStats::default());
        let (tx, mut rx) = mpsc::channel(16);
        let rs = RsChecks {
            id: 7,
            checks: vec![tcp_spec(addr, 1)],
            delay_loop: Duration::from_millis(100),
            warmup: Duration::ZERO,
            ha_suspend: None,
        };
        let tasks = spawn_checkers(vec![rs], tx, stats);
        // Up at start: no transition while the listener answers.
        let accept = tokio::spawn(async move {
            for _ in 0..3 {
                let _ = l.accept().await;
            }
            drop(l);
        });
        let t = rx.recv().await.unwrap();
        assert_eq!((t.id, t.up), (7, false), "{t:?}");
        accept.await.unwrap();
        // Bring it back on the same port.
        let l = TcpListener::bind(addr).await.unwrap();
        let keep = tokio::spawn(async move {
            loop {
                if let Ok((mut c, _)) = l.accept().await {
                    let _ = c.shutdown().await;
                }
            }
        });
        let t = rx.recv().await.unwrap();
        assert_eq!((t.id, t.up), (7, true));
        keep.abort();
        tasks.into_iter().for_each(|t| t.abort());
    }

    /// A checker starting down (alpha) reports its first round even when it fails (a down
    /// transition of a server already down), then only changes; one starting up reports
    /// only changes.
    #[tokio::test]
    async fn a_checker_starting_down_reports_its_first_failing_round_once() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let stats = Arc::new(CheckStats::default());
        let (tx, mut rx) = mpsc::channel(16);
        let rs = |id| RsChecks {
            id,
            checks: vec![tcp_spec(addr, 0)],
            delay_loop: Duration::from_millis(30),
            warmup: Duration::from_millis(30),
            ha_suspend: None,
        };
        let (_, held) = watch::channel(BTreeSet::new());
        let tasks = spawn_checkers_from(vec![(rs(1), false), (rs(2), true)], tx, stats, &held);
        let mut got = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(t)) = tokio::time::timeout_at(until, rx.recv()).await {
            got.push((t.id, t.up));
        }
        got.sort();
        assert_eq!(got, [(1, false), (2, false)], "one report each over several rounds");
        tasks.into_iter().for_each(|(_, t)| t.abort());
    }

    /// keepalived's warmup (`register_checkers_thread`): a random delay between 0 and the
    /// warmup, none for 0; its default chain (`validate_check_config`): the checker's own,
    /// else the real server's (the virtual server's), else the delay_loop; none for a server
    /// checked by FILE_CHECKs only (keepalived reads the files at once).
    #[test]
    fn warmup_is_a_random_delay_up_to_the_checker_real_server_or_delay_loop() {
        assert_eq!(warmup_delay(Duration::ZERO), Duration::ZERO);
        let max = Duration::from_secs(10);
        let d: Vec<Duration> = (0..64).map(|_| warmup_delay(max)).collect();
        assert!(d.iter().all(|d| *d <= max), "{d:?}");
        assert!(d.iter().any(|x| *x != d[0]), "random: {d:?}");
        let l = crate::keepalived::parse_str(
            "virtual_server 192.0.2.1 80 {\n lb_kind FNAT\n delay_loop 7\n warmup 3\n\
             real_server 10.0.1.1 80 {\n  TCP_CHECK {\n  }\n }\n\
             real_server 10.0.1.2 80 {\n  warmup 2\n  TCP_CHECK {\n   warmup 1\n  }\n }\n\
             real_server 10.0.1.3 80 {\n  warmup 2\n  TCP_CHECK {\n  }\n }\n}\n\
             virtual_server 192.0.2.2 80 {\n lb_kind FNAT\n delay_loop 7\n\
             real_server 10.0.1.1 80 {\n  TCP_CHECK {\n  }\n }\n\
             real_server 10.0.1.4 80 {\n  FILE_CHECK {\n   track_file tf\n  }\n }\n}\n\
             track_file tf {\n file /nonexistent/rvs-warmup-test\n}\n",
            "t",
            crate::keepalived::Options::default(),
        );
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let w: Vec<u64> = l
            .config
            .virtual_servers
            .iter()
            .flat_map(|v| v.real_servers.iter().map(|r| rs_checks(0, r, v.delay_loop, None).warmup.as_secs()))
            .collect();
        assert_eq!(w, [3, 1, 2, 7, 0], "FILE_CHECK only: no warmup");
    }

    /// The first round waits the server's warmup, not a share of the delay_loop: with
    /// warmup 0 every server is checked at once even with a long delay_loop.
    #[tokio::test]
    async fn warmup_0_checks_every_server_at_once() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stats = Arc::new(CheckStats::default());
        let (tx, _rx) = mpsc::channel(16);
        let rs = |id| RsChecks {
            id,
            checks: vec![tcp_spec(addr, 0)],
            delay_loop: Duration::from_secs(60),
            warmup: Duration::ZERO,
            ha_suspend: None,
        };
        let tasks = spawn_checkers((0..4).map(rs).collect(), tx, stats.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stats.attempts.load(Ordering::Relaxed), 4);
        tasks.into_iter().for_each(|t| t.abort());
        drop(l);
    }

    /// keepalived's `ha_suspend` (`update_checker_activity`, the checkers'
    /// `!checker->enabled`): while none of the virtual server's addresses is held, rounds
    /// are skipped and the server keeps its health (no transition); once one is held,
    /// checking resumes from that health (up: the failing round reports it down); when it
    /// goes, checking stops again. A checker without ha_suspend runs whatever is held.
    #[tokio::test]
    async fn ha_suspend_runs_rounds_only_while_an_address_is_held() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let vip: IpAddr = "192.0.2.1".parse().unwrap();
        let stats = Arc::new(CheckStats::default());
        let (tx, mut rx) = mpsc::channel(16);
        let rs = |id, suspend: bool| RsChecks {
            id,
            checks: vec![tcp_spec(closed, 0)],
            delay_loop: Duration::from_millis(30),
            warmup: Duration::ZERO,
            ha_suspend: suspend.then(|| vec!["192.0.2.9".parse().unwrap(), vip]),
        };
        let (held_tx, held) = watch::channel(BTreeSet::new());
        let tasks = spawn_checkers_from(vec![(rs(1, true), true), (rs(2, false), true)], tx, stats.clone(), &held);
        let t = rx.recv().await.unwrap();
        assert_eq!((t.id, t.up), (2, false), "not suspended");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(rx.try_recv().is_err(), "suspended: no transition");
        assert_eq!(stats.of(1)[0].attempts, 0, "suspended: no attempt");
        assert!(stats.of(1)[0].suspended && !stats.of(2)[0].suspended, "status shows it");
        held_tx.send_modify(|h| {
            h.insert("192.0.2.77".parse().unwrap());
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(stats.of(1)[0].attempts, 0, "another address: still suspended");
        held_tx.send_modify(|h| {
            h.insert(vip);
        });
        let t = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
        assert_eq!((t.id, t.up), (1, false), "resumed from up: the failing round reports down");
        assert!(!stats.of(1)[0].suspended);
        held_tx.send_modify(|h| h.clear());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = stats.of(1)[0].attempts;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(stats.of(1)[0].attempts, n, "suspended again");
        assert!(stats.of(1)[0].suspended);
        assert!(stats.of(2)[0].attempts > 5);
        tasks.into_iter().for_each(|(_, t)| t.abort());
    }

    #[tokio::test]
    async fn http_probe_checks_status_and_digest() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let (mut c, _) = l.accept().await.unwrap();
                let mut b = [0u8; 512];
                let _ = tokio::io::AsyncReadExt::read(&mut c, &mut b).await;
                let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello\n").await;
            }
        });
        let url = |digest: Option<&str>, codes: Vec<(u16, u16)>| UrlConf {
            path: "/".into(),
            status_codes: codes,
            digest: digest.map(str::to_string),
            virtualhost: None,
            regex: None,
        };
        let spec = |u: UrlConf| CheckSpec {
            probe: Probe::Http {
                target: addr,
                bindto: None,
                host: "h".into(),
                urls: vec![u],
                protocol: HttpProtocol::V1_0,
                proxy: None,
            },
            timeout: Duration::from_secs(1),
            retry: 0,
            delay_before_retry: Duration::ZERO,
        };
        probe_once(&spec(url(Some("b1946ac92492d2347c6235b4d2611184"), vec![(200, 299)]))).await.unwrap();
        let e = probe_once(&spec(url(Some("00000000000000000000000000000000"), vec![(200, 299)]))).await;
        assert!(matches!(e, Err(CheckError::Unexpected(_))), "{e:?}");
        let e = probe_once(&spec(url(None, vec![(302, 302)]))).await;
        assert!(matches!(e, Err(CheckError::Unexpected(_))), "{e:?}");
        server.abort();
    }

    /// The Host header a real server sees: a url's `virtualhost`, else the checker's
    /// (or its virtual server's), else `IP:PORT`.
    #[tokio::test]
    async fn http_probe_sends_the_virtualhost_as_host() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let server = tokio::spawn(async move {
            loop {
                let (mut c, _) = l.accept().await.unwrap();
                let mut b = [0u8; 512];
                let n = tokio::io::AsyncReadExt::read(&mut c, &mut b).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&b[..n]).to_string();
                let host = req.lines().find_map(|l| l.strip_prefix("Host: ")).unwrap_or_default().to_string();
                let _ = tx.send(host);
                let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
            }
        });
        let cfg = |checker: Option<&str>, url: Option<&str>| CheckConf {
            kind: CheckKind::Http {
                urls: vec![UrlConf {
                    path: "/".into(),
                    status_codes: vec![(200, 299)],
                    digest: None,
                    virtualhost: url.map(str::to_string),
                    regex: None,
                }],
                virtualhost: checker.map(str::to_string),
                protocol: HttpProtocol::V1_0,
            },
            common: CheckCommon::default(),
            loc: crate::keepalived::Loc { file: std::sync::Arc::from("t"), line: 1 },
        };
        for (checker, url, want) in [
            (Some("www.example.com"), Some("health.example.com"), "health.example.com".to_string()),
            (Some("www.example.com"), None, "www.example.com".to_string()),
            (None, None, addr.to_string()),
        ] {
            let rs = RealServerConf {
                addr,
                weight: 1,
                upper: 0,
                lower: 0,
                inhibit_on_failure: false,
                lb_kind: Default::default(),
                notify_up: None,
                notify_down: None,
                delay_loop: None,
                warmup: None,
                checks: Vec::new(),
                smtp_alert: None,
                loc: crate::keepalived::Loc { file: std::sync::Arc::from("t"), line: 1 },
            };
            probe_once(&spec(&rs, &cfg(checker, url), 60.0, None)).await.unwrap();
            assert_eq!(rx.recv().await.unwrap(), want);
            // The virtual server's proxy_protocol reaches the probe (the header itself:
            // `http::tests::the_proxy_protocol_header_goes_first`).
            let rs = RealServerConf { checks: vec![cfg(checker, url)], ..rs };
            let c = rs_checks(0, &rs, 60.0, Some(ProxyProtocol::V2));
            assert!(matches!(c.checks[0].probe, Probe::Http { proxy: Some(ProxyProtocol::V2), .. }));
        }
        server.abort();
    }
}
