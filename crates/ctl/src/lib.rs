//! The control protocol between rvsd and its clients (`rvsadm`, `rvsip`, `rvs-agent`).
//!
//! One request and one reply per line of JSON over a Unix stream socket. Every message
//! carries the protocol version (`"v"`); requests name their operation (`"op"`), replies
//! their kind (`"result"`). Errors carry a stable [`ErrorCode`] and a sentence. Messages
//! are bounded ([`MAX_MESSAGE_BYTES`]); connection listings are paged.
//!
//! ```text
//! > {"v":1,"op":"service_add","service":{"proto":"tcp","vip":"198.18.0.100","vport":80,"sched":"wrr"},"laddrs":[]}
//! < {"v":1,"result":"done","gen":7}
//! ```

pub mod client;
pub mod error;
pub mod frame;
pub mod logging;
pub mod metrics;
pub mod proto;
pub mod snat;
pub mod systemd;
pub mod verbs;

pub use client::Client;
pub use error::{CtlError, ErrorCode};
pub use proto::*;
pub use snat::SnatSpec;
pub use verbs::Refused;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest message either side accepts, in bytes (one line of JSON).
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// A [`Request::ServiceReplace`] larger than this is sent in parts
/// ([`Request::ServiceStage`], then [`Request::ServiceReplaceStaged`]) by [`Client::call`].
pub const STAGE_PART_BYTES: usize = 1 << 20;

/// Seconds rvsd keeps a staged service set that was not committed.
pub const STAGE_TTL_SECS: u64 = 120;

/// Where rvsd listens unless configured otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";
