"""``LoopMixin``: the base of the mixins that ``BaseTrioEventLoop`` is assembled from.

At run time it is plain ``object``: each mixin (``_driver``, ``_signals``, ``_subprocess``)
holds one concept's methods, and ``BaseTrioEventLoop`` lists them ahead of
``_engine.LoopCore`` and asyncio's ``_UnixSelectorEventLoop``, so that the mixins' methods
replace asyncio's. For
type checkers it is a loop with those two bases, plus the asyncio internals the loop
classes use that typeshed does not declare (every private name used is listed in
design/loops.md), so that each mixin is checked against the loop it is part of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures
    import weakref
    from asyncio import unix_events as _unix_events

    from ._engine import LoopCore
    from ._selector import ReactorSelector

    class LoopMixin(LoopCore, _unix_events._UnixSelectorEventLoop):  # type: ignore[misc]
        # asyncio.BaseEventLoop internals that typeshed does not declare.
        _asyncgens: weakref.WeakSet[Any]
        _coroutine_origin_tracking_enabled: bool
        _default_executor: concurrent.futures.Executor | None
        _selector: ReactorSelector | None
        _signal_handlers: dict[int, asyncio.Handle]
        _thread_id: int | None

        def _check_closed(self) -> None: ...
        def _check_running(self) -> None: ...
        def _check_callback(self, callback: object, method: str) -> None: ...
        def _check_default_executor(self) -> None: ...
        def _check_signal(self, sig: int) -> None: ...
        def _handle_signal(self, sig: int) -> None: ...
        def _set_coroutine_origin_tracking(self, enabled: bool) -> None: ...
        def _asyncgen_firstiter_hook(self, agen: Any) -> None: ...
        def _asyncgen_finalizer_hook(self, agen: Any) -> None: ...

        # BaseTrioEventLoop's own, used by the mixins.
        def _close_core_side(self) -> None: ...

else:
    LoopMixin = object

__all__ = ["LoopMixin"]
