//! Active-active behind an ECMP router: the two nodes of [`Pair`], both forwarding the same
//! VIP, announce it over BGP (BIRD 2, one per node, speaking from the twin `dpdk0.kni`) to
//! a router namespace that installs one multipath route with layer-4 hashing (BIRD's
//! `merge paths`, `fib_multipath_hash_policy = 1`). BFD runs through the twins, so it
//! tests the dataplane itself: when rvsd dies, its twin goes with it and the router
//! withdraws the box within the BFD detection time. A `kni_host` route hands the node's
//! own address (BGP, BFD) to the twin, as on DPVS.
//!
//! ```text
//!  clients ns                    router ns                 sw ns: brc ── a0, b0 (Pair)
//!  eth0 198.51.100.2..9 ──── eth1 198.51.100.1
//!                                eth0 198.18.0.254 ── rt ─┘
//!                                VIP 198.18.0.100/32 via 198.18.0.1 (a) and .3 (b)
//! ```
//!
//! Each node keeps its own LIP (198.19.0.10, .20), so the real servers' replies return to
//! the node that forwarded; the service schedules with Maglev (`mh`), the same table on
//! both nodes, so a client meets the same real server whichever node the router picks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use testnet::{ChildGuard, NetNs};

use crate::pair::{wait_for, Node, Pair};
use crate::{rs4, veth, VIP4};

/// The router's address on the nodes' segment (their BGP neighbour and gateway).
pub const ROUTER: &str = "198.18.0.254";
/// The clients' network behind the router.
pub const CLIENTS_NET: &str = "198.51.100.0/24";
/// How many client addresses the clients namespace holds (198.51.100.2 onwards).
pub const CLIENTS: usize = 8;
/// The router's AS; the nodes share one AS (anycast), so their routes merge.
const ROUTER_AS: u32 = 65000;
const NODES_AS: u32 = 65001;
/// BFD's interval (ms) and multiplier on both sides: detection within 300 ms.
pub const BFD_INTERVAL_MS: u32 = 100;
/// BFD's detection multiplier.
pub const BFD_MULTIPLIER: u32 = 3;

/// Client address `i` (0-based).
pub fn client_addr(i: usize) -> String {
    format!("198.51.100.{}", i + 2)
}

/// A BIRD 2 daemon in a namespace, with its own configuration, control socket and log;
/// killed on drop.
pub struct Bird {
    /// What it is for (`router`, `a`, `b`): names its files.
    pub name: String,
    ns: String,
    dir: PathBuf,
    child: ChildGuard,
}

impl Bird {
    /// Writes `conf` and starts `bird -f` in `ns`; returns once its control socket answers.
    pub fn start(ns: &NetNs, dir: &Path, name: &str, conf: &str) -> Result<Bird> {
        let path = dir.join(format!("bird-{name}.conf"));
        std::fs::write(&path, conf)?;
        let log = std::fs::File::create(dir.join(format!("bird-{name}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "bird", "-f", "-c"])
            .arg(&path)
            .arg("-s")
            .arg(dir.join(format!("bird-{name}.ctl")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start bird")?;
        let mut b =
            Bird { name: name.into(), ns: ns.name().into(), dir: dir.to_path_buf(), child: ChildGuard::new(child) };
        if wait_for(Duration::from_secs(10), || b.birdc(&["show", "status"]).is_ok_and(|s| s.contains("Daemon is up")))
            .is_none()
        {
            bail!("bird {name} did not start:\n{}", b.log());
        }
        if !b.child.running() {
            bail!("bird {name} exited:\n{}", b.log());
        }
        Ok(b)
    }

    /// Its control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(format!("bird-{}.ctl", self.name))
    }

    /// `birdc -s <socket> ARGS...`: its output, or an error with it.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "birdc", "-s"])
            .arg(self.socket())
            .args(args)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("birdc {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(text)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("bird-{}.log", self.name))).unwrap_or_default()
    }
}

/// The configuration both sides share: logging, timers short enough for a test (and for
/// a production edge), BFD on the given interface.
fn bird_common(router_id: &str, iface: &str) -> String {
    format!(
        "log stderr all;\nrouter id {router_id};\n\
         protocol device {{ scan time 1; }}\n\
         protocol bfd {{ interface \"{iface}\" {{ min rx interval {BFD_INTERVAL_MS} ms; \
         min tx interval {BFD_INTERVAL_MS} ms; idle tx interval 1000 ms; multiplier {BFD_MULTIPLIER}; }}; }}\n"
    )
}

/// BGP session options of both sides: BFD, and quick (re)connection after a failure.
const BGP_TIMERS: &str = "bfd on; connect delay time 1; connect retry time 1; error wait time 1, 2; hold time 9;";

/// The router's BIRD: a session with each node, the routes merged into one multipath
/// kernel route.
pub fn router_bird_conf(nodes: &[&str]) -> String {
    let mut s = bird_common(ROUTER, "eth0");
    s += "protocol kernel { ipv4 { import none; export all; }; merge paths on; }\n";
    for (i, n) in nodes.iter().enumerate() {
        s += &format!(
            "protocol bgp node{i} {{ local {ROUTER} as {ROUTER_AS}; neighbor {n} as {NODES_AS}; \
             ipv4 {{ import all; export none; }}; {BGP_TIMERS} }}\n"
        );
    }
    s
}

/// A node's BIRD (the configuration docs/HA.md shows): the VIP as a static route
/// (`vip`, which `birdc disable vip` withdraws), announced to the router from the twin's
/// address with the node as next hop; nothing imported.
pub fn node_bird_conf(addr0: &str) -> String {
    let mut s = bird_common(addr0, "dpdk0.kni");
    s += &format!(
        "protocol static vip {{ ipv4; route {VIP4}/32 blackhole; }}\n\
         protocol bgp uplink {{ local {addr0} as {NODES_AS}; neighbor {ROUTER} as {ROUTER_AS}; \
         ipv4 {{ import none; export where proto = \"vip\"; }}; {BGP_TIMERS} }}\n"
    );
    s
}

/// Makes a [`Pair`] node active-active: the VIP on dpdk0, a route to the clients via the
/// router, and (with `service`) one Maglev service over every real server with the
/// node's LIP (else rvs-agent adds it).
pub fn configure_node(n: &mut Node, real_servers: usize, service: bool) {
    let addrs = n.config["addr"].as_array_mut().expect("addr list");
    addrs.push(toml::Value::Table(toml::toml! { dev = "dpdk0" addr = "198.18.0.100/32" }));
    let to_clients = toml::toml! { prefix = "198.51.100.0/24" via = "198.18.0.254" dev = "dpdk0" };
    // BGP and BFD to the node's own address are the kernel's (DPVS's kni_host route).
    let mut to_twin = toml::toml! { dev = "dpdk0" scope = "kni_host" };
    to_twin.insert("prefix".into(), format!("{}/32", n.addr0).into());
    let routes = [to_clients, to_twin].into_iter().map(toml::Value::Table).collect();
    n.config.insert("route".into(), toml::Value::Array(routes));
    if !service {
        return;
    }
    let mut svc = toml::toml! { proto = "tcp" vip = "198.18.0.100" port = 80 scheduler = "mh" };
    svc.insert("laddrs".into(), toml::Value::Array(vec![n.lip.clone().into()]));
    let rs = (1..=real_servers)
        .map(|i| {
            let mut t = toml::Table::new();
            t.insert("addr".into(), rs4(i).into());
            t.insert("port".into(), 8080.into());
            toml::Value::Table(t)
        })
        .collect();
    svc.insert("real_server".into(), toml::Value::Array(rs));
    n.config.insert("service".into(), toml::Value::Array(vec![toml::Value::Table(svc)]));
}

/// A node's keepalived.conf when rvs-agent manages the service: no VRRP (every node is
/// active), the Maglev virtual server with TCP checks from the management veth, and the
/// route to the VIP withdrawn while the quorum is lost (`quorum_down` / `quorum_up` drive
/// the node's BIRD through `birdc`).
pub fn agent_conf(n: &Node, real_servers: usize, bird: &Bird) -> String {
    let birdc = format!("birdc -s {}", bird.socket().display());
    let mut rs = String::new();
    for i in 1..=real_servers {
        rs += &format!(
            "    real_server {} 8080 {{\n        weight 1\n        TCP_CHECK {{\n            \
             connect_timeout 1\n        }}\n    }}\n",
            rs4(i)
        );
    }
    format!(
        "global_defs {{\n    router_id rvs-ecmp-{}\n}}\n\n\
         local_address_group laddr_g1 {{\n    {} dpdk1\n}}\n\n\
         virtual_server {VIP4} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind FNAT\n    protocol TCP\n\
         \x20   laddr_group_name laddr_g1\n    quorum 1\n    quorum_up \"{birdc} enable vip\"\n\
         \x20   quorum_down \"{birdc} disable vip\"\n{rs}}}\n",
        n.name, n.lip
    )
}

/// The ECMP topology; dropping it stops the BGP speakers, then the pair.
pub struct Ecmp {
    /// The router's, then node a's, then node b's BIRD.
    pub birds: Vec<Bird>,
    /// The two nodes, the real servers, the switch.
    pub pair: Pair,
    /// The router.
    pub router: NetNs,
    /// The clients ([`CLIENTS`] addresses, default route via the router).
    pub clients: NetNs,
}

impl Ecmp {
    /// Builds everything and starts both nodes' rvsd and every BIRD (and with `agents`,
    /// each node's rvs-agent, which adds the service and has BIRD announce it while
    /// its health checks hold the quorum); returns once the router holds the VIP's
    /// route through both nodes.
    pub fn start(real_servers: usize, agents: bool) -> Result<Ecmp> {
        let pair = Pair::start_with(real_servers, false, |n| configure_node(n, real_servers, !agents))?;
        let router = NetNs::new("rvsrt");
        let clients = NetNs::new("rvsec");
        veth(&router, "eth0", &pair.sw, "rt");
        pair.sw.ip(&["link", "set", "rt", "master", "brc"]);
        pair.sw.ip(&["link", "set", "rt", "up"]);
        veth(&router, "eth1", &clients, "eth0");
        for kv in ["net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"] {
            let out = router.exec(&["sysctl", "-qw", kv]);
            if !out.status.success() {
                bail!("router sysctl {kv}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        router.ip(&["addr", "add", &format!("{ROUTER}/24"), "dev", "eth0"]);
        router.ip(&["addr", "add", "198.51.100.1/24", "dev", "eth1"]);
        for d in ["eth0", "eth1"] {
            router.ip(&["link", "set", d, "up"]);
        }
        for i in 0..CLIENTS {
            clients.ip(&["addr", "add", &format!("{}/24", client_addr(i)), "dev", "eth0"]);
        }
        clients.ip(&["link", "set", "eth0", "up"]);
        clients.ip(&["route", "add", "default", "via", "198.51.100.1"]);
        let dir = pair.dir.clone();
        let mut birds = vec![Bird::start(&router, &dir, "router", &router_bird_conf(&[&pair.a.addr0, &pair.b.addr0]))?];
        for n in [&pair.a, &pair.b] {
            birds.push(Bird::start(&n.ns, &dir, n.name, &node_bird_conf(&n.addr0))?);
        }
        let mut e = Ecmp { birds, pair, router, clients };
        if agents {
            for (n, bird) in [&mut e.pair.a, &mut e.pair.b].into_iter().zip(&e.birds[1..]) {
                let conf = agent_conf(n, real_servers, bird);
                n.start_agent(&conf)?;
            }
        }
        if e.wait_nexthops(2, Duration::from_secs(30)).is_none() {
            let ping = e.router.exec(&["ping", "-c1", "-W1", &e.pair.a.addr0]);
            bail!(
                "the router has no route to the VIP through both nodes: {:?}\nping a: {}\nneighbours: {}\n\
                 a's counters: {}\n{}",
                e.nexthops(),
                String::from_utf8_lossy(&ping.stdout),
                e.router.ip(&["neigh"]),
                e.pair.a.rvsd_stats().map(|v| v.to_string()).unwrap_or_default(),
                e.logs()
            );
        }
        Ok(e)
    }

    /// The next hops of the router's route to the VIP (empty when there is none).
    pub fn nexthops(&self) -> Vec<String> {
        let out = self.router.ip(&["-j", "route", "show", &format!("{VIP4}/32")]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let Some(r) = v.as_array().and_then(|a| a.first()) else { return Vec::new() };
        match r.get("nexthops").and_then(|n| n.as_array()) {
            Some(hops) => hops.iter().filter_map(|h| h["gateway"].as_str().map(String::from)).collect(),
            None => r["gateway"].as_str().map(String::from).into_iter().collect(),
        }
    }

    /// Waits until the route has `n` next hops; how long it took.
    pub fn wait_nexthops(&self, n: usize, timeout: Duration) -> Option<Duration> {
        wait_for(timeout, || self.nexthops().len() == n)
    }

    /// One HTTP request to the VIP from client address `i` (a new connection); its body,
    /// or `None` when it failed within `timeout_ms`.
    pub fn get(&self, i: usize, timeout_ms: u64) -> Option<String> {
        let t = format!("{:.3}", timeout_ms as f64 / 1000.0);
        let out = self.clients.exec(&[
            "curl",
            "-sS",
            "--max-time",
            &t,
            "--interface",
            &client_addr(i % CLIENTS),
            &format!("http://{VIP4}/"),
        ]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `n` requests from client address `i` in one curl run (a new connection each, from
    /// a new source port each); the bodies, one per line, and whether all succeeded.
    pub fn get_many(&self, i: usize, n: usize) -> (String, bool) {
        let urls: Vec<String> = (0..n).map(|_| format!("http://{VIP4}/")).collect();
        let src = client_addr(i % CLIENTS);
        let mut args: Vec<&str> = vec!["curl", "-sS", "--max-time", "5", "--interface", &src];
        args.extend(urls.iter().map(String::as_str));
        let out = self.clients.exec(&args);
        let ok = out.status.success() && out.stderr.is_empty();
        (String::from_utf8_lossy(&out.stdout).into_owned(), ok)
    }

    /// Every log: rvsd's, the agents', BIRD's, and the router's view.
    pub fn logs(&self) -> String {
        let mut s = self.pair.logs();
        for b in &self.birds {
            let protocols = b.birdc(&["show", "protocols", "all"]).unwrap_or_else(|e| e.to_string());
            s += &format!("==== bird {}\n{}\n{protocols}\n", b.name, b.log());
        }
        s
    }
}

impl Drop for Ecmp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for b in &self.birds {
                eprintln!("==== bird {}\n{}", b.name, b.log());
            }
        }
        self.birds.clear();
    }
}
