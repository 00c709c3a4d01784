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
    let show = |tool: &str, args: &[&str], max_lines: usize| {
        let (out, err, ok) = t.cli(tool, args);
        println!("== {tool} {}", args.join(" "));
        for l in out.lines().take(max_lines) {
            println!("   {l}");
        }
        if out.lines().count() > max_lines {
            println!("   ... ({} more lines)", out.lines().count() - max_lines);
        }
        if !ok {
            println!("   {tool} failed: {err}");
        }
    };
    show("rvsadm", &["-L", "-n"], 40);
    show("rvsadm", &["-L", "-n", "--stats"], 40);
    show("rvsadm", &["-L", "-n", "-c"], 6);
    show("rvsadm", &["-G"], 10);
    show("rvsip", &["link", "show", "-s"], 40);
    show("rvsip", &["stats", "--once"], 10);
    let log = t.stop_rvsd()?;
    println!("== rvsd stopped; its last lines:");
    for l in log.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev() {
        let cut: String = l.chars().take(150).collect();
        println!("   {cut}{}", if cut.len() < l.len() { " ..." } else { "" });
    }
    println!("== cleaning up");
    Ok(())
}
