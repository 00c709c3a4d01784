//! systemd's service protocol, shared by rvsd and rvs-agent: readiness and state
//! (`sd_notify`: one datagram to `$NOTIFY_SOCKET`, a path or an abstract `@name`) and the
//! watchdog interval systemd asks for (`$WATCHDOG_USEC`). Without systemd the variables
//! are unset and nothing is sent.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends `state` (`READY=1`, `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=...`,
/// lines joined by `\n`) to `$NOTIFY_SOCKET`. `Ok(false)` when the variable is unset
/// (not under systemd).
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET_ENV).filter(|p| !p.is_empty()) else { return Ok(false) };
    notify_to(&path.to_string_lossy(), state)?;
    Ok(true)
}

/// Sends `state` to the notification socket `path` (a path, or `@name` abstract).
pub fn notify_to(path: &str, state: &str) -> io::Result<()> {
    let addr = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())?
    } else {
        SocketAddr::from_pathname(path)?
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// How often systemd wants `WATCHDOG=1` (`WatchdogSec=`), when it wants it from this
/// process: `$WATCHDOG_USEC` set and `$WATCHDOG_PID`, if set, ours. Pings go at half
/// this interval, as sd_watchdog_enabled(3) advises.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok().filter(|&u| u > 0)?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_an_abstract_socket() {
        let dir = std::env::temp_dir().join(format!("rvs-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("notify");
        let rx = UnixDatagram::bind(&p).unwrap();
        notify_to(&p.display().to_string(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let name = format!("rvs-notify-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        notify_to(&format!("@{name}"), "STOPPING=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
