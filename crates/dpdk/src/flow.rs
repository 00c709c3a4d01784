//! rte_flow rules from typed patterns: how rvs steers replies for a local port range to
//! the worker that owns it.

use std::ffi::c_void;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// One item of a match pattern, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowItem {
    /// Any Ethernet frame.
    Eth,
    /// IPv4 with this destination address (exact).
    Ipv4Dst(Ipv4Addr),
    /// IPv6 with this destination address (exact).
    Ipv6Dst(Ipv6Addr),
    /// TCP whose destination port masked by `mask` equals `port`.
    TcpDst {
        /// Port value (already masked).
        port: u16,
        /// Port mask.
        mask: u16,
    },
    /// UDP whose destination port masked by `mask` equals `port`.
    UdpDst {
        /// Port value (already masked).
        port: u16,
        /// Port mask.
        mask: u16,
    },
    /// Hash ("signature") match instead of exact match, on NICs whose flow director
    /// has that mode (ixgbe); `thresh` as the driver defines it.
    Fuzzy {
        /// Threshold; 1 selects signature mode on ixgbe.
        thresh: u32,
    },
}

/// What a matching packet gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowAction {
    /// Deliver to this receive queue.
    Queue(u16),
    /// Tag with this mark (visible in the mbuf).
    Mark(u32),
    /// Drop.
    Drop,
}

/// Rule attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowAttr {
    /// Group (table) of the rule.
    pub group: u32,
    /// Priority (lower first).
    pub priority: u32,
}

/// One spec/mask pair in C layout; boxed so pointers to it stay put.
enum Spec {
    None,
    Ipv4(Box<[dpdk_sys::rte_flow_item_ipv4; 2]>),
    Ipv6(Box<[dpdk_sys::rte_flow_item_ipv6; 2]>),
    Tcp(Box<[dpdk_sys::rte_flow_item_tcp; 2]>),
    Udp(Box<[dpdk_sys::rte_flow_item_udp; 2]>),
    Fuzzy(Box<[dpdk_sys::rte_flow_item_fuzzy; 2]>),
}

/// A pattern and action list encoded for rte_flow, owning every spec it points to.
pub(crate) struct Encoded {
    attr: dpdk_sys::rte_flow_attr,
    _specs: Vec<Spec>,
    items: Vec<dpdk_sys::rte_flow_item>,
    // Boxed so the pointers in `actions` stay valid while the Vec grows.
    #[allow(clippy::vec_box)]
    _confs: Vec<Box<[u32; 1]>>,
    actions: Vec<dpdk_sys::rte_flow_action>,
}

fn ptrs<T>(b: &[T; 2]) -> (*const c_void, *const c_void) {
    (&b[0] as *const T as *const c_void, &b[1] as *const T as *const c_void)
}

impl Encoded {
    pub(crate) fn new(attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Encoded {
        let mut a = dpdk_sys::rte_flow_attr { group: attr.group, priority: attr.priority, ..Default::default() };
        a.set_ingress(1);
        let mut specs = Vec::with_capacity(pattern.len());
        let mut items = Vec::with_capacity(pattern.len() + 1);
        for it in pattern {
            let (ty, spec) = match *it {
                FlowItem::Eth => (dpdk_sys::RTE_FLOW_ITEM_TYPE_ETH, Spec::None),
                FlowItem::Ipv4Dst(dst) => {
                    let mut b: Box<[dpdk_sys::rte_flow_item_ipv4; 2]> = Box::default();
                    b[0].hdr.dst_addr = u32::from(dst).to_be();
                    b[1].hdr.dst_addr = u32::MAX;
                    (dpdk_sys::RTE_FLOW_ITEM_TYPE_IPV4, Spec::Ipv4(b))
                }
                FlowItem::Ipv6Dst(dst) => {
                    let mut b: Box<[dpdk_sys::rte_flow_item_ipv6; 2]> = Box::default();
                    b[0].hdr.dst_addr = dst.octets();
                    b[1].hdr.dst_addr = [0xff; 16];
                    (dpdk_sys::RTE_FLOW_ITEM_TYPE_IPV6, Spec::Ipv6(b))
                }
                FlowItem::TcpDst { port, mask } => {
                    let mut b: Box<[dpdk_sys::rte_flow_item_tcp; 2]> = Box::default();
                    b[0].hdr.dst_port = (port & mask).to_be();
                    b[1].hdr.dst_port = mask.to_be();
                    (dpdk_sys::RTE_FLOW_ITEM_TYPE_TCP, Spec::Tcp(b))
                }
                FlowItem::UdpDst { port, mask } => {
                    let mut b: Box<[dpdk_sys::rte_flow_item_udp; 2]> = Box::default();
                    b[0].hdr.dst_port = (port & mask).to_be();
                    b[1].hdr.dst_port = mask.to_be();
                    (dpdk_sys::RTE_FLOW_ITEM_TYPE_UDP, Spec::Udp(b))
                }
                FlowItem::Fuzzy { thresh } => {
                    let mut b: Box<[dpdk_sys::rte_flow_item_fuzzy; 2]> = Box::default();
                    b[0].thresh = thresh;
                    b[1].thresh = u32::MAX;
                    (dpdk_sys::RTE_FLOW_ITEM_TYPE_FUZZY, Spec::Fuzzy(b))
                }
            };
            let (s, m) = match &spec {
                Spec::None => (std::ptr::null(), std::ptr::null()),
                Spec::Ipv4(b) => ptrs(b),
                Spec::Ipv6(b) => ptrs(b),
                Spec::Tcp(b) => ptrs(b),
                Spec::Udp(b) => ptrs(b),
                Spec::Fuzzy(b) => ptrs(b),
            };
            items.push(dpdk_sys::rte_flow_item { type_: ty, spec: s, last: std::ptr::null(), mask: m });
            specs.push(spec);
        }
        items.push(dpdk_sys::rte_flow_item { type_: dpdk_sys::RTE_FLOW_ITEM_TYPE_END, ..Default::default() });
        let mut confs = Vec::with_capacity(actions.len());
        let mut acts = Vec::with_capacity(actions.len() + 1);
        for act in actions {
            let (ty, conf) = match *act {
                // rte_flow_action_queue { index: u16 } and rte_flow_action_mark { id: u32 }
                // both fit at the start of a u32 (little-endian: the u16 is the low half).
                FlowAction::Queue(q) => (dpdk_sys::RTE_FLOW_ACTION_TYPE_QUEUE, Some(Box::new([q as u32]))),
                FlowAction::Mark(id) => (dpdk_sys::RTE_FLOW_ACTION_TYPE_MARK, Some(Box::new([id]))),
                FlowAction::Drop => (dpdk_sys::RTE_FLOW_ACTION_TYPE_DROP, None),
            };
            let p = conf.as_ref().map_or(std::ptr::null(), |b| b.as_ptr() as *const c_void);
            acts.push(dpdk_sys::rte_flow_action { type_: ty, conf: p });
            if let Some(c) = conf {
                confs.push(c);
            }
        }
        acts.push(dpdk_sys::rte_flow_action { type_: dpdk_sys::RTE_FLOW_ACTION_TYPE_END, conf: std::ptr::null() });
        Encoded { attr: a, _specs: specs, items, _confs: confs, actions: acts }
    }
}

fn flow_error(op: String, rc: i32, e: &dpdk_sys::rte_flow_error) -> Error {
    let mut err = Error::from_code(op, rc);
    if !e.message.is_null() {
        // SAFETY: the driver sets message to a static NUL-terminated string.
        let m = unsafe { std::ffi::CStr::from_ptr(e.message) }.to_string_lossy();
        err.msg = format!("{} ({m})", err.msg);
    }
    err
}

/// A flow rule installed on a port; destroyed on drop.
pub struct Flow {
    port: u16,
    raw: NonNull<dpdk_sys::rte_flow>,
}

// SAFETY: a flow handle is an opaque token; DPDK's flow API is thread-safe per port
// unless the driver says otherwise, and rvs only touches flows from the control thread.
unsafe impl Send for Flow {}

impl Flow {
    /// Asks the port whether it would accept the rule, without installing it.
    pub fn validate(port: u16, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<()> {
        let enc = Encoded::new(attr, pattern, actions);
        let mut e = dpdk_sys::rte_flow_error::default();
        // SAFETY: every pointer in `enc` points into boxes it owns, alive for the call.
        let rc =
            unsafe { dpdk_sys::rte_flow_validate(port, &enc.attr, enc.items.as_ptr(), enc.actions.as_ptr(), &mut e) };
        if rc < 0 {
            return Err(flow_error(format!("rte_flow_validate(port {port})"), rc, &e));
        }
        Ok(())
    }

    /// Installs the rule.
    pub fn create(port: u16, attr: &FlowAttr, pattern: &[FlowItem], actions: &[FlowAction]) -> Result<Flow> {
        let enc = Encoded::new(attr, pattern, actions);
        let mut e = dpdk_sys::rte_flow_error::default();
        // SAFETY: as in validate.
        let p = unsafe { dpdk_sys::rte_flow_create(port, &enc.attr, enc.items.as_ptr(), enc.actions.as_ptr(), &mut e) };
        match NonNull::new(p) {
            Some(raw) => Ok(Flow { port, raw }),
            // SAFETY: reads this thread's rte_errno.
            None => Err(flow_error(format!("rte_flow_create(port {port})"), -unsafe { dpdk_sys::rvs_rte_errno() }, &e)),
        }
    }

    /// The port the rule lives on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        let mut e = dpdk_sys::rte_flow_error::default();
        // SAFETY: a flow we created on this port, destroyed once.
        unsafe { dpdk_sys::rte_flow_destroy(self.port, self.raw.as_ptr(), &mut e) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_perfect_ipv4_tcp_rule() {
        let enc = Encoded::new(
            &FlowAttr::default(),
            &[FlowItem::Eth, FlowItem::Ipv4Dst(Ipv4Addr::new(192, 0, 2, 10)), FlowItem::TcpDst { port: 3, mask: 0x0f }],
            &[FlowAction::Queue(3)],
        );
        assert_eq!(enc.attr.ingress(), 1);
        assert_eq!(enc.items.len(), 4);
        assert_eq!(enc.items[3].type_, dpdk_sys::RTE_FLOW_ITEM_TYPE_END);
        // SAFETY: items 1 and 2 are the Ipv4Dst and TcpDst items, so `Encoded::new` set their
        // spec and mask to elements of the `[rte_flow_item_ipv4; 2]` and `[rte_flow_item_tcp;
        // 2]` boxes it keeps in `enc._specs`: non-null, aligned, initialised, of those types,
        // and alive and unmodified while `enc` is borrowed here.
        let (ip, ipm, tcp, tcpm) = unsafe {
            (
                &*(enc.items[1].spec as *const dpdk_sys::rte_flow_item_ipv4),
                &*(enc.items[1].mask as *const dpdk_sys::rte_flow_item_ipv4),
                &*(enc.items[2].spec as *const dpdk_sys::rte_flow_item_tcp),
                &*(enc.items[2].mask as *const dpdk_sys::rte_flow_item_tcp),
            )
        };
        assert_eq!({ ip.hdr.dst_addr }.to_ne_bytes(), [192, 0, 2, 10]);
        assert_eq!({ ipm.hdr.dst_addr }, u32::MAX);
        assert_eq!({ tcp.hdr.dst_port }.to_ne_bytes(), [0, 3]);
        assert_eq!({ tcpm.hdr.dst_port }.to_ne_bytes(), [0, 0x0f]);
        assert_eq!(enc.actions[0].type_, dpdk_sys::RTE_FLOW_ACTION_TYPE_QUEUE);
        // SAFETY: action 0 is a Queue action, so its conf points at the boxed `[u32; 1]` kept in
        // `enc._confs`, alive while `enc` is; `rte_flow_action_queue` is `{ index: u16 }`,
        // which fits in that u32 and is at most as aligned, and the u32 is initialised.
        let q = unsafe { &*(enc.actions[0].conf as *const dpdk_sys::rte_flow_action_queue) };
        assert_eq!(q.index, 3);
        assert_eq!(enc.actions[1].type_, dpdk_sys::RTE_FLOW_ACTION_TYPE_END);
    }

    #[test]
    fn encodes_signature_ipv6_udp_rule() {
        let dst: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let enc = Encoded::new(
            &FlowAttr { group: 0, priority: 1 },
            &[
                FlowItem::Eth,
                FlowItem::Ipv6Dst(dst),
                FlowItem::UdpDst { port: 0x15, mask: 0x0f },
                FlowItem::Fuzzy { thresh: 1 },
            ],
            &[FlowAction::Queue(1)],
        );
        assert_eq!(enc.attr.priority, 1);
        assert_eq!(enc.items[4].type_, dpdk_sys::RTE_FLOW_ITEM_TYPE_END);
        assert_eq!(enc.items[3].type_, dpdk_sys::RTE_FLOW_ITEM_TYPE_FUZZY);
        // SAFETY: items 1 and 2 are the Ipv6Dst and UdpDst items, so their specs point at the
        // first elements of the `[rte_flow_item_ipv6; 2]` and `[rte_flow_item_udp; 2]` boxes
        // kept in `enc._specs`: valid, initialised values of those types, alive while `enc` is.
        let (ip, udp) = unsafe {
            (
                &*(enc.items[1].spec as *const dpdk_sys::rte_flow_item_ipv6),
                &*(enc.items[2].spec as *const dpdk_sys::rte_flow_item_udp),
            )
        };
        assert_eq!({ ip.hdr.dst_addr }, dst.octets());
        // The spec holds the port already masked: 0x15 & 0x0f.
        assert_eq!({ udp.hdr.dst_port }.to_ne_bytes(), [0, 0x05]);
    }
}
