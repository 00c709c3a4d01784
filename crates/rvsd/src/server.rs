//! The control socket: a Unix stream socket (mode 0600, or 0660 for a configured
//! group), peer credentials checked on accept (root, or a member of the group), one JSON
//! line per request and per reply (bounded at [`ctl::MAX_MESSAGE_BYTES`]), requests
//! handed to the control thread over a channel. A malformed, oversized or wrong-version
//! message is answered with an error and the connection closed; the daemon is unaffected.
//!
//! One thread serves every client (epoll, non-blocking sockets): no thread per client, so
//! idle or stuck clients cost a file descriptor and a few bytes each, never a thread.
//! The bounds ([`Limits`]):
//! - at most `max_clients` at once; a newcomer past it closes the client idle longest
//!   (one with no request in flight, nothing half-read or half-written, and no leased
//!   address), or, if every client is busy, gets an error reply and is closed;
//! - a client that sends nothing for `idle` is closed;
//! - a request must arrive whole, and a reply be read whole, within `io` of its first
//!   byte; a slower client is closed.
//!
//! A client has one request in flight at a time; what it pipelines waits in its buffer.
//! The control thread's reply comes back on a per-request channel, which the server
//! thread polls every millisecond while a request is in flight.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ctl::frame::{self, FrameError};
use ctl::{ErrorCode, Request, RequestMsg, Response, ResponseMsg, PROTOCOL_VERSION};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{Gid, Group, Uid, User};

/// What the control socket's thread hands the control thread.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // A few a second at most: not worth a box each.
pub enum Job {
    /// A request waiting for the control thread.
    Request {
        /// What the client asked.
        req: Request,
        /// Where its reply goes.
        reply: Sender<Response>,
        /// For a capture, where it writes (checked here, as its requester may:
        /// [`CaptureTarget`]).
        file: Option<CaptureTarget>,
        /// The control connection it came on (unique for the server's life): the lessee
        /// of the addresses it adds with `lease`.
        client: u64,
    },
    /// Control connection `client` is gone: it closed, or hung up while its request
    /// was in flight (told then, and again when it is closed). A capture it started
    /// ends now (`rvsip capture` interrupted); so do its leases.
    Gone {
        /// The control connection.
        client: u64,
    },
}

/// The longest capture (`rvsip capture -t`): a capture holds the one capture slot and
/// its file until it ends.
pub const MAX_CAPTURE_S: u32 = 3600;

/// Where a capture of `uid`'s (group `gid`) is to write: its directory, opened and
/// checked by the control socket's thread, and the file's name in it. The file itself
/// is made only once the control thread has found the capture valid
/// ([`CaptureTarget::create`]): a refused capture (no such port, a bad filter, one
/// running already) leaves no file behind, and truncates none.
///
/// As that user could and no further: rvsd runs as root and the control group's
/// members need not be. For anyone but root the file is created new (`O_EXCL`) in a
/// directory the user owns, and handed to the user, so a capture cannot create,
/// overwrite or truncate a file anywhere the user could not (a capture of crafted
/// packets into `/etc/cron.d/x` or `/root/.ssh/authorized_keys` would be root's). For
/// everyone: the last component is never followed as a symbolic link, and only a
/// regular file is written (a FIFO without a reader would have held the control
/// thread). The file is named under the directory opened first (through
/// `/proc/self/fd`), so what is checked is what is written to.
#[derive(Debug)]
pub struct CaptureTarget {
    dir: std::fs::File,
    name: std::ffi::OsString,
    path: String,
    uid: u32,
    gid: u32,
}

impl CaptureTarget {
    /// Checks `path`'s directory for `uid` (see [`CaptureTarget`]).
    pub fn new(path: &str, uid: u32, gid: u32) -> Result<CaptureTarget, String> {
        use std::os::unix::fs::MetadataExt;
        let p = Path::new(path);
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return Err(format!("capture file {path:?} must be an absolute path to a file"));
        };
        if !p.is_absolute() {
            return Err(format!("capture file {path:?} must be an absolute path"));
        }
        let dir = std::fs::File::open(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let meta = dir.metadata().map_err(|e| format!("{}: {e}", parent.display()))?;
        if !meta.is_dir() {
            return Err(format!("{}: not a directory", parent.display()));
        }
        if uid != 0 && meta.uid() != uid {
            return Err(format!(
                "capture file {path:?}: {} is not yours (uid {uid}): rvsd writes captures for others than root \
                 only into a directory they own",
                parent.display()
            ));
        }
        Ok(CaptureTarget { dir, name: name.to_owned(), path: path.to_owned(), uid, gid })
    }

    /// Makes the file (root's: created or truncated; anyone else's: created new and
    /// handed over).
    pub fn create(self) -> Result<std::fs::File, String> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let path = &self.path;
        let at = Path::new("/proc/self/fd").join(self.dir.as_raw_fd().to_string()).join(&self.name);
        let flags = (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits();
        let mut o = std::fs::OpenOptions::new();
        o.write(true).custom_flags(flags);
        if self.uid == 0 {
            o.create(true).truncate(true).mode(0o644);
        } else {
            o.create_new(true).mode(0o600);
        }
        let file = o.open(&at).map_err(|e| format!("{path}: {e}"))?;
        if !file.metadata().map_err(|e| format!("{path}: {e}"))?.is_file() {
            return Err(format!("{path}: not a regular file"));
        }
        if self.uid != 0 {
            std::os::unix::fs::fchown(&file, Some(self.uid), Some(self.gid)).map_err(|e| format!("{path}: {e}"))?;
        }
        Ok(file)
    }
}

/// Who may connect: root, and members of `group` if set.
#[derive(Debug, Clone)]
pub struct Access {
    group: Option<Group>,
}

impl Access {
    /// Access for root and, if given, the members of `group`.
    pub fn new(group: Option<&str>) -> Result<Access> {
        let group = match group {
            Some(name) => Some(
                Group::from_name(name)
                    .with_context(|| format!("control.group: group {name:?}"))?
                    .with_context(|| format!("control.group: no group {name:?}"))?,
            ),
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

/// Bounds on the socket's clients (`[control]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Clients served at once.
    pub max_clients: usize,
    /// A client that sends nothing this long is closed.
    pub idle: Duration,
    /// A request must arrive whole, and a reply be read whole, within this.
    pub io: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_clients: 1024, idle: Duration::from_secs(60), io: Duration::from_secs(10) }
    }
}

/// The listening socket and its thread; dropping it stops the thread, closes every
/// client and removes the socket file.
pub struct Server {
    path: PathBuf,
    /// Written to stop the thread.
    waker: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (creating its directory; replacing a stale socket, refusing one a
    /// running rvsd listens on and anything that is not a socket), sets its mode, and
    /// serves clients, sending their requests to `jobs`.
    pub fn start(path: &Path, access: Access, jobs: Sender<Job>, limits: Limits) -> Result<Server> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    anyhow::bail!("{shown} is in use by a running rvsd");
                }
                std::fs::remove_file(path).with_context(|| format!("remove stale {shown}"))?;
                tracing::info!(socket = %shown, "removed a stale control socket");
            }
            Ok(_) => anyhow::bail!("{shown} exists and is not a socket; rvsd will not replace it"),
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).with_context(|| format!("bind {shown}"))?;
        // From here on the file is ours: remove it on every way out.
        let mut server = Server { path: path.to_path_buf(), waker: None, thread: None };
        let mode = if access.group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {shown}"))?;
        if let Some(g) = &access.group {
            nix::unistd::chown(path, None, Some(g.gid)).with_context(|| format!("chown {shown} to {}", g.name))?;
        }
        listener.set_nonblocking(true)?;
        let (waker, wake_rx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        let lp = Loop::new(listener, wake_rx, access, jobs, clamp(limits))?;
        server.waker = Some(waker);
        server.thread = Some(std::thread::Builder::new().name("rvsd-ctl".into()).spawn(move || lp.run())?);
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(w) = &mut self.waker {
            let _ = w.write_all(b"x");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// File descriptors kept for everything but the control clients.
const FD_RESERVE: u64 = 256;

/// Lowers `max_clients` to what the open-file limit allows.
fn clamp(mut limits: Limits) -> Limits {
    if let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let room = soft.saturating_sub(FD_RESERVE).max(16) as usize;
        if limits.max_clients > room {
            tracing::warn!(
                max_clients = limits.max_clients,
                open_files = soft,
                "control.max_clients lowered to {room} by the open-file limit"
            );
            limits.max_clients = room;
        }
    }
    limits
}

/// Raises this process's open-file limit to its hard limit (the control socket's clients
/// each take one).
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!("open-file limit stays {soft}: {e}");
            }
        }
    }
}

const LISTENER: u64 = 0;
const WAKER: u64 = 1;
/// Bytes read from a client per read call.
const READ_CHUNK: usize = 64 * 1024;
/// How often idle and slow clients are looked for.
const SWEEP: Duration = Duration::from_millis(500);
/// How long accepting pauses when no file descriptor is left and no client can go.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A client's address lease change, applied when its request succeeds.
type LeaseChange = (String, IpAddr, bool);

/// The longest part of a request the audit log quotes.
const AUDIT_QUOTE: usize = 400;

/// A request in flight, as the audit log names it: the peer and the request's text
/// (cut at [`AUDIT_QUOTE`] bytes).
struct InFlight {
    reply: Receiver<Response>,
    lease: Option<LeaseChange>,
    quote: String,
    /// A packet capture (logged when its directory is checked; an error reply is
    /// logged too).
    capture: bool,
}

/// The start of `line`, at most `max` bytes, cut at a character boundary.
fn quote(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &line[..end], line.len())
}

/// One connected client.
struct Client {
    stream: UnixStream,
    /// Received, not yet handled (at most one line and what follows it in a read): a
    /// ring, so that taking a line costs that line, not what follows it (a read may
    /// hold thousands of short lines).
    inbuf: VecDeque<u8>,
    /// How far `inbuf` was searched for a newline.
    scanned: usize,
    /// A reply being written, and how much of it is out.
    outbuf: Vec<u8>,
    out_pos: usize,
    /// The request at the control thread.
    waiting: Option<InFlight>,
    /// The peer's user and process (SO_PEERCRED), for the audit log.
    peer: (u32, i32),
    /// The peer's group (a capture's file is handed to the peer).
    peer_gid: u32,
    /// Close once the reply is out (after an error, or after the peer's last line).
    close_after: bool,
    /// The peer closed its end.
    eof: bool,
    /// Taken off epoll (the peer hung up while its request was in flight).
    detached: bool,
    /// Last byte received or reply finished.
    active: Instant,
    /// When the partial line in `inbuf` began.
    partial_since: Option<Instant>,
    /// When the reply in `outbuf` was queued.
    out_since: Option<Instant>,
    /// Addresses this connection added with `lease` (as far as this thread knows: the
    /// control thread keeps the leases): it is never the one closed to make room.
    leased: Vec<(String, IpAddr)>,
    /// What epoll watches for it.
    interest: EpollFlags,
}

impl Client {
    fn new(stream: UnixStream, peer: (u32, i32), peer_gid: u32, now: Instant) -> Client {
        Client {
            stream,
            peer,
            peer_gid,
            inbuf: VecDeque::new(),
            scanned: 0,
            outbuf: Vec::new(),
            out_pos: 0,
            waiting: None,
            close_after: false,
            eof: false,
            detached: false,
            active: now,
            partial_since: None,
            out_since: None,
            leased: Vec::new(),
            interest: EpollFlags::empty(),
        }
    }

    /// Quiet: may be closed to make room for a newcomer.
    fn evictable(&self) -> bool {
        self.waiting.is_none()
            && self.inbuf.is_empty()
            && self.outbuf.is_empty()
            && self.leased.is_empty()
            && !self.close_after
    }

    /// What epoll should watch: input when ready for a request, output while a reply
    /// waits, nothing (hang-ups only) while the control thread works.
    fn wanted(&self) -> EpollFlags {
        if !self.outbuf.is_empty() {
            EpollFlags::EPOLLOUT
        } else if self.waiting.is_some() || self.close_after || self.eof {
            EpollFlags::empty()
        } else {
            EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP
        }
    }

    /// Queues a reply.
    fn queue(&mut self, resp: Response, now: Instant) {
        if frame::write(&mut self.outbuf, &ResponseMsg::from(resp)).is_ok() && self.out_since.is_none() {
            self.out_since = Some(now);
        }
    }

    /// Writes what it can of the reply; false if the connection failed.
    fn flush(&mut self, now: Instant) -> bool {
        while self.out_pos < self.outbuf.len() {
            match self.stream.write(&self.outbuf[self.out_pos..]) {
                Ok(0) => return false,
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.outbuf.clear();
        self.out_pos = 0;
        self.out_since = None;
        self.active = now;
        true
    }

    /// Reads what is there (until a whole line is buffered or the size bound is passed);
    /// false if the connection failed.
    fn fill(&mut self, scratch: &mut [u8], now: Instant) -> bool {
        loop {
            if self.has_line() || self.inbuf.len() > ctl::MAX_MESSAGE_BYTES {
                return true;
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(n) => {
                    if self.inbuf.is_empty() {
                        self.partial_since = Some(now);
                    }
                    self.inbuf.extend(&scratch[..n]);
                    self.active = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Whether `inbuf` holds a whole line.
    fn has_line(&mut self) -> bool {
        if let Some(i) = self.inbuf.range(self.scanned..).position(|&b| b == b'\n') {
            self.scanned += i;
            return true;
        }
        self.scanned = self.inbuf.len();
        false
    }

    /// Takes the next whole line (with its newline) out of `inbuf`; at end of input, the
    /// rest as a last line. `Err` if the line is over the bound.
    fn take_line(&mut self) -> Option<Result<Vec<u8>, ()>> {
        if self.has_line() && self.scanned < ctl::MAX_MESSAGE_BYTES + 1 {
            let line: Vec<u8> = self.inbuf.drain(..=self.scanned).collect();
            self.scanned = 0;
            self.partial_since = (!self.inbuf.is_empty()).then_some(Instant::now());
            return Some(Ok(line));
        }
        if self.inbuf.len() > ctl::MAX_MESSAGE_BYTES {
            return Some(Err(()));
        }
        if self.eof && !self.inbuf.is_empty() {
            self.scanned = 0;
            self.partial_since = None;
            return Some(Ok(Vec::from(std::mem::take(&mut self.inbuf))));
        }
        None
    }
}

/// The server thread's state.
struct Loop {
    epoll: Epoll,
    listener: UnixListener,
    wake: UnixStream,
    access: Access,
    jobs: Sender<Job>,
    limits: Limits,
    clients: HashMap<u64, Client>,
    next_id: u64,
    /// Clients with a request at the control thread.
    waiting: HashSet<u64>,
    /// Accepting pauses until then (no file descriptor left).
    paused_until: Option<Instant>,
    /// Newcomers refused and idle clients closed for room since the last log line.
    refused: u64,
    evicted: u64,
    reported_at: Instant,
}

impl Loop {
    fn new(
        listener: UnixListener,
        wake: UnixStream,
        access: Access,
        jobs: Sender<Job>,
        limits: Limits,
    ) -> Result<Loop> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(listener.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKER))?;
        Ok(Loop {
            epoll,
            listener,
            wake,
            access,
            jobs,
            limits,
            clients: HashMap::new(),
            next_id: 2,
            waiting: HashSet::new(),
            paused_until: None,
            refused: 0,
            evicted: 0,
            reported_at: Instant::now(),
        })
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut scratch = vec![0u8; READ_CHUNK];
        let mut swept = Instant::now();
        loop {
            let timeout: u16 = if !self.waiting.is_empty() {
                1
            } else if self.paused_until.is_some() {
                ACCEPT_PAUSE.as_millis() as u16
            } else {
                SWEEP.as_millis() as u16
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    tracing::error!("control socket: epoll: {e}; the control socket stops");
                    return;
                }
            };
            let now = Instant::now();
            for ev in &events[..n] {
                match ev.data() {
                    WAKER => {
                        let mut b = [0u8; 16];
                        if !matches!((&self.wake).read(&mut b), Err(ref e) if e.kind() == ErrorKind::WouldBlock) {
                            return; // the Server was dropped
                        }
                    }
                    LISTENER => self.accept(now),
                    id => self.on_event(id, ev.events(), &mut scratch, now),
                }
            }
            self.collect_replies(now);
            if self.paused_until.is_some_and(|t| now >= t) {
                self.paused_until = None;
                if let Err(e) = self.epoll.add(self.listener.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, LISTENER)) {
                    tracing::error!("control socket: {e}");
                }
            }
            if now.duration_since(swept) >= SWEEP {
                swept = now;
                self.sweep(now);
            }
        }
    }

    /// Accepts what is waiting (a bounded number per round, to stay fair to clients).
    fn accept(&mut self, now: Instant) {
        for _ in 0..256 {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(nix::libc::EMFILE | nix::libc::ENFILE)) => {
                    // No descriptor left: make room, or stop accepting for a moment.
                    if !self.evict_one() {
                        tracing::warn!("control socket: out of file descriptors; not accepting for {ACCEPT_PAUSE:?}");
                        let _ = self.epoll.delete(self.listener.as_fd());
                        self.paused_until = Some(now + ACCEPT_PAUSE);
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!("control socket: accept: {e}");
                    return;
                }
            };
            self.admit(stream, now);
        }
    }

    /// Checks a newcomer's credentials and makes room for it.
    fn admit(&mut self, mut stream: UnixStream, now: Instant) {
        let peer = match getsockopt(&stream, PeerCredentials) {
            Ok(c) if self.access.allows(c.uid(), c.gid()) => (c.uid(), c.pid(), c.gid()),
            Ok(c) => {
                tracing::warn!(uid = c.uid(), pid = c.pid(), "control socket: peer refused");
                let resp =
                    Response::error(ErrorCode::PermissionDenied, "permission denied: root or the control group only");
                let _ = frame::write(&mut stream, &ResponseMsg::from(resp));
                return;
            }
            Err(e) => {
                tracing::warn!("control socket: no peer credentials: {e}");
                return;
            }
        };
        if self.clients.len() >= self.limits.max_clients && !self.evict_one() {
            self.refused += 1;
            self.report(now);
            let resp = Response::error(
                ErrorCode::Internal,
                format!("too many control clients ({}), all busy; try again", self.limits.max_clients),
            );
            let _ = stream.set_nonblocking(true);
            let _ = frame::write(&mut stream, &ResponseMsg::from(resp));
            return;
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut c = Client::new(stream, (peer.0, peer.1), peer.2, now);
        c.interest = c.wanted();
        if let Err(e) = self.epoll.add(c.stream.as_fd(), EpollEvent::new(c.interest, id)) {
            tracing::warn!("control socket: {e}");
            return;
        }
        self.clients.insert(id, c);
        self.report(now);
    }

    /// Closes the client idle longest that may go; false if none may.
    fn evict_one(&mut self) -> bool {
        let oldest =
            self.clients.iter().filter(|(_, c)| c.evictable()).min_by_key(|(_, c)| c.active).map(|(&id, _)| id);
        match oldest {
            Some(id) => {
                tracing::debug!(client = id, "control socket: closing the client idle longest to make room");
                self.evicted += 1;
                self.close(id);
                true
            }
            None => false,
        }
    }

    /// Logs refusals and evictions at most every ten seconds.
    fn report(&mut self, now: Instant) {
        if (self.refused > 0 || self.evicted > 0) && now.duration_since(self.reported_at) >= Duration::from_secs(10) {
            tracing::warn!(
                max_clients = self.limits.max_clients,
                refused = self.refused,
                closed_idle = self.evicted,
                "control socket: at its client limit"
            );
            self.refused = 0;
            self.evicted = 0;
            self.reported_at = now;
        }
    }

    fn on_event(&mut self, id: u64, ev: EpollFlags, scratch: &mut [u8], now: Instant) {
        let Some(c) = self.clients.get_mut(&id) else { return };
        let mut ok = true;
        if ev.contains(EpollFlags::EPOLLOUT) {
            ok = c.flush(now);
        }
        if ok && ev.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP) && c.wanted().contains(EpollFlags::EPOLLIN)
        {
            ok = c.fill(scratch, now);
        }
        let hung_up = ev.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
        if !ok || (hung_up && c.waiting.is_none() && !ev.contains(EpollFlags::EPOLLIN)) {
            self.close(id);
            return;
        }
        if hung_up && c.waiting.is_some() {
            // Gone while the control thread works: keep the record until the reply comes
            // (its leases must go with it), but stop watching the socket; a capture it
            // started need not run on for no one.
            let _ = self.epoll.delete(c.stream.as_fd());
            c.detached = true;
            c.eof = true;
            let _ = self.jobs.send(Job::Gone { client: id });
            return;
        }
        self.advance(id, now);
    }

    /// Moves a client on: closes it when done, starts its next request, or sets what
    /// epoll watches.
    fn advance(&mut self, id: u64, now: Instant) {
        // A loop, not a recursion: every line already read is handled in turn (a
        // refused one is answered at once and the next follows; a client may send
        // thousands of them in one read).
        loop {
            let Some(c) = self.clients.get_mut(&id) else { return };
            if c.detached {
                if c.waiting.is_none() {
                    self.close(id);
                }
                return;
            }
            if c.outbuf.is_empty() && c.waiting.is_none() {
                if c.close_after {
                    self.close(id);
                    return;
                }
                match c.take_line() {
                    Some(Ok(line)) => {
                        self.request(id, &line, now);
                        // The reply may be queued already (an error): try to send it now.
                        let Some(c) = self.clients.get_mut(&id) else { return };
                        if !c.outbuf.is_empty() && !c.flush(now) {
                            self.close(id);
                            return;
                        }
                        continue;
                    }
                    Some(Err(())) => {
                        c.queue(
                            Response::error(
                                ErrorCode::TooLarge,
                                format!("message larger than {} bytes", ctl::MAX_MESSAGE_BYTES),
                            ),
                            now,
                        );
                        c.close_after = true;
                        if !c.flush(now) {
                            self.close(id);
                            return;
                        }
                        continue;
                    }
                    None if c.eof => {
                        self.close(id);
                        return;
                    }
                    None => {}
                }
            }
            let want = c.wanted();
            if want != c.interest {
                c.interest = want;
                if self.epoll.modify(c.stream.as_fd(), &mut EpollEvent::new(want, id)).is_err() {
                    self.close(id);
                }
            }
            return;
        }
    }

    /// Handles one line from client `id`: an error reply (and close), or a job for the
    /// control thread.
    fn request(&mut self, id: u64, raw: &[u8], now: Instant) {
        let Some(c) = self.clients.get_mut(&id) else { return };
        let fail = |c: &mut Client, resp: Response| {
            c.queue(resp, now);
            c.close_after = true;
        };
        let line = match frame::read_line(&mut std::io::BufReader::new(raw)) {
            Ok(l) => l,
            Err(FrameError::TooLarge) => {
                let msg = format!("message larger than {} bytes", ctl::MAX_MESSAGE_BYTES);
                return fail(c, Response::error(ErrorCode::TooLarge, msg));
            }
            Err(FrameError::Closed) => {
                c.close_after = true;
                return;
            }
            Err(e) => return fail(c, Response::error(ErrorCode::BadRequest, e.to_string())),
        };
        // Check the version first so a newer client gets the right error.
        let json = serde_json::from_str::<serde_json::Value>(&line).ok();
        let v = json.as_ref().and_then(|j| j.get("v").and_then(|v| v.as_u64()));
        if v.is_some_and(|v| v != u64::from(PROTOCOL_VERSION)) {
            let msg = format!("protocol version {} is not {PROTOCOL_VERSION}", v.unwrap_or(0));
            return fail(c, Response::error(ErrorCode::VersionMismatch, msg));
        }
        let req = match serde_json::from_str::<RequestMsg>(&line) {
            Ok(m) => m.req,
            Err(e) if json.is_some() => {
                // Well-formed, but no request rvsd knows (an unknown operation or field:
                // a newer client's): refused by name, and the connection stays, with its
                // leases (an agent's VIPs must not go with one request it sent too early).
                return c.queue(Response::error(ErrorCode::BadRequest, format!("bad request: {e}")), now);
            }
            Err(e) => return fail(c, Response::error(ErrorCode::BadRequest, format!("bad request: {e}"))),
        };
        // Leases: remember what this connection added with `lease`, forget what it
        // removed.
        let lease = match &req {
            Request::AddrAdd { dev, addr, lease: true, .. } => Some((dev.clone(), addr.addr(), true)),
            Request::AddrDel { dev, addr } => Some((dev.clone(), *addr, false)),
            _ => None,
        };
        // A capture's directory is checked here, with the peer's rights (see
        // `CaptureTarget`).
        let file = match &req {
            Request::Capture { path, .. } => match CaptureTarget::new(path, c.peer.0, c.peer_gid) {
                Ok(f) => {
                    // In the audit log as the changes are: who copies traffic, where to.
                    tracing::info!(uid = c.peer.0, pid = c.peer.1, request = %quote(&line, AUDIT_QUOTE), "control capture");
                    Some(f)
                }
                Err(m) => return fail(c, Response::error(ErrorCode::Invalid, m)),
            },
            _ => None,
        };
        let (tx, rx) = mpsc::channel();
        let capture = file.is_some();
        if self.jobs.send(Job::Request { req, reply: tx, file, client: id }).is_err() {
            return fail(c, Response::error(ErrorCode::Internal, "rvsd is shutting down"));
        }
        c.waiting = Some(InFlight { reply: rx, lease, quote: quote(&line, AUDIT_QUOTE), capture });
        self.waiting.insert(id);
    }

    /// Takes the control thread's replies and starts sending them.
    fn collect_replies(&mut self, now: Instant) {
        if self.waiting.is_empty() {
            return;
        }
        let ids: Vec<u64> = self.waiting.iter().copied().collect();
        // Addresses a client leased (taken over) or removed: no other client holds a
        // lease on them any more.
        let mut moved: Vec<(u64, IpAddr)> = Vec::new();
        for id in ids {
            let Some(c) = self.clients.get_mut(&id) else {
                self.waiting.remove(&id);
                continue;
            };
            let Some(flight) = &c.waiting else {
                self.waiting.remove(&id);
                continue;
            };
            let resp = match flight.reply.try_recv() {
                Ok(r) => r,
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Disconnected) => {
                    c.close_after = true;
                    Response::error(ErrorCode::Internal, "rvsd is shutting down")
                }
            };
            // The audit log: every change, once, with who asked and the generation it made;
            // a change published that a worker was slow to confirm (`Timeout`) is one too.
            let applied = match &resp {
                Response::Done { gen } => {
                    tracing::info!(uid = c.peer.0, pid = c.peer.1, gen, request = %flight.quote, "control change");
                    true
                }
                Response::Error { code: ErrorCode::Timeout, message } => {
                    tracing::warn!(uid = c.peer.0, pid = c.peer.1, request = %flight.quote, "control request: {message}");
                    true
                }
                Response::Error { message, .. } if flight.capture => {
                    // The audit log named the capture when its directory was checked:
                    // that it was refused, or failed, is said too.
                    tracing::info!(uid = c.peer.0, pid = c.peer.1, "control capture error: {message}");
                    false
                }
                _ => false,
            };
            if let (Some((dev, addr, add)), true) = (flight.lease.clone(), applied) {
                c.leased.retain(|(d, a)| !(*d == dev && *a == addr));
                if add {
                    c.leased.push((dev, addr));
                }
                moved.push((id, addr));
            }
            c.waiting = None;
            self.waiting.remove(&id);
            if c.detached {
                self.close(id);
                continue;
            }
            c.queue(resp, now);
            c.active = now;
            if !c.flush(now) {
                self.close(id);
                continue;
            }
            self.advance(id, now);
        }
        for (holder, addr) in moved {
            for (_, c) in self.clients.iter_mut().filter(|(other, _)| **other != holder) {
                c.leased.retain(|(_, a)| *a != addr);
            }
        }
    }

    /// Closes idle clients and slow ones.
    fn sweep(&mut self, now: Instant) {
        let late: Vec<(u64, &'static str)> = self
            .clients
            .iter()
            .filter_map(|(&id, c)| {
                if c.waiting.is_some() {
                    None
                } else if c.out_since.is_some_and(|t| now.duration_since(t) > self.limits.io) {
                    Some((id, "did not read its reply"))
                } else if c.partial_since.is_some_and(|t| now.duration_since(t) > self.limits.io) {
                    Some((id, "did not finish its request"))
                } else if c.outbuf.is_empty() && now.duration_since(c.active) > self.limits.idle {
                    Some((id, "idle"))
                } else {
                    None
                }
            })
            .collect();
        for (id, why) in late {
            tracing::debug!(client = id, "control socket: closing a client that {why}");
            if why == "did not finish its request" {
                if let Some(c) = self.clients.get_mut(&id) {
                    let msg = format!("request not complete within {:?}", self.limits.io);
                    let _ =
                        frame::write(&mut c.stream, &ResponseMsg::from(Response::error(ErrorCode::BadRequest, msg)));
                }
            }
            self.close(id);
        }
        self.report(now);
    }

    /// Closes client `id`, and tells the control thread (its leases end).
    fn close(&mut self, id: u64) {
        let Some(c) = self.clients.remove(&id) else { return };
        self.waiting.remove(&id);
        if !c.detached {
            let _ = self.epoll.delete(c.stream.as_fd());
        }
        let _ = self.jobs.send(Job::Gone { client: id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};

    /// A server on a fresh path with a stand-in control thread answering `Done` to
    /// everything and recording what it was asked.
    struct Fixture {
        server: Option<Server>,
        path: PathBuf,
        seen: Arc<Mutex<Vec<Request>>>,
        gone: Arc<Mutex<Vec<u64>>>,
    }

    impl Fixture {
        fn new(name: &str, limits: Limits) -> Fixture {
            let dir = std::env::temp_dir().join(format!("rvs-server-{}-{name}", std::process::id()));
            let path = dir.join("ctl.sock");
            let (tx, rx) = mpsc::channel::<Job>();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let gone = Arc::new(Mutex::new(Vec::new()));
            let (log, gone_log) = (Arc::clone(&seen), Arc::clone(&gone));
            std::thread::spawn(move || {
                for job in rx {
                    let (req, reply) = match job {
                        Job::Request { req, reply, .. } => (req, reply),
                        Job::Gone { client } => {
                            gone_log.lock().unwrap().push(client);
                            continue;
                        }
                    };
                    log.lock().unwrap().push(req);
                    let _ = reply.send(Response::Done { gen: 7 });
                }
            });
            let server = Server::start(&path, Access::new(None).unwrap(), tx, limits).expect("server");
            Fixture { server: Some(server), path, seen, gone }
        }

        fn connect(&self) -> UnixStream {
            let s = UnixStream::connect(&self.path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        }

        fn requests(&self) -> Vec<Request> {
            self.seen.lock().unwrap().clone()
        }

        /// The connections the control thread was told are gone.
        fn gone(&self) -> Vec<u64> {
            self.gone.lock().unwrap().clone()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            drop(self.server.take());
            assert!(!self.path.exists(), "the socket file goes with the server");
            let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
        }
    }

    fn line(req: Request) -> Vec<u8> {
        let mut v = Vec::new();
        frame::write(&mut v, &RequestMsg::from(req)).unwrap();
        v
    }

    fn read_reply(r: &mut impl BufRead) -> String {
        let mut s = String::new();
        r.read_line(&mut s).unwrap();
        s
    }

    fn closed(s: &mut UnixStream) -> bool {
        let mut b = [0u8; 64];
        matches!(s.read(&mut b), Ok(0))
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_a_last_line_without_newline_counts() {
        let f = Fixture::new("pipe", Limits::default());
        let mut s = f.connect();
        let mut both = line(Request::Status {});
        both.extend(line(Request::AddrList {}));
        s.write_all(&both).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert!(read_reply(&mut r).contains("\"gen\":7"));
        assert!(read_reply(&mut r).contains("\"gen\":7"));
        let mut last = line(Request::Status {});
        last.pop();
        s.write_all(&last).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(read_reply(&mut r).contains("\"gen\":7"));
        assert_eq!(read_reply(&mut r), "", "closed after the last line");
        assert_eq!(f.requests().len(), 3);
    }

    #[test]
    fn the_idlest_client_makes_room_and_leases_leave_with_their_connection() {
        let f = Fixture::new("room", Limits { max_clients: 2, ..Limits::default() });
        let mut holder = f.connect();
        let add =
            Request::AddrAdd { dev: "p0".into(), addr: "192.0.2.9/32".parse().unwrap(), sapool: false, lease: true };
        holder.write_all(&line(add)).unwrap();
        assert!(read_reply(&mut BufReader::new(holder.try_clone().unwrap())).contains("done"));
        let mut idle = f.connect();
        std::thread::sleep(Duration::from_millis(50));
        // Full: the newcomer closes the idle one, never the lease holder.
        let mut newcomer = f.connect();
        newcomer.write_all(&line(Request::Status {})).unwrap();
        assert!(read_reply(&mut BufReader::new(newcomer.try_clone().unwrap())).contains("\"gen\":7"));
        assert!(closed(&mut idle), "the idle client made room");
        // The lease holder goes: the control thread is told (its leases end there).
        let gone_before = f.gone().len();
        drop(holder);
        let deadline = Instant::now() + Duration::from_secs(5);
        while f.gone().len() == gone_before {
            assert!(Instant::now() < deadline, "the control thread not told the holder went");
            std::thread::sleep(Duration::from_millis(10));
        }
        // A lease taken over leaves its old holder a client like any other.
        let add =
            || Request::AddrAdd { dev: "p0".into(), addr: "192.0.2.8/32".parse().unwrap(), sapool: false, lease: true };
        let mut old = f.connect();
        old.write_all(&line(add())).unwrap();
        assert!(read_reply(&mut BufReader::new(old.try_clone().unwrap())).contains("done"), "max 2: newcomer and old");
        newcomer.write_all(&line(add())).unwrap();
        assert!(read_reply(&mut BufReader::new(newcomer.try_clone().unwrap())).contains("done"), "taken over");
        std::thread::sleep(Duration::from_millis(50));
        let mut third = f.connect();
        third.write_all(&line(Request::Status {})).unwrap();
        assert!(read_reply(&mut BufReader::new(third.try_clone().unwrap())).contains("\"gen\":7"));
        assert!(closed(&mut old), "the old holder, idle and holding nothing now, made room");
        drop(third);
        // Every client busy (a partial request each): the next one is refused.
        newcomer.write_all(b"{").unwrap();
        let mut other = f.connect();
        other.write_all(b"{").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let refused = f.connect();
        let reply = read_reply(&mut BufReader::new(refused));
        assert!(reply.contains("too many control clients"), "{reply}");
    }

    #[test]
    fn idle_and_slow_clients_are_closed() {
        let f = Fixture::new(
            "slow",
            Limits { idle: Duration::from_secs(1), io: Duration::from_secs(1), ..Limits::default() },
        );
        let mut idle = f.connect();
        let mut slow = f.connect();
        slow.write_all(b"{\"v\":1,").unwrap();
        let t = Instant::now();
        let reply = read_reply(&mut BufReader::new(slow.try_clone().unwrap()));
        assert!(reply.contains("bad_request") && reply.contains("not complete"), "{reply}");
        assert!(closed(&mut slow));
        assert!(closed(&mut idle));
        assert!(t.elapsed() >= Duration::from_secs(1) && t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    }

    #[test]
    fn oversized_and_malformed_lines_get_their_errors() {
        let f = Fixture::new("bad", Limits::default());
        let mut s = f.connect();
        s.write_all(b"{nope\n").unwrap();
        let reply = read_reply(&mut BufReader::new(s.try_clone().unwrap()));
        assert!(reply.contains("bad_request"), "{reply}");
        assert!(closed(&mut s));
        let mut s = f.connect();
        s.write_all(b"{\"v\":99,\"op\":\"status\"}\n").unwrap();
        assert!(read_reply(&mut BufReader::new(s.try_clone().unwrap())).contains("version_mismatch"));
        let s = f.connect();
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(&vec![b' '; ctl::MAX_MESSAGE_BYTES + 100]);
        });
        assert!(read_reply(&mut BufReader::new(s)).contains("too_large"));
        writer.join().unwrap();
        assert!(f.requests().is_empty());
    }

    #[test]
    fn a_live_socket_is_refused_and_a_stale_one_replaced() {
        let f = Fixture::new("live", Limits::default());
        let (tx, _rx) = mpsc::channel::<Job>();
        let err = Server::start(&f.path, Access::new(None).unwrap(), tx, Limits::default()).err().unwrap();
        assert!(err.to_string().contains("in use by a running rvsd"), "{err}");
        let stale = f.path.with_file_name("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        let (tx, _rx) = mpsc::channel::<Job>();
        let s = Server::start(&stale, Access::new(None).unwrap(), tx, Limits::default()).expect("stale replaced");
        drop(s);
        assert!(!stale.exists());
        let file = f.path.with_file_name("file");
        std::fs::write(&file, "x").unwrap();
        let (tx, _rx) = mpsc::channel::<Job>();
        assert!(Server::start(&file, Access::new(None).unwrap(), tx, Limits::default()).is_err());
        assert!(file.exists(), "a file that is not a socket is left alone");
    }

    /// A capture's file as its requester could make it: root anywhere (never through a
    /// symbolic link, never into a FIFO); anyone else only new, in a directory of its
    /// own, and handed over.
    #[test]
    fn capture_files_are_opened_with_the_requesters_rights() {
        let capture_file = |p: &str, uid, gid| CaptureTarget::new(p, uid, gid).and_then(CaptureTarget::create);
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("rvs-capfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let at = |n: &str| dir.join(n).display().to_string();
        // Root: created, truncated again; not through a link; not a FIFO.
        std::fs::write(at("old"), b"old").unwrap();
        capture_file(&at("old"), 0, 0).expect("root may overwrite");
        assert_eq!(std::fs::metadata(at("old")).unwrap().len(), 0);
        std::os::unix::fs::symlink(at("old"), at("link")).unwrap();
        assert!(capture_file(&at("link"), 0, 0).is_err(), "a link is not followed");
        nix::unistd::mkfifo(std::path::Path::new(&at("fifo")), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(capture_file(&at("fifo"), 0, 0).is_err(), "a FIFO without a reader is refused at once");
        assert!(capture_file("relative", 0, 0).is_err());
        // Another user: not in a directory that is not theirs (this one is root's).
        let e = capture_file(&at("new"), 4242, 4242).unwrap_err();
        assert!(e.contains("is not yours"), "{e}");
        // In their own directory: created new and theirs; never an existing file.
        std::os::unix::fs::chown(&dir, Some(4242), Some(4242)).unwrap();
        let f = capture_file(&at("new"), 4242, 4242).expect("their own directory");
        let m = f.metadata().unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (4242, 4242, 0o600));
        assert!(capture_file(&at("old"), 4242, 4242).is_err(), "an existing file is not theirs to truncate");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
