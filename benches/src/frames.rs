//! The input frames: what the feeder puts on the wire.
//!
//! Every frame the benchmark sends is built here with the `wire` packet builder: the
//! clients' SYNs, the rest of each handshake and the established flows in both
//! directions (learned from the worker's connection listing), the bare data frames of
//! the `io` case and of testpmd's pcap context run. [`Frames`] holds a set of frames of
//! one length back to back; [`Feed`] walks through a set, once or in a cycle.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{bail, Context, Result};
use fnat::engine::listing::ConnInfo;
use fnat::tcp_state::TcpState;
use wire::builder::PacketBuilder;
use wire::{EthernetAddress, TcpFlags};

use crate::setup::{VIP, VPORT};

/// Payload of the established-flow packets (64-byte frames, as testpmd's null frames).
pub const DATA_PAYLOAD: usize = 10;
/// Client ports used per client address (a multiple of the real servers: with round
/// robin, flows `i` and `i + PORTS_PER_CLIENT` share a client port and a real server).
pub const PORTS_PER_CLIENT: u32 = 60_000;
/// Source MAC of the clients' frames.
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0xc1, 0x01]);
/// Source MAC of the real servers' frames.
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x5e, 0x01]);
/// The data frames of the `io` case and of the pcap file.
const DATA_FRAMES: u32 = 1024;

/// Prepared frames of one length, fed in turn.
pub struct Frames {
    data: Vec<u8>,
    /// The length of every frame.
    pub len: usize,
}

impl Frames {
    /// The frames, back to back (all of one length).
    pub fn new(frames: impl IntoIterator<Item = Vec<u8>>) -> Frames {
        let mut data = Vec::new();
        let mut len = 0;
        for f in frames {
            if len == 0 {
                len = f.len();
            }
            assert_eq!(f.len(), len, "frames of one set have one length");
            data.extend_from_slice(&f);
        }
        Frames { data, len }
    }

    /// How many frames there are.
    pub fn count(&self) -> usize {
        self.data.len().checked_div(self.len).unwrap_or(0)
    }

    /// Frame `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[i * self.len..(i + 1) * self.len]
    }
}

/// What the feeder is sending.
pub struct Feed<'a> {
    /// The frames sent.
    pub frames: &'a Frames,
    /// The next frame to send.
    pub next: usize,
    /// Frames still to send; `None` = cycle forever.
    pub left: Option<usize>,
}

impl<'a> Feed<'a> {
    /// `frames` in a cycle, forever.
    pub fn cyclic(frames: &'a Frames) -> Feed<'a> {
        Feed { frames, next: 0, left: None }
    }
    /// `frames` once.
    pub fn once(frames: &'a Frames) -> Feed<'a> {
        Feed { frames, next: 0, left: Some(frames.count()) }
    }
    /// Nothing.
    pub fn idle() -> Feed<'static> {
        static EMPTY: Frames = Frames { data: Vec::new(), len: 0 };
        Feed { frames: &EMPTY, next: 0, left: Some(0) }
    }
    /// Whether everything was sent.
    pub fn done(&self) -> bool {
        self.left == Some(0) || self.frames.count() == 0
    }
    /// Moves to the next frame (one more sent).
    pub fn advance(&mut self) {
        self.next += 1;
        if self.next == self.frames.count() {
            self.next = 0;
        }
        if let Some(l) = self.left.as_mut() {
            *l -= 1;
        }
    }
}

/// Client `i` of the clients numbered from `base`: its address and port.
pub fn client(i: u32, base: Ipv4Addr) -> (Ipv4Addr, u16) {
    let ip = u32::from(base) + 1 + i / PORTS_PER_CLIENT;
    (Ipv4Addr::from(ip), 1024 + (i % PORTS_PER_CLIENT) as u16)
}

fn v4(a: SocketAddr) -> Result<(Ipv4Addr, u16)> {
    match a.ip() {
        IpAddr::V4(ip) => Ok((ip, a.port())),
        IpAddr::V6(_) => bail!("IPv6 connection in an IPv4 bench"),
    }
}

/// A client's SYN to the VIP.
fn syn(dst_mac: EthernetAddress, cip: Ipv4Addr, cport: u16) -> Vec<u8> {
    PacketBuilder::eth(CLIENT_MAC, dst_mac)
        .ipv4(cip, VIP)
        .tcp(cport, VPORT)
        .flags(TcpFlags::SYN)
        .seq(1000)
        .window(65535)
        .mss(1460)
        .build()
}

/// The SYNs of clients `from..to` (numbered from `base`) to the VIP.
pub fn syns(dst_mac: EthernetAddress, base: Ipv4Addr, from: u32, to: u32) -> Frames {
    Frames::new((from..to).map(|i| {
        let (cip, cport) = client(i, base);
        syn(dst_mac, cip, cport)
    }))
}

/// The data frames of the `io` case and of the pcap file: client `i` (from 10.0.0.0)
/// to the VIP, ACK with [`DATA_PAYLOAD`] bytes.
fn data_frames(dst_mac: EthernetAddress) -> impl Iterator<Item = Vec<u8>> {
    let payload = [0x5au8; DATA_PAYLOAD];
    (0..DATA_FRAMES).map(move |i| {
        let (c, p) = client(i, Ipv4Addr::new(10, 0, 0, 0));
        PacketBuilder::eth(CLIENT_MAC, dst_mac)
            .ipv4(c, VIP)
            .tcp(p, VPORT)
            .flags(TcpFlags::ACK)
            .payload(&payload)
            .build()
    })
}

/// The frames of the `io` case (see `data_frames`).
pub fn io_frames(dst_mac: EthernetAddress) -> Frames {
    Frames::new(data_frames(dst_mac))
}

/// The frames of the handshake's rest of the half-open connections of a listing, and
/// of the established flows of every connection.
///
/// A connection's replies pass rvs under FullNAT and NAT only
/// ([`FwdMode::replies_through`](fnat::types::FwdMode::replies_through)): those have
/// SYN-ACKs and replies here, to the connection's `local` side (FullNAT: the LIP:lport
/// the worker chose; NAT: the client itself). A DR or TUN server answers the client
/// directly, so its connections have neither: the client's ACK alone makes them
/// ESTABLISHED (IPVS's input-only state).
pub struct ConnFrames {
    /// The real servers' SYN-ACKs to the `local` side of each half-open connection.
    pub synack: Frames,
    /// The clients' ACKs that complete those handshakes.
    pub ack: Frames,
    /// Client → VIP data of every connection.
    pub data_in: Frames,
    /// Real server → `local` data (the replies) of every connection whose replies pass
    /// rvs.
    pub data_out: Frames,
}

/// The frames of `conns` (see [`ConnFrames`]), to `dst_mac`; `data`: with the
/// established flows' (without: the handshakes' only).
pub fn conn_frames(dst_mac: EthernetAddress, conns: &[ConnInfo], data: bool) -> Result<ConnFrames> {
    let mut synack = Vec::new();
    let mut ack = Vec::new();
    let mut data_in = Vec::new();
    let mut data_out = Vec::new();
    let payload = [0x5au8; DATA_PAYLOAD];
    for c in conns {
        let (cip, cport) = v4(c.client)?;
        let (vip, vport) = v4(c.virt)?;
        let (lip, lport) = v4(c.local)?;
        let (rip, rport) = v4(c.real)?;
        let replies = c.fwd.replies_through();
        if c.state == TcpState::SynRecv && replies {
            synack.push(
                PacketBuilder::eth(SERVER_MAC, dst_mac)
                    .ipv4(rip, lip)
                    .tcp(rport, lport)
                    .flags(TcpFlags::SYN | TcpFlags::ACK)
                    .seq(5000)
                    .ack(1001)
                    .window(65535)
                    .mss(1460)
                    .build(),
            );
        }
        if c.state == TcpState::SynRecv {
            ack.push(
                PacketBuilder::eth(CLIENT_MAC, dst_mac)
                    .ipv4(cip, vip)
                    .tcp(cport, vport)
                    .flags(TcpFlags::ACK)
                    .seq(1001)
                    .ack(5001)
                    .window(65535)
                    .build(),
            );
        }
        if !data {
            continue;
        }
        data_in.push(
            PacketBuilder::eth(CLIENT_MAC, dst_mac)
                .ipv4(cip, vip)
                .tcp(cport, vport)
                .flags(TcpFlags::ACK | TcpFlags::PSH)
                .seq(1001)
                .ack(5001)
                .window(65535)
                .payload(&payload)
                .build(),
        );
        if replies {
            data_out.push(
                PacketBuilder::eth(SERVER_MAC, dst_mac)
                    .ipv4(rip, lip)
                    .tcp(rport, lport)
                    .flags(TcpFlags::ACK | TcpFlags::PSH)
                    .seq(5001)
                    .ack(1001 + DATA_PAYLOAD as u32)
                    .window(65535)
                    .payload(&payload)
                    .build(),
            );
        }
    }
    Ok(ConnFrames {
        synack: Frames::new(synack),
        ack: Frames::new(ack),
        data_in: Frames::new(data_in),
        data_out: Frames::new(data_out),
    })
}

/// Writes the data frames (see `data_frames`) as a classic pcap file (microsecond
/// timestamps, Ethernet), for testpmd's net_pcap context run.
pub fn write_pcap(out: &Path) -> Result<()> {
    let mut f = Vec::new();
    for v in [
        0xa1b2_c3d4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
        &0u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &65535u32.to_le_bytes(),
        &1u32.to_le_bytes(),
    ] {
        f.extend_from_slice(v);
    }
    for fr in data_frames(EthernetAddress([0x02, 0, 0, 0, 0, 0x99])) {
        for v in [0u32, 0, fr.len() as u32, fr.len() as u32] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&fr);
    }
    std::fs::write(out, f).with_context(|| format!("write {}", out.display()))
}
