#!/usr/bin/env bash
# The comparison (issue 17), from a fresh Debian 12 machine (as root): sets up, builds
# release, then on the demo's namespace topology runs the same wrk load (one thread,
# 32 connections, COMPARE_SECS seconds, default 5) against three nginx servers through
# rvsd (af_packet busy and adaptive polling, af_xdp), the kernel's nftables FullNAT,
# HAProxy in TCP mode and no balancer, and prints keep-alive requests/s and new
# connections/s for each with rvsd's ratio to each (tests/support/compare.rs).
# Figures from one run on a shared machine: compare the ratios.
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
