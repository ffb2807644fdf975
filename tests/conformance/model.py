"""Plain data shared by the parent process and the worker (standard library only)."""

from __future__ import annotations

import dataclasses
from typing import Any

PREFIX = "test.test_asyncio."

# Outcomes of one test id. "xfail" (a stdlib @expectedFailure that failed) counts as a pass.
PASS = "pass"
XFAIL = "xfail"
SKIP = "skip"
FAIL = "fail"
ERROR = "error"
TIMEOUT = "timeout"
CRASH = "crash"

FAILING = frozenset({FAIL, ERROR, TIMEOUT, CRASH})
PASSING = frozenset({PASS, XFAIL})

MODES = ("compat", "loop-under-test")
SIDES = ("ours", "stock")

# Loop factory and class used for the stock-asyncio baseline.
STOCK_LOOP = "asyncio:SelectorEventLoop"
DEFAULT_LOOP = "trio_asyncio._sync:SyncTrioEventLoop"

# Test modules re-targeted in loop-under-test mode (those absent from the interpreter's
# test package are left out silently).
LOOP_UNDER_TEST_MODULES = (
    "test_events",
    "test_sock_lowlevel",
    "test_streams",
    "test_subprocess",
    "test_sslproto",
    "test_ssl",
    "test_server",
    "test_sendfile",
    "test_buffered_proto",
    "test_context",
    "test_runners",
    "test_taskgroups",
    "test_timeouts",
    "test_waitfor",
    "test_futures",
    "test_futures2",
    "test_tasks",
    "test_locks",
    "test_queues",
    "test_pep492",
    "test_asyncio_waitfor",
    "test_threads",
    "test_base_events",
)


def short_id(test_id: str) -> str:
    """``test.test_asyncio.test_x.C.m`` -> ``test_x.C.m`` (the form used in files)."""
    return test_id[len(PREFIX):] if test_id.startswith(PREFIX) else test_id


@dataclasses.dataclass
class Record:
    """The result of one test id on one side."""

    id: str
    outcome: str
    secs: float = 0.0
    created: int = 0  # instances of the loop class under test constructed during the test
    ran: int = 0  # times a loop of that class was run (run_forever/_set_running_loop)
    testloops: int = 0  # test_utils.TestLoop instances (fake-time loop: not re-targetable)
    other_loops: int = 0  # other asyncio.BaseEventLoop instances (stdlib or mock loops)
    detail: str = ""

    @property
    def used_loop(self) -> bool:
        return self.ran > 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
