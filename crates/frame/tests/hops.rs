//! The next hops connections keep (`frame::HopCache`): an established connection's
//! packets leave through the route and MAC resolved for its first packet, and follow
//! the tables when neighbours or routes change. Whole frames in and out, on the
//! fixtures' topology (see `fixtures.rs`).

mod world;

use world::*;

const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 254);
const GATEWAY_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x6a]);

/// Client data of the connection `handshake` opens: out of dpdk1 to `mac`.
fn client_data(seq: u32) -> Vec<u8> {
    PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).tcp(40000, 80).seq(seq).ack(901).flags(TcpFlags::ACK).build()
}

/// The server's data of that connection: out of dpdk0 to the client.
fn server_data(seq: u32) -> Vec<u8> {
    PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).tcp(8080, 1025).seq(seq).ack(101).flags(TcpFlags::ACK).build()
}

/// Where a frame was sent and to which MAC, checked against etherparse.
fn to(sink: Sink, mac: EthernetAddress, dst: Ipv4Addr) -> (Sink, Want) {
    check(sink, move |f| {
        assert_eq!(&f[0..6], &mac.0, "destination MAC");
        assert_eq!(judge_eth(f).dst, IpAddr::from(dst));
    })
}

fn handshake(w: &mut World) {
    let synack = PacketBuilder::eth(SERVER, US1)
        .ipv4(RIP, LIP)
        .tcp(8080, 1025)
        .seq(900)
        .ack(101)
        .flags(TcpFlags::SYN | TcpFlags::ACK)
        .build();
    run(
        w,
        vec![
            step("SYN", 0, syn4(40000, 80), Expect::Out(vec![to(Sink::Tx(1), SERVER, RIP)])),
            step("SYN-ACK", 1, synack, Expect::Out(vec![to(Sink::Tx(0), CLIENT, CIP)])),
            step("ACK", 0, client_data(101), Expect::Out(vec![to(Sink::Tx(1), SERVER, RIP)])),
        ],
    );
}

#[test]
fn a_connection_keeps_its_next_hops_and_follows_neighbour_and_route_changes() {
    let mut w = World::new(1);
    handshake(&mut w);
    assert_eq!(w.node.hops().len(), 2, "the real server's and the client's next hops are kept");

    // The server's MAC changes (a new NIC, a failover): the next packet follows it.
    w.neighs.insert_static(RIP.into(), STRANGER, PortId(1), 0);
    run(
        &mut w,
        vec![step(
            "after the neighbour changed",
            0,
            client_data(102),
            Expect::Out(vec![to(Sink::Tx(1), STRANGER, RIP)]),
        )],
    );

    // A more specific route through a gateway: the connection's packets take it.
    w.routes.add(Route::via(net("10.2.0.0/16"), GATEWAY.into(), PortId(1))).unwrap();
    w.neighs.insert_static(GATEWAY.into(), GATEWAY_MAC, PortId(1), 0);
    run(
        &mut w,
        vec![
            step("after the route changed", 0, client_data(103), Expect::Out(vec![to(Sink::Tx(1), GATEWAY_MAC, RIP)])),
            step("and the next packet", 0, client_data(104), Expect::Out(vec![to(Sink::Tx(1), GATEWAY_MAC, RIP)])),
        ],
    );

    // The route goes away again. The cache is rebuilt in another order (the server's
    // side first): the client side's old slot now names the client's next hop, and
    // must not be used (the connections forget their slots on a route change).
    w.routes.del(net("10.2.0.0/16"), None).unwrap();
    run(
        &mut w,
        vec![
            step("server data first", 1, server_data(901), Expect::Out(vec![to(Sink::Tx(0), CLIENT, CIP)])),
            step("then client data", 0, client_data(105), Expect::Out(vec![to(Sink::Tx(1), STRANGER, RIP)])),
            step("again", 0, client_data(106), Expect::Out(vec![to(Sink::Tx(1), STRANGER, RIP)])),
            step("and the server again", 1, server_data(902), Expect::Out(vec![to(Sink::Tx(0), CLIENT, CIP)])),
        ],
    );
    assert_eq!(w.node.hops().len(), 2);

    // The server's neighbour entry is gone: its packets wait for resolution instead of
    // leaving to the MAC the cache last knew.
    w.neighs.delete(RIP.into());
    run(&mut w, vec![step("neighbour gone", 0, client_data(107), Expect::Queued)]);
    assert_eq!(w.node.pending(), 1);
}

/// Without the walk (a caller that never tends the cache), a route change leaves the
/// cache unused: packets are routed one by one, never through a stale slot.
#[test]
fn untended_cache_routes_packet_by_packet_after_a_route_change() {
    let mut w = World::new(1);
    handshake(&mut w);
    w.routes.add(Route::via(net("10.2.0.0/16"), GATEWAY.into(), PortId(1))).unwrap();
    w.neighs.insert_static(GATEWAY.into(), GATEWAY_MAC, PortId(1), 0);
    for seq in 102..105 {
        let net = Net { ports: &w.ports, addrs: &w.addrs, routes: &w.routes, neighs: &w.neighs };
        let mut port = 0;
        let mut b = w.node.receive(&net, &mut port, VecBuf::new(&client_data(seq)), &mut w.io).unwrap();
        let v = w.engine.process(&w.table, &mut b, ETH_LEN, w.now);
        w.node.after_core(&net, port, b, v, &mut w.engine, &mut w.io);
        assert_eq!(w.node.hops().len(), 0, "nothing cached while the walk has not run");
        let (sink, f) = w.io.out.pop().unwrap();
        assert_eq!((sink, &f[0..6]), (Sink::Tx(1), &GATEWAY_MAC.0[..]));
    }
}
