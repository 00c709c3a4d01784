//! `rvs-agent`: keepalived's job for rvsd. `rvs-agent -f FILE` runs the VRRP instances and
//! health checkers of a keepalived.conf against rvsd's control socket (`--rvsd-socket`,
//! `$RVS_SOCKET`); `rvs-agent -t -f FILE` only validates it; `rvs-agent status [--json]`
//! asks the running agent (`--status-socket`, `$RVS_AGENT_SOCKET`).

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use rvs_agent::dataplane::{Dataplane, LinuxDataplane, RvsdDataplane};
use rvs_agent::keepalived::{self, validate, Options};
use rvs_agent::status::{self, Reporter, StatusError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// Environment variable for rvsd's control socket (the one rvsadm and rvsip read).
const RVSD_SOCKET_ENV: &str = "RVS_SOCKET";
/// Environment variable for the agent's status socket.
const STATUS_SOCKET_ENV: &str = "RVS_AGENT_SOCKET";
/// keepalived's exit status for a configuration it cannot read or will not run.
const EXIT_CONFIG: i32 = 4;
/// keepalived's exit status for `-t` finding errors.
const EXIT_CONFIG_TEST: i32 = 5;

#[derive(Parser, Debug)]
#[command(name = "rvs-agent", version, about = "VRRP and health checks for rvsd, configured by keepalived.conf")]
struct Cli {
    /// keepalived.conf to use.
    #[arg(short = 'f', long = "use-file", default_value = "/etc/keepalived/keepalived.conf")]
    file: PathBuf,
    /// Validate the configuration and exit: 0 when it is fine, 5 on errors (4 when it
    /// cannot be read), as keepalived. Lists every warning, every keyword accepted and
    /// not honoured among them, with FILE:LINE.
    #[arg(short = 't', long = "config-test")]
    test: bool,
    /// Unknown keywords are warnings, not errors.
    #[arg(long, conflicts_with = "strict")]
    lenient: bool,
    /// Warnings are errors: a keyword rvs accepts and does not honour refuses the file.
    #[arg(long)]
    strict: bool,
    /// keepalived's config id: lines starting `@ID` apply only when it is ID, `@^ID`
    /// lines only when it is not [default: this host's short name].
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    config_id: Option<String>,
    /// With -t: the other node's file, to check the pair's priorities against tracking weights.
    #[arg(long, value_name = "FILE")]
    peer_config: Option<PathBuf>,
    /// Print diagnostics as JSON (with -t).
    #[arg(long)]
    json: bool,
    /// What holds the VIPs and services: rvsd (its control socket), or linux (VIPs with
    /// `ip addr` on the interface, services only logged: VRRP without rvsd).
    #[arg(long, value_enum, default_value_t = DataplaneKind::Rvsd)]
    dataplane: DataplaneKind,
    /// rvsd's control socket [env: RVS_SOCKET; default: /run/rvs/rvsd.sock].
    #[arg(long, value_name = "PATH")]
    rvsd_socket: Option<PathBuf>,
    /// The agent's own status socket, for `rvs-agent status`
    /// [env: RVS_AGENT_SOCKET; default: /run/rvs/rvs-agent.sock].
    #[arg(long, value_name = "PATH", global = true)]
    status_socket: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DataplaneKind {
    Rvsd,
    Linux,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show each VRRP instance's state, priority and master, each real server's health and
    /// the dataplane connection, as the running agent reports them.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn path_from(arg: Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    arg.or_else(|| std::env::var_os(env).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RVS_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let status_path = path_from(cli.status_socket.clone(), STATUS_SOCKET_ENV, status::DEFAULT_SOCKET);
    if let Some(Cmd::Status { json }) = cli.cmd {
        match status::query(&status_path) {
            Ok(s) if json => println!("{}", serde_json::to_string_pretty(&s)?),
            Ok(s) => print!("{}", status::render(&s)),
            Err(e) => {
                eprintln!("rvs-agent status: {e} (is rvs-agent running? --status-socket / {STATUS_SOCKET_ENV})");
                std::process::exit(1);
            }
        }
        return Ok(());
    }
    if !cli.file.is_file() {
        eprintln!("rvs-agent: cannot read configuration {}", cli.file.display());
        std::process::exit(EXIT_CONFIG);
    }
    let opts = Options { lenient: cli.lenient, strict: cli.strict, config_id: cli.config_id.clone() };
    let loaded = keepalived::load(&cli.file, opts.clone());
    let mut diags = loaded.diagnostics.clone();
    if let Some(peer) = &cli.peer_config {
        let p = keepalived::load(peer, opts.clone());
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
        let strict = if cli.strict { " (--strict: warnings are errors)" } else { "" };
        eprintln!("{}: {errors} error(s){strict}; refusing the configuration", cli.file.display());
        std::process::exit(if cli.test { EXIT_CONFIG_TEST } else { EXIT_CONFIG });
    }
    if cli.test {
        if !cli.json {
            eprintln!("{}: configuration OK ({} warning(s))", cli.file.display(), diags.len());
        }
        return Ok(());
    }
    let listener = match status::bind(&status_path) {
        Ok(l) => Some(l),
        Err(e @ StatusError::InUse(_)) => {
            eprintln!("rvs-agent: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            tracing::warn!("no status socket ({e}): `rvs-agent status` will not answer");
            None
        }
    };
    let bound = listener.is_some();
    let started = Instant::now();
    let (dp, rvsd): (Arc<dyn Dataplane>, Option<Arc<RvsdDataplane>>) = match cli.dataplane {
        DataplaneKind::Rvsd => {
            let socket = path_from(cli.rvsd_socket.clone(), RVSD_SOCKET_ENV, ctl::DEFAULT_SOCKET);
            tracing::info!(socket = %socket.display(), "driving rvsd");
            let r = Arc::new(RvsdDataplane::new(socket));
            (r.clone(), Some(r))
        }
        DataplaneKind::Linux => (Arc::new(LinuxDataplane::new()), None),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    let config = cli.file.clone();
    let result = rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
        let file = config.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => {
                        // Re-read and validate; the agent applies only the differences, or
                        // logs every error and keeps the running configuration.
                        tracing::info!(file = %file.display(), "SIGHUP: reloading");
                        let _ = reload_tx.send(keepalived::load(&file, opts.clone()));
                    }
                }
            }
            tracing::info!("stopping");
            let _ = tx.send(true);
        });
        let dp2 = dp.clone();
        rvs_agent::agent::run_with_reload(loaded.config, dp, rx, reload_rx, move |running| {
            tracing::info!(instances = running.instances().len(), "rvs-agent running");
            if let Some(l) = listener {
                let reporter = Reporter { running, dataplane: dp2, config, started };
                tokio::spawn(status::serve(l, reporter));
            }
        })
        .await
        .context("rvs-agent")
    });
    // The VIPs released on the way out must reach rvsd before the process ends.
    if let Some(r) = rvsd {
        r.close(Duration::from_secs(5));
    }
    if bound {
        let _ = std::fs::remove_file(&status_path);
    }
    result
}
