//! Running the scripts keepalived.conf names ([`Script`]: notify, check, FIFO and
//! lifecycle scripts): each by `/bin/sh -c`, as the user and group it names (keepalived's
//! `[username [groupname]]`, `user`, `script_user`).

use crate::keepalived::config::Script;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
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

/// keepalived's `check_script_secure` for a script run with root's rights (as root, with
/// group root, or by an agent running as root without a user for it): the program (the
/// command's first word, searched in `PATH` when it has no `/`) and every directory
/// above it, as written and as resolved, belong to root and can be written by no one
/// else (a directory with the sticky bit, such as /tmp, may be world-writable), so that
/// no other user can make root run their code. None: safe, or not run as root, or not
/// found (a shell builtin, or a program not installed yet: it fails when run); Some: why
/// it is unsafe.
pub fn unsafe_reason(s: &Script) -> Option<String> {
    let root = match &s.run_as {
        Some(r) => r.uid == 0 || r.gid == 0,
        None => nix::unistd::geteuid().is_root(),
    };
    let word = s.cmd.split_whitespace().next()?.trim_matches(|c| c == '"' || c == '\'');
    if !root || word.starts_with('<') {
        return None;
    }
    let program = if word.contains('/') {
        PathBuf::from(word)
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        std::env::split_paths(&path).map(|d| d.join(word)).find(|p| p.is_file())?
    };
    std::fs::symlink_metadata(&program).ok()?;
    let resolved = std::fs::canonicalize(&program).unwrap_or_else(|_| program.clone());
    unsafe_path(&program).or_else(|| unsafe_path(&resolved))
}

/// The first component of `p` (from `/` down) that someone other than root can change.
fn unsafe_path(p: &Path) -> Option<String> {
    let p = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().ok()?.join(p) };
    p.ancestors().collect::<Vec<_>>().into_iter().rev().find_map(|a| {
        let m = std::fs::symlink_metadata(a).ok()?;
        let mode = m.permissions().mode();
        let guarded = m.is_dir() && mode & 0o1000 != 0 || m.file_type().is_symlink();
        let writable = (m.gid() != 0 && mode & 0o020 != 0) || mode & 0o002 != 0;
        if m.uid() != 0 {
            Some(format!("{} belongs to uid {}", a.display(), m.uid()))
        } else if writable && !guarded {
            Some(format!("{} can be written by others (mode {:o})", a.display(), mode & 0o7777))
        } else {
            None
        }
    })
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

    /// keepalived's check_script_secure: root's program in root's directories passes;
    /// one in a directory anyone may write (no sticky bit), or not root's, does not; a
    /// builtin passes, a missing path is named.
    #[test]
    fn root_scripts_must_be_out_of_other_users_reach() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        assert_eq!(unsafe_reason(&Script::new("/bin/true")), None);
        assert_eq!(unsafe_reason(&Script::new("true --x")), None, "searched in PATH");
        assert_eq!(unsafe_reason(&Script::new("exit 0")), None, "a shell builtin");
        assert_eq!(unsafe_reason(&Script::new("/no/such/notify.sh")), None, "not installed: fails when run");
        let dir = std::env::temp_dir().join(format!("rvs-agent-secure-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("notify.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let s = Script::new(format!("{} MASTER", script.display()));
        assert_eq!(unsafe_reason(&s), None, "root's file in root's 0755 directory (under sticky /tmp)");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(unsafe_reason(&s).unwrap().contains("can be written by others (mode 777)"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(unsafe_reason(&s), None, "sticky");
        std::os::unix::fs::chown(&script, Some(65534), None).unwrap();
        assert!(unsafe_reason(&s).unwrap().contains("belongs to uid 65534"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
