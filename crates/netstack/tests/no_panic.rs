//! Property tests: no per-packet function panics, whatever the bytes. Inputs are both
//! arbitrary bytes and valid frames with bytes flipped and lengths cut, which reach
//! the deeper checks.

use std::net::{Ipv4Addr, Ipv6Addr};

use netstack::icmp::{self, Icmpv4ErrorKind, Icmpv6ErrorKind};
use netstack::{arp, nd, PacketError};
use proptest::prelude::*;
use wire::builder::PacketBuilder;
use wire::{ArpOperation, ArpRepr, EthernetAddress};

const A: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const B: EthernetAddress = EthernetAddress([2, 0, 0, 0xaa, 0xbb, 0xcc]);

fn seeds() -> Vec<Vec<u8>> {
    let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    vec![
        PacketBuilder::eth(A, EthernetAddress::BROADCAST)
            .pad_to(60)
            .arp(ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: A,
                source_protocol_addr: v4("10.0.0.1"),
                target_hardware_addr: EthernetAddress::UNSPECIFIED,
                target_protocol_addr: v4("10.0.0.5"),
            })
            .build(),
        PacketBuilder::eth(A, B)
            .ipv6(v6("2001:db8::1"), v6("ff02::1:ff00:5"))
            .neighbour_solicit(v6("2001:db8::5"), Some(A))
            .build(),
        PacketBuilder::eth(A, B)
            .ipv6(v6("::"), v6("ff02::1:ff00:5"))
            .neighbour_solicit(v6("2001:db8::5"), None)
            .build(),
        PacketBuilder::eth(A, B)
            .ipv4(v4("10.0.0.1"), v4("10.0.0.5"))
            .icmpv4_echo_request(1, 2)
            .payload(b"ping")
            .build(),
        PacketBuilder::eth(A, B).vlan(7).ipv4(v4("10.0.0.1"), v4("10.0.0.5")).icmpv4_echo_request(1, 2).build(),
        PacketBuilder::eth(A, B)
            .ipv6(v6("2001:db8::1"), v6("2001:db8::5"))
            .icmpv6_echo_request(1, 2)
            .payload(b"ping")
            .build(),
        PacketBuilder::eth(A, B)
            .ipv6(v6("2001:db8::1"), v6("2001:db8::5"))
            .ipv6_ext(wire::IpProtocol::HOPOPTS, &[0, 0, 1, 4, 0, 0, 0, 0])
            .udp(1, 2)
            .build(),
    ]
}

/// A seed frame with some bytes flipped and its length changed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = seeds().len();
    (0..n, proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6), 0usize..140).prop_map(
        |(i, flips, len)| {
            let mut f = seeds()[i].clone();
            for (at, x) in flips {
                let at = at.index(f.len());
                f[at] ^= x;
            }
            f.resize(len, 0);
            f
        },
    )
}

fn frames() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..160), mutated()]
}

fn respond_all(frame: &[u8], l3: usize) {
    let _ = arp::classify(frame);
    let _ = nd::classify(frame);
    let mut f = frame.to_vec();
    if arp::reply_in_place(&mut f, B).is_ok() {
        assert_eq!(arp::classify(&f).map(|i| i.op), Ok(ArpOperation::Reply));
    } else {
        assert_eq!(f, frame, "unchanged on error");
    }
    let mut f = frame.to_vec();
    f.resize(frame.len().max(nd::ND_FRAME_LEN), 0);
    let before = f.clone();
    match nd::advert_in_place(&mut f, B) {
        Ok(n) => assert!(nd::classify(&f[..n]).is_ok(), "the advertisement is valid"),
        Err(_) => assert_eq!(f, before, "unchanged on error"),
    }
    let mut f = frame.to_vec();
    if icmp::echo_reply_in_place(&mut f, l3).is_err() {
        assert_eq!(f, frame, "unchanged on error");
    }
}

proptest! {
    #[test]
    fn responders_never_panic(frame in frames(), l3 in prop_oneof![Just(14usize), Just(18), 0usize..200]) {
        respond_all(&frame, l3);
    }

    #[test]
    fn error_builders_never_panic(data in frames(), skip in 0usize..20, out_len in 0usize..1600, v in 0u8..9) {
        let offending = data.get(skip.min(data.len())..).unwrap_or(&[]);
        let mut out = vec![0u8; out_len];
        let k4 = [
            Icmpv4ErrorKind::TimeExceeded,
            Icmpv4ErrorKind::FragNeeded { mtu: 1400 },
            Icmpv4ErrorKind::PortUnreachable,
            Icmpv4ErrorKind::ParamProblem { pointer: 3 },
        ][v as usize % 4];
        if let Ok(n) = icmp::build_error_v4(&mut out, Ipv4Addr::new(10, 0, 0, 5), offending, k4) {
            prop_assert!((28..=icmp::MAX_ERROR_LEN_V4).contains(&n) && n <= out_len);
        }
        let k6 = [
            Icmpv6ErrorKind::TimeExceeded,
            Icmpv6ErrorKind::PacketTooBig { mtu: 1280 },
            Icmpv6ErrorKind::ParamProblem { code: 2, pointer: 40 },
        ][v as usize % 3];
        match icmp::build_error_v6(&mut out, "2001:db8::5".parse().unwrap(), offending, k6) {
            Ok(n) => prop_assert!((48..=icmp::MAX_ERROR_LEN_V6).contains(&n) && n <= out_len),
            Err(PacketError::BufferTooSmall { need, have }) => prop_assert!(need > have),
            Err(_) => {}
        }
    }

    #[test]
    fn builders_never_panic(out_len in 0usize..100, ip in any::<u32>(), ip6 in any::<u128>()) {
        let mut out = vec![0u8; out_len];
        let (a4, a6) = (Ipv4Addr::from(ip), Ipv6Addr::from(ip6));
        for r in [
            arp::build_request(&mut out, B, a4, a4),
            arp::build_gratuitous(&mut out, B, a4),
            nd::build_solicit(&mut out, B, a6, a6),
            nd::build_unsolicited_na(&mut out, B, a6),
        ] {
            prop_assert_eq!(r.is_ok(), r.is_ok_and(|n| n <= out_len));
        }
    }
}

#[test]
fn seeds_are_answered() {
    let s = seeds();
    let mut f = s[0].clone();
    arp::reply_in_place(&mut f, B).unwrap();
    let mut f = s[1].clone();
    nd::advert_in_place(&mut f, B).unwrap();
    let mut f = s[3].clone();
    icmp::echo_reply_in_place(&mut f, 14).unwrap();
    let mut f = s[4].clone();
    icmp::echo_reply_in_place(&mut f, 18).unwrap();
    let mut f = s[5].clone();
    icmp::echo_reply_in_place(&mut f, 14).unwrap();
}
