//! The control socket: a Unix stream socket (mode 0600, or 0660 for a configured
//! group), peer credentials checked on accept (root, or a member of the group), one
//! thread per client (this is the control path), requests handed to the control thread
//! over a channel, one reply per request. A malformed, oversized or wrong-version message
//! is answered with an error and the connection closed; the daemon is unaffected.

use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use ctl::frame::{self, FrameError};
use ctl::{ErrorCode, Request, RequestMsg, Response, ResponseMsg, PROTOCOL_VERSION};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{Gid, Group, Uid, User};

/// A request waiting for the control thread, with where its reply goes.
pub type Job = (Request, Sender<Response>);

/// Who may connect: root, and members of `group` if set.
#[derive(Debug, Clone)]
pub struct Access {
    group: Option<Group>,
}

impl Access {
    /// Access for root and, if given, the members of `group`.
    pub fn new(group: Option<&str>) -> Result<Access> {
        let group = match group {
            Some(name) => Some(Group::from_name(name)?.with_context(|| format!("control.group: no group {name:?}"))?),
            None => None,
        };
        Ok(Access { group })
    }

    /// Whether a peer with these credentials may use the socket.
    pub fn allows(&self, uid: u32, gid: u32) -> bool {
        if uid == 0 {
            return true;
        }
        let Some(g) = &self.group else { return false };
        if Gid::from_raw(gid) == g.gid {
            return true;
        }
        match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(u)) => g.mem.contains(&u.name),
            _ => false,
        }
    }
}

/// The listening socket; removed from the file system when dropped.
pub struct Server {
    path: PathBuf,
    _thread: JoinHandle<()>,
}

impl Server {
    /// Binds `path` (replacing a stale socket), sets its mode, and serves clients,
    /// sending their requests to `jobs`.
    pub fn start(path: &Path, access: Access, jobs: Sender<Job>) -> Result<Server> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                anyhow::bail!("{} is in use by a running rvsd", path.display());
            }
            std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
        }
        let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
        let mode = if access.group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if let Some(g) = &access.group {
            nix::unistd::chown(path, None, Some(g.gid))
                .with_context(|| format!("chown {} to {}", path.display(), g.name))?;
        }
        let thread = std::thread::Builder::new().name("rvsd-ctl".into()).spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (access, jobs) = (access.clone(), jobs.clone());
                let _ = std::thread::Builder::new()
                    .name("rvsd-ctl-client".into())
                    .spawn(move || serve(stream, &access, &jobs));
            }
        })?;
        Ok(Server { path: path.to_path_buf(), _thread: thread })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn reply(w: &mut UnixStream, resp: Response) -> bool {
    frame::write(w, &ResponseMsg::from(resp)).is_ok()
}

/// One client; when it goes, the addresses it leased go with it.
fn serve(stream: UnixStream, access: &Access, jobs: &Sender<Job>) {
    let mut leased = Vec::new();
    serve_requests(stream, access, jobs, &mut leased);
    for (dev, addr) in leased {
        tracing::info!(%addr, %dev, "control connection closed: removing its leased address");
        let (tx, rx) = mpsc::channel();
        if jobs.send((Request::AddrDel { dev, addr }, tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// Requests in, replies out, until the client closes or misbehaves.
fn serve_requests(
    stream: UnixStream,
    access: &Access,
    jobs: &Sender<Job>,
    leased: &mut Vec<(String, std::net::IpAddr)>,
) {
    let Ok(mut w) = stream.try_clone() else { return };
    match getsockopt(&stream, PeerCredentials) {
        Ok(c) if access.allows(c.uid(), c.gid()) => {}
        Ok(c) => {
            tracing::warn!(uid = c.uid(), pid = c.pid(), "control socket: peer refused");
            reply(
                &mut w,
                Response::error(ErrorCode::PermissionDenied, "permission denied: root or the control group only"),
            );
            return;
        }
        Err(e) => {
            tracing::warn!("control socket: no peer credentials: {e}");
            return;
        }
    }
    let mut r = BufReader::new(stream);
    loop {
        let line = match frame::read_line(&mut r) {
            Ok(l) => l,
            Err(FrameError::Closed) => return,
            Err(FrameError::TooLarge) => {
                reply(
                    &mut w,
                    Response::error(
                        ErrorCode::TooLarge,
                        format!("message larger than {} bytes", ctl::MAX_MESSAGE_BYTES),
                    ),
                );
                return;
            }
            Err(e) => {
                reply(&mut w, Response::error(ErrorCode::BadRequest, e.to_string()));
                return;
            }
        };
        // Check the version first so a newer client gets the right error.
        let v = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|j| j.get("v").and_then(|v| v.as_u64()));
        if v.is_some_and(|v| v != u64::from(PROTOCOL_VERSION)) {
            reply(
                &mut w,
                Response::error(
                    ErrorCode::VersionMismatch,
                    format!("protocol version {} is not {PROTOCOL_VERSION}", v.unwrap_or(0)),
                ),
            );
            return;
        }
        let req = match serde_json::from_str::<RequestMsg>(&line) {
            Ok(m) => m.req,
            Err(e) => {
                reply(&mut w, Response::error(ErrorCode::BadRequest, format!("bad request: {e}")));
                return;
            }
        };
        // Leases: remember what this connection added with `lease`, forget what it
        // removed.
        let lease = match &req {
            Request::AddrAdd { dev, addr, lease: true, .. } => Some((dev.clone(), addr.addr(), true)),
            Request::AddrDel { dev, addr } => Some((dev.clone(), *addr, false)),
            _ => None,
        };
        let (tx, rx) = mpsc::channel();
        if jobs.send((req, tx)).is_err() {
            reply(&mut w, Response::error(ErrorCode::Internal, "rvsd is shutting down"));
            return;
        }
        let resp = rx.recv().unwrap_or_else(|_| Response::error(ErrorCode::Internal, "rvsd is shutting down"));
        if let (Some((dev, addr, add)), Response::Done { .. }) = (lease, &resp) {
            leased.retain(|(d, a)| !(*d == dev && *a == addr));
            if add {
                leased.push((dev, addr));
            }
        }
        if !reply(&mut w, resp) {
            return;
        }
    }
}
