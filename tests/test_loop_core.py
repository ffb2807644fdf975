"""LoopCore driven directly from Python, with a minimal asyncio subclass and a small
synchronous driver (the Trio driver lives in the loop classes, not here).

Mirrors ``src/py/loop_core.rs`` and ``src/py/handle.rs``; the pure-Rust parts
(``src/scheduler/``) have their own ``cargo test`` unit tests.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import random
import select
import signal
import socket
import sys
import threading
import time
import weakref
from asyncio import format_helpers
from typing import Any

import pytest

from trio_asyncio import _engine

IDLE, STOP, YIELD = _engine.RUN_IDLE, _engine.RUN_STOP, _engine.RUN_YIELD


class L(_engine.LoopCore, asyncio.BaseEventLoop):
    """The smallest useful loop: BaseEventLoop's Python parts + the Rust core."""

    def __init__(self) -> None:
        super().__init__()
        # Deterministic under `python -X dev` / PYTHONASYNCIODEBUG=1 too (which turn on
        # asyncio's debug mode): tests that want debug mode turn it on themselves.
        self.set_debug(False)
        self.errors: list[dict[str, Any]] = []

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def close(self) -> None:
        self._close_core()


class Bare(_engine.LoopCore):
    """No asyncio base, no __del__: for GC and fd tests."""


def drive(core: Any, timeout: float = 10.0) -> None:
    """Run `core` until stop(), sleeping on its poll fd when idle (test driver)."""
    deadline = time.monotonic() + timeout
    while (s := core._run_ready(0.01)) != STOP:
        assert time.monotonic() < deadline, "driver timed out"
        if s == IDLE:
            d = core._prepare_sleep()
            if d is None:
                t = deadline - time.monotonic()
            else:
                t = max(0.0, d - core.time())
            select.select([core._poll_fd()], [], [], max(0.0, min(t, 1.0)))
            core._end_sleep()
    core._clear_stopping()


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


@pytest.fixture
def loop():
    lp = L()
    yield lp
    lp.close()


def iteration(lp: Any) -> int:
    return lp.statistics().iterations


# --------------------------------------------------------------------------- ordering


def test_call_soon_is_fifo_and_additions_run_next_iteration(loop: L) -> None:
    log: list[tuple[str, int]] = []

    def cb(name: str) -> None:
        log.append((name, iteration(loop)))
        if name == "a":
            loop.call_soon(cb, "c")

    loop.call_soon(cb, "a")
    loop.call_soon(cb, "b")
    assert loop._ready_len() == 2
    assert loop._run_ready(1.0) == IDLE
    assert [n for n, _ in log] == ["a", "b", "c"]
    assert log[0][1] == log[1][1]
    assert log[2][1] == log[0][1] + 1


def test_due_timers_run_after_already_queued_callbacks(loop: L) -> None:
    log: list[str] = []
    loop.call_at(loop.time() - 1, log.append, "timer")
    loop.call_soon(log.append, "soon1")
    loop.call_soon(log.append, "soon2")
    loop._run_ready(1.0)
    assert log == ["soon1", "soon2", "timer"]


def test_timer_ties_fire_in_scheduling_order(loop: L) -> None:
    log: list[int] = []
    when = loop.time() - 0.5
    for i in range(200):
        loop.call_at(when, log.append, i)
    loop._run_ready(1.0)
    assert log == list(range(200))


def test_random_timers_never_fire_out_of_order(loop: L) -> None:
    now = [1000.0]
    loop._set_clock_callable(lambda: now[0])
    fired: list[tuple[float, int]] = []
    rnd = random.Random(42)
    for i in range(20_000):
        d = rnd.choice([0.0, 0.5, 1.0, rnd.random() * 10])
        loop.call_later(d, lambda w=now[0] + d, i=i: fired.append((w, i)))
    while len(fired) < 20_000:
        now[0] += rnd.random()
        loop._run_ready(1.0)
    assert fired == sorted(fired), "a timer fired out of (when, scheduling) order"
    assert loop._timers_len() == 0


def test_timer_fires_only_when_due(loop: L) -> None:
    now = [50.0]
    loop._set_clock_callable(lambda: now[0])
    assert loop.time() == 50.0
    log: list[str] = []
    h = loop.call_later(2, log.append, "t")
    assert h.when() == 52.0
    loop._run_ready(1.0)
    assert log == []
    now[0] = 51.999
    loop._run_ready(1.0)
    assert log == []
    now[0] = 52.0
    loop._run_ready(1.0)
    assert log == ["t"]
    loop._set_clock_offset(0.0)
    assert abs(loop.time() - time.monotonic()) < 0.01


def test_clock_offset(loop: L) -> None:
    loop._set_clock_offset(100.0)
    assert abs(loop.time() - (time.monotonic() + 100.0)) < 0.01
    assert loop._clock_resolution == time.get_clock_info("monotonic").resolution


# --------------------------------------------------------------------------- cancel


def test_cancel_handles(loop: L) -> None:
    log: list[str] = []
    h = loop.call_soon(log.append, "x")
    t = loop.call_later(-1, log.append, "t")
    assert not h.cancelled() and not h._cancelled
    assert t._scheduled
    h.cancel()
    t.cancel()
    h.cancel()  # idempotent
    assert h.cancelled() and h._callback is None and h._args is None
    assert loop.statistics().cancelled_timers == 1
    loop._run_ready(1.0)
    assert log == []
    assert loop._timers_len() == 0
    assert loop.statistics().cancelled_timers == 0
    assert not t._scheduled


def test_cancel_during_iteration_skips_the_handle(loop: L) -> None:
    log: list[str] = []
    later: list[Any] = []
    loop.call_soon(lambda: later[0].cancel())
    later.append(loop.call_soon(log.append, "never"))
    loop._run_ready(1.0)
    assert log == []


def test_timer_compaction_keeps_the_heap_small(loop: L) -> None:
    handles = [loop.call_later(1000 + i, lambda: None) for i in range(100_000)]
    assert loop._timers_len() == 100_000
    for h in handles:
        h.cancel()
    # asyncio's rule: rebuilt whenever more than half of > 100 entries are cancelled.
    assert loop._timers_len() <= 101
    keep = loop.call_later(5, lambda: None)
    for h in [loop.call_later(2000, lambda: None) for _ in range(1000)]:
        h.cancel()
    loop._run_ready(1.0)
    st = loop.statistics()
    assert st.timers <= 101 and st.cancelled_timers <= 101
    assert loop._prepare_sleep() == keep.when()
    loop._end_sleep()


# --------------------------------------------------------------------------- errors in callbacks


def test_exceptions_go_to_call_exception_handler(loop: L) -> None:
    log: list[str] = []

    def boom(x: int) -> None:
        raise ValueError(x)

    h = loop.call_soon(boom, 7)
    loop.call_soon(log.append, "after")
    assert loop._run_ready(1.0) == IDLE
    assert log == ["after"]
    [ctx] = loop.errors
    assert ctx["message"] == "Exception in callback " + format_helpers._format_callback_source(boom, (7,))
    assert isinstance(ctx["exception"], ValueError) and ctx["exception"].args == (7,)
    assert ctx["exception"].__traceback__ is not None
    assert ctx["handle"] is h
    assert "source_traceback" not in ctx


def test_base_exceptions_other_than_exit_and_ki_are_reported(loop: L) -> None:
    class Custom(BaseException):
        pass

    def boom() -> None:
        raise Custom

    loop.call_soon(boom)
    loop._run_ready(1.0)
    assert isinstance(loop.errors[0]["exception"], Custom)


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_exit_and_keyboard_interrupt_propagate_and_keep_the_rest_queued(loop: L, exc: type) -> None:
    log: list[str] = []

    def boom() -> None:
        raise exc

    loop.call_soon(log.append, "1")
    loop.call_soon(boom)
    loop.call_soon(log.append, "2")
    loop.call_soon(log.append, "3")
    with pytest.raises(exc):
        loop._run_ready(1.0)
    assert log == ["1"]
    assert loop._ready_len() == 2
    assert loop._run_ready(1.0) == IDLE
    assert log == ["1", "2", "3"]
    assert loop.errors == []


def test_errors_from_the_exception_handler_propagate() -> None:
    class Strict(Bare):
        def call_exception_handler(self, context: dict[str, Any]) -> None:
            raise RuntimeError("handler failed")

    lp = Strict()
    lp.call_soon(lambda: 1 / 0)
    with pytest.raises(RuntimeError, match="handler failed"):
        lp._run_ready(1.0)
    lp._close_core()


def test_default_asyncio_exception_handler_logs(caplog: pytest.LogCaptureFixture) -> None:
    class Plain(_engine.LoopCore, asyncio.BaseEventLoop):
        pass

    lp = Plain()
    lp.call_soon(lambda: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        lp._run_ready(1.0)
    assert "Exception in callback" in caplog.text
    assert "ZeroDivisionError" in caplog.text
    lp._close_core()


# --------------------------------------------------------------------------- stop


def test_stop_finishes_the_iteration_and_returns_stop(loop: L) -> None:
    log: list[str] = []

    def stopper() -> None:
        log.append("stopper")
        loop.stop()
        loop.call_soon(log.append, "next-iteration")

    loop.call_soon(stopper)
    loop.call_soon(log.append, "same-iteration")
    assert loop._run_ready(1.0) == STOP
    assert log == ["stopper", "same-iteration"]
    assert loop._is_stopping() and loop._stopping
    assert loop._run_ready(1.0) == STOP, "the flag stays set until cleared"
    assert log == ["stopper", "same-iteration", "next-iteration"]
    loop._clear_stopping()
    assert not loop._is_stopping()
    assert loop._run_ready(1.0) == IDLE


def test_stop_before_running_runs_one_iteration(loop: L) -> None:
    log: list[str] = []
    loop.call_soon(lambda: (log.append("a"), loop.call_soon(log.append, "b")))
    loop.stop()
    assert loop._run_ready(1.0) == STOP
    assert log == ["a"]
    loop._stopping = False
    assert not loop._is_stopping()


def test_budget_yields(loop: L) -> None:
    def again() -> None:
        loop.call_soon(again)

    loop.call_soon(again)
    t0 = time.monotonic()
    assert loop._run_ready(0.02) == YIELD
    assert time.monotonic() - t0 < 1.0
    assert loop._run_ready(0.0) == YIELD
    assert loop._ready_len() == 1


def test_driver_runs_until_stop(loop: L) -> None:
    log: list[float] = []
    loop.call_later(0.05, lambda: (log.append(loop.time()), loop.stop()))
    t0 = loop.time()
    drive(loop)
    assert log and log[0] - t0 >= 0.05 - 1e-3


# --------------------------------------------------------------------------- readers and writers


def test_readers_are_level_triggered(loop: L) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    calls: list[int] = []

    def on_readable() -> None:
        calls.append(iteration(loop))
        a.recv(1)  # read a part only: must be called again next iteration

    with a, b:
        h = loop._add_reader(a.fileno(), on_readable)
        assert isinstance(h, _engine.Handle)
        assert loop.statistics().readers == 1
        b.send(b"xyz")
        for _ in range(6):
            loop._run_ready(1.0)
        assert len(calls) == 3
        assert calls == sorted(set(calls)), "once per iteration"
        assert loop._remove_reader(a.fileno()) is True
        assert h.cancelled()
        assert loop._remove_reader(a.fileno()) is False


def test_writer_and_reader_on_one_fd(loop: L) -> None:
    a, b = socket.socketpair()
    log: list[str] = []
    with a, b:
        loop._add_writer(a, log.append, "w")  # objects with fileno() work too
        loop._add_reader(a.fileno(), log.append, "r")
        # An always-writable fd keeps the loop busy (level-triggered, as asyncio): a zero
        # budget runs exactly one iteration.
        assert loop._run_ready(0.0) == 2
        assert log == ["w"]
        b.send(b"x")
        log.clear()
        assert loop._run_ready(0.0) == 2
        assert loop._run_ready(0.0) == 2
        assert "r" in log and "w" in log
        assert log.count("r") <= log.count("w")  # never queued twice in one iteration
        regs = loop._fd_registrations()
        assert list(regs) == [a.fileno()]
        assert loop._reader_handle(a.fileno()) is regs[a.fileno()][0]
        assert loop._writer_handle(a.fileno()) is regs[a.fileno()][1]
        assert loop._remove_writer(a.fileno()) is True
        assert loop._remove_writer(a.fileno()) is False
        assert loop._writer_handle(a.fileno()) is None
        assert loop._remove_reader(a) is True
        assert loop._fd_registrations() == {}


def test_add_reader_replaces_and_cancels_the_previous_handle(loop: L) -> None:
    a, b = socket.socketpair()
    with a, b:
        h1 = loop._add_reader(a.fileno(), lambda: None)
        h2 = loop._add_reader(a.fileno(), lambda: None)
        assert h1.cancelled() and not h2.cancelled()
        assert loop.statistics().readers == 1
        loop._remove_reader(a.fileno())


def test_cancelled_registration_is_dropped_when_it_fires(loop: L) -> None:
    a, b = socket.socketpair()
    with a, b:
        h = loop._add_writer(a.fileno(), lambda: pytest.fail("cancelled writer ran"))
        h.cancel()
        assert loop.statistics().writers == 1
        loop._run_ready(1.0)
        assert loop.statistics().writers == 0


def test_bad_fds_raise_like_asyncio(loop: L) -> None:
    with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
        loop._add_reader(-1, lambda: None)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop._add_reader("nope", lambda: None)
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError) as info:
        loop._add_writer(fd, lambda: None)
    assert info.value.errno == 9  # EBADF
    assert loop.statistics().writers == 0
    # as asyncio's selector loop (issue 14): its get_key validates the fd
    with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
        loop._remove_reader(-1)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop._remove_reader("nope")
    with pytest.raises(OverflowError, match="^Python int too large to convert to C int$"):
        loop._add_reader(2**40, lambda: None)
    assert loop._remove_reader(2**40) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll refuses regular files")
def test_regular_file_is_refused_like_epoll_selector(loop: L, tmp_path: Any) -> None:
    with open(tmp_path / "f", "w") as f:
        with pytest.raises(PermissionError):
            loop._add_reader(f.fileno(), lambda: None)


def test_closed_fd_without_removal_then_reused(loop: L) -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    loop._add_reader(fd, lambda: None)
    a.close()
    b.close()
    c, d = socket.socketpair()
    with c, d:
        log: list[str] = []
        if c.fileno() == fd:
            loop._add_writer(fd, log.append, "w")
            loop._run_ready(0.0)  # one iteration: the writer stays ready
            assert log == ["w"]
        loop._remove_writer(fd)
        loop._remove_reader(fd)


def test_no_poll_syscall_without_registrations(loop: L) -> None:
    n = [0]

    def again() -> None:
        n[0] += 1
        if n[0] < 1000:
            loop.call_soon(again)

    loop.call_soon(again)
    while loop._run_ready(1.0) != IDLE:
        pass
    st = loop.statistics()
    assert st.iterations >= 1000 and st.polls == 0
    a, b = socket.socketpair()
    with a, b:
        loop._add_reader(a.fileno(), lambda: None)
        loop.call_soon(lambda: None)
        loop._run_ready(1.0)
        # one poll before the iteration, one before reporting IDLE
        assert loop.statistics().polls == 2
        loop._remove_reader(a.fileno())


# --------------------------------------------------------------------------- threads, sleep/wake


def test_sleep_protocol(loop: L) -> None:
    fd = loop._poll_fd()
    assert fd >= 0
    assert loop._prepare_sleep() is None
    assert loop.statistics().sleeping
    assert not readable(fd)
    before = loop.statistics().wakeups
    loop.call_soon(lambda: None)
    loop.call_soon(lambda: None)
    assert readable(fd)
    assert loop.statistics().wakeups == before + 1, "one wake-up write per sleep"
    loop._end_sleep()
    assert not readable(fd), "drained"
    assert not loop.statistics().sleeping
    # Work already queued: stay awake.
    assert loop._prepare_sleep() == 0.0
    assert not loop.statistics().sleeping
    loop._run_ready(1.0)
    # Awake: producers make no system call.
    loop.call_soon(lambda: None)
    assert loop.statistics().wakeups == before + 1
    loop._run_ready(1.0)
    # Timers give the deadline; a new timer while sleeping wakes.
    t = loop.call_at(loop.time() + 100, lambda: None)
    assert loop._prepare_sleep() == t.when()
    loop.call_later(1, lambda: None)
    assert readable(fd)
    loop._end_sleep()
    # stop() and add_reader while sleeping wake too.
    for action in (loop.stop, lambda: loop._add_reader(a.fileno(), lambda: None)):
        a, b = socket.socketpair()
        with a, b:
            loop._prepare_sleep()
            action()
            assert readable(fd)
            loop._end_sleep()
            loop._remove_reader(a.fileno())
        loop._clear_stopping()


def test_prepare_sleep_sees_stop_and_threadsafe_work(loop: L) -> None:
    loop.stop()
    assert loop._prepare_sleep() == 0.0
    loop._clear_stopping()
    loop._clear_owner_thread()
    loop._set_owner_thread(threading.get_ident() + 1)  # pretend we are another thread
    loop.call_soon_threadsafe(lambda: None)
    assert loop.statistics().threadsafe == 1
    assert loop._prepare_sleep() == 0.0
    loop._set_owner_thread()
    assert loop._owner_thread() == threading.get_ident()
    loop._run_ready(1.0)
    assert loop.statistics().threadsafe == 0


def test_call_soon_threadsafe_from_8_threads_loses_nothing(loop: L) -> None:
    n_threads, per_thread = 8, 10_000
    total = n_threads * per_thread
    seen: list[int] = [0] * n_threads
    count = [0]

    def cb(i: int) -> None:
        seen[i] += 1
        count[0] += 1
        if count[0] == total:
            loop.stop()

    start = threading.Barrier(n_threads + 1)

    def producer(i: int) -> None:
        start.wait()
        for k in range(per_thread):
            loop.call_soon_threadsafe(cb, i)
            if k % 1000 == 0:
                time.sleep(0.001)  # let the loop fall asleep now and then

    threads = [threading.Thread(target=producer, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    start.wait()
    drive(loop, timeout=60)
    for t in threads:
        t.join()
    assert seen == [per_thread] * n_threads
    assert loop.statistics().wakeups >= 1


def test_threadsafe_fifo_per_thread_and_from_owner(loop: L) -> None:
    log: list[str] = []
    loop.call_soon(log.append, "a")
    loop.call_soon_threadsafe(log.append, "b")
    loop.call_soon(log.append, "c")
    loop._run_ready(1.0)
    assert log == ["a", "b", "c"], "owner-thread call_soon_threadsafe keeps FIFO order"


def test_other_thread_non_debug_call_soon_is_routed_safely(loop: L) -> None:
    log: list[str] = []
    done = threading.Event()

    def other() -> None:
        loop.call_soon(log.append, "soon")
        loop.call_later(-1, log.append, "later")
        done.set()

    threading.Thread(target=other).start()
    done.wait(5)
    assert loop._ready_len() == 0 and loop._timers_len() == 0
    assert loop.statistics().threadsafe == 2
    loop._run_ready(1.0)
    assert log == ["soon", "later"]


def test_debug_mode_checks_the_thread(loop: L) -> None:
    loop.set_debug(True)
    assert loop._debug and loop.get_debug()
    errors: list[BaseException] = []
    msg = "Non-thread-safe operation invoked on an event loop other than the current one"

    def other() -> None:
        for f in (
            lambda: loop.call_soon(lambda: None),
            lambda: loop.call_later(60, lambda: None),
            lambda: loop.call_at(loop.time() + 60, lambda: None),
        ):
            try:
                f()
            except RuntimeError as e:
                errors.append(e)
        loop.call_soon_threadsafe(lambda: None)  # allowed

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert [str(e) for e in errors] == [msg] * 3
    loop._run_ready(1.0)
    loop.set_debug(False)


# --------------------------------------------------------------------------- argument errors


def test_closed_loop_raises() -> None:
    lp = L()
    lp.close()
    lp.close()  # twice is fine
    assert lp.is_closed() and lp._closed and lp._core_closed()
    for f in (
        lambda: lp.call_soon(print),
        lambda: lp.call_soon_threadsafe(print),
        lambda: lp.call_later(1, print),
        lambda: lp.call_at(1, print),
        lambda: lp._add_reader(0, print),
        lambda: lp._add_writer(0, print),
        lambda: lp._run_ready(1.0),
    ):
        with pytest.raises(RuntimeError, match="^Event loop is closed$"):
            f()
    assert lp._remove_reader(0) is False
    assert lp._remove_writer(0) is False
    assert lp._poll_fd() == -1


def test_bad_callbacks_in_debug_mode(loop: L) -> None:
    async def coro_func() -> None:
        pass

    loop.set_debug(True)
    coro = coro_func()
    try:
        for func in (coro_func, coro):
            for name, f in (
                ("call_soon", lambda: loop.call_soon(func)),
                ("call_soon_threadsafe", lambda: loop.call_soon_threadsafe(func)),
                ("call_at", lambda: loop.call_later(60, func)),
                ("call_at", lambda: loop.call_at(loop.time() + 60, func)),
            ):
                with pytest.raises(TypeError, match=rf"^coroutines cannot be used with {name}\(\)$"):
                    f()
        with pytest.raises(TypeError, match=r"^a callable object was expected by call_soon\(\), got 1$"):
            loop.call_soon(1)
    finally:
        coro.close()
        loop.set_debug(False)


def test_non_debug_mode_does_not_check_callbacks(loop: L) -> None:
    # asyncio checks callbacks only in debug mode; the error surfaces when it runs.
    loop.call_soon(1)
    loop._run_ready(1.0)
    assert isinstance(loop.errors[0]["exception"], TypeError)


def test_none_delay_and_when(loop: L) -> None:
    with pytest.raises(TypeError, match="^delay must not be None$"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match="^when cannot be None$"):
        loop.call_at(None, print)
    with pytest.raises(TypeError):
        loop.call_later("1", print)


def test_new_accepts_and_ignores_arguments() -> None:
    lp = Bare(1, 2, x=3)
    lp._close_core()
    lp = L()
    assert hasattr(lp, "__dict__")
    lp.custom = 1
    assert lp.custom == 1
    lp.close()


# --------------------------------------------------------------------------- handles


def test_handle_repr_matches_asyncio(loop: L) -> None:
    def cb(a: int, b: str) -> None:
        pass

    h = loop.call_soon(cb, 1, "x")
    ref = asyncio.Handle(cb, (1, "x"), loop)
    assert repr(h) == repr(ref)
    # (3.13 leaves the arguments out of a handle's repr outside debug mode)
    assert repr(h).startswith("<Handle test_handle_repr_matches_asyncio.<locals>.cb(")
    t = loop.call_at(123.5, cb, 2, "y")
    tref = asyncio.TimerHandle(123.5, cb, (2, "y"), loop)
    assert repr(t) == repr(tref)
    assert repr(t).startswith("<TimerHandle when=123.5 test_handle_repr_matches_asyncio.<locals>.cb(")
    h.cancel()
    t.cancel()
    ref.cancel()
    tref.cancel()
    assert repr(h) == repr(ref) == "<Handle cancelled>"
    assert repr(t) == repr(tref) == "<TimerHandle cancelled when=123.5>"


def test_debug_handles_record_where_they_were_created(loop: L) -> None:
    loop.set_debug(True)
    h = loop.call_soon(print); line = sys._getframe().f_lineno  # noqa: E702
    t = loop.call_later(10, print); tline = sys._getframe().f_lineno  # noqa: E702
    assert h._source_traceback[-1][:2] == (__file__, line)
    assert t._source_traceback[-1][:2] == (__file__, tline)
    assert repr(h).endswith(f"created at {__file__}:{line}>")
    h.cancel()
    assert h._repr is not None and "print()" in h._repr, "debug cancel keeps the repr"
    assert repr(h).startswith("<Handle cancelled print()")

    def boom() -> None:
        raise ValueError

    loop.call_soon(boom)
    loop._run_ready(1.0)
    assert loop.errors[0]["source_traceback"][-1][0] == __file__
    t.cancel()
    loop.set_debug(False)


def test_debug_mode_logs_slow_callbacks(loop: L, caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 0.0
    h = loop.call_soon(time.sleep, 0.001)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop._run_ready(1.0)
    assert f"Executing {h!r} took" in caplog.text
    assert loop._current_handle is None
    loop.set_debug(False)


def test_timer_handle_comparisons_like_asyncio(loop: L) -> None:
    def cb() -> None:
        pass

    h1 = loop.call_at(10.0, cb)
    h2 = loop.call_at(20.0, cb)
    h1b = loop.call_at(10.0, cb)
    assert isinstance(h1, _engine.TimerHandle) and isinstance(h1, _engine.Handle)
    assert h1 < h2 and h1 <= h2 and not h1 > h2 and not h1 >= h2
    assert h2 > h1 and h2 >= h1 and h1 != h2
    assert h1 == h1b and h1 <= h1b and h1 >= h1b
    assert hash(h1) == hash(10.0) == hash(h1b)
    assert len({h1, h1b, h2}) == 2
    h1b.cancel()
    assert h1 != h1b
    plain = loop.call_soon(cb)
    assert h1.__eq__(plain) is NotImplemented
    assert h1 != plain
    with pytest.raises(TypeError):
        h1 < ()  # noqa: B015
    assert h1.when() == h1._when == 10.0


def test_handle_attributes_and_run(loop: L) -> None:
    ctx = contextvars.copy_context()
    log: list[int] = []
    h = loop.call_soon(log.append, 5, context=ctx)
    assert h._callback == log.append and h._args == (5,)
    assert h._loop is loop and h._context is ctx and h.get_context() is ctx
    assert h._source_traceback is None and h._repr is None
    h._run()
    assert log == [5]
    h2 = _engine.Handle(log.append, (6,), loop)
    h2._run()
    assert log == [5, 6]
    t = _engine.TimerHandle(3.0, log.append, (7,), loop)
    assert t.when() == 3.0 and not t._scheduled


def test_handle_constructors_take_only_a_loop_core(loop: L) -> None:
    # The handle layer holds its loop through the core (no import of the loop class): a
    # handle made from Python keeps the loop object itself, and anything else is refused.
    h = _engine.Handle(print, (), loop)
    assert h._loop is loop
    t = _engine.TimerHandle(1.0, print, (), loop)
    assert t._loop is loop
    with pytest.raises(TypeError, match="LoopCore"):
        _engine.Handle(print, (), object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LoopCore"):
        _engine.TimerHandle(1.0, print, (), "not a loop")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- contextvars


def test_callbacks_run_in_their_context(loop: L) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    def look() -> None:
        seen.append(var.get())
        var.set("changed-by-callback")

    var.set("at-call-soon")
    loop.call_soon(look)  # copies the current context
    var.set("later")
    ctx = contextvars.Context()
    ctx.run(var.set, "explicit")
    loop.call_soon(look, context=ctx)
    loop.call_later(-1, look, context=ctx)
    loop._run_ready(1.0)
    assert seen == ["at-call-soon", "explicit", "changed-by-callback"]
    assert var.get() == "later", "callbacks never touch the caller's context"


def test_entering_an_entered_context_is_reported(loop: L) -> None:
    ctx = contextvars.copy_context()

    def inner() -> None:
        loop.call_soon(lambda: None, context=ctx)
        loop._run_ready(1.0)  # re-entrant run while `ctx` is entered

    loop.call_soon(inner, context=ctx)
    loop._run_ready(1.0)
    assert isinstance(loop.errors[0]["exception"], RuntimeError)


# --------------------------------------------------------------------------- resources


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_fd_leak_after_close() -> None:
    before = _fd_count()
    loops = [L() for _ in range(50)]
    assert _fd_count() >= before + 50
    for lp in loops:
        lp.close()
        lp.close()
    assert _fd_count() == before
    # Dropped without close: the fds go with the object.
    for _ in range(20):
        Bare()
    gc.collect()
    assert _fd_count() == before


def test_close_drops_everything() -> None:
    lp = L()
    a, b = socket.socketpair()
    with a, b:
        lp.call_soon(print)
        lp.call_later(10, print)
        lp._add_reader(a.fileno(), print)
        lp.close()
        st = lp.statistics()
        assert (st.ready, st.timers, st.readers, st.closed) == (0, 0, 0, True)


def test_loop_handle_cycles_are_collected() -> None:
    lp = Bare()
    lp.call_soon(lambda: lp)  # loop -> handle -> callback -> loop
    lp.call_later(10, lp.time)
    h = lp.call_soon(print)
    lp.myself = lp  # type: ignore[attr-defined]
    ref = weakref.ref(lp)
    href = weakref.ref(h)
    del lp, h
    gc.collect()
    assert ref() is None
    assert href() is None


def test_handle_is_weakrefable_and_collected(loop: L) -> None:
    h = loop.call_soon(print)
    r = weakref.ref(h)
    loop._run_ready(1.0)
    del h
    gc.collect()
    assert r() is None


def test_statistics_record(loop: L) -> None:
    st = loop.statistics()
    assert type(st).__name__ == "CoreStatistics"
    for name in ("ready", "timers", "cancelled_timers", "readers", "writers", "threadsafe",
                 "iterations", "callbacks", "polls", "wakeups", "sleeping", "closed"):
        assert hasattr(st, name)
    with pytest.raises(AttributeError):
        st.ready = 3  # type: ignore[misc]
    loop.call_soon(lambda: None)
    loop._run_ready(1.0)
    st2 = loop.statistics()
    assert st2.callbacks == st.callbacks + 1
    assert "CoreStatistics(ready=0" in repr(st2)


def test_handle_callable_from_python_is_checked_against_asyncio_loop_methods() -> None:
    """LoopCore's Rust methods take precedence over asyncio's by MRO."""
    for name in ("call_soon", "call_later", "call_at", "call_soon_threadsafe", "time", "stop",
                 "is_closed", "_add_reader", "_remove_reader", "_add_writer", "_remove_writer"):
        assert getattr(L, name) is getattr(_engine.LoopCore, name), name


# --------------------------------------------------------------------------- waiting in the core


def test_run_ready_wait_blocks_in_the_core_until_a_timer(loop: L) -> None:
    fired: list[float] = []

    def fire() -> None:
        fired.append(loop.time())
        loop.stop()

    when = loop.time() + 0.01
    loop.call_at(when, fire)
    polls = loop.statistics().polls
    assert loop._run_ready(0.0, True) == STOP  # the budget does not end a waiting batch
    assert fired and fired[0] >= when
    assert loop.statistics().polls == polls + 1, "one wait, no poll ahead and no second poll"
    loop._clear_stopping()


def test_run_ready_wait_wakes_for_threads_and_fds(loop: L) -> None:
    loop._clear_owner_thread()
    t = threading.Timer(0.01, loop.call_soon_threadsafe, (loop.stop,))
    t.start()
    assert loop._run_ready(0.0, True) == STOP
    t.join()
    loop._clear_stopping()
    a, b = socket.socketpair()
    with a, b:
        got: list[bytes] = []

        def on_readable() -> None:
            got.append(a.recv(10))
            loop.stop()

        loop._add_reader(a.fileno(), on_readable)
        t = threading.Timer(0.01, b.send, (b"x",))
        t.start()
        assert loop._run_ready(0.0, True) == STOP
        t.join()
        assert got == [b"x"]
        loop._remove_reader(a.fileno())
    loop._clear_stopping()


def test_run_ready_wait_returns_yield_on_interrupt(loop: L) -> None:
    loop.call_soon(loop._interrupt)
    assert loop._run_ready(0.0, True) == YIELD
    # An interrupt left over from a batch that did not wait is not carried into a wait.
    loop._interrupt()
    loop.call_soon(loop.stop)
    assert loop._run_ready(1.0) == STOP
    loop._clear_stopping()
    loop.call_later(0.01, loop.stop)
    assert loop._run_ready(0.0, True) == STOP
    loop._clear_stopping()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_run_ready_wait_runs_signal_handlers(loop: L) -> None:
    class Alarm(Exception):
        pass

    def on_alarm(signum: int, frame: object) -> None:
        raise Alarm

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        with pytest.raises(Alarm):
            loop._run_ready(0.0, True)  # nothing to do: blocks until the signal
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not loop.statistics().sleeping
    loop.call_soon(loop.stop)
    assert loop._run_ready(0.0, True) == STOP
    loop._clear_stopping()


def test_run_state_lives_in_the_core(loop: L) -> None:
    assert not loop.is_running()
    loop._begin_run(True)
    assert loop.is_running()
    assert loop._owner_thread() == threading.get_ident()
    with pytest.raises(RuntimeError, match="^This event loop is already running$"):
        loop._begin_run()
    loop.stop()
    loop._end_run(True)
    assert not loop.is_running() and not loop._stopping
    assert loop._owner_thread() is None


@pytest.mark.parametrize("name", ["call_soon", "call_soon_threadsafe"])
def test_call_soon_checks_its_self(name: str) -> None:
    # call_soon and call_soon_threadsafe are vectorcall method descriptors (fastcall.rs)
    # that trust CPython to hand them a LoopCore: called or bound with anything else,
    # they raise TypeError before any of their code runs.
    descriptor = vars(_engine.LoopCore)[name]
    for bad in (42, object(), asyncio.SelectorEventLoop):
        with pytest.raises(TypeError, match="doesn't apply to"):
            descriptor(bad, print)
        with pytest.raises(TypeError, match="doesn't apply to"):
            descriptor.__get__(bad)
    with pytest.raises(TypeError, match="needs an argument"):
        descriptor()


_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="outside")


@pytest.mark.parametrize("name", ["call_soon", "call_soon_threadsafe"])
def test_call_soon_keyword_names_match_by_value(loop: L, name: str) -> None:
    # keyword names that are equal strings but not the interned objects (3.11's C Task
    # builds its own "context") are recognized
    ctx = contextvars.copy_context()
    ctx.run(_VAR.set, "inside")
    seen: list[str] = []
    kwargs = {"".join(["call", "back"]): lambda: seen.append(_VAR.get()),
              "".join(["con", "text"]): ctx}
    getattr(loop, name)(**kwargs)
    assert loop._run_ready(1.0) == IDLE
    assert seen == ["inside"]


# --------------------------------------------------------------------------- spent handles
# A handle nobody else references is kept by its loop after it runs and handed out by the
# next call_soon (src/py/handle_pool.rs). None of that may be observable.


class _Held:
    """A callback owner whose death we can watch."""

    def __init__(self, log: list[object]) -> None:
        self.log = log

    def cb(self, *args: object) -> None:
        self.log.append(args)


def test_spent_handles_release_their_callback_args_and_context(loop: L) -> None:
    log: list[object] = []
    held, arg, ctx = _Held(log), _Held(log), contextvars.copy_context()
    refs = [weakref.ref(held), weakref.ref(arg), weakref.ref(ctx)]
    loop.call_soon(held.cb, arg, context=ctx)  # handle dropped at once, as a Task does
    del held, arg, ctx
    assert loop._run_ready(1.0) == IDLE
    assert len(log) == 1
    log.clear()
    assert [r() for r in refs] == [None, None, None]


def test_a_kept_handle_is_never_handed_out_again(loop: L) -> None:
    log: list[object] = []
    kept = loop.call_soon(log.append, "kept")
    loop.call_soon(log.append, "dropped")
    assert loop._run_ready(1.0) == IDLE
    new = [loop.call_soon(log.append, i) for i in range(3)]
    assert all(h is not kept for h in new)
    assert kept._callback == log.append and kept._args == ("kept",)
    kept.cancel()
    assert kept.cancelled() and not any(h.cancelled() for h in new)
    assert loop._run_ready(1.0) == IDLE
    assert log == ["kept", "dropped", 0, 1, 2]


def test_a_reused_handle_has_a_new_handles_state(loop: L) -> None:
    log: list[object] = []
    for i in range(3):
        h = loop.call_soon(log.append, i)
        h.cancel() if i == 1 else None
        del h
        loop._run_ready(1.0)
    ctx = contextvars.copy_context()
    h = loop.call_soon(log.append, "new", context=ctx)
    assert not h.cancelled()
    assert (h._callback, h._args, h._context) == (log.append, ("new",), ctx)
    assert "append" in repr(h) and "cancelled" not in repr(h)
    del h
    assert loop._run_ready(1.0) == IDLE
    assert log == [0, 2, "new"]


def test_a_weakly_referenced_spent_handle_dies(loop: L) -> None:
    log: list[int] = []
    ref = weakref.ref(loop.call_soon(log.append, 1))
    assert ref() is not None
    assert loop._run_ready(1.0) == IDLE
    assert log == [1]
    assert ref() is None  # not kept: a reuse would show through the weak reference


def test_dropping_a_spent_handles_callback_may_schedule(loop: L) -> None:
    # The callback's owner dies when the spent handle lets go of it, and its __del__ calls
    # call_soon, which may take that very handle.
    log: list[str] = []

    class Owner:
        def cb(self) -> None:
            log.append("ran")

        def __del__(self) -> None:
            loop.call_soon(log.append, "from __del__")

    loop.call_soon(Owner().cb)
    assert loop._run_ready(1.0) == IDLE
    assert log == ["ran", "from __del__"]


def test_a_loop_with_spent_handles_is_collected() -> None:
    lp = Bare()
    for _ in range(10):
        lp.call_soon(lambda: lp)  # loop -> handle -> callback -> loop, until it runs
    assert lp._run_ready(1.0) == IDLE
    lp.myself = lp  # type: ignore[attr-defined]
    ref = weakref.ref(lp)
    del lp
    gc.collect()
    assert ref() is None
