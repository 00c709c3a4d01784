//! Neighbours: the MAC address and port of each next hop, and the packets waiting for
//! one to be resolved.
//!
//! [`NeighTable`] maps a next-hop IP to its MAC. Workers call [`NeighTable::lookup`] per
//! packet (FullNAT caches the answer in the connection); the control thread fills the
//! table from ARP and neighbour discovery ([`NeighTable::learn`]), from configuration
//! ([`NeighTable::insert_static`]), and keeps it fresh ([`NeighTable::expire`]).
//!
//! # What is learned
//! A binding seen on the wire (ARP sender, ND source or target link-layer option) is
//! learned only if [`admit`] agrees: the address is unicast (and so is the MAC), it is
//! not one of the dataplane's own addresses, it lies in a connected subnet of the port
//! it arrived on (the prefix of an address of that port), and no static entry holds it
//! with another binding. Workers apply the same test before reporting a binding, the
//! control thread again before learning it; so a host on the client side cannot claim
//! a real server's address, a LIP or a VIP.
//!
//! A binding of an address the table does not hold is learned only as the answer to a
//! request a worker sent ([`Solicited`]: an ARP reply or a solicited advertisement,
//! arriving on the port asked on, within [`Solicited::AWAIT_MS`]). Gratuitous ARP,
//! requests and unsolicited advertisements only update neighbours already known.
//! Linux also learns whoever asks for its own addresses; rvs does not, so a flood of
//! made-up bindings (from any host of a connected subnet) adds nothing and evicts
//! no real server's or gateway's entry. The packets that wait for a neighbour are
//! bounded the same way: next hops a packet's source chose take at most half of
//! [`Pending`]'s slots ([`HopOrigin`]).
//!
//! # Bounds
//! Each port holds at most `max_per_port` learned entries (static entries are not
//! counted and never evicted). A new binding on a full port evicts that port's learned
//! entry confirmed least recently, preferring one that is already failing its probes;
//! so a new real server can always be learned, however many bindings a flood claimed.
//! The entries of next hops the configuration names (real servers, routes' gateways:
//! [`NeighTable::learn_keeping`]) go only when the port holds nothing else, and then
//! only for another such next hop: a host on the link that answers for every address
//! rvs asks about (the sources of its made-up pings) churns the other entries, never
//! those.
//! (Packets only wait for next hops the table does not hold, so an evicted entry never
//! strands a waiting packet: its next packet waits and resolves it again.)
//!
//! # Freshness
//! A learned entry is re-confirmed before its reachable time ([`NeighTimers`]) runs
//! out: at a time spread between half of it and the start of the last probe window
//! (entries learned together do not come due together), it enters
//! [`NeighState::Probe`] — still used — and the control thread sends a unicast ARP
//! request / neighbour solicitation to the MAC it knows ([`NeighProbe`]). An answer
//! makes it reachable again; only an entry that leaves [`NeighTimers::max_probes`]
//! probes unanswered is removed. Traffic through a live neighbour is never interrupted.
//!
//! [`Pending`] holds the packets that found no neighbour, per next hop, in bounded
//! queues preallocated at construction, and tells the caller when to send (or resend)
//! the ARP request / neighbour solicitation and when to give up.
//!
//! Entries are keyed by the IP address alone: an IPv6 link-local next hop (`fe80::1`)
//! that exists on two ports at once is one entry (the last learned). Load balancers
//! rarely see that; keying by (port, address) is the fix if they do. Link-local
//! neighbours are learned only on ports with a link-local address (their subnet).

use core::fmt;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use wire::EthernetAddress;

use crate::hash::SeededBuild;
use crate::{AddrTable, PortId, Stamp};

/// How a neighbour entry came to be and how fresh it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighState {
    /// Configured by the operator: never overwritten by learning, never aged or evicted.
    Static,
    /// Learned and confirmed within its reachable time.
    Reachable,
    /// Learned; its reachable time is running out and unicast probes ask the
    /// neighbour to confirm it. Still used; removed only if no probe is answered.
    Probe,
}

impl fmt::Display for NeighState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NeighState::Static => "static",
            NeighState::Reachable => "reachable",
            NeighState::Probe => "probe",
        })
    }
}

/// A neighbour: where frames for a next hop go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NeighEntry {
    /// The neighbour's MAC address.
    pub mac: EthernetAddress,
    /// The port it was learned on (or configured for).
    pub port: PortId,
    /// Static, reachable or probe.
    pub state: NeighState,
    /// When it was configured or last confirmed, in milliseconds of the caller's clock.
    pub updated: u64,
    /// Learned entries: when the next probe (after the last one: the removal) is due, ms.
    #[serde(default)]
    pub due: u64,
    /// Learned entries: probes sent since the last confirmation.
    #[serde(default)]
    pub probes: u8,
}

/// What [`NeighTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Learned {
    /// A new entry.
    Added,
    /// A new entry; its port was full, so the learned entry of this address (the port's
    /// failing or least recently confirmed one) was evicted.
    Evicted(IpAddr),
    /// An existing learned entry got a new MAC or port (e.g. after a failover).
    Changed,
    /// An entry being probed was confirmed: it is reachable again.
    Confirmed,
    /// A reachable entry was confirmed unchanged (its timers restart; nothing a worker
    /// reads changed).
    Refreshed,
    /// A static entry exists; learning does not touch it.
    KeptStatic,
    /// No room: the table holds no learned entries at all (a limit of 0), or the port
    /// is full of kept entries and this address is not one
    /// ([`NeighTable::learn_keeping`]); nothing was added.
    Full,
}

impl Learned {
    /// Whether what the workers read (MAC, port, state) changed, so the table must be
    /// published again.
    pub fn changed(self) -> bool {
        matches!(self, Learned::Added | Learned::Evicted(_) | Learned::Changed | Learned::Confirmed)
    }
}

/// Why a binding seen on the wire is not learned (see [`admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The address (or the MAC) is not unicast: unspecified, multicast, broadcast,
    /// loopback, or an IPv4 subnet's network or broadcast address.
    NotUnicast,
    /// The address is one of the dataplane's own (a VIP, a LIP, a port address).
    Own,
    /// The address is in no connected subnet of the port the binding arrived on.
    OffLink,
    /// A static entry holds the address with another MAC or port.
    Static,
}

impl Refusal {
    /// Every refusal, in declaration order.
    pub const ALL: [Refusal; 4] = [Refusal::NotUnicast, Refusal::Own, Refusal::OffLink, Refusal::Static];

    /// A stable name for counters.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::NotUnicast => "not_unicast",
            Refusal::Own => "own_address",
            Refusal::OffLink => "off_link",
            Refusal::Static => "static",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the binding `ip` at `mac`, seen on `port`, may be learned (see the module
/// documentation). The one definition of the rule: workers apply it before reporting a
/// binding, the control thread before learning one. A few hash probes and a scan of
/// the connected prefixes; no allocation.
#[inline]
pub fn admit(
    addrs: &AddrTable,
    neighs: &NeighTable,
    ip: IpAddr,
    mac: EthernetAddress,
    port: PortId,
) -> Result<(), Refusal> {
    let unicast_ip = match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    };
    if !unicast_ip || !mac.is_unicast() || mac == EthernetAddress::UNSPECIFIED {
        return Err(Refusal::NotUnicast);
    }
    if addrs.owner(ip).is_some() {
        return Err(Refusal::Own);
    }
    let Some(subnet) = addrs.on_link(port, ip) else {
        return Err(Refusal::OffLink);
    };
    if let (ipnet::IpNet::V4(n), IpAddr::V4(a)) = (subnet, ip) {
        if n.prefix_len() <= 30 && (a == n.network() || a == n.broadcast()) {
            return Err(Refusal::NotUnicast);
        }
    }
    if neighs.lookup(ip).is_some_and(|e| e.state == NeighState::Static && (e.mac != mac || e.port != port)) {
        return Err(Refusal::Static);
    }
    Ok(())
}

/// What [`NeighTable::expire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Expired {
    /// Reachable entries whose probing began (they are now [`NeighState::Probe`]).
    pub probing: usize,
    /// Probes asked for (one [`NeighProbe`] each).
    pub probes: usize,
    /// Entries removed: every probe went unanswered.
    pub removed: usize,
}

impl Expired {
    /// Whether what the workers read changed (a state or an entry).
    pub fn changed(&self) -> bool {
        self.probing > 0 || self.removed > 0
    }
}

/// A unicast probe to send: an ARP request (IPv4) or neighbour solicitation (IPv6) for
/// `ip`, to the MAC the table knows, out of `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighProbe {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// The MAC it is believed to be at.
    pub mac: EthernetAddress,
    /// Its port.
    pub port: PortId,
    /// Which probe this is, from 1 to [`NeighTimers::max_probes`].
    pub attempt: u8,
}

/// The reachable time of learned entries, by default.
pub const DEFAULT_REACHABLE_MS: u64 = 60_000;
/// The most learned entries one port holds, by default.
pub const DEFAULT_MAX_PER_PORT: usize = 4096;
/// Unanswered probes before a learned entry is removed.
pub const MAX_PROBES: u8 = 3;

/// When learned entries are re-confirmed (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighTimers {
    /// A learned entry is re-confirmed before it has gone this long unconfirmed (ms).
    pub reachable_ms: u64,
    /// Between two probes of an entry (ms).
    pub probe_interval_ms: u64,
    /// Probes that may go unanswered before the entry is removed.
    pub max_probes: u8,
}

impl NeighTimers {
    /// Timers for a reachable time of `reachable_ms`: probes a tenth of it apart
    /// (between 10 ms and 1 s), [`MAX_PROBES`] of them.
    pub fn new(reachable_ms: u64) -> NeighTimers {
        NeighTimers { reachable_ms, probe_interval_ms: (reachable_ms / 10).clamp(10, 1000), max_probes: MAX_PROBES }
    }

    /// When an entry confirmed at `now` starts probing: spread (by a hash of the
    /// address and the time) between half the reachable time and the start of the
    /// last probe window, so that the probes end before the reachable time does.
    pub fn first_probe(&self, ip: IpAddr, now: u64) -> u64 {
        let lo = self.reachable_ms / 2;
        let window = self.probe_interval_ms.saturating_mul(u64::from(self.max_probes));
        let hi = self.reachable_ms.saturating_sub(window).max(lo + 1);
        let bits = match ip {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64)
            }
        };
        now.saturating_add(lo + mix(bits ^ now.rotate_left(32)) % (hi - lo))
    }
}

impl Default for NeighTimers {
    fn default() -> Self {
        NeighTimers::new(DEFAULT_REACHABLE_MS)
    }
}

/// SplitMix64's finaliser: spreads timer offsets.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The neighbour table (see the module documentation). `Clone + Send + Sync`.
///
/// Keys are learned from the network, so the map's fast hasher starts from a random
/// seed per table, drawn from the process's randomness (not SipHash: its lookups are
/// on the per-connection path).
#[derive(Debug, Clone)]
pub struct NeighTable {
    map: HashMap<IpAddr, NeighEntry, SeededBuild>,
    stamp: Stamp,
    max_per_port: usize,
    /// Learned entries per port, by port number.
    learned: Vec<usize>,
    timers: NeighTimers,
}

impl NeighTable {
    /// An empty table that holds at most `max_per_port` learned entries on each port
    /// (static ones are not counted), with the default timers.
    pub fn new(max_per_port: usize) -> NeighTable {
        NeighTable {
            map: HashMap::with_capacity_and_hasher(max_per_port.min(DEFAULT_MAX_PER_PORT), SeededBuild::random()),
            stamp: Stamp::fresh(),
            max_per_port,
            learned: Vec::new(),
            timers: NeighTimers::default(),
        }
    }

    /// Changes the per-port limit of learned entries (a port already over it stays so:
    /// each new binding there evicts one entry, and entries age out).
    pub fn set_max_per_port(&mut self, max_per_port: usize) {
        self.max_per_port = max_per_port;
    }

    /// This state of the table's contents: changes with every entry learned, changed,
    /// aged or removed (a worker keeps the MACs it resolved until it does).
    #[inline]
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// The per-port limit of learned entries.
    pub fn max_per_port(&self) -> usize {
        self.max_per_port
    }

    /// Changes the timers; they apply from each entry's next confirmation.
    pub fn set_timers(&mut self, timers: NeighTimers) {
        self.timers = timers;
    }

    /// The timers.
    pub fn timers(&self) -> NeighTimers {
        self.timers
    }

    /// Learned entries on `port`.
    pub fn learned_on(&self, port: PortId) -> usize {
        self.learned.get(port.0 as usize).copied().unwrap_or(0)
    }

    fn count(&mut self, port: PortId) -> &mut usize {
        let i = port.0 as usize;
        if self.learned.len() <= i {
            self.learned.resize(i + 1, 0);
        }
        &mut self.learned[i]
    }

    fn fresh(&self, ip: IpAddr, mac: EthernetAddress, port: PortId, now: u64) -> NeighEntry {
        let due = self.timers.first_probe(ip, now);
        NeighEntry { mac, port, state: NeighState::Reachable, updated: now, due, probes: 0 }
    }

    /// Adds or replaces a static entry (operator configuration) and returns the entry
    /// it replaced.
    pub fn insert_static(&mut self, ip: IpAddr, mac: EthernetAddress, port: PortId, now: u64) -> Option<NeighEntry> {
        self.stamp = Stamp::fresh();
        let e = NeighEntry { mac, port, state: NeighState::Static, updated: now, due: 0, probes: 0 };
        let old = self.map.insert(ip, e);
        if let Some(o) = old.filter(|o| o.state != NeighState::Static) {
            *self.count(o.port) -= 1;
        }
        old
    }

    /// Records that `ip` is at `mac` on `port`, as seen in an ARP packet or a neighbour
    /// advertisement / solicitation (that [`admit`] accepted). Static entries are kept
    /// as they are; a new entry on a full port evicts the port's least recently
    /// confirmed learned entry.
    pub fn learn(&mut self, ip: IpAddr, mac: EthernetAddress, port: PortId, now: u64) -> Learned {
        self.learn_keeping(ip, mac, port, now, &|_| false)
    }

    /// [`NeighTable::learn`], where a full port evicts an entry whose address is
    /// `kept` (a next hop the configuration names: a real server, a route's gateway)
    /// only when it holds no other learned entry, and then only for another kept
    /// address ([`Learned::Full`] for any other).
    pub fn learn_keeping(
        &mut self,
        ip: IpAddr,
        mac: EthernetAddress,
        port: PortId,
        now: u64,
        kept: &dyn Fn(&IpAddr) -> bool,
    ) -> Learned {
        self.stamp = Stamp::fresh();
        if let Some(&e) = self.map.get(&ip) {
            if e.state == NeighState::Static {
                return Learned::KeptStatic;
            }
            if e.port != port {
                // Moved to another port: counted there, which may be full.
                *self.count(e.port) -= 1;
                if self.learned_on(port) >= self.max_per_port {
                    match self.victim(port, ip, kept) {
                        // Full of kept entries, and this is none: the move is refused
                        // (the old binding stays, to be confirmed or to expire).
                        Some(victim) if kept(&victim) && !kept(&ip) => {
                            *self.count(e.port) += 1;
                            return Learned::Full;
                        }
                        Some(victim) => {
                            self.map.remove(&victim);
                            *self.count(port) -= 1;
                        }
                        None => {}
                    }
                }
                *self.count(port) += 1;
            }
            let fresh = self.fresh(ip, mac, port, now);
            self.map.insert(ip, fresh);
            return if e.mac != mac || e.port != port {
                Learned::Changed
            } else if e.state == NeighState::Probe {
                Learned::Confirmed
            } else {
                Learned::Refreshed
            };
        }
        if self.max_per_port == 0 {
            return Learned::Full;
        }
        let mut out = Learned::Added;
        if self.learned_on(port) >= self.max_per_port {
            match self.victim(port, ip, kept) {
                // Only kept entries left: one of them makes room for a kept address
                // only (the configuration outranks whoever answered).
                Some(victim) if kept(&victim) && !kept(&ip) => return Learned::Full,
                Some(victim) => {
                    self.map.remove(&victim);
                    *self.count(port) -= 1;
                    out = Learned::Evicted(victim);
                }
                None => {}
            }
        }
        let fresh = self.fresh(ip, mac, port, now);
        self.map.insert(ip, fresh);
        *self.count(port) += 1;
        out
    }

    /// The learned entry of `port` to evict for `except`: one not `kept` first, then
    /// one failing its probes (most probes), then the least recently confirmed. Scans
    /// the table.
    fn victim(&self, port: PortId, except: IpAddr, kept: &dyn Fn(&IpAddr) -> bool) -> Option<IpAddr> {
        self.map
            .iter()
            .filter(|(ip, e)| e.port == port && e.state != NeighState::Static && **ip != except)
            .min_by_key(|(ip, e)| (kept(ip), u8::MAX - e.probes, e.updated))
            .map(|(ip, _)| *ip)
    }

    /// The neighbour for a next hop. Per packet: one hash probe. Entries being probed
    /// are returned too (they are still the best knowledge).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<&NeighEntry> {
        self.map.get(&ip)
    }

    /// Whether the table holds exactly this binding and needs no news of it (a static
    /// entry, or a reachable one): a worker that sees it need not report it. An entry
    /// being probed is not "known": its answer must reach the control thread.
    #[inline]
    pub fn known(&self, ip: IpAddr, mac: EthernetAddress, port: PortId) -> bool {
        self.map.get(&ip).is_some_and(|e| {
            e.state != NeighState::Probe && e.mac == mac && (e.port == port || e.state == NeighState::Static)
        })
    }

    /// Removes an entry, static or learned, and returns it.
    pub fn delete(&mut self, ip: IpAddr) -> Option<NeighEntry> {
        self.stamp = Stamp::fresh();
        let old = self.map.remove(&ip);
        if let Some(o) = old.filter(|o| o.state != NeighState::Static) {
            *self.count(o.port) -= 1;
        }
        old
    }

    /// Keeps the learned entries fresh at time `now` (ms): an entry whose probe is due
    /// enters [`NeighState::Probe`] and gets a probe appended to `probes` (the caller
    /// sends it); one whose last probe went unanswered for a probe interval is removed.
    /// Static entries never age. Call it at least every probe interval.
    pub fn expire(&mut self, now: u64, probes: &mut Vec<NeighProbe>) -> Expired {
        self.stamp = Stamp::fresh();
        let mut out = Expired::default();
        let t = self.timers;
        let learned = &mut self.learned;
        self.map.retain(|&ip, e| {
            if e.state == NeighState::Static || now < e.due {
                return true;
            }
            if e.probes >= t.max_probes {
                out.removed += 1;
                if let Some(n) = learned.get_mut(e.port.0 as usize) {
                    *n -= 1;
                }
                return false;
            }
            if e.state == NeighState::Reachable {
                e.state = NeighState::Probe;
                out.probing += 1;
            }
            e.probes += 1;
            e.due = now.saturating_add(t.probe_interval_ms);
            out.probes += 1;
            probes.push(NeighProbe { ip, mac: e.mac, port: e.port, attempt: e.probes });
            true
        });
        out
    }

    /// Keeps only the learned entries `keep` agrees to (e.g. those [`admit`] still
    /// accepts after an address was removed); static entries stay. Returns how many
    /// were removed.
    pub fn retain_learned(&mut self, mut keep: impl FnMut(IpAddr, &NeighEntry) -> bool) -> usize {
        self.stamp = Stamp::fresh();
        let learned = &mut self.learned;
        let before = self.map.len();
        self.map.retain(|&ip, e| {
            let kept = e.state == NeighState::Static || keep(ip, e);
            if !kept {
                if let Some(n) = learned.get_mut(e.port.0 as usize) {
                    *n -= 1;
                }
            }
            kept
        });
        before - self.map.len()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &NeighEntry)> {
        self.map.iter().map(|(ip, e)| (*ip, e))
    }

    /// The number of entries, static and learned.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The next hops asked for lately: only an answer about one of them adds a new
/// neighbour (see the module documentation). Workers tell the control thread each
/// request they send ([`Solicited::asked`]); the answer may land on any worker. An
/// answered request is forgotten ([`Solicited::answered`]), so what is held is the
/// requests still unanswered, which [`Pending`]'s slots bound. Bounded all the same:
/// requests beyond `max` at once are not remembered (their answers are refused; the
/// next request tries again).
#[derive(Debug)]
pub struct Solicited {
    /// (Address, port asked on) -> until when an answer is awaited, ms.
    map: HashMap<(IpAddr, PortId), u64, SeededBuild>,
    max: usize,
}

impl Solicited {
    /// How long an answer is awaited after a request: until after the last retry's
    /// wait ([`MAX_TRIES`] requests [`RETRY_INTERVAL_MS`] apart).
    pub const AWAIT_MS: u64 = RETRY_INTERVAL_MS * (MAX_TRIES as u64 + 1);

    /// Room for `max` addresses asked for at once.
    pub fn new(max: usize) -> Solicited {
        Solicited { map: HashMap::with_capacity_and_hasher(max.min(4096), SeededBuild::random()), max }
    }

    /// A request for `ip` left `port` at `now` (ms). False if it could not be
    /// remembered (too many at once; [`Solicited::expire`] makes room).
    pub fn asked(&mut self, ip: IpAddr, port: PortId, now: u64) -> bool {
        let until = now.saturating_add(Self::AWAIT_MS);
        if let Some(e) = self.map.get_mut(&(ip, port)) {
            *e = until;
            return true;
        }
        if self.map.len() >= self.max {
            return false;
        }
        self.map.insert((ip, port), until);
        true
    }

    /// Whether an answer about `ip` arriving on `port` at `now` answers a request.
    pub fn awaited(&self, ip: IpAddr, port: PortId, now: u64) -> bool {
        self.map.get(&(ip, port)).is_some_and(|&until| now < until)
    }

    /// The request for `ip` on `port` was answered (its neighbour learned).
    pub fn answered(&mut self, ip: IpAddr, port: PortId) {
        self.map.remove(&(ip, port));
    }

    /// Forgets the requests whose answers are no longer awaited at `now`.
    pub fn expire(&mut self, now: u64) {
        self.map.retain(|_, &mut until| now < until);
    }

    /// Addresses awaited (or not yet expired).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// How long to wait for an answer before asking again, in ms.
pub const RETRY_INTERVAL_MS: u64 = 1000;

/// How many requests to send before giving up on a next hop.
pub const MAX_TRIES: u8 = 3;

/// Who chose a next hop that packets wait for: it decides how many of [`Pending`]'s
/// slots such hops may take together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HopOrigin {
    /// The configuration did: a route's gateway, or a real server a connection was
    /// scheduled to. These may take every slot.
    Configured,
    /// A packet's source did: a reply to a client on the link, an echo reply, an ICMP
    /// error. Anyone can make such addresses up (a ping a second from a made-up
    /// address of the subnet keeps a slot busy for [`MAX_TRIES`] seconds), so together
    /// they take at most half the slots, and a gateway or a real server always finds
    /// one.
    Claimed,
}

/// One next hop being resolved.
#[derive(Debug)]
struct Slot<T> {
    /// `None` when the slot is free.
    next_hop: Option<IpAddr>,
    port: PortId,
    origin: HopOrigin,
    queue: VecDeque<T>,
    /// Requests sent so far.
    tries: u8,
    /// When the next request (or the give-up) is due, in ms.
    next_due: u64,
}

/// What [`Pending::due_retries`] asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due<T> {
    /// Send an ARP request (IPv4) or neighbour solicitation (IPv6) for `next_hop` out of
    /// `port`; `attempt` counts from 1 to [`MAX_TRIES`].
    Request {
        /// The port to send it from.
        port: PortId,
        /// The address to resolve.
        next_hop: IpAddr,
        /// Which attempt this is.
        attempt: u8,
    },
    /// Resolution of `next_hop` failed: this packet waited for it and is handed back to
    /// be freed and counted. One item per packet.
    GaveUp {
        /// The address that did not resolve.
        next_hop: IpAddr,
        /// The packet that waited.
        packet: T,
    },
}

/// Packets waiting for a next hop to be resolved (see the module documentation),
/// generic over the packet type (an mbuf in the dataplane, anything in tests).
///
/// All memory is reserved by [`Pending::new`]: `max_next_hops` slots, each with a queue
/// of `max_per_hop` packets, so pushing never allocates. Slots are found by a linear
/// scan: keep `max_next_hops` small (tens to a few hundred), as the number of next hops
/// being resolved at one time is. Next hops a packet's source chose
/// ([`HopOrigin::Claimed`]) take at most half the slots.
#[derive(Debug)]
pub struct Pending<T> {
    slots: Vec<Slot<T>>,
    max_per_hop: usize,
    active: usize,
    /// Slots held by [`HopOrigin::Claimed`] next hops, and their limit.
    claimed: usize,
    max_claimed: usize,
}

impl<T> Pending<T> {
    /// Room for `max_next_hops` unresolved next hops with up to `max_per_hop` packets
    /// each, allocated now.
    pub fn new(max_next_hops: usize, max_per_hop: usize) -> Pending<T> {
        let slots = (0..max_next_hops)
            .map(|_| Slot {
                next_hop: None,
                port: PortId(0),
                origin: HopOrigin::Configured,
                queue: VecDeque::with_capacity(max_per_hop),
                tries: 0,
                next_due: 0,
            })
            .collect();
        Pending { slots, max_per_hop, active: 0, claimed: 0, max_claimed: (max_next_hops / 2).max(1) }
    }

    /// Queues `packet` until `next_hop` (on `port`), chosen by `origin`, is resolved. A
    /// next hop not yet waiting gets a slot whose first request is due at once (see
    /// [`Pending::due_retries`]). Gives the packet back if the next hop's queue is full,
    /// every slot is in use, or `origin` is [`HopOrigin::Claimed`] and such hops hold
    /// half the slots: the caller drops and counts it. No allocation.
    pub fn push(&mut self, port: PortId, next_hop: IpAddr, origin: HopOrigin, packet: T) -> Result<(), T> {
        if let Some(s) = self.slots.iter_mut().find(|s| s.next_hop == Some(next_hop)) {
            if s.queue.len() >= self.max_per_hop {
                return Err(packet);
            }
            if origin == HopOrigin::Configured && s.origin == HopOrigin::Claimed {
                // A real server or gateway that a client's packet named first.
                s.origin = HopOrigin::Configured;
                self.claimed -= 1;
            }
            s.queue.push_back(packet);
            return Ok(());
        }
        if self.max_per_hop == 0 || (origin == HopOrigin::Claimed && self.claimed >= self.max_claimed) {
            return Err(packet);
        }
        let Some(s) = self.slots.iter_mut().find(|s| s.next_hop.is_none()) else {
            return Err(packet);
        };
        s.next_hop = Some(next_hop);
        s.port = port;
        s.origin = origin;
        s.tries = 0;
        s.next_due = 0;
        s.queue.push_back(packet);
        self.active += 1;
        self.claimed += usize::from(origin == HopOrigin::Claimed);
        Ok(())
    }

    /// The first next hop with waiting packets for which `resolved` says yes (e.g. its
    /// neighbour has just been learned), so the caller can [`Pending::take`] it.
    pub fn find_waiting(&self, mut resolved: impl FnMut(IpAddr) -> bool) -> Option<IpAddr> {
        self.slots.iter().filter_map(|s| s.next_hop).find(|&h| resolved(h))
    }

    /// Whether packets wait for `next_hop`.
    pub fn is_waiting(&self, next_hop: IpAddr) -> bool {
        self.slots.iter().any(|s| s.next_hop == Some(next_hop))
    }

    /// The packets that waited for `next_hop`, in arrival order, now that it is known;
    /// frees its slot. Packets left in the iterator when it is dropped are dropped too.
    pub fn take(&mut self, next_hop: IpAddr) -> impl Iterator<Item = T> + '_ {
        let (active, claimed) = (&mut self.active, &mut self.claimed);
        self.slots
            .iter_mut()
            .find(|s| s.next_hop == Some(next_hop))
            .map(|s| {
                s.next_hop = None;
                *active -= 1;
                *claimed -= usize::from(s.origin == HopOrigin::Claimed);
                s.queue.drain(..)
            })
            .into_iter()
            .flatten()
    }

    /// What is due at time `now` (ms): a [`Due::Request`] for each next hop whose first
    /// request was never sent or whose last one went unanswered for
    /// [`RETRY_INTERVAL_MS`]; and, for a next hop whose [`MAX_TRIES`] requests all went
    /// unanswered, a [`Due::GaveUp`] per queued packet, after which its slot is free.
    /// Whatever the caller does not consume stays due for the next call. No allocation.
    pub fn due_retries(&mut self, now: u64) -> DueRetries<'_, T> {
        DueRetries { pending: self, now, idx: 0 }
    }

    /// The number of next hops being resolved.
    pub fn next_hops(&self) -> usize {
        self.active
    }

    /// The number of those a packet's source chose ([`HopOrigin::Claimed`]).
    pub fn claimed(&self) -> usize {
        self.claimed
    }

    /// The number of packets waiting, over all next hops.
    pub fn queued(&self) -> usize {
        self.slots.iter().map(|s| s.queue.len()).sum()
    }
}

/// The iterator of [`Pending::due_retries`].
#[derive(Debug)]
pub struct DueRetries<'a, T> {
    pending: &'a mut Pending<T>,
    now: u64,
    idx: usize,
}

impl<T> Iterator for DueRetries<'_, T> {
    type Item = Due<T>;

    fn next(&mut self) -> Option<Due<T>> {
        while let Some(slot) = self.pending.slots.get_mut(self.idx) {
            let Some(next_hop) = slot.next_hop else {
                self.idx += 1;
                continue;
            };
            if self.now < slot.next_due {
                self.idx += 1;
                continue;
            }
            if slot.tries >= MAX_TRIES {
                if let Some(packet) = slot.queue.pop_front() {
                    return Some(Due::GaveUp { next_hop, packet });
                }
                slot.next_hop = None;
                self.pending.active -= 1;
                self.pending.claimed -= usize::from(slot.origin == HopOrigin::Claimed);
                self.idx += 1;
                continue;
            }
            slot.tries += 1;
            slot.next_due = self.now.saturating_add(RETRY_INTERVAL_MS);
            self.idx += 1;
            return Some(Due::Request { port: slot.port, next_hop, attempt: slot.tries });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const CONF: HopOrigin = HopOrigin::Configured;

    const MAC1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const MAC2: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn addrs() -> AddrTable {
        use crate::AddrFlags;
        let mut a = AddrTable::new();
        // Port 0, client side: a VIP and a /24; port 1, server side: a LIP in a /24, a /64.
        a.add(PortId(0), "192.0.2.1/32".parse().unwrap(), AddrFlags::VIP).unwrap();
        a.add(PortId(0), "198.51.100.1/24".parse().unwrap(), AddrFlags::NONE).unwrap();
        a.add(PortId(1), "10.0.0.1/24".parse().unwrap(), AddrFlags::SAPOOL).unwrap();
        a.add(PortId(1), "fd00::1/64".parse().unwrap(), AddrFlags::SAPOOL).unwrap();
        a
    }

    #[test]
    fn admit_learns_only_on_link_unicast_strangers() {
        let a = addrs();
        let mut t = NeighTable::new(8);
        t.insert_static(ip("10.0.0.50"), MAC1, PortId(1), 0);
        let ok = |t: &NeighTable, s: &str, mac, port| admit(&a, t, ip(s), mac, PortId(port));
        assert_eq!(ok(&t, "198.51.100.7", MAC1, 0), Ok(()), "a client on the client subnet");
        assert_eq!(ok(&t, "10.0.0.2", MAC1, 1), Ok(()), "a real server on the server subnet");
        assert_eq!(ok(&t, "fd00::2", MAC1, 1), Ok(()));
        // A client-side host claiming server-side addresses, or ours.
        assert_eq!(ok(&t, "10.0.0.2", MAC2, 0), Err(Refusal::OffLink), "a real server's address on the client port");
        assert_eq!(ok(&t, "fd00::2", MAC2, 0), Err(Refusal::OffLink));
        assert_eq!(ok(&t, "192.0.2.1", MAC2, 0), Err(Refusal::Own), "the VIP");
        assert_eq!(ok(&t, "198.51.100.1", MAC2, 0), Err(Refusal::Own), "the port's address");
        assert_eq!(ok(&t, "10.0.0.1", MAC2, 1), Err(Refusal::Own), "the LIP, even on its own port");
        assert_eq!(ok(&t, "203.0.113.5", MAC2, 0), Err(Refusal::OffLink), "outside every subnet");
        assert_eq!(ok(&t, "fe80::1", MAC2, 1), Err(Refusal::OffLink), "no link-local address on the port");
        // Not unicast.
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "127.0.0.1",
            "198.51.100.0",
            "198.51.100.255",
            "::",
            "ff02::1",
            "::1",
        ] {
            assert_eq!(ok(&t, s, MAC1, 0), Err(Refusal::NotUnicast), "{s}");
        }
        assert_eq!(ok(&t, "198.51.100.9", EthernetAddress::BROADCAST, 0), Err(Refusal::NotUnicast));
        assert_eq!(ok(&t, "198.51.100.9", EthernetAddress([1, 0, 0x5e, 0, 0, 1]), 0), Err(Refusal::NotUnicast));
        assert_eq!(ok(&t, "198.51.100.9", EthernetAddress::UNSPECIFIED, 0), Err(Refusal::NotUnicast));
        // Static entries are never overridden; their own binding is not refused.
        assert_eq!(ok(&t, "10.0.0.50", MAC2, 1), Err(Refusal::Static));
        assert_eq!(ok(&t, "10.0.0.50", MAC1, 1), Ok(()));
        assert!(t.known(ip("10.0.0.50"), MAC1, PortId(1)));
        assert_eq!(Refusal::ALL.map(Refusal::name), ["not_unicast", "own_address", "off_link", "static"]);
    }

    #[test]
    fn static_entries_win_over_learning_and_never_age() {
        let mut t = NeighTable::new(8);
        assert_eq!(t.insert_static(ip("10.0.0.1"), MAC1, PortId(0), 0), None);
        assert_eq!(t.learn(ip("10.0.0.1"), MAC2, PortId(1), 5), Learned::KeptStatic);
        let e = t.lookup(ip("10.0.0.1")).unwrap();
        assert_eq!((e.mac, e.port, e.state), (MAC1, PortId(0), NeighState::Static));
        let mut probes = Vec::new();
        assert_eq!(t.expire(1_000_000_000, &mut probes), Expired::default());
        assert!(probes.is_empty() && t.lookup(ip("10.0.0.1")).is_some());
        // A static entry replaces a learned one (and frees its place).
        assert_eq!(t.learn(ip("fe80::1"), MAC2, PortId(1), 0), Learned::Added);
        assert_eq!(t.learned_on(PortId(1)), 1);
        let old = t.insert_static(ip("fe80::1"), MAC1, PortId(1), 1).unwrap();
        assert_eq!(old.state, NeighState::Reachable);
        assert_eq!(t.learned_on(PortId(1)), 0);
        assert_eq!(t.delete(ip("10.0.0.1")).unwrap().mac, MAC1);
        assert!(t.lookup(ip("10.0.0.1")).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn learning_adds_refreshes_confirms_and_changes() {
        let mut t = NeighTable::new(8);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC1, PortId(0), 100), Learned::Added);
        assert!(t.known(ip("10.0.0.2"), MAC1, PortId(0)));
        assert!(!t.known(ip("10.0.0.2"), MAC2, PortId(0)) && !t.known(ip("10.0.0.2"), MAC1, PortId(1)));
        assert_eq!(t.learn(ip("10.0.0.2"), MAC1, PortId(0), 200), Learned::Refreshed);
        assert!(!Learned::Refreshed.changed());
        assert_eq!(t.lookup(ip("10.0.0.2")).unwrap().updated, 200);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC2, PortId(0), 300), Learned::Changed, "failover moved the MAC");
        assert_eq!(t.lookup(ip("10.0.0.2")).unwrap().mac, MAC2);
        // Moved to another port: counted there.
        assert_eq!(t.learn(ip("10.0.0.2"), MAC2, PortId(1), 400), Learned::Changed);
        assert_eq!((t.learned_on(PortId(0)), t.learned_on(PortId(1))), (0, 1));
        assert_eq!(t.iter().count(), 1);
    }

    #[test]
    fn probes_come_before_the_reachable_time_and_an_answer_keeps_the_entry() {
        let mut t = NeighTable::new(8);
        let timers = NeighTimers::new(10_000);
        assert_eq!((timers.probe_interval_ms, timers.max_probes), (1_000, 3));
        t.set_timers(timers);
        t.learn(ip("10.0.0.2"), MAC1, PortId(1), 0);
        let due = t.lookup(ip("10.0.0.2")).unwrap().due;
        assert!((5_000..7_000).contains(&due), "first probe between R/2 and R - 3 intervals: {due}");
        let mut probes = Vec::new();
        assert_eq!(t.expire(due - 1, &mut probes), Expired::default());
        let e = t.expire(due, &mut probes);
        assert_eq!(e, Expired { probing: 1, probes: 1, removed: 0 });
        assert!(e.changed());
        assert_eq!(probes, vec![NeighProbe { ip: ip("10.0.0.2"), mac: MAC1, port: PortId(1), attempt: 1 }]);
        let entry = *t.lookup(ip("10.0.0.2")).unwrap();
        assert_eq!(entry.state, NeighState::Probe, "still used while probed");
        assert!(!t.known(ip("10.0.0.2"), MAC1, PortId(1)), "its answer must be reported");
        // Answered: reachable again, a new spread deadline, before the old reachable time ran out.
        assert_eq!(t.learn(ip("10.0.0.2"), MAC1, PortId(1), due + 5), Learned::Confirmed);
        assert!(Learned::Confirmed.changed());
        let e = t.lookup(ip("10.0.0.2")).unwrap();
        assert_eq!((e.state, e.probes), (NeighState::Reachable, 0));
        assert!(e.due >= due + 5 + 5_000);
        // Long life under answers: never removed.
        let mut now = due;
        for _ in 0..50 {
            now += 500;
            probes.clear();
            t.expire(now, &mut probes);
            for p in &probes {
                t.learn(p.ip, p.mac, p.port, now + 1);
            }
            assert!(t.lookup(ip("10.0.0.2")).is_some());
        }
    }

    #[test]
    fn unanswered_probes_remove_the_entry() {
        let mut t = NeighTable::new(8);
        t.set_timers(NeighTimers::new(10_000));
        t.learn(ip("10.0.0.3"), MAC1, PortId(1), 0);
        let mut probes = Vec::new();
        let mut now = t.lookup(ip("10.0.0.3")).unwrap().due;
        for attempt in 1..=3 {
            probes.clear();
            assert_eq!(t.expire(now, &mut probes).probes, 1);
            assert_eq!(probes[0].attempt, attempt);
            now += 1_000;
        }
        assert!(now <= 10_000, "all probes sent before the reachable time ran out");
        probes.clear();
        assert_eq!(t.expire(now, &mut probes), Expired { probing: 0, probes: 0, removed: 1 });
        assert!(t.is_empty());
        assert_eq!(t.learned_on(PortId(1)), 0);
    }

    #[test]
    fn timers_are_spread() {
        let timers = NeighTimers::new(60_000);
        let dues: std::collections::BTreeSet<u64> =
            (1..=200u32).map(|i| timers.first_probe(IpAddr::V4((0x0a00_0000 + i).into()), 1_000)).collect();
        assert!(dues.len() > 190, "entries learned together come due at different times");
        let (lo, hi) = (*dues.first().unwrap(), *dues.last().unwrap());
        assert!(lo >= 31_000 && hi < 1_000 + 57_000, "{lo}..{hi}");
        assert!(hi - lo > 20_000, "spread over the window: {lo}..{hi}");
        // Short reachable times still leave a window.
        let t = NeighTimers::new(50);
        assert_eq!(t.probe_interval_ms, 10);
        assert!(t.first_probe(ip("10.0.0.1"), 0) >= 25);
    }

    /// A host on the link answering for a thousand made-up addresses churns a full
    /// port's other entries; the real servers' and the gateway's (kept) stay, however
    /// long ago they were confirmed, and go only when nothing else is left to evict.
    #[test]
    fn a_flood_of_answers_evicts_no_kept_next_hop() {
        let mut t = NeighTable::new(4);
        let kept = |a: &IpAddr| [ip("10.0.0.1"), ip("10.0.0.2")].contains(a);
        assert_eq!(t.learn_keeping(ip("10.0.0.1"), MAC1, PortId(1), 0, &kept), Learned::Added);
        assert_eq!(t.learn_keeping(ip("10.0.0.2"), MAC1, PortId(1), 1, &kept), Learned::Added);
        for i in 0..1000u32 {
            let made_up = IpAddr::V4((0x0a00_1000 + i).into());
            let got = t.learn_keeping(made_up, MAC2, PortId(1), 10 + u64::from(i), &kept);
            assert!(!matches!(got, Learned::Evicted(v) if kept(&v)), "{got:?}");
        }
        assert!(t.lookup(ip("10.0.0.1")).is_some() && t.lookup(ip("10.0.0.2")).is_some());
        assert_eq!(t.learned_on(PortId(1)), 4);
        // Without the configuration's word, the least recently confirmed goes first.
        assert_eq!(t.learn(ip("10.0.0.9"), MAC1, PortId(1), 5_000), Learned::Evicted(ip("10.0.0.1")));
        // Only kept entries left: nothing else takes their place; another kept address
        // takes the least recently confirmed one's.
        let kept = |a: &IpAddr| [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")].contains(a);
        let mut t = NeighTable::new(2);
        t.learn_keeping(ip("10.0.0.1"), MAC1, PortId(1), 0, &kept);
        t.learn_keeping(ip("10.0.0.2"), MAC1, PortId(1), 5, &kept);
        assert_eq!(t.learn_keeping(ip("10.0.0.7"), MAC2, PortId(1), 7, &kept), Learned::Full);
        assert!(t.lookup(ip("10.0.0.7")).is_none() && t.learned_on(PortId(1)) == 2);
        // Nor does one that moves there from another port: it stays where it was.
        assert_eq!(t.learn_keeping(ip("10.0.0.8"), MAC2, PortId(0), 7, &kept), Learned::Added);
        assert_eq!(t.learn_keeping(ip("10.0.0.8"), MAC1, PortId(1), 8, &kept), Learned::Full);
        assert_eq!(t.lookup(ip("10.0.0.8")).map(|e| (e.port, e.mac)), Some((PortId(0), MAC2)));
        assert_eq!((t.learned_on(PortId(0)), t.learned_on(PortId(1))), (1, 2));
        assert_eq!(t.learn_keeping(ip("10.0.0.3"), MAC1, PortId(1), 9, &kept), Learned::Evicted(ip("10.0.0.1")));
    }

    #[test]
    fn full_ports_evict_the_least_recently_confirmed_and_keep_statics() {
        let mut t = NeighTable::new(3);
        t.insert_static(ip("10.0.0.100"), MAC1, PortId(1), 0);
        assert_eq!(t.learn(ip("10.0.0.1"), MAC1, PortId(1), 10), Learned::Added);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC1, PortId(1), 20), Learned::Added);
        assert_eq!(t.learn(ip("10.0.0.3"), MAC1, PortId(1), 30), Learned::Added);
        // Another port has its own room.
        assert_eq!(t.learn(ip("198.51.100.1"), MAC2, PortId(0), 0), Learned::Added);
        // Refresh .1 so that .2 is the least recently confirmed.
        assert_eq!(t.learn(ip("10.0.0.1"), MAC1, PortId(1), 40), Learned::Refreshed);
        assert_eq!(t.learn(ip("10.0.0.4"), MAC1, PortId(1), 50), Learned::Evicted(ip("10.0.0.2")));
        assert!(t.lookup(ip("10.0.0.2")).is_none());
        assert_eq!(t.learned_on(PortId(1)), 3);
        assert!(t.lookup(ip("10.0.0.100")).is_some(), "static entries are never evicted");
        assert!(t.lookup(ip("198.51.100.1")).is_some(), "nor another port's");
        // An entry failing its probes goes first, however recently it was confirmed.
        t.set_timers(NeighTimers::new(10_000));
        t.learn(ip("10.0.0.4"), MAC2, PortId(1), 60);
        let mut probes = Vec::new();
        let due = t.lookup(ip("10.0.0.4")).unwrap().due;
        t.expire(due, &mut probes);
        assert!(probes.iter().any(|p| p.ip == ip("10.0.0.4")));
        assert_eq!(t.lookup(ip("10.0.0.4")).unwrap().state, NeighState::Probe);
        let oldest_answering = probes.iter().all(|p| p.ip == ip("10.0.0.4"));
        assert!(oldest_answering);
        assert_eq!(t.learn(ip("10.0.0.5"), MAC1, PortId(1), 70), Learned::Evicted(ip("10.0.0.4")));
        // A flood of new bindings never blocks a new one (the real server).
        for i in 0..1000u32 {
            assert!(matches!(
                t.learn(IpAddr::V4((0x0a00_1000 + i).into()), MAC2, PortId(1), 100 + u64::from(i)),
                Learned::Evicted(_)
            ));
        }
        assert_eq!(
            t.learn(ip("10.0.0.9"), MAC1, PortId(1), 5_000),
            Learned::Evicted(ip("10.0.19.229")),
            "the oldest of the flood"
        );
        assert_eq!(t.learned_on(PortId(1)), 3);
        assert_eq!(t.len(), 3 + 1 + 1);
        assert!(t.lookup(ip("10.0.0.9")).is_some());
        // Entries no longer admissible (their subnet left the port) can be dropped; statics stay.
        let mut a = addrs();
        a.del(PortId(1), ip("10.0.0.1")).unwrap();
        let copy = t.clone();
        // Port 1's subnet is gone; 198.51.100.1 is port 0's own address.
        assert_eq!(t.retain_learned(|ip, e| admit(&a, &copy, ip, e.mac, e.port).is_ok()), 4);
        assert_eq!((t.learned_on(PortId(0)), t.learned_on(PortId(1)), t.len()), (0, 0, 1), "the static entry stays");
        // No learned entries at all.
        let mut none = NeighTable::new(0);
        assert_eq!(none.learn(ip("10.0.0.1"), MAC1, PortId(0), 0), Learned::Full);
        none.set_max_per_port(1);
        assert_eq!(none.max_per_port(), 1);
        assert_eq!(none.learn(ip("10.0.0.1"), MAC1, PortId(0), 0), Learned::Added);
    }

    #[test]
    fn pending_bounds() {
        let mut p: Pending<u32> = Pending::new(2, 3);
        for i in 0..3 {
            p.push(PortId(0), ip("10.0.0.1"), CONF, i).unwrap();
        }
        assert_eq!(p.push(PortId(0), ip("10.0.0.1"), CONF, 3), Err(3), "per-hop queue full");
        p.push(PortId(1), ip("10.0.0.2"), CONF, 10).unwrap();
        assert_eq!(p.push(PortId(0), ip("10.0.0.3"), CONF, 20), Err(20), "no free slot");
        assert_eq!((p.next_hops(), p.queued()), (2, 4));
        assert!(p.is_waiting(ip("10.0.0.1")) && !p.is_waiting(ip("10.0.0.3")));

        assert_eq!(p.take(ip("10.0.0.1")).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(p.take(ip("10.0.0.1")).count(), 0, "already taken");
        assert_eq!(p.take(ip("10.9.9.9")).count(), 0);
        // The freed slot is reused, with its preallocated queue.
        p.push(PortId(0), ip("10.0.0.3"), CONF, 20).unwrap();
        assert_eq!((p.next_hops(), p.queued()), (2, 2));

        let mut none: Pending<u32> = Pending::new(4, 0);
        assert_eq!(none.push(PortId(0), ip("10.0.0.1"), CONF, 1), Err(1));
        assert_eq!(none.next_hops(), 0);
    }

    /// Next hops a packet's source chose take at most half the slots; a gateway or a
    /// real server always finds one, and claims one a client named first.
    #[test]
    fn made_up_next_hops_take_at_most_half_the_slots() {
        let mut p: Pending<u32> = Pending::new(4, 2);
        let claimed = |i: u32| IpAddr::from([198, 51, 100, 10 + i as u8]);
        for i in 0..2 {
            p.push(PortId(0), claimed(i), HopOrigin::Claimed, i).unwrap();
        }
        assert_eq!(p.push(PortId(0), claimed(2), HopOrigin::Claimed, 2), Err(2), "half the slots: no more");
        p.push(PortId(0), claimed(0), HopOrigin::Claimed, 9).unwrap();
        assert_eq!(p.claimed(), 2, "a waiting hop still queues");
        p.push(PortId(1), ip("10.0.0.2"), CONF, 10).unwrap();
        // A hop a client named first, then a connection scheduled to: the slot is now
        // the configuration's, and a made-up one may have it back.
        p.push(PortId(0), claimed(1), CONF, 11).unwrap();
        assert_eq!(p.claimed(), 1);
        p.push(PortId(0), claimed(3), HopOrigin::Claimed, 3).unwrap();
        assert_eq!((p.next_hops(), p.claimed()), (4, 2));
        // Freed slots give their share back, by taking or by giving up.
        assert_eq!(p.take(claimed(0)).count(), 2);
        assert_eq!(p.claimed(), 1);
        p.push(PortId(0), claimed(4), HopOrigin::Claimed, 4).unwrap();
        for t in [0, 1000, 2000] {
            p.due_retries(t).for_each(drop);
        }
        assert_eq!(p.due_retries(3000).filter(|d| matches!(d, Due::GaveUp { .. })).count(), 5);
        assert_eq!((p.next_hops(), p.claimed()), (0, 0));
    }

    #[test]
    fn only_answers_to_requests_are_awaited() {
        let mut s = Solicited::new(2);
        assert!(s.asked(ip("10.0.0.2"), PortId(1), 1000));
        assert!(s.awaited(ip("10.0.0.2"), PortId(1), 1000 + Solicited::AWAIT_MS - 1));
        assert!(!s.awaited(ip("10.0.0.2"), PortId(1), 1000 + Solicited::AWAIT_MS), "too late");
        assert!(!s.awaited(ip("10.0.0.2"), PortId(0), 1000), "answered on another port");
        assert!(!s.awaited(ip("10.0.0.3"), PortId(1), 1000), "never asked");
        assert!(s.asked(ip("10.0.0.3"), PortId(1), 1000));
        assert!(!s.asked(ip("10.0.0.4"), PortId(1), 2000), "full");
        assert!(s.asked(ip("10.0.0.2"), PortId(1), 2000), "asked again: awaited longer");
        assert!(s.awaited(ip("10.0.0.2"), PortId(1), 1000 + Solicited::AWAIT_MS));
        s.expire(1000 + Solicited::AWAIT_MS);
        assert!(s.asked(ip("10.0.0.4"), PortId(1), 1000 + Solicited::AWAIT_MS), "the stale one made room");
        assert_eq!(s.len(), 2);
        // An answered request is forgotten: its room is free at once.
        s.answered(ip("10.0.0.4"), PortId(1));
        assert!(!s.awaited(ip("10.0.0.4"), PortId(1), 1000 + Solicited::AWAIT_MS));
        // The same link-local address asked on two ports: both awaited.
        assert!(s.asked(ip("fe80::1"), PortId(0), 5000));
        s.answered(ip("10.0.0.2"), PortId(1));
        assert!(s.asked(ip("fe80::1"), PortId(1), 5000));
        assert!(s.awaited(ip("fe80::1"), PortId(0), 5000) && s.awaited(ip("fe80::1"), PortId(1), 5000));
        s.expire(u64::MAX);
        assert!(s.is_empty());
    }

    #[test]
    fn pending_retries_then_gives_up() {
        let mut p: Pending<&'static str> = Pending::new(4, 4);
        p.push(PortId(1), ip("10.0.0.1"), CONF, "a").unwrap();
        p.push(PortId(1), ip("10.0.0.1"), CONF, "b").unwrap();
        let req = |attempt| Due::Request { port: PortId(1), next_hop: ip("10.0.0.1"), attempt };

        // First request at once, then one a second, three in all.
        assert_eq!(p.due_retries(5_000).collect::<Vec<_>>(), vec![req(1)]);
        assert_eq!(p.due_retries(5_999).count(), 0);
        p.push(PortId(1), ip("2001:db8::1"), CONF, "c").unwrap();
        let due: Vec<_> = p.due_retries(6_000).collect();
        assert_eq!(due.len(), 2);
        assert!(due.contains(&req(2)));
        assert!(due.contains(&Due::Request { port: PortId(1), next_hop: ip("2001:db8::1"), attempt: 1 }));
        let v6 = |attempt| Due::Request { port: PortId(1), next_hop: ip("2001:db8::1"), attempt };
        assert_eq!(p.due_retries(7_000).collect::<Vec<_>>(), vec![req(3), v6(2)]);

        // After the third request goes unanswered for a second: give up, hand back.
        let due: Vec<_> = p.due_retries(8_000).collect();
        assert!(due.contains(&v6(3)));
        let due: Vec<_> = due.into_iter().filter(|d| matches!(d, Due::GaveUp { .. })).collect();
        assert_eq!(
            due,
            vec![
                Due::GaveUp { next_hop: ip("10.0.0.1"), packet: "a" },
                Due::GaveUp { next_hop: ip("10.0.0.1"), packet: "b" }
            ]
        );
        assert!(!p.is_waiting(ip("10.0.0.1")));
        assert_eq!((p.next_hops(), p.queued()), (1, 1));
        // A new packet for it starts over.
        p.push(PortId(1), ip("10.0.0.1"), CONF, "d").unwrap();
        assert!(p.due_retries(8_001).any(|d| d == req(1)));
    }

    #[test]
    fn unconsumed_due_items_stay_due() {
        let mut p: Pending<u8> = Pending::new(2, 2);
        p.push(PortId(0), ip("10.0.0.1"), CONF, 1).unwrap();
        p.push(PortId(0), ip("10.0.0.1"), CONF, 2).unwrap();
        for t in [0, 1000, 2000] {
            assert_eq!(p.due_retries(t).count(), 1);
        }
        // Take only the first give-up; the second packet is handed back next time.
        assert_eq!(p.due_retries(3000).next(), Some(Due::GaveUp { next_hop: ip("10.0.0.1"), packet: 1 }));
        assert_eq!(p.due_retries(3000).collect::<Vec<_>>(), vec![Due::GaveUp { next_hop: ip("10.0.0.1"), packet: 2 }]);
        assert_eq!(p.next_hops(), 0);
    }

    #[test]
    fn shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<NeighTable>();
        fn assert_send<T: Send>() {}
        assert_send::<Pending<Vec<u8>>>();
        assert_send::<Solicited>();
    }
}
