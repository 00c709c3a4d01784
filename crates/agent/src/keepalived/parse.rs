//! Statement tree -> typed [`Config`], keyword by keyword.
//!
//! `virtual_server match NAME { lb_kind SNAT ... }` (DPVS's SNAT rule) becomes a
//! [`SnatConf`]: `protocol` (TCP, the default, UDP, or ICMP / ICMPV6: echo messages,
//! no ports in the ranges), `src-range`, `dst-range`, `iif`, `oif` (each once), `lb_algo
//! rr` (or `wrr` with equal weights), `real_server WAN 0 { weight N }` per WAN address.
//! Health checks and the virtual-server keywords that mean nothing to such a rule are
//! refused by name (warnings when `lenient`).
//!
//! Unknown keywords are errors, or warnings when `lenient`. Keywords listed in [`IGNORED`]
//! are accepted with a warning naming them (and recorded in [`Config::ignored`]): mostly
//! mail, SNMP and kernel tuning options that mean nothing to rvs, and DPVS knobs rvsd does
//! not have yet.
//!
//! `lvs_sync_daemon` (global_defs) and `lvs_sync_daemon_interface` (vrrp_instance, its
//! deprecated form) are read with keepalived 2.2's syntax and rules into
//! [`GlobalDefs::lvs_sync_daemon`]: the agent switches rvsd's connection-sync roles as
//! keepalived switches IPVS's sync daemons. What rvsd's `[sync]` section sets instead (the
//! interface, `maxlen`, `port`, `ttl`, `group`) draws a warning naming the keyword, so
//! nothing is silently ignored.

use super::config::*;
use super::diag::{Diagnostic, Loc};
use super::tree::Node;
use crate::dataplane::{LvsTimeouts, Proto, ServiceKey};
use crate::vrrp::packet::{ChecksumMode, Version};
use fnat::types::Proto as SnatProto;
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Keywords accepted anywhere and ignored, with the reason documented here:
/// * SNMP/process options (`enable_snmp_*`, `*_no_swap`, `*_priority`,
///   ...): rvs-agent has no SNMP (`script_user` and `enable_script_security` are honoured:
///   [`Script::run_as`], [`GlobalDefs::script_security`]);
/// * keepalived kernel/VRRP tuning with no rvs counterpart (`vrrp_iptables`,
///   `use_vmac`, `accept`, `no_accept`,
///   `dont_track_primary`, `native_ipv6`,
///   `garp_*_lower_prio*`);
/// * DPVS keepalived knobs rvsd does not implement yet (`vip_bind_dev` (VIPs
///   go on the instance's DPDK port)), and
///   `est_timeout`, which neither keepalived nor DPVS's keepalived has (DPVS's is
///   `establish_timeout`, honoured: [`VirtualServer::establish_timeout`]).
///
/// `alpha` is not here: a `virtual_server`'s is honoured ([`VirtualServer::alpha`]); a
/// `real_server`'s or a checker's (keepalived 2.2.7's overrides) and a SNAT rule's are
/// warned about where they are read.
/// `omega` is not here either: a `virtual_server`'s is honoured ([`VirtualServer::omega`]),
/// a SNAT rule's warned about where it is read.
///
/// Nor are these global_defs keywords, honoured: `lvs_timeouts` ([`GlobalDefs::lvs_timeouts`],
/// rvsd's global timeouts), `vrrp_startup_delay` ([`GlobalDefs::vrrp_startup_delay`]),
/// `vrrp_garp_interval` and `vrrp_gna_interval` ([`GlobalDefs::vrrp_garp_interval`]: the
/// spacing of gratuitous ARPs / NAs on each interface; keepalived's `garp_group` blocks,
/// with their own `garp_interval` / `gna_interval`, are [`Config::garp_groups`]);
/// and, honoured by construction, so accepted without a warning: `vrrp_check_unicast_src`
/// (global_defs) and `check_unicast_src` (vrrp_instance), since rvs-agent always drops an
/// advert whose source is not among the instance's `unicast_peer`s (keepalived checks only
/// with them), and `lvs_flush`, since the agent's first `ServiceReplace` replaces every
/// service rvsd had (keepalived flushes IPVS at start only with it). `lvs_flush_on_stop`
/// (and its older name `lvs_flush_onstop`) is warned about where it is read: the agent
/// leaves its services in rvsd at stop; its effect on `omega`'s notifiers is honoured
/// ([`GlobalDefs::lvs_flush_on_stop`]).
pub const IGNORED: &[&str] = &[
    "enable_snmp_vrrp",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_traps",
    "snmp_socket",
    "vrrp_no_swap",
    "checker_no_swap",
    "vrrp_priority",
    "checker_priority",
    "bfd_priority",
    "vrrp_iptables",
    "use_vmac",
    "vmac_xmit_base",
    "accept",
    "no_accept",
    "dont_track_primary",
    "native_ipv6",
    "lvs_id",
    "max_auto_priority",
    "dynamic_interfaces",
    "debug",
    "preempt",
    "est_timeout",
    "vip_bind_dev",
    "bind_if",
    "bind_port",
];

/// keepalived's tuning of its own processes and their logging, accepted with a warning
/// saying what to do instead (a tuned production file loads): each keyword with the
/// reason. None changes what VRRP or the health checks do.
const PROCESS_TUNING: &[(&[&str], &str)] = &[
    (
        &[
            "bfd_cpu_affinity",
            "bfd_no_swap",
            "bfd_process_name",
            "bfd_rlimit_rtime",
            "bfd_rlimit_rttime",
            "bfd_rt_priority",
            "checker_cpu_affinity",
            "checker_process_name",
            "checker_rlimit_rtime",
            "checker_rlimit_rttime",
            "checker_rt_priority",
            "child_wait_time",
            "lvs_process_name",
            "process_name",
            "process_names",
            "vrrp_cpu_affinity",
            "vrrp_process_name",
            "vrrp_rlimit_rtime",
            "vrrp_rlimit_rttime",
            "vrrp_rt_priority",
        ],
        "rvs-agent is one process: set its CPUs and scheduling in its systemd unit \
         (CPUAffinity=, CPUSchedulingPolicy=, CPUSchedulingPriority=, LimitRTTIME=)",
    ),
    (
        &[
            "kernel_rx_buf_size",
            "lvs_netlink_cmd_rcv_bufs",
            "lvs_netlink_cmd_rcv_bufs_force",
            "lvs_netlink_monitor_rcv_bufs",
            "lvs_netlink_monitor_rcv_bufs_force",
            "process_monitor_rcv_bufs",
            "process_monitor_rcv_bufs_force",
            "vrrp_netlink_cmd_rcv_bufs",
            "vrrp_netlink_cmd_rcv_bufs_force",
            "vrrp_netlink_monitor_rcv_bufs",
            "vrrp_netlink_monitor_rcv_bufs_force",
            "vrrp_rx_bufs_multiplier",
            "vrrp_rx_bufs_policy",
        ],
        "rvs-agent keeps the kernel's socket buffer sizes (it watches no netlink: rvsd holds the addresses)",
    ),
    (
        &[
            "enable_snmp_keepalived",
            "enable_snmp_rfcv2",
            "enable_snmp_rfcv3",
            "snmp_name",
            "enable_dbus",
            "dbus_service_name",
        ],
        "rvs-agent has no SNMP or D-Bus interface: `rvs-agent status --json` and --metrics-listen say the same",
    ),
    (
        &["checker_log_all_failures", "log_all_failures"],
        "rvs-agent logs each health change and counts every failed check (rvs_agent_check_failures_total)",
    ),
    (&["log_unknown_vrids"], "adverts for virtual routers this box does not run are not logged"),
    (
        &[
            "nftables",
            "nftables_counters",
            "nftables_ifindex",
            "nftables_priority",
            "nftables_ipvs",
            "nftables_ipvs_priority",
            "nftables_ipvs_start_fwmark",
            "vrrp_ipsets",
        ],
        "rvs-agent installs no firewall rules (keepalived's no-accept and use_vmac rules; rvsd's VIPs carry the services)",
    ),
    (
        &["config_save_dir", "tmp_config_directory", "random_seed", "use_pid_dir", "instance", "data_use_instance"],
        "rvs-agent's files are the ones its command line names (-p, -r, -c, --status-socket)",
    ),
];

/// A switch's value (`true`/`false`, `on`/`off`, `yes`/`no`, any case; bare: on), or the
/// word that is none of them.
fn truth(n: &Node) -> Result<bool, String> {
    match n.args.first().map(|a| a.to_ascii_lowercase()).as_deref() {
        None | Some("true" | "on" | "yes") => Ok(true),
        Some("false" | "off" | "no") => Ok(false),
        Some(a) => Err(a.to_string()),
    }
}

/// What the warning about a `real_server`'s or a checker's `alpha [BOOL]` (keepalived
/// 2.2.7's per-server and per-checker overrides) says rvs does instead.
const ALPHA_PER_VS: &str =
    "rvs-agent honours alpha per virtual_server only (this real server follows its virtual server's)";

/// Parsing options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Unknown keywords are warnings instead of errors.
    pub lenient: bool,
    /// Every warning is an error (`--strict`): nothing accepted and not honoured passes.
    pub strict: bool,
    /// keepalived's `--config-id`: which `@ID` lines apply (unset: this host's short
    /// name, as keepalived).
    pub config_id: Option<String>,
    /// The file is another host's (`--peer-config`): a script's user or group this host
    /// does not know is a warning, not an error.
    pub other_host: bool,
}

/// Where a `virtual_server`'s keywords that a fwmark service changes were written
/// ([`P::fwmark_vs`], [`P::vs_family`]).
#[derive(Debug, Default, Clone)]
struct VsLines {
    protocol: Option<Loc>,
    ha_suspend: Option<Loc>,
    ops: Option<Loc>,
    proxy_protocol: Option<Loc>,
    sorry_server: Option<Loc>,
    granularity: Option<Loc>,
}

/// Whether rvsd takes a server at `a` forwarded by `kind` in a service of the family of
/// `v6`: one family, or rvsd's NAT64 (IPv4 servers of an IPv6 service, under FullNAT).
fn family_fits(v6: bool, a: IpAddr, kind: LbKind) -> bool {
    a.is_ipv6() == v6 || (v6 && kind == LbKind::FullNat)
}

/// A forwarding method as keepalived.conf writes it (`lb_kind`).
fn kind_name(k: LbKind) -> &'static str {
    match k {
        LbKind::FullNat => "FNAT",
        LbKind::Nat => "NAT",
        LbKind::Dr => "DR",
        LbKind::Tunnel => "TUN",
        LbKind::Snat => "SNAT",
    }
}

struct P<'a> {
    diags: &'a mut Vec<Diagnostic>,
    opts: Options,
    ignored: Vec<(Loc, String)>,
    /// Top-level `track_file` blocks by name, for FILE_CHECK.
    track_files: std::collections::HashMap<String, TrackFile>,
    /// Whether the virtual server being read set `retry` / `delay_before_retry` (checkers
    /// with their own defaults, DNS_CHECK, only take them when neither level did).
    vs_retry_set: (bool, bool),
    /// The last checker read waits `delay_loop` between retries (DNS_CHECK's default).
    dbr_follows_delay_loop: bool,
    /// strict mode's note about the no-accept firewall was given (once per file).
    strict_noted: bool,
    /// The first `global_defs` `smtp_alert*` line turning alerts on (for
    /// [`P::check_smtp`]).
    global_alerts: Vec<(Loc, &'static str)>,
    /// `lvs_sync_daemon` / `lvs_sync_daemon_interface` lines, resolved once the
    /// instances (whose VRID is keepalived's default sync id) are read.
    sync_daemons: Vec<SyncDaemon>,
    /// Every script read, with where and what named it, for [`P::check_scripts`].
    scripts: Vec<(Loc, String, Script)>,
    /// Who scripts without a user of their own run as: `script_user`, else keepalived's
    /// `keepalived_script` when it exists (looked up at the first such script); inner
    /// none: rvs-agent's own user.
    script_user: Option<Option<RunAs>>,
    /// Regexes compiled so far, by pattern and options: a file checking hundreds of real
    /// servers with one regex compiles it once (as keepalived's `prepare_regex`).
    regexes: std::collections::HashMap<(String, Vec<String>), crate::check::http::RegexMatcher>,
}

/// keepalived's IPVS sync daemon line: `lvs_sync_daemon INTERFACE [VRRP_INSTANCE | inst
/// VRRP_INSTANCE] [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group IP]` (global_defs;
/// keepalived 1.x's `lvs_sync_daemon IF INSTANCE SYNC_ID` too), or a vrrp_instance's
/// `lvs_sync_daemon_interface INTERFACE`; becomes [`LvsSyncDaemon`].
#[derive(Debug, Clone)]
struct SyncDaemon {
    key: String,
    loc: Loc,
    /// INTERFACE.
    interface: String,
    /// The VRRP instance whose state selects the role (and whose VRID is the default
    /// sync id of `lvs_sync_daemon`).
    instance: Option<String>,
    /// `id N`.
    syncid: Option<u8>,
    /// The transport options given (`maxlen 1400`, ...): `[sync]`'s in rvsd.
    transport: Vec<String>,
    /// `lvs_sync_daemon_interface`: keepalived 2 gives it sync id 0 (it names no
    /// instance in global_defs).
    deprecated: bool,
}

/// keepalived's hex strings (`payload`, `require_reply`): pairs of hex digits, spaces
/// between bytes allowed (a lone digit before a space is one byte); with `wildcards`, `x`
/// stands for any nibble.
pub fn hex(s: &str, wildcards: bool) -> Option<HexPattern> {
    let nib = |c: u8| -> Option<(u8, u8)> {
        match c {
            b'x' | b'X' if wildcards => Some((0, 0xf)),
            _ => (c as char).to_digit(16).map(|d| (d as u8, 0)),
        }
    };
    let (mut data, mut mask) = (Vec::new(), Vec::new());
    for word in s.split([' ', '\t']).filter(|w| !w.is_empty()) {
        let b = word.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let (hi, hm) = nib(b[i])?;
            if i + 1 < b.len() {
                let (lo, lm) = nib(b[i + 1])?;
                data.push(hi << 4 | lo);
                mask.push(hm << 4 | lm);
                i += 2;
            } else {
                data.push(hi);
                mask.push(hm);
                i += 1;
            }
        }
    }
    (!data.is_empty()).then_some(HexPattern { data, mask })
}

/// keepalived's DNS_CHECK `type` names.
fn dns_type(s: &str) -> Option<u16> {
    const T: &[(&str, u16)] = &[
        ("A", 1),
        ("NS", 2),
        ("CNAME", 5),
        ("SOA", 6),
        ("MX", 15),
        ("TXT", 16),
        ("AAAA", 28),
        ("RRSIG", 46),
        ("DNSKEY", 48),
    ];
    T.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|&(_, t)| t)
}

/// The notify FIFO a `*notify_fifo*` keyword sets.
fn fifo_slot<'g>(g: &'g mut GlobalDefs, key: &str) -> &'g mut NotifyFifoConf {
    if key.starts_with("vrrp_") {
        &mut g.vrrp_notify_fifo
    } else if key.starts_with("lvs_") {
        &mut g.lvs_notify_fifo
    } else {
        &mut g.notify_fifo
    }
}

/// A top-level `track_file NAME { file PATH; weight N [reverse] }`.
#[derive(Debug, Clone)]
struct TrackFile {
    path: String,
    weight: i32,
    reverse: bool,
}

/// Converts the statement tree into a [`Config`], reporting problems into `diags`.
pub fn config(nodes: &[Node], opts: Options, diags: &mut Vec<Diagnostic>) -> Config {
    let mut p = P {
        diags,
        opts,
        ignored: Vec::new(),
        track_files: Default::default(),
        vs_retry_set: (false, false),
        dbr_follows_delay_loop: false,
        sync_daemons: Vec::new(),
        global_alerts: Vec::new(),
        strict_noted: false,
        script_user: None,
        scripts: Vec::new(),
        regexes: Default::default(),
    };
    let mut cfg = Config::default();
    // global_defs first: vrrp_version is the default for instances wherever they appear;
    // track_file blocks too, so that FILE_CHECK finds them wherever they are.
    for n in nodes.iter().filter(|n| n.key == "global_defs") {
        p.global_defs(n, &mut cfg.global_defs);
    }
    if let Some(n) = nodes.iter().rfind(|n| n.key == "global_defs") {
        p.check_fifos(n, &cfg.global_defs);
    }
    for n in nodes.iter().filter(|n| n.key == "track_file" || n.key == "vrrp_track_file") {
        p.track_file(n);
    }
    // Per virtual server, where its keywords are (for a group's fwmarks, below).
    let mut vs_lines = Vec::new();
    for n in nodes {
        match n.key.as_str() {
            "global_defs" | "track_file" | "vrrp_track_file" => {}
            "SSL" => cfg.ssl = Some(p.ssl(n)),
            "vrrp_script" => {
                if let Some(s) = p.vrrp_script(n) {
                    cfg.vrrp_scripts.push(s);
                }
            }
            "vrrp_track_process" => {
                if let Some(t) = p.track_process(n) {
                    if cfg.vrrp_track_processes.iter().any(|x| x.name == t.name) {
                        p.err(&n.loc, format!("vrrp_track_process {} is defined twice", t.name));
                    }
                    cfg.vrrp_track_processes.push(t);
                }
            }
            "vrrp_sync_group" => {
                if let Some(g) = p.sync_group(n) {
                    cfg.vrrp_sync_groups.push(g);
                }
            }
            "bfd_instance" => {
                if let Some(b) = p.bfd_instance(n, &cfg.bfd_instances) {
                    cfg.bfd_instances.push(b);
                }
            }
            "garp_group" => {
                if let Some(g) = p.garp_group(n, &cfg.garp_groups) {
                    cfg.garp_groups.push(g);
                }
            }
            "vrrp_instance" => {
                if let Some(i) = p.vrrp_instance(n, &cfg.global_defs) {
                    cfg.vrrp_instances.push(i);
                }
            }
            "virtual_server_group" => {
                if let Some(g) = p.vs_group(n) {
                    cfg.virtual_server_groups.push(g);
                }
            }
            "virtual_server" if n.args.first().is_some_and(|a| a == "match") => {
                if let Some(r) = p.snat_match(n, &cfg.snat) {
                    cfg.snat.push(r);
                }
            }
            "virtual_server" => {
                if let Some((v, lines)) = p.virtual_server(n) {
                    cfg.virtual_servers.push(v);
                    vs_lines.push(lines);
                }
            }
            "local_address_group" => {
                if let Some(g) = p.laddr_group(n) {
                    cfg.local_address_groups.push(g);
                }
            }
            "static_ipaddress" => {
                for e in p.block(n) {
                    if let Some(v) = p.vip(e) {
                        if v.dev.is_none() {
                            p.err(&e.loc, format!("static_ipaddress {}: needs dev DPDK_PORT", v.addr));
                        }
                        cfg.static_ipaddress.push(v);
                    }
                }
            }
            "net_namespace" => match p.arg(n) {
                Some(name) if name.contains('/') || name == "." || name == ".." => {
                    p.err(&n.loc, format!("net_namespace '{name}' is not a name in /run/netns"))
                }
                name => cfg.global_defs.net_namespace = name.map(str::to_string),
            },
            "net_namespace_ipvs" => p.ignore(
                n,
                "rvsd's services are reached over its control socket, whatever the agent's network namespace",
            ),
            "namespace_with_ipsets" => p.ignore(n, "rvs-agent uses no ipsets"),
            "static_routes" => {
                for r in p.block(n) {
                    if let Some(r) = p.static_route(r, "static_routes") {
                        cfg.static_routes.push(r);
                    }
                }
            }
            "deny_address_group" => {
                if let Some(g) = p.address_group(n, AddressGroupKind::Deny) {
                    cfg.address_groups.push(g);
                }
            }
            "allow_address_group" => {
                if let Some(g) = p.address_group(n, AddressGroupKind::Allow) {
                    cfg.address_groups.push(g);
                }
            }
            _ => p.other(n, "the top level"),
        }
    }
    // A group's fwmark entries change its virtual servers as a fwmark virtual server's
    // (the group may come after them); the protocol matters to one with members only
    // (keepalived's `validate_check_config`). The group is the first of its name, as
    // keepalived's (a second is an error, validate).
    for (v, lines) in cfg.virtual_servers.iter_mut().zip(&vs_lines) {
        let VsTarget::Group(name) = &v.target else { continue };
        let g = cfg.virtual_server_groups.iter().find(|g| &g.name == name);
        let fwmark_only = g.is_some_and(VirtualServerGroup::fwmark_only);
        if !fwmark_only {
            p.protocol_checks(v, lines);
        }
        if g.is_some_and(|g| !g.fwmarks.is_empty()) {
            p.fwmark_vs(v, lines, fwmark_only, false);
        }
        // One port for every service of the group (no fwmark), or none.
        let port = g.filter(|g| g.fwmarks.is_empty()).and_then(|g| {
            let first = g.members.first()?.port();
            (first != 0 && g.members.iter().all(|m| m.port() == first)).then_some(first)
        });
        p.portless_checks(v, port);
    }
    // Each server against each service it goes into: rvsd refuses one of the other family;
    // a group's DR and TUN servers get each service's port (warned about where it is
    // another), and two of them that are then one are refused.
    for (v, lines) in cfg.virtual_servers.iter().zip(&vs_lines) {
        if matches!(v.target, VsTarget::Fwmark { .. }) {
            continue;
        }
        let keys = crate::check::pool::vs_keys(&cfg, v);
        p.key_families(v, lines, &keys);
        if matches!(v.target, VsTarget::Group(_)) {
            p.group_ports(v, lines, &keys);
            p.one_in_services(v, lines, &keys);
        }
    }
    // SSL_GET checkers present the global SSL block's certificate, wherever it is.
    for c in cfg.virtual_servers.iter_mut().flat_map(|v| &mut v.real_servers).flat_map(|r| &mut r.checks) {
        if let CheckKind::Ssl { client, .. } = &mut c.kind {
            client.clone_from(&cfg.ssl);
        }
    }
    cfg.global_defs.lvs_sync_daemon = p.resolve_sync_daemons(&cfg);
    p.check_smtp(&cfg);
    // notify_priority_changes: an instance's own, else its sync group's, else the global.
    for i in &mut cfg.vrrp_instances {
        let group = cfg.vrrp_sync_groups.iter().find(|g| g.members.contains(&i.name));
        let inherited = group.and_then(|g| g.notify.priority_changes);
        let global = cfg.global_defs.vrrp_notify_priority_changes;
        i.notify.priority_changes = Some(i.notify.priority_changes.or(inherited).unwrap_or(global));
    }
    // A *_script_timeout without its script: nothing to run.
    let g = &mut cfg.global_defs;
    for s in [&mut g.startup_script, &mut g.shutdown_script] {
        if s.as_ref().is_some_and(|s| s.cmd.cmd.is_empty()) {
            *s = None;
        }
    }
    if !p.opts.other_host {
        p.check_scripts(cfg.global_defs.script_security);
    }
    cfg.ignored = p.ignored;
    cfg
}

impl P<'_> {
    fn err(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(loc.clone(), msg));
    }

    fn warn(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.diags.push(Diagnostic::warning(loc.clone(), msg));
    }

    /// A keyword not handled by the block: ignored if listed, else unknown.
    fn other(&mut self, n: &Node, ctx: &str) {
        let root_only = ["instance", "use_pid_dir", "child_wait_time"].contains(&n.key.as_str());
        if let Some((_, why)) = PROCESS_TUNING.iter().find(|(ks, _)| ks.contains(&n.key.as_str())) {
            if !root_only || ctx == "the top level" {
                self.ignore(n, why);
                return;
            }
        }
        if IGNORED.contains(&n.key.as_str()) {
            // Accepted (keepalived and DPVS files carry them), never silently: the
            // operator sees which keyword rvs does not honour.
            self.warn(&n.loc, format!("'{}' is accepted and not honoured by rvs-agent/rvsd (ignored)", n.key));
            self.ignored.push((n.loc.clone(), n.key.clone()));
            return;
        }
        let msg = if super::keywords::is_keepalived(&n.key) {
            format!("'{}' (in {ctx}) is valid keepalived that rvs does not support yet", n.key)
        } else if super::keywords::is_dpvs(&n.key) {
            format!("'{}' (in {ctx}) is valid DPVS keepalived that rvs does not support yet", n.key)
        } else {
            format!("unknown keyword '{}' in {ctx}", n.key)
        };
        if self.opts.lenient {
            self.warn(&n.loc, msg);
        } else {
            self.err(&n.loc, msg);
        }
    }

    /// A keyword accepted and not honoured: a warning saying what rvs does instead, and
    /// the record `-t` lists.
    fn ignore(&mut self, n: &Node, instead: &str) {
        self.ignore_at(&n.loc, &n.key, instead);
    }

    /// [`ignore`](Self::ignore) of the keyword `key` written at `loc`.
    fn ignore_at(&mut self, loc: &Loc, key: &str, instead: &str) {
        self.warn(loc, format!("'{key}' is accepted and not honoured by rvs: {instead}"));
        self.ignored.push((loc.clone(), key.to_string()));
    }

    /// A switch that may carry a value (`true`/`false`, `on`/`off`, `yes`/`no`); bare: on.
    fn flag_value(&mut self, n: &Node) -> bool {
        truth(n).unwrap_or_else(|a| {
            self.err(&n.loc, format!("{} takes true or false, not '{a}'", n.key));
            false
        })
    }

    fn arg<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        match n.args.first() {
            Some(a) => Some(a),
            None => {
                self.err(&n.loc, format!("{} needs a value", n.key));
                None
            }
        }
    }

    fn name<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        match n.args.first() {
            Some(a) => Some(a),
            None => {
                self.err(&n.loc, format!("{} needs a name", n.key));
                None
            }
        }
    }

    fn block<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        if n.block.is_none() {
            self.err(&n.loc, format!("{} needs a {{ ... }} block", n.key));
        }
        n.children()
    }

    fn int(&mut self, n: &Node, lo: i64, hi: i64) -> Option<i64> {
        let a = self.arg(n)?;
        match a.parse::<i64>() {
            Ok(v) if (lo..=hi).contains(&v) => Some(v),
            Ok(v) => {
                self.err(&n.loc, format!("{} {v} is out of range {lo}-{hi}", n.key));
                None
            }
            Err(_) => {
                self.err(&n.loc, format!("{} expects an integer, got '{a}'", n.key));
                None
            }
        }
    }

    fn uint(&mut self, n: &Node) -> Option<u32> {
        self.int(n, 0, i64::from(u32::MAX)).map(|v| v as u32)
    }

    fn secs(&mut self, n: &Node) -> Option<f64> {
        let a = self.arg(n)?;
        match a.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                self.err(&n.loc, format!("{} expects a number of seconds, got '{a}'", n.key));
                None
            }
        }
    }

    fn ip(&mut self, loc: &Loc, what: &str, s: &str) -> Option<IpAddr> {
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(loc, format!("{what}: '{s}' is not an IP address"));
                None
            }
        }
    }

    fn port(&mut self, loc: &Loc, what: &str, s: Option<&String>) -> Option<u16> {
        match s.map(|s| s.parse::<u16>()) {
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                self.err(loc, format!("{what}: '{}' is not a port", s.map(String::as_str).unwrap_or("")));
                None
            }
            None => {
                self.err(loc, format!("{what} needs a port"));
                None
            }
        }
    }

    fn flag(&mut self, n: &Node) -> bool {
        if !n.args.is_empty() {
            self.warn(&n.loc, format!("{} takes no value; '{}' ignored", n.key, n.args.join(" ")));
        }
        true
    }

    /// keepalived's `KEY COMMAND [USERNAME [GROUPNAME]]` (notify, quorum, FIFO and
    /// lifecycle scripts): a command with arguments is quoted, since the words after it
    /// name the user and group it runs as.
    fn script(&mut self, n: &Node) -> Option<Script> {
        let Some(cmd) = n.args.first() else {
            self.err(&n.loc, format!("{} needs a script", n.key));
            return None;
        };
        let run_as = match n.args.len() {
            1 => self.default_run_as(n),
            2 | 3 => match self.run_as(n, &n.args[1..]) {
                Some(r) => Some(r),
                None if self.opts.other_host => None,
                None => {
                    // The usual cause: an argument left outside the quotes.
                    self.err(
                        &n.loc,
                        format!(
                            "{}: the words after a script name the user and group it runs as: quote a \
                             command with arguments (\"{}\")",
                            n.key,
                            n.args.join(" ")
                        ),
                    );
                    return None;
                }
            },
            _ => {
                self.err(
                    &n.loc,
                    format!(
                        "{}: after the script come at most a user and a group, not '{}': \
                         quote a command with arguments (\"{}\")",
                        n.key,
                        n.args[1..].join(" "),
                        n.args.join(" ")
                    ),
                );
                return None;
            }
        };
        let s = Script { cmd: cmd.clone(), run_as };
        self.scripts.push((n.loc.clone(), n.key.clone(), s.clone()));
        Some(s)
    }

    /// vrrp_script's `script` and MISC_CHECK's `misc_path`: the first word is the command
    /// (its user comes from a `user` line, see [`P::run_as`]); keepalived ignores any word
    /// after it, and so does rvs-agent, with a warning.
    fn command(&mut self, n: &Node) -> Option<Script> {
        let Some(cmd) = n.args.first() else {
            self.err(&n.loc, format!("{} needs a script", n.key));
            return None;
        };
        if n.args.len() > 1 {
            self.warn(
                &n.loc,
                format!(
                    "{}: only '{cmd}' runs (as keepalived): '{}' after it is ignored; \
                     quote a command with arguments (\"{}\")",
                    n.key,
                    n.args[1..].join(" "),
                    n.args.join(" ")
                ),
            );
        }
        Some(Script::new(cmd.clone()))
    }

    /// `USERNAME [GROUPNAME]` (`words`) resolved on this host, as keepalived does when it
    /// reads the file; a name that does not resolve is an error (keepalived drops the
    /// script with a log line: a notify that never runs), a warning in another host's file.
    fn run_as(&mut self, n: &Node, words: &[String]) -> Option<RunAs> {
        use nix::unistd::{Group, User};
        let unknown = |p: &mut Self, what: &str, name: &str, r: nix::Result<()>| {
            let why = match r {
                Ok(()) => "does not exist".to_string(),
                Err(e) => format!("could not be looked up ({e})"),
            };
            let msg = format!("{}: {what} '{name}' {why}", n.key);
            if p.opts.other_host {
                p.warn(&n.loc, format!("{msg} here (another host's file)"));
            } else {
                p.err(&n.loc, msg);
            }
        };
        let user = &words[0];
        let u = match User::from_name(user) {
            Ok(Some(u)) => u,
            r => {
                unknown(self, "user", user, r.map(drop));
                return None;
            }
        };
        let gid = match words.get(1) {
            None => u.gid.as_raw(),
            Some(g) => match Group::from_name(g) {
                Ok(Some(g)) => g.gid.as_raw(),
                r => {
                    unknown(self, "group", g, r.map(drop));
                    return None;
                }
            },
        };
        Some(RunAs { user: user.clone(), uid: u.uid.as_raw(), gid })
    }

    /// Who a script without a user of its own runs as (see [`P::script_user`]).
    fn default_run_as(&mut self, n: &Node) -> Option<RunAs> {
        if self.script_user.is_none() {
            let exists = nix::unistd::User::from_name("keepalived_script").is_ok_and(|u| u.is_some());
            self.script_user = Some(if exists { self.run_as(n, &["keepalived_script".to_string()]) } else { None });
        }
        self.script_user.clone().flatten()
    }

    /// keepalived's script security: every script run with root's rights that another
    /// user could change is named (an error under `enable_script_security`, which
    /// keepalived answers by disabling the script; else a warning, with keepalived's
    /// "SECURITY VIOLATION" once).
    fn check_scripts(&mut self, strict: bool) {
        let mut unsafe_seen = None;
        for (loc, what, s) in std::mem::take(&mut self.scripts) {
            if let Some(why) = crate::script::unsafe_reason(&s) {
                {
                    let msg = format!("{what}: '{}' runs as root and is unsafe: {why}", s.cmd);
                    if strict {
                        self.err(&loc, format!("{msg} (enable_script_security)"));
                    } else {
                        self.warn(&loc, msg);
                    }
                    unsafe_seen.get_or_insert(loc);
                }
            }
        }
        if let Some(loc) = unsafe_seen.filter(|_| !strict) {
            self.warn(
                &loc,
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled (as keepalived says): say enable_script_security in global_defs to refuse unsafe ones",
            );
        }
    }

    /// A block's `user USERNAME [GROUPNAME]` (vrrp_script, MISC_CHECK).
    fn user_line(&mut self, c: &Node, script: &mut Script) {
        if c.args.is_empty() || c.args.len() > 2 {
            self.err(&c.loc, "user takes a user name and optionally a group name");
        } else if let Some(r) = self.run_as(c, &c.args) {
            script.run_as = Some(r);
        }
    }

    fn global_defs(&mut self, n: &Node, g: &mut GlobalDefs) {
        for c in self.block(n) {
            match c.key.as_str() {
                "router_id" => g.router_id = self.arg(c).map(str::to_string),
                "vrrp_mcast_group4" => {
                    if let Some(a) = self.arg(c) {
                        match a.parse() {
                            Ok(ip) => g.vrrp_mcast_group4 = ip,
                            Err(_) => self.err(&c.loc, format!("vrrp_mcast_group4: '{a}' is not an IPv4 address")),
                        }
                    }
                }
                "vrrp_mcast_group6" => {
                    if let Some(a) = self.arg(c) {
                        match a.parse() {
                            Ok(ip) => g.vrrp_mcast_group6 = ip,
                            Err(_) => self.err(&c.loc, format!("vrrp_mcast_group6: '{a}' is not an IPv6 address")),
                        }
                    }
                }
                "vrrp_version" => g.vrrp_version = self.version(c),
                "vrrp_garp_master_delay" => g.vrrp_garp_master_delay = self.uint(c),
                "vrrp_garp_master_repeat" => g.vrrp_garp_master_repeat = self.uint(c),
                "vrrp_garp_master_refresh" => g.vrrp_garp_master_refresh = self.uint(c),
                k @ ("notify_fifo" | "vrrp_notify_fifo" | "lvs_notify_fifo") => {
                    let owner = match c.args.len() {
                        0..=1 => self.default_run_as(c),
                        2 | 3 => self.run_as(c, &c.args[1..]),
                        _ => {
                            self.err(&c.loc, format!("{k}: after the FIFO come at most a user and a group"));
                            None
                        }
                    };
                    if let Some(path) = self.arg(c) {
                        let f = fifo_slot(g, k);
                        (f.path, f.owner) = (Some(path.into()), owner);
                    }
                }
                k @ ("notify_fifo_script" | "vrrp_notify_fifo_script" | "lvs_notify_fifo_script") => {
                    if let Some(script) = self.script(c) {
                        fifo_slot(g, k).script = Some(script);
                    }
                }
                "script_user" => match c.args.len() {
                    1 | 2 => self.script_user = Some(self.run_as(c, &c.args)),
                    _ => self.err(&c.loc, "script_user takes a user name and optionally a group name"),
                },
                "vrrp_higher_prio_send_advert" => g.vrrp_higher_prio_send_advert = self.flag_value(c),
                "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr = self.flag_value(c),
                "vrrp_garp_master_refresh_repeat" => g.vrrp_garp_master_refresh_repeat = self.uint(c).map(|r| r.max(1)),
                "vrrp_garp_lower_prio_repeat" => g.vrrp_garp_lower_prio_repeat = self.uint(c),
                "vrrp_garp_lower_prio_delay" => g.vrrp_garp_lower_prio_delay = self.uint(c),
                "vrrp_lower_prio_no_advert" => g.vrrp_lower_prio_no_advert = self.flag_value(c),
                "lvs_sync_daemon" => self.lvs_sync_daemon(c),
                "lvs_timeouts" => self.lvs_timeouts(c, &mut g.lvs_timeouts),
                "vrrp_startup_delay" => {
                    if let Some(d) = self.startup_delay(c) {
                        g.vrrp_startup_delay = Some(d);
                    }
                }
                // keepalived's own sample keepalived.conf says 0, which keepalived 2.2.7
                // reports as invalid and runs with: no spacing. So does rvs-agent, warned.
                "vrrp_garp_interval" | "vrrp_gna_interval"
                    if c.args.first().is_some_and(|a| a.parse::<f64>().is_ok_and(|v| v == 0.0)) =>
                {
                    self.warn(&c.loc, format!("{} 0: no spacing (keepalived reports 0 as invalid and sends the gratuitous ARPs of a burst at once, as without the keyword)", c.key));
                }
                "vrrp_garp_interval" | "vrrp_gna_interval" => {
                    if let Some(d) = self.decimal_secs(c, 1, "an interval") {
                        if d >= 1.0 {
                            // keepalived logs it too ("is very large").
                            self.warn(&c.loc, format!("{} {d} s is very large", c.key));
                        }
                        if c.key == "vrrp_garp_interval" {
                            g.vrrp_garp_interval = Some(d);
                        } else {
                            g.vrrp_gna_interval = Some(d);
                        }
                    }
                }
                // Honoured by construction (see IGNORED's documentation): rvs-agent always
                // checks a unicast advert's source, and its first ServiceReplace replaces
                // every service rvsd had. Switches: a value draws a warning.
                "vrrp_check_unicast_src" | "lvs_flush" => {
                    self.flag(c);
                }
                "lvs_flush_on_stop" | "lvs_flush_onstop" => self.lvs_flush_on_stop(c, g),
                // keepalived 2.2.7's handler turns it on whatever follows (a value is warned).
                "vrrp_strict" => g.vrrp_strict = self.flag(c),
                "enable_script_security" => g.script_security = self.flag(c),
                "rs_init_notifies" => g.rs_init_notifies = self.flag(c),
                "vrrp_notify_priority_changes" => g.vrrp_notify_priority_changes = self.flag_value(c),
                "vrrp_down_timer_adverts" => {
                    g.vrrp_down_timer_adverts = self.int(c, 1, 100).map(|n| n as u32).or(g.vrrp_down_timer_adverts)
                }
                k @ ("startup_script" | "shutdown_script") => {
                    let slot = if k == "startup_script" { &mut g.startup_script } else { &mut g.shutdown_script };
                    if slot.as_ref().is_some_and(|s| !s.cmd.cmd.is_empty()) {
                        self.warn(&c.loc, format!("{k} is already given: this one ignored (as keepalived)"));
                    } else if let Some(cmd) = self.script(c) {
                        let timeout = slot.as_ref().map_or(10, |s| s.timeout);
                        *slot = Some(LifecycleScript { cmd, timeout });
                    }
                }
                k @ ("startup_script_timeout" | "shutdown_script_timeout") => {
                    let slot =
                        if k == "startup_script_timeout" { &mut g.startup_script } else { &mut g.shutdown_script };
                    // Before its script, it waits in a script-less entry the script fills.
                    match c.args.first().and_then(|a| a.parse::<u32>().ok()).filter(|t| (1..=1000).contains(t)) {
                        Some(t) => {
                            slot.get_or_insert(LifecycleScript { cmd: Script::new(""), timeout: 10 }).timeout = t
                        }
                        None => self.warn(&c.loc, format!("{k} must be 1-1000 seconds: line ignored (as keepalived)")),
                    }
                }
                k @ ("net_namespace" | "net_namespace_ipvs" | "namespace_with_ipsets") => self
                    .err(&c.loc, format!("{k} goes at the top level of the file, not in global_defs (as keepalived)")),
                "notification_email" => {
                    g.smtp.to.extend(self.block(c).iter().flat_map(|e| std::iter::once(&e.key).chain(&e.args)).cloned())
                }
                "notification_email_from" => g.smtp.from = self.arg(c).map(str::to_string),
                "smtp_server" => g.smtp.server = self.smtp_server(c),
                "smtp_helo_name" => g.smtp.helo_name = self.arg(c).map(str::to_string),
                "smtp_connect_timeout" => {
                    g.smtp.connect_timeout = self.int(c, 0, 86_400).map(|t| {
                        if t == 0 {
                            self.warn(&c.loc, "smtp_connect_timeout 0: 1 second (as keepalived)");
                        }
                        t.max(1) as u32
                    })
                }
                k @ ("smtp_alert" | "smtp_alert_vrrp" | "smtp_alert_checker") => {
                    let (slot, k) = match k {
                        "smtp_alert" => (&mut g.smtp.alert, "smtp_alert"),
                        "smtp_alert_vrrp" => (&mut g.smtp.alert_vrrp, "smtp_alert_vrrp"),
                        _ => (&mut g.smtp.alert_checker, "smtp_alert_checker"),
                    };
                    let on = self.smtp_switch(c, slot);
                    if on == Some(true) {
                        self.global_alerts.push((c.loc.clone(), k));
                    }
                }
                "no_email_faults" => g.smtp.no_email_faults = self.flag(c),
                "no_checker_emails" => g.smtp.no_checker_emails = self.flag_value(c),
                _ => self.other(c, "global_defs"),
            }
        }
    }

    /// keepalived's `lvs_timeouts [tcp N] [tcpfin N] [udp N]` (global_parser.c's
    /// `lvs_timeouts`): at least one pair; each value 0 to keepalived's `LVS_MAX_TIMEOUT`
    /// (31 days; 0: rvsd's own value); a later pair or line overrides an earlier one for
    /// its timeout, as keepalived. A missing or bad value and an unknown word are errors
    /// naming them (keepalived reports them and ignores the pair); a value above rvsd's
    /// maximum is a warning (rvsd caps a timeout there).
    fn lvs_timeouts(&mut self, c: &Node, t: &mut LvsTimeouts) {
        const MAX: u32 = 86_400 * 31;
        if c.args.len() < 2 {
            self.err(&c.loc, "lvs_timeouts needs at least one of tcp N, tcpfin N, udp N");
            return;
        }
        let mut i = 0;
        while i < c.args.len() {
            let word = c.args[i].as_str();
            let slot = match word {
                "tcp" => &mut t.tcp,
                "tcpfin" => &mut t.tcpfin,
                "udp" => &mut t.udp,
                _ => {
                    self.err(&c.loc, format!("lvs_timeouts: unknown option '{word}' (tcp, tcpfin or udp)"));
                    i += 1;
                    continue;
                }
            };
            let Some(value) = c.args.get(i + 1) else {
                self.err(&c.loc, format!("lvs_timeouts: {word} needs a value"));
                break;
            };
            match value.parse::<u64>() {
                Ok(v) if v <= u64::from(MAX) => {
                    *slot = v as u32;
                    if v > u64::from(fnat::tcp_state::MAX_TIMEOUT_S) {
                        let max = fnat::tcp_state::MAX_TIMEOUT_S;
                        self.warn(
                            &c.loc,
                            format!("lvs_timeouts: {word} {v} is above rvsd's maximum: rvsd times out after {max} s"),
                        );
                    }
                }
                Ok(v) => self.err(&c.loc, format!("lvs_timeouts: {word} {v} is out of range 0-{MAX}")),
                Err(_) => {
                    self.err(&c.loc, format!("lvs_timeouts: {word} '{value}' is not a number of seconds (0-{MAX})"))
                }
            }
            i += 2;
        }
    }

    /// keepalived's `vrrp_startup_delay SECS` (`vrrp_startup_delay_handler`: a decimal with
    /// at most 6 places, 0.001 to 4294.967295 s, as keepalived's microsecond timer holds
    /// it); anything else is an error naming the line.
    fn startup_delay(&mut self, c: &Node) -> Option<f64> {
        self.decimal_secs(c, 1000, "a delay")
    }

    /// keepalived's `read_decimal_unsigned_strvec` with microseconds (`TIMER_HZ_DIGITS`):
    /// a decimal of seconds with at most 6 places, from `min_us` microseconds to
    /// 4294.967295 s (`UINT_MAX` us); anything else is an error naming the line and
    /// `what` it is ("a delay", "an interval").
    fn decimal_secs(&mut self, c: &Node, min_us: u64, what: &str) -> Option<f64> {
        let a = self.arg(c)?;
        let (whole, frac) = a.split_once('.').unwrap_or((a, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let us = (digits(whole) && digits(frac) && !(whole.is_empty() && frac.is_empty()) && frac.len() <= 6)
            .then(|| format!("{whole}{frac:0<6}").parse::<u64>().ok())
            .flatten();
        match us {
            Some(us) if (min_us..=u64::from(u32::MAX)).contains(&us) => Some(us as f64 / 1e6),
            _ => {
                let min = format!("{}", min_us as f64 / 1e6);
                self.err(&c.loc, format!("{} '{a}' is not {what} of {min} to 4294.967295 seconds", c.key));
                None
            }
        }
    }

    /// keepalived's `lvs_flush_on_stop [VS]` (and `lvs_flush_onstop`, its name before
    /// 2.1.6): read as keepalived does (another mode is an error), honoured for `omega`'s
    /// notifiers, warned about for the rest: rvs-agent leaves its services in rvsd at stop.
    fn lvs_flush_on_stop(&mut self, c: &Node, g: &mut GlobalDefs) {
        let mode = match c.args.first().map(String::as_str) {
            None => LvsFlushOnStop::Full,
            Some("VS") => LvsFlushOnStop::Vs,
            Some(other) => {
                self.err(&c.loc, format!("{}: unknown type '{other}' (none, or VS)", c.key));
                return;
            }
        };
        if c.args.len() > 1 {
            self.warn(&c.loc, format!("{} takes at most one value; '{}' ignored", c.key, c.args[1..].join(" ")));
        }
        g.lvs_flush_on_stop = Some(mode);
        let what = match mode {
            LvsFlushOnStop::Full => "flush the whole IPVS table",
            LvsFlushOnStop::Vs => "remove its virtual servers whole",
        };
        self.ignore(
            c,
            &format!(
                "rvs-agent leaves its services in rvsd at stop, with or without it (keepalived would {what}); \
                 with it, omega runs only the quorum notifiers at shutdown, as keepalived"
            ),
        );
    }

    /// `lvs_sync_daemon INTERFACE [VRRP_INSTANCE] [inst NAME] [id SYNC_ID] [maxlen LEN]
    /// [port PORT] [ttl TTL] [group IP]`, checked as keepalived 2.2.7 reads it (and its
    /// 1.x form `INTERFACE VRRP_INSTANCE SYNC_ID`); recorded for [`P::resolve_sync_daemons`].
    fn lvs_sync_daemon(&mut self, c: &Node) {
        let Some(interface) = self.arg(c).map(str::to_string) else { return };
        let mut d = SyncDaemon {
            key: c.key.clone(),
            loc: c.loc.clone(),
            interface,
            instance: None,
            syncid: None,
            transport: Vec::new(),
            deprecated: false,
        };
        let key = c.key.as_str();
        let mut i = 1;
        while i < c.args.len() {
            let word = c.args[i].as_str();
            let value = c.args.get(i + 1).map(String::as_str);
            let number = |lo: u32, hi: u32| value.and_then(|v| v.parse::<u32>().ok()).filter(|v| (lo..=hi).contains(v));
            let bad = match word {
                "inst" | "id" | "maxlen" | "port" | "ttl" | "group" if value.is_none() => {
                    Some(format!("{key}: {word} needs a value"))
                }
                "inst" => {
                    d.instance = value.map(str::to_string);
                    None
                }
                "id" => match number(0, 255) {
                    Some(v) => {
                        d.syncid = Some(v as u8);
                        None
                    }
                    None => Some(format!("{key}: id {} is not a sync id (0-255)", value.unwrap_or_default())),
                },
                "maxlen" => number(1, 65535 - 20 - 8)
                    .is_none()
                    .then(|| format!("{key}: maxlen {} is out of range 1-65507", value.unwrap_or_default())),
                "port" => number(1, 65535)
                    .is_none()
                    .then(|| format!("{key}: port {} is out of range 1-65535", value.unwrap_or_default())),
                "ttl" => number(1, 255)
                    .is_none()
                    .then(|| format!("{key}: ttl {} is out of range 1-255", value.unwrap_or_default())),
                "group" => match value.and_then(|v| v.parse::<IpAddr>().ok()) {
                    Some(ip) if ip.is_multicast() => None,
                    _ => Some(format!("{key}: group {} is not a multicast address", value.unwrap_or_default())),
                },
                // keepalived 1.x's positional VRRP_INSTANCE and SYNC_ID.
                _ if i == 1 => {
                    d.instance = Some(word.to_string());
                    i += 1;
                    continue;
                }
                _ if i == 2 => {
                    match word.parse::<u8>() {
                        Ok(v) => d.syncid = Some(v),
                        Err(_) => self.err(&c.loc, format!("{key}: unknown option '{word}'")),
                    }
                    i += 1;
                    continue;
                }
                _ => Some(format!("{key}: unknown option '{word}'")),
            };
            match bad {
                Some(m) => self.err(&c.loc, m),
                None if matches!(word, "maxlen" | "port" | "ttl" | "group") => {
                    d.transport.push(format!("{word} {}", value.unwrap_or_default()));
                }
                None => {}
            }
            i += 2;
        }
        self.sync_daemons.push(d);
    }

    /// The sync daemon line the agent applies, as keepalived 2.2 resolves it: the first
    /// line wins (keepalived ignores later ones, and so does the agent, with a warning);
    /// a named instance that does not exist clears it (keepalived's "Unable to find vrrp
    /// instance ... clearing lvs_syncd config"); the sync id is `id`, else the named
    /// instance's VRID, else 0 (no instance, or `lvs_sync_daemon_interface`). What rvsd's
    /// `[sync]` sets instead (the interface, maxlen, port, ttl, group) draws one warning
    /// naming the keyword (recorded as ignored: `--strict` refuses it).
    fn resolve_sync_daemons(&mut self, cfg: &Config) -> Option<LvsSyncDaemon> {
        let mut lines = std::mem::take(&mut self.sync_daemons).into_iter();
        let d = lines.next()?;
        for other in lines {
            self.warn(
                &other.loc,
                format!(
                    "{}: lvs_sync_daemon is already given ({}, {}): this line is ignored (as keepalived)",
                    other.key, d.key, d.loc
                ),
            );
            self.ignored.push((other.loc, other.key));
        }
        let vrid = match &d.instance {
            Some(name) => match cfg.vrrp_instances.iter().find(|i| &i.name == name) {
                Some(i) => Some(i.vrid),
                None => {
                    self.warn(
                        &d.loc,
                        format!(
                            "{}: no vrrp_instance {name}: no connection-sync role is switched (keepalived clears \
                             the line too)",
                            d.key
                        ),
                    );
                    self.ignored.push((d.loc, d.key));
                    return None;
                }
            },
            None => None,
        };
        let syncid = match (d.syncid, vrid) {
            (Some(id), _) => id,
            (None, Some(v)) if !d.deprecated => v,
            _ => 0,
        };
        let roles = match &d.instance {
            Some(name) => format!("master while vrrp_instance {name} is MASTER, backup otherwise"),
            None => "master and backup while rvs-agent runs".to_string(),
        };
        let deprecated = if d.deprecated { " (keepalived 2's for this deprecated keyword)" } else { "" };
        let mut not_applied = vec![format!("the interface {}", d.interface)];
        not_applied.extend(d.transport.iter().cloned());
        self.warn(
            &d.loc,
            format!(
                "{}: applied as rvsd's connection-sync roles: {roles}, syncid {syncid}{deprecated}; not applied: {} \
                 (rvsd's [sync] sets the transport, and its syncid must be {syncid}: docs/HA.md)",
                d.key,
                not_applied.join(", ")
            ),
        );
        self.ignored.push((d.loc.clone(), d.key.clone()));
        Some(LvsSyncDaemon { keyword: d.key, interface: d.interface, instance: d.instance, syncid, loc: d.loc })
    }

    /// FIFO names that clash, and scripts without their FIFO.
    fn check_fifos(&mut self, n: &Node, g: &GlobalDefs) {
        let fifos = [
            ("notify_fifo", &g.notify_fifo),
            ("vrrp_notify_fifo", &g.vrrp_notify_fifo),
            ("lvs_notify_fifo", &g.lvs_notify_fifo),
        ];
        for (i, (a, fa)) in fifos.iter().enumerate() {
            if fa.path.is_none() && fa.script.is_some() {
                self.warn(&n.loc, format!("{a}_script without {a}: not run (as keepalived)"));
            }
            for (b, fb) in &fifos[i + 1..] {
                if fa.path.is_some() && fa.path == fb.path {
                    self.err(&n.loc, format!("{a} and {b} name the same FIFO: they must all be different"));
                }
            }
        }
    }

    fn version(&mut self, n: &Node) -> Option<Version> {
        match self.int(n, 2, 3)? {
            2 => Some(Version::V2),
            _ => Some(Version::V3),
        }
    }

    fn vrrp_script(&mut self, n: &Node) -> Option<VrrpScript> {
        let name = self.name(n)?.to_string();
        let mut s = VrrpScript {
            name,
            script: Script::new(""),
            interval: 1.0,
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            init_fail: false,
            loc: n.loc.clone(),
        };
        for c in self.block(n) {
            match c.key.as_str() {
                "script" => {
                    if let Some(cmd) = self.command(c) {
                        s.script.cmd = cmd.cmd;
                    }
                }
                "interval" => s.interval = self.secs(c).unwrap_or(1.0),
                "timeout" => s.timeout = self.secs(c),
                "weight" => {
                    s.weight = self.int(c, -253, 253).unwrap_or(0) as i32;
                    s.weight_reverse = c.args.get(1).is_some_and(|a| a == "reverse");
                }
                "rise" => s.rise = self.int(c, 1, 1_000_000).unwrap_or(1) as u32,
                "fall" => s.fall = self.int(c, 1, 1_000_000).unwrap_or(1) as u32,
                "user" => self.user_line(c, &mut s.script),
                "init_fail" => s.init_fail = self.flag(c),
                _ => self.other(c, "vrrp_script"),
            }
        }
        if s.script.cmd.is_empty() {
            self.err(&n.loc, format!("vrrp_script {} has no script", s.name));
        } else {
            if s.script.run_as.is_none() {
                s.script.run_as = self.default_run_as(n);
            }
            self.scripts.push((n.loc.clone(), format!("vrrp_script {}", s.name), s.script.clone()));
        }
        Some(s)
    }

    /// Mail alerts asked for where no mail can be sent (no `smtp_server` or no
    /// `notification_email`): keepalived sends nothing then, silently; rvs-agent warns
    /// once, naming the first that asks, and `-t` lists `smtp_alert` as not honoured.
    fn check_smtp(&mut self, cfg: &Config) {
        let smtp = &cfg.global_defs.smtp;
        if smtp.enabled() {
            return;
        }
        let missing = match (&smtp.server, smtp.to.is_empty()) {
            (None, true) => "no smtp_server and no notification_email",
            (None, false) => "no smtp_server",
            _ => "no notification_email",
        };
        let on = |a: Option<bool>| a == Some(true);
        let instances = cfg.vrrp_instances.iter().filter(|i| on(i.notify.smtp_alert));
        let groups = cfg.vrrp_sync_groups.iter().filter(|g| on(g.notify.smtp_alert));
        let vss = cfg.virtual_servers.iter().filter(|v| on(v.smtp_alert));
        let rss = cfg.virtual_servers.iter().flat_map(|v| &v.real_servers).filter(|r| on(r.smtp_alert));
        let final_value = |k: &str| match k {
            "smtp_alert" => smtp.alert,
            "smtp_alert_vrrp" => smtp.alert_vrrp,
            _ => smtp.alert_checker,
        };
        let global = self.global_alerts.iter().filter(|(_, k)| on(final_value(k)));
        let asked: Vec<(Loc, String)> = global
            .map(|(l, k)| (l.clone(), format!("global_defs {k}")))
            .chain(instances.map(|i| (i.loc.clone(), format!("vrrp_instance {} smtp_alert", i.name))))
            .chain(groups.map(|g| (g.loc.clone(), format!("vrrp_sync_group {} smtp_alert", g.name))))
            .chain(vss.map(|v| (v.loc.clone(), "virtual_server smtp_alert".to_string())))
            .chain(rss.map(|r| (r.loc.clone(), format!("real_server {} smtp_alert", r.addr))))
            .collect();
        if let Some((loc, first)) = asked.first() {
            let more = match asked.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more)"),
            };
            self.warn(loc, format!("{first}{more}: no mail will be sent: global_defs has {missing}"));
            self.ignored.push((loc.clone(), "smtp_alert".into()));
        }
    }

    /// An `smtp_alert*` switch (bare: on) into `slot`; a value that is not a boolean is
    /// warned about and leaves `slot` as it was, as keepalived (it reports and ignores
    /// the line). Returns what was set.
    fn smtp_switch(&mut self, c: &Node, slot: &mut Option<bool>) -> Option<bool> {
        match truth(c) {
            Ok(v) => {
                *slot = Some(v);
                Some(v)
            }
            Err(a) => {
                self.warn(&c.loc, format!("{} takes true or false, not '{a}': line ignored (as keepalived)", c.key));
                None
            }
        }
    }

    /// A unicast peer's `min_ttl N` / `max_ttl N` (keepalived 2.2.7's `unicast_peer`
    /// options); none given: none. As keepalived, anything else is warned about and
    /// ignored, the peer kept; a minimum above the maximum (warned) drops every advert of
    /// the peer, as keepalived's range check does.
    fn peer_ttl(&mut self, p: &Node) -> Option<(u8, u8)> {
        let (mut min, mut max, mut given) = (0u8, 255u8, false);
        let mut args = p.args.iter();
        while let Some(k) = args.next() {
            match k.as_str() {
                k @ ("min_ttl" | "max_ttl") => match args.next().and_then(|v| v.parse::<u8>().ok()) {
                    Some(v) if k == "min_ttl" => (min, given) = (v, true),
                    Some(v) => (max, given) = (v, true),
                    None => self.warn(&p.loc, format!("unicast_peer {}: {k} needs a TTL 0-255: ignored", p.key)),
                },
                k => self
                    .warn(&p.loc, format!("unicast_peer {}: unknown option '{k}' ignored (min_ttl, max_ttl)", p.key)),
            }
        }
        if min > max {
            self.warn(
                &p.loc,
                format!("unicast_peer {}: min_ttl {min} is above max_ttl {max}: its adverts are all dropped", p.key),
            );
        }
        given.then_some((min, max))
    }

    /// keepalived's `smtp_server HOST [PORT]` (port 25 by default).
    fn smtp_server(&mut self, c: &Node) -> Option<(String, u16)> {
        let host = self.arg(c)?;
        let port = match c.args.get(1) {
            Some(p) => self.port(&c.loc, "smtp_server", Some(p))?,
            None => 25,
        };
        if host.parse::<IpAddr>().is_err() && !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)) {
            self.err(&c.loc, format!("smtp_server: '{host}' is neither an IP address nor a host name"));
            return None;
        }
        Some((host.to_string(), port))
    }

    fn notify(&mut self, c: &Node, nt: &mut Notify) -> bool {
        let slot = match c.key.as_str() {
            "notify_master" => &mut nt.master,
            "notify_backup" => &mut nt.backup,
            "notify_fault" => &mut nt.fault,
            "notify_stop" => &mut nt.stop,
            "notify" => &mut nt.any,
            "smtp_alert" => {
                self.smtp_switch(c, &mut nt.smtp_alert);
                return true;
            }
            "notify_priority_changes" => {
                nt.priority_changes = Some(self.flag_value(c));
                return true;
            }
            "notify_master_rx_lower_pri" => &mut nt.master_rx_lower_pri,
            "notify_deleted" => {
                if nt.notify_deleted {
                    self.warn(&c.loc, "notify_deleted is already given: this one ignored (as keepalived)");
                } else {
                    nt.notify_deleted = true;
                    nt.deleted = if c.args.is_empty() { None } else { self.script(c) };
                }
                return true;
            }
            _ => return false,
        };
        if slot.is_some() {
            self.warn(&c.loc, format!("{} is already given: this one ignored (as keepalived)", c.key));
        } else {
            *slot = self.script(c);
        }
        true
    }

    fn sync_group(&mut self, n: &Node) -> Option<SyncGroup> {
        let name = self.name(n)?.to_string();
        let mut g = SyncGroup { name, members: Vec::new(), notify: Notify::default(), loc: n.loc.clone() };
        for c in self.block(n) {
            if c.key == "notify_master_rx_lower_pri" || c.key == "notify_deleted" {
                self.err(&c.loc, format!("{} is a vrrp_instance's, not a vrrp_sync_group's (as keepalived)", c.key));
                continue;
            }
            if self.notify(c, &mut g.notify) {
                continue;
            }
            match c.key.as_str() {
                "group" => {
                    for m in self.block(c) {
                        g.members.push(m.key.clone());
                        g.members.extend(m.args.iter().cloned());
                    }
                }
                "global_tracking" | "sync_group_tracking_weight" => {
                    self.ignore(c, "each instance applies its own tracking");
                }
                _ => self.other(c, "vrrp_sync_group"),
            }
        }
        if g.members.is_empty() {
            self.err(&n.loc, format!("vrrp_sync_group {} has no group {{ ... }} members", g.name));
        }
        Some(g)
    }

    fn vip(&mut self, n: &Node) -> Option<VirtualIp> {
        let addr: IpNet = match n.key.parse::<IpNet>() {
            Ok(a) => a,
            Err(_) => match n.key.parse::<IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    self.err(&n.loc, format!("virtual_ipaddress: '{}' is not an address[/prefix]", n.key));
                    return None;
                }
            },
        };
        let mut v = VirtualIp { addr, dev: None };
        let mut it = n.args.iter();
        while let Some(k) = it.next() {
            let instead = match k.as_str() {
                "dev" => {
                    v.dev = it.next().cloned();
                    continue;
                }
                "label" => "rvsd's addresses have no labels",
                "brd" | "broadcast" => "rvsd's addresses have no broadcast address",
                "scope" => "rvsd's addresses have no scope",
                "metric" => "the address's prefix route is rvsd's connected route, without a metric",
                "no_track" => "rvs does not take a VIP's interface state into the instance's state",
                "home" | "-nodad" | "nodad" | "noprefixroute" | "autojoin" => {
                    "IPv6 address flags are the kernel's: rvsd holds the address without them"
                }
                other => {
                    self.err(&n.loc, format!("virtual_ipaddress {}: unknown option '{other}'", n.key));
                    continue;
                }
            };
            if matches!(k.as_str(), "label" | "brd" | "broadcast" | "scope" | "metric") {
                it.next();
            }
            self.warn(
                &n.loc,
                format!("virtual_ipaddress {}: '{k}' is accepted and not honoured by rvs: {instead}", n.key),
            );
            self.ignored.push((n.loc.clone(), format!("virtual_ipaddress {k}")));
        }
        Some(v)
    }

    /// `track_interface` / `track_script` / `track_process` entries: `NAME [weight N
    /// [reverse|noreverse]]`.
    fn tracks(&mut self, n: &Node) -> Vec<Track> {
        let mut out = Vec::new();
        for c in self.block(n) {
            if out.iter().any(|t: &Track| t.name == c.key) {
                self.warn(&c.loc, format!("{} {}: tracked twice: this one ignored (as keepalived)", n.key, c.key));
                continue;
            }
            let mut t = Track { name: c.key.clone(), weight: None, reverse: None };
            match c.args.split_first() {
                None => {}
                Some((w, rest)) if w == "weight" => {
                    if let Some((w, r)) = self.weight_reverse(c, &format!("{} {}", n.key, c.key), rest, (-254, 254)) {
                        (t.weight, t.reverse) = (Some(w), r);
                    }
                }
                Some(_) => {
                    self.err(&c.loc, format!("{}: expected 'weight N [reverse]', got '{}'", c.key, c.args.join(" ")))
                }
            }
            out.push(t);
        }
        out
    }

    /// `vrrp_track_process NAME { process ...; param_match; weight; quorum; quorum_max;
    /// fork_delay; terminate_delay; delay; full_command }`, as keepalived reads it.
    fn track_process(&mut self, n: &Node) -> Option<TrackProcess> {
        let name = self.name(n)?.to_string();
        let mut p = TrackProcess::new(name, n.loc.clone());
        let ctx = format!("vrrp_track_process {}", p.name);
        for c in self.block(n) {
            match c.key.as_str() {
                "process" if !p.process.is_empty() => {
                    self.warn(&c.loc, format!("{ctx}: process is already given: this one ignored (as keepalived)"))
                }
                "process" => match c.args.split_first() {
                    Some((cmd, params)) => {
                        p.process = cmd.clone();
                        if !params.is_empty() {
                            p.params = params.to_vec();
                            p.full_command = true;
                            if p.param_match == ParamMatch::None {
                                p.param_match = ParamMatch::Exact;
                            }
                        }
                    }
                    None => self.err(&c.loc, format!("{ctx}: process needs a name")),
                },
                "param_match" => {
                    p.param_match = match c.args.first().map(String::as_str) {
                        None => ParamMatch::Exact,
                        Some("initial") => ParamMatch::Initial,
                        Some("partial") => ParamMatch::Partial,
                        Some(o) => {
                            self.err(&c.loc, format!("{ctx}: param_match '{o}' is not initial or partial"));
                            continue;
                        }
                    };
                    p.full_command = true;
                }
                "full_command" => p.full_command = self.flag(c),
                "weight" => {
                    if let Some((w, r)) = self.weight_reverse(c, &ctx, &c.args, (-254, 254)) {
                        (p.weight, p.weight_reverse) = (w, r.unwrap_or(false));
                    }
                }
                "quorum" => p.quorum = self.int(c, 1, 65535).map_or(p.quorum, |q| q as u32),
                "quorum_max" => p.quorum_max = self.int(c, 0, 65535).map_or(p.quorum_max, |q| q as u32),
                k @ ("fork_delay" | "terminate_delay" | "delay") => match self.secs(c) {
                    Some(d) if (0.000_001..=3600.0).contains(&d) => {
                        if k != "terminate_delay" {
                            p.fork_delay = d;
                        }
                        if k != "fork_delay" {
                            p.terminate_delay = d;
                        }
                    }
                    Some(_) => self.err(&c.loc, format!("{ctx}: {k} must be 0.000001..3600 seconds")),
                    None => {}
                },
                _ => self.other(c, &ctx),
            }
        }
        if p.process.is_empty() {
            self.err(&n.loc, format!("{ctx} has no process"));
            return None;
        }
        if p.quorum_max == 0 && p.quorum <= 1 {
            // keepalived: quorum_max 0 means the process must not run at all.
            p.quorum = 0;
        } else if p.quorum > p.quorum_max {
            self.err(&n.loc, format!("{ctx}: quorum {} is above quorum_max {}", p.quorum, p.quorum_max));
        }
        if !p.full_command && p.process.len() > 15 {
            self.warn(
                &n.loc,
                format!(
                    "{ctx}: '{}' is longer than a process name can be (15 bytes: /proc/PID/stat): it \
                     matches nothing (as keepalived); say full_command to match the command",
                    p.process
                ),
            );
        }
        Some(p)
    }

    fn vrrp_instance(&mut self, n: &Node, g: &GlobalDefs) -> Option<VrrpInstance> {
        let name = self.name(n)?.to_string();
        let mut i = VrrpInstance {
            name,
            state: InitialState::Backup,
            interface: String::new(),
            dpdk_interface: None,
            vrid: 0,
            priority: 100,
            advert_int: 1.0,
            version: g.vrrp_version.unwrap_or_default(),
            auth_pass: None,
            auth_ah: false,
            virtual_ipaddress: Vec::new(),
            virtual_ipaddress_excluded: Vec::new(),
            virtual_routes: Vec::new(),
            track_interface: Vec::new(),
            track_script: Vec::new(),
            track_process: Vec::new(),
            track_file: Vec::new(),
            track_bfd: Vec::new(),
            nopreempt: false,
            preempt_delay: 0.0,
            unicast_src_ip: None,
            track_src_ip: false,
            unicast_peers: Vec::new(),
            unicast_block: false,
            unicast_peer_ttl: Vec::new(),
            unicast_ttl: None,
            unicast_fault_no_peer: false,
            mcast_dst_ip: None,
            notify: Notify::default(),
            garp_master_delay: g.vrrp_garp_master_delay,
            garp_master_repeat: g.vrrp_garp_master_repeat,
            garp_master_refresh: g.vrrp_garp_master_refresh,
            checksum: ChecksumMode::PseudoHeader,
            higher_prio_send_advert: g.vrrp_higher_prio_send_advert,
            skip_check_adv_addr: g.vrrp_skip_check_adv_addr,
            garp_master_refresh_repeat: None,
            garp_lower_prio_repeat: None,
            garp_lower_prio_delay: None,
            lower_prio_no_advert: g.vrrp_lower_prio_no_advert,
            strict_mode: g.vrrp_strict,
            down_timer_adverts: g.vrrp_down_timer_adverts.unwrap_or(3),
            loc: n.loc.clone(),
        };
        let mut advert_loc = None;
        let mut version_loc: Option<Loc> = None;
        // Where each keyword was set, for strict mode's warnings.
        let mut set: HashMap<&str, Loc> = HashMap::new();
        for c in self.block(n) {
            set.insert(c.key.as_str(), c.loc.clone());
            if self.notify(c, &mut i.notify) {
                continue;
            }
            match c.key.as_str() {
                "state" => match self.arg(c) {
                    Some("MASTER") => i.state = InitialState::Master,
                    Some("BACKUP") => i.state = InitialState::Backup,
                    Some(o) => self.err(&c.loc, format!("state must be MASTER or BACKUP, got '{o}'")),
                    None => {}
                },
                "interface" => i.interface = self.arg(c).unwrap_or_default().to_string(),
                "dpdk_interface" => i.dpdk_interface = self.arg(c).map(str::to_string),
                "virtual_router_id" => i.vrid = self.int(c, 1, 255).unwrap_or(0) as u8,
                "priority" => i.priority = self.int(c, 1, 255).unwrap_or(100) as u8,
                "advert_int" => {
                    i.advert_int = self.secs(c).unwrap_or(1.0);
                    advert_loc = Some(c.loc.clone());
                }
                "version" | "vrrp_version" => {
                    i.version = self.version(c).unwrap_or_default();
                    version_loc = Some(c.loc.clone());
                }
                "higher_prio_send_advert" => i.higher_prio_send_advert = self.flag_value(c),
                "strict_mode" => i.strict_mode = self.flag_value(c),
                "down_timer_adverts" => {
                    i.down_timer_adverts = self.int(c, 1, 100).map_or(i.down_timer_adverts, |n| n as u32)
                }
                "skip_check_adv_addr" => i.skip_check_adv_addr = self.flag_value(c),
                "lower_prio_no_advert" => i.lower_prio_no_advert = self.flag_value(c),
                "garp_master_refresh_repeat" => i.garp_master_refresh_repeat = self.uint(c).map(|r| r.max(1)),
                "garp_lower_prio_repeat" => i.garp_lower_prio_repeat = self.uint(c),
                "garp_lower_prio_delay" => i.garp_lower_prio_delay = self.uint(c),
                "authentication" => {
                    let mut kind = None;
                    for a in self.block(c) {
                        match a.key.as_str() {
                            "auth_type" => kind = self.arg(a).map(str::to_string),
                            "auth_pass" => i.auth_pass = self.arg(a).map(str::to_string),
                            _ => self.other(a, "authentication"),
                        }
                    }
                    match kind.as_deref() {
                        Some("PASS") => {}
                        Some("AH") => i.auth_ah = true,
                        // keepalived's auth_type defaults to none: a password alone is unused.
                        None if i.auth_pass.take().is_some() => self.warn(
                            &c.loc,
                            "auth_pass without auth_type: no authentication, as keepalived (say auth_type PASS)",
                        ),
                        None => {}
                        Some(o) => self.err(&c.loc, format!("unknown auth_type '{o}' (PASS or AH)")),
                    }
                    if kind.is_some() && i.auth_pass.as_deref().is_none_or(str::is_empty) {
                        self.warn(&c.loc, "authentication without auth_pass: ignored (as keepalived)");
                        (i.auth_pass, i.auth_ah) = (None, false);
                    }
                    if i.auth_pass.as_ref().is_some_and(|p| p.len() > 8) {
                        self.warn(&c.loc, "auth_pass is longer than 8 characters: only the first 8 are used");
                    }
                }
                "virtual_ipaddress" => {
                    for v in self.block(c) {
                        if let Some(v) = self.vip(v) {
                            i.virtual_ipaddress.push(v);
                        }
                    }
                }
                "virtual_ipaddress_excluded" => {
                    for v in self.block(c) {
                        if let Some(v) = self.vip(v) {
                            i.virtual_ipaddress_excluded.push(v);
                        }
                    }
                }
                "virtual_routes" => {
                    for r in self.block(c) {
                        if let Some(r) = self.static_route(r, "virtual_routes") {
                            i.virtual_routes.push(r);
                        }
                    }
                }
                "track_interface" => i.track_interface = self.tracks(c),
                "track_script" => i.track_script = self.tracks(c),
                "track_process" => i.track_process = self.tracks(c),
                "track_bfd" => i.track_bfd = self.tracks(c),
                "track_file" => i.track_file = self.tracked_files(c, &i.name),
                "nopreempt" => i.nopreempt = self.flag(c),
                "preempt_delay" => i.preempt_delay = self.secs(c).unwrap_or(0.0),
                "track_src_ip" => i.track_src_ip = self.flag(c),
                "unicast_src_ip" | "mcast_src_ip" => {
                    if let Some(a) = self.arg(c) {
                        i.unicast_src_ip = self.ip(&c.loc, &c.key, a);
                    }
                }
                "unicast_peer" => {
                    i.unicast_block = true;
                    for p in self.block(c) {
                        if let Some(ip) = self.ip(&p.loc, "unicast_peer", &p.key) {
                            i.unicast_peers.push(ip);
                            if let Some(range) = self.peer_ttl(p) {
                                i.unicast_peer_ttl.push((ip, range.0, range.1));
                            }
                        }
                    }
                }
                "unicast_fault_no_peer" => i.unicast_fault_no_peer = self.flag(c),
                "mcast_dst_ip" => {
                    if let Some(a) = self.arg(c).and_then(|a| self.ip(&c.loc, "mcast_dst_ip", a)) {
                        let ok = match a {
                            IpAddr::V4(v4) => v4.is_multicast(),
                            IpAddr::V6(v6) => v6.is_multicast() && v6.segments()[0] & 0x000f == 2,
                        };
                        if ok {
                            i.mcast_dst_ip = Some(a);
                        } else {
                            let what = if a.is_ipv6() { "link-local multicast" } else { "multicast" };
                            self.warn(&c.loc, format!("mcast_dst_ip {a} is not {what}: ignored (as keepalived)"));
                        }
                    }
                }
                "unicast_ttl" => i.unicast_ttl = self.int(c, 0, 255).map(|t| t as u8),
                "garp_master_delay" => i.garp_master_delay = self.uint(c),
                "garp_master_repeat" => i.garp_master_repeat = self.uint(c),
                "garp_master_refresh" => i.garp_master_refresh = self.uint(c),
                "old_unicast_checksum" => {
                    self.flag(c);
                    i.checksum = ChecksumMode::MulticastPseudoHeader;
                }
                // Honoured by construction: rvs-agent always drops an advert whose source
                // is not one of the unicast peers (keepalived checks only with this).
                "check_unicast_src" => {
                    self.flag(c);
                }
                "lvs_sync_daemon_interface" => {
                    if let Some(interface) = self.arg(c).map(str::to_string) {
                        if c.args.len() > 1 {
                            self.err(&c.loc, "lvs_sync_daemon_interface takes one interface");
                        }
                        self.sync_daemons.push(SyncDaemon {
                            key: c.key.clone(),
                            loc: c.loc.clone(),
                            interface,
                            instance: Some(i.name.clone()),
                            syncid: None,
                            transport: Vec::new(),
                            deprecated: true,
                        });
                    }
                }
                _ => self.other(c, "vrrp_instance"),
            }
        }
        // keepalived runs IPv6 instances with VRRPv3 whatever the default says.
        if i.is_ipv6() && i.version == Version::V2 {
            if let Some(l) = version_loc {
                self.warn(&l, "IPv6 VRRP is version 3 (as keepalived does): version 2 not used");
            }
            i.version = Version::V3;
        }
        let loc = advert_loc.unwrap_or_else(|| n.loc.clone());
        match i.version {
            Version::V2 if i.advert_int.fract() != 0.0 || i.advert_int < 1.0 || i.advert_int > 255.0 => {
                self.err(&loc, format!("advert_int {} under VRRPv2 must be whole seconds 1-255", i.advert_int));
            }
            Version::V3 if !(0.01..=40.95).contains(&i.advert_int) => {
                self.err(&loc, format!("advert_int {} under VRRPv3 must be 0.01-40.95 s", i.advert_int));
            }
            _ => {}
        }
        // keepalived's vrrp_complete_instance: without a priority, `state MASTER` makes the
        // instance the address owner (255).
        if !set.contains_key("priority") && i.state == InitialState::Master {
            i.priority = 255;
        }
        if let Some(g) = i.mcast_dst_ip {
            let loc = set.get("mcast_dst_ip").cloned().unwrap_or_else(|| i.loc.clone());
            if !i.unicast_peers.is_empty() {
                self.warn(
                    &loc,
                    format!("vrrp_instance {}: mcast_dst_ip with unicast peers: ignored (as keepalived)", i.name),
                );
                i.mcast_dst_ip = None;
            } else if g.is_ipv6() != i.is_ipv6() {
                self.err(&loc, format!("vrrp_instance {}: mcast_dst_ip {g} is not of the instance's family", i.name));
            }
        }
        if i.unicast_ttl.is_some() && i.unicast_peers.is_empty() {
            let loc = set.get("unicast_ttl").cloned().unwrap_or_else(|| i.loc.clone());
            self.warn(
                &loc,
                format!("vrrp_instance {}: unicast_ttl without unicast peers: ignored (as keepalived)", i.name),
            );
            i.unicast_ttl = None;
        }
        if i.strict_mode {
            self.strict_mode(&mut i, &set);
        }
        if i.version == Version::V3 && i.auth_pass.is_some() {
            self.warn(&n.loc, format!("vrrp_instance {}: VRRPv3 has no authentication; auth_pass ignored", i.name));
            (i.auth_pass, i.auth_ah) = (None, false);
        }
        if i.auth_ah && i.auth_pass.is_some() && i.state == InitialState::Master && i.priority != 255 {
            // keepalived: it must hear an advert (the sequence number in use) first.
            self.warn(
                &n.loc,
                format!(
                    "vrrp_instance {}: initial state MASTER is incompatible with AH authentication: starts as BACKUP (as keepalived)",
                    i.name
                ),
            );
            i.state = InitialState::Backup;
        }
        Some(i)
    }

    /// keepalived's strict mode (`vrrp_strict` / `strict_mode`) on an instance read, as
    /// 2.2.7's `vrrp_complete_instance` applies it: what strict VRRP forbids is refused
    /// (unicast peers) or reset with a warning naming it (keepalived reports each as a
    /// configuration error and runs with the reset); the defaults strict mode changes are
    /// changed. `set` holds where each keyword of the instance was.
    fn strict_mode(&mut self, i: &mut VrrpInstance, set: &HashMap<&str, Loc>) {
        let name = i.name.clone();
        let at = |k: &str| set.get(k).cloned().unwrap_or_else(|| i.loc.clone());
        if !i.unicast_peers.is_empty() {
            // keepalived 2.2.7 means to refuse it but tests its unicast flag before setting
            // it, so it runs; later versions refuse it on a multicast-capable interface.
            let loc = at("unicast_peer");
            self.warn(&loc, format!("vrrp_instance {name}: strict mode (vrrp_strict): unicast peers are not strict VRRP (keepalived 2.2.7 runs them; later versions refuse them)"));
        }
        let reset = |p: &mut Self, k: &str, what: &str| {
            p.warn(&at(k), format!("vrrp_instance {name}: strict mode (vrrp_strict): {k} {what} (as keepalived)"));
        };
        if i.auth_pass.take().is_some() {
            reset(self, "authentication", "is not allowed: ignored");
        }
        let owner = i.priority == 255;
        if set.contains_key("state") && (i.state == InitialState::Master) != owner {
            let (state, now) = if owner { ("BACKUP", InitialState::Master) } else { ("MASTER", InitialState::Backup) };
            let starts = if owner { "MASTER" } else { "BACKUP" };
            reset(
                self,
                "state",
                &format!("{state} must match being the address owner (priority 255): starting as {starts}"),
            );
            i.state = now;
        }
        if i.preempt_delay > 0.0 {
            reset(self, "preempt_delay", "is not allowed: no delay");
            i.preempt_delay = 0.0;
        }
        if i.down_timer_adverts != 3 {
            reset(self, "down_timer_adverts", "is not allowed: 3");
            i.down_timer_adverts = 3;
        }
        if i.higher_prio_send_advert {
            if set.contains_key("higher_prio_send_advert") {
                reset(self, "higher_prio_send_advert", "is not allowed: off");
            }
            i.higher_prio_send_advert = false;
        }
        if !i.lower_prio_no_advert {
            if set.contains_key("lower_prio_no_advert") {
                reset(self, "lower_prio_no_advert", "off is not allowed: on");
            }
            i.lower_prio_no_advert = true;
        }
        for (k, v) in [
            ("garp_lower_prio_repeat", &mut i.garp_lower_prio_repeat),
            ("garp_lower_prio_delay", &mut i.garp_lower_prio_delay),
        ] {
            if v.is_some_and(|n| n > 0) {
                let loc = at(k);
                self.warn(
                    &loc,
                    format!("vrrp_instance {name}: strict mode (vrrp_strict): {k} is not allowed: 0 (as keepalived)"),
                );
            }
            *v = Some(0);
        }
        let first_v6 = i.virtual_ipaddress.first().map(|v| v.addr.addr()).filter(IpAddr::is_ipv6);
        if i.unicast_peers.is_empty()
            && first_v6.is_some_and(|a| !matches!(a, IpAddr::V6(a) if a.is_unicast_link_local()))
        {
            let loc = at("virtual_ipaddress");
            self.warn(&loc, format!("vrrp_instance {name}: strict mode (vrrp_strict): the first IPv6 VIP must be link-local (keepalived reports it)"));
        }
        if !self.strict_noted {
            self.strict_noted = true;
            let loc = at("strict_mode");
            self.warn(&loc, "strict mode (vrrp_strict): keepalived's no-accept firewall (traffic to the VIPs of a master that is not their owner dropped) is not applied: rvsd's VIPs carry the services".to_string());
            self.ignored.push((loc, "vrrp_strict no-accept firewall".into()));
        }
    }

    /// `IP PORT` or `IP-LAST PORT` (last octet / group range, as keepalived).
    fn addr_range(&mut self, n: &Node, what: &str) -> Vec<IpAddr> {
        let (first, last) = match n.key.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (n.key.as_str(), None),
        };
        let Some(first) = self.ip(&n.loc, what, first) else { return Vec::new() };
        let Some(last) = last else { return vec![first] };
        let Ok(last) = last.parse::<u16>() else {
            self.err(&n.loc, format!("{what}: bad range end in '{}'", n.key));
            return Vec::new();
        };
        match first {
            IpAddr::V4(a) => {
                let o = a.octets();
                if last < u16::from(o[3]) || last > 255 {
                    self.err(&n.loc, format!("{what}: bad range '{}'", n.key));
                    return Vec::new();
                }
                (u16::from(o[3])..=last).map(|x| IpAddr::from([o[0], o[1], o[2], x as u8])).collect()
            }
            IpAddr::V6(a) => {
                let s = a.segments();
                if last < s[7] {
                    self.err(&n.loc, format!("{what}: bad range '{}'", n.key));
                    return Vec::new();
                }
                (s[7]..=last)
                    .map(|x| {
                        let mut t = s;
                        t[7] = x;
                        IpAddr::from(t)
                    })
                    .collect()
            }
        }
    }

    /// A firewall mark as keepalived reads it (`alloc_vs`, `alloc_vsg_entry`: decimal,
    /// up to 4294967295); 0, which keepalived takes and then treats as no mark, is an
    /// error, as rvsd's.
    fn fwmark(&mut self, loc: &Loc, what: &str, s: &str) -> Option<u32> {
        match s.parse::<u32>() {
            Ok(0) => {
                self.err(loc, format!("{what} 0: mark 0 is no mark (1 to 4294967295)"));
                None
            }
            Ok(m) => Some(m),
            Err(_) => {
                self.err(loc, format!("{what} '{s}' is not a mark (1 to 4294967295)"));
                None
            }
        }
    }

    fn vs_group(&mut self, n: &Node) -> Option<VirtualServerGroup> {
        let name = self.name(n)?.to_string();
        let mut g = VirtualServerGroup { name, members: Vec::new(), fwmarks: Vec::new(), loc: n.loc.clone() };
        for c in self.block(n) {
            if c.key == "fwmark" {
                // keepalived's alloc_vsg_entry: `fwmark MARK [inet|inet6]`.
                let what = format!("virtual_server_group {}: fwmark", g.name);
                let (mark, family) = match c.args.as_slice() {
                    [m] => (m, None),
                    [m, f] => (m, Some(f.as_str())),
                    _ => {
                        self.err(&c.loc, format!("{what} expects MARK [inet|inet6]"));
                        continue;
                    }
                };
                let Some(mark) = self.fwmark(&c.loc, &what, mark) else { continue };
                let v6 = match family {
                    None => None,
                    Some("inet") => Some(false),
                    Some("inet6") => Some(true),
                    Some(f) => {
                        self.err(&c.loc, format!("{what} {mark}: family '{f}' is unknown (inet or inet6)"));
                        continue;
                    }
                };
                let e = GroupFwmark { mark, v6 };
                if g.fwmarks.contains(&e) {
                    self.err(&c.loc, format!("{what} {mark} is listed twice"));
                    continue;
                }
                g.fwmarks.push(e);
                continue;
            }
            let addrs = self.addr_range(c, "virtual_server_group");
            if let Some(port) = self.port(&c.loc, "virtual_server_group entry", c.args.first()) {
                g.members.extend(addrs.into_iter().map(|a| SocketAddr::new(a, port)));
            }
        }
        // keepalived's vsg_handler refuses (and drops) such a group: the fwmark without a
        // family would take the virtual server's, which one of the others contradicts.
        let has = |v6: bool| g.members.iter().any(|m| m.is_ipv6() == v6) || g.fwmarks.iter().any(|f| f.v6 == Some(v6));
        if has(false) && has(true) {
            if let Some(f) = g.fwmarks.iter().find(|f| f.v6.is_none()) {
                let msg = format!(
                    "virtual_server_group {}: IPv4 and IPv6 entries and fwmark {} without a family: write its \
                     family (fwmark {} inet|inet6)",
                    g.name, f.mark, f.mark
                );
                self.err(&n.loc, msg);
            }
        }
        Some(g)
    }

    fn laddr_group(&mut self, n: &Node) -> Option<LocalAddressGroup> {
        let name = self.name(n)?.to_string();
        let mut g = LocalAddressGroup { name, addrs: Vec::new(), loc: n.loc.clone() };
        for c in self.block(n) {
            let addrs = self.addr_range(c, "local_address_group");
            if c.args.len() > 1 {
                self.err(&c.loc, format!("local_address_group {}: expected 'IP[-LAST] [DEV]'", g.name));
            }
            let dev = c.args.first().cloned();
            g.addrs.extend(addrs.into_iter().map(|a| (a, dev.clone())));
        }
        Some(g)
    }

    /// A `static_routes` or `virtual_routes` (`what`) line: `[src ADDR] [to] PREFIX|default
    /// [via|gw GW] [dev PORT] [src ADDR] [metric|preference N]` (keepalived's older
    /// samples put `src` first).
    fn static_route(&mut self, n: &Node, what: &str) -> Option<StaticRoute> {
        let tokens: Vec<&String> = std::iter::once(&n.key).chain(&n.args).collect();
        let mut r = StaticRoute {
            prefix: IpNet::default(),
            via: None,
            dev: None,
            src: None,
            metric: 0,
            scope: ctl::RouteScope::Global,
            loc: n.loc.clone(),
        };
        let mut dest: Option<&str> = None;
        let mut it = tokens.into_iter();
        while let Some(k) = it.next() {
            let name = dest.unwrap_or(n.key.as_str());
            let bad = |p: &mut Self, need: &str| p.err(&n.loc, format!("{what} {name}: {k} needs {need}"));
            match k.as_str() {
                "via" | "gw" => match it.next().and_then(|v| v.parse::<IpAddr>().ok()) {
                    Some(a) => r.via = Some(a),
                    None => bad(self, "an address"),
                },
                "dev" => match it.next() {
                    Some(d) => r.dev = Some(d.clone()),
                    None => bad(self, "a port"),
                },
                "src" => match it.next().and_then(|v| v.parse::<IpAddr>().ok()) {
                    Some(a) => r.src = Some(a),
                    None => bad(self, "an address"),
                },
                "metric" | "preference" => match it.next().and_then(|v| v.parse::<u32>().ok()) {
                    Some(m) => r.metric = m,
                    None => bad(self, "a number"),
                },
                // rvsd's routes are global (through a gateway, or any) or link (connected).
                "scope" => match it.next().map(|s| s.as_str()) {
                    Some("link" | "253") => r.scope = ctl::RouteScope::Link,
                    Some("global" | "universe" | "0") => r.scope = ctl::RouteScope::Global,
                    Some(s) => {
                        let msg = format!(
                            "{what} {name}: scope {s} is valid keepalived that rvs does not support (rvsd's routes \
                             are global or link)"
                        );
                        self.err(&n.loc, msg);
                        return None;
                    }
                    None => bad(self, "link or global"),
                },
                "to" if dest.is_none() => match it.next() {
                    Some(d) => dest = Some(d),
                    None => bad(self, "a prefix"),
                },
                t @ ("blackhole" | "unreachable" | "prohibit" | "throw" | "local" | "broadcast" | "anycast"
                | "multicast" | "nat" | "unicast")
                    if dest.is_none() =>
                {
                    let msg = format!(
                        "{what}: route type '{t}' is valid keepalived that rvs does not support yet (rvsd's routes \
                         forward)"
                    );
                    self.err(&n.loc, msg);
                    return None;
                }
                d if dest.is_none() => dest = Some(d),
                other => {
                    self.err(&n.loc, format!("{what} {name}: '{other}' is valid keepalived that rvs does not support yet (via, dev, src, metric, scope)"));
                    return None;
                }
            }
        }
        let Some(dest) = dest else {
            self.err(&n.loc, format!("{what}: no prefix (or default)"));
            return None;
        };
        r.prefix = if dest == "default" {
            IpNet::new(IpAddr::from([0, 0, 0, 0]), 0).expect("a valid prefix")
        } else {
            match dest.parse::<IpNet>().or_else(|_| dest.parse::<IpAddr>().map(IpNet::from)) {
                Ok(p) => p.trunc(),
                Err(_) => {
                    self.err(&n.loc, format!("{what}: '{dest}' is not a prefix (or default)"));
                    return None;
                }
            }
        };
        if dest == "default" && r.via.is_some_and(|v| v.is_ipv6()) {
            r.prefix = IpNet::new(IpAddr::from([0u16; 8]), 0).expect("a valid prefix");
        }
        if r.via.is_none() && r.dev.is_none() {
            self.err(&n.loc, format!("{what} {dest}: needs via GW or dev DPDK_PORT"));
            return None;
        }
        if r.scope == ctl::RouteScope::Link && r.via.is_some() {
            self.err(&n.loc, format!("{what} {dest}: scope link is a connected route: no via"));
            return None;
        }
        Some(r)
    }

    /// `deny_address_group` / `allow_address_group`: `IP`, `IP-LAST` or `IP/LEN` per line.
    fn address_group(&mut self, n: &Node, kind: AddressGroupKind) -> Option<AddressGroup> {
        let name = self.name(n)?.to_string();
        let mut g = AddressGroup { kind, name, prefixes: Vec::new(), loc: n.loc.clone() };
        let what = match kind {
            AddressGroupKind::Deny => "deny_address_group",
            AddressGroupKind::Allow => "allow_address_group",
        };
        for c in self.block(n) {
            if !c.args.is_empty() || c.block.is_some() {
                self.err(&c.loc, format!("{what} {}: expected 'IP[-LAST]' or 'IP/LEN' per line", g.name));
            } else if c.key.starts_with("ipset:") {
                self.err(&c.loc, format!("{what} {}: '{}': rvs has no ipsets; list the prefixes", g.name, c.key));
            } else if c.key.contains('/') {
                match c.key.parse::<IpNet>() {
                    Ok(p) => g.prefixes.push(p.trunc()),
                    Err(_) => self.err(&c.loc, format!("{what} {}: bad prefix '{}'", g.name, c.key)),
                }
            } else {
                g.prefixes.extend(self.addr_range(c, what).into_iter().map(IpNet::from));
            }
        }
        Some(g)
    }

    fn virtual_server(&mut self, n: &Node) -> Option<(VirtualServer, VsLines)> {
        let target = match n.args.as_slice() {
            [g, name] if g == "group" => VsTarget::Group(name.clone()),
            // The family is settled once the block is read (vs_family).
            [f, mark] if f == "fwmark" => {
                VsTarget::Fwmark { mark: self.fwmark(&n.loc, "virtual_server fwmark", mark)?, v6: false }
            }
            [f, ..] if f == "fwmark" => {
                self.err(&n.loc, "virtual_server fwmark expects one MARK (1 to 4294967295)");
                return None;
            }
            [ip, port] => {
                let ip = self.ip(&n.loc, "virtual_server", ip)?;
                let port = self.port(&n.loc, "virtual_server", Some(port))?;
                VsTarget::Addr(SocketAddr::new(ip, port))
            }
            _ => {
                self.err(&n.loc, "virtual_server expects 'IP PORT', 'group NAME' or 'fwmark MARK'");
                return None;
            }
        };
        let fwmark = matches!(target, VsTarget::Fwmark { .. });
        let mut v = VirtualServer {
            target,
            delay_loop: 60.0,
            lb_algo: "wlc".into(),
            lb_kind: LbKind::FullNat,
            protocol: Proto::Tcp,
            persistence_timeout: None,
            persistence_granularity: None,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            smtp_alert: None,
            sorry_server: None,
            inhibit_on_failure: false,
            alpha: false,
            omega: false,
            ha_suspend: false,
            sorry_server_inhibit: false,
            warmup: None,
            laddr_group_name: None,
            daddr_group_name: None,
            waddr_group_name: None,
            syn_proxy: None,
            proxy_protocol: None,
            establish_timeout: 0,
            dest_check: None,
            expire_quiescent_conn: false,
            ops: false,
            sched_flags: None,
            virtualhost: None,
            real_servers: Vec::new(),
            ipv6: None,
            loc: n.loc.clone(),
        };
        let mut kind_seen = false;
        let mut lines = VsLines::default();
        // `ip_family`: IPv6, and where.
        let mut family: Option<(bool, Loc)> = None;
        // Checker defaults set at virtual_server level (keepalived 2.x).
        let mut defaults = CheckCommon::default();
        let mut vs_retry_set = (false, false);
        let mut rs_nodes = Vec::new();
        let mut hash_target = None;
        for c in self.block(n) {
            // Where the keywords a fwmark service changes are (fwmark_vs, vs_family).
            let line = Some(c.loc.clone());
            match c.key.as_str() {
                "proxy_protocol" => lines.proxy_protocol = line,
                "sorry_server" => lines.sorry_server = line,
                "persistence_granularity" => lines.granularity = line,
                _ => {}
            }
            match c.key.as_str() {
                "delay_loop" => v.delay_loop = self.secs(c).unwrap_or(60.0),
                "lb_algo" | "lvs_sched" => {
                    if let Some(a) = self.arg(c) {
                        const ALGOS: &[&str] = &[
                            "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "lblc", "lblcr", "fo", "ovf", "mh",
                            "conhash",
                        ];
                        if !ALGOS.contains(&a) {
                            self.err(&c.loc, format!("unknown lb_algo '{a}'"));
                        } else if let Err(e) = a.parse::<fnat::sched::SchedKind>() {
                            self.err(&c.loc, format!("lb_algo {a}: {e}"));
                        }
                        v.lb_algo = a.to_string();
                    }
                }
                "lb_kind" | "lvs_method" => {
                    kind_seen = true;
                    if let Some(k) = self.lb_kind(c) {
                        v.lb_kind = k;
                    }
                }
                "protocol" => {
                    lines.protocol = Some(c.loc.clone());
                    match self.arg(c).map(str::to_ascii_uppercase).as_deref() {
                        Some("TCP") => v.protocol = Proto::Tcp,
                        Some("UDP") => v.protocol = Proto::Udp,
                        Some(p) => self.err(&c.loc, format!("protocol {p} is not supported (TCP or UDP)")),
                        None => {}
                    }
                }
                "persistence_timeout" => v.persistence_timeout = self.uint(c),
                "persistence_granularity" => {
                    if let Some(a) = self.arg(c) {
                        v.persistence_granularity = self.ip(&c.loc, "persistence_granularity", a);
                    }
                }
                "persistence_engine" => self.ignore(c, "persistence is by source address only"),
                "quorum" => v.quorum = self.uint(c).unwrap_or(1),
                "hysteresis" => v.hysteresis = self.uint(c).unwrap_or(0),
                "quorum_up" => v.quorum_up = self.script(c),
                "quorum_down" => v.quorum_down = self.script(c),
                "smtp_alert" => {
                    self.smtp_switch(c, &mut v.smtp_alert);
                }
                "sorry_server" => {
                    // keepalived's alloc_ssvr takes IP [PORT]; rvs wants the port but on
                    // a fwmark (where 0, no port, is the usual).
                    let (ip, port) = match c.args.as_slice() {
                        [ip, port, ..] => (Some(ip), self.port(&c.loc, "sorry_server", Some(port))),
                        [ip] if fwmark => (Some(ip), Some(0)),
                        _ => (None, None),
                    };
                    match ip {
                        Some(ip) => {
                            if let (Some(ip), Some(port)) = (self.ip(&c.loc, "sorry_server", ip), port) {
                                v.sorry_server = Some(SocketAddr::new(ip, port));
                                // keepalived's alloc_ssvr: a new sorry server, not inhibited.
                                v.sorry_server_inhibit = false;
                            }
                        }
                        None if fwmark => self.err(&c.loc, "sorry_server expects IP [PORT]"),
                        None => self.err(&c.loc, "sorry_server expects IP PORT"),
                    }
                }
                "sorry_server_lvs_method" => {
                    self.ignore(c, "the sorry server is reached with the virtual server's lb_kind")
                }
                "inhibit_on_failure" => v.inhibit_on_failure = self.flag(c),
                // keepalived's ssvri_handler: no value, and only after a sorry_server.
                "sorry_server_inhibit" => {
                    if v.sorry_server.is_some() {
                        v.sorry_server_inhibit = self.flag(c);
                    } else {
                        self.ignore(c, "it must follow a sorry_server (keepalived ignores it before or without one)");
                    }
                }
                // keepalived's hasuspend_handler: no value, ha_suspend on.
                "ha_suspend" => {
                    lines.ha_suspend = Some(c.loc.clone());
                    v.ha_suspend = self.flag(c);
                }
                // keepalived's ip_family_handler: the family of a fwmark virtual server
                // (checked against the others' once the block is read, vs_family).
                "ip_family" => match self.arg(c) {
                    Some("inet") => family = Some((false, c.loc.clone())),
                    Some("inet6") => family = Some((true, c.loc.clone())),
                    Some(a) => self.err(&c.loc, format!("ip_family '{a}' is unknown (inet or inet6)")),
                    None => {}
                },
                // keepalived's vs_warmup_handler: seconds (read_timer: fractions allowed).
                "warmup" => v.warmup = self.secs(c).or(v.warmup),
                // keepalived's vs_alpha_handler: no value, alpha on.
                "alpha" => v.alpha = self.flag(c),
                // keepalived's omega_handler: no value, omega on.
                "omega" => v.omega = self.flag(c),
                "laddr_group_name" => v.laddr_group_name = self.arg(c).map(str::to_string),
                "daddr_group_name" => v.daddr_group_name = self.arg(c).map(str::to_string),
                "waddr_group_name" => v.waddr_group_name = self.arg(c).map(str::to_string),
                // DPVS: `syn_proxy` alone turns the SYN proxy on; rvs also takes a value.
                "syn_proxy" => match c.args.as_slice() {
                    [] => v.syn_proxy = Some(fnat::synproxy::SynProxyMode::On),
                    [a] => match fnat::synproxy::SynProxyMode::from_name(a) {
                        Some(m) => v.syn_proxy = Some(m),
                        None => self.err(&c.loc, format!("syn_proxy {a}: rvs takes on, off, auto (or no value: on)")),
                    },
                    _ => self.err(&c.loc, "syn_proxy takes at most one value (on, off, auto)"),
                },
                // DPVS: `proxy_protocol v1|v2|v1-insecure|v2-insecure` (anything else: off).
                "proxy_protocol" => match c.args.as_slice() {
                    [a] => match a.as_str() {
                        "disable" => v.proxy_protocol = None,
                        "v1-insecure" | "v2-insecure" => self.err(
                            &c.loc,
                            format!("proxy_protocol {a}: rvs does not pass on a header the client sent (v1 or v2)"),
                        ),
                        _ => match fnat::service::ProxyProtocol::from_name(a) {
                            Some(p) => v.proxy_protocol = Some(p),
                            None => self.err(&c.loc, format!("proxy_protocol {a}: rvs takes v1, v2 or disable")),
                        },
                    },
                    _ => self.err(&c.loc, "proxy_protocol takes one value (v1, v2 or disable)"),
                },
                // DPVS's establish_timeout_handler clamps to 1-3600; rvs keeps the value
                // as written up to what rvsd takes, and refuses what it cannot honour.
                "establish_timeout" => {
                    if let Some(t) = self.int(c, 1, i64::from(fnat::tcp_state::MAX_TIMEOUT_S)) {
                        v.establish_timeout = t as u32;
                    }
                }
                // DPVS's: a quiescent server's connections end at their next packet.
                "expire_quiescent_conn" => v.expire_quiescent_conn = self.flag(c),
                // keepalived's one-packet scheduling (UDP; rvsd refuses it on TCP).
                "ops" => {
                    lines.ops = Some(c.loc.clone());
                    v.ops = self.flag(c);
                }
                // rvs's own (DPVS has it in its ipvsadm only): rvsd's passive check.
                "dest_check" => match c.args.as_slice() {
                    [a] if a == "disable" => v.dest_check = None,
                    [a] => match a.parse::<fnat::destcheck::DestCheck>() {
                        Ok(d) => v.dest_check = Some(d),
                        Err(e) => self.err(&c.loc, e.to_string()),
                    },
                    _ => self.err(&c.loc, "dest_check takes one value (default, R,U,Ws,MIN-MAXs, R,Ws or disable)"),
                },
                "virtualhost" => v.virtualhost = self.arg(c).map(str::to_string),
                k @ ("sh-port" | "mh-port" | "sh-fallback" | "mh-fallback") => {
                    self.flag(c);
                    let f = v.sched_flags.get_or_insert(crate::dataplane::SchedFlags { port: false, fallback: false });
                    if k.ends_with("port") {
                        f.port = true;
                    } else {
                        f.fallback = true;
                    }
                }
                "connect_timeout" => defaults.connect_timeout = self.secs(c).unwrap_or(5.0),
                "retry" => {
                    defaults.retry = self.uint(c).unwrap_or(1);
                    vs_retry_set.0 = true;
                }
                "delay_before_retry" => {
                    defaults.delay_before_retry = self.secs(c).unwrap_or(1.0);
                    vs_retry_set.1 = true;
                }
                "real_server" => rs_nodes.push(c),
                "hash_target" => hash_target = Some(c),
                "src-range" | "dst-range" | "iif" | "oif" => self.err(
                    &c.loc,
                    format!(
                        "{} is a SNAT rule's: write it in a `virtual_server match NAME {{ lb_kind SNAT ... }}` block",
                        c.key
                    ),
                ),
                _ => self.other(c, "virtual_server"),
            }
        }
        if let Some(c) = hash_target {
            // DPVS keepalived's `hash_target_handler`: sip or qid; applied to conhash only.
            match self.arg(c) {
                Some(_) if v.lb_algo != "conhash" => {
                    self.ignore(c, "it applies to lb_algo conhash only (DPVS's keepalived sets it for conhash alone)")
                }
                Some("sip") | None => {}
                Some("qid") => {
                    let msg = "hash_target qid (an early Google QUIC connection id, obsolete) is valid DPVS \
                               keepalived that rvs does not support yet: conhash hashes the client's address (sip)";
                    if self.opts.lenient {
                        self.warn(&c.loc, msg);
                    } else {
                        self.err(&c.loc, msg);
                    }
                }
                Some(t) => {
                    let msg =
                        format!("hash_target {t} is unknown: conhash hashes the client's address (sip), as DPVS does");
                    self.warn(&c.loc, msg);
                }
            }
        }
        if !kind_seen {
            self.warn(
                &n.loc,
                "lb_kind not set: keepalived would use NAT; rvs forwards with FNAT (say lb_kind NAT for keepalived's)",
            );
        }
        if matches!(v.target, VsTarget::Addr(_)) {
            // A group's once the file is read: whether it has fwmarks only.
            self.protocol_checks(&v, &lines);
        }
        self.vs_retry_set = vs_retry_set;
        for c in rs_nodes {
            if let Some(rs) = self.real_server(c, &v, &defaults) {
                v.real_servers.push(rs);
            }
        }
        v.ipv6 = self.vs_family(&v, &lines, family);
        if let VsTarget::Fwmark { v6, .. } = &mut v.target {
            *v6 = v.ipv6 == Some(true);
        }
        // Servers that are one in the service (DR and TUN get its port), before ports are
        // reset: when some are, ports stay as written (the file is refused anyway). A
        // group's once the file is read.
        let apart = match &v.target {
            VsTarget::Addr(a) => self.one_in_services(&v, &lines, &[ServiceKey::new(v.protocol, a.ip(), a.port())]),
            VsTarget::Fwmark { mark, v6 } => self.one_in_services(&v, &lines, &[ServiceKey::of_fwmark(*mark, *v6)]),
            VsTarget::Group(_) => true,
        };
        match v.target {
            VsTarget::Fwmark { .. } => {
                self.fwmark_vs(&mut v, &lines, true, apart);
                self.portless_checks(&mut v, None);
            }
            VsTarget::Addr(a) => {
                self.vs_ports(&mut v, &lines, a.port(), apart);
                self.portless_checks(&mut v, Some(a.port()).filter(|p| *p != 0));
            }
            // Once the group is known (it may come later in the file).
            VsTarget::Group(_) => {}
        }
        Some((v, lines))
    }

    /// What keepalived's `validate_check_config` says of a virtual server served by
    /// address (a `virtual_server IP PORT`, or a group with `IP PORT` members; not a
    /// fwmark, whose protocol IPVS ignores): no `protocol` (a warning: keepalived serves
    /// UDP, rvs TCP), `ops` on TCP (an error: rvsd refuses it).
    fn protocol_checks(&mut self, v: &VirtualServer, lines: &VsLines) {
        if lines.protocol.is_none() {
            // keepalived's "no protocol set - defaulting to UDP".
            self.warn(
                &v.loc,
                "protocol not set: keepalived would serve UDP (and report it); rvs-agent serves TCP (say protocol \
                 TCP or UDP)",
            );
        }
        if v.ops && v.protocol != Proto::Udp {
            // keepalived passes the flag and the kernel ignores it for TCP.
            self.err(
                &v.loc,
                "ops (one-packet scheduling) is for UDP virtual servers; a TCP connection needs its state",
            );
        }
    }

    /// Each real server and the sorry server of a `virtual_server IP PORT` or `group`
    /// against each service it is loaded into (`keys`, [`crate::check::pool::vs_keys`]):
    /// one of the other family is an error naming its line (rvsd refuses such a server,
    /// and with it the whole set of services; keepalived skips it, or the virtual server),
    /// but for IPv4 real servers of an IPv6 service under FullNAT (rvsd's NAT64). A TUN
    /// server is no exception: rvsd's tunnels are of the service's family. A
    /// `virtual_server fwmark`'s are checked by [`vs_family`](Self::vs_family).
    fn key_families(&mut self, v: &VirtualServer, lines: &VsLines, keys: &[ServiceKey]) {
        let fam = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        let what = v.target.describe();
        let service = |k: &ServiceKey| format!("service {k} is {}", fam(k.vip.is_ipv6()));
        let misfit = |a: IpAddr, kind: LbKind| keys.iter().find(|k| !family_fits(k.vip.is_ipv6(), a, kind));
        for r in &v.real_servers {
            if let Some(k) = misfit(r.addr.ip(), r.lb_kind) {
                let msg = format!(
                    "{what}: {}; real_server {} is {}: one family (IPv4 real servers of an IPv6 service under \
                     FullNAT only, NAT64)",
                    service(k),
                    r.addr.ip(),
                    fam(r.addr.is_ipv6())
                );
                self.err(&r.loc, msg);
            }
        }
        if let Some((s, k)) = v.sorry_server.and_then(|s| misfit(s.ip(), v.lb_kind).map(|k| (s, k))) {
            let msg = format!("{what}: {}; sorry_server {} is {}", service(k), s.ip(), fam(s.is_ipv6()));
            self.err(lines.sorry_server.as_ref().unwrap_or(&v.loc), msg);
        }
    }

    /// keepalived's address family of a virtual server ([`VirtualServer::ipv6`]); on a
    /// fwmark, settled (IPv4 when nothing says) and checked: a real server, sorry server
    /// or `persistence_granularity` of the other family is an error naming it (keepalived
    /// skips such a server with an error), but for IPv4 real servers of an IPv6 service
    /// under FullNAT (rvsd's NAT64). A group's servers are checked against each of its
    /// services once the file is read ([`key_families`](Self::key_families)).
    fn vs_family(&mut self, v: &VirtualServer, lines: &VsLines, family: Option<(bool, Loc)>) -> Option<bool> {
        let fam = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        let mark = match &v.target {
            VsTarget::Addr(a) => {
                // keepalived's ip_family_handler: "conflicts with server family", ignored.
                if let Some((f, loc)) = family.filter(|(f, _)| *f != a.is_ipv6()) {
                    let kw = if f { "inet6" } else { "inet" };
                    let msg = format!("ip_family {kw}: virtual_server {a} is {}", fam(a.is_ipv6()));
                    self.err(&loc, msg);
                }
                return Some(a.is_ipv6());
            }
            VsTarget::Group(_) => None,
            VsTarget::Fwmark { mark, .. } => Some(*mark),
        };
        let rs = &v.real_servers;
        // keepalived's vs_end_handler: a sorry server not TUN settles it last.
        let settled = family
            .as_ref()
            .map(|(f, _)| *f)
            .or_else(|| rs.iter().find(|r| r.lb_kind != LbKind::Tunnel).map(|r| r.addr.is_ipv6()))
            .or(v.persistence_granularity.map(|g| g.is_ipv6()))
            .or(v.sorry_server.filter(|_| v.lb_kind != LbKind::Tunnel).map(|s| s.is_ipv6()));
        let Some(mark) = mark else { return settled };
        // keepalived's vs_end_handler for a fwmark whose servers are all TUN: theirs
        // (the sorry server's and the real servers') when they agree, else IPv4.
        let v6 = settled.unwrap_or_else(|| {
            let mut tun = v.sorry_server.iter().map(SocketAddr::is_ipv6).chain(rs.iter().map(|r| r.addr.is_ipv6()));
            let first = tun.next().unwrap_or(false);
            first && tun.all(|x| x == first)
        });
        let why = match &family {
            Some(_) => "ip_family",
            None => "no ip_family: as keepalived settles it",
        };
        let fits = |a: IpAddr, kind: LbKind| family_fits(v6, a, kind);
        for r in rs.iter().filter(|r| !fits(r.addr.ip(), r.lb_kind)) {
            let msg = format!(
                "virtual_server fwmark {mark} is {} ({why}); real_server {} is {}: one family (IPv4 real servers \
                 of an IPv6 service under FullNAT only, NAT64)",
                fam(v6),
                r.addr.ip(),
                fam(!v6)
            );
            self.err(&r.loc, msg);
        }
        if let Some(s) = v.sorry_server.filter(|s| !fits(s.ip(), v.lb_kind)) {
            let msg =
                format!("virtual_server fwmark {mark} is {} ({why}); sorry_server {} is {}", fam(v6), s.ip(), fam(!v6));
            self.err(lines.sorry_server.as_ref().unwrap_or(&v.loc), msg);
        }
        if let Some(g) = v.persistence_granularity.filter(|g| g.is_ipv6() != v6) {
            let msg = format!(
                "virtual_server fwmark {mark} is {} ({why}); persistence_granularity {g} is an {} netmask",
                fam(v6),
                fam(!v6)
            );
            self.err(lines.granularity.as_ref().unwrap_or(&v.loc), msg);
        }
        Some(v6)
    }

    /// What a fwmark service changes in a virtual server (a `virtual_server fwmark`, or
    /// one whose group has fwmark entries), as keepalived 2.2.7's `validate_check_config`
    /// (`check_data.c`) and `ipvs_cmd` / `ipvs_group_cmd` (`ipvswrapper.c`) do:
    /// * `ha_suspend` is cleared, with a warning: there is no address to follow;
    /// * `protocol UDP` (the fwmark's own virtual server, or a group of fwmarks only)
    ///   changes nothing, warned about: a fwmark service takes the TCP and UDP flows
    ///   marked (keepalived warns of any protocol and drops it; IPVS ignores it); the
    ///   protocol is then TCP, the service key's, whatever was written, so that editing it
    ///   changes nothing (the virtual server stays the same one across reloads);
    /// * a DR or TUN real server's (and the sorry server's) port is not sent to a fwmark
    ///   service: rvsd gets port 0 (each flow keeps its destination port,
    ///   [`ServiceKey::rs_addr`]), while its checkers keep connecting to the port written.
    ///   On a `virtual_server fwmark` the port is cleared, with a warning (keepalived
    ///   clears it, after copying the address into the checker: its FIFO lines say port
    ///   0), unless `clear` is false (servers that are then one: an error already,
    ///   [`one_in_services`](Self::one_in_services)); on a group it is kept, each service
    ///   getting the server at its own port, as keepalived's `ipvs_group_cmd` sends it
    ///   (warned about by [`group_ports`](Self::group_ports); adding or removing a fwmark
    ///   entry changes nothing of the real servers). A NAT or FullNAT real server keeps
    ///   its port (0: the flow's destination port; another: every flow goes there);
    /// * a real server with port 0 has no port to check ([`portless_checks`](Self::portless_checks));
    /// * `ops` and `proxy_protocol`, each for one protocol, are errors: rvsd refuses them
    ///   on a fwmark service.
    fn fwmark_vs(&mut self, v: &mut VirtualServer, lines: &VsLines, fwmark_only: bool, clear: bool) {
        let what = v.target.describe();
        if let Some(loc) = lines.protocol.as_ref().filter(|_| fwmark_only && v.protocol == Proto::Udp) {
            self.ignore_at(
                loc,
                "protocol",
                &format!(
                    "{what} is a fwmark service, which takes the TCP and UDP flows given its mark (keepalived \
                     ignores the protocol of a fwmark too); mark the UDP flows only to serve UDP alone"
                ),
            );
        }
        if v.ha_suspend {
            let loc = lines.ha_suspend.clone().unwrap_or_else(|| v.loc.clone());
            self.ignore_at(
                &loc,
                "ha_suspend",
                &format!("{what} has fwmarks, with no address to follow (keepalived clears it too)"),
            );
            v.ha_suspend = false;
        }
        if fwmark_only {
            // ipvsadm's and rvsd's key of a fwmark service.
            v.protocol = Proto::Tcp;
        }
        // A `virtual_server fwmark`'s servers lose the port (keepalived's); a group's keep
        // it, each of its services getting its own port ([`ServiceKey::rs_addr`]).
        let fwmark_vs = matches!(v.target, VsTarget::Fwmark { .. });
        for (on, loc, key) in
            [(v.ops, &lines.ops, "ops"), (v.proxy_protocol.is_some(), &lines.proxy_protocol, "proxy_protocol")]
        {
            if on {
                let msg = format!(
                    "{what}: {key} is for one protocol, and a fwmark service takes TCP and UDP (rvsd refuses it): use \
                     a VIP PORT virtual server"
                );
                self.err(loc.as_ref().unwrap_or(&v.loc), msg);
            }
        }
        for r in &mut v.real_servers {
            let port = r.addr.port();
            if r.lb_kind.keeps_packet() && port != 0 && fwmark_vs {
                let msg = format!(
                    "{what}: real_server {} {port} is {}: its port is cleared (rvsd sends each flow to its own \
                     destination port, as keepalived clears it); its checkers still connect to port {port}",
                    r.addr.ip(),
                    kind_name(r.lb_kind)
                );
                self.warn(&r.loc, msg);
                if clear {
                    for c in &mut r.checks {
                        c.common.connect_port.get_or_insert(port);
                    }
                    r.addr.set_port(0);
                }
            }
        }
        if let Some(s) = v.sorry_server.as_mut().filter(|s| fwmark_vs && v.lb_kind.keeps_packet() && s.port() != 0) {
            let (ip, port, kind) = (s.ip(), s.port(), kind_name(v.lb_kind));
            if clear {
                s.set_port(0);
            }
            let msg = format!(
                "{what}: sorry_server {ip} {port} is reached by {kind}: its port is cleared (as keepalived clears it)"
            );
            self.warn(lines.sorry_server.as_ref().unwrap_or(&v.loc), msg);
        }
    }

    /// The checkers of real servers written without a port (or port 0) that connect
    /// (TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, SMTP_CHECK, DNS_CHECK) and have no
    /// `connect_port`. keepalived copies the server's address into the checker before
    /// it gives the server the virtual server's port, so they connect to port 0 and fail
    /// for ever. Where the server is reached at one port (`port`: a `virtual_server IP
    /// PORT`'s, or that of every member of a group without fwmarks) they connect there,
    /// warned about at the server's line; where not (port 0, fwmarks, members of several
    /// ports: each flow keeps its own port) each is an error asking for `connect_port`.
    fn portless_checks(&mut self, v: &mut VirtualServer, port: Option<u16>) {
        let what = v.target.describe();
        for r in v.real_servers.iter_mut().filter(|r| r.addr.port() == 0) {
            let mut fixed = Vec::new();
            for c in r.checks.iter_mut().filter(|c| c.common.connect_port.is_none()) {
                let name = match c.kind {
                    CheckKind::Tcp => "TCP_CHECK",
                    CheckKind::Http { .. } => "HTTP_GET",
                    CheckKind::Ssl { .. } => "SSL_GET",
                    CheckKind::Udp { .. } => "UDP_CHECK",
                    CheckKind::Smtp { .. } => "SMTP_CHECK",
                    CheckKind::Dns { .. } => "DNS_CHECK",
                    _ => continue,
                };
                match port {
                    Some(p) => {
                        c.common.connect_port = Some(p);
                        fixed.push(name);
                    }
                    None => {
                        let msg = format!(
                            "{what}: real_server {} has no port (port 0: each flow's own): its {name} needs \
                             connect_port",
                            r.addr.ip()
                        );
                        self.err(&c.loc, msg);
                    }
                }
            }
            if let (Some(p), false) = (port, fixed.is_empty()) {
                let msg = format!(
                    "{what}: real_server {} has no port: its {} connect{} to port {p}, the virtual server's \
                     (keepalived's would connect to port 0, failing for ever; connect_port says it outright)",
                    r.addr.ip(),
                    fixed.join(", "),
                    if fixed.len() == 1 { "s" } else { "" }
                );
                self.warn(&r.loc, msg);
            }
        }
    }

    /// A `virtual_server IP PORT`'s DR and TUN real servers and sorry server written with
    /// another port (not 0) than `vport`: reset to `vport`, with a warning at its line, as
    /// keepalived's `validate_check_config` does ("ports don't match - resetting"): DR and
    /// TUN send each packet on unchanged, to the service's port (rvsd refuses another).
    /// Their checkers keep connecting to the port written (keepalived copies the address
    /// into the checker before), and the FIFO lines, mails and status say the port reset,
    /// as keepalived's. Unless `reset` is false: servers that are then one, an error
    /// already ([`one_in_services`](Self::one_in_services)).
    fn vs_ports(&mut self, v: &mut VirtualServer, lines: &VsLines, vport: u16, reset: bool) {
        let what = v.target.describe();
        for r in v.real_servers.iter_mut().filter(|r| r.lb_kind.keeps_packet()) {
            let port = r.addr.port();
            if port == 0 || port == vport {
                continue;
            }
            let msg = format!(
                "{what}: real_server {} {port} is {}: its port is reset to {vport}, the virtual server's (DR and TUN \
                 do not change the destination port; keepalived resets it too: ports don't match); its checkers \
                 still connect to port {port}",
                r.addr.ip(),
                kind_name(r.lb_kind)
            );
            self.warn(&r.loc, msg);
            if reset {
                for c in &mut r.checks {
                    c.common.connect_port.get_or_insert(port);
                }
                r.addr.set_port(vport);
            }
        }
        let kind = kind_name(v.lb_kind);
        if let Some(s) = v.sorry_server.as_mut().filter(|s| v.lb_kind.keeps_packet() && ![0, vport].contains(&s.port()))
        {
            let msg = format!(
                "{what}: sorry_server {} {} is reached by {kind}: its port is reset to {vport}, the virtual server's \
                 (as keepalived resets it: ports don't match)",
                s.ip(),
                s.port()
            );
            if reset {
                s.set_port(vport);
            }
            self.warn(lines.sorry_server.as_ref().unwrap_or(&v.loc), msg);
        }
    }

    /// A group's DR and TUN real servers and sorry server written with a port (not 0)
    /// that some of its services do not have: each service gets the server at its own
    /// port ([`ServiceKey::rs_addr`]: a member's, 0 in a fwmark entry's), as keepalived's
    /// `ipvs_group_cmd` sends it, which warns of it too ("ports don't match", "port will
    /// be ignored"); a warning at the server's line. The server keeps the port written:
    /// its checkers connect to it, and the FIFO lines, mails and status name it, as
    /// keepalived's.
    fn group_ports(&mut self, v: &VirtualServer, lines: &VsLines, keys: &[ServiceKey]) {
        let what = v.target.describe();
        // Where a server written with `port` goes at another: the members' ports, and
        // whether the group has fwmarks.
        let elsewhere = |port: u16| {
            let members: BTreeSet<u16> =
                keys.iter().filter(|k| !k.is_fwmark() && k.vport != port).map(|k| k.vport).collect();
            let mut parts = Vec::new();
            match members.iter().collect::<Vec<_>>().as_slice() {
                [] => {}
                [p] => parts.push(format!("the group's members of port {p} get it at port {p}")),
                ps => {
                    let ps: Vec<String> = ps.iter().map(ToString::to_string).collect();
                    parts.push(format!("the group's members of ports {} get it at their own", ps.join(", ")))
                }
            }
            if keys.iter().any(ServiceKey::is_fwmark) {
                parts.push("the group's fwmark entries get it at port 0, each flow's own".to_string());
            }
            (!parts.is_empty()).then(|| parts.join(" and "))
        };
        for r in v.real_servers.iter().filter(|r| r.lb_kind.keeps_packet() && r.addr.port() != 0) {
            let port = r.addr.port();
            let Some(where_) = elsewhere(port) else { continue };
            let msg = format!(
                "{what}: real_server {} {port} is {}: {where_} (DR and TUN do not change the destination port; \
                 keepalived sends it so too, warning of it); its checkers still connect to port {port}",
                r.addr.ip(),
                kind_name(r.lb_kind)
            );
            self.warn(&r.loc, msg);
        }
        if let Some(s) = v.sorry_server.filter(|s| v.lb_kind.keeps_packet() && s.port() != 0) {
            if let Some(where_) = elsewhere(s.port()) {
                let msg = format!(
                    "{what}: sorry_server {} {} is reached by {}: {where_} (as keepalived, which ignores the port \
                     written)",
                    s.ip(),
                    s.port(),
                    kind_name(v.lb_kind)
                );
                self.warn(lines.sorry_server.as_ref().unwrap_or(&v.loc), msg);
            }
        }
    }

    /// A virtual server's servers that are one server in one of its services (`keys`,
    /// [`ServiceKey::rs_addr`]: DR and TUN ones get the service's port) though written
    /// apart, e.g. DR servers `10.0.0.5 80` and `10.0.0.5 443`: rvsd would refuse the
    /// second (and with it the whole set), so each is an error naming both lines, once.
    /// A sorry server that is one of the real servers as written is keepalived's
    /// `s_svr_duplicates_rs`; real servers written alike are "defined twice" (validate).
    /// Returns whether there was none.
    fn one_in_services(&mut self, v: &VirtualServer, lines: &VsLines, keys: &[ServiceKey]) -> bool {
        let what = v.target.describe();
        let sorry = v.sorry_server.map(|s| (s, v.lb_kind, lines.sorry_server.clone().unwrap_or(v.loc.clone()), true));
        let servers: Vec<(SocketAddr, LbKind, Loc, bool)> =
            v.real_servers.iter().map(|r| (r.addr, r.lb_kind, r.loc.clone(), false)).chain(sorry).collect();
        let mut reported = HashSet::new();
        for key in keys {
            let mut seen: HashMap<SocketAddr, (SocketAddr, &Loc)> = HashMap::new();
            for (i, (addr, kind, loc, is_sorry)) in servers.iter().enumerate() {
                let sent = key.rs_addr(*addr, *kind);
                match seen.get(&sent) {
                    // Written alike: "defined twice" (validate), or the sorry server being
                    // a real server.
                    Some((first, _)) if first == addr => {}
                    Some((first, at)) => {
                        if !reported.insert(i) {
                            continue;
                        }
                        let name = if *is_sorry { "sorry_server" } else { "real_server" };
                        let msg = format!(
                            "{what}: {name} {} {} and real_server {} {} ({at}) are one server {sent} in service \
                             {key} (DR and TUN servers get the service's port): rvsd would refuse it",
                            addr.ip(),
                            addr.port(),
                            first.ip(),
                            first.port(),
                        );
                        self.err(loc, msg);
                    }
                    None => {
                        seen.insert(sent, (*addr, loc));
                    }
                }
            }
        }
        reported.is_empty()
    }

    /// The value of `lb_kind` / `lvs_method` (an error names what rvs does not do).
    fn lb_kind(&mut self, c: &Node) -> Option<LbKind> {
        match self.arg(c).map(str::to_ascii_uppercase).as_deref() {
            Some("FNAT") | Some("FULLNAT") => Some(LbKind::FullNat),
            Some("NAT") => Some(LbKind::Nat),
            Some("DR") => Some(LbKind::Dr),
            Some("TUN") => Some(LbKind::Tunnel),
            Some("SNAT") => {
                self.err(
                    &c.loc,
                    format!(
                        "{} SNAT needs a `virtual_server match NAME {{ ... }}` block (DPVS's SNAT rule), not a \
                         virtual_server IP PORT or group",
                        c.key
                    ),
                );
                None
            }
            Some(k) => {
                self.err(&c.loc, format!("unknown lb_kind '{k}' (FNAT, NAT, DR, TUN)"));
                None
            }
            None => None,
        }
    }

    /// DPVS's `virtual_server match NAME { lb_kind SNAT ... }`: a SNAT rule (see
    /// [`SnatConf`]). `earlier` are the rules read before it: a second rule with the same
    /// name or the same match is an error (rvsd names a rule by its match).
    fn snat_match(&mut self, n: &Node, earlier: &[SnatConf]) -> Option<SnatConf> {
        let name = match n.args.as_slice() {
            [_, name] => name.clone(),
            [_] => {
                self.err(&n.loc, "virtual_server match needs a name: virtual_server match NAME { lb_kind SNAT ... }");
                return None;
            }
            [_, rest @ ..] => {
                self.err(&n.loc, format!("virtual_server match expects one NAME, got '{}'", rest.join(" ")));
                return None;
            }
            [] => return None,
        };
        let what = format!("virtual_server match {name}");
        // TCP when not given, as rvs-agent's virtual_server IP PORT (keepalived would take UDP).
        let mut rule = ctl::SnatSpec { name: Some(name), proto: Some(SnatProto::Tcp), ..Default::default() };
        let mut kind_seen = false;
        let mut algo: Option<(String, Loc)> = None;
        let mut once: Vec<&str> = Vec::new();
        let mut wans: Vec<(IpAddr, u32, Loc)> = Vec::new();
        // `protocol ICMP` (false) or `ICMPV6` (true), where it is written.
        let mut icmp: Option<(bool, Loc)> = None;
        // The ranges that name ports: (keyword, as written, where).
        let mut with_ports: Vec<(&str, String, Loc)> = Vec::new();
        for c in self.block(n) {
            let key = c.key.as_str();
            if matches!(key, "protocol" | "src-range" | "dst-range" | "iif" | "oif") {
                if once.contains(&key) {
                    self.err(&c.loc, format!("{what}: {key} given twice (once per rule)"));
                    continue;
                }
                once.push(key);
            }
            match key {
                // DPVS's proto_handler: TCP, UDP, SCTP, ICMP, ICMPV6 (any case).
                "protocol" => match self.arg(c).map(str::to_ascii_uppercase).as_deref() {
                    Some("TCP") => rule.proto = Some(SnatProto::Tcp),
                    Some("UDP") => rule.proto = Some(SnatProto::Udp),
                    Some(p @ ("ICMP" | "ICMPV6")) => {
                        rule.proto = Some(SnatProto::Icmp);
                        icmp = Some((p == "ICMPV6", c.loc.clone()));
                    }
                    Some(p) => {
                        self.err(&c.loc, format!("{what}: protocol {p} is not supported (TCP, UDP, ICMP or ICMPV6)"))
                    }
                    None => {}
                },
                "lb_kind" | "lvs_method" => {
                    kind_seen = true;
                    match self.arg(c).map(str::to_ascii_uppercase).as_deref() {
                        Some("SNAT") | None => {}
                        Some(k) => self.err(
                            &c.loc,
                            format!(
                                "{what}: {key} {k}: a virtual_server match block is a SNAT rule (lb_kind SNAT); \
                                 {k} needs a virtual_server IP PORT"
                            ),
                        ),
                    }
                }
                "lb_algo" | "lvs_sched" => {
                    if let Some(a) = self.arg(c) {
                        algo = Some((a.to_string(), c.loc.clone()));
                    }
                }
                "src-range" | "dst-range" => {
                    let Some(a) = self.arg(c) else { continue };
                    if c.args.len() > 1 {
                        self.err(&c.loc, format!("{what}: {key} takes one range, got '{}'", c.args.join(" ")));
                        continue;
                    }
                    match a.parse::<fnat::snat::AddrRange>() {
                        Ok(r) => {
                            if r.ports.is_some() {
                                with_ports.push((key, a.to_string(), c.loc.clone()));
                            }
                            *if key == "src-range" { &mut rule.src_range } else { &mut rule.dst_range } = Some(r);
                        }
                        Err(e) => self.err(&c.loc, format!("{what}: {key}: {e}")),
                    }
                }
                "iif" => rule.iif = self.arg(c).map(str::to_string),
                "oif" => rule.oif = self.arg(c).map(str::to_string),
                "real_server" => {
                    if let Some(w) = self.snat_wan(c, &what) {
                        wans.push(w);
                    }
                }
                // Accepted as before alpha and omega were honoured (DPVS files carry
                // them): nothing to start down in a rule, no notifier to run at shutdown.
                "alpha" | "smtp_alert" => self.ignore(c, "rvs-agent does not health-check a SNAT rule's WAN addresses"),
                "omega" => self.ignore(c, "a SNAT rule has no notify scripts to run at shutdown"),
                "establish_timeout" => self.snat_refuse(
                    c,
                    &format!(
                        "{what}: 'establish_timeout' is a virtual_server IP PORT's: rvs's SNAT connections take \
                         rvsd's global timeouts"
                    ),
                ),
                "delay_loop" | "quorum" | "quorum_up" | "quorum_down" | "hysteresis" | "inhibit_on_failure"
                | "connect_timeout" | "retry" | "delay_before_retry" | "virtualhost" => self.snat_refuse(
                    c,
                    &format!("{what}: '{key}' is for health checks, and rvs-agent does not health-check WAN addresses"),
                ),
                // Accepted with a warning before they were honoured, as alpha and omega:
                // nothing checks a rule's WAN addresses, a rule has no sorry server.
                "ha_suspend" | "warmup" => {
                    self.ignore(c, "rvs-agent does not health-check a SNAT rule's WAN addresses")
                }
                "sorry_server_inhibit" => self.ignore(c, "a SNAT rule has no sorry server"),
                "persistence_timeout"
                | "persistence_granularity"
                | "persistence_engine"
                | "sorry_server"
                | "sorry_server_lvs_method"
                | "laddr_group_name"
                | "daddr_group_name"
                | "waddr_group_name"
                | "syn_proxy"
                | "proxy_protocol"
                | "dest_check"
                | "expire_quiescent_conn"
                | "ops"
                | "sh-port"
                | "mh-port"
                | "sh-fallback"
                | "mh-fallback" => self.snat_refuse(
                    c,
                    &format!(
                        "{what}: '{key}' is a virtual_server IP PORT's and means nothing to a SNAT rule \
                             (rvs takes its WAN addresses in turn)"
                    ),
                ),
                _ => self.other(c, "virtual_server match"),
            }
        }
        if !kind_seen {
            self.err(&n.loc, format!("{what}: needs lb_kind SNAT (a virtual_server match block is a SNAT rule)"));
        }
        let unequal = wans.windows(2).any(|w| w[0].1 != w[1].1);
        match algo {
            None => {}
            Some((a, _)) if a == "rr" => {}
            Some((a, _)) if a == "wrr" && !unequal => {}
            Some((a, loc)) if a == "wrr" => {
                let list: Vec<String> = wans.iter().map(|(ip, w, _)| format!("{ip} weight {w}")).collect();
                self.err(
                    &loc,
                    format!(
                        "{what}: lb_algo wrr with unequal weights ({}): rvs takes a rule's WAN addresses in turn, \
                         without weights (give them equal weights, or say lb_algo rr)",
                        list.join(", ")
                    ),
                );
            }
            Some((a, loc)) => self.err(
                &loc,
                format!("{what}: lb_algo {a}: rvs takes a SNAT rule's WAN addresses in turn (rr, or wrr with equal weights)"),
            ),
        }
        for (i, (ip, _, loc)) in wans.iter().enumerate() {
            if wans[..i].iter().any(|(x, _, _)| x == ip) {
                self.err(loc, format!("{what}: real_server {ip} given twice"));
            } else {
                rule.wan.push(*ip);
            }
        }
        if wans.is_empty() {
            self.warn(&n.loc, format!("{what}: no real_server (WAN address): the rule takes no flow until it has one"));
        }
        if let Some((v6_word, loc)) = &icmp {
            // Echo messages have no ports: rvsd refuses them in an ICMP rule's ranges
            // (`SnatError::IcmpPorts`, checked below); said here at the range's line.
            let p = if *v6_word { "ICMPV6" } else { "ICMP" };
            for (key, text, at) in &with_ports {
                self.err(
                    at,
                    format!(
                        "{what}: {key} {text}: protocol {p} takes no ports (echo messages have none): give \
                         addresses only"
                    ),
                );
            }
            // rvs's ICMP is the rule's family's: ICMP over IPv4, ICMPv6 over IPv6. DPVS
            // matches the protocol number as written, so its rule with the other
            // family's word would take nothing.
            let v6 = rule.wan.first().map(IpAddr::is_ipv6).or(rule.src_range.or(rule.dst_range).map(|r| !r.is_ipv4()));
            if let Some(v6) = v6.filter(|v6| v6 != v6_word) {
                let (fam, right) = if v6 { ("IPv6", "ICMPV6") } else { ("IPv4", "ICMP") };
                self.warn(
                    loc,
                    format!(
                        "{what}: protocol {p} in a rule of {fam} addresses: rvs takes {fam}'s echo messages \
                         ({right}) under it; DPVS's would take none (say protocol {right})"
                    ),
                );
            }
        }
        // rvsd's own check of a rule (one family for its ranges and WAN addresses).
        let core = fnat::snat::SnatRule {
            name: rule.name.clone().unwrap_or_default(),
            proto: rule.proto,
            src: rule.src_range,
            dst: rule.dst_range,
            iif: None,
            oif: None,
            wan: rule.wan.clone(),
        };
        match core.validate() {
            Ok(()) => {}
            // Said above at each range's line.
            Err(fnat::snat::SnatError::IcmpPorts(_)) => {}
            Err(e) => self.err(&n.loc, format!("{what}: {e}")),
        }
        if let Some(o) = earlier.iter().find(|o| o.rule.name == rule.name) {
            self.err(&n.loc, format!("{what}: the name is already used by the virtual_server match at {}", o.loc));
            return None;
        }
        if let Some(o) = earlier.iter().find(|o| o.rule.same_match(&rule)) {
            self.err(
                &n.loc,
                format!(
                    "{what}: same match ({}) as virtual_server match {} ({}): rvs names a SNAT rule by its match",
                    rule.match_text(),
                    o.rule.name.as_deref().unwrap_or_default(),
                    o.loc
                ),
            );
            return None;
        }
        Some(SnatConf { rule, loc: n.loc.clone() })
    }

    /// A SNAT rule's `real_server WAN 0 { weight N }`: a WAN address, with its weight (for
    /// the `wrr` check). Health checkers and real-server options are errors naming them.
    fn snat_wan(&mut self, n: &Node, what: &str) -> Option<(IpAddr, u32, Loc)> {
        let [ip, port] = n.args.as_slice() else {
            self.err(&n.loc, format!("{what}: real_server expects 'WAN_ADDRESS 0'"));
            return None;
        };
        let ip = self.ip(&n.loc, &format!("{what}: real_server"), ip)?;
        if port != "0" {
            self.err(
                &n.loc,
                format!("{what}: real_server {ip} {port}: a WAN address takes port 0 (its ports are its sapool's)"),
            );
        }
        let mut weight = 1;
        for c in self.block(n) {
            match c.key.as_str() {
                "weight" => match self.int(c, 0, 65535) {
                    Some(0) => self.err(
                        &c.loc,
                        format!(
                            "{what}: real_server {ip}: weight 0 (no new flows) is not supported: rvs takes every \
                             WAN address of a rule (remove the real_server instead)"
                        ),
                    ),
                    Some(w) => weight = w as u32,
                    None => {}
                },
                k @ ("TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "UDP_CHECK" | "PING_CHECK"
                | "SMTP_CHECK" | "DNS_CHECK" | "FILE_CHECK" | "BFD_CHECK" | "notify_up" | "notify_down"
                | "delay_loop" | "inhibit_on_failure") => self.err(
                    &c.loc,
                    format!("{what}: real_server {ip}: {k}: rvs-agent does not health-check WAN addresses"),
                ),
                k @ ("uthreshold" | "lthreshold" | "lvs_method") => {
                    self.err(&c.loc, format!("{what}: real_server {ip}: {k} means nothing to a SNAT WAN address"))
                }
                "alpha" | "warmup" | "smtp_alert" => {
                    self.ignore(c, "rvs-agent does not health-check a SNAT rule's WAN addresses")
                }
                _ => self.other(c, "a virtual_server match's real_server"),
            }
        }
        Some((ip, weight, n.loc.clone()))
    }

    /// A virtual-server keyword a SNAT rule does not honour: an error, a warning when
    /// lenient (as unknown keywords).
    fn snat_refuse(&mut self, n: &Node, msg: &str) {
        if self.opts.lenient {
            self.warn(&n.loc, format!("{msg} (ignored)"));
            self.ignored.push((n.loc.clone(), n.key.clone()));
        } else {
            self.err(&n.loc, msg);
        }
    }

    fn real_server(&mut self, n: &Node, vs: &VirtualServer, defaults: &CheckCommon) -> Option<RealServerConf> {
        // keepalived's alloc_rs takes IP [PORT]; rvs wants the port but on a fwmark (where
        // 0, no port, is the usual: each flow keeps its destination port).
        let fwmark = matches!(vs.target, VsTarget::Fwmark { .. });
        let (ip, port) = match n.args.as_slice() {
            [ip, port, ..] => (ip, Some(port)),
            [ip] if fwmark => (ip, None),
            _ => {
                self.err(&n.loc, if fwmark { "real_server expects IP [PORT]" } else { "real_server expects IP PORT" });
                return None;
            }
        };
        let ip = self.ip(&n.loc, "real_server", ip)?;
        let port = match port {
            Some(p) => self.port(&n.loc, "real_server", Some(p))?,
            None => 0,
        };
        let mut rs = RealServerConf {
            addr: SocketAddr::new(ip, port),
            weight: 1,
            upper: 0,
            lower: 0,
            inhibit_on_failure: vs.inhibit_on_failure,
            lb_kind: vs.lb_kind,
            notify_up: None,
            notify_down: None,
            delay_loop: None,
            warmup: vs.warmup,
            checks: Vec::new(),
            smtp_alert: None,
            loc: n.loc.clone(),
        };
        // DNS_CHECKs waiting delay_loop between retries (known once the block is read).
        let mut dbr_delay_loop = Vec::new();
        for c in self.block(n) {
            match c.key.as_str() {
                "weight" => rs.weight = self.int(c, 0, 65535).unwrap_or(1) as u32,
                "uthreshold" => rs.upper = self.uint(c).unwrap_or(0),
                "lthreshold" => rs.lower = self.uint(c).unwrap_or(0),
                "inhibit_on_failure" => rs.inhibit_on_failure = self.flag(c),
                "alpha" => self.ignore(c, ALPHA_PER_VS),
                "lvs_method" => {
                    if let Some(k) = self.lb_kind(c) {
                        rs.lb_kind = k;
                    }
                }
                "notify_up" => rs.notify_up = self.script(c),
                "notify_down" => rs.notify_down = self.script(c),
                "smtp_alert" => {
                    self.smtp_switch(c, &mut rs.smtp_alert);
                }
                "delay_loop" => rs.delay_loop = self.secs(c),
                // keepalived's rs_warmup_handler: seconds, as the virtual server's.
                "warmup" => rs.warmup = self.secs(c).or(rs.warmup),
                "TCP_CHECK" => rs.checks.push(self.check(c, CheckKind::Tcp, defaults)),
                "HTTP_GET" => {
                    let k = CheckKind::Http {
                        urls: Vec::new(),
                        virtualhost: vs.virtualhost.clone(),
                        protocol: HttpProtocol::default(),
                    };
                    rs.checks.push(self.check(c, k, defaults));
                }
                "MISC_CHECK" => {
                    let k = CheckKind::Misc { path: Script::new(""), timeout: None, dynamic: false };
                    rs.checks.push(self.check(c, k, defaults));
                }
                "SSL_GET" => {
                    let k = CheckKind::Ssl {
                        urls: Vec::new(),
                        virtualhost: vs.virtualhost.clone(),
                        enable_sni: false,
                        protocol: HttpProtocol::default(),
                        client: None,
                    };
                    rs.checks.push(self.check(c, k, defaults));
                }
                "UDP_CHECK" => {
                    let k = CheckKind::Udp {
                        payload: None,
                        require_reply: false,
                        reply: None,
                        min_reply_length: 0,
                        max_reply_length: 255,
                    };
                    rs.checks.push(self.check(c, k, defaults));
                }
                "PING_CHECK" => rs.checks.push(self.check(c, CheckKind::Ping, defaults)),
                "SMTP_CHECK" => {
                    let k = CheckKind::Smtp { helo_name: "smtpchecker.keepalived.org".into() };
                    rs.checks.extend(self.smtp_check(c, k, defaults));
                }
                "DNS_CHECK" => {
                    let k = CheckKind::Dns { qtype: 6, name: ".".into() };
                    self.dbr_follows_delay_loop = false;
                    rs.checks.push(self.check(c, k, defaults));
                    if self.dbr_follows_delay_loop {
                        dbr_delay_loop.push(rs.checks.len() - 1);
                    }
                }
                "FILE_CHECK" => {
                    if let Some(f) = self.file_check(c) {
                        rs.checks.push(f);
                    }
                }
                "BFD_CHECK" => {
                    if let Some(b) = self.bfd_check(c) {
                        rs.checks.push(b);
                    }
                }
                _ => self.other(c, "real_server"),
            }
        }
        for i in dbr_delay_loop {
            let c = &mut rs.checks[i].common;
            c.delay_before_retry = c.delay_loop.or(rs.delay_loop).unwrap_or(vs.delay_loop);
        }
        Some(rs)
    }

    /// The options every checker takes; false when `c` is not one of them.
    fn common_option(&mut self, c: &Node, common: &mut CheckCommon, set: &mut (bool, bool)) -> bool {
        match c.key.as_str() {
            "connect_ip" => common.connect_ip = self.arg(c).and_then(|a| self.ip(&c.loc, "connect_ip", a)),
            "connect_port" => common.connect_port = self.int(c, 1, 65535).map(|p| p as u16),
            "bindto" => common.bindto = self.arg(c).and_then(|a| self.ip(&c.loc, "bindto", a)),
            "connect_timeout" => common.connect_timeout = self.secs(c).unwrap_or(5.0),
            "retry" | "nb_get_retry" | "nb_sock_retry" => {
                common.retry = self.uint(c).unwrap_or(1);
                set.0 = true;
            }
            "delay_before_retry" => {
                common.delay_before_retry = self.secs(c).unwrap_or(1.0);
                set.1 = true;
            }
            "delay_loop" => common.delay_loop = self.secs(c),
            // keepalived's warmup_handler (check_api.c): seconds.
            "warmup" => common.warmup = self.secs(c).or(common.warmup),
            "alpha" => self.ignore(c, ALPHA_PER_VS),
            _ => return false,
        }
        true
    }

    fn check(&mut self, n: &Node, mut kind: CheckKind, defaults: &CheckCommon) -> CheckConf {
        let mut common = defaults.clone();
        let mut set = (false, false);
        let ctx = n.key.clone();
        for c in self.block(n) {
            if self.common_option(c, &mut common, &mut set) {
                continue;
            }
            match &mut kind {
                CheckKind::Http { urls, virtualhost, protocol } => {
                    self.http_option(c, urls, virtualhost, protocol, None, &ctx)
                }
                CheckKind::Ssl { urls, virtualhost, enable_sni, protocol, .. } => {
                    self.http_option(c, urls, virtualhost, protocol, Some(enable_sni), &ctx)
                }
                CheckKind::Misc { path, timeout, dynamic } => match c.key.as_str() {
                    "misc_path" => {
                        if let Some(cmd) = self.command(c) {
                            path.cmd = cmd.cmd;
                        }
                    }
                    "misc_timeout" => *timeout = self.secs(c),
                    "misc_dynamic" => *dynamic = self.flag(c),
                    "user" => self.user_line(c, path),
                    _ => self.other(c, &ctx),
                },
                CheckKind::Udp { payload, require_reply, reply, min_reply_length, max_reply_length } => {
                    match c.key.as_str() {
                        "payload" => match hex(&c.args.join(" "), false) {
                            Some(p) => *payload = Some(p.data),
                            None => self.err(&c.loc, "UDP_CHECK payload needs a hex string (e.g. 0a1b 2c)"),
                        },
                        "require_reply" => {
                            *require_reply = true;
                            if !c.args.is_empty() {
                                match hex(&c.args.join(" "), true) {
                                    Some(p) => *reply = Some(p),
                                    None => self.err(&c.loc, "require_reply: invalid hex string (x: any nibble)"),
                                }
                            }
                        }
                        "min_reply_length" => *min_reply_length = self.int(c, 0, 65535).unwrap_or(0) as u16,
                        "max_reply_length" => *max_reply_length = self.int(c, 0, 65535).unwrap_or(255) as u16,
                        _ => self.other(c, &ctx),
                    }
                }
                CheckKind::Smtp { helo_name } => match c.key.as_str() {
                    "helo_name" => {
                        if let Some(a) = self.arg(c) {
                            *helo_name = a.to_string();
                        }
                    }
                    _ => self.other(c, &ctx),
                },
                CheckKind::Dns { qtype, name } => match c.key.as_str() {
                    "type" => {
                        if let Some(a) = self.arg(c) {
                            match dns_type(a) {
                                Some(t) => *qtype = t,
                                None => self.err(
                                    &c.loc,
                                    format!("DNS_CHECK type '{a}' unknown (A NS CNAME SOA MX TXT AAAA RRSIG DNSKEY)"),
                                ),
                            }
                        }
                    }
                    "name" => {
                        if let Some(a) = self.arg(c) {
                            let empty_label = (a.starts_with('.') && a != ".") || a.contains("..");
                            if empty_label || a.is_empty() {
                                self.err(&c.loc, format!("DNS_CHECK name '{a}' has an empty label"));
                            } else {
                                *name = a.to_string();
                            }
                        }
                    }
                    _ => self.other(c, &ctx),
                },
                CheckKind::Tcp | CheckKind::Ping | CheckKind::File { .. } | CheckKind::Bfd { .. } => {
                    self.other(c, &ctx)
                }
            }
        }
        if let CheckKind::Misc { path, .. } = &mut kind {
            if path.run_as.is_none() {
                path.run_as = self.default_run_as(n);
            }
            if !path.cmd.is_empty() {
                self.scripts.push((n.loc.clone(), "MISC_CHECK misc_path".into(), path.clone()));
            }
        }
        match &kind {
            CheckKind::Http { urls, .. } | CheckKind::Ssl { urls, .. } if urls.is_empty() => {
                self.err(&n.loc, format!("{ctx} needs at least one url {{ path ... }}"))
            }
            CheckKind::Misc { path, .. } if path.cmd.is_empty() => self.err(&n.loc, "MISC_CHECK needs misc_path"),
            CheckKind::Udp { require_reply: true, min_reply_length, max_reply_length, .. }
                if min_reply_length > max_reply_length =>
            {
                self.warn(&n.loc, "UDP_CHECK min_reply_length > max_reply_length: the check always fails")
            }
            // keepalived's DNS_CHECK defaults: 3 retries, delay_loop between them (the
            // caller resolves delay_loop) unless the checker or its virtual server says.
            CheckKind::Dns { .. } => {
                if !set.0 && !self.vs_retry_set.0 {
                    common.retry = 3;
                }
                self.dbr_follows_delay_loop = !set.1 && !self.vs_retry_set.1;
            }
            _ => {}
        }
        CheckConf { kind, common, loc: n.loc.clone() }
    }

    /// An option of HTTP_GET / SSL_GET (`enable_sni`: SSL_GET only).
    fn http_option(
        &mut self,
        c: &Node,
        urls: &mut Vec<UrlConf>,
        virtualhost: &mut Option<String>,
        protocol: &mut HttpProtocol,
        enable_sni: Option<&mut bool>,
        ctx: &str,
    ) {
        match (c.key.as_str(), enable_sni) {
            ("url", _) => {
                if let Some(u) = self.url(c) {
                    urls.push(u);
                }
            }
            ("virtualhost", _) => *virtualhost = self.arg(c).map(str::to_string),
            // keepalived 2.2.7's three (`1.0c` too); anything else is its "Invalid
            // http_protocol version".
            ("http_protocol", _) => match self.arg(c) {
                Some("1.0") => *protocol = HttpProtocol::V1_0,
                Some("1.0C" | "1.0c") => *protocol = HttpProtocol::V1_0C,
                Some("1.1") => *protocol = HttpProtocol::V1_1,
                Some(v) => self.err(&c.loc, format!("invalid http_protocol version '{v}' (1.0, 1.0C, 1.1)")),
                None => {}
            },
            ("fast_recovery", _) => self.ignore(c, "a server is up again after its next successful check"),
            ("enable_sni", Some(sni)) => *sni = self.flag_value(c),
            _ => self.other(c, ctx),
        }
    }

    /// SMTP_CHECK: one checker, or one per deprecated `host { ... }` block (the checker's own
    /// connection options make one more, as keepalived 2.2.7).
    fn smtp_check(&mut self, n: &Node, kind: CheckKind, defaults: &CheckCommon) -> Vec<CheckConf> {
        let hosts: Vec<&Node> = n.children().iter().filter(|c| c.key == "host").collect();
        let mut main = n.clone();
        if let Some(b) = &mut main.block {
            b.retain(|c| c.key != "host");
        }
        let first = self.check(&main, kind, defaults);
        if hosts.is_empty() {
            return vec![first];
        }
        self.warn(&n.loc, "the SMTP_CHECK host block is deprecated (keepalived too): define more SMTP_CHECKs");
        let own_co = main
            .children()
            .iter()
            .any(|c| matches!(c.key.as_str(), "connect_ip" | "connect_port" | "bindto" | "connect_timeout"));
        let mut out = Vec::new();
        if own_co {
            out.push(first.clone());
        }
        for h in hosts {
            let mut common = first.common.clone();
            // A host block starts from the real server's address and port.
            common.connect_ip = None;
            common.connect_port = None;
            common.bindto = None;
            let mut set = (false, false);
            for c in self.block(h) {
                if !self.common_option(c, &mut common, &mut set) {
                    self.other(c, "SMTP_CHECK host");
                }
            }
            out.push(CheckConf { kind: first.kind.clone(), common, loc: h.loc.clone() });
        }
        out
    }

    /// `N [reverse|noreverse]` after a `weight` (`args`) of `what`: the weight, and the
    /// reverse flag when one is given.
    fn weight_reverse(
        &mut self,
        c: &Node,
        what: &str,
        args: &[String],
        (lo, hi): (i64, i64),
    ) -> Option<(i32, Option<bool>)> {
        let Some(a) = args.first() else {
            self.err(&c.loc, format!("{what}: weight needs a value"));
            return None;
        };
        let w = match a.parse::<i64>() {
            Ok(w) if (lo..=hi).contains(&w) => w as i32,
            _ => {
                self.err(&c.loc, format!("{what}: weight '{a}' is not an integer in {lo}..{hi}"));
                return None;
            }
        };
        match args[1..].iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            [] => Some((w, None)),
            ["reverse"] => Some((w, Some(true))),
            ["noreverse"] => Some((w, Some(false))),
            o => {
                self.err(&c.loc, format!("{what}: unknown weight option '{}' (reverse)", o.join(" ")));
                None
            }
        }
    }

    /// `bfd_instance NAME { ... }` as keepalived 2.2.7's `bfd_parser.c` reads it; what
    /// keepalived ignores with an error (no neighbour, families that differ, a neighbour
    /// and source already used) is an error here.
    fn bfd_instance(&mut self, n: &Node, defined: &[BfdInstance]) -> Option<BfdInstance> {
        let name = self.name(n)?.to_string();
        let ctx = format!("bfd_instance {name}");
        if name.len() >= 32 {
            self.err(&n.loc, format!("{ctx}: the name is longer than keepalived's 31 characters"));
        }
        if defined.iter().any(|b| b.name == name) {
            self.err(&n.loc, format!("{ctx} is defined twice"));
        }
        let mut neighbor = None;
        // The neighbour's family decides the TTL's default: set at the end.
        let mut b = BfdInstance::new(name, IpAddr::V4(Ipv4Addr::UNSPECIFIED), n.loc.clone());
        let mut ttl = None;
        let (mut vrrp, mut checker) = (false, false);
        for c in self.block(n) {
            match c.key.as_str() {
                "neighbor_ip" | "neighbour_ip" => {
                    if let Some(a) = self.arg(c) {
                        neighbor = self.ip(&c.loc, &format!("{ctx} {}", c.key), a);
                    }
                }
                "source_ip" => {
                    if let Some(a) = self.arg(c) {
                        b.source = self.ip(&c.loc, &format!("{ctx} source_ip"), a);
                    }
                }
                "min_rx" => b.min_rx_us = self.bfd_ms(c, &ctx, 1).unwrap_or(b.min_rx_us),
                "min_tx" => b.min_tx_us = self.bfd_ms(c, &ctx, 1).unwrap_or(b.min_tx_us),
                "idle_tx" => b.idle_tx_us = self.bfd_ms(c, &ctx, 1000).unwrap_or(b.idle_tx_us),
                "multiplier" => {
                    if let Some(m) = self.int(c, 1, 255) {
                        b.multiplier = m as u8;
                        if m > 10 {
                            self.warn(&c.loc, format!("{ctx}: multiplier {m} is more than a sensible 10"));
                        }
                    }
                }
                "passive" => b.passive = self.flag(c),
                "ttl" | "hoplimit" => ttl = self.int(c, 1, 255).map(|t| t as u8).or(ttl),
                "max_hops" => {
                    if let Some(h) = self.int(c, -1, 255) {
                        b.max_hops = u8::try_from(h).ok();
                    }
                }
                "weight" => {
                    if let Some((w, r)) = self.weight_reverse(c, &ctx, &c.args, (-253, 253)) {
                        (b.weight, b.weight_reverse) = (w, r.unwrap_or(false));
                    }
                }
                "vrrp" => vrrp = self.flag(c),
                "checker" => checker = self.flag(c),
                _ => self.other(c, &ctx),
            }
        }
        let Some(neighbor) = neighbor else {
            self.err(&n.loc, format!("{ctx} has no neighbor_ip"));
            return None;
        };
        b.neighbor = neighbor;
        if b.source.is_some_and(|s| s.is_ipv6() != neighbor.is_ipv6()) {
            self.err(&n.loc, format!("{ctx}: source_ip and neighbor_ip are of different families"));
            return None;
        }
        // keepalived's find_bfd_by_addr: the same neighbour from the same source, or with
        // either source unset (both would take the neighbour's packets that name no
        // session).
        let clash = |o: &&BfdInstance| {
            o.neighbor == b.neighbor && (o.source == b.source || o.source.is_none() || b.source.is_none())
        };
        if let Some(o) = defined.iter().find(clash) {
            self.err(
                &n.loc,
                format!(
                    "{ctx}: bfd_instance {} already has neighbor {neighbor} (from this source, or from any)",
                    o.name
                ),
            );
            return None;
        }
        b.ttl = ttl.unwrap_or(BfdInstance::default_ttl(neighbor));
        if let Some(h) = b.max_hops.filter(|h| *h > b.ttl) {
            self.warn(&n.loc, format!("{ctx}: max_hops {h} exceeds ttl/hoplimit {}: set to {}", b.ttl, b.ttl));
            b.max_hops = Some(b.ttl);
        }
        // keepalived: `vrrp` and `checker` name who follows it; neither: both.
        if vrrp || checker {
            (b.vrrp, b.checker) = (vrrp, checker);
        }
        Some(b)
    }

    /// A `bfd_instance` interval: milliseconds with up to 3 decimals (keepalived's
    /// `read_decimal_unsigned_strvec`), at least `lo_ms`, as microseconds; more than 10 s
    /// is warned about, as keepalived does.
    fn bfd_ms(&mut self, c: &Node, ctx: &str, lo_ms: u32) -> Option<u32> {
        let a = self.arg(c)?;
        let (int, frac) = a.split_once('.').unwrap_or((a, ""));
        let us = (|| {
            if int.is_empty() || frac.len() > 3 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
                return None;
            }
            let frac_us: u64 = format!("{frac:0<3}").parse().ok()?;
            int.parse::<u64>().ok()?.checked_mul(1000)?.checked_add(frac_us)
        })();
        match us {
            Some(us) if us >= u64::from(lo_ms) * 1000 && us <= u64::from(u32::MAX / 1000) * 1000 => {
                if us > 10_000_000 {
                    self.warn(&c.loc, format!("{ctx}: {} {a} ms is more than a sensible 10000", c.key));
                }
                Some(us as u32)
            }
            _ => {
                self.err(
                    &c.loc,
                    format!("{ctx}: {} '{a}' is not milliseconds (up to 3 decimals) of at least {lo_ms}", c.key),
                );
                None
            }
        }
    }

    /// A vrrp_instance's `track_file { NAME [weight W [reverse]] ... }`.
    fn tracked_files(&mut self, n: &Node, inst: &str) -> Vec<TrackedFile> {
        let mut out: Vec<TrackedFile> = Vec::new();
        for c in self.block(n) {
            let Some(t) = self.track_files.get(&c.key).cloned() else {
                self.err(
                    &c.loc,
                    format!("vrrp_instance {inst}: track_file {} not found (define it at top level)", c.key),
                );
                continue;
            };
            if out.iter().any(|f| f.name == c.key) {
                self.err(&c.loc, format!("vrrp_instance {inst}: duplicate track_file {}", c.key));
                continue;
            }
            let (mut weight, mut reverse) = (t.weight, t.reverse);
            match c.args.split_first() {
                None => {}
                Some((w, rest)) if w == "weight" => {
                    match self.weight_reverse(c, &format!("track_file {}", c.key), rest, (-254, 254)) {
                        Some((w, r)) => {
                            weight = w;
                            reverse = r.unwrap_or(reverse);
                        }
                        None => continue,
                    }
                }
                Some((o, _)) => {
                    self.err(&c.loc, format!("track_file {}: unknown option '{o}' (weight W [reverse])", c.key));
                    continue;
                }
            }
            out.push(TrackedFile { name: c.key.clone(), path: t.path, weight, reverse });
        }
        out
    }

    /// `BFD_CHECK { name NAME ; alpha }` (keepalived's check_bfd.c): the bfd_instance is
    /// resolved by the validation (it may come later in the file).
    fn bfd_check(&mut self, n: &Node) -> Option<CheckConf> {
        let mut name = None;
        for c in self.block(n) {
            match c.key.as_str() {
                "name" if c.args.len() != 1 => self.err(&c.loc, "BFD_CHECK: name takes exactly one bfd_instance name"),
                "name" if name.is_some() => self.err(&c.loc, "BFD_CHECK: name is already given"),
                "name" => name = c.args.first().cloned(),
                "alpha" => self.ignore(c, ALPHA_PER_VS),
                _ => {
                    let msg = format!("unknown keyword '{}' in BFD_CHECK (it takes name and alpha)", c.key);
                    if self.opts.lenient {
                        self.warn(&c.loc, msg);
                    } else {
                        self.err(&c.loc, msg);
                    }
                }
            }
        }
        let Some(name) = name else {
            self.err(&n.loc, "BFD_CHECK needs a name (a bfd_instance)");
            return None;
        };
        Some(CheckConf {
            kind: CheckKind::Bfd { name },
            // The session says at once: no retries.
            common: CheckCommon { retry: 0, ..CheckCommon::default() },
            loc: n.loc.clone(),
        })
    }

    /// FILE_CHECK { track_file NAME; weight N [reverse] }.
    fn file_check(&mut self, n: &Node) -> Option<CheckConf> {
        let mut tf: Option<(String, TrackFile)> = None;
        let mut weight: Option<(i32, bool)> = None;
        for c in self.block(n) {
            match c.key.as_str() {
                "track_file" => {
                    if let Some(name) = self.name(c) {
                        match self.track_files.get(name) {
                            Some(t) => tf = Some((name.to_string(), t.clone())),
                            None => self.err(&c.loc, format!("track_file {name} not found (define it at top level)")),
                        }
                    }
                }
                "weight" => {
                    if let Some((w, r)) = self.weight_reverse(c, "FILE_CHECK", &c.args, (-65535, 65535)) {
                        weight = Some((w, r.unwrap_or(false)));
                    }
                }
                _ => self.other(c, "FILE_CHECK"),
            }
        }
        let Some((name, t)) = tf else {
            self.err(&n.loc, "FILE_CHECK needs a track_file");
            return None;
        };
        let (weight, reverse) = weight.unwrap_or((t.weight, t.reverse));
        Some(CheckConf {
            kind: CheckKind::File { track_file: name, path: t.path, weight, reverse },
            // The file is read once per delay_loop; what it says holds at once.
            common: CheckCommon { retry: 0, ..CheckCommon::default() },
            loc: n.loc.clone(),
        })
    }

    /// Top-level `track_file NAME { file PATH; weight N [reverse]; init_file ... }`.
    fn track_file(&mut self, n: &Node) {
        let Some(name) = self.name(n).map(str::to_string) else { return };
        let mut t = TrackFile { path: String::new(), weight: 1, reverse: false };
        for c in self.block(n) {
            match c.key.as_str() {
                "file" => t.path = self.arg(c).unwrap_or_default().to_string(),
                "weight" => {
                    t.weight = self.int(c, -254, 254).unwrap_or(1) as i32;
                    match c.args.get(1).map(String::as_str) {
                        None => {}
                        Some("reverse") => t.reverse = true,
                        Some(o) => self.err(&c.loc, format!("unknown track_file weight option '{o}' (reverse)")),
                    }
                }
                "init_file" => self.ignore(c, "rvs-agent never writes the file; a missing file reads as 0"),
                _ => self.other(c, "track_file"),
            }
        }
        if t.path.is_empty() {
            self.err(&n.loc, format!("track_file {name} needs a file"));
            return;
        }
        self.track_files.insert(name, t);
    }

    /// The global `SSL { ... }` block.
    fn ssl(&mut self, n: &Node) -> SslConf {
        let mut s = SslConf::default();
        for c in self.block(n) {
            match c.key.as_str() {
                "certificate" => s.certificate = self.arg(c).map(str::to_string),
                "key" => s.key = self.arg(c).map(str::to_string),
                "ca" => {
                    s.ca = self.arg(c).map(str::to_string);
                    self.ignore(
                        c,
                        "SSL_GET does not verify the real server's certificate (neither does keepalived 2.2.7)",
                    );
                }
                "password" => self.err(
                    &c.loc,
                    "SSL password: rvs-agent reads unencrypted keys only; decrypt it (openssl pkey -in KEY -out KEY2)",
                ),
                _ => self.other(c, "SSL"),
            }
        }
        if s.certificate.is_some() != s.key.is_some() {
            self.err(&n.loc, "SSL: certificate and key go together");
        }
        s
    }

    /// A `garp_group` block, as keepalived reads it: an interface already in an earlier
    /// group (`before`) is warned about and left there; a group without an interval is
    /// warned about and dropped.
    fn garp_group(&mut self, n: &Node, before: &[GarpGroup]) -> Option<GarpGroup> {
        let mut g = GarpGroup::default();
        let add = |p: &mut Self, g: &mut GarpGroup, loc: &Loc, name: &str| {
            let port = crate::dataplane::port_of(name);
            let taken = before
                .iter()
                .chain(std::iter::once(&*g))
                .any(|x| x.interfaces.iter().any(|i| crate::dataplane::port_of(i) == port));
            match taken {
                true => p.warn(loc, format!("garp_group already specified for {name} - ignoring (as keepalived)")),
                false => g.interfaces.push(name.to_string()),
            }
        };
        for c in self.block(n) {
            match c.key.as_str() {
                "garp_interval" | "gna_interval" => {
                    // keepalived's: 0 to INT_MAX microseconds, to the microsecond.
                    let Some(s) = self.decimal_secs(c, 0, "an interval") else { continue };
                    if s >= 1.0 {
                        self.warn(&c.loc, format!("The {} is very large - {s} seconds (as keepalived says)", c.key));
                    }
                    match c.key.as_str() {
                        "garp_interval" => g.garp_interval = Some(s),
                        _ => g.gna_interval = Some(s),
                    }
                }
                "interface" => {
                    if let Some(name) = self.arg(c) {
                        add(self, &mut g, &c.loc, name);
                    }
                }
                "interfaces" => {
                    let names: Vec<&Node> = self.block(c).iter().collect();
                    if names.is_empty() {
                        self.warn(&c.loc, "empty garp_group interfaces block");
                    }
                    for i in names {
                        add(self, &mut g, &i.loc, &i.key);
                    }
                }
                _ => self.other(c, "garp_group"),
            }
        }
        if g.garp_interval.is_none() && g.gna_interval.is_none() {
            self.warn(&n.loc, "garp_group has no garp_interval or gna_interval - removing (as keepalived)");
            return None;
        }
        Some(g)
    }

    fn url(&mut self, n: &Node) -> Option<UrlConf> {
        let mut u =
            UrlConf { path: String::new(), status_codes: Vec::new(), digest: None, virtualhost: None, regex: None };
        let mut re =
            RegexConf { pattern: String::new(), options: Vec::new(), no_match: false, min_offset: 0, max_offset: None };
        let mut regex_loc: Option<&Loc> = None;
        let mut qualifiers: Vec<&Node> = Vec::new();
        for c in self.block(n) {
            match c.key.as_str() {
                "regex" => match c.args.as_slice() {
                    [p] => (re.pattern, regex_loc) = (p.clone(), Some(&c.loc)),
                    _ => self.err(&c.loc, "regex takes one pattern (quote it when it holds spaces)"),
                },
                "regex_no_match" => {
                    re.no_match = self.flag(c);
                    qualifiers.push(c);
                }
                "regex_options" => {
                    for o in &c.args {
                        match crate::check::http::REGEX_OPTIONS.contains(&o.as_str()) {
                            true => re.options.push(o.clone()),
                            false => self.warn(
                                &c.loc,
                                format!(
                                    "regex_options: '{o}' is no PCRE2 option keepalived knows: ignored (as keepalived)"
                                ),
                            ),
                        }
                    }
                    qualifiers.push(c);
                }
                "regex_min_offset" | "regex_max_offset" => {
                    let v = self.int(c, 0, i64::from(u32::MAX)).map(|v| v as usize);
                    match c.key.as_str() {
                        "regex_min_offset" => re.min_offset = v.unwrap_or(0),
                        _ => re.max_offset = v,
                    }
                    qualifiers.push(c);
                }
                "regex_stack" => self.ignore(c, "rvs-agent's regex matcher is a DFA and needs no stack"),
                "path" => u.path = self.arg(c).unwrap_or_default().to_string(),
                "digest" => {
                    if let Some(d) = self.arg(c) {
                        if d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                            u.digest = Some(d.to_ascii_lowercase());
                        } else {
                            self.err(&c.loc, format!("digest '{d}' is not 32 hex digits (MD5)"));
                        }
                    }
                }
                "status_code" => {
                    for a in &c.args {
                        let parsed = match a.split_once('-') {
                            Some((x, y)) => x.parse::<u16>().ok().zip(y.parse::<u16>().ok()),
                            None => a.parse::<u16>().ok().map(|x| (x, x)),
                        };
                        match parsed {
                            Some((x, y)) if (100..=599).contains(&x) && x <= y && y <= 599 => {
                                u.status_codes.push((x, y))
                            }
                            _ => self.err(&c.loc, format!("status_code '{a}' is not a status or range 100-599")),
                        }
                    }
                }
                "virtualhost" => u.virtualhost = self.arg(c).map(str::to_string),
                _ => self.other(c, "url"),
            }
        }
        if u.path.is_empty() {
            self.err(&n.loc, "url needs a path");
            return None;
        }
        if u.status_codes.is_empty() {
            // keepalived's default: any 2xx.
            u.status_codes.push((200, 299));
        }
        u.regex = self.url_regex(re, regex_loc, &qualifiers);
        Some(u)
    }

    /// A url's regex, compiled (an error names what rvs-agent cannot run). As
    /// keepalived: qualifiers without a `regex`, and a minimum offset past the maximum,
    /// are ignored, here with a warning naming them.
    fn url_regex(&mut self, mut re: RegexConf, at: Option<&Loc>, qualifiers: &[&Node]) -> Option<UrlRegex> {
        let Some(at) = at else {
            for q in qualifiers {
                self.warn(&q.loc, format!("{} without a regex in this url: ignored (as keepalived)", q.key));
            }
            return None;
        };
        if re.max_offset.is_some_and(|max| re.min_offset > max) {
            let max = re.max_offset.take().unwrap_or_default();
            self.warn(
                at,
                format!(
                    "regex_min_offset {} is past regex_max_offset {max}: both ignored (as keepalived)",
                    re.min_offset
                ),
            );
            re.min_offset = 0;
        }
        let key = (re.pattern.clone(), re.options.clone());
        let matcher = match self.regexes.get(&key) {
            Some(m) => m.clone(),
            None => match crate::check::http::compile_regex(&re) {
                Ok(m) => self.regexes.entry(key).or_insert(m).clone(),
                Err(e) => {
                    self.err(at, e);
                    return None;
                }
            },
        };
        Some(UrlRegex { conf: re, matcher })
    }
}
