//! LACP: dpdk0 is an 802.3ad (mode 4) bond of two tap slaves (`bs0`, `bs1`) facing a
//! real 802.3ad partner: `dpdk-testpmd` with a mode-4 bond of its own over two tap
//! ports (`ps0`, `ps1`), forwarding (io) between that bond and an af_packet port on the
//! client's veth. nftables (`fwd` at netdev ingress) wires bs0 to ps0 and bs1 to ps1,
//! two cables. Both bonds negotiate; rvsd's view and log show both slaves aggregated.
//!
//! A 100 MB download then runs; the member carrying it is cut mid-transfer (both ends'
//! links down, as a pulled cable) and the download completes bit-exact over the other
//! member. DPDK's 802.3ad machine polls its slaves' links every 100 ms (tap link
//! interrupts do not arrive here, see tests/bond.rs) and stops distributing on one
//! without link, at both ends; no LACP timeout is waited for. The cable back in, the
//! member rejoins the aggregation.

use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use rvs_e2e::{serial, Topology, VIP4};
use testnet::ChildGuard;

/// The partner: dpdk-testpmd in the lb namespace, killed (and its DPDK runtime
/// directory removed) on drop.
struct Partner {
    // Held open: a non-interactive testpmd exits when its stdin ends.
    _stdin: ChildStdin,
    guard: ChildGuard,
    log: PathBuf,
    prefix: String,
}

impl Partner {
    /// Starts testpmd in `t`'s lb namespace: a mode-4 bond over taps `ps0`, `ps1`
    /// (layer3+4 transmit hash) and an af_packet port on the client's veth, forwarded
    /// to each other. Its forwarding lcore is core 0 (rvsd's worker polls core 1).
    fn start(t: &Topology) -> Partner {
        let log = t.dir.join("testpmd.log");
        let prefix = format!("rvslacp{}", t.id);
        let out = std::fs::File::create(&log).expect("testpmd log");
        let mut child = Command::new("ip")
            // Line-buffered: its "Press enter to exit" says it forwards.
            .args(["netns", "exec", t.lb.name(), "stdbuf", "-oL", "dpdk-testpmd", "--no-pci", "--no-huge", "-m", "256"])
            .args(["--file-prefix", &prefix, "-l", "0,1", "--main-lcore", "1", "--log-level=lib.eal:warning"])
            .args(["--vdev", "net_tap0,iface=ps0", "--vdev", "net_tap1,iface=ps1"])
            .args(["--vdev", "net_bonding0,mode=4,slave=net_tap0,slave=net_tap1,xmit_policy=l34"])
            .args(["--vdev", "net_af_packet0,iface=rvsdemo-lb0"])
            // Ports: 0, 1 the taps (the bond's), 2 the bond, 3 af_packet.
            .args(["--", "--forward-mode=io", "--portmask=0xc", "--auto-start", "--total-num-mbufs=8192"])
            .stdin(Stdio::piped())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start dpdk-testpmd");
        let stdin = child.stdin.take().expect("testpmd stdin");
        let mut p = Partner { _stdin: stdin, guard: ChildGuard::new(child), log, prefix };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.log().contains("Press enter to exit") {
            assert!(p.guard.running(), "testpmd exited:\n{}", p.log());
            assert!(Instant::now() < deadline, "testpmd did not start forwarding within 30 s:\n{}", p.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.guard.pid().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.guard.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// Two cables: bs0 <-> ps0 and bs1 <-> ps1.
const CABLES: &str = "table netdev lacpwire { \
    chain bs0 { type filter hook ingress device \"bs0\" priority 0; fwd to \"ps0\"; }; \
    chain ps0 { type filter hook ingress device \"ps0\" priority 0; fwd to \"bs0\"; }; \
    chain bs1 { type filter hook ingress device \"bs1\" priority 0; fwd to \"ps1\"; }; \
    chain ps1 { type filter hook ingress device \"ps1\" priority 0; fwd to \"bs1\"; }; }";

/// A kernel counter of interface `dev` in the lb namespace (`rx_packets` of a tap: what
/// DPDK sent on it).
fn counter(t: &Topology, dev: &str, name: &str) -> u64 {
    let out = t.lb.exec(&["cat", &format!("/sys/class/net/{dev}/statistics/{name}")]);
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a counter")
}

/// rvsd's bond line for dpdk0 (`bond mode lacp xmit ... slaves: ...`).
fn bond_line(t: &Topology) -> String {
    let links = t.cli_ok("rvsip", &["link", "show", "dpdk0"]);
    links.lines().find(|l| l.contains("bond mode")).unwrap_or_default().trim().to_string()
}

/// rvsd's log lines about `slave` joining or leaving the aggregation.
fn lacp_lines(t: &Topology, slave: &str) -> Vec<String> {
    let slave = format!("slave={slave} ");
    t.rvsd_log().lines().filter(|l| l.contains("bond: LACP slave") && l.contains(&slave)).map(String::from).collect()
}

/// Polls until rvsd's last line about `slave` joining or leaving holds `what`; returns it.
fn wait_lacp_line(t: &Topology, slave: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = lacp_lines(t, slave).pop().filter(|l| l.contains(what)) {
            return line;
        }
        assert!(Instant::now() < deadline, "rvsd logs {slave} {what} within 10 s:\n{}", t.rvsd_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The byte after `key=0x` in a log line.
fn state_byte(line: &str, key: &str) -> u8 {
    let at = line.find(&format!("{key}=0x")).unwrap_or_else(|| panic!("{key} in {line}")) + key.len() + 3;
    u8::from_str_radix(&line[at..at + 2], 16).unwrap_or_else(|_| panic!("{key} in {line}"))
}

/// Polls until rvsd's bond line is `want`; returns how long that took.
fn wait_bond(t: &Topology, want: &str, within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let line = bond_line(t);
        if line == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what} within {within:?}: rvsd shows `{line}`\n{}", t.rvsd_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

const BOTH_IN: &str = "bond mode lacp xmit layer3+4 slaves: net_tap_bs0 (active,up) net_tap_bs1 (active,up)";

#[test]
fn lacp_bond_negotiates_with_a_partner_and_survives_a_member_cut() {
    let _g = serial();
    let mut t = Topology::build(rvs_e2e::Spec::default()).expect("topology");
    let want = t.serve_big_file().expect("big.bin");
    let mut port = toml::toml! { name = "dpdk0" promiscuous = true };
    port.insert(
        "bond".into(),
        toml::Value::Table(toml::toml! {
            mode = "lacp"
            slaves = ["net_tap_bs0,iface=bs0", "net_tap_bs1,iface=bs1"]
            xmit_policy = "layer3+4"
        }),
    );
    t.config["port"].as_array_mut().expect("ports")[0] = toml::Value::Table(port);
    // The four taps made and up beforehand (each DPDK tap port takes its interface
    // over) and the cables plugged: each end's first LACPDUs reach the other (a port
    // that has given up on a silent partner sends only every 30 s, the slow periodic
    // time), and each tap is running when its bond starts it. DPDK's bond takes a tap
    // slave in only if its link is up at that instant (the kernel sets a tap running
    // just after it goes up, and tap link interrupts do not reach the bond here); a
    // slave left out is never used.
    for tap in ["bs0", "bs1", "ps0", "ps1"] {
        t.lb.ip(&["tuntap", "add", "dev", tap, "mode", "tap", "multi_queue"]);
        t.lb.ip(&["link", "set", tap, "up"]);
    }
    let out = t.lb.exec(&["nft", CABLES]);
    assert!(out.status.success(), "cables: {}", String::from_utf8_lossy(&out.stderr));
    t.start_rvsd_bare().expect("rvsd starts with a LACP bond");
    let partner = Partner::start(&t);
    let partner_at = Instant::now();
    // testpmd's io forwarding calls a port's transmit only with frames to send, and its
    // bond sends LACPDUs from inside transmit calls: a frame from the client every
    // 50 ms lets them out (rvsd's workers poll idle ports themselves).
    let _trickle = t.client.spawn(&["ping", "-q", "-i", "0.05", VIP4]);

    // Negotiation: both slaves collecting and distributing, at both ends.
    wait_bond(&t, BOTH_IN, Duration::from_secs(30), "both slaves distributing");
    eprintln!("LACP: both slaves distributing {:?} after the partner started", partner_at.elapsed());
    for slave in ["net_tap_bs0", "net_tap_bs1"] {
        let line = wait_lacp_line(&t, slave, "aggregated with its partner");
        // Synchronization, collecting, distributing (0x38) at both ends.
        for key in ["actor", "partner"] {
            assert_eq!(
                state_byte(&line, key) & 0x38,
                0x38,
                "{slave}'s {key} in sync, collecting, distributing: {line}"
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !t.ping(VIP4, 1) {
        assert!(Instant::now() < deadline, "the VIP answers through the aggregation");
    }

    // A long download (rate-limited so the cut lands in its middle).
    let sent = |t: &Topology| [counter(t, "bs0", "rx_packets"), counter(t, "bs1", "rx_packets")];
    let before = sent(&t);
    let client = t.client.name().to_string();
    let dl = std::thread::spawn(move || {
        let cmd = format!("curl -sS --max-time 90 --limit-rate 20M http://{VIP4}/big.bin | sha256sum");
        Command::new("ip").args(["netns", "exec", &client, "sh", "-c", &cmd]).output().expect("curl")
    });
    // The member carrying it: the first to have sent 10 000 frames (15 MB) of it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let carrier = loop {
        let now = sent(&t);
        if let Some(i) = (0..2).find(|&i| now[i] - before[i] > 10_000) {
            break i;
        }
        assert!(Instant::now() < deadline, "the download is under way: frames sent {before:?} -> {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (cut_bs, cut_ps, kept_bs) = [("bs0", "ps0", "bs1"), ("bs1", "ps1", "bs0")][carrier];
    let at_cut = sent(&t);
    let kept = 1 - carrier;
    assert!(
        at_cut[kept] - before[kept] < 2_000,
        "one flow, one member: {kept_bs} had carried none of it: frames sent {before:?} -> {at_cut:?}"
    );
    t.lb.ip(&["link", "set", cut_bs, "down"]);
    t.lb.ip(&["link", "set", cut_ps, "down"]);
    let cut_at = Instant::now();
    let (slaves_in, slave_out) = match carrier {
        0 => ("net_tap_bs0 (backup,down) net_tap_bs1 (active,up)", "net_tap_bs0"),
        _ => ("net_tap_bs0 (active,up) net_tap_bs1 (backup,down)", "net_tap_bs1"),
    };
    let took = wait_bond(
        &t,
        &format!("bond mode lacp xmit layer3+4 slaves: {slaves_in}"),
        Duration::from_secs(10),
        "the cut member out",
    );
    eprintln!("LACP: {cut_bs} cut (it had carried the download); out of the aggregation after {took:?}");

    let out = dl.join().expect("download thread");
    let got = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string();
    assert_eq!(got, want, "the download survives the cut bit-exact: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("LACP: download done {:?} after the cut", cut_at.elapsed());
    let after = sent(&t);
    assert!(
        after[kept] - at_cut[kept] > 20_000,
        "the rest of the download went over {kept_bs}: frames sent {at_cut:?} at the cut, {after:?} at the end"
    );
    wait_lacp_line(&t, slave_out, "left the aggregation");

    // The cable back in: the member rejoins.
    t.lb.ip(&["link", "set", cut_bs, "up"]);
    t.lb.ip(&["link", "set", cut_ps, "up"]);
    let took = wait_bond(&t, BOTH_IN, Duration::from_secs(30), "the member back in the aggregation");
    eprintln!("LACP: {cut_bs} back in the aggregation {took:?} after its link came up");
    wait_lacp_line(&t, slave_out, "aggregated with its partner");
    assert!(t.ping(VIP4, 1), "and the VIP still answers");
    drop(partner);
}
