"""The context variable naming the trio-asyncio loop of the current Trio task."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._base import BaseTrioEventLoop

current_loop: ContextVar[BaseTrioEventLoop | None] = ContextVar("trio_aio_loop", default=None)
"""The trio-asyncio loop of the current Trio task (``None`` outside any loop).

:func:`open_loop` sets it for the code inside its block; the sync loop sets it for the Trio
tasks it runs. :func:`asyncio.get_event_loop` and :func:`asyncio.get_running_loop` return it
inside Trio.
"""
