"""Differential test: generated asyncio programs trace the same on stock asyncio and ours
(issue 14).

Hypothesis generates small programs out of callbacks, zero-delay and timed timers, tasks,
futures, cancellation, a queue and stop/run cycles. Each program runs on stock asyncio's
selector loop and on one of our loops, recording an event trace; the traces must be equal.

Only orderings asyncio itself defines are generated: everything in a "mixed" phase happens
in zero time (``call_soon``, ``call_later(0)``, ``sleep(0)``), so its order follows from the
loop's iteration rules alone; timers with real delays get phases of their own, scheduled in
one synchronous go with delays 5 ms apart, so their order is the order of their delays.

CI runs ``DIFF_EXAMPLES`` (default 25) examples per loop; run more by hand, e.g.
``DIFF_EXAMPLES=2000 python -m pytest tests/test_differential.py``.
"""

from __future__ import annotations

import asyncio
import gc
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trio_asyncio
from trio_asyncio._sync import SyncTrioEventLoop

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "25"))

# ---------------------------------------------------------------------------------------
# Programs
# ---------------------------------------------------------------------------------------

ref = st.integers(0, 7)  # refers to the n-th task/future/handle made so far (modulo count)

task_step = st.one_of(
    st.just(("sleep0",)),
    st.tuples(st.just("await_future"), ref),
    st.just(("get",)),
    st.just(("put",)),
    st.just(("raise",)),
    st.tuples(st.just("await_task"), ref),
)

mixed_op = st.one_of(
    st.just(("soon",)),
    st.just(("later0",)),
    st.tuples(st.just("chain"), st.integers(1, 4)),
    st.tuples(st.just("cancel_handle"), ref),
    st.tuples(st.just("task"), st.lists(task_step, max_size=4)),
    st.tuples(st.just("cancel_task"), ref),
    st.just(("future",)),
    st.tuples(st.just("set_future"), ref, st.booleans()),
    st.tuples(st.just("cancel_future"), ref),
    st.just(("put",)),
    st.just(("sleep0",)),
)

mixed_phase = st.tuples(st.just("mixed"), st.lists(mixed_op, min_size=1, max_size=12))
# distinct delays in units of 5 ms, each with a "cancel it" flag
timers_phase = st.tuples(
    st.just("timers"),
    st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=5, unique_by=lambda t: t[0]),
)
# ops queued while the loop is stopped, then run_forever() until the stop() among them
forever_phase = st.tuples(
    st.just("forever"),
    st.lists(st.one_of(st.just(("soon",)), st.just(("later0",)), st.tuples(st.just("chain"), st.integers(1, 3)), st.tuples(st.just("task"), st.lists(st.just(("sleep0",)), max_size=3))), max_size=6),
    st.integers(0, 6),
)

programs_any = st.lists(st.one_of(mixed_phase, timers_phase, forever_phase), min_size=1, max_size=4)
programs_running = st.lists(st.one_of(mixed_phase, timers_phase), min_size=1, max_size=4)


@dataclass
class State:
    trace: list[str] = field(default_factory=list)
    handles: list[Any] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    queue: asyncio.Queue[int] | None = None
    counter: int = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def pick(self, items: list[Any], i: int) -> Any:
        return items[i % len(items)] if items else None


def _chain(state: State, loop: asyncio.AbstractEventLoop, name: str, left: int) -> None:
    state.trace.append(f"{name}:{left}")
    if left:
        loop.call_soon(_chain, state, loop, name, left - 1)


async def _worker(state: State, name: str, steps: list[tuple[Any, ...]]) -> str:
    state.trace.append(f"{name}:start")
    try:
        for step in steps:
            kind = step[0]
            if kind == "sleep0":
                await asyncio.sleep(0)
            elif kind == "await_future":
                fut = state.pick(state.futures, step[1])
                if fut is not None:
                    state.trace.append(f"{name}:got {await asyncio.shield(fut)!r}")
            elif kind == "await_task":
                task = state.pick(state.tasks, step[1])
                if task is not None and task is not asyncio.current_task():
                    state.trace.append(f"{name}:joined {await asyncio.shield(task)!r}")
            elif kind == "get":
                assert state.queue is not None
                state.trace.append(f"{name}:item {await state.queue.get()}")
            elif kind == "put":
                assert state.queue is not None
                await state.queue.put(state.counter)
            elif kind == "raise":
                raise ValueError(name)
    except asyncio.CancelledError:
        state.trace.append(f"{name}:cancelled")
        raise
    except Exception as exc:
        state.trace.append(f"{name}:error {type(exc).__name__}")
        raise
    state.trace.append(f"{name}:end")
    return name


def _schedule(state: State, loop: asyncio.AbstractEventLoop, op: tuple[Any, ...]) -> None:
    """The operations that need no running coroutine."""
    kind = op[0]
    if kind == "soon":
        state.handles.append(loop.call_soon(state.trace.append, state.name("soon")))
    elif kind == "later0":
        state.handles.append(loop.call_later(0, state.trace.append, state.name("later")))
    elif kind == "chain":
        loop.call_soon(_chain, state, loop, state.name("chain"), op[1])
    elif kind == "task":
        state.tasks.append(loop.create_task(_worker(state, state.name("t"), op[1])))
    elif kind == "cancel_handle":
        h = state.pick(state.handles, op[1])
        if h is not None:
            h.cancel()
    elif kind == "cancel_task":
        t = state.pick(state.tasks, op[1])
        if t is not None:
            state.trace.append(f"cancel {t.cancel()}")
    elif kind == "future":
        state.futures.append(loop.create_future())
    elif kind == "set_future":
        f = state.pick(state.futures, op[1])
        if f is not None and not f.done():
            if op[2]:
                f.set_result(state.name("v"))
            else:
                f.set_exception(KeyError("boom"))
    elif kind == "cancel_future":
        f = state.pick(state.futures, op[1])
        if f is not None:
            state.trace.append(f"fcancel {f.cancel()}")
    elif kind == "put":
        assert state.queue is not None
        state.queue.put_nowait(state.counter)
    else:  # pragma: no cover
        raise AssertionError(op)


async def _mixed(state: State, ops: list[tuple[Any, ...]]) -> None:
    loop = asyncio.get_running_loop()
    for op in ops:
        if op[0] == "sleep0":
            await asyncio.sleep(0)
            state.trace.append("main:resumed")
        else:
            _schedule(state, loop, op)
    for _ in range(3):
        await asyncio.sleep(0)
    await _settle(state)


async def _settle(state: State) -> None:
    """End a phase deterministically: cancel what still waits, collect every outcome."""
    for f in state.futures:
        if not f.done():
            f.cancel()
    for t in state.tasks:
        t.cancel()
    results = await asyncio.gather(*state.tasks, return_exceptions=True)
    state.trace.append("settled " + " ".join(type(r).__name__ for r in results))
    for f in state.futures:
        state.trace.append("future " + ("cancelled" if f.cancelled() else repr(f.exception() or f.result())))
    state.tasks.clear()
    state.futures.clear()
    state.handles.clear()


async def _timers(state: State, delays: list[tuple[int, bool]]) -> None:
    loop = asyncio.get_running_loop()
    handles = [
        (loop.call_later(units * 0.005, state.trace.append, f"timer{units}"), cancel)
        for units, cancel in delays
    ]
    for handle, cancel in handles:
        if cancel:
            handle.cancel()
    await asyncio.sleep(max(units for units, _ in delays) * 0.005 + 0.02)
    state.trace.append("timers done")


def _phase(state: State, phase: tuple[Any, ...]) -> Any:
    if phase[0] == "mixed":
        return _mixed(state, phase[1])
    return _timers(state, phase[1])


# ---------------------------------------------------------------------------------------
# Running a program
# ---------------------------------------------------------------------------------------


def run_program(impl: str, program: list[tuple[Any, ...]]) -> list[str]:
    state = State()
    if impl == "async":

        async def main() -> None:
            with trio.fail_after(30):
                await trio_asyncio.aio_as_trio(_make_queue)(state)
                for phase in program:
                    await trio_asyncio.aio_as_trio(_phase)(state, phase)
                await trio_asyncio.aio_as_trio(_settle)(state)

        trio_asyncio.run(main)
        return state.trace

    loop = asyncio.SelectorEventLoop() if impl == "stock" else asyncio.new_event_loop()
    assert isinstance(loop, SyncTrioEventLoop) == (impl == "sync")
    try:
        loop.run_until_complete(_make_queue(state))
        for phase in program:
            if phase[0] == "forever":
                _, ops, stop_at = phase
                for i, op in enumerate(ops):
                    if i == stop_at:
                        loop.call_soon(loop.stop)
                    _schedule(state, loop, op)
                if stop_at >= len(ops):
                    loop.call_soon(loop.stop)
                loop.run_forever()
                state.trace.append("stopped")
            else:
                loop.run_until_complete(_phase(state, phase))
        loop.run_until_complete(_settle(state))
    finally:
        loop.close()
    gc.collect()
    return state.trace


async def _make_queue(state: State) -> None:
    state.queue = asyncio.Queue()


_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("DIFF_RANDOM") is None,
    database=None,
)


@_settings
@given(programs_any)
def test_sync_loop_traces_like_stock(program: list[tuple[Any, ...]]) -> None:
    assert run_program("sync", program) == run_program("stock", program)


@_settings
@given(programs_running)
def test_open_loop_traces_like_stock(program: list[tuple[Any, ...]]) -> None:
    assert run_program("async", program) == run_program("stock", program)


@pytest.mark.parametrize("impl", ["stock", "sync", "async"])
def test_program_runner_records_events(impl: str) -> None:
    """The harness itself: a program's trace holds what it did."""
    program = [
        ("mixed", [("soon",), ("task", [("sleep0",), ("raise",)]), ("later0",), ("sleep0",)]),
        ("timers", [(2, False), (1, False), (3, True)]),
    ]
    assert run_program(impl, program) == [
        "soon1",
        "t2:start",
        "main:resumed",
        "later3",
        "t2:error ValueError",
        "settled ValueError",
        "timer1",
        "timer2",
        "timers done",
        "settled ",
    ]
