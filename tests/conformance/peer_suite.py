"""trio-asyncio 0.16.0's own test suite as a referee for our package.

    python -m conformance.peer_suite [--python PATH] [--update] [--timeout SECS] [--out DIR]

(``scripts/conformance-016.sh`` sets ``PYTHONPATH`` to ``tests/`` and calls this.)

The sdist is fetched with pip at run time into ``.conf-cache/`` (git-ignored) and only its
``tests/`` folder and its pytest configuration (``pyproject.toml``) are unpacked, into
``<out>/suite/``: its ``trio_asyncio/`` sources never are, so the ``trio_asyncio`` the
tests import is the one installed in ``--python``. pytest runs there once, with the plugin
``conformance.peer_suite_plugin``, which refuses to start unless that import is ours and
writes one JSON line per test. Results are compared with the expectations file exactly as
the stdlib runner does (``expectations.compare``). Files left out, with the reasons, are
``LEFT_OUT`` below (also in design/conformance.md).

Exit status: 0 when every result matches the expectations, 1 on any unexpected failure,
unexpected pass or stale entry, 2 when the run could not start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from conformance import expectations, model, report
from conformance.cli import EXPECTATIONS, REPO, _print_comparison, _rel

PEER = "trio-asyncio"
VERSION = "0.16.0"
SDIST = f"trio_asyncio-{VERSION}.tar.gz"
TOP = f"trio_asyncio-{VERSION}/"

#: Parts of the sdist's tests/ folder that are not run, and why.
LEFT_OUT = {
    "test_deprecate.py": "tests 0.16's private deprecation helpers (trio_asyncio._deprecate "
                         "internals: deprecated(), deprecated_alias(), their docstring edits)",
    "module_with_deprecations.py": "support module of test_deprecate.py",
    "python": "collector that runs CPython's test.test_asyncio through pytest; our "
              "stdlib runner (scripts/conformance.sh) does that job in both modes",
}


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="conformance.peer_suite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"),
                   help="interpreter that has the package under test (default: .venv)")
    p.add_argument("--timeout", type=float, default=60.0, help="per-test timeout, seconds")
    p.add_argument("--update", action="store_true", help="rewrite the expectations file")
    p.add_argument("--expectations", type=Path, default=None,
                   help="expectations file (default: the interpreter's, see expectations_file)")
    p.add_argument("--cache", type=Path, default=REPO / ".conf-cache",
                   help="where the sdist is downloaded to (default: .conf-cache)")
    p.add_argument("--out", type=Path, default=REPO / ".conf-results" / "peer-suite-0.16",
                   help="unpacked tests, results and log")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p.parse_args(argv)


def expectations_file(python_version: str) -> Path:
    """The expectations of one interpreter version (as the stdlib runner keeps them)."""
    return EXPECTATIONS / f"py{python_version}" / "trio-asyncio-0.16-suite.txt"


def fetch_sdist(python: str, cache: Path) -> Path:
    """The sdist, downloaded with pip into *cache* unless it is there already."""
    path = cache / SDIST
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                    "--no-deps", f"{PEER}=={VERSION}", "-d", str(cache)], check=True)
    if not path.exists():
        raise FileNotFoundError(f"pip download did not produce {path}")
    return path


def unpack_tests(sdist: Path, dest: Path) -> Path:
    """Unpack the sdist's tests/ and pyproject.toml (only) into *dest*; return it."""
    if dest.exists():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            name = member.name[len(TOP):] if member.name.startswith(TOP) else ""
            if not (name == "pyproject.toml" or name.startswith("tests/")):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            member.name = name
            members.append(member)
        tar.extractall(dest, members=members, filter="data")
    if (dest / "trio_asyncio").exists():  # pragma: no cover
        raise RuntimeError("the peer's own package was unpacked")
    return dest


def run_pytest(python: str, suite: Path, out: Path, timeout: float,
               extra: list[str]) -> tuple[int, Path, Path]:
    results = out / "results.jsonl"
    log = out / "pytest.log"
    results.unlink(missing_ok=True)
    ignores = [f"--ignore=tests/{name}" for name in LEFT_OUT]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "tests")  # for the plugin only (conformance package)
    env["CONF_PEER_RESULTS"] = str(results)
    env["CONF_PEER_SUITE"] = str(suite)
    env.pop("PYTHONASYNCIODEBUG", None)
    cmd = [python, "-m", "pytest", "-c", str(suite / "pyproject.toml"), "--rootdir", str(suite),
           "-p", "conformance.peer_suite_plugin", "-p", "no:cacheprovider",
           "-o", f"timeout={timeout:g}", "-q", "-rfE", *ignores, *extra, "tests"]
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=suite, env=env, stdout=f, stderr=subprocess.STDOUT)
    return proc.returncode, results, log


def read_results(path: Path) -> tuple[dict[str, model.Record], str | None]:
    """Records per test id, and the plugin's refusal if it refused to run."""
    records: dict[str, model.Record] = {}
    collected: list[str] = []
    refusal = None
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            if event["event"] == "refused":
                refusal = event["reason"]
            elif event["event"] == "collected":
                collected = event["ids"]
            elif event["event"] == "result":
                records[event["id"]] = model.Record(event["id"], event["outcome"],
                                                    secs=event["secs"], detail=event["detail"])
    for test_id in collected:
        # collected but never reported: pytest died during it (or before it)
        records.setdefault(test_id, model.Record(test_id, model.CRASH, detail="no result"))
    return records, refusal


def _header() -> list[str]:
    return [
        f"trio-asyncio {VERSION}'s own test suite (sdist tests/, {', '.join(LEFT_OUT)} left out) "
        "run against our package.",
        "Tests that are expected NOT to pass: '<test id> <fail|error|timeout|crash|flaky> <reason tag>'.",
        "Every entry is explained in design/conformance.md. Regenerate with --update.",
    ]


def main(argv: list[str]) -> int:
    args = _parse(argv)
    python = os.path.abspath(args.python) if os.sep in args.python else args.python
    try:
        version = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"peer-suite: cannot run {python}: {exc}", file=sys.stderr)
        return 2
    path = args.expectations or expectations_file(version)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        sdist = fetch_sdist(python, args.cache.resolve())
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"peer-suite: cannot download {PEER}=={VERSION}: {exc}", file=sys.stderr)
        return 2
    suite = unpack_tests(sdist, out / "suite")
    print(f"peer-suite: {PEER} {VERSION} tests/ against {python} (Python {version}); "
          f"log in {_rel(out / 'pytest.log')}", file=sys.stderr)
    status, results, log = run_pytest(python, suite, out, args.timeout, args.pytest_args)
    wall = time.monotonic() - t0
    records, refusal = read_results(results)
    if refusal is not None or not records:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        print(f"peer-suite: pytest did not run the suite (exit {status}): "
              f"{refusal or 'no results'}\n  " + "\n  ".join(tail), file=sys.stderr)
        return 2

    modules_run = {expectations.module_of(r) for r in records}
    old = expectations.load(path)
    if args.update:
        new = expectations.updated(records, old, modules_run, set(), "untriaged")
        expectations.save(path, new, _header())
        print(f"wrote {len(new)} entries to {_rel(path)}")
        old = new
    cmp = expectations.compare(records, old, modules_run)
    counts = report.count(records.values())
    print(f"\n== {PEER} {VERSION} suite on Python {version} (wall {wall:.0f}s): "
          f"{counts.tests} tests, {counts.passed} passed, {counts.failed} failed "
          f"({counts.timeouts} timeout, {counts.crashes} crash), {counts.skipped} skipped")
    _print_comparison("ours", path, cmp)
    (out / "results.json").write_text(json.dumps({
        "python": python, "version": version, "wall_secs": round(wall, 1),
        "records": [r.to_json() for r in sorted(records.values(), key=lambda r: r.id)],
    }, indent=1))
    passed = counts.ran - len(cmp.unexpected_failures) - len(cmp.unexpected_passes)
    print(f"{passed} passed, {cmp.problems} failed")
    return 1 if cmp.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
