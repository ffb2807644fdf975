"""Memory and fd growth at full scale (targets.md "Memory"); run by hand, not in CI.

    .venv/bin/python benches/bench_memory.py [--quick]

Prints RSS (KiB) and open-fd count before and after each phase, after a warm-up:
1,000,000 ``run_until_complete`` calls on one sync loop (half on the caller's stack,
half through the loop's fiber and Trio run), 10,000 loop create/run/close cycles and
100,000 fiber create/finish cycles. Target: RSS within 1 MiB, fds unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time

import trio_asyncio  # noqa: F401  (asyncio.new_event_loop() now gives the sync loop)
from trio_asyncio._fiber import Fiber


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def phase(name: str, n: int, body) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    body(max(1, n // 20))  # warm-up: caches, pools, lazily created objects
    gc.collect()
    rss0, fd0 = rss_kib(), fds()
    t0 = time.perf_counter()
    body(n)
    dt = time.perf_counter() - t0
    gc.collect()
    drss, dfd = rss_kib() - rss0, fds() - fd0
    verdict = "ok" if drss <= 1024 and dfd == 0 else "MISS"
    print(f"{name:44s} n={n:>9,} {dt:7.1f} s  RSS {drss:+6d} KiB  fds {dfd:+d}  {verdict}")
    return drss, dfd


async def noop() -> None:
    pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a tenth of the counts")
    scale = 10 if ap.parse_args().quick else 1
    loop = asyncio.new_event_loop()

    def fast_runs(n: int) -> None:
        for _ in range(n):
            loop.run_until_complete(noop())

    def fiber_runs(n: int) -> None:
        for _ in range(n):
            loop.run_until_complete(asyncio.sleep(1e-6))  # must wait: goes through Trio

    def loops(n: int) -> None:
        for _ in range(n):
            lp = asyncio.new_event_loop()
            lp.run_until_complete(asyncio.sleep(0.0001))
            lp.close()

    def fibers(n: int) -> None:
        for _ in range(n):
            Fiber(noop_fn).switch()

    phase("run_until_complete(noop()), caller's stack", 500_000 // scale, fast_runs)
    phase("run_until_complete(sleep(1e-6)), via the fiber", 500_000 // scale, fiber_runs)
    loop.close()
    phase("new_event_loop() + run + close()", 10_000 // scale, loops)
    phase("Fiber create + switch + finish", 100_000 // scale, fibers)


def noop_fn() -> None:
    pass


if __name__ == "__main__":
    main()
