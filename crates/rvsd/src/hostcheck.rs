//! `rvsd --check-host -c FILE`: is this machine ready to run this configuration on real
//! NICs? One finding per item, each PASS, WARN or FAIL with what was found and the fix
//! (a command or a kernel parameter); docs/DEPLOY.md explains every item.
//!
//! The start checks rvsd runs anyway (lcores, devices, twins, control socket, group, file
//! prefix) are [`preflight::check_host`]'s and are reported here as they are, never
//! re-implemented; this module adds what a production host needs beyond them: hugepages
//! per NUMA node against what the config's mempool and EAL arguments take, hugetlbfs
//! mounts, the IOMMU, vfio-pci and the driver of each PCI device, NUMA locality of ports,
//! mempool and workers, CPU isolation, IRQs, the memlock limit, the CPU frequency
//! governor, MTUs and the kernel version.
//!
//! Everything is read from files under a root directory ([`Host`]): `/` on a live host, a
//! fixture tree in tests. Nothing is changed, and DPDK's EAL is never started (so no PCI
//! device is probed).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::preflight::{self, format_cpu_list, parse_cpu_list, PortDevice, Purpose, SocketPath, VdevNeed};

/// The items a run on the live host reports, in order; per-port items are reported as
/// `ITEM PORT` (`driver dpdk0`), or once as `ITEM` when the config has nothing to check
/// for them. (On a fixture tree, `start` and `socket`, which look at the live host, are
/// left out.)
pub const ITEMS: &[&str] = &[
    "config",
    "kernel",
    "start",
    "hugepages",
    "hugetlbfs",
    "iommu",
    "vfio",
    "driver",
    "numa",
    "isolation",
    "irqbalance",
    "memlock",
    "governor",
    "mtu",
    "socket",
];

/// DPDK 22.11's oldest supported kernel (its "System Requirements").
const MIN_KERNEL: (u32, u32) = (4, 14);

/// Hugepage memory DPDK takes beyond the mempool: memzones, rings, descriptor rings,
/// its malloc heap. A rough allowance, stated as such in the output.
const EAL_OVERHEAD: u64 = 64 << 20;

/// Bytes a frame adds to the MTU in an mbuf: Ethernet header, one VLAN tag, CRC.
const FRAME_OVERHEAD: u32 = 14 + 4 + 4;

/// The headroom DPDK keeps before the data in every mbuf.
const MBUF_HEADROOM: u32 = 128;

/// The capability that exempts a process from RLIMIT_MEMLOCK (vfio honours it).
const CAP_IPC_LOCK: u32 = 14;

/// How an item fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Ready.
    Pass,
    /// Works, but not as production wants it (or cannot be told).
    Warn,
    /// rvsd will not start, or not on this NIC.
    Fail,
}

impl Status {
    /// `PASS`, `WARN`, `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One item's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The item (one of [`ITEMS`]), with the port for per-port items (`driver dpdk0`).
    pub item: String,
    /// PASS, WARN or FAIL.
    pub status: Status,
    /// What was found.
    pub found: String,
    /// What to do about it (a command or a kernel parameter), when not PASS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn finding(item: impl Into<String>, status: Status, found: impl Into<String>, fix: Option<String>) -> Finding {
    Finding { item: item.into(), status, found: found.into(), fix }
}

fn pass(item: impl Into<String>, found: impl Into<String>) -> Finding {
    finding(item, Status::Pass, found, None)
}

/// The machine as files: `/proc`, `/sys`, `/etc` under a root directory.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    /// This machine.
    pub fn live() -> Host {
        Host { root: PathBuf::from("/") }
    }

    /// A tree laid out like `/` (tests).
    pub fn at(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    /// Whether this is the live machine (the start checks and the control socket are
    /// only looked at there).
    fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok()
    }

    fn read_trim(&self, rel: &str) -> Option<String> {
        self.read(rel).map(|s| s.trim().to_string())
    }

    fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// The names in a directory, sorted (none if it cannot be read).
    fn list(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn pci(&self, addr: &str) -> PathBuf {
        preflight::pci_sysfs(&self.root, addr)
    }
}

// ---------------------------------------------------------------------------------------
// Parsers (pure; unit-tested on fixture text).

/// The kernel command line's parameters (`key` or `key=value`), up to `--` (what
/// follows is init's).
pub fn cmdline_params(cmdline: &str) -> Vec<(&str, Option<&str>)> {
    cmdline
        .split_whitespace()
        .take_while(|t| *t != "--")
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k, Some(v.trim_matches('"'))),
            None => (t, None),
        })
        .collect()
}

/// The last value of `key` on the command line: `Some(None)` when given bare.
pub fn cmdline_get<'a>(cmdline: &'a str, key: &str) -> Option<Option<&'a str>> {
    cmdline_params(cmdline).into_iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The CPUs of a CPU-list parameter (`isolcpus=managed_irq,domain,2-9`, `nohz_full=2-9`,
/// `rcu_nocbs=all`): flags dropped; `all` (or a bare `rcu_nocbs`) is every CPU in `all`.
pub fn cmdline_cpus(value: Option<&str>, all: &BTreeSet<u32>) -> BTreeSet<u32> {
    let Some(v) = value else { return all.clone() };
    if v.trim() == "all" {
        return all.clone();
    }
    let list: Vec<&str> =
        v.split(',').filter(|p| p.trim().chars().next().is_some_and(|c| c.is_ascii_digit())).collect();
    parse_cpu_list(&list.join(",")).unwrap_or_default()
}

/// `major.minor` of a kernel release (`6.1.0-18-amd64` → `(6, 1)`).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The soft RLIMIT_MEMLOCK from `/proc/<pid>/limits`: `Some(None)` when unlimited.
pub fn memlock_soft(limits: &str) -> Option<Option<u64>> {
    let line = limits.lines().find(|l| l.starts_with("Max locked memory"))?;
    let soft = line["Max locked memory".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(None);
    }
    soft.parse().ok().map(Some)
}

/// Whether the effective capabilities (`CapEff:` of `/proc/<pid>/status`) hold `cap`.
pub fn has_capability(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|m| m & (1 << cap) != 0)
}

/// A hugetlbfs mount from `/proc/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugeMount {
    /// Where it is mounted.
    pub path: String,
    /// Its page size in KiB (`pagesize=`), `None` for the default size.
    pub page_kb: Option<u64>,
}

/// Parses a size with a K/M/G suffix (`2M`, `1G`, `2048k`) into KiB.
pub fn size_kb(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 10),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 0),
    };
    let n: u64 = num.parse().ok()?;
    // A bare number is bytes.
    Some(if mult == 0 { n / 1024 } else { n * mult })
}

/// The hugetlbfs mounts of a `/proc/mounts` text.
pub fn hugetlbfs_mounts(mounts: &str) -> Vec<HugeMount> {
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[2] == "hugetlbfs").then(|| HugeMount {
                path: f[1].to_string(),
                page_kb: f[3].split(',').find_map(|o| o.strip_prefix("pagesize=")).and_then(size_kb),
            })
        })
        .collect()
}

/// What the EAL arguments say about memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EalMemory {
    /// `--no-huge`: ordinary pages, no hugepages.
    pub no_huge: bool,
    /// `--socket-mem A,B,...`: MiB reserved at start on each node.
    pub socket_mem: Option<Vec<u64>>,
    /// `-m N`: MiB in all.
    pub total_mb: Option<u64>,
}

impl EalMemory {
    /// Reads `[eal] args` (`--socket-mem 4096`, `--socket-mem=4096,4096`, `-m 512`,
    /// `-m512`, `--no-huge`).
    pub fn from_args(args: &[String]) -> EalMemory {
        let mut m = EalMemory::default();
        let mut it = args.iter().map(String::as_str).peekable();
        while let Some(a) = it.next() {
            let mut value = |flag: &str, short: bool| -> Option<String> {
                if a == flag {
                    return it.next().map(str::to_string);
                }
                let rest = a.strip_prefix(flag)?;
                match rest.strip_prefix('=') {
                    Some(v) => Some(v.to_string()),
                    None if short && !rest.is_empty() => Some(rest.to_string()),
                    None => None,
                }
            };
            if a == "--no-huge" {
                m.no_huge = true;
            } else if let Some(v) = value("--socket-mem", false) {
                m.socket_mem = Some(v.split(',').map(|n| n.trim().parse().unwrap_or(0)).collect());
            } else if let Some(v) = value("-m", true) {
                m.total_mb = v.trim().parse().ok();
            }
        }
        m
    }
}

/// Bytes the packet buffer pool takes: per mbuf the mempool's object header (64), the
/// `rte_mbuf` (128) and the data room (cache-line aligned).
pub fn mempool_bytes(cfg: &Config) -> u64 {
    let room = u64::from(cfg.mempool.data_room).div_ceil(64) * 64;
    u64::from(cfg.mempool.mbufs) * (64 + 128 + room)
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

fn page_name(kb: u64) -> String {
    if kb >= 1 << 20 {
        format!("{} GiB", kb >> 20)
    } else {
        format!("{} MiB", kb >> 10)
    }
}

// ---------------------------------------------------------------------------------------
// The machine's facts the checks share.

/// Hugepages of one size on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pages {
    size_kb: u64,
    total: u64,
    free: u64,
}

impl Pages {
    fn bytes(&self, n: u64) -> u64 {
        n * self.size_kb * 1024
    }
}

/// Facts read once: NUMA nodes and their CPUs, the kernel command line, the config's
/// CPUs and PCI devices.
struct Facts<'a> {
    cfg: &'a Config,
    host: &'a Host,
    cmdline: String,
    /// node → its CPUs (one node 0 with every CPU when the kernel has no NUMA).
    nodes: BTreeMap<u32, BTreeSet<u32>>,
    /// The main lcore's CPU.
    main_cpu: u32,
    /// The workers' CPUs.
    workers: BTreeSet<u32>,
    devices: Vec<PortDevice>,
    mem: EalMemory,
}

impl<'a> Facts<'a> {
    fn read(cfg: &'a Config, host: &'a Host) -> Facts<'a> {
        let mut nodes = BTreeMap::new();
        for n in host.list("sys/devices/system/node") {
            let Some(id) = n.strip_prefix("node").and_then(|i| i.parse::<u32>().ok()) else { continue };
            let cpus = host
                .read(&format!("sys/devices/system/node/{n}/cpulist"))
                .and_then(|l| parse_cpu_list(&l).ok())
                .unwrap_or_default();
            nodes.insert(id, cpus);
        }
        if nodes.is_empty() {
            let all =
                host.read("sys/devices/system/cpu/online").and_then(|l| parse_cpu_list(&l).ok()).unwrap_or_default();
            nodes.insert(0, all);
        }
        let placements = preflight::lcore_placements(cfg);
        let main_cpu = placements.first().map(|p| p.2).unwrap_or(cfg.eal.main_lcore);
        let workers = placements.iter().skip(1).map(|p| p.2).collect();
        Facts {
            cfg,
            host,
            cmdline: host.read("proc/cmdline").unwrap_or_default(),
            nodes,
            main_cpu,
            workers,
            devices: preflight::port_devices(cfg),
            mem: EalMemory::from_args(&cfg.eal.args),
        }
    }

    fn all_cpus(&self) -> BTreeSet<u32> {
        self.nodes.values().flatten().copied().collect()
    }

    fn node_of(&self, cpu: u32) -> Option<u32> {
        self.nodes.iter().find(|(_, c)| c.contains(&cpu)).map(|(n, _)| *n)
    }

    fn pci(&self) -> impl Iterator<Item = &PortDevice> {
        self.devices.iter().filter(|d| d.pci)
    }

    fn any_pci(&self) -> bool {
        self.pci().next().is_some()
    }

    fn workers_list(&self) -> String {
        format_cpu_list(&self.workers)
    }

    /// Hugepages per node and size: the nodes' own counts, or the machine's under node 0
    /// without NUMA.
    fn hugepages(&self) -> BTreeMap<u32, Vec<Pages>> {
        let read_dir = |dir: &str| -> Vec<Pages> {
            self.host
                .list(dir)
                .iter()
                .filter_map(|d| {
                    let size_kb = d.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
                    let num = |f: &str| self.host.read_trim(&format!("{dir}/{d}/{f}")).and_then(|v| v.parse().ok());
                    Some(Pages { size_kb, total: num("nr_hugepages")?, free: num("free_hugepages").unwrap_or(0) })
                })
                .collect()
        };
        let mut out = BTreeMap::new();
        for n in self.nodes.keys() {
            let p = read_dir(&format!("sys/devices/system/node/node{n}/hugepages"));
            if !p.is_empty() {
                out.insert(*n, p);
            }
        }
        if out.is_empty() {
            out.insert(0, read_dir("sys/kernel/mm/hugepages"));
        }
        out
    }

    /// Hugepage bytes needed per node: `--socket-mem` per node, and the mempool (plus
    /// the EAL's own) on the main lcore's node (the pool is created from the main lcore,
    /// `SOCKET_ID_ANY`, so it lands there).
    fn hugepage_need(&self) -> (BTreeMap<u32, u64>, String) {
        let pool = mempool_bytes(self.cfg) + EAL_OVERHEAD;
        let main_node = self.node_of(self.main_cpu).unwrap_or(0);
        let mut need = BTreeMap::new();
        let why = format!(
            "mempool {} x {} B = {} + ~{} for the EAL",
            self.cfg.mempool.mbufs,
            mempool_bytes(self.cfg) / u64::from(self.cfg.mempool.mbufs.max(1)),
            mib(mempool_bytes(self.cfg)),
            mib(EAL_OVERHEAD)
        );
        let mut why = why;
        if let Some(sm) = &self.mem.socket_mem {
            for (n, mb) in sm.iter().enumerate() {
                if *mb > 0 {
                    need.insert(n as u32, mb << 20);
                }
            }
            why = format!("--socket-mem {}; {why}", sm.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
        } else if let Some(mb) = self.mem.total_mb {
            need.insert(main_node, mb << 20);
            why = format!("-m {mb}; {why}");
        }
        let e = need.entry(main_node).or_insert(0);
        *e = (*e).max(pool);
        (need, why)
    }
}

// ---------------------------------------------------------------------------------------
// The checks, one function per item.

fn check_kernel(f: &Facts) -> Finding {
    let release = f.host.read_trim("proc/sys/kernel/osrelease").unwrap_or_default();
    match kernel_version(&release) {
        Some(v) if v >= MIN_KERNEL => pass("kernel", format!("{release} (DPDK 22.11 needs 4.14 or later)")),
        Some(_) => finding(
            "kernel",
            Status::Fail,
            format!("{release}: DPDK 22.11 needs 4.14 or later"),
            Some("upgrade the kernel (Debian 12: linux-image-amd64, 6.1)".into()),
        ),
        None => finding(
            "kernel",
            Status::Warn,
            format!("cannot read the kernel release ({release:?})"),
            Some("uname -r".into()),
        ),
    }
}

/// rvsd's own start checks, as `--check-config` runs them (a socket or file prefix in
/// use is a warning here too); the control socket has its own line.
fn check_start(cfg: &Config, file: &str) -> Finding {
    let r = preflight::check_host(cfg, file, Purpose::Check);
    let own = |e: &&crate::config::ConfigError| e.key != "control.socket";
    let errs: Vec<String> = r.errors.iter().filter(own).map(|e| format!("{}: {}", e.key, e.problem)).collect();
    let warns: Vec<String> = r.warnings.iter().filter(own).map(|e| format!("{}: {}", e.key, e.problem)).collect();
    let what = "lcores, devices, kernel twins, control.group and eal.file_prefix as rvsd checks them at start";
    if !errs.is_empty() {
        finding(
            "start",
            Status::Fail,
            format!("{}: {}", what, errs.join("; ")),
            Some(format!("correct the keys named (rvsd --check-config {file} prints the same)")),
        )
    } else if !warns.is_empty() {
        finding(
            "start",
            Status::Warn,
            format!("{what}: {}", warns.join("; ")),
            Some("stop the running rvsd first, or give this one its own eal.file_prefix".into()),
        )
    } else {
        pass("start", format!("{what}: ok"))
    }
}

fn check_hugepages(f: &Facts) -> Finding {
    if f.mem.no_huge {
        return finding(
            "hugepages",
            Status::Warn,
            "eal.args has --no-huge: DPDK runs on ordinary pages (fine for tests and af_packet; \
             for production NICs DPDK needs hugepages: DMA-able memory, fewer TLB misses)",
            Some("remove --no-huge and -m from eal.args and reserve hugepages (docs/DEPLOY.md)".into()),
        );
    }
    let have = f.hugepages();
    let (need, why) = f.hugepage_need();
    let mut status = Status::Pass;
    let mut parts = Vec::new();
    let mut fixes = Vec::new();
    for (node, want) in &need {
        let pages = have.get(node).cloned().unwrap_or_default();
        let total: u64 = pages.iter().map(|p| p.bytes(p.total)).sum();
        let free: u64 = pages.iter().map(|p| p.bytes(p.free)).sum();
        let counts: Vec<String> =
            pages.iter().filter(|p| p.total > 0).map(|p| format!("{} x {}", p.total, page_name(p.size_kb))).collect();
        let counts = if counts.is_empty() { "none reserved".to_string() } else { counts.join(" + ") };
        parts.push(format!("node {node}: {} free of {} ({counts}), {} needed", mib(free), mib(total), mib(*want)));
        if free >= *want {
            continue;
        }
        if !f.nodes.contains_key(node) {
            status = Status::Fail;
            fixes.push(format!("this host has no NUMA node {node}: shorten --socket-mem"));
            continue;
        }
        if total >= *want {
            status = status.max(Status::Warn);
            fixes.push(format!("node {node}: pages are in use by another process (a running rvsd?)"));
            continue;
        }
        status = Status::Fail;
        // Grow the 2 MiB pool of the node by what is missing (1 GiB pages at boot).
        let two_mb = pages.iter().find(|p| p.size_kb == 2048).map(|p| p.total).unwrap_or(0);
        let missing = want - total;
        let n2 = two_mb + missing.div_ceil(2 << 20);
        let n1g = want.div_ceil(1 << 30);
        // At boot the kernel spreads `hugepages=N` over the nodes; `NODE:N` (Linux 5.16+)
        // puts them where they are needed.
        let boot = if f.nodes.len() > 1 { format!("{node}:{n1g}") } else { n1g.to_string() };
        fixes.push(format!(
            "echo {n2} > /sys/devices/system/node/node{node}/hugepages/hugepages-2048kB/nr_hugepages \
             (now), or at boot: default_hugepagesz=1G hugepagesz=1G hugepages={boot} on the kernel command line"
        ));
    }
    let found = format!("{} ({why})", parts.join("; "));
    let fix = (!fixes.is_empty()).then(|| fixes.join("; "));
    finding("hugepages", status, found, fix)
}

fn check_hugetlbfs(f: &Facts) -> Finding {
    let mounts = hugetlbfs_mounts(&f.host.read("proc/mounts").unwrap_or_default());
    let default_kb = f
        .host
        .read("proc/meminfo")
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("Hugepagesize:")).map(str::to_string))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    let mounted: BTreeSet<u64> = mounts.iter().filter_map(|m| m.page_kb.or(default_kb)).collect();
    let shown: Vec<String> = mounts
        .iter()
        .map(|m| format!("{} ({})", m.path, m.page_kb.or(default_kb).map(page_name).unwrap_or("?".into())))
        .collect();
    let shown = if shown.is_empty() { "no hugetlbfs mounted".to_string() } else { shown.join(", ") };
    if f.mem.no_huge {
        return pass("hugetlbfs", format!("not used (--no-huge); {shown}"));
    }
    // Sizes with pages reserved on any node.
    let reserved: BTreeSet<u64> = f.hugepages().values().flatten().filter(|p| p.total > 0).map(|p| p.size_kb).collect();
    if mounts.is_empty() {
        return finding(
            "hugetlbfs",
            Status::Fail,
            shown,
            Some(
                "mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages (systemd: systemctl start dev-hugepages.mount)"
                    .into(),
            ),
        );
    }
    let unmounted: Vec<u64> = reserved.difference(&mounted).copied().collect();
    if let Some(kb) = unmounted.first() {
        let p = page_name(*kb).replace(' ', "").replace("iB", "");
        return finding(
            "hugetlbfs",
            Status::Warn,
            format!("{shown}; {} pages are reserved but no mount has that size: DPDK cannot use them", page_name(*kb)),
            Some(format!("mkdir -p /dev/hugepages{p} && mount -t hugetlbfs -o pagesize={p} nodev /dev/hugepages{p}")),
        );
    }
    pass("hugetlbfs", shown)
}

fn check_iommu(f: &Facts) -> Finding {
    let units = f.host.list("sys/class/iommu");
    let groups = f.host.list("sys/kernel/iommu_groups").len();
    let noiommu = f.host.read_trim("sys/module/vfio/parameters/enable_unsafe_noiommu_mode").as_deref() == Some("Y");
    let on_cmdline: Vec<String> = ["intel_iommu", "amd_iommu", "iommu"]
        .iter()
        .filter_map(|k| cmdline_get(&f.cmdline, k).map(|v| format!("{k}={}", v.unwrap_or(""))))
        .collect();
    let cmd = if on_cmdline.is_empty() { "none".to_string() } else { on_cmdline.join(" ") };
    let fix = "add intel_iommu=on iommu=pt (AMD: on by default, iommu=pt) to GRUB_CMDLINE_LINUX in \
               /etc/default/grub, update-grub, reboot (and enable VT-d / AMD-Vi in the firmware)";
    if !units.is_empty() || groups > 0 {
        let pt = cmdline_get(&f.cmdline, "iommu") == Some(Some("pt"));
        let found = format!(
            "IOMMU on: {} ({groups} groups); command line: {cmd}{}",
            if units.is_empty() { "-".to_string() } else { units.join(", ") },
            if pt { "" } else { " (iommu=pt not set: the kernel's own drivers pay for translation)" }
        );
        return pass("iommu", found);
    }
    if !f.any_pci() {
        return pass("iommu", format!("not needed: no PCI device in the config (IOMMU off; command line: {cmd})"));
    }
    if noiommu {
        return finding(
            "iommu",
            Status::Warn,
            "no IOMMU; vfio runs in no-IOMMU mode (enable_unsafe_noiommu_mode=Y): the NIC can DMA anywhere \
             in memory, the kernel is tainted",
            Some(fix.into()),
        );
    }
    finding(
        "iommu",
        Status::Fail,
        format!("no IOMMU is active (/sys/class/iommu is empty; command line: {cmd}): vfio-pci cannot take the NICs"),
        Some(format!(
            "{fix}; or, without an IOMMU and accepting the risk: \
             echo 1 > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode"
        )),
    )
}

fn check_vfio(f: &Facts) -> Finding {
    let vfio = f.host.exists("sys/bus/pci/drivers/vfio-pci");
    let uio: Vec<&str> = ["igb_uio", "uio_pci_generic"]
        .into_iter()
        .filter(|d| f.host.exists(&format!("sys/bus/pci/drivers/{d}")))
        .collect();
    let fix = "modprobe vfio-pci; echo vfio-pci > /etc/modules-load.d/vfio-pci.conf";
    match (vfio, f.any_pci()) {
        (true, _) => pass("vfio", "vfio-pci is loaded"),
        (false, false) => pass("vfio", "not needed: no PCI device in the config (vfio-pci not loaded)"),
        (false, true) if !uio.is_empty() => finding(
            "vfio",
            Status::Warn,
            format!("vfio-pci is not loaded; {} is (uio: no IOMMU protection)", uio.join(", ")),
            Some(fix.into()),
        ),
        (false, true) => finding("vfio", Status::Fail, "vfio-pci is not loaded", Some(fix.into())),
    }
}

fn check_drivers(f: &Facts) -> Vec<Finding> {
    let pci: Vec<&PortDevice> = f.pci().collect();
    if pci.is_empty() {
        return vec![pass("driver", "no PCI device in the config (virtual devices only)")];
    }
    pci.into_iter()
        .map(|d| {
            let item = format!("driver {}", d.label);
            let dir = f.host.pci(&d.dev);
            if !dir.exists() {
                return finding(
                    item,
                    Status::Fail,
                    format!("{}: no PCI device {} on this host", d.key, d.dev),
                    Some("dpdk-devbind.py --status-dev net lists the NICs; correct the address".into()),
                );
            }
            let driver = std::fs::read_link(dir.join("driver"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            let ifaces: Vec<String> = std::fs::read_dir(dir.join("net"))
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let bind =
                format!("dpdk-devbind.py -b vfio-pci {0} (persistent: driverctl set-override {0} vfio-pci)", d.dev);
            match driver.as_deref() {
                Some("vfio-pci") => pass(item, format!("{} is bound to vfio-pci", d.dev)),
                Some(u @ ("igb_uio" | "uio_pci_generic")) => finding(
                    item,
                    Status::Warn,
                    format!("{} is bound to {u}: works, without IOMMU protection", d.dev),
                    Some(bind),
                ),
                Some(m @ ("mlx5_core" | "mlx4_core")) => pass(
                    item,
                    format!(
                        "{} stays on {m}: Mellanox NICs are bifurcated, DPDK's mlx PMD drives them through the \
                         kernel driver (needs rdma-core)",
                        d.dev
                    ),
                ),
                Some(k) => finding(
                    item,
                    Status::Fail,
                    format!(
                        "{} is bound to the kernel driver {k}{}",
                        d.dev,
                        if ifaces.is_empty() { String::new() } else { format!(" (interface {})", ifaces.join(", ")) }
                    ),
                    Some(match ifaces.first() {
                        Some(i) => format!("ip link set {i} down; {bind}"),
                        None => bind,
                    }),
                ),
                None => finding(item, Status::Fail, format!("{} is bound to no driver", d.dev), Some(bind)),
            }
        })
        .collect()
}

fn check_numa(f: &Facts) -> Vec<Finding> {
    let pci: Vec<&PortDevice> = f.pci().collect();
    if pci.is_empty() {
        return vec![pass("numa", format!("no PCI device in the config; {} NUMA node(s)", f.nodes.len()))];
    }
    pci.into_iter()
        .map(|d| {
            let item = format!("numa {}", d.label);
            let node = f.host.pci(&d.dev).join("numa_node");
            let node = std::fs::read_to_string(node).ok().and_then(|n| n.trim().parse::<i32>().ok());
            if f.nodes.len() <= 1 {
                return pass(item, "one NUMA node: ports, mempool and workers share it");
            }
            let Some(node) = node.filter(|n| *n >= 0).map(|n| n as u32) else {
                return finding(
                    item,
                    Status::Warn,
                    format!("the firmware reports no NUMA node for {}", d.dev),
                    Some("find the slot's socket in the board's manual or with lstopo".into()),
                );
            };
            let away: Vec<String> = f
                .workers
                .iter()
                .filter(|c| f.node_of(**c) != Some(node))
                .map(|c| format!("CPU {c} (node {})", f.node_of(*c).map(|n| n.to_string()).unwrap_or("?".into())))
                .collect();
            let main_away = f.node_of(f.main_cpu) != Some(node);
            let node_cpus = f.nodes.get(&node).map(format_cpu_list).unwrap_or_default();
            if away.is_empty() && !main_away {
                return pass(item, format!("{} on node {node}, as the workers and the main lcore (mempool)", d.dev));
            }
            let mut what = Vec::new();
            if !away.is_empty() {
                what.push(format!("workers on {}", away.join(", ")));
            }
            if main_away {
                what.push(format!("the main lcore (CPU {}, where the mempool is) on another node", f.main_cpu));
            }
            finding(
                item,
                Status::Warn,
                format!("{} on node {node}; {}: packets cross the interconnect", d.dev, what.join("; ")),
                Some(format!("take eal.main_lcore and workers.lcores from node {node}'s CPUs ({node_cpus})")),
            )
        })
        .collect()
}

fn check_isolation(f: &Facts) -> Finding {
    let all = f.all_cpus();
    // What the kernel reports in sysfs where it does, else the command line.
    let read_set = |sys: Option<&str>, param: &str| -> BTreeSet<u32> {
        let from_sys =
            sys.and_then(|p| f.host.read_trim(p)).and_then(|l| parse_cpu_list(&l).ok()).filter(|s| !s.is_empty());
        from_sys.unwrap_or_else(|| match cmdline_get(&f.cmdline, param) {
            Some(v) => cmdline_cpus(v, &all),
            None => BTreeSet::new(),
        })
    };
    let sets = [
        ("isolcpus", read_set(Some("sys/devices/system/cpu/isolated"), "isolcpus")),
        ("nohz_full", read_set(Some("sys/devices/system/cpu/nohz_full"), "nohz_full")),
        ("rcu_nocbs", read_set(None, "rcu_nocbs")),
    ];
    let w = f.workers_list();
    let missing: Vec<String> = sets
        .iter()
        .filter_map(|(name, set)| {
            let out: BTreeSet<u32> = f.workers.difference(set).copied().collect();
            (!out.is_empty()).then(|| format!("{name} lacks {}", format_cpu_list(&out)))
        })
        .collect();
    if missing.is_empty() {
        return pass("isolation", format!("worker CPUs {w} are in isolcpus, nohz_full and rcu_nocbs"));
    }
    finding(
        "isolation",
        Status::Warn,
        format!("worker CPUs {w}: {} (the scheduler, timer ticks and RCU callbacks may interrupt them)", missing.join(", ")),
        Some(format!(
            "add isolcpus={w} nohz_full={w} rcu_nocbs={w} to GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot"
        )),
    )
}

fn check_irqs(f: &Facts) -> Finding {
    let running = f
        .host
        .list("proc")
        .iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .any(|p| f.host.read_trim(&format!("proc/{p}/comm")).as_deref() == Some("irqbalance"));
    let w = f.workers_list();
    let housekeeping = format_cpu_list(&f.all_cpus().difference(&f.workers).copied().collect());
    if running {
        let banned = f.host.read("etc/default/irqbalance").and_then(|t| {
            t.lines().find_map(|l| {
                let v = l.trim().strip_prefix("IRQBALANCE_BANNED_CPULIST=")?;
                parse_cpu_list(v.trim_matches('"')).ok()
            })
        });
        if banned.as_ref().is_some_and(|b| f.workers.is_subset(b)) {
            return pass("irqbalance", format!("running; IRQBALANCE_BANNED_CPULIST keeps it off worker CPUs {w}"));
        }
        return finding(
            "irqbalance",
            Status::Warn,
            format!("irqbalance runs and may move interrupts onto worker CPUs {w}"),
            Some(format!(
                "IRQBALANCE_BANNED_CPULIST={w} in /etc/default/irqbalance and systemctl restart irqbalance \
                 (or systemctl disable --now irqbalance and pin IRQs yourself)"
            )),
        );
    }
    // Not running: who may still interrupt the workers?
    let on_workers = f
        .host
        .list("proc/irq")
        .iter()
        .filter(|i| i.bytes().all(|b| b.is_ascii_digit()))
        .filter(|i| {
            f.host
                .read(&format!("proc/irq/{i}/smp_affinity_list"))
                .and_then(|l| parse_cpu_list(&l).ok())
                .is_some_and(|s| !s.is_disjoint(&f.workers))
        })
        .count();
    if on_workers == 0 {
        return pass("irqbalance", format!("not running; no IRQ may run on worker CPUs {w}"));
    }
    finding(
        "irqbalance",
        Status::Warn,
        format!("not running; {on_workers} IRQs may still run on worker CPUs {w} (smp_affinity_list)"),
        Some(format!(
            "for i in /proc/irq/[0-9]*; do echo {housekeeping} > $i/smp_affinity_list; done 2>/dev/null \
             (isolcpus=managed_irq,{w} keeps drivers' managed IRQs off them too)"
        )),
    )
}

fn check_memlock(f: &Facts) -> Finding {
    let limit = f.host.read("proc/self/limits").as_deref().and_then(memlock_soft);
    let cap = f.host.read("proc/self/status").is_some_and(|s| has_capability(&s, CAP_IPC_LOCK));
    let fix =
        "LimitMEMLOCK=infinity in the unit (packaging/systemd/rvsd.service sets it); in a shell: ulimit -l unlimited";
    // What DPDK maps: the hugepages it takes, or with --no-huge its `-m` of ordinary memory.
    let need: u64 = if f.mem.no_huge { f.mem.total_mb.unwrap_or(0) << 20 } else { f.hugepage_need().0.values().sum() };
    match limit {
        None => finding("memlock", Status::Warn, "cannot read RLIMIT_MEMLOCK (/proc/self/limits)", Some(fix.into())),
        Some(None) => pass("memlock", "RLIMIT_MEMLOCK unlimited"),
        Some(Some(n)) if n >= need => {
            pass("memlock", format!("RLIMIT_MEMLOCK {} covers the {} DPDK maps", mib(n), mib(need)))
        }
        Some(Some(n)) if !f.any_pci() => pass(
            "memlock",
            format!("RLIMIT_MEMLOCK {}: enough without PCI devices (nothing is pinned for DMA)", mib(n)),
        ),
        Some(Some(n)) => finding(
            "memlock",
            if cap { Status::Warn } else { Status::Fail },
            format!(
                "RLIMIT_MEMLOCK {} is below the {} vfio pins for DMA{}",
                mib(n),
                mib(need),
                if cap {
                    "; this process has CAP_IPC_LOCK (root), which vfio honours, a unit without it fails"
                } else {
                    ""
                }
            ),
            Some(fix.into()),
        ),
    }
}

fn check_governor(f: &Facts) -> Finding {
    let mut by: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for c in &f.workers {
        let g = f
            .host
            .read_trim(&format!("sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"))
            .unwrap_or_else(|| "none".into());
        by.entry(g).or_default().insert(*c);
    }
    let w = f.workers_list();
    let shown: Vec<String> = by.iter().map(|(g, c)| format!("{g} on {}", format_cpu_list(c))).collect();
    if by.keys().all(|g| g == "performance") {
        return pass("governor", format!("performance on worker CPUs {w}"));
    }
    if by.keys().all(|g| g == "none") {
        return finding(
            "governor",
            Status::Warn,
            format!("no cpufreq on worker CPUs {w} (a VM, or the firmware sets the frequency): cannot tell"),
            Some("set the firmware's power profile to maximum performance".into()),
        );
    }
    finding(
        "governor",
        Status::Warn,
        format!("{}: a busy-polling worker gains nothing from frequency scaling", shown.join(", ")),
        Some(format!("cpupower -c {w} frequency-set -g performance")),
    )
}

fn check_mtu(f: &Facts) -> Vec<Finding> {
    let room = u32::from(f.cfg.mempool.data_room).saturating_sub(MBUF_HEADROOM);
    f.cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let item = format!("mtu {}", p.name);
            let mtu = u32::from(p.mtu);
            if mtu + FRAME_OVERHEAD > room {
                return finding(
                    item,
                    Status::Fail,
                    format!(
                        "port[{i}].mtu {mtu}: a full frame ({} B with Ethernet, VLAN and CRC) does not fit one mbuf \
                         (mempool.data_room {} less {MBUF_HEADROOM} headroom = {room} B); rvs receives into one mbuf",
                        mtu + FRAME_OVERHEAD,
                        f.cfg.mempool.data_room
                    ),
                    Some(format!("mempool.data_room = {}", mtu + FRAME_OVERHEAD + MBUF_HEADROOM)),
                );
            }
            // The kernel interfaces the port's devices name (af_packet's iface, ...) or
            // a PCI device's own while the kernel still drives it.
            let mut ifaces = Vec::new();
            for d in f.devices.iter().filter(|d| d.port == i) {
                if d.pci {
                    let net = f.host.pci(&d.dev).join("net");
                    if let Ok(rd) = std::fs::read_dir(net) {
                        ifaces.extend(rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()));
                    }
                } else {
                    ifaces.extend(preflight::vdev_needs(&d.dev).into_iter().filter_map(|n| match n {
                        VdevNeed::Iface { name, .. } => Some(name),
                        VdevNeed::File { .. } => None,
                    }));
                }
            }
            let small: Vec<String> = ifaces
                .iter()
                .filter_map(|n| {
                    let m: u32 = f.host.read_trim(&format!("sys/class/net/{n}/mtu"))?.parse().ok()?;
                    (m < mtu).then(|| format!("{n} has MTU {m}"))
                })
                .collect();
            let fits = format!("port[{i}].mtu {mtu} fits an mbuf ({room} B)");
            if small.is_empty() {
                pass(item, fits)
            } else {
                finding(
                    item,
                    Status::Warn,
                    format!("{fits}; below it in the kernel: {}", small.join(", ")),
                    Some(
                        ifaces.iter().map(|n| format!("ip link set {n} mtu {mtu}")).collect::<Vec<_>>().join("; ")
                            + " (and the peer / switch port)",
                    ),
                )
            }
        })
        .collect()
}

fn check_socket(cfg: &Config) -> Finding {
    let sock = &cfg.control.socket;
    let dir = sock.parent().map(|d| d.display().to_string()).unwrap_or_default();
    match preflight::check_socket_path(sock) {
        Ok(SocketPath::Free) if sock.parent().is_some_and(Path::exists) => {
            pass("socket", format!("{dir} exists; {} will be created", sock.display()))
        }
        Ok(SocketPath::Free) => pass(
            "socket",
            format!("{dir} will be created at start (under systemd, RuntimeDirectory=rvs makes /run/rvs)"),
        ),
        Ok(SocketPath::Stale) => {
            pass("socket", format!("{} is a stale socket (no one listens): removed at start", sock.display()))
        }
        Ok(SocketPath::InUse) => finding(
            "socket",
            Status::Warn,
            format!("a running rvsd listens on {}: a second one with this file would not start", sock.display()),
            Some("systemctl stop rvsd first, or give this one its own control.socket and eal.file_prefix".into()),
        ),
        Err(problem) => finding(
            "socket",
            Status::Fail,
            format!("control.socket: {problem}"),
            Some("choose another control.socket (default /run/rvs/rvsd.sock)".into()),
        ),
    }
}

/// Every item for `cfg` (read from `file`) on `host`. On a fixture host the start checks
/// and the control socket (which look at the live machine) are left out.
pub fn check(cfg: &Config, file: &str, host: &Host) -> Vec<Finding> {
    let f = Facts::read(cfg, host);
    let mut out = Vec::new();
    let warnings = cfg.warnings(file);
    let summary = format!(
        "{file}: {} port(s), {} worker(s) (CPUs {}), main lcore on CPU {}, {} service(s)",
        cfg.ports.len(),
        cfg.workers.lcores.len(),
        f.workers_list(),
        f.main_cpu,
        cfg.services.len()
    );
    out.push(if warnings.is_empty() {
        pass("config", summary)
    } else {
        let w: Vec<String> = warnings.iter().map(|w| format!("{}: {}", w.key, w.problem)).collect();
        finding(
            "config",
            Status::Warn,
            format!("{summary}; {}", w.join("; ")),
            Some(format!("rvsd --check-config {file}")),
        )
    });
    out.push(check_kernel(&f));
    if host.is_live() {
        out.push(check_start(cfg, file));
    }
    out.push(check_hugepages(&f));
    out.push(check_hugetlbfs(&f));
    out.push(check_iommu(&f));
    out.push(check_vfio(&f));
    out.extend(check_drivers(&f));
    out.extend(check_numa(&f));
    out.push(check_isolation(&f));
    out.push(check_irqs(&f));
    out.push(check_memlock(&f));
    out.push(check_governor(&f));
    out.extend(check_mtu(&f));
    if host.is_live() {
        out.push(check_socket(cfg));
    }
    out
}

/// Whether any finding is a FAIL (`rvsd --check-host` exits 1 then).
pub fn any_fail(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.status == Status::Fail)
}

/// The report as text: one line per item (`STATUS  item  found -- fix: ...`), then a
/// count.
pub fn render_text(findings: &[Finding]) -> String {
    let width = findings.iter().map(|f| f.item.len()).max().unwrap_or(0);
    let mut s = String::new();
    for f in findings {
        let _ = write!(s, "{}  {:<width$}  {}", f.status.as_str(), f.item, f.found);
        if let Some(fix) = &f.fix {
            let _ = write!(s, " -- fix: {fix}");
        }
        s.push('\n');
    }
    let n = |st: Status| findings.iter().filter(|f| f.status == st).count();
    let _ = writeln!(s, "{} FAIL, {} WARN, {} PASS", n(Status::Fail), n(Status::Warn), n(Status::Pass));
    s
}

/// The report as one JSON document: `{"file", "findings": [{item, status, found, fix}],
/// "fail", "warn", "pass"}`.
pub fn render_json(file: &str, findings: &[Finding]) -> String {
    let n = |st: Status| findings.iter().filter(|f| f.status == st).count();
    serde_json::json!({
        "file": file,
        "findings": findings,
        "fail": n(Status::Fail),
        "warn": n(Status::Warn),
        "pass": n(Status::Pass),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMDLINE: &str = "BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=1 ro quiet intel_iommu=on iommu=pt \
        default_hugepagesz=1G hugepagesz=1G hugepages=8 isolcpus=managed_irq,domain,2-5 nohz_full=2-5 \
        rcu_nocbs=2-4 -- init=/bin/sh nohz_full=0-7";

    fn set(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn kernel_command_line() {
        assert_eq!(cmdline_get(CMDLINE, "intel_iommu"), Some(Some("on")));
        assert_eq!(cmdline_get(CMDLINE, "quiet"), Some(None));
        assert_eq!(cmdline_get(CMDLINE, "amd_iommu"), None);
        assert_eq!(
            cmdline_get(CMDLINE, "nohz_full"),
            Some(Some("2-5")),
            "init's arguments after -- are not the kernel's"
        );
        let all = set(&[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(cmdline_cpus(Some("managed_irq,domain,2-5"), &all), set(&[2, 3, 4, 5]));
        assert_eq!(cmdline_cpus(Some("2-3,6"), &all), set(&[2, 3, 6]));
        assert_eq!(cmdline_cpus(Some("all"), &all), all);
        assert_eq!(cmdline_cpus(None, &all), all, "a bare rcu_nocbs offloads every CPU");
        assert_eq!(cmdline_cpus(Some("nonsense"), &all), set(&[]));
        let firecracker = "console=ttyS0 quiet -- --firecracker-init --addr 0.0.0.0:2024";
        assert_eq!(cmdline_params(firecracker), vec![("console", Some("ttyS0")), ("quiet", None)]);
    }

    #[test]
    fn small_parsers() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("4.9.337\n"), Some((4, 9)));
        assert_eq!(kernel_version("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(kernel_version("garbage"), None);

        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n\
                      Max locked memory         8388608              8388608              bytes\n";
        assert_eq!(memlock_soft(limits), Some(Some(8 << 20)));
        assert_eq!(
            memlock_soft("Max locked memory         unlimited            unlimited            bytes"),
            Some(None)
        );
        assert_eq!(memlock_soft("Max open files 1 1 files"), None);

        assert!(has_capability("Name:\trvsd\nCapEff:\t000001ffffffffff\n", CAP_IPC_LOCK));
        assert!(!has_capability("CapEff:\t0000000000000000\n", CAP_IPC_LOCK));
        assert!(has_capability("CapEff:\t0000000000004000\n", CAP_IPC_LOCK));

        assert_eq!(size_kb("2M"), Some(2048));
        assert_eq!(size_kb("1G"), Some(1 << 20));
        assert_eq!(size_kb("2048k"), Some(2048));
        assert_eq!(size_kb("2097152"), Some(2048));
        let mounts = "proc /proc proc rw 0 0\n\
                      nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n\
                      hugetlbfs /mnt/huge1g hugetlbfs rw,relatime,pagesize=1024M 0 0\n\
                      none /mnt/h hugetlbfs rw 0 0\n";
        assert_eq!(
            hugetlbfs_mounts(mounts),
            vec![
                HugeMount { path: "/dev/hugepages".into(), page_kb: Some(2048) },
                HugeMount { path: "/mnt/huge1g".into(), page_kb: Some(1 << 20) },
                HugeMount { path: "/mnt/h".into(), page_kb: None },
            ]
        );

        let args = |v: &[&str]| EalMemory::from_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            args(&["--no-huge", "-m", "512", "--log-level=lib.eal:warning"]),
            EalMemory { no_huge: true, socket_mem: None, total_mb: Some(512) }
        );
        assert_eq!(args(&["--socket-mem", "4096"]).socket_mem, Some(vec![4096]));
        assert_eq!(args(&["--socket-mem=1024,2048"]).socket_mem, Some(vec![1024, 2048]));
        assert_eq!(args(&["-m1024"]).total_mb, Some(1024));
        assert_eq!(args(&["--main-lcore", "0"]), EalMemory::default(), "-m is not a prefix of --main-lcore");
    }

    /// A fixture tree laid out like `/` (only what the checks read).
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Tree {
            let d = std::env::temp_dir().join(format!("rvs-hostcheck-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Tree(d)
        }
        fn file(&self, rel: &str, text: &str) -> &Tree {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
            self
        }
        fn dir(&self, rel: &str) -> &Tree {
            std::fs::create_dir_all(self.0.join(rel)).unwrap();
            self
        }
        fn link(&self, rel: &str, to: &str) -> &Tree {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(to, p).unwrap();
            self
        }
        fn host(&self) -> Host {
            Host::at(&self.0)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Two nodes of four CPUs; 2 MiB pages per node; the NIC 0000:3b:00.0 on node 0.
    fn two_node_host(t: &Tree, cmdline: &str) {
        t.file("proc/cmdline", cmdline)
            .file("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
            .file("proc/mounts", "nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n")
            .file("proc/meminfo", "Hugepagesize:       2048 kB\n")
            .file("proc/self/limits", "Max locked memory         unlimited            unlimited            bytes\n")
            .file("proc/self/status", "CapEff:\t000001ffffffffff\n")
            .file("sys/devices/system/node/node0/cpulist", "0-3\n")
            .file("sys/devices/system/node/node1/cpulist", "4-7\n")
            .file("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "1024\n")
            .file("sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "1024\n")
            .file("sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages", "0\n")
            .file("sys/devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages", "0\n")
            .file("sys/devices/system/cpu/isolated", "2-3\n")
            .file("sys/devices/system/cpu/nohz_full", "2-3\n")
            .file("sys/bus/pci/devices/0000:3b:00.0/numa_node", "0\n")
            .file("sys/bus/pci/devices/0000:3b:00.1/numa_node", "0\n")
            .dir("sys/bus/pci/drivers/vfio-pci")
            .dir("sys/bus/pci/drivers/ixgbe")
            .link("sys/bus/pci/devices/0000:3b:00.0/driver", "../../../bus/pci/drivers/vfio-pci")
            .link("sys/bus/pci/devices/0000:3b:00.1/driver", "../../../bus/pci/drivers/ixgbe")
            .dir("sys/bus/pci/devices/0000:3b:00.1/net/enp59s0f1")
            .file("sys/class/net/enp59s0f1/mtu", "1500\n")
            .dir("sys/class/iommu/dmar0")
            .dir("sys/kernel/iommu_groups/17")
            .file("proc/irq/24/smp_affinity_list", "0-1\n")
            .file("proc/irq/25/smp_affinity_list", "0-7\n")
            .file("proc/4242/comm", "sshd\n");
        for c in 0..8 {
            let g = if c == 3 { "powersave" } else { "performance" };
            t.file(&format!("sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"), &format!("{g}\n"));
        }
    }

    fn config(workers: &str, extra: &str) -> Config {
        let text = format!(
            "[eal]\nmain_lcore = 1\nargs = [\"--socket-mem\", \"1024,0\"]\n[workers]\nlcores = [{workers}]\n\
             [mempool]\nmbufs = 65535\n\
             [[port]]\nname = \"dpdk0\"\npci = \"0000:3b:00.0\"\nmtu = 9000\n\
             [[port]]\nname = \"dpdk1\"\npci = \"0000:3b:00.1\"\nmtu = 1500\n{extra}"
        );
        Config::parse("t.toml", &text).unwrap()
    }

    fn by_item<'a>(fs: &'a [Finding], item: &str) -> &'a Finding {
        fs.iter().find(|f| f.item == item).unwrap_or_else(|| panic!("no {item} in {fs:#?}"))
    }

    #[test]
    fn a_two_node_host_item_by_item() {
        let t = Tree::new("two-node");
        two_node_host(&t, CMDLINE);
        let cfg = config("2, 3", "");
        let fs = check(&cfg, "t.toml", &t.host());
        let items: Vec<&str> = fs.iter().map(|f| f.item.as_str()).collect();
        assert_eq!(
            items,
            [
                "config",
                "kernel",
                "hugepages",
                "hugetlbfs",
                "iommu",
                "vfio",
                "driver dpdk0",
                "driver dpdk1",
                "numa dpdk0",
                "numa dpdk1",
                "isolation",
                "irqbalance",
                "memlock",
                "governor",
                "mtu dpdk0",
                "mtu dpdk1"
            ],
            "a fixture host leaves out the live-only start and socket checks"
        );
        let st = |item: &str| by_item(&fs, item).status;
        assert_eq!(st("kernel"), Status::Pass);
        // 1024 x 2 MiB on node 0 = 2048 MiB >= --socket-mem 1024 and the mempool
        // (65535 x 2368 B = 148 MiB + 64).
        assert_eq!(st("hugepages"), Status::Pass, "{:?}", by_item(&fs, "hugepages"));
        assert!(by_item(&fs, "hugepages")
            .found
            .contains("node 0: 2048 MiB free of 2048 MiB (1024 x 2 MiB), 1024 MiB needed"));
        assert_eq!(st("hugetlbfs"), Status::Pass);
        assert_eq!(st("iommu"), Status::Pass);
        assert!(by_item(&fs, "iommu").found.contains("dmar0"));
        assert_eq!(st("vfio"), Status::Pass);
        assert_eq!(st("driver dpdk0"), Status::Pass);
        let d1 = by_item(&fs, "driver dpdk1");
        assert_eq!(d1.status, Status::Fail);
        assert!(d1.found.contains("kernel driver ixgbe (interface enp59s0f1)"), "{d1:?}");
        assert_eq!(
            d1.fix.as_deref(),
            Some(
                "ip link set enp59s0f1 down; dpdk-devbind.py -b vfio-pci 0000:3b:00.1 \
                 (persistent: driverctl set-override 0000:3b:00.1 vfio-pci)"
            )
        );
        assert_eq!(st("numa dpdk0"), Status::Pass, "{:?}", by_item(&fs, "numa dpdk0"));
        // isolcpus and nohz_full cover 2-3, rcu_nocbs (command line) 2-4.
        assert_eq!(st("isolation"), Status::Pass, "{:?}", by_item(&fs, "isolation"));
        // No irqbalance; IRQ 25 may run anywhere.
        let irq = by_item(&fs, "irqbalance");
        assert_eq!(irq.status, Status::Warn);
        assert!(irq.found.contains("1 IRQs"), "{irq:?}");
        assert!(irq.fix.as_deref().unwrap().contains("echo 0-1,4-7 >"), "{irq:?}");
        assert_eq!(st("memlock"), Status::Pass);
        let g = by_item(&fs, "governor");
        assert_eq!(g.status, Status::Warn);
        assert!(g.found.contains("performance on 2, powersave on 3"), "{g:?}");
        assert_eq!(g.fix.as_deref(), Some("cpupower -c 2-3 frequency-set -g performance"));
        // MTU 9000 does not fit the default 2176-byte data room.
        let m = by_item(&fs, "mtu dpdk0");
        assert_eq!(m.status, Status::Fail);
        assert_eq!(m.fix.as_deref(), Some("mempool.data_room = 9150"));
        assert_eq!(st("mtu dpdk1"), Status::Pass);
        assert!(any_fail(&fs));

        // Workers across nodes; 1 GiB of 2 MiB pages wanted on node 1 that has none;
        // isolation short of a CPU; irqbalance running without a banned list.
        let cfg = config("3, 4", "");
        t.file("proc/4243/comm", "irqbalance\n");
        let fs = check(&cfg, "t.toml", &t.host());
        let n = by_item(&fs, "numa dpdk0");
        assert_eq!(n.status, Status::Warn);
        assert!(n.found.contains("workers on CPU 4 (node 1)"), "{n:?}");
        assert_eq!(n.fix.as_deref(), Some("take eal.main_lcore and workers.lcores from node 0's CPUs (0-3)"));
        let iso = by_item(&fs, "isolation");
        assert_eq!(iso.status, Status::Warn);
        assert!(iso.found.contains("worker CPUs 3-4: isolcpus lacks 4, nohz_full lacks 4 ("), "{iso:?}");
        assert!(iso.fix.as_deref().unwrap().contains("isolcpus=3-4 nohz_full=3-4 rcu_nocbs=3-4"));
        assert_eq!(by_item(&fs, "irqbalance").status, Status::Warn);
        t.file("etc/default/irqbalance", "#IRQBALANCE_ONESHOT=\nIRQBALANCE_BANNED_CPULIST=\"2-7\"\n");
        let fs = check(&cfg, "t.toml", &t.host());
        assert_eq!(by_item(&fs, "irqbalance").status, Status::Pass);
    }

    #[test]
    fn a_bare_host_fails_what_production_needs() {
        let t = Tree::new("bare");
        two_node_host(&t, "console=ttyS0 quiet -- --init-arg");
        std::fs::remove_dir_all(t.0.join("sys/class/iommu")).unwrap();
        std::fs::remove_dir_all(t.0.join("sys/kernel/iommu_groups")).unwrap();
        std::fs::remove_dir_all(t.0.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
        t.file("proc/mounts", "proc /proc proc rw 0 0\n")
            .file("proc/self/limits", "Max locked memory         8388608              8388608              bytes\n")
            .file("proc/self/status", "CapEff:\t0000000000000000\n")
            .file("sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "100\n")
            .file("proc/sys/kernel/osrelease", "4.9.0-19-amd64\n");
        let cfg = config("2, 3", "");
        let fs = check(&cfg, "t.toml", &t.host());
        let st = |item: &str| by_item(&fs, item).status;
        assert_eq!(st("kernel"), Status::Fail);
        // 1024 pages reserved, 100 free: in use by another process.
        let h = by_item(&fs, "hugepages");
        assert_eq!(h.status, Status::Warn, "{h:?}");
        assert!(h.fix.as_deref().unwrap().contains("in use"), "{h:?}");
        assert_eq!(st("hugetlbfs"), Status::Fail);
        let i = by_item(&fs, "iommu");
        assert_eq!(i.status, Status::Fail);
        assert!(i.fix.as_deref().unwrap().contains("intel_iommu=on iommu=pt"), "{i:?}");
        assert_eq!(st("vfio"), Status::Fail);
        assert_eq!(st("isolation"), Status::Warn);
        assert_eq!(st("memlock"), Status::Fail, "no CAP_IPC_LOCK and 8 MiB");
        // no-IOMMU mode: a warning with the risk named.
        t.file("sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n");
        let fs = check(&cfg, "t.toml", &t.host());
        assert_eq!(by_item(&fs, "iommu").status, Status::Warn);
        // Not enough pages at all: the fix says how many.
        t.file("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "100\n");
        let fs = check(&cfg, "t.toml", &t.host());
        let h = by_item(&fs, "hugepages");
        assert_eq!(h.status, Status::Fail);
        assert!(
            h.fix
                .as_deref()
                .unwrap()
                .starts_with("echo 512 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"),
            "{h:?}"
        );
        assert!(h.fix.as_deref().unwrap().contains("hugepages=0:1 on the kernel command line"), "{h:?}");
    }

    #[test]
    fn virtual_devices_need_no_pci_items() {
        let t = Tree::new("virtual");
        two_node_host(&t, CMDLINE);
        let text = "[eal]\nargs = [\"--no-huge\", \"-m\", \"512\"]\n[workers]\nlcores = [2]\n\
                    [[port]]\nname = \"dpdk0\"\nvdev = \"net_af_packet0,iface=veth9\"\n";
        t.file("sys/class/net/veth9/mtu", "1400\n");
        let cfg = Config::parse("v.toml", text).unwrap();
        let fs = check(&cfg, "v.toml", &t.host());
        assert_eq!(by_item(&fs, "hugepages").status, Status::Warn, "--no-huge");
        for item in ["hugetlbfs", "vfio", "driver", "numa", "memlock"] {
            assert_eq!(by_item(&fs, item).status, Status::Pass, "{item}");
        }
        let m = by_item(&fs, "mtu dpdk0");
        assert_eq!(m.status, Status::Warn);
        assert!(m.found.contains("veth9 has MTU 1400"), "{m:?}");
        assert!(!any_fail(&fs));

        let text = render_text(&fs);
        assert!(text.lines().next().unwrap().starts_with("PASS  config"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("WARN  hugepages ") && l.contains("--no-huge")), "{text}");
        assert!(text.trim_end().ends_with("0 FAIL, 3 WARN, 10 PASS"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&render_json("v.toml", &fs)).unwrap();
        assert_eq!(json["fail"], 0);
        assert_eq!(json["findings"][0]["item"], "config");
        assert_eq!(json["findings"][0]["status"], "PASS");
        assert!(json["findings"][0].get("fix").is_none());
    }
}
