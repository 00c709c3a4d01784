//! The demo: builds the namespace topology, starts rvsd with `dpdk-conf/demo.toml`, sends
//! real HTTP traffic through the VIPs over IPv4 and IPv6, prints what happened, cleans up.
//! Run by `scripts/demo.sh` (as root).

use std::time::Instant;

use anyhow::{Context, Result};
use rvs_e2e::{serial, Spec, Topology, LIP4, VIP4, VIP6};

fn main() -> Result<()> {
    let _g = serial();
    println!("== building the topology: client ns, rvsd ns (dpdk0, dpdk1 on af_packet), switch ns, 3 real-server ns");
    let mut t = Topology::build(Spec::default()).context("build topology")?;
    println!(
        "   namespaces: {} (client), {} (rvsd), {} (switch), {}",
        t.client.name(),
        t.lb.name(),
        t.sw.name(),
        t.rs.iter().map(|n| n.name().to_string()).collect::<Vec<_>>().join(" ")
    );
    println!("== starting rvsd -c {}", t.config_path.display());
    t.start_rvsd().context("start rvsd")?;
    println!("   ping {VIP4}: {}", if t.ping(VIP4, 3) { "answered by rvsd" } else { "NO ANSWER" });
    println!("   ping {VIP6}: {}", if t.ping(VIP6, 3) { "answered by rvsd" } else { "NO ANSWER" });

    for (vip, n) in [(VIP4, 300), (VIP6, 300)] {
        let host = if vip.contains(':') { format!("[{vip}]") } else { vip.to_string() };
        let urls: Vec<String> = (0..n).map(|_| format!("http://{host}/")).collect();
        let start = Instant::now();
        let (bodies, ok) = t.curl_many(&urls, 60);
        let counts = t.tally(&bodies);
        println!(
            "== {n} HTTP requests to {host}:80 (wrr 3:2:1) in {:.2}s: {} answered, curl {}",
            start.elapsed().as_secs_f64(),
            counts.iter().sum::<usize>(),
            if ok { "ok" } else { "FAILED" }
        );
        for (i, c) in counts.iter().enumerate() {
            let addr = if vip.contains(':') { rvs_e2e::rs6(i + 1) } else { rvs_e2e::rs4(i + 1) };
            println!("   rs{} ({addr}): {c:4} {}", i + 1, "#".repeat(c / 5));
        }
    }
    let log = std::fs::read_to_string(t.http_log(1)).unwrap_or_default();
    if let Some(line) = log.lines().find(|l| l.contains("GET")) {
        println!("== what rs1 sees (source = the LIP {LIP4}, not the client):\n   {line}");
    }
    let stats = t.rvsd_stats().context("stats")?;
    let tot = &stats["totals"];
    let net = &stats["net"];
    println!("== rvsd counters (SIGUSR1; rvsadm arrives with the control socket)");
    println!("   live connections: {} (workers: {})", stats["conns"], stats["workers"].as_array().map_or(0, Vec::len));
    println!(
        "   connections made: {}   packets in/out: {}/{}   bytes in/out: {}/{}",
        tot["conns"], tot["pkts_in"], tot["pkts_out"], tot["bytes_in"], tot["bytes_out"]
    );
    println!(
        "   frames received: {}   sent: {}   ARP replies: {}   ND adverts: {}   echo replies: {}",
        net["rx_packets"], net["tx_packets"], net["arp_replies"], net["nd_adverts"], net["echo_replies"]
    );
    println!("   drops by reason: {}", stats["drops"]);
    if let Some(w) = stats["workers"].as_array().and_then(|w| w.first()) {
        println!(
            "   per real server (id: connections): {}",
            w["core"]["real_servers"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}: {}", v["conns"])).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        );
    }
    let log = t.stop_rvsd()?;
    println!("== rvsd stopped; its last lines:");
    for l in log.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev() {
        let cut: String = l.chars().take(150).collect();
        println!("   {cut}{}", if cut.len() < l.len() { " ..." } else { "" });
    }
    println!("== cleaning up");
    Ok(())
}
