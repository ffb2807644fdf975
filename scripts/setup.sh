#!/usr/bin/env bash
# Create .venv (if missing) and install trio_asyncio into it with its test dependencies.
# Idempotent: a second run only rebuilds the extension.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip maturin
.venv/bin/python -m pip install -q -e '.[test]'
