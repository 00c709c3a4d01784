//! The one logging set-up of rvs's daemons (rvsd, rvs-agent): the level from `$RVS_LOG`
//! (tracing's filter syntax: `debug`, `info,rvsd=debug`; `$RUST_LOG` when it is unset),
//! `--log-format text|json`, on stderr. Under systemd (`$JOURNAL_STREAM` set) lines carry
//! no timestamp or colour: journald stamps them itself.

use std::io::IsTerminal;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The environment variable holding the log level (filter) of every rvs binary.
pub const LOG_ENV: &str = "RVS_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?}: text or json")),
        }
    }
}

/// Installs the global subscriber: `format`, level from [`LOG_ENV`] (else `RUST_LOG`,
/// else `default_filter`). Returns a warning to print when the variable is not a valid
/// filter (the default is used then).
pub fn init(format: LogFormat, default_filter: &str) -> Option<String> {
    use tracing_subscriber::EnvFilter;
    let (var, value) = match std::env::var(LOG_ENV) {
        Ok(v) => (LOG_ENV, Some(v)),
        Err(_) => ("RUST_LOG", std::env::var("RUST_LOG").ok()),
    };
    let mut warning = None;
    let filter = match value.map(|v| (EnvFilter::try_new(&v), v)) {
        Some((Ok(f), _)) => f,
        Some((Err(e), v)) => {
            warning = Some(format!("{var}={v:?} is not a log filter ({e}); using {default_filter:?}"));
            EnvFilter::new(default_filter)
        }
        None => EnvFilter::new(default_filter),
    };
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = !journal && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match (format, journal) {
        (LogFormat::Json, _) => builder.json().init(),
        (LogFormat::Text, true) => builder.without_time().init(),
        (LogFormat::Text, false) => builder.init(),
    }
    warning
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("yaml".parse::<LogFormat>().unwrap_err().contains("text or json"));
    }
}
