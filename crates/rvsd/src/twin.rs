//! Kernel twins: every dataplane port `dpdkN` may have a kernel interface `dpdkN.kni`
//! with the port's MAC (tap PMD, or virtio-user where /dev/vhost-net exists), through
//! which the kernel sees what the dataplane does not handle (`kni_host` routes,
//! protocols it does not speak, forward2kni copies) and sends what it wants out of the
//! port. This room holds a twin's creation, the pump that moves frames between the
//! workers and the twins (run by the control thread: the tap PMD makes a syscall per
//! poll, which the workers must not pay), and its link following the port's. A VLAN
//! sub-interface `dpdkN.V` has its own twin `dpdkN.V.kni` (untagged frames; the workers
//! tag and untag), whose link follows its port's.
//!
//! One name: the concept is the kernel *twin* in code, configuration (`twin`,
//! `twin_addrs`) and documents; DPVS's spellings stay where DPVS operators type them
//! (`kni_host` routes, `forward2kni`, the `.kni` interface suffix).

use anyhow::{Context, Result};
use dpdk::{Burst, Mempool, Port, PortConfig, RingConsumer, RingProducer, RxQueue, TxBuffer};

use crate::config::TwinKind;
use crate::control::PortHandle;

/// Frames moved each way per control round, at most (in bursts).
pub const BURSTS_PER_ROUND: usize = 64;

/// A port's kernel twin, driven by the control thread only (the tap PMD makes a
/// syscall per poll, which the workers must not pay).
pub struct Twin {
    /// The twin's DPDK port (tap PMD).
    pub port: Port,
    /// The kernel interface name (`dpdk0.kni`).
    pub ifname: String,
    /// Its receive queue: what the kernel sends.
    pub rx: RxQueue,
    /// Its transmit buffer: what goes up to the kernel.
    pub tx: TxBuffer,
    /// The link state last mirrored from the port.
    pub link_up: bool,
    /// Tap or virtio-user (a VLAN added later gets its port's kind).
    pub kind: TwinKind,
}

impl Twin {
    /// Creates twin number `i`, `<name>.kni` with the port's MAC, as `kind` says (none,
    /// tap or virtio-user), and puts `twin_addrs` on it.
    pub fn create(
        i: usize,
        name: &str,
        kind: TwinKind,
        mtu: u16,
        twin_addrs: &[ipnet::IpNet],
        mac: wire::EthernetAddress,
        pool: &Mempool,
    ) -> Result<Option<Twin>> {
        let ifname = format!("{name}.kni");
        let (dev, args) = match kind {
            TwinKind::None => return Ok(None),
            TwinKind::Tap => (format!("net_tap_rvs{i}"), format!("iface={ifname},mac={mac}")),
            TwinKind::VirtioUser => {
                if !std::path::Path::new("/dev/vhost-net").exists() {
                    anyhow::bail!(
                        "port {name}: twin = \"virtio_user\" needs /dev/vhost-net (modprobe vhost_net), or use twin = \"tap\""
                    );
                }
                (
                    format!("virtio_user_rvs{i}"),
                    format!("path=/dev/vhost-net,queues=1,queue_size=1024,iface={ifname},mac={mac}"),
                )
            }
        };
        let mut port = Port::create_vdev(&dev, &args).with_context(|| format!("kernel twin {ifname}"))?;
        let cfg = PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 512,
            tx_desc: 512,
            rss_hf: 0,
            mtu: Some(mtu),
            promiscuous: false,
            lsc_interrupt: false,
        };
        let (mut rx, mut tx) = port.configure(&cfg, pool).with_context(|| format!("configure twin {ifname}"))?;
        port.start().with_context(|| format!("start twin {ifname}"))?;
        tracing::info!(port = %name, twin = %ifname, %mac, "kernel twin up");
        harden(&ifname);
        for net in twin_addrs {
            // The kernel's side of the twin: configured through iproute2, like any
            // interface (control path, once at start).
            let mut cmd = std::process::Command::new("ip");
            cmd.args(["addr", "replace", &net.to_string(), "dev", &ifname]);
            if net.addr().is_ipv6() {
                cmd.arg("nodad");
            }
            match cmd.output() {
                Ok(o) if o.status.success() => tracing::info!(twin = %ifname, addr = %net, "twin address added"),
                Ok(o) => {
                    tracing::warn!(twin = %ifname, addr = %net, "ip addr: {}", String::from_utf8_lossy(&o.stderr).trim())
                }
                Err(e) => tracing::warn!(twin = %ifname, addr = %net, "ip addr: {e}"),
            }
        }
        Ok(Some(Twin { port, ifname, rx: rx.remove(0), tx: tx.remove(0), link_up: true, kind }))
    }

    /// Moves frames between the workers and the kernel twins: up (the workers' rings,
    /// the control protocols' first → twin transmit) and down (twin receive → worker 0,
    /// which sends them out of the port). True if anything moved.
    pub fn pump(
        up: &mut [RingConsumer; 2],
        down: &mut RingProducer,
        ports: &mut [PortHandle],
        vlans: &mut [VlanHandle],
    ) -> bool {
        let mut moved = false;
        let mut b = Burst::new();
        let n = ports.len();
        for ring in up.iter_mut() {
            for _ in 0..BURSTS_PER_ROUND {
                if ring.dequeue_burst(&mut b) == 0 {
                    break;
                }
                moved = true;
                for m in b.drain() {
                    let i = m.port() as usize;
                    let twin = match i.checked_sub(n) {
                        None => ports.get_mut(i).and_then(|p| p.twin.as_mut()),
                        Some(j) => vlans.get_mut(j).and_then(|v| v.twin.as_mut()),
                    };
                    match twin {
                        Some(t) => t.tx.push(m),
                        None => drop(m),
                    }
                }
            }
        }
        let twins = ports.iter_mut().map(|p| &mut p.twin).chain(vlans.iter_mut().map(|v| &mut v.twin));
        for (i, twin) in twins.enumerate() {
            let Some(t) = twin else { continue };
            t.tx.flush();
            for _ in 0..BURSTS_PER_ROUND {
                if t.rx.rx_burst(&mut b) == 0 {
                    break;
                }
                moved = true;
                for m in b.as_mut_slice().iter_mut().flatten() {
                    m.set_port(i as u16);
                }
                // A full ring drops what does not fit (the burst frees it).
                down.enqueue_burst(&mut b);
                b.clear();
            }
        }
        moved
    }

    /// Makes each twin's link follow its port's (a VLAN's twin, its parent port's).
    pub fn mirror_links(ports: &mut [PortHandle], vlans: &mut [VlanHandle]) {
        let links: Vec<bool> = ports.iter().map(|p| p.port.link().map(|l| l.up).unwrap_or(false)).collect();
        let twins = ports
            .iter_mut()
            .enumerate()
            .map(|(i, p)| (&p.name, i, &mut p.twin))
            .chain(vlans.iter_mut().map(|v| (&v.name, v.parent, &mut v.twin)));
        for (name, parent, twin) in twins {
            let up = links.get(parent).copied().unwrap_or(false);
            if let Some(t) = twin {
                if t.link_up != up && t.port.set_link(up).is_ok() {
                    tracing::info!(port = %name, twin = %t.ifname, up, "twin link follows the port");
                    t.link_up = up;
                }
            }
        }
    }
}

/// A VLAN sub-interface the control thread holds: its place and its kernel twin.
pub struct VlanHandle {
    /// Its name (`dpdk0.100`).
    pub name: String,
    /// The index of its (physical) port.
    pub parent: usize,
    /// Its VLAN id.
    pub id: u16,
    /// Its kernel twin (`dpdk0.100.kni`), when its port has one.
    pub twin: Option<Twin>,
}

/// What a twin's kernel takes from the wire is whatever reaches the port, from anyone
/// on the link: it must not let that configure it. Router advertisements (addresses and
/// a default route for the kernel's own traffic: health checks, BGP, sync) and
/// redirects are refused, as on a router's uplink. (IPv4's `accept_redirects` of an
/// interface of a host that does not forward is ORed with `all`'s: there the host's
/// `all` decides too; docs/CONFIG.md says so.) Once at creation; a sysctl the kernel
/// lacks (IPv6 disabled) is skipped, logged.
fn harden(ifname: &str) {
    for (path, value) in [
        (format!("/proc/sys/net/ipv6/conf/{ifname}/accept_ra"), "0"),
        (format!("/proc/sys/net/ipv6/conf/{ifname}/accept_redirects"), "0"),
        (format!("/proc/sys/net/ipv4/conf/{ifname}/accept_redirects"), "0"),
    ] {
        if let Err(e) = std::fs::write(&path, value) {
            tracing::warn!(twin = %ifname, "{path}: {e}");
        }
    }
}
