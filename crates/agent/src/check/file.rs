//! FILE_CHECK as keepalived 2.2.7: a `track_file`'s content is a number (C `strtol`, base
//! 0: `12`, `-5`, `0x1f`; a missing, empty or non-numeric file reads as 0). With weight 0,
//! any non-zero value (with `reverse`: zero) sets the real server down. Otherwise
//! value x weight (negated with `reverse`) is added to the server's configured weight
//! (at least 0); only the lowest 32-bit value means down.

use super::CheckError;

/// What a tracked file says about a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Down.
    Fault,
    /// Up, with this change of weight.
    Delta(i64),
}

/// C `strtol(s, NULL, 0)` over the first bytes of the file, 0 when no number starts it.
pub fn parse_number(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    let v = i64::from_str_radix(&digits[..end], radix).unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// The status for `value` read from the file.
pub fn status(value: i64, weight: i32, reverse: bool) -> FileStatus {
    if weight == 0 {
        return if (value != 0) != reverse { FileStatus::Fault } else { FileStatus::Delta(0) };
    }
    let s = value.saturating_mul(i64::from(weight)).saturating_mul(if reverse { -1 } else { 1 });
    let s = s.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    if s == i64::from(i32::MIN) {
        FileStatus::Fault
    } else {
        FileStatus::Delta(s)
    }
}

/// The number a file's content (or its absence: 0) stands for; its first 127 bytes
/// count, as keepalived.
fn value(content: std::io::Result<Vec<u8>>) -> i64 {
    match content {
        Ok(b) => parse_number(&String::from_utf8_lossy(&b[..b.len().min(127)])),
        Err(_) => 0,
    }
}

/// Reads `path` and judges it.
pub async fn read(path: &str, weight: i32, reverse: bool) -> FileStatus {
    status(value(tokio::fs::read(path).await), weight, reverse)
}

/// [`read`], blocking: for the first reading of a VRRP instance's track_file, which must
/// be known before the instance starts.
pub fn read_now(path: &str, weight: i32, reverse: bool) -> FileStatus {
    status(value(std::fs::read(path)), weight, reverse)
}

/// One FILE_CHECK attempt: an error when the file says down, else the weight change.
pub async fn check(path: &str, weight: i32, reverse: bool) -> Result<i64, CheckError> {
    match read(path, weight, reverse).await {
        FileStatus::Fault => Err(CheckError::Unexpected(format!("{path} says down"))),
        FileStatus::Delta(d) => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_base_0() {
        for (s, v) in [("12\n", 12), (" -5", -5), ("0x1f", 31), ("010", 8), ("", 0), ("abc", 0), ("7up", 7)] {
            assert_eq!(parse_number(s), v, "{s:?}");
        }
    }

    #[test]
    fn weight_zero_is_up_or_down_else_a_weight_change() {
        assert_eq!(status(0, 0, false), FileStatus::Delta(0));
        assert_eq!(status(3, 0, false), FileStatus::Fault);
        assert_eq!(status(0, 0, true), FileStatus::Fault);
        assert_eq!(status(3, 0, true), FileStatus::Delta(0));
        assert_eq!(status(-2, 5, false), FileStatus::Delta(-10));
        assert_eq!(status(-2, 5, true), FileStatus::Delta(10));
        assert_eq!(status(i64::from(i32::MIN), 1, false), FileStatus::Fault);
    }
}
