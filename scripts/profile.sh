#!/usr/bin/env bash
# Where the worker's time goes (issue 17, item 6): a flame graph of the real rvsd worker
# under rvs-bench at PROFILE_CONNS live connections (default 1 million), and the cost
# growth table from 1 thousand to PROFILE_MAX live connections (default 2 million:
# rvs-bench's population rounds did not open 10 million within 10 minutes here).
#
#   bash scripts/profile.sh            # writes docs/flamegraph-worker.svg, prints the table
#
# 1. Sets the machine up (scripts/setup.sh; linux-perf; inferno's flame graph tools with
#    `cargo install --locked inferno` when missing).
# 2. Builds rvs-bench in release with frame pointers (its own target directory,
#    target/profile, so the normal build is untouched).
# 3. perf record (cpu-clock, frame-pointer call graphs) of rvs-bench, kept to its worker
#    thread, while
#    `rvs-bench run --small N --large N` runs every worker case (established inbound and
#    outbound, new connections) at N live connections; folds the stacks with
#    inferno-collapse-perf and draws docs/flamegraph-worker.svg with inferno-flamegraph.
# 4. Runs rvs-bench at 1k/100k and 1M/PROFILE_MAX live connections and prints ns per
#    packet of each established case and ns per new connection, with the growth
#    relative to 1k.
#
# Every DPDK process runs with --no-pci --no-huge and a unique --file-prefix. Figures are
# noisy on a shared 2-core machine: compare ratios from one run.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${PROFILE_CONNS:-1000000}
MAX=${PROFILE_MAX:-2000000}
SECS=${PROFILE_SECS:-2}
OUT=${PROFILE_SVG:-docs/flamegraph-worker.svg}
if [ "$(id -u)" -ne 0 ]; then
    echo "profile: run as root (DPDK and perf need it)" >&2
    exit 1
fi
bash scripts/setup.sh >/dev/null
command -v perf >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
export PATH="$HOME/.cargo/bin:$PATH"
command -v inferno-flamegraph >/dev/null || cargo install --locked -q inferno
TMP=$(mktemp -d /tmp/rvs-profile.XXXXXX)
PREFIX="rvsprof$$"
cleanup() {
    rm -rf "$TMP" /var/run/dpdk/"$PREFIX"-*
}
trap cleanup EXIT

echo "== build: rvs-bench, release, frame pointers (target/profile)"
RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=target/profile \
    cargo build --release -q -p rvs-bench
BIN=target/profile/release/rvs-bench

echo "== perf record while: rvs-bench run --secs $SECS --small $CONNS --large $CONNS (worker thread kept)"
# The process, not CPU 1: perf maps a process's code from its mmap events, which a
# CPU-filtered recording misses when they happen on another CPU.
perf record -q -e cpu-clock -F 999 -g -o "$TMP/perf.data" -- \
    "$BIN" run --secs "$SECS" --small "$CONNS" --large "$CONNS" \
    --file-prefix "$PREFIX-fg" >"$TMP/fg.log" 2>&1 || { cat "$TMP/fg.log" >&2; exit 1; }
# The worker is DPDK's lcore thread (rte-worker-1); the feeder and control run on the
# main thread.
perf script -i "$TMP/perf.data" 2>/dev/null | inferno-collapse-perf | grep '^rte-worker' >"$TMP/folded"
inferno-flamegraph --title "rvsd worker, rvs-bench at $CONNS live connections (all cases)" \
    --width 1600 <"$TMP/folded" >"$OUT"
echo "   $(wc -l <"$TMP/folded") stacks -> $OUT"
echo "   heaviest frames (self time, % of the worker CPU's samples):"
awk '{ n = $NF; $NF = ""; split($0, f, ";"); leaf = f[length(f)]; sub(/ +$/, "", leaf); self[leaf] += n; total += n }
     END { for (k in self) printf "%6.2f%%  %s\n", 100 * self[k] / total, k }' "$TMP/folded" | sort -rn | head -15

echo "== cost growth: rvs-bench run at 1k / 100k and 1M / $MAX live connections"
for pair in "1000 100000" "1000000 $MAX"; do
    set -- $pair
    timeout -k 5 900 "$BIN" run --secs "$SECS" --small "$1" --large "$2" --file-prefix "$PREFIX-$1" \
        --json "$TMP/growth-$1.json" >"$TMP/growth-$1.log" 2>&1 || { cat "$TMP/growth-$1.log" >&2; exit 1; }
done
python3 - "$TMP/growth-1000.json" "$TMP/growth-1000000.json" <<'PY'
import json, sys
rows = {}
for path in sys.argv[1:]:
    for c in json.load(open(path)):
        ns = c.get("ns_per_pkt_median") or c.get("ns_per_pkt") or 0.0
        rows.setdefault(c["case"], []).append((c["live"], ns, c.get("worker_cpu", 0.0)))
print(f"{'case':<16} {'live':>10} {'ns/pkt':>8} {'x smallest':>10} {'w.cpu':>6}")
for case, cs in rows.items():
    cs.sort()
    base = cs[0][1] or 1.0
    for live, ns, cpu in cs:
        print(f"{case:<16} {live:>10} {ns:>8.1f} {ns / base:>10.2f} {cpu:>6.2f}")
PY
