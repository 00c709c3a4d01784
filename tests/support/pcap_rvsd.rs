//! rvsd on two DPDK pcap ports (`net_pcap`), without namespaces: each port reads a
//! capture file of crafted frames once, at start, and writes what it sends to another
//! file, so a test decides exactly what arrives and reads back exactly what left, with
//! no kernel on either side (`drops.rs`, `fragments.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use testnet::{unique, ChildGuard};
use wire::EthernetAddress;

use crate::{pcap, serial, workspace_bin};

/// The pcap PMD's MAC of port 0 (dpdk0): 02:70:63:61:70 ("pcap") and the device's index.
pub const M0: EthernetAddress = EthernetAddress([0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
/// The pcap PMD's MAC of port 1 (dpdk1).
pub const M1: EthernetAddress = EthernetAddress([0x02, 0x70, 0x63, 0x61, 0x70, 0x01]);
/// The clients' MAC: what a configuration's neighbour on port 0 is given.
pub const CLIENT: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xc1]);
/// The real servers' MAC: what a configuration's neighbours on port 1 are given.
pub const SERVER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x51]);

/// What to run: the frames each port reads and the configuration past the ports.
pub struct Spec<'a> {
    /// Names the ports (`{tag}0`, `{tag}1`), the EAL file prefix and the working
    /// directory (`rvs{tag}` and a unique suffix).
    pub tag: &'a str,
    /// The frames port 0 (the clients' side) reads, in order.
    pub in0: &'a [Vec<u8>],
    /// The frames port 1 (the servers' side) reads, in order.
    pub in1: &'a [Vec<u8>],
    /// Port 1's MTU, where not the default.
    pub mtu1: Option<u16>,
    /// The configuration past the ports and their addresses, without `[control]`
    /// (which the harness writes: the socket is in the working directory).
    pub config: &'a str,
}

/// A running rvsd on pcap ports, in a working directory of its own (capture files,
/// configuration, log, control socket). Holds the e2e lock ([`serial`]) while it
/// lives; dropping it kills rvsd and removes the directory and DPDK's runtime files.
pub struct PcapRvsd {
    rvsd: Option<ChildGuard>,
    prefix: String,
    dir: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl PcapRvsd {
    /// Writes the capture files and the configuration (the common part: no hugepages,
    /// one worker, a small pool, the two pcap ports and their addresses; then
    /// `spec.config`; then the control socket), has rvsd check it (the test fails on a
    /// refusal) and starts rvsd with its output in the log. The addresses: on port 0
    /// 198.51.100.1/24 and the VIPs 192.0.2.1 and 2001:db8:f::1, on port 1 the local
    /// addresses (sapool) 10.1.0.1/8 and fd00::1/64.
    pub fn start(spec: &Spec<'_>) -> PcapRvsd {
        let _serial = serial();
        let prefix = unique(&format!("rvs{}", spec.tag));
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).expect("working directory");
        let mut rig = PcapRvsd { rvsd: None, prefix, dir, _serial };
        pcap::write_frames(&rig.path("in0.pcap"), spec.in0);
        pcap::write_frames(&rig.path("in1.pcap"), spec.in1);
        let cfg = rig.path("rvsd.toml");
        std::fs::write(&cfg, rig.config(spec)).expect("write the configuration");
        let check = Command::new(workspace_bin("rvsd")).arg("--check-config").arg(&cfg).output().unwrap();
        assert!(check.status.success(), "config refused: {}", String::from_utf8_lossy(&check.stderr));

        let logf = std::fs::File::create(rig.path("rvsd.log")).unwrap();
        let child = Command::new(workspace_bin("rvsd"))
            .arg("-c")
            .arg(&cfg)
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start rvsd");
        rig.rvsd = Some(ChildGuard::new(child));
        rig
    }

    /// The whole configuration of `spec`.
    fn config(&self, spec: &Spec<'_>) -> String {
        let (tag, prefix) = (spec.tag, &self.prefix);
        let p = |n: &str| self.path(n).display().to_string();
        let (in0, out0, in1, out1) = (p("in0.pcap"), p("out0.pcap"), p("in1.pcap"), p("out1.pcap"));
        let mtu1 = spec.mtu1.map(|m| format!("mtu = {m}\n")).unwrap_or_default();
        format!(
            r#"
[eal]
args = ["--no-huge", "-m", "256", "--log-level=lib.eal:warning"]
file_prefix = "{prefix}"

[workers]
lcores = [1]
cpus = [1]

[mempool]
mbufs = 4095
cache = 64

[[port]]
name = "{tag}0"
vdev = "net_pcap0,rx_pcap={in0},tx_pcap={out0}"
rss = false
twin = "none"

[[port]]
name = "{tag}1"
vdev = "net_pcap1,rx_pcap={in1},tx_pcap={out1}"
rss = false
{mtu1}twin = "none"

[[addr]]
dev = "{tag}0"
addr = "198.51.100.1/24"

[[addr]]
dev = "{tag}0"
addr = "192.0.2.1/32"

[[addr]]
dev = "{tag}0"
addr = "2001:db8:f::1/128"

[[addr]]
dev = "{tag}1"
addr = "10.1.0.1/8"
sapool = true

[[addr]]
dev = "{tag}1"
addr = "fd00::1/64"
sapool = true
{config}
[control]
socket = "{sock}"
"#,
            config = spec.config,
            sock = p("rvsd.sock"),
        )
    }

    /// A file of the working directory: `out0.pcap` and `out1.pcap` are what the ports
    /// sent (complete once rvsd has stopped).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// rvsd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("rvsd.log")).unwrap_or_default()
    }

    /// Drops by name and the worker totals named in `totals` (`pkts_in`, `conns`, ...),
    /// each summed over the workers, from `rvsip --json stats`; `None` while rvsd does
    /// not answer.
    pub fn counters(&self, totals: &[&str]) -> Option<BTreeMap<String, u64>> {
        let out = Command::new(workspace_bin("rvsip"))
            .args(["--socket", &self.path("rvsd.sock").display().to_string(), "--json", "stats"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let mut sum = BTreeMap::new();
        for w in v["workers"].as_array()? {
            for k in totals {
                *sum.entry(k.to_string()).or_default() += w["totals"][k].as_u64()?;
            }
            for (k, n) in w["drops"].as_object()? {
                *sum.entry(k.clone()).or_default() += n.as_u64()?;
            }
        }
        Some(sum)
    }

    /// [`PcapRvsd::counters`] polled until every counter of `want` has its value, or
    /// until `deadline`; the last answer. Fails the test if rvsd exits meanwhile.
    pub fn wait_for(&mut self, totals: &[&str], want: &[(&str, u64)], deadline: Instant) -> BTreeMap<String, u64> {
        let mut got = BTreeMap::new();
        while Instant::now() < deadline {
            let running = self.rvsd.as_mut().is_some_and(ChildGuard::running);
            assert!(running, "rvsd exited:\n{}", self.log());
            if let Some(c) = self.counters(totals) {
                got = c;
                if want.iter().all(|(k, n)| got.get(*k) == Some(n)) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        got
    }

    /// Sends signal `sig` (`USR1`, `TERM`, ...) to rvsd.
    pub fn signal(&self, sig: &str) {
        if let Some(g) = &self.rvsd {
            let _ = Command::new("kill").args([&format!("-{sig}"), &g.pid().to_string()]).status();
        }
    }

    /// Stops rvsd with SIGTERM, waiting up to 15 s (so the ports' capture files are
    /// complete), and removes DPDK's runtime files.
    pub fn stop(&mut self) {
        self.signal("TERM");
        let stop = Instant::now() + Duration::from_secs(15);
        while self.rvsd.as_mut().is_some_and(ChildGuard::running) && Instant::now() < stop {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }

    /// The frames port 1 (the servers' side) sent, once rvsd has stopped.
    pub fn sent1(&self) -> Vec<Vec<u8>> {
        pcap::read_frames(&self.path("out1.pcap")).expect("port 1's capture")
    }
}

impl Drop for PcapRvsd {
    fn drop(&mut self) {
        self.rvsd = None;
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// Fails the test unless `got` holds exactly the counters of `want`: each at its value,
/// and nothing else (a drop that nothing provoked fails it too).
pub fn assert_counted(want: &[(&str, u64)], got: &BTreeMap<String, u64>) {
    for (k, n) in want {
        assert_eq!(got.get(*k), Some(n), "{k}: all counted {got:?}");
    }
    let unexpected: Vec<_> = got.keys().filter(|k| !want.iter().any(|(w, _)| w == k)).collect();
    assert!(unexpected.is_empty(), "counted, not provoked: {unexpected:?} in {got:?}");
}
