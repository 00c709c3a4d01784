//! Model test: the route table answers as a naive linear longest-prefix match does,
//! through random additions and deletions.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netstack::{PortId, Route, RouteTable};
use proptest::prelude::*;

/// The naive answer: the longest matching prefix, lowest metric among equals.
fn naive(routes: &[Route], dst: IpAddr) -> Option<Route> {
    routes
        .iter()
        .filter(|r| r.prefix.contains(&dst))
        .max_by(|a, b| a.prefix.prefix_len().cmp(&b.prefix.prefix_len()).then(b.metric.cmp(&a.metric)))
        .copied()
}

/// Prefixes drawn from a small space so that they overlap often.
fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (0u32..16, 0u8..=32).prop_map(|(hi, len)| {
            let a = (10u32 << 24) | (hi << 12) | (hi << 4);
            IpNet::V4(Ipv4Net::new(a.into(), len).unwrap().trunc())
        }),
        (0u128..16, 0u8..=128).prop_map(|(hi, len)| {
            let a = (0x2001_0db8u128 << 96) | (hi << 60) | hi;
            IpNet::V6(Ipv6Net::new(a.into(), len).unwrap().trunc())
        }),
    ]
}

fn dst() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u32..16, any::<u16>()).prop_map(|(hi, lo)| IpAddr::from(std::net::Ipv4Addr::from(
            (10u32 << 24) | (hi << 12) | (lo as u32 & 0xfff)
        ))),
        (0u128..16, any::<u16>()).prop_map(|(hi, lo)| IpAddr::from(std::net::Ipv6Addr::from(
            (0x2001_0db8u128 << 96) | (hi << 60) | lo as u128
        ))),
        any::<u32>().prop_map(|a| IpAddr::from(std::net::Ipv4Addr::from(a))),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Add(IpNet, u32, u16),
    Del(IpNet, Option<u32>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prefix(), 0u32..3, 0u16..4).prop_map(|(p, m, d)| Op::Add(p, m, d)),
        1 => (prefix(), proptest::option::of(0u32..3)).prop_map(|(p, m)| Op::Del(p, m)),
    ]
}

proptest! {
    #[test]
    fn lookup_matches_the_naive_model(ops in proptest::collection::vec(op(), 0..60), dsts in proptest::collection::vec(dst(), 1..40)) {
        let mut table = RouteTable::new();
        let mut model: Vec<Route> = Vec::new();
        for op in ops {
            match op {
                Op::Add(p, metric, dev) => {
                    let mut r = Route::connected(p, PortId(dev), None);
                    r.metric = metric;
                    let dup = model.iter().any(|m| m.prefix == p && m.metric == metric);
                    prop_assert_eq!(table.add(r).is_err(), dup);
                    if !dup {
                        model.push(r);
                    }
                }
                Op::Del(p, metric) => {
                    let pos = model
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| m.prefix == p && metric.iter().all(|&x| x == m.metric))
                        .min_by_key(|(_, m)| m.metric)
                        .map(|(i, _)| i);
                    let got = table.del(p, metric);
                    match pos {
                        Some(i) => prop_assert_eq!(got.ok(), Some(model.remove(i))),
                        None => prop_assert!(got.is_err()),
                    }
                }
            }
            prop_assert_eq!(table.len(), model.len());
        }
        for d in dsts {
            prop_assert_eq!(table.lookup(d).copied(), naive(&model, d), "dst {}", d);
        }
        prop_assert_eq!(table.iter().count(), model.len());
    }
}
