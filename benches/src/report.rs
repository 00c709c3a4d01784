//! The figures: what a case measured ([`CaseResult`], the JSON that `run`, `io` and
//! `redirect` write and `report` reads), how rounds of one case are merged, and the
//! tables `rvs-bench report` prints for `scripts/bench.sh`: figures per worker against
//! the targets and the ratio to testpmd, the harness's ceiling, and the redirect table.
//!
//! Kept apart from the measuring so that the printed format can be read (and changed)
//! in one place, and so that `report` runs without DPDK.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use fnat::types::FwdMode;
use serde::{Deserialize, Serialize};

use crate::cli::{fwd_label, fwd_word, ReportArgs, RunArgs};

/// The ratio to testpmd macswap an established flow's rate must reach (issue 17).
const RATIO_TARGET: f64 = 0.5;

/// The most an established packet's cost may grow from the small population to the
/// large one (issue 17: 1 thousand to 10 million live connections).
const GROWTH_TARGET: f64 = 1.5;

/// One measured case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// `est-in`, `est-in-scraped`, `est-out`, `new-conn`, `io`; in the other forwarding
    /// modes `est-in-<mode>`, `est-out-<mode>` (NAT only), `new-conn-<mode>` (`<mode>`:
    /// `nat`, `dr`, `tunnel`); `redirect`: `rd-plain-w0`, `rd-in-w0`, `rd-plain-w1`,
    /// `rd-out-w1` (see `crate::cases::run_redirect`).
    pub case: String,
    /// Live connections the case ran with (before a new-connection stream).
    pub live: u64,
    /// Seconds measured.
    pub secs: f64,
    /// Packets the worker received (from its ports or by redirect) per second,
    /// millions, over the whole measurement.
    pub rx_mpps: f64,
    /// The median of the per-window rates (the figure reported: robust to a window
    /// in which another process took a core).
    pub rx_mpps_median: f64,
    /// The best window.
    pub rx_mpps_max: f64,
    /// Packets the sink took, millions per second (whole measurement).
    pub sink_mpps: f64,
    /// Connections created per second (whole measurement).
    pub new_conns_per_s: f64,
    /// Median of the per-window connection rates.
    pub new_conns_per_s_median: f64,
    /// Share of loops in which the worker found its receive ring empty.
    pub empty_loops: f64,
    /// Estimated share of the worker's time spent in those empty loops (empty loops ×
    /// the duration of an empty loop, calibrated with no traffic). Near 0: the feeder
    /// kept the worker supplied.
    pub worker_idle: f64,
    /// Share of the feeder's time spent waiting for room in the full ring. Well above
    /// 0: the feeder was faster than the worker.
    pub feeder_wait: f64,
    /// Share of the wall time the worker's thread was on its CPU (schedstat); below
    /// ~0.97 another process took the CPU from it during the measurement.
    pub worker_cpu: f64,
    /// The same for the feeder (the main thread).
    pub feeder_cpu: f64,
    /// Live connections at the end of the measurement.
    pub live_end: u64,
    /// Drops during the measurement (core and network layer), by reason.
    pub drops: BTreeMap<String, u64>,
    /// Worker CPU time per received packet, nanoseconds, over the whole measurement:
    /// the worker thread's on-CPU time (schedstat) less its empty loops (× the
    /// calibrated empty-loop duration), divided by the packets. Time another process
    /// held the CPU does not count.
    #[serde(default)]
    pub ns_per_pkt: f64,
    /// The same in the best (lowest) window of those in which the empty loops took at
    /// most [`MAX_IDLE_FOR_NS`](crate::harness::MAX_IDLE_FOR_NS) of the worker's on-CPU time (0: no such window).
    #[serde(default)]
    pub ns_per_pkt_best: f64,
    /// The median of those windows.
    #[serde(default)]
    pub ns_per_pkt_median: f64,
    /// How many windows those were.
    #[serde(default)]
    pub ns_windows: u32,
    /// The per-window receive rates (Mpps) (for merging measurements taken in rounds).
    #[serde(skip)]
    pub win_mpps: Vec<f64>,
    /// The CPU times per packet of the windows counted in `ns_windows` (the same).
    #[serde(skip)]
    pub win_ns: Vec<f64>,
    /// Packets the worker handed to another worker (`net.redirect_out`).
    #[serde(default)]
    pub redirect_out: u64,
    /// Packets the worker took from another worker (`net.redirect_in`).
    #[serde(default)]
    pub redirect_in: u64,
    /// Packets the worker received (from its ports or by redirect) during the
    /// measurement.
    #[serde(default)]
    pub rx_pkts: u64,
    /// Frames it handed to a transmit queue (`net.tx_packets`) meanwhile: every
    /// received packet when the case forwards them all.
    #[serde(default)]
    pub tx_pkts: u64,
    /// The real servers' forwarding mode (`rvs-bench run --fwd`; FullNAT elsewhere).
    #[serde(default)]
    pub fwd: FwdMode,
    /// The calibrated duration of an empty worker loop in this run, nanoseconds: the same
    /// code whatever is measured, so a higher figure means a slower machine meanwhile.
    #[serde(default)]
    pub idle_loop_ns: f64,
}

/// The median of `v` (0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|x, y| x.total_cmp(y));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The smallest of `v` (0 when empty).
pub fn min_or_zero(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// The drops of `cases`, summed by reason.
fn total_drops(cases: &[CaseResult]) -> BTreeMap<String, u64> {
    cases.iter().flat_map(|c| c.drops.clone()).fold(BTreeMap::new(), |mut m, (k, v)| {
        *m.entry(k).or_default() += v;
        m
    })
}

/// Merges the rounds of one case into one result.
pub fn merge(parts: Vec<CaseResult>) -> Option<CaseResult> {
    let total: f64 = parts.iter().map(|p| p.secs).sum();
    let pkts = |p: &CaseResult| p.rx_mpps * p.secs;
    let all_pkts: f64 = parts.iter().map(pkts).sum();
    let wavg = |f: fn(&CaseResult) -> f64| parts.iter().map(|p| f(p) * p.secs).sum::<f64>() / total;
    let win_mpps: Vec<f64> = parts.iter().flat_map(|p| p.win_mpps.clone()).collect();
    let win_ns: Vec<f64> = parts.iter().flat_map(|p| p.win_ns.clone()).collect();
    let mut drops = BTreeMap::new();
    for p in &parts {
        for (k, v) in &p.drops {
            *drops.entry(k.clone()).or_default() += v;
        }
    }
    let first = parts.first()?;
    Some(CaseResult {
        case: first.case.clone(),
        live: first.live,
        secs: total,
        rx_mpps: all_pkts / total,
        rx_mpps_median: median(win_mpps.clone()),
        rx_mpps_max: win_mpps.iter().copied().fold(0.0, f64::max),
        sink_mpps: wavg(|p| p.sink_mpps),
        new_conns_per_s: wavg(|p| p.new_conns_per_s),
        new_conns_per_s_median: wavg(|p| p.new_conns_per_s_median),
        empty_loops: wavg(|p| p.empty_loops),
        worker_idle: wavg(|p| p.worker_idle),
        feeder_wait: wavg(|p| p.feeder_wait),
        worker_cpu: wavg(|p| p.worker_cpu),
        feeder_cpu: wavg(|p| p.feeder_cpu),
        live_end: parts.last()?.live_end,
        drops,
        ns_per_pkt: if all_pkts > 0.0 {
            parts.iter().map(|p| p.ns_per_pkt * pkts(p)).sum::<f64>() / all_pkts
        } else {
            0.0
        },
        ns_per_pkt_best: min_or_zero(&win_ns),
        ns_per_pkt_median: median(win_ns.clone()),
        ns_windows: win_ns.len() as u32,
        redirect_out: parts.iter().map(|p| p.redirect_out).sum(),
        redirect_in: parts.iter().map(|p| p.redirect_in).sum(),
        rx_pkts: parts.iter().map(|p| p.rx_pkts).sum(),
        tx_pkts: parts.iter().map(|p| p.tx_pkts).sum(),
        fwd: first.fwd,
        idle_loop_ns: first.idle_loop_ns,
        win_mpps,
        win_ns,
    })
}

/// Writes `r` as JSON to `--json`, or to stdout without it.
pub fn write_json(a: &RunArgs, r: &[CaseResult]) -> Result<()> {
    let text = serde_json::to_string_pretty(r)?;
    match &a.json {
        Some(p) => std::fs::write(p, text).with_context(|| format!("write {}", p.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// `n` with a k or M suffix when it is a round number of those.
fn human(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// `rvs-bench report`: the tables of `scripts/bench.sh`.
pub fn report(r: &ReportArgs) -> Result<()> {
    let read = |p: &PathBuf| -> Result<Vec<CaseResult>> {
        let t = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
        serde_json::from_str(&t).with_context(|| format!("parse {}", p.display()))
    };
    let mut all = Vec::new();
    for p in &r.rvs {
        all.extend(read(p)?);
    }
    // The first table holds the FullNAT run's rows, as before the other modes; the
    // modes table compares every mode's with them.
    let rvs: Vec<CaseResult> = all.iter().filter(|c| c.fwd == FwdMode::FullNat).cloned().collect();
    let io = match &r.io {
        Some(p) => read(p)?.into_iter().next(),
        None => None,
    };
    let tp = r.testpmd_mpps;
    let na = "n/a".to_string();
    let opt = |v: Option<f64>| v.map_or(na.clone(), |t| format!("{t:.2}"));
    println!(
        "{:<21} {:>5}  {:>27}  {:>10}  {:>13}  {:>5}  {:>6}  {:>6}  {:>5}  met: target, ratio>={RATIO_TARGET}",
        "case (1 worker)",
        "live",
        "rvs per worker: best (med)",
        "target",
        "testpmd Mpps",
        "ratio",
        "w.idle",
        "f.wait",
        "w.cpu",
    );
    for c in &rvs {
        let (name, value, target, met) = match c.case.as_str() {
            "est-in" | "est-out" | "est-in-scraped" => (
                match c.case.as_str() {
                    "est-in" => "established inbound",
                    "est-out" => "established outbound",
                    _ => "est. in, scraped",
                },
                format!("{:.2} ({:.2}) Mpps", c.rx_mpps_max, c.rx_mpps_median),
                if c.live >= 1_000_000 { "8 Mpps" } else { "10 Mpps" },
                c.rx_mpps_max >= if c.live >= 1_000_000 { 8.0 } else { 10.0 },
            ),
            "new-conn" => {
                // One SYN per connection: the best window's packet rate is its connection rate.
                let best = c.rx_mpps_max * 1e6;
                (
                    "new connections",
                    format!("{:.0} k ({:.0} k) conn/s", best / 1e3, c.new_conns_per_s_median / 1e3),
                    "2 M conn/s",
                    best >= 2e6,
                )
            }
            other => (other, format!("{:.2} ({:.2}) Mpps", c.rx_mpps_max, c.rx_mpps_median), "-", false),
        };
        let ratio = tp.map(|t| c.rx_mpps_max / t);
        println!(
            "{:<21} {:>5}  {:>27}  {:>10}  {:>13}  {:>5}  {:>6.3}  {:>6.3}  {:>5.2}  {}, {}",
            name,
            human(c.live),
            value,
            target,
            format!("{} ({})", opt(tp), opt(r.testpmd_median)),
            ratio.map_or(na.clone(), |x| format!("{x:.3}")),
            c.worker_idle,
            c.feeder_wait,
            c.worker_cpu,
            if met { "yes" } else { "no" },
            match ratio {
                // A SYN rate against testpmd's packet rate says nothing.
                _ if c.case.starts_with("new-conn") => "-",
                Some(x) if x >= RATIO_TARGET => "yes",
                Some(_) => "no",
                None => "n/a",
            },
        );
    }
    let in_small = |name: &str| rvs.iter().find(|c| c.case == name && c.live == rvs.first().map_or(0, |f| f.live));
    if let (Some(plain), Some(scraped)) = (in_small("est-in"), in_small("est-in-scraped")) {
        println!();
        println!(
            "metrics: established inbound at {} live, worker CPU {:.1} ns/packet without scraping, {:.1} with the \
             worker's counters asked for every 100 ms (a scrape at that interval): ratio {:.3}",
            human(plain.live),
            plain.ns_per_pkt,
            scraped.ns_per_pkt,
            if plain.ns_per_pkt > 0.0 { scraped.ns_per_pkt / plain.ns_per_pkt } else { 0.0 }
        );
    }
    let est_in: Vec<&CaseResult> = rvs.iter().filter(|c| c.case == "est-in" && c.rx_mpps_max > 0.0).collect();
    if let (Some(small), Some(large)) = (est_in.first(), est_in.last()) {
        if large.live > small.live {
            // Per packet, the best windows' wall time: the cost a user sees grow.
            println!();
            println!(
                "cost growth: established inbound {:.1} ns/packet at {} live, {:.1} at {}: {:.2}x (target <= {GROWTH_TARGET}x)",
                1e3 / small.rx_mpps_max,
                human(small.live),
                1e3 / large.rx_mpps_max,
                human(large.live),
                small.rx_mpps_max / large.rx_mpps_max
            );
        }
    }
    println!();
    println!(
        "targets per worker (issue 17): established 10 Mpps at 1 thousand live and 8 Mpps at 1 million, ratio to \
         testpmd macswap >= {RATIO_TARGET}; 2 M new connections/s;"
    );
    println!("DPVS publishes about 2.4-2.9 Mpps and 200 k connections/s per worker (real NICs).");
    println!("best = the best 0.25 s window of rvs (best 1 s sample of testpmd), med = the median: the machine is");
    println!("shared, and other processes only ever lower a window, so the best window is the figure and the ratio");
    println!("is best/best (new connections: SYNs forwarded per second, one per connection). Both on net_ring fed");
    println!("from the other core -> net_null, 64-byte TCP frames (SYNs 58). w.idle: estimated share of the");
    println!("worker's time with an empty ring (feeder behind); f.wait: share of the feeder's time waiting for room");
    println!("(feeder ahead); w.cpu: share of the wall time the worker thread was on its CPU (below ~0.97 another");
    println!("process took CPU time from it).");
    if let Some(io) = &io {
        println!(
            "harness ceiling (same feeder, ring and sink, bare macswap loop instead of the worker): {:.2} ({:.2}) Mpps (w.idle {:.3}, f.wait {:.3}, w.cpu {:.2})",
            io.rx_mpps_max, io.rx_mpps_median, io.worker_idle, io.feeder_wait, io.worker_cpu
        );
    }
    if let Some(p) = r.testpmd_pcap_mpps {
        println!("context: testpmd macswap net_pcap(infinite_rx) -> net_null on one core, no cross-core hand-off: {p:.2} Mpps");
    }
    let drops = total_drops(&all);
    if drops.is_empty() {
        println!("drops during the measurements: none");
    } else {
        println!("drops during the measurements: {drops:?}");
    }
    if all.iter().any(|c| c.fwd != FwdMode::FullNat) {
        println!();
        modes_report(&all);
    }
    if let Some(p) = &r.redirect {
        println!();
        redirect_report(&read(p)?);
    }
    Ok(())
}

/// `best (median)` of a case's established rate, in Mpps.
fn mpps(c: &CaseResult) -> String {
    format!("{:.2} ({:.2})", c.rx_mpps_max, c.rx_mpps_median)
}

/// `best (median)` worker CPU ns per packet of a case (`n/a` without a busy window).
fn ns(c: &CaseResult) -> String {
    if c.ns_windows == 0 {
        "n/a".to_string()
    } else {
        format!("{:.0} ({:.0})", c.ns_per_pkt_best, c.ns_per_pkt_median)
    }
}

/// `x / reference` with two decimals (`n/a` when either is missing or 0).
fn ratio(x: Option<f64>, reference: Option<f64>) -> String {
    match (x, reference) {
        (Some(x), Some(r)) if x > 0.0 && r > 0.0 => format!("{:.2}", x / r),
        _ => "n/a".to_string(),
    }
}

/// The modes table: per population, each forwarding mode's established inbound rate
/// and worker CPU time per packet, established outbound rate (FullNAT and NAT) and new
/// connections per second, each with its ratio to the FullNAT row.
fn modes_report(all: &[CaseResult]) {
    let mut lives: Vec<u64> = Vec::new();
    for c in all {
        if c.case != "est-in-scraped" && !lives.contains(&c.live) {
            lives.push(c.live);
        }
    }
    println!(
        "modes (1 worker): each forwarding mode against FullNAT (= 1.00); best (median) windows, ns = worker CPU ns per packet"
    );
    println!(
        "{:<8} {:>5}  {:>13}  {:>5}  {:>11}  {:>5}  {:>13}  {:>5}  {:>15}  {:>5}  {:>11}  {:>5}  {:>6}  {:>5}  {:>7}",
        "mode",
        "live",
        "est. in Mpps",
        "ratio",
        "in ns",
        "ratio",
        "est. out Mpps",
        "ratio",
        "new conn/s",
        "ratio",
        "ns/SYN",
        "ratio",
        "w.idle",
        "w.cpu",
        "loop ns",
    );
    let na = || "n/a".to_string();
    for live in lives {
        let get = |fwd: FwdMode, base: &str| {
            let name = match fwd {
                FwdMode::FullNat => base.to_string(),
                m => format!("{base}-{}", fwd_word(m)),
            };
            all.iter().find(|c| c.fwd == fwd && c.live == live && c.case == name)
        };
        let reference =
            (get(FwdMode::FullNat, "est-in"), get(FwdMode::FullNat, "est-out"), get(FwdMode::FullNat, "new-conn"));
        for fwd in FwdMode::ALL {
            let (est_in, est_out, new) = (get(fwd, "est-in"), get(fwd, "est-out"), get(fwd, "new-conn"));
            if est_in.is_none() && new.is_none() {
                continue;
            }
            let best_ns = |c: Option<&CaseResult>| c.filter(|c| c.ns_windows > 0).map(|c| c.ns_per_pkt_best);
            let mpps_of = |c: Option<&CaseResult>| c.map(|c| c.rx_mpps_max);
            // One SYN per connection: the best window's packet rate is its connection rate.
            let conns = |c: Option<&CaseResult>| c.map(|c| c.rx_mpps_max * 1e6);
            let cases: Vec<&CaseResult> = [est_in, est_out, new].into_iter().flatten().collect();
            println!(
                "{:<8} {:>5}  {:>13}  {:>5}  {:>11}  {:>5}  {:>13}  {:>5}  {:>15}  {:>5}  {:>11}  {:>5}  {:>6.3}  {:>5.2}  {:>7.0}",
                fwd_label(fwd),
                human(live),
                est_in.map_or_else(na, mpps),
                ratio(mpps_of(est_in), mpps_of(reference.0)),
                est_in.map_or_else(na, ns),
                ratio(best_ns(est_in), best_ns(reference.0)),
                est_out.map_or_else(|| if fwd.replies_through() { na() } else { "-".to_string() }, mpps),
                if est_out.is_some() { ratio(mpps_of(est_out), mpps_of(reference.1)) } else { "-".to_string() },
                new.map_or_else(na, |c| format!("{:.0} k ({:.0} k)", c.rx_mpps_max * 1e3, c.new_conns_per_s_median / 1e3)),
                ratio(conns(new), conns(reference.2)),
                new.map_or_else(na, ns),
                ratio(best_ns(new), best_ns(reference.2)),
                cases.iter().map(|c| c.worker_idle).fold(0.0, f64::max),
                cases.iter().map(|c| c.worker_cpu).fold(f64::INFINITY, f64::min),
                cases.first().map_or(0.0, |c| c.idle_loop_ns),
            );
        }
    }
    println!();
    println!("One run of `rvs-bench run --fwd MODE` per mode, the same service (VIP:80, 5 real servers, round robin)");
    println!("and populations: FullNAT (rewrites both addresses and ports each way, TOA into the ACK, a local port");
    println!("per new connection; real servers on 8080, 16 LIPs), NAT (rewrites the destination in, the source out;");
    println!("on 8080, no LIPs), DR (forwards the frame unchanged but for the MAC header and TTL; on 80), TUN");
    println!("(prepends a 20-byte IPIP header from the first LIP; on 80), SNAT (no service: a SNAT rule takes the");
    println!("flows after the service lookup misses; one destination, 80 WAN addresses, no TOA). est. out (the");
    println!("replies) only where they pass rvs (FullNAT, NAT, SNAT); DR and TUN open connections with the client's");
    println!("SYN and ACK alone. Mpps and conn/s ratios: higher is faster; ns ratios (worker CPU time per packet,");
    println!("best window with the worker kept busy): lower is cheaper. The runs follow one another, so the machine may differ between them: loop");
    println!("ns is each run's calibrated empty worker loop (the same code in every mode; higher = slower machine).");
    let short: Vec<String> = all
        .iter()
        .filter(|c| c.tx_pkts < c.rx_pkts || c.rx_pkts == 0 || !c.drops.is_empty())
        .map(|c| format!("{} ({}): rx {} tx {}", c.case, human(c.live), c.rx_pkts, c.tx_pkts))
        .collect();
    if short.is_empty() {
        println!("every measured packet of every mode was forwarded (transmitted = received, no drops)");
    } else {
        println!("NOT forwarded in full: {}", short.join("; "));
    }
}

/// The redirect table, from the JSON of `rvs-bench redirect`.
fn redirect_report(cases: &[CaseResult]) {
    let mut lives: Vec<u64> = Vec::new();
    for c in cases {
        if !lives.contains(&c.live) {
            lives.push(c.live);
        }
    }
    println!(
        "redirect (2 workers): worker CPU ns per packet, best (median) of the windows the worker was kept busy in"
    );
    println!(
        "{:<21} {:>5}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>17}  {:>7}  {:>6}  {:>5}",
        "case",
        "live",
        "plain w0",
        "plain w1",
        "w1 -> ring",
        "ring -> w0",
        "redirected",
        "redirect cost",
        "windows",
        "w.idle",
        "w.cpu",
    );
    for live in lives {
        let get = |name: &str| cases.iter().find(|c| c.case == name && c.live == live);
        let (Some(p0), Some(i0), Some(o1)) = (get("rd-plain-w0"), get("rd-in-w0"), get("rd-out-w1")) else {
            println!("{:<21} {:>5}  incomplete", "established outbound", human(live));
            continue;
        };
        let p1 = get("rd-plain-w1");
        let four: Vec<&CaseResult> = [Some(p0), Some(i0), Some(o1), p1].into_iter().flatten().collect();
        let ns = |c: &CaseResult| {
            if c.ns_windows == 0 {
                "n/a".to_string()
            } else {
                format!("{:.0} ({:.0})", c.ns_per_pkt_best, c.ns_per_pkt_median)
            }
        };
        let (red, cost) = if [p0, i0, o1].iter().all(|c| c.ns_windows > 0) {
            let red = o1.ns_per_pkt_best + i0.ns_per_pkt_best;
            let red_med = o1.ns_per_pkt_median + i0.ns_per_pkt_median;
            let cost = red - p0.ns_per_pkt_best;
            let cost_med = red_med - p0.ns_per_pkt_median;
            (
                format!("{red:.0} ({red_med:.0})"),
                format!("{cost:+.0} ({cost_med:+.0}) {:+.0}%", 100.0 * cost / p0.ns_per_pkt_best),
            )
        } else {
            ("n/a".to_string(), "n/a".to_string())
        };
        println!(
            "{:<21} {:>5}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>17}  {:>7}  {:>6.3}  {:>5.2}",
            "established outbound",
            human(live),
            ns(p0),
            p1.map_or("n/a".to_string(), ns),
            ns(o1),
            ns(i0),
            red,
            cost,
            four.iter().map(|c| c.ns_windows.to_string()).collect::<Vec<_>>().join("/"),
            four.iter().map(|c| c.worker_idle).fold(0.0, f64::max),
            four.iter().map(|c| c.worker_cpu).fold(f64::INFINITY, f64::min),
        );
        println!(
            "{:<29}worker 1 received {} and redirected {} of worker 0's replies; worker 0 took {} from its ring",
            "",
            (o1.rx_mpps * 1e6 * o1.secs).round(),
            o1.redirect_out,
            i0.redirect_in,
        );
    }
    println!();
    println!("Two real workers of a two-worker configuration (worker 0 owns the even local ports) on lcores 1 and 2,");
    println!(
        "both on CPU 1; the one not measured waits at SCHED_IDLE, and the feeder on CPU 0 stands in for the other"
    );
    println!(
        "worker at the far end of the redirect ring. The four cases run in 4 interleaved rounds. plain w0: worker"
    );
    println!(
        "0's replies to its own queue (plain w1: worker 1's to its own); w1 -> ring: worker 0's replies at worker"
    );
    println!("1 (lookup miss, owner, enqueue on the 4096-slot SP/SC ring to worker 0, which the feeder empties);");
    println!("ring -> w0: the same replies taken from that ring by worker 0 (the feeder fills it); redirected = the");
    println!("two halves; redirect cost = redirected - plain w0, per redirected packet.");
    println!("ns: the worker thread's on-CPU time (schedstat, so time another process held the CPU does not count)");
    println!("less its empty loops (x the calibrated empty-loop cost), per packet, in 0.25 s windows; only windows");
    println!("in which empty loops took <= 5 % of the worker's CPU time count (windows: how many, of each case, in");
    println!("the order plain w0 / ring -> w0 / w1 -> ring / plain w1). w.idle: the largest estimated empty-loop");
    println!("share, w.cpu: the smallest on-CPU share of the four cases, over the whole measurement.");
    let drops = total_drops(cases);
    if drops.is_empty() {
        println!("drops during the redirect measurements: none");
    } else {
        println!("drops during the redirect measurements: {drops:?}");
    }
}
