"""``TrioAsyncioDeprecationWarning`` and the deprecated names of trio-asyncio 0.16."""

from __future__ import annotations

import warnings


class TrioAsyncioDeprecationWarning(FutureWarning):
    """Warning emitted when deprecated trio-asyncio functionality is used.

    A :class:`FutureWarning` (shown by default, overridable with ``-W``), like
    :class:`trio.TrioDeprecationWarning`.
    """


def warn_deprecated(thing: str, version: str, *, instead: str | None, stacklevel: int = 2) -> None:
    """Emit a :class:`TrioAsyncioDeprecationWarning` for *thing*."""
    msg = f"{thing} is deprecated since trio-asyncio {version}"
    msg += " with no replacement" if instead is None else f"; use {instead} instead"
    warnings.warn(TrioAsyncioDeprecationWarning(msg), stacklevel=stacklevel + 1)
