//! Tracked objects that move an instance's priority or put it in fault: `vrrp_script`
//! (run every `interval`, `rise` / `fall` hysteresis, `timeout`), `track_interface`
//! (the link's operational state) and `track_file` (a number in a file, read as
//! FILE_CHECK reads it: [`crate::check::file`]).

use crate::keepalived::config::{TrackedFile, VrrpScript};
use std::time::Duration;
use tokio::sync::watch;

/// Runs a vrrp_script forever, publishing whether it counts as up, from what `tx` starts
/// with (up, as keepalived; down with `init_fail`, until `rise` successes). Ends when
/// every receiver is gone.
pub async fn run_script(s: VrrpScript, tx: watch::Sender<bool>) {
    let interval = Duration::from_secs_f64(s.interval.max(0.01));
    let timeout = s.timeout.map(Duration::from_secs_f64).unwrap_or(interval);
    let (mut oks, mut fails) = (0u32, 0u32);
    loop {
        let ok = crate::check::misc::check(&s.script, timeout).await.is_ok();
        if ok {
            oks += 1;
            fails = 0;
        } else {
            fails += 1;
            oks = 0;
        }
        let cur = *tx.borrow();
        if !cur && oks >= s.rise {
            tracing::info!(script = %s.name, "vrrp_script now succeeds");
            let _ = tx.send(true);
        } else if cur && fails >= s.fall {
            tracing::warn!(script = %s.name, "vrrp_script now fails");
            let _ = tx.send(false);
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

/// Whether a Linux interface is up and running (`IFF_UP` and `IFF_RUNNING`: link
/// carrier present). Asked through `getifaddrs` (netlink), so it answers for the calling
/// thread's network namespace, unlike `/sys`.
pub fn interface_up(name: &str) -> bool {
    use nix::net::if_::InterfaceFlags;
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return false };
    let want = InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING;
    addrs.filter(|a| a.interface_name == name).any(|a| a.flags.contains(want))
}

/// Whether `addr` is an address of the Linux interface `name` (asked through
/// `getifaddrs`, so for the calling thread's network namespace).
pub fn interface_has_address(name: &str, addr: std::net::IpAddr) -> bool {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return false };
    addrs.filter(|a| a.interface_name == name).filter_map(|a| a.address).any(|s| {
        s.as_sockaddr_in().map(|v4| std::net::IpAddr::V4(v4.ip())) == Some(addr)
            || s.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())) == Some(addr)
    })
}

/// keepalived's `track_src_ip`: polls whether `addr` is on interface `name` every
/// `period`, publishing changes. Ends when every receiver is gone.
pub async fn watch_address(name: String, addr: std::net::IpAddr, period: Duration, tx: watch::Sender<bool>) {
    poll_flag(
        period,
        tx,
        || interface_has_address(&name, addr),
        |there| match there {
            true => tracing::info!(interface = %name, %addr, "track_src_ip: the source address is back"),
            false => tracing::warn!(interface = %name, %addr, "track_src_ip: the source address is gone: FAULT"),
        },
    )
    .await
}

/// Asks `probe` every `period`, publishing (and telling `changed`) each change of its
/// answer. Ends when every receiver is gone.
async fn poll_flag(period: Duration, tx: watch::Sender<bool>, probe: impl Fn() -> bool, changed: impl Fn(bool)) {
    loop {
        let now = probe();
        if now != *tx.borrow() {
            changed(now);
            let _ = tx.send(now);
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(period).await;
    }
}

/// A track_file's effect on a VRRP priority, from what the file says with its weight
/// (keepalived 2.2.7's `process_update_vrrp_track_file_status`): the change, kept within
/// -254..=253, where -254 (or below) is FAULT (`None`), as weight 0's FAULT is.
pub fn file_effect(s: crate::check::file::FileStatus) -> Option<i32> {
    match s {
        crate::check::file::FileStatus::Fault => None,
        crate::check::file::FileStatus::Delta(d) => {
            let d = d.clamp(-254, 253) as i32;
            (d != -254).then_some(d)
        }
    }
}

/// Reads a track_file every `period` (keepalived watches it with inotify), publishing
/// changes of its [`file_effect`]. Ends when every receiver is gone.
pub async fn watch_file(t: TrackedFile, period: Duration, tx: watch::Sender<Option<i32>>) {
    loop {
        let e = file_effect(crate::check::file::read(&t.path, t.weight, t.reverse).await);
        if e != *tx.borrow() {
            match e {
                Some(d) => tracing::info!(track_file = %t.name, change = d, "tracked file: priority change"),
                None => tracing::warn!(track_file = %t.name, "tracked file: FAULT"),
            }
            let _ = tx.send(e);
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(period).await;
    }
}

/// Polls an interface's state every `period`, publishing changes.
pub async fn watch_interface(name: String, period: Duration, tx: watch::Sender<bool>) {
    let probe = || {
        let up = interface_up(&name);
        tracing::trace!(interface = %name, up, "tracked interface polled");
        up
    };
    poll_flag(period, tx, probe, |up| tracing::info!(interface = %name, up, "tracked interface changed")).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::diag::Loc;

    #[test]
    fn track_file_effect_on_a_vrrp_priority() {
        use crate::check::file::status;
        assert_eq!(file_effect(status(3, 10, false)), Some(30));
        assert_eq!(file_effect(status(3, 10, true)), Some(-30));
        assert_eq!(file_effect(status(100, 10, false)), Some(253));
        assert_eq!(file_effect(status(-25, 10, false)), Some(-250), "kept: only -254 and below is FAULT");
        assert_eq!(file_effect(status(-26, 10, false)), None);
        assert_eq!(file_effect(status(-25, 1, false)), Some(-25));
        assert_eq!(file_effect(status(1, 0, false)), None);
        assert_eq!(file_effect(status(0, 0, false)), Some(0));
        assert_eq!(file_effect(status(0, 0, true)), None);
    }

    #[tokio::test]
    async fn script_falls_after_fall_failures_and_rises_after_rise() {
        let flag = std::env::temp_dir().join(format!("rvs-agent-track-{}", std::process::id()));
        let s = VrrpScript {
            name: "chk".into(),
            script: format!("test -e {}", flag.display()).as_str().into(),
            interval: 0.02,
            timeout: Some(1.0),
            weight: -10,
            weight_reverse: false,
            rise: 2,
            fall: 3,
            init_fail: false,
            loc: Loc { file: "t".into(), line: 1 },
        };
        let (tx, mut rx) = watch::channel(true);
        let task = tokio::spawn(run_script(s, tx));
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert!(!*rx.borrow());
        std::fs::write(&flag, b"").unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert!(*rx.borrow());
        std::fs::remove_file(&flag).unwrap();
        task.abort();
        assert!(interface_up("lo"));
        assert!(!interface_up("no-such-if0"));
        assert!(interface_has_address("lo", "127.0.0.1".parse().unwrap()));
        assert!(!interface_has_address("lo", "127.0.0.2".parse().unwrap()), "in 127/8, not an address of lo");
        assert!(!interface_has_address("no-such-if0", "127.0.0.1".parse().unwrap()));
    }

    /// keepalived's `init_fail`: a script starting as failed counts as up only after
    /// `rise` successes.
    #[tokio::test]
    async fn an_init_fail_script_rises_after_rise_successes() {
        let s = VrrpScript {
            name: "chk".into(),
            script: "true".into(),
            interval: 0.05,
            timeout: Some(1.0),
            weight: 0,
            weight_reverse: false,
            rise: 3,
            fall: 1,
            init_fail: true,
            loc: Loc { file: "t".into(), line: 1 },
        };
        let (tx, mut rx) = watch::channel(!s.init_fail);
        let t = std::time::Instant::now();
        let task = tokio::spawn(run_script(s, tx));
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert!(*rx.borrow());
        assert!(t.elapsed() >= Duration::from_millis(100), "three runs, 50 ms apart: {:?}", t.elapsed());
        task.abort();
    }
}
