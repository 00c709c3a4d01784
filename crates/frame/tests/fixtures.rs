//! Whole-frame fixture tables for the frame logic: each step is an Ethernet frame
//! received on a port, what must become of it (sent, handed to the twin, handed to
//! another worker, queued for a neighbour, or dropped for a named reason) and the exact
//! frames that must come out, each IP frame also judged by etherparse. The topology:
//!
//! - port 0 `dpdk0` (client side, MTU 1500): VIP 192.0.2.1/32 and [2001:db8:f::1]/128,
//!   interface 198.51.100.1/24 and 2001:db8:c::1/64, 198.51.100.2/24 under a kni_host
//!   route; clients 198.51.100.7 and 2001:db8:c::7 resolved.
//! - port 1 `dpdk1` (server side, MTU 1400, no twin): LIP 10.1.0.1/8 and fd00::1/64;
//!   real servers 10.2.0.1 and fd00::2 resolved, 10.2.0.9 not.
//! - services: TCP VIP:80 -> 10.2.0.1:8080 and [fd00::2]:8080; TCP VIP:81 -> 10.2.0.9:8080
//!   (FullNAT); NAT: TCP VIP:82 -> 10.2.0.1:8080 and [fd00::2]:8080, UDP VIP:53 ->
//!   10.2.0.1:5353; DR: TCP VIP:83 -> 10.2.0.1 and fd00::2, UDP VIP:54 -> 10.2.0.1;
//!   TUN: TCP VIP:84 -> 10.2.0.1 and fd00::2; NAT64: TCP [VIP6]:85 -> 10.2.0.1:8080 (the
//!   forwarding modes' tables are in `modes.rs`).

mod world;

use world::*;

/// ARP: requests for our addresses answered in place on the port that owns them,
/// bindings reported, everything else (replies, gratuitous, other targets) the kernel's.
#[test]
fn arp_answers_learns_and_hands_up() {
    let mut w = World::new(1);
    let req = |tip| {
        arp_frame(
            CLIENT,
            EthernetAddress::BROADCAST,
            arp(ArpOperation::Request, CLIENT, CIP, EthernetAddress::UNSPECIFIED, tip),
        )
    };
    let steps = vec![
        step(
            "who-has VIP: answered from dpdk0's MAC",
            0,
            req(VIP),
            Expect::Out(vec![exact(
                Sink::Tx(0),
                arp_frame(US0, CLIENT, arp(ArpOperation::Reply, US0, VIP, CLIENT, CIP)),
            )]),
        ),
        step(
            "who-has the interface address: answered",
            0,
            req(IF0),
            Expect::Out(vec![exact(
                Sink::Tx(0),
                arp_frame(US0, CLIENT, arp(ArpOperation::Reply, US0, IF0, CLIENT, CIP)),
            )]),
        ),
        step(
            "who-has an address under kni_host: the kernel answers",
            0,
            req(KNI),
            Expect::Out(vec![exact(Sink::TwinControl(0), req(KNI))]),
        ),
        step(
            "who-has the LIP on the wrong port: the kernel's",
            0,
            req(LIP),
            Expect::Out(vec![exact(Sink::TwinControl(0), req(LIP))]),
        ),
        step(
            "an ARP reply goes up to the kernel too",
            0,
            arp_frame(STRANGER, US0, arp(ArpOperation::Reply, STRANGER, Ipv4Addr::new(198, 51, 100, 9), US0, IF0)),
            Expect::Out(vec![exact(
                Sink::TwinControl(0),
                arp_frame(STRANGER, US0, arp(ArpOperation::Reply, STRANGER, Ipv4Addr::new(198, 51, 100, 9), US0, IF0)),
            )]),
        ),
        step(
            "a truncated ARP message is a bad frame",
            0,
            PacketBuilder::eth(CLIENT, US0).ethertype(EtherType::ARP).payload(&[0, 1, 8, 0]).build(),
            Expect::Drop("bad_frame"),
        ),
        step(
            "on a port without a twin, frames for the kernel are dropped",
            1,
            arp_frame(
                SERVER,
                EthernetAddress::BROADCAST,
                arp(ArpOperation::Request, SERVER, RIP, EthernetAddress::UNSPECIFIED, Ipv4Addr::new(10, 9, 9, 9)),
            ),
            Expect::Drop("no_twin"),
        ),
    ];
    run(&mut w, steps);
    assert!(w.io.seen.contains(&(Ipv4Addr::new(198, 51, 100, 9).into(), STRANGER, 0)), "new binding reported");
    assert!(!w.io.seen.iter().any(|(ip, _, _)| *ip == IpAddr::from(CIP)), "a known binding is not reported again");
    assert_eq!(w.node.counters.get(NetCounter::ArpReplies), 2);
}

/// ND: solicitations for our addresses answered with an advert, others handed up.
#[test]
fn nd_solicit_advert() {
    let mut w = World::new(1);
    let ns = |target: Ipv6Addr| {
        PacketBuilder::eth(CLIENT, EthernetAddress::from_ipv6_multicast(netstack::nd::solicited_node(target)))
            .ipv6(cip6(), netstack::nd::solicited_node(target))
            .hop_limit(255)
            .neighbour_solicit(target, Some(CLIENT))
            .build()
    };
    let na = |flags| {
        PacketBuilder::eth(STRANGER, US0)
            .ipv6(v6("2001:db8:c::9"), if6())
            .hop_limit(255)
            .neighbour_advert(flags, v6("2001:db8:c::9"), Some(STRANGER))
            .build()
    };
    let steps = vec![
        step(
            "NS for the IPv6 VIP: solicited advert with our MAC, to the asker",
            0,
            ns(vip6()),
            Expect::Out(vec![exact(
                Sink::Tx(0),
                PacketBuilder::eth(US0, CLIENT)
                    .ipv6(vip6(), cip6())
                    .hop_limit(255)
                    .neighbour_advert(NdiscFlags(NdiscFlags::SOLICITED.0 | NdiscFlags::OVERRIDE.0), vip6(), Some(US0))
                    .build(),
            )]),
        ),
        step(
            "NS for the interface address: answered",
            0,
            ns(if6()),
            Expect::Out(vec![check(Sink::Tx(0), |f| {
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst), (IpAddr::from(if6()), IpAddr::from(cip6())));
            })]),
        ),
        step(
            "NS for an address not ours: the kernel's",
            0,
            ns(v6("2001:db8:c::99")),
            Expect::Out(vec![exact(Sink::TwinControl(0), ns(v6("2001:db8:c::99")))]),
        ),
        step(
            "an unsolicited NA of a stranger goes up, its binding not reported",
            0,
            na(NdiscFlags::OVERRIDE),
            Expect::Out(vec![check(Sink::TwinControl(0), |_| {})]),
        ),
        step(
            "a solicited one (an answer) goes up, its binding reported",
            0,
            na(NdiscFlags(NdiscFlags::SOLICITED.0 | NdiscFlags::OVERRIDE.0)),
            Expect::Out(vec![check(Sink::TwinControl(0), |_| {})]),
        ),
    ];
    run(&mut w, steps);
    // (The client's solicitations carry the binding its static entry holds.)
    assert_eq!(w.io.seen, vec![(v6("2001:db8:c::9").into(), STRANGER, 0)]);
    assert_eq!(w.node.counters.get(NetCounter::NeighUnsolicited), 1);
    assert_eq!(w.node.counters.get(NetCounter::NdAdverts), 2);
}

/// A VRRPv2 advert from a stranger on the client side (VRID 1, priority 100).
fn vrrp_advert() -> Vec<u8> {
    PacketBuilder::eth(STRANGER, EthernetAddress([1, 0, 0x5e, 0, 0, 18]))
        .ipv4(Ipv4Addr::new(198, 51, 100, 9), Ipv4Addr::new(224, 0, 0, 18))
        .ttl(255)
        .protocol(wire::IpProtocol(112))
        .payload(&[0x21, 1, 100, 1, 0, 1, 0, 0, 192, 0, 2, 1])
        .build()
}

/// What goes up to the kernel twin is classed (`frame::twin`): a flood to the kernel's
/// address spends the bulk budget and, past it, is dropped (`twin_limited`), while VRRP
/// adverts and ARP still go up, on the control protocols' queue and budget.
#[test]
fn a_flood_to_the_kernel_spends_the_bulk_budget_not_the_control_ones() {
    let mut w = World::new(1);
    // 100 a second: a full bucket of 32.
    w.node.set_twin_budget(TwinBudget::new(100, 1000));
    let junk = PacketBuilder::eth(CLIENT, US0).ipv4(CIP, KNI).udp(40000, 9).payload(b"junk").build();
    let vrrp = vrrp_advert();
    let bgp = PacketBuilder::eth(CLIENT, US0).ipv4(CIP, KNI).tcp(41000, 179).flags(ACK).build();
    let up = |f: &Vec<u8>| Expect::Out(vec![exact(Sink::Twin(0), f.clone())]);
    let control = |f: &Vec<u8>| Expect::Out(vec![exact(Sink::TwinControl(0), f.clone())]);
    let mut steps: Vec<Step> =
        (0..32).map(|_| step("junk to the kernel's address, in budget", 0, junk.clone(), up(&junk))).collect();
    steps.extend([
        step("junk past the budget", 0, junk.clone(), Expect::Drop("twin_limited")),
        step("VRRP still goes up, as a control protocol", 0, vrrp.clone(), control(&vrrp)),
        step("and BGP", 0, bgp.clone(), control(&bgp)),
        step("junk still past the budget", 0, junk.clone(), Expect::Drop("twin_limited")),
    ]);
    run(&mut w, steps);
    w.housekeeping(100);
    let mut later: Vec<Step> =
        (0..10).map(|_| step("a tenth of a second later: ten more", 0, junk.clone(), up(&junk))).collect();
    later.push(step("and no more", 0, junk.clone(), Expect::Drop("twin_limited")));
    run(&mut w, later);
}

/// Each twin has a bulk budget of its own: a flood to the client side's kernel address,
/// past its twin's bulk budget, leaves another port's twin (VLAN 100's here) all of its
/// own.
#[test]
fn a_flood_to_one_twin_leaves_the_others_their_budget() {
    let mut w = World::new(1);
    w.node.set_twin_budget(TwinBudget::new(100, 1000));
    let junk = PacketBuilder::eth(CLIENT, US0).ipv4(CIP, KNI).udp(40000, 9).payload(b"junk").build();
    // The VLAN's kernel address: 198.51.101.2 under a kni_host route.
    let (vcip, vif) = (Ipv4Addr::new(198, 51, 101, 10), Ipv4Addr::new(198, 51, 101, 2));
    w.routes.add(Route::kni_host(net("198.51.101.2/32"), PortId(2))).unwrap();
    let other = PacketBuilder::eth(CLIENT, US0).vlan(100).ipv4(vcip, vif).udp(40000, 22).payload(b"ssh").build();
    let mut steps: Vec<Step> = (0..32)
        .map(|_| {
            step(
                "junk to dpdk0's kernel address, in budget",
                0,
                junk.clone(),
                Expect::Out(vec![check(Sink::Twin(0), |_| {})]),
            )
        })
        .collect();
    steps.push(step("junk past dpdk0's twin's budget", 0, junk.clone(), Expect::Drop("twin_limited")));
    for _ in 0..32 {
        steps.push(step(
            "VLAN 100's twin still has all of its own",
            0,
            other.clone(),
            Expect::Out(vec![check(Sink::Twin(2), |_| {})]),
        ));
    }
    steps.push(step("until it is spent too", 0, other, Expect::Drop("twin_limited")));
    run(&mut w, steps);
}

/// Layer 2 filters and what the kernel gets.
#[test]
fn l2_filters_twin_and_forward2kni() {
    let mut w = World::new(1);
    let ping = PacketBuilder::eth(CLIENT, US0).ipv4(CIP, IF0).icmpv4_echo_request(1, 1).payload(b"hi").build();
    let mut other_mac = ping.clone();
    other_mac[0..6].copy_from_slice(&STRANGER.0);
    let mut own = ping.clone();
    own[6..12].copy_from_slice(&US0.0);
    let vrrp = vrrp_advert();
    let lldp = PacketBuilder::eth(STRANGER, EthernetAddress([1, 0x80, 0xc2, 0, 0, 0xe]))
        .ethertype(EtherType(0x88cc))
        .payload(&[0; 46])
        .build();
    let steps = vec![
        step("a frame for another MAC is not for us", 0, other_mac, Expect::Drop("not_for_us")),
        step("our own frame looped back", 0, own, Expect::Drop("own_frame")),
        step("shorter than an Ethernet header", 0, vec![0xff; 10], Expect::Drop("bad_frame")),
        step(
            "multicast VRRP goes to the kernel twin",
            0,
            vrrp.clone(),
            Expect::Out(vec![exact(Sink::TwinControl(0), vrrp)]),
        ),
        step(
            "another ethertype (LLDP) goes to the kernel twin",
            0,
            lldp.clone(),
            Expect::Out(vec![exact(Sink::Twin(0), lldp)]),
        ),
        step(
            "an IPv4 header that lies about its length is a bad frame",
            0,
            {
                let mut f = PacketBuilder::eth(CLIENT, US0).ipv4(CIP, IF0).icmpv4_echo_request(1, 1).build();
                f[ETH_LEN + 2] = 0x05; // total length 1280+ > frame
                f
            },
            Expect::Drop(DropReason::BadHeader.name()),
        ),
    ];
    run(&mut w, steps);
    // forward2kni: a copy of everything received goes up first; the original goes on.
    w.ports[0].forward2kni = true;
    let syn = syn4(5000, 80);
    run(
        &mut w,
        vec![step(
            "forward2kni on: the SYN is copied to the twin and still forwarded",
            0,
            syn.clone(),
            Expect::Out(vec![
                exact(Sink::Twin(0), syn),
                check(Sink::Tx(1), |f| assert_eq!(judge_eth(f).dst, IpAddr::from(RIP))),
            ]),
        )],
    );
    // Without a buffer for the copy: counted, and the original still goes on.
    w.io.pool_empty = true;
    w.io.out.clear();
    w.frame(0, &syn4(5001, 80));
    assert_eq!(w.node.counters.drops(NetDrop::NoMbuf), 1);
    assert_eq!(w.io.out.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![Sink::Tx(1)]);
}

/// Local delivery: echo answered for every owned address, TCP/UDP to a VIP without a
/// service dropped, kni_host addresses handed to the kernel.
#[test]
fn local_delivery() {
    let mut w = World::new(1);
    let echo4 = |dst| PacketBuilder::eth(CLIENT, US0).ipv4(CIP, dst).icmpv4_echo_request(7, 1).payload(b"ping").build();
    let reply4 =
        |src| PacketBuilder::eth(US0, CLIENT).ipv4(src, CIP).ttl(64).icmpv4_echo_reply(7, 1).payload(b"ping").build();
    let echo6 =
        |dst| PacketBuilder::eth(CLIENT, US0).ipv6(cip6(), dst).icmpv6_echo_request(7, 1).payload(b"ping").build();
    let steps = vec![
        step(
            "echo to the VIP answered",
            0,
            echo4(VIP),
            Expect::Out(vec![check(Sink::Tx(0), move |f| {
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst), (IpAddr::from(VIP), IpAddr::from(CIP)));
                assert_eq!(&f[0..12], &[CLIENT.0, US0.0].concat()[..]);
            })]),
        ),
        step(
            "echo to the interface address answered",
            0,
            echo4(IF0),
            Expect::Out(vec![check(Sink::Tx(0), move |f| {
                assert_eq!(judge_eth(f).src, IpAddr::from(IF0));
                let want = reply4(IF0);
                assert_eq!(f[ETH_LEN + 9], want[ETH_LEN + 9]);
            })]),
        ),
        step(
            "echo to the LIP (owned by dpdk1) answered back out of dpdk0",
            0,
            echo4(LIP),
            Expect::Out(vec![check(Sink::Tx(0), |f| {
                assert_eq!(judge_eth(f).src, IpAddr::from(LIP));
            })]),
        ),
        step(
            "echo to the IPv6 VIP answered",
            0,
            echo6(vip6()),
            Expect::Out(vec![check(Sink::Tx(0), |f| {
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst), (IpAddr::from(vip6()), IpAddr::from(cip6())));
            })]),
        ),
        step(
            "echo to a kni_host address goes to the kernel",
            0,
            echo4(KNI),
            Expect::Out(vec![exact(Sink::Twin(0), echo4(KNI))]),
        ),
        {
            // eBGP's TTL 1 (BIRD on the twin peering with the router): delivered, not expired.
            let bgp = PacketBuilder::eth(CLIENT, US0).ipv4(CIP, KNI).ttl(1).tcp(41000, 179).flags(SYN).build();
            step(
                "TCP with TTL 1 to a kni_host address goes to the kernel",
                0,
                bgp.clone(),
                Expect::Out(vec![exact(Sink::TwinControl(0), bgp)]),
            )
        },
        step("TCP to a VIP port without a service: no_service, no RST", 0, syn4(5000, 443), Expect::Drop("no_service")),
        step(
            "UDP to the interface address: nothing here handles it",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, IF0).udp(5, 5).payload(b"x").build(),
            Expect::Drop("local_unhandled"),
        ),
        step(
            "an address nobody here owns goes to the kernel",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, Ipv4Addr::new(198, 51, 100, 77)).udp(5, 5).build(),
            Expect::Out(vec![check(Sink::Twin(0), |_| {})]),
        ),
    ];
    run(&mut w, steps);
    assert_eq!(w.node.counters.get(NetCounter::EchoReplies), 4);
}

/// FullNAT both ways through the node: SYN out of dpdk1 with TOA to the server's MAC,
/// the SYN-ACK back out of dpdk0 to the client's MAC, IPv4 and IPv6.
#[test]
fn fullnat_both_directions_v4_v6() {
    let mut w = World::new(1);
    let steps = vec![
        step(
            "client SYN: LIP:lport -> RIP:rport out of dpdk1 to the server's MAC, TTL less one",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(64).tcp(40000, 80).seq(100).flags(SYN).mss(1460).build(),
            Expect::Out(vec![exact(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv4(LIP, RIP)
                    .ttl(63)
                    .tcp(1025, 8080)
                    .seq(100)
                    .flags(SYN)
                    .mss(1460)
                    .build(),
            )]),
        ),
        step(
            "server SYN-ACK: VIP:vport -> CIP:cport out of dpdk0, MSS lowered for the TOA",
            1,
            PacketBuilder::eth(SERVER, US1)
                .ipv4(RIP, LIP)
                .ttl(64)
                .tcp(8080, 1025)
                .seq(900)
                .ack(101)
                .flags(SYNACK)
                .mss(1460)
                .build(),
            Expect::Out(vec![exact(
                Sink::Tx(0),
                PacketBuilder::eth(US0, CLIENT)
                    .ipv4(VIP, CIP)
                    .ttl(63)
                    .tcp(80, 40000)
                    .seq(900)
                    .ack(101)
                    .flags(SYNACK)
                    .mss(1452)
                    .build(),
            )]),
        ),
        step(
            "handshake ACK carries the TOA with CIP:cport",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(64).tcp(40000, 80).seq(101).ack(901).flags(ACK).build(),
            Expect::Out(vec![exact(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv4(LIP, RIP)
                    .ttl(63)
                    .tcp(1025, 8080)
                    .seq(101)
                    .ack(901)
                    .flags(ACK)
                    .option(&toa4(CIP, 40000))
                    .build(),
            )]),
        ),
        step(
            "IPv6 client SYN out of dpdk1",
            0,
            PacketBuilder::eth(CLIENT, US0)
                .ipv6(cip6(), vip6())
                .hop_limit(64)
                .tcp(40000, 80)
                .seq(100)
                .flags(SYN)
                .build(),
            Expect::Out(vec![exact(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv6(lip6(), rip6())
                    .hop_limit(63)
                    .tcp(1025, 8080)
                    .seq(100)
                    .flags(SYN)
                    .build(),
            )]),
        ),
        step(
            "IPv6 server SYN-ACK back to the client",
            1,
            PacketBuilder::eth(SERVER, US1)
                .ipv6(rip6(), lip6())
                .hop_limit(64)
                .tcp(8080, 1025)
                .seq(900)
                .ack(101)
                .flags(SYNACK)
                .build(),
            Expect::Out(vec![exact(
                Sink::Tx(0),
                PacketBuilder::eth(US0, CLIENT)
                    .ipv6(vip6(), cip6())
                    .hop_limit(63)
                    .tcp(80, 40000)
                    .seq(900)
                    .ack(101)
                    .flags(SYNACK)
                    .build(),
            )]),
        ),
        step(
            "IPv6 handshake ACK carries the 20-byte TOA",
            0,
            PacketBuilder::eth(CLIENT, US0)
                .ipv6(cip6(), vip6())
                .hop_limit(64)
                .tcp(40000, 80)
                .seq(101)
                .ack(901)
                .flags(ACK)
                .build(),
            Expect::Out(vec![exact(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv6(lip6(), rip6())
                    .hop_limit(63)
                    .tcp(1025, 8080)
                    .seq(101)
                    .ack(901)
                    .flags(ACK)
                    .option(&toa6(cip6(), 40000))
                    .build(),
            )]),
        ),
    ];
    run(&mut w, steps);
    for (_, f) in &w.io.out {
        judge_eth(f);
    }
}

/// TTL / hop limit and MTU: the ICMP error goes back to the source from our address on
/// the way back, and the packet is dropped under its own reason.
#[test]
fn ttl_expiry_and_too_big() {
    let mut w = World::new(1);
    let steps = vec![
        step(
            "SYN with TTL 1: time exceeded from the interface address, dropped",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(1).tcp(41000, 80).flags(SYN).build(),
            Expect::Drop("ttl_exceeded"),
        ),
        step(
            "IPv6 SYN with hop limit 1: time exceeded",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv6(cip6(), vip6()).hop_limit(1).tcp(41000, 80).flags(SYN).build(),
            Expect::Drop("ttl_exceeded"),
        ),
    ];
    // The error frames come out before the drop is counted: check them apart.
    for s in steps {
        w.io.out.clear();
        let before = w.node.counters.drops(NetDrop::TtlExceeded);
        w.frame(s.port, &s.input);
        assert_eq!(w.node.counters.drops(NetDrop::TtlExceeded), before + 1, "{}", s.desc);
        assert_eq!(w.io.out.len(), 1, "{}: one ICMP error", s.desc);
        let (sink, f) = &w.io.out[0];
        assert_eq!(*sink, Sink::Tx(0), "{}", s.desc);
        let seen = judge_eth(f);
        assert!(seen.src == IpAddr::from(IF0) || seen.src == IpAddr::from(if6()), "{}: from {}", s.desc, seen.src);
        assert!(seen.dst == IpAddr::from(CIP) || seen.dst == IpAddr::from(cip6()), "{}", s.desc);
        assert_eq!(&f[0..6], &CLIENT.0, "{}: to the client's MAC", s.desc);
    }
    assert_eq!(w.engine.conns().len(), 0, "an expiring SYN takes no connection and no local port");
}

/// A worker's own time-exceeded errors are rate limited as Linux's (1000 a second,
/// bursts of 50): a flood of TTL-1 packets claiming any source is dropped, each
/// counted, and answered only as fast as the bucket refills from the loop's clock.
#[test]
fn time_exceeded_errors_are_rate_limited() {
    let mut w = World::new(1);
    w.housekeeping(10_000);
    let ttl1 = |sport: u16| PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(1).tcp(sport, 80).flags(SYN).build();
    let flood = |w: &mut World, n: u16, from: u16| {
        w.io.out.clear();
        for i in 0..n {
            w.frame(0, &ttl1(from + i));
        }
        w.io.out.len()
    };
    assert_eq!(flood(&mut w, 60, 1000), 50, "the burst, then nothing");
    assert_eq!(w.node.counters.drops(NetDrop::TtlExceeded), 60);
    assert_eq!(w.node.counters.drops(NetDrop::IcmpRateLimited), 10);
    assert_eq!(w.node.counters.get(NetCounter::IcmpErrors), 50);
    w.housekeeping(10_003);
    assert_eq!(flood(&mut w, 10, 2000), 3, "3 ms later: 3 more");
    w.housekeeping(20_000);
    assert_eq!(flood(&mut w, 60, 3000), 50, "a quiet spell refills the burst, no more");
    assert_eq!(w.node.counters.drops(NetDrop::IcmpRateLimited), 27);
    for (sink, f) in &w.io.out {
        assert_eq!(*sink, Sink::Tx(0));
        assert_eq!(judge_eth(f).dst, IpAddr::from(CIP));
    }
}

/// MTU: a packet larger than the outgoing port's MTU is dropped and its sender gets
/// "fragmentation needed" / "packet too big" quoting the packet as the sender sent it.
/// The core has already rewritten the packet when the outgoing port is known: the quote
/// is rebuilt from the connection's arrival key.
#[test]
fn too_big_after_translation() {
    let mut w = World::new(1);
    // Open a connection, then send a segment larger than dpdk1's MTU (1400).
    w.frame(0, &syn4(42000, 80));
    for (desc, big, v6) in [
        (
            "IPv4 DF segment of 1500 bytes towards the 1400-byte port: fragmentation needed",
            PacketBuilder::eth(CLIENT, US0)
                .ipv4(CIP, VIP)
                .dont_frag()
                .tcp(42000, 80)
                .seq(101)
                .flags(ACK)
                .payload(&[7; 1460])
                .build(),
            false,
        ),
        (
            "IPv6 segment of 1500 bytes: packet too big",
            PacketBuilder::eth(CLIENT, US0).ipv6(cip6(), vip6()).tcp(42001, 80).flags(SYN).payload(&[7; 1440]).build(),
            true,
        ),
    ] {
        w.io.out.clear();
        let before = w.node.counters.drops(NetDrop::TooBig);
        w.frame(0, &big);
        assert_eq!(w.node.counters.drops(NetDrop::TooBig), before + 1, "{desc}");
        assert_eq!(w.io.out.len(), 1, "{desc}: one ICMP error");
        let f = &w.io.out[0].1;
        let seen = judge_eth(f);
        assert_eq!(&f[0..6], &CLIENT.0, "{desc}: back to the client's MAC");
        // The quote is the packet as the client sent it: CIP:cport -> VIP:80.
        let q = &seen.icmp_payload;
        if v6 {
            assert_eq!(f[ETH_LEN + 40], 2, "{desc}: ICMPv6 packet too big");
            assert_eq!(u32::from_be_bytes(f[ETH_LEN + 44..ETH_LEN + 48].try_into().unwrap()), 1400, "{desc}: MTU");
            assert_eq!(seen.dst, IpAddr::from(cip6()));
            let h = etherparse::Ipv6HeaderSlice::from_slice(q).unwrap();
            assert_eq!((h.source_addr(), h.destination_addr()), (cip6(), vip6()), "{desc}: quoted addresses");
            assert_eq!(&q[40..44], &[42001u16.to_be_bytes(), 80u16.to_be_bytes()].concat()[..], "{desc}: quoted ports");
        } else {
            assert_eq!((f[ETH_LEN + 20], f[ETH_LEN + 21]), (3, 4), "{desc}: ICMP frag needed");
            assert_eq!(u16::from_be_bytes([f[ETH_LEN + 26], f[ETH_LEN + 27]]), 1400, "{desc}: next-hop MTU");
            assert_eq!(seen.dst, IpAddr::from(CIP));
            let h = etherparse::Ipv4HeaderSlice::from_slice(q).unwrap();
            assert_eq!((h.source_addr(), h.destination_addr()), (CIP, VIP), "{desc}: quoted addresses");
            assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum(), "{desc}: quoted header checksum");
            assert_eq!(&q[20..24], &[42000u16.to_be_bytes(), 80u16.to_be_bytes()].concat()[..], "{desc}: quoted ports");
        }
    }
}

/// Routing and neighbours: no route dropped; an unresolved next hop queues the packet
/// and asks (ARP request out of the right port), the packet leaves when the neighbour
/// is known, and is dropped if it never answers.
#[test]
fn no_route_and_neighbour_resolution() {
    let mut w = World::new(1);
    // A reply from the server towards an address with no route (the client moved away):
    // open a connection from a client with no route back, by routing table change.
    run(
        &mut w,
        vec![step(
            "SYN for a service whose real server is not resolved yet: queued",
            0,
            syn4(43000, 81),
            Expect::Queued,
        )],
    );
    w.housekeeping(0);
    assert_eq!(w.io.out.len(), 1, "one ARP request");
    let (sink, req) = &w.io.out[0];
    assert_eq!(*sink, Sink::Tx(1));
    assert_eq!(
        req,
        &PacketBuilder::eth(US1, EthernetAddress::BROADCAST)
            .pad_to(60)
            .arp(arp(ArpOperation::Request, US1, LIP, EthernetAddress::UNSPECIFIED, RIP_UNRESOLVED))
            .build()
    );
    assert_eq!(w.node.pending(), 1);
    // The neighbour answers; the control thread learns it; the packet leaves.
    w.neighs.insert_static(RIP_UNRESOLVED.into(), SERVER, PortId(1), 0);
    w.io.out.clear();
    w.release_resolved();
    assert_eq!(w.io.out.len(), 1, "the queued SYN leaves");
    assert_eq!(w.io.out[0].0, Sink::Tx(1));
    assert_eq!(&w.io.out[0].1[0..12], &[SERVER.0, US1.0].concat()[..]);
    assert_eq!(judge_eth(&w.io.out[0].1).dst, IpAddr::from(RIP_UNRESOLVED));
    assert_eq!(w.node.pending(), 0);

    // Unresolved for good: retries, then the packet is dropped as unresolved.
    w.neighs.delete(RIP_UNRESOLVED.into());
    w.frame(0, &syn4(43001, 81));
    assert_eq!(w.node.pending(), 1);
    let mut t = 0;
    while w.node.pending() > 0 && t < 60_000 {
        w.housekeeping(t);
        t += 10;
    }
    assert_eq!(w.node.pending(), 0, "given up");
    assert_eq!(w.node.counters.drops(NetDrop::Unresolved), 1);

    // More waiting packets than the queue holds for one hop: pending_full.
    w.io.out.clear();
    let per_hop = frame::node::PENDING_PER_HOP;
    for i in 0..per_hop as u16 {
        w.frame(0, &syn4(44000 + i, 81));
    }
    run(&mut w, vec![step("one more for the same hop", 0, syn4(45000, 81), Expect::Drop("pending_full"))]);

    // No route: a server reply towards a client the routing table cannot reach.
    let mut w = World::new(1);
    w.frame(0, &syn4(46000, 80));
    w.routes = RouteTable::new();
    for r in w.addrs.connected_routes().into_iter().filter(|r| r.prefix.addr().is_ipv4() && r.dev == PortId(1)) {
        w.routes.add(r).unwrap();
    }
    run(
        &mut w,
        vec![step(
            "SYN-ACK towards a client with no route back",
            1,
            PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).tcp(8080, 1025).seq(1).ack(101).flags(SYNACK).build(),
            Expect::Drop("no_route"),
        )],
    );
}

/// Pings from made-up addresses of the client subnet make rvs resolve them (the echo
/// replies wait for their neighbours): such next hops take at most half the waiting
/// slots, so a connection scheduled to an unresolved real server still waits and asks.
/// Each request is told to the control thread, which learns no other new neighbour.
#[test]
fn made_up_sources_cannot_take_a_real_servers_wait() {
    let mut w = World::new(1);
    let ping = |last: u8| {
        PacketBuilder::eth(STRANGER, US0)
            .ipv4(Ipv4Addr::new(198, 51, 100, last), IF0)
            .icmpv4_echo_request(1, 1)
            .payload(b"hi")
            .build()
    };
    let half = frame::node::PENDING_HOPS / 2;
    for i in 0..half {
        w.frame(0, &ping(100 + i as u8));
    }
    assert_eq!(w.node.pending(), half, "each echo reply waits for its made-up neighbour");
    run(
        &mut w,
        vec![
            step("one more made-up source: no slot left for those", 0, ping(200), Expect::Drop("pending_full")),
            step("a SYN scheduled to an unresolved real server still waits", 0, syn4(43000, 81), Expect::Queued),
        ],
    );
    for t in (0..50).step_by(frame::node::RETRY_MS as usize) {
        w.housekeeping(t);
    }
    assert!(w.io.asked.contains(&(RIP_UNRESOLVED.into(), 1)), "the request is told: {:?}", w.io.asked);
    assert_eq!(w.io.asked.len(), half + 1);
    let asks_rip = |(sink, f): &(Sink, Vec<u8>)| {
        *sink == Sink::Tx(1) && f[12..14] == [8, 6] && f[38..42] == RIP_UNRESOLVED.octets()
    };
    assert_eq!(w.io.out.iter().filter(|o| asks_rip(o)).count(), 1, "an ARP request for the real server");
    // Its answer lets the SYN leave.
    w.neighs.insert_static(RIP_UNRESOLVED.into(), SERVER, PortId(1), 0);
    w.io.out.clear();
    w.release_resolved();
    assert_eq!(w.io.out.iter().filter(|(sink, _)| *sink == Sink::Tx(1)).count(), 1, "the SYN leaves");
}

/// A reply for a local port another worker owns is handed to that worker untouched.
#[test]
fn redirect_to_the_owner() {
    let mut w = World::new(2);
    let reply = PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).tcp(8080, 1025).seq(1).ack(101).flags(SYNACK).build();
    run(
        &mut w,
        vec![step(
            "reply to odd port 1025: worker 1's",
            1,
            reply.clone(),
            Expect::Out(vec![exact(Sink::Redirect(1, 1), reply)]),
        )],
    );
}

/// A client-side ICMP error about a connection this worker does not hold goes to every
/// other worker (which one holds it, nothing in it says), at most 1000 a second in
/// bursts of 50 (each costs a copy per worker); a copy handed over goes no further, and
/// an error about the kernel's own session goes up to its twin.
#[test]
fn a_client_side_icmp_error_goes_to_every_other_worker_within_a_budget() {
    let mut w = World::new(2);
    // A router's "fragmentation needed" about a SYN-ACK from `from` to the client.
    let error_about = |from: Ipv4Addr, port: u16| {
        let quoted = PacketBuilder::ipv4(from, CIP).tcp(port, 40001).seq(1).flags(SYNACK).build();
        PacketBuilder::eth(CLIENT, US0)
            .ipv4(Ipv4Addr::new(198, 51, 100, 254), from)
            .icmpv4_error(3, 4, &quoted)
            .next_hop_mtu(1400)
            .build()
    };
    let error = error_about(VIP, 80);
    let burst = frame::node::ICMP_ERROR_BURST as usize;
    let mut steps: Vec<Step> = (0..burst)
        .map(|_| {
            let e = error.clone();
            step(
                "handed over",
                0,
                e.clone(),
                Expect::Out(vec![exact(Sink::Redirect(fnat::engine::EVERY_WORKER, 0), e)]),
            )
        })
        .collect();
    steps.push(step("beyond the burst: counted, not copied", 0, error.clone(), Expect::Drop("icmp_rate_limited")));
    run(&mut w, steps);
    w.housekeeping(1000);
    let again = |desc| {
        step(desc, 0, error.clone(), Expect::Out(vec![check(Sink::Redirect(fnat::engine::EVERY_WORKER, 0), |_| {})]))
    };
    run(&mut w, vec![again("a second later: handed over again")]);
    // A copy another worker handed over, missing here too: no worker holds it. It is not
    // handed on, and spends nothing of this worker's budget.
    w.io.handed_over = true;
    let copies =
        (0..burst).map(|_| step("handed over, unknown here too", 0, error.clone(), Expect::Drop("icmp_nowhere")));
    run(&mut w, copies.collect());
    w.io.handed_over = false;
    run(&mut w, vec![again("this worker's own: still within its budget")]);
    // About the kernel's own session on an address a kni_host route gives it: its twin's.
    let to_kernel = error_about(KNI, 179);
    let up = Expect::Out(vec![exact(Sink::Twin(0), to_kernel.clone())]);
    run(&mut w, vec![step("the kernel's: up to the twin", 0, to_kernel, up)]);
}

/// Every core drop reason passes through the node unchanged and is counted once.
#[test]
fn core_drops_are_counted_by_the_core() {
    let mut w = World::new(1);
    let steps = vec![
        step(
            "an ACK without a connection",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).tcp(47000, 80).flags(ACK).build(),
            Expect::Drop(DropReason::NoConn.name()),
        ),
        step(
            "a stray reply to a LIP port",
            1,
            PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).tcp(8080, 2000).flags(SYNACK).build(),
            Expect::Drop(DropReason::ReplyNoConn.name()),
        ),
        step(
            "a later fragment to the VIP without its first",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).fragment(8, false).tcp(47001, 80).flags(SYN).build(),
            Expect::Drop(DropReason::FragmentNoFirst.name()),
        ),
    ];
    run(&mut w, steps);
}

/// Input checks before scheduling (issue 12, scope 4): every class dropped under its
/// own reason, no connection created, nothing sent; the server sees exactly one TOA,
/// rvs's, with the client's true address.
#[test]
fn input_checks_before_scheduling() {
    let mut w = World::new(1);
    // A UDP service too, for the UDP checksum.
    let mut udp = ServiceConfig::new(Proto::Udp, VIP.into(), 53);
    udp.sched = SchedKind::Rr;
    udp.real_servers = vec![rs(RIP.into(), 53)];
    w.table = ServiceTable::build(
        &[
            svc(VIP.into(), 80, &[rs(RIP.into(), 8080)]),
            svc(vip6().into(), 80, &[rs(rip6().into(), 8080)]),
            svc(VIP.into(), 81, &[rs(RIP_UNRESOLVED.into(), 8080)]),
            udp,
        ],
        Some(&w.table),
    )
    .unwrap();
    let syn_from =
        |src: Ipv4Addr| PacketBuilder::eth(CLIENT, US0).ipv4(src, VIP).tcp(50000, 80).seq(1).flags(SYN).build();
    let syn6_from =
        |src: Ipv6Addr| PacketBuilder::eth(CLIENT, US0).ipv6(src, vip6()).tcp(50000, 80).seq(1).flags(SYN).build();
    let bad_ip_csum = |mut f: Vec<u8>| {
        f[ETH_LEN + 11] ^= 0x5a;
        f
    };
    let syn_ipopt = |o: &[u8]| {
        PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ipv4_options(o).tcp(50001, 80).seq(1).flags(SYN).build()
    };
    let syn_tcpopt =
        |o: &[u8]| PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).tcp(50002, 80).seq(1).flags(SYN).option(o).build();
    let rh = |ty: u8| {
        PacketBuilder::eth(CLIENT, US0)
            .ipv6(cip6(), vip6())
            .ipv6_ext(wire::IpProtocol::ROUTING, &[ty, 1, 0, 0, 0, 0])
            .tcp(50003, 80)
            .seq(1)
            .flags(SYN)
            .build()
    };
    let mut bad_udp = PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).udp(50004, 53).payload(b"query").build();
    bad_udp[ETH_LEN + 20 + 6] ^= 0x5a;
    let mut bad_echo =
        PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).icmpv4_echo_request(9, 1).payload(b"ping").build();
    bad_echo[ETH_LEN + 20 + 2] ^= 0x5a;
    let mut bad_echo6 =
        PacketBuilder::eth(CLIENT, US0).ipv6(cip6(), vip6()).icmpv6_echo_request(9, 1).payload(b"ping").build();
    bad_echo6[ETH_LEN + 40 + 2] ^= 0x5a;
    let mut steps = vec![];
    for (desc, src) in [
        ("martian: 0.0.0.0", Ipv4Addr::UNSPECIFIED),
        ("martian: 255.255.255.255", Ipv4Addr::BROADCAST),
        ("martian: 127.0.0.1", Ipv4Addr::LOCALHOST),
        ("martian: 224.0.0.1", Ipv4Addr::new(224, 0, 0, 1)),
        ("martian: 240.0.0.9", Ipv4Addr::new(240, 0, 0, 9)),
    ] {
        steps.push(step(desc, 0, syn_from(src), Expect::Drop("martian_source")));
    }
    for (desc, src) in [("martian: ::", v6("::")), ("martian: ::1", v6("::1")), ("martian: ff02::1", v6("ff02::1"))] {
        steps.push(step(desc, 0, syn6_from(src), Expect::Drop("martian_source")));
    }
    steps.extend([
        step(
            "martian with TTL 1: no ICMP error to it, refused by the core",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(Ipv4Addr::UNSPECIFIED, VIP).ttl(1).tcp(50000, 80).flags(SYN).build(),
            Expect::Drop("martian_source"),
        ),
        step("land: from the VIP itself", 0, syn_from(VIP), Expect::Drop("land")),
        step("land: from the interface address", 0, syn_from(IF0), Expect::Drop("land")),
        step("land: from the LIP", 0, syn_from(LIP), Expect::Drop("land")),
        step("land: from the IPv6 VIP", 0, syn6_from(vip6()), Expect::Drop("land")),
        step("bad IPv4 header checksum (SYN)", 0, bad_ip_csum(syn4(50005, 80)), Expect::Drop("bad_ip_checksum")),
        step(
            "bad IPv4 header checksum (echo): not answered",
            0,
            bad_ip_csum(PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).icmpv4_echo_request(9, 1).build()),
            Expect::Drop("bad_ip_checksum"),
        ),
        step(
            "bad TCP checksum on a SYN",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).tcp(50006, 80).flags(SYN).checksum(0x1234).build(),
            Expect::Drop("bad_l4_checksum"),
        ),
        step(
            "bad TCP checksum on an IPv6 SYN",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv6(cip6(), vip6()).tcp(50006, 80).flags(SYN).checksum(0x1234).build(),
            Expect::Drop("bad_l4_checksum"),
        ),
        step("bad UDP checksum on a first datagram", 0, bad_udp, Expect::Drop("bad_l4_checksum")),
        step("echo with a bad ICMP checksum: not answered", 0, bad_echo, Expect::Drop("bad_icmp_checksum")),
        step("ICMPv6 echo with a bad checksum: not answered", 0, bad_echo6, Expect::Drop("bad_icmp_checksum")),
        step("IPv4 option of length 0", 0, syn_ipopt(&[7, 0]), Expect::Drop("bad_ip_options")),
        step("IPv4 option of length 255", 0, syn_ipopt(&[7, 255, 4, 0]), Expect::Drop("bad_ip_options")),
        step("IPv4 option of length 1", 0, syn_ipopt(&[68, 1, 0, 0]), Expect::Drop("bad_ip_options")),
        step("IPv4 loose source route", 0, syn_ipopt(&[131, 7, 4, 1, 2, 3, 4]), Expect::Drop("bad_ip_options")),
        step("TCP option of length 0", 0, syn_tcpopt(&[8, 0]), Expect::Drop("bad_tcp_options")),
        step("TCP option of length 1", 0, syn_tcpopt(&[2, 1, 0, 0]), Expect::Drop("bad_tcp_options")),
        step("TCP option of length 255", 0, syn_tcpopt(&[2, 255, 5, 0xb4]), Expect::Drop("bad_tcp_options")),
        step("TOA-kind option of length 0", 0, syn_tcpopt(&[254, 0]), Expect::Drop("bad_tcp_options")),
        step("IPv6 routing header type 0", 0, rh(0), Expect::Drop("ipv6_rh0")),
    ]);
    run(&mut w, steps);
    assert_eq!(w.engine.conns().len(), 0, "none of them created a connection");
    assert_eq!(w.engine.stats().total.conns, 0);

    // A well-formed IPv4 option (record route) and an IPv6 type 2 routing header pass.
    w.frame(0, &syn_ipopt(&[7, 7, 4, 0, 0, 0, 0]));
    w.frame(0, &rh(2));
    assert_eq!(w.engine.conns().len(), 2, "well-formed options are not refused");

    // TTL 1: the time exceeded comes from our address on the sender's side.
    for (f, from) in [
        (PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(1).tcp(50010, 80).flags(SYN).build(), IpAddr::from(IF0)),
        (
            PacketBuilder::eth(CLIENT, US0).ipv6(cip6(), vip6()).hop_limit(1).tcp(50010, 80).flags(SYN).build(),
            IpAddr::from(if6()),
        ),
    ] {
        w.io.out.clear();
        w.frame(0, &f);
        assert_eq!(w.io.out.len(), 1);
        assert_eq!(judge_eth(&w.io.out[0].1).src, from, "time exceeded from the interface address");
    }

    // Established connection: a segment with a bad IP checksum or malformed options
    // does not reach the server either.
    let mut w = World::new(1);
    w.frame(0, &syn4(51000, 80));
    assert_eq!(w.engine.conns().len(), 1);
    let data = |o: &[u8]| {
        PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).tcp(51000, 80).seq(2).ack(1).flags(ACK).option(o).payload(b"d")
    };
    run(
        &mut w,
        vec![
            step("established: bad IP checksum", 0, bad_ip_csum(data(&[]).build()), Expect::Drop("bad_ip_checksum")),
            step("established: TCP option of length 0", 0, data(&[8, 0]).build(), Expect::Drop("bad_tcp_options")),
            step(
                "established: IPv4 option of length 0",
                0,
                PacketBuilder::eth(CLIENT, US0)
                    .ipv4(CIP, VIP)
                    .ipv4_options(&[7, 0])
                    .tcp(51000, 80)
                    .seq(2)
                    .flags(ACK)
                    .build(),
                Expect::Drop("bad_ip_options"),
            ),
        ],
    );
    assert_eq!(w.engine.conns().len(), 1);
}

/// A client's own TOA (kind 254) never reaches the server: in the SYN, in the
/// handshake's ACK (where rvs adds its own) and in data, it is overwritten with NOPs
/// (counted `client_toa`), so the server sees exactly one TOA, rvs's, with the
/// client's true address and port.
#[test]
fn client_toa_is_replaced_by_rvs_own() {
    let mut w = World::new(1);
    let lie = toa4(Ipv4Addr::new(1, 2, 3, 4), 80);
    let nops = [1u8; 8];
    let steps: Vec<(&str, usize, Vec<u8>, Vec<u8>)> = vec![
        (
            "SYN with a client TOA: forwarded with NOPs in its place",
            0,
            PacketBuilder::eth(CLIENT, US0)
                .ipv4(CIP, VIP)
                .ttl(64)
                .tcp(40000, 80)
                .seq(100)
                .flags(SYN)
                .mss(1460)
                .option(&lie)
                .build(),
            PacketBuilder::eth(US1, SERVER)
                .ipv4(LIP, RIP)
                .ttl(63)
                .tcp(1025, 8080)
                .seq(100)
                .flags(SYN)
                .mss(1460)
                .option(&nops)
                .build(),
        ),
        (
            "SYN-ACK back to the client",
            1,
            PacketBuilder::eth(SERVER, US1)
                .ipv4(RIP, LIP)
                .ttl(64)
                .tcp(8080, 1025)
                .seq(900)
                .ack(101)
                .flags(SYNACK)
                .mss(1460)
                .build(),
            PacketBuilder::eth(US0, CLIENT)
                .ipv4(VIP, CIP)
                .ttl(63)
                .tcp(80, 40000)
                .seq(900)
                .ack(101)
                .flags(SYNACK)
                .mss(1452)
                .build(),
        ),
        (
            "handshake ACK with a client TOA: NOPs, then rvs's TOA with CIP:cport",
            0,
            PacketBuilder::eth(CLIENT, US0)
                .ipv4(CIP, VIP)
                .ttl(64)
                .tcp(40000, 80)
                .seq(101)
                .ack(901)
                .flags(ACK)
                .option(&lie)
                .build(),
            PacketBuilder::eth(US1, SERVER)
                .ipv4(LIP, RIP)
                .ttl(63)
                .tcp(1025, 8080)
                .seq(101)
                .ack(901)
                .flags(ACK)
                .option(&nops)
                .option(&toa4(CIP, 40000))
                .build(),
        ),
        (
            "data with a client TOA: NOPs",
            0,
            PacketBuilder::eth(CLIENT, US0)
                .ipv4(CIP, VIP)
                .ttl(64)
                .tcp(40000, 80)
                .seq(101)
                .ack(901)
                .flags(ACK)
                .option(&lie)
                .payload(b"GET /")
                .build(),
            PacketBuilder::eth(US1, SERVER)
                .ipv4(LIP, RIP)
                .ttl(63)
                .tcp(1025, 8080)
                .seq(101)
                .ack(901)
                .flags(ACK)
                .option(&nops)
                .payload(b"GET /")
                .build(),
        ),
    ];
    for (i, (desc, port, input, want)) in steps.into_iter().enumerate() {
        w.io.out.clear();
        w.frame(port, &input);
        assert_eq!(w.io.out.len(), 1, "step {i} ({desc}): one frame out");
        let (sink, got) = &w.io.out[0];
        assert_eq!(*sink, Sink::Tx(if port == 0 { 1 } else { 0 }), "step {i} ({desc})");
        assert_eq!(hex(got), hex(&want), "step {i} ({desc}): output differs (got, then expected)");
        let seen = judge_eth(got);
        if port == 0 {
            let toas = wire::tcp::TcpOptions::new(&seen.tcp_options)
                .filter(|o| matches!(o, wire::TcpOption::Unknown { kind: 254, .. }))
                .count();
            let want_toas = usize::from(desc.starts_with("handshake"));
            assert_eq!(toas, want_toas, "step {i} ({desc}): TOA options the server sees");
        }
    }
    assert_eq!(w.engine.stats().drops(DropReason::ClientToa), 3, "each client TOA counted");
    assert_eq!(w.engine.stats().total.conns, 1);
}

/// A neighbour advertisement without the override flag confirms a known address at
/// most (RFC 4861 §7.2.5): another MAC in it moves nothing (counted), where one with the
/// flag is reported as any binding of a known address.
#[test]
fn an_advert_without_override_does_not_move_a_known_neighbour() {
    let mut w = World::new(1);
    let other = EthernetAddress([2, 0, 0, 0, 0, 0x77]);
    let ip = v6("2001:db8:c::9");
    let na = |flags, mac| {
        PacketBuilder::eth(mac, US0).ipv6(ip, if6()).hop_limit(255).neighbour_advert(flags, ip, Some(mac)).build()
    };
    w.neighs.learn(ip.into(), STRANGER, PortId(0), 0);
    let refused = w.node.counters.get(NetCounter::NeighRefused);
    w.frame(0, &na(NdiscFlags::SOLICITED, other));
    assert!(w.io.seen.is_empty(), "not moved: {:?}", w.io.seen);
    assert_eq!(w.node.counters.get(NetCounter::NeighRefused), refused + 1);
    w.frame(0, &na(NdiscFlags::OVERRIDE, other));
    assert_eq!(w.io.seen, vec![(ip.into(), other, 0)], "with the override flag: reported");
}

/// Neighbour poisoning from the client side: bindings for server-side addresses, for
/// the VIP or our interface address, or against a static entry are not reported (only
/// counted); on-link strangers and answers to probes are.
#[test]
fn forged_bindings_are_not_reported() {
    let mut w = World::new(1);
    let reply =
        |smac, sip, port_mac, tip| arp_frame(smac, port_mac, arp(ArpOperation::Reply, smac, sip, port_mac, tip));
    let garp = |smac, ip: Ipv4Addr| {
        arp_frame(
            smac,
            EthernetAddress::BROADCAST,
            arp(ArpOperation::Request, smac, ip, EthernetAddress::BROADCAST, ip),
        )
    };
    let unsolicited_na = |smac, ip: Ipv6Addr| {
        PacketBuilder::eth(smac, EthernetAddress::from_ipv6_multicast(v6("ff02::1")))
            .ipv6(ip, v6("ff02::1"))
            .hop_limit(255)
            .neighbour_advert(NdiscFlags::OVERRIDE, ip, Some(smac))
            .build()
    };
    let up = |f: Vec<u8>| Expect::Out(vec![exact(Sink::TwinControl(0), f)]);
    let forged = [
        ("ARP reply from the client side claiming a real server", reply(STRANGER, RIP_UNRESOLVED, US0, IF0)),
        ("ARP reply from the client side claiming a resolved real server", reply(STRANGER, RIP, US0, IF0)),
        ("ARP reply claiming the VIP", reply(STRANGER, VIP, US0, IF0)),
        ("ARP reply claiming the LIP", reply(STRANGER, LIP, US0, IF0)),
        ("ARP reply claiming our interface address", reply(STRANGER, IF0, US0, IF0)),
        ("gratuitous ARP claiming a real server", garp(STRANGER, RIP_UNRESOLVED)),
        ("gratuitous ARP claiming the VIP", garp(STRANGER, VIP)),
        ("ARP reply against the client's static entry", reply(STRANGER, CIP, US0, IF0)),
        ("ARP reply from outside every subnet", reply(STRANGER, Ipv4Addr::new(203, 0, 113, 5), US0, IF0)),
        ("ARP reply from the subnet's broadcast address", reply(STRANGER, Ipv4Addr::new(198, 51, 100, 255), US0, IF0)),
    ];
    let forged6 = [
        ("unsolicited NA claiming the IPv6 real server", unsolicited_na(STRANGER, rip6())),
        ("unsolicited NA claiming the IPv6 VIP", unsolicited_na(STRANGER, vip6())),
    ];
    let n = forged.len() + forged6.len();
    let mut steps: Vec<Step> = forged.into_iter().map(|(d, f)| step(d, 0, f.clone(), up(f))).collect();
    steps.extend(
        forged6.into_iter().map(|(d, f)| step(d, 0, f, Expect::Out(vec![check(Sink::TwinControl(0), |_| {})]))),
    );
    run(&mut w, steps);
    assert!(w.io.seen.is_empty(), "nothing forged is reported: {:?}", w.io.seen);
    assert_eq!(w.node.counters.get(NetCounter::NeighRefused), n as u64);

    // The unresolved real server answering on its own port is reported; so is a client.
    let rs_reply = arp_frame(SERVER, US1, arp(ArpOperation::Reply, SERVER, RIP_UNRESOLVED, US1, LIP));
    w.frame(1, &rs_reply);
    w.frame(0, &reply(STRANGER, Ipv4Addr::new(198, 51, 100, 9), US0, IF0));
    assert_eq!(
        w.io.seen,
        vec![(RIP_UNRESOLVED.into(), SERVER, 1), (Ipv4Addr::new(198, 51, 100, 9).into(), STRANGER, 0)]
    );
    assert_eq!(w.node.counters.get(NetCounter::NeighRefused), n as u64);

    // A learned entry is not reported again while reachable; being probed, its answer is.
    w.io.seen.clear();
    w.neighs.learn(RIP_UNRESOLVED.into(), SERVER, PortId(1), 0);
    w.frame(1, &rs_reply);
    assert!(w.io.seen.is_empty(), "a reachable binding is known");
    let mut probes = Vec::new();
    let due = w.neighs.lookup(RIP_UNRESOLVED.into()).unwrap().due;
    w.neighs.expire(due, &mut probes);
    assert!(probes.iter().any(|p| p.ip == IpAddr::from(RIP_UNRESOLVED) && p.mac == SERVER));
    w.frame(1, &rs_reply);
    assert_eq!(w.io.seen, vec![(RIP_UNRESOLVED.into(), SERVER, 1)], "the probe's answer is reported");
}

/// The SYN proxy through the whole frame path: the SYN-ACK with the cookie leaves on
/// the client's port to the client's MAC (no connection, no ARP); the client's ACK
/// becomes the SYN that leaves on the server side; the server's SYN-ACK, arriving on
/// the server side, becomes the ACK with TOA that leaves on that same port.
#[test]
fn synproxy_handshake_frames() {
    use fnat::synproxy::cookie::{CookieData, CookieKey};
    use fnat::synproxy::SynProxyMode;
    let mut w = World::new(1);
    let mut web = svc(VIP.into(), 80, &[rs(RIP.into(), 8080)]);
    web.synproxy = Some(SynProxyMode::On);
    w.table = ServiceTable::build(&[web], None).unwrap();
    let cookie = CookieKey::new(7, !7).make(
        CIP.into(),
        40000,
        VIP.into(),
        80,
        100,
        0,
        CookieData::from_syn(true, Some(1460), None, false),
    );
    let tcp = |f: &[u8]| wire::TcpPacket::new_checked(f[ETH_LEN + 20..].to_vec()).unwrap();
    let steps = vec![
        step(
            "SYN: the SYN-ACK with the cookie goes back out of dpdk0 to the client",
            0,
            syn4(40000, 80),
            Expect::Out(vec![check(Sink::Tx(0), move |f| {
                assert_eq!(&f[..12], &[CLIENT.0, US0.0].concat()[..], "to the client's MAC from dpdk0's");
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst, s.sport, s.dport), (VIP.into(), CIP.into(), 80, 40000));
                let t = tcp(f);
                assert_eq!((t.flags(), t.seq_number(), t.ack_number()), (TcpFlags(0x12), cookie, 101));
                assert_eq!(t.mss(), Some(1452));
            })]),
        ),
        step(
            "the cookie ACK: the SYN to the real server leaves dpdk1",
            0,
            PacketBuilder::eth(CLIENT, US0)
                .ipv4(CIP, VIP)
                .tcp(40000, 80)
                .seq(101)
                .ack(cookie.wrapping_add(1))
                .flags(TcpFlags::ACK)
                .build(),
            Expect::Out(vec![check(Sink::Tx(1), move |f| {
                assert_eq!(&f[..12], &[SERVER.0, US1.0].concat()[..]);
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst, s.dport), (LIP.into(), RIP.into(), 8080));
                let t = tcp(f);
                assert_eq!((t.flags(), t.seq_number()), (TcpFlags::SYN, 100));
            })]),
        ),
        step(
            "the server's SYN-ACK: the ACK with TOA leaves dpdk1 again",
            1,
            PacketBuilder::eth(SERVER, US1)
                .ipv4(RIP, LIP)
                .tcp(8080, 1025)
                .seq(7000)
                .ack(101)
                .flags(TcpFlags(0x12))
                .mss(1400)
                .build(),
            Expect::Out(vec![check(Sink::Tx(1), move |f| {
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst, s.sport, s.dport), (LIP.into(), RIP.into(), 1025, 8080));
                assert_eq!(s.tcp_options, toa4(CIP, 40000));
                let t = tcp(f);
                assert_eq!((t.flags(), t.seq_number(), t.ack_number()), (TcpFlags::ACK, 101, 7001));
            })]),
        ),
    ];
    run(&mut w, steps);
    assert_eq!(w.engine.conns().len(), 1);
}

/// Cuts the IPv4 packet in the Ethernet frame `frame` into fragment frames of `chunk`
/// payload bytes (a multiple of 8).
fn split_v4_frame(frame: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let (eth, pkt) = frame.split_at(ETH_LEN);
    let p = wire::Ipv4Packet::new_checked(pkt).unwrap();
    let hl = p.header_len();
    let payload = &pkt[hl..p.total_len() as usize];
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = eth.to_vec();
            f.extend_from_slice(&pkt[..hl]);
            f.extend_from_slice(part);
            let mut q = wire::Ipv4Packet::new_unchecked(&mut f[ETH_LEN..]);
            q.set_total_len((hl + part.len()) as u16);
            q.set_frag_offset((i * chunk) as u16);
            q.set_more_frags(i + 1 < n);
            q.fill_checksum();
            f
        })
        .collect()
}

/// IP fragments (issue 12, scope 6): the frame path hands them to the core, which
/// forwards them by their first fragment's connection; each leaves dpdk1 to the
/// server's MAC with its TTL decremented, and together they reassemble into a segment
/// whose checksum holds with the new addresses and ports. A fragment larger than the
/// outgoing MTU is dropped as `too_big`, with an ICMP error about a first fragment
/// only (none about a later one, RFC 1122).
#[test]
fn fragments_through_the_frame_path() {
    let mut w = World::new(1);
    w.frame(0, &syn4(43000, 80));
    assert_eq!(w.io.out.len(), 1, "the SYN goes out");
    let lport = u16::from_be_bytes([w.io.out[0].1[ETH_LEN + 20], w.io.out[0].1[ETH_LEN + 21]]);
    w.frame(
        1,
        &PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).tcp(8080, lport).seq(500).ack(101).flags(SYNACK).build(),
    );
    assert_eq!(w.io.out.len(), 2, "the SYN-ACK goes out");
    w.io.out.clear();

    let data: Vec<u8> = (0..2000).map(|i| (i % 251) as u8).collect();
    let seg = PacketBuilder::eth(CLIENT, US0)
        .ipv4(CIP, VIP)
        .ident(77)
        .tcp(43000, 80)
        .seq(101)
        .ack(501)
        .flags(ACK)
        .payload(&data)
        .build();
    let frags = split_v4_frame(&seg, 1000);
    assert_eq!(frags.len(), 3);
    for f in &frags {
        w.frame(0, f);
    }
    assert_eq!(w.io.out.len(), 3, "three fragments out: {:?}", w.drops());
    let mut ip: Vec<Vec<u8>> = Vec::new();
    for (sink, f) in &w.io.out {
        assert_eq!(*sink, Sink::Tx(1), "out of dpdk1");
        assert_eq!((&f[0..6], &f[6..12]), (&SERVER.0[..], &US1.0[..]), "to the server's MAC");
        let p = wire::Ipv4Packet::new_checked(&f[ETH_LEN..]).unwrap();
        assert!(p.verify_checksum(), "IPv4 header checksum");
        assert_eq!((p.src_addr(), p.dst_addr(), p.ttl(), p.ident()), (LIP, RIP, 63, 77));
        ip.push(f[ETH_LEN..].to_vec());
    }
    // Reassembled here (in offset order), judged by etherparse.
    ip.sort_by_key(|f| wire::Ipv4Packet::new_checked(&f[..]).unwrap().frag_offset());
    let mut whole = ip[0][..20].to_vec();
    for f in &ip {
        whole.extend_from_slice(&f[20..]);
    }
    let len = whole.len() as u16;
    let mut q = wire::Ipv4Packet::new_unchecked(&mut whole[..]);
    q.set_total_len(len);
    q.set_more_frags(false);
    q.fill_checksum();
    let seen = fnat::judge::judge(&whole);
    assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (LIP.into(), lport, RIP.into(), 8080));
    assert_eq!(seen.payload, data);

    // Fragments of 1480 bytes towards the 1400-byte port.
    w.io.out.clear();
    let big = [9u8; 2980];
    let seg = PacketBuilder::eth(CLIENT, US0)
        .ipv4(CIP, VIP)
        .ident(78)
        .tcp(43000, 80)
        .seq(2101)
        .ack(501)
        .flags(ACK)
        .payload(&big)
        .build();
    for f in split_v4_frame(&seg, 1480) {
        w.frame(0, &f);
    }
    assert_eq!(w.node.counters.drops(NetDrop::TooBig), 2, "the first two fragments (1500 bytes) are too big");
    assert_eq!(w.io.out.len(), 2, "one ICMP error, about the first fragment, and the last fragment");
    let (sink, f) = &w.io.out[0];
    assert_eq!(*sink, Sink::Tx(0));
    assert_eq!((f[ETH_LEN + 20], f[ETH_LEN + 21]), (3, 4), "fragmentation needed");
    assert_eq!(w.io.out[1].0, Sink::Tx(1), "the small last fragment still goes (the server's reassembly times out)");
}
