//! The comparison a user would make before dedicating a core to rvs: the demo's
//! namespace topology, the same loads and the same servers (three real servers, weights
//! 3:2:1 where the balancer has weights), through
//! - rvsd on af_packet, busy polling (the default) and adaptive polling,
//! - rvsd on af_xdp (when the kernel lets the PMD attach to the veths; else the reason),
//! - the kernel's own FullNAT: nftables DNAT + SNAT in the balancer's namespace,
//! - HAProxy in TCP mode in the balancer's namespace (no UDP: it has no UDP proxy),
//! - no balancer: the client on the servers' LAN, straight to one server;
//!
//! and prints, over IPv4 and over IPv6, wrk's (one thread, 32 connections, nginx as the
//! servers) keep-alive requests per second and new connections per second (wrk with
//! `Connection: close`), then dnsperf's (32 clients, so 32 UDP flows, dnsmasq as the
//! servers) DNS queries answered per second, for each with rvsd's (busy polling,
//! af_packet) ratio to each; an rvsd row notes the new connections rvsd refused for
//! want of room. Run by `scripts/compare.sh` (as root); `COMPARE_SECS` sets the length
//! of each run (default 5), `COMPARE_ONLY` keeps the balancers whose name contains it.
//! Figures from one run on one machine: compare ratios.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rvs_e2e::{rs4, rs6, serial, Spec, Topology, LIP4, LIP6, VIP4, VIP6};
use testnet::{ChildGuard, NetNs};

/// One TCP load's figures over one address family (`None`: the run gave no figure).
#[derive(Clone, Copy, Default)]
struct Tcp {
    /// wrk's keep-alive requests per second.
    keepalive: Option<f64>,
    /// wrk's requests per second with `Connection: close`: new connections per second.
    close: Option<f64>,
}

/// The UDP figures of one balancer: DNS queries answered per second over IPv4 and IPv6,
/// or why a balancer has none (it cannot carry UDP: printed, not left out).
enum Udp {
    /// dnsperf's queries per second, each family.
    Measured { v4: Option<f64>, v6: Option<f64> },
    /// The balancer carries no UDP; the reason as printed.
    NotCarried(&'static str),
}

/// One balancer's figures.
struct Row {
    name: String,
    v4: Tcp,
    v6: Tcp,
    udp: Udp,
    /// Why a balancer has no figures (set-up failed), for every table.
    note: String,
    /// Queries dnsperf counted lost, for the UDP table.
    udp_note: String,
}

impl Row {
    /// A balancer that could not be set up: no figures, the reason in the note.
    fn failed(name: &str, udp: bool, note: String) -> Row {
        let udp = if udp { Udp::Measured { v4: None, v6: None } } else { Udp::NotCarried("n/a (no UDP)") };
        Row { name: name.into(), v4: Tcp::default(), v6: Tcp::default(), udp, note, udp_note: String::new() }
    }
}

/// Where the client reaches a balancer (or the server, with none): the HTTP URLs and the
/// DNS server addresses of each family; `dns` false for a balancer without UDP.
struct Targets {
    http4: String,
    http6: String,
    dns4: String,
    dns6: String,
    dns: bool,
}

impl Targets {
    /// The VIPs on port 80 (HTTP) and 53 (DNS).
    fn vips(dns: bool) -> Targets {
        Targets {
            http4: format!("http://{VIP4}/"),
            http6: format!("http://[{VIP6}]/"),
            dns4: VIP4.into(),
            dns6: VIP6.into(),
            dns,
        }
    }
}

/// nginx in `ns` on port 8080 (IPv4 and IPv6): one process, keep-alive on, a tiny body
/// naming the server.
fn nginx(t: &Topology, ns: &NetNs, i: usize) -> Result<ChildGuard> {
    let d = t.dir.join(format!("cmp-nginx{i}"));
    std::fs::create_dir_all(d.join("tmp"))?;
    let p = |n: &str| d.join(n).display().to_string();
    let conf = format!(
        "daemon off;\nmaster_process off;\nuser root;\npid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;\n \
         uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;\n access_log off;\n keepalive_requests 1000000;\n \
         server {{ listen 8080 backlog=4096; listen [::]:8080 backlog=4096; location / {{ return 200 \"rs{i}\\n\"; }} }}\n}}\n",
        pid = p("nginx.pid"),
        err = p("error.log"),
        tmp = p("tmp"),
    );
    std::fs::write(d.join("nginx.conf"), conf)?;
    let g = rvs_e2e::spawn_nginx(ns, &d)?;
    listening(ns, "-ltnH", 8080)?;
    Ok(g)
}

/// dnsmasq in real server `i` on port 53 of its IPv4 and IPv6 addresses, answering
/// `rs.test` (A) with the server's own address from its configuration (no upstream, no
/// cache to miss), not logging queries.
fn dnsmasq(t: &Topology, i: usize) -> Result<ChildGuard> {
    let ns = &t.rs[i - 1];
    let args = testnet::dnsmasq_args(&[rs4(i), rs6(i)], 53, &format!("/rs.test/{}", rs4(i)));
    let g = ns.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    listening(ns, "-lunH", 53)?;
    Ok(g)
}

/// Waits until something listens on `port` in `ns` (`ss_flags`: `-ltnH` TCP, `-lunH`
/// UDP).
fn listening(ns: &NetNs, ss_flags: &str, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns.exec(&["ss", ss_flags, "sport", &format!("= :{port}")]).stdout.is_empty() {
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
    if !out.status.success() {
        eprintln!("compare: wrk {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    text.lines().find(|l| l.starts_with("Requests/sec:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// A few requests with `Connection: close` before a family's runs, so that every
/// neighbour on the way (the client's, the balancer's for each server, the servers' for
/// the LIP) is resolved before the clock starts rather than during the first second.
fn warm_up(t: &Topology, url: &str) {
    for _ in 0..6 {
        let _ = t.client_exec(&["curl", "-s", "-g", "-m", "3", "-o", "/dev/null", "-H", "Connection: close", url]);
    }
}

/// The queries dnsperf sends, over and over: one A query the servers answer themselves.
const QUERIES: &str = "rs.test A\n";

/// dnsperf from the client to `server:53` for `secs` seconds: 32 clients (each its own
/// socket, so 32 UDP flows through a balancer), at most 64 queries outstanding, a query
/// unanswered after 1 s counted lost. Returns the queries answered per second and, if
/// any were lost, a note saying how many.
fn dnsperf(t: &Topology, server: &str, secs: u32) -> (Option<f64>, Option<String>) {
    let file = t.dir.join("cmp-queries.txt");
    if let Err(e) = std::fs::write(&file, QUERIES) {
        eprintln!("compare: dnsperf input: {e}");
        return (None, None);
    }
    let file = file.display().to_string();
    let l = secs.to_string();
    let out = t.client_exec(&["dnsperf", "-s", server, "-d", &file, "-l", &l, "-c", "32", "-q", "64", "-t", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| text.lines().find_map(|l| l.trim().strip_prefix(name)).map(str::trim);
    let qps = field("Queries per second:").and_then(|v| v.parse().ok());
    if qps.is_none() {
        eprintln!("compare: dnsperf {server}: {}{}", text.trim(), String::from_utf8_lossy(&out.stderr).trim());
    }
    // "Queries lost:         12 (0.01%)"
    let lost = field("Queries lost:").filter(|v| !v.starts_with("0 ")).map(|v| format!("udp {server}: {v} lost"));
    (qps, lost)
}

/// Every run against one balancer: IPv4 then IPv6 keep-alive and new connections, then
/// UDP over each family when the balancer carries it.
fn measure(t: &Topology, name: &str, to: &Targets, secs: u32) -> Row {
    let mut notes = Vec::new();
    let tcp = |url: &str| {
        warm_up(t, url);
        Tcp { keepalive: wrk(t, url, false, secs), close: wrk(t, url, true, secs) }
    };
    let v4 = tcp(&to.http4);
    let v6 = tcp(&to.http6);
    let udp = if to.dns {
        let (v4, lost4) = dnsperf(t, &to.dns4, secs);
        let (v6, lost6) = dnsperf(t, &to.dns6, secs);
        notes.extend(lost4.into_iter().chain(lost6));
        Udp::Measured { v4, v6 }
    } else {
        Udp::NotCarried("n/a (no UDP)")
    };
    eprintln!(
        "compare: {name}: IPv4 keep-alive {:?} req/s, new connections {:?} /s; IPv6 {:?}, {:?}; UDP {}",
        v4.keepalive,
        v4.close,
        v6.keepalive,
        v6.close,
        match &udp {
            Udp::Measured { v4, v6 } => format!("{v4:?} and {v6:?} queries/s"),
            Udp::NotCarried(why) => (*why).to_string(),
        }
    );
    Row { name: name.into(), v4, v6, udp, note: String::new(), udp_note: notes.join("; ") }
}

/// rvsd with the demo's configuration changed by `edit`, measured, stopped.
fn rvsd_row(t: &mut Topology, name: &str, secs: u32, edit: Box<dyn FnOnce(&mut toml::Table)>) -> Row {
    let saved = t.config.clone();
    edit(&mut t.config);
    let row = match t.start_rvsd() {
        Ok(()) => {
            let mut row = measure(t, name, &Targets::vips(true), secs);
            row.note = refusals(t);
            row
        }
        Err(e) => {
            let first = e.to_string().lines().rev().find(|l| l.contains("rror")).unwrap_or("did not start").to_string();
            Row::failed(name, true, format!("rvsd: {first}"))
        }
    };
    let _ = t.stop_rvsd();
    t.config = saved;
    row
}

/// The new connections rvsd refused for want of room during the runs (a full connection
/// table, no free local port, a half-open connection evicted), as a note; empty when
/// none was, so that a figure capped by a table is told from one capped by the CPU.
fn refusals(t: &Topology) -> String {
    let Ok(stats) = t.rvsd_stats() else {
        return "rvsd: no counters".into();
    };
    eprintln!("compare: rvsd counters after the runs: drops {} events {}", stats["drops"], stats["events"]);
    let counts: Vec<String> = [("drops", "pool_full"), ("drops", "no_local_port"), ("events", "syn_recv_evicted")]
        .iter()
        .filter_map(|(set, k)| stats[set][k].as_u64().filter(|&n| n > 0).map(|n| format!("{k} {n}")))
        .collect();
    if counts.is_empty() {
        String::new()
    } else {
        format!("rvsd refused: {}", counts.join(", "))
    }
}

/// The kernel takes the balancer's links: the addresses rvsd owns (IPv4 and IPv6, no
/// duplicate address detection, as rvsd has none to wait for) go on the veths, IPv6 is
/// enabled on them again, and the ingress drop that hides them from the kernel under
/// af_packet goes; the namespace forwards both families.
fn kernel_owns_the_links(t: &Topology) {
    let _ = t.lb.exec(&["nft", "delete", "table", "netdev", "rvs_nic"]);
    for dev in ["rvsdemo-lb0", "rvsdemo-lb1"] {
        t.lb.exec(&["sysctl", "-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=0")]);
    }
    for (a, dev) in [
        ("198.18.0.1/24", "rvsdemo-lb0"),
        (&format!("{VIP4}/32"), "rvsdemo-lb0"),
        ("198.19.0.1/24", "rvsdemo-lb1"),
        (&format!("{LIP4}/24"), "rvsdemo-lb1"),
    ] {
        t.lb.ip(&["addr", "add", a, "dev", dev]);
    }
    for (a, dev) in [
        ("2001:db8:18::1/64", "rvsdemo-lb0"),
        (&format!("{VIP6}/128"), "rvsdemo-lb0"),
        ("2001:db8:19::1/64", "rvsdemo-lb1"),
        (&format!("{LIP6}/64"), "rvsdemo-lb1"),
    ] {
        t.lb.ip(&["addr", "add", a, "dev", dev, "nodad"]);
    }
    t.lb.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    t.lb.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
}

/// The UDP service VIP:53 → the servers' port 53 (weights 3:2:1) from the LIP, in
/// rvsd's configuration, for `vip` and the servers' addresses by `rs`.
fn udp_service(vip: &str, lip: &str, rs: fn(usize) -> String) -> toml::Value {
    let servers: Vec<toml::Value> = (1..=3)
        .map(|i| {
            let mut s = toml::Table::new();
            s.insert("addr".into(), rs(i).into());
            s.insert("port".into(), 53.into());
            s.insert("weight".into(), toml::Value::Integer(4 - i as i64));
            toml::Value::Table(s)
        })
        .collect();
    let mut svc = toml::Table::new();
    svc.insert("proto".into(), "udp".into());
    svc.insert("vip".into(), vip.into());
    svc.insert("port".into(), 53.into());
    svc.insert("scheduler".into(), "wrr".into());
    svc.insert("laddrs".into(), toml::Value::Array(vec![lip.into()]));
    svc.insert("real_server".into(), toml::Value::Array(servers));
    toml::Value::Table(svc)
}

/// A fresh topology for one balancer (the servers keep no TIME_WAIT state of the
/// previous one's connections, which would refuse a new balancer's reused ports), its
/// nginx and dnsmasq servers, the servers' default routes via the balancer, the demo's
/// TCP services (IPv4 and IPv6) on nginx's port and UDP services on dnsmasq's.
fn fresh() -> Result<(Topology, Vec<ChildGuard>)> {
    let mut t = Topology::build(Spec { real_servers: 3, http: false }).context("topology")?;
    let mut servers: Vec<ChildGuard> = (1..=3).map(|i| nginx(&t, &t.rs[i - 1], i)).collect::<Result<_>>()?;
    for i in 1..=3 {
        servers.push(dnsmasq(&t, i)?);
    }
    for ns in &t.rs {
        ns.ip(&["route", "add", "default", "via", "198.19.0.1"]);
        ns.ip(&["-6", "route", "add", "default", "via", "2001:db8:19::1"]);
    }
    let services = t.config["service"].as_array_mut().context("[[service]]")?;
    for svc in services.iter_mut() {
        for rs in svc["real_server"].as_array_mut().context("real servers")? {
            rs["port"] = toml::Value::Integer(8080);
        }
    }
    services.push(udp_service(VIP4, LIP4, rs4));
    services.push(udp_service(VIP6, LIP6, rs6));
    Ok((t, servers))
}

/// The nftables FullNAT of both families: DNAT of the VIPs' TCP port 80 to the servers'
/// 8080 and UDP port 53 to their 53, spread 3:2:1 over new connections (flows), and SNAT
/// to the LIP of everything that leaves towards the servers.
fn nft_fullnat() -> String {
    let map = |rs: fn(usize) -> String| format!("map {{ 0-2 : {}, 3-4 : {}, 5 : {} }}", rs(1), rs(2), rs(3));
    let (m4, m6) = (map(rs4), map(rs6));
    format!(
        "table ip rvs_cmp {{ chain pre {{ type nat hook prerouting priority dstnat; \
         ip daddr {VIP4} tcp dport 80 dnat to numgen inc mod 6 {m4} : 8080 ; \
         ip daddr {VIP4} udp dport 53 dnat to numgen inc mod 6 {m4} ; }}; \
         chain post {{ type nat hook postrouting priority srcnat; ip daddr 198.19.0.0/24 snat to {LIP4} ; }}; }}\n\
         table ip6 rvs_cmp6 {{ chain pre {{ type nat hook prerouting priority dstnat; \
         ip6 daddr {VIP6} tcp dport 80 dnat to numgen inc mod 6 {m6} : 8080 ; \
         ip6 daddr {VIP6} udp dport 53 dnat to numgen inc mod 6 {m6} ; }}; \
         chain post {{ type nat hook postrouting priority srcnat; ip6 daddr 2001:db8:19::/64 snat to {LIP6} ; }}; }}"
    )
}

/// HAProxy's configuration: one TCP proxy per family, leaving from that family's LIP
/// (IPv6 addresses in brackets, as HAProxy reads them).
fn haproxy_cfg() -> String {
    let mut cfg = String::from(
        "global\n maxconn 4000\ndefaults\n mode tcp\n timeout connect 5s\n timeout client 30s\n timeout server 30s\n",
    );
    let v4 = ("vip4", VIP4.to_string(), LIP4.to_string(), (1..=3).map(rs4).collect::<Vec<_>>());
    let v6 = ("vip6", format!("[{VIP6}]"), format!("[{LIP6}]"), (1..=3).map(|i| format!("[{}]", rs6(i))).collect());
    for (name, vip, lip, rs) in [v4, v6] {
        cfg += &format!(
            "listen {name}\n bind {vip}:80\n balance roundrobin\n source {lip}\n\
             server rs1 {}:8080 weight 3\n server rs2 {}:8080 weight 2\n server rs3 {}:8080 weight 1\n",
            rs[0], rs[1], rs[2]
        );
    }
    cfg
}

/// The kernel's FullNAT: nftables DNAT + SNAT, both families, TCP and UDP, on a fresh
/// topology.
fn nft_row(name: &str, secs: u32) -> Result<Row> {
    let (t, _servers) = fresh()?;
    kernel_owns_the_links(&t);
    let out = t.lb.exec(&["nft", &nft_fullnat()]);
    Ok(if out.status.success() {
        measure(&t, name, &Targets::vips(true), secs)
    } else {
        let why = String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("failed").to_string();
        Row::failed(name, true, format!("nft: {why}"))
    })
}

/// HAProxy in TCP mode, leaving from the LIPs, on a fresh topology; it has no UDP proxy.
fn haproxy_row(name: &str, secs: u32) -> Result<Row> {
    let (t, _servers) = fresh()?;
    kernel_owns_the_links(&t);
    let cfg = t.dir.join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_cfg())?;
    let log = std::fs::File::create(t.dir.join("haproxy.log"))?;
    let haproxy = Command::new("ip")
        .args(["netns", "exec", t.lb.name(), "haproxy", "-db", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(ChildGuard::new);
    Ok(match haproxy {
        Ok(g) if listening(&t.lb, "-ltnH", 80).is_ok() => {
            let r = measure(&t, name, &Targets::vips(false), secs);
            drop(g);
            r
        }
        _ => {
            let why = std::fs::read_to_string(t.dir.join("haproxy.log")).unwrap_or_default();
            let why = why.lines().find(|l| l.contains("ALERT")).unwrap_or("did not start").to_string();
            Row::failed(name, false, why)
        }
    })
}

/// No balancer: the client straight to one server on the servers' LAN, on a fresh
/// topology.
fn direct_row(name: &str, secs: u32) -> Result<Row> {
    let (t, _servers) = fresh()?;
    t.client_on_server_lan("198.19.0.2", "2001:db8:19::2");
    let direct = Targets {
        http4: format!("http://{}:8080/", rs4(1)),
        http6: format!("http://[{}]:8080/", rs6(1)),
        dns4: rs4(1),
        dns6: rs6(1),
        dns: true,
    };
    Ok(measure(&t, name, &direct, secs))
}

/// One table: a line saying what ran, the header, a line per balancer with each of its
/// two figures and rvsd's (the first row's) ratio to it.
fn table(title: &str, heads: [&str; 2], rows: &[(String, [Option<f64>; 2], String)]) {
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    };
    let fig = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.0}"));
    let reference = rows.first().map(|r| r.1).unwrap_or_default();
    println!();
    println!("{title}");
    println!("{:<40} {:>12} {:>9} {:>12} {:>9}  note", "balancer", heads[0], "rvsd/it", heads[1], "rvsd/it");
    for (name, figs, note) in rows {
        println!(
            "{:<40} {:>12} {:>9} {:>12} {:>9}  {}",
            name,
            fig(figs[0]),
            ratio(reference[0], figs[0]),
            fig(figs[1]),
            ratio(reference[1], figs[1]),
            note
        );
    }
}

fn main() -> Result<()> {
    let _g = serial();
    let secs: u32 = std::env::var("COMPARE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    // COMPARE_ONLY: run only the balancers whose name contains it (e.g. "rvsd", "nftables").
    let only = std::env::var("COMPARE_ONLY").unwrap_or_default();
    let wanted = |name: &str| name.contains(only.as_str());
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
    for (name, edit) in rvsd_cases.into_iter().filter(|(n, _)| wanted(n)) {
        let (mut t, servers) = fresh()?;
        rows.push(rvsd_row(&mut t, name, secs, edit));
        drop(servers);
    }

    const NFT: &str = "kernel nftables FullNAT (DNAT+SNAT)";
    const HAPROXY: &str = "HAProxy 2.6, TCP mode";
    const DIRECT: &str = "no balancer (one server, direct)";
    if wanted(NFT) {
        rows.push(nft_row(NFT, secs)?);
    }
    if wanted(HAPROXY) {
        rows.push(haproxy_row(HAPROXY, secs)?);
    }
    if wanted(DIRECT) {
        rows.push(direct_row(DIRECT, secs)?);
    }

    let tcp = |v6: bool| -> Vec<(String, [Option<f64>; 2], String)> {
        rows.iter()
            .map(|r| {
                let f = if v6 { r.v6 } else { r.v4 };
                (r.name.clone(), [f.keepalive, f.close], r.note.clone())
            })
            .collect()
    };
    let heads = ["keep-alive/s", "new conn/s"];
    let wrk_line = format!("wrk -t1 -c32 -d{secs}s through each to 3 nginx servers (keep-alive; then -H 'Connection: close' = new connections)");
    table(&format!("IPv4 TCP: {wrk_line}"), heads, &tcp(false));
    table(&format!("IPv6 TCP: {wrk_line}"), heads, &tcp(true));
    let udp: Vec<_> = rows
        .iter()
        .map(|r| match &r.udp {
            Udp::Measured { v4, v6 } => {
                let note: Vec<&str> =
                    [&r.note, &r.udp_note].into_iter().filter(|n| !n.is_empty()).map(String::as_str).collect();
                (r.name.clone(), [*v4, *v6], note.join("; "))
            }
            Udp::NotCarried(why) => (r.name.clone(), [None, None], (*why).to_string()),
        })
        .collect();
    table(
        &format!(
            "UDP: dnsperf -c32 -q64 -t1 -l{secs} through each to 3 dnsmasq servers (32 flows; DNS queries answered/s)"
        ),
        ["IPv4 q/s", "IPv6 q/s"],
        &udp,
    );
    Ok(())
}
