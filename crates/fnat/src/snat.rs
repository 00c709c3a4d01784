//! SNAT: connections that hosts behind rvs (the real servers, typically, whose default
//! route is rvs) open towards outside networks, with their source rewritten to a WAN
//! address and a local port, and the replies mapped back. DPVS's SNAT service
//! (`ipvsadm -A -H src-range=...,oif=dpdk1` with `-r WAN:0 -J`) in rvs's terms.
//!
//! A [`SnatRule`] says which new flows it takes (protocol, source and destination
//! ranges, the port they arrive on, the port the route to their destination leaves
//! by) and which WAN addresses they leave with. Rules are tried in order; the first
//! that matches wins. A flow no rule takes is not rvs's (the kernel twin sees it, as
//! before).
//!
//! The connection a rule opens is a FullNAT connection whose virtual and real address
//! are both the outside destination and whose local address is a WAN address
//! ([`crate::types::FwdMode::Snat`]): client side `inside:port → dest:dport`, server
//! side `dest:dport → WAN:lport`. So the translation, the state machine, the timeouts,
//! the local-port pools and their worker ownership (replies reach the worker that
//! owns `lport`) are FullNAT's; only the TOA, which would tell the outside the inside
//! host's address, is left out.
//!
//! The table is immutable, built by the control plane with a copy of the routes the
//! `oif` match needs (rebuilt when they change), and read by the workers per new flow,
//! never per packet of an established one.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::conn::Addr;
use crate::types::Proto;

/// An inclusive range of addresses of one family, with an optional range of ports, in
/// DPVS's `src-range`/`dst-range` words: `10.0.0.1-10.0.0.9`, `0.0.0.0:1-1024`,
/// `[2001:db8::1]-[2001:db8::9]:80` (IPv6 with ports in brackets), or rvs's prefix
/// form `10.0.0.0/24`. The unspecified address alone (`0.0.0.0`, `::`) is every address
/// of its family, as in DPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrRange {
    /// The first address.
    pub lo: IpAddr,
    /// The last address (same family, not below `lo`).
    pub hi: IpAddr,
    /// The ports (first, last), if the range names them.
    pub ports: Option<(u16, u16)>,
}

/// Why an address range or a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnatError {
    /// Not an address range.
    #[error("{0:?} is not an address range (A, A-B, A/N, each optionally :PORT or :PORT-PORT; IPv6 with ports as [A]-[B]:P-Q)")]
    BadRange(String),
    /// The two ends differ in family or are the wrong way round.
    #[error("{0}: the ends must be of one family, the first not above the last")]
    Disordered(String),
    /// An ICMP rule with ports in a range: echo messages have none.
    #[error("SNAT rule {0:?}: proto=icmp takes no ports in its ranges (echo messages have none)")]
    IcmpPorts(String),
    /// A rule's ranges and WAN addresses are not of one family.
    #[error("SNAT rule {rule:?}: {what} is not of the family of its WAN addresses")]
    Family {
        /// The rule.
        rule: String,
        /// The range that differs.
        what: &'static str,
    },
}

impl AddrRange {
    /// The range of every address of `net`, any port.
    pub fn of_net(net: IpNet) -> AddrRange {
        AddrRange { lo: net.network(), hi: net.broadcast(), ports: None }
    }

    /// Whether `a` (and its `port`) lies in the range.
    #[inline]
    pub fn contains(&self, a: &Addr, port: u16) -> bool {
        Addr::from(self.lo) <= *a
            && *a <= Addr::from(self.hi)
            && self.ports.is_none_or(|(lo, hi)| (lo..=hi).contains(&port))
    }

    /// Whether the range is IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.lo.is_ipv4()
    }

    /// Whether every address and port of `other` lies in this range.
    pub fn includes(&self, other: &AddrRange) -> bool {
        let (lo, hi) = (Addr::from(self.lo), Addr::from(self.hi));
        self.is_ipv4() == other.is_ipv4()
            && lo <= Addr::from(other.lo)
            && Addr::from(other.hi) <= hi
            && match (self.ports, other.ports) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some((a, b)), Some((c, d))) => a <= c && d <= b,
            }
    }
}

/// `P` or `P-Q`.
fn port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

impl FromStr for AddrRange {
    type Err = SnatError;

    fn from_str(s: &str) -> Result<AddrRange, SnatError> {
        let bad = || SnatError::BadRange(s.to_string());
        let ip = |t: &str| t.trim().trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().map_err(|_| bad());
        // The port part: after the last ']' (IPv6), or after the ':' of an IPv4 range.
        let (addrs, ports) = match s.rfind(']') {
            Some(end) => match s[end + 1..].strip_prefix(':') {
                Some(p) => (&s[..=end], Some(p)),
                None if end + 1 == s.len() => (s, None),
                None => return Err(bad()),
            },
            None if s.contains('.') => match s.split_once(':') {
                Some((a, p)) => (a, Some(p)),
                None => (s, None),
            },
            None => (s, None),
        };
        let ports = ports.map(|p| port_range(p).ok_or_else(bad)).transpose()?;
        let mut r = if addrs.contains('/') {
            AddrRange::of_net(addrs.trim().parse::<IpNet>().map_err(|_| bad())?)
        } else if let Some((a, b)) = addrs.split_once("]-[").or_else(|| {
            // Without brackets a '-' can only separate two addresses.
            (!addrs.contains('[')).then(|| addrs.split_once('-')).flatten()
        }) {
            AddrRange { lo: ip(a)?, hi: ip(b)?, ports: None }
        } else {
            let a = ip(addrs)?;
            AddrRange { lo: a, hi: a, ports: None }
        };
        r.ports = ports;
        if r.lo == r.hi && r.lo.is_unspecified() {
            // DPVS's "any address" (its `0.0.0.0:1-1024`).
            r.hi = match r.lo {
                IpAddr::V4(_) => IpAddr::from([255; 4]),
                IpAddr::V6(_) => IpAddr::from([0xff; 16]),
            };
        }
        if r.lo.is_ipv4() != r.hi.is_ipv4() || Addr::from(r.lo) > Addr::from(r.hi) {
            return Err(SnatError::Disordered(s.to_string()));
        }
        Ok(r)
    }
}

/// The `KEY=VALUE` parts of DPVS's `-H` match text (comma-separated, each key at most
/// once), in order: what SNAT rules and fwmark rules are written in. The error names the
/// part.
pub fn match_parts(text: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut parts: Vec<(&str, &str)> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("match {part:?}: not KEY=VALUE"))?;
        if parts.iter().any(|&(seen, _)| seen == k) {
            return Err(format!("match: {k} given twice"));
        }
        parts.push((k, v));
    }
    Ok(parts)
}

impl fmt::Display for AddrRange {
    /// DPVS's form: `A-B`, `A` for a single address, then `:P-Q` or `:P` (IPv6 in
    /// brackets when ports follow).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = self.ports.is_some() && !self.is_ipv4();
        let one = |f: &mut fmt::Formatter<'_>, a: IpAddr| match v6 {
            true => write!(f, "[{a}]"),
            false => write!(f, "{a}"),
        };
        one(f, self.lo)?;
        if self.lo != self.hi {
            f.write_str("-")?;
            one(f, self.hi)?;
        }
        match self.ports {
            Some((lo, hi)) if lo == hi => write!(f, ":{lo}"),
            Some((lo, hi)) => write!(f, ":{lo}-{hi}"),
            None => Ok(()),
        }
    }
}

impl Serialize for AddrRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddrRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AddrRange, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// One SNAT rule as the control plane holds it, ports already resolved to their index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnatRule {
    /// Its name in listings and messages.
    pub name: String,
    /// The protocol it takes; `None`: TCP and UDP (ICMP echo only when named, as
    /// DPVS's `proto=icmp` rules).
    pub proto: Option<Proto>,
    /// The sources it takes (DPVS `src-range`); `None`: any.
    pub src: Option<AddrRange>,
    /// The destinations it takes (DPVS `dst-range`); `None`: any.
    pub dst: Option<AddrRange>,
    /// The port (index) the flow must arrive on (DPVS `iif`); `None`: any.
    pub iif: Option<u16>,
    /// The port (index) the route to the destination must leave by (DPVS `oif`).
    pub oif: Option<u16>,
    /// The addresses the flows leave with, each a local address with a port pool
    /// (taken in turn per new flow, as a service's LIPs are).
    pub wan: Vec<IpAddr>,
}

impl SnatRule {
    /// Checks the rule on its own: its WAN addresses of one family with its ranges. A
    /// rule without WAN addresses (yet: `rvsadm -A -H` comes before `-a -H ... -J`)
    /// takes nothing.
    pub fn validate(&self) -> Result<(), SnatError> {
        let Some(v4) = self.wan.first().map(IpAddr::is_ipv4).or(self.src.or(self.dst).map(|r| r.is_ipv4())) else {
            return Ok(());
        };
        let fam = |what, ok: bool| match ok {
            true => Ok(()),
            false => Err(SnatError::Family { rule: self.name.clone(), what }),
        };
        fam("a WAN address", self.wan.iter().all(|a| a.is_ipv4() == v4))?;
        fam("src-range", self.src.is_none_or(|r| r.is_ipv4() == v4))?;
        fam("dst-range", self.dst.is_none_or(|r| r.is_ipv4() == v4))?;
        let ports = self.src.is_some_and(|r| r.ports.is_some()) || self.dst.is_some_and(|r| r.ports.is_some());
        if self.proto == Some(Proto::Icmp) && ports {
            return Err(SnatError::IcmpPorts(self.name.clone()));
        }
        Ok(())
    }
}

/// The rules of one generation, and the routes their `oif` matches read.
#[derive(Debug, Clone, Default)]
pub struct SnatTable {
    rules: Vec<SnatRule>,
    v4: bool,
    v6: bool,
    /// (prefix, out port or `None` for the kernel), longest prefix first: the route
    /// lookup of `oif`, and of whether the destination is reachable at all.
    routes: Vec<(IpNet, Option<u16>)>,
}

impl SnatTable {
    /// A table of `rules` (each valid: [`SnatRule::validate`]), with the routes: each
    /// prefix and the port it leaves by, `None` for a route to the kernel twin.
    pub fn new(rules: Vec<SnatRule>, routes: impl IntoIterator<Item = (IpNet, Option<u16>)>) -> SnatTable {
        let mut routes: Vec<(IpNet, Option<u16>)> = routes.into_iter().collect();
        routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.prefix_len()));
        let v4 = rules.iter().any(|r| r.wan.iter().any(IpAddr::is_ipv4));
        let v6 = rules.iter().any(|r| r.wan.iter().any(IpAddr::is_ipv6));
        SnatTable { rules, v4, v6, routes }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[SnatRule] {
        &self.rules
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The port the route to `dst` leaves by (longest prefix): `None` if there is no
    /// route or it leads to the kernel.
    fn out_port(&self, dst: IpAddr) -> Option<u16> {
        self.routes.iter().find(|(p, _)| p.contains(&dst)).and_then(|(_, port)| *port)
    }

    /// The first rule that takes a new flow `src:sport → dst:dport` of `proto` that arrived on port
    /// `iif` (`None`: unknown, so no rule with an `iif` takes it). A destination
    /// without a route out of a port is no rule's (the flow would go nowhere, or to the
    /// kernel). Per new flow: a scan of the rules and, once one matches, of the routes;
    /// no allocation.
    #[inline]
    pub fn find(&self, proto: Proto, src: (&Addr, u16), dst: (&Addr, u16), iif: Option<u16>) -> Option<usize> {
        let ((src, sport), (dst, dport)) = (src, dst);
        let v4 = dst.is_v4();
        if !(if v4 { self.v4 } else { self.v6 }) {
            return None;
        }
        let mut out: Option<Option<u16>> = None;
        for (i, r) in self.rules.iter().enumerate() {
            if r.wan.first().is_none_or(|a| a.is_ipv4() != v4)
                || r.proto.map_or(proto == Proto::Icmp, |p| p != proto)
                || r.src.is_some_and(|s| !s.contains(src, sport))
                || r.dst.is_some_and(|d| !d.contains(dst, dport))
                || r.iif.is_some_and(|p| iif != Some(p))
            {
                continue;
            }
            let port = (*out.get_or_insert_with(|| self.out_port(dst.ip())))?;
            if r.oif.is_some_and(|want| port != want) {
                continue;
            }
            return Some(i);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<IpAddr>().unwrap())
    }

    fn rule(name: &str) -> SnatRule {
        SnatRule {
            name: name.into(),
            proto: None,
            src: None,
            dst: None,
            iif: None,
            oif: None,
            wan: vec!["203.0.113.1".parse().unwrap()],
        }
    }

    #[test]
    fn ranges_parse_and_print() {
        let r: AddrRange = "192.168.100.1-192.168.100.254".parse().unwrap();
        assert!(r.contains(&a("192.168.100.1"), 1) && r.contains(&a("192.168.100.254"), 65535));
        assert!(!r.contains(&a("192.168.100.0"), 1) && !r.contains(&a("192.168.101.1"), 1));
        assert_eq!(r.to_string(), "192.168.100.1-192.168.100.254");
        let n: AddrRange = "10.0.0.0/24".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0-10.0.0.255");
        let one: AddrRange = "2001:db8::1".parse().unwrap();
        assert_eq!(one.to_string(), "2001:db8::1");
        assert!(!one.contains(&a("2001:db8::2"), 1));
        // DPVS's example: every address, ports 1 to 1024.
        let low: AddrRange = "0.0.0.0:1-1024".parse().unwrap();
        assert!(low.contains(&a("203.0.113.9"), 1024) && !low.contains(&a("203.0.113.9"), 1025));
        assert_eq!(low.to_string(), "0.0.0.0-255.255.255.255:1-1024");
        let v6: AddrRange = "[2001:db8::1]-[2001:db8::9]:53".parse().unwrap();
        assert!(v6.contains(&a("2001:db8::5"), 53) && !v6.contains(&a("2001:db8::5"), 54));
        assert_eq!(v6.to_string(), "[2001:db8::1]-[2001:db8::9]:53");
        assert_eq!("10.1.0.0/16:80".parse::<AddrRange>().unwrap().to_string(), "10.1.0.0-10.1.255.255:80");
        for bad in [
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-2001:db8::1",
            "nope",
            "10.0.0.1-",
            "10.0.0.0/33",
            "10.0.0.1:9-8",
            "10.0.0.1:x",
            "[2001:db8::1]x",
        ] {
            assert!(bad.parse::<AddrRange>().is_err(), "{bad}");
        }
        let j: AddrRange = serde_json::from_str("\"10.1.0.0/16\"").unwrap();
        assert_eq!(serde_json::to_string(&j).unwrap(), "\"10.1.0.0-10.1.255.255\"");
    }

    #[test]
    fn rules_validate() {
        assert!(rule("r").validate().is_ok());
        assert!(SnatRule { wan: vec![], ..rule("r") }.validate().is_ok(), "no WAN address yet: takes nothing");
        let mixed = SnatRule { src: Some("2001:db8::/64".parse().unwrap()), ..rule("r") };
        assert!(matches!(mixed.validate(), Err(SnatError::Family { what: "src-range", .. })));
        let wans = SnatRule { wan: vec!["203.0.113.1".parse().unwrap(), "2001:db8::1".parse().unwrap()], ..rule("r") };
        assert!(wans.validate().is_err());
        let echo = SnatRule { proto: Some(Proto::Icmp), src: Some("10.0.0.0/8".parse().unwrap()), ..rule("ping") };
        assert!(echo.validate().is_ok());
        let ports = SnatRule { dst: Some("0.0.0.0:1-1024".parse().unwrap()), ..echo };
        assert_eq!(ports.validate(), Err(SnatError::IcmpPorts("ping".into())), "echo messages have no ports");
    }

    /// ICMP echo is taken only by rules that name it (DPVS's `proto=icmp`): a rule without
    /// a protocol is TCP and UDP's.
    #[test]
    fn echo_only_by_icmp_rules() {
        let any = rule("any");
        let echo =
            SnatRule { proto: Some(Proto::Icmp), src: Some("192.168.100.0/24".parse().unwrap()), ..rule("ping") };
        let routes = [("0.0.0.0/0".parse().unwrap(), Some(1))];
        let (host, out) = ((&a("192.168.100.7"), 7), (&a("198.51.100.80"), 0));
        assert_eq!(SnatTable::new(vec![any.clone()], routes).find(Proto::Icmp, host, out, None), None);
        let t = SnatTable::new(vec![echo, any], routes);
        assert_eq!(t.find(Proto::Icmp, host, out, None), Some(0));
        assert_eq!(t.find(Proto::Udp, host, (&a("198.51.100.80"), 53), None), Some(1));
        assert_eq!(t.find(Proto::Icmp, (&a("192.168.101.7"), 7), out, None), None, "outside the range");
    }

    #[test]
    fn first_matching_rule_wins() {
        let inside = SnatRule {
            proto: Some(Proto::Tcp),
            src: Some("192.168.100.0/24".parse().unwrap()),
            oif: Some(1),
            ..rule("inside-tcp")
        };
        let only_dns =
            SnatRule { proto: Some(Proto::Udp), dst: Some("198.51.100.53:53".parse().unwrap()), ..rule("dns") };
        let by_port = SnatRule { iif: Some(2), ..rule("from-port-2") };
        let idle = SnatRule { wan: vec![], ..rule("no-wan-yet") };
        let routes = ["0.0.0.0/0", "10.0.0.0/8", "198.51.100.99/32"].map(|r| r.parse().unwrap());
        let t = SnatTable::new(
            vec![idle, inside, only_dns, by_port],
            [(routes[0], Some(1)), (routes[1], Some(0)), (routes[2], None)],
        );
        let (host, out, lan) = ((&a("192.168.100.7"), 40000), a("198.51.100.80"), a("10.1.2.3"));
        assert_eq!(t.find(Proto::Tcp, host, (&out, 80), None), Some(1));
        assert_eq!(t.find(Proto::Tcp, host, (&lan, 80), None), None, "the route to 10/8 leaves by port 0");
        assert_eq!(t.find(Proto::Tcp, host, (&lan, 80), Some(2)), Some(3));
        assert_eq!(t.find(Proto::Udp, host, (&out, 53), None), None);
        assert_eq!(t.find(Proto::Udp, host, (&a("198.51.100.53"), 53), None), Some(2));
        assert_eq!(t.find(Proto::Udp, host, (&a("198.51.100.53"), 54), None), None, "the port is outside dst-range");
        assert_eq!(t.find(Proto::Tcp, (&a("192.168.101.7"), 1), (&out, 80), None), None);
        assert_eq!(t.find(Proto::Tcp, host, (&a("198.51.100.99"), 80), Some(2)), None, "routed to the kernel");
        let no_routes = SnatTable::new(t.rules().to_vec(), []);
        assert_eq!(no_routes.find(Proto::Tcp, host, (&lan, 80), Some(2)), None, "no route");
        let (h6, d6) = (a("2001:db8::7"), a("2001:db8:1::1"));
        assert_eq!(t.find(Proto::Tcp, (&h6, 1), (&d6, 80), Some(2)), None, "no IPv6 WAN address");
    }
}
