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
//! The values are the ones DPVS ran: rounded down as DPVS rounds them, DPVS's default
//! where DPVS refuses the value (with a warning naming both), and DPVS's default, with a
//! comment, for what the file does not set.
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
    /// The file the line is in, when it is not the one converted (an `include`d one).
    pub file: Option<String>,
    /// Warning or error.
    pub level: Level,
    /// `<dpvs path>: <why>`.
    pub message: String,
}

impl Diagnostic {
    /// The diagnostic as printed: `FILE:LINE: warning: message`, the form compilers use,
    /// which editors can jump to.
    pub fn render(&self, file: &str) -> String {
        format!("{}:{}: {}: {}", self.file.as_deref().unwrap_or(file), self.line, self.level, self.message)
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
    run(file, text, None)
}

/// Converts a DPVS configuration file as read from disk. A file that is not UTF-8 (a
/// comment in GBK or Latin-1) is decoded anyway, each undecodable sequence becoming
/// U+FFFD, with a warning naming the first line that has one; a keyword or value hit is
/// then reported as such.
pub fn convert_bytes(file: &str, bytes: &[u8]) -> Conversion {
    match std::str::from_utf8(bytes) {
        Ok(text) => run(file, text, None),
        Err(e) => {
            let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
            let line = lines(&valid).count();
            run(file, &String::from_utf8_lossy(bytes), Some(line))
        }
    }
}

/// How deep `include`s may nest (DPVS has no limit: a file including itself recurses
/// until it crashes).
const INCLUDE_DEPTH: usize = 8;

/// Converts the DPVS configuration file at `path` with the files its `include` lines
/// name read in their place, as DPVS reads them: anywhere in the file (inside blocks
/// too), a line of exactly `include PATTERN`, the pattern a glob relative to the
/// including file's directory, its matches in order. A pattern matching nothing is a
/// warning (DPVS reads nothing, silently); a file that cannot be read is an error, and so
/// is nesting deeper than 8 (`INCLUDE_DEPTH`). Findings name the file their line is in.
pub fn convert_path(path: &std::path::Path) -> Conversion {
    let mut text = String::new();
    let mut origins = Vec::new();
    let mut diags = Vec::new();
    let mut bad_line = None;
    let top = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut out =
                Expansion { text: &mut text, origins: &mut origins, diags: &mut diags, bad_line: &mut bad_line };
            expand(path, &bytes, None, &mut vec![path.to_path_buf()], &mut out);
        }
        Err(e) => diags.push(error(0, format!("cannot read {top}: {e}"))),
    }
    // (The comments on DPVS's defaults say what they were absent from.)
    let read = if origins.iter().any(|(f, _)| f.is_some()) { format!("{top} and its includes") } else { top };
    let mut c = run(&read, &text, bad_line);
    // Back from the lines of the expanded text to the files they were read from.
    let place = |line: usize| origins.get(line.wrapping_sub(1)).cloned().unwrap_or((None, line));
    for d in &mut c.diagnostics {
        (d.file, d.line) = place(d.line);
    }
    c.diagnostics.extend(diags);
    // The top file's findings first, then each included file's, each by line.
    c.diagnostics.sort_by(|x, y| (&x.file, x.line).cmp(&(&y.file, y.line)));
    c.toml = c
        .toml
        .lines()
        .map(|l| match l.strip_prefix("# line ").and_then(|r| r.split_once(": ")) {
            Some((n, rest)) => match n.parse::<usize>().ok().map(place) {
                Some((Some(f), n)) => format!("# {f} line {n}: {rest}\n"),
                Some((None, n)) => format!("# line {n}: {rest}\n"),
                None => format!("{l}\n"),
            },
            None => format!("{l}\n"),
        })
        .collect();
    c
}

/// The warning on a file that is not UTF-8, at its first such line.
const NOT_UTF8: &str = "the file is not UTF-8; this is its first line that is not (a GBK or Latin-1 comment?): \
                        every undecodable byte sequence was read as U+FFFD (a keyword or value with one is \
                        reported as such)";

/// Where [`expand`] writes: the expanded text, per line of it the file it came from
/// (`None`: the top one) and its line there, findings about includes, and the top file's
/// first line that was not UTF-8.
struct Expansion<'a> {
    text: &'a mut String,
    origins: &'a mut Vec<(Option<String>, usize)>,
    diags: &'a mut Vec<Diagnostic>,
    bad_line: &'a mut Option<usize>,
}

/// The pattern of `line` if it is an `include` line as DPVS's tokenizer sees one: the
/// word `include` and one more, comments aside (DPVS makes each `"` and brace a token of
/// its own, so `include "x.conf"` is no include for it).
fn include_pattern(line: &str) -> Option<&str> {
    let code = line.split(['!', '#']).next().unwrap_or_default();
    match code.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["include", p] if !p.contains(['"', '{', '}']) => Some(p),
        _ => None,
    }
}

/// Appends file `path` (read as `bytes`; `name`: how findings name it, `None` for the
/// top file) to the expansion, its `include` lines replaced by what they name; `chain`:
/// the files being read, outermost first (a file including one of them is refused).
fn expand(
    path: &std::path::Path,
    bytes: &[u8],
    name: Option<String>,
    chain: &mut Vec<std::path::PathBuf>,
    out: &mut Expansion,
) {
    let text = String::from_utf8_lossy(bytes);
    let invalid =
        std::str::from_utf8(bytes).err().map(|e| lines(&String::from_utf8_lossy(&bytes[..e.valid_up_to()])).count());
    let dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let at = |i: usize, d: Diagnostic| Diagnostic { file: name.clone(), line: i, ..d };
    if let (Some(line), Some(_)) = (invalid, &name) {
        out.diags.push(at(line, warning(0, format!("encoding: {NOT_UTF8}"))));
    }
    // DPVS reads an included file as a whole: its braces must balance within it.
    if name.is_some() {
        let toks = lex(text, &mut Vec::new());
        let depth = toks.iter().try_fold(0i64, |d, (t, _)| match t {
            Tok::Open => Some(d + 1),
            Tok::Close => (d > 0).then(|| d - 1),
            _ => Some(d),
        });
        if depth != Some(0) {
            out.diags.push(at(0, error(0, "its braces do not balance: DPVS reads an included file on its own")));
        }
    }
    for (i, line) in lines(text).enumerate() {
        if invalid == Some(i + 1) && name.is_none() {
            *out.bad_line = Some(out.origins.len() + 1);
        }
        let Some(pattern) = include_pattern(line) else {
            out.text.push_str(line);
            out.text.push('\n');
            out.origins.push((name.clone(), i + 1));
            continue;
        };
        if chain.len() > INCLUDE_DEPTH {
            out.diags
                .push(at(i + 1, error(0, format!("include {pattern}: includes nest deeper than {INCLUDE_DEPTH}"))));
            continue;
        }
        // A relative pattern is DPVS's from the including file's directory (it changes
        // into it), whose name is no pattern; dotfiles (editors' backups) match only
        // when named, as with glibc's glob.
        let full = match std::path::Path::new(pattern).is_absolute() {
            true => pattern.to_string(),
            false => format!("{}/{pattern}", glob::Pattern::escape(&dir.to_string_lossy())),
        };
        let opts = glob::MatchOptions { require_literal_leading_dot: true, ..glob::MatchOptions::new() };
        let matches: Vec<std::path::PathBuf> = match glob::glob_with(&full, opts) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                out.diags.push(at(i + 1, error(0, format!("include {pattern}: not a pattern DPVS's glob takes: {e}"))));
                continue;
            }
        };
        if matches.is_empty() {
            out.diags.push(at(i + 1, warning(0, format!("include {pattern}: no file matches (DPVS reads nothing)"))));
        }
        for m in matches {
            let shown = printable(&m.display().to_string());
            let same = |c: &std::path::PathBuf| std::fs::canonicalize(c).ok() == std::fs::canonicalize(&m).ok();
            if chain.iter().any(same) {
                out.diags.push(at(i + 1, error(0, format!("include {pattern}: {shown} includes itself"))));
                continue;
            }
            if m.is_dir() {
                out.diags.push(at(
                    i + 1,
                    warning(0, format!("include {pattern}: {shown} is a directory (DPVS reads nothing from it)")),
                ));
                continue;
            }
            match std::fs::read(&m) {
                Ok(b) => {
                    chain.push(m.clone());
                    expand(&m, &b, Some(shown), chain, out);
                    chain.pop();
                }
                Err(e) => out.diags.push(at(i + 1, error(0, format!("include {pattern}: cannot read {shown}: {e}")))),
            }
        }
    }
}

/// The conversion; `bad_line`: the first line that was not UTF-8.
fn run(file: &str, text: &str, bad_line: Option<usize>) -> Conversion {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut diags = Vec::new();
    let toks = lex(text, &mut diags);
    let items = Parser { toks: &toks, pos: 0, diags: &mut diags }.items(None, 0);
    let nodes = validate(items, "", "", None, &mut diags);
    let mut c = Conv { file: file.to_string(), diags, ..Conv::default() };
    if let Some(line) = bad_line {
        c.warn(Bucket::Top, line, "encoding", NOT_UTF8);
    }
    c.visit(&nodes, &mut |c, n| c.item(n));
    c.finish();
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

/// An error; control characters of the file's words in it are escaped.
fn error(line: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic { line, file: None, level: Level::Error, message: printable(&message.into()) }
}

/// A warning; control characters of the file's words in it are escaped.
fn warning(line: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic { line, file: None, level: Level::Warning, message: printable(&message.into()) }
}

/// The lines of `text`: each ends at `\n`, `\r\n` or a lone `\r` (DPVS ends a line at
/// either character).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\n', '\r']) {
            Some(i) => {
                let next = if s[i..].starts_with("\r\n") { i + 2 } else { i + 1 };
                rest = Some(&s[next..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// Splits the file into words, braces and line ends. `!` or `#` at the start of a word
/// begins a comment to the end of the line, `<` one to the next `>` (DPVS's range
/// notes); `"..."` is one word (possibly empty); `{` and `}` are tokens of their own.
fn lex(text: &str, diags: &mut Vec<Diagnostic>) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    for (i, raw) in lines(text).enumerate() {
        let line = i + 1;
        let s: Vec<char> = raw.chars().collect();
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
    ("ipvs_defs.tcp.synproxy.conn_reuse_state", Shape::Block, ""),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.close", Shape::Flag, ""),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.time_wait", Shape::Flag, ""),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.fin_wait", Shape::Flag, REUSE_NOTE),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.close_wait", Shape::Flag, REUSE_NOTE),
    ("ipvs_defs.tcp.synproxy.conn_reuse_state.last_ack", Shape::Flag, REUSE_NOTE),
    ("sa_pool", Shape::Block, ""),
    (
        "sa_pool.pool_hash_size",
        Shape::Value,
        "no equivalent: a local port's worker is a function of the port (`steering`); nothing to size",
    ),
    ("sa_pool.flow_enable", Shape::Value, ""),
];

/// The note of a `conn_reuse_state` other than `close` and `time_wait`.
const REUSE_NOTE: &str = "rvsd reuses only CLOSE and TIME_WAIT connections for a client's new SYN (`conn_reused`, \
                          as DPVS by default); a connection in this state is not reused; not settable";

/// The note of an `include` item left in the text: converted without its files
/// ([`convert`]; `rvsd --from-dpvs FILE` reads them, [`convert_path`]), or a line DPVS
/// does not take as an include.
const INCLUDE_NOTE: &str =
    "the included file is not read here: `rvsd --from-dpvs FILE` reads a line of two plain words \
                            `include PATTERN`, as DPVS does (not a quoted name, nor one beside a brace)";

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

/// One `key = value` line, with the comment that ends it (where the value comes from,
/// when not from the file).
#[derive(Debug)]
struct Entry {
    key: String,
    value: String,
    comment: Option<String>,
}

/// An ordered set of `key = value` lines (values already in TOML).
#[derive(Debug, Default)]
struct Table(Vec<Entry>);

impl Table {
    fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.value = value;
                e.comment = None;
            }
            None => self.0.push(Entry { key: key.to_string(), value, comment: None }),
        }
    }

    /// Sets `key` unless something set it already, ending the line with `comment`.
    fn or_else(&mut self, key: &str, value: impl Into<String>, comment: &str) {
        if self.get(key).is_none() {
            self.0.push(Entry { key: key.to_string(), value: value.into(), comment: Some(comment.to_string()) });
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|e| e.key == key).map(|e| e.value.as_str())
    }
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `s` fit for a `#` comment (and a terminal): control characters other than tab, which
/// TOML forbids in comments, escaped (`\u{1}`).
fn printable(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return s.to_string();
    }
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

// DPVS's ranges and defaults, as its keyword handlers apply them (a value outside the
// range is logged as "invalid ..., using default" and the default runs).

/// A number DPVS takes within `lo..=hi`, running `default` for any other.
#[derive(Debug, Clone, Copy)]
struct Range {
    lo: i64,
    hi: i64,
    default: u64,
}

/// `pktpool_size` (netif.c), rounded down to 2^n - 1.
const PKTPOOL_SIZE: Range = Range { lo: 1023, hi: 134_217_727, default: 65_535 };
/// `pktpool_cache` (netif.c), rounded down to 2^n.
const PKTPOOL_CACHE: Range = Range { lo: 32, hi: 8192, default: 256 };
/// `rx { descriptor_number }` (netif.c), rounded down to 2^n.
const RX_DESC: Range = Range { lo: 16, hi: 8192, default: 256 };
/// `tx { descriptor_number }` (netif.c), rounded down to 2^n.
const TX_DESC: Range = Range { lo: 16, hi: 8192, default: 512 };
/// A device's `mtu` (netif.c).
const MTU: Range = Range { lo: 1, hi: 9000, default: 1500 };
/// `conn_pool_size` (ip_vs_conn.c; read as a C int), rounded down to 2^n - 1.
const CONN_POOL_SIZE: Range = Range { lo: 65_536, hi: i32::MAX as i64, default: 2_097_151 };
/// `neigh_defs timeout` (neigh.c), seconds.
const NEIGH_TIMEOUT: Range = Range { lo: 1, hi: 3600, default: 60 };
/// `synack_options mss` (ip_vs_synproxy.c).
const SYNACK_MSS: Range = Range { lo: 1, hi: 65_535, default: 1452 };
/// `ack_storm_thresh` (ip_vs_synproxy.c).
const ACK_STORM_THRESH: Range = Range { lo: 1, hi: 999, default: 10 };
/// A TCP or UDP timeout: more than 0 and less than a year (ipvs.h); the default is the state's.
const fn timeout(default: u64) -> Range {
    Range { lo: 1, hi: 31_535_999, default }
}
/// DPVS's TCP timeouts (ip_vs_proto_tcp.c) of the states rvsd has a `[timeouts]` key for.
const TCP_TIMEOUTS: &[(&str, u64)] = &[
    ("none", 2),
    ("established", 90),
    ("syn_sent", 3),
    ("syn_recv", 30),
    ("fin_wait", 7),
    ("time_wait", 7),
    ("close", 3),
    ("close_wait", 7),
    ("last_ack", 7),
    ("listen", 120),
    ("synack", 30),
];
/// DPVS's UDP timeouts, `oneway` and `normal` alike (ip_vs_proto_udp.c).
const UDP_TIMEOUT: u64 = 300;
/// The largest `synack_options wscale` DPVS takes; above it, its wscale stays off.
const SYNACK_WSCALE_MAX: i64 = 14;

/// The largest power of two not above `v` (0 for 0): DPVS's rounding of descriptor
/// counts and caches.
fn pow2_floor(v: u64) -> u64 {
    if v == 0 {
        0
    } else {
        1 << v.ilog2()
    }
}

/// The largest 2^n - 1 not above `v`: DPVS's rounding of pool sizes.
fn pow2_minus1_floor(v: u64) -> u64 {
    pow2_floor(v.saturating_add(1)) - 1
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
    mode: Option<String>,
    slaves: Vec<(String, usize)>,
    /// The primary slave, with the line naming it.
    primary: Option<(String, usize)>,
    kni_name: Option<(String, usize, String)>,
}

/// The bond `dev` is a slave of.
fn bond_of<'a>(bonds: &'a [Bond], dev: &str) -> Option<&'a Bond> {
    bonds.iter().find(|b| b.slaves.iter().any(|(s, _)| s == dev))
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
    /// The DPVS file's name, for the comments on DPVS's defaults.
    file: String,
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
    fdir: Option<String>,
    flow: Option<bool>,
    redirect: Option<(bool, usize, String)>,
    /// The connection pool DPVS ran (per NUMA socket), with its item.
    conn_pool: Option<(u64, usize, String)>,
    /// The UDP timeouts DPVS ran, when the file sets them.
    udp_normal: Option<u64>,
    udp_oneway: Option<(u64, usize, String)>,
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
        let w = warning(line, format!("{shown}: {why}"));
        self.notes.push((bucket, line, w.message.clone()));
        self.diags.push(w);
    }

    fn fail(&mut self, line: usize, msg: impl Into<String>) {
        self.diags.push(error(line, msg));
    }

    /// The comment on a value written because the file does not set it.
    fn absent(&self) -> String {
        format!("DPVS's default (absent from {})", self.file)
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

    /// The note of an item [`SPECS`] has but the mapping does not: the test walking
    /// [`SPECS`] through the mapping keeps it unreachable.
    fn gap(&mut self, n: &Node) {
        self.note(n, "not converted by this rvsd (a gap in --from-dpvs)");
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

    /// The number DPVS ran for `n`: its value within DPVS's range, otherwise DPVS's
    /// default, with a warning naming both (DPVS logs "invalid ..., using default" and
    /// goes on). Not a number: an error naming the item.
    fn dpvs_num(&mut self, n: &Node, r: Range) -> Option<u64> {
        let Ok(v) = n.value().parse::<i64>() else {
            self.fail(n.line, format!("{}: {:?} is not a number", n.shown, n.value()));
            return None;
        };
        if let Some(v) = u64::try_from(v).ok().filter(|_| (r.lo..=r.hi).contains(&v)) {
            return Some(v);
        }
        self.note(
            n,
            format!(
                "DPVS refuses {v} (it takes {}..={}) and runs its default, {}: {} converted",
                r.lo, r.hi, r.default, r.default
            ),
        );
        Some(r.default)
    }

    /// The number DPVS ran for a size it rounds down (to 2^n, or to 2^n - 1 with
    /// `minus_one`), with a warning when the rounding changed it.
    fn dpvs_rounded(&mut self, n: &Node, r: Range, minus_one: bool) -> Option<u64> {
        let v = self.dpvs_num(n, r)?;
        let (ran, form) = if minus_one { (pow2_minus1_floor(v), "2^n - 1") } else { (pow2_floor(v), "a power of two") };
        if ran != v {
            self.note(n, format!("DPVS rounds it down to {form}: it ran {ran}, not {v}; {ran} converted"));
        }
        Some(ran)
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
            "global_defs.log_level" => self.log_level(n),
            "global_defs.kni" => self.kni = self.flag(n),
            "netif_defs.pktpool_size" => {
                if let Some(v) = self.dpvs_rounded(n, PKTPOOL_SIZE, true) {
                    self.mempool.set("mbufs", v.to_string());
                }
            }
            "netif_defs.pktpool_cache" => {
                if let Some(v) = self.dpvs_rounded(n, PKTPOOL_CACHE, false) {
                    self.mempool.set("cache", v.to_string());
                }
            }
            "netif_defs.fdir_mode" => match n.value() {
                "perfect" | "signature" => self.fdir = Some(n.value().to_string()),
                v => self.fail(n.line, format!("{}: {v:?} is neither perfect nor signature", n.shown)),
            },
            "netif_defs.device" => self.device(n),
            "netif_defs.bonding" => self.bonding(n),
            "worker_defs.worker" => self.worker(n),
            "neigh_defs.timeout" => {
                if let Some(s) = self.dpvs_num(n, NEIGH_TIMEOUT) {
                    self.neigh.set("reachable_ms", (s * 1000).to_string());
                }
            }
            "ipvs_defs.conn.conn_pool_size" => {
                if let Some(v) = self.dpvs_rounded(n, CONN_POOL_SIZE, true) {
                    self.conn_pool = Some((v, n.line, n.shown.clone()));
                }
            }
            "ipvs_defs.conn.redirect" => {
                if let Some(v) = self.flag(n) {
                    self.redirect = Some((v, n.line, n.shown.clone()));
                }
            }
            "ipvs_defs.conn.expire_quiescent_template" => self.conn.set("expire_quiescent_template", "true"),
            "ipvs_defs.udp.uoa_mode" => self.uoa_mode(n),
            "ipvs_defs.udp.uoa_max_trail" => {
                if let Some(v) = self.num_in(n, 0, 255) {
                    self.conn.set("uoa_max_trail", v.to_string());
                }
            }
            "ipvs_defs.udp.timeout.normal" => self.udp_normal = self.dpvs_num(n, timeout(UDP_TIMEOUT)),
            "ipvs_defs.udp.timeout.oneway" => {
                if let Some(v) = self.dpvs_num(n, timeout(UDP_TIMEOUT)) {
                    self.udp_oneway = Some((v, n.line, n.shown.clone()));
                }
            }
            "ipvs_defs.udp.timeout.last" | "ipvs_defs.tcp.timeout.last" => {
                self.note(n, "DPVS's end-of-table entry, not a state; nothing to set")
            }
            _ if p.starts_with("ipvs_defs.tcp.timeout.") => self.tcp_timeout(n),
            "ipvs_defs.tcp.synproxy.synack_options.mss" => {
                if let Some(v) = self.dpvs_num(n, SYNACK_MSS) {
                    self.synack_mss(Some(n), v);
                }
            }
            "ipvs_defs.tcp.synproxy.synack_options.wscale" => self.synack_wscale(n),
            "ipvs_defs.tcp.synproxy.synack_options.timestamp" => self.synproxy.set("timestamps", "true"),
            "ipvs_defs.tcp.synproxy.ack_storm_thresh" => {
                if let Some(v) = self.dpvs_num(n, ACK_STORM_THRESH) {
                    if v > 255 {
                        self.note(n, format!("{v} is above rvsd's most (255); 255 set"));
                    }
                    self.synproxy.set("ack_storm_thresh", v.min(255).to_string());
                }
            }
            // DPVS's default reuse, and rvsd's: a SYN meeting a CLOSE or TIME_WAIT
            // connection expires it and is scheduled afresh (`conn_reused`).
            "ipvs_defs.tcp.synproxy.conn_reuse_state.close" | "ipvs_defs.tcp.synproxy.conn_reuse_state.time_wait" => {}
            "sa_pool.flow_enable" => self.flow = self.flag(n),
            _ => self.gap(n),
        }
    }

    fn log_level(&mut self, n: &Node) {
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

    fn uoa_mode(&mut self, n: &Node) {
        match n.value() {
            m @ ("opp" | "ipo") => self.note(
                n,
                format!("rvsd sets UOA per service: `uoa = \"{m}\"` on each UDP `[[service]]` (rvsadm --uoa {m})"),
            ),
            v => self.fail(n.line, format!("{}: {v:?} is neither opp nor ipo", n.shown)),
        }
    }

    fn tcp_timeout(&mut self, n: &Node) {
        let state = &n.path["ipvs_defs.tcp.timeout.".len()..];
        let Some(&(key, default)) = TCP_TIMEOUTS.iter().find(|(k, _)| *k == state) else {
            return self.gap(n);
        };
        if let Some(v) = self.dpvs_num(n, timeout(default)) {
            self.timeouts.set(key, v.to_string());
        }
    }

    /// `mss_v4` and `mss_v6` from DPVS's one MSS `v` (from the item `n`, or DPVS's
    /// default when `None`), within rvsd's least values.
    fn synack_mss(&mut self, n: Option<&Node>, v: u64) {
        let v4 = v.max(536);
        let v6 = v.saturating_sub(20).max(1220);
        if v4 != v {
            if let Some(n) = n {
                self.note(n, format!("{v} is below rvsd's least MSS (536); 536 set"));
            }
        }
        let absent = self.absent();
        let v6_why = if v6 == v.saturating_sub(20) {
            "mss_v6: DPVS's one mss less 20 bytes (the larger IPv6 header)"
        } else {
            "mss_v6: DPVS's one mss less 20 bytes is below rvsd's least (1220); 1220 set"
        };
        self.explain.push((Bucket::Synproxy, v6_why.into()));
        if n.is_some() {
            self.synproxy.set("mss_v4", v4.to_string());
            self.synproxy.set("mss_v6", v6.to_string());
        } else {
            self.synproxy.or_else("mss_v4", v4.to_string(), &absent);
            self.synproxy.or_else("mss_v6", v6.to_string(), &absent);
        }
    }

    /// DPVS's wscale 0 (its default) strips the option from the SYN-ACK; rvsd always
    /// answers a client's window scale, so 0 (its own windows unscaled) is the nearest.
    fn synack_wscale(&mut self, n: &Node) {
        let Ok(v) = n.value().parse::<i64>() else {
            return self.fail(n.line, format!("{}: {:?} is not a number", n.shown, n.value()));
        };
        if (1..=SYNACK_WSCALE_MAX).contains(&v) {
            return self.synproxy.set("wscale", v.to_string());
        }
        let what = if v == 0 {
            "DPVS's wscale 0 strips the window scale option from the SYN-ACK (no window scaling)".to_string()
        } else {
            format!(
                "DPVS refuses {v} (it takes 0..={SYNACK_WSCALE_MAX}) and keeps its default, 0: the window scale \
                 option stripped from the SYN-ACK (no window scaling)"
            )
        };
        self.note(
            n,
            format!(
                "{what}; rvsd cannot strip it (it answers every client that offers one): wscale = 0 set, the \
                 nearest (rvsd's windows unscaled, the client's scaled as it asks)"
            ),
        );
        self.synproxy.set("wscale", "0");
    }

    /// A port's name, or an error when a device or bonding has it already.
    fn new_port_name(&mut self, n: &Node) -> Option<String> {
        let name = n.name.clone();
        if self.devices.iter().any(|d| d.name == name) || self.bonds.iter().any(|b| b.name == name) {
            self.fail(n.line, format!("{}: a second port named {name}", n.shown));
            return None;
        }
        Some(name)
    }

    fn device(&mut self, n: &Node) {
        let Some(name) = self.new_port_name(n) else { return };
        self.devices.push(Device { name, line: n.line, ..Device::default() });
        let i = self.devices.len() - 1;
        self.visit(&n.children, &mut |c, m| c.device_item(i, m));
    }

    fn device_item(&mut self, i: usize, n: &Node) {
        let set = |c: &mut Conv, key: &str, v: String| c.devices[i].set.push((key.into(), v, n.line, n.shown.clone()));
        match n.path.as_str() {
            "netif_defs.device.rx.descriptor_number" => {
                if let Some(v) = self.dpvs_rounded(n, RX_DESC, false) {
                    set(self, "rx_desc", v.to_string());
                }
            }
            "netif_defs.device.tx.descriptor_number" => {
                if let Some(v) = self.dpvs_rounded(n, TX_DESC, false) {
                    set(self, "tx_desc", v.to_string());
                }
            }
            "netif_defs.device.rx.queue_number" | "netif_defs.device.tx.queue_number" => {
                if let Some(v) = self.num(n) {
                    self.devices[i].queues.push((v, n.line, n.shown.clone()));
                }
            }
            "netif_defs.device.rx.rss" => match n.value() {
                "all" => set(self, "rss", "true".into()),
                "ip" | "tcp" | "udp" | "sctp" | "ether" | "port" | "tunnel" => {
                    self.note(
                        n,
                        format!(
                            "rvsd's RSS hashes IP addresses and TCP/UDP ports (as far as the NIC can); \
                             `{}` cannot be chosen, rss = true set",
                            n.value()
                        ),
                    );
                    set(self, "rss", "true".into());
                }
                v => self.fail(n.line, format!("{}: {v:?} is no DPVS RSS type", n.shown)),
            },
            "netif_defs.device.mtu" => {
                if let Some(v) = self.dpvs_num(n, MTU) {
                    if v < 68 {
                        self.note(n, format!("{v} is below rvsd's least MTU (68); 68 set"));
                    }
                    set(self, "mtu", v.max(68).to_string());
                }
            }
            "netif_defs.device.promisc_mode" => set(self, "promiscuous", "true".into()),
            "netif_defs.device.kni_name" => {
                self.devices[i].kni_name = Some((n.value().to_string(), n.line, n.shown.clone()));
            }
            _ => self.gap(n),
        }
    }

    fn bonding(&mut self, n: &Node) {
        let Some(name) = self.new_port_name(n) else { return };
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
                if let Some(mode) = self.bond_mode(n) {
                    self.bonds[i].mode = Some(mode.to_string());
                }
            }
            "netif_defs.bonding.slave" => self.bonds[i].slaves.push((n.value().to_string(), n.line)),
            "netif_defs.bonding.primary" => self.bonds[i].primary = Some((n.value().to_string(), n.line)),
            "netif_defs.bonding.kni_name" => {
                self.bonds[i].kni_name = Some((n.value().to_string(), n.line, n.shown.clone()));
            }
            "netif_defs.bonding.options" => self.bond_options(n),
            _ => self.gap(n),
        }
    }

    /// rvsd's bond mode for DPVS's number; `CHOOSE-A-MODE` (with a warning) for the
    /// modes rvsd does not have.
    fn bond_mode(&mut self, n: &Node) -> Option<&'static str> {
        let (mode, what) = match n.value() {
            "0" => return Some("round-robin"),
            "1" => return Some("active-backup"),
            "2" => return Some("balance-xor"),
            "4" => return Some("lacp"),
            "3" => ("3", "broadcast"),
            "5" => ("5", "balance-tlb"),
            "6" => ("6", "balance-alb"),
            v => {
                self.fail(n.line, format!("{}: {v:?} is no bonding mode (0-6)", n.shown));
                return None;
            }
        };
        self.note(
            n,
            format!(
                "rvsd has no mode {mode} ({what}): choose round-robin, active-backup, balance-xor or lacp in place \
                 of CHOOSE-A-MODE"
            ),
        );
        Some("CHOOSE-A-MODE")
    }

    fn bond_options(&mut self, n: &Node) {
        for opt in n.value().split(';').filter(|o| !o.trim().is_empty()) {
            let (k, _) = opt.split_once('=').unwrap_or((opt, ""));
            match k.trim() {
                "dedicated_queues" => self.note(
                    n,
                    format!("{opt}: rvsd uses no dedicated LACP queues (LACPDUs go through the data queues); not set"),
                ),
                _ => self.note(n, format!("{opt}: not a DPVS bonding option (dedicated_queues is); not set")),
            }
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
                    self.workers[i].cpu = u32::try_from(v).ok();
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
            _ => self.gap(n),
        }
    }

    fn worker_port_item(&mut self, i: usize, n: &Node) {
        let dir = match n.path.as_str() {
            "worker_defs.worker.port.rx_queue_ids" => "receive",
            "worker_defs.worker.port.tx_queue_ids" => "transmit",
            _ => return self.gap(n),
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

    /// What needs the whole file: workers and queues, steering, the pools, the UDP
    /// timeout, and DPVS's defaults for what the file does not set.
    fn finish(&mut self) {
        self.finish_workers();
        self.finish_steering();
        self.finish_pools();
        self.finish_timeouts();
        self.finish_synproxy();
    }

    /// DPVS makes its packet pool and its connection pool once per NUMA socket; rvsd
    /// has one packet pool, and a connection pool per worker.
    fn finish_pools(&mut self) {
        let absent = self.absent();
        self.mempool.or_else("mbufs", PKTPOOL_SIZE.default.to_string(), &absent);
        self.mempool.or_else("cache", PKTPOOL_CACHE.default.to_string(), &absent);
        self.explain.push((
            Bucket::Mempool,
            "mbufs: DPVS made a packet pool of this size on each NUMA socket; rvsd has one pool for all ports and \
             workers: where DPVS ran on S sockets, S times this keeps its total"
                .into(),
        ));
        let workers = self.lcores.len().max(1) as u64;
        let (ran, item) = match self.conn_pool.take() {
            Some((v, line, shown)) => (v, Some((line, shown))),
            None => (CONN_POOL_SIZE.default, None),
        };
        let per = ran.div_ceil(workers).clamp(1, u64::from(u32::MAX));
        let why = if workers == 1 {
            format!("DPVS made a pool of {ran} connections on each NUMA socket; its one worker used its socket's")
        } else {
            format!(
                "DPVS made a pool of {ran} connections on each NUMA socket, shared by the workers on that socket; \
                 rvsd's pool_size is per worker: {per} is {ran} / {workers}, which assumes DPVS's {workers} workers \
                 all on one socket (spread over S sockets as DPVS had them, each had about S times this: \
                 raise pool_size to match)"
            )
        };
        match item {
            Some((line, shown)) => {
                self.conn.set("pool_size", per.to_string());
                if workers == 1 {
                    self.explain.push((Bucket::Conn, format!("pool_size: {why}")));
                } else {
                    self.warn(Bucket::Conn, line, &shown, why);
                }
            }
            None => {
                self.conn.or_else("pool_size", per.to_string(), &absent);
                self.explain.push((Bucket::Conn, format!("pool_size: {why}")));
            }
        }
    }

    /// DPVS's TCP timeouts where the file sets none; rvsd's one UDP timeout from DPVS's
    /// `normal`, and a warning when `oneway` differed.
    fn finish_timeouts(&mut self) {
        let absent = self.absent();
        for (key, default) in TCP_TIMEOUTS {
            self.timeouts.or_else(key, default.to_string(), &absent);
        }
        let normal = match self.udp_normal {
            Some(v) => {
                self.timeouts.set("udp", v.to_string());
                v
            }
            None => {
                self.timeouts.or_else("udp", UDP_TIMEOUT.to_string(), &absent);
                UDP_TIMEOUT
            }
        };
        if let Some((v, line, shown)) = self.udp_oneway.take() {
            if v != normal {
                self.warn(
                    Bucket::Timeouts,
                    line,
                    &shown,
                    format!(
                        "DPVS timed a UDP flow that never had a reply at {v} s (oneway), one that had at {normal} s \
                         (normal); rvsd has one UDP timeout, `udp`, set from normal: {v} s is not used"
                    ),
                );
            }
        }
    }

    /// DPVS's SYN-ACK options where the file sets none: MSS 1452, no window scaling,
    /// no timestamps; its ACK storm threshold.
    fn finish_synproxy(&mut self) {
        let absent = self.absent();
        if self.synproxy.get("mss_v4").is_none() {
            self.synack_mss(None, SYNACK_MSS.default);
        }
        self.synproxy.or_else(
            "wscale",
            "0",
            &format!("{absent}: no window scaling; rvsd cannot strip the option, scale 0 is the nearest"),
        );
        self.synproxy.or_else("timestamps", "false", &format!("{absent}: no `timestamp` in synack_options"));
        self.synproxy.or_else("ack_storm_thresh", ACK_STORM_THRESH.default.to_string(), &absent);
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
                    self.worker_queues(w, index, cpu);
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

    /// Warnings for a slave worker's queues that are not rvsd's (worker `index` polls
    /// queue `index` of every port).
    fn worker_queues(&mut self, w: &Worker, index: usize, cpu: u32) {
        for p in &w.ports {
            if !self.devices.iter().any(|d| d.name == p.name) && !self.bonds.iter().any(|b| b.name == p.name) {
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
                            "rvsd assigns the queues itself: worker {index} (lcore {cpu}) uses {dir} queue {index} \
                             of every port; queues {list} are not kept"
                        ),
                    );
                }
            }
        }
    }

    fn finish_steering(&mut self) {
        let steering = match (self.flow, self.fdir.as_deref()) {
            (Some(false), _) => {
                self.explain.push((Bucket::Top, "steering: sa_pool's flow_enable is off: software redirect".into()));
                Some("redirect")
            }
            (_, Some("signature")) => Some("signature"),
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
            match (on, self.flow) {
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

    /// The `[[port]]` tables (a device that is no bond slave, and each bond), with the
    /// devices' notes.
    fn ports(&mut self) -> Vec<(String, Table)> {
        let devices = std::mem::take(&mut self.devices);
        let bonds = std::mem::take(&mut self.bonds);
        let mut out = Vec::new();
        for d in &devices {
            let bond = bond_of(&bonds, &d.name).map(|b| b.name.as_str());
            self.device_notes(d, bond);
            if bond.is_none() {
                out.push((d.name.clone(), self.device_table(d)));
            }
        }
        for b in &bonds {
            out.push((b.name.clone(), self.bond_table(b, &devices, &bonds)));
        }
        self.devices = devices;
        self.bonds = bonds;
        out
    }

    /// A device's queue counts that are not rvsd's, its PCI placeholder, and its
    /// `kni_name` (`bond`: the bond it is a slave of).
    fn device_notes(&mut self, d: &Device, bond: Option<&str>) {
        let port = bond.unwrap_or(&d.name).to_string();
        let workers = self.lcores.len() as u64;
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
        let place = match bond {
            Some(b) => format!("port {b}'s bond slaves"),
            None => format!("port {}", d.name),
        };
        self.warn(
            Bucket::Port(port.clone()),
            d.line,
            &format!("netif_defs.device {}", d.name),
            format!(
                "its PCI address is not in dpvs.conf: replace {ph} in {place} (dpdk-devbind.py --status lists the \
                 NICs; DPVS's dpdkN is the Nth DPDK port in PCI order)"
            ),
        );
        if let Some(kni) = &d.kni_name {
            self.kni_name_note(&d.name, kni, bond);
        }
    }

    /// A `kni_name` rvsd cannot honour: kni off (no twin), a bond slave's (no twin of
    /// its own), or a name other than rvsd's `PORT.kni`.
    fn kni_name_note(&mut self, dpvs_port: &str, (name, line, shown): &(String, usize, String), bond: Option<&str>) {
        let bucket = Bucket::Port(bond.unwrap_or(dpvs_port).to_string());
        let why = if self.kni == Some(false) {
            "global_defs kni is off: no twin (twin = \"none\")".to_string()
        } else if let Some(b) = bond {
            format!("a bond slave has no twin in rvsd; the bond's is {b}.kni")
        } else if *name != format!("{dpvs_port}.kni") {
            format!("rvsd names the twin {dpvs_port}.kni, not {name}")
        } else {
            return;
        };
        self.warn(bucket, *line, shown, why);
    }

    /// The twin of every port, from `global_defs kni`.
    fn twin(&self) -> Option<String> {
        self.kni.map(|on| q(if on { "tap" } else { "none" }))
    }

    /// DPVS's descriptor counts where the port's device block sets none.
    fn desc_defaults(&self, t: &mut Table) {
        let absent = self.absent();
        t.or_else("rx_desc", RX_DESC.default.to_string(), &absent);
        t.or_else("tx_desc", TX_DESC.default.to_string(), &absent);
    }

    fn device_table(&self, d: &Device) -> Table {
        let mut t = Table::default();
        t.set("name", q(&d.name));
        t.set("pci", q(&pci_placeholder(&d.name)));
        for (k, v, ..) in &d.set {
            t.set(k, v.clone());
        }
        self.desc_defaults(&mut t);
        if let Some(tw) = self.twin() {
            t.set("twin", tw);
        }
        t
    }

    fn bond_table(&mut self, b: &Bond, devices: &[Device], bonds: &[Bond]) -> Table {
        let shown = format!("netif_defs.bonding {}", b.name);
        for (s, line) in &b.slaves {
            if !devices.iter().any(|d| &d.name == s) {
                self.fail(*line, format!("{shown}.slave: no device named {s} in netif_defs"));
            }
            if bonds.iter().filter(|o| o.slaves.iter().any(|(x, _)| x == s)).count() > 1 {
                self.fail(*line, format!("{shown}.slave: {s} is a slave of two bonds"));
            }
        }
        let primary = match &b.primary {
            Some((p, line)) => b.slaves.iter().position(|(s, _)| s == p).unwrap_or_else(|| {
                self.fail(*line, format!("{shown}.primary: {p} is not a slave of {}", b.name));
                0
            }),
            None => 0,
        };
        let slaves: Vec<String> = b.slaves.iter().map(|(s, _)| q(&pci_placeholder(s))).collect();
        let mode = b.mode.as_deref().unwrap_or("CHOOSE-A-MODE");
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
        self.desc_defaults(&mut t);
        if let Some(tw) = self.twin() {
            t.set("twin", tw);
        }
        if let Some(kni) = &b.kni_name {
            self.kni_name_note(&b.name, kni, None);
        }
        t
    }

    fn render(&mut self, file: &str) -> String {
        let ports = self.ports();
        // Notes of a slave device go to its bond's port.
        let notes: Vec<(Bucket, usize, String)> = std::mem::take(&mut self.notes)
            .into_iter()
            .map(|(b, l, m)| match b {
                Bucket::Port(p) => (Bucket::Port(bond_of(&self.bonds, &p).map_or(p, |b| b.name.clone())), l, m),
                b => (b, l, m),
            })
            .collect();
        let mut used = vec![false; notes.len()];
        let mut s = String::new();
        let mut comments = |s: &mut String, bucket: &Bucket, explain: &[(Bucket, String)]| {
            for (b, e) in explain {
                if b == bucket {
                    s.push_str(&format!("# {}\n", printable(e)));
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
                s.push_str(&format!("# line {line}: {}\n", printable(m)));
            }
        };
        let keys = |s: &mut String, t: &Table| {
            for e in &t.0 {
                match &e.comment {
                    Some(c) => s.push_str(&format!("{} = {}  # {}\n", e.key, e.value, printable(c))),
                    None => s.push_str(&format!("{} = {}\n", e.key, e.value)),
                }
            }
        };
        s.push_str(&format!(
            "# rvsd configuration converted from {} by `rvsd --from-dpvs` (rvsd {}).\n\
             # Replace every PCI-ADDRESS-OF-<port> with the NIC's address (dpdk-devbind.py --status), then:\n\
             #   rvsd --check-config THIS-FILE --other-host\n\
             # \"# line N:\" comments are dpvs.conf items rvsd does not carry over, and why\n\
             # (docs/DEPLOY.md, \"From dpvs.conf\"; every key: docs/CONFIG.md).\n\n",
            printable(file),
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
                s.push_str(&format!("# line {line}: {}\n", printable(m)));
            }
        }
        s
    }
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
            "rx_desc = 512",
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
        assert_eq!(cfg.ports[0].rx_desc, 512, "DPVS rounds 1000 down");
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
            (
                "1000",
                "netif_defs.device dpdk0.rx.descriptor_number: DPVS rounds it down to a power of two: it ran 512, \
                 not 1000; 512 converted",
            ),
            ("mbuf_fast_free", "netif_defs.device dpdk0.tx.mbuf_fast_free: "),
            ("unres_queue_length", "neigh_defs.unres_queue_length: "),
            ("conn_pool_cache", "ipvs_defs.conn.conn_pool_cache: "),
            ("conn_init_timeout", "ipvs_defs.conn.conn_init_timeout: "),
            ("uoa_mode", "ipvs_defs.udp.uoa_mode: rvsd sets UOA per service: `uoa = \"opp\"`"),
            (
                "oneway",
                "ipvs_defs.udp.timeout.oneway: DPVS timed a UDP flow that never had a reply at 60 s (oneway), one \
                 that had at 300 s (normal); rvsd has one UDP timeout, `udp`, set from normal: 60 s is not used",
            ),
            (
                "conn_pool_size",
                "ipvs_defs.conn.conn_pool_size: DPVS rounds it down to 2^n - 1: it ran 2097151, not 2097152",
            ),
            (
                "conn_pool_size",
                "ipvs_defs.conn.conn_pool_size: DPVS made a pool of 2097151 connections on each NUMA socket, \
                 shared by the workers on that socket; rvsd's pool_size is per worker: 1048576 is 2097151 / 2, \
                 which assumes DPVS's 2 workers all on one socket",
            ),
            ("last        3", "ipvs_defs.udp.timeout.last: "),
            ("last        2", "ipvs_defs.tcp.timeout.last: "),
            ("ttl             63", "ipvs_defs.tcp.synproxy.synack_options.ttl: "),
            ("sack", "ipvs_defs.tcp.synproxy.synack_options.sack: "),
            ("rs_syn_max_retry", "ipvs_defs.tcp.synproxy.rs_syn_max_retry: "),
            ("max_ack_saved", "ipvs_defs.tcp.synproxy.max_ack_saved: "),
            ("pool_hash_size", "sa_pool.pool_hash_size: "),
        ] {
            assert!(has(&w, SINGLE, needle, want), "no warning {want:?} in\n{}", w.join("\n"));
        }
        // Mapped items are not warned about; matching queue ids and counts are mapped.
        for quiet in
            ["queue_number", "rx_queue_ids", "tx_queue_ids", "pktpool_size", "mss:", "kni_name", ".mtu", "conn_reuse"]
        {
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

    /// One of every item DPVS reads (conf/dpvs.conf.items and its keyword tree).
    const ALL_ITEMS: &str = r#"
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
            normal 300
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

    /// Every item of DPVS's item list (conf/dpvs.conf.items) is known: mapped or warned,
    /// none an error, none falling through the mapping.
    #[test]
    fn every_dpvs_item_is_recognised() {
        let text = ALL_ITEMS;
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
        assert!(has(&w, text, "include /etc", "include: the included file is not read here"), "{w:?}");
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

    /// Every path of [`SPECS`] is in [`ALL_ITEMS`], so the test above walks the whole
    /// table through the mapping: no item DPVS knows reaches a "gap" arm.
    #[test]
    fn all_items_walks_every_spec() {
        fn paths(nodes: &[Node], out: &mut Vec<String>) {
            for n in nodes {
                out.push(n.path.clone());
                paths(&n.children, out);
            }
        }
        let mut d = Vec::new();
        let toks = lex(ALL_ITEMS, &mut d);
        let items = Parser { toks: &toks, pos: 0, diags: &mut d }.items(None, 0);
        let nodes = validate(items, "", "", None, &mut d);
        assert!(d.is_empty(), "{d:?}");
        let mut seen = Vec::new();
        paths(&nodes, &mut seen);
        for (path, ..) in SPECS {
            assert!(seen.iter().any(|p| p == path), "{path} is not in ALL_ITEMS");
        }
    }

    /// A small file, in `text` with a device `dpdk0` and one slave worker, converted
    /// without errors.
    fn small(inner: &str) -> (String, Conversion) {
        let text = format!(
            "netif_defs {{\n    device dpdk0 {{\n    }}\n}}\nworker_defs {{\n    worker cpu1 {{\n        cpu_id 1\n    \
             }}\n}}\n{inner}"
        );
        let c = convert("d.conf", &text);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        (text, c)
    }

    fn filled(c: &Conversion) -> Config {
        let t = fill_placeholders(&c.toml, &pci(&[("dpdk0", "0000:3b:00.0")]));
        Config::parse("out.toml", &t).unwrap_or_else(|e| panic!("{e}\n{t}"))
    }

    #[test]
    fn dpvs_rounds_sizes_down() {
        assert_eq!([pow2_floor(1000), pow2_floor(1024), pow2_floor(1), pow2_floor(0)], [512, 1024, 1, 0]);
        assert_eq!(
            [pow2_minus1_floor(262_143), pow2_minus1_floor(262_144), pow2_minus1_floor(300_000)],
            [262_143, 262_143, 262_143]
        );
        let text = "netif_defs {\n    pktpool_size 300000\n    pktpool_cache 300\n    device dpdk0 {\n        rx { \
                    descriptor_number 1000 }\n        tx { descriptor_number 2048 }\n    }\n}\nworker_defs {\n    \
                    worker cpu1 {\n        cpu_id 1\n    }\n}\nipvs_defs {\n    conn {\n        conn_pool_size \
                    100000\n    }\n}\n";
        let c = convert("d.conf", text);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        let w = warnings(&c);
        for (needle, want) in [
            ("pktpool_size", "netif_defs.pktpool_size: DPVS rounds it down to 2^n - 1: it ran 262143, not 300000"),
            ("pktpool_cache", "netif_defs.pktpool_cache: DPVS rounds it down to a power of two: it ran 256, not 300"),
            ("1000", "netif_defs.device dpdk0.rx.descriptor_number: DPVS rounds it down to a power of two: it ran 512"),
            (
                "conn_pool_size",
                "ipvs_defs.conn.conn_pool_size: DPVS rounds it down to 2^n - 1: it ran 65535, not 100000",
            ),
        ] {
            assert!(has(&w, text, needle, want), "no warning {want:?} in\n{}", w.join("\n"));
        }
        assert!(!w.iter().any(|l| l.contains("tx.descriptor_number")), "2048 is a power of two: {w:?}");
        let cfg = filled(&c);
        assert_eq!((cfg.mempool.mbufs, cfg.mempool.cache), (262_143, 256));
        assert_eq!((cfg.ports[0].rx_desc, cfg.ports[0].tx_desc), (512, 2048));
        // One worker: DPVS's whole pool, with a comment rather than a warning.
        assert_eq!(cfg.conn.pool_size, 65_535);
    }

    #[test]
    fn values_dpvs_refuses_become_its_defaults() {
        let inner = "neigh_defs {\n    timeout 0\n}\nipvs_defs {\n    conn {\n        conn_pool_size 0\n    }\n    \
                     udp {\n        timeout {\n            normal 0\n            oneway -1\n        }\n    }\n    tcp \
                     {\n        timeout {\n            established 0\n            syn_recv 31536000\n        }\n        \
                     synproxy {\n            synack_options {\n                mss 0\n            }\n            \
                     ack_storm_thresh 0\n        }\n    }\n}\n";
        let text = format!(
            "netif_defs {{\n    device dpdk0 {{\n        rx {{ descriptor_number 8 }}\n        tx {{ \
             descriptor_number 9000 }}\n        mtu 0\n    }}\n}}\nworker_defs {{\n    worker cpu1 {{\n        cpu_id \
             1\n    }}\n}}\n{inner}"
        );
        let c = convert("d.conf", &text);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        let w = warnings(&c);
        for (needle, want) in [
            ("descriptor_number 8", "netif_defs.device dpdk0.rx.descriptor_number: DPVS refuses 8 (it takes 16..=8192) and runs its default, 256"),
            ("descriptor_number 9000", "netif_defs.device dpdk0.tx.descriptor_number: DPVS refuses 9000 (it takes 16..=8192) and runs its default, 512"),
            ("mtu 0", "netif_defs.device dpdk0.mtu: DPVS refuses 0 (it takes 1..=9000) and runs its default, 1500"),
            ("timeout 0", "neigh_defs.timeout: DPVS refuses 0 (it takes 1..=3600) and runs its default, 60"),
            ("conn_pool_size 0", "ipvs_defs.conn.conn_pool_size: DPVS refuses 0 (it takes 65536..=2147483647) and runs its default, 2097151"),
            ("normal 0", "ipvs_defs.udp.timeout.normal: DPVS refuses 0 (it takes 1..=31535999) and runs its default, 300"),
            ("oneway -1", "ipvs_defs.udp.timeout.oneway: DPVS refuses -1 (it takes 1..=31535999) and runs its default, 300"),
            ("established 0", "ipvs_defs.tcp.timeout.established: DPVS refuses 0 (it takes 1..=31535999) and runs its default, 90"),
            ("syn_recv 31536000", "ipvs_defs.tcp.timeout.syn_recv: DPVS refuses 31536000 (it takes 1..=31535999) and runs its default, 30"),
            ("mss 0", "ipvs_defs.tcp.synproxy.synack_options.mss: DPVS refuses 0 (it takes 1..=65535) and runs its default, 1452"),
            ("ack_storm_thresh 0", "ipvs_defs.tcp.synproxy.ack_storm_thresh: DPVS refuses 0 (it takes 1..=999) and runs its default, 10"),
        ] {
            assert!(has(&w, &text, needle, want), "no warning {want:?} in\n{}", w.join("\n"));
        }
        // oneway's default equals normal's: nothing lost, no warning.
        assert!(!w.iter().any(|l| l.contains("is not used")), "{w:?}");
        let cfg = filled(&c);
        assert_eq!((cfg.ports[0].rx_desc, cfg.ports[0].tx_desc, cfg.ports[0].mtu), (256, 512, 1500));
        assert_eq!(cfg.neigh_defs.reachable_ms, 60_000);
        assert_eq!(cfg.conn.pool_size, 2_097_151);
        assert_eq!((cfg.timeouts.udp, cfg.timeouts.established, cfg.timeouts.syn_recv), (300, 90, 30));
        assert_eq!((cfg.synproxy.mss_v4, cfg.synproxy.mss_v6, cfg.synproxy.ack_storm_thresh), (1452, 1432, 10));
    }

    #[test]
    fn absent_items_get_dpvs_defaults() {
        let (_, c) = small("");
        let t = &c.toml;
        for key in [
            "none = 2",
            "established = 90",
            "syn_sent = 3",
            "syn_recv = 30",
            "fin_wait = 7",
            "time_wait = 7",
            "close = 3",
            "close_wait = 7",
            "last_ack = 7",
            "listen = 120",
            "synack = 30",
            "udp = 300",
            "mss_v4 = 1452",
            "mss_v6 = 1432",
            "ack_storm_thresh = 10",
            "rx_desc = 256",
            "tx_desc = 512",
            "mbufs = 65535",
            "cache = 256",
            "pool_size = 2097151",
        ] {
            let want = format!("{key}  # DPVS's default (absent from d.conf)\n");
            assert!(t.contains(&want), "{want:?} missing from\n{t}");
        }
        assert!(t.contains("wscale = 0  # DPVS's default (absent from d.conf): no window scaling"), "{t}");
        assert!(t.contains("timestamps = false  # DPVS's default (absent from d.conf)"), "{t}");
        let cfg = filled(&c);
        assert_eq!((cfg.timeouts.established, cfg.timeouts.fin_wait, cfg.timeouts.close), (90, 7, 3));
        assert_eq!((cfg.synproxy.mss_v4, cfg.synproxy.wscale), (1452, 0));
        assert!(!cfg.synproxy.timestamps);
        // What the file sets carries no such comment.
        let (_, c) =
            small("ipvs_defs {\n    tcp {\n        timeout {\n            established 600\n        }\n    }\n}\n");
        assert!(c.toml.contains("established = 600\n"), "{}", c.toml);
    }

    #[test]
    fn wscale_zero_is_the_nearest_to_no_window_scaling() {
        let syn = |v: &str| {
            format!("ipvs_defs {{\n    tcp {{\n        synproxy {{\n            synack_options {{\n                wscale {v}\n            }}\n        }}\n    }}\n}}\n")
        };
        for (v, want) in [
            ("0", "DPVS's wscale 0 strips the window scale option from the SYN-ACK (no window scaling); rvsd cannot strip it"),
            ("15", "DPVS refuses 15 (it takes 0..=14) and keeps its default, 0"),
        ] {
            let (text, c) = small(&syn(v));
            let w = warnings(&c);
            let msg = format!("ipvs_defs.tcp.synproxy.synack_options.wscale: {want}");
            assert!(has(&w, &text, "wscale", &msg), "no warning {msg:?} in\n{}", w.join("\n"));
            assert!(c.toml.contains("wscale = 0\n"), "{}", c.toml);
        }
        let (_, c) = small(&syn("9"));
        assert!(!warnings(&c).iter().any(|l| l.contains("wscale")));
        assert_eq!(filled(&c).synproxy.wscale, 9);
    }

    #[test]
    fn udp_oneway_is_warned_about_and_normal_kept() {
        let udp =
            |inner: &str| format!("ipvs_defs {{\n    udp {{\n        timeout {{\n{inner}        }}\n    }}\n}}\n");
        // oneway alone: DPVS's normal (300) is rvsd's udp.
        let (text, c) = small(&udp("            oneway 60\n"));
        assert_eq!(filled(&c).timeouts.udp, 300);
        let w = warnings(&c);
        let want = "ipvs_defs.udp.timeout.oneway: DPVS timed a UDP flow that never had a reply at 60 s (oneway), one \
                    that had at 300 s (normal)";
        assert!(has(&w, &text, "oneway", want), "{w:?}");
        // Equal to normal: nothing differs, nothing said.
        let (_, c) = small(&udp("            oneway 120\n            normal 120\n"));
        assert_eq!(filled(&c).timeouts.udp, 120);
        assert!(!warnings(&c).iter().any(|l| l.contains("oneway")));
    }

    #[test]
    fn conn_reuse_state_warns_only_about_states_rvsd_does_not_reuse() {
        let reuse = |inner: &str| {
            format!("ipvs_defs {{\n    tcp {{\n        synproxy {{\n            conn_reuse_state {{\n{inner}            }}\n        }}\n    }}\n}}\n")
        };
        let (_, c) = small(&reuse("                close\n                time_wait\n"));
        assert!(!warnings(&c).iter().any(|l| l.contains("conn_reuse")), "{:?}", warnings(&c));
        let (text, c) = small(&reuse("                close\n                fin_wait\n"));
        let w = warnings(&c);
        let want = "ipvs_defs.tcp.synproxy.conn_reuse_state.fin_wait: rvsd reuses only CLOSE and TIME_WAIT";
        assert!(has(&w, &text, "fin_wait", want), "{w:?}");
        assert_eq!(w.iter().filter(|l| l.contains("conn_reuse")).count(), 1, "{w:?}");
    }

    #[test]
    fn non_utf8_is_decoded_with_a_warning_naming_the_line() {
        let mut bytes = b"global_defs {\n    kni off\n    ! \xd6\xd0\xce\xc4 comment\n}\n".to_vec();
        bytes.extend_from_slice(b"netif_defs {\n    device dpdk0 {\n    }\n}\n");
        let c = convert_bytes("d.conf", &bytes);
        assert!(!c.has_errors(), "{:?}", errors(&c));
        let w = warnings(&c);
        assert!(w.iter().any(|l| l.starts_with("d.conf:3: warning: encoding: the file is not UTF-8")), "{w:?}");
        assert!(c.toml.contains("twin = \"none\""), "{}", c.toml);
        // In a keyword: the keyword is reported as unknown, on its line.
        let c = convert_bytes("d.conf", b"global_defs {\n    k\xffni off\n}\n");
        assert!(errors(&c).iter().any(|e| e.starts_with("d.conf:2: error: unknown keyword")), "{:?}", errors(&c));
        // A byte-order mark is no keyword.
        assert!(!convert_bytes("d.conf", b"\xef\xbb\xbfglobal_defs {\n}\n").has_errors());
    }

    #[test]
    fn control_characters_are_escaped_and_lone_cr_ends_a_line() {
        // A word copied as it is into a note (kni_name's): escaped in the comment and
        // on stderr.
        let text = "netif_defs {\n    device dpdk0 {\n        kni_name \"x\u{1}y\u{7f}\"\n    }\n}\nworker_defs \
                    {\n    worker cpu1 {\n        cpu_id 1\n    }\n}\n";
        let c = convert("d.conf", text);
        assert!(c.toml.contains("rvsd names the twin dpdk0.kni, not x\\u{1}y\\u{7f}"), "{}", c.toml);
        assert!(!c.toml.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\t'), "{:?}", c.toml);
        assert!(warnings(&c).iter().all(|l| !l.chars().any(char::is_control)));
        filled(&c); // parses: no control character in a comment
                    // An error quoting a word: escaped too (no terminal escape reaches stderr).
        let c = convert("d.conf", "global_defs {\n    kni \"o\u{1b}[31mn\"\n}\n");
        let e = errors(&c);
        assert!(
            e.iter().any(|l| l.contains("\\u{1b}[31mn")) && e.iter().all(|l| !l.chars().any(char::is_control)),
            "{e:?}"
        );
        // A lone carriage return ends a line, as in DPVS: `kni maybe` is line 2.
        let c = convert("d.conf", "global_defs {\r    kni maybe\r}\r");
        assert!(errors(&c).iter().any(|e| e.starts_with("d.conf:2: error: global_defs.kni")), "{:?}", errors(&c));
        let c = convert("d.conf", "global_defs {\r\n    kni maybe\r\n}\r\n");
        assert!(errors(&c).iter().any(|e| e.starts_with("d.conf:2: error: global_defs.kni")), "{:?}", errors(&c));
    }

    #[test]
    fn from_dpvs_refuses_a_config_file() {
        use clap::Parser as _;
        let args = crate::cli::Args::try_parse_from(["rvsd", "--from-dpvs", "dpvs.conf"]).expect("alone");
        assert!(args.from_dpvs.is_some());
        assert!(crate::cli::Args::try_parse_from(["rvsd", "--from-dpvs", "dpvs.conf", "-c", "x.toml"]).is_err());
    }

    /// `include` as DPVS reads it (`rvsd --from-dpvs FILE`): at the top level and inside
    /// a block, a glob relative to the including file; the result is the one-file
    /// conversion's, and every finding names the file its line is in.
    #[test]
    fn includes_are_read_where_they_stand_as_dpvs_reads_them() {
        /// Removed when the test ends, failed or not.
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        // (A glob character in the directory's name is no pattern.)
        let guard = Dir(std::env::temp_dir().join(format!("rvs-from-dpvs [include]-{}", std::process::id())));
        let dir = guard.0.clone();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d/more")).unwrap();
        let cut = |text: &str, from: &str, to: &str| {
            let a = text.find(from).unwrap();
            let b = a + text[a..].find(to).unwrap() + to.len();
            (text[a..b].to_string(), format!("{}{{}}{}", &text[..a], &text[b..]))
        };
        let (global, rest) = cut(SINGLE, "global_defs {", "}\n");
        let (tx, rest) = cut(&rest.replace("{}", "\u{1}"), "        tx {", "        }\n");
        let top = rest.replace("{}", "        include tx.inc\n").replace('\u{1}', "include conf.d/*.conf\n");
        std::fs::write(dir.join("dpvs.conf"), &top).unwrap();
        std::fs::write(dir.join("conf.d/10-global.conf"), &global).unwrap();
        // An editor's backup beside it is not read (glob's leading dot, as glibc's).
        std::fs::write(dir.join("conf.d/.10-global.conf.swp"), "garbage {\n").unwrap();
        // The tx block from a file tx.inc includes, relative to tx.inc's directory.
        std::fs::write(dir.join("tx.inc"), "        include conf.d/more/tx.conf\n").unwrap();
        std::fs::write(dir.join("conf.d/more/tx.conf"), &tx).unwrap();
        let name = dir.join("dpvs.conf").display().to_string();
        let render = |c: &Conversion| c.diagnostics.iter().map(|d| d.render(&name)).collect::<Vec<_>>();
        let c = convert_path(&dir.join("dpvs.conf"));
        assert!(!c.has_errors(), "{:?}", render(&c));
        let body = |t: &str| t.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect::<Vec<_>>();
        assert_eq!(body(&c.toml), body(&convert(&format!("{name} and its includes"), SINGLE).toml));
        let g = dir.join("conf.d/10-global.conf").display().to_string();
        let r = render(&c);
        assert!(r.iter().any(|d| d.starts_with(&format!("{g}:3: warning: global_defs.lldp"))), "{r:?}");
        assert!(c.toml.contains(&format!("# {g} line 3: global_defs.lldp")), "{}", c.toml);

        std::fs::write(dir.join("conf.d/20-bad.conf"), "global_defs {\n    bogus on\n}\n").unwrap();
        std::fs::write(dir.join("conf.d/30-open.conf"), "global_defs {\n").unwrap();
        std::fs::write(dir.join("loop.conf"), "include loop.conf\n").unwrap();
        std::fs::write(dir.join("none.conf"), "include nothing/*.conf\ninclude \"quoted.conf\"\n").unwrap();
        let c = convert_path(&dir.join("dpvs.conf"));
        let (bad, open) = (dir.join("conf.d/20-bad.conf"), dir.join("conf.d/30-open.conf"));
        let r = render(&c);
        assert!(
            r.iter().any(|d| d.starts_with(&format!("{}:2: error: unknown keyword `bogus`", bad.display()))),
            "{r:?}"
        );
        assert!(
            r.iter().any(|d| d.starts_with(&format!("{}:0: error: its braces do not balance", open.display()))),
            "{r:?}"
        );
        let c = convert_path(&dir.join("loop.conf"));
        assert!(c.diagnostics.iter().any(|d| d.message.contains("includes itself")), "{:?}", render(&c));
        let c = convert_path(&dir.join("none.conf"));
        let r = render(&c);
        assert!(r.iter().any(|d| d.contains(":1: warning: include nothing/*.conf: no file matches")), "{r:?}");
        assert!(
            r.iter().any(|d| d.contains(":2: warning: include: the included file is not read here")),
            "a quoted name is no include for DPVS: {r:?}"
        );
        assert!(convert_path(&dir.join("absent.conf")).has_errors());
    }

    #[test]
    fn pools_are_per_socket_in_dpvs() {
        let (_, c) = small("");
        assert!(c.toml.contains("# mbufs: DPVS made a packet pool of this size on each NUMA socket"), "{}", c.toml);
        let c = convert("d.conf", BONDED);
        let w = warnings(&c);
        assert!(
            has(
                &w,
                BONDED,
                "conn_pool_size",
                "ipvs_defs.conn.conn_pool_size: DPVS made a pool of 1048575 connections on each NUMA socket, shared \
                 by the workers on that socket; rvsd's pool_size is per worker: 524288 is 1048575 / 2, which assumes \
                 DPVS's 2 workers all on one socket (spread over S sockets as DPVS had them"
            ),
            "{w:?}"
        );
    }
}
