"""``new_event_loop()``: the loop factory for asyncio's runners.

asyncio's lasting way to choose a loop is a factory passed to the code that runs it
(``asyncio.run(..., loop_factory=...)``, ``asyncio.Runner(loop_factory=...)``, pytest-asyncio's
and anyio's loop-factory options); Python 3.14 deprecates the policy system that
compatibility mode (``_policy``) patches. This module needs no patching at all.
"""

from __future__ import annotations

from ._sync import SyncTrioEventLoop


def new_event_loop() -> SyncTrioEventLoop:
    """Create a new, stopped :class:`SyncTrioEventLoop`.

    Synchronous. Pass it as a loop factory::

        asyncio.run(main(), loop_factory=trio_asyncio.new_event_loop)   # Python 3.12+
        with asyncio.Runner(loop_factory=trio_asyncio.new_event_loop) as runner:
            runner.run(main())

    The loop is an ordinary asyncio loop (start and stop it any number of times) that can
    also run Trio code: ``await trio_as_aio(trio_fn)(...)`` from its asyncio tasks. It works
    whether or not compatibility mode is installed.
    """
    return SyncTrioEventLoop()
