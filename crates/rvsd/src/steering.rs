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

use std::collections::BTreeMap;
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

/// Where a port's rules go: the DPDK port in rvsd ([`DpdkFlows`]); a recorder in tests.
pub trait FlowTable {
    /// An installed rule; dropping it removes the rule.
    type Handle;
    /// Whether the port would take the rule.
    fn validate(&self, rule: &Rule) -> Result<(), String>;
    /// Installs the rule.
    fn create(&mut self, rule: &Rule) -> Result<Self::Handle, String>;
}

/// A DPDK port's flow table.
pub struct DpdkFlows(pub u16);

impl FlowTable for DpdkFlows {
    type Handle = dpdk::Flow;

    fn validate(&self, r: &Rule) -> Result<(), String> {
        dpdk::Flow::validate(self.0, &r.attr, &r.pattern, &r.actions).map_err(|e| e.to_string())
    }

    fn create(&mut self, r: &Rule) -> Result<dpdk::Flow, String> {
        dpdk::Flow::create(self.0, &r.attr, &r.pattern, &r.actions).map_err(|e| e.to_string())
    }
}

/// Whether a port's replies are steered by rules or reach their owner by redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    /// No LIP has asked yet: the first one validates its rules.
    Undecided,
    /// The port takes the rules.
    Rules,
    /// The port refused them (or steering is `redirect`, or one worker): redirect only.
    Redirect,
}

/// The steering rules of one port, per LIP, kept in step with the port's LIPs at start
/// and after every change (a LIP added at run time gets its rules; a LIP removed loses
/// them).
pub struct PortSteering<H> {
    name: String,
    setting: Steering,
    own: Option<PortOwnership>,
    mode: PortMode,
    rules: BTreeMap<IpAddr, Vec<H>>,
}

impl<H> PortSteering<H> {
    /// The steering of port `name` for `workers` workers and the `steering` setting.
    pub fn new(name: &str, setting: Steering, workers: u32) -> PortSteering<H> {
        let own = if workers >= 2 { PortOwnership::new(workers).ok() } else { None };
        let mode =
            if own.is_none() || setting == Steering::Redirect { PortMode::Redirect } else { PortMode::Undecided };
        PortSteering { name: name.to_string(), setting, own, mode, rules: BTreeMap::new() }
    }

    /// Whether rules or redirect carry the port's replies.
    pub fn mode(&self) -> PortMode {
        self.mode
    }

    /// The LIPs that have rules installed.
    pub fn steered(&self) -> impl Iterator<Item = &IpAddr> {
        self.rules.keys()
    }

    /// Brings the rules in step with `lips` (the port's LIPs): rules for new LIPs are
    /// installed, rules of LIPs no longer there removed. A port that refuses rules
    /// falls back to redirect; with `perfect` or `signature` set that is an error at
    /// start (the caller decides), and logged at run time.
    pub fn sync<T: FlowTable<Handle = H>>(&mut self, table: &mut T, lips: &[IpAddr]) -> Result<(), String> {
        let Some(own) = &self.own else { return Ok(()) };
        self.rules.retain(|lip, _| lips.contains(lip));
        if self.mode == PortMode::Redirect {
            return Ok(());
        }
        let signature = self.setting == Steering::Signature;
        for lip in lips {
            if self.rules.contains_key(lip) {
                continue;
            }
            let want = rules(*lip, own, signature);
            if self.mode == PortMode::Undecided {
                if let Some(e) = want.iter().find_map(|r| table.validate(r).err()) {
                    self.mode = PortMode::Redirect;
                    self.rules.clear();
                    return Err(format!(
                        "{}: flow rules refused ({e}); replies reach their worker by redirect",
                        self.name
                    ));
                }
                self.mode = PortMode::Rules;
            }
            let mut installed = Vec::with_capacity(want.len());
            for r in &want {
                installed.push(table.create(r).map_err(|e| format!("{}: flow rule for {lip}: {e}", self.name))?);
            }
            self.rules.insert(*lip, installed);
        }
        Ok(())
    }

    /// Whether a refusal must stop start-up (`perfect` and `signature` promise rules).
    pub fn strict(&self) -> bool {
        matches!(self.setting, Steering::Perfect | Steering::Signature)
    }
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

    /// A port's flow table that records what is installed; a handle removes its rule
    /// from the record when dropped, as `rte_flow_destroy` would.
    #[derive(Default)]
    struct Recorder {
        refuse: bool,
        live: std::rc::Rc<std::cell::RefCell<Vec<Rule>>>,
    }

    struct Installed(Rule, std::rc::Rc<std::cell::RefCell<Vec<Rule>>>);

    impl Drop for Installed {
        fn drop(&mut self) {
            let mut live = self.1.borrow_mut();
            let i = live.iter().position(|r| *r == self.0).expect("installed once");
            live.remove(i);
        }
    }

    impl FlowTable for Recorder {
        type Handle = Installed;
        fn validate(&self, _: &Rule) -> Result<(), String> {
            if self.refuse {
                Err("no flow support".into())
            } else {
                Ok(())
            }
        }
        fn create(&mut self, r: &Rule) -> Result<Installed, String> {
            self.live.borrow_mut().push(r.clone());
            Ok(Installed(r.clone(), self.live.clone()))
        }
    }

    #[test]
    fn rules_follow_lips_added_and_removed_at_run_time() {
        let own = PortOwnership::new(2).unwrap();
        let mut table = Recorder::default();
        let mut s = PortSteering::new("dpdk1", Steering::Auto, 2);
        let a: IpAddr = "198.19.0.10".parse().unwrap();
        let b: IpAddr = "198.19.0.11".parse().unwrap();
        s.sync(&mut table, &[a]).unwrap();
        assert_eq!(s.mode(), PortMode::Rules);
        assert_eq!(*table.live.borrow(), rules(a, &own, false), "start-up rules for the first LIP");
        // A LIP added at run time: its rules appear, field by field.
        s.sync(&mut table, &[a, b]).unwrap();
        let live = table.live.borrow().clone();
        assert_eq!(live.len(), 8);
        assert_eq!(&live[4..], &rules(b, &own, false)[..]);
        assert_eq!(
            live[4],
            Rule {
                attr: FlowAttr { group: 0, priority: 0 },
                pattern: vec![
                    FlowItem::Eth,
                    FlowItem::Ipv4Dst("198.19.0.11".parse().unwrap()),
                    FlowItem::TcpDst { port: 0, mask: 1 }
                ],
                actions: vec![FlowAction::Queue(0)],
            }
        );
        // Removed: its rules disappear, the other LIP's stay.
        s.sync(&mut table, &[a]).unwrap();
        assert_eq!(*table.live.borrow(), rules(a, &own, false));
        assert_eq!(s.steered().collect::<Vec<_>>(), vec![&a]);
        s.sync(&mut table, &[]).unwrap();
        assert!(table.live.borrow().is_empty());
    }

    #[test]
    fn a_port_that_refuses_rules_falls_back_to_redirect() {
        let mut table = Recorder { refuse: true, ..Recorder::default() };
        let mut s = PortSteering::new("dpdk1", Steering::Auto, 2);
        // No LIP yet: nothing decided.
        s.sync(&mut table, &[]).unwrap();
        assert_eq!(s.mode(), PortMode::Undecided);
        let e = s.sync(&mut table, &["2001:db8:19::10".parse().unwrap()]).unwrap_err();
        assert!(e.contains("dpdk1") && e.contains("redirect"), "{e}");
        assert_eq!(s.mode(), PortMode::Redirect);
        assert!(table.live.borrow().is_empty());
        // Later LIPs do not ask again.
        s.sync(&mut table, &["198.19.0.10".parse().unwrap()]).unwrap();
        assert!(!s.strict());
        assert!(PortSteering::<Installed>::new("p", Steering::Perfect, 2).strict());
        // One worker, or `redirect`: no rules ever.
        let mut one = PortSteering::new("dpdk1", Steering::Perfect, 1);
        one.sync(&mut Recorder::default(), &["198.19.0.10".parse().unwrap()]).unwrap();
        assert_eq!(one.mode(), PortMode::Redirect);
    }
}
