//! Whole-frame fixture tables for the forwarding modes other than FullNAT (NAT, DR, TUN, SNAT), in
//! both directions where the mode has two, IPv4 and IPv6, TCP and UDP: each frame in,
//! the exact frames out, each also judged by etherparse. The world (ports, addresses,
//! services) is `world/mod.rs`'s; FullNAT's own tables are in `fixtures.rs`.

mod world;

use world::*;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN_ACK: TcpFlags = TcpFlags(0x11);
const SYNACK: TcpFlags = TcpFlags(0x12);
const RST: TcpFlags = TcpFlags::RST;

/// A TCP/IPv4 frame.
#[allow(clippy::too_many_arguments)]
fn tcp4(
    macs: (EthernetAddress, EthernetAddress),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    flags: TcpFlags,
) -> wire::builder::TcpBuilder {
    PacketBuilder::eth(macs.0, macs.1).ipv4(src, dst).ttl(ttl).tcp(ports.0, ports.1).seq(seq).ack(ack).flags(flags)
}

/// A TCP/IPv6 frame.
#[allow(clippy::too_many_arguments)]
fn tcp6(
    macs: (EthernetAddress, EthernetAddress),
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hops: u8,
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    flags: TcpFlags,
) -> wire::builder::TcpBuilder {
    PacketBuilder::eth(macs.0, macs.1)
        .ipv6(src, dst)
        .hop_limit(hops)
        .tcp(ports.0, ports.1)
        .seq(seq)
        .ack(ack)
        .flags(flags)
}

/// An exact frame out of `port`, also judged by etherparse (checksums included).
fn judged(sink: Sink, f: Vec<u8>) -> (Sink, Want) {
    judge_eth(&f);
    exact(sink, f)
}

const IN: (EthernetAddress, EthernetAddress) = (CLIENT, US0);
const TO_RS: (EthernetAddress, EthernetAddress) = (US1, SERVER);
const FROM_RS: (EthernetAddress, EthernetAddress) = (SERVER, US1);
const TO_CLIENT: (EthernetAddress, EthernetAddress) = (US0, CLIENT);

/// NAT: inbound only the destination is rewritten (the server sees the client), the
/// reply only its source; no TOA, no MSS change.
#[test]
fn nat_both_directions_v4_v6_tcp_udp() {
    let mut w = World::new(1);
    let steps = vec![
        step(
            "client SYN: CIP:cport -> RIP:rport out of dpdk1, the client's address kept, MSS untouched",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 82), 100, 0, SYN).mss(1460).build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                tcp4(TO_RS, CIP, RIP, 63, (40000, 8080), 100, 0, SYN).mss(1460).build(),
            )]),
        ),
        step(
            "server SYN-ACK to the client: only the source becomes VIP:vport",
            1,
            tcp4(FROM_RS, RIP, CIP, 64, (8080, 40000), 900, 101, SYNACK).mss(1460).build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                tcp4(TO_CLIENT, VIP, CIP, 63, (82, 40000), 900, 101, SYNACK).mss(1460).build(),
            )]),
        ),
        step(
            "handshake ACK: no TOA under NAT",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 82), 101, 901, ACK).payload(b"GET /").build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                tcp4(TO_RS, CIP, RIP, 63, (40000, 8080), 101, 901, ACK).payload(b"GET /").build(),
            )]),
        ),
        step(
            "IPv6 client SYN",
            0,
            tcp6(IN, cip6(), vip6(), 64, (40000, 82), 100, 0, SYN).build(),
            Expect::Out(vec![judged(Sink::Tx(1), tcp6(TO_RS, cip6(), rip6(), 63, (40000, 8080), 100, 0, SYN).build())]),
        ),
        step(
            "IPv6 server SYN-ACK",
            1,
            tcp6(FROM_RS, rip6(), cip6(), 64, (8080, 40000), 900, 101, SYNACK).build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                tcp6(TO_CLIENT, vip6(), cip6(), 63, (82, 40000), 900, 101, SYNACK).build(),
            )]),
        ),
        step(
            "UDP datagram to a NAT service",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(64).udp(5000, 53).payload(b"query").build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER).ipv4(CIP, RIP).ttl(63).udp(5000, 5353).payload(b"query").build(),
            )]),
        ),
        step(
            "UDP answer from the server",
            1,
            PacketBuilder::eth(SERVER, US1).ipv4(RIP, CIP).ttl(64).udp(5353, 5000).payload(b"answer").build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                PacketBuilder::eth(US0, CLIENT).ipv4(VIP, CIP).ttl(63).udp(53, 5000).payload(b"answer").build(),
            )]),
        ),
        step(
            "a NAT server's packet to a client port with no connection is not rewritten (the kernel's; no twin here)",
            1,
            tcp4(FROM_RS, RIP, CIP, 64, (8080, 41000), 1, 1, ACK).build(),
            Expect::Drop("no_twin"),
        ),
    ];
    run(&mut w, steps);
    let listed = w.engine.list(0, 16, w.now).0;
    let c = listed.iter().find(|c| c.virt.port() == 82 && c.client.is_ipv4()).expect("the NAT connection is listed");
    assert_eq!(c.fwd, FwdMode::Nat);
    assert_eq!(c.local, c.client, "a NAT connection's local side is the client");
    assert_eq!(c.state_name(), "ESTABLISHED");
}

/// DR: the client's frame goes unchanged (TTL less one) to the real server's MAC; the
/// state follows the client's packets alone (IPVS's input-only table).
#[test]
fn dr_forwards_unchanged_and_tracks_input_only() {
    let mut w = World::new(1);
    let steps = vec![
        step(
            "client SYN: same addresses and ports, to the server's MAC out of dpdk1",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 83), 100, 0, SYN).mss(1460).build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                tcp4(TO_RS, CIP, VIP, 63, (40000, 83), 100, 0, SYN).mss(1460).build(),
            )]),
        ),
        step(
            "handshake ACK (the SYN-ACK went from the server to the client directly)",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 83), 101, 901, ACK).payload(b"GET /").build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                tcp4(TO_RS, CIP, VIP, 63, (40000, 83), 101, 901, ACK).payload(b"GET /").build(),
            )]),
        ),
        step(
            "IPv6 client SYN, unchanged",
            0,
            tcp6(IN, cip6(), vip6(), 64, (40000, 83), 100, 0, SYN).build(),
            Expect::Out(vec![judged(Sink::Tx(1), tcp6(TO_RS, cip6(), vip6(), 63, (40000, 83), 100, 0, SYN).build())]),
        ),
        step(
            "UDP to a DR service, unchanged",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(64).udp(5000, 54).payload(b"query").build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER).ipv4(CIP, VIP).ttl(63).udp(5000, 54).payload(b"query").build(),
            )]),
        ),
    ];
    run(&mut w, steps);
    let state = |w: &World| {
        let l = w.engine.list(0, 16, w.now).0;
        let c =
            l.iter().find(|c| c.virt.port() == 83 && c.client.is_ipv4()).expect("the DR connection is listed").clone();
        assert_eq!(c.fwd, FwdMode::Dr);
        c.state_name()
    };
    assert_eq!(state(&w), "ESTABLISHED", "the client's ACK establishes a DR connection");
    run(
        &mut w,
        vec![step(
            "client FIN",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 83), 106, 901, FIN_ACK).build(),
            Expect::Out(vec![judged(Sink::Tx(1), tcp4(TO_RS, CIP, VIP, 63, (40000, 83), 106, 901, FIN_ACK).build())]),
        )],
    );
    assert_eq!(state(&w), "FIN_WAIT", "input-only: the client's FIN moves ESTABLISHED to FIN_WAIT");
}

/// Two NAT services towards the same real server and port: a client port that moves from
/// one to the other while its first connection is finished (here reset: CLOSE) takes the
/// server-side key over, as a SYN meeting a TIME_WAIT connection does; while the first is
/// open, the second is refused (`nat_clash`): the server's replies could not tell them apart.
#[test]
fn nat_server_side_key_is_reused_once_finished_and_refused_while_open() {
    let mut w = World::new(1);
    let nat = |vport| svc(VIP.into(), vport, &[rs_mode(RIP.into(), 8080, FwdMode::Nat)]);
    w.table = ServiceTable::build(&[nat(82), nat(86)], None).unwrap();
    let syn_out = |cport| judged(Sink::Tx(1), tcp4(TO_RS, CIP, RIP, 63, (cport, 8080), 100, 0, SYN).build());
    let steps = vec![
        step(
            "SYN to :82",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 82), 100, 0, SYN).build(),
            Expect::Out(vec![syn_out(40000)]),
        ),
        step(
            "SYN-ACK",
            1,
            tcp4(FROM_RS, RIP, CIP, 64, (8080, 40000), 900, 101, SYNACK).build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                tcp4(TO_CLIENT, VIP, CIP, 63, (82, 40000), 900, 101, SYNACK).build(),
            )]),
        ),
        step(
            "ACK",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 82), 101, 901, ACK).build(),
            Expect::Out(vec![judged(Sink::Tx(1), tcp4(TO_RS, CIP, RIP, 63, (40000, 8080), 101, 901, ACK).build())]),
        ),
        step(
            "the client resets it",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 82), 101, 901, TcpFlags(0x14)).build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                tcp4(TO_RS, CIP, RIP, 63, (40000, 8080), 101, 901, TcpFlags(0x14)).build(),
            )]),
        ),
        step(
            "the same client port to :86, the same server: the closed connection gives way",
            0,
            tcp4(IN, CIP, VIP, 64, (40000, 86), 100, 0, SYN).build(),
            Expect::Out(vec![syn_out(40000)]),
        ),
        step(
            "the server's SYN-ACK goes back from :86, the new connection's port",
            1,
            tcp4(FROM_RS, RIP, CIP, 64, (8080, 40000), 900, 101, SYNACK).build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                tcp4(TO_CLIENT, VIP, CIP, 63, (86, 40000), 900, 101, SYNACK).build(),
            )]),
        ),
        step(
            "SYN to :82 from another port",
            0,
            tcp4(IN, CIP, VIP, 64, (40001, 82), 100, 0, SYN).build(),
            Expect::Out(vec![syn_out(40001)]),
        ),
        step(
            "that port to :86 while the first is open: refused",
            0,
            tcp4(IN, CIP, VIP, 64, (40001, 86), 100, 0, SYN).build(),
            Expect::Drop("nat_clash"),
        ),
    ];
    run(&mut w, steps);
    assert_eq!(w.engine.stats_snapshot().events.get("conn_reused"), Some(&1), "the reuse is counted");
}

/// With two workers, a NAT connection lives on the worker its client's address and port
/// hash to: a client packet received elsewhere, and a server's reply, are handed to it.
/// FullNAT services are not affected.
#[test]
fn nat_connections_live_with_the_client_ports_owner() {
    let mut w = World::new(2);
    // Worker 0 here.
    let owner = |p: &u16| fnat::engine::modes::client_side_owner(0, &IpAddr::from(CIP).into(), *p, 2);
    let theirs = (40000..41000).find(|p| owner(p) == 1).unwrap();
    let ours = (40000..41000).find(|p| owner(p) == 0).unwrap();
    let syn = |cport, vport| tcp4(IN, CIP, VIP, 64, (cport, vport), 100, 0, SYN).build();
    let steps = vec![
        step(
            "a SYN to a NAT service from a client port worker 1 owns: handed over, untouched",
            0,
            syn(theirs, 82),
            Expect::Out(vec![exact(Sink::Redirect(1, 0), syn(theirs, 82))]),
        ),
        step(
            "the server's reply to that port: handed over too",
            1,
            tcp4(FROM_RS, RIP, CIP, 64, (8080, theirs), 900, 101, SYNACK).build(),
            Expect::Out(vec![exact(
                Sink::Redirect(1, 1),
                tcp4(FROM_RS, RIP, CIP, 64, (8080, theirs), 900, 101, SYNACK).build(),
            )]),
        ),
        step(
            "a SYN from a port this worker owns: forwarded here",
            0,
            syn(ours, 82),
            Expect::Out(vec![judged(Sink::Tx(1), tcp4(TO_RS, CIP, RIP, 63, (ours, 8080), 100, 0, SYN).build())]),
        ),
        step(
            "a FullNAT service's SYN is opened where it arrives, whatever the client's port",
            0,
            syn(theirs, 80),
            Expect::Out(vec![check(Sink::Tx(1), |f| {
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst), (IpAddr::from(LIP), IpAddr::from(RIP)));
            })]),
        ),
    ];
    run(&mut w, steps);
}

/// ICMP errors: under NAT, a server-side error about a packet rvs sent is translated
/// back to the client; under DR a client-side error about the server's reply goes to the
/// server unchanged.
/// With two workers, a persistent FullNAT service's connections live on the worker the
/// client's masked address hashes to (where its template is), whatever its port: a SYN
/// received elsewhere is handed over untouched. Clients in one /24 under a /24 mask share
/// an owner.
#[test]
fn persistent_connections_live_with_the_masked_clients_owner() {
    let mut w = World::new(2);
    let mut web = svc(VIP.into(), 80, &[rs(RIP.into(), 8080)]);
    web.persistence = Some(fnat::persist::PersistConfig { timeout_s: 300, netmask_v4: 24, netmask_v6: 128 });
    w.table = ServiceTable::build(&[web], None).unwrap();
    let net24 = |c: Ipv4Addr| IpAddr::from(Ipv4Addr::from(u32::from(c) & 0xffff_ff00));
    let owner = |c: Ipv4Addr| fnat::engine::modes::client_side_owner(0, &net24(c).into(), 0, 2);
    // Clients of two /24s, one per worker (worker 0 here).
    let (theirs, ours) = {
        let nets: Vec<Ipv4Addr> = (0..64u32).map(|i| Ipv4Addr::from(u32::from(CIP) + (i << 8))).collect();
        (*nets.iter().find(|c| owner(**c) == 1).unwrap(), *nets.iter().find(|c| owner(**c) == 0).unwrap())
    };
    let syn = |c: Ipv4Addr, p| tcp4(IN, c, VIP, 64, (p, 80), 100, 0, SYN).build();
    let mut steps = Vec::new();
    for p in [40000u16, 40002, 40004, 51234] {
        steps.push(step(
            "a client of worker 1's /24, any port: handed over untouched",
            0,
            syn(theirs, p),
            Expect::Out(vec![exact(Sink::Redirect(1, 0), syn(theirs, p))]),
        ));
        let neighbour = Ipv4Addr::from(u32::from(theirs) + 1);
        steps.push(step(
            "its neighbour in the /24 too",
            0,
            syn(neighbour, p),
            Expect::Out(vec![exact(Sink::Redirect(1, 0), syn(neighbour, p))]),
        ));
    }
    steps.push(step(
        "a client of this worker's /24: opened here",
        0,
        syn(ours, 40000),
        Expect::Out(vec![check(Sink::Tx(1), |f| {
            let s = judge_eth(f);
            assert_eq!((s.src, s.dst), (IpAddr::from(LIP), IpAddr::from(RIP)));
        })]),
    ));
    run(&mut w, steps);
}

#[test]
fn icmp_errors_under_nat_and_dr() {
    let mut w = World::new(1);
    run(
        &mut w,
        vec![
            step(
                "NAT SYN",
                0,
                tcp4(IN, CIP, VIP, 64, (40000, 82), 100, 0, SYN).build(),
                Expect::Out(vec![judged(Sink::Tx(1), tcp4(TO_RS, CIP, RIP, 63, (40000, 8080), 100, 0, SYN).build())]),
            ),
            step(
                "DR SYN",
                0,
                tcp4(IN, CIP, VIP, 64, (40001, 83), 100, 0, SYN).build(),
                Expect::Out(vec![judged(Sink::Tx(1), tcp4(TO_RS, CIP, VIP, 63, (40001, 83), 100, 0, SYN).build())]),
            ),
        ],
    );
    let quoted_nat = PacketBuilder::ipv4(CIP, RIP).ttl(63).tcp(40000, 8080).seq(100).flags(SYN).build();
    let err_nat = PacketBuilder::eth(SERVER, US1).ipv4(RIP, CIP).ttl(64).icmpv4_error(3, 3, &quoted_nat).build();
    // The DR server answered the client directly; a router on the way sent this back.
    let quoted_dr = PacketBuilder::ipv4(VIP, CIP).ttl(60).tcp(83, 40001).seq(900).ack(101).flags(SYNACK).build();
    let err_dr = PacketBuilder::eth(CLIENT, US0)
        .ipv4(CIP, VIP)
        .ttl(64)
        .icmpv4_error(3, 4, &quoted_dr)
        .next_hop_mtu(1400)
        .build();
    let err_dr_out = {
        let mut f = err_dr.clone();
        f[..12].copy_from_slice(&[SERVER.0, US1.0].concat());
        f
    };
    run(
        &mut w,
        vec![
            step(
                "NAT: the server's port unreachable goes to the client, as from the VIP about CIP -> VIP:vport",
                1,
                err_nat,
                Expect::Out(vec![check(Sink::Tx(0), |f| {
                    let s = judge_eth(f);
                    assert_eq!((s.src, s.dst), (IpAddr::from(VIP), IpAddr::from(CIP)));
                    let inner = fnat::judge::judge(&s.icmp_payload);
                    assert_eq!((inner.src, inner.sport), (IpAddr::from(CIP), 40000));
                    assert_eq!((inner.dst, inner.dport), (IpAddr::from(VIP), 82));
                })]),
            ),
            step(
                "DR: an error about the server's reply goes to the server unchanged but for the TTL",
                0,
                err_dr,
                Expect::Out(vec![check(Sink::Tx(1), move |f| {
                    judge_eth(f);
                    assert_eq!(&f[..12], &err_dr_out[..12], "to the server's MAC");
                    assert_eq!(f[ETH_LEN + 8], 63, "TTL less one");
                    assert_eq!(&f[ETH_LEN + 12..], &err_dr_out[ETH_LEN + 12..], "addresses and message unchanged");
                })]),
            ),
        ],
    );
}

/// TUN: the client's packet, unchanged (its TTL too), inside an IPIP / ip6ip6 header from
/// the LIP to the real server; the outer header copies the inner's identification and
/// DF. A packet the tunnel makes too big for the way out gets "fragmentation needed"
/// back with the MTU less the outer header, quoting the packet as the client sent it.
#[test]
fn tunnel_encapsulates_and_reports_the_inner_mtu() {
    let mut w = World::new(1);
    let inner = |payload: &[u8]| {
        PacketBuilder::ipv4(CIP, VIP)
            .ttl(64)
            .ident(0x4242)
            .dont_frag()
            .tcp(40000, 84)
            .seq(100)
            .flags(SYN)
            .payload(payload)
            .build()
    };
    let in_frame = |payload: &[u8]| {
        PacketBuilder::eth(CLIENT, US0)
            .ipv4(CIP, VIP)
            .ttl(64)
            .ident(0x4242)
            .dont_frag()
            .tcp(40000, 84)
            .seq(100)
            .flags(SYN)
            .payload(payload)
            .build()
    };
    let inner6 = PacketBuilder::ipv6(cip6(), vip6()).hop_limit(64).tcp(40000, 84).seq(100).flags(SYN).build();
    let steps = vec![
        step(
            "client SYN: inside IPIP LIP -> RIP, to the server's MAC, the inner TTL untouched",
            0,
            in_frame(b""),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv4(LIP, RIP)
                    .ttl(63)
                    .ident(0x4242)
                    .dont_frag()
                    .protocol(IpProtocol::IPIP)
                    .payload(&inner(b""))
                    .build(),
            )]),
        ),
        step(
            "IPv6: inside ip6ip6 from the IPv6 LIP",
            0,
            tcp6(IN, cip6(), vip6(), 64, (40000, 84), 100, 0, SYN).build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv6(lip6(), rip6())
                    .hop_limit(63)
                    .protocol(IpProtocol::IPV6)
                    .payload(&inner6)
                    .build(),
            )]),
        ),
    ];
    run(&mut w, steps);
    // Another client on the same source port towards the same server: its own
    // connection (the server-side key holds the client's address, not the tunnel's).
    let other = Ipv4Addr::new(198, 51, 100, 8);
    run(
        &mut w,
        vec![step(
            "a second client, same port: tunnelled too",
            0,
            PacketBuilder::eth(CLIENT, US0).ipv4(other, VIP).ttl(64).tcp(40000, 84).seq(5).flags(SYN).build(),
            Expect::Out(vec![check(Sink::Tx(1), move |f| {
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst), (IpAddr::from(other), IpAddr::from(VIP)), "the inner packet, unchanged");
            })]),
        )],
    );
    let l = w.engine.list(0, 16, w.now).0;
    let c = l.iter().find(|c| c.virt.port() == 84 && c.client.is_ipv4()).expect("the TUN connection is listed");
    assert_eq!((c.fwd, c.local), (FwdMode::Tunnel, c.client), "a TUN connection's local side is the client");

    // A segment that fits dpdk1's 1400 bytes alone but not with the outer header: the
    // node counts it too_big and tells the client the MTU less the outer header, quoting
    // the packet as the client sent it.
    w.io.out.clear();
    let before = w.node.counters.drops(NetDrop::TooBig);
    w.frame(0, &in_frame(&[7u8; 1400 - 40 - 10]));
    assert_eq!(w.node.counters.drops(NetDrop::TooBig), before + 1);
    assert_eq!(w.io.out.len(), 1, "one ICMP error");
    let (sink, f) = &w.io.out[0];
    assert_eq!(*sink, Sink::Tx(0));
    let s = judge_eth(f);
    assert_eq!((s.src, s.dst), (IpAddr::from(IF0), IpAddr::from(CIP)), "from our address to the client");
    let icmp = &f[ETH_LEN + 20..];
    assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1380, "the MTU less the outer header");
    let q = &icmp[8..];
    assert_eq!((&q[12..16], &q[16..20]), (&CIP.octets()[..], &VIP.octets()[..]), "quoted addresses");
    assert_eq!(&q[20..24], &[40000u16.to_be_bytes(), 84u16.to_be_bytes()].concat()[..], "quoted ports");
}

/// NAT64: the IPv6 client's packets leave as IPv4 from the IPv4 LIP to the IPv4 server
/// (RFC 7915), the replies come back as IPv6; the SYN-ACK's MSS is lowered by the TOA
/// (20 bytes for an IPv6 client) and the header difference (20); the handshake's ACK
/// carries the client's IPv6 address in a 20-byte TOA, as DPVS's NAT64 does. An ICMPv4
/// "fragmentation needed" from the server's side reaches the client as "packet too big".
#[test]
fn nat64_both_directions() {
    let mut w = World::new(1);
    let toa6 = {
        let mut o = vec![254, 20];
        o.extend_from_slice(&40000u16.to_be_bytes());
        o.extend_from_slice(&cip6().octets());
        o
    };
    let steps = vec![
        step(
            "IPv6 client SYN: IPv4 from the LIP to the server, DF set, hop limit carried over",
            0,
            tcp6(IN, cip6(), vip6(), 64, (40000, 85), 100, 0, SYN).mss(1440).build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv4(LIP, RIP)
                    .ttl(63)
                    .dont_frag()
                    .tcp(1025, 8080)
                    .seq(100)
                    .flags(SYN)
                    .mss(1440)
                    .build(),
            )]),
        ),
        step(
            "IPv4 SYN-ACK: IPv6 to the client, MSS less the TOA and the header difference",
            1,
            tcp4(FROM_RS, RIP, LIP, 64, (8080, 1025), 900, 101, SYNACK).mss(1460).build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                tcp6(TO_CLIENT, vip6(), cip6(), 63, (85, 40000), 900, 101, SYNACK).mss(1420).build(),
            )]),
        ),
        step(
            "the handshake ACK carries the client's IPv6 address in the TOA",
            0,
            tcp6(IN, cip6(), vip6(), 64, (40000, 85), 101, 901, ACK).build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                PacketBuilder::eth(US1, SERVER)
                    .ipv4(LIP, RIP)
                    .ttl(63)
                    .dont_frag()
                    .tcp(1025, 8080)
                    .seq(101)
                    .ack(901)
                    .flags(ACK)
                    .option(&toa6)
                    .build(),
            )]),
        ),
    ];
    run(&mut w, steps);
    // The server's path is narrower: a router there says so, about a segment rvs sent.
    let sent = PacketBuilder::ipv4(LIP, RIP).ttl(63).dont_frag().tcp(1025, 8080).seq(101).ack(901).flags(ACK).build();
    let err = PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).icmpv4_error(3, 4, &sent).next_hop_mtu(1300).build();
    w.io.out.clear();
    w.frame(1, &err);
    assert_eq!(w.io.out.len(), 1, "one ICMPv6 error: {:?}", w.drops());
    let (sink, f) = &w.io.out[0];
    assert_eq!(*sink, Sink::Tx(0));
    let s = judge_eth(f);
    assert_eq!((s.src, s.dst), (IpAddr::from(vip6()), IpAddr::from(cip6())));
    let icmp = &f[ETH_LEN + 40..];
    assert_eq!((icmp[0], icmp[1]), (2, 0), "packet too big");
    assert_eq!(u32::from_be_bytes(icmp[4..8].try_into().unwrap()), 1320, "the IPv4 MTU plus 20");
    let q = &icmp[8..];
    assert_eq!((&q[8..24], &q[24..40]), (&cip6().octets()[..], &vip6().octets()[..]), "the client's packet quoted");
    assert_eq!(&q[40..44], &[40000u16.to_be_bytes(), 85u16.to_be_bytes()].concat()[..]);
}

const WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
const FROM_INSIDE: (EthernetAddress, EthernetAddress) = (SERVER, US1);
const TO_OUTSIDE: (EthernetAddress, EthernetAddress) = (US0, CLIENT);
const FROM_OUTSIDE: (EthernetAddress, EthernetAddress) = (CLIENT, US0);
const TO_INSIDE: (EthernetAddress, EthernetAddress) = (US1, SERVER);

/// The world with a WAN address (a sapool address on dpdk0) and one SNAT rule: flows
/// from 10.2.0.0/16 whose route leaves by dpdk0 go out from the WAN address.
fn snat_world() -> World {
    snat_world_of(1)
}

/// [`snat_world`] as worker 0 of `workers`.
fn snat_world_of(workers: u32) -> World {
    use fnat::snat::{SnatRule, SnatTable};
    let mut w = World::new(workers);
    w.addrs.add(PortId(0), net("198.51.100.3/24"), AddrFlags::SAPOOL).unwrap();
    w.addrs.add(PortId(0), net("2001:db8:c::3/64"), AddrFlags::SAPOOL).unwrap();
    w.engine.set_own_addrs(w.addrs.iter().map(|e| e.ip()));
    let rule = SnatRule {
        name: "inside".into(),
        proto: None,
        src: Some("10.2.0.0/16".parse().unwrap()),
        dst: None,
        iif: None,
        oif: Some(0),
        wan: vec![WAN.into()],
    };
    let rule6 = SnatRule {
        name: "inside6".into(),
        proto: Some(Proto::Tcp),
        src: Some("fd00::/64".parse().unwrap()),
        wan: vec![v6("2001:db8:c::3").into()],
        ..rule.clone()
    };
    // Echo (DPVS's `proto=icmp` rules): the same sources, both families.
    let echo = SnatRule { name: "ping".into(), proto: Some(Proto::Icmp), ..rule.clone() };
    let echo6 = SnatRule { name: "ping6".into(), proto: Some(Proto::Icmp), ..rule6.clone() };
    let routes = w.routes.iter().map(|r| (r.prefix, (r.scope != netstack::Scope::KniHost).then_some(r.dev.0)));
    let rules = vec![rule, rule6, echo, echo6];
    w.engine.set_snat(std::sync::Arc::new(SnatTable::new(rules, routes.collect::<Vec<_>>())));
    w
}

/// An inside host opening SNAT flows to made-up addresses of the outside subnet makes
/// rvs resolve each: they are next hops a packet's source chose, and take at most half
/// the waiting slots (a gateway or a real server always finds one).
#[test]
fn snat_flows_to_made_up_neighbours_take_half_the_waiting_slots() {
    let mut w = snat_world();
    let half = frame::node::PENDING_HOPS / 2;
    let syn = |i: usize| {
        let dst = Ipv4Addr::new(198, 51, 100, 100 + i as u8);
        PacketBuilder::eth(FROM_INSIDE.0, FROM_INSIDE.1)
            .ipv4(RIP, dst)
            .tcp(40000 + i as u16, 80)
            .seq(1)
            .flags(SYN)
            .build()
    };
    for i in 0..half {
        w.frame(1, &syn(i));
    }
    assert_eq!(w.node.pending(), half, "each waits for its made-up neighbour");
    run(&mut w, vec![step("one more: no slot for those", 1, syn(half), Expect::Drop("pending_full"))]);
}

/// SNAT of ICMP echo (ping from the inside): the request leaves from the WAN address
/// with an identifier of the WAN address's ports, the reply to it comes back with the
/// inside host's own; a second ping of the same identifier keeps the mapping; an ICMP
/// error about it reaches the inside host about its own ping. Replies that match no
/// mapping, and pings to rvs's own address, are what they were before.
#[test]
fn snat_echo_both_ways_and_what_it_leaves_alone() {
    let mut w = snat_world();
    let eth = |m: (EthernetAddress, EthernetAddress)| PacketBuilder::eth(m.0, m.1);
    let wan6 = v6("2001:db8:c::3");
    let steps = vec![
        step(
            "inside ping to the outside: from WAN, identifier 1025",
            1,
            eth(FROM_INSIDE).ipv4(RIP, CIP).icmpv4_echo_request(77, 1).payload(b"ping").build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                eth(TO_OUTSIDE).ipv4(WAN, CIP).ttl(63).icmpv4_echo_request(1025, 1).payload(b"ping").build(),
            )]),
        ),
        step(
            "the reply to WAN, identifier 1025, reaches the inside host with its identifier",
            0,
            eth(FROM_OUTSIDE).ipv4(CIP, WAN).icmpv4_echo_reply(1025, 1).payload(b"ping").build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                eth(TO_INSIDE).ipv4(CIP, RIP).ttl(63).icmpv4_echo_reply(77, 1).payload(b"ping").build(),
            )]),
        ),
        step(
            "the next ping of that identifier: the same mapping",
            1,
            eth(FROM_INSIDE).ipv4(RIP, CIP).icmpv4_echo_request(77, 2).build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                eth(TO_OUTSIDE).ipv4(WAN, CIP).ttl(63).icmpv4_echo_request(1025, 2).build(),
            )]),
        ),
        step(
            "a reply from another host with that identifier: no mapping, the local stack's as before",
            0,
            eth(FROM_OUTSIDE).ipv4(Ipv4Addr::new(198, 51, 100, 8), WAN).icmpv4_echo_reply(1025, 2).build(),
            Expect::Drop("local_unhandled"),
        ),
        step(
            "the outside pings the WAN address: rvs answers, no mapping opened",
            0,
            eth(FROM_OUTSIDE).ipv4(CIP, WAN).icmpv4_echo_request(5, 1).build(),
            Expect::Out(vec![judged(Sink::Tx(0), eth(TO_OUTSIDE).ipv4(WAN, CIP).icmpv4_echo_reply(5, 1).build())]),
        ),
        step(
            "a ping from outside the rule's source range: the kernel's (dpdk1 has no twin here)",
            1,
            eth(FROM_INSIDE).ipv4(Ipv4Addr::new(10, 3, 0, 1), CIP).icmpv4_echo_request(78, 1).build(),
            Expect::Drop("no_twin"),
        ),
        step(
            "IPv6 ping: from WAN6, identifier 1025 of that address",
            1,
            eth(FROM_INSIDE).ipv6(rip6(), cip6()).icmpv6_echo_request(9, 1).payload(b"ping6").build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                eth(TO_OUTSIDE).ipv6(wan6, cip6()).hop_limit(63).icmpv6_echo_request(1025, 1).payload(b"ping6").build(),
            )]),
        ),
        step(
            "and its reply back",
            0,
            eth(FROM_OUTSIDE).ipv6(cip6(), wan6).icmpv6_echo_reply(1025, 1).payload(b"ping6").build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                eth(TO_INSIDE).ipv6(cip6(), rip6()).hop_limit(63).icmpv6_echo_reply(9, 1).payload(b"ping6").build(),
            )]),
        ),
    ];
    run(&mut w, steps);
    // `traceroute -I`: a router on the way reports the ping's expiry; the inside host
    // hears it from the router, about its own ping (identifier, addresses, checksums).
    let router = Ipv4Addr::new(198, 51, 100, 9);
    let (router6, rip6_) = (v6("2001:db8:c::9"), rip6());
    let sent = PacketBuilder::ipv4(WAN, CIP).ttl(1).icmpv4_echo_request(1025, 4).payload(b"trace").build();
    let mine = PacketBuilder::ipv4(RIP, CIP).ttl(1).icmpv4_echo_request(77, 4).payload(b"trace").build();
    let sent6 = PacketBuilder::ipv6(wan6, cip6()).hop_limit(1).icmpv6_echo_request(1025, 2).build();
    let mine6 = PacketBuilder::ipv6(rip6_, cip6()).hop_limit(1).icmpv6_echo_request(9, 2).build();
    run(
        &mut w,
        vec![
            step(
                "time exceeded about the ping reaches the inside host, about its own ping",
                0,
                eth(FROM_OUTSIDE).ipv4(router, WAN).icmpv4_error(11, 0, &sent).build(),
                Expect::Out(vec![judged(
                    Sink::Tx(1),
                    eth(TO_INSIDE).ipv4(router, RIP).ttl(63).icmpv4_error(11, 0, &mine).build(),
                )]),
            ),
            step(
                "and over IPv6",
                0,
                eth(FROM_OUTSIDE).ipv6(router6, wan6).icmpv6_error(3, 0, 0, &sent6).build(),
                Expect::Out(vec![judged(
                    Sink::Tx(1),
                    eth(TO_INSIDE).ipv6(router6, rip6_).hop_limit(63).icmpv6_error(3, 0, 0, &mine6).build(),
                )]),
            ),
        ],
    );
    // A ping larger than the MTU: the first fragment opens the mapping (its checksum
    // covers the whole message, so it is not checked here), the next follows it.
    let first = |m: (EthernetAddress, EthernetAddress), src, dst, ttl, id| {
        let ip = PacketBuilder::eth(m.0, m.1).ipv4(src, dst).ttl(ttl).ident(0x55).fragment(0, true);
        ip.icmpv4_echo_request(id, 1).payload(&[7; 1272]).build()
    };
    let reply_first = |m: (EthernetAddress, EthernetAddress), src, dst, ttl, id| {
        let ip = PacketBuilder::eth(m.0, m.1).ipv4(src, dst).ttl(ttl).ident(0x55).fragment(0, true);
        ip.icmpv4_echo_reply(id, 1).payload(&[7; 1272]).build()
    };
    let rest = |m: (EthernetAddress, EthernetAddress), src, dst, ttl| {
        let ip = PacketBuilder::eth(m.0, m.1).ipv4(src, dst).ttl(ttl).ident(0x55).fragment(1280, false);
        ip.protocol(wire::IpProtocol::ICMP).payload(&[7; 500]).build()
    };
    run(
        &mut w,
        vec![
            step(
                "a large ping's first fragment: mapped, from WAN",
                1,
                first(FROM_INSIDE, RIP, CIP, 64, 78),
                Expect::Out(vec![exact(Sink::Tx(0), first(TO_OUTSIDE, WAN, CIP, 63, 1026))]),
            ),
            step(
                "its next fragment follows it",
                1,
                rest(FROM_INSIDE, RIP, CIP, 64),
                Expect::Out(vec![exact(Sink::Tx(0), rest(TO_OUTSIDE, WAN, CIP, 63))]),
            ),
            step(
                "the large reply's first fragment goes back to the inside host",
                0,
                reply_first(FROM_OUTSIDE, CIP, WAN, 64, 1026),
                Expect::Out(vec![exact(Sink::Tx(1), reply_first(TO_INSIDE, CIP, RIP, 63, 78))]),
            ),
            step(
                "and its next fragment",
                0,
                rest(FROM_OUTSIDE, CIP, WAN, 64),
                Expect::Out(vec![exact(Sink::Tx(1), rest(TO_INSIDE, CIP, RIP, 63))]),
            ),
        ],
    );
    let listed = w.engine.list(0, 16, w.now).0;
    let echoes: Vec<_> = listed.iter().filter(|c| c.proto == Proto::Icmp).collect();
    assert_eq!(echoes.len(), 3, "one mapping per family, and the large ping's: {listed:?}");
    assert!(echoes.iter().all(|c| c.fwd == FwdMode::Snat && c.state_name() == "ICMP"), "{echoes:?}");

    // Two workers: a reply whose identifier worker 1 owns goes there (its mapping is
    // that worker's), untouched; a request is mapped where it arrives, to one of ours.
    let mut w = snat_world_of(2);
    let own = fnat::sapool::PortOwnership::new(2).unwrap();
    let theirs = (1025..2000).find(|p| own.owner(*p) == 1).unwrap();
    let reply = eth(FROM_OUTSIDE).ipv4(CIP, WAN).icmpv4_echo_reply(theirs, 1).build();
    run(
        &mut w,
        vec![
            step(
                "a reply to an identifier of worker 1: handed over",
                0,
                reply.clone(),
                Expect::Out(vec![exact(Sink::Redirect(1, 0), reply)]),
            ),
            step(
                "a request: mapped here, to an identifier of this worker",
                1,
                eth(FROM_INSIDE).ipv4(RIP, CIP).icmpv4_echo_request(77, 1).build(),
                Expect::Out(vec![check(Sink::Tx(0), move |f| {
                    assert_eq!(judge_eth(f).src, IpAddr::from(WAN));
                    // The identifier: after the Ethernet, IPv4 (20) and ICMP type, code, checksum.
                    let at = ETH_LEN + 20 + 4;
                    let id = u16::from_be_bytes([f[at], f[at + 1]]);
                    assert!(id != 77 && own.owner(id) == 0, "identifier {id} is this worker's");
                })]),
            ),
        ],
    );
}

/// On a SNAT connection the host outside is the one a forged segment comes from: its RST
/// moves the state only at the number the host inside acknowledged (the client's rule of
/// `fnat/tests/forged_rst.rs`, sides swapped).
#[test]
fn snat_a_forged_rst_from_outside_keeps_the_connection() {
    let mut w = snat_world();
    let state = |w: &World| {
        let c = w.engine.list(0, 16, w.now).0;
        c.iter().find(|c| c.fwd == FwdMode::Snat && c.proto == Proto::Tcp).map(|c| c.state_name())
    };
    run(
        &mut w,
        vec![
            step(
                "inside SYN",
                1,
                tcp4(FROM_INSIDE, RIP, CIP, 64, (40000, 80), 100, 0, SYN).build(),
                Expect::Out(vec![judged(Sink::Tx(0), tcp4(TO_OUTSIDE, WAN, CIP, 63, (1025, 80), 100, 0, SYN).build())]),
            ),
            step(
                "the outside's SYN-ACK",
                0,
                tcp4(FROM_OUTSIDE, CIP, WAN, 64, (80, 1025), 900, 101, SYNACK).build(),
                Expect::Out(vec![judged(
                    Sink::Tx(1),
                    tcp4(TO_INSIDE, CIP, RIP, 63, (80, 40000), 900, 101, SYNACK).build(),
                )]),
            ),
            step(
                "the inside host's ACK: it acknowledged 901",
                1,
                tcp4(FROM_INSIDE, RIP, CIP, 64, (40000, 80), 101, 901, ACK).build(),
                Expect::Out(vec![judged(
                    Sink::Tx(0),
                    tcp4(TO_OUTSIDE, WAN, CIP, 63, (1025, 80), 101, 901, ACK).build(),
                )]),
            ),
            step(
                "a forged RST from outside: passed on to the inside host, which judges it",
                0,
                tcp4(FROM_OUTSIDE, CIP, WAN, 64, (80, 1025), 777_777, 0, RST).build(),
                Expect::Out(vec![judged(
                    Sink::Tx(1),
                    tcp4(TO_INSIDE, CIP, RIP, 63, (80, 40000), 777_777, 0, RST).build(),
                )]),
            ),
        ],
    );
    assert_eq!(state(&w), Some("ESTABLISHED"), "kept");
    run(
        &mut w,
        vec![step(
            "the outside host's own RST, at 901",
            0,
            tcp4(FROM_OUTSIDE, CIP, WAN, 64, (80, 1025), 901, 0, RST).build(),
            Expect::Out(vec![judged(Sink::Tx(1), tcp4(TO_INSIDE, CIP, RIP, 63, (80, 40000), 901, 0, RST).build())]),
        )],
    );
    assert_eq!(state(&w), Some("CLOSE"));
}

/// SNAT: a real server's connection to the outside leaves from the WAN address and a
/// local port (no TOA: the outside learns nothing of the inside), the replies come back
/// to it; UDP likewise; IPv6 from its own WAN address; an error from a router on the way reaches the inside host as
/// from that router. What no rule takes stays the kernel's.
#[test]
fn snat_both_directions_tcp_udp_and_what_it_leaves_alone() {
    let mut w = snat_world();
    let steps = vec![
        step(
            "inside SYN to the outside: from WAN:1025, MSS untouched",
            1,
            tcp4(FROM_INSIDE, RIP, CIP, 64, (40000, 80), 100, 0, SYN).mss(1460).build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                tcp4(TO_OUTSIDE, WAN, CIP, 63, (1025, 80), 100, 0, SYN).mss(1460).build(),
            )]),
        ),
        step(
            "the outside's SYN-ACK to WAN:1025 goes back to the inside host",
            0,
            tcp4(FROM_OUTSIDE, CIP, WAN, 64, (80, 1025), 900, 101, SYNACK).mss(1460).build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                tcp4(TO_INSIDE, CIP, RIP, 63, (80, 40000), 900, 101, SYNACK).mss(1460).build(),
            )]),
        ),
        step(
            "the handshake's ACK carries no TOA",
            1,
            tcp4(FROM_INSIDE, RIP, CIP, 64, (40000, 80), 101, 901, ACK).build(),
            Expect::Out(vec![judged(Sink::Tx(0), tcp4(TO_OUTSIDE, WAN, CIP, 63, (1025, 80), 101, 901, ACK).build())]),
        ),
        step(
            "UDP from the inside: from WAN:1026",
            1,
            PacketBuilder::eth(FROM_INSIDE.0, FROM_INSIDE.1).ipv4(RIP, CIP).udp(5000, 53).payload(b"query").build(),
            Expect::Out(vec![judged(
                Sink::Tx(0),
                PacketBuilder::eth(TO_OUTSIDE.0, TO_OUTSIDE.1)
                    .ipv4(WAN, CIP)
                    .ttl(63)
                    .udp(1026, 53)
                    .payload(b"query")
                    .build(),
            )]),
        ),
        step(
            "the UDP answer goes back",
            0,
            PacketBuilder::eth(FROM_OUTSIDE.0, FROM_OUTSIDE.1).ipv4(CIP, WAN).udp(53, 1026).payload(b"answer").build(),
            Expect::Out(vec![judged(
                Sink::Tx(1),
                PacketBuilder::eth(TO_INSIDE.0, TO_INSIDE.1)
                    .ipv4(CIP, RIP)
                    .ttl(63)
                    .udp(53, 5000)
                    .payload(b"answer")
                    .build(),
            )]),
        ),
        step(
            "an inside TCP segment other than a SYN, without a connection: dropped",
            1,
            tcp4(FROM_INSIDE, RIP, CIP, 64, (40001, 80), 5, 5, ACK).build(),
            Expect::Drop("no_conn"),
        ),
        step(
            "a packet to the WAN address without a connection: dropped",
            0,
            tcp4(FROM_OUTSIDE, CIP, WAN, 64, (80, 2000), 5, 5, ACK).build(),
            Expect::Drop("reply_no_conn"),
        ),
        step(
            "a source outside the rule's range: the kernel's (dpdk1 has no twin here)",
            1,
            tcp4(FROM_INSIDE, Ipv4Addr::new(10, 3, 0, 1), CIP, 64, (40002, 80), 100, 0, SYN).build(),
            Expect::Drop("no_twin"),
        ),
        step(
            "a destination routed out of dpdk1 (not the rule's oif): the kernel's",
            1,
            tcp4(FROM_INSIDE, RIP, Ipv4Addr::new(10, 9, 0, 1), 64, (40003, 80), 100, 0, SYN).build(),
            Expect::Drop("no_twin"),
        ),
        step(
            "to rvs's own address: the kernel's",
            1,
            tcp4(FROM_INSIDE, RIP, KNI, 64, (40004, 22), 100, 0, SYN).build(),
            Expect::Drop("no_twin"),
        ),
    ];
    run(&mut w, steps);
    // IPv6: the same both ways, from the IPv6 WAN address.
    let wan6 = v6("2001:db8:c::3");
    run(
        &mut w,
        vec![
            step(
                "IPv6 inside SYN: from [WAN6]:1025",
                1,
                tcp6(FROM_INSIDE, rip6(), cip6(), 64, (40000, 80), 100, 0, SYN).mss(1440).build(),
                Expect::Out(vec![judged(
                    Sink::Tx(0),
                    tcp6(TO_OUTSIDE, wan6, cip6(), 63, (1025, 80), 100, 0, SYN).mss(1440).build(),
                )]),
            ),
            step(
                "IPv6 SYN-ACK back to the inside host",
                0,
                tcp6(FROM_OUTSIDE, cip6(), wan6, 64, (80, 1025), 900, 101, SYNACK).mss(1440).build(),
                Expect::Out(vec![judged(
                    Sink::Tx(1),
                    tcp6(TO_INSIDE, cip6(), rip6(), 63, (80, 40000), 900, 101, SYNACK).mss(1440).build(),
                )]),
            ),
            step(
                "IPv6 UDP: the rule is TCP only, so the kernel's",
                1,
                PacketBuilder::eth(FROM_INSIDE.0, FROM_INSIDE.1).ipv6(rip6(), cip6()).udp(5000, 53).build(),
                Expect::Drop("no_twin"),
            ),
        ],
    );
    // A router on the way reports the UDP flow's datagram: the inside host hears it
    // from the router, about its own datagram.
    let router = Ipv4Addr::new(198, 51, 100, 9);
    let sent = PacketBuilder::ipv4(WAN, CIP).ttl(63).udp(1026, 53).payload(b"query").build();
    let err = PacketBuilder::eth(CLIENT, US0).ipv4(router, WAN).icmpv4_error(3, 3, &sent).build();
    run(
        &mut w,
        vec![step(
            "an ICMP error from a router about the SNAT flow reaches the inside host",
            0,
            err,
            Expect::Out(vec![check(Sink::Tx(1), move |f| {
                let s = judge_eth(f);
                assert_eq!((s.src, s.dst), (IpAddr::from(router), IpAddr::from(RIP)));
                let inner = fnat::judge::judge(&s.icmp_payload);
                assert_eq!((inner.src, inner.sport), (IpAddr::from(RIP), 5000));
                assert_eq!((inner.dst, inner.dport), (IpAddr::from(CIP), 53));
            })]),
        )],
    );
    let listed = w.engine.list(0, 16, w.now).0;
    assert_eq!(listed.iter().filter(|c| c.fwd == FwdMode::Snat).count(), 3, "{listed:?}");
}
