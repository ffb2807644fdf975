"""Trio tasks started by a loop (``_handles``): their futures and handles."""

from __future__ import annotations

import asyncio

import trio

import trio_asyncio


def test_issue_11_cancel_running_trio_task_future_while_sync_loop_is_stopped() -> None:
    # Found by the interactive session: a Trio task started on a sync loop is suspended
    # with the loop's Trio run; cancelling its future between runs must not need Trio.
    loop = trio_asyncio.new_event_loop()
    try:
        started = loop.create_future()
        finished = []

        async def sleeper() -> None:
            started.set_result(None)
            try:
                await trio.sleep_forever()
            finally:
                finished.append("unwound")

        future = loop.trio_as_future(sleeper)
        loop.run_until_complete(started)
        assert future.cancel()
        loop.run_until_complete(asyncio.sleep(0.01))
        assert finished == ["unwound"]
        assert future.cancelled()
    finally:
        loop.close()


def test_issue_11_cancel_trio_task_handle_while_sync_loop_is_stopped() -> None:
    loop = trio_asyncio.new_event_loop()
    try:
        started = loop.create_future()
        finished = []

        async def sleeper() -> None:
            started.set_result(None)
            try:
                await trio.sleep_forever()
            finally:
                finished.append("unwound")

        handle = loop.run_trio_task(sleeper)
        loop.run_until_complete(started)
        handle.cancel()
        assert handle.cancelled()
        loop.run_until_complete(asyncio.sleep(0.01))
        assert finished == ["unwound"]
    finally:
        loop.close()
