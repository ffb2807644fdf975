"""Bad input gets exactly what stock asyncio gives (issue 14).

Every case runs on stock asyncio's selector loop, on our sync loop and on the ``open_loop``
loop, and the outcomes (exception type and message, or the result) must be equal. Where
stock asyncio's behaviour breaks its own loop we keep ours; those cases say so and are
listed in design/conformance.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import decimal
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import trio

import trio_asyncio
from trio_asyncio._sync import SyncTrioEventLoop

T = TypeVar("T")

Outcome = tuple[str, Any]
Case = Callable[[asyncio.AbstractEventLoop], Awaitable[Any]]


def _noop(*args: object, **kwargs: object) -> None:
    pass


class _FloatLike:
    def __float__(self) -> float:
        return 0.01


async def _call_soon_kw(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_soon(_noop, x=1)  # type: ignore[call-arg]


async def _call_soon_threadsafe_kw(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_soon_threadsafe(_noop, x=1)  # type: ignore[call-arg]


async def _call_later_kw(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_later(1, _noop, x=1)  # type: ignore[call-arg]


async def _call_at_kw(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_at(1, _noop, x=1)  # type: ignore[call-arg]


async def _call_later_str(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_later("x", _noop)  # type: ignore[arg-type]


async def _call_later_nan(loop: asyncio.AbstractEventLoop) -> Any:
    ran = loop.create_future()
    loop.call_later(math.nan, ran.set_result, "ran")
    return await asyncio.wait_for(ran, 5)


async def _nan_timer_among_others(loop: asyncio.AbstractEventLoop) -> Any:
    order: list[str] = []
    done = loop.create_future()
    loop.call_later(0.02, order.append, "0.02")
    loop.call_later(math.nan, order.append, "nan")
    loop.call_later(0.01, order.append, "0.01")
    loop.call_later(0.0, order.append, "0.0")
    loop.call_later(0.05, done.set_result, None)
    await done
    # Stock asyncio's heap compares with NaN, which scrambles the order of the other
    # timers ("0.0" after "0.01" and "0.02"): compare what ran, and check our order apart.
    return sorted(order)


async def _wait_for_nan(loop: asyncio.AbstractEventLoop) -> Any:
    return await asyncio.wait_for(asyncio.sleep(2, "result"), math.nan)


async def _call_later_decimal(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_later(decimal.Decimal("0.01"), _noop)  # type: ignore[arg-type]


async def _call_later_float_like(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_later(_FloatLike(), _noop)  # type: ignore[arg-type]


async def _add_reader_huge_fd(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.add_reader(2**40, _noop)


async def _add_writer_huge_fd(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.add_writer(2**40, _noop)


async def _call_soon_no_callback(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_soon()  # type: ignore[call-arg]


async def _call_soon_threadsafe_no_callback(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_soon_threadsafe()  # type: ignore[call-arg]


async def _call_soon_callback_twice(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.call_soon(_noop, callback=_noop)  # type: ignore[misc]


async def _call_soon_keywords_run(loop: asyncio.AbstractEventLoop) -> Any:
    # callback and context given by keyword, *args positionally after no callback: the
    # callback runs in the given context with no arguments
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outside")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inside")
    done = loop.create_future()
    loop.call_soon(context=ctx, callback=lambda: done.set_result(var.get()))
    loop.call_soon_threadsafe(callback=lambda *a: None)
    return await done


async def _call_soon_args_and_context(loop: asyncio.AbstractEventLoop) -> Any:
    done = loop.create_future()
    loop.call_soon(
        lambda *a: done.set_result(a), 1, "two", None, context=contextvars.copy_context()
    )
    return await done


async def _call_soon_not_callable(loop: asyncio.AbstractEventLoop) -> Any:
    # accepted at call time outside debug mode, as stock asyncio does; the error goes to
    # the exception handler when it runs
    h = loop.call_soon(42)  # type: ignore[arg-type]
    h.cancel()
    return h.cancelled()


async def _remove_reader_minus_one(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.remove_reader(-1)


async def _remove_writer_minus_one(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.remove_writer(-1)


async def _remove_reader_huge_fd(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.remove_reader(2**40)


async def _set_default_executor_42(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.set_default_executor(42)  # type: ignore[arg-type]


async def _set_default_executor_process_pool(loop: asyncio.AbstractEventLoop) -> Any:
    pool = concurrent.futures.ProcessPoolExecutor(1)
    try:
        return loop.set_default_executor(pool)  # type: ignore[arg-type]
    finally:
        pool.shutdown()


CASES: dict[str, Case] = {
    "call_soon(f, x=1)": _call_soon_kw,
    "call_soon_threadsafe(f, x=1)": _call_soon_threadsafe_kw,
    "call_soon()": _call_soon_no_callback,
    "call_soon_threadsafe()": _call_soon_threadsafe_no_callback,
    "call_soon(f, callback=f)": _call_soon_callback_twice,
    "call_soon(context=c, callback=f)": _call_soon_keywords_run,
    "call_soon(f, 1, 'two', None, context=c)": _call_soon_args_and_context,
    "call_soon(42)": _call_soon_not_callable,
    "call_later(1, f, x=1)": _call_later_kw,
    "call_at(1, f, x=1)": _call_at_kw,
    "call_later('x', f)": _call_later_str,
    "call_later(nan, f)": _call_later_nan,
    "nan timer among others": _nan_timer_among_others,
    "wait_for(..., nan)": _wait_for_nan,
    "call_later(Decimal, f)": _call_later_decimal,
    "call_later(__float__ object, f)": _call_later_float_like,
    "add_reader(2**40, f)": _add_reader_huge_fd,
    "add_writer(2**40, f)": _add_writer_huge_fd,
    "remove_reader(-1)": _remove_reader_minus_one,
    "remove_writer(-1)": _remove_writer_minus_one,
    "remove_reader(2**40)": _remove_reader_huge_fd,
    "set_default_executor(42)": _set_default_executor_42,
    "set_default_executor(ProcessPoolExecutor())": _set_default_executor_process_pool,
}

#: Cases where stock asyncio breaks its own loop, with the outcome we keep instead
#: (design/conformance.md, "Bad input").
STOCK_BREAKS_ITS_LOOP: dict[str, tuple[tuple[int, int], Outcome]] = {
    # 3.13's selector turns the NaN timeout into ValueError out of run_forever.
    "call_later(nan, f)": ((3, 13), ("ok", "ran")),
    "wait_for(..., nan)": ((3, 13), ("TimeoutError", "")),
}


def _describe(result: Any) -> Any:
    if isinstance(result, asyncio.Handle):
        return type(result).__name__  # handles differ in repr (addresses, times)
    return result


def _run(impl: str, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``await body()`` on a fresh loop of one implementation, with no timer of our own
    in the loop's heap (stock asyncio's NaN timers only fire once they reach its top)."""
    if impl == "async":

        async def main() -> T:
            with trio.fail_after(30):
                return await trio_asyncio.aio_as_trio(body)()

        return trio_asyncio.run(main)
    loop = asyncio.SelectorEventLoop() if impl == "stock" else asyncio.new_event_loop()
    assert isinstance(loop, SyncTrioEventLoop) == (impl == "sync")
    try:
        return loop.run_until_complete(body())
    finally:
        loop.close()


def _outcome(impl: str, case: Case) -> Outcome:
    async def body() -> Outcome:
        loop = asyncio.get_running_loop()
        try:
            result = await case(loop)
        except Exception as exc:
            return (type(exc).__name__, str(exc))
        return ("ok", _describe(result))

    return _run(impl, body)


@pytest.mark.parametrize("impl", ["sync", "async"])
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_as_stock(name: str, impl: str) -> None:
    case = CASES[name]
    broken = STOCK_BREAKS_ITS_LOOP.get(name)
    if broken is not None and sys.version_info[:2] >= broken[0]:
        expected = broken[1]
    else:
        expected = _outcome("stock", case)
    assert _outcome(impl, case) == expected


@pytest.mark.parametrize("impl", ["sync", "async"])
def test_nan_timer_keeps_the_others_in_order(impl: str) -> None:
    """Ours runs a NaN timer at once and the others in time order (stock scrambles them)."""

    async def body() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        done = loop.create_future()
        loop.call_later(0.02, order.append, "0.02")
        loop.call_later(math.nan, order.append, "nan")
        loop.call_later(0.01, order.append, "0.01")
        loop.call_later(0.0, order.append, "0.0")
        handle = loop.call_at(math.nan, order.append, "at nan")
        assert math.isnan(handle.when())
        loop.call_later(0.05, done.set_result, None)
        await done
        return order

    assert _run(impl, body) == ["nan", "at nan", "0.0", "0.01", "0.02"]


@pytest.mark.parametrize("impl", ["sync", "async"])
def test_call_at_rejects_non_numbers_early(impl: str) -> None:
    """Stock accepts ``call_at('x', f)`` and then breaks ``run_forever`` (comparing 'x' with
    floats); we raise at the call (design/conformance.md)."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TypeError, match="must be real number, not str"):
            loop.call_at("x", _noop)  # type: ignore[arg-type]

    _run(impl, body)


@pytest.mark.parametrize("impl", ["stock", "sync", "async"])
def test_call_later_accepts_numbers_stock_accepts(impl: str) -> None:
    """Exact ints and floats, bools, and types whose ``float + x`` is a number."""
    import fractions

    async def body() -> int:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        count = 0

        def tick() -> None:
            nonlocal count
            count += 1
            if count == 4:
                done.set_result(None)

        loop.call_later(0, tick)
        loop.call_later(0.001, tick)
        loop.call_later(True, tick)
        loop.call_later(fractions.Fraction(1, 1000), tick)
        await done
        return count

    assert _run(impl, body) == 4
