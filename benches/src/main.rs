//! rvs-bench: the whole worker path of rvs on DPDK virtual ports.
//!
//! One process, one EAL (`--no-pci`, `--no-huge` unless `--huge`, a unique file prefix),
//! two lcores (`redirect`: three, two workers sharing CPU 1, see
//! [`cases::run_redirect`]):
//! - lcore 1 runs the real [`rvsd::worker::Worker`] (rx burst → classify → FullNAT (or NAT, DR, TUN) →
//!   route/neighbour → tx buffer → flush) with its own [`fnat::engine::Engine`];
//! - lcore 0 (the main lcore) is the *feeder* and plays the control thread: it keeps
//!   the receive ring of the source port full with copies of prepared frames, and
//!   talks to the worker with `Command::Stats` / `Command::ListConns`.
//!
//! `rvs-bench run` measures, per worker, established flows in both directions and new
//! connections per second, with a small and a large population of live connections,
//! its real servers in one forwarding mode (`--fwd fnat|nat|dr|tunnel`; the report's
//! modes table compares the modes' runs with FullNAT's);
//! `rvs-bench io` the harness's own I/O ceiling; `rvs-bench redirect` what a reply
//! costs when it reaches a worker that does not own its local port. `rvs-bench report`
//! prints the table that `scripts/bench.sh` shows; `rvs-bench pcap` writes frames for
//! testpmd's net_pcap context run. See docs/PERFORMANCE.md.
//!
//! The modules, one concern each:
//! - [`cli`]: the command line;
//! - [`harness`]: EAL, pool and ports, and the feeder that drives and measures the worker;
//! - [`setup`]: the configuration, services and engines the workers run;
//! - [`frames`]: the frames fed (handshakes, established flows, SYN streams, pcap);
//! - [`cases`]: the cases of `run`, `redirect` and `io`;
//! - [`report`]: the measured figures, their JSON and the printed tables and ratios.

mod cases;
mod cli;
mod frames;
mod harness;
mod report;
mod setup;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Cmd};
use crate::report::write_json;

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(a) => write_json(&a, &cases::run_worker(&a)?),
        Cmd::Io(a) => write_json(&a, &cases::run_io(&a)?),
        Cmd::Redirect(a) => write_json(&a, &cases::run_redirect(&a)?),
        Cmd::Report(r) => report::report(&r),
        Cmd::Pcap { out } => frames::write_pcap(&out),
    }
}
