"""Count, per test, the event loops that were built and run (runs inside the worker).

The loop class under test gets its ``__init__``, ``run_forever`` and ``run_until_complete``
wrapped, and asyncio's ``_set_running_loop`` (both the ``asyncio`` and ``asyncio.events``
names, which loops call through the module) is wrapped too, so a loop is seen running
whichever of the two paths its implementation takes. A class that can't be patched (an
extension type) is still counted through ``_set_running_loop``. ``ran`` counts entries
into a run method or the running-loop setter: only ``ran > 0`` is meaningful.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import functools
import importlib
import weakref
from typing import Any, Callable


class LoopCounters:
    """Per-test counters; ``reset()`` at test start, ``snapshot()`` at test end."""

    def __init__(self, loop_class: type) -> None:
        self.loop_class = loop_class
        self.created = 0
        self.ran = 0
        self.testloops = 0
        self.all_loops = 0
        self._seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self._init_patched = False

    def reset(self) -> None:
        self.created = self.ran = self.testloops = self.all_loops = 0
        self._seen = weakref.WeakSet()

    def note_created(self, loop: Any) -> None:
        if loop in self._seen:
            return
        self._seen.add(loop)
        self.created += 1

    def note_ran(self, loop: Any) -> None:
        if not self._init_patched:
            self.note_created(loop)
        self.ran += 1

    def snapshot(self) -> dict[str, int]:
        ours = self.created if issubclass(self.loop_class, asyncio.BaseEventLoop) else 0
        return {
            "created": self.created,
            "ran": self.ran,
            "testloops": self.testloops,
            "other_loops": max(0, self.all_loops - ours - self.testloops),
        }


def _try_setattr(cls: type, name: str, value: Any) -> bool:
    try:
        setattr(cls, name, value)
    except (TypeError, AttributeError):
        return False
    return True


def install(loop_class: type) -> LoopCounters:
    """Wrap the loop class and asyncio's running-loop setter; return the counters."""
    counters = LoopCounters(loop_class)

    orig_init = getattr(loop_class, "__init__")

    @functools.wraps(orig_init)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        counters.note_created(self)
        orig_init(self, *args, **kwargs)

    counters._init_patched = _try_setattr(loop_class, "__init__", init)

    for name in ("run_forever", "run_until_complete"):
        orig = getattr(loop_class, name, None)
        if orig is None:
            continue
        _try_setattr(loop_class, name, _wrap_run(orig, counters))

    base_init = asyncio.BaseEventLoop.__init__

    @functools.wraps(base_init)
    def any_init(self: Any, *args: Any, **kwargs: Any) -> None:
        counters.all_loops += 1
        base_init(self, *args, **kwargs)

    asyncio.BaseEventLoop.__init__ = any_init  # type: ignore[method-assign]

    _wrap_set_running_loop(counters)
    return counters


def _wrap_run(orig: Callable[..., Any], counters: LoopCounters) -> Callable[..., Any]:
    @functools.wraps(orig)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        counters.note_ran(self)
        return orig(self, *args, **kwargs)

    return run


def _wrap_set_running_loop(counters: LoopCounters) -> None:
    # Loops call either asyncio.events._set_running_loop or asyncio._set_running_loop;
    # both names start out bound to the same function, so wrap each name once.
    for module in (asyncio.events, asyncio):
        orig = getattr(module, "_set_running_loop")

        def setter(loop: Any, _orig: Callable[[Any], None] = orig) -> None:
            if loop is not None and isinstance(loop, counters.loop_class):
                counters.note_ran(loop)
            _orig(loop)

        setattr(module, "_set_running_loop", setter)


def install_testloop(counters: LoopCounters) -> None:
    """Count ``test.test_asyncio.utils.TestLoop`` instances (the fake-time loop)."""
    test_utils = importlib.import_module("test.test_asyncio.utils")
    orig = test_utils.TestLoop.__init__

    @functools.wraps(orig)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        counters.testloops += 1
        orig(self, *args, **kwargs)

    test_utils.TestLoop.__init__ = init
