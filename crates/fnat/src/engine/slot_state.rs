//! The per-slot arrays of the features few services use ([`crate::conn::slots`]), built
//! off the worker: the thread that publishes a service-table generation asks a
//! [`SlotProvisioner`] which arrays the generation needs that were never built, builds
//! them ([`SlotState`]) and hands them to each worker with the generation; the worker
//! adopts them ([`super::Engine::adopt_slot_state`]) before it binds the generation, so
//! that binding finds them allocated and writes nothing. A worker that was handed none
//! (a generation bound without a provisioner: rvsd's first, before any traffic; a test)
//! allocates them itself where it binds, as before.

use crate::service::ServiceTable;
use crate::synproxy::SynProxyMode;
use crate::types::Proto;

/// Which of the features with per-slot state a set of services uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotFeatures {
    /// The SYN proxy's: a TCP service whose mode is not `off` (its cookies are checked).
    pub synproxy: bool,
    /// The PROXY protocol's.
    pub proxy_protocol: bool,
    /// UOA's.
    pub uoa: bool,
}

impl SlotFeatures {
    /// What `table`'s services use; `synproxy_default`: the SYN proxy's mode for a
    /// service with none of its own.
    pub fn of(table: &ServiceTable, synproxy_default: SynProxyMode) -> SlotFeatures {
        let mut f = SlotFeatures::default();
        for s in table.services() {
            f.synproxy |= s.config.proto == Proto::Tcp && s.synproxy.unwrap_or(synproxy_default) != SynProxyMode::Off;
            f.proxy_protocol |= s.config.proxy_protocol.is_some();
            f.uoa |= s.config.uoa.is_some();
        }
        f
    }

    /// Those of `self` not in `other`.
    pub fn minus(self, other: SlotFeatures) -> SlotFeatures {
        SlotFeatures {
            synproxy: self.synproxy && !other.synproxy,
            proxy_protocol: self.proxy_protocol && !other.proxy_protocol,
            uoa: self.uoa && !other.uoa,
        }
    }

    /// Whether it names none.
    pub fn is_empty(self) -> bool {
        self == SlotFeatures::default()
    }
}

/// Per-slot arrays built for one worker, to be adopted by its engine.
#[derive(Default)]
pub struct SlotState {
    pub(crate) synproxy: Option<Vec<crate::synproxy::Side>>,
    pub(crate) pp: Option<Vec<crate::proxy_proto::Side>>,
    pub(crate) uoa: Option<Vec<(u8, crate::uoa::UoaMode)>>,
}

impl SlotState {
    /// The arrays of `features` for `capacity` slots, every slot at its default.
    pub fn build(features: SlotFeatures, capacity: u32) -> SlotState {
        fn array<T: Clone + Default>(wanted: bool, capacity: u32) -> Option<Vec<T>> {
            wanted.then(|| vec![T::default(); capacity as usize])
        }
        SlotState {
            synproxy: array(features.synproxy, capacity),
            pp: array(features.proxy_protocol, capacity),
            uoa: array(features.uoa, capacity),
        }
    }

    /// Adds `other`'s arrays to its own (a worker that has not adopted the last ones
    /// yet is handed both).
    pub fn merge(&mut self, other: SlotState) {
        self.synproxy = self.synproxy.take().or(other.synproxy);
        self.pp = self.pp.take().or(other.pp);
        self.uoa = self.uoa.take().or(other.uoa);
    }

    /// The features it holds arrays of.
    pub fn features(&self) -> SlotFeatures {
        SlotFeatures { synproxy: self.synproxy.is_some(), proxy_protocol: self.pp.is_some(), uoa: self.uoa.is_some() }
    }
}

impl std::fmt::Debug for SlotState {
    /// The features it holds arrays of (not their millions of slots).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SlotState").field(&self.features()).finish()
    }
}

/// Decides, for the thread publishing generations, which features' arrays a new
/// generation needs that no earlier generation brought (an engine keeps an array once it
/// has it, so each is built once per worker).
#[derive(Debug, Clone)]
pub struct SlotProvisioner {
    capacity: u32,
    synproxy_default: SynProxyMode,
    provided: SlotFeatures,
}

impl SlotProvisioner {
    /// For engines of `capacity` connection slots whose SYN proxy's default mode is
    /// `synproxy_default`, that already bound `bound` (they allocated its features'
    /// arrays themselves).
    pub fn new(capacity: u32, synproxy_default: SynProxyMode, bound: &ServiceTable) -> SlotProvisioner {
        SlotProvisioner { capacity, synproxy_default, provided: SlotFeatures::of(bound, synproxy_default) }
    }

    /// The features `table` uses that were not provided before, counted as provided
    /// from now on (empty if none).
    pub fn take_new(&mut self, table: &ServiceTable) -> SlotFeatures {
        let new = SlotFeatures::of(table, self.synproxy_default).minus(self.provided);
        self.provided.synproxy |= new.synproxy;
        self.provided.proxy_protocol |= new.proxy_protocol;
        self.provided.uoa |= new.uoa;
        new
    }

    /// One worker's arrays of `features`.
    pub fn build(&self, features: SlotFeatures) -> SlotState {
        SlotState::build(features, self.capacity)
    }
}
