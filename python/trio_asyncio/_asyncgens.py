"""Route async-generator finalisation to the flavour that first iterated the generator.

While an ``open_loop`` loop runs, the thread's async-generator hooks are a dispatcher: an
async generator first iterated by asyncio code (sniffio says "asyncio") belongs to the
trio-asyncio loop running it and is finalised by that loop; any other goes to the hooks
that were installed before (Trio's).
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from sniffio import thread_local as _sniffio_thread_local


class AsyncGeneratorDispatcher:
    """Shared by every ``open_loop`` loop of a thread (reference counted)."""

    def __init__(self, prev_hooks: Any) -> None:
        self.prev_hooks = prev_hooks
        self.refcount = 1
        self.owners: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    @classmethod
    def install(cls) -> AsyncGeneratorDispatcher:
        hooks = sys.get_asyncgen_hooks()
        current = getattr(hooks.firstiter, "__self__", None)
        if isinstance(current, cls):
            current.refcount += 1
            return current
        dispatcher = cls(hooks)
        sys.set_asyncgen_hooks(firstiter=dispatcher.firstiter, finalizer=dispatcher.finalizer)
        return dispatcher

    def uninstall(self) -> None:
        self.refcount -= 1
        if self.refcount == 0:
            sys.set_asyncgen_hooks(*self.prev_hooks)

    def firstiter(self, agen: Any) -> None:
        if _sniffio_thread_local.name == "asyncio":
            import asyncio

            loop = asyncio.get_running_loop()
            self.owners[agen] = loop
            loop._asyncgen_firstiter_hook(agen)
        elif self.prev_hooks.firstiter is not None:
            self.prev_hooks.firstiter(agen)

    def finalizer(self, agen: Any) -> None:
        loop = self.owners.pop(agen, None)
        if loop is not None and not loop.is_closed():
            loop._asyncgen_finalizer_hook(agen)
        elif self.prev_hooks.finalizer is not None:
            self.prev_hooks.finalizer(agen)
