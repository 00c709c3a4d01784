//! Diagnostics: every problem with its file, line and reason.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// Where something was read: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    /// The file, as named when opened.
    pub file: Arc<str>,
    /// 1-based line (0 when the file itself is meant).
    pub line: u32,
}

impl Serialize for Loc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Loc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Loc, D::Error> {
        let s = String::deserialize(d)?;
        let (file, line) = s.rsplit_once(':').ok_or_else(|| serde::de::Error::custom("expected FILE:LINE"))?;
        let line = line.parse().map_err(serde::de::Error::custom)?;
        Ok(Loc { file: Arc::from(file), line })
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    /// The configuration is refused.
    Error,
    /// Reported; the configuration is still used.
    Warning,
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Where.
    pub loc: Loc,
    /// How bad.
    pub severity: Severity,
    /// Why.
    pub message: String,
}

impl Diagnostic {
    /// An error at `loc`.
    pub fn error(loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic { loc, severity: Severity::Error, message: message.into() }
    }

    /// A warning at `loc`.
    pub fn warning(loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic { loc, severity: Severity::Warning, message: message.into() }
    }

    /// Whether it is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev}: {}", self.loc, self.message)
    }
}
