#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through the libfuzzer-sys crate) on stable Rust, no
# extra tools: the fuzz crate (fuzz/, its own workspace) is built with plain cargo and
# the SanitizerCoverage flags cargo-fuzz would pass, then each target runs for a bounded
# time. Fails on the first crash, printing the reproducer and the command to replay it.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]    # default: 30 s each, every target
#   bash scripts/fuzz.sh --build                  # build only
#   fuzz/target/<host>/release/<target> FILE      # replay one input
#
# Needs nothing beyond scripts/setup.sh: a C++ compiler for libFuzzer's source (built by
# libfuzzer-sys from crates.io) and DPDK for rvsd, which the `config` target links. Corpora:
# the committed seeds in fuzz/corpus/<target> (read only) and the growing working
# corpus in fuzz/target/corpus/<target> (git-ignored, kept between runs); crashes go to
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(frame wire ctl config keepalived agent_wire)
build_only=false
secs=30
if [ "${1:-}" = "--build" ]; then
    build_only=true
    shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# libFuzzer is C++: the system's c++ (g++) or clang++ (setup.sh installs clang, which
# brings the C++ library headers).
if [ -z "${CXX:-}" ] && ! command -v c++ >/dev/null 2>&1; then
    export CXX=clang++
fi
export CARGO_TARGET_DIR="$PWD/fuzz/target"
# What cargo-fuzz passes, minus the sanitizer (-Zsanitizer needs nightly; the code under
# test forbids `unsafe`, so a panic, an overflow or a debug assertion is the crash).
# With an explicit --target, RUSTFLAGS reach only the target's code, not build scripts.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks --cfg fuzzing"

printf 'fuzz: building %s\n' "${TARGETS[*]}"
bins=()
for t in "${TARGETS[@]}"; do bins+=(--bin "$t"); done
cargo build --manifest-path fuzz/Cargo.toml --release --target "$host" "${bins[@]}"
$build_only && exit 0

failed=()
for t in "${TARGETS[@]}"; do
    bin="fuzz/target/$host/release/$t"
    work="fuzz/target/corpus/$t"
    arts="fuzz/artifacts/$t"
    mkdir -p "$work" "$arts" "fuzz/corpus/$t"
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
    log="fuzz/target/$t.log"
    printf 'fuzz: %s for %s s\n' "$t" "$secs"
    if "$bin" "$work" "fuzz/corpus/$t" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$arts/" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        printf 'fuzz: %s ok: %s executions, %s, corpus %s files\n' "$t" "${runs:-?}" "${cov:-cov: ?}" \
            "$(find "$work" -type f | wc -l)"
    else
        tail -n 40 "$log"
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        printf 'fuzz: %s FAILED; reproducer: %s\nfuzz: replay: %s %s\n' "$t" "${repro:-see $log}" "$bin" "${repro:-}" >&2
        failed+=("$t")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'fuzz: crashes in: %s\n' "${failed[*]}" >&2
    exit 1
fi
printf 'fuzz: all %d targets ran %s s without a crash\n' "${#TARGETS[@]}" "$secs"
