//! Packet capture without the copy penalty of forward2kni: while a capture runs, the
//! workers copy the frames that match its filter onto a ring and the control thread
//! writes them as pcapng (which tshark and Wireshark read); while none runs, the cost
//! is one flag test per packet.
//!
//! The filter is tcpdump's language, compiled by libpcap as `dpdk-dumpcap` compiles it
//! and run per frame by libpcap's BPF interpreter ([`dpdk::bpf::Filter`]), only on the
//! ports and directions a capture runs on.

use std::io::Write;

/// The snap length filters are compiled for (tcpdump's default): rvs copies whole frames.
pub const SNAPLEN: u32 = 262_144;

/// Compiles a capture filter: tcpdump's whole language, by libpcap (an empty
/// expression matches everything). A refusal carries libpcap's message.
pub fn compile_filter(expr: &str) -> Result<dpdk::bpf::Filter, dpdk::bpf::FilterError> {
    dpdk::bpf::Filter::new(expr, SNAPLEN)
}

/// Writes pcapng: a section header, one Ethernet interface, and an enhanced packet
/// block per frame (microsecond timestamps).
pub struct PcapngWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a file for an Ethernet interface named `ifname`.
    pub fn new(mut out: W, ifname: &str) -> std::io::Result<PcapngWriter<W>> {
        // Section header block.
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut out, 0x0A0D0D0A, &shb)?;
        // Interface description block: Ethernet, no snap length limit, if_name option.
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        option(&mut idb, 2, ifname.as_bytes());
        option(&mut idb, 0, &[]);
        block(&mut out, 1, &idb)?;
        Ok(PcapngWriter { out })
    }

    /// Appends one frame captured at `micros` since the epoch.
    pub fn write(&mut self, frame: &[u8], micros: u64) -> std::io::Result<()> {
        let mut epb = Vec::with_capacity(20 + frame.len() + 3);
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(micros as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        while !epb.len().is_multiple_of(4) {
            epb.push(0);
        }
        block(&mut self.out, 6, &epb)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn block<W: Write>(out: &mut W, kind: u32, body: &[u8]) -> std::io::Result<()> {
    let len = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&len.to_le_bytes())
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

    #[test]
    fn pcapng_is_read_back_by_etherparse_frames() {
        let mut w = PcapngWriter::new(Vec::new(), "dpdk0").unwrap();
        let f = tcp("198.18.0.2", 40000, "198.18.0.100", 80);
        w.write(&f, 1_700_000_000_000_000).unwrap();
        let out = w.finish().unwrap();
        // SHB, IDB, EPB; every block length is a multiple of 4 and repeated at its end.
        let mut off = 0;
        let mut kinds = Vec::new();
        while off < out.len() {
            let kind = u32::from_le_bytes(out[off..off + 4].try_into().unwrap());
            let len = u32::from_le_bytes(out[off + 4..off + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32::from_le_bytes(out[off + len - 4..off + len].try_into().unwrap()) as usize, len);
            kinds.push(kind);
            if kind == 6 {
                assert_eq!(&out[off + 28..off + 28 + f.len()], &f[..]);
            }
            off += len;
        }
        assert_eq!(kinds, vec![0x0A0D0D0A, 1, 6]);
    }
}
