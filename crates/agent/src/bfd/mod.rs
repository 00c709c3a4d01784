//! BFD (RFC 5880 asynchronous mode over single-hop UDP, RFC 5881), keepalived's
//! `bfd_instance`: a session with a neighbour that `track_bfd` in a vrrp_instance follows,
//! so that an instance leaves MASTER (or lowers its priority) within milliseconds of the
//! path to the neighbour failing, instead of VRRP's seconds.
//!
//! * [`packet`]: the control packet on the wire;
//! * [`session`]: one session's state machine, pure (time passed in);
//! * [`io`]: the sockets;
//! * here: the [`Demux`] that receives on port 3784 and hands each packet to its session,
//!   and [`run_session`], a session's task.
//!
//! What arrives on port 3784 may be forged. A packet goes to a session only if it passes
//! RFC 5880's checks ([`packet::Repr::parse`]), names the session (its discriminator, or
//! while the session knows none, the neighbour and our address), comes **from the
//! session's neighbour** (stricter than keepalived, which takes any source once the
//! discriminator matches), and arrives with a TTL / hop limit of at least the session's
//! `ttl` less `max_hops` (RFC 5881's GTSM: with IPv4's default `ttl` 255 and `max_hops` 0,
//! only a host on the link can send it; keepalived's IPv6 default hop limit is 64, which a
//! host further away can forge: write `ttl 255` on both sides for IPv6). Everything else
//! is counted in [`DropStats`] and goes no further; a session's queue that is full drops
//! (counted) rather than block the others. While Init or Up, a session also refuses a
//! packet without its discriminator from another than the peer it knows
//! ([`session::Session::accepts`]), so a forger of the neighbour's address must know the
//! discriminators too.

pub mod io;
pub mod packet;
pub mod session;

use crate::keepalived::config::BfdInstance;
use packet::{Diag, Repr, State};
use serde::{Deserialize, Serialize};
use session::{Change, Session, Timers};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Packets received on port 3784 that reached no session, by reason.
#[derive(Debug, Default)]
pub struct DropStats {
    /// Not a valid control packet (length, version, flags, discriminators: see
    /// [`packet::PacketError`]).
    pub invalid: AtomicU64,
    /// No session of ours: unknown discriminator, or not from the session's neighbour.
    pub no_session: AtomicU64,
    /// A TTL / hop limit below the session's minimum (sent from further away than
    /// `max_hops`).
    pub ttl: AtomicU64,
    /// The session's queue was full.
    pub overflow: AtomicU64,
}

/// [`DropStats`] read out, for `rvs-agent status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// See [`DropStats::invalid`].
    pub invalid: u64,
    /// See [`DropStats::no_session`].
    pub no_session: u64,
    /// See [`DropStats::ttl`].
    pub ttl: u64,
    /// See [`DropStats::overflow`].
    pub overflow: u64,
}

impl DropStats {
    /// The counters now.
    pub fn read(&self) -> Drops {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Drops {
            invalid: r(&self.invalid),
            no_session: r(&self.no_session),
            ttl: r(&self.ttl),
            overflow: r(&self.overflow),
        }
    }
}

/// A session as `rvs-agent status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BfdStatus {
    /// The `bfd_instance` name.
    pub name: String,
    /// The neighbour.
    pub neighbor: IpAddr,
    /// The session state.
    pub state: State,
    /// The neighbour's state as it last said.
    pub remote_state: State,
    /// Why the session last went down.
    pub diag: String,
    /// Our discriminator.
    pub local_discr: u32,
    /// The neighbour's (0: not known).
    pub remote_discr: u32,
    /// The interval we send at, milliseconds.
    pub tx_interval_ms: f64,
    /// The time without a packet after which the neighbour is down, milliseconds.
    pub detection_time_ms: f64,
    /// Times the session came Up.
    pub ups: u64,
    /// Packets received (that reached the session).
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Packets refused by the session: without our discriminator, from another than the
    /// peer it knows, while Init or Up (see [`Session::accepts`]).
    #[serde(default)]
    pub ignored: u64,
    /// Why the session cannot send (its socket), if so.
    pub error: Option<String>,
}

/// Where a session's packets go.
struct Route {
    discr: u32,
    neighbor: IpAddr,
    source: Option<IpAddr>,
    /// The lowest TTL / hop limit accepted (0: any).
    min_ttl: u8,
    tx: mpsc::Sender<Repr>,
}

#[derive(Default)]
struct Routes {
    routes: Vec<Route>,
    /// The listening tasks, IPv4 and IPv6 (ended with the demux).
    listeners: [Option<JoinHandle<()>>; 2],
}

/// Receives on port 3784 for every session of the agent and hands each packet to its
/// session; a family's socket is opened with its first session and stays open with the
/// demux (a session restarted by a reload finds it there: closing it with the last
/// session would race the new session's bind).
#[derive(Default)]
pub struct Demux {
    routes: Mutex<Routes>,
    /// What was dropped.
    pub drops: DropStats,
}

/// A session's place in the [`Demux`], given up when dropped.
pub struct Registration {
    demux: Arc<Demux>,
    discr: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut r = self.demux.routes.lock().unwrap_or_else(|e| e.into_inner());
        r.routes.retain(|x| x.discr != self.discr);
    }
}

impl Drop for Demux {
    fn drop(&mut self) {
        let r = self.routes.get_mut().unwrap_or_else(|e| e.into_inner());
        r.listeners.iter_mut().filter_map(Option::take).for_each(|t| t.abort());
    }
}

impl Demux {
    /// A demux without sessions (no socket open yet).
    pub fn new() -> Arc<Demux> {
        Arc::new(Demux::default())
    }

    /// Registers a session of `inst` under a new discriminator (returned with the
    /// registration), its packets to go to `tx`; opens the family's socket if it is the
    /// family's first session. Must be called inside a tokio runtime.
    pub fn register(
        self: &Arc<Self>,
        inst: &BfdInstance,
        tx: mpsc::Sender<Repr>,
    ) -> std::io::Result<(u32, Registration)> {
        let mut r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let v6 = inst.neighbor.is_ipv6();
        let slot = &mut r.listeners[usize::from(v6)];
        if slot.as_ref().is_none_or(|t| t.is_finished()) {
            let l = io::Listener::open(v6)?;
            *slot = Some(tokio::spawn(listen(l, Arc::downgrade(self))));
        }
        let discr = loop {
            let d = crate::random::u64() as u32;
            if d != 0 && !r.routes.iter().any(|x| x.discr == d) {
                break d;
            }
        };
        let min_ttl = match inst.max_hops {
            Some(h) => inst.ttl.saturating_sub(h),
            None => 0,
        };
        r.routes.push(Route { discr, neighbor: inst.neighbor, source: inst.source, min_ttl, tx });
        Ok((discr, Registration { demux: self.clone(), discr }))
    }

    /// Hands a received datagram to its session, or counts why not.
    fn dispatch(&self, d: &io::Datagram, bytes: &[u8]) {
        let r = match Repr::parse(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.drops.invalid.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(src = %d.src, "BFD: invalid packet ({e})");
                return;
            }
        };
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let route = match r.your_discr {
            0 => routes.routes.iter().find(|x| x.neighbor == d.src && x.source.is_none_or(|s| s == d.dst)),
            discr => routes.routes.iter().find(|x| x.discr == discr),
        };
        let Some(route) = route.filter(|x| x.neighbor == d.src) else {
            self.drops.no_session.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(src = %d.src, your_discr = r.your_discr, "BFD: packet for no session of ours");
            return;
        };
        if d.ttl != 0 && d.ttl < route.min_ttl {
            self.drops.ttl.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(src = %d.src, ttl = d.ttl, min = route.min_ttl, "BFD: packet from too far away");
            return;
        }
        if route.tx.try_send(r).is_err() {
            self.drops.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Receives on `l` until the demux is gone.
async fn listen(l: io::Listener, demux: std::sync::Weak<Demux>) {
    let mut buf = [0u8; 256];
    loop {
        match l.recv(&mut buf).await {
            Ok(d) => {
                let Some(demux) = demux.upgrade() else { return };
                // A datagram longer than the buffer is cut; its length says so.
                let bytes = &buf[..d.len.min(buf.len())];
                if d.len > buf.len() {
                    demux.drops.invalid.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                demux.dispatch(&d, bytes);
            }
            Err(e) => {
                tracing::warn!("BFD: receive: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// How long a session whose socket could not be opened waits before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// The session's timers from its `bfd_instance`.
fn timers(inst: &BfdInstance) -> Timers {
    Timers {
        min_rx_us: inst.min_rx_us,
        min_tx_us: inst.min_tx_us,
        idle_tx_us: inst.idle_tx_us,
        multiplier: inst.multiplier,
        passive: inst.passive,
    }
}

/// Where a session tells what it does.
pub struct Outputs {
    /// Whether it is Up: what `track_bfd` follows (false until it first comes Up).
    pub up: Arc<watch::Sender<bool>>,
    /// Its last change, what `BFD_CHECK` follows (none before the first).
    pub event: Arc<watch::Sender<Option<bool>>>,
    /// Its state, for `rvs-agent status`.
    pub status: watch::Sender<BfdStatus>,
}

/// Runs `inst`'s session until aborted, telling `out` what it does.
pub async fn run_session(inst: BfdInstance, demux: Arc<Demux>, out: Outputs) {
    let Outputs { up, event, status } = out;
    let name = inst.name.clone();
    let (tx, mut rx) = mpsc::channel(64);
    let mut error_logged = false;
    // The sockets: retried every RETRY (an address may appear later).
    let (discr, _registration, sock) = loop {
        let opened = demux.register(&inst, tx.clone()).and_then(|(discr, reg)| {
            let seed = crate::random::u64();
            io::sender(inst.neighbor, inst.source, inst.ttl, seed).map(|s| (discr, reg, s))
        });
        match opened {
            Ok(x) => break x,
            Err(e) => {
                if !error_logged {
                    tracing::error!(bfd_instance = %name, "BFD socket: {e} (retrying every {RETRY:?}; the session is down)");
                    error_logged = true;
                }
                status.send_modify(|s| s.error = Some(e.to_string()));
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    if error_logged {
        tracing::info!(bfd_instance = %name, "BFD socket open");
    }
    let mut s = Session::new(timers(&inst), discr, std::time::Instant::now());
    let (mut ins, mut outs, mut ups, mut ignored) = (0u64, 0u64, 0u64, 0u64);
    let publish = |s: &Session, (ups, ins, outs, ignored): (u64, u64, u64, u64)| {
        status.send_replace(BfdStatus {
            name: name.clone(),
            neighbor: inst.neighbor,
            state: s.state(),
            remote_state: s.remote_state(),
            diag: s.diag().name().to_string(),
            local_discr: s.local_discr(),
            remote_discr: s.remote_discr(),
            tx_interval_ms: s.tx_interval().as_secs_f64() * 1e3,
            detection_time_ms: s.detection_time().as_secs_f64() * 1e3,
            ups,
            packets_in: ins,
            packets_out: outs,
            ignored,
            error: None,
        });
    };
    publish(&s, (ups, ins, outs, ignored));
    let mut send_error_logged = false;
    loop {
        // A packet, or the next deadline.
        let wake = s.next_deadline().map(tokio::time::Instant::from_std);
        let first = tokio::select! {
            r = rx.recv() => match r {
                Some(r) => Some(r),
                None => return,
            },
            _ = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(w).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        let now = std::time::Instant::now();
        let mut changes = Vec::new();
        let mut answer = false;
        // Everything queued, then the timers, then what is to be sent.
        for r in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            if !s.accepts(&r) {
                ignored += 1;
                continue;
            }
            ins += 1;
            let (c, a) = s.receive(&r, now);
            changes.extend(c);
            answer |= a;
        }
        changes.extend(s.poll_timers(now));
        while answer || s.tx_due(now) {
            answer = false;
            let p = s.send(now, crate::random::fraction());
            match sock.send(&p.emit()).await {
                Ok(_) => outs += 1,
                // The neighbour unreachable for now (ICMP errors come back on a connected
                // socket): the session's timers decide, as for a lost packet.
                Err(e) if !send_error_logged => {
                    tracing::warn!(bfd_instance = %name, "BFD send: {e}");
                    send_error_logged = true;
                }
                Err(_) => {}
            }
        }
        for c in changes {
            match c {
                Change::Up => {
                    ups += 1;
                    send_error_logged = false;
                    tracing::info!(bfd_instance = %name, "BFD session Up");
                    up.send_replace(true);
                    event.send_replace(Some(true));
                }
                Change::Down(d) => {
                    let remote = s.remote_diag().name();
                    tracing::warn!(bfd_instance = %name, diag = d.name(), remote_diag = remote, "BFD session Down");
                    up.send_replace(false);
                    event.send_replace(Some(false));
                }
            }
        }
        publish(&s, (ups, ins, outs, ignored));
    }
}

/// A new session's status before its first turn.
pub fn initial_status(inst: &BfdInstance) -> BfdStatus {
    BfdStatus {
        name: inst.name.clone(),
        neighbor: inst.neighbor,
        state: State::Down,
        remote_state: State::Down,
        diag: Diag::NONE.name().to_string(),
        local_discr: 0,
        remote_discr: 0,
        tx_interval_ms: f64::from(inst.idle_tx_us) / 1e3,
        detection_time_ms: 0.0,
        ups: 0,
        packets_in: 0,
        packets_out: 0,
        ignored: 0,
        error: None,
    }
}

/// A `bfd_instance to_peer { neighbor_ip 192.0.2.2 }` with keepalived's defaults, for
/// tests.
#[cfg(test)]
pub(crate) fn bfd_instance() -> BfdInstance {
    let loc = crate::keepalived::diag::Loc { file: "t.conf".into(), line: 1 };
    BfdInstance::new("to_peer".into(), "192.0.2.2".parse().unwrap(), loc)
}
