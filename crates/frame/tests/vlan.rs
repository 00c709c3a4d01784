//! Whole-frame fixtures for 802.1Q VLAN sub-interfaces: the world's `dpdk0.100` (VLAN
//! 100 on dpdk0, address 198.51.101.1/24). Tagged frames in, the exact frames out: the
//! tag comes off on the way in (the frame then belongs to the sub-interface: its
//! addresses, routes and neighbours) and goes back on, on dpdk0, for everything the
//! sub-interface sends.

mod world;

use world::*;

/// The sub-interface's address and a client behind it.
const VIF: Ipv4Addr = Ipv4Addr::new(198, 51, 101, 1);
const VCIP: Ipv4Addr = Ipv4Addr::new(198, 51, 101, 10);
const BCAST: EthernetAddress = EthernetAddress([0xff; 6]);
const VLAN_PORT: usize = 2;

fn tagged_arp(
    vid: u16,
    op: ArpOperation,
    from: (EthernetAddress, Ipv4Addr),
    to: (EthernetAddress, Ipv4Addr),
) -> Vec<u8> {
    let dst = if op == ArpOperation::Request { BCAST } else { to.0 };
    let tmac = if op == ArpOperation::Request { EthernetAddress([0; 6]) } else { to.0 };
    PacketBuilder::eth(from.0, dst).vlan(vid).arp(arp(op, from.0, from.1, tmac, to.1)).build()
}

/// The 802.1Q tag of a frame, if it has one: (TPID, VLAN id).
fn tag_of(f: &[u8]) -> Option<u16> {
    (f[12..14] == [0x81, 0x00]).then(|| u16::from_be_bytes([f[14], f[15]]) & 0x0fff)
}

/// A frame without its tag (for etherparse's judgement of what it carries).
fn untagged(f: &[u8]) -> Vec<u8> {
    [&f[..12], &f[16..]].concat()
}

#[test]
fn arp_echo_and_a_connection_through_a_vlan_sub_interface() {
    let mut w = World::new(1);
    w.neighs.insert_static(VCIP.into(), CLIENT, PortId(VLAN_PORT as u16), 0);
    let echo_req = PacketBuilder::eth(CLIENT, US0).vlan(100).ipv4(VCIP, VIF).icmpv4_echo_request(9, 1).payload(b"vlan");
    let echo_rep =
        PacketBuilder::eth(US0, CLIENT).vlan(100).ipv4(VIF, VCIP).ttl(64).icmpv4_echo_reply(9, 1).payload(b"vlan");
    let steps = vec![
        step(
            "ARP request on VLAN 100 for the sub-interface's address: answered on VLAN 100, out of dpdk0",
            0,
            tagged_arp(100, ArpOperation::Request, (CLIENT, VCIP), (US0, VIF)),
            Expect::Out(vec![exact(Sink::Tx(0), tagged_arp(100, ArpOperation::Reply, (US0, VIF), (CLIENT, VCIP)))]),
        ),
        step(
            "ARP on VLAN 100 for dpdk0's own address: not answered there (the kernel's, on the VLAN's twin)",
            0,
            tagged_arp(100, ArpOperation::Request, (CLIENT, VCIP), (US0, IF0)),
            Expect::Out(vec![exact(
                Sink::TwinControl(VLAN_PORT),
                PacketBuilder::eth(CLIENT, BCAST)
                    .arp(arp(ArpOperation::Request, CLIENT, VCIP, EthernetAddress([0; 6]), IF0))
                    .build(),
            )]),
        ),
        step(
            "echo on VLAN 100: answered tagged",
            0,
            echo_req.build(),
            Expect::Out(vec![exact(Sink::Tx(0), echo_rep.build())]),
        ),
        step(
            "a VLAN without a sub-interface: the frame goes to dpdk0's twin as it came",
            0,
            PacketBuilder::eth(CLIENT, US0).vlan(200).ipv4(VCIP, VIF).icmpv4_echo_request(9, 1).build(),
            Expect::Out(vec![exact(
                Sink::Twin(0),
                PacketBuilder::eth(CLIENT, US0).vlan(200).ipv4(VCIP, VIF).icmpv4_echo_request(9, 1).build(),
            )]),
        ),
        step(
            "priority-tagged (VLAN 0): dpdk0's own frame, answered untagged",
            0,
            PacketBuilder::eth(CLIENT, US0).vlan(0).ipv4(CIP, IF0).icmpv4_echo_request(3, 1).build(),
            Expect::Out(vec![exact(
                Sink::Tx(0),
                PacketBuilder::eth(US0, CLIENT).ipv4(IF0, CIP).ttl(64).icmpv4_echo_reply(3, 1).build(),
            )]),
        ),
        step(
            "VLAN 100 to another MAC: not for us",
            0,
            PacketBuilder::eth(CLIENT, STRANGER).vlan(100).ipv4(VCIP, VIF).icmpv4_echo_request(9, 1).build(),
            Expect::Drop("not_for_us"),
        ),
        step(
            "a tag cut short: the frame goes up as it is, nothing is read past its end",
            0,
            PacketBuilder::eth(CLIENT, US0).ethertype(EtherType::VLAN).payload(&[0x00]).build(),
            Expect::Out(vec![exact(
                Sink::Twin(0),
                PacketBuilder::eth(CLIENT, US0).ethertype(EtherType::VLAN).payload(&[0x00]).build(),
            )]),
        ),
    ];
    run(&mut w, steps);

    // A connection from a client on VLAN 100 to the VIP: the server side is untagged
    // dpdk1; the replies go back tagged on dpdk0.
    let syn = PacketBuilder::eth(CLIENT, US0).vlan(100).ipv4(VCIP, VIP).tcp(40000, 80).seq(100).flags(SYN).mss(1460);
    run(
        &mut w,
        vec![step(
            "SYN from VLAN 100 to the VIP: out of dpdk1, untagged, from the LIP",
            0,
            syn.build(),
            Expect::Out(vec![check(Sink::Tx(1), |f| {
                assert_eq!(tag_of(f), None, "untagged towards the server");
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst, s.dport), (LIP.into(), RIP.into(), 8080));
            })]),
        )],
    );
    let lport = judge_eth(&w.io.out[0].1).sport;
    let synack =
        PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).tcp(8080, lport).seq(900).ack(101).flags(SYNACK).mss(1400);
    run(
        &mut w,
        vec![step(
            "SYN-ACK: back to the client on VLAN 100, tagged, out of dpdk0",
            1,
            synack.build(),
            Expect::Out(vec![check(Sink::Tx(0), |f| {
                assert_eq!(tag_of(f), Some(100), "tagged for VLAN 100");
                assert_eq!(&f[..12], &[CLIENT.0, US0.0].concat()[..], "to the client's MAC from dpdk0's");
                let s = judge_eth(&untagged(f));
                assert_eq!((s.src, s.dst, s.sport, s.dport), (VIP.into(), VCIP.into(), 80, 40000));
            })]),
        )],
    );
    let c = &w.node.counters;
    assert_eq!((c.get(NetCounter::VlanRx), c.get(NetCounter::VlanTx)), (5, 3), "tags removed and added");
}

/// What the kernel sends on the VLAN's twin leaves dpdk0 tagged; an unresolved next hop
/// on the VLAN is asked for with a tagged ARP request.
#[test]
fn the_twin_and_neighbour_resolution_on_a_vlan() {
    let mut w = World::new(1);
    let net = Net { ports: &w.ports, addrs: &w.addrs, routes: &w.routes, neighs: &w.neighs };
    let from_kernel = PacketBuilder::eth(US0, CLIENT).ipv4(VIF, VCIP).icmpv4_echo_request(1, 1).build();
    w.node.from_twin(&net, VLAN_PORT, VecBuf::new(&from_kernel), &mut w.io);
    let want = PacketBuilder::eth(US0, CLIENT).vlan(100).ipv4(VIF, VCIP).icmpv4_echo_request(1, 1).build();
    assert_eq!(w.io.out, vec![(Sink::Tx(0), want)], "the kernel's frame leaves dpdk0 tagged");
    w.io.out.clear();
    // The kernel asking who has an address: its answer is the kernel's, nothing the
    // dataplane asked.
    let who_has = arp_frame(US0, BCAST, arp(ArpOperation::Request, US0, VIF, EthernetAddress([0; 6]), VCIP));
    w.node.from_twin(&net, VLAN_PORT, VecBuf::new(&who_has), &mut w.io);
    assert!(w.io.asked.is_empty());
    w.io.out.clear();

    // An echo from a client the table does not know yet: its reply waits, the ARP
    // request for it goes out tagged.
    let ping = PacketBuilder::eth(CLIENT, US0).vlan(100).ipv4(VCIP, VIF).icmpv4_echo_request(4, 1).build();
    w.frame(0, &ping);
    w.housekeeping(1000);
    let ask = w.io.out.iter().find(|(_, f)| f[16..18] == [0x08, 0x06]).expect("an ARP request");
    assert_eq!(ask.0, Sink::Tx(0));
    assert_eq!(tag_of(&ask.1), Some(100), "the request is tagged for VLAN 100");
    let req = wire::ArpPacket::new_checked(&ask.1[18..]).unwrap();
    assert_eq!(wire::ArpRepr::parse(&req).unwrap().target_protocol_addr, VCIP);
}
