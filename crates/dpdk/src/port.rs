//! Ethernet ports: configuration, queues, link, statistics.

use std::ffi::{c_char, CStr, CString};
use std::sync::Arc;

use crate::burst::{Burst, TxBuffer, BURST_SIZE};
use crate::error::{check, Error, Result};
use crate::mempool::Mempool;
use crate::ring::MbufRing;

/// RSS over IP addresses (IPv4, IPv6, fragments, extension headers).
pub const RSS_IP: u64 = (1 << 2) | (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 12) | (1 << 15);
/// RSS over TCP ports (IPv4, IPv6).
pub const RSS_TCP: u64 = (1 << 4) | (1 << 10) | (1 << 16);
/// RSS over UDP ports (IPv4, IPv6).
pub const RSS_UDP: u64 = (1 << 5) | (1 << 11) | (1 << 17);

/// How to set a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues (one per worker polling the port).
    pub rx_queues: u16,
    /// Transmit queues (one per worker sending on the port).
    pub tx_queues: u16,
    /// Receive descriptors per queue (adjusted to the driver's limits).
    pub rx_desc: u16,
    /// Transmit descriptors per queue (adjusted to the driver's limits).
    pub tx_desc: u16,
    /// RSS hash functions wanted (RSS_IP | RSS_TCP | ...); masked by what the device
    /// supports; ignored with one receive queue.
    pub rss_hf: u64,
    /// MTU to set, if any.
    pub mtu: Option<u16>,
    /// Receive frames for every destination MAC.
    pub promiscuous: bool,
    /// Link-state-change interrupts: a bond needs them for slaves whose driver
    /// announces them (it then does not poll those slaves' links).
    pub lsc_interrupt: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss_hf: RSS_IP | RSS_TCP | RSS_UDP,
            mtu: None,
            promiscuous: false,
            lsc_interrupt: false,
        }
    }
}

/// Static facts about a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The device name (`net_tap0`, `0000:01:00.0`, ...).
    pub name: String,
    /// The driver (`net_tap`, `net_ixgbe`, ...).
    pub driver: String,
    /// Most receive queues the device has.
    pub max_rx_queues: u16,
    /// Most transmit queues the device has.
    pub max_tx_queues: u16,
    /// RSS hash functions the device supports.
    pub rss_offloads: u64,
    /// Smallest and largest MTU.
    pub mtu_range: (u16, u16),
    /// NUMA socket (-1 if unknown).
    pub socket: i32,
}

/// Link state as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic counters of a port (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped because no descriptor was free (rx too slow).
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive failures for lack of mbufs.
    pub rx_nombuf: u64,
    /// Packets received per queue (first 16 queues).
    pub q_ipackets: [u64; 16],
    /// Packets sent per queue (first 16 queues).
    pub q_opackets: [u64; 16],
}

/// An Ethernet port owned by this process. Dropping it stops and closes the device
/// (and removes it, if it was a virtual device this process created).
pub struct Port {
    id: u16,
    vdev: Option<CString>,
    bond: Option<CString>,
    started: bool,
    _rings: Vec<Arc<MbufRing>>,
}

/// One receive queue of a port, handed out once by [`Port::configure`] so exactly one
/// thread polls it.
pub struct RxQueue {
    port: u16,
    queue: u16,
}

impl RxQueue {
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue number.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to the burst's free room; returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let len = burst.len;
        let room = BURST_SIZE - len;
        if room == 0 {
            return 0;
        }
        // SAFETY: the pointer array has `room` empty (null) slots from `len`; the driver
        // writes at most `room` owned mbuf pointers there. This queue is polled only here.
        let n = unsafe { dpdk_sys::rvs_eth_rx_burst(self.port, self.queue, burst.raw_ptr().add(len), room as u16) }
            as usize;
        burst.len += n;
        n
    }
}

fn c_name(op: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(op, format!("{s:?} contains NUL")))
}

impl Port {
    fn owned(id: u16) -> Port {
        Port { id, vdev: None, bond: None, started: false, _rings: Vec::new() }
    }

    /// Ports the EAL knows about (probed devices and vdevs).
    pub fn count() -> u16 {
        // SAFETY: plain query.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }

    /// Takes ownership of the port with this id (probed at EAL init, e.g. by `--vdev`
    /// or `-a`). Each port must be owned once.
    pub fn from_id(id: u16) -> Result<Port> {
        // SAFETY: plain query.
        if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(Error::invalid(format!("port {id}"), "no such port"));
        }
        Ok(Port::owned(id))
    }

    /// Takes ownership of the port with this device name (`net_tap0`, `0000:01:00.0`).
    pub fn by_name(name: &str) -> Result<Port> {
        let op = format!("rte_eth_dev_get_port_by_name({name})");
        let c = c_name(&op, name)?;
        let mut id = 0u16;
        // SAFETY: valid C string and out pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        check(|| op, rc)?;
        Ok(Port::owned(id))
    }

    /// Creates a virtual device (`net_tap0`, `iface=dpdk0.kni` ...) at run time and takes
    /// its port; the device is removed again when the port is dropped.
    pub fn create_vdev(name: &str, args: &str) -> Result<Port> {
        let op = format!("rte_vdev_init({name}, {args})");
        let (n, a) = (c_name(&op, name)?, c_name(&op, args)?);
        // SAFETY: valid C strings.
        let rc = unsafe { dpdk_sys::rte_vdev_init(n.as_ptr(), a.as_ptr()) };
        check(|| op, rc)?;
        let mut p = Port::by_name(name)?;
        p.vdev = Some(n);
        Ok(p)
    }

    /// Creates a `net_ring` port receiving from `rx` and sending into `tx` (one queue
    /// per ring). Two ports with swapped rings form a back-to-back pair.
    pub fn from_rings(name: &str, rx: &[Arc<MbufRing>], tx: &[Arc<MbufRing>]) -> Result<Port> {
        let op = format!("rte_eth_from_rings({name})");
        let n = c_name(&op, name)?;
        let rxp: Vec<*mut dpdk_sys::rte_ring> = rx.iter().map(|r| r.as_ptr()).collect();
        let txp: Vec<*mut dpdk_sys::rte_ring> = tx.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: valid name and arrays of valid rings; the rings outlive the port
        // because the port keeps an Arc to each.
        let rc = unsafe {
            dpdk_sys::rte_eth_from_rings(n.as_ptr(), rxp.as_ptr(), rxp.len() as u32, txp.as_ptr(), txp.len() as u32, 0)
        };
        let id = check(|| op, rc)? as u16;
        let mut p = Port::owned(id);
        p.vdev = Some(n);
        p._rings = rx.iter().chain(tx).cloned().collect();
        Ok(p)
    }

    pub(crate) fn set_bond_name(&mut self, name: CString) {
        self.bond = Some(name);
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Device name, driver, limits.
    pub fn info(&self) -> Result<PortInfo> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: valid port and out pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) };
        check(|| format!("rte_eth_dev_info_get(port {})", self.id), rc)?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: the driver name is a static C string owned by the driver.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        let mut name = [0 as c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buffer of RTE_ETH_NAME_MAX_LEN bytes as the API requires.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(self.id, name.as_mut_ptr()) };
        check(|| format!("rte_eth_dev_get_name_by_port({})", self.id), rc)?;
        // SAFETY: DPDK wrote a NUL-terminated name into the buffer.
        let name = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
        // SAFETY: plain query.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) };
        Ok(PortInfo {
            name,
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            mtu_range: (info.min_mtu, info.max_mtu),
            socket,
        })
    }

    /// Configures queues, RSS and MTU, sets up every queue with buffers from `pool`, and
    /// hands out the queues: one [`RxQueue`] and one [`TxBuffer`] each. The pool must
    /// outlive the port's use. The port must be stopped.
    pub fn configure(&mut self, cfg: &PortConfig, pool: &Mempool) -> Result<(Vec<RxQueue>, Vec<TxBuffer>)> {
        let info = self.info()?;
        let id = self.id;
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            return Err(Error::invalid(format!("configure port {id}"), "at least one rx and one tx queue are needed"));
        }
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(Error::invalid(
                format!("configure port {id} ({})", info.name),
                format!(
                    "{} rx / {} tx queues asked, the device has at most {} / {}",
                    cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if cfg.lsc_interrupt {
            conf.intr_conf.set_lsc(1);
        }
        let rss_hf = cfg.rss_hf & info.rss_offloads;
        if cfg.rx_queues > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: valid port and configuration struct.
        let rc = unsafe { dpdk_sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf) };
        check(|| format!("rte_eth_dev_configure(port {id}, {} rx, {} tx)", cfg.rx_queues, cfg.tx_queues), rc)?;
        let (mut nrx, mut ntx) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid port and out pointers.
        let rc = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx) };
        check(|| format!("rte_eth_dev_adjust_nb_rx_tx_desc(port {id})"), rc)?;
        let socket = if info.socket < 0 { 0 } else { info.socket as u32 };
        let mut rxq = Vec::new();
        for q in 0..cfg.rx_queues {
            // SAFETY: valid port/queue; NULL rx_conf means driver defaults; the pool is valid.
            let rc = unsafe { dpdk_sys::rte_eth_rx_queue_setup(id, q, nrx, socket, std::ptr::null(), pool.as_ptr()) };
            check(|| format!("rte_eth_rx_queue_setup(port {id}, queue {q})"), rc)?;
            rxq.push(RxQueue { port: id, queue: q });
        }
        let mut txq = Vec::new();
        for q in 0..cfg.tx_queues {
            // SAFETY: valid port/queue; NULL tx_conf means driver defaults.
            let rc = unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, ntx, socket, std::ptr::null()) };
            check(|| format!("rte_eth_tx_queue_setup(port {id}, queue {q})"), rc)?;
            txq.push(TxBuffer::new(id, q));
        }
        // Only when it differs: some drivers (the bonding driver) refuse to set the
        // MTU they already have. Drivers without an MTU setting (pcap, null) carry
        // whatever they are given; the caller's MTU still bounds what it sends.
        if let Some(mtu) = cfg.mtu {
            if self.mtu().ok() != Some(mtu) {
                match self.set_mtu(mtu) {
                    Err(e) if e.errno == libc::ENOTSUP => {
                        tracing::warn!(
                            port = id,
                            mtu,
                            "the driver has no MTU setting ({e}); the MTU applies to what is sent"
                        )
                    }
                    r => r?,
                }
            }
        }
        self.set_promiscuous(cfg.promiscuous)?;
        Ok((rxq, txq))
    }

    /// Starts the device.
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: valid, configured port.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        check(|| format!("rte_eth_dev_start(port {})", self.id), rc)?;
        self.started = true;
        Ok(())
    }

    /// Stops the device (queues stop; configuration stays).
    pub fn stop(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: valid port.
        let rc = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
        check(|| format!("rte_eth_dev_stop(port {})", self.id), rc)?;
        self.started = false;
        Ok(())
    }

    /// Sets the MTU.
    pub fn set_mtu(&mut self, mtu: u16) -> Result<()> {
        // SAFETY: valid port.
        let rc = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id, mtu) };
        check(|| format!("rte_eth_dev_set_mtu(port {}, {mtu})", self.id), rc).map(drop)
    }

    /// The MTU.
    pub fn mtu(&self) -> Result<u16> {
        let mut mtu = 0u16;
        // SAFETY: valid port and out pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_mtu(self.id, &mut mtu) };
        check(|| format!("rte_eth_dev_get_mtu(port {})", self.id), rc)?;
        Ok(mtu)
    }

    /// Turns promiscuous reception on or off.
    pub fn set_promiscuous(&mut self, on: bool) -> Result<()> {
        // SAFETY: valid port.
        let rc = unsafe {
            if on {
                dpdk_sys::rte_eth_promiscuous_enable(self.id)
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        // Some virtual drivers cannot change it; that is not worth failing over.
        if rc == -libc::ENOTSUP {
            return Ok(());
        }
        check(|| format!("rte_eth_promiscuous_{}(port {})", if on { "enable" } else { "disable" }, self.id), rc)
            .map(drop)
    }

    /// Whether promiscuous reception is on.
    pub fn promiscuous(&self) -> bool {
        // SAFETY: valid port.
        unsafe { dpdk_sys::rte_eth_promiscuous_get(self.id) == 1 }
    }

    /// Sets the link administratively up or down.
    pub fn set_link(&mut self, up: bool) -> Result<()> {
        // SAFETY: valid port.
        let rc = unsafe {
            if up {
                dpdk_sys::rte_eth_dev_set_link_up(self.id)
            } else {
                dpdk_sys::rte_eth_dev_set_link_down(self.id)
            }
        };
        check(|| format!("rte_eth_dev_set_link_{}(port {})", if up { "up" } else { "down" }, self.id), rc).map(drop)
    }

    /// The link state, without waiting.
    pub fn link(&self) -> Result<LinkStatus> {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port and out pointer.
        let rc = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut l) };
        check(|| format!("rte_eth_link_get_nowait(port {})", self.id), rc)?;
        Ok(LinkStatus { up: l.link_status() == 1, speed_mbps: l.link_speed, full_duplex: l.link_duplex() == 1 })
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port and out pointer.
        let rc = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut a) };
        check(|| format!("rte_eth_macaddr_get(port {})", self.id), rc)?;
        Ok(a.addr_bytes)
    }

    /// Sets the port's MAC (its default, primary address): what it sends from and, out
    /// of promiscuous mode, what it receives. A bond passes it to its slaves; a tap
    /// port's kernel interface takes it.
    pub fn set_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        let mut a = dpdk_sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: valid port; DPDK copies the address.
        let rc = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.id, &mut a) };
        check(|| format!("rte_eth_dev_default_mac_addr_set(port {})", self.id), rc).map(drop)
    }

    /// The basic counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port and out pointer.
        let rc = unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        check(|| format!("rte_eth_stats_get(port {})", self.id), rc)?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            q_ipackets: s.q_ipackets,
            q_opackets: s.q_opackets,
        })
    }

    /// Zeroes the basic counters.
    pub fn reset_stats(&mut self) -> Result<()> {
        // SAFETY: valid port.
        let rc = unsafe { dpdk_sys::rte_eth_stats_reset(self.id) };
        check(|| format!("rte_eth_stats_reset(port {})", self.id), rc).map(drop)
    }

    /// The driver's extended counters, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        let op = || format!("rte_eth_xstats_get(port {})", self.id);
        // SAFETY: a NULL array with size 0 asks for the count.
        let n = check(op, unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) })? as usize;
        let mut names = vec![dpdk_sys::rte_eth_xstat_name { name: [0; 64] }; n];
        let mut vals = vec![dpdk_sys::rte_eth_xstat::default(); n];
        // SAFETY: arrays of n entries each.
        let got =
            check(op, unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32) })? as usize;
        // SAFETY: as above.
        let got2 = check(op, unsafe { dpdk_sys::rte_eth_xstats_get(self.id, vals.as_mut_ptr(), n as u32) })? as usize;
        let m = got.min(got2).min(n);
        Ok((0..m)
            .map(|i| {
                // SAFETY: DPDK NUL-terminates each name within its 64 bytes.
                let name = unsafe { CStr::from_ptr(names[i].name.as_ptr()) }.to_string_lossy().into_owned();
                (name, vals[i].value)
            })
            .collect())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: valid port owned by us; stop and close once, then remove the device
        // if we created it.
        unsafe {
            if self.started {
                dpdk_sys::rte_eth_dev_stop(self.id);
            }
            dpdk_sys::rte_eth_dev_close(self.id);
            if let Some(name) = &self.bond {
                dpdk_sys::rte_eth_bond_free(name.as_ptr());
            } else if let Some(name) = &self.vdev {
                dpdk_sys::rte_vdev_uninit(name.as_ptr());
            }
        }
    }
}
