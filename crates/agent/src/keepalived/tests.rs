//! Parser and validator tests on small inline configurations.

use super::config::*;
use super::*;
use crate::vrrp::packet::{ChecksumMode, Version};

fn strict(text: &str) -> Loaded {
    parse_str(text, "t.conf", Options::default())
}

fn messages(l: &Loaded) -> Vec<String> {
    l.diagnostics.iter().map(ToString::to_string).collect()
}

const MINIMAL: &str =
    "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.5\n }\n}\n";

#[test]
fn minimal_instance_gets_keepalived_defaults() {
    let l = strict(MINIMAL);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let i = &l.config.vrrp_instances[0];
    assert_eq!((i.vrid, i.priority, i.advert_int, i.version), (5, 100, 1.0, Version::V2));
    assert_eq!(i.state, InitialState::Backup);
    assert_eq!(i.virtual_ipaddress[0].addr.to_string(), "10.0.0.5/32");
    assert_eq!(i.vip_port(), "eth0");
}

#[test]
fn vips_go_on_the_port_whose_twin_is_the_interface() {
    let l = strict(&MINIMAL.replace("interface eth0", "interface dpdk0.kni"));
    assert_eq!(l.config.vrrp_instances[0].vip_port(), "dpdk0");
    let l = strict(&MINIMAL.replace("interface eth0", "interface dpdk0.kni\n dpdk_interface dpdk2"));
    assert_eq!(l.config.vrrp_instances[0].vip_port(), "dpdk2");
    assert_eq!(crate::dataplane::port_of(".kni"), ".kni");
}

#[test]
fn unknown_keywords_are_errors_unless_lenient() {
    let text = MINIMAL.replace(" interface eth0\n", " interface eth0\n frobnicate yes\n");
    let l = strict(&text);
    assert_eq!(messages(&l), ["t.conf:3: error: unknown keyword 'frobnicate' in vrrp_instance"]);
    let l = parse_str(&text, "t.conf", Options { lenient: true, ..Options::default() });
    assert_eq!(messages(&l), ["t.conf:3: warning: unknown keyword 'frobnicate' in vrrp_instance"]);
    assert!(!l.has_errors());
    let l = strict("what_is_this {\n}\n");
    assert_eq!(messages(&l), ["t.conf:1: error: unknown keyword 'what_is_this' in the top level"]);
}

#[test]
fn ignored_keywords_are_recorded_and_named_in_warnings() {
    let l = strict("global_defs {\n vrrp_strict\n enable_script_security\n}\n");
    assert!(!l.has_errors());
    assert_eq!(
        messages(&l),
        [
            "t.conf:2: warning: 'vrrp_strict' is accepted and not honoured by rvs-agent/rvsd (ignored)",
            "t.conf:3: warning: 'enable_script_security' is accepted and not honoured by rvs-agent/rvsd (ignored)"
        ]
    );
    let keys: Vec<&str> = l.config.ignored.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys, ["vrrp_strict", "enable_script_security"]);
}

#[test]
fn v2_needs_whole_seconds_and_v3_takes_centiseconds() {
    let l = strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n advert_int 0.5\n"));
    assert_eq!(messages(&l), ["t.conf:3: error: advert_int 0.5 under VRRPv2 must be whole seconds 1-255"]);
    let l = strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n advert_int 0.05\n version 3\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(l.config.vrrp_instances[0].version, Version::V3);
}

#[test]
fn duplicate_vrid_on_one_interface_is_an_error_but_not_across_families() {
    let two = format!("{MINIMAL}{}", MINIMAL.replace("VI_1", "VI_2"));
    let l = strict(&two);
    assert_eq!(
        messages(&l),
        ["t.conf:8: error: vrrp_instance VI_2: virtual_router_id 5 is already used on eth0 by vrrp_instance VI_1 (t.conf:1)"]
    );
    let v6 = MINIMAL
        .replace("VI_1", "VI_6")
        .replace("10.0.0.5", "fd00::5")
        .replace(" interface eth0\n", " interface eth0\n version 3\n");
    let l = strict(&format!("{MINIMAL}{v6}"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
}

#[test]
fn unicast_block_without_peers_is_an_error() {
    let l = strict(
        &MINIMAL.replace(" interface eth0\n", " interface eth0\n unicast_src_ip 10.0.0.1\n unicast_peer {\n }\n"),
    );
    assert_eq!(
        messages(&l),
        ["t.conf:1: error: vrrp_instance VI_1: unicast_peer block has no peers: adverts would go nowhere"]
    );
    let l =
        strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n unicast_peer {\n  10.0.0.2\n  10.0.0.3\n }\n"));
    assert!(l.diagnostics.is_empty());
    assert_eq!(l.config.vrrp_instances[0].unicast_peers.len(), 2);
}

#[test]
fn owner_priority_with_weights_can_never_fail_over() {
    let text = format!(
        "vrrp_script chk {{\n script /bin/true\n weight -20\n}}\n{}",
        MINIMAL.replace(" interface eth0\n", " interface eth0\n priority 255\n track_script {\n  chk\n }\n")
    );
    let l = strict(&text);
    assert!(messages(&l)[0].contains("priority 255 (address owner) ignores tracking weights"), "{:?}", messages(&l));
}

#[test]
fn pair_validation_reports_weights_that_cannot_bridge_the_gap() {
    let node = |prio: u32, weight: i32| {
        strict(&format!(
            "vrrp_script chk {{\n script /bin/true\n weight {weight}\n}}\n{}",
            MINIMAL.replace(
                " interface eth0\n",
                &format!(" interface eth0\n priority {prio}\n track_script {{\n  chk\n }}\n")
            )
        ))
        .config
    };
    // 150 vs 100 with weight -30: 50 >= 30, a failing script on the master changes nothing.
    let d = validate::validate_pair(&node(150, -30), &node(100, -30));
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0]
        .message
        .contains("track_script chk weight -30 can never fail over VRID 5: priorities 150 and 100 differ by 50 >= 30"));
    // 110 vs 100 with weight -20 works.
    assert!(validate::validate_pair(&node(110, -20), &node(100, -20)).is_empty());
}

#[test]
fn lb_kinds_other_than_fnat_and_fwmark_are_refused_clearly() {
    for k in ["NAT", "DR", "TUN"] {
        let l = strict(&format!("virtual_server 10.0.0.1 80 {{\n lb_kind {k}\n}}\n"));
        assert!(
            messages(&l).contains(&format!(
                "t.conf:2: error: lb_kind {k} is not supported by rvs yet (FullNAT only): use lb_kind FNAT"
            )),
            "{:?}",
            messages(&l)
        );
    }
    let l = strict("virtual_server fwmark 1 {\n lb_kind FNAT\n}\n");
    assert_eq!(
        messages(&l),
        ["t.conf:1: error: fwmark virtual servers are not supported by rvs yet; use VIP PORT or group"]
    );
}

#[test]
fn real_server_checks_parse_with_defaults_from_the_virtual_server() {
    let l = strict(
        "local_address_group l {\n 10.0.0.100-101 dpdk1\n}\n\
         virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n laddr_group_name l\n connect_timeout 2\n retry 4\n\
         real_server 10.0.1.1 80 {\n  TCP_CHECK {\n   connect_port 81\n  }\n\
         HTTP_GET {\n url {\n path /x\n digest 0123456789ABCDEF0123456789abcdef\n }\n delay_before_retry 0.5\n }\n\
         MISC_CHECK {\n misc_path \"/bin/sh -c 'exit 0'\"\n misc_timeout 2\n }\n }\n}\n",
    );
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let v = &l.config.virtual_servers[0];
    let rs = &v.real_servers[0];
    assert_eq!(rs.weight, 1);
    assert_eq!(rs.checks.len(), 3);
    assert_eq!(rs.checks[0].common.connect_port, Some(81));
    assert_eq!(rs.checks[0].common.connect_timeout, 2.0);
    assert_eq!(rs.checks[0].common.retry, 4);
    match &rs.checks[1].kind {
        CheckKind::Http { urls, .. } => {
            assert_eq!(urls[0].digest.as_deref(), Some("0123456789abcdef0123456789abcdef"));
            assert_eq!(urls[0].status_codes, [(200, 299)]);
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(rs.checks[1].common.delay_before_retry, 0.5);
    assert_eq!(rs.checks[2].kind, CheckKind::Misc { path: "/bin/sh -c 'exit 0'".into(), timeout: Some(2.0) });
    assert_eq!(l.config.local_address_groups[0].addrs.len(), 2);
}

#[test]
fn checksum_option_and_serde_round_trip() {
    let l = strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n old_unicast_checksum\n"));
    assert_eq!(l.config.vrrp_instances[0].checksum, ChecksumMode::MulticastPseudoHeader);
    let json = serde_json::to_string(&l.config).unwrap();
    let back: Config = serde_json::from_str(&json).unwrap();
    assert_eq!(back, l.config);
}

#[test]
fn schedulers_rvsd_lacks_are_refused() {
    let vs = |algo: &str| {
        format!(
            "virtual_server 192.0.2.1 80 {{\n lb_algo {algo}\n lb_kind FNAT\n real_server 10.0.0.1 80 {{\n }}\n}}\n"
        )
    };
    let about_algo = |algo: &str| -> Vec<String> {
        messages(&strict(&vs(algo))).into_iter().filter(|m| m.contains("lb_algo")).collect()
    };
    assert!(about_algo("mh").is_empty());
    assert_eq!(
        about_algo("lblc"),
        ["t.conf:2: error: lb_algo lblc is not supported by rvs yet (rr, wrr, lc, wlc, sed, nq, sh, dh, mh)"]
    );
}

#[test]
fn syn_proxy_is_honoured_and_bad_values_are_named() {
    use fnat::synproxy::SynProxyMode;
    let vs = |body: &str| format!("virtual_server 10.0.0.1 80 {{\n lb_kind FNAT\n{body}}}\n");
    let errors = |l: &Loaded| messages(l).into_iter().filter(|m| m.contains("error")).collect::<Vec<_>>();
    let l = strict(&vs(" syn_proxy\n"));
    assert!(errors(&l).is_empty(), "{:?}", messages(&l));
    assert_eq!(l.config.virtual_servers[0].syn_proxy, Some(SynProxyMode::On), "DPVS's bare keyword: on");
    assert!(l.config.ignored.is_empty(), "no longer ignored");
    for (v, m) in [("on", SynProxyMode::On), ("off", SynProxyMode::Off), ("auto", SynProxyMode::Auto)] {
        let l = strict(&vs(&format!(" syn_proxy {v}\n")));
        assert!(errors(&l).is_empty(), "{:?}", messages(&l));
        assert_eq!(l.config.virtual_servers[0].syn_proxy, Some(m));
    }
    assert_eq!(strict(&vs("")).config.virtual_servers[0].syn_proxy, None);
    let l = strict(&vs(" syn_proxy sometimes\n"));
    assert_eq!(errors(&l), ["t.conf:3: error: syn_proxy sometimes: rvs takes on, off, auto (or no value: on)"]);
}

#[test]
fn deny_and_allow_address_groups_feed_a_virtual_servers_lists() {
    let l = strict(
        "deny_address_group bad {\n 192.0.2.7\n 192.0.2.10-12\n 198.51.100.0/24\n 2001:db8::/32\n}\n\
         allow_address_group good {\n 10.0.0.0/8\n}\n\
         virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n daddr_group_name bad\n waddr_group_name good\n}\n",
    );
    let errors: Vec<_> = messages(&l).into_iter().filter(|m| m.contains("error")).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
    let v = &l.config.virtual_servers[0];
    assert_eq!((v.daddr_group_name.as_deref(), v.waddr_group_name.as_deref()), (Some("bad"), Some("good")));
    let deny = &l.config.address_groups[0];
    assert_eq!(deny.kind, AddressGroupKind::Deny);
    let shown: Vec<String> = deny.prefixes.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["192.0.2.7/32", "192.0.2.10/32", "192.0.2.11/32", "192.0.2.12/32", "198.51.100.0/24", "2001:db8::/32"]
    );
    assert_eq!(l.config.address_groups[1].kind, AddressGroupKind::Allow);

    // A name without its group, a group of the other kind, ipsets and junk are named.
    let l = strict(
        "allow_address_group good {\n 10.0.0.0/8\n}\n\
         deny_address_group odd {\n ipset:blocked\n 10.0.0.300\n 10.1.0.0/99\n}\n\
         virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n daddr_group_name good\n waddr_group_name none\n}\n",
    );
    let errors: Vec<_> = messages(&l).into_iter().filter(|m| m.contains("error")).collect();
    assert!(errors.iter().any(|m| m.contains("t.conf:5: error") && m.contains("ipset:blocked")), "{errors:?}");
    assert!(errors.iter().any(|m| m.contains("t.conf:6: error") && m.contains("10.0.0.300")), "{errors:?}");
    assert!(errors.iter().any(|m| m.contains("t.conf:7: error") && m.contains("10.1.0.0/99")), "{errors:?}");
    assert!(errors.iter().any(|m| m.contains("daddr_group_name good: no deny_address_group good")), "{errors:?}");
    assert!(errors.iter().any(|m| m.contains("waddr_group_name none: no allow_address_group none")), "{errors:?}");
}
