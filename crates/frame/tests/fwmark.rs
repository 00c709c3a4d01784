//! Whole-frame fixtures for firewall-mark services: rvs's own mark rules put new flows
//! of several ports, both protocols and both families into one service, ahead of the
//! VIP:port services, with one persistence over all of them; a mark without a service
//! is no mark, and no rule turns a stray reply to a local address into a connection.

mod world;

use fnat::fwmark::FwmarkRule;
use fnat::persist::PersistConfig;
use fnat::service::ServiceKey;
use netstack::PortId;
use world::*;

const RIP2: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
const CIP2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);

fn rule(mark: u32, text: &str) -> FwmarkRule {
    FwmarkRule::from_match(mark, text).unwrap()
}

/// A fwmark service, round robin, persistent for 300 s per client address.
fn fwmark_svc(mark: u32, v6: bool, servers: &[RealServerConfig]) -> ServiceConfig {
    let mut c = ServiceConfig::with_key(ServiceKey::of_fwmark(mark, v6));
    c.sched = SchedKind::Rr;
    c.persistence = Some(PersistConfig { timeout_s: 300, netmask_v4: 32, netmask_v6: 128 });
    c.real_servers = servers.to_vec();
    c
}

fn tcp_syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::eth(CLIENT, US0);
    let b = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s, d),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s, d),
        _ => unreachable!(),
    };
    b.tcp(sport, dport).seq(100).flags(SYN).mss(1400).build()
}

fn udp4(src: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    PacketBuilder::eth(CLIENT, US0).ipv4(src, VIP).udp(sport, dport).payload(b"ping").build()
}

/// A frame out of dpdk1 from `src` to `dst:dport` (checksums judged).
fn towards(src: IpAddr, dst: IpAddr, dport: u16) -> (Sink, Want) {
    check(Sink::Tx(1), move |f| {
        let s = judge_eth(f);
        assert_eq!((s.src, s.dst, s.dport), (src, dst, dport), "frame out of dpdk1");
    })
}

/// A frame out of dpdk0 from `src:sport` to `dst:dport` (checksums judged).
fn towards_client(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> (Sink, Want) {
    check(Sink::Tx(0), move |f| {
        let s = judge_eth(f);
        assert_eq!((s.src, s.sport, s.dst, s.dport), (src, sport, dst, dport), "frame out of dpdk0");
    })
}

#[test]
fn fwmark_services_take_marked_flows_of_every_port_and_protocol_with_one_persistence() {
    let mut w = World::new(1);
    w.neighs.insert_static(RIP2.into(), SERVER, PortId(1), 0);
    let (vip, vip6, lip, lip6, rip, rip2, rip6) = (
        IpAddr::from(VIP),
        IpAddr::from(vip6()),
        IpAddr::from(LIP),
        IpAddr::from(lip6()),
        IpAddr::from(RIP),
        IpAddr::from(RIP2),
        IpAddr::from(rip6()),
    );
    w.table = ServiceTable::build(
        &[
            svc(vip, 80, &[rs(rip, 8080)]),
            svc(vip, 82, &[rs_mode(rip, 8080, FwdMode::Nat)]),
            fwmark_svc(1, false, &[rs(rip, 0), rs(rip2, 0)]),
            fwmark_svc(1, true, &[rs(rip6, 0)]),
            fwmark_svc(2, false, &[rs_mode(rip2, 8443, FwdMode::Nat)]),
        ],
        None,
    )
    .unwrap()
    .with_fwmark_rules(&[
        rule(1, "proto=tcp,dst-range=192.0.2.1:8000-8001"),
        rule(1, "proto=udp,dst-range=192.0.2.1:8000"),
        rule(1, "proto=tcp,dst-range=192.0.2.1:80"),
        rule(1, "dst-range=[2001:db8:f::1]:8000"),
        rule(2, "proto=tcp,src-range=198.51.100.8,dst-range=192.0.2.1:8443"),
        rule(9, "dst-range=192.0.2.1:9000"),
        rule(1, "dst-range=10.1.0.1"),
        rule(1, "dst-range=198.51.100.0-198.51.100.255:40000-40010"),
    ])
    .unwrap();
    let (cip, cip2) = (IpAddr::from(CIP), IpAddr::from(CIP2));
    run(
        &mut w,
        vec![
            step(
                "a marked SYN to 8000: fwmark 1, first server, the client's port kept",
                0,
                tcp_syn(cip, 40000, vip, 8000),
                Expect::Out(vec![towards(lip, rip, 8000)]),
            ),
            step(
                "the same client to 8001: the same server (one persistence over the ports)",
                0,
                tcp_syn(cip, 40001, vip, 8001),
                Expect::Out(vec![towards(lip, rip, 8001)]),
            ),
            step(
                "the same client over UDP to 8000: the same service, the same server",
                0,
                udp4(CIP, 40002, 8000),
                Expect::Out(vec![towards(lip, rip, 8000)]),
            ),
            step(
                "a marked SYN to 80: the fwmark service before the VIP:80 service (RIP:8080)",
                0,
                tcp_syn(cip, 40003, vip, 80),
                Expect::Out(vec![towards(lip, rip, 80)]),
            ),
            step(
                "another client: round robin moves on to the second server",
                0,
                tcp_syn(cip2, 40000, vip, 8000),
                Expect::Out(vec![towards(lip, rip2, 8000)]),
            ),
            step(
                "an unmarked port keeps its VIP:port service (NAT to RIP:8080)",
                0,
                tcp_syn(cip, 40004, vip, 82),
                Expect::Out(vec![towards(cip, rip, 8080)]),
            ),
            step(
                "UDP to 8001: only TCP is marked there, and no service has the port",
                0,
                udp4(CIP, 40005, 8001),
                Expect::Drop("no_service"),
            ),
            step(
                "the source-matched rule: that client to 8443 is fwmark 2 (NAT, port 8443)",
                0,
                tcp_syn(cip2, 40006, vip, 8443),
                Expect::Out(vec![towards(cip2, rip2, 8443)]),
            ),
            step(
                "another client to 8443: no rule marks it, no service has the port",
                0,
                tcp_syn(cip, 40006, vip, 8443),
                Expect::Drop("no_service"),
            ),
            step(
                "mark 9 has no service: no mark at all",
                0,
                tcp_syn(cip, 40007, vip, 9000),
                Expect::Drop("no_service"),
            ),
            step(
                "IPv6 to 8000: the IPv6 fwmark 1 service",
                0,
                tcp_syn(IpAddr::from(cip6()), 40000, vip6, 8000),
                Expect::Out(vec![towards(lip6, rip6, 8000)]),
            ),
            step(
                "a NAT server's reply to its client, whose address a rule covers: the reply, not a new flow",
                1,
                PacketBuilder::eth(SERVER, US1).ipv4(RIP, CIP).tcp(8080, 40004).seq(7000).ack(101).flags(SYNACK).build(),
                Expect::Out(vec![towards_client(vip, 82, cip, 40004)]),
            ),
            step(
                "a datagram through rvs to an address a rule covers (no connection here): the kernel twin's (none on dpdk1), not a new flow",
                1,
                PacketBuilder::eth(SERVER, US1).ipv4(RIP, CIP).udp(5353, 40005).payload(b"x").build(),
                Expect::Drop("no_twin"),
            ),
            step(
                "a stray reply to the LIP that a rule covers: no connection opened",
                1,
                PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).tcp(8000, 5000).seq(1).flags(SYN).build(),
                Expect::Drop("reply_no_conn"),
            ),
        ],
    );
}

#[test]
fn fwmark_services_refuse_what_has_no_meaning_for_them() {
    let with = |f: &dyn Fn(&mut ServiceConfig)| {
        let mut c = fwmark_svc(1, false, &[rs(RIP.into(), 0)]);
        f(&mut c);
        ServiceTable::build(&[c], None).map(|_| ()).unwrap_err().to_string()
    };
    assert!(with(&|c| c.vport = 80).contains("fwmark 1: a fwmark service has no address or port of its own"));
    assert!(with(&|c| c.vip = VIP.into()).contains("no address or port of its own"));
    assert!(with(&|c| c.ops = true).contains("one-packet scheduling (ops) is for one protocol"));
    assert!(with(&|c| c.uoa = Some(fnat::uoa::UoaMode::Opp)).contains("UOA is for one protocol"));
    assert!(with(&|c| c.real_servers = vec![rs_mode(RIP.into(), 80, FwdMode::Dr)]).contains("keeps the service's port"));
    assert!(with(&|c| c.real_servers = vec![rs(rip6().into(), 0)]).contains("not of the VIP's address family"));
    // Two services with one mark and family; one per family is fine.
    let one = fwmark_svc(1, false, &[]);
    let e = ServiceTable::build(&[one.clone(), one.clone()], None).unwrap_err().to_string();
    assert_eq!(e, "fwmark 1: service defined twice");
    assert!(ServiceTable::build(&[one, fwmark_svc(1, true, &[])], None).is_ok());
    // A duplicated rule is refused with the table.
    let r = rule(1, "dst-range=192.0.2.1:80");
    let e = ServiceTable::build(&[], None).unwrap().with_fwmark_rules(&[r, r]).unwrap_err().to_string();
    assert_eq!(e, "fwmark rule mark 1 dst-range=192.0.2.1:80 is there already");
}
