"""The active part of the pytest plugin (registered by ``trio_asyncio_pytest`` on demand).

When active:

- compatibility mode is installed for the run (and removed afterwards if the run
  installed it), so ``asyncio.run``, :class:`asyncio.Runner` and
  :class:`unittest.IsolatedAsyncioTestCase` in tests make :class:`SyncTrioEventLoop`\\ s;
- pytest-asyncio (1.x with the ``pytest_asyncio_loop_factories`` hook) gets
  :func:`new_event_loop` as its one loop factory; older 1.x releases create their loops
  through compatibility mode;
- pytest-trio tests (marked ``trio``, or all async tests in ``trio_mode``) run with
  :func:`trio_asyncio.run`, i.e. inside :func:`open_loop`, fixtures included, unless their
  marker names a runner other than :func:`trio.run` (such as ``qtrio.run``);
- the ``loop`` fixture gives the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import trio

from . import _policy
from ._context import current_loop
from ._factory import new_event_loop
from ._loop import run as trio_asyncio_run

_installed_compat_mode = False


def activate(config: pytest.Config) -> None:
    """Prepare the run: install compatibility mode if it is not installed."""
    global _installed_compat_mode
    if not _policy.is_installed():
        _policy.install()
        _installed_compat_mode = True


def pytest_unconfigure(config: pytest.Config) -> None:
    global _installed_compat_mode
    if _installed_compat_mode:
        _policy.uninstall()
        _installed_compat_mode = False


def pytest_report_header(config: pytest.Config) -> str:
    return "trio_asyncio: active (asyncio tests on the sync loop, Trio tests in open_loop)"


@pytest.hookimpl(optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"trio_asyncio": new_event_loop}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # trylast: after pytest-trio's trio_mode marked the async tests.
    for item in items:
        if _is_trio_test(item):
            # pytest-trio takes the first marker that names a runner; put ours first.
            item.add_marker(pytest.mark.trio(run=trio_asyncio_run), append=False)


def _is_trio_test(item: pytest.Item) -> bool:
    if item.get_closest_marker("trio") is None:
        return False
    for marker in item.iter_markers("trio"):
        run = marker.kwargs.get("run")
        if run is not None:
            # An explicit runner other than Trio's own (qtrio.run, ...) is respected.
            return run is trio.run or run is trio_asyncio_run
    return True


def _asyncio_runner_fixture_name(item: pytest.Item) -> str | None:
    """The fixture holding the asyncio.Runner of a pytest-asyncio test, or None."""
    try:
        from pytest_asyncio import is_async_test
    except ImportError:  # pragma: no cover  (pytest-asyncio not installed)
        return None
    if not is_async_test(item):
        return None
    marker = item.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        scope = item.config.getini("asyncio_default_test_loop_scope") or "function"
    # pytest-asyncio's naming of its runner fixtures (see design/loops.md, private names).
    return f"_{scope}_scoped_runner"


@pytest.fixture
def loop(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The test's asyncio loop.

    In a pytest-trio test: the :func:`open_loop` loop the test runs in. In a
    pytest-asyncio test: the :class:`SyncTrioEventLoop` the test runs on. In a synchronous
    test: a new :class:`SyncTrioEventLoop`, set as the current event loop and closed
    after the test.
    """
    item = request.node
    if isinstance(item, pytest.Item) and _is_trio_test(item):
        yield request.getfixturevalue("_trio_asyncio_trio_loop")
        return
    runner_fixture = _asyncio_runner_fixture_name(item) if isinstance(item, pytest.Item) else None
    if runner_fixture is not None:
        runner: asyncio.Runner = request.getfixturevalue(runner_fixture)
        yield runner.get_loop()
        return
    new_loop = new_event_loop()
    asyncio.set_event_loop(new_loop)
    try:
        yield new_loop
    finally:
        asyncio.set_event_loop(None)
        new_loop.close()


def _trio_fixture(fn: Callable[..., Any]) -> Any:
    try:
        from pytest_trio import trio_fixture  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover  (pytest-trio not installed)
        return pytest.fixture(fn)
    return trio_fixture(fn)


@_trio_fixture
async def _trio_asyncio_trio_loop() -> Any:
    loop = current_loop.get()
    if loop is None:  # pragma: no cover  (the test runs in open_loop)
        raise RuntimeError("this Trio test does not run inside trio_asyncio.open_loop()")
    return loop
