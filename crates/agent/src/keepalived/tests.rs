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

fn has(l: &Loaded, what: &str) -> bool {
    messages(l).iter().any(|m| m.contains(what))
}

fn vs_with(checks: &str) -> String {
    format!("virtual_server 192.0.2.1 80 {{\n lb_kind FNAT\n real_server 10.0.1.1 8080 {{\n{checks}\n }}\n}}\n")
}

fn only_checks(l: &Loaded) -> &[CheckConf] {
    assert!(!l.has_errors(), "{:?}", messages(l));
    &l.config.virtual_servers[0].real_servers[0].checks
}

#[test]
fn ssl_get_takes_http_get_options_sni_and_the_global_client_certificate() {
    let l = strict(&format!(
        "{}SSL {{\n certificate /c.pem\n key /k.pem\n}}\n",
        vs_with(
            "SSL_GET {\n enable_sni\n virtualhost www.example.com\n url {\n path /h\n status_code 200 301-302\n }\n}"
        )
    ));
    match &only_checks(&l)[0].kind {
        CheckKind::Ssl { urls, virtualhost, enable_sni, client, .. } => {
            assert_eq!(urls[0].status_codes, [(200, 200), (301, 302)]);
            assert_eq!((virtualhost.as_deref(), *enable_sni), (Some("www.example.com"), true));
            assert_eq!(client.as_ref().and_then(|c| c.key.as_deref()), Some("/k.pem"), "SSL block after the use");
        }
        k => panic!("{k:?}"),
    }
    // No url: refused as HTTP_GET; verify_cert / sni_name are not keepalived 2.2.7.
    let l = strict(&vs_with("SSL_GET {\n}"));
    assert!(has(&l, "SSL_GET needs at least one url"), "{:?}", messages(&l));
    let l = strict(&vs_with("SSL_GET {\n verify_cert\n url {\n path /\n }\n}"));
    assert!(has(&l, "unknown keyword 'verify_cert' in SSL_GET"), "{:?}", messages(&l));
    // The CA is accepted with the warning that nothing is verified; a password is refused.
    let l = strict("SSL {\n ca /ca.pem\n}\n");
    assert!(!l.has_errors() && has(&l, "does not verify"), "{:?}", messages(&l));
    let l = strict("SSL {\n certificate /c.pem\n key /k.pem\n password secret\n}\n");
    assert!(has(&l, "unencrypted keys only"), "{:?}", messages(&l));
}

#[test]
fn udp_check_options_and_hex_strings() {
    let l = strict(&vs_with(
        "UDP_CHECK {\n payload 0a0b 0c\n require_reply 0A x1 c\n min_reply_length 3\n max_reply_length 100\n}\n\
         UDP_CHECK {\n}",
    ));
    let c = only_checks(&l);
    assert_eq!(
        c[0].kind,
        CheckKind::Udp {
            payload: Some(vec![0x0a, 0x0b, 0x0c]),
            require_reply: true,
            reply: Some(HexPattern { data: vec![0x0a, 0x01, 0x0c], mask: vec![0, 0xf0, 0] }),
            min_reply_length: 3,
            max_reply_length: 100,
        }
    );
    assert_eq!(
        c[1].kind,
        CheckKind::Udp { payload: None, require_reply: false, reply: None, min_reply_length: 0, max_reply_length: 255 }
    );
    let p = parse::hex("0a x1", true).unwrap();
    assert!(p.matches(&[0x0a, 0xf1, 0xff]) && p.matches(&[0x0a]) && !p.matches(&[0x0a, 0xf2]));
    let l = strict(&vs_with("UDP_CHECK {\n payload 0g\n}"));
    assert!(has(&l, "payload needs a hex string"), "{:?}", messages(&l));
    let l = strict(&vs_with("UDP_CHECK {\n payload xx\n}"));
    assert!(l.has_errors(), "no wildcards in a payload");
}

#[test]
fn ping_smtp_and_dns_checks_with_keepalived_defaults() {
    let l = strict(&vs_with("PING_CHECK {\n connect_ip 10.0.1.9\n}\nSMTP_CHECK {\n}\nDNS_CHECK {\n}"));
    let c = only_checks(&l);
    assert_eq!((&c[0].kind, c[0].common.connect_ip), (&CheckKind::Ping, Some("10.0.1.9".parse().unwrap())));
    assert_eq!(c[1].kind, CheckKind::Smtp { helo_name: "smtpchecker.keepalived.org".into() });
    assert_eq!(c[2].kind, CheckKind::Dns { qtype: 6, name: ".".into() }, "SOA of the root");
    // DNS_CHECK: 3 retries, delay_loop (the virtual server's 60 s) between them.
    assert_eq!((c[2].common.retry, c[2].common.delay_before_retry), (3, 60.0));
    let l = strict(&vs_with("delay_loop 7\nDNS_CHECK {\n type aaaa\n name www.example.com\n retry 1\n}"));
    let c = only_checks(&l);
    assert_eq!(c[0].kind, CheckKind::Dns { qtype: 28, name: "www.example.com".into() });
    assert_eq!((c[0].common.retry, c[0].common.delay_before_retry), (1, 7.0));
    for bad in ["type PTR", "name a..b", "name .a"] {
        let l = strict(&vs_with(&format!("DNS_CHECK {{\n {bad}\n}}")));
        assert!(l.has_errors(), "{bad}");
    }
}

#[test]
fn smtp_host_blocks_make_one_checker_each() {
    let l = strict(&vs_with(
        "SMTP_CHECK {\n helo_name lb.example\n connect_timeout 3\n host {\n  connect_ip 10.0.1.2\n  connect_port 25\n }\n\
         host {\n  connect_ip 10.0.1.3\n }\n}",
    ));
    let c = only_checks(&l);
    // connect_timeout is a connection option of the checker itself: it is a checker too.
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c.iter().all(|c| c.kind == CheckKind::Smtp { helo_name: "lb.example".into() }));
    assert_eq!(c[1].common.connect_ip, Some("10.0.1.2".parse().unwrap()));
    assert_eq!((c[2].common.connect_ip, c[2].common.connect_port), (Some("10.0.1.3".parse().unwrap()), None));
    assert_eq!(c[2].common.connect_timeout, 3.0);
    assert!(messages(&l).iter().any(|m| m.contains("host block is deprecated")));
    let l = strict(&vs_with("SMTP_CHECK {\n host {\n  connect_ip 10.0.1.2\n }\n}"));
    assert_eq!(only_checks(&l).len(), 1);
}

#[test]
fn file_check_takes_its_track_file_and_weight() {
    let l = strict(&format!(
        "{}track_file tf {{\n file /run/x\n weight -3 reverse\n}}\n",
        vs_with("FILE_CHECK {\n track_file tf\n}\nFILE_CHECK {\n track_file tf\n weight 0\n}")
    ));
    let c = only_checks(&l);
    let file = |weight, reverse| CheckKind::File { track_file: "tf".into(), path: "/run/x".into(), weight, reverse };
    assert_eq!((&c[0].kind, c[0].common.retry), (&file(-3, true), 0));
    assert_eq!(c[1].kind, file(0, false));
    let l = strict(&vs_with("FILE_CHECK {\n track_file nope\n}"));
    assert!(has(&l, "track_file nope not found"), "{:?}", messages(&l));
    let l = strict("track_file t {\n weight 1\n}\n");
    assert!(has(&l, "needs a file"), "{:?}", messages(&l));
    let l = strict(&vs_with("BFD_CHECK {\n}"));
    assert!(has(&l, "BFD_CHECK is not supported by rvs-agent yet"), "{:?}", messages(&l));
}

#[test]
fn vrrp_track_file_entries_take_the_block_or_their_own_weight() {
    let inst = |track: &str| {
        format!(
            "track_file a {{\n file /run/a\n weight 3 reverse\n}}\nvrrp_track_file b {{\n file /run/b\n}}\n\
             vrrp_instance V {{\n interface eth0\n virtual_router_id 9\n track_file {{\n{track}\n }}\n\
             virtual_ipaddress {{\n  10.0.0.9\n }}\n}}\n"
        )
    };
    let l = strict(&inst("  a\n  b weight -20\n  a weight 5"));
    let f =
        |name: &str, weight, reverse| TrackedFile { name: name.into(), path: format!("/run/{name}"), weight, reverse };
    assert_eq!(l.config.vrrp_instances[0].track_file, [f("a", 3, true), f("b", -20, false)]);
    assert!(has(&l, "duplicate track_file a"), "{:?}", messages(&l));
    let l = strict(&inst("  a weight 2 noreverse"));
    assert_eq!(l.config.vrrp_instances[0].track_file, [f("a", 2, false)]);
    for (bad, msg) in [
        ("  a weight 300", "track_file a: weight '300' is not an integer in -254..254"),
        ("  a weight 2 sideways", "track_file a: unknown weight option 'sideways'"),
        ("  a prio 2", "track_file a: unknown option 'prio'"),
        ("  c", "track_file c not found"),
    ] {
        let l = strict(&inst(bad));
        assert!(has(&l, msg), "{bad}: {:?}", messages(&l));
    }
}

#[test]
fn static_addresses_and_routes_parse() {
    let l = strict(
        "static_ipaddress {\n 192.0.2.60/32 dev dpdk0\n 192.0.2.61\n}\n\
         static_routes {\n 10.1.0.0/16 via 192.0.2.1 dev dpdk0.kni src 192.0.2.60 metric 5\n default via 2001:db8::1\n 10.3.0.0/16\n}\n",
    );
    let errors: Vec<_> = messages(&l).into_iter().filter(|m| m.contains("error")).collect();
    assert_eq!(
        errors,
        [
            "t.conf:3: error: static_ipaddress 192.0.2.61/32: needs dev DPDK_PORT",
            "t.conf:8: error: static_routes 10.3.0.0/16: needs via GW or dev DPDK_PORT"
        ]
    );
    let r = &l.config.static_routes;
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].prefix.to_string(), r[0].dev.as_deref(), r[0].metric),
        ("10.1.0.0/16".into(), Some("dpdk0.kni"), 5)
    );
    assert_eq!(crate::keepalived::config::port_of_dev(r[0].dev.as_deref().unwrap()), "dpdk0");
    assert_eq!(r[1].prefix.to_string(), "::/0", "an IPv6 gateway makes default ::/0");
    assert_eq!(l.config.static_ipaddress[0].dev.as_deref(), Some("dpdk0"));
    let l = strict("static_routes {\n default via 192.0.2.1 dev dpdk0\n}\n");
    assert_eq!(l.config.static_routes[0].prefix.to_string(), "0.0.0.0/0");
}
