"""fork() with the sync loop's Trio run started never affects the parent (issue 14).

Each case of ``fork_cases.py`` runs in its own process, which calls ``os.fork()``: the child
works with the loop it inherited (closes it, runs it, drops it, or was forked from inside
its run) and leaves with ``os._exit``; the parent checks the child's status and then that
its own loop still runs Trio code, timers and fd callbacks and closes (the child closing
its copy used to make the parent's ``close()`` hang in Trio's epoll wait).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("fork_cases.py")

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")


@pytest.mark.parametrize(
    "case",
    [
        "child_closes_inherited_loop",
        "child_runs_inherited_and_new_loops",
        "child_drops_inherited_loop",
        "fork_inside_running_coroutine",
        "fork_inside_then_child_finishes_the_run",
    ],
)
def test_issue_14_fork(case: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), case], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("ok")
