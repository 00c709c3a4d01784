//! Steering replies to the worker that owns their local port.
//!
//! A connection's local port decides its owner (`fnat::sapool::PortOwnership`: a pure
//! function of the port), so any worker can tell where a reply belongs. Where the NIC
//! accepts flow rules, replies are steered in hardware: per LIP and worker, one rule per
//! (value, mask) slot of the worker — `dst = LIP, dst_port & mask == value → queue w` —
//! for TCP and UDP ("perfect": exact match; "signature": the same as hash-match rules,
//! e.g. ixgbe's flow director signature mode, which on 82599-class NICs supports a
//! single LIP). Where it does not (virtio, af_packet, tap, many cloud NICs, IPv6 on
//! 82599 in perfect mode), the receiving worker hands the packet to the owner over a
//! single-producer/single-consumer ring per worker pair ("redirect"): no shared table,
//! no lock. Redirect stays on in every mode as the safety net.

use std::net::IpAddr;

use dpdk::{FlowAction, FlowAttr, FlowItem};
use fnat::sapool::PortOwnership;
use serde::{Deserialize, Serialize};

/// How replies reach their owner (config `steering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Steering {
    /// Validate flow rules at start; use them where the port accepts them, redirect
    /// where not (logged).
    #[default]
    Auto,
    /// Exact-match flow rules; start fails if a port refuses them.
    Perfect,
    /// Hash-match (signature) flow rules; start fails if a port refuses them.
    Signature,
    /// Software redirect only.
    Redirect,
}

/// One flow rule: attributes, pattern, actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Attributes.
    pub attr: FlowAttr,
    /// Pattern.
    pub pattern: Vec<FlowItem>,
    /// Actions.
    pub actions: Vec<FlowAction>,
}

/// The rules steering replies to `lip` to their owners' queues (worker `w` polls queue
/// `w`). Empty for `Redirect` / `Auto` callers decide per port.
pub fn rules(lip: IpAddr, own: &PortOwnership, signature: bool) -> Vec<Rule> {
    let mut out = Vec::new();
    for w in 0..own.workers() {
        for (value, mask) in own.flow_rules(w) {
            for tcp in [true, false] {
                let mut pattern = vec![FlowItem::Eth];
                pattern.push(match lip {
                    IpAddr::V4(a) => FlowItem::Ipv4Dst(a),
                    IpAddr::V6(a) => FlowItem::Ipv6Dst(a),
                });
                pattern.push(if tcp {
                    FlowItem::TcpDst { port: value, mask }
                } else {
                    FlowItem::UdpDst { port: value, mask }
                });
                if signature {
                    pattern.push(FlowItem::Fuzzy { thresh: 1 });
                }
                out.push(Rule { attr: FlowAttr::default(), pattern, actions: vec![FlowAction::Queue(w)] });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_ipv4_two_workers_field_by_field() {
        let own = PortOwnership::new(2).unwrap();
        let r = rules("198.19.0.10".parse().unwrap(), &own, false);
        // 2 workers x 1 slot each x {TCP, UDP}.
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[0],
            Rule {
                attr: FlowAttr { group: 0, priority: 0 },
                pattern: vec![
                    FlowItem::Eth,
                    FlowItem::Ipv4Dst("198.19.0.10".parse().unwrap()),
                    FlowItem::TcpDst { port: 0, mask: 1 }
                ],
                actions: vec![FlowAction::Queue(0)],
            }
        );
        assert_eq!(r[1].pattern[2], FlowItem::UdpDst { port: 0, mask: 1 });
        assert_eq!(r[2].pattern[2], FlowItem::TcpDst { port: 1, mask: 1 });
        assert_eq!(r[2].actions, vec![FlowAction::Queue(1)]);
        // Every port a rule sends to queue w is owned by w.
        for rule in &r {
            let (FlowItem::TcpDst { port, mask } | FlowItem::UdpDst { port, mask }) = rule.pattern[2] else { panic!() };
            let FlowAction::Queue(q) = rule.actions[0] else { panic!() };
            for lport in (1025u16..65535).filter(|p| p & mask == port).take(100) {
                assert_eq!(own.owner(lport), q);
            }
        }
    }

    #[test]
    fn signature_ipv6_three_workers_field_by_field() {
        let own = PortOwnership::new(3).unwrap();
        let lip: std::net::Ipv6Addr = "2001:db8:19::10".parse().unwrap();
        let r = rules(IpAddr::V6(lip), &own, true);
        // 3 workers: 64 slots (next power of two x 16) spread over them, x {TCP, UDP}.
        assert_eq!(r.len(), 64 * 2);
        for rule in &r {
            assert_eq!(rule.pattern.len(), 4);
            assert_eq!(rule.pattern[0], FlowItem::Eth);
            assert_eq!(rule.pattern[1], FlowItem::Ipv6Dst(lip));
            assert_eq!(rule.pattern[3], FlowItem::Fuzzy { thresh: 1 });
            let (FlowItem::TcpDst { port, mask } | FlowItem::UdpDst { port, mask }) = rule.pattern[2] else { panic!() };
            assert_eq!(mask, 63);
            let FlowAction::Queue(q) = rule.actions[0] else { panic!() };
            assert_eq!(u32::from(port) % 3, u32::from(q), "slot {port} belongs to worker {q}");
        }
        let per_worker: Vec<usize> =
            (0..3).map(|w| r.iter().filter(|x| x.actions[0] == FlowAction::Queue(w)).count()).collect();
        assert_eq!(per_worker, vec![44, 42, 42], "22/21/21 slots x TCP and UDP");
    }
}
