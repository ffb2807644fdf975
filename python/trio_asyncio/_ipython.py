"""IPython extension: ``%load_ext trio_asyncio``.

Makes IPython run every cell in a single :class:`InteractiveSession`: one
:class:`SyncTrioEventLoop` whose Trio run lives across cells. It sets the shell's
``trio_runner`` (the hook ipykernel's Trio mode uses: when set, IPython hands it every
cell, with or without ``await``) and its ``loop_runner``. So every cell runs inside the
Trio run with the loop running: a cell may await Trio and asyncio code, call
``asyncio.create_task`` or ``nursery.start_soon`` without awaiting anything, and Trio tasks
started in the session's nursery (the name ``nursery`` in the user namespace, unless that
name was taken) and asyncio tasks keep running in later cells. Between cells the loop is
stopped and they are frozen where they were. As in Jupyter, ``asyncio.run()`` cannot be
called from a cell while the extension is loaded (the loop is running). ``%unload_ext trio_asyncio`` closes the session and gives IPython back the runner
and ``autoawait`` setting it had.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import trio

from ._session import InteractiveSession

#: The user-namespace name of the session's nursery.
NURSERY_NAME = "nursery"


class _CellRunner:
    """IPython ``loop_runner``: runs a cell's coroutine in the session."""

    def __init__(self, session: InteractiveSession) -> None:
        self.session = session

    def __call__(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.session.run(coro)

    def __str__(self) -> str:
        return "trio_asyncio"


class _Extension:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.saved = (shell.loop_runner, shell.autoawait, shell.trio_runner)
        self.saved_custom_exc = (shell.custom_exceptions, shell.CustomTB)
        self.session = InteractiveSession()
        self.owns_nursery_name = NURSERY_NAME not in shell.user_ns
        self.session.on_new_nursery = self._publish_nursery
        runner = _CellRunner(self.session)
        shell.loop_runner = runner
        shell.autoawait = True
        shell.set_trio_runner(runner)
        if not shell.custom_exceptions:
            # Ctrl-C cancels the cell: IPython's run_code then sees the cancellation;
            # show it as the KeyboardInterrupt it stands for.
            shell.set_custom_exc(
                (trio.Cancelled, asyncio.CancelledError), self._show_cancellation
            )
        # The nursery opens (and is published) when the next cell starts: this cell may
        # itself be running on a session's loop (%reload_ext).

    def _publish_nursery(self, nursery: trio.Nursery) -> None:
        if self.owns_nursery_name:
            self.shell.user_ns[NURSERY_NAME] = nursery

    def _show_cancellation(
        self, shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
        tb_offset: int | None = None,
    ) -> None:
        # IPython calls this instead of its showtraceback for these exception types.
        if self.session.interrupted:
            print("KeyboardInterrupt")
        else:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)

    def unload(self) -> None:
        shell = self.shell
        shell.custom_exceptions, shell.CustomTB = self.saved_custom_exc
        shell.loop_runner, shell.autoawait, trio_runner = self.saved
        shell.set_trio_runner(trio_runner)
        if self.owns_nursery_name:
            shell.user_ns.pop(NURSERY_NAME, None)
        self.session.close()


_loaded: dict[int, _Extension] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Entry point of ``%load_ext trio_asyncio`` (see the module docstring)."""
    if id(ipython) in _loaded:
        return
    _loaded[id(ipython)] = _Extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Entry point of ``%unload_ext trio_asyncio``: restore IPython's own runner."""
    extension = _loaded.pop(id(ipython), None)
    if extension is not None:
        extension.unload()
