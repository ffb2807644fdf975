"""The loop classes' layout: which of asyncio's loop methods each one replaces, and where.

``BaseTrioEventLoop`` is assembled from one mixin per concept (``_signals``, ``_subprocess``,
``_trio_run``) ahead of the Rust ``LoopCore`` and asyncio's ``_UnixSelectorEventLoop``.
These tests pin the outcome of that method resolution order: the same asyncio methods are
replaced (by the Rust core or by our Python code) and every other one is asyncio's own.
"""

from __future__ import annotations

import ast
import asyncio
import asyncio.base_events
import asyncio.selector_events
import asyncio.unix_events
import dis
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import trio_asyncio
from trio_asyncio import _engine

_ASYNCIO_CLASSES = (
    asyncio.unix_events._UnixSelectorEventLoop,  # type: ignore[attr-defined]
    asyncio.selector_events.BaseSelectorEventLoop,
    asyncio.base_events.BaseEventLoop,
    asyncio.AbstractEventLoop,
)

#: asyncio methods the Rust core replaces (the hot path).
_BY_CORE = {
    "_add_reader", "_add_writer", "_remove_reader", "_remove_writer", "call_at",
    "call_later", "call_soon", "call_soon_threadsafe", "get_debug", "is_closed",
    "is_running", "stop", "time",
}

#: asyncio methods every trio-asyncio loop replaces in Python.
_BY_BASE = {
    "__init__", "__repr__", "_add_callback_signalsafe", "_close_self_pipe", "_make_self_pipe",
    "_make_socket_transport", "_make_ssl_transport",  # the native stream transport (issue 13)
    "_make_subprocess_transport", "_process_events", "_run_once", "_timer_handle_cancelled",
    "_write_to_self", "add_signal_handler", "close", "remove_signal_handler",
    "run_in_executor", "set_debug", "set_default_executor",
}

_EXTRA = {
    trio_asyncio.BaseTrioEventLoop: set(),
    trio_asyncio.TrioEventLoop: {
        "default_exception_handler", "run_forever", "run_until_complete", "stop",
    },
    trio_asyncio.SyncTrioEventLoop: {"create_task", "run_forever", "run_until_complete"},
}


def _asyncio_names() -> set[str]:
    # methods and properties; not class metadata (__module__, __doc__, and the like)
    names: set[str] = set()
    for cls in _ASYNCIO_CLASSES:
        for name, value in vars(cls).items():
            dunder = name.startswith("__") and name.endswith("__")
            if not dunder or callable(value):
                names.add(name)
    return names


def _ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "trio_asyncio"


def _owner(cls: type, name: str) -> type:
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    raise AssertionError(name)  # pragma: no cover


@pytest.mark.parametrize("cls", list(_EXTRA), ids=lambda c: c.__name__)
def test_asyncio_methods_replaced_exactly_as_designed(cls: type) -> None:
    by_core, by_python = set(), set()
    for name in _asyncio_names():
        owner = _owner(cls, name)
        if owner is _engine.LoopCore:
            by_core.add(name)
        elif _ours(owner):
            by_python.add(name)
        else:
            assert owner in _ASYNCIO_CLASSES, (name, owner)
    extra = _EXTRA[cls]
    assert by_core == _BY_CORE - extra
    assert by_python == _BY_BASE | extra


@pytest.mark.parametrize("cls", list(_EXTRA), ids=lambda c: c.__name__)
def test_core_comes_before_asyncio_in_the_mro(cls: type) -> None:
    mro = cls.__mro__
    core = mro.index(_engine.LoopCore)
    assert all(mro.index(k) > core for k in _ASYNCIO_CLASSES)
    # only our Python classes come before the core
    assert all(_ours(k) for k in mro[:core])


def _modules_where(predicate: Callable[[ast.AST], bool]) -> set[str]:
    package = Path(trio_asyncio.__file__).parent
    found = set()
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        if any(predicate(node) for node in ast.walk(tree)):
            found.add(path.stem)
    return found


def test_trio_run_binding_has_one_home() -> None:
    # Trio's run context is reached in one module, and only it binds a loop to a run.
    def reaches_run_context(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "GLOBAL_RUN_CONTEXT"

    def binds(node: ast.AST) -> bool:
        targets = node.targets if isinstance(node, ast.Assign) else []
        return any(
            isinstance(t, ast.Attribute) and t.attr in {"_trio_runner", "_trio_token"}
            and isinstance(t.value, ast.Name) and t.value.id in {"self", "loop"}
            for t in targets
        )

    assert _modules_where(reaches_run_context) == {"_trio_run"}
    assert _modules_where(binds) == {"_trio_run"}


def _method_lookup_opname(obj: object, name: str) -> str:
    """The instruction CPython's specializing interpreter settled on for ``obj.<name>()``."""

    def probe() -> None:
        getattr(obj, name)  # keeps the name defined for type checkers
        obj.time()  # type: ignore[attr-defined]

    for _ in range(500):
        probe()
    ops = [
        i.opname for i in dis.get_instructions(probe, adaptive=True)  # type: ignore[call-arg]
        if i.argval == "time"
    ]
    return ops[0]


def _exercise_sync_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()

    async def trio_side() -> None:
        await trio.sleep(0)

    async def main() -> None:
        await asyncio.sleep(0)
        await trio_asyncio.trio_as_aio(trio_side)()  # starts the loop's Trio run (fiber)

    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.run_until_complete(main())
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.remove_signal_handler(signal.SIGUSR1)
    return loop


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_method_lookups_on_a_used_loop_stay_specialized(kind: str) -> None:
    # CPython stops specializing `loop.method(...)` on an instance whose __dict__ has 30
    # keys (3.11, 3.12), or any key at all when the class's base has C-level data (3.13);
    # every call_soon/call_at/create_future asyncio and user code make from Python then
    # takes the generic lookup. A loop that has run callbacks, Trio code and signal
    # handlers keeps all its state in slots (design/loops.md, "Instance state").
    if kind == "sync":
        loop = _exercise_sync_loop()
        try:
            opname = _method_lookup_opname(loop, "time")
            keys = len(vars(loop))
        finally:
            loop.close()
    else:

        async def aio_side() -> None:
            await asyncio.sleep(0)

        async def main() -> tuple[str, int]:
            async with trio_asyncio.open_loop() as loop:
                await trio_asyncio.aio_as_trio(aio_side)()
                loop.add_signal_handler(signal.SIGUSR1, lambda: None)
                loop.remove_signal_handler(signal.SIGUSR1)
                return _method_lookup_opname(loop, "time"), len(vars(loop))

        opname, keys = trio.run(main)
    stock = asyncio.SelectorEventLoop()
    try:
        assert "WITH_VALUES" in _method_lookup_opname(stock, "time")
        assert keys <= len(vars(stock))
    finally:
        stock.close()
    # LOAD_METHOD_WITH_VALUES/_WITH_DICT (3.11), LOAD_ATTR_METHOD_WITH_VALUES (3.12),
    # LOAD_ATTR_METHOD_LAZY_DICT (3.13: the loop's dict is never created); not the generic
    # LOAD_METHOD/LOAD_ATTR, nor their _ADAPTIVE forms (3.11)
    assert opname.startswith(("LOAD_METHOD_WITH_", "LOAD_ATTR_METHOD_")), opname
