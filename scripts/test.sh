#!/usr/bin/env bash
# Sets the machine up, then builds, checks formatting and lints, and runs every test.
# This is the command CI runs (.ci/run); run it before you push.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

step "build"
cargo build --workspace --all-targets --all-features

step "format"
cargo fmt --all -- --check

step "format (fuzz crate)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "lint"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docs"
# Every intra-doc link resolves (the API documentation is part of the deliverable).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features -q

step "test"
# Tests that touch the kernel (namespaces, veth, tap) need root, as CI has.
cargo test --workspace --all-features

step "fuzz"
# Every fuzz target for 30 s from the committed seeds (scripts/fuzz.sh; a crash fails).
bash scripts/fuzz.sh 30

step "demo"
# README's first command, as a user runs it (its own release build, namespaces, traffic).
bash scripts/demo.sh

step "package"
# The .deb built (reusing the demo's release build), installed, its binaries, man pages,
# completions and units checked, and purged (scripts/test-package.sh).
bash scripts/test-package.sh
