//! `rvsd`: the dataplane daemon.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use rvsd::cli::Args;
use rvsd::config::Config;
use rvsd::preflight::{self, Purpose};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = args.from_dpvs {
        return from_dpvs(&path);
    }
    if let Some(path) = args.check_config {
        return check_config(&path, !args.other_host);
    }
    if args.check_host {
        return check_host(&args.config, args.json);
    }
    if let Some(w) = ctl::logging::init(args.log_format, "info") {
        tracing::warn!("{w}");
    }
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errs) => {
            eprintln!("{errs}");
            return ExitCode::from(2);
        }
    };
    let file = args.config.display().to_string();
    for w in cfg.warnings(&file) {
        tracing::warn!("{w}");
    }
    // Everything this host can get wrong, before DPDK is touched.
    let host = preflight::check_host(&cfg, &file, Purpose::Start);
    for w in &host.warnings {
        tracing::warn!("{w}");
    }
    if !host.errors.is_empty() {
        for e in &host.errors {
            eprintln!("rvsd: {}: {}", e.key, e.problem);
        }
        return ExitCode::from(1);
    }
    match rvsd::dataplane::run(cfg, Some(args.config.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvsd: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `--check-config FILE`: the file, and with `host` this machine too.
fn check_config(path: &Path, host: bool) -> ExitCode {
    let file = path.display().to_string();
    let cfg = match Config::load(path) {
        Ok(cfg) => cfg,
        Err(errs) => {
            eprintln!("{errs}");
            return ExitCode::from(2);
        }
    };
    let mut warnings = cfg.warnings(&file);
    if host {
        let report = preflight::check_host(&cfg, &file, Purpose::Check);
        warnings.extend(report.warnings.iter().cloned());
        if !report.errors.is_empty() {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("{report}");
            eprintln!(
                "(a file meant for another machine: rvsd --check-config FILE --other-host checks the file alone)"
            );
            return ExitCode::from(2);
        }
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{}: ok ({} ports, {} workers, {} services){}",
        path.display(),
        cfg.ports.len(),
        cfg.workers.lcores.len(),
        cfg.services.len(),
        if host { "" } else { "; this host not checked (--other-host)" }
    );
    ExitCode::SUCCESS
}

/// `--from-dpvs FILE`: the rvsd configuration on stdout, warnings and errors on stderr;
/// exit 2 (and no configuration) on any error, as `--check-config`.
fn from_dpvs(path: &Path) -> ExitCode {
    let file = path.display().to_string();
    // Read as bytes: a file that is not UTF-8 is converted with a warning naming its first
    // such line; `include`d files are read in their place.
    let conv = rvsd::dpvs_conf::convert_path(path);
    for d in &conv.diagnostics {
        eprintln!("{}", d.render(&file));
    }
    if conv.has_errors() {
        let n = conv.diagnostics.iter().filter(|d| d.level == rvsd::dpvs_conf::Level::Error).count();
        eprintln!("{file}: {n} error(s); no configuration written");
        return ExitCode::from(2);
    }
    print!("{}", conv.toml);
    ExitCode::SUCCESS
}

/// `--check-host -c FILE`: this machine against the file, one line per item; exit 1 on
/// any FAIL. The EAL is never started.
fn check_host(path: &Path, json: bool) -> ExitCode {
    let file = path.display().to_string();
    let cfg = match Config::load(path) {
        Ok(cfg) => cfg,
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!("FAIL  config  {file} is not a valid configuration (rvsd --check-config {file})");
            return ExitCode::from(1);
        }
    };
    let findings = rvsd::hostcheck::check(&cfg, &file, &rvsd::hostcheck::Host::live());
    if json {
        println!("{}", rvsd::hostcheck::render_json(&file, &findings));
    } else {
        print!("{}", rvsd::hostcheck::render_text(&findings));
    }
    if rvsd::hostcheck::any_fail(&findings) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
