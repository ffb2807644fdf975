#!/usr/bin/env bash
# Build the release distributions into dist/: the sdist, and from it one wheel per CPython
# (3.11, 3.12, 3.13 by default; or the minor versions given as arguments), tagged
# manylinux2014 (glibc 2.17). Then check each wheel: auditwheel must agree with the tag, and
# the extension must carry no debug info. See design/packaging.md.
#
#   scripts/wheels.sh [3.11 3.12 3.13]
#
# Needs Rust (cargo) and those interpreters (pyenv; scripts/pythons.sh finds them); installs
# maturin, zig (the linker that targets an old glibc from this machine) and auditwheel into
# .wheel-venv/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pythons.sh
start=$SECONDS

# The oldest glibc the wheels run on: manylinux_2_17 is manylinux2014 (CentOS 7 and newer).
GLIBC_MAJOR=2
GLIBC_MINOR=17
TAG="manylinux_${GLIBC_MAJOR}_${GLIBC_MINOR}"
minors=("$@")
# shellcheck disable=SC2206  # a space-separated list
[ ${#minors[@]} -gt 0 ] || minors=($SUPPORTED_PYTHONS)

# --- tools ------------------------------------------------------------------------------
venv=.wheel-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q 'maturin>=1.9,<2' 'ziglang>=0.13,<0.18' 'auditwheel>=6,<7'
export PATH="$PWD/$venv/bin:$PATH"
tools_done=$SECONDS

# --- interpreters -----------------------------------------------------------------------
interpreters=()
for minor in "${minors[@]}"; do
    interpreters+=("$(find_python "$minor")")
    echo "== CPython $minor: ${interpreters[-1]}"
done

# --- build ------------------------------------------------------------------------------
mkdir -p dist
rm -f dist/trio_asyncio_rs-*
interp_args=()
for py in "${interpreters[@]}"; do interp_args+=(-i "$py"); done
echo "== maturin: sdist, and from it a wheel per interpreter ($TAG, zig as the linker)"
maturin build --release --locked --sdist --zig --compatibility "$TAG" --auditwheel check \
    "${interp_args[@]}" --out dist
build_done=$SECONDS

# --- checks -----------------------------------------------------------------------------
shopt -s nullglob
wheels=(dist/trio_asyncio_rs-*.whl)
sdists=(dist/trio_asyncio_rs-*.tar.gz)
[ ${#sdists[@]} -eq 1 ] || { echo "wheels.sh: expected one sdist in dist/" >&2; exit 1; }
[ ${#wheels[@]} -eq ${#minors[@]} ] || {
    echo "wheels.sh: expected ${#minors[@]} wheels in dist/, found ${#wheels[@]}" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for minor in "${minors[@]}"; do
    cp="cp${minor//./}"
    matches=(dist/trio_asyncio_rs-*-"$cp"-"$cp"-*.whl)
    if [ ${#matches[@]} -ne 1 ]; then
        echo "FAIL: no $cp wheel in dist/" >&2; status=1; continue
    fi
    wheel=${matches[0]}
    echo "== $(basename "$wheel")"
    # auditwheel reads the symbol versions the extension needs and names the oldest
    # manylinux tag they allow; it must be ours or older.
    show=$(auditwheel show "$wheel")
    echo "$show" | grep -E 'consistent with|platform tag|^"manylinux' || true
    allowed=$(echo "$show" | tr '\n' ' ' | grep -oE 'is consistent with the following platform tag: +"manylinux_[0-9]+_[0-9]+_x86_64"' \
        | grep -oE 'manylinux_[0-9]+_[0-9]+' || true)
    if [ -z "$allowed" ]; then
        echo "FAIL: auditwheel finds no manylinux tag for $wheel" >&2; status=1; continue
    fi
    IFS=_ read -r _ major minor_glibc <<<"$allowed"
    if [ "$major" -ne "$GLIBC_MAJOR" ] || [ "$minor_glibc" -gt "$GLIBC_MINOR" ]; then
        echo "FAIL: $wheel needs $allowed, newer than $TAG" >&2; status=1; continue
    fi
    case "$(basename "$wheel")" in
        *"$TAG"_x86_64*) ;;
        *) echo "FAIL: $wheel is not tagged $TAG" >&2; status=1; continue ;;
    esac
    # Release wheels carry no debug info (the profiling profile keeps it; Cargo.toml).
    rm -rf "${scratch:?}"/*
    python3 -m zipfile -e "$wheel" "$scratch"
    so=$(find "$scratch" -name '_engine*.so')
    if readelf -S "$so" | grep -qE '\.debug_(info|line)'; then
        echo "FAIL: $so has debug info" >&2; status=1; continue
    fi
    # What a published distribution needs: its license (PEP 639) and the license texts.
    meta=$(find "$scratch" -path '*.dist-info/METADATA')
    for line in 'License-Expression: MIT OR Apache-2.0' 'License-File: LICENSE-MIT' \
                'License-File: LICENSE-APACHE' 'Requires-Python: >=3.11, <3.14'; do
        grep -qxF "$line" "$meta" || { echo "FAIL: $wheel METADATA lacks '$line'" >&2; status=1; }
    done
    for license in LICENSE-MIT LICENSE-APACHE; do
        [ -s "$(dirname "$meta")/licenses/$license" ] \
            || { echo "FAIL: $wheel lacks $license" >&2; status=1; }
    done
    echo "   auditwheel: $allowed (target $TAG), no debug info, licenses; wheel $(stat -c %s "$wheel") bytes, .so $(stat -c %s "$so") bytes"
done
echo "== dist/"
ls -l dist/trio_asyncio_rs-*
echo "== wheels.sh: tools $((tools_done - start)) s, build $((build_done - tools_done)) s, checks $((SECONDS - build_done)) s, total $((SECONDS - start)) s"
exit "$status"
