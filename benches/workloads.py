"""The workloads (rows of shared/targets.md), each run inside a worker process.

A workload function takes ``(rt, n, param)`` -- the implementation's runtime (``impls.py``), the
number of operations and the size parameter -- and returns a ``Sample``: elapsed nanoseconds
(``time.perf_counter_ns``) for ``ops`` operations, plus workload-specific extras (for example the
number of timers that fired out of order).  Only the measured phase is inside the clock: loop
creation, server start-up, connection set-up and teardown are outside.

Run as a script this module is the worker: ``python benches/workloads.py --mode M --workload W
[--param P] [--n N] [--target-seconds T]``.  It warms up (the warm-up doubles as calibration:
for workloads without a fixed size, ``n`` is chosen so one sample takes about ``T`` seconds),
takes one timed sample and prints one line ``@@RESULT@@ {json}`` on stdout.  The parent runs one
worker per (implementation, workload, size, round), so a crash, hang or leak stays in its cell.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

perf = time.perf_counter_ns
HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_TAG = "@@RESULT@@"

LOOP_MODES = ("asyncio", "uvloop", "rloop", "ta-sync", "ta-async")
SYNC_MODES = ("asyncio", "uvloop", "rloop", "ta-sync")
TA_MODES = ("ta-sync", "ta-async")


@dataclass
class Sample:
    elapsed_ns: int
    ops: int
    extra: dict[str, Any] = field(default_factory=dict)


class CheckFailed(Exception):
    """The implementation gave a wrong answer (echo mismatch, lost callback...)."""


async def _noop() -> None:
    pass


# --------------------------------------------------------------------------------------------
# Callbacks and timers
# --------------------------------------------------------------------------------------------


def call_soon_chain(rt, n, param):
    """One callback that re-schedules itself with ``call_soon`` ``n`` times."""

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        left = n

        def cb():
            nonlocal left
            left -= 1
            if left:
                loop.call_soon(cb)
            else:
                done.set_result(None)

        t0 = perf()
        loop.call_soon(cb)
        await done
        return Sample(perf() - t0, n)

    return rt.run(main)


def call_later0_chain(rt, n, param):
    """One callback that re-schedules itself with ``call_later(0, ...)`` ``n`` times."""

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        left = n

        def cb():
            nonlocal left
            left -= 1
            if left:
                loop.call_later(0, cb)
            else:
                done.set_result(None)

        t0 = perf()
        loop.call_later(0, cb)
        await done
        return Sample(perf() - t0, n)

    return rt.run(main)


TIMER_WINDOW = 0.002  # seconds: every deadline lies in [base, base + window)


def timers(rt, n, param):
    """``n`` timers at random deadlines; time the firing phase only.

    All ``n`` timers are scheduled with ``call_at`` (random deadlines in a 2 ms window), then the
    coroutine blocks until every deadline has passed, and only then starts the clock and yields
    to the loop: the measured phase is the loop firing ``n`` due timers.  Each firing records its
    deadline; a firing whose deadline is earlier than the previous firing's counts as out of
    order (asyncio fires due timers in deadline order, so the expected count is 0).
    """

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        rnd = random.Random(20240601 + n)
        count = 0
        prev = -math.inf
        out_of_order = 0

        def cb(when):
            nonlocal count, prev, out_of_order
            if when < prev:
                out_of_order += 1
            prev = when
            count += 1
            if count == n:
                done.set_result(None)

        base = loop.time() + 0.0005
        for _ in range(n):
            when = base + rnd.random() * TIMER_WINDOW
            loop.call_at(when, cb, when)
        while loop.time() < base + TIMER_WINDOW + 0.0005:
            time.sleep(0.0005)
        t0 = perf()
        await done
        elapsed = perf() - t0
        return Sample(elapsed, n, {"out_of_order": out_of_order})

    return rt.run(main)


# --------------------------------------------------------------------------------------------
# Tasks, futures, queues
# --------------------------------------------------------------------------------------------

SLEEP0_TASKS = 1000


def sleep0_tasks(rt, n, param):
    """1,000 tasks each looping ``await asyncio.sleep(0)``; cost per switch."""
    tasks_n = SLEEP0_TASKS if param is None else int(param)
    per = max(1, n // tasks_n)

    async def main():
        go = asyncio.Event()

        async def worker():
            await go.wait()
            for _ in range(per):
                await asyncio.sleep(0)

        tasks = [asyncio.ensure_future(worker()) for _ in range(tasks_n)]
        await asyncio.sleep(0)  # every task parks on the event
        t0 = perf()
        go.set()
        await asyncio.gather(*tasks)
        return Sample(perf() - t0, per * tasks_n)

    return rt.run(main)


def future_pingpong(rt, n, param):
    """Two tasks hand a fresh Future back and forth; cost per round trip."""

    async def main():
        loop = asyncio.get_running_loop()
        box = {"a": None, "b": loop.create_future()}

        async def ping():
            for _ in range(n):
                fb = box["b"]
                box["a"] = fa = loop.create_future()
                fb.set_result(None)
                await fa

        async def pong():
            for _ in range(n):
                await box["b"]
                box["b"] = loop.create_future()
                box["a"].set_result(None)

        t0 = perf()
        tb = asyncio.ensure_future(pong())
        await ping()
        await tb
        return Sample(perf() - t0, n)

    return rt.run(main)


def queue_pingpong(rt, n, param):
    """Two tasks bounce an item through two ``asyncio.Queue``; cost per round trip."""

    async def main():
        q1: asyncio.Queue = asyncio.Queue()
        q2: asyncio.Queue = asyncio.Queue()

        async def pong():
            for _ in range(n):
                q2.put_nowait(await q1.get())

        tb = asyncio.ensure_future(pong())
        t0 = perf()
        for i in range(n):
            q1.put_nowait(i)
            if await q2.get() != i:
                raise CheckFailed("queue item mismatch")
        elapsed = perf() - t0
        await tb
        return Sample(elapsed, n)

    return rt.run(main)


def create_task_noop(rt, n, param):
    """``await asyncio.create_task(noop())``, per task."""

    async def main():
        create_task = asyncio.create_task
        t0 = perf()
        for _ in range(n):
            await create_task(_noop())
        return Sample(perf() - t0, n)

    return rt.run(main)


# --------------------------------------------------------------------------------------------
# Entering and leaving the loop (sync loops only)
# --------------------------------------------------------------------------------------------


def run_until_complete_noop(rt, n, param):
    """``loop.run_until_complete(noop())`` repeated on one loop."""
    loop = rt.new_loop()
    try:
        ruc = loop.run_until_complete
        t0 = perf()
        for _ in range(n):
            ruc(_noop())
        return Sample(perf() - t0, n)
    finally:
        loop.close()


def run_forever_stop(rt, n, param):
    """``loop.call_soon(loop.stop); loop.run_forever()`` repeated on one loop."""
    loop = rt.new_loop()
    try:
        call_soon, stop, run_forever = loop.call_soon, loop.stop, loop.run_forever
        t0 = perf()
        for _ in range(n):
            call_soon(stop)
            run_forever()
        return Sample(perf() - t0, n)
    finally:
        loop.close()


def new_loop_close(rt, n, param):
    """``new_event_loop()`` + ``close()``, per pair."""
    new_loop = rt.new_loop
    t0 = perf()
    for _ in range(n):
        new_loop().close()
    return Sample(perf() - t0, n)


# --------------------------------------------------------------------------------------------
# TCP echo over loopback
# --------------------------------------------------------------------------------------------

MSG_SIZE = 1024
MSG = bytes(range(256)) * (MSG_SIZE // 256)


def _raise_fd_limit(conns: int) -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 4 * conns + 256
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    except Exception:  # noqa: BLE001 - best effort
        pass


class _EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class _EchoClient(asyncio.Protocol):
    def __init__(self, loop, rounds):
        self.rounds = rounds
        self.got = 0
        self.done = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def start(self):
        self.transport.write(MSG)

    def data_received(self, data):
        self.got += len(data)
        if self.got < MSG_SIZE:
            return
        if self.got > MSG_SIZE:
            self.done.set_exception(CheckFailed(f"echo returned {self.got} bytes"))
            return
        self.got = 0
        self.rounds -= 1
        if self.rounds:
            self.transport.write(MSG)
        else:
            self.done.set_result(None)

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.done.done():
            self.done.set_exception(CheckFailed(f"connection lost early: {exc!r}"))


def tcp_echo_protocol(rt, n, param):
    """Protocol client/server echoing 1 KiB over loopback; cost per round trip.

    ``param`` concurrent connections each do ``n // param`` sequential round trips; the clock
    covers only the exchanges (connections are open and accepted before it starts).
    """
    conns = int(param or 1)
    per = max(1, n // conns)
    _raise_fd_limit(conns)

    async def main():
        loop = asyncio.get_running_loop()
        accepted = 0
        all_in = loop.create_future()

        class Server(_EchoServer):
            def connection_made(self, transport):
                nonlocal accepted
                super().connection_made(transport)
                accepted += 1
                if accepted == conns and not all_in.done():
                    all_in.set_result(None)

        server = await loop.create_server(Server, "127.0.0.1", 0, backlog=max(128, conns))
        port = server.sockets[0].getsockname()[1]
        clients = []
        try:
            for _ in range(conns):
                _, proto = await loop.create_connection(
                    lambda: _EchoClient(loop, per), "127.0.0.1", port
                )
                clients.append(proto)
            await asyncio.wait_for(all_in, 30)
            t0 = perf()
            for c in clients:
                c.start()
            await asyncio.gather(*(c.done for c in clients))
            elapsed = perf() - t0
        finally:
            for c in clients:
                c.transport.close()
            server.close()
            if clients:
                await asyncio.wait([c.lost for c in clients], timeout=10)
            await server.wait_closed()
        return Sample(elapsed, per * conns, {"connections": conns})

    return rt.run(main)


def tcp_echo_streams(rt, n, param):
    """Streams API (``start_server``/``open_connection``) echoing 1 KiB; cost per round trip."""
    conns = int(param or 1)
    per = max(1, n // conns)
    _raise_fd_limit(conns)

    async def main():
        async def handle(reader, writer):
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=max(128, conns))
        port = server.sockets[0].getsockname()[1]
        pairs = [await asyncio.open_connection("127.0.0.1", port) for _ in range(conns)]

        async def client(reader, writer):
            for _ in range(per):
                writer.write(MSG)
                await writer.drain()
                if await reader.readexactly(MSG_SIZE) != MSG:
                    raise CheckFailed("echo mismatch")

        try:
            t0 = perf()
            await asyncio.gather(*(client(r, w) for r, w in pairs))
            elapsed = perf() - t0
        finally:
            for _, w in pairs:
                w.close()
            for _, w in pairs:
                try:
                    await asyncio.wait_for(w.wait_closed(), 10)
                except Exception:  # noqa: BLE001 - teardown only
                    pass
            server.close()
            await server.wait_closed()
        return Sample(elapsed, per * conns, {"connections": conns})

    return rt.run(main)


# --------------------------------------------------------------------------------------------
# The adapters (trio-asyncio only; asyncio runs the create_task reference instead)
# --------------------------------------------------------------------------------------------


def aio_as_trio_noop(rt, n, param):
    """From a Trio task: ``await aio_as_trio(noop)()``, per call.

    The reference (stock asyncio) is ``await create_task(noop())``.
    """
    if not rt.trio_asyncio:
        return create_task_noop(rt, n, param)
    ta = rt.ta

    async def trio_main():
        aio_as_trio = ta.aio_as_trio
        t0 = perf()
        for _ in range(n):
            await aio_as_trio(_noop)()
        return Sample(perf() - t0, n)

    return rt.run_trio(trio_main)


def trio_as_aio_noop(rt, n, param):
    """From an asyncio task: ``await trio_as_aio(noop)()`` (``noop`` Trio-flavoured), per call.

    The reference (stock asyncio) is ``await create_task(noop())``.
    """
    if not rt.trio_asyncio:
        return create_task_noop(rt, n, param)
    ta = rt.ta

    async def trio_noop():
        pass

    async def main():
        trio_as_aio = ta.trio_as_aio
        t0 = perf()
        for _ in range(n):
            await trio_as_aio(trio_noop)()
        return Sample(perf() - t0, n)

    return rt.run(main)


# --------------------------------------------------------------------------------------------
# Fiber switch (ours vs greenlet)
# --------------------------------------------------------------------------------------------


def _at_depth(depth: int, fn: Callable[[], Any]) -> Any:
    """Call ``fn`` with ``depth`` extra C-level frames on the stack (recursion through ``map``).

    On 3.11 Python-to-Python calls do not use the C stack, so the depth is built by recursing
    through a C function, the way Trio's nested ``coro.send()`` calls do.
    """
    if depth <= 0:
        return fn()
    return next(map(_at_depth, (depth - 1,), (fn,)))


def _greenlet_round_trip(n: int, depth: int) -> Sample:
    import greenlet

    def child():
        parent = greenlet.getcurrent().parent

        def loop():
            sw = parent.switch
            while True:
                sw()

        _at_depth(depth, loop)

    g = greenlet.greenlet(child)

    def drive():
        sw = g.switch
        sw()  # start: the child parks at its switch point
        t0 = perf()
        for _ in range(n):
            sw()
        return perf() - t0

    elapsed = _at_depth(depth, drive)
    g.throw(greenlet.GreenletExit)
    return Sample(elapsed, n, {"depth": depth})


FIBER_FUNCS = ("round_trip", "switch_round_trip", "bench_round_trip")


def _ours_round_trip(n: int, depth: int) -> Sample:
    """Our fiber, through the ``trio_asyncio._fiber`` API (same harness as greenlet's row;
    ``benches/bench_fiber.py`` is the standalone, same-process comparison)."""
    engine = None
    for modname in ("trio_asyncio._fiber", "trio_asyncio._engine"):
        try:
            engine = __import__(modname, fromlist=["Fiber"])
        except ImportError:
            continue
        if hasattr(engine, "Fiber") and hasattr(engine, "suspend"):
            break
        engine = None
    if engine is None:
        raise NotImplementedError(
            "trio_asyncio has no Fiber/suspend"
        )
    Fiber, suspend = engine.Fiber, engine.suspend

    def body(*_):
        def loop():
            while True:
                suspend(None)

        _at_depth(depth, loop)

    f = Fiber(body)

    def drive():
        sw = f.switch
        sw(None)
        t0 = perf()
        for _ in range(n):
            sw(None)
        return perf() - t0

    elapsed = _at_depth(depth, drive)
    return Sample(elapsed, n, {"depth": depth, "via": f"{engine.__name__}.Fiber"})


def fiber_switch(rt, n, param):
    """Fiber switch round trip parent -> fiber -> parent, at ``param`` C levels of depth."""
    depth = int(param or 0)
    if rt.mode == "greenlet":
        return _greenlet_round_trip(n, depth)
    return _ours_round_trip(n, depth)


# --------------------------------------------------------------------------------------------
# The table of workloads
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    fn: Callable[..., Sample]
    title: str
    unit: str  # what one operation is
    modes: tuple[str, ...] = LOOP_MODES
    # Sizes: None -> one calibrated size ("auto").  Otherwise a list of (label, param, fixed_n);
    # fixed_n None means the op count is calibrated for that param.
    sizes: tuple[tuple[str, Any, int | None], ...] | None = None
    headline: str = "auto"  # which size is the row of targets.md
    smoke_sizes: tuple[tuple[str, Any, int | None], ...] | None = None
    warm_n: int = 1000
    min_n: int = 1000
    max_n: int = 5_000_000
    smoke_n: int = 50
    # Our goal (ratio to asyncio) for the README verdict: issue 13's goal for the rows that
    # issue names (call_soon, sleep0, future_pingpong, the two TCP echoes, the two crossings),
    # the targets table's for the others.
    target: str = ""
    target_ratio: float | None = None
    reference_note: str = ""
    # extra key that must be zero for the target to count as met
    zero_extra: str | None = None
    # modes that the row does not apply to are reported as "-" (not run)
    skip_reason: str = ""

    def size_list(self, smoke: bool) -> list[tuple[str, Any, int | None]]:
        if smoke and self.smoke_sizes is not None:
            return list(self.smoke_sizes)
        if self.sizes is None:
            return [("auto", None, None)]
        return list(self.sizes)


_CS = (("auto", None, None), ("10k", None, 10_000), ("100k", None, 100_000), ("1M", None, 1_000_000))

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            "call_soon", call_soon_chain, "`call_soon` self-rescheduling callback", "call",
            sizes=_CS, smoke_sizes=(("auto", None, None), ("10k", None, 30), ("100k", None, 300),
                                    ("1M", None, 3000)),
            warm_n=5000, min_n=10_000, target="<= 0.05x", target_ratio=0.05,
        ),
        Workload(
            "call_later0", call_later0_chain, "`call_later(0)` chain", "call",
            warm_n=5000, min_n=10_000, target="<= 0.05x", target_ratio=0.05,
        ),
        Workload(
            "timers", timers, "100k timers, random deadlines, firing phase", "timer",
            sizes=(("10k", None, 10_000), ("100k", None, 100_000), ("1M", None, 1_000_000)),
            headline="100k",
            smoke_sizes=(("10k", None, 30), ("100k", None, 300), ("1M", None, 3000)),
            warm_n=10_000, target="<= 0.25x, zero out-of-order", target_ratio=0.25,
            zero_extra="out_of_order",
        ),
        Workload(
            "sleep0", sleep0_tasks, "`asyncio.sleep(0)` in 1,000 tasks", "switch",
            warm_n=10_000, min_n=20_000, smoke_n=2000, target="<= 0.42x", target_ratio=0.42,
        ),
        Workload(
            "future_pingpong", future_pingpong, "Future ping-pong between two tasks", "round trip",
            warm_n=2000, target="<= 0.28x", target_ratio=0.28,
        ),
        Workload(
            "queue_pingpong", queue_pingpong, "Queue ping-pong between two tasks", "round trip",
            warm_n=2000, target="<= 0.40x", target_ratio=0.40,
        ),
        Workload(
            "create_task", create_task_noop, "`await create_task(noop())`", "task",
            warm_n=2000, target="<= 0.50x", target_ratio=0.50,
        ),
        Workload(
            "run_until_complete", run_until_complete_noop,
            "`run_until_complete(noop())` on one loop", "call", modes=SYNC_MODES,
            warm_n=500, min_n=500, target="<= 0.5x", target_ratio=0.5,
            skip_reason="sync loops only",
        ),
        Workload(
            "run_forever_stop", run_forever_stop, "`run_forever()` + `call_soon(loop.stop)`",
            "cycle", modes=SYNC_MODES, warm_n=500, min_n=500, target="<= 0.5x", target_ratio=0.5,
            skip_reason="sync loops only",
        ),
        Workload(
            "tcp_echo_protocol", tcp_echo_protocol, "TCP echo over loopback, Protocol, 1 KiB",
            "round trip",
            sizes=(("1 conn", 1, None), ("100 conns", 100, None), ("1000 conns", 1000, None)),
            headline="1 conn",
            smoke_sizes=(("1 conn", 1, 20), ("100 conns", 4, 40), ("1000 conns", 8, 80)),
            warm_n=500, min_n=2000, target="<= 0.45x", target_ratio=0.45,
        ),
        Workload(
            "tcp_echo_streams", tcp_echo_streams, "TCP echo, streams API, 1 KiB", "round trip",
            sizes=(("1 conn", 1, None),), headline="1 conn",
            smoke_sizes=(("1 conn", 1, 20),),
            warm_n=500, min_n=2000, target="<= 0.55x", target_ratio=0.55,
        ),
        Workload(
            "new_loop_close", new_loop_close, "`new_event_loop()` + `close()`", "pair",
            modes=SYNC_MODES, warm_n=100, min_n=200, smoke_n=10, target="<= 0.5x",
            target_ratio=0.5, skip_reason="sync loops only",
        ),
        Workload(
            "aio_as_trio", aio_as_trio_noop,
            "`await aio_as_trio(noop)()` from Trio (asyncio: `await create_task(noop())`)", "call",
            modes=("asyncio", "ta-async"), warm_n=1000, target="<= 1.0x", target_ratio=1.0,
            reference_note="asyncio column is `await create_task(noop())`",
            skip_reason="needs a Trio context: async loop only",
        ),
        Workload(
            "trio_as_aio", trio_as_aio_noop,
            "`await trio_as_aio(noop)()` from asyncio (asyncio: `await create_task(noop())`)",
            "call", modes=("asyncio", "ta-sync", "ta-async"), warm_n=1000, target="<= 2.0x",
            target_ratio=2.0, reference_note="asyncio column is `await create_task(noop())`",
            skip_reason="trio-asyncio API only",
        ),
        Workload(
            "fiber_switch", fiber_switch, "fiber switch round trip (parent -> fiber -> parent)",
            "round trip", modes=("greenlet", "fiber"),
            sizes=(("depth 0", 0, None), ("depth 20", 20, None), ("depth 100", 100, None)),
            headline="depth 0",
            smoke_sizes=(("depth 0", 0, None), ("depth 20", 20, None)),
            warm_n=20_000, min_n=100_000, max_n=20_000_000, smoke_n=200,
            target="<= 250 ns, flat with depth", skip_reason="fiber row: greenlet vs ours only",
        ),
    ]
}


# --------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------


def _classify(exc: BaseException) -> tuple[str, str]:
    """Return (status, origin) for an exception raised while running a cell.

    ``unavailable``: the implementation lacks the feature (ImportError, NotImplementedError,
    or an AttributeError on ``trio_asyncio``).  ``error``: anything else; its ``origin`` is
    ``harness`` when the innermost frame is in benches/ and the exception is not a CheckFailed,
    so the smoke test can tell a broken harness from a broken implementation.
    """
    if isinstance(exc, (ImportError, NotImplementedError)):
        return "unavailable", "package"
    if isinstance(exc, AttributeError) and "trio_asyncio" in str(exc):
        return "unavailable", "package"
    if isinstance(exc, CheckFailed):
        return "error", "package"
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is not None and os.path.dirname(os.path.abspath(last.tb_frame.f_code.co_filename)) == HERE:
        return "error", "harness"
    return "error", "package"


def run_cell(mode: str, workload: str, param: Any, fixed_n: int | None, target_s: float,
             smoke: bool) -> dict[str, Any]:
    import impls

    spec = WORKLOADS[workload]
    if mode not in spec.modes:
        return {"status": "skip", "reason": spec.skip_reason or "not applicable"}
    rt = impls.runtime(mode)
    info = rt.info()
    if smoke:
        n = fixed_n or spec.smoke_n
        spec.fn(rt, min(n, max(1, spec.smoke_n // 5)), param)  # warm-up
        s = spec.fn(rt, n, param)
    elif fixed_n is not None:
        spec.fn(rt, min(fixed_n, spec.warm_n), param)  # warm-up
        gc.collect()
        s = spec.fn(rt, fixed_n, param)
    else:
        w = spec.fn(rt, spec.warm_n, param)  # warm-up, and calibration
        per_ns = max(w.elapsed_ns, 1) / max(w.ops, 1)
        n = int(target_s * 1e9 / per_ns)
        n = max(spec.min_n, min(spec.max_n, n))
        gc.collect()
        s = spec.fn(rt, n, param)
    if s.elapsed_ns <= 0 or s.ops <= 0:
        raise CheckFailed(f"empty sample: {s}")
    return {
        "status": "ok",
        "sec_per_op": s.elapsed_ns / s.ops / 1e9,
        "ops": s.ops,
        "elapsed_s": s.elapsed_ns / 1e9,
        "extra": s.extra,
        "info": info,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--param", default=None, help="size parameter (JSON)")
    p.add_argument("--n", type=int, default=None, help="fixed op count (default: calibrate)")
    p.add_argument("--target-seconds", type=float, default=0.3)
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args(argv)
    param = json.loads(a.param) if a.param is not None else None
    try:
        out = run_cell(a.mode, a.workload, param, a.n, a.target_seconds, a.smoke)
    except BaseException as e:  # noqa: BLE001 - every failure becomes a reported cell
        if isinstance(e, KeyboardInterrupt):
            raise
        status, origin = _classify(e)
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        reason = f"{type(e).__name__}: {e}".strip()
        out = {"status": status, "origin": origin, "reason": reason[:300], "traceback": tb[-4000:]}
    sys.stdout.flush()
    print(RESULT_TAG + " " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
