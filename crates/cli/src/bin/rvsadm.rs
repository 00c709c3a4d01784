//! `rvsadm`: administer rvs's virtual services with ipvsadm's syntax.
//!
//! Parsing and output live in [`rvs_cli::adm`]; this is the edge: arguments in, the
//! control socket, stdout, one line on stderr and the exit status on failure.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use rvs_cli::adm::{self, AdmCmd};
use rvs_cli::{socket_path, CliError};

fn run(argv: &[String]) -> anyhow::Result<()> {
    let cmd = adm::parse(argv)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if let AdmCmd::Print(text) = &cmd {
        out.write_all(text.as_bytes()).context("write")?;
        out.flush().context("write")?;
        return Ok(());
    }
    let path = socket_path(adm::socket_arg(argv).as_deref());
    let mut client = ctl::Client::connect(&path).map_err(CliError::from)?;
    let stdin = io::stdin();
    let mut input = stdin.lock();
    adm::run(&cmd, &mut client, &mut input, &mut out)?;
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    rvs_cli::finish("rvsadm", run(&argv))
}
