//! The sync thread's own cost (plain harness): records per second it seals into
//! authenticated messages (encode + HMAC-SHA-256, 14 records a message) and checks on
//! receipt (tag + parse). Together with `cargo bench -p fnat --bench conn` (a worker's
//! cost to announce, a peer worker's to install) it says how many connections per
//! second one box can sync.
//!
//! `cargo bench -p rvsd --bench sync`.

use std::hint::black_box;
use std::time::Instant;

use hmac::{Hmac, Mac};
use rvsd::sync::seal;
use sha2::Sha256;
use wire::sync::{HeaderRepr, Message, RecordRepr, HEADER_LEN, MAX_LEN, MAX_RECORDS, RECORD_LEN};

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let messages: u32 = if quick { 1_000 } else { 200_000 };
    let mac = Hmac::<Sha256>::new_from_slice(b"a-benchmark-key-of-32-characters").unwrap();
    let rec = RecordRepr {
        proto: 6,
        fwd: 0,
        state: 1,
        toa_done: true,
        synack_seen: true,
        proven: true,
        timeout_ms: 900_000,
        client: ("198.51.100.7".parse().unwrap(), 40000),
        virt: ("192.0.2.1".parse().unwrap(), 80),
        local: ("198.19.0.10".parse().unwrap(), 1029),
        real: ("198.19.0.51".parse().unwrap(), 8080),
        synproxy: None,
        proxy: None,
    };
    let mut out = [0u8; MAX_LEN];
    let t0 = Instant::now();
    let mut len = 0;
    for seq in 0..messages {
        for i in 0..MAX_RECORDS {
            let mut r = rec;
            r.client.1 = seq as u16 ^ i as u16;
            r.emit(&mut out[HEADER_LEN + i * RECORD_LEN..]).unwrap();
        }
        let h = HeaderRepr { sync_id: 1, sender: 7, sequence: seq, workers: 1, hello: false, walk: false, echo: 9 };
        len = seal(&mac, &h, MAX_RECORDS, &mut out).unwrap();
        black_box(&out);
    }
    let send = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 0..messages {
        let m = Message::new_checked(&out[..len]).unwrap();
        let mut check = mac.clone();
        check.update(m.signed());
        check.verify_truncated_left(m.tag()).unwrap();
        for r in m.records() {
            black_box(r.unwrap());
        }
    }
    let recv = t0.elapsed().as_secs_f64();
    let records = f64::from(messages) * MAX_RECORDS as f64;
    println!(
        "sync thread: seals {:.0} k records/s ({:.0} ns/record), checks and parses {:.0} k records/s ({:.0} ns/record); \
         {len}-byte messages of {MAX_RECORDS} records",
        records / send / 1e3,
        send * 1e9 / records,
        records / recv / 1e3,
        recv * 1e9 / records
    );
}
