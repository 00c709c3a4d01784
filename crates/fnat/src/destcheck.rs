//! DPVS's passive health check (`ipvsadm --dest-check`): what a service asks for, in
//! DPVS's own notation, and what rvsd decided about each of its real servers.
//!
//! The dataplane watches the handshakes it forwards: a real server that answers a SYN
//! with an RST, or leaves the SYN proxy's own SYN unanswered (the connection expires
//! half open with no SYN-ACK seen), or answers a UDP connection's first datagram with
//! ICMP "port unreachable", is reported DOWN; one that completes a handshake (on UDP:
//! answers a connection) after it was let back in is reported UP. rvsd's control thread counts the reports and takes a
//! server out of scheduling (its weight 0 in the running table, the configured
//! weight kept) for a while that doubles at each new failure and halves at each UP,
//! between `inhibit_min` and `inhibit_max` (DPVS's doc/dest-check.md). It needs no
//! probe, so it sees a dead server on the first connection that fails rather than
//! after a checker's interval.
//!
//! Only the real server's own silence or refusal counts, so that a client cannot take a
//! healthy server out (DPVS counts any half-open expiry): see
//! [`crate::engine::destcheck`]. For the same reason the check needs the replies
//! through rvs (FullNAT, NAT, NAT64), and connections (not one-packet scheduling).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A service's passive check, as DPVS writes it: `default` (1,1,3s,5-3600s),
/// `DOWN_RETRY,UP_CONFIRM,DOWN_WAITs,MIN-MAXs`, or `DOWN_RETRY,DOWN_WAITs` (down only:
/// a server taken out stays out until its weight is set again, by the operator or a
/// health checker). Carried as that text in rvsd.toml and the control protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DestCheck {
    /// Failures within `down_wait` before the server is taken out (at least 1).
    pub down_retry: u8,
    /// UP reports each worker sends after the server is let back in, each halving
    /// the next time out; 0 in the down-only form.
    pub up_confirm: u8,
    /// The window, in seconds, in which `down_retry` failures count together.
    pub down_wait: u8,
    /// The shortest time out, in seconds (0 in the down-only form).
    pub inhibit_min: u16,
    /// The longest time out, in seconds (0 in the down-only form).
    pub inhibit_max: u16,
}

impl Default for DestCheck {
    /// DPVS's `default`: out at the first failure, for 5 s doubling up to an hour.
    fn default() -> Self {
        DestCheck { down_retry: 1, up_confirm: 1, down_wait: 3, inhibit_min: 5, inhibit_max: 3600 }
    }
}

impl DestCheck {
    /// Whether a server taken out stays out until its weight is set again (DPVS's
    /// DOWNONLY form, `DOWN_RETRY,DOWN_WAITs`).
    pub fn down_only(&self) -> bool {
        self.up_confirm == 0 && self.inhibit_min == 0 && self.inhibit_max == 0
    }
}

/// Why a `--dest-check` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestCheckError {
    /// One of DPVS's external checkers (run by its dpvs-agent).
    #[error("dest-check {0}: DPVS's external checkers run in its dpvs-agent; rvs-agent runs keepalived's checkers (TCP_CHECK, HTTP_GET, MISC_CHECK, ...) instead")]
    External(String),
    /// Not one of the forms.
    #[error(
        "dest-check '{0}': give default, DOWN_RETRY,UP_CONFIRM,DOWN_WAITs,MIN-MAXs (e.g. 1,1,3s,5-3600s) or \
         DOWN_RETRY,DOWN_WAITs (e.g. 1,3s)"
    )]
    Form(String),
    /// A value out of its range.
    #[error("dest-check '{0}': {1}")]
    Range(String, &'static str),
}

impl FromStr for DestCheck {
    type Err = DestCheckError;

    fn from_str(s: &str) -> Result<DestCheck, DestCheckError> {
        if s == "default" {
            return Ok(DestCheck::default());
        }
        if matches!(s, "tcp" | "udp" | "sctp" | "ping") {
            return Err(DestCheckError::External(s.to_string()));
        }
        let form = || DestCheckError::Form(s.to_string());
        let range = |why| DestCheckError::Range(s.to_string(), why);
        fn secs(v: &str) -> Option<&str> {
            v.strip_suffix('s')
        }
        let parts: Vec<&str> = s.split(',').collect();
        let c = match parts[..] {
            [retry, wait] => DestCheck {
                down_retry: retry.parse().map_err(|_| form())?,
                up_confirm: 0,
                down_wait: secs(wait).ok_or_else(form)?.parse().map_err(|_| form())?,
                inhibit_min: 0,
                inhibit_max: 0,
            },
            [retry, up, wait, span] => {
                let (min, max) = secs(span).ok_or_else(form)?.split_once('-').ok_or_else(form)?;
                let c = DestCheck {
                    down_retry: retry.parse().map_err(|_| form())?,
                    up_confirm: up.parse().map_err(|_| form())?,
                    down_wait: secs(wait).ok_or_else(form)?.parse().map_err(|_| form())?,
                    inhibit_min: min.parse().map_err(|_| form())?,
                    inhibit_max: max.parse().map_err(|_| form())?,
                };
                if c.up_confirm == 0 {
                    return Err(range("up_confirm must be at least 1"));
                }
                if c.inhibit_min == 0 {
                    return Err(range("inhibit_min must be at least 1 s"));
                }
                if c.inhibit_min > c.inhibit_max {
                    return Err(range("inhibit_min is above inhibit_max"));
                }
                c
            }
            _ => return Err(form()),
        };
        if c.down_retry == 0 {
            return Err(range("down_retry must be at least 1"));
        }
        if c.down_wait == 0 {
            return Err(range("down_wait must be at least 1 s"));
        }
        Ok(c)
    }
}

impl fmt::Display for DestCheck {
    /// As DPVS's `ipvsadm -L` prints it after `internal:` (and `--dest-check` takes it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == DestCheck::default() {
            write!(f, "default")
        } else if self.down_only() {
            write!(f, "{},{}s", self.down_retry, self.down_wait)
        } else {
            let c = self;
            write!(f, "{},{},{}s,{}-{}s", c.down_retry, c.up_confirm, c.down_wait, c.inhibit_min, c.inhibit_max)
        }
    }
}

impl TryFrom<String> for DestCheck {
    type Error = DestCheckError;

    fn try_from(s: String) -> Result<DestCheck, DestCheckError> {
        s.parse()
    }
}

impl From<DestCheck> for String {
    fn from(c: DestCheck) -> String {
        c.to_string()
    }
}

/// What rvsd's passive check made of a real server, as a table generation carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestMark {
    /// Scheduled by its configured weight.
    #[default]
    Normal,
    /// Taken out: weight 0 in this generation, its configured weight kept.
    Inhibited,
    /// Let back in after a time out: the workers report its next handshakes (UP).
    Reopened,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpvs_forms_are_read_and_written_back() {
        for (text, want) in [
            ("default", DestCheck::default()),
            ("1,1,3s,5-3600s", DestCheck::default()),
            (
                "3,2,3s,60-3600s",
                DestCheck { down_retry: 3, up_confirm: 2, down_wait: 3, inhibit_min: 60, inhibit_max: 3600 },
            ),
            ("1,3s", DestCheck { down_retry: 1, up_confirm: 0, down_wait: 3, inhibit_min: 0, inhibit_max: 0 }),
        ] {
            let c: DestCheck = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(c, want, "{text}");
            assert_eq!(c.to_string().parse::<DestCheck>().unwrap(), c, "{text} round trip");
        }
        assert_eq!(DestCheck::default().to_string(), "default");
        assert_eq!("2,5s".parse::<DestCheck>().unwrap().to_string(), "2,5s");
        assert!("2,5s".parse::<DestCheck>().unwrap().down_only());
        assert_eq!("3,2,3s,60-3600s".parse::<DestCheck>().unwrap().to_string(), "3,2,3s,60-3600s");
    }

    #[test]
    fn wrong_values_name_their_problem() {
        for (text, has) in [
            ("tcp", "external checkers"),
            ("ping", "external checkers"),
            ("sometimes", "give default"),
            ("1,3", "give default"),
            ("1,1,3s,5-3600", "give default"),
            ("1,1,3s,5", "give default"),
            ("1,1,1,3s,5-9s", "give default"),
            ("256,3s", "give default"),
            ("0,3s", "down_retry"),
            ("1,0s", "down_wait"),
            ("1,0,3s,5-10s", "up_confirm"),
            ("1,1,3s,0-10s", "inhibit_min"),
            ("1,1,3s,20-10s", "above inhibit_max"),
        ] {
            let e = text.parse::<DestCheck>().unwrap_err().to_string();
            assert!(e.contains(has), "{text}: {e}");
        }
    }

    #[test]
    fn serde_carries_the_text() {
        let c: DestCheck = serde_json::from_str("\"2,1,4s,10-100s\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"2,1,4s,10-100s\"");
        assert!(serde_json::from_str::<DestCheck>("\"tcp\"").is_err());
    }
}
