#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine (as root): sets up, builds, creates the
# namespace topology (a client, rvsd on two af_packet virtual NICs, a switch, three
# real servers running HTTP servers), starts rvsd with dpdk-conf/demo.toml, sends real
# HTTP traffic through the VIPs over IPv4 and IPv6, prints what happened, cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: run as root (it creates network namespaces)" >&2
    exit 1
fi
bash scripts/setup.sh
echo
echo "== building (release)"
cargo build --release -q -p rvsd -p rvs-cli -p rvs-e2e --bins  # rvs-demo runs rvsd, rvsadm and rvsip
exec target/release/rvs-demo
