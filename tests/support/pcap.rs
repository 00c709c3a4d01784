//! Reading what tcpdump wrote: classic pcap files of Ethernet frames, and the TOA option
//! (TCP option 254) the dataplane inserts for real servers; writing such files for
//! DPDK's pcap ports to read ([`crate::pcap_rvsd`]).

use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Result};

/// The frames of a classic pcap file (microsecond or nanosecond, either byte order).
pub fn read_frames(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path)?;
    if data.len() < 24 {
        bail!("{}: not a pcap file ({} bytes)", path.display(), data.len());
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let le = match magic {
        0xa1b2c3d4 | 0xa1b23c4d => true,
        0xd4c3b2a1 | 0x4d3cb2a1 => false,
        _ => bail!("{}: bad pcap magic {magic:#x}", path.display()),
    };
    let u32_at = |b: &[u8]| {
        if le {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        }
    };
    let linktype = u32_at(&data[20..24]);
    if linktype != 1 {
        bail!("{}: link type {linktype}, expected Ethernet", path.display());
    }
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32_at(&data[off + 8..off + 12]) as usize;
        let start = off + 16;
        if start + incl > data.len() {
            break; // truncated last record (capture killed mid-write)
        }
        frames.push(data[start..start + incl].to_vec());
        off = start + incl;
    }
    Ok(frames)
}

/// Writes `frames` as a classic pcap file (microseconds, little-endian, Ethernet), each
/// whole, frame `i` stamped 1 s + `i` µs.
pub fn write_frames(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    for v in [0xa1b2c3d4u32.to_le_bytes().to_vec(), 2u16.to_le_bytes().to_vec(), 4u16.to_le_bytes().to_vec()] {
        out.extend(v);
    }
    for v in [0u32, 0, 65535, 1] {
        out.extend(v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for v in [1u32, i as u32, f.len() as u32, f.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend(f);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// A decoded TOA option: the client's address and port as the dataplane saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toa {
    /// Client address.
    pub addr: IpAddr,
    /// Client port.
    pub port: u16,
}

/// The TOA options found in the TCP headers of `frames`.
pub fn toa_options(frames: &[Vec<u8>]) -> Vec<Toa> {
    let mut out = Vec::new();
    for f in frames {
        let Ok(p) = etherparse::SlicedPacket::from_ethernet(f) else { continue };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else { continue };
        let opts = tcp.options();
        let mut i = 0;
        while i < opts.len() {
            match opts[i] {
                0 => break,
                1 => i += 1,
                kind => {
                    let Some(&len) = opts.get(i + 1) else { break };
                    let len = len as usize;
                    if len < 2 || i + len > opts.len() {
                        break;
                    }
                    let body = &opts[i + 2..i + len];
                    if kind == 254 && len == 8 {
                        let port = u16::from_be_bytes([body[0], body[1]]);
                        let a: [u8; 4] = body[2..6].try_into().expect("4 bytes");
                        out.push(Toa { addr: IpAddr::from(a), port });
                    } else if kind == 254 && len == 20 {
                        let port = u16::from_be_bytes([body[0], body[1]]);
                        let a: [u8; 16] = body[2..18].try_into().expect("16 bytes");
                        out.push(Toa { addr: IpAddr::from(a), port });
                    }
                    i += len;
                }
            }
        }
    }
    out
}
