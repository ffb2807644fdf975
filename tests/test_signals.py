"""``add_signal_handler``/``remove_signal_handler`` on both our loops and stock asyncio."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from conftest import AioRunner, open_fds
from trio_asyncio._sync import SyncTrioEventLoop


@pytest.fixture(autouse=True)
def restore_signal_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_handler_runs_on_the_loop(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        got: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

        def cb(*args: Any) -> None:
            assert asyncio.get_running_loop() is loop
            assert threading.current_thread() is threading.main_thread()
            got.put_nowait(args)

        loop.add_signal_handler(signal.SIGUSR1, cb, "one", 1)
        loop.add_signal_handler(signal.SIGUSR2, cb, "two")
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert got.empty()  # a loop callback, never run inside the signal handler
            assert await got.get() == ("one", 1)
            os.kill(os.getpid(), signal.SIGUSR2)
            assert await got.get() == ("two",)
            # replacing a handler
            loop.add_signal_handler(signal.SIGUSR1, cb, "three")
            os.kill(os.getpid(), signal.SIGUSR1)
            assert await got.get() == ("three",)
            # many signals: at least one delivery, each one a separate callback
            for _ in range(5):
                os.kill(os.getpid(), signal.SIGUSR2)
            assert await got.get() == ("two",)
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1) is True
            assert loop.remove_signal_handler(signal.SIGUSR2) is True

    aio_run(body)


def test_handler_wakes_a_sleeping_loop(aio_run: AioRunner) -> None:
    """The signal arrives while the loop sleeps with nothing else to do."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        fired = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, fired.set_result, "yes")
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        try:
            assert await fired == "yes"
        finally:
            timer.join()
            loop.remove_signal_handler(signal.SIGUSR1)

    aio_run(body)


def test_remove_signal_handler(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
        with pytest.raises(ValueError):
            loop.remove_signal_handler(0)

    aio_run(body)


def test_sigint_handler_and_its_removal(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        fired = loop.create_future()
        before = signal.getsignal(signal.SIGINT)  # Trio's own handler inside Trio
        loop.add_signal_handler(signal.SIGINT, fired.set_result, "int")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            assert await fired == "int"
        finally:
            assert loop.remove_signal_handler(signal.SIGINT) is True
        assert signal.getsignal(signal.SIGINT) is before

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        aio_run(body)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    except KeyboardInterrupt:  # pragma: no cover
        pytest.fail("SIGINT raised KeyboardInterrupt instead of running the handler")


def test_signal_handler_errors(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()

        async def coro_fn() -> None:
            pass

        with pytest.raises(TypeError):
            loop.add_signal_handler(signal.SIGUSR1, coro_fn)
        coro = coro_fn()
        try:
            with pytest.raises(TypeError):
                loop.add_signal_handler(signal.SIGUSR1, coro)  # type: ignore[arg-type]
        finally:
            coro.close()
        for bad in (0, -1, signal.NSIG, 10_000):
            with pytest.raises(ValueError):
                loop.add_signal_handler(bad, lambda: None)
        with pytest.raises(TypeError):
            loop.add_signal_handler("SIGUSR1", lambda: None)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            loop.add_signal_handler(signal.SIGKILL, lambda: None)
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # nothing installed
        # from another thread
        with pytest.raises(RuntimeError):
            await loop.run_in_executor(None, loop.add_signal_handler, signal.SIGUSR1, print)
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        assert loop.remove_signal_handler(signal.SIGUSR1) is False

    aio_run(body)


def test_close_removes_signal_handlers(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)

    aio_run(body)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handler_raising_goes_to_exception_handler(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        seen = loop.create_future()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            seen.set_result(context)

        def cb() -> None:
            raise ZeroDivisionError

        loop.set_exception_handler(handler)
        loop.add_signal_handler(signal.SIGUSR1, cb)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            context = await seen
            assert isinstance(context["exception"], ZeroDivisionError)
            assert context["message"].startswith("Exception in callback")
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
            loop.set_exception_handler(None)

    aio_run(body)


# ---------------------------------------------------------------------------
# Stopped loops (stock asyncio and our sync loop)
# ---------------------------------------------------------------------------


@pytest.fixture(params=["stock", "sync"])
def stoppable_loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.SelectorEventLoop() if request.param == "stock" else asyncio.new_event_loop()
    assert isinstance(loop, SyncTrioEventLoop) == (request.param == "sync")
    yield loop
    loop.close()


@pytest.mark.parametrize("added", ["stopped", "running"])
@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGINT])
def test_signal_while_stopped_is_delivered_on_next_run(
    stoppable_loop: asyncio.AbstractEventLoop, sig: int, added: str
) -> None:
    loop = stoppable_loop
    got: list[str] = []
    event = asyncio.Event()

    def cb() -> None:
        got.append("fired")
        event.set()

    async def add() -> None:
        loop.add_signal_handler(sig, cb)

    if added == "stopped":
        loop.run_until_complete(asyncio.sleep(0))  # starts the sync loop's Trio run
        loop.add_signal_handler(sig, cb)
    else:
        loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(add())
    try:
        os.kill(os.getpid(), sig)
        assert got == []
        loop.run_until_complete(asyncio.wait_for(event.wait(), 20))
        assert got == ["fired"]
        # and while running, after a stopped phase
        event.clear()

        async def kill_and_wait() -> None:
            os.kill(os.getpid(), sig)
            await asyncio.wait_for(event.wait(), 20)

        loop.run_until_complete(kill_and_wait())
        assert got == ["fired", "fired"]
    except KeyboardInterrupt:  # pragma: no cover
        pytest.fail("SIGINT raised KeyboardInterrupt instead of running the handler")
    finally:
        assert loop.remove_signal_handler(sig) is True


def test_handler_added_before_first_run(stoppable_loop: asyncio.AbstractEventLoop) -> None:
    loop = stoppable_loop
    fired = loop.create_future()
    loop.add_signal_handler(signal.SIGINT, fired.set_result, 1)
    try:

        async def main() -> Any:
            os.kill(os.getpid(), signal.SIGINT)
            return await asyncio.wait_for(fired, 20)

        assert loop.run_until_complete(main()) == 1
    except KeyboardInterrupt:  # pragma: no cover
        pytest.fail("SIGINT raised KeyboardInterrupt instead of running the handler")
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("add_side", ["caller", "fiber"])
@pytest.mark.parametrize("remove_side", ["caller", "fiber"])
def test_sync_loop_sigint_handler_on_both_sides_until_removed(
    add_side: str, remove_side: str
) -> None:
    """A SIGINT handler is in effect inside and outside runs of the sync loop; once it is
    removed, each side has its own handler back (Trio's inside, the default outside)."""
    loop = asyncio.new_event_loop()
    assert isinstance(loop, SyncTrioEventLoop)

    async def current() -> Any:
        return signal.getsignal(signal.SIGINT)

    def do(side: str, fn: Any, *args: Any) -> Any:
        if side == "caller":
            return fn(*args)

        async def on_loop() -> Any:
            return fn(*args)

        return loop.run_until_complete(on_loop())

    try:
        inside_before = loop.run_until_complete(current())
        outside_before = signal.getsignal(signal.SIGINT)
        assert outside_before is signal.default_int_handler
        do(add_side, loop.add_signal_handler, signal.SIGINT, print)
        ours = signal.getsignal(signal.SIGINT)
        assert ours not in (inside_before, outside_before)
        assert loop.run_until_complete(current()) == ours
        assert signal.getsignal(signal.SIGINT) == ours
        assert do(remove_side, loop.remove_signal_handler, signal.SIGINT) is True
        assert loop.run_until_complete(current()) is inside_before
        assert signal.getsignal(signal.SIGINT) is outside_before
    finally:
        loop.close()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---------------------------------------------------------------------------
# The signal wake-up fd: a signal whose C-level handler runs while the loop is about to
# block, or in another thread, must still end the loop's wait (the CI hang of
# test_subprocess.SubprocessFastWatcherTests.test_kill: a SIGCHLD that arrived between the
# loop's last bytecode and its poll(2) waited for a wake-up that never came).
# ---------------------------------------------------------------------------


def _current_wakeup_fd() -> int:
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


@pytest.mark.parametrize("trio_started", [False, True], ids=["no-trio-run", "trio-run"])
def test_signal_caught_by_another_thread_wakes_the_loop(
    stoppable_loop: asyncio.AbstractEventLoop, trio_started: bool
) -> None:
    """The main thread blocks SIGUSR1, so the kernel runs Python's C-level handler in a
    helper thread and the loop's poll(2) is not interrupted: only the wake-up fd can end it.
    Without one the loop sleeps until the 20 s fallback timer."""
    loop = stoppable_loop
    if trio_started:
        if not isinstance(loop, SyncTrioEventLoop):
            pytest.skip("a stock loop has no Trio run")
        loop.run_until_complete(loop.trio_as_future(trio.sleep, 0))
    got: list[str] = []

    def handler() -> None:
        got.append("handler")
        loop.stop()

    def fallback() -> None:
        got.append("timeout")
        loop.stop()

    def send() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        time.sleep(0.2)  # the main thread is parked in poll(2) by then (if not: no harm)
        os.kill(os.getpid(), signal.SIGUSR1)

    loop.add_signal_handler(signal.SIGUSR1, handler)
    timer = loop.call_later(20, fallback)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        sender = threading.Thread(target=send)
        sender.start()
        loop.run_forever()
        sender.join()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        timer.cancel()
        loop.remove_signal_handler(signal.SIGUSR1)
    assert got == ["handler"]


def test_wakeup_fd_is_set_while_the_loop_has_signal_handlers(
    stoppable_loop: asyncio.AbstractEventLoop,
) -> None:
    loop = stoppable_loop
    assert _current_wakeup_fd() == -1
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    try:
        fd = _current_wakeup_fd()
        assert fd != -1
        loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        assert loop.remove_signal_handler(signal.SIGUSR1)
        assert _current_wakeup_fd() == fd
        # runs of the loop leave it in place
        loop.run_until_complete(asyncio.sleep(0))
        assert _current_wakeup_fd() == fd
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.remove_signal_handler(signal.SIGUSR2)
    assert _current_wakeup_fd() == -1


def test_wakeup_fd_set_from_trio_code_on_the_sync_loop(sync_loop: SyncTrioEventLoop) -> None:
    """Added from a Trio task (on the fiber side, where Trio's wake-up fd is installed), the
    loop's own wake-up fd is in effect once the run returns, and gone after removal."""

    async def add() -> int:
        sync_loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        return _current_wakeup_fd()

    async def remove() -> int:
        assert sync_loop.remove_signal_handler(signal.SIGUSR1)
        return _current_wakeup_fd()

    inside = sync_loop.run_until_complete(sync_loop.trio_as_future(add))
    outside = _current_wakeup_fd()
    assert -1 not in (inside, outside)
    assert outside != inside  # Trio's inside, the loop's own outside
    assert sync_loop.run_until_complete(sync_loop.trio_as_future(remove)) == inside
    assert _current_wakeup_fd() == -1


@pytest.mark.skipif(sys.platform != "linux", reason="counts /proc/self/fd")
def test_close_releases_the_signal_wakeup_fds() -> None:
    before = open_fds()
    loop = asyncio.new_event_loop()
    assert isinstance(loop, SyncTrioEventLoop)
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    assert _current_wakeup_fd() == -1
    assert open_fds() == before
