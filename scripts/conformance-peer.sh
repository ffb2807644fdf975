#!/usr/bin/env bash
# Run both conformance modes against PyPI's trio-asyncio 0.16 (the reference peer) in its
# own venv under .conf-venvs/ (git-ignored), comparing with and refreshing (--update)
# tests/conformance/expectations/trio-asyncio-0.16/. Extra options go to the runner.
#
#   scripts/conformance-peer.sh [compat|loop-under-test|both] [runner options]
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-both}"
case "$which" in compat|loop-under-test|both) shift || true ;; *) which=both ;; esac
venv=.conf-venvs/trio-asyncio-0.16
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q 'trio-asyncio==0.16.0'
fi
modes=(compat loop-under-test)
[ "$which" = both ] || modes=("$which")
status=0
for mode in "${modes[@]}"; do
    bash scripts/conformance.sh "$mode" --python "$venv/bin/python" \
        --expectations-dir tests/conformance/expectations/trio-asyncio-0.16 \
        --out ".conf-results/peer-$mode" "$@" || status=$?
done
exit "$status"
