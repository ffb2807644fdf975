"""``TrioChildWatcher``: trio-asyncio 0.16's (deprecated) child watcher.

trio-asyncio loops do not need a child watcher: a child's exit arrives through a pidfd
registered in the loop's reactor. This class exists for code written against 0.16 that
installs one explicitly; it waits for each child the same way, one pidfd per child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVarTuple, Unpack

from ._versions import PY312

Ts = TypeVarTuple("Ts")


# From 3.12 asyncio deprecates its child watchers and warns when one is subclassed. Whoever
# reaches this module already got trio_asyncio's own deprecation warning for
# TrioChildWatcher, so asyncio's is not repeated at class creation.
with warnings.catch_warnings() if PY312 else contextlib.nullcontext():
    if PY312:
        warnings.filterwarnings("ignore", ".*AbstractChildWatcher", DeprecationWarning)

    class TrioChildWatcher(asyncio.AbstractChildWatcher):
        """Watch children through pidfds registered with the attached loop (Linux)."""

        def __init__(self) -> None:
            self._loop: asyncio.AbstractEventLoop | None = None
            self._pidfds: dict[int, int] = {}

        def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
            self._loop = loop

        def is_active(self) -> bool:
            return self._loop is not None and not self._loop.is_closed()

        def add_child_handler(
            self, pid: int, callback: Callable[[int, int, Unpack[Ts]], object], *args: Unpack[Ts]
        ) -> None:
            loop = self._loop
            if loop is None:
                raise RuntimeError("TrioChildWatcher is not attached to a loop")
            pidfd = os.pidfd_open(pid)
            self._pidfds[pid] = pidfd

            def exited() -> None:
                self.remove_child_handler(pid)
                from ._subprocess import reap

                callback(pid, reap(pid), *args)

            loop.add_reader(pidfd, exited)

        def remove_child_handler(self, pid: int) -> bool:
            pidfd = self._pidfds.pop(pid, None)
            if pidfd is None:
                return False
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(pidfd)
            os.close(pidfd)
            return True

        def close(self) -> None:
            for pid in list(self._pidfds):
                self.remove_child_handler(pid)
            self._loop = None

        def __enter__(self) -> TrioChildWatcher:
            return self

        def __exit__(self, *exc: object) -> None:
            pass
