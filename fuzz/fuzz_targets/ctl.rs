//! The control protocol decoder as rvsd's server and the client run it: lines read
//! with `ctl::frame::read_line` (size bound, UTF-8), each parsed as a `RequestMsg` and a
//! `ResponseMsg`; what parses must serialize and parse again to the same message. A
//! request that changes the services or the SNAT rules is then applied as rvsd's
//! control thread does: the verb on a copy of the rules, `verbs::validate` (building the
//! core's table), the copy adopted when valid.
#![no_main]

use std::io::BufReader;
use std::net::IpAddr;

use ctl::frame::{self, FrameError};
use ctl::verbs::{self, Owned, Rules};
use ctl::{RequestMsg, ResponseMsg};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(line: &str)
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok(m) = serde_json::from_str::<T>(line) {
        let text = serde_json::to_string(&m).expect("a parsed message serializes");
        let again: T = serde_json::from_str(&text).expect("a serialized message parses");
        assert_eq!(serde_json::to_string(&again).unwrap(), text, "round trip changed the message");
    }
}

/// 10.0.0.0/8 and fd00::/8 are LIPs, 192.0.2.0/24 and 2001:db8::/32 plain addresses.
fn owner(ip: IpAddr) -> Option<Owned> {
    match ip {
        IpAddr::V4(a) if a.octets()[0] == 10 => Some(Owned::Sapool),
        IpAddr::V4(a) if a.octets()[..3] == [192, 0, 2] => Some(Owned::Plain),
        IpAddr::V6(a) if a.octets()[0] == 0xfd => Some(Owned::Sapool),
        IpAddr::V6(a) if a.segments()[..2] == [0x2001, 0xdb8] => Some(Owned::Plain),
        _ => None,
    }
}

fn change(set: &mut Rules, line: &str) {
    let Ok(msg) = serde_json::from_str::<RequestMsg>(line) else { return };
    if !verbs::changes_rules(&msg.req) {
        return;
    }
    let mut copy = set.clone();
    if verbs::apply(&mut copy, msg.req).is_ok()
        && verbs::validate(&copy.services, &owner, None, &Default::default()).is_ok()
    {
        let _ = verbs::unowned_vips(&copy.services, &owner);
        *set = copy;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut set = Rules::default();
    let mut r = BufReader::with_capacity(64, data);
    for _ in 0..64 {
        match frame::read_line(&mut r) {
            Ok(line) => {
                round_trip::<RequestMsg>(&line);
                round_trip::<ResponseMsg>(&line);
                change(&mut set, &line);
                let _ = serde_json::from_str::<serde_json::Value>(&line);
            }
            Err(FrameError::Closed) => break,
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    // The same bytes through the typed reader.
    let mut r = BufReader::new(data);
    let _ = frame::read::<_, RequestMsg>(&mut r);
});
