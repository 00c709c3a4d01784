//! The comparison a user would make before dedicating a core to rvs: the demo's
//! namespace topology, the same wrk load (one thread, 32 connections) and the same nginx
//! servers (three real servers, weights 3:2:1 where the balancer has weights), through
//! - rvsd on af_packet, busy polling (the default) and adaptive polling,
//! - rvsd on af_xdp (when the kernel lets the PMD attach to the veths; else the reason),
//! - the kernel's own FullNAT: nftables DNAT + SNAT in the balancer's namespace,
//! - HAProxy in TCP mode in the balancer's namespace,
//! - no balancer: the client on the servers' LAN, straight to one server;
//!
//! and prints keep-alive requests per second and new connections per second (wrk with
//! `Connection: close`) for each, with rvsd's (busy polling, af_packet) ratio to each.
//! IPv4 TCP only. Run by `scripts/compare.sh` (as root); `COMPARE_SECS` sets the length
//! of each wrk run (default 5). Figures from one run on one machine: compare ratios.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rvs_e2e::{rs4, serial, Spec, Topology, VIP4};
use testnet::{ChildGuard, NetNs};

/// One balancer's figures.
struct Row {
    name: String,
    keepalive: Option<f64>,
    close: Option<f64>,
    note: String,
}

/// nginx in `ns` on port 8080: one process, keep-alive on, a tiny body naming the server.
fn nginx(t: &Topology, ns: &NetNs, i: usize) -> Result<ChildGuard> {
    let d = t.dir.join(format!("cmp-nginx{i}"));
    std::fs::create_dir_all(d.join("tmp"))?;
    let p = |n: &str| d.join(n).display().to_string();
    let conf = format!(
        "daemon off;\nmaster_process off;\nuser root;\npid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;\n \
         uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;\n access_log off;\n keepalive_requests 1000000;\n \
         server {{ listen 8080 backlog=4096; location / {{ return 200 \"rs{i}\\n\"; }} }}\n}}\n",
        pid = p("nginx.pid"),
        err = p("error.log"),
        tmp = p("tmp"),
    );
    std::fs::write(d.join("nginx.conf"), conf)?;
    let g = rvs_e2e::spawn_nginx(ns, &d)?;
    listening(ns, 8080)?;
    Ok(g)
}

/// Waits until something listens on TCP `port` in `ns`.
fn listening(ns: &NetNs, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns.exec(&["ss", "-ltnH", "sport", &format!("= :{port}")]).stdout.is_empty() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} in {}", ns.name());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// wrk's requests per second against `url` from the client, keep-alive or one request
/// per connection.
fn wrk(t: &Topology, url: &str, close: bool, secs: u32) -> Option<f64> {
    let d = format!("-d{secs}s");
    let mut args = vec!["wrk", "-t1", "-c32", &d, "--timeout", "2s"];
    if close {
        args.extend(["-H", "Connection: close"]);
    }
    args.push(url);
    let out = t.client_exec(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || (text.contains("Socket errors") && !close) {
        eprintln!(
            "compare: wrk {url}: {}",
            text.lines().filter(|l| l.contains("errors") || l.contains("Non-2xx")).collect::<Vec<_>>().join("; ")
        );
    }
    text.lines().find(|l| l.starts_with("Requests/sec:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn measure(t: &Topology, name: &str, url: &str, secs: u32, note: &str) -> Row {
    let keepalive = wrk(t, url, false, secs);
    let close = wrk(t, url, true, secs);
    eprintln!("compare: {name}: keep-alive {keepalive:?} req/s, new connections {close:?} /s");
    Row { name: name.into(), keepalive, close, note: note.into() }
}

/// rvsd with the demo's configuration changed by `edit`, measured, stopped.
fn rvsd_row(t: &mut Topology, name: &str, secs: u32, edit: Box<dyn FnOnce(&mut toml::Table)>) -> Row {
    let saved = t.config.clone();
    edit(&mut t.config);
    let url = format!("http://{VIP4}/");
    let row = match t.start_rvsd() {
        Ok(()) => measure(t, name, &url, secs, ""),
        Err(e) => {
            let first = e.to_string().lines().rev().find(|l| l.contains("rror")).unwrap_or("did not start").to_string();
            Row { name: name.into(), keepalive: None, close: None, note: format!("rvsd: {first}") }
        }
    };
    let _ = t.stop_rvsd();
    t.config = saved;
    row
}

/// The kernel takes the balancer's links: the addresses rvsd owns go on the veths, and
/// the ingress drop that hides them from the kernel under af_packet goes.
fn kernel_owns_the_links(t: &Topology) {
    let _ = t.lb.exec(&["nft", "delete", "table", "netdev", "rvs_nic"]);
    for (a, dev) in [
        ("198.18.0.1/24", "rvsdemo-lb0"),
        (&format!("{VIP4}/32"), "rvsdemo-lb0"),
        ("198.19.0.1/24", "rvsdemo-lb1"),
        ("198.19.0.10/24", "rvsdemo-lb1"),
    ] {
        t.lb.ip(&["addr", "add", a, "dev", dev]);
    }
}

/// A fresh topology for one balancer (the servers keep no TIME_WAIT state of the
/// previous one's connections, which would refuse a new balancer's reused ports), its
/// nginx servers, the servers' default route via the balancer, the demo's service on
/// nginx's port.
fn fresh() -> Result<(Topology, Vec<ChildGuard>)> {
    let mut t = Topology::build(Spec { real_servers: 3, http: false }).context("topology")?;
    let nginx: Vec<ChildGuard> = (1..=3).map(|i| nginx(&t, &t.rs[i - 1], i)).collect::<Result<_>>()?;
    for ns in &t.rs {
        ns.ip(&["route", "add", "default", "via", "198.19.0.1"]);
    }
    for svc in t.config["service"].as_array_mut().context("[[service]]")? {
        for rs in svc["real_server"].as_array_mut().context("real servers")? {
            rs["port"] = toml::Value::Integer(8080);
        }
    }
    Ok((t, nginx))
}

fn main() -> Result<()> {
    let _g = serial();
    let secs: u32 = std::env::var("COMPARE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut rows = Vec::new();
    type Edit = Box<dyn FnOnce(&mut toml::Table)>;
    let rvsd_cases: Vec<(&str, Edit)> = vec![
        ("rvsd af_packet, busy polling", Box::new(|_| {})),
        (
            "rvsd af_packet, adaptive polling",
            Box::new(|c| {
                if let Some(w) = c.get_mut("workers").and_then(|w| w.as_table_mut()) {
                    w.insert("polling".into(), toml::Value::String("adaptive".into()));
                }
            }),
        ),
        (
            "rvsd af_xdp, busy polling",
            Box::new(|c| {
                if let Some(ports) = c.get_mut("port").and_then(|p| p.as_array_mut()) {
                    for (i, p) in ports.iter_mut().enumerate() {
                        p["vdev"] = toml::Value::String(format!("net_af_xdp{i},iface=rvsdemo-lb{i}"));
                    }
                }
            }),
        ),
    ];
    for (name, edit) in rvsd_cases {
        let (mut t, nginx) = fresh()?;
        rows.push(rvsd_row(&mut t, name, secs, edit));
        drop(nginx);
    }

    let (t, nginx) = fresh()?;
    kernel_owns_the_links(&t);
    // nftables FullNAT: DNAT to the servers 3:2:1, SNAT to the LIP.
    t.lb.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let nft = format!(
        "table ip rvs_cmp {{ chain pre {{ type nat hook prerouting priority dstnat; \
         ip daddr {VIP4} tcp dport 80 dnat to numgen inc mod 6 map {{ 0-2 : {}, 3-4 : {}, 5 : {} }} : 8080 ; }}; \
         chain post {{ type nat hook postrouting priority srcnat; ip daddr 198.19.0.0/24 snat to 198.19.0.10 ; }}; }}",
        rs4(1),
        rs4(2),
        rs4(3)
    );
    let out = t.lb.exec(&["nft", &nft]);
    let url = format!("http://{VIP4}/");
    rows.push(if out.status.success() {
        measure(&t, "kernel nftables FullNAT (DNAT+SNAT)", &url, secs, "")
    } else {
        Row {
            name: "kernel nftables FullNAT (DNAT+SNAT)".into(),
            keepalive: None,
            close: None,
            note: format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim()),
        }
    });
    drop(nginx);
    drop(t);

    // HAProxy in TCP mode, leaving from the LIP.
    let (t, nginx) = fresh()?;
    kernel_owns_the_links(&t);
    let cfg = t.dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n maxconn 4000\ndefaults\n mode tcp\n timeout connect 5s\n timeout client 30s\n timeout server 30s\n\
             listen vip\n bind {VIP4}:80\n balance roundrobin\n source 198.19.0.10\n\
             server rs1 {}:8080 weight 3\n server rs2 {}:8080 weight 2\n server rs3 {}:8080 weight 1\n",
            rs4(1),
            rs4(2),
            rs4(3)
        ),
    )?;
    let log = std::fs::File::create(t.dir.join("haproxy.log"))?;
    let haproxy = Command::new("ip")
        .args(["netns", "exec", t.lb.name(), "haproxy", "-db", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(ChildGuard::new);
    rows.push(match haproxy {
        Ok(g) if listening(&t.lb, 80).is_ok() => {
            let r = measure(&t, "HAProxy 2.6, TCP mode", &url, secs, "");
            drop(g);
            r
        }
        _ => {
            let why = std::fs::read_to_string(t.dir.join("haproxy.log")).unwrap_or_default();
            let why = why.lines().find(|l| l.contains("ALERT")).unwrap_or("did not start").to_string();
            Row { name: "HAProxy 2.6, TCP mode".into(), keepalive: None, close: None, note: why }
        }
    });
    drop(nginx);
    drop(t);

    // No balancer: the client straight to one server on the servers' LAN.
    let (t, _nginx) = fresh()?;
    t.client_on_server_lan("198.19.0.2", "2001:db8:19::2");
    rows.push(measure(&t, "no balancer (one server, direct)", &format!("http://{}:8080/", rs4(1)), secs, ""));

    let reference = (rows[0].keepalive, rows[0].close);
    println!();
    println!(
        "wrk -t1 -c32 -d{secs}s through each to 3 nginx servers (keep-alive; then -H 'Connection: close' = new connections)"
    );
    println!("{:<40} {:>12} {:>9} {:>12} {:>9}  note", "balancer", "keep-alive/s", "rvsd/it", "new conn/s", "rvsd/it");
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    };
    let fig = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.0}"));
    for r in &rows {
        println!(
            "{:<40} {:>12} {:>9} {:>12} {:>9}  {}",
            r.name,
            fig(r.keepalive),
            ratio(reference.0, r.keepalive),
            fig(r.close),
            ratio(reference.1, r.close),
            r.note
        );
    }
    Ok(())
}
