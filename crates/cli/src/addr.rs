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

/// Parses a whole number in `min..=max`; `what` names it in errors.
pub fn parse_num(s: &str, what: &str, min: u64, max: u64) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{what} {v} out of range ({min}..={max})")),
        Err(_) => Err(format!("bad {what} '{s}' (expected a number {min}..={max})")),
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
    fn numbers() {
        assert_eq!(parse_num("3", "weight", 0, 65535), Ok(3));
        assert_eq!(parse_num("70000", "weight", 0, 65535).unwrap_err(), "weight 70000 out of range (0..=65535)");
        assert_eq!(parse_num("x", "weight", 0, 65535).unwrap_err(), "bad weight 'x' (expected a number 0..=65535)");
    }
}
