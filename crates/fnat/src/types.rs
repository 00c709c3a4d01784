//! Small types shared by every part of the core.

use serde::{Deserialize, Serialize};

/// Transport protocols the load balancer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp = 6,
    /// UDP (IP protocol 17).
    Udp = 17,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The protocol for an IP protocol number, if the load balancer serves it.
    pub fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// A point on the worker's monotonic clock, in milliseconds. The dataplane derives it
/// from the TSC; tests advance it by hand.
pub type Millis = u64;
