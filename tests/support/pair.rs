//! Two load balancers, each rvsd + rvs-agent in its own namespace, in front of the same
//! real servers: the failover topology (issue 8's acceptance).
//!
//! ```text
//!  client ns                 sw ns                            node a ns / node b ns
//!  eth0 198.18.0.2 ── cl ─┬ brc ┬─ a0 ── lb0 = dpdk0  198.18.0.1 / .3  (twin dpdk0.kni: same address, VRRP)
//!                               └─ b0 ── lb0 = dpdk0
//!                          brs ┬─ a1 ── lb1 = dpdk1  198.19.0.1 / .3, LIP 198.19.0.10 / .20
//!                              ├─ b1 ── lb1 = dpdk1
//!                              ├─ am ── mgmt 198.19.0.101 / .103   (the agent's health checks)
//!                              ├─ bm ── mgmt
//!                              └─ rs1..rsN ── eth0 198.19.0.11.. :8080
//! ```
//!
//! rvsd runs with `dpdk-conf/demo.toml` reduced to the node's own addresses: no VIP and no
//! service (the agent adds both), a file prefix and control socket per node. Both rvsd
//! workers busy-poll lcore 1. The agent runs in the node's namespace: VRRP on the twin
//! `dpdk0.kni` (given dpdk0's address in the kernel, the adverts' source), health checks
//! over the management veth (`arp_ignore=1` so the kernel never answers ARP for it on a
//! twin). Every namespace is unique and removed on drop, with every process inside.

use crate::veth;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use testnet::{ChildGuard, NetNs};

use crate::{repo_root, rs4, workspace_bin, CLIENT4, VIP4};

/// The VRRP instance's name in [`AgentConf::render`].
pub const INSTANCE: &str = "VI_1";

/// One load balancer.
pub struct Node {
    /// `a` or `b`.
    pub name: &'static str,
    /// rvsd's dpdk0 address (and the twin's: the VRRP source).
    pub addr0: String,
    /// rvsd's dpdk1 address.
    pub addr1: String,
    /// The node's local address (LIP).
    pub lip: String,
    /// The management address the health checks leave from.
    pub mgmt: String,
    /// rvsd's configuration as written.
    pub config: toml::Table,
    dir: PathBuf,
    agent: Option<ChildGuard>,
    rvsd: Option<ChildGuard>,
    /// Its namespace.
    pub ns: NetNs,
}

impl Node {
    /// rvsd's control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(format!("rvsd-{}.sock", self.name))
    }

    /// `rvsadm ARGS` against this node's rvsd: (stdout, stderr, success).
    pub fn rvsadm(&self, args: &[&str]) -> (String, String, bool) {
        let out = std::process::Command::new(crate::workspace_bin("rvsadm"))
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run rvsadm");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (text(&out.stdout), text(&out.stderr), out.status.success())
    }

    /// The agent's status socket.
    pub fn status_socket(&self) -> PathBuf {
        self.dir.join(format!("agent-{}.sock", self.name))
    }

    /// The agent's keepalived.conf.
    pub fn agent_conf(&self) -> PathBuf {
        self.dir.join(format!("keepalived-{}.conf", self.name))
    }

    /// rvsd's log.
    pub fn rvsd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("rvsd-{}.log", self.name))).unwrap_or_default()
    }

    /// The agent's log (all its runs).
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("agent-{}.log", self.name))).unwrap_or_default()
    }

    /// A control client for this node's rvsd.
    pub fn ctl(&self) -> Result<ctl::Client> {
        ctl::Client::connect(self.socket()).context("connect to rvsd")
    }

    /// The addresses rvsd holds.
    pub fn addrs(&self) -> Result<Vec<ctl::AddrView>> {
        match self.ctl()?.call(ctl::Request::AddrList {})? {
            ctl::Response::Addrs { addrs } => Ok(addrs),
            r => bail!("unexpected {r:?}"),
        }
    }

    /// Whether rvsd holds `addr`.
    pub fn holds(&self, addr: &str) -> bool {
        let a: IpAddr = addr.parse().expect("address");
        self.addrs().map(|v| v.iter().any(|x| x.addr.addr() == a)).unwrap_or(false)
    }

    /// The services rvsd holds.
    pub fn services(&self) -> Result<Vec<ctl::ServiceView>> {
        match self.ctl()?.call(ctl::Request::ServiceList { stats: false })? {
            ctl::Response::Services { services } => Ok(services),
            r => bail!("unexpected {r:?}"),
        }
    }

    /// The weight rvsd gives real server `addr:port` of the VIP's port-80 service (None:
    /// no such service or server).
    pub fn weight(&self, addr: &str, port: u16) -> Option<u32> {
        let a: IpAddr = addr.parse().ok()?;
        let svcs = self.services().ok()?;
        let s = svcs.iter().find(|s| s.service.vip.to_string() == VIP4 && s.service.vport == 80)?;
        s.service.real_servers.iter().find(|r| r.addr == a && r.port == port).map(|r| r.weight)
    }

    /// `rvs-agent status --json` for this node's agent.
    pub fn agent_status(&self) -> Result<serde_json::Value> {
        let out = self.agent_cmd(&["status", "--json"])?;
        serde_json::from_str(&out).with_context(|| format!("status JSON: {out}"))
    }

    /// Runs `rvs-agent ARGS --status-socket S` (in the node's namespace); its stdout.
    pub fn agent_cmd(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(workspace_bin("rvs-agent"))
            .args(args)
            .arg("--status-socket")
            .arg(self.status_socket())
            .env("RVS_LOG", "off")
            .output()?;
        if !out.status.success() {
            bail!("rvs-agent {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The VRRP state the agent reports (`Master`, `Backup`, ...), if it answers.
    pub fn vrrp_state(&self) -> Option<String> {
        let s = self.agent_status().ok()?;
        s["instances"][0]["state"].as_str().map(str::to_string)
    }

    /// Whether the agent process is running.
    pub fn agent_running(&mut self) -> bool {
        self.agent.as_mut().is_some_and(ChildGuard::running)
    }

    /// Writes the agent's configuration and starts it; returns once its status socket
    /// answers.
    pub fn start_agent(&mut self, conf: &str) -> Result<()> {
        self.start_agent_with(conf, &[])
    }

    /// [`Node::start_agent`] with more arguments (`-C`, ...).
    pub fn start_agent_with(&mut self, conf: &str, args: &[&str]) -> Result<()> {
        assert!(self.agent.is_none(), "agent {} already running", self.name);
        std::fs::write(self.agent_conf(), conf)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("agent-{}.log", self.name)))?;
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns.name()])
            .arg(workspace_bin("rvs-agent"))
            .arg("-f")
            .arg(self.agent_conf())
            .arg("--rvsd-socket")
            .arg(self.socket())
            .arg("--status-socket")
            .arg(self.status_socket())
            .args(args)
            .env("RVS_LOG", std::env::var("RVS_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start rvs-agent")?;
        self.agent = Some(ChildGuard::new(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if !self.agent_running() {
                bail!("rvs-agent {} exited during start-up:\n{}", self.name, self.agent_log());
            }
            if self.agent_status().is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("rvs-agent {} status did not answer within 10 s:\n{}", self.name, self.agent_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to the agent (no goodbye advert, nothing removed); returns when it is gone.
    pub fn kill_agent(&mut self) {
        if let Some(g) = self.agent.take() {
            let _ = Command::new("kill").args(["-KILL", &g.pid().to_string()]).status();
            drop(g); // reaps it
        }
    }

    /// SIGTERM to the agent (it leaves cleanly); returns when it has exited.
    pub fn stop_agent(&mut self) -> Result<()> {
        if let Some(mut g) = self.agent.take() {
            let _ = Command::new("kill").args(["-TERM", &g.pid().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while g.running() {
                if Instant::now() > deadline {
                    bail!("rvs-agent {} did not stop within 10 s of SIGTERM", self.name);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Starts rvsd (again) and gives its twin `dpdk0.kni` the port's address (the VRRP
    /// source); returns once it forwards.
    pub fn start_rvsd(&mut self) -> Result<()> {
        let path = self.dir.join(format!("rvsd-{}.toml", self.name));
        std::fs::write(&path, toml::to_string(&self.config)?)?;
        let log_path = self.dir.join(format!("rvsd-{}.log", self.name));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns.name()])
            .arg(workspace_bin("rvsd"))
            .arg("-c")
            .arg(&path)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start rvsd")?;
        self.rvsd = Some(ChildGuard::new(child));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if !self.rvsd.as_mut().is_some_and(ChildGuard::running) {
                bail!("rvsd {} exited during start-up:\n{}", self.name, self.rvsd_log());
            }
            if self.rvsd_log().contains("rvsd: forwarding") && self.socket().exists() {
                break;
            }
            if Instant::now() > deadline {
                bail!("rvsd {} did not start within 60 s:\n{}", self.name, self.rvsd_log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // VRRP's source: the port's own address on its twin.
        self.ns.ip(&["link", "set", "dpdk0.kni", "up"]);
        self.ns.ip(&["addr", "add", &format!("{}/24", self.addr0), "dev", "dpdk0.kni"]);
        Ok(())
    }

    /// SIGKILL to rvsd (nothing cleaned up, as in a crash or a power cut); returns when it
    /// is gone, after removing the DPDK runtime directory it left.
    pub fn kill_rvsd(&mut self) {
        if let Some(g) = self.rvsd.take() {
            let _ = Command::new("kill").args(["-KILL", &g.pid().to_string()]).status();
            drop(g);
        }
        if let Some(prefix) = self.config["eal"]["file_prefix"].as_str() {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        }
    }

    /// SIGHUP to rvsd (`systemctl reload rvsd`): it reads its file again.
    pub fn hup_rvsd(&self) {
        let pid = self.rvsd.as_ref().expect("rvsd is running").pid();
        assert!(Command::new("kill").args(["-HUP", &pid.to_string()]).status().is_ok_and(|s| s.success()));
    }

    /// rvsd's counters: SIGUSR1 makes it log one `rvsd: stats {json}` line; the newest.
    pub fn rvsd_stats(&self) -> Result<serde_json::Value> {
        let pid = self.rvsd.as_ref().context("rvsd is not running")?.pid();
        crate::stats_via_usr1(pid, || self.rvsd_log())
    }

    /// Stops rvsd (SIGTERM; killed after 5 s). Its twins go with it.
    pub fn stop_rvsd(&mut self) {
        if let Some(mut g) = self.rvsd.take() {
            let _ = Command::new("kill").args(["-TERM", &g.pid().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while g.running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The keepalived.conf of a node.
#[derive(Debug, Clone)]
pub struct AgentConf {
    /// VRRP priority.
    pub priority: u8,
    /// VRRP version (2 or 3).
    pub version: u8,
    /// `advert_int` as written.
    pub advert_int: String,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// Name the DPDK port with `dpdk_interface` (else derived from `dpdk0.kni`).
    pub dpdk_interface: bool,
    /// The node's LIP (local_address_group).
    pub lip: String,
    /// Real servers 1..=n.
    pub real_servers: usize,
    /// `delay_loop` seconds.
    pub delay_loop: u32,
}

impl AgentConf {
    /// The file's text: one VRRP instance for the VIP on `dpdk0.kni`, one FullNAT virtual
    /// server with HTTP_GET checks (inhibit_on_failure) and the node's LIP.
    pub fn render(&self) -> String {
        let auth = if self.version == 2 {
            "    authentication {\n        auth_type PASS\n        auth_pass rvs\n    }\n"
        } else {
            ""
        };
        let mut rs = String::new();
        for i in 1..=self.real_servers {
            rs += &format!(
                "    real_server {} 8080 {{\n        weight 1\n        inhibit_on_failure\n        HTTP_GET {{\n            url {{\n                path /\n                status_code 200\n            }}\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }}\n    }}\n",
                rs4(i)
            );
        }
        format!(
            "global_defs {{\n    router_id rvs-e2e\n}}\n\n\
             vrrp_instance {INSTANCE} {{\n    state BACKUP\n    interface dpdk0.kni\n{}    virtual_router_id 51\n    priority {}\n    advert_int {}\n    version {}\n{}{auth}    virtual_ipaddress {{\n        {VIP4}\n    }}\n}}\n\n\
             local_address_group laddr_g1 {{\n    {} dpdk1\n}}\n\n\
             virtual_server {VIP4} 80 {{\n    delay_loop {}\n    lb_algo rr\n    lb_kind FNAT\n    protocol TCP\n    laddr_group_name laddr_g1\n{rs}}}\n",
            if self.dpdk_interface { "    dpdk_interface dpdk0\n" } else { "" },
            self.priority,
            self.advert_int,
            self.version,
            if self.nopreempt { "    nopreempt\n" } else { "" },
            self.lip,
            self.delay_loop,
        )
    }
}

/// The two-node topology; dropping it stops everything and deletes every namespace.
/// When dropped during a panic, it prints every log first.
pub struct Pair {
    /// Working directory (configs, logs, sockets); removed on drop.
    pub dir: PathBuf,
    /// Node a.
    pub a: Node,
    /// Node b.
    pub b: Node,
    http: Vec<Option<ChildGuard>>,
    http11: bool,
    /// Real server namespaces, rs1 first.
    pub rs: Vec<NetNs>,
    /// The bridges.
    pub sw: NetNs,
    /// The client.
    pub client: NetNs,
}

fn sysctl(ns: &NetNs, kv: &str) {
    let _ = ns.exec(&["sysctl", "-qw", kv]);
}

impl Pair {
    /// Builds everything, starts the HTTP servers and both rvsd (no agent yet).
    pub fn start(real_servers: usize) -> Result<Pair> {
        Pair::start_with(real_servers, false, |_| {})
    }

    /// [`Pair::start`], with HTTP/1.1 servers (keep-alive) when `http11`, and each
    /// node's rvsd configuration changed by `configure` before it starts.
    pub fn start_with(real_servers: usize, http11: bool, configure: impl Fn(&mut Node)) -> Result<Pair> {
        assert!((1..=9).contains(&real_servers));
        let id = testnet::unique("");
        let dir = std::env::temp_dir().join(format!("rvs-e2e-pair-{id}"));
        std::fs::create_dir_all(&dir)?;
        let client = NetNs::new("rvscl");
        let sw = NetNs::new("rvssw");
        let rs: Vec<NetNs> = (0..real_servers).map(|_| NetNs::new("rvsrs")).collect();
        let text = std::fs::read_to_string(repo_root().join("dpdk-conf/demo.toml")).context("read demo.toml")?;
        let base: toml::Table = toml::from_str(&text).context("parse demo.toml")?;
        let node = |name: &'static str, n0: u8, lip: &str, mgmt: &str| -> Result<Node> {
            let ns = NetNs::new(&format!("rvs{name}"));
            let (addr0, addr1) = (format!("198.18.0.{n0}"), format!("198.19.0.{n0}"));
            let mut config = base.clone();
            config["eal"]["file_prefix"] = toml::Value::String(format!("rvs{id}{name}"));
            config["control"]["socket"] =
                toml::Value::String(dir.join(format!("rvsd-{name}.sock")).display().to_string());
            config.remove("service");
            let addr = |dev: &str, a: String, sapool: bool| {
                let mut t = toml::Table::new();
                t.insert("dev".into(), dev.into());
                t.insert("addr".into(), a.into());
                if sapool {
                    t.insert("sapool".into(), true.into());
                }
                toml::Value::Table(t)
            };
            config.insert(
                "addr".into(),
                toml::Value::Array(vec![
                    addr("dpdk0", format!("{addr0}/24"), false),
                    addr("dpdk1", format!("{addr1}/24"), false),
                    addr("dpdk1", format!("{lip}/24"), true),
                ]),
            );
            Ok(Node {
                name,
                addr0,
                addr1,
                lip: lip.into(),
                mgmt: mgmt.into(),
                config,
                dir: dir.clone(),
                agent: None,
                rvsd: None,
                ns,
            })
        };
        let a = node("a", 1, "198.19.0.10", "198.19.0.101")?;
        let b = node("b", 3, "198.19.0.20", "198.19.0.103")?;

        sysctl(&sw, "net.ipv6.conf.all.disable_ipv6=1");
        sysctl(&sw, "net.ipv6.conf.default.disable_ipv6=1");
        for br in ["brc", "brs"] {
            sw.ip(&["link", "add", br, "type", "bridge"]);
        }
        let port = |dev: &str, br: &str| {
            sw.ip(&["link", "set", dev, "master", br]);
            sw.ip(&["link", "set", dev, "up"]);
        };
        veth(&client, "eth0", &sw, "cl");
        port("cl", "brc");
        for n in [&a, &b] {
            veth(&n.ns, "rvsdemo-lb0", &sw, &format!("{}0", n.name));
            veth(&n.ns, "rvsdemo-lb1", &sw, &format!("{}1", n.name));
            veth(&n.ns, "mgmt", &sw, &format!("{}m", n.name));
            port(&format!("{}0", n.name), "brc");
            port(&format!("{}1", n.name), "brs");
            port(&format!("{}m", n.name), "brs");
            for dev in ["rvsdemo-lb0", "rvsdemo-lb1"] {
                sysctl(&n.ns, &format!("net.ipv6.conf.{dev}.disable_ipv6=1"));
                n.ns.ip(&["link", "set", dev, "up"]);
            }
            // The af_packet NICs' frames are rvsd's, never the kernel's (see Topology).
            let nft = "table netdev rvs_nic { \
                chain lb0 { type filter hook ingress device \"rvsdemo-lb0\" priority 0; policy drop; }; \
                chain lb1 { type filter hook ingress device \"rvsdemo-lb1\" priority 0; policy drop; }; }";
            let out = n.ns.exec(&["nft", nft]);
            if !out.status.success() {
                bail!("nft ingress drop: {}", String::from_utf8_lossy(&out.stderr));
            }
            // rvsd hands ARP for addresses it does not own to the twins: the kernel must
            // answer only on the interface that has the address (the management veth).
            sysctl(&n.ns, "net.ipv4.conf.all.arp_ignore=1");
            sysctl(&n.ns, "net.ipv4.conf.all.arp_announce=2");
            n.ns.ip(&["link", "set", "mgmt", "up"]);
            n.ns.ip(&["addr", "add", &format!("{}/24", n.mgmt), "dev", "mgmt"]);
        }
        client.ip(&["link", "set", "eth0", "up"]);
        client.ip(&["addr", "add", &format!("{CLIENT4}/24"), "dev", "eth0"]);
        for (i, ns) in rs.iter().enumerate() {
            let p = format!("rs{}", i + 1);
            veth(ns, "eth0", &sw, &p);
            port(&p, "brs");
            ns.ip(&["link", "set", "eth0", "up"]);
            ns.ip(&["addr", "add", &format!("{}/24", rs4(i + 1)), "dev", "eth0"]);
        }
        for br in ["brc", "brs"] {
            sw.ip(&["link", "set", br, "up"]);
        }
        let mut p = Pair { dir, a, b, http: Vec::new(), http11, rs, sw, client };
        for i in 1..=real_servers {
            p.http.push(None);
            p.start_http(i)?;
        }
        configure(&mut p.a);
        configure(&mut p.b);
        p.a.start_rvsd()?;
        p.b.start_rvsd()?;
        Ok(p)
    }

    /// Starts (again) real server `i`'s HTTP server (python, port 8080, body `rs<i>`; its
    /// access log names the client, i.e. the LIP of the node that forwarded).
    pub fn start_http(&mut self, i: usize) -> Result<()> {
        let root = self.dir.join(format!("www{i}"));
        std::fs::create_dir_all(&root)?;
        std::fs::write(root.join("index.html"), format!("rs{i}\n"))?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.http_log(i))?;
        let child = Command::new("ip")
            .args(["netns", "exec", self.rs[i - 1].name(), "python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"])
            .args(["--protocol", if self.http11 { "HTTP/1.1" } else { "HTTP/1.0" }])
            .arg("--directory")
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start python3 http.server")?;
        self.http[i - 1] = Some(ChildGuard::new(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.rs[i - 1].exec(&["ss", "-ltnH", "sport", "= :8080"]);
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("http server in rs{i} did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops real server `i`'s HTTP server (its port then refuses connections).
    pub fn stop_http(&mut self, i: usize) {
        self.http[i - 1] = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let out = self.rs[i - 1].exec(&["ss", "-ltnH", "sport", "= :8080"]);
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Puts the same 100 MB of random bytes at `/big.bin` on every real server and
    /// returns their SHA-256 (hex).
    pub fn serve_big_file(&self) -> Result<String> {
        crate::big_file(&self.dir, (1..=self.rs.len()).map(|i| self.dir.join(format!("www{i}"))))
    }

    /// Real server `i`'s access log.
    pub fn http_log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("http{i}.log"))
    }

    /// Requests that reached the real servers from each node's LIP so far: (a, b).
    pub fn served_by(&self) -> (usize, usize) {
        let (mut a, mut b) = (0, 0);
        for i in 1..=self.rs.len() {
            let log = std::fs::read_to_string(self.http_log(i)).unwrap_or_default();
            for l in log.lines().filter(|l| l.contains("\"GET ")) {
                let src = l.split_whitespace().next().unwrap_or("");
                a += usize::from(src == self.a.lip);
                b += usize::from(src == self.b.lip);
            }
        }
        (a, b)
    }

    /// Fetches the VIP `n` times in one curl run (a new connection each); returns the
    /// bodies and whether every fetch succeeded.
    pub fn curl(&self, n: usize, timeout_s: u32) -> (String, bool) {
        let t = timeout_s.to_string();
        let urls: Vec<String> = (0..n).map(|_| format!("http://{VIP4}/")).collect();
        let mut args: Vec<&str> = vec!["curl", "-sS", "--max-time", &t];
        args.extend(urls.iter().map(String::as_str));
        let out = self.client.exec(&args);
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.success())
    }

    /// Counts `rs<i>` bodies: index i-1 holds real server i's count.
    pub fn tally(&self, bodies: &str) -> Vec<usize> {
        let mut v = vec![0; self.rs.len()];
        for i in bodies.lines().filter_map(|l| l.strip_prefix("rs")?.parse::<usize>().ok()) {
            if (1..=v.len()).contains(&i) {
                v[i - 1] += 1;
            }
        }
        v
    }

    /// Every log, for a failure report.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in [&self.a, &self.b] {
            s += &format!("==== rvsd {}\n{}\n==== agent {}\n{}\n", n.name, n.rvsd_log(), n.name, n.agent_log());
        }
        s
    }

    /// Where everything is written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Waits until `f` holds (polling every 10 ms); returns how long it took, or `None` after
/// `timeout`.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if f() {
            return Some(t.elapsed());
        }
        if t.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for n in [&mut self.a, &mut self.b] {
            n.agent = None;
        }
        for n in [&mut self.a, &mut self.b] {
            n.stop_rvsd();
        }
        self.http.clear();
        if std::env::var_os("RVS_KEEP_E2E_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
