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

step "lint"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "test"
# Tests that touch the kernel (namespaces, veth, tap) need root, as CI has.
cargo test --workspace --all-features
