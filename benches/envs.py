"""Create or reuse the benchmark venvs and find each implementation's interpreter.

Layout (git-ignored): ``<repo>/.bench-venvs/``

- ``peers/``            stock asyncio, uvloop, greenlet (fiber reference), matplotlib (plot),
                        py-spy (profile).  Stock asyncio runs here too, so the reference and uvloop
                        share one interpreter build.
- ``trio-asyncio-016/`` ``trio-asyncio==0.16.0`` from PyPI.  It owns the import name
                        ``trio_asyncio`` there, which is why it needs a venv of its own.
- ours                  ``<repo>/.venv/bin/python`` (made by ``bash scripts/setup.sh``), or the
                        interpreter given with ``--ours-python``.

A venv is reused when its marker file records the same requirement list; otherwise it is
(re)built.  Nothing here runs at import time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_ROOT = REPO / ".bench-venvs"

# What each venv needs.  Pinned where the targets were measured with a given version.
REQUIREMENTS: dict[str, list[str]] = {
    "peers": ["uvloop", "greenlet", "matplotlib", "py-spy", "trio"],
    "trio-asyncio-016": ["trio-asyncio==0.16.0"],
}
MARKER = ".bench-reqs.json"


def _base_python() -> str:
    """Return a plain CPython to build venvs from (not a venv's own python)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base


def venv_python(name: str) -> Path:
    return VENV_ROOT / name / "bin" / "python"


def ensure_venv(name: str, *, log=print) -> Path:
    """Create (or reuse) the venv *name* and return its interpreter path."""
    reqs = REQUIREMENTS[name]
    root = VENV_ROOT / name
    py = venv_python(name)
    marker = root / MARKER
    if py.exists() and marker.exists():
        try:
            if json.loads(marker.read_text()) == reqs:
                return py
        except ValueError:
            pass
    log(f"[envs] building venv {root} with {' '.join(reqs)}")
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    if not py.exists():
        subprocess.run([_base_python(), "-m", "venv", str(root)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
        check=True,
    )
    marker.write_text(json.dumps(reqs))
    return py


def ours_python(explicit: str | None) -> Path | None:
    """Return the interpreter that has our package, or None if there is none yet."""
    candidates = [explicit] if explicit else [str(REPO / ".venv" / "bin" / "python")]
    for c in candidates:
        if c and Path(c).exists():
            return Path(c)
    return None


def package_versions(python: Path | str, names: list[str]) -> dict[str, str]:
    """Ask *python* for the installed versions of *names* (missing ones are left out)."""
    code = (
        "import json, sys, importlib.metadata as m\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for n in {names!r}:\n"
        "    try: out[n] = m.version(n)\n"
        "    except Exception: pass\n"
        "print(json.dumps(out))\n"
    )
    try:
        res = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        return json.loads(res.stdout)
    except Exception:  # noqa: BLE001 - best effort, reported as missing
        return {}


if __name__ == "__main__":
    for n in REQUIREMENTS:
        print(n, ensure_venv(n))
    print("ours", ours_python(os.environ.get("OURS_PYTHON")))
