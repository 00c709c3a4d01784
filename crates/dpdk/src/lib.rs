//! Safe, minimal wrappers over DPDK for rvs.
//!
//! This crate and `dpdk-sys` hold all of the project's `unsafe`. Every other crate sees
//! owned, RAII types: [`Eal`] (initialised once per process), [`Mempool`], [`Mbuf`],
//! [`Port`] with its [`RxQueue`]/[`TxBuffer`], [`MbufRing`], [`Flow`] rules and bonding.
//! Per-packet accessors ([`Mbuf::data`], [`Mbuf::len`], ...) are plain Rust over the mbuf
//! fields, never FFI calls.

mod bond;
pub mod bpf;
mod burst;
mod eal;
mod error;
mod flow;
mod hint;
pub mod log;
mod mbuf;
pub mod mem;
mod mempool;
pub mod pcapng;
mod port;
mod ring;
pub mod telemetry;

pub use bond::{Bond, BondMode, XmitPolicy};
pub use burst::{Burst, TxBuffer, BURST_SIZE};
pub use eal::{lcore_id, tsc, tsc_hz, Eal, LaunchHandle, LCORE_ANY};
pub use error::{Error, Result};
pub use flow::{Flow, FlowAction, FlowAttr, FlowItem};
pub use hint::prefetch;
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortConfig, PortInfo, PortStats, RxQueue, RSS_IP, RSS_TCP, RSS_UDP};
pub use ring::{MbufRing, RingConsumer, RingProducer, RingSync};

/// Re-export of the raw bindings, for the rare caller that needs a constant.
pub use dpdk_sys as sys;
