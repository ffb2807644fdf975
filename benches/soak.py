"""Soak test (by hand, not in CI): long runs of the sync loop, reporting RSS, open fds and
threads at the start, middle and end of each phase (issue 14).

    .venv/bin/python benches/soak.py            # full counts (a few minutes on 2 cores)
    .venv/bin/python benches/soak.py --scale 0.1

Phases (every loop is a ``SyncTrioEventLoop`` whose Trio run has started):

- ``run_until_complete``: 1,000,000 ``run_until_complete(noop())`` cycles on one loop;
- ``loop create/close``: 10,000 ``new_event_loop()`` + a run with Trio code + ``close()``;
- ``TCP``: 1,000 concurrent loopback connections (asyncio streams), each echoing 10 lines,
  on the sync loop and on an ``open_loop`` loop;
- ``timers``: 1,000,000 ``call_later`` timers (random delays up to 1 s), run until all fired,
  in order.

The numbers are taken after ``gc.collect()``: "start" after a warm-up, "middle" at half the
count, "end" after the last cycle. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import threading
import time
from collections.abc import Callable

import trio

import trio_asyncio

Sample = tuple[int, int, int]  # RSS KiB, fds, threads


def sample() -> Sample:
    gc.collect()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return rss, len(os.listdir("/proc/self/fd")), threading.active_count()


ROWS: list[tuple[str, int, float, Sample, Sample, Sample]] = []


def phase(name: str, count: int, step: Callable[[int], None], warmup: int) -> None:
    for i in range(warmup):
        step(i)
    start = sample()
    t0 = time.perf_counter()
    mid = start
    for i in range(count):
        step(i)
        if i == count // 2:
            mid = sample()
    elapsed = time.perf_counter() - t0
    end = sample()
    ROWS.append((name, count, elapsed, start, mid, end))
    print(f"{name}: {count} in {elapsed:.1f} s; start {start} middle {mid} end {end}", flush=True)


async def noop() -> None:
    pass


async def start_trio() -> None:
    await trio_asyncio.trio_as_aio(trio.sleep)(0)


def run_until_complete_phase(count: int) -> None:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(start_trio())
    phase("`run_until_complete(noop())`", count, lambda i: loop.run_until_complete(noop()), 1000)
    loop.close()


def create_close_phase(count: int) -> None:
    def step(i: int) -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(start_trio())
        loop.close()

    phase("`new_event_loop()` + Trio run + `close()`", count, step, 100)


async def tcp_round(connections: int) -> int:
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=connections)
    port = server.sockets[0].getsockname()[1]
    ready = asyncio.Event()
    opened = 0

    async def client(i: int) -> int:
        nonlocal opened
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened += 1
        if opened == connections:
            ready.set()
        await ready.wait()  # all connections open at once
        n = 0
        for k in range(10):
            writer.write(f"{i} {k}\n".encode())
            await writer.drain()
            n += (await reader.readline()) == f"{i} {k}\n".encode()
        writer.close()
        await writer.wait_closed()
        return n

    results = await asyncio.gather(*(client(i) for i in range(connections)))
    server.close()
    await server.wait_closed()
    await asyncio.gather(*handlers)  # 3.11's wait_closed() does not wait for them
    assert sum(results) == connections * 10, sum(results)
    return connections


def tcp_phase(connections: int, rounds: int) -> None:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(start_trio())
    phase(
        f"TCP, {connections} concurrent connections x 10 echoes (sync loop), rounds",
        rounds,
        lambda i: loop.run_until_complete(tcp_round(connections)),
        1,
    )
    loop.close()

    def async_round(i: int) -> None:
        async def main() -> None:
            await trio_asyncio.aio_as_trio(tcp_round)(connections)

        trio_asyncio.run(main)

    phase(
        f"TCP, {connections} concurrent connections x 10 echoes (open_loop), rounds",
        rounds,
        async_round,
        1,
    )


def timers_phase(count: int) -> None:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(start_trio())
    rng = random.Random(14)
    fired = 0
    last = -1.0
    in_order = True
    state: dict[str, Sample] = {}
    t0 = time.perf_counter()
    start = sample()

    def fire(when: float) -> None:
        nonlocal fired, last, in_order
        fired += 1
        in_order = in_order and when >= last
        last = when
        if fired == count // 2:
            state["mid"] = sample()
        if fired == count:
            loop.stop()

    now = loop.time()
    for _ in range(count):
        when = now + rng.random()
        loop.call_at(when, fire, when)
    loop.run_forever()
    elapsed = time.perf_counter() - t0
    assert in_order, "timers out of order"
    end = sample()
    loop.close()
    after_close = sample()
    ROWS.append((f"`call_at` timers, fired in order", count, elapsed, start, state["mid"], end))
    print(f"timers: {count} in {elapsed:.1f} s; start {start} middle {state['mid']} end {end}"
          f" after close {after_close}", flush=True)
    ROWS.append(("  the same loop, closed", 0, 0.0, start, end, after_close))


def report() -> None:
    print()
    print("| phase | count | time | start: RSS / fds / threads | middle | end |")
    print("|---|---|---|---|---|---|")
    for name, count, elapsed, start, mid, end in ROWS:
        cells = [f"{s[0] / 1024:.1f} MiB / {s[1]} / {s[2]}" for s in (start, mid, end)]
        print(f"| {name} | {count:,} | {elapsed:.1f} s | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", choices=["ruc", "loops", "tcp", "timers"], action="append")
    args = parser.parse_args()
    s = args.scale
    only = set(args.only or ["ruc", "loops", "tcp", "timers"])
    if "ruc" in only:
        run_until_complete_phase(int(1_000_000 * s))
    if "loops" in only:
        create_close_phase(int(10_000 * s))
    if "tcp" in only:
        tcp_phase(1000, max(2, int(10 * s)))
    if "timers" in only:
        timers_phase(int(1_000_000 * s))
    report()


if __name__ == "__main__":
    main()
