"""Conformance runner: CPython's ``test.test_asyncio`` as the referee for trio_asyncio.

Two modes (see design/conformance.md):

* ``compat``: the whole stdlib suite runs with ``trio_asyncio`` imported first, so every
  loop that a test obtains through asyncio's policy is the package's sync loop.
* ``loop-under-test``: the loop-generic suites are re-targeted so that the loop they test
  is built by a configurable loop factory (default ``trio_asyncio._sync:SyncTrioEventLoop``).

Each mode runs twice in one invocation: on the interpreter with the package ("ours") and
on stock asyncio (the baseline). The parent process (``cli``/``scheduler``) only uses the
standard library; ``worker`` runs inside the interpreter under test, one process per
test module, and reports one JSON line per event.
"""
