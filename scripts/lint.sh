#!/usr/bin/env bash
# Static checks of the Python code: mypy --strict on the package and on user-style typing
# tests (tests/typing/, assert_type checks of the public API). Installs mypy into the venv.
#
#   scripts/lint.sh            CPython 3.11's venv (.venv)
#   scripts/lint.sh 3.12       that version's venv (made by scripts/setup.sh 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pythons.sh
version="${1:-$DEFAULT_PYTHON}"
venv="$(venv_dir "$version")"
if [ ! -x "$venv/bin/python" ]; then
    bash scripts/setup.sh "$version"
fi
"$venv/bin/python" -m pip install -q "mypy>=1.11"
echo "== mypy --strict -p trio_asyncio -p trio_asyncio_pytest ($version)"
(cd python && "../$venv/bin/python" -m mypy --strict -p trio_asyncio -p trio_asyncio_pytest)
echo "== mypy --strict tests/typing ($version)"
MYPYPATH=python "$venv/bin/python" -m mypy --strict tests/typing
