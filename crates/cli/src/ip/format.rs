//! rvsip's output, in dpip's forms.

use std::io::{self, Write};
use std::time::Duration;

use ctl::{AddrView, LinkView, NeighView, RouteScope, RouteSpec, VlanView, WorkerView};
use fnat::fwmark::FwmarkRule;

use crate::rate;

/// dpip's `link show`: three lines per port, and with `stats` dpip's counter block plus
/// packets per queue.
pub fn write_links(out: &mut dyn Write, links: &[LinkView], stats: bool, verbose: bool) -> io::Result<()> {
    for l in links {
        writeln!(
            out,
            "{}: {}: socket {} mtu {} rx-queue {} tx-queue {}",
            u32::from(l.id) + 1,
            l.name,
            l.socket,
            l.mtu,
            l.rx_queues,
            l.tx_queues
        )?;
        writeln!(
            out,
            "    {} {} Mbps {} promisc-{} forward2kni-{}",
            if l.up { "UP" } else { "DOWN" },
            l.speed_mbps,
            if l.full_duplex { "full-duplex" } else { "half-duplex" },
            on_off(l.promisc),
            on_off(l.forward2kni)
        )?;
        writeln!(out, "    addr {} driver {}", l.mac, l.driver)?;
        if verbose {
            writeln!(out, "    device {}", l.device)?;
        }
        if let Some(b) = &l.bond {
            match &b.xmit_policy {
                Some(x) => write!(out, "    bond mode {} xmit {x} slaves:", b.mode)?,
                None => write!(out, "    bond mode {} slaves:", b.mode)?,
            }
            for (i, s) in b.slaves.iter().enumerate() {
                let role = if s.active { "active" } else { "backup" };
                let primary = if b.primary == Some(i) { ",primary" } else { "" };
                write!(out, " {} ({role},{}{primary})", s.device, if s.up { "up" } else { "down" })?;
            }
            writeln!(out)?;
        }
        if !stats {
            continue;
        }
        let Some(s) = &l.stats else {
            writeln!(out, "    (no counters in the reply)")?;
            continue;
        };
        let row = |out: &mut dyn Write, cells: [String; 4]| -> io::Result<()> {
            writeln!(out, "    {:<20}{:<20}{:<20}{:<20}", cells[0], cells[1], cells[2], cells[3])
        };
        row(out, ["ipackets".into(), "opackets".into(), "ibytes".into(), "obytes".into()])?;
        row(out, [s.ipackets.to_string(), s.opackets.to_string(), s.ibytes.to_string(), s.obytes.to_string()])?;
        row(out, ["ierrors".into(), "oerrors".into(), "imissed".into(), "rx_nombuf".into()])?;
        row(out, [s.ierrors.to_string(), s.oerrors.to_string(), s.imissed.to_string(), s.rx_nombuf.to_string()])?;
        let queues = s.q_ipackets.len().max(s.q_opackets.len());
        if queues > 0 {
            writeln!(out, "    {:<20}{:<20}{:<20}", "queue", "ipackets", "opackets")?;
            let cell = |v: &[u64], i: usize| v.get(i).map_or_else(|| "-".to_string(), u64::to_string);
            for q in 0..queues {
                writeln!(out, "    {:<20}{:<20}{:<20}", q, cell(&s.q_ipackets, q), cell(&s.q_opackets, q))?;
            }
        }
    }
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn inet(a: std::net::IpAddr) -> &'static str {
    if a.is_ipv4() {
        "inet"
    } else {
        "inet6"
    }
}

/// dpip's `addr show`: `inet ADDR/LEN scope global DEV`, then the lifetimes and flags
/// (`sapool`, `vip`).
pub fn write_addrs(out: &mut dyn Write, addrs: &[AddrView]) -> io::Result<()> {
    for a in addrs {
        writeln!(out, "{} {} scope global {}", inet(a.addr.addr()), a.addr, a.dev)?;
        let mut flags = String::new();
        if a.sapool {
            flags += " sapool";
        }
        if a.vip {
            flags += " vip";
        }
        writeln!(out, "     valid_lft forever preferred_lft forever{flags}")?;
    }
    Ok(())
}

/// The scope's name as dpip spells it.
pub fn scope_name(s: RouteScope) -> &'static str {
    match s {
        RouteScope::Global => "global",
        RouteScope::Link => "link",
        RouteScope::KniHost => "kni_host",
    }
}

/// dpip's `route show`: `inet PREFIX via GW src ADDR dev DEV scope S metric N proto P`
/// (`proto auto` for routes derived from an address, `static` for configured ones).
pub fn write_routes(out: &mut dyn Write, routes: &[RouteSpec]) -> io::Result<()> {
    for r in routes {
        let any = if r.prefix.addr().is_ipv4() { "0.0.0.0" } else { "::" };
        let via = r.via.map_or_else(|| any.to_string(), |a| a.to_string());
        let src = r.src.map_or_else(|| any.to_string(), |a| a.to_string());
        writeln!(
            out,
            "{} {} via {via} src {src} dev {} scope {} metric {} proto {}",
            inet(r.prefix.addr()),
            r.prefix,
            r.dev,
            scope_name(r.scope),
            r.metric,
            if r.connected { "auto" } else { "static" }
        )?;
    }
    Ok(())
}

/// dpip's `neigh show`: `ip: ADDR mac: MAC state: STATE dev: DEV`.
pub fn write_neighs(out: &mut dyn Write, neighs: &[NeighView]) -> io::Result<()> {
    for n in neighs {
        writeln!(
            out,
            "ip: {:<48} mac: {}   state: {:<12}  dev: {}",
            n.addr.to_string(),
            n.mac,
            n.state.to_uppercase(),
            n.dev
        )?;
    }
    Ok(())
}

/// VLAN sub-interfaces, one line each, as dpip prints them.
pub fn write_vlans(out: &mut dyn Write, vlans: &[VlanView]) -> io::Result<()> {
    for v in vlans {
        writeln!(out, "{} link {} proto 802.1q id {}", v.name, v.link, v.id)?;
    }
    Ok(())
}

/// The fwmark rules, one per line in the order they are tried: `mark 1
/// proto=tcp,dst-range=192.0.2.1:80-443` (nothing when there is none).
pub fn write_fwmarks(out: &mut dyn Write, rules: &[FwmarkRule]) -> io::Result<()> {
    for r in rules {
        writeln!(out, "{r}")?;
    }
    Ok(())
}

fn drops_line(out: &mut dyn Write, w: &WorkerView) -> io::Result<()> {
    let t = w.tables;
    if t != Default::default() {
        writeln!(out, "       conns: half_open={} unproven={} synced={}", t.half_open, t.unproven, t.synced)?;
    }
    let drops: Vec<String> = w.drops.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k}={v}")).collect();
    if !drops.is_empty() {
        writeln!(out, "       drops: {}", drops.join(" "))?;
    }
    Ok(())
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_string();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// `rvsip stats --once`: lifetime totals per worker; busy is the share of loop
/// iterations that received packets.
pub fn write_workers_once(out: &mut dyn Write, ws: &[WorkerView]) -> io::Result<()> {
    writeln!(
        out,
        "{:<6} {:<5} {:>8} {:>12} {:>12} {:>10} {:>14} {:>6}",
        "Worker", "Lcore", "Gen", "RxPkts", "TxPkts", "Conns", "Loops", "Busy"
    )?;
    for w in ws {
        writeln!(
            out,
            "{:<6} {:<5} {:>8} {:>12} {:>12} {:>10} {:>14} {:>6}",
            w.id,
            w.lcore,
            w.gen,
            w.rx_packets,
            w.tx_packets,
            w.conns,
            w.loops,
            percent(w.busy_loops, w.loops)
        )?;
        drops_line(out, w)?;
    }
    Ok(())
}

/// `rvsip stats`: totals from the second sample, and rates per second between the two
/// samples (packets, loops, busy share of the loops in between).
pub fn write_workers_rates(
    out: &mut dyn Write,
    first: &[WorkerView],
    second: &[WorkerView],
    dt: Duration,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<6} {:<5} {:>8} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>6}",
        "Worker", "Lcore", "Gen", "RxPkts", "TxPkts", "Conns", "RxPPS", "TxPPS", "Loops/s", "Busy"
    )?;
    for w in second {
        let a = first.iter().find(|f| f.id == w.id).unwrap_or(w);
        writeln!(
            out,
            "{:<6} {:<5} {:>8} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>6}",
            w.id,
            w.lcore,
            w.gen,
            w.rx_packets,
            w.tx_packets,
            w.conns,
            rate(a.rx_packets, w.rx_packets, dt),
            rate(a.tx_packets, w.tx_packets, dt),
            rate(a.loops, w.loops, dt),
            percent(w.busy_loops.saturating_sub(a.busy_loops), w.loops.saturating_sub(a.loops))
        )?;
        drops_line(out, w)?;
    }
    Ok(())
}
