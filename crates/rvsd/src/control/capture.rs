//! A capture on the control thread's side (`rvsip capture`): starting it (the filter
//! goes to the workers in the next snapshot) and writing the frames they copy to a
//! pcapng file (DPDK's writer, [`dpdk::pcapng`]) until the count or the deadline. The
//! filter is [`crate::capture`]'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ctl::{ErrorCode, Request, Response};
use dpdk::Burst;

use super::Control;
use crate::state::Refused;
use crate::twin::BURSTS_PER_ROUND;

/// A capture being written.
pub(super) struct ActiveCapture {
    port: usize,
    remaining: u64,
    written: u64,
    deadline: Instant,
    path: String,
    /// The first write that failed (the capture ends at it).
    failed: Option<String>,
    writer: dpdk::pcapng::Writer,
    reply: std::sync::mpsc::Sender<Response>,
    /// The control connection that asked for it.
    client: u64,
}

impl Control {
    /// Starts a capture into `file` (its directory checked by the control socket's
    /// thread with the requester's rights, [`crate::server::CaptureTarget`]; the file
    /// made only once the request is found valid); its reply is sent when it ends.
    pub(super) fn start_capture(
        &mut self,
        req: Request,
        reply: std::sync::mpsc::Sender<Response>,
        file: Option<crate::server::CaptureTarget>,
        client: u64,
    ) -> Result<(), Refused> {
        let Request::Capture { dev, dir, count, filter, path, timeout_s } = req else {
            unreachable!("checked by caller")
        };
        if self.capture.is_some() {
            return Err(Refused::new(ErrorCode::Invalid, "a capture is running already"));
        }
        let port = self.state.port(&dev)?;
        let filter =
            crate::capture::compile_filter(&filter).map_err(|e| Refused::new(ErrorCode::Invalid, e.to_string()))?;
        if !std::path::Path::new(&path).is_absolute() {
            return Err(Refused::new(ErrorCode::Invalid, format!("capture file {path:?} must be an absolute path")));
        }
        if count == 0 || timeout_s == 0 || timeout_s > crate::server::MAX_CAPTURE_S {
            let max = crate::server::MAX_CAPTURE_S;
            return Err(Refused::new(
                ErrorCode::Invalid,
                format!("count and timeout must be at least 1, timeout at most {max} s"),
            ));
        }
        let file = file.ok_or_else(|| Refused::new(ErrorCode::Internal, format!("{path}: no capture target")))?;
        let file = file.create().map_err(|e| Refused::new(ErrorCode::Invalid, e))?;
        let app = format!("rvsd {} (rvsip capture {dev})", env!("CARGO_PKG_VERSION"));
        let writer = dpdk::pcapng::Writer::new(file, &app)
            .map_err(|e| Refused::new(ErrorCode::Internal, format!("{path}: {e}")))?;
        let (rx, tx) = match dir {
            ctl::CaptureDir::Rx => (true, false),
            ctl::CaptureDir::Tx => (false, true),
            ctl::CaptureDir::Both => (true, true),
        };
        let mut ports = (*self.shared.current().ports).clone();
        ports[port].capture = Some(Arc::new(crate::shared::CaptureSpec { rx, tx, filter }));
        self.publish_ports(ports);
        tracing::info!(port = %dev, %path, count, "capture started");
        self.capture = Some(ActiveCapture {
            port,
            remaining: u64::from(count),
            written: 0,
            deadline: Instant::now() + Duration::from_secs(u64::from(timeout_s)),
            path,
            failed: None,
            writer,
            reply,
            client,
        });
        Ok(())
    }

    /// Control connection `client` hung up: the capture it started, if any, ends now
    /// (with what it has written; the next capture need not wait for its deadline).
    pub(super) fn end_capture_of(&mut self, client: u64) {
        if let Some(cap) = self.capture.as_ref().filter(|c| c.client == client) {
            tracing::info!(path = %cap.path, "capture: its rvsip went away; ending it");
            self.pump_capture();
            self.finish_capture();
        }
    }

    /// Writes captured frames; ends the capture at its count or deadline. True if any
    /// frame was written.
    pub(super) fn pump_capture(&mut self) -> bool {
        let Some(cap) = &mut self.capture else { return false };
        let mut b = Burst::new();
        let mut moved = false;
        for _ in 0..BURSTS_PER_ROUND {
            if self.capture_rx.dequeue_burst(&mut b) == 0 {
                break;
            }
            moved = true;
            // Copies past the count are dropped; the rest are DPDK pcapng blocks already.
            b.truncate(usize::try_from(cap.remaining).unwrap_or(usize::MAX));
            match cap.writer.write(&mut b) {
                Ok(n) => {
                    cap.remaining -= n as u64;
                    cap.written += n as u64;
                }
                Err(e) => {
                    cap.failed.get_or_insert_with(|| e.to_string());
                    cap.remaining = 0;
                }
            }
        }
        if cap.remaining == 0 || Instant::now() > cap.deadline {
            self.finish_capture();
        }
        moved
    }

    /// Ends the capture running, if any: the workers stop copying, the file is closed
    /// and the reply goes to its requester.
    fn finish_capture(&mut self) {
        let Some(cap) = self.capture.take() else { return };
        let mut ports = (*self.shared.current().ports).clone();
        ports[cap.port].capture = None;
        let gen = self.publish_ports(ports);
        let _ = self.confirm(gen);
        // Copies made before the workers saw the change are dropped.
        let mut b = Burst::new();
        while self.capture_rx.dequeue_burst(&mut b) > 0 {
            b.clear();
        }
        drop(cap.writer);
        let resp = match &cap.failed {
            None => Response::Captured { packets: cap.written, path: cap.path.clone() },
            Some(e) => Response::error(ErrorCode::Internal, format!("{}: {e}", cap.path)),
        };
        tracing::info!(packets = cap.written, path = %cap.path, "capture ended");
        let _ = cap.reply.send(resp);
    }
}
