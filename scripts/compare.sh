#!/usr/bin/env bash
# The comparison (issue 17), from a fresh Debian 12 machine (as root): sets up, builds
# release, then on the demo's namespace topology runs the same loads through rvsd
# (af_packet busy and adaptive polling, af_xdp), the kernel's nftables FullNAT, HAProxy
# in TCP mode and no balancer: wrk (one thread, 32 connections) against three nginx
# servers over IPv4 and over IPv6, keep-alive requests/s and new connections/s; dnsperf
# (32 clients = 32 UDP flows) against three dnsmasq servers over IPv4 and IPv6, DNS
# queries answered/s (HAProxy: n/a, it has no UDP proxy). Each run lasts COMPARE_SECS
# seconds (default 5; about 4 minutes in all); COMPARE_ONLY=TEXT runs only the balancers
# whose name contains TEXT (e.g. rvsd, nftables). Prints each figure with rvsd's (busy
# polling) ratio to it (tests/support/compare.rs). Figures from one run on a shared
# machine: compare the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "compare: run as root (it creates network namespaces)" >&2
    exit 1
fi
bash scripts/setup.sh
echo
echo "== building (release)"
cargo build --release -q -p rvsd -p rvs-cli -p rvs-e2e --bins  # rvs-compare runs rvsd
exec target/release/rvs-compare
