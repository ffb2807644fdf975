"""``InteractiveSession`` (issue 11): one sync loop whose Trio run lives across pieces of
top-level code (what the IPython extension and the console are built on)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest
import trio

from trio_asyncio._session import InteractiveSession


@pytest.fixture
def session() -> Iterator[InteractiveSession]:
    s = InteractiveSession()
    yield s
    s.close()
    assert s.loop.is_closed()


def test_a_piece_awaits_both_flavours_and_returns(session: InteractiveSession) -> None:
    async def piece() -> int:
        await trio.sleep(0)
        await asyncio.sleep(0)
        return 42

    assert session.run(piece()) == 42


def test_tasks_and_the_trio_run_outlive_a_piece(session: InteractiveSession) -> None:
    ticks: list[int] = []

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await trio.sleep(0.001)

    async def start() -> tuple[object, asyncio.Task[None]]:
        session.nursery.start_soon(ticker)
        return trio.lowlevel.current_trio_token(), asyncio.create_task(asyncio.sleep(3600))

    token, task = session.run(start())

    async def later() -> tuple[object, int]:
        before = len(ticks)
        await trio.sleep(0.02)
        return trio.lowlevel.current_trio_token(), len(ticks) - before

    same_token, progress = session.run(later())
    assert same_token is token
    assert progress > 0
    assert not task.done()
    session.close()
    assert task.cancelled()


def test_close_from_inside_a_piece_waits_for_its_end(session: InteractiveSession) -> None:
    async def piece() -> str:
        session.close()
        await trio.sleep(0)
        assert not session.loop.is_closed()
        return "done"

    assert session.run(piece()) == "done"
    assert session.loop.is_closed()


def test_sigint_cancels_the_piece_and_raises_keyboard_interrupt(
    session: InteractiveSession,
) -> None:
    async def piece() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await trio.sleep(3600)

    with pytest.raises(KeyboardInterrupt):
        session.run(piece())
    assert session.interrupted

    async def next_piece() -> str:
        await trio.sleep(0)
        return "alive"

    assert session.run(next_piece()) == "alive"
    assert not session.interrupted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_sigint_handler_added_by_the_code_is_kept(session: InteractiveSession) -> None:
    calls: list[int] = []

    async def piece() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, calls.append, 1)

    session.run(piece())
    assert signal.SIGINT in session.loop._signal_handlers
    session.loop.remove_signal_handler(signal.SIGINT)
