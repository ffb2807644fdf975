# Sourced by the scripts: find the interpreters and name each one's venv.
#
#   py_versions            the supported CPython minor versions (keep in step with
#                          python/trio_asyncio/_versions.py and build.rs)
#   find_python X.Y        print the path of a CPython X.Y (pyenv first, then PATH)
#   venv_dir X.Y           .venv for the default version (3.11), .venv-X.Y otherwise
#   target_dir X.Y         cargo target dir for X.Y (pyo3 is configured per interpreter)
SUPPORTED_PYTHONS="3.11 3.12 3.13"
DEFAULT_PYTHON="3.11"

find_python() {
    local want="$1" prefix
    if command -v pyenv >/dev/null 2>&1; then
        if prefix="$(pyenv prefix "$want" 2>/dev/null)" && [ -x "$prefix/bin/python$want" ]; then
            echo "$prefix/bin/python$want"
            return 0
        fi
    fi
    if command -v "python$want" >/dev/null 2>&1; then
        command -v "python$want"
        return 0
    fi
    echo "no CPython $want found (pyenv or python$want on PATH)" >&2
    return 1
}

venv_dir() {
    if [ "$1" = "$DEFAULT_PYTHON" ]; then echo ".venv"; else echo ".venv-$1"; fi
}

target_dir() {
    if [ "$1" = "$DEFAULT_PYTHON" ]; then echo "target"; else echo "target/py$1"; fi
}
