//! Prometheus metrics over HTTP (`[metrics] listen`): a thread of its own accepts a
//! scraper, asks the control thread for one rendering and sends it back. Nothing here
//! touches a worker: the control thread gathers the workers' counters the way
//! `rvsip stats` does (a copy each worker makes between bursts), and a slow or hostile
//! client holds only this thread, for at most [`IO_TIMEOUT`].
//!
//! The exposition is Prometheus's text format 0.0.4 ([`ctl::metrics::Exposition`]); what
//! each family holds is in `control/metrics.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ctl::metrics;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// How long a scraper may take to send its request, and to read the reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the control thread may take to render (it asks every worker first).
const RENDER_TIMEOUT: Duration = Duration::from_secs(10);

/// A request for counters the control thread answers on its sender: a Prometheus
/// scrape, or a command of DPDK's telemetry socket (registered by [`register_telemetry`]).
pub enum Scrape {
    /// The Prometheus text.
    Prometheus(Sender<String>),
    /// `/rvs/stats` (totals) or `/rvs/drops` (drops by reason).
    Telemetry(TelemetryCmd, Sender<dpdk::telemetry::Dict>),
}

/// rvsd's telemetry commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelemetryCmd {
    /// Totals: connections, packets and bytes, generation, mbufs.
    Stats,
    /// Drops by reason (non-zero ones).
    Drops,
}

/// Registers `/rvs/stats` and `/rvs/drops` with DPDK's telemetry, answered by the
/// control thread through `scrapes` (so `dpdk-telemetry.py` reads rvs's counters).
pub fn register_telemetry(scrapes: &Sender<Scrape>) -> Result<()> {
    for (cmd, which, help) in [
        (
            "/rvs/stats",
            TelemetryCmd::Stats,
            "rvs totals: connections, packets and bytes each way, generation, mbufs in use",
        ),
        ("/rvs/drops", TelemetryCmd::Drops, "rvs drops by reason (non-zero; names as in rvsip stats)"),
    ] {
        let tx = std::sync::Mutex::new(scrapes.clone());
        dpdk::telemetry::register(
            cmd,
            help,
            Box::new(move |_params| {
                let (reply, rx) = std::sync::mpsc::channel();
                let sent = tx.lock().map(|t| t.send(Scrape::Telemetry(which, reply)).is_ok()).unwrap_or(false);
                if !sent {
                    return Vec::new();
                }
                rx.recv_timeout(RENDER_TIMEOUT).unwrap_or_default()
            }),
        )
        .with_context(|| format!("telemetry command {cmd}"))?;
    }
    Ok(())
}

/// The HTTP endpoint's thread; dropping it stops the thread.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The address it listens on (the port the kernel chose, if the config said 0).
    pub local: SocketAddr,
}

impl MetricsServer {
    /// Listens on `listen` and serves scrapes by sending a [`Scrape`] on `jobs`.
    pub fn start(listen: SocketAddr, jobs: Sender<Scrape>) -> Result<MetricsServer> {
        let listener = TcpListener::bind(listen).with_context(|| format!("metrics.listen: bind {listen}"))?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread =
            std::thread::Builder::new().name("rvsd-metrics".into()).spawn(move || serve(listener, jobs, flag))?;
        tracing::info!(%local, "metrics: serving /metrics");
        Ok(MetricsServer { stop, thread: Some(thread), local })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts one scraper at a time until `stop`.
fn serve(listener: TcpListener, jobs: Sender<Scrape>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("metrics: poll: {e}; the metrics endpoint stops");
                return;
            }
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = answer(stream, &jobs) {
                    tracing::debug!(%peer, "metrics: {e:#}");
                }
            }
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Reads one request head, answers it, closes.
fn answer(mut stream: TcpStream, jobs: &Sender<Scrape>) -> Result<()> {
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    // One deadline for the whole request, not one per read: a client sending a byte
    // every few seconds would otherwise hold the one answering thread for hours.
    let deadline = Instant::now() + IO_TIMEOUT;
    while !metrics::head_complete(&head) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!("no whole request within {IO_TIMEOUT:?}");
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf).context("read")?;
        if n == 0 {
            anyhow::bail!("closed before a whole request");
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > metrics::MAX_REQUEST {
            return reply(&mut stream, metrics::TOO_LARGE, "text/plain", b"request too large\n", false);
        }
    }
    let ask = metrics::ask(&head);
    if let Some((status, body)) = metrics::refusal(&ask, "rvsd") {
        return reply(&mut stream, status, "text/plain", body.as_bytes(), false);
    }
    let head_only = matches!(ask, metrics::Ask::Metrics { head: true });
    let (tx, rx) = std::sync::mpsc::channel();
    jobs.send(Scrape::Prometheus(tx)).context("the control thread is gone")?;
    match rx.recv_timeout(RENDER_TIMEOUT).ok() {
        Some(text) => reply(&mut stream, "200 OK", metrics::CONTENT_TYPE, text.as_bytes(), head_only),
        None => reply(&mut stream, "503 Service Unavailable", "text/plain", b"rvsd did not answer\n", head_only),
    }
}

fn reply(stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8], head_only: bool) -> Result<()> {
    stream.write_all(metrics::response_head(status, ctype, body.len()).as_bytes()).context("write")?;
    if !head_only {
        stream.write_all(body).context("write")?;
    }
    Ok(())
}
