//! Project tasks. `cargo run -p xtask -- dist ROOT` writes the man pages and the bash, zsh
//! and fish completions of rvsd, rvsadm, rvsip and rvs-agent under ROOT, laid out as
//! installed (`ROOT/usr/share/man/man8/rvsd.8`, ...): generated from the clap definitions
//! the binaries parse with, so they cannot drift from `--help`. `scripts/package.sh`
//! stages the `.deb` with it.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use clap::CommandFactory;
use clap_complete::Shell;

/// One binary: its name and its clap definition.
struct Tool {
    name: &'static str,
    command: fn() -> clap::Command,
    /// Extra man page text (roff), after the generated sections.
    extra: &'static str,
}

const SEE_ALSO: &str =
    ".BR rvsd (8),\n.BR rvsadm (8),\n.BR rvsip (8),\n.BR rvs\\-agent (8),\n.BR keepalived.conf (5)\n";

fn tools() -> Vec<Tool> {
    vec![
        Tool {
            name: "rvsd",
            command: rvsd::cli::Args::command,
            extra: ".SH ENVIRONMENT\n.TP\nRVS_LOG\nLog level or filter (tracing's syntax; RUST_LOG when unset; \
                    default info).\n.TP\nNOTIFY_SOCKET, WATCHDOG_USEC\nSet by systemd: READY=1 once forwarding, \
                    WATCHDOG=1 while every worker makes progress.\n\
                    .SH SIGNALS\nSIGHUP re-reads the configuration file and applies the difference as one \
                    generation (services, real servers, LIPs, addresses, routes); what cannot change at run \
                    time is refused with the key named and nothing changes. SIGTERM and SIGINT stop it.\n\
                    .SH FILES\n.TP\n/etc/rvs/rvsd.toml\nThe configuration (keys: /usr/share/doc/rvs/CONFIG.md).\n\
                    .TP\n/run/rvs/rvsd.sock\nThe control socket rvsadm, rvsip and rvs\\-agent use.\n\
                    .TP\n/lib/systemd/system/rvsd.service\nThe systemd unit (Type=notify, watchdog).\n",
        },
        Tool {
            name: "rvsadm",
            command: rvs_cli::adm::AdmArgs::command,
            extra: ".SH ENVIRONMENT\n.TP\nRVS_SOCKET\nrvsd's control socket when \\-\\-socket is not given \
                    (default /run/rvs/rvsd.sock).\n",
        },
        Tool {
            name: "rvsip",
            command: rvs_cli::ip::IpArgs::command,
            extra: ".SH ENVIRONMENT\n.TP\nRVS_SOCKET\nrvsd's control socket when \\-\\-socket is not given \
                    (default /run/rvs/rvsd.sock).\n",
        },
        Tool {
            name: "rvs-agent",
            command: rvs_agent::cli::command,
            extra: ".SH SIGNALS\nSIGHUP re-reads the configuration and applies only what changed. SIGTERM \
                    and SIGINT stop it: its VRRP instances leave (priority 0) and its VIPs are released.\n\
                    .SH ENVIRONMENT\n.TP\nRVS_LOG\nLog level or filter, as for rvsd (default info; \\-D: debug).\n\
                    .TP\nRVS_SOCKET\nrvsd's control socket.\n.TP\nRVS_AGENT_SOCKET\nThe agent's status socket.\n\
                    .TP\nNOTIFY_SOCKET\nSet by systemd: READY=1 once running, STOPPING=1 on the way out.\n\
                    .SH FILES\n.TP\n/etc/rvs/keepalived.conf\nThe sample configuration the package installs.\n\
                    .TP\n/etc/default/rvs\\-agent\nDAEMON_ARGS for the systemd unit.\n",
        },
    ]
}

/// The man page of `tool` (section 8), with SEE ALSO.
fn man_page(tool: &Tool) -> anyhow::Result<Vec<u8>> {
    let cmd = (tool.command)();
    let man =
        clap_mangen::Man::new(cmd).section("8").manual("rvs").source(format!("rvs {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render(&mut out).context("render")?;
    out.extend_from_slice(tool.extra.as_bytes());
    out.extend_from_slice(b".SH \"SEE ALSO\"\n");
    out.extend_from_slice(SEE_ALSO.as_bytes());
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    fs::File::create(path).and_then(|mut f| f.write_all(bytes)).with_context(|| format!("write {}", path.display()))
}

/// Writes every man page and completion under `root`, as installed.
fn dist(root: &Path) -> anyhow::Result<()> {
    for tool in tools() {
        write(&root.join(format!("usr/share/man/man8/{}.8", tool.name)), &man_page(&tool)?)?;
        for (shell, path) in [
            (Shell::Bash, format!("usr/share/bash-completion/completions/{}", tool.name)),
            (Shell::Zsh, format!("usr/share/zsh/vendor-completions/_{}", tool.name)),
            (Shell::Fish, format!("usr/share/fish/vendor_completions.d/{}.fish", tool.name)),
        ] {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut (tool.command)(), tool.name, &mut text);
            write(&root.join(path), &text)?;
        }
        println!("{}: man page, bash, zsh and fish completions", tool.name);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["dist", root] => dist(Path::new(root)),
        _ => bail!("usage: cargo run -p xtask -- dist ROOT (man pages and completions under ROOT/usr/share)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_man_page_naming_its_options() {
        for tool in tools() {
            let page = String::from_utf8(man_page(&tool).unwrap()).unwrap();
            assert!(page.contains(".TH"), "{}", tool.name);
            assert!(page.contains("SEE ALSO"), "{}", tool.name);
        }
        let agent = String::from_utf8(man_page(&tools()[3]).unwrap()).unwrap();
        assert!(agent.contains("dont\\-fork"), "{agent}");
    }
}
