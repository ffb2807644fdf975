"""The console of ``python -m trio_asyncio``.

A :class:`code.InteractiveConsole` whose compiler accepts top-level ``await`` and whose
statements all run in one :class:`InteractiveSession` (so inside one Trio run, on a sync
loop): the console's thread is the loop's thread, there is no second thread. Ctrl-C while
a statement runs cancels it at its next ``await`` (Trio's and asyncio's cancellation);
the session and its tasks go on.
"""

from __future__ import annotations

import ast
import asyncio
import code
import inspect
import sys
import traceback
import types
from typing import Any

import trio

import trio_asyncio

from ._session import InteractiveSession


class TrioAsyncioConsole(code.InteractiveConsole):
    """Interactive console running each statement in an :class:`InteractiveSession`."""

    def __init__(self, session: InteractiveSession, local: dict[str, Any]) -> None:
        super().__init__(local, filename="<stdin>")
        self.session = session
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

    def runcode(self, code: types.CodeType) -> None:
        func = types.FunctionType(code, self.locals)

        async def piece() -> None:
            result = func()
            if inspect.iscoroutine(result):
                await result

        try:
            self.session.run(piece())
        except SystemExit:
            raise
        except KeyboardInterrupt:
            self.write("KeyboardInterrupt\n")
        except BaseException:
            self.showtraceback()

    def showtraceback(self) -> None:
        """Show the traceback from the user's code on, without the session's frames."""
        typ, value, tb = sys.exc_info()
        first = tb
        while first is not None and first.tb_frame.f_code.co_filename != self.filename:
            first = first.tb_next
        if first is None or typ is None or value is None:
            super().showtraceback()
            return
        sys.last_type, sys.last_value, sys.last_traceback = typ, value, first
        self.write("".join(traceback.format_exception(typ, value, first)))


def banner() -> str:
    return (
        f"trio_asyncio {trio_asyncio.__version__} console, Python {sys.version.split()[0]} "
        f"on {sys.platform}\n"
        "Use 'await' directly, for Trio and asyncio code alike. Every statement runs in one\n"
        "Trio run that lives across statements: 'nursery' is a Trio nursery whose tasks\n"
        "keep running, like asyncio tasks. Ctrl-C cancels a statement; Ctrl-D leaves.\n"
        "Imported: asyncio, trio, trio_asyncio"
    )


def interact() -> None:
    """Run the console until end of input, then close the session."""
    session = InteractiveSession()
    local: dict[str, Any] = {
        "__name__": "__console__",
        "__doc__": None,
        "asyncio": asyncio,
        "trio": trio,
        "trio_asyncio": trio_asyncio,
    }

    def publish(nursery: trio.Nursery) -> None:
        local["nursery"] = nursery

    session.on_new_nursery = publish
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:  # pragma: no cover
        pass
    console = TrioAsyncioConsole(session, local)
    try:
        console.interact(banner=banner(), exitmsg="")
    finally:
        session.close()
