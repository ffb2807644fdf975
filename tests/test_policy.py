"""Compatibility mode: asyncio's loop creation returns our sync loop outside Trio."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import unittest

import pytest
import trio

import trio_asyncio
from trio_asyncio._sync import SyncTrioEventLoop
from trio_asyncio._versions import PY312


def test_new_event_loop_is_ours() -> None:
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, SyncTrioEventLoop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


def test_get_event_loop_outside_trio() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        assert asyncio.get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_asyncio_run_uses_our_loop() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__name__

    assert asyncio.run(main()) == "SyncTrioEventLoop"


def test_runner_reuses_our_loop_across_calls() -> None:
    async def which() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    with asyncio.Runner() as runner:
        first = runner.run(which())
        second = runner.run(which())
    assert first is second
    assert isinstance(first, SyncTrioEventLoop)
    assert first.is_closed()


def test_isolated_async_test_case_runs_on_our_loop() -> None:
    seen: list[str] = []

    class Case(unittest.IsolatedAsyncioTestCase):
        async def asyncSetUp(self) -> None:
            seen.append("setup:" + type(asyncio.get_running_loop()).__name__)

        async def test_it(self) -> None:
            await asyncio.sleep(0.001)
            seen.append("test:" + type(asyncio.get_running_loop()).__name__)

    result = unittest.TestResult()
    Case("test_it").run(result)
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen == ["setup:SyncTrioEventLoop", "test:SyncTrioEventLoop"]


def test_user_policy_is_respected() -> None:
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        loop = asyncio.new_event_loop()
        try:
            assert not isinstance(loop, trio_asyncio.BaseTrioEventLoop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, SyncTrioEventLoop)
    finally:
        loop.close()


def test_bad_policy_type() -> None:
    with pytest.raises(TypeError, match="policy must be an instance of AbstractEventLoopPolicy"):
        asyncio.set_event_loop_policy(object())  # type: ignore[arg-type]


def test_inside_trio_without_loop_is_a_clear_error() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="no running event loop"):
            asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="trio-asyncio loop"):
            asyncio.get_event_loop()
        with pytest.raises(RuntimeError, match="open_loop"):
            asyncio.new_event_loop()

    trio.run(main)


def test_inside_open_loop_the_loop_is_current() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:
            assert asyncio.get_event_loop() is loop
            assert asyncio.get_running_loop() is loop
            assert trio_asyncio.current_loop.get() is loop

    trio.run(main)


def test_import_emits_no_warnings() -> None:
    subprocess.run([sys.executable, "-W", "error", "-c", "import trio_asyncio"], check=True)


def test_pytest_asyncio_runs_on_our_loop(tmp_path: "pytest.TempPathFactory") -> None:
    test_file = tmp_path / "test_inner.py"  # type: ignore[operator]
    test_file.write_text(
        textwrap.dedent(
            """
            import asyncio
            import pytest
            import trio_asyncio

            @pytest.mark.asyncio
            async def test_loop_type():
                await asyncio.sleep(0)
                assert type(asyncio.get_running_loop()).__name__ == "SyncTrioEventLoop"
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:trio", "-p", "no:cacheprovider",
         "-o", "asyncio_default_fixture_loop_scope=function", str(test_file)],
        capture_output=True, text=True, cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_ipython_autoawait_cells_run_on_our_loop() -> None:
    cells = textwrap.dedent(
        """
        import asyncio, trio_asyncio
        async def tick(n):
            await asyncio.sleep(0.001)
            return n
        print("CELL1", type(asyncio.get_event_loop()).__name__)
        r = await tick(1); print("CELL2", r, type(asyncio.get_running_loop()).__name__)
        task = asyncio.ensure_future(tick(5)); await asyncio.sleep(0)
        print("CELL4", await task, await tick(2))
        await asyncio.sleep(0); print("CELL5", type(asyncio.get_running_loop()).__name__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor",
         "--HistoryManager.enabled=False", "--simple-prompt"],
        input=cells, capture_output=True, text=True, timeout=120,
    )
    out = result.stdout
    assert "CELL1 SyncTrioEventLoop" in out, out + result.stderr
    assert "CELL2 1 SyncTrioEventLoop" in out, out + result.stderr
    assert "CELL4 5 2" in out, out + result.stderr
    assert "CELL5 SyncTrioEventLoop" in out, out + result.stderr


@pytest.mark.skipif(not PY312, reason="the implicit-loop DeprecationWarning is 3.12+")
@pytest.mark.parametrize("user_policy", [False, True])
def test_no_current_loop_warning_names_the_callers_line(user_policy: bool) -> None:
    # asyncio attributes the warning to the first frame outside asyncio: our stand-ins for
    # asyncio's functions must not be that frame.
    code = (
        "import asyncio, warnings, trio_asyncio\n"
        + ("asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())\n" if user_policy else "")
        + "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    loop = asyncio.get_event_loop()\n"
        "loop.close()\n"
        "print(sorted({(x.category.__name__, x.filename) for x in w}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[('DeprecationWarning', '<string>')]"


_FORK_CHILD_LOOP = textwrap.dedent(
    """
    import asyncio, os, sys, warnings
    if sys.argv[1] == "ours":
        import trio_asyncio
    async def main():
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                with warnings.catch_warnings(record=True) as ws:
                    warnings.simplefilter("always")
                    child = asyncio.get_event_loop_policy().get_event_loop()
                kinds = sorted({x.category.__name__ for x in ws})
                os.write(w, f"new={child is not loop} warned={kinds}".encode())
            except BaseException as e:
                os.write(w, b"ERROR " + ascii(e).encode())
            finally:
                os._exit(0)
        print(os.read(r, 200).decode())
        os.waitpid(pid, 0)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())
    loop.close()
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_forked_child_forgets_the_current_loop_as_stock_does() -> None:
    # From 3.12 asyncio's at-fork hook resets the current loop: a forked child's
    # get_event_loop() warns and makes a new loop (3.11 keeps the inherited one).
    def run(side: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", _FORK_CHILD_LOOP, side], capture_output=True, text=True,
            check=True, timeout=60,
        ).stdout.strip()

    stock = run("stock")
    assert stock == ("new=True warned=['DeprecationWarning']" if PY312 else "new=False warned=[]")
    assert run("ours") == stock
