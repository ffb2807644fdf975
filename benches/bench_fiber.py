"""Fiber switch benchmark: trio_asyncio fibers vs greenlet, same process.

Usage (release build of the extension; greenlet is not a project dependency):

    .venv/bin/pip install -e .          # release build (maturin)
    .venv/bin/pip install greenlet      # only for this benchmark
    .venv/bin/python benches/bench_fiber.py

Workloads (medians over REPEATS runs, ns per operation):

- ``switch depth D``: one round trip parent -> fiber -> parent, where the fiber's switch
  point sits D C-levels deep (C-mediated recursion through ``map``), so stack-copying
  designs have D levels of C stack to move.
- ``create+call+finish``: make a fiber, run a function that returns at once, collect it.
"""

from __future__ import annotations

import datetime
import platform
import statistics
import sys
import time

try:
    import greenlet
except ImportError:  # pragma: no cover - a usage message, not a code path
    sys.exit("bench_fiber.py compares against greenlet: run `.venv/bin/pip install greenlet` first")

from trio_asyncio._fiber import Fiber, suspend

REPEATS = 7
N = 200_000
N_CREATE = 100_000


def at_depth(depth, then):
    """Call ``then()`` from ``depth`` C-mediated recursion levels (each level is map -> lambda)."""
    if depth == 0:
        return then()
    return list(map(lambda _: at_depth(depth - 1, then), [0]))


def median_ns(fn, n):
    samples = []
    for _ in range(REPEATS):
        t0 = time.perf_counter_ns()
        fn(n)
        samples.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(samples)


def ours_switch(depth):
    def loop():
        while True:
            suspend()

    fib = Fiber(at_depth, depth, loop)
    fib.switch()

    def run(n, sw=fib.switch):
        for _ in range(n):
            sw()

    return run


def greenlet_switch(depth):
    main = greenlet.getcurrent()

    def loop():
        while True:
            main.switch()

    g = greenlet.greenlet(lambda: at_depth(depth, loop))
    g.switch()

    def run(n, sw=g.switch):
        for _ in range(n):
            sw()

    return run


def noop():
    return None


def ours_create(n):
    for _ in range(n):
        Fiber(noop).switch()


def greenlet_create(n, greenlet_cls=greenlet.greenlet):
    for _ in range(n):
        greenlet_cls(noop).switch()


def baseline(n, f=noop):
    for _ in range(n):
        f()


def main() -> None:
    rows = []
    for depth in (0, 20, 100):
        rows.append(
            (f"switch round trip, depth {depth}",
             median_ns(ours_switch(depth), N), median_ns(greenlet_switch(depth), N))
        )
    rows.append(("create+call+finish", median_ns(ours_create, N_CREATE),
                 median_ns(greenlet_create, N_CREATE)))
    base = median_ns(baseline, N)

    print(f"CPython {platform.python_version()}, greenlet {greenlet.__version__}, "
          f"{platform.machine()}, {datetime.date.today()}")
    print(f"{'workload':32} {'ours ns':>9} {'greenlet ns':>12} {'ours/greenlet':>14}")
    for name, ours, theirs in rows:
        print(f"{name:32} {ours:9.0f} {theirs:12.0f} {ours / theirs:14.2f}")
    print(f"{'(loop + Python no-op call)':32} {base:9.0f}")


if __name__ == "__main__":
    main()
