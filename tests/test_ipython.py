"""The IPython extension (issue 11): ``%load_ext trio_asyncio``.

Driven through IPython's real shell: ``InteractiveShell.run_cell`` in a subprocess (the
shell is a process-wide singleton) and ``python -m IPython`` fed over stdin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("IPython")

# Runs the cells given as a list of strings; prints "OK <n>" per successful cell and the
# error of a failed one.
_DRIVER = r"""
import sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance(colors="nocolor")
cells = eval(sys.stdin.read())
for number, cell in enumerate(cells):
    result = shell.run_cell(cell)
    if result.success:
        print(f"OK {number}", flush=True)
    else:
        error = result.error_before_exec or result.error_in_exec
        print(f"FAIL {number} {type(error).__name__}: {error}", flush=True)
"""


def _run_cells(*cells: str, env: dict[str, str] | None = None) -> list[str]:
    return _run_cells_proc(*cells, env=env).stdout.splitlines()


def _run_cells_proc(
    *cells: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=repr([textwrap.dedent(c) for c in cells]),
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_trio_and_asyncio_tasks_survive_across_cells() -> None:
    out = _run_cells(
        "%load_ext trio_asyncio",
        """
        import asyncio, trio, trio_asyncio
        trio_ticks, aio_ticks = [], []

        async def trio_ticker():
            while True:
                trio_ticks.append(trio.current_time())
                await trio.sleep(0.005)

        async def aio_ticker():
            while True:
                aio_ticks.append(asyncio.get_running_loop().time())
                await asyncio.sleep(0.005)

        nursery.start_soon(trio_ticker)          # the session's nursery, no await needed
        aio_task = asyncio.create_task(aio_ticker())
        """,
        """
        await trio.sleep(0.05)                   # Trio's sleep at top level
        seen_trio, seen_aio = len(trio_ticks), len(aio_ticks)
        assert seen_trio >= 2 and seen_aio >= 2, (seen_trio, seen_aio)
        """,
        """
        await asyncio.sleep(0.05)                # asyncio's sleep at top level
        assert len(trio_ticks) > seen_trio and len(aio_ticks) > seen_aio
        seen_trio, seen_aio = len(trio_ticks), len(aio_ticks)
        """,
        """
        # Both flavours in one statement, and a nursery of the user's own in a variable.
        async with trio.open_nursery() as my_nursery:
            my_nursery.start_soon(trio.sleep, 0.01)
            doubled = await trio_asyncio.trio_as_aio(lambda: trio.sleep(0.01))()
        assert not aio_task.done()
        """,
        """
        await trio.sleep(0.02)
        assert len(trio_ticks) > seen_trio and len(aio_ticks) > seen_aio
        print("trio task still running:", trio_ticks[-1] > trio_ticks[0])
        """,
        """
        # One Trio run across cells: the same run, the same loop.
        import trio.lowlevel
        token = trio.lowlevel.current_trio_token()
        """,
        "assert trio.lowlevel.current_trio_token() is token",
        "%unload_ext trio_asyncio",
        """
        assert aio_task.cancelled()
        assert "nursery" not in dir()
        import asyncio
        assert str(get_ipython().loop_runner) == "asyncio"
        await asyncio.sleep(0)
        """,
    )
    assert [line for line in out if line.startswith(("OK", "FAIL"))] == [
        f"OK {i}" for i in range(10)
    ], out
    assert "trio task still running: True" in out


def test_without_the_extension_cells_need_a_trio_asyncio_loop() -> None:
    # IPython made its loop before trio_asyncio was imported: trio_as_aio fails with a
    # message that says what to do.
    out = _run_cells(
        "import asyncio\nawait asyncio.sleep(0)",
        "import trio, trio_asyncio\nawait trio_asyncio.trio_as_aio(trio.sleep)(0)",
    )
    out = [line for line in out if line.startswith(("OK", "FAIL"))]
    assert out[0] == "OK 0"
    assert out[1].startswith("FAIL 1 RuntimeError: You are not within a trio_asyncio loop")
    assert "%load_ext trio_asyncio" in out[1]
    assert "Import trio_asyncio before the loop is made" in out[1]


def test_without_the_extension_importing_first_works() -> None:
    out = _run_cells(
        "import trio, trio_asyncio",
        "await trio_asyncio.trio_as_aio(trio.sleep)(0)",
        "import asyncio\nawait asyncio.sleep(0)\nprint(type(asyncio.get_running_loop()).__name__)",
    )
    assert [line for line in out if line.startswith(("OK", "FAIL", "Sync"))] == [
        "OK 0", "OK 1", "SyncTrioEventLoop", "OK 2"
    ], out


def test_loading_twice_and_unloading_twice_is_harmless() -> None:
    out = _run_cells(
        "%load_ext trio_asyncio",
        "%reload_ext trio_asyncio",
        "import trio\nawait trio.sleep(0)",
        "%unload_ext trio_asyncio",
        "%unload_ext trio_asyncio",
    )
    assert [line for line in out if line.startswith(("OK", "FAIL"))] == [
        f"OK {i}" for i in range(5)
    ], out


def test_a_failing_nursery_task_is_reported_and_replaced() -> None:
    proc = _run_cells_proc(
        "%load_ext trio_asyncio",
        """
        import trio
        first = nursery

        async def boom():
            raise ValueError("boom")

        nursery.start_soon(boom)
        await trio.sleep(0.05)                   # the nursery fails meanwhile
        """,
        "assert nursery is not first\nnursery.start_soon(trio.sleep, 0)",
    )
    out = proc.stdout.splitlines()
    assert "A task in the session's Trio nursery failed" in proc.stderr
    assert "ValueError: boom" in proc.stderr
    assert [line for line in out if line.startswith(("OK", "FAIL"))] == [
        "OK 0", "OK 1", "OK 2"
    ], out


def test_python_m_ipython_over_stdin() -> None:
    script = textwrap.dedent("""\
        %load_ext trio_asyncio
        import asyncio, trio
        ticks = []
        async def ticker():
            while True:
                ticks.append(1)
                await trio.sleep(0.005)

        nursery.start_soon(ticker)
        t = asyncio.create_task(asyncio.sleep(3600))
        await trio.sleep(0.03); n = len(ticks)
        await asyncio.sleep(0.03)
        print("RESULT", len(ticks) > n > 0, t.done())
        %unload_ext trio_asyncio
        print("RESULT", t.cancelled())
        """)
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor",
         "--simple-prompt", "--HistoryManager.enabled=False"],
        input=script, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = [line.split("RESULT ", 1)[1] for line in proc.stdout.splitlines()
               if "RESULT " in line]
    assert results == ["True False", "True"], proc.stdout
    assert "Error" not in proc.stdout, proc.stdout


def test_ctrl_c_in_ipython_cancels_the_cell_not_the_session() -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--no-banner", "--colors=nocolor", "--simple-prompt",
         "--HistoryManager.enabled=False"],
        encoding="utf-8", timeout=60, env={**os.environ, "TERM": "dumb"},
    )
    try:
        prompt = r"In \[\d+\]: "
        child.expect(prompt)
        for line in ("%load_ext trio_asyncio", "import trio; ticks = []",
                     "async def tick():\n    while True:\n        ticks.append(1); "
                     "await trio.sleep(0.005)\n"):
            child.sendline(line)
            child.expect(prompt)
        child.sendline("nursery.start_soon(tick)")
        child.expect(prompt)
        child.sendline("await trio.sleep(3600)")
        child.expect_exact("await trio.sleep(3600)")
        import time

        time.sleep(1)  # let the cell start waiting (not a timing assertion)
        child.sendintr()
        child.expect("KeyboardInterrupt")
        child.expect(prompt)
        child.sendline("n = len(ticks); await trio.sleep(0.05); print('ALIVE', len(ticks) > n)")
        child.expect("ALIVE (True|False)")
        assert child.match.group(1) == "True"
        child.expect(prompt)
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
