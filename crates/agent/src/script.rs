//! Running the scripts keepalived.conf names ([`Script`]: notify, check, FIFO and
//! lifecycle scripts): each by `/bin/sh -c`, as the user and group it names (keepalived's
//! `[username [groupname]]`, `user`, `script_user`).

use crate::keepalived::config::Script;
use std::time::Duration;

impl Script {
    /// `/bin/sh -c COMMAND` as the script's user and group (a std command: the notify
    /// FIFOs' readers are plain children).
    pub fn std_command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c").arg(&self.cmd);
        if let Some(r) = &self.run_as {
            // gid first: std sets it, drops the supplementary groups, then the uid.
            c.gid(r.gid).uid(r.uid);
        }
        c
    }

    /// [`Script::std_command`] for the async runtime.
    pub fn command(&self) -> tokio::process::Command {
        tokio::process::Command::from(self.std_command())
    }
}

/// Runs a notify script in the background, logging failures. It starts at once (a
/// notify_stop script runs even when the agent exits right after) and is waited for in
/// the background.
pub fn spawn(s: Script) {
    let mut child = match s.command().spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(script = %s, "script failed to start: {e}");
            return;
        }
    };
    tokio::spawn(async move { log_exit(&s, child.wait().await) });
}

/// Starts `s` in a process group of its own (so that [`kill_group`] ends its children
/// too); a failure is logged.
pub fn spawn_in_group(s: &Script) -> Option<tokio::process::Child> {
    let mut c = s.command();
    c.process_group(0);
    c.spawn().inspect_err(|e| tracing::warn!(script = %s, "script failed to start: {e}")).ok()
}

/// Logs how a script ended, unless it succeeded.
pub fn log_exit(s: &Script, r: std::io::Result<std::process::ExitStatus>) {
    match r {
        Ok(st) if st.success() => {}
        Ok(st) => tracing::warn!(script = %s, "script exited with {st}"),
        Err(e) => tracing::warn!(script = %s, "script: {e}"),
    }
}

/// Ends a script's process group: SIGTERM and up to `grace` for it to go (none: at once),
/// then SIGKILL to the whole group (a child may have ignored SIGTERM), and reaps it.
pub async fn kill_group(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let pgid = nix::unistd::Pid::from_raw(pid as i32);
        if !grace.is_zero() {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
            let _ = tokio::time::timeout(grace, child.wait()).await;
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::config::RunAs;

    /// A script with a user runs as that user and group, not as the agent (root here);
    /// without one, as the agent.
    #[tokio::test]
    async fn runs_as_its_user_and_group() {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("Debian has nobody");
        let out = |s: Script| async move {
            let o = s.command().output().await.unwrap();
            String::from_utf8(o.stdout).unwrap().trim().to_string()
        };
        let as_nobody = Script {
            cmd: "echo $(id -u) $(id -g) $(id -G)".into(),
            run_as: Some(RunAs { user: "nobody".into(), uid: nobody.uid.as_raw(), gid: 1234 }),
        };
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(out(as_nobody).await, format!("{} 1234 1234", nobody.uid), "uid, gid, no inherited groups");
        assert_eq!(out(Script::new("id -u")).await, me.to_string());
    }
}
