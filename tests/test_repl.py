"""``python -m trio_asyncio`` (issue 11): the console over a pseudo-terminal, ``--help``
and ``--demo``."""

from __future__ import annotations

import subprocess
import sys

import pytest

pexpect = pytest.importorskip("pexpect")

PROMPT = ">>> "


@pytest.fixture
def console() -> object:
    child = pexpect.spawn(
        sys.executable, ["-m", "trio_asyncio"], encoding="utf-8", timeout=60,
        env={"TERM": "dumb", "PYTHONSTARTUP": "", "PATH": "/usr/bin:/bin"},
        dimensions=(40, 200),
    )
    child.expect("trio_asyncio .* console")
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def run(child: object, line: str, expected: str | None = None) -> str:
    """Send one line, wait for the next prompt and return what came before it."""
    child.sendline(line)  # type: ignore[attr-defined]
    child.expect_exact(PROMPT)  # type: ignore[attr-defined]
    output: str = child.before  # type: ignore[attr-defined]
    if expected is not None:
        assert expected in output, output
    return output


def block(child: object, *lines: str) -> None:
    """Send a compound statement line by line, then the empty line that ends it."""
    for line in lines:
        child.sendline(line)  # type: ignore[attr-defined]
        child.expect_exact("... ")  # type: ignore[attr-defined]
    run(child, "")


def test_trio_and_asyncio_across_statements(console: object) -> None:
    run(console, "await trio.sleep(0.01); print('trio-' + 'slept')", "trio-slept")
    run(console, "await asyncio.sleep(0.01); print('aio-' + 'slept')", "aio-slept")
    run(console, "6 * 7", "42")
    run(console, "ticks = []; aio_ticks = []")
    block(console, "async def ticker():",
          "    while True:",
          "        ticks.append(1)",
          "        await trio.sleep(0.005)")
    block(console, "async def aticker():",
          "    while True:",
          "        aio_ticks.append(1)",
          "        await asyncio.sleep(0.005)")
    run(console, "nursery.start_soon(ticker); task = asyncio.create_task(aticker())")
    run(console, "await trio.sleep(0.05); n, m = len(ticks), len(aio_ticks)")
    run(console, "await asyncio.sleep(0.05); print('moving', len(ticks) > n > 0, "
                 "len(aio_ticks) > m > 0)", "moving True True")
    run(console, "token = trio.lowlevel.current_trio_token()")
    run(console, "print('same-run', trio.lowlevel.current_trio_token() is token)",
        "same-run True")
    run(console, "type(asyncio.get_running_loop()).__name__", "'SyncTrioEventLoop'")


def test_errors_show_the_users_traceback_and_the_session_goes_on(console: object) -> None:
    out = run(console, "await trio.sleep(0); 1/0", "ZeroDivisionError: division by zero")
    assert '"<stdin>", line 1' in out
    assert "_session.py" not in out and "_adapter.py" not in out
    run(console, "print('still-' + 'here')", "still-here")


def test_ctrl_c_cancels_the_statement_not_the_session(console: object) -> None:
    run(console, "ticks = []")
    run(console, "nursery.start_soon(lambda: trio.sleep_forever())")
    console.sendline("await trio.sleep(3600)")  # type: ignore[attr-defined]
    console.expect_exact("await trio.sleep(3600)")  # type: ignore[attr-defined]
    import time

    time.sleep(0.5)  # let the statement start waiting (not a timing assertion)
    console.sendintr()  # type: ignore[attr-defined]
    console.expect("KeyboardInterrupt")  # type: ignore[attr-defined]
    console.expect_exact(PROMPT)  # type: ignore[attr-defined]
    console.sendline("await asyncio.sleep(3600)")  # type: ignore[attr-defined]
    console.expect_exact("await asyncio.sleep(3600)")  # type: ignore[attr-defined]
    time.sleep(0.5)
    console.sendintr()  # type: ignore[attr-defined]
    console.expect("KeyboardInterrupt")  # type: ignore[attr-defined]
    console.expect_exact(PROMPT)  # type: ignore[attr-defined]
    run(console, "await trio.sleep(0); print('after-' + 'interrupt')", "after-interrupt")


def test_ctrl_d_leaves(console: object) -> None:
    run(console, "t = asyncio.create_task(asyncio.sleep(3600))")
    console.sendeof()  # type: ignore[attr-defined]
    console.expect(pexpect.EOF)  # type: ignore[attr-defined]
    console.close()  # type: ignore[attr-defined]
    assert console.exitstatus == 0  # type: ignore[attr-defined]


def test_help_says_what_the_command_does() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_asyncio", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "interactive Python console" in out
    assert "--demo" in out


def test_demo_flag_runs_the_demo() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_asyncio", "--demo"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert "asyncio.new_event_loop() -> SyncTrioEventLoop" in out
    assert "Trio awaits asyncio: aio_add(2, 3) = 5" in out


def test_unknown_argument_is_an_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trio_asyncio", "--bogus"], capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus" in proc.stderr
