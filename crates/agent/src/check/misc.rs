//! MISC_CHECK (and vrrp_script): a command exits 0 within its timeout; killed when it
//! does not. With keepalived's `misc_dynamic`, its exit code also sets the weight.

use super::CheckError;
use crate::keepalived::config::Script;
use std::process::Stdio;
use std::time::Duration;

/// Runs `cmd` and waits up to `timeout`.
pub async fn check(cmd: &Script, timeout: Duration) -> Result<(), CheckError> {
    match run(cmd, timeout).await? {
        Some(0) => Ok(()),
        code => Err(CheckError::Exit(code)),
    }
}

/// keepalived's `misc_dynamic`: exit 0 passes at the configured `weight`, 2-255 passes
/// at weight CODE - 2 (0-253), anything else fails. Ok: the change from `weight`.
pub async fn dynamic(cmd: &Script, timeout: Duration, weight: u32) -> Result<i64, CheckError> {
    match run(cmd, timeout).await? {
        Some(0) => Ok(0),
        Some(code @ 2..=255) => Ok(i64::from(code - 2) - i64::from(weight)),
        code => Err(CheckError::Exit(code)),
    }
}

/// Runs `cmd`, waits up to `timeout` (then kills it); its exit code (none: a signal).
async fn run(cmd: &Script, timeout: Duration) -> Result<Option<i32>, CheckError> {
    let mut child = cmd
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(CheckError::Io)?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => Ok(st.code()),
        Ok(Err(e)) => Err(CheckError::Io(e)),
        Err(_) => {
            let _ = child.kill().await;
            Err(CheckError::Timeout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_codes_and_timeout() {
        let check = |cmd: &str, t| {
            let s = Script::new(cmd);
            async move { super::check(&s, t).await }
        };
        check("exit 0", Duration::from_secs(2)).await.unwrap();
        assert!(matches!(check("exit 3", Duration::from_secs(2)).await, Err(CheckError::Exit(Some(3)))));
        let t = std::time::Instant::now();
        assert!(matches!(check("sleep 5", Duration::from_millis(200)).await, Err(CheckError::Timeout)));
        assert!(t.elapsed() < Duration::from_secs(2));
        // misc_dynamic: 0 keeps the configured weight (10), 2-255 sets CODE - 2, 1 fails.
        let dynamic = |cmd: &str| {
            let s = Script::new(cmd);
            async move { super::dynamic(&s, Duration::from_secs(2), 10).await }
        };
        assert_eq!(dynamic("exit 0").await.unwrap(), 0);
        assert_eq!(dynamic("exit 7").await.unwrap(), -5, "weight 5");
        assert_eq!(dynamic("exit 255").await.unwrap(), 243, "weight 253");
        assert!(matches!(dynamic("exit 1").await, Err(CheckError::Exit(Some(1)))));
    }
}
