//! `--metrics-listen ADDR:PORT`: the agent's Prometheus metrics over HTTP (`GET /metrics`).
//!
//! Served on the agent's own runtime: each scrape takes the snapshot `rvs-agent status`
//! shows ([`Reporter::snapshot`]) and renders it on a blocking thread, so VRRP timers never
//! wait for a rendering. At most [`MAX_SCRAPERS`] connections are served at once (the
//! others wait in the listen backlog), each for at most [`IO_TIMEOUT`] to send its request
//! and as long to read the reply. The request line is read by [`ctl::metrics::ask`] and the
//! families written by [`ctl::metrics::Exposition`], as rvsd's endpoint does.

use crate::bfd::packet::State::Up;
use crate::status::{state_name, AgentStatus, Reporter};
use crate::vrrp::fsm::State;
use ctl::metrics::{self, Ask, Exposition};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How long a scraper may take to send its request, and to read the reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapers served at once.
pub const MAX_SCRAPERS: usize = 4;

/// The exposition of `s` (Prometheus text format 0.0.4).
pub fn render(s: &AgentStatus) -> String {
    let mut e = Exposition::default();
    for i in &s.instances {
        let inst = [("instance", i.name.as_str())];
        for st in [State::Initialize, State::Backup, State::Master, State::Fault] {
            e.gauge(
                "rvs_agent_vrrp_state",
                "VRRP state of the instance: 1 for the state it is in, 0 for the others.",
                &[("instance", &i.name), ("state", state_name(st))],
                f64::from(u8::from(i.state == st)),
            );
        }
        e.gauge("rvs_agent_vrrp_priority", "Configured VRRP priority.", &inst, f64::from(i.base_priority));
        e.gauge(
            "rvs_agent_vrrp_effective_priority",
            "VRRP priority advertised: the configured one changed by tracked scripts, interfaces and files.",
            &inst,
            f64::from(i.priority),
        );
        let c = &i.counters;
        for t in &c.transitions {
            e.counter(
                "rvs_agent_vrrp_transitions_total",
                "VRRP state changes of the instance since it started.",
                &[("instance", &i.name), ("from", state_name(t.from)), ("to", state_name(t.to))],
                t.count,
            );
        }
        e.counter("rvs_agent_vrrp_adverts_sent_total", "VRRP adverts sent.", &inst, c.adverts_sent);
        e.counter(
            "rvs_agent_vrrp_adverts_received_total",
            "VRRP adverts of the instance's virtual router accepted.",
            &inst,
            c.adverts_received,
        );
        e.counter(
            "rvs_agent_vrrp_address_mismatch_total",
            "VRRP adverts accepted whose addresses differ from the instance's virtual_ipaddress (keepalived's \
             addr_list_err: the routers' configurations differ).",
            &inst,
            c.address_mismatch,
        );
        for (reason, n) in &c.adverts_dropped {
            e.counter(
                "rvs_agent_vrrp_adverts_dropped_total",
                "VRRP packets read and refused, by reason.",
                &[("instance", &i.name), ("reason", reason)],
                *n,
            );
        }
    }
    for b in &s.bfd {
        let l = [("bfd_instance", b.name.as_str())];
        e.gauge("rvs_agent_bfd_up", "1 while the BFD session is Up, else 0.", &l, f64::from(u8::from(b.state == Up)));
        e.counter("rvs_agent_bfd_ups_total", "Times the BFD session came Up.", &l, b.ups);
        e.counter("rvs_agent_bfd_packets_received_total", "BFD packets the session accepted.", &l, b.packets_in);
        e.counter("rvs_agent_bfd_packets_sent_total", "BFD packets the session sent.", &l, b.packets_out);
    }
    let d = &s.bfd_drops;
    for (reason, n) in [("invalid", d.invalid), ("no_session", d.no_session), ("ttl", d.ttl), ("overflow", d.overflow)]
    {
        e.counter(
            "rvs_agent_bfd_dropped_total",
            "BFD packets received on port 3784 that reached no session, by reason: invalid (RFC 5880 checks), \
             no_session (unknown discriminator, or not from the session's neighbor), ttl (below ttl - max_hops), \
             overflow (the session's queue was full).",
            &[("reason", reason)],
            n,
        );
    }
    for v in &s.virtual_servers {
        e.gauge(
            "rvs_agent_vs_quorum_up",
            "1 while the virtual server's live weight meets its quorum, else 0 (the sorry server serves).",
            &[("vs", &v.name)],
            f64::from(u8::from(v.quorum_ok)),
        );
        for r in &v.real_servers {
            let rs = r.addr.to_string();
            e.gauge(
                "rvs_agent_real_server_up",
                "1 while the real server passes its health checks, else 0.",
                &[("vs", &v.name), ("rs", &rs)],
                f64::from(u8::from(r.up)),
            );
            e.gauge(
                "rvs_agent_real_server_held_out",
                "1 while rvsd's passive check (dest_check) holds the real server out of scheduling (weight 0 in rvsd), else 0.",
                &[("vs", &v.name), ("rs", &rs)],
                f64::from(u8::from(r.held_out)),
            );
            for c in &r.checkers {
                let labels = [("vs", v.name.as_str()), ("rs", rs.as_str()), ("checker", c.name.as_str())];
                e.counter("rvs_agent_checks_total", "Health check attempts.", &labels, c.attempts);
                e.counter("rvs_agent_check_failures_total", "Health check attempts that failed.", &labels, c.failures);
                e.gauge(
                    "rvs_agent_check_suspended",
                    "1 while the checker's rounds are skipped (ha_suspend: no address of the virtual server held), else 0.",
                    &labels,
                    f64::from(u8::from(c.suspended)),
                );
                if let Some(us) = c.last_duration_us {
                    e.gauge(
                        "rvs_agent_check_duration_seconds",
                        "How long the last health check attempt took.",
                        &labels,
                        us as f64 / 1e6,
                    );
                }
            }
        }
    }
    let d = &s.dataplane;
    e.gauge(
        "rvs_agent_dataplane_up",
        "1 while the last exchange with the dataplane (rvsd's control socket) succeeded, else 0.",
        &[("kind", &d.kind)],
        f64::from(u8::from(d.connected)),
    );
    e.counter(
        "rvs_agent_dataplane_reconnects_total",
        "Connections to the dataplane made again after the first.",
        &[("kind", &d.kind)],
        d.reconnects,
    );
    e.gauge(
        "rvs_agent_dataplane_pending_changes",
        "Changes waiting to be applied to the dataplane.",
        &[("kind", &d.kind)],
        d.pending as f64,
    );
    let help = "Configuration reloads (SIGHUP): applied, or refused for errors in the file.";
    e.counter("rvs_agent_config_reloads_total", help, &[("result", "applied")], s.reloads.applied);
    e.counter("rvs_agent_config_reloads_total", help, &[("result", "refused")], s.reloads.refused);
    e.gauge(
        "rvs_agent_config_last_reload_successful",
        "0 when the last reload was refused, else 1.",
        &[],
        f64::from(u8::from(!s.reloads.last_refused)),
    );
    e.gauge("rvs_agent_uptime_seconds", "Seconds since the agent started.", &[], s.uptime_s as f64);
    e.render().unwrap_or_else(|err| {
        tracing::error!("metrics: {err}");
        String::new()
    })
}

/// Serves `GET /metrics` on `listener` until the task is dropped. Must run inside a tokio
/// runtime.
pub async fn serve(listener: std::net::TcpListener, reporter: Reporter) {
    let listener = match listener.set_nonblocking(true).and_then(|()| tokio::net::TcpListener::from_std(listener)) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("metrics: {e}; the metrics endpoint stops");
            return;
        }
    };
    let reporter = Arc::new(reporter);
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let reporter = reporter.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &reporter).await {
                        tracing::debug!(%peer, "metrics: {e}");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request head, answers it, closes.
async fn answer(mut stream: TcpStream, reporter: &Reporter) -> io::Result<()> {
    let head = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => {
            return reply(&mut stream, metrics::TOO_LARGE, "text/plain", b"request too large\n", false).await
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no whole request in time")),
    };
    let ask = metrics::ask(&head);
    if let Some((status, body)) = metrics::refusal(&ask, "rvs-agent") {
        return reply(&mut stream, status, "text/plain", body.as_bytes(), false).await;
    }
    let snapshot = reporter.snapshot();
    let text = tokio::task::spawn_blocking(move || render(&snapshot)).await.map_err(io::Error::other)?;
    reply(&mut stream, "200 OK", metrics::CONTENT_TYPE, text.as_bytes(), matches!(ask, Ask::Metrics { head: true }))
        .await
}

/// The request head (up to the blank line); none when it is longer than
/// [`metrics::MAX_REQUEST`].
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !metrics::head_complete(&head) {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a whole request"));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > metrics::MAX_REQUEST {
            return Ok(None);
        }
    }
    Ok(Some(head))
}

async fn reply(stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8], head_only: bool) -> io::Result<()> {
    let header = metrics::response_head(status, ctype, body.len());
    let write = async {
        stream.write_all(header.as_bytes()).await?;
        if !head_only {
            stream.write_all(body).await?;
        }
        stream.shutdown().await
    };
    tokio::time::timeout(IO_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "reply not read in time")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfd::{bfd_instance, BfdStatus, Drops};
    use crate::check::CheckerStats;
    use crate::dataplane::DataplaneStatus;
    use crate::status::{ReloadStatus, RsStatus, VsStatus};
    use crate::vrrp::instance::{InstanceCounters, InstanceStatus, StateChange};

    #[test]
    fn families_follow_the_status() {
        let mut counters =
            InstanceCounters { adverts_sent: 12, adverts_received: 3, address_mismatch: 7, ..Default::default() };
        counters.adverts_dropped.insert("auth".into(), 2);
        counters.transitions.push(StateChange { from: State::Backup, to: State::Master, count: 1 });
        let s = AgentStatus {
            pid: 1,
            config: "k.conf".into(),
            uptime_s: 5,
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                state: State::Master,
                priority: 140,
                master: None,
                address: "198.18.0.1".parse().unwrap(),
                interface: "dpdk0.kni".into(),
                vips: Vec::new(),
                base_priority: 150,
                counters,
            }],
            virtual_servers: vec![VsStatus {
                name: "tcp 192.0.2.1:80".into(),
                services: Vec::new(),
                quorum_ok: true,
                sorry_server: None,
                real_servers: vec![RsStatus {
                    addr: "10.0.0.1:80".parse().unwrap(),
                    up: false,
                    weight: 1,
                    dataplane_weight: Some(0),
                    reason: None,
                    checkers: vec![CheckerStats {
                        name: "TCP_CHECK".into(),
                        attempts: 4,
                        failures: 1,
                        last_duration_us: Some(2500),
                        suspended: false,
                    }],
                    held_out: true,
                }],
            }],
            dataplane: DataplaneStatus { kind: "rvsd".into(), connected: true, reconnects: 2, ..Default::default() },
            reloads: ReloadStatus { applied: 1, refused: 1, last_refused: true },
            bfd: vec![BfdStatus {
                state: crate::bfd::packet::State::Up,
                ups: 2,
                packets_in: 40,
                packets_out: 41,
                ..crate::bfd::initial_status(&bfd_instance())
            }],
            bfd_drops: Drops { ttl: 3, ..Drops::default() },
        };
        let text = render(&s);
        for line in [
            "rvs_agent_vrrp_state{instance=\"VI_1\",state=\"MASTER\"} 1",
            "rvs_agent_vrrp_state{instance=\"VI_1\",state=\"BACKUP\"} 0",
            "rvs_agent_vrrp_priority{instance=\"VI_1\"} 150",
            "rvs_agent_vrrp_effective_priority{instance=\"VI_1\"} 140",
            "rvs_agent_vrrp_transitions_total{instance=\"VI_1\",from=\"BACKUP\",to=\"MASTER\"} 1",
            "rvs_agent_vrrp_adverts_sent_total{instance=\"VI_1\"} 12",
            "rvs_agent_vrrp_adverts_received_total{instance=\"VI_1\"} 3",
            "rvs_agent_vrrp_adverts_dropped_total{instance=\"VI_1\",reason=\"auth\"} 2",
            "rvs_agent_vrrp_address_mismatch_total{instance=\"VI_1\"} 7",
            "rvs_agent_real_server_up{vs=\"tcp 192.0.2.1:80\",rs=\"10.0.0.1:80\"} 0",
            "rvs_agent_real_server_held_out{vs=\"tcp 192.0.2.1:80\",rs=\"10.0.0.1:80\"} 1",
            "rvs_agent_checks_total{vs=\"tcp 192.0.2.1:80\",rs=\"10.0.0.1:80\",checker=\"TCP_CHECK\"} 4",
            "rvs_agent_check_failures_total{vs=\"tcp 192.0.2.1:80\",rs=\"10.0.0.1:80\",checker=\"TCP_CHECK\"} 1",
            "rvs_agent_check_duration_seconds{vs=\"tcp 192.0.2.1:80\",rs=\"10.0.0.1:80\",checker=\"TCP_CHECK\"} 0.0025",
            "rvs_agent_check_suspended{vs=\"tcp 192.0.2.1:80\",rs=\"10.0.0.1:80\",checker=\"TCP_CHECK\"} 0",
            "rvs_agent_dataplane_up{kind=\"rvsd\"} 1",
            "rvs_agent_dataplane_reconnects_total{kind=\"rvsd\"} 2",
            "rvs_agent_config_reloads_total{result=\"refused\"} 1",
            "rvs_agent_config_last_reload_successful 0",
            "rvs_agent_bfd_up{bfd_instance=\"to_peer\"} 1",
            "rvs_agent_bfd_ups_total{bfd_instance=\"to_peer\"} 2",
            "rvs_agent_bfd_packets_received_total{bfd_instance=\"to_peer\"} 40",
            "rvs_agent_bfd_packets_sent_total{bfd_instance=\"to_peer\"} 41",
            "rvs_agent_bfd_dropped_total{reason=\"ttl\"} 3",
            "rvs_agent_bfd_dropped_total{reason=\"invalid\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
    }
}
