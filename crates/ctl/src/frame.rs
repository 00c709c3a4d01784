//! Framing: one JSON document per line, bounded in size.

use std::io::{BufRead, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::MAX_MESSAGE_BYTES;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection.
    #[error("connection closed")]
    Closed,
    /// The line exceeds [`MAX_MESSAGE_BYTES`].
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    /// I/O failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The line is not valid JSON for the expected type.
    #[error("{0}")]
    Json(String),
}

/// Reads one line (without its newline), refusing lines over the limit.
pub fn read_line<R: BufRead>(r: &mut R) -> Result<String, FrameError> {
    let mut buf = Vec::new();
    let mut limited = std::io::Read::take(&mut *r, MAX_MESSAGE_BYTES as u64 + 1);
    let n = limited.read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(FrameError::Closed);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_MESSAGE_BYTES {
            return Err(FrameError::TooLarge);
        }
        // The peer closed after a last line without a newline: accept it.
    } else {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|e| FrameError::Json(format!("not UTF-8: {e}")))
}

/// Reads and parses one message.
pub fn read<R: BufRead, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let line = read_line(r)?;
    serde_json::from_str(&line).map_err(|e| FrameError::Json(e.to_string()))
}

/// Writes one message and a newline, and flushes.
pub fn write<W: Write, T: Serialize>(w: &mut W, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_oversize_is_refused() {
        let mut out = Vec::new();
        write(&mut out, &serde_json::json!({"a": 1})).unwrap();
        write(&mut out, &serde_json::json!({"b": 2})).unwrap();
        let mut r = std::io::BufReader::new(&out[..]);
        let a: serde_json::Value = read(&mut r).unwrap();
        let b: serde_json::Value = read(&mut r).unwrap();
        assert_eq!((a["a"].as_u64(), b["b"].as_u64()), (Some(1), Some(2)));
        assert!(matches!(read::<_, serde_json::Value>(&mut r), Err(FrameError::Closed)));

        let big = vec![b'x'; MAX_MESSAGE_BYTES + 10];
        let mut r = std::io::BufReader::new(&big[..]);
        assert!(matches!(read_line(&mut r), Err(FrameError::TooLarge)));

        let mut r = std::io::BufReader::new(&b"{not json\n"[..]);
        assert!(matches!(read::<_, serde_json::Value>(&mut r), Err(FrameError::Json(_))));
    }
}
