//! A dataplane port as the frame logic sees it: a physical port, or an 802.1Q VLAN
//! sub-interface of one (`dpdk0.100`), which has its own addresses, routes, neighbours
//! and kernel twin, as a Linux VLAN device does.

use serde::Serialize;
use wire::EthernetAddress;

/// A port of the current configuration generation. Physical ports come first, VLAN
/// sub-interfaces after them (their index is what addresses, routes and neighbours
/// name; frames leave through their parent's queues, tagged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Operator's name (`dpdk0`, `dpdk0.100`).
    pub name: String,
    /// Its MAC (frames from it are our own; frames to it, broadcast and multicast are
    /// for us). A VLAN's is its parent's.
    pub mac: EthernetAddress,
    /// Its MTU: larger IP packets get an ICMP error instead of being sent.
    pub mtu: u16,
    /// Copy everything received to the kernel twin (for capture; off by default).
    pub forward2kni: bool,
    /// The port has a kernel twin (frames for the kernel are dropped without one).
    pub twin: bool,
    /// For a VLAN sub-interface: its parent port and VLAN id.
    pub vlan: Option<Vlan>,
}

/// Where a VLAN sub-interface is: the physical port its tagged frames use and its
/// 802.1Q VLAN id (1 to 4094).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Vlan {
    /// The parent port's index (a physical port).
    pub parent: usize,
    /// The VLAN id.
    pub id: u16,
}

impl Port {
    /// A physical port.
    pub fn physical(name: &str, mac: EthernetAddress, mtu: u16, twin: bool) -> Port {
        Port { name: name.into(), mac, mtu, forward2kni: false, twin, vlan: None }
    }
}

/// The VLAN sub-interface of physical port `parent` with id `vid` among `ports`.
#[inline]
pub fn vlan_port(ports: &[Port], parent: usize, vid: u16) -> Option<usize> {
    ports.iter().position(|p| p.vlan.is_some_and(|v| v.parent == parent && v.id == vid))
}
