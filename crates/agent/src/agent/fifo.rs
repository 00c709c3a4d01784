//! keepalived's notify FIFOs (`global_defs`): `notify_fifo` gets every line,
//! `vrrp_notify_fifo` the VRRP ones (`INSTANCE "NAME" STATE PRIORITY`, and a sync group's
//! `GROUP "NAME" STATE 0`), `lvs_notify_fifo`
//! the health-check ones (`RS [ADDR]:PROTO:PORT VS UP|DOWN`, `VS [ADDR]:PROTO:PORT
//! UP|DOWN`).
//!
//! As keepalived 2.2.7 (`lib/notify.c`): the FIFO is made when missing (mode 0644, owned
//! by the user named after it; then removed again at exit), its `*_script` is started with the FIFO's path as its last
//! argument, and the FIFO is opened read-write and non-blocking and held open for the
//! agent's life. Holding it open is what keeps lines written before a reader attaches
//! (they wait in the pipe); read-write means opening never waits for a reader and writing
//! never fails for want of one. A line that does not fit (the pipe is full: nobody reads)
//! is dropped with a warning, never waited for. At exit the script gets SIGTERM.

use crate::keepalived::config::{GlobalDefs, NotifyFifoConf, Script};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One open FIFO, with the script reading it.
#[derive(Debug)]
struct Fifo {
    path: PathBuf,
    /// Which keyword, for the log (`notify_fifo`, `vrrp_notify_fifo`, `lvs_notify_fifo`).
    what: &'static str,
    file: File,
    /// Made by us: removed when closed (as keepalived).
    created: bool,
    script: Option<Child>,
}

impl Fifo {
    /// Makes (when missing), starts the script on, and opens `conf`'s FIFO.
    fn open(conf: &NotifyFifoConf, what: &'static str) -> std::io::Result<Option<Fifo>> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let Some(path) = conf.path.clone() else { return Ok(None) };
        let created = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_fifo() => false,
            Ok(_) => return Err(std::io::Error::other(format!("{} exists and is not a FIFO", path.display()))),
            Err(_) => {
                let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
                nix::unistd::mkfifo(&path, mode).map_err(std::io::Error::from)?;
                if let Some(o) = &conf.owner {
                    let (uid, gid) = (nix::unistd::Uid::from_raw(o.uid), nix::unistd::Gid::from_raw(o.gid));
                    if let Err(e) = nix::unistd::chown(&path, Some(uid), Some(gid)) {
                        tracing::warn!(fifo = %path.display(), "{what}: could not give it to {}: {e}", o.user);
                    }
                }
                true
            }
        };
        // The script first, as keepalived: it may open the FIFO for reading right away.
        let script = conf.script.as_ref().and_then(|s| start_script(s, &path, what));
        let flags = nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOFOLLOW;
        match std::fs::OpenOptions::new().read(true).write(true).custom_flags(flags.bits()).open(&path) {
            Ok(file) => Ok(Some(Fifo { path, what, file, created, script })),
            Err(e) => {
                if created {
                    let _ = std::fs::remove_file(&path);
                }
                if let Some(c) = script {
                    stop_script(c, what);
                }
                Err(e)
            }
        }
    }

    /// Writes one line (under PIPE_BUF: all or nothing) without waiting.
    fn write(&self, line: &str) {
        if let Err(e) = (&self.file).write(line.as_bytes()) {
            let full = e.kind() == std::io::ErrorKind::WouldBlock;
            let why = if full { "full (nobody reads it)".to_string() } else { e.to_string() };
            tracing::warn!(fifo = %self.path.display(), "{}: {why}: line dropped: {}", self.what, line.trim_end());
        }
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        // Removed before it is closed, so that a script reopening it cannot (keepalived).
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some(c) = self.script.take() {
            stop_script(c, self.what);
        }
    }
}

/// Starts `script` with the FIFO's path as its last argument.
fn start_script(script: &Script, path: &Path, what: &str) -> Option<Child> {
    let run = Script { cmd: format!("exec {} \"$1\"", script.cmd), run_as: script.run_as.clone() };
    match run.std_command().arg("rvs-agent").arg(path).spawn() {
        Ok(c) => {
            tracing::info!(%script, pid = c.id(), "{what}_script started");
            Some(c)
        }
        Err(e) => {
            tracing::warn!(%script, "{what}_script could not start: {e}");
            None
        }
    }
}

/// SIGTERM (keepalived's), then SIGKILL when it is still there after a second.
fn stop_script(mut c: Child, what: &str) {
    if let Ok(Some(_)) = c.try_wait() {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!(pid = c.id(), "{what}_script ignored SIGTERM: killed");
    let _ = c.kill();
    let _ = c.wait();
}

#[derive(Debug, Default)]
struct Open {
    conf: (NotifyFifoConf, NotifyFifoConf, NotifyFifoConf),
    global: Option<Fifo>,
    vrrp: Option<Fifo>,
    lvs: Option<Fifo>,
}

/// The agent's notify FIFOs and mail alerts, shared by its instances and its
/// health-check loop.
#[derive(Debug, Default)]
pub struct Notifier {
    open: Mutex<Open>,
    /// keepalived's mail alerts ([`crate::agent::mail`]).
    pub mail: super::mail::Mailer,
}

impl Notifier {
    /// Opens the FIFOs `g` names (a FIFO that cannot be opened is logged and left out, as
    /// keepalived does).
    pub fn new(g: &GlobalDefs) -> Notifier {
        let n = Notifier::default();
        n.reconfigure(g);
        n
    }

    /// After a reload: FIFOs whose path or script changed are closed (their scripts
    /// stopped) and opened again from `g`; unchanged ones stay open. (The mail settings
    /// are the caller's to give: [`super::mail::Mailer::reconfigure`].)
    pub fn reconfigure(&self, g: &GlobalDefs) {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let reopen = |slot: &mut Option<Fifo>, old: &mut NotifyFifoConf, new: &NotifyFifoConf, what| {
            if *old == *new && (slot.is_some() || new.path.is_none()) {
                return;
            }
            *slot = None;
            *old = new.clone();
            match Fifo::open(new, what) {
                Ok(f) => *slot = f,
                Err(e) => tracing::error!("{what} {}: {e}", new.path.as_deref().unwrap_or(Path::new("")).display()),
            }
        };
        let Open { conf, global, vrrp, lvs } = &mut *o;
        reopen(global, &mut conf.0, &g.notify_fifo, "notify_fifo");
        reopen(vrrp, &mut conf.1, &g.vrrp_notify_fifo, "vrrp_notify_fifo");
        reopen(lvs, &mut conf.2, &g.lvs_notify_fifo, "lvs_notify_fifo");
    }

    /// A VRRP line (`INSTANCE "NAME" STATE PRIORITY\n`, `GROUP "NAME" STATE 0\n`): to
    /// `notify_fifo` and
    /// `vrrp_notify_fifo`.
    pub fn vrrp(&self, line: &str) {
        let o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        o.global.iter().chain(&o.vrrp).for_each(|f| f.write(line));
    }

    /// A health-check line (`RS ...` / `VS ...`): to `notify_fifo` and `lvs_notify_fifo`.
    pub fn lvs(&self, line: &str) {
        let o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        o.global.iter().chain(&o.lvs).for_each(|f| f.write(line));
    }

    /// Closes every FIFO (removing those made here) and stops their scripts.
    pub fn close(&self) {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        (o.global, o.vrrp, o.lvs) = (None, None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

    #[test]
    fn lines_wait_for_a_reader_and_a_full_pipe_drops_without_blocking() {
        let dir = std::env::temp_dir().join(format!("rvs-agent-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("notify");
        let conf = NotifyFifoConf { path: Some(fifo.clone()), ..NotifyFifoConf::default() };
        let g = GlobalDefs { notify_fifo: conf, ..GlobalDefs::default() };
        let n = Notifier::new(&g);
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "made when missing");
        // Written before any reader: kept in the pipe.
        n.vrrp("INSTANCE \"VI_1\" BACKUP 100\n");
        n.lvs("RS [10.0.0.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n");
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&fifo)
            .unwrap();
        let mut got = String::new();
        let _ = reader.read_to_string(&mut got);
        assert_eq!(got, "INSTANCE \"VI_1\" BACKUP 100\nRS [10.0.0.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n");
        // Nobody reads: the pipe fills, later lines are dropped and nothing blocks.
        let line = format!("INSTANCE \"{}\" MASTER 100\n", "x".repeat(200));
        let t = Instant::now();
        for _ in 0..2000 {
            n.vrrp(&line);
        }
        assert!(t.elapsed() < Duration::from_secs(5));
        drop(reader);
        n.close();
        assert!(std::fs::metadata(&fifo).is_err(), "a FIFO made here is removed at exit");
        // Something else at the path: not opened, not replaced.
        let plain = dir.join("plain");
        std::fs::write(&plain, b"").unwrap();
        let g = GlobalDefs {
            lvs_notify_fifo: NotifyFifoConf { path: Some(plain.clone()), ..NotifyFifoConf::default() },
            ..GlobalDefs::default()
        };
        Notifier::new(&g).lvs("VS [192.0.2.1]:tcp:80 UP\n");
        assert_eq!(std::fs::read(&plain).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// keepalived's `notify_fifo PATH USER [GROUP]` and `notify_fifo_script CMD USER`: the
    /// FIFO made is the user's, the script runs as its user with the path as argument.
    #[test]
    fn the_fifo_and_its_script_belong_to_their_users() {
        use crate::keepalived::config::RunAs;
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("Debian has nobody");
        let as_nobody = RunAs { user: "nobody".into(), uid: nobody.uid.as_raw(), gid: nobody.gid.as_raw() };
        let dir = std::env::temp_dir().join(format!("rvs-agent-fifo-owner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (fifo, who) = (dir.join("notify"), dir.join("who"));
        let script = Script { cmd: format!("echo $(id -u) >{} && :", who.display()), run_as: Some(as_nobody.clone()) };
        let conf = NotifyFifoConf { path: Some(fifo.clone()), script: Some(script), owner: Some(as_nobody) };
        let n = Notifier::new(&GlobalDefs { notify_fifo: conf, ..GlobalDefs::default() });
        let m = std::fs::metadata(&fifo).unwrap();
        assert_eq!((m.uid(), m.gid()), (nobody.uid.as_raw(), nobody.gid.as_raw()));
        let t = Instant::now();
        while std::fs::read_to_string(&who).map_or(true, |s| s.is_empty()) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(&who).unwrap().trim(), nobody.uid.to_string());
        n.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
