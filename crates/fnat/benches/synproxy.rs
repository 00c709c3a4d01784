//! SYN proxy benchmarks (plain harness): ns per SYN answered with a cookie (what a
//! flood costs a worker), per cookie ACK that opens a connection, and per packet of a
//! proxied established connection (sequence and timestamp translation) against the
//! same packet on an ordinary connection.
//!
//! `cargo bench -p fnat --bench synproxy`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use fnat::buf::{PacketBuf, VecBuf};
use fnat::conn::BURST;
use fnat::engine::config::{EngineConfig, LocalAddrSet};
use fnat::engine::{Engine, Verdict};
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig, ServiceTable};
use fnat::synproxy::{SynProxyConfig, SynProxyMode};
use fnat::types::Proto;
use wire::builder::PacketBuilder;
use wire::{TcpFlags, TcpPacket};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const N: usize = 1 << 18;

fn engine(mode: SynProxyMode) -> (Engine, ServiceTable) {
    let mut svc = ServiceConfig::new(Proto::Tcp, VIP.into(), 80);
    svc.sched = SchedKind::Rr;
    svc.real_servers = (0..16)
        .map(|i| RealServerConfig {
            addr: Ipv4Addr::new(10, 2, 0, i + 1).into(),
            port: 8080,
            weight: 1,
            upper: 0,
            lower: 0,
            fwd: Default::default(),
        })
        .collect();
    let table = ServiceTable::build(&[svc], None).unwrap();
    let cfg = EngineConfig {
        conn_capacity: 2 * N as u32,
        local_addrs: vec![LocalAddrSet {
            service: None,
            lips: (0..16).map(|i| IpAddr::from(Ipv4Addr::new(10, 1, 0, i + 1))).collect(),
        }],
        synproxy: SynProxyConfig { mode, ..SynProxyConfig::default() },
        hash_seed: Some(1),
        syn_recv_max: 2 * N as u32,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(&cfg, 0).unwrap();
    e.bind(&table);
    (e, table)
}

fn client(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0b00_0000u32 + i as u32)
}

/// Runs `pkts` through the engine in bursts; returns ns per packet and the outputs.
fn burst(e: &mut Engine, table: &ServiceTable, pkts: &[Vec<u8>], now: u64) -> (f64, Vec<Vec<u8>>, usize) {
    let mut out = Vec::with_capacity(pkts.len());
    let mut fwd = 0;
    let mut bufs: Vec<VecBuf> = pkts.iter().map(|p| VecBuf::new(p)).collect();
    let l3 = [0usize; BURST];
    let mut v = [Verdict::NotMine; BURST];
    let t0 = Instant::now();
    for chunk in bufs.chunks_mut(BURST) {
        let m = chunk.len();
        e.process_burst(table, chunk, &l3[..m], now, &mut v[..m]);
        fwd += v[..m].iter().filter(|x| matches!(x, Verdict::Forward { .. })).count();
    }
    let ns = t0.elapsed().as_nanos() as f64 / pkts.len() as f64;
    out.extend(bufs.iter().map(|b| b.data().to_vec()));
    (ns, out, fwd)
}

fn main() {
    // SYNs as Linux sends them: MSS, SACK, timestamps, window scale.
    let syns: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            PacketBuilder::ipv4(client(i), VIP)
                .tcp(40000, 80)
                .seq(i as u32)
                .flags(TcpFlags::SYN)
                .mss(1460)
                .sack_permitted()
                .timestamps(7, 0)
                .window_scale(7)
                .build()
        })
        .collect();

    let (mut e, table) = engine(SynProxyMode::On);
    let (ns_syn, synacks, fwd) = burst(&mut e, &table, &syns, 1000);
    assert_eq!(fwd, N);
    assert_eq!(e.conns().len(), 0, "no state for a SYN");
    println!("SYN -> SYN-ACK with a cookie:           {ns_syn:7.1} ns/SYN (no connection)");

    let acks: Vec<Vec<u8>> = synacks
        .iter()
        .enumerate()
        .map(|(i, sa)| {
            let t = TcpPacket::new_checked(&sa[20..]).unwrap();
            PacketBuilder::ipv4(client(i), VIP)
                .tcp(40000, 80)
                .seq(i as u32 + 1)
                .ack(t.seq_number().wrapping_add(1))
                .flags(TcpFlags::ACK)
                .option(&[1, 1])
                .timestamps(8, 1000)
                .build()
        })
        .collect();
    let (ns_ack, syns_out, fwd) = burst(&mut e, &table, &acks, 1001);
    assert_eq!(fwd, N);
    println!("cookie ACK -> connection + SYN to server: {ns_ack:7.1} ns/ACK");

    // The servers' SYN-ACKs complete the handshakes.
    let synacks: Vec<Vec<u8>> = syns_out
        .iter()
        .map(|s| {
            let ip = wire::Ipv4Packet::new_checked(&s[..]).unwrap();
            let t = TcpPacket::new_checked(&s[20..]).unwrap();
            PacketBuilder::ipv4(ip.dst_addr(), ip.src_addr())
                .tcp(t.dst_port(), t.src_port())
                .seq(5000)
                .ack(t.seq_number().wrapping_add(1))
                .flags(TcpFlags(0x12))
                .mss(1460)
                .sack_permitted()
                .timestamps(99, 8)
                .window_scale(7)
                .build()
        })
        .collect();
    let (ns_synack, _, fwd) = burst(&mut e, &table, &synacks, 1002);
    assert_eq!(fwd, N);
    println!("server SYN-ACK -> ACK with TOA:          {ns_synack:7.1} ns/SYN-ACK");

    // Established: client data in, the same through an engine without the proxy.
    let data = |i: usize, ack: u32| {
        PacketBuilder::ipv4(client(i), VIP)
            .tcp(40000, 80)
            .seq(i as u32 + 1)
            .ack(ack)
            .flags(TcpFlags(0x18))
            .option(&[1, 1])
            .timestamps(9, 100)
            .payload(&[0u8; 64])
            .build()
    };
    let proxied: Vec<Vec<u8>> = (0..N).map(|i| data(i, 1)).collect();
    let mut best_p = f64::MAX;
    for r in 0..5 {
        let (ns, _, fwd) = burst(&mut e, &table, &proxied, 1003 + r);
        assert_eq!(fwd, N);
        best_p = best_p.min(ns);
    }
    let (mut plain, table2) = engine(SynProxyMode::Off);
    let (_, _, fwd) = burst(&mut plain, &table2, &syns, 1000);
    assert_eq!(fwd, N);
    let mut best_n = f64::MAX;
    for r in 0..5 {
        let (ns, _, fwd) = burst(&mut plain, &table2, &proxied, 1003 + r);
        assert_eq!(fwd, N);
        best_n = best_n.min(ns);
    }
    println!(
        "established client data (timestamps):   {best_p:7.1} ns proxied, {best_n:7.1} ns plain ({:+.1} ns), \
         {} connections",
        best_p - best_n,
        e.conns().len()
    );
}
