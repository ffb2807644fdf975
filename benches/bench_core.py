"""Microbenchmarks of the scheduler core (LoopCore) alone vs stock asyncio, same process.

    .venv/bin/python benches/bench_core.py [--repeat 7] [--quick]

Each workload runs on a stock ``asyncio.SelectorEventLoop`` and on a minimal
``LoopCore`` subclass driven by the same kind of synchronous driver the tests use
(``_run_ready`` + ``select`` on ``_poll_fd()`` when idle); no Trio is involved, so this
measures the engine, not the Trio driver. Prints the median cost per operation of each
and the ratio (ours / asyncio, lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import random
import select
import statistics
import time
from typing import Any, Callable

from trio_asyncio import _engine


class CoreLoop(_engine.LoopCore, asyncio.BaseEventLoop):
    def close(self) -> None:
        self._close_core()


def drive(core: Any) -> None:
    while (s := core._run_ready(0.05)) != 1:
        if s == 0:
            d = core._prepare_sleep()
            t = None if d is None else max(0.0, d - core.time())
            select.select([core._poll_fd()], [], [], t)
            core._end_sleep()
    core._clear_stopping()


def run(loop: Any) -> None:
    if isinstance(loop, CoreLoop):
        drive(loop)
    else:
        loop.run_forever()


# --------------------------------------------------------------------------- workloads


def call_soon_chain(loop: Any, n: int) -> float:
    """A callback that reschedules itself with call_soon, n times: seconds per call."""
    count = 0
    cs = loop.call_soon

    def cb() -> None:
        nonlocal count
        count += 1
        if count < n:
            cs(cb)
        else:
            loop.stop()

    cs(cb)
    t0 = time.perf_counter()
    run(loop)
    return (time.perf_counter() - t0) / n


def call_later0_chain(loop: Any, n: int) -> float:
    """A callback that reschedules itself with call_later(0), n times: seconds per call."""
    count = 0
    cl = loop.call_later

    def cb() -> None:
        nonlocal count
        count += 1
        if count < n:
            cl(0, cb)
        else:
            loop.stop()

    cl(0, cb)
    t0 = time.perf_counter()
    run(loop)
    return (time.perf_counter() - t0) / n


def random_timers(make_loop: Callable[[Callable[[], float]], Any], n: int) -> tuple[float, int]:
    """n timers with random deadlines in [0, 1) s on a frozen clock, then the clock jumps
    past all of them: seconds for the firing phase (all n callbacks), and how many fired
    out of (when) order."""
    now = [1000.0]
    loop = make_loop(lambda: now[0])
    rnd = random.Random(1)
    fired = 0
    last = [0.0]
    out_of_order = 0

    def cb(when: float) -> None:
        nonlocal fired, out_of_order
        if when < last[0]:
            out_of_order += 1
        last[0] = when
        fired += 1
        if fired == n:
            loop.stop()

    for _ in range(n):
        d = rnd.random()
        loop.call_at(now[0] + d, cb, now[0] + d)
    now[0] += 2.0
    t0 = time.perf_counter()
    run(loop)
    dt = time.perf_counter() - t0
    loop.close()
    return dt, out_of_order


class MockClockAsyncio(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    clock: Callable[[], float]

    def time(self) -> float:
        return self.clock()


def make_asyncio_mock(clock: Callable[[], float]) -> Any:
    lp = MockClockAsyncio()
    lp.clock = clock
    return lp


def make_core_mock(clock: Callable[[], float]) -> Any:
    lp = CoreLoop()
    lp._set_clock_callable(clock)
    return lp


# --------------------------------------------------------------------------- harness


def median_of(repeat: int, f: Callable[[], float]) -> float:
    vals = []
    for _ in range(repeat):
        gc.collect()
        vals.append(f())
    return statistics.median(vals)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smaller n, for CI smoke runs")
    a = ap.parse_args()
    scale = 10 if a.quick else 1
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()} {platform.system()}; median of {a.repeat} runs")
    print(f"{'workload':<40} {'asyncio':>12} {'LoopCore':>12} {'ratio':>8}")

    aio = asyncio.SelectorEventLoop()
    core = CoreLoop()
    for name, fn, n in (
        ("call_soon self-rescheduling, per call", call_soon_chain, 200_000 // scale),
        ("call_later(0) chain, per call", call_later0_chain, 100_000 // scale),
    ):
        fn(aio, n // 10)
        fn(core, n // 10)  # warm up
        ta = median_of(a.repeat, lambda: fn(aio, n))
        tc = median_of(a.repeat, lambda: fn(core, n))
        print(f"{name:<40} {ta * 1e9:>9.0f} ns {tc * 1e9:>9.0f} ns {tc / ta:>7.3f}x")
    aio.close()
    core.close()

    n = 100_000 // scale
    res_a = [random_timers(make_asyncio_mock, n) for _ in range(max(3, a.repeat // 2))]
    res_c = [random_timers(make_core_mock, n) for _ in range(max(3, a.repeat // 2))]
    ta = statistics.median(r[0] for r in res_a)
    tc = statistics.median(r[0] for r in res_c)
    name = f"{n // 1000}k random timers, firing phase"
    print(f"{name:<40} {ta * 1e3:>9.1f} ms {tc * 1e3:>9.1f} ms {tc / ta:>7.3f}x")
    print(f"{'  out-of-order firings (max over runs)':<40} {max(r[1] for r in res_a):>12} "
          f"{max(r[1] for r in res_c):>12}")


if __name__ == "__main__":
    main()
