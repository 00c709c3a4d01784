//! `rvsd`: the dataplane daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rvsd::config::Config;

/// The rvs dataplane: FullNAT load balancing on DPDK ports.
#[derive(Parser, Debug)]
#[command(name = "rvsd", version, about)]
struct Args {
    /// Configuration file (TOML; see docs/CONFIG.md).
    #[arg(short = 'c', long = "config", value_name = "FILE", default_value = "/etc/rvs/rvsd.toml")]
    config: PathBuf,

    /// Check the configuration file and exit: no hardware is touched. Every problem is
    /// printed as `file: key: problem`; warnings (a service whose VIP is not yet an
    /// address) as `warning: file: key: ...`, and do not fail the check.
    #[arg(long = "check-config", value_name = "FILE")]
    check_config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = args.check_config {
        return match Config::load(&path) {
            Ok(cfg) => {
                for w in cfg.warnings(&path.display().to_string()) {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: ok ({} ports, {} workers, {} services)",
                    path.display(),
                    cfg.ports.len(),
                    cfg.workers.lcores.len(),
                    cfg.services.len()
                );
                ExitCode::SUCCESS
            }
            Err(errs) => {
                eprintln!("{errs}");
                ExitCode::from(2)
            }
        };
    }
    init_logging();
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errs) => {
            eprintln!("{errs}");
            return ExitCode::from(2);
        }
    };
    for w in cfg.warnings(&args.config.display().to_string()) {
        tracing::warn!("{w}");
    }
    match rvsd::dataplane::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("rvsd: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs to stderr, level from RUST_LOG (default info); colours only on a terminal.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
