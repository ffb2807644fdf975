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
