"""Command line: run one mode on our package and on stock asyncio, compare, summarise.

    python -m conformance compat|loop-under-test [--python PATH] [options]

(``scripts/conformance.sh`` sets ``PYTHONPATH`` to ``tests/`` and calls this.)
Exit status: 0 when every result matches the expectations files, 1 on any unexpected
failure, unexpected pass or stale entry, 2 when the run could not start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conformance import expectations, model, report, scheduler

REPO = Path(__file__).resolve().parents[2]
EXPECTATIONS = Path(__file__).resolve().parent / "expectations"


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=model.MODES)
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"),
                   help="interpreter that has the package under test (default: .venv)")
    p.add_argument("--stock-python", default="",
                   help="interpreter for the stock-asyncio baseline (default: --python)")
    p.add_argument("--loop-factory", default=model.DEFAULT_LOOP,
                   help="module:callable building the loop under test (loop-under-test mode)")
    p.add_argument("--loop-class", default="",
                   help="module:Class counted as our loop (default: --loop-factory)")
    p.add_argument("--import", dest="imports", action="append", default=None,
                   help="module imported first on our side (default: trio_asyncio)")
    p.add_argument("--sides", default="ours,stock", help="comma list of: ours, stock")
    p.add_argument("--only", default="", help="comma list of test modules to run")
    p.add_argument("--jobs", type=int, default=2, help="parallel worker processes")
    p.add_argument("--timeout", type=float, default=60.0, help="per-test timeout, seconds")
    p.add_argument("--max-timeouts", type=int, default=3,
                   help="per module and side: after this many timeouts in a row (or 4x as many "
                        "in all) the rest is recorded as timeout without running")
    p.add_argument("--update", action="store_true", help="rewrite the expectations files")
    p.add_argument("--expectations-dir", type=Path, default=None,
                   help="default: expectations/py<X.Y> of the interpreter under test")
    p.add_argument("--out", type=Path, default=None,
                   help="results and logs (default: .conf-results/<mode>)")
    return p.parse_args(argv)


def _interpreter(path: str) -> str:
    """Absolute path (workers run in another directory); symlinks kept, as venvs need."""
    return os.path.abspath(path) if os.sep in path else path


def _sides(args: argparse.Namespace) -> list[scheduler.Side]:
    wanted = [s.strip() for s in args.sides.split(",") if s.strip()]
    for name in wanted:
        if name not in model.SIDES:
            raise SystemExit(f"conformance: unknown side {name!r}")
    lut = args.mode == "loop-under-test"
    sides = []
    if "ours" in wanted:
        imports = tuple(args.imports if args.imports is not None else ["trio_asyncio"])
        sides.append(scheduler.Side("ours", _interpreter(args.python), imports,
                                    args.loop_class or args.loop_factory,
                                    args.loop_factory if lut else ""))
    if "stock" in wanted:
        sides.append(scheduler.Side("stock", _interpreter(args.stock_python or args.python), (),
                                    model.STOCK_LOOP, model.STOCK_LOOP if lut else ""))
    return sides


def _preflight(side: scheduler.Side) -> str | None:
    """Check that the side's interpreter can import what it needs; error text or None."""
    specs = [side.loop_class] + ([side.loop_factory] if side.loop_factory else [])
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in side.imports)
    code += "for spec in sys.argv[1:]:\n    mod, _, attr = spec.partition(':')\n"
    code += "    obj = importlib.import_module(mod)\n"
    code += "    for part in filter(None, attr.split('.')): obj = getattr(obj, part)\n"
    code += "import test.test_asyncio\n"
    try:
        proc = subprocess.run([side.python, "-c", code, *specs], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
    return None


def _python_version(python: str) -> str:
    """``X.Y`` of an interpreter (each CPython's own suite has its own expectations)."""
    out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def _files(args: argparse.Namespace) -> dict[str, Path]:
    d = args.expectations_dir
    if d is None:
        d = EXPECTATIONS / f"py{_python_version(_interpreter(args.python))}"
    return {"ours": d / f"{args.mode}.txt", "stock": d / f"{args.mode}-stock.txt"}


def _header(args: argparse.Namespace, side: scheduler.Side) -> list[str]:
    what = ("stock asyncio (no trio_asyncio import; loop class asyncio.SelectorEventLoop)"
            if side.name == "stock" else
            f"the package under test (imports first: {', '.join(side.imports) or '-'}; loop class {side.loop_class}"
            + (f"; loop factory {side.loop_factory})" if side.loop_factory else ")"))
    lines = [
        f"Conformance expectations, mode {args.mode}, side {side.name}: {what}.",
        "Tests that are expected NOT to pass: '<test id> <fail|error|timeout|crash|flaky> <reason tag>'.",
        "Every entry is explained in design/conformance.md. Regenerate with --update.",
    ]
    if side.name == "ours":
        lines.append("Failures that stock asyncio has too (see the -stock file) are not listed here.")
    return lines


def main(argv: list[str]) -> int:
    args = _parse(argv)
    sides = _sides(args)
    if not sides:
        print("conformance: no side to run", file=sys.stderr)
        return 2
    for side in sides:
        error = _preflight(side)
        if error is not None:
            print(f"conformance: {side.name} side cannot start with {side.python}: {error}", file=sys.stderr)
            return 2

    available = scheduler.list_modules(sides[0].python)
    wanted = list(available)
    if args.mode == "loop-under-test":
        wanted = [m for m in model.LOOP_UNDER_TEST_MODULES if m in available]
    if args.only:
        only = {m.strip() for m in args.only.split(",") if m.strip()}
        wanted = [m for m in wanted if m in only]
    out = (args.out or REPO / ".conf-results" / args.mode).resolve()
    out.mkdir(parents=True, exist_ok=True)

    jobs = [scheduler.Job(side, m, args.mode, out, args.timeout, weight=available[m],
                          max_timeouts=args.max_timeouts)
            for side in sides for m in wanted]
    t0 = time.monotonic()
    print(f"conformance {args.mode}: {len(wanted)} modules x {len(sides)} sides, "
          f"{args.jobs} workers, per-test timeout {args.timeout:.0f}s; logs in {out}", file=sys.stderr)
    scheduler.run_jobs(jobs, args.jobs, scheduler.emit_progress)
    wall = time.monotonic() - t0

    records = {s.name: {} for s in sides}  # type: dict[str, dict[str, model.Record]]
    notes: list[str] = []
    for job in jobs:
        records[job.side.name].update(job.results)
        if job.side.name == sides[0].name:
            notes += [f"{job.module}: {n}" for n in job.notes]
    return _finish(args, sides, jobs, records, notes, set(wanted), out, wall)


def _finish(
    args: argparse.Namespace,
    sides: list[scheduler.Side],
    jobs: list[scheduler.Job],
    records: dict[str, dict[str, model.Record]],
    notes: list[str],
    modules_run: set[str],
    out: Path,
    wall: float,
) -> int:
    by_side = {name: report.count(recs.values()) for name, recs in records.items()}
    per_module: dict[str, dict[str, report.Counts]] = {}
    for job in jobs:
        per_module.setdefault(job.module, {})[job.side.name] = report.count(job.results.values())
    side_secs = {s.name: sum(j.secs for j in jobs if j.side is s) for s in sides}

    (out / "results.json").write_text(json.dumps({
        "mode": args.mode,
        "wall_secs": round(wall, 1),
        "sides": {s.name: {"python": s.python, "imports": s.imports, "loop_class": s.loop_class,
                           "loop_factory": s.loop_factory, "worker_secs": round(side_secs[s.name], 1),
                           "records": [r.to_json() for r in sorted(records[s.name].values(), key=lambda r: r.id)]}
                  for s in sides},
        "retargeted": notes,
    }, indent=1))
    (out / "summary.md").write_text(report.markdown(by_side, per_module))

    if notes:
        print("\nre-targeted classes:\n  " + "\n  ".join(notes))
    print(f"\n== conformance {args.mode} (wall {wall:.0f}s; worker time "
          + ", ".join(f"{k} {v:.0f}s" for k, v in side_secs.items()) + ")")
    print(report.table(by_side))

    files = _files(args)
    stock_entries = expectations.load(files["stock"])
    stock_failing = {r.id for r in records.get("stock", {}).values() if r.outcome in model.FAILING}
    excused_for_ours = stock_failing | set(stock_entries)
    problems = matched = skipped = 0
    for side in sides:
        recs = records[side.name]
        path = files[side.name]
        old = expectations.load(path)
        excused = excused_for_ours if side.name == "ours" else set()
        if args.update:
            default = "untriaged" if side.name == "ours" else "stock-fails"
            new = expectations.updated(recs, old, modules_run, excused, default)
            expectations.save(path, new, _header(args, side))
            print(f"\n{side.name}: wrote {len(new)} entries to {_rel(path)}")
            old = new
        cmp = expectations.compare(recs, old, modules_run, excused)
        _print_comparison(side.name, path, cmp)
        problems += cmp.problems
        skipped += by_side[side.name].skipped
        matched += by_side[side.name].ran - len(cmp.unexpected_failures) - len(cmp.unexpected_passes)
    print(f"\nresults: {_rel(out / 'results.json')}, per-module table: {_rel(out / 'summary.md')}")
    print(f"conformance: {matched} passed, {problems} failed, {skipped} skipped")
    return 1 if problems else 0


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _print_comparison(side: str, path: Path, cmp: expectations.Comparison) -> None:
    print(f"\n{side} vs {_rel(path)}: {cmp.expected} expected failures"
          + (f" ({cmp.excused} also fail on stock asyncio)" if cmp.excused else "")
          + f", {len(cmp.unexpected_failures)} unexpected failures,"
          f" {len(cmp.unexpected_passes)} unexpected passes, {len(cmp.stale)} stale entries")
    for r in sorted(cmp.unexpected_failures, key=lambda r: r.id):
        print(f"  UNEXPECTED {r.outcome.upper():<7} {r.id}  {r.detail[:160]}")
    for entry, r in sorted(cmp.unexpected_passes, key=lambda p: p[0].id):
        print(f"  UNEXPECTED PASS    {entry.id}  (listed: {entry.outcome} {entry.tag})")
    for entry in sorted(cmp.stale, key=lambda e: e.id):
        print(f"  STALE              {entry.id}  (listed: {entry.outcome} {entry.tag}; did not run or skipped)")
    for entry, r in sorted(cmp.changed, key=lambda p: p[0].id):
        print(f"  note: {entry.id} listed as {entry.outcome}, now {r.outcome}")
