#!/usr/bin/env bash
# Fiber switch round trip against greenlet on every supported CPython, one after the other
# in one invocation (same machine state): for each version, build our package into its venv
# (scripts/setup.sh), install greenlet there (a benchmark-only package, not a dependency) and
# run benches/bench_fiber.py. Results go into benches/README.md by hand.
#
#   bash benches/fiber_versions.sh            # 3.11, 3.12, 3.13
#   PYTHONS="3.13" bash benches/fiber_versions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pythons.sh
for version in ${PYTHONS:-$SUPPORTED_PYTHONS}; do
    bash scripts/setup.sh "$version" >/dev/null
    venv="$(venv_dir "$version")"
    "$venv/bin/python" -m pip install -q greenlet
    "$venv/bin/python" benches/bench_fiber.py
    echo
done
