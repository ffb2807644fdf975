"""Deliver SIGINT at every Trio schedule point of a scenario, one point per run (issue 14).

Run as a script (``python tests/ki_checkpoints.py SCENARIO``) by
``tests/test_keyboard_interrupt.py``, in a child process so that a hang is a failure rather
than a stuck test run. For N = 1, 2, ... a Trio instrument raises SIGINT just before the
N-th task step of the scenario's Trio run (Trio's handler then delivers KeyboardInterrupt
the way a real Ctrl-C at that point would). Each run must end with KeyboardInterrupt out of
``trio.run`` (or the sync loop call), within ``WATCHDOG`` seconds; a run that does not is
reported with every thread's stack and exit status 3. The scenario is done once N is
beyond the number of steps (the run then ends normally). Prints one summary line.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import trio

import trio_asyncio
from trio_asyncio import _sync

#: Seconds one interrupted run may take before it counts as hung.
WATCHDOG = float(os.environ.get("KI_WATCHDOG", "10"))


class SigintAtStep(trio.abc.Instrument):
    """Raise SIGINT right before the ``at``-th task step of the run (counting from 1)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.steps = 0
        self.fired = False
        #: set by the scenario: which call is running (the interrupt must come out of it)
        self.phase = ""
        self.fired_in = ""

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1
        if self.steps == self.at:
            self.fired = True
            self.fired_in = self.phase
            signal.raise_signal(signal.SIGINT)


class Watchdog:
    def __init__(self, what: str) -> None:
        self.timer = threading.Timer(WATCHDOG, self.fire, args=(what,))
        self.timer.daemon = True

    @staticmethod
    def fire(what: str) -> None:
        sys.stderr.write(f"HANG: {what} did not return within {WATCHDOG} s\n")
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(3)

    def __enter__(self) -> Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()


def only_keyboard_interrupts(exc: BaseException) -> bool:
    """KeyboardInterrupt, or a group of nothing else (Trio's nurseries group what leaves
    them; issue 10 decides how open_loop presents those)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(KeyboardInterrupt)[1] is None
    return isinstance(exc, KeyboardInterrupt)


def run_interrupted(main: Callable[[], Any], instrument: SigintAtStep) -> bool:
    try:
        trio.run(main, instruments=[instrument])
    except BaseException as exc:
        if only_keyboard_interrupts(exc):
            return True
        raise
    return False


# ---------------------------------------------------------------------------------------
# Scenarios: each takes the instrument and returns True if the run raised KeyboardInterrupt
# ---------------------------------------------------------------------------------------


async def _aio_work() -> str:
    await asyncio.sleep(0)
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fut.set_result, "done")
    return await fut


def open_loop(instrument: SigintAtStep) -> bool:
    """``open_loop()`` start-up, a little work, and shutdown."""

    async def main() -> None:
        async with trio_asyncio.open_loop():
            await trio_asyncio.aio_as_trio(_aio_work)()

    return run_interrupted(main, instrument)


def open_loop_empty(instrument: SigintAtStep) -> bool:
    """``open_loop()`` entered and left at once."""

    async def main() -> None:
        async with trio_asyncio.open_loop():
            pass

    return run_interrupted(main, instrument)


def _patch_sync_loop_instrument(instrument: SigintAtStep) -> Callable[[], None]:
    """Give the sync loop's own ``trio.run`` the instrument (test-only patch)."""
    original = _sync._TrioSide.fiber_main

    def fiber_main(self: Any) -> None:
        trio.run(self.trio_main, clock=_sync._MonotonicClock(), instruments=[instrument])

    _sync._TrioSide.fiber_main = fiber_main  # type: ignore[method-assign]

    def undo() -> None:
        _sync._TrioSide.fiber_main = original  # type: ignore[method-assign]

    return undo


async def _trio_work() -> str:
    await trio.sleep(0)
    return "trio"


async def _aio_calls_trio() -> str:
    result: str = await trio_asyncio.trio_as_aio(_trio_work)()
    return result


def sync_first_entry(instrument: SigintAtStep) -> bool:
    """The sync loop's first Trio entry (its fiber's ``trio.run`` starting) and a run.

    SIGINT during the run must come out of ``run_until_complete``; the loop must then
    close without hanging, whatever state the interrupt left it in.
    """
    undo = _patch_sync_loop_instrument(instrument)
    loop = asyncio.new_event_loop()
    assert isinstance(loop, _sync.SyncTrioEventLoop)
    interrupted = ""
    try:
        instrument.phase = "run"
        try:
            loop.run_until_complete(_aio_calls_trio())
        except KeyboardInterrupt:
            interrupted = "run"
        instrument.phase = "close"
        try:
            loop.close()
        except KeyboardInterrupt:
            assert not interrupted, "two KeyboardInterrupts for one SIGINT"
            interrupted = "close"
    finally:
        undo()
    assert loop.is_closed()
    if interrupted:
        assert interrupted == instrument.fired_in, (
            f"SIGINT during {instrument.fired_in} came out of {interrupted}"
        )
    return bool(interrupted)


def sync_close(instrument: SigintAtStep) -> bool:
    """The sync loop's ``close()`` ending its Trio run (with a Trio task still running)."""
    loop = asyncio.new_event_loop()
    assert isinstance(loop, _sync.SyncTrioEventLoop)
    loop.run_until_complete(_aio_calls_trio())
    started = loop.create_future()

    async def lingering() -> None:
        started.set_result(None)
        await trio.sleep_forever()

    loop.trio_as_future(lingering)
    loop.run_until_complete(started)
    # Only the close is instrumented: add the instrument to the suspended run from inside.
    runner_ctx = loop._fiber_state.run_context
    assert runner_ctx is not None
    runner_ctx["runner"].instruments.add_instrument(instrument)
    interrupted = False
    try:
        loop.close()
    except KeyboardInterrupt:
        interrupted = True
    assert loop.is_closed()
    return interrupted


SCENARIOS: dict[str, Callable[[SigintAtStep], bool]] = {
    "open_loop": open_loop,
    "open_loop_empty": open_loop_empty,
    "sync_first_entry": sync_first_entry,
    "sync_close": sync_close,
}


def main(name: str) -> None:
    # A process started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then installs no handler of its own: start from the usual state.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    scenario = SCENARIOS[name]
    worst = 0.0
    points = 0
    for at in range(1, 100_000):
        instrument = SigintAtStep(at)
        start = time.monotonic()
        with Watchdog(f"{name}, SIGINT before step {at}"):
            interrupted = scenario(instrument)
        worst = max(worst, time.monotonic() - start)
        if not instrument.fired:
            assert not interrupted, f"{name}: KeyboardInterrupt without a SIGINT"
            break
        if not interrupted:
            sys.stderr.write(f"{name}: SIGINT before step {at} was lost\n")
            sys.exit(4)
        # Nothing of the interrupted run may stay behind (handlers, Trio run context).
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, name
        gc.collect()
        points += 1
    else:  # pragma: no cover
        raise AssertionError("scenario never ran to completion")
    print(f"{name}: {points} schedule points interrupted, slowest run {worst:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1])
