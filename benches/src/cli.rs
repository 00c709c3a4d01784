//! The command line: `rvs-bench run|io|redirect|report|pcap` and their arguments.
//!
//! `scripts/bench.sh` drives the benchmark only through these arguments, so they are
//! kept in one place, apart from what they set in motion.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

/// The command line.
#[derive(Parser)]
#[command(about = "Benchmark of the rvs worker on DPDK virtual ports")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Run the real worker: established in/out and new connections, small and large.
    Run(RunArgs),
    /// Run the same feeder and ports with a bare macswap loop (the harness's ceiling).
    Io(RunArgs),
    /// Two workers (ownership split between them): established outbound replies at
    /// their owner (plain) and at the other worker, redirected to the owner.
    Redirect(RunArgs),
    /// Print the table from the JSON of `run` and `io` and testpmd's figure.
    Report(ReportArgs),
    /// Write 1024 established-flow frames (64 bytes) as a pcap file, for testpmd's
    /// net_pcap context run.
    Pcap {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The arguments of the measuring subcommands (`run`, `io`, `redirect`).
#[derive(Parser, Clone)]
pub struct RunArgs {
    /// Seconds measured per case (after a short warm-up).
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
    /// The small population of live connections.
    #[arg(long, default_value_t = 1000)]
    pub small: u32,
    /// The large population of live connections.
    #[arg(long, default_value_t = 1_000_000)]
    pub large: u32,
    /// EAL file prefix (unique per run).
    #[arg(long, default_value = "rvsbench")]
    pub file_prefix: String,
    /// Use hugepages instead of --no-huge.
    #[arg(long)]
    pub huge: bool,
    /// Write the results here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl RunArgs {
    /// Fails unless 0 < small <= large.
    pub fn check_populations(&self) -> Result<()> {
        if self.small == 0 || self.large < self.small {
            bail!("need 0 < small <= large");
        }
        Ok(())
    }
}

/// The arguments of `report`.
#[derive(Parser)]
pub struct ReportArgs {
    /// JSON written by `rvs-bench run`.
    #[arg(long)]
    pub rvs: PathBuf,
    /// JSON written by `rvs-bench io`.
    #[arg(long)]
    pub io: Option<PathBuf>,
    /// JSON written by `rvs-bench redirect`.
    #[arg(long)]
    pub redirect: Option<PathBuf>,
    /// testpmd macswap Mpps on net_ring → net_null: the best of its per-second samples.
    #[arg(long)]
    pub testpmd_mpps: Option<f64>,
    /// The median of those samples.
    #[arg(long)]
    pub testpmd_median: Option<f64>,
    /// testpmd macswap Mpps on net_pcap (infinite_rx) → net_null, one core (context
    /// only; best sample).
    #[arg(long)]
    pub testpmd_pcap_mpps: Option<f64>,
}
