//! rvs-agent's command line: rvs's own options and keepalived 2.2.7's, so that a
//! keepalived unit or init script runs rvs-agent with only the binary name changed.
//!
//! The definition lives in the library (not in the binary) so that the man page and the
//! shell completions are generated from it (`cargo run -p xtask -- dist DIR`). What each
//! keepalived option does in rvs-agent:
//!
//! | option | in rvs-agent |
//! |---|---|
//! | `-f`, `-i`, `-t[=LOG_FILE]`, `-v`, `-h` | as keepalived |
//! | `-P`, `-C` | only the VRRP side (instances, sync groups, scripts, static addresses and routes) or only the services and their checkers; both or neither: everything |
//! | `-n` | honoured: rvs-agent never forks (without `-n` it says so and runs in the foreground) |
//! | `-l`, `-G` | honoured: the log goes to stderr (the journal under systemd), never to syslog |
//! | `-D` | debug-level messages from rvs-agent (unless `RVS_LOG` sets the level) |
//! | `-d` | prints the configuration as rvs-agent reads it (JSON) before starting |
//! | `-p`, `-r`, `-c` | pid files, written at start and removed at exit: rvs-agent is one process, so each names it |
//! | `-u MASK` | the process umask |
//! | `-s NAME` | runs in network namespace NAME (`/run/netns/NAME`) |
//! | `-m`, `-M[=PATN]` | core dumps allowed; `-M` also sets `kernel.core_pattern`, restored at exit |
//! | `-e` | an `include` matching no file is an error |
//! | `--signum=STOP\|RELOAD` | prints the signal number (15, 1) |
//! | `-B`, `-R`, `-I`, `--all` | true of rvs-agent anyway: no BFD, no child processes to respawn, services never removed on stop, everything runs |
//! | `-S`, `-a`, `-x`, `-A`, `-b` | accepted with a warning naming the option: not honoured |
//! | `-V`, `-X`, `-T` | refused (exit status 2): rvs-agent cannot do what they ask |

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

use crate::keepalived::{Config, Diagnostic, Loaded, Severity};

/// Environment variable for rvsd's control socket (the one rvsadm and rvsip read).
pub const RVSD_SOCKET_ENV: &str = "RVS_SOCKET";
/// Environment variable for the agent's status socket.
pub const STATUS_SOCKET_ENV: &str = "RVS_AGENT_SOCKET";

const KEEPALIVED: &str = "keepalived's options";

/// rvs-agent's command line.
#[derive(Parser, Debug)]
#[command(
    name = "rvs-agent",
    version,
    disable_version_flag = true,
    about = "VRRP and health checks for rvsd, configured by keepalived.conf",
    long_about = "VRRP and health checks for rvsd, configured by keepalived.conf.\n\n\
        rvs-agent runs the VRRP instances and health checkers of a keepalived.conf against \
        rvsd's control socket. It accepts keepalived 2.2.7's command-line options: those it \
        honours act as in keepalived, the others are named in a warning or refused. \
        SIGHUP re-reads the configuration and applies the differences; SIGTERM and SIGINT \
        stop it (VIPs released)."
)]
pub struct Cli {
    /// keepalived.conf to use.
    #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = "/etc/keepalived/keepalived.conf")]
    pub file: PathBuf,
    /// Validate the configuration and exit: 0 when it is fine, 5 on errors (4 when it
    /// cannot be read), as keepalived. Lists every warning, every keyword accepted and
    /// not honoured among them, with FILE:LINE; to LOG_FILE when given (`-t=LOG_FILE`).
    #[arg(
        short = 't',
        long = "config-test",
        value_name = "LOG_FILE",
        num_args = 0..=1,
        require_equals = true
    )]
    pub test: Option<Option<PathBuf>>,
    /// Unknown keywords are warnings, not errors.
    #[arg(long, conflicts_with = "strict")]
    pub lenient: bool,
    /// Warnings are errors: a keyword rvs accepts and does not honour refuses the file.
    #[arg(long)]
    pub strict: bool,
    /// keepalived's config id: lines starting `@ID` apply only when it is ID, `@^ID`
    /// lines only when it is not [default: this host's short name].
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,
    /// With -t: the other node's file, to check the pair's priorities against tracking weights.
    #[arg(long, value_name = "FILE")]
    pub peer_config: Option<PathBuf>,
    /// Print diagnostics as JSON (with -t).
    #[arg(long)]
    pub json: bool,
    /// How log lines are written: text, or json (one object per line). The level comes
    /// from $RVS_LOG (e.g. `debug`, `info,rvs_agent=debug`; default info, or with -D
    /// rvs-agent's debug), as for rvsd.
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text")]
    pub log_format: ctl::logging::LogFormat,
    /// What holds the VIPs and services: rvsd (its control socket), or linux (VIPs with
    /// `ip addr` on the interface, services only logged: VRRP without rvsd).
    #[arg(long, value_enum, default_value_t = DataplaneKind::Rvsd)]
    pub dataplane: DataplaneKind,
    /// rvsd's control socket [env: RVS_SOCKET; default: /run/rvs/rvsd.sock].
    #[arg(long, value_name = "PATH")]
    pub rvsd_socket: Option<PathBuf>,
    /// The agent's own status socket, for `rvs-agent status`
    /// [env: RVS_AGENT_SOCKET; default: /run/rvs/rvs-agent.sock].
    #[arg(long, value_name = "PATH", global = true)]
    pub status_socket: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP at `http://ADDR:PORT/metrics` (VRRP instances,
    /// health checks, the rvsd connection, reloads) [default: not served].
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Only run the VRRP side: instances, sync groups, scripts, static addresses and
    /// routes (with -C too: everything).
    #[arg(short = 'P', long = "vrrp", help_heading = KEEPALIVED)]
    pub vrrp: bool,
    /// Only run the services and their health checkers (with -P too: everything).
    #[arg(short = 'C', long = "check", help_heading = KEEPALIVED)]
    pub check: bool,
    /// Don't run BFD: no `bfd_instance` session runs, and a `track_bfd` counts as down
    /// (as keepalived).
    #[arg(short = 'B', long = "no_bfd", help_heading = KEEPALIVED)]
    pub no_bfd: bool,
    /// Run every part even without configuration (rvs-agent always does: one process).
    #[arg(long = "all", help_heading = KEEPALIVED)]
    pub all: bool,
    /// Log to the console: rvs-agent always logs to stderr (the journal under systemd).
    #[arg(short = 'l', long = "log-console", help_heading = KEEPALIVED)]
    pub log_console: bool,
    /// Detailed log messages: rvs-agent's debug level (unless RVS_LOG sets one).
    #[arg(short = 'D', long = "log-detail", help_heading = KEEPALIVED)]
    pub log_detail: bool,
    /// Syslog facility: not honoured (warning): rvs-agent logs to stderr, not syslog; under
    /// systemd set SyslogFacility= in the unit instead.
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY", value_parser = parse_facility, help_heading = KEEPALIVED)]
    pub log_facility: Option<String>,
    /// Don't log via syslog (rvs-agent never does).
    #[arg(short = 'G', long = "no-syslog", help_heading = KEEPALIVED)]
    pub no_syslog: bool,
    /// umask for files rvs-agent creates, numeric as C's strtoul (`022` octal, `0x12`
    /// hexadecimal, `18` decimal).
    #[arg(short = 'u', long = "umask", value_name = "MASK", value_parser = parse_umask, help_heading = KEEPALIVED)]
    pub umask: Option<u32>,
    /// Drop VIPs on a transition caused by a signal: refused, not supported by rvs-agent.
    #[arg(short = 'X', long = "release-vips", help_heading = KEEPALIVED)]
    pub release_vips: bool,
    /// Keep VIPs on stop: refused: rvs-agent always releases its VIPs when it stops
    /// (priority 0 advert, VIPs removed from rvsd).
    #[arg(short = 'V', long = "dont-release-vrrp", help_heading = KEEPALIVED)]
    pub dont_release_vrrp: bool,
    /// Don't remove the services on stop (rvs-agent never does: rvsd keeps them).
    #[arg(short = 'I', long = "dont-release-ipvs", help_heading = KEEPALIVED)]
    pub dont_release_ipvs: bool,
    /// Don't respawn child processes (rvs-agent has none).
    #[arg(short = 'R', long = "dont-respawn", help_heading = KEEPALIVED)]
    pub dont_respawn: bool,
    /// Don't fork: rvs-agent always runs in the foreground (say so under systemd with
    /// Type=notify or Type=simple, not Type=forking).
    #[arg(short = 'n', long = "dont-fork", help_heading = KEEPALIVED)]
    pub dont_fork: bool,
    /// Print the configuration as rvs-agent reads it (JSON, on stderr) before starting.
    #[arg(short = 'd', long = "dump-conf", help_heading = KEEPALIVED)]
    pub dump_conf: bool,
    /// Pid file, written at start and removed at exit; a running rvs-agent named by it
    /// refuses the start.
    #[arg(short = 'p', long = "pid", value_name = "FILE", help_heading = KEEPALIVED)]
    pub pid: Option<PathBuf>,
    /// keepalived's VRRP child's pid file: rvs-agent is one process, the file names it.
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE", help_heading = KEEPALIVED)]
    pub vrrp_pid: Option<PathBuf>,
    /// keepalived's checker child's pid file: rvs-agent is one process, the file names it.
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE", help_heading = KEEPALIVED)]
    pub checkers_pid: Option<PathBuf>,
    /// keepalived's BFD child's pid file: not written (warning): rvs-agent has no BFD.
    #[arg(short = 'b', long = "bfd_pid", value_name = "FILE", help_heading = KEEPALIVED)]
    pub bfd_pid: Option<PathBuf>,
    /// keepalived's genhash utility mode: refused, not part of rvs-agent.
    #[arg(short = 'T', long = "genhash", help_heading = KEEPALIVED)]
    pub genhash: bool,
    /// Report address changes seen over netlink: not honoured (warning).
    #[arg(short = 'a', long = "address-monitoring", help_heading = KEEPALIVED)]
    pub address_monitoring: bool,
    /// SNMP subsystem: not honoured (warning): rvs-agent has no SNMP (see
    /// `rvs-agent status --json`).
    #[arg(short = 'x', long = "snmp", help_heading = KEEPALIVED)]
    pub snmp: bool,
    /// SNMP master agent's socket: not honoured (warning), as -x.
    #[arg(short = 'A', long = "snmp-agent-socket", value_name = "FILE", help_heading = KEEPALIVED)]
    pub snmp_agent_socket: Option<PathBuf>,
    /// Run in network namespace NAME (`ip netns`, /run/netns/NAME): VRRP, checks and
    /// scripts all run there.
    #[arg(short = 's', long = "namespace", value_name = "NAME", help_heading = KEEPALIVED)]
    pub namespace: Option<String>,
    /// Allow a core dump if rvs-agent ends abnormally (RLIMIT_CORE unlimited).
    #[arg(short = 'm', long = "core-dump", help_heading = KEEPALIVED)]
    pub core_dump: bool,
    /// As -m, and set kernel.core_pattern to PATN (default `core`; the old pattern is
    /// restored at exit).
    #[arg(
        short = 'M',
        long = "core-dump-pattern",
        value_name = "PATN",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "core",
        help_heading = KEEPALIVED
    )]
    pub core_dump_pattern: Option<String>,
    /// An `include` that matches no file is an error, not a warning.
    #[arg(short = 'e', long = "all-config", help_heading = KEEPALIVED)]
    pub all_config: bool,
    /// Print the number of the signal for STOP or RELOAD and exit (rvs-agent has no DATA,
    /// STATS, STATS_CLEAR or JSON signal: `rvs-agent status --json` reports the state).
    #[arg(long = "signum", value_name = "SIGFUNC", help_heading = KEEPALIVED)]
    pub signum: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,

    /// A query to the running agent.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// What holds the VIPs and services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataplaneKind {
    /// rvsd, over its control socket.
    Rvsd,
    /// The Linux kernel: VIPs with `ip addr`, services only logged.
    Linux,
}

/// rvs-agent's subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Show each VRRP instance's state, priority and master, each real server's health and
    /// the dataplane connection, as the running agent reports them.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// The clap definition, for the man page and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Which parts of a configuration run (`-P`, `-C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// VRRP instances, sync groups, scripts, static addresses and routes.
    pub vrrp: bool,
    /// Services, their groups, local and deny/allow address groups, checkers.
    pub checkers: bool,
    /// `bfd_instance` sessions (not with `-B`), which `track_bfd` and `BFD_CHECK` follow.
    pub bfd: bool,
}

/// How a loaded configuration is adjusted by the command line, at start and on every
/// reload.
#[derive(Debug, Clone)]
pub struct Adjust {
    /// What runs.
    pub parts: Parts,
    /// `-e`: an include matching no file is an error.
    pub all_config: bool,
    /// Whether the dataplane reports every address it holds (rvsd does: `ha_suspend` then
    /// follows the VIPs another agent adds, as keepalived's checker process follows the
    /// VRRP process's through netlink).
    pub sees_addresses: bool,
    /// `-s NAME`: overrides the file's `net_namespace`, as keepalived's command line.
    pub namespace: Option<String>,
}

impl Adjust {
    /// Restricts `loaded` to what runs and applies `-e`.
    pub fn apply(&self, loaded: &mut Loaded) {
        if self.all_config {
            for d in &mut loaded.diagnostics {
                if d.message.starts_with("include ") && d.message.ends_with("matches no file") {
                    d.severity = Severity::Error;
                    d.message.push_str(" (-e/--all-config)");
                }
            }
        }
        if !self.parts.vrrp && !self.sees_addresses {
            // keepalived's checker process sees the VRRP process's addresses through
            // netlink; this rvs-agent adds none and its dataplane reports none, so its
            // ha_suspend checkers would never run: they run always, said.
            for v in loaded.config.virtual_servers.iter_mut().filter(|v| v.ha_suspend) {
                v.ha_suspend = false;
                loaded.diagnostics.push(Diagnostic::warning(
                    v.loc.clone(),
                    "ha_suspend: with -C/--check alone and --dataplane linux this rvs-agent sees no VIP, so the \
                     checks run always (with rvsd they follow the addresses rvsd holds)",
                ));
            }
        }
        if let Some(ns) = &self.namespace {
            loaded.config.global_defs.net_namespace = Some(ns.clone());
        }
        if !self.parts.bfd && self.parts.checkers {
            for rs in loaded.config.virtual_servers.iter().flat_map(|v| &v.real_servers) {
                for c in &rs.checks {
                    if let crate::keepalived::config::CheckKind::Bfd { name } = &c.kind {
                        loaded.diagnostics.push(Diagnostic::warning(
                            c.loc.clone(),
                            format!(
                                "real_server {}: -B/--no_bfd: BFD_CHECK {name} counts as passing (no BFD session \
                                 runs; keepalived holds the server in its start state)",
                                rs.addr
                            ),
                        ));
                    }
                }
            }
        }
        if !self.parts.bfd && self.parts.vrrp {
            for i in &loaded.config.vrrp_instances {
                for t in &i.track_bfd {
                    loaded.diagnostics.push(Diagnostic::warning(
                        i.loc.clone(),
                        format!(
                            "vrrp_instance {}: -B/--no_bfd: track_bfd {} never comes up (no BFD session runs), as keepalived",
                            i.name, t.name
                        ),
                    ));
                }
            }
        }
        restrict(&mut loaded.config, self.parts);
    }
}

/// Empties the parts of `cfg` that do not run.
pub fn restrict(cfg: &mut Config, parts: Parts) {
    if !parts.vrrp {
        cfg.vrrp_instances.clear();
        cfg.vrrp_sync_groups.clear();
        cfg.vrrp_scripts.clear();
        cfg.static_ipaddress.clear();
        cfg.static_routes.clear();
    }
    if !parts.bfd {
        // No session: each track_bfd entry keeps its bfd_instance's weight and counts as
        // down (crate::agent).
        for t in cfg.vrrp_instances.iter_mut().flat_map(|i| &mut i.track_bfd) {
            if let Some(b) = cfg.bfd_instances.iter().find(|b| b.name == t.name) {
                t.weight = t.weight.or(Some(b.weight));
                t.reverse = t.reverse.or(Some(b.weight_reverse));
            }
        }
        cfg.bfd_instances.clear();
    }
    if !parts.checkers {
        // keepalived's checker process sets IPVS's timeouts and flushes at stop: an agent
        // for the VRRP side alone leaves them to the one running the checkers.
        cfg.global_defs.lvs_timeouts = Default::default();
        cfg.global_defs.lvs_flush_on_stop = None;
        cfg.virtual_servers.clear();
        cfg.snat.clear();
        cfg.virtual_server_groups.clear();
        cfg.local_address_groups.clear();
        cfg.address_groups.clear();
    }
}

impl Cli {
    /// What runs: `-P` the VRRP side, `-C` the checkers, both or neither everything.
    pub fn parts(&self) -> Parts {
        let (vrrp, checkers) = if self.vrrp || self.check { (self.vrrp, self.check) } else { (true, true) };
        // keepalived: -P and -C leave the BFD process running; -B stops it.
        Parts { vrrp, checkers, bfd: !self.no_bfd }
    }

    /// How configurations are adjusted (see [`Adjust`]).
    pub fn adjust(&self) -> Adjust {
        Adjust {
            parts: self.parts(),
            all_config: self.all_config,
            sees_addresses: matches!(self.dataplane, DataplaneKind::Rvsd),
            namespace: self.namespace.clone(),
        }
    }

    /// keepalived options rvs-agent refuses, each with why: it cannot do what they ask.
    pub fn refused(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.genhash {
            out.push("-T/--genhash: keepalived's genhash utility is not part of rvs-agent".to_string());
        }
        if self.dont_release_vrrp {
            out.push(
                "-V/--dont-release-vrrp: not supported: rvs-agent always releases its VIPs when it stops \
                 (priority 0 advert, VIPs removed from rvsd)"
                    .to_string(),
            );
        }
        if self.release_vips {
            out.push("-X/--release-vips: not supported by rvs-agent".to_string());
        }
        out
    }

    /// keepalived options accepted and not honoured, each named with what rvs-agent does
    /// instead.
    pub fn unhonoured(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(f) = &self.log_facility {
            out.push(format!(
                "-S/--log-facility {f}: not honoured: rvs-agent logs to stderr, not syslog \
                 (under systemd: SyslogFacility= in the unit)"
            ));
        }
        if self.address_monitoring {
            out.push("-a/--address-monitoring: not honoured: rvs-agent does not report address changes".into());
        }
        if self.snmp {
            out.push("-x/--snmp: not honoured: rvs-agent has no SNMP (rvs-agent status --json)".into());
        }
        if let Some(s) = &self.snmp_agent_socket {
            out.push(format!("-A/--snmp-agent-socket {}: not honoured: rvs-agent has no SNMP", s.display()));
        }
        if let Some(b) = &self.bfd_pid {
            out.push(format!("-b/--bfd_pid {}: not written: rvs-agent has no BFD", b.display()));
        }
        out
    }

    /// The pid files to write (`-p`, `-r`, `-c`), without repeats.
    pub fn pid_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in [&self.pid, &self.vrrp_pid, &self.checkers_pid].into_iter().flatten() {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// keepalived's `--signum=SIGFUNC`: the number of the signal that does SIGFUNC.
pub fn signum(func: &str) -> Result<i32, String> {
    match func.to_ascii_uppercase().as_str() {
        "STOP" => Ok(15),
        "RELOAD" => Ok(1),
        f @ ("DATA" | "STATS" | "STATS_CLEAR" | "JSON" | "TDATA") => {
            Err(format!("--signum={f}: rvs-agent has no such signal (rvs-agent status --json reports the state)"))
        }
        f => Err(format!("--signum={f}: unknown signal function (STOP, RELOAD)")),
    }
}

/// A umask as keepalived reads it (C's `strtoul(s, NULL, 0)`): `0x` hexadecimal, a
/// leading `0` octal, decimal otherwise; at most 0777.
pub fn parse_umask(s: &str) -> Result<u32, String> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    match v {
        Ok(v) if v <= 0o777 => Ok(v),
        _ => Err(format!("invalid umask '{s}' (a number up to 0777)")),
    }
}

/// A syslog facility as keepalived accepts it: 0-7 (local0-7), `local0`-`local7`, `user`,
/// `daemon`.
pub fn parse_facility(s: &str) -> Result<String, String> {
    let ok = matches!(s, "user" | "daemon")
        || s.parse::<u8>().is_ok_and(|n| n <= 7)
        || s.strip_prefix("local").and_then(|n| n.parse::<u8>().ok()).is_some_and(|n| n <= 7);
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("invalid facility '{s}' (0-7, local0-local7, user or daemon)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("rvs-agent").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn keepalived_debian_unit_arguments_parse() {
        let c = cli(&["--dont-fork", "-D", "-l", "-p", "/run/k.pid", "-S", "local1", "-f", "/k.conf"]);
        assert!(c.dont_fork && c.log_detail && c.log_console);
        assert_eq!(c.pid_files(), vec![PathBuf::from("/run/k.pid")]);
        assert_eq!(c.log_facility.as_deref(), Some("local1"));
        assert!(c.refused().is_empty());
        assert!(c.unhonoured()[0].starts_with("-S/--log-facility local1"));
        // Clustered, as getopt allows.
        let c = cli(&["-nDlP"]);
        assert!(c.dont_fork && c.log_detail && c.log_console && c.vrrp);
        assert!(cli(&["-t", "-f", "x"]).test == Some(None));
        assert_eq!(cli(&["--config-test=/tmp/log"]).test, Some(Some(PathBuf::from("/tmp/log"))));
        assert_eq!(cli(&["-M"]).core_dump_pattern.as_deref(), Some("core"));
        assert!(Cli::try_parse_from(["rvs-agent", "-S", "local9"]).is_err());
        assert!(Cli::try_parse_from(["rvs-agent", "--no-such-flag"]).is_err());
    }

    /// `-C` alone: this rvs-agent adds no VIP. With rvsd its `ha_suspend` follows the
    /// addresses rvsd holds (another agent's VIPs), so it is kept; with the Linux
    /// dataplane, which reports none, no check would ever run: it is turned off with a
    /// warning naming the virtual server's line.
    #[test]
    fn ha_suspend_under_check_only_follows_rvsd_or_is_said() {
        let text = "virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n protocol TCP\n ha_suspend\n real_server 10.0.1.1 80 {\n }\n}\n";
        let load = || crate::keepalived::parse_str(text, "t.conf", crate::keepalived::Options::default());
        for args in [&[][..], &["-C"], &["--dataplane", "linux"]] {
            let mut l = load();
            cli(args).adjust().apply(&mut l);
            assert!(l.config.virtual_servers[0].ha_suspend, "{args:?}");
            assert!(!l.diagnostics.iter().any(|d| d.message.contains("ha_suspend")), "{args:?}");
        }
        let mut checks = load();
        cli(&["-C", "--dataplane", "linux"]).adjust().apply(&mut checks);
        assert!(!checks.config.virtual_servers[0].ha_suspend);
        let said: Vec<String> = checks.diagnostics.iter().map(ToString::to_string).collect();
        assert!(said.iter().any(|m| m.starts_with("t.conf:1: warning: ha_suspend: with -C/--check alone")), "{said:?}");
    }

    /// keepalived's checker process sets IPVS's timeouts and flushes at stop: `-P` alone
    /// (the VRRP side) applies neither; `-C` alone and both keep them.
    #[test]
    fn lvs_timeouts_and_flush_on_stop_are_the_checkers_side() {
        let text = "global_defs {\n lvs_timeouts tcp 60\n lvs_flush_on_stop\n vrrp_startup_delay 2\n}\n";
        for (args, kept) in [(&[][..], true), (&["-C"], true), (&["-P"], false)] {
            let mut l = crate::keepalived::parse_str(text, "t.conf", crate::keepalived::Options::default());
            cli(args).adjust().apply(&mut l);
            let g = &l.config.global_defs;
            assert_eq!((g.lvs_timeouts.is_set(), g.lvs_flush_on_stop.is_some()), (kept, kept), "{args:?}");
            assert_eq!(g.vrrp_startup_delay, Some(2.0), "{args:?}");
        }
    }

    #[test]
    fn parts_and_refusals() {
        assert_eq!(cli(&[]).parts(), Parts { vrrp: true, checkers: true, bfd: true });
        assert_eq!(cli(&["-P"]).parts(), Parts { vrrp: true, checkers: false, bfd: true });
        assert_eq!(cli(&["-C"]).parts(), Parts { vrrp: false, checkers: true, bfd: true });
        assert_eq!(cli(&["-P", "-C"]).parts(), Parts { vrrp: true, checkers: true, bfd: true });
        assert_eq!(cli(&["-B"]).parts(), Parts { vrrp: true, checkers: true, bfd: false });
        let r = cli(&["-V", "-X", "-T"]).refused();
        assert_eq!(r.len(), 3);
        assert!(r[0].starts_with("-T/--genhash") && r[1].starts_with("-V/") && r[2].starts_with("-X/"));
        assert_eq!(cli(&["-a", "-x", "-A", "/s", "-b", "/b"]).unhonoured().len(), 4);
        assert_eq!(cli(&["-p", "/a", "-r", "/a", "-c", "/c"]).pid_files(), vec![PathBuf::from("/a"), "/c".into()]);
    }

    /// `-B`: no session runs; each track_bfd keeps its bfd_instance's weight and counts as
    /// down, said per entry.
    #[test]
    fn no_bfd_leaves_track_bfd_down_with_its_weight() {
        let text = "bfd_instance b {\n neighbor_ip 10.0.0.2\n weight -20 reverse\n}\n\
                    vrrp_instance V {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.5\n }\n \
                    track_bfd {\n  b\n }\n}\n";
        let mut l = crate::keepalived::parse_str(text, "t.conf", crate::keepalived::Options::default());
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        cli(&["-B"]).adjust().apply(&mut l);
        assert!(l.config.bfd_instances.is_empty());
        let t = &l.config.vrrp_instances[0].track_bfd[0];
        assert_eq!((t.weight, t.reverse), (Some(-20), Some(true)));
        let said: Vec<String> = l.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(said, ["t.conf:5: warning: vrrp_instance V: -B/--no_bfd: track_bfd b never comes up (no BFD session runs), as keepalived"]);
        let mut l = crate::keepalived::parse_str(text, "t.conf", crate::keepalived::Options::default());
        cli(&[]).adjust().apply(&mut l);
        assert_eq!((l.config.bfd_instances.len(), l.config.vrrp_instances[0].track_bfd[0].weight), (1, None));
    }

    #[test]
    fn umask_signum_facility() {
        assert_eq!(parse_umask("022"), Ok(0o22));
        assert_eq!(parse_umask("0x12"), Ok(0o22));
        assert_eq!(parse_umask("18"), Ok(0o22));
        assert_eq!(parse_umask("0"), Ok(0));
        assert!(parse_umask("0999").is_err() && parse_umask("1000").is_err());
        assert_eq!(signum("RELOAD"), Ok(1));
        assert_eq!(signum("stop"), Ok(15));
        assert!(signum("DATA").unwrap_err().contains("no such signal"));
        for f in ["0", "7", "local0", "local7", "user", "daemon"] {
            assert!(parse_facility(f).is_ok(), "{f}");
        }
        for f in ["8", "local8", "kern", ""] {
            assert!(parse_facility(f).is_err(), "{f}");
        }
    }
}
