//! End-to-end test topology: the demo's network built from namespaces, with rvsd on
//! af_packet virtual NICs in the middle and real Linux stacks on both sides.
//!
//! ```text
//!  client ns            lb ns (rvsd)                 sw ns (bridge)       rs1..rsN ns
//!  eth0 198.18.0.2 ── lb0 = dpdk0   dpdk1 = lb1 ── uplink ┬ br0 ─┬ rs1 ── eth0 198.19.0.11:8080
//!       2001:db8:18::2   VIP 198.18.0.100                        ├ rs2 ── eth0 198.19.0.12:8080
//!                        VIP 2001:db8:18::100  LIP 198.19.0.10   └ rs3 ── eth0 198.19.0.13:8080
//! ```
//!
//! Every namespace is named uniquely per topology and deleted on drop (with the veths and
//! processes inside), on success and on failure. rvsd runs with `dpdk-conf/demo.toml`,
//! edited only where a test says so (file prefix and control socket always differ).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod checks;
pub mod dns;
pub mod ecmp;
pub mod flood;
pub mod ipip;
pub mod pair;
pub mod pcap;
pub mod pcap_rvsd;
pub mod vlan;
use testnet::{ChildGuard, NetNs};

/// The client's IPv4 address.
pub const CLIENT4: &str = "198.18.0.2";
/// The client's IPv6 address.
pub const CLIENT6: &str = "2001:db8:18::2";
/// The IPv4 VIP.
pub const VIP4: &str = "198.18.0.100";
/// The IPv6 VIP.
pub const VIP6: &str = "2001:db8:18::100";
/// rvsd's client-side interface address.
pub const GW4: &str = "198.18.0.1";
/// The IPv4 local address (LIP).
pub const LIP4: &str = "198.19.0.10";
/// The IPv6 local address (LIP).
pub const LIP6: &str = "2001:db8:19::10";

/// Real server `i` (1-based): IPv4 address.
pub fn rs4(i: usize) -> String {
    format!("198.19.0.{}", 10 + i)
}

/// Real server `i` (1-based): IPv6 address.
pub fn rs6(i: usize) -> String {
    format!("2001:db8:19::{}", 10 + i)
}

static SERIAL: Mutex<()> = Mutex::new(());

/// The real servers' HTTP server: Python's, threaded, dual-stack, with a listen backlog
/// for a thousand concurrent connections (http.server's default is 5).
const RS_HTTP: &str = r#"
import functools, http.server, socket, sys
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    request_queue_size = 1024
    daemon_threads = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
Server(("::", int(sys.argv[1])), handler).serve_forever()
"#;

/// Topologies run one at a time: each rvsd busy-polls a core, and this machine has two.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A binary of the workspace (`rvsd`, `rvsadm`, ...), from the target directory this test
/// was built into. `scripts/test.sh` builds all binaries before testing.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> or target/<profile>/<bin>
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(p.exists(), "{} not built; run `cargo build --workspace` (scripts/test.sh does)", p.display());
    p
}

/// The Internet checksum (RFC 1071) as a Python function `csum(bytes)`, for the
/// raw-socket senders the tests run (see [`py_script`]).
pub const PY_CSUM: &str = r#"import struct

def csum(b):
    if len(b) % 2:
        b += b"\x00"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF
"#;

/// The Python script `body` with [`PY_CSUM`]'s `csum` defined before it.
pub fn py_script(body: &str) -> String {
    format!("{PY_CSUM}\n{body}")
}

/// What to build.
pub struct Spec {
    /// Number of real servers (1..=9).
    pub real_servers: usize,
    /// Start an HTTP server on port 8080 in each real server.
    pub http: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec { real_servers: 3, http: true }
    }
}

/// A running topology; dropping it stops everything and deletes every namespace.
pub struct Topology {
    /// Unique id of this topology.
    pub id: String,
    /// Working directory (configs, logs, served files); removed on drop.
    pub dir: PathBuf,
    /// The rvsd configuration as written to `config_path`.
    pub config: toml::Table,
    /// Where the configuration is written.
    pub config_path: PathBuf,
    /// Environment variables rvsd starts with (besides `RUST_LOG`).
    pub rvsd_env: Vec<(String, String)>,
    /// Arguments rvsd starts with besides `-c FILE`.
    pub rvsd_args: Vec<String>,
    // Processes before namespaces: they die first.
    rvsd: Option<ChildGuard>,
    http: Vec<ChildGuard>,
    /// Real server namespaces, rs1 first.
    pub rs: Vec<NetNs>,
    /// The switch (bridge) namespace.
    pub sw: NetNs,
    /// The client namespace.
    pub client: NetNs,
    /// The namespace rvsd runs in.
    pub lb: NetNs,
}

fn offloads_off(ns: &NetNs, dev: &str) {
    let _ = ns.exec(&[
        "ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off", "lro", "off",
    ]);
}

/// A veth pair with its ends `a` in `a_ns` and `b` in `b_ns`, offloads off.
pub(crate) fn veth(a_ns: &NetNs, a: &str, b_ns: &NetNs, b: &str) {
    testnet::sh(&[
        "ip",
        "link",
        "add",
        a,
        "netns",
        a_ns.name(),
        "type",
        "veth",
        "peer",
        "name",
        b,
        "netns",
        b_ns.name(),
    ]);
    offloads_off(a_ns, a);
    offloads_off(b_ns, b);
}

fn sysctl(ns: &NetNs, kv: &str) {
    let _ = ns.exec(&["sysctl", "-qw", kv]);
}

impl Topology {
    /// Builds the namespaces, links and addresses, and starts the HTTP servers. rvsd is
    /// not started yet (see [`Topology::start_rvsd`]), so a test can edit the config.
    pub fn build(spec: Spec) -> Result<Topology> {
        assert!((1..=9).contains(&spec.real_servers));
        let id = testnet::unique("");
        let dir = std::env::temp_dir().join(format!("rvs-e2e-{id}"));
        std::fs::create_dir_all(&dir)?;
        let lb = NetNs::new("rvslb");
        let client = NetNs::new("rvscl");
        let sw = NetNs::new("rvssw");
        let rs: Vec<NetNs> = (0..spec.real_servers).map(|_| NetNs::new("rvsrs")).collect();

        // The dataplane's links: no kernel addresses, no IPv6 chatter from the kernel.
        veth(&lb, "rvsdemo-lb0", &client, "eth0");
        veth(&lb, "rvsdemo-lb1", &sw, "uplink");
        for dev in ["rvsdemo-lb0", "rvsdemo-lb1"] {
            sysctl(&lb, &format!("net.ipv6.conf.{dev}.disable_ipv6=1"));
            lb.ip(&["link", "set", dev, "up"]);
        }
        // A DPDK NIC's frames never reach the kernel. With af_packet they would (the
        // kernel of this namespace would answer for addresses on the twins): drop them
        // at netdev ingress, which runs after AF_PACKET sockets have their copy.
        let nft = "table netdev rvs_nic { \
            chain lb0 { type filter hook ingress device \"rvsdemo-lb0\" priority 0; policy drop; }; \
            chain lb1 { type filter hook ingress device \"rvsdemo-lb1\" priority 0; policy drop; }; }";
        let out = lb.exec(&["nft", nft]);
        if !out.status.success() {
            bail!("nft ingress drop: {}", String::from_utf8_lossy(&out.stderr));
        }
        // Client.
        client.ip(&["link", "set", "eth0", "up"]);
        client.ip(&["addr", "add", &format!("{CLIENT4}/24"), "dev", "eth0"]);
        client.ip(&["addr", "add", &format!("{CLIENT6}/64"), "dev", "eth0", "nodad"]);
        client.ip(&["route", "add", "default", "via", GW4]);
        client.ip(&["-6", "route", "add", "default", "via", "2001:db8:18::1"]);
        // Switch.
        sysctl(&sw, "net.ipv6.conf.all.disable_ipv6=1");
        sysctl(&sw, "net.ipv6.conf.default.disable_ipv6=1");
        sw.ip(&["link", "add", "br0", "type", "bridge"]);
        sw.ip(&["link", "set", "uplink", "master", "br0"]);
        sw.ip(&["link", "set", "uplink", "up"]);
        // Real servers.
        for (i, ns) in rs.iter().enumerate() {
            let port = format!("rs{}", i + 1);
            veth(ns, "eth0", &sw, &port);
            sw.ip(&["link", "set", &port, "master", "br0"]);
            sw.ip(&["link", "set", &port, "up"]);
            ns.ip(&["link", "set", "eth0", "up"]);
            ns.ip(&["addr", "add", &format!("{}/24", rs4(i + 1)), "dev", "eth0"]);
            ns.ip(&["addr", "add", &format!("{}/64", rs6(i + 1)), "dev", "eth0", "nodad"]);
        }
        sw.ip(&["link", "set", "br0", "up"]);

        let text = std::fs::read_to_string(repo_root().join("dpdk-conf/demo.toml")).context("read demo.toml")?;
        let mut config: toml::Table = toml::from_str(&text).context("parse demo.toml")?;
        config["eal"]["file_prefix"] = toml::Value::String(format!("rvs{id}"));
        config["control"]["socket"] = toml::Value::String(dir.join("rvsd.sock").display().to_string());
        // Only the real servers that exist (the demo lists three).
        if let Some(services) = config.get_mut("service").and_then(|s| s.as_array_mut()) {
            for svc in services {
                if let Some(rs) = svc.get_mut("real_server").and_then(|r| r.as_array_mut()) {
                    rs.truncate(spec.real_servers);
                }
            }
        }
        let config_path = dir.join("rvsd.toml");

        let mut t = Topology {
            id,
            dir,
            config,
            config_path,
            rvsd_env: Vec::new(),
            rvsd_args: Vec::new(),
            rvsd: None,
            http: Vec::new(),
            rs,
            sw,
            client,
            lb,
        };
        if spec.http {
            for i in 1..=spec.real_servers {
                t.start_http(i)?;
            }
        }
        Ok(t)
    }

    /// Starts a Python HTTP server on port 8080 (IPv4 and IPv6) in real server `i`,
    /// serving a directory whose index says `rs<i>`. Its access log (client addresses)
    /// goes to [`Topology::http_log`].
    pub fn start_http(&mut self, i: usize) -> Result<()> {
        self.start_http_on(i, 8080)
    }

    /// [`Topology::start_http`] on another port (its log: `http<i>-<port>.log`).
    pub fn start_http_on(&mut self, i: usize, port: u16) -> Result<()> {
        let root = self.served_dir(i);
        std::fs::create_dir_all(&root)?;
        std::fs::write(root.join("index.html"), format!("rs{i}\n"))?;
        let log = match port {
            8080 => self.http_log(i),
            _ => self.dir.join(format!("http{i}-{port}.log")),
        };
        let server = http_server(&self.dir, &self.rs[i - 1], port, &root, &log).with_context(|| format!("rs{i}"))?;
        self.http.push(server);
        Ok(())
    }

    /// An HTTP server in the client namespace (the "outside" of SNAT), serving `root`
    /// on `port` (IPv4 and IPv6); its access log (peer addresses) goes to `log`.
    pub fn start_http_in_client(&mut self, port: u16, root: &Path, log: &Path) -> Result<()> {
        let server = http_server(&self.dir, &self.client, port, root, log).context("client")?;
        self.http.push(server);
        Ok(())
    }

    /// Gives the client a second leg on the real servers' switch (`eth1`, `addr4`/24 and
    /// `addr6`/64), the way a router sits on the servers' LAN in a DR or TUN layout:
    /// replies that do not pass rvs come back this way. Reverse-path filtering is off in
    /// the client (the replies come from the VIP, which it routes through rvs).
    pub fn client_on_server_lan(&self, addr4: &str, addr6: &str) {
        veth(&self.client, "eth1", &self.sw, "cl");
        self.sw.ip(&["link", "set", "cl", "master", "br0"]);
        self.sw.ip(&["link", "set", "cl", "up"]);
        self.client.ip(&["link", "set", "eth1", "up"]);
        self.client.ip(&["addr", "add", &format!("{addr4}/24"), "dev", "eth1"]);
        self.client.ip(&["addr", "add", &format!("{addr6}/64"), "dev", "eth1", "nodad"]);
        for k in ["all", "default", "eth0", "eth1"] {
            sysctl(&self.client, &format!("net.ipv4.conf.{k}.rp_filter=0"));
        }
    }

    /// Puts the client side on VLAN `vid`: the client's `eth0` becomes an access port of
    /// a switch ([`vlan::VlanShim`] in a namespace of its own) whose trunk is the wire
    /// to rvsd's `dpdk0`, so every frame between the client and rvsd is tagged. The
    /// client keeps its addresses and routes. Returns the shim and its namespace
    /// (dropping them ends the VLAN).
    pub fn client_on_vlan(&self, vid: u16) -> Result<(vlan::VlanShim, NetNs)> {
        let shim_ns = NetNs::new("rvsvl");
        sysctl(&shim_ns, "net.ipv6.conf.all.disable_ipv6=1");
        sysctl(&shim_ns, "net.ipv6.conf.default.disable_ipv6=1");
        // The client's end of the wire to rvsd moves into the shim's namespace...
        self.client.ip(&["link", "set", "eth0", "netns", shim_ns.name()]);
        shim_ns.ip(&["link", "set", "eth0", "name", "trunk"]);
        // ... and the client gets a new eth0 on the shim's access side.
        veth(&self.client, "eth0", &shim_ns, "access");
        self.client.ip(&["link", "set", "eth0", "up"]);
        self.client.ip(&["addr", "add", &format!("{CLIENT4}/24"), "dev", "eth0"]);
        self.client.ip(&["addr", "add", &format!("{CLIENT6}/64"), "dev", "eth0", "nodad"]);
        self.client.ip(&["route", "add", "default", "via", GW4]);
        self.client.ip(&["-6", "route", "add", "default", "via", "2001:db8:18::1"]);
        let shim = vlan::VlanShim::start(&shim_ns, "trunk", vid, "access")?;
        Ok((shim, shim_ns))
    }

    /// Puts the same 100 MB of random bytes at `/big.bin` on every real server and
    /// returns their SHA-256 (hex).
    pub fn serve_big_file(&self) -> Result<String> {
        big_file(&self.dir, (1..=self.rs.len()).map(|i| self.served_dir(i)))
    }

    /// Downloads `url` in the client namespace and returns the SHA-256 of what arrived.
    pub fn download_sha(&self, url: &str, timeout_s: u32) -> Result<String> {
        let out = self.client_exec(&["sh", "-c", &format!("curl -sS -g --max-time {timeout_s} '{url}' | sha256sum")]);
        if !out.status.success() {
            bail!("download {url}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string())
    }

    /// The directory real server `i` serves.
    pub fn served_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("www{i}"))
    }

    /// The access log of real server `i`'s HTTP server.
    pub fn http_log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("http{i}.log"))
    }

    /// The control socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("rvsd.sock")
    }

    /// A control-protocol client connected to this topology's rvsd.
    pub fn ctl(&self) -> ctl::Client {
        ctl::Client::connect(self.socket()).expect("connect to rvsd's control socket")
    }

    /// Runs `rvsadm` (or `rvsip`) against this rvsd; returns (stdout, stderr, success).
    pub fn cli(&self, tool: &str, args: &[&str]) -> (String, String, bool) {
        self.cli_stdin(tool, args, None)
    }

    /// Like [`Topology::cli`], feeding `stdin`.
    pub fn cli_stdin(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> (String, String, bool) {
        use std::io::Write;
        let mut child = Command::new(workspace_bin(tool))
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.success(),
        )
    }

    /// Runs a CLI command that must succeed; returns its output.
    pub fn cli_ok(&self, tool: &str, args: &[&str]) -> String {
        let (out, err, ok) = self.cli(tool, args);
        assert!(ok, "{tool} {}: {err}", args.join(" "));
        out
    }

    /// rvsd's log file.
    pub fn rvsd_log_path(&self) -> PathBuf {
        self.dir.join("rvsd.log")
    }

    /// rvsd's log so far.
    pub fn rvsd_log(&self) -> String {
        std::fs::read_to_string(self.rvsd_log_path()).unwrap_or_default()
    }

    /// Writes the config and starts rvsd in the lb namespace; returns when it forwards
    /// (the VIP answers ping from the client).
    pub fn start_rvsd(&mut self) -> Result<()> {
        self.start_rvsd_until(true)
    }

    /// Starts rvsd and returns once its control socket answers (for a configuration
    /// without addresses, to be built at run time).
    pub fn start_rvsd_bare(&mut self) -> Result<()> {
        self.start_rvsd_until(false)
    }

    fn start_rvsd_until(&mut self, vip_answers: bool) -> Result<()> {
        std::fs::write(&self.config_path, toml::to_string(&self.config)?)?;
        let log = std::fs::File::create(self.rvsd_log_path())?;
        let child = Command::new("ip")
            .args(["netns", "exec", self.lb.name()])
            .arg(workspace_bin("rvsd"))
            .arg("-c")
            .arg(&self.config_path)
            .args(&self.rvsd_args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .envs(self.rvsd_env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start rvsd")?;
        self.rvsd = Some(ChildGuard::new(child));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if !self.rvsd.as_mut().is_some_and(ChildGuard::running) {
                bail!("rvsd exited during start-up:\n{}", self.rvsd_log());
            }
            if self.rvsd_log().contains("rvsd: forwarding")
                && (if vip_answers { self.ping(VIP4, 1) } else { self.socket().exists() })
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("rvsd did not start forwarding within 30 s:\n{}", self.rvsd_log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops rvsd with SIGTERM (a clean shutdown) and returns its whole log.
    pub fn stop_rvsd(&mut self) -> Result<String> {
        if let Some(mut g) = self.rvsd.take() {
            let _ = Command::new("kill").args(["-TERM", &g.pid().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while g.running() {
                if Instant::now() > deadline {
                    bail!("rvsd did not stop within 15 s of SIGTERM:\n{}", self.rvsd_log());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(self.rvsd_log())
    }

    /// The CPU time rvsd has used so far (user and system, all threads), in seconds.
    pub fn rvsd_cpu_secs(&self) -> Option<f64> {
        let pid = self.rvsd.as_ref()?.pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        let hz = testnet::sh(&["getconf", "CLK_TCK"]).trim().parse::<f64>().ok()?;
        Some(ticks as f64 / hz)
    }

    /// rvsd's resident memory in KiB (`VmRSS`), while it runs.
    pub fn rvsd_rss_kib(&self) -> Option<u64> {
        let pid = self.rvsd.as_ref()?.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Sends a signal to rvsd (e.g. `USR1` to log its counters and connections).
    pub fn signal_rvsd(&self, sig: &str) {
        if let Some(g) = &self.rvsd {
            let _ = Command::new("kill").args([&format!("-{sig}"), &g.pid().to_string()]).status();
        }
    }

    /// One ping from the client; true if answered.
    pub fn ping(&self, addr: &str, count: u32) -> bool {
        let six = addr.parse::<IpAddr>().map(|a| a.is_ipv6()).unwrap_or(false);
        let c = count.to_string();
        let mut args = vec!["ping", "-c", &c, "-W", "1", "-i", "0.2"];
        if six {
            args.insert(1, "-6");
        }
        args.push(addr);
        self.client.exec(&args).status.success()
    }

    /// Runs a command in the client namespace.
    pub fn client_exec(&self, args: &[&str]) -> Output {
        self.client.exec(args)
    }

    /// Fetches every URL in one curl run (one connection each: the servers speak
    /// HTTP/1.0) and returns (bodies joined, whether every transfer succeeded).
    pub fn curl_many(&self, urls: &[String], timeout_s: u32) -> (String, bool) {
        let t = timeout_s.to_string();
        let mut args: Vec<&str> = vec!["curl", "-sS", "--max-time", &t, "-g"];
        args.extend(urls.iter().map(String::as_str));
        let out = self.client.exec(&args);
        // curl's exit status is the last transfer's: a failure earlier in the list shows
        // only on stderr (-sS prints one line per failed transfer).
        let errors = String::from_utf8_lossy(&out.stderr);
        if !errors.trim().is_empty() {
            eprintln!("curl_many: {} of {} transfers reported errors:\n{errors}", errors.lines().count(), urls.len());
        }
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.success() && errors.trim().is_empty())
    }

    /// Counts `rs<i>` bodies in curl output: index i-1 holds real server i's count.
    pub fn tally(&self, bodies: &str) -> Vec<usize> {
        let mut v = vec![0; self.rs.len()];
        for line in bodies.lines() {
            if let Some(i) = line.strip_prefix("rs").and_then(|n| n.parse::<usize>().ok()) {
                if (1..=v.len()).contains(&i) {
                    v[i - 1] += 1;
                }
            }
        }
        v
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Some(g) = &self.rvsd {
            // Ask politely first so DPDK releases its ports, then the guard kills.
            let _ = Command::new("kill").args(["-TERM", &g.pid().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.rvsd.as_mut().is_some_and(ChildGuard::running) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.rvsd = None;
        self.http.clear();
        if std::env::var_os("RVS_KEEP_E2E_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Topology {
    /// Asks rvsd for its counters (SIGUSR1 makes it log one `rvsd: stats {json}` line)
    /// and returns the newest such line's JSON.
    pub fn rvsd_stats(&self) -> Result<serde_json::Value> {
        let pid = self.rvsd.as_ref().context("rvsd is not running")?.pid();
        stats_via_usr1(pid, || self.rvsd_log())
    }

    /// rvsd's statistics once the packets workers handed to each other (`redirect_out`)
    /// have all been received (`redirect_in`), or after 5 s (the last may still be on
    /// a ring when the counters are read): the stats, and the two counts.
    pub fn settled_redirects(&self) -> (serde_json::Value, u64, u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stats = self.rvsd_stats().expect("stats");
            let n = |k: &str| stats["net"][k].as_u64().unwrap_or(0);
            let (out_, in_) = (n("redirect_out"), n("redirect_in"));
            if out_ == in_ || Instant::now() > deadline {
                return (stats, out_, in_);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts tcpdump in real server `i` writing `filter`'s packets to a pcap file;
    /// stop it with [`Capture::finish`].
    pub fn capture_on_rs(&self, i: usize, filter: &str) -> Result<Capture> {
        self.capture_in(&self.rs[i - 1], "eth0", filter)
    }
}

impl Topology {
    /// Starts tcpdump in namespace `ns` on `dev`, writing `filter`'s packets to a pcap.
    pub fn capture_in(&self, ns: &NetNs, dev: &str, filter: &str) -> Result<Capture> {
        use std::io::BufRead;
        let file = self.dir.join(format!("{dev}-{}.pcap", testnet::unique("c")));
        let mut child = Command::new("ip")
            // --immediate-mode: without it libpcap hands packets over per filled or
            // timed-out block, and a capture stopped soon after a short burst loses it.
            .args(["netns", "exec", ns.name(), "tcpdump", "--immediate-mode", "-i", dev, "-U", "-n", "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start tcpdump")?;
        // tcpdump says "listening on DEV" once its socket and filter are in place.
        let stderr = child.stderr.take().context("tcpdump stderr")?;
        let guard = ChildGuard::new(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| anyhow::anyhow!("tcpdump on {dev} did not start"))?;
        Ok(Capture { guard: Some(guard), file })
    }
}

/// A running tcpdump.
pub struct Capture {
    guard: Option<ChildGuard>,
    file: PathBuf,
}

impl Capture {
    /// Stops the capture and returns the captured frames.
    pub fn finish(mut self) -> Result<Vec<Vec<u8>>> {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(g) = &self.guard {
            let _ = Command::new("kill").args(["-INT", &g.pid().to_string()]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
        self.guard = None;
        pcap::read_frames(&self.file)
    }
}

/// Starts the HTTP server script in `ns` (its files in `dir`), serving `root` on `port`
/// with its access log in `log`, and waits until it listens.
fn http_server(dir: &Path, ns: &NetNs, port: u16, root: &Path, log: &Path) -> Result<ChildGuard> {
    let log = std::fs::File::create(log)?;
    let script = dir.join("rs_http.py");
    std::fs::write(&script, RS_HTTP)?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns.name(), "python3"])
        .arg(&script)
        .arg(port.to_string())
        .arg(root)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start an HTTP server")?;
    let server = ChildGuard::new(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ns.exec(&["ss", "-ltnH", "sport", &format!("= :{port}")]);
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return Ok(server);
        }
        if Instant::now() > deadline {
            bail!("the HTTP server on port {port} did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts nginx in `ns` with `dir/nginx.conf` (prefix `dir`, start-up errors in
/// `dir/error.log`); the configuration should say `daemon off; master_process off;` so
/// that the guard's kill stops all of it.
pub fn spawn_nginx(ns: &NetNs, dir: &Path) -> Result<ChildGuard> {
    let child = Command::new("ip")
        .args(["netns", "exec", ns.name(), "nginx", "-e"])
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start nginx (scripts/setup.sh installs it)")?;
    Ok(ChildGuard::new(child))
}

/// rvsd's counters: SIGUSR1 to process `pid` makes it log one `rvsd: stats {json}` line
/// (in what `log` reads); the newest such line's JSON.
pub fn stats_via_usr1(pid: u32, log: impl Fn() -> String) -> Result<serde_json::Value> {
    const MARK: &str = "rvsd: stats ";
    let before = log().matches(MARK).count();
    let _ = Command::new("kill").args(["-USR1", &pid.to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = log();
        if text.matches(MARK).count() > before {
            let line = text.lines().rev().find(|l| l.contains(MARK)).expect("counted above");
            let json = &line[line.find(MARK).expect("present") + MARK.len()..];
            return serde_json::from_str(json.trim()).with_context(|| format!("stats line {json}"));
        }
        if Instant::now() > deadline {
            bail!("rvsd logged no stats within 5 s of SIGUSR1");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes 100 MB of random bytes to `dir/big.bin`, copies it to `big.bin` in each of the
/// `served` directories and returns its SHA-256 (hex).
pub fn big_file(dir: &Path, served: impl Iterator<Item = PathBuf>) -> Result<String> {
    let data = dir.join("big.bin");
    testnet::sh(&["sh", "-c", &format!("head -c 100M /dev/urandom > {}", data.display())]);
    for d in served {
        std::fs::copy(&data, d.join("big.bin")).context("copy big.bin")?;
    }
    let sum = testnet::sh(&["sha256sum", &data.display().to_string()]);
    Ok(sum.split_whitespace().next().context("sha256sum output")?.to_string())
}
