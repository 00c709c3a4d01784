//! `rvs-agent`: keepalived's job for rvsd. `rvs-agent -f FILE` runs the VRRP instances and
//! health checkers of a keepalived.conf; `rvs-agent -t -f FILE` only validates it.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use rvs_agent::dataplane::{Dataplane, LinuxDataplane};
use rvs_agent::keepalived::{self, validate, Options};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser, Debug)]
#[command(name = "rvs-agent", version, about = "VRRP and health checks for rvsd, configured by keepalived.conf")]
struct Cli {
    /// keepalived.conf to use.
    #[arg(short = 'f', long = "use-file", default_value = "/etc/keepalived/keepalived.conf")]
    file: PathBuf,
    /// Validate the configuration and exit (non-zero on any error).
    #[arg(short = 't', long = "config-test")]
    test: bool,
    /// Unknown keywords are warnings, not errors.
    #[arg(long)]
    lenient: bool,
    /// With -t: the other node's file, to check the pair's priorities against tracking weights.
    #[arg(long, value_name = "FILE")]
    peer_config: Option<PathBuf>,
    /// Print diagnostics as JSON (with -t).
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show each instance's state and each real server's health (not implemented yet).
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RVS_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(Cmd::Status { .. }) = cli.cmd {
        // TODO: needs the agent's control socket.
        bail!("rvs-agent status is not implemented yet");
    }
    let opts = Options { lenient: cli.lenient };
    let loaded = keepalived::load(&cli.file, opts);
    let mut diags = loaded.diagnostics.clone();
    if let Some(peer) = &cli.peer_config {
        let p = keepalived::load(peer, opts);
        diags.extend(p.diagnostics.iter().cloned());
        diags.extend(validate::validate_pair(&loaded.config, &p.config));
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&diags)?);
    } else {
        for d in &diags {
            eprintln!("{d}");
        }
    }
    if errors > 0 {
        eprintln!("{}: {errors} error(s); refusing the configuration", cli.file.display());
        std::process::exit(1);
    }
    if cli.test {
        if !cli.json {
            eprintln!("{}: configuration OK ({} warning(s))", cli.file.display(), diags.len());
        }
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    rt.block_on(async move {
        // TODO(lead): replace with the rvsd control-socket client when it exists.
        let dp: Arc<dyn Dataplane> = Arc::new(LinuxDataplane::new());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => tracing::warn!("SIGHUP: reload is not implemented yet; restart to apply changes"),
                }
            }
            tracing::info!("stopping");
            let _ = tx.send(true);
        });
        rvs_agent::agent::run(loaded.config, dp, rx, |r| {
            tracing::info!(instances = r.instances.len(), "rvs-agent running");
        })
        .await
        .context("rvs-agent")
    })
}
