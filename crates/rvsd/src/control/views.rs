//! Listings: services with their real servers and counters, connection pages, links,
//! addresses, neighbours, status, per-worker counters and the stats summary.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ctl::{
    AddrView, BondView, ConnCursor, ErrorCode, LinkStats, LinkView, NeighView, RealServerView, Response, ServiceView,
    SlaveView, WorkerView,
};
use fnat::stats::Counters;
use serde_json::json;

use super::Control;
use crate::shared::{Command, ConnFilter, Reply, WorkerReport};
use crate::state::Refused;
use frame::{NetCounter, NetCounters};

/// Most connections in one listing page.
const MAX_CONN_PAGE: u32 = 10_000;

impl Control {
    /// `Status`: version, generations, pool size, uptime.
    pub(super) fn status(&self) -> Response {
        Response::Status {
            version: env!("CARGO_PKG_VERSION").into(),
            gen: self.shared.gen.load(Ordering::Acquire),
            worker_gens: self.shared.workers.iter().map(|w| w.seen_gen.load(Ordering::Acquire)).collect(),
            conn_pool_size: self.pool_size,
            uptime_s: self.started.elapsed().as_secs(),
            started_ns: self.started_ns,
            loaded_ns: self.loaded_ns,
        }
    }

    pub(super) fn service_list(&self, stats: bool) -> Result<Response, Refused> {
        let n = self.state.services.len();
        let reports = self.reports(Duration::from_secs(2)).ok_or_else(worker_silent)?;
        Ok(Response::Services { services: self.service_views(&reports, stats, 0..n) })
    }

    /// Services `from..from+max` (at most [`ctl::MAX_SERVICE_PAGE`]) and where the next
    /// page starts.
    pub(super) fn service_page(&self, stats: bool, from: u32, max: Option<u32>) -> Result<Response, Refused> {
        let n = self.state.services.len();
        let max = max.unwrap_or(ctl::MAX_SERVICE_PAGE).clamp(1, ctl::MAX_SERVICE_PAGE) as usize;
        let start = (from as usize).min(n);
        let end = start.saturating_add(max).min(n);
        let gen = self.shared.current().gen;
        let reports = self.reports(Duration::from_secs(2)).ok_or_else(worker_silent)?;
        let services = self.service_views(&reports, stats, start..end);
        Ok(Response::ServicePage { services, next: (end < n).then_some(end as u32), gen })
    }

    /// Services `range` with their real servers, counters summed over `reports`.
    pub(super) fn service_views(
        &self,
        reports: &[WorkerReport],
        stats: bool,
        range: std::ops::Range<usize>,
    ) -> Vec<ServiceView> {
        let snap = self.shared.current();
        let sum = |pick: &dyn Fn(&WorkerReport) -> Option<Counters>| {
            let mut c = Counters::default();
            for r in reports {
                if let Some(x) = pick(r) {
                    c.add(&x);
                }
            }
            c
        };
        let mut services = Vec::new();
        for spec in &self.state.services[range] {
            let s = &spec.service;
            let built = snap.services.find(&s.key()).map(|i| snap.services.service(i));
            let svc_counters =
                built.map(|b| sum(&|r| r.core.services.get(b.id.0 as usize).copied())).unwrap_or_default();
            let dests = s
                .real_servers
                .iter()
                .map(|rs| {
                    let dest = built.and_then(|b| b.dests.iter().find(|d| d.addr == rs.addr && d.port == rs.port));
                    let c =
                        dest.map(|d| sum(&|r| r.core.real_servers.get(d.id.0 as usize).copied())).unwrap_or_default();
                    RealServerView {
                        config: *rs,
                        active: c.active,
                        inactive: c.inactive,
                        persist: c.persist,
                        stats: stats.then_some(c),
                        inhibited: dest.is_some_and(|d| d.mark == fnat::destcheck::DestMark::Inhibited),
                    }
                })
                .collect();
            services.push(ServiceView {
                service: s.clone(),
                laddrs: spec.laddrs.clone(),
                dests,
                stats: stats.then_some(svc_counters),
            });
        }
        services
    }

    /// One worker's page of connections (`templates`: of persistence templates).
    pub(super) fn conn_page(&self, cursor: ConnCursor, max: u32, templates: bool) -> Result<Response, Refused> {
        let n = self.shared.workers.len();
        let w = cursor.worker as usize;
        if w >= n {
            return Ok(Response::Conns { conns: Vec::new(), next: None });
        }
        let slot = &self.shared.workers[w];
        while slot.replies.pop().is_some() {}
        let max = max.clamp(1, MAX_CONN_PAGE) as usize;
        let command = match templates {
            true => Command::ListTemplates { cursor: cursor.pos, max },
            false => Command::ListConns { cursor: cursor.pos, max, filter: ConnFilter::All },
        };
        let _ = slot.commands.push(command);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(Reply::Conns(conns, next)) = slot.replies.pop() {
                let next = match next {
                    Some(pos) => Some(ConnCursor { worker: cursor.worker, pos }),
                    None if w + 1 < n => Some(ConnCursor { worker: cursor.worker + 1, pos: 0 }),
                    None => None,
                };
                return Ok(Response::Conns { conns, next });
            }
            if Instant::now() > deadline {
                return Err(worker_silent());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    pub(super) fn links(&self, stats: bool) -> Vec<LinkView> {
        let snap = self.shared.current();
        self.ports
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let link = h.port.link().unwrap_or(dpdk::LinkStatus { up: false, speed_mbps: 0, full_duplex: false });
                let view = &snap.ports[i];
                LinkView {
                    id: i as u16,
                    name: h.name.clone(),
                    device: h.device.clone(),
                    driver: h.driver.clone(),
                    mac: view.mac,
                    mtu: view.mtu,
                    up: link.up,
                    speed_mbps: link.speed_mbps,
                    full_duplex: link.full_duplex,
                    promisc: h.port.promiscuous(),
                    forward2kni: view.forward2kni,
                    rx_queues: h.queues,
                    tx_queues: h.queues,
                    socket: h.socket,
                    bond: (!h.slaves.is_empty()).then(|| {
                        // DPDK's "active" slaves are those with link; in active-backup
                        // the one carrying traffic is the current primary, in LACP those
                        // distributing (802.1AX state bit 0x20).
                        let linked = dpdk::Bond::active_slaves(&h.port).unwrap_or_default();
                        let mode = dpdk::Bond::mode(&h.port).unwrap_or(u8::MAX);
                        let current = dpdk::Bond::primary(&h.port).ok();
                        BondView {
                            mode: bond_mode_name(mode).into(),
                            xmit_policy: matches!(mode, 2 | 4)
                                .then(|| dpdk::Bond::xmit_policy(&h.port).ok())
                                .flatten()
                                .map(|p| xmit_policy_name(p).into()),
                            // Only the modes with a primary slave name one (DPDK reports
                            // one in every mode).
                            primary: current
                                .filter(|_| matches!(mode, 1 | 5 | 6))
                                .and_then(|id| h.slaves.iter().position(|s| s.id() == id)),
                            slaves: h
                                .slaves
                                .iter()
                                .map(|s| SlaveView {
                                    device: s.info().map(|i| i.name).unwrap_or_default(),
                                    up: s.link().map(|l| l.up).unwrap_or(false),
                                    active: match mode {
                                        1 => current == Some(s.id()),
                                        4 => {
                                            linked.contains(&s.id())
                                                && dpdk::Bond::lacp_state(&h.port, s).is_ok_and(|(a, _)| a & 0x20 != 0)
                                        }
                                        _ => linked.contains(&s.id()),
                                    },
                                })
                                .collect(),
                        }
                    }),
                    stats: stats.then(|| {
                        let s = h.port.stats().unwrap_or_default();
                        let q = h.queues.min(16) as usize;
                        LinkStats {
                            ipackets: s.ipackets,
                            opackets: s.opackets,
                            ibytes: s.ibytes,
                            obytes: s.obytes,
                            imissed: s.imissed,
                            ierrors: s.ierrors,
                            oerrors: s.oerrors,
                            rx_nombuf: s.rx_nombuf,
                            q_ipackets: s.q_ipackets[..q].to_vec(),
                            q_opackets: s.q_opackets[..q].to_vec(),
                        }
                    }),
                }
            })
            .collect()
    }

    /// The addresses, each with whether it is a VIP.
    pub(super) fn addr_views(&self) -> Vec<AddrView> {
        let snap = self.shared.current();
        self.state
            .addrs
            .iter()
            .map(|a| AddrView {
                dev: self.state.port_names[a.port].clone(),
                addr: a.net,
                sapool: a.sapool,
                vip: snap.addrs.owner(a.net.addr()).is_some_and(|(_, e)| e.flags.vip),
            })
            .collect()
    }

    /// `NeighList`: a page of neighbours, by address, after `after`; at most `max` (or
    /// [`ctl::MAX_NEIGH_PAGE`] when none is given), with where the next page starts.
    pub(super) fn neigh_page(&self, after: Option<IpAddr>, max: Option<u32>) -> Response {
        let max = max.unwrap_or(ctl::MAX_NEIGH_PAGE).clamp(1, ctl::MAX_NEIGH_PAGE) as usize;
        let mut page: Vec<(IpAddr, &netstack::NeighEntry)> =
            self.neighs.iter().filter(|(addr, _)| after.is_none_or(|a| *addr > a)).collect();
        page.sort_unstable_by_key(|(addr, _)| *addr);
        let next = (page.len() > max).then(|| page[max - 1].0);
        page.truncate(max);
        let neighs = page
            .into_iter()
            .map(|(addr, e)| NeighView {
                addr,
                mac: e.mac,
                dev: self.state.port_names.get(e.port.0 as usize).cloned().unwrap_or_default(),
                state: e.state.to_string(),
            })
            .collect();
        Response::Neighs { neighs, next }
    }

    /// `WorkerStats`: each worker's counters.
    pub(super) fn worker_views(&self) -> Result<Vec<WorkerView>, Refused> {
        let reports = self.reports(Duration::from_secs(2)).ok_or_else(worker_silent)?;
        Ok(reports.iter().map(worker_view).collect())
    }

    /// Every worker's report, or `None` if one did not answer within `wait`.
    pub fn reports(&self, wait: Duration) -> Option<Vec<WorkerReport>> {
        self.shared.ask_all(
            || Command::Stats,
            wait,
            |r| match r {
                Reply::Stats(r) => Some(*r),
                _ => None,
            },
        )
    }

    /// Counters of all workers as one JSON value, with the control thread's neighbour
    /// counters (`neigh`).
    pub fn stats(&self, wait: Duration) -> Option<serde_json::Value> {
        self.reports(wait).map(|r| {
            let mut v = summary(self.shared.gen.load(Ordering::Acquire), &r);
            v["neigh"] = json!(self.neigh_counters());
            if let Some(Ok(sync)) = self.shared.sync.as_ref().map(|s| s.counters.lock()) {
                v["sync"] = json!(*sync);
            }
            v
        })
    }
}

fn xmit_policy_name(p: u8) -> &'static str {
    match p {
        0 => "layer2",
        1 => "layer2+3",
        2 => "layer3+4",
        _ => "?",
    }
}

fn bond_mode_name(m: u8) -> &'static str {
    match m {
        0 => "round-robin",
        1 => "active-backup",
        2 => "balance-xor",
        3 => "broadcast",
        4 => "lacp",
        5 => "tlb",
        6 => "alb",
        _ => "?",
    }
}

pub(super) fn worker_silent() -> Refused {
    Refused::new(ErrorCode::Timeout, "a worker did not answer within 2 s")
}

/// Drops by name, core and network layer merged, non-zero only.
fn merged_drops(core: &fnat::stats::StatsSnapshot, net: &NetCounters) -> BTreeMap<String, u64> {
    let mut drops: BTreeMap<String, u64> =
        core.drops.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.clone(), *v)).collect();
    for (k, v) in net.drops.nonzero() {
        *drops.entry(k.name().to_string()).or_default() += v;
    }
    drops
}

fn worker_view(r: &WorkerReport) -> WorkerView {
    WorkerView {
        id: r.id,
        lcore: r.lcore,
        gen: r.gen,
        conns: u64::from(r.conns),
        tables: r.tables,
        rx_packets: r.net.get(NetCounter::RxPackets),
        tx_packets: r.net.get(NetCounter::TxPackets),
        totals: r.core.total,
        loops: r.net.get(NetCounter::Loops),
        busy_loops: r.net.get(NetCounter::BusyLoops),
        drops: merged_drops(&r.core, &r.net),
    }
}

/// The JSON summary of worker reports: totals, drops by name (core and network layer
/// merged), and each worker's report.
pub fn summary(gen: u64, reports: &[WorkerReport]) -> serde_json::Value {
    let core = fnat::stats::StatsSnapshot::sum(reports.iter().map(|r| &r.core));
    let mut net = NetCounters::default();
    for r in reports {
        net.add(&r.net);
    }
    json!({
        "gen": gen,
        "conns": reports.iter().map(|r| u64::from(r.conns)).sum::<u64>(),
        "totals": core.total,
        "drops": merged_drops(&core, &net),
        "synproxy": core.synproxy,
        "events": core.events.iter().filter(|(_, v)| **v > 0).collect::<BTreeMap<_, _>>(),
        "net": net,
        "workers": reports,
    })
}
