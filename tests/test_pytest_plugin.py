"""The pytest plugin (issue 11), run on real pytest-asyncio and pytest-trio test files.

Each case writes a small test suite, runs it in a pytest subprocess (pytester) in one of
the modes (plugin off, ``-p trio_asyncio``, ``trio_asyncio_mode = true``) and asserts the
outcomes.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

ACTIVE_MODES = ["-p", "ini"]

ASYNCIO_SUITE = '''
import asyncio
import unittest

import pytest
import pytest_asyncio
import trio

import trio_asyncio


async def trio_double(x):
    await trio.sleep(0)
    return 2 * x


@pytest_asyncio.fixture
async def doubled():
    return await trio_asyncio.trio_as_aio(trio_double)(5)


@pytest.mark.asyncio
async def test_runs_on_the_sync_loop():
    assert isinstance(asyncio.get_running_loop(), trio_asyncio.SyncTrioEventLoop)


@pytest.mark.asyncio
async def test_awaits_trio_code():
    assert await trio_asyncio.trio_as_aio(trio_double)(21) == 42


@pytest.mark.asyncio
async def test_async_fixture_awaits_trio_code(doubled):
    assert doubled == 10


@pytest.mark.asyncio
async def test_loop_fixture_is_the_running_loop(loop):
    assert loop is asyncio.get_running_loop()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_scoped_loop_a(loop):
    assert loop is asyncio.get_running_loop()
    pytest.shared_loop = loop


@pytest.mark.asyncio(loop_scope="module")
async def test_module_scoped_loop_b(loop):
    assert loop is asyncio.get_running_loop() is pytest.shared_loop


def test_loop_fixture_in_a_sync_test(loop):
    assert isinstance(loop, trio_asyncio.SyncTrioEventLoop)
    assert loop.run_until_complete(trio_asyncio.trio_as_aio(trio_double, loop=loop)(3)) == 6


def test_plain_asyncio_run():
    async def main():
        assert isinstance(asyncio.get_running_loop(), trio_asyncio.SyncTrioEventLoop)
        return await trio_asyncio.trio_as_aio(trio_double)(4)

    assert asyncio.run(main()) == 8


class TestIsolated(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.value = await trio_asyncio.trio_as_aio(trio_double)(1)

    async def test_runs_on_the_sync_loop(self):
        assert isinstance(asyncio.get_running_loop(), trio_asyncio.SyncTrioEventLoop)
        assert self.value == 2
'''

TRIO_SUITE = '''
import asyncio

import pytest
import trio

import trio_asyncio


async def aio_add(a, b):
    await asyncio.sleep(0)
    return a + b


@pytest.fixture
async def aio_resource():
    return await trio_asyncio.aio_as_trio(aio_add)(1, 1)


@pytest.mark.trio
async def test_awaits_asyncio_code_without_fixtures():
    assert await trio_asyncio.aio_as_trio(aio_add)(2, 3) == 5


@pytest.mark.trio
async def test_asyncio_sees_the_open_loop():
    async def which():
        return asyncio.get_running_loop()

    loop = await trio_asyncio.aio_as_trio(which)()
    assert isinstance(loop, trio_asyncio.TrioEventLoop)


@pytest.mark.trio
async def test_loop_fixture_is_the_open_loop(loop):
    assert isinstance(loop, trio_asyncio.TrioEventLoop)
    assert loop is trio_asyncio.current_loop.get()


@pytest.mark.trio
async def test_trio_fixture_awaits_asyncio_code(aio_resource):
    assert aio_resource == 2


@pytest.mark.trio
async def test_clock_reaches_the_loop(autojump_clock):
    start = trio.current_time()
    await trio_asyncio.aio_as_trio(asyncio.sleep)(3600)
    assert trio.current_time() - start >= 3600


@pytest.mark.trio
async def test_nursery_fixture(nursery):
    done = trio.Event()

    async def child():
        await trio_asyncio.aio_as_trio(asyncio.sleep)(0)
        done.set()

    nursery.start_soon(child)
    await done.wait()
'''

TRIO_MODE_SUITE = '''
import asyncio

import trio_asyncio


async def test_unmarked_test_in_trio_mode(loop):
    async def aio_value():
        await asyncio.sleep(0)
        return 7

    assert await trio_asyncio.aio_as_trio(aio_value)() == 7
    assert isinstance(loop, trio_asyncio.TrioEventLoop)
'''

# Without the plugin, compatibility mode is not installed by pytest: nothing imports
# trio_asyncio, and asyncio tests run on asyncio's own loop.
INACTIVE_SUITE = '''
import asyncio
import sys

import pytest


@pytest.mark.asyncio
async def test_runs_on_asyncio_loop():
    assert "trio_asyncio" not in sys.modules
    assert type(asyncio.get_running_loop()).__name__ == "_UnixSelectorEventLoop"


def test_no_loop_fixture(request):
    with pytest.raises(pytest.FixtureLookupError):
        request.getfixturevalue("loop")


def test_plugin_module_loaded_but_inert(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("trio_asyncio")
    assert not pytestconfig.pluginmanager.has_plugin("trio_asyncio_active")
'''


def _run(pytester: pytest.Pytester, mode: str | None, *, ini: str = "") -> pytest.RunResult:
    lines = ["[pytest]", "asyncio_default_fixture_loop_scope = function", ini]
    args = ["-p", "no:cacheprovider", "-W", "error"]
    if mode == "ini":
        lines.append("trio_asyncio_mode = true")
    elif mode == "-p":
        args += ["-p", "trio_asyncio"]
    pytester.makeini("\n".join(lines))
    return pytester.runpytest_subprocess(*args)


@pytest.mark.parametrize("mode", ACTIVE_MODES)
def test_pytest_asyncio_suite_runs_on_the_sync_loop(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_aio=ASYNCIO_SUITE)
    result = _run(pytester, mode)
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["trio_asyncio: active*"])


@pytest.mark.parametrize("mode", ACTIVE_MODES)
def test_pytest_trio_suite_runs_inside_open_loop(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_trio=TRIO_SUITE)
    result = _run(pytester, mode)
    result.assert_outcomes(passed=6)


@pytest.mark.parametrize("mode", ACTIVE_MODES)
def test_pytest_trio_in_trio_mode(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_trio_mode=TRIO_MODE_SUITE)
    result = _run(pytester, mode, ini="trio_mode = true")
    result.assert_outcomes(passed=1)


def test_pytest_trio_suite_without_the_plugin_has_no_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_trio=TRIO_SUITE)
    result = _run(pytester, None)
    # Only the test that never touches asyncio... none: every test needs the loop.
    result.assert_outcomes(failed=5, errors=1)
    result.stdout.fnmatch_lines(["*You are not within a trio_asyncio loop*"])


def test_plugin_is_inert_unless_asked_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inactive=INACTIVE_SUITE)
    result = _run(pytester, None)
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("trio_asyncio: active*")


def test_explicit_other_runner_is_respected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_runner='''
import functools
import pytest
import trio
import trio_asyncio

calls = []

def my_run(fn, **kwargs):
    calls.append(fn)
    return trio.run(fn, **kwargs)

@pytest.mark.trio(run=my_run)
async def test_custom_runner():
    assert trio_asyncio.current_loop.get() is None

def test_custom_runner_was_used():
    assert len(calls) == 1
''')
    result = _run(pytester, "-p")
    result.assert_outcomes(passed=2)


def test_dash_p_loads_the_plugin_without_autoload(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_trio=TRIO_SUITE)
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "trio", "-p", "trio_asyncio")
    result.assert_outcomes(passed=6)
