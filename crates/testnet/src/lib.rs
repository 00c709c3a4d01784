//! Test fixtures: network namespaces, veth pairs and child processes, each named
//! uniquely per test run and removed when dropped, on success and on failure alike.
//!
//! The kernel is the independent judge in rvs's tests: real stacks in namespaces talk
//! through the dataplane. These guards make sure a failed test leaves nothing behind.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call: `<prefix><pid base36><seq>`, at most
/// 15 bytes so it is valid as an interface name.
pub fn unique(prefix: &str) -> String {
    let pid = std::process::id();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}{}", base36(pid), base36(seq));
    assert!(name.len() <= 15, "name {name} too long for an interface");
    name
}

fn base36(mut n: u32) -> String {
    const D: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(D[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    if !out.status.success() {
        panic!("{args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command, returning whether it succeeded (output discarded).
pub fn sh_ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace, deleted (with everything inside) on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a namespace named uniquely from `prefix`, with loopback up.
    pub fn new(prefix: &str) -> NetNs {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> ARGS...`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Runs a command inside the namespace and waits for it.
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("exec {args:?} in {}: {e}", self.name))
    }

    /// Starts a command inside the namespace; it is killed when the guard drops.
    pub fn spawn(&self, args: &[&str]) -> ChildGuard {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?} in {}: {e}", self.name));
        ChildGuard { child }
    }

    /// The MAC address of `dev` inside the namespace.
    pub fn mac(&self, dev: &str) -> [u8; 6] {
        parse_mac(&self.ip(&["-j", "link", "show", dev]))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Kill anything still running inside, then delete.
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A veth pair in the root namespace (one end may be moved into a [`NetNs`]); deleted
/// on drop.
pub struct Veth {
    /// The end that stays in the root namespace.
    pub host: String,
    /// The other end.
    pub peer: String,
}

impl Veth {
    /// Creates a pair named uniquely from `prefix`: `<name>a` (host) and `<name>b`.
    pub fn new(prefix: &str) -> Veth {
        let base = unique(prefix);
        let (host, peer) = (format!("{base}a"), format!("{base}b"));
        sh(&["ip", "link", "add", &host, "type", "veth", "peer", "name", &peer]);
        // Offloads that merge or defer segments would hide what the dataplane does.
        for dev in [&host, &peer] {
            let _ = sh_ok(&[
                "ethtool", "-K", dev, "gro", "off", "lro", "off", "tso", "off", "gso", "off", "tx", "off", "rx", "off",
            ]);
        }
        sh(&["ip", "link", "set", &host, "up"]);
        Veth { host, peer }
    }

    /// Moves the peer end into `ns` and brings it up there.
    pub fn move_peer(&self, ns: &NetNs) {
        sh(&["ip", "link", "set", &self.peer, "netns", ns.name()]);
        let _ = ns.exec(&[
            "ethtool", "-K", &self.peer, "gro", "off", "lro", "off", "tso", "off", "gso", "off", "tx", "off", "rx",
            "off",
        ]);
        ns.ip(&["link", "set", &self.peer, "up"]);
    }

    /// The host end's MAC address.
    pub fn host_mac(&self) -> [u8; 6] {
        parse_mac(&sh(&["ip", "-j", "link", "show", &self.host]))
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes both; the peer may already be gone with its namespace.
        let _ = Command::new("ip").args(["link", "del", &self.host]).stderr(Stdio::null()).status();
    }
}

/// A child process killed (and reaped) on drop.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Wraps a started child.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command line of a dnsmasq that serves only what it is told (a real UDP/DNS
/// server for tests): in the foreground, no configuration file, upstream or hosts file,
/// on `port` of the `listen` addresses, answering `answer` (`/name/address`).
pub fn dnsmasq_args(listen: &[String], port: u16, answer: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--user=root",
        "--pid-file=",
        "--bind-interfaces",
    ]
    .map(String::from)
    .into();
    args.push(format!("--port={port}"));
    args.extend(listen.iter().map(|a| format!("--listen-address={a}")));
    args.push(format!("--address={answer}"));
    args
}

/// Reads `address` from `ip -j link show` output.
pub fn parse_mac(json: &str) -> [u8; 6] {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("ip -j output {json:?}: {e}"));
    let s = v[0]["address"].as_str().unwrap_or_else(|| panic!("no address in {json}"));
    mac_from_str(s)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn mac_from_str(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    assert_eq!(parts.len(), 6, "bad MAC {s}");
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16).unwrap_or_else(|_| panic!("bad MAC {s}"));
    }
    mac
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_to_string(m: &[u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_fit_interfaces_and_differ() {
        let a = unique("rvx");
        let b = unique("rvx");
        assert_ne!(a, b);
        assert!(a.len() <= 15);
    }

    #[test]
    fn mac_round_trip() {
        let m = mac_from_str("02:0a:ff:00:10:01");
        assert_eq!(m, [2, 10, 255, 0, 16, 1]);
        assert_eq!(mac_to_string(&m), "02:0a:ff:00:10:01");
    }
}
