//! `rvsip`: configure rvs's ports, addresses, routes, neighbours and firewall marks with
//! dpip's syntax.
//!
//! Parsing and output live in [`rvs_cli::ip`]; this is the edge: arguments in, the
//! control socket, stdout, one line on stderr and the exit status on failure.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use rvs_cli::ip::{self, IpCmd};
use rvs_cli::{socket_path, CliError};

fn run(argv: &[String]) -> anyhow::Result<()> {
    let cmd = ip::parse(argv)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if let IpCmd::Print(text) = &cmd {
        out.write_all(text.as_bytes()).context("write")?;
        out.flush().context("write")?;
        return Ok(());
    }
    let path = socket_path(ip::socket_arg(argv).as_deref());
    let mut client = ctl::Client::connect(&path).map_err(CliError::from)?;
    ip::run(&cmd, &mut client, &mut out)?;
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    rvs_cli::finish("rvsip", run(&argv))
}
