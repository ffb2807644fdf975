"""trio-asyncio on a Rust engine: asyncio event loops that run on top of Trio.

General layout
--------------
- ``_engine`` (Rust): fibers, the scheduler (ready queue, timers, reactor) and the loop core.
- ``_fiber``: the Python view of the fibers.
"""

from __future__ import annotations

import sys as _sys

if _sys.version_info[:2] not in ((3, 11),):
    raise ImportError(
        "trio_asyncio (trio-asyncio-rs) supports CPython 3.11; "
        f"this is {_sys.version_info[0]}.{_sys.version_info[1]}"
    )

from ._engine import __version__ as __version__
