//! rvsadm's output: ipvsadm 1.31's listing formats, DPVS's connection and local-address
//! listings, and the `-S` rules.

use std::io::{self, Write};
use std::time::Duration;

use ctl::{RealServerView, ServiceView};
use fnat::engine::listing::ConnInfo;
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig, ServiceKey};
use fnat::stats::Counters;
use fnat::synproxy::SynProxyMode;
use fnat::tcp_state::Timeouts;
use fnat::types::{FwdMode, Proto};

use super::{ListOpts, View};
use crate::addr::{addr_port, dotted_mask};
use crate::rate;

/// The first line of a listing (ipvsadm: `IP Virtual Server version 1.2.1 (size=4096)`).
pub fn header_line(version: &str, conn_pool_size: u32) -> String {
    format!("rvs {version} (conn pool size={conn_pool_size} per worker)")
}

/// ipvsadm's `print_largenum`: 9 columns, scaled to K/M/G/T past 100 million unless
/// `exact`.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>w$}");
    }
    match i {
        0..100_000_000 => format!("{i:>9}"),
        100_000_000..1_000_000_000 => format!("{:>8}K", i / 1_000),
        1_000_000_000..100_000_000_000 => format!("{:>8}M", i / 1_000_000),
        100_000_000_000..100_000_000_000_000 => format!("{:>8}G", i / 1_000_000_000),
        _ => format!("{:>8}T", i / 1_000_000_000_000),
    }
}

fn proto_upper(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
        Proto::Icmp => "ICMP",
    }
}

/// A service's protocol switch (services are TCP or UDP: rvsd refuses others).
fn proto_switch(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "-t",
        Proto::Udp | Proto::Icmp => "-u",
    }
}

/// `TCP  198.18.0.100:80` (two blanks, as ipvsadm); a firewall-mark service `FWM  1`,
/// an IPv6 one `FWM  1 IPv6`, as ipvsadm.
pub fn service_name(key: &ServiceKey) -> String {
    match fwmark_name(key) {
        Some(m) => format!("FWM  {m}"),
        None => format!("{}  {}", proto_upper(key.proto), addr_port(key.vip, key.vport)),
    }
}

/// A firewall-mark service's mark as listings show it (`1`, `1 IPv6`); None for a
/// VIP:port service.
fn fwmark_name(key: &ServiceKey) -> Option<String> {
    match (key.fwmark, key.vip.is_ipv6()) {
        (0, _) => None,
        (m, false) => Some(m.to_string()),
        (m, true) => Some(format!("{m} IPv6")),
    }
}

/// The service in a `-S` rule: `-t 198.18.0.100:80`, `-u [2001:db8::1]:53`, `-f 1`,
/// `-f 1 -6` (ipvsadm's forms).
pub fn service_rule(key: &ServiceKey) -> String {
    match (key.fwmark, key.vip.is_ipv6()) {
        (0, _) => format!("{} {}", proto_switch(key.proto), addr_port(key.vip, key.vport)),
        (m, false) => format!("-f {m}"),
        (m, true) => format!("-f {m} -6"),
    }
}

/// The service in DPVS's `-G` listing's `VIP:VPORT` column (`FWM  1` for a fwmark one).
fn vip_vport(key: &ServiceKey) -> String {
    match fwmark_name(key) {
        Some(m) => format!("FWM  {m}"),
        None => addr_port(key.vip, key.vport),
    }
}

/// The port a real server really uses: its own, or the service's when 0.
fn rs_port(rs: &RealServerConfig, vport: u16) -> u16 {
    if rs.port == 0 {
        vport
    } else {
        rs.port
    }
}

/// How the flags of a hashing scheduler are named (`sh-` for `sh-fallback`; conhash's,
/// which ipvsadm never named, plainly: `fallback`); None for the others, which take none.
fn flag_prefix(s: SchedKind) -> Option<String> {
    match s {
        SchedKind::Sh | SchedKind::Dh | SchedKind::Mh => Some(format!("{s}-")),
        SchedKind::Conhash => Some(String::new()),
        _ => None,
    }
}

/// The flags set, named with `prefix` (`sh-fallback`, `sh-port`), comma-separated;
/// empty when none is.
fn flag_list(svc: &ServiceConfig, prefix: &str) -> String {
    let f: Vec<String> = [(svc.hash_fallback, "fallback"), (svc.hash_port, "port")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| format!("{prefix}{name}"))
        .collect();
    f.join(",")
}

/// The scheduler flags as ipvsadm lists them (`sh-fallback,sh-port`), for hash
/// schedulers only.
fn sched_flags(svc: &ServiceConfig) -> Option<String> {
    let f = flag_list(svc, &flag_prefix(svc.sched)?);
    (!f.is_empty()).then_some(f)
}

/// `--sched-flags` for `-S`, when the flags differ from the default (fallback on, port
/// off).
fn sched_flags_rule(svc: &ServiceConfig) -> Option<String> {
    if !svc.hash_port && svc.hash_fallback {
        return None;
    }
    let f = flag_list(svc, &flag_prefix(svc.sched).unwrap_or_default());
    Some(if f.is_empty() { "none".to_string() } else { f })
}

/// DPVS lists conhash's hash target after it (` sip`: the client's address; rvs has no
/// other).
fn hash_target(s: SchedKind) -> &'static str {
    if s == SchedKind::Conhash {
        " sip"
    } else {
        ""
    }
}

/// The SYN proxy setting as DPVS's ipvsadm lists it (` synproxy` when on; rvs adds
/// ` synproxy off` and ` synproxy auto` when set so), or as a `-S` rule (` -j ...`).
fn synproxy(svc: &ServiceConfig, rule: bool) -> String {
    match (svc.synproxy, rule) {
        (None, _) => String::new(),
        (Some(SynProxyMode::On), false) => " synproxy".into(),
        (Some(m), false) => format!(" synproxy {m}"),
        (Some(SynProxyMode::On), true) => " -j enable".into(),
        (Some(SynProxyMode::Off), true) => " -j disable".into(),
        (Some(SynProxyMode::Auto), true) => " -j auto".into(),
    }
}

/// The service's own connection timeout as DPVS's ipvsadm lists it (` conn-timeout
/// 3600`), or as a `-S` rule (` --conn-timeout 3600`); nothing when it has none.
fn conn_timeout(svc: &ServiceConfig, rule: bool) -> String {
    match (svc.conn_timeout, rule) {
        (0, _) => String::new(),
        (t, false) => format!(" conn-timeout {t}"),
        (t, true) => format!(" --conn-timeout {t}"),
    }
}

/// What becomes of a failing or drained server's connections, as DPVS's ipvsadm lists it
/// (` expire-quiescent dest-check internal:default`), or as a `-S` rule
/// (` --expire-quiescent --dest-check default`); nothing when neither is on.
fn quiescent_and_check(svc: &ServiceConfig, rule: bool) -> String {
    let quiescent = match (svc.expire_quiescent, rule) {
        (false, _) => "",
        (true, false) => " expire-quiescent",
        (true, true) => " --expire-quiescent",
    };
    let check = match (svc.dest_check, rule) {
        (None, _) => String::new(),
        (Some(c), false) => format!(" dest-check internal:{c}"),
        (Some(c), true) => format!(" --dest-check {c}"),
    };
    format!("{quiescent}{check}")
}

/// The client-address settings: the PROXY protocol as DPVS's ipvsadm lists it (` ppv1`,
/// ` ppv2`), or as a `-S` rule (` --proxy-protocol v2`); nothing when off.
/// The UOA setting likewise (` uoa-opp`, ` --uoa opp`).
fn proxy_protocol(svc: &ServiceConfig, rule: bool) -> String {
    let pp = match (svc.proxy_protocol, rule) {
        (None, _) => String::new(),
        (Some(v), false) => format!(" pp{v}"),
        (Some(v), true) => format!(" --proxy-protocol {v}"),
    };
    let uoa = match (svc.uoa, rule) {
        (None, _) => String::new(),
        (Some(m), false) => format!(" uoa-{m}"),
        (Some(m), true) => format!(" --uoa {m}"),
    };
    pp + &uoa
}

/// ` persistent 300 mask 255.255.255.0` (mask only when not the full address).
fn persistence(svc: &ServiceConfig, rule: bool) -> String {
    let Some(p) = &svc.persistence else { return String::new() };
    let (pk, mk) = if rule { ("-p", "-M") } else { ("persistent", "mask") };
    let mut s = format!(" {pk} {}", p.timeout_s);
    if svc.vip.is_ipv4() && p.netmask_v4 < 32 {
        s += &format!(" {mk} {}", dotted_mask(p.netmask_v4));
    } else if svc.vip.is_ipv6() && p.netmask_v6 < 128 {
        s += &format!(" {mk} {}", p.netmask_v6);
    }
    s
}

/// One-packet scheduling as ipvsadm lists it (` ops`) or as a `-S` rule (` -o`).
fn ops(svc: &ServiceConfig, rule: bool) -> &'static str {
    match (svc.ops, rule) {
        (false, _) => "",
        (true, false) => " ops",
        (true, true) => " -o",
    }
}

/// Services sort by family, protocol, address and port; firewall-mark services after
/// them by mark, then family (libipvs's order puts the mark first).
fn sort_key(k: &ServiceKey) -> (u32, bool, Proto, std::net::IpAddr, u16) {
    (k.fwmark, k.vip.is_ipv6(), k.proto, k.vip, k.vport)
}

fn ordered(svcs: &[ServiceView], sort: bool) -> Vec<&ServiceView> {
    let mut v: Vec<&ServiceView> = svcs.iter().collect();
    if sort {
        v.sort_by_key(|s| sort_key(&s.service.key()));
    }
    v
}

fn ordered_dests(s: &ServiceView, sort: bool) -> Vec<&RealServerView> {
    let mut v: Vec<&RealServerView> = s.dests.iter().collect();
    if sort {
        v.sort_by_key(|d| (d.config.addr, rs_port(&d.config, s.service.vport)));
    }
    v
}

/// The services in ipvsadm's `-L -n` formats (plain, `--stats`, `--rate`,
/// `--thresholds`).
pub fn write_services(
    out: &mut dyn Write,
    header: Option<&str>,
    svcs: &[ServiceView],
    opts: &ListOpts,
) -> io::Result<()> {
    if let Some(h) = header {
        writeln!(out, "{h}")?;
    }
    let t = "Prot LocalAddress:Port";
    match opts.view {
        View::Plain => {
            writeln!(out, "{t} Scheduler Flags")?;
            writeln!(out, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")?;
        }
        View::Stats => {
            writeln!(
                out,
                "{t:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            )?;
            writeln!(out, "  -> RemoteAddress:Port")?;
        }
        View::Rate => {
            writeln!(out, "{t:<33} {:>8} {:>8} {:>8} {:>8} {:>8}", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")?;
            writeln!(out, "  -> RemoteAddress:Port")?;
        }
        View::Thresholds => {
            writeln!(
                out,
                "{t:<33} {:<10} {:<10} {:<10} {:<10}",
                "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            )?;
            writeln!(out, "  -> RemoteAddress:Port")?;
        }
        View::PersistConn => {
            writeln!(out, "{t:<33} {:<9} {:<11} {:<10} {:<10}", "Weight", "PersistConn", "ActiveConn", "InActConn")?;
            writeln!(out, "  -> RemoteAddress:Port")?;
        }
    }
    let n = |v: u64| largenum(v, opts.exact);
    for s in ordered(svcs, opts.sort) {
        let cfg = &s.service;
        let name = service_name(&cfg.key());
        let st = s.stats.unwrap_or_default();
        match opts.view {
            View::Stats | View::Rate => {
                writeln!(
                    out,
                    "{name:<33}{}{}{}{}{}",
                    n(st.conns),
                    n(st.pkts_in),
                    n(st.pkts_out),
                    n(st.bytes_in),
                    n(st.bytes_out)
                )?;
            }
            View::Plain | View::Thresholds | View::PersistConn => {
                let flags = sched_flags(cfg).map(|f| format!(" ({f})")).unwrap_or_default();
                writeln!(
                    out,
                    "{name} {}{}{flags}{}{}{}{}{}{}",
                    cfg.sched,
                    hash_target(cfg.sched),
                    persistence(cfg, false),
                    ops(cfg, false),
                    synproxy(cfg, false),
                    conn_timeout(cfg, false),
                    proxy_protocol(cfg, false),
                    quiescent_and_check(cfg, false)
                )?;
            }
        }
        for d in ordered_dests(s, opts.sort) {
            let dname = addr_port(d.config.addr, rs_port(&d.config, cfg.vport));
            let ds = d.stats.unwrap_or_default();
            match opts.view {
                View::Plain => writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    d.config.fwd.listed(),
                    // What schedules: 0 while the passive check holds it out (as DPVS).
                    if d.inhibited { 0 } else { d.config.weight },
                    d.active,
                    d.inactive
                )?,
                View::Stats => writeln!(
                    out,
                    "  -> {dname:<28}{}{}{}{}{}",
                    n(ds.conns),
                    n(ds.pkts_in),
                    n(ds.pkts_out),
                    n(ds.bytes_in),
                    n(ds.bytes_out)
                )?,
                View::Rate => writeln!(
                    out,
                    "  -> {dname:<28} {:>8} {:>8} {:>8}{}{}",
                    ds.conns,
                    ds.pkts_in,
                    ds.pkts_out,
                    n(ds.bytes_in),
                    n(ds.bytes_out)
                )?,
                View::Thresholds => writeln!(
                    out,
                    "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                    d.config.upper, d.config.lower, d.active, d.inactive
                )?,
                View::PersistConn => writeln!(
                    out,
                    "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                    if d.inhibited { 0 } else { d.config.weight },
                    d.persist,
                    d.active,
                    d.inactive
                )?,
            }
        }
    }
    Ok(())
}

fn per_second(a: &Counters, b: &Counters, dt: Duration) -> Counters {
    Counters {
        conns: rate(a.conns, b.conns, dt),
        active: b.active,
        inactive: b.inactive,
        pkts_in: rate(a.pkts_in, b.pkts_in, dt),
        pkts_out: rate(a.pkts_out, b.pkts_out, dt),
        bytes_in: rate(a.bytes_in, b.bytes_in, dt),
        bytes_out: rate(a.bytes_out, b.bytes_out, dt),
        refused: rate(a.refused, b.refused, dt),
        persist: b.persist,
    }
}

/// The second sample with its counters replaced by rates per second since the first
/// (`conns` = CPS, `pkts_in` = InPPS, ..., `bytes_out` = OutBPS). A service or server
/// absent from the first sample gets rate 0.
pub fn rates(first: &[ServiceView], second: &[ServiceView], dt: Duration) -> Vec<ServiceView> {
    second
        .iter()
        .map(|s| {
            let key = s.service.key();
            let before = first.iter().find(|f| f.service.key() == key);
            let b = s.stats.unwrap_or_default();
            let a = before.and_then(|f| f.stats).unwrap_or(b);
            let dests = s
                .dests
                .iter()
                .map(|d| {
                    let db = d.stats.unwrap_or_default();
                    let da = before
                        .and_then(|f| {
                            f.dests.iter().find(|x| x.config.addr == d.config.addr && x.config.port == d.config.port)
                        })
                        .and_then(|x| x.stats)
                        .unwrap_or(db);
                    RealServerView { stats: Some(per_second(&da, &db, dt)), ..d.clone() }
                })
                .collect();
            ServiceView { stats: Some(per_second(&a, &b, dt)), dests, ..s.clone() }
        })
        .collect()
}

/// The `-S` flag of a forwarding method (ipvsadm's, and DPVS's `-b`).
fn fwd_flag(m: FwdMode) -> &'static str {
    match m {
        FwdMode::FullNat => "-b",
        FwdMode::Nat => "-m",
        FwdMode::Dr => "-g",
        FwdMode::Tunnel => "-i",
        FwdMode::Snat => "-J",
    }
}

/// The SNAT rules as DPVS lists its match services (after the services): `MATCH
/// <match> rr`, then each WAN address as a `SNAT` real server. Per-address connection
/// counts are not in the reply; they print as `-`.
pub fn write_snat(out: &mut dyn Write, rules: &[ctl::SnatSpec]) -> io::Result<()> {
    for r in rules {
        let name = r.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        writeln!(out, "MATCH {} rr{name}", r.match_text())?;
        for w in &r.wan {
            writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                addr_port(*w, 0),
                FwdMode::Snat.listed(),
                1,
                "-",
                "-"
            )?;
        }
    }
    Ok(())
}

/// The SNAT rules as `-S` saves them, after the services: `-A -H MATCH -s rr` (with
/// rvs's `--name NAME` for a named rule), then `-a -H MATCH -r WAN:0 -J` per WAN address
/// (DPVS's commands for a match service).
pub fn write_snat_rules(out: &mut dyn Write, rules: &[ctl::SnatSpec]) -> io::Result<()> {
    for r in rules {
        let m = r.match_text();
        let name = r.name.as_deref().map(|n| format!(" --name {n}")).unwrap_or_default();
        writeln!(out, "-A -H {m} -s rr{name}")?;
        for w in &r.wan {
            writeln!(out, "-a -H {m} -r {} {}", addr_port(*w, 0), fwd_flag(FwdMode::Snat))?;
        }
    }
    Ok(())
}

/// `Timeout (tcp tcpfin udp): 900 120 300`.
pub fn write_timeouts(out: &mut dyn Write, t: &Timeouts) -> io::Result<()> {
    writeln!(out, "Timeout (tcp tcpfin udp): {} {} {}", t.established, t.fin_wait, t.udp)
}

/// DPVS's connection line: `[cpu]proto expire state CIP:port VIP:port LIP:port RIP:port`,
/// and ` synced` after a connection a peer announced (connection sync).
pub fn conn_line(c: &ConnInfo) -> String {
    let expire = format!("{}s", c.expires_ms / 1000);
    format!(
        "[{}]{:<3} {:<6} {:<11} {:<18} {:<18} {:<18} {}{}",
        c.worker,
        c.proto.name(),
        expire,
        c.state_name(),
        c.client.to_string(),
        c.virt.to_string(),
        c.local.to_string(),
        c.real,
        if c.synced { " synced" } else { "" }
    )
}

/// DPVS's `-G` listing. Per-LIP port conflicts and connection counts are not in the
/// reply; they print as `-`.
pub fn write_laddrs(out: &mut dyn Write, svcs: &[ServiceView]) -> io::Result<()> {
    for (i, s) in ordered(svcs, true).into_iter().enumerate() {
        if i == 0 {
            writeln!(out, "{:<20} {:<8} {:<20} {:<10} {:<10}", "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS")?;
        }
        writeln!(out, "{:<20} {:<8} ", vip_vport(&s.service.key()), s.laddrs.len())?;
        for l in &s.laddrs {
            writeln!(out, "{:<20} {:<8} {:<20} {:<10} {:<10}", "", "", l.to_string(), "-", "-")?;
        }
    }
    Ok(())
}

/// One service's deny or allow list, as `--get-blklst` / `--get-whtlst` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclList {
    /// The protocol column: `TCP`, `UDP`, or `FWM` for a firewall-mark service.
    pub proto: &'static str,
    /// The service, `VIP:PORT` (a firewall-mark service's mark: `1`, `1 IPv6`).
    pub service: String,
    /// The source prefixes.
    pub prefixes: Vec<ipnet::IpNet>,
}

/// The deny (`allow: false`) or allow lists of `svcs`, services in sorted order; those
/// with an empty list left out.
pub fn acl_lists(svcs: &[ServiceView], allow: bool) -> Vec<AclList> {
    ordered(svcs, true)
        .into_iter()
        .map(|s| {
            let c = &s.service;
            let prefixes = if allow { c.allow.clone() } else { c.deny.clone() };
            let (proto, service) = match fwmark_name(&c.key()) {
                Some(m) => ("FWM", m),
                None => (proto_upper(c.proto), addr_port(c.vip, c.vport)),
            };
            AclList { proto, service, prefixes }
        })
        .filter(|l| !l.prefixes.is_empty())
        .collect()
}

/// DPVS's `--get-blklst` / `--get-whtlst` table: one line per prefix.
pub fn write_acls(out: &mut dyn Write, lists: &[AclList], allow: bool) -> io::Result<()> {
    let title = if allow { "WHITELIST" } else { "BLACKLIST" };
    writeln!(out, "{:<8} {:<30} {:<30}", "PROTO", "VIP:VPORT", title)?;
    for l in lists {
        for p in &l.prefixes {
            writeln!(out, "{:<8} {:<30} {:<30}", l.proto, l.service, p.to_string())?;
        }
    }
    Ok(())
}

/// The `-S` rules: `-A` per service, then its `-a` (in configuration order, which the
/// schedulers depend on), `-P`, `--add-blklst` and `--add-whtlst` lines.
pub fn write_rules(out: &mut dyn Write, svcs: &[ServiceView], sort: bool) -> io::Result<()> {
    for s in ordered(svcs, sort) {
        let cfg = &s.service;
        let svc = service_rule(&cfg.key());
        let mut line = format!("-A {svc} -s {}{}{}", cfg.sched, persistence(cfg, true), ops(cfg, true));
        if let Some(f) = sched_flags_rule(cfg) {
            line += &format!(" --sched-flags {f}");
        }
        if let Some(n) = cfg.mh_table_size {
            line += &format!(" --mh-table-size {n}");
        }
        line += &synproxy(cfg, true);
        if let Some(r) = cfg.rate_limit {
            line += &format!(" --conn-rate {}", r.rate);
            if r.burst != 0 {
                line += &format!(":{}", r.burst);
            }
        }
        if cfg.source_limit != 0 {
            line += &format!(" --source-limit {}", cfg.source_limit);
        }
        line += &conn_timeout(cfg, true);
        line += &quiescent_and_check(cfg, true);
        line += &proxy_protocol(cfg, true);
        writeln!(out, "{line}")?;
        let rss: Vec<RealServerConfig> = if cfg.real_servers.is_empty() {
            s.dests.iter().map(|d| d.config).collect()
        } else {
            cfg.real_servers.clone()
        };
        for rs in &rss {
            let mut line = format!(
                "-a {svc} -r {} {} -w {}",
                addr_port(rs.addr, rs_port(rs, cfg.vport)),
                fwd_flag(rs.fwd),
                rs.weight
            );
            if rs.upper != 0 {
                line += &format!(" -x {}", rs.upper);
            }
            if rs.lower != 0 {
                line += &format!(" -y {}", rs.lower);
            }
            writeln!(out, "{line}")?;
        }
        for l in &s.laddrs {
            writeln!(out, "-P {svc} -z {l}")?;
        }
        for p in &cfg.deny {
            writeln!(out, "--add-blklst {svc} -k {p}")?;
        }
        for p in &cfg.allow {
            writeln!(out, "--add-whtlst {svc} --whtlst-address {p}")?;
        }
    }
    Ok(())
}

/// `-L --daemon`: one line per connection-sync role running, as ipvsadm prints its
/// sync daemons (`master sync daemon (mcast=eth0, syncid=1, maxlen=1472)`), the
/// transport being `[sync]`'s group or peers.
pub fn write_daemons(out: &mut dyn Write, daemons: &[ctl::SyncDaemonView]) -> std::io::Result<()> {
    for d in daemons {
        writeln!(out, "{} sync daemon ({}, syncid={}, maxlen={})", d.role.name(), d.transport, d.syncid, d.maxlen)?;
    }
    Ok(())
}
