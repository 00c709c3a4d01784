//! What the agent's namespace tests share.

use testnet::NetNs;

/// Runs `f` on a thread that has entered `ns`, on a current-thread runtime; a panic in
/// `f` fails the caller.
pub fn in_netns<F: std::future::Future<Output = ()>>(ns: &NetNs, f: impl FnOnce() -> F + Send + 'static) {
    in_netns_ret(ns, f)
}

/// As [`in_netns`], returning what `f` returns.
pub fn in_netns_ret<T: Send + 'static, F: std::future::Future<Output = T>>(
    ns: &NetNs,
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    let path = format!("/var/run/netns/{}", ns.name());
    let h = std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(f())
    });
    match h.join() {
        Ok(t) => t,
        Err(e) => std::panic::resume_unwind(e),
    }
}
