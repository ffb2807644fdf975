#!/usr/bin/env bash
# Install each wheel in dist/ (from scripts/wheels.sh) into a fresh venv of its interpreter,
# with no Rust toolchain reachable, and run tests/smoke/wheel_smoke.py from outside the
# repository: both loops, a fiber switch, repeated run_until_complete cycles. Then, once,
# install the wheel over PyPI's trio-asyncio 0.16 and check that the import refuses to run
# (trio_asyncio/_install_check.py). See design/packaging.md.
#
#   scripts/wheel-smoke.sh
#
# Needs the wheels' interpreters (pyenv; scripts/pythons.sh finds them) and network access
# to PyPI (runtime dependencies, and trio-asyncio 0.16 for the conflict check).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pythons.sh
repo=$PWD
start=$SECONDS

shopt -s nullglob
wheels=("$repo"/dist/trio_asyncio_rs-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
    echo "wheel-smoke.sh: no wheels in dist/; run scripts/wheels.sh first" >&2
    exit 1
fi

# Interpreters are looked up while pyenv is still on PATH; the runs below use no shims.
declare -A python_for
for wheel in "${wheels[@]}"; do
    cp=$(basename "$wheel" | cut -d- -f3)          # cp312
    minor="${cp:2:1}.${cp:3}"                      # 3.12
    python_for[$wheel]=$(find_python "$minor")
done

# PATH without the directories that hold cargo, rustc or rustup; anything that still tries
# to build Rust (an sdist picked by mistake) finds /bin/false.
clean_path=""
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    if [ -z "$d" ] || [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ]; then
        continue
    fi
    clean_path="${clean_path:+$clean_path:}$d"
done
no_rust=(env PATH="$clean_path" CARGO=/bin/false RUSTC=/bin/false RUSTUP_TOOLCHAIN=none
         CARGO_HOME=/nonexistent RUSTUP_HOME=/nonexistent PYTHONPATH= PYTHONNOUSERSITE=1)
if "${no_rust[@]}" bash -c 'command -v cargo || command -v rustc'; then
    echo "wheel-smoke.sh: a Rust toolchain is still on the cleaned PATH" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/wheel-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp tests/smoke/wheel_smoke.py "$work/"
cd "$work"   # outside the repository: its python/ must not be importable

status=0
for wheel in "${wheels[@]}"; do
    t0=$SECONDS
    py=${python_for[$wheel]}
    name=$(basename "$wheel")
    venv="$work/venv-$(echo "$name" | cut -d- -f3)"
    echo "== $name ($(stat -c %s "$wheel") bytes) on $py"
    "${no_rust[@]}" "$py" -m venv "$venv"
    # --only-binary: the wheel and its dependencies install without building anything.
    if ! "${no_rust[@]}" "$venv/bin/python" -m pip install -q --only-binary :all: "$wheel" \
        || ! "${no_rust[@]}" "$venv/bin/python" -I wheel_smoke.py --expect-prefix "$venv/"; then
        echo "FAIL: $name" >&2
        status=1
    fi
    echo "   ($((SECONDS - t0)) s)"
done

# Installed over trio-asyncio 0.16 (the same import package), the import must refuse with
# a message naming both distributions, and the repair it names must work.
t0=$SECONDS
wheel=${wheels[0]}
venv="$work/venv-conflict"
echo "== conflict: trio-asyncio 0.16.0, then $(basename "$wheel")"
"${no_rust[@]}" "${python_for[$wheel]}" -m venv "$venv"
"${no_rust[@]}" "$venv/bin/python" -m pip install -q --only-binary :all: 'trio-asyncio==0.16.0'
"${no_rust[@]}" "$venv/bin/python" -m pip install -q --only-binary :all: "$wheel"
if out=$("${no_rust[@]}" "$venv/bin/python" -I -c 'import trio_asyncio' 2>&1); then
    echo "FAIL: trio_asyncio imported next to trio-asyncio 0.16" >&2
    status=1
elif ! grep -q "ImportError: .*'trio-asyncio' and the 'trio-asyncio-rs' distributions" <<<"$out"; then
    echo "FAIL: unexpected import failure:" >&2
    echo "$out" >&2
    status=1
else
    echo "   refused: $(tail -n 1 <<<"$out")"
    # The repair the message gives leaves a working trio-asyncio-rs.
    "${no_rust[@]}" "$venv/bin/python" -m pip uninstall -q -y trio-asyncio trio-asyncio-rs
    "${no_rust[@]}" "$venv/bin/python" -m pip install -q --only-binary :all: "$wheel"
    if "${no_rust[@]}" "$venv/bin/python" -I wheel_smoke.py --expect-prefix "$venv/" >/dev/null; then
        echo "   repaired as the message says: smoke OK"
    else
        echo "FAIL: the repair the message gives does not work" >&2
        status=1
    fi
fi
echo "   ($((SECONDS - t0)) s)"

echo "== wheel-smoke.sh: ${#wheels[@]} wheels, $((SECONDS - start)) s, $([ $status -eq 0 ] && echo OK || echo FAILED)"
exit "$status"
