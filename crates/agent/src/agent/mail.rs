//! keepalived's mail alerts (2.2.7's `core/smtp.c`): a VRRP instance or sync group
//! changing state, a real server going up or down, a virtual server gaining or losing its
//! quorum sends a short mail to `notification_email`'s recipients through `smtp_server`,
//! with keepalived's subjects and bodies, so that the filters and habits built on them
//! keep working:
//!
//! ```text
//! Subject: [ROUTER_ID] VRRP Instance VI_1 - Entering MASTER state
//! Subject: [ROUTER_ID] Realserver [10.0.0.1]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - DOWN
//! ```
//!
//! As keepalived: plain SMTP (HELO, MAIL FROM, RCPT TO for each recipient, DATA, QUIT; no
//! TLS, no AUTH: a relay on the management network), the connection and each reply
//! bounded by `smtp_connect_timeout` (30 s), each mail sent on its own, in the background,
//! never waited for by the VRRP or health-check work; a failure is logged (the alert is
//! lost, as keepalived's). A server's reply may span at most [`MAX_REPLY_LINES`] lines
//! and the whole conversation at most [`MAX_CONVERSATION`] timeouts, so a hostile or
//! broken relay cannot hold a mail forever. Differences: the `Date` header is in UTC;
//! `X-Mailer` says `Keepalived (rvs-agent)`; at most [`MAX_IN_FLIGHT`] mails are under
//! way at once (more are dropped with a warning: a dead relay must not pile up
//! connections); at shutdown the agent waits up to 5 s for the mails under way (its
//! instances' `Stopping`).
//!
//! Which VRRP instances and sync groups mail is read from the configuration at each
//! reload ([`Mailer::reconfigure`]), so that changing the mail settings never restarts an
//! instance.

use crate::keepalived::config::{Config, SmtpConf};
use crate::vrrp::fsm::State;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Mails under way at once, at most; more are dropped with a warning.
pub const MAX_IN_FLIGHT: usize = 64;

/// How long the agent waits at shutdown for the mails under way, at most.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Lines one reply may have (`250-...` continuations included), at most.
pub const MAX_REPLY_LINES: usize = 64;

/// The whole conversation of one mail takes at most this many `smtp_connect_timeout`s.
pub const MAX_CONVERSATION: u32 = 4;

/// One alert: keepalived's subject after its `[ROUTER_ID] ` prefix, and its one-line
/// body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// e.g. `VRRP Instance VI_1 - Entering MASTER state`.
    pub subject: String,
    /// e.g. `=> VRRP Instance is now owning VRRP VIPs <=`.
    pub body: String,
}

impl Alert {
    /// A VRRP instance (`group` false) or sync group entering `state`, as keepalived's
    /// `vrrp_smtp_notifier` / `vrrp_sync_smtp_notifier`.
    pub fn vrrp(group: bool, name: &str, state: State) -> Alert {
        let (what, entering) = match state {
            State::Master => ("Entering MASTER state", "MASTER"),
            State::Backup => ("Entering BACKUP state", "BACKUP"),
            State::Fault => ("Entering FAULT state", "FAULT"),
            State::Initialize => ("Stopping", "stopping"),
        };
        let body = match (group, state) {
            (false, State::Master) => "=> VRRP Instance is now owning VRRP VIPs <=".to_string(),
            (false, State::Backup | State::Fault) => "=> VRRP Instance is no longer owning VRRP VIPs <=".into(),
            (false, State::Initialize) => "=> VRRP Instance stopping <=".into(),
            (true, State::Initialize) => "=> All VRRP group instances are now stopping <=".into(),
            (true, _) => format!("=> All VRRP group instances are now in {entering} state <="),
        };
        let kind = if group { "Group" } else { "Instance" };
        Alert { subject: format!("VRRP {kind} {name} - {what}"), body }
    }

    /// A real server (`[RIP]:PROTO:PORT`) of a virtual server (keepalived's `FMT_VS`)
    /// going up or down, as keepalived's checkers' `SMTP_MSG_RS`.
    pub fn real_server(rs: &str, vs: &str, up: bool, body: &str) -> Alert {
        let state = if up { "UP" } else { "DOWN" };
        Alert { subject: format!("Realserver {rs} of virtual server {vs} - {state}"), body: body.to_string() }
    }

    /// A virtual server's quorum, as keepalived's `SMTP_MSG_VS`.
    pub fn virtual_server(vs: &str, up: bool, body: String) -> Alert {
        let state = if up { "UP" } else { "DOWN" };
        Alert { subject: format!("Virtualserver {vs} - {state}"), body }
    }
}

/// Where the mails go and what they say about this host, from `global_defs`, with which
/// VRRP instances and sync groups mail.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Envelope {
    server: (String, u16),
    helo: String,
    from: String,
    to: Vec<String>,
    timeout: Duration,
    router_id: String,
    no_email_faults: bool,
    /// Instances (`false`) and sync groups (`true`) by name: whether they mail
    /// ([`SmtpConf::vrrp_alert`]).
    vrrp: HashMap<(bool, String), bool>,
}

impl Envelope {
    /// None when the configuration sends no mail (no server or no recipient).
    fn from_conf(cfg: &Config) -> Option<Envelope> {
        let smtp = &cfg.global_defs.smtp;
        let SmtpConf { server, helo_name, connect_timeout, from, to, no_email_faults, .. } = smtp;
        if !smtp.enabled() {
            return None;
        }
        let (host, user) = this_host();
        let alert = |own| smtp.vrrp_alert(own);
        let instances = cfg.vrrp_instances.iter().map(|i| ((false, i.name.clone()), alert(i.notify.smtp_alert)));
        let groups = cfg.vrrp_sync_groups.iter().map(|g| ((true, g.name.clone()), alert(g.notify.smtp_alert)));
        Some(Envelope {
            server: server.clone()?,
            helo: helo_name.clone().unwrap_or_else(|| host.clone()),
            from: from.clone().unwrap_or_else(|| format!("{user}@{host}")),
            to: to.clone(),
            timeout: Duration::from_secs(u64::from(connect_timeout.unwrap_or(30).max(1))),
            router_id: cfg.global_defs.router_id.clone().unwrap_or_else(|| host.clone()),
            no_email_faults: *no_email_faults,
            vrrp: instances.chain(groups).collect(),
        })
    }

    /// The whole DATA part, headers and body, dot-stuffed, ending with `\r\n.\r\n`.
    fn message(&self, alert: &Alert, date: &str) -> String {
        let to = self.to.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",\r\n ");
        let mut m = format!(
            "Date: {date}\r\nFrom: {}\r\nSubject: [{}] {}\r\nX-Mailer: Keepalived (rvs-agent)\r\nTo: {to}\r\n\r\n",
            self.from, self.router_id, alert.subject
        );
        for line in alert.body.lines() {
            if line.starts_with('.') {
                m.push('.');
            }
            m.push_str(line);
            m.push_str("\r\n");
        }
        m.push_str("\r\n.\r\n");
        m
    }
}

/// An address for the SMTP envelope: `Name <addr>` gives its `<addr>` (keepalived's
/// `mail_cmd` / `rcpt_cmd` after 2.2.7; a relay refuses a display name there), any other
/// goes in angle brackets.
fn bracketed(addr: &str) -> String {
    match addr.rfind('<') {
        Some(i) if addr.ends_with('>') => addr[i..].to_string(),
        _ => format!("<{addr}>"),
    }
}

/// This host's name and the agent's user, looked up once: keepalived's default router id,
/// HELO name and sender (`USER@HOST`). The name is the canonical one (`hostname -f`, as
/// keepalived's `getaddrinfo(AI_CANONNAME)`), else the kernel's node name.
pub fn this_host() -> (String, String) {
    static HOST: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let node = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string());
        let fqdn = std::process::Command::new("hostname")
            .arg("-f")
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let host = fqdn.into_iter().chain(node).find(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
        let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name);
        (host, user.unwrap_or_else(|| "root".into()))
    })
    .clone()
}

/// RFC 5322's date, in UTC (`Sun, 06 Dec 2026 12:30:40 +0000`).
fn rfc5322_date(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Why a mail was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server's name did not resolve.
    #[error("smtp_server {0}: cannot resolve: {1}")]
    Resolve(String, std::io::Error),
    /// Connecting, reading or writing failed.
    #[error("{stage}: {source}")]
    Io {
        /// What the agent was doing.
        stage: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// No answer within `smtp_connect_timeout`.
    #[error("{0}: no answer within smtp_connect_timeout")]
    Timeout(&'static str),
    /// The server answered with another code than the step's.
    #[error("{stage}: the server answered '{reply}' (expected {want})")]
    Refused {
        /// The step.
        stage: &'static str,
        /// The server's reply (its last line).
        reply: String,
        /// The code the step needs.
        want: u16,
    },
}

/// One SMTP conversation.
struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    timeout: Duration,
}

impl Session {
    /// Reads one reply (its continuation lines `NNN-...` too, at most
    /// [`MAX_REPLY_LINES`], all within the timeout) and checks its code.
    async fn expect(&mut self, stage: &'static str, want: u16) -> Result<(), MailError> {
        match tokio::time::timeout(self.timeout, self.reply(stage)).await {
            Ok(Ok(line)) => match line.get(..3).and_then(|c| c.parse::<u16>().ok()) {
                Some(code) if code == want => Ok(()),
                _ => Err(MailError::Refused { stage, reply: line.chars().take(200).collect(), want }),
            },
            Ok(Err(e)) => Err(e),
            Err(_) => Err(MailError::Timeout(stage)),
        }
    }

    /// A reply's last line (bytes of any encoding, lines of at most 4 KiB).
    async fn reply(&mut self, stage: &'static str) -> Result<String, MailError> {
        let io = |source| MailError::Io { stage, source };
        for _ in 0..MAX_REPLY_LINES {
            let mut line = Vec::new();
            let n = (&mut self.reader).take(4096).read_until(b'\n', &mut line).await.map_err(io)?;
            if n == 0 {
                return Err(io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")));
            }
            if line.get(3) != Some(&b'-') {
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
        }
        let why = format!("a reply of over {MAX_REPLY_LINES} lines");
        Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, why)))
    }

    /// Sends `text`, then reads the reply to it.
    async fn step(&mut self, stage: &'static str, text: &str, want: u16) -> Result<(), MailError> {
        within(self.timeout, stage, self.writer.write_all(text.as_bytes())).await?;
        self.expect(stage, want).await
    }
}

/// `f`, an I/O step, within `limit`: its error or the timeout named by `stage`.
async fn within<T>(
    limit: Duration,
    stage: &'static str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, MailError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(|source| MailError::Io { stage, source }),
        Err(_) => Err(MailError::Timeout(stage)),
    }
}

/// Sends one alert through `env`'s server, within [`MAX_CONVERSATION`] timeouts.
async fn deliver(env: &Envelope, alert: &Alert, date: &str) -> Result<(), MailError> {
    match tokio::time::timeout(env.timeout * MAX_CONVERSATION, converse(env, alert, date)).await {
        Ok(r) => r,
        Err(_) => Err(MailError::Timeout("the conversation")),
    }
}

/// The SMTP conversation of one mail.
async fn converse(env: &Envelope, alert: &Alert, date: &str) -> Result<(), MailError> {
    let (host, port) = &env.server;
    let target = format!("{host}:{port}");
    let resolve = tokio::time::timeout(env.timeout, tokio::net::lookup_host(target.clone()));
    let addr: SocketAddr = match resolve.await {
        Ok(Ok(mut a)) => a.next().ok_or_else(|| {
            MailError::Resolve(target.clone(), std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
        })?,
        Ok(Err(e)) => return Err(MailError::Resolve(target, e)),
        Err(_) => return Err(MailError::Timeout("resolving smtp_server")),
    };
    let stream = within(env.timeout, "connecting", TcpStream::connect(addr)).await?;
    let (r, w) = stream.into_split();
    let mut s = Session { reader: BufReader::new(r), writer: w, timeout: env.timeout };
    s.expect("greeting", 220).await?;
    s.step("HELO", &format!("HELO {}\r\n", env.helo), 250).await?;
    s.step("MAIL FROM", &format!("MAIL FROM:{}\r\n", bracketed(&env.from)), 250).await?;
    for to in &env.to {
        s.step("RCPT TO", &format!("RCPT TO:{}\r\n", bracketed(to)), 250).await?;
    }
    s.step("DATA", "DATA\r\n", 354).await?;
    s.step("the message", &env.message(alert, date), 250).await?;
    // The mail is accepted: QUIT's answer does not matter.
    let _ = tokio::time::timeout(s.timeout, s.writer.write_all(b"QUIT\r\n")).await;
    Ok(())
}

/// The agent's mail sender: the envelope from `global_defs` and the mails under way.
#[derive(Debug, Default)]
pub struct Mailer {
    env: Mutex<Option<Arc<Envelope>>>,
    sending: Mutex<JoinSet<()>>,
}

impl Mailer {
    /// Takes `cfg`'s mail settings (at start and after a reload).
    pub fn reconfigure(&self, cfg: &Config) {
        let mut env = self.env.lock().unwrap_or_else(|e| e.into_inner());
        let mut new = Envelope::from_conf(cfg);
        // An instance or group the new file removes still mails its last state as it was
        // configured to (keepalived's removed vrrp keeps its smtp_alert).
        if let (Some(n), Some(old)) = (&mut new, env.as_ref()) {
            for (k, on) in &old.vrrp {
                n.vrrp.entry(k.clone()).or_insert(*on);
            }
        }
        *env = new.map(Arc::new);
    }

    /// Sends `alert` in the background (nothing when `global_defs` sends no mail).
    pub fn send(&self, alert: Alert) {
        let Some(env) = self.env.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(subject = %alert.subject, "mail alert not sent: no runtime");
            return;
        };
        let mut sending = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        while sending.try_join_next().is_some() {}
        if sending.len() >= MAX_IN_FLIGHT {
            tracing::warn!(subject = %alert.subject, "mail alert dropped: {MAX_IN_FLIGHT} mails already under way");
            return;
        }
        let date = rfc5322_date(SystemTime::now());
        sending.spawn_on(
            async move {
                match deliver(&env, &alert, &date).await {
                    Ok(()) => tracing::info!(subject = %alert.subject, "mail alert sent"),
                    Err(e) => {
                        tracing::warn!(subject = %alert.subject, server = %env.server.0, "mail alert not sent: {e}")
                    }
                }
            },
            &rt,
        );
    }

    /// A VRRP instance's or group's state `state` entered: mailed when it mails
    /// (`smtp_alert`, resolved), unless it is the state mailed last (`mailed`), or FAULT
    /// under `no_email_faults` (keepalived's `last_email_state`).
    pub fn send_vrrp(&self, group: bool, name: &str, state: State, mailed: &mut Option<State>) {
        if !self.vrrp_mails(group, name, Some(state)) || *mailed == Some(state) {
            return;
        }
        *mailed = Some(state);
        self.send(Alert::vrrp(group, name, state));
    }

    /// A VRRP instance a reload removed, with `notify_deleted`: keepalived's `Deleted`
    /// mail, when the instance mails.
    pub fn send_deleted(&self, name: &str) {
        if self.vrrp_mails(false, name, None) {
            let subject = format!("VRRP Instance {name} - Deleted");
            self.send(Alert { subject, body: "=> VRRP Deleted at reload <=".into() });
        }
    }

    /// Whether a VRRP instance's or group's change to `state` is mailed.
    fn vrrp_mails(&self, group: bool, name: &str, state: Option<State>) -> bool {
        let env = self.env.lock().unwrap_or_else(|e| e.into_inner());
        env.as_ref().is_some_and(|e| {
            let on = e.vrrp.get(&(group, name.to_string())).copied().unwrap_or(false);
            on && !(e.no_email_faults && state == Some(State::Fault))
        })
    }

    /// Waits for the mails under way, at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let mut set = std::mem::take(&mut *self.sending.lock().unwrap_or_else(|e| e.into_inner()));
        if set.is_empty() {
            return;
        }
        let n = set.len();
        if tokio::time::timeout(limit, async { while set.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!(left = set.len(), of = n, "mail alerts still under way at exit: abandoned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn env(port: u16) -> Envelope {
        Envelope {
            server: ("127.0.0.1".into(), port),
            helo: "lb1".into(),
            from: "keepalived@lb1".into(),
            to: vec!["ops@example.com".into(), "<noc@example.com>".into()],
            timeout: Duration::from_secs(2),
            router_id: "LVS_A".into(),
            no_email_faults: false,
            vrrp: HashMap::new(),
        }
    }

    #[test]
    fn subjects_and_bodies_are_keepalived_s() {
        let a = Alert::vrrp(false, "VI_1", State::Master);
        assert_eq!(a.subject, "VRRP Instance VI_1 - Entering MASTER state");
        assert_eq!(a.body, "=> VRRP Instance is now owning VRRP VIPs <=");
        assert_eq!(Alert::vrrp(false, "VI_1", State::Fault).body, "=> VRRP Instance is no longer owning VRRP VIPs <=");
        assert_eq!(Alert::vrrp(false, "VI_1", State::Initialize).subject, "VRRP Instance VI_1 - Stopping");
        let g = Alert::vrrp(true, "G", State::Backup);
        assert_eq!(g.subject, "VRRP Group G - Entering BACKUP state");
        assert_eq!(g.body, "=> All VRRP group instances are now in BACKUP state <=");
        assert_eq!(Alert::vrrp(true, "G", State::Initialize).body, "=> All VRRP group instances are now stopping <=");
        let rs =
            Alert::real_server("[10.0.0.1]:tcp:80", "[192.0.2.1]:tcp:80", false, "=> TCP CHECK failed on service <=");
        assert_eq!(rs.subject, "Realserver [10.0.0.1]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - DOWN");
        let vs = Alert::virtual_server("[g]:0", true, "=> Gained quorum 1+0=1 <= 2 <=".into());
        assert_eq!(vs.subject, "Virtualserver [g]:0 - UP");
    }

    #[test]
    fn dates_are_rfc5322_in_utc() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc5322_date(t(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(t(1_796_560_240)), "Sun, 06 Dec 2026 12:30:40 +0000");
        assert_eq!(rfc5322_date(t(951_782_400)), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn the_message_has_keepalived_s_headers_and_is_dot_stuffed() {
        let a = Alert { subject: "VRRP Instance VI_1 - Stopping".into(), body: ".hidden\nline".into() };
        assert_eq!(
            env(25).message(&a, "D"),
            "Date: D\r\nFrom: keepalived@lb1\r\nSubject: [LVS_A] VRRP Instance VI_1 - Stopping\r\n\
             X-Mailer: Keepalived (rvs-agent)\r\nTo: ops@example.com,\r\n <noc@example.com>\r\n\r\n\
             ..hidden\r\nline\r\n\r\n.\r\n"
        );
    }

    /// A scripted server: answers each command with the next reply, records what it got.
    async fn server(replies: &'static [&'static [u8]]) -> (u16, tokio::task::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let mut got = String::new();
            w.write_all(replies[0]).await.unwrap();
            let mut data = false;
            for reply in &replies[1..] {
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap() == 0 {
                        return got;
                    }
                    got.push_str(&line);
                    if !data || line == ".\r\n" {
                        data = line == "DATA\r\n";
                        break;
                    }
                }
                if w.write_all(reply).await.is_err() {
                    break;
                }
            }
            got
        });
        (port, task)
    }

    #[tokio::test]
    async fn a_mail_goes_through_the_whole_conversation() {
        let (port, task) = server(&[
            b"220 mx ESMTP\r\n",
            b"250 mx\r\n",
            b"250 ok\r\n",
            b"250-first\r\n250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
            b"250 queued\r\n",
            b"221 bye\r\n",
        ])
        .await;
        let a = Alert::vrrp(false, "VI_1", State::Master);
        deliver(&env(port), &a, "D").await.unwrap();
        let got = task.await.unwrap();
        assert!(got.starts_with(
            "HELO lb1\r\nMAIL FROM:<keepalived@lb1>\r\nRCPT TO:<ops@example.com>\r\nRCPT TO:<noc@example.com>\r\n\
             DATA\r\nDate: D\r\n"
        ));
        assert!(got.contains("Subject: [LVS_A] VRRP Instance VI_1 - Entering MASTER state\r\n"), "{got}");
        assert!(got.ends_with("=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n.\r\nQUIT\r\n"), "{got}");
    }

    #[tokio::test]
    async fn a_refused_recipient_or_a_silent_server_is_an_error_naming_the_step() {
        let (port, _task) = server(&[b"220 mx\r\n", b"250 mx\r\n", b"250 ok\r\n", b"550 no such user\r\n"]).await;
        let e = deliver(&env(port), &Alert::vrrp(false, "VI_1", State::Backup), "D").await.unwrap_err();
        assert_eq!(e.to_string(), "RCPT TO: the server answered '550 no such user' (expected 250)");
        // Accepts and never speaks: the greeting times out.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut e2 = env(l.local_addr().unwrap().port());
        e2.timeout = Duration::from_millis(200);
        let e = deliver(&e2, &Alert::vrrp(false, "VI_1", State::Backup), "D").await.unwrap_err();
        assert!(matches!(e, MailError::Timeout("greeting")), "{e}");
    }

    /// A hostile relay cannot hold a mail: endless continuation lines end it; a reply in
    /// another encoding is read; a display name never reaches the envelope.
    #[tokio::test]
    async fn a_hostile_relay_cannot_hold_a_mail_and_odd_replies_are_read() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let flood = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for _ in 0..10_000 {
                if s.write_all(b"220-still talking\r\n").await.is_err() {
                    break;
                }
            }
        });
        let e = deliver(&env(port), &Alert::vrrp(false, "VI_1", State::Backup), "D").await.unwrap_err();
        assert!(e.to_string().starts_with("greeting: a reply of over 64 lines"), "{e}");
        flood.abort();
        // A Latin-1 greeting (not UTF-8) is a greeting.
        let (port, task) = server(&[
            b"220 caf\xe9\r\n",
            b"250 mx\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
            b"250 queued\r\n",
            b"221 bye\r\n",
        ])
        .await;
        let mut e = env(port);
        e.from = "Load Balancer <lb@example.com>".into();
        deliver(&e, &Alert::vrrp(false, "VI_1", State::Backup), "D").await.unwrap();
        let got = task.await.unwrap();
        assert!(got.contains("MAIL FROM:<lb@example.com>\r\n"), "{got}");
        assert_eq!(bracketed("ops@example.com"), "<ops@example.com>");
    }

    #[tokio::test]
    async fn vrrp_mails_skip_the_state_mailed_last_and_faults_under_no_email_faults() {
        let m = Mailer::default();
        let mut mailed = None;
        // No envelope: nothing, and nothing recorded.
        m.send_vrrp(false, "VI_1", State::Backup, &mut mailed);
        assert_eq!(mailed, None);
        // VI_1 mails (smtp_alert_vrrp), VI_2 does not (its own smtp_alert off).
        let inst = |name: &str, id: u8, own: &str| {
            format!("vrrp_instance {name} {{\n interface eth0\n virtual_router_id {id}\n{own} virtual_ipaddress {{\n  10.0.0.{id}\n }}\n}}\n")
        };
        let text = format!(
            "global_defs {{\n notification_email {{\n  ops@example.com\n }}\n smtp_server 127.0.0.1 9\n smtp_alert_vrrp\n no_email_faults\n}}\n{}{}",
            inst("VI_1", 1, ""),
            inst("VI_2", 2, " smtp_alert off\n")
        );
        let l = crate::keepalived::parse_str(&text, "t", crate::keepalived::Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        m.reconfigure(&l.config);
        let mut other = None;
        m.send_vrrp(false, "VI_2", State::Master, &mut other);
        m.send_vrrp(true, "VI_1", State::Master, &mut other);
        assert_eq!(other, None, "VI_2 mails nothing, nor does a group of that name that is not there");
        m.send_vrrp(false, "VI_1", State::Master, &mut mailed);
        assert_eq!(mailed, Some(State::Master));
        m.send_vrrp(false, "VI_1", State::Fault, &mut mailed);
        assert_eq!(mailed, Some(State::Master), "FAULT is not mailed under no_email_faults");
        assert_eq!(m.sending.lock().unwrap().len(), 1, "MASTER again after the fault: not mailed twice");
        m.send_vrrp(false, "VI_1", State::Master, &mut mailed);
        assert_eq!(m.sending.lock().unwrap().len(), 1);
        m.flush(Duration::from_secs(5)).await;
    }
}
