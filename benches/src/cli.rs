//! The command line: `rvs-bench run|io|redirect|report|pcap` and their arguments.
//!
//! `scripts/bench.sh` drives the benchmark only through these arguments, so they are
//! kept in one place, apart from what they set in motion.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use fnat::types::FwdMode;

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
    /// Print the tables from the JSON of `run` (one per forwarding mode), `io` and
    /// `redirect`, and testpmd's figures.
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
    /// `run` only: how the real servers are reached: fnat (FullNAT, the default), nat,
    /// dr or tunnel (rvsd's `real_server.fwd`), or snat (no service: a SNAT rule takes
    /// the flows, see `setup::bench_config`). The cases of other modes than FullNAT are
    /// named with the mode (`est-in-nat`, `new-conn-dr`, ...).
    #[arg(long, default_value = "fnat", value_parser = parse_fwd)]
    pub fwd: FwdMode,
    /// The service's LIPs (SNAT: 5 times as many WAN addresses); 0, the default: 16, or
    /// more when the population needs them (see `setup::lips`).
    #[arg(long, default_value_t = 0)]
    pub lips: u32,
    /// `run` only: seconds without traffic before each population's established
    /// inbound case (the worker spins on, the feeder sleeps). For machines that
    /// throttle their CPUs after a few seconds of full load (burstable VMs, such as the
    /// project's own): those cases then run unthrottled, and compare with each other
    /// and with a testpmd run rested as long (`BENCH_REST` in `scripts/bench.sh`).
    #[arg(long, default_value_t = 0.0)]
    pub rest: f64,
}

/// A forwarding mode as rvsd's configuration spells it (`fnat`, `nat`, `dr`, `tunnel`,
/// and their aliases).
fn parse_fwd(s: &str) -> Result<FwdMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "fnat" | "fullnat" => Ok(FwdMode::FullNat),
        "nat" | "masq" => Ok(FwdMode::Nat),
        "dr" | "route" => Ok(FwdMode::Dr),
        "tunnel" | "tun" | "ipip" => Ok(FwdMode::Tunnel),
        "snat" => Ok(FwdMode::Snat),
        _ => Err(format!("{s:?}: one of fnat, nat, dr, tunnel, snat")),
    }
}

/// The mode's word in case names and on the command line (rvsd's `fwd`): `fnat`, `nat`,
/// `dr`, `tunnel`.
pub fn fwd_word(fwd: FwdMode) -> &'static str {
    match fwd {
        FwdMode::FullNat => "fnat",
        FwdMode::Nat => "nat",
        FwdMode::Dr => "dr",
        FwdMode::Tunnel => "tunnel",
        FwdMode::Snat => "snat",
    }
}

/// The mode as the tables name it: `FullNAT`, `NAT`, `DR`, `TUN`.
pub fn fwd_label(fwd: FwdMode) -> &'static str {
    match fwd {
        FwdMode::FullNat => "FullNAT",
        FwdMode::Nat => "NAT",
        FwdMode::Dr => "DR",
        FwdMode::Tunnel => "TUN",
        FwdMode::Snat => "SNAT",
    }
}

impl RunArgs {
    /// Fails unless 0 < small <= large.
    pub fn check_populations(&self) -> Result<()> {
        if self.small == 0 || self.large < self.small {
            bail!("need 0 < small <= large");
        }
        Ok(())
    }

    /// Fails unless the mode is FullNAT (for the subcommands that measure only it).
    pub fn check_fullnat(&self, what: &str) -> Result<()> {
        if self.fwd != FwdMode::FullNat {
            bail!("{what} measures FullNAT only (--fwd {})", fwd_word(self.fwd));
        }
        Ok(())
    }

    /// A case's name in this mode: `case` under FullNAT, `case-<mode>` otherwise.
    pub fn case_name(&self, case: &str) -> String {
        match self.fwd {
            FwdMode::FullNat => case.to_string(),
            m => format!("{case}-{}", fwd_word(m)),
        }
    }
}

/// The arguments of `report`.
#[derive(Parser)]
pub struct ReportArgs {
    /// JSON written by `rvs-bench run`; repeated for the runs of the other forwarding
    /// modes (`run --fwd nat|dr|tunnel`), which the modes table compares with FullNAT.
    #[arg(long, required = true)]
    pub rvs: Vec<PathBuf>,
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
