#!/usr/bin/env bash
# Create the venv of one supported CPython (if missing) and install trio_asyncio into it with
# its test dependencies. Idempotent: a second run only rebuilds the extension.
#
#   scripts/setup.sh            CPython 3.11 into .venv
#   scripts/setup.sh 3.12       CPython 3.12 into .venv-3.12 (likewise 3.13)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pythons.sh
version="${1:-$DEFAULT_PYTHON}"
venv="$(venv_dir "$version")"
if [ ! -x "$venv/bin/python" ]; then
    "$(find_python "$version")" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip maturin
CARGO_TARGET_DIR="$(target_dir "$version")" "$venv/bin/python" -m pip install -q -e '.[test]'
