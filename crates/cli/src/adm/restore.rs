//! `rvsadm -R`: the rules on stdin (as `-S` prints them) become one set of services and
//! SNAT rules, sent as a single `ServiceReplace` so that the switch is atomic.
//!
//! Each line is an rvsadm command line without the program name; blank lines and `#`
//! comments are skipped. Lines apply in order to a set that starts empty: `-A`, `-E`,
//! `-D`, `-a`, `-e`, `-d`, `-P`, `-Q` and `-C` are understood (`-A`, `-D`, `-a` and `-d`
//! also with `-H`, a SNAT rule); anything else is an error
//! naming the line. Each line is applied with rvsd's own verbs ([`ctl::verbs`]), so a
//! script refuses what rvsd would refuse line by line and leaves the set rvsd would
//! hold; rvsd then validates the whole set as it validates every change.

use ctl::verbs::{self, Rules};

use super::{parse_with, AdmArgs, AdmCmd};
use crate::{usage, CliError};

/// The services and SNAT rules the lines in `text` describe.
pub fn plan(text: &str) -> Result<Rules, CliError> {
    let mut set = Rules::default();
    let mut command = <AdmArgs as clap::CommandFactory>::command();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |msg: String| usage(format!("line {}: {msg}", i + 1));
        let argv: Vec<&str> = std::iter::once("rvsadm").chain(line.split_whitespace()).collect();
        let req = match parse_with(&mut command, &argv) {
            Ok(AdmCmd::Change(req)) => req,
            Ok(_) => return Err(at(format!("'{line}' cannot be restored (only -A -E -D -a -e -d -P -Q -C)"))),
            Err(e) => return Err(at(e.to_string())),
        };
        if !verbs::changes_rules(&req) {
            return Err(at("only -A -E -D -a -e -d -P -Q -C can be restored".to_string()));
        }
        verbs::apply(&mut set, req).map_err(|r| at(r.message))?;
    }
    Ok(set)
}
