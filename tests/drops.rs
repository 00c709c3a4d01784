//! Every drop reason a frame on the wire can cause, provoked on a real rvsd and found
//! by name in `rvsip --json stats`. rvsd runs on two DPDK pcap ports
//! (`rvs_e2e::pcap_rvsd`): each reads a capture file of crafted frames (built with
//! wire's builder) once, at start, and writes what it sends to another file. No
//! namespace is needed: nothing reaches a kernel.
//!
//! Not provoked here, because they need a queue or pool to overflow: `twin_full` (the
//! twin's ring), `redirect` (a ring between workers), `no_mbuf` (the buffer pool),
//! `tx_full` (a NIC queue), `toa_no_room` (a full buffer), `persist_full` (the
//! persistence table); the frame fixtures (crates/frame/tests) cover the first three
//! paths' decisions. Nor `no_local_addr`: validation refuses a service without a local
//! address of its family, so it happens only between `rvsadm -A` and `-P`. Nor
//! `quiescent`: it needs a real server's weight set to 0 between two frames of a flow
//! (the fixtures of `crates/fnat/tests/quiescent.rs`, and `tests/cli.rs` end to end).
//! Not yet here either: the ICMP errors rvs does not believe (`icmp_error_checksum`,
//! `icmp_misaddressed`, `icmp_mtu_too_small`: `crates/fnat/tests/fixtures.rs`,
//! `icmp_errors_that_are_not_believed`) and `icmp_rate_limited` (60 frames of TTL 1:
//! `crates/frame/tests/fixtures.rs`, `time_exceeded_errors_are_rate_limited`).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rvs_e2e::pcap_rvsd::{assert_counted, PcapRvsd, Spec, CLIENT, M0, M1, SERVER};
use wire::builder::PacketBuilder;
use wire::{ArpOperation, ArpRepr, EtherType, EthernetAddress, TcpFlags};

const IF0: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// In dpdk0's subnet, never answers ARP.
const SILENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const RS1: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
const VIP6: &str = "2001:db8:f::1";

fn tcp4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> wire::builder::TcpBuilder {
    PacketBuilder::eth(CLIENT, M0).ipv4(src, dst).tcp(sport, dport)
}

fn syn(sport: u16, vport: u16) -> Vec<u8> {
    tcp4(CIP, sport, VIP, vport).seq(1).flags(TcpFlags::SYN).build()
}

/// What arrives on dpdk0 (clients' side), in order, with the reason each must cause.
fn client_side() -> (Vec<Vec<u8>>, Vec<(&'static str, u64)>) {
    let mut f = Vec::new();
    let mut want = Vec::new();
    let mut frame = |reason: &'static str, n: u64, frames: Vec<Vec<u8>>| {
        f.extend(frames);
        if n > 0 {
            want.push((reason, n));
        }
    };
    let udp = |dst_mac| PacketBuilder::eth(CLIENT, dst_mac).ipv4(CIP, IF0).udp(9, 9).payload(b"x").build();
    frame("not_for_us", 1, vec![udp(EthernetAddress([2, 0, 0, 0, 0, 0x99]))]);
    frame("own_frame", 1, vec![PacketBuilder::eth(M0, M0).ipv4(CIP, IF0).udp(9, 9).build()]);
    frame("bad_frame", 1, vec![vec![0xff; 10]]);
    frame("local_unhandled", 1, vec![udp(M0)]);
    frame("no_service", 1, vec![syn(1000, 443)]);
    frame(
        "no_twin",
        1,
        vec![PacketBuilder::eth(CLIENT, EthernetAddress([1, 0x80, 0xc2, 0, 0, 0xe]))
            .ethertype(EtherType(0x88cc))
            .payload(&[0; 46])
            .build()],
    );
    frame(
        "ttl_exceeded",
        1,
        vec![PacketBuilder::eth(CLIENT, M0).ipv4(CIP, VIP).ttl(1).tcp(1001, 80).flags(TcpFlags::SYN).build()],
    );
    frame(
        "no_route",
        1,
        vec![PacketBuilder::eth(CLIENT, M0).ipv4(Ipv4Addr::new(203, 0, 113, 5), IF0).icmpv4_echo_request(1, 1).build()],
    );
    frame("bad_header", 1, {
        let mut b = tcp4(CIP, 1002, VIP, 80).flags(TcpFlags::SYN).build();
        b[14 + 2] = 0x05; // total length past the frame's end
        vec![b]
    });
    // A later fragment whose first never came (fragments: tests/fragments.rs).
    frame(
        "fragment_no_first",
        1,
        vec![PacketBuilder::eth(CLIENT, M0)
            .ipv4(CIP, VIP)
            .fragment(8, false)
            .tcp(1003, 80)
            .flags(TcpFlags::SYN)
            .build()],
    );
    frame("no_conn", 1, vec![tcp4(CIP, 1004, VIP, 80).seq(1).ack(1).flags(TcpFlags::ACK).build()]);
    frame("no_real_server", 1, vec![syn(1005, 83)]);
    // One connection (local port 2000), then a segment larger than dpdk1's MTU (1280).
    frame(
        "too_big",
        1,
        vec![syn(1010, 80), tcp4(CIP, 1010, VIP, 80).seq(2).ack(1).flags(TcpFlags::ACK).payload(&[7; 1300]).build()],
    );
    // Local ports 2001..2003 are the last of the range: the fourth SYN finds none.
    frame("no_local_port", 1, (1011..1015).map(|p| syn(p, 80)).collect());
    // Connections 5..8 fill the pool of 8: the fifth SYN to :82 finds no room.
    frame("pool_full", 1, (1020..1025).map(|p| syn(p, 82)).collect());
    // Echo replies towards a neighbour that never answers: 32 wait, the 33rd is refused,
    // and the 32 are dropped when the resolution gives up.
    frame(
        "pending_full",
        1,
        (0..33).map(|i| PacketBuilder::eth(CLIENT, M0).ipv4(SILENT, IF0).icmpv4_echo_request(2, i).build()).collect(),
    );
    // Input checks before scheduling: none of these takes a connection.
    let syn_from = |src: Ipv4Addr| tcp4(src, 1100, VIP, 80).seq(1).flags(TcpFlags::SYN).build();
    let syn6 = |src: &str, rh: Option<u8>| {
        let b = PacketBuilder::eth(CLIENT, M0).ipv6(src.parse().unwrap(), VIP6.parse().unwrap());
        let b = match rh {
            Some(ty) => b.ipv6_ext(wire::IpProtocol::ROUTING, &[ty, 1, 0, 0, 0, 0]),
            None => b,
        };
        b.tcp(1101, 80).seq(1).flags(TcpFlags::SYN).build()
    };
    frame("martian_source", 3, vec![syn_from(Ipv4Addr::UNSPECIFIED), syn_from(Ipv4Addr::BROADCAST), syn6("::1", None)]);
    frame("land", 2, vec![syn_from(VIP), syn_from(IF0)]);
    frame("bad_ip_checksum", 1, {
        let mut b = syn(1102, 80);
        b[14 + 11] ^= 0x5a;
        vec![b]
    });
    frame("bad_l4_checksum", 1, vec![tcp4(CIP, 1103, VIP, 80).seq(1).flags(TcpFlags::SYN).checksum(0x1234).build()]);
    frame("bad_icmp_checksum", 1, {
        let mut b = PacketBuilder::eth(CLIENT, M0).ipv4(CIP, IF0).icmpv4_echo_request(3, 1).build();
        b[14 + 20 + 2] ^= 0x5a;
        vec![b]
    });
    frame(
        "bad_ip_options",
        1,
        vec![PacketBuilder::eth(CLIENT, M0)
            .ipv4(CIP, VIP)
            .ipv4_options(&[7, 0])
            .tcp(1104, 80)
            .seq(1)
            .flags(TcpFlags::SYN)
            .build()],
    );
    frame("bad_tcp_options", 1, vec![tcp4(CIP, 1105, VIP, 80).seq(1).flags(TcpFlags::SYN).option(&[8, 0]).build()]);
    frame("ipv6_rh0", 1, vec![syn6("2001:db8:c::7", Some(0))]);
    // On the connection of the too_big step: a client's own TOA, overwritten, counted.
    frame(
        "client_toa",
        1,
        vec![tcp4(CIP, 1010, VIP, 80).seq(2).ack(1).flags(TcpFlags::ACK).option(&[254, 8, 0, 80, 1, 2, 3, 4]).build()],
    );
    want.push(("unresolved", 32));
    (f, want)
}

/// What arrives on dpdk1 (servers' side).
fn server_side() -> (Vec<Vec<u8>>, Vec<(&'static str, u64)>) {
    let reply =
        PacketBuilder::eth(SERVER, M1).ipv4(RS1, LIP).tcp(8080, 3000).seq(1).ack(2).flags(TcpFlags(0x12)).build();
    let quoted = PacketBuilder::ipv4(LIP, RS1).tcp(3001, 8080).flags(TcpFlags::SYN).build();
    let icmp = PacketBuilder::eth(SERVER, M1).ipv4(RS1, LIP).icmpv4_error(3, 3, &quoted).build();
    let arp = PacketBuilder::eth(SERVER, EthernetAddress::BROADCAST)
        .arp(ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: SERVER,
            source_protocol_addr: RS1,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: LIP,
        })
        .build();
    (vec![arp, reply, icmp], vec![("reply_no_conn", 1), ("icmp_no_conn", 1)])
}

/// The configuration past the ports and their addresses: a pool of 8 connections, local
/// ports 2000..2003, services on :80 (to 10.2.0.1), :82 (to 10.2.0.2), :83 (a weight-0
/// server only) and the IPv6 VIP's :80.
const CONFIG: &str = r#"
[conn]
pool_size = 8
lport_min = 2000
lport_max = 2003

[[neigh]]
dev = "dr0"
addr = "198.51.100.7"
mac = "02:00:00:00:00:c1"

[[neigh]]
dev = "dr1"
addr = "10.2.0.1"
mac = "02:00:00:00:00:51"

[[neigh]]
dev = "dr1"
addr = "10.2.0.2"
mac = "02:00:00:00:00:52"

[[service]]
proto = "tcp"
vip = "192.0.2.1"
port = 80
scheduler = "rr"
laddrs = ["10.1.0.1"]
real_server = [{ addr = "10.2.0.1", port = 8080 }]

[[service]]
proto = "tcp"
vip = "192.0.2.1"
port = 82
scheduler = "rr"
laddrs = ["10.1.0.1"]
real_server = [{ addr = "10.2.0.2", port = 8080 }]

[[service]]
proto = "tcp"
vip = "192.0.2.1"
port = 83
scheduler = "rr"
laddrs = ["10.1.0.1"]
real_server = [{ addr = "10.2.0.1", port = 8080, weight = 0 }]

[[service]]
proto = "tcp"
vip = "2001:db8:f::1"
port = 80
scheduler = "rr"
laddrs = ["fd00::1"]
real_server = [{ addr = "fd00::2", port = 8080 }]

"#;

#[test]
fn every_wire_drop_reason_is_counted_by_name() {
    let (in0, mut want) = client_side();
    let (in1, want1) = server_side();
    want.extend(want1);
    let mut rvsd = PcapRvsd::start(&Spec { tag: "dr", in0: &in0, in1: &in1, mtu1: Some(1280), config: CONFIG });
    // The neighbour resolution gives up after about four seconds; the rest is at once.
    let got = rvsd.wait_for(&[], &want, Instant::now() + Duration::from_secs(30));
    // Exhaustion is logged once when it starts and once when it ends, not per packet.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(rvsd.log().contains("(no_local_port): recovered") && rvsd.log().contains("(pool_full): recovered"))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    rvsd.stop();
    assert_counted(&want, &got);
    let log = rvsd.log();
    for what in ["connection pool exhausted (pool_full)", "local ports exhausted (no_local_port)"] {
        assert_eq!(log.matches(&format!("{what}: started")).count(), 1, "{what} onset once:\n{log}");
        assert_eq!(log.matches(&format!("{what}: recovered")).count(), 1, "{what} recovery once:\n{log}");
    }
}
