//! From configuration and checker transitions to dataplane state: the services to load
//! (one per virtual server, or per member of its group), and what a real server going down
//! or up changes: weight 0 with `inhibit_on_failure`, else removal; quorum with hysteresis
//! switching to the sorry server (kept at weight 0 while unused with
//! `sorry_server_inhibit`); notify_up/down and quorum_up/down scripts.
//!
//! A real server starts up (in the service at its weight until its checks fail), except
//! under its virtual server's `alpha` ([`alpha_starts_down`]): as keepalived's alpha mode
//! (`validate_check_config` at start, `check_new_rs_state` on a reload), one with health
//! checkers starts down, out of the service or at weight 0 with `inhibit_on_failure`
//! (keepalived's `init_service_rs`), and its checker brings it in once its checks pass. A
//! reload carries over the health of the servers it keeps, alpha or not; only those it
//! adds start down. The first failing round of a server alpha started down runs its
//! `notify_down` ([`Pool::apply`]), as keepalived's first failed check.
//!
//! Quorum at start as keepalived's ([`Pool::quorum_notices`]): every quorum starts down
//! and is up at once when the live weight reaches quorum + hysteresis (`quorum_up` runs);
//! below that, with a sorry server, `quorum_down` runs.
//!
//! Under a virtual server's `omega`, the agent's shutdown runs its down notifiers
//! ([`Pool::omega_notices`]), as keepalived's on stopping.

use super::{rs_checks, RsChecks, RsId, Transition};
use crate::agent::mail::Alert;
use crate::dataplane::{Dataplane, DataplaneError, LocalAddr, Proto, RealServer, Service, ServiceKey};
use crate::keepalived::config::{
    AddressGroupKind, CheckKind, Config, GroupFwmark, RealServerConf, Script, VirtualServer, VsTarget,
};
use crate::reload::Change;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

/// One real server's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RsState {
    /// Its checker's id (kept across reloads while the server stays).
    pub id: RsId,
    /// Address.
    pub addr: SocketAddr,
    /// Configured weight.
    pub weight: u32,
    /// Configured connection thresholds (upper, lower).
    pub thresholds: (u32, u32),
    /// How its connections are forwarded.
    pub fwd: fnat::types::FwdMode,
    /// Weight 0 instead of removal on failure.
    pub inhibit: bool,
    /// Current health.
    pub up: bool,
    /// Script run on up.
    pub notify_up: Option<Script>,
    /// Script run on down.
    pub notify_down: Option<Script>,
    /// Why the last health change happened (none yet: up since start; [`ALPHA_REASON`]:
    /// down since it was added under `alpha`, its checks not passed yet).
    pub reason: Option<String>,
    /// The change of weight FILE_CHECKs ask for (0 without them).
    pub weight_delta: i64,
    /// Started down under `alpha` and no check result yet: its first failing round runs
    /// its `notify_down` (keepalived's `!has_run` in `update_svr_checker_state`).
    #[serde(skip)]
    pub alpha_pending: bool,
    /// Its health changes are mailed (`smtp_alert`, resolved).
    #[serde(skip)]
    pub smtp_alert: bool,
    /// Down by a check that mails nothing (FILE_CHECK): its coming back is not mailed.
    #[serde(skip)]
    pub silent_down: bool,
}

impl RsState {
    /// The weight while up: the configured one plus FILE_CHECK's change, at least 0.
    pub fn effective_weight(&self) -> u32 {
        (i64::from(self.weight) + self.weight_delta).clamp(0, i64::from(u32::MAX)) as u32
    }

    /// The real server as the dataplane holds it while up.
    fn dataplane(&self) -> RealServer {
        RealServer {
            addr: self.addr,
            weight: self.effective_weight(),
            upper: self.thresholds.0,
            lower: self.thresholds.1,
            fwd: self.fwd,
        }
    }
}

/// One virtual server's live state (possibly several dataplane services, for a group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VsState {
    /// Its name in the log and in metrics ([`vs_label`]).
    pub name: String,
    /// The dataplane services it stands for.
    pub keys: Vec<ServiceKey>,
    /// Real servers.
    pub rs: Vec<RsState>,
    /// `quorum`.
    pub quorum: u32,
    /// `hysteresis`.
    pub hysteresis: u32,
    /// `sorry_server`.
    pub sorry: Option<SocketAddr>,
    /// The virtual server's `lb_kind`: how the sorry server is reached.
    pub sorry_fwd: fnat::types::FwdMode,
    /// `sorry_server_inhibit`: the sorry server stays in the services, at weight 0 while
    /// the quorum holds ([`VsState::sorry_inhibited`]).
    pub sorry_inhibit: bool,
    /// `quorum_up` script.
    pub quorum_up: Option<Script>,
    /// `quorum_down` script.
    pub quorum_down: Option<Script>,
    /// Whether the quorum is currently met.
    pub quorum_ok: bool,
    /// Its quorum changes are mailed (`smtp_alert`, resolved).
    #[serde(skip)]
    pub smtp_alert: bool,
}

impl VsState {
    fn live_weight(&self) -> u64 {
        self.rs.iter().filter(|r| r.up).map(|r| u64::from(r.effective_weight())).sum()
    }

    /// The sorry server kept at weight 0 rather than removed: `sorry_server_inhibit`,
    /// unless the sorry server is one of the real servers (keepalived's
    /// `s_svr_duplicates_rs`: that real server's own `inhibit_on_failure` then rules).
    pub fn sorry_inhibited(&self) -> Option<SocketAddr> {
        self.sorry.filter(|s| self.sorry_inhibit && !self.rs.iter().any(|r| r.addr == *s))
    }
}

/// The weight of the sorry server while in use (keepalived's default real server weight).
const SORRY_WEIGHT: u32 = 1;

/// Why a real server started down under `alpha` is down until its checks first pass (the
/// `reason` of its [`RsState`], shown by `status`).
pub const ALPHA_REASON: &str = "alpha: down until its checks pass";

/// Whether `r`, new to the pool (at start, or added by a reload), starts down: its virtual
/// server has `alpha` and `r` has a checker whose state is not known at once. keepalived
/// clears alpha for FILE_CHECK (`add_rs_to_track_files`: the file says at once), so a
/// server checked by FILE_CHECKs only starts up, as without alpha; one without checkers
/// is always up.
pub fn alpha_starts_down(v: &VirtualServer, r: &RealServerConf) -> bool {
    v.alpha && r.checks.iter().any(|c| !matches!(c.kind, CheckKind::File { .. }))
}

/// What identifies a virtual server across reloads: protocol and `IP PORT`, group name
/// or fwmark (the protocol of a fwmark, or of a group of fwmarks only, is always TCP, the
/// key's: the parser sets it, so writing another changes nothing).
pub type VsIdent = (Proto, VsTarget);

/// A virtual server's identity for the log: `tcp 192.0.2.1:80`, `tcp group NAME`,
/// `fwmark 1` (`fwmark 1 IPv6`: a fwmark service takes TCP and UDP).
pub fn vs_label(id: &VsIdent) -> String {
    let proto = match id.0 {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    match &id.1 {
        VsTarget::Addr(a) => format!("{proto} {a}"),
        VsTarget::Group(g) => format!("{proto} group {g}"),
        VsTarget::Fwmark { mark, v6: false } => format!("fwmark {mark}"),
        VsTarget::Fwmark { mark, v6: true } => format!("fwmark {mark} IPv6"),
    }
}

/// The dataplane services a virtual server stands for: its `IP PORT`; each member of its
/// group (the first group of the name, as keepalived's `ipvs_get_group_by_name`), then
/// each fwmark entry of the group (of the entry's family, else the virtual server's, else
/// the group's, else IPv4: keepalived's `link_vsg_to_vs` and `ipvs_group_cmd`); or its
/// fwmark.
pub fn vs_keys(cfg: &Config, v: &VirtualServer) -> Vec<ServiceKey> {
    match &v.target {
        VsTarget::Addr(a) => vec![ServiceKey::new(v.protocol, a.ip(), a.port())],
        VsTarget::Group(g) => {
            let Some(g) = cfg.vs_group(g) else { return Vec::new() };
            let members = g.members.iter().map(|a| ServiceKey::new(v.protocol, a.ip(), a.port()));
            let v6 = |f: &GroupFwmark| f.v6.or(v.ipv6).or(g.family()).unwrap_or(false);
            let fwmarks = g.fwmarks.iter().map(|f| ServiceKey::of_fwmark(f.mark, v6(f)));
            members.chain(fwmarks).collect()
        }
        VsTarget::Fwmark { mark, v6 } => vec![ServiceKey::of_fwmark(*mark, *v6)],
    }
}

/// What a health change asks for besides the dataplane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notices {
    /// Scripts to run (notify_up/down, quorum_up/down), in order.
    pub scripts: Vec<Script>,
    /// Lines for keepalived's `lvs_notify_fifo` / `notify_fifo` (see
    /// [`crate::agent::fifo`]), in order.
    pub fifo: Vec<String>,
    /// Mail alerts (see [`crate::agent::mail`]), in order.
    pub mail: Vec<Alert>,
}

impl Notices {
    /// `other`'s scripts, lines and mails after these.
    pub fn append(&mut self, other: Notices) {
        self.scripts.extend(other.scripts);
        self.fifo.extend(other.fifo);
        self.mail.extend(other.mail);
    }

    /// A real server's change: its script, its FIFO line, its mail (when it has
    /// `smtp_alert` and `body`).
    fn rs(&mut self, m: &VsMeta, rs: &RsState, up: bool, body: Option<&str>) {
        self.scripts.extend(if up { rs.notify_up.clone() } else { rs.notify_down.clone() });
        self.fifo.push(format!("RS {} {}\n", fifo_rs(m, rs.addr), if up { "UP" } else { "DOWN" }));
        if let Some(body) = body.filter(|_| rs.smtp_alert) {
            let trio = trio(proto_word(m), &rs.addr.ip().to_string(), rs.addr.port());
            self.mail.push(Alert::real_server(&trio, &fifo_vs(m), up, body));
        }
    }

    /// A virtual server's quorum: its script, its FIFO line, its mail (with `smtp_alert`;
    /// `body` is keepalived's, see [`quorum_body`]).
    fn vs(&mut self, m: &VsMeta, vs: &VsState, up: bool, body: impl FnOnce() -> String) {
        self.scripts.extend(if up { vs.quorum_up.clone() } else { vs.quorum_down.clone() });
        self.fifo.push(format!("VS {} {}\n", fifo_vs(m), if up { "UP" } else { "DOWN" }));
        if vs.smtp_alert {
            self.mail.push(Alert::virtual_server(&fifo_vs(m), up, body()));
        }
    }
}

/// keepalived's quorum mail body (`do_vs_notifies`): `=> WHAT Q+H=THRESHOLD <= LIVE <=`,
/// the threshold being quorum + hysteresis from a quorum down (and at start), quorum -
/// hysteresis from one up; keepalived prints `+` both ways.
fn quorum_body(what: &str, vs: &VsState, was_up: bool, live: u64) -> String {
    let (q, h) = (i64::from(vs.quorum), i64::from(vs.hysteresis));
    let threshold = if was_up { q - h } else { q + h };
    format!("=> {what} {q}+{h}={threshold} <= {live} <=")
}

/// keepalived's body of the mails sent at shutdown under `omega`.
const SHUTTING_DOWN: &str = "=> Shutting down <=";

/// keepalived's `[ADDR]:PROTO:PORT` (`inet_sockaddrtotrio`).
fn trio(proto: &str, addr: &str, port: u16) -> String {
    format!("[{addr}]:{proto}:{port}")
}

/// The protocol in keepalived's `[ADDR]:PROTO:PORT` of a virtual server's servers:
/// `none` for a fwmark or a group of fwmarks only (keepalived drops their protocol,
/// `validate_check_config`).
fn proto_word(m: &VsMeta) -> &'static str {
    match (m.fwmark_only, m.ident.0) {
        (true, _) => "none",
        (_, Proto::Tcp) => "tcp",
        (_, Proto::Udp) => "udp",
    }
}

/// A virtual server in keepalived's FIFO lines (`format_vs`): `[VIP]:PROTO:PORT`,
/// `[GROUP]:0` for `virtual_server group GROUP` (keepalived prints its unset port), or
/// `FWM MARK`.
fn fifo_vs(m: &VsMeta) -> String {
    match &m.ident.1 {
        VsTarget::Addr(a) => trio(proto_word(m), &a.ip().to_string(), a.port()),
        VsTarget::Group(g) => format!("[{g}]:0"),
        VsTarget::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

/// A real server and its virtual server in keepalived's FIFO lines (`RS` lines:
/// `[RIP]:PROTO:PORT [VIP]:PROTO:PORT`; a fwmark's: `[RIP]:none:PORT FWM MARK`; a group
/// of fwmarks only: `[RIP]:none:PORT [GROUP]:0`).
fn fifo_rs(m: &VsMeta, rs: SocketAddr) -> String {
    format!("{} {}", trio(proto_word(m), &rs.ip().to_string(), rs.port()), fifo_vs(m))
}

/// What the pool keeps of a virtual server's configuration besides its live state.
#[derive(Debug, Clone)]
struct VsMeta {
    ident: VsIdent,
    /// Fwmark services only (a `virtual_server fwmark`, or a group of fwmarks only): its
    /// servers' protocol is `none` in keepalived's FIFO lines and mails.
    fwmark_only: bool,
    /// Its services without real servers.
    templates: Vec<Service>,
    /// Each real server's checker id and checks (parallel to [`VsState::rs`]).
    rs: Vec<RsChecks>,
    /// `omega`: its down notifiers run at shutdown ([`Pool::omega_notices`]).
    omega: bool,
}

/// A checker started, stopped or restarted by a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerChange {
    /// The virtual server ([`vs_label`]).
    pub vs: String,
    /// The real server.
    pub rs: SocketAddr,
    /// Added: started; Removed: stopped; Changed: restarted (its checks, delay_loop,
    /// warmup or ha_suspend changed).
    pub change: Change,
}

/// The checkers to stop and start to go from one pool to the next.
#[derive(Debug, Clone, Default)]
pub struct CheckerPlan {
    /// Checker ids to stop (removed real servers, changed checks).
    pub stop: Vec<RsId>,
    /// Checkers to start, with the server's current health.
    pub start: Vec<(RsChecks, bool)>,
    /// What changed, for the log.
    pub changes: Vec<CheckerChange>,
}

/// All virtual servers, with the map from checker ids to real servers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pool {
    /// Virtual servers in configuration order.
    pub vs: Vec<VsState>,
    #[serde(skip)]
    ids: BTreeMap<RsId, (usize, usize)>,
    #[serde(skip)]
    meta: Vec<VsMeta>,
    #[serde(skip)]
    next_id: RsId,
    /// keepalived's `rs_init_notifies`: a real server that starts up (at start, or added
    /// by a reload) runs its `notify_up` and writes `RS ... UP` ([`Pool::quorum_notices`]).
    #[serde(skip)]
    rs_init_notifies: bool,
}

impl Pool {
    /// Builds the pool, the services to load and the checks to run, each with the health
    /// its server starts from: up, except a server with checkers under `alpha`
    /// ([`alpha_starts_down`]), which the services leave out (weight 0 with
    /// `inhibit_on_failure`) until its checker reports it up.
    pub fn from_config(cfg: &Config) -> (Pool, Vec<Service>, Vec<(RsChecks, bool)>) {
        let (pool, plan) = Pool::build(cfg, None);
        let services = pool.services();
        (pool, services, plan.start)
    }

    /// The pool for a new configuration, carrying over the health of the real servers it
    /// keeps (same virtual server, same address; their checker ids are kept), and the
    /// checkers to stop and start: for removed and added real servers, and for those whose
    /// checks changed, or their delay_loop, warmup or `ha_suspend` (restarted from the
    /// current health). Unchanged checkers keep running.
    /// An added server starts up, or down under `alpha` ([`alpha_starts_down`]), as at
    /// start; a kept one keeps its health whatever `alpha` says (keepalived's
    /// `clear_diff_rs`). A kept server whose checker keeps running also keeps the weight
    /// change its FILE_CHECKs last reported (the checker reports only a change of it);
    /// one whose checker restarts, or an added one, starts from none until its checker's
    /// first round.
    pub fn reload(&self, cfg: &Config) -> (Pool, CheckerPlan) {
        Pool::build(cfg, Some(self))
    }

    fn build(cfg: &Config, old: Option<&Pool>) -> (Pool, CheckerPlan) {
        let mut pool = Pool {
            next_id: old.map_or(0, |o| o.next_id),
            rs_init_notifies: cfg.global_defs.rs_init_notifies,
            ..Pool::default()
        };
        let mut plan = CheckerPlan::default();
        let mut old_vs: HashMap<&VsIdent, usize> = HashMap::new();
        if let Some(o) = old {
            for (i, m) in o.meta.iter().enumerate() {
                old_vs.entry(&m.ident).or_insert(i);
            }
        }
        let mut kept: HashSet<RsId> = HashSet::new();
        // Mail alerts only where mail can be sent (a real server's default is on).
        let mails = cfg.global_defs.smtp.enabled();
        // Addresses VRRP moves: a local address among them moves with the VIPs.
        let vrrp: HashSet<IpAddr> = cfg
            .vrrp_instances
            .iter()
            .flat_map(|i| i.virtual_ipaddress.iter().chain(&i.virtual_ipaddress_excluded))
            .map(|v| v.addr.addr())
            .collect();
        for v in &cfg.virtual_servers {
            let keys = vs_keys(cfg, v);
            // Its addresses, for ha_suspend (a fwmark has none; the parser clears it).
            let addrs: Vec<IpAddr> = keys.iter().filter(|k| !k.is_fwmark()).map(|k| k.vip).collect();
            let local_addrs: Vec<LocalAddr> = v
                .laddr_group_name
                .as_ref()
                .and_then(|n| cfg.local_address_groups.iter().find(|g| &g.name == n))
                .map(|g| {
                    g.addrs
                        .iter()
                        .map(|(a, dev)| LocalAddr {
                            addr: *a,
                            port_name: dev.clone().unwrap_or_default(),
                            moves_with_vip: vrrp.contains(a),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let prefixes = |name: &Option<String>, kind: AddressGroupKind| -> Vec<ipnet::IpNet> {
                name.as_ref()
                    .and_then(|n| cfg.address_groups.iter().find(|g| g.kind == kind && &g.name == n))
                    .map(|g| g.prefixes.clone())
                    .unwrap_or_default()
            };
            let deny = prefixes(&v.daddr_group_name, AddressGroupKind::Deny);
            let allow = prefixes(&v.waddr_group_name, AddressGroupKind::Allow);
            let ident: VsIdent = (v.protocol, v.target.clone());
            let label = vs_label(&ident);
            let prev = old.and_then(|o| old_vs.get(&ident).map(|&i| (o, i)));
            let vs_index = pool.vs.len();
            let mut rs = Vec::new();
            let mut rs_meta = Vec::new();
            for (ri, r) in v.real_servers.iter().enumerate() {
                let mut fresh = rs_checks(0, r, v.delay_loop, v.proxy_protocol);
                // ha_suspend: the checker runs while one of the virtual server's
                // addresses is held (keepalived's `addr_matches`: the VIP or a group member).
                fresh.ha_suspend = v.ha_suspend.then(|| addrs.clone());
                let found = prev.and_then(|(o, i)| {
                    o.vs[i]
                        .rs
                        .iter()
                        .zip(&o.meta[i].rs)
                        .find(|(st, c)| st.addr == r.addr && !kept.contains(&c.id))
                        .map(|(st, c)| (st.clone(), c.clone()))
                });
                let silent_down = found.as_ref().is_some_and(|(st, _)| st.silent_down);
                let (id, up, reason, weight_delta, alpha_pending) = match found {
                    Some((st, c)) => {
                        kept.insert(c.id);
                        if (RsChecks { id: c.id, ..fresh.clone() }) != c {
                            plan.stop.push(c.id);
                            plan.start.push((RsChecks { id: c.id, ..fresh.clone() }, st.up));
                            plan.changes.push(CheckerChange { vs: label.clone(), rs: r.addr, change: Change::Changed });
                            // Restarted: its checker starts from no weight change and
                            // reports the one its FILE_CHECKs ask for on its first round.
                            (c.id, st.up, st.reason, 0, st.alpha_pending)
                        } else {
                            // Kept running: it reports a weight change only when the
                            // change moves, so the one it last reported stays.
                            (c.id, st.up, st.reason, st.weight_delta, st.alpha_pending)
                        }
                    }
                    None => {
                        let id = pool.next_id;
                        pool.next_id += 1;
                        let up = !alpha_starts_down(v, r);
                        plan.start.push((RsChecks { id, ..fresh.clone() }, up));
                        if old.is_some() {
                            plan.changes.push(CheckerChange { vs: label.clone(), rs: r.addr, change: Change::Added });
                        }
                        (id, up, (!up).then(|| ALPHA_REASON.to_string()), 0, !up)
                    }
                };
                pool.ids.insert(id, (vs_index, ri));
                rs_meta.push(RsChecks { id, ..fresh });
                rs.push(RsState {
                    id,
                    addr: r.addr,
                    weight: r.weight,
                    thresholds: (r.upper, r.lower),
                    fwd: r.lb_kind,
                    inhibit: r.inhibit_on_failure,
                    up,
                    notify_up: r.notify_up.clone(),
                    notify_down: r.notify_down.clone(),
                    reason,
                    weight_delta,
                    alpha_pending,
                    smtp_alert: mails && cfg.global_defs.smtp.checker_alert(r.smtp_alert, true),
                    silent_down,
                });
            }
            let templates = keys
                .iter()
                .map(|k| Service {
                    key: *k,
                    scheduler: v.lb_algo.clone(),
                    persistence_timeout: v.persistence_timeout,
                    persistence_granularity: v.persistence_granularity,
                    syn_proxy: v.syn_proxy,
                    proxy_protocol: v.proxy_protocol,
                    sched_flags: v.sched_flags,
                    deny: deny.clone(),
                    allow: allow.clone(),
                    conn_timeout: v.establish_timeout,
                    dest_check: v.dest_check,
                    expire_quiescent: v.expire_quiescent_conn,
                    ops: v.ops,
                    local_addrs: local_addrs.clone(),
                    real_servers: Vec::new(),
                })
                .collect();
            let mut state = VsState {
                name: label.clone(),
                keys,
                rs,
                quorum: v.quorum,
                hysteresis: v.hysteresis,
                sorry: v.sorry_server,
                sorry_fwd: v.lb_kind,
                sorry_inhibit: v.sorry_server_inhibit,
                quorum_up: v.quorum_up.clone(),
                quorum_down: v.quorum_down.clone(),
                quorum_ok: true,
                smtp_alert: mails && cfg.global_defs.smtp.checker_alert(v.smtp_alert, false),
            };
            let live = state.live_weight();
            let (q, h) = (u64::from(state.quorum), u64::from(state.hysteresis));
            state.quorum_ok = match prev {
                // Kept: the quorum moves only past the hysteresis, as on a health change.
                Some((o, i)) if o.vs[i].quorum_ok => live >= q.saturating_sub(h),
                // New: keepalived starts every quorum down (`set_quorum_states` before any
                // server is alive) and gains it past the hysteresis (`update_quorum_state`
                // from `init_service_vs`).
                _ => live >= q + h,
            };
            let fwmark_only = !state.keys.is_empty() && state.keys.iter().all(ServiceKey::is_fwmark);
            pool.vs.push(state);
            pool.meta.push(VsMeta { ident, fwmark_only, templates, rs: rs_meta, omega: v.omega });
        }
        if let Some(o) = old {
            for (vi, m) in o.meta.iter().enumerate() {
                for (c, st) in m.rs.iter().zip(&o.vs[vi].rs) {
                    if !kept.contains(&c.id) {
                        plan.stop.push(c.id);
                        plan.changes.push(CheckerChange {
                            vs: vs_label(&m.ident),
                            rs: st.addr,
                            change: Change::Removed,
                        });
                    }
                }
            }
        }
        (pool, plan)
    }

    /// The services as the dataplane should hold them now: each real server with its
    /// configured weight while up, weight 0 while down with `inhibit_on_failure` (absent
    /// while down without), and the sorry server (weight 1) while the quorum is lost;
    /// with `sorry_server_inhibit`, the sorry server at weight 0 while the quorum holds
    /// (keepalived's `init_service_vs` adds it so). A DR or TUN server has each service's
    /// port ([`ServiceKey::rs_addr`]: a group member's own, 0 in a fwmark service), a NAT
    /// or FullNAT one the port written.
    pub fn services(&self) -> Vec<Service> {
        let mut out = Vec::new();
        for (vs, m) in self.vs.iter().zip(&self.meta) {
            let mut rs: Vec<RealServer> = vs
                .rs
                .iter()
                .filter(|r| r.up || r.inhibit)
                .map(|r| RealServer { weight: if r.up { r.effective_weight() } else { 0 }, ..r.dataplane() })
                .collect();
            if let (false, Some(s)) = (vs.quorum_ok, vs.sorry) {
                if !rs.iter().any(|r| r.addr == s) {
                    rs.push(RealServer { fwd: vs.sorry_fwd, ..RealServer::new(s, SORRY_WEIGHT) });
                }
            } else if let Some(s) = vs.sorry_inhibited() {
                rs.push(RealServer { fwd: vs.sorry_fwd, ..RealServer::new(s, 0) });
            }
            for t in &m.templates {
                let real_servers =
                    rs.iter().map(|r| RealServer { addr: t.key.rs_addr(r.addr, r.fwd), ..r.clone() }).collect();
                out.push(Service { real_servers, ..t.clone() });
            }
        }
        out
    }

    /// The quorum notifiers a start (`old` none) or a reload (`old`: the pool before it)
    /// runs, as keepalived's `init_service_vs` -> `update_quorum_state(vs, init)` (2.2.7's
    /// `check/ipwrapper.c`), in configuration order. A virtual server new to the pool
    /// starts with its quorum down: its quorum met at once ([`VsState::quorum_ok`], live
    /// weight at least quorum + hysteresis) runs its `quorum_up` and writes `VS ... UP`
    /// ("Starting with quorum up"); not met, with a `sorry_server`, its `quorum_down` and
    /// `VS ... DOWN` ("Starting with quorum down", the sorry server added); not met
    /// without one, nothing. A virtual server a reload keeps runs the notifier of a
    /// quorum the new configuration gains or loses, and `quorum_down` again when it stays
    /// down and gets another sorry server. With `rs_init_notifies`, each virtual server's
    /// real servers that start up (up and new: at start, or added by the reload) run
    /// their `notify_up` and write `RS ... UP` first (keepalived's `init_service_rs`).
    pub fn quorum_notices(&self, old: Option<&Pool>) -> Notices {
        let mut out = Notices::default();
        for (vs, m) in self.vs.iter().zip(&self.meta) {
            let new = |rs: &&RsState| old.is_none_or(|o| !o.ids.contains_key(&rs.id));
            for rs in vs.rs.iter().filter(|r| self.rs_init_notifies && r.up).filter(new) {
                out.rs(m, rs, true, None);
            }
            let before = old.and_then(|o| o.meta.iter().position(|x| x.ident == m.ident).map(|i| &o.vs[i]));
            let up = match before {
                None => Some(vs.quorum_ok).filter(|&ok| ok || vs.sorry.is_some()),
                Some(b) if b.quorum_ok != vs.quorum_ok => Some(vs.quorum_ok),
                Some(b) if !vs.quorum_ok && vs.sorry.is_some() && b.sorry != vs.sorry => Some(false),
                Some(_) => None,
            };
            let Some(up) = up else { continue };
            // A reload runs keepalived's init_services again: "Starting" either way.
            let what = if up { "Starting with quorum up" } else { "Starting with quorum down" };
            tracing::info!(
                vs = %fifo_vs(m),
                live = vs.live_weight(),
                quorum = vs.quorum,
                hysteresis = vs.hysteresis,
                "{} with its quorum {}",
                if before.is_some() { "reloaded" } else { "starting" },
                if up { "up" } else { "down" }
            );
            let was_up = before.is_some_and(|b| b.quorum_ok);
            out.vs(m, vs, up, || quorum_body(what, vs, was_up, vs.live_weight()));
        }
        out
    }

    /// What the agent's shutdown runs under `omega`, as keepalived's checker does on
    /// stopping (2.2.7's `check/ipwrapper.c`: `clear_services` -> `clear_service_vs` ->
    /// `clear_service_rs` and `update_vs_notifies`): for each virtual server with `omega`,
    /// in configuration order, each real server that is up (keepalived's `alive`; one down,
    /// inhibited or not, or not yet up under `alpha`, gets nothing), in order, its
    /// `notify_down` and `RS ... DOWN` line (`do_rs_notifies`); then the virtual server's
    /// `quorum_down` and `VS ... DOWN` line (`do_vs_notifies`), whatever the quorum was:
    /// keepalived marks every quorum down on stopping. With `quorum_only` (keepalived's
    /// `lvs_flush_on_stop`, either mode: `clear_service_vs` then skips the real servers
    /// and calls `update_vs_notifies` alone) the real servers' part is left out. Virtual
    /// servers without `omega` run nothing (keepalived sends them SNMP traps only). The
    /// sorry server has no notifier. The pool is left as it is: the agent is stopping.
    pub fn omega_notices(&self, quorum_only: bool) -> Notices {
        let mut out = Notices::default();
        for (vs, m) in self.vs.iter().zip(&self.meta).filter(|(_, m)| m.omega) {
            for rs in vs.rs.iter().filter(|r| r.up && !quorum_only) {
                out.rs(m, rs, false, Some(SHUTTING_DOWN));
            }
            out.vs(m, vs, false, || SHUTTING_DOWN.to_string());
        }
        out
    }

    /// What a reload that removed real or virtual servers runs, as keepalived's
    /// `clear_diff_rs` / `clear_diff_services` (`clear_service_rs`, not stopping): each
    /// removed server that was up (in `old`, this pool's predecessor) runs its
    /// `notify_down`, writes `RS ... DOWN` and, with `smtp_alert`, mails `=> Removing <=`
    /// (a server down, inhibited or not, gets nothing); a removed virtual server whose
    /// quorum was up then loses it (`quorum_down`, `VS ... DOWN`, `Lost quorum ... <= 0`).
    /// With `flush` (keepalived's `lvs_flush_on_stop`) a removed virtual server runs
    /// nothing (keepalived's `clear_service_vs` then weighs servers still alive).
    pub fn removed_notices(&self, old: &Pool, flush: bool) -> Notices {
        let mut out = Notices::default();
        for (vs, m) in old.vs.iter().zip(&old.meta) {
            let gone = !self.meta.iter().any(|n| n.ident == m.ident);
            if gone && flush {
                continue;
            }
            for rs in vs.rs.iter().filter(|r| r.up && !self.ids.contains_key(&r.id)) {
                out.rs(m, rs, false, Some("=> Removing <="));
            }
            if gone && vs.quorum_ok {
                out.vs(m, vs, false, || quorum_body("Lost quorum", vs, true, 0));
            }
        }
        out
    }

    /// The real server a checker id stands for.
    pub fn rs(&self, id: RsId) -> Option<&RsState> {
        let &(v, r) = self.ids.get(&id)?;
        self.vs.get(v).and_then(|v| v.rs.get(r))
    }

    /// Applies a transition to the dataplane; returns the scripts to run (notify_up/down,
    /// quorum_up/down) and keepalived's notify FIFO lines, in order. The first (down)
    /// result of a server alpha started down changes nothing but runs its `notify_down`
    /// and writes `RS ... DOWN` (keepalived's `update_svr_checker_state` for a checker
    /// that has not run yet).
    pub fn apply(&mut self, t: &Transition, dp: &dyn Dataplane) -> Result<Notices, DataplaneError> {
        let mut out = Notices::default();
        let Some(&(vi, ri)) = self.ids.get(&t.id) else { return Ok(out) };
        let meta = &self.meta[vi];
        let vs = &mut self.vs[vi];
        let rs = &mut vs.rs[ri];
        let first_under_alpha = std::mem::take(&mut rs.alpha_pending);
        if !t.up && !rs.up && first_under_alpha {
            // keepalived's first failed check of a server alpha started down
            // (`update_svr_checker_state`, `!has_run`): its down notifiers, nothing else
            // (it is out of the service, or at weight 0, already; the quorum is as it was).
            rs.reason = Some(t.reason.clone());
            // No mail: keepalived mails a checker going down only when it was up.
            out.rs(meta, rs, false, None);
            return Ok(out);
        }
        if rs.up == t.up && (!t.up || rs.weight_delta == t.weight_delta) {
            return Ok(out);
        }
        let health_changed = rs.up != t.up;
        rs.up = t.up;
        if t.up {
            rs.weight_delta = t.weight_delta;
        }
        rs.reason = Some(t.reason.clone());
        // Up again after a down nobody was mailed about (FILE_CHECK's): not mailed either,
        // as keepalived's other checkers never went down.
        let body = t.alert.as_deref().filter(|_| !(t.up && rs.silent_down));
        if health_changed && !t.up {
            rs.silent_down = t.alert.is_none();
        }
        let rs = rs.clone();
        for key in &vs.keys {
            // Its address in that service (DR or TUN: the service's port).
            let addr = key.rs_addr(rs.addr, rs.fwd);
            match (t.up, rs.inhibit, health_changed) {
                (true, _, false) | (true, true, true) => dp.set_weight(key, addr, rs.effective_weight())?,
                (true, false, true) => dp.add_real_server(key, RealServer { addr, ..rs.dataplane() })?,
                (false, true, _) => dp.set_weight(key, addr, 0)?,
                (false, false, _) => dp.del_real_server(key, addr)?,
            }
        }
        if health_changed {
            out.rs(meta, &rs, t.up, body);
        }
        let live = vs.live_weight();
        let (q, h) = (u64::from(vs.quorum), u64::from(vs.hysteresis));
        if vs.quorum_ok && live < q.saturating_sub(h) {
            vs.quorum_ok = false;
            tracing::warn!(vs = %fifo_vs(meta), live, quorum = q, hysteresis = h, "virtual server lost its quorum");
            // keepalived's "Enabling" (sorry_server_inhibit: weight given back) or "Adding".
            if let Some(s) = vs.sorry {
                for key in &vs.keys {
                    let addr = key.rs_addr(s, vs.sorry_fwd);
                    dp.add_real_server(key, RealServer { fwd: vs.sorry_fwd, ..RealServer::new(addr, SORRY_WEIGHT) })?;
                }
            }
            out.vs(meta, vs, false, || quorum_body("Lost quorum", vs, true, vs.live_weight()));
        } else if !vs.quorum_ok && live >= q + h {
            vs.quorum_ok = true;
            tracing::info!(vs = %fifo_vs(meta), live, quorum = q, hysteresis = h, "virtual server regained its quorum");
            // keepalived's "Disabling" (sorry_server_inhibit: weight 0, kept) or "Removing".
            let inhibited = vs.sorry_inhibited();
            if let Some(s) = vs.sorry {
                for key in &vs.keys {
                    let addr = key.rs_addr(s, vs.sorry_fwd);
                    if inhibited.is_some() {
                        dp.set_weight(key, addr, 0)?;
                    } else {
                        dp.del_real_server(key, addr)?;
                    }
                }
            }
            out.vs(meta, vs, true, || quorum_body("Gained quorum", vs, false, vs.live_weight()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Call, FakeDataplane};
    use crate::keepalived::{parse_str, Options};

    const CONF: &str = "virtual_server_group g {\n 192.0.2.1 80\n 192.0.2.2 80\n}\n\
        local_address_group l {\n 10.0.0.100 dpdk1\n}\n\
        virtual_server group g {\n lb_kind FNAT\n lb_algo rr\n laddr_group_name l\n delay_loop 2\n quorum 150\n hysteresis 10\n\
        sorry_server 10.0.9.9 80\n quorum_down \"/bin/qdown\"\n quorum_up \"/bin/qup\"\n\
        real_server 10.0.1.1 80 {\n weight 100\n inhibit_on_failure\n notify_down \"/bin/down1\"\n TCP_CHECK {\n connect_timeout 1\n }\n }\n\
        real_server 10.0.1.2 80 {\n weight 100\n TCP_CHECK {\n connect_timeout 1\n }\n }\n}\n";

    fn key(vip: &str) -> ServiceKey {
        ServiceKey::new(Proto::Tcp, vip.parse().unwrap(), 80)
    }

    fn down(id: RsId) -> Transition {
        Transition {
            id,
            up: false,
            reason: "test".into(),
            weight_delta: 0,
            alert: Some("=> TCP CHECK failed on service <=".into()),
        }
    }

    fn up(id: RsId) -> Transition {
        Transition {
            id,
            up: true,
            reason: "test".into(),
            weight_delta: 0,
            alert: Some("=> TCP CHECK succeed on service <=".into()),
        }
    }

    #[test]
    fn group_expands_to_services_with_local_addresses_and_checks() {
        let l = parse_str(CONF, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (pool, services, checks) = Pool::from_config(&l.config);
        assert_eq!(services.len(), 2);
        assert_eq!(services[1].key, key("192.0.2.2"));
        assert_eq!(services[0].local_addrs[0].port_name, "dpdk1");
        assert_eq!(services[0].real_servers.len(), 2);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[1].0.delay_loop, std::time::Duration::from_secs(2));
        assert!(checks.iter().all(|(_, up)| *up), "without alpha, every server starts up");
        assert!(pool.vs[0].quorum_ok);
        assert_eq!(pool.rs(1).unwrap().addr, "10.0.1.2:80".parse().unwrap());
    }

    #[test]
    fn address_groups_become_the_services_deny_and_allow_lists() {
        let conf = "deny_address_group bad {\n 192.0.2.0/24\n}\nallow_address_group good {\n 10.0.0.0/8\n}\n"
            .to_string()
            + &CONF.replace(
                " laddr_group_name l\n",
                " laddr_group_name l\n daddr_group_name bad\n waddr_group_name good\n",
            );
        let l = parse_str(&conf, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (_, services, _) = Pool::from_config(&l.config);
        for s in &services {
            assert_eq!(s.deny, ["192.0.2.0/24".parse::<ipnet::IpNet>().unwrap()]);
            assert_eq!(s.allow, ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]);
        }
        let (_, plain, _) = Pool::from_config(&parse_str(CONF, "t", Options::default()).config);
        assert!(plain.iter().all(|s| s.deny.is_empty() && s.allow.is_empty()));
    }

    /// DPVS's `establish_timeout` becomes every service of its virtual server's
    /// `conn_timeout` (each member of a group), and stays 0 (rvsd's global timeouts)
    /// without it.
    #[test]
    fn establish_timeout_becomes_the_services_conn_timeout() {
        let conf = CONF.replace(" delay_loop 2\n", " delay_loop 2\n establish_timeout 7200\n");
        let l = parse_str(&conf, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (pool, services, _) = Pool::from_config(&l.config);
        assert_eq!(services.iter().map(|s| s.conn_timeout).collect::<Vec<_>>(), [7200, 7200]);
        assert_eq!(pool.services(), services, "also what a reconnected rvsd would be given");
        let (_, plain, _) = Pool::from_config(&parse_str(CONF, "t", Options::default()).config);
        assert!(plain.iter().all(|s| s.conn_timeout == 0));
    }

    /// keepalived's mail alerts from the health checks: a real server's health change
    /// (its checker's body), a quorum lost and gained (keepalived's `Q+H=THRESHOLD <=
    /// LIVE` body), omega's `Shutting down`, a reload's `Removing`; a real server mails by
    /// default, a virtual server only with `smtp_alert`, nothing without a mail server.
    #[test]
    fn health_changes_mail_as_keepalived_where_mail_is_set_up() {
        let mail = "global_defs {\n notification_email {\n  ops@example.com\n }\n smtp_server 127.0.0.1\n}\n";
        let with_vs = CONF.replace(" quorum_up \"/bin/qup\"\n", " quorum_up \"/bin/qup\"\n smtp_alert\n omega\n");
        let conf = |text: &str| {
            let l = parse_str(text, "t", Options::default());
            assert!(!l.has_errors(), "{:?}", l.diagnostics);
            l.config
        };
        let subjects = |n: &Notices| n.mail.iter().map(|m| format!("{} | {}", m.subject, m.body)).collect::<Vec<_>>();
        let load = |text: &str| {
            let (pool, services, _) = Pool::from_config(&conf(text));
            let dp = FakeDataplane::new();
            dp.set_services(&services).unwrap();
            (pool, dp)
        };
        // No smtp_server: nothing, even with smtp_alert.
        let (mut pool, dp) = load(&with_vs);
        assert!(pool.apply(&down(0), &dp).unwrap().mail.is_empty());
        let (mut pool, dp) = load(&format!("{mail}{with_vs}"));
        assert_eq!(
            subjects(&pool.quorum_notices(None)),
            ["Virtualserver [g]:0 - UP | => Starting with quorum up 150+10=160 <= 200 <="]
        );
        let n = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(
            subjects(&n),
            [
                "Realserver [10.0.1.1]:tcp:80 of virtual server [g]:0 - DOWN | => TCP CHECK failed on service <=",
                "Virtualserver [g]:0 - DOWN | => Lost quorum 150+10=140 <= 100 <=",
            ]
        );
        let n = pool.apply(&up(0), &dp).unwrap();
        assert_eq!(
            subjects(&n),
            [
                "Realserver [10.0.1.1]:tcp:80 of virtual server [g]:0 - UP | => TCP CHECK succeed on service <=",
                "Virtualserver [g]:0 - UP | => Gained quorum 150+10=160 <= 200 <=",
            ]
        );
        assert_eq!(
            subjects(&pool.omega_notices(false)),
            [
                "Realserver [10.0.1.1]:tcp:80 of virtual server [g]:0 - DOWN | => Shutting down <=",
                "Realserver [10.0.1.2]:tcp:80 of virtual server [g]:0 - DOWN | => Shutting down <=",
                "Virtualserver [g]:0 - DOWN | => Shutting down <=",
            ]
        );
        // A FILE_CHECK alone mails nothing (keepalived's does not).
        let mut silent = down(1);
        silent.alert = None;
        let n = pool.apply(&silent, &dp).unwrap();
        assert_eq!(n.fifo, ["RS [10.0.1.2]:tcp:80 [g]:0 DOWN\n", "VS [g]:0 DOWN\n"]);
        assert_eq!(subjects(&n), ["Virtualserver [g]:0 - DOWN | => Lost quorum 150+10=140 <= 100 <="]);
        // ... nor its coming back (keepalived's TCP checker never went down).
        let n = pool.apply(&up(1), &dp).unwrap();
        assert_eq!(subjects(&n), ["Virtualserver [g]:0 - UP | => Gained quorum 150+10=160 <= 200 <="]);
        // The virtual server's default is off, the real servers' on; smtp_alert off wins.
        let plain =
            format!("{mail}{}", CONF.replace("weight 100\n TCP_CHECK", "weight 100\n smtp_alert off\n TCP_CHECK"));
        let (mut pool, dp) = load(&plain);
        let n = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(
            subjects(&n),
            ["Realserver [10.0.1.1]:tcp:80 of virtual server [g]:0 - DOWN | => TCP CHECK failed on service <="]
        );
        assert!(pool.apply(&down(1), &dp).unwrap().mail.is_empty(), "10.0.1.2 has smtp_alert off");
        // A reload removing a server up runs its down notifiers, `=> Removing <=`; one
        // down gets nothing.
        let (mut old, dp) = load(&format!("{mail}{CONF}"));
        old.apply(&down(0), &dp).unwrap();
        let fewer = format!("{mail}{}", CONF.replace("real_server 10.0.1.1 80", "real_server 10.0.1.3 80"));
        let fewer =
            fewer.replace("real_server 10.0.1.2 80 {\n weight 100\n TCP_CHECK {\n connect_timeout 1\n }\n }\n", "");
        let (next, _) = old.reload(&conf(&fewer));
        assert_eq!(next.vs[0].rs.len(), 1);
        let n = next.removed_notices(&old, false);
        assert_eq!(n.fifo, ["RS [10.0.1.2]:tcp:80 [g]:0 DOWN\n"], "10.0.1.1 was down: nothing");
        assert_eq!(subjects(&n), ["Realserver [10.0.1.2]:tcp:80 of virtual server [g]:0 - DOWN | => Removing <="]);
        // A reload removing the whole virtual server: its servers up, then its quorum
        // (up before) lost; under lvs_flush_on_stop nothing (keepalived's clear_service_vs).
        let (old, _) = load(&format!("{mail}{with_vs}"));
        let (none, _) = old.reload(&conf(mail));
        assert_eq!(
            subjects(&none.removed_notices(&old, false)),
            [
                "Realserver [10.0.1.1]:tcp:80 of virtual server [g]:0 - DOWN | => Removing <=",
                "Realserver [10.0.1.2]:tcp:80 of virtual server [g]:0 - DOWN | => Removing <=",
                "Virtualserver [g]:0 - DOWN | => Lost quorum 150+10=140 <= 0 <=",
            ]
        );
        assert_eq!(none.removed_notices(&old, false).scripts, ["/bin/down1", "/bin/qdown"]);
        assert_eq!(none.removed_notices(&old, true), Notices::default());
    }

    /// keepalived's `rs_init_notifies`: at start each real server up runs its notify_up
    /// and writes `RS ... UP` before its virtual server's quorum line; a reload, only the
    /// servers it adds; without it, none.
    #[test]
    fn rs_init_notifies_announces_the_servers_that_start_up() {
        let with = |extra: &str| {
            let c = CONF.replace("weight 100\n TCP_CHECK", "weight 100\n notify_up \"/bin/up\"\n TCP_CHECK");
            let l = parse_str(&format!("{extra}{c}"), "t", Options::default());
            assert!(!l.has_errors(), "{:?}", l.diagnostics);
            l.config
        };
        let (pool, _, _) = Pool::from_config(&with("global_defs {\n rs_init_notifies\n}\n"));
        let n = pool.quorum_notices(None);
        assert_eq!(n.fifo, ["RS [10.0.1.1]:tcp:80 [g]:0 UP\n", "RS [10.0.1.2]:tcp:80 [g]:0 UP\n", "VS [g]:0 UP\n"]);
        assert_eq!(n.scripts, ["/bin/up", "/bin/qup"], "10.0.1.2 has a notify_up, 10.0.1.1 none");
        // A reload adding 10.0.1.3: it alone.
        let mut added = with("global_defs {\n rs_init_notifies\n}\n");
        let mut third = added.virtual_servers[0].real_servers[1].clone();
        third.addr = "10.0.1.3:80".parse().unwrap();
        added.virtual_servers[0].real_servers.push(third);
        let (next, _) = pool.reload(&added);
        assert_eq!(next.quorum_notices(Some(&pool)).fifo, ["RS [10.0.1.3]:tcp:80 [g]:0 UP\n"]);
        let (plain, _, _) = Pool::from_config(&with(""));
        assert_eq!(plain.quorum_notices(None).fifo, ["VS [g]:0 UP\n"]);
    }

    /// rvs's `dest_check` becomes every service of its virtual server's passive check.
    #[test]
    fn dest_check_becomes_the_services() {
        let conf = CONF.replace(" delay_loop 2\n", " delay_loop 2\n dest_check 2,1,3s,10-60s\n");
        let l = parse_str(&conf, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (_, services, _) = Pool::from_config(&l.config);
        let checks: Vec<String> = services.iter().filter_map(|s| s.dest_check.map(|d| d.to_string())).collect();
        assert_eq!(checks, ["2,1,3s,10-60s", "2,1,3s,10-60s"]);
        assert!(services.iter().all(|s| !s.expire_quiescent));
        let conf = CONF.replace(" delay_loop 2\n", " delay_loop 2\n expire_quiescent_conn\n");
        let (_, services, _) = Pool::from_config(&parse_str(&conf, "t", Options::default()).config);
        assert!(services.iter().all(|s| s.expire_quiescent), "DPVS's expire_quiescent_conn");
        let conf = CONF.replace(" delay_loop 2\n", " delay_loop 2\n ops\n");
        let (_, services, _) = Pool::from_config(&parse_str(&conf, "t", Options::default()).config);
        assert!(services.iter().all(|s| s.ops), "keepalived's ops");
        let (_, plain, _) = Pool::from_config(&parse_str(CONF, "t", Options::default()).config);
        assert!(plain.iter().all(|s| s.dest_check.is_none()));
    }

    /// keepalived's `omega` at shutdown (`clear_services`): for the virtual server with it,
    /// each real server up, in order, its notify_down and `RS ... DOWN`, then its
    /// quorum_down and `VS ... DOWN` even when the quorum is already lost; a server down
    /// (inhibited here) gets nothing; the virtual server without omega nothing at all.
    #[test]
    fn omega_runs_the_down_notifiers_of_the_servers_up_then_quorum_down() {
        let other = "virtual_server 192.0.2.9 80 {\n lb_kind FNAT\n quorum_down \"/bin/qdown9\"\n\
            real_server 10.0.2.1 80 {\n notify_down \"/bin/down9\"\n }\n}\n";
        let conf = |omega: bool| {
            let c = CONF.replace("weight 100\n TCP_CHECK", "weight 100\n notify_down \"/bin/down2\"\n TCP_CHECK");
            let c = if omega { c.replace(" delay_loop 2\n", " delay_loop 2\n omega\n") } else { c };
            let l = parse_str(&format!("{c}{other}"), "t", Options::default());
            assert!(!l.has_errors(), "{:?}", l.diagnostics);
            l.config
        };
        let (pool, _, _) = Pool::from_config(&conf(false));
        assert_eq!(pool.omega_notices(false), Notices::default(), "no omega: nothing");
        assert_eq!(pool.omega_notices(true), Notices::default(), "no omega: nothing");
        let (mut pool, services, _) = Pool::from_config(&conf(true));
        let n = pool.omega_notices(false);
        assert_eq!(n.scripts, ["/bin/down1", "/bin/down2", "/bin/qdown"]);
        assert_eq!(
            n.fifo,
            ["RS [10.0.1.1]:tcp:80 [g]:0 DOWN\n", "RS [10.0.1.2]:tcp:80 [g]:0 DOWN\n", "VS [g]:0 DOWN\n"]
        );
        // With keepalived's lvs_flush_on_stop: the quorum notifiers only.
        let n = pool.omega_notices(true);
        assert_eq!((n.scripts, n.fifo), (vec![Script::new("/bin/qdown")], vec!["VS [g]:0 DOWN\n".to_string()]));
        // 10.0.1.1 fails (weight 0: inhibit_on_failure) and the quorum (150 - 10) is lost.
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        pool.apply(&down(0), &dp).unwrap();
        assert!(!pool.vs[0].quorum_ok);
        let n = pool.omega_notices(false);
        assert_eq!(n.scripts, ["/bin/down2", "/bin/qdown"]);
        assert_eq!(n.fifo, ["RS [10.0.1.2]:tcp:80 [g]:0 DOWN\n", "VS [g]:0 DOWN\n"]);
    }

    #[test]
    fn failure_inhibits_or_removes_and_quorum_switches_to_sorry_server() {
        let l = parse_str(CONF, "t", Options::default());
        let (mut pool, services, _) = Pool::from_config(&l.config);
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        let rs1: SocketAddr = "10.0.1.1:80".parse().unwrap();
        let rs2: SocketAddr = "10.0.1.2:80".parse().unwrap();
        let sorry: SocketAddr = "10.0.9.9:80".parse().unwrap();
        // rs1 (inhibit) down: weight 0 on both services; live 100 < 150 - 10: quorum lost.
        let s = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(s.scripts, ["/bin/down1", "/bin/qdown"]);
        // keepalived's FIFO lines (a group's virtual server is [NAME]:0).
        assert_eq!(s.fifo, ["RS [10.0.1.1]:tcp:80 [g]:0 DOWN\n", "VS [g]:0 DOWN\n"]);
        let svc = dp.service(&key("192.0.2.1")).unwrap();
        assert_eq!(svc.real_servers.iter().find(|r| r.addr == rs1).unwrap().weight, 0);
        assert!(svc.real_servers.iter().any(|r| r.addr == sorry));
        // rs2 (no inhibit) down: removed.
        pool.apply(&down(1), &dp).unwrap();
        assert!(!dp.service(&key("192.0.2.2")).unwrap().real_servers.iter().any(|r| r.addr == rs2));
        // Repeated transitions are no-ops.
        let before = dp.calls().len();
        pool.apply(&down(1), &dp).unwrap();
        assert_eq!(dp.calls().len(), before);
        // rs2 back: 100 < 150 + 10, still no quorum.
        let s = pool.apply(&up(1), &dp).unwrap();
        assert!(s.scripts.is_empty());
        assert_eq!(s.fifo, ["RS [10.0.1.2]:tcp:80 [g]:0 UP\n"]);
        assert!(dp.calls().contains(&Call::AddRs(key("192.0.2.2"), rs2, 100)));
        // rs1 back: 200 >= 160: quorum restored, sorry server removed.
        let s = pool.apply(&up(0), &dp).unwrap();
        assert_eq!(s.scripts, ["/bin/qup"]);
        assert_eq!(s.fifo, ["RS [10.0.1.1]:tcp:80 [g]:0 UP\n", "VS [g]:0 UP\n"]);
        let svc = dp.service(&key("192.0.2.1")).unwrap();
        assert!(!svc.real_servers.iter().any(|r| r.addr == sorry));
        assert_eq!(svc.real_servers.iter().find(|r| r.addr == rs1).unwrap().weight, 100);
    }

    /// A group's two services, 192.0.2.1:80's and `second` (the DR servers at `port`
    /// there), from `conf`: in the first services and in every health change (inhibit
    /// down, quorum lost and the sorry server in, out, back) each gets the servers at its
    /// own port; the FIFO lines name the port written. The checks, to look at.
    fn a_groups_two_services_follow_health(conf: &str, second: ServiceKey, port: u16) -> Vec<(RsChecks, bool)> {
        let l = parse_str(conf, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (mut pool, services, checks) = Pool::from_config(&l.config);
        let at = |ip: &str| format!("{ip}:{port}");
        let sent: Vec<(ServiceKey, Vec<(String, u32)>)> = services.iter().map(|s| (s.key, weights(s))).collect();
        assert_eq!(
            sent,
            [
                (key("192.0.2.1"), vec![("10.0.1.1:80".into(), 100), ("10.0.1.2:80".into(), 100)]),
                (second, vec![(at("10.0.1.1"), 100), (at("10.0.1.2"), 100)])
            ]
        );
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        // 10.0.1.1 (inhibit) down: weight 0 in both; the quorum lost: the sorry server in.
        let n = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(n.fifo, ["RS [10.0.1.1]:tcp:80 [g]:0 DOWN\n", "VS [g]:0 DOWN\n"]);
        let calls = dp.calls();
        assert_eq!(
            calls[calls.len() - 4..],
            [
                Call::SetWeight(key("192.0.2.1"), sa("10.0.1.1:80"), 0),
                Call::SetWeight(second, sa(&at("10.0.1.1")), 0),
                Call::AddRs(key("192.0.2.1"), sa("10.0.9.9:80"), 1),
                Call::AddRs(second, sa(&at("10.0.9.9")), 1),
            ]
        );
        // 10.0.1.2 down: out of both.
        pool.apply(&down(1), &dp).unwrap();
        let calls = dp.calls();
        assert_eq!(
            calls[calls.len() - 2..],
            [Call::DelRs(key("192.0.2.1"), sa("10.0.1.2:80")), Call::DelRs(second, sa(&at("10.0.1.2")))]
        );
        // Both back: the quorum regained, the sorry server out of both, as at start.
        pool.apply(&up(1), &dp).unwrap();
        pool.apply(&up(0), &dp).unwrap();
        assert_eq!(dp.service(&second).unwrap().real_servers.len(), 2);
        assert_eq!(pool.services(), services, "as at start");
        assert_eq!(weights(&dp.service(&second).unwrap()), weights(&services[1]));
        checks
    }

    /// A group with an `IP PORT` member and a fwmark entry, DR servers: the member's
    /// service has each server at its port (80, the one written), the fwmark's at port 0
    /// (keepalived's `ipvs_group_cmd`), the sorry server's too. A group of fwmarks only
    /// names its servers' protocol `none` (keepalived drops it), whatever `protocol` says.
    #[test]
    fn a_groups_fwmark_services_get_dr_servers_at_port_0_and_its_members_at_theirs() {
        let conf = CONF.replace(" 192.0.2.2 80\n", " fwmark 5\n").replace("lb_kind FNAT", "lb_kind DR");
        a_groups_two_services_follow_health(&conf, ServiceKey::of_fwmark(5, false), 0);
        // Fwmarks only: `none`, as keepalived's `[RIP]:none:PORT`; protocol UDP is TCP.
        let only = conf.replace(" 192.0.2.1 80\n", "").replace(" lb_algo rr\n", " lb_algo rr\n protocol UDP\n");
        let l = parse_str(&only, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (mut pool, services, _) = Pool::from_config(&l.config);
        assert_eq!((pool.vs[0].name.as_str(), services.len()), ("tcp group g", 1));
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        let n = pool.apply(&down(1), &dp).unwrap();
        assert_eq!(n.fifo, ["RS [10.0.1.2]:none:80 [g]:0 DOWN\n", "VS [g]:0 DOWN\n"]);
    }

    /// A group with members of ports 80 and 443, DR servers written with port 80: each
    /// member's service has them at its own port (keepalived's `ipvs_group_cmd`; rvsd
    /// refuses a DR server of another port than its service's, and with it every service),
    /// the sorry server too; the checkers connect to the port written, as keepalived's.
    #[test]
    fn a_groups_dr_servers_get_each_members_port() {
        let conf = CONF.replace(" 192.0.2.2 80\n", " 192.0.2.1 443\n").replace("lb_kind FNAT", "lb_kind DR");
        let https = ServiceKey::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 443);
        let checks = a_groups_two_services_follow_health(&conf, https, 443);
        let targets: Vec<SocketAddr> = checks.iter().map(|(c, _)| tcp_target(&c.checks[0].probe)).collect();
        assert_eq!(targets, ["10.0.1.1:80".parse().unwrap(), "10.0.1.2:80".parse().unwrap()], "the port written");
    }

    /// A `virtual_server IP PORT` with a DR server written with another port: rvsd gets
    /// it at the virtual server's port (keepalived resets it, with a warning), its
    /// checker connects to the port written, and the FIFO lines say the port reset, as
    /// keepalived's; a NAT server keeps its port.
    #[test]
    fn a_virtual_servers_dr_server_of_another_port_gets_its_port() {
        let conf = "virtual_server 192.0.2.1 80 {\n lb_kind DR\n protocol TCP\n delay_loop 2\n\
            real_server 10.0.1.1 8080 {\n TCP_CHECK {\n connect_timeout 1\n }\n }\n\
            real_server 10.0.1.2 8080 {\n lvs_method NAT\n TCP_CHECK {\n connect_timeout 1\n }\n }\n}\n";
        let l = parse_str(conf, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let warned: Vec<String> = l.diagnostics.iter().map(ToString::to_string).collect();
        assert!(
            warned.iter().any(|w| w.starts_with("t:5: warning:") && w.contains("real_server 10.0.1.1 8080 is DR")),
            "{warned:?}"
        );
        let (mut pool, services, checks) = Pool::from_config(&l.config);
        assert_eq!(weights(&services[0]), [("10.0.1.1:80".to_string(), 1), ("10.0.1.2:8080".to_string(), 1)]);
        let target = tcp_target(&checks[0].0.checks[0].probe);
        assert_eq!(target, "10.0.1.1:8080".parse().unwrap(), "the checker connects to the port written");
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        let n = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(n.fifo, ["RS [10.0.1.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n"]);
        assert_eq!(dp.calls().last(), Some(&Call::DelRs(key("192.0.2.1"), "10.0.1.1:80".parse().unwrap())));
    }

    /// keepalived's alpha mode: one virtual server, `alpha`, with a server checked by
    /// TCP_CHECK (weight 100), one also with `inhibit_on_failure` (weight 50), one without
    /// checkers (30) and one checked by a FILE_CHECK only (20; keepalived clears alpha for
    /// those: the file says at once).
    const ALPHA: &str = "track_file tf {\n file /nonexistent/rvs-alpha-test\n}\n\
        virtual_server 192.0.2.1 80 {\n lb_kind FNAT\n lb_algo wrr\n alpha\n delay_loop 2\n\
        real_server 10.0.1.1 80 {\n weight 100\n notify_up \"/bin/up1\"\n TCP_CHECK {\n connect_timeout 1\n }\n }\n\
        real_server 10.0.1.2 80 {\n weight 50\n inhibit_on_failure\n TCP_CHECK {\n connect_timeout 1\n }\n }\n\
        real_server 10.0.1.3 80 {\n weight 30\n }\n\
        real_server 10.0.1.4 80 {\n weight 20\n FILE_CHECK {\n track_file tf\n }\n }\n}\n";

    fn alpha_conf(alpha: bool) -> crate::keepalived::Config {
        let text = if alpha { ALPHA.to_string() } else { ALPHA.replace(" alpha\n", "") };
        let l = parse_str(&text, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        l.config
    }

    /// A service's real servers and weights, by address.
    /// Where a TCP_CHECK connects.
    fn tcp_target(p: &crate::check::Probe) -> SocketAddr {
        match p {
            crate::check::Probe::Tcp { target, .. } => *target,
            p => panic!("not a TCP_CHECK: {p:?}"),
        }
    }

    fn weights(s: &Service) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = s.real_servers.iter().map(|r| (r.addr.to_string(), r.weight)).collect();
        v.sort();
        v
    }

    #[test]
    fn alpha_leaves_checked_servers_out_of_the_first_services_until_their_checks_pass() {
        let w = |a: &str, n| (a.to_string(), n);
        // Without alpha, every server is in at its weight and every checker starts up.
        let (_, services, checks) = Pool::from_config(&alpha_conf(false));
        assert_eq!(
            weights(&services[0]),
            [w("10.0.1.1:80", 100), w("10.0.1.2:80", 50), w("10.0.1.3:80", 30), w("10.0.1.4:80", 20)]
        );
        assert!(checks.iter().all(|(_, up)| *up));
        // With alpha: the TCP-checked server is out, the inhibit one at weight 0, the
        // unchecked and FILE_CHECK-only ones in.
        let (mut pool, services, checks) = Pool::from_config(&alpha_conf(true));
        assert_eq!(weights(&services[0]), [w("10.0.1.2:80", 0), w("10.0.1.3:80", 30), w("10.0.1.4:80", 20)]);
        let starts: Vec<(RsId, bool)> = checks.iter().map(|(c, up)| (c.id, *up)).collect();
        assert_eq!(
            starts,
            [(0, false), (1, false), (2, true), (3, true)],
            "each checker starts from its server's health"
        );
        assert_eq!(pool.rs(0).unwrap().reason.as_deref(), Some(ALPHA_REASON));
        assert!(pool.rs(2).unwrap().up && pool.rs(2).unwrap().reason.is_none());
        assert!(pool.vs[0].quorum_ok, "50 of live weight >= quorum 1");
        // The first passing round brings each in: added at its weight, or weight 0 -> 50.
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        let k = key("192.0.2.1");
        let n = pool.apply(&up(0), &dp).unwrap();
        assert_eq!(n.scripts, ["/bin/up1"]);
        assert_eq!(n.fifo, ["RS [10.0.1.1]:tcp:80 [192.0.2.1]:tcp:80 UP\n"]);
        pool.apply(&up(1), &dp).unwrap();
        assert_eq!(
            dp.calls()[1..],
            [
                Call::AddRs(k, "10.0.1.1:80".parse().unwrap(), 100),
                Call::SetWeight(k, "10.0.1.2:80".parse().unwrap(), 50)
            ]
        );
        let all = [w("10.0.1.1:80", 100), w("10.0.1.2:80", 50), w("10.0.1.3:80", 30), w("10.0.1.4:80", 20)];
        assert_eq!(weights(&dp.service(&k).unwrap()), all);
        assert_eq!(weights(&pool.services()[0]), all, "what a reconnected rvsd would be given");
        // Once in, it is an ordinary server: a failure takes it out again.
        pool.apply(&down(0), &dp).unwrap();
        assert_eq!(dp.calls().last(), Some(&Call::DelRs(k, "10.0.1.1:80".parse().unwrap())));
    }

    /// One virtual server, `quorum 100`, `hysteresis 20`, two servers without checkers
    /// (up) of weight `w` each, and `extra` lines.
    fn quorum_conf(w: u32, extra: &str) -> crate::keepalived::Config {
        let text = format!(
            "virtual_server 192.0.2.1 80 {{\n lb_kind FNAT\n quorum 100\n hysteresis 20\n{extra}\
             quorum_up \"/bin/qup\"\n quorum_down \"/bin/qdown\"\n\
             real_server 10.0.1.1 80 {{\n weight {w}\n }}\n real_server 10.0.1.2 80 {{\n weight {w}\n }}\n}}\n"
        );
        let l = parse_str(&text, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        l.config
    }

    /// keepalived's start (`set_quorum_states` with nothing alive, then
    /// `update_quorum_state(vs, init)`): every quorum starts down and is gained at quorum +
    /// hysteresis, running quorum_up; below that, with a sorry server, quorum_down (the
    /// sorry server in); below without one, nothing.
    #[test]
    fn a_start_runs_quorum_up_or_with_a_sorry_server_quorum_down() {
        let up = |scripts: &[&str], line: &str| Notices {
            scripts: scripts.iter().map(|&s| s.into()).collect(),
            fifo: if line.is_empty() { vec![] } else { vec![format!("VS [192.0.2.1]:tcp:80 {line}\n")] },
            mail: vec![],
        };
        // 120 >= 100 + 20: up.
        let (pool, _, _) = Pool::from_config(&quorum_conf(60, ""));
        assert!(pool.vs[0].quorum_ok);
        assert_eq!(pool.quorum_notices(None), up(&["/bin/qup"], "UP"));
        // 110: met for a server going down (100 - 20) but not at start (100 + 20).
        let (pool, services, _) = Pool::from_config(&quorum_conf(55, ""));
        assert!(!pool.vs[0].quorum_ok);
        assert_eq!(pool.quorum_notices(None), Notices::default(), "no sorry server: nothing");
        assert_eq!(services[0].real_servers.len(), 2);
        // The same with a sorry server: quorum_down, the sorry server in.
        let (pool, services, _) = Pool::from_config(&quorum_conf(55, " sorry_server 10.0.9.9 80\n"));
        assert_eq!(pool.quorum_notices(None), up(&["/bin/qdown"], "DOWN"));
        assert!(services[0].real_servers.iter().any(|r| r.addr == "10.0.9.9:80".parse().unwrap()));
        // A reload: a kept quorum that does not move runs nothing...
        let (old, _, _) = Pool::from_config(&quorum_conf(60, ""));
        let (next, _) = old.reload(&quorum_conf(50, ""));
        assert!(next.vs[0].quorum_ok, "100 >= 100 - 20");
        assert_eq!(next.quorum_notices(Some(&old)), Notices::default());
        // ... one it moves runs its notifier (lost: 70 < 80; gained back: 120 >= 120) ...
        let (lost, _) = old.reload(&quorum_conf(35, ""));
        assert_eq!(lost.quorum_notices(Some(&old)), up(&["/bin/qdown"], "DOWN"));
        let (back, _) = lost.reload(&quorum_conf(60, ""));
        assert_eq!(back.quorum_notices(Some(&lost)), up(&["/bin/qup"], "UP"));
        // ... a quorum that stays down gets quorum_down again with another sorry server ...
        let (sorry, _) = lost.reload(&quorum_conf(35, " sorry_server 10.0.9.9 80\n"));
        assert_eq!(sorry.quorum_notices(Some(&lost)), up(&["/bin/qdown"], "DOWN"));
        let (same, _) = sorry.reload(&quorum_conf(35, " sorry_server 10.0.9.9 80\n"));
        assert_eq!(same.quorum_notices(Some(&sorry)), Notices::default());
        // ... and a virtual server the reload adds starts as at start.
        let (none, _) = old.reload(&parse_str("", "t", Options::default()).config);
        assert_eq!(none.quorum_notices(Some(&old)), Notices::default());
        let (added, _) = none.reload(&quorum_conf(60, ""));
        assert_eq!(added.quorum_notices(Some(&none)), up(&["/bin/qup"], "UP"));
    }

    /// keepalived's `update_svr_checker_state` with `!has_run`: the first failing round of
    /// a server alpha started down runs its notify_down and writes `RS ... DOWN`, with
    /// nothing for the dataplane and the quorum; later failures run nothing; a server that
    /// started up (no alpha) or has passed once is an ordinary one.
    #[test]
    fn the_first_failure_of_a_server_alpha_started_down_runs_its_down_notifiers() {
        let conf = ALPHA.replace(" weight 50\n", " weight 50\n notify_down \"/bin/down2\"\n");
        let l = parse_str(&conf, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (mut pool, services, _) = Pool::from_config(&l.config);
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        assert!(pool.rs(1).unwrap().alpha_pending && !pool.rs(2).unwrap().alpha_pending);
        let n = pool.apply(&down(1), &dp).unwrap();
        assert_eq!(n.scripts, ["/bin/down2"]);
        assert_eq!(n.fifo, ["RS [10.0.1.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n"]);
        assert_eq!(dp.calls().len(), 1, "only the first set_services: {:?}", dp.calls());
        assert_eq!(pool.rs(1).unwrap().reason.as_deref(), Some("test"));
        assert_eq!(pool.apply(&down(1), &dp).unwrap(), Notices::default(), "once");
        // Server 0 passes first (up, notify_up), then fails: an ordinary failure.
        pool.apply(&up(0), &dp).unwrap();
        let n = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(n.fifo, ["RS [10.0.1.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n"]);
        assert_eq!(pool.apply(&down(0), &dp).unwrap(), Notices::default());
        // A reload keeps the pending mark of a server with no result yet.
        let (fresh, _, _) = Pool::from_config(&l.config);
        let (next, _) = fresh.reload(&l.config);
        assert!(next.rs(0).unwrap().alpha_pending && next.rs(1).unwrap().alpha_pending);
    }

    /// keepalived's `sorry_server_inhibit` (`init_service_vs`, `update_quorum_state`,
    /// `ipvs_cmd` with the sorry server's `inhibit`): the sorry server is in the services
    /// from the start at weight 0 while the quorum holds, gets its weight when the quorum
    /// is lost ("Enabling"), and goes back to weight 0, staying, when it is regained
    /// ("Disabling"). Without it, added and removed. A sorry server that is one of the
    /// real servers follows that real server (keepalived's `s_svr_duplicates_rs`).
    #[test]
    fn sorry_server_inhibit_keeps_the_sorry_server_at_weight_0_while_unused() {
        let k = key("192.0.2.1");
        let sorry: SocketAddr = "10.0.9.9:80".parse().unwrap();
        let sorry_weight = |s: &Service| s.real_servers.iter().find(|r| r.addr == sorry).map(|r| r.weight);
        let inhibit = " sorry_server 10.0.9.9 80\n sorry_server_inhibit\n";
        // Quorum met at start (120 >= 100 + 20): in at weight 0.
        let (mut pool, services, _) = Pool::from_config(&quorum_conf(60, inhibit));
        assert_eq!(sorry_weight(&services[0]), Some(0));
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        // Lost (60 < 80): given its weight.
        let n = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(n.scripts, ["/bin/qdown"]);
        assert_eq!(dp.calls().last(), Some(&Call::AddRs(k, sorry, 1)));
        assert_eq!(sorry_weight(&dp.service(&k).unwrap()), Some(1));
        assert_eq!(sorry_weight(&pool.services()[0]), Some(1), "what a reconnected rvsd would be given");
        // Regained (120 >= 120): back to weight 0, kept.
        let n = pool.apply(&up(0), &dp).unwrap();
        assert_eq!(n.scripts, ["/bin/qup"]);
        assert_eq!(dp.calls().last(), Some(&Call::SetWeight(k, sorry, 0)));
        assert_eq!(sorry_weight(&dp.service(&k).unwrap()), Some(0));
        assert_eq!(weights(&pool.services()[0]), weights(&dp.service(&k).unwrap()));
        // Quorum down at start (110 < 120): in at its weight.
        let (_, services, _) = Pool::from_config(&quorum_conf(55, inhibit));
        assert_eq!(sorry_weight(&services[0]), Some(1));
        // Without sorry_server_inhibit: out while the quorum holds, removed on regaining.
        let plain = " sorry_server 10.0.9.9 80\n";
        let (mut pool, services, _) = Pool::from_config(&quorum_conf(60, plain));
        assert_eq!(sorry_weight(&services[0]), None);
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        pool.apply(&down(0), &dp).unwrap();
        pool.apply(&up(0), &dp).unwrap();
        assert_eq!(dp.calls().last(), Some(&Call::DelRs(k, sorry)));
        // A reload that turns it on puts the sorry server in at weight 0.
        let (next, _) = pool.reload(&quorum_conf(60, inhibit));
        assert_eq!(sorry_weight(&next.services()[0]), Some(0));
        // The sorry server is a real server: that real server's entry alone.
        let dup = " sorry_server 10.0.1.2 80\n sorry_server_inhibit\n";
        let (pool, services, _) = Pool::from_config(&quorum_conf(60, dup));
        assert_eq!(pool.vs[0].sorry_inhibited(), None);
        assert_eq!(services[0].real_servers.len(), 2);
    }
}
