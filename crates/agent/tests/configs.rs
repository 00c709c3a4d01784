//! The configuration files in tests/configs: realistic keepalived and DPVS files parse
//! cleanly; the broken one reports every mistake with file:line.

use rvs_agent::dataplane::Proto;
use rvs_agent::keepalived::config::{CheckKind, InitialState, VsTarget};
use rvs_agent::keepalived::{load, validate, Loaded, Options};
use rvs_agent::vrrp::packet::Version;
use std::path::PathBuf;

fn conf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(name)
}

fn load_ok(name: &str) -> Loaded {
    let l = load(&conf(name), Options::default());
    let errs: Vec<String> = l.errors().map(ToString::to_string).collect();
    assert!(errs.is_empty(), "{name}: {errs:#?}");
    l
}

#[test]
fn dpvs_tutorial_pair_parses_and_fails_over() {
    let m = load_ok("dpvs-fnat-master.conf");
    let b = load_ok("dpvs-fnat-backup.conf");
    let i = &m.config.vrrp_instances[0];
    assert_eq!((i.vrid, i.priority, i.state), (123, 100, InitialState::Master));
    assert_eq!((i.interface.as_str(), i.vip_port()), ("dpdk0.kni", "dpdk0"));
    assert_eq!(i.auth_pass.as_deref(), Some("s3cret"));
    assert_eq!(m.config.global_defs.vrrp_garp_master_refresh, Some(600));
    assert_eq!(i.garp_master_repeat, Some(1), "global garp defaults reach instances");
    let v = &m.config.virtual_servers[0];
    assert_eq!(v.target, VsTarget::Group("192.168.100.254-80".into()));
    assert_eq!(v.real_servers.len(), 2);
    assert!(v.real_servers.iter().all(|r| r.inhibit_on_failure && r.weight == 100));
    assert_eq!(v.real_servers[0].checks[0].common.retry, 2);
    assert_eq!(v.real_servers[0].checks[0].common.connect_port, Some(80));
    assert_eq!(m.config.virtual_server_groups[0].members, ["192.168.100.254:80".parse().unwrap()]);
    assert_eq!(b.config.local_address_groups[0].addrs[0], ("192.168.100.202".parse().unwrap(), Some("dpdk0".into())));
    assert_eq!(b.config.vrrp_instances[0].priority, 80);
    // No tracked weights: nothing to report for the pair.
    assert!(validate::validate_pair(&m.config, &b.config).is_empty());
    // DPVS's tutorial mail settings are read (keepalived's mail alerts).
    assert_eq!(m.config.global_defs.smtp.to, ["ops@example.com"]);
    assert!(m.config.global_defs.smtp.enabled());
}

#[test]
fn web_cluster_with_sync_group_scripts_and_checks() {
    let l = load_ok("lvs-web-cluster.conf");
    let c = &l.config;
    assert_eq!(c.vrrp_scripts.len(), 2);
    assert_eq!((c.vrrp_scripts[0].weight, c.vrrp_scripts[0].fall, c.vrrp_scripts[0].interval), (-30, 2, 2.0));
    assert_eq!(c.vrrp_sync_groups[0].members, ["VI_EXT", "VI_INT"]);
    let ext = &c.vrrp_instances[0];
    assert!(ext.nopreempt);
    assert_eq!(ext.virtual_ipaddress[0].dev.as_deref(), Some("eth0"));
    // `label` has no meaning for rvsd's addresses: a warning names it, and -t lists it.
    assert!(c.ignored.iter().any(|(_, k)| k == "virtual_ipaddress label"), "{:?}", c.ignored);
    assert_eq!(ext.track_interface[1].weight, Some(-20));
    assert_eq!(ext.auth_pass.as_deref(), Some("longpassword123"));
    assert!(l.diagnostics.iter().any(|d| d.message.contains("only the first 8 are used")));
    let int = &c.vrrp_instances[1];
    assert_eq!(int.unicast_peers, ["10.1.0.3".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(int.track_script[0].weight, Some(-40));
    let web = &c.virtual_servers[0];
    assert_eq!((web.quorum, web.hysteresis, web.persistence_timeout), (100, 10, Some(300)));
    assert_eq!(web.sorry_server, Some("10.1.0.250:8080".parse().unwrap()));
    match &web.real_servers[1].checks[0].kind {
        CheckKind::Http { urls, .. } => assert_eq!(urls[0].status_codes, [(200, 299), (302, 302)]),
        k => panic!("{k:?}"),
    }
    assert_eq!(c.virtual_servers[1].protocol, Proto::Udp);
    assert_eq!(c.local_address_groups[0].addrs.len(), 4);
    // Against a peer at priority 100, the -30 script cannot bridge 150 - 100.
    let peer = rvs_agent::keepalived::parse_str(
        &std::fs::read_to_string(conf("lvs-web-cluster.conf")).unwrap().replace("priority 150", "priority 100"),
        "peer.conf",
        Options::default(),
    );
    let d = validate::validate_pair(c, &peer.config);
    assert!(
        d.iter().any(|d| d.message.contains("track_script chk_rvsd weight -30 can never fail over VRID 51")),
        "{d:#?}"
    );
}

#[test]
fn v3_dual_stack_with_sub_second_adverts() {
    let l = load_ok("vrrp-v3-dual-stack.conf");
    let i = &l.config.vrrp_instances;
    assert_eq!((i[0].version, i[0].advert_int, i[0].preempt_delay), (Version::V3, 0.1, 30.0));
    assert!(i[1].is_ipv6());
    assert_eq!(i[1].virtual_ipaddress.len(), 2);
}

#[test]
fn includes_are_expanded_relative_to_the_file() {
    let l = load_ok("include-main.conf");
    assert_eq!(l.config.global_defs.router_id.as_deref(), Some("split-node"));
    assert_eq!(l.config.vrrp_instances[0].vrid, 61);
    assert_eq!(l.config.virtual_servers[0].real_servers[0].addr, "10.9.0.1:443".parse().unwrap());
    assert!(l.config.virtual_servers[0].loc.file.ends_with("conf.d/20-services.conf"));
}

#[test]
fn broken_file_reports_every_error_with_its_line() {
    let l = load(&conf("broken.conf"), Options::default());
    let got: Vec<String> = l.errors().map(|d| format!("{}: {}", d.loc.line, d.message)).collect();
    let want = [
        "4: vrrp_mcast_group4: '224.0.0.300' is not an IPv4 address",
        "10: unknown keyword 'bogus_script_option' in vrrp_script",
        "16: priority 300 is out of range 1-255",
        "18: state must be MASTER or BACKUP, got 'MAYBE'",
        "21: virtual_ipaddress: 'not-an-ip' is not an address[/prefix]",
        "17: advert_int 1.5 under VRRPv2 must be whole seconds 1-255",
        "41: unknown lb_kind 'TUNNEL' (FNAT, NAT, DR, TUN)",
        "42: unknown lb_algo 'fastest'",
        "46: unknown keyword 'url' in BFD_CHECK (it takes name and alpha)",
        "45: BFD_CHECK needs a name (a bfd_instance)",
        "55: virtual_server fwmark 7: ops is for one protocol, and a fwmark service takes TCP and UDP",
        "13: vrrp_instance A: unicast_peer block has no peers: adverts would go nowhere",
        "27: vrrp_instance B: virtual_router_id 7 is already used on eth0 by vrrp_instance A (",
        "27: vrrp_instance B: track_script missing_script names no vrrp_script",
        "27: vrrp_instance B: priority 255 (address owner) ignores tracking weights",
    ];
    for w in want {
        assert!(got.iter().any(|g| g.starts_with(w)), "missing {w:?} in {got:#?}");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
    assert!(l.diagnostics[0].to_string().contains("broken.conf:4: error:"));
}
