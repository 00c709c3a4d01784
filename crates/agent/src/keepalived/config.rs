//! The typed configuration read from keepalived.conf. Defaults are keepalived's.

use super::diag::Loc;
use crate::dataplane::{LvsTimeouts, Proto};
use crate::vrrp::packet::{auth_pass, Auth, ChecksumMode, Version};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Config {
    /// `global_defs`.
    pub global_defs: GlobalDefs,
    /// `vrrp_script` blocks.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_track_process` blocks.
    #[serde(default)]
    pub vrrp_track_processes: Vec<TrackProcess>,
    /// `vrrp_sync_group` blocks.
    pub vrrp_sync_groups: Vec<SyncGroup>,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `virtual_server_group` blocks.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// `virtual_server` blocks.
    pub virtual_servers: Vec<VirtualServer>,
    /// DPVS's `virtual_server match NAME { lb_kind SNAT ... }` blocks: SNAT rules the agent
    /// keeps in rvsd (flows that hosts behind rvs open to the outside leave from a WAN
    /// address), in file order.
    #[serde(default)]
    pub snat: Vec<SnatConf>,
    /// DPVS's `local_address_group` blocks.
    pub local_address_groups: Vec<LocalAddressGroup>,
    /// DPVS's `deny_address_group` (blacklist) and `allow_address_group` (whitelist)
    /// blocks.
    pub address_groups: Vec<AddressGroup>,
    /// `static_ipaddress`: addresses rvsd holds while the agent runs, whatever the VRRP
    /// state (each names its DPDK port with `dev`).
    #[serde(default)]
    pub static_ipaddress: Vec<VirtualIp>,
    /// `static_routes`: routes added to rvsd when the agent starts.
    #[serde(default)]
    pub static_routes: Vec<StaticRoute>,
    /// Keywords accepted and ignored (see [`super::parse::IGNORED`]), with where.
    pub ignored: Vec<(Loc, String)>,
    /// The global `SSL { ... }` block: the client certificate SSL_GET checkers present.
    #[serde(default)]
    pub ssl: Option<SslConf>,
    /// `garp_group` blocks: the pacing of gratuitous ARPs / NAs on named interfaces.
    #[serde(default)]
    pub garp_groups: Vec<GarpGroup>,
    /// `bfd_instance` blocks: BFD sessions with neighbours (see [`crate::bfd`]).
    #[serde(default)]
    pub bfd_instances: Vec<BfdInstance>,
}

impl Config {
    /// The `virtual_server_group` named `name`: the first of that name, as keepalived's
    /// `ipvs_get_group_by_name` (which never reaches a second; rvs refuses one, see
    /// [`super::validate`]).
    pub fn vs_group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }
}

/// keepalived's `bfd_instance NAME { neighbor_ip ADDR ; source_ip ADDR ; min_rx MS ;
/// min_tx MS ; idle_tx MS ; multiplier N ; passive ; ttl N ; max_hops N ; weight N
/// [reverse] ; vrrp ; checker }`: a BFD session with a neighbour (RFC 5880 / 5881), which
/// vrrp_instances follow with `track_bfd`. Defaults are keepalived 2.2.7's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BfdInstance {
    /// The block's name.
    pub name: String,
    /// `neighbor_ip` (or `neighbour_ip`): the peer.
    pub neighbor: IpAddr,
    /// `source_ip`: our address (the kernel's choice when unset).
    pub source: Option<IpAddr>,
    /// `min_rx`, microseconds (10 ms).
    pub min_rx_us: u32,
    /// `min_tx`, microseconds (10 ms).
    pub min_tx_us: u32,
    /// `idle_tx`, microseconds (1 s; at least 1 s).
    pub idle_tx_us: u32,
    /// `multiplier` (5).
    pub multiplier: u8,
    /// `passive`: silent until the neighbour speaks.
    pub passive: bool,
    /// `ttl` / `hoplimit`: sent with, and the base of the check on arrival (255 for IPv4,
    /// 64 for IPv6, as keepalived).
    pub ttl: u8,
    /// `max_hops`: how far below `ttl` an arriving packet's may be (0: none; `-1`,
    /// `None`: no check).
    pub max_hops: Option<u8>,
    /// `weight N [reverse]`: the default weight of `track_bfd` entries (0: FAULT while
    /// the session is down).
    pub weight: i32,
    /// `weight N reverse`.
    pub weight_reverse: bool,
    /// Whether VRRP instances may track it (`vrrp`, or neither `vrrp` nor `checker`).
    pub vrrp: bool,
    /// Whether `BFD_CHECK`s may follow it (`checker`, or neither).
    #[serde(default = "yes")]
    pub checker: bool,
    /// Where it is defined.
    pub loc: Loc,
}

/// keepalived's `garp_group { garp_interval SECS ; gna_interval SECS ; interface IF ;
/// interfaces { IF ... } }`: gratuitous ARPs (NAs) sent on the group's interfaces, by
/// every instance, go at least this far apart, the interfaces paced together (one
/// timer per group, as keepalived's `garp_delay`). Interfaces in no group are paced each
/// on its own by `vrrp_garp_interval` / `vrrp_gna_interval`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GarpGroup {
    /// `garp_interval`: between two gratuitous ARPs.
    pub garp_interval: Option<f64>,
    /// `gna_interval`: between two unsolicited neighbour advertisements.
    pub gna_interval: Option<f64>,
    /// The interfaces (rvsd's twins or ports, as `interface` in an instance).
    pub interfaces: Vec<String>,
}

/// The global `SSL { certificate ...; key ...; ca ...; password ... }` block of SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SslConf {
    /// `certificate`: PEM chain presented as the client certificate (with `key`).
    pub certificate: Option<String>,
    /// `key`: PEM private key of the client certificate (unencrypted).
    pub key: Option<String>,
    /// `ca`: keepalived 2.2.7 loads it but never verifies the real server's certificate
    /// against it; kept for the record only.
    pub ca: Option<String>,
}

/// `global_defs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalDefs {
    /// `router_id`.
    pub router_id: Option<String>,
    /// `vrrp_mcast_group4` (224.0.0.18).
    pub vrrp_mcast_group4: Ipv4Addr,
    /// `vrrp_mcast_group6` (ff02::12).
    pub vrrp_mcast_group6: Ipv6Addr,
    /// `vrrp_version`: the default for instances.
    pub vrrp_version: Option<Version>,
    /// `vrrp_garp_master_delay` seconds.
    pub vrrp_garp_master_delay: Option<u32>,
    /// `vrrp_garp_master_repeat`.
    pub vrrp_garp_master_repeat: Option<u32>,
    /// `vrrp_garp_master_refresh` seconds.
    pub vrrp_garp_master_refresh: Option<u32>,
    /// `vrrp_higher_prio_send_advert`: the default for instances.
    pub vrrp_higher_prio_send_advert: bool,
    /// `vrrp_skip_check_adv_addr`: the default for instances.
    #[serde(default)]
    pub vrrp_skip_check_adv_addr: bool,
    /// `vrrp_garp_master_refresh_repeat`: the default for instances (1).
    #[serde(default)]
    pub vrrp_garp_master_refresh_repeat: Option<u32>,
    /// `vrrp_garp_lower_prio_repeat`: the default for instances (else
    /// `vrrp_garp_master_repeat`, as keepalived).
    #[serde(default)]
    pub vrrp_garp_lower_prio_repeat: Option<u32>,
    /// `vrrp_garp_lower_prio_delay` seconds: the default for instances (else
    /// `vrrp_garp_master_delay`).
    #[serde(default)]
    pub vrrp_garp_lower_prio_delay: Option<u32>,
    /// `vrrp_lower_prio_no_advert`: the default for instances.
    #[serde(default)]
    pub vrrp_lower_prio_no_advert: bool,
    /// `notify_fifo` / `notify_fifo_script`: gets every notify line, VRRP's and the
    /// health checks' (see [`crate::agent::fifo`]).
    #[serde(default)]
    pub notify_fifo: NotifyFifoConf,
    /// `vrrp_notify_fifo` / `vrrp_notify_fifo_script`: a line `INSTANCE "NAME" STATE
    /// PRIORITY` per VRRP state change.
    #[serde(default)]
    pub vrrp_notify_fifo: NotifyFifoConf,
    /// `lvs_notify_fifo` / `lvs_notify_fifo_script`: a line per real server (`RS ...`)
    /// and virtual server quorum (`VS ...`) going UP or DOWN.
    #[serde(default)]
    pub lvs_notify_fifo: NotifyFifoConf,
    /// keepalived's `lvs_sync_daemon` (or a vrrp_instance's `lvs_sync_daemon_interface`):
    /// which connection-sync roles rvsd runs, switched by the agent as keepalived switches
    /// IPVS's sync daemons (see [`LvsSyncDaemon`]).
    #[serde(default)]
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// keepalived's `lvs_timeouts [tcp N] [tcpfin N] [udp N]`: rvsd's global connection
    /// timeouts (`TimeoutsSet`), set at start and on a reload that changes them, as
    /// keepalived sets IPVS's; 0 (or absent): rvsd's own value.
    #[serde(default)]
    pub lvs_timeouts: LvsTimeouts,
    /// keepalived's `vrrp_startup_delay SECS`: no VRRP instance may become MASTER before
    /// this long after the agent started (they start as BACKUP and listen meanwhile), as
    /// keepalived's `vrrp_delayed_start_time`: for boxes whose interfaces take time to come
    /// up at boot. Only the agent's start counts, not a reload. None: no delay.
    #[serde(default)]
    pub vrrp_startup_delay: Option<f64>,
    /// keepalived's `vrrp_garp_interval SECS` (fractional, to the microsecond): the
    /// spacing of an instance's gratuitous ARPs for its IPv4 VIPs, for switches and hosts
    /// that drop a burst sent at once: a burst of N is sent as N single ARPs this far
    /// apart (each VIP in turn). None: a burst is sent at once (rvsd spaces nothing).
    #[serde(default)]
    pub vrrp_garp_interval: Option<f64>,
    /// keepalived's `vrrp_gna_interval SECS`: the same for the unsolicited neighbour
    /// advertisements of IPv6 VIPs.
    #[serde(default)]
    pub vrrp_gna_interval: Option<f64>,
    /// keepalived's `lvs_flush_on_stop [VS]` (or its older name `lvs_flush_onstop`): the
    /// services are not removed at stop (rvs-agent leaves them in rvsd, a warning says so),
    /// but `omega` then runs only the quorum notifiers at shutdown, as keepalived's
    /// `clear_services` does with it.
    #[serde(default)]
    pub lvs_flush_on_stop: Option<LvsFlushOnStop>,
    /// keepalived's mail alerts: `notification_email`, `smtp_server`, `smtp_alert*`
    /// (see [`crate::agent::mail`]).
    #[serde(default)]
    pub smtp: SmtpConf,
    /// keepalived's `net_namespace NAME` (a top-level keyword, read into the global
    /// definitions as keepalived does): the agent runs in the network namespace
    /// `/run/netns/NAME` (as `-s NAME`, which overrides it); taken at start only, as
    /// keepalived (a reload that changes it is logged and waits for a restart).
    #[serde(default)]
    pub net_namespace: Option<String>,
    /// keepalived's `vrrp_strict`: the default of every instance's `strict_mode` (see
    /// [`VrrpInstance::strict_mode`]).
    #[serde(default)]
    pub vrrp_strict: bool,
    /// keepalived's `enable_script_security`: a script run with root's rights that other
    /// users could change is refused (without it: warned); see
    /// [`crate::script::unsafe_reason`].
    #[serde(default)]
    pub script_security: bool,
    /// keepalived's `vrrp_down_timer_adverts`: the default of every instance's
    /// `down_timer_adverts`.
    #[serde(default)]
    pub vrrp_down_timer_adverts: Option<u32>,
    /// keepalived's `rs_init_notifies`: real servers that start up run their `notify_up`
    /// (and write their `RS ... UP` line), at start and when a reload adds them.
    #[serde(default)]
    pub rs_init_notifies: bool,
    /// keepalived's `vrrp_notify_priority_changes`: the default of `notify_priority_changes`.
    #[serde(default)]
    pub vrrp_notify_priority_changes: bool,
    /// keepalived's `startup_script` (with `startup_script_timeout`, 10 s by default): run
    /// before anything starts (services, VRRP, checks), waited for, killed at its timeout.
    /// Taken at start only.
    #[serde(default)]
    pub startup_script: Option<LifecycleScript>,
    /// keepalived's `shutdown_script` (with `shutdown_script_timeout`): run once
    /// everything has stopped, waited for, killed at its timeout. Taken at start only.
    #[serde(default)]
    pub shutdown_script: Option<LifecycleScript>,
}

fn three() -> u32 {
    3
}

/// A command keepalived.conf names (a notify, check or lifecycle script): its command
/// line, run by `/bin/sh -c`, and the user it runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The command line.
    pub cmd: String,
    /// keepalived's `[username [groupname]]`, `user` or `script_user`, else its default
    /// user `keepalived_script` when that exists; none: rvs-agent's own user.
    #[serde(default)]
    pub run_as: Option<RunAs>,
}

/// A user and group a script runs as, resolved when the configuration is read (as
/// keepalived: a name that does not resolve is an error then, not at the first run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAs {
    /// The user's name, as written.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// The group's gid: the group named, else the user's primary group.
    pub gid: u32,
}

impl Script {
    /// A script run as rvs-agent's own user.
    pub fn new(cmd: impl Into<String>) -> Script {
        Script { cmd: cmd.into(), run_as: None }
    }

    /// The same script with `args` after its command line (keepalived's generic
    /// `notify` gets `INSTANCE NAME STATE PRIORITY`).
    pub fn with_args(&self, args: &str) -> Script {
        Script { cmd: format!("{} {args}", self.cmd), run_as: self.run_as.clone() }
    }
}

impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cmd)?;
        match &self.run_as {
            Some(r) => write!(f, " (as {})", r.user),
            None => Ok(()),
        }
    }
}

/// A script run as rvs-agent's own user (tests).
#[cfg(test)]
impl From<&str> for Script {
    fn from(cmd: &str) -> Script {
        Script::new(cmd)
    }
}

/// Tests compare scripts with their command lines.
#[cfg(test)]
impl PartialEq<&str> for Script {
    fn eq(&self, other: &&str) -> bool {
        self.cmd == *other
    }
}

/// A script keepalived runs at start or at stop, and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleScript {
    /// The command.
    pub cmd: Script,
    /// Seconds before it is killed (1-1000, 10 by default).
    pub timeout: u32,
}

/// keepalived's mail alerts (`global_defs`): who gets them, through which server, and
/// which objects send them by default. Each VRRP instance, sync group, virtual server and
/// real server may say `smtp_alert [BOOL]` itself; see [`SmtpConf::vrrp_alert`] and
/// [`SmtpConf::checker_alert`] for what applies when it does not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SmtpConf {
    /// `smtp_server HOST [PORT]`: an address or a name (resolved when a mail is sent),
    /// port 25 by default. None: no mail is sent.
    pub server: Option<(String, u16)>,
    /// `smtp_helo_name` (this host's name by default).
    pub helo_name: Option<String>,
    /// `smtp_connect_timeout` seconds, for the connection and each reply (30 by default,
    /// at least 1).
    pub connect_timeout: Option<u32>,
    /// `notification_email_from` (`USER@HOSTNAME` by default, the agent's user).
    pub from: Option<String>,
    /// `notification_email { ... }`: the recipients. Empty: no mail is sent.
    pub to: Vec<String>,
    /// `smtp_alert [BOOL]`: the default of every object.
    pub alert: Option<bool>,
    /// `smtp_alert_vrrp [BOOL]`: the default of VRRP instances and sync groups.
    pub alert_vrrp: Option<bool>,
    /// `smtp_alert_checker [BOOL]`: the default of virtual and real servers.
    pub alert_checker: Option<bool>,
    /// `no_email_faults`: no mail for entering FAULT.
    pub no_email_faults: bool,
    /// `no_checker_emails [BOOL]`: keepalived then mails a real server's change only when
    /// the server's own state changes, not each checker's; rvs-agent always does (one
    /// mail per server transition), so this changes nothing.
    pub no_checker_emails: bool,
}

impl SmtpConf {
    /// Whether mail can be sent at all: a server and at least one recipient.
    pub fn enabled(&self) -> bool {
        self.server.is_some() && !self.to.is_empty()
    }

    /// A VRRP instance's or sync group's `smtp_alert`, else `smtp_alert_vrrp`, else
    /// `smtp_alert`, else off (keepalived's `vrrp_complete_instance`).
    pub fn vrrp_alert(&self, own: Option<bool>) -> bool {
        own.or(self.alert_vrrp).or(self.alert).unwrap_or(false)
    }

    /// A virtual or real server's `smtp_alert`, else `smtp_alert_checker`, else
    /// `smtp_alert`, else off for a virtual server and ON for a real server (keepalived's
    /// `validate_check_config`: kept so for compatibility with keepalived 1).
    pub fn checker_alert(&self, own: Option<bool>, real_server: bool) -> bool {
        own.or(self.alert_checker).or(self.alert).unwrap_or(real_server)
    }
}

/// keepalived's `lvs_flush_on_stop` modes (`lvs_flush_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LvsFlushOnStop {
    /// Bare: keepalived flushes the whole IPVS table at stop (`LVS_FLUSH_FULL`).
    Full,
    /// `VS`: keepalived removes its virtual servers whole, not real server by real
    /// server (`LVS_FLUSH_VS`).
    Vs,
}

/// keepalived's IPVS sync daemon line, as the agent applies it to rvsd's connection-sync
/// roles (`Request::SyncDaemon`): with an instance, the master role while it is MASTER
/// and the backup role otherwise (keepalived's `ipvs_syncd_master` / `ipvs_syncd_backup`);
/// without one, both roles while the agent runs (keepalived's checker process). The
/// interface and the `maxlen`, `port`, `ttl` and `group` options are not applied: rvsd's
/// `[sync]` section sets the transport (a warning at load says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsSyncDaemon {
    /// The keyword (`lvs_sync_daemon` or `lvs_sync_daemon_interface`), for messages.
    pub keyword: String,
    /// keepalived's INTERFACE (not applied: `[sync]`'s).
    pub interface: String,
    /// The vrrp_instance whose state selects the role; none: both roles run.
    pub instance: Option<String>,
    /// The sync id sent with every request: `id`, else the named instance's
    /// `virtual_router_id` (keepalived 2's default), else 0 (no instance, or the
    /// deprecated `lvs_sync_daemon_interface`, as keepalived 2).
    pub syncid: u8,
    /// Where the line is.
    pub loc: Loc,
}

/// A notify FIFO of `global_defs` and the script that reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NotifyFifoConf {
    /// The FIFO (made when missing); none: no FIFO.
    pub path: Option<std::path::PathBuf>,
    /// `*_script`: a command started with the FIFO's path as its last argument when the
    /// FIFO is opened, stopped (SIGTERM) when it is closed.
    pub script: Option<Script>,
    /// keepalived's `[username [groupname]]` after the FIFO: who owns it when rvs-agent
    /// makes it (none: rvs-agent's user).
    #[serde(default)]
    pub owner: Option<RunAs>,
}

impl Default for GlobalDefs {
    fn default() -> GlobalDefs {
        GlobalDefs {
            router_id: None,
            vrrp_mcast_group4: crate::vrrp::packet::MCAST_V4,
            vrrp_mcast_group6: crate::vrrp::packet::MCAST_V6,
            vrrp_version: None,
            vrrp_garp_master_delay: None,
            vrrp_garp_master_repeat: None,
            vrrp_garp_master_refresh: None,
            vrrp_higher_prio_send_advert: false,
            vrrp_skip_check_adv_addr: false,
            vrrp_garp_master_refresh_repeat: None,
            vrrp_garp_lower_prio_repeat: None,
            vrrp_garp_lower_prio_delay: None,
            vrrp_lower_prio_no_advert: false,
            smtp: SmtpConf::default(),
            net_namespace: None,
            vrrp_strict: false,
            script_security: false,
            vrrp_down_timer_adverts: None,
            rs_init_notifies: false,
            vrrp_notify_priority_changes: false,
            startup_script: None,
            shutdown_script: None,
            notify_fifo: NotifyFifoConf::default(),
            vrrp_notify_fifo: NotifyFifoConf::default(),
            lvs_notify_fifo: NotifyFifoConf::default(),
            lvs_sync_daemon: None,
            lvs_timeouts: LvsTimeouts::default(),
            vrrp_startup_delay: None,
            vrrp_garp_interval: None,
            vrrp_gna_interval: None,
            lvs_flush_on_stop: None,
        }
    }
}

/// `vrrp_track_process NAME { ... }`: how many processes that match must run (keepalived's
/// `track_process`, what operators otherwise do with `pgrep` in a vrrp_script).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackProcess {
    /// Name referenced by `track_process`.
    pub name: String,
    /// `process`: the process's name (`/proc/PID/stat`'s, at most 15 bytes), or with
    /// `full_command` or parameters its command (`argv[0]` exactly, as `pgrep -f` sees it).
    pub process: String,
    /// The parameters after `process` (matched per [`ParamMatch`]).
    pub params: Vec<String>,
    /// How the parameters match.
    pub param_match: ParamMatch,
    /// `full_command` (or parameters, or `param_match`): the command line is matched.
    pub full_command: bool,
    /// Priority change (0: fault when the quorum is not met).
    pub weight: i32,
    /// `weight N reverse`.
    pub weight_reverse: bool,
    /// `quorum`: at least this many (1).
    pub quorum: u32,
    /// `quorum_max`: at most this many (unbounded; 0: the process must not run).
    pub quorum_max: u32,
    /// `fork_delay` (or `delay`) seconds the quorum must hold before it counts as gained.
    pub fork_delay: f64,
    /// `terminate_delay` (or `delay`) seconds before a lost quorum counts.
    pub terminate_delay: f64,
    /// Where the block starts.
    pub loc: Loc,
}

impl TrackProcess {
    /// A block with keepalived's defaults (no process yet, quorum 1, no maximum, weight 0,
    /// no delays).
    pub fn new(name: String, loc: Loc) -> TrackProcess {
        TrackProcess {
            name,
            process: String::new(),
            params: Vec::new(),
            param_match: ParamMatch::None,
            full_command: false,
            weight: 0,
            weight_reverse: false,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: 0.0,
            terminate_delay: 0.0,
            loc,
        }
    }
}

/// keepalived's `param_match`: how a process's parameters are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ParamMatch {
    /// Not compared (no parameters given, no `param_match`).
    #[default]
    None,
    /// Exactly these parameters (none given: no parameters at all).
    Exact,
    /// These first, any after them.
    Partial,
    /// As `Partial`, the last one a prefix of the process's.
    Initial,
}

/// `vrrp_script NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpScript {
    /// Name referenced by `track_script`.
    pub name: String,
    /// The command.
    pub script: Script,
    /// Seconds between runs (1).
    pub interval: f64,
    /// Seconds before a run counts as failed (the interval when unset).
    pub timeout: Option<f64>,
    /// Priority change (0: fault on failure).
    pub weight: i32,
    /// `weight N reverse`: the sign applies the other way.
    pub weight_reverse: bool,
    /// Successes needed to count as up (1).
    pub rise: u32,
    /// Failures needed to count as down (1).
    pub fall: u32,
    /// `init_fail`: it starts as failing (until `rise` successes), not as succeeding.
    #[serde(default)]
    pub init_fail: bool,
    /// Where the block starts.
    pub loc: Loc,
}

/// `vrrp_sync_group NAME { group { ... } ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncGroup {
    /// Name.
    pub name: String,
    /// Member instance names.
    pub members: Vec<String>,
    /// Notify scripts.
    pub notify: Notify,
    /// Where the block starts.
    pub loc: Loc,
}

/// Notify scripts of an instance or sync group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<Script>,
    /// `notify_backup`.
    pub backup: Option<Script>,
    /// `notify_fault`.
    pub fault: Option<Script>,
    /// `notify_stop`.
    pub stop: Option<Script>,
    /// `notify`: called with `INSTANCE|GROUP name state priority`.
    pub any: Option<Script>,
    /// `smtp_alert [BOOL]`: mail its state changes; unset: see [`SmtpConf::vrrp_alert`].
    #[serde(default)]
    pub smtp_alert: Option<bool>,
    /// `notify_master_rx_lower_pri` (instances): run when, master, it hears a lower
    /// priority (the other router took over during a break: its own notify_master may
    /// have taken something this one must take back).
    #[serde(default)]
    pub master_rx_lower_pri: Option<Script>,
    /// `notify_deleted [SCRIPT]` (instances): a reload that removes the instance says
    /// `DELETED` (and runs SCRIPT); without it, keepalived's older word for that, `FAULT`
    /// (no script but the generic `notify`), unless the instance was in FAULT already.
    #[serde(default)]
    pub notify_deleted: bool,
    /// `notify_deleted SCRIPT`.
    #[serde(default)]
    pub deleted: Option<Script>,
    /// `notify_priority_changes [BOOL]`: its effective priority changes are written to
    /// the notify FIFOs (`INSTANCE "NAME" MASTER_PRIORITY|BACKUP_PRIORITY PRIO`); an
    /// instance's unset: its sync group's, else `global_defs`' `vrrp_notify_priority_changes`
    /// (resolved when the file is read).
    #[serde(default)]
    pub priority_changes: Option<bool>,
}

/// `state` in a vrrp_instance: where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InitialState {
    /// `BACKUP` (the default).
    #[default]
    Backup,
    /// `MASTER`: take over at startup.
    Master,
}

/// A `virtual_ipaddress` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualIp {
    /// Address with prefix (/32 or /128 when none given).
    pub addr: IpNet,
    /// `dev`.
    pub dev: Option<String>,
}

/// A `static_routes` or `virtual_routes` line: `PREFIX|default [via GW] [dev DEV] [src
/// ADDR] [metric N]`. Either goes to rvsd's route table (never the kernel's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    /// Destination.
    pub prefix: IpNet,
    /// Gateway.
    pub via: Option<IpAddr>,
    /// DPDK port (rvsd picks the gateway's port when unset).
    pub dev: Option<String>,
    /// Preferred source.
    pub src: Option<IpAddr>,
    /// Metric.
    pub metric: u32,
    /// `scope link` (directly connected, no gateway) or global (keepalived's default).
    #[serde(default)]
    pub scope: ctl::RouteScope,
    /// Where the line is.
    pub loc: Loc,
}

impl StaticRoute {
    /// rvsd's form of the route (an unset dev: rvsd picks the gateway's port); what the
    /// agent adds for `static_routes` and, while master, for `virtual_routes`.
    pub fn spec(&self) -> ctl::RouteSpec {
        ctl::RouteSpec {
            prefix: self.prefix,
            via: self.via,
            dev: self.dev.as_deref().map(port_of_dev).unwrap_or_default().to_string(),
            scope: self.scope,
            src: self.src,
            metric: self.metric,
            connected: false,
        }
    }
}

/// The DPDK port a `dev` names: `dpdk0` itself, or its kernel twin `dpdk0.kni`.
pub fn port_of_dev(dev: &str) -> &str {
    dev.strip_suffix(".kni").unwrap_or(dev)
}

/// A `track_interface`, `track_script` or `track_process` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// Interface, script or process name.
    pub name: String,
    /// Weight override (`weight N`).
    pub weight: Option<i32>,
    /// `weight N reverse` / `noreverse` (unset: the tracked object's own).
    #[serde(default)]
    pub reverse: Option<bool>,
}

/// A vrrp_instance's `track_file` entry (`NAME [weight W [reverse]]`), resolved against
/// the top-level `track_file NAME { file PATH ... }` (or `vrrp_track_file`) it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedFile {
    /// The `track_file` block's name.
    pub name: String,
    /// Its `file`.
    pub path: String,
    /// The entry's weight, else the block's (1): the file's number times it is added to
    /// the priority; 0: any non-zero number is FAULT.
    pub weight: i32,
    /// `reverse`: the number counts the other way (with weight 0: zero is FAULT).
    pub reverse: bool,
}

/// `vrrp_instance NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstance {
    /// Name.
    pub name: String,
    /// `state`.
    pub state: InitialState,
    /// `interface`: where adverts go (rvsd's kernel twin, e.g. `dpdk0.kni`).
    pub interface: String,
    /// DPVS's `dpdk_interface`: the DPDK port that holds the VIPs (default: the port
    /// `interface` is the twin of).
    pub dpdk_interface: Option<String>,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// `priority` (100).
    pub priority: u8,
    /// `advert_int` seconds (1; fractional under v3).
    pub advert_int: f64,
    /// `version` / `vrrp_version` (global default, else 2).
    pub version: Version,
    /// `authentication { auth_type PASS|AH auth_pass X }`: the password.
    pub auth_pass: Option<String>,
    /// `auth_type AH`: the password keys an IPsec AH header (HMAC-MD5-96) instead of
    /// riding in the advert.
    #[serde(default)]
    pub auth_ah: bool,
    /// `virtual_ipaddress`.
    pub virtual_ipaddress: Vec<VirtualIp>,
    /// `virtual_ipaddress_excluded` (held, not advertised).
    pub virtual_ipaddress_excluded: Vec<VirtualIp>,
    /// `virtual_routes`: routes rvsd holds while the instance is master, as its VIPs.
    #[serde(default)]
    pub virtual_routes: Vec<StaticRoute>,
    /// `track_interface`.
    pub track_interface: Vec<Track>,
    /// `track_script`.
    pub track_script: Vec<Track>,
    /// `track_process`.
    #[serde(default)]
    pub track_process: Vec<Track>,
    /// `track_file`.
    #[serde(default)]
    pub track_file: Vec<TrackedFile>,
    /// `track_bfd`: `bfd_instance`s followed (weight from the entry, else the instance's).
    #[serde(default)]
    pub track_bfd: Vec<Track>,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay` seconds.
    pub preempt_delay: f64,
    /// `unicast_src_ip` (or `mcast_src_ip`): the source address of adverts.
    pub unicast_src_ip: Option<IpAddr>,
    /// keepalived's `track_src_ip`: FAULT while `unicast_src_ip` (or `mcast_src_ip`) is
    /// not an address of the instance's interface.
    #[serde(default)]
    pub track_src_ip: bool,
    /// `unicast_peer { ... }` addresses.
    pub unicast_peers: Vec<IpAddr>,
    /// Whether a `unicast_peer` block was given (even empty).
    pub unicast_block: bool,
    /// keepalived's per-peer `min_ttl N` / `max_ttl N` (`unicast_peer { ADDR min_ttl 250
    /// }`): the TTL / hop limit range a peer's adverts must arrive with (unicast adverts
    /// may be routed: no 255 rule; 0-255 when unset).
    #[serde(default)]
    pub unicast_peer_ttl: Vec<(IpAddr, u8, u8)>,
    /// keepalived's `unicast_ttl N`: the TTL / hop limit of the unicast adverts sent (255
    /// when unset).
    #[serde(default)]
    pub unicast_ttl: Option<u8>,
    /// keepalived's `unicast_fault_no_peer`: a `unicast_peer` block left empty keeps the
    /// instance in FAULT (keepalived would otherwise fall back to multicast; rvs-agent
    /// refuses an empty block without it).
    #[serde(default)]
    pub unicast_fault_no_peer: bool,
    /// keepalived's `mcast_dst_ip`: this instance's multicast group (IPv4 multicast, or
    /// IPv6 link-local multicast) instead of `vrrp_mcast_group4` / `6`; ignored (warned)
    /// with unicast peers.
    #[serde(default)]
    pub mcast_dst_ip: Option<IpAddr>,
    /// Notify scripts.
    pub notify: Notify,
    /// `garp_master_delay` seconds.
    pub garp_master_delay: Option<u32>,
    /// `garp_master_repeat`.
    pub garp_master_repeat: Option<u32>,
    /// `garp_master_refresh` seconds.
    pub garp_master_refresh: Option<u32>,
    /// IPv4 v3 send checksum (`old_unicast_checksum`: keepalived's pre-2.0 unicast form, with
    /// the multicast group in the pseudo-header).
    pub checksum: ChecksumMode,
    /// `skip_check_adv_addr`: an advert's address list is compared with ours (and a
    /// difference logged) only when it comes from a new master, not on every advert.
    #[serde(default)]
    pub skip_check_adv_addr: bool,
    /// `higher_prio_send_advert`: a master that yields to a higher priority sends one
    /// advert of its own first (so that a peer which did not hear it learns of it).
    pub higher_prio_send_advert: bool,
    /// `garp_master_refresh_repeat`: gratuitous ARPs per refresh.
    #[serde(default)]
    pub garp_master_refresh_repeat: Option<u32>,
    /// `garp_lower_prio_repeat`: gratuitous ARPs a master sends on hearing a lower
    /// priority.
    #[serde(default)]
    pub garp_lower_prio_repeat: Option<u32>,
    /// `garp_lower_prio_delay` seconds: when the second such burst goes.
    #[serde(default)]
    pub garp_lower_prio_delay: Option<u32>,
    /// `lower_prio_no_advert`: a master does not answer a lower priority with an advert.
    #[serde(default)]
    pub lower_prio_no_advert: bool,
    /// keepalived's strict RFC compliance (`strict_mode`, else global `vrrp_strict`),
    /// applied when the file is read as keepalived applies it: no unicast peers (refused),
    /// no authentication, no `preempt_delay`, no `higher_prio_send_advert`, no repeated
    /// gratuitous ARPs at lower priority, `lower_prio_no_advert` on, and a MASTER start only
    /// for the address owner (priority 255); each override warned about. keepalived's
    /// no-accept firewall (dropping traffic to the VIPs of a master that is not their
    /// owner) is not applied: rvsd's VIPs carry the services.
    #[serde(default)]
    pub strict_mode: bool,
    /// keepalived's `down_timer_adverts` (1-100; else `vrrp_down_timer_adverts`, else 3):
    /// the master is taken for down after this many of its advert intervals (plus the
    /// skew). Every router of the instance must use the same value.
    #[serde(default = "three")]
    pub down_timer_adverts: u32,
    /// Where the block starts.
    pub loc: Loc,
}

impl VrrpInstance {
    /// The VRRPv2 authentication its adverts carry and must carry (none under v3).
    pub fn auth(&self) -> Auth {
        match (&self.auth_pass, self.version) {
            (Some(_), Version::V2) if self.auth_ah => Auth::Ah,
            (Some(p), Version::V2) => Auth::Pass(auth_pass(p)),
            _ => Auth::None,
        }
    }

    /// Whether the instance's addresses are IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.virtual_ipaddress.first().is_some_and(|v| v.addr.addr().is_ipv6())
    }

    /// Whether it speaks unicast (its `unicast_peer`s; or none, held in FAULT by
    /// `unicast_fault_no_peer`).
    pub fn unicast(&self) -> bool {
        !self.unicast_peers.is_empty() || (self.unicast_fault_no_peer && self.unicast_block)
    }

    /// The multicast group its adverts go to: its `mcast_dst_ip`, else `global`'s
    /// `vrrp_mcast_group4|6`.
    pub fn mcast_group(&self, global: &GlobalDefs) -> IpAddr {
        match (self.mcast_dst_ip, self.is_ipv6()) {
            (Some(g), _) => g,
            (None, false) => IpAddr::V4(global.vrrp_mcast_group4),
            (None, true) => IpAddr::V6(global.vrrp_mcast_group6),
        }
    }

    /// Every address it holds as master (`virtual_ipaddress` and `_excluded`), each with
    /// the DPDK port it goes on (its `dev`, else [`VrrpInstance::vip_port`]).
    pub fn vips(&self) -> Vec<(IpNet, String)> {
        let all = self.virtual_ipaddress.iter().chain(&self.virtual_ipaddress_excluded);
        all.map(|v| (v.addr, v.dev.as_deref().map_or_else(|| self.vip_port(), crate::dataplane::port_of).to_string()))
            .collect()
    }

    /// The DPDK port holding the VIPs: `dpdk_interface`, else the port whose kernel twin
    /// `interface` is (`dpdk0.kni` -> `dpdk0`; other names unchanged, see
    /// [`crate::dataplane::port_of`]).
    pub fn vip_port(&self) -> &str {
        self.dpdk_interface.as_deref().unwrap_or_else(|| crate::dataplane::port_of(&self.interface))
    }
}

/// `lb_kind` / `lvs_method`: `FNAT`, `NAT` or `DR` (rvs's forwarding modes).
pub use fnat::types::FwdMode as LbKind;

/// What a `virtual_server` stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VsTarget {
    /// `virtual_server IP PORT`.
    Addr(SocketAddr),
    /// `virtual_server group NAME`.
    Group(String),
    /// `virtual_server fwmark MARK`: rvsd's fwmark service `mark` of a family (`v6`: IPv6),
    /// which takes the TCP and UDP flows rvsd's own fwmark rules give that mark (as
    /// keepalived's takes what iptables marks; neither sets the marks). The family is
    /// keepalived's: `ip_family`, else its real servers' (see
    /// [`VirtualServer::ipv6`]).
    Fwmark {
        /// The mark (1 to 4294967295).
        mark: u32,
        /// IPv6 (`ip_family inet6`, or IPv6 real servers), else IPv4.
        v6: bool,
    },
}

impl VsTarget {
    /// How messages name it: `virtual_server 192.0.2.1:80`, `virtual_server group NAME`,
    /// `virtual_server fwmark 1` (`fwmark 1 IPv6`).
    pub fn describe(&self) -> String {
        match self {
            VsTarget::Addr(a) => format!("virtual_server {a}"),
            VsTarget::Group(g) => format!("virtual_server group {g}"),
            VsTarget::Fwmark { mark, v6: false } => format!("virtual_server fwmark {mark}"),
            VsTarget::Fwmark { mark, v6: true } => format!("virtual_server fwmark {mark} IPv6"),
        }
    }
}

/// `virtual_server_group NAME { IP PORT | IP-RANGE PORT | fwmark MARK [inet|inet6] ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServerGroup {
    /// Name.
    pub name: String,
    /// Expanded members.
    pub members: Vec<SocketAddr>,
    /// `fwmark MARK [inet|inet6]` entries: one fwmark service each (as
    /// [`VsTarget::Fwmark`]) beside the members' services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fwmarks: Vec<GroupFwmark>,
    /// Where the block starts.
    pub loc: Loc,
}

impl VirtualServerGroup {
    /// Its one family (IPv6: true) when its members and the fwmarks written with a
    /// family are all of one; none when they mix or there are none (keepalived's
    /// `have_ipv4` / `have_ipv6`, which `link_vsg_to_vs` gives a virtual server without a
    /// family of its own).
    pub fn family(&self) -> Option<bool> {
        let has =
            |v6: bool| self.members.iter().any(|m| m.is_ipv6() == v6) || self.fwmarks.iter().any(|f| f.v6 == Some(v6));
        match (has(false), has(true)) {
            (true, false) => Some(false),
            (false, true) => Some(true),
            _ => None,
        }
    }

    /// Fwmark entries and no `IP PORT` member: keepalived's fwmark-only group, whose
    /// virtual server drops its protocol (`validate_check_config`).
    pub fn fwmark_only(&self) -> bool {
        self.members.is_empty() && !self.fwmarks.is_empty()
    }
}

/// A `fwmark MARK [inet|inet6]` entry of a `virtual_server_group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFwmark {
    /// The mark (1 to 4294967295).
    pub mark: u32,
    /// Its family as written (`inet6`: true); unset: the family of the virtual server
    /// using the group ([`VirtualServer::ipv6`]), else the group's own when it has one
    /// ([`VirtualServerGroup::family`], keepalived's `link_vsg_to_vs`), else IPv4
    /// (keepalived's `ipvs_group_cmd`).
    pub v6: Option<bool>,
}

/// DPVS's `local_address_group NAME { IP[-LAST] [DEV] ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalAddressGroup {
    /// Name.
    pub name: String,
    /// Expanded addresses with their DPDK port (none in LVS-FULLNAT style files).
    pub addrs: Vec<(IpAddr, Option<String>)>,
    /// Where the block starts.
    pub loc: Loc,
}

/// Which list an [`AddressGroup`] feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressGroupKind {
    /// `deny_address_group`, named by a virtual server's `daddr_group_name`.
    Deny,
    /// `allow_address_group`, named by a virtual server's `waddr_group_name`.
    Allow,
}

/// DPVS's `deny_address_group NAME { IP[-LAST] ... }` / `allow_address_group`: source
/// prefixes a virtual server refuses or admits only (rvs also takes `IP/LEN`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressGroup {
    /// Deny or allow.
    pub kind: AddressGroupKind,
    /// Name.
    pub name: String,
    /// The prefixes (a range becomes one host prefix per address).
    pub prefixes: Vec<ipnet::IpNet>,
    /// Where the block starts.
    pub loc: Loc,
}

/// `virtual_server ... { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServer {
    /// Address and port, or a group.
    pub target: VsTarget,
    /// `delay_loop` seconds between checks (60).
    pub delay_loop: f64,
    /// `lb_algo` / `lvs_sched` (wlc).
    pub lb_algo: String,
    /// `lb_kind` / `lvs_method`.
    pub lb_kind: LbKind,
    /// `protocol` (TCP).
    pub protocol: Proto,
    /// `persistence_timeout` seconds.
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity` netmask.
    pub persistence_granularity: Option<IpAddr>,
    /// `quorum`: total weight of live servers below which the service is down (1).
    pub quorum: u32,
    /// `hysteresis` around the quorum (0).
    pub hysteresis: u32,
    /// `quorum_up` script.
    pub quorum_up: Option<Script>,
    /// `quorum_down` script.
    pub quorum_down: Option<Script>,
    /// `smtp_alert [BOOL]`: mail its quorum changes; unset: see
    /// [`SmtpConf::checker_alert`].
    #[serde(default)]
    pub smtp_alert: Option<bool>,
    /// `sorry_server IP PORT`.
    pub sorry_server: Option<SocketAddr>,
    /// `inhibit_on_failure` as the default for real servers.
    pub inhibit_on_failure: bool,
    /// `alpha`: a real server with health checkers (FILE_CHECK aside) starts down, out of
    /// the service (weight 0 with `inhibit_on_failure`), until its checks pass, instead of
    /// up until they fail: no traffic reaches a server before it is known healthy, at
    /// start and when a reload adds it (keepalived's alpha mode).
    #[serde(default)]
    pub alpha: bool,
    /// `omega`: when the agent shuts down, each real server that is up runs its
    /// `notify_down` (and gets its `RS ... DOWN` FIFO line), then the virtual server runs
    /// its `quorum_down` (and `VS ... DOWN`), as keepalived does on stopping
    /// (`clear_services`): scripts that hold state about the pool (DNS, a registry, a
    /// peer) learn that this balancer no longer serves it. Without it, nothing runs at
    /// shutdown.
    #[serde(default)]
    pub omega: bool,
    /// `ha_suspend`: the health checkers of this virtual server's real servers run only
    /// while this box holds one of its addresses (the VIP, or a member of its group) in
    /// rvsd: on the VRRP backup they are suspended, the servers keeping the health they
    /// had, and they resume, from that health, when the address comes (keepalived's
    /// `update_checker_activity`): the backup does not probe through a VIP it does not
    /// own.
    #[serde(default)]
    pub ha_suspend: bool,
    /// `sorry_server_inhibit` (after `sorry_server`): the sorry server stays in the
    /// services at weight 0 while the quorum holds, and gets its weight when the quorum
    /// is lost, instead of being added and removed (keepalived's `inhibit` of the sorry
    /// server, as `inhibit_on_failure` for a real server).
    #[serde(default)]
    pub sorry_server_inhibit: bool,
    /// `warmup` seconds: the default of its real servers' (see
    /// [`RealServerConf::warmup`]).
    #[serde(default)]
    pub warmup: Option<f64>,
    /// DPVS's `laddr_group_name`.
    pub laddr_group_name: Option<String>,
    /// DPVS's `daddr_group_name`: the `deny_address_group` of sources refused.
    pub daddr_group_name: Option<String>,
    /// DPVS's `waddr_group_name`: the `allow_address_group` of the only sources admitted.
    pub waddr_group_name: Option<String>,
    /// DPVS's `syn_proxy` (rvs also takes `on`, `off`, `auto`); unset = rvsd's default.
    pub syn_proxy: Option<fnat::synproxy::SynProxyMode>,
    /// DPVS's `proxy_protocol`: the PROXY protocol header (`v1`, `v2`) rvsd sends the
    /// real servers before each connection's first data; unset = none.
    #[serde(default)]
    pub proxy_protocol: Option<fnat::service::ProxyProtocol>,
    /// DPVS's `establish_timeout`: the idle timeout, in seconds, of the service's
    /// established TCP connections and of all its UDP ones (rvsd's per-service
    /// `conn_timeout`), for services whose connections idle longer (databases, websockets)
    /// or shorter (DNS) than rvsd's global timeouts allow. 0 = not given: rvsd's global
    /// timeouts. Written values are 1 to [`fnat::tcp_state::MAX_TIMEOUT_S`] and kept as
    /// written (DPVS clamps them to 1-3600).
    #[serde(default)]
    pub establish_timeout: u32,
    /// rvs's `dest_check` (DPVS's `ipvsadm --dest-check`, in its notation): rvsd's
    /// passive health check of the service's real servers, beside the checkers; unset =
    /// off. See [`fnat::destcheck`].
    #[serde(default)]
    pub dest_check: Option<fnat::destcheck::DestCheck>,
    /// DPVS's `expire_quiescent_conn`: a connection whose real server has weight 0
    /// (failed with `inhibit_on_failure`, or drained) ends at its next packet.
    #[serde(default)]
    pub expire_quiescent_conn: bool,
    /// keepalived's `ops`: one-packet scheduling (UDP services), each datagram
    /// scheduled on its own.
    #[serde(default)]
    pub ops: bool,
    /// keepalived's hash scheduler flags (`sh-port`/`mh-port`, `sh-fallback`/`mh-fallback`);
    /// unset when none is given (rvsd's defaults).
    pub sched_flags: Option<crate::dataplane::SchedFlags>,
    /// `virtualhost`: the Host header of this virtual server's HTTP_GET checkers unless
    /// a checker or url names its own.
    pub virtualhost: Option<String>,
    /// `real_server` blocks.
    pub real_servers: Vec<RealServerConf>,
    /// Its address family (true: IPv6) as keepalived settles it (2.2.7's
    /// `check_parser.c`: `ip_family_handler`, `rs_end_handler`, `pgr_handler`,
    /// `vs_end_handler`): its VIP's; else `ip_family`, else that of its real servers that
    /// are not TUN, else of `persistence_granularity`, else of its sorry server when not
    /// TUN; for a fwmark, else of its TUN real and sorry servers when they agree, else
    /// IPv4 (so always set); for a group, none when nothing says, and its fwmark entries
    /// without a family then take the group's family, else IPv4.
    #[serde(default)]
    pub ipv6: Option<bool>,
    /// Where the block starts.
    pub loc: Loc,
}

/// DPVS's `virtual_server match NAME { lb_kind SNAT; protocol; src-range; dst-range; iif;
/// oif; real_server WAN 0 { weight N } }`: one SNAT rule (DPVS's "match service"). The
/// rule is rvsd's [`ctl::SnatSpec`] as the control protocol carries it, so that the agent
/// hands it over unchanged; rvsd names a rule by its match, not by `NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnatConf {
    /// The rule: `NAME` as its name, the match, the `real_server` addresses as its WAN
    /// addresses (taken in turn, in file order).
    pub rule: ctl::SnatSpec,
    /// Where the block starts.
    pub loc: Loc,
}

/// `real_server IP PORT { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServerConf {
    /// Address and port.
    pub addr: SocketAddr,
    /// `weight` (1).
    pub weight: u32,
    /// `uthreshold`: connections above which the server takes no new ones (0: none).
    pub upper: u32,
    /// `lthreshold`: connections below which it takes new ones again (0: 3/4 of upper).
    pub lower: u32,
    /// `inhibit_on_failure`: weight 0 instead of removal on failure.
    pub inhibit_on_failure: bool,
    /// Its forwarding method: its own `lvs_method`, else the virtual server's `lb_kind`.
    pub lb_kind: LbKind,
    /// `notify_up` script.
    pub notify_up: Option<Script>,
    /// `notify_down` script.
    pub notify_down: Option<Script>,
    /// `delay_loop` override.
    pub delay_loop: Option<f64>,
    /// `warmup` seconds, else the virtual server's: the default of its checkers' (see
    /// [`CheckCommon::warmup`]).
    #[serde(default)]
    pub warmup: Option<f64>,
    /// The checkers (all must pass).
    pub checks: Vec<CheckConf>,
    /// `smtp_alert [BOOL]`: mail its health changes; unset: see
    /// [`SmtpConf::checker_alert`].
    #[serde(default)]
    pub smtp_alert: Option<bool>,
    /// Where the block starts.
    pub loc: Loc,
}

/// Options shared by every checker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckCommon {
    /// `connect_ip` (the real server's address when unset).
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` (the real server's port when unset).
    pub connect_port: Option<u16>,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `connect_timeout` seconds (5).
    pub connect_timeout: f64,
    /// `retry` / `nb_get_retry` / `nb_sock_retry`: extra attempts before declaring failure
    /// (1 for HTTP, 1 for TCP).
    pub retry: u32,
    /// `delay_before_retry` seconds (1).
    pub delay_before_retry: f64,
    /// `delay_loop` override at checker level.
    pub delay_loop: Option<f64>,
    /// `warmup` seconds: the first check waits a random time of up to this long, so that
    /// checks started together do not all hit at once (keepalived's
    /// `register_checkers_thread`); unset: the real server's, else the virtual server's,
    /// else the delay_loop; 0: no wait.
    #[serde(default)]
    pub warmup: Option<f64>,
}

impl Default for CheckCommon {
    fn default() -> CheckCommon {
        CheckCommon {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            connect_timeout: 5.0,
            retry: 1,
            delay_before_retry: 1.0,
            delay_loop: None,
            warmup: None,
        }
    }
}

/// One `url { ... }` of HTTP_GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlConf {
    /// `path`.
    pub path: String,
    /// `status_code` (200-299 when unset; `200-299` ranges allowed).
    pub status_codes: Vec<(u16, u16)>,
    /// `digest`: MD5 of the body, lowercase hex.
    pub digest: Option<String>,
    /// `virtualhost`: this url's Host header (else the checker's, else the virtual
    /// server's, else `IP:PORT`).
    #[serde(default)]
    pub virtualhost: Option<String>,
    /// `regex` and the keywords that qualify it: what the answer must (or must not)
    /// contain.
    #[serde(default)]
    pub regex: Option<UrlRegex>,
}

/// A url's `regex` as written, with `regex_no_match`, `regex_options`,
/// `regex_min_offset` and `regex_max_offset` (keepalived 2.2.7, PCRE2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegexConf {
    /// `regex`: the pattern.
    pub pattern: String,
    /// `regex_options`: PCRE2 option names, as written.
    #[serde(default)]
    pub options: Vec<String>,
    /// `regex_no_match`: a match fails the check instead.
    #[serde(default)]
    pub no_match: bool,
    /// `regex_min_offset`: the first byte of the answer a match may start at.
    #[serde(default)]
    pub min_offset: usize,
    /// `regex_max_offset`: the last byte of the answer a match may start at.
    #[serde(default)]
    pub max_offset: Option<usize>,
}

/// A url's regex, checked and compiled when the configuration is read (so a pattern
/// rvs-agent cannot run is an error at load, not a checker that always fails); see
/// [`crate::check::http::compile_regex`]. Written and read as its [`RegexConf`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RegexConf", into = "RegexConf")]
pub struct UrlRegex {
    /// As written.
    pub conf: RegexConf,
    /// The compiled matcher.
    pub(crate) matcher: crate::check::http::RegexMatcher,
}

impl TryFrom<RegexConf> for UrlRegex {
    type Error = String;
    fn try_from(conf: RegexConf) -> Result<UrlRegex, String> {
        let matcher = crate::check::http::compile_regex(&conf)?;
        Ok(UrlRegex { conf, matcher })
    }
}

impl From<UrlRegex> for RegexConf {
    fn from(r: UrlRegex) -> RegexConf {
        r.conf
    }
}

impl PartialEq for UrlRegex {
    fn eq(&self, other: &UrlRegex) -> bool {
        self.conf == other.conf
    }
}

impl Eq for UrlRegex {}

/// A byte string to compare a UDP_CHECK reply with (`require_reply` in hex); `x`
/// nibbles are wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HexPattern {
    /// The bytes (wildcard nibbles 0).
    pub data: Vec<u8>,
    /// Per byte, the bits that are wildcards (0: all compared).
    pub mask: Vec<u8>,
}

impl HexPattern {
    /// keepalived's comparison: the reply matches on the shorter of both lengths.
    pub fn matches(&self, reply: &[u8]) -> bool {
        self.data.iter().zip(&self.mask).zip(reply).all(|((d, m), r)| (d ^ r) & !m == 0)
    }
}

/// HTTP_GET's and SSL_GET's `http_protocol` (keepalived 2.2.7's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HttpProtocol {
    /// `1.0` (the default): `GET ... HTTP/1.0`, no `Connection` header.
    #[default]
    V1_0,
    /// `1.0C`: HTTP/1.0 with `Connection: close`.
    V1_0C,
    /// `1.1`: HTTP/1.1 with `Connection: close`.
    V1_1,
}

/// A checker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckKind {
    /// `TCP_CHECK`: a TCP connect succeeds.
    Tcp,
    /// `HTTP_GET`: each URL answers with an accepted status (and digest).
    Http {
        /// The URLs.
        urls: Vec<UrlConf>,
        /// `virtualhost`: the Host header.
        virtualhost: Option<String>,
        /// `http_protocol`.
        #[serde(default)]
        protocol: HttpProtocol,
    },
    /// `MISC_CHECK`: a script exits 0.
    Misc {
        /// `misc_path` (with `user`).
        path: Script,
        /// `misc_timeout` seconds (delay_loop when unset).
        timeout: Option<f64>,
        /// `misc_dynamic`: the exit code sets the weight (0: the configured one, 2-255:
        /// CODE - 2; 1 or any other: down).
        #[serde(default)]
        dynamic: bool,
    },
    /// `SSL_GET`: HTTP_GET over TLS (the certificate is not verified, as keepalived 2.2.7).
    Ssl {
        /// The URLs.
        urls: Vec<UrlConf>,
        /// `virtualhost`: the Host header (and SNI with `enable_sni`).
        virtualhost: Option<String>,
        /// `enable_sni`: send the virtual host as TLS server name (off).
        enable_sni: bool,
        /// `http_protocol`.
        #[serde(default)]
        protocol: HttpProtocol,
        /// The global `SSL` block (client certificate), copied here once the whole file
        /// is read.
        #[serde(default)]
        client: Option<SslConf>,
    },
    /// `UDP_CHECK`: a datagram is sent; an ICMP port unreachable (or, with
    /// `require_reply`, no matching reply) means down.
    Udp {
        /// `payload` (hex); keepalived sends 2 zero bytes when unset.
        payload: Option<Vec<u8>>,
        /// `require_reply`: an answer is needed.
        require_reply: bool,
        /// `require_reply HEX`: what the answer must start with.
        reply: Option<HexPattern>,
        /// `min_reply_length` (0).
        min_reply_length: u16,
        /// `max_reply_length` (255).
        max_reply_length: u16,
    },
    /// `PING_CHECK`: an ICMP or ICMPv6 echo is answered.
    Ping,
    /// `SMTP_CHECK`: a 220 banner, `HELO` answered with 250, then `QUIT`.
    Smtp {
        /// `helo_name` (smtpchecker.keepalived.org).
        helo_name: String,
    },
    /// `DNS_CHECK`: a query over UDP is answered with the same id and rcode 0.
    Dns {
        /// `type` as its number (SOA).
        qtype: u16,
        /// `name` (the root when unset).
        name: String,
    },
    /// `BFD_CHECK { name NAME }`: the server follows a `bfd_instance`'s session: down
    /// when it goes Down, up when it comes Up (keepalived's BFD events; before the first
    /// one the server keeps its state).
    Bfd {
        /// The `bfd_instance`.
        name: String,
    },
    /// `FILE_CHECK`: a `track_file`'s number, times the weight, sets the server down or
    /// changes its weight.
    File {
        /// The `track_file` block's name.
        track_file: String,
        /// Its `file`.
        path: String,
        /// `weight` (the track_file's, else 1); 0: any non-zero value is down.
        weight: i32,
        /// `weight N reverse`: the value counts the other way.
        reverse: bool,
    },
}

/// A checker and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckConf {
    /// What it checks.
    pub kind: CheckKind,
    /// How.
    pub common: CheckCommon,
    /// Where the block starts.
    pub loc: Loc,
}

impl BfdInstance {
    /// keepalived's TTL / hop limit for a neighbour: 255 for IPv4, 64 for IPv6.
    pub fn default_ttl(neighbor: IpAddr) -> u8 {
        if neighbor.is_ipv6() {
            64
        } else {
            255
        }
    }

    /// A session with `neighbor` with keepalived 2.2.7's defaults (`bfd_data.c`: 10 ms
    /// min_rx and min_tx, 1 s idle_tx, multiplier 5, TTL 255 for IPv4 and hop limit 64
    /// for IPv6, max_hops 0, weight 0, followed by VRRP and the checker).
    pub fn new(name: String, neighbor: IpAddr, loc: Loc) -> BfdInstance {
        BfdInstance {
            name,
            neighbor,
            source: None,
            min_rx_us: 10_000,
            min_tx_us: 10_000,
            idle_tx_us: 1_000_000,
            multiplier: 5,
            passive: false,
            ttl: BfdInstance::default_ttl(neighbor),
            max_hops: Some(0),
            weight: 0,
            weight_reverse: false,
            vrrp: true,
            checker: true,
            loc,
        }
    }
}

fn yes() -> bool {
    true
}
