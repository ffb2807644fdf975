"""pytest plugin for ``peer_suite``: check what is under test, record each test's outcome.

Loaded with ``-p conformance.peer_suite_plugin`` inside the unpacked peer suite. It refuses
to run (exit before collection) unless ``trio_asyncio`` resolves to our package, not to
anything inside the unpacked folder, and writes JSON lines to ``$CONF_PEER_RESULTS``:
``collected`` (the test ids), then one ``result`` per test. Ids are pytest node ids
relative to the suite's ``tests/`` folder (``test_misc.py::test_cancel_loop[True]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conformance import model

_results: dict[str, dict[str, Any]] = {}


def _emit(event: dict[str, Any]) -> None:
    with open(os.environ["CONF_PEER_RESULTS"], "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


def _short(nodeid: str) -> str:
    return nodeid[len("tests/"):] if nodeid.startswith("tests/") else nodeid


def pytest_configure(config: pytest.Config) -> None:
    import trio_asyncio

    suite = Path(os.environ["CONF_PEER_SUITE"]).resolve()
    where = Path(trio_asyncio.__file__).resolve()
    reason = None
    if where.is_relative_to(suite):
        reason = f"trio_asyncio was imported from the peer's files: {where}"
    elif not hasattr(trio_asyncio, "_engine"):
        reason = f"trio_asyncio at {where} is not this package (no _engine)"
    if reason is not None:
        _emit({"event": "refused", "reason": reason})
        raise pytest.UsageError(reason)


def pytest_collection_finish(session: pytest.Session) -> None:
    _emit({"event": "collected", "ids": [_short(item.nodeid) for item in session.items]})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    test_id = _short(report.nodeid)
    entry = _results.setdefault(test_id, {"outcome": model.PASS, "secs": 0.0, "detail": ""})
    entry["secs"] += report.duration
    if report.skipped:
        if hasattr(report, "wasxfail"):
            entry["outcome"] = model.XFAIL
        elif report.when in ("setup", "call"):
            entry["outcome"] = model.SKIP
    elif report.failed:
        if entry["outcome"] not in model.FAILING:
            entry["outcome"] = model.FAIL if report.when == "call" else model.ERROR
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else report.longreprtext
            entry["detail"] = f"{report.when}: {' '.join(message.split())[:300]}"
    if report.when == "teardown":
        _emit({"event": "result", "id": test_id, **_results.pop(test_id)})

