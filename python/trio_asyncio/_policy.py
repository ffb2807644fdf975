"""Compatibility mode: make asyncio's loop creation outside Trio return the sync loop.

This is the only module that patches asyncio. On import it

- installs :class:`TrioPolicy` as asyncio's global policy (through the original setter,
  because the C ``_asyncio`` module calls the original ``get_event_loop_policy`` and so
  always sees the global one);
- replaces ``get_event_loop_policy``/``set_event_loop_policy`` so that a policy set by the
  user is kept per thread and respected outside Trio;
- replaces ``_get_running_loop``/``get_running_loop``/``get_event_loop``/
  ``set_event_loop``/``new_event_loop`` so that inside a Trio task they answer with the
  task's trio-asyncio loop (:data:`current_loop`).

Every private name used is listed in design/loops.md.
"""

from __future__ import annotations

import asyncio
import os
import threading
from asyncio import events
from contextvars import ContextVar
from typing import Any

from ._context import current_loop
from ._sync import SYNC_LOOP_TASK_NAME, SyncTrioEventLoop
from ._trio_run import current_task
from ._versions import PY312

_original_get_policy = events.get_event_loop_policy
_original_set_policy = events.set_event_loop_policy
from _asyncio import _get_running_loop as _c_get_running_loop


class _UserPolicy(threading.local):
    policy: asyncio.AbstractEventLoopPolicy | None = None


_user = _UserPolicy()


def _in_trio_other_than_sync_loop() -> bool:
    task = current_task()
    return task is not None and task.name != SYNC_LOOP_TASK_NAME


def _trio_task_loop(task: Any) -> Any:
    return task.context.get(current_loop)


class SyncLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type,unused-ignore]
    """What :func:`asyncio.get_event_loop_policy` returns outside Trio (unless the user set
    a policy in this thread): asyncio's default policy, except that its new loops are
    :class:`SyncTrioEventLoop`. It holds the thread's current loop and the child watcher,
    for itself and for :class:`TrioPolicy` outside Trio.
    """

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        if _in_trio_other_than_sync_loop():
            raise RuntimeError(
                "You're within a Trio environment.\nUse 'async with open_loop()' instead."
            )
        return SyncTrioEventLoop()


class TrioPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type,unused-ignore]
    """asyncio's global policy while trio_asyncio is imported, and what
    :func:`asyncio.get_event_loop_policy` returns inside Trio.

    Outside Trio it forwards to the policy the user set in this thread, else to the
    :class:`SyncLoopPolicy`. Inside Trio, the current loop is the Trio task's trio-asyncio
    loop, and creating loops is refused (use :func:`open_loop`).
    """

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        if _in_trio_other_than_sync_loop():
            raise RuntimeError(
                "You're within a Trio environment.\nUse 'async with open_loop()' instead."
            )
        return _outside_policy().new_event_loop()

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        task = current_task()
        if task is not None:
            loop = _trio_task_loop(task)
            if loop is None:
                raise RuntimeError(
                    "There is no trio-asyncio loop in this Trio task: "
                    "use 'async with trio_asyncio.open_loop()'"
                )
            return loop  # type: ignore[no-any-return]
        return _outside_policy().get_event_loop()

    def set_event_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if _in_trio_other_than_sync_loop():
            current_loop.set(loop)  # type: ignore[arg-type]
        else:
            _outside_policy().set_event_loop(loop)

    # One child watcher per thread policy, whichever side asks for it.
    def get_child_watcher(self) -> Any:
        return _outside_policy().get_child_watcher()

    def set_child_watcher(self, watcher: Any) -> None:
        _outside_policy().set_child_watcher(watcher)

    @property
    def _watcher(self) -> Any:
        return getattr(_outside_policy(), "_watcher", None)

    @_watcher.setter
    def _watcher(self, watcher: Any) -> None:
        if watcher is not None:  # pragma: no cover  (asyncio only ever resets it)
            _outside_policy()._watcher = watcher  # type: ignore[attr-defined]


_sync_loop_policy = SyncLoopPolicy()
_trio_policy = TrioPolicy()

#: Deprecated in trio-asyncio 0.11 and unused; kept for code that still reads it.
current_policy: ContextVar[TrioPolicy] = ContextVar("trio_aio_policy", default=_trio_policy)


def _outside_policy() -> asyncio.AbstractEventLoopPolicy:
    user = _user.policy
    return user if user is not None else _sync_loop_policy


def _forget_current_loop_in_child() -> None:
    """In a forked child, forget the inherited current loop, as asyncio does from 3.12.

    asyncio's own at-fork hook resets the thread-local state of the global policy, which is
    our :class:`TrioPolicy`; the current loop outside Trio is held by the policy
    :func:`_outside_policy` names, so that one is reset too (3.11's asyncio resets nothing).
    """
    policy = _outside_policy()
    if isinstance(policy, events.BaseDefaultEventLoopPolicy):
        policy._local = events.BaseDefaultEventLoopPolicy._Local()  # type: ignore[attr-defined]


if PY312 and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_current_loop_in_child)


def get_event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    if current_task() is not None:
        return _trio_policy
    return _outside_policy()


def set_event_loop_policy(policy: asyncio.AbstractEventLoopPolicy | None) -> None:
    if isinstance(policy, TrioPolicy) or policy is _sync_loop_policy:
        # Setting back what get_event_loop_policy() returned (pytest-asyncio does this)
        # means "the default".
        policy = None
    if _in_trio_other_than_sync_loop():
        raise RuntimeError("You can't change the event loop policy in Trio context")
    if policy is not None and not isinstance(policy, asyncio.AbstractEventLoopPolicy):
        raise TypeError(
            "policy must be an instance of AbstractEventLoopPolicy or None, "
            f"not '{type(policy).__name__}'"
        )
    _user.policy = policy


def _get_running_loop() -> asyncio.AbstractEventLoop | None:
    loop = _c_get_running_loop()
    if loop is not None:
        return loop  # type: ignore[no-any-return,unused-ignore]
    task = current_task()
    if task is None:
        return None
    return _trio_task_loop(task)  # type: ignore[no-any-return]


def get_running_loop() -> asyncio.AbstractEventLoop:
    loop = _get_running_loop()
    if loop is None:
        raise RuntimeError("no running event loop")
    return loop


def get_event_loop() -> asyncio.AbstractEventLoop:
    loop = _get_running_loop()
    if loop is not None:
        return loop
    return get_event_loop_policy().get_event_loop()


def set_event_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    get_event_loop_policy().set_event_loop(loop)


def new_event_loop() -> asyncio.AbstractEventLoop:
    return get_event_loop_policy().new_event_loop()


_PATCHES = {
    "get_event_loop_policy": get_event_loop_policy,
    "set_event_loop_policy": set_event_loop_policy,
    "_get_running_loop": _get_running_loop,
    "get_running_loop": get_running_loop,
    "get_event_loop": get_event_loop,
    "set_event_loop": set_event_loop,
    "new_event_loop": new_event_loop,
}


_ORIGINALS = {name: getattr(events, name) for name in _PATCHES}

#: Set to ``0`` (or ``false``/``no``/``off``) to keep ``import trio_asyncio`` from
#: installing compatibility mode.
ENV_VAR = "TRIO_ASYNCIO_COMPAT_MODE"


def enabled_by_environment() -> bool:
    """Whether the environment lets ``import trio_asyncio`` install compatibility mode."""
    import os

    value = os.environ.get(ENV_VAR, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def is_installed() -> bool:
    """Whether compatibility mode is installed."""
    return events.get_event_loop_policy is get_event_loop_policy


def install() -> None:
    """Install compatibility mode: asyncio's loop creation outside Trio makes a
    :class:`SyncTrioEventLoop`, and inside a Trio task asyncio's loop functions answer
    with the task's trio-asyncio loop.

    Synchronous and idempotent. ``import trio_asyncio`` calls it unless the environment
    variable ``TRIO_ASYNCIO_COMPAT_MODE`` is ``0``.
    """
    if is_installed():
        return
    _original_set_policy(_trio_policy)
    for name, fn in _PATCHES.items():
        setattr(events, name, fn)
        if hasattr(asyncio, name):
            setattr(asyncio, name, fn)


def uninstall() -> None:
    """Undo :func:`install_compat_mode`: give asyncio back its own functions and policy.

    Synchronous and idempotent. A policy the current thread had set with
    :func:`asyncio.set_event_loop_policy` becomes asyncio's global policy again. Loops
    already created are not changed; :func:`trio_asyncio.new_event_loop`, :func:`open_loop`
    and the adapters keep working.
    """
    if not is_installed():
        return
    for name, fn in _ORIGINALS.items():
        setattr(events, name, fn)
        if hasattr(asyncio, name):
            setattr(asyncio, name, fn)
    policy, _user.policy = _user.policy, None
    _original_set_policy(policy)


# The functions above stand in for asyncio's own. From 3.12 asyncio's policy attributes its
# "There is no current event loop" DeprecationWarning to the first caller frame whose module
# name is not ``asyncio`` or ``asyncio.*``; without this, that frame would be ours instead of
# the user's line. Rebinding the module's ``__name__`` after every definition changes only
# what such frame walks read (``f_globals['__name__']``): classes and functions keep
# ``__module__ == "trio_asyncio._policy"`` and the module stays in ``sys.modules`` under its
# real name.
__name__ = "asyncio.trio_asyncio._policy"  # noqa: A001
