//! A second client for traffic that must not come from the client itself (a SYN flood
//! with spoofed sources): a namespace with its own MAC and address on the client's
//! link (a macvlan on the client's `eth0`), so its frames reach rvsd's `dpdk0` as
//! directly as the client's, without the client's kernel forwarding them.
//!
//! ```text
//!  flood ns                 client ns                  lb ns
//!  fl0 198.18.0.3/24 ──macvlan── eth0 198.18.0.2 ───── dpdk0 (rvsd)
//! ```
//!
//! Frames rvsd sends to other MACs (replies to spoofed sources routed to a gateway
//! that is nobody) are dropped by the client's kernel at L2.

use anyhow::{bail, Result};
use testnet::NetNs;

use crate::{Topology, GW4};

/// The flooder's own address (its packets mostly carry others).
pub const FLOOD4: &str = "198.18.0.3";

impl Topology {
    /// Builds the second client namespace on the client's link (see the module
    /// documentation) and returns it; it is deleted when dropped.
    pub fn second_client(&self) -> Result<NetNs> {
        let ns = NetNs::new("rvsfl");
        let out = self.client.exec(&["ip", "link", "add", "fl0", "link", "eth0", "type", "macvlan", "mode", "bridge"]);
        if !out.status.success() {
            bail!("macvlan on the client's eth0: {}", String::from_utf8_lossy(&out.stderr));
        }
        let out = self.client.exec(&["ip", "link", "set", "fl0", "netns", ns.name()]);
        if !out.status.success() {
            bail!("macvlan into {}: {}", ns.name(), String::from_utf8_lossy(&out.stderr));
        }
        ns.ip(&["link", "set", "fl0", "up"]);
        ns.ip(&["addr", "add", &format!("{FLOOD4}/24"), "dev", "fl0"]);
        ns.ip(&["route", "add", "default", "via", GW4]);
        Ok(ns)
    }
}
