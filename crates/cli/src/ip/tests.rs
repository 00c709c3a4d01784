//! rvsip: argument tables and golden output.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ctl::{AddrView, LinkChange, LinkStats, LinkView, NeighView, Request, Response, RouteScope, RouteSpec, WorkerView};
use fnat::stats::Counters;
use ipnet::IpNet;
use wire::EthernetAddress;

use super::*;
use crate::fake::FakeCtl;

fn argv(s: &str) -> Vec<&str> {
    std::iter::once("rvsip").chain(s.split_whitespace()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn change(s: &str) -> Request {
    match parse(&argv(s)) {
        Ok(IpCmd::Change(r)) => r,
        other => panic!("{s}: {other:?}"),
    }
}

fn route(prefix: &str, via: Option<&str>, dev: &str, scope: RouteScope, src: Option<&str>, metric: u32) -> RouteSpec {
    RouteSpec {
        prefix: net(prefix),
        via: via.map(ip),
        dev: dev.into(),
        scope,
        src: src.map(ip),
        metric,
        connected: false,
    }
}

/// Each command line of `table` is refused with a one-line usage error (exit status
/// 2) starting with its text.
fn refused(table: &[(&str, &str)]) {
    for &(args, want) in table {
        match parse(&argv(args)) {
            Err(e) => {
                let got = e.to_string();
                assert!(got.starts_with(want), "{args}: got {got:?}, want {want:?}");
                assert!(!got.contains('\n'), "{args}");
                assert_eq!(e.exit_code(), 2);
            }
            Ok(c) => panic!("{args}: accepted as {c:?}"),
        }
    }
}

#[test]
fn changes() {
    let mac: EthernetAddress = "02:00:00:00:00:11".parse().unwrap();
    let table: Vec<(&str, Request)> = vec![
        (
            "link set dpdk0 up",
            Request::LinkSet { dev: "dpdk0".into(), change: LinkChange { up: Some(true), ..Default::default() } },
        ),
        (
            "vlan add dpdk0.102 link dpdk0 id 102",
            Request::VlanAdd { name: "dpdk0.102".into(), link: "dpdk0".into(), id: 102 },
        ),
        (
            "vlan add link dpdk1 proto 802.1q id 7",
            Request::VlanAdd { name: "dpdk1.7".into(), link: "dpdk1".into(), id: 7 },
        ),
        ("vlan del dpdk0.102", Request::VlanDel { name: "dpdk0.102".into() }),
        (
            "link set dpdk0 down",
            Request::LinkSet { dev: "dpdk0".into(), change: LinkChange { up: Some(false), ..Default::default() } },
        ),
        (
            "link set dev dpdk0 link up",
            Request::LinkSet { dev: "dpdk0".into(), change: LinkChange { up: Some(true), ..Default::default() } },
        ),
        (
            "link set dpdk1 promisc on forward2kni off",
            Request::LinkSet {
                dev: "dpdk1".into(),
                change: LinkChange { up: None, promisc: Some(true), forward2kni: Some(false), mac: None },
            },
        ),
        (
            "link set dpdk0 addr 02:00:00:00:aa:01",
            Request::LinkSet {
                dev: "dpdk0".into(),
                change: LinkChange { mac: Some("02:00:00:00:aa:01".parse().unwrap()), ..Default::default() },
            },
        ),
        (
            "addr add 198.19.0.10/24 dev dpdk1 sapool",
            Request::AddrAdd { dev: "dpdk1".into(), addr: net("198.19.0.10/24"), sapool: true, lease: false },
        ),
        (
            "addr add 198.18.0.100 dev dpdk0",
            Request::AddrAdd { dev: "dpdk0".into(), addr: net("198.18.0.100/32"), sapool: false, lease: false },
        ),
        (
            "-6 addr add 2001:db8::1/64 dev dpdk0",
            Request::AddrAdd { dev: "dpdk0".into(), addr: net("2001:db8::1/64"), sapool: false, lease: false },
        ),
        (
            "a a 198.18.0.100 dev dpdk0",
            Request::AddrAdd { dev: "dpdk0".into(), addr: net("198.18.0.100/32"), sapool: false, lease: false },
        ),
        ("addr del 198.19.0.10/24 dev dpdk1", Request::AddrDel { dev: "dpdk1".into(), addr: ip("198.19.0.10") }),
        (
            "route add 198.19.0.0/24 dev dpdk1 scope link",
            Request::RouteAdd(route("198.19.0.0/24", None, "dpdk1", RouteScope::Link, None, 0)),
        ),
        (
            "route add default via 198.18.0.1 dev dpdk0",
            Request::RouteAdd(route("0.0.0.0/0", Some("198.18.0.1"), "dpdk0", RouteScope::Global, None, 0)),
        ),
        (
            "-6 route add default via 2001:db8::ff dev dpdk0",
            Request::RouteAdd(route("::/0", Some("2001:db8::ff"), "dpdk0", RouteScope::Global, None, 0)),
        ),
        (
            "route add 198.18.0.100/32 scope kni_host dev dpdk0",
            Request::RouteAdd(route("198.18.0.100/32", None, "dpdk0", RouteScope::KniHost, None, 0)),
        ),
        (
            "route add 198.18.0.100 dev dpdk0 scope kni_host",
            Request::RouteAdd(route("198.18.0.100/32", None, "dpdk0", RouteScope::KniHost, None, 0)),
        ),
        (
            "-4 route add 10.0.0.0/8 via 198.19.0.1 dev dpdk1 src 198.19.0.10 metric 10",
            Request::RouteAdd(route(
                "10.0.0.0/8",
                Some("198.19.0.1"),
                "dpdk1",
                RouteScope::Global,
                Some("198.19.0.10"),
                10,
            )),
        ),
        (
            "-6 route add 2001:db8:1::/64 dev dpdk1",
            Request::RouteAdd(route("2001:db8:1::/64", None, "dpdk1", RouteScope::Global, None, 0)),
        ),
        ("route del 10.0.0.0/8", Request::RouteDel { prefix: net("10.0.0.0/8"), metric: None }),
        ("route del 10.0.0.0/8 dev dpdk1 metric 10", Request::RouteDel { prefix: net("10.0.0.0/8"), metric: Some(10) }),
        ("route del default", Request::RouteDel { prefix: net("0.0.0.0/0"), metric: None }),
        (
            "neigh add 198.19.0.11 lladdr 02:00:00:00:00:11 dev dpdk1",
            Request::NeighAdd { addr: ip("198.19.0.11"), mac, dev: "dpdk1".into() },
        ),
        ("neigh del 198.19.0.11", Request::NeighDel { addr: ip("198.19.0.11") }),
        ("neigh delete 198.19.0.11 dev dpdk1", Request::NeighDel { addr: ip("198.19.0.11") }),
    ];
    for (args, want) in table {
        assert_eq!(change(args), want, "{args}");
    }
}

#[test]
fn listings() {
    let p = |s: &str| parse(&argv(s)).unwrap();
    let link =
        |dev: Option<&str>, stats, json| IpCmd::LinkShow { dev: dev.map(String::from), stats, verbose: false, json };
    assert_eq!(p("link show"), link(None, false, false));
    assert_eq!(p("link"), link(None, false, false));
    assert_eq!(p("l"), link(None, false, false));
    assert_eq!(p("link show -s"), link(None, true, false));
    assert_eq!(p("-s link show"), link(None, true, false));
    assert_eq!(p("link -s"), link(None, true, false));
    assert_eq!(p("--stats link show dpdk0"), link(Some("dpdk0"), true, false));
    assert_eq!(p("link show dpdk0 -s"), link(Some("dpdk0"), true, false));
    assert_eq!(p("link show dev dpdk0"), link(Some("dpdk0"), false, false));
    assert_eq!(p("link show --json"), link(None, false, true));
    assert_eq!(p("--json link show"), link(None, false, true));
    assert_eq!(p("addr show"), IpCmd::AddrShow { dev: None, family: None, json: false });
    assert_eq!(p("addr"), IpCmd::AddrShow { dev: None, family: None, json: false });
    assert_eq!(
        p("-6 addr show dev dpdk0"),
        IpCmd::AddrShow { dev: Some("dpdk0".into()), family: Some(Family::V6), json: false }
    );
    assert_eq!(p("route show"), IpCmd::RouteShow { family: None, json: false });
    assert_eq!(p("-4 route"), IpCmd::RouteShow { family: Some(Family::V4), json: false });
    assert_eq!(p("r ls"), IpCmd::RouteShow { family: None, json: false });
    assert_eq!(p("neigh show"), IpCmd::NeighShow { dev: None, family: None, json: false });
    assert_eq!(
        p("neigh show dev dpdk1 --json"),
        IpCmd::NeighShow { dev: Some("dpdk1".into()), family: None, json: true }
    );
    assert_eq!(p("stats"), IpCmd::Stats { once: false, json: false });
    assert_eq!(p("stats --once"), IpCmd::Stats { once: true, json: false });
    assert_eq!(p("--once stats"), IpCmd::Stats { once: true, json: false });
    assert_eq!(p("stats --json"), IpCmd::Stats { once: false, json: true });
    assert!(matches!(p("help"), IpCmd::Print(t) if t.contains("neigh add")));
    assert!(matches!(p("--help"), IpCmd::Print(_)));
}

/// dpip's habits: options anywhere (getopt permutes), `-f inet6`, `-v`, `-i/-c`, a
/// route via a gateway without dev, `addr flush`, help without a socket.
#[test]
fn dpip_habits() {
    let p = |s: &str| parse(&argv(s)).unwrap();
    let v6_default = Request::RouteAdd(route("::/0", Some("2001:db8::ff"), "", RouteScope::Global, None, 0));
    assert_eq!(p("route -6 add default via 2001:db8::ff"), IpCmd::Change(v6_default.clone()));
    assert_eq!(p("route add default via 2001:db8::ff -6"), IpCmd::Change(v6_default.clone()));
    assert_eq!(p("-f inet6 route add default via 2001:db8::ff"), IpCmd::Change(v6_default));
    assert_eq!(
        p("route add default via 198.18.0.1"),
        IpCmd::Change(Request::RouteAdd(route("0.0.0.0/0", Some("198.18.0.1"), "", RouteScope::Global, None, 0)))
    );
    assert_eq!(p("addr show -6"), IpCmd::AddrShow { dev: None, family: Some(Family::V6), json: false });
    assert_eq!(
        p("link show dpdk0 -sv"),
        IpCmd::LinkShow { dev: Some("dpdk0".into()), stats: true, verbose: true, json: false }
    );
    assert_eq!(
        p("-s -i 2 -c 3 link show"),
        IpCmd::Repeat {
            every: std::time::Duration::from_secs(2),
            count: 3,
            cmd: Box::new(IpCmd::LinkShow { dev: None, stats: true, verbose: false, json: false })
        }
    );
    assert!(matches!(p("stats -i 1"), IpCmd::Repeat { count: 0, .. }));
    assert_eq!(p("addr flush dev dpdk1"), IpCmd::AddrFlush { dev: "dpdk1".into() });
    assert_eq!(p("a f dev dpdk1"), IpCmd::AddrFlush { dev: "dpdk1".into() });
    // Capture's own -c and -t stay capture's.
    assert!(matches!(p("capture dpdk0 -c 5 -t 3"), IpCmd::Capture(Request::Capture { count: 5, timeout_s: 3, .. })));
    for help in ["capture --help", "capture dpdk0 -h", "route help"] {
        assert!(matches!(p(help), IpCmd::Print(t) if t.contains("rvsip capture")), "{help}");
    }
}

#[test]
fn repeat_and_flush_run_as_dpip() {
    let (out, ctl) = run_ip(
        "-i 1 -c 2 link show",
        vec![Response::Links { links: links(false) }, Response::Links { links: links(false) }],
    );
    assert_eq!(ctl.paused, vec![std::time::Duration::from_secs(1)], "one pause between two listings");
    assert_eq!(out.matches("dpdk0").count(), 2, "{out}");
    let addrs = Response::Addrs { addrs: addrs() };
    let done = || Response::Done { gen: 1 };
    let (_, ctl) = run_ip("addr flush dev dpdk1", vec![addrs, done(), done(), done(), done()]);
    let dels: Vec<_> =
        ctl.requests.iter().filter(|r| matches!(r, Request::AddrDel { dev, .. } if dev == "dpdk1")).collect();
    assert!(!dels.is_empty() && dels.len() + 1 == ctl.requests.len(), "{:?}", ctl.requests);
}

#[test]
fn bad_input_is_one_line_naming_the_problem() {
    let table = [
        ("", "no object given (link, addr, route, neigh, vlan, fwmark, deny, stats; 'rvsip help' for help)"),
        ("links show", "unknown object 'links' (link, addr, route, neigh, vlan, fwmark, deny, stats, capture)"),
        ("vlan add link dpdk0", "vlan add needs link DEV and id VLAN-ID: vlan add [NAME] link DEV id VLAN-ID"),
        ("vlan add link dpdk0 id 4095", "VLAN id 4095 out of range (1..=4094)"),
        ("vlan add link dpdk0 proto qinq id 5", "vlan add: 802.1ad (QinQ) is not supported; 802.1q only"),
        ("vlan add link dpdk0 proto ip id 5", "vlan add: unknown proto 'ip' (802.1q, vlan)"),
        ("vlan del link dpdk0", "vlan del takes NAME, or link DEV id VLAN-ID"),
        ("vlan del dpdk0.5 link dpdk0 id 5", "vlan del takes NAME, or link DEV id VLAN-ID"),
        ("--frob link", "unexpected argument '--frob' found"),
        ("link sett dpdk0 up", "unknown command 'sett' for link (show, set)"),
        ("link add dpdk0", "link takes show or set"),
        ("route frob", "unknown command 'frob' for route (show, add, del)"),
        (
            "link set dpdk0",
            "link set dpdk0: nothing to change (up, down, promisc on|off, forward2kni on|off, addr MAC)",
        ),
        ("link set dpdk0 addr 02:00:00:00:00", "link set: addr takes a MAC, not '02:00:00:00:00'"),
        ("link set up", "link set needs a port"),
        ("link set dpdk0 promisc of", "link set: promisc takes on or off, not 'of'"),
        ("link set dpdk0 promisc", "link set: 'promisc' needs a value"),
        ("addr add 198.19.0.10/24", "addr add 198.19.0.10/24 needs a port: dev DEV"),
        ("addr add 198.19.0.300/24 dev dpdk0", "bad address '198.19.0.300/24' (expected ADDR/LEN)"),
        ("addr add dev dpdk0", "addr add needs an address: addr add ADDR[/LEN] dev DEV"),
        ("addr add 198.19.0.10 dev dpdk0 scope host", "unknown argument 'scope' for addr add"),
        ("-6 addr add 198.19.0.10 dev dpdk0", "address 198.19.0.10 is not IPv6 (-6)"),
        ("route add 10.0.0.1/8 dev dpdk0", "prefix 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"),
        (
            "route add 10.0.0.0/8 via 10.0.0.300 dev dpdk0",
            "bad gateway '10.0.0.300' (expected an IPv4 or IPv6 address)",
        ),
        (
            "route add 10.0.0.0/8 via 2001:db8::1 dev dpdk0",
            "route add 10.0.0.0/8: gateway 2001:db8::1 is not of the prefix's address family",
        ),
        ("route add 10.0.0.0/8", "route add 10.0.0.0/8 needs a port (dev DEV) or a gateway (via GW)"),
        ("-C link show", "-C/--color: valid dpip that rvsip does not support"),
        ("-f ipx route", "invalid family 'ipx' (inet or inet6)"),
        ("addr flush", "addr flush needs a port: addr flush dev DEV"),
        ("-c 3 link show", "missing option '-i'"),
        ("-i 1 route show", "-i/-c repeat link show and stats only"),
        ("-i 0 stats", "interval 0 out of range (1..=86400)"),
        ("route add 10.0.0.0/8 dev dpdk0 scope host", "route add: unknown scope 'host' (kni_host, link, global)"),
        ("route add 10.0.0.0/8 dev dpdk0 metric -1", "bad metric '-1' (expected a number 0..=4294967295)"),
        ("route add dev dpdk0", "route add needs a prefix: route add PREFIX|default ..."),
        ("-4 -6 route", "give one of -4 and -6, not both"),
        ("-6 route add 10.0.0.0/8 dev dpdk0", "prefix 10.0.0.0/8 is not IPv6 (-6)"),
        ("route show extra", "unknown argument 'extra' for route show"),
        ("neigh add 198.19.0.11 dev dpdk1", "neigh add 198.19.0.11 needs lladdr MAC"),
        ("neigh add 198.19.0.11 lladdr 02:00:00:00:00 dev dpdk1", "bad MAC '02:00:00:00:00': invalid Ethernet address"),
        ("neigh add 198.19.0.11 lladdr 02:00:00:00:00:11", "neigh add 198.19.0.11 needs a port: dev DEV"),
        ("neigh add", "neigh add needs an address"),
        ("stats now", "unknown command 'now' for stats (show)"),
        ("stats show now", "unknown argument 'now' for stats show"),
        ("stats add", "stats takes only show"),
    ];
    refused(&table);
}

// ---- output --------------------------------------------------------------------

fn links(stats: bool) -> Vec<LinkView> {
    vec![
        LinkView {
            id: 0,
            name: "dpdk0".into(),
            device: "net_af_packet0".into(),
            driver: "net_af_packet".into(),
            mac: "aa:bb:cc:dd:ee:ff".parse().unwrap(),
            mtu: 1500,
            up: true,
            speed_mbps: 10000,
            full_duplex: true,
            promisc: true,
            forward2kni: false,
            rx_queues: 2,
            tx_queues: 2,
            socket: 0,
            bond: None,
            stats: stats.then(|| LinkStats {
                ipackets: 1000,
                opackets: 900,
                ibytes: 64000,
                obytes: 57600,
                imissed: 1,
                ierrors: 2,
                oerrors: 3,
                rx_nombuf: 4,
                q_ipackets: vec![600, 400],
                q_opackets: vec![500, 400],
            }),
        },
        LinkView {
            id: 1,
            name: "dpdk1".into(),
            device: "net_af_packet1".into(),
            driver: "net_af_packet".into(),
            mac: "aa:bb:cc:dd:ee:01".parse().unwrap(),
            mtu: 9000,
            up: false,
            speed_mbps: 0,
            full_duplex: false,
            promisc: false,
            forward2kni: true,
            rx_queues: 1,
            tx_queues: 1,
            socket: -1,
            bond: None,
            stats: None,
        },
    ]
}

fn run_ip(args: &str, replies: Vec<Response>) -> (String, FakeCtl) {
    let cmd = parse(&argv(args)).unwrap();
    let mut ctl = FakeCtl::new(replies);
    let mut out = Vec::new();
    run(&cmd, &mut ctl, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), ctl)
}

#[test]
fn vlan_show_golden_and_delete_by_link() {
    let v = |name: &str, link: &str, id| ctl::VlanView { name: name.into(), link: link.into(), id, twin: None };
    let all = vec![v("dpdk0.100", "dpdk0", 100), v("dpdk0.200", "dpdk0", 200), v("v7", "dpdk1", 7)];
    let (out, ctl) = run_ip("vlan show", vec![Response::Vlans { vlans: all.clone() }]);
    assert_eq!(
        out,
        "dpdk0.100 link dpdk0 proto 802.1q id 100\ndpdk0.200 link dpdk0 proto 802.1q id 200\nv7 link dpdk1 proto 802.1q id 7\n"
    );
    assert_eq!(ctl.requests, vec![Request::VlanList {}]);
    let (out, _) = run_ip("vlan show link dpdk0 id 200", vec![Response::Vlans { vlans: all.clone() }]);
    assert_eq!(out, "dpdk0.200 link dpdk0 proto 802.1q id 200\n");
    let (out, _) = run_ip("vlan show v7 --json", vec![Response::Vlans { vlans: all.clone() }]);
    assert!(out.contains("\"v7\"") && !out.contains("dpdk0.100"), "{out}");
    let (_, ctl) =
        run_ip("vlan del link dpdk0 id 200", vec![Response::Vlans { vlans: all.clone() }, Response::Done { gen: 2 }]);
    assert_eq!(ctl.requests, vec![Request::VlanList {}, Request::VlanDel { name: "dpdk0.200".into() }]);
    let mut ctl = FakeCtl::new(vec![Response::Vlans { vlans: all }]);
    let e = run(&parse(&argv("vlan del link dpdk1 id 8")).unwrap(), &mut ctl, &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "no VLAN 8 on dpdk1");
}

#[test]
fn link_show_golden() {
    let (out, ctl) = run_ip("link show", vec![Response::Links { links: links(false) }]);
    let want = "\
1: dpdk0: socket 0 mtu 1500 rx-queue 2 tx-queue 2
    UP 10000 Mbps full-duplex promisc-on forward2kni-off
    addr aa:bb:cc:dd:ee:ff driver net_af_packet
2: dpdk1: socket -1 mtu 9000 rx-queue 1 tx-queue 1
    DOWN 0 Mbps half-duplex promisc-off forward2kni-on
    addr aa:bb:cc:dd:ee:01 driver net_af_packet
";
    assert_eq!(out, want);
    assert_eq!(ctl.requests, vec![Request::LinkList { stats: false }]);
}

#[test]
fn link_show_stats_golden() {
    let (out, ctl) = run_ip("-s link show dpdk0", vec![Response::Links { links: links(true) }]);
    let want = "\
1: dpdk0: socket 0 mtu 1500 rx-queue 2 tx-queue 2
    UP 10000 Mbps full-duplex promisc-on forward2kni-off
    addr aa:bb:cc:dd:ee:ff driver net_af_packet
    ipackets            opackets            ibytes              obytes              
    1000                900                 64000               57600               
    ierrors             oerrors             imissed             rx_nombuf           
    2                   3                   1                   4                   
    queue               ipackets            opackets            
    0                   600                 500                 
    1                   400                 400                 
";
    assert_eq!(out, want);
    assert_eq!(ctl.requests, vec![Request::LinkList { stats: true }]);
    // an unknown port is an error, exit 1
    let cmd = parse(&argv("link show dpdk9")).unwrap();
    let mut ctl = FakeCtl::new(vec![Response::Links { links: links(false) }]);
    let e = run(&cmd, &mut ctl, &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "no port dpdk9");
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn link_json_is_the_reply() {
    let (out, _) = run_ip("link show dpdk1 --json", vec![Response::Links { links: links(false) }]);
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    assert_eq!(back.resp, Response::Links { links: links(false)[1..].to_vec() });
}

fn addrs() -> Vec<AddrView> {
    vec![
        AddrView { dev: "dpdk0".into(), addr: net("198.18.0.100/32"), sapool: false, vip: true },
        AddrView { dev: "dpdk1".into(), addr: net("198.19.0.10/24"), sapool: true, vip: false },
        AddrView { dev: "dpdk0".into(), addr: net("2001:db8::1/64"), sapool: false, vip: false },
    ]
}

#[test]
fn addr_show_golden() {
    let (out, ctl) = run_ip("addr show", vec![Response::Addrs { addrs: addrs() }]);
    let want = "\
inet 198.18.0.100/32 scope global dpdk0
     valid_lft forever preferred_lft forever vip
inet 198.19.0.10/24 scope global dpdk1
     valid_lft forever preferred_lft forever sapool
inet6 2001:db8::1/64 scope global dpdk0
     valid_lft forever preferred_lft forever
";
    assert_eq!(out, want);
    assert_eq!(ctl.requests, vec![Request::AddrList {}]);
    let (out, _) = run_ip("-4 addr show dev dpdk0", vec![Response::Addrs { addrs: addrs() }]);
    assert_eq!(out, "inet 198.18.0.100/32 scope global dpdk0\n     valid_lft forever preferred_lft forever vip\n");
}

#[test]
fn route_show_golden() {
    let mut connected = route("198.19.0.0/24", None, "dpdk1", RouteScope::Link, Some("198.19.0.10"), 0);
    connected.connected = true;
    let routes = vec![
        connected,
        route("0.0.0.0/0", Some("198.18.0.1"), "dpdk0", RouteScope::Global, None, 0),
        route("198.18.0.100/32", None, "dpdk0", RouteScope::KniHost, None, 0),
        route("2001:db8:1::/64", None, "dpdk1", RouteScope::Link, None, 5),
    ];
    let (out, _) = run_ip("route show", vec![Response::Routes { routes: routes.clone() }]);
    let want = "\
inet 198.19.0.0/24 via 0.0.0.0 src 198.19.0.10 dev dpdk1 scope link metric 0 proto auto
inet 0.0.0.0/0 via 198.18.0.1 src 0.0.0.0 dev dpdk0 scope global metric 0 proto static
inet 198.18.0.100/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 scope kni_host metric 0 proto static
inet6 2001:db8:1::/64 via :: src :: dev dpdk1 scope link metric 5 proto static
";
    assert_eq!(out, want);
    let (out, _) = run_ip("-6 route show", vec![Response::Routes { routes }]);
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn neigh_show_golden() {
    let neighs = vec![
        NeighView {
            addr: ip("198.19.0.11"),
            mac: "02:00:00:00:00:11".parse().unwrap(),
            dev: "dpdk1".into(),
            state: "static".into(),
        },
        NeighView {
            addr: ip("198.18.0.2"),
            mac: "02:00:00:00:00:02".parse().unwrap(),
            dev: "dpdk0".into(),
            state: "reachable".into(),
        },
    ];
    let (out, ctl) = run_ip("neigh show", vec![Response::Neighs { neighs: neighs.clone(), next: None }]);
    let want = "\
ip: 198.19.0.11                                      mac: 02:00:00:00:00:11   state: STATIC        dev: dpdk1
ip: 198.18.0.2                                       mac: 02:00:00:00:00:02   state: REACHABLE     dev: dpdk0
";
    assert_eq!(out, want);
    assert_eq!(ctl.requests, vec![Request::NeighList { after: None, max: Some(super::NEIGH_PAGE) }]);
    // Pages are followed to the end; the output is the same as from one page.
    let pages = vec![
        Response::Neighs { neighs: neighs[..1].to_vec(), next: Some(neighs[0].addr) },
        Response::Neighs { neighs: neighs[1..].to_vec(), next: None },
    ];
    let (paged, ctl) = run_ip("neigh show", pages);
    assert_eq!(paged, want);
    assert_eq!(ctl.requests[1], Request::NeighList { after: Some(ip("198.19.0.11")), max: Some(super::NEIGH_PAGE) });
    let (out, _) = run_ip("neigh show dev dpdk0 --json", vec![Response::Neighs { neighs: neighs.clone(), next: None }]);
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    assert_eq!(back.resp, Response::Neighs { neighs: neighs[1..].to_vec(), next: None });
}

fn worker(id: u16, rx: u64, tx: u64, loops: u64, busy: u64, drops: &[(&str, u64)]) -> WorkerView {
    WorkerView {
        id,
        lcore: u32::from(id) + 1,
        gen: 7,
        conns: 10 * u64::from(id + 1),
        tables: Default::default(),
        rx_packets: rx,
        tx_packets: tx,
        totals: Counters::default(),
        loops,
        busy_loops: busy,
        drops: drops.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn stats_rates_golden() {
    let first = vec![worker(0, 1000, 900, 1_000_000, 10_000, &[]), worker(1, 500, 500, 2_000_000, 0, &[])];
    let second = vec![
        worker(0, 3000, 2900, 1_250_000, 20_000, &[("no_route", 5), ("bad_checksum", 2)]),
        worker(1, 500, 500, 2_500_000, 0, &[("zero", 0)]),
    ];
    let (out, ctl) = run_ip("stats", vec![Response::Workers { workers: first }, Response::Workers { workers: second }]);
    let want = "\
Worker Lcore      Gen       RxPkts       TxPkts      Conns      RxPPS      TxPPS    Loops/s   Busy
0      1            7         3000         2900         10       2000       2000     250000   4.0%
       drops: bad_checksum=2 no_route=5
1      2            7          500          500         20          0          0     500000   0.0%
";
    assert_eq!(out, want);
    assert_eq!(ctl.paused, vec![STATS_INTERVAL]);
    assert_eq!(ctl.requests, vec![Request::WorkerStats {}, Request::WorkerStats {}]);
}

#[test]
fn stats_once_golden() {
    let mut ws = vec![worker(0, 3000, 2900, 1_000_000, 250_000, &[("no_route", 5)]), worker(1, 0, 0, 0, 0, &[])];
    ws[0].tables = fnat::stats::TableGauges { half_open: 3, unproven: 4, synced: 0 };
    let (out, ctl) = run_ip("stats --once", vec![Response::Workers { workers: ws.clone() }]);
    let want = "\
Worker Lcore      Gen       RxPkts       TxPkts      Conns          Loops   Busy
0      1            7         3000         2900         10        1000000  25.0%
       conns: half_open=3 unproven=4 synced=0
       drops: no_route=5
1      2            7            0            0         20              0      -
";
    assert_eq!(out, want);
    assert!(ctl.paused.is_empty());
    let (out, _) = run_ip("stats --json", vec![Response::Workers { workers: ws.clone() }]);
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    assert_eq!(back.resp, Response::Workers { workers: ws });
    let _ = Duration::ZERO;
}

#[test]
fn changes_are_silent_and_remote_errors_pass_through() {
    let (out, ctl) = run_ip("addr add 198.19.0.10/24 dev dpdk1 sapool", vec![Response::Done { gen: 4 }]);
    assert_eq!(out, "");
    assert_eq!(ctl.requests.len(), 1);
    let cmd = parse(&argv("link set dpdk9 up")).unwrap();
    let mut ctl = FakeCtl::default();
    ctl.replies
        .push_back(Err(ctl::CtlError::Remote { code: ctl::ErrorCode::NotFound, message: "no port dpdk9".into() }));
    let e = run(&cmd, &mut ctl, &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "no port dpdk9");
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn capture_arguments() {
    let req = |cmd: &str| match parse(&std::iter::once("rvsip").chain(cmd.split(' ')).collect::<Vec<_>>()).unwrap() {
        IpCmd::Capture(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        req("capture dpdk0 rx -c 20 -w /tmp/x.pcapng tcp port 80"),
        Request::Capture {
            dev: "dpdk0".into(),
            dir: ctl::CaptureDir::Rx,
            count: 20,
            filter: "tcp port 80".into(),
            path: "/tmp/x.pcapng".into(),
            timeout_s: 30
        }
    );
    let Request::Capture { path, dir, count, filter, .. } = req("capture dpdk1") else { unreachable!() };
    assert!(path.ends_with("/dpdk1.pcapng") && path.starts_with('/'), "relative paths become absolute: {path}");
    assert_eq!((dir, count, filter.as_str()), (ctl::CaptureDir::Both, 100, ""));
    for bad in ["capture", "capture dpdk0 -c", "capture dpdk0 -c 0", "capture dpdk0 -x"] {
        let argv: Vec<&str> = std::iter::once("rvsip").chain(bad.split(' ')).collect();
        assert!(parse(&argv).is_err(), "{bad} must be refused");
    }
}

#[test]
fn link_show_prints_a_bond_and_its_slaves() {
    let mut l = links(false);
    l[0].bond = Some(ctl::BondView {
        mode: "active-backup".into(),
        xmit_policy: None,
        primary: Some(0),
        slaves: vec![
            ctl::SlaveView { device: "net_tap_bs0".into(), up: false, active: false },
            ctl::SlaveView { device: "net_tap_bs1".into(), up: true, active: true },
        ],
    });
    let (out, _) = run_ip("link show dpdk0", vec![Response::Links { links: l.clone() }]);
    assert!(
        out.contains("    bond mode active-backup slaves: net_tap_bs0 (backup,down,primary) net_tap_bs1 (active,up)\n"),
        "{out}"
    );
    if let Some(b) = &mut l[0].bond {
        b.mode = "balance-xor".into();
        b.xmit_policy = Some("layer3+4".into());
    }
    let (out, _) = run_ip("link show dpdk0", vec![Response::Links { links: l }]);
    assert!(out.contains("    bond mode balance-xor xmit layer3+4 slaves: net_tap_bs0"), "{out}");
}

// ---- fwmark rules ----------------------------------------------------------------

fn rule(mark: u32, m: &str) -> fnat::fwmark::FwmarkRule {
    fnat::fwmark::FwmarkRule::from_match(mark, m).unwrap()
}

#[test]
fn fwmark_commands() {
    const M: &str = "proto=tcp,dst-range=192.0.2.1:80-443";
    let web = rule(1, M);
    let table: Vec<(String, Request)> = vec![
        (format!("fwmark add 1 {M}"), Request::FwmarkAdd { rule: web }),
        (format!("fwmark del 1 {M}"), Request::FwmarkDel { rule: web }),
        (format!("fwmark delete 1 {M}"), Request::FwmarkDel { rule: web }),
        (format!("fw a 0x1 {M}"), Request::FwmarkAdd { rule: web }),
        (format!("fwmark d 1 {M}"), Request::FwmarkDel { rule: web }),
        // The match's parts as separate words, or in another order: the same rule.
        ("fwmark add 1 proto=tcp dst-range=192.0.2.1:80-443".into(), Request::FwmarkAdd { rule: web }),
        ("fwmark add 1 dst-range=192.0.2.1:80-443,proto=TCP".into(), Request::FwmarkAdd { rule: web }),
        (
            "fwmark add 0x10 src-range=198.51.100.0/24,dst-range=192.0.2.1-192.0.2.4".into(),
            Request::FwmarkAdd { rule: rule(16, "src-range=198.51.100.0/24,dst-range=192.0.2.1-192.0.2.4") },
        ),
        (
            "-6 fwmark add 2 proto=any,dst-range=[2001:db8::1]:53".into(),
            Request::FwmarkAdd { rule: rule(2, "dst-range=[2001:db8::1]:53") },
        ),
    ];
    for (args, want) in table {
        assert_eq!(change(&args), want, "{args}");
    }
    let Request::FwmarkAdd { rule: r } = change("fwmark add 4294967295 proto=udp,dst-range=192.0.2.1:53") else {
        unreachable!()
    };
    assert_eq!(
        (r.mark, r.proto, r.src_range, r.dst_range.to_string()),
        (u32::MAX, Some(fnat::types::Proto::Udp), None, "192.0.2.1:53".to_string())
    );
    let p = |s: &str| parse(&argv(s)).unwrap();
    assert_eq!(p("fwmark show"), IpCmd::FwmarkShow { family: None, json: false });
    assert_eq!(p("fwmark"), IpCmd::FwmarkShow { family: None, json: false });
    assert_eq!(p("fwmark list"), IpCmd::FwmarkShow { family: None, json: false });
    assert_eq!(p("fwmark ls --json"), IpCmd::FwmarkShow { family: None, json: true });
    assert_eq!(p("--json fw"), IpCmd::FwmarkShow { family: None, json: true });
    assert_eq!(p("-6 fwmark show"), IpCmd::FwmarkShow { family: Some(Family::V6), json: false });
    assert!(matches!(p("fwmark help"), IpCmd::Print(t) if t.contains("rvsip fwmark add|del MARK MATCH")));
}

#[test]
fn fwmark_errors_name_the_part() {
    let table = [
        ("fwmark add", "fwmark add needs a mark and a match: fwmark add MARK MATCH (e.g. 1 proto=tcp,dst-range="),
        ("fwmark add 1", "fwmark add 1 needs a match: fwmark add MARK MATCH"),
        ("fwmark del 0x2", "fwmark del 2 needs a match: fwmark del MARK MATCH"),
        ("fwmark add 0 dst-range=192.0.2.1", "fwmark add: fwmark 0 is no mark (expected 1..=4294967295)"),
        (
            "fwmark add web dst-range=192.0.2.1",
            "fwmark add: invalid fwmark value 'web' (expected an integer 1..=4294967295, decimal or 0x hex)",
        ),
        ("fwmark add 4294967296 dst-range=192.0.2.1", "fwmark add: fwmark 4294967296 out of range (1..=4294967295)"),
        ("fwmark add 1 proto=tcp", "fwmark add: match: dst-range is required"),
        ("fwmark add 1 proto=icmp,dst-range=192.0.2.1", "fwmark add: match proto=icmp: one of tcp, udp, any"),
        ("fwmark add 1 dst-range=192.0.2.9-192.0.2.1", "fwmark add: match dst-range: "),
        (
            "fwmark add 1 dst-range=192.0.2.1 oif=dpdk0",
            "fwmark add: match oif: unknown (known: proto, src-range, dst-range)",
        ),
        ("fwmark add 1 dst-range=192.0.2.1 dst-range=192.0.2.2", "fwmark add: match: dst-range given twice"),
        ("fwmark add 1 192.0.2.1", "fwmark add: match \"192.0.2.1\": not KEY=VALUE"),
        ("fwmark add 1 dst-range=0.0.0.0", "fwmark add: fwmark rule mark 1 dst-range=0.0.0.0-255.255.255.255"),
        ("fwmark add 1 src-range=2001:db8::/64,dst-range=192.0.2.1", "fwmark add: fwmark rule mark 1 src-range="),
        ("-6 fwmark add 1 dst-range=192.0.2.1:80", "dst-range 192.0.2.1:80 is not IPv6 (-6)"),
        ("-4 fwmark del 1 dst-range=[2001:db8::1]:80", "dst-range [2001:db8::1]:80 is not IPv4 (-4)"),
        ("fwmark show 1", "unknown argument '1' for fwmark show"),
        ("fwmark set 1", "unknown command 'set' for fwmark (show, add, del)"),
        ("fwmark flush", "unknown command 'flush' for fwmark (show, add, del)"),
    ];
    refused(&table);
}

#[test]
fn fwmark_show_golden() {
    let rules = vec![
        rule(2, "proto=tcp,src-range=198.51.100.0/24,dst-range=192.0.2.1:80-443"),
        rule(1, "proto=tcp,dst-range=192.0.2.1-192.0.2.4:80-443"),
        rule(3, "dst-range=[2001:db8::1]:53"),
    ];
    let (out, ctl) = run_ip("fwmark show", vec![Response::Fwmark { rules: rules.clone() }]);
    let want = "\
mark 2 proto=tcp,src-range=198.51.100.0-198.51.100.255,dst-range=192.0.2.1:80-443
mark 1 proto=tcp,dst-range=192.0.2.1-192.0.2.4:80-443
mark 3 dst-range=[2001:db8::1]:53
";
    assert_eq!(out, want, "in the order they are tried");
    assert_eq!(ctl.requests, vec![Request::FwmarkList {}]);
    // Each line, as printed, is a match `fwmark del` takes back.
    for line in out.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let del = format!("fwmark del {} {}", words[1], words[2]);
        assert!(matches!(change(&del), Request::FwmarkDel { rule } if rules.contains(&rule)), "{del}");
    }
    let (out, _) = run_ip("-6 fwmark show", vec![Response::Fwmark { rules: rules.clone() }]);
    assert_eq!(out, "mark 3 dst-range=[2001:db8::1]:53\n");
    let (out, _) = run_ip("fwmark show", vec![Response::Fwmark { rules: vec![] }]);
    assert_eq!(out, "", "nothing when there is no rule");
    let (out, _) = run_ip("fwmark show --json", vec![Response::Fwmark { rules: rules.clone() }]);
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    assert_eq!(back.resp, Response::Fwmark { rules });
    // Changes print nothing; rvsd's refusal passes through.
    let (out, ctl) = run_ip("fwmark add 1 dst-range=192.0.2.1", vec![Response::Done { gen: 2 }]);
    assert_eq!((out.as_str(), ctl.requests.len()), ("", 1));
    let mut ctl = FakeCtl::default();
    let msg = "fwmark rule mark 1 dst-range=192.0.2.1 is there already";
    ctl.replies.push_back(Err(ctl::CtlError::Remote { code: ctl::ErrorCode::Exists, message: msg.into() }));
    let e = run(&parse(&argv("fwmark add 1 dst-range=192.0.2.1")).unwrap(), &mut ctl, &mut Vec::new()).unwrap_err();
    assert_eq!((e.to_string().as_str(), e.exit_code()), (msg, 1));
    let mut ctl = FakeCtl::new(vec![Response::Vlans { vlans: vec![] }]);
    let e = run(&parse(&argv("fwmark show")).unwrap(), &mut ctl, &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "bad reply from rvsd: expected fwmark, got vlans");
}

/// `deny`: the global deny set listed through every page, filtered by family, and
/// changed a few prefixes at a time; host bits and families refused by name.
#[test]
fn deny_lists_every_page_and_changes_the_set() {
    let page1 = vec![net("192.0.2.0/24"), net("2001:db8::/32")];
    let page2 = vec![net("198.51.100.7/32")];
    let replies = || {
        vec![
            Response::EdgeDeny { prefixes: page1.clone(), next: Some(2) },
            Response::EdgeDeny { prefixes: page2.clone(), next: None },
        ]
    };
    let (out, ctl) = run_ip("deny show", replies());
    assert_eq!(out, "192.0.2.0/24\n2001:db8::/32\n198.51.100.7/32\n");
    assert_eq!(
        ctl.requests,
        vec![
            Request::EdgeDenyList { from: None, max: Some(ctl::MAX_DENY_PAGE) },
            Request::EdgeDenyList { from: Some(2), max: Some(ctl::MAX_DENY_PAGE) },
        ]
    );
    let (out, _) = run_ip("-4 deny", replies());
    assert_eq!(out, "192.0.2.0/24\n198.51.100.7/32\n");
    let (out, _) = run_ip("deny ls --json", replies());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prefixes"].as_array().map(Vec::len), Some(3), "{out}");

    assert_eq!(
        change("deny add 192.0.2.0/24 2001:db8:bad::1"),
        Request::EdgeDeny {
            change: ctl::EdgeDenyOp::Add,
            prefixes: vec![net("192.0.2.0/24"), net("2001:db8:bad::1/128")]
        }
    );
    assert_eq!(
        change("deny del 198.51.100.7"),
        Request::EdgeDeny { change: ctl::EdgeDenyOp::Del, prefixes: vec![net("198.51.100.7/32")] }
    );
    assert_eq!(
        change("deny set 203.0.113.0/24"),
        Request::EdgeDeny { change: ctl::EdgeDenyOp::Set, prefixes: vec![net("203.0.113.0/24")] }
    );
    assert_eq!(change("deny flush"), Request::EdgeDeny { change: ctl::EdgeDenyOp::Set, prefixes: vec![] });
    refused(&[
        ("deny add", "deny add needs at least one prefix"),
        (
            "deny set",
            "deny set needs at least one prefix: deny set PREFIX... (e.g. 192.0.2.0/24); to empty it: deny flush",
        ),
        ("deny flush 192.0.2.0/24", "unknown argument '192.0.2.0/24' for deny flush"),
        ("deny clear", "unknown command 'clear' for deny (show, add, del, set, flush)"),
        ("deny f", "unknown command 'f' for deny (show, add, del, set, flush)"),
        ("-6 deny flush", "deny flush replaces the whole set, both families: -4/-6 only select what deny show lists"),
        ("deny set -4 192.0.2.0/24", "deny set replaces the whole set, both families"),
        ("deny add 192.0.2.1/24", "prefix 192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)"),
        ("deny del lots", "bad prefix 'lots'"),
        ("-6 deny add 192.0.2.0/24", "prefix 192.0.2.0/24 is not IPv6 (-6)"),
        ("deny show 192.0.2.0/24", "unknown argument '192.0.2.0/24' for deny show"),
    ]);
}
