"""Ctrl-C at every schedule point of loop start-up and shutdown never hangs (issue 14).

Each scenario of ``ki_checkpoints.py`` runs in a child process: for every schedule point of
the scenario's Trio run in turn, SIGINT arrives right before that step, and the run must end
with KeyboardInterrupt (out of ``trio.run``, or out of the sync loop call that was running)
within the child's watchdog; a hang makes the child dump its stacks and exit with status 3.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ki_checkpoints.py")


@pytest.mark.parametrize(
    "scenario", ["open_loop_empty", "open_loop", "sync_first_entry", "sync_close"]
)
def test_issue_14_ctrl_c_at_every_schedule_point(scenario: str) -> None:
    env = dict(os.environ, KI_WATCHDOG="10")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), scenario],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "schedule points interrupted" in proc.stdout
    points = int(proc.stdout.split(":")[1].split()[0])
    assert points >= 5, proc.stdout  # the scenario really was interrupted, many times
    # Each interrupted run returned with its KeyboardInterrupt within a second (the watchdog
    # above only turns a hang into a stack dump; typical runs take a few hundredths).
    slowest = float(proc.stdout.rsplit("slowest run", 1)[1].split()[0])
    assert slowest < 1.0, proc.stdout
