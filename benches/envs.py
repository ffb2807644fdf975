"""Create or reuse the benchmark venvs and find each implementation's interpreter.

Layout (git-ignored): ``<repo>/.bench-venvs/``

- ``peers/``            stock asyncio, uvloop, rloop (an asyncio loop in Rust on pyo3 and mio),
                        greenlet (fiber reference), matplotlib (plot), py-spy (profile).  Stock asyncio runs here too, so the reference and uvloop
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
    # rloop: the 0.5 series (the release the issue-13 goals were set against).
    "peers": ["uvloop", "rloop==0.5.*", "greenlet", "matplotlib", "py-spy", "trio"],
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


def display_path(path: str | os.PathLike[str] | None) -> str | None:
    """*path* as it may be written into results: relative to the repository when inside it,
    otherwise only its last three parts (``.../.venv/bin/python``), never a machine path."""
    if path is None:
        return None
    if os.sep not in str(path):
        return str(path)  # a command name looked up on PATH
    p = Path(os.path.abspath(path))
    if p.is_relative_to(REPO):
        return p.relative_to(REPO).as_posix()
    parts = p.parts[1:]
    return "/".join(("...", *parts[-3:])) if len(parts) > 3 else p.as_posix()


def package_source(python: Path | str) -> dict[str, str]:
    """Where *python* imports ``trio_asyncio`` from: the checkout's commit when it is a git
    work tree (``{"commit": "abc1234", "branch": "main"}``), else nothing."""
    code = "import importlib.util as u; s = u.find_spec('trio_asyncio'); print(s.origin if s else '')"
    try:
        origin = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                timeout=60, check=True).stdout.strip()
        if not origin:
            return {}
        where = str(Path(origin).parent)
        git = ["git", "-C", where]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        branch = subprocess.run([*git, "rev-parse", "--abbrev-ref", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        out = {"commit": commit + ("+dirty" if dirty else "")}
        if branch and branch != "HEAD":
            out["branch"] = branch
        return out
    except Exception:  # noqa: BLE001 - not a checkout (a wheel install): nothing to say
        return {}


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
