//! `rvsadm`: ipvsadm's command line, DPVS's FullNAT additions, rvsd's control protocol.
//!
//! [`parse`] turns an argument vector into an [`AdmCmd`] (no I/O; every mistake is a
//! [`CliError::Usage`] naming it), [`run`] carries it out against a [`Ctl`] and prints.
//!
//! Differences from ipvsadm, all deliberate:
//! - The forwarding method is per real server (`-b` FullNAT, `-m` NAT, `-g` DR, `-i`
//!   TUN), and a server added without one is FullNAT (ipvsadm's default is `-g`).
//! - `-e` changes only the values given (`-w`, `-x`, `-y`); ipvsadm resets an omitted
//!   weight to 1. `-E`, like ipvsadm, sets the whole service (scheduler default wlc,
//!   persistence off unless `-p`).
//! - `-R` replaces every service at once (one atomic `ServiceReplace`): the result is
//!   exactly the file, whatever was there before.
//! - `-Z` zeroes every counter, `-Z -t|-u VIP:PORT` (or `-f MARK`) one service's and
//!   its real servers' (the totals and drop counters only with every counter).
//! - Output is always numeric (`-n` is accepted).
//! - DPVS's deny and allow lists (`--add-blklst -k`, `--add-whtlst --whtlst-address`,
//!   `--get-blklst`, `--get-whtlst`) are saved by `-S` and restored by `-R`, as are rvs's
//!   own `--conn-rate N[:BURST]` and `--source-limit N` on `-A`/`-E` (which `-E`, setting
//!   the whole service, resets when omitted), DPVS's `--conn-timeout N`, `--dest-check CONF`,
//!   `--expire-quiescent`,
//!   `--proxy-protocol v1|v2`
//!   (`disable` = none; DPVS's `v1-insecure`/`v2-insecure` are refused), and rvs's
//!   `--uoa ipo|opp` for UDP services (DPVS sets UOA globally; here per service).
//! - DPVS's SNAT rules: `-A|-D -H MATCH`, `-a|-d -H MATCH -r WAN:0 -J`; a rule takes its
//!   WAN addresses in turn, so `-s` other than `rr` and `-w` are refused; `-L` lists the
//!   rules after the services; `-S` saves them after the services (as `-A -H` and
//!   `-a -H -J` lines, without the rules' names: a restored rule without one is named
//!   `snat<N>` again), `-R` restores them with the services in one change, and `-C`
//!   clears them with the services, as DPVS's `ipvsadm -C` clears its match services.
//! - Firewall-mark services (`-f MARK`, `-6` for an IPv6 one) are ipvsadm's, but the
//!   marks come from rvs's own rules (`rvsip fwmark add MARK MATCH`), not from
//!   netfilter. MARK may also be written in hexadecimal (`0x10`); `-6` may come before
//!   or after `-f` (ipvsadm takes it after only). One-packet scheduling (`-o`), UOA and
//!   the PROXY protocol, each for one protocol, are refused on a fwmark service, which
//!   takes TCP and UDP.

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{ArgAction, Parser};
use ctl::{CtlError, RealServerEdit, Request, Response, ServiceSpec};
use fnat::destcheck::DestCheck;
use fnat::edge::RateLimit;
use fnat::persist::PersistConfig;
use fnat::sched::SchedKind;
use fnat::service::{ProxyProtocol, RealServerConfig, ServiceConfig, ServiceKey, DEFAULT_WEIGHT, MAX_WEIGHT};
use fnat::synproxy::SynProxyMode;
use fnat::types::{FwdMode, Proto};
use fnat::uoa::UoaMode;

use crate::addr::{parse_addr_port_named, parse_fwmark, parse_ip, parse_netmask, parse_num};
use crate::{unexpected, usage, write_json, CliError, Ctl, CONN_PAGE};

pub mod format;
pub mod restore;

/// The longest timeout ipvsadm accepts (31 days), for `-p` and `--set`.
pub const MAX_TIMEOUT: u64 = 86_400 * 31;

/// The sampling interval of `--rate`.
pub const RATE_INTERVAL: Duration = Duration::from_secs(1);

/// ipvsadm 1.31's and DPVS's options rvs refuses by name: the option, whose it is, why.
const UNSUPPORTED: &[(&str, &str, &str)] = &[
    (
        "--mcast-group/--mcast-port/--mcast-ttl/--sync-maxlen",
        "ipvsadm",
        "rvsd's [sync] section sets the group, port and key (docs/HA.md); --start-daemon takes --syncid and --mcast-interface",
    ),
    ("--pe", "ipvsadm", "rvs has no persistence engines (persistence is by source address)"),
    ("-T/--tun-type/--tun-port/--tun-*csum", "ipvsadm", "rvs tunnels with IPIP only (-i), no GUE or GRE"),
    ("--quic", "DPVS's ipvsadm", "rvs does not schedule by QUIC connection id (UDP services hash the client with sh, mh or conhash)"),
];

/// ipvsadm's arguments, as clap sees them (values are checked afterwards by [`parse`]).
#[derive(Debug, Parser)]
#[command(
    name = "rvsadm",
    version,
    disable_version_flag = true,
    args_override_self = true,
    about = "Administer rvs's virtual services and SNAT rules (ipvsadm's syntax, DPVS's additions)",
    after_help = "Examples:\n  rvsadm -A -t 198.18.0.100:80 -s wrr\n  rvsadm -a -t 198.18.0.100:80 -r 198.19.0.11:8080 -b -w 3\n  rvsadm -P -t 198.18.0.100:80 -z 198.19.0.10 -F dpdk1\n  rvsadm -A -f 1 -s sh -p 300    (marks: rvsip fwmark add 1 proto=tcp,dst-range=198.18.0.100:80-443)\n  rvsadm -a -f 1 -r 198.19.0.11 -b\n  rvsadm -Ln --stats\n  rvsadm -S > rules && rvsadm -R < rules"
)]
// The doc comments are clap's help text, where `[IPV6]:PORT` and `[cpu]` are literal.
#[allow(rustdoc::broken_intra_doc_links)]
pub struct AdmArgs {
    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service", help_heading = "Commands")]
    pub add_service: bool,
    /// Edit a virtual service (scheduler, persistence).
    #[arg(short = 'E', long = "edit-service", help_heading = "Commands")]
    pub edit_service: bool,
    /// Delete a virtual service (its connections drain).
    #[arg(short = 'D', long = "delete-service", help_heading = "Commands")]
    pub delete_service: bool,
    /// Delete every virtual service.
    #[arg(short = 'C', long = "clear", help_heading = "Commands")]
    pub clear: bool,
    /// Replace every virtual service by the rules on stdin (`-S` output), atomically.
    #[arg(short = 'R', long = "restore", help_heading = "Commands")]
    pub restore: bool,
    /// Print the rules (for `-R`).
    #[arg(short = 'S', long = "save", help_heading = "Commands")]
    pub save: bool,
    /// Add a real server.
    #[arg(short = 'a', long = "add-server", help_heading = "Commands")]
    pub add_server: bool,
    /// Edit a real server (only the values given change).
    #[arg(short = 'e', long = "edit-server", help_heading = "Commands")]
    pub edit_server: bool,
    /// Delete a real server (its connections drain).
    #[arg(short = 'd', long = "delete-server", help_heading = "Commands")]
    pub delete_server: bool,
    /// List services (or connections with -c, timeouts with --timeout).
    #[arg(short = 'L', long = "list", short_alias = 'l', help_heading = "Commands")]
    pub list: bool,
    /// Zero every counter, or one service's (with -t/-u/-f).
    #[arg(short = 'Z', long = "zero", help_heading = "Commands")]
    pub zero: bool,
    /// Set connection timeouts in seconds (0 keeps a value).
    #[arg(long = "set", num_args = 3, value_names = ["TCP", "TCPFIN", "UDP"], help_heading = "Commands")]
    pub set: Option<Vec<String>>,
    /// Add a local address (LIP) to a service (DPVS).
    #[arg(short = 'P', long = "add-laddr", help_heading = "Commands")]
    pub add_laddr: bool,
    /// Remove a local address from a service (DPVS).
    #[arg(short = 'Q', long = "del-laddr", help_heading = "Commands")]
    pub del_laddr: bool,
    /// List local addresses (DPVS).
    #[arg(short = 'G', long = "get-laddr", help_heading = "Commands")]
    pub get_laddr: bool,
    /// Add a source prefix to a service's deny list (DPVS's blacklist; -k ADDR[/LEN]).
    #[arg(long = "add-blklst", help_heading = "Commands")]
    pub add_blklst: bool,
    /// Remove a source prefix from a service's deny list (-k ADDR[/LEN]).
    #[arg(long = "del-blklst", help_heading = "Commands")]
    pub del_blklst: bool,
    /// Add a source prefix to a service's allow list (DPVS's whitelist;
    /// --whtlst-address ADDR[/LEN]); a non-empty list admits only its prefixes.
    #[arg(long = "add-whtlst", help_heading = "Commands")]
    pub add_whtlst: bool,
    /// Remove a source prefix from a service's allow list (--whtlst-address ADDR[/LEN]).
    #[arg(long = "del-whtlst", help_heading = "Commands")]
    pub del_whtlst: bool,
    /// List the deny lists (of one service with -t/-u/-f).
    #[arg(long = "get-blklst", help_heading = "Commands")]
    pub get_blklst: bool,
    /// List the allow lists (of one service with -t/-u/-f).
    #[arg(long = "get-whtlst", help_heading = "Commands")]
    pub get_whtlst: bool,

    /// TCP service ADDR:PORT ([IPV6]:PORT).
    #[arg(short = 't', long = "tcp-service", value_name = "ADDR:PORT")]
    pub tcp_service: Option<String>,
    /// UDP service ADDR:PORT ([IPV6]:PORT).
    #[arg(short = 'u', long = "udp-service", value_name = "ADDR:PORT")]
    pub udp_service: Option<String>,
    /// Firewall-mark service MARK (1..=4294967295, decimal or 0x hex): the flows rvsd's
    /// fwmark rules (`rvsip fwmark add MARK MATCH`) give that mark, TCP and UDP, whatever
    /// their VIP and port. A real server without a port keeps each flow's destination port.
    #[arg(short = 'f', long = "fwmark-service", value_name = "MARK")]
    pub fwmark_service: Option<String>,
    /// With -f: an IPv6 firewall-mark service (its flows and real servers are IPv6).
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// A SNAT rule, named by its match instead of -t/-u (DPVS): `-A -H MATCH`, `-D -H
    /// MATCH`, `-a|-d -H MATCH -r WAN:0 -J`; MATCH is proto=tcp|udp|any, src-range=,
    /// dst-range=, iif=, oif=, comma-separated.
    #[arg(short = 'H', long = "match", value_name = "MATCH")]
    pub matcher: Option<String>,
    /// The SNAT rule's name, with `-A -H` (rvs: named rules are listed and saved with
    /// their names; without one rvsd names it `snat<N>`).
    #[arg(long = "name", value_name = "NAME")]
    pub snat_name: Option<String>,
    /// Scheduler: rr, wrr, lc, wlc, sed, nq, sh, dh, mh, conhash, fo, ovf (default wlc).
    #[arg(short = 's', long = "scheduler", value_name = "NAME")]
    pub scheduler: Option<String>,
    /// Persistent service, timeout in seconds (default 300).
    #[arg(short = 'p', long = "persistent", value_name = "TIMEOUT", num_args = 0..=1, default_missing_value = "300")]
    pub persistent: Option<String>,
    /// Persistence granularity: 255.255.255.0 or 24 (IPv6: prefix length).
    #[arg(short = 'M', long = "netmask", value_name = "MASK")]
    pub netmask: Option<String>,
    /// Hash scheduler flags: sh-fallback, sh-port (mh-, dh-), or none (default: fallback).
    #[arg(long = "sched-flags", value_name = "FLAGS")]
    pub sched_flags: Option<String>,
    /// Maglev table size for mh (a prime).
    #[arg(long = "mh-table-size", value_name = "N")]
    pub mh_table_size: Option<String>,
    /// What conhash hashes (DPVS): sip, the client's address (the only one rvs has;
    /// DPVS's qid, an early Google QUIC connection id, is refused).
    #[arg(long = "hash-target", value_name = "sip")]
    pub hash_target: Option<String>,
    /// New connections a second the service admits, over all workers, with an optional
    /// burst (default: one second's worth); absent: no limit (rvs).
    #[arg(long = "conn-rate", value_name = "N[:BURST]")]
    pub conn_rate: Option<String>,
    /// Live connections per source address, per worker; absent or 0: no limit (rvs).
    #[arg(long = "source-limit", value_name = "N")]
    pub source_limit: Option<String>,
    /// Idle timeout in seconds of the service's established TCP and its UDP
    /// connections, instead of the global ones (DPVS); absent or 0: the global timeouts.
    #[arg(long = "conn-timeout", value_name = "SECONDS")]
    pub conn_timeout: Option<String>,
    /// TCP SYN proxy (DPVS): enable, disable or auto (absent: rvsd's default mode).
    #[arg(short = 'j', long = "synproxy", value_name = "enable|disable|auto")]
    pub synproxy: Option<String>,
    /// The HAProxy PROXY protocol header sent to the real servers before each TCP
    /// connection's first data (DPVS): v1, v2, or disable (absent: none).
    #[arg(long = "proxy-protocol", value_name = "v1|v2|disable")]
    pub proxy_protocol: Option<String>,
    /// DPVS's UOA: the client's address in the first datagrams of each UDP connection,
    /// as an IPv4 option (ipo) or a protocol-248 shim header (opp); disable (absent: none).
    #[arg(long = "uoa", value_name = "ipo|opp|disable")]
    pub uoa: Option<String>,
    /// Real server ADDR[:PORT] (port defaults to the service's).
    #[arg(short = 'r', long = "real-server", value_name = "ADDR[:PORT]")]
    pub real_server: Option<String>,
    /// Real server weight 0..=65535 (0 drains it; default 1).
    #[arg(short = 'w', long = "weight", value_name = "WEIGHT")]
    pub weight: Option<String>,
    /// Upper connection threshold (0 = none).
    #[arg(short = 'x', long = "u-threshold", value_name = "N")]
    pub u_threshold: Option<String>,
    /// Lower connection threshold (0 = 3/4 of the upper).
    #[arg(short = 'y', long = "l-threshold", value_name = "N")]
    pub l_threshold: Option<String>,
    /// FullNAT forwarding, rvs's default for a new real server (DPVS's meaning of -b;
    /// ipvsadm's -b is --sched-flags: use the long form).
    #[arg(short = 'b', long = "fullnat")]
    pub fullnat: bool,
    /// Direct routing: the frame goes unchanged to the real server's MAC (it must own
    /// the VIP and share a link with rvs).
    #[arg(short = 'g', long = "gatewaying")]
    pub gatewaying: bool,
    /// IP-in-IP tunnelling: the packet goes unchanged inside an IPIP (IPv6: ip6ip6)
    /// header to the real server, which must own the VIP and decapsulate.
    #[arg(short = 'i', long = "ipip")]
    pub ipip: bool,
    /// Masquerading (NAT): the destination rewritten, the client's address kept; the
    /// real server's default route must point at rvs.
    #[arg(short = 'm', long = "masquerading")]
    pub masquerading: bool,
    /// SNAT (DPVS): the address given with -r is a WAN address of the rule -H names.
    #[arg(short = 'J', long = "snat")]
    pub snat: bool,
    /// One-packet scheduling (UDP services): each datagram scheduled on its own, no
    /// connection kept.
    #[arg(short = 'o', long = "ops")]
    pub ops: bool,
    /// Start a connection-sync role: master (announce) or backup (install); rvsd's
    /// `[sync]` holds the key and peers.
    #[arg(long = "start-daemon", value_name = "STATE", help_heading = "Commands")]
    pub start_daemon: Option<String>,
    /// Stop a connection-sync role: master or backup.
    #[arg(long = "stop-daemon", value_name = "STATE", help_heading = "Commands")]
    pub stop_daemon: Option<String>,
    /// The sync id (--start-daemon): must be `[sync]`'s.
    #[arg(long = "syncid", value_name = "ID")]
    pub syncid: Option<String>,
    /// The multicast interface (--start-daemon): must hold `[sync]`'s mcast_interface.
    #[arg(long = "mcast-interface", value_name = "DEV")]
    pub mcast_interface: Option<String>,
    /// With -L: the connection-sync roles running.
    #[arg(long = "daemon")]
    pub daemon: bool,
    /// Refused by name (sync daemon options that live in `[sync]`).
    #[arg(long = "mcast-group", hide = true, alias = "mcast-port", alias = "mcast-ttl", alias = "sync-maxlen")]
    pub sync_option: Option<String>,
    /// Refused by name (persistence engines).
    #[arg(long = "pe", hide = true)]
    pub pe: Option<String>,
    /// Refused by name (tunnel forwarding).
    #[arg(short = 'T', long = "tun-type", hide = true, alias = "tun-port")]
    pub tun_option: Option<String>,
    /// Refused by name (tunnel checksums).
    #[arg(long = "tun-nocsum", hide = true, alias = "tun-csum", alias = "tun-remcsum")]
    pub tun_csum: bool,
    /// DPVS: a connection whose real server has weight 0 ends at its next packet (an
    /// RST to a TCP sender) instead of running on.
    #[arg(long = "expire-quiescent")]
    pub expire_quiescent: bool,
    /// Refused by name (DPVS: QUIC connection-id scheduling).
    #[arg(long = "quic", hide = true)]
    pub quic: bool,
    /// DPVS's passive health check: default, DOWN_RETRY,UP_CONFIRM,DOWN_WAITs,MIN-MAXs
    /// (e.g. 1,1,3s,5-3600s), DOWN_RETRY,DOWN_WAITs (down only), or disable.
    #[arg(long = "dest-check", value_name = "CHECK_CONF")]
    pub dest_check: Option<String>,
    /// Local address for -P/-Q.
    #[arg(short = 'z', long = "laddr", value_name = "ADDR")]
    pub laddr: Option<String>,
    /// Port the local address lives on (accepted; rvsd knows it).
    #[arg(short = 'F', long = "ifname", value_name = "DEV")]
    pub ifname: Option<String>,
    /// Source address or prefix for --add-blklst/--del-blklst.
    #[arg(short = 'k', long = "blklst-address", visible_alias = "blklst", value_name = "ADDR[/LEN]")]
    pub blklst: Option<String>,
    /// Source address or prefix for --add-whtlst/--del-whtlst.
    #[arg(long = "whtlst-address", visible_alias = "whtlst", value_name = "ADDR[/LEN]")]
    pub whtlst: Option<String>,

    /// Numeric output (always).
    #[arg(short = 'n', long = "numeric", help_heading = "Listing")]
    pub numeric: bool,
    /// List connections: [cpu] proto expire state CIP VIP LIP RIP.
    #[arg(short = 'c', long = "connection", help_heading = "Listing")]
    pub connection: bool,
    /// With -c: only the connection of this client socket pair (DPVS):
    /// PROTO:CIP:CPORT:VIP:VPORT (IPv6 in brackets).
    #[arg(long = "sockpair", value_name = "PROTO:CIP:CPORT:VIP:VPORT", help_heading = "Listing")]
    pub sockpair: Option<String>,
    /// With -c: only the connections of this worker (DPVS's lcore index; rvs's `[N]`).
    #[arg(long = "cpu", value_name = "N", help_heading = "Listing")]
    pub cpu: Option<String>,
    /// Counters.
    #[arg(long = "stats", help_heading = "Listing")]
    pub stats: bool,
    /// Rates over one second.
    #[arg(long = "rate", help_heading = "Listing")]
    pub rate: bool,
    /// Connection thresholds.
    #[arg(long = "thresholds", help_heading = "Listing")]
    pub thresholds: bool,
    /// Persistence templates: per real server their count (PersistConn); with -c the
    /// templates themselves.
    #[arg(long = "persistent-conn", help_heading = "Listing")]
    pub persistent_conn: bool,
    /// Connection timeouts.
    #[arg(long = "timeout", help_heading = "Listing")]
    pub timeout: bool,
    /// Exact numbers (no K/M/G scaling).
    #[arg(short = 'X', long = "exact", help_heading = "Listing")]
    pub exact: bool,
    /// Sort services and servers (the default).
    #[arg(long = "sort", help_heading = "Listing")]
    pub sort: bool,
    /// Keep rvsd's order.
    #[arg(long = "nosort", help_heading = "Listing")]
    pub nosort: bool,
    /// Print the reply as JSON.
    #[arg(long = "json", help_heading = "Listing")]
    pub json: bool,

    /// Control socket (default $RVS_SOCKET, else /run/rvs/rvsd.sock).
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<String>,

    /// Print the version.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
}

/// The listing views (ipvsadm's formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Scheduler, weights, connection counts.
    #[default]
    Plain,
    /// Counters (`--stats`).
    Stats,
    /// Rates (`--rate`).
    Rate,
    /// Thresholds (`--thresholds`).
    Thresholds,
    /// Persistence templates per real server (`--persistent-conn`).
    PersistConn,
}

/// How to list services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOpts {
    /// Only this service (`-L -t ...`).
    pub key: Option<ServiceKey>,
    /// Which columns.
    pub view: View,
    /// Exact numbers.
    pub exact: bool,
    /// Sort services and servers.
    pub sort: bool,
    /// Print the reply as JSON.
    pub json: bool,
}

/// What one `rvsadm` invocation does.
#[derive(Debug, Clone, PartialEq)]
pub enum AdmCmd {
    /// Send one change and expect `Done`.
    Change(Request),
    /// Read rules from stdin and replace every service with them.
    Restore,
    /// Print the rules.
    Save {
        /// Sort services.
        sort: bool,
    },
    /// List services.
    List(ListOpts),
    /// List connections.
    Conns {
        /// As JSON.
        json: bool,
        /// Only those that pass (DPVS's `--sockpair`, `--cpu`).
        filter: ConnFilter,
        /// The persistence templates instead (`--persistent-conn`).
        templates: bool,
    },
    /// Print the timeouts.
    Timeouts {
        /// As JSON.
        json: bool,
    },
    /// List the deny (`allow: false`) or allow lists.
    Acls {
        /// Only this service.
        key: Option<ServiceKey>,
        /// The allow lists.
        allow: bool,
        /// As JSON.
        json: bool,
    },
    /// List local addresses.
    Laddrs {
        /// Only this service.
        key: Option<ServiceKey>,
        /// As JSON.
        json: bool,
    },
    /// List the connection-sync roles running (`-L --daemon`), as ipvsadm does.
    Daemons {
        /// As JSON.
        json: bool,
    },
    /// Print this text (help, version) and succeed.
    Print(String),
}

/// The socket path given with `--socket`, if any (looked at before [`parse`] so that
/// `run` needs no arguments).
pub fn socket_arg<S: AsRef<str>>(argv: &[S]) -> Option<String> {
    let mut it = argv.iter().map(AsRef::as_ref);
    while let Some(a) = it.next() {
        if a == "--socket" {
            return it.next().map(str::to_string);
        }
        if let Some(p) = a.strip_prefix("--socket=") {
            return Some(p.to_string());
        }
    }
    None
}

/// The first line of a clap error, without its `error: ` prefix.
pub(crate) fn clap_error(e: &clap::Error) -> CliError {
    let text = e.to_string();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("bad arguments");
    usage(first.trim_start_matches("error: ").trim().to_string())
}

/// Parses an argument vector (`argv[0]` is the program name).
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Result<AdmCmd, CliError> {
    parse_with(&mut <AdmArgs as clap::CommandFactory>::command(), argv)
}

/// [`parse`] with a command definition built once (`rvsadm -R` parses every line of a
/// file with it: building the definition per line cost most of a large restore).
pub fn parse_with<S: AsRef<str>>(command: &mut clap::Command, argv: &[S]) -> Result<AdmCmd, CliError> {
    let parsed = command
        .try_get_matches_from_mut(argv.iter().map(AsRef::as_ref))
        .and_then(|m| <AdmArgs as clap::FromArgMatches>::from_arg_matches(&m));
    let args = match parsed {
        Ok(a) => a,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(AdmCmd::Print(e.render().to_string()))
                }
                _ => Err(clap_error(&e)),
            }
        }
    };
    // `rvsadm` alone lists, as ipvsadm does.
    let bare = argv.len() <= 1 || argv[1..].iter().all(|a| a.as_ref() == "-n" || a.as_ref() == "--numeric");
    if bare {
        return Ok(AdmCmd::List(ListOpts { sort: true, ..ListOpts::default() }));
    }
    build(&args)
}

/// One command of the argument set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    AddService,
    EditService,
    DeleteService,
    Clear,
    Restore,
    Save,
    AddServer,
    EditServer,
    DeleteServer,
    List,
    Zero,
    Set,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    AddBlklst,
    DelBlklst,
    AddWhtlst,
    DelWhtlst,
    GetBlklst,
    GetWhtlst,
    StartDaemon,
    StopDaemon,
}

impl Cmd {
    fn flag(self) -> &'static str {
        match self {
            Cmd::AddService => "-A",
            Cmd::EditService => "-E",
            Cmd::DeleteService => "-D",
            Cmd::Clear => "-C",
            Cmd::Restore => "-R",
            Cmd::Save => "-S",
            Cmd::AddServer => "-a",
            Cmd::EditServer => "-e",
            Cmd::DeleteServer => "-d",
            Cmd::List => "-L",
            Cmd::Zero => "-Z",
            Cmd::Set => "--set",
            Cmd::AddLaddr => "-P",
            Cmd::DelLaddr => "-Q",
            Cmd::GetLaddr => "-G",
            Cmd::AddBlklst => "--add-blklst",
            Cmd::DelBlklst => "--del-blklst",
            Cmd::AddWhtlst => "--add-whtlst",
            Cmd::DelWhtlst => "--del-whtlst",
            Cmd::GetBlklst => "--get-blklst",
            Cmd::GetWhtlst => "--get-whtlst",
            Cmd::StartDaemon => "--start-daemon",
            Cmd::StopDaemon => "--stop-daemon",
        }
    }

    fn long(self) -> &'static str {
        match self {
            Cmd::AddService => "--add-service",
            Cmd::EditService => "--edit-service",
            Cmd::DeleteService => "--delete-service",
            Cmd::Clear => "--clear",
            Cmd::Restore => "--restore",
            Cmd::Save => "--save",
            Cmd::AddServer => "--add-server",
            Cmd::EditServer => "--edit-server",
            Cmd::DeleteServer => "--delete-server",
            Cmd::List => "--list",
            Cmd::Zero => "--zero",
            Cmd::Set => "--set",
            Cmd::AddLaddr => "--add-laddr",
            Cmd::DelLaddr => "--del-laddr",
            Cmd::GetLaddr => "--get-laddr",
            Cmd::AddBlklst => "--add-blklst",
            Cmd::DelBlklst => "--del-blklst",
            Cmd::AddWhtlst => "--add-whtlst",
            Cmd::DelWhtlst => "--del-whtlst",
            Cmd::GetBlklst => "--get-blklst",
            Cmd::GetWhtlst => "--get-whtlst",
            Cmd::StartDaemon => "--start-daemon",
            Cmd::StopDaemon => "--stop-daemon",
        }
    }

    /// Whether this command accepts option `name` (its display name in [`options`]):
    /// those of [`allowed`](Self::allowed), and `-f MARK [-6]` wherever `-t/-u` names a
    /// service.
    fn accepts(self, name: &str) -> bool {
        let allowed = self.allowed();
        allowed.contains(&name) || (matches!(name, "-f" | "-6") && allowed.contains(&"-t/-u"))
    }

    /// The options this command accepts (by their display name in [`options`]), `-f`
    /// and `-6` aside (see [`accepts`](Self::accepts)).
    fn allowed(self) -> &'static [&'static str] {
        const SVC: &[&str] = &[
            "-t/-u",
            "-s",
            "-p",
            "-M",
            "--sched-flags",
            "--mh-table-size",
            "-j",
            "--conn-rate",
            "--source-limit",
            "--conn-timeout",
            "--dest-check",
            "--expire-quiescent",
            "-o",
            "--hash-target",
            "--proxy-protocol",
            "--uoa",
            "-H",
            "--name",
        ];
        const LIST: &[&str] = &[
            "-t/-u",
            "-n",
            "-c",
            "--sockpair",
            "--cpu",
            "--stats",
            "--rate",
            "--thresholds",
            "--persistent-conn",
            "--timeout",
            "--exact",
            "--sort",
            "--nosort",
            "--json",
            "--daemon",
        ];
        match self {
            Cmd::AddService | Cmd::EditService => SVC,
            Cmd::DeleteService => &["-t/-u", "-H"],
            Cmd::Clear | Cmd::Restore | Cmd::Set => &[],
            Cmd::Zero => &["-t/-u"],
            Cmd::Save => &["-n", "--sort", "--nosort"],
            Cmd::AddServer => &["-t/-u", "-H", "-r", "-w", "-x", "-y", "-b", "-m", "-g", "-i", "-J"],
            Cmd::EditServer => &["-t/-u", "-r", "-w", "-x", "-y", "-b", "-m", "-g", "-i"],
            Cmd::DeleteServer => &["-t/-u", "-H", "-r", "-b", "-m", "-g", "-i", "-J"],
            Cmd::List => LIST,
            Cmd::AddLaddr | Cmd::DelLaddr => &["-t/-u", "-z", "-F"],
            Cmd::GetLaddr => &["-t/-u", "-n", "--json"],
            Cmd::AddBlklst | Cmd::DelBlklst => &["-t/-u", "-k"],
            Cmd::AddWhtlst | Cmd::DelWhtlst => &["-t/-u", "--whtlst-address"],
            Cmd::GetBlklst | Cmd::GetWhtlst => &["-t/-u", "-n", "--json"],
            Cmd::StartDaemon => &["--syncid", "--mcast-interface"],
            Cmd::StopDaemon => &[],
        }
    }
}

/// Every option with whether it was given.
fn options(a: &AdmArgs) -> [(&'static str, bool); 49] {
    [
        ("-t/-u", a.tcp_service.is_some() || a.udp_service.is_some()),
        ("-f", a.fwmark_service.is_some()),
        ("-6", a.ipv6),
        ("-H", a.matcher.is_some()),
        ("--name", a.snat_name.is_some()),
        ("-J", a.snat),
        ("-s", a.scheduler.is_some()),
        ("-p", a.persistent.is_some()),
        ("-M", a.netmask.is_some()),
        ("--sched-flags", a.sched_flags.is_some()),
        ("--mh-table-size", a.mh_table_size.is_some()),
        ("--hash-target", a.hash_target.is_some()),
        ("-j", a.synproxy.is_some()),
        ("--conn-rate", a.conn_rate.is_some()),
        ("--source-limit", a.source_limit.is_some()),
        ("--conn-timeout", a.conn_timeout.is_some()),
        ("--dest-check", a.dest_check.is_some()),
        ("--expire-quiescent", a.expire_quiescent),
        ("-o", a.ops),
        ("--proxy-protocol", a.proxy_protocol.is_some()),
        ("--uoa", a.uoa.is_some()),
        ("-r", a.real_server.is_some()),
        ("-w", a.weight.is_some()),
        ("-x", a.u_threshold.is_some()),
        ("-y", a.l_threshold.is_some()),
        ("-b", a.fullnat),
        ("-m", a.masquerading),
        ("-g", a.gatewaying),
        ("-i", a.ipip),
        ("-z", a.laddr.is_some()),
        ("-F", a.ifname.is_some()),
        ("-k", a.blklst.is_some()),
        ("--whtlst-address", a.whtlst.is_some()),
        ("-n", a.numeric),
        ("-c", a.connection),
        ("--sockpair", a.sockpair.is_some()),
        ("--cpu", a.cpu.is_some()),
        ("--stats", a.stats),
        ("--rate", a.rate),
        ("--thresholds", a.thresholds),
        ("--persistent-conn", a.persistent_conn),
        ("--timeout", a.timeout),
        ("--exact", a.exact),
        ("--sort", a.sort),
        ("--nosort", a.nosort),
        ("--json", a.json),
        ("--syncid", a.syncid.is_some()),
        ("--mcast-interface", a.mcast_interface.is_some()),
        ("--daemon", a.daemon),
    ]
}

fn command(a: &AdmArgs) -> Result<Cmd, CliError> {
    let given: Vec<Cmd> = [
        (Cmd::AddService, a.add_service),
        (Cmd::EditService, a.edit_service),
        (Cmd::DeleteService, a.delete_service),
        (Cmd::Clear, a.clear),
        (Cmd::Restore, a.restore),
        (Cmd::Save, a.save),
        (Cmd::AddServer, a.add_server),
        (Cmd::EditServer, a.edit_server),
        (Cmd::DeleteServer, a.delete_server),
        (Cmd::List, a.list),
        (Cmd::Zero, a.zero),
        (Cmd::Set, a.set.is_some()),
        (Cmd::AddLaddr, a.add_laddr),
        (Cmd::DelLaddr, a.del_laddr),
        (Cmd::GetLaddr, a.get_laddr),
        (Cmd::AddBlklst, a.add_blklst),
        (Cmd::DelBlklst, a.del_blklst),
        (Cmd::AddWhtlst, a.add_whtlst),
        (Cmd::DelWhtlst, a.del_whtlst),
        (Cmd::GetBlklst, a.get_blklst),
        (Cmd::GetWhtlst, a.get_whtlst),
        (Cmd::StartDaemon, a.start_daemon.is_some()),
        (Cmd::StopDaemon, a.stop_daemon.is_some()),
    ]
    .into_iter()
    .filter_map(|(c, on)| on.then_some(c))
    .collect();
    match given.as_slice() {
        [c] => Ok(*c),
        [] => Err(usage("no command given (one of -A -E -D -C -R -S -a -e -d -L -Z --set -P -Q -G; -h for help)")),
        many => {
            let names: Vec<&str> = many.iter().map(|c| c.flag()).collect();
            Err(usage(format!("give one command only, not {}", names.join(" and "))))
        }
    }
}

/// The service named by `-t`/`-u`, or by `-f MARK` (with `-6`, IPv6's), if any.
fn service_key(a: &AdmArgs) -> Result<Option<ServiceKey>, CliError> {
    if let Some(m) = &a.fwmark_service {
        if a.tcp_service.is_some() || a.udp_service.is_some() {
            return Err(usage(format!(
                "give -f {m} or -t/-u, not both: a firewall-mark service has no address, port or protocol of its own"
            )));
        }
        let mark = parse_fwmark(m).map_err(usage)?;
        return Ok(Some(ServiceKey::of_fwmark(mark, a.ipv6)));
    }
    if a.ipv6 {
        return Err(usage(
            "-6 (--ipv6) makes a firewall-mark service IPv6: give it with -f MARK (-t and -u take an IPv6 address as it is)",
        ));
    }
    let (proto, s) = match (&a.tcp_service, &a.udp_service) {
        (Some(_), Some(_)) => return Err(usage("give one of -t and -u, not both")),
        (Some(s), None) => (Proto::Tcp, s),
        (None, Some(s)) => (Proto::Udp, s),
        (None, None) => return Ok(None),
    };
    let (vip, port) = parse_addr_port_named(s, "service address", proto.name()).map_err(usage)?;
    Ok(Some(ServiceKey::new(proto, vip, port.unwrap_or(0))))
}

fn need_key(key: Option<ServiceKey>, cmd: Cmd) -> Result<ServiceKey, CliError> {
    key.ok_or_else(|| {
        usage(format!("{} ({}) needs a service: -t ADDR:PORT, -u ADDR:PORT or -f MARK", cmd.flag(), cmd.long()))
    })
}

fn num_opt(v: &Option<String>, what: &str, min: u64, max: u64) -> Result<Option<u64>, CliError> {
    v.as_deref().map(|s| parse_num(s, what, min, max)).transpose().map_err(usage)
}

/// A real server or local address must be of the VIP's family (a fwmark service's, `-6`
/// or not), except IPv4 ones for an IPv6 VIP (NAT64; rvsd checks that the server is
/// FullNAT).
fn family_check(key: &ServiceKey, addr: IpAddr, what: &str) -> Result<(), CliError> {
    if key.is_fwmark() && key.vip.is_ipv4() && addr.is_ipv6() {
        let m = key.fwmark;
        return Err(usage(format!("{what} {addr} is IPv6 and {key} is an IPv4 service (an IPv6 one is -f {m} -6)")));
    }
    if key.vip.is_ipv4() && addr.is_ipv6() {
        return Err(usage(format!("{what} {addr} is not of the VIP's address family ({})", key.vip)));
    }
    Ok(())
}

/// Parses `--sched-flags`: returns (hash_port, hash_fallback).
pub fn parse_sched_flags(s: &str) -> Result<(bool, bool), String> {
    let (mut port, mut fallback) = (false, false);
    for f in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match f {
            "none" => {}
            "sh-fallback" | "mh-fallback" | "dh-fallback" | "fallback" | "flag-1" => fallback = true,
            "sh-port" | "mh-port" | "port" | "flag-2" => port = true,
            _ => {
                return Err(format!(
                "unknown scheduler flag '{f}' (known: sh-fallback, sh-port, mh-fallback, mh-port, dh-fallback, none)"
            ))
            }
        }
    }
    Ok((port, fallback))
}

fn service_config(a: &AdmArgs, key: ServiceKey) -> Result<ServiceConfig, CliError> {
    let mut svc = ServiceConfig::with_key(key);
    if let Some(s) = &a.scheduler {
        svc.sched = s.parse::<SchedKind>().map_err(|e| usage(e.to_string()))?;
    }
    if let Some(p) = &a.persistent {
        let timeout = parse_num(p, "persistence timeout", 1, MAX_TIMEOUT).map_err(usage)?;
        let mut pc = PersistConfig { timeout_s: timeout as u32, ..PersistConfig::default() };
        if let Some(m) = &a.netmask {
            let len = parse_netmask(m, key.vip.is_ipv6()).map_err(usage)?;
            if key.vip.is_ipv6() {
                pc.netmask_v6 = len;
            } else {
                pc.netmask_v4 = len;
            }
        }
        svc.persistence = Some(pc);
    } else if a.netmask.is_some() {
        return Err(usage("-M (netmask) needs -p (persistent)"));
    }
    if key.vport == 0 && !key.is_fwmark() && svc.persistence.is_none() {
        return Err(usage(format!("port 0 (every port) needs a persistent service (-p): {key}")));
    }
    if let Some(f) = &a.sched_flags {
        (svc.hash_port, svc.hash_fallback) = parse_sched_flags(f).map_err(usage)?;
    }
    match a.hash_target.as_deref() {
        None => {}
        Some(_) if svc.sched != SchedKind::Conhash => {
            return Err(usage("hash target can only be set when the scheduler is conhash (-s conhash)"))
        }
        Some("sip") => {}
        Some("qid") => {
            return Err(usage(
                "hash target qid (DPVS: an early Google QUIC connection id, obsolete) is not supported: conhash \
                 hashes the client's address (sip)",
            ))
        }
        Some(t) => return Err(usage(format!("unknown hash target '{t}' (sip)"))),
    }
    if let Some(n) = &a.mh_table_size {
        svc.mh_table_size = Some(parse_num(n, "mh table size", 1, u64::from(u32::MAX)).map_err(usage)? as u32);
    }
    if let Some(j) = &a.synproxy {
        let mode = SynProxyMode::from_name(j)
            .ok_or_else(|| usage(format!("synproxy switch must be enable, disable or auto, not '{j}'")))?;
        if key.proto != Proto::Tcp {
            return Err(usage(format!("the SYN proxy (-j) is for TCP services: {key}")));
        }
        svc.synproxy = Some(mode);
    }
    if let Some(r) = &a.conn_rate {
        let (rate, burst) = r.split_once(':').map_or((r.as_str(), None), |(r, b)| (r, Some(b)));
        let rate = parse_num(rate, "connection rate", 1, u64::from(u32::MAX)).map_err(usage)? as u32;
        let burst =
            burst.map(|b| parse_num(b, "connection burst", 1, u64::from(u32::MAX))).transpose().map_err(usage)?;
        svc.rate_limit = Some(RateLimit { rate, burst: burst.unwrap_or(0) as u32 });
    }
    if let Some(n) = &a.source_limit {
        svc.source_limit = parse_num(n, "source limit", 0, u64::from(u32::MAX)).map_err(usage)? as u32;
    }
    if let Some(c) = &a.dest_check {
        svc.dest_check = match c.as_str() {
            "disable" => None,
            _ => Some(c.parse::<DestCheck>().map_err(|e| usage(e.to_string()))?),
        };
    }
    svc.expire_quiescent = a.expire_quiescent;
    if a.ops && key.is_fwmark() {
        return Err(per_protocol(&key, "one-packet scheduling (-o)"));
    }
    if a.ops && key.proto != Proto::Udp {
        return Err(usage(format!("one-packet scheduling (-o) is for UDP services: {key}")));
    }
    svc.ops = a.ops;
    if let Some(n) = &a.conn_timeout {
        svc.conn_timeout =
            parse_num(n, "connection timeout", 0, u64::from(fnat::tcp_state::MAX_TIMEOUT_S)).map_err(usage)? as u32;
    }
    if let Some(v) = &a.proxy_protocol {
        svc.proxy_protocol = match v.as_str() {
            "disable" => None,
            "v1-insecure" | "v2-insecure" => {
                return Err(usage(format!(
                    "proxy protocol {v}: rvs does not pass on a header the client sent (give v1 or v2: rvs's own \
                     header goes first)"
                )))
            }
            _ => Some(
                ProxyProtocol::from_name(v)
                    .ok_or_else(|| usage(format!("proxy protocol must be v1, v2 or disable, not '{v}'")))?,
            ),
        };
        if svc.proxy_protocol.is_some() && key.is_fwmark() {
            return Err(per_protocol(&key, "the PROXY protocol (--proxy-protocol)"));
        }
        if svc.proxy_protocol == Some(ProxyProtocol::V1) && key.proto != Proto::Tcp {
            return Err(usage(format!(
                "PROXY protocol v1 (--proxy-protocol) speaks of TCP only: UDP services take v2: {key}"
            )));
        }
    }
    if let Some(v) = &a.uoa {
        svc.uoa = match v.as_str() {
            "disable" => None,
            _ => Some(
                UoaMode::from_name(v).ok_or_else(|| usage(format!("uoa must be ipo, opp or disable, not '{v}'")))?,
            ),
        };
        if svc.uoa.is_some() && key.is_fwmark() {
            return Err(per_protocol(&key, "UOA (--uoa)"));
        }
        if svc.uoa.is_some() && key.proto != Proto::Udp {
            return Err(usage(format!("UOA (--uoa) is for UDP services (TCP has the TOA): {key}")));
        }
    }
    Ok(svc)
}

/// A per-protocol option given for a firewall-mark service, whose flows are TCP and UDP
/// (rvsd refuses it too).
fn per_protocol(key: &ServiceKey, what: &str) -> CliError {
    usage(format!(
        "{what} is for one protocol, and a firewall-mark service takes TCP and UDP: {key} (use a -t or -u service)"
    ))
}

/// The real server of `-r` with its port (the service's when omitted; 0 on a fwmark
/// service: each flow's own destination port).
fn real_server(a: &AdmArgs, key: &ServiceKey, cmd: Cmd) -> Result<(IpAddr, u16), CliError> {
    let r = a
        .real_server
        .as_deref()
        .ok_or_else(|| usage(format!("{} ({}) needs a real server: -r ADDR[:PORT]", cmd.flag(), cmd.long())))?;
    let (addr, port) = parse_addr_port_named(r, "real server", key.proto.name()).map_err(usage)?;
    family_check(key, addr, "real server")?;
    Ok((addr, port.unwrap_or(key.vport)))
}

/// The forwarding method given (`-b`, `-m`, `-g` or `-i`; at most one). Unlike ipvsadm, whose
/// default is `-g`, a real server added without one is FullNAT, rvs's own default.
fn fwd_mode(a: &AdmArgs) -> Result<Option<FwdMode>, CliError> {
    let given: Vec<FwdMode> = [
        (FwdMode::FullNat, a.fullnat),
        (FwdMode::Nat, a.masquerading),
        (FwdMode::Dr, a.gatewaying),
        (FwdMode::Tunnel, a.ipip),
    ]
    .into_iter()
    .filter_map(|(m, on)| on.then_some(m))
    .collect();
    match given[..] {
        [] => Ok(None),
        [m] => Ok(Some(m)),
        _ => Err(usage("give one forwarding method: -b (FullNAT), -m (NAT), -g (DR) or -i (TUN)".to_string())),
    }
}

fn build(a: &AdmArgs) -> Result<AdmCmd, CliError> {
    let refused = [a.sync_option.is_some(), a.pe.is_some(), a.tun_option.is_some() || a.tun_csum, a.quic];
    if let Some(i) = refused.iter().position(|r| *r) {
        let (opt, whose, why) = UNSUPPORTED[i];
        return Err(usage(format!("{opt}: valid {whose} that rvs does not support: {why}")));
    }
    let cmd = command(a)?;
    if let Some((name, _)) = options(a).into_iter().find(|(name, given)| *given && !cmd.accepts(name)) {
        return Err(usage(format!("option {name} is not allowed with {} ({})", cmd.flag(), cmd.long())));
    }
    if let Some(m) = &a.matcher {
        return snat_cmd(a, cmd, m);
    }
    if a.snat {
        return Err(usage("-J (SNAT) is for a SNAT rule's WAN address: -a -H MATCH -r WAN:0 -J"));
    }
    if a.snat_name.is_some() {
        return Err(usage("--name names a SNAT rule when it is added: -A -H MATCH --name NAME"));
    }
    let key = service_key(a)?;
    let sort = !a.nosort;
    Ok(match cmd {
        Cmd::AddService => {
            let service = service_config(a, need_key(key, cmd)?)?;
            AdmCmd::Change(Request::ServiceAdd(ServiceSpec { service, laddrs: Vec::new() }))
        }
        Cmd::EditService => AdmCmd::Change(Request::ServiceEdit { service: service_config(a, need_key(key, cmd)?)? }),
        Cmd::DeleteService => AdmCmd::Change(Request::ServiceDel { key: need_key(key, cmd)? }),
        Cmd::Clear => AdmCmd::Change(Request::ServiceReplace { services: Vec::new(), snat: Some(Vec::new()) }),
        Cmd::Restore => AdmCmd::Restore,
        Cmd::Save => AdmCmd::Save { sort },
        Cmd::AddServer => {
            let key = need_key(key, cmd)?;
            let (addr, port) = real_server(a, &key, cmd)?;
            let rs = RealServerConfig {
                addr,
                port,
                weight: num_opt(&a.weight, "weight", 0, u64::from(MAX_WEIGHT))?.map_or(DEFAULT_WEIGHT, |w| w as u32),
                upper: num_opt(&a.u_threshold, "upper threshold", 0, i32::MAX as u64)?.unwrap_or(0) as u32,
                lower: num_opt(&a.l_threshold, "lower threshold", 0, i32::MAX as u64)?.unwrap_or(0) as u32,
                fwd: fwd_mode(a)?.unwrap_or_default(),
            };
            AdmCmd::Change(Request::RealServerAdd { key, rs })
        }
        Cmd::EditServer => {
            let key = need_key(key, cmd)?;
            let (addr, port) = real_server(a, &key, cmd)?;
            let change = RealServerEdit {
                weight: num_opt(&a.weight, "weight", 0, u64::from(MAX_WEIGHT))?.map(|w| w as u32),
                upper: num_opt(&a.u_threshold, "upper threshold", 0, i32::MAX as u64)?.map(|w| w as u32),
                lower: num_opt(&a.l_threshold, "lower threshold", 0, i32::MAX as u64)?.map(|w| w as u32),
                fwd: fwd_mode(a)?,
            };
            AdmCmd::Change(Request::RealServerEdit { key, addr, port, change })
        }
        Cmd::DeleteServer => {
            let key = need_key(key, cmd)?;
            let (addr, port) = real_server(a, &key, cmd)?;
            AdmCmd::Change(Request::RealServerDel { key, addr, port })
        }
        Cmd::List => list_cmd(a, key, sort)?,
        Cmd::StartDaemon | Cmd::StopDaemon => {
            let (start, state) = match (&a.start_daemon, &a.stop_daemon) {
                (Some(s), _) => (true, s),
                (_, Some(s)) => (false, s),
                _ => unreachable!("the command was given"),
            };
            let role = state.parse::<ctl::SyncRole>().map_err(usage)?;
            let syncid = num_opt(&a.syncid, "syncid", 0, 255)?.map(|v| v as u8);
            if a.mcast_interface.as_deref() == Some("") {
                return Err(usage("--mcast-interface needs an interface name"));
            }
            AdmCmd::Change(Request::SyncDaemon { role, start, syncid, mcast_interface: a.mcast_interface.clone() })
        }
        Cmd::Zero => AdmCmd::Change(Request::ZeroCounters { key }),
        Cmd::Set => {
            let v = a.set.as_deref().unwrap_or_default();
            let t = |i: usize, what: &str| -> Result<u32, CliError> {
                let s = v.get(i).map(String::as_str).unwrap_or_default();
                Ok(parse_num(s, what, 0, MAX_TIMEOUT).map_err(usage)? as u32)
            };
            AdmCmd::Change(Request::TimeoutsSet {
                tcp: t(0, "tcp timeout")?,
                tcpfin: t(1, "tcpfin timeout")?,
                udp: t(2, "udp timeout")?,
            })
        }
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let key = need_key(key, cmd)?;
            let z = a
                .laddr
                .as_deref()
                .ok_or_else(|| usage(format!("{} ({}) needs a local address: -z ADDR", cmd.flag(), cmd.long())))?;
            let addr = parse_ip(z, "local address").map_err(usage)?;
            family_check(&key, addr, "local address")?;
            if let Some(f) = &a.ifname {
                if f.is_empty() {
                    return Err(usage("-F needs a port name"));
                }
            }
            if cmd == Cmd::AddLaddr {
                AdmCmd::Change(Request::LaddrAdd { key, addr })
            } else {
                AdmCmd::Change(Request::LaddrDel { key, addr })
            }
        }
        Cmd::GetLaddr => AdmCmd::Laddrs { key, json: a.json },
        Cmd::GetBlklst | Cmd::GetWhtlst => AdmCmd::Acls { key, allow: cmd == Cmd::GetWhtlst, json: a.json },
        Cmd::AddBlklst | Cmd::DelBlklst | Cmd::AddWhtlst | Cmd::DelWhtlst => {
            let key = need_key(key, cmd)?;
            let allow = matches!(cmd, Cmd::AddWhtlst | Cmd::DelWhtlst);
            let (v, opt) = if allow { (&a.whtlst, "--whtlst-address") } else { (&a.blklst, "-k") };
            let v = v.as_deref().ok_or_else(|| usage(format!("{} needs a source: {opt} ADDR[/LEN]", cmd.flag())))?;
            let net = v
                .parse::<ipnet::IpNet>()
                .or_else(|_| v.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| usage(format!("{v:?} is not an address or prefix")))?;
            family_check(&key, net.addr(), "source")?;
            let add = matches!(cmd, Cmd::AddBlklst | Cmd::AddWhtlst);
            AdmCmd::Change(Request::ServiceAcl { key, allow, add, prefixes: vec![net.trunc()] })
        }
    })
}

/// A command on the SNAT rule `-H` names (DPVS's match service). A rule takes its WAN
/// addresses in turn: only `-s rr` is accepted, and no weight or threshold.
fn snat_cmd(a: &AdmArgs, cmd: Cmd, text: &str) -> Result<AdmCmd, CliError> {
    if a.tcp_service.is_some() || a.udp_service.is_some() || a.fwmark_service.is_some() {
        return Err(usage("give -t/-u/-f or -H (a SNAT rule's match), not both"));
    }
    let mut rule = ctl::SnatSpec::from_match(text).map_err(usage)?;
    // What a SNAT rule takes (`-s` and `-w` are looked at below, to say why).
    const SNAT_OPTIONS: &[&str] = &["-H", "-J", "-s", "-r", "-w", "--name"];
    if let Some((opt, _)) = options(a).into_iter().find(|(name, given)| *given && !SNAT_OPTIONS.contains(name)) {
        return Err(usage(format!("{opt} is not for a SNAT rule (-H)")));
    }
    if let Some(sched) = a.scheduler.as_deref().filter(|s| *s != "rr") {
        return Err(usage(format!("-s {sched}: a SNAT rule takes its WAN addresses in turn (rr) only")));
    }
    if let Some(w) = &a.weight {
        return Err(usage(format!("-w {w}: a SNAT rule takes its WAN addresses in turn, without weights (drop -w)")));
    }
    if let Some(n) = &a.snat_name {
        if cmd != Cmd::AddService {
            return Err(usage("--name names a SNAT rule when it is added: -A -H MATCH --name NAME"));
        }
        if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(usage(format!("--name {n:?}: a SNAT rule's name is one word")));
        }
        rule.name = Some(n.clone());
    }
    let wan = || -> Result<IpAddr, CliError> {
        let r = a
            .real_server
            .as_deref()
            .ok_or_else(|| usage(format!("{} ({}) -H needs a WAN address: -r WAN:0 -J", cmd.flag(), cmd.long())))?;
        let (addr, port) = parse_addr_port_named(r, "WAN address", "tcp").map_err(usage)?;
        if port.is_some_and(|p| p != 0) {
            return Err(usage(format!("WAN address {r}: the port must be 0 (or none): the flows' ports are rvs's")));
        }
        Ok(addr)
    };
    Ok(AdmCmd::Change(match cmd {
        Cmd::AddService => Request::SnatAdd { rule },
        Cmd::DeleteService => Request::SnatDel { rule },
        Cmd::AddServer => Request::SnatWan { rule, wan: wan()?, add: true },
        Cmd::DeleteServer => Request::SnatWan { rule, wan: wan()?, add: false },
        _ => return Err(usage(format!("{} ({}) takes no -H", cmd.flag(), cmd.long()))),
    }))
}

fn list_cmd(a: &AdmArgs, key: Option<ServiceKey>, sort: bool) -> Result<AdmCmd, CliError> {
    // With -c, --persistent-conn lists the templates instead of the connections.
    let persist_view = a.persistent_conn && !a.connection;
    let views: Vec<&str> =
        [("--stats", a.stats), ("--rate", a.rate), ("--thresholds", a.thresholds), ("--persistent-conn", persist_view)]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect();
    if views.len() > 1 {
        return Err(usage(format!("{} cannot be combined", views.join(" and "))));
    }
    if !a.connection && !a.timeout && (a.sockpair.is_some() || a.cpu.is_some()) {
        return Err(usage("--sockpair and --cpu choose connections: with -L -c"));
    }
    if a.daemon {
        if a.connection || a.timeout || !views.is_empty() || key.is_some() {
            return Err(usage("--daemon lists the sync roles: it takes no service, -c, --timeout or view"));
        }
        return Ok(AdmCmd::Daemons { json: a.json });
    }
    if a.connection || a.timeout {
        let what = if a.connection { "-c" } else { "--timeout" };
        if a.connection && a.timeout {
            return Err(usage("-c and --timeout cannot be combined"));
        }
        if let Some(v) = views.first() {
            return Err(usage(format!("{what} and {v} cannot be combined")));
        }
        if key.is_some() {
            return Err(usage(format!("{what} lists everything; it takes no service")));
        }
        if !a.connection && (a.sockpair.is_some() || a.cpu.is_some()) {
            return Err(usage("--sockpair and --cpu choose connections: with -L -c"));
        }
        if a.persistent_conn && a.sockpair.is_some() {
            return Err(usage(
                "--sockpair names one connection by its client port; a persistence template has none \
                 (list them with -L -c --persistent-conn, --cpu N for one worker's)",
            ));
        }
        return Ok(if a.connection {
            AdmCmd::Conns {
                json: a.json,
                filter: ConnFilter::parse(a.sockpair.as_deref(), a.cpu.as_deref())?,
                templates: a.persistent_conn,
            }
        } else {
            AdmCmd::Timeouts { json: a.json }
        });
    }
    let view = if a.stats {
        View::Stats
    } else if a.rate {
        View::Rate
    } else if a.thresholds {
        View::Thresholds
    } else if a.persistent_conn {
        View::PersistConn
    } else {
        View::Plain
    };
    Ok(AdmCmd::List(ListOpts { key, view, exact: a.exact, sort, json: a.json }))
}

/// Carries out `cmd`: `input` is read by `-R`, everything is printed to `out`.
pub fn run(cmd: &AdmCmd, ctl: &mut dyn Ctl, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        AdmCmd::Print(s) => write!(out, "{s}")?,
        AdmCmd::Change(req) => change(ctl, req.clone())?,
        AdmCmd::Restore => {
            let mut text = String::new();
            input.read_to_string(&mut text)?;
            let rules = restore::plan(&text)?;
            change(ctl, Request::ServiceReplace { services: rules.services, snat: Some(rules.snat) })?;
        }
        AdmCmd::Save { sort } => {
            let services = services(ctl, false)?;
            format::write_rules(out, &services, *sort)?;
            format::write_snat_rules(out, &snat_rules(ctl)?)?;
        }
        AdmCmd::List(opts) => list(ctl, opts, out)?,
        AdmCmd::Conns { json, filter, templates } => conns(ctl, *json, filter, *templates, out)?,
        AdmCmd::Daemons { json } => match ctl.call(Request::SyncDaemons {})? {
            r @ Response::SyncDaemons { .. } if *json => write_json(out, &r)?,
            Response::SyncDaemons { daemons } => format::write_daemons(out, &daemons)?,
            other => return Err(unexpected("sync daemons", &other)),
        },
        AdmCmd::Timeouts { json } => match ctl.call(Request::TimeoutsGet {})? {
            r @ Response::Timeouts { .. } if *json => write_json(out, &r)?,
            Response::Timeouts { timeouts } => format::write_timeouts(out, &timeouts)?,
            other => return Err(unexpected("timeouts", &other)),
        },
        AdmCmd::Laddrs { key, json } => {
            let svcs = services_of(ctl, key.as_ref())?;
            if *json {
                write_json(out, &Response::Services { services: svcs })?;
            } else {
                format::write_laddrs(out, &svcs)?;
            }
        }
        AdmCmd::Acls { key, allow, json } => {
            let svcs = services_of(ctl, key.as_ref())?;
            if *json {
                write_json(out, &Response::Services { services: svcs })?;
            } else {
                format::write_acls(out, &format::acl_lists(&svcs, *allow), *allow)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Every service, or only `key` (which must exist).
fn services_of(ctl: &mut dyn Ctl, key: Option<&ServiceKey>) -> Result<Vec<ctl::ServiceView>, CliError> {
    let mut svcs = services(ctl, false)?;
    if let Some(k) = key {
        svcs.retain(|s| s.service.key() == *k);
        if svcs.is_empty() {
            return Err(no_service(k));
        }
    }
    Ok(svcs)
}

fn no_service(k: &ServiceKey) -> CliError {
    CliError::NotFound(format!("no service {k}"))
}

fn change(ctl: &mut dyn Ctl, req: Request) -> Result<(), CliError> {
    match ctl.call(req)? {
        Response::Done { .. } => Ok(()),
        other => Err(unexpected("done", &other)),
    }
}

/// Every service, page by page (any number fits); pages of one generation only: a
/// change while listing starts the listing again (a few times at most). A reply with
/// the whole list at once (an older rvsd) is taken as it is.
fn services(ctl: &mut dyn Ctl, stats: bool) -> Result<Vec<ctl::ServiceView>, CliError> {
    'again: for _ in 0..5 {
        let (mut all, mut from, mut first_gen) = (Vec::new(), 0, None);
        loop {
            match ctl.call(Request::ServicePage { stats, from, max: None })? {
                Response::Services { services } => return Ok(services),
                Response::ServicePage { services, next, gen } => {
                    if *first_gen.get_or_insert(gen) != gen {
                        continue 'again;
                    }
                    all.extend(services);
                    match next {
                        Some(n) if n > from => from = n,
                        _ => return Ok(all),
                    }
                }
                other => return Err(unexpected("services", &other)),
            }
        }
    }
    Err(CliError::Ctl(CtlError::BadReply("the services kept changing while being listed; try again".into())))
}

fn list(ctl: &mut dyn Ctl, opts: &ListOpts, out: &mut dyn Write) -> Result<(), CliError> {
    let header = if opts.json {
        None
    } else {
        match ctl.call(Request::Status {})? {
            Response::Status { version, conn_pool_size, .. } => Some(format::header_line(&version, conn_pool_size)),
            other => return Err(unexpected("status", &other)),
        }
    };
    let stats = matches!(opts.view, View::Stats | View::Rate);
    let mut svcs = services(ctl, stats)?;
    if opts.view == View::Rate {
        let dt = ctl.pause(RATE_INTERVAL);
        let second = services(ctl, true)?;
        svcs = format::rates(&svcs, &second, dt);
    }
    if let Some(k) = &opts.key {
        svcs.retain(|s| s.service.key() == *k);
        if svcs.is_empty() {
            return Err(no_service(k));
        }
    }
    if opts.json {
        if opts.key.is_some() {
            return write_json(out, &Response::Services { services: svcs });
        }
        // The whole listing: the services' reply with the SNAT rules beside them (as the
        // plain listing prints them after the services).
        let mut doc = serde_json::to_value(ctl::ResponseMsg::from(Response::Services { services: svcs }))
            .map_err(io::Error::from)?;
        let rules = serde_json::to_value(snat_rules(ctl)?).map_err(io::Error::from)?;
        if let Some(o) = doc.as_object_mut() {
            o.insert("snat".into(), rules);
        }
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    format::write_services(out, header.as_deref(), &svcs, opts)?;
    if opts.key.is_none() && matches!(opts.view, View::Plain) {
        // The SNAT rules after the services, as DPVS lists its match services.
        format::write_snat(out, &snat_rules(ctl)?)?;
    }
    Ok(())
}

/// rvsd's SNAT rules.
fn snat_rules(ctl: &mut dyn Ctl) -> Result<Vec<ctl::SnatSpec>, CliError> {
    match ctl.call(Request::SnatList {})? {
        Response::Snat { rules } => Ok(rules),
        other => Err(unexpected("snat", &other)),
    }
}

/// Which connections `-L -c` lists: DPVS's `--sockpair PROTO:CIP:CPORT:VIP:VPORT` (the
/// client's socket pair) and `--cpu N` (one worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnFilter {
    /// Protocol, client and virtual address of the one connection wanted.
    pub sockpair: Option<(Proto, SocketAddr, SocketAddr)>,
    /// The worker wanted.
    pub worker: Option<u16>,
}

impl ConnFilter {
    /// From `--sockpair` and `--cpu` as given.
    fn parse(sockpair: Option<&str>, cpu: Option<&str>) -> Result<ConnFilter, CliError> {
        let worker =
            cpu.map(|c| parse_num(c, "--cpu (worker index)", 0, u64::from(u16::MAX))).transpose().map_err(usage)?;
        let sockpair = sockpair.map(parse_sockpair).transpose().map_err(usage)?;
        Ok(ConnFilter { sockpair, worker: worker.map(|w| w as u16) })
    }

    /// Whether `c` is listed.
    fn passes(&self, c: &fnat::engine::listing::ConnInfo) -> bool {
        self.worker.is_none_or(|w| w == c.worker)
            && self.sockpair.is_none_or(|(p, cl, v)| p == c.proto && cl == c.client && v == c.virt)
    }
}

/// DPVS's sockpair: `PROTO:SIP:SPORT:TIP:TPORT`, PROTO `tcp` or `udp`, an IPv6 address in
/// brackets (`tcp:[2001:db8::9]:40000:[2001:db8::100]:80`).
fn parse_sockpair(text: &str) -> Result<(Proto, SocketAddr, SocketAddr), String> {
    let bad = || format!("bad sockpair '{text}' (expected PROTO:CIP:CPORT:VIP:VPORT, IPv6 in brackets)");
    let (proto, rest) = text.split_once(':').ok_or_else(bad)?;
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(format!("sockpair '{text}': protocol '{proto}' is not tcp or udp")),
    };
    // The client's end is ADDR:PORT up to the colon that starts the virtual address.
    let split = if rest.starts_with('[') {
        rest.find("]:").and_then(|i| rest[i + 2..].find(':').map(|j| i + 2 + j))
    } else {
        rest.find(':').and_then(|i| rest[i + 1..].find(':').map(|j| i + 1 + j))
    };
    let (client, virt) = split.map(|i| (&rest[..i], &rest[i + 1..])).ok_or_else(bad)?;
    let sock = |s: &str| s.parse::<SocketAddr>().map_err(|_| bad());
    Ok((proto, sock(client)?, sock(virt)?))
}

fn conns(
    ctl: &mut dyn Ctl,
    json: bool,
    filter: &ConnFilter,
    templates: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut err: Option<io::Error> = None;
    let mut first = true;
    if json {
        write!(out, "{{\"v\":{},\"result\":\"conns\",\"conns\":[", ctl::PROTOCOL_VERSION)?;
    }
    let mut f = |c: &fnat::engine::listing::ConnInfo| {
        if err.is_some() || !filter.passes(c) {
            return;
        }
        let r = if json {
            let sep = if first { "" } else { "," };
            first = false;
            serde_json::to_string(c).map_err(io::Error::from).and_then(|s| write!(out, "{sep}\n{s}"))
        } else {
            writeln!(out, "{}", format::conn_line(c))
        };
        if let Err(e) = r {
            err = Some(e);
        }
    };
    ctl.for_each_conn(CONN_PAGE, templates, &mut f)?;
    if let Some(e) = err {
        return Err(e.into());
    }
    if json {
        writeln!(out, "\n],\"next\":null}}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
