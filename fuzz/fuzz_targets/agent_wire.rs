//! What rvs-agent reads from the network, forged at will: a VRRP advert as a raw IPv4
//! socket delivers it (plain, or in keepalived's AH, whose ICV is then checked), an IPv6
//! VRRP payload, and BFD control packets: the input cut into 24-byte pieces, each parsed
//! and, when it parses, fed to one BFD session in turn (its timers and sends run between
//! pieces, the clock moving by the piece's first byte in milliseconds).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_agent::bfd::packet::Repr;
use rvs_agent::bfd::session::{Session, Timers};
use rvs_agent::vrrp::packet::{auth_pass, decode_ipv4, decode_ipv6, MCAST_V6};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = decode_ipv4(data) {
        if let Some(ah) = &r.ah {
            let _ = (ah.verify(&auth_pass("secret12"), false), ah.verify(&auth_pass("secret12"), true));
        }
    }
    let _ = decode_ipv6(data, "fe80::1".parse().unwrap(), MCAST_V6, 255);

    let timers = Timers { min_rx_us: 10_000, min_tx_us: 10_000, idle_tx_us: 1_000_000, multiplier: 3, passive: false };
    let mut now = Instant::now();
    let mut s = Session::new(timers, 0x1234, now);
    for piece in data.chunks(24) {
        now += Duration::from_millis(u64::from(piece[0]));
        let _ = s.poll_timers(now);
        if let Ok(r) = Repr::parse(piece) {
            if s.accepts(&r) {
                let (_, answer) = s.receive(&r, now);
                if answer {
                    let _ = s.send(now, 0.5).emit();
                }
            }
        }
        let mut sent = 0;
        while s.tx_due(now) {
            let _ = s.send(now, 0.3).emit();
            sent += 1;
            assert!(sent < 4, "a session sends in a loop");
        }
        let _ = (s.next_deadline(), s.detection_time(), s.tx_interval());
    }
});
