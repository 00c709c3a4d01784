//! Parsing the values both tools take (addresses, ports, masks, numbers), with errors
//! that name the bad value.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;

/// Parses `ADDR:PORT`, `[V6ADDR]:PORT`, or an address alone (port `None`); a bare IPv6
/// address needs no brackets. `what` names the value in errors.
pub fn parse_addr_port(s: &str, what: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || format!("bad {what} '{s}' (expected ADDR:PORT, or [IPV6]:PORT)");
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().map(|a| (IpAddr::V6(a), None)).map_err(|_| bad());
    }
    // ADDR:PORT with a valid address but a bad port gets a sharper message.
    if let Some((a, p)) = s.rsplit_once(':') {
        let a = a.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(a);
        if a.parse::<IpAddr>().is_ok() {
            return Err(format!("bad port '{p}' in {what} '{s}' (expected 0..=65535)"));
        }
    }
    Err(bad())
}

/// [`parse_addr_port`] that also takes names, as ipvsadm does: a host name (resolved by
/// the system resolver, `/etc/hosts` first; its first address) and a service name
/// (`/etc/services`, for `proto` `tcp` or `udp`), e.g. `web:http`.
pub fn parse_addr_port_named(s: &str, what: &str, proto: &str) -> Result<(IpAddr, Option<u16>), String> {
    let numeric = parse_addr_port(s, what);
    if numeric.is_ok() {
        return numeric;
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    };
    // A mistyped numeric address or port is a bad number, not a name to look up.
    let host_numeric = host.parse::<IpAddr>().is_ok() || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let port_numeric = port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || host.starts_with('[') || (host_numeric && port_numeric) {
        return numeric;
    }
    let port = match port {
        None => None,
        Some(p) => Some(match p.parse::<u16>() {
            Ok(n) => n,
            Err(_) => service_port(p, proto)
                .ok_or_else(|| format!("unknown service '{p}' in {what} '{s}' (not in /etc/services for {proto})"))?,
        }),
    };
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            use std::net::ToSocketAddrs;
            let mut addrs = (host, 0)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve host '{host}' in {what} '{s}': {e}"))?;
            addrs.next().ok_or_else(|| format!("host '{host}' in {what} '{s}' has no address"))?.ip()
        }
    };
    Ok((ip, port))
}

/// The port of service `name` for `proto` in `/etc/services`.
fn service_port(name: &str, proto: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    services_lookup(&text, name, proto)
}

/// `name`'s port for `proto` in services(5) text (the name or one of its aliases).
fn services_lookup(text: &str, name: &str, proto: &str) -> Option<u16> {
    text.lines().find_map(|l| {
        let mut w = l.split('#').next()?.split_whitespace();
        let (svc, pp) = (w.next()?, w.next()?);
        let (port, p) = pp.split_once('/')?;
        (p == proto && (svc == name || w.any(|a| a == name))).then(|| port.parse().ok()).flatten()
    })
}

/// Parses a whole number in `min..=max`; `what` names it in errors.
pub fn parse_num(s: &str, what: &str, min: u64, max: u64) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{what} {v} out of range ({min}..={max})")),
        Err(_) => Err(format!("bad {what} '{s}' (expected a number {min}..={max})")),
    }
}

/// Parses a firewall mark (`rvsadm -f MARK`, `rvsip fwmark add MARK`): an integer
/// 1..=4294967295, decimal as ipvsadm's `parse_fwmark` reads it (a leading 0 is not
/// octal), or hexadecimal after `0x` as iptables' `--set-mark` is often written. The
/// error names the value.
pub fn parse_fwmark(s: &str) -> Result<u32, String> {
    const RANGE: &str = "1..=4294967295";
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    if !valid {
        return Err(format!("invalid fwmark value '{s}' (expected an integer {RANGE}, decimal or 0x hex)"));
    }
    match u32::from_str_radix(digits, radix) {
        Ok(0) => Err(format!("fwmark {s} is no mark (expected {RANGE})")),
        Ok(m) => Ok(m),
        Err(_) => Err(format!("fwmark {s} out of range ({RANGE})")),
    }
}

/// Parses a persistence netmask: for IPv4 a dotted mask (`255.255.255.0`) or a prefix
/// length (`24`), for IPv6 a prefix length (`64`). Returns the prefix length.
pub fn parse_netmask(s: &str, v6: bool) -> Result<u8, String> {
    let max: u64 = if v6 { 128 } else { 32 };
    if let Ok(len) = s.parse::<u64>() {
        return match len {
            1.. if len <= max => Ok(len as u8),
            _ => Err(format!("netmask /{len} out of range (1..={max})")),
        };
    }
    if v6 {
        return Err(format!("bad netmask '{s}' (an IPv6 service takes a prefix length 1..=128)"));
    }
    let m: Ipv4Addr = s.parse().map_err(|_| format!("bad netmask '{s}' (expected 255.255.255.0 or 24)"))?;
    let bits = u32::from(m);
    let len = bits.leading_ones();
    if len == 0 || bits.checked_shl(len).unwrap_or(0) != 0 {
        return Err(format!("bad netmask '{s}' (the mask must be contiguous and not empty)"));
    }
    Ok(len as u8)
}

/// The dotted IPv4 mask of a prefix length (`24` → `255.255.255.0`).
pub fn dotted_mask(len: u8) -> Ipv4Addr {
    let len = u32::from(len.min(32));
    Ipv4Addr::from(if len == 0 { 0 } else { u32::MAX << (32 - len) })
}

/// Parses `ADDR[/LEN]`; without a length it is a host prefix (/32 or /128). Host bits
/// must be clear when `network` is set (routes), may be set otherwise (addresses).
pub fn parse_prefix(s: &str, what: &str, network: bool) -> Result<IpNet, String> {
    let net: IpNet = if s.contains('/') {
        s.parse().map_err(|_| format!("bad {what} '{s}' (expected ADDR/LEN)"))?
    } else {
        let ip: IpAddr = s.parse().map_err(|_| format!("bad {what} '{s}' (expected ADDR or ADDR/LEN)"))?;
        IpNet::from(ip)
    };
    if network && net.trunc() != net {
        return Err(format!("{what} {net} has host bits set (did you mean {}?)", net.trunc()));
    }
    Ok(net)
}

/// Parses an IP address; `what` names it in errors.
pub fn parse_ip(s: &str, what: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("bad {what} '{s}' (expected an IPv4 or IPv6 address)"))
}

/// `addr:port`, with brackets around IPv6 (`[2001:db8::1]:80`), as ipvsadm prints.
pub fn addr_port(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_ipvsadm_does() {
        let text = "http\t\t80/tcp\t\twww # WorldWideWeb HTTP\ndomain\t\t53/udp\n";
        assert_eq!(services_lookup(text, "http", "tcp"), Some(80));
        assert_eq!(services_lookup(text, "www", "tcp"), Some(80), "an alias");
        assert_eq!(services_lookup(text, "http", "udp"), None);
        assert_eq!(services_lookup(text, "domain", "udp"), Some(53));
        let (ip, port) = parse_addr_port_named("localhost:80", "service address", "tcp").unwrap();
        assert!(ip.is_loopback() && port == Some(80), "{ip} {port:?}");
        assert_eq!(
            parse_addr_port_named("192.0.2.1:81", "x", "tcp").unwrap(),
            ("192.0.2.1".parse().unwrap(), Some(81))
        );
        let e = parse_addr_port_named("192.0.2.1:nosuchservice", "service address", "tcp").unwrap_err();
        assert!(e.contains("unknown service 'nosuchservice'"), "{e}");
        let e = parse_addr_port_named("no-such-host.invalid:80", "service address", "tcp").unwrap_err();
        assert!(e.contains("cannot resolve host 'no-such-host.invalid'"), "{e}");
    }

    #[test]
    fn addr_port_forms() {
        let v4: IpAddr = "198.18.0.100".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_addr_port("198.18.0.100:80", "x"), Ok((v4, Some(80))));
        assert_eq!(parse_addr_port("198.18.0.100", "x"), Ok((v4, None)));
        assert_eq!(parse_addr_port("[2001:db8::1]:80", "x"), Ok((v6, Some(80))));
        assert_eq!(parse_addr_port("2001:db8::1", "x"), Ok((v6, None)));
        assert_eq!(parse_addr_port("[2001:db8::1]", "x"), Ok((v6, None)));
        assert_eq!(
            parse_addr_port("198.18.0.100:99999", "service address").unwrap_err(),
            "bad port '99999' in service address '198.18.0.100:99999' (expected 0..=65535)"
        );
        assert_eq!(
            parse_addr_port("198.18.0.1000:80", "service address").unwrap_err(),
            "bad service address '198.18.0.1000:80' (expected ADDR:PORT, or [IPV6]:PORT)"
        );
    }

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("255.255.255.0", false), Ok(24));
        assert_eq!(parse_netmask("24", false), Ok(24));
        assert_eq!(parse_netmask("255.255.255.255", false), Ok(32));
        assert_eq!(parse_netmask("64", true), Ok(64));
        assert!(parse_netmask("255.0.255.0", false).unwrap_err().contains("contiguous"));
        assert!(parse_netmask("33", false).unwrap_err().contains("out of range"));
        assert!(parse_netmask("255.255.0.0", true).is_err());
        assert_eq!(dotted_mask(24).to_string(), "255.255.255.0");
        assert_eq!(dotted_mask(0).to_string(), "0.0.0.0");
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse_prefix("10.0.0.0/8", "prefix", true).unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_prefix("10.0.0.1", "prefix", true).unwrap().to_string(), "10.0.0.1/32");
        assert_eq!(parse_prefix("2001:db8::/64", "prefix", true).unwrap().to_string(), "2001:db8::/64");
        assert_eq!(
            parse_prefix("10.0.0.1/8", "prefix", true).unwrap_err(),
            "prefix 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"
        );
        assert_eq!(parse_prefix("10.0.0.1/8", "address", false).unwrap().to_string(), "10.0.0.1/8");
    }

    #[test]
    fn fwmarks_decimal_or_hex() {
        assert_eq!(parse_fwmark("1"), Ok(1));
        assert_eq!(parse_fwmark("010"), Ok(10), "decimal, as ipvsadm's strtol(.., 10)");
        assert_eq!(parse_fwmark("0x10"), Ok(16));
        assert_eq!(parse_fwmark("0XfF"), Ok(255));
        assert_eq!(parse_fwmark("4294967295"), Ok(u32::MAX));
        assert_eq!(parse_fwmark("0xffffffff"), Ok(u32::MAX));
        assert_eq!(parse_fwmark("0").unwrap_err(), "fwmark 0 is no mark (expected 1..=4294967295)");
        assert_eq!(parse_fwmark("0x0").unwrap_err(), "fwmark 0x0 is no mark (expected 1..=4294967295)");
        assert_eq!(parse_fwmark("4294967296").unwrap_err(), "fwmark 4294967296 out of range (1..=4294967295)");
        assert_eq!(parse_fwmark("0x100000000").unwrap_err(), "fwmark 0x100000000 out of range (1..=4294967295)");
        for bad in ["", "x", "-1", "+1", "1.5", "0x", "0xg", " 1", "1k", "0b1"] {
            assert_eq!(
                parse_fwmark(bad).unwrap_err(),
                format!("invalid fwmark value '{bad}' (expected an integer 1..=4294967295, decimal or 0x hex)"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_num("3", "weight", 0, 65535), Ok(3));
        assert_eq!(parse_num("70000", "weight", 0, 65535).unwrap_err(), "weight 70000 out of range (0..=65535)");
        assert_eq!(parse_num("x", "weight", 0, 65535).unwrap_err(), "bad weight 'x' (expected a number 0..=65535)");
    }
}
