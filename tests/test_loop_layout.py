"""The loop classes' layout: which of asyncio's loop methods each one replaces, and where.

``BaseTrioEventLoop`` is assembled from one mixin per concept (``_signals``, ``_subprocess``,
``_trio_run``) ahead of the Rust ``LoopCore`` and asyncio's ``_UnixSelectorEventLoop``.
These tests pin the outcome of that method resolution order: the same asyncio methods are
replaced (by the Rust core or by our Python code) and every other one is asyncio's own.
"""

from __future__ import annotations

import ast
import asyncio.base_events
import asyncio.selector_events
import asyncio.unix_events
from collections.abc import Callable
from pathlib import Path

import pytest

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
    "call_later", "call_soon", "call_soon_threadsafe", "is_closed", "is_running", "stop",
    "time",
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
    trio_asyncio.SyncTrioEventLoop: {"create_task", "run_forever"},
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
