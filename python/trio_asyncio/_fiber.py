"""Stackful fibers (the Python view of ``trio_asyncio._engine``'s fiber engine).

- ``Fiber(fn, *args, stack_size=None, **kwargs)``: ``switch(value)`` starts or resumes it and
  returns what it passes to ``suspend()`` (or ``fn``'s return value); ``throw(exc)``;
  ``dead``; ``started``.
- ``suspend(value=None)``: return ``value`` to whoever switched to the running fiber.
- ``current()``: the running fiber, or ``None``.
- ``FiberExit``: kills a fiber (a ``FiberExit`` leaving ``fn`` is a normal finish).

A fiber starts in a *copy* of the context that is current at its first ``switch()``;
``sys.exc_info()`` is per fiber; ``threading.local`` and ``sys.settrace`` are per thread.
See ``design/fibers.md``.
"""

from __future__ import annotations

from ._engine import Fiber as Fiber
from ._engine import FiberExit as FiberExit
from ._engine import current as current
from ._engine import fiber_statistics as fiber_statistics
from ._engine import suspend as suspend

__all__ = ["Fiber", "FiberExit", "current", "fiber_statistics", "suspend"]
