//! `rvs-agent`: keepalived's job for rvsd. `rvs-agent -f FILE` runs the VRRP instances and
//! health checkers of a keepalived.conf against rvsd's control socket (`--rvsd-socket`,
//! `$RVS_SOCKET`); `rvs-agent -t -f FILE` only validates it; `rvs-agent status [--json]`
//! asks the running agent (`--status-socket`, `$RVS_AGENT_SOCKET`).

use anyhow::Context;
use clap::Parser;
use rvs_agent::cli::{self, Cli, Cmd, DataplaneKind, RVSD_SOCKET_ENV, STATUS_SOCKET_ENV};
use rvs_agent::dataplane::{Dataplane, LinuxDataplane, RvsdDataplane};
use rvs_agent::keepalived::{self, validate, Options};
use rvs_agent::status::{self, Reporter, StatusError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// keepalived's exit status for a configuration it cannot read or will not run.
const EXIT_CONFIG: i32 = 4;
/// keepalived's exit status for `-t` finding errors.
const EXIT_CONFIG_TEST: i32 = 5;
/// The exit status for a keepalived option rvs-agent refuses (as a usage error).
const EXIT_USAGE: i32 = 2;

fn path_from(arg: Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    arg.or_else(|| std::env::var_os(env).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(f) = &cli.signum {
        match cli::signum(f) {
            Ok(n) => {
                println!("{n}");
                return Ok(());
            }
            Err(e) => {
                eprintln!("rvs-agent: {e}");
                std::process::exit(1);
            }
        }
    }
    let refused = cli.refused();
    if !refused.is_empty() {
        for r in &refused {
            eprintln!("rvs-agent: {r}");
        }
        std::process::exit(EXIT_USAGE);
    }
    for w in cli.unhonoured() {
        eprintln!("rvs-agent: warning: {w}");
    }
    if let Some(mask) = cli.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    // -D: rvs-agent's own debug messages, unless the environment chooses the level.
    let level = if cli.log_detail { "info,rvs_agent=debug" } else { "info" };
    if let Some(w) = ctl::logging::init(cli.log_format, level) {
        tracing::warn!("{w}");
    }
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
    let opts =
        Options { lenient: cli.lenient, strict: cli.strict, config_id: cli.config_id.clone(), other_host: false };
    let adjust = cli.adjust();
    let mut loaded = keepalived::load(&cli.file, opts.clone());
    if let (Some(ns), Some(c)) = (&cli.namespace, &loaded.config.global_defs.net_namespace) {
        if ns != c {
            tracing::info!(namespace = %ns, "-s {ns} overrides the configuration's net_namespace {c}");
        }
    }
    adjust.apply(&mut loaded);
    let mut diags = loaded.diagnostics.clone();
    if let Some(peer) = &cli.peer_config {
        let mut p = keepalived::load(peer, Options { other_host: true, ..opts.clone() });
        adjust.apply(&mut p);
        diags.extend(p.diagnostics.iter().cloned());
        diags.extend(validate::validate_pair(&loaded.config, &p.config));
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    // -t=LOG_FILE: the report goes to the file instead of stderr.
    let mut report: Box<dyn Write> = match &cli.test {
        Some(Some(log)) => {
            Box::new(std::fs::File::create(log).with_context(|| format!("-t/--config-test {}", log.display()))?)
        }
        _ => Box::new(std::io::stderr()),
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&diags)?);
    } else {
        for d in &diags {
            writeln!(report, "{d}")?;
        }
    }
    if cli.dump_conf {
        eprintln!("{}: as rvs-agent runs it:", cli.file.display());
        eprintln!("{}", serde_json::to_string_pretty(&loaded.config)?);
    }
    if errors > 0 {
        let strict = if cli.strict { " (--strict: warnings are errors)" } else { "" };
        writeln!(report, "{}: {errors} error(s){strict}; refusing the configuration", cli.file.display())?;
        std::process::exit(if cli.test.is_some() { EXIT_CONFIG_TEST } else { EXIT_CONFIG });
    }
    if cli.test.is_some() {
        if !cli.json {
            writeln!(report, "{}: configuration OK ({} warning(s))", cli.file.display(), diags.len())?;
        }
        return Ok(());
    }
    drop(report);
    if !cli.dont_fork {
        tracing::warn!(
            "rvs-agent does not fork: it runs in the foreground as with keepalived's -n/--dont-fork \
             (under systemd: Type=notify or Type=simple, not Type=forking)"
        );
    }
    let _core = core_dumps(&cli);
    // -s wins over the file's net_namespace, as keepalived's command line (Adjust puts it
    // in every configuration read).
    if let Some(ns) = &loaded.config.global_defs.net_namespace {
        let how = if cli.namespace.is_some() { "-s/--namespace" } else { "net_namespace" };
        enter_namespace(ns, how)?;
        tracing::info!(namespace = %ns, "running in network namespace");
    }
    let pids = PidFiles::create(&cli.pid_files())?;
    let metrics_listener = match cli.metrics_listen {
        Some(a) => Some(std::net::TcpListener::bind(a).with_context(|| format!("--metrics-listen {a}"))?),
        None => None,
    };
    let listener = match status::bind(&status_path) {
        Ok(l) => Some(l),
        Err(e @ StatusError::InUse(_)) => {
            eprintln!("rvs-agent: {e}");
            drop(pids);
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
                        let mut l = keepalived::load(&file, opts.clone());
                        adjust.apply(&mut l);
                        let _ = reload_tx.send(l);
                    }
                }
            }
            tracing::info!("stopping");
            notify("STOPPING=1");
            let _ = tx.send(true);
        });
        let dp2 = dp.clone();
        rvs_agent::agent::run_with_reload(loaded.config, dp, rx, reload_rx, move |running| {
            tracing::info!(instances = running.instances().len(), "rvs-agent running");
            notify("READY=1");
            let reporter = Reporter { running, dataplane: dp2, config, started };
            if let Some(m) = metrics_listener {
                if let Ok(a) = m.local_addr() {
                    tracing::info!(listen = %a, "metrics: serving /metrics");
                }
                tokio::spawn(rvs_agent::metrics::serve(m, reporter.clone()));
            }
            if let Some(l) = listener {
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
    drop(pids);
    result
}

/// Tells systemd (a `Type=notify` unit) about `state`; a failure is logged only.
fn notify(state: &str) {
    match ctl::systemd::notify(state) {
        Ok(_) => {}
        Err(e) => tracing::warn!("sd_notify {state}: {e}"),
    }
}

/// `-s NAME` (or the file's `net_namespace NAME`, named by `how` in errors): the network
/// namespace `ip netns` made, entered before any thread starts (the threads, sockets and
/// scripts started later are all in it).
fn enter_namespace(name: &str, how: &str) -> anyhow::Result<()> {
    let path = Path::new("/run/netns").join(name);
    let f = std::fs::File::open(&path)
        .with_context(|| format!("{how} {name}: {} (made by `ip netns add {name}`)", path.display()))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("{how} {name}: entering {}", path.display()))?;
    Ok(())
}

/// `-m`: core dumps allowed; `-M PATN`: and `kernel.core_pattern` set, restored on drop.
struct CoreDumps {
    restore: Option<String>,
}

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

fn core_dumps(cli: &Cli) -> CoreDumps {
    let mut out = CoreDumps { restore: None };
    if !cli.core_dump && cli.core_dump_pattern.is_none() {
        return out;
    }
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let set = setrlimit(Resource::RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY).or_else(|_| {
        // Without the privilege to raise the hard limit: the soft one up to it.
        let (_, hard) = getrlimit(Resource::RLIMIT_CORE)?;
        setrlimit(Resource::RLIMIT_CORE, hard, hard)
    });
    if let Err(e) = set {
        tracing::warn!("-m/--core-dump: RLIMIT_CORE: {e}");
    }
    if let Some(pattern) = &cli.core_dump_pattern {
        match std::fs::read_to_string(CORE_PATTERN) {
            Ok(old) => match std::fs::write(CORE_PATTERN, pattern) {
                Ok(()) => out.restore = Some(old.trim_end_matches('\n').to_string()),
                Err(e) => tracing::warn!("-M/--core-dump-pattern: writing {CORE_PATTERN}: {e}"),
            },
            Err(e) => tracing::warn!("-M/--core-dump-pattern: reading {CORE_PATTERN}: {e}"),
        }
    }
    out
}

impl Drop for CoreDumps {
    fn drop(&mut self) {
        if let Some(old) = &self.restore {
            if let Err(e) = std::fs::write(CORE_PATTERN, old) {
                tracing::warn!("-M/--core-dump-pattern: restoring {CORE_PATTERN}: {e}");
            }
        }
    }
}

/// The pid files of `-p`, `-r` and `-c`: written at start, removed on drop (when they
/// still name this process).
struct PidFiles {
    paths: Vec<PathBuf>,
}

impl PidFiles {
    /// Writes this process's pid to each of `paths`; one naming a running rvs-agent
    /// (another one) refuses the start, one naming anything else is overwritten.
    fn create(paths: &[PathBuf]) -> anyhow::Result<PidFiles> {
        let me = std::process::id();
        for p in paths {
            if let Some(pid) = running_agent(p).filter(|&pid| pid != me) {
                anyhow::bail!("{}: rvs-agent is already running (pid {pid})", p.display());
            }
        }
        let mut out = PidFiles { paths: Vec::new() };
        for p in paths {
            std::fs::write(p, format!("{me}\n")).with_context(|| format!("pid file {}", p.display()))?;
            out.paths.push(p.clone());
        }
        Ok(out)
    }
}

/// The pid in pid file `p`, when that process is an rvs-agent.
fn running_agent(p: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(p).ok()?.trim().parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "rvs-agent").then_some(pid)
}

impl Drop for PidFiles {
    fn drop(&mut self) {
        let me = std::process::id().to_string();
        for p in &self.paths {
            if std::fs::read_to_string(p).is_ok_and(|s| s.trim() == me) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}
