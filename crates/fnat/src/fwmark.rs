//! Firewall marks: the rules that put new flows into firewall-mark services (ipvsadm
//! `-A -f MARK`, keepalived `virtual_server fwmark MARK`).
//!
//! Under LVS the marks come from netfilter (`iptables -t mangle ... -j MARK --set-mark
//! 1`) and a fwmark service takes every packet carrying its mark, whatever its
//! address, port or protocol: one service, one scheduler and one persistence over
//! several ports or VIPs (HTTP and HTTPS kept on one server for a client; a range of
//! VIPs on one pool). Packets reaching rvs never pass netfilter, so rvs marks them
//! itself with [`FwmarkRule`]s, one per match, written as DPVS's `-H` match
//! (`proto=tcp,dst-range=192.0.2.1:80-443`): in rvsd.toml (`[[fwmark]]`) or with
//! `rvsip fwmark add`.
//!
//! Rules are tried in order and the first that matches gives the mark (netfilter's
//! last `MARK` target wins, an order rvs does not copy: write the specific rule first).
//! A flow whose mark has a service of its family goes to that service, before any
//! VIP:port service (LVS looks up the fwmark service first too); a mark with no such
//! service is no mark at all. Only a new flow is classified: a packet of a known
//! connection never reaches the rules.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::conn::Addr;
use crate::snat::AddrRange;
use crate::types::Proto;

/// The most rules a table takes: they are tried one after the other for each new flow
/// (never for a packet of a known connection), so a long list would slow down
/// connection setup under a SYN flood.
pub const MAX_FWMARK_RULES: usize = 1024;

/// Which new flows get a mark: protocol, destination (the virtual addresses and ports)
/// and optionally source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FwmarkRule {
    /// The mark given (1 or more), naming the fwmark service.
    pub mark: u32,
    /// `tcp` or `udp`; absent: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    /// The sources it takes (absent: any).
    #[serde(default, alias = "src-range", skip_serializing_if = "Option::is_none")]
    pub src_range: Option<AddrRange>,
    /// The destinations it takes: the virtual addresses (and ports) of the service.
    #[serde(alias = "dst-range")]
    pub dst_range: AddrRange,
}

/// Why a rule was refused. Each names the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FwmarkError {
    /// Mark 0, which is no mark.
    #[error("fwmark rule {0}: mark 0 is no mark (1 to 4294967295)")]
    ZeroMark(String),
    /// An ICMP rule: a fwmark service, like any service, is TCP and UDP.
    #[error("fwmark rule {0}: proto is tcp, udp or any (a service takes no ICMP)")]
    Icmp(String),
    /// A destination range of every address of a family: it would take the replies
    /// to rvs's own addresses too.
    #[error("fwmark rule {0}: dst-range must name the virtual addresses, not every address")]
    EveryAddress(String),
    /// Source and destination ranges of different families.
    #[error("fwmark rule {0}: src-range and dst-range are of different families")]
    Family(String),
    /// A rule with the same match and mark as an earlier one.
    #[error("fwmark rule {0} is there already")]
    Duplicate(String),
    /// A rule that would never match: an earlier rule, giving another mark, takes every
    /// flow it would (the first match wins).
    #[error("fwmark rule {rule} would never match: the earlier rule {by} takes every flow it would (the first match wins; delete that one first, or narrow it)")]
    Shadowed {
        /// The rule refused.
        rule: String,
        /// The earlier rule.
        by: String,
    },
    /// More rules than [`MAX_FWMARK_RULES`].
    #[error("{0} fwmark rules: at most {MAX_FWMARK_RULES}")]
    TooMany(usize),
}

impl FwmarkRule {
    /// The rule's match in DPVS's `-H` words, e.g. `proto=tcp,dst-range=192.0.2.1:80-443`.
    pub fn match_text(&self) -> String {
        let mut out = String::new();
        if let Some(p) = self.proto {
            out.push_str("proto=");
            out.push_str(p.name());
            out.push(',');
        }
        if let Some(r) = &self.src_range {
            out.push_str(&format!("src-range={r},"));
        }
        out.push_str(&format!("dst-range={}", self.dst_range));
        out
    }

    /// Parses `MATCH`, DPVS's `-H` words: `proto=tcp|udp|any`, `src-range=RANGE`,
    /// `dst-range=RANGE` (required), comma-separated, each at most once; ranges as
    /// [`AddrRange`]. The error names the part.
    pub fn from_match(mark: u32, text: &str) -> Result<FwmarkRule, String> {
        let (mut proto, mut src, mut dst) = (None, None, None);
        for (k, v) in crate::snat::match_parts(text)? {
            let range = |v: &str| v.parse::<AddrRange>().map_err(|e| format!("match {k}: {e}"));
            match k {
                "proto" => {
                    proto = match v.to_ascii_lowercase().as_str() {
                        "tcp" => Some(Proto::Tcp),
                        "udp" => Some(Proto::Udp),
                        "any" => None,
                        _ => return Err(format!("match proto={v}: one of tcp, udp, any")),
                    }
                }
                "src-range" => src = Some(range(v)?),
                "dst-range" => dst = Some(range(v)?),
                _ => return Err(format!("match {k}: unknown (known: proto, src-range, dst-range)")),
            }
        }
        let dst_range = dst.ok_or("match: dst-range is required (e.g. proto=tcp,dst-range=192.0.2.1:80-443)")?;
        let rule = FwmarkRule { mark, proto, src_range: src, dst_range };
        rule.check().map_err(|e| e.to_string())?;
        Ok(rule)
    }

    /// Whether the rule's destination range holds an address of `net` (of its family),
    /// on some port; a host prefix is one address.
    pub fn covers(&self, net: ipnet::IpNet) -> bool {
        let r = &self.dst_range;
        let (lo, hi) = (int(net.network()), int(net.broadcast()));
        r.is_ipv4() == net.addr().is_ipv4() && int(r.lo) <= hi && lo <= int(r.hi)
    }

    /// Whether this rule matches every flow `later` matches, so that `later`, tried
    /// after it, never matches.
    pub fn shadows(&self, later: &FwmarkRule) -> bool {
        self.proto.is_none_or(|p| later.proto == Some(p))
            && match (&self.src_range, &later.src_range) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a.includes(b),
            }
            && self.dst_range.includes(&later.dst_range)
    }

    /// Checks the rule alone (see [`FwmarkError`]).
    pub fn check(&self) -> Result<(), FwmarkError> {
        let me = || self.to_string();
        if self.mark == 0 {
            return Err(FwmarkError::ZeroMark(me()));
        }
        if self.proto == Some(Proto::Icmp) {
            return Err(FwmarkError::Icmp(me()));
        }
        let r = &self.dst_range;
        let every = match r.lo {
            IpAddr::V4(_) => IpAddr::from([255; 4]),
            IpAddr::V6(_) => IpAddr::from([0xff; 16]),
        };
        if r.lo.is_unspecified() && r.hi == every {
            return Err(FwmarkError::EveryAddress(me()));
        }
        if self.src_range.is_some_and(|s| s.is_ipv4() != r.is_ipv4()) {
            return Err(FwmarkError::Family(me()));
        }
        Ok(())
    }
}

impl fmt::Display for FwmarkRule {
    /// `mark 1 proto=tcp,dst-range=192.0.2.1:80-443`: how errors and listings name it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mark {} {}", self.mark, self.match_text())
    }
}

/// Checks `rule` as the next of `earlier`: alone, not one of them, and not shadowed by
/// one giving another mark (it would never match). A rule shadowed by one of its own
/// mark is accepted: it changes nothing, but marks what it says.
pub fn check_next(earlier: &[FwmarkRule], rule: &FwmarkRule) -> Result<(), FwmarkError> {
    rule.check()?;
    if earlier.contains(rule) {
        return Err(FwmarkError::Duplicate(rule.to_string()));
    }
    if let Some(by) = earlier.iter().find(|e| e.mark != rule.mark && e.shadows(rule)) {
        return Err(FwmarkError::Shadowed { rule: rule.to_string(), by: by.to_string() });
    }
    Ok(())
}

/// Checks a whole list of rules: each as [`check_next`] of those before it, at most
/// [`MAX_FWMARK_RULES`].
pub fn check_rules(rules: &[FwmarkRule]) -> Result<(), FwmarkError> {
    if rules.len() > MAX_FWMARK_RULES {
        return Err(FwmarkError::TooMany(rules.len()));
    }
    rules.iter().enumerate().try_for_each(|(i, r)| check_next(&rules[..i], r))
}

/// A rule as the workers try it: addresses as integers, ready to compare.
#[derive(Debug, Clone, Copy)]
struct Compiled {
    mark: u32,
    /// The protocol number, 0 for both.
    proto: u8,
    v4: bool,
    dports: (u16, u16),
    /// The source range; every address when absent.
    src: (u128, u128),
    sports: (u16, u16),
}

/// The rules, indexed for the workers: the destination addresses cut into intervals,
/// each holding the rules that cover it in their order, so a new flow tries only the
/// rules of its destination (a binary search, then those few) whatever the length of
/// the list; only rules naming the same address are tried one after the other.
#[derive(Debug, Clone, Default)]
pub struct FwmarkTable {
    rules: Vec<FwmarkRule>,
    compiled: Vec<Compiled>,
    /// The first address of each interval, ascending; interval `i` ends where `i + 1`
    /// starts.
    starts: Vec<u128>,
    /// Interval `i`'s rules are `members[spans[i]..spans[i + 1]]`.
    spans: Vec<u32>,
    members: Vec<u16>,
}

fn int(a: IpAddr) -> u128 {
    u128::from_be_bytes(Addr::from(a).0)
}

fn all_ports(r: Option<(u16, u16)>) -> (u16, u16) {
    r.unwrap_or((0, u16::MAX))
}

impl FwmarkTable {
    /// The table of `rules`, checked as a whole ([`check_rules`]).
    pub fn new(rules: &[FwmarkRule]) -> Result<FwmarkTable, FwmarkError> {
        check_rules(rules)?;
        let compiled: Vec<Compiled> = rules
            .iter()
            .map(|r| Compiled {
                mark: r.mark,
                proto: r.proto.map_or(0, Proto::number),
                v4: r.dst_range.is_ipv4(),
                dports: all_ports(r.dst_range.ports),
                src: r.src_range.map_or((0, u128::MAX), |s| (int(s.lo), int(s.hi))),
                sports: all_ports(r.src_range.and_then(|s| s.ports)),
            })
            .collect();
        let dst: Vec<(u128, u128)> = rules.iter().map(|r| (int(r.dst_range.lo), int(r.dst_range.hi))).collect();
        let mut starts: Vec<u128> = dst.iter().flat_map(|&(lo, hi)| [Some(lo), hi.checked_add(1)]).flatten().collect();
        starts.sort_unstable();
        starts.dedup();
        let (mut spans, mut members) = (vec![0], Vec::new());
        for &a in &starts {
            members.extend((0..rules.len()).filter(|&i| dst[i].0 <= a && a <= dst[i].1).map(|i| i as u16));
            spans.push(members.len() as u32);
        }
        Ok(FwmarkTable { rules: rules.to_vec(), compiled, starts, spans, members })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[FwmarkRule] {
        &self.rules
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The mark the first matching rule gives the new flow `proto src:sport ->
    /// dst:dport`, if any. A rule takes only addresses of its family (an IPv6 packet to
    /// `::ffff:192.0.2.1` is not IPv4's). No allocation.
    #[inline]
    pub fn mark_of(&self, proto: Proto, (src, sport): (IpAddr, u16), (dst, dport): (IpAddr, u16)) -> Option<u32> {
        let d = int(dst);
        let i = self.starts.partition_point(|&s| s <= d).checked_sub(1)?;
        let (lo, hi) = (*self.spans.get(i)? as usize, *self.spans.get(i + 1)? as usize);
        let (s, v4, p) = (int(src), dst.is_ipv4(), proto.number());
        let within = |x: u16, (a, b): (u16, u16)| a <= x && x <= b;
        self.members.get(lo..hi)?.iter().find_map(|&k| {
            let c = self.compiled.get(usize::from(k))?;
            let hit = c.v4 == v4
                && (c.proto == 0 || c.proto == p)
                && within(dport, c.dports)
                && c.src.0 <= s
                && s <= c.src.1
                && within(sport, c.sports);
            hit.then_some(c.mark)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn match_text_round_trips_and_errors_name_the_part() {
        let text = "proto=tcp,src-range=198.51.100.0-198.51.100.255,dst-range=192.0.2.1:80-443";
        let r = FwmarkRule::from_match(7, text).unwrap();
        assert_eq!(r.match_text(), text);
        assert_eq!(r.to_string(), format!("mark 7 {text}"));
        assert_eq!(FwmarkRule::from_match(7, &r.match_text()).unwrap(), r);
        let any = FwmarkRule::from_match(1, "proto=any,dst-range=[2001:db8::1]:53").unwrap();
        assert_eq!((any.proto, any.match_text()), (None, "dst-range=[2001:db8::1]:53".to_string()));
        for (mark, bad, says) in [
            (1, "proto=icmp,dst-range=192.0.2.1", "one of tcp, udp, any"),
            (1, "proto=tcp", "dst-range is required"),
            (1, "dst-range=192.0.2.9-192.0.2.1", "dst-range"),
            (1, "dst-range=192.0.2.1,dst-range=192.0.2.2", "twice"),
            (1, "dst-range=192.0.2.1,oif=dpdk0", "unknown"),
            (0, "dst-range=192.0.2.1", "mark 0 is no mark"),
            (1, "dst-range=0.0.0.0:80", "not every address"),
            (1, "src-range=2001:db8::/64,dst-range=192.0.2.1", "different families"),
        ] {
            let e = FwmarkRule::from_match(mark, bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_first_matching_rule_gives_the_mark() {
        let rules = [
            FwmarkRule::from_match(2, "proto=tcp,src-range=198.51.100.0/24,dst-range=192.0.2.1:80-443").unwrap(),
            FwmarkRule::from_match(1, "proto=tcp,dst-range=192.0.2.1-192.0.2.4:80-443").unwrap(),
            FwmarkRule::from_match(3, "dst-range=192.0.2.1:53").unwrap(),
        ];
        let table = FwmarkTable::new(&rules).unwrap();
        let m = |p, src: &str, dst: &str, dport| table.mark_of(p, (ip(src), 40000), (ip(dst), dport));
        assert_eq!(m(Proto::Tcp, "198.51.100.7", "192.0.2.1", 443), Some(2));
        assert_eq!(m(Proto::Tcp, "203.0.113.7", "192.0.2.1", 443), Some(1));
        assert_eq!(m(Proto::Tcp, "203.0.113.7", "192.0.2.4", 80), Some(1));
        assert_eq!(m(Proto::Tcp, "203.0.113.7", "192.0.2.5", 80), None, "outside the addresses");
        assert_eq!(m(Proto::Tcp, "203.0.113.7", "192.0.2.1", 8080), None, "outside the ports");
        assert_eq!(m(Proto::Udp, "203.0.113.7", "192.0.2.1", 443), None, "not its protocol");
        assert_eq!(
            (m(Proto::Udp, "203.0.113.7", "192.0.2.1", 53), m(Proto::Tcp, "203.0.113.7", "192.0.2.1", 53)),
            (Some(3), Some(3))
        );
        let v6 = |s: &str| table.mark_of(Proto::Tcp, (ip("2001:db8::7"), 1), (ip(s), 80));
        assert_eq!(v6("::ffff:192.0.2.1"), None, "an IPv4 range takes no IPv6 address");
        let twice = [rules[0], rules[0]];
        assert!(matches!(check_rules(&twice), Err(FwmarkError::Duplicate(_))));
        // The same match under another mark, or a narrower one, after it would never
        // match; a wider one after it, or a narrower one before it, would.
        let other = |t: &str| FwmarkRule::from_match(4, t).unwrap();
        for (later, shadowed) in [
            ("proto=tcp,dst-range=192.0.2.1-192.0.2.4:80-443", true),
            ("proto=tcp,src-range=203.0.113.0/24,dst-range=192.0.2.2:443", true),
            ("proto=tcp,dst-range=192.0.2.1-192.0.2.4", false),
            ("dst-range=192.0.2.1-192.0.2.4:80-443", false),
            ("proto=tcp,dst-range=192.0.2.1-192.0.2.5:80-443", false),
            ("proto=tcp,dst-range=192.0.2.1:79-80", false),
        ] {
            let list = [rules[1], other(later)];
            assert_eq!(matches!(check_rules(&list), Err(FwmarkError::Shadowed { .. })), shadowed, "{later}");
        }
        assert!(rules[1].shadows(&rules[1]) && rules[1].shadows(&rules[0]), "wider: any source");
        assert!(!rules[0].shadows(&rules[1]), "rules[0] takes only its sources");
        assert!(rules[0].shadows(&other("proto=tcp,src-range=198.51.100.9,dst-range=192.0.2.1:80")));
        assert!(!rules[0].shadows(&other("proto=tcp,src-range=198.51.0.0/16,dst-range=192.0.2.1:80")));
        assert!(check_rules(&[rules[1], FwmarkRule { mark: 1, ..other("proto=tcp,dst-range=192.0.2.2:80") }]).is_ok());
        let many = vec![rules[1]; MAX_FWMARK_RULES + 1];
        assert!(matches!(check_rules(&many), Err(FwmarkError::TooMany(_))));
        assert!(FwmarkTable::new(&[]).unwrap().mark_of(Proto::Tcp, (ip("10.0.0.1"), 1), (ip("10.0.0.2"), 2)).is_none());
    }
}

#[cfg(test)]
mod cost {
    use super::*;

    /// The worst case a flow can cost: every rule tried, none matching.
    /// `cargo test -p fnat --release --lib fwmark::cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn scan_of_every_rule() {
        let rules: Vec<FwmarkRule> = (0..MAX_FWMARK_RULES as u32)
            .map(|i| {
                FwmarkRule::from_match(1, &format!("proto=tcp,dst-range=10.{}.{}.1:80-443", i / 256, i % 256)).unwrap()
            })
            .collect();
        let table = FwmarkTable::new(&rules).unwrap();
        let (src, dst) = ("198.51.100.7".parse().unwrap(), "10.200.0.1".parse().unwrap());
        let n = 20_000u32;
        let t = std::time::Instant::now();
        let mut hits = 0;
        for i in 0..n {
            hits += table.mark_of(Proto::Tcp, (src, i as u16), (dst, 80)).is_some() as u32;
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        println!("{} rules on as many addresses, none matching: {ns:.0} ns per flow ({hits} hits)", rules.len());
        // The worst a configuration can make it: every rule on the flow's address.
        let same: Vec<FwmarkRule> = (0..MAX_FWMARK_RULES as u16)
            .map(|i| FwmarkRule::from_match(1, &format!("proto=tcp,dst-range=10.200.0.1:{}", 1000 + i)).unwrap())
            .collect();
        let table = FwmarkTable::new(&same).unwrap();
        let t = std::time::Instant::now();
        for i in 0..n {
            hits += table.mark_of(Proto::Tcp, (src, i as u16), (dst, 80)).is_some() as u32;
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        println!("{} rules on the flow's address, none matching: {ns:.0} ns per flow ({hits} hits)", same.len());
    }
}
