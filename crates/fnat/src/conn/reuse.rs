//! The local port a client's connection held when the client reused its own port.
//!
//! A client that reuses a port (a SYN meeting its connection in `TIME_WAIT` or
//! `CLOSE`, [`crate::stats::ConnEvent::ConnReused`]) gets a new connection, scheduled
//! afresh. The real server may still hold the old one in `TIME_WAIT` (60 s on Linux,
//! the server usually closing first). Given the same `LIP:lport` again, the server
//! sees the same addresses and ports with the same client's later timestamps and
//! reopens the connection, as it would without a balancer (and as the kernel's own
//! FullNAT, which keeps the client's port, behaves). Given another client's old
//! `LIP:lport` instead, as the port cursor hands out once it has gone round, the
//! server's PAWS check refuses the SYN whenever the two clients' timestamps are out
//! of order (Linux offsets them per connection): on a sustained load of short
//! connections, every such collision costs the client a SYN timeout, and the rate
//! collapses after one sweep of the port range.
//!
//! So the freed connection's `LIP:lport` is remembered under its client key, and the
//! client's next connection takes it when it is still free towards the real server
//! picked ([`crate::stats::ConnEvent::LocalPortKept`]). The memo is a small
//! set-associative cache ([`PORT_MEMO_WAYS`] client keys per set, replaced in turn):
//! an entry replaced or a port taken meanwhile only means the cursor is used, as for any
//! new connection.

use super::{Addr, ConnKey, KeyHasher};

/// Slots of a [`PortMemo`] (a power of two). A remembered port is wanted again within
/// one round trip (at once, or after the SYN proxy's handshake), so slots are freed
/// quickly: 1,024 hold a few hundred port reuses in flight per worker without a set
/// overflowing.
pub const PORT_MEMO_SLOTS: usize = 1024;

/// Client keys per set of a [`PortMemo`]: a client key competes for its set's ways
/// only, so a few hundred client ports cycling through one worker all keep theirs.
pub const PORT_MEMO_WAYS: usize = 8;

const SETS: usize = PORT_MEMO_SLOTS / PORT_MEMO_WAYS;

#[derive(Debug, Clone, Copy)]
struct Slot {
    client: ConnKey,
    lip: Addr,
    lport: u16,
}

/// Per worker: the `LIP:lport` the last connection of a client key held, for the
/// client's next connection (see the module documentation).
#[derive(Debug)]
pub struct PortMemo {
    slots: Box<[Option<Slot>]>,
    /// Per set: the way replaced next when the set is full (in turn).
    next: Box<[u8]>,
    /// Slots in use: a memo with none answers without hashing.
    len: u32,
    hasher: KeyHasher,
}

impl PortMemo {
    /// An empty memo of [`PORT_MEMO_SLOTS`] slots, hashing with `hasher` (seeded: a
    /// client cannot aim at another's slot).
    pub fn new(hasher: KeyHasher) -> PortMemo {
        PortMemo {
            slots: vec![None; PORT_MEMO_SLOTS].into_boxed_slice(),
            next: vec![0; SETS].into_boxed_slice(),
            len: 0,
            hasher,
        }
    }

    /// The set of `k`: its index and the range of its slots.
    #[inline]
    fn set(&self, k: &ConnKey) -> (usize, std::ops::Range<usize>) {
        let set = (self.hasher.hash(k) as usize) & (SETS - 1);
        (set, set * PORT_MEMO_WAYS..(set + 1) * PORT_MEMO_WAYS)
    }

    /// Remembers that the connection of client key `client` (its inbound key) held
    /// `lip:lport`: in the key's own entry, else a free way of its set, else in place of
    /// the set's next in turn.
    #[inline]
    pub fn remember(&mut self, client: &ConnKey, lip: Addr, lport: u16) {
        let (set, ways) = self.set(client);
        let entry = Some(Slot { client: *client, lip, lport });
        let slots = &mut self.slots[ways];
        if let Some(w) = slots.iter_mut().find(|s| s.is_some_and(|s| s.client == *client)) {
            *w = entry;
        } else if let Some(w) = slots.iter_mut().find(|s| s.is_none()) {
            *w = entry;
            self.len += 1;
        } else {
            let n = &mut self.next[set];
            slots[*n as usize] = entry;
            *n = ((*n as usize + 1) % PORT_MEMO_WAYS) as u8;
        }
    }

    /// The `LIP:lport` remembered for `client`, forgotten as it is handed out.
    #[inline]
    pub fn take(&mut self, client: &ConnKey) -> Option<(Addr, u16)> {
        if self.len == 0 {
            return None;
        }
        let (_, ways) = self.set(client);
        let w = self.slots[ways].iter_mut().find(|s| s.is_some_and(|s| s.client == *client))?;
        self.len -= 1;
        w.take().map(|s| (s.lip, s.lport))
    }

    /// Forgets everything (the table was flushed).
    pub fn clear(&mut self) {
        self.slots.fill(None);
        self.next.fill(0);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Proto;
    use std::net::Ipv4Addr;

    fn key(port: u16) -> ConnKey {
        ConnKey::new(
            Proto::Tcp,
            Addr::from(std::net::IpAddr::from(Ipv4Addr::new(10, 0, 0, 1))),
            port,
            Addr::from(std::net::IpAddr::from(Ipv4Addr::new(192, 0, 2, 1))),
            80,
        )
    }

    #[test]
    fn a_port_is_handed_out_once_and_only_to_its_client() {
        let mut m = PortMemo::new(KeyHasher::with_seed(1));
        let lip = Addr::from(std::net::IpAddr::from(Ipv4Addr::new(10, 1, 0, 1)));
        m.remember(&key(40000), lip, 2000);
        assert_eq!(m.take(&key(40001)), None, "another client port");
        assert_eq!(m.take(&key(40000)), Some((lip, 2000)));
        assert_eq!(m.take(&key(40000)), None, "handed out once");
        m.remember(&key(40000), lip, 2001);
        m.clear();
        assert_eq!(m.take(&key(40000)), None, "forgotten by a flush");
    }

    #[test]
    fn a_full_set_gives_up_its_oldest_entry_only() {
        let mut m = PortMemo::new(KeyHasher::with_seed(2));
        let lip = Addr::from(std::net::IpAddr::from(Ipv4Addr::new(10, 1, 0, 1)));
        // One more client key than a set has ways, all in one set.
        let set = m.set(&key(1024)).0;
        let keys: Vec<ConnKey> =
            (1024..u16::MAX).map(key).filter(|k| m.set(k).0 == set).take(PORT_MEMO_WAYS + 1).collect();
        assert_eq!(keys.len(), PORT_MEMO_WAYS + 1);
        for (i, k) in keys.iter().enumerate() {
            m.remember(k, lip, 3000 + i as u16);
        }
        assert_eq!(m.take(&keys[0]), None, "the oldest was replaced");
        for (i, k) in keys.iter().enumerate().skip(1) {
            assert_eq!(m.take(k), Some((lip, 3000 + i as u16)), "key {i} kept its port");
        }
        // Remembering a key again updates its own entry, even behind a free way.
        m.remember(&keys[1], lip, 4000);
        m.remember(&keys[2], lip, 4002);
        assert_eq!(m.take(&keys[1]), Some((lip, 4000)));
        m.remember(&keys[2], lip, 4003);
        assert_eq!(m.take(&keys[2]), Some((lip, 4003)));
        assert_eq!(m.take(&keys[2]), None, "one entry per key");
        assert_eq!(m.len, 0);
    }
}
