#!/usr/bin/env bash
# The worker benchmark (issue 4, item 7), from a fresh Debian 12 machine (as root):
# sets up, builds release, then in one run measures
#   1. dpdk-testpmd in macswap mode on net_ring -> net_null (the I/O ceiling),
#   2. rvs-bench run: the real rvsd worker on lcore 1 over the same kind of ports,
#      fed by the main lcore: established flows inbound and outbound, and new
#      connections per second, with 1 thousand and 1 million live connections,
#      real servers in FullNAT; then once per other forwarding mode (rvs-bench run
#      --fwd nat|dr|tunnel|snat, the same service and populations (SNAT: a rule instead); established outbound
#      only for NAT, whose replies pass rvs; TUN at the small population only, see
#      benches/src/cases.rs `worker_cases`),
#   3. rvs-bench redirect: two workers of a two-worker configuration; established
#      outbound replies at their owner (the plain path) and at the other worker,
#      redirected to the owner over the SP/SC redirect ring: worker CPU ns per packet
#      of both and the difference (the redirect cost), 1 thousand and 1 million live,
#   4. rvs-bench io: the same feeder and ports with a bare macswap loop (this
#      harness's own ceiling),
#   5. dpdk-testpmd again (the ratio uses the best 1 s sample of both testpmd runs), and
#      testpmd on net_pcap(infinite_rx) -> net_null on one core (context only),
# and prints a table: case, figure per worker, target, testpmd Mpps, ratio (FullNAT);
# then the modes table: per mode, established inbound Mpps and worker ns per packet,
# established outbound Mpps, new connections per second, each with its ratio to
# FullNAT's row; then the redirect table: plain and redirected ns per packet and the
# redirect cost.
#
# Every DPDK process runs with --no-pci --no-huge and a unique --file-prefix, under
# `timeout`; the script kills what it started (by pid) and removes its runtime
# directories on exit. It creates no namespace or interface.
#
# Environment: BENCH_SECS (seconds per case, default 2), BENCH_SMALL (1000),
# BENCH_LARGE (1000000), BENCH_MODES (the modes run after FullNAT, default
# "nat dr tunnel snat"; empty: none), TESTPMD_SECS (wall seconds per testpmd run, default 10),
# BENCH_NICE (niceness of the DPDK processes, default 0; -20 gives them the CPUs on a
# machine shared with builds, at the others' expense while it runs), BENCH_REST
# (seconds without traffic before each testpmd run and each population's established
# inbound case, default 0: for machines that throttle their CPUs after seconds of full
# load, as the project's burstable VMs do; 240 gives this one its full speed back).
# Figures are noisy on a shared 2-core machine: compare ratios from one run, and look
# at the w.cpu column (the share of the time the worker really had its CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECS:-2}
SMALL=${BENCH_SMALL:-1000}
LARGE=${BENCH_LARGE:-1000000}
TESTPMD_SECS=${TESTPMD_SECS:-10}
MODES=${BENCH_MODES-nat dr tunnel snat}
NICE=${BENCH_NICE:-0}
REST=${BENCH_REST:-0}
REST_S=${REST%.*}  # whole seconds, for the run's timeout
REST_S=${REST_S:-0}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench: run as root (DPDK needs it)" >&2
    exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench: needs 2 CPUs (feeder/control on lcore 0, worker on lcore 1)" >&2
    exit 1
fi

bash scripts/setup.sh
# dpdk-testpmd is in Debian's dpdk-dev package (not in dpdk).
if ! command -v dpdk-testpmd >/dev/null 2>&1; then
    echo "bench: installing dpdk-dev for dpdk-testpmd"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends dpdk-dev >/dev/null || {
        apt-get update -qq && apt-get install -y -qq --no-install-recommends dpdk-dev >/dev/null
    }
fi

echo
echo "== building (release)"
cargo build --release -q -p rvs-bench
BIN=target/release/rvs-bench

TMP=$(mktemp -d /tmp/rvs-bench.XXXXXX)
PREFIX="rvsbench$$"
PIDS=()
cleanup() {
    local p alive=()
    # Each pid is a `timeout` (exec'd by nice) whose child is the DPDK process: a
    # signal to timeout reaches the child; its children are killed by parent pid last.
    for p in "${PIDS[@]:-}"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -INT "$p" 2>/dev/null || true
            alive+=("$p")
        fi
    done
    if [ "${#alive[@]}" -gt 0 ]; then
        sleep 3
        for p in "${alive[@]}"; do
            pkill -KILL -P "$p" 2>/dev/null || true
            kill -KILL "$p" 2>/dev/null || true
        done
    fi
    rm -rf /var/run/dpdk/"$PREFIX"-* "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command in the background (so the trap can reach it by pid) and waits.
run() {
    "$@" &
    local pid=$!
    PIDS+=("$pid")
    local rc=0
    wait "$pid" || rc=$?
    return "$rc"
}

# dpdk-testpmd NAME FWD_CORES EAL_ARGS...: macswap for TESTPMD_SECS; prints port 0's
# Rx-pps samples, one a line (the first two, taken while starting, are dropped).
testpmd() {
    local name=$1 cores=$2
    shift 2
    local log="$TMP/testpmd-$name.log"
    echo "   dpdk-testpmd $* --main-lcore 0 --no-pci --no-huge -m 512 --file-prefix $PREFIX-tp-$name" \
        "-- --nb-cores=$cores --forward-mode=macswap --stats-period 1 --no-lsc-interrupt --auto-start" \
        "--total-num-mbufs=32767 --mbcache=256" >&2
    run nice -n "$NICE" timeout -s INT -k 5 "$TESTPMD_SECS" dpdk-testpmd "$@" \
        --main-lcore 0 --no-pci --no-huge -m 512 --file-prefix "$PREFIX-tp-$name" \
        --log-level=lib.eal:warning -- --nb-cores="$cores" \
        --forward-mode=macswap --stats-period 1 --no-lsc-interrupt --auto-start \
        --total-num-mbufs=32767 --mbcache=256 >"$log" 2>&1 || true
    sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log" \
        | awk '/NIC statistics for port 0/ { p = 1 } p && /Rx-pps:/ { print $2; p = 0 }' \
        | tail -n +3
}

# testpmd on the kind of ports the worker uses: a net_ring port and a net_null port,
# two forwarding lcores. Lcore 2 (CPU 0) runs null rx -> ring tx: it keeps the ring
# full, as the bench's feeder on CPU 0 does; lcore 1 (CPU 1) runs ring rx -> macswap
# -> null tx, as the worker. Port 0's Rx-pps is that second stream.
TP_RING=(--lcores '0@0,1@1,2@0' --vdev net_ring0 --vdev net_null0)

# Lets a throttled machine recover its full speed before a measurement (BENCH_REST).
rest() {
    if [ "$REST" != 0 ]; then
        echo "   resting $REST s first (BENCH_REST)"
        sleep "$REST"
    fi
}

best() {
    sort -g | tail -n 1
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "" } else if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}

echo
echo "== machine: niceness $NICE, $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "== testpmd macswap, net_ring -> net_null (1/2)"
rest
testpmd ring1 2 "${TP_RING[@]}" >"$TMP/tp1.txt" || true
echo "   samples (Mpps): $(awk '{ printf "%.2f ", $1 / 1e6 }' "$TMP/tp1.txt")"

echo
echo "== rvs worker: $BIN run --secs $SECS --small $SMALL --large $LARGE --rest $REST"
run nice -n "$NICE" timeout -k 5 $((240 + 2 * REST_S)) "$BIN" run --secs "$SECS" --small "$SMALL" \
    --large "$LARGE" --rest "$REST" --file-prefix "$PREFIX-rvs" --json "$TMP/rvs.json" >"$TMP/rvs.log" 2>&1 || true
grep -v '^TELEMETRY' "$TMP/rvs.log" || true
[ -s "$TMP/rvs.json" ] || { echo "bench: rvs-bench run failed" >&2; exit 1; }

# The other forwarding modes, one run each; a failed one leaves its rows out.
MODE_ARGS=()
for m in $MODES; do
    echo
    echo "== rvs worker, $m: $BIN run --fwd $m --secs $SECS --small $SMALL --large $LARGE"
    run nice -n "$NICE" timeout -k 5 240 "$BIN" run --fwd "$m" --secs "$SECS" --small "$SMALL" --large "$LARGE" \
        --file-prefix "$PREFIX-$m" --json "$TMP/rvs-$m.json" >"$TMP/rvs-$m.log" 2>&1 || true
    grep -v '^TELEMETRY' "$TMP/rvs-$m.log" || true
    if [ -s "$TMP/rvs-$m.json" ]; then
        MODE_ARGS+=(--rvs "$TMP/rvs-$m.json")
    else
        echo "bench: rvs-bench run --fwd $m failed (no $m rows in the modes table)" >&2
    fi
done

echo
echo "== redirect: $BIN redirect --secs $SECS --small $SMALL --large $LARGE"
run nice -n "$NICE" timeout -k 5 240 "$BIN" redirect --secs "$SECS" --small "$SMALL" --large "$LARGE" \
    --file-prefix "$PREFIX-rd" --json "$TMP/rd.json" >"$TMP/rd.log" 2>&1 || true
grep -v '^TELEMETRY' "$TMP/rd.log" || true
[ -s "$TMP/rd.json" ] || echo "bench: rvs-bench redirect failed (no redirect table)" >&2

echo
echo "== harness ceiling: $BIN io --secs $SECS"
run nice -n "$NICE" timeout -k 5 60 "$BIN" io --secs "$SECS" --file-prefix "$PREFIX-io" --json "$TMP/io.json" \
    >"$TMP/io.log" 2>&1 || true
grep -v '^TELEMETRY' "$TMP/io.log" || true

echo
echo "== testpmd macswap, net_ring -> net_null (2/2)"
rest
testpmd ring2 2 "${TP_RING[@]}" >"$TMP/tp2.txt" || true
echo "   samples (Mpps): $(awk '{ printf "%.2f ", $1 / 1e6 }' "$TMP/tp2.txt")"

echo
echo "== context: testpmd macswap, net_pcap(infinite_rx) -> net_null, one forwarding core"
"$BIN" pcap --out "$TMP/flows.pcap"
testpmd pcap 1 -l 0,1 --vdev "net_pcap0,rx_pcap=$TMP/flows.pcap,infinite_rx=1" --vdev net_null0,no-rx=1 \
    >"$TMP/tp3.txt" || true
echo "   samples (Mpps): $(awk '{ printf "%.2f ", $1 / 1e6 }' "$TMP/tp3.txt")"

TP=$(cat "$TMP/tp1.txt" "$TMP/tp2.txt" | best)
TP_MED=$(cat "$TMP/tp1.txt" "$TMP/tp2.txt" | median)
TP_PCAP=$(best <"$TMP/tp3.txt")
ARGS=(--rvs "$TMP/rvs.json" "${MODE_ARGS[@]}")
[ -s "$TMP/io.json" ] && ARGS+=(--io "$TMP/io.json")
[ -s "$TMP/rd.json" ] && ARGS+=(--redirect "$TMP/rd.json")
[ -n "$TP" ] && ARGS+=(--testpmd-mpps "$(awk -v v="$TP" 'BEGIN { printf "%.4f", v / 1e6 }')")
[ -n "$TP_MED" ] && ARGS+=(--testpmd-median "$(awk -v v="$TP_MED" 'BEGIN { printf "%.4f", v / 1e6 }')")
[ -n "$TP_PCAP" ] && ARGS+=(--testpmd-pcap-mpps "$(awk -v v="$TP_PCAP" 'BEGIN { printf "%.4f", v / 1e6 }')")

echo
echo "== results (1 worker; redirect: 2 workers taking turns on one CPU; virtual ports, $(nproc) CPUs)"
"$BIN" report "${ARGS[@]}"

# Nothing of ours may be left running.
for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
        echo "bench: process $p still running; killing it" >&2
        kill -KILL "$p" 2>/dev/null || true
    fi
done
