"""Run every workload of shared/targets.md on every implementation, interleaved, and report.

    python benches/run.py                      # full run, 5 rounds, all implementations
    python benches/run.py --quick              # 3 rounds, shorter samples
    python benches/run.py --smoke --python "$(which python)" --impls asyncio,ours
    python benches/run.py --workloads call_soon,timers --impls asyncio,uvloop --rounds 7

For each workload and size, the implementations run interleaved -- round 1: A B C ..., round 2:
A B C ... -- each cell in a fresh worker process (``workloads.py``) that warms up, calibrates and
takes one timed sample.  The report gives the median cost per operation and the ratio to stock
asyncio's median measured in the same run.  Failures, timeouts and missing features become
"n/a (reason)" cells; they never stop the run.

Outputs (``--out``, default ``benches/results``): ``results.json``, ``results.md``,
``ratios.png`` (with ``--plot``, on by default outside ``--smoke``), and with ``--profile`` a
py-spy profile of the worst row.  A full run (all workloads) also rewrites the results section
of ``benches/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import envs  # noqa: E402
import impls  # noqa: E402
import report  # noqa: E402
from workloads import RESULT_TAG, WORKLOADS  # noqa: E402

MAX_SAMPLE_S = 5.0  # a fixed-size cell estimated above this is skipped (see README)


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Machine and versions
# --------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "cores": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k == "Model name":
                info["cpu_model"] = v
            elif k == "CPU(s)":
                info["cpus"] = v
            elif k == "Core(s) per socket":
                info["cores_per_socket"] = v
            elif k == "CPU max MHz":
                info["max_mhz"] = v
            elif k == "Hypervisor vendor":
                info["hypervisor"] = v
    except Exception:  # noqa: BLE001 - lscpu missing: keep the rest
        pass
    return info


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


def run_worker(python: str, mode: str, workload: str, param: Any, fixed_n: int | None,
               target_s: float, smoke: bool, timeout: float,
               prefix: list[str] | None = None) -> dict[str, Any]:
    # Paths relative to the repository (the worker's cwd), so that a profile's recorded command
    # line holds no machine path.
    cmd = [*(prefix or []), _rel(python), "benches/workloads.py", "--mode", mode,
           "--workload", workload, "--target-seconds", str(target_s)]
    if param is not None:
        cmd += ["--param", json.dumps(param)]
    if fixed_n is not None:
        cmd += ["--n", str(fixed_n)]
    if smoke:
        cmd.append("--smoke")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(HERE.parent))
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "origin": "package",
                "reason": f"timeout after {timeout:.0f} s"}
    except OSError as e:
        return {"status": "error", "origin": "harness", "reason": f"cannot start worker: {e}"}
    wall = time.monotonic() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            try:
                res = json.loads(line[len(RESULT_TAG):])
            except ValueError as e:
                return {"status": "error", "origin": "harness", "reason": f"bad worker JSON: {e}"}
            res["wall_s"] = wall
            return res
    if proc.returncode < 0:
        return {"status": "crash", "origin": "package",
                "reason": f"worker killed by signal {-proc.returncode}",
                "stderr": proc.stderr[-2000:]}
    return {"status": "error", "origin": "harness",
            "reason": f"worker exited {proc.returncode} without a result",
            "stderr": proc.stderr[-2000:]}


def _rel(path: str | Path) -> str:
    """*path* relative to the repository when inside it (workers run there), else absolute; a
    bare command name (looked up on PATH) as given."""
    if os.sep not in str(path):
        return str(path)
    p = Path(os.path.abspath(path))
    return p.relative_to(HERE.parent).as_posix() if p.is_relative_to(HERE.parent) else str(p)


def _scrub(path: Path, pythons: dict[str, str | None]) -> None:
    """Replace machine paths in a written output file (a profile's recorded command line)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return
    new = text
    for py in sorted({p for p in pythons.values() if p}, key=len, reverse=True):
        new = new.replace(os.path.abspath(py), envs.display_path(py) or "python")
    new = new.replace(str(HERE.parent) + "/", "")
    if new != text:
        path.write_text(new)


def _short(reason: str, limit: int = 90) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def run_all(args: argparse.Namespace, pythons: dict[str, str | None],
            missing: dict[str, str]) -> dict[str, Any]:
    """Run every (workload, size) with the implementations interleaved; return the raw table."""
    target_s = args.target_seconds
    timeout = args.timeout
    out: dict[str, Any] = {}
    timeouts: dict[str, int] = {}  # an implementation that hangs twice is not run again
    for wname in args.workloads:
        spec = WORKLOADS[wname]
        wres: dict[str, Any] = {
            "title": spec.title, "unit": spec.unit, "target": spec.target,
            "target_ratio": spec.target_ratio, "headline": spec.headline,
            "reference_note": spec.reference_note, "zero_extra": spec.zero_extra, "sizes": {},
        }
        if args.smoke and spec.smoke_sizes is None:
            wres["headline"] = spec.size_list(True)[0][0]
        out[wname] = wres
        prev_per_op: dict[str, float] = {}
        for label, param, fixed_n in spec.size_list(args.smoke):
            cells: dict[str, dict[str, Any]] = {}
            for name in args.impls:
                imp = impls.IMPLS[name]
                if imp.mode not in spec.modes:
                    cells[name] = {"status": "skip", "reason": spec.skip_reason or "not applicable"}
                elif pythons.get(name) is None:
                    cells[name] = {"status": "unavailable", "origin": "package",
                                   "reason": missing.get(name, "no interpreter")}
                elif (not args.smoke and fixed_n is not None and name in prev_per_op
                      and prev_per_op[name] * fixed_n > MAX_SAMPLE_S):
                    est = prev_per_op[name] * fixed_n
                    cells[name] = {"status": "skip", "reason":
                                   f"too slow at this size (est. {est:.0f} s/sample > "
                                   f"{MAX_SAMPLE_S:.0f} s budget)"}
                else:
                    cells[name] = {"status": "pending", "samples": [], "extras": []}
            for rnd in range(args.rounds):
                for name in args.impls:
                    cell = cells[name]
                    if cell["status"] not in ("pending", "ok"):
                        continue
                    imp = impls.IMPLS[name]
                    if timeouts.get(name, 0) >= 2:
                        res = {"status": "timeout", "origin": "package",
                               "reason": "not run: this implementation timed out twice already"}
                    else:
                        res = run_worker(pythons[name], imp.mode, wname, param, fixed_n,
                                         target_s, args.smoke, timeout)
                        if res.get("status") == "timeout":
                            timeouts[name] = timeouts.get(name, 0) + 1
                    if res.get("status") == "ok":
                        cell["status"] = "ok"
                        cell["samples"].append(res["sec_per_op"])
                        cell["extras"].append(res.get("extra", {}))
                        cell.setdefault("ops", []).append(res.get("ops"))
                        cell["info"] = res.get("info", {})
                        log(f"  {wname:<19} {label:<10} r{rnd + 1} {name:<24} "
                            f"{report.fmt_time(res['sec_per_op'])}")
                    else:
                        # Deterministic failures are not retried in later rounds.
                        keep = {k: res.get(k) for k in ("status", "origin", "reason")}
                        if res.get("traceback"):
                            keep["traceback"] = res["traceback"]
                        if res.get("stderr"):
                            keep["stderr"] = res["stderr"]
                        if cell["samples"]:
                            keep["samples"] = cell["samples"]
                            keep["note"] = f"failed in round {rnd + 1}"
                        cells[name] = keep
                        log(f"  {wname:<19} {label:<10} r{rnd + 1} {name:<24} "
                            f"{res.get('status')}: {_short(str(res.get('reason')))}")
            for name, cell in cells.items():
                if cell["status"] == "ok":
                    cell["median"] = statistics.median(cell["samples"])
                    prev_per_op[name] = cell["median"]
                elif cell["status"] == "pending":
                    cell["status"] = "error"
                    cell["reason"] = "no sample"
            ref = cells.get(impls.REFERENCE, {})
            ref_med = ref.get("median") if ref.get("status") == "ok" else None
            for cell in cells.values():
                if cell.get("status") == "ok" and ref_med:
                    cell["ratio"] = cell["median"] / ref_med
            wres["sizes"][label] = {"param": param, "fixed_n": fixed_n, "impls": cells}
    return out


# --------------------------------------------------------------------------------------------
# Profile of the worst row
# --------------------------------------------------------------------------------------------


def worst_row(data: dict[str, Any]) -> tuple[str, str, str] | None:
    """(workload, size, impl) of the worst measured row.

    Ours when it runs: the row furthest from its target (ratio / target ratio).  Until then the
    peer that needs the most explaining: trio-asyncio 0.16's largest ratio to stock asyncio.
    """
    for family, by_target in (("ours-", True), ("trio-asyncio-0.16-", False)):
        best: tuple[float, str, str, str] | None = None
        for wname, w in data["workloads"].items():
            label = w["headline"]
            size = w["sizes"].get(label)
            if not size:
                continue
            for name, cell in size["impls"].items():
                if not name.startswith(family) or "ratio" not in cell:
                    continue
                score = cell["ratio"] / ((w.get("target_ratio") or 1.0) if by_target else 1.0)
                if best is None or score > best[0]:
                    best = (score, wname, label, name)
        if best:
            return best[1], best[2], best[3]
    return None


def profile(data: dict[str, Any], args: argparse.Namespace, pythons: dict[str, str | None],
            outdir: Path) -> dict[str, Any] | None:
    row = worst_row(data)
    if row is None:
        log("[profile] no row to profile")
        return None
    wname, label, name = row
    if not pythons.get(name):
        log(f"[profile] no interpreter for {name}")
        return None
    pyspy = envs.VENV_ROOT / "peers" / "bin" / "py-spy"
    if not pyspy.exists():
        log("[profile] py-spy not installed (peers venv missing)")
        return None
    spec = WORKLOADS[wname]
    param, fixed_n = next((p, n) for lab, p, n in spec.size_list(False) if lab == label)
    stem = f"profile-{name}-{wname}"
    raw = outdir / f"{stem}.txt"
    svg = outdir / f"{stem}.svg"
    result: dict[str, Any] = {"workload": wname, "size": label, "impl": name}
    for fmt, path in (("raw", raw), ("flamegraph", svg)):
        prefix = [_rel(pyspy), "record", "--rate", "500", "--format", fmt, "-o", _rel(path),
                  "--nonblocking"]
        # (no --native: py-spy's native unwinding fails on our fibers' stacks)
        prefix.append("--")
        log(f"[profile] {name} {wname} {label} -> {path.name}")
        res = run_worker(pythons[name], impls.IMPLS[name].mode, wname, param, fixed_n, 3.0,
                         False, args.timeout * 2, prefix=prefix)
        result[f"{fmt}_status"] = res.get("status")
        if path.exists():
            _scrub(path, pythons)
    if raw.exists():
        result["summary"] = report.summarize_collapsed(raw.read_text())
        result["raw"] = raw.name
        result["svg"] = svg.name if svg.exists() else None
    return result


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="samples per cell (default 5)")
    p.add_argument("--quick", action="store_true", help="3 rounds, 0.15 s samples")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round (CI)")
    p.add_argument("--impls", action="append", default=None,
                   help=f"comma list; names {list(impls.IMPLS)} or aliases {list(impls.ALIASES)}")
    p.add_argument("--workloads", action="append", default=None,
                   help=f"comma list of {list(WORKLOADS)}")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--python", default=None,
                   help="run every implementation with this interpreter (no venvs are made)")
    p.add_argument("--ours-python", default=None,
                   help="interpreter with our package (default <repo>/.venv/bin/python)")
    p.add_argument("--base-python", default=None,
                   help="interpreter with another build of our package, run as base-sync/base-async")
    p.add_argument("--target-seconds", type=float, default=None, help="length of one sample")
    p.add_argument("--timeout", type=float, default=None, help="per-cell timeout, seconds")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                   help="py-spy profile of the worst row (default on in a full run)")
    p.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                   help="rewrite the results section of benches/README.md")
    p.add_argument("--syscalls", action=argparse.BooleanOptionalAction, default=None,
                   help="count system calls per TCP echo round trip under strace "
                        "(benches/syscalls.py; default on in a full run)")
    p.add_argument("--rerender", action="store_true",
                   help="measure nothing: re-render the outputs from <out>/results.json "
                        "(with --profile, profile its worst row again)")
    a = p.parse_args(argv)
    a.impls = impls.expand(a.impls or ["all"])
    names = [x.strip() for w in (a.workloads or [",".join(WORKLOADS)]) for x in w.split(",")]
    unknown = [n for n in names if n and n not in WORKLOADS]
    if unknown:
        p.error(f"unknown workloads {unknown}; known: {list(WORKLOADS)}")
    a.full_set = set(n for n in names if n) == set(WORKLOADS)
    a.workloads = [n for n in WORKLOADS if n in names]
    if a.rounds is None:
        a.rounds = 1 if a.smoke else (3 if a.quick else 5)
    if a.target_seconds is None:
        a.target_seconds = 0.01 if a.smoke else (0.15 if a.quick else 0.3)
    if a.timeout is None:
        a.timeout = 60.0 if a.smoke else 120.0
    full = not a.smoke and a.full_set
    if a.plot is None:
        a.plot = not a.smoke
    if a.profile is None:
        a.profile = full and not a.quick
    if a.syscalls is None:
        a.syscalls = full and not a.quick and not a.rerender
    if a.rerender:
        a.profile = bool(a.profile)
        if a.readme is None:
            a.readme = Path(a.out).resolve() == (HERE / "results").resolve()
    if a.readme is None:
        a.readme = full and not a.quick and Path(a.out).resolve() == (HERE / "results").resolve()
    return a


def resolve_pythons(a: argparse.Namespace) -> tuple[dict[str, str | None], dict[str, str]]:
    pythons: dict[str, str | None] = {}
    missing: dict[str, str] = {}
    env_py: dict[str, str | None] = {}
    for name in a.impls:
        env = impls.IMPLS[name].env
        if a.python and env != "base":
            pythons[name] = a.python
            continue
        if env not in env_py:
            if env == "base":
                env_py[env] = a.base_python
                if a.base_python is None:
                    for n in impls.IMPLS:
                        if impls.IMPLS[n].env == "base":
                            missing[n] = "no --base-python"
            elif env == "ours":
                ours = envs.ours_python(a.ours_python)
                env_py[env] = str(ours) if ours else None
                if ours is None:
                    missing_reason = "no <repo>/.venv (run `bash scripts/setup.sh`) and no --ours-python"
                    for n in impls.IMPLS:
                        if impls.IMPLS[n].env == "ours":
                            missing[n] = missing_reason
            else:
                try:
                    env_py[env] = str(envs.ensure_venv(env, log=log))
                except Exception as e:  # noqa: BLE001 - the venv cannot be built: report it
                    env_py[env] = None
                    for n in impls.IMPLS:
                        if impls.IMPLS[n].env == env:
                            missing[n] = f"venv {env} could not be built: {e}"
        pythons[name] = env_py[env]
    return pythons, missing


def _command_arg(arg: str) -> str:
    """An argument of the command line as recorded: an absolute path shortened."""
    opt, eq, val = arg.partition("=")
    if eq and val.startswith("/"):
        return f"{opt}={envs.display_path(val)}"
    return envs.display_path(arg) or arg if arg.startswith("/") else arg


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    started = time.monotonic()
    outdir = Path(a.out)
    outdir.mkdir(parents=True, exist_ok=True)
    pythons, missing = resolve_pythons(a)
    # Keyed by environment, never by interpreter path: results hold no machine paths.
    versions: dict[str, Any] = {}
    for name in a.impls:
        env = "python" if a.python and impls.IMPLS[name].env != "base" else impls.IMPLS[name].env
        py = pythons.get(name)
        if py and env not in versions:
            versions[env] = envs.package_versions(
                py, ["trio", "trio-asyncio", "trio-asyncio-rs", "uvloop", "rloop", "greenlet",
                     "outcome"])
            if env in ("ours", "base", "python"):
                versions[env].update(envs.package_source(py))
    log(f"[run] impls: {', '.join(a.impls)}")
    log(f"[run] workloads: {', '.join(a.workloads)}; rounds {a.rounds}; "
        f"sample {a.target_seconds} s{'; smoke' if a.smoke else ''}")
    data: dict[str, Any] = {
        "meta": {
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_info(),
            "rounds": a.rounds,
            "target_seconds": a.target_seconds,
            "smoke": a.smoke,
            "quick": a.quick,
            "command": "python benches/run.py " + " ".join(
                _command_arg(x) for x in (sys.argv[1:] if argv is None else argv)),
            "impls": {n: {"python": envs.display_path(pythons.get(n)),
                          "env": ("python" if a.python and impls.IMPLS[n].env != "base"
                                  else impls.IMPLS[n].env),
                          "mode": impls.IMPLS[n].mode,
                          "label": impls.IMPLS[n].label} for n in a.impls},
            "versions": versions,
            "max_sample_s": MAX_SAMPLE_S,
        },
        "impls": a.impls,
        "workloads": {},
    }
    if a.rerender:
        old = json.loads((outdir / "results.json").read_text())
        if not a.profile:
            data["profile"] = old.get("profile")
        old_runtime = old["meta"].get("runtime_s")
        data = {**old, "profile": data.get("profile")}
        # Recorded relative to the repository (older results: absolute).
        pythons = {n: (str(HERE.parent / c["python"]) if c.get("python")
                       and not c["python"].startswith("...") else None)
                   for n, c in data["meta"]["impls"].items()}
    else:
        old_runtime = None
        data["workloads"] = run_all(a, pythons, missing)
    if a.syscalls:
        import syscalls

        loops = {n: pythons.get(n) for n in a.impls
                 if impls.IMPLS[n].mode not in ("greenlet", "fiber")}
        log(f"[syscalls] strace -c -f, TCP echo, {syscalls.ECHO_N} round trips per count")
        try:
            data["syscalls"] = syscalls.echo_table(loops, log=log)
        except Exception as e:  # noqa: BLE001 - a failed count must not lose the results
            log(f"[syscalls] failed: {e!r}")
    if a.profile:
        try:
            data["profile"] = profile(data, a, pythons, outdir)
        except Exception as e:  # noqa: BLE001 - a failed profile must not lose the results
            log(f"[profile] failed: {e!r}")
    data["meta"]["runtime_s"] = old_runtime or round(time.monotonic() - started, 1)
    (outdir / "results.json").write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    md = report.markdown(data)
    (outdir / "results.md").write_text(md)
    print(report.terminal(data))
    if a.plot:
        peers = envs.VENV_ROOT / "peers" / "bin" / "python"
        plot_py = a.python or (str(peers) if peers.exists() else None)
        if plot_py:
            r = subprocess.run([plot_py, str(HERE / "plot.py"), str(outdir / "results.json"),
                                str(outdir)], capture_output=True, text=True)
            log(f"[plot] {r.stdout.strip() or r.stderr.strip()[-500:]}")
    if a.readme:
        report.update_readme(HERE / "README.md", data)
        log("[readme] benches/README.md results section rewritten")
    log(f"[run] done in {data['meta']['runtime_s']} s -> {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
