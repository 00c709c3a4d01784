//! rvsd's command line, as a library item so that its man page and shell completions are
//! generated from the same definition (`cargo run -p xtask -- dist`).

use std::path::PathBuf;

use clap::Parser;

/// The rvs dataplane: FullNAT load balancing on DPDK ports.
#[derive(Parser, Debug)]
#[command(name = "rvsd", version, about)]
pub struct Args {
    /// Configuration file (TOML; see docs/CONFIG.md).
    #[arg(short = 'c', long = "config", value_name = "FILE", default_value = "/etc/rvs/rvsd.toml")]
    pub config: PathBuf,

    /// Check the configuration file and this host, and exit: no hardware is touched.
    /// Every problem is printed as `file: key: problem` (exit status 2); warnings (a
    /// service whose VIP is not yet an address, a socket or file prefix a running rvsd
    /// holds) as `warning: file: key: ...`, and do not fail the check. The host checks:
    /// lcores on CPUs this host has, interfaces and files the vdev strings name, PCI
    /// devices, the control socket's path and group (see docs/CONFIG.md).
    #[arg(long = "check-config", value_name = "FILE")]
    pub check_config: Option<PathBuf>,

    /// With --check-config: the file is meant for another machine; check the file
    /// alone, not this host (lcores, interfaces, devices, socket, group).
    #[arg(long = "other-host", requires = "check_config")]
    pub other_host: bool,

    /// Check this host for running the file given with -c in production, and exit: one
    /// line per item, PASS, WARN or FAIL with what was found and the fix (hugepages per
    /// NUMA node, hugetlbfs, IOMMU, vfio-pci and each PCI port's driver, NUMA locality,
    /// CPU isolation, IRQs, memlock, CPU governor, MTU, control socket, kernel; see
    /// docs/DEPLOY.md). Exit status 1 when any item fails. Nothing is changed and DPDK is
    /// not started.
    #[arg(long = "check-host", conflicts_with = "check_config")]
    pub check_host: bool,

    /// Convert a DPVS configuration file (dpvs.conf) to an rvsd configuration, print it
    /// on stdout, and exit. Every DPVS item rvsd has no equivalent for is a warning on
    /// stderr (`FILE:LINE: warning: ...`) and a `#` comment in the output; ports get a
    /// PCI address placeholder to fill in (`dpdk-devbind.py --status`). Unknown keywords
    /// and malformed blocks are errors (exit status 2, nothing printed on stdout); -c
    /// cannot be given with it. See docs/DEPLOY.md, "From dpvs.conf".
    #[arg(long = "from-dpvs", value_name = "FILE", conflicts_with_all = ["check_config", "check_host", "config"])]
    pub from_dpvs: Option<PathBuf>,

    /// With --check-host: print the findings as one JSON document.
    #[arg(long = "json", requires = "check_host")]
    pub json: bool,

    /// How log lines are written: text, or json (one object per line). The level comes
    /// from $RVS_LOG (e.g. `debug`, `info,rvsd=debug`; default info), as for rvs-agent.
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text")]
    pub log_format: ctl::logging::LogFormat,
}
