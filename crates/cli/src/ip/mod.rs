//! `rvsip`: dpip's command line over rvsd's control protocol.
//!
//! ```text
//! rvsip [-s] [-4|-6] [--json] [--once] [--socket PATH] OBJECT COMMAND ...
//!   link show [DEV] [-s]          link set DEV up|down|promisc on|off|forward2kni on|off|addr MAC
//!   addr show [dev DEV]           addr add|del ADDR[/LEN] dev DEV [sapool]
//!   route show                    route add|del PREFIX|default [via GW] dev DEV
//!                                     [scope kni_host|link|global] [src ADDR] [metric N]
//!   neigh show [dev DEV]          neigh add ADDR lladdr MAC dev DEV   neigh del ADDR
//!   vlan show [NAME|link DEV [id N]]  vlan add [NAME] link DEV [proto 802.1q] id N
//!   vlan del NAME|link DEV id N
//!   fwmark show                   fwmark add|del MARK MATCH
//!   deny show                     deny add|del|set PREFIX..., deny flush
//!   stats [--once]
//! ```
//!
//! `fwmark` is rvs's own object (dpip has none): the rules that mark new flows for
//! rvsadm's firewall-mark services (`rvsadm -A -f MARK`), MATCH being DPVS's `-H` words
//! (`proto=tcp,dst-range=192.0.2.1:80-443`; see [`fnat::fwmark`]). So is `deny`: the
//! global deny set (`[edge] deny`), the sources refused on every service.
//!
//! Objects and commands may be abbreviated as with ip (`rvsip a s`, `rvsip r`). Options
//! go anywhere, as dpip's getopt permutes them (`rvsip route -6 add ...`), except after
//! `capture DEV`, whose own `-c`, `-t` and `-w` they would shadow.
//! [`parse`] is pure; [`run`] talks to rvsd and prints.

use std::io::Write;
use std::net::IpAddr;

use clap::Parser;
use ctl::{LinkChange, Request, Response, RouteScope, RouteSpec};
use fnat::fwmark::FwmarkRule;
use ipnet::IpNet;
use wire::EthernetAddress;

use crate::addr::{parse_fwmark, parse_ip, parse_num, parse_prefix};
use crate::adm::clap_error;
use crate::{unexpected, usage, write_json, CliError, Ctl};

pub mod format;

/// The sampling interval of `rvsip stats`.
pub const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Neighbours asked for per request by `neigh show` (it pages through them all).
pub const NEIGH_PAGE: u32 = 1000;

/// The usage text (`rvsip help`).
pub const USAGE: &str = "\
Usage: rvsip [-s] [-v] [-4|-6] [-i SECS [-c COUNT]] [--json] [--once] [--socket PATH] OBJECT COMMAND ...
  rvsip link show [DEV] [-s] [-v]
  rvsip link set DEV up|down|promisc on|off|forward2kni on|off|addr MAC
  rvsip addr show [dev DEV]
  rvsip addr add|del ADDR[/LEN] dev DEV [sapool]
  rvsip addr flush dev DEV
  rvsip [-4|-6] route show
  rvsip [-4|-6] route add|del PREFIX|default [via GW] [dev DEV] [scope kni_host|link|global] [src ADDR] [metric N]
  rvsip neigh show [dev DEV]
  rvsip neigh add ADDR lladdr MAC dev DEV
  rvsip neigh del ADDR
  rvsip vlan show [NAME | link DEV [id VLAN-ID]]
  rvsip vlan add [NAME] link DEV [proto 802.1q|vlan] id VLAN-ID   (NAME: DEV.VLAN-ID by default)
  rvsip vlan del NAME | link DEV id VLAN-ID
  rvsip [-4|-6] fwmark show
  rvsip fwmark add|del MARK MATCH
        MARK 1..=4294967295 (or 0x hex); MATCH [proto=tcp|udp|any,][src-range=RANGE,]dst-range=RANGE
        with RANGE ADDR[-ADDR][:PORT[-PORT]] (IPv6 in brackets) or a prefix; rules are tried in order,
        the first match marks a new flow for the service rvsadm -A -f MARK
  rvsip [-4|-6] deny show
  rvsip deny add|del|set PREFIX...   the global deny set ([edge] deny): sources refused on every
                                     service (set: replaces it whole, both families)
  rvsip deny flush                   empties it (both families)
  rvsip stats [--once]
  rvsip capture DEV [rx|tx|both] [-c COUNT] [-w FILE] [-t SECONDS] [FILTER]
Options (anywhere before capture's own):
  -s, --stats      counters (link show)
  -v, --verbose    more detail (link show: the DPDK device)
  -4, -6           address family (route default, listings); also -f inet|inet6
  -i, --interval   link show / stats: repeat every SECS seconds ...
  -c, --count      ... COUNT times (default: until interrupted)
  --json           print the reply as JSON (every listing)
  --once           stats: lifetime totals instead of rates over one second
  --socket PATH    control socket (default $RVS_SOCKET, else /run/rvs/rvsd.sock)
";

/// rvsip's global options and the object words, as clap sees them.
#[derive(Debug, Parser)]
#[command(name = "rvsip", version, about = "Configure rvs's ports, addresses, routes, neighbours and firewall marks (dpip's syntax)", override_usage = "rvsip [OPTIONS] OBJECT COMMAND ...", after_help = USAGE)]
pub struct IpArgs {
    /// Counters (link show).
    #[arg(short = 's', long = "stats", visible_alias = "statistics")]
    pub stats: bool,
    /// More detail (link show).
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Address family: inet or inet6 (dpip's -f).
    #[arg(short = 'f', long = "family", value_name = "inet|inet6")]
    pub family: Option<String>,
    /// Repeat `link show` / `stats` every this many seconds.
    #[arg(short = 'i', long = "interval", value_name = "SECS")]
    pub interval: Option<String>,
    /// With -i: how many times (default: until interrupted).
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<String>,
    /// dpip's colour output (refused: rvsip prints plain text).
    #[arg(short = 'C', long = "color", hide = true)]
    pub color: bool,
    /// dpip's force (refused: nothing in rvsip asks for confirmation).
    #[arg(short = 'F', long = "force", hide = true)]
    pub force: bool,
    /// IPv4.
    #[arg(short = '4')]
    pub v4: bool,
    /// IPv6.
    #[arg(short = '6')]
    pub v6: bool,
    /// Print the reply as JSON.
    #[arg(long = "json")]
    pub json: bool,
    /// `stats`: lifetime totals instead of rates over one second.
    #[arg(long = "once")]
    pub once: bool,
    /// Control socket.
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<String>,
    /// OBJECT COMMAND ARGS.
    #[arg(value_name = "OBJECT", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// An address family filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    /// Whether `a` is of this family.
    pub fn has(self, a: IpAddr) -> bool {
        match self {
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        }
    }
}

/// What one `rvsip` invocation does.
#[derive(Debug, Clone, PartialEq)]
pub enum IpCmd {
    /// Send one change and expect `Done`.
    Change(Request),
    /// List ports.
    LinkShow {
        /// Only this port.
        dev: Option<String>,
        /// With counters.
        stats: bool,
        /// With the DPDK device.
        verbose: bool,
        /// As JSON.
        json: bool,
    },
    /// List addresses.
    AddrShow {
        /// Only this port.
        dev: Option<String>,
        /// Only this family.
        family: Option<Family>,
        /// As JSON.
        json: bool,
    },
    /// List routes.
    RouteShow {
        /// Only this family.
        family: Option<Family>,
        /// As JSON.
        json: bool,
    },
    /// List neighbours.
    NeighShow {
        /// Only this port.
        dev: Option<String>,
        /// Only this family.
        family: Option<Family>,
        /// As JSON.
        json: bool,
    },
    /// List VLAN sub-interfaces: all, one by name, or those of a port (and id).
    VlanShow {
        /// Only this one.
        name: Option<String>,
        /// Only those on this port.
        link: Option<String>,
        /// Only this VLAN id.
        id: Option<u16>,
        /// As JSON.
        json: bool,
    },
    /// List the global deny set, in its order.
    DenyShow {
        /// Only the prefixes of this family.
        family: Option<Family>,
        /// As JSON.
        json: bool,
    },
    /// List the fwmark rules, in the order they are tried.
    FwmarkShow {
        /// Only the rules of this family (their destinations').
        family: Option<Family>,
        /// As JSON.
        json: bool,
    },
    /// Delete the VLAN sub-interface with id `id` on port `link` (found by listing).
    VlanDelByLink {
        /// The port.
        link: String,
        /// The VLAN id.
        id: u16,
    },
    /// Per-worker statistics.
    Stats {
        /// Lifetime totals (one sample) instead of rates over one second.
        once: bool,
        /// As JSON (one sample).
        json: bool,
    },
    /// Capture into a pcapng file (rvsd writes it; the reply comes when it is done).
    Capture(Request),
    /// Delete every address of a port (`addr flush dev DEV`), one by one.
    AddrFlush {
        /// The port.
        dev: String,
    },
    /// A listing again and again (`-i SECS [-c COUNT]`).
    Repeat {
        /// Between two listings.
        every: std::time::Duration,
        /// How many (0: until interrupted).
        count: u32,
        /// The listing.
        cmd: Box<IpCmd>,
    },
    /// Print this text (help, version) and succeed.
    Print(String),
}

/// `capture DEV [rx|tx|both] [-c COUNT] [-w FILE] [-t SECONDS] [FILTER...]`; a relative
/// file is taken from the current directory (rvsd needs an absolute path).
fn capture(words: &[String]) -> Result<IpCmd, CliError> {
    if words.iter().any(|w| matches!(w.as_str(), "-h" | "--help" | "help")) {
        return Ok(IpCmd::Print(USAGE.to_string()));
    }
    let mut it = words.iter();
    let dev = it.next().ok_or_else(|| usage("capture: which port? (rvsip capture DEV ...)"))?.clone();
    let (mut dir, mut count, mut path, mut timeout_s) = (ctl::CaptureDir::Both, 100u32, None, 30u32);
    let mut filter = Vec::new();
    let num = |flag: &str, v: Option<&String>| -> Result<u32, CliError> {
        let v = v.ok_or_else(|| usage(format!("capture: '{flag}' needs a value")))?;
        v.parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| usage(format!("capture: '{flag} {v}' is not a positive number")))
    };
    while let Some(w) = it.next() {
        match w.as_str() {
            "rx" if filter.is_empty() => dir = ctl::CaptureDir::Rx,
            "tx" if filter.is_empty() => dir = ctl::CaptureDir::Tx,
            "both" if filter.is_empty() => dir = ctl::CaptureDir::Both,
            "-c" => count = num("-c", it.next())?,
            "-t" => timeout_s = num("-t", it.next())?,
            "-w" => path = Some(it.next().ok_or_else(|| usage("capture: '-w' needs a file"))?.clone()),
            x if x.starts_with('-') && x.len() > 1 => return Err(usage(format!("capture: unknown option '{x}'"))),
            x => filter.push(x.to_string()),
        }
    }
    let path = path.unwrap_or_else(|| format!("{dev}.pcapng"));
    let path = std::path::Path::new(&path);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| usage(format!("capture: current directory: {e}")))?.join(path)
    };
    Ok(IpCmd::Capture(Request::Capture {
        dev,
        dir,
        count,
        filter: filter.join(" "),
        path: path.display().to_string(),
        timeout_s,
    }))
}

/// The socket path given with `--socket`, if any.
pub fn socket_arg<S: AsRef<str>>(argv: &[S]) -> Option<String> {
    crate::adm::socket_arg(argv)
}

/// `word` is `full` or an abbreviation of it at least `min` characters long.
fn is(word: &str, full: &str, min: usize) -> bool {
    word.len() >= min && full.starts_with(word)
}

/// The words after the object, with `--json`/`--once` (allowed anywhere) taken out.
struct Words {
    words: Vec<String>,
    pos: usize,
    ctx: String,
}

impl Words {
    fn next(&mut self) -> Option<String> {
        let w = self.words.get(self.pos).cloned();
        self.pos += 1;
        w
    }

    fn peek(&self) -> Option<&str> {
        self.words.get(self.pos).map(String::as_str)
    }

    /// The value after keyword `kw`.
    fn value(&mut self, kw: &str) -> Result<String, CliError> {
        self.next().ok_or_else(|| usage(format!("{}: '{kw}' needs a value", self.ctx)))
    }

    fn unknown(&self, w: &str) -> CliError {
        usage(format!("unknown argument '{w}' for {}", self.ctx))
    }
}

/// The options that take a value (their value follows them).
const VALUE_OPTS: &[&str] = &["-f", "--family", "-i", "--interval", "-c", "--count", "--socket"];

/// `argv` with every option moved before the object, as getopt permutes them; nothing
/// after `capture` moves (its own options look like ours). Clusters (`-s6`) are split.
fn permute<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    let mut opts = Vec::new();
    let mut words = Vec::new();
    let mut it = argv.iter().map(AsRef::as_ref).skip(1);
    while let Some(w) = it.next() {
        if words.first().is_some_and(|o: &String| o == "capture") || w == "--" {
            words.push(w.to_string());
            continue;
        }
        if VALUE_OPTS.contains(&w) {
            opts.push(w.to_string());
            opts.extend(it.next().map(str::to_string));
        } else if w.starts_with("--") && w.len() > 2 {
            opts.push(w.to_string());
        } else if let Some(cluster) = w.strip_prefix('-').filter(|c| {
            // `-1` is a (bad) value, `-6` and `-sv` are options.
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric())
                && (c.bytes().any(|b| b.is_ascii_alphabetic()) || c.bytes().all(|b| b == b'4' || b == b'6'))
        }) {
            if cluster.bytes().all(|b| b"s46vhVCF".contains(&b)) {
                opts.extend(cluster.chars().map(|c| format!("-{c}")));
            } else {
                // A value option with its value attached (`-i1`), or something clap names.
                opts.push(w.to_string());
            }
        } else {
            words.push(w.to_string());
        }
    }
    argv.iter().take(1).map(|s| s.as_ref().to_string()).chain(opts).chain(words).collect()
}

/// Parses an argument vector (`argv[0]` is the program name).
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Result<IpCmd, CliError> {
    let cmd = parse_once(&permute(argv))?;
    let a = IpArgs::try_parse_from(permute(argv)).ok();
    let Some(a) = a.filter(|a| a.interval.is_some() || a.count.is_some()) else { return Ok(cmd) };
    let Some(every) = &a.interval else { return Err(usage("missing option '-i' (-c counts repeats of -i)")) };
    let every = parse_num(every, "interval", 1, 86_400).map_err(usage)?;
    let count = a.count.as_deref().map(|c| parse_num(c, "count", 1, u64::from(u32::MAX))).transpose().map_err(usage)?;
    match cmd {
        IpCmd::LinkShow { .. } | IpCmd::Stats { .. } => Ok(IpCmd::Repeat {
            every: std::time::Duration::from_secs(every),
            count: count.unwrap_or(0) as u32,
            cmd: Box::new(cmd),
        }),
        _ => Err(usage("-i/-c repeat link show and stats only")),
    }
}

fn parse_once(argv: &[String]) -> Result<IpCmd, CliError> {
    let a = match IpArgs::try_parse_from(argv.iter()) {
        Ok(a) => a,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(IpCmd::Print(e.render().to_string()))
                }
                _ => Err(clap_error(&e)),
            }
        }
    };
    let mut json = a.json;
    let mut once = a.once;
    let mut stats = a.stats;
    let mut rest = Vec::new();
    for w in &a.args {
        match w.as_str() {
            "--json" => json = true,
            "--once" => once = true,
            _ => rest.push(w.clone()),
        }
    }
    if a.color || a.force {
        let o = if a.color { "-C/--color" } else { "-F/--force" };
        return Err(usage(format!("{o}: valid dpip that rvsip does not support (plain output, nothing to force)")));
    }
    let (mut v4, mut v6) = (a.v4, a.v6);
    match a.family.as_deref() {
        None => {}
        Some("inet") => v4 = true,
        Some("inet6") => v6 = true,
        Some(f) => return Err(usage(format!("invalid family '{f}' (inet or inet6)"))),
    }
    let family = match (v4, v6) {
        (true, true) => return Err(usage("give one of -4 and -6, not both")),
        (true, false) => Some(Family::V4),
        (false, true) => Some(Family::V6),
        (false, false) => None,
    };
    let Some(object) = rest.first().cloned() else {
        return Err(usage(
            "no object given (link, addr, route, neigh, vlan, fwmark, deny, stats; 'rvsip help' for help)",
        ));
    };
    let o = object.as_str();
    if o.starts_with('-') {
        return Err(usage(format!("unexpected argument '{o}' found")));
    }
    let obj = if is(o, "link", 1) {
        "link"
    } else if is(o, "address", 1) || o == "addr" {
        "addr"
    } else if is(o, "route", 1) {
        "route"
    } else if is(o, "neighbour", 1) || is(o, "neighbor", 1) || o == "neigh" {
        "neigh"
    } else if is(o, "vlan", 1) {
        "vlan"
    } else if is(o, "fwmark", 2) {
        "fwmark"
    } else if is(o, "deny", 1) {
        "deny"
    } else if is(o, "stats", 1) {
        "stats"
    } else if o == "capture" {
        return capture(&rest[1..]);
    } else if o == "help" {
        return Ok(IpCmd::Print(USAGE.to_string()));
    } else {
        return Err(usage(format!(
            "unknown object '{o}' (link, addr, route, neigh, vlan, fwmark, deny, stats, capture)"
        )));
    };
    let mut w = Words { words: rest[1..].to_vec(), pos: 0, ctx: obj.to_string() };
    // The command word; a listing when there is none.
    let cmd = match w.peek() {
        None => "show",
        Some(c) if is(c, "show", 1) || is(c, "list", 1) || c == "ls" || c == "lst" => "show",
        Some(c) if is(c, "add", 1) => "add",
        Some(c) if is(c, "delete", 1) => "del",
        Some(c) if obj == "link" && (is(c, "set", 2) || c == "change") => "set",
        Some(c) if obj == "addr" && is(c, "flush", 1) => "flush",
        // Emptying or replacing the global deny set: the whole word.
        Some("flush") if obj == "deny" => "flush",
        Some("set") if obj == "deny" => "set",
        Some("help") => return Ok(IpCmd::Print(USAGE.to_string())),
        Some("-s" | "--stats") if obj == "link" => "show-dev",
        Some(c) => {
            let cmds = match obj {
                "link" => "show, set",
                "stats" => "show",
                "deny" => "show, add, del, set, flush",
                _ => "show, add, del",
            };
            return Err(usage(format!("unknown command '{c}' for {obj} ({cmds})")));
        }
    };
    if cmd != "show-dev" && w.peek().is_some() {
        w.pos += 1;
    }
    w.ctx = format!("{obj} {}", if cmd == "show-dev" { "show" } else { cmd });
    match (obj, cmd) {
        ("link", "show" | "show-dev") => {
            let mut dev = None;
            while let Some(x) = w.next() {
                match x.as_str() {
                    "-s" | "--stats" => stats = true,
                    "dev" => dev = Some(w.value("dev")?),
                    _ if dev.is_none() && !x.starts_with('-') => dev = Some(x),
                    _ => return Err(w.unknown(&x)),
                }
            }
            Ok(IpCmd::LinkShow { dev, stats, verbose: a.verbose, json })
        }
        ("link", "set") => link_set(&mut w),
        ("link", _) => Err(usage("link takes show or set")),
        ("addr", "show") => {
            let dev = show_dev(&mut w)?;
            Ok(IpCmd::AddrShow { dev, family, json })
        }
        ("addr", "flush") => match show_dev(&mut w)? {
            Some(dev) => Ok(IpCmd::AddrFlush { dev }),
            None => Err(usage("addr flush needs a port: addr flush dev DEV")),
        },
        ("addr", _) => addr_change(&mut w, cmd == "add", family),
        ("route", "show") => {
            if let Some(x) = w.next() {
                return Err(w.unknown(&x));
            }
            Ok(IpCmd::RouteShow { family, json })
        }
        ("route", _) => route_change(&mut w, cmd == "add", family),
        ("neigh", "show") => {
            let dev = show_dev(&mut w)?;
            Ok(IpCmd::NeighShow { dev, family, json })
        }
        ("neigh", _) => neigh_change(&mut w, cmd == "add"),
        ("vlan", _) => vlan(&mut w, cmd, json),
        ("fwmark", "show") => {
            if let Some(x) = w.next() {
                return Err(w.unknown(&x));
            }
            Ok(IpCmd::FwmarkShow { family, json })
        }
        ("fwmark", _) => fwmark_change(&mut w, cmd == "add", family),
        ("deny", "show") => {
            if let Some(x) = w.next() {
                return Err(w.unknown(&x));
            }
            Ok(IpCmd::DenyShow { family, json })
        }
        ("deny", "flush" | "set") if family.is_some() => Err(usage(format!(
            "deny {cmd} replaces the whole set, both families: -4/-6 only select what deny show lists"
        ))),
        ("deny", "flush") => {
            if let Some(x) = w.next() {
                return Err(w.unknown(&x));
            }
            Ok(IpCmd::Change(Request::EdgeDeny { change: ctl::EdgeDenyOp::Set, prefixes: vec![] }))
        }
        ("deny", _) => {
            let ctx = w.ctx.clone();
            let prefixes = std::iter::from_fn(|| w.next())
                .map(|x| {
                    let p = parse_prefix(&x, "prefix", true).map_err(usage)?;
                    family_ok(family, p.addr(), &p, "prefix").map(|()| p)
                })
                .collect::<Result<Vec<IpNet>, CliError>>()?;
            if prefixes.is_empty() {
                let flush = if cmd == "set" { "; to empty it: deny flush" } else { "" };
                return Err(usage(format!(
                    "{ctx} needs at least one prefix: {ctx} PREFIX... (e.g. 192.0.2.0/24){flush}"
                )));
            }
            let change = match cmd {
                "add" => ctl::EdgeDenyOp::Add,
                "set" => ctl::EdgeDenyOp::Set,
                _ => ctl::EdgeDenyOp::Del,
            };
            Ok(IpCmd::Change(Request::EdgeDeny { change, prefixes }))
        }
        ("stats", "show") => {
            if let Some(x) = w.next() {
                return Err(w.unknown(&x));
            }
            Ok(IpCmd::Stats { once, json })
        }
        _ => Err(usage(format!("{obj} takes only show"))),
    }
}

fn show_dev(w: &mut Words) -> Result<Option<String>, CliError> {
    let mut dev = None;
    while let Some(x) = w.next() {
        match x.as_str() {
            "dev" => dev = Some(w.value("dev")?),
            _ => return Err(w.unknown(&x)),
        }
    }
    Ok(dev)
}

fn on_off(w: &mut Words, kw: &str) -> Result<bool, CliError> {
    match w.value(kw)?.as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        v => Err(usage(format!("{}: {kw} takes on or off, not '{v}'", w.ctx))),
    }
}

fn link_set(w: &mut Words) -> Result<IpCmd, CliError> {
    let mut dev = None;
    let mut change = LinkChange::default();
    while let Some(x) = w.next() {
        match x.as_str() {
            "dev" => dev = Some(w.value("dev")?),
            "up" => change.up = Some(true),
            "down" => change.up = Some(false),
            "link" => match w.value("link")?.as_str() {
                "up" => change.up = Some(true),
                "down" => change.up = Some(false),
                v => return Err(usage(format!("link set: link takes up or down, not '{v}'"))),
            },
            "promisc" => change.promisc = Some(on_off(w, "promisc")?),
            "forward2kni" => change.forward2kni = Some(on_off(w, "forward2kni")?),
            "addr" | "address" => {
                let v = w.value("addr")?;
                let mac = v
                    .parse::<wire::EthernetAddress>()
                    .map_err(|_| usage(format!("link set: addr takes a MAC, not '{v}'")))?;
                change.mac = Some(mac);
            }
            _ if dev.is_none() => dev = Some(x),
            _ => return Err(w.unknown(&x)),
        }
    }
    let dev = dev.ok_or_else(|| {
        usage("link set needs a port: link set DEV up|down|promisc on|off|forward2kni on|off|addr MAC")
    })?;
    if change == LinkChange::default() {
        return Err(usage(format!(
            "link set {dev}: nothing to change (up, down, promisc on|off, forward2kni on|off, addr MAC)"
        )));
    }
    Ok(IpCmd::Change(Request::LinkSet { dev, change }))
}

fn family_ok(family: Option<Family>, a: IpAddr, shown: &dyn std::fmt::Display, what: &str) -> Result<(), CliError> {
    match family {
        Some(f) if !f.has(a) => {
            Err(usage(format!("{what} {shown} is not {}", if f == Family::V4 { "IPv4 (-4)" } else { "IPv6 (-6)" })))
        }
        _ => Ok(()),
    }
}

fn addr_change(w: &mut Words, add: bool, family: Option<Family>) -> Result<IpCmd, CliError> {
    let (mut addr, mut dev, mut sapool) = (None, None, false);
    while let Some(x) = w.next() {
        match x.as_str() {
            "dev" => dev = Some(w.value("dev")?),
            "sapool" => sapool = true,
            _ if addr.is_none() => addr = Some(parse_prefix(&x, "address", false).map_err(usage)?),
            _ => return Err(w.unknown(&x)),
        }
    }
    let ctx = w.ctx.clone();
    let addr: IpNet = addr.ok_or_else(|| usage(format!("{ctx} needs an address: {ctx} ADDR[/LEN] dev DEV")))?;
    family_ok(family, addr.addr(), &addr.addr(), "address")?;
    let dev = dev.ok_or_else(|| usage(format!("{ctx} {addr} needs a port: dev DEV")))?;
    Ok(IpCmd::Change(if add {
        Request::AddrAdd { dev, addr, sapool, lease: false }
    } else {
        Request::AddrDel { dev, addr: addr.addr() }
    }))
}

fn route_change(w: &mut Words, add: bool, family: Option<Family>) -> Result<IpCmd, CliError> {
    let mut prefix: Option<IpNet> = None;
    let mut spec = RouteSpec {
        prefix: IpNet::from(IpAddr::from([0, 0, 0, 0])),
        via: None,
        dev: String::new(),
        scope: RouteScope::Global,
        src: None,
        metric: 0,
        connected: false,
    };
    let mut metric = None;
    while let Some(x) = w.next() {
        match x.as_str() {
            "via" => spec.via = Some(parse_ip(&w.value("via")?, "gateway").map_err(usage)?),
            "dev" => spec.dev = w.value("dev")?,
            "src" => spec.src = Some(parse_ip(&w.value("src")?, "source address").map_err(usage)?),
            "metric" => {
                metric = Some(parse_num(&w.value("metric")?, "metric", 0, u64::from(u32::MAX)).map_err(usage)? as u32)
            }
            "scope" => {
                spec.scope = match w.value("scope")?.as_str() {
                    "kni_host" => RouteScope::KniHost,
                    "link" => RouteScope::Link,
                    "global" => RouteScope::Global,
                    v => return Err(usage(format!("{}: unknown scope '{v}' (kni_host, link, global)", w.ctx))),
                }
            }
            "default" if prefix.is_none() => {
                let any = if family == Some(Family::V6) { "::/0" } else { "0.0.0.0/0" };
                prefix = Some(parse_prefix(any, "prefix", true).map_err(usage)?);
            }
            _ if prefix.is_none() => prefix = Some(parse_prefix(&x, "prefix", true).map_err(usage)?),
            _ => return Err(w.unknown(&x)),
        }
    }
    let ctx = w.ctx.clone();
    let prefix = prefix.ok_or_else(|| usage(format!("{ctx} needs a prefix: {ctx} PREFIX|default ...")))?;
    family_ok(family, prefix.addr(), &prefix, "prefix")?;
    let v4 = prefix.addr().is_ipv4();
    for (what, a) in [("gateway", spec.via), ("source address", spec.src)] {
        if let Some(a) = a {
            if a.is_ipv4() != v4 {
                return Err(usage(format!("{ctx} {prefix}: {what} {a} is not of the prefix's address family")));
            }
        }
    }
    if !add {
        return Ok(IpCmd::Change(Request::RouteDel { prefix, metric }));
    }
    if spec.dev.is_empty() && spec.via.is_none() {
        return Err(usage(format!("{ctx} {prefix} needs a port (dev DEV) or a gateway (via GW)")));
    }
    spec.prefix = prefix;
    spec.metric = metric.unwrap_or(0);
    Ok(IpCmd::Change(Request::RouteAdd(spec)))
}

/// `vlan show|add|del` in dpip's words: `[NAME] link DEV [proto 802.1q|vlan] id N`.
fn vlan(w: &mut Words, cmd: &str, json: bool) -> Result<IpCmd, CliError> {
    let (mut name, mut link, mut id) = (None, None, None);
    while let Some(x) = w.next() {
        match x.as_str() {
            "link" => link = Some(w.value("link")?),
            "proto" => match w.value("proto")?.to_ascii_lowercase().as_str() {
                "802.1q" | "vlan" => {}
                "802.1ad" | "qinq" => {
                    return Err(usage(format!("{}: 802.1ad (QinQ) is not supported; 802.1q only", w.ctx)))
                }
                v => return Err(usage(format!("{}: unknown proto '{v}' (802.1q, vlan)", w.ctx))),
            },
            "id" => id = Some(parse_num(&w.value("id")?, "VLAN id", 1, 4094).map_err(usage)? as u16),
            _ if name.is_none() && !x.starts_with('-') => name = Some(x),
            _ => return Err(w.unknown(&x)),
        }
    }
    let ctx = w.ctx.clone();
    match cmd {
        "show" => Ok(IpCmd::VlanShow { name, link, id, json }),
        "add" => {
            let (Some(link), Some(id)) = (link, id) else {
                return Err(usage(format!("{ctx} needs link DEV and id VLAN-ID: {ctx} [NAME] link DEV id VLAN-ID")));
            };
            let name = name.unwrap_or_else(|| format!("{link}.{id}"));
            Ok(IpCmd::Change(Request::VlanAdd { name, link, id }))
        }
        _ => match (name, link, id) {
            (Some(name), None, None) => Ok(IpCmd::Change(Request::VlanDel { name })),
            (None, Some(link), Some(id)) => Ok(IpCmd::VlanDelByLink { link, id }),
            _ => Err(usage(format!("{ctx} takes NAME, or link DEV id VLAN-ID"))),
        },
    }
}

/// `fwmark add|del MARK MATCH`: MATCH is DPVS's `-H` words, in one word
/// (`proto=tcp,dst-range=192.0.2.1:80-443`) or several (`proto=tcp dst-range=...`,
/// joined with commas).
fn fwmark_change(w: &mut Words, add: bool, family: Option<Family>) -> Result<IpCmd, CliError> {
    let ctx = w.ctx.clone();
    let example = "e.g. 1 proto=tcp,dst-range=192.0.2.1:80-443";
    let mark =
        w.next().ok_or_else(|| usage(format!("{ctx} needs a mark and a match: {ctx} MARK MATCH ({example})")))?;
    let mark = parse_fwmark(&mark).map_err(|e| usage(format!("{ctx}: {e}")))?;
    let words: Vec<String> = std::iter::from_fn(|| w.next()).collect();
    if words.is_empty() {
        return Err(usage(format!("{ctx} {mark} needs a match: {ctx} MARK MATCH ({example})")));
    }
    let rule = FwmarkRule::from_match(mark, &words.join(",")).map_err(|e| usage(format!("{ctx}: {e}")))?;
    family_ok(family, rule.dst_range.lo, &rule.dst_range, "dst-range")?;
    Ok(IpCmd::Change(if add { Request::FwmarkAdd { rule } } else { Request::FwmarkDel { rule } }))
}

fn neigh_change(w: &mut Words, add: bool) -> Result<IpCmd, CliError> {
    let (mut addr, mut mac, mut dev) = (None, None, None);
    while let Some(x) = w.next() {
        match x.as_str() {
            "lladdr" => {
                let m = w.value("lladdr")?;
                mac = Some(m.parse::<EthernetAddress>().map_err(|e| usage(format!("bad MAC '{m}': {e}")))?);
            }
            "dev" => dev = Some(w.value("dev")?),
            _ if addr.is_none() => addr = Some(parse_ip(&x, "neighbour address").map_err(usage)?),
            _ => return Err(w.unknown(&x)),
        }
    }
    let ctx = w.ctx.clone();
    let addr = addr.ok_or_else(|| usage(format!("{ctx} needs an address")))?;
    if !add {
        return Ok(IpCmd::Change(Request::NeighDel { addr }));
    }
    let mac = mac.ok_or_else(|| usage(format!("{ctx} {addr} needs lladdr MAC")))?;
    let dev = dev.ok_or_else(|| usage(format!("{ctx} {addr} needs a port: dev DEV")))?;
    Ok(IpCmd::Change(Request::NeighAdd { addr, mac, dev }))
}

/// Carries out `cmd`, printing to `out`.
pub fn run(cmd: &IpCmd, ctl: &mut dyn Ctl, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        IpCmd::Print(s) => write!(out, "{s}")?,
        IpCmd::Capture(req) => match ctl.call(req.clone())? {
            Response::Captured { packets, path } => writeln!(out, "{packets} packets captured to {path}")?,
            other => return Err(unexpected("captured", &other)),
        },
        IpCmd::Change(req) => match ctl.call(req.clone())? {
            Response::Done { .. } => {}
            other => return Err(unexpected("done", &other)),
        },
        IpCmd::Repeat { every, count, cmd } => {
            let mut n = 0u32;
            loop {
                run(cmd, ctl, out)?;
                n += 1;
                if *count != 0 && n >= *count {
                    break;
                }
                writeln!(out)?;
                ctl.pause(*every);
            }
        }
        IpCmd::AddrFlush { dev } => {
            let addrs = match ctl.call(Request::AddrList {})? {
                Response::Addrs { addrs } => addrs,
                other => return Err(unexpected("addrs", &other)),
            };
            for a in addrs.iter().filter(|a| a.dev == *dev) {
                match ctl.call(Request::AddrDel { dev: dev.clone(), addr: a.addr.addr() })? {
                    Response::Done { .. } => {}
                    other => return Err(unexpected("done", &other)),
                }
            }
        }
        IpCmd::LinkShow { dev, stats, verbose, json } => {
            let mut links = match ctl.call(Request::LinkList { stats: *stats })? {
                Response::Links { links } => links,
                other => return Err(unexpected("links", &other)),
            };
            if let Some(d) = dev {
                links.retain(|l| l.name == *d);
                if links.is_empty() {
                    return Err(CliError::NotFound(format!("no port {d}")));
                }
            }
            if *json {
                write_json(out, &Response::Links { links })?;
            } else {
                format::write_links(out, &links, *stats, *verbose)?;
            }
        }
        IpCmd::VlanShow { name, link, id, json } => {
            let mut vlans = match ctl.call(Request::VlanList {})? {
                Response::Vlans { vlans } => vlans,
                other => return Err(unexpected("vlans", &other)),
            };
            vlans.retain(|v| {
                name.as_ref().is_none_or(|n| v.name == *n)
                    && link.as_ref().is_none_or(|l| v.link == *l)
                    && id.is_none_or(|i| v.id == i)
            });
            if let (Some(n), true) = (name, vlans.is_empty()) {
                return Err(CliError::NotFound(format!("no VLAN {n}")));
            }
            if *json {
                write_json(out, &Response::Vlans { vlans })?;
            } else {
                format::write_vlans(out, &vlans)?;
            }
        }
        IpCmd::FwmarkShow { family, json } => {
            let mut rules = match ctl.call(Request::FwmarkList {})? {
                Response::Fwmark { rules } => rules,
                other => return Err(unexpected("fwmark", &other)),
            };
            rules.retain(|r| family.is_none_or(|f| f.has(r.dst_range.lo)));
            if *json {
                write_json(out, &Response::Fwmark { rules })?;
            } else {
                format::write_fwmarks(out, &rules)?;
            }
        }
        IpCmd::DenyShow { family, json } => {
            let mut prefixes = Vec::new();
            let mut from = None;
            loop {
                let (page, next) = match ctl.call(Request::EdgeDenyList { from, max: Some(ctl::MAX_DENY_PAGE) })? {
                    Response::EdgeDeny { prefixes, next } => (prefixes, next),
                    other => return Err(unexpected("edge_deny", &other)),
                };
                prefixes.extend(page.into_iter().filter(|p| family.is_none_or(|f| f.has(p.addr()))));
                match next {
                    Some(n) if from.is_none_or(|f| n > f) => from = Some(n),
                    _ => break,
                }
            }
            if *json {
                write_json(out, &Response::EdgeDeny { prefixes, next: None })?;
            } else {
                for p in &prefixes {
                    writeln!(out, "{p}")?;
                }
            }
        }
        IpCmd::VlanDelByLink { link, id } => {
            let vlans = match ctl.call(Request::VlanList {})? {
                Response::Vlans { vlans } => vlans,
                other => return Err(unexpected("vlans", &other)),
            };
            let Some(v) = vlans.into_iter().find(|v| v.link == *link && v.id == *id) else {
                return Err(CliError::NotFound(format!("no VLAN {id} on {link}")));
            };
            match ctl.call(Request::VlanDel { name: v.name })? {
                Response::Done { .. } => {}
                other => return Err(unexpected("done", &other)),
            }
        }
        IpCmd::AddrShow { dev, family, json } => {
            let mut addrs = match ctl.call(Request::AddrList {})? {
                Response::Addrs { addrs } => addrs,
                other => return Err(unexpected("addrs", &other)),
            };
            addrs.retain(|a| dev.as_ref().is_none_or(|d| a.dev == *d) && family.is_none_or(|f| f.has(a.addr.addr())));
            if *json {
                write_json(out, &Response::Addrs { addrs })?;
            } else {
                format::write_addrs(out, &addrs)?;
            }
        }
        IpCmd::RouteShow { family, json } => {
            let mut routes = match ctl.call(Request::RouteList {})? {
                Response::Routes { routes } => routes,
                other => return Err(unexpected("routes", &other)),
            };
            routes.retain(|r| family.is_none_or(|f| f.has(r.prefix.addr())));
            if *json {
                write_json(out, &Response::Routes { routes })?;
            } else {
                format::write_routes(out, &routes)?;
            }
        }
        IpCmd::NeighShow { dev, family, json } => {
            let mut neighs = Vec::new();
            let mut after = None;
            loop {
                let (page, next) = match ctl.call(Request::NeighList { after, max: Some(NEIGH_PAGE) })? {
                    Response::Neighs { neighs, next } => (neighs, next),
                    other => return Err(unexpected("neighs", &other)),
                };
                neighs.extend(
                    page.into_iter()
                        .filter(|n| dev.as_ref().is_none_or(|d| n.dev == *d) && family.is_none_or(|f| f.has(n.addr))),
                );
                match next {
                    Some(a) if after != Some(a) => after = Some(a),
                    _ => break,
                }
            }
            if *json {
                write_json(out, &Response::Neighs { neighs, next: None })?;
            } else {
                format::write_neighs(out, &neighs)?;
            }
        }
        IpCmd::Stats { once, json } => {
            let first = workers(ctl)?;
            if *json {
                write_json(out, &Response::Workers { workers: first })?;
            } else if *once {
                format::write_workers_once(out, &first)?;
            } else {
                let dt = ctl.pause(STATS_INTERVAL);
                let second = workers(ctl)?;
                format::write_workers_rates(out, &first, &second, dt)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn workers(ctl: &mut dyn Ctl) -> Result<Vec<ctl::WorkerView>, CliError> {
    match ctl.call(Request::WorkerStats {})? {
        Response::Workers { workers } => Ok(workers),
        other => Err(unexpected("workers", &other)),
    }
}

#[cfg(test)]
mod tests;
