//! rvsadm: argument tables, golden output, save/restore round trip.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ctl::{CtlError, ErrorCode, RealServerEdit, RealServerView, Request, Response, ServiceSpec, ServiceView};
use fnat::engine::listing::ConnInfo;
use fnat::persist::PersistConfig;
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig, ServiceKey};
use fnat::stats::Counters;
use fnat::tcp_state::{TcpState, Timeouts};
use fnat::types::{FwdMode, Proto};

use super::*;
use crate::fake::FakeCtl;

fn argv(s: &str) -> Vec<&str> {
    std::iter::once("rvsadm").chain(s.split_whitespace()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(proto: Proto, vip: &str, vport: u16) -> ServiceKey {
    ServiceKey::new(proto, ip(vip), vport)
}

fn tcp80() -> ServiceKey {
    key(Proto::Tcp, "198.18.0.100", 80)
}

fn rs(addr: &str, port: u16, weight: u32) -> RealServerConfig {
    RealServerConfig { addr: ip(addr), port, weight, upper: 0, lower: 0, fwd: Default::default() }
}

fn change(s: &str) -> Request {
    match parse(&argv(s)) {
        Ok(AdmCmd::Change(r)) => r,
        other => panic!("{s}: {other:?}"),
    }
}

fn err(s: &str) -> String {
    match parse(&argv(s)) {
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{s}");
            e.to_string()
        }
        Ok(c) => panic!("{s}: accepted as {c:?}"),
    }
}

#[test]
fn service_commands() {
    let mut wrr = ServiceConfig::new(Proto::Tcp, ip("198.18.0.100"), 80);
    wrr.sched = SchedKind::Wrr;
    let table: Vec<(&str, Request)> = vec![
        ("-A -t 198.18.0.100:80 -s wrr", Request::ServiceAdd(ServiceSpec { service: wrr.clone(), laddrs: vec![] })),
        (
            "--add-service --tcp-service 198.18.0.100:80 --scheduler wrr",
            Request::ServiceAdd(ServiceSpec { service: wrr.clone(), laddrs: vec![] }),
        ),
        ("-At 198.18.0.100:80 -s wrr", Request::ServiceAdd(ServiceSpec { service: wrr.clone(), laddrs: vec![] })),
        (
            "-A -t 198.18.0.100:80",
            Request::ServiceAdd(ServiceSpec {
                service: ServiceConfig::new(Proto::Tcp, ip("198.18.0.100"), 80),
                laddrs: vec![],
            }),
        ),
        ("-E -t 198.18.0.100:80 -s wrr", Request::ServiceEdit { service: wrr.clone() }),
        ("-D -t 198.18.0.100:80", Request::ServiceDel { key: tcp80() }),
        ("-D -u [2001:db8::1]:53", Request::ServiceDel { key: key(Proto::Udp, "2001:db8::1", 53) }),
        ("-C", Request::ServiceReplace { services: vec![], snat: Some(vec![]) }),
        ("-Z", Request::ZeroCounters { key: None }),
        ("-A -t 198.18.0.100:http -s wrr", Request::ServiceAdd(ServiceSpec { service: wrr.clone(), laddrs: vec![] })),
        ("-Z -t 198.18.0.100:80", Request::ZeroCounters { key: Some(tcp80()) }),
        ("--set 900 120 300", Request::TimeoutsSet { tcp: 900, tcpfin: 120, udp: 300 }),
        ("--set 0 0 60", Request::TimeoutsSet { tcp: 0, tcpfin: 0, udp: 60 }),
    ];
    for (args, want) in table {
        assert_eq!(change(args), want, "{args}");
    }
}

#[test]
fn persistence_and_flags() {
    let svc = |s: &str| match change(s) {
        Request::ServiceAdd(spec) => spec.service,
        other => panic!("{other:?}"),
    };
    let p = svc("-A -t 198.18.0.100:80 -p");
    assert_eq!(p.persistence, Some(PersistConfig { timeout_s: 300, netmask_v4: 32, netmask_v6: 128 }));
    let p = svc("-A -t 198.18.0.100:80 -p 600 -M 255.255.255.0 -s sh");
    assert_eq!(p.persistence, Some(PersistConfig { timeout_s: 600, netmask_v4: 24, netmask_v6: 128 }));
    assert_eq!(p.sched, SchedKind::Sh);
    let p = svc("-A -t 198.18.0.100:80 -p -M 16");
    assert_eq!(p.persistence.unwrap().netmask_v4, 16);
    let p = svc("-A -t [2001:db8::1]:443 -p 60 -M 64");
    assert_eq!(p.persistence, Some(PersistConfig { timeout_s: 60, netmask_v4: 32, netmask_v6: 64 }));
    // port 0 (all ports) is allowed when persistent
    let p = svc("-A -t 198.18.0.100 -p");
    assert_eq!(p.vport, 0);
    let p = svc("-A -t 198.18.0.100:80 -s mh --sched-flags mh-port --mh-table-size 65537");
    assert!(p.hash_port && !p.hash_fallback);
    assert_eq!(p.mh_table_size, Some(65537));
    let p = svc("-A -t 198.18.0.100:80 -s sh --sched-flags sh-fallback,sh-port");
    assert!(p.hash_port && p.hash_fallback);
    let p = svc("-A -t 198.18.0.100:80 -s sh --sched-flags none");
    assert!(!p.hash_port && !p.hash_fallback);
    // DPVS's conhash, with its one hash target; its flags are plain (`fallback`, `port`)
    let p = svc("-A -t 198.18.0.100:80 -s conhash --hash-target sip");
    assert!(p.sched == SchedKind::Conhash && !p.hash_port && p.hash_fallback);
    let p = svc("-A -u 198.18.0.100:53 -s conhash --sched-flags port");
    assert!(p.sched == SchedKind::Conhash && p.hash_port && !p.hash_fallback);
    // rvs's edge limits
    let p = svc("-A -t 198.18.0.100:80 --conn-rate 1000:50 --source-limit 8");
    assert_eq!(p.rate_limit, Some(fnat::edge::RateLimit { rate: 1000, burst: 50 }));
    assert_eq!(p.source_limit, 8);
    let p = svc("-A -t 198.18.0.100:80 --conn-rate 200");
    assert_eq!(p.rate_limit, Some(fnat::edge::RateLimit { rate: 200, burst: 0 }));
    // DPVS's per-service timeout
    assert_eq!(svc("-A -t 198.18.0.100:3306 --conn-timeout 7200").conn_timeout, 7200);
    assert_eq!(svc("-A -u 198.18.0.100:53 --conn-timeout 0").conn_timeout, 0);
    // DPVS's passive health check
    assert_eq!(svc("-A -t 198.18.0.100:80 --dest-check default").dest_check, Some(Default::default()));
    assert_eq!(
        svc("-A -t 198.18.0.100:80 --dest-check 3,3,3s,60-3600s").dest_check.unwrap().to_string(),
        "3,3,3s,60-3600s"
    );
    assert!(svc("-A -t 198.18.0.100:80 --dest-check 1,3s").dest_check.unwrap().down_only());
    assert_eq!(svc("-A -t 198.18.0.100:80 --dest-check disable").dest_check, None);
    assert!(svc("-A -u 198.18.0.100:53 --expire-quiescent").expire_quiescent);
    assert!(!svc("-A -u 198.18.0.100:53").expire_quiescent);
    assert!(svc("-A -u 198.18.0.100:514 -s rr --ops").ops);
    assert!(svc("-A -u 198.18.0.100:514 -o").ops);
    // -p with a value followed by another option
    let p = svc("-A -t 198.18.0.100:80 -p 100 -s rr");
    assert_eq!(p.persistence.unwrap().timeout_s, 100);
    assert_eq!(p.sched, SchedKind::Rr);
}

#[test]
fn server_commands() {
    let table: Vec<(&str, Request)> = vec![
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11:8080 -b -w 3",
            Request::RealServerAdd { key: tcp80(), rs: rs("198.19.0.11", 8080, 3) },
        ),
        // port defaults to the service's, weight to 1
        ("-a -t 198.18.0.100:80 -r 198.19.0.11", Request::RealServerAdd { key: tcp80(), rs: rs("198.19.0.11", 80, 1) }),
        (
            "--add-server --tcp-service 198.18.0.100:80 --real-server 198.19.0.11:81 --weight 0 --fullnat",
            Request::RealServerAdd { key: tcp80(), rs: rs("198.19.0.11", 81, 0) },
        ),
        // The forwarding methods, short and long.
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11:8080 -m",
            Request::RealServerAdd {
                key: tcp80(),
                rs: RealServerConfig { fwd: FwdMode::Nat, ..rs("198.19.0.11", 8080, 1) },
            },
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11 --gatewaying",
            Request::RealServerAdd {
                key: tcp80(),
                rs: RealServerConfig { fwd: FwdMode::Dr, ..rs("198.19.0.11", 80, 1) },
            },
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11 --ipip",
            Request::RealServerAdd {
                key: tcp80(),
                rs: RealServerConfig { fwd: FwdMode::Tunnel, ..rs("198.19.0.11", 80, 1) },
            },
        ),
        (
            "-e -t 198.18.0.100:80 -r 198.19.0.11 -g",
            Request::RealServerEdit {
                key: tcp80(),
                addr: ip("198.19.0.11"),
                port: 80,
                change: RealServerEdit { fwd: Some(FwdMode::Dr), ..Default::default() },
            },
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11:8080 -w 65535 -x 1000 -y 500",
            Request::RealServerAdd {
                key: tcp80(),
                rs: RealServerConfig {
                    addr: ip("198.19.0.11"),
                    port: 8080,
                    weight: 65535,
                    upper: 1000,
                    lower: 500,
                    fwd: Default::default(),
                },
            },
        ),
        (
            "-a -u [2001:db8::1]:53 -r [2001:db8::11]:5353",
            Request::RealServerAdd { key: key(Proto::Udp, "2001:db8::1", 53), rs: rs("2001:db8::11", 5353, 1) },
        ),
        (
            "-a -u [2001:db8::1]:53 -r 2001:db8::11",
            Request::RealServerAdd { key: key(Proto::Udp, "2001:db8::1", 53), rs: rs("2001:db8::11", 53, 1) },
        ),
        (
            "-e -t 198.18.0.100:80 -r 198.19.0.11:8080 -w 5",
            Request::RealServerEdit {
                key: tcp80(),
                addr: ip("198.19.0.11"),
                port: 8080,
                change: RealServerEdit { weight: Some(5), upper: None, lower: None, fwd: None },
            },
        ),
        (
            "-e -t 198.18.0.100:80 -r 198.19.0.11:8080 -x 10",
            Request::RealServerEdit {
                key: tcp80(),
                addr: ip("198.19.0.11"),
                port: 8080,
                change: RealServerEdit { weight: None, upper: Some(10), lower: None, fwd: None },
            },
        ),
        (
            "-d -t 198.18.0.100:80 -r 198.19.0.11:8080",
            Request::RealServerDel { key: tcp80(), addr: ip("198.19.0.11"), port: 8080 },
        ),
        (
            "-d -t 198.18.0.100:80 -r 198.19.0.11",
            Request::RealServerDel { key: tcp80(), addr: ip("198.19.0.11"), port: 80 },
        ),
        ("-P -t 198.18.0.100:80 -z 198.19.0.10 -F dpdk1", Request::LaddrAdd { key: tcp80(), addr: ip("198.19.0.10") }),
        (
            "--add-laddr -t 198.18.0.100:80 --laddr 198.19.0.10",
            Request::LaddrAdd { key: tcp80(), addr: ip("198.19.0.10") },
        ),
        ("-Q -t 198.18.0.100:80 -z 198.19.0.10", Request::LaddrDel { key: tcp80(), addr: ip("198.19.0.10") }),
        (
            "--add-blklst -t 198.18.0.100:80 -k 192.0.2.7/24",
            Request::ServiceAcl {
                key: tcp80(),
                allow: false,
                add: true,
                prefixes: vec!["192.0.2.0/24".parse().unwrap()],
            },
        ),
        (
            "--add-blklst -t 198.18.0.100:80 --blklst 192.0.2.7",
            Request::ServiceAcl {
                key: tcp80(),
                allow: false,
                add: true,
                prefixes: vec!["192.0.2.7/32".parse().unwrap()],
            },
        ),
        (
            "--add-whtlst -t 198.18.0.100:80 --whtlst 10.1.0.0/16",
            Request::ServiceAcl {
                key: tcp80(),
                allow: true,
                add: true,
                prefixes: vec!["10.1.0.0/16".parse().unwrap()],
            },
        ),
        (
            "--del-blklst -t 198.18.0.100:80 -k 192.0.2.9",
            Request::ServiceAcl {
                key: tcp80(),
                allow: false,
                add: false,
                prefixes: vec!["192.0.2.9/32".parse().unwrap()],
            },
        ),
        (
            "--add-whtlst -t 198.18.0.100:80 --whtlst-address 10.0.0.0/8",
            Request::ServiceAcl { key: tcp80(), allow: true, add: true, prefixes: vec!["10.0.0.0/8".parse().unwrap()] },
        ),
        (
            "--del-whtlst -t 198.18.0.100:80 --whtlst-address 10.0.0.0/8",
            Request::ServiceAcl {
                key: tcp80(),
                allow: true,
                add: false,
                prefixes: vec!["10.0.0.0/8".parse().unwrap()],
            },
        ),
    ];
    for (args, want) in table {
        assert_eq!(change(args), want, "{args}");
    }
}

#[test]
fn listing_commands() {
    let list = |s: &str| parse(&argv(s)).unwrap();
    let plain = ListOpts { key: None, view: View::Plain, exact: false, sort: true, json: false };
    assert_eq!(list("-L"), AdmCmd::List(plain));
    assert_eq!(list("-L -n"), AdmCmd::List(plain));
    assert_eq!(list("-Ln"), AdmCmd::List(plain));
    assert_eq!(list("-ln"), AdmCmd::List(plain));
    assert_eq!(list("--list --numeric"), AdmCmd::List(plain));
    assert_eq!(list(""), AdmCmd::List(plain));
    assert_eq!(list("-n"), AdmCmd::List(plain));
    assert_eq!(list("-Ln --sort"), AdmCmd::List(plain));
    assert_eq!(list("-Ln --nosort"), AdmCmd::List(ListOpts { sort: false, ..plain }));
    assert_eq!(list("-Ln --stats"), AdmCmd::List(ListOpts { view: View::Stats, ..plain }));
    assert_eq!(list("-L -n --stats --exact"), AdmCmd::List(ListOpts { view: View::Stats, exact: true, ..plain }));
    assert_eq!(list("-Ln --rate"), AdmCmd::List(ListOpts { view: View::Rate, ..plain }));
    assert_eq!(list("-Ln --thresholds"), AdmCmd::List(ListOpts { view: View::Thresholds, ..plain }));
    assert_eq!(list("-Ln --json"), AdmCmd::List(ListOpts { json: true, ..plain }));
    assert_eq!(list("-Ln -t 198.18.0.100:80"), AdmCmd::List(ListOpts { key: Some(tcp80()), ..plain }));
    assert_eq!(list("-Lnt 198.18.0.100:80"), AdmCmd::List(ListOpts { key: Some(tcp80()), ..plain }));
    for c in ["-Lnc", "-lnc", "-L -n -c", "-Lc", "--list --connection"] {
        assert_eq!(list(c), AdmCmd::Conns { json: false, filter: ConnFilter::default(), templates: false }, "{c}");
    }
    assert_eq!(list("-Lnc --json"), AdmCmd::Conns { json: true, filter: ConnFilter::default(), templates: false });
    assert_eq!(list("-Ln --persistent-conn"), AdmCmd::List(ListOpts { view: View::PersistConn, ..plain }));
    assert_eq!(
        list("-Lnc --persistent-conn"),
        AdmCmd::Conns { json: false, filter: ConnFilter::default(), templates: true }
    );
    assert_eq!(list("-L --timeout"), AdmCmd::Timeouts { json: false });
    assert_eq!(list("-Ln --timeout --json"), AdmCmd::Timeouts { json: true });
    assert_eq!(list("-S"), AdmCmd::Save { sort: true });
    assert_eq!(list("-S -n"), AdmCmd::Save { sort: true });
    assert_eq!(list("-Sn"), AdmCmd::Save { sort: true });
    assert_eq!(list("-R"), AdmCmd::Restore);
    assert_eq!(list("-G"), AdmCmd::Laddrs { key: None, json: false });
    assert_eq!(list("-G -t 198.18.0.100:80"), AdmCmd::Laddrs { key: Some(tcp80()), json: false });
    assert!(matches!(list("-h"), AdmCmd::Print(t) if t.contains("--add-service")));
    assert!(matches!(list("--version"), AdmCmd::Print(t) if t.contains("rvsadm")));
    assert!(matches!(list("-v"), AdmCmd::Print(t) if t.contains("rvsadm")));
}

#[test]
fn bad_input_is_one_line_naming_the_problem() {
    let table: Vec<(&str, &str)> = vec![
        ("--frobnicate", "unexpected argument '--frobnicate' found"),
        ("-Lq", "unexpected argument '-q' found"),
        ("-A -t 198.18.0.300:80", "bad service address '198.18.0.300:80' (expected ADDR:PORT, or [IPV6]:PORT)"),
        (
            "-A -t 198.18.0.100:nosuch",
            "unknown service 'nosuch' in service address '198.18.0.100:nosuch' (not in /etc/services for tcp)",
        ),
        ("-A -t 198.18.0.100:99999", "bad port '99999' in service address '198.18.0.100:99999' (expected 0..=65535)"),
        (
            "-A -t 198.18.0.100:80 -s wrrr",
            "unknown scheduler \"wrrr\" (known: rr, wrr, lc, wlc, sed, nq, sh, dh, mh, conhash, fo, ovf)",
        ),
        (
            "-A -t 198.18.0.100:80 -s lblcr",
            "scheduler \"lblcr\" is not supported: it keeps a least-loaded server per destination address (LVS's \
             transparent caches behind a fwmark service); use dh on a fwmark service (one server per destination), \
             or sh, mh or conhash",
        ),
        (
            "-A -t 198.18.0.100:80 -s mh --hash-target sip",
            "hash target can only be set when the scheduler is conhash (-s conhash)",
        ),
        (
            "-A -u 198.18.0.100:443 -s conhash --hash-target qid",
            "hash target qid (DPVS: an early Google QUIC connection id, obsolete) is not supported: conhash hashes \
             the client's address (sip)",
        ),
        ("-A -t 198.18.0.100:80 -s conhash --hash-target dip", "unknown hash target 'dip' (sip)"),
        ("-a -t 198.18.0.100:80 -r 198.19.0.11 -w 65536", "weight 65536 out of range (0..=65535)"),
        ("-a -t 198.18.0.100:80 -r 198.19.0.11 -w -1", "unexpected argument '-1' found"),
        ("-a -t 198.18.0.100:80 -r 198.19.0.11 -w heavy", "bad weight 'heavy' (expected a number 0..=65535)"),
        ("-A -s wrr", "-A (--add-service) needs a service: -t ADDR:PORT, -u ADDR:PORT or -f MARK"),
        ("-a -r 198.19.0.11", "-a (--add-server) needs a service: -t ADDR:PORT, -u ADDR:PORT or -f MARK"),
        ("-a -t 198.18.0.100:80", "-a (--add-server) needs a real server: -r ADDR[:PORT]"),
        ("-A -t 198.18.0.100:80 -L", "give one command only, not -A and -L"),
        ("-A -D -t 198.18.0.100:80", "give one command only, not -A and -D"),
        (
            "-t 198.18.0.100:80",
            "no command given (one of -A -E -D -C -R -S -a -e -d -L -Z --set -P -Q -G; -h for help)",
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11 -g -m",
            "give one forwarding method: -b (FullNAT), -m (NAT), -g (DR) or -i (TUN)",
        ),
        ("-A -t 198.18.0.100:80 -o", "one-packet scheduling (-o) is for UDP services"),
        ("-L -n --persistent-conn --stats", "--stats and --persistent-conn cannot be combined"),
        ("-L --timeout --persistent-conn", "--timeout and --persistent-conn cannot be combined"),
        (
            "-Lnc --persistent-conn --sockpair tcp:198.18.0.2:40000:198.18.0.100:80",
            "--sockpair names one connection by its client port; a persistence template has none (list them with -L \
             -c --persistent-conn, --cpu N for one worker's)",
        ),
        ("-A -t 198.18.0.100:80 --persistent-conn", "option --persistent-conn is not allowed with -A (--add-service)"),
        (
            "--start-daemon master --mcast-group 224.0.0.81",
            "--mcast-group/--mcast-port/--mcast-ttl/--sync-maxlen: valid ipvsadm that rvs does not support",
        ),
        ("--start-daemon primary", "sync daemon state \"primary\": master or backup"),
        ("--start-daemon master --syncid 256", "syncid"),
        ("--stop-daemon backup --syncid 3", "option --syncid is not allowed with --stop-daemon"),
        ("--start-daemon master -t 198.18.0.100:80", "option -t/-u is not allowed with --start-daemon"),
        ("-L --daemon -c", "--daemon lists the sync roles: it takes no service, -c, --timeout or view"),
        ("-A -t 198.18.0.100:80 --daemon", "option --daemon is not allowed with -A (--add-service)"),
        ("-A -t 198.18.0.100:80 --pe sip", "--pe: valid ipvsadm that rvs does not support"),
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11 -i --tun-type gue",
            "-T/--tun-type/--tun-port/--tun-*csum: valid ipvsadm that rvs does not support: rvs tunnels with IPIP only",
        ),
        ("-A -t 198.18.0.100:80 -g", "option -g is not allowed with -A (--add-service)"),
        ("-A -t 198.18.0.100:80 -u 198.18.0.100:53", "give one of -t and -u, not both"),
        ("-A -t 198.18.0.100:80 -w 3", "option -w is not allowed with -A (--add-service)"),
        ("-D -t 198.18.0.100:80 -s rr", "option -s is not allowed with -D (--delete-service)"),
        ("-C -t 198.18.0.100:80", "option -t/-u is not allowed with -C (--clear)"),
        ("-A -t 198.18.0.100:80 --json", "option --json is not allowed with -A (--add-service)"),
        ("-A -t 198.18.0.100", "port 0 (every port) needs a persistent service (-p): tcp 198.18.0.100:0"),
        ("-A -t 198.18.0.100:80 -M 24", "-M (netmask) needs -p (persistent)"),
        ("-A -t 198.18.0.100:80 --conn-rate 0", "connection rate 0 out of range (1..=4294967295)"),
        ("-A -t 198.18.0.100:80 --conn-rate 10:x", "bad connection burst 'x' (expected a number 1..=4294967295)"),
        ("-A -t 198.18.0.100:80 --source-limit many", "bad source limit 'many' (expected a number 0..=4294967295)"),
        ("-A -t 198.18.0.100:80 --conn-timeout 3000000", "connection timeout 3000000 out of range (0..=2000000)"),
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11 --conn-timeout 60",
            "option --conn-timeout is not allowed with -a (--add-server)",
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.19.0.11 --source-limit 3",
            "option --source-limit is not allowed with -a (--add-server)",
        ),
        ("--get-blklst -k 192.0.2.1", "option -k is not allowed with --get-blklst (--get-blklst)"),
        ("-A -t 198.18.0.100:80 -p 0", "persistence timeout 0 out of range (1..=2678400)"),
        (
            "-A -t 198.18.0.100:80 -p -M 255.0.255.0",
            "bad netmask '255.0.255.0' (the mask must be contiguous and not empty)",
        ),
        ("-A -t 198.18.0.100:80 -s sh --sched-flags sh-bogus", "unknown scheduler flag 'sh-bogus'"),
        (
            "-a -t 198.18.0.100:80 -r [2001:db8::11]",
            "real server 2001:db8::11 is not of the VIP's address family (198.18.0.100)",
        ),
        ("-P -t 198.18.0.100:80", "-P (--add-laddr) needs a local address: -z ADDR"),
        ("-P -t 198.18.0.100:80 -z lip", "bad local address 'lip' (expected an IPv4 or IPv6 address)"),
        ("--set 900 120", "3 values required for '--set <TCP> <TCPFIN> <UDP>' but 2 were provided"),
        ("--set 900 120 x", "bad udp timeout 'x' (expected a number 0..=2678400)"),
        ("-Ln --stats --rate", "--stats and --rate cannot be combined"),
        ("-Lnc --stats", "-c and --stats cannot be combined"),
        ("-Lnc -t 198.18.0.100:80", "-c lists everything; it takes no service"),
        ("-L extra", "unexpected argument 'extra' found"),
    ];
    for (args, want) in table {
        let got = err(args);
        assert!(got.starts_with(want), "{args}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "{args}: {got:?} is not one line");
    }
}

// ---- output --------------------------------------------------------------------

fn counters(conns: u64, pkts_in: u64, pkts_out: u64, bytes_in: u64, bytes_out: u64) -> Counters {
    Counters { conns, active: 0, inactive: 0, pkts_in, pkts_out, bytes_in, bytes_out, refused: 0, persist: 0 }
}

fn view(
    svc: ServiceConfig,
    laddrs: &[&str],
    dests: Vec<(u64, u64, Option<Counters>)>,
    stats: Option<Counters>,
) -> ServiceView {
    let dests = svc
        .real_servers
        .iter()
        .zip(dests)
        .map(|(c, (active, inactive, stats))| RealServerView {
            config: *c,
            active,
            inactive,
            // A persistent service's servers: as many templates as inactive connections.
            persist: if svc.persistence.is_some() { inactive } else { 0 },
            stats,
            inhibited: false,
        })
        .collect();
    ServiceView { laddrs: laddrs.iter().map(|a| ip(a)).collect(), service: svc, dests, stats }
}

/// Two services: the demo's wrr service (servers listed out of order) and a persistent
/// UDP one; plus an IPv6 mh service.
fn demo() -> Vec<ServiceView> {
    let mut web = ServiceConfig::new(Proto::Tcp, ip("198.18.0.100"), 80);
    web.sched = SchedKind::Wrr;
    web.real_servers = vec![rs("198.19.0.12", 8080, 1), rs("198.19.0.11", 8080, 3)];
    let mut dns = ServiceConfig::new(Proto::Udp, ip("198.18.0.100"), 53);
    dns.sched = SchedKind::Rr;
    dns.persistence = Some(PersistConfig { timeout_s: 300, netmask_v4: 24, netmask_v6: 128 });
    dns.conn_timeout = 30;
    dns.real_servers = vec![RealServerConfig {
        addr: ip("198.19.0.21"),
        port: 53,
        weight: 2,
        upper: 100,
        lower: 50,
        fwd: FwdMode::Nat,
    }];
    let mut v6 = ServiceConfig::new(Proto::Tcp, ip("2001:db8::100"), 443);
    v6.sched = SchedKind::Mh;
    v6.hash_port = true;
    v6.persistence = Some(PersistConfig { timeout_s: 60, netmask_v4: 32, netmask_v6: 64 });
    v6.real_servers = vec![rs("2001:db8:1::11", 8443, 1)];
    vec![
        view(
            v6,
            &["2001:db8:1::10"],
            vec![(1, 0, Some(counters(1, 10, 9, 1000, 900)))],
            Some(counters(1, 10, 9, 1000, 900)),
        ),
        view(
            web,
            &["198.19.0.10", "198.19.0.9"],
            vec![
                (0, 50, Some(counters(1_234_567_890, 99_999_999, 100_000_000, 123_456_789_012, 5))),
                (0, 150, Some(counters(150, 1500, 1400, 150_000, 140_000))),
            ],
            Some(counters(1_234_568_040, 100_001_499, 100_001_400, 123_456_939_012, 140_005)),
        ),
        view(dns, &[], vec![(0, 7, Some(counters(7, 7, 7, 700, 700)))], Some(counters(7, 7, 7, 700, 700))),
    ]
}

fn status() -> Response {
    Response::Status {
        version: "0.1.0".into(),
        gen: 3,
        worker_gens: vec![3, 3],
        conn_pool_size: 1_048_576,
        uptime_s: 10,
        started_ns: 1,
        loaded_ns: 1,
    }
}

/// `rvsadm -L`'s last reply: no SNAT rule.
fn no_snat() -> Response {
    Response::Snat { rules: vec![] }
}

fn run_adm(args: &str, replies: Vec<Response>) -> (String, FakeCtl) {
    let cmd = parse(&argv(args)).unwrap();
    let mut ctl = FakeCtl::new(replies);
    let mut out = Vec::new();
    run(&cmd, &mut ctl, &mut std::io::empty(), &mut out).unwrap();
    (String::from_utf8(out).unwrap(), ctl)
}

#[test]
fn list_plain_golden() {
    let (out, ctl) = run_adm("-Ln", vec![status(), Response::Services { services: demo() }, no_snat()]);
    let want = "\
rvs 0.1.0 (conn pool size=1048576 per worker)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 wrr
  -> 198.19.0.11:8080             FullNat 3      0          150       
  -> 198.19.0.12:8080             FullNat 1      0          50        
UDP  198.18.0.100:53 rr persistent 300 mask 255.255.255.0 conn-timeout 30
  -> 198.19.0.21:53               Masq    2      0          7         
TCP  [2001:db8::100]:443 mh (mh-fallback,mh-port) persistent 60 mask 64
  -> [2001:db8:1::11]:8443        FullNat 1      1          0         
";
    assert_eq!(out, want);
    assert_eq!(
        ctl.requests,
        vec![Request::Status {}, Request::ServicePage { stats: false, from: 0, max: None }, Request::SnatList {}]
    );
}

#[test]
fn list_nosort_keeps_rvsd_order() {
    let (out, _) = run_adm("-Ln --nosort", vec![status(), Response::Services { services: demo() }, no_snat()]);
    let lines: Vec<&str> =
        out.lines().filter(|l| !l.starts_with(' ') && !l.starts_with("rvs") && !l.starts_with("Prot")).collect();
    assert_eq!(
        lines,
        [
            "TCP  [2001:db8::100]:443 mh (mh-fallback,mh-port) persistent 60 mask 64",
            "TCP  198.18.0.100:80 wrr",
            "UDP  198.18.0.100:53 rr persistent 300 mask 255.255.255.0 conn-timeout 30"
        ]
    );
    assert!(
        out.contains("  -> 198.19.0.12:8080             FullNat 1      0          50        \n  -> 198.19.0.11:8080")
    );
}

#[test]
fn list_one_service() {
    let (out, _) = run_adm("-Ln -u 198.18.0.100:53", vec![status(), Response::Services { services: demo() }]);
    assert!(out.contains("UDP  198.18.0.100:53 rr"));
    assert!(!out.contains("TCP"));
    let cmd = parse(&argv("-Ln -t 198.18.0.100:81")).unwrap();
    let mut ctl = FakeCtl::new(vec![status(), Response::Services { services: demo() }]);
    let e = run(&cmd, &mut ctl, &mut std::io::empty(), &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "no service tcp 198.18.0.100:81");
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn list_stats_golden() {
    let (out, ctl) = run_adm("-Ln --stats", vec![status(), Response::Services { services: demo() }]);
    let want = "\
rvs 0.1.0 (conn pool size=1048576 per worker)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.18.0.100:80                 1234M  100001K  100001K     123G   140005
  -> 198.19.0.11:8080                  150     1500     1400   150000   140000
  -> 198.19.0.12:8080                1234M 99999999  100000K     123G        5
UDP  198.18.0.100:53                     7        7        7      700      700
  -> 198.19.0.21:53                      7        7        7      700      700
TCP  [2001:db8::100]:443                 1       10        9     1000      900
  -> [2001:db8:1::11]:8443               1       10        9     1000      900
";
    assert_eq!(out, want);
    assert_eq!(ctl.requests[1], Request::ServicePage { stats: true, from: 0, max: None });

    let (out, _) =
        run_adm("-Ln --stats --exact -t 198.18.0.100:80", vec![status(), Response::Services { services: demo() }]);
    assert!(
        out.contains("TCP  198.18.0.100:80              1234568040 100001499 100001400 123456939012   140005\n"),
        "{out}"
    );
}

#[test]
fn largenum_scaling() {
    assert_eq!(format::largenum(0, false), "        0");
    assert_eq!(format::largenum(99_999_999, false), " 99999999");
    assert_eq!(format::largenum(100_000_000, false), "  100000K");
    assert_eq!(format::largenum(1_000_000_000, false), "    1000M");
    assert_eq!(format::largenum(99_999_999_999, false), "   99999M");
    assert_eq!(format::largenum(100_000_000_000, false), "     100G");
    assert_eq!(format::largenum(100_000_000_000_000, false), "     100T");
    assert_eq!(format::largenum(123_456_789_012, true), " 123456789012");
    assert_eq!(format::largenum(5, true), "        5");
}

#[test]
fn list_rate_from_two_samples() {
    let first = demo();
    let mut second = demo();
    // web: +100 conns, +2000 packets in, +1000 out, +1 MB in, +2 MB out in one second
    let add = |c: &mut Counters, d: Counters| {
        c.conns += d.conns;
        c.pkts_in += d.pkts_in;
        c.pkts_out += d.pkts_out;
        c.bytes_in += d.bytes_in;
        c.bytes_out += d.bytes_out;
    };
    let d = counters(100, 2000, 1000, 1_000_000, 2_000_000);
    add(second[1].stats.as_mut().unwrap(), d);
    add(second[1].dests[1].stats.as_mut().unwrap(), d);
    let (out, ctl) = run_adm(
        "-Ln --rate -t 198.18.0.100:80",
        vec![status(), Response::Services { services: first }, Response::Services { services: second }],
    );
    let want = "\
rvs 0.1.0 (conn pool size=1048576 per worker)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.18.0.100:80                   100     2000     1000  1000000  2000000
  -> 198.19.0.11:8080                  100     2000     1000  1000000  2000000
  -> 198.19.0.12:8080                    0        0        0        0        0
";
    assert_eq!(out, want);
    assert_eq!(ctl.paused, vec![RATE_INTERVAL]);
    assert_eq!(ctl.requests.len(), 3);
}

#[test]
fn list_thresholds_golden() {
    let (out, _) =
        run_adm("-Ln --thresholds -u 198.18.0.100:53", vec![status(), Response::Services { services: demo() }]);
    let want = "\
rvs 0.1.0 (conn pool size=1048576 per worker)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
UDP  198.18.0.100:53 rr persistent 300 mask 255.255.255.0 conn-timeout 30
  -> 198.19.0.21:53               100        50         0          7         
";
    assert_eq!(out, want);
}

/// ipvsadm's `--persistent-conn` view: weight, persistence templates, connections.
#[test]
fn list_persistent_conn_golden() {
    let (out, _) =
        run_adm("-Ln --persistent-conn -u 198.18.0.100:53", vec![status(), Response::Services { services: demo() }]);
    let want = "\
rvs 0.1.0 (conn pool size=1048576 per worker)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
UDP  198.18.0.100:53 rr persistent 300 mask 255.255.255.0 conn-timeout 30
  -> 198.19.0.21:53               2         7           0          7         
";
    assert_eq!(out, want);
}

/// `--json` gives the services' reply; listing everything, the SNAT rules beside them.
#[test]
fn list_json_is_the_reply() {
    let (out, ctl) = run_adm("-Ln --json -t 198.18.0.100:80", vec![Response::Services { services: demo() }]);
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    let Response::Services { services } = back.resp else { panic!("{out}") };
    assert_eq!(services.iter().map(|s| s.service.key()).collect::<Vec<_>>(), vec![tcp80()]);
    assert!(!out.contains("snat"), "{out}");
    assert_eq!(ctl.requests, vec![Request::ServicePage { stats: false, from: 0, max: None }]);

    let rules = vec![ctl::SnatSpec {
        name: Some("servers".into()),
        wan: vec![ip("198.18.0.5")],
        ..ctl::SnatSpec::from_match("proto=udp,src-range=198.19.0.0/24").unwrap()
    }];
    let (out, ctl) =
        run_adm("-Ln --json", vec![Response::Services { services: demo() }, Response::Snat { rules: rules.clone() }]);
    // Still the services' reply for a reader that knows only it.
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    assert_eq!(back.resp, Response::Services { services: demo() });
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let snat: Vec<ctl::SnatSpec> = serde_json::from_value(doc["snat"].clone()).unwrap();
    assert_eq!(snat, rules);
    assert_eq!(ctl.requests, vec![Request::ServicePage { stats: false, from: 0, max: None }, Request::SnatList {}]);
}

/// Listings page through the services; a page from another generation starts over.
#[test]
fn listings_page_through_the_services() {
    let all = demo();
    let page = |from: usize, to: usize, gen: u64| Response::ServicePage {
        services: all[from..to].to_vec(),
        next: (to < all.len()).then_some(to as u32),
        gen,
    };
    let (saved, ctl) = run_adm("-S", vec![page(0, 1, 7), page(1, all.len(), 7), no_snat()]);
    let (whole, _) = run_adm("-S", vec![Response::Services { services: all.clone() }, no_snat()]);
    assert_eq!(saved, whole, "two pages make the whole list");
    assert_eq!(ctl.requests[1], Request::ServicePage { stats: false, from: 1, max: None });
    // The set changed between pages (generation 7 -> 8): listed again from the start.
    let (again, ctl) =
        run_adm("-S", vec![page(0, 1, 7), page(1, all.len(), 8), page(0, 1, 8), page(1, all.len(), 8), no_snat()]);
    assert_eq!(again, whole);
    assert_eq!(ctl.requests.len(), 5, "four pages and the SNAT rules");
}

#[test]
fn timeouts_golden() {
    let t = Timeouts::default();
    let (out, ctl) = run_adm("-L --timeout", vec![Response::Timeouts { timeouts: t }]);
    assert_eq!(out, format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.established, t.fin_wait, t.udp));
    assert_eq!(out, "Timeout (tcp tcpfin udp): 900 120 300\n");
    assert_eq!(ctl.requests, vec![Request::TimeoutsGet {}]);
}

fn conn(worker: u16, proto: Proto, state: TcpState, expires_ms: u64, [c, v, l, r]: [&str; 4]) -> ConnInfo {
    let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
    ConnInfo {
        worker,
        proto,
        state,
        expires_ms,
        client: sa(c),
        virt: sa(v),
        local: sa(l),
        real: sa(r),
        svc: 1,
        rs: 2,
        toa: false,
        fwd: Default::default(),
        synced: false,
        template: false,
    }
}

fn conns() -> Vec<Vec<ConnInfo>> {
    vec![
        vec![
            conn(
                0,
                Proto::Tcp,
                TcpState::Established,
                89_500,
                ["198.18.0.2:40000", "198.18.0.100:80", "198.19.0.10:1025", "198.19.0.11:8080"],
            ),
            ConnInfo {
                synced: true,
                ..conn(
                    1,
                    Proto::Tcp,
                    TcpState::TimeWait,
                    3_000,
                    ["198.18.0.3:40001", "198.18.0.100:80", "198.19.0.10:1026", "198.19.0.12:8080"],
                )
            },
        ],
        vec![conn(
            1,
            Proto::Udp,
            TcpState::None,
            300_000,
            ["198.18.0.2:5353", "198.18.0.100:53", "198.19.0.10:1027", "198.19.0.21:53"],
        )],
    ]
}

#[test]
fn conns_golden_paged() {
    let cmd = parse(&argv("-Lnc")).unwrap();
    let mut ctl = FakeCtl::new(vec![]);
    ctl.pages = conns().into();
    let mut out = Vec::new();
    run(&cmd, &mut ctl, &mut std::io::empty(), &mut out).unwrap();
    let want = "\
[0]tcp 89s    ESTABLISHED 198.18.0.2:40000   198.18.0.100:80    198.19.0.10:1025   198.19.0.11:8080
[1]tcp 3s     TIME_WAIT   198.18.0.3:40001   198.18.0.100:80    198.19.0.10:1026   198.19.0.12:8080 synced
[1]udp 300s   UDP         198.18.0.2:5353    198.18.0.100:53    198.19.0.10:1027   198.19.0.21:53
";
    assert_eq!(String::from_utf8(out).unwrap(), want);
    assert_eq!(
        ctl.requests,
        vec![Request::ConnList { cursor: ctl::ConnCursor::default(), max: crate::CONN_PAGE, templates: false }]
    );

    // DPVS's `-Lnc --persistent-conn`: the templates, in the same form.
    let template = ConnInfo {
        template: true,
        ..conn(
            1,
            Proto::Udp,
            TcpState::None,
            299_000,
            ["198.18.0.0:0", "198.18.0.100:53", "0.0.0.0:0", "198.19.0.21:53"],
        )
    };
    let mut ctl = FakeCtl::new(vec![]);
    ctl.pages = vec![vec![template]].into();
    let mut out = Vec::new();
    run(&parse(&argv("-Lnc --persistent-conn")).unwrap(), &mut ctl, &mut std::io::empty(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "[1]udp 299s   NONE        198.18.0.0:0       198.18.0.100:53    0.0.0.0:0          198.19.0.21:53\n"
    );
    assert_eq!(
        ctl.requests,
        vec![Request::ConnList { cursor: ctl::ConnCursor::default(), max: crate::CONN_PAGE, templates: true }]
    );
}

/// DPVS's `--sockpair PROTO:CIP:CPORT:VIP:VPORT` and `--cpu N` choose the connections
/// `-L -c` lists; with anything but `-c`, or malformed, they are refused by name.
#[test]
fn conns_by_sockpair_and_worker() {
    let listed = |args: &str| {
        let mut ctl = FakeCtl::new(vec![]);
        ctl.pages = conns().into();
        let mut out = Vec::new();
        run(&parse(&argv(args)).unwrap(), &mut ctl, &mut std::io::empty(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let one = listed("-Lnc --sockpair tcp:198.18.0.3:40001:198.18.0.100:80");
    assert!(one.lines().count() == 1 && one.starts_with("[1]tcp 3s     TIME_WAIT   198.18.0.3:40001"), "{one}");
    assert_eq!(listed("-Lnc --sockpair udp:198.18.0.3:40001:198.18.0.100:80"), "", "another protocol");
    let w1 = listed("-Lnc --cpu 1");
    assert!(w1.lines().count() == 2 && w1.lines().all(|l| l.starts_with("[1]")), "{w1}");
    assert_eq!(listed("-Lnc --cpu 1 --sockpair tcp:198.18.0.2:40000:198.18.0.100:80"), "", "on worker 0");
    let f = ConnFilter::parse(Some("tcp:[2001:db8::9]:40000:[2001:db8::100]:80"), None).unwrap();
    assert_eq!(
        f.sockpair,
        Some((Proto::Tcp, "[2001:db8::9]:40000".parse().unwrap(), "[2001:db8::100]:80".parse().unwrap()))
    );
    for (args, says) in [
        ("-Ln --cpu 1", "--sockpair and --cpu choose connections: with -L -c"),
        ("-Lnc --sockpair tcp:198.18.0.3:40001", "bad sockpair"),
        ("-Lnc --sockpair sctp:198.18.0.3:1:198.18.0.100:80", "protocol 'sctp' is not tcp or udp"),
        ("-Lnc --cpu x", "--cpu"),
        ("-a -t 198.18.0.100:80 -r 198.19.0.11 --expire-quiescent", "option --expire-quiescent is not allowed with -a"),
        ("-A -t 198.18.0.100:80 --dest-check tcp", "DPVS's external checkers run in its dpvs-agent"),
        ("-A -t 198.18.0.100:80 --dest-check 0,3s", "down_retry must be at least 1"),
        ("-A -t 198.18.0.100:80 --dest-check 1,1,3s,60-30s", "inhibit_min is above inhibit_max"),
        ("-a -t 198.18.0.100:80 -r 198.19.0.11 --dest-check default", "option --dest-check is not allowed with -a"),
        ("-A -u 198.18.0.100:443 --quic", "--quic: valid DPVS's ipvsadm that rvs does not support"),
    ] {
        let e = err(args);
        assert!(e.contains(says), "{args}: {e}");
    }
}

#[test]
fn conns_json_streams_one_document() {
    let cmd = parse(&argv("-Lnc --json")).unwrap();
    let mut ctl = FakeCtl::new(vec![]);
    ctl.pages = conns().into();
    let mut out = Vec::new();
    run(&cmd, &mut ctl, &mut std::io::empty(), &mut out).unwrap();
    let back: ctl::ResponseMsg = serde_json::from_slice(&out).unwrap();
    assert_eq!(back.resp, Response::Conns { conns: conns().concat(), next: None });
    // empty table
    let mut ctl = FakeCtl::new(vec![]);
    let mut out = Vec::new();
    run(&cmd, &mut ctl, &mut std::io::empty(), &mut out).unwrap();
    let back: ctl::ResponseMsg = serde_json::from_slice(&out).unwrap();
    assert_eq!(back.resp, Response::Conns { conns: vec![], next: None });
}

#[test]
fn laddrs_golden() {
    let (out, _) = run_adm("-G", vec![Response::Services { services: demo() }]);
    let want = "\
VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     
198.18.0.100:80      2        
                              198.19.0.10          -          -         
                              198.19.0.9           -          -         
198.18.0.100:53      0        
[2001:db8::100]:443  1        
                              2001:db8:1::10       -          -         
";
    assert_eq!(out, want);
    let (out, _) = run_adm("-G -t 198.18.0.100:80", vec![Response::Services { services: demo() }]);
    assert_eq!(out.lines().count(), 4);
}

#[test]
fn save_golden() {
    let (out, _) = run_adm("-S -n", vec![Response::Services { services: demo() }, no_snat()]);
    let want = "\
-A -t 198.18.0.100:80 -s wrr
-a -t 198.18.0.100:80 -r 198.19.0.12:8080 -b -w 1
-a -t 198.18.0.100:80 -r 198.19.0.11:8080 -b -w 3
-P -t 198.18.0.100:80 -z 198.19.0.10
-P -t 198.18.0.100:80 -z 198.19.0.9
-A -u 198.18.0.100:53 -s rr -p 300 -M 255.255.255.0 --conn-timeout 30
-a -u 198.18.0.100:53 -r 198.19.0.21:53 -m -w 2 -x 100 -y 50
-A -t [2001:db8::100]:443 -s mh -p 60 -M 64 --sched-flags mh-fallback,mh-port
-a -t [2001:db8::100]:443 -r [2001:db8:1::11]:8443 -b -w 1
-P -t [2001:db8::100]:443 -z 2001:db8:1::10
";
    assert_eq!(out, want);
}

fn specs(views: &[ServiceView]) -> Vec<ServiceSpec> {
    views.iter().map(|v| ServiceSpec { service: v.service.clone(), laddrs: v.laddrs.clone() }).collect()
}

#[test]
fn acl_listings() {
    let mut views = demo();
    for v in &mut views {
        if v.service.key() == tcp80() {
            v.service.deny = vec!["192.0.2.0/24".parse().unwrap(), "198.51.100.7/32".parse().unwrap()];
        } else if v.service.vip.is_ipv6() {
            v.service.allow = vec!["2001:db8:aa::/48".parse().unwrap()];
        }
    }
    let (out, _) = run_adm("--get-blklst", vec![Response::Services { services: views.clone() }]);
    let want = "\
PROTO    VIP:VPORT                      BLACKLIST                     
TCP      198.18.0.100:80                192.0.2.0/24                  
TCP      198.18.0.100:80                198.51.100.7/32               
";
    assert_eq!(out, want);
    let (out, _) = run_adm("--get-whtlst -n", vec![Response::Services { services: views.clone() }]);
    assert_eq!(
        out.lines().nth(1).map(str::split_whitespace).map(Iterator::collect::<Vec<_>>),
        Some(vec!["TCP", "[2001:db8::100]:443", "2001:db8:aa::/48"])
    );
    let (out, _) = run_adm("--get-whtlst -t 198.18.0.100:80", vec![Response::Services { services: views.clone() }]);
    assert_eq!(out.lines().count(), 1, "only the title: {out}");
    let (out, _) = run_adm("--get-blklst --json", vec![Response::Services { services: views }]);
    assert!(out.contains("192.0.2.0/24"), "{out}");
}

#[test]
fn save_then_restore_round_trip() {
    let mut views = demo();
    // a few more shapes: all-ports persistent, sh without fallback, thresholds only upper
    let mut all = ServiceConfig::new(Proto::Tcp, ip("198.18.0.101"), 0);
    all.persistence = Some(PersistConfig::default());
    all.sched = SchedKind::Sh;
    all.hash_fallback = false;
    all.real_servers = vec![RealServerConfig {
        addr: ip("198.19.0.31"),
        port: 0,
        weight: 0,
        upper: 5,
        lower: 0,
        fwd: Default::default(),
    }];
    let mut lc = ServiceConfig::new(Proto::Udp, ip("2001:db8::53"), 53);
    lc.sched = SchedKind::Lc;
    lc.hash_port = true;
    lc.mh_table_size = Some(251);
    lc.deny = vec!["2001:db8:bad::/48".parse().unwrap()];
    lc.allow = vec!["2001:db8::/32".parse().unwrap(), "2001:db9::/32".parse().unwrap()];
    lc.rate_limit = Some(fnat::edge::RateLimit { rate: 500, burst: 20 });
    lc.source_limit = 4;
    lc.conn_timeout = 30;
    lc.ops = true;
    all.rate_limit = Some(fnat::edge::RateLimit { rate: 7, burst: 0 });
    views.push(view(all, &[], vec![(0, 0, None)], None));
    views.push(view(lc, &[], vec![], None));
    let mut ch = ServiceConfig::new(Proto::Tcp, ip("198.18.0.102"), 443);
    ch.sched = SchedKind::Conhash;
    ch.hash_port = true;
    ch.dest_check = Some("2,1,3s,10-600s".parse().unwrap());
    ch.expire_quiescent = true;
    ch.real_servers = vec![rs("198.19.0.41", 443, 2), rs("198.19.0.42", 443, 3)];
    let mut chv = view(ch, &[], vec![(0, 0, None), (0, 0, None)], None);
    chv.dests[1].inhibited = true;
    views.push(chv);

    // conhash is listed as DPVS lists it, with its hash target (and rvs's flags)
    let (out, _) = run_adm("-L -n", vec![status(), Response::Services { services: views.clone() }, no_snat()]);
    assert!(
        out.contains(
            "TCP  198.18.0.102:443 conhash sip (fallback,port) expire-quiescent dest-check internal:2,1,3s,10-600s\n"
        ),
        "{out}"
    );
    assert!(out.contains(" ops conn-timeout 30\n"), "ipvsadm's ops flag:\n{out}");
    // A server the passive check holds out lists weight 0, as DPVS; -S keeps its weight.
    assert!(out.contains("  -> 198.19.0.41:443              FullNat 2 "), "{out}");
    assert!(out.contains("  -> 198.19.0.42:443              FullNat 0 "), "{out}");
    let (saved, _) = run_adm("-S", vec![Response::Services { services: views.clone() }, no_snat()]);
    for line in [
        "-A -t 198.18.0.102:443 -s conhash --sched-flags fallback,port --expire-quiescent --dest-check 2,1,3s,10-600s",
        "-a -t 198.18.0.102:443 -r 198.19.0.42:443 -b -w 3",
        "-A -u [2001:db8::53]:53 -s lc -o --sched-flags fallback,port --mh-table-size 251 --conn-rate 500:20 \
         --source-limit 4 --conn-timeout 30",
        "--add-blklst -u [2001:db8::53]:53 -k 2001:db8:bad::/48",
        "--add-whtlst -u [2001:db8::53]:53 --whtlst-address 2001:db9::/32",
    ] {
        assert!(saved.lines().any(|l| l == line), "{line} in\n{saved}");
    }
    restores_to(&saved, &views);
}

/// `rvsadm -R` of `saved`: one atomic request holding the services of `views` (the save
/// is sorted, the state is not ordered by service), and saving what it restored prints
/// `saved` again.
fn restores_to(saved: &str, views: &[ServiceView]) {
    let mut ctl = FakeCtl::new(vec![]);
    run(&parse(&argv("-R")).unwrap(), &mut ctl, &mut saved.as_bytes(), &mut Vec::new()).unwrap();
    assert_eq!(ctl.requests.len(), 1, "one atomic request");
    let Request::ServiceReplace { services, .. } = &ctl.requests[0] else { panic!("{:?}", ctl.requests) };
    let mut got = services.clone();
    let mut want = specs(views);
    got.sort_by_key(|s| s.service.key());
    want.sort_by_key(|s| s.service.key());
    assert_eq!(got, want);
    let restored: Vec<ServiceView> = services
        .iter()
        .map(|s| ServiceView { laddrs: s.laddrs.clone(), ..view(s.service.clone(), &[], vec![], None) })
        .collect();
    let (again, _) = run_adm("-S", vec![Response::Services { services: restored }, no_snat()]);
    assert_eq!(again, saved);
}

#[test]
fn restore_applies_lines_in_order() {
    let text = "\
# rules
-A -t 198.18.0.100:80 -s rr

-a -t 198.18.0.100:80 -r 198.19.0.11:8080 -w 2
-a -t 198.18.0.100:80 -r 198.19.0.12:8080
-e -t 198.18.0.100:80 -r 198.19.0.12:8080 -w 5
-E -t 198.18.0.100:80 -s wrr
-A -u 198.18.0.100:53
-D -u 198.18.0.100:53
-P -t 198.18.0.100:80 -z 198.19.0.10
-d -t 198.18.0.100:80 -r 198.19.0.11:8080
";
    let set = restore::plan(text).unwrap();
    let mut want = ServiceConfig::new(Proto::Tcp, ip("198.18.0.100"), 80);
    want.sched = SchedKind::Wrr;
    want.real_servers = vec![rs("198.19.0.12", 8080, 5)];
    assert_eq!(set.services, vec![ServiceSpec { service: want, laddrs: vec![ip("198.19.0.10")] }]);
    assert!(set.snat.is_empty());
    let empty = ctl::verbs::Rules::default();
    assert_eq!(restore::plan("-A -t 198.18.0.100:80\n-A -H proto=udp\n-C\n").unwrap(), empty);
    assert_eq!(restore::plan("").unwrap(), empty);
}

#[test]
fn restore_errors_name_the_line() {
    let table = [
        ("-A -t 198.18.0.100:80\n-A -t 198.18.0.100:80\n", "line 2: service tcp 198.18.0.100:80 defined twice"),
        ("-a -t 198.18.0.100:80 -r 198.19.0.11\n", "line 1: no service tcp 198.18.0.100:80"),
        ("-A -t 198.18.0.100:80\n-L -n\n", "line 2: '-L -n' cannot be restored (only -A -E -D -a -e -d -P -Q -C)"),
        ("-A -t 198.18.0.100:80 -s nope\n", "line 1: unknown scheduler \"nope\""),
        (
            "-A -t 198.18.0.100:80\n\n-a -t 198.18.0.100:80 -r 1.1.1.1\n-a -t 198.18.0.100:80 -r 1.1.1.1:80\n",
            "line 4: tcp 198.18.0.100:80: real server 1.1.1.1:80 listed twice",
        ),
        ("--set 1 2 3\n", "line 1: only -A -E -D -a -e -d -P -Q -C can be restored"),
        (
            "-A -t 198.18.0.100:80\n-e -t 198.18.0.100:80 -r 1.1.1.1 -w 2\n",
            "line 2: tcp 198.18.0.100:80: no real server 1.1.1.1:80",
        ),
    ];
    for (text, want) in table {
        let e = restore::plan(text).unwrap_err();
        assert!(e.to_string().starts_with(want), "{text:?}: got {e}");
        assert_eq!(e.exit_code(), 2);
    }
    // a bad file sends nothing
    let mut ctl = FakeCtl::new(vec![]);
    let e = run(&AdmCmd::Restore, &mut ctl, &mut "-A -t 1.2.3.4:80 -s x\n".as_bytes(), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().starts_with("line 1:"));
    assert!(ctl.requests.is_empty());
}

#[test]
fn remote_errors_are_rvsds_sentence() {
    let cmd = parse(&argv("-A -t 198.18.0.100:80")).unwrap();
    let mut ctl = FakeCtl::default();
    ctl.replies.push_back(Err(CtlError::Remote {
        code: ErrorCode::Exists,
        message: "service tcp 198.18.0.100:80 exists".into(),
    }));
    let e = run(&cmd, &mut ctl, &mut std::io::empty(), &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "service tcp 198.18.0.100:80 exists");
    assert_eq!(e.exit_code(), 1);
    // a reply of the wrong kind is reported, not ignored
    let mut ctl = FakeCtl::new(vec![Response::Timeouts { timeouts: Timeouts::default() }]);
    let e = run(&cmd, &mut ctl, &mut std::io::empty(), &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "bad reply from rvsd: expected done, got timeouts");
}

#[test]
fn changes_send_exactly_one_request() {
    for args in ["-A -t 198.18.0.100:80", "-C", "-Z", "--set 1 2 3", "-P -t 198.18.0.100:80 -z 198.19.0.10"] {
        let (out, ctl) = run_adm(args, vec![Response::Done { gen: 2 }]);
        assert_eq!(out, "", "{args}");
        assert_eq!(ctl.requests.len(), 1, "{args}");
    }
    let _ = Duration::ZERO;
}

#[test]
fn synproxy_switch() {
    use fnat::synproxy::SynProxyMode;
    let svc = |s: &str| match change(s) {
        Request::ServiceAdd(spec) => spec.service,
        Request::ServiceEdit { service } => service,
        other => panic!("{other:?}"),
    };
    assert_eq!(svc("-A -t 198.18.0.100:80 -s rr").synproxy, None, "absent: rvsd's default mode");
    assert_eq!(svc("-A -t 198.18.0.100:80 -j enable").synproxy, Some(SynProxyMode::On));
    assert_eq!(svc("-A -t 198.18.0.100:80 --synproxy disable").synproxy, Some(SynProxyMode::Off));
    assert_eq!(svc("-E -t 198.18.0.100:80 -s wrr -j auto").synproxy, Some(SynProxyMode::Auto));
    assert!(err("-A -t 198.18.0.100:80 -j maybe").contains("synproxy switch must be enable, disable or auto"));
    assert!(err("-A -u 198.18.0.100:53 -j enable").contains("for TCP services"));
    assert!(err("-a -t 198.18.0.100:80 -r 198.19.0.11 -j enable").contains("-j"));

    // Listed as DPVS lists it, saved as a rule, restored to the same setting.
    let mut views = demo();
    views[1].service.synproxy = Some(SynProxyMode::On);
    views[0].service.synproxy = Some(SynProxyMode::Off);
    let (out, _) = run_adm("-L -n", vec![status(), Response::Services { services: views.clone() }, no_snat()]);
    assert!(out.contains("TCP  198.18.0.100:80 wrr synproxy\n"), "{out}");
    assert!(out.contains("mh (mh-fallback,mh-port) persistent 60 mask 64 synproxy off\n"), "{out}");
    let (saved, _) = run_adm("-S -n", vec![Response::Services { services: views }, no_snat()]);
    assert!(saved.contains("-A -t 198.18.0.100:80 -s wrr -j enable\n"), "{saved}");
    assert!(saved.contains("--sched-flags mh-fallback,mh-port -j disable\n"), "{saved}");
    let cmd = parse(&argv("-R")).unwrap();
    let mut ctl = FakeCtl::new(vec![]);
    run(&cmd, &mut ctl, &mut saved.as_bytes(), &mut Vec::new()).unwrap();
    let Request::ServiceReplace { services, .. } = &ctl.requests[0] else { panic!("{:?}", ctl.requests) };
    let web = services.iter().find(|s| s.service.vport == 80).expect("web");
    assert_eq!(web.service.synproxy, Some(SynProxyMode::On));
}

#[test]
fn proxy_protocol_switch() {
    use fnat::service::ProxyProtocol;
    let svc = |s: &str| match change(s) {
        Request::ServiceAdd(spec) => spec.service,
        Request::ServiceEdit { service } => service,
        other => panic!("{other:?}"),
    };
    assert_eq!(svc("-A -t 198.18.0.100:80 -s rr").proxy_protocol, None, "absent: none");
    assert_eq!(svc("-A -t 198.18.0.100:80 --proxy-protocol v1").proxy_protocol, Some(ProxyProtocol::V1));
    assert_eq!(svc("-A -t 198.18.0.100:80 --proxy-protocol v2").proxy_protocol, Some(ProxyProtocol::V2));
    assert_eq!(svc("-E -t 198.18.0.100:80 -s wrr --proxy-protocol v2").proxy_protocol, Some(ProxyProtocol::V2));
    assert_eq!(svc("-E -t 198.18.0.100:80 -s wrr --proxy-protocol disable").proxy_protocol, None);
    assert_eq!(svc("-E -t 198.18.0.100:80 -s wrr").proxy_protocol, None, "-E sets the whole service");
    assert!(err("-A -t 198.18.0.100:80 --proxy-protocol v3").contains("proxy protocol must be v1, v2 or disable"));
    assert!(err("-A -t 198.18.0.100:80 --proxy-protocol v2-insecure").contains("does not pass on a header"));
    assert!(err("-A -u 198.18.0.100:53 --proxy-protocol v1").contains("speaks of TCP only"));
    assert_eq!(svc("-A -u 198.18.0.100:53 --proxy-protocol v2").proxy_protocol, Some(ProxyProtocol::V2), "UDP: v2");
    assert!(err("-a -t 198.18.0.100:80 -r 198.19.0.11 --proxy-protocol v1").contains("--proxy-protocol"));

    // Listed as DPVS lists it (` ppv2`), saved as a rule, restored to the same setting.
    let mut views = demo();
    views[1].service.proxy_protocol = Some(ProxyProtocol::V2);
    views[0].service.proxy_protocol = Some(ProxyProtocol::V1);
    let (out, _) = run_adm("-L -n", vec![status(), Response::Services { services: views.clone() }, no_snat()]);
    assert!(out.contains("TCP  198.18.0.100:80 wrr ppv2\n"), "{out}");
    assert!(out.contains("mh (mh-fallback,mh-port) persistent 60 mask 64 ppv1\n"), "{out}");
    let (saved, _) = run_adm("-S -n", vec![Response::Services { services: views }, no_snat()]);
    assert!(saved.contains("-A -t 198.18.0.100:80 -s wrr --proxy-protocol v2\n"), "{saved}");
    assert!(saved.contains("--sched-flags mh-fallback,mh-port --proxy-protocol v1\n"), "{saved}");
    let cmd = parse(&argv("-R")).unwrap();
    let mut ctl = FakeCtl::new(vec![]);
    run(&cmd, &mut ctl, &mut saved.as_bytes(), &mut Vec::new()).unwrap();
    let Request::ServiceReplace { services, .. } = &ctl.requests[0] else { panic!("{:?}", ctl.requests) };
    let web = services.iter().find(|s| s.service.vport == 80).expect("web");
    assert_eq!(web.service.proxy_protocol, Some(ProxyProtocol::V2));
    assert!(services.iter().any(|s| s.service.proxy_protocol == Some(ProxyProtocol::V1)));
}

#[test]
fn uoa_switch() {
    use fnat::uoa::UoaMode;
    let svc = |s: &str| match change(s) {
        Request::ServiceAdd(spec) => spec.service,
        Request::ServiceEdit { service } => service,
        other => panic!("{other:?}"),
    };
    assert_eq!(svc("-A -u 198.18.0.100:53 -s rr").uoa, None, "absent: none");
    assert_eq!(svc("-A -u 198.18.0.100:53 --uoa opp").uoa, Some(UoaMode::Opp));
    assert_eq!(svc("-E -u 198.18.0.100:53 -s rr --uoa ipo").uoa, Some(UoaMode::Ipo));
    assert_eq!(svc("-E -u 198.18.0.100:53 -s rr --uoa disable").uoa, None);
    assert!(err("-A -u 198.18.0.100:53 --uoa tcp").contains("uoa must be ipo, opp or disable, not 'tcp'"));
    assert!(err("-A -t 198.18.0.100:80 --uoa opp").contains("UOA (--uoa) is for UDP services"));
    assert!(err("-a -u 198.18.0.100:53 -r 198.19.0.11 --uoa opp").contains("--uoa"));

    // Listed (` uoa-opp`), saved as a rule, restored to the same setting.
    let mut views = demo();
    views[1].service.proto = Proto::Udp;
    views[1].service.uoa = Some(UoaMode::Opp);
    let (out, _) = run_adm("-L -n", vec![status(), Response::Services { services: views.clone() }, no_snat()]);
    assert!(out.contains("UDP  198.18.0.100:80 wrr uoa-opp\n"), "{out}");
    let (saved, _) = run_adm("-S -n", vec![Response::Services { services: views }, no_snat()]);
    assert!(saved.contains("-A -u 198.18.0.100:80 -s wrr --uoa opp\n"), "{saved}");
    let mut ctl = FakeCtl::new(vec![]);
    run(&parse(&argv("-R")).unwrap(), &mut ctl, &mut saved.as_bytes(), &mut Vec::new()).unwrap();
    let Request::ServiceReplace { services, .. } = &ctl.requests[0] else { panic!("{:?}", ctl.requests) };
    assert!(services.iter().any(|s| s.service.uoa == Some(UoaMode::Opp)));
}

/// DPVS's SNAT commands: `-A -H MATCH`, `-a -H MATCH -r WAN:0 -J`, `-d`, `-D`; what a
/// SNAT rule cannot take is refused by name.
#[test]
fn snat_commands_and_refusals() {
    const M: &str = "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1";
    let rule = ctl::SnatSpec::from_match(M).unwrap();
    let wan = ip("123.1.2.3");
    let table: Vec<(String, Request)> = vec![
        (format!("-A -s rr -H {M}"), Request::SnatAdd { rule: rule.clone() }),
        (format!("--add-service --match {M}"), Request::SnatAdd { rule: rule.clone() }),
        (format!("-a -H {M} -r 123.1.2.3:0 -J"), Request::SnatWan { rule: rule.clone(), wan, add: true }),
        (format!("-a -H {M} -r 123.1.2.3"), Request::SnatWan { rule: rule.clone(), wan, add: true }),
        (format!("-d -H {M} -r 123.1.2.3:0 -J"), Request::SnatWan { rule: rule.clone(), wan, add: false }),
        (format!("-D -H {M}"), Request::SnatDel { rule: rule.clone() }),
        // rvs's name for a rule, as -S saves it.
        (
            format!("-A -H {M} -s rr --name lan"),
            Request::SnatAdd { rule: ctl::SnatSpec { name: Some("lan".into()), ..rule.clone() } },
        ),
        // DPVS's ICMP rules (ping from the inside).
        (
            "-A -s rr -H proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".to_string(),
            Request::SnatAdd { rule: ctl::SnatSpec { proto: Some(Proto::Icmp), ..rule.clone() } },
        ),
    ];
    for (args, want) in table {
        assert_eq!(change(&args), want, "{args}");
    }
    for (args, says) in [
        (format!("-a -H {M} -r 123.1.2.3:0 -w 100 -J"), "-w 100"),
        (format!("-A -s wrr -H {M}"), "-s wrr"),
        (format!("-A -H {M} -p 60"), "-p is not for a SNAT rule"),
        (format!("-a -H {M} -r 123.1.2.3:80 -J"), "port must be 0"),
        (format!("-a -H {M} -J"), "needs a WAN address"),
        (format!("-a -H {M} -r 123.1.2.3:0 -b"), "-b is not for a SNAT rule"),
        (format!("-a -H {M} -r 123.1.2.3:0 -x 5"), "-x is not for a SNAT rule"),
        (format!("-A -t 198.18.0.100:80 -H {M}"), "not both"),
        ("-A -H proto=sctp,oif=dpdk1".to_string(), "one of tcp, udp, icmp"),
        ("-A -H src-range=nope".to_string(), "src-range"),
        ("-a -t 198.18.0.100:80 -r 198.19.0.11 -J".to_string(), "-J (SNAT)"),
        (format!("-e -H {M} -r 123.1.2.3"), "-H is not allowed with -e"),
        (format!("-L -H {M}"), "-H is not allowed with -L"),
        (format!("-a -H {M} -r 123.1.2.3:0 -J --name lan"), "--name is not allowed with -a"),
        (format!("-D -H {M} --name lan"), "--name is not allowed with -D"),
        (format!("-E -H {M} --name lan"), "--name names a SNAT rule when it is added"),
        ("-A -t 198.18.0.100:80 --name web".to_string(), "--name names a SNAT rule when it is added"),
    ] {
        let e = err(&args);
        assert!(e.contains(says), "{args}: {e}");
    }
    let spaced = parse(&["rvsadm", "-A", "-H", M, "--name", "a b"]).unwrap_err().to_string();
    assert!(spaced.contains("one word"), "{spaced}");
}

#[test]
fn snat_rules_are_listed_after_the_services() {
    let rules = vec![ctl::SnatSpec {
        name: Some("servers".into()),
        wan: vec![ip("198.18.0.5"), ip("198.18.0.6")],
        ..ctl::SnatSpec::from_match("proto=tcp,src-range=198.19.0.11-198.19.0.12,oif=dpdk0").unwrap()
    }];
    let (out, _) = run_adm("-L -n", vec![status(), Response::Services { services: vec![] }, Response::Snat { rules }]);
    let want = "\
MATCH proto=tcp,src-range=198.19.0.11-198.19.0.12,oif=dpdk0 rr (servers)
  -> 198.18.0.5:0                 SNAT    1      -          -         
  -> 198.18.0.6:0                 SNAT    1      -          -         
";
    assert!(out.ends_with(want), "{out}");
}

/// `-S` saves the SNAT rules after the services as DPVS's commands; `-R` restores them
/// with the services in one request, which saves to the same lines again.
#[test]
fn snat_rules_are_saved_and_restored() {
    let rules = vec![
        ctl::SnatSpec {
            name: Some("snat0".into()),
            wan: vec![ip("198.18.0.5"), ip("2001:db8::5")],
            ..ctl::SnatSpec::from_match("proto=tcp,src-range=198.19.0.11-198.19.0.12,oif=dpdk0").unwrap()
        },
        ctl::SnatSpec { name: Some("lan".into()), ..ctl::SnatSpec::from_match("proto=any").unwrap() },
    ];
    let (saved, _) =
        run_adm("-S", vec![Response::Services { services: demo() }, Response::Snat { rules: rules.clone() }]);
    let want = "\
-A -H proto=tcp,src-range=198.19.0.11-198.19.0.12,oif=dpdk0 -s rr --name snat0
-a -H proto=tcp,src-range=198.19.0.11-198.19.0.12,oif=dpdk0 -r 198.18.0.5:0 -J
-a -H proto=tcp,src-range=198.19.0.11-198.19.0.12,oif=dpdk0 -r [2001:db8::5]:0 -J
-A -H proto=any -s rr --name lan
";
    assert!(saved.ends_with(want), "{saved}");
    let mut ctl = FakeCtl::new(vec![]);
    run(&parse(&argv("-R")).unwrap(), &mut ctl, &mut saved.as_bytes(), &mut Vec::new()).unwrap();
    assert_eq!(ctl.requests.len(), 1, "one atomic request");
    let Request::ServiceReplace { services, snat: Some(snat) } = &ctl.requests[0] else { panic!("{:?}", ctl.requests) };
    assert_eq!(snat, &rules, "the same rules, with their names (rvs's --name)");
    assert_eq!(services.len(), demo().len());
    let (again, _) =
        run_adm("-S", vec![Response::Services { services: demo() }, Response::Snat { rules: snat.clone() }]);
    assert_eq!(again, saved);
    // A file with no SNAT line clears them (the result is exactly the file).
    let mut ctl = FakeCtl::new(vec![]);
    run(&parse(&argv("-R")).unwrap(), &mut ctl, &mut "-A -t 198.18.0.100:80\n".as_bytes(), &mut Vec::new()).unwrap();
    assert!(matches!(&ctl.requests[0], Request::ServiceReplace { snat: Some(s), .. } if s.is_empty()));
    // A WAN address for a rule the file has not defined names the line.
    let e = restore::plan("-a -H proto=udp -r 198.18.0.5:0 -J\n").unwrap_err();
    assert_eq!(e.to_string(), "line 1: no SNAT rule with match proto=udp");
}

/// ipvsadm's sync daemon commands: start and stop a role (nothing printed), `-L --daemon`
/// lists the roles running in ipvsadm's words.
#[test]
fn sync_daemon_commands() {
    let view = |role| ctl::SyncDaemonView {
        role,
        syncid: 7,
        transport: "mcast=224.0.0.81:8848 on 10.0.0.1".into(),
        maxlen: 1432,
    };
    let both = Response::SyncDaemons { daemons: vec![view(ctl::SyncRole::Master), view(ctl::SyncRole::Backup)] };
    let done = Response::Done { gen: 3 };
    let (out, ctl) = run_adm("--start-daemon master --syncid 7 --mcast-interface eth1", vec![done.clone()]);
    assert_eq!(out, "");
    assert_eq!(
        ctl.requests,
        vec![Request::SyncDaemon {
            role: ctl::SyncRole::Master,
            start: true,
            syncid: Some(7),
            mcast_interface: Some("eth1".into())
        }]
    );
    let (_, ctl) = run_adm("--stop-daemon backup", vec![done]);
    assert_eq!(
        ctl.requests,
        vec![Request::SyncDaemon { role: ctl::SyncRole::Backup, start: false, syncid: None, mcast_interface: None }]
    );
    let (out, ctl) = run_adm("-L --daemon", vec![both.clone()]);
    assert_eq!(ctl.requests, vec![Request::SyncDaemons {}]);
    assert_eq!(
        out,
        "master sync daemon (mcast=224.0.0.81:8848 on 10.0.0.1, syncid=7, maxlen=1432)\n\
         backup sync daemon (mcast=224.0.0.81:8848 on 10.0.0.1, syncid=7, maxlen=1432)\n"
    );
    let (out, _) = run_adm("-L --daemon --json", vec![both.clone()]);
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    assert_eq!(back.resp, both);
}

// ---- firewall-mark services (-f MARK, -6) ----------------------------------------

fn fw(mark: u32) -> ServiceKey {
    ServiceKey::of_fwmark(mark, false)
}

fn fw6(mark: u32) -> ServiceKey {
    ServiceKey::of_fwmark(mark, true)
}

/// Every command ipvsadm takes `-f MARK` with, in short and long forms, with and without
/// `-6` (before or after `-f`), and MARK in decimal and hex.
#[test]
fn fwmark_service_commands() {
    let add = |key: ServiceKey, f: &dyn Fn(&mut ServiceConfig)| {
        let mut svc = ServiceConfig::with_key(key);
        f(&mut svc);
        Request::ServiceAdd(ServiceSpec { service: svc, laddrs: vec![] })
    };
    let sched = |s: SchedKind| move |c: &mut ServiceConfig| c.sched = s;
    let fwd = |addr: &str, port: u16, weight: u32, fwd: FwdMode| RealServerConfig { fwd, ..rs(addr, port, weight) };
    let mut edited = ServiceConfig::with_key(fw(1));
    edited.sched = SchedKind::Rr;
    let table: Vec<(&str, Request)> = vec![
        // A fwmark service is port 0 without being persistent (ipvsadm's zero-port check skips it).
        ("-A -f 1", add(fw(1), &|_| {})),
        ("-A -f 1 -s wlc", add(fw(1), &sched(SchedKind::Wlc))),
        ("--add-service --fwmark-service 1 --scheduler sh", add(fw(1), &sched(SchedKind::Sh))),
        ("--add-service --fwmark-service=1 --ipv6", add(fw6(1), &|_| {})),
        ("-A -f 0x10 -s rr", add(fw(16), &sched(SchedKind::Rr))),
        ("-A -f 010", add(fw(10), &|_| {})),
        ("-A -f 4294967295", add(fw(u32::MAX), &|_| {})),
        ("-A -f 1 -6 -s rr", add(fw6(1), &sched(SchedKind::Rr))),
        ("-A -6 -f 1 -s rr", add(fw6(1), &sched(SchedKind::Rr))),
        ("-Af 1", add(fw(1), &|_| {})),
        (
            "-A -f 1 -p 600 -M 255.255.255.0",
            add(fw(1), &|c| c.persistence = Some(PersistConfig { timeout_s: 600, netmask_v4: 24, netmask_v6: 128 })),
        ),
        (
            "-A -f 2 -6 -p -M 64",
            add(fw6(2), &|c| c.persistence = Some(PersistConfig { timeout_s: 300, netmask_v4: 32, netmask_v6: 64 })),
        ),
        ("-A -f 1 --proxy-protocol disable --uoa disable", add(fw(1), &|_| {})),
        ("-A -f 1 -j enable", add(fw(1), &|c| c.synproxy = Some(fnat::synproxy::SynProxyMode::On))),
        ("-E -f 1 -s rr", Request::ServiceEdit { service: edited }),
        ("--edit-service --fwmark-service 1", Request::ServiceEdit { service: ServiceConfig::with_key(fw(1)) }),
        ("-D -f 1", Request::ServiceDel { key: fw(1) }),
        ("-D -f 1 -6", Request::ServiceDel { key: fw6(1) }),
        ("--delete-service --fwmark-service 0x1 --ipv6", Request::ServiceDel { key: fw6(1) }),
        // Real servers: no port = port 0, each flow's own destination port.
        ("-a -f 1 -r 10.0.0.2", Request::RealServerAdd { key: fw(1), rs: rs("10.0.0.2", 0, 1) }),
        ("-a -f 1 -r 10.0.0.2:0 -b -w 1", Request::RealServerAdd { key: fw(1), rs: rs("10.0.0.2", 0, 1) }),
        (
            "-a -f 1 -r 10.0.0.3:8080 -m -w 3",
            Request::RealServerAdd { key: fw(1), rs: fwd("10.0.0.3", 8080, 3, FwdMode::Nat) },
        ),
        ("-a -f 1 -r 10.0.0.4 -g", Request::RealServerAdd { key: fw(1), rs: fwd("10.0.0.4", 0, 1, FwdMode::Dr) }),
        ("-a -f 1 -6 -r 2001:db8::2", Request::RealServerAdd { key: fw6(1), rs: rs("2001:db8::2", 0, 1) }),
        ("-a -f 1 -6 -r [2001:db8::2]:443", Request::RealServerAdd { key: fw6(1), rs: rs("2001:db8::2", 443, 1) }),
        // NAT64 (an IPv4 server of an IPv6 service) is rvsd's to judge, as for -t/-u.
        ("-a -f 1 -6 -r 10.0.0.2 -b", Request::RealServerAdd { key: fw6(1), rs: rs("10.0.0.2", 0, 1) }),
        (
            "--add-server --fwmark-service 1 --real-server 10.0.0.2 --weight 0",
            Request::RealServerAdd { key: fw(1), rs: rs("10.0.0.2", 0, 0) },
        ),
        (
            "-e -f 1 -r 10.0.0.2 -w 5",
            Request::RealServerEdit {
                key: fw(1),
                addr: ip("10.0.0.2"),
                port: 0,
                change: RealServerEdit { weight: Some(5), ..Default::default() },
            },
        ),
        ("-d -f 1 -r 10.0.0.2", Request::RealServerDel { key: fw(1), addr: ip("10.0.0.2"), port: 0 }),
        ("-d -f 1 -6 -r [2001:db8::2]:0", Request::RealServerDel { key: fw6(1), addr: ip("2001:db8::2"), port: 0 }),
        ("-Z -f 1", Request::ZeroCounters { key: Some(fw(1)) }),
        ("--zero --fwmark-service 7 -6", Request::ZeroCounters { key: Some(fw6(7)) }),
        // DPVS's per-service commands take it too (-S writes them for a fwmark service).
        ("-P -f 1 -z 198.19.0.10", Request::LaddrAdd { key: fw(1), addr: ip("198.19.0.10") }),
        ("-Q -f 1 -6 -z 2001:db8:1::10", Request::LaddrDel { key: fw6(1), addr: ip("2001:db8:1::10") }),
        (
            "--add-blklst -f 1 -k 192.0.2.7/24",
            Request::ServiceAcl {
                key: fw(1),
                allow: false,
                add: true,
                prefixes: vec!["192.0.2.0/24".parse().unwrap()],
            },
        ),
    ];
    for (args, want) in table {
        assert_eq!(change(args), want, "{args}");
    }
    // The key is the ctl types' fwmark key: mark, family, TCP, port 0.
    let Request::ServiceDel { key } = change("-D -f 3 -6") else { unreachable!() };
    assert_eq!((key.fwmark, key.vip, key.vport, key.proto), (3, ip("::"), 0, Proto::Tcp));
    assert!(key.is_fwmark());
}

#[test]
fn fwmark_listing_commands() {
    let list = |s: &str| parse(&argv(s)).unwrap();
    let plain = ListOpts { key: Some(fw(1)), view: View::Plain, exact: false, sort: true, json: false };
    assert_eq!(list("-L -f 1"), AdmCmd::List(plain));
    assert_eq!(list("-l -n -f 1"), AdmCmd::List(plain));
    assert_eq!(list("--list --fwmark-service 1"), AdmCmd::List(plain));
    assert_eq!(list("-Ln -f 1 -6"), AdmCmd::List(ListOpts { key: Some(fw6(1)), ..plain }));
    assert_eq!(list("-Ln -f 1 --stats"), AdmCmd::List(ListOpts { view: View::Stats, ..plain }));
    assert_eq!(list("-Ln -f 1 --rate"), AdmCmd::List(ListOpts { view: View::Rate, ..plain }));
    assert_eq!(list("-Ln -f 1 --thresholds"), AdmCmd::List(ListOpts { view: View::Thresholds, ..plain }));
    assert_eq!(list("-Ln -f 1 --persistent-conn"), AdmCmd::List(ListOpts { view: View::PersistConn, ..plain }));
    assert_eq!(list("-Ln -f 1 --stats --exact"), AdmCmd::List(ListOpts { view: View::Stats, exact: true, ..plain }));
    assert_eq!(list("-Ln -f 1 --json"), AdmCmd::List(ListOpts { json: true, ..plain }));
    assert_eq!(list("-G -f 1"), AdmCmd::Laddrs { key: Some(fw(1)), json: false });
    assert_eq!(list("--get-blklst -f 2 -6"), AdmCmd::Acls { key: Some(fw6(2)), allow: false, json: false });
    assert!(matches!(list("-h"), AdmCmd::Print(t) if t.contains("--fwmark-service <MARK>") && t.contains("--ipv6")));
}

#[test]
fn fwmark_errors_name_the_problem() {
    let range = "(expected an integer 1..=4294967295, decimal or 0x hex)";
    let table: Vec<(&str, String)> = vec![
        ("-A -f 0", "fwmark 0 is no mark (expected 1..=4294967295)".into()),
        ("-D -f 0x0", "fwmark 0x0 is no mark (expected 1..=4294967295)".into()),
        ("-A -f web", format!("invalid fwmark value 'web' {range}")),
        ("-a -f 1.5 -r 10.0.0.2", format!("invalid fwmark value '1.5' {range}")),
        ("-L -f 0xzz", format!("invalid fwmark value '0xzz' {range}")),
        ("-A -f 4294967296", "fwmark 4294967296 out of range (1..=4294967295)".into()),
        ("-A -f", "a value is required for '--fwmark-service <MARK>' but none was supplied".into()),
        (
            "-A -f 1 -t 198.18.0.100:80",
            "give -f 1 or -t/-u, not both: a firewall-mark service has no address, port or protocol of its own".into(),
        ),
        ("-a -u 198.18.0.100:53 -f 1 -r 10.0.0.2", "give -f 1 or -t/-u, not both".into()),
        (
            "-A -6 -t [2001:db8::1]:80",
            "-6 (--ipv6) makes a firewall-mark service IPv6: give it with -f MARK (-t and -u take an IPv6 address as \
             it is)"
                .into(),
        ),
        ("-L -6", "-6 (--ipv6) makes a firewall-mark service IPv6: give it with -f MARK".into()),
        ("-a -6 -r 2001:db8::2", "-6 (--ipv6) makes a firewall-mark service IPv6".into()),
        ("-C -f 1", "option -f is not allowed with -C (--clear)".into()),
        ("-C -6", "option -6 is not allowed with -C (--clear)".into()),
        ("-S -f 1", "option -f is not allowed with -S (--save)".into()),
        ("--set 1 2 3 -f 1", "option -f is not allowed with --set (--set)".into()),
        ("--start-daemon master -f 1", "option -f is not allowed with --start-daemon".into()),
        ("-Lnc -f 1", "-c lists everything; it takes no service".into()),
        ("-L --timeout -f 1", "--timeout lists everything; it takes no service".into()),
        ("-L --daemon -f 1", "--daemon lists the sync roles: it takes no service".into()),
        (
            "-A -f 1 -o",
            "one-packet scheduling (-o) is for one protocol, and a firewall-mark service takes TCP and UDP: fwmark 1 \
             (use a -t or -u service)"
                .into(),
        ),
        (
            "-E -f 1 -6 --uoa opp",
            "UOA (--uoa) is for one protocol, and a firewall-mark service takes TCP and UDP: fwmark 1 IPv6".into(),
        ),
        (
            "-A -f 1 --proxy-protocol v2",
            "the PROXY protocol (--proxy-protocol) is for one protocol, and a firewall-mark service takes TCP and UDP"
                .into(),
        ),
        (
            "-a -f 1 -r 2001:db8::2",
            "real server 2001:db8::2 is IPv6 and fwmark 1 is an IPv4 service (an IPv6 one is -f 1 -6)".into(),
        ),
        (
            "-P -f 7 -z 2001:db8:1::10",
            "local address 2001:db8:1::10 is IPv6 and fwmark 7 is an IPv4 service (an IPv6 one is -f 7 -6)".into(),
        ),
        ("-a -f 1 -r 10.0.0.2 -s rr", "option -s is not allowed with -a (--add-server)".into()),
        (
            "-A -f 1 -6 -p -M 255.255.255.0",
            "bad netmask '255.255.255.0' (an IPv6 service takes a prefix length 1..=128)".into(),
        ),
        ("-A -f 1 -H proto=tcp", "give -t/-u/-f or -H (a SNAT rule's match), not both".into()),
        ("-A -H proto=tcp -6", "-6 is not for a SNAT rule (-H)".into()),
    ];
    for (args, want) in table {
        let got = err(args);
        assert!(got.starts_with(&want), "{args}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "{args}: {got:?} is not one line");
    }
}

/// Two firewall-mark services of mark 1 (IPv4, persistent, one server on port 0 and one
/// on 8080; IPv6) and one of mark 2, given out of order.
fn fw_views() -> Vec<ServiceView> {
    let mut one = ServiceConfig::with_key(fw(1));
    one.persistence = Some(PersistConfig { timeout_s: 300, netmask_v4: 24, netmask_v6: 128 });
    one.real_servers = vec![rs("10.0.0.2", 0, 1), RealServerConfig { fwd: FwdMode::Nat, ..rs("10.0.0.3", 8080, 2) }];
    one.deny = vec!["192.0.2.0/24".parse().unwrap()];
    let mut one6 = ServiceConfig::with_key(fw6(1));
    one6.sched = SchedKind::Rr;
    one6.real_servers = vec![rs("2001:db8::2", 0, 1)];
    let mut two = ServiceConfig::with_key(fw(2));
    two.sched = SchedKind::Sh;
    two.conn_timeout = 30;
    two.real_servers = vec![RealServerConfig { fwd: FwdMode::Dr, ..rs("10.0.0.4", 0, 1) }];
    vec![
        view(two, &[], vec![(0, 1, Some(counters(1, 2, 3, 4, 5)))], Some(counters(1, 2, 3, 4, 5))),
        view(one6, &["2001:db8:1::10"], vec![(0, 0, None)], None),
        view(
            one,
            &["198.19.0.10"],
            vec![(3, 4, Some(counters(7, 70, 60, 7000, 6000))), (0, 0, None)],
            Some(counters(7, 70, 60, 7000, 6000)),
        ),
    ]
}

/// ipvsadm's `FWM  1` lines, after the VIP:port services, by mark then family; real
/// servers with the port they have (`:0` for the client's own).
#[test]
fn fwmark_list_golden() {
    let mut all = demo();
    all.extend(fw_views());
    let (out, _) = run_adm("-Ln", vec![status(), Response::Services { services: all }, no_snat()]);
    let want = "\
TCP  [2001:db8::100]:443 mh (mh-fallback,mh-port) persistent 60 mask 64
  -> [2001:db8:1::11]:8443        FullNat 1      1          0         
FWM  1 wlc persistent 300 mask 255.255.255.0
  -> 10.0.0.2:0                   FullNat 1      3          4         
  -> 10.0.0.3:8080                Masq    2      0          0         
FWM  1 IPv6 rr
  -> [2001:db8::2]:0              FullNat 1      0          0         
FWM  2 sh (sh-fallback) conn-timeout 30
  -> 10.0.0.4:0                   Route   1      0          1         
";
    assert!(out.ends_with(want), "{out}");
    assert!(out.starts_with("rvs 0.1.0 (conn pool size=1048576 per worker)\nProt LocalAddress:Port Scheduler Flags\n"));

    // One service: `-L -f 1` is the IPv4 one only; `-6` the IPv6 one.
    let (out, _) = run_adm("-Ln -f 1", vec![status(), Response::Services { services: fw_views() }]);
    let services: Vec<&str> = out.lines().filter(|l| l.starts_with("FWM")).collect();
    assert_eq!(services, ["FWM  1 wlc persistent 300 mask 255.255.255.0"], "{out}");
    let (out, _) = run_adm("-Ln -f 1 -6", vec![status(), Response::Services { services: fw_views() }]);
    assert!(out.ends_with("FWM  1 IPv6 rr\n  -> [2001:db8::2]:0              FullNat 1      0          0         \n"));
    let mut ctl = FakeCtl::new(vec![status(), Response::Services { services: fw_views() }]);
    let e = run(&parse(&argv("-Ln -f 2 -6")).unwrap(), &mut ctl, &mut std::io::empty(), &mut Vec::new()).unwrap_err();
    assert_eq!((e.to_string(), e.exit_code()), ("no service fwmark 2 IPv6".to_string(), 1));

    // The counter views name it the same way, in the same columns.
    let (out, _) = run_adm("-Ln --stats -f 1", vec![status(), Response::Services { services: fw_views() }]);
    assert!(
        out.ends_with(
            "FWM  1                                   7       70       60     7000     6000\n\
             \x20 -> 10.0.0.2:0                          7       70       60     7000     6000\n\
             \x20 -> 10.0.0.3:8080                       0        0        0        0        0\n"
        ),
        "{out}"
    );
    let (out, _) = run_adm("-Ln --thresholds -f 2", vec![status(), Response::Services { services: fw_views() }]);
    assert!(out.ends_with("FWM  2 sh (sh-fallback) conn-timeout 30\n  -> 10.0.0.4:0                   0          0          0          1         \n"), "{out}");
    let (first, mut second) = (fw_views(), fw_views());
    second[2].stats.as_mut().unwrap().conns += 50;
    second[2].dests[0].stats.as_mut().unwrap().conns += 50;
    let (out, _) = run_adm(
        "-Ln --rate -f 1",
        vec![status(), Response::Services { services: first }, Response::Services { services: second }],
    );
    assert!(out.contains("FWM  1                                  50        0        0        0        0\n"), "{out}");
    assert!(out.contains("  -> 10.0.0.2:0                         50        0        0        0        0\n"), "{out}");

    // DPVS's -G and --get-blklst name it too.
    let (out, _) = run_adm("-G", vec![Response::Services { services: fw_views() }]);
    assert!(out.contains("\nFWM  1               1        \n                              198.19.0.10 "), "{out}");
    assert!(out.contains("\nFWM  1 IPv6          1        \n"), "{out}");
    let (out, _) = run_adm("--get-blklst", vec![Response::Services { services: fw_views() }]);
    assert_eq!(
        out.lines().skip(1).map(|l| l.split_whitespace().collect::<Vec<_>>()).collect::<Vec<_>>(),
        vec![vec!["FWM", "1", "192.0.2.0/24"]]
    );
}

/// `--json` carries the key as the ctl types serialize it: `fwmark` beside the unspecified
/// VIP, port 0 and tcp; absent on a VIP:port service.
#[test]
fn fwmark_json_carries_the_key() {
    let mut all = demo();
    all.extend(fw_views());
    let (out, _) = run_adm("-Ln --json -f 1 -6", vec![Response::Services { services: all.clone() }]);
    let back: ctl::ResponseMsg = serde_json::from_str(&out).unwrap();
    let Response::Services { services } = back.resp else { panic!("{out}") };
    assert_eq!(services.iter().map(|s| s.service.key()).collect::<Vec<_>>(), vec![fw6(1)]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let svc = &doc["services"][0]["service"];
    assert_eq!((svc["fwmark"].as_u64(), svc["vip"].as_str(), svc["vport"].as_u64()), (Some(1), Some("::"), Some(0)));
    let (out, _) = run_adm("-Ln --json", vec![Response::Services { services: all }, no_snat()]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let marks: Vec<Option<u64>> =
        doc["services"].as_array().unwrap().iter().map(|s| s["service"]["fwmark"].as_u64()).collect();
    assert_eq!(marks, [None, None, None, Some(2), Some(1), Some(1)], "in rvsd's order: {out}");
}

/// `-S` writes ipvsadm's `-A -f 1` / `-a -f 1 -r ADDR:0` lines (`-f 1 -6` for IPv6), `-R`
/// reads them back to the same services, which save to the same lines.
#[test]
fn fwmark_save_then_restore_round_trip() {
    let mut views = demo();
    views.extend(fw_views());
    let (saved, _) = run_adm("-S", vec![Response::Services { services: views.clone() }, no_snat()]);
    let want = "\
-A -f 1 -s wlc -p 300 -M 255.255.255.0
-a -f 1 -r 10.0.0.2:0 -b -w 1
-a -f 1 -r 10.0.0.3:8080 -m -w 2
-P -f 1 -z 198.19.0.10
--add-blklst -f 1 -k 192.0.2.0/24
-A -f 1 -6 -s rr
-a -f 1 -6 -r [2001:db8::2]:0 -b -w 1
-P -f 1 -6 -z 2001:db8:1::10
-A -f 2 -s sh --conn-timeout 30
-a -f 2 -r 10.0.0.4:0 -g -w 1
";
    assert!(saved.ends_with(want), "{saved}");
    assert!(saved.starts_with("-A -t 198.18.0.100:80 -s wrr\n"), "VIP:port services first: {saved}");

    restores_to(&saved, &views);

    // ipvsadm's own -S lines for a fwmark service restore too (-6 after -f; no port).
    let set = restore::plan("-A -f 1\n-A -f 5 -6 -s wrr\n-a -f 5 -6 -r 2001:db8::9 -i -w 4\n-D -f 1\n").unwrap();
    let mut five = ServiceConfig::with_key(fw6(5));
    five.sched = SchedKind::Wrr;
    five.real_servers = vec![RealServerConfig { fwd: FwdMode::Tunnel, ..rs("2001:db8::9", 0, 4) }];
    assert_eq!(set.services, vec![ServiceSpec { service: five, laddrs: vec![] }]);
    // A line for a fwmark service the file has not defined names the line and the mark.
    let e = restore::plan("-A -f 1\n-a -f 1 -6 -r 2001:db8::9\n").unwrap_err();
    assert!(e.to_string().starts_with("line 2: no service fwmark 1 IPv6"), "{e}");
}
