#!/usr/bin/env bash
# Rust lint gate: formatting and clippy with warnings as errors (all targets, tests too).
# Usage: bash scripts/lint-rust.sh        (from anywhere; exits non-zero on any finding)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
