//! [`RvsdDataplane`] against an in-process stand-in for rvsd's control socket that keeps
//! addresses and services the way rvsd does (optionally refusing a service whose VIP is
//! not an address, as older rvsd did; a local address no port has is accepted, the
//! service keeping it in standby, one without sapool is refused), SNAT rules as rvsd's
//! state does (by match, names unique), connection-sync roles as rvsd's `[sync]` does
//! (refused without it, or for another syncid), global timeouts as rvsd's `TimeoutsGet` /
//! `TimeoutsSet` (0 keeps a value), and can "restart" (drop every connection and forget
//! everything but its configuration).

use super::*;
use crate::dataplane::LocalAddr;
use ctl::frame;
use ctl::{RealServerView, RequestMsg, ResponseMsg};
use std::collections::BTreeSet;
use std::io::BufReader;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

#[derive(Default)]
struct FakeState {
    addrs: Vec<AddrView>,
    services: Vec<ServiceSpec>,
    garps: Vec<(IpAddr, String, u32)>,
    snat: Vec<ctl::SnatSpec>,
    /// The SNAT changes asked for (`SnatAdd`, `SnatDel`, `SnatWan`), in order.
    snat_log: Vec<Request>,
    /// The address changes asked for (`AddrAdd`, `AddrDel`), in order.
    addr_log: Vec<Request>,
    /// The real server changes asked for (`RealServerAdd`, `RealServerEdit`,
    /// `RealServerDel`), in order.
    rs_log: Vec<Request>,
    /// rvsd.toml's `[sync]`, if any.
    sync_conf: Option<SyncConf>,
    /// The sync roles running: (master, backup).
    roles: (bool, bool),
    /// The sync role requests (`SyncDaemon`), in order.
    sync_log: Vec<Request>,
    /// The global timeouts (rvsd.toml's at start).
    timeouts: fnat::tcp_state::Timeouts,
    /// The `TimeoutsSet` requests, in order.
    timeouts_log: Vec<Request>,
    /// Refuse `TimeoutsSet` (as an rvsd that would).
    refuse_timeouts: bool,
    /// `Status`'s `started_ns`: another on every (re)start.
    started_ns: u64,
    /// `Status`'s `loaded_ns`: another on every (re)start and reload.
    loaded_ns: u64,
}

/// The fake rvsd's `[sync]`: its syncid and the roles it starts with.
#[derive(Debug, Clone, Copy)]
struct SyncConf {
    syncid: u8,
    master: bool,
    backup: bool,
}

impl FakeState {
    /// A fresh rvsd: its configuration's addresses, SNAT rules, sync roles and timeouts.
    fn fresh(
        addrs: Vec<AddrView>,
        snat: Vec<ctl::SnatSpec>,
        sync_conf: Option<SyncConf>,
        timeouts: fnat::tcp_state::Timeouts,
    ) -> FakeState {
        let roles = sync_conf.map_or((false, false), |c| (c.master, c.backup));
        let started_ns = next_start();
        FakeState { addrs, snat, sync_conf, roles, timeouts, started_ns, loaded_ns: started_ns, ..Default::default() }
    }

    /// rvsd's `TimeoutsGet` / `TimeoutsSet` (crates/rvsd's `State::timeouts_set`: 0 keeps a
    /// value).
    fn handle_timeouts(&mut self, req: Request) -> Response {
        match req {
            Request::TimeoutsGet {} => Response::Timeouts { timeouts: self.timeouts },
            Request::TimeoutsSet { tcp, tcpfin, udp } => {
                self.timeouts_log.push(req);
                if self.refuse_timeouts {
                    return refuse(ErrorCode::Invalid, "timeouts are fixed here".into());
                }
                let t = &mut self.timeouts;
                for (slot, v) in [(&mut t.established, tcp), (&mut t.fin_wait, tcpfin), (&mut t.udp, udp)] {
                    if v > 0 {
                        *slot = v;
                    }
                }
                Response::Done { gen: 2 }
            }
            other => refuse(ErrorCode::BadRequest, format!("not timeouts: {other:?}")),
        }
    }

    /// rvsd's `SyncDaemon` (crates/rvsd's `SyncShared::set`).
    fn handle_sync(&mut self, req: Request) -> Response {
        let Request::SyncDaemon { role, start, syncid, mcast_interface } = req.clone() else {
            return refuse(ErrorCode::BadRequest, "not sync".into());
        };
        self.sync_log.push(req);
        let Some(c) = self.sync_conf else {
            return refuse(
                ErrorCode::Unsupported,
                "connection sync is not set up: rvsd.toml has no [sync] section (its key, peers and syncid: docs/HA.md)"
                    .into(),
            );
        };
        if let Some(id) = syncid.filter(|id| *id != c.syncid) {
            return refuse(ErrorCode::Invalid, format!("--syncid {id}: rvsd's [sync] syncid is {}", c.syncid));
        }
        if let Some(dev) = mcast_interface {
            return refuse(ErrorCode::Invalid, format!("--mcast-interface {dev}: [sync] sends to unicast peers"));
        }
        match role {
            ctl::SyncRole::Master => self.roles.0 = start,
            ctl::SyncRole::Backup => self.roles.1 = start,
        }
        // rvsd answers a role switch Done, as every change.
        Response::Done { gen: 1 }
    }
}

struct FakeRvsd {
    path: PathBuf,
    dir: PathBuf,
    /// Addresses from "rvsd's configuration" (kept across restarts).
    config: Vec<AddrView>,
    /// SNAT rules from "rvsd's configuration" (`[[snat]]`, kept across restarts).
    snat_config: Mutex<Vec<ctl::SnatSpec>>,
    /// Services from "rvsd's configuration" (`[[service]]`, held after a restart).
    services_config: Mutex<Vec<ServiceSpec>>,
    /// `[sync]` (kept across restarts).
    sync_config: Mutex<Option<SyncConf>>,
    /// `[timeouts]` (kept across restarts).
    timeouts_config: Mutex<fnat::tcp_state::Timeouts>,
    state: Arc<Mutex<FakeState>>,
    conns: Arc<Mutex<Vec<UnixStream>>>,
    stop: Arc<AtomicBool>,
    /// rvsd is away: connections are closed as they come.
    down: Arc<AtomicBool>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A start time no other fake rvsd (or restart) has.
fn next_start() -> u64 {
    static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    STARTS.fetch_add(1, Ordering::Relaxed)
}

fn addr(dev: &str, net: &str, sapool: bool) -> AddrView {
    AddrView { dev: dev.into(), addr: net.parse().unwrap(), sapool, vip: false }
}

fn refuse(code: ErrorCode, m: String) -> Response {
    Response::error(code, m)
}

impl FakeState {
    /// rvsd's whole-state validation.
    fn check(&self, need_vip: bool) -> Result<(), String> {
        for s in &self.services {
            let key = s.service.key();
            // A fwmark service has no VIP (rvsd's, which take fwmarks, need none).
            if need_vip && s.service.fwmark == 0 && !self.addrs.iter().any(|a| a.addr.addr() == s.service.vip) {
                return Err(format!(
                    "service {key}: VIP {} is not an address of any port (rvsip addr add {}/32 dev DEV)",
                    s.service.vip, s.service.vip
                ));
            }
            for l in &s.laddrs {
                match self.addrs.iter().find(|a| a.addr.addr() == *l) {
                    // In standby until a port has it (a VRRP backup's LIP).
                    None => {}
                    Some(a) if !a.sapool => {
                        return Err(format!("service {key}: local address {l} is not a sapool address"))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// rvsd's SNAT requests (crates/rvsd's `State::snat_*`).
    fn handle_snat(&mut self, req: Request) -> Response {
        let done = Response::Done { gen: 2 };
        if !matches!(req, Request::SnatList {}) {
            self.snat_log.push(req.clone());
        }
        let find = |snat: &[ctl::SnatSpec], r: &ctl::SnatSpec| snat.iter().position(|o| o.same_match(r));
        match req {
            Request::SnatList {} => Response::Snat { rules: self.snat.clone() },
            Request::SnatAdd { rule } => {
                if find(&self.snat, &rule).is_some() {
                    return refuse(ErrorCode::Exists, format!("SNAT rule {} exists", rule.match_text()));
                }
                if self.snat.iter().any(|o| o.name.is_some() && o.name == rule.name) {
                    return refuse(ErrorCode::Exists, format!("a SNAT rule is named {:?} already", rule.name));
                }
                self.snat.push(rule);
                done
            }
            Request::SnatDel { rule } => match find(&self.snat, &rule) {
                Some(i) => {
                    self.snat.remove(i);
                    done
                }
                None => refuse(ErrorCode::NotFound, format!("no SNAT rule with match {}", rule.match_text())),
            },
            Request::SnatWan { rule, wan, add } => {
                let Some(i) = find(&self.snat, &rule) else {
                    return refuse(ErrorCode::NotFound, format!("no SNAT rule with match {}", rule.match_text()));
                };
                let list = &mut self.snat[i].wan;
                match (add, list.iter().position(|w| *w == wan)) {
                    (true, Some(_)) => refuse(ErrorCode::Exists, format!("has {wan} already")),
                    (true, None) => {
                        list.push(wan);
                        done
                    }
                    (false, Some(j)) => {
                        list.remove(j);
                        done
                    }
                    (false, None) => refuse(ErrorCode::NotFound, format!("no WAN address {wan}")),
                }
            }
            other => refuse(ErrorCode::BadRequest, format!("not SNAT: {other:?}")),
        }
    }

    fn handle(&mut self, req: Request, need_vip: bool) -> Response {
        if matches!(
            req,
            Request::SnatList {} | Request::SnatAdd { .. } | Request::SnatDel { .. } | Request::SnatWan { .. }
        ) {
            return self.handle_snat(req);
        }
        if matches!(req, Request::AddrAdd { .. } | Request::AddrDel { .. }) {
            self.addr_log.push(req.clone());
        }
        if matches!(req, Request::RealServerAdd { .. } | Request::RealServerEdit { .. } | Request::RealServerDel { .. })
        {
            self.rs_log.push(req.clone());
        }
        if matches!(req, Request::SyncDaemon { .. }) {
            return self.handle_sync(req);
        }
        if matches!(req, Request::TimeoutsGet {} | Request::TimeoutsSet { .. }) {
            return self.handle_timeouts(req);
        }
        let before = (self.addrs.clone(), self.services.clone());
        let find =
            |svcs: &[ServiceSpec], k: &fnat::service::ServiceKey| svcs.iter().position(|s| s.service.key() == *k);
        let r = match req {
            Request::Status {} => {
                return Response::Status {
                    version: "fake".into(),
                    gen: 1,
                    worker_gens: vec![1],
                    conn_pool_size: 1,
                    uptime_s: 1,
                    started_ns: self.started_ns,
                    loaded_ns: self.loaded_ns,
                }
            }
            Request::AddrList {} => return Response::Addrs { addrs: self.addrs.clone() },
            // One service a page, so that the agent's paging is exercised.
            Request::ServicePage { from, .. } => {
                let services = self
                    .services
                    .iter()
                    .skip(from as usize)
                    .take(1)
                    .map(|s| ServiceView {
                        service: s.service.clone(),
                        laddrs: s.laddrs.clone(),
                        dests: s
                            .service
                            .real_servers
                            .iter()
                            .map(|r| RealServerView {
                                config: *r,
                                active: 0,
                                inactive: 0,
                                persist: 0,
                                stats: None,
                                inhibited: false,
                            })
                            .collect(),
                        stats: None,
                    })
                    .collect();
                let next = (from as usize + 1 < self.services.len()).then_some(from + 1);
                return Response::ServicePage { services, next, gen: 1 };
            }
            Request::SendGarp { addr, dev, count } => {
                self.garps.push((addr, dev, count));
                return Response::Done { gen: 1 };
            }
            Request::AddrAdd { dev, addr, sapool, .. } => {
                if self.addrs.iter().any(|a| a.addr.addr() == addr.addr()) {
                    return refuse(ErrorCode::Exists, format!("address {} exists", addr.addr()));
                }
                self.addrs.push(AddrView { dev, addr, sapool, vip: false });
                Ok(())
            }
            Request::AddrDel { dev, addr, .. } => {
                match self.addrs.iter().position(|a| a.dev == dev && a.addr.addr() == addr) {
                    Some(i) => {
                        self.addrs.remove(i);
                        Ok(())
                    }
                    None => return refuse(ErrorCode::NotFound, format!("no address {addr} on {dev}")),
                }
            }
            Request::ServiceReplace { services, .. } => {
                self.services = services;
                Ok(())
            }
            Request::ServiceAdd(spec) => {
                if find(&self.services, &spec.service.key()).is_some() {
                    return refuse(ErrorCode::Exists, "exists".into());
                }
                self.services.push(spec);
                Ok(())
            }
            Request::ServiceDel { key } => match find(&self.services, &key) {
                Some(i) => {
                    self.services.remove(i);
                    Ok(())
                }
                None => return refuse(ErrorCode::NotFound, format!("no service {key}")),
            },
            Request::RealServerEdit { key, addr, port, change } => {
                let Some(i) = find(&self.services, &key) else {
                    return refuse(ErrorCode::NotFound, format!("no service {key}"));
                };
                match self.services[i].service.real_servers.iter_mut().find(|r| r.addr == addr && r.port == port) {
                    Some(r) => {
                        r.weight = change.weight.unwrap_or(r.weight);
                        r.upper = change.upper.unwrap_or(r.upper);
                        r.lower = change.lower.unwrap_or(r.lower);
                        r.fwd = change.fwd.unwrap_or(r.fwd);
                        Ok(())
                    }
                    None => return refuse(ErrorCode::NotFound, "no real server".into()),
                }
            }
            Request::RealServerAdd { key, rs } => {
                let Some(i) = find(&self.services, &key) else {
                    return refuse(ErrorCode::NotFound, format!("no service {key}"));
                };
                let list = &mut self.services[i].service.real_servers;
                if list.iter().any(|r| r.addr == rs.addr && r.port == rs.port) {
                    return refuse(ErrorCode::Exists, "real server exists".into());
                }
                list.push(rs);
                Ok(())
            }
            Request::RealServerDel { key, addr, port } => {
                let Some(i) = find(&self.services, &key) else {
                    return refuse(ErrorCode::NotFound, format!("no service {key}"));
                };
                let list = &mut self.services[i].service.real_servers;
                match list.iter().position(|r| r.addr == addr && r.port == port) {
                    Some(j) => {
                        list.remove(j);
                        Ok(())
                    }
                    None => return refuse(ErrorCode::NotFound, "no real server".into()),
                }
            }
            other => return refuse(ErrorCode::BadRequest, format!("not faked: {other:?}")),
        };
        let r: Result<(), String> = r.and_then(|()| self.check(need_vip));
        match r {
            Ok(()) => Response::Done { gen: 2 },
            Err(m) => {
                (self.addrs, self.services) = before;
                refuse(ErrorCode::Invalid, m)
            }
        }
    }
}

impl FakeRvsd {
    fn path() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "rvs-agent-fake-rvsd-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        (dir.join("rvsd.sock"), dir)
    }

    fn start_at(path: PathBuf, dir: PathBuf, config: Vec<AddrView>, need_vip: bool) -> FakeRvsd {
        let started_ns = next_start();
        let state = Arc::new(Mutex::new(FakeState {
            addrs: config.clone(),
            started_ns,
            loaded_ns: started_ns,
            ..Default::default()
        }));
        let f = FakeRvsd {
            path,
            dir,
            config,
            snat_config: Mutex::default(),
            services_config: Mutex::default(),
            sync_config: Mutex::default(),
            timeouts_config: Mutex::default(),
            state,
            conns: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            down: Arc::default(),
        };
        let l = UnixListener::bind(&f.path).unwrap();
        l.set_nonblocking(true).unwrap();
        let (state, conns, stop, down) = (f.state.clone(), f.conns.clone(), f.stop.clone(), f.down.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if down.load(Ordering::Relaxed) {
                    continue;
                }
                s.set_nonblocking(false).unwrap();
                conns.lock().unwrap().push(s.try_clone().unwrap());
                let state = state.clone();
                std::thread::spawn(move || {
                    let mut w = s.try_clone().unwrap();
                    let mut r = BufReader::new(s);
                    while let Ok(msg) = frame::read::<_, RequestMsg>(&mut r) {
                        let resp = state.lock().unwrap().handle(msg.req, need_vip);
                        if frame::write(&mut w, &ResponseMsg::from(resp)).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        f
    }

    fn start(config: Vec<AddrView>, need_vip: bool) -> FakeRvsd {
        let (path, dir) = Self::path();
        Self::start_at(path, dir, config, need_vip)
    }

    /// Drops every connection and forgets all but the configuration.
    fn restart(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let snat = self.snat_config.lock().unwrap().clone();
        let sync = *self.sync_config.lock().unwrap();
        let timeouts = *self.timeouts_config.lock().unwrap();
        let mut fresh = FakeState::fresh(self.config.clone(), snat, sync, timeouts);
        fresh.services = self.services_config.lock().unwrap().clone();
        *self.state.lock().unwrap() = fresh;
    }

    /// A SIGHUP: the state is the configuration's again, but for the addresses it lacks
    /// (leased by the agent's connection, which stays open); sync roles keep running.
    fn reload(&self) {
        let snat = self.snat_config.lock().unwrap().clone();
        let sync = *self.sync_config.lock().unwrap();
        let timeouts = *self.timeouts_config.lock().unwrap();
        let mut fresh = FakeState::fresh(self.config.clone(), snat, sync, timeouts);
        fresh.services = self.services_config.lock().unwrap().clone();
        self.with(|s| {
            let leased: Vec<AddrView> =
                s.addrs.iter().filter(|a| !fresh.addrs.iter().any(|f| f.addr == a.addr)).cloned().collect();
            fresh.addrs.extend(leased);
            fresh.started_ns = s.started_ns;
            fresh.roles = s.roles;
            *s = fresh;
        });
    }

    /// rvsd.toml's timeouts: held now (as after a start) and after every restart.
    fn configure_timeouts(&self, t: fnat::tcp_state::Timeouts) {
        *self.timeouts_config.lock().unwrap() = t;
        self.with(|s| s.timeouts = t);
    }

    /// The timeouts rvsd holds: `(tcp, tcpfin, udp)`.
    fn timeouts(&self) -> (u32, u32, u32) {
        self.with(|s| (s.timeouts.established, s.timeouts.fin_wait, s.timeouts.udp))
    }

    /// The `TimeoutsSet` requests since the last call, as `(tcp, tcpfin, udp)`.
    fn timeouts_log(&self) -> Vec<(u32, u32, u32)> {
        self.with(|s| std::mem::take(&mut s.timeouts_log))
            .into_iter()
            .map(|r| match r {
                Request::TimeoutsSet { tcp, tcpfin, udp } => (tcp, tcpfin, udp),
                other => panic!("not TimeoutsSet: {other:?}"),
            })
            .collect()
    }

    /// rvsd.toml's `[sync]`: its roles run now (as after a start) and after every restart.
    fn configure_sync(&self, conf: SyncConf) {
        *self.sync_config.lock().unwrap() = Some(conf);
        self.with(|s| {
            s.sync_conf = Some(conf);
            s.roles = (conf.master, conf.backup);
        });
    }

    /// The sync role requests since the last call, as `(role, start, syncid)`.
    fn sync_log(&self) -> Vec<(ctl::SyncRole, bool, Option<u8>)> {
        self.with(|s| std::mem::take(&mut s.sync_log))
            .into_iter()
            .map(|r| match r {
                Request::SyncDaemon { role, start, syncid, mcast_interface: None } => (role, start, syncid),
                other => panic!("not a sync role request (or with an interface): {other:?}"),
            })
            .collect()
    }

    /// rvsd.toml's `[[snat]]` rules: held now and after every restart.
    fn configure_snat(&self, rules: Vec<ctl::SnatSpec>) {
        *self.snat_config.lock().unwrap() = rules.clone();
        self.with(|s| s.snat = rules);
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    fn has_addr(&self, a: &str) -> bool {
        let a: IpAddr = a.parse().unwrap();
        self.with(|s| s.addrs.iter().any(|x| x.addr.addr() == a))
    }

    fn weights(&self) -> Option<Vec<(SocketAddr, u32)>> {
        self.with(|s| {
            s.services
                .iter()
                .find(|x| x.service.vport == 80)
                .map(|x| x.service.real_servers.iter().map(|r| (SocketAddr::new(r.addr, r.port), r.weight)).collect())
        })
    }
}

impl Drop for FakeRvsd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const VIP: &str = "192.0.2.1";

fn vip() -> IpNet {
    format!("{VIP}/32").parse().unwrap()
}

fn key() -> ServiceKey {
    ServiceKey::new(Proto::Tcp, VIP.parse().unwrap(), 80)
}

fn rs(i: u8) -> SocketAddr {
    format!("10.0.0.{i}:8080").parse().unwrap()
}

fn service() -> Service {
    Service {
        key: key(),
        scheduler: "wrr".into(),
        persistence_timeout: None,
        persistence_granularity: None,
        syn_proxy: None,
        proxy_protocol: None,
        sched_flags: None,
        deny: Vec::new(),
        allow: Vec::new(),
        conn_timeout: 0,
        dest_check: None,
        expire_quiescent: false,
        ops: false,
        local_addrs: vec![LocalAddr {
            addr: "10.0.0.100".parse().unwrap(),
            port_name: "dpdk1".into(),
            moves_with_vip: false,
        }],
        real_servers: vec![RealServer::new(rs(1), 3), RealServer::new(rs(2), 2)],
    }
}

fn config() -> Vec<AddrView> {
    vec![addr("dpdk0", "192.0.2.254/24", false), addr("dpdk1", "10.0.0.100/24", true)]
}

const T: Duration = Duration::from_secs(5);

#[test]
fn services_follow_the_vip_when_rvsd_needs_it() {
    let fake = FakeRvsd::start(config(), true);
    // An earlier run's leftover service is replaced at start.
    fake.with(|s| {
        s.addrs.push(addr("dpdk0", "192.0.2.9/32", false));
        let mut old = to_spec(&service()).unwrap();
        old.service.vip = "192.0.2.9".parse().unwrap();
        s.services.push(old);
    });
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[service()]).unwrap();
    // Backup: nothing loaded (rvsd would refuse it without the VIP).
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(dp.status().services_follow_vips);
    assert_eq!(fake.with(|s| s.services.len()), 0, "the leftover service is gone, ours waits for its VIP");
    // Master: VIP, then its services, then the announcement.
    dp.add_vip(vip(), "dpdk0").unwrap();
    dp.send_garp(vip().addr(), "dpdk0", 5).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(fake.has_addr(VIP));
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 2)]));
    assert_eq!(fake.with(|s| s.services[0].laddrs.clone()), vec!["10.0.0.100".parse::<IpAddr>().unwrap()]);
    assert_eq!(fake.with(|s| s.garps.clone()), vec![(vip().addr(), "dpdk0".to_string(), 5)]);
    // Health: inhibit, remove.
    dp.set_weight(&key(), rs(1), 0).unwrap();
    dp.del_real_server(&key(), rs(2)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.weights(), Some(vec![(rs(1), 0)]));
    // Backup again: services first, then the VIP.
    dp.del_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(!fake.has_addr(VIP));
    assert_eq!(fake.weights(), None);
    // Health changes while backup are kept and applied with the VIP.
    dp.add_real_server(&key(), RealServer::new(rs(2), 2)).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.weights(), Some(vec![(rs(1), 0), (rs(2), 2)]));
    // The unknown service is the caller's mistake.
    let other = ServiceKey { vport: 81, ..key() };
    assert!(matches!(dp.set_weight(&other, rs(1), 1), Err(DataplaneError::NoService(_))));
}

/// keepalived's `virtual_server fwmark 7` reaches rvsd as its fwmark service (rvsd's key:
/// mark 7, TCP, 0.0.0.0, port 0), a DR real server with port 0 (rvsd refuses another) and
/// a FullNAT one with its port, and rvsd's own validation takes the set; health changes
/// reach it by that key; having no VIP, it is loaded whatever the VIPs do, also when
/// rvsd makes the VIP:port services follow their VIP. Its key's wire form has `fwmark`,
/// which a VIP:port key's lacks (as before fwmark services).
#[test]
fn a_fwmark_service_reaches_rvsd_by_its_key_with_port_zero_dr_servers() {
    use fnat::types::FwdMode;
    let fake = FakeRvsd::start(config(), true);
    let dp = RvsdDataplane::new(&fake.path);
    let fw = ServiceKey::of_fwmark(7, false);
    let (dr, fnat_rs): (SocketAddr, SocketAddr) = ("10.0.0.11:0".parse().unwrap(), "10.0.0.12:443".parse().unwrap());
    let fwmark = Service {
        key: fw,
        real_servers: vec![RealServer { fwd: FwdMode::Dr, ..RealServer::new(dr, 3) }, RealServer::new(fnat_rs, 2)],
        ..service()
    };
    dp.set_services(&[service(), fwmark]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(dp.status().services_follow_vips, "the VIP:port service waits for its VIP");
    let loaded = fake.with(|s| s.services.clone());
    assert_eq!(loaded.len(), 1, "the fwmark service is loaded without a VIP");
    let svc = &loaded[0].service;
    assert_eq!(svc.key(), fnat::service::ServiceKey::of_fwmark(7, false));
    assert_eq!(core_key(&fw), svc.key());
    assert_eq!((svc.fwmark, svc.vip.to_string(), svc.vport), (7, "0.0.0.0".to_string(), 0));
    let rs: Vec<_> = svc.real_servers.iter().map(|r| (r.addr.to_string(), r.port, r.fwd, r.weight)).collect();
    assert_eq!(rs, [("10.0.0.11".into(), 0, FwdMode::Dr, 3), ("10.0.0.12".into(), 443, FwdMode::FullNat, 2)]);
    assert_eq!(loaded[0].laddrs, ["10.0.0.100".parse::<IpAddr>().unwrap()]);
    // rvsd's validation takes it, and would refuse a DR server with a port of its own.
    let valid = |set: &[ServiceSpec]| ctl::verbs::validate(set, &|_| None, None, &Default::default()).map(|_| ());
    assert_eq!(valid(&loaded), Ok(()));
    let mut bad = loaded.clone();
    bad[0].service.real_servers[0].port = 80;
    assert!(valid(&bad).is_err());
    // Health changes by its key; the VIP comes and goes: the fwmark service stays.
    dp.set_weight(&fw, dr, 0).unwrap();
    dp.del_real_server(&fw, fnat_rs).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.with(|s| s.services.len()), 2, "the VIP:port service joins");
    dp.del_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let left = fake.with(|s| s.services.clone());
    assert_eq!(left.len(), 1);
    let rs: Vec<_> = left[0].service.real_servers.iter().map(|r| (r.addr.to_string(), r.port, r.weight)).collect();
    assert_eq!((left[0].service.fwmark, rs), (7, vec![("10.0.0.11".to_string(), 0, 0)]));
    // The wire form.
    assert_eq!(serde_json::to_value(fw).unwrap()["fwmark"], 7);
    assert!(serde_json::to_value(key()).unwrap().get("fwmark").is_none());
    let old: ServiceKey = serde_json::from_str(r#"{"proto":"Tcp","vip":"192.0.2.1","vport":80}"#).unwrap();
    assert_eq!(old, key());
}

/// A virtual server the file drops on reload leaves rvsd (the fwmark one here, and a
/// VIP:port one), while a service another tool added (rvsadm) stays.
#[test]
fn a_service_dropped_on_reload_is_unloaded_and_another_tool_s_stays() {
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    let fw = Service { key: ServiceKey::of_fwmark(7, false), ..service() };
    dp.set_services(&[service(), fw.clone()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let keys =
        || -> Vec<fnat::service::ServiceKey> { fake.with(|s| s.services.iter().map(|x| x.service.key()).collect()) };
    assert_eq!(keys().len(), 2);
    let theirs = fnat::service::ServiceConfig::new(fnat::types::Proto::Udp, vip().addr(), 53);
    fake.with(|s| s.services.push(ServiceSpec { service: theirs.clone(), laddrs: vec![] }));
    dp.set_services(&[service()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(keys(), vec![core_key(&key()), theirs.key()], "the fwmark service is gone, rvsadm's stays");
    dp.set_services(&[fw]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let mut now = keys();
    now.sort();
    assert_eq!(now, vec![fnat::service::ServiceKey::of_fwmark(7, false), theirs.key()]);
}

/// What keepalived.conf dropped while rvsd was away (a service, a SNAT rule), and the
/// restarted rvsd holds from its own rvsd.toml, is rvsd's own: kept, not deleted as what
/// the agent once loaded (the agent tells a restart by `Status`'s `started_ns`). A
/// reconnection to the same rvsd still unloads what the file drops.
#[test]
fn what_a_restarted_rvsd_has_from_rvsd_toml_is_kept_though_the_agent_loaded_it_before() {
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    let fw = Service { key: ServiceKey::of_fwmark(7, false), ..service() };
    let rule = snat_rule("A", "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1", &["198.18.0.1"]);
    dp.set_services(&[service(), fw.clone()]).unwrap();
    dp.set_snat(std::slice::from_ref(&rule)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let keys = || -> Vec<fnat::service::ServiceKey> {
        let mut k: Vec<_> = fake.with(|s| s.services.iter().map(|x| x.service.key()).collect());
        k.sort();
        k
    };
    let fw_key = fnat::service::ServiceKey::of_fwmark(7, false);
    let mut both = vec![core_key(&key()), fw_key];
    both.sort();
    assert_eq!(keys(), both);
    // rvsd stops; the operator puts the fwmark service and the rule in rvsd.toml; the file
    // drops them (a reload while rvsd is away); rvsd starts again.
    let fw_spec = fake.with(|s| s.services.iter().find(|x| x.service.key() == fw_key).cloned()).unwrap();
    fake.down.store(true, Ordering::Relaxed);
    fake.restart();
    *fake.services_config.lock().unwrap() = vec![fw_spec];
    fake.configure_snat(vec![rule.clone()]);
    fake.restart();
    dp.set_services(&[service()]).unwrap();
    dp.set_snat(&[]).unwrap();
    wait_until("the agent to find rvsd away", T, || !dp.status().connected);
    fake.down.store(false, Ordering::Relaxed);
    wait_until("the file's service to be restored", T, || keys().contains(&core_key(&key())));
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(keys(), both, "rvsd.toml's fwmark service stays");
    assert_eq!(fake.with(|s| s.snat.clone()), [rule], "rvsd.toml's rule stays");
    // A reconnection to the same process: what the agent loaded and the file drops goes.
    for c in fake.conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
    dp.set_services(&[fw]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(keys(), vec![fw_key], "the VIP:port service the agent loaded is unloaded");
}

/// A reload's edit of a real server (forwarding method, thresholds, weight) reaches rvsd
/// as one `RealServerEdit` of each, the server staying in place (no removal, so its
/// connections stay), and is part of the wanted state: a restarted rvsd gets it back.
#[test]
fn a_real_server_edit_reaches_rvsd_and_is_restored_after_a_restart() {
    use fnat::types::FwdMode;
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[service()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let edited = RealServer { weight: 5, upper: 100, lower: 50, fwd: FwdMode::Nat, ..RealServer::new(rs(2), 2) };
    dp.edit_real_server(&key(), edited.clone()).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let servers = || -> Vec<(u16, u32, u32, u32, FwdMode)> {
        fake.with(|s| {
            s.services[0].service.real_servers.iter().map(|r| (r.port, r.weight, r.upper, r.lower, r.fwd)).collect()
        })
    };
    let want: Vec<(u16, u32, u32, u32, FwdMode)> =
        vec![(8080, 3, 0, 0, FwdMode::FullNat), (8080, 5, 100, 50, FwdMode::Nat)];
    assert_eq!(servers(), want);
    let change = RealServerEdit { weight: Some(5), upper: Some(100), lower: Some(50), fwd: Some(FwdMode::Nat) };
    let edit = Request::RealServerEdit { key: core_key(&key()), addr: rs(2).ip(), port: 8080, change };
    assert_eq!(fake.with(|s| s.rs_log.clone()), [edit], "one edit, the server kept in place");
    // Only what differs is asked for (a weight set would bring back a server rvsd's
    // passive check holds out); an unknown server is refused at once, nothing queued.
    let thresholds = RealServer { upper: 200, lower: 0, ..edited };
    dp.edit_real_server(&key(), thresholds.clone()).unwrap();
    dp.edit_real_server(&key(), thresholds).unwrap();
    assert!(dp.edit_real_server(&key(), RealServer::new(rs(9), 1)).is_err());
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let change = RealServerEdit { upper: Some(200), lower: Some(0), ..Default::default() };
    let edit = Request::RealServerEdit { key: core_key(&key()), addr: rs(2).ip(), port: 8080, change };
    assert_eq!(fake.with(|s| s.rs_log[1..].to_vec()), [edit], "once: the second asks for nothing");
    let want: Vec<(u16, u32, u32, u32, FwdMode)> =
        vec![(8080, 3, 0, 0, FwdMode::FullNat), (8080, 5, 200, 0, FwdMode::Nat)];
    assert_eq!(servers(), want);
    fake.restart();
    wait_until("the services to be restored", T, || fake.weights().is_some());
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(servers(), want);
}

#[test]
fn services_stay_loaded_when_rvsd_allows_it() {
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[service()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(!dp.status().services_follow_vips);
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 2)]), "loaded on the backup too");
    dp.add_vip(vip(), "dpdk0").unwrap();
    dp.set_weight(&key(), rs(2), 0).unwrap();
    dp.del_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(!fake.has_addr(VIP));
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 0)]), "still loaded without the VIP");
}

#[test]
fn reconnects_and_restores_what_a_restarted_rvsd_forgot() {
    let (path, dir) = FakeRvsd::path();
    let dp = RvsdDataplane::new(&path);
    dp.set_services(&[service()]).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    // No rvsd yet: reported, retried.
    wait_until("the error to show", T, || dp.status().last_error.is_some_and(|e| e.contains("unreachable")));
    assert!(!dp.status().connected);
    let fake = FakeRvsd::start_at(path, dir, config(), true);
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(fake.has_addr(VIP));
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 2)]));
    dp.set_weight(&key(), rs(2), 0).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    // rvsd restarts: everything is put back (with the live weights) and the VIP announced.
    fake.restart();
    // (The announcement follows the address: wait for both.)
    let announced = || fake.with(|s| s.garps.iter().any(|g| g.0 == vip().addr()));
    wait_until("the VIP to be restored and announced again", T, || {
        fake.has_addr(VIP) && fake.weights().is_some() && announced()
    });
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 0)]));
    assert!(dp.wait_idle(T), "{:?}", dp.status());
}

#[test]
fn a_lip_rvsd_lacks_is_named_and_picked_up_once_added() {
    let fake = FakeRvsd::start(vec![addr("dpdk0", "192.0.2.254/24", false)], false);
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[service()]).unwrap();
    wait_until("the error", T, || dp.status().last_error.is_some());
    let e = dp.status().last_error.unwrap();
    assert!(e.contains("local address 10.0.0.100") && e.contains("not a sapool address of rvsd"), "{e}");
    assert!(dp.status().connected, "a refusal is not a lost connection");
    assert_eq!(fake.weights(), None);
    // The operator adds it to rvsd: picked up at the next reconciliation.
    fake.with(|s| s.addrs.push(addr("dpdk1", "10.0.0.100/24", true)));
    wait_until("the service to load", REFUSED_RETRY + T, || fake.weights().is_some());
    assert!(dp.wait_idle(T), "{:?}", dp.status());
}

#[test]
fn closing_applies_the_last_changes() {
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    dp.add_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    dp.del_vip(vip(), "dpdk0").unwrap();
    dp.close(T);
    assert!(!fake.has_addr(VIP), "the VIP released on shutdown left rvsd");
}

#[test]
fn services_convert_to_rvsd_form() {
    let mut s = service();
    s.persistence_timeout = Some(300);
    s.persistence_granularity = Some("255.255.255.0".parse().unwrap());
    let spec = to_spec(&s).unwrap();
    assert_eq!(spec.service.sched, SchedKind::Wrr);
    let p = spec.service.persistence.unwrap();
    assert_eq!((p.timeout_s, p.netmask_v4, p.netmask_v6), (300, 24, 128));
    assert_eq!(
        spec.service.real_servers[0],
        RealServerConfig { addr: rs(1).ip(), port: 8080, weight: 3, upper: 0, lower: 0, fwd: Default::default() }
    );
    assert!(spec.service.deny.is_empty() && spec.service.allow.is_empty());
    // uthreshold / lthreshold and the hash flags reach rvsd.
    let mut t = s.clone();
    (t.real_servers[0].upper, t.real_servers[0].lower) = (100, 80);
    t.sched_flags = Some(crate::dataplane::SchedFlags { port: true, fallback: false });
    let ts = to_spec(&t).unwrap();
    assert_eq!((ts.service.real_servers[0].upper, ts.service.real_servers[0].lower), (100, 80));
    assert_eq!((ts.service.hash_port, ts.service.hash_fallback), (true, false));
    s.deny = vec!["192.0.2.0/24".parse().unwrap()];
    s.allow = vec!["10.0.0.0/8".parse().unwrap()];
    let spec = to_spec(&s).unwrap();
    assert_eq!((spec.service.deny, spec.service.allow), (s.deny.clone(), s.allow.clone()));
    // establish_timeout reaches rvsd as the service's conn_timeout (0: the global ones).
    assert_eq!(spec.service.conn_timeout, 0);
    s.conn_timeout = 7200;
    assert_eq!(to_spec(&s).unwrap().service.conn_timeout, 7200);
    // dest_check reaches rvsd as the service's passive check.
    assert_eq!(spec.service.dest_check, None);
    s.dest_check = Some(Default::default());
    assert_eq!(to_spec(&s).unwrap().service.dest_check, Some(Default::default()));
    s.expire_quiescent = true;
    assert!(to_spec(&s).unwrap().service.expire_quiescent);
    s.ops = true;
    assert!(to_spec(&s).unwrap().service.ops);
    s.persistence_granularity = Some("255.0.255.0".parse().unwrap());
    assert!(to_spec(&s).unwrap_err().contains("not a netmask"));
    s.scheduler = "lblc".into();
    assert!(to_spec(&s).unwrap_err().contains("lb_algo lblc"));
}

/// A keepalived `real_server` with port 0 is listed by rvsd with the virtual port: the
/// agent sees no difference to reconcile.
#[test]
fn a_port_zero_real_server_matches_rvsds_listing() {
    let mut spec = ServiceSpec {
        service: ServiceConfig::new(fnat::types::Proto::Tcp, "192.0.2.1".parse().unwrap(), 80),
        laddrs: vec!["10.0.0.1".parse().unwrap()],
    };
    spec.service.real_servers = vec![RealServerConfig {
        addr: "10.0.0.2".parse().unwrap(),
        port: 0,
        weight: 1,
        upper: 0,
        lower: 0,
        fwd: Default::default(),
    }];
    let mut listed = spec.clone();
    listed.service.real_servers[0].port = 80;
    assert_eq!(canonical(&spec), canonical(&listed));
    listed.service.real_servers[0].port = 81;
    assert_ne!(canonical(&spec), canonical(&listed));
}

#[test]
fn syn_proxy_reaches_rvsd_form() {
    let mut s = service();
    assert_eq!(to_spec(&s).unwrap().service.synproxy, None);
    s.syn_proxy = Some(fnat::synproxy::SynProxyMode::On);
    assert_eq!(to_spec(&s).unwrap().service.synproxy, Some(fnat::synproxy::SynProxyMode::On));
    s.key.proto = crate::dataplane::Proto::Udp;
    assert!(to_spec(&s).unwrap_err().contains("syn_proxy is for TCP services"));
}

#[test]
fn proxy_protocol_reaches_rvsd_form() {
    use fnat::service::ProxyProtocol;
    let mut s = service();
    assert_eq!(to_spec(&s).unwrap().service.proxy_protocol, None);
    s.proxy_protocol = Some(ProxyProtocol::V2);
    assert_eq!(to_spec(&s).unwrap().service.proxy_protocol, Some(ProxyProtocol::V2));
    s.key.proto = crate::dataplane::Proto::Udp;
    assert_eq!(to_spec(&s).unwrap().service.proxy_protocol, Some(ProxyProtocol::V2), "UDP takes v2");
    s.proxy_protocol = Some(ProxyProtocol::V1);
    assert!(to_spec(&s).unwrap_err().contains("proxy_protocol v1 speaks of TCP only"));
}

fn snat_rule(name: &str, m: &str, wan: &[&str]) -> ctl::SnatSpec {
    ctl::SnatSpec {
        name: Some(name.into()),
        wan: wan.iter().map(|w| w.parse().unwrap()).collect(),
        ..ctl::SnatSpec::from_match(m).unwrap()
    }
}

/// keepalived.conf's SNAT rules at start, on a reload (one rule's WAN addresses changed,
/// one removed, one added), after rvsd restarts and when the file has none left; rvsd.toml's
/// rule is never touched.
#[test]
fn snat_rules_are_reconciled_by_match_and_others_are_left_alone() {
    let fake = FakeRvsd::start(config(), false);
    let toml = snat_rule("from-toml", "proto=udp,src-range=10.9.0.0/24", &["198.18.0.9"]);
    fake.configure_snat(vec![toml.clone()]);
    let m_a = "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1";
    let a = snat_rule("A", m_a, &["198.18.0.1", "198.18.0.2"]);
    let b = snat_rule("B", "proto=udp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1", &["198.18.0.3"]);
    let c = snat_rule("C", "proto=tcp,dst-range=123.1.2.0/24,iif=dpdk0", &["198.18.0.5"]);
    let log = || fake.with(|s| std::mem::take(&mut s.snat_log));
    let rules = || fake.with(|s| s.snat.clone());
    // Start: A and B are added, with their WAN addresses.
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_snat(&[a.clone(), b.clone()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(log(), [Request::SnatAdd { rule: a.clone() }, Request::SnatAdd { rule: b.clone() }]);
    assert_eq!(rules(), [toml.clone(), a.clone(), b.clone()]);
    // Reload: A keeps 198.18.0.2, loses 198.18.0.1, gains 198.18.0.4; B goes; C comes.
    let a2 = snat_rule("A", m_a, &["198.18.0.2", "198.18.0.4"]);
    dp.set_snat(&[a2.clone(), c.clone()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let wan = |ip: &str, add| Request::SnatWan { rule: a2.clone(), wan: ip.parse().unwrap(), add };
    assert_eq!(
        log(),
        [
            Request::SnatDel { rule: b.clone() },
            wan("198.18.0.4", true),
            wan("198.18.0.1", false),
            Request::SnatAdd { rule: c.clone() }
        ]
    );
    assert_eq!(rules(), [toml.clone(), a2.clone(), c.clone()]);
    // The same rules again: nothing to do.
    dp.set_snat(&[a2.clone(), c.clone()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(log(), []);
    // rvsd restarts with its own rule only: the agent's are added again.
    fake.restart();
    wait_until("the SNAT rules to be restored", T, || rules().len() == 3);
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(rules(), [toml.clone(), a2.clone(), c.clone()]);
    log();
    // No rule left in the file: the agent's go, rvsd.toml's stays.
    dp.set_snat(&[]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(log(), [Request::SnatDel { rule: a2.clone() }, Request::SnatDel { rule: c.clone() }]);
    assert_eq!(rules(), std::slice::from_ref(&toml));
    // And nothing more is asked of rvsd about SNAT.
    dp.set_snat(&[]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(log(), []);
}

/// DPVS's `protocol ICMP` rule from keepalived.conf reaches rvsd as a `proto=icmp` rule
/// (over the control socket), next to a TCP rule with the same ranges: two rules, each
/// reconciled by its own match; dropping the ICMP one deletes it only.
#[test]
fn an_icmp_snat_rule_from_keepalived_conf_is_its_own_rule_in_rvsd() {
    use crate::keepalived::{parse_str, Options};
    let block = |name: &str, proto: &str| {
        format!(
            "virtual_server match {name} {{\n protocol {proto}\n lb_kind SNAT\n\
             src-range 192.168.100.0-192.168.100.254\n oif dpdk1\n real_server 198.18.0.1 0 {{\n }}\n}}\n"
        )
    };
    let rules_of = |text: &str| {
        let l = parse_str(text, "k.conf", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        l.config.snat.into_iter().map(|s| s.rule).collect::<Vec<_>>()
    };
    let both = rules_of(&format!("{}{}", block("WEB", "TCP"), block("PING", "ICMP")));
    let (tcp, icmp) = (both[0].clone(), both[1].clone());
    assert_eq!(
        icmp,
        snat_rule("PING", "proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1", &["198.18.0.1"])
    );
    let fake = FakeRvsd::start(config(), false);
    let log = || fake.with(|s| std::mem::take(&mut s.snat_log));
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_snat(&both).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(log(), [Request::SnatAdd { rule: tcp.clone() }, Request::SnatAdd { rule: icmp.clone() }]);
    assert_eq!(fake.with(|s| s.snat.clone()), [tcp.clone(), icmp.clone()]);
    // The ICMP rule leaves the file: only it goes.
    dp.set_snat(&rules_of(&block("WEB", "TCP"))).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(log(), [Request::SnatDel { rule: icmp }]);
    assert_eq!(fake.with(|s| s.snat.clone()), [tcp]);
}

/// A file rule with the match of one rvsd already has (rvsd.toml's) sets its WAN
/// addresses, and is not deleted when the file drops it (the agent did not add it); a
/// refusal (a name rvsd already has) is named in the status.
#[test]
fn snat_rules_rvsd_had_are_synced_not_deleted_and_refusals_are_named() {
    let fake = FakeRvsd::start(config(), false);
    let m = "proto=udp,src-range=10.9.0.0/24";
    let toml = snat_rule("from-toml", m, &["198.18.0.9"]);
    fake.configure_snat(vec![toml.clone()]);
    let dp = RvsdDataplane::new(&fake.path);
    let file = snat_rule("mine", m, &["198.18.0.8"]);
    dp.set_snat(std::slice::from_ref(&file)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.with(|s| s.snat.clone()), [snat_rule("from-toml", m, &["198.18.0.8"])]);
    dp.set_snat(&[]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.with(|s| s.snat.len()), 1, "not the agent's to delete");
    let clash = snat_rule("from-toml", "proto=tcp,oif=dpdk1", &["198.18.0.7"]);
    dp.set_snat(&[clash]).unwrap();
    wait_until("the refusal", T, || dp.status().last_error.is_some());
    let e = dp.status().last_error.unwrap();
    assert!(e.contains("add SNAT rule from-toml") && e.contains("named"), "{e}");
}

const LIP: &str = "10.0.0.100";

fn lip() -> IpNet {
    format!("{LIP}/24").parse().unwrap()
}

/// The service, its local address moving with the VIP (a `virtual_ipaddress ... dev dpdk1`
/// of the instance too).
fn lip_service() -> Service {
    let mut s = service();
    s.local_addrs[0].moves_with_vip = true;
    s
}

/// rvsd's configuration without the LIP (the agent moves it).
fn lip_config() -> Vec<AddrView> {
    vec![addr("dpdk0", "192.0.2.254/24", false), addr("dpdk1", "10.0.0.1/24", false)]
}

/// How rvsd holds an address: `(dev, sapool)`.
fn held_as(fake: &FakeRvsd, a: &str) -> Option<(String, bool)> {
    let a: IpAddr = a.parse().unwrap();
    fake.with(|s| s.addrs.iter().find(|x| x.addr.addr() == a).map(|x| (x.dev.clone(), x.sapool)))
}

/// The address changes asked of rvsd since the last call.
fn addr_log(fake: &FakeRvsd) -> Vec<Request> {
    fake.with(|s| std::mem::take(&mut s.addr_log))
}

/// A backup loads the service without holding its LIP; MASTER adds the LIP as a sapool
/// address of its port (and announces it) next to the VIP (not sapool); leaving MASTER
/// removes both, the service staying loaded.
#[test]
fn a_lip_that_moves_with_the_vip_is_a_sapool_address_of_the_master_only() {
    let fake = FakeRvsd::start(lip_config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[lip_service()]).unwrap();
    // Starting as backup: the instance releases its addresses.
    dp.del_vip(vip(), "dpdk0").unwrap();
    dp.del_vip(lip(), "dpdk1").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(held_as(&fake, LIP), None, "a backup does not hold the LIP");
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 2)]), "the backup loads the service");
    assert_eq!(fake.with(|s| s.services[0].laddrs.clone()), vec![LIP.parse::<IpAddr>().unwrap()]);
    // (Whether the backup's removals reached rvsd depends on when the first
    // reconciliation ran: not what is checked here.)
    addr_log(&fake);
    // MASTER: the VIP as before, the LIP with sapool, both announced.
    dp.add_vip(vip(), "dpdk0").unwrap();
    dp.add_vip(lip(), "dpdk1").unwrap();
    dp.send_garp(vip().addr(), "dpdk0", 5).unwrap();
    dp.send_garp(lip().addr(), "dpdk1", 5).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(held_as(&fake, VIP), Some(("dpdk0".into(), false)));
    assert_eq!(held_as(&fake, LIP), Some(("dpdk1".into(), true)));
    assert_eq!(
        addr_log(&fake),
        [
            Request::AddrAdd { dev: "dpdk0".into(), addr: vip(), sapool: false, lease: true },
            Request::AddrAdd { dev: "dpdk1".into(), addr: lip(), sapool: true, lease: true },
        ]
    );
    assert!(fake.with(|s| s.garps.contains(&(lip().addr(), "dpdk1".to_string(), 5))));
    // Leaving MASTER: both go, the service stays.
    dp.del_vip(vip(), "dpdk0").unwrap();
    dp.del_vip(lip(), "dpdk1").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!((held_as(&fake, VIP), held_as(&fake, LIP)), (None, None));
    assert_eq!(
        addr_log(&fake),
        [
            Request::AddrDel { dev: "dpdk0".into(), addr: vip().addr() },
            Request::AddrDel { dev: "dpdk1".into(), addr: lip().addr() },
        ]
    );
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 2)]), "still loaded on the backup");
    assert_eq!(dp.status().last_error, None);
}

/// After a reconnection to the same rvsd, the agent takes over the leases of the held
/// addresses rvsd still has (its old connection's: rvsd may see that connection close
/// after the new one's requests, and would then remove them): one `AddrAdd` with a lease
/// each, as rvsd lists them; none on the next reconciliations over the same connection.
#[test]
fn a_reconnection_takes_over_the_leases_of_the_held_addresses() {
    let fake = FakeRvsd::start(lip_config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[lip_service()]).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    dp.add_vip(lip(), "dpdk1").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    addr_log(&fake);
    for c in fake.conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
    dp.set_services(&[lip_service()]).unwrap();
    wait_until("the reconnection", T, || dp.status().reconnects == 1);
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let log = addr_log(&fake);
    let vip_lease = Request::AddrAdd { dev: "dpdk0".into(), addr: vip(), sapool: false, lease: true };
    let lip_lease = Request::AddrAdd { dev: "dpdk1".into(), addr: lip(), sapool: true, lease: true };
    assert!(log.len() == 2 && log.contains(&vip_lease) && log.contains(&lip_lease), "{log:?}");
    dp.set_services(&[lip_service()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(addr_log(&fake), [], "taken over once per connection");
    assert_eq!(dp.status().last_error, None, "rvsd's `Exists` (this fake's answer) is fine");
}

/// Reconciliation (a reload, a reconnection) neither removes a held LIP that moves with the
/// VIP nor adds a released one; it removes a released one rvsd holds (as sapool), reports a
/// held one rvsd holds without sapool (left alone), and puts the held one back with sapool
/// (announced) after rvsd restarts.
#[test]
fn reconciliation_keeps_a_lip_that_moves_with_the_vip_as_wanted() {
    let fake = FakeRvsd::start(lip_config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    let reconcile = || {
        dp.set_services(&[lip_service()]).unwrap();
        assert!(dp.wait_idle(T), "{:?}", dp.status());
    };
    dp.set_services(&[lip_service()]).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    dp.add_vip(lip(), "dpdk1").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    addr_log(&fake);
    // Master: nothing to change.
    reconcile();
    assert_eq!(addr_log(&fake), []);
    assert_eq!(held_as(&fake, LIP), Some(("dpdk1".into(), true)));
    // rvsd restarts: the LIP comes back with sapool and is announced again.
    fake.restart();
    let announced = || fake.with(|s| s.garps.iter().any(|g| g.0 == lip().addr()));
    wait_until("the LIP to be restored and announced", T, || {
        held_as(&fake, LIP).is_some() && fake.weights().is_some() && announced()
    });
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(held_as(&fake, LIP), Some(("dpdk1".into(), true)));
    // Backup: nothing re-added by reconciliation.
    dp.del_vip(vip(), "dpdk0").unwrap();
    dp.del_vip(lip(), "dpdk1").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    addr_log(&fake);
    reconcile();
    assert_eq!(addr_log(&fake), []);
    assert_eq!(held_as(&fake, LIP), None);
    // A released LIP rvsd holds (as sapool) is removed, although it is a sapool address.
    fake.with(|s| s.addrs.push(addr("dpdk1", "10.0.0.100/24", true)));
    reconcile();
    assert_eq!(addr_log(&fake), [Request::AddrDel { dev: "dpdk1".into(), addr: lip().addr() }]);
    assert_eq!(held_as(&fake, LIP), None);
    assert_eq!(fake.weights(), Some(vec![(rs(1), 3), (rs(2), 2)]));
    // A held LIP rvsd holds without sapool is reported and left alone.
    fake.with(|s| s.addrs.push(addr("dpdk1", "10.0.0.100/24", false)));
    dp.add_vip(lip(), "dpdk1").unwrap();
    wait_until("the report", T, || dp.status().last_error.is_some_and(|e| e.contains("without sapool")));
    let e = dp.status().last_error.unwrap();
    assert!(e.contains(LIP) && e.contains("rvsip addr del"), "{e}");
    assert_eq!(held_as(&fake, LIP), Some(("dpdk1".into(), false)), "left alone");
    // Once the operator removes it, the agent adds it with sapool.
    fake.with(|s| s.addrs.retain(|a| a.addr.addr() != lip().addr()));
    wait_until("the LIP added with sapool", REFUSED_RETRY + T, || held_as(&fake, LIP) == Some(("dpdk1".into(), true)));
    assert!(dp.wait_idle(T), "{:?}", dp.status());
}

use ctl::SyncRole::{Backup as SyncBackup, Master as SyncMaster};

const WHY: &str = "lvs_sync_daemon (vrrp_instance VI_1 test)";

/// keepalived's `lvs_sync_daemon`: each VRRP transition asks rvsd for exactly what
/// keepalived asks IPVS (MASTER: stop backup, start master; leaving MASTER: stop master,
/// start backup; stopping: stop the role running), with the sync id and no interface;
/// a restarted rvsd (back to its `[sync]`'s roles) is asked for the wanted roles again.
#[test]
fn sync_roles_follow_the_transitions_and_are_asked_again_after_a_restart() {
    let fake = FakeRvsd::start(config(), false);
    // rvsd.toml runs both roles from the start.
    fake.configure_sync(SyncConf { syncid: 51, master: true, backup: true });
    let dp = RvsdDataplane::new(&fake.path);
    // Starting (backup): the whole wanted state on the new connection.
    dp.set_sync_roles(SyncRoles::for_master(false, 51), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.sync_log(), [(SyncMaster, false, Some(51)), (SyncBackup, true, Some(51))]);
    assert_eq!(fake.with(|s| s.roles), (false, true));
    // MASTER: keepalived's ipvs_syncd_master.
    dp.set_sync_roles(SyncRoles::for_master(true, 51), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.sync_log(), [(SyncBackup, false, Some(51)), (SyncMaster, true, Some(51))]);
    assert_eq!(fake.with(|s| s.roles), (true, false));
    // BACKUP (or FAULT): keepalived's ipvs_syncd_backup.
    dp.set_sync_roles(SyncRoles::for_master(false, 51), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.sync_log(), [(SyncMaster, false, Some(51)), (SyncBackup, true, Some(51))]);
    // The same roles again: nothing to ask.
    dp.set_sync_roles(SyncRoles::for_master(false, 51), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.sync_log(), []);
    // MASTER, then rvsd restarts (both roles again, from its [sync]): master only again.
    dp.set_sync_roles(SyncRoles::for_master(true, 51), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    fake.sync_log();
    fake.restart();
    assert_eq!(fake.with(|s| s.roles), (true, true));
    wait_until("the sync roles to be asked again", T, || fake.with(|s| s.roles) == (true, false));
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(dp.status().reconnects, 1);
    assert_eq!(fake.sync_log(), [(SyncBackup, false, Some(51)), (SyncMaster, true, Some(51))]);
    // Stopping as master: the master role stops (keepalived's vrrp_terminate_phase1).
    dp.set_sync_roles(SyncRoles::stopped(51), WHY).unwrap();
    dp.close(T);
    assert_eq!(fake.sync_log(), [(SyncMaster, false, Some(51))]);
    assert_eq!(fake.with(|s| s.roles), (false, false));
}

/// rvsd refusing a sync role change (no `[sync]`, another syncid) is reported with its
/// message, once per change: nothing is retried in a loop, and the VIPs and services go
/// on being applied; the next change (or connection) asks again.
#[test]
fn a_refused_sync_role_is_reported_once_per_change_and_holds_up_nothing() {
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[service()]).unwrap();
    dp.set_sync_roles(SyncRoles::for_master(false, 51), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(
        dp.status().sync_error.as_deref(),
        Some(
            "lvs_sync_daemon (vrrp_instance VI_1 test): rvsd refused to stop the master role and start the backup role \
             (syncid 51) (unsupported): connection sync is not set up: rvsd.toml has no [sync] section (its key, \
             peers and syncid: docs/HA.md)"
        )
    );
    assert_eq!(fake.sync_log().len(), 2);
    assert!(fake.weights().is_some(), "the services are loaded all the same");
    // A later reconciliation (new services) does not ask again.
    dp.set_services(&[service()]).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(fake.has_addr(VIP));
    assert_eq!(fake.sync_log(), [], "a refused change is not retried in a loop");
    // The next change is asked (and refused) once.
    dp.set_sync_roles(SyncRoles::for_master(true, 51), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.sync_log(), [(SyncBackup, false, Some(51)), (SyncMaster, true, Some(51))]);
    assert!(dp.status().sync_error.unwrap().contains("refused to stop the backup role and start the master role"));
    // rvsd restarts with [sync], of another syncid: refused by name.
    fake.configure_sync(SyncConf { syncid: 7, master: false, backup: true });
    fake.restart();
    wait_until("the sync roles to be asked again", T, || !fake.with(|s| s.sync_log.is_empty()));
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.sync_log(), [(SyncBackup, false, Some(51)), (SyncMaster, true, Some(51))]);
    assert!(
        dp.status().sync_error.unwrap().ends_with("(syncid 51) (invalid): --syncid 51: rvsd's [sync] syncid is 7"),
        "{:?}",
        dp.status()
    );
    assert_eq!(fake.with(|s| s.roles), (false, true), "nothing changed");
    // The right syncid (a reload): accepted, and the error is gone.
    dp.set_sync_roles(SyncRoles::for_master(true, 7), WHY).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.sync_log(), [(SyncBackup, false, Some(7)), (SyncMaster, true, Some(7))]);
    assert_eq!((fake.with(|s| s.roles), dp.status().sync_error), ((true, false), None));
}

/// Every address rvsd holds is reported, whoever added it: its configuration's at the
/// first listing, and one added behind the agent's back (`rvsip addr add`, another agent)
/// or removed again within about a second (the idle check lists the addresses).
#[test]
fn rvsds_addresses_are_reported_whoever_added_them() {
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    let (tx, rx) = mpsc::channel::<BTreeSet<IpAddr>>();
    let tx = Mutex::new(tx);
    assert!(dp.watch_addresses(Box::new(move |a| {
        let _ = tx.lock().unwrap().send(a);
    })));
    let set = |v: &[&str]| v.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect::<BTreeSet<_>>();
    let next_differing = |from: &BTreeSet<IpAddr>| loop {
        let got = rx.recv_timeout(T).expect("a report within 5 s");
        if got != *from {
            return got;
        }
    };
    let first = next_differing(&BTreeSet::new());
    assert_eq!(first, set(&["192.0.2.254", "10.0.0.100"]));
    let t = Instant::now();
    fake.with(|s| s.addrs.push(addr("dpdk0", "192.0.2.77/32", false)));
    assert_eq!(next_differing(&first), set(&["192.0.2.254", "10.0.0.100", "192.0.2.77"]));
    assert!(t.elapsed() < Duration::from_secs(3), "learnt after {:?}", t.elapsed());
    fake.with(|s| s.addrs.retain(|a| a.addr.addr() != "192.0.2.77".parse::<IpAddr>().unwrap()));
    assert_eq!(next_differing(&set(&["192.0.2.254", "10.0.0.100", "192.0.2.77"])), first);
}

/// keepalived's `lvs_timeouts`: rvsd gets `TimeoutsSet` with the file's timeouts (0 for the
/// others: rvsd keeps them) when they are set, and again after it restarts (back to
/// rvsd.toml's); a timeout the file no longer sets goes back to rvsd's own value (read
/// with `TimeoutsGet` before the agent changed it), as keepalived puts the kernel's back.
#[test]
fn lvs_timeouts_are_set_at_start_again_after_a_restart_and_put_back_when_dropped() {
    let t = |tcp, tcpfin, udp| LvsTimeouts { tcp, tcpfin, udp };
    let fake = FakeRvsd::start(config(), false);
    // rvsd.toml: tcp 900 (rvsd's default), tcpfin 100, udp 300.
    fake.configure_timeouts(fnat::tcp_state::Timeouts { fin_wait: 100, ..Default::default() });
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_services(&[service()]).unwrap();
    dp.set_timeouts(t(7200, 0, 60)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.timeouts_log(), [(7200, 0, 60)]);
    assert_eq!(fake.timeouts(), (7200, 100, 60));
    assert!(fake.weights().is_some(), "the services are loaded too");
    // rvsd restarts with rvsd.toml's timeouts: the file's are set again.
    fake.restart();
    assert_eq!(fake.timeouts(), (900, 100, 300));
    wait_until("the timeouts to be set again", T, || fake.timeouts() == (7200, 100, 60));
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(dp.status().reconnects, 1);
    assert_eq!(fake.timeouts_log(), [(7200, 0, 60)]);
    // A reload: tcpfin set, udp no longer: udp back to rvsd's own.
    dp.set_timeouts(t(7200, 30, 0)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.timeouts_log(), [(7200, 30, 300)]);
    assert_eq!(fake.timeouts(), (7200, 30, 300));
    // None any more: each one the agent changed back to rvsd's own, the others untouched.
    dp.set_timeouts(t(0, 0, 0)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.timeouts_log(), [(900, 100, 0)]);
    assert_eq!(fake.timeouts(), (900, 100, 300));
    // Still none: nothing to ask, not even after a restart.
    dp.set_timeouts(t(0, 0, 0)).unwrap();
    fake.restart();
    wait_until("the reconnection", T, || dp.status().reconnects == 2);
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.timeouts_log(), []);
    // Timeouts changed behind the agent (`rvsadm --set`) are rvsd's own from then on.
    dp.set_timeouts(t(60, 0, 0)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    fake.with(|s| s.timeouts.established = 1800);
    dp.set_timeouts(t(0, 0, 20)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.timeouts_log(), [(60, 0, 0), (0, 0, 20)], "1800 is rvsd's: left alone");
    assert_eq!(fake.timeouts(), (1800, 100, 20));
    dp.close(T);
}

/// `systemctl reload rvsd` (SIGHUP) rebuilds rvsd's state from rvsd.toml, which has
/// neither keepalived.conf's services nor its SNAT rules nor its timeouts; rvsd keeps the
/// agent's leased VIP. The agent's idle check sees `Status`'s `loaded_ns` change and loads
/// everything again at once, over the same connection.
#[test]
fn what_a_reload_of_rvsd_replaced_is_loaded_again() {
    let t = |tcp, tcpfin, udp| LvsTimeouts { tcp, tcpfin, udp };
    let fake = FakeRvsd::start(config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    let rule = snat_rule("A", "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1", &["198.18.0.1"]);
    dp.set_services(&[service()]).unwrap();
    dp.set_snat(std::slice::from_ref(&rule)).unwrap();
    dp.set_timeouts(t(7200, 0, 60)).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    let loaded = || (fake.weights().is_some(), fake.with(|s| s.snat.len()), fake.timeouts());
    assert_eq!(loaded(), (true, 1, (7200, 120, 60)));
    fake.reload();
    assert_eq!(loaded(), (false, 0, (900, 120, 300)), "rvsd.toml's state");
    wait_until("the agent to load its state again", T, || loaded() == (true, 1, (7200, 120, 60)));
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(fake.has_addr(VIP), "the VIP stays");
    assert_eq!(dp.status().reconnects, 0, "over the same connection");
    dp.close(T);
}

/// While a refused reconciliation waits for its retry (every 5 s), rvsd is still asked
/// every second whether it read its file again: a reload then is acted on at once, not
/// at the retry.
#[test]
fn a_reload_during_a_refusal_is_seen_within_the_second() {
    let fake = FakeRvsd::start(lip_config(), false);
    let dp = RvsdDataplane::new(&fake.path);
    let rule = snat_rule("A", "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1", &["198.18.0.1"]);
    dp.set_services(&[lip_service()]).unwrap();
    dp.set_snat(std::slice::from_ref(&rule)).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    // A held LIP rvsd holds without sapool: refused, retried every REFUSED_RETRY (the
    // SNAT rule applies all the same).
    fake.with(|s| s.addrs.push(addr("dpdk1", "10.0.0.100/24", false)));
    dp.add_vip(lip(), "dpdk1").unwrap();
    wait_until("the refusal", T, || dp.status().last_error.is_some_and(|e| e.contains("without sapool")));
    let refused_at = Instant::now();
    fake.reload();
    assert_eq!(fake.with(|s| s.snat.len()), 0, "rvsd.toml has no SNAT rule");
    wait_until("the SNAT rule loaded again", T, || fake.with(|s| s.snat.len()) == 1);
    assert!(
        refused_at.elapsed() < REFUSED_RETRY - Duration::from_secs(1),
        "seen by the check every second, not at the retry: {:?}",
        refused_at.elapsed()
    );
}

/// rvsd refusing `TimeoutsSet` is logged with its message (once per change or connection):
/// nothing is retried in a loop and the VIPs and services go on being applied.
#[test]
fn a_refused_lvs_timeouts_holds_up_nothing() {
    let fake = FakeRvsd::start(config(), false);
    fake.with(|s| s.refuse_timeouts = true);
    let dp = RvsdDataplane::new(&fake.path);
    dp.set_timeouts(LvsTimeouts { tcp: 60, tcpfin: 0, udp: 0 }).unwrap();
    dp.set_services(&[service()]).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(fake.weights().is_some(), "the services are loaded all the same");
    assert_eq!(fake.timeouts_log(), [(60, 0, 0)]);
    // A later reconciliation (new services, a VIP) does not ask again.
    dp.set_services(&[service()]).unwrap();
    dp.add_vip(vip(), "dpdk0").unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert!(fake.has_addr(VIP));
    assert_eq!(fake.timeouts_log(), [], "a refused change is not retried in a loop");
    // The next change is asked; accepted once rvsd takes it.
    fake.with(|s| s.refuse_timeouts = false);
    dp.set_timeouts(LvsTimeouts { tcp: 90, tcpfin: 0, udp: 0 }).unwrap();
    assert!(dp.wait_idle(T), "{:?}", dp.status());
    assert_eq!(fake.timeouts_log(), [(90, 0, 0)]);
    assert_eq!(fake.timeouts(), (90, 120, 300));
}
