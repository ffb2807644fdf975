"""What a child process does with the loops it inherits across ``fork()`` (issue 14).

Kernel objects survive ``fork()`` shared: the child's epoll instances (the Rust core's
poller, Trio's own in a sync loop's suspended run), eventfds and wake-up sockets are the
parent's. Any registration change the child makes through them changes the parent's loop
(Trio's registrations are one-shot, so even an ``epoll_wait`` in the child can take an
event the parent was waiting for). So, in the child, right after the fork:

- every live trio-asyncio loop gets a poller and a wake fd of its own, with the same fd
  registrations (``LoopCore._renew_after_fork``); the inherited ones are only closed;
- a sync loop's inherited Trio run is never resumed: its fiber is kept here, untouched,
  until the process exits. A fork made from inside that run (a callback calling
  ``os.fork()``) finishes the current run without Trio (see ``BaseTrioEventLoop._drive``);
- no loop is running (asyncio's running loop is cleared, as CPython 3.12+ does) and the
  signal wake-up fd is unset, so the child can create and run new loops at once.

The parent is never touched. Trio itself does not support continuing a ``trio.run`` in a
forked child; an ``open_loop`` loop inherited inside one gets its own kernel objects like any
other, which keeps its ``close()`` from affecting the parent.
"""

from __future__ import annotations

import os
import signal
import weakref
from typing import TYPE_CHECKING, Any

from _asyncio import _set_running_loop as _c_set_running_loop

if TYPE_CHECKING:
    from ._base import BaseTrioEventLoop

#: Every trio-asyncio loop not yet garbage-collected (closed ones included: cheap to skip).
_loops: weakref.WeakSet[BaseTrioEventLoop] = weakref.WeakSet()

#: Fibers holding Trio runs inherited across fork(): never resumed (that would run the
#: parent's Trio teardown against shared kernel objects) and never freed (freeing a
#: suspended fiber resumes it to run its finally blocks). Leaked at exit on purpose.
_inherited_fibers: list[Any] = []


def track(loop: BaseTrioEventLoop) -> None:
    """Remember *loop* so that a forked child can detach it from the parent's kernel objects."""
    _loops.add(loop)


def keep_inherited_fiber(fiber: Any) -> None:
    _inherited_fibers.append(fiber)


def _after_fork_in_child() -> None:
    _c_set_running_loop(None)
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass  # forked from a thread other than the main one: it is no longer set
    for loop in list(_loops):
        loop._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
