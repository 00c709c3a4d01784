//! Source hashing (`ip_vs_sh.c`): the client address (and port, with `hash_port`)
//! hashes into a 256-bucket table; a client keeps its server as long as the table does.
//!
//! The table is filled as IPVS fills it: walking the servers in order, each takes as
//! many consecutive buckets as its weight (a drained server still takes one, so that
//! draining does not reshuffle the others), cycling until the 256 buckets are full.
//! As in IPVS the weights act as bucket counts, so they should add up to 256 or less
//! (servers past the 256th bucket get none). The table is built once per generation:
//! any change to the service's server list or weights may move clients; changes
//! elsewhere (other services, thresholds) do not.
//!
//! A drained or overloaded hashed server: with `hash_fallback` (the default) the
//! client is rehashed over the table with increasing offsets (IPVS `sh-fallback`),
//! which is deterministic per client; without it, no server.

use std::net::IpAddr;

use super::{addr_fold, Candidates};
use crate::service::Dest;

/// Buckets of the table (IPVS's `IP_VS_SH_TAB_BITS` = 8).
pub const SH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;

const EMPTY: u32 = u32::MAX;

/// The 256 buckets of one service, each a server index (or empty when the service has
/// no server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShTable {
    buckets: [u32; SH_TAB_SIZE],
}

impl ShTable {
    /// Fill the buckets from the server list, weights as repetitions.
    pub fn build(dests: &[Dest]) -> Self {
        let mut buckets = [EMPTY; SH_TAB_SIZE];
        if !dests.is_empty() {
            let mut d = 0usize;
            let mut count = 0u32;
            for b in buckets.iter_mut() {
                *b = d as u32;
                count += 1;
                if count >= dests[d].weight {
                    d = (d + 1) % dests.len();
                    count = 0;
                }
            }
        }
        ShTable { buckets }
    }

    /// The server index in bucket `b`.
    pub fn bucket(&self, b: usize) -> Option<usize> {
        match self.buckets.get(b) {
            Some(&i) if i != EMPTY => Some(i as usize),
            _ => None,
        }
    }
}

/// IPVS's `ip_vs_sh_hashkey`: golden-ratio `hash_32(port + fold(addr))` plus an offset,
/// modulo the table size.
pub fn sh_hash(addr: IpAddr, port: u16, offset: u32) -> usize {
    let v = u32::from(port).wrapping_add(addr_fold(addr));
    let h = v.wrapping_mul(0x61C8_8647) >> (32 - SH_TAB_BITS);
    (offset.wrapping_add(h) as usize) & (SH_TAB_SIZE - 1)
}

/// The client's server, with fallback as configured.
pub(crate) fn pick(
    c: &Candidates<'_>,
    t: &ShTable,
    client: IpAddr,
    cport: u16,
    hash_port: bool,
    fallback: bool,
) -> Option<usize> {
    let port = if hash_port { cport } else { 0 };
    let ihash = sh_hash(client, port, 0);
    let first = t.bucket(ihash)?;
    if c.available(first) {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    for offset in 0..SH_TAB_SIZE as u32 {
        let roffset = (offset + ihash as u32) % SH_TAB_SIZE as u32;
        let i = t.bucket(sh_hash(client, port, roffset))?;
        if c.available(i) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn buckets_follow_weights() {
        let t = ShTable::build(&dests(&[3, 1, 0]));
        let got: Vec<usize> = (0..10).map(|b| t.bucket(b).unwrap()).collect();
        assert_eq!(got, [0, 0, 0, 1, 2, 0, 0, 0, 1, 2]);
        assert_eq!(ShTable::build(&[]).bucket(0), None);
    }

    #[test]
    fn same_client_same_server_and_fallback() {
        let d = dests(&[1, 1, 1, 1]);
        let t = ShTable::build(&d);
        let s = slots(4);
        let ok = counters(&[(0, 0, false); 4]);
        let v = view(&d, &s, &ok);
        let mut seen = [0usize; 4];
        for n in 0..1000u32 {
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n * 7919));
            let a = pick(&v, &t, client, 1000, false, true).unwrap();
            assert_eq!(pick(&v, &t, client, 2000, false, true), Some(a), "port ignored");
            seen[a] += 1;
        }
        assert!(seen.iter().all(|&k| k > 150), "{seen:?}");

        // Server 2 overloaded: its clients move, others stay; no fallback = none.
        let over = counters(&[(0, 0, false), (0, 0, false), (0, 0, true), (0, 0, false)]);
        let vo = view(&d, &s, &over);
        for n in 0..1000u32 {
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n * 7919));
            let a = pick(&v, &t, client, 0, false, true).unwrap();
            let b = pick(&vo, &t, client, 0, false, true).unwrap();
            if a == 2 {
                assert_ne!(b, 2);
                assert_eq!(pick(&vo, &t, client, 0, false, false), None);
            } else {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn hash_port_spreads_one_client() {
        let d = dests(&[1, 1]);
        let t = ShTable::build(&d);
        let s = slots(2);
        let ok = counters(&[(0, 0, false); 2]);
        let v = view(&d, &s, &ok);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let picks: Vec<_> = (0..64u16).map(|p| pick(&v, &t, client, 40000 + p, true, true).unwrap()).collect();
        assert!(picks.contains(&0) && picks.contains(&1));
    }
}
