"""Demo: ``python -m trio_asyncio``."""
from __future__ import annotations

import trio_asyncio

print(f"trio_asyncio {trio_asyncio.__version__}")
