//! Schedulers: which real server a new connection goes to.
//!
//! Each scheduler lives in its own module and follows the kernel IPVS module of the
//! same name (`ip_vs_rr.c`, `ip_vs_wrr.c`, ...). All of them skip a real server whose
//! weight is 0 (drained) or that is over its upper connection threshold (overloaded).
//!
//! The split between static and per-worker state:
//! - what depends only on the configuration (wrr's gcd and max weight, the sh/dh
//!   bucket tables, the Maglev lookup table, the conhash ring) is computed once per generation in
//!   [`crate::service::ServiceTable::build`] and shared read-only (`StaticTable`);
//! - what changes per connection (active/inactive counts, overload flags, rr/wrr
//!   cursors, persistence templates) is owned by one worker in its [`SchedState`].
//!
//! **Counting is per worker**, as in DPVS, where every lcore holds its own copy of the
//! services and schedules on its own view: a worker's lc/wlc/sed/nq see only the
//! connections that worker created, and its rr/wrr cursors are its own. With RSS
//! spreading clients evenly this balances the whole box like a shared count would,
//! with no cross-core traffic per connection. Connection thresholds (`-x`/`-y`) are
//! meant for the whole box, so each of `n` workers enforces `ceil(threshold / n)`
//! (see [`SchedState::with_workers`]).

mod state;

pub mod conhash;
pub mod dh;
pub mod fo;
pub mod lc;
pub mod maglev;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod wlc;
pub mod wrr;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::service::{Dest, RsId, ServiceConfig};

pub use state::{SchedState, SchedStats};

/// The scheduling algorithms, named as ipvsadm names them (`-s wlc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedKind {
    /// Round robin: each available server in turn.
    Rr,
    /// Weighted round robin, in IPVS's gcd-stepping order.
    Wrr,
    /// Least connections: fewest `active * 256 + inactive`.
    Lc,
    /// Weighted least connections: fewest `(active * 256 + inactive) / weight`
    /// (ipvsadm's default).
    #[default]
    Wlc,
    /// Shortest expected delay: fewest `(active + 1) / weight`.
    Sed,
    /// Never queue: an idle server (no active connection) first, else as sed.
    Nq,
    /// Source hashing: the client address picks a server (session affinity).
    Sh,
    /// Destination hashing: the destination address picks a server (caches).
    Dh,
    /// Maglev hashing: consistent hashing of the client with minimal disruption.
    Mh,
    /// DPVS's consistent hashing of the client on a ring (`conhash`).
    Conhash,
    /// Weighted failover: the highest-weight available server takes every connection.
    Fo,
    /// Weighted overflow: the highest-weight server until its active connections
    /// pass its weight, then the next.
    Ovf,
}

impl SchedKind {
    /// Every scheduler, in ipvsadm's order.
    pub const ALL: [SchedKind; 12] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Sh,
        SchedKind::Dh,
        SchedKind::Mh,
        SchedKind::Conhash,
        SchedKind::Fo,
        SchedKind::Ovf,
    ];

    /// The ipvsadm name (`wlc`).
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Sh => "sh",
            SchedKind::Dh => "dh",
            SchedKind::Mh => "mh",
            SchedKind::Conhash => "conhash",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
        }
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scheduler name that rvs does not know, or IPVS's locality-based ones, which rvs
/// refuses by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownSched {
    /// Not a scheduler name.
    #[error("unknown scheduler {0:?} (known: rr, wrr, lc, wlc, sed, nq, sh, dh, mh, conhash, fo, ovf)")]
    Unknown(String),
    /// `lblc`, `lblcr`: they send each destination address to its least loaded server
    /// and keep a per-destination table (LVS uses them with firewall-mark services in
    /// front of transparent caches); rvs offers `dh` for that.
    #[error("scheduler {0:?} is not supported: it keeps a least-loaded server per destination address (LVS's transparent caches behind a fwmark service); use dh on a fwmark service (one server per destination), or sh, mh or conhash")]
    Locality(String),
}

impl FromStr for SchedKind {
    type Err = UnknownSched;

    /// Parse an ipvsadm scheduler name, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(k) = SchedKind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(s)) {
            return Ok(k);
        }
        if s.eq_ignore_ascii_case("lblc") || s.eq_ignore_ascii_case("lblcr") {
            return Err(UnknownSched::Locality(s.to_string()));
        }
        Err(UnknownSched::Unknown(s.to_string()))
    }
}

/// Where a new connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// The real server's stable identity (the connection stores it and reports it
    /// back through the `conn_*` accounting calls).
    pub id: RsId,
    /// The real server's address.
    pub addr: IpAddr,
    /// The real server's port. 0 only for an all-ports service (vport 0), where it
    /// means "the client's destination port": the connection keeps the port the
    /// client asked for.
    pub port: u16,
    /// How the connection is forwarded.
    pub fwd: crate::types::FwdMode,
}

/// Why no real server was picked. Each is counted in [`SchedStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// No real server can take a new connection: none configured, all drained
    /// (weight 0) or overloaded, or the hashed one unavailable without fallback.
    #[error("no real server available")]
    NoDest,
    /// The service is persistent and the worker's persistence table is full.
    #[error("persistence table full")]
    PersistFull,
}

/// A scheduler's read-only view of one service's real servers: weights from the
/// generation, counts and overload flags from the worker.
pub(crate) struct Candidates<'a> {
    dests: &'a [Dest],
    slots: &'a [u32],
    counters: &'a [state::DestCounters],
}

impl<'a> Candidates<'a> {
    /// Number of real servers.
    pub(crate) fn len(&self) -> usize {
        self.dests.len()
    }

    fn counters(&self, i: usize) -> Option<&state::DestCounters> {
        self.slots.get(i).and_then(|&s| self.counters.get(s as usize))
    }

    /// Weight of server `i`.
    pub(crate) fn weight(&self, i: usize) -> u32 {
        self.dests.get(i).map_or(0, |d| d.weight)
    }

    /// Whether server `i` may take a new connection: weight > 0 and not overloaded.
    pub(crate) fn available(&self, i: usize) -> bool {
        self.weight(i) > 0 && self.counters(i).is_some_and(|c| !c.overloaded)
    }

    /// Active (established) connections of server `i` on this worker.
    pub(crate) fn active(&self, i: usize) -> u32 {
        self.counters(i).map_or(0, |c| c.active)
    }

    /// Inactive (not yet or no longer established) connections of server `i`.
    pub(crate) fn inactive(&self, i: usize) -> u32 {
        self.counters(i).map_or(0, |c| c.inactive)
    }

    /// IPVS's connection overhead: `active * 256 + inactive`.
    pub(crate) fn overhead(&self, i: usize) -> u64 {
        (u64::from(self.active(i)) << 8) + u64::from(self.inactive(i))
    }
}

/// The per-generation precomputed part of a service's scheduler.
#[derive(Debug, Clone)]
pub(crate) enum StaticTable {
    /// rr, lc, wlc, sed, nq, fo, ovf: nothing precomputed.
    None,
    /// wrr: gcd and max weight.
    Wrr(wrr::WrrParams),
    /// sh: 256 buckets, weights as repetitions.
    Sh(Box<sh::ShTable>),
    /// dh: 256 buckets.
    Dh(Box<dh::DhTable>),
    /// mh: the Maglev lookup table.
    Mh(maglev::MaglevTable),
    /// conhash: the ring.
    Conhash(conhash::ConhashTable),
}

impl StaticTable {
    /// The static table of `cfg`'s scheduler over `dests` (`mh_size` already validated).
    pub(crate) fn build(cfg: &ServiceConfig, dests: &[Dest], mh_size: u32) -> StaticTable {
        match cfg.sched {
            SchedKind::Rr
            | SchedKind::Lc
            | SchedKind::Wlc
            | SchedKind::Sed
            | SchedKind::Nq
            | SchedKind::Fo
            | SchedKind::Ovf => StaticTable::None,
            SchedKind::Wrr => StaticTable::Wrr(wrr::WrrParams::new(dests)),
            SchedKind::Sh => StaticTable::Sh(Box::new(sh::ShTable::build(dests))),
            SchedKind::Dh => StaticTable::Dh(Box::new(dh::DhTable::build(dests))),
            SchedKind::Mh => StaticTable::Mh(maglev::MaglevTable::build(dests, mh_size)),
            SchedKind::Conhash => StaticTable::Conhash(conhash::ConhashTable::build(dests)),
        }
    }
}

/// IPVS's address fold for hashing: the IPv4 address as a host-order `u32`, or the
/// xor of an IPv6 address's four 32-bit words.
pub(crate) fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let w = u128::from(a);
            (w as u32) ^ ((w >> 32) as u32) ^ ((w >> 64) as u32) ^ ((w >> 96) as u32)
        }
    }
}

/// A 64-bit finalizer (splitmix64): spreads every input bit over the output.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A deterministic 64-bit hash of an address and port under `seed`: the same on
/// every box and every run, so two balancers with the same configuration agree.
pub(crate) fn hash_endpoint(addr: IpAddr, port: u16, seed: u64) -> u64 {
    let mut h = mix64(seed ^ 0x9e37_79b9_7f4a_7c15);
    match addr {
        IpAddr::V4(a) => h = mix64(h ^ u64::from(u32::from(a))),
        IpAddr::V6(a) => {
            let w = u128::from(a);
            h = mix64(h ^ (w as u64));
            h = mix64(h ^ ((w >> 64) as u64));
        }
    }
    mix64(h ^ (u64::from(port) << 32) ^ 0x5bd1_e995)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Hand-built candidate sets for the schedulers' unit tests.

    use super::state::DestCounters;
    use super::Candidates;
    use crate::service::{Dest, RsId};
    use std::net::{IpAddr, Ipv4Addr};

    /// Servers 10.1.0.(i+1):80 with the given weights.
    pub(crate) fn dests(weights: &[u32]) -> Vec<Dest> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Dest {
                id: RsId(i as u32),
                addr: IpAddr::V4(Ipv4Addr::from(0x0a01_0001 + i as u32)),
                port: 80,
                weight: w,
                mark: Default::default(),
                upper: 0,
                lower: 0,
                fwd: Default::default(),
            })
            .collect()
    }

    /// Counters with the given (active, inactive, overloaded) per server.
    pub(crate) fn counters(c: &[(u32, u32, bool)]) -> Vec<DestCounters> {
        c.iter()
            .enumerate()
            .map(|(i, &(a, n, o))| {
                let mut d = DestCounters::new(RsId(i as u32));
                d.active = a;
                d.inactive = n;
                d.overloaded = o;
                d
            })
            .collect()
    }

    /// Identity slot mapping for `n` servers.
    pub(crate) fn slots(n: usize) -> Vec<u32> {
        (0..n as u32).collect()
    }

    /// A view over the three.
    pub(crate) fn view<'a>(d: &'a [Dest], s: &'a [u32], c: &'a [DestCounters]) -> Candidates<'a> {
        Candidates { dests: d, slots: s, counters: c }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_kind_names_round_trip() {
        for k in SchedKind::ALL {
            assert_eq!(k.to_string().parse::<SchedKind>().unwrap(), k);
        }
        assert_eq!("WLC".parse::<SchedKind>().unwrap(), SchedKind::Wlc);
        assert_eq!(SchedKind::default(), SchedKind::Wlc);
        let e = "lbl".parse::<SchedKind>().unwrap_err();
        assert!(e.to_string().contains("unknown scheduler \"lbl\""));
        let e = "LBLCR".parse::<SchedKind>().unwrap_err();
        assert!(
            e.to_string().contains("\"LBLCR\" is not supported")
                && e.to_string().contains("use dh on a fwmark service"),
            "{e}"
        );
    }

    #[test]
    fn ipv6_fold_is_xor_of_words() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(addr_fold(a), 0x2001_0db8 ^ 1);
    }
}
