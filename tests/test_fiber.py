"""Tests for the fiber engine (src/fiber/, python/trio_asyncio/_fiber.py)."""

from __future__ import annotations

import contextvars
import gc
import os
import sys
import threading
import weakref

import pytest
import trio

from trio_asyncio._fiber import Fiber, FiberExit, current, fiber_statistics, suspend


def stats() -> dict[str, int]:
    return fiber_statistics()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(autouse=True)
def no_leaked_fibers():
    """Every test must leave no Fiber objects behind (except the deliberate leak test)."""
    gc.collect()
    before = stats()
    yield
    gc.collect()
    after = stats()
    assert after["live"] == before["live"], (before, after)


# ---------------------------------------------------------------- basics


def test_switch_suspend_values_both_ways() -> None:
    log = []

    def body(a, b, *, c):
        log.append(("start", a, b, c))
        x = suspend(a + b + c)
        log.append(("got", x))
        y = suspend(x * 2)
        return y + 1

    fib = Fiber(body, 1, 2, c=3)
    assert not fib.started and not fib.dead
    assert fib.switch("ignored") == 6
    assert fib.started and not fib.dead
    assert fib.switch(10) == 20
    assert fib.switch(100) == 101
    assert fib.dead and fib.started
    assert log == [("start", 1, 2, 3), ("got", 10)]


def test_default_values_are_none() -> None:
    def body():
        got = suspend()
        return got

    fib = Fiber(body)
    assert fib.switch() is None
    assert fib.switch() is None
    assert fib.dead


def test_stack_size_keyword_is_not_passed_to_fn() -> None:
    def body(**kw):
        return kw

    assert Fiber(body, stack_size=512 * 1024, x=1).switch() == {"x": 1}


def test_current() -> None:
    assert current() is None
    seen = []

    def body():
        seen.append(current())
        suspend()
        seen.append(current())

    fib = Fiber(body)
    fib.switch()
    assert current() is None
    fib.switch()
    assert seen == [fib, fib]


def test_nested_fibers() -> None:
    order = []

    def inner():
        assert current() is fi
        order.append("inner 1")
        x = suspend("from inner")
        order.append(f"inner 2 {x}")
        return "inner done"

    def outer():
        assert current() is fo
        r1 = fi.switch()
        assert current() is fo
        y = suspend(("outer", r1))
        r2 = fi.switch(y)
        return r2

    fi = Fiber(inner)
    fo = Fiber(outer)
    assert fo.switch() == ("outer", "from inner")
    assert fo.switch("hello") == "inner done"
    assert fo.dead and fi.dead
    assert order == ["inner 1", "inner 2 hello"]


# ---------------------------------------------------------------- errors


def test_switch_dead_fiber_raises() -> None:
    fib = Fiber(lambda: 1)
    assert fib.switch() == 1
    with pytest.raises(RuntimeError, match="dead"):
        fib.switch()
    with pytest.raises(RuntimeError, match="dead"):
        fib.throw(ValueError("x"))


def test_switch_running_fiber_raises() -> None:
    def body():
        with pytest.raises(RuntimeError, match="running"):
            me.switch()
        return "ok"

    me = Fiber(body)
    assert me.switch() == "ok"


def test_switch_fiber_on_resume_chain_raises() -> None:
    def inner():
        with pytest.raises(RuntimeError, match="running"):
            fo.switch()
        with pytest.raises(RuntimeError, match="running"):
            fo.throw(ValueError())
        return "inner ok"

    def outer():
        return fi.switch()

    fi = Fiber(inner)
    fo = Fiber(outer)
    assert fo.switch() == "inner ok"


def test_suspend_outside_fiber_raises() -> None:
    with pytest.raises(RuntimeError, match="outside a fiber"):
        suspend(1)


def test_fiber_error_inside_a_fiber_is_catchable() -> None:
    def body():
        done = Fiber(lambda: None)
        done.switch()
        try:
            done.switch()
        except RuntimeError as e:
            msg = str(e)
        return suspend(msg)

    fib = Fiber(body)
    assert "dead" in fib.switch()
    assert fib.switch(5) == 5


# ---------------------------------------------------------------- exceptions


def test_exception_propagates_with_fiber_frames() -> None:
    def inner_raiser():
        raise ValueError("boom")

    def middle():
        suspend()
        inner_raiser()

    fib = Fiber(middle)
    fib.switch()
    with pytest.raises(ValueError, match="boom") as ei:
        fib.switch()
    assert fib.dead
    names = []
    tb = ei.value.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert names == ["test_exception_propagates_with_fiber_frames", "middle", "inner_raiser"]


def test_fiber_frames_do_not_link_to_parent_frames() -> None:
    def body():
        f = sys._getframe()
        chain = []
        while f is not None:
            chain.append(f.f_code.co_name)
            f = f.f_back
        return chain

    def helper():
        return body()

    assert Fiber(helper).switch() == ["body", "helper"]


def test_exception_after_many_switches_keeps_parent_usable() -> None:
    def body():
        for i in range(100):
            suspend(i)
        raise KeyError("late")

    fib = Fiber(body)
    got = [fib.switch() for _ in range(100)]
    assert got == list(range(100))
    with pytest.raises(KeyError):
        fib.switch()


def test_throw_caught_inside() -> None:
    def body():
        try:
            suspend("waiting")
        except ValueError as e:
            return suspend(("caught", str(e)))

    fib = Fiber(body)
    fib.switch()
    assert fib.throw(ValueError("hey")) == ("caught", "hey")
    assert fib.switch("end") == "end"


def test_throw_uncaught_propagates_same_object() -> None:
    fib = Fiber(lambda: suspend())
    fib.switch()
    exc = LookupError("x")
    with pytest.raises(LookupError) as ei:
        fib.throw(exc)
    assert ei.value is exc
    assert fib.dead


def test_throw_exception_class() -> None:
    fib = Fiber(lambda: suspend())
    fib.switch()
    with pytest.raises(ValueError):
        fib.throw(ValueError)


def test_throw_into_unstarted_fiber() -> None:
    called = []
    fib = Fiber(called.append, 1)
    with pytest.raises(ZeroDivisionError):
        fib.throw(ZeroDivisionError("never started"))
    assert fib.dead and not fib.started
    assert called == []
    with pytest.raises(RuntimeError, match="dead"):
        fib.switch()


def test_fiber_exit_kills() -> None:
    log = []

    def body():
        try:
            suspend()
        finally:
            log.append("finally")

    fib = Fiber(body)
    fib.switch()
    assert fib.throw(FiberExit()) is None
    assert fib.dead and log == ["finally"]
    assert issubclass(FiberExit, BaseException) and not issubclass(FiberExit, Exception)


def test_fiber_exit_raised_inside_is_normal_finish() -> None:
    def body():
        raise FiberExit

    assert Fiber(body).switch() is None


# ---------------------------------------------------------------- per-fiber state


def test_exc_info_isolation() -> None:
    def body():
        assert sys.exc_info() == (None, None, None)
        try:
            raise KeyError("fiber")
        except KeyError:
            suspend("in handler")
            assert isinstance(sys.exc_info()[1], KeyError)
        return sys.exc_info()

    fib = Fiber(body)
    try:
        raise ValueError("parent")
    except ValueError:
        assert fib.switch() == "in handler"
        assert sys.exc_info()[0] is ValueError
    assert sys.exc_info() == (None, None, None)
    assert fib.switch() == (None, None, None)


var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")


def test_context_is_a_copy_taken_at_first_switch() -> None:
    def body():
        seen = var.get()
        var.set("fiber")
        again = suspend(seen)
        return (var.get(), again)

    token = var.set("at creation")
    try:
        fib = Fiber(body)
        var.set("at first switch")
        assert var.get() == "at first switch"  # prime the ContextVar cache
        assert fib.switch() == "at first switch"
        assert var.get() == "at first switch"  # the fiber's set did not leak out
        var.set("parent later")
        assert fib.switch("x") == ("fiber", "x")  # the parent's later set did not leak in
        assert var.get() == "parent later"
    finally:
        var.reset(token)


def test_context_per_fiber_interleaved() -> None:
    def body(name):
        var.set(name)
        for _ in range(3):
            suspend(var.get())
        return var.get()

    fibs = [Fiber(body, f"f{i}") for i in range(5)]
    for _ in range(4):
        results = [f.switch() for f in fibs]
        assert results == [f"f{i}" for i in range(5)]
        assert var.get() == "default"


def test_context_from_copy_context_run() -> None:
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    fib = Fiber(var.get)
    assert ctx.run(fib.switch) == "in ctx"


def test_threading_local_is_shared() -> None:
    loc = threading.local()
    loc.x = "parent"

    def body():
        seen = loc.x
        loc.y = "fiber"
        return seen

    assert Fiber(body).switch() == "parent"
    assert loc.y == "fiber"


# ---------------------------------------------------------------- tracing


@pytest.fixture
def restore_trace():
    old_trace, old_profile = sys.gettrace(), sys.getprofile()
    yield
    sys.settrace(old_trace)
    sys.setprofile(old_profile)


def traced_a():
    return 1


def traced_b():
    return 2


def _make_tracer(calls):
    def tracer(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)
        return None

    return tracer


def test_settrace_set_before_start(restore_trace) -> None:
    calls: list[str] = []

    def body():
        traced_a()
        suspend()
        traced_b()

    fib = Fiber(body)
    sys.settrace(_make_tracer(calls))
    fib.switch()
    fib.switch()
    sys.settrace(None)
    assert "body" in calls and "traced_a" in calls and "traced_b" in calls


def test_settrace_set_while_suspended(restore_trace) -> None:
    calls: list[str] = []

    def body():
        traced_a()
        suspend()
        traced_b()

    fib = Fiber(body)
    fib.switch()
    sys.settrace(_make_tracer(calls))
    fib.switch()
    sys.settrace(None)
    assert "traced_a" not in calls
    assert "traced_b" in calls


def test_settrace_none_inside_fiber_stops_parent_tracing(restore_trace) -> None:
    calls: list[str] = []

    def body():
        sys.settrace(None)
        suspend()

    fib = Fiber(body)
    sys.settrace(_make_tracer(calls))
    fib.switch()
    traced_a()
    sys.settrace(None)
    fib.switch()
    assert "traced_a" not in calls


def test_setprofile_sees_fiber_calls(restore_trace) -> None:
    calls: list[str] = []

    def prof(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def body():
        suspend()
        traced_a()

    fib = Fiber(body)
    fib.switch()
    sys.setprofile(prof)
    fib.switch()
    sys.setprofile(None)
    assert "traced_a" in calls


# ---------------------------------------------------------------- recursion


def _rec(n):
    return 0 if n == 0 else 1 + _rec(n - 1)


def _inf(n):
    return _inf(n + 1)


def _c_rec(n):
    # C-mediated recursion: every level goes through map() and list() in C.
    return list(map(_c_rec, [n + 1]))


def _c_rec_sorted(n):
    return sorted([n], key=lambda x: _c_rec_sorted(x + 1))


def test_recursion_error_in_fiber() -> None:
    with pytest.raises(RecursionError):
        Fiber(_inf, 0).switch()
    # the parent's depth is unchanged: it can still recurse close to the limit
    assert _rec(sys.getrecursionlimit() - 50) == sys.getrecursionlimit() - 50


@pytest.mark.parametrize("fn", [_c_rec, _c_rec_sorted])
@pytest.mark.parametrize("stack_size", [None, 256 * 1024])
def test_c_recursion_in_fiber_raises_not_crashes(fn, stack_size) -> None:
    with pytest.raises(RecursionError):
        Fiber(fn, 0, stack_size=stack_size).switch()


def test_raised_recursion_limit_deep_recursion() -> None:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        assert Fiber(_rec, 9_000).switch() == 9_000
        with pytest.raises(RecursionError):
            Fiber(_c_rec, 0).switch()
    finally:
        sys.setrecursionlimit(old)


def test_recursion_depth_restored_after_suspend_deep() -> None:
    def deep(n):
        if n == 0:
            return suspend("bottom")
        return deep(n - 1)

    fib = Fiber(deep, 500)
    assert fib.switch() == "bottom"
    # while the fiber sits 500 frames deep, the parent still has its full budget
    assert _rec(sys.getrecursionlimit() - 50) == sys.getrecursionlimit() - 50
    assert fib.switch("up") == "up"


# ---------------------------------------------------------------- trio


def test_trio_run_inside_fiber() -> None:
    N = 10_000

    def deep(n, v):
        if n == 0:
            return suspend(("req", v))
        return deep(n - 1, v)

    async def main():
        send, recv = trio.open_memory_channel(0)
        results = []

        async def producer():
            async with send:
                for i in range(N):
                    await send.send(i)
                    if i % 2_000 == 0:
                        await trio.sleep(0.001)

        async def consumer():
            async with recv:
                async for i in recv:
                    results.append(deep(30, i))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            nursery.start_soon(consumer)
        return results

    fib = Fiber(trio.run, main)
    out = fib.switch()
    count = 0
    while not fib.dead:
        tag, v = out
        assert tag == "req" and v == count
        out = fib.switch(v * 3)
        count += 1
    assert count == N
    assert out == [i * 3 for i in range(N)]

    # the thread's trio state is clean again: trio.run works in the parent
    async def after():
        await trio.sleep(0)
        return "after"

    assert trio.run(after) == "after"


# ---------------------------------------------------------------- many fibers, memory


def test_thousand_fibers_round_robin() -> None:
    def worker(i):
        total = 0
        for k in range(10):
            total += suspend((i, k))
        return total

    fibs = [Fiber(worker, i) for i in range(1000)]
    for k in range(10):
        got = [f.switch(1) for f in fibs]
        if k == 0:
            assert got == [(i, 0) for i in range(1000)]
        else:
            assert got == [(i, k) for i in range(1000)]
    assert [f.switch(i) for i, f in enumerate(fibs)] == [9 + i for i in range(1000)]
    assert all(f.dead for f in fibs)


def test_create_and_finish_100k_fibers_flat_rss() -> None:
    def body(x):
        return suspend(x) + 1

    def run(n):
        for i in range(n):
            f = Fiber(body, i)
            assert f.switch() == i
            assert f.switch(i) == i + 1

    run(10_000)  # warm-up: pool, allocator arenas
    gc.collect()
    before, rss0 = stats(), rss_bytes()
    run(100_000)
    gc.collect()
    after, rss1 = stats(), rss_bytes()
    assert after["finished"] - before["finished"] == 100_000
    assert after["mapped_stacks"] <= before["mapped_stacks"] + 1
    assert rss1 - rss0 < 4 * 1024 * 1024, (rss0, rss1)


def test_unfinished_fibers_killed_on_gc() -> None:
    finals = 0

    def deep(n):
        if n == 0:
            return suspend("deep")
        return deep(n - 1)

    def body():
        nonlocal finals
        try:
            deep(20)
        finally:
            finals += 1

    before = stats()
    for _ in range(20):
        fibs = [Fiber(body) for _ in range(1_000)]
        for f in fibs:
            assert f.switch() == "deep"
        del fibs, f
        gc.collect()
    after = stats()
    assert finals == 20_000
    assert after["killed"] - before["killed"] == 20_000
    assert after["leaked"] == before["leaked"]


def test_fiber_refusing_to_die_is_leaked_with_warning() -> None:
    def stubborn():
        while True:
            try:
                suspend("alive")
            except FiberExit:
                pass

    fib = Fiber(stubborn)
    fib.switch()
    before = stats()
    with pytest.warns(RuntimeWarning, match="leaked"):
        del fib
        gc.collect()
    assert stats()["leaked"] == before["leaked"] + 1


def test_gc_collects_cycle_through_args() -> None:
    class Box:
        pass

    b = Box()
    fib = Fiber(lambda box: None, b)
    b.fib = fib
    wr = weakref.ref(b)
    del b, fib
    gc.collect()
    assert wr() is None


def test_gc_collects_cycle_through_suspended_context() -> None:
    log = []

    def body():
        try:
            suspend()
        finally:
            log.append("finally")

    def make():
        fib = Fiber(body)
        ctx = contextvars.copy_context()
        ctx.run(var.set, fib)  # the fiber's context copy references the fiber
        ctx.run(fib.switch)

    make()
    gc.collect()
    assert log == ["finally"]


# ---------------------------------------------------------------- threads


def test_fibers_in_four_threads() -> None:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def counter(tid, j):
        total = 0
        while True:
            x = suspend(total)
            if x is None:
                return (tid, j, total)
            total += x

    def worker(tid):
        try:
            fibs = [Fiber(counter, tid, j) for j in range(20)]
            for f in fibs:
                f.switch()
            for k in range(100):
                for f in fibs:
                    f.switch(1)
            results[tid] = [f.switch(None) for f in fibs]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert results == {t: [(t, j, 100) for j in range(20)] for t in range(4)}


def test_fiber_used_from_another_thread_raises() -> None:
    fib = Fiber(lambda: suspend("started"))
    errors: list[str] = []

    def other():
        for op in (lambda: fib.switch(), lambda: fib.throw(ValueError())):
            try:
                op()
            except RuntimeError as e:
                errors.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert fib.switch() == "started"
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert fib.switch() is None and fib.dead
    assert len(errors) == 4 and all("other than the one that created it" in e for e in errors)


# ---------------------------------------------------------------- statistics


def test_statistics_counts() -> None:
    before = stats()
    fib = Fiber(lambda: suspend(1))
    assert stats()["live"] == before["live"] + 1
    fib.switch()
    fib.switch()
    after = stats()
    assert after["created"] == before["created"] + 1
    assert after["finished"] == before["finished"] + 1
    assert after["switches"] == before["switches"] + 2
    del fib
    assert stats()["live"] == before["live"]


def test_fn_is_positional_only() -> None:
    def body(**kw):
        return kw

    assert Fiber(body, fn=1).switch() == {"fn": 1}
