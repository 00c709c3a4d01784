//! A dataplane port as the frame logic sees it.

use serde::Serialize;
use wire::EthernetAddress;

/// A port of the current configuration generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Operator's name (`dpdk0`).
    pub name: String,
    /// Its MAC (frames from it are our own; frames to it, broadcast and multicast are
    /// for us).
    pub mac: EthernetAddress,
    /// Its MTU: larger IP packets get an ICMP error instead of being sent.
    pub mtu: u16,
    /// Copy everything received to the kernel twin (for capture; off by default).
    pub forward2kni: bool,
    /// The port has a kernel twin (frames for the kernel are dropped without one).
    pub twin: bool,
}
