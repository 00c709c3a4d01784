//! A userspace IPIP decapsulator for a real server's namespace: the test kernel has no
//! `ipip` (nor `ip6_tunnel`) module, so a real server cannot terminate the tunnel a load
//! balancer in tunnel mode sends it. [`IpipDecap`] stands in for `tunl0`:
//!
//! ```text
//!  LB ── outer IPv4 (proto 4) ──▶ eth0 ─▶ raw socket (AF_INET, SOCK_RAW, IPPROTO_IPIP)
//!                                             │ strip the outer header (its IHL)
//!                                             ▼
//!                    kernel stack ◀── TUN device `tun_name` (IFF_TUN | IFF_NO_PI)
//! ```
//!
//! The inner packet enters the namespace's stack as if it had arrived on `tun_name`, so
//! the caller gives that device the VIP (`ip addr add VIP/32 dev tun_name`) and turns
//! `rp_filter` off for it (and for `all`): the inner source is routed out of another
//! device. Replies leave directly, not encapsulated, as with a real tunnel device.
//!
//! [`IpipDecap::start_v6`] is the IPv6-in-IPv6 variant (next header 41 over IPv6). An
//! `AF_INET6` raw socket never delivers the IPv6 header (nor extension headers): what it
//! reads is the payload after them, which for next header 41 is the whole inner packet.
//! So the v6 variant has no outer header to strip; it checks the inner version and
//! writes it as is. (IPv6 over *IPv4*, protocol 41 in an IPv4 header, is not handled.)
//!
//! Neither raw socket steals anything: the kernel has no handler for protocols 4 and 41
//! here, and a packet that a raw socket took is not answered with "protocol
//! unreachable". The TUN device is attached with `TUNSETIFF` by the `tun-tap` crate
//! (rvs's own crates may not use `unsafe`, and no safe wrapper of that ioctl exists in
//! `nix` or `rustix`); it is not persistent, so it disappears when the shim drops.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use testnet::NetNs;
use tun_tap::{Iface, Mode};

/// How long a shim's thread waits for a packet before it looks at its stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Runs `f` on a new thread that has entered `ns` (`setns` on `/var/run/netns/NAME`) and
/// returns what it returns. Sockets and devices that `f` opens belong to `ns` for good,
/// so they can be used from any thread afterwards.
pub fn in_netns<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let path = format!("/var/run/netns/{}", ns.name());
    let what = path.clone();
    std::thread::spawn(move || {
        let file = File::open(&path).with_context(|| format!("open {path}"))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).with_context(|| format!("setns {path}"))?;
        f()
    })
    .join()
    .map_err(|_| anyhow!("the thread in {what} panicked"))?
}

/// What an [`IpipDecap`] has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpipStats {
    /// Packets the raw socket received.
    pub received: u64,
    /// Inner packets written to the TUN device.
    pub decapsulated: u64,
    /// Packets dropped as malformed: truncated outer or inner header, bad IHL or total
    /// length, or an inner packet of the wrong IP version.
    pub malformed: u64,
    /// Inner packets the TUN device refused (write errors).
    pub write_errors: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    decapsulated: AtomicU64,
    malformed: AtomicU64,
    write_errors: AtomicU64,
}

/// The outer family a decapsulator reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outer {
    /// IPv4 in IPv4: IPv4 protocol 4; the raw socket delivers the outer header too.
    V4,
    /// IPv6 in IPv6: IPv6 next header 41; the raw socket delivers only the payload.
    V6,
}

/// A running decapsulator (see the module documentation). Dropping it stops its thread,
/// closes the raw socket and the TUN device (which removes the device).
pub struct IpipDecap {
    tun_name: String,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl IpipDecap {
    /// IPv4-in-IPv4: inside `ns`, creates the TUN device `tun_name` (at most 15 bytes),
    /// brings it up and decapsulates every IPv4 packet of protocol 4 that reaches the
    /// namespace's stack. The caller adds the device's addresses and routes.
    pub fn start(ns: &NetNs, tun_name: &str) -> Result<IpipDecap> {
        IpipDecap::start_outer(ns, tun_name, Outer::V4)
    }

    /// IPv6-in-IPv6: as [`IpipDecap::start`] for IPv6 packets of next header 41 (see the
    /// module documentation for what the raw socket delivers).
    pub fn start_v6(ns: &NetNs, tun_name: &str) -> Result<IpipDecap> {
        IpipDecap::start_outer(ns, tun_name, Outer::V6)
    }

    fn start_outer(ns: &NetNs, tun_name: &str, outer: Outer) -> Result<IpipDecap> {
        if tun_name.is_empty() || tun_name.len() > 15 {
            bail!("TUN device name {tun_name:?}: 1 to 15 bytes");
        }
        let name = tun_name.to_string();
        let (tun, sock) = in_netns(ns, move || {
            let tun = Iface::without_packet_info(&name, Mode::Tun)
                .with_context(|| format!("TUN device {name} (/dev/net/tun, TUNSETIFF)"))?;
            if tun.name() != name {
                bail!("TUN device {name} came up as {}", tun.name());
            }
            let (domain, proto) = match outer {
                Outer::V4 => (Domain::IPV4, IPPROTO_IPIP),
                Outer::V6 => (Domain::IPV6, IPPROTO_IPV6),
            };
            let sock = Socket::new(domain, Type::RAW, Some(Protocol::from(proto)))
                .with_context(|| format!("raw socket for IP protocol {proto}"))?;
            sock.set_read_timeout(Some(POLL))?;
            // Room for a burst (the kernel caps it at net.core.rmem_max).
            let _ = sock.set_recv_buffer_size(1 << 22);
            Ok((tun, sock))
        })?;
        let out = ns.exec(&["ip", "link", "set", tun_name, "up"]);
        if !out.status.success() {
            bail!("ip link set {tun_name} up in {}: {}", ns.name(), String::from_utf8_lossy(&out.stderr));
        }
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (counters, stop) = (counters.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("ipip-{tun_name}"))
                .spawn(move || run(&sock, &tun, outer, &counters, &stop))
                .context("spawn the decapsulator's thread")?
        };
        Ok(IpipDecap { tun_name: tun_name.to_string(), counters, stop, thread: Some(thread) })
    }

    /// The TUN device's name.
    pub fn tun_name(&self) -> &str {
        &self.tun_name
    }

    /// The counters so far.
    pub fn stats(&self) -> IpipStats {
        let c = &self.counters;
        IpipStats {
            received: c.received.load(Ordering::Relaxed),
            decapsulated: c.decapsulated.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Packets the raw socket received.
    pub fn received(&self) -> u64 {
        self.counters.received.load(Ordering::Relaxed)
    }

    /// Inner packets delivered to the stack through the TUN device.
    pub fn decapsulated(&self) -> u64 {
        self.counters.decapsulated.load(Ordering::Relaxed)
    }

    /// Packets dropped as malformed.
    pub fn malformed(&self) -> u64 {
        self.counters.malformed.load(Ordering::Relaxed)
    }
}

impl Drop for IpipDecap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `IPPROTO_IPIP`: IPv4 encapsulated (in IPv4 here).
const IPPROTO_IPIP: i32 = 4;
/// `IPPROTO_IPV6`: IPv6 encapsulated (in IPv6 here).
const IPPROTO_IPV6: i32 = 41;

fn run(sock: &Socket, tun: &Iface, outer: Outer, c: &Counters, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    let mut reader = sock;
    while !stop.load(Ordering::Relaxed) {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                continue
            }
            Err(_) => {
                // Not expected on a raw socket; do not spin on it.
                std::thread::sleep(POLL);
                continue;
            }
        };
        c.received.fetch_add(1, Ordering::Relaxed);
        let inner = match outer {
            Outer::V4 => inner_of_ipv4(&buf[..n]),
            Outer::V6 => inner_of_ipv6_payload(&buf[..n]),
        };
        match inner {
            Some(inner) => match tun.send(inner) {
                Ok(_) => c.decapsulated.fetch_add(1, Ordering::Relaxed),
                Err(_) => c.write_errors.fetch_add(1, Ordering::Relaxed),
            },
            None => c.malformed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// The inner IPv4 packet of an IPIP packet (outer header included, as an `AF_INET` raw
/// socket delivers it), bounded by both headers' total lengths; `None` if malformed.
pub fn inner_of_ipv4(pkt: &[u8]) -> Option<&[u8]> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt[9] != 4 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || total < ihl + 20 || total > pkt.len() {
        return None;
    }
    inner_ipv4(&pkt[ihl..total])
}

fn inner_ipv4(inner: &[u8]) -> Option<&[u8]> {
    if inner.len() < 20 || inner[0] >> 4 != 4 || usize::from(inner[0] & 0x0f) * 4 < 20 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([inner[2], inner[3]]));
    if total < usize::from(inner[0] & 0x0f) * 4 || total > inner.len() {
        return None;
    }
    Some(&inner[..total])
}

/// The inner IPv6 packet of an IPv6-in-IPv6 packet as an `AF_INET6` raw socket delivers
/// it (the payload after the outer header), bounded by its payload length; `None` if
/// malformed.
pub fn inner_of_ipv6_payload(payload: &[u8]) -> Option<&[u8]> {
    if payload.len() < 40 || payload[0] >> 4 != 6 {
        return None;
    }
    let total = 40 + usize::from(u16::from_be_bytes([payload[4], payload[5]]));
    if total > payload.len() {
        return None;
    }
    Some(&payload[..total])
}
