"""Deep recursion on the sync loop's fiber: runs where stock runs, raises instead of crashing
(issue 14).

Each case runs in a child process (a crash is a signal there, not a dead test run). The
recursion limit is raised after the loop's Trio run started (so the fiber's stack was
already chosen), either between runs or by the coroutine itself while it runs in the fiber.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import trio
    import trio_asyncio
    from trio_asyncio._fiber import current

    impl, limit, depth, when = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

    async def chain(n):
        return 0 if n == 0 else 1 + await chain(n - 1)

    async def start_trio():
        await trio_asyncio.trio_as_aio(trio.sleep)(0)

    async def main():
        await asyncio.sleep(0.001)  # the rest runs where the loop waits: in the fiber
        in_fiber = current() is not None
        assert in_fiber == (impl == "ours"), in_fiber
        if when == "inside":
            sys.setrecursionlimit(limit)
        try:
            return str(await chain(depth))
        except (RecursionError, MemoryError) as exc:
            return type(exc).__name__

    if impl == "ours":
        loop = asyncio.new_event_loop()
        loop.run_until_complete(start_trio())
    else:
        loop = asyncio.SelectorEventLoop()
    if when == "between":
        sys.setrecursionlimit(limit)
    print(loop.run_until_complete(main()))
    loop.close()
    """
)


def run_child(impl: str, limit: int, depth: int, when: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, impl, str(limit), str(depth), when],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout.strip()


@pytest.mark.parametrize("when", ["between", "inside"])
@pytest.mark.parametrize("limit", [20_000, 100_000])
def test_issue_14_deep_await_chain_runs_as_on_stock(limit: int, when: str) -> None:
    """A 6,000-deep await chain after the limit was raised: the result stock asyncio gives
    on the main thread (it runs on 3.11-3.13)."""
    expected = run_child("stock", limit, 6000, when)
    assert expected == "6000"
    assert run_child("ours", limit, 6000, when) == expected


@pytest.mark.parametrize("when", ["between", "inside"])
@pytest.mark.parametrize("limit", [20_000, 100_000])
def test_issue_14_unbounded_await_recursion_raises(limit: int, when: str) -> None:
    """Never SIGSEGV, whatever the limit and whenever it was raised. (Stock 3.11 crashes
    here at a limit of 100,000: the main thread's 8 MiB hold ~30,000 await levels.)"""
    assert run_child("ours", limit, 10**7, when) in ("RecursionError", "MemoryError")


DEPTH_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import trio
    import trio_asyncio

    def reach(n=0):
        try:
            return reach(n + 1)
        except RecursionError:
            return n

    def c_reach(n=0):
        try:
            return sum(map(c_reach, [n + 1]))
        except RecursionError:
            return n

    async def main():
        await asyncio.sleep(0.001)
        return reach(), c_reach()

    async def start_trio():
        await trio_asyncio.trio_as_aio(trio.sleep)(0)

    if sys.argv[1] == "ours":
        loop = asyncio.new_event_loop()
        loop.run_until_complete(start_trio())
    else:
        loop = asyncio.SelectorEventLoop()
    print(*loop.run_until_complete(main()))
    loop.close()
    """
)


def test_issue_14_fiber_starts_no_deeper_than_a_thread() -> None:
    """A coroutine on the sync loop's fiber can recurse at least as deep as the same
    coroutine on a stock loop in the main thread."""

    def reach(impl: str) -> list[int]:
        proc = subprocess.run(
            [sys.executable, "-c", DEPTH_CHILD, impl], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [int(x) for x in proc.stdout.split()]

    stock, ours = reach("stock"), reach("ours")
    assert ours[0] >= stock[0], (ours, stock)
    assert ours[1] >= stock[1], (ours, stock)
