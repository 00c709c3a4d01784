//! What a Prometheus scrape of rvsd holds: per service and real server, drops by reason,
//! per worker, per port and queue, the mbuf pool, the neighbour table and the
//! configuration generation. Names follow Prometheus's conventions (`rvs_` prefix,
//! `_total` on counters, units in names); the counters the dataplane declares with
//! [`fnat::counter_set!`] keep their names and help texts here.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use fnat::stats::{Counters, DropReason};
use fnat::synproxy::SynProxyEvent;
use frame::{NetCounter, NetCounters, NetDrop};

use super::views::worker_silent;
use super::Control;
use crate::state::Refused;
use ctl::metrics::Exposition;

use crate::metrics::{Scrape, TelemetryCmd};

/// `proto:vip:port` as the `service` label (`tcp:10.0.0.1:80`, `tcp:[2001:db8::1]:80`);
/// `fwmark:1` (`fwmark6:1` for IPv6) for a firewall-mark service.
pub fn service_label(key: &fnat::service::ServiceKey) -> String {
    match (key.fwmark, key.vip) {
        (0, vip) => format!("{}:{}", key.proto.name(), SocketAddr::new(vip, key.vport)),
        (m, IpAddr::V4(_)) => format!("fwmark:{m}"),
        (m, IpAddr::V6(_)) => format!("fwmark6:{m}"),
    }
}

impl Control {
    /// Answers a scrape (a worker that did not answer is logged; the asker gets nothing).
    pub(super) fn scrape(&self, scrape: Scrape) {
        let done = match scrape {
            Scrape::Prometheus(reply) => self.metrics().map(|text| {
                let _ = reply.send(text);
            }),
            Scrape::Telemetry(cmd, reply) => self.telemetry(cmd).map(|dict| {
                let _ = reply.send(dict);
            }),
        };
        if let Err(r) = done {
            tracing::warn!("metrics: {}", r.message);
        }
    }

    /// A telemetry command's dictionary.
    fn telemetry(&self, cmd: TelemetryCmd) -> Result<dpdk::telemetry::Dict, Refused> {
        let reports = self.reports(Duration::from_secs(2)).ok_or_else(worker_silent)?;
        let summary = super::summary(self.shared.gen.load(Ordering::Acquire), &reports);
        let numbers = |v: &serde_json::Value| -> dpdk::telemetry::Dict {
            v.as_object().into_iter().flatten().filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n))).collect()
        };
        Ok(match cmd {
            TelemetryCmd::Stats => {
                let mut d = numbers(&summary["totals"]);
                d.extend([
                    ("live_conns".to_string(), summary["conns"].as_u64().unwrap_or(0)),
                    ("generation".to_string(), summary["gen"].as_u64().unwrap_or(0)),
                    ("workers".to_string(), reports.len() as u64),
                    ("mbufs_in_use".to_string(), u64::from(self.pool.in_use())),
                ]);
                d.extend(numbers(&summary["net"]));
                d
            }
            TelemetryCmd::Drops => numbers(&summary["drops"]),
        })
    }

    /// One scrape's text, or a refusal when a worker did not answer.
    pub(super) fn metrics(&self) -> Result<String, Refused> {
        let reports = self.reports(Duration::from_secs(2)).ok_or_else(worker_silent)?;
        let mut e = Exposition::default();
        self.process_metrics(&mut e);
        self.service_metrics(&mut e, &reports);
        worker_metrics(&mut e, &reports, self.pool_size);
        self.port_metrics(&mut e, &reports);
        e.render().map_err(|err| Refused::new(ctl::ErrorCode::Internal, format!("metrics encoding: {err}")))
    }

    fn process_metrics(&self, e: &mut Exposition) {
        e.gauge(
            "rvs_build_info",
            "rvsd's version (the value is always 1).",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        e.gauge(
            "rvs_config_generation",
            "The configuration generation published to the workers (one more per change).",
            &[],
            self.shared.gen.load(Ordering::Acquire) as f64,
        );
        e.gauge(
            "rvs_uptime_seconds",
            "Seconds since rvsd started forwarding.",
            &[],
            self.started.elapsed().as_secs_f64(),
        );
        e.gauge("rvs_mempool_mbufs", "Packet buffers in the pool.", &[], f64::from(self.pool.size()));
        e.gauge("rvs_mempool_mbufs_in_use", "Packet buffers taken from the pool.", &[], f64::from(self.pool.in_use()));
        e.gauge(
            "rvs_neighbours",
            "Entries in the neighbour table (ARP and ND).",
            &[],
            self.neighs.iter().count() as f64,
        );
        let counters = serde_json::to_value(self.neigh_counters()).unwrap_or_default();
        for (event, v) in counters.as_object().into_iter().flatten() {
            e.counter(
                "rvs_neighbour_events_total",
                "What the neighbour table did: learned, changed, confirmed, evicted, probes, probe_failed, expired, refused_* bindings and asked_full requests.",
                &[("event", event)],
                v.as_u64().unwrap_or(0),
            );
        }
        if let Some(Ok(sync)) = self.shared.sync.as_ref().map(|s| s.counters.lock()) {
            for c in crate::sync::SyncCounter::ALL {
                e.counter(
                    "rvs_sync_events_total",
                    "What the connection sync thread did: messages and records sent and received, and messages refused by reason.",
                    &[("event", c.name())],
                    sync.get(c),
                );
            }
        }
    }

    fn service_metrics(&self, e: &mut Exposition, reports: &[crate::shared::WorkerReport]) {
        let views = self.service_views(reports, true, 0..self.state.services.len());
        for v in &views {
            let s = &v.service;
            let service = service_label(&s.key());
            let c = v.stats.unwrap_or_default();
            traffic(e, "service", &[("service", &service)], &c);
            e.counter(
                "rvs_service_refused_total",
                "New flows to the service refused (input checks, deny or allow list, rate or per-source limit, \
                 no real server, no local port, a full table); rvs_drops_total names the reasons.",
                &[("service", &service)],
                c.refused,
            );
            for d in &v.dests {
                let rs = SocketAddr::new(d.config.addr, d.config.port).to_string();
                let labels = [("service", service.as_str()), ("rs", rs.as_str())];
                traffic(e, "real_server", &labels, &d.stats.unwrap_or_default());
                e.gauge(
                    "rvs_real_server_weight",
                    "The real server's weight (0: no new connections).",
                    &labels,
                    f64::from(d.config.weight),
                );
                e.gauge(
                    "rvs_real_server_inhibited",
                    "1 while the service's passive check (dest_check) holds the real server out of scheduling \
                     (its weight kept).",
                    &labels,
                    if d.inhibited { 1.0 } else { 0.0 },
                );
                e.gauge(
                    "rvs_real_server_persistent_connections",
                    "Persistence templates pointing to the real server (ipvsadm's PersistConn).",
                    &labels,
                    d.persist as f64,
                );
            }
        }
    }

    fn port_metrics(&self, e: &mut Exposition, reports: &[crate::shared::WorkerReport]) {
        for link in self.links(true) {
            let port = link.name.as_str();
            let l = [("port", port)];
            e.gauge("rvs_port_up", "1 when the port's link is up.", &l, if link.up { 1.0 } else { 0.0 });
            let Some(s) = link.stats else { continue };
            let counters: [(&str, &str, u64); 8] = [
                ("rvs_port_rx_packets_total", "Packets the port received (NIC counter).", s.ipackets),
                ("rvs_port_tx_packets_total", "Packets the port sent (NIC counter).", s.opackets),
                ("rvs_port_rx_bytes_total", "Bytes the port received (NIC counter).", s.ibytes),
                ("rvs_port_tx_bytes_total", "Bytes the port sent (NIC counter).", s.obytes),
                (
                    "rvs_port_rx_missed_total",
                    "Packets the NIC dropped: no free receive descriptor (imissed).",
                    s.imissed,
                ),
                ("rvs_port_rx_errors_total", "Erroneous packets received (ierrors).", s.ierrors),
                ("rvs_port_tx_errors_total", "Packets the NIC failed to send (oerrors).", s.oerrors),
                ("rvs_port_rx_nombuf_total", "Receive buffer allocation failures (rx_nombuf).", s.rx_nombuf),
            ];
            for (name, help, v) in counters {
                e.counter(name, help, &l, v);
            }
            for (q, v) in s.q_ipackets.iter().enumerate() {
                let q = q.to_string();
                e.counter(
                    "rvs_port_queue_rx_packets_total",
                    "Packets received per queue (one queue per worker).",
                    &[("port", port), ("queue", &q)],
                    *v,
                );
            }
            for (q, v) in s.q_opackets.iter().enumerate() {
                let q = q.to_string();
                e.counter(
                    "rvs_port_queue_tx_packets_total",
                    "Packets sent per queue (one queue per worker).",
                    &[("port", port), ("queue", &q)],
                    *v,
                );
            }
            for r in reports {
                let w = r.id.to_string();
                e.counter(
                    "rvs_port_tx_dropped_total",
                    "Frames a worker's transmit queue on the port did not take.",
                    &[("port", port), ("worker", &w)],
                    r.tx_dropped.get(usize::from(link.id)).copied().unwrap_or(0),
                );
            }
        }
    }
}

/// Connections, packets and bytes of a service or real server (`what`).
fn traffic(e: &mut Exposition, what: &str, labels: &[(&str, &str)], c: &Counters) {
    let with = |dir: &'static str| -> Vec<(&str, &str)> {
        let mut l = labels.to_vec();
        l.push(("direction", dir));
        l
    };
    e.counter(&format!("rvs_{what}_connections_total"), "Connections scheduled.", labels, c.conns);
    e.gauge(
        &format!("rvs_{what}_active_connections"),
        "Live connections in ESTABLISHED (ipvsadm's ActiveConn).",
        labels,
        c.active as f64,
    );
    e.gauge(
        &format!("rvs_{what}_inactive_connections"),
        "Live connections in other states, and UDP (ipvsadm's InActConn).",
        labels,
        c.inactive as f64,
    );
    let packets = format!("rvs_{what}_packets_total");
    let bytes = format!("rvs_{what}_bytes_total");
    let phelp = "Packets forwarded; direction in is client to real server, out the replies.";
    let bhelp = "Bytes forwarded (IP lengths as received); direction in is client to real server, out the replies.";
    e.counter(&packets, phelp, &with("in"), c.pkts_in);
    e.counter(&packets, phelp, &with("out"), c.pkts_out);
    e.counter(&bytes, bhelp, &with("in"), c.bytes_in);
    e.counter(&bytes, bhelp, &with("out"), c.bytes_out);
}

/// Per worker: every dataplane counter, connections, and drops by reason (summed).
fn worker_metrics(e: &mut Exposition, reports: &[crate::shared::WorkerReport], pool_size: u32) {
    let mut net = NetCounters::default();
    let mut core = fnat::stats::StatsSnapshot::default();
    for r in reports {
        net.add(&r.net);
        core.add(&r.core);
        let w = r.id.to_string();
        let l = [("worker", w.as_str())];
        for c in NetCounter::ALL {
            e.counter(&format!("rvs_worker_{}_total", c.name()), c.help(), &l, r.net.get(c));
        }
        e.gauge("rvs_worker_connections", "Connections in the worker's table.", &l, f64::from(r.conns));
        let t = r.tables;
        for (name, help, n) in [
            ("half_open", "Of them, half-open (SYN_RECV): evicted oldest first past syn_recv_max.", t.half_open),
            (
                "unproven",
                "Of them, unproven past SYN_RECV (DR/TUN TCP, UDP; fewer than 8 client packets): evicted when the pool is full.",
                t.unproven,
            ),
            ("synced", "Of them, copies of the peers' connections (connection sync).", t.synced),
        ] {
            e.gauge(&format!("rvs_worker_connections_{name}"), help, &l, f64::from(n));
        }
        e.gauge(
            "rvs_worker_connections_capacity",
            "Connections the worker's table holds at most ([conn] pool_size).",
            &l,
            f64::from(pool_size),
        );
        e.gauge("rvs_worker_config_generation", "The configuration generation the worker runs.", &l, r.gen as f64);
    }
    let mut lips: std::collections::BTreeMap<IpAddr, u64> = std::collections::BTreeMap::new();
    for (lip, n) in reports.iter().flat_map(|r| &r.lip_conns) {
        *lips.entry(*lip).or_default() += n;
    }
    for (lip, n) in lips {
        let lip = lip.to_string();
        e.gauge(
            "rvs_lip_connections",
            "Connections holding a local port of the LIP, all workers (a port serves one connection per real server).",
            &[("lip", &lip)],
            n as f64,
        );
    }
    let help = "Packets dropped, by reason (rvsip stats names the same reasons).";
    for d in DropReason::ALL {
        e.counter("rvs_drops_total", help, &[("reason", d.name())], core.drops.get(d.name()).copied().unwrap_or(0));
    }
    for d in NetDrop::ALL {
        e.counter("rvs_drops_total", help, &[("reason", d.name())], net.drops.get(d));
    }
    for s in SynProxyEvent::ALL {
        e.counter(
            "rvs_synproxy_events_total",
            "What the SYN proxy did (cookies sent, validated, refused, auto mode on/off...).",
            &[("event", s.name())],
            core.synproxy.get(s.name()).copied().unwrap_or(0),
        );
    }
    for (event, v) in &core.events {
        e.counter(
            "rvs_table_events_total",
            "What the connection and fragment tables did to stay within their sizes, and fragments handled.",
            &[("event", event)],
            *v,
        );
    }
}
