#!/usr/bin/env bash
# Print the path of pyenv's newest installed CPython of a minor version (default 3.11):
#   scripts/pyenv-python.sh 3.12   ->   <pyenv prefix 3.12.N>/bin/python3.12
# Fails with one line on stderr if pyenv has no such interpreter.
set -euo pipefail
minor="${1:-3.11}"
version=$(pyenv versions --bare | grep -E "^${minor//./\\.}\\.[0-9]+$" | sort -V | tail -n 1 || true)
if [ -z "$version" ]; then
    echo "no CPython $minor in pyenv (see 'pyenv versions --bare')" >&2
    exit 1
fi
echo "$(pyenv prefix "$version")/bin/python$minor"
