//! A userspace 802.1Q tagging bridge: the test kernel has no `8021q` module, so no VLAN
//! device can tag or untag. [`VlanShim`] joins an untagged (access) interface and a
//! tagged (trunk) one inside a namespace, as a switch's access port on one VLAN would:
//!
//! ```text
//!  access (untagged) ──▶ insert tag {TPID 0x8100, PCP 0, VID vid} after the MACs ──▶ trunk
//!  access ◀── tag removed ◀── frames on trunk tagged with VID vid (others: dropped) ── trunk
//! ```
//!
//! Each side is an `AF_PACKET`/`SOCK_RAW`/`ETH_P_ALL` socket bound to its interface (the
//! bind address is the `sockaddr_ll` that `getifaddrs` reports for it).
//!
//! **Where the tag is on receive.** Linux moves a received frame's outer VLAN tag out of
//! the bytes into packet metadata in `__netif_receive_skb_core` (`skb_vlan_untag`), in
//! software, whatever the device's offloads: `ethtool -K dev rxvlan off` changes nothing
//! on a veth (checked: the frame still arrives untagged, its tag only in
//! `PACKET_AUXDATA`). The usual answer is `PACKET_AUXDATA`, but enabling it needs a
//! `setsockopt` that neither `nix` nor `socket2` wraps safely, and this crate may not use
//! `unsafe`. So each socket carries a classic BPF filter (`SO_ATTACH_FILTER`, which
//! `socket2` does wrap) that reads the metadata through the kernel's ancillary loads
//! (`SKF_AD_PKTTYPE`, `SKF_AD_VLAN_TAG_PRESENT`, `SKF_AD_VLAN_TPID`, `SKF_AD_VLAN_TAG`):
//! - outgoing frames (`PACKET_OUTGOING`, what this namespace's stack or another socket
//!   sends) are not delivered at all (the shim also checks `sll_pkttype` itself);
//! - on the trunk, a frame tagged 0x8100 with VID `vid` is delivered whole (its bytes
//!   are then the untagged frame); any other frame is cut to [`DROP_MARK`] byte, which
//!   the shim counts as dropped;
//! - on the access side, an untagged frame is delivered whole, a tagged one cut to
//!   [`DROP_MARK`] byte (dropped: the access side is untagged).
//!
//! A socket never receives its own transmissions, and each side's socket only sees its
//! own interface, so the shim does not loop. Frames queued before a socket's filter and
//! binding were in place are discarded at start.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use nix::sys::socket::LinkAddr;
use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use testnet::NetNs;

use crate::ipip::{in_netns, POLL};

/// What a filtered-out frame is cut to: shorter than any Ethernet header, so it is not
/// mistaken for a frame to forward.
pub const DROP_MARK: usize = 1;

/// `ETH_P_ALL`.
const ETH_P_ALL: u16 = 0x0003;
/// `ETH_P_8021Q`.
const TPID: u16 = 0x8100;
/// `PACKET_OUTGOING` (`sll_pkttype`).
const PACKET_OUTGOING: u8 = 4;

/// What a [`VlanShim`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlanStats {
    /// Frames from the access side sent tagged on the trunk.
    pub tagged: u64,
    /// Frames from the trunk (tagged with the shim's VID) sent untagged on the access side.
    pub untagged: u64,
    /// Frames dropped: on the trunk untagged or with another VID or TPID, on the access
    /// side tagged, on either side too short for an Ethernet header.
    pub dropped: u64,
    /// Frames the outgoing interface refused (send errors).
    pub send_errors: u64,
}

#[derive(Default)]
struct Counters {
    tagged: AtomicU64,
    untagged: AtomicU64,
    dropped: AtomicU64,
    send_errors: AtomicU64,
}

/// A running tagging bridge (see the module documentation). Dropping it stops its two
/// threads and closes both sockets.
pub struct VlanShim {
    vid: u16,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// One side of the shim: its socket and its interface's index.
struct Side {
    sock: Socket,
    ifindex: usize,
}

impl VlanShim {
    /// Inside `ns`, bridges the untagged interface `access` to the tagged interface
    /// `trunk` on VLAN `vid` (1 to 4094). Both interfaces must exist in `ns`; the shim
    /// brings them up and assigns them nothing.
    pub fn start(ns: &NetNs, trunk: &str, vid: u16, access: &str) -> Result<VlanShim> {
        if !(1..=4094).contains(&vid) {
            bail!("VLAN id {vid}: 1 to 4094");
        }
        for dev in [trunk, access] {
            let out = ns.exec(&["ip", "link", "set", dev, "up"]);
            if !out.status.success() {
                bail!("ip link set {dev} up in {}: {}", ns.name(), String::from_utf8_lossy(&out.stderr));
            }
        }
        let (t, a) = (trunk.to_string(), access.to_string());
        let (trunk_side, access_side) = in_netns(ns, move || {
            let trunk_side = open(&t, &trunk_filter(vid))?;
            let access_side = open(&a, &access_filter())?;
            Ok((trunk_side, access_side))
        })?;
        let (trunk_side, access_side) = (Arc::new(trunk_side), Arc::new(access_side));
        // Built before its threads: if the second fails to start, the first stops as
        // the shim drops.
        let mut shim = VlanShim {
            vid,
            counters: Arc::new(Counters::default()),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        for (from, to, dir) in
            [(&access_side, &trunk_side, Dir::ToTrunk(vid)), (&trunk_side, &access_side, Dir::ToAccess)]
        {
            let (from, to) = (from.clone(), to.clone());
            let (counters, stop) = (shim.counters.clone(), shim.stop.clone());
            let name = match dir {
                Dir::ToTrunk(_) => format!("vlan-{access}"),
                Dir::ToAccess => format!("vlan-{trunk}"),
            };
            let t = std::thread::Builder::new()
                .name(name)
                .spawn(move || forward(&from, &to, dir, &counters, &stop))
                .context("spawn the VLAN shim's thread")?;
            shim.threads.push(t);
        }
        Ok(shim)
    }

    /// The VLAN id.
    pub fn vid(&self) -> u16 {
        self.vid
    }

    /// The counters so far.
    pub fn stats(&self) -> VlanStats {
        let c = &self.counters;
        VlanStats {
            tagged: c.tagged.load(Ordering::Relaxed),
            untagged: c.untagged.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            send_errors: c.send_errors.load(Ordering::Relaxed),
        }
    }
}

impl Drop for VlanShim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Opens the packet socket for `dev` (in the calling thread's namespace): filter first,
/// then bound to the interface, then emptied of what arrived before both were in place.
fn open(dev: &str, filter: &[SockFilter]) -> Result<Side> {
    let link = link_addr(dev)?;
    let sock = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))))
        .with_context(|| format!("AF_PACKET socket for {dev}"))?;
    sock.attach_filter(filter).with_context(|| format!("BPF filter on {dev}'s socket"))?;
    // The address from getifaddrs has sll_protocol 0: the socket keeps its ETH_P_ALL.
    nix::sys::socket::bind(sock.as_raw_fd(), &link).with_context(|| format!("bind to {dev}"))?;
    sock.set_nonblocking(true)?;
    let mut buf = [0u8; 2048];
    while nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty()).is_ok() {}
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(POLL))?;
    // Room for a burst (the kernel caps it at net.core.rmem_max).
    let _ = sock.set_recv_buffer_size(1 << 22);
    Ok(Side { sock, ifindex: link.ifindex() })
}

/// The link-layer address (`sockaddr_ll`, with its ifindex) of `dev` in the calling
/// thread's namespace.
fn link_addr(dev: &str) -> Result<LinkAddr> {
    for ifa in nix::ifaddrs::getifaddrs().context("getifaddrs")? {
        if ifa.interface_name != dev {
            continue;
        }
        if let Some(link) = ifa.address.as_ref().and_then(|a| a.as_link_addr()) {
            if link.ifindex() != 0 {
                return Ok(*link);
            }
        }
    }
    bail!("no interface {dev} (AF_PACKET address from getifaddrs)")
}

#[derive(Clone, Copy)]
enum Dir {
    /// Access to trunk, tagging with this VID.
    ToTrunk(u16),
    /// Trunk to access (the filter let only the shim's VID through, already untagged).
    ToAccess,
}

fn forward(from: &Side, to: &Side, dir: Dir, c: &Counters, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(65536 + 4);
    while !stop.load(Ordering::Relaxed) {
        let (n, addr) = match nix::sys::socket::recvfrom::<LinkAddr>(from.sock.as_raw_fd(), &mut buf) {
            Ok(r) => r,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(_) => {
                std::thread::sleep(POLL);
                continue;
            }
        };
        if let Some(a) = addr {
            // The filter already keeps these out; the check costs nothing.
            if a.pkttype() == PACKET_OUTGOING || a.ifindex() != from.ifindex {
                continue;
            }
        }
        if n < 14 {
            // DROP_MARK: the filter's verdict (or a runt).
            c.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let frame = &buf[..n];
        let (sent, counter) = match dir {
            Dir::ToTrunk(vid) => {
                out.clear();
                out.extend_from_slice(&frame[..12]);
                out.extend_from_slice(&TPID.to_be_bytes());
                out.extend_from_slice(&vid.to_be_bytes());
                out.extend_from_slice(&frame[12..]);
                (to.sock.send(&out), &c.tagged)
            }
            Dir::ToAccess => (to.sock.send(frame), &c.untagged),
        };
        match sent {
            Ok(_) => counter.fetch_add(1, Ordering::Relaxed),
            Err(_) => c.send_errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

// Classic BPF (linux/filter.h): opcodes and the ancillary loads.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
const SKF_AD_PKTTYPE: u32 = SKF_AD_OFF + 4;
const SKF_AD_VLAN_TAG: u32 = SKF_AD_OFF + 44;
const SKF_AD_VLAN_TAG_PRESENT: u32 = SKF_AD_OFF + 48;
const SKF_AD_VLAN_TPID: u32 = SKF_AD_OFF + 60;
/// "Deliver the whole frame".
const WHOLE: u32 = 0x0004_0000;

/// The trunk's filter: outgoing → nothing; tagged 0x8100 with `vid` → whole; anything
/// else → [`DROP_MARK`] byte.
fn trunk_filter(vid: u16) -> Vec<SockFilter> {
    vec![
        SockFilter::new(LD_W_ABS, 0, 0, SKF_AD_PKTTYPE),          // 0
        SockFilter::new(JEQ_K, 9, 0, u32::from(PACKET_OUTGOING)), // 1: → 11
        SockFilter::new(LD_W_ABS, 0, 0, SKF_AD_VLAN_TAG_PRESENT), // 2
        SockFilter::new(JEQ_K, 6, 0, 0),                          // 3: untagged → 10
        SockFilter::new(LD_W_ABS, 0, 0, SKF_AD_VLAN_TPID),        // 4
        SockFilter::new(JEQ_K, 0, 4, u32::from(TPID)),            // 5: other TPID → 10
        SockFilter::new(LD_W_ABS, 0, 0, SKF_AD_VLAN_TAG),         // 6: the TCI
        SockFilter::new(AND_K, 0, 0, 0x0fff),                     // 7: its VID
        SockFilter::new(JEQ_K, 0, 1, u32::from(vid)),             // 8: other VID → 10
        SockFilter::new(RET_K, 0, 0, WHOLE),                      // 9
        SockFilter::new(RET_K, 0, 0, DROP_MARK as u32),           // 10
        SockFilter::new(RET_K, 0, 0, 0),                          // 11
    ]
}

/// The access side's filter: outgoing → nothing; untagged → whole; tagged →
/// [`DROP_MARK`] byte.
fn access_filter() -> Vec<SockFilter> {
    vec![
        SockFilter::new(LD_W_ABS, 0, 0, SKF_AD_PKTTYPE),          // 0
        SockFilter::new(JEQ_K, 4, 0, u32::from(PACKET_OUTGOING)), // 1: → 6
        SockFilter::new(LD_W_ABS, 0, 0, SKF_AD_VLAN_TAG_PRESENT), // 2
        SockFilter::new(JEQ_K, 0, 1, 0),                          // 3: tagged → 5
        SockFilter::new(RET_K, 0, 0, WHOLE),                      // 4
        SockFilter::new(RET_K, 0, 0, DROP_MARK as u32),           // 5
        SockFilter::new(RET_K, 0, 0, 0),                          // 6
    ]
}
