#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: build the extension into .venv, then run
# the Rust unit tests, the Python tests, the whole suite again under `python -X dev`, and
# CPython's test.test_asyncio in both conformance modes (see design/conformance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
echo "== cargo test"
cargo test --quiet --lib -- --test-threads=1
echo "== pytest"
"$PY" -m pytest -q "$@"
echo "== pytest under -X dev (asyncio debug mode, debug allocator, all warnings)"
"$PY" -X dev -m pytest -q tests/
echo "== conformance: compatibility mode"
CONF_NO_SETUP=1 bash scripts/conformance.sh compat
echo "== conformance: loop-under-test mode"
CONF_NO_SETUP=1 bash scripts/conformance.sh loop-under-test
