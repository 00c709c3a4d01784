//! Traffic checks shared by the end-to-end tests: what a user of the VIP depends on.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::{pcap, Topology};

/// `n` URLs for the VIP's port 80 (IPv6 in brackets).
pub fn urls(vip: &str, n: usize, path: &str) -> Vec<String> {
    urls_port(vip, 80, n, path)
}

/// `n` URLs for the VIP's `port`.
pub fn urls_port(vip: &str, port: u16, n: usize, path: &str) -> Vec<String> {
    let host = if vip.contains(':') { format!("[{vip}]") } else { vip.to_string() };
    (0..n).map(|_| format!("http://{host}:{port}/{path}")).collect()
}

/// Share of each server vs its weight share: within 10% (relative).
pub fn assert_weighted(counts: &[usize], weights: &[usize]) {
    let total: usize = counts.iter().sum();
    let wsum: usize = weights.iter().sum();
    for (i, (&c, &w)) in counts.iter().zip(weights).enumerate() {
        let want = total as f64 * w as f64 / wsum as f64;
        let err = (c as f64 - want).abs() / want;
        assert!(
            err <= 0.10,
            "rs{} got {c} of {total}, weight share {want:.1} ({:.1}% off): {counts:?}",
            i + 1,
            err * 100.0
        );
    }
}

/// The VIP pings; 600 requests to `vip:port` all succeed and spread 3:2:1 over the
/// three real servers; each real server sees only `source` as the client's address
/// (the LIP under FullNAT, the client itself under NAT and DR).
pub fn spread_checks(t: &Topology, vip: &str, port: u16, source: &str, rs: fn(usize) -> String) {
    assert!(t.ping(vip, 3), "ping {vip} is answered by rvsd");
    // Only log lines from this check count (a topology may be checked more than once).
    let seen_before: Vec<usize> = (1..=3).map(|i| log_sources(t, i).len()).collect();
    let (bodies, ok) = t.curl_many(&urls_port(vip, port, 600, ""), 60);
    assert!(ok, "every request through {vip}:{port} succeeds");
    let counts = t.tally(&bodies);
    assert_eq!(counts.iter().sum::<usize>(), 600, "600 answers: {counts:?}");
    assert_weighted(&counts, &[3, 2, 1]);
    for i in 1..=3 {
        let srcs: HashSet<String> = log_sources(t, i).into_iter().skip(seen_before[i - 1]).collect();
        assert!(!srcs.is_empty(), "rs{i} ({}) served requests", rs(i));
        assert_eq!(srcs, HashSet::from([source.to_string()]), "rs{i} sees only {source} as the client");
    }
}

/// Source addresses in a python http.server access log.
pub fn log_sources(t: &Topology, i: usize) -> Vec<String> {
    std::fs::read_to_string(t.http_log(i))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"GET "))
        .map(|l| l.split_whitespace().next().unwrap_or("").trim_start_matches("::ffff:").to_string())
        .collect()
}

/// The VIP pings; 600 requests all succeed and spread 3:2:1; each real server sees
/// only the LIP; the TOA option carries the client's address to rs1.
pub fn traffic_checks(t: &Topology, vip: &str, client: &str, lip: &str, rs: fn(usize) -> String) {
    let cap = t.capture_on_rs(1, "tcp dst port 8080").expect("capture");
    spread_checks(t, vip, 80, lip, rs);
    let frames = cap.finish().expect("capture frames");
    let toas = pcap::toa_options(&frames);
    assert!(!toas.is_empty(), "TOA options reach rs1 ({} frames captured)", frames.len());
    let client_ip: IpAddr = client.parse().expect("client address");
    assert!(toas.iter().all(|o| o.addr == client_ip && o.port >= 1024), "TOA carries the client {client}: {toas:?}");
}
