"""fork() with a sync loop whose Trio run started (issue 14): run by ``tests/test_fork.py``.

``python tests/fork_cases.py CASE`` forks with ``os.fork()``; the child does the case's
work and leaves with ``os._exit`` (status 0 when all its checks held); the parent checks the
child's status and then that its own loop is unaffected: a run that needs Trio, timers and
an fd registration, then ``close()``. Prints ``ok`` on success. Every wait is bounded: a
hang kills the child, dumps the stacks and exits with status 3.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

import trio

import trio_asyncio
from trio_asyncio._sync import SyncTrioEventLoop

TIMEOUT = 20.0


def watchdog(what: str) -> threading.Timer:
    def fire() -> None:
        sys.stderr.write(f"HANG: {what}\n")
        faulthandler.dump_traceback(all_threads=True)
        os._exit(3)

    timer = threading.Timer(TIMEOUT, fire)
    timer.daemon = True
    timer.start()
    return timer


async def uses_trio_timers_and_fds() -> str:
    """Everything a loop does: a Trio task, a timer, an fd callback."""
    loop = asyncio.get_running_loop()
    await trio_asyncio.trio_as_aio(trio.sleep)(0.01)
    await asyncio.sleep(0.01)
    a, b = socket.socketpair()
    try:
        got = loop.create_future()
        loop.add_reader(a.fileno(), lambda: got.done() or got.set_result(a.recv(10)))
        loop.call_later(0.01, b.send, b"ping")
        data = await got
        loop.remove_reader(a.fileno())
    finally:
        a.close()
        b.close()
    return data.decode()


def started_loop() -> SyncTrioEventLoop:
    loop = asyncio.new_event_loop()
    assert isinstance(loop, SyncTrioEventLoop)
    assert loop.run_until_complete(uses_trio_timers_and_fds()) == "ping"
    assert loop._fiber is not None  # the loop's Trio run started
    return loop


def in_child(work: Callable[[], None]) -> None:
    """Run *work* in the child and leave with its verdict (never return)."""
    try:
        timer = watchdog("child")
        work()
        timer.cancel()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


def reap(pid: int) -> int:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the child hung")


def parent_unaffected(loop: SyncTrioEventLoop) -> None:
    timer = watchdog("parent after the child")
    assert loop.run_until_complete(uses_trio_timers_and_fds()) == "ping"
    assert loop.run_until_complete(uses_trio_timers_and_fds()) == "ping"
    loop.close()
    timer.cancel()


# ---------------------------------------------------------------------------------------


def child_closes_inherited_loop() -> None:
    loop = started_loop()
    pid = os.fork()
    if pid == 0:
        in_child(loop.close)
    assert reap(pid) == 0
    parent_unaffected(loop)


def child_runs_inherited_and_new_loops() -> None:
    loop = started_loop()
    pid = os.fork()
    if pid == 0:

        def work() -> None:
            assert asyncio._get_running_loop() is None
            # The inherited loop runs in the child, on kernel objects of its own.
            assert loop.run_until_complete(uses_trio_timers_and_fds()) == "ping"
            loop.close()
            fresh = asyncio.new_event_loop()
            assert fresh.run_until_complete(uses_trio_timers_and_fds()) == "ping"
            fresh.close()
            assert asyncio.run(uses_trio_timers_and_fds()) == "ping"

        in_child(work)
    assert reap(pid) == 0
    parent_unaffected(loop)


def child_drops_inherited_loop() -> None:
    """The child never closes it: garbage collection must not resume its Trio run."""
    loop = started_loop()
    pid = os.fork()
    if pid == 0:

        def work() -> None:
            nonlocal loop
            import gc
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                del loop
                gc.collect()
            assert asyncio.run(uses_trio_timers_and_fds()) == "ping"

        in_child(work)
    assert reap(pid) == 0
    parent_unaffected(loop)


def fork_inside_running_coroutine() -> None:
    """``os.fork()`` from a coroutine running in the loop's Trio run (in its fiber)."""
    loop = started_loop()

    async def forks() -> int:
        await asyncio.sleep(0.001)  # the rest runs in the fiber, inside the Trio run
        assert trio_asyncio._fiber.current() is not None  # type: ignore[attr-defined]
        pid = os.fork()
        if pid == 0:

            def work() -> None:
                # As on stock asyncio 3.12+: no running loop in the child.
                assert asyncio._get_running_loop() is None
                try:
                    asyncio.get_running_loop()
                except RuntimeError:
                    pass
                else:
                    raise AssertionError("a running loop in the child")
                # ... so the child can run loops of its own right here.
                assert asyncio.run(uses_trio_timers_and_fds()) == "ping"

            in_child(work)
        return pid

    pid = loop.run_until_complete(forks())
    assert reap(pid) == 0
    parent_unaffected(loop)


def fork_inside_then_child_finishes_the_run() -> None:
    """The child returns from the coroutine: the inherited run ends without Trio (callbacks
    queued before the fork still run), then the child uses the loop again (with a Trio run
    of its own) and closes it."""
    loop = started_loop()

    async def forks() -> int:
        await asyncio.sleep(0.001)
        waiter = loop.create_future()
        loop.call_later(0.01, waiter.set_result, None)
        pid = os.fork()
        if pid == 0:
            assert asyncio._get_running_loop() is None
        await waiter  # in the child: the timer fires, waited for on the child's own poller
        return pid

    pid = loop.run_until_complete(forks())
    if pid == 0:

        def work() -> None:
            assert loop._fiber is None  # the inherited run was dropped, not resumed
            assert loop.run_until_complete(uses_trio_timers_and_fds()) == "ping"
            loop.close()

        in_child(work)
    assert reap(pid) == 0
    parent_unaffected(loop)


CASES = {
    f.__name__: f
    for f in [
        child_closes_inherited_loop,
        child_runs_inherited_and_new_loops,
        child_drops_inherited_loop,
        fork_inside_running_coroutine,
        fork_inside_then_child_finishes_the_run,
    ]
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("ok")
