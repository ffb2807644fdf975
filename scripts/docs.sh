#!/usr/bin/env bash
# Build the documentation (Sphinx + MyST, sources in docs/) into docs/_build/html, with
# warnings as errors. Installs Sphinx and myst-parser into the venv; the API reference is
# read from the installed package's docstrings.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    bash scripts/setup.sh
fi
.venv/bin/python -m pip install -q "sphinx>=7" "myst-parser>=3"
rm -rf docs/_build
.venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
echo "docs built: docs/_build/html/index.html"
