//! Parser and validator tests on small inline configurations.

use super::config::*;
use super::*;
use crate::dataplane::Proto;
use crate::vrrp::packet::{ChecksumMode, Version};
use std::time::Duration;

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

/// keepalived's answer to a lower priority and the refresh's repeat: honoured, per
/// instance or from global_defs, defaulting (as keepalived) to the global garp_master
/// settings, then to 5 and 5 s; the refresh sends 1 unless told (0 is raised to 1).
#[test]
fn lower_priority_answer_and_refresh_repeat_are_honoured() {
    use crate::vrrp::instance::fsm_config;
    let text = format!(
        "global_defs {{\n vrrp_garp_master_repeat 3\n vrrp_garp_master_delay 7\n}}\n{MINIMAL}{}",
        MINIMAL.replace("VI_1", "VI_2").replace("virtual_router_id 5", "virtual_router_id 6").replace(
            " interface eth0\n",
            " interface eth0\n garp_lower_prio_repeat 2\n garp_lower_prio_delay 0\n garp_master_refresh_repeat 0\n \
             lower_prio_no_advert\n"
        )
    );
    let l = strict(&text);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let g = &l.config.global_defs;
    let f = |n: usize| fsm_config(&l.config.vrrp_instances[n], g, "10.0.0.2".parse().unwrap());
    let (a, b) = (f(0), f(1));
    assert_eq!(
        (a.garp_lower_prio_repeat, a.garp_lower_prio_delay, a.garp_refresh_repeat, a.lower_prio_no_advert),
        (3, Duration::from_secs(7), 1, false)
    );
    assert_eq!(
        (b.garp_lower_prio_repeat, b.garp_lower_prio_delay, b.garp_refresh_repeat, b.lower_prio_no_advert),
        (2, Duration::ZERO, 1, true)
    );
    let d = fsm_config(&strict(MINIMAL).config.vrrp_instances[0], &Default::default(), "10.0.0.2".parse().unwrap());
    assert_eq!((d.garp_lower_prio_repeat, d.garp_lower_prio_delay), (5, Duration::from_secs(5)));
    let l = strict("global_defs {\n vrrp_lower_prio_no_advert\n vrrp_garp_lower_prio_repeat 1\n}\n");
    assert!(l.config.global_defs.vrrp_lower_prio_no_advert && l.diagnostics.is_empty(), "{:?}", messages(&l));
}

/// keepalived's `vrrp_skip_check_adv_addr` (global default) and `skip_check_adv_addr`
/// (per instance, a value false turns it off again): honoured, without warnings.
#[test]
fn skip_check_adv_addr_is_read_per_instance_with_the_global_default() {
    let text = format!(
        "global_defs {{\n vrrp_skip_check_adv_addr\n}}\n{MINIMAL}{}",
        MINIMAL
            .replace("VI_1", "VI_2")
            .replace("virtual_router_id 5", "virtual_router_id 6")
            .replace(" interface eth0\n", " interface eth0\n skip_check_adv_addr false\n")
    );
    let l = strict(&text);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let i = &l.config.vrrp_instances;
    assert!(i[0].skip_check_adv_addr && !i[1].skip_check_adv_addr);
    assert!(!strict(MINIMAL).config.vrrp_instances[0].skip_check_adv_addr);
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

/// keepalived's mail settings: read, with keepalived's defaults and precedence (an
/// object's own `smtp_alert`, then `smtp_alert_vrrp` / `smtp_alert_checker`, then
/// `smtp_alert`; a real server's default on, every other off); alerts asked for where no
/// mail can go are warned about, a bad server refused.
#[test]
fn mail_settings_are_read_with_keepalived_s_precedence() {
    let l = strict(
        "global_defs {\n notification_email {\n  ops@example.com\n  noc@example.com\n }\n\
         notification_email_from lb@example.com\n smtp_server 192.0.2.25 2525\n smtp_helo_name lb1\n\
         smtp_connect_timeout 0\n smtp_alert_vrrp\n no_email_faults\n no_checker_emails\n}\n\
         vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n smtp_alert off\n virtual_ipaddress {\n  10.0.0.5\n }\n}\n",
    );
    assert_eq!(messages(&l), ["t.conf:9: warning: smtp_connect_timeout 0: 1 second (as keepalived)"]);
    let m = &l.config.global_defs.smtp;
    assert!(m.enabled());
    assert_eq!(m.server, Some(("192.0.2.25".to_string(), 2525)));
    assert_eq!(m.to, ["ops@example.com", "noc@example.com"]);
    assert_eq!(
        (m.from.as_deref(), m.helo_name.as_deref(), m.connect_timeout),
        (Some("lb@example.com"), Some("lb1"), Some(1))
    );
    assert!(m.no_email_faults && m.no_checker_emails);
    assert_eq!(l.config.vrrp_instances[0].notify.smtp_alert, Some(false));
    // Precedence: own, then the kind's, then the global's, then the default.
    assert!(!m.vrrp_alert(Some(false)) && m.vrrp_alert(None));
    assert!(!m.checker_alert(None, false) && m.checker_alert(None, true), "a real server's default is on");
    let off = SmtpConf { alert: Some(false), ..SmtpConf::default() };
    assert!(!off.checker_alert(None, true) && off.checker_alert(Some(true), true));
    let checker = SmtpConf { alert: Some(false), alert_checker: Some(true), ..SmtpConf::default() };
    assert!(checker.checker_alert(None, false) && !checker.vrrp_alert(None));
    // The port is optional (25), the server may be a name; an unparsable one is refused.
    let l = strict("global_defs {\n smtp_server mail.example.com\n}\n");
    assert_eq!(l.config.global_defs.smtp.server, Some(("mail.example.com".to_string(), 25)));
    let l = strict("global_defs {\n smtp_server mail/example 25\n}\n");
    assert_eq!(messages(&l), ["t.conf:2: error: smtp_server: 'mail/example' is neither an IP address nor a host name"]);
    // Alerts asked for where no mail can go: one warning naming the first and the count.
    let l = strict(&format!(
        "global_defs {{\n notification_email {{\n  ops@example.com\n }}\n}}\n{}",
        MINIMAL.replace(" interface eth0\n", " interface eth0\n smtp_alert\n")
    ));
    assert_eq!(
        messages(&l),
        ["t.conf:6: warning: vrrp_instance VI_1 smtp_alert: no mail will be sent: global_defs has no smtp_server"]
    );
    let l = strict("global_defs {\n smtp_alert\n smtp_alert_checker true\n}\n");
    assert_eq!(
        messages(&l),
        ["t.conf:2: warning: global_defs smtp_alert (and 1 more): no mail will be sent: global_defs has no smtp_server and no notification_email"]
    );
    // Turned on, then off: nothing asks. A value that is not a boolean: warned, line ignored.
    assert!(strict("global_defs {\n smtp_alert\n smtp_alert off\n}\n").diagnostics.is_empty());
    let l = strict("global_defs {\n smtp_alert_vrrp maybe\n}\n");
    assert_eq!(
        messages(&l),
        ["t.conf:2: warning: smtp_alert_vrrp takes true or false, not 'maybe': line ignored (as keepalived)"]
    );
    assert_eq!(l.config.global_defs.smtp.alert_vrrp, None);
    // Without any smtp_alert, no warning (keepalived's samples set an address and a server).
    assert!(strict("global_defs {\n smtp_server 127.0.0.1\n}\n").diagnostics.is_empty());
}

/// keepalived's `net_namespace`: a name in /run/netns (entered at start, see main.rs and
/// tests/cli.rs); its IPVS and ipset companions are warned about.
#[test]
fn net_namespace_is_a_name_and_its_companions_are_warned_about() {
    let l = strict("net_namespace blue\nnet_namespace_ipvs red\nnamespace_with_ipsets\n");
    assert_eq!(l.config.global_defs.net_namespace.as_deref(), Some("blue"));
    let m = messages(&l);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[0].starts_with("t.conf:2: warning: 'net_namespace_ipvs' is accepted and not honoured by rvs"), "{m:?}");
    assert!(m[1].starts_with("t.conf:3: warning: 'namespace_with_ipsets' is accepted and not honoured"), "{m:?}");
    let l = strict("net_namespace ../etc\n");
    assert_eq!(messages(&l), ["t.conf:1: error: net_namespace '../etc' is not a name in /run/netns"]);
    let l = strict("global_defs {\n net_namespace blue\n}\n");
    assert_eq!(
        messages(&l),
        ["t.conf:2: error: net_namespace goes at the top level of the file, not in global_defs (as keepalived)"]
    );
}

/// keepalived's strict mode (`vrrp_strict`, or an instance's `strict_mode`), as 2.2.7's
/// `vrrp_complete_instance`: unicast warned (2.2.7 runs it); authentication, preempt_delay,
/// higher_prio_send_advert, lower-priority gratuitous ARP repeats and a MASTER start of a
/// non-owner reset with a warning each; its defaults changed silently; the no-accept
/// firewall named once as not applied. Without it nothing changes.
#[test]
fn strict_mode_resets_and_warns_as_keepalived() {
    let inst = " interface eth0\n virtual_router_id 5\n state MASTER\n priority 200\n preempt_delay 5\n\
                higher_prio_send_advert\n garp_lower_prio_repeat 3\n\
                authentication {\n  auth_type PASS\n  auth_pass secret\n }\n virtual_ipaddress {\n  10.0.0.5\n }\n";
    let l = strict(&format!(
        "global_defs {{\n vrrp_strict\n vrrp_higher_prio_send_advert\n vrrp_down_timer_adverts 2\n}}\nvrrp_instance VI_1 {{\n{inst}}}\n"
    ));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    let i = &l.config.vrrp_instances[0];
    assert!(i.strict_mode);
    assert_eq!((i.state, i.preempt_delay, i.auth_pass.as_deref()), (InitialState::Backup, 0.0, None));
    assert!(!i.higher_prio_send_advert && i.lower_prio_no_advert);
    assert_eq!((i.garp_lower_prio_repeat, i.garp_lower_prio_delay), (Some(0), Some(0)));
    assert_eq!(i.down_timer_adverts, 3, "vrrp_down_timer_adverts 2 reset by strict mode");
    let m = messages(&l);
    let want = [
        "t.conf:14: warning: vrrp_instance VI_1: strict mode (vrrp_strict): authentication is not allowed: ignored (as keepalived)",
        "t.conf:9: warning: vrrp_instance VI_1: strict mode (vrrp_strict): state MASTER must match being the address owner (priority 255): starting as BACKUP (as keepalived)",
        "t.conf:11: warning: vrrp_instance VI_1: strict mode (vrrp_strict): preempt_delay is not allowed: no delay (as keepalived)",
        "t.conf:6: warning: vrrp_instance VI_1: strict mode (vrrp_strict): down_timer_adverts is not allowed: 3 (as keepalived)",
        "t.conf:12: warning: vrrp_instance VI_1: strict mode (vrrp_strict): higher_prio_send_advert is not allowed: off (as keepalived)",
        "t.conf:13: warning: vrrp_instance VI_1: strict mode (vrrp_strict): garp_lower_prio_repeat is not allowed: 0 (as keepalived)",
    ];
    assert_eq!(&m[..want.len()], want, "{m:#?}");
    assert!(m[want.len()].contains("keepalived's no-accept firewall") && m.len() == want.len() + 1, "{m:#?}");
    // Unicast peers: warned (keepalived 2.2.7 runs them). An owner (255) starts MASTER even when it said BACKUP.
    let l = strict(
        "vrrp_instance VI_1 {\n interface eth0\n strict_mode\n virtual_router_id 5\n priority 255\n state BACKUP\n\
         unicast_peer {\n  10.0.0.2\n }\n virtual_ipaddress {\n  10.0.0.5\n }\n}\n",
    );
    assert!(!l.has_errors(), "keepalived 2.2.7 runs it: {:?}", messages(&l));
    assert!(messages(&l).iter().any(|m| m
        == "t.conf:7: warning: vrrp_instance VI_1: strict mode (vrrp_strict): unicast peers are not strict VRRP (keepalived 2.2.7 runs them; later versions refuse them)"));
    assert_eq!(l.config.vrrp_instances[0].state, InitialState::Master);
    // keepalived: `state MASTER` without a priority is the address owner (255), strict or
    // not; with one, its priority.
    let owner = strict("vrrp_instance VI_1 {\n interface eth0\n state MASTER\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.5\n }\n}\n");
    assert_eq!(owner.config.vrrp_instances[0].priority, 255);
    assert!(owner.diagnostics.is_empty(), "{:?}", messages(&owner));
    // Off (the default, or strict_mode off under vrrp_strict): the file as written.
    let l = strict(&format!("global_defs {{\n vrrp_strict\n}}\nvrrp_instance VI_1 {{\n strict_mode off\n{inst}}}\n"));
    let i = &l.config.vrrp_instances[0];
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!((i.state, i.preempt_delay, i.auth_pass.as_deref()), (InitialState::Master, 5.0, Some("secret")));
}

/// keepalived's startup and shutdown scripts: one each, a timeout of 1-1000 s (10 by
/// default), before or after its script; a timeout alone runs nothing.
#[test]
fn startup_and_shutdown_scripts_are_read_with_their_timeouts() {
    let l = strict(
        "global_defs {\n shutdown_script_timeout 30\n startup_script \"/usr/local/bin/up x\"\n shutdown_script /bin/down\n}\n",
    );
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let g = &l.config.global_defs;
    assert_eq!(g.startup_script, Some(LifecycleScript { cmd: "/usr/local/bin/up x".into(), timeout: 10 }));
    assert_eq!(g.shutdown_script, Some(LifecycleScript { cmd: "/bin/down".into(), timeout: 30 }));
    assert_eq!(strict("global_defs {\n startup_script_timeout 5\n}\n").config.global_defs.startup_script, None);
    let l = strict("global_defs {\n startup_script /a\n startup_script /b\n startup_script_timeout 0\n}\n");
    assert_eq!(
        messages(&l),
        [
            "t.conf:3: warning: startup_script is already given: this one ignored (as keepalived)",
            "t.conf:4: warning: startup_script_timeout must be 1-1000 seconds: line ignored (as keepalived)"
        ]
    );
}

/// keepalived's notify_priority_changes: an instance's own, else its sync group's, else
/// the global vrrp_notify_priority_changes; notify_master_rx_lower_pri is an instance's.
#[test]
fn priority_change_notifies_resolve_as_keepalived() {
    let inst = |name: &str, id: u8, own: &str| {
        format!("vrrp_instance {name} {{\n interface eth0\n virtual_router_id {id}\n{own} virtual_ipaddress {{\n  10.0.0.{id}\n }}\n}}\n")
    };
    let l = strict(&format!(
        "global_defs {{\n vrrp_notify_priority_changes\n}}\nvrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n notify_priority_changes false\n}}\n{}{}{}",
        inst("A", 1, ""),
        inst("B", 2, " notify_priority_changes\n notify_master_rx_lower_pri /bin/lower\n"),
        inst("C", 3, "")
    ));
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let got: Vec<_> = l.config.vrrp_instances.iter().map(|i| i.notify.priority_changes).collect();
    assert_eq!(got, [Some(false), Some(true), Some(true)], "A: its group's; B: its own; C: the global");
    assert_eq!(l.config.vrrp_instances[1].notify.master_rx_lower_pri, Some("/bin/lower".into()));
    let l = strict("vrrp_sync_group G {\n group {\n  A\n }\n notify_master_rx_lower_pri /bin/x\n}\n");
    assert!(
        messages(&l).iter().any(|m| m.contains("notify_master_rx_lower_pri is a vrrp_instance's")),
        "{:?}",
        messages(&l)
    );
}

/// keepalived's `mcast_dst_ip`: a multicast group of the instance's family (IPv6:
/// link-local scope); otherwise warned and ignored, as with unicast peers.
#[test]
fn mcast_dst_ip_is_a_multicast_group_of_the_instance() {
    let with = |extra: &str| strict(&MINIMAL.replace(" interface eth0\n", &format!(" interface eth0\n{extra}")));
    let l = with(" mcast_dst_ip 224.0.0.19\n");
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.config.vrrp_instances[0].mcast_dst_ip, Some("224.0.0.19".parse().unwrap()));
    let l = with(" mcast_dst_ip 10.0.0.9\n");
    assert_eq!(messages(&l), ["t.conf:3: warning: mcast_dst_ip 10.0.0.9 is not multicast: ignored (as keepalived)"]);
    let l = with(" mcast_dst_ip ff05::12\n");
    assert!(messages(&l)[0].ends_with("is not link-local multicast: ignored (as keepalived)"), "{:?}", messages(&l));
    let l = with(" mcast_dst_ip ff02::12\n");
    assert!(l.has_errors(), "an IPv6 group for an IPv4 instance: {:?}", messages(&l));
    let l = with(" mcast_dst_ip 224.0.0.19\n unicast_peer {\n  10.0.0.2\n }\n");
    assert_eq!(l.config.vrrp_instances[0].mcast_dst_ip, None);
    assert!(
        messages(&l)[0].ends_with("mcast_dst_ip with unicast peers: ignored (as keepalived)"),
        "{:?}",
        messages(&l)
    );
}

/// keepalived's `unicast_ttl` and a unicast peer's `min_ttl` / `max_ttl`.
#[test]
fn unicast_ttl_and_peer_ttl_ranges_are_read() {
    let l = strict(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n unicast_ttl 64\n\
         unicast_peer {\n  10.0.0.2 min_ttl 250 max_ttl 255\n  10.0.0.3\n }\n virtual_ipaddress {\n  10.0.0.5\n }\n}\n",
    );
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let i = &l.config.vrrp_instances[0];
    assert_eq!(i.unicast_ttl, Some(64));
    assert_eq!(i.unicast_peer_ttl, [("10.0.0.2".parse().unwrap(), 250, 255)]);
    assert_eq!(i.unicast_peers.len(), 2);
    // As keepalived: a bad option is warned about and ignored, the peer kept.
    for (peer, want) in [
        ("10.0.0.2 min_ttl 300", "warning: unicast_peer 10.0.0.2: min_ttl needs a TTL 0-255: ignored"),
        ("10.0.0.2 ttl 3", "warning: unicast_peer 10.0.0.2: unknown option 'ttl' ignored (min_ttl, max_ttl)"),
        (
            "10.0.0.2 min_ttl 200 max_ttl 100",
            "warning: unicast_peer 10.0.0.2: min_ttl 200 is above max_ttl 100: its adverts are all dropped",
        ),
    ] {
        let l = strict(&format!(
            "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 5\n unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  10.0.0.5\n }}\n}}\n"
        ));
        assert!(messages(&l).iter().any(|m| m.ends_with(want)), "{peer}: {:?}", messages(&l));
        assert!(!l.has_errors() && l.config.vrrp_instances[0].unicast_peers.len() == 1);
    }
    // unicast_ttl without unicast peers: warned and dropped, as keepalived.
    let l = strict("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n unicast_ttl 9\n virtual_ipaddress {\n  10.0.0.5\n }\n}\n");
    assert_eq!(l.config.vrrp_instances[0].unicast_ttl, None);
    assert!(
        messages(&l)[0].ends_with("unicast_ttl without unicast peers: ignored (as keepalived)"),
        "{:?}",
        messages(&l)
    );
}

#[test]
fn ignored_keywords_are_recorded_and_named_in_warnings() {
    let l = strict("global_defs {\n vrrp_iptables\n enable_traps\n}\n");
    assert!(!l.has_errors());
    assert_eq!(
        messages(&l),
        [
            "t.conf:2: warning: 'vrrp_iptables' is accepted and not honoured by rvs-agent/rvsd (ignored)",
            "t.conf:3: warning: 'enable_traps' is accepted and not honoured by rvs-agent/rvsd (ignored)"
        ]
    );
    let keys: Vec<&str> = l.config.ignored.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys, ["vrrp_iptables", "enable_traps"]);
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
    // keepalived's unicast_fault_no_peer: the empty block is meant, the instance stays in
    // FAULT (see agent_loopback.rs).
    let l =
        strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n unicast_fault_no_peer\n unicast_peer {\n }\n"));
    assert_eq!(
        messages(&l),
        ["t.conf:1: warning: vrrp_instance VI_1: unicast_peer block has no peers: the instance stays in FAULT (unicast_fault_no_peer)"]
    );
    assert!(l.config.vrrp_instances[0].unicast_fault_no_peer);
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
fn lb_kinds_nat_dr_and_per_server_lvs_method() {
    let conf = "virtual_server 10.0.0.1 80 {\n lb_kind NAT\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n\
                real_server 10.0.1.2 80 {\n  lvs_method DR\n }\n}\n";
    let l = strict(conf);
    assert!(messages(&l).is_empty(), "NAT and DR need no local addresses: {:?}", messages(&l));
    let v = &l.config.virtual_servers[0];
    assert_eq!(v.lb_kind, LbKind::Nat);
    assert_eq!([v.real_servers[0].lb_kind, v.real_servers[1].lb_kind], [LbKind::Nat, LbKind::Dr]);
    for (k, want) in [("DR", LbKind::Dr), ("nat", LbKind::Nat), ("FNAT", LbKind::FullNat), ("TUN", LbKind::Tunnel)] {
        let l = strict(&format!("virtual_server 10.0.0.1 80 {{\n lb_kind {k}\n}}\n"));
        assert_eq!(l.config.virtual_servers[0].lb_kind, want);
    }
}

#[test]
fn lb_kind_tun_and_unknown_kinds() {
    let l = strict("virtual_server 10.0.0.1 80 {\n lb_kind TUN\n}\n");
    assert_eq!(l.config.virtual_servers[0].lb_kind, LbKind::Tunnel);
    let l = strict("virtual_server 10.0.0.1 80 {\n lb_kind GRE\n}\n");
    assert!(
        messages(&l).contains(&"t.conf:2: error: unknown lb_kind 'GRE' (FNAT, NAT, DR, TUN)".to_string()),
        "{:?}",
        messages(&l)
    );
    let l = strict("virtual_server 10.0.0.1 80 {\n lb_kind SNAT\n}\n");
    assert!(
        messages(&l).contains(
            &"t.conf:2: error: lb_kind SNAT needs a `virtual_server match NAME { ... }` block (DPVS's SNAT rule), \
              not a virtual_server IP PORT or group"
                .to_string()
        ),
        "{:?}",
        messages(&l)
    );
}

/// keepalived's `virtual_server fwmark N` (2.2.7's `check_data.c`): the protocol is no
/// part of the service (TCP in its key, as ipvsadm's), a real server may have no port, a
/// DR or TUN real server's port is cleared (rvsd gets 0: each flow's own port) while its
/// checkers keep connecting to the port written, a NAT or FullNAT one keeps its port (0:
/// the flow's; another: every flow goes there); the services, the checkers' targets and
/// keepalived's FIFO lines follow.
#[test]
fn fwmark_virtual_server_with_dr_and_fullnat_servers() {
    use crate::check::{pool::Pool, Probe};
    use crate::dataplane::ServiceKey;
    let l = strict(
        "local_address_group l {\n 10.0.0.100 dpdk1\n}\n\
         virtual_server fwmark 7 {\n lb_kind DR\n lb_algo wrr\n persistence_timeout 300\n protocol TCP\n\
         laddr_group_name l\n delay_loop 2\n\
         real_server 10.0.1.1 80 {\n  weight 3\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n\
         real_server 10.0.1.2 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   connect_port 8080\n  }\n }\n\
         real_server 10.0.1.3 443 {\n  lvs_method FNAT\n  TCP_CHECK {\n  }\n }\n\
         real_server 10.0.1.4 0 {\n  lvs_method FNAT\n  TCP_CHECK {\n   connect_port 22\n  }\n }\n}\n",
    );
    assert_eq!(
        messages(&l),
        ["t.conf:11: warning: virtual_server fwmark 7: real_server 10.0.1.1 80 is DR: its port is cleared (rvsd \
          sends each flow to its own destination port, as keepalived clears it); its checkers still connect to port \
          80"]
    );
    let v = &l.config.virtual_servers[0];
    assert_eq!(v.target, VsTarget::Fwmark { mark: 7, v6: false });
    assert_eq!((v.protocol, v.ipv6), (Proto::Tcp, Some(false)));
    let addrs: Vec<String> = v.real_servers.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["10.0.1.1:0", "10.0.1.2:0", "10.0.1.3:443", "10.0.1.4:0"]);
    assert_eq!(v.real_servers[0].checks[0].common.connect_port, Some(80), "the checker keeps the port written");
    let (pool, services, checks) = Pool::from_config(&l.config);
    assert_eq!(services.len(), 1);
    let s = &services[0];
    assert_eq!(s.key, ServiceKey::of_fwmark(7, false));
    assert_eq!((s.key.to_string(), crate::status::service_name(&s.key)), ("fwmark 7".into(), "FWM 7".into()));
    assert_eq!((s.scheduler.as_str(), s.persistence_timeout), ("wrr", Some(300)));
    let rs: Vec<(String, u32, LbKind)> = s.real_servers.iter().map(|r| (r.addr.to_string(), r.weight, r.fwd)).collect();
    assert_eq!(
        rs,
        [
            ("10.0.1.1:0".into(), 3, LbKind::Dr),
            ("10.0.1.2:0".into(), 1, LbKind::Dr),
            ("10.0.1.3:443".into(), 1, LbKind::FullNat),
            ("10.0.1.4:0".into(), 1, LbKind::FullNat)
        ]
    );
    let targets: Vec<String> = checks
        .iter()
        .map(|(c, _)| match &c.checks[0].probe {
            Probe::Tcp { target, .. } | Probe::Http { target, .. } => target.to_string(),
            p => panic!("{p:?}"),
        })
        .collect();
    assert_eq!(targets, ["10.0.1.1:80", "10.0.1.2:8080", "10.0.1.3:443", "10.0.1.4:22"]);
    assert_eq!(pool.vs[0].name, "fwmark 7");
    // keepalived's FIFO lines (`format_vs`: `FWM 7`; the protocol dropped: `none`).
    let dp = crate::dataplane::FakeDataplane::new();
    let mut pool = pool;
    crate::dataplane::Dataplane::set_services(&dp, &services).unwrap();
    let t = crate::check::Transition { id: 0, up: false, reason: "test".into(), weight_delta: 0, alert: None };
    let n = pool.apply(&t, &dp).unwrap();
    assert_eq!(n.fifo, ["RS [10.0.1.1]:none:0 FWM 7 DOWN\n"]);
    let left: Vec<String> = dp.service(&s.key).unwrap().real_servers.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(left, ["10.0.1.2:0", "10.0.1.3:443", "10.0.1.4:0"], "10.0.1.1:0 left the service");
}

/// The family of a fwmark virtual server, as keepalived settles it: `ip_family`, else
/// its real servers' (not TUN), else IPv4; IPv4 FullNAT real servers of an IPv6 one are
/// rvsd's NAT64; a server of the other family otherwise is an error naming it.
#[test]
fn fwmark_family_from_ip_family_or_the_real_servers() {
    use crate::dataplane::ServiceKey;
    let l = strict(
        "virtual_server fwmark 8 {\n ip_family inet6\n lb_kind FNAT\n protocol TCP\n\
         real_server 2001:db8::1 443 {\n }\n real_server 10.0.1.9 443 {\n }\n}\n\
         virtual_server fwmark 9 {\n lb_kind DR\n real_server 2001:db8::2 {\n }\n}\n\
         virtual_server fwmark 10 {\n lb_kind NAT\n real_server 10.0.0.3 {\n }\n}\n",
    );
    let errors: Vec<String> = l.errors().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let targets: Vec<&VsTarget> = l.config.virtual_servers.iter().map(|v| &v.target).collect();
    assert_eq!(
        targets,
        [
            &VsTarget::Fwmark { mark: 8, v6: true },
            &VsTarget::Fwmark { mark: 9, v6: true },
            &VsTarget::Fwmark { mark: 10, v6: false }
        ]
    );
    let keys = crate::check::pool::vs_keys(&l.config, &l.config.virtual_servers[0]);
    assert_eq!(keys, [ServiceKey::of_fwmark(8, true)]);
    assert_eq!((keys[0].to_string(), keys[0].vip.to_string()), ("fwmark 8 IPv6".into(), "::".into()));
    // Wrong families: a DR server of the other family, an unknown or conflicting ip_family.
    let l = strict(
        "virtual_server fwmark 11 {\n ip_family inet\n lb_kind DR\n protocol TCP\n\
         real_server 2001:db8::5 {\n }\n}\n\
         virtual_server fwmark 12 {\n ip_family ipx\n lb_kind DR\n real_server 10.0.0.5 {\n }\n}\n\
         virtual_server 10.0.0.1 80 {\n ip_family inet6\n lb_kind NAT\n protocol TCP\n\
         real_server 10.0.1.1 80 {\n }\n}\n",
    );
    assert_eq!(
        l.errors().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "t.conf:5: error: virtual_server fwmark 11 is IPv4 (ip_family); real_server 2001:db8::5 is IPv6: one \
             family (IPv4 real servers of an IPv6 service under FullNAT only, NAT64)",
            "t.conf:9: error: ip_family 'ipx' is unknown (inet or inet6)",
            "t.conf:15: error: ip_family inet6: virtual_server 10.0.0.1:80 is IPv4",
        ]
    );
}

/// A real server written with port 0: its connecting checkers without `connect_port`
/// connect to the one port the server is reached at (keepalived's would connect to port
/// 0, failing for ever), warned about; where the flows keep their own ports (a virtual
/// server of port 0, a group of several ports) each is an error asking for connect_port.
#[test]
fn checkers_of_a_real_server_without_a_port_connect_to_the_virtual_servers() {
    let vs = |head: &str| {
        format!(
            "{head} {{\n lb_kind NAT\n protocol TCP\n real_server 10.0.1.1 0 {{\n  TCP_CHECK {{\n  }}\n  \
             HTTP_GET {{\n   url {{\n    path /\n   }}\n  }}\n  MISC_CHECK {{\n   misc_path /bin/true\n  }}\n  \
             TCP_CHECK {{\n   connect_port 8081\n  }}\n }}\n}}\n"
        )
    };
    let ports = |l: &crate::keepalived::Loaded| -> Vec<Option<u16>> {
        l.config.virtual_servers[0].real_servers[0].checks.iter().map(|c| c.common.connect_port).collect()
    };
    let l = strict(&vs("virtual_server 10.0.0.1 80"));
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(
        messages(&l),
        ["t.conf:4: warning: virtual_server 10.0.0.1:80: real_server 10.0.1.1 has no port: its TCP_CHECK, HTTP_GET \
          connect to port 80, the virtual server's (keepalived's would connect to port 0, failing for ever; \
          connect_port says it outright)"]
    );
    assert_eq!(ports(&l), [Some(80), Some(80), None, Some(8081)]);
    assert_eq!(l.config.virtual_servers[0].real_servers[0].addr.port(), 0, "rvsd gets port 0: the flow's own");
    // A group whose members are all of port 443: there.
    let group = |members: &str| format!("virtual_server_group G {{\n{members}}}\n{}", vs("virtual_server group G"));
    let l = strict(&group(" 10.0.0.1 443\n 10.0.0.2 443\n"));
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(ports(&l), [Some(443), Some(443), None, Some(8081)]);
    // Flows that keep their own ports: no port to check.
    for (text, head) in [
        (vs("virtual_server 10.0.0.1 0"), "virtual_server 10.0.0.1:0"),
        (group(" 10.0.0.1 443\n 10.0.0.1 80\n"), "virtual_server group G"),
        (group(" 10.0.0.1 443\n fwmark 7\n"), "virtual_server group G"),
    ] {
        let errors: Vec<String> = strict(&text).errors().map(ToString::to_string).collect();
        let needs = |name: &str| {
            errors.iter().any(|e| {
                e.contains(&format!(
                    "{head}: real_server 10.0.1.1 has no port (port 0: each flow's own): its {name} needs connect_port"
                ))
            })
        };
        assert!(needs("TCP_CHECK") && needs("HTTP_GET") && errors.len() == 2, "{text}: {errors:?}");
    }
}

/// What keepalived refuses or drops on a fwmark virtual server, and what rvsd refuses on
/// a fwmark service: each named with its line, never dropped silently.
#[test]
fn fwmark_refusals_and_warnings_name_their_keyword() {
    let errors = |text: &str| strict(text).errors().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        errors("virtual_server fwmark 0 {\n}\n"),
        ["t.conf:1: error: virtual_server fwmark 0: mark 0 is no mark (1 to 4294967295)"]
    );
    assert_eq!(
        errors("virtual_server fwmark 4294967296 {\n}\n"),
        ["t.conf:1: error: virtual_server fwmark '4294967296' is not a mark (1 to 4294967295)"]
    );
    assert_eq!(
        errors("virtual_server fwmark 1 2 {\n}\n"),
        ["t.conf:1: error: virtual_server fwmark expects one MARK (1 to 4294967295)"]
    );
    // Per-protocol options, and a checker with no port to connect to.
    let text = "virtual_server fwmark 3 {\n lb_kind FNAT\n ops\n proxy_protocol v2\n\
                real_server 10.0.1.1 {\n  TCP_CHECK {\n  }\n  PING_CHECK {\n  }\n }\n}\n";
    assert_eq!(
        errors(text),
        [
            "t.conf:3: error: virtual_server fwmark 3: ops is for one protocol, and a fwmark service takes TCP and \
             UDP (rvsd refuses it): use a VIP PORT virtual server",
            "t.conf:4: error: virtual_server fwmark 3: proxy_protocol is for one protocol, and a fwmark service takes \
             TCP and UDP (rvsd refuses it): use a VIP PORT virtual server",
            "t.conf:6: error: virtual_server fwmark 3: real_server 10.0.1.1 has no port (port 0: each flow's own): \
             its TCP_CHECK needs connect_port",
        ]
    );
    // protocol UDP changes nothing (TCP: ipvsadm's key, said by nobody); ha_suspend has
    // no address to follow; a DR sorry server's port is cleared. Warnings, as keepalived's.
    let l = strict(
        "virtual_server fwmark 4 {\n lb_kind DR\n protocol UDP\n ha_suspend\n sorry_server 10.0.9.9 80\n\
         real_server 10.0.1.1 {\n }\n}\n",
    );
    assert_eq!(
        messages(&l),
        [
            "t.conf:3: warning: 'protocol' is accepted and not honoured by rvs: virtual_server fwmark 4 is a fwmark \
             service, which takes the TCP and UDP flows given its mark (keepalived ignores the protocol of a fwmark \
             too); mark the UDP flows only to serve UDP alone",
            "t.conf:4: warning: 'ha_suspend' is accepted and not honoured by rvs: virtual_server fwmark 4 has \
             fwmarks, with no address to follow (keepalived clears it too)",
            "t.conf:5: warning: virtual_server fwmark 4: sorry_server 10.0.9.9 80 is reached by DR: its port is \
             cleared (as keepalived clears it)",
        ]
    );
    let v = &l.config.virtual_servers[0];
    assert_eq!((v.protocol, v.ha_suspend, v.sorry_server), (Proto::Tcp, false, Some("10.0.9.9:0".parse().unwrap())));
    assert_eq!(l.config.ignored.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(), ["protocol", "ha_suspend"]);
    // Written twice (the protocol is no part of a fwmark service).
    let twice = "virtual_server fwmark 5 {\n lb_kind NAT\n protocol TCP\n real_server 10.0.1.1 {\n }\n}\n";
    assert_eq!(
        errors(&format!("{twice}{}", twice.replace("TCP", "UDP"))),
        ["t.conf:7: error: virtual_server fwmark 5: defined twice"]
    );
}

/// keepalived's `virtual_server_group` `fwmark MARK [inet|inet6]` entries: a fwmark
/// service each beside the members' (the family written, else the virtual server's, else
/// IPv4), the fwmark rules of a fwmark virtual server applying to its real servers;
/// keepalived's refusal of a group mixing families with a fwmark of no family; a TCP and
/// a UDP virtual server on one group with fwmarks would make each fwmark service twice.
#[test]
fn virtual_server_group_fwmark_entries() {
    use crate::dataplane::ServiceKey;
    let l = strict(
        "virtual_server group g {\n lb_kind DR\n protocol TCP\n\
         real_server 10.0.1.1 80 {\n  TCP_CHECK {\n  }\n }\n}\n\
         virtual_server_group g {\n 192.0.2.1 80\n fwmark 5\n fwmark 6 inet\n}\n",
    );
    assert_eq!(
        messages(&l),
        ["t.conf:4: warning: virtual_server group g: real_server 10.0.1.1 80 is DR: the group's fwmark entries get \
          it at port 0, each flow's own (DR and TUN do not change the destination port; keepalived sends it so too, \
          warning of it); its checkers still connect to port 80"]
    );
    let g = &l.config.virtual_server_groups[0];
    assert_eq!(g.fwmarks, [GroupFwmark { mark: 5, v6: None }, GroupFwmark { mark: 6, v6: Some(false) }]);
    let v = &l.config.virtual_servers[0];
    let keys = crate::check::pool::vs_keys(&l.config, v);
    assert_eq!(
        keys,
        [
            ServiceKey::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 80),
            ServiceKey::of_fwmark(5, false),
            ServiceKey::of_fwmark(6, false)
        ]
    );
    // The port written stays (keepalived's `ipvs_group_cmd` gives each entry's port to
    // the service it makes): the VIP:port member gets 10.0.1.1:80, each fwmark service :0.
    assert_eq!(v.real_servers[0].addr, "10.0.1.1:80".parse().unwrap());
    assert_eq!(v.real_servers[0].checks[0].common.connect_port, None, "the checker connects to port 80");
    let (_, services, _) = crate::check::pool::Pool::from_config(&l.config);
    let sent: Vec<(String, String)> =
        services.iter().map(|s| (s.key.to_string(), s.real_servers[0].addr.to_string())).collect();
    assert_eq!(
        sent,
        [
            ("tcp 192.0.2.1:80".into(), "10.0.1.1:80".into()),
            ("fwmark 5".into(), "10.0.1.1:0".into()),
            ("fwmark 6".into(), "10.0.1.1:0".into())
        ]
    );
    // A group of fwmarks only: a fwmark without a family takes the virtual server's
    // (ip_family here); protocol UDP changes nothing, warned about.
    let l = strict(
        "virtual_server_group f {\n fwmark 1\n fwmark 2 inet6\n}\nvirtual_server group f {\n lb_kind NAT\n\
         ip_family inet6\n protocol UDP\n real_server 2001:db8::1 53 {\n }\n}\n",
    );
    let w = messages(&l);
    assert!(w.len() == 1 && w[0].starts_with("t.conf:8: warning: 'protocol' is accepted and not honoured"), "{w:?}");
    let keys = crate::check::pool::vs_keys(&l.config, &l.config.virtual_servers[0]);
    assert_eq!(keys, [ServiceKey::of_fwmark(1, true), ServiceKey::of_fwmark(2, true)]);
    let errors = |text: &str| strict(text).errors().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        errors("virtual_server_group m {\n 192.0.2.1 80\n fwmark 2 inet6\n fwmark 3\n fwmark 2 inet6\n fwmark 0\n fwmark 4 ipx\n}\n"),
        [
            "t.conf:5: error: virtual_server_group m: fwmark 2 is listed twice",
            "t.conf:6: error: virtual_server_group m: fwmark 0: mark 0 is no mark (1 to 4294967295)",
            "t.conf:7: error: virtual_server_group m: fwmark 4: family 'ipx' is unknown (inet or inet6)",
            "t.conf:1: error: virtual_server_group m: IPv4 and IPv6 entries and fwmark 3 without a family: write its \
             family (fwmark 3 inet|inet6)",
        ]
    );
    let both = "virtual_server_group g {\n 192.0.2.1 80\n fwmark 5\n}\n\
                virtual_server group g {\n lb_kind NAT\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n\
                virtual_server group g {\n lb_kind NAT\n protocol UDP\n real_server 10.0.1.1 80 {\n }\n}\n";
    assert_eq!(
        errors(both),
        ["t.conf:11: error: virtual_server group g: service fwmark 5 is also virtual_server group g's (t.conf:5): a \
          fwmark service takes TCP and UDP, one virtual server per mark and family"]
    );
}

/// A group's real and sorry servers against each service the group makes (its members',
/// its fwmarks' of the family written, else the virtual server's, else the group's, else
/// IPv4): one of the other family is an error naming its line (rvsd would refuse it, and
/// with it every service), but IPv4 FullNAT servers of an IPv6 service (NAT64); a TUN
/// server is no exception. A `virtual_server IP PORT`'s servers likewise.
#[test]
fn group_servers_must_fit_each_service_family() {
    use crate::dataplane::ServiceKey;
    let errors = |text: &str| strict(text).errors().map(ToString::to_string).collect::<Vec<_>>();
    const NAT64: &str = "one family (IPv4 real servers of an IPv6 service under FullNAT only, NAT64)";
    // `fwmark 6 inet6` beside an IPv4 member: neither an IPv4 DR nor an IPv4 NAT server
    // can go into it.
    assert_eq!(
        errors(
            "virtual_server_group g {\n 192.0.2.1 80\n fwmark 6 inet6\n}\n\
             virtual_server group g {\n lb_kind DR\n protocol TCP\n\
             real_server 10.0.1.1 80 {\n }\n real_server 10.0.1.2 80 {\n  lvs_method NAT\n }\n}\n"
        ),
        [
            format!(
                "t.conf:8: error: virtual_server group g: service fwmark 6 IPv6 is IPv6; real_server 10.0.1.1 is \
                 IPv4: {NAT64}"
            ),
            format!(
                "t.conf:10: error: virtual_server group g: service fwmark 6 IPv6 is IPv6; real_server 10.0.1.2 is \
                 IPv4: {NAT64}"
            ),
        ]
    );
    // A group of fwmarks only whose servers are all TUN, of the other family: the fwmark
    // is IPv4 (keepalived's default when nothing says), each server an error.
    assert_eq!(
        errors(
            "virtual_server_group t {\n fwmark 7\n}\nvirtual_server group t {\n lb_kind TUN\n\
             real_server 2001:db8::1 0 {\n }\n real_server 2001:db8::2 0 {\n }\n}\n"
        ),
        [
            format!(
                "t.conf:6: error: virtual_server group t: service fwmark 7 is IPv4; real_server 2001:db8::1 is IPv6: \
                 {NAT64}"
            ),
            format!(
                "t.conf:8: error: virtual_server group t: service fwmark 7 is IPv4; real_server 2001:db8::2 is IPv6: \
                 {NAT64}"
            ),
        ]
    );
    // The sorry server too, at its line; and a `virtual_server IP PORT`'s servers.
    assert_eq!(
        errors(
            "virtual_server_group s {\n 2001:db8::10 80\n}\nvirtual_server group s {\n lb_kind DR\n protocol TCP\n\
             sorry_server 10.0.9.9 80\n real_server 2001:db8::1 80 {\n }\n}\n\
             virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n protocol TCP\n real_server 2001:db8::1 80 {\n }\n}\n"
        ),
        [
            "t.conf:7: error: virtual_server group s: service tcp [2001:db8::10]:80 is IPv6; sorry_server 10.0.9.9 is \
             IPv4"
                .to_string(),
            format!(
                "t.conf:14: error: virtual_server 10.0.0.1:80: service tcp 10.0.0.1:80 is IPv4; real_server \
                 2001:db8::1 is IPv6: {NAT64}"
            ),
        ]
    );
    // Fine: IPv4 FullNAT servers of an IPv6 fwmark (NAT64); TUN servers of the family of
    // a group whose fwmark without a family takes the group's (keepalived's
    // `link_vsg_to_vs`: the IPv6 member says it, no server does).
    let l = strict(
        "virtual_server_group n {\n fwmark 8 inet6\n}\nvirtual_server group n {\n lb_kind FNAT\n\
         real_server 10.0.1.1 0 {\n }\n}\n\
         virtual_server_group h {\n 2001:db8::10 80\n fwmark 9\n}\nvirtual_server group h {\n lb_kind TUN\n\
         protocol TCP\n real_server 2001:db8::1 80 {\n }\n}\n",
    );
    assert_eq!(l.errors().count(), 0, "{:?}", messages(&l));
    let keys = crate::check::pool::vs_keys(&l.config, &l.config.virtual_servers[1]);
    assert_eq!(keys[1], ServiceKey::of_fwmark(9, true));
}

/// A group's DR and TUN servers get each service's port, as keepalived's `ipvs_group_cmd`
/// sends them (rvsd refuses a DR server of another port, and with it the whole set): a
/// server written `10.0.0.5 80` in a group of `192.0.2.1 80` and `192.0.2.1 443` is
/// 10.0.0.5:80 in the first service, 10.0.0.5:443 in the second, with a warning at its
/// line (keepalived's "ports don't match"), the sorry server too; the server keeps the
/// port written (its checkers connect to it). A NAT server keeps its port everywhere.
#[test]
fn a_groups_dr_servers_get_each_members_port() {
    use crate::dataplane::ServiceKey;
    let l = strict(
        "virtual_server_group g {\n 192.0.2.1 80\n 192.0.2.1 443\n}\n\
         virtual_server group g {\n lb_kind DR\n protocol TCP\n sorry_server 10.0.9.9 8080\n\
         real_server 10.0.0.5 80 {\n  TCP_CHECK {\n  }\n }\n\
         real_server 10.0.0.6 0 {\n  TCP_CHECK {\n   connect_port 22\n  }\n }\n\
         real_server 10.0.0.7 8080 {\n  lvs_method NAT\n }\n}\n",
    );
    assert_eq!(
        messages(&l),
        [
            "t.conf:9: warning: virtual_server group g: real_server 10.0.0.5 80 is DR: the group's members of port \
             443 get it at port 443 (DR and TUN do not change the destination port; keepalived sends it so too, \
             warning of it); its checkers still connect to port 80",
            "t.conf:8: warning: virtual_server group g: sorry_server 10.0.9.9 8080 is reached by DR: the group's \
             members of ports 80, 443 get it at their own (as keepalived, which ignores the port written)",
        ]
    );
    let v = &l.config.virtual_servers[0];
    assert_eq!(v.real_servers[0].addr, "10.0.0.5:80".parse().unwrap(), "the port written stays");
    assert_eq!(v.real_servers[0].checks[0].common.connect_port, None, "its checker connects to port 80");
    let (_, services, _) = crate::check::pool::Pool::from_config(&l.config);
    let sent: Vec<(String, Vec<String>)> = services
        .iter()
        .map(|s| (s.key.to_string(), s.real_servers.iter().map(|r| r.addr.to_string()).collect()))
        .collect();
    assert_eq!(
        sent,
        [
            ("tcp 192.0.2.1:80".into(), vec!["10.0.0.5:80".into(), "10.0.0.6:80".into(), "10.0.0.7:8080".into()]),
            ("tcp 192.0.2.1:443".into(), vec!["10.0.0.5:443".into(), "10.0.0.6:443".into(), "10.0.0.7:8080".into()])
        ]
    );
    let https = ServiceKey::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 443);
    let sorry = v.sorry_server.map(|s| https.rs_addr(s, v.lb_kind));
    assert_eq!(sorry, Some("10.0.9.9:443".parse().unwrap()), "the sorry server too");
    // Two DR servers that are then one (10.0.0.5:443 in the 443 member's service), and a
    // sorry server that is one of them: refused, naming both lines, once each.
    let errors = |text: &str| strict(text).errors().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        errors(
            "virtual_server_group g {\n 192.0.2.1 80\n 192.0.2.1 443\n}\n\
             virtual_server group g {\n lb_kind DR\n protocol TCP\n\
             real_server 10.0.0.5 80 {\n }\n real_server 10.0.0.5 443 {\n }\n sorry_server 10.0.0.5 8080\n}\n"
        ),
        [
            "t.conf:10: error: virtual_server group g: real_server 10.0.0.5 443 and real_server 10.0.0.5 80 \
             (t.conf:8) are one server 10.0.0.5:80 in service tcp 192.0.2.1:80 (DR and TUN servers get the \
             service's port): rvsd would refuse it",
            "t.conf:12: error: virtual_server group g: sorry_server 10.0.0.5 8080 and real_server 10.0.0.5 80 \
             (t.conf:8) are one server 10.0.0.5:80 in service tcp 192.0.2.1:80 (DR and TUN servers get the \
             service's port): rvsd would refuse it",
        ]
    );
}

/// A `virtual_server IP PORT`'s DR and TUN servers written with another port: reset to
/// the virtual server's port with a warning at their line, as keepalived's
/// `validate_check_config` ("ports don't match - resetting"), the sorry server's too;
/// their checkers keep connecting to the port written (keepalived copies the address
/// into the checker first). Two servers that would then be one are refused, their ports
/// left as written (no "defined twice" besides).
#[test]
fn a_virtual_servers_dr_servers_get_its_port() {
    let l = strict(
        "virtual_server 192.0.2.1 80 {\n lb_kind TUN\n protocol TCP\n sorry_server 10.0.9.9 8080\n\
         real_server 10.0.0.5 8080 {\n  lvs_method DR\n  TCP_CHECK {\n  }\n }\n\
         real_server 10.0.0.6 8080 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   connect_port 81\n  }\n }\n\
         real_server 10.0.0.7 8080 {\n  lvs_method NAT\n }\n real_server 10.0.0.8 80 {\n }\n}\n",
    );
    assert_eq!(
        messages(&l),
        [
            "t.conf:5: warning: virtual_server 192.0.2.1:80: real_server 10.0.0.5 8080 is DR: its port is reset to \
             80, the virtual server's (DR and TUN do not change the destination port; keepalived resets it too: \
             ports don't match); its checkers still connect to port 8080",
            "t.conf:10: warning: virtual_server 192.0.2.1:80: real_server 10.0.0.6 8080 is TUN: its port is reset to \
             80, the virtual server's (DR and TUN do not change the destination port; keepalived resets it too: \
             ports don't match); its checkers still connect to port 8080",
            "t.conf:4: warning: virtual_server 192.0.2.1:80: sorry_server 10.0.9.9 8080 is reached by TUN: its port \
             is reset to 80, the virtual server's (as keepalived resets it: ports don't match)",
            "t.conf:1: warning: virtual_server 192.0.2.1:80: no laddr_group_name: FullNAT and TUN need local \
             addresses (rvsd's defaults are used)",
        ]
    );
    let v = &l.config.virtual_servers[0];
    let addrs: Vec<String> = v.real_servers.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.5:80", "10.0.0.6:80", "10.0.0.7:8080", "10.0.0.8:80"]);
    let ports: Vec<Option<u16>> = v.real_servers.iter().map(|r| r.checks.first()?.common.connect_port).collect();
    assert_eq!(ports, [Some(8080), Some(81), None, None], "the checkers connect to the port written");
    assert_eq!(v.sorry_server, Some("10.0.9.9:80".parse().unwrap()));
    let (_, services, _) = crate::check::pool::Pool::from_config(&l.config);
    let sent: Vec<String> = services[0].real_servers.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(sent, ["10.0.0.5:80", "10.0.0.6:80", "10.0.0.7:8080", "10.0.0.8:80"]);
    let l = strict(
        "virtual_server 192.0.2.1 80 {\n lb_kind DR\n protocol TCP\n\
         real_server 10.0.0.5 80 {\n }\n real_server 10.0.0.5 8080 {\n }\n}\n",
    );
    assert_eq!(
        l.errors().map(ToString::to_string).collect::<Vec<_>>(),
        ["t.conf:6: error: virtual_server 192.0.2.1:80: real_server 10.0.0.5 8080 and real_server 10.0.0.5 80 \
          (t.conf:4) are one server 10.0.0.5:80 in service tcp 192.0.2.1:80 (DR and TUN servers get the service's \
          port): rvsd would refuse it"]
    );
    assert_eq!(l.config.virtual_servers[0].real_servers[1].addr, "10.0.0.5:8080".parse().unwrap());
}

/// A group of fwmarks only has no protocol, as keepalived's (`validate_check_config`):
/// no "protocol not set" warning (the group may come after its virtual server), one
/// error for `ops` (the fwmark's), and its protocol is TCP whatever was written (so that
/// editing it changes nothing). A group with members still warns of no protocol.
#[test]
fn a_group_of_fwmarks_only_has_no_protocol() {
    let l = strict(
        "virtual_server group f {\n lb_kind NAT\n ops\n real_server 10.0.1.1 0 {\n }\n}\n\
         virtual_server_group f {\n fwmark 1\n}\n",
    );
    assert_eq!(
        messages(&l),
        ["t.conf:3: error: virtual_server group f: ops is for one protocol, and a fwmark service takes TCP and UDP \
          (rvsd refuses it): use a VIP PORT virtual server"]
    );
    let l = strict(
        "virtual_server group f {\n lb_kind NAT\n protocol UDP\n real_server 10.0.1.1 0 {\n }\n}\n\
         virtual_server_group f {\n fwmark 1\n}\n",
    );
    let w = messages(&l);
    assert!(w.len() == 1 && w[0].starts_with("t.conf:3: warning: 'protocol' is accepted and not honoured"), "{w:?}");
    assert_eq!(l.config.virtual_servers[0].protocol, Proto::Tcp);
    let l = strict(
        "virtual_server group m {\n lb_kind NAT\n real_server 10.0.1.1 80 {\n }\n}\n\
         virtual_server_group m {\n 192.0.2.1 80\n fwmark 1\n}\n",
    );
    assert_eq!(
        messages(&l),
        ["t.conf:1: warning: protocol not set: keepalived would serve UDP (and report it); rvs-agent serves TCP (say \
          protocol TCP or UDP)"]
    );
}

/// Two `virtual_server_group`s of one name: keepalived's virtual servers use the first
/// (`ipvs_get_group_by_name`) and never see the second, whatever it holds. rvs refuses
/// the second, naming both lines, and reads the first alone meanwhile.
#[test]
fn a_group_name_given_twice_is_refused() {
    use crate::dataplane::ServiceKey;
    let l = strict(
        "virtual_server_group g {\n 192.0.2.1 80\n}\nvirtual_server_group g {\n fwmark 5\n}\n\
         virtual_server group g {\n lb_kind DR\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n",
    );
    assert_eq!(
        l.errors().map(ToString::to_string).collect::<Vec<_>>(),
        ["t.conf:4: error: virtual_server_group g: defined twice (first at t.conf:1): keepalived uses the first alone \
          and ignores this one; write the entries in one block"]
    );
    let keys = crate::check::pool::vs_keys(&l.config, &l.config.virtual_servers[0]);
    assert_eq!(keys, [ServiceKey::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 80)]);
    assert!(messages(&l).iter().all(|m| !m.contains("fwmark")), "the second group's fwmark is not read");
}

/// A `virtual_server fwmark` whose servers are all TUN: keepalived's `vs_end_handler`
/// takes their family, the sorry server's included, when they agree, and IPv4 when they
/// do not (a TUN sorry server does not settle it alone).
#[test]
fn a_tun_sorry_server_joins_the_tun_servers_family() {
    let l = strict(
        "virtual_server fwmark 3 {\n lb_kind TUN\n sorry_server 2001:db8::9\n\
         real_server 10.0.0.1 {\n }\n real_server 10.0.0.2 {\n }\n}\n\
         virtual_server fwmark 4 {\n lb_kind TUN\n sorry_server 2001:db8::9\n real_server 2001:db8::1 {\n }\n}\n",
    );
    assert_eq!(
        l.errors().map(ToString::to_string).collect::<Vec<_>>(),
        ["t.conf:3: error: virtual_server fwmark 3 is IPv4 (no ip_family: as keepalived settles it); sorry_server \
          2001:db8::9 is IPv6"]
    );
    let targets: Vec<&VsTarget> = l.config.virtual_servers.iter().map(|v| &v.target).collect();
    assert_eq!(targets, [&VsTarget::Fwmark { mark: 3, v6: false }, &VsTarget::Fwmark { mark: 4, v6: true }]);
}

#[test]
fn real_server_checks_parse_with_defaults_from_the_virtual_server() {
    let l = strict(
        "local_address_group l {\n 10.0.0.100-101 dpdk1\n}\n\
         virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n protocol TCP\n laddr_group_name l\n connect_timeout 2\n retry 4\n\
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
    assert_eq!(
        rs.checks[2].kind,
        CheckKind::Misc { path: "/bin/sh -c 'exit 0'".into(), timeout: Some(2.0), dynamic: false }
    );
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
    assert!(about_algo("conhash").is_empty(), "DPVS's conhash");
    assert!(about_algo("fo").is_empty(), "weighted failover");
    assert!(about_algo("ovf").is_empty(), "weighted overflow");
    let lblc = about_algo("lblc");
    assert!(
        lblc.len() == 1 && lblc[0].starts_with("t.conf:2: error: lb_algo lblc: scheduler \"lblc\" is not supported"),
        "{lblc:?}"
    );
}

/// DPVS keepalived's `hash_target` (conhash's): `sip` is what rvs does, `qid` is refused
/// by name (a warning with --lenient), another value is warned about (DPVS falls back to
/// sip), and with another lb_algo it is accepted and not honoured, as DPVS applies it to
/// conhash only.
#[test]
fn conhash_hash_target_sip_is_honoured_and_qid_refused() {
    let vs = |algo: &str, target: &str| {
        format!(
            "virtual_server 192.0.2.1 80 {{\n hash_target {target}\n lb_algo {algo}\n lb_kind FNAT\n protocol UDP\n \
             real_server 10.0.0.1 80 {{\n }}\n}}\n"
        )
    };
    let about = |text: &str, lenient: bool| -> Vec<String> {
        let opts = crate::keepalived::Options { lenient, ..Default::default() };
        let l = crate::keepalived::parse_str(text, "t.conf", opts);
        l.diagnostics.iter().map(ToString::to_string).filter(|m| m.contains("hash_target")).collect()
    };
    let l = crate::keepalived::parse_str(&vs("conhash", "sip"), "t.conf", Default::default());
    assert!(about(&vs("conhash", "sip"), false).is_empty(), "{:?}", l.diagnostics);
    assert!(!l.diagnostics.iter().any(|d| d.message.contains("lb_algo")), "{:?}", l.diagnostics);
    assert_eq!(l.config.virtual_servers[0].lb_algo, "conhash");
    let qid = "hash_target qid (an early Google QUIC connection id, obsolete) is valid DPVS keepalived that rvs does \
               not support yet: conhash hashes the client's address (sip)";
    assert_eq!(about(&vs("conhash", "qid"), false), [format!("t.conf:2: error: {qid}")]);
    assert_eq!(about(&vs("conhash", "qid"), true), [format!("t.conf:2: warning: {qid}")]);
    assert_eq!(
        about(&vs("conhash", "dip"), false),
        ["t.conf:2: warning: hash_target dip is unknown: conhash hashes the client's address (sip), as DPVS does"]
    );
    let other = about(&vs("mh", "sip"), false);
    assert!(
        other.len() == 1 && other[0].starts_with("t.conf:2: warning: 'hash_target' is accepted and not honoured"),
        "{other:?}"
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
fn proxy_protocol_is_honoured_and_bad_values_are_named() {
    use fnat::service::ProxyProtocol;
    let vs = |body: &str| format!("virtual_server 10.0.0.1 80 {{\n lb_kind FNAT\n{body}}}\n");
    let errors = |l: &Loaded| messages(l).into_iter().filter(|m| m.contains("error")).collect::<Vec<_>>();
    for (v, want) in [("v1", Some(ProxyProtocol::V1)), ("v2", Some(ProxyProtocol::V2)), ("disable", None)] {
        let l = strict(&vs(&format!(" proxy_protocol {v}\n")));
        assert!(errors(&l).is_empty(), "{:?}", messages(&l));
        assert!(l.config.ignored.is_empty(), "honoured, not ignored");
        assert_eq!(l.config.virtual_servers[0].proxy_protocol, want);
    }
    assert_eq!(strict(&vs("")).config.virtual_servers[0].proxy_protocol, None);
    let l = strict(&vs(" proxy_protocol v2-insecure\n"));
    assert_eq!(
        errors(&l),
        ["t.conf:3: error: proxy_protocol v2-insecure: rvs does not pass on a header the client sent (v1 or v2)"]
    );
    let l = strict(&vs(" proxy_protocol v3\n"));
    assert_eq!(errors(&l), ["t.conf:3: error: proxy_protocol v3: rvs takes v1, v2 or disable"]);
    let l = strict(&vs(" proxy_protocol\n"));
    assert_eq!(errors(&l), ["t.conf:3: error: proxy_protocol takes one value (v1, v2 or disable)"]);
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

/// keepalived's `alpha` in a virtual_server (no value) is honoured: parsed into the
/// virtual server, off by default, no warning and not recorded as ignored. keepalived
/// 2.2.7's per-real_server and per-checker `alpha [BOOL]` are warned about (rvs-agent takes
/// the virtual server's). `omega` (no value either) is honoured the same way.
#[test]
fn alpha_is_honoured_per_virtual_server() {
    let vs = |body: &str, rs: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n lb_kind FNAT\n protocol TCP\n{body} real_server 10.0.1.1 80 {{\n{rs}  TCP_CHECK \
             {{\n  }}\n \
             }}\n}}\n"
        )
    };
    // What is said besides the validator's note about local addresses.
    let said = |l: &Loaded| messages(l).into_iter().filter(|m| !m.contains("no laddr_group_name")).collect::<Vec<_>>();
    let l = strict(&vs(" alpha\n", ""));
    assert!(said(&l).is_empty(), "{:?}", messages(&l));
    assert!(l.config.virtual_servers[0].alpha);
    assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
    let l = strict(&vs("", ""));
    assert!(!l.config.virtual_servers[0].alpha, "off by default");
    // keepalived takes no value (a warning names what is dropped, as for other switches).
    let l = strict(&vs(" alpha yes\n", ""));
    assert!(l.config.virtual_servers[0].alpha);
    assert_eq!(said(&l), ["t.conf:4: warning: alpha takes no value; 'yes' ignored"]);
    // Serialised with the configuration (older JSON without it reads as off).
    let json = serde_json::to_value(&strict(&vs(" alpha\n", "")).config).unwrap();
    assert_eq!(json["virtual_servers"][0]["alpha"], true);
    let mut old = json.clone();
    old["virtual_servers"][0].as_object_mut().unwrap().remove("alpha");
    let back: Config = serde_json::from_value(old).unwrap();
    assert!(!back.virtual_servers[0].alpha);
    // Per real server and per checker: a warning, the virtual server's alpha applies.
    let l = strict(&vs(" alpha\n", "  alpha no\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(
        said(&l),
        ["t.conf:6: warning: 'alpha' is accepted and not honoured by rvs: rvs-agent honours alpha per \
          virtual_server only (this real server follows its virtual server's)"]
    );
    assert!(l.config.virtual_servers[0].alpha);
    let l = strict(&vs("", "  TCP_CHECK {\n   alpha\n  }\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(l.config.ignored.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(), ["alpha"]);
    // omega: parsed into the virtual server, off by default, older JSON reads as off.
    let l = strict(&vs(" omega\n", ""));
    assert!(said(&l).is_empty(), "{:?}", messages(&l));
    assert!(l.config.virtual_servers[0].omega && !l.config.virtual_servers[0].alpha);
    assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
    assert!(!strict(&vs("", "")).config.virtual_servers[0].omega, "off by default");
    let l = strict(&vs(" omega on\n", ""));
    assert!(l.config.virtual_servers[0].omega);
    assert_eq!(said(&l), ["t.conf:4: warning: omega takes no value; 'on' ignored"]);
    let mut old = serde_json::to_value(&strict(&vs(" omega\n", "")).config).unwrap();
    assert_eq!(old["virtual_servers"][0]["omega"], true);
    old["virtual_servers"][0].as_object_mut().unwrap().remove("omega");
    let back: Config = serde_json::from_value(old).unwrap();
    assert!(!back.virtual_servers[0].omega);
}

/// keepalived's `ops` is honoured on a UDP virtual server and an error naming the block
/// on a TCP one (whose connections need their state; the kernel ignores it there).
#[test]
fn ops_is_for_udp_virtual_servers() {
    let vs = |proto: &str| {
        format!(
            "virtual_server 10.0.0.1 514 {{\n lb_kind FNAT\n protocol {proto}\n ops\n real_server 10.0.1.1 514 {{\n }}\n}}\n"
        )
    };
    let l = strict(&vs("UDP"));
    assert!(l.config.virtual_servers[0].ops, "{:?}", messages(&l));
    let l = strict(&vs("TCP"));
    assert!(
        messages(&l).iter().any(|m| m.starts_with("t.conf:1: error: ops (one-packet scheduling) is for UDP")),
        "{:?}",
        messages(&l)
    );
}

/// rvs's `dest_check` in a virtual_server (DPVS's `ipvsadm --dest-check` notation) is
/// read without a warning; a value rvs cannot take is an error naming its line and why.
#[test]
fn dest_check_is_read_and_checked() {
    let vs = |body: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n lb_kind FNAT\n protocol TCP\n{body} real_server 10.0.1.1 80 {{\n }}\n}}\n"
        )
    };
    let said = |l: &Loaded| messages(l).into_iter().filter(|m| !m.contains("no laddr_group_name")).collect::<Vec<_>>();
    for (v, want) in [("default", Some("default")), ("1,3s", Some("1,3s")), ("disable", None)] {
        let l = strict(&vs(&format!(" dest_check {v}\n")));
        assert!(said(&l).is_empty(), "{v}: {:?}", messages(&l));
        assert_eq!(l.config.virtual_servers[0].dest_check.map(|d| d.to_string()).as_deref(), want, "{v}");
    }
    assert_eq!(strict(&vs("")).config.virtual_servers[0].dest_check, None, "absent: off");
    for (v, want) in [
        ("tcp", "t.conf:4: error: dest-check tcp: DPVS's external checkers run in its dpvs-agent"),
        ("5-3s", "t.conf:4: error: dest-check '5-3s': give default"),
        ("", "t.conf:4: error: dest_check takes one value"),
    ] {
        let l = strict(&vs(&format!(" dest_check {v}\n")));
        assert!(said(&l).len() == 1 && said(&l)[0].starts_with(want), "{v}: {:?}", said(&l));
    }
}

/// DPVS's `establish_timeout` in a virtual_server is honoured: the value as written, from
/// 1 to rvsd's maximum (above DPVS's 3600, which DPVS would clamp), no warning and not
/// recorded as ignored; absent = 0 (rvsd's global timeouts). 0, a negative or non-numeric
/// value, one above the maximum or none at all is an error naming its line.
#[test]
fn establish_timeout_is_honoured_as_written() {
    let vs = |body: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n lb_kind FNAT\n protocol TCP\n{body} real_server 10.0.1.1 80 {{\n }}\n}}\n"
        )
    };
    let said = |l: &Loaded| messages(l).into_iter().filter(|m| !m.contains("no laddr_group_name")).collect::<Vec<_>>();
    let max = fnat::tcp_state::MAX_TIMEOUT_S;
    for t in [1, 60, 3600, 7200, max] {
        let l = strict(&vs(&format!(" establish_timeout {t}\n")));
        assert!(said(&l).is_empty(), "{t}: {:?}", messages(&l));
        assert_eq!(l.config.virtual_servers[0].establish_timeout, t, "as written, not clamped");
        assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
    }
    assert_eq!(strict(&vs("")).config.virtual_servers[0].establish_timeout, 0, "absent: the global timeouts");
    for (v, want) in [
        ("0", format!("t.conf:4: error: establish_timeout 0 is out of range 1-{max}")),
        ("-5", format!("t.conf:4: error: establish_timeout -5 is out of range 1-{max}")),
        ("2000001", format!("t.conf:4: error: establish_timeout 2000001 is out of range 1-{max}")),
        ("10s", "t.conf:4: error: establish_timeout expects an integer, got '10s'".to_string()),
        ("", "t.conf:4: error: establish_timeout needs a value".to_string()),
    ] {
        let l = strict(&vs(&format!(" establish_timeout {v}\n")));
        assert_eq!(said(&l), [want], "{v}");
        assert_eq!(l.config.virtual_servers[0].establish_timeout, 0, "{v}: nothing kept");
    }
    // Serialised with the configuration (older JSON without it reads as 0).
    let json = serde_json::to_value(&strict(&vs(" establish_timeout 600\n")).config).unwrap();
    assert_eq!(json["virtual_servers"][0]["establish_timeout"], 600);
    let mut old = json.clone();
    old["virtual_servers"][0].as_object_mut().unwrap().remove("establish_timeout");
    let back: Config = serde_json::from_value(old).unwrap();
    assert_eq!(back.virtual_servers[0].establish_timeout, 0);
    // est_timeout (in neither keepalived nor DPVS's keepalived) stays accepted and ignored.
    let l = strict(&vs(" est_timeout 60\n"));
    assert_eq!(said(&l), ["t.conf:4: warning: 'est_timeout' is accepted and not honoured by rvs-agent/rvsd (ignored)"]);
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
    assert!(has(&l, "BFD_CHECK needs a name (a bfd_instance)"), "{:?}", messages(&l));
}

/// keepalived's BFD_CHECK: `name` a bfd_instance the checker may follow (`checker`, or
/// neither `vrrp` nor `checker`), once per real server; no retries; `alpha` as the
/// other checkers' (the virtual server's).
#[test]
fn bfd_check_names_a_bfd_instance_for_the_checker() {
    let bfd = "bfd_instance b {\n neighbor_ip 10.0.0.2\n}\nbfd_instance v {\n neighbor_ip 10.0.0.3\n vrrp\n}\n\
               bfd_instance c {\n neighbor_ip 10.0.0.4\n checker\n}\n";
    let l = strict(&format!("{bfd}{}", vs_with("BFD_CHECK {\n name b\n}\n BFD_CHECK {\n name c\n}")));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    let c = only_checks(&l);
    assert_eq!((&c[0].kind, c[0].common.retry), (&CheckKind::Bfd { name: "b".into() }, 0));
    assert_eq!(c[1].kind, CheckKind::Bfd { name: "c".into() });
    let b = &l.config.bfd_instances;
    assert_eq!(
        [(b[0].vrrp, b[0].checker), (b[1].vrrp, b[1].checker), (b[2].vrrp, b[2].checker)],
        [(true, true), (true, false), (false, true)]
    );
    for (checks, want) in [
        ("BFD_CHECK {\n name nope\n}", "BFD_CHECK nope: no bfd_instance of that name"),
        ("BFD_CHECK {\n name v\n}", "BFD_CHECK v: that bfd_instance is for VRRP only ('vrrp')"),
        ("BFD_CHECK {\n name b\n}\n BFD_CHECK {\n name b\n}", "BFD_CHECK b: the real server already follows it"),
        ("BFD_CHECK {\n name b c\n}", "BFD_CHECK: name takes exactly one bfd_instance name"),
    ] {
        let l = strict(&format!("{bfd}{}", vs_with(checks)));
        assert!(has(&l, want), "{checks}: {:?}", messages(&l));
    }
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
    // keepalived's samples put `src` first; `to` may name the prefix
    let l = strict(
        "static_routes {\n src 192.0.2.60 10.9.0.0/16 via 192.0.2.1 dev dpdk0\n to 10.8.0.0/16 dev dpdk0\n src\n \
         blackhole 10.7.0.0/16\n}\n",
    );
    let r = &l.config.static_routes;
    assert_eq!(
        (r[0].prefix.to_string(), r[0].src, r[0].via),
        ("10.9.0.0/16".into(), "192.0.2.60".parse().ok(), "192.0.2.1".parse().ok())
    );
    assert_eq!(r[1].prefix.to_string(), "10.8.0.0/16");
    assert_eq!(
        messages(&l),
        [
            "t.conf:4: error: static_routes src: src needs an address",
            "t.conf:4: error: static_routes: no prefix (or default)",
            "t.conf:5: error: static_routes: route type 'blackhole' is valid keepalived that rvs does not support yet \
             (rvsd's routes forward)"
        ]
    );
}

/// keepalived's `scope`: link (a connected route) and global are rvsd's two scopes; the
/// others, and link with a gateway, are refused by name.
#[test]
fn route_scopes() {
    let l = strict("static_routes {\n 10.5.0.0/24 dev dpdk1 scope link\n 10.6.0.0/16 via 192.0.2.1 scope global\n}\n");
    let r = &l.config.static_routes;
    assert_eq!((r[0].spec().scope, r[1].spec().scope), (ctl::RouteScope::Link, ctl::RouteScope::Global));
    let l = strict(
        "static_routes {\n 10.5.0.0/24 dev dpdk1 scope site\n 10.6.0.0/16 via 192.0.2.1 scope link\n \
         10.7.0.0/16 dev dpdk1 scope\n}\n",
    );
    assert_eq!(
        messages(&l),
        [
            "t.conf:2: error: static_routes 10.5.0.0/24: scope site is valid keepalived that rvs does not support \
             (rvsd's routes are global or link)",
            "t.conf:3: error: static_routes 10.6.0.0/16: scope link is a connected route: no via",
            "t.conf:4: error: static_routes 10.7.0.0/16: scope needs link or global",
        ]
    );
}

/// DPVS's tutorial (doc/tutorial.md, "SNAT Mode"), as written there.
const DPVS_SNAT: &str = "virtual_server match SNAT1 {
    protocol UDP
    lb_algo rr
    lb_kind SNAT
    src-range 192.168.100.0-192.168.100.254
    oif dpdk1

    real_server 123.1.2.1  0 {
        weight 4
    }
}
virtual_server match SNAT2 {
    protocol TCP
    lb_algo wrr
    lb_kind SNAT
    src-range 192.168.100.1-192.168.100.254
    dst-range 123.1.2.0-123.1.2.254
    oif dpdk1
    iif dpdk0
    real_server 123.1.2.1  0 {
        weight 4
    }
}
";

#[test]
fn dpvs_snat_match_blocks_become_snat_rules() {
    use fnat::types::Proto as P;
    let l = strict(DPVS_SNAT);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert!(l.config.virtual_servers.is_empty());
    let range = |r: &str| Some(r.parse::<fnat::snat::AddrRange>().unwrap());
    let wan = vec!["123.1.2.1".parse().unwrap()];
    let rules: Vec<&ctl::SnatSpec> = l.config.snat.iter().map(|s| &s.rule).collect();
    assert_eq!(
        rules,
        [
            &ctl::SnatSpec {
                name: Some("SNAT1".into()),
                proto: Some(P::Udp),
                src_range: range("192.168.100.0-192.168.100.254"),
                dst_range: None,
                iif: None,
                oif: Some("dpdk1".into()),
                wan: wan.clone(),
            },
            &ctl::SnatSpec {
                name: Some("SNAT2".into()),
                proto: Some(P::Tcp),
                src_range: range("192.168.100.1-192.168.100.254"),
                dst_range: range("123.1.2.0-123.1.2.254"),
                iif: Some("dpdk0".into()),
                oif: Some("dpdk1".into()),
                wan,
            },
        ]
    );
    assert_eq!(l.config.snat[1].loc.line, 12);
    // keepalived's default protocol; several WAN addresses in file order; IPv6 and ports.
    let l = strict(
        "virtual_server match v6 {\n lb_kind snat\n dst-range [2001:db8::1]-[2001:db8::9]:80\n\
         real_server 2001:db8:1::1 0 {\n }\n real_server 2001:db8:1::2 0 {\n }\n}\n",
    );
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let r = &l.config.snat[0].rule;
    assert_eq!(r.proto, Some(P::Tcp));
    assert_eq!(r.match_text(), "proto=tcp,dst-range=[2001:db8::1]-[2001:db8::9]:80");
    assert_eq!(r.wan, ["2001:db8:1::1".parse::<std::net::IpAddr>().unwrap(), "2001:db8:1::2".parse().unwrap()]);
    // The configuration round-trips through serde (reload compares it so).
    let json = serde_json::to_string(&l.config).unwrap();
    assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), l.config);
}

/// `virtual_server match S { lb_kind SNAT; BODY }`: line 3 is BODY's first.
fn snat_block(body: &str) -> String {
    format!("virtual_server match S {{\n lb_kind SNAT\n{body} real_server 198.18.0.1 0 {{\n }}\n}}\n")
}

fn errors(l: &Loaded) -> Vec<String> {
    messages(l).into_iter().filter(|m| m.contains("error")).collect()
}

#[test]
fn snat_refusals_name_their_problem() {
    let s = "t.conf:3: error: virtual_server match S";
    for (body, want) in [
        (" protocol SCTP\n", format!("{s}: protocol SCTP is not supported (TCP, UDP, ICMP or ICMPV6)")),
        (
            " protocol ICMP\n dst-range 0.0.0.0:1-1024\n",
            "t.conf:4: error: virtual_server match S: dst-range 0.0.0.0:1-1024: protocol ICMP takes no ports (echo \
             messages have none): give addresses only"
                .into(),
        ),
        (
            " lvs_method FNAT\n",
            format!(
                "{s}: lvs_method FNAT: a virtual_server match block is a SNAT rule (lb_kind SNAT); FNAT needs a \
                 virtual_server IP PORT"
            ),
        ),
        (
            " src-range 10.0.0.9-10.0.0.1\n",
            format!("{s}: src-range: 10.0.0.9-10.0.0.1: the ends must be of one family, the first not above the last"),
        ),
        (" dst-range nonsense\n", format!("{s}: dst-range: \"nonsense\" is not an address range (A, A-B")),
        (" src-range 10.0.0.1 10.0.0.2\n", format!("{s}: src-range takes one range, got '10.0.0.1 10.0.0.2'")),
        (" oif dpdk1\n oif dpdk2\n", "t.conf:4: error: virtual_server match S: oif given twice (once per rule)".into()),
        (
            " lb_algo wlc\n",
            format!("{s}: lb_algo wlc: rvs takes a SNAT rule's WAN addresses in turn (rr, or wrr with equal weights)"),
        ),
        (
            " delay_loop 6\n",
            format!("{s}: 'delay_loop' is for health checks, and rvs-agent does not health-check WAN addresses"),
        ),
        (
            " quorum 2\n",
            format!("{s}: 'quorum' is for health checks, and rvs-agent does not health-check WAN addresses"),
        ),
        (
            " establish_timeout 60\n",
            format!(
                "{s}: 'establish_timeout' is a virtual_server IP PORT's: rvs's SNAT connections take rvsd's global \
                 timeouts"
            ),
        ),
        (
            " persistence_timeout 50\n",
            format!(
                "{s}: 'persistence_timeout' is a virtual_server IP PORT's and means nothing to a SNAT rule (rvs \
                 takes its WAN addresses in turn)"
            ),
        ),
        (
            " real_server 198.18.0.2 80 {\n }\n",
            format!("{s}: real_server 198.18.0.2 80: a WAN address takes port 0 (its ports are its sapool's)"),
        ),
        (" real_server 198.18.0.2\n", format!("{s}: real_server expects 'WAN_ADDRESS 0'")),
        (
            " real_server 198.18.0.1 0 {\n }\n",
            "t.conf:5: error: virtual_server match S: real_server 198.18.0.1 given twice".into(),
        ),
        (
            " real_server 198.18.0.2 0 {\n  TCP_CHECK {\n  }\n }\n",
            "t.conf:4: error: virtual_server match S: real_server 198.18.0.2: TCP_CHECK: rvs-agent does not \
             health-check WAN addresses"
                .into(),
        ),
        (
            " real_server 198.18.0.2 0 {\n  inhibit_on_failure\n }\n",
            "t.conf:4: error: virtual_server match S: real_server 198.18.0.2: inhibit_on_failure: rvs-agent does \
             not health-check WAN addresses"
                .into(),
        ),
        (
            " real_server 198.18.0.2 0 {\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n",
            "t.conf:4: error: virtual_server match S: real_server 198.18.0.2: MISC_CHECK: rvs-agent does not \
             health-check WAN addresses"
                .into(),
        ),
        (
            " real_server 198.18.0.2 0 {\n  uthreshold 10\n }\n",
            "t.conf:4: error: virtual_server match S: real_server 198.18.0.2: uthreshold means nothing to a SNAT \
             WAN address"
                .into(),
        ),
        (
            " real_server 198.18.0.2 0 {\n  weight 0\n }\n",
            "t.conf:4: error: virtual_server match S: real_server 198.18.0.2: weight 0 (no new flows) is not \
             supported: rvs takes every WAN address of a rule (remove the real_server instead)"
                .into(),
        ),
        (
            " src-range 2001:db8::/64\n",
            "t.conf:1: error: virtual_server match S: SNAT rule \"S\": src-range is not of the family of its WAN \
             addresses"
                .into(),
        ),
        (" acl_entry a {\n }\n", "t.conf:3: error: unknown keyword 'acl_entry' in virtual_server match".into()),
    ] {
        let l = strict(&snat_block(body));
        let e = errors(&l);
        assert!(e.len() == 1 && e[0].starts_with(&want), "{body:?}: want {want:?}, got {e:?}");
    }
}

/// DPVS's `protocol ICMP` / `ICMPV6` in a match block (its keepalived's `proto_handler`,
/// any case) is rvsd's `proto=icmp` rule: echo messages of the rule's family. Without
/// `protocol` a rule stays TCP (keepalived's default here); ICMP is only taken when named.
#[test]
fn snat_icmp_rules_become_proto_icmp() {
    use fnat::types::Proto as P;
    let rule = |body: &str| {
        let l = strict(&snat_block(body));
        assert!(l.diagnostics.is_empty(), "{body:?}: {:?}", messages(&l));
        l.config.snat[0].rule.clone()
    };
    let r = rule(" protocol ICMP\n src-range 192.168.100.0-192.168.100.254\n oif dpdk1\n");
    assert_eq!(r.proto, Some(P::Icmp));
    assert_eq!(r.match_text(), "proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1");
    assert_eq!(r.wan, ["198.18.0.1".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(rule(" protocol icmp\n").proto, Some(P::Icmp), "any case, as DPVS's strcasecmp");
    assert_eq!(rule("").proto, Some(P::Tcp), "no protocol: TCP, never ICMP");
    // ICMPV6 in an IPv6 rule: the same rvsd rule (ICMPv6 echoes over IPv6).
    let v6 = "virtual_server match S6 {\n lb_kind SNAT\n protocol ICMPV6\n src-range 2001:db8::/64\n\
              real_server 2001:db8:1::1 0 {\n }\n}\n";
    let l = strict(v6);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.config.snat[0].rule.proto, Some(P::Icmp));
    assert_eq!(l.config.snat[0].rule.match_text(), "proto=icmp,src-range=2001:db8::-2001:db8::ffff:ffff:ffff:ffff");
    // The other family's word: taken as the rule's family's ICMP, with a warning (DPVS's
    // rule would take nothing).
    let l = strict(&snat_block(" protocol ICMPV6\n"));
    assert_eq!(
        messages(&l),
        ["t.conf:3: warning: virtual_server match S: protocol ICMPV6 in a rule of IPv4 addresses: rvs takes IPv4's \
          echo messages (ICMP) under it; DPVS's would take none (say protocol ICMP)"]
    );
    assert_eq!(l.config.snat[0].rule.proto, Some(P::Icmp));
    let l = strict(&v6.replace("ICMPV6", "ICMP"));
    assert_eq!(
        messages(&l),
        ["t.conf:3: warning: virtual_server match S6: protocol ICMP in a rule of IPv6 addresses: rvs takes IPv6's \
          echo messages (ICMPV6) under it; DPVS's would take none (say protocol ICMPV6)"]
    );
    // Ports in either range: an error at each range's line, whichever comes first, and
    // no second one from rvsd's own check at the block's line.
    let l = strict(&snat_block(
        " src-range 10.0.0.0-10.0.0.9:80\n dst-range [2001:db8::1]-[2001:db8::9]:1-9\n protocol ICMP\n",
    ));
    let e = errors(&l);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(
            "t.conf:3: error: virtual_server match S: src-range 10.0.0.0-10.0.0.9:80: protocol ICMP takes no ports"
        ),
        "{e:?}"
    );
    assert!(
        e[1].starts_with(
            "t.conf:4: error: virtual_server match S: dst-range [2001:db8::1]-[2001:db8::9]:1-9: protocol ICMP"
        ),
        "{e:?}"
    );
    assert!(e[2].contains("dst-range is not of the family"), "the family mismatch is still said: {e:?}");
    // The same ranges under TCP are fine; ICMP and TCP rules with one match are two rules.
    assert!(errors(&strict(&snat_block(" src-range 10.0.0.0-10.0.0.9:80\n"))).is_empty());
    let two = format!(
        "{}{}",
        snat_block(" oif dpdk1\n"),
        snat_block(" oif dpdk1\n protocol ICMP\n").replace("match S", "match T")
    );
    let l = strict(&two);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.config.snat.iter().map(|s| s.rule.proto).collect::<Vec<_>>(), [Some(P::Tcp), Some(P::Icmp)]);
    // ICMP and ICMPV6 with one range are one match: refused as the same rule.
    let l = strict(&format!(
        "{}{}",
        snat_block(" protocol ICMP\n"),
        snat_block(" protocol icmpv6\n").replace("match S", "match T")
    ));
    assert!(errors(&l).iter().any(|e| e.contains("same match (proto=icmp)")), "{:?}", messages(&l));
}

#[test]
fn snat_algorithms_kinds_names_and_matches() {
    // wrr: only with equal weights (the WAN addresses are taken in turn).
    let wans = |w1: u32, w2: u32| {
        format!(
            "virtual_server match S {{\n lb_kind SNAT\n lb_algo wrr\n real_server 198.18.0.1 0 {{\n  weight {w1}\n }}\n\
             real_server 198.18.0.2 0 {{\n  weight {w2}\n }}\n}}\n"
        )
    };
    let l = strict(&wans(3, 3));
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.config.snat[0].rule.wan.len(), 2);
    assert_eq!(
        errors(&strict(&wans(3, 1))),
        ["t.conf:3: error: virtual_server match S: lb_algo wrr with unequal weights (198.18.0.1 weight 3, \
          198.18.0.2 weight 1): rvs takes a rule's WAN addresses in turn, without weights (give them equal weights, \
          or say lb_algo rr)"]
    );
    // rr takes no weights at all, as in LVS.
    assert!(errors(&strict(&wans(3, 1).replace("wrr", "rr"))).is_empty());
    // lb_kind: required in a match block; SNAT only there.
    let l = strict("virtual_server match S {\n real_server 198.18.0.1 0 {\n }\n}\n");
    assert_eq!(
        errors(&l),
        ["t.conf:1: error: virtual_server match S: needs lb_kind SNAT (a virtual_server match block is a SNAT rule)"]
    );
    let l = strict("virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n src-range 10.0.0.0/24\n}\n");
    assert_eq!(
        errors(&l),
        ["t.conf:3: error: src-range is a SNAT rule's: write it in a `virtual_server match NAME { lb_kind SNAT ... }` \
          block"]
    );
    let l = strict("virtual_server match {\n lb_kind SNAT\n}\n");
    assert_eq!(
        errors(&l),
        ["t.conf:1: error: virtual_server match needs a name: virtual_server match NAME { lb_kind SNAT ... }"]
    );
    // No WAN address: a warning (the rule takes nothing), an error under --strict.
    let bare = "virtual_server match S {\n lb_kind SNAT\n oif dpdk1\n}\n";
    let l = strict(bare);
    assert_eq!(
        messages(&l),
        ["t.conf:1: warning: virtual_server match S: no real_server (WAN address): the rule takes no flow until it has one"]
    );
    assert!(parse_str(bare, "t.conf", Options { strict: true, ..Options::default() }).has_errors());
    // Two rules with one name, or one match.
    let two = |a: &str, b: &str| format!("{}{}", snat_block(a), snat_block(b).replace("match S", "match T"));
    let l = strict(&two(" oif dpdk1\n", " oif dpdk1\n"));
    assert_eq!(
        errors(&l),
        ["t.conf:7: error: virtual_server match T: same match (proto=tcp,oif=dpdk1) as virtual_server match S \
          (t.conf:1): rvs names a SNAT rule by its match"]
    );
    assert_eq!(l.config.snat.len(), 1);
    let l = strict(&format!("{}{}", snat_block(" oif dpdk1\n"), snat_block(" oif dpdk2\n")));
    assert_eq!(
        errors(&l),
        ["t.conf:7: error: virtual_server match S: the name is already used by the virtual_server match at t.conf:1"]
    );
    assert!(errors(&strict(&two(" oif dpdk1\n", " oif dpdk1\n protocol UDP\n"))).is_empty());
}

#[test]
fn snat_keywords_not_honoured_are_warnings_when_lenient_or_ignored() {
    let lenient = Options { lenient: true, ..Options::default() };
    let l = parse_str(&snat_block(" delay_loop 6\n"), "t.conf", lenient.clone());
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(
        messages(&l),
        ["t.conf:3: warning: virtual_server match S: 'delay_loop' is for health checks, and rvs-agent does not \
          health-check WAN addresses (ignored)"]
    );
    assert_eq!(l.config.ignored.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(), ["delay_loop"]);
    // DPVS's knobs accepted with a warning before (alpha, omega) stay so here: honoured
    // in a virtual_server IP PORT, they mean nothing to a rule, whose WAN addresses are
    // not checked and which has no notifiers.
    let l = strict(&snat_block(" alpha\n omega\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(
        messages(&l),
        [
            "t.conf:3: warning: 'alpha' is accepted and not honoured by rvs: rvs-agent does not health-check a \
             SNAT rule's WAN addresses",
            "t.conf:4: warning: 'omega' is accepted and not honoured by rvs: a SNAT rule has no notify scripts to \
             run at shutdown"
        ]
    );
    assert_eq!(l.config.ignored.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(), ["alpha", "omega"]);
    // So do ha_suspend, warmup and sorry_server_inhibit (ignored keywords until honoured).
    let l = strict(&snat_block(
        " ha_suspend
 warmup 2
 sorry_server_inhibit
 real_server 198.18.0.2 0 {
  warmup 1
 }
",
    ));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(
        l.config.ignored.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
        ["ha_suspend", "warmup", "sorry_server_inhibit", "warmup"]
    );
    assert!(has(&l, "t.conf:5: warning: 'sorry_server_inhibit' is accepted and not honoured by rvs: a SNAT rule has no sorry server"));
    // Health checkers on a WAN address stay errors even when lenient: no check would run.
    let l = parse_str(&snat_block(" real_server 198.18.0.2 0 {\n  TCP_CHECK {\n  }\n }\n"), "t.conf", lenient);
    assert!(l.has_errors());
}

/// `lvs_sync_daemon` is read with keepalived 2.2's syntax and rules into the sync daemon
/// the agent applies (roles follow the named instance; sync id `id`, else its VRID), and
/// draws one warning naming what rvsd's `[sync]` sets instead (never silently ignored).
#[test]
fn lvs_sync_daemon_is_applied_and_warns_about_what_sync_sets() {
    use crate::keepalived::config::LvsSyncDaemon;
    let with = |line: &str| strict(&format!("global_defs {{\n {line}\n}}\n{MINIMAL}"));
    let warning = |l: &Loaded| {
        assert!(!l.has_errors(), "{:?}", messages(l));
        assert_eq!(l.config.ignored.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(), ["lvs_sync_daemon"]);
        let m = messages(l);
        assert_eq!(m.len(), 1, "{m:?}");
        m[0].clone()
    };
    let daemon = |l: &Loaded| {
        let d: Option<LvsSyncDaemon> = l.config.global_defs.lvs_sync_daemon.clone();
        d.map(|d| (d.keyword, d.interface, d.instance, d.syncid, d.loc.line))
    };
    let l = with("lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8848 ttl 2 group 224.0.0.81");
    assert_eq!(
        warning(&l),
        "t.conf:2: warning: lvs_sync_daemon: applied as rvsd's connection-sync roles: master while vrrp_instance \
         VI_1 is MASTER, backup otherwise, syncid 7; not applied: the interface eth1, maxlen 1400, port 8848, ttl 2, \
         group 224.0.0.81 (rvsd's [sync] sets the transport, and its syncid must be 7: docs/HA.md)"
    );
    assert_eq!(daemon(&l), Some(("lvs_sync_daemon".into(), "eth1".into(), Some("VI_1".into()), 7, 2)));
    // No id: keepalived's default, the named instance's VRID (MINIMAL's is 5); `inst NAME`
    // and keepalived 1.x's positional `INTERFACE INSTANCE SYNC_ID` too.
    let l = with("lvs_sync_daemon eth1 VI_1");
    assert!(warning(&l).ends_with(
        "syncid 5; not applied: the interface eth1 (rvsd's [sync] sets the transport, and its syncid must be 5: docs/HA.md)"
    ));
    assert_eq!(daemon(&l).map(|d| (d.2, d.3)), Some((Some("VI_1".into()), 5)));
    let l = with("lvs_sync_daemon eth1 inst VI_1 port 8848");
    assert!(warning(&l).contains("syncid 5; not applied: the interface eth1, port 8848 "), "{:?}", messages(&l));
    assert_eq!(daemon(&l).map(|d| (d.2, d.3)), Some((Some("VI_1".into()), 5)));
    let l = with("lvs_sync_daemon eth1 VI_1 9");
    assert!(warning(&l).contains("syncid 9;"));
    assert_eq!(daemon(&l).map(|d| (d.2, d.3)), Some((Some("VI_1".into()), 9)));
    // No instance: both roles while the agent runs (keepalived's checker), sync id 0.
    let l = with("lvs_sync_daemon eth1");
    assert!(warning(&l).contains("roles: master and backup while rvs-agent runs, syncid 0;"));
    assert_eq!(daemon(&l).map(|d| (d.2, d.3)), Some((None, 0)));
    let l = with("lvs_sync_daemon eth1 id 4");
    assert_eq!(daemon(&l).map(|d| (d.2, d.3)), Some((None, 4)));
    // An instance that does not exist: nothing applied (keepalived clears the line).
    let l = with("lvs_sync_daemon eth1 VI_9 id 3");
    assert_eq!(
        warning(&l),
        "t.conf:2: warning: lvs_sync_daemon: no vrrp_instance VI_9: no connection-sync role is switched \
         (keepalived clears the line too)"
    );
    assert_eq!(daemon(&l), None);
    // Malformed lines are errors.
    for (line, e) in [
        ("lvs_sync_daemon", "lvs_sync_daemon needs a value"),
        ("lvs_sync_daemon eth1 VI_1 id 300", "lvs_sync_daemon: id 300 is not a sync id (0-255)"),
        ("lvs_sync_daemon eth1 VI_1 id", "lvs_sync_daemon: id needs a value"),
        ("lvs_sync_daemon eth1 VI_1 ttl 0", "lvs_sync_daemon: ttl 0 is out of range 1-255"),
        ("lvs_sync_daemon eth1 VI_1 group 10.0.0.1", "lvs_sync_daemon: group 10.0.0.1 is not a multicast address"),
        ("lvs_sync_daemon eth1 VI_1 id 1 frob 2", "lvs_sync_daemon: unknown option 'frob'"),
    ] {
        let l = with(line);
        assert_eq!(errors(&l), [format!("t.conf:2: error: {e}")], "{line}");
    }
    // --strict refuses it, as every keyword accepted and not wholly honoured.
    let text = format!("global_defs {{\n lvs_sync_daemon eth1 VI_1\n}}\n{MINIMAL}");
    assert!(parse_str(&text, "t.conf", Options { strict: true, ..Options::default() }).has_errors());
    // A vrrp_instance's (deprecated) lvs_sync_daemon_interface: that instance's state,
    // sync id 0 (keepalived 2 sets the VRID only for a named instance).
    let l = strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n lvs_sync_daemon_interface eth1\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(
        messages(&l),
        ["t.conf:3: warning: lvs_sync_daemon_interface: applied as rvsd's connection-sync roles: master while \
             vrrp_instance VI_1 is MASTER, backup otherwise, syncid 0 (keepalived 2's for this deprecated keyword); \
             not applied: the interface eth1 (rvsd's [sync] sets the transport, and its syncid must be 0: docs/HA.md)"]
    );
    assert_eq!(daemon(&l), Some(("lvs_sync_daemon_interface".into(), "eth1".into(), Some("VI_1".into()), 0, 3)));
    assert_eq!(l.config.ignored.len(), 1);
    // The first line wins (keepalived ignores the others); a later one is named.
    let text = format!(
        "global_defs {{\n lvs_sync_daemon eth1 VI_1 id 7\n}}\n{}",
        MINIMAL.replace(" interface eth0\n", " interface eth0\n lvs_sync_daemon_interface eth2\n")
    );
    let l = strict(&text);
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(daemon(&l).map(|d| (d.1, d.3)), Some(("eth1".into(), 7)));
    assert!(
        messages(&l).contains(
            &"t.conf:6: warning: lvs_sync_daemon_interface: lvs_sync_daemon is already given (lvs_sync_daemon, \
              t.conf:2): this line is ignored (as keepalived)"
                .to_string()
        ),
        "{:?}",
        messages(&l)
    );
    assert_eq!(l.config.ignored.len(), 2);
}

/// The brief's connection-sync layout: the LIP both in a local_address_group and in the
/// instance's virtual_ipaddress on the server-side port.
const LIP_MOVES: &str = "vrrp_instance VI_1 {\n interface dpdk0.kni\n virtual_router_id 51\n priority 150\n\
    virtual_ipaddress {\n  198.18.0.100\n  198.19.0.30/24 dev dpdk1\n }\n}\n\
    local_address_group laddr_g1 {\n 198.19.0.30 dpdk1\n 198.19.0.31 dpdk1\n}\n\
    virtual_server 198.18.0.100 80 {\n lb_algo rr\n lb_kind FNAT\n protocol TCP\n laddr_group_name laddr_g1\n\
    real_server 198.19.0.11 8080 {\n  weight 1\n }\n}\n";

#[test]
fn a_local_address_in_virtual_ipaddress_moves_with_the_vips() {
    let l = strict(LIP_MOVES);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let (_, services, _) = crate::check::pool::Pool::from_config(&l.config);
    let lips: Vec<(String, &str, bool)> =
        services[0].local_addrs.iter().map(|a| (a.addr.to_string(), a.port_name.as_str(), a.moves_with_vip)).collect();
    assert_eq!(lips, [("198.19.0.30".into(), "dpdk1", true), ("198.19.0.31".into(), "dpdk1", false)]);
}

#[test]
fn a_local_address_moving_with_the_vips_must_be_on_its_groups_port() {
    // On the instance's port (no dev): dpdk0, not the group's dpdk1.
    let l = strict(&LIP_MOVES.replace("198.19.0.30/24 dev dpdk1", "198.19.0.30/24"));
    assert_eq!(
        errors(&l),
        ["t.conf:1: error: vrrp_instance VI_1: virtual_ipaddress 198.19.0.30/24 goes on dpdk0, but \
          local_address_group laddr_g1 has it on dpdk1: a local address that moves with the VIPs must be on its \
          group's port (`198.19.0.30/24 dev dpdk1`)"]
    );
    let l = strict(&LIP_MOVES.replace("dev dpdk1", "dev dpdk2"));
    assert!(errors(&l)[0].contains("goes on dpdk2, but local_address_group laddr_g1 has it on dpdk1"), "{l:?}");
    // The twin's name is the port's.
    assert!(!strict(&LIP_MOVES.replace("dev dpdk1", "dev dpdk1.kni")).has_errors());
    // A group no virtual_server uses moves nothing.
    assert!(!strict(&LIP_MOVES.replace("laddr_group_name laddr_g1\n", "")).has_errors());
}

/// The defaults that differ from keepalived's are said: a virtual_server without
/// `lb_kind` or `protocol` gets a warning naming what keepalived would do (NAT; UDP, which
/// keepalived also reports) and what rvs does (FNAT; TCP).
#[test]
fn defaults_unlike_keepalived_are_warned() {
    let l = strict("virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n }\n}\n");
    let said = messages(&l);
    assert!(
        said.iter().any(|m| m.contains("t.conf:1: warning: lb_kind not set: keepalived would use NAT")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|m| m.contains("t.conf:1: warning: protocol not set: keepalived would serve UDP")),
        "{said:?}"
    );
    assert_eq!(l.config.virtual_servers[0].protocol, crate::dataplane::Proto::Tcp);
    let l = strict("virtual_server 10.0.0.1 53 {\n lb_kind NAT\n protocol udp\n real_server 10.0.1.1 53 {\n }\n}\n");
    assert!(messages(&l).iter().all(|m| !m.contains("not set")), "{:?}", messages(&l));
    assert_eq!(l.config.virtual_servers[0].protocol, crate::dataplane::Proto::Udp);
}

/// keepalived's `ha_suspend` (hasuspend_handler), `sorry_server_inhibit` (ssvri_handler)
/// and `warmup` (vs_warmup_handler, rs_warmup_handler, check_api.c's warmup_handler) are
/// honoured: parsed, off or unset by default, no warning and not recorded as ignored.
/// `sorry_server_inhibit` applies to the sorry server before it (one after it is a new,
/// uninhibited one); before or without one it is warned about and ignored, as keepalived.
/// `warmup` is seconds (fractions allowed) at the three levels, a real server's defaulting
/// to its virtual server's; a bad one is an error.
#[test]
fn ha_suspend_sorry_server_inhibit_and_warmup_are_honoured() {
    let vs = |body: &str, rs: &str, check: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n lb_kind FNAT\n protocol TCP\n{body} real_server 10.0.1.1 80 {{\n{rs}  \
             TCP_CHECK {{\n{check}  }}\n }}\n}}\n"
        )
    };
    let said = |l: &Loaded| messages(l).into_iter().filter(|m| !m.contains("no laddr_group_name")).collect::<Vec<_>>();
    let l = strict(&vs(" ha_suspend\n sorry_server 10.0.9.9 80\n sorry_server_inhibit\n warmup 2.5\n", "", ""));
    assert!(said(&l).is_empty(), "{:?}", messages(&l));
    assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
    let v = &l.config.virtual_servers[0];
    assert!(v.ha_suspend && v.sorry_server_inhibit);
    assert_eq!((v.warmup, v.real_servers[0].warmup), (Some(2.5), Some(2.5)), "the real server takes the vs's");
    assert_eq!(v.real_servers[0].checks[0].common.warmup, None, "the checker's own only");
    // Defaults: off, unset.
    let l = strict(&vs(" sorry_server 10.0.9.9 80\n", "", ""));
    let v = &l.config.virtual_servers[0];
    assert!(!v.ha_suspend && !v.sorry_server_inhibit);
    assert_eq!((v.warmup, v.real_servers[0].warmup), (None, None));
    // Real server's and checker's own warmup (0: no wait).
    let l = strict(&vs(" warmup 9\n", "  warmup 0\n", "   warmup 0.3\n"));
    assert!(said(&l).is_empty(), "{:?}", messages(&l));
    let r = &l.config.virtual_servers[0].real_servers[0];
    assert_eq!((r.warmup, r.checks[0].common.warmup), (Some(0.0), Some(0.3)));
    let l = strict(&vs("", "", "   warmup soon\n"));
    assert_eq!(said(&l), ["t.conf:6: error: warmup expects a number of seconds, got 'soon'"]);
    // sorry_server_inhibit before or without a sorry_server: ignored with a warning.
    for body in [" sorry_server_inhibit\n sorry_server 10.0.9.9 80\n", " sorry_server_inhibit\n"] {
        let l = strict(&vs(body, "", ""));
        assert!(!l.has_errors(), "{:?}", messages(&l));
        assert!(!l.config.virtual_servers[0].sorry_server_inhibit, "{body}");
        assert_eq!(
            said(&l),
            ["t.conf:4: warning: 'sorry_server_inhibit' is accepted and not honoured by rvs: it must follow a \
              sorry_server (keepalived ignores it before or without one)"]
        );
    }
    // A second sorry_server replaces the first, uninhibited.
    let l = strict(&vs(" sorry_server 10.0.9.9 80\n sorry_server_inhibit\n sorry_server 10.0.9.8 80\n", "", ""));
    assert!(!l.config.virtual_servers[0].sorry_server_inhibit);
    // No value (a warning names what is dropped).
    let l = strict(&vs(" ha_suspend yes\n", "", ""));
    assert!(l.config.virtual_servers[0].ha_suspend);
    assert_eq!(said(&l), ["t.conf:4: warning: ha_suspend takes no value; 'yes' ignored"]);
    // Older JSON without them reads as off / unset.
    let mut old = serde_json::to_value(
        &strict(&vs(" ha_suspend\n sorry_server 10.0.9.9 80\n sorry_server_inhibit\n warmup 1\n", "", "   warmup 1\n"))
            .config,
    )
    .unwrap();
    let v = old["virtual_servers"][0].as_object_mut().unwrap();
    for k in ["ha_suspend", "sorry_server_inhibit", "warmup"] {
        v.remove(k).unwrap();
    }
    old["virtual_servers"][0]["real_servers"][0].as_object_mut().unwrap().remove("warmup").unwrap();
    old["virtual_servers"][0]["real_servers"][0]["checks"][0]["common"]
        .as_object_mut()
        .unwrap()
        .remove("warmup")
        .unwrap();
    let back: Config = serde_json::from_value(old).unwrap();
    let v = &back.virtual_servers[0];
    assert!(!v.ha_suspend && !v.sorry_server_inhibit && v.warmup.is_none());
    assert!(v.real_servers[0].warmup.is_none() && v.real_servers[0].checks[0].common.warmup.is_none());
    // None of the three is in IGNORED any more.
    for k in ["ha_suspend", "sorry_server_inhibit", "warmup"] {
        assert!(!crate::keepalived::parse::IGNORED.contains(&k), "{k}");
    }
}

/// keepalived's `lvs_timeouts [tcp N] [tcpfin N] [udp N]` (global_parser.c's
/// `lvs_timeouts`) is honoured: read into GlobalDefs (0 or absent: rvsd's own value), a
/// later pair or line overriding an earlier one for its timeout, no warning and not
/// recorded as ignored. keepalived's refusals are errors naming the part: no pair, a
/// missing or bad value (0 to 31 days), an unknown word; a value above rvsd's maximum is a
/// warning (rvsd caps it).
#[test]
fn lvs_timeouts_are_honoured_with_keepalived_s_validation() {
    use crate::dataplane::LvsTimeouts;
    let with = |lines: &str| strict(&format!("global_defs {{\n{lines}}}\n"));
    let t = |tcp, tcpfin, udp| LvsTimeouts { tcp, tcpfin, udp };
    let l = with(" lvs_timeouts tcp 7200 tcpfin 60 udp 30\n");
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
    assert_eq!(l.config.global_defs.lvs_timeouts, t(7200, 60, 30));
    assert_eq!(l.config.global_defs.lvs_timeouts.to_string(), "tcp 7200 tcpfin 60 udp 30");
    // Any order, any subset; 0 is "not set"; the last pair or line wins, as keepalived.
    let l = with(" lvs_timeouts udp 5 tcp 0\n lvs_timeouts tcp 100 tcp 900\n");
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.config.global_defs.lvs_timeouts, t(900, 0, 5));
    assert_eq!(l.config.global_defs.lvs_timeouts.to_string(), "tcp 900 udp 5");
    assert!(!with("").config.global_defs.lvs_timeouts.is_set(), "absent: rvsd's own");
    assert_eq!(LvsTimeouts::default().to_string(), "none");
    // keepalived's LVS_MAX_TIMEOUT (31 days) is the limit; above rvsd's maximum, a warning.
    let max = fnat::tcp_state::MAX_TIMEOUT_S;
    let l = with(" lvs_timeouts tcp 2678400\n");
    assert_eq!(l.config.global_defs.lvs_timeouts, t(2_678_400, 0, 0));
    assert_eq!(
        messages(&l),
        [format!("t.conf:2: warning: lvs_timeouts: tcp 2678400 is above rvsd's maximum: rvsd times out after {max} s")]
    );
    for (line, want, kept) in [
        ("lvs_timeouts", "lvs_timeouts needs at least one of tcp N, tcpfin N, udp N", t(0, 0, 0)),
        ("lvs_timeouts tcp", "lvs_timeouts needs at least one of tcp N, tcpfin N, udp N", t(0, 0, 0)),
        ("lvs_timeouts udp 9 tcp", "lvs_timeouts: tcp needs a value", t(0, 0, 9)),
        ("lvs_timeouts tcp 2678401 udp 9", "lvs_timeouts: tcp 2678401 is out of range 0-2678400", t(0, 0, 9)),
        ("lvs_timeouts tcpfin -1", "lvs_timeouts: tcpfin '-1' is not a number of seconds (0-2678400)", t(0, 0, 0)),
        ("lvs_timeouts udp 1m", "lvs_timeouts: udp '1m' is not a number of seconds (0-2678400)", t(0, 0, 0)),
        ("lvs_timeouts sctp 5 tcp 60", "lvs_timeouts: unknown option 'sctp' (tcp, tcpfin or udp)", t(60, 0, 0)),
    ] {
        let l = with(&format!(" {line}\n"));
        let said = messages(&l);
        assert_eq!(said[0], format!("t.conf:2: error: {want}"), "{line}");
        assert_eq!(l.config.global_defs.lvs_timeouts, kept, "{line}: the valid pairs are kept");
    }
    // keepalived reads the word after an unknown one as an option too.
    let l = with(" lvs_timeouts sctp 5 tcp 60\n");
    assert_eq!(
        messages(&l),
        [
            "t.conf:2: error: lvs_timeouts: unknown option 'sctp' (tcp, tcpfin or udp)",
            "t.conf:2: error: lvs_timeouts: unknown option '5' (tcp, tcpfin or udp)"
        ]
    );
    // Older JSON without it reads as none set.
    let mut old = serde_json::to_value(&with(" lvs_timeouts tcp 60\n").config).unwrap();
    old["global_defs"].as_object_mut().unwrap().remove("lvs_timeouts").unwrap();
    let back: Config = serde_json::from_value(old).unwrap();
    assert!(!back.global_defs.lvs_timeouts.is_set());
    assert!(!crate::keepalived::parse::IGNORED.contains(&"lvs_timeouts"));
}

/// keepalived's `vrrp_startup_delay SECS` (`vrrp_startup_delay_handler`) is honoured:
/// fractions allowed (up to 6 places, keepalived's microseconds), 0.001 to 4294.967295
/// s; anything else (0 included, as keepalived) is an error naming the line.
#[test]
fn vrrp_startup_delay_is_honoured_with_keepalived_s_range() {
    let with = |v: &str| strict(&format!("global_defs {{\n vrrp_startup_delay {v}\n}}\n{MINIMAL}"));
    for (v, want) in
        [("5", 5.0), ("5.5", 5.5), ("0.001", 0.001), (".25", 0.25), ("3.", 3.0), ("4294.967295", 4294.967295)]
    {
        let l = with(v);
        assert!(l.diagnostics.is_empty(), "{v}: {:?}", messages(&l));
        assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
        assert_eq!(l.config.global_defs.vrrp_startup_delay, Some(want), "{v}");
    }
    assert_eq!(strict(MINIMAL).config.global_defs.vrrp_startup_delay, None, "absent: no delay");
    for v in ["0", "0.0009", "4294.967296", "-1", "1.0000001", "1e3", "inf", "five", "."] {
        let l = with(v);
        assert_eq!(
            messages(&l),
            [format!("t.conf:2: error: vrrp_startup_delay '{v}' is not a delay of 0.001 to 4294.967295 seconds")],
            "{v}"
        );
        assert_eq!(l.config.global_defs.vrrp_startup_delay, None, "{v}");
    }
    let l = strict("global_defs {\n vrrp_startup_delay\n}\n");
    assert_eq!(messages(&l), ["t.conf:2: error: vrrp_startup_delay needs a value"]);
    assert!(!crate::keepalived::parse::IGNORED.contains(&"vrrp_startup_delay"));
}

/// keepalived's `vrrp_check_unicast_src` (global_defs) and `check_unicast_src`
/// (vrrp_instance) are what rvs-agent always does (an advert from a source not among the
/// unicast peers is dropped, counted `not_peer`), and `lvs_flush` what its first
/// ServiceReplace does: accepted without a warning, not recorded as ignored. Like other
/// switches, a value draws a warning naming what is dropped.
#[test]
fn unicast_source_checks_and_lvs_flush_are_honoured_by_construction() {
    let unicast = MINIMAL.replace(
        " interface eth0\n",
        " interface eth0\n check_unicast_src\n unicast_src_ip 10.0.0.2\n unicast_peer {\n  10.0.0.3\n }\n",
    );
    let l = strict(&format!("global_defs {{\n vrrp_check_unicast_src\n lvs_flush\n}}\n{unicast}"));
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert!(l.config.ignored.is_empty(), "{:?}", l.config.ignored);
    assert_eq!(l.config.vrrp_instances[0].unicast_peers, ["10.0.0.3".parse::<std::net::IpAddr>().unwrap()]);
    let l = strict(&format!(
        "global_defs {{\n vrrp_check_unicast_src yes\n lvs_flush on\n}}\n{}",
        unicast.replace(" check_unicast_src\n", " check_unicast_src true\n")
    ));
    assert!(!l.has_errors() && l.config.ignored.is_empty(), "{:?}", messages(&l));
    assert_eq!(
        messages(&l),
        [
            "t.conf:2: warning: vrrp_check_unicast_src takes no value; 'yes' ignored",
            "t.conf:3: warning: lvs_flush takes no value; 'on' ignored",
            "t.conf:7: warning: check_unicast_src takes no value; 'true' ignored",
        ]
    );
    for k in ["vrrp_check_unicast_src", "check_unicast_src", "lvs_flush"] {
        assert!(!crate::keepalived::parse::IGNORED.contains(&k), "{k}");
    }
}

/// keepalived's `lvs_flush_on_stop [VS]` (and its older name `lvs_flush_onstop`): rvs-agent
/// leaves its services in rvsd at stop, so it is accepted with a warning saying so (and
/// recorded: `--strict` refuses it); its effect on omega's notifiers is kept in
/// GlobalDefs. Another mode is an error, as keepalived.
#[test]
fn lvs_flush_on_stop_is_warned_about_and_its_mode_read() {
    use crate::keepalived::config::LvsFlushOnStop;
    let with = |line: &str| strict(&format!("global_defs {{\n {line}\n}}\n"));
    for (line, mode, would) in [
        ("lvs_flush_on_stop", LvsFlushOnStop::Full, "flush the whole IPVS table"),
        ("lvs_flush_on_stop VS", LvsFlushOnStop::Vs, "remove its virtual servers whole"),
        ("lvs_flush_onstop", LvsFlushOnStop::Full, "flush the whole IPVS table"),
    ] {
        let l = with(line);
        assert!(!l.has_errors(), "{:?}", messages(&l));
        let key = line.split(' ').next().unwrap();
        assert_eq!(
            messages(&l),
            [format!(
                "t.conf:2: warning: '{key}' is accepted and not honoured by rvs: rvs-agent leaves its services in rvsd \
                 at stop, with or without it (keepalived would {would}); with it, omega runs only the quorum notifiers \
                 at shutdown, as keepalived"
            )]
        );
        assert_eq!(l.config.ignored.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(), [key]);
        assert_eq!(l.config.global_defs.lvs_flush_on_stop, Some(mode));
    }
    let l = with("lvs_flush_on_stop ALL");
    assert_eq!(messages(&l), ["t.conf:2: error: lvs_flush_on_stop: unknown type 'ALL' (none, or VS)"]);
    assert_eq!(l.config.global_defs.lvs_flush_on_stop, None);
    let l =
        parse_str("global_defs {\n lvs_flush_on_stop\n}\n", "t.conf", Options { strict: true, ..Options::default() });
    assert!(l.has_errors(), "--strict refuses what is not honoured: {:?}", messages(&l));
    assert_eq!(strict("").config.global_defs.lvs_flush_on_stop, None);
}

/// keepalived's `vrrp_garp_interval` / `vrrp_gna_interval SECS` (global_parser.c's
/// handlers: `read_decimal_unsigned_strvec`, 1 us to `UINT_MAX` us) are honoured: the
/// spacing of gratuitous ARPs / NAs; 1 s or more draws keepalived's "very large"
/// warning; 0 (keepalived's sample file) a warning and no spacing; anything else is an
/// error naming the line. keepalived 2.2.7 has no per-instance form; its `garp_group`
/// blocks are read (an interface in two groups, by its twin's name or its port's, is
/// warned about and left in the first).
#[test]
fn vrrp_garp_and_gna_intervals_are_honoured() {
    for k in ["vrrp_garp_interval", "vrrp_gna_interval"] {
        let with = |v: &str| strict(&format!("global_defs {{\n {k} {v}\n}}\n{MINIMAL}"));
        for (v, want) in [("0.001", 0.001), ("0.000001", 0.000001), (".5", 0.5), ("0.25", 0.25)] {
            let l = with(v);
            assert!(l.diagnostics.is_empty(), "{k} {v}: {:?}", messages(&l));
            assert!(l.config.ignored.is_empty(), "honoured, not ignored: {:?}", l.config.ignored);
            let g = &l.config.global_defs;
            let got = if k == "vrrp_garp_interval" { g.vrrp_garp_interval } else { g.vrrp_gna_interval };
            assert_eq!(got, Some(want), "{k} {v}");
        }
        let l = with("2");
        assert_eq!(messages(&l), [format!("t.conf:2: warning: {k} 2 s is very large")]);
        // keepalived's own sample keepalived.conf says 0: keepalived reports it invalid and
        // runs without spacing; rvs-agent warns and does the same.
        for v in ["0", "0.000"] {
            let l = with(v);
            let m = messages(&l);
            assert!(m.len() == 1 && m[0].starts_with(&format!("t.conf:2: warning: {k} 0: no spacing")), "{v}: {m:?}");
            let g = &l.config.global_defs;
            assert_eq!((g.vrrp_garp_interval, g.vrrp_gna_interval), (None, None));
        }
        for v in ["0.0000001", "4294.967296", "-1", "five"] {
            let l = with(v);
            assert_eq!(
                messages(&l),
                [format!("t.conf:2: error: {k} '{v}' is not an interval of 0.000001 to 4294.967295 seconds")],
                "{v}"
            );
        }
        assert!(!crate::keepalived::parse::IGNORED.contains(&k), "{k}");
    }
    let g = strict(MINIMAL).config.global_defs;
    assert_eq!((g.vrrp_garp_interval, g.vrrp_gna_interval), (None, None), "absent: bursts at once");
    // garp_group: its intervals and interfaces (an `interface` line and an `interfaces`
    // block alike); as keepalived, an interface already in a group, and a group without
    // an interval, warned about and left out.
    let l = strict(&format!(
        "garp_group {{\n garp_interval 0.01\n interface dpdk0.kni\n interfaces {{\n  dpdk1.kni\n  dpdk2\n }}\n}}\n\
         garp_group {{\n gna_interval 0.5\n interface dpdk1\n interface dpdk3\n}}\ngarp_group {{\n interface dpdk4\n}}\n{MINIMAL}"
    ));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    let groups: Vec<_> =
        l.config.garp_groups.iter().map(|g| (g.garp_interval, g.gna_interval, g.interfaces.clone())).collect();
    assert_eq!(
        groups,
        [
            (Some(0.01), None, vec!["dpdk0.kni".to_string(), "dpdk1.kni".into(), "dpdk2".into()]),
            (None, Some(0.5), vec!["dpdk3".to_string()])
        ]
    );
    let m = messages(&l).join("\n");
    assert!(
        m.contains("garp_group already specified for dpdk1 ") && m.contains("has no garp_interval or gna_interval"),
        "{m}"
    );
    // Nor is a per-instance garp_interval (keepalived 2.2.7 has none) accepted.
    let l = strict(&MINIMAL.replace("virtual_router_id 5", "virtual_router_id 5\n garp_interval 0.01"));
    assert!(l.has_errors(), "{:?}", messages(&l));
}

/// keepalived's `SCRIPT [USERNAME [GROUPNAME]]`: a quoted command keeps its arguments,
/// the words after it are the user and group (resolved now: one that does not exist is an
/// error naming the fix, where keepalived drops the script with a log line); `script_user`
/// is the default; vrrp_script and MISC_CHECK take a `user` line and, as keepalived, run
/// only the first word of an unquoted command (warned).
#[test]
fn scripts_run_as_the_user_after_them_and_keep_quoted_arguments() {
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("Debian has nobody");
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().expect("Debian has nogroup");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let with = |global: &str, own: &str| {
        strict(&format!(
            "global_defs {{\n{global}}}\n{}",
            MINIMAL.replace(" interface eth0\n", &format!(" interface eth0\n{own}"))
        ))
    };
    let l = with(
        "",
        " notify_master \"/bin/to-master arg\"\n notify_backup /bin/to-backup nobody\n notify_fault /bin/f nobody nogroup\n",
    );
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let n = &l.config.vrrp_instances[0].notify;
    assert_eq!(n.master, Some(Script::new("/bin/to-master arg")));
    let run_as = |user: &str, gid| Some(RunAs { user: user.into(), uid, gid });
    assert_eq!(n.backup, Some(Script { cmd: "/bin/to-backup".into(), run_as: run_as("nobody", gid) }));
    assert_eq!(n.fault.as_ref().unwrap().run_as, run_as("nobody", nogroup.gid.as_raw()));

    // An unquoted argument reads as a user: refused, with the fix.
    let l = with("", " notify_master /bin/notify.sh master\n");
    assert_eq!(
        messages(&l),
        [
            "t.conf:5: error: notify_master: user 'master' does not exist",
            "t.conf:5: error: notify_master: the words after a script name the user and group it runs as: quote a \
             command with arguments (\"/bin/notify.sh master\")"
        ]
    );
    // Another host's file (--peer-config): its users may not exist here.
    let peer = parse_str(
        &MINIMAL.replace(" interface eth0\n", " interface eth0\n notify_master /bin/m peeruser\n"),
        "t.conf",
        Options { other_host: true, ..Options::default() },
    );
    assert_eq!(
        messages(&peer),
        ["t.conf:3: warning: notify_master: user 'peeruser' does not exist here (another host's file)"]
    );
    let l = with("", " notify /bin/n nobody nogroup x\n");
    assert_eq!(
        messages(&l),
        ["t.conf:5: error: notify: after the script come at most a user and a group, not 'nobody nogroup x': quote a \
          command with arguments (\"/bin/n nobody nogroup x\")"]
    );
    let l = with("", " notify_stop /bin/s nobody nosuchgroup\n");
    assert_eq!(messages(&l)[0], "t.conf:5: error: notify_stop: group 'nosuchgroup' does not exist");

    // script_user: every script without its own user, FIFO readers and FIFOs too.
    let l = with(
        " script_user nobody\n notify_fifo /run/n.fifo\n notify_fifo_script /bin/reader\n startup_script /bin/up root\n",
        " notify_master /bin/m\n",
    );
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let g = &l.config.global_defs;
    assert_eq!(l.config.vrrp_instances[0].notify.master.as_ref().unwrap().run_as, run_as("nobody", gid));
    assert_eq!(g.notify_fifo.owner, run_as("nobody", gid));
    assert_eq!(g.notify_fifo.script.as_ref().unwrap().run_as, run_as("nobody", gid));
    assert_eq!(g.startup_script.as_ref().unwrap().cmd.run_as.as_ref().map(|r| r.uid), Some(0));
    let l = with(" script_user nosuchuser\n", "");
    assert!(messages(&l)[0].contains("script_user: user 'nosuchuser' does not exist"), "{:?}", messages(&l));

    // vrrp_script and MISC_CHECK: `user`, and keepalived's first word only.
    let l = strict(&format!(
        "vrrp_script chk {{\n script /bin/chk --fast\n user nobody nogroup\n}}\n{}\
         virtual_server 10.0.0.1 80 {{\n protocol TCP\n lb_kind NAT\n real_server 10.0.1.1 80 {{\n  MISC_CHECK {{\n   \
         misc_path \"/bin/probe -q\"\n   user nobody\n  }}\n }}\n}}\n",
        MINIMAL.replace(" interface eth0\n", " interface eth0\n track_script {\n  chk\n }\n")
    ));
    assert_eq!(
        messages(&l)[..1],
        ["t.conf:2: warning: script: only '/bin/chk' runs (as keepalived): '--fast' after it is ignored; quote a \
          command with arguments (\"/bin/chk --fast\")"]
    );
    let s = &l.config.vrrp_scripts[0].script;
    assert_eq!((s.cmd.as_str(), &s.run_as), ("/bin/chk", &run_as("nobody", nogroup.gid.as_raw())));
    let CheckKind::Misc { path, .. } = &l.config.virtual_servers[0].real_servers[0].checks[0].kind else {
        panic!("a MISC_CHECK")
    };
    assert_eq!(path, &Script { cmd: "/bin/probe -q".into(), run_as: run_as("nobody", gid) });
}

/// keepalived's `notify_deleted [SCRIPT]`: an instance's (with or without a script), not a
/// sync group's.
#[test]
fn notify_deleted_is_an_instances_with_an_optional_script() {
    let with = |own: &str| strict(&MINIMAL.replace(" interface eth0\n", &format!(" interface eth0\n{own}")));
    let l = with(" notify_deleted\n");
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let n = &l.config.vrrp_instances[0].notify;
    assert_eq!((n.notify_deleted, &n.deleted), (true, &None));
    let l = with(" notify_deleted \"/bin/gone VI_1\"\n notify_deleted /bin/other\n");
    assert_eq!(messages(&l), ["t.conf:4: warning: notify_deleted is already given: this one ignored (as keepalived)"]);
    let n = &l.config.vrrp_instances[0].notify;
    assert_eq!((n.notify_deleted, &n.deleted), (true, &Some("/bin/gone VI_1".into())));
    let n = &strict(MINIMAL).config.vrrp_instances[0].notify;
    assert_eq!((n.notify_deleted, &n.deleted), (false, &None));
    // A bare notify_deleted is a change a reload sees (it decides what a removal says).
    let with_it = crate::reload::instance_fingerprint(&with(" notify_deleted\n").config, "VI_1");
    assert_ne!(with_it, crate::reload::instance_fingerprint(&strict(MINIMAL).config, "VI_1"));
    let l = strict("vrrp_sync_group G {\n group {\n  A\n }\n notify_deleted\n}\n");
    assert!(messages(&l).iter().any(|m| m.contains("notify_deleted is a vrrp_instance's")), "{:?}", messages(&l));
}

/// keepalived's `vrrp_track_process` and an instance's `track_process` entries (weights
/// with `reverse` / `noreverse`, as `track_script`'s).
#[test]
fn track_process_blocks_read_as_keepalived_s() {
    let l = strict(&format!(
        "vrrp_track_process haproxy {{\n process /usr/sbin/haproxy -f\n param_match partial\n weight -20 reverse\n \
         quorum 2\n quorum_max 4\n delay 0.5\n fork_delay 1\n}}\nvrrp_track_process nginx {{\n process nginx\n}}\n\
         vrrp_script chk {{\n script /bin/true\n weight 5\n init_fail\n}}\n{}",
        MINIMAL.replace(
            " interface eth0\n",
            " interface eth0\n track_process {\n  haproxy weight 10 noreverse\n  nginx\n }\n track_script {\n  chk weight 3 reverse\n }\n"
        )
    ));
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let p = &l.config.vrrp_track_processes[0];
    assert_eq!((p.process.as_str(), p.params.as_slice()), ("/usr/sbin/haproxy", &["-f".to_string()][..]));
    assert_eq!((p.param_match, p.full_command, p.weight, p.weight_reverse), (ParamMatch::Partial, true, -20, true));
    assert_eq!((p.quorum, p.quorum_max, p.fork_delay, p.terminate_delay), (2, 4, 1.0, 0.5));
    let n = &l.config.vrrp_track_processes[1];
    assert_eq!(
        (n.param_match, n.full_command, n.weight, n.quorum, n.quorum_max),
        (ParamMatch::None, false, 0, 1, u32::MAX)
    );
    let i = &l.config.vrrp_instances[0];
    assert_eq!(i.track_process[0], Track { name: "haproxy".into(), weight: Some(10), reverse: Some(false) });
    assert_eq!(i.track_script[0].reverse, Some(true), "track_script's reverse is honoured too");
    assert!(l.config.vrrp_scripts[0].init_fail, "init_fail is honoured");
    let bad = strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n track_process {\n  nope\n }\n"));
    assert!(
        messages(&bad).iter().any(|m| m.contains("track_process nope names no vrrp_track_process")),
        "{:?}",
        messages(&bad)
    );
    let long = strict("vrrp_track_process j {\n process a-very-long-process-name\n}\n");
    assert!(messages(&long)[0].contains("longer than a process name can be"), "{:?}", messages(&long));
    let q = strict("vrrp_track_process j {\n process x\n quorum 3\n quorum_max 2\n}\n");
    assert!(messages(&q)[0].contains("quorum 3 is above quorum_max 2"), "{:?}", messages(&q));
}

/// keepalived's script security: a script run as root from a directory anyone may write
/// is named (a warning, and keepalived's SECURITY VIOLATION once); under
/// `enable_script_security` it is refused. Run as another user, it is not root's problem.
#[test]
fn scripts_root_runs_must_be_out_of_other_users_reach() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rvs-agent-scriptsec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = dir.join("to-master.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let conf = |global: &str, user: &str| {
        format!(
            "global_defs {{\n{global}}}\n{}",
            MINIMAL
                .replace(" interface eth0\n", &format!(" interface eth0\n notify_master {}{user}\n", script.display()))
        )
    };
    let m = messages(&strict(&conf("", "")));
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m[0].starts_with("t.conf:5: warning: notify_master: '") && m[0].contains("can be written by others (mode 777)"),
        "{m:?}"
    );
    assert!(m[1].contains("SECURITY VIOLATION"), "{m:?}");
    let l = strict(&conf(" enable_script_security\n", ""));
    assert!(l.has_errors() && messages(&l)[0].contains("(enable_script_security)"), "{:?}", messages(&l));
    assert!(strict(&conf(" enable_script_security\n", " nobody")).diagnostics.is_empty(), "run as nobody");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An HTTP_GET url's `regex` and its qualifiers (refused before): read and compiled when
/// the file is; qualifiers without a regex and crossed offsets warned and ignored, as
/// keepalived ignores them; a pattern rvs-agent cannot run an error naming why;
/// `regex_stack` accepted and not honoured.
#[test]
fn http_get_regexes_are_read_compiled_and_checked() {
    let vs = |url: &str| {
        format!(
            "local_address_group l {{\n 10.0.0.100 dpdk1\n}}\nvirtual_server 10.0.0.1 80 {{\n lb_kind FNAT\n protocol TCP\n laddr_group_name l\n real_server 10.0.1.1 80 {{\n  HTTP_GET {{\n   url {{\n    path /x\n{url}   }}\n  }}\n }}\n}}\n"
        )
    };
    let url_of = |l: &Loaded| match &l.config.virtual_servers[0].real_servers[0].checks[0].kind {
        CheckKind::Http { urls, .. } => urls[0].clone(),
        k => panic!("{k:?}"),
    };
    let l = strict(&vs(
        "    regex \"status: (ok|fine) \\\\d+\"\n    regex_no_match\n    regex_options caseless multiline\n    regex_min_offset 10\n    regex_max_offset 200\n",
    ));
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let r = url_of(&l).regex.expect("the regex");
    assert_eq!(
        r.conf,
        RegexConf {
            pattern: r"status: (ok|fine) \d+".into(),
            options: vec!["caseless".into(), "multiline".into()],
            no_match: true,
            min_offset: 10,
            max_offset: Some(200),
        }
    );
    assert!(r.matches(b"HTTP/1.0 200 OK\r\n\r\nSTATUS: OK 3"));

    let l = strict(&vs("    regex_no_match\n    regex_min_offset 4\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert!(url_of(&l).regex.is_none());
    let m = messages(&l).join("\n");
    assert!(m.contains("regex_no_match without a regex") && m.contains("regex_min_offset without a regex"), "{m}");

    let l = strict(&vs("    regex ok\n    regex_min_offset 9\n    regex_max_offset 8\n    regex_stack 1024 65536\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    let r = url_of(&l).regex.expect("the regex");
    assert_eq!((r.conf.min_offset, r.conf.max_offset), (0, None), "crossed offsets: both ignored");

    let m = messages(&l).join("\n");
    assert!(m.contains("past regex_max_offset 8") && m.contains("'regex_stack' is accepted and not honoured"), "{m}");

    let l = strict(&vs("    regex ok\n    regex_options caseless sloppy\n"));
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert_eq!(url_of(&l).regex.expect("the regex").conf.options, ["caseless"]);
    assert!(messages(&l).iter().any(|m| m.contains("'sloppy' is no PCRE2 option")), "{:?}", messages(&l));

    for (url, why) in [
        ("    regex \"(?<=a)b\"\n", "look-around"),
        ("    regex a\n    regex_options ucp\n", "regex_options ucp"),
        ("    regex a b\n", "regex takes one pattern"),
    ] {
        let l = strict(&vs(url));
        assert!(l.has_errors(), "{url}");
        assert!(messages(&l).iter().any(|m| m.contains(why)), "{url}: {:?}", messages(&l));
    }
}

/// keepalived 2.2.7's `bfd_instance` (bfd_parser.c): every keyword, its defaults (TTL 255
/// for IPv4 and 64 for IPv6), intervals in milliseconds with up to 3 decimals, and what
/// keepalived refuses with an error (no neighbour, families that differ, a neighbour and
/// source used twice) refused; `track_bfd` must name a bfd_instance VRRP may track.
#[test]
fn bfd_instances_and_track_bfd_read_as_keepalived() {
    let text = "bfd_instance to_b {\n neighbor_ip 10.0.0.2\n source_ip 10.0.0.1\n min_rx 50\n min_tx 20.5\n \
                idle_tx 2000\n multiplier 3\n passive\n ttl 254\n max_hops 2\n weight -20 reverse\n}\n\
                bfd_instance v6 {\n neighbour_ip fd00::2\n max_hops -1\n}\n";
    let inst = MINIMAL.replace(" interface eth0\n", " interface eth0\n track_bfd {\n  to_b\n  v6 weight 10\n }\n");
    let l = strict(&format!("{text}{inst}"));
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let b = &l.config.bfd_instances;
    assert_eq!(
        (b[0].neighbor.to_string(), b[0].source.map(|s| s.to_string())),
        ("10.0.0.2".into(), Some("10.0.0.1".into()))
    );
    assert_eq!((b[0].min_rx_us, b[0].min_tx_us, b[0].idle_tx_us, b[0].multiplier), (50_000, 20_500, 2_000_000, 3));
    assert_eq!(
        (b[0].passive, b[0].ttl, b[0].max_hops, b[0].weight, b[0].weight_reverse),
        (true, 254, Some(2), -20, true)
    );
    assert_eq!((b[1].min_rx_us, b[1].min_tx_us, b[1].idle_tx_us, b[1].multiplier), (10_000, 10_000, 1_000_000, 5));
    assert_eq!((b[1].ttl, b[1].max_hops, b[1].passive, b[1].vrrp), (64, None, false, true));
    let t = &l.config.vrrp_instances[0].track_bfd;
    assert_eq!((t[0].name.as_str(), t[0].weight, t[1].name.as_str(), t[1].weight), ("to_b", None, "v6", Some(10)));

    for (conf, want) in [
        ("bfd_instance b {\n min_rx 10\n}\n", "t.conf:1: error: bfd_instance b has no neighbor_ip"),
        (
            "bfd_instance b {\n neighbor_ip 10.0.0.2\n source_ip fd00::1\n}\n",
            "t.conf:1: error: bfd_instance b: source_ip and neighbor_ip are of different families",
        ),
        (
            "bfd_instance b {\n neighbor_ip 10.0.0.2\n idle_tx 500\n}\n",
            "t.conf:3: error: bfd_instance b: idle_tx '500' is not milliseconds (up to 3 decimals) of at least 1000",
        ),
        (
            "bfd_instance b {\n neighbor_ip 10.0.0.2\n min_rx 1.2345\n}\n",
            "t.conf:3: error: bfd_instance b: min_rx '1.2345' is not milliseconds (up to 3 decimals) of at least 1",
        ),
        (
            "bfd_instance b {\n neighbor_ip 10.0.0.2\n}\nbfd_instance c {\n neighbor_ip 10.0.0.2\n}\n",
            "t.conf:4: error: bfd_instance c: bfd_instance b already has neighbor 10.0.0.2 (from this source, or from any)",
        ),
        (
            "bfd_instance b {\n neighbor_ip 10.0.0.2\n}\nbfd_instance c {\n neighbor_ip 10.0.0.2\n source_ip 10.0.0.1\n}\n",
            "t.conf:4: error: bfd_instance c: bfd_instance b already has neighbor 10.0.0.2 (from this source, or from any)",
        ),
        (
            "bfd_instance b {\n neighbor_ip 10.0.0.2\n ttl 10\n max_hops 20\n}\n",
            "t.conf:1: warning: bfd_instance b: max_hops 20 exceeds ttl/hoplimit 10: set to 10",
        ),
        (
            "bfd_instance b {\n neighbor_ip 10.0.0.2\n echo\n}\n",
            "t.conf:3: error: unknown keyword 'echo' in bfd_instance b",
        ),
    ] {
        let l = strict(conf);
        assert!(messages(&l).contains(&want.to_string()), "{conf}: {:?}", messages(&l));
    }
    let none = MINIMAL.replace(" interface eth0\n", " interface eth0\n track_bfd {\n  nope\n }\n");
    assert!(
        messages(&strict(&none)).iter().any(|m| m.ends_with("track_bfd nope names no bfd_instance")),
        "{:?}",
        messages(&strict(&none))
    );
    let checker = format!("bfd_instance c {{\n neighbor_ip 10.0.0.2\n checker\n}}\n{}", none.replace("nope", "c"));
    assert!(
        messages(&strict(&checker))
            .iter()
            .any(|m| m.ends_with("track_bfd c: that bfd_instance is for the checker only ('checker')")),
        "{:?}",
        messages(&strict(&checker))
    );
}

/// keepalived's `track_src_ip` is read; without a configured source it tracks nothing,
/// said.
#[test]
fn track_src_ip_is_read_and_needs_a_source() {
    let with = MINIMAL.replace(" interface eth0\n", " interface eth0\n track_src_ip\n unicast_src_ip 10.0.0.1\n");
    let l = strict(&with);
    assert!(l.diagnostics.is_empty() && l.config.vrrp_instances[0].track_src_ip, "{:?}", messages(&l));
    let l = strict(&MINIMAL.replace(" interface eth0\n", " interface eth0\n track_src_ip\n"));
    assert_eq!(
        messages(&l),
        ["t.conf:1: warning: vrrp_instance VI_1: track_src_ip without unicast_src_ip or mcast_src_ip: nothing to track (as keepalived)"]
    );
}

/// keepalived 2.2.7's authentication rules: `auth_type AH` read; a password without
/// `auth_type` is no authentication (keepalived's type defaults to none), a type without
/// a password is ignored, and an AH instance that is not the address owner does not start
/// as MASTER (it must hear the sequence number in use first).
#[test]
fn authentication_reads_as_keepalived() {
    let with = |auth: &str, extra: &str| {
        MINIMAL.replace(" interface eth0\n", &format!(" interface eth0\n{extra} authentication {{\n{auth} }}\n"))
    };
    let l = strict(&with("  auth_type AH\n  auth_pass secret\n", ""));
    let i = &l.config.vrrp_instances[0];
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!((i.auth_ah, i.auth(), i.state), (true, crate::vrrp::packet::Auth::Ah, InitialState::Backup));
    let l = strict(&with("  auth_pass secret\n", ""));
    assert_eq!(l.config.vrrp_instances[0].auth(), crate::vrrp::packet::Auth::None);
    assert!(
        has(&l, "auth_pass without auth_type: no authentication, as keepalived (say auth_type PASS)"),
        "{:?}",
        messages(&l)
    );
    let l = strict(&with("  auth_type PASS\n", ""));
    assert_eq!(l.config.vrrp_instances[0].auth(), crate::vrrp::packet::Auth::None);
    assert!(has(&l, "authentication without auth_pass: ignored (as keepalived)"), "{:?}", messages(&l));
    let l = strict(&with("  auth_type AH\n  auth_pass secret\n", " state MASTER\n priority 150\n"));
    assert_eq!(l.config.vrrp_instances[0].state, InitialState::Backup);
    assert!(
        has(&l, "initial state MASTER is incompatible with AH authentication: starts as BACKUP"),
        "{:?}",
        messages(&l)
    );
    let l = strict(&with("  auth_type AH\n  auth_pass secret\n", " state MASTER\n priority 255\n"));
    assert_eq!(l.config.vrrp_instances[0].state, InitialState::Master, "the owner starts as MASTER");
}

/// What rvsd's own check refuses in a service is an error of `-t`, at its virtual
/// server: rvsd would refuse the whole set (every other service with it).
#[test]
fn what_rvsd_would_refuse_is_an_error_at_its_virtual_server() {
    let conf = |rs_body: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n lb_kind NAT\n protocol TCP\n real_server 10.0.1.1 80 {{\n{rs_body} }}\n}}\n"
        )
    };
    assert!(errors(&strict(&conf("  uthreshold 10\n  lthreshold 5\n"))).is_empty());
    let e = errors(&strict(&conf("  uthreshold 5\n  lthreshold 10\n")));
    assert_eq!(
        e,
        ["t.conf:1: error: rvsd would refuse this (and with it every other service): tcp 10.0.0.1:80: real server \
          10.0.1.1:80: lower threshold 10 is above the upper threshold 5"]
    );
}
