# Hand-written stub for the Rust extension module trio_asyncio._engine.
from typing import Any

__version__: str
build_info: dict[str, Any]
