//! The client: connect once, then one call per request.

use std::io::BufReader;
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::CtlError;
use crate::frame::{self, FrameError};
use crate::proto::{ConnCursor, NeighView, Request, RequestMsg, Response, ResponseMsg, ServiceSpec};
use crate::{SnatSpec, PROTOCOL_VERSION, STAGE_PART_BYTES};

/// A stage number unlikely to meet another client's: the process id and the time.
fn stage_id() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    (u64::from(std::process::id()) << 40) ^ nanos
}

/// A connection to rvsd's control socket.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// How long a reply may take (a capture's: its timeout more).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, CtlError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| CtlError::Io { path: path.display().to_string(), source };
        let stream = UnixStream::connect(&path).map_err(io)?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        Ok(Client { path, reader: BufReader::new(stream), writer })
    }

    /// Sends a request and returns the reply; an error reply becomes
    /// [`CtlError::Remote`]. A [`Request::ServiceReplace`] too large for one message is
    /// sent in parts and committed as one change (see [`Request::ServiceStage`]).
    pub fn call(&mut self, req: Request) -> Result<Response, CtlError> {
        match req {
            Request::ServiceReplace { services, snat } => self.replace(services, snat),
            // A capture answers when it ends: at its timeout at the latest.
            Request::Capture { timeout_s, .. } => {
                let wait = READ_TIMEOUT + Duration::from_secs(u64::from(timeout_s));
                let io = |source| CtlError::Io { path: self.path.display().to_string(), source };
                self.reader.get_ref().set_read_timeout(Some(wait)).map_err(io)?;
                let r = self.call_one(req);
                let _ = self.reader.get_ref().set_read_timeout(Some(READ_TIMEOUT));
                r
            }
            req => self.call_one(req),
        }
    }

    /// `ServiceReplace`, in parts of at most [`STAGE_PART_BYTES`] when it is larger.
    fn replace(&mut self, services: Vec<ServiceSpec>, snat: Option<Vec<SnatSpec>>) -> Result<Response, CtlError> {
        let sizes: Vec<usize> = services.iter().map(|s| serde_json::to_vec(s).map_or(0, |v| v.len() + 1)).collect();
        if sizes.iter().sum::<usize>() <= STAGE_PART_BYTES {
            return self.call_one(Request::ServiceReplace { services, snat });
        }
        let stage = stage_id();
        let mut part = Vec::new();
        let mut bytes = 0;
        for (spec, size) in services.into_iter().zip(sizes) {
            if bytes + size > STAGE_PART_BYTES && !part.is_empty() {
                self.call_one(Request::ServiceStage { stage, services: std::mem::take(&mut part) })?;
                bytes = 0;
            }
            bytes += size;
            part.push(spec);
        }
        if !part.is_empty() {
            self.call_one(Request::ServiceStage { stage, services: part })?;
        }
        self.call_one(Request::ServiceReplaceStaged { stage, snat })
    }

    /// One request, one reply.
    fn call_one(&mut self, req: Request) -> Result<Response, CtlError> {
        let io = |source| CtlError::Io { path: self.path.display().to_string(), source };
        frame::write(&mut self.writer, &RequestMsg::from(req)).map_err(io)?;
        let msg: ResponseMsg = match frame::read(&mut self.reader) {
            Ok(m) => m,
            Err(FrameError::Io(e)) => return Err(CtlError::Io { path: self.path.display().to_string(), source: e }),
            Err(e) => return Err(CtlError::BadReply(e.to_string())),
        };
        if msg.v != PROTOCOL_VERSION {
            return Err(CtlError::BadReply(format!(
                "protocol version {} (this client speaks {PROTOCOL_VERSION})",
                msg.v
            )));
        }
        match msg.resp {
            Response::Error { code, message } => Err(CtlError::Remote { code, message }),
            r => Ok(r),
        }
    }

    /// Every neighbour, by address, page by page (`page` per request), handed to `f`.
    pub fn for_each_neigh(&mut self, page: u32, mut f: impl FnMut(&NeighView)) -> Result<(), CtlError> {
        let mut after: Option<IpAddr> = None;
        loop {
            match self.call(Request::NeighList { after, max: Some(page) })? {
                Response::Neighs { neighs, next } => {
                    neighs.iter().for_each(&mut f);
                    match next {
                        Some(a) if after != Some(a) => after = Some(a),
                        _ => return Ok(()),
                    }
                }
                other => return Err(CtlError::BadReply(format!("expected neighs, got {other:?}"))),
            }
        }
    }

    /// Every connection (with `templates`, every persistence template instead), page by
    /// page (`page` per request), handed to `f`.
    pub fn for_each_conn(
        &mut self,
        page: u32,
        templates: bool,
        mut f: impl FnMut(&fnat::engine::listing::ConnInfo),
    ) -> Result<(), CtlError> {
        let mut cursor = ConnCursor::default();
        loop {
            match self.call(Request::ConnList { cursor, max: page, templates })? {
                Response::Conns { conns, next } => {
                    conns.iter().for_each(&mut f);
                    match next {
                        Some(c) => cursor = c,
                        None => return Ok(()),
                    }
                }
                other => return Err(CtlError::BadReply(format!("expected conns, got {other:?}"))),
            }
        }
    }
}
