//! rvs's command-line tools, as a library so that their parsing and output are unit-tested.
//!
//! - [`adm`]: `rvsadm`, ipvsadm's syntax and output with DPVS's FullNAT additions
//!   (`-P/-Q/-G` local addresses).
//! - [`ip`]: `rvsip`, dpip's syntax (`link`, `addr`, `route`, `neigh`, `vlan`, `stats`),
//!   and rvs's own `fwmark` rules for rvsadm's firewall-mark services.
//!
//! Both parse their arguments into a command (pure, no I/O), then run it against a [`Ctl`]
//! (the control socket in the binaries, a scripted fake in the tests) and print to a
//! writer.

use std::io;
use std::time::{Duration, Instant};

use ctl::{CtlError, Request, Response};
use fnat::engine::listing::ConnInfo;

pub mod addr;
pub mod adm;
pub mod ip;

/// The environment variable naming the control socket when `--socket` is not given.
pub const SOCKET_ENV: &str = "RVS_SOCKET";

/// Connections fetched per request by `rvsadm -lnc`.
pub const CONN_PAGE: u32 = 1000;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line (or a restore file) is wrong; nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// rvsd refused the request, or could not be reached.
    #[error(transparent)]
    Ctl(#[from] CtlError),
    /// The request succeeded but what was asked for does not exist (e.g. `-L -t` of a
    /// service that is not there).
    #[error("{0}")]
    NotFound(String),
    /// Writing the output failed.
    #[error("write: {0}")]
    Io(#[from] io::Error),
}

impl CliError {
    /// The process exit status for this error: 2 for bad input (as ipvsadm), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// Whether this is a closed pipe on output (`rvsadm -lnc | head`), which is not an
    /// error worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// A usage error from anything printable.
pub(crate) fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// The exit of a tool: success, or one line `TOOL: problem` on stderr and the error's
/// exit status (a closed stdout, as with `| head`, is not an error).
pub fn finish(tool: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    use std::process::ExitCode;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<CliError>() {
            Some(c) if c.is_broken_pipe() => ExitCode::SUCCESS,
            Some(c) => {
                eprintln!("{tool}: {}", one_line(&c.to_string()));
                ExitCode::from(c.exit_code())
            }
            None => {
                eprintln!("{tool}: {}", one_line(&format!("{e:#}")));
                ExitCode::FAILURE
            }
        },
    }
}

/// `msg` on one line: line breaks become `; `, surrounding blanks are dropped.
pub fn one_line(msg: &str) -> String {
    msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

/// The control-socket path: `--socket`, else `$RVS_SOCKET`, else [`ctl::DEFAULT_SOCKET`].
pub fn socket_path(opt: Option<&str>) -> String {
    match opt {
        Some(p) => p.to_string(),
        None => {
            std::env::var(SOCKET_ENV).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| ctl::DEFAULT_SOCKET.to_string())
        }
    }
}

/// What the tools need from rvsd: the control client, or a fake in tests.
pub trait Ctl {
    /// Sends one request; an error reply is `Err(CtlError::Remote)`.
    fn call(&mut self, req: Request) -> Result<Response, CtlError>;

    /// Hands every connection to `f`, page by page, as the pages arrive.
    fn for_each_conn(&mut self, page: u32, templates: bool, f: &mut dyn FnMut(&ConnInfo)) -> Result<(), CtlError>;

    /// Waits about `d` between two samples and returns the time that really passed.
    fn pause(&mut self, d: Duration) -> Duration {
        let t = Instant::now();
        std::thread::sleep(d);
        t.elapsed()
    }
}

impl Ctl for ctl::Client {
    fn call(&mut self, req: Request) -> Result<Response, CtlError> {
        ctl::Client::call(self, req)
    }

    fn for_each_conn(&mut self, page: u32, templates: bool, f: &mut dyn FnMut(&ConnInfo)) -> Result<(), CtlError> {
        ctl::Client::for_each_conn(self, page, templates, f)
    }
}

/// A reply of the wrong kind.
pub(crate) fn unexpected(expected: &str, got: &Response) -> CliError {
    let kind = serde_json::to_value(got)
        .ok()
        .and_then(|v| v.get("result").and_then(|r| r.as_str()).map(str::to_string))
        .unwrap_or_else(|| "something else".to_string());
    CliError::Ctl(CtlError::BadReply(format!("expected {expected}, got {kind}")))
}

/// Prints `resp` as one JSON document (the `--json` form of every listing).
pub(crate) fn write_json(out: &mut dyn io::Write, resp: &Response) -> Result<(), CliError> {
    let msg = ctl::ResponseMsg::from(resp.clone());
    serde_json::to_writer_pretty(&mut *out, &msg).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// Per-second rate of a counter that went from `a` to `b` in `dt` (0 if it went back,
/// e.g. after `-Z`).
pub(crate) fn rate(a: u64, b: u64, dt: Duration) -> u64 {
    let ms = dt.as_millis().max(1);
    (u128::from(b.saturating_sub(a)) * 1000 / ms) as u64
}

#[cfg(test)]
pub(crate) mod fake {
    //! A scripted [`Ctl`]: replies in order, records the requests.

    use super::*;
    use std::collections::VecDeque;

    /// Replies queued in order; every request is recorded.
    #[derive(Default)]
    pub struct FakeCtl {
        pub replies: VecDeque<Result<Response, CtlError>>,
        pub pages: VecDeque<Vec<ConnInfo>>,
        pub requests: Vec<Request>,
        pub paused: Vec<Duration>,
    }

    impl FakeCtl {
        pub fn new(replies: Vec<Response>) -> FakeCtl {
            FakeCtl { replies: replies.into_iter().map(Ok).collect(), ..FakeCtl::default() }
        }
    }

    impl Ctl for FakeCtl {
        fn call(&mut self, req: Request) -> Result<Response, CtlError> {
            self.requests.push(req);
            self.replies.pop_front().unwrap_or(Ok(Response::Done { gen: 1 }))
        }

        fn for_each_conn(&mut self, page: u32, templates: bool, f: &mut dyn FnMut(&ConnInfo)) -> Result<(), CtlError> {
            self.requests.push(Request::ConnList { cursor: ctl::ConnCursor::default(), max: page, templates });
            while let Some(p) = self.pages.pop_front() {
                p.iter().for_each(&mut *f);
            }
            Ok(())
        }

        fn pause(&mut self, d: Duration) -> Duration {
            self.paused.push(d);
            d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n\n  b  \nc"), "a; b; c");
        assert_eq!(one_line("single"), "single");
    }

    #[test]
    fn rates_per_second() {
        assert_eq!(rate(100, 1100, Duration::from_secs(1)), 1000);
        assert_eq!(rate(100, 1100, Duration::from_millis(500)), 2000);
        assert_eq!(rate(1100, 100, Duration::from_secs(1)), 0);
    }

    #[test]
    fn socket_option_wins() {
        assert_eq!(socket_path(Some("/tmp/x.sock")), "/tmp/x.sock");
    }
}
