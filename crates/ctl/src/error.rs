//! Errors: a stable code plus a sentence, the same on the wire and in the client.

use serde::{Deserialize, Serialize};

/// Stable error codes (the wire spelling is snake_case and never changes meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not valid JSON or not a known request.
    BadRequest,
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// The message exceeds the size limit.
    TooLarge,
    /// The peer is not allowed to use the socket.
    PermissionDenied,
    /// The thing to add exists already.
    Exists,
    /// The thing named does not exist.
    NotFound,
    /// The request is well-formed but its content is invalid (bad weight, family
    /// mismatch, ...); nothing was changed.
    Invalid,
    /// The device or driver does not support the operation.
    Unsupported,
    /// A worker did not confirm the new configuration in time (it was published).
    Timeout,
    /// Anything else.
    Internal,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::Exists => "exists",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
        }
    }
}

/// What a control call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// rvsd answered with an error.
    #[error("{message}")]
    Remote {
        /// The stable code.
        code: ErrorCode,
        /// rvsd's sentence.
        message: String,
    },
    /// The socket could not be reached or broke.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// rvsd sent something this client does not understand.
    #[error("bad reply from rvsd: {0}")]
    BadReply(String),
}

impl CtlError {
    /// The error code (local failures map to `Internal`).
    pub fn code(&self) -> ErrorCode {
        match self {
            CtlError::Remote { code, .. } => *code,
            _ => ErrorCode::Internal,
        }
    }
}
