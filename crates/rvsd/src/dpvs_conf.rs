//! `rvsd --from-dpvs FILE`: a DPVS `dpvs.conf` turned into an rvsd.toml, so operators
//! migrating from DPVS start from their own file (docs/DEPLOY.md, "From dpvs.conf").
//!
//! Three steps. A lexer for DPVS's syntax (`!` and `#` line comments, `<...>` inline
//! comments, `"quoted"` words, `{` and `}`); a tree of items (`key [value...]`, with a
//! block when `{ ... }` follows); and the mapping, which checks every item against the
//! items DPVS knows (a table of their places and shapes) and either writes the rvsd key it
//! corresponds to or says why it cannot. Nothing is dropped silently: an item without an
//! rvsd equivalent is a warning, and the same note is a `#` comment in the output, near
//! the rvsd section it concerns. Keywords DPVS does not have and malformed blocks are
//! errors.
//!
//! What the file does not say stays visibly undone: DPVS numbers its ports `dpdk0`,
//! `dpdk1`... in PCI order and never names a PCI address, so every port's device is the
//! placeholder [`pci_placeholder`], which `rvsd --check-config` refuses until the
//! operator puts the address there.

use std::fmt;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The item was understood but is not carried over as DPVS meant it (or needs the
    /// operator); the conversion still succeeds.
    Warning,
    /// The file is malformed or names something DPVS does not know: the conversion fails.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// One finding about a line of the DPVS file: the item's path (`netif_defs.device
/// dpdk0.rx.rss`) and what about it, so the operator can find it in their file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The line (1-based) of the DPVS file.
    pub line: usize,
    /// Warning or error.
    pub level: Level,
    /// `<dpvs path>: <why>`.
    pub message: String,
}

impl Diagnostic {
    /// The diagnostic as printed: `FILE:LINE: warning: message`, the form compilers use,
    /// which editors can jump to.
    pub fn render(&self, file: &str) -> String {
        format!("{file}:{}: {}: {}", self.line, self.level, self.message)
    }
}

/// The result of [`convert`]: the rvsd.toml text and every finding, in line order.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The rvsd configuration (TOML), with the warnings as `#` comments in it.
    pub toml: String,
    /// Warnings and errors, ordered by line.
    pub diagnostics: Vec<Diagnostic>,
}

impl Conversion {
    /// Whether any finding is an error (the caller exits with status 2 and writes no
    /// configuration).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == Level::Error)
    }
}

/// The placeholder put where a port's PCI address goes (`PCI-ADDRESS-OF-dpdk0`): DPVS's
/// file has none, only the operator can tell, and rvsd refuses the placeholder
/// (`port[0].pci: "PCI-ADDRESS-OF-dpdk0" is not a PCI address ...`) until it is replaced.
pub fn pci_placeholder(dpvs_port: &str) -> String {
    format!("PCI-ADDRESS-OF-{dpvs_port}")
}

/// Converts the text of a DPVS configuration file (`file` is its name, for the output's
/// header) into an rvsd configuration and the findings about it.
pub fn convert(file: &str, text: &str) -> Conversion {
    let mut diags = Vec::new();
    let toks = lex(text, &mut diags);
    let items = Parser { toks: &toks, pos: 0, diags: &mut diags }.items(None, 0);
    let nodes = validate(items, "", "", None, &mut diags);
    let mut c = Conv { diags, ..Conv::default() };
    c.visit(&nodes, &mut |c, n| c.item(n));
    c.finish(&nodes);
    let toml = c.render(file);
    let mut diagnostics = c.diags;
    diagnostics.sort_by_key(|d| d.line);
    Conversion { toml, diagnostics }
}

// ---------------------------------------------------------------------------------------
// Lexer.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Eol,
}

fn error(line: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic { line, level: Level::Error, message: message.into() }
}

fn warning(line: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic { line, level: Level::Warning, message: message.into() }
}

/// Splits the file into words, braces and line ends. `!` or `#` at the start of a word
/// begins a comment to the end of the line, `<` one to the next `>` (DPVS's range
/// notes); `"..."` is one word (possibly empty); `{` and `}` are tokens of their own.
fn lex(text: &str, diags: &mut Vec<Diagnostic>) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let s: Vec<char> = raw.strip_suffix('\r').unwrap_or(raw).chars().collect();
        let mut p = 0;
        while p < s.len() {
            match s[p] {
                c if c.is_whitespace() => p += 1,
                '!' | '#' => break,
                '<' => match s[p..].iter().position(|&c| c == '>') {
                    Some(k) => p += k + 1,
                    None => break,
                },
                '{' => {
                    out.push((Tok::Open, line));
                    p += 1;
                }
                '}' => {
                    out.push((Tok::Close, line));
                    p += 1;
                }
                '"' => match s[p + 1..].iter().position(|&c| c == '"') {
                    Some(k) => {
                        out.push((Tok::Word(s[p + 1..p + 1 + k].iter().collect()), line));
                        p += k + 2;
                    }
                    None => {
                        diags.push(error(line, "a quoted word is not closed (a `\"` is missing)"));
                        break;
                    }
                },
                _ => {
                    let start = p;
                    while p < s.len() && !s[p].is_whitespace() && !matches!(s[p], '{' | '}' | '"') {
                        p += 1;
                    }
                    out.push((Tok::Word(s[start..p].iter().collect()), line));
                }
            }
        }
        out.push((Tok::Eol, line));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Tree.

/// One item as written: `key [args...]`, with its block when `{ ... }` follows.
#[derive(Debug, Clone)]
struct Item {
    key: String,
    args: Vec<String>,
    line: usize,
    block: Option<Vec<Item>>,
}

/// Blocks deeper than this are refused (DPVS's deepest is 4; the bound keeps a hostile
/// file from exhausting the stack).
const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    toks: &'a [(Tok, usize)],
    pos: usize,
    diags: &'a mut Vec<Diagnostic>,
}

impl Parser<'_> {
    /// The items up to the `}` closing the block opened at line `open` (the end of the
    /// file at the top level).
    fn items(&mut self, open: Option<usize>, depth: usize) -> Vec<Item> {
        let mut out = Vec::new();
        loop {
            let Some((tok, line)) = self.toks.get(self.pos).cloned() else {
                if let Some(l) = open {
                    self.diags.push(error(l, "this block is not closed (a `}` is missing)"));
                }
                return out;
            };
            self.pos += 1;
            match tok {
                Tok::Eol => {}
                Tok::Close if open.is_some() => return out,
                Tok::Close => self.diags.push(error(line, "`}` closes no block (one `}` too many)")),
                Tok::Open => {
                    self.diags.push(error(line, "`{` opens a block without a keyword before it"));
                    let _ = self.block(line, depth);
                }
                Tok::Word(key) => {
                    let mut args = Vec::new();
                    while let Some((Tok::Word(w), _)) = self.toks.get(self.pos) {
                        args.push(w.clone());
                        self.pos += 1;
                    }
                    // The block's `{`: on the item's line, or alone on a following one.
                    let mut q = self.pos;
                    while matches!(self.toks.get(q), Some((Tok::Eol, _))) {
                        q += 1;
                    }
                    let block = match self.toks.get(q) {
                        Some((Tok::Open, l)) => {
                            let l = *l;
                            self.pos = q + 1;
                            Some(self.block(l, depth))
                        }
                        _ => None,
                    };
                    out.push(Item { key, args, line, block });
                }
            }
        }
    }

    fn block(&mut self, open: usize, depth: usize) -> Vec<Item> {
        if depth + 1 > MAX_DEPTH {
            self.diags.push(error(open, format!("blocks are nested more than {MAX_DEPTH} deep")));
            self.pos = self.toks.len();
            return Vec::new();
        }
        self.items(Some(open), depth + 1)
    }
}

/// What an item is in DPVS's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `key { ... }`.
    Block,
    /// `key NAME { ... }` (`device dpdk0`, `worker cpu1`).
    Named,
    /// `key value`.
    Value,
    /// `key value value...` (queue id lists).
    Values,
    /// `key` alone: on when present.
    Flag,
}

/// Every item DPVS reads (its parser's keyword tree, and the items of
/// `conf/dpvs.conf.items`), by path: its shape, and, for an item rvsd has no equivalent
/// for, why (a note on a block covers the items inside it). An empty note: [`Conv`]
/// maps the item.
const SPECS: &[(&str, Shape, &str)] = &[
    ("global_defs", Shape::Block, ""),
    ("global_defs.daemon", Shape::Flag, "rvsd runs in the foreground under systemd (docs/OPERATIONS.md); no daemon mode"),
    ("global_defs.log_level", Shape::Value, ""),
    (
        "global_defs.log_file",
        Shape::Value,
        "rvsd logs to stderr (the journal under systemd: journalctl -u rvsd); no log file",
    ),
    ("global_defs.log_with_timestamp", Shape::Value, "rvsd's text log is stamped (by journald under systemd); not settable"),
    ("global_defs.log_async_mode", Shape::Value, "rvsd's logging has no asynchronous mode to set"),
    ("global_defs.log_async_pool_size", Shape::Value, "rvsd's logging has no pool to size"),
    (
        "global_defs.pdump",
        Shape::Value,
        "no pdump in rvsd: `rvsip capture` writes pcap files from the running rvsd (docs/OPERATIONS.md, \"Capturing traffic\")",
    ),
    ("global_defs.kni", Shape::Value, ""),
    (
        "global_defs.lldp",
        Shape::Value,
        "rvsd sends no LLDP itself; LLDP frames reach the kernel twins, where lldpd can run",
    ),
    ("netif_defs", Shape::Block, ""),
    ("netif_defs.pktpool_size", Shape::Value, ""),
    ("netif_defs.pktpool_cache", Shape::Value, ""),
    ("netif_defs.fdir_mode", Shape::Value, ""),
    ("netif_defs.device", Shape::Named, ""),
    ("netif_defs.device.rx", Shape::Block, ""),
    ("netif_defs.device.rx.queue_number", Shape::Value, ""),
    ("netif_defs.device.rx.descriptor_number", Shape::Value, ""),
    ("netif_defs.device.rx.rss", Shape::Value, ""),
    ("netif_defs.device.rx.max_burst_size", Shape::Value, "rvsd's burst size is fixed; not settable"),
    ("netif_defs.device.tx", Shape::Block, ""),
    ("netif_defs.device.tx.queue_number", Shape::Value, ""),
    ("netif_defs.device.tx.descriptor_number", Shape::Value, ""),
    ("netif_defs.device.tx.mbuf_fast_free", Shape::Value, "rvsd chooses the port's offloads itself; not settable"),
    ("netif_defs.device.promisc_mode", Shape::Flag, ""),
    ("netif_defs.device.allmulticast", Shape::Flag, "rvsd has no allmulticast key; not set"),
    ("netif_defs.device.mtu", Shape::Value, ""),
    ("netif_defs.device.kni_name", Shape::Value, ""),
    ("netif_defs.bonding", Shape::Named, ""),
    ("netif_defs.bonding.mode", Shape::Value, ""),
    ("netif_defs.bonding.slave", Shape::Value, ""),
    ("netif_defs.bonding.primary", Shape::Value, ""),
    (
        "netif_defs.bonding.numa_node",
        Shape::Value,
        "rvsd reads each device's NUMA node itself (rvsd --check-host checks lcores, memory and NICs share it)",
    ),
    ("netif_defs.bonding.kni_name", Shape::Value, ""),
    ("netif_defs.bonding.options", Shape::Value, ""),
    ("worker_defs", Shape::Block, ""),
    ("worker_defs.worker", Shape::Named, ""),
    ("worker_defs.worker.type", Shape::Value, ""),
    ("worker_defs.worker.cpu_id", Shape::Value, ""),
    ("worker_defs.worker.icmp_redirect_core", Shape::Flag, "rvsd has no ICMP redirect core; not set"),
    ("worker_defs.worker.port", Shape::Named, ""),
    ("worker_defs.worker.port.rx_queue_ids", Shape::Values, ""),
    ("worker_defs.worker.port.tx_queue_ids", Shape::Values, ""),
    (
        "worker_defs.worker.port.isol_rx_cpu_ids",
        Shape::Values,
        "rvsd has no isolated receive lcores: each worker polls its own queues",
    ),
    (
        "worker_defs.worker.port.isol_rxq_ring_sz",
        Shape::Value,
        "rvsd has no isolated receive lcores, so no ring to size",
    ),
    ("timer_defs", Shape::Block, ""),
    ("timer_defs.schedule_interval", Shape::Value, "rvsd's workers run their timers from their loops; not settable"),
    ("neigh_defs", Shape::Block, ""),
    (
        "neigh_defs.unres_queue_length",
        Shape::Value,
        "rvsd holds up to 32 packets per unresolved next hop (64 next hops per worker); not settable",
    ),
    ("neigh_defs.timeout", Shape::Value, ""),
    ("ipset_defs", Shape::Block, ""),
    (
        "ipset_defs.ipset_hash_pool_size",
        Shape::Value,
        "rvsd has no ipset; source lists are `[edge] deny` and a service's `deny`/`allow`",
    ),
    ("ipv4_defs", Shape::Block, ""),
    (
        "ipv4_defs.forwarding",
        Shape::Value,
        "rvsd routes no transit traffic: packets to addresses it does not own go to the kernel twin",
    ),
    ("ipv4_defs.default_ttl", Shape::Value, "the TTL of rvsd's own packets is not settable"),
    (
        "ipv4_defs.fragment",
        Shape::Block,
        "rvsd forwards fragments without reassembling them (docs/OPERATIONS.md, \"IP fragments\"); nothing to size",
    ),
    ("ipv4_defs.fragment.bucket_number", Shape::Value, ""),
    ("ipv4_defs.fragment.bucket_entries", Shape::Value, ""),
    ("ipv4_defs.fragment.max_entries", Shape::Value, ""),
    ("ipv4_defs.fragment.ttl", Shape::Value, ""),
    ("ipv6_defs", Shape::Block, ""),
    ("ipv6_defs.disable", Shape::Value, "rvsd has no IPv6 switch: IPv6 works where a port has an IPv6 `[[addr]]`"),
    (
        "ipv6_defs.forwarding",
        Shape::Value,
        "rvsd routes no transit traffic: packets to addresses it does not own go to the kernel twin",
    ),
    ("ipv6_defs.addr_gen_mode", Shape::Value, "rvsd generates no addresses: give each one as an `[[addr]]`"),
    ("ipv6_defs.stable_secret", Shape::Value, "rvsd generates no addresses: give each one as an `[[addr]]`"),
    ("ipv6_defs.route6", Shape::Block, "rvsd's one route table (IPv4 and IPv6) has no method or size to set"),
    ("ipv6_defs.route6.method", Shape::Value, ""),
    ("ipv6_defs.route6.recycle_time", Shape::Value, ""),
    ("ipv6_defs.route6.lpm", Shape::Block, ""),
    ("ipv6_defs.route6.lpm.lpm6_max_rules", Shape::Value, ""),
    ("ipv6_defs.route6.lpm.lpm6_num_tbl8s", Shape::Value, ""),
    ("ipv6_defs.route6.lpm.rt6_hash_bucket", Shape::Value, ""),
    ("ctrl_defs", Shape::Block, ""),
    (
        "ctrl_defs.lcore_msg",
        Shape::Block,
        "rvsd has no lcore messages: the control thread publishes each change as a generation the workers adopt",
    ),
    ("ctrl_defs.lcore_msg.ring_size", Shape::Value, ""),
    ("ctrl_defs.lcore_msg.sync_msg_timeout_us", Shape::Value, ""),
    ("ctrl_defs.lcore_msg.priority_level", Shape::Value, ""),
    ("ipvs_defs", Shape::Block, ""),
    ("ipvs_defs.conn", Shape::Block, ""),
    ("ipvs_defs.conn.conn_pool_size", Shape::Value, ""),
    (
        "ipvs_defs.conn.conn_pool_cache",
        Shape::Value,
        "rvsd preallocates each worker's connections (`[conn] pool_size`); no shared pool to cache",
    ),
    (
        "ipvs_defs.conn.conn_init_timeout",
        Shape::Value,
        "no equivalent: a new connection is timed by its state's `[timeouts]` value",
    ),
    ("ipvs_defs.conn.expire_quiescent_template", Shape::Flag, ""),
    ("ipvs_defs.conn.redirect", Shape::Value, ""),
    ("ipvs_defs.conn.fast_xmit_close", Shape::Flag, "rvsd has no fast-xmit path to close; not set"),
    ("ipvs_defs.conn.xmit_ttl", Shape::Flag, "no equivalent in rvsd; not set"),
    ("ipvs_defs.udp", Shape::Block, ""),
    (
        "ipvs_defs.udp.defence_udp_drop",
        Shape::Flag,
        "no equivalent in rvsd (its input checks: docs/OPERATIONS.md, \"Input checks before scheduling\")",
    ),
    ("ipvs_defs.udp.uoa_mode", Shape::Value, ""),
    ("ipvs_defs.udp.uoa_max_trail", Shape::Value, ""),
    ("ipvs_defs.udp.timeout", Shape::Block, ""),
    ("ipvs_defs.udp.timeout.oneway", Shape::Value, ""),
    ("ipvs_defs.udp.timeout.normal", Shape::Value, ""),
    ("ipvs_defs.udp.timeout.last", Shape::Value, ""),
    ("ipvs_defs.tcp", Shape::Block, ""),
    (
        "ipvs_defs.tcp.defence_tcp_drop",
        Shape::Flag,
        "no equivalent in rvsd (its input checks: docs/OPERATIONS.md, \"Input checks before scheduling\")",
    ),
    ("ipvs_defs.tcp.timeout", Shape::Block, ""),
    ("ipvs_defs.tcp.timeout.none", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.established", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.syn_sent", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.syn_recv", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.fin_wait", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.time_wait", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.close", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.close_wait", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.last_ack", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.listen", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.synack", Shape::Value, ""),
    ("ipvs_defs.tcp.timeout.last", Shape::Value, ""),
    ("ipvs_defs.tcp.synproxy", Shape::Block, ""),
    ("ipvs_defs.tcp.synproxy.synack_options", Shape::Block, ""),
    ("ipvs_defs.tcp.synproxy.synack_options.mss", Shape::Value, ""),
    ("ipvs_defs.tcp.synproxy.synack_options.ttl", Shape::Value, "the SYN-ACK's TTL is not settable in rvsd"),
    (
        "ipvs_defs.tcp.synproxy.synack_options.sack",
        Shape::Flag,
        "rvsd's SYN-ACK offers SACK whenever the client does; nothing to set",
    ),
    ("ipvs_defs.tcp.synproxy.synack_options.wscale", Shape::Value, ""),
    ("ipvs_defs.tcp.synproxy.synack_options.timestamp", Shape::Flag, ""),
    ("ipvs_defs.tcp.synproxy.close_client_window", Shape::Flag, "no equivalent in rvsd; not set"),
    (
        "ipvs_defs.tcp.synproxy.defer_rs_syn",
        Shape::Flag,
        "rvsd opens the server connection at the client's ACK and holds early client segments \
         (`[synproxy] stash_slots`); it does not wait for data",
    ),
    ("ipvs_defs.tcp.synproxy.rs_syn_max_retry", Shape::Value, "not settable in rvsd"),
    ("ipvs_defs.tcp.synproxy.ack_storm_thresh", Shape::Value, ""),
    (
        "ipvs_defs.tcp.synproxy.max_ack_saved",
        Shape::Value,
        "rvsd holds one early client segment per connection (`[synproxy] stash_slots` per worker); not settable",
    ),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state", Shape::Block, "no equivalent in rvsd; not set"),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.close", Shape::Flag, ""),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.time_wait", Shape::Flag, ""),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.fin_wait", Shape::Flag, ""),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.close_wait", Shape::Flag, ""),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.last_ack", Shape::Flag, ""),
    ("sa_pool", Shape::Block, ""),
    (
        "sa_pool.pool_hash_size",
        Shape::Value,
        "no equivalent: a local port's worker is a function of the port (`steering`); nothing to size",
    ),
    ("sa_pool.flow_enable", Shape::Value, ""),
];

/// The note of `include FILE`, which DPVS takes anywhere.
const INCLUDE_NOTE: &str = "the included file is not read: put its items in this file and convert again";

/// A checked item: known to DPVS and of the right shape.
#[derive(Debug, Clone)]
struct Node {
    /// Its path without names (`netif_defs.device.rx.rss`), the key into [`SPECS`].
    path: String,
    /// Its path as shown (`netif_defs.device dpdk0.rx.rss`).
    shown: String,
    /// The name of a named block.
    name: String,
    /// Its values.
    args: Vec<String>,
    line: usize,
    shape: Shape,
    note: Option<&'static str>,
    /// The DPVS port (device or bonding) it belongs to.
    port: Option<String>,
    children: Vec<Node>,
}

impl Node {
    fn value(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }
}

/// Checks items against [`SPECS`], reporting unknown keywords and misshapen items
/// (which are left out); `port` is the enclosing device or bonding.
fn validate(
    items: Vec<Item>,
    gparent: &str,
    sparent: &str,
    port: Option<&str>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Node> {
    let mut out = Vec::new();
    for it in items {
        let join = |p: &str, k: &str| if p.is_empty() { k.to_string() } else { format!("{p}.{k}") };
        let path = join(gparent, &it.key);
        let (shape, note) = if it.key == "include" {
            (Shape::Values, Some(INCLUDE_NOTE))
        } else {
            match SPECS.iter().find(|(p, ..)| *p == path) {
                Some((_, shape, note)) => (*shape, Some(*note).filter(|n| !n.is_empty())),
                None => {
                    let place =
                        if sparent.is_empty() { "at the top level".to_string() } else { format!("in {sparent}") };
                    let hint = if sparent.is_empty() { " (not a DPVS section)" } else { "" };
                    diags.push(error(it.line, format!("unknown keyword `{}` {place}{hint}", it.key)));
                    continue;
                }
            }
        };
        let name = if shape == Shape::Named { it.args.first().cloned().unwrap_or_default() } else { String::new() };
        let shown =
            if shape == Shape::Named { join(sparent, &format!("{} {name}", it.key)) } else { join(sparent, &it.key) };
        let block_expected = matches!(shape, Shape::Block | Shape::Named);
        match (&it.block, block_expected) {
            (None, true) => {
                diags.push(error(it.line, format!("{shown}: a block `{{ ... }}` is expected after `{}`", it.key)));
                continue;
            }
            (Some(_), false) => {
                diags.push(error(it.line, format!("{shown}: a block where a value is expected")));
                continue;
            }
            _ => {}
        }
        let extra = match shape {
            Shape::Named if it.args.is_empty() => {
                diags.push(error(it.line, format!("{shown}: a name is missing (`{} NAME {{`)", it.key)));
                continue;
            }
            Shape::Value | Shape::Values if it.args.is_empty() => {
                diags.push(error(it.line, format!("{shown}: a value is missing")));
                continue;
            }
            Shape::Named => it.args.len() > 1,
            Shape::Block | Shape::Flag => !it.args.is_empty(),
            Shape::Value => it.args.len() > 1,
            Shape::Values => false,
        };
        if extra {
            let ignored = match shape {
                Shape::Named | Shape::Value => &it.args[1..],
                _ => &it.args[..],
            };
            diags.push(warning(it.line, format!("{shown}: `{}` ignored, as DPVS does", ignored.join(" "))));
        }
        let inner_port = match path.as_str() {
            "netif_defs.device" | "netif_defs.bonding" => Some(name.as_str()),
            _ => port,
        };
        let children = validate(it.block.unwrap_or_default(), &path, &shown, inner_port, diags);
        out.push(Node {
            path,
            shown,
            name: name.clone(),
            args: it.args,
            line: it.line,
            shape,
            note,
            port: inner_port.map(str::to_string),
            children,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Mapping.

/// Where a note goes in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bucket {
    Top,
    Eal,
    Workers,
    Mempool,
    /// A DPVS device or bonding (a slave's notes go to its bond's port).
    Port(String),
    Conn,
    Timeouts,
    Neigh,
    Synproxy,
    /// No rvsd section: listed at the end.
    Other,
}

/// An ordered set of `key = value` lines (values already in TOML).
#[derive(Debug, Default)]
struct Table(Vec<(String, String)>);

impl Table {
    fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[derive(Debug, Default)]
struct Device {
    name: String,
    line: usize,
    /// rvsd port keys, with the line and path of the DPVS item each came from.
    set: Vec<(String, String, usize, String)>,
    queues: Vec<(u64, usize, String)>,
    kni_name: Option<(String, usize, String)>,
}

#[derive(Debug, Default)]
struct Bond {
    name: String,
    mode: Option<(String, usize)>,
    slaves: Vec<(String, usize)>,
    primary: Option<(String, usize, String)>,
    kni_name: Option<(String, usize, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum WorkerKind {
    Master,
    #[default]
    Slave,
    Kni,
}

#[derive(Debug, Default)]
struct Worker {
    name: String,
    line: usize,
    kind: WorkerKind,
    cpu: Option<u32>,
    /// Per port block: the port, and its rx and tx queue ids with line and path.
    ports: Vec<WorkerPort>,
}

#[derive(Debug, Default)]
struct WorkerPort {
    name: String,
    line: usize,
    shown: String,
    queues: Vec<(&'static str, Vec<u64>, usize, String)>,
}

/// The conversion's state: what the items set, and the notes.
#[derive(Debug, Default)]
struct Conv {
    diags: Vec<Diagnostic>,
    notes: Vec<(Bucket, usize, String)>,
    top: Table,
    eal: Table,
    mempool: Table,
    conn: Table,
    timeouts: Table,
    neigh: Table,
    synproxy: Table,
    /// Comments (not warnings) explaining a mapped value, by bucket.
    explain: Vec<(Bucket, String)>,
    devices: Vec<Device>,
    bonds: Vec<Bond>,
    workers: Vec<Worker>,
    kni: Option<bool>,
    fdir: Option<(String, usize)>,
    flow: Option<(bool, usize)>,
    redirect: Option<(bool, usize, String)>,
    conn_pool: Option<(u64, usize, String)>,
    udp_normal: bool,
    udp_oneway: Option<(u64, usize, String)>,
    timestamp: bool,
    lcores: Vec<u32>,
}

fn on_off(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "enable" | "yes" | "true" => Some(true),
        "off" | "disable" | "no" | "false" => Some(false),
        _ => None,
    }
}

impl Conv {
    /// A warning, and the same note as a comment in `bucket`.
    fn warn(&mut self, bucket: Bucket, line: usize, shown: &str, why: impl fmt::Display) {
        let msg = format!("{shown}: {why}");
        self.diags.push(warning(line, msg.clone()));
        self.notes.push((bucket, line, msg));
    }

    fn fail(&mut self, line: usize, msg: impl Into<String>) {
        self.diags.push(error(line, msg));
    }

    /// The bucket of a node's notes: its port's, or by its section.
    fn bucket(n: &Node) -> Bucket {
        if let Some(p) = &n.port {
            return Bucket::Port(p.clone());
        }
        let p = n.path.as_str();
        match () {
            _ if p.starts_with("netif_defs.pktpool") => Bucket::Mempool,
            _ if p == "netif_defs.fdir_mode" || p.starts_with("sa_pool") || p == "ipvs_defs.conn.redirect" => {
                Bucket::Top
            }
            _ if p.starts_with("worker_defs") => Bucket::Workers,
            _ if p.starts_with("neigh_defs") => Bucket::Neigh,
            _ if p.starts_with("ipvs_defs.tcp.synproxy") => Bucket::Synproxy,
            _ if p.starts_with("ipvs_defs.udp.timeout") || p.starts_with("ipvs_defs.tcp.timeout") => Bucket::Timeouts,
            _ if p.starts_with("ipvs_defs.conn") || p.starts_with("ipvs_defs.udp.uoa") => Bucket::Conn,
            _ => Bucket::Other,
        }
    }

    fn note(&mut self, n: &Node, why: impl fmt::Display) {
        self.warn(Self::bucket(n), n.line, &n.shown, why);
    }

    /// A number, or an error naming the item.
    fn num(&mut self, n: &Node) -> Option<u64> {
        match n.value().parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.fail(n.line, format!("{}: {:?} is not a number", n.shown, n.value()));
                None
            }
        }
    }

    /// A number within `lo..=hi` (rvsd's type), or an error naming the item.
    fn num_in(&mut self, n: &Node, lo: u64, hi: u64) -> Option<u64> {
        let v = self.num(n)?;
        if (lo..=hi).contains(&v) {
            Some(v)
        } else {
            self.fail(n.line, format!("{}: {v} is outside {lo}..={hi}", n.shown));
            None
        }
    }

    fn flag(&mut self, n: &Node) -> Option<bool> {
        let v = on_off(n.value());
        if v.is_none() {
            self.fail(n.line, format!("{}: {:?} is neither on nor off", n.shown, n.value()));
        }
        v
    }

    /// Walks nodes: notes become warnings (covering a noted block's items), plain
    /// blocks are entered, and every other item is given to `f`.
    fn visit(&mut self, nodes: &[Node], f: &mut dyn FnMut(&mut Conv, &Node)) {
        for n in nodes {
            if let Some(why) = n.note {
                self.note(n, why);
            } else if n.shape == Shape::Block {
                self.visit(&n.children, f);
            } else {
                f(self, n);
            }
        }
    }

    /// Maps one item outside devices, bondings and workers.
    fn item(&mut self, n: &Node) {
        let p = n.path.as_str();
        match p {
            "global_defs.log_level" => {
                let level = match n.value().to_ascii_uppercase().as_str() {
                    "EMERG" | "ALERT" | "CRIT" | "ERR" | "ERROR" => Some("error"),
                    "WARNING" | "WARN" => Some("warn"),
                    "NOTICE" | "INFO" => Some("info"),
                    "DEBUG" => Some("debug"),
                    _ => None,
                };
                match level {
                    Some(l) => self.note(
                        n,
                        format!("rvsd takes its log level from the environment: RVS_LOG={l} (the unit's Environment=)"),
                    ),
                    None => self.note(n, format!("{:?} is no DPVS log level; rvsd's level is $RVS_LOG", n.value())),
                }
            }
            "global_defs.kni" => self.kni = self.flag(n),
            "netif_defs.pktpool_size" => {
                if let Some(v) = self.num_in(n, 1023, u64::from(u32::MAX)) {
                    self.mempool.set("mbufs", v.to_string());
                }
            }
            "netif_defs.pktpool_cache" => {
                if let Some(v) = self.num_in(n, 0, u64::from(u32::MAX)) {
                    self.mempool.set("cache", v.to_string());
                }
            }
            "netif_defs.fdir_mode" => match n.value() {
                "perfect" | "signature" => self.fdir = Some((n.value().to_string(), n.line)),
                v => self.fail(n.line, format!("{}: {v:?} is neither perfect nor signature", n.shown)),
            },
            "netif_defs.device" => self.device(n),
            "netif_defs.bonding" => self.bonding(n),
            "worker_defs.worker" => self.worker(n),
            "neigh_defs.timeout" => {
                if let Some(s) = self.num(n) {
                    if (1..=3600).contains(&s) {
                        self.neigh.set("reachable_ms", (s * 1000).to_string());
                    } else {
                        self.note(n, format!("{s} s is outside rvsd's 1..=3600 s (reachable_ms); rvsd's default kept"));
                    }
                }
            }
            "ipvs_defs.conn.conn_pool_size" => {
                if let Some(v) = self.num(n) {
                    self.conn_pool = Some((v, n.line, n.shown.clone()));
                }
            }
            "ipvs_defs.conn.redirect" => {
                if let Some(v) = self.flag(n) {
                    self.redirect = Some((v, n.line, n.shown.clone()));
                }
            }
            "ipvs_defs.udp.uoa_mode" => match n.value() {
                m @ ("opp" | "ipo") => self.note(
                    n,
                    format!("rvsd sets UOA per service: `uoa = \"{m}\"` on each UDP `[[service]]` (rvsadm --uoa {m})"),
                ),
                v => self.fail(n.line, format!("{}: {v:?} is neither opp nor ipo", n.shown)),
            },
            "ipvs_defs.conn.expire_quiescent_template" => self.conn.set("expire_quiescent_template", "true"),
            "ipvs_defs.udp.uoa_max_trail" => {
                if let Some(v) = self.num_in(n, 0, 255) {
                    self.conn.set("uoa_max_trail", v.to_string());
                }
            }
            "ipvs_defs.udp.timeout.normal" => {
                if let Some(v) = self.num_in(n, 0, u64::from(u32::MAX)) {
                    self.timeouts.set("udp", v.to_string());
                    self.udp_normal = true;
                }
            }
            "ipvs_defs.udp.timeout.oneway" => {
                if let Some(v) = self.num_in(n, 0, u64::from(u32::MAX)) {
                    self.udp_oneway = Some((v, n.line, n.shown.clone()));
                }
            }
            "ipvs_defs.udp.timeout.last" | "ipvs_defs.tcp.timeout.last" => {
                self.note(n, "DPVS's end-of-table entry, not a state; nothing to set")
            }
            _ if p.starts_with("ipvs_defs.tcp.timeout.") => {
                if let Some(v) = self.num_in(n, 0, u64::from(u32::MAX)) {
                    self.timeouts.set(&n.path["ipvs_defs.tcp.timeout.".len()..], v.to_string());
                }
            }
            "ipvs_defs.tcp.synproxy.synack_options.mss" => {
                if let Some(v) = self.num_in(n, 0, 65535) {
                    if v < 536 {
                        self.note(n, format!("{v} is below rvsd's least MSS (536); rvsd's defaults kept"));
                        return;
                    }
                    self.synproxy.set("mss_v4", v.to_string());
                    if v >= 1240 {
                        self.synproxy.set("mss_v6", (v - 20).to_string());
                        self.explain.push((
                            Bucket::Synproxy,
                            "mss_v6: DPVS's one mss less 20 bytes (the larger IPv6 header)".into(),
                        ));
                    } else {
                        self.explain.push((
                            Bucket::Synproxy,
                            "mss_v6: DPVS's mss less 20 is below rvsd's least (1220); rvsd's default kept".into(),
                        ));
                    }
                }
            }
            "ipvs_defs.tcp.synproxy.synack_options.wscale" => {
                if let Some(v) = self.num_in(n, 0, 14) {
                    self.synproxy.set("wscale", v.to_string());
                }
            }
            "ipvs_defs.tcp.synproxy.synack_options.timestamp" => {
                self.timestamp = true;
                self.synproxy.set("timestamps", "true");
            }
            "ipvs_defs.tcp.synproxy.ack_storm_thresh" => {
                if let Some(v) = self.num(n) {
                    if v > 255 {
                        self.note(n, format!("{v} is above rvsd's most (255); 255 set"));
                    }
                    self.synproxy.set("ack_storm_thresh", v.min(255).to_string());
                }
            }
            "sa_pool.flow_enable" => {
                if let Some(v) = self.flag(n) {
                    self.flow = Some((v, n.line));
                }
            }
            _ => self.note(n, "not converted by this rvsd (a gap in --from-dpvs)"),
        }
    }

    fn device(&mut self, n: &Node) {
        let name = n.name.clone();
        if self.devices.iter().any(|d| d.name == name) || self.bonds.iter().any(|b| b.name == name) {
            self.fail(n.line, format!("{}: a second port named {name}", n.shown));
            return;
        }
        self.devices.push(Device { name, line: n.line, ..Device::default() });
        let i = self.devices.len() - 1;
        self.visit(&n.children, &mut |c, m| c.device_item(i, m));
    }

    fn device_item(&mut self, i: usize, n: &Node) {
        let key = match n.path.as_str() {
            "netif_defs.device.rx.descriptor_number" => "rx_desc",
            "netif_defs.device.tx.descriptor_number" => "tx_desc",
            "netif_defs.device.rx.queue_number" | "netif_defs.device.tx.queue_number" => {
                if let Some(v) = self.num(n) {
                    self.devices[i].queues.push((v, n.line, n.shown.clone()));
                }
                return;
            }
            "netif_defs.device.rx.rss" => {
                match n.value() {
                    "all" => {}
                    "ip" | "tcp" | "udp" | "sctp" | "ether" | "port" | "tunnel" => self.note(
                        n,
                        format!(
                            "rvsd's RSS hashes IP addresses and TCP/UDP ports (as far as the NIC can); \
                             `{}` cannot be chosen, rss = true set",
                            n.value()
                        ),
                    ),
                    v => {
                        self.fail(n.line, format!("{}: {v:?} is no DPVS RSS type", n.shown));
                        return;
                    }
                }
                self.devices[i].set.push(("rss".into(), "true".into(), n.line, n.shown.clone()));
                return;
            }
            "netif_defs.device.mtu" => {
                if let Some(v) = self.num_in(n, 0, 65535) {
                    self.devices[i].set.push(("mtu".into(), v.to_string(), n.line, n.shown.clone()));
                }
                return;
            }
            "netif_defs.device.promisc_mode" => {
                self.devices[i].set.push(("promiscuous".into(), "true".into(), n.line, n.shown.clone()));
                return;
            }
            "netif_defs.device.kni_name" => {
                self.devices[i].kni_name = Some((n.value().to_string(), n.line, n.shown.clone()));
                return;
            }
            _ => return self.note(n, "not converted by this rvsd (a gap in --from-dpvs)"),
        };
        // Descriptors: rvsd wants powers of two.
        if let Some(v) = self.num_in(n, 1, 32768) {
            let p = v.next_power_of_two();
            if p != v {
                self.note(n, format!("rvsd takes powers of two: {p} set for {v}"));
            }
            self.devices[i].set.push((key.into(), p.to_string(), n.line, n.shown.clone()));
        }
    }

    fn bonding(&mut self, n: &Node) {
        let name = n.name.clone();
        if self.devices.iter().any(|d| d.name == name) || self.bonds.iter().any(|b| b.name == name) {
            self.fail(n.line, format!("{}: a second port named {name}", n.shown));
            return;
        }
        self.bonds.push(Bond { name, ..Bond::default() });
        let i = self.bonds.len() - 1;
        self.visit(&n.children, &mut |c, m| c.bonding_item(i, m));
        if self.bonds[i].mode.is_none() {
            self.fail(n.line, format!("{}: no mode (mode 0-6)", n.shown));
        }
        if self.bonds[i].slaves.is_empty() {
            self.fail(n.line, format!("{}: no slave", n.shown));
        }
    }

    fn bonding_item(&mut self, i: usize, n: &Node) {
        match n.path.as_str() {
            "netif_defs.bonding.mode" => {
                let mode = match n.value() {
                    "0" => "round-robin",
                    "1" => "active-backup",
                    "2" => "balance-xor",
                    "4" => "lacp",
                    m @ ("3" | "5" | "6") => {
                        let what = match m {
                            "3" => "broadcast",
                            "5" => "balance-tlb",
                            _ => "balance-alb",
                        };
                        self.note(
                            n,
                            format!(
                                "rvsd has no mode {m} ({what}): choose round-robin, active-backup, balance-xor \
                                 or lacp in place of CHOOSE-A-MODE"
                            ),
                        );
                        "CHOOSE-A-MODE"
                    }
                    v => return self.fail(n.line, format!("{}: {v:?} is no bonding mode (0-6)", n.shown)),
                };
                self.bonds[i].mode = Some((mode.to_string(), n.line));
            }
            "netif_defs.bonding.slave" => self.bonds[i].slaves.push((n.value().to_string(), n.line)),
            "netif_defs.bonding.primary" => {
                self.bonds[i].primary = Some((n.value().to_string(), n.line, n.shown.clone()));
            }
            "netif_defs.bonding.kni_name" => {
                self.bonds[i].kni_name = Some((n.value().to_string(), n.line, n.shown.clone()));
            }
            "netif_defs.bonding.options" => {
                for opt in n.value().split(';').filter(|o| !o.trim().is_empty()) {
                    let (k, _) = opt.split_once('=').unwrap_or((opt, ""));
                    match k.trim() {
                        "dedicated_queues" => self.note(
                            n,
                            format!(
                                "{opt}: rvsd uses no dedicated LACP queues (LACPDUs go through the data queues); \
                                 not set"
                            ),
                        ),
                        _ => self.note(n, format!("{opt}: not a DPVS bonding option (dedicated_queues is); not set")),
                    }
                }
            }
            _ => self.note(n, "not converted by this rvsd (a gap in --from-dpvs)"),
        }
    }

    fn worker(&mut self, n: &Node) {
        self.workers.push(Worker { name: n.name.clone(), line: n.line, ..Worker::default() });
        let i = self.workers.len() - 1;
        self.visit(&n.children, &mut |c, m| c.worker_item(i, m));
        if self.workers[i].cpu.is_none() {
            self.fail(n.line, format!("{}: no cpu_id", n.shown));
        }
    }

    fn worker_item(&mut self, i: usize, n: &Node) {
        match n.path.as_str() {
            "worker_defs.worker.type" => {
                self.workers[i].kind = match n.value() {
                    "master" => WorkerKind::Master,
                    "slave" => WorkerKind::Slave,
                    "kni" => WorkerKind::Kni,
                    v => return self.fail(n.line, format!("{}: {v:?} is none of master, slave, kni", n.shown)),
                }
            }
            "worker_defs.worker.cpu_id" => {
                if let Some(v) = self.num_in(n, 0, u64::from(u32::MAX)) {
                    self.workers[i].cpu = Some(v as u32);
                }
            }
            "worker_defs.worker.port" => {
                self.workers[i].ports.push(WorkerPort {
                    name: n.name.clone(),
                    line: n.line,
                    shown: n.shown.clone(),
                    ..WorkerPort::default()
                });
                self.visit(&n.children, &mut |c, m| c.worker_port_item(i, m));
            }
            _ => self.note(n, "not converted by this rvsd (a gap in --from-dpvs)"),
        }
    }

    fn worker_port_item(&mut self, i: usize, n: &Node) {
        let dir = match n.path.as_str() {
            "worker_defs.worker.port.rx_queue_ids" => "receive",
            "worker_defs.worker.port.tx_queue_ids" => "transmit",
            _ => return self.note(n, "not converted by this rvsd (a gap in --from-dpvs)"),
        };
        let mut ids = Vec::new();
        for a in &n.args {
            match a.parse::<u64>() {
                Ok(v) => ids.push(v),
                Err(_) => return self.fail(n.line, format!("{}: {a:?} is not a queue id", n.shown)),
            }
        }
        if let Some(p) = self.workers[i].ports.last_mut() {
            p.queues.push((dir, ids, n.line, n.shown.clone()));
        }
    }

    /// What needs the whole file: workers and queues, ports from devices and bonds,
    /// steering, the connection pool per worker, the UDP timeout.
    fn finish(&mut self, nodes: &[Node]) {
        self.finish_workers();
        self.finish_steering();
        let workers = self.lcores.len().max(1) as u64;
        if let Some((v, line, shown)) = self.conn_pool.take() {
            let per = v.div_ceil(workers).min(u64::from(u32::MAX)).max(1);
            self.conn.set("pool_size", per.to_string());
            self.explain.push((
                Bucket::Conn,
                format!(
                    "pool_size: per worker; DPVS's conn_pool_size (line {line}, {shown} {v}) is shared by \
                     all {workers} workers"
                ),
            ));
        }
        if let Some((v, line, shown)) = self.udp_oneway.take() {
            if self.udp_normal {
                self.warn(
                    Bucket::Timeouts,
                    line,
                    &shown,
                    "rvsd has one UDP timeout, `udp`, set from `normal`; not used",
                );
            } else {
                self.timeouts.set("udp", v.to_string());
                self.explain.push((Bucket::Timeouts, "udp: from DPVS's oneway (rvsd has one UDP timeout)".into()));
            }
        }
        let synack = find(nodes, "ipvs_defs.tcp.synproxy.synack_options").is_some();
        if synack && !self.timestamp {
            self.synproxy.set("timestamps", "false");
            self.explain.push((
                Bucket::Synproxy,
                "timestamps = false: DPVS's synack_options has no `timestamp`, so its SYN-ACK carried none".into(),
            ));
        }
    }

    fn finish_workers(&mut self) {
        let workers = std::mem::take(&mut self.workers);
        let mut masters = 0;
        let mut index = 0;
        for w in &workers {
            let shown = format!("worker_defs.worker {}", w.name);
            match w.kind {
                WorkerKind::Master => {
                    masters += 1;
                    if masters > 1 {
                        self.fail(w.line, format!("{shown}: a second master worker"));
                        continue;
                    }
                    if let Some(cpu) = w.cpu {
                        self.eal.set("main_lcore", cpu.to_string());
                    }
                    for p in &w.ports {
                        self.warn(Bucket::Eal, p.line, &p.shown, "rvsd's main lcore polls no queues; not used");
                    }
                }
                WorkerKind::Kni => self.warn(
                    Bucket::Workers,
                    w.line,
                    &shown,
                    "rvsd has no KNI worker: frames to and from the kernel twins cross the control thread; \
                     its cpu_id and queues are not used",
                ),
                WorkerKind::Slave => {
                    let Some(cpu) = w.cpu else { continue };
                    self.lcores.push(cpu);
                    for p in &w.ports {
                        if !self.devices.iter().any(|d| d.name == p.name)
                            && !self.bonds.iter().any(|b| b.name == p.name)
                        {
                            self.warn(
                                Bucket::Workers,
                                p.line,
                                &p.shown,
                                format!("no device or bonding named {}; rvsd's workers poll every port", p.name),
                            );
                            continue;
                        }
                        for (dir, ids, line, shown) in &p.queues {
                            if ids.as_slice() != [index as u64] {
                                let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
                                self.warn(
                                    Bucket::Workers,
                                    *line,
                                    shown,
                                    format!(
                                        "rvsd assigns the queues itself: worker {index} (lcore {cpu}) uses {dir} \
                                         queue {index} of every port; queues {list} are not kept"
                                    ),
                                );
                            }
                        }
                    }
                    index += 1;
                }
            }
        }
        self.workers = workers;
        if self.lcores.is_empty() {
            let line = self.workers.first().map_or(1, |w| w.line);
            self.warn(
                Bucket::Workers,
                line,
                "worker_defs",
                "no slave worker: fill in `lcores` (rvsd needs at least one worker lcore)",
            );
        }
    }

    fn finish_steering(&mut self) {
        let flow = self.flow.map(|(v, _)| v);
        let steering = match (flow, &self.fdir) {
            (Some(false), _) => {
                self.explain.push((Bucket::Top, "steering: sa_pool's flow_enable is off: software redirect".into()));
                Some("redirect")
            }
            (_, Some((mode, _))) if mode == "signature" => Some("signature"),
            (Some(true), _) | (_, Some(_)) => {
                self.explain.push((
                    Bucket::Top,
                    "steering: flow rules where the NIC takes them, redirect where not (\"perfect\" makes a \
                     refusal fatal, as DPVS's fdir)"
                        .into(),
                ));
                Some("auto")
            }
            (None, None) => None,
        };
        if let Some(s) = steering {
            self.top.set("steering", q(s));
        }
        if let Some((on, line, shown)) = self.redirect.take() {
            match (on, flow) {
                (true, Some(false)) => {} // steering = "redirect"
                (true, _) => self.warn(
                    Bucket::Top,
                    line,
                    &shown,
                    "rvsd always redirects replies whose flow rule is missing (the safety net of every steering \
                     mode); nothing to set",
                ),
                (false, _) => self.warn(
                    Bucket::Top,
                    line,
                    &shown,
                    "rvsd's redirect cannot be turned off: it is the safety net of every steering mode",
                ),
            }
        }
    }

    /// The DPVS port a device's notes belong to in rvsd: its bond when it is a slave.
    fn port_of(&self, dev: &str) -> String {
        self.bonds
            .iter()
            .find(|b| b.slaves.iter().any(|(s, _)| s == dev))
            .map_or_else(|| dev.to_string(), |b| b.name.clone())
    }

    /// The `[[port]]` tables, each with its notes, and the placeholder warnings.
    fn ports(&mut self) -> Vec<(String, Table)> {
        let mut out = Vec::new();
        let workers = self.lcores.len() as u64;
        let twin = self.kni.map(|on| q(if on { "tap" } else { "none" }));
        let devices = std::mem::take(&mut self.devices);
        let bonds = std::mem::take(&mut self.bonds);
        let slave_of = |d: &str| bonds.iter().find(|b| b.slaves.iter().any(|(s, _)| s == d)).map(|b| b.name.as_str());
        for d in &devices {
            let port = slave_of(&d.name).map_or_else(|| d.name.clone(), str::to_string);
            let shown = format!("netif_defs.device {}", d.name);
            for (v, line, s) in &d.queues {
                if workers > 0 && *v != workers {
                    self.warn(
                        Bucket::Port(port.clone()),
                        *line,
                        s,
                        format!("rvsd gives every port one queue per worker ({workers}); {v} not used"),
                    );
                }
            }
            let ph = pci_placeholder(&d.name);
            let how = "dpdk-devbind.py --status lists the NICs; DPVS's dpdkN is the Nth DPDK port in PCI order";
            match slave_of(&d.name) {
                Some(b) => self.warn(
                    Bucket::Port(port.clone()),
                    d.line,
                    &shown,
                    format!("its PCI address is not in dpvs.conf: replace {ph} in port {b}'s bond slaves ({how})"),
                ),
                None => self.warn(
                    Bucket::Port(port.clone()),
                    d.line,
                    &shown,
                    format!("its PCI address is not in dpvs.conf: replace {ph} in port {} ({how})", d.name),
                ),
            }
            if let Some((k, line, s)) = &d.kni_name {
                if self.kni == Some(false) {
                    self.warn(
                        Bucket::Port(port.clone()),
                        *line,
                        s,
                        "global_defs kni is off: no twin (twin = \"none\")",
                    );
                } else if let Some(b) = slave_of(&d.name) {
                    self.warn(
                        Bucket::Port(port.clone()),
                        *line,
                        s,
                        format!("a bond slave has no twin in rvsd; the bond's is {b}.kni"),
                    );
                } else if *k != format!("{}.kni", d.name) {
                    self.warn(
                        Bucket::Port(port.clone()),
                        *line,
                        s,
                        format!("rvsd names the twin {}.kni, not {k}", d.name),
                    );
                }
            }
            if slave_of(&d.name).is_some() {
                continue;
            }
            let mut t = Table::default();
            t.set("name", q(&d.name));
            t.set("pci", q(&ph));
            for (k, v, ..) in &d.set {
                t.set(k, v.clone());
            }
            if let Some(tw) = &twin {
                t.set("twin", tw.clone());
            }
            out.push((d.name.clone(), t));
        }
        for b in &bonds {
            let shown = format!("netif_defs.bonding {}", b.name);
            let mut slaves = Vec::new();
            for (s, line) in &b.slaves {
                if !devices.iter().any(|d| &d.name == s) {
                    self.fail(*line, format!("{shown}.slave: no device named {s} in netif_defs"));
                }
                if bonds.iter().filter(|o| o.slaves.iter().any(|(x, _)| x == s)).count() > 1 {
                    self.fail(*line, format!("{shown}.slave: {s} is a slave of two bonds"));
                }
                slaves.push(q(&pci_placeholder(s)));
            }
            let primary = match &b.primary {
                Some((p, line, _)) => match b.slaves.iter().position(|(s, _)| s == p) {
                    Some(i) => i,
                    None => {
                        self.fail(*line, format!("{shown}.primary: {p} is not a slave of {}", b.name));
                        0
                    }
                },
                None => 0,
            };
            let mode = b.mode.as_ref().map_or("CHOOSE-A-MODE", |(m, _)| m.as_str());
            let mut t = Table::default();
            t.set("name", q(&b.name));
            t.set("bond", format!("{{ mode = {}, slaves = [{}], primary = {primary} }}", q(mode), slaves.join(", ")));
            // A bond is configured from its primary slave, as DPVS's queue configuration.
            let prim = b.slaves.get(primary).and_then(|(p, _)| devices.iter().find(|d| &d.name == p));
            if let Some(pd) = prim {
                for (k, v, ..) in &pd.set {
                    t.set(k, v.clone());
                }
                for (s, _) in &b.slaves {
                    let Some(d) = devices.iter().find(|d| &d.name == s && d.name != pd.name) else { continue };
                    for (k, v, line, sh) in &d.set {
                        if t.get(k) != Some(v.as_str()) {
                            self.warn(
                                Bucket::Port(b.name.clone()),
                                *line,
                                sh,
                                format!(
                                    "rvsd configures bond {} from its primary slave {}: this slave's value is not used",
                                    b.name, pd.name
                                ),
                            );
                        }
                    }
                }
            }
            if let Some(tw) = &twin {
                t.set("twin", tw.clone());
            }
            if let Some((k, line, s)) = &b.kni_name {
                if self.kni == Some(false) {
                    self.warn(
                        Bucket::Port(b.name.clone()),
                        *line,
                        s,
                        "global_defs kni is off: no twin (twin = \"none\")",
                    );
                } else if *k != format!("{}.kni", b.name) {
                    self.warn(
                        Bucket::Port(b.name.clone()),
                        *line,
                        s,
                        format!("rvsd names the twin {}.kni, not {k}", b.name),
                    );
                }
            }
            out.push((b.name.clone(), t));
        }
        self.devices = devices;
        self.bonds = bonds;
        out
    }

    fn render(&mut self, file: &str) -> String {
        let ports = self.ports();
        // Notes of a slave device go to its bond's port.
        let notes: Vec<(Bucket, usize, String)> = std::mem::take(&mut self.notes)
            .into_iter()
            .map(|(b, l, m)| match b {
                Bucket::Port(p) => (Bucket::Port(self.port_of(&p)), l, m),
                b => (b, l, m),
            })
            .collect();
        let mut used = vec![false; notes.len()];
        let mut s = String::new();
        let mut comments = |s: &mut String, bucket: &Bucket, explain: &[(Bucket, String)]| {
            for (b, e) in explain {
                if b == bucket {
                    s.push_str(&format!("# {e}\n"));
                }
            }
            let mut mine: Vec<(usize, &str)> = Vec::new();
            for (i, (b, line, m)) in notes.iter().enumerate() {
                if b == bucket {
                    used[i] = true;
                    mine.push((*line, m));
                }
            }
            mine.sort_by_key(|(l, _)| *l);
            for (line, m) in mine {
                s.push_str(&format!("# line {line}: {m}\n"));
            }
        };
        let keys = |s: &mut String, t: &Table| {
            for (k, v) in &t.0 {
                s.push_str(&format!("{k} = {v}\n"));
            }
        };
        s.push_str(&format!(
            "# rvsd configuration converted from {file} by `rvsd --from-dpvs` (rvsd {}).\n\
             # Replace every PCI-ADDRESS-OF-<port> with the NIC's address (dpdk-devbind.py --status), then:\n\
             #   rvsd --check-config THIS-FILE --other-host\n\
             # \"# line N:\" comments are dpvs.conf items rvsd does not carry over, and why\n\
             # (docs/DEPLOY.md, \"From dpvs.conf\"; every key: docs/CONFIG.md).\n\n",
            env!("CARGO_PKG_VERSION")
        ));
        let explain = std::mem::take(&mut self.explain);
        comments(&mut s, &Bucket::Top, &explain);
        keys(&mut s, &self.top);
        s.push_str("\n[eal]\n");
        comments(&mut s, &Bucket::Eal, &explain);
        keys(&mut s, &self.eal);
        s.push_str("\n[workers]\n");
        s.push_str(
            "# DPVS's cpu_id N is rvsd's lcore N, run on CPU N (give `cpus` if dpvs ran with an EAL --lcores map).\n\
             # rvsd assigns the queues: worker i polls receive queue i of every port and sends on transmit queue i.\n",
        );
        comments(&mut s, &Bucket::Workers, &explain);
        let lcores = self.lcores.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        s.push_str(&format!("lcores = [{lcores}]\n"));
        s.push_str("\n[mempool]\n");
        comments(&mut s, &Bucket::Mempool, &explain);
        keys(&mut s, &self.mempool);
        for (name, t) in &ports {
            s.push_str("\n[[port]]\n");
            comments(&mut s, &Bucket::Port(name.clone()), &explain);
            keys(&mut s, t);
        }
        let sections = [
            ("[conn]", Bucket::Conn, &self.conn),
            ("[timeouts]", Bucket::Timeouts, &self.timeouts),
            ("[neigh_defs]", Bucket::Neigh, &self.neigh),
            ("[synproxy]", Bucket::Synproxy, &self.synproxy),
        ];
        for (head, b, t) in sections {
            let any =
                !t.0.is_empty() || notes.iter().any(|(nb, ..)| *nb == b) || explain.iter().any(|(eb, _)| *eb == b);
            if any {
                s.push_str(&format!("\n{head}\n"));
                comments(&mut s, &b, &explain);
                keys(&mut s, t);
            }
        }
        // Everything else: DPVS items with no rvsd section, and notes of a port that is
        // not in the output (a bond's unknown slave).
        let mut rest: Vec<(usize, &str)> =
            notes.iter().zip(&used).filter(|(_, u)| !**u).map(|((_, l, m), _)| (*l, m.as_str())).collect();
        if !rest.is_empty() {
            rest.sort_by_key(|(l, _)| *l);
            s.push_str("\n# Not carried over (no rvsd equivalent):\n");
            for (line, m) in rest {
                s.push_str(&format!("# line {line}: {m}\n"));
            }
        }
        s
    }
}

/// The first node at `path`, anywhere under `nodes`.
fn find<'a>(nodes: &'a [Node], path: &str) -> Option<&'a Node> {
    nodes.iter().find_map(|n| if n.path == path { Some(n) } else { find(&n.children, path) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;

    /// Puts the PCI addresses the operator gives in place of the placeholders, as the
    /// operator does by hand.
    fn fill_placeholders(toml: &str, pci: &HashMap<&str, &str>) -> String {
        let mut out = toml.to_string();
        for (dev, addr) in pci {
            out = out.replace(&format!("\"{}\"", pci_placeholder(dev)), &format!("\"{addr}\""));
        }
        out
    }

    fn warnings(c: &Conversion) -> Vec<String> {
        c.diagnostics.iter().filter(|d| d.level == Level::Warning).map(|d| d.render("d.conf")).collect()
    }

    fn errors(c: &Conversion) -> Vec<String> {
        c.diagnostics.iter().filter(|d| d.level == Level::Error).map(|d| d.render("d.conf")).collect()
    }

    /// A one-NIC box, in the structure of DPVS's single-NIC sample (written here).
    const SINGLE: &str = r#"
! one NIC, two workers
global_defs {
    log_level   INFO
    lldp        off          <off, on|off>
}

netif_defs {
    <init> pktpool_size     262143
    <init> pktpool_cache    256
    <init> fdir_mode        perfect

    <init> device dpdk0 {
        rx {
            queue_number        2
            descriptor_number   1000     # not a power of two
            rss                 all
        }
        tx {
            queue_number        2
            descriptor_number   1024
            mbuf_fast_free      on
        }
        mtu                     1500
        promisc_mode
        kni_name                dpdk0.kni
    }
}

worker_defs {
    <init> worker cpu0 {
        type    master
        cpu_id  0
    }
    <init> worker cpu1 {
        type    slave
        cpu_id  1
        port    dpdk0 {
            rx_queue_ids     0
            tx_queue_ids     0
        }
    }
    <init> worker cpu2 {
        type    slave
        cpu_id  2
        port    dpdk0 {
            rx_queue_ids     1
            tx_queue_ids     1
        }
    }
}

neigh_defs {
    <init> unres_queue_length  128
    timeout                    60
}

ipvs_defs {
    conn {
        <init> conn_pool_size       2097152
        <init> conn_pool_cache      256
        conn_init_timeout           3
    }
    udp {
        uoa_mode        opp
        uoa_max_trail   3
        timeout {
            oneway      60
            normal      300
            last        3
        }
    }
    tcp {
        timeout {
            established 90
            syn_recv    30
            fin_wait    7
            last        2
        }
        synproxy {
            synack_options {
                mss             1452
                ttl             63
                sack
                wscale          7
            }
            rs_syn_max_retry    3
            ack_storm_thresh    10
            max_ack_saved       3
            conn_reuse_state {
                close
                time_wait
            }
        }
    }
}

sa_pool {
    <init> pool_hash_size   16
    <init> flow_enable      on
}
"#;

    /// Two NICs bonded (LACP), in the structure of DPVS's bonding samples (written here).
    const BONDED: &str = r#"
global_defs {
    log_level   WARNING
    ! <init> kni  on
}

netif_defs {
    <init> pktpool_size     524287
    <init> device dpdk0 {
        rx {
            queue_number        3
            descriptor_number   2048
            rss                 all
        }
        tx {
            queue_number        3
            descriptor_number   2048
        }
        kni_name                dpdk0.kni
    }
    <init> device dpdk1 {
        rx {
            queue_number        3
            descriptor_number   1024
            rss                 all
        }
        tx {
            queue_number        3
            descriptor_number   2048
        }
    }
    <init> bonding bond0 {
        mode                    4
        slave                   dpdk0
        slave                   dpdk1
        primary                 dpdk0
        numa_node               0
        kni_name                bond0.kni
        options                 dedicated_queues=off
    }
}

worker_defs {
    <init> worker cpu0 {
        type    master
        cpu_id  0
    }
    <init> worker cpu1 {
        type    slave
        cpu_id  1
        port    bond0 {
            rx_queue_ids     0
            tx_queue_ids     0
        }
    }
    <init> worker cpu2 {
        type    slave
        cpu_id  2
        port    bond0 {
            rx_queue_ids     1
            tx_queue_ids     1
        }
    }
    <init> worker cpu3 {
        type    kni
        cpu_id  3
        port    bond0 {
            rx_queue_ids     2
            tx_queue_ids     2
        }
    }
}

ipvs_defs {
    conn {
        <init> conn_pool_size   1048576
        <init> redirect         on
    }
}

sa_pool {
    <init> flow_enable      off
}
"#;

    /// The line (1-based) of `text` where `needle` first appears.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle:?} not in the text"))
    }

    /// Whether `w` has the warning `msg` (its start) on the line where `needle` is.
    fn has(w: &[String], text: &str, needle: &str, msg: &str) -> bool {
        let want = format!("d.conf:{}: warning: {msg}", line_of(text, needle));
        w.iter().any(|l| l.starts_with(&want))
    }

    fn pci(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn single_nic_maps_and_passes_check_config_once_filled() {
        let c = convert("dpvs.conf", SINGLE);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        let t = &c.toml;
        for want in [
            "steering = \"auto\"",
            "main_lcore = 0",
            "lcores = [1, 2]",
            "mbufs = 262143",
            "cache = 256",
            "name = \"dpdk0\"",
            "pci = \"PCI-ADDRESS-OF-dpdk0\"",
            "rx_desc = 1024",
            "tx_desc = 1024",
            "rss = true",
            "mtu = 1500",
            "promiscuous = true",
            "pool_size = 1048576",
            "uoa_max_trail = 3",
            "established = 90",
            "syn_recv = 30",
            "fin_wait = 7",
            "udp = 300",
            "reachable_ms = 60000",
            "mss_v4 = 1452",
            "mss_v6 = 1432",
            "wscale = 7",
            "timestamps = false",
            "ack_storm_thresh = 10",
        ] {
            assert!(t.contains(want), "{want:?} missing from\n{t}");
        }
        // Not filled in: refused, naming the port and the problem.
        let err = Config::parse("out.toml", t).expect_err("a placeholder is no PCI address").to_string();
        assert!(err.contains("port[0].pci: \"PCI-ADDRESS-OF-dpdk0\" is not a PCI address"), "{err}");
        // Filled in: what `rvsd --check-config OUT --other-host` runs accepts it.
        let filled = fill_placeholders(t, &pci(&[("dpdk0", "0000:3b:00.0")]));
        let cfg = Config::parse("out.toml", &filled).unwrap_or_else(|e| panic!("{e}\n{filled}"));
        assert_eq!(cfg.ports[0].pci.as_deref(), Some("0000:3b:00.0"));
        assert_eq!(cfg.workers.lcores, vec![1, 2]);
        assert_eq!(cfg.ports[0].rx_desc, 1024);
        assert!(!cfg.synproxy.timestamps);
        assert_eq!(cfg.timeouts.established, 90);
        assert!(cfg.warnings("out.toml").is_empty());
    }

    #[test]
    fn single_nic_warns_about_what_it_cannot_carry_over() {
        let c = convert("dpvs.conf", SINGLE);
        let w = warnings(&c);
        for (needle, want) in [
            ("log_level", "global_defs.log_level: rvsd takes its log level from the environment: RVS_LOG=info"),
            ("lldp", "global_defs.lldp: "),
            (
                "device dpdk0",
                "netif_defs.device dpdk0: its PCI address is not in dpvs.conf: replace PCI-ADDRESS-OF-dpdk0 in \
                 port dpdk0 (dpdk-devbind.py --status",
            ),
            ("1000", "netif_defs.device dpdk0.rx.descriptor_number: rvsd takes powers of two: 1024 set for 1000"),
            ("mbuf_fast_free", "netif_defs.device dpdk0.tx.mbuf_fast_free: "),
            ("unres_queue_length", "neigh_defs.unres_queue_length: "),
            ("conn_pool_cache", "ipvs_defs.conn.conn_pool_cache: "),
            ("conn_init_timeout", "ipvs_defs.conn.conn_init_timeout: "),
            ("uoa_mode", "ipvs_defs.udp.uoa_mode: rvsd sets UOA per service: `uoa = \"opp\"`"),
            ("oneway", "ipvs_defs.udp.timeout.oneway: rvsd has one UDP timeout"),
            ("last        3", "ipvs_defs.udp.timeout.last: "),
            ("last        2", "ipvs_defs.tcp.timeout.last: "),
            ("ttl             63", "ipvs_defs.tcp.synproxy.synack_options.ttl: "),
            ("sack", "ipvs_defs.tcp.synproxy.synack_options.sack: "),
            ("rs_syn_max_retry", "ipvs_defs.tcp.synproxy.rs_syn_max_retry: "),
            ("max_ack_saved", "ipvs_defs.tcp.synproxy.max_ack_saved: "),
            ("conn_reuse_state", "ipvs_defs.tcp.synproxy.conn_reuse_state: "),
            ("pool_hash_size", "sa_pool.pool_hash_size: "),
        ] {
            assert!(has(&w, SINGLE, needle, want), "no warning {want:?} in\n{}", w.join("\n"));
        }
        // Mapped items are not warned about; matching queue ids and counts are mapped.
        for quiet in ["queue_number", "rx_queue_ids", "tx_queue_ids", "pktpool_size", "mss:", "kni_name", ".mtu"] {
            assert!(!w.iter().any(|l| l.contains(quiet)), "{quiet} warned: {w:?}");
        }
        // Every warning is a comment in the output too.
        for d in &c.diagnostics {
            assert!(c.toml.contains(&format!("# line {}: {}", d.line, d.message)), "{} not in\n{}", d.message, c.toml);
        }
        // Near their section: the mbuf_fast_free note is in dpdk0's port table.
        let port = c.toml.find("[[port]]").unwrap();
        let conn = c.toml.find("[conn]").unwrap();
        let note = c.toml.find("mbuf_fast_free").unwrap();
        assert!(port < note && note < conn, "{}", c.toml);
    }

    #[test]
    fn bonded_pair_maps_to_one_bond_port() {
        let c = convert("dpvs.conf", BONDED);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        let t = &c.toml;
        assert!(
            t.contains(
                "bond = { mode = \"lacp\", slaves = [\"PCI-ADDRESS-OF-dpdk0\", \"PCI-ADDRESS-OF-dpdk1\"], primary = 0 }"
            ),
            "{t}"
        );
        assert_eq!(t.matches("[[port]]").count(), 1, "the slaves are no ports of their own: {t}");
        assert!(t.contains("steering = \"redirect\""), "{t}");
        assert!(t.contains("pool_size = 524288"), "per worker (two workers): {t}");
        assert!(t.contains("rx_desc = 2048"), "from the primary slave: {t}");
        let w = warnings(&c);
        for want in [
            "netif_defs.device dpdk0: its PCI address is not in dpvs.conf: replace PCI-ADDRESS-OF-dpdk0 in port bond0's bond slaves",
            "netif_defs.device dpdk1: its PCI address is not in dpvs.conf: replace PCI-ADDRESS-OF-dpdk1",
            "netif_defs.device dpdk0.rx.queue_number: rvsd gives every port one queue per worker (2); 3 not used",
            "netif_defs.device dpdk1.rx.descriptor_number: rvsd configures bond bond0 from its primary slave dpdk0",
            "netif_defs.device dpdk0.kni_name: a bond slave has no twin in rvsd; the bond's is bond0.kni",
            "netif_defs.bonding bond0.numa_node: ",
            "netif_defs.bonding bond0.options: dedicated_queues=off: rvsd uses no dedicated LACP queues",
            "worker_defs.worker cpu3: rvsd has no KNI worker",
            "global_defs.log_level: rvsd takes its log level from the environment: RVS_LOG=warn",
        ] {
            assert!(w.iter().any(|l| l.contains(want)), "no warning {want:?} in\n{}", w.join("\n"));
        }
        assert!(!w.iter().any(|l| l.contains("redirect:")), "redirect on with flow off is steering: {w:?}");
        let err = Config::parse("out.toml", t).expect_err("placeholders").to_string();
        assert!(err.contains("port[0].bond.slaves[0]: \"PCI-ADDRESS-OF-dpdk0\" is neither"), "{err}");
        let filled = fill_placeholders(t, &pci(&[("dpdk0", "0000:3b:00.0"), ("dpdk1", "0000:3b:00.1")]));
        let cfg = Config::parse("out.toml", &filled).unwrap_or_else(|e| panic!("{e}\n{filled}"));
        let bond = cfg.ports[0].bond.as_ref().expect("a bond");
        assert_eq!(bond.slaves, vec!["0000:3b:00.0", "0000:3b:00.1"]);
        assert_eq!(bond.mode, crate::config::BondModeConf::Lacp);
        assert_eq!(cfg.workers.lcores, vec![1, 2]);
        assert_eq!(cfg.steering, crate::steering::Steering::Redirect);
    }

    #[test]
    fn kni_off_and_odd_queues_and_unsupported_modes() {
        let text = r#"
global_defs {
    kni off
}
netif_defs {
    device dpdk0 {
        rx { queue_number 1 }
    }
    device dpdk1 { }
    device dpdk2 { }
    bonding bond0 {
        mode 6
        slave dpdk1
        slave dpdk2
    }
}
worker_defs {
    worker cpu1 {
        cpu_id 1
        port dpdk0 {
            rx_queue_ids 0 1
            tx_queue_ids 0
        }
    }
}
"#;
        let c = convert("d.conf", text);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        assert_eq!(c.toml.matches("twin = \"none\"").count(), 2, "{}", c.toml);
        let w = warnings(&c);
        assert!(has(&w, text, "mode 6", "netif_defs.bonding bond0.mode: rvsd has no mode 6"), "{w:?}");
        let queues = "worker_defs.worker cpu1.port dpdk0.rx_queue_ids: rvsd assigns the queues itself: worker 0 \
                      (lcore 1) uses receive queue 0 of every port; queues 0 1 are not kept";
        assert!(has(&w, text, "rx_queue_ids 0 1", queues), "{w:?}");
        assert!(!w.iter().any(|l| l.contains("tx_queue_ids")), "{w:?}");
        assert!(!w.iter().any(|l| l.contains("queue_number")), "one worker, one queue: {w:?}");
        // The mode the operator must choose makes the file fail until chosen.
        let filled = fill_placeholders(
            &c.toml,
            &pci(&[("dpdk0", "0000:3b:00.0"), ("dpdk1", "0000:3b:00.1"), ("dpdk2", "0000:3b:00.2")]),
        );
        let err = Config::parse("out.toml", &filled).expect_err("CHOOSE-A-MODE").to_string();
        assert!(err.contains("CHOOSE-A-MODE"), "{err}");
        let chosen = filled.replace("CHOOSE-A-MODE", "active-backup");
        Config::parse("out.toml", &chosen).unwrap_or_else(|e| panic!("{e}\n{chosen}"));
    }

    /// Every item of DPVS's item list (conf/dpvs.conf.items) is known: mapped or warned,
    /// none an error, none falling through the mapping.
    #[test]
    fn every_dpvs_item_is_recognised() {
        let text = r#"
global_defs {
    daemon
    log_level DEBUG
    log_file /var/log/dpvs.log
    log_with_timestamp on
    log_async_mode off
    log_async_pool_size 16383
    pdump off
    kni on
    lldp on
}
netif_defs {
    pktpool_size 65535
    pktpool_cache 256
    fdir_mode signature
    device dpdk0 {
        rx {
            max_burst_size 32
            queue_number 1
            descriptor_number 256
            rss tcp
        }
        tx {
            queue_number 1
            descriptor_number 512
            mbuf_fast_free off
        }
        mtu 9000
        promisc_mode
        allmulticast
        kni_name eth0.kni
    }
    device dpdk1 { }
    device dpdk2 { }
    bonding bond0 {
        mode 1
        slave dpdk1
        slave dpdk2
        primary dpdk2
        numa_node 0
        kni_name bond0.kni
        options dedicated_queues=on
    }
}
worker_defs {
    worker cpu0 { type master
        cpu_id 0 }
    worker cpu1 {
        type slave
        cpu_id 1
        icmp_redirect_core
        port dpdk0 {
            rx_queue_ids 0
            tx_queue_ids 0
            isol_rx_cpu_ids 8
            isol_rxq_ring_sz 1048576
        }
    }
}
timer_defs { schedule_interval 500 }
neigh_defs {
    unres_queue_length 128
    timeout 60
}
ipset_defs { ipset_hash_pool_size 131072 }
ipv4_defs {
    forwarding off
    default_ttl 64
    fragment {
        bucket_number 4096
        bucket_entries 16
        max_entries 4096
        ttl 1
    }
}
ipv6_defs {
    disable off
    forwarding off
    addr_gen_mode eui64
    stable_secret ""
    route6 {
        method "hlist"
        recycle_time 10
        lpm {
            lpm6_max_rules 1024
            lpm6_num_tbl8s 16384
            rt6_hash_bucket 256
        }
    }
}
ctrl_defs {
    lcore_msg {
        ring_size 4096
        sync_msg_timeout_us 2000
        priority_level low
    }
}
ipvs_defs {
    conn {
        conn_pool_size 2097152
        conn_pool_cache 256
        conn_init_timeout 3
        expire_quiescent_template
        fast_xmit_close
        xmit_ttl
        redirect off
    }
    udp {
        defence_udp_drop
        uoa_mode ipo
        uoa_max_trail 3
        timeout {
            oneway 300
            last 3
        }
    }
    tcp {
        defence_tcp_drop
        timeout {
            none 2
            established 90
            syn_sent 3
            syn_recv 30
            fin_wait 7
            time_wait 7
            close 3
            close_wait 7
            last_ack 7
            listen 120
            synack 30
            last 2
        }
        synproxy {
            synack_options {
                mss 1452
                ttl 63
                sack
                wscale 0
                timestamp
            }
            close_client_window
            defer_rs_syn
            rs_syn_max_retry 3
            ack_storm_thresh 10
            max_ack_saved 3
            conn_reuse_state {
                close
                time_wait
                fin_wait
                close_wait
                last_ack
            }
        }
    }
}
sa_pool {
    pool_hash_size 16
    flow_enable on
}
include /etc/dpvs.d/*.conf
"#;
        let c = convert("d.conf", text);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        let w = warnings(&c);
        assert!(!w.iter().any(|l| l.contains("a gap in --from-dpvs")), "{}", w.join("\n"));
        for want in [
            "steering = \"signature\"",
            "timestamps = true",
            "udp = 300",
            "mtu = 9000",
            "twin = \"tap\"",
            "primary = 1",
            "mode = \"active-backup\"",
            "wscale = 0",
            "none = 2",
            "synack = 30",
        ] {
            assert!(c.toml.contains(want), "{want:?} missing from\n{}", c.toml);
        }
        for want in [
            "global_defs.daemon: ",
            "netif_defs.device dpdk0.rx.rss: rvsd's RSS hashes",
            "netif_defs.device dpdk0.kni_name: rvsd names the twin dpdk0.kni, not eth0.kni",
            "ipv4_defs.fragment: rvsd forwards fragments",
            "ipv6_defs.route6: ",
            "ctrl_defs.lcore_msg: ",
            "ipvs_defs.conn.redirect: rvsd's redirect cannot be turned off",
        ] {
            assert!(w.iter().any(|l| l.contains(want)), "no warning {want:?} in\n{}", w.join("\n"));
        }
        assert!(has(&w, text, "include /etc", "include: the included file is not read"), "{w:?}");
        assert!(c.toml.contains("expire_quiescent_template = true"), "{}", c.toml);
        let filled = fill_placeholders(
            &c.toml,
            &pci(&[("dpdk0", "0000:3b:00.0"), ("dpdk1", "0000:3b:00.1"), ("dpdk2", "0000:3b:00.2")]),
        );
        Config::parse("out.toml", &filled).unwrap_or_else(|e| panic!("{e}\n{filled}"));
    }

    #[test]
    fn malformed_files_are_errors_naming_the_line() {
        let cases: &[(&str, &str)] = &[
            // An unclosed block: reported at the line that opened it.
            ("netif_defs {\n    pktpool_size 65535\n", "d.conf:1: error: this block is not closed"),
            ("global_defs {\n}\n}\n", "d.conf:3: error: `}` closes no block"),
            ("{\n}\n", "d.conf:1: error: `{` opens a block without a keyword"),
            // Keywords DPVS does not have.
            (
                "netif_defs {\n    pktpool_sise 65535\n}\n",
                "d.conf:2: error: unknown keyword `pktpool_sise` in netif_defs",
            ),
            ("frobnicate_defs {\n}\n", "d.conf:1: error: unknown keyword `frobnicate_defs` at the top level"),
            (
                "netif_defs {\n  device dpdk0 {\n    rx {\n      queues 4\n    }\n  }\n}\n",
                "d.conf:4: error: unknown keyword `queues` in netif_defs.device dpdk0.rx",
            ),
            // A value missing, a block where a value is expected, and the reverse.
            ("netif_defs {\n    pktpool_size\n}\n", "d.conf:2: error: netif_defs.pktpool_size: a value is missing"),
            (
                "netif_defs {\n    pktpool_size {\n    }\n}\n",
                "d.conf:2: error: netif_defs.pktpool_size: a block where a value is expected",
            ),
            ("netif_defs {\n    device dpdk0\n}\n", "d.conf:2: error: netif_defs.device dpdk0: a block"),
            ("netif_defs {\n    device {\n    }\n}\n", "d.conf:2: error: netif_defs.device : a name is missing"),
            ("global_defs {\n    log_file \"/var/log\n}\n", "d.conf:2: error: a quoted word is not closed"),
            // Values DPVS would refuse.
            (
                "netif_defs {\n    pktpool_size many\n}\n",
                "d.conf:2: error: netif_defs.pktpool_size: \"many\" is not a number",
            ),
            ("global_defs {\n    kni maybe\n}\n", "d.conf:2: error: global_defs.kni: \"maybe\" is neither on nor off"),
        ];
        for (text, want) in cases {
            let c = convert("d.conf", text);
            assert!(c.has_errors(), "{text:?}: no error");
            let e = errors(&c);
            assert!(e.iter().any(|l| l.starts_with(want)), "{text:?}: expected {want:?}, got {e:?}");
        }
        // A hostile nesting depth is an error, not a stack overflow.
        let deep = "global_defs {\n".repeat(10_000);
        assert!(errors(&convert("d.conf", &deep)).iter().any(|e| e.contains("nested more than")));
    }

    #[test]
    fn lexer_drops_comments_and_keeps_quoted_words() {
        let mut d = Vec::new();
        let toks = lex("a <x, y> b ! c\n# all\n\"q r\" {x}\n", &mut d);
        let words: Vec<&Tok> = toks.iter().map(|(t, _)| t).filter(|t| **t != Tok::Eol).collect();
        assert_eq!(
            words,
            vec![
                &Tok::Word("a".into()),
                &Tok::Word("b".into()),
                &Tok::Word("q r".into()),
                &Tok::Open,
                &Tok::Word("x".into()),
                &Tok::Close
            ]
        );
        assert!(d.is_empty());
    }
}
