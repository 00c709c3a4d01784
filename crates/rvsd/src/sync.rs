//! The sync thread: connection synchronisation with peer balancers, off the fast path.
//!
//! Workers put the connections they announce on their outbox queue
//! ([`crate::shared::WorkerSlot::sync_out`], lock-free, never waited on); this thread
//! gathers them into messages ([`wire::sync`]: up to 14 records, a sync id, the sender's
//! random id and a sequence number, an HMAC-SHA-256 tag cut to 16 bytes under the
//! cluster's key) and sends each to every peer (unicast addresses, or a multicast
//! group on an interface, as IPVS's sync daemon does). A partial message leaves after
//! [`FLUSH_MS`] at most. While its backup role runs, every [`HELLO_MS`] it says hello (a
//! message without records), the first time once this box has services to install
//! connections in; a master that
//! hears a sender's first hello (a peer that started, or restarted with an empty table;
//! from a peer's own address, or once the sender has proved itself: see below)
//! has every worker announce its whole table ([`fnat::engine::Engine::sync_walk`]), so
//! failing back loses nothing. The roles (master: announce; backup: install) switch at
//! run time ([`SyncShared::set`], ipvsadm's `--start-daemon` / `--stop-daemon`); a
//! backup role that starts takes a new sender id, so the masters walk their tables for
//! it too.
//!
//! Every box answers each hello it hears (a message without records that echoes the
//! hello's sender id: at once for a proven sender, else every [`ANSWER_MIN_MS`], the
//! latest from each peer's address and the latest of the rest), and every other message
//! it sends echoes the last proven sender it heard. A backup takes records only from a sender that has echoed its current id: a
//! sender it remembers (by id and sequence) passed that test once; a capture of an
//! earlier process's messages, replayed to a box that never heard that process, echoes
//! an id this box no longer has and installs nothing. A sender that proves itself after
//! some of its records were refused is asked for its table again (the next hello's
//! `walk` flag). A master walks its tables only for a hello it trusts: of a proven
//! sender, or from a peer's own address (replayed hellos from elsewhere walk nothing);
//! so a backup whose current id a master echoed says hello again at once, echoing that
//! master (once per master and id, said three times 250 ms apart: one lost would
//! leave the walk to the next regular hello), which proves it there.
//!
//! Received messages are checked in this order, each refusal counted: the form and
//! version, the sync id, the tag (a stranger without the key cannot make a message),
//! the sequence (a replayed or reordered message of a known sender is refused), the
//! sender's worker count (which worker holds a connection depends on it: peers must run
//! the same number of workers), and for records the echo (above). Each record then goes to the worker that would hold
//! the connection here (the engine's own rule, with a worker seed every peer derives
//! from the key: [`owner_seed`]), whose engine installs it ([`fnat::engine::sync`]); a
//! full inbox drops it (counted). The engine bounds how many
//! synced connections a worker holds, so a peer that floods (or a key that leaked)
//! cannot take the table.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fnat::conn::Addr;
use fnat::engine::modes::{client_side_owner, ClientOwner};
use fnat::persist::mask_addr;
use fnat::sapool::PortOwnership;
use fnat::types::FwdMode;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use wire::sync::{HeaderRepr, Message, RecordRepr, HEADER_LEN, MAX_LEN, MAX_RECORDS, RECORD_LEN, TAG_LEN};

use crate::shared::Shared;

/// How often the thread says hello (a message without records): a peer that hears a
/// new sender announces its whole table to it.
pub const HELLO_MS: u64 = 2000;
/// The longest the first hello waits for this box's services (see [`Syncer::run`]).
const FIRST_HELLO_WAIT: Duration = Duration::from_secs(10);
/// The least time between two rounds of answers to hellos of senders not proven yet
/// (replays of captured hellos cannot make this box send more than ten a second per
/// peer address and ten for the rest).
pub const ANSWER_MIN_MS: u64 = 100;
/// Hellos of proven senders answered per turn of the loop.
const MAX_ANSWERS: usize = 16;
/// The least time between two walks of the tables for peers that started (one walk
/// serves every peer that appeared before it).
pub const RESYNC_MIN_MS: u64 = 1000;
/// The longest a record waits for others to fill its message.
pub const FLUSH_MS: u64 = 20;
/// Records a worker's inbox and outbox hold.
pub const QUEUE: usize = 8192;
/// The seed of the workers' client hash (which worker a NAT, DR or persistent client
/// belongs to): with `[sync]`, derived from the cluster's key so that every peer places
/// a client on the same worker (and an outsider, without the key, still cannot aim at
/// one); else random.
pub fn owner_seed(conf: Option<&SyncConf>) -> u64 {
    match conf {
        Some(c) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(c.key.as_bytes()).expect("HMAC takes any key length");
            mac.update(b"rvs worker owner seed");
            let d = mac.finalize().into_bytes();
            u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
        }
        None => fnat::hash::SeededFold::random_seed(),
    }
}

/// The roles that run, in [`SyncShared::roles`]: announcing (master).
pub const MASTER: u8 = 1;
/// Installing (backup).
pub const BACKUP: u8 = 2;

/// What the control thread, the workers and the sync thread share about sync: the
/// configuration, the roles running now (`[sync]`'s `master` / `backup` at start;
/// `rvsadm --start-daemon` / `--stop-daemon` after), the thread's latest counters.
#[derive(Debug)]
pub struct SyncShared {
    /// `[sync]` as read at start.
    pub conf: SyncConf,
    /// [`MASTER`] | [`BACKUP`].
    pub roles: std::sync::atomic::AtomicU8,
    /// The sync thread's counters, published every 100 ms.
    pub counters: std::sync::Mutex<SyncCounters>,
}

impl SyncShared {
    /// The state at start.
    pub fn new(conf: &SyncConf) -> SyncShared {
        let roles = if conf.master { MASTER } else { 0 } | if conf.backup { BACKUP } else { 0 };
        SyncShared { conf: conf.clone(), roles: std::sync::atomic::AtomicU8::new(roles), counters: Default::default() }
    }

    /// Whether `role` runs.
    pub fn runs(&self, role: u8) -> bool {
        self.roles.load(Ordering::Relaxed) & role != 0
    }

    /// Starts or stops a role (`rvsadm --start-daemon|--stop-daemon`), after checking
    /// that `syncid` and `mcast_interface` (a kernel interface's name), if given, agree
    /// with `[sync]`: the key and the transport are the configuration's.
    pub fn set(&self, role: ctl::SyncRole, start: bool, syncid: Option<u8>, mcast: Option<&str>) -> Result<(), String> {
        let c = &self.conf;
        if let Some(id) = syncid.filter(|id| *id != c.syncid) {
            return Err(format!(
                "--syncid {id}: rvsd's [sync] syncid is {} (its key and peers belong to it)",
                c.syncid
            ));
        }
        if let Some(dev) = mcast {
            let Some(want) = c.mcast_interface else {
                return Err(format!("--mcast-interface {dev}: [sync] sends to unicast peers, not a multicast group"));
            };
            let held = interface_v4(dev).map_err(|e| format!("--mcast-interface {dev}: {e}"))?;
            if !held.contains(&want) {
                return Err(format!("--mcast-interface {dev}: it does not hold [sync] mcast_interface {want}"));
            }
        }
        let bit = match role {
            ctl::SyncRole::Master if start && c.peers.is_empty() => {
                return Err("master: [sync] names no peers to announce to".into());
            }
            ctl::SyncRole::Backup if start && c.peers.is_empty() => {
                return Err("backup: [sync] names no peers to say hello to (their answers prove them live)".into());
            }
            ctl::SyncRole::Master => MASTER,
            ctl::SyncRole::Backup => BACKUP,
        };
        if start {
            self.roles.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.roles.fetch_and(!bit, Ordering::Relaxed);
        }
        tracing::info!(role = role.name(), start, "sync: role {}", if start { "started" } else { "stopped" });
        Ok(())
    }

    /// The roles running, as `rvsadm -L --daemon` lists them.
    pub fn daemons(&self) -> Vec<ctl::SyncDaemonView> {
        let c = &self.conf;
        let transport = match (c.mcast_interface, c.peers.as_slice()) {
            (Some(i), [group]) if group.ip().is_multicast() => format!("mcast={group} on {i}"),
            (_, peers) => {
                let p: Vec<String> = peers.iter().map(ToString::to_string).collect();
                format!("peers={}", p.join(","))
            }
        };
        [(ctl::SyncRole::Master, MASTER), (ctl::SyncRole::Backup, BACKUP)]
            .into_iter()
            .filter(|(_, bit)| self.runs(*bit))
            .map(|(role, _)| ctl::SyncDaemonView {
                role,
                syncid: c.syncid,
                transport: transport.clone(),
                maxlen: MAX_LEN as u32,
            })
            .collect()
    }
}

/// The IPv4 addresses of kernel interface `dev`.
fn interface_v4(dev: &str) -> Result<Vec<Ipv4Addr>, String> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| format!("getifaddrs: {e}"))?;
    let mut found = false;
    let mut v4 = Vec::new();
    for a in addrs.filter(|a| a.interface_name == dev) {
        found = true;
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            v4.push(sin.ip());
        }
    }
    if !found {
        return Err("no such interface".into());
    }
    Ok(v4)
}

/// The socket's receive and send buffers asked for.
const SOCKET_BUFFER: usize = 4 << 20;
/// Peers whose sequence numbers are remembered (authenticated senders only).
const MAX_SENDERS: usize = 256;
/// A hello said at once to a peer that proved itself (echoing it: [`Syncer::receive`])
/// is said [`ECHO_TRIES`] times in all, this long apart: one lost would otherwise leave
/// that peer without this box's proof until a regular hello ([`HELLO_MS`]) echoed it.
/// Always, not until answered: an answer names only the hello's sender, not which of
/// its hellos it answers (with several peers, one answering another hello would look
/// like its answer to the lost one).
const ECHO_RETRY: Duration = Duration::from_millis(250);
const ECHO_TRIES: u8 = 3;
/// A proven sender heard within this long is live: forgetting it makes this box draw a
/// new id (see [`Senders::took`]); one not heard for longer is gone (a peer's earlier
/// process or backup role: a live peer is heard at least every hello, 2 s).
const LIVE: Duration = Duration::from_secs(30);
/// This process's earlier sender ids remembered (see `Senders::before`).
const MAX_OWN_SENDERS: usize = 16;

/// `[sync]`: connection synchronisation with peer balancers (see the module
/// documentation and docs/HA.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConf {
    /// The cluster's sync id (ipvsadm's `--syncid`, 0..=255): messages of another id
    /// are refused.
    #[serde(default)]
    pub syncid: u8,
    /// Where to receive: address and port (`0.0.0.0:8848` receives on every
    /// interface; a multicast group in `peers` is joined on `mcast_interface`).
    pub listen: SocketAddr,
    /// Where to send: unicast peers' `address:port`, or one multicast group
    /// (`224.0.0.81:8848` is IPVS's).
    #[serde(default)]
    pub peers: Vec<SocketAddr>,
    /// The interface (by its IPv4 address) multicast goes out of and is joined on
    /// (ipvsadm's `--mcast-interface`, which names the device).
    #[serde(default)]
    pub mcast_interface: Option<Ipv4Addr>,
    /// The shared secret every peer holds (at least 16 characters): messages are
    /// authenticated with it.
    pub key: String,
    /// Announce this box's connections (ipvsadm `--start-daemon master`).
    #[serde(default = "yes")]
    pub master: bool,
    /// Install the peers' connections (ipvsadm `--start-daemon backup`).
    #[serde(default = "yes")]
    pub backup: bool,
    /// Seconds a synced copy lives beyond the time its original had left when announced:
    /// a busy connection is announced again when its timer comes due, and that refresh
    /// must arrive within this grace.
    #[serde(default = "default_grace")]
    pub grace_s: u32,
    /// Synced connections one worker may hold; 0: half its table.
    #[serde(default)]
    pub max_synced: u32,
}

fn yes() -> bool {
    true
}

fn default_grace() -> u32 {
    10
}

impl SyncConf {
    /// Refuses what cannot work: the key under `[sync]` and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.key.chars().count() < 16 {
            return Err(("key", "at least 16 characters (the peers' shared secret)".into()));
        }
        if (self.master || self.backup) && self.peers.is_empty() {
            return Err((
                "peers",
                "a master announces to at least one peer, and a backup says hello to them (their answers prove \
                 them live); or set master = false and backup = false"
                    .into(),
            ));
        }
        if !(1..=3600).contains(&self.grace_s) {
            return Err(("grace_s", "1..=3600 seconds".into()));
        }
        let groups = self.peers.iter().filter(|p| p.ip().is_multicast()).count();
        if groups > 0 && (self.peers.len() > 1 || !self.peers[0].is_ipv4()) {
            return Err(("peers", "one IPv4 multicast group, or unicast peers, not both".into()));
        }
        if groups > 0 && self.mcast_interface.is_none() {
            return Err(("mcast_interface", "the IPv4 address of the interface the multicast group is on".into()));
        }
        Ok(())
    }

    /// The engine's settings for a worker whose table holds `capacity` connections.
    pub fn engine_settings(&self, capacity: u32) -> fnat::engine::sync::SyncSettings {
        fnat::engine::sync::SyncSettings {
            announce: self.master,
            grace_ms: self.grace_s * 1000,
            max_synced: if self.max_synced == 0 { capacity / 2 } else { self.max_synced },
        }
    }
}

fnat::counter_set! {
    /// What the sync thread did.
    pub enum SyncCounter in SyncCounters {
        MsgsSent = "sync_msgs_sent": "Sync messages sent (one per peer).",
        RecordsSent = "sync_records_sent": "Connection records announced to the peers (in messages at least one peer was sent).",
        SendErrors = "sync_send_errors": "Sync messages the kernel refused to send (no route, buffer full).",
        MsgsReceived = "sync_msgs_received": "Sync messages accepted from a peer.",
        RecordsReceived = "sync_records_received": "Connection records accepted from a peer and handed to their worker.",
        RejectedMalformed = "sync_rejected_malformed": "Sync messages refused: too short, too long, an unknown version or header flag, or a malformed record.",
        RejectedSyncId = "sync_rejected_syncid": "Sync messages refused: another sync id.",
        RejectedTag = "sync_rejected_tag": "Sync messages refused: the authentication tag does not match (a stranger, or another key).",
        RejectedReplay = "sync_rejected_replay": "Sync messages refused: a sequence number the sender already used (replayed or reordered).",
        RejectedWorkers = "sync_rejected_workers": "Sync messages refused: the sender runs another number of workers.",
        NotBackup = "sync_not_backup": "Sync messages whose records were not installed: the backup role is stopped (rvsadm --stop-daemon backup, or [sync] backup = false); their hellos are still heard.",
 RejectedUnproven = "sync_rejected_unproven": "Sync messages whose records were refused: their sender has not yet echoed this box's current sender id (it has not answered this box's hello since this box drew the id: a capture of an earlier process's messages, or a peer that started a moment ago and is answered within a hello).",
        RejectedOwn = "sync_rejected_own": "Sync messages refused: this box's own, sent back to it (a reflection, or a multicast loop).",
        InboxFull = "sync_inbox_full": "Received connection records dropped: their worker's inbox was full.",
        Resyncs = "sync_resyncs": "Walks of the workers' tables for peers that started (their first hello from a peer's address, or once proven): every connection announced again (at most one a second).",
        HellosResent = "sync_hellos_resent": "Hellos said again, echoing a peer that proved itself: each hello said at once to such a peer is said twice more, 250 ms apart, so that one lost does not leave that peer without this box's proof until the next regular hello.",
    }
}

/// The running sync thread; dropping it stops the thread.
pub struct SyncThread {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Opens the socket (errors name the address) and starts the thread, which publishes
/// its counters in [`Shared::sync`] every 100 ms.
pub fn start(conf: &SyncConf, shared: Arc<Shared>, owner_seed: u64) -> Result<SyncThread> {
    conf.validate().map_err(|(k, p)| anyhow!("sync.{k}: {p}"))?;
    let socket = open_socket(conf)?;
    let mac = Hmac::<Sha256>::new_from_slice(conf.key.as_bytes()).map_err(|e| anyhow!("sync.key: {e}"))?;
    let workers = shared.workers.len() as u16;
    let mut s = Syncer {
        conf: conf.clone(),
        socket,
        mac,
        shared,
        own: PortOwnership::new(u32::from(workers)).context("sync: worker count")?,
        owner_seed,
        workers,
        senders: Senders::new(new_sender_id()),
        heard: 0,
        answers: Vec::new(),
        peer_answers: vec![None; conf.peers.len()],
        answer_other: None,
        refused_since_ask: false,
        answered_at: Instant::now(),
        ask_again: false,
        hello_to: Vec::new(),
        echo_again: Vec::new(),
        echoed: Vec::new(),
        sequence: 0,
        out: [0; MAX_LEN],
        pending: 0,
        first_at: None,
        counters: SyncCounters::default(),
        warned_workers: false,
        warned_version: false,
        resync_due: None,
        last_resync: Instant::now().checked_sub(Duration::from_millis(RESYNC_MIN_MS)).unwrap_or_else(Instant::now),
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = std::thread::Builder::new().name("rvsd-sync".into()).spawn(move || s.run(&flag))?;
    tracing::info!(
        syncid = conf.syncid,
        listen = %conf.listen,
        peers = ?conf.peers,
        master = conf.master,
        backup = conf.backup,
        "sync: running"
    );
    Ok(SyncThread { stop, handle: Some(handle) })
}

fn open_socket(conf: &SyncConf) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if conf.listen.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).context("sync: socket")?;
    s.set_reuse_address(true)?;
    // Bursts (a thousand connections opened at once are 72 messages): room for them
    // (the kernel caps this at net.core.rmem_max / wmem_max).
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    // Linux reports twice what it grants.
    let got = s.recv_buffer_size().unwrap_or(0) / 2;
    if got < SOCKET_BUFFER {
        tracing::warn!(
            asked = SOCKET_BUFFER,
            got,
            "sync: net.core.rmem_max caps the socket's receive buffer: a burst of announcements may be dropped by \
             the kernel before rvsd reads it (raise net.core.rmem_max to {SOCKET_BUFFER})"
        );
    }
    s.bind(&conf.listen.into()).with_context(|| format!("sync.listen {}: bind", conf.listen))?;
    if let (Some(SocketAddr::V4(group)), Some(iface)) = (conf.peers.first(), conf.mcast_interface) {
        if group.ip().is_multicast() {
            s.set_multicast_if_v4(&iface).with_context(|| format!("sync.mcast_interface {iface}"))?;
            s.set_multicast_loop_v4(false)?;
            s.set_multicast_ttl_v4(1)?;
            // Joined whatever the roles: the backup role may start later.
            s.join_multicast_v4(group.ip(), &iface).with_context(|| format!("sync: join {} on {iface}", group.ip()))?;
        }
    }
    s.set_read_timeout(Some(Duration::from_millis(5)))?;
    Ok(s.into())
}

/// What a message sent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Records (as many as are in place).
    Records,
    /// A hello of the backup role, asking for the tables again or not.
    Hello { ask_again: bool },
    /// An answer to a hello: it echoes that hello's sender.
    Answer,
}

/// Completes a message whose `n` records are in place in `out`: writes the header `h`
/// and the tag under `mac` (the key); returns the message's length (an error: `h`
/// cannot head `n` records).
pub fn seal(mac: &Hmac<Sha256>, h: &HeaderRepr, n: usize, out: &mut [u8; MAX_LEN]) -> Result<usize, wire::Error> {
    h.emit(n, out)?;
    let body = HEADER_LEN + n * RECORD_LEN;
    let mut mac = mac.clone();
    mac.update(&out[..body]);
    let tag = mac.finalize().into_bytes();
    out[body..body + TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
    Ok(body + TAG_LEN)
}

/// A random sender id; never 0, which echoes nothing.
fn new_sender_id() -> u32 {
    std::iter::repeat_with(|| fnat::hash::SeededFold::random_seed() as u32).find(|&id| id != 0).unwrap_or(1)
}

/// What a sync thread knows of another sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    /// The last sequence number taken.
    last: u32,
    /// It said hello as a sender to trust with a walk: proven, or from a peer's own
    /// address (that first hello made the masters walk their tables).
    greeted: bool,
    /// It echoed this box's sender id: its records are taken.
    proven: bool,
    /// When it was last heard (the least recently heard is forgotten first).
    heard: Instant,
}

/// What [`Senders::took`] tells of a message taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Taken {
    /// The sender's first hello, proven or from a peer's own address (a peer that
    /// started: the masters walk their tables); a replayed hello from elsewhere is not.
    first_hello: bool,
    /// Its records may be taken: the sender echoed this box's id, now or before.
    proven: bool,
    /// It proved itself with this message.
    newly_proven: bool,
    /// A live proven sender was forgotten to make room: this box takes a new id, so
    /// that no capture echoing the old one proves that sender again.
    forgot_live: bool,
}

/// The senders a sync thread knows: its own id (and the ones it had before: the backup
/// role restarted), and per authenticated peer what [`Peer`] holds.
#[derive(Debug)]
struct Senders {
    /// The id this box sends with.
    me: u32,
    /// Its earlier ids, newest last (at most [`MAX_OWN_SENDERS`]).
    before: Vec<u32>,
    seen: HashMap<u32, Peer>,
}

impl Senders {
    fn new(me: u32) -> Senders {
        Senders { me, before: Vec::new(), seen: HashMap::new() }
    }

    /// Sends as a new sender from now on (the backup role starts again). Peers proven
    /// stay so: they are remembered, and their sequence numbers guard against replays.
    fn renew(&mut self, me: u32) {
        self.before.push(self.me);
        if self.before.len() > MAX_OWN_SENDERS {
            self.before.remove(0);
        }
        self.me = me;
    }

    /// Whether an authenticated message of `sender` numbered `sequence` may be taken:
    /// not this box's own (a copy of one sent back would take its own hello for a
    /// peer's start, and install its closed connections back), not a number the sender
    /// used already (replayed or reordered).
    fn admit(&self, sender: u32, sequence: u32) -> Result<(), SyncCounter> {
        if sender == self.me || self.before.contains(&sender) {
            return Err(SyncCounter::RejectedOwn);
        }
        match self.seen.get(&sender) {
            Some(p) if (sequence.wrapping_sub(p.last) as i32) <= 0 => Err(SyncCounter::RejectedReplay),
            _ => Ok(()),
        }
    }

    /// Notes an admitted message taken at `now`, a `hello` or not, which `echo`es a
    /// sender id, sent from a peer's own address (`from_peer`) or not. Past [`MAX_SENDERS`] senders, the one heard least recently is
    /// forgotten, an unproven one first (senders come only from key holders; each
    /// restart, and each start of a backup role, makes a new one).
    fn took(&mut self, sender: u32, sequence: u32, hello: bool, echo: u32, from_peer: bool, now: Instant) -> Taken {
        let mut forgot_live = false;
        if !self.seen.contains_key(&sender) && self.seen.len() >= MAX_SENDERS {
            if let Some((&id, p)) = self.seen.iter().min_by_key(|(_, p)| (p.proven, p.heard)) {
                forgot_live = p.proven && now.saturating_duration_since(p.heard) < LIVE;
                self.seen.remove(&id);
            }
        }
        let was = self.seen.get(&sender).copied();
        let (greeted, was_proven) = was.map_or((false, false), |p| (p.greeted, p.proven));
        let proven = was_proven || echo == self.me;
        let greets = hello && (proven || from_peer);
        self.seen.insert(sender, Peer { last: sequence, greeted: greeted || greets, proven, heard: now });
        Taken { first_hello: greets && !greeted, proven, newly_proven: proven && !was_proven, forgot_live }
    }
}

struct Syncer {
    conf: SyncConf,
    socket: UdpSocket,
    mac: Hmac<Sha256>,
    shared: Arc<Shared>,
    own: PortOwnership,
    owner_seed: u64,
    workers: u16,
    /// This box's sender id and what it knows of the others'.
    senders: Senders,
    /// The last proven sender heard, echoed in every message but answers (0: none yet).
    heard: u32,
    /// Hellos of proven senders, or that echoed this box's id (their senders heard it:
    /// they were made after this box drew its id), to answer at once (at most
    /// [`MAX_ANSWERS`]).
    answers: Vec<u32>,
    /// Other hellos, answered once every [`ANSWER_MIN_MS`]: the latest from each
    /// configured peer's address (in `peers` order), so that a flood of replayed
    /// hellos from elsewhere cannot hold off a peer's answer, and the latest of the
    /// rest.
    peer_answers: Vec<Option<u32>>,
    answer_other: Option<u32>,
    answered_at: Instant,
    /// Records were refused since the tables were last asked for again: the next
    /// sender that proves itself makes the next hello ask for them.
    refused_since_ask: bool,
    /// Ask the masters for their tables again with the next hello.
    ask_again: bool,
    /// Proven senders that have echoed this box's current id and that no hello of it
    /// has echoed yet: the backup role says hello at once to each, echoing it (see
    /// [`Syncer::receive`]).
    hello_to: Vec<u32>,
    /// Those hellos to be said again: the sender echoed, when the last was said, how
    /// many were (see [`ECHO_RETRY`]).
    echo_again: Vec<(u32, Instant, u8)>,
    /// The senders this box's hellos echoed, or are to echo, since it drew its id (at
    /// most [`MAX_SENDERS`]: past that, no more hellos at once).
    echoed: Vec<u32>,
    sequence: u32,
    out: [u8; MAX_LEN],
    pending: usize,
    first_at: Option<Instant>,
    counters: SyncCounters,
    warned_workers: bool,
    warned_version: bool,
    /// When the workers walk their tables next for a peer that started, and when they
    /// last did (at most one walk a [`RESYNC_MIN_MS`]: a key holder that keeps changing
    /// its sender id cannot keep them walking).
    resync_due: Option<Instant>,
    last_resync: Instant,
}

impl Syncer {
    fn run(&mut self, stop: &std::sync::atomic::AtomicBool) {
        let mut buf = [0u8; 2048];
        let mut published = Instant::now();
        let (started, mut hello_at) = (Instant::now(), Instant::now());
        let mut was_backup = self.sync().runs(BACKUP);
        while !stop.load(Ordering::Relaxed) && !self.shared.stop.load(Ordering::Relaxed) {
            let backup = self.sync().runs(BACKUP);
            if backup && !was_backup {
                // The backup role (re)starts: as a new sender, so that masters walk their
                // tables for it as for a box that started.
                self.renew();
                hello_at = Instant::now();
            }
            was_backup = backup;
            if backup {
                self.echo_again_due();
            }
            if self.ask_again || !self.hello_to.is_empty() {
                hello_at = hello_at.min(Instant::now());
            }
            // Hellos ask masters for their tables: only a backup says hello, the first time
            // once this box has services (a peer's table would find none to go in), or
            // after FIRST_HELLO_WAIT. The records in place leave first (a hello, and an
            // answer, has none).
            let ready = || !self.shared.current().services.is_empty() || started.elapsed() >= FIRST_HELLO_WAIT;
            if backup && hello_at <= Instant::now() && !self.conf.peers.is_empty() && ready() {
                self.flush();
                let ask_again = std::mem::take(&mut self.ask_again);
                let at_once = !self.hello_to.is_empty();
                let echo = if at_once { self.hello_to.remove(0) } else { self.heard };
                self.send(0, Kind::Hello { ask_again }, echo);
                if at_once {
                    match self.echo_again.iter_mut().find(|u| u.0 == echo) {
                        Some(u) => {
                            (u.1, u.2) = (Instant::now(), u.2 + 1);
                            self.counters.inc(SyncCounter::HellosResent);
                        }
                        None => self.echo_again.push((echo, Instant::now(), 1)),
                    }
                }
                if echo != 0 && !self.echoed.contains(&echo) && self.echoed.len() < MAX_SENDERS {
                    self.echoed.push(echo);
                }
                hello_at = Instant::now() + Duration::from_millis(if self.hello_to.is_empty() { HELLO_MS } else { 0 });
            }
            if !self.answers.is_empty() {
                self.flush();
                for id in std::mem::take(&mut self.answers) {
                    self.send(0, Kind::Answer, id);
                }
            }
            if self.answered_at.elapsed() >= Duration::from_millis(ANSWER_MIN_MS) {
                let mut due: Vec<u32> = self.peer_answers.iter_mut().filter_map(Option::take).collect();
                due.extend(self.answer_other.take());
                if !due.is_empty() {
                    self.flush();
                    for id in due {
                        self.send(0, Kind::Answer, id);
                    }
                    self.answered_at = Instant::now();
                }
            }
            if self.resync_due.is_some_and(|t| t <= Instant::now()) {
                self.resync_due = None;
                self.last_resync = Instant::now();
                self.shared.resync.fetch_add(1, Ordering::Relaxed);
                self.counters.inc(SyncCounter::Resyncs);
            }
            self.gather();
            if self.pending > 0 && self.first_at.is_some_and(|t| t.elapsed() >= Duration::from_millis(FLUSH_MS)) {
                self.flush();
            }
            // Waits at most the socket's read timeout (5 ms).
            // Read whatever the roles: a master must hear a peer's hello to walk its
            // tables for it (rvs-agent runs the master role alone on a VRRP master).
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                self.receive(&buf[..n], from, backup);
            }
            if published.elapsed() >= Duration::from_millis(100) {
                self.publish();
                published = Instant::now();
            }
        }
        self.flush();
        self.publish();
    }

    /// Sends as a new sender from now on (its first hello makes the masters walk their
    /// tables for it).
    fn renew(&mut self) {
        self.flush();
        self.senders.renew(new_sender_id());
        self.sequence = 0;
        self.hello_to.clear();
        self.echo_again.clear();
        self.echoed.clear();
    }

    /// Queues again the hellos echoing a peer whose [`ECHO_RETRY`] has passed (at most
    /// [`ECHO_TRIES`] in all). Backup role only.
    fn echo_again_due(&mut self) {
        let now = Instant::now();
        let hello_to = &mut self.hello_to;
        self.echo_again.retain(|&(id, at, tries)| {
            if now.saturating_duration_since(at) < ECHO_RETRY || hello_to.contains(&id) {
                return true;
            }
            if tries < ECHO_TRIES {
                hello_to.push(id);
            }
            tries < ECHO_TRIES
        });
    }

    /// Publishes the counters (the stats, the metrics, rvsd's last line).
    fn publish(&self) {
        if let Ok(mut s) = self.sync().counters.lock() {
            *s = self.counters;
        }
    }

    /// The shared sync state (there is a sync thread only with `[sync]`).
    fn sync(&self) -> &SyncShared {
        self.shared.sync.as_ref().expect("the sync thread runs only with [sync]")
    }

    /// Takes the workers' announced records into messages.
    fn gather(&mut self) {
        for w in 0..self.shared.workers.len() {
            while let Some(rec) = self.shared.workers[w].sync_out.pop() {
                let at = HEADER_LEN + self.pending * RECORD_LEN;
                if rec.emit(&mut self.out[at..]).is_err() {
                    continue;
                }
                self.pending += 1;
                self.first_at.get_or_insert_with(Instant::now);
                if self.pending == MAX_RECORDS {
                    self.flush();
                }
            }
        }
    }

    /// Sends the pending records as one message to every peer.
    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        self.send(self.pending, Kind::Records, self.heard);
        self.pending = 0;
        self.first_at = None;
    }

    /// Sends the `n` records in place (none but for [`Kind::Records`]) as one message
    /// echoing `echo` to every peer.
    fn send(&mut self, n: usize, kind: Kind, echo: u32) {
        self.sequence = self.sequence.wrapping_add(1);
        let (hello, walk) = match kind {
            Kind::Hello { ask_again } => (true, ask_again),
            Kind::Answer | Kind::Records => (false, false),
        };
        let h = HeaderRepr {
            sync_id: self.conf.syncid,
            sender: self.senders.me,
            sequence: self.sequence,
            workers: self.workers,
            hello,
            walk,
            echo,
        };
        let Ok(len) = seal(&self.mac, &h, n, &mut self.out) else {
            return self.counters.inc(SyncCounter::SendErrors);
        };
        let mut sent = false;
        for peer in &self.conf.peers {
            match self.socket.send_to(&self.out[..len], peer) {
                Ok(_) => {
                    self.counters.inc(SyncCounter::MsgsSent);
                    sent = true;
                }
                Err(e) => {
                    self.counters.inc(SyncCounter::SendErrors);
                    tracing::debug!(%peer, error = %e, "sync: send");
                }
            }
        }
        if sent {
            self.counters.add_n(SyncCounter::RecordsSent, n as u64);
        }
    }

    /// One received datagram (see the module documentation for the checks); its records
    /// are installed only while the `backup` role runs.
    fn receive(&mut self, data: &[u8], from: SocketAddr, backup: bool) {
        let m = match Message::new_checked(data) {
            Ok(m) => m,
            Err(e) => {
                // Framed as a message of another version: version 1's (a 16-byte header),
                // or ours with another version number (a stray datagram rarely is).
                let framed = |header: usize| {
                    data.len() >= header + TAG_LEN && data.len() - header - TAG_LEN == usize::from(data[2]) * RECORD_LEN
                };
                let other =
                    (data.first() == Some(&1) && framed(16)) || (e == wire::Error::Unsupported && framed(HEADER_LEN));
                if other && !self.warned_version {
                    // Unauthenticated (the tag cannot be read): said once, counted always.
                    tracing::warn!(%from, theirs = data[0], ours = wire::sync::VERSION, "sync: a message of another version; refused (peers must run the same sync message version)");
                    self.warned_version = true;
                }
                return self.counters.inc(SyncCounter::RejectedMalformed);
            }
        };
        let h = HeaderRepr::parse(&m);
        if h.sync_id != self.conf.syncid {
            return self.counters.inc(SyncCounter::RejectedSyncId);
        }
        let mut mac = self.mac.clone();
        mac.update(m.signed());
        if mac.verify_truncated_left(m.tag()).is_err() {
            tracing::debug!(%from, "sync: a message with a bad tag");
            return self.counters.inc(SyncCounter::RejectedTag);
        }
        if let Err(c) = self.senders.admit(h.sender, h.sequence) {
            return self.counters.inc(c);
        }
        if h.workers != self.workers {
            if !self.warned_workers {
                tracing::warn!(%from, theirs = h.workers, ours = self.workers, "sync: the peer runs another number of workers; its connections are refused");
                self.warned_workers = true;
            }
            return self.counters.inc(SyncCounter::RejectedWorkers);
        }
        let mut recs = [None; MAX_RECORDS];
        for (i, r) in m.records().enumerate() {
            match r {
                Ok(r) => recs[i] = Some(r),
                Err(_) => return self.counters.inc(SyncCounter::RejectedMalformed),
            }
        }
        let peer = self.peer_index(from);
        let taken = self.senders.took(h.sender, h.sequence, h.hello, h.echo, peer.is_some(), Instant::now());
        self.counters.inc(SyncCounter::MsgsReceived);
        if taken.proven || peer.is_some() {
            // A sender known to be live, or one from a peer's own address (so that a
            // backup's next hello echoes a master it has not proved yet, and is answered
            // at once): a replay from elsewhere cannot turn the echo away.
            self.heard = h.sender;
        }
        if taken.forgot_live {
            // Nothing captured under the old id can prove a forgotten sender again.
            self.renew();
        }
        if taken.newly_proven && std::mem::take(&mut self.refused_since_ask) {
            tracing::info!(%from, "sync: a peer proved itself after records were refused; asking for the tables again");
            self.ask_again = true;
        }
        if backup
            && taken.proven
            && h.echo == self.senders.me
            && !self.echoed.contains(&h.sender)
            && self.echoed.len() < MAX_SENDERS
        {
            // A master heard this box's current id, and has not heard it echo its own: a
            // hello that does is one it trusts (it proves this box), and walks its table
            // for, if the first was not (a multicast group's, or from an address not in
            // its `peers`). Sent at once; once per sender and id of this box (a replay
            // of the answer is refused by its sequence number).
            self.echoed.push(h.sender);
            self.hello_to.push(h.sender);
        }
        if h.hello {
            if taken.proven {
                if self.answers.len() < MAX_ANSWERS && !self.answers.contains(&h.sender) {
                    self.answers.push(h.sender);
                }
            } else if let Some(i) = peer {
                self.peer_answers[i] = Some(h.sender);
            } else {
                self.answer_other = Some(h.sender);
            }
        }
        let trusted = taken.proven || peer.is_some();
        if h.hello && (taken.first_hello || (h.walk && trusted)) && self.sync().runs(MASTER) {
            // A peer's first hello (it started and has its services): the whole table.
            // Only for a sender proven or from a peer's own address: captured hellos
            // replayed from elsewhere cannot keep the workers walking.
            // Logged when a walk is planned, not per hello (one walk serves them all).
            if self.resync_due.is_none() {
                tracing::info!(%from, "sync: a peer started; announcing every connection to it");
            }
            self.resync_due.get_or_insert(self.last_resync + Duration::from_millis(RESYNC_MIN_MS));
        }
        if m.count() == 0 {
            return;
        }
        if !backup {
            return self.counters.inc(SyncCounter::NotBackup);
        }
        if !taken.proven {
            tracing::debug!(%from, sender = h.sender, "sync: records of a sender that has not echoed this box's id");
            self.refused_since_ask = true;
            return self.counters.inc(SyncCounter::RejectedUnproven);
        }
        for rec in recs.into_iter().flatten() {
            let w = self.owner(&rec) as usize;
            match self.shared.workers.get(w).map(|s| s.sync_in.push(rec)) {
                Some(Ok(())) => self.counters.inc(SyncCounter::RecordsReceived),
                _ => self.counters.inc(SyncCounter::InboxFull),
            }
        }
    }

    /// The position in `peers` of the address `from` (an IPv4 peer heard on a
    /// dual-stack socket as an IPv4-mapped address too).
    fn peer_index(&self, from: SocketAddr) -> Option<usize> {
        let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
        self.conf.peers.iter().position(|p| canonical(*p) == canonical(from))
    }

    /// The worker a record's connection lives on here, by the engine's own rule
    /// ([`ClientOwner`], with the same seed as the peer's, see [`owner_seed`]): where its
    /// client hashes to (NAT: address and port; persistence: masked address), else the
    /// owner of its local port (FullNAT), else (DR, TUN) where its client hashes to,
    /// RSS deciding on the peer as here.
    fn owner(&self, rec: &RecordRepr) -> u16 {
        let snap = self.shared.current();
        let rule = fnat::types::Proto::from_number(rec.proto)
            .and_then(|p| snap.services.classify(p, rec.client, rec.virt, || true))
            .map_or(ClientOwner::Any, |i| ClientOwner::of(snap.services.service(i)));
        let (cip, cport) = (Addr::from(rec.client.0), rec.client.1);
        match rule {
            ClientOwner::Masked(v4, v6) => {
                client_side_owner(self.owner_seed, &Addr::from(mask_addr(rec.client.0, v4, v6)), 0, self.workers)
            }
            ClientOwner::Any if FwdMode::from_u8(rec.fwd).uses_local_addr() => self.own.owner(rec.local.1),
            ClientOwner::Port | ClientOwner::Any => client_side_owner(self.owner_seed, &cip, cport, self.workers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctl::SyncRole::{Backup, Master};

    fn conf(peers: &[&str], mcast: Option<&str>) -> SyncConf {
        SyncConf {
            syncid: 7,
            listen: "127.0.0.1:8848".parse().unwrap(),
            peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
            mcast_interface: mcast.map(|m| m.parse().unwrap()),
            key: "0123456789abcdef".into(),
            master: false,
            backup: true,
            grace_s: 10,
            max_synced: 0,
        }
    }

    /// Replays, reordering and this box's own messages sent back are refused; a
    /// sender's first hello is told apart from its later ones.
    #[test]
    fn senders_refuse_replays_and_this_boxs_own_messages() {
        let now = Instant::now();
        let mut s = Senders::new(1);
        assert_eq!(s.admit(1, 5), Err(SyncCounter::RejectedOwn));
        assert_eq!(s.admit(2, 5), Ok(()));
        assert!(!s.took(2, 5, false, 0, false, now).first_hello, "records, no hello");
        assert_eq!(s.admit(2, 5), Err(SyncCounter::RejectedReplay));
        assert_eq!(s.admit(2, 4), Err(SyncCounter::RejectedReplay), "reordered");
        assert_eq!(s.admit(2, 6), Ok(()));
        assert!(!s.took(2, 6, true, 0, false, now).first_hello, "a hello of a sender not proven, from elsewhere");
        assert!(s.took(2, 7, true, 0, true, now).first_hello, "its first hello from a peer's own address");
        assert!(!s.took(2, 8, true, 0, true, now).first_hello, "a later hello");
        assert!(!s.took(4, 1, true, 0, false, now).first_hello, "a replayed hello from elsewhere walks nothing");
        assert!(s.took(4, 2, true, 1, false, now).first_hello, "until its sender proves itself");
        assert!(!s.took(4, 3, true, 1, false, now).first_hello, "once");
        assert_eq!(s.admit(2, 8u32.wrapping_add(1 << 31)), Err(SyncCounter::RejectedReplay), "half the space on");
        // The backup role restarts: the old id is still this box's.
        s.renew(3);
        assert_eq!((s.admit(1, 9), s.admit(3, 9)), (Err(SyncCounter::RejectedOwn), Err(SyncCounter::RejectedOwn)));
        for id in 10..10 + MAX_OWN_SENDERS as u32 {
            s.renew(id);
        }
        assert_eq!(s.admit(1, 9), Ok(()), "only the last {MAX_OWN_SENDERS} earlier ids are kept");
        assert_eq!(s.admit(3, 9), Err(SyncCounter::RejectedOwn));
    }

    /// A sender's records are taken once it has echoed this box's current id (an answer
    /// to its hello, or any message sent after hearing it), and from then on, through a
    /// renewal of this box's id too (it is remembered, its numbers guard against
    /// replays); an echo of an id this box had before, or of none, proves nothing.
    #[test]
    fn records_are_taken_from_senders_that_echoed_this_boxs_id() {
        let now = Instant::now();
        let mut s = Senders::new(1);
        assert!(!s.took(2, 1, false, 0, false, now).proven, "no echo");
        s.renew(3);
        assert!(!s.took(2, 2, false, 1, false, now).proven, "an echo of this box's earlier id");
        let t = s.took(2, 3, false, 3, false, now);
        assert!(t.proven && t.newly_proven, "an echo of its current id: {t:?}");
        let t = s.took(2, 4, false, 0, false, now);
        assert!(t.proven && !t.newly_proven, "and every later message of that sender: {t:?}");
        s.renew(5);
        assert!(s.took(2, 5, false, 0, false, now).proven, "through a renewal of this box's id");
        assert!(!s.took(4, 1, false, 0xdead, false, now).proven, "another sender proves nothing for it");
    }

    /// Past the senders remembered, the one heard least recently goes, an unproven one
    /// first; forgetting a proven one heard within [`LIVE`] is told (this box then takes
    /// a new id), one heard longer ago is not (a peer's earlier process: no reason to
    /// change ids, and two boxes full of such would change them in turn for ever).
    #[test]
    fn the_least_recently_heard_sender_is_forgotten_unproven_first() {
        let t0 = Instant::now();
        let later = t0 + LIVE + Duration::from_secs(1);
        let mut s = Senders::new(1);
        let at = |id: u32| t0 + Duration::from_millis(u64::from(id));
        s.took(100, 1, false, 1, false, at(100)); // proven, heard first
        for id in 101..100 + MAX_SENDERS as u32 {
            assert!(!s.took(id, 1, false, 0, false, at(id)).forgot_live);
        }
        assert_eq!(s.admit(101, 1), Err(SyncCounter::RejectedReplay));
        let t = s.took(99, 1, false, 0, false, at(400));
        assert!(!t.forgot_live, "an unproven sender makes room");
        assert_eq!(s.admit(101, 1), Ok(()), "the unproven one heard least recently is forgotten");
        assert_eq!(s.admit(100, 1), Err(SyncCounter::RejectedReplay), "the proven one is kept");
        // Only proven ones left: the one heard least recently goes, told while it is live.
        let mut s = Senders::new(1);
        for id in 200..200 + MAX_SENDERS as u32 {
            s.took(id, 1, false, 1, false, at(id));
        }
        assert!(s.took(199, 1, false, 1, false, at(600)).forgot_live, "a live proven sender forgotten");
        assert_eq!(s.admit(200, 1), Ok(()), "forgotten");
        assert_eq!(s.admit(201, 1), Err(SyncCounter::RejectedReplay));
        assert!(
            !s.took(198, 1, false, 1, false, later).forgot_live,
            "one not heard for {LIVE:?} is gone: nothing told"
        );
    }

    /// ipvsadm's `--start-daemon` / `--stop-daemon`: roles switch at run time; what
    /// disagrees with `[sync]` is refused by name and changes nothing.
    #[test]
    fn roles_switch_at_run_time_and_disagreements_are_refused() {
        let s = SyncShared::new(&conf(&["10.0.0.2:8848"], None));
        let roles = |s: &SyncShared| s.daemons().iter().map(|d| d.role).collect::<Vec<_>>();
        assert_eq!(roles(&s), vec![Backup], "[sync]'s roles at start");
        s.set(Master, true, Some(7), None).expect("start master");
        assert_eq!(roles(&s), vec![Master, Backup]);
        s.set(Backup, false, None, None).expect("stop backup");
        assert_eq!(roles(&s), vec![Master]);
        assert!(!s.runs(BACKUP) && s.runs(MASTER));
        let e = s.set(Backup, true, Some(8), None).unwrap_err();
        assert!(e.contains("--syncid 8") && e.contains("syncid is 7"), "{e}");
        let e = s.set(Backup, true, None, Some("lo")).unwrap_err();
        assert!(e.contains("unicast peers"), "{e}");
        assert_eq!(roles(&s), vec![Master], "refusals change nothing");
        let d = &s.daemons()[0];
        assert_eq!((d.syncid, d.transport.as_str(), d.maxlen), (7, "peers=10.0.0.2:8848", MAX_LEN as u32));

        // Multicast: the interface named must hold [sync]'s interface address.
        let m = SyncShared::new(&conf(&["224.0.0.81:8848"], Some("127.0.0.1")));
        m.set(Backup, true, None, Some("lo")).expect("lo holds 127.0.0.1");
        let e = m.set(Backup, true, None, Some("rvs-no-such-dev")).unwrap_err();
        assert!(e.contains("no such interface"), "{e}");
        assert_eq!(m.daemons()[0].transport, "mcast=224.0.0.81:8848 on 127.0.0.1");

        // A master needs peers to announce to.
        let lonely = SyncShared::new(&conf(&[], None));
        assert!(lonely.set(Master, true, None, None).unwrap_err().contains("no peers"));
    }
}
