"""pytest plugin of trio-asyncio-rs: a gate that does nothing unless asked for.

Installing the package registers this module under the ``pytest11`` entry point named
``trio_asyncio``, so pytest imports it in every run. It therefore imports nothing of
``trio_asyncio`` (whose import installs compatibility mode) until the plugin is activated,
with ``-p trio_asyncio`` on the command line (or in ``addopts``) or ``trio_asyncio_mode =
true`` in the ini file. Then ``trio_asyncio._pytest_plugin`` is registered and does the
work. This module lives outside the ``trio_asyncio`` package because importing any
submodule of a package runs the package's ``__init__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

#: Names that activate the plugin when given to ``-p``.
ACTIVATING_PLUGIN_ARGS = frozenset({"trio_asyncio", "trio_asyncio_pytest"})
#: Name under which the active part is registered.
ACTIVE_PLUGIN_NAME = "trio_asyncio_active"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "trio_asyncio_mode",
        type="bool",
        default=False,
        help="run asyncio tests on trio_asyncio's sync loop and pytest-trio tests inside "
        "trio_asyncio.open_loop() (same as '-p trio_asyncio')",
    )


def is_requested(config: pytest.Config) -> bool:
    """Whether this run asked for the plugin (``-p trio_asyncio`` or the ini option)."""
    plugin_args = getattr(config.known_args_namespace, "plugins", None) or []
    if ACTIVATING_PLUGIN_ARGS.intersection(plugin_args):
        return True
    return bool(config.getini("trio_asyncio_mode"))


def pytest_configure(config: pytest.Config) -> None:
    if not is_requested(config) or config.pluginmanager.has_plugin(ACTIVE_PLUGIN_NAME):
        return
    from trio_asyncio import _pytest_plugin

    _pytest_plugin.activate(config)
    config.pluginmanager.register(_pytest_plugin, ACTIVE_PLUGIN_NAME)
