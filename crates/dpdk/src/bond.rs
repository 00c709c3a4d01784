//! Link bonding through DPDK's bonding driver.

use std::ffi::CString;

use crate::error::{check, Error, Result};
use crate::port::Port;

/// Bonding modes (the numbering of Linux and DPDK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BondMode {
    /// 0: transmit round robin over the slaves.
    RoundRobin = 0,
    /// 1: one active slave, the others stand by.
    ActiveBackup = 1,
    /// 2: transmit slave chosen by a hash of the headers.
    BalanceXor = 2,
    /// 3: transmit on every slave.
    Broadcast = 3,
    /// 4: IEEE 802.3ad dynamic link aggregation (LACP).
    Lacp = 4,
    /// 5: adaptive transmit load balancing.
    Tlb = 5,
    /// 6: adaptive load balancing.
    Alb = 6,
}

/// How balance-xor (mode 2) and 802.3ad (mode 4) choose a packet's transmit slave
/// (DPDK's `BALANCE_XMIT_POLICY_*`, Linux's `xmit_hash_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum XmitPolicy {
    /// A hash of the MAC addresses (Linux `layer2`, the default).
    Layer2 = 0,
    /// Of the MAC and IP addresses (`layer2+3`).
    Layer23 = 1,
    /// Of the IP addresses and ports (`layer3+4`): one peer's flows spread.
    Layer34 = 2,
}

/// Bond-specific operations on a [`Port`] made by [`Bond::create`].
pub struct Bond;

impl Bond {
    /// Creates a bonded port `name` (e.g. `net_bonding0`) in `mode`.
    pub fn create(name: &str, mode: BondMode, socket: u8) -> Result<Port> {
        let op = format!("rte_eth_bond_create({name}, mode {})", mode as u8);
        let c = CString::new(name).map_err(|_| Error::invalid(op.clone(), "name contains NUL"))?;
        // SAFETY: valid C string.
        let rc = unsafe { dpdk_sys::rte_eth_bond_create(c.as_ptr(), mode as u8, socket) };
        let id = check(|| op, rc)? as u16;
        let mut p = Port::from_id(id)?;
        p.set_bond_name(c);
        Ok(p)
    }

    /// Adds `slave` to `bond`. The slave must be configured like the bond and stopped.
    pub fn add_slave(bond: &Port, slave: &Port) -> Result<()> {
        // SAFETY: valid port ids.
        let rc = unsafe { dpdk_sys::rte_eth_bond_slave_add(bond.id(), slave.id()) };
        check(|| format!("rte_eth_bond_slave_add({}, {})", bond.id(), slave.id()), rc).map(drop)
    }

    /// Sets the primary slave (active-backup and similar modes).
    pub fn set_primary(bond: &Port, slave: &Port) -> Result<()> {
        // SAFETY: valid port ids.
        let rc = unsafe { dpdk_sys::rte_eth_bond_primary_set(bond.id(), slave.id()) };
        check(|| format!("rte_eth_bond_primary_set({}, {})", bond.id(), slave.id()), rc).map(drop)
    }

    /// The primary slave's port id.
    pub fn primary(bond: &Port) -> Result<u16> {
        // SAFETY: valid port id.
        let rc = unsafe { dpdk_sys::rte_eth_bond_primary_get(bond.id()) };
        Ok(check(|| format!("rte_eth_bond_primary_get({})", bond.id()), rc)? as u16)
    }

    /// The bonding mode.
    pub fn mode(bond: &Port) -> Result<u8> {
        // SAFETY: valid port id.
        let rc = unsafe { dpdk_sys::rte_eth_bond_mode_get(bond.id()) };
        Ok(check(|| format!("rte_eth_bond_mode_get({})", bond.id()), rc)? as u8)
    }

    /// Sets the transmit policy of a balance-xor or 802.3ad bond.
    pub fn set_xmit_policy(bond: &Port, policy: XmitPolicy) -> Result<()> {
        // SAFETY: valid port id; the policy is one of the three DPDK defines.
        let rc = unsafe { dpdk_sys::rte_eth_bond_xmit_policy_set(bond.id(), policy as u8) };
        check(|| format!("rte_eth_bond_xmit_policy_set({}, {})", bond.id(), policy as u8), rc).map(drop)
    }

    /// The transmit policy (a `BALANCE_XMIT_POLICY_*` value).
    pub fn xmit_policy(bond: &Port) -> Result<u8> {
        // SAFETY: valid port id.
        let rc = unsafe { dpdk_sys::rte_eth_bond_xmit_policy_get(bond.id()) };
        Ok(check(|| format!("rte_eth_bond_xmit_policy_get({})", bond.id()), rc)? as u8)
    }

    /// Port ids of all slaves.
    pub fn slaves(bond: &Port) -> Result<Vec<u16>> {
        let mut buf = [0u16; dpdk_sys::RTE_MAX_ETHPORTS as usize];
        // SAFETY: buffer of RTE_MAX_ETHPORTS entries.
        let rc = unsafe { dpdk_sys::rte_eth_bond_slaves_get(bond.id(), buf.as_mut_ptr(), buf.len() as u16) };
        let n = check(|| format!("rte_eth_bond_slaves_get({})", bond.id()), rc)? as usize;
        Ok(buf[..n].to_vec())
    }

    /// Port ids of the slaves currently carrying traffic.
    pub fn active_slaves(bond: &Port) -> Result<Vec<u16>> {
        let mut buf = [0u16; dpdk_sys::RTE_MAX_ETHPORTS as usize];
        // SAFETY: buffer of RTE_MAX_ETHPORTS entries.
        let rc = unsafe { dpdk_sys::rte_eth_bond_active_slaves_get(bond.id(), buf.as_mut_ptr(), buf.len() as u16) };
        let n = check(|| format!("rte_eth_bond_active_slaves_get({})", bond.id()), rc)? as usize;
        Ok(buf[..n].to_vec())
    }

    /// A mode-4 slave's LACP state bytes as (actor, partner) (IEEE 802.1AX state bits:
    /// 0x08 synchronization, 0x10 collecting, 0x20 distributing).
    pub fn lacp_state(bond: &Port, slave: &Port) -> Result<(u8, u8)> {
        let mut info = dpdk_sys::rte_eth_bond_8023ad_slave_info::default();
        // SAFETY: valid port ids and an out pointer to a struct of the right layout.
        let rc = unsafe { dpdk_sys::rte_eth_bond_8023ad_slave_info(bond.id(), slave.id(), &mut info) };
        check(|| format!("rte_eth_bond_8023ad_slave_info({}, {})", bond.id(), slave.id()), rc)?;
        Ok((info.actor_state, info.partner_state))
    }

    /// Sets the link-status polling interval for slaves without link interrupts.
    pub fn set_link_monitor(bond: &Port, interval_ms: u32) -> Result<()> {
        // SAFETY: valid port id.
        let rc = unsafe { dpdk_sys::rte_eth_bond_link_monitoring_set(bond.id(), interval_ms) };
        check(|| format!("rte_eth_bond_link_monitoring_set({})", bond.id()), rc).map(drop)
    }
}
