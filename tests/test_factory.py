"""The public loop factory and the compatibility-mode switch (issue 11)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
import trio

import trio_asyncio
from trio_asyncio import _policy


async def _trio_double(x: int) -> int:
    await trio.sleep(0)
    return 2 * x


async def _mixed_main() -> tuple[str, int]:
    await asyncio.sleep(0)
    doubled = await trio_asyncio.trio_as_aio(_trio_double)(21)
    return type(asyncio.get_running_loop()).__name__, doubled


def test_new_event_loop_is_a_stopped_sync_loop() -> None:
    loop = trio_asyncio.new_event_loop()
    try:
        assert isinstance(loop, trio_asyncio.SyncTrioEventLoop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert not loop.is_running() and not loop.is_closed()
    finally:
        loop.close()


def test_new_event_loop_returns_a_new_loop_each_time() -> None:
    a, b = trio_asyncio.new_event_loop(), trio_asyncio.new_event_loop()
    try:
        assert a is not b
    finally:
        a.close()
        b.close()


def test_runner_with_loop_factory_runs_asyncio_and_trio_code() -> None:
    with asyncio.Runner(loop_factory=trio_asyncio.new_event_loop) as runner:
        assert runner.run(_mixed_main()) == ("SyncTrioEventLoop", 42)
        # The same loop again: it is restartable.
        assert runner.run(_mixed_main()) == ("SyncTrioEventLoop", 42)
        loop = runner.get_loop()
    assert loop.is_closed()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run has loop_factory from 3.12")
def test_asyncio_run_with_loop_factory() -> None:
    result = asyncio.run(  # type: ignore[call-arg,unused-ignore]
        _mixed_main(), loop_factory=trio_asyncio.new_event_loop
    )
    assert result == ("SyncTrioEventLoop", 42)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.11 only")
def test_asyncio_run_has_no_loop_factory_on_3_11() -> None:
    # On 3.11 the route is asyncio.Runner (above) or compatibility mode (below).
    coro = _mixed_main()
    with pytest.raises(TypeError):
        asyncio.run(coro, loop_factory=trio_asyncio.new_event_loop)  # type: ignore[call-arg]
    coro.close()


def test_asyncio_run_in_compat_mode_uses_the_sync_loop() -> None:
    assert asyncio.run(_mixed_main()) == ("SyncTrioEventLoop", 42)


def test_public_names_are_in_all_and_importable() -> None:
    for name in trio_asyncio.__all__:
        assert hasattr(trio_asyncio, name), name
    for name in ("new_event_loop", "SyncTrioEventLoop", "install_compat_mode",
                 "uninstall_compat_mode"):
        assert name in trio_asyncio.__all__
        assert getattr(trio_asyncio, name).__module__ == "trio_asyncio"
        assert getattr(trio_asyncio, name).__doc__


def _run_python(code: str, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


_WITHOUT_COMPAT = """
    import asyncio, trio, trio_asyncio

    print(trio_asyncio._policy.is_installed())
    loop = asyncio.new_event_loop()
    print(type(loop).__name__)          # asyncio's own loop
    loop.close()

    async def trio_double(x):
        await trio.sleep(0)
        return 2 * x

    async def aio_main():
        return await trio_asyncio.trio_as_aio(trio_double)(4)

    with asyncio.Runner(loop_factory=trio_asyncio.new_event_loop) as runner:
        print(runner.run(aio_main()))

    async def aio_add(a, b):
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__name__, a + b

    async def trio_main():
        async with trio_asyncio.open_loop():
            return await trio_asyncio.aio_as_trio(aio_add)(2, 3)

    print(trio.run(trio_main))
"""


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_environment_variable_opts_out_of_compat_mode(value: str) -> None:
    out = _run_python(_WITHOUT_COMPAT, TRIO_ASYNCIO_COMPAT_MODE=value).split("\n")
    assert out[:4] == ["False", "_UnixSelectorEventLoop", "8", "('TrioEventLoop', 5)"]


def test_environment_variable_set_to_1_keeps_compat_mode() -> None:
    out = _run_python(
        "import asyncio, trio_asyncio\n"
        "print(type(asyncio.new_event_loop()).__name__)\n",
        TRIO_ASYNCIO_COMPAT_MODE="1",
    )
    assert out.strip() == "SyncTrioEventLoop"


def test_uninstall_and_reinstall_compat_mode() -> None:
    out = _run_python("""
        import asyncio, trio_asyncio
        originals = (asyncio.new_event_loop, asyncio.get_event_loop_policy)
        trio_asyncio.uninstall_compat_mode()
        trio_asyncio.uninstall_compat_mode()            # idempotent
        print(type(asyncio.new_event_loop()).__name__)
        print(type(asyncio.get_event_loop_policy()).__name__)
        trio_asyncio.install_compat_mode()
        print(type(asyncio.new_event_loop()).__name__)
        print((asyncio.new_event_loop, asyncio.get_event_loop_policy) == originals)
    """)
    assert out.split() == [
        "_UnixSelectorEventLoop", "_UnixDefaultEventLoopPolicy", "SyncTrioEventLoop", "True",
    ]


def test_uninstall_hands_a_users_policy_back_to_asyncio() -> None:
    out = _run_python("""
        import asyncio, trio_asyncio

        class MyPolicy(asyncio.DefaultEventLoopPolicy):
            pass

        asyncio.set_event_loop_policy(MyPolicy())
        trio_asyncio.uninstall_compat_mode()
        print(type(asyncio.get_event_loop_policy()).__name__)
    """)
    assert out.strip() == "MyPolicy"


def test_compat_mode_is_installed_in_this_process() -> None:
    assert _policy.is_installed()


def test_all_lists_exactly_the_public_names() -> None:
    import __future__
    import types

    public = {
        name for name, value in vars(trio_asyncio).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert sorted(trio_asyncio.__all__) == sorted(public)


def test_anyio_loop_factory_option() -> None:
    anyio = pytest.importorskip("anyio")
    result = anyio.run(
        _mixed_main, backend="asyncio",
        backend_options={"loop_factory": trio_asyncio.new_event_loop},
    )
    assert result == ("SyncTrioEventLoop", 42)
