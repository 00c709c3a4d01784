//! Seeds for the fuzz corpora from the fixture tables: `crates/frame/tests/fixtures.rs`
//! and `crates/fnat/tests/common/mod.rs` include this file (`#[path]`) and record each
//! table's frames. Nothing happens unless `RVS_FUZZ_SEEDS` names a directory (the
//! corpus root, `fuzz/corpus`); then each table becomes one `frame` seed (its frames in
//! order, in the `frame` target's record format: header byte, length, frame) and each
//! frame one `wire` seed. Files are named by a hash of their content, so regenerating
//! is idempotent. Std only.

#![allow(dead_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The MACs and VIPs of the fuzz world (`fuzz/src/lib.rs`), which extends the frame
/// fixtures' topology with the fnat fixtures' addresses.
const US0: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const US1: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];
const SERVER: [u8; 6] = [2, 0, 0, 0, 0, 0x51];
const VIP4: [u8; 4] = [192, 0, 2, 1];
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// One fixture table's frames; written when dropped.
#[derive(Default)]
pub struct Table {
    records: Vec<u8>,
    frames: Vec<Vec<u8>>,
}

impl Table {
    /// An Ethernet frame received on `port`.
    pub fn frame(&mut self, port: usize, frame: &[u8]) {
        self.push((port % 3) as u8, frame);
    }

    /// An IP packet (header at `l3`: 0 for a bare packet, else after an Ethernet
    /// header) as the core sees it: to a VIP it comes from a client on port 0,
    /// otherwise from a server on port 1.
    pub fn packet(&mut self, packet: &[u8], l3: usize) {
        let ip = packet.get(l3..).unwrap_or(&[]);
        let to_vip = match ip.first().map(|b| b >> 4) {
            Some(4) => ip.get(16..20) == Some(&VIP4[..]),
            Some(6) => ip.get(24..40) == Some(&VIP6[..]),
            _ => false,
        };
        let (port, dst, src) = if to_vip { (0, US0, CLIENT) } else { (1, US1, SERVER) };
        let mut f = Vec::with_capacity(14 + ip.len());
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(if ip.first().map(|b| b >> 4) == Some(6) { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        f.extend_from_slice(ip);
        self.push(port, &f);
    }

    /// The clock moves by about `ms` (the record format moves it in powers of two).
    pub fn advance(&mut self, ms: u64) {
        if ms == 0 {
            return;
        }
        let k = (63 - ms.leading_zeros() as i32 - 5).clamp(1, 15) as u8;
        self.push(k << 4, &[]);
    }

    fn push(&mut self, h: u8, frame: &[u8]) {
        let len = frame.len().min(usize::from(u16::MAX));
        self.records.push(h);
        self.records.extend_from_slice(&(len as u16).to_be_bytes());
        self.records.extend_from_slice(&frame[..len]);
        if !frame.is_empty() {
            self.frames.push(frame.to_vec());
        }
    }
}

fn write(dir: &Path, target: &str, data: &[u8]) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("seed directory");
    std::fs::write(dir.join(format!("fixture-{:016x}", h.finish())), data).expect("seed file");
}

impl Drop for Table {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("RVS_FUZZ_SEEDS").map(PathBuf::from) else { return };
        if self.records.is_empty() {
            return;
        }
        write(&dir, "frame", &self.records);
        for f in &self.frames {
            write(&dir, "wire", f);
        }
    }
}
