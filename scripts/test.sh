#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: build the extension into .venv, then run
# the Rust unit tests, the Python tests, and the fiber tests again under `python -X dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
echo "== cargo test"
cargo test --quiet --lib -- --test-threads=1
echo "== pytest"
"$PY" -m pytest -q "$@"
echo "== pytest under -X dev (fiber tests)"
"$PY" -X dev -m pytest -q tests/test_fiber.py
