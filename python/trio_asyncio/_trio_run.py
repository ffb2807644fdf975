"""The Trio run binding: which Trio run a loop belongs to, and the thread's current run.

Trio keeps the run (and task) the thread is in on a private thread-local,
``GLOBAL_RUN_CONTEXT``. This is the only module that reaches it: the loops ask it whether
they are inside their own run, the sync loop's thread-state swap (``_thread_state``) moves
its contents in and out around fiber switches, and compatibility mode (``_policy``) reads
the current task as a fast "am I in Trio" test.

A loop is bound to a run while its Trio side exists (:class:`TrioRunBinding`): the async
loop from ``open_loop``'s start to its end, the sync loop while the ``trio.run`` in its
fiber lives. Bound, it knows the nursery its Trio tasks are started in, the run (Trio's
``Runner``, compared by identity only) and the run's token.
"""

from __future__ import annotations

from typing import Any

import trio

_RUN_CONTEXT = trio._core._run.GLOBAL_RUN_CONTEXT  # private: see design/loops.md


def current_task() -> Any:
    """The Trio task running on this thread, or None outside Trio."""
    # (the thread's dict, not getattr(..., None): outside Trio a thread-local's missing
    # attribute raises and formats an AttributeError first, 15x the cost of the lookup)
    return _RUN_CONTEXT.__dict__.get("task")


def current_runner() -> Any:
    """Trio's ``Runner`` of the run this thread is in, or None outside Trio."""
    return _RUN_CONTEXT.__dict__.get("runner")


def in_trio_run_of(runner: object) -> bool:
    """Whether this thread is inside the Trio run *runner* (False for None)."""
    return runner is not None and _RUN_CONTEXT.__dict__.get("runner") is runner


def take_run_context() -> dict[str, Any] | None:
    """Remove the thread's Trio run context and return it (None if there was none)."""
    ctx = _RUN_CONTEXT.__dict__
    if not ctx:
        return None
    saved = ctx.copy()
    ctx.clear()
    return saved


def restore_run_context(saved: dict[str, Any] | None) -> None:
    """Reinstall a run context taken with :func:`take_run_context` (the slot must be clear)."""
    if saved:
        _RUN_CONTEXT.__dict__.update(saved)


def forget_run_context() -> None:
    """Leave the thread with no Trio run (a forked child that inherited one, see ``_fork``)."""
    _RUN_CONTEXT.__dict__.clear()


# TrioRunBinding's instance attributes, declared as slots by BaseTrioEventLoop (see
# design/loops.md, "Instance state").
TRIO_RUN_SLOTS = ("_nursery", "_trio_runner", "_trio_token")


class TrioRunBinding:
    """Mixin of the loop classes: the Trio run the loop is bound to, if any."""

    # Set while the loop's Trio side exists: the nursery Trio tasks are started in, the
    # run they live in, and its token (slots of the loop: TRIO_RUN_SLOTS; the loop's
    # __init__ calls _unbind_trio_run to set them).
    _nursery: trio.Nursery | None
    _trio_runner: object
    _trio_token: trio.lowlevel.TrioToken | None

    def _bind_trio_run(self, nursery: trio.Nursery) -> None:
        """Bind the loop to the Trio run the caller is in; *nursery* hosts its Trio tasks."""
        self._nursery = nursery
        self._trio_runner = current_runner()
        self._trio_token = trio.lowlevel.current_trio_token()

    def _unbind_trio_run(self) -> None:
        """Forget the Trio run (it ended, or cannot be resumed from here)."""
        self._nursery = None
        self._trio_runner = None
        self._trio_token = None


__all__ = [
    "TrioRunBinding", "current_runner", "current_task", "forget_run_context",
    "in_trio_run_of", "restore_run_context", "take_run_context",
]
