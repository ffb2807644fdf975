"""Every difference between the supported CPython versions, in one place.

Other modules import the flags below instead of testing ``sys.version_info`` themselves, so
that adding or dropping a version is an edit to this file (and to ``csrc/shim.c``, the
Rust engine's one version-specific file).
"""

from __future__ import annotations

import sys

#: The CPython minor versions this package is built and tested for.
SUPPORTED: tuple[tuple[int, int], ...] = ((3, 11), (3, 12), (3, 13))

#: ``asyncio.run(loop_factory=...)``, ``asyncio.Runner(loop_factory=...)`` semantics of
#: 3.12, asyncio's child watchers deprecated, ``sys.monitoring``.
PY312: bool = sys.version_info >= (3, 12)
#: asyncio's child watchers removed from the default path, ``PyThreadState.current_frame``.
PY313: bool = sys.version_info >= (3, 13)


def supported_versions_text() -> str:
    """The supported versions as a human-readable list ("3.11, 3.12 and 3.13")."""
    names = [f"{major}.{minor}" for major, minor in SUPPORTED]
    return ", ".join(names[:-1]) + " and " + names[-1]


def check_interpreter() -> None:
    """Refuse to import on an interpreter this package was not built and tested for.

    :raises ImportError: on another CPython version, another implementation, or a
        free-threaded build.
    """
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.implementation.name != "cpython":
        raise ImportError(
            f"trio_asyncio (trio-asyncio-rs) supports CPython {supported_versions_text()}; "
            f"this is {sys.implementation.name} {here}"
        )
    if tuple(sys.version_info[:2]) not in SUPPORTED:
        raise ImportError(
            f"trio_asyncio (trio-asyncio-rs) supports CPython {supported_versions_text()}; "
            f"this is {here}"
        )
    gil_check = getattr(sys, "_is_gil_enabled", None)
    if gil_check is not None and not gil_check():
        raise ImportError(
            "trio_asyncio (trio-asyncio-rs) needs a CPython build with the GIL; "
            f"this is a free-threaded {here}"
        )
