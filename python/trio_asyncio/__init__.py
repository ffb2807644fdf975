"""trio-asyncio on a Rust engine: asyncio event loops that run on top of Trio.

General layout (lower layers never import higher ones):

- ``_versions``: every difference between the supported CPython versions.
- ``_engine`` (Rust): fibers, and the loop core (ready queue, timers, reactor).
- ``_fiber``: the Python view of the fibers.
- ``_context``, ``_util``, ``_handles``, ``_executor``, ``_deprecate``,
  ``_thread_state``: small pieces with no loop of their own; ``_fork``: what a forked
  child does with the loops it inherits; ``_trio_run``: the Trio run a loop is bound to
  (the only access to Trio's run context).
- ``_driver`` (the one place callbacks are run from), ``_signals`` (with
  ``_signal_wakeup``), ``_subprocess``, ``_selector``: one concept of the loops each,
  mixins on ``_mixins.LoopMixin`` (``_selector``: the ``loop._selector`` view).
- ``_base``: ``BaseTrioEventLoop``, what both loops share, assembled from those mixins.
- ``_async`` (``TrioEventLoop``, for ``open_loop``) and ``_sync`` (``SyncTrioEventLoop``,
  the restartable loop on a fiber).
- ``_loop``: ``open_loop``, ``run`` and the forwarders; ``_policy``: compatibility mode
  (asyncio's loop creation returns the sync loop); ``_adapter``: the flavour adapters.

- ``_factory``: ``new_event_loop``, the loop factory for asyncio's runners.
- ``_session`` (one sync loop whose Trio run lives across top-level awaits), used by
  ``_ipython`` (``%load_ext trio_asyncio``) and ``_repl`` (``python -m trio_asyncio``).

Importing the package installs compatibility mode (see ``_policy``) unless the environment
variable ``TRIO_ASYNCIO_COMPAT_MODE`` is ``0``; ``uninstall_compat_mode()`` undoes it.
"""

from __future__ import annotations

from . import _install_check  # noqa: F401  (first: refuses to mix files with trio-asyncio)

from ._versions import check_interpreter as _check_interpreter

_check_interpreter()

from ._engine import __version__ as __version__

from ._adapter import aio_as_trio as aio_as_trio
from ._adapter import allow_asyncio as allow_asyncio
from ._adapter import asyncio_as_trio as asyncio_as_trio
from ._adapter import trio_as_aio as trio_as_aio
from ._adapter import trio_as_asyncio as trio_as_asyncio
from ._async import TrioEventLoop as TrioEventLoop
from ._base import BaseTrioEventLoop as BaseTrioEventLoop
from ._context import current_loop as current_loop
from ._deprecate import TrioAsyncioDeprecationWarning as TrioAsyncioDeprecationWarning
from ._executor import TrioExecutor as TrioExecutor
from ._factory import new_event_loop as new_event_loop
from ._ipython import load_ipython_extension as load_ipython_extension
from ._ipython import unload_ipython_extension as unload_ipython_extension
from ._loop import open_loop as open_loop
from ._loop import run as run
from ._loop import run_aio_coroutine as run_aio_coroutine
from ._loop import run_trio as run_trio
from ._loop import run_trio_task as run_trio_task
from ._policy import install as install_compat_mode
from ._policy import uninstall as uninstall_compat_mode
from ._sync import SyncTrioEventLoop as SyncTrioEventLoop
from ._util import run_aio_future as run_aio_future
from ._util import run_aio_generator as run_aio_generator

from . import _policy

if _policy.enabled_by_environment():
    _policy.install()

__all__ = [
    "BaseTrioEventLoop",
    "SyncTrioEventLoop",
    "TrioAsyncioDeprecationWarning",
    "TrioEventLoop",
    "TrioExecutor",
    "aio_as_trio",
    "allow_asyncio",
    "asyncio_as_trio",
    "current_loop",
    "install_compat_mode",
    "load_ipython_extension",
    "new_event_loop",
    "open_loop",
    "run",
    "run_aio_coroutine",
    "run_aio_future",
    "run_aio_generator",
    "run_trio",
    "run_trio_task",
    "trio_as_aio",
    "trio_as_asyncio",
    "uninstall_compat_mode",
    "unload_ipython_extension",
]

for _obj in (
    aio_as_trio, allow_asyncio, trio_as_aio, TrioEventLoop, BaseTrioEventLoop,
    TrioAsyncioDeprecationWarning, TrioExecutor, open_loop, run, run_aio_coroutine,
    run_trio, run_trio_task, run_aio_future, run_aio_generator, SyncTrioEventLoop,
    new_event_loop, install_compat_mode, uninstall_compat_mode, load_ipython_extension,
    unload_ipython_extension,
):
    try:
        _obj.__module__ = "trio_asyncio"
    except (AttributeError, TypeError):  # pragma: no cover
        pass
del _obj

# Names trio-asyncio 0.16 deprecated; reading one warns (TrioAsyncioDeprecationWarning).
_DEPRECATED = {
    "adapter": "_adapter", "async_": "_async", "base": "_base", "child": "_child",
    "handles": "_handles", "loop": "_loop", "sync": "_sync", "util": "_util",
}


def __getattr__(name: str) -> object:
    import importlib

    from ._deprecate import warn_deprecated

    if name in _DEPRECATED:
        target = _DEPRECATED[name]
        warn_deprecated(
            f"trio_asyncio.{name}", "0.11.0",
            instead="an import from the top-level trio_asyncio package",
        )
        return importlib.import_module(f"trio_asyncio.{target}")
    if name == "TrioChildWatcher":
        warn_deprecated("trio_asyncio.TrioChildWatcher", "0.11.0", instead=None)
        from ._child import TrioChildWatcher

        return TrioChildWatcher
    if name == "TrioPolicy":
        warn_deprecated("trio_asyncio.TrioPolicy", "0.11.0", instead=None)
        return _policy.TrioPolicy
    if name == "current_policy":
        warn_deprecated("trio_asyncio.current_policy", "0.11.0", instead=None)
        return _policy.current_policy
    raise AttributeError(f"module 'trio_asyncio' has no attribute {name!r}")
