use super::*;
use crate::check::Transition;
use crate::dataplane::{Call, FakeDataplane, Proto};
use crate::keepalived::{parse_str, Options};

const BASE: &str = "global_defs {\n router_id a\n}\n\
vrrp_script chk {\n script \"/bin/true\"\n interval 1\n}\n\
vrrp_instance VI_1 {\n interface lo\n virtual_router_id 1\n priority 100\n advert_int 1\n\
 virtual_ipaddress {\n  192.0.2.1/32\n }\n}\n\
vrrp_instance VI_2 {\n interface lo\n virtual_router_id 2\n priority 100\n advert_int 1\n\
 virtual_ipaddress {\n  192.0.2.2/32\n }\n}\n\
virtual_server 192.0.2.1 80 {\n lb_kind FNAT\n lb_algo wrr\n delay_loop 1\n\
 real_server 10.0.0.1 80 {\n  weight 10\n  inhibit_on_failure\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n\
 real_server 10.0.0.2 80 {\n  weight 20\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n}\n\
virtual_server 192.0.2.2 443 {\n lb_kind FNAT\n lb_algo rr\n\
 real_server 10.0.0.3 443 {\n  weight 1\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n}\n";

fn cfg(text: &str) -> Config {
    let l = parse_str(text, "k.conf", Options::default());
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    l.config
}

fn key(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::new(Proto::Tcp, vip.parse().unwrap(), port)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn identical_files_differ_in_nothing_even_with_lines_moved() {
    let moved = format!("# a comment\n\n\n{BASE}");
    let d = diff(&cfg(BASE), &cfg(&moved));
    assert!(d.is_empty(), "{:?}", d.lines());
}

#[test]
fn one_weight_changes_one_weight_only() {
    let new = BASE.replace("weight 20", "weight 25");
    let d = diff(&cfg(BASE), &cfg(&new));
    assert!(d.instances.is_empty() && d.services.services.is_empty() && d.checkers.is_empty(), "{d:?}");
    assert_eq!(d.services.real_servers, [RsChange::Weight(key("192.0.2.1", 80), sa("10.0.0.2:80"), 20, 25)]);
    assert_eq!(d.lines(), ["virtual server tcp 192.0.2.1:80: real server 10.0.0.2:80 weight 20 -> 25"]);
    let dp = FakeDataplane::new();
    d.apply_services(&dp);
    dp.set_services(&cfg_services(BASE)).unwrap();
    let before = dp.calls().len();
    d.apply_services(&dp);
    assert_eq!(dp.calls()[before..], [Call::SetWeight(key("192.0.2.1", 80), sa("10.0.0.2:80"), 25)]);
}

fn cfg_services(text: &str) -> Vec<Service> {
    Pool::from_config(&cfg(text)).1
}

#[test]
fn real_servers_added_and_removed_start_and_stop_their_checkers() {
    let new = BASE.replace("real_server 10.0.0.2 80 {\n  weight 20\n", "real_server 10.0.0.4 80 {\n  weight 20\n");
    let d = diff(&cfg(BASE), &cfg(&new));
    assert!(d.instances.is_empty() && d.services.services.is_empty());
    let k = key("192.0.2.1", 80);
    assert_eq!(
        d.services.real_servers,
        [RsChange::Removed(k, sa("10.0.0.2:80")), RsChange::Added(k, RealServer::new(sa("10.0.0.4:80"), 20))]
    );
    let changes: Vec<_> = d.checkers.iter().map(|c| (c.rs, c.change)).collect();
    assert_eq!(changes, [(sa("10.0.0.4:80"), Change::Added), (sa("10.0.0.2:80"), Change::Removed)]);
    // Applied one by one.
    let dp = FakeDataplane::new();
    dp.set_services(&cfg_services(BASE)).unwrap();
    d.apply_services(&dp);
    assert_eq!(dp.calls()[1..], [Call::DelRs(k, sa("10.0.0.2:80")), Call::AddRs(k, sa("10.0.0.4:80"), 20)]);
}

#[test]
fn changed_check_restarts_only_that_checker() {
    let new = BASE.replace(
        "  weight 20\n  TCP_CHECK {\n   connect_timeout 1\n",
        "  weight 20\n  TCP_CHECK {\n   connect_timeout 2\n",
    );
    let old = cfg(BASE);
    let (pool, _, _) = Pool::from_config(&old);
    let (d, _, plan) = plan(&old, &pool, &cfg(&new));
    assert!(d.instances.is_empty() && d.services.services.is_empty() && d.services.real_servers.is_empty());
    assert_eq!(d.checkers.len(), 1);
    assert_eq!((d.checkers[0].rs, d.checkers[0].change), (sa("10.0.0.2:80"), Change::Changed));
    // Same id, restarted.
    assert_eq!(plan.stop, [1]);
    assert_eq!(plan.start.len(), 1);
    assert_eq!(plan.start[0].0.id, 1);
    assert_eq!(plan.start[0].0.checks[0].timeout, std::time::Duration::from_secs(2));
}

#[test]
fn services_added_removed_and_changed() {
    let new = BASE.replace("lb_algo rr", "lb_algo wlc").replace("192.0.2.1 80 {", "192.0.2.9 80 {");
    let d = diff(&cfg(BASE), &cfg(&new));
    let mut s = d.services.services.clone();
    s.sort_by_key(|x| x.0);
    assert_eq!(
        s,
        [
            (key("192.0.2.1", 80), Change::Removed),
            (key("192.0.2.2", 443), Change::Changed),
            (key("192.0.2.9", 80), Change::Added)
        ]
    );
    // A service-level change goes as one set of services.
    let dp = FakeDataplane::new();
    d.apply_services(&dp);
    assert_eq!(dp.calls(), [Call::SetServices(vec![key("192.0.2.9", 80), key("192.0.2.2", 443)])]);
    assert_eq!(dp.service(&key("192.0.2.2", 443)).unwrap().scheduler, "wlc");
}

/// A reload that sets, changes or drops `establish_timeout` changes that service only:
/// the whole set goes once (ServiceReplace) with the new conn_timeout, the other service
/// and every real server as they were.
#[test]
fn a_changed_establish_timeout_sends_the_changed_service() {
    let with = |t: &str| BASE.replace(" lb_algo rr\n", &format!(" lb_algo rr\n establish_timeout {t}\n"));
    let k = key("192.0.2.2", 443);
    for (old, new, want) in
        [(BASE.to_string(), with("7200"), 7200), (with("7200"), with("30"), 30), (with("30"), BASE.to_string(), 0)]
    {
        let d = diff(&cfg(&old), &cfg(&new));
        assert_eq!(d.services.services, [(k, Change::Changed)], "{want}");
        assert!(d.services.real_servers.is_empty() && d.checkers.is_empty() && d.instances.is_empty(), "{d:?}");
        let dp = FakeDataplane::new();
        dp.set_services(&cfg_services(&old)).unwrap();
        d.apply_services(&dp);
        assert_eq!(dp.calls()[1..], [Call::SetServices(vec![key("192.0.2.1", 80), k])]);
        assert_eq!(dp.service(&k).unwrap().conn_timeout, want);
        assert_eq!(dp.service(&key("192.0.2.1", 80)).unwrap().conn_timeout, 0);
    }
    // The same value (lines moved): nothing.
    assert!(diff(&cfg(&with("7200")), &cfg(&format!("\n{}", with("7200")))).is_empty());
}

#[test]
fn instances_added_removed_changed_and_unchanged() {
    let new = BASE
        .replace("virtual_router_id 2\n priority 100", "virtual_router_id 2\n priority 150")
        .replace("vrrp_instance VI_1 {", "vrrp_instance VI_3 {");
    let d = diff(&cfg(BASE), &cfg(&new));
    assert_eq!(
        d.instances,
        [("VI_1".into(), Change::Removed), ("VI_2".into(), Change::Changed), ("VI_3".into(), Change::Added)]
    );
    assert!(d.services.real_servers.is_empty() && d.services.services.is_empty() && d.checkers.is_empty());
    // A global change touches every instance.
    let new = BASE.replace("router_id a", "router_id b");
    let d = diff(&cfg(BASE), &cfg(&new));
    assert_eq!(d.instances, [("VI_1".into(), Change::Changed), ("VI_2".into(), Change::Changed)]);
}

#[test]
fn tracked_script_and_sync_group_changes_restart_their_instances() {
    let tracked = BASE.replace(
        "virtual_ipaddress {\n  192.0.2.1/32",
        "track_script {\n  chk\n }\n virtual_ipaddress {\n  192.0.2.1/32",
    );
    let d = diff(&cfg(BASE), &cfg(&tracked));
    assert_eq!(d.instances, [("VI_1".into(), Change::Changed)]);
    // The script VI_1 tracks changes: VI_1 only.
    let d = diff(&cfg(&tracked), &cfg(&tracked.replace("interval 1", "interval 2")));
    assert_eq!(d.instances, [("VI_1".into(), Change::Changed)]);
    // In one sync group, a change to one member restarts both.
    let grouped = format!("vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n}}\n{BASE}");
    let d = diff(
        &cfg(&grouped),
        &cfg(&grouped.replace("virtual_router_id 2\n priority 100", "virtual_router_id 2\n priority 90")),
    );
    assert_eq!(d.instances, [("VI_1".into(), Change::Changed), ("VI_2".into(), Change::Changed)]);
}

#[test]
fn live_health_is_kept_across_a_reload() {
    let old = cfg(BASE);
    let (mut pool, services, _) = Pool::from_config(&old);
    let dp = FakeDataplane::new();
    dp.set_services(&services).unwrap();
    // 10.0.0.1 (inhibit) is down: weight 0 in the dataplane.
    pool.apply(&Transition { id: 0, up: false, reason: "test".into(), weight_delta: 0, alert: None }, &dp).unwrap();
    let new = BASE.replace("weight 20", "weight 25");
    let (d, next, plan) = plan(&old, &pool, &cfg(&new));
    // Only the weight that changed; the down server stays at 0 (no checker restarted).
    assert_eq!(d.services.real_servers, [RsChange::Weight(key("192.0.2.1", 80), sa("10.0.0.2:80"), 20, 25)]);
    assert!(plan.start.is_empty() && plan.stop.is_empty());
    assert!(!next.rs(0).unwrap().up);
    let svc = d.new_services.iter().find(|s| s.key == key("192.0.2.1", 80)).unwrap();
    assert_eq!(svc.real_servers[0], RealServer::new(sa("10.0.0.1:80"), 0));
    // Its weight changed while down: nothing to send now, the new weight when it is back.
    let new2 = BASE.replace("weight 10", "weight 11");
    let (d, mut next, _) = super::plan(&old, &pool, &cfg(&new2));
    assert!(d.services.real_servers.is_empty(), "{:?}", d.services);
    let before = dp.calls().len();
    next.apply(&Transition { id: 0, up: true, reason: "test".into(), weight_delta: 0, alert: None }, &dp).unwrap();
    assert_eq!(dp.calls()[before..], [Call::SetWeight(key("192.0.2.1", 80), sa("10.0.0.1:80"), 11)]);
}

/// One virtual server whose first real server (weight 10) is checked by a FILE_CHECK on
/// `path` (weight 1: the file's number is added to the server's weight), the second
/// (weight 20) by nothing.
fn file_check_conf(path: &str) -> String {
    format!(
        "track_file tf {{\n file {path}\n weight 1\n}}\n\
         virtual_server 192.0.2.1 80 {{\n lb_kind FNAT\n lb_algo wrr\n delay_loop 0.05\n\
         real_server 10.0.0.1 80 {{\n  weight 10\n  FILE_CHECK {{\n   track_file tf\n  }}\n }}\n\
         real_server 10.0.0.2 80 {{\n  weight 20\n }}\n}}\n"
    )
}

/// A FILE_CHECK's weight change survives a reload that keeps its checker running (that
/// checker reports only a *changed* change): the pool carries it, the services after the
/// reload hold the adjusted weight and nothing is sent for that server; a changed
/// configured weight moves from adjusted to adjusted. A reload that restarts the checker
/// (its checks changed) starts it from no change, as the restarted checker does.
#[test]
fn a_reload_keeps_the_file_check_weight_change_of_a_kept_checker() {
    let base = file_check_conf("/nonexistent/rvs-reload-file-check");
    let old = cfg(&base);
    let (mut pool, services, _) = Pool::from_config(&old);
    let dp = FakeDataplane::new();
    dp.set_services(&services).unwrap();
    let k = key("192.0.2.1", 80);
    // The file says 5: 10 -> 15.
    pool.apply(&Transition { id: 0, up: true, reason: "test".into(), weight_delta: 5, alert: None }, &dp).unwrap();
    assert_eq!(dp.calls().last(), Some(&Call::SetWeight(k, sa("10.0.0.1:80"), 15)));
    let weight_of = |d: &Diff, rs: &str| {
        let svc = d.new_services.iter().find(|s| s.key == k).unwrap();
        svc.real_servers.iter().find(|r| r.addr == sa(rs)).unwrap().weight
    };
    // Another server's weight changes: only that one is sent, 10.0.0.1 stays at 15.
    let (d, next, checkers) = plan(&old, &pool, &cfg(&base.replace("weight 20", "weight 25")));
    assert_eq!(d.services.real_servers, [RsChange::Weight(k, sa("10.0.0.2:80"), 20, 25)]);
    assert!(checkers.start.is_empty() && checkers.stop.is_empty(), "the FILE_CHECK keeps running");
    assert_eq!(next.rs(0).unwrap().weight_delta, 5);
    assert_eq!(weight_of(&d, "10.0.0.1:80"), 15, "what a reconnected rvsd would be given");
    assert_eq!(next.services(), d.new_services);
    // Its own configured weight changes: 15 -> 16 (11 + 5).
    let (d, next, _) = plan(&old, &pool, &cfg(&base.replace("weight 10", "weight 11")));
    assert_eq!(d.services.real_servers, [RsChange::Weight(k, sa("10.0.0.1:80"), 15, 16)]);
    assert_eq!(next.rs(0).unwrap().effective_weight(), 16);
    // Its FILE_CHECK changes (weight 2): restarted from no change (its first round
    // reports the new one), so the configured weight until then.
    let changed = base.replace("track_file tf\n  }", "track_file tf\n   weight 2\n  }");
    let (d, next, checkers) = plan(&old, &pool, &cfg(&changed));
    assert_eq!(checkers.stop, [0]);
    assert_eq!(next.rs(0).unwrap().weight_delta, 0);
    assert_eq!(d.services.real_servers, [RsChange::Weight(k, sa("10.0.0.1:80"), 15, 10)]);
    // Removed and added back (another address in between would do the same): from 0.
    let gone = cfg(&base.replace("real_server 10.0.0.1 80", "real_server 10.0.0.9 80"));
    let (_, next, _) = plan(&old, &pool, &gone);
    let (_, back, _) = plan(&gone, &next, &old);
    assert_eq!(back.rs(3).map(|r| (r.addr, r.weight_delta)), Some((sa("10.0.0.1:80"), 0)));
}

/// The same through the running agent and its real FILE_CHECK: the file says 5, the
/// dataplane gets 15; a reload that changes only the other server leaves it at 15.
#[tokio::test]
async fn the_agent_keeps_a_file_check_weight_change_across_a_reload() {
    use std::sync::Arc;
    use std::time::Duration;
    let dir = std::env::temp_dir().join(format!("rvs-agent-reload-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tf");
    std::fs::write(&file, "5\n").unwrap();
    let base = file_check_conf(&file.display().to_string());
    let dp = Arc::new(FakeDataplane::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(crate::agent::run_with_reload(cfg(&base), dp.clone(), stop_rx, reload_rx, |_| {}));
    let k = key("192.0.2.1", 80);
    let weight =
        |rs: &str| dp.service(&k).and_then(|s| s.real_servers.iter().find(|r| r.addr == sa(rs)).map(|r| r.weight));
    let settle = || tokio::time::sleep(Duration::from_millis(300));
    settle().await;
    assert_eq!(weight("10.0.0.1:80"), Some(15), "{:?}", dp.calls());
    reload_tx.send(parse_str(&base.replace("weight 20", "weight 25"), "k.conf", Options::default())).unwrap();
    settle().await;
    assert_eq!((weight("10.0.0.1:80"), weight("10.0.0.2:80")), (Some(15), Some(25)), "{:?}", dp.calls());
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// keepalived's alpha on a reload (`clear_diff_rs`, `check_new_rs_state`): a real server
/// the reload keeps keeps its health, alpha or not; one it adds starts down under alpha
/// (left out, its checker started from down), and up without.
#[test]
fn under_alpha_a_reload_starts_added_servers_down_and_keeps_the_others() {
    let alpha = BASE.replace(" lb_algo wrr\n", " lb_algo wrr\n alpha\n");
    let added = " real_server 10.0.0.5 80 {\n  weight 5\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n";
    let with_added = |text: &str| text.replace("real_server 10.0.0.2 80", &format!("{added}real_server 10.0.0.2 80"));
    let k = key("192.0.2.1", 80);
    // Running without alpha, every server up; the reload turns alpha on and adds one.
    let old = cfg(BASE);
    let (pool, _, _) = Pool::from_config(&old);
    let (d, next, checkers) = plan(&old, &pool, &cfg(&with_added(&alpha)));
    assert!(d.services.real_servers.is_empty(), "the added server is not in yet: {:?}", d.services);
    assert_eq!(checkers.start.iter().map(|(c, up)| (c.id, *up)).collect::<Vec<_>>(), [(3, false)]);
    assert!(next.rs(0).unwrap().up && next.rs(1).unwrap().up, "kept servers stay up");
    assert!(!next.rs(3).unwrap().up);
    let svc = d.new_services.iter().find(|s| s.key == k).unwrap();
    assert!(!svc.real_servers.iter().any(|r| r.addr == sa("10.0.0.5:80")));
    // The same reload without alpha: added and checked from up, as keepalived.
    let (d, _, checkers) = plan(&old, &pool, &cfg(&with_added(BASE)));
    assert_eq!(d.services.real_servers, [RsChange::Added(k, RealServer::new(sa("10.0.0.5:80"), 5))]);
    assert_eq!(checkers.start.iter().map(|(c, up)| (c.id, *up)).collect::<Vec<_>>(), [(3, true)]);
    // Running with alpha (its servers still down, checks not passed): a reload that
    // changes a weight keeps them down and out.
    let old = cfg(&alpha);
    let (pool, services, _) = Pool::from_config(&old);
    assert_eq!(services[0].real_servers, [RealServer::new(sa("10.0.0.1:80"), 0)], "10.0.0.2 out, 10.0.0.1 inhibited");
    let (d, next, checkers) = plan(&old, &pool, &cfg(&alpha.replace("weight 20", "weight 25")));
    assert!(d.services.real_servers.is_empty() && checkers.start.is_empty(), "{:?}", d.services);
    assert!(!next.rs(0).unwrap().up && !next.rs(1).unwrap().up);
}

/// Two SNAT rules (`virtual_server match`), as DPVS writes them.
const SNAT: &str = "virtual_server match A {\n protocol TCP\n lb_kind SNAT\n src-range 192.168.100.0-192.168.100.254\n\
 oif dpdk1\n real_server 198.18.0.1 0 {\n }\n real_server 198.18.0.2 0 {\n }\n}\n\
virtual_server match B {\n protocol UDP\n lb_kind SNAT\n src-range 192.168.100.0-192.168.100.254\n oif dpdk1\n\
 real_server 198.18.0.3 0 {\n }\n}\n";

/// A's WAN addresses changed, B removed, C added.
fn snat_reloaded() -> String {
    let c = "virtual_server match C {\n lb_kind SNAT\n dst-range 123.1.2.0/24\n real_server 198.18.0.5 0 {\n }\n}\n";
    let a_b = SNAT.replace("198.18.0.1 0", "198.18.0.4 0");
    format!("{}{c}", &a_b[..a_b.find("virtual_server match B").unwrap()])
}

fn snat_of(text: &str) -> Vec<ctl::SnatSpec> {
    cfg(text).snat.into_iter().map(|s| s.rule).collect()
}

#[test]
fn snat_rules_added_removed_and_with_other_wan_addresses() {
    let old = cfg(&format!("{BASE}{SNAT}"));
    // Unchanged (lines moved, WAN addresses reordered): nothing.
    let swapped =
        SNAT.replace("198.18.0.1 0 {\n }\n real_server 198.18.0.2", "198.18.0.2 0 {\n }\n real_server 198.18.0.1");
    assert!(diff(&old, &cfg(&format!("\n\n{BASE}{swapped}"))).is_empty());
    let d = diff(&old, &cfg(&format!("{BASE}{}", snat_reloaded())));
    assert!(d.instances.is_empty() && d.services.services.is_empty() && d.checkers.is_empty(), "{d:?}");
    assert_eq!(
        d.lines(),
        [
            "SNAT rule A (proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1) WAN addresses changed",
            "SNAT rule B (proto=udp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1) removed",
            "SNAT rule C (proto=tcp,dst-range=123.1.2.0-123.1.2.255) added",
        ]
    );
    let dp = FakeDataplane::new();
    d.apply_snat(&dp);
    assert_eq!(
        dp.calls(),
        [Call::SetSnat(vec![
            "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into(),
            "proto=tcp,dst-range=123.1.2.0-123.1.2.255".into()
        ])]
    );
    assert_eq!(dp.snat(), snat_of(&snat_reloaded()));
    // No SNAT change: nothing sent.
    let d = diff(&old, &cfg(&format!("{}{SNAT}", BASE.replace("weight 20", "weight 25"))));
    assert!(d.snat.is_empty());
    d.apply_snat(&dp);
    assert_eq!(dp.calls().len(), 1);
}

/// A rule whose `protocol` turns from TCP to ICMP is another rule for rvsd (its match
/// names it): the TCP one removed, the ICMP one added.
#[test]
fn a_snat_rule_turned_to_icmp_replaces_the_tcp_one() {
    let icmp = SNAT.replacen("protocol TCP", "protocol ICMP", 1);
    let d = diff(&cfg(SNAT), &cfg(&icmp));
    assert_eq!(
        d.lines(),
        [
            "SNAT rule A (proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1) removed",
            "SNAT rule A (proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1) added",
        ]
    );
    let dp = FakeDataplane::new();
    d.apply_snat(&dp);
    assert_eq!(
        dp.snat().iter().map(|r| r.proto).collect::<Vec<_>>(),
        [Some(fnat::types::Proto::Icmp), Some(fnat::types::Proto::Udp)]
    );
}

/// The agent gives the dataplane keepalived.conf's SNAT rules at start and the new set
/// on a reload that changes them (and none on one that does not).
#[tokio::test]
async fn the_agent_sets_snat_rules_at_start_and_on_reload() {
    use std::sync::Arc;
    let dp = Arc::new(FakeDataplane::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let (d, start) = (dp.clone(), cfg(SNAT));
    let task = tokio::spawn(crate::agent::run_with_reload(start, d, stop_rx, reload_rx, |_| {}));
    let snat_calls = || dp.calls().into_iter().filter(|c| matches!(c, Call::SetSnat(_))).count();
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(100));
    settle().await;
    assert_eq!(dp.snat(), snat_of(SNAT));
    assert_eq!(snat_calls(), 1);
    reload_tx.send(parse_str(&snat_reloaded(), "k.conf", Options::default())).unwrap();
    settle().await;
    assert_eq!(dp.snat(), snat_of(&snat_reloaded()));
    assert_eq!(snat_calls(), 2);
    reload_tx.send(parse_str(&format!("# moved\n{}", snat_reloaded()), "k.conf", Options::default())).unwrap();
    settle().await;
    assert_eq!(snat_calls(), 2, "nothing changed");
    reload_tx.send(parse_str("", "k.conf", Options::default())).unwrap();
    settle().await;
    assert_eq!((dp.snat(), snat_calls()), (Vec::new(), 3), "every rule gone");
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

/// keepalived's `lvs_sync_daemon` without a VRRP instance (its checker process): both
/// connection-sync roles while the agent runs, stopped when it stops; a reload that
/// names an instance hands the roles over to it (here none is started: no instance).
#[tokio::test]
async fn an_lvs_sync_daemon_without_an_instance_runs_both_roles_while_the_agent_runs() {
    use crate::dataplane::SyncRoles;
    use std::sync::Arc;
    let dp = Arc::new(FakeDataplane::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let conf = |line: &str| format!("global_defs {{\n {line}\n}}\n{SNAT}");
    let d = dp.clone();
    let task =
        tokio::spawn(crate::agent::run_with_reload(cfg(&conf("lvs_sync_daemon eth1")), d, stop_rx, reload_rx, |_| {}));
    let roles = || {
        dp.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::SyncRoles(r) => Some(r),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(100));
    settle().await;
    let both = |syncid| SyncRoles { master: true, backup: true, syncid };
    assert_eq!(roles(), [both(0)], "keepalived's default sync id without an instance: 0");
    // The same line again: nothing asked; another id: asked again.
    reload_tx
        .send(parse_str(&format!("# moved\n{}", conf("lvs_sync_daemon eth1")), "k.conf", Options::default()))
        .unwrap();
    settle().await;
    assert_eq!(roles(), [both(0)]);
    reload_tx.send(parse_str(&conf("lvs_sync_daemon eth1 id 9"), "k.conf", Options::default())).unwrap();
    settle().await;
    assert_eq!(roles(), [both(0), both(9)]);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(roles(), [both(0), both(9), SyncRoles::stopped(9)]);
}

/// A reload that turns `ha_suspend` on or changes a `warmup` restarts the checkers of the
/// servers concerned (from their health; keepalived's reload starts every checker afresh,
/// suspended or warmed up anew), and nothing in the dataplane; `sorry_server_inhibit`
/// turned on puts the sorry server in at weight 0, one real server added to the service.
#[test]
fn ha_suspend_warmup_and_sorry_server_inhibit_reloaded() {
    let old = cfg(BASE);
    let (pool, _, _) = Pool::from_config(&old);
    let restarted = |new: &str| {
        let (d, _, plan) = plan(&old, &pool, &cfg(new));
        assert!(d.services.services.is_empty() && d.services.real_servers.is_empty(), "{:?}", d.lines());
        let mut ids = plan.stop.clone();
        ids.sort();
        (ids, plan.start.into_iter().map(|(c, _)| (c.id, c.warmup, c.ha_suspend)).collect::<Vec<_>>())
    };
    let vip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let (stop, start) = restarted(&BASE.replace(" delay_loop 1\n", " delay_loop 1\n ha_suspend\n"));
    assert_eq!(stop, [0, 1]);
    let secs = std::time::Duration::from_secs;
    assert_eq!(start, [(0, secs(1), Some(vec![vip])), (1, secs(1), Some(vec![vip]))]);
    let (stop, start) = restarted(&BASE.replace("  weight 20\n", "  weight 20\n  warmup 3\n"));
    assert_eq!(stop, [1]);
    assert_eq!(start, [(1, secs(3), None)]);
    // sorry_server_inhibit: the sorry server in at weight 0 (the quorum holds).
    let with_sorry = BASE.replace(" delay_loop 1\n", " delay_loop 1\n sorry_server 10.0.9.9 80\n");
    let old = cfg(&with_sorry);
    let (pool, _, _) = Pool::from_config(&old);
    let new = with_sorry.replace("sorry_server 10.0.9.9 80\n", "sorry_server 10.0.9.9 80\n sorry_server_inhibit\n");
    let (d, _, plan) = plan(&old, &pool, &cfg(&new));
    assert!(plan.stop.is_empty() && plan.start.is_empty());
    let k = key("192.0.2.1", 80);
    assert_eq!(d.services.real_servers, [RsChange::Added(k, RealServer::new(sa("10.0.9.9:80"), 0))]);
    let dp = FakeDataplane::new();
    dp.set_services(&cfg_services(&with_sorry)).unwrap();
    d.apply_services(&dp);
    assert_eq!(dp.calls()[1..], [Call::AddRs(k, sa("10.0.9.9:80"), 0)]);
}

/// keepalived's `lvs_timeouts` changed alone is a change (logged, applied with
/// `set_timeouts`), and restarts no VRRP instance; `vrrp_startup_delay` (the agent's start
/// only) and `lvs_flush_on_stop` (read at shutdown) changed alone change nothing here.
#[test]
fn lvs_timeouts_changed_alone_is_applied_and_restarts_no_instance() {
    use crate::dataplane::LvsTimeouts;
    let with = |globals: &str| BASE.replace(" router_id a\n", &format!(" router_id a\n{globals}"));
    let old = cfg(&with(" lvs_timeouts tcp 900\n"));
    let d = diff(&old, &cfg(&with(" lvs_timeouts tcp 600 udp 30\n")));
    assert!(!d.is_empty());
    assert!(d.instances.is_empty() && d.services.services.is_empty() && d.checkers.is_empty(), "{:?}", d.lines());
    assert_eq!(d.lines(), ["lvs_timeouts tcp 900 -> tcp 600 udp 30"]);
    let dp = FakeDataplane::new();
    d.apply_timeouts(&dp);
    assert_eq!(dp.calls(), [Call::Timeouts(LvsTimeouts { tcp: 600, tcpfin: 0, udp: 30 })]);
    // Gone from the file: none set (the dataplane puts its own values back).
    let d = diff(&old, &cfg(BASE));
    assert_eq!(d.lines(), ["lvs_timeouts tcp 900 -> none"]);
    let dp = FakeDataplane::new();
    d.apply_timeouts(&dp);
    assert_eq!(dp.calls(), [Call::Timeouts(LvsTimeouts::default())]);
    // The same timeouts (written otherwise): nothing.
    let d = diff(&old, &cfg(&with(" lvs_timeouts udp 0 tcp 900\n")));
    assert!(d.is_empty(), "{:?}", d.lines());
    let dp = FakeDataplane::new();
    d.apply_timeouts(&dp);
    assert_eq!(dp.calls(), []);
    // Neither the startup delay nor lvs_flush_on_stop restarts an instance.
    let d = diff(&old, &cfg(&with(" lvs_timeouts tcp 900\n vrrp_startup_delay 5\n lvs_flush_on_stop\n")));
    assert!(d.is_empty(), "{:?}", d.lines());
    // Nor do the mail settings (read at each reload), an instance's own smtp_alert, or
    // net_namespace (taken at start only).
    let mail =
        " lvs_timeouts tcp 900\n notification_email {\n  ops@example.com\n }\n smtp_server 127.0.0.1\n smtp_alert\n";
    let d = diff(&old, &cfg(&with(mail).replace("vrrp_instance VI_1 {\n", "vrrp_instance VI_1 {\n smtp_alert off\n")));
    assert!(d.is_empty(), "{:?}", d.lines());
    let d = diff(&old, &cfg(&format!("net_namespace blue\n{}", with(" lvs_timeouts tcp 900\n"))));
    assert!(d.is_empty(), "{:?}", d.lines());
    // Another global_defs keyword still does (their behaviour depends on it).
    let d = diff(&old, &cfg(&with(" lvs_timeouts tcp 900\n vrrp_garp_master_repeat 2\n")));
    assert_eq!(d.instances.len(), 2, "{:?}", d.lines());
}

/// The agent sets keepalived's `lvs_timeouts` at start (before the services, as
/// keepalived) and again on a reload that changes them, only them included; a reload
/// without them asks for none (the dataplane's own values back); an agent whose file has
/// none never asks.
#[tokio::test]
async fn the_agent_sets_lvs_timeouts_at_start_and_on_reload() {
    use crate::dataplane::LvsTimeouts;
    use std::sync::Arc;
    let conf = |line: &str| format!("global_defs {{\n {line}\n}}\n{SNAT}");
    let dp = Arc::new(FakeDataplane::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let d = dp.clone();
    let start = cfg(&conf("lvs_timeouts tcp 7200 udp 60"));
    let task = tokio::spawn(crate::agent::run_with_reload(start, d, stop_rx, reload_rx, |_| {}));
    let timeouts = || {
        dp.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Timeouts(t) => Some(t),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let t = |tcp, tcpfin, udp| LvsTimeouts { tcp, tcpfin, udp };
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(100));
    settle().await;
    assert_eq!(timeouts(), [t(7200, 0, 60)]);
    assert_eq!(dp.calls()[0], Call::Timeouts(t(7200, 0, 60)), "before the services and SNAT rules");
    // A reload that changes them alone: applied.
    let reload = |text: String| reload_tx.send(parse_str(&text, "k.conf", Options::default())).unwrap();
    reload(conf("lvs_timeouts tcp 7200 tcpfin 30"));
    settle().await;
    assert_eq!(timeouts(), [t(7200, 0, 60), t(7200, 30, 0)]);
    assert_eq!(dp.timeouts(), Some(t(7200, 30, 0)));
    // Unchanged: nothing asked.
    reload(format!("# moved\n{}", conf("lvs_timeouts tcpfin 30 tcp 7200")));
    settle().await;
    assert_eq!(timeouts().len(), 2);
    // Gone: none set.
    reload(SNAT.to_string());
    settle().await;
    assert_eq!(timeouts(), [t(7200, 0, 60), t(7200, 30, 0), t(0, 0, 0)]);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(timeouts().len(), 3, "left as they are at stop");
    // A file without lvs_timeouts: never asked.
    let dp = Arc::new(FakeDataplane::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let d = dp.clone();
    let task = tokio::spawn(crate::agent::run(cfg(SNAT), d, stop_rx, |_| {}));
    settle().await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(dp.timeouts(), None);
}

/// keepalived's vrrp_exist: a changed instance that is the same router (VRID, interface,
/// family, multicast or unicast source) hands over in its state; another router is the
/// old one removed; a sync group hands over whole or restarts whole.
#[test]
fn a_changed_instance_hands_over_when_it_is_the_same_router() {
    let old = cfg(BASE);
    let leaves = |from: &str, to: &str| changed_leaves(&old, &cfg(&BASE.replacen(from, to, 1)), "VI_1");
    assert_eq!(leaves("priority 100", "priority 150"), Leave::Handover);
    assert_eq!(leaves("  192.0.2.1/32\n", "  192.0.2.1/32\n  192.0.2.9/32\n"), Leave::Handover);
    assert_eq!(leaves("virtual_router_id 1\n", "virtual_router_id 9\n"), Leave::Removed);
    assert_eq!(leaves("  192.0.2.1/32\n", "  2001:db8::1/128\n"), Leave::Removed);
    assert_eq!(
        leaves("virtual_router_id 1\n", "virtual_router_id 1\n unicast_peer {\n  10.0.0.9\n }\n"),
        Leave::Removed
    );
    let grouped = format!("{BASE}vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n}}\n");
    assert_eq!(changed_leaves(&old, &cfg(&grouped.replacen("priority 100", "priority 150", 1)), "VI_1"), Leave::Stop);
    // A group whose members all stay the same routers hands over whole; one member made
    // another router: the others restart.
    let (g_old, g_new) = (cfg(&grouped), cfg(&grouped.replacen("priority 100", "priority 150", 1)));
    assert_eq!(changed_leaves(&g_old, &g_new, "VI_2"), Leave::Handover);
    let moved = cfg(&grouped.replacen("virtual_router_id 2\n", "virtual_router_id 9\n", 1));
    assert_eq!(changed_leaves(&g_old, &moved, "VI_1"), Leave::Stop);
    assert_eq!(changed_leaves(&g_old, &moved, "VI_2"), Leave::Removed);
    assert_eq!(changed_leaves(&old, &cfg(&BASE.replacen("VI_1", "VI_9", 1)), "VI_1"), Leave::Removed);
}

/// A fwmark virtual server added, its weight changed, its family changed: the services
/// are keyed by mark and family and named `fwmark 7` / `fwmark 7 IPv6` in the reload's
/// lines; another family is another service (and its checker restarts).
#[test]
fn fwmark_virtual_servers_are_diffed_by_mark_and_family() {
    let fw = "virtual_server fwmark 7 {\n lb_kind NAT\n delay_loop 1\n\
              real_server 10.0.0.5 {\n  weight 4\n  TCP_CHECK {\n   connect_port 80\n  }\n }\n}\n";
    let one = format!("{BASE}{fw}");
    let d = diff(&cfg(BASE), &cfg(&one));
    assert_eq!(
        d.lines(),
        ["virtual server fwmark 7 added", "virtual server fwmark 7: real server 10.0.0.5:0 checker started"]
    );
    let fw7 = ServiceKey::of_fwmark(7, false);
    let two = one.replace("weight 4", "weight 5");
    let d = diff(&cfg(&one), &cfg(&two));
    assert_eq!(d.services.real_servers, [RsChange::Weight(fw7, sa("10.0.0.5:0"), 4, 5)]);
    assert_eq!(d.lines(), ["virtual server fwmark 7: real server 10.0.0.5:0 weight 4 -> 5"]);
    let v6 = two.replace("real_server 10.0.0.5 {", "real_server 2001:db8::5 {");
    let d = diff(&cfg(&two), &cfg(&v6));
    assert_eq!(
        d.lines(),
        [
            "virtual server fwmark 7 removed",
            "virtual server fwmark 7 IPv6 added",
            "virtual server fwmark 7 IPv6: real server [2001:db8::5]:0 checker started",
            "virtual server fwmark 7: real server 10.0.0.5:0 checker stopped",
        ]
    );
}

/// A group's first fwmark entry added, then removed: only the fwmark service comes and
/// goes. Its real servers keep the port written (keepalived clears it for the fwmark
/// entries only), so the VIP:port member's service, the checkers and the servers'
/// health stay as they were: a server down stays down, not put back as a new one.
#[test]
fn a_groups_first_fwmark_entry_changes_nothing_but_its_service() {
    let group = "virtual_server_group g {\n 192.0.2.1 80\n}\n\
                 virtual_server group g {\n lb_kind DR\n protocol TCP\n delay_loop 1\n\
                 real_server 10.0.0.5 80 {\n  weight 4\n  TCP_CHECK {\n  }\n }\n\
                 real_server 10.0.0.6 80 {\n  weight 4\n  TCP_CHECK {\n  }\n }\n}\n";
    let marked = group.replace(" 192.0.2.1 80\n", " 192.0.2.1 80\n fwmark 7\n");
    let fw7 = ServiceKey::of_fwmark(7, false);
    let (old, new) = (cfg(group), cfg(&marked));
    let (mut pool, _, _) = Pool::from_config(&old);
    let dp = FakeDataplane::new();
    dp.set_services(&pool.services()).unwrap();
    let down = Transition { id: 0, up: false, reason: "test".into(), weight_delta: 0, alert: None };
    pool.apply(&down, &dp).unwrap();
    let (d, next, checkers) = plan(&old, &pool, &new);
    assert_eq!(d.lines(), ["virtual server fwmark 7 added"]);
    assert!(checkers.stop.is_empty() && checkers.start.is_empty(), "{:?}", checkers.changes);
    assert!(!next.rs(0).unwrap().up, "10.0.0.5 stays down");
    let svc = |k: &ServiceKey| d.new_services.iter().find(|s| s.key == *k).unwrap().clone();
    let addrs = |s: Service| s.real_servers.iter().map(|r| r.addr).collect::<Vec<_>>();
    assert_eq!(addrs(svc(&key("192.0.2.1", 80))), [sa("10.0.0.6:80")]);
    assert_eq!(addrs(svc(&fw7)), [sa("10.0.0.6:0")], "port 0 in the fwmark service, 10.0.0.5 down");
    // And back: the fwmark service goes, nothing else.
    let (d, back, checkers) = plan(&new, &next, &old);
    assert_eq!(d.lines(), ["virtual server fwmark 7 removed"]);
    assert!(checkers.stop.is_empty() && checkers.start.is_empty(), "{:?}", checkers.changes);
    assert!(!back.rs(0).unwrap().up, "10.0.0.5 still down");
}

/// A group of fwmarks only is a fwmark service whatever `protocol` says (keepalived
/// drops it): editing it changes nothing, no checker restarts.
#[test]
fn the_protocol_of_a_group_of_fwmarks_only_is_no_change() {
    let group = "virtual_server_group f {\n fwmark 7\n}\n\
                 virtual_server group f {\n lb_kind NAT\n protocol TCP\n delay_loop 1\n\
                 real_server 10.0.0.5 80 {\n  TCP_CHECK {\n  }\n }\n}\n";
    let d = diff(&cfg(group), &cfg(&group.replace("protocol TCP", "protocol UDP")));
    assert!(d.is_empty(), "{:?}", d.lines());
}

/// A reload that changes a kept real server's forwarding method (its own `lvs_method`,
/// or its virtual server's `lb_kind`) or thresholds, not its weight: an edit of that
/// server ([`RsChange::Edit`]) applied in place with the live weight (a server held at
/// weight 0 by `inhibit_on_failure` stays there), reaching the dataplane; its checker
/// runs on (no restart, health kept), nothing else changes.
#[test]
fn a_real_servers_mode_or_thresholds_change_reaches_the_dataplane() {
    use fnat::types::FwdMode;
    let k = key("192.0.2.1", 80);
    let old = cfg(BASE);
    let (mut pool, _, _) = Pool::from_config(&old);
    let dp = FakeDataplane::new();
    dp.set_services(&pool.services()).unwrap();
    // 10.0.0.1 (inhibit_on_failure) down: weight 0.
    let down = Transition { id: 0, up: false, reason: "test".into(), weight_delta: 0, alert: None };
    pool.apply(&down, &dp).unwrap();
    let new = BASE
        .replace("  weight 10\n", "  weight 10\n  uthreshold 100\n  lthreshold 50\n")
        .replace("  weight 20\n", "  weight 20\n  lvs_method NAT\n");
    let (d, next, checkers) = plan(&old, &pool, &cfg(&new));
    assert!(d.services.services.is_empty(), "{:?}", d.lines());
    assert!(checkers.stop.is_empty() && checkers.start.is_empty(), "{:?}", checkers.changes);
    assert!(!next.rs(0).unwrap().up, "10.0.0.1 stays down");
    let rs1 = RealServer { fwd: FwdMode::FullNat, ..RealServer::new(sa("10.0.0.1:80"), 0) };
    let rs2 = RealServer { fwd: FwdMode::FullNat, ..RealServer::new(sa("10.0.0.2:80"), 20) };
    let rs1_new = RealServer { upper: 100, lower: 50, ..rs1.clone() };
    let rs2_new = RealServer { fwd: FwdMode::Nat, ..rs2.clone() };
    assert_eq!(
        d.services.real_servers,
        [RsChange::Edit(k, rs1, rs1_new.clone()), RsChange::Edit(k, rs2, rs2_new.clone())]
    );
    assert_eq!(
        d.lines(),
        [
            "virtual server tcp 192.0.2.1:80: real server 10.0.0.1:80 uthreshold 0 -> 100, lthreshold 0 -> 50",
            "virtual server tcp 192.0.2.1:80: real server 10.0.0.2:80 lvs_method FNAT -> NAT",
        ]
    );
    let before = dp.calls().len();
    d.apply_services(&dp);
    assert_eq!(dp.calls()[before..], [Call::EditRs(k, rs1_new), Call::EditRs(k, rs2_new)]);
    assert_eq!(dp.service(&k).unwrap(), d.new_services[0], "the dataplane holds the new services");
    // The virtual server's lb_kind: each of its servers edited.
    let dr = BASE.replace(" lb_kind FNAT\n lb_algo rr\n", " lb_kind DR\n lb_algo rr\n");
    let d = diff(&cfg(BASE), &cfg(&dr));
    let k = key("192.0.2.2", 443);
    let rs3 = RealServer::new(sa("10.0.0.3:443"), 1);
    assert_eq!(d.services.real_servers, [RsChange::Edit(k, rs3.clone(), RealServer { fwd: FwdMode::Dr, ..rs3 })]);
}
