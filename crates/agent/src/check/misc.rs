//! MISC_CHECK (and vrrp_script): a command exits 0 within its timeout; killed when it
//! does not.

use super::CheckError;
use crate::keepalived::config::Script;
use std::process::Stdio;
use std::time::Duration;

/// Runs `cmd` and waits up to `timeout`.
pub async fn check(cmd: &Script, timeout: Duration) -> Result<(), CheckError> {
    let mut child = cmd
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(CheckError::Io)?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(st)) => Err(CheckError::Exit(st.code())),
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
    }
}
