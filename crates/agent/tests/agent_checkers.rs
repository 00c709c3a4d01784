//! Each real-server checker of rvs-agent against a real server, end to end: the agent
//! library runs inside a private network namespace (entered by the test thread only)
//! against the in-memory dataplane; the server stops (or the file says so) and the real
//! server gets weight 0 (`inhibit_on_failure`), then comes back and gets its weight back.
//! * SSL_GET: `openssl s_server -WWW` with a throwaway self-signed certificate that
//!   also demands a client certificate (the global `SSL` block's), body digest checked;
//! * UDP_CHECK: a UDP echo; stopped, the port answers ICMP port unreachable;
//! * PING_CHECK: IPv4 and IPv6 addresses on a veth inside the namespace, removed and re-added;
//! * SMTP_CHECK: Python's `smtpd` (Debian 12's python3.11);
//! * DNS_CHECK: dnsmasq (scripts/setup.sh installs dnsmasq-base);
//! * FILE_CHECK: track files setting the server down and changing its weight;
//! * BFD_CHECK: keepalived's BFD on the real server, killed and started again;
//! * MISC_CHECK with misc_dynamic: exit codes setting the weight;
//! * HTTP_GET's `http_protocol`: a Python HTTP/1.1 server logs the request lines and
//!   headers keepalived's three forms send; Content-Length and chunked bodies digested.
//!
//! Namespaces and temporary directories are named uniquely per test and removed when the
//! test ends, failed or not (their guards drop).

mod common;
use common::in_netns;
use rvs_agent::dataplane::{FakeDataplane, Proto, ServiceKey};
use rvs_agent::keepalived::{parse_str, Options};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testnet::{ChildGuard, NetNs};
use tokio::sync::watch;

fn root() {
    // CI runs as root; a skipped test would hide a regression, so it fails instead.
    assert!(nix::unistd::geteuid().is_root(), "this test needs root (network namespaces)");
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(testnet::unique(prefix));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The agent, running on the current runtime.
struct Agent {
    dp: Arc<FakeDataplane>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Its running parts, once started.
    running: Arc<std::sync::Mutex<Option<rvs_agent::agent::Running>>>,
}

impl Agent {
    fn start(conf: &str) -> Agent {
        let l = parse_str(conf, "checkers.conf", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let dp = Arc::new(FakeDataplane::new());
        let (stop, rx) = watch::channel(false);
        let d = dp.clone();
        let running = Arc::new(std::sync::Mutex::new(None));
        let r = running.clone();
        let task = tokio::spawn(async move {
            rvs_agent::agent::run(l.config, d, rx, move |x| *r.lock().unwrap() = Some(x)).await.unwrap();
        });
        Agent { dp, stop, task, running }
    }

    /// Its BFD sessions now.
    fn bfd(&self) -> Vec<rvs_agent::bfd::BfdStatus> {
        self.running.lock().unwrap().as_ref().map(|r| r.bfd_sessions()).unwrap_or_default()
    }

    /// The weight of the real server `i` of the service `proto vip:vport`.
    fn weight(&self, proto: Proto, vip: &str, vport: u16, i: usize) -> Option<u32> {
        let key = ServiceKey::new(proto, vip.parse().unwrap(), vport);
        self.dp.service(&key).and_then(|s| s.real_servers.get(i).map(|r| r.weight))
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("{what} after {:?}", t.elapsed());
}

/// A virtual server with one real server (weight 7, inhibit_on_failure) checked by
/// `checker`, checked every 0.2 s.
fn conf(proto: &str, rs: &str, checker: &str) -> String {
    // A VIP of the real server's family (rvsd refuses an IPv6 server behind an IPv4 VIP).
    let vip = if rs.contains(':') { "2001:db8::1" } else { "192.0.2.1" };
    format!(
        "virtual_server {vip} 80 {{\n lb_kind FNAT\n protocol {proto}\n delay_loop 0.2\n\
         real_server {rs} {{\n  weight 7\n  inhibit_on_failure\n{checker}\n }}\n}}\n"
    )
}

/// Timing shared by the checkers: a failure shows within delay_loop x (retry + 1) plus
/// the timeouts.
const TIMING: &str = "connect_timeout 0.3\n retry 1\n delay_before_retry 0.1\n";
const WITHIN: Duration = Duration::from_secs(4);

/// Starts the agent on `conf`, sees the server at weight 7, calls `down` and expects weight
/// 0, calls `up` and expects 7 again.
async fn down_and_back<D, U>(
    conf: &str,
    proto: Proto,
    down: impl AsyncFnOnce() -> D,
    up: impl AsyncFnOnce(D) -> U,
) -> U {
    let a = Agent::start(conf);
    // The VIP `conf` wrote (`virtual_server VIP 80 {`).
    let vip = conf.split("virtual_server ").nth(1).and_then(|r| r.split_whitespace().next()).expect("its VIP");
    let w = || a.weight(proto, vip, 80, 0);
    wait_for("the service to load", Duration::from_secs(2), || w() == Some(7)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w(), Some(7), "a healthy server keeps its weight");
    let d = down().await;
    wait_for("weight 0", WITHIN, || w() == Some(0)).await;
    let u = up(d).await;
    wait_for("weight back", WITHIN, || w() == Some(7)).await;
    a.stop().await;
    u
}

/// Starts `args` inside the namespace `ns` (from any thread); killed when dropped.
fn spawn_in(ns: &str, args: &[&str]) -> ChildGuard {
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    ChildGuard::new(child)
}

/// Waits until something listens on TCP `port` of 127.0.0.1 (a server just spawned).
async fn tcp_ready(port: u16) {
    let t = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "nothing listens on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn ssl_get_against_openssl_s_server() {
    root();
    let ns = NetNs::new("rvcssl");
    let dir = TempDir::new("rvcssl");
    let (key, cert) = (dir.file("key.pem"), dir.file("cert.pem"));
    testnet::sh(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-days",
        "1",
        "-subj",
        "/CN=rvs-checker-test",
    ]);
    std::fs::write(dir.path().join("health"), b"alive\n").unwrap();
    // The server demands a client certificate signed by `cert` (the agent's is `cert`
    // itself, from the global SSL block) and serves files from `dir`.
    let server = format!(
        "cd {} && exec openssl s_server -quiet -accept 127.0.0.1:8443 -cert {cert} -key {key} -Verify 1 -CAfile {cert} -WWW",
        dir.path().display()
    );
    // md5("alive\n"): the body -WWW serves.
    let checker = format!(
        "  SSL_GET {{\n   url {{\n    path /health\n    digest 4e5dc3caa06fa07c79bc3ba5e62ff86b\n   }}\n {TIMING} }}"
    );
    let conf = format!("SSL {{\n certificate {cert}\n key {key}\n}}\n{}", conf("TCP", "127.0.0.1 8443", &checker));
    let ns_name = ns.name().to_string();
    let spawn = move || spawn_in(&ns_name, &["sh", "-c", &server]);
    in_netns(&ns, move || async move {
        let s = spawn();
        tcp_ready(8443).await;
        down_and_back(&conf, Proto::Tcp, async move || drop(s), async |()| spawn()).await;
    });
}

/// A UDP echo on 127.0.0.1:`port`, on the current runtime.
async fn udp_echo(port: u16) -> tokio::task::JoinHandle<()> {
    let s = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        let mut b = [0u8; 1500];
        loop {
            let (n, from) = s.recv_from(&mut b).await.unwrap();
            let _ = s.send_to(&b[..n], from).await;
        }
    })
}

#[test]
fn udp_check_against_an_echo_server() {
    root();
    let ns = NetNs::new("rvcudp");
    in_netns(&ns, || async {
        let checker = format!("  UDP_CHECK {{\n   payload 72 76 73\n   require_reply 72 7x 73\n {TIMING} }}");
        let conf = conf("UDP", "127.0.0.1 9053", &checker);
        let echo = udp_echo(9053).await;
        let echo = down_and_back(&conf, Proto::Udp, async move || echo.abort(), async |()| udp_echo(9053).await).await;
        echo.abort();
    });
}

#[test]
fn ping_check_v4_and_v6_addresses_that_come_and_go() {
    root();
    let ns = NetNs::new("rvcping");
    // A veth pair inside the namespace (a dummy interface needs a module containers may
    // lack): the server's addresses come and go on one end.
    let dev = testnet::unique("rvp");
    let peer = format!("{dev}b");
    ns.ip(&["link", "add", &dev, "type", "veth", "peer", "name", &peer]);
    ns.ip(&["link", "set", &dev, "up"]);
    ns.ip(&["link", "set", &peer, "up"]);
    ns.ip(&["addr", "add", "10.99.0.1/24", "dev", &dev]);
    ns.ip(&["addr", "add", "fd00:99::1/64", "dev", &dev, "nodad"]);
    // Unprivileged ICMP datagram sockets in this namespace (the unit tests use raw ones).
    let ping_group = ns.exec(&["sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647"]);
    assert!(ping_group.status.success(), "{ping_group:?}");
    let ns_name = ns.name().to_string();
    let addr = move |op: &str, a: &str| {
        testnet::sh(&["ip", "-n", &ns_name, "addr", op, a, "dev", &dev, "nodad"]);
    };
    addr("add", "10.99.0.2/32");
    addr("add", "fd00:99::2/128");
    in_netns(&ns, move || async move {
        let checker = format!("  PING_CHECK {{\n {TIMING} }}");
        for (rs, host) in [("10.99.0.2 80", "10.99.0.2/32"), ("fd00:99::2 80", "fd00:99::2/128")] {
            // Gone, the address is on the veth's subnet: requests go unanswered there.
            down_and_back(
                &conf("TCP", rs, &checker),
                Proto::Tcp,
                async || addr("del", host),
                async |()| addr("add", host),
            )
            .await;
        }
    });
}

#[test]
fn smtp_check_against_python_smtpd() {
    root();
    let ns = NetNs::new("rvcsmtp");
    let ns_name = ns.name().to_string();
    let spawn = move || {
        spawn_in(&ns_name, &["python3", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", "127.0.0.1:2525"])
    };
    in_netns(&ns, move || async move {
        let checker = format!("  SMTP_CHECK {{\n   helo_name lb1.rvs.test\n {TIMING} }}");
        let conf = conf("TCP", "127.0.0.1 2525", &checker);
        let s = spawn();
        tcp_ready(2525).await;
        down_and_back(&conf, Proto::Tcp, async move || drop(s), async |()| spawn()).await;
    });
}

#[test]
fn dns_check_against_dnsmasq() {
    root();
    let ns = NetNs::new("rvcdns");
    let ns_name = ns.name().to_string();
    let spawn = move || {
        let args = testnet::dnsmasq_args(&["127.0.0.1".to_string()], 5353, "/rvs.test/192.0.2.53");
        spawn_in(&ns_name, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    in_netns(&ns, move || async move {
        let s = spawn();
        let target = "127.0.0.1:5353".parse().unwrap();
        let t = Duration::from_millis(500);
        let probe = |name: &'static str| rvs_agent::check::dns::check(target, None, name, 1, t);
        let start = Instant::now();
        while probe("www.rvs.test").await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "dnsmasq does not answer");
        }
        // A name dnsmasq has no answer for and no upstream to ask: an error rcode.
        let r = probe("www.example.com").await;
        assert!(matches!(r, Err(rvs_agent::check::CheckError::Unexpected(_))), "{r:?}");
        let checker = format!("  DNS_CHECK {{\n   type A\n   name www.rvs.test\n {TIMING} }}");
        let conf = conf("UDP", "127.0.0.1 5353", &checker);
        down_and_back(&conf, Proto::Udp, async move || drop(s), async |()| spawn()).await;
    });
}

#[test]
fn file_check_sets_down_and_changes_the_weight() {
    root();
    let ns = NetNs::new("rvcfile");
    let dir = TempDir::new("rvcfile");
    let (down, adjust) = (dir.file("down"), dir.file("adjust"));
    std::fs::write(&down, "0\n").unwrap();
    let conf = format!(
        "track_file down {{\n file {down}\n weight 0\n}}\ntrack_file adjust {{\n file {adjust}\n}}\n{}",
        conf(
            "TCP",
            "127.0.0.1 80",
            "  FILE_CHECK {\n   track_file down\n  }\n  FILE_CHECK {\n   track_file adjust\n   weight 2\n  }"
        )
    );
    in_netns(&ns, move || async move {
        let a = Agent::start(&conf);
        let w = || a.weight(Proto::Tcp, "192.0.2.1", 80, 0);
        wait_for("the service to load", Duration::from_secs(2), || w() == Some(7)).await;
        // adjust x 2 is added to the weight 7; down's non-zero value sets the server down.
        std::fs::write(&adjust, "-2").unwrap();
        wait_for("weight 3", WITHIN, || w() == Some(3)).await;
        std::fs::write(&down, "1\n").unwrap();
        wait_for("weight 0", WITHIN, || w() == Some(0)).await;
        std::fs::write(&down, "0\n").unwrap();
        wait_for("weight 3 again", WITHIN, || w() == Some(3)).await;
        std::fs::remove_file(&adjust).unwrap();
        wait_for("weight 7 (a missing file reads 0)", WITHIN, || w() == Some(7)).await;
        a.stop().await;
    });
    drop(dir);
}

/// BFD_CHECK against a real keepalived's BFD (the real server runs keepalived with a
/// `bfd_instance` to the balancer): the server has its weight while the session is Up,
/// goes to weight 0 when keepalived is killed (the session expires after 3 x 50 ms;
/// delay_loop 0.2 s plays no part: the change starts a round at once, BFD first), and
/// gets its weight back when keepalived runs again. The agent (library) and keepalived are in two
/// namespaces joined by a veth.
#[test]
fn bfd_check_follows_the_real_server_s_keepalived() {
    root();
    let (lb, srv) = (NetNs::new("rvcbfl"), NetNs::new("rvcbfs"));
    let veth = testnet::Veth::new("rvcb");
    testnet::sh(&["ip", "link", "set", &veth.host, "netns", lb.name()]);
    veth.move_peer(&srv);
    for (ns, dev, addr) in [(&lb, &veth.host, "10.98.0.1/24"), (&srv, &veth.peer, "10.98.0.2/24")] {
        ns.ip(&["addr", "add", addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    let dir = TempDir::new("rvcbfd");
    let timers = " min_rx 50\n min_tx 50\n multiplier 3\n";
    std::fs::write(
        dir.file("keepalived.conf"),
        format!("bfd_instance to_lb {{\n neighbor_ip 10.98.0.1\n source_ip 10.98.0.2\n{timers}}}\n"),
    )
    .unwrap();
    let log = dir.file("keepalived.log");
    let (conf_path, srv_name) = (dir.file("keepalived.conf"), srv.name().to_string());
    let dir_path = dir.path().to_path_buf();
    // Each start with its own pid files: the killed one's BFD child may linger as a zombie
    // (not in the namespace's listing, yet alive to kill(0)) and keepalived would refuse
    // to start ("daemon is already running").
    let start_keepalived = move |generation: u8| {
        let pid = |n: &str| dir_path.join(format!("{n}{generation}.pid")).display().to_string();
        let f = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &srv_name, "/usr/sbin/keepalived", "-n", "-l", "-D", "-f", &conf_path])
            .args(["-p", &pid("k"), "-r", &pid("kv"), "-c", &pid("kc"), "-b", &pid("kb")])
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        (ChildGuard::new(child), log.clone())
    };
    let conf = format!(
        "bfd_instance to_rs {{\n neighbor_ip 10.98.0.2\n source_ip 10.98.0.1\n{timers}}}\n{}",
        conf("TCP", "10.98.0.2 80", "  BFD_CHECK {\n   name to_rs\n  }")
    );
    let srv_name = srv.name().to_string();
    in_netns(&lb, move || async move {
        let pids = || {
            let out = std::process::Command::new("ip").args(["netns", "pids", &srv_name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect::<Vec<_>>()
        };
        let kill_all = || {
            for p in pids() {
                let p = nix::unistd::Pid::from_raw(p.parse().unwrap());
                let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            }
        };
        let first = start_keepalived(1);
        let a = Agent::start(&conf);
        let w = || a.weight(Proto::Tcp, "192.0.2.1", 80, 0);
        // Up, its Poll sequence over: the 50 ms intervals agreed.
        let fast = |a: &Agent| a.bfd().first().is_some_and(|b| b.state.name() == "Up" && b.detection_time_ms == 150.0);
        wait_for("the BFD session Up at 3 x 50 ms", Duration::from_secs(10), || fast(&a)).await;
        wait_for("the weight of a server whose session is Up", Duration::from_secs(2), || w() == Some(7)).await;
        // Killed without a word (its BFD child too).
        kill_all();
        drop(first);
        wait_for("weight 0", Duration::from_secs(2), || w() == Some(0)).await;
        // Its processes gone, then started again.
        wait_for("keepalived's processes gone", Duration::from_secs(5), || pids().is_empty()).await;
        let again = start_keepalived(2);
        let t = Instant::now();
        while w() != Some(7) {
            let log = std::fs::read_to_string(&again.1).unwrap_or_default();
            assert!(t.elapsed() < Duration::from_secs(10), "weight back: {:?}\n{log}", a.bfd());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        kill_all();
        a.stop().await;
    });
    drop(dir);
}

/// keepalived's `misc_dynamic`: the script's exit code sets the weight (0: the
/// configured 7, 2-255: CODE - 2), 1 sets the server down (inhibit: weight 0).
#[test]
fn misc_dynamic_exit_codes_set_the_weight() {
    root();
    let ns = NetNs::new("rvcmisc");
    let dir = TempDir::new("rvcmisc");
    let code = dir.file("code");
    std::fs::write(&code, "0").unwrap();
    let checker = format!("  MISC_CHECK {{\n   misc_path \"/bin/sh -c 'exit $(cat {code})'\"\n   misc_dynamic\n  }}");
    let conf = conf("TCP", "127.0.0.1 80", &checker);
    in_netns(&ns, move || async move {
        let a = Agent::start(&conf);
        let w = || a.weight(Proto::Tcp, "192.0.2.1", 80, 0);
        wait_for("the service to load", Duration::from_secs(2), || w() == Some(7)).await;
        // (1 comes after a non-zero weight: the server going down is what sets weight 0.)
        for (exit, weight) in [("12", 10), ("1", 0), ("255", 253), ("2", 0), ("0", 7)] {
            std::fs::write(&code, exit).unwrap();
            wait_for(&format!("exit {exit}: weight {weight}"), WITHIN, || w() == Some(weight)).await;
        }
        a.stop().await;
    });
    drop(dir);
}

/// A Python HTTP/1.1 server (threads, keep-alive unless asked to close) logging each
/// request line and its headers to argv[2]; `/chunked` answers a chunked body, the other
/// paths `alive\n` with a Content-Length.
const PY_HTTP: &str = r#"
import sys, http.server
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        log.write(self.requestline + "\n" + "".join("%s: %s\n" % kv for kv in self.headers.items()) + "\n")
        self.send_response(200)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"6\r\nalive\n\r\n0\r\n\r\n")
        else:
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"alive\n")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

#[test]
fn http_protocol_requests_as_keepalived_and_their_digests() {
    root();
    let ns = NetNs::new("rvchttp");
    let dir = TempDir::new("rvchttp");
    let (script, log) = (dir.file("server.py"), dir.file("requests.log"));
    std::fs::write(&script, PY_HTTP).unwrap();
    let _server = spawn_in(ns.name(), &["python3", &script, "8088", &log]);
    // md5("alive\n"); md5 of the chunked body as sent (chunk sizes included).
    let (alive, chunked) = ("4e5dc3caa06fa07c79bc3ba5e62ff86b", md5_hex(b"6\r\nalive\n\r\n0\r\n\r\n"));
    let vs = |vip: &str, protocol: &str, urls: &str| {
        format!(
            "virtual_server {vip} 80 {{\n lb_kind FNAT\n delay_loop 0.2\n real_server 127.0.0.1 8088 {{\n  weight 7\n  inhibit_on_failure\n\
             HTTP_GET {{\n{urls}   http_protocol {protocol}\n {TIMING} }}\n }}\n}}\n"
        )
    };
    let url = |path: &str, digest: &str| format!("   url {{\n    path {path}\n    digest {digest}\n   }}\n");
    let conf = [
        vs("192.0.2.1", "1.0", &url("/p10", alive)),
        vs("192.0.2.2", "1.0C", &url("/p10c", alive)),
        vs("192.0.2.3", "1.1", &(url("/p11", alive) + &url("/chunked", &chunked))),
        // The de-chunked body's digest is not what keepalived compares: down.
        vs("192.0.2.4", "1.1", &url("/chunked", alive)),
    ]
    .concat();
    let log_c = log.clone();
    in_netns(&ns, move || async move {
        tcp_ready(8088).await;
        let a = Agent::start(&conf);
        let w = |vip: &str| a.weight(Proto::Tcp, vip, 80, 0);
        wait_for("the de-chunked digest to fail", WITHIN, || w("192.0.2.4") == Some(0)).await;
        // Several rounds: the others stay up (status and digest right).
        tokio::time::sleep(Duration::from_millis(800)).await;
        for vip in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
            assert_eq!(w(vip), Some(7), "{vip}");
        }
        a.stop().await;
        let log = std::fs::read_to_string(&log_c).unwrap();
        let seen = |line: &str| {
            log.split("\n\n").find(|r| r.starts_with(line)).unwrap_or_else(|| panic!("no {line} in {log}")).to_string()
        };
        let host = "Host: 127.0.0.1:8088";
        assert_eq!(seen("GET /p10 "), format!("GET /p10 HTTP/1.0\nUser-Agent: KeepAliveClient\n{host}"));
        let close = "User-Agent: KeepAliveClient\nConnection: close";
        assert_eq!(seen("GET /p10c "), format!("GET /p10c HTTP/1.0\n{close}\n{host}"));
        assert_eq!(seen("GET /p11 "), format!("GET /p11 HTTP/1.1\n{close}\n{host}"));
        assert_eq!(seen("GET /chunked "), format!("GET /chunked HTTP/1.1\n{close}\n{host}"));
    });
}

/// HTTP_GET's `regex` against a real server whose page says how it is: `regex` must
/// match (the page turning to `status: degraded` sets the server down, `ok` again brings
/// it back), and on a second virtual server `regex_no_match` must not (a page naming an
/// `error` sets it down). The pattern is unescaped as keepalived reads a `regex` line
/// (`\\d`).
#[test]
fn http_get_regex_follows_the_page() {
    root();
    let ns = NetNs::new("rvcregex");
    let dir = TempDir::new("rvcregex");
    let (page, script) = (dir.file("page"), dir.file("server.py"));
    std::fs::write(&page, "status: ok 42\n").unwrap();
    std::fs::write(
        &script,
        "import sys, http.server\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       body = open(sys.argv[2], 'rb').read()\n\
         \x20       self.send_response(200)\n\
         \x20       self.send_header('Content-Length', str(len(body)))\n\
         \x20       self.end_headers()\n\
         \x20       self.wfile.write(body)\n\
         \x20   def log_message(self, *a):\n\
         \x20       pass\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n",
    )
    .unwrap();
    let _server = spawn_in(ns.name(), &["python3", &script, "8089", &page]);
    let vs = |vip: &str, url: &str| {
        format!(
            "virtual_server {vip} 80 {{\n lb_kind FNAT\n delay_loop 0.2\n real_server 127.0.0.1 8089 {{\n  weight 7\n  inhibit_on_failure\n\
             HTTP_GET {{\n   url {{\n    path /health\n{url}   }}\n {TIMING} }}\n }}\n}}\n"
        )
    };
    let conf = [
        vs("192.0.2.1", "    regex \"^status: ok \\\\d+$\"\n    regex_options multiline\n"),
        vs("192.0.2.2", "    regex error\n    regex_no_match\n"),
    ]
    .concat();
    // Replaced whole (renamed over), so that the server never reads it half written.
    let set_page = move |text: &str| {
        let tmp = format!("{page}.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &page).unwrap();
    };
    in_netns(&ns, move || async move {
        tcp_ready(8089).await;
        let a = Agent::start(&conf);
        let w = |vip: &str| a.weight(Proto::Tcp, vip, 80, 0);
        wait_for("both to load", Duration::from_secs(2), || w("192.0.2.1") == Some(7) && w("192.0.2.2") == Some(7))
            .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!((w("192.0.2.1"), w("192.0.2.2")), (Some(7), Some(7)), "a healthy page keeps both up");
        set_page("status: degraded 42\n");
        wait_for("the regex to stop matching", WITHIN, || w("192.0.2.1") == Some(0)).await;
        assert_eq!(w("192.0.2.2"), Some(7));
        set_page("status: ok 7\nerror: disk\n");
        wait_for("the first back", WITHIN, || w("192.0.2.1") == Some(7)).await;
        wait_for("regex_no_match to see the error", WITHIN, || w("192.0.2.2") == Some(0)).await;
        set_page("status: ok 7\n");
        wait_for("the second back", WITHIN, || w("192.0.2.2") == Some(7)).await;
        a.stop().await;
    });
    drop(dir);
}

/// MD5 of `data` in hex (the digest keepalived's `genhash` prints).
fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}
