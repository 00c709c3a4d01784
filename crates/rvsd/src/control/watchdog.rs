//! systemd's watchdog (`WatchdogSec=` in rvsd.service): the control thread sends
//! `WATCHDOG=1` at half the interval systemd asks for, and only while every worker has
//! made progress since the previous ping (its heartbeat, the worker's clock at its latest
//! loop, moved). A stuck worker forwards nothing while the process looks alive; without
//! the ping systemd restarts rvsd.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::shared::Shared;

/// The watchdog's state in the control thread.
#[derive(Debug)]
pub struct Watchdog {
    every: Duration,
    next: Instant,
    beats: Vec<u64>,
    /// Whether the previous check found a worker stuck (logged once per onset).
    stuck: bool,
}

impl Watchdog {
    /// A watchdog when systemd asks for one (`$WATCHDOG_USEC`), else `None`.
    pub fn from_env(shared: &Shared) -> Option<Watchdog> {
        let interval = ctl::systemd::watchdog_interval()?;
        let every = interval / 2;
        tracing::info!(
            interval_ms = interval.as_millis() as u64,
            "systemd watchdog: pinging while every worker makes progress"
        );
        Some(Watchdog { every, next: Instant::now() + every, beats: heartbeats(shared), stuck: false })
    }

    /// Pings systemd if due and every worker moved since the last check.
    pub fn tick(&mut self, shared: &Shared) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + self.every;
        let beats = heartbeats(shared);
        let stuck: Vec<usize> =
            beats.iter().zip(&self.beats).enumerate().filter(|(_, (b, a))| b <= a).map(|(i, _)| i).collect();
        self.beats = beats;
        if stuck.is_empty() {
            if self.stuck {
                tracing::info!("systemd watchdog: every worker makes progress again");
            }
            self.stuck = false;
            if let Err(e) = ctl::systemd::notify("WATCHDOG=1") {
                tracing::warn!("systemd watchdog: {e}");
            }
        } else if !self.stuck {
            self.stuck = true;
            tracing::error!(
                workers = ?stuck,
                "systemd watchdog: worker(s) made no progress for {} ms; WATCHDOG=1 withheld",
                self.every.as_millis()
            );
        }
    }
}

fn heartbeats(shared: &Shared) -> Vec<u64> {
    shared.workers.iter().map(|w| w.heartbeat.load(Ordering::Relaxed)).collect()
}
