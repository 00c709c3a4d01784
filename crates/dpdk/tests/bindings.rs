//! The DPDK bindings against real DPDK: one EAL for the whole process (`--no-huge
//! --no-pci`, a unique file prefix), then every case in turn. Ports are virtual:
//! net_ring pairs, net_null, net_af_packet over veth into a test namespace, net_tap, and
//! a bond of two af_packet ports. Each case asserts bytes, counts or links.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::{
    Bond, BondMode, Burst, Eal, Flow, FlowAction, FlowAttr, FlowItem, Mbuf, MbufRing, Mempool, Port, PortConfig,
    RingSync, RxQueue, TxBuffer,
};
use testnet::{mac_to_string, sh, sh_ok, NetNs, Veth};

/// Fields drop in order: the pool before the EAL is cleaned up.
struct Ctx {
    pool: Arc<Mempool>,
    eal: Eal,
}

type Case = fn(&Ctx);

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let prefix = format!("rvs-bindings-{}", std::process::id());
    let eal = Eal::init([
        "rvs-bindings-test",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "-l",
        "0-1",
        "--file-prefix",
        &prefix,
        "--vdev=net_null0",
        "--log-level=lib.eal:warning",
    ])
    .expect("EAL init");
    let pool = Arc::new(Mempool::new("bindings", 4095, 0, 2176, -1).expect("pool"));
    let ctx = Ctx { pool, eal };

    let cases: &[(&str, Case)] = &[
        ("eal_lcores_launch", eal_lcores_launch),
        ("eal_second_init_refused", eal_second_init_refused),
        ("mempool_exhaustion_and_return", mempool_exhaustion_and_return),
        ("mbuf_operations", mbuf_operations),
        ("ring_handoff_between_lcores", ring_handoff_between_lcores),
        ("burst_take_and_forget", burst_take_and_forget),
        ("net_ring_pair_byte_exact", net_ring_pair_byte_exact),
        ("net_null_starts_and_forwards", net_null_starts_and_forwards),
        ("flow_rules_refused_cleanly_without_support", flow_rules_refused_cleanly_without_support),
        ("af_packet_veth_exchanges_with_kernel", af_packet_veth_exchanges_with_kernel),
        ("tap_interface_appears_and_exchanges", tap_interface_appears_and_exchanges),
        ("bond_active_backup_of_two_af_packet", bond_active_backup_of_two_af_packet),
        ("lacp_between_two_bonds", lacp_between_two_bonds),
        ("bpf_filter_tcpdump_syntax_on_literal_frames", bpf_filter_tcpdump_syntax_on_literal_frames),
        ("pcapng_copy_and_writer_read_by_tshark", pcapng_copy_and_writer_read_by_tshark),
    ];
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            filtered += 1;
            continue;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&ctx)));
        match r {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
        assert_eq!(ctx.pool.in_use(), 0, "case {name} leaked mbufs");
    }
    println!();
    println!(
        "test result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} filtered out",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    drop(ctx);
    std::process::exit(if failed == 0 { 0 } else { 101 });
}

fn eal_lcores_launch(ctx: &Ctx) {
    assert_eq!(ctx.eal.lcore_count(), 2);
    assert_eq!(ctx.eal.main_lcore(), 0);
    assert_eq!(ctx.eal.worker_lcores(), vec![1]);
    assert_eq!(dpdk::lcore_id(), 0);
    let h = ctx.eal.launch(1, || dpdk::lcore_id() as i32 + 100).expect("launch");
    assert_eq!(h.wait(), 101);
    let h = ctx.eal.launch(1, || panic!("worker panics")).expect("launch");
    assert_eq!(h.wait(), -1, "a panicking closure reports -1, not a crash");
    assert!(dpdk::tsc_hz() > 0);
}

fn eal_second_init_refused(_: &Ctx) {
    let e = Eal::init(["x", "--no-pci"]).err().expect("second init must fail");
    assert!(e.msg.contains("already initialised"), "{e}");
    let e = Eal::init(["x", "--no-huge"]).err().expect("init without --no-pci must be refused");
    assert!(e.msg.contains("--no-pci"), "{e}");
}

fn mempool_exhaustion_and_return(_: &Ctx) {
    let pool = Mempool::new("exhaust", 63, 0, 2176, -1).expect("pool");
    assert_eq!(pool.avail(), 63);
    let mut held = Vec::new();
    while let Some(m) = Mbuf::alloc(&pool) {
        held.push(m);
        assert!(held.len() <= 63, "pool handed out more than it holds");
    }
    assert_eq!(held.len(), 63);
    assert_eq!(pool.avail(), 0);
    assert_eq!(pool.in_use(), 63);
    assert!(Mbuf::alloc(&pool).is_none());
    held.truncate(10);
    assert_eq!(pool.avail(), 53);
    drop(held);
    assert_eq!(pool.avail(), 63);
    assert!(Mbuf::alloc(&pool).is_some());
}

fn mbuf_operations(ctx: &Ctx) {
    let mut m = Mbuf::alloc(&ctx.pool).expect("mbuf");
    assert_eq!(m.len(), 0);
    assert!(m.is_contiguous());
    assert_eq!(m.headroom(), 128);
    assert_eq!(m.tailroom(), 2176 - 128);
    let d = m.append(100).expect("append");
    for (i, b) in d.iter_mut().enumerate() {
        *b = i as u8;
    }
    assert_eq!(m.len(), 100);
    assert_eq!(m.pkt_len(), 100);
    assert_eq!(m.tailroom(), 2176 - 128 - 100);
    m.prepend(14).expect("prepend").copy_from_slice(&[0xee; 14]);
    assert_eq!(m.headroom(), 114);
    assert_eq!(
        &m.data()[..15],
        &[0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0][..]
    );
    assert!(m.adj(14));
    assert_eq!(m.data()[0], 0);
    assert!(m.trim(10));
    assert_eq!(m.len(), 90);
    assert_eq!(m.data()[89], 89);
    // Out of room: refused, nothing changed.
    assert!(m.append(m.tailroom() + 1).is_none());
    assert!(m.prepend(m.headroom() + 1).is_none());
    assert!(!m.adj(91));
    assert!(!m.trim(91));
    assert_eq!(m.len(), 90);
    m.data_mut()[0] = 0xab;
    let c = m.copy_to(&ctx.pool).expect("copy");
    assert_eq!(c.data(), m.data());
    let s = Mbuf::from_slice(&ctx.pool, b"hello").expect("from_slice");
    assert_eq!(s.data(), b"hello");
    assert!(Mbuf::from_slice(&ctx.pool, &[0u8; 4096]).is_none(), "too big for one segment");
}

fn ring_handoff_between_lcores(ctx: &Ctx) {
    let ring = MbufRing::new("handoff", 1024, RingSync::SpSc).expect("ring");
    let mut prod = ring.producer().expect("producer");
    assert!(ring.producer().is_none(), "a single-producer ring hands out one producer");
    let mut cons = ring.consumer().expect("consumer");
    const N: u32 = 5000;
    let pool = Arc::clone(&ctx.pool);
    let h = ctx
        .eal
        .launch(1, move || {
            let mut b = Burst::new();
            let mut i = 0u32;
            while i < N {
                while !b.is_full() && i < N {
                    let m = Mbuf::from_slice(&pool, &i.to_be_bytes()).expect("mbuf");
                    b.push(m).expect("room");
                    i += 1;
                }
                while !b.is_empty() {
                    prod.enqueue_burst(&mut b);
                }
            }
            0
        })
        .expect("launch");
    let mut next = 0u32;
    let mut b = Burst::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while next < N {
        assert!(Instant::now() < deadline, "ring handoff stalled at {next}");
        cons.dequeue_burst(&mut b);
        for m in b.drain() {
            assert_eq!(m.data(), &next.to_be_bytes(), "order kept");
            next += 1;
        }
    }
    assert_eq!(h.wait(), 0);
    assert_eq!(ring.count(), 0);
}

fn burst_take_and_forget(ctx: &Ctx) {
    let mut b = Burst::new();
    for i in 0..5u8 {
        b.push(Mbuf::from_slice(&ctx.pool, &[i]).expect("mbuf")).expect("room");
    }
    assert_eq!(b.take(1).map(|m| m.data()[0]), Some(1));
    assert!(b.take(1).is_none(), "a slot is taken once");
    assert!(b.take(7).is_none(), "past the end");
    assert_eq!(ctx.pool.in_use(), 4);
    // Two left in place are freed by forget_taken.
    drop((b.take(0), b.take(2)));
    b.forget_taken();
    assert!(b.is_empty());
    assert_eq!(ctx.pool.in_use(), 0, "nothing leaked");
}

/// Sends `frames` on `tx` and collects as many from `rx` (polling up to 5 s).
fn send_and_collect(pool: &Mempool, tx: &mut TxBuffer, rx: &mut RxQueue, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    for f in frames {
        tx.push(Mbuf::from_slice(pool, f).expect("mbuf"));
    }
    assert_eq!(tx.flush(), frames.len(), "all frames taken by the port");
    let mut got = Vec::new();
    let mut b = Burst::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < frames.len() && Instant::now() < deadline {
        rx.rx_burst(&mut b);
        got.extend(b.drain().map(|m| m.data().to_vec()));
    }
    got
}

fn test_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = vec![0u8; 60 + i * 13];
            f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
            for (j, b) in f[14..].iter_mut().enumerate() {
                *b = (i * 7 + j) as u8;
            }
            f
        })
        .collect()
}

fn net_ring_pair_byte_exact(ctx: &Ctx) {
    let r1 = MbufRing::new("pair_ab", 1024, RingSync::SpSc).expect("ring");
    let r2 = MbufRing::new("pair_ba", 1024, RingSync::SpSc).expect("ring");
    let mut a = Port::from_rings("net_ring_a", &[Arc::clone(&r2)], &[Arc::clone(&r1)]).expect("port a");
    let mut b = Port::from_rings("net_ring_b", &[Arc::clone(&r1)], &[Arc::clone(&r2)]).expect("port b");
    assert_eq!(a.info().expect("info").driver, "net_ring");
    let cfg = PortConfig::default();
    let (mut arx, mut atx) = a.configure(&cfg, &ctx.pool).expect("configure a");
    let (mut brx, mut btx) = b.configure(&cfg, &ctx.pool).expect("configure b");
    a.start().expect("start a");
    b.start().expect("start b");
    assert!(a.link().expect("link").up);

    let frames = test_frames(20);
    let got = send_and_collect(&ctx.pool, &mut atx[0], &mut brx[0], &frames);
    assert_eq!(got, frames, "a -> b byte-exact, in order");
    let back = send_and_collect(&ctx.pool, &mut btx[0], &mut arx[0], &frames[..5]);
    assert_eq!(back, frames[..5].to_vec(), "b -> a byte-exact");

    let (sa, sb) = (a.stats().expect("stats"), b.stats().expect("stats"));
    assert_eq!(sa.opackets, 20);
    assert_eq!(sb.ipackets, 20);
    assert_eq!(sb.opackets, 5);
    assert_eq!(sa.ipackets, 5);
    // net_ring in DPDK 22.11 counts packets, not bytes; af_packet's case checks bytes.
    a.reset_stats().expect("reset");
    assert_eq!(a.stats().expect("stats").opackets, 0);
    drop((atx, btx));
    a.stop().expect("stop");
    b.stop().expect("stop");
}

fn net_null_starts_and_forwards(ctx: &Ctx) {
    let mut p = Port::by_name("net_null0").expect("net_null0 from --vdev");
    let info = p.info().expect("info");
    assert_eq!(info.driver, "net_null");
    let (mut rx, mut tx) = p.configure(&PortConfig::default(), &ctx.pool).expect("configure");
    p.start().expect("start");
    for f in test_frames(32) {
        tx[0].push(Mbuf::from_slice(&ctx.pool, &f).expect("mbuf"));
    }
    assert_eq!(tx[0].flush(), 32, "net_null takes everything");
    assert_eq!(tx[0].sent, 32);
    let mut b = Burst::new();
    let n = rx[0].rx_burst(&mut b);
    assert_eq!(n, 32, "net_null delivers a full burst of synthetic packets");
    assert!(b.drain().all(|m| m.len() == 64));
    let s = p.stats().expect("stats");
    assert_eq!(s.opackets, 32);
    assert_eq!(s.ipackets, 32);
    let x = p.xstats().expect("xstats");
    assert!(x.iter().any(|(n, v)| n == "tx_good_packets" && *v == 32), "xstats: {x:?}");
    drop(tx);
    p.stop().expect("stop");
}

fn flow_rules_refused_cleanly_without_support(ctx: &Ctx) {
    // No PMD here accepts rte_flow rules: validation must fail with a sentence, and the
    // port keep working (the dataplane then falls back to software redirect).
    let r = MbufRing::new("flow_r", 64, RingSync::SpSc).expect("ring");
    let mut p = Port::from_rings("net_ring_flow", &[Arc::clone(&r)], &[Arc::clone(&r)]).expect("port");
    let _q = p.configure(&PortConfig::default(), &ctx.pool).expect("configure");
    p.start().expect("start");
    let pattern =
        [FlowItem::Eth, FlowItem::Ipv4Dst(Ipv4Addr::new(192, 0, 2, 1)), FlowItem::TcpDst { port: 1, mask: 1 }];
    let e = Flow::validate(p.id(), &FlowAttr::default(), &pattern, &[FlowAction::Queue(0)])
        .expect_err("net_ring has no flow API");
    assert!(e.errno > 0 && !e.msg.is_empty(), "{e}");
    assert!(Flow::create(p.id(), &FlowAttr::default(), &pattern, &[FlowAction::Queue(0)]).is_err());
    assert!(p.link().expect("link").up);
}

// ---- Exchanges with a real kernel stack ----

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet + IPv4 + ICMP echo request, checksums filled.
fn icmp_echo(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 20 + 8 + 32);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 60, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend((0..32u8).map(|i| b'a' + i % 26));
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&icmp);
    f
}

/// True if `f` is an ICMP echo reply from `from` to `to` with this id and seq, checksums valid.
fn is_echo_reply(f: &[u8], from: Ipv4Addr, to: Ipv4Addr, id: u16, seq: u16) -> bool {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[14] != 0x45 || f[23] != 1 {
        return false;
    }
    let ip = &f[14..34];
    if ip[12..16] != from.octets() || ip[16..20] != to.octets() || csum(ip) != 0 {
        return false;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let icmp = &f[34..14 + total];
    icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == seq.to_be_bytes() && csum(icmp) == 0
}

/// Sends echo requests from the port to a kernel address until a valid reply comes back
/// through the port (the kernel's neighbour entry for us is static).
#[allow(clippy::too_many_arguments)]
fn ping_kernel(
    pool: &Mempool,
    tx: &mut TxBuffer,
    rx: &mut RxQueue,
    our_mac: [u8; 6],
    their_mac: [u8; 6],
    ours: Ipv4Addr,
    theirs: Ipv4Addr,
) {
    let mut b = Burst::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seq = 0u16;
    while Instant::now() < deadline {
        seq += 1;
        tx.push(Mbuf::from_slice(pool, &icmp_echo(our_mac, their_mac, ours, theirs, 0x7273, seq)).expect("mbuf"));
        assert_eq!(tx.flush(), 1);
        let wait = Instant::now() + Duration::from_millis(200);
        while Instant::now() < wait {
            rx.rx_burst(&mut b);
            for m in b.drain() {
                if is_echo_reply(m.data(), theirs, ours, 0x7273, seq) {
                    return;
                }
            }
        }
    }
    panic!("no echo reply from the kernel at {theirs} within 10 s");
}

fn af_packet_veth_exchanges_with_kernel(ctx: &Ctx) {
    let ns = NetNs::new("rvtns");
    let veth = Veth::new("rvt");
    veth.move_peer(&ns);
    let (ours, theirs) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
    ns.ip(&["addr", "add", "198.18.0.2/24", "dev", &veth.peer]);
    let mut p =
        Port::create_vdev("net_af_packet_t0", &format!("iface={},qpairs=1", veth.host)).expect("af_packet port");
    let our_mac = p.mac().expect("mac");
    assert_eq!(our_mac, veth.host_mac(), "af_packet port takes the interface's MAC");
    ns.ip(&["neigh", "replace", "198.18.0.1", "lladdr", &mac_to_string(&our_mac), "dev", &veth.peer]);
    let (mut rx, mut tx) = p.configure(&PortConfig::default(), &ctx.pool).expect("configure");
    p.start().expect("start");
    ping_kernel(&ctx.pool, &mut tx[0], &mut rx[0], our_mac, ns.mac(&veth.peer), ours, theirs);
    let s = p.stats().expect("stats");
    assert!(s.opackets >= 1 && s.ipackets >= 1, "{s:?}");
    assert!(s.obytes >= 74 * s.opackets && s.ibytes >= 74, "byte counters follow the frames: {s:?}");
    drop(tx);
    drop(p);
}

fn tap_interface_appears_and_exchanges(ctx: &Ctx) {
    let iface = testnet::unique("rvtap");
    assert!(!sh_ok(&["ip", "link", "show", &iface]));
    let mut p = Port::create_vdev("net_tap_t0", &format!("iface={iface}")).expect("tap port");
    assert!(sh_ok(&["ip", "link", "show", &iface]), "the tap's kernel interface appears in ip link");
    let (mut rx, mut tx) = p.configure(&PortConfig::default(), &ctx.pool).expect("configure");
    p.start().expect("start");
    let our_mac = p.mac().expect("mac");
    // Move the kernel side into a test namespace so traffic stays inside the test.
    let ns = NetNs::new("rvtapns");
    sh(&["ip", "link", "set", &iface, "netns", ns.name()]);
    ns.ip(&["link", "set", &iface, "up"]);
    ns.ip(&["addr", "add", "198.19.0.2/24", "dev", &iface]);
    ns.ip(&["neigh", "replace", "198.19.0.1", "lladdr", &mac_to_string(&our_mac), "dev", &iface]);
    ping_kernel(
        &ctx.pool,
        &mut tx[0],
        &mut rx[0],
        our_mac,
        ns.mac(&iface),
        Ipv4Addr::new(198, 19, 0, 1),
        Ipv4Addr::new(198, 19, 0, 2),
    );
    drop(tx);
    drop(p);
    assert!(!ns.exec(&["ip", "link", "show", &iface]).status.success(), "the tap interface goes with the port");
}

fn bond_active_backup_of_two_af_packet(ctx: &Ctx) {
    let ns = NetNs::new("rvbns");
    let (v0, v1) = (Veth::new("rvb"), Veth::new("rvb"));
    v0.move_peer(&ns);
    v1.move_peer(&ns);
    // Both slaves' far ends on one L2 segment in the namespace.
    let br = "br0";
    ns.ip(&["link", "add", br, "type", "bridge"]);
    ns.ip(&["link", "set", &v0.peer, "master", br]);
    ns.ip(&["link", "set", &v1.peer, "master", br]);
    ns.ip(&["link", "set", br, "up"]);
    ns.ip(&["addr", "add", "198.20.0.2/24", "dev", br]);

    let s0 = Port::create_vdev("net_af_packet_b0", &format!("iface={},qpairs=1", v0.host)).expect("slave 0");
    let s1 = Port::create_vdev("net_af_packet_b1", &format!("iface={},qpairs=1", v1.host)).expect("slave 1");
    let mut bond = Bond::create("net_bonding_t0", BondMode::ActiveBackup, 0).expect("bond");
    Bond::add_slave(&bond, &s0).expect("add slave 0");
    Bond::add_slave(&bond, &s1).expect("add slave 1");
    Bond::set_primary(&bond, &s0).expect("primary");
    Bond::set_link_monitor(&bond, 10).expect("monitor");
    let (mut rx, mut tx) = bond.configure(&PortConfig::default(), &ctx.pool).expect("configure bond");
    bond.start().expect("start bond");
    assert_eq!(Bond::mode(&bond).expect("mode"), 1);
    assert_eq!(Bond::slaves(&bond).expect("slaves"), vec![s0.id(), s1.id()]);
    assert_eq!(Bond::primary(&bond).expect("primary"), s0.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Bond::active_slaves(&bond).expect("active").is_empty() {
        assert!(Instant::now() < deadline, "no active slave");
        std::thread::sleep(Duration::from_millis(20));
    }
    let bond_mac = bond.mac().expect("mac");
    assert_eq!(bond_mac, s0.mac().expect("mac"), "active-backup bond takes the primary's MAC");
    ns.ip(&["neigh", "replace", "198.20.0.1", "lladdr", &mac_to_string(&bond_mac), "dev", br]);
    ping_kernel(
        &ctx.pool,
        &mut tx[0],
        &mut rx[0],
        bond_mac,
        ns.mac(br),
        Ipv4Addr::new(198, 20, 0, 1),
        Ipv4Addr::new(198, 20, 0, 2),
    );
    assert!(s0.stats().expect("stats").opackets >= 1, "the primary carried the traffic");
    assert_eq!(s1.stats().expect("stats").opackets, 0, "the backup stayed silent");
    drop(tx);
    drop(rx);
    drop(bond);
    drop((s0, s1));
}

/// Two 802.3ad (mode 4) bonds, each of two af_packet ports, wired to each other by two
/// veth pairs: LACP runs between them (the application must poll each bond at least
/// every 100 ms so LACPDUs are sent and received), and on both slaves of both bonds the
/// actor and the partner end up collecting and distributing.
fn lacp_between_two_bonds(ctx: &Ctx) {
    let (l0, l1) = (Veth::new("rvl"), Veth::new("rvl"));
    for v in [&l0, &l1] {
        sh(&["ip", "link", "set", &v.peer, "up"]);
    }
    let a0 = Port::create_vdev("net_af_packet_la0", &format!("iface={},qpairs=1", l0.host)).expect("a0");
    let a1 = Port::create_vdev("net_af_packet_la1", &format!("iface={},qpairs=1", l1.host)).expect("a1");
    let b0 = Port::create_vdev("net_af_packet_lb0", &format!("iface={},qpairs=1", l0.peer)).expect("b0");
    let b1 = Port::create_vdev("net_af_packet_lb1", &format!("iface={},qpairs=1", l1.peer)).expect("b1");
    let mut bonds = Vec::new();
    let mut queues = Vec::new();
    for (name, s0, s1) in [("net_bonding_la", &a0, &a1), ("net_bonding_lb", &b0, &b1)] {
        let mut bond = Bond::create(name, BondMode::Lacp, 0).expect("bond");
        Bond::add_slave(&bond, s0).expect("slave");
        Bond::add_slave(&bond, s1).expect("slave");
        let (rx, tx) = bond.configure(&PortConfig::default(), &ctx.pool).expect("configure");
        bond.start().expect("start");
        bonds.push(bond);
        queues.push((rx, tx));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut b = Burst::new();
    loop {
        // Poll both bonds (LACPDUs travel inside rx/tx bursts).
        for (rx, tx) in &mut queues {
            rx[0].rx_burst(&mut b);
            b.clear();
            tx[0].poll();
        }
        // Every slave's actor and partner both collecting and distributing (0x30).
        let ready = |(actor, partner): (u8, u8)| actor & 0x30 == 0x30 && partner & 0x30 == 0x30;
        let negotiated = [(&bonds[0], [&a0, &a1]), (&bonds[1], [&b0, &b1])]
            .iter()
            .all(|(bd, slaves)| slaves.iter().all(|s| Bond::lacp_state(bd, s).map(ready).unwrap_or(false)));
        if negotiated {
            break;
        }
        if Instant::now() > deadline {
            let states: Vec<_> = [(&bonds[0], [&a0, &a1]), (&bonds[1], [&b0, &b1])]
                .iter()
                .flat_map(|(bd, slaves)| slaves.iter().map(|s| Bond::lacp_state(bd, s)).collect::<Vec<_>>())
                .collect();
            panic!("LACP did not bring both slaves of both bonds into distribution within 20 s: {states:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(Bond::mode(&bonds[0]).expect("mode"), 4);
    drop(queues);
    drop(bonds);
    drop((a0, a1, b0, b1));
}

/// Literal frames: Ethernet (02:..:02 <- 02:..:01) then `rest` after the ethertype.
fn eth(ethertype: [u8; 2], rest: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, ethertype[0], ethertype[1]];
    f.extend_from_slice(rest);
    while f.len() < 60 {
        f.push(0);
    }
    f
}

/// IPv4 header 10.0.0.1 -> 10.0.0.2 with protocol `proto`, then `l4`.
fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
    let len = (20 + l4.len()) as u16;
    let mut p = vec![0x45, 0, (len >> 8) as u8, len as u8, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    p.extend_from_slice(l4);
    p
}

/// IPv6 header 2001:db8::1 -> 2001:db8::2 with next header `nh`, then `l4`.
fn ipv6(nh: u8, l4: &[u8]) -> Vec<u8> {
    let len = l4.len() as u16;
    let mut p = vec![0x60, 0, 0, 0, (len >> 8) as u8, len as u8, nh, 64];
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(l4);
    p
}

/// A TCP header 40000 -> `dport` with `flags`.
fn tcp(dport: u16, flags: u8) -> Vec<u8> {
    vec![0x9c, 0x40, (dport >> 8) as u8, dport as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]
}

fn bpf_filter_tcpdump_syntax_on_literal_frames(ctx: &Ctx) {
    use dpdk::bpf::{Filter, FilterError};
    let syn80 = eth([0x08, 0x00], &ipv4(6, &tcp(80, 0x02)));
    let ack80 = eth([0x08, 0x00], &ipv4(6, &tcp(80, 0x10)));
    let syn81 = eth([0x08, 0x00], &ipv4(6, &tcp(81, 0x02)));
    let icmp = eth([0x08, 0x00], &ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1]));
    let udp = eth([0x08, 0x00], &ipv4(17, &[0x30, 0x39, 0, 53, 0, 8, 0, 0]));
    let tcp6 = eth([0x86, 0xdd], &ipv6(6, &tcp(443, 0x02)));
    let udp6 = eth([0x86, 0xdd], &ipv6(17, &[0x30, 0x39, 0, 53, 0, 8, 0, 0]));
    let mut vlan_icmp = vec![0x00, 0x64, 0x08, 0x00];
    vlan_icmp.extend_from_slice(&ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1]));
    let vlan_icmp = eth([0x81, 0x00], &vlan_icmp);
    let arp = eth([0x08, 0x06], &[0, 1, 8, 0, 6, 4, 0, 1]);
    let frames: [(&str, &Vec<u8>); 9] = [
        ("syn80", &syn80),
        ("ack80", &ack80),
        ("syn81", &syn81),
        ("icmp", &icmp),
        ("udp", &udp),
        ("tcp6", &tcp6),
        ("udp6", &udp6),
        ("vlan_icmp", &vlan_icmp),
        ("arp", &arp),
    ];
    // Each expression and the frames it must match (all others must not).
    let cases: &[(&str, &[&str])] = &[
        ("", &["syn80", "ack80", "syn81", "icmp", "udp", "tcp6", "udp6", "vlan_icmp", "arp"]),
        ("tcp[tcpflags] & tcp-syn != 0 and dst port 80", &["syn80"]),
        ("(ip and not icmp) or vlan", &["syn80", "ack80", "syn81", "udp", "vlan_icmp"]),
        // libpcap's meaning, as tcpdump's: after `vlan`, every later offset moves 4 bytes
        // on, in both branches, so an untagged frame is judged as if it had a tag.
        ("vlan or (ip and not icmp)", &["vlan_icmp", "arp"]),
        ("tcp[13] & 2 != 0", &["syn80", "syn81"]),
        ("tcp dst port 80", &["syn80", "ack80"]),
        ("ip6 and tcp", &["tcp6"]),
        ("udp port 53", &["udp", "udp6"]),
        ("arp or icmp", &["icmp", "arp"]),
        ("vlan 100 and icmp", &["vlan_icmp"]),
        ("src host 10.0.0.1 and dst net 10.0.0.0/24 and tcp portrange 80-81", &["syn80", "ack80", "syn81"]),
        ("ether src 02:00:00:00:00:01 and ip6", &["tcp6", "udp6"]),
        ("ip[9] = 17 or ip6[6] = 17", &["udp", "udp6"]),
    ];
    let mbufs: Vec<(&str, Mbuf)> =
        frames.iter().map(|(n, f)| (*n, Mbuf::from_slice(&ctx.pool, f).expect("mbuf"))).collect();
    let mut wrong = Vec::new();
    for (expr, want) in cases {
        let filter = Filter::new(expr, 65535).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let got: Vec<&str> = mbufs.iter().filter(|(_, m)| filter.matches(m)).map(|(n, _)| *n).collect();
        if &got != want {
            wrong.push(format!("{expr:?}: matched {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    match Filter::new("tcp port eighty", 65535) {
        Err(FilterError { msg, .. }) => assert!(msg.contains("eighty"), "libpcap's message: {msg}"),
        other => panic!("a bad expression is refused by libpcap: {other:?}"),
    }
    assert!(Filter::new("tcp and", 65535).is_err(), "an unfinished expression is refused");
}

fn pcapng_copy_and_writer_read_by_tshark(ctx: &Ctx) {
    use dpdk::pcapng::{copy, Direction, Writer};
    let frames = [eth([0x08, 0x00], &ipv4(6, &tcp(80, 0x02))), eth([0x86, 0xdd], &ipv6(6, &tcp(443, 0x12)))];
    let path = std::env::temp_dir().join(format!("rvs-bindings-{}.pcapng", std::process::id()));
    // The writer describes the ports there are when it opens (one interface each): the
    // earlier cases closed theirs, so this one makes its own.
    let port = Port::create_vdev("net_null_pcapng", "").expect("a port for the file's interface");
    let mut w = Writer::new(std::fs::File::create(&path).expect("file"), "rvs bindings test").expect("writer");
    let mut b = Burst::new();
    for (i, f) in frames.iter().enumerate() {
        let m = Mbuf::from_slice(&ctx.pool, f).expect("mbuf");
        let dir = if i == 0 { Direction::In } else { Direction::Out };
        let c = copy(&m, port.id(), 3, &ctx.pool, dir, dpdk::tsc()).expect("pcapng copy");
        assert!(b.push(c).is_ok());
    }
    assert_eq!(w.write(&mut b).expect("write"), 2);
    assert!(b.is_empty(), "written copies are freed");
    drop(w);
    let out = std::process::Command::new("tshark")
        .args(["-r", &path.display().to_string(), "-T", "fields", "-e", "frame.len", "-e"])
        .args(["frame.packet_flags_direction", "-e", "tcp.dstport", "-e", "frame.interface_id"])
        .output()
        .expect("tshark");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "tshark reads DPDK's pcapng: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[0][0], frames[0].len().to_string());
    assert_eq!(rows[1][0], frames[1].len().to_string());
    assert_eq!(rows[0][1].trim_start_matches("0x").trim_start_matches('0'), "1", "{text}");
    assert_eq!(rows[1][1].trim_start_matches("0x").trim_start_matches('0'), "2", "{text}");
    assert_eq!((rows[0][2], rows[1][2]), ("80", "443"));
    drop(port);
}
