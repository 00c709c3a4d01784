//! SNAT rules as operators write them: `[[snat]]` in rvsd.toml, DPVS's `-H` match text
//! (`proto=tcp,src-range=A-B,oif=dpdk1`) in `rvsadm`, `virtual_server match` in
//! keepalived.conf, and the control protocol between them. Ports are named; rvsd
//! resolves them when it builds the core's [`fnat::snat::SnatRule`].

use std::fmt::Write as _;
use std::net::IpAddr;

use fnat::snat::AddrRange;
use fnat::types::Proto;
use serde::{Deserialize, Serialize};

/// A SNAT rule: which new flows from hosts behind rvs it takes, and the WAN addresses
/// they leave with (DPVS: `ipvsadm -A -H MATCH`, then `-a -H MATCH -r WAN:0 -J` per
/// address). A rule is named by its match (`-H`); `name` is for listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnatSpec {
    /// Its name (absent in a request: rvsd gives `snat<N>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `tcp`, `udp` or `icmp` (echo, over IPv4 or IPv6); absent: TCP and UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    /// The sources it takes (absent: any).
    #[serde(default, alias = "src-range", skip_serializing_if = "Option::is_none")]
    pub src_range: Option<AddrRange>,
    /// The destinations it takes (absent: any).
    #[serde(default, alias = "dst-range", skip_serializing_if = "Option::is_none")]
    pub dst_range: Option<AddrRange>,
    /// The port the flows must arrive on (absent: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    /// The port the route to the destination must leave by (absent: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    /// The WAN addresses, each an address with `sapool` (its ports are the flows'
    /// source ports), taken in turn.
    #[serde(default)]
    pub wan: Vec<IpAddr>,
}

impl SnatSpec {
    /// Whether `other` has the same match (protocol, ranges, ports): what `-H` names.
    pub fn same_match(&self, other: &SnatSpec) -> bool {
        (self.proto, self.src_range, self.dst_range, &self.iif, &self.oif)
            == (other.proto, other.src_range, other.dst_range, &other.iif, &other.oif)
    }

    /// The match in DPVS's `-H` words, e.g. `proto=tcp,src-range=10.0.0.1-10.0.0.9,oif=dpdk1`
    /// (`proto=any` for a rule that takes TCP and UDP and names nothing else).
    pub fn match_text(&self) -> String {
        let mut out = String::new();
        let mut put = |k: &str, v: &dyn std::fmt::Display| {
            let sep = if out.is_empty() { "" } else { "," };
            let _ = write!(out, "{sep}{k}={v}");
        };
        if let Some(p) = self.proto {
            put("proto", &p.name());
        }
        if let Some(r) = &self.src_range {
            put("src-range", r);
        }
        if let Some(r) = &self.dst_range {
            put("dst-range", r);
        }
        if let Some(d) = &self.iif {
            put("iif", d);
        }
        if let Some(d) = &self.oif {
            put("oif", d);
        }
        if out.is_empty() {
            out.push_str("proto=any");
        }
        out
    }

    /// Parses DPVS's `-H` text: `proto=tcp|udp|icmp|any` (`icmpv6` is `icmp`; `any` is
    /// TCP and UDP, as no `proto`), `src-range=`, `dst-range=`, `iif=`,
    /// `oif=`, comma-separated, each at most once. The error names the part.
    pub fn from_match(text: &str) -> Result<SnatSpec, String> {
        let mut s = SnatSpec::default();
        let parts = fnat::snat::match_parts(text)?;
        for &(k, v) in &parts {
            let range = |v: &str| v.parse::<AddrRange>().map_err(|e| format!("match {k}: {e}"));
            match k {
                "proto" => {
                    s.proto = match v.to_ascii_lowercase().as_str() {
                        "tcp" => Some(Proto::Tcp),
                        "udp" => Some(Proto::Udp),
                        "icmp" | "icmpv6" => Some(Proto::Icmp),
                        "any" => None,
                        _ => return Err(format!("match proto={v}: one of tcp, udp, icmp, any")),
                    }
                }
                "src-range" => s.src_range = Some(range(v)?),
                "dst-range" => s.dst_range = Some(range(v)?),
                "iif" => s.iif = Some(v.to_string()),
                "oif" => s.oif = Some(v.to_string()),
                _ => return Err(format!("match {k}: unknown (known: proto, src-range, dst-range, iif, oif)")),
            }
        }
        if parts.is_empty() {
            return Err("match: empty (e.g. proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1)".into());
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_text_round_trips_and_errors_name_the_part() {
        let text =
            "proto=tcp,src-range=192.168.100.0-192.168.100.254,dst-range=0.0.0.0-255.255.255.255:1-1024,oif=dpdk1";
        let s = SnatSpec::from_match(text).unwrap();
        assert_eq!(s.match_text(), text);
        assert_eq!(SnatSpec::from_match(&s.match_text()).unwrap(), s);
        assert!(s.same_match(&SnatSpec {
            name: Some("x".into()),
            wan: vec!["203.0.113.1".parse().unwrap()],
            ..s.clone()
        }));
        assert!(!s.same_match(&SnatSpec { oif: None, ..s.clone() }));
        assert_eq!(SnatSpec::from_match("proto=any").unwrap().match_text(), "proto=any");
        let icmp = SnatSpec::from_match("proto=icmpv6,src-range=2001:db8::/64").unwrap();
        assert_eq!(icmp.proto, Some(Proto::Icmp));
        assert_eq!(icmp.match_text(), "proto=icmp,src-range=2001:db8::-2001:db8::ffff:ffff:ffff:ffff");
        for (bad, says) in [
            ("proto=sctp", "one of tcp, udp, icmp"),
            ("src-range=10.0.0.9-10.0.0.1", "src-range"),
            ("oif=dpdk1,oif=dpdk2", "twice"),
            ("ttl=3", "unknown"),
            ("oif", "KEY=VALUE"),
            ("", "empty"),
        ] {
            let e = SnatSpec::from_match(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn toml_and_json_forms() {
        let s: SnatSpec = serde_json::from_str(r#"{"src-range":"10.0.0.0/8","wan":["203.0.113.1"]}"#).unwrap();
        assert_eq!(s.src_range.unwrap().to_string(), "10.0.0.0-10.255.255.255");
        assert!(serde_json::from_str::<SnatSpec>(r#"{"wan":[],"weight":3}"#).is_err(), "unknown keys are errors");
    }
}
