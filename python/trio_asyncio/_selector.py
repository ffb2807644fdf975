"""``loop._selector``: a read-only ``selectors`` view of the loop's reactor registrations.

asyncio's transports (their ``__repr__``) and some tests look at ``loop._selector``
(``get_key``, ``get_map``). The loops have no selector of their own: fds are registered in
the Rust core's reactor through the loop (``_add_reader`` and friends), which also polls it.
"""

from __future__ import annotations

import selectors
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._base import BaseTrioEventLoop


class ReactorSelector(selectors.BaseSelector):
    """A read-only ``selectors`` view of the loop's reactor registrations.

    Registering and selecting go through the loop, never through this view; those methods
    raise :exc:`NotImplementedError`.
    """

    def __init__(self, loop: BaseTrioEventLoop) -> None:
        self._loop_ref = weakref.ref(loop)

    def _key(self, fd: int) -> selectors.SelectorKey | None:
        loop = self._loop_ref()
        if loop is None or loop.is_closed():
            return None
        reader = loop._reader_handle(fd)
        writer = loop._writer_handle(fd)
        events_mask = (selectors.EVENT_READ if reader is not None else 0) | (
            selectors.EVENT_WRITE if writer is not None else 0
        )
        if not events_mask:
            return None
        return selectors.SelectorKey(fd, fd, events_mask, (reader, writer))

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        fd = selectors._fileobj_to_fd(fileobj)  # type: ignore[attr-defined]
        key = self._key(fd)
        if key is None:
            raise KeyError(f"{fileobj!r} is not registered")
        return key

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        loop = self._loop_ref()
        if loop is None or loop.is_closed():
            return {}
        keys = {}
        for fd in loop._fd_registrations():
            key = self._key(fd)
            if key is not None:
                keys[fd] = key
        return keys

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        raise NotImplementedError("register through loop.add_reader()/add_writer()")

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        raise NotImplementedError("unregister through loop.remove_reader()/remove_writer()")

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        raise NotImplementedError("the trio-asyncio loop polls its reactor itself")

    def close(self) -> None:
        pass


__all__ = ["ReactorSelector"]
