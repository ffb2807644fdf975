#!/usr/bin/env bash
# CPython's own test.test_asyncio as the referee for trio_asyncio (see design/conformance.md).
#
#   scripts/conformance.sh compat          [--python PATH] [runner options]
#   scripts/conformance.sh loop-under-test [--python PATH] [--loop-factory module:callable] [...]
#
# Runs the mode on our package ("ours": --python, default .venv/bin/python, which
# scripts/setup.sh builds first) and on stock asyncio (same interpreter, no trio_asyncio
# import), prints a summary table, and exits non-zero on any result that differs from
# tests/conformance/expectations/. Other options: --update, --only MODULES, --sides,
# --jobs N, --timeout SECS, --out DIR, --expectations-dir DIR (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
case "$mode" in
    compat|loop-under-test) shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "usage: $0 compat|loop-under-test [--python PATH] [options]" >&2; exit 2 ;;
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
PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m conformance "$mode" "$@"
