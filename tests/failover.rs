//! Issue 8's acceptance end to end: two nodes, each rvsd + rvs-agent in its own
//! namespace (see `rvs_e2e::pair`), in front of the same real servers.
//!
//! * The client's HTTP through the VIP works with node a master; killing a's agent
//!   (SIGKILL: no goodbye) moves the VIP to b within 3 x advert_int + skew + 1 s, and new
//!   connections go through b; a's agent returning preempts (default) or not (`nopreempt`).
//!   With VRRPv3 and advert_int 0.1 the failover takes under a second.
//! * rvsd restarting under the master's agent: the twin (VRRP's interface) goes with it,
//!   the agent goes to FAULT and the backup takes over; when rvsd is back the agent
//!   reconnects, opens its socket on the new twin and preempts again.
//! * keepalived's virtual_routes: in the master's rvsd only (they follow the VIP on
//!   failover and preemption, and leave with a clean stop).
//! * A real server whose HTTP server stops gets weight 0 in rvsd within
//!   delay_loop x (retry + 1) and no new connections; restarted, it gets its weight back.
//!
//! * keepalived's `virtual_server fwmark 1` (marks from each rvsd's `[[fwmark]]`): on both
//!   nodes, listed `FWM  1`, served through the master, a stopped server taken out by its
//!   checks, served through the backup when the master's agent dies.
//!
//! The measured times are printed (`cargo test -p rvs-e2e --test failover -- --nocapture`).

use std::time::{Duration, Instant};

use rvs_e2e::pair::{wait_for, AgentConf, Node, Pair};
use rvs_e2e::{rs4, serial, VIP4};

const PRIO_A: u8 = 150;
const PRIO_B: u8 = 100;

/// RFC 5798's Master_Down_Interval (v2's skew is the same for advert_int 1).
fn master_down(prio: u8, advert_int: f64) -> Duration {
    Duration::from_secs_f64(3.0 * advert_int + f64::from(256 - u32::from(prio)) / 256.0 * advert_int)
}

fn conf(node: &Node, prio: u8, version: u8, advert: &str, nopreempt: bool, delay_loop: u32) -> String {
    AgentConf {
        priority: prio,
        version,
        advert_int: advert.into(),
        nopreempt,
        // a derives its port from `interface dpdk0.kni`, b names it.
        dpdk_interface: node.name == "b",
        lip: node.lip.clone(),
        real_servers: 3,
        delay_loop,
    }
    .render()
}

fn state(n: &Node) -> (String, String) {
    let s = n.agent_status().expect("rvs-agent status");
    let i = &s["instances"][0];
    (i["state"].as_str().unwrap_or("?").to_string(), i["master"].as_str().unwrap_or("-").to_string())
}

/// Starts a's agent, waits until it is master, then b's; checks both agents' status.
fn elect_a(p: &mut Pair, a_conf: &str, b_conf: &str, advert: f64) {
    p.a.start_agent(a_conf).expect("agent a");
    let t = wait_for(master_down(PRIO_A, advert) + Duration::from_secs(5), || p.a.holds(VIP4))
        .expect("a becomes master and adds the VIP to its rvsd");
    eprintln!("a master after {t:?}");
    p.b.start_agent(b_conf).expect("agent b");
    wait_for(Duration::from_secs(10), || state(&p.b) == ("Backup".into(), p.a.addr0.clone()))
        .unwrap_or_else(|| panic!("b is backup of a: {:?}", state(&p.b)));
    assert_eq!(state(&p.a), ("Master".into(), p.a.addr0.clone()));
    assert!(!p.b.holds(VIP4), "the backup's rvsd does not hold the VIP");
    let text = p.a.agent_cmd(&["status"]).expect("rvs-agent status");
    assert!(text.contains(&format!("MASTER priority {PRIO_A} master {} (this node)", p.a.addr0)), "{text}");
    assert!(text.contains("dataplane rvsd") && text.contains("connected"), "{text}");
}

/// [`elect_a`] with the plain configuration (VRRP v2, advert_int 1, delay_loop 1), then
/// traffic through a.
fn elect_a_plainly(p: &mut Pair) {
    let a_conf = conf(&p.a, PRIO_A, 2, "1", false, 1);
    let b_conf = conf(&p.b, PRIO_B, 2, "1", false, 1);
    elect_a(p, &a_conf, &b_conf, 1.0);
    traffic_via(p, "a", 6);
}

/// `n` fetches through the VIP, all answered, all forwarded by `via` (its LIP in the
/// real servers' logs).
fn traffic_via(p: &Pair, via: &str, n: usize) {
    let before = p.served_by();
    let (bodies, ok) = p.curl(n, 10);
    let after = p.served_by();
    let tally = p.tally(&bodies);
    assert!(ok && tally.iter().sum::<usize>() == n, "{n} fetches through the VIP: {tally:?}\n{bodies}");
    let (da, db) = (after.0 - before.0, after.1 - before.1);
    let want = if via == "a" { (n, 0) } else { (0, n) };
    assert_eq!((da, db), want, "requests forwarded by (a, b)");
}

/// Waits until a fetch through the VIP succeeds through node `via`; returns how long.
fn resumed_via(p: &Pair, via: &str, since: Instant, timeout: Duration) -> Duration {
    let ok = wait_for(timeout, || {
        let before = p.served_by();
        let (_, ok) = p.curl(1, 1);
        let after = p.served_by();
        ok && if via == "a" { after.0 > before.0 } else { after.1 > before.1 }
    });
    assert!(ok.is_some(), "no HTTP through the VIP via {via} within {timeout:?}");
    since.elapsed()
}

/// Whether `n`'s rvsd has a route to `prefix`.
fn has_route(n: &Node, prefix: &str) -> bool {
    match n.ctl().expect("ctl").call(ctl::Request::RouteList {}).expect("routes") {
        ctl::Response::Routes { routes } => routes.iter().any(|r| r.prefix.to_string() == prefix),
        r => panic!("{r:?}"),
    }
}

/// keepalived's virtual_routes, in rvsd's route table: only the master's rvsd holds it.
const VROUTE: &str = "10.66.0.0/16";

fn with_virtual_route(conf: String) -> String {
    let route = format!("    virtual_routes {{\n        {VROUTE} via {}\n    }}\n", rs4(1));
    conf.replacen("    virtual_ipaddress {", &format!("{route}    virtual_ipaddress {{"), 1)
}

fn failover(version: u8, advert: &str, nopreempt: bool, limit: Duration) {
    let _g = serial();
    let adv: f64 = advert.parse().unwrap();
    let mut p = Pair::start(3).expect("two-node topology");
    let a_conf = with_virtual_route(conf(&p.a, PRIO_A, version, advert, nopreempt, 1));
    let b_conf = with_virtual_route(conf(&p.b, PRIO_B, version, advert, nopreempt, 1));
    elect_a(&mut p, &a_conf, &b_conf, adv);
    traffic_via(&p, "a", 9);
    assert!(has_route(&p.a, VROUTE) && !has_route(&p.b, VROUTE), "the virtual route is in the master's rvsd only");

    // a's agent dies without a word; b takes over after Master_Down_Interval.
    p.a.kill_agent();
    let t0 = Instant::now();
    let moved = wait_for(limit + Duration::from_secs(5), || p.b.holds(VIP4));
    let moved = moved.unwrap_or_else(|| panic!("b did not take the VIP within {:?}", limit + Duration::from_secs(5)));
    let resumed = resumed_via(&p, "b", t0, Duration::from_secs(10));
    eprintln!(
        "VRRPv{version} advert_int {advert}: VIP on b {moved:?} after a's agent was killed \
         (limit {limit:?}; b's Master_Down_Interval {:?}); HTTP via b {resumed:?} after",
        master_down(PRIO_B, adv)
    );
    assert!(moved <= limit, "failover took {moved:?}, over {limit:?}");
    assert_eq!(state(&p.b), ("Master".into(), p.b.addr0.clone()));
    traffic_via(&p, "b", 9);
    wait_for(Duration::from_secs(2), || has_route(&p.b, VROUTE)).expect("b, now master, adds the virtual route");

    // a's agent returns (it drops the VIP its killed predecessor left in rvsd).
    p.a.start_agent(&a_conf).expect("agent a again");
    let t0 = Instant::now();
    if nopreempt {
        wait_for(Duration::from_secs(5), || state(&p.a) == ("Backup".into(), p.b.addr0.clone()))
            .unwrap_or_else(|| panic!("a comes back as backup of b: {:?}", state(&p.a)));
        std::thread::sleep(master_down(PRIO_A, adv) * 2 + Duration::from_secs(1));
        assert_eq!(state(&p.a), ("Backup".into(), p.b.addr0.clone()), "nopreempt: a stays backup");
        assert_eq!(state(&p.b), ("Master".into(), p.b.addr0.clone()));
        assert!(p.b.holds(VIP4) && !p.a.holds(VIP4), "the VIP stays on b, and only there");
        traffic_via(&p, "b", 9);
        eprintln!("nopreempt: a returned as backup, b kept the VIP");
    } else {
        let t = wait_for(master_down(PRIO_A, adv) + Duration::from_secs(5), || p.a.holds(VIP4) && !p.b.holds(VIP4))
            .expect("a preempts: the VIP moves back to a only");
        let resumed = resumed_via(&p, "a", t0, Duration::from_secs(10));
        eprintln!("preempt: VIP back on a {t:?} after its agent restarted; HTTP via a {resumed:?} after");
        assert_eq!(state(&p.a), ("Master".into(), p.a.addr0.clone()));
        wait_for(Duration::from_secs(5), || state(&p.b) == ("Backup".into(), p.a.addr0.clone()))
            .unwrap_or_else(|| panic!("b steps down: {:?}", state(&p.b)));
        traffic_via(&p, "a", 9);
        wait_for(Duration::from_secs(2), || has_route(&p.a, VROUTE) && !has_route(&p.b, VROUTE))
            .expect("the virtual route follows the VIP back to a (b, backup, removes it)");
    }
    // A clean stop leaves nothing behind.
    p.a.stop_agent().expect("agent a stops");
    p.b.stop_agent().expect("agent b stops");
    assert!(!p.a.holds(VIP4) && !p.b.holds(VIP4), "stopped agents release the VIP");
}

#[test]
fn vrrp_v2_failover_and_preemption() {
    // 3 x advert_int + skew + 1 s.
    failover(2, "1", false, master_down(PRIO_B, 1.0) + Duration::from_secs(1));
}

#[test]
fn vrrp_v2_failover_nopreempt() {
    failover(2, "1", true, master_down(PRIO_B, 1.0) + Duration::from_secs(1));
}

#[test]
fn vrrp_v3_subsecond_failover() {
    failover(3, "0.1", false, Duration::from_secs(1));
}

#[test]
fn stopped_real_server_gets_weight_zero_and_returns() {
    let _g = serial();
    let (delay_loop, retry) = (2u32, 1u32); // retry as AgentConf writes it
    let mut p = Pair::start(3).expect("two-node topology");
    // keepalived's static_ipaddress and static_routes: held by both nodes' rvsd whatever
    // the VRRP state (a master, b backup).
    let statics = format!(
        "static_ipaddress {{\n    198.19.0.250/32 dev dpdk1\n}}\nstatic_routes {{\n    10.88.0.0/16 via {}\n}}\n",
        rs4(1)
    );
    let a_conf = conf(&p.a, PRIO_A, 2, "1", false, delay_loop) + &statics;
    let b_conf = conf(&p.b, PRIO_B, 2, "1", false, delay_loop) + &statics;
    elect_a(&mut p, &a_conf, &b_conf, 1.0);
    for n in [&p.a, &p.b] {
        assert!(n.holds("198.19.0.250"), "node {}: the static address", n.name);
        let routes = match n.ctl().expect("ctl").call(ctl::Request::RouteList {}).expect("routes") {
            ctl::Response::Routes { routes } => routes,
            r => panic!("{r:?}"),
        };
        let r = routes.iter().find(|r| r.prefix.to_string() == "10.88.0.0/16");
        assert!(
            r.is_some_and(|r| r.dev == "dpdk1" && r.via.map(|v| v.to_string()) == Some(rs4(1))),
            "node {}: the static route, on the gateway's port: {routes:?}",
            n.name
        );
    }
    let rs2 = rs4(2);
    assert_eq!(p.a.weight(&rs2, 8080), Some(1));

    p.stop_http(2);
    let bound = Duration::from_secs(u64::from(delay_loop * (retry + 1)));
    let t = wait_for(bound + Duration::from_secs(5), || p.a.weight(&rs2, 8080) == Some(0))
        .expect("rs2 gets weight 0 in the master's rvsd");
    eprintln!("rs2 stopped: weight 0 in rvsd after {t:?} (delay_loop x (retry + 1) = {bound:?})");
    // Polling and the dataplane's confirmation add a few milliseconds (a second
    // allowed: the checker's ticks drift on a busy machine).
    assert!(t <= bound + Duration::from_secs(1), "took {t:?}");
    let st = p.a.agent_status().expect("status");
    let rs = st["virtual_servers"][0]["real_servers"]
        .as_array()
        .and_then(|v| v.iter().find(|r| r["addr"] == format!("{rs2}:8080")).cloned())
        .expect("rs2 in status");
    assert_eq!((rs["up"].as_bool(), rs["dataplane_weight"].as_u64()), (Some(false), Some(0)), "{rs}");
    let (listing, _, _) = p.a.rvsadm(&["-L", "-n"]);
    assert!(
        listing.lines().any(|l| l.contains(&format!("{rs2}:8080")) && l.split_whitespace().nth(3) == Some("0")),
        "{listing}"
    );

    // No new connection goes to it (one would fail: nothing listens there).
    let (bodies, ok) = p.curl(12, 10);
    let tally = p.tally(&bodies);
    assert!(ok && tally[1] == 0 && tally.iter().sum::<usize>() == 12, "{tally:?}");

    p.start_http(2).expect("rs2 back");
    let t = wait_for(Duration::from_secs(u64::from(delay_loop)) + Duration::from_secs(5), || {
        p.a.weight(&rs2, 8080) == Some(1)
    })
    .expect("rs2 gets its weight back");
    eprintln!("rs2 restarted: weight back after {t:?}");
    let (bodies, ok) = p.curl(12, 10);
    let tally = p.tally(&bodies);
    assert!(ok && tally[1] > 0 && tally.iter().sum::<usize>() == 12, "{tally:?}");
    // Where the backup's rvsd holds the service too, it follows as well, by its own
    // checker (whose rounds keep their own phase: keepalived's random warmup).
    if p.b.weight(&rs2, 8080).is_some() {
        wait_for(Duration::from_secs(u64::from(delay_loop)) + Duration::from_secs(5), || {
            p.b.weight(&rs2, 8080) == Some(1)
        })
        .expect("the backup's weight comes back too");
    }
}

#[test]
fn rvsd_restart_under_the_master_agent() {
    let _g = serial();
    let mut p = Pair::start(3).expect("two-node topology");
    elect_a_plainly(&mut p);

    p.a.stop_rvsd();
    let t0 = Instant::now();
    let moved = wait_for(Duration::from_secs(10), || p.b.holds(VIP4)).expect("b takes the VIP");
    let resumed = resumed_via(&p, "b", t0, Duration::from_secs(10));
    eprintln!("a's rvsd stopped: VIP on b after {moved:?}, HTTP via b after {resumed:?}");
    assert!(p.a.agent_running(), "a's agent keeps running without rvsd");
    wait_for(Duration::from_secs(2), || state(&p.a).0 == "Fault")
        .unwrap_or_else(|| panic!("a in FAULT: {:?}", state(&p.a)));
    let st = p.a.agent_status().expect("status");
    assert_eq!(st["dataplane"]["connected"], false, "{st}");

    p.a.start_rvsd().expect("a's rvsd again");
    let t0 = Instant::now();
    let back = wait_for(master_down(PRIO_A, 1.0) + Duration::from_secs(10), || p.a.holds(VIP4) && !p.b.holds(VIP4))
        .expect("a reconnects, comes back and preempts");
    let resumed = resumed_via(&p, "a", t0, Duration::from_secs(10));
    eprintln!("a's rvsd back: VIP on a after {back:?}, HTTP via a after {resumed:?}");
    assert_eq!(state(&p.a), ("Master".into(), p.a.addr0.clone()));
    assert_eq!(p.a.agent_status().expect("status")["dataplane"]["connected"], true);
    traffic_via(&p, "a", 9);
}

/// `systemctl reload rvsd` (SIGHUP) on the master: rvsd rebuilds its state from its
/// file, which holds neither the VIP (the agent's, leased) nor keepalived.conf's
/// services. The leased VIP stays through the reload (before, it went until the agent's
/// next change, with the master still MASTER), and the agent, seeing that rvsd read its
/// file again, loads its services back at once: traffic through a resumes.
#[test]
fn a_reload_of_the_masters_rvsd_keeps_its_vip_and_the_agent_loads_its_services_again() {
    let _g = serial();
    let mut p = Pair::start(3).expect("two-node topology");
    elect_a_plainly(&mut p);
    let services = p.a.services().expect("services").len();
    assert!(services > 0, "the agent loaded keepalived.conf's services");

    p.a.hup_rvsd();
    let t0 = Instant::now();
    wait_for(Duration::from_secs(5), || p.a.rvsd_log().lines().any(|l| l.contains("SIGHUP:") && l.contains("applied")))
        .unwrap_or_else(|| panic!("the reload is applied:\n{}", p.a.rvsd_log()));
    assert!(p.a.holds(VIP4), "the leased VIP stays through the reload: {:?}", p.a.addrs());
    let back = wait_for(Duration::from_secs(5), || p.a.services().is_ok_and(|s| s.len() == services))
        .expect("the agent loads its services again");
    eprintln!("a's rvsd reloaded: services back after {back:?}");
    assert!(p.a.rvsd_log().contains("leased addresses kept"), "{}", p.a.rvsd_log());
    assert!(p.a.agent_log().contains("rvsd read rvsd.toml again"), "{}", p.a.agent_log());
    let resumed = resumed_via(&p, "a", t0, Duration::from_secs(10));
    eprintln!("HTTP via a after {resumed:?}");
    assert_eq!(state(&p.a), ("Master".into(), p.a.addr0.clone()), "no failover");
    assert!(!p.b.holds(VIP4));
    traffic_via(&p, "a", 6);
}

/// Whether every checker of real server `rs`:8080 is suspended, by `n`'s agent status.
fn suspended(n: &Node, rs: &str) -> bool {
    let st = n.agent_status().expect("status");
    let rs = st["virtual_servers"][0]["real_servers"]
        .as_array()
        .and_then(|v| v.iter().find(|r| r["addr"] == format!("{rs}:8080")).cloned())
        .expect("the real server in status");
    rs["checkers"].as_array().is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["suspended"] == true))
}

/// keepalived's `ha_suspend` when the VIP is not this agent's to add: a check-only
/// rvs-agent (`-C`, keepalived's `--check` beside a `--vrrp` process) follows the
/// addresses rvsd holds, whoever added them (`rvsip addr add` here, as another agent or
/// rvsd.toml would), as keepalived's checker process follows the box's through netlink.
/// Without the VIP its checkers skip their rounds (a stopped server keeps its weight,
/// status says why); with it they check (the server gets weight 0 within about a second
/// of listing plus delay_loop x (retry + 1)); without it again they stop.
#[test]
fn check_only_agent_with_ha_suspend_follows_the_vip_rvsd_holds() {
    let _g = serial();
    let (delay_loop, retry) = (1u32, 1u32);
    let mut p = Pair::start(3).expect("two-node topology");
    let conf = conf(&p.a, PRIO_A, 2, "1", false, delay_loop).replacen(
        "    protocol TCP\n",
        "    protocol TCP\n    ha_suspend\n",
        1,
    );
    p.a.start_agent_with(&conf, &["-C"]).expect("check-only agent");
    let rs2 = rs4(2);
    wait_for(Duration::from_secs(10), || p.a.weight(&rs2, 8080) == Some(1)).expect("the agent's service in rvsd");
    assert!(!p.a.holds(VIP4), "no VRRP here: nobody added the VIP");
    wait_for(Duration::from_secs(5), || suspended(&p.a, &rs2)).expect("checkers suspended without the VIP");
    p.stop_http(2);
    std::thread::sleep(Duration::from_secs(u64::from(delay_loop * (retry + 1) + 2)));
    assert_eq!(p.a.weight(&rs2, 8080), Some(1), "suspended: the stopped server is not checked");
    let text = p.a.agent_cmd(&["status"]).expect("status");
    assert!(text.contains("checks suspended (ha_suspend"), "{text}");

    let rvsip = |verb: &str| {
        let out = std::process::Command::new(rvs_e2e::workspace_bin("rvsip"))
            .arg("--socket")
            .arg(p.a.socket())
            .args(["addr", verb, &format!("{VIP4}/32"), "dev", "dpdk0"])
            .output()
            .expect("rvsip");
        assert!(out.status.success(), "rvsip addr {verb}: {}", String::from_utf8_lossy(&out.stderr));
    };
    rvsip("add");
    let bound = Duration::from_secs(u64::from(delay_loop * (retry + 1)) + 1);
    let t = wait_for(bound + Duration::from_secs(5), || p.a.weight(&rs2, 8080) == Some(0))
        .expect("with the VIP in rvsd the checker runs and takes the stopped server out");
    eprintln!("VIP added by rvsip: rs2 at weight 0 after {t:?} (listing 1 s + delay_loop x (retry + 1) = {bound:?})");
    assert!(!suspended(&p.a, &rs2));

    rvsip("del");
    wait_for(Duration::from_secs(5), || suspended(&p.a, &rs2)).expect("suspended again without the VIP");
    p.start_http(2).expect("rs2 back");
    std::thread::sleep(Duration::from_secs(u64::from(delay_loop) + 2));
    assert_eq!(p.a.weight(&rs2, 8080), Some(0), "suspended: the returning server is not checked either");
}

/// The MAC the client's neighbour table holds for the VIP, if any.
fn client_vip_mac(p: &Pair) -> Option<String> {
    let out = p.client.exec(&["ip", "neigh", "show", VIP4, "dev", "eth0"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "lladdr").and(words.next()).map(str::to_string)
}

/// A node's port MAC (its twin `dpdk0.kni` has it).
fn port_mac(n: &Node) -> String {
    let out = n.ns.exec(&["ip", "-br", "link", "show", "dpdk0.kni"]);
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(2).expect("the twin's MAC").to_string()
}

/// A split brain, healed (keepalived's answer to a lower priority): while the switch
/// drops VRRP, b becomes master too and its gratuitous ARPs take the client to b. When
/// VRRP passes again, b yields (and, with `higher_prio_send_advert`, tells a), and a,
/// master all along, hearing the lower priority, answers with an advert and gratuitous
/// ARPs: the client's neighbour entry for the VIP is a's again within a second or two
/// and HTTP goes through a, rather than to b, which no longer holds the VIP, until the
/// client's entry went stale.
#[test]
fn a_healed_split_brain_takes_the_client_back_to_the_master() {
    let _g = serial();
    let mut p = Pair::start(3).expect("two-node topology");
    // a's only gratuitous ARPs after it became master are its answer to b (no second
    // burst 5 s later to take the client back by chance).
    let a_conf = conf(&p.a, PRIO_A, 2, "1", false, 1).replacen(
        "    virtual_router_id 51\n",
        "    virtual_router_id 51\n    garp_master_delay 0\n",
        1,
    );
    let b_conf = conf(&p.b, PRIO_B, 2, "1", false, 1).replacen(
        "    virtual_router_id 51\n",
        "    virtual_router_id 51\n    higher_prio_send_advert\n",
        1,
    );
    elect_a(&mut p, &a_conf, &b_conf, 1.0);
    traffic_via(&p, "a", 3);
    let (mac_a, mac_b) = (port_mac(&p.a), port_mac(&p.b));
    assert_ne!(mac_a, mac_b);
    assert_eq!(client_vip_mac(&p).as_deref(), Some(mac_a.as_str()));

    // The split: the switch drops VRRP (IP protocol 112) between the nodes.
    let nft = |cmd: &str| {
        let out = p.sw.exec(&["nft", cmd]);
        assert!(out.status.success(), "nft {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    };
    nft("table bridge rvs_split { chain split { type filter hook forward priority 0; ip protocol 112 drop; }; }");
    wait_for(master_down(PRIO_B, 1.0) + Duration::from_secs(5), || p.b.holds(VIP4)).expect("b becomes master too");
    assert!(p.a.holds(VIP4), "a still master: a split brain");
    wait_for(Duration::from_secs(5), || client_vip_mac(&p).as_deref() == Some(mac_b.as_str()))
        .expect("b's gratuitous ARPs take the client");

    // Healed.
    nft("delete table bridge rvs_split");
    let t0 = Instant::now();
    wait_for(Duration::from_secs(5), || !p.b.holds(VIP4)).expect("b yields to a");
    let t = wait_for(Duration::from_secs(4), || client_vip_mac(&p).as_deref() == Some(mac_a.as_str()))
        .expect("a's gratuitous ARPs take the client back");
    eprintln!("split brain healed: b yielded, the client's entry for the VIP was a's again {t:?} later");
    assert_eq!(state(&p.a), ("Master".into(), p.a.addr0.clone()));
    traffic_via(&p, "a", 3);
    let log = p.a.agent_log();
    assert!(log.lines().any(|l| l.contains("advert with a lower priority")), "a logged the lower priority:\n{log}");
    eprintln!("(since the heal: {:?})", t0.elapsed());
}

/// keepalived.conf's `dest_check` (rvs's keyword, DPVS's notation) and
/// `expire_quiescent_conn` (DPVS's) reach rvsd through rvs-agent, and the passive check
/// works beside the agent's checker: a real server whose HTTP server stopped is taken out
/// by rvsd at the first refused connection, without waiting for a checker round
/// (`delay_loop 60`), and the agent, whose configured weight it leaves alone, does not
/// undo it.
#[test]
fn keepalived_dest_check_holds_a_refusing_server_out_beside_the_checker() {
    let _g = serial();
    let mut p = Pair::start(3).expect("two-node topology");
    let extra = |c: String| {
        c.replace("    lb_algo rr\n", "    lb_algo rr\n    dest_check 1,1,3s,30-60s\n    expire_quiescent_conn\n")
    };
    let a_conf = extra(conf(&p.a, PRIO_A, 2, "1", false, 60));
    let b_conf = extra(conf(&p.b, PRIO_B, 2, "1", false, 60));
    elect_a(&mut p, &a_conf, &b_conf, 1.0);
    let (listing, _, _) = p.a.rvsadm(&["-L", "-n"]);
    assert!(listing.contains("rr expire-quiescent dest-check internal:1,1,3s,30-60s"), "{listing}");

    let rs2 = rs4(2);
    let inhibited = |n: &Node| {
        let svcs = n.services().expect("services");
        let s = svcs.iter().find(|s| s.service.vip.to_string() == VIP4).expect("the service");
        s.dests.iter().find(|d| d.config.addr.to_string() == rs2).is_some_and(|d| d.inhibited)
    };
    assert!(!inhibited(&p.a));
    p.stop_http(2);
    // rr over three servers: the request that meets rs2 is refused, then rs2 is out.
    let (bodies, _) = p.curl(9, 5);
    let tally = p.tally(&bodies);
    assert_eq!((tally[1], tally.iter().sum::<usize>()), (0, 8), "{tally:?}");
    assert!(inhibited(&p.a), "rvsd holds rs2 out");
    assert!(p.a.rvsd_log().contains(&format!("real server {rs2}:8080 taken out for 30 s")), "{}", p.a.rvsd_log());
    std::thread::sleep(Duration::from_secs(2));
    assert!(inhibited(&p.a), "and the agent does not undo it");
    // `rvs-agent status` says so (the agent looks every 2 s), beside the weight it set.
    let held_out = |n: &Node| -> Vec<String> {
        let st = n.agent_status().expect("status");
        let rs = st["virtual_servers"][0]["real_servers"].as_array().cloned().unwrap_or_default();
        rs.iter().filter(|r| r["held_out"] == true).map(|r| r["addr"].as_str().unwrap_or("").to_string()).collect()
    };
    let start = std::time::Instant::now();
    while held_out(&p.a).is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(held_out(&p.a), [format!("{rs2}:8080")]);
    let text = p.a.agent_cmd(&["status"]).expect("rvs-agent status");
    assert!(text.contains("held out by rvsd's passive check (dest_check)"), "{text}");
    let (bodies, ok) = p.curl(6, 5);
    assert!(ok && p.tally(&bodies).iter().sum::<usize>() == 6, "{bodies}");
}

/// keepalived's `virtual_server fwmark` through rvs-agent on both nodes, the marks from
/// each rvsd's `[[fwmark]]`: the service is listed as ipvsadm lists it, serves through
/// the master, its HTTP_GET checks take a stopped server out by the fwmark key, and
/// when the master's agent dies the backup serves the marked flows.
#[test]
fn a_keepalived_fwmark_virtual_server_is_checked_served_and_fails_over() {
    let _g = serial();
    let mut p = Pair::start_with(3, false, |n| {
        let rule = toml::toml! { mark = 1 proto = "tcp" dst_range = (format!("{VIP4}:80")) };
        n.config.insert("fwmark".into(), toml::Value::Array(vec![toml::Value::Table(rule)]));
    })
    .expect("two-node topology");
    // The real servers keep port 8080: every marked flow goes there (FullNAT).
    let fw = |c: String| c.replace(&format!("virtual_server {VIP4} 80 {{"), "virtual_server fwmark 1 {");
    let (a_conf, b_conf) = (fw(conf(&p.a, PRIO_A, 2, "1", false, 1)), fw(conf(&p.b, PRIO_B, 2, "1", false, 1)));
    assert!(a_conf.contains("virtual_server fwmark 1 {"), "{a_conf}");
    elect_a(&mut p, &a_conf, &b_conf, 1.0);
    for n in [&p.a, &p.b] {
        let (listing, _, _) = n.rvsadm(&["-L", "-n"]);
        assert!(listing.contains("FWM  1 rr"), "node {}: {listing}", n.name);
    }
    traffic_via(&p, "a", 9);

    let rs2 = rs4(2);
    // The weight rvsd gives rs2:8080 in the fwmark 1 service.
    let weight = |n: &Node| {
        let services = n.services().ok()?;
        let s = services.iter().find(|s| s.service.fwmark == 1)?;
        s.service.real_servers.iter().find(|r| r.addr.to_string() == rs2 && r.port == 8080).map(|r| r.weight)
    };
    assert_eq!((weight(&p.a), weight(&p.b)), (Some(1), Some(1)), "both nodes hold the service");
    p.stop_http(2);
    for n in [&p.a, &p.b] {
        wait_for(Duration::from_secs(8), || weight(n) == Some(0))
            .unwrap_or_else(|| panic!("node {}: rs2 gets weight 0 in the fwmark service", n.name));
    }
    let (bodies, ok) = p.curl(12, 10);
    let tally = p.tally(&bodies);
    assert!(ok && tally[1] == 0 && tally.iter().sum::<usize>() == 12, "{tally:?}");

    p.a.kill_agent();
    let t0 = Instant::now();
    wait_for(master_down(PRIO_B, 1.0) + Duration::from_secs(5), || p.b.holds(VIP4)).expect("b takes the VIP");
    resumed_via(&p, "b", t0, Duration::from_secs(10));
    traffic_via(&p, "b", 9);
}
