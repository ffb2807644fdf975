from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator

import pytest

import trio_asyncio  # noqa: F401  (installs compatibility mode for every test)
from trio_asyncio._sync import SyncTrioEventLoop


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


@pytest.fixture(params=["stock", "ours"])
def any_loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """A stopped loop of each implementation: stock asyncio's and our sync loop."""
    loop: asyncio.AbstractEventLoop
    if request.param == "stock":
        loop = asyncio.SelectorEventLoop()
    else:
        loop = SyncTrioEventLoop()
    yield loop
    if not loop.is_closed():
        loop.close()
    gc.collect()


@pytest.fixture
def sync_loop() -> Iterator[SyncTrioEventLoop]:
    loop = SyncTrioEventLoop()
    yield loop
    if not loop.is_closed():
        loop.close()


# ---------------------------------------------------------------------------
# Running one asyncio coroutine function on each loop implementation (I/O tests)
# ---------------------------------------------------------------------------

#: stock asyncio's selector loop (the reference), our sync loop, our async loop.
AIO_IMPLS = ["stock", "sync", "async"]


class AioRunner:
    """``runner(coro_fn, *args)`` runs ``await coro_fn(*args)`` on a fresh loop of one
    implementation, closes the loop and returns the result.

    With ``check_fds`` (the default) the number of open fds after the loop is closed (and
    a GC pass) must equal the number before it was created.
    """

    def __init__(self, impl: str) -> None:
        self.impl = impl

    @property
    def ours(self) -> bool:
        return self.impl != "stock"

    def __call__(self, coro_fn, *args, timeout: float = 30.0, check_fds: bool = True):
        import trio

        expected_type = {
            "stock": asyncio.SelectorEventLoop,
            "sync": SyncTrioEventLoop,
            "async": trio_asyncio.TrioEventLoop,
        }[self.impl]

        async def checked():
            assert type(asyncio.get_running_loop()) is expected_type
            return await coro_fn(*args)

        gc.collect()
        before = open_fds()
        if self.impl == "async":

            async def main():
                with trio.fail_after(timeout):
                    return await trio_asyncio.aio_as_trio(checked)()

            result = trio_asyncio.run(main)
        else:
            if self.impl == "stock":
                loop = asyncio.SelectorEventLoop()
            else:
                loop = asyncio.new_event_loop()
                assert isinstance(loop, SyncTrioEventLoop)
            try:
                result = loop.run_until_complete(asyncio.wait_for(checked(), timeout))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
        gc.collect()
        if check_fds:
            assert open_fds() == before, "fd leak"
        return result


@pytest.fixture(params=AIO_IMPLS)
def aio_run(request: pytest.FixtureRequest) -> AioRunner:
    """Run an asyncio coroutine function on stock asyncio, our sync loop, our async loop."""
    return AioRunner(request.param)


@pytest.fixture(params=["sync", "async"])
def our_aio_run(request: pytest.FixtureRequest) -> AioRunner:
    """Like ``aio_run``, on our two loops only."""
    return AioRunner(request.param)
