#!/usr/bin/env bash
# trio-asyncio 0.16.0's own test suite as a referee for trio_asyncio (see design/conformance.md).
#
#   scripts/conformance-016.sh [--python PATH] [--update] [--timeout SECS] [-- PYTEST ARGS]
#
# Downloads the trio-asyncio 0.16.0 sdist with pip (cached in .conf-cache/, git-ignored),
# unpacks only its tests/ (into .conf-results/peer-suite-0.16/), runs them with pytest
# against the trio_asyncio installed in --python (default .venv/bin/python, which
# scripts/setup.sh builds first unless CONF_NO_SETUP=1), and exits non-zero on any result
# that differs from tests/conformance/expectations/py3.X/trio-asyncio-0.16-suite.txt
# (3.X: the interpreter's version). Other versions: --python .venv-3.12/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
esac
py=""
prev=""
for arg in "$@"; do
    case "$arg" in
        --python=*) py="${arg#--python=}" ;;
    esac
    if [ "$prev" = "--python" ]; then py="$arg"; fi
    prev="$arg"
done
if [ -z "$py" ]; then
    if [ "${CONF_NO_SETUP:-0}" != 1 ]; then
        bash scripts/setup.sh
    fi
    py=.venv/bin/python
    set -- --python "$py" "$@"
fi
PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m conformance.peer_suite "$@"
