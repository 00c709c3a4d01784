//! A second client for traffic that must not come from the client itself (a SYN flood
//! with spoofed sources): a namespace behind the client namespace, which routes what it
//! sends towards rvsd and forwards nothing back (replies to spoofed sources die there).
//!
//! ```text
//!  flood ns               client ns                  lb ns
//!  eth0 198.18.1.2/24 ── eth1 198.18.1.1 ... eth0 ── rvsd
//! ```

use anyhow::{bail, Result};
use testnet::NetNs;

use crate::{veth, Topology};

/// The flooder's address (its packets mostly carry others).
pub const FLOOD4: &str = "198.18.1.2";

impl Topology {
    /// Builds the second client namespace behind the client (see the module
    /// documentation) and returns it; it is deleted when dropped.
    pub fn second_client(&self) -> Result<NetNs> {
        let ns = NetNs::new("rvsfl");
        veth(&ns, "eth0", &self.client, "eth1");
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["addr", "add", &format!("{FLOOD4}/24"), "dev", "eth0"]);
        ns.ip(&["route", "add", "default", "via", "198.18.1.1"]);
        let c = &self.client;
        c.ip(&["link", "set", "eth1", "up"]);
        c.ip(&["addr", "add", "198.18.1.1/24", "dev", "eth1"]);
        for kv in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv4.conf.eth1.rp_filter=0",
            "net.ipv4.conf.eth0.rp_filter=0",
        ] {
            let _ = c.exec(&["sysctl", "-qw", kv]);
        }
        // Forward only what the flooder sends; what comes back for its spoofed sources
        // (SYN-ACKs) stops here instead of bouncing between rvsd and the client.
        let rules = "table inet rvsflood { chain rvsfwd { type filter hook forward priority 0; policy drop; \
                     iifname \"eth1\" accept; }; }";
        let out = c.exec(&["nft", rules]);
        if !out.status.success() {
            bail!("nft forward rules: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(ns)
    }
}
