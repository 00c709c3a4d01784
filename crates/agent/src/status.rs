//! `rvs-agent status [--json]`: what the running agent reports about itself.
//!
//! The agent listens on a Unix stream socket of its own (`--status-socket`, default
//! [`DEFAULT_SOCKET`], mode 0600: root only, like rvsd's control socket). A client connects
//! and reads one JSON document ([`AgentStatus`]) until the agent closes the connection;
//! nothing is sent the other way, so there is no protocol to get wrong and no request that
//! could disturb VRRP. The socket also guards against two agents on one socket: a second
//! agent finding the socket answering refuses to start; a stale socket left by a killed
//! agent is replaced.

use crate::agent::Running;
use crate::bfd::{BfdStatus, Drops};
use crate::check::pool::VsState;
use crate::check::{CheckStats, CheckerStats};
use crate::dataplane::{Dataplane, DataplaneStatus, HeldOut, Proto, ServiceKey};
use crate::vrrp::fsm::State;
use crate::vrrp::instance::InstanceStatus;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Where the agent answers unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvs-agent.sock";

/// Everything `rvs-agent status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The agent's process id.
    pub pid: u32,
    /// The keepalived.conf it runs.
    pub config: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// VRRP instances.
    pub instances: Vec<InstanceStatus>,
    /// Virtual servers and their real servers' health.
    pub virtual_servers: Vec<VsStatus>,
    /// The connection to the dataplane.
    pub dataplane: DataplaneStatus,
    /// Configuration reloads (SIGHUP).
    #[serde(default)]
    pub reloads: ReloadStatus,
    /// BFD sessions (`bfd_instance`).
    #[serde(default)]
    pub bfd: Vec<BfdStatus>,
    /// BFD packets that reached no session, by reason.
    #[serde(default)]
    pub bfd_drops: Drops,
}

/// What configuration reloads did since the agent started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Reloads applied (a file without changes included).
    pub applied: u64,
    /// Reloads refused (errors in the file; nothing changed).
    pub refused: u64,
    /// Whether the last one was refused (false before any).
    pub last_refused: bool,
}

/// A virtual server (several services for a `virtual_server group`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsStatus {
    /// Its name in the log: `tcp 192.0.2.1:80` or `tcp group NAME`.
    #[serde(default)]
    pub name: String,
    /// The services it stands for.
    pub services: Vec<ServiceKey>,
    /// Whether the live weight meets `quorum` (else the sorry server, if any, serves).
    pub quorum_ok: bool,
    /// `sorry_server`.
    pub sorry_server: Option<SocketAddr>,
    /// Real servers.
    pub real_servers: Vec<RsStatus>,
}

/// A real server's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsStatus {
    /// Address and port.
    pub addr: SocketAddr,
    /// Passing its checks.
    pub up: bool,
    /// Configured weight.
    pub weight: u32,
    /// The weight the dataplane was given: the configured one when up, 0 when down with
    /// `inhibit_on_failure`, none when down and removed.
    pub dataplane_weight: Option<u32>,
    /// Why its health last changed.
    pub reason: Option<String>,
    /// Its checkers' counters, in configuration order.
    #[serde(default)]
    pub checkers: Vec<CheckerStats>,
    /// rvsd's passive check (`dest_check`) holds it out of scheduling: weight 0 in rvsd
    /// whatever `dataplane_weight` says, until rvsd lets it back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_out: bool,
}

fn vs_status(v: &VsState, stats: &CheckStats, held_out: &[HeldOut]) -> VsStatus {
    VsStatus {
        name: v.name.clone(),
        services: v.keys.clone(),
        quorum_ok: v.quorum_ok,
        sorry_server: v.sorry,
        real_servers: v
            .rs
            .iter()
            .map(|r| RsStatus {
                addr: r.addr,
                up: r.up,
                weight: r.weight,
                dataplane_weight: match (r.up, r.inhibit) {
                    (true, _) => Some(r.effective_weight()),
                    (false, true) => Some(0),
                    (false, false) => None,
                },
                reason: r.reason.clone(),
                checkers: stats.of(r.id),
                held_out: held_out
                    .iter()
                    .any(|h| v.keys.iter().any(|k| *k == h.service && k.rs_addr(r.addr, r.fwd) == h.rs)),
            })
            .collect(),
    }
}

/// What the agent answers with, from its running parts.
#[derive(Clone)]
pub struct Reporter {
    /// The running instances and checkers.
    pub running: Running,
    /// The dataplane.
    pub dataplane: Arc<dyn Dataplane>,
    /// The configuration file.
    pub config: PathBuf,
    /// When the agent started.
    pub started: Instant,
}

impl Reporter {
    /// The status now.
    pub fn snapshot(&self) -> AgentStatus {
        let dataplane = self.dataplane.status();
        AgentStatus {
            pid: std::process::id(),
            config: self.config.display().to_string(),
            uptime_s: self.started.elapsed().as_secs(),
            instances: self.running.instances().iter().map(|r| r.borrow().clone()).collect(),
            virtual_servers: self
                .running
                .virtual_servers()
                .iter()
                .map(|v| vs_status(v, &self.running.check_stats, &dataplane.held_out))
                .collect(),
            dataplane,
            reloads: ReloadStatus {
                applied: self.running.reloads.applied.load(Ordering::Relaxed),
                refused: self.running.reloads.refused.load(Ordering::Relaxed),
                last_refused: self.running.reloads.last_refused.load(Ordering::Relaxed),
            },
            bfd: self.running.bfd_sessions(),
            bfd_drops: self.running.bfd_demux.drops.read(),
        }
    }
}

/// Why the status socket could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Another agent answers on the socket.
    #[error("{0} answers: another rvs-agent is running (give this one another --status-socket)")]
    InUse(String),
    /// A system call failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The answer was not a status.
    #[error("{0}: bad answer: {1}")]
    Bad(String, String),
}

/// Binds the status socket: creates its directory, replaces a stale socket, refuses one
/// another agent answers on.
pub fn bind(path: &Path) -> Result<UnixListener, StatusError> {
    let p = path.display().to_string();
    let io = |e| StatusError::Io(p.clone(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StatusError::Io(dir.display().to_string(), e))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(StatusError::InUse(p));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let l = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(l)
}

/// Answers every connection with the status as JSON, until the task is dropped. Must run
/// inside a tokio runtime.
pub async fn serve(listener: UnixListener, reporter: Reporter) {
    let listener = match listener.set_nonblocking(true).and_then(|()| tokio::net::UnixListener::from_std(listener)) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("status socket: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((mut s, _)) => {
                let json = match serde_json::to_vec(&reporter.snapshot()) {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::error!("status: {e}");
                        continue;
                    }
                };
                tokio::spawn(async move {
                    let write = async {
                        s.write_all(&json).await?;
                        s.shutdown().await
                    };
                    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), write).await {
                        tracing::debug!("status client: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("status socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Asks the agent listening on `path`.
pub fn query(path: &Path) -> Result<AgentStatus, StatusError> {
    let p = path.display().to_string();
    let io = |e| StatusError::Io(p.clone(), e);
    let mut s = UnixStream::connect(path).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(io)?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(io)?;
    serde_json::from_str(&buf).map_err(|e| StatusError::Bad(p.clone(), e.to_string()))
}

/// A state as `status` and metrics name it: `INIT`, `BACKUP`, `MASTER`, `FAULT`.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// A service key as ipvsadm shows it: `TCP 198.18.0.100:80`, `FWM 1`, `FWM 1 IPv6`.
pub fn service_name(k: &ServiceKey) -> String {
    let p = match k.proto {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    };
    match (k.fwmark, k.vip) {
        (0, _) => format!("{p} {}", SocketAddr::new(k.vip, k.vport)),
        (m, IpAddr::V4(_)) => format!("FWM {m}"),
        (m, IpAddr::V6(_)) => format!("FWM {m} IPv6"),
    }
}

/// The status for people.
pub fn render(s: &AgentStatus) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "rvs-agent pid {}, {}, up {} s", s.pid, s.config, s.uptime_s);
    let d = &s.dataplane;
    let _ = write!(o, "dataplane {}", d.kind);
    if let Some(t) = &d.target {
        let _ = write!(o, " {t}");
    }
    let _ = write!(o, ": {}", if d.connected { "connected" } else { "NOT CONNECTED" });
    if d.pending > 0 {
        let _ = write!(o, ", {} change(s) pending", d.pending);
    }
    if d.services_follow_vips {
        let _ = write!(o, ", services follow the VIPs");
    }
    o.push('\n');
    if let Some(e) = &d.last_error {
        let _ = writeln!(o, "  last error: {e}");
    }
    if let Some(e) = &d.sync_error {
        let _ = writeln!(o, "  sync roles not applied: {e}");
    }
    for i in &s.instances {
        let master = match i.master {
            Some(m) if m == i.address => format!("{m} (this node)"),
            Some(m) => m.to_string(),
            None => "unknown".into(),
        };
        let vips: Vec<String> = i.vips.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(
            o,
            "vrrp_instance {}: {} priority {} master {} on {} ({}) VIPs {}",
            i.name,
            state_name(i.state),
            i.priority,
            master,
            i.interface,
            i.address,
            vips.join(" ")
        );
    }
    for b in &s.bfd {
        let _ = write!(
            o,
            "bfd_instance {}: {} neighbor {} ({}) tx {} ms detect {} ms, {} up, in {} out {}",
            b.name,
            b.state.name(),
            b.neighbor,
            b.remote_state.name(),
            b.tx_interval_ms,
            b.detection_time_ms,
            b.ups,
            b.packets_in,
            b.packets_out
        );
        if b.ignored > 0 {
            let _ = write!(o, ", {} ignored (not the known peer's discriminator)", b.ignored);
        }
        if b.diag != "No Diagnostic" {
            let _ = write!(o, " (last down: {})", b.diag);
        }
        if let Some(e) = &b.error {
            let _ = write!(o, " SOCKET: {e}");
        }
        o.push('\n');
    }
    let bd = &s.bfd_drops;
    if bd.invalid + bd.no_session + bd.ttl + bd.overflow > 0 {
        let _ = writeln!(
            o,
            "bfd dropped: {} invalid, {} for no session, {} with a low TTL, {} queue full",
            bd.invalid, bd.no_session, bd.ttl, bd.overflow
        );
    }
    for v in &s.virtual_servers {
        let names: Vec<String> = v.services.iter().map(service_name).collect();
        let _ = write!(o, "virtual_server {}", names.join(", "));
        if !v.quorum_ok {
            let _ = write!(o, " QUORUM LOST");
            if let Some(sorry) = v.sorry_server {
                let _ = write!(o, " (sorry server {sorry})");
            }
        }
        o.push('\n');
        for r in &v.real_servers {
            let w = match r.dataplane_weight {
                Some(w) => format!("weight {w}"),
                None => "removed".into(),
            };
            let _ = write!(o, "  {:<24} {:<4} {w}", r.addr.to_string(), if r.up { "up" } else { "DOWN" });
            if let (false, Some(why)) = (r.up, &r.reason) {
                let _ = write!(o, " ({why})");
            }
            if r.checkers.iter().any(|c| c.suspended) {
                let _ = write!(o, " checks suspended (ha_suspend: no address of the virtual server held)");
            }
            if r.held_out {
                let _ = write!(o, " held out by rvsd's passive check (dest_check): weight 0 there");
            }
            o.push('\n');
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AgentStatus {
        let key = ServiceKey::new(Proto::Tcp, "198.18.0.100".parse().unwrap(), 80);
        AgentStatus {
            pid: 7,
            config: "/etc/keepalived/keepalived.conf".into(),
            uptime_s: 3,
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                state: State::Master,
                priority: 150,
                master: Some("198.18.0.1".parse().unwrap()),
                address: "198.18.0.1".parse().unwrap(),
                interface: "dpdk0.kni".into(),
                vips: vec!["198.18.0.100/32".parse().unwrap()],
                base_priority: 150,
                counters: Default::default(),
            }],
            virtual_servers: vec![VsStatus {
                name: "tcp 198.18.0.100:80".into(),
                services: vec![key],
                quorum_ok: true,
                sorry_server: None,
                real_servers: vec![
                    RsStatus {
                        addr: "198.19.0.11:8080".parse().unwrap(),
                        up: true,
                        weight: 1,
                        dataplane_weight: Some(1),
                        reason: None,
                        checkers: vec![CheckerStats {
                            name: "TCP_CHECK".into(),
                            suspended: true,
                            ..CheckerStats::default()
                        }],
                        held_out: false,
                    },
                    RsStatus {
                        addr: "198.19.0.12:8080".parse().unwrap(),
                        up: false,
                        weight: 1,
                        dataplane_weight: Some(0),
                        reason: Some("connection refused".into()),
                        checkers: Vec::new(),
                        held_out: false,
                    },
                    RsStatus {
                        addr: "198.19.0.13:8080".parse().unwrap(),
                        up: true,
                        weight: 2,
                        dataplane_weight: Some(2),
                        reason: None,
                        checkers: Vec::new(),
                        held_out: true,
                    },
                ],
            }],
            dataplane: DataplaneStatus { kind: "rvsd".into(), connected: true, ..Default::default() },
            reloads: ReloadStatus::default(),
            bfd: Vec::new(),
            bfd_drops: Drops::default(),
        }
    }

    #[test]
    fn renders_instances_and_real_servers() {
        let text = render(&sample());
        assert!(text.contains("vrrp_instance VI_1: MASTER priority 150 master 198.18.0.1 (this node)"), "{text}");
        assert!(text.contains("virtual_server TCP 198.18.0.100:80\n"), "{text}");
        assert!(text.contains("198.19.0.12:8080         DOWN weight 0 (connection refused)"), "{text}");
        assert!(text.contains("dataplane rvsd: connected"), "{text}");
        assert!(
            text.contains(
                "198.19.0.13:8080         up   weight 2 held out by rvsd's passive check (dest_check): weight 0 there\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("198.19.0.11:8080         up   weight 1 checks suspended (ha_suspend: no address"),
            "{text}"
        );
    }

    #[test]
    fn socket_round_trip_and_single_owner() {
        let dir = std::env::temp_dir().join(format!("rvs-agent-status-{}", std::process::id()));
        let path = dir.join("agent.sock");
        let l = bind(&path).unwrap();
        assert!(matches!(bind(&path), Err(StatusError::InUse(_))), "a second agent is refused");
        let want = sample();
        let w = want.clone();
        let server = std::thread::spawn(move || {
            let _probe = l.accept().unwrap(); // the refused second agent's connection
            let (mut c, _) = l.accept().unwrap();
            std::io::Write::write_all(&mut c, &serde_json::to_vec(&w).unwrap()).unwrap();
            drop(l);
        });
        assert_eq!(query(&path).unwrap(), want);
        server.join().unwrap();
        // The listener is gone: the stale socket is replaced.
        let _l = bind(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
