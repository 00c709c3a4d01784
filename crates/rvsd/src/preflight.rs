//! Host checks: what a valid file can still get wrong on this machine, checked before
//! rvsd touches DPDK, and by `rvsd --check-config` (unless the file is for another host).
//!
//! - the lcores (`eal.main_lcore`, `workers.lcores[i]`, or `workers.cpus[i]` when lcores
//!   are mapped to CPUs) run on CPUs this process may use (its affinity, else the CPUs
//!   online);
//! - the kernel interfaces and files a vdev string names (`net_af_packet0,iface=eth1`,
//!   pcap's `iface=`/`rx_iface=`/`tx_iface=`/`rx_pcap=`, tap's `remote=`) and the PCI
//!   devices of `pci` ports and bond slaves exist;
//! - the twin's device exists (`/dev/net/tun`, `/dev/vhost-net`);
//! - the control socket: its path fits a Unix socket address, its directory can be
//!   created, no running rvsd listens on it (a stale socket file is removed at start), and
//!   nothing else is in its place; `control.group` exists;
//! - no running DPDK process holds `eal.file_prefix`.
//!
//! Every problem names its key, as the file's own checks do ([`ConfigError`]). What is in
//! use by a running process is an error at start and a warning for `--check-config`
//! (checking the running daemon's file before a restart is the common case).
//!
//! `rvsd --check-host` (`crate::hostcheck`) reports these checks as one of its items and
//! adds what a production host needs beyond them (hugepages, IOMMU, vfio, NUMA, ...).

use std::collections::BTreeSet;
use std::fmt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg};
use nix::unistd::{access, AccessFlags, Group};

use crate::config::{Config, ConfigError, TwinKind};

/// The longest path a Unix socket address holds (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why the host checks run, which decides how "in use" is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// rvsd is about to start: a socket or file prefix in use is an error.
    Start,
    /// `rvsd --check-config`: in use is a warning (the file may be the running daemon's).
    Check,
}

/// What the host checks found.
#[derive(Debug, Default)]
pub struct HostReport {
    /// Problems that stop rvsd from starting.
    pub errors: Vec<ConfigError>,
    /// Worth a word, not fatal.
    pub warnings: Vec<ConfigError>,
}

/// A list of CPUs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad CPU list {list:?}: {why}")]
pub struct CpuListError {
    /// The list as given.
    pub list: String,
    /// What is wrong with it.
    pub why: String,
}

/// Parses a kernel CPU list (`0-3,5,7-8`; empty means none).
pub fn parse_cpu_list(list: &str) -> Result<BTreeSet<u32>, CpuListError> {
    let bad = |why: String| CpuListError { list: list.to_string(), why };
    let mut out = BTreeSet::new();
    for part in list.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| s.trim().parse::<u32>().map_err(|e| bad(format!("{s:?}: {e}")));
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(bad(format!("range {part} runs backwards")));
                }
                if hi - lo >= 1 << 20 {
                    return Err(bad(format!("range {part} is implausibly large")));
                }
                out.extend(lo..=hi);
            }
            None => {
                out.insert(num(part)?);
            }
        }
    }
    Ok(out)
}

/// Formats a set of CPUs as a kernel CPU list (`0-3,5`).
pub fn format_cpu_list(cpus: &BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut it = cpus.iter().copied().peekable();
    while let Some(lo) = it.next() {
        let mut hi = lo;
        while it.peek() == Some(&(hi + 1)) {
            hi = it.next().unwrap_or(hi);
        }
        parts.push(if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") });
    }
    parts.join(",")
}

/// The CPUs this process may run on: its affinity (`Cpus_allowed_list` in
/// `/proc/self/status`), else the CPUs online; `None` if neither can be read.
pub fn usable_cpus() -> Option<BTreeSet<u32>> {
    let from_status = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).and_then(|l| parse_cpu_list(l).ok())
    });
    from_status.filter(|s| !s.is_empty()).or_else(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/online").ok().and_then(|s| parse_cpu_list(&s).ok())
    })
}

/// Where each lcore runs: `(key, lcore, cpu)`, the main lcore first. Without
/// `workers.cpus`, lcore n runs on CPU n (the key is the lcore's); with it, worker i runs
/// on `cpus[i]` (the key is the CPU's) and the main lcore on its own number.
pub fn lcore_placements(cfg: &Config) -> Vec<(String, u32, u32)> {
    let main = cfg.eal.main_lcore;
    let mut out = vec![("eal.main_lcore".to_string(), main, main)];
    for (i, &l) in cfg.workers.lcores.iter().enumerate() {
        match cfg.workers.cpus.as_ref().and_then(|c| c.get(i)) {
            Some(&cpu) => out.push((format!("workers.cpus[{i}]"), l, cpu)),
            None => out.push((format!("workers.lcores[{i}]"), l, l)),
        }
    }
    out
}

/// Something a vdev string needs from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VdevNeed {
    /// A kernel network interface (`iface=` of af_packet and pcap, tap's `remote=`).
    Iface {
        /// The parameter naming it.
        param: String,
        /// The interface.
        name: String,
    },
    /// A file to read (pcap's `rx_pcap=`).
    File {
        /// The parameter naming it.
        param: String,
        /// The file.
        path: String,
    },
}

/// What a vdev string needs to exist on the host. A tap's `iface=` is the name of the
/// interface it creates, so it is not among them.
pub fn vdev_needs(vdev: &str) -> Vec<VdevNeed> {
    let mut parts = vdev.split(',');
    let driver = parts.next().unwrap_or_default();
    let kind = |prefix: &str| driver.starts_with(prefix);
    let mut out = Vec::new();
    for kv in parts {
        let Some((k, v)) = kv.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.trim());
        let iface = (kind("net_af_packet") && k == "iface")
            || (kind("net_pcap") && matches!(k, "iface" | "rx_iface" | "rx_iface_in" | "tx_iface"))
            || (kind("net_tap") && k == "remote");
        if iface {
            out.push(VdevNeed::Iface { param: k.to_string(), name: v.to_string() });
        } else if kind("net_pcap") && k == "rx_pcap" {
            out.push(VdevNeed::File { param: k.to_string(), path: v.to_string() });
        }
    }
    out
}

/// Whether the kernel has a network interface `name` (in this network namespace).
fn iface_exists(name: &str) -> bool {
    !name.is_empty() && name.len() < 16 && nix::net::if_::if_nametoindex(name).is_ok()
}

/// The sysfs directory of a PCI address (the domain defaults to 0000) under `root`
/// (`/` on a live host; a fixture tree in tests).
pub fn pci_sysfs(root: &Path, addr: &str) -> PathBuf {
    let full = if addr.matches(':').count() == 1 { format!("0000:{addr}") } else { addr.to_string() };
    root.join("sys/bus/pci/devices").join(full.to_ascii_lowercase())
}

/// One device a port is made of: its `vdev` or `pci`, or one slave of its bond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortDevice {
    /// The port's index in the file.
    pub port: usize,
    /// The key naming the device (`port[0].pci`, `port[1].bond.slaves[0]`).
    pub key: String,
    /// What the operator calls it: the port's name, with `.slaves[j]` for a bond slave.
    pub label: String,
    /// The vdev string or PCI address.
    pub dev: String,
    /// Whether it is a PCI device (anything not a `net_...` vdev string).
    pub pci: bool,
}

/// The devices of every port, in file order: the one place that says which strings of
/// a port are devices and which of them are PCI addresses (the start checks and
/// `rvsd --check-host` both walk this list).
pub fn port_devices(cfg: &Config) -> Vec<PortDevice> {
    let mut out = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let mut add = |key: String, label: String, dev: &str| {
            out.push(PortDevice { port: i, key, label, dev: dev.to_string(), pci: !dev.starts_with("net_") })
        };
        if let Some(v) = &p.vdev {
            add(format!("port[{i}].vdev"), p.name.clone(), v);
        }
        if let Some(pci) = &p.pci {
            add(format!("port[{i}].pci"), p.name.clone(), pci);
        }
        if let Some(b) = &p.bond {
            for (j, s) in b.slaves.iter().enumerate() {
                add(format!("port[{i}].bond.slaves[{j}]"), format!("{}.slaves[{j}]", p.name), s);
            }
        }
    }
    out
}

/// The DPDK runtime directory of a file prefix, as the EAL derives it: `/var/run/dpdk/<prefix>`
/// for root, else under `$XDG_RUNTIME_DIR` (or `/tmp`).
pub fn runtime_dir(prefix: &str) -> PathBuf {
    let base = if nix::unistd::getuid().is_root() {
        PathBuf::from("/var/run")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"))
    };
    base.join("dpdk").join(prefix)
}

/// The process holding `prefix`'s EAL configuration (DPDK's primary process keeps a write
/// lock on `<runtime dir>/config`), if one runs.
pub fn prefix_holder(prefix: &str) -> Option<i32> {
    let file = std::fs::File::open(runtime_dir(prefix).join("config")).ok()?;
    let mut lock = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_GETLK(&mut lock)).ok()?;
    (lock.l_type != nix::libc::F_UNLCK as nix::libc::c_short).then_some(lock.l_pid)
}

/// What is at the control socket's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketPath {
    /// Nothing: it will be created.
    Free,
    /// A socket no one listens on (left by an rvsd that did not exit cleanly).
    Stale,
    /// A running rvsd listens on it.
    InUse,
}

/// Checks the control socket's path; the error is the problem (its key is
/// `control.socket`). Nothing is created or removed.
pub fn check_socket_path(path: &Path) -> Result<SocketPath, String> {
    let shown = path.display();
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(format!("{shown} is longer than the {MAX_SOCKET_PATH} bytes a Unix socket address holds"));
    }
    if path.file_name().is_none() {
        return Err(format!("{shown} names no file"));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            return Ok(if UnixStream::connect(path).is_ok() { SocketPath::InUse } else { SocketPath::Stale });
        }
        Ok(_) => return Err(format!("{shown} exists and is not a socket; rvsd will not replace it")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {e}")),
    }
    // The nearest directory that exists must let us create what is missing.
    let mut dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    loop {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a directory", dir.display())),
            Err(_) => match dir.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(up) => dir = up,
                None => break,
            },
        }
    }
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| format!("cannot create {shown}: directory {}: {}", dir.display(), e.desc()))?;
    Ok(SocketPath::Free)
}

/// The host checks of `cfg`, read from `file`.
pub fn check_host(cfg: &Config, file: &str, purpose: Purpose) -> HostReport {
    let mut report = HostReport::default();
    let mut errs = Vec::new();
    let mut err = |key: String, problem: String| errs.push(ConfigError { file: file.into(), key, problem });

    // Lcores on CPUs this process may use.
    if let Some(cpus) = usable_cpus() {
        for (key, lcore, cpu) in lcore_placements(cfg) {
            if !cpus.contains(&cpu) {
                let on = if lcore == cpu { format!("lcore {lcore}") } else { format!("lcore {lcore} on CPU {cpu}") };
                err(
                    key,
                    format!("{on}: this host has no CPU {cpu} this process may use (CPUs {})", format_cpu_list(&cpus)),
                );
            }
        }
    }

    // Devices.
    for d in port_devices(cfg) {
        if d.pci {
            if !pci_sysfs(Path::new("/"), &d.dev).exists() {
                err(d.key, format!("PCI device {} does not exist on this host", d.dev));
            }
            continue;
        }
        for need in vdev_needs(&d.dev) {
            match need {
                VdevNeed::Iface { param, name } if !iface_exists(&name) => {
                    err(d.key.clone(), format!("{param}={name}: no network interface {name:?} on this host"))
                }
                VdevNeed::File { param, path } if std::fs::File::open(&path).is_err() => {
                    err(d.key.clone(), format!("{param}={path}: cannot read {path}"))
                }
                _ => {}
            }
        }
    }
    for (i, p) in cfg.ports.iter().enumerate() {
        let twin_dev = match p.twin {
            TwinKind::Tap => Some("/dev/net/tun"),
            TwinKind::VirtioUser => Some("/dev/vhost-net"),
            TwinKind::None => None,
        };
        if let Some(d) = twin_dev.filter(|d| !Path::new(d).exists()) {
            err(format!("port[{i}].twin"), format!("the kernel twin needs {d}, which this host lacks"));
        }
    }

    // The control socket and its group.
    let sock = &cfg.control.socket;
    let mut in_use = Vec::new();
    match check_socket_path(sock) {
        Ok(SocketPath::InUse) => {
            in_use.push(("control.socket".to_string(), format!("{} is in use by a running rvsd", sock.display())))
        }
        Ok(_) => {}
        Err(problem) => err("control.socket".into(), problem),
    }
    if let Some(g) = &cfg.control.group {
        match Group::from_name(g) {
            Ok(Some(_)) => {}
            Ok(None) => err("control.group".into(), format!("no group {g:?} on this host")),
            Err(e) => err("control.group".into(), format!("group {g:?}: {}", e.desc())),
        }
    }
    if let Some(pid) = prefix_holder(&cfg.eal.file_prefix) {
        in_use.push((
            "eal.file_prefix".to_string(),
            format!("{:?} is in use by a running DPDK process (pid {pid})", cfg.eal.file_prefix),
        ));
    }
    for (key, problem) in in_use {
        match purpose {
            Purpose::Start => err(key, problem),
            Purpose::Check => report.warnings.push(ConfigError { file: file.into(), key, problem }),
        }
    }
    report.errors = errs;
    report
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_format() {
        let set = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
        assert_eq!(parse_cpu_list("0-3,5").unwrap(), set(&[0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("0\n").unwrap(), set(&[0]));
        assert_eq!(parse_cpu_list(" 2, 7-8 ,10-10").unwrap(), set(&[2, 7, 8, 10]));
        assert_eq!(parse_cpu_list("").unwrap(), set(&[]));
        assert!(parse_cpu_list("3-1").is_err(), "backwards");
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("1-").is_err());
        assert!(parse_cpu_list("0-4294967295").is_err(), "not a list to expand");
        assert_eq!(format_cpu_list(&set(&[0, 1, 2, 3, 5, 7, 8])), "0-3,5,7-8");
        assert_eq!(format_cpu_list(&set(&[4])), "4");
        let here = usable_cpus().expect("this host's CPUs");
        assert!(!here.is_empty());
        assert_eq!(parse_cpu_list(&format_cpu_list(&here)).unwrap(), here);
    }

    #[test]
    fn vdev_strings_name_what_they_need() {
        let iface = |p: &str, n: &str| VdevNeed::Iface { param: p.into(), name: n.into() };
        assert_eq!(vdev_needs("net_af_packet0,iface=eth1,qpairs=2"), vec![iface("iface", "eth1")]);
        assert_eq!(vdev_needs("net_af_packet1, iface = lb0"), vec![iface("iface", "lb0")]);
        assert_eq!(vdev_needs("net_tap0,iface=dpdk0.kni"), vec![], "a tap's iface is created, not needed");
        assert_eq!(vdev_needs("net_tap0,iface=t0,remote=eth0"), vec![iface("remote", "eth0")]);
        assert_eq!(
            vdev_needs("net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out.pcap"),
            vec![VdevNeed::File { param: "rx_pcap".into(), path: "/tmp/in.pcap".into() }]
        );
        assert_eq!(vdev_needs("net_pcap1,iface=veth0"), vec![iface("iface", "veth0")]);
        assert_eq!(vdev_needs("net_null0"), vec![]);
        assert_eq!(vdev_needs("net_ring0,nodeaction=r0:0:CREATE"), vec![]);
    }

    #[test]
    fn lcores_are_placed_on_their_cpus() {
        let text = |cpus: &str| {
            format!(
                "[eal]\nmain_lcore = 0\n[workers]\nlcores = [1, 2]\n{cpus}\n[[port]]\nname = \"p0\"\nvdev = \"net_null0\"\n"
            )
        };
        let c = Config::parse("t.toml", &text("")).unwrap();
        assert_eq!(
            lcore_placements(&c),
            vec![
                ("eal.main_lcore".to_string(), 0, 0),
                ("workers.lcores[0]".to_string(), 1, 1),
                ("workers.lcores[1]".to_string(), 2, 2)
            ]
        );
        let c = Config::parse("t.toml", &text("cpus = [1, 1]")).unwrap();
        assert_eq!(lcore_placements(&c)[2], ("workers.cpus[1]".to_string(), 2, 1));
    }

    #[test]
    fn host_checks_name_their_keys() {
        let dir = std::env::temp_dir().join(format!("rvs-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("ctl.sock");
        // An lcore DPDK allows that this host lacks.
        let cpus = usable_cpus().unwrap_or_default();
        let Some(missing) = (1..dpdk::sys::RTE_MAX_LCORE).rev().find(|c| !cpus.contains(c)) else {
            return; // a host with every lcore DPDK allows: nothing to refuse
        };
        let text = format!(
            "[eal]\nfile_prefix = \"rvspf{pid}\"\n[workers]\nlcores = [{missing}]\n[[port]]\nname = \"p0\"\n\
             vdev = \"net_af_packet0,iface=rvsnoiface0\"\ntwin = \"none\"\n[[port]]\nname = \"p1\"\n\
             vdev = \"net_pcap1,rx_pcap={dir}/missing.pcap\"\ntwin = \"none\"\n[control]\nsocket = \"{sock}\"\n\
             group = \"rvs-no-such-group\"\n",
            pid = std::process::id(),
            dir = dir.display(),
            sock = sock.display(),
        );
        let c = Config::parse("t.toml", &text).unwrap();
        let r = check_host(&c, "t.toml", Purpose::Start);
        let keys: Vec<&str> = r.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["workers.lcores[0]", "port[0].vdev", "port[1].vdev", "control.group"], "{r}");
        assert!(r.errors[1].problem.contains("rvsnoiface0"), "{r}");

        // A live socket: an error at start, a warning when only checking; a stale one is
        // neither; a regular file in its place is refused.
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(check_socket_path(&sock), Ok(SocketPath::InUse));
        let r = check_host(&c, "t.toml", Purpose::Start);
        assert!(r.errors.iter().any(|e| e.key == "control.socket" && e.problem.contains("in use")), "{r}");
        let r = check_host(&c, "t.toml", Purpose::Check);
        assert!(r.errors.iter().all(|e| e.key != "control.socket"), "{r}");
        assert!(r.warnings.iter().any(|e| e.key == "control.socket"), "{:?}", r.warnings);
        drop(listener);
        assert_eq!(check_socket_path(&sock), Ok(SocketPath::Stale));
        std::fs::remove_file(&sock).unwrap();
        assert_eq!(check_socket_path(&sock), Ok(SocketPath::Free));
        assert_eq!(check_socket_path(&dir.join("new/sub/ctl.sock")), Ok(SocketPath::Free));
        std::fs::write(&sock, "not a socket").unwrap();
        assert!(check_socket_path(&sock).unwrap_err().contains("not a socket"));
        assert!(check_socket_path(&dir.join("x".repeat(120))).unwrap_err().contains("longer"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn runtime_dir_follows_the_eal() {
        if nix::unistd::getuid().is_root() {
            assert_eq!(runtime_dir("rvs"), Path::new("/var/run/dpdk/rvs"));
        }
        assert_eq!(prefix_holder("rvs-no-such-prefix-here"), None);
    }
}
