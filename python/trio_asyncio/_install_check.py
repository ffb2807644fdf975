"""Refuse to import next to PyPI's ``trio-asyncio`` distribution.

This distribution (``trio-asyncio-rs``) installs the import package ``trio_asyncio``, the
same one ``trio-asyncio`` (0.16 and earlier) installs. pip does not know the two own the
same files, so installing one over the other overwrites part of ``trio_asyncio/`` and
uninstalling either deletes files the other still lists: the result is a package made of
two projects' modules. :func:`check` finds the other distribution at import and stops with
an :class:`ImportError` that says how to repair the environment. Importing this module runs
the check (``__init__`` imports it first).

Why a directory listing and not :mod:`importlib.metadata`: importing
:mod:`importlib.metadata` (with ``email``, ``zipfile``, ``csv``, ...) costs more than the
whole check, and its lookup lists the same directories anyway. A distribution is installed
as ``<name>-<version>.dist-info`` (or ``.egg-info`` from old setuptools) in a ``sys.path``
directory, with ``<name>`` normalised to ``trio_asyncio`` by pip (older tools wrote
``trio-asyncio`` or ``trio.asyncio``); ``trio_asyncio_rs-<version>.dist-info`` is ours.
See ``design/packaging.md``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["check", "find_conflicting"]

#: The standard library's directory: on ``sys.path``, never holds distributions, and is the
#: longest listing there.
_STDLIB = os.path.dirname(os.__file__)


def _is_other(name: str) -> bool:
    """Tell whether *name* is ``trio-asyncio``'s metadata directory, in any spelling.

    ``trio_asyncio-0.16.0.dist-info`` (pip), ``trio-asyncio-0.16.0-py3.11.egg-info``
    (setuptools), any case: the name, a dash, then a version (which starts with a digit;
    ``trio_asyncio_rs-0.1.0.dist-info`` does not match).
    """
    if name[:1] not in ("t", "T"):  # most names: one comparison
        return False
    low = name.lower()
    return (
        low[:4] == "trio"
        and low[4:5] in ("-", "_", ".")
        and low[5:13] == "asyncio-"
        and low[13:14].isdigit()
        and low.endswith((".dist-info", ".egg-info"))
    )


def find_conflicting(path: list[str] | None = None) -> str | None:
    """Return the absolute path of ``trio-asyncio``'s metadata directory on *path*, or ``None``.

    :param path: the directories to search (default: ``sys.path``, ``""`` meaning the
        current directory, as the import system reads it).
    """
    for entry in sys.path if path is None else path:
        directory = entry or "."
        if directory == _STDLIB:
            continue
        try:
            names = os.listdir(directory)
        except OSError:  # not a directory (a zip file), missing, or unreadable
            continue
        for name in names:
            if _is_other(name):
                return os.path.abspath(os.path.join(directory, name))
    return None


def check() -> None:
    """Raise :class:`ImportError` if ``trio-asyncio`` is installed next to us.

    :raises ImportError: naming both distributions and how to repair the environment.
    """
    found = find_conflicting()
    if found is not None:
        raise ImportError(
            "trio_asyncio: both the 'trio-asyncio' and the 'trio-asyncio-rs' distributions "
            f"are installed (found {found}). They install the same 'trio_asyncio' package "
            "and overwrite each other's files. Repair the environment with "
            "'pip uninstall trio-asyncio trio-asyncio-rs', then "
            "'pip install trio-asyncio-rs' (or 'pip install trio-asyncio', not both)."
        )


check()
