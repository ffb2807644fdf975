"""Generate the "Private names used" table of design/loops.md from the code.

Scans ``python/trio_asyncio/*.py`` (with :mod:`ast`) for private names of other packages:

- imports of, or from, a private module or a private name (``from _asyncio import
  _set_running_loop``);
- attribute chains rooted at an imported module with a private link
  (``trio._core._run.GLOBAL_RUN_CONTEXT``, ``events._get_running_loop``);
- ``self._name`` in the loop classes (and the mixins they are assembled from) where ``_name`` is defined by asyncio's loop classes
  (``BaseEventLoop``, ``BaseSelectorEventLoop``, ``_UnixSelectorEventLoop``): inherited
  internals used or overridden.

The reason for each row lives in ``WHY`` below; a name found in the code without a reason
is an error, so a new private dependency cannot go in unexplained.

The inherited-internals row depends on the asyncio of the interpreter running the script: run
it with the project's default CPython (3.11).

Usage::

    python3 scripts/gen_private_names.py           # rewrite the table in design/loops.md
    python3 scripts/gen_private_names.py --check   # exit 1 if the table is stale (CI)
"""

from __future__ import annotations

import argparse
import ast
import asyncio.base_events
import asyncio.selector_events
import asyncio.unix_events
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "python" / "trio_asyncio"
DOC = REPO / "design" / "loops.md"
BEGIN = "<!-- BEGIN PRIVATE NAMES (scripts/gen_private_names.py) -->"
END = "<!-- END PRIVATE NAMES -->"

#: Module names whose private parts we may rely on, by the name they are imported as.
EXTERNAL_ROOTS = {"asyncio", "trio", "selectors", "signal", "sniffio", "outcome", "_asyncio",
                  "events", "base_events", "coroutines", "format_helpers", "_unix_events",
                  "unix_events", "transports", "constants", "futures", "selector_events",
                  "sslproto", "trsock"}

#: The asyncio loop classes whose internals the loop classes inherit.
ASYNCIO_LOOP_CLASSES = (asyncio.base_events.BaseEventLoop,
                        asyncio.selector_events.BaseSelectorEventLoop,
                        asyncio.unix_events._UnixSelectorEventLoop)  # type: ignore[attr-defined]

INHERITED = "asyncio loop-class internals (inherited, used or overridden)"

WHY: dict[str, str] = {
    "trio._core._run.GLOBAL_RUN_CONTEXT":
        "the thread-local holding Trio's current run/task, reached only in `_trio_run`: "
        "swapped around fiber switches; read (`getattr(..., \"task\")`) as a fast \"am I in "
        "Trio\" test and to tell whether a loop runs inside its own Trio run",
    "_asyncio._get_running_loop":
        "asyncio's own (C) running-loop slot, read without compatibility mode's Trio-aware "
        "replacement of `asyncio.events._get_running_loop`",
    "_asyncio._set_running_loop":
        "clear asyncio's running loop in a forked child (the engine, `src/py/running_loop.rs`, "
        "sets it around callback batches and runs, as asyncio's own loops do)",
    "asyncio._get_running_loop":
        "the loop an adapter means when no `current_loop` is set (asyncio code on a sync loop "
        "runs in contexts copied from the loop's caller)",
    "SystemClock.offset":
        "undocumented attribute of Trio's default clock (reached through the public "
        "`trio.lowlevel.current_clock()`): lets Rust read the run's clock natively",
    "Runner.ki_pending":
        "attribute of Trio's run (reached through `GLOBAL_RUN_CONTEXT.runner`, read with "
        "`getattr`): a Ctrl-C Trio has not yet delivered when the sync loop's run is about to "
        "be frozen is taken and raised out of the `run_*` call it arrived in, not out of a "
        "later call",
    "asyncio.DefaultEventLoopPolicy._watcher":
        "the policy's child-watcher slot (read with `getattr`): one child watcher per thread, "
        "whichever policy object asks (`TrioPolicy` forwards it to the thread's policy)",
    "pytest_asyncio._<scope>_scoped_runner":
        "pytest-asyncio's runner fixtures (no public accessor): the `loop` fixture of a "
        "pytest-asyncio test is that runner's loop",
    "base_events._run_until_complete_cb":
        "the done callback the sync loop's `run_until_complete` adds and removes, as "
        "asyncio's does (code that inspects the future's callbacks sees asyncio's function)",
    "events._get_running_loop":
        "the running loop as asyncio code sees it (compatibility mode's version inside Trio)",
    "events.BaseDefaultEventLoopPolicy._Local":
        "the policy's per-thread state, renewed in a forked child (3.12+) to forget the "
        "inherited current loop, as asyncio's own at-fork hook does for its global policy",
    "selectors._fileobj_to_fd":
        "same fd conversion as asyncio's selector (`ReactorSelector`)",
    "_unix_events._UnixSelectorEventLoop":
        "the base class: inherited transports, sockets, servers, pipes, signals",
    "_unix_events._UnixSubprocessTransport":
        "subprocess transport created directly (child exit through a pidfd registered in the "
        "reactor, no watcher thread)",
    "base_events._set_nodelay":
        "the native transport sets TCP_NODELAY on its socket as asyncio's transports do",
    "transports._FlowControlMixin":
        "base class of the native transport: `loop.sendfile`'s fallback protocol refuses "
        "transports that are not instances of it",
    "constants._SendfileMode.TRY_NATIVE":
        "the native transport's `_sendfile_compatible` (asyncio's `loop.sendfile` reads it)",
    "futures._set_result_unless_cancelled":
        "the native transport wakes the connection waiter as asyncio's transports do",
    "selector_events._test_selector_event":
        "the native transport's `__repr__` shows read/write polling as asyncio's does",
    INHERITED:
        "the loop is an asyncio `BaseEventLoop` subclass and keeps its contracts (asyncio's "
        "own methods call these)",
}

#: Rows the scan cannot see (reached through ``getattr`` with a constant name): (name, where).
MANUAL: list[tuple[str, tuple[str, ...]]] = [
    ("SystemClock.offset", ("_base",)),
    ("Runner.ki_pending", ("_sync",)),
    ("asyncio.DefaultEventLoopPolicy._watcher", ("_policy", "_subprocess")),
    ("pytest_asyncio._<scope>_scoped_runner", ("_pytest_plugin",)),
]

#: Names that look private but are ours or are language protocol.
IGNORED_ATTRS = {"_engine"}


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _chain(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _asyncio_internals() -> set[str]:
    names: set[str] = set()
    for cls in ASYNCIO_LOOP_CLASSES:
        names.update(n for n in vars(cls) if _private(n))
    # Instance attributes: the private names their methods use.
    for cls in ASYNCIO_LOOP_CLASSES:
        for fn in vars(cls).values():
            code = getattr(fn, "__code__", None)
            if code is not None:
                names.update(n for n in code.co_names if _private(n))
    return names


def scan() -> dict[str, set[str]]:
    """Return ``{row name: {module names where used}}``."""
    internals = _asyncio_internals()
    rows: dict[str, set[str]] = defaultdict(set)
    inherited: set[str] = set()
    inherited_where: set[str] = set()
    for path in sorted(PACKAGE.glob("*.py")):
        mod = path.stem
        tree = ast.parse(path.read_text(), str(path))
        roots: set[str] = set()
        in_loop_class = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    roots.add((a.asname or a.name).split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "__future__":
                    continue
                for a in node.names:
                    roots.add(a.asname or a.name)
                    full = f"{node.module}.{a.name}"
                    if any(_private(p) for p in full.split(".")):
                        rows[full].add(mod)
            elif isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b) for b in node.bases}
                if any("EventLoop" in b or "LoopCore" in b or "Mixin" in b for b in bases):
                    in_loop_class = True
        inner = {n.value for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            chain = _chain(node)
            if chain is None:
                continue
            root = chain[0]
            if root == "self" and len(chain) == 2 and in_loop_class:
                if chain[1] in internals:
                    inherited.add(chain[1])
                    inherited_where.add(mod)
                continue
            if root not in roots or root not in EXTERNAL_ROOTS:
                continue
            if node in inner:
                continue  # part of a longer chain, reported with it
            if any(_private(p) and p not in IGNORED_ATTRS for p in chain[1:]):
                rows[".".join(chain[: _last_private(chain) + 1])].add(mod)
        # Methods of the loop classes that override asyncio internals.
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and in_loop_class:
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name in internals:
                        inherited.add(item.name)
                        inherited_where.add(mod)
    for name, wheres in MANUAL:
        rows[name].update(wheres)
    rows = {k: v for k, v in rows.items() if v}
    if inherited:
        rows[f"{INHERITED}: " + ", ".join(f"`{n}`" for n in sorted(inherited))] = inherited_where
    return rows


def _last_private(chain: list[str]) -> int:
    last = 0
    for i, part in enumerate(chain):
        if i and _private(part) and part not in IGNORED_ATTRS:
            last = i
    # Keep one public name after the last private link (the object actually used).
    return min(last + 1, len(chain) - 1)


def _why(name: str) -> str | None:
    if name.startswith(INHERITED):
        return WHY[INHERITED]
    return WHY.get(name)


def render(rows: dict[str, set[str]]) -> tuple[str, list[str]]:
    missing = []
    lines = [BEGIN, "", "| name | where | why |", "|---|---|---|"]
    for name in sorted(rows, key=lambda n: (n.startswith(INHERITED), n.lower())):
        why = _why(name)
        if why is None:
            missing.append(name)
            why = "**reason missing: add it to WHY in scripts/gen_private_names.py**"
        where = ", ".join(f"`{m}`" for m in sorted(rows[name]))
        shown = name if name.startswith(INHERITED) else f"`{name}`"
        lines.append(f"| {shown} | {where} | {why} |")
    lines += ["", END]
    return "\n".join(lines), missing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if design/loops.md is stale")
    a = p.parse_args(argv)
    table, missing = render(scan())
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{DOC}: markers {BEGIN!r} ... {END!r} not found", file=sys.stderr)
        return 1
    start = doc.index(BEGIN)
    stop = doc.index(END) + len(END)
    new = doc[:start] + table + doc[stop:]
    if missing:
        print("private names without a reason in WHY: " + ", ".join(missing), file=sys.stderr)
    if a.check:
        if new != doc:
            print(f"{DOC.relative_to(REPO)}: private-names table is stale; run "
                  "python3 scripts/gen_private_names.py", file=sys.stderr)
            return 1
        return 1 if missing else 0
    DOC.write_text(new)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
