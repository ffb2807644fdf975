"""Keep the benchmark command working: run it at tiny sizes, never time anything.

Runs ``benches/run.py --smoke`` for stock asyncio and our package with this interpreter (no venvs
are made) and checks the JSON it writes.  Our package may not have every feature yet: a cell it
cannot run is reported as unavailable and is fine here; a broken harness is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benches" / "run.py"
sys.path.insert(0, str(ROOT / "benches"))

from workloads import WORKLOADS  # noqa: E402

NO_ASYNCIO_ROW = {"fiber_switch"}  # greenlet vs ours: stock asyncio has no number there


@pytest.mark.timeout(900)
def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--impls", "asyncio,ours", "--python",
         sys.executable, "--out", str(out), "--no-plot", "--no-profile", "--no-readme",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=1200, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().strip()
    assert set(data["workloads"]) == set(WORKLOADS)
    assert data["impls"] == ["asyncio", "ours-sync", "ours-async", "ours-fiber"]

    for wname, w in data["workloads"].items():
        assert w["sizes"], wname
        for label, size in w["sizes"].items():
            cells = size["impls"]
            assert set(cells) == set(data["impls"]), (wname, label)
            ref = cells["asyncio"]
            if wname in NO_ASYNCIO_ROW:
                assert ref["status"] == "skip", (wname, label, ref)
            else:
                assert ref["status"] == "ok", (wname, label, ref)
                assert ref["median"] > 0 and all(x > 0 for x in ref["samples"]), (wname, label)
            for name in ("ours-sync", "ours-async", "ours-fiber"):
                cell = cells[name]
                # Our package may lack a feature (unavailable), fail, or even hang: that is for
                # its own tests to catch.  The harness must still have produced a cell.
                assert cell["status"] in ("ok", "skip", "unavailable", "error", "timeout",
                                          "crash"), (wname, label, name, cell)
                assert cell.get("origin") != "harness", (wname, label, name, cell)
                if cell["status"] == "ok":
                    assert cell["median"] > 0, (wname, label, name)
                    if "ratio" not in cell:
                        assert wname in NO_ASYNCIO_ROW
                elif cell["status"] != "skip":
                    assert cell.get("reason"), (wname, label, name, cell)
    assert "timers" in proc.stdout or "timers" in (out / "results.md").read_text()
    # No machine paths in what a run writes (results are committed).
    for f in ("results.json", "results.md"):
        assert str(ROOT) not in (out / f).read_text(), f


def _cell(median: float, ref: float) -> dict[str, object]:
    return {"status": "ok", "samples": [median], "median": median, "ratio": median / ref,
            "extras": [{}]}


def _fake_run(with_base: bool) -> dict[str, object]:
    """A results dict as run.py writes it: one row, asyncio / rloop / ours (and base)."""
    names = ["asyncio", "rloop", "ours-sync"] + (["base-sync"] if with_base else [])
    cells = {"asyncio": _cell(10e-6, 10e-6), "rloop": _cell(20e-6, 10e-6),
             "ours-sync": _cell(4e-6, 10e-6)}
    if with_base:
        cells["base-sync"] = _cell(6e-6, 10e-6)
    labels = {"asyncio": "asyncio", "rloop": "rloop", "ours-sync": "ours sync",
              "base-sync": "base sync"}
    envs_ = {"asyncio": "peers", "rloop": "peers", "ours-sync": "ours", "base-sync": "base"}
    return {
        "meta": {"date": "d", "machine": {}, "rounds": 1, "target_seconds": 0.1,
                 "command": "python benches/run.py", "max_sample_s": 5,
                 "impls": {n: {"python": ".venv/bin/python", "env": envs_[n], "mode": "ta-sync"
                               if n.endswith("sync") else n, "label": labels[n]} for n in names},
                 "versions": {"peers": {"python": "3.11.7", "rloop": "0.5.0"},
                              "ours": {"trio-asyncio-rs": "0.1.0", "commit": "bbbbbbb"},
                              "base": {"trio-asyncio-rs": "0.1.0", "commit": "aaaaaaa",
                                       "branch": "main"}}},
        "impls": names,
        "workloads": {"tcp_echo_protocol": {
            "title": "TCP echo", "unit": "round trip", "target": "<= 0.45x",
            "target_ratio": 0.45, "headline": "1 conn", "zero_extra": None,
            "sizes": {"1 conn": {"param": 1, "fixed_n": None, "impls": cells}}}},
        "syscalls": {"method": "strace -c -f", "impls": {
            "asyncio": {"status": "ok", "per_round_trip": 6.0, "poll_family": 2.0,
                        "by_call": {"epoll_wait": 2.0, "sendto": 2.0, "recvfrom": 2.0}},
            "rloop": {"status": "error", "reason": "RuntimeError: boom"},
            "ours-sync": {"status": "ok", "per_round_trip": 8.0, "poll_family": 4.0,
                          "by_call": {"epoll_ctl": 2.0, "epoll_wait": 2.0}}}},
    }


def test_report_folds_base_into_before_after_and_judges_ours_only() -> None:
    import report

    md = report.markdown(_fake_run(with_base=True))
    row = next(line for line in md.splitlines() if line.startswith("| TCP echo"))
    header = next(line for line in md.splitlines() if line.startswith("| workload"))
    assert "ours sync (before -> after)" in header and "base sync" not in header
    assert "0.60x -> **0.40x** (4.00 us)" in row  # base's ratio, then ours
    assert "**2.00x** (20.00 us)" in row  # rloop has its own column
    assert "✅ meets" in row  # ours 0.40x <= 0.45x; base's 0.60x does not count
    assert "main @ aaaaaaa" in md and "bbbbbbb" in md and "rloop 0.5.0" in md
    plain = report.markdown(_fake_run(with_base=False))
    assert "before -> after" not in plain and "| rloop | ours sync | our target |" in plain


def test_report_syscalls_table() -> None:
    import report

    md = report.markdown(_fake_run(with_base=False))
    assert "### System calls per TCP echo round trip" in md
    lines = md.splitlines()
    ours = next(line for line in lines if line.startswith("| ours sync | **8.00**"))
    assert "1.33x" in ours and "`epoll_ctl` 2.00" in ours
    assert any(line.startswith("| rloop | n/a (RuntimeError: boom)") for line in lines)
    del_sc = _fake_run(with_base=False)
    del del_sc["syscalls"]
    assert "System calls" not in report.markdown(del_sc)


def test_display_path_never_writes_a_machine_path(tmp_path: Path) -> None:
    import envs

    assert envs.display_path(ROOT / ".venv" / "bin" / "python") == ".venv/bin/python"
    assert envs.display_path(tmp_path / "x" / "venv" / "bin" / "python") == ".../venv/bin/python"
    assert envs.display_path(None) is None
