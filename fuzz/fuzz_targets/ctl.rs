//! The control protocol decoder as rvsd's server and the client run it: lines read
//! with `ctl::frame::read_line` (size bound, UTF-8), each parsed as a `RequestMsg` and a
//! `ResponseMsg`; what parses must serialize and parse again to the same message.
#![no_main]

use std::io::BufReader;

use ctl::frame::{self, FrameError};
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

fuzz_target!(|data: &[u8]| {
    let mut r = BufReader::with_capacity(64, data);
    for _ in 0..64 {
        match frame::read_line(&mut r) {
            Ok(line) => {
                round_trip::<RequestMsg>(&line);
                round_trip::<ResponseMsg>(&line);
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
