//! Destination hashing (`ip_vs_dh.c`): the destination address hashes into a
//! 256-bucket table filled round robin with the servers (weights are not used, as in
//! IPVS), so every connection to one destination goes to one server: the scheduler
//! for cache clusters.
//!
//! The destination of a connection to a VIP service is the VIP, so every new
//! connection of a VIP:port dh service goes to one server (IPVS behaves the same); dh
//! is for firewall-mark services, whose rules group many destinations (a cache cluster
//! in front of a range of addresses): each destination address keeps its server.
//! IPVS's hash keeps only the low 8 bits of `fold(addr) * 2654435761`, i.e. it
//! depends on the last byte of an IPv4 address; kept as is for compatibility.
//! Unavailable hashed server: with `hash_fallback` the next buckets are tried in turn
//! (IPVS has no fallback for dh), else no server.

use std::net::IpAddr;

use super::{addr_fold, Candidates};
use crate::service::Dest;

/// Number of buckets (IPVS's `IP_VS_DH_TAB_BITS` = 8).
pub const DH_TAB_SIZE: usize = 256;

const EMPTY: u32 = u32::MAX;

/// The 256 buckets of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhTable {
    buckets: [u32; DH_TAB_SIZE],
}

impl DhTable {
    /// Fill the buckets with the servers in turn.
    pub fn build(dests: &[Dest]) -> Self {
        let mut buckets = [EMPTY; DH_TAB_SIZE];
        if !dests.is_empty() {
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = (i % dests.len()) as u32;
            }
        }
        DhTable { buckets }
    }

    /// The server index in bucket `b`.
    pub fn bucket(&self, b: usize) -> Option<usize> {
        match self.buckets.get(b) {
            Some(&i) if i != EMPTY => Some(i as usize),
            _ => None,
        }
    }
}

/// IPVS's `ip_vs_dh_hashkey`.
pub fn dh_hash(addr: IpAddr) -> usize {
    (u64::from(addr_fold(addr)).wrapping_mul(2_654_435_761) as usize) & (DH_TAB_SIZE - 1)
}

/// The server for destination `dst`.
pub(crate) fn pick(c: &Candidates<'_>, t: &DhTable, dst: IpAddr, fallback: bool) -> Option<usize> {
    let h = dh_hash(dst);
    let first = t.bucket(h)?;
    if c.available(first) {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    (1..DH_TAB_SIZE).filter_map(|k| t.bucket((h + k) % DH_TAB_SIZE)).find(|&i| c.available(i))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn destination_picks_stably() {
        let d = dests(&[1, 5, 1]);
        let t = DhTable::build(&d);
        assert_eq!((0..6).map(|b| t.bucket(b).unwrap()).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2]);
        let s = slots(3);
        let ok = counters(&[(0, 0, false); 3]);
        let v = view(&d, &s, &ok);
        let mut seen = [0; 3];
        for last in 0..=255u8 {
            let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, last));
            let a = pick(&v, &t, dst, true).unwrap();
            assert_eq!(pick(&v, &t, dst, true), Some(a));
            seen[a] += 1;
        }
        assert!(seen.iter().all(|&k| k >= 85), "{seen:?}");
        let drained = dests(&[0, 0, 1]);
        let v = view(&drained, &s, &ok);
        for last in 0..=255u8 {
            let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, last));
            assert_eq!(pick(&v, &t, dst, true), Some(2));
        }
    }
}
