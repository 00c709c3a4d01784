//! Packet capture without the copy penalty of forward2kni: while a capture runs, the
//! workers copy the frames that match its filter onto a ring (formatted by DPDK's
//! pcapng library) and the control thread writes them with DPDK's pcapng writer (which
//! tshark and Wireshark read); while none runs, the cost is one flag test per packet.
//!
//! The filter is tcpdump's language, compiled by libpcap as `dpdk-dumpcap` compiles it
//! and run per frame by libpcap's BPF interpreter ([`dpdk::bpf::Filter`]), only on the
//! ports and directions a capture runs on.

/// The snap length filters are compiled for (tcpdump's default): rvs copies whole frames.
pub const SNAPLEN: u32 = 262_144;

/// Compiles a capture filter: tcpdump's whole language, by libpcap (an empty
/// expression matches everything). A refusal carries libpcap's message.
pub fn compile_filter(expr: &str) -> Result<dpdk::bpf::Filter, dpdk::bpf::FilterError> {
    dpdk::bpf::Filter::new(expr, SNAPLEN)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use wire::builder::PacketBuilder;
    use wire::{EthernetAddress, TcpFlags};

    fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
        let m = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let b = PacketBuilder::eth(m, m);
        match (src.parse::<IpAddr>().unwrap(), dst.parse::<IpAddr>().unwrap()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s, d).tcp(sport, dport).flags(TcpFlags::SYN).build(),
            (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s, d).tcp(sport, dport).flags(TcpFlags::SYN).build(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn filters_are_libpcaps() {
        let syn = tcp("198.18.0.2", 40000, "198.18.0.100", 80);
        let syn6 = tcp("2001:db8:18::2", 40000, "2001:db8:18::100", 80);
        let cases: &[(&str, bool, bool)] = &[
            ("", true, true),
            ("tcp[tcpflags] & tcp-syn != 0 and dst port 80", true, false),
            ("ip6 and tcp", false, true),
            ("host 198.18.0.100 or net 2001:db8:18::/64", true, true),
            ("tcp src portrange 39000-41000 and not port 22", true, true),
        ];
        for (f, v4, v6) in cases {
            let p = compile_filter(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(p.matches_bytes(&syn, syn.len()), *v4, "{f} on IPv4");
            assert_eq!(p.matches_bytes(&syn6, syn6.len()), *v6, "{f} on IPv6");
        }
        let e = compile_filter("frobnicate").expect_err("refused");
        assert!(e.to_string().contains("libpcap"), "{e}");
    }
}
