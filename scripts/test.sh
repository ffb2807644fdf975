#!/usr/bin/env bash
# Run the whole test suite from a fresh clone, on every supported CPython (3.11, 3.12, 3.13):
# for each one, build the extension into its venv, then run the Rust unit tests, the Python
# tests, the whole suite again under `python -X dev`, that interpreter's own
# test.test_asyncio in both conformance modes, and trio-asyncio 0.16.0's own test suite
# (downloaded from PyPI at test time) against our package (see design/conformance.md); mypy
# --strict on the package per version; on 3.11 the Python tests once more with the native
# stream transport switched off (the fallback users get with TRIO_ASYNCIO_NATIVE_TRANSPORT=0);
# cargo fmt/clippy and the generated private-names table
# of design/loops.md once; and the documentation site once.
#
#   scripts/test.sh                  every supported version
#   PYTHONS="3.12" scripts/test.sh   only the versions listed (extra args go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pythons.sh
for version in ${PYTHONS:-$SUPPORTED_PYTHONS}; do
    echo "======== CPython $version"
    bash scripts/setup.sh "$version"
    venv="$(venv_dir "$version")"
    PY="$venv/bin/python"
    "$PY" --version
    echo "== lint: mypy --strict ($version)"
    bash scripts/lint.sh "$version"
    if [ -z "${rust_linted:-}" ]; then
        echo "== lint: cargo fmt --check, cargo clippy -D warnings ($version)"
        PYO3_PYTHON="$PWD/$PY" CARGO_TARGET_DIR="$(target_dir "$version")" bash scripts/lint-rust.sh
        rust_linted=1
    fi
    if [ "$version" = 3.11 ]; then
        echo "== design/loops.md private-names table matches the code"
        "$PY" scripts/gen_private_names.py --check
    fi
    echo "== cargo test ($version)"
    PYO3_PYTHON="$PWD/$PY" CARGO_TARGET_DIR="$(target_dir "$version")" \
        cargo test --quiet --lib -- --test-threads=1
    echo "== pytest ($version)"
    "$PY" -m pytest -q "$@"
    if [ "$version" = 3.11 ]; then
        echo "== pytest on asyncio's Python socket transports (TRIO_ASYNCIO_NATIVE_TRANSPORT=0, $version)"
        TRIO_ASYNCIO_NATIVE_TRANSPORT=0 "$PY" -m pytest -q tests/
    fi
    echo "== pytest under -X dev ($version; asyncio debug mode, debug allocator, all warnings)"
    "$PY" -X dev -m pytest -q tests/
    echo "== conformance: compatibility mode ($version)"
    bash scripts/conformance.sh compat --python "$PY"
    echo "== conformance: loop-under-test mode ($version)"
    bash scripts/conformance.sh loop-under-test --python "$PY"
    echo "== conformance: trio-asyncio 0.16.0's own suite ($version)"
    CONF_NO_SETUP=1 bash scripts/conformance-016.sh --python "$PY"
done
echo "== docs (Sphinx, warnings as errors)"
bash scripts/docs.sh
