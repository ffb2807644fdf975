"""Loop-under-test mode: point the loop-generic stdlib tests at a loop factory.

Runs inside the worker. Nothing is copied from CPython: the test classes are loaded from
the interpreter's own ``test.test_asyncio`` package and changed from the outside.

Three routes, applied per test class:

1. *Hook classes*: a class that defines its own ``create_event_loop()`` or ``new_loop()``
   returning a hard-wired stdlib loop (``asyncio.SelectorEventLoop(...)``,
   ``asyncio.ProactorEventLoop()``). Siblings that differ only in the selector (EPoll,
   Poll, Select, Kqueue, Proactor ...) share their bases; one runnable representative per
   group is subclassed as ``LoopUnderTest_<Name>`` with the hook returning ``factory()``,
   and the whole group is dropped (running the same tests three times on one loop would
   only triple the counts).
2. *setUp classes*: a class whose own ``setUp`` builds ``asyncio.SelectorEventLoop()``
   is subclassed as ``LoopUnderTest_<Name>``; during its ``setUp`` the name
   ``asyncio.SelectorEventLoop`` is bound to the factory.
3. *Policy route*, every other class: before each test the runner installs a policy whose
   ``new_event_loop()`` returns ``factory()``, which covers ``asyncio.new_event_loop()``,
   ``asyncio.run()``, ``asyncio.Runner()`` and ``unittest.IsolatedAsyncioTestCase``.

Tests built on ``test_utils.TestLoop`` (fake time, driven by a generator) stay on that
loop: they are counted at run time and reported as not re-targetable.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import types
import unittest
from typing import Any, Callable, Iterable

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

HOOKS = ("create_event_loop", "new_loop")
_HARDWIRED = re.compile(r"\b(Selector|Proactor)EventLoop\(")
_SETUP_HARDWIRED = re.compile(r"\basyncio\.SelectorEventLoop\(")
_SELECTOR_WORDS = re.compile(r"(Selector|Select|EPoll|Poll|Kqueue|Proactor)(?=[A-Z]|$)")


def _own_source(cls: type, name: str) -> str:
    func = cls.__dict__.get(name)
    if func is None:
        return ""
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


def _hook_of(cls: type) -> str | None:
    for hook in HOOKS:
        if _HARDWIRED.search(_own_source(cls, hook)):
            return hook
    return None


def _is_skipped(cls: type) -> bool:
    return bool(getattr(cls, "__unittest_skip__", False))


def _generated_name(cls: type, strip: bool) -> str:
    name = cls.__name__
    if strip:
        name = _SELECTOR_WORDS.sub("", name) or name
    return f"LoopUnderTest_{name}"


def _make_hook_class(rep: type, hook: str, factory: LoopFactory) -> type:
    def make_loop(self: Any) -> asyncio.AbstractEventLoop:
        return factory()

    return _subclass(rep, {hook: make_loop}, strip=True)


def _make_setup_class(cls: type, factory: LoopFactory) -> type:
    orig_setup = cls.__dict__["setUp"]

    def setUp(self: Any) -> None:
        saved = asyncio.SelectorEventLoop
        setattr(asyncio, "SelectorEventLoop", factory)
        try:
            orig_setup(self)
        finally:
            setattr(asyncio, "SelectorEventLoop", saved)

    return _subclass(cls, {"setUp": setUp}, strip=False)


def _subclass(base: type, namespace: dict[str, Any], *, strip: bool) -> type:
    name = _generated_name(base, strip)
    ns = dict(namespace)
    ns["__module__"] = base.__module__
    ns["__qualname__"] = name
    ns["__doc__"] = f"{base.__qualname__} re-targeted at the loop under test."
    return types.new_class(name, (base,), exec_body=lambda body: body.update(ns))


def test_classes(module: types.ModuleType) -> list[type]:
    """The TestCase classes a default loader would find in ``module``, in its order."""
    found = []
    for name in dir(module):
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            found.append(obj)
    return found


def plan(module: types.ModuleType, factory: LoopFactory) -> tuple[list[type], list[str]]:
    """Return the classes to load for ``module`` and notes on what was re-targeted."""
    classes = test_classes(module)
    groups: dict[tuple[type, ...], list[type]] = {}
    setup_classes: set[type] = set()
    for cls in classes:
        if _hook_of(cls) is not None:
            groups.setdefault(cls.__bases__, []).append(cls)
        elif _SETUP_HARDWIRED.search(_own_source(cls, "setUp")):
            setup_classes.add(cls)

    replaced: dict[type, type | None] = {}
    notes: list[str] = []
    for members in groups.values():
        runnable = [c for c in members if not _is_skipped(c)]
        for member in members:
            replaced[member] = None
        if not runnable:
            continue
        rep = next((c for c in runnable if "Select" in c.__name__), runnable[0])
        hook = _hook_of(rep)
        assert hook is not None
        new = _make_hook_class(rep, hook, factory)
        replaced[rep] = new
        dropped = ", ".join(c.__name__ for c in members if c is not rep)
        notes.append(f"{new.__name__}: {rep.__name__}.{hook}() -> factory; dropped: {dropped or '-'}")
    for cls in setup_classes:
        new = _make_setup_class(cls, factory)
        replaced[cls] = new
        notes.append(f"{new.__name__}: {cls.__name__}.setUp with SelectorEventLoop -> factory")

    result: list[type] = []
    for cls in classes:
        if cls in replaced:
            replacement = replaced[cls]
            if replacement is not None:
                result.append(replacement)
        else:
            result.append(cls)
    return result, notes


def make_policy_class(factory: LoopFactory) -> type[asyncio.AbstractEventLoopPolicy]:
    """A default policy whose ``new_event_loop()`` returns ``factory()``."""
    base: type[asyncio.AbstractEventLoopPolicy] = asyncio.DefaultEventLoopPolicy

    class LoopUnderTestPolicy(base):  # type: ignore[valid-type,misc]
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            return factory()

    return LoopUnderTestPolicy


def load(loader: unittest.TestLoader, classes: Iterable[type]) -> list[unittest.TestCase]:
    tests: list[unittest.TestCase] = []
    for cls in classes:
        tests.extend(flatten(loader.loadTestsFromTestCase(cls)))
    return tests


def flatten(suite: unittest.TestSuite | unittest.TestCase) -> list[unittest.TestCase]:
    if isinstance(suite, unittest.TestCase):
        return [suite]
    out: list[unittest.TestCase] = []
    for item in suite:
        out.extend(flatten(item))
    return out
