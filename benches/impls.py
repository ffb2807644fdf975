"""The implementations under test, and how each one gets its event loop.

Two halves:

- The **table** (``IMPLS``) is read by the parent (``run.py``): each implementation name maps to
  the venv its worker runs in and to a *mode* the worker understands.  Stdlib only.
- The **runtimes** (``runtime(mode)``) are used inside a worker process.  They import the
  implementation lazily, so importing this module never touches asyncio's policy.

Modes:

=============  ==================================================================================
``asyncio``    stock ``asyncio.new_event_loop()``
``uvloop``     ``uvloop.new_event_loop()``
``rloop``      ``rloop.new_event_loop()`` (rloop 0.5: an asyncio loop in Rust, on pyo3 and mio)
``ta-sync``    ``import trio_asyncio`` then ``asyncio.new_event_loop()`` (the sync loop)
``ta-async``   ``trio_asyncio.run(trio_asyncio.aio_as_trio(coro_fn))`` (the ``open_loop`` loop)
``greenlet``   greenlet switch round trip (reference for the fiber row)
``fiber``      our fiber switch round trip (``benches/bench_fiber.py`` if present)
=============  ==================================================================================

``trio-asyncio-0.16-*`` and ``ours-*`` share modes; they differ only in the interpreter (venv)
the parent starts the worker with, since both own the import name ``trio_asyncio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable


@dataclass(frozen=True)
class Impl:
    name: str
    env: str  # "peers" | "trio-asyncio-016" | "ours" | "base"
    mode: str
    label: str  # short column label


IMPLS: dict[str, Impl] = {
    i.name: i
    for i in [
        Impl("asyncio", "peers", "asyncio", "asyncio"),
        Impl("uvloop", "peers", "uvloop", "uvloop"),
        Impl("rloop", "peers", "rloop", "rloop"),
        Impl("trio-asyncio-0.16-sync", "trio-asyncio-016", "ta-sync", "t-a 0.16 sync"),
        Impl("trio-asyncio-0.16-async", "trio-asyncio-016", "ta-async", "t-a 0.16 async"),
        Impl("ours-sync", "ours", "ta-sync", "ours sync"),
        Impl("ours-async", "ours", "ta-async", "ours async"),
        Impl("greenlet", "peers", "greenlet", "greenlet"),
        Impl("ours-fiber", "ours", "fiber", "ours fiber"),
        # A second build of our package (``run.py --base-python``), e.g. the commit before a
        # change, so before/after ratios come from the same run.
        Impl("base-sync", "base", "ta-sync", "base sync"),
        Impl("base-async", "base", "ta-async", "base async"),
    ]
}

# Shorthands accepted by ``run.py --impls``.
ALIASES: dict[str, list[str]] = {
    "ours": ["ours-sync", "ours-async", "ours-fiber"],
    "trio-asyncio-0.16": ["trio-asyncio-0.16-sync", "trio-asyncio-0.16-async"],
    "t016": ["trio-asyncio-0.16-sync", "trio-asyncio-0.16-async"],
    "peers": ["asyncio", "uvloop", "rloop", "trio-asyncio-0.16-sync", "trio-asyncio-0.16-async", "greenlet"],
    "base": ["base-sync", "base-async"],
    "all": [n for n in IMPLS if not n.startswith("base-")],
}

REFERENCE = "asyncio"


def expand(names: list[str]) -> list[str]:
    """Expand aliases, keep ``IMPLS`` order, drop duplicates; raise on unknown names."""
    wanted: set[str] = set()
    for n in names:
        for part in n.split(","):
            part = part.strip()
            if not part:
                continue
            if part in ALIASES:
                wanted.update(ALIASES[part])
            elif part in IMPLS:
                wanted.add(part)
            else:
                raise SystemExit(f"unknown implementation {part!r}; known: {sorted(IMPLS) + sorted(ALIASES)}")
    return [n for n in IMPLS if n in wanted]


# --------------------------------------------------------------------------------------------
# Runtimes (worker side)
# --------------------------------------------------------------------------------------------


class Runtime:
    """How one mode creates loops and runs a coroutine function to completion."""

    mode = "?"
    sync = True  # has a loop object usable outside any coroutine (run_until_complete etc.)
    trio_asyncio = False  # the trio-asyncio API (aio_as_trio, trio_as_aio) is there

    def new_loop(self) -> Any:
        raise NotImplementedError

    def run(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``coro_fn()`` on a fresh loop of this implementation and return its result."""
        loop = self.new_loop()
        try:
            return loop.run_until_complete(coro_fn())
        finally:
            loop.close()

    def info(self) -> dict[str, Any]:
        return {}


class AsyncioRuntime(Runtime):
    mode = "asyncio"

    def new_loop(self) -> Any:
        import asyncio

        return asyncio.new_event_loop()

    def info(self) -> dict[str, Any]:
        import asyncio
        import sys

        return {"loop": type(asyncio.new_event_loop()).__name__, "python": sys.version.split()[0]}


class PeerLoopRuntime(Runtime):
    """A peer loop made by its module's ``new_event_loop()`` (uvloop, rloop); the peer's
    policy is never installed."""

    def __init__(self, module: str) -> None:
        import importlib

        self.mode = module
        self._module = importlib.import_module(module)

    def new_loop(self) -> Any:
        return self._module.new_event_loop()

    def info(self) -> dict[str, Any]:
        return {self.mode: self._module.__version__}


def _trio_asyncio_info(mod: Any) -> dict[str, Any]:
    from envs import display_path  # relative to the repository: no machine path in results

    out: dict[str, Any] = {"trio_asyncio_file": display_path(getattr(mod, "__file__", None))}
    out["trio_asyncio_version"] = getattr(mod, "__version__", None)
    try:
        import trio

        out["trio"] = trio.__version__
    except Exception as e:  # noqa: BLE001
        out["trio"] = f"unavailable ({e!r})"
    return out


class TrioAsyncioSyncRuntime(Runtime):
    """``import trio_asyncio``; ``asyncio.new_event_loop()`` then gives the sync loop."""

    mode = "ta-sync"
    trio_asyncio = True

    def __init__(self) -> None:
        import trio_asyncio

        self.ta = trio_asyncio

    def new_loop(self) -> Any:
        import asyncio

        loop = asyncio.new_event_loop()
        if not type(loop).__module__.startswith("trio_asyncio"):
            # Without this check a package that does not install its policy yet would be
            # measured as stock asyncio under our name.
            cls = f"{type(loop).__module__}.{type(loop).__qualname__}"
            loop.close()
            raise NotImplementedError(
                f"asyncio.new_event_loop() gives {cls} after `import trio_asyncio`, "
                "not a trio_asyncio loop (policy not installed)"
            )
        return loop

    def info(self) -> dict[str, Any]:
        out = _trio_asyncio_info(self.ta)
        loop = self.new_loop()
        out["loop"] = type(loop).__name__
        loop.close()
        return out


class TrioAsyncioAsyncRuntime(Runtime):
    """``trio_asyncio.run(trio_asyncio.aio_as_trio(coro_fn))``: the loop of ``open_loop``."""

    mode = "ta-async"
    sync = False
    trio_asyncio = True

    def __init__(self) -> None:
        import trio_asyncio

        self.ta = trio_asyncio

    def run(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        async def checked() -> Any:
            import asyncio

            loop = asyncio.get_running_loop()
            if not type(loop).__module__.startswith("trio_asyncio"):
                raise NotImplementedError(f"running loop is {type(loop)!r}, not trio_asyncio's")
            return await coro_fn()

        return self.ta.run(self.ta.aio_as_trio(checked))

    def run_trio(self, trio_fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run a Trio-flavoured function inside ``open_loop`` (via ``trio_asyncio.run``)."""
        return self.ta.run(trio_fn)

    def info(self) -> dict[str, Any]:
        return _trio_asyncio_info(self.ta)


class NoLoopRuntime(Runtime):
    """Modes without an event loop (the fiber row)."""

    sync = False

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def run(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        raise NotImplementedError(f"mode {self.mode} has no event loop")

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.mode == "greenlet":
            import greenlet

            out["greenlet"] = greenlet.__version__
        return out


def runtime(mode: str) -> Runtime:
    if mode == "asyncio":
        return AsyncioRuntime()
    if mode in ("uvloop", "rloop"):
        return PeerLoopRuntime(mode)
    if mode == "ta-sync":
        return TrioAsyncioSyncRuntime()
    if mode == "ta-async":
        return TrioAsyncioAsyncRuntime()
    if mode in ("greenlet", "fiber"):
        return NoLoopRuntime(mode)
    raise ValueError(f"unknown mode {mode!r}")
