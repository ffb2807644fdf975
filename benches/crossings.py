"""Python -> Rust crossings per ``run_until_complete``, counted with a profile hook.

``sys.setprofile`` reports a ``c_call`` event for every call from Python code into a
built-in; the ones whose target is a method of our engine (``trio_asyncio._engine``) are the
Python -> Rust crossings. Calls into the engine from C (asyncio's C ``Task`` calling
``loop.call_soon``) are not Python code and are not counted.

Usage::

    .venv/bin/python benches/crossings.py            # noop() and sleep(0) coroutines
    .venv/bin/python benches/crossings.py --n 200

Prints, per workload, the crossings per ``run_until_complete`` and the methods crossed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from typing import Any


def count(loop: asyncio.AbstractEventLoop, coro_fn: Any, n: int) -> Counter[str]:
    engine_types = {t for t in type(loop).__mro__ if t.__module__ == "trio_asyncio._engine"}
    counts: Counter[str] = Counter()

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            owner = getattr(arg, "__self__", None)
            if owner is loop and any(arg.__name__ in t.__dict__ for t in engine_types):
                counts[arg.__name__] += 1
            elif type(owner).__module__ == "trio_asyncio._engine":
                counts[f"{type(owner).__name__}.{arg.__name__}"] += 1

    loop.run_until_complete(coro_fn())  # warm-up (first run may start things)
    sys.setprofile(hook)
    try:
        for _ in range(n):
            loop.run_until_complete(coro_fn())
    finally:
        sys.setprofile(None)
    return counts


async def noop() -> None:
    pass


async def sleep0() -> None:
    await asyncio.sleep(0)


async def sleep_timer() -> None:
    await asyncio.sleep(0.0001)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100)
    a = p.parse_args(argv)
    import trio_asyncio  # noqa: F401  (installs the policy)

    for name, fn in [("noop()", noop), ("sleep(0)", sleep0), ("sleep(1e-4)", sleep_timer)]:
        loop = asyncio.new_event_loop()
        try:
            c = count(loop, fn, a.n)
        finally:
            loop.close()
        total = sum(c.values()) / a.n
        detail = ", ".join(f"{k} {v / a.n:g}" for k, v in c.most_common())
        print(f"run_until_complete({name:12}) {total:5.1f} crossings: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
