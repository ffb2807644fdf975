"""Sphinx configuration of the trio-asyncio-rs documentation (built by scripts/docs.sh)."""

from __future__ import annotations

import trio_asyncio

project = "trio-asyncio-rs"
author = "trio-asyncio-rs developers"
release = version = trio_asyncio.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = f"trio-asyncio-rs {release}"
html_static_path: list[str] = []
