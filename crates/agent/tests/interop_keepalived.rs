//! Interoperability with a real keepalived (Debian's package) in one VRRP group on a veth
//! pair between two namespaces: rvs-agent (the binary with `--dataplane linux`: VIPs put on
//! its veth with `ip addr`) on one side, keepalived on the other. The higher priority must become master whichever
//! side it is on, for v2 and v3 (IPv4, and IPv6 for v3); killing the master (SIGKILL: no
//! priority-0 advert) must make the other take over.
//!
//! Needs root and /usr/sbin/keepalived; skipped (with a message) without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testnet::{ChildGuard, NetNs, Veth};

const KEEPALIVED: &str = "/usr/sbin/keepalived";

fn can_run() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let ka = Path::new(KEEPALIVED).exists();
    // Never skip silently: scripts/setup.sh installs keepalived and CI runs as root.
    assert!(root, "the interop test needs root (network namespaces)");
    assert!(ka, "{KEEPALIVED} missing: run scripts/setup.sh (it installs keepalived)");
    true
}

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

struct Setup {
    version: u8,
    family: Family,
    advert_int: &'static str,
    agent_prio: u8,
    ka_prio: u8,
    vrid: u8,
    /// Unicast peers instead of multicast.
    unicast: bool,
    /// Both sides use `old_unicast_checksum` (v3 IPv4 checksum without pseudo-header).
    old_checksum: bool,
}

impl Setup {
    fn vip(&self) -> &'static str {
        match self.family {
            Family::V4 => "10.77.0.100",
            Family::V6 => "fd00:77::100",
        }
    }

    fn conf(&self, iface: &str, prio: u8, me: &str, peer: &str) -> String {
        let (vip, auth) = match self.family {
            Family::V4 => (
                "10.77.0.100/24",
                if self.version == 2 { "authentication {\n auth_type PASS\n auth_pass rvs-test\n }" } else { "" },
            ),
            Family::V6 => ("fd00:77::100/64", ""),
        };
        let mut extra = String::new();
        if self.unicast {
            extra += &format!(" unicast_src_ip {me}\n unicast_peer {{\n  {peer}\n }}\n");
        }
        if self.old_checksum {
            extra += " old_unicast_checksum\n";
        }
        format!(
            "global_defs {{\n router_id {iface}\n}}\n\
             vrrp_instance VI_T {{\n state BACKUP\n interface {iface}\n virtual_router_id {}\n priority {prio}\n\
             advert_int {}\n version {}\n {auth}\n{extra} virtual_ipaddress {{\n  {vip}\n }}\n}}\n",
            self.vrid, self.advert_int, self.version
        )
    }
}

struct Node {
    ns: NetNs,
    dev: String,
}

fn has_vip(n: &Node, vip: &str) -> bool {
    n.ns.ip(&["addr", "show", "dev", &n.dev]).contains(&format!(" {vip}/"))
}

/// Waits until `f` holds; returns how long it took.
fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

fn kill_all_in(ns: &NetNs) {
    let out = Command::new("ip").args(["netns", "pids", ns.name()]).output().unwrap();
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let pid: i32 = pid.parse().unwrap();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

fn spawn_logged(ns: &NetNs, args: &[&str], log: &Path) -> ChildGuard {
    let f = std::fs::File::create(log).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    ChildGuard::new(child)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs one scenario; on failure, prints both logs.
fn scenario(s: Setup) {
    if !can_run() {
        return;
    }
    let dir = TempDir(std::env::temp_dir().join(testnet::unique("rvsiop")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let veth = Veth::new("rvi");
    let a = NetNs::new("rvka");
    let b = NetNs::new("rvag");
    testnet::sh(&["ip", "link", "set", &veth.host, "netns", a.name()]);
    veth.move_peer(&b);
    let ka = Node { ns: a, dev: veth.host.clone() };
    let ag = Node { ns: b, dev: veth.peer.clone() };
    for (n, addr4, addr6) in [(&ka, "10.77.0.1/24", "fd00:77::1/64"), (&ag, "10.77.0.2/24", "fd00:77::2/64")] {
        // No DAD: the link-local source must be usable at once.
        let _ = n.ns.exec(&["sysctl", "-qw", &format!("net.ipv6.conf.{}.accept_dad=0", n.dev)]);
        n.ns.ip(&["link", "set", &n.dev, "down"]);
        n.ns.ip(&["addr", "add", addr4, "dev", &n.dev]);
        n.ns.ip(&["addr", "add", addr6, "dev", &n.dev, "nodad"]);
        n.ns.ip(&["link", "set", &n.dev, "up"]);
    }
    let ka_conf = dir.0.join("keepalived.conf");
    let (ka_ip, ag_ip) = match s.family {
        Family::V4 => ("10.77.0.1", "10.77.0.2"),
        Family::V6 => ("fd00:77::1", "fd00:77::2"),
    };
    std::fs::write(&ka_conf, s.conf(&ka.dev, s.ka_prio, ka_ip, ag_ip)).unwrap();
    let ag_conf = dir.0.join("agent.conf");
    std::fs::write(&ag_conf, s.conf(&ag.dev, s.agent_prio, ag_ip, ka_ip)).unwrap();
    let ka_log = dir.0.join("keepalived.log");
    let ag_log = dir.0.join("agent.log");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let p = |n: &str| dir.0.join(n).display().to_string();
        let ka_args = [
            KEEPALIVED,
            "-n",
            "-l",
            "-D",
            "-G",
            "-P",
            "-f",
            &p("keepalived.conf"),
            "-p",
            &p("k.pid"),
            "-r",
            &p("kv.pid"),
        ];
        let _ka_proc = spawn_logged(&ka.ns, &ka_args, &ka_log);
        let ag_args = [
            env!("CARGO_BIN_EXE_rvs-agent"),
            "--dataplane",
            "linux",
            "--status-socket",
            &p("agent.sock"),
            "-f",
            &ag_conf.display().to_string(),
        ];
        let _ag_proc = spawn_logged(&ag.ns, &ag_args, &ag_log);
        let vip = s.vip();
        let (hi, lo, lo_name) =
            if s.agent_prio > s.ka_prio { (&ag, &ka, "keepalived") } else { (&ka, &ag, "rvs-agent") };
        let adv: f64 = s.advert_int.parse().unwrap();
        let master_down = Duration::from_secs_f64(3.0 * adv + 1.0 + 3.0);
        // Both start as BACKUP: the higher priority's shorter skew wins the election.
        let t = wait_for("the higher priority to take the VIP", master_down * 2, || has_vip(hi, vip));
        // Give the lower one several adverts to (wrongly) take it too.
        std::thread::sleep(Duration::from_secs_f64(adv * 4.0).max(Duration::from_millis(500)));
        assert!(has_vip(hi, vip), "the higher priority lost the VIP");
        assert!(!has_vip(lo, vip), "{lo_name} (lower priority) holds the VIP too");
        eprintln!("elected after {t:?}");
        // Kill the master hard: no priority-0 advert.
        kill_all_in(&hi.ns);
        let t = wait_for("the backup to take over", master_down, || has_vip(lo, vip));
        eprintln!("{lo_name} took over {t:?} after the master was killed");
    }));
    if let Err(e) = result {
        for l in [&ka_log, &ag_log] {
            eprintln!("==== {}\n{}", l.display(), std::fs::read_to_string(l).unwrap_or_default());
        }
        std::panic::resume_unwind(e);
    }
}

#[test]
fn v2_agent_higher_priority_wins_and_keepalived_takes_over() {
    scenario(Setup {
        version: 2,
        family: Family::V4,
        advert_int: "1",
        agent_prio: 150,
        ka_prio: 100,
        vrid: 71,
        unicast: false,
        old_checksum: false,
    });
}

#[test]
fn v2_keepalived_higher_priority_wins_and_agent_takes_over() {
    scenario(Setup {
        version: 2,
        family: Family::V4,
        advert_int: "1",
        agent_prio: 100,
        ka_prio: 150,
        vrid: 72,
        unicast: false,
        old_checksum: false,
    });
}

#[test]
fn v3_ipv4_agent_higher_priority_wins_and_keepalived_takes_over() {
    scenario(Setup {
        version: 3,
        family: Family::V4,
        advert_int: "0.2",
        agent_prio: 200,
        ka_prio: 100,
        vrid: 73,
        unicast: false,
        old_checksum: false,
    });
}

#[test]
fn v3_ipv4_keepalived_higher_priority_wins_and_agent_takes_over() {
    scenario(Setup {
        version: 3,
        family: Family::V4,
        advert_int: "0.2",
        agent_prio: 100,
        ka_prio: 200,
        vrid: 74,
        unicast: false,
        old_checksum: false,
    });
}

#[test]
fn v3_ipv6_agent_higher_priority_wins_and_keepalived_takes_over() {
    scenario(Setup {
        version: 3,
        family: Family::V6,
        advert_int: "0.2",
        agent_prio: 200,
        ka_prio: 100,
        vrid: 75,
        unicast: false,
        old_checksum: false,
    });
}

#[test]
fn v3_ipv6_keepalived_higher_priority_wins_and_agent_takes_over() {
    scenario(Setup {
        version: 3,
        family: Family::V6,
        advert_int: "0.2",
        agent_prio: 100,
        ka_prio: 200,
        vrid: 76,
        unicast: false,
        old_checksum: false,
    });
}

#[test]
fn v2_unicast_agent_higher_priority_wins_and_keepalived_takes_over() {
    scenario(Setup {
        version: 2,
        family: Family::V4,
        advert_int: "1",
        agent_prio: 150,
        ka_prio: 100,
        vrid: 77,
        unicast: true,
        old_checksum: false,
    });
}

#[test]
fn v3_unicast_old_checksum_keepalived_higher_priority_wins_and_agent_takes_over() {
    scenario(Setup {
        version: 3,
        family: Family::V4,
        advert_int: "0.2",
        agent_prio: 100,
        ka_prio: 200,
        vrid: 78,
        unicast: true,
        old_checksum: true,
    });
}

#[test]
fn v3_unicast_old_checksum_agent_higher_priority_wins_and_keepalived_takes_over() {
    scenario(Setup {
        version: 3,
        family: Family::V4,
        advert_int: "0.2",
        agent_prio: 200,
        ka_prio: 100,
        vrid: 79,
        unicast: true,
        old_checksum: true,
    });
}
