#!/usr/bin/env bash
# Where the worker's time goes (issue 17, item 6): a flame graph of the real rvsd worker
# under rvs-bench at PROFILE_CONNS live connections (default 1 million), and the cost
# growth table from 1 thousand to PROFILE_MAX live connections (default 10 million).
#
#   bash scripts/profile.sh                   # writes docs/flamegraph-worker.svg, prints the table
#   PROFILE_FLAME=0 bash scripts/profile.sh   # the growth table only (the svg is kept)
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
# 4. Runs rvs-bench at 1k/100k, 1M/2M and 1M/PROFILE_MAX live connections (small/large
#    population of one run; a run's connection pool is sized for its large population,
#    so 1 M is measured in a 4 M pool and in PROFILE_MAX's) and prints ns per packet of
#    each established case and ns per new connection, with the growth relative to 1k,
#    the run's pool and LIPs (rvs-bench gives the service more LIPs when the population
#    needs the local ports: 64 for 10 M), and w.cpu. Opening 10 M connections takes
#    about 70 s and about 7.5 GB of memory (the pool of 16 M connections, the listing
#    and the frames of every flow).
#
# Every DPDK process runs with --no-pci --no-huge and a unique --file-prefix. Figures are
# noisy on a shared 2-core machine: compare ratios from one run.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${PROFILE_CONNS:-1000000}
MAX=${PROFILE_MAX:-10000000}
FLAME=${PROFILE_FLAME:-1}
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

if [ "$FLAME" != 0 ]; then
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
fi

echo "== cost growth: rvs-bench run at 1k / 100k, 1M / 2M and 1M / $MAX live connections"
RUNS=("1000 100000" "1000000 2000000" "1000000 $MAX")
for pair in "${RUNS[@]}"; do
    set -- $pair
    tag="$1-$2"
    SECONDS=0
    timeout -k 5 900 "$BIN" run --secs "$SECS" --small "$1" --large "$2" --file-prefix "$PREFIX-$tag" \
        --json "$TMP/growth-$tag.json" >"$TMP/growth-$tag.log" 2>&1 || { cat "$TMP/growth-$tag.log" >&2; exit 1; }
    echo "   $1 / $2: ${SECONDS} s"
    grep -E '^rvs-bench: (connection pool|opened flows)' "$TMP/growth-$tag.log" | sed 's/^/     /'
done
python3 - "$TMP" "${RUNS[@]}" <<'PY'
import json, re, sys
tmp, runs = sys.argv[1], sys.argv[2:]
rows = {}
for run in runs:
    small, large = run.split()
    tag = f"{small}-{large}"
    log = open(f"{tmp}/growth-{tag}.log").read()
    m = re.search(r"connection pool (\d+) per worker, (\d+) LIPs", log)
    pool, lips = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    for c in json.load(open(f"{tmp}/growth-{tag}.json")):
        ns = c.get("ns_per_pkt_median") or c.get("ns_per_pkt") or 0.0
        best = c.get("ns_per_pkt_best") or 0.0
        rows.setdefault(c["case"], []).append(
            (c["live"], pool, lips, ns, best, c.get("ns_windows", 0), c.get("worker_cpu", 0.0)))
print("ns/pkt: the worker's CPU time per packet (median of the busy windows; best: the lowest);")
print("x smallest: against the same case at the smallest population; w.cpu: the worker's share of its CPU")
print(f"{'case':<16} {'live':>10} {'pool':>9} {'LIPs':>4} {'ns/pkt':>8} {'best':>8} {'x smallest':>10} {'windows':>7} {'w.cpu':>6}")
for case, cs in rows.items():
    cs.sort()
    base = cs[0][3] or 1.0
    for live, pool, lips, ns, best, win, cpu in cs:
        print(f"{case:<16} {live:>10} {pool:>9} {lips:>4} {ns:>8.1f} {best:>8.1f} {ns / base:>10.2f} {win:>7} {cpu:>6.2f}")
PY
