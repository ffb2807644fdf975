"""Subprocesses: a child's exit arrives through the loop's reactor (a pidfd), no thread.

asyncio's ``_UnixSelectorEventLoop`` learns that a child exited from a child watcher
(a thread per child by default). These loops open a pidfd for the child instead and
register it as a reader: it becomes readable when the child exits, and the reader reaps it.
Where ``pidfd_open`` is missing (old kernels) one thread waits for the child, as asyncio's
``ThreadedChildWatcher`` does. A child watcher the user installed that may reap any child
(``asyncio.set_child_watcher``) takes over: asyncio's own path is used, so it sees every
child.
"""

from __future__ import annotations

import asyncio
import os
import threading
from asyncio import base_events, events
from asyncio import unix_events as _unix_events
from typing import Any

from ._mixins import LoopMixin


# SubprocessMixin's instance attributes, declared as slots by BaseTrioEventLoop (see
# design/loops.md, "Instance state").
SUBPROCESS_SLOTS = ("_child_pidfds",)


class SubprocessMixin(LoopMixin):
    """The loops' ``_make_subprocess_transport`` and the pidfds of the children they watch."""

    def _init_subprocesses(self) -> None:
        self._child_pidfds: dict[int, int] = {}

    async def _make_subprocess_transport(  # type: ignore[override, unused-ignore]
        self,
        protocol: asyncio.BaseProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: Any = None,
        **kwargs: Any,
    ) -> asyncio.SubprocessTransport:
        if user_child_watcher() is not None:
            # The user installed a child watcher (asyncio.set_child_watcher): asyncio's
            # own path, so that watcher (which may reap every child) sees this one too.
            return await super()._make_subprocess_transport(  # type: ignore[misc, no-any-return, unused-ignore]
                protocol, args, shell, stdin, stdout, stderr, bufsize, extra=extra, **kwargs
            )
        waiter = self.create_future()
        transp = _unix_events._UnixSubprocessTransport(  # type: ignore[attr-defined]
            self, protocol, args, shell, stdin, stdout, stderr, bufsize,
            waiter=waiter, extra=extra, **kwargs,
        )
        self._watch_child(transp.get_pid(), transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp  # type: ignore[no-any-return]

    def _watch_child(self, pid: int, transp: Any) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            thread = threading.Thread(
                target=self._wait_child_in_thread, args=(pid, transp), daemon=True,
                name=f"trio-asyncio waitpid({pid})",
            )
            thread.start()
            return
        self._child_pidfds[pid] = pidfd
        self._add_reader(pidfd, self._child_exited, pid, transp)

    def _child_exited(self, pid: int, transp: Any) -> None:
        pidfd = self._child_pidfds.pop(pid)
        self._remove_reader(pidfd)
        os.close(pidfd)
        self.call_soon(transp._process_exited, reap(pid))

    def _wait_child_in_thread(self, pid: int, transp: Any) -> None:
        returncode = reap(pid, block=True)
        if not self.is_closed():
            self.call_soon_threadsafe(self.call_soon, transp._process_exited, returncode)

    def _close_child_pidfds(self) -> None:
        """At close: stop watching children (their pidfds go with the reactor)."""
        for pidfd in self._child_pidfds.values():
            os.close(pidfd)
        self._child_pidfds.clear()


def user_child_watcher() -> Any:
    """A child watcher set on the current policy that must see every child, if any.

    Watchers that wait for one pid at a time (asyncio's default ``ThreadedChildWatcher``,
    created lazily by ``get_child_watcher()``, and ``PidfdChildWatcher``) are ignored: the
    reactor's pidfd does the same job without a thread. Others (``SafeChildWatcher``,
    ``FastChildWatcher``, ``MultiLoopChildWatcher``, custom ones) may reap any child, so
    asyncio's path through the watcher is used.
    """
    policy = events.get_event_loop_policy()
    watcher = getattr(policy, "_watcher", None)
    if watcher is None or isinstance(
        watcher, (_unix_events.ThreadedChildWatcher, _unix_events.PidfdChildWatcher)
    ):
        return None
    return watcher


def reap(pid: int, block: bool = False) -> int:
    """Collect exited child *pid* and return its exit code as asyncio reports it (255 for
    a child that is not ours, with asyncio's warning)."""
    try:
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        base_events.logger.warning(  # type: ignore[attr-defined]
            "Unknown child process pid %d, will report returncode 255", pid
        )
        return 255
    if got == 0:  # pragma: no cover  (pidfd said it exited)
        got, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


__all__ = ["SubprocessMixin", "reap", "user_child_watcher"]
