"""The thread state a running loop installs and puts back (src/py/running_loop.rs): asyncio's
running loop, the owning thread, the async-generator hooks and sniffio's library; on
stock asyncio's loop and ours, with and without the sync loop's Trio run."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import warnings
import weakref
from typing import Any

import pytest
import sniffio
import trio

import trio_asyncio
from trio_asyncio._sync import SyncTrioEventLoop


def _firstiter(agen: object) -> None:
    pass


def _finalizer(agen: object) -> None:
    pass


def _state(loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    try:
        library: str | None = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    return {
        "hooks": tuple(sys.get_asyncgen_hooks()),
        "running": asyncio._get_running_loop(),
        "thread": loop._thread_id,  # type: ignore[attr-defined]
        "library": library,
    }


@pytest.mark.parametrize("with_trio_run", [False, True])
def test_state_inside_a_run_and_after_it(
    any_loop: asyncio.AbstractEventLoop, with_trio_run: bool
) -> None:
    if with_trio_run:
        if not isinstance(any_loop, SyncTrioEventLoop):
            pytest.skip("stock asyncio has no Trio run")
        any_loop.run_until_complete(any_loop.trio_as_future(trio.sleep, 0))
    old_hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=_firstiter, finalizer=_finalizer)
    try:
        for _ in range(3):  # the same each time the loop runs again
            inside: list[dict[str, Any]] = []
            any_loop.call_soon(lambda: inside.append(_state(any_loop)))
            any_loop.call_soon(any_loop.stop)
            any_loop.run_forever()
            own = (
                any_loop._asyncgen_firstiter_hook,  # type: ignore[attr-defined]
                any_loop._asyncgen_finalizer_hook,  # type: ignore[attr-defined]
            )
            # (stock asyncio's sniffio answer in a callback outside any task is "none";
            # a trio-asyncio loop names asyncio for every callback it runs)
            library = "asyncio" if isinstance(any_loop, SyncTrioEventLoop) else None
            assert inside == [
                {
                    "hooks": own,
                    "running": any_loop,
                    "thread": threading.get_ident(),
                    "library": library,
                }
            ]
            assert _state(any_loop) == {
                "hooks": (_firstiter, _finalizer),
                "running": None,
                "thread": None,
                "library": None,
            }
    finally:
        sys.set_asyncgen_hooks(*old_hooks)


def test_open_loop_batches_put_trio_state_back() -> None:
    """Inside open_loop, asyncio callbacks see the loop's hooks and the loop as running;
    the Trio task around them gets Trio's hooks and its own running loop back."""

    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:
            trio_hooks = tuple(sys.get_asyncgen_hooks())
            before = asyncio._get_running_loop()

            async def probe() -> dict[str, Any]:
                return _state(loop)

            for _ in range(3):
                inside = await trio_asyncio.aio_as_trio(probe)()
                assert inside["hooks"] == (
                    loop._asyncgen_firstiter_hook,
                    loop._asyncgen_finalizer_hook,
                )
                assert inside["running"] is loop
                assert inside["library"] == "asyncio"
                assert tuple(sys.get_asyncgen_hooks()) == trio_hooks
                assert asyncio._get_running_loop() is before
                assert sniffio.current_async_library() == "trio"

    trio.run(main)


_AUDIT_SCRIPT = """
import asyncio, sys
if sys.argv[1] == "ours":
    import trio_asyncio
events = []
def hook(name, args):
    if name.startswith("sys.set_asyncgen_hook"):
        events.append(name)
sys.addaudithook(hook)
loop = asyncio.new_event_loop()
assert (type(loop).__name__ == "SyncTrioEventLoop") == (sys.argv[1] == "ours")
events.clear()
loop.run_until_complete(asyncio.sleep(0))
print(",".join(events))
loop.close()
"""


def _output(script: str, impl: str) -> str:
    """What *script* prints in a fresh interpreter, on stock asyncio (``impl`` "stock") or
    with trio_asyncio imported ("ours"); audit hooks cannot be removed once added."""
    out = subprocess.run(
        [sys.executable, "-c", script, impl], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_hook_swaps_raise_stock_asyncios_audit_events() -> None:
    stock = _output(_AUDIT_SCRIPT, "stock")
    assert stock.count("sys.set_asyncgen_hook_firstiter") == 2
    assert _output(_AUDIT_SCRIPT, "ours") == stock


_REFUSING_AUDIT_SCRIPT = """
import asyncio, sys
if sys.argv[1] == "ours":
    import trio_asyncio
armed = []
def hook(name, args):
    if armed and name == "sys.set_asyncgen_hook_firstiter":
        armed.clear()
        raise PermissionError("no hooks today")
sys.addaudithook(hook)
loop = asyncio.new_event_loop()
armed.append(True)
try:
    loop.run_until_complete(asyncio.sleep(0))
except PermissionError as e:
    print("refused:", e)
assert not loop.is_running()
assert asyncio._get_running_loop() is None
assert sys.get_asyncgen_hooks() == (None, None), sys.get_asyncgen_hooks()
print(loop.run_until_complete(asyncio.sleep(0, "again")))
loop.close()
"""


def test_a_refused_hook_swap_fails_the_run_and_leaves_the_loop_usable() -> None:
    stock = _output(_REFUSING_AUDIT_SCRIPT, "stock")
    assert stock == "refused: no hooks today\nagain\n"
    assert _output(_REFUSING_AUDIT_SCRIPT, "ours") == stock


def test_a_used_loop_left_unclosed_is_collected() -> None:
    """The loop keeps its own hooks bound (a loop <-> bound method cycle): the garbage
    collector must still free a loop nobody closed."""
    loop = SyncTrioEventLoop()
    loop.run_until_complete(asyncio.sleep(0))
    ref = weakref.ref(loop)
    del loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert ref() is None

