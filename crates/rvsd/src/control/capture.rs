//! A capture on the control thread's side (`rvsip capture`): starting it (the filter
//! goes to the workers in the next snapshot) and writing the frames they copy to a
//! pcapng file until the count or the deadline. The filter and the writer are
//! [`crate::capture`].

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
    writer: crate::capture::PcapngWriter<std::io::BufWriter<std::fs::File>>,
    reply: std::sync::mpsc::Sender<Response>,
}

impl Control {
    /// Starts a capture; its reply is sent when it ends.
    pub(super) fn start_capture(
        &mut self,
        req: Request,
        reply: std::sync::mpsc::Sender<Response>,
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
        if count == 0 || timeout_s == 0 {
            return Err(Refused::new(ErrorCode::Invalid, "count and timeout must be at least 1"));
        }
        let file =
            std::fs::File::create(&path).map_err(|e| Refused::new(ErrorCode::Invalid, format!("{path}: {e}")))?;
        let writer = crate::capture::PcapngWriter::new(std::io::BufWriter::new(file), &dev)
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
            writer,
            reply,
        });
        Ok(())
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
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
            for m in b.drain() {
                if cap.remaining > 0 && cap.writer.write(m.data(), now).is_ok() {
                    cap.remaining -= 1;
                    cap.written += 1;
                }
            }
        }
        if cap.remaining == 0 || Instant::now() > cap.deadline {
            let cap = self.capture.take().expect("checked above");
            let mut ports = (*self.shared.current().ports).clone();
            ports[cap.port].capture = None;
            let gen = self.publish_ports(ports);
            let _ = self.confirm(gen);
            // Copies made before the workers saw the change are dropped.
            while self.capture_rx.dequeue_burst(&mut b) > 0 {
                b.clear();
            }
            let resp = match cap.writer.finish() {
                Ok(_) => Response::Captured { packets: cap.written, path: cap.path.clone() },
                Err(e) => Response::error(ErrorCode::Internal, format!("{}: {e}", cap.path)),
            };
            tracing::info!(packets = cap.written, path = %cap.path, "capture ended");
            let _ = cap.reply.send(resp);
        }
        moved
    }
}
