"""``python -m trio_asyncio``: an interactive console with top-level ``await`` for Trio and
asyncio code (``_repl``), or the demo with ``--demo`` (``_demo``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trio_asyncio",
        description=(
            "Open an interactive Python console where top-level 'await' works for Trio "
            "and asyncio code alike. Every statement runs inside one Trio run that lives "
            "for the whole session, on a trio_asyncio sync loop: Trio tasks started in "
            "'nursery' and asyncio tasks keep running in later statements. "
            "Ctrl-C cancels the running statement; Ctrl-D leaves."
        ),
    )
    parser.add_argument(
        "--demo", action="store_true",
        help="instead of the console, run a short demo of both loops and exit",
    )
    args = parser.parse_args(argv)
    if args.demo:
        from ._demo import main as demo

        demo()
        return 0
    from ._repl import interact

    interact()
    return 0


if __name__ == "__main__":
    sys.exit(main())
