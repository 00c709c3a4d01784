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
    /// v2 `auth_type AH` (IPsec AH, HMAC-MD5-96) instead of PASS.
    ah: bool,
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
                match (self.version, self.ah) {
                    (2, false) => "authentication {\n auth_type PASS\n auth_pass rvs-test\n }",
                    (2, true) => "authentication {\n auth_type AH\n auth_pass rvs-test\n }",
                    _ => "",
                },
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

/// Runs `f`; if it panics, prints each of `logs` (the daemons' logs) and panics on.
fn with_logs(logs: &[&PathBuf], f: impl FnOnce()) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        for l in logs {
            eprintln!("==== {}\n{}", l.display(), std::fs::read_to_string(l).unwrap_or_default());
        }
        std::panic::resume_unwind(e);
    }
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

fn spawn_logged(ns: &NetNs, args: &[String], log: &Path) -> ChildGuard {
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

/// The two sides: keepalived's namespace and node, rvs-agent's, on one veth pair
/// (10.77.0.1 and fd00:77::1 keepalived's, .2 and ::2 the agent's), and a scratch
/// directory.
fn pair() -> (TempDir, Veth, Node, Node) {
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
    (dir, veth, ka, ag)
}

/// keepalived's command line, logging to the terminal, with its files in `dir`.
fn keepalived_args(dir: &Path) -> Vec<String> {
    let p = |n: &str| dir.join(n).display().to_string();
    // Every pid file in `dir`: a keepalived finding another's (the BFD child's default
    // /run/keepalived/bfd.pid included) alive refuses to start.
    [
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
        "-b",
        &p("kb.pid"),
    ]
    .map(String::from)
    .to_vec()
}

/// rvs-agent's command line (`--dataplane linux`), with its files in `dir`.
fn agent_args(dir: &Path) -> Vec<String> {
    let p = |n: &str| dir.join(n).display().to_string();
    let bin = env!("CARGO_BIN_EXE_rvs-agent");
    [bin, "--dataplane", "linux", "--status-socket", &p("agent.sock"), "-f", &p("agent.conf")]
        .map(String::from)
        .to_vec()
}

/// Runs one scenario; on failure, prints both logs.
fn scenario(s: Setup) {
    scenario_with(s, "");
}

/// [`scenario`] with `extra` (instance keywords) in both sides' vrrp_instance.
fn scenario_with(s: Setup, extra: &str) {
    if !can_run() {
        return;
    }
    let with = |c: String| c.replace(" virtual_ipaddress {", &format!("{extra} virtual_ipaddress {{"));
    let (dir, _veth, ka, ag) = pair();
    let ka_conf = dir.0.join("keepalived.conf");
    let (ka_ip, ag_ip) = match s.family {
        Family::V4 => ("10.77.0.1", "10.77.0.2"),
        Family::V6 => ("fd00:77::1", "fd00:77::2"),
    };
    std::fs::write(&ka_conf, with(s.conf(&ka.dev, s.ka_prio, ka_ip, ag_ip))).unwrap();
    let ag_conf = dir.0.join("agent.conf");
    std::fs::write(&ag_conf, with(s.conf(&ag.dev, s.agent_prio, ag_ip, ka_ip))).unwrap();
    let ka_log = dir.0.join("keepalived.log");
    let ag_log = dir.0.join("agent.log");
    with_logs(&[&ka_log, &ag_log], || {
        let _ka_proc = spawn_logged(&ka.ns, &keepalived_args(&dir.0), &ka_log);
        let _ag_proc = spawn_logged(&ag.ns, &agent_args(&dir.0), &ag_log);
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
    });
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
        ah: false,
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
        ah: false,
    });
}

/// keepalived's `auth_type AH` (IPsec AH around the advert, HMAC-MD5-96 keyed by the
/// password, a sequence number shared by what is sent and received): each side accepts
/// the other's adverts (or both would be master), multicast and unicast.
#[test]
fn v2_ah_agent_higher_priority_wins_and_keepalived_takes_over() {
    scenario(Setup {
        version: 2,
        family: Family::V4,
        advert_int: "1",
        agent_prio: 150,
        ka_prio: 100,
        vrid: 74,
        unicast: false,
        old_checksum: false,
        ah: true,
    });
}

#[test]
fn v2_ah_unicast_keepalived_higher_priority_wins_and_agent_takes_over() {
    scenario(Setup {
        version: 2,
        family: Family::V4,
        advert_int: "1",
        agent_prio: 100,
        ka_prio: 150,
        vrid: 75,
        unicast: true,
        old_checksum: false,
        ah: true,
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
        ah: false,
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
        ah: false,
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
        ah: false,
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
        ah: false,
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
        ah: false,
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
        ah: false,
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
        ah: false,
    });
}

/// keepalived's per-instance `mcast_dst_ip`: both sides on another group (224.0.0.19);
/// an agent still sending to 224.0.0.18 would not be heard and both would hold the VIP.
#[test]
fn v3_ipv4_mcast_dst_ip_agent_higher_priority_wins_and_keepalived_takes_over() {
    scenario_with(
        Setup {
            version: 3,
            family: Family::V4,
            advert_int: "0.5",
            agent_prio: 150,
            ka_prio: 100,
            vrid: 62,
            unicast: false,
            old_checksum: false,
            ah: false,
        },
        " mcast_dst_ip 224.0.0.19\n",
    );
}

/// A reload (SIGHUP) that changes the master's block (its priority, an excluded address
/// more: one more in the adverts would make keepalived drop them)
/// leaves it master, as keepalived's reload does: no priority-0 advert, so keepalived, the
/// backup, never takes the VIP meanwhile; the new address is added, the old one never
/// dropped. Before, the agent restarted a changed instance and keepalived held the VIP
/// until the agent preempted it back.
#[test]
fn a_reload_changing_the_master_s_block_leaves_keepalived_backup() {
    reload_master(Setup {
        version: 3,
        family: Family::V4,
        advert_int: "0.1",
        agent_prio: 200,
        ka_prio: 100,
        vrid: 61,
        unicast: false,
        old_checksum: false,
        ah: false,
    });
}

/// The same with `auth_type AH`: the master's successor carries on the AH sequence number
/// (keepalived's restore_vrrp_state); restarting it from 1 would have keepalived drop its
/// adverts as replays and take the VIP after 3 intervals.
#[test]
fn a_reload_of_an_ah_master_keeps_its_sequence_and_keepalived_backup() {
    reload_master(Setup {
        version: 2,
        family: Family::V4,
        advert_int: "1",
        agent_prio: 200,
        ka_prio: 100,
        vrid: 76,
        unicast: false,
        old_checksum: false,
        ah: true,
    });
}

/// The agent master of `s` reloads with a changed block; keepalived, backup, must not take
/// the VIP during 20 advert intervals.
fn reload_master(s: Setup) {
    if !can_run() {
        return;
    }
    let (dir, _veth, ka, ag) = pair();
    std::fs::write(dir.0.join("keepalived.conf"), s.conf(&ka.dev, s.ka_prio, "", "")).unwrap();
    let ag_conf = dir.0.join("agent.conf");
    std::fs::write(&ag_conf, s.conf(&ag.dev, s.agent_prio, "", "")).unwrap();
    let (ka_log, ag_log) = (dir.0.join("keepalived.log"), dir.0.join("agent.log"));
    with_logs(&[&ka_log, &ag_log], || {
        let _ka_proc = spawn_logged(&ka.ns, &keepalived_args(&dir.0), &ka_log);
        let agent = spawn_logged(&ag.ns, &agent_args(&dir.0), &ag_log);
        wait_for("rvs-agent to take the VIP", Duration::from_secs(10), || has_vip(&ag, s.vip()));
        // Six adverts as master (an AH sequence number a restarted successor would have
        // to catch up with, longer than the backup waits).
        let adv: f64 = s.advert_int.parse().unwrap();
        std::thread::sleep(Duration::from_secs_f64(6.0 * adv).max(Duration::from_millis(500)));
        assert!(!has_vip(&ka, s.vip()));
        let changed = s.conf(&ag.dev, 201, "", "").replace(
            " virtual_ipaddress {",
            " virtual_ipaddress_excluded {\n  10.77.0.101/24\n }\n virtual_ipaddress {",
        );
        std::fs::write(&ag_conf, changed).unwrap();
        let pid = nix::unistd::Pid::from_raw(agent.pid() as i32);
        let ka_before = std::fs::read_to_string(&ka_log).unwrap().len();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        // Twenty advert intervals: the backup must not take over, the master keep its VIP.
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs_f64(20.0 * adv).min(Duration::from_secs(6)) {
            assert!(!has_vip(&ka, s.vip()), "keepalived took the VIP during the reload");
            assert!(has_vip(&ag, s.vip()), "rvs-agent released the VIP during the reload");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(has_vip(&ag, "10.77.0.101"), "the address added by the reload");
        let log = std::fs::read_to_string(&ag_log).unwrap();
        assert!(log.contains("kept its state across the reload"), "{log}");
        // Not even for a moment (a VIP held a few milliseconds escapes the polling).
        let ka = std::fs::read_to_string(&ka_log).unwrap();
        let since = &ka[ka_before.min(ka.len())..];
        assert!(!since.contains("Entering MASTER STATE"), "keepalived became master after the reload:\n{since}");
        assert!(!since.contains("already processed"), "keepalived dropped adverts as replays:\n{since}");
    });
}

/// A real SMTP server (Python 3.11's `smtpd`, Debian's python3) writing each mail it
/// accepts as a JSON line: the envelope and the whole message.
const SMTP_SINK: &str = r#"
import asyncore, json, smtpd, sys
class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"from": mailfrom, "to": rcpttos, "data": data}) + "\n")
host, port = sys.argv[1].rsplit(":", 1)
Sink((host, int(port)), None, decode_data=True)
asyncore.loop()
"#;

/// One mail as the sink got it: the envelope, the headers by name, the body.
#[derive(Debug)]
struct Mail {
    from: String,
    to: Vec<String>,
    headers: std::collections::BTreeMap<String, String>,
    body: String,
}

fn mails(path: &Path) -> Vec<Mail> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let data = v["data"].as_str().unwrap().replace("\r\n", "\n");
            let (head, body) = data.split_once("\n\n").unwrap_or((&data, ""));
            // Folded header lines (To's continuation) join their header.
            let unfolded = head.replace("\n ", " ");
            let headers = unfolded
                .lines()
                .filter_map(|h| h.split_once(": "))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Mail {
                from: v["from"].as_str().unwrap().to_string(),
                to: v["to"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect(),
                headers,
                body: body.trim().to_string(),
            }
        })
        .collect()
}

/// keepalived's mail alerts, side by side with keepalived's own: the same global_defs
/// (`notification_email`, `smtp_server`, `smtp_alert`) in both, one SMTP server. Each
/// side mails its VRRP states; rvs-agent's mails must read as keepalived's (subject after
/// the router id, body, sender, recipients, headers), and the agent leaving (SIGTERM)
/// mails `Stopping`.
#[test]
fn mail_alerts_read_as_keepalived_s() {
    if !can_run() {
        return;
    }
    let python = "/usr/bin/python3";
    assert!(Path::new(python).exists(), "{python} missing: run scripts/setup.sh");
    let (dir, _veth, ka, ag) = pair();
    let sink_file = dir.0.join("mail.jsonl");
    let sink_log = dir.0.join("sink.log");
    let sink_args =
        [python, "-W", "ignore", "-c", SMTP_SINK, "10.77.0.2:2525", &sink_file.display().to_string()].map(String::from);
    let _sink = spawn_logged(&ag.ns, &sink_args, &sink_log);
    let s = Setup {
        version: 3,
        family: Family::V4,
        advert_int: "1",
        agent_prio: 150,
        ka_prio: 100,
        vrid: 77,
        unicast: false,
        old_checksum: false,
        ah: false,
    };
    let mail =
        "notification_email {\n  ops@example.com\n  noc@example.com\n }\n smtp_server 10.77.0.2 2525\n smtp_alert\n";
    let with_mail = |c: String| c.replace(" router_id ", &format!(" {mail} router_id "));
    std::fs::write(dir.0.join("keepalived.conf"), with_mail(s.conf(&ka.dev, s.ka_prio, "10.77.0.1", "10.77.0.2")))
        .unwrap();
    std::fs::write(dir.0.join("agent.conf"), with_mail(s.conf(&ag.dev, s.agent_prio, "10.77.0.2", "10.77.0.1")))
        .unwrap();
    let (ka_log, ag_log) = (dir.0.join("keepalived.log"), dir.0.join("agent.log"));
    with_logs(&[&ka_log, &ag_log, &sink_log], || {
        // The sink listens before anyone mails.
        wait_for("the SMTP sink to listen", Duration::from_secs(10), || {
            ag.ns.exec(&["ss", "-Hltn", "sport = :2525"]).stdout.len() > 1
        });
        let _ka_proc = spawn_logged(&ka.ns, &keepalived_args(&dir.0), &ka_log);
        let ag_proc = spawn_logged(&ag.ns, &agent_args(&dir.0), &ag_log);
        let subjects = |who: &str| -> Vec<String> {
            let tag = format!("[{who}] ");
            mails(&sink_file)
                .iter()
                .filter_map(|m| m.headers.get("Subject")?.strip_prefix(&tag).map(String::from))
                .collect()
        };
        wait_for("both sides to mail their states", Duration::from_secs(20), || {
            subjects(&ag.dev).contains(&"VRRP Instance VI_T - Entering MASTER state".to_string())
                && subjects(&ka.dev).contains(&"VRRP Instance VI_T - Entering BACKUP state".to_string())
        });
        // The agent leaves: its Stopping mail, and keepalived takes over.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(ag_proc.pid() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        wait_for("keepalived's MASTER and the agent's Stopping mails", Duration::from_secs(20), || {
            subjects(&ag.dev).contains(&"VRRP Instance VI_T - Stopping".to_string())
                && subjects(&ka.dev).contains(&"VRRP Instance VI_T - Entering MASTER state".to_string())
        });
        let all = mails(&sink_file);
        let of = |who: &str| -> Vec<&Mail> {
            let tag = format!("[{who}] ");
            all.iter().filter(|m| m.headers.get("Subject").is_some_and(|s| s.starts_with(&tag))).collect()
        };
        let (ours, theirs) = (of(&ag.dev), of(&ka.dev));
        let read = |m: &Mail, who: &str| {
            let subject = m.headers["Subject"].strip_prefix(&format!("[{who}] ")).unwrap().to_string();
            (subject, m.body.clone())
        };
        let ours_read: Vec<_> = ours.iter().map(|m| read(m, &ag.dev)).collect();
        let theirs_read: Vec<_> = theirs.iter().map(|m| read(m, &ka.dev)).collect();
        eprintln!("rvs-agent's mails: {ours_read:#?}\nkeepalived's: {theirs_read:#?}");
        // The same transitions read the same on both sides.
        for (subject, body) in &ours_read {
            if let Some((_, theirs)) = theirs_read.iter().find(|(s, _)| s == subject) {
                assert_eq!(body, theirs, "{subject}: rvs-agent's body is not keepalived's");
            }
        }
        assert_eq!(
            ours_read.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
            [
                "VRRP Instance VI_T - Entering BACKUP state",
                "VRRP Instance VI_T - Entering MASTER state",
                "VRRP Instance VI_T - Stopping"
            ]
        );
        assert!(theirs_read.iter().any(|(s, _)| s == "VRRP Instance VI_T - Entering BACKUP state"));
        assert!(theirs_read.iter().any(|(s, _)| s == "VRRP Instance VI_T - Entering MASTER state"));
        // Envelope and headers as keepalived's: default sender, every recipient, the
        // same header names, the To list in keepalived's layout.
        let (o, t) = (ours[0], theirs[0]);
        assert_eq!(o.from, t.from, "the default sender (USER@HOSTNAME)");
        assert_eq!(o.to, t.to);
        assert_eq!(o.to, ["ops@example.com", "noc@example.com"]);
        assert_eq!(o.headers.keys().collect::<Vec<_>>(), t.headers.keys().collect::<Vec<_>>());
        assert_eq!((&o.headers["From"], &o.headers["To"]), (&t.headers["From"], &t.headers["To"]));
        assert!(t.headers["X-Mailer"].starts_with("Keepalived") && o.headers["X-Mailer"].starts_with("Keepalived"));
    });
    kill_all_in(&ka.ns);
    kill_all_in(&ag.ns);
}

/// Starts sending `n` copies of `payload`, `gap` apart, from inside namespace `ns` (a
/// thread that enters it) on the socket `open` makes there, to the address it names; a
/// full socket buffer loses the datagram, as a flood does. Join to wait for the last.
fn send_in(
    ns: &NetNs,
    open: impl FnOnce() -> (socket2::Socket, std::net::SocketAddr) + Send + 'static,
    payload: &[u8],
    n: usize,
    gap: Duration,
) -> std::thread::JoinHandle<()> {
    let (ns, payload) = (ns.name().to_string(), payload.to_vec());
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let (s, dst) = open();
        for _ in 0..n {
            let _ = s.send_to(&payload, &dst.into());
            std::thread::sleep(gap);
        }
    })
}

/// Sends `n` copies of `payload` from `src` (an address in `ns`, any port) to
/// `dst`:3784 with IP TTL `ttl`, `gap` apart.
fn send_bfd_from(ns: &NetNs, src: &str, dst: &str, ttl: u32, payload: &[u8], n: usize, gap: Duration) {
    let (src, dst) = (format!("{src}:0"), format!("{dst}:3784"));
    let open = move || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_ttl_v4(ttl).unwrap();
        s.bind(&src.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        (s, dst.parse().unwrap())
    };
    send_in(ns, open, payload, n, gap).join().unwrap();
}

/// A node's configuration in the BFD tests: a `bfd_instance` from
/// `me` to `peer` (3 x 50 ms), tracked with weight 0 by a `state MASTER` VRRP instance of
/// its own VRID holding `vip`.
fn bfd_conf(me: &str, peer: &str, dev: &str, vrid: u8, vip: &str) -> String {
    format!(
        "global_defs {{\n router_id {dev}\n}}\n\
         bfd_instance to_peer {{\n neighbor_ip {peer}\n source_ip {me}\n min_rx 50\n min_tx 50\n multiplier 3\n}}\n\
         vrrp_instance VI_{vrid} {{\n state MASTER\n interface {dev}\n virtual_router_id {vrid}\n priority 100\n\
         advert_int 1\n virtual_ipaddress {{\n  {vip}/24\n }}\n track_bfd {{\n  to_peer\n }}\n}}\n"
    )
}

/// BFD with a real keepalived (its bfd process, Debian's build has BFD): each side runs a
/// `bfd_instance` to the other and a VRRP instance (its own VRID) that tracks it with
/// weight 0, so each instance is in FAULT until the session is Up: both VIPs appearing
/// proves the sessions came Up on both sides. Forged BFD packets that would take the
/// session down (state Down, the right discriminators) are dropped and counted when they
/// arrive with TTL 254 (sent from beyond the link), from an address that is not the
/// neighbour, or malformed; the session stays Up. A reload that changes the
/// bfd_instance's weight alone keeps the session (same discriminator, still Up once); one
/// that changes its timers restarts it, and it comes Up again (the listening socket
/// carries over). Then keepalived is killed: rvs-agent's session expires after its
/// detection time (3 x 50 ms) and its instance leaves MASTER, long before VRRP alone
/// would notice anything.
#[test]
fn bfd_with_keepalived_comes_up_resists_forgeries_and_faults_the_instance_when_the_peer_dies() {
    if !can_run() {
        return;
    }
    let (dir, _veth, ka, ag) = pair();
    std::fs::write(dir.0.join("keepalived.conf"), bfd_conf("10.77.0.1", "10.77.0.2", &ka.dev, 71, "10.77.0.101"))
        .unwrap();
    std::fs::write(dir.0.join("agent.conf"), bfd_conf("10.77.0.2", "10.77.0.1", &ag.dev, 72, "10.77.0.102")).unwrap();
    let (ka_log, ag_log) = (dir.0.join("keepalived.log"), dir.0.join("agent.log"));
    let sock = dir.0.join("agent.sock");
    with_logs(&[&ka_log, &ag_log], || {
        let ka_proc = spawn_logged(&ka.ns, &keepalived_args(&dir.0), &ka_log);
        let ag_proc = spawn_logged(&ag.ns, &agent_args(&dir.0), &ag_log);
        let t = wait_for("both BFD sessions Up (both VIPs held)", Duration::from_secs(20), || {
            has_vip(&ag, "10.77.0.102") && has_vip(&ka, "10.77.0.101")
        });
        eprintln!("both instances MASTER {t:?} after start");
        let st = rvs_agent::status::query(&sock).unwrap();
        let b = &st.bfd[0];
        assert_eq!((b.state.name(), b.remote_state.name(), b.ups), ("Up", "Up", 1), "{b:?}");
        assert_eq!(b.detection_time_ms, 150.0, "keepalived's multiplier 3 x 50 ms");
        // The session's own packet with state Down: what a forger must send to end it.
        let mut down = [0u8; 24];
        down[0] = 0x20; // version 1, no diagnostic
        down[1] = 0x40; // Down
        down[2] = 3;
        down[3] = 24;
        down[4..8].copy_from_slice(&b.remote_discr.to_be_bytes());
        down[8..12].copy_from_slice(&b.local_discr.to_be_bytes());
        down[12..16].copy_from_slice(&1_000_000u32.to_be_bytes());
        down[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        // From the neighbour's address but one hop further away.
        let gap = Duration::from_millis(2);
        send_bfd_from(&ka.ns, "10.77.0.1", "10.77.0.2", 254, &down, 20, gap);
        // From another host of the link.
        ka.ns.ip(&["addr", "add", "10.77.0.9/24", "dev", &ka.dev]);
        send_bfd_from(&ka.ns, "10.77.0.9", "10.77.0.2", 255, &down, 20, gap);
        // Malformed: version 0, and a length field that is not the datagram's.
        let mut bad = down;
        bad[0] = 0;
        send_bfd_from(&ka.ns, "10.77.0.1", "10.77.0.2", 255, &bad, 10, gap);
        let mut bad = down;
        bad[3] = 48;
        send_bfd_from(&ka.ns, "10.77.0.1", "10.77.0.2", 255, &bad, 10, gap);
        wait_for("the forgeries counted", Duration::from_secs(5), || {
            let d = rvs_agent::status::query(&sock).unwrap().bfd_drops;
            d.ttl == 20 && d.no_session == 20 && d.invalid == 20
        });
        // A flood from another host of the link (bounded: 5,000 packets, back to back):
        // counted, and the session never missed its neighbour's packets for a detection
        // time (3 x 50 ms).
        send_bfd_from(&ka.ns, "10.77.0.9", "10.77.0.2", 255, &down, 5_000, Duration::ZERO);
        wait_for("every flood packet counted", Duration::from_secs(5), || {
            rvs_agent::status::query(&sock).unwrap().bfd_drops.no_session == 20 + 5_000
        });
        let st = rvs_agent::status::query(&sock).unwrap();
        eprintln!("after the flood: {:?}", st.bfd_drops);
        assert_eq!((st.bfd[0].state.name(), st.bfd[0].ups), ("Up", 1), "the flood moved the session: {:?}", st.bfd[0]);
        let st = rvs_agent::status::query(&sock).unwrap();
        assert_eq!((st.bfd[0].state.name(), st.bfd[0].ups), ("Up", 1), "a forgery moved the session: {:?}", st.bfd[0]);
        assert!(has_vip(&ag, "10.77.0.102"), "a forgery took the instance out of MASTER");
        // Reloads: the weight alone, then the timers.
        let agent_conf = bfd_conf("10.77.0.2", "10.77.0.1", &ag.dev, 72, "10.77.0.102");
        let reload = |text: String| {
            std::fs::write(dir.0.join("agent.conf"), text).unwrap();
            let pid = nix::unistd::Pid::from_raw(ag_proc.pid() as i32);
            let applied = rvs_agent::status::query(&sock).unwrap().reloads.applied;
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
            wait_for("the reload", Duration::from_secs(5), || {
                rvs_agent::status::query(&sock).unwrap().reloads.applied > applied
            });
        };
        let weighted = agent_conf
            .replace(" multiplier 3\n", " multiplier 3\n weight -50\n")
            .replace("  to_peer\n", "  to_peer weight 0\n");
        assert_ne!(weighted, agent_conf);
        reload(weighted.clone());
        std::thread::sleep(Duration::from_millis(500));
        let st = rvs_agent::status::query(&sock).unwrap();
        assert_eq!(
            (st.bfd[0].state.name(), st.bfd[0].ups, st.bfd[0].local_discr),
            ("Up", 1, b.local_discr),
            "a weight changed alone restarted the session: {:?}",
            st.bfd[0]
        );
        reload(weighted.replace(" min_tx 50\n", " min_tx 60\n"));
        wait_for("the restarted session Up", Duration::from_secs(10), || {
            let b2 = &rvs_agent::status::query(&sock).unwrap().bfd[0];
            b2.state.name() == "Up" && b2.local_discr != b.local_discr
        });
        let st = rvs_agent::status::query(&sock).unwrap();
        assert_eq!(st.bfd[0].error, None);
        let log = std::fs::read_to_string(&ag_log).unwrap();
        assert!(!log.contains("BFD socket"), "the restarted session could not open its sockets at once:\n{log}");
        assert!(log.contains("BFD session restarts"), "{log}");
        wait_for("the instance MASTER again", Duration::from_secs(10), || has_vip(&ag, "10.77.0.102"));
        // The neighbour dies without a word.
        drop(ka_proc);
        kill_all_in(&ka.ns);
        let t =
            wait_for("rvs-agent's instance to leave MASTER", Duration::from_secs(2), || !has_vip(&ag, "10.77.0.102"));
        eprintln!("VIP released {t:?} after keepalived was killed (BFD detection time 150 ms)");
        let st = rvs_agent::status::query(&sock).unwrap();
        assert_eq!((st.bfd[0].state.name(), st.bfd[0].diag.as_str()), ("Down", "Control Detection Time Expired"));
        assert_eq!(rvs_agent::status::state_name(st.instances[0].state), "FAULT");
    });
}

/// BFD over IPv6 with keepalived (its default hop limit 64, RFC 5881's port 3784): both
/// sessions come Up (each side's instance leaves FAULT), and keepalived killed takes
/// rvs-agent's instance out of MASTER within its detection time.
#[test]
fn bfd_over_ipv6_with_keepalived() {
    if !can_run() {
        return;
    }
    let (dir, _veth, ka, ag) = pair();
    std::fs::write(dir.0.join("keepalived.conf"), bfd_conf("fd00:77::1", "fd00:77::2", &ka.dev, 81, "10.77.0.111"))
        .unwrap();
    std::fs::write(dir.0.join("agent.conf"), bfd_conf("fd00:77::2", "fd00:77::1", &ag.dev, 82, "10.77.0.112")).unwrap();
    let (ka_log, ag_log) = (dir.0.join("keepalived.log"), dir.0.join("agent.log"));
    let sock = dir.0.join("agent.sock");
    with_logs(&[&ka_log, &ag_log], || {
        let ka_proc = spawn_logged(&ka.ns, &keepalived_args(&dir.0), &ka_log);
        let _ag_proc = spawn_logged(&ag.ns, &agent_args(&dir.0), &ag_log);
        wait_for("both BFD sessions Up over IPv6 (both VIPs held)", Duration::from_secs(20), || {
            has_vip(&ag, "10.77.0.112") && has_vip(&ka, "10.77.0.111")
        });
        let st = rvs_agent::status::query(&sock).unwrap();
        assert_eq!((st.bfd[0].state.name(), st.bfd[0].neighbor.to_string()), ("Up", "fd00:77::1".to_string()));
        drop(ka_proc);
        kill_all_in(&ka.ns);
        let t =
            wait_for("rvs-agent's instance to leave MASTER", Duration::from_secs(2), || !has_vip(&ag, "10.77.0.112"));
        eprintln!("VIP released {t:?} after keepalived was killed");
    });
}

/// Starts sending `n` copies of the VRRP message `msg` from `src` (an address in `ns`) to
/// 224.0.0.18 with multicast TTL `ttl`, `gap` apart.
fn send_vrrp_from(ns: &NetNs, src: &str, ttl: u32, msg: &[u8], n: usize, gap: Duration) -> std::thread::JoinHandle<()> {
    let src: std::net::Ipv4Addr = src.parse().unwrap();
    let open = move || {
        let proto = Some(socket2::Protocol::from(112));
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::RAW, proto).unwrap();
        s.set_multicast_if_v4(&src).unwrap();
        s.set_multicast_ttl_v4(ttl).unwrap();
        s.bind(&std::net::SocketAddr::from((src, 0)).into()).unwrap();
        (s, "224.0.0.18:0".parse().unwrap())
    };
    send_in(ns, open, msg, n, gap)
}

/// Forged adverts neither silence rvs-agent's master nor move keepalived's backup
/// (VRRPv3, 0.1 s): from the link, priority-0 adverts ("the master is leaving", which a
/// backup answers within its skew time) sent with TTL 254 (from beyond the link) are
/// dropped (counted `ttl`), and a flood of 10,000 adverts of the group with a bad
/// checksum is counted too; through both the agent keeps advertising every 0.1 s (its
/// counter says so) and keepalived never leaves BACKUP. (keepalived 2.2.7's own master restarts its advert
/// timer on every packet of its VRID it reads, valid or not: the same stream silences
/// it, and its backup takes over; rvs-agent's timers move only on accepted adverts.)
#[test]
fn forged_adverts_and_a_flood_neither_silence_the_master_nor_move_the_backup() {
    if !can_run() {
        return;
    }
    use rvs_agent::vrrp::packet::{Advert, Auth, ChecksumMode, Version};
    let s = Setup {
        version: 3,
        family: Family::V4,
        advert_int: "0.1",
        agent_prio: 150,
        ka_prio: 100,
        vrid: 77,
        unicast: false,
        old_checksum: false,
        ah: false,
    };
    let (dir, _veth, ka, ag) = pair();
    std::fs::write(dir.0.join("keepalived.conf"), s.conf(&ka.dev, s.ka_prio, "", "")).unwrap();
    std::fs::write(dir.0.join("agent.conf"), s.conf(&ag.dev, s.agent_prio, "", "")).unwrap();
    let (ka_log, ag_log) = (dir.0.join("keepalived.log"), dir.0.join("agent.log"));
    let sock = dir.0.join("agent.sock");
    with_logs(&[&ka_log, &ag_log], || {
        let _ka_proc = spawn_logged(&ka.ns, &keepalived_args(&dir.0), &ka_log);
        let _ag_proc = spawn_logged(&ag.ns, &agent_args(&dir.0), &ag_log);
        wait_for("rvs-agent master", Duration::from_secs(10), || has_vip(&ag, s.vip()));
        std::thread::sleep(Duration::from_millis(500));
        assert!(!has_vip(&ka, s.vip()));
        let ka_before = std::fs::read_to_string(&ka_log).unwrap().len();
        // The forger: a third host of the link (an address of its own on keepalived's side).
        ka.ns.ip(&["addr", "add", "10.77.0.9/24", "dev", &ka.dev]);
        let leaving = Advert {
            version: Version::V3,
            vrid: 77,
            priority: 0,
            interval_cs: 10,
            addresses: vec![s.vip().parse().unwrap()],
            auth: Auth::None,
        };
        let (src, group) = ("10.77.0.9".parse().unwrap(), "224.0.0.18".parse().unwrap());
        let msg = leaving.encode(src, group, ChecksumMode::PseudoHeader).unwrap();
        let dropped = |reason: &str| {
            let st = rvs_agent::status::query(&sock).unwrap();
            st.instances[0].counters.adverts_dropped.get(reason).copied().unwrap_or(0)
        };
        let sent = || rvs_agent::status::query(&sock).unwrap().instances[0].counters.adverts_sent;
        // One second: the VIP stays, and the master's adverts go on (about 10; keepalived's
        // backup restarts its own timer on junk too, so its staying BACKUP alone would not
        // show it).
        let steady = |what: &str| {
            let (t, before) = (Instant::now(), sent());
            while t.elapsed() < Duration::from_secs(1) {
                assert!(has_vip(&ag, s.vip()) && !has_vip(&ka, s.vip()), "{what} moved the VIP");
                std::thread::sleep(Duration::from_millis(10));
            }
            let n = sent() - before;
            assert!(n >= 5, "{what}: the master sent {n} adverts in a second (10 due)");
        };
        send_vrrp_from(&ka.ns, "10.77.0.9", 254, &msg, 50, Duration::from_millis(5)).join().unwrap();
        steady("priority-0 adverts at TTL 254");
        assert!(dropped("ttl") >= 50, "{}", dropped("ttl"));
        let mut junk = msg.clone();
        junk[7] ^= 0xff;
        let flood = send_vrrp_from(&ka.ns, "10.77.0.9", 255, &junk, 10_000, Duration::ZERO);
        steady("a flood of adverts with a bad checksum");
        flood.join().unwrap();
        eprintln!("dropped: ttl {}, checksum {}", dropped("ttl"), dropped("checksum"));
        assert!(dropped("checksum") > 1000, "{}", dropped("checksum"));
        let ka_text = std::fs::read_to_string(&ka_log).unwrap();
        let since = &ka_text[ka_before.min(ka_text.len())..];
        assert!(!since.contains("Entering MASTER STATE"), "keepalived left BACKUP:\n{since}");
    });
}
