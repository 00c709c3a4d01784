//! keepalived.conf: lexer ([`lexer`]), statement tree ([`tree`]), typed configuration
//! ([`config`]) built by [`parse`], and cross-checks ([`validate`]).
//!
//! ```no_run
//! let loaded = rvs_agent::keepalived::load(std::path::Path::new("keepalived.conf"), Default::default());
//! for d in &loaded.diagnostics {
//!     eprintln!("{d}"); // FILE:LINE: error: reason
//! }
//! assert!(!loaded.has_errors());
//! ```

pub mod config;
pub mod diag;
pub mod keywords;
pub mod lexer;
pub mod parse;
pub mod tree;
pub mod validate;

pub use config::Config;
pub use diag::{Diagnostic, Loc, Severity};
pub use parse::Options;

use std::path::Path;
use std::sync::Arc;

/// A configuration and everything found wrong with it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration (partial when there are errors).
    pub config: Config,
    /// Errors and warnings, in file order then check order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Reads, parses and validates a file and its includes.
pub fn load(path: &Path, opts: Options) -> Loaded {
    let mut diagnostics = Vec::new();
    let mut env = lexer::Env::new(opts.config_id.as_deref());
    let tokens = lexer::lex_file(path, &mut env, &mut diagnostics);
    finish(&tokens, opts, diagnostics)
}

/// Parses and validates text (includes are not expanded; for tests and tools).
pub fn parse_str(text: &str, name: &str, opts: Options) -> Loaded {
    let mut diagnostics = Vec::new();
    let mut env = lexer::Env::new(opts.config_id.as_deref());
    let tokens = lexer::lex_with(text, &Arc::from(name), &mut env, &mut diagnostics);
    finish(&tokens, opts, diagnostics)
}

fn finish(tokens: &[lexer::Token], opts: Options, mut diagnostics: Vec<Diagnostic>) -> Loaded {
    let nodes = tree::build(tokens, &mut diagnostics);
    let strict = opts.strict;
    let config = parse::config(&nodes, opts, &mut diagnostics);
    diagnostics.extend(validate::validate(&config));
    if diagnostics.iter().all(|d| d.severity != Severity::Error) {
        validate::rvsd_refusals(&config, &mut diagnostics);
    }
    if strict {
        for d in &mut diagnostics {
            d.severity = Severity::Error;
        }
    }
    Loaded { config, diagnostics }
}

#[cfg(test)]
mod tests;
