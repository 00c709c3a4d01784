//! `--metrics-listen`: two rvs-agent binaries in one network namespace (`-s`), one VRRPv3
//! group over unicast on loopback (`--dataplane linux`: the VIP goes on `lo`), node A with
//! a TCP_CHECK on a real server the test runs. Each is scraped with curl; `promtool check
//! metrics` accepts what they serve, and the values follow what happens: A is MASTER and B
//! BACKUP after the election, A's adverts sent grow and B receives them, the real server's
//! state goes to 0 when it stops answering and back to 1, B's transitions count the
//! failover when A stops and the preemption when A returns, and B's reloads count an
//! applied and a refused SIGHUP.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use testnet::{ChildGuard, NetNs};

const RS_PORT: u16 = 18090;
const METRICS_A: u16 = 19101;
const METRICS_B: u16 = 19102;

fn node_conf(src: &str, peer: &str, prio: u8, checks: bool) -> String {
    let mut c = format!(
        "vrrp_instance VI {{\n interface lo\n version 3\n virtual_router_id 42\n priority {prio}\n advert_int 0.1\n\
         unicast_src_ip {src}\n unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  192.0.2.42/32\n }}\n}}\n"
    );
    if checks {
        c += &format!(
            "virtual_server 192.0.2.42 80 {{\n lb_kind FNAT\n lb_algo rr\n delay_loop 0.2\n\
             real_server 127.0.0.1 {RS_PORT} {{\n  weight 1\n  inhibit_on_failure\n\
             TCP_CHECK {{\n   connect_timeout 0.2\n   retry 1\n   delay_before_retry 0.1\n  }}\n }}\n}}\n"
        );
    }
    c
}

/// A TCP server on 127.0.0.1:`port` in namespace `ns`, accepting (and closing)
/// connections until dropped.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ns: &NetNs, port: u16) -> Server {
        let path = format!("/run/netns/{}", ns.name());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let f = std::fs::File::open(&path).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                if l.accept().is_err() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        rx.recv().expect("the real server listens");
        Server { stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Dir(PathBuf);

impl Dir {
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent(ns: &NetNs, dir: &Dir, name: &str, port: u16) -> ChildGuard {
    let (conf, sock) = (dir.path(&format!("{name}.conf")), dir.path(&format!("{name}.sock")));
    let listen = format!("127.0.0.1:{port}");
    let args = ["-n", "-s", ns.name(), "-f", &conf, "--dataplane", "linux", "--status-socket", &sock];
    ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_rvs-agent"))
            .args(args)
            .args(["--metrics-listen", &listen])
            .env("RVS_LOG", "warn")
            .spawn()
            .unwrap(),
    )
}

fn signal(child: &ChildGuard, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.pid() as i32), sig).unwrap();
}

/// The exposition served on `port`, none while nothing answers.
fn scrape(ns: &NetNs, port: u16) -> Option<String> {
    let out = ns.exec(&["curl", "-sSf", "--max-time", "5", &format!("http://127.0.0.1:{port}/metrics")]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of `series` (name and labels as written) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `port` until `f` holds for the value of `series`; returns the exposition.
fn wait_for(ns: &NetNs, port: u16, series: &str, timeout: Duration, f: impl Fn(Option<f64>) -> bool) -> String {
    let t = Instant::now();
    loop {
        let text = scrape(ns, port).unwrap_or_default();
        if f(value(&text, series)) {
            return text;
        }
        assert!(t.elapsed() < timeout, "timed out after {timeout:?} on {series} (port {port}):\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `promtool check metrics` accepts `text`: exit status 0, nothing said.
fn promtool(text: &str) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh installs it)");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.is_empty(), "promtool check metrics: {said}\n{text}");
}

#[test]
fn metrics_follow_election_health_failover_and_reloads() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root (network namespaces)");
    let ns = NetNs::new("rvmet");
    let dir = Dir(std::env::temp_dir().join(format!("rvs-agent-metrics-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.path("a.conf"), node_conf("127.0.0.1", "127.0.0.2", 200, true)).unwrap();
    std::fs::write(dir.path("b.conf"), node_conf("127.0.0.2", "127.0.0.1", 100, false)).unwrap();
    let server = Server::start(&ns, RS_PORT);
    let b = agent(&ns, &dir, "b", METRICS_B);
    let mut a = agent(&ns, &dir, "a", METRICS_A);
    let secs = Duration::from_secs;

    // The election: A (200) is MASTER, B BACKUP.
    let master = "rvs_agent_vrrp_state{instance=\"VI\",state=\"MASTER\"}";
    let backup = "rvs_agent_vrrp_state{instance=\"VI\",state=\"BACKUP\"}";
    wait_for(&ns, METRICS_A, master, secs(10), |v| v == Some(1.0));
    let b_text = wait_for(&ns, METRICS_B, backup, secs(5), |v| v == Some(1.0));
    assert_eq!(value(&b_text, master), Some(0.0), "{b_text}");
    assert_eq!(value(&b_text, "rvs_agent_vrrp_priority{instance=\"VI\"}"), Some(100.0), "{b_text}");
    assert_eq!(value(&b_text, "rvs_agent_vrrp_effective_priority{instance=\"VI\"}"), Some(100.0), "{b_text}");

    // Adverts: A's sent grow (every 0.1 s); B receives them.
    let sent = "rvs_agent_vrrp_adverts_sent_total{instance=\"VI\"}";
    let first = value(&scrape(&ns, METRICS_A).unwrap(), sent).expect("adverts sent");
    let a_text = wait_for(&ns, METRICS_A, sent, secs(3), |v| v.is_some_and(|v| v >= first + 5.0));
    let b_text = wait_for(&ns, METRICS_B, "rvs_agent_vrrp_adverts_received_total{instance=\"VI\"}", secs(3), |v| {
        v.is_some_and(|v| v >= 5.0)
    });
    // The two configurations agree on the addresses.
    assert_eq!(value(&b_text, "rvs_agent_vrrp_address_mismatch_total{instance=\"VI\"}"), Some(0.0), "{b_text}");
    assert_eq!(value(&a_text, "rvs_agent_dataplane_up{kind=\"linux\"}"), Some(1.0), "{a_text}");

    // The real server: up, then down once it stops answering, then up again.
    let vs_rs = format!("vs=\"tcp 192.0.2.42:80\",rs=\"127.0.0.1:{RS_PORT}\"");
    let up = format!("rvs_agent_real_server_up{{{vs_rs}}}");
    let checker = format!("{vs_rs},checker=\"TCP_CHECK\"");
    let checks = format!("rvs_agent_checks_total{{{checker}}}");
    let failures = format!("rvs_agent_check_failures_total{{{checker}}}");
    let a_text = wait_for(&ns, METRICS_A, &checks, secs(3), |v| v.is_some_and(|v| v >= 2.0));
    assert_eq!(value(&a_text, &up), Some(1.0), "{a_text}");
    assert_eq!(value(&a_text, &failures), Some(0.0), "{a_text}");
    let took = value(&a_text, &format!("rvs_agent_check_duration_seconds{{{checker}}}")).expect("a duration");
    assert!((0.0..0.2).contains(&took), "a loopback connect took {took} s");
    promtool(&a_text);
    drop(server);
    let a_text = wait_for(&ns, METRICS_A, &up, secs(5), |v| v == Some(0.0));
    assert!(value(&a_text, &failures).is_some_and(|v| v >= 2.0), "retry 1: two failed attempts\n{a_text}");
    let server = Server::start(&ns, RS_PORT);
    wait_for(&ns, METRICS_A, &up, secs(5), |v| v == Some(1.0));

    // Failover: A stops (priority 0), B takes over; A returns and preempts.
    let to_master = "rvs_agent_vrrp_transitions_total{instance=\"VI\",from=\"BACKUP\",to=\"MASTER\"}";
    let to_backup = "rvs_agent_vrrp_transitions_total{instance=\"VI\",from=\"MASTER\",to=\"BACKUP\"}";
    let b_text = scrape(&ns, METRICS_B).unwrap();
    assert_eq!(value(&b_text, to_master), None, "B was never master\n{b_text}");
    assert_eq!(
        value(&b_text, "rvs_agent_vrrp_transitions_total{instance=\"VI\",from=\"INIT\",to=\"BACKUP\"}"),
        Some(1.0)
    );
    promtool(&b_text);
    signal(&a, nix::sys::signal::Signal::SIGTERM);
    let t = Instant::now();
    while a.running() {
        assert!(t.elapsed() < secs(10), "A did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let b_text = wait_for(&ns, METRICS_B, master, secs(3), |v| v == Some(1.0));
    assert_eq!(value(&b_text, to_master), Some(1.0), "{b_text}");
    let a = agent(&ns, &dir, "a", METRICS_A);
    wait_for(&ns, METRICS_A, master, secs(10), |v| v == Some(1.0));
    let b_text = wait_for(&ns, METRICS_B, to_backup, secs(3), |v| v == Some(1.0));
    assert_eq!(value(&b_text, backup), Some(1.0), "{b_text}");
    assert_eq!(value(&b_text, to_master), Some(1.0), "{b_text}");

    // Reloads: an unchanged file is applied; a broken one is refused.
    let applied = "rvs_agent_config_reloads_total{result=\"applied\"}";
    let refused = "rvs_agent_config_reloads_total{result=\"refused\"}";
    let last_ok = "rvs_agent_config_last_reload_successful";
    assert_eq!((value(&b_text, applied), value(&b_text, last_ok)), (Some(0.0), Some(1.0)), "{b_text}");
    signal(&b, nix::sys::signal::Signal::SIGHUP);
    wait_for(&ns, METRICS_B, applied, secs(5), |v| v == Some(1.0));
    std::fs::write(dir.path("b.conf"), "vrrp_instance VI {\n no_such_keyword\n}\n").unwrap();
    signal(&b, nix::sys::signal::Signal::SIGHUP);
    let b_text = wait_for(&ns, METRICS_B, refused, secs(5), |v| v == Some(1.0));
    assert_eq!(value(&b_text, last_ok), Some(0.0), "{b_text}");
    assert_eq!(value(&b_text, backup), Some(1.0), "a refused reload changes nothing\n{b_text}");
    promtool(&b_text);

    // Only /metrics is served.
    let other =
        ns.exec(&["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{METRICS_B}/")]);
    assert_eq!(String::from_utf8_lossy(&other.stdout), "404");
    drop((a, b, server));
}
