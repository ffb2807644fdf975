"""Run one stdlib test module inside the interpreter under test; report JSON lines.

Usage (spawned by the scheduler, one process per test module)::

    python -m conformance.worker --module test_events --mode compat \
        --loop-class trio_asyncio._sync:SyncTrioEventLoop --import trio_asyncio \
        --events OUT.jsonl [--exclude FILE] [--timeout SECS]

Events, one JSON object per line, flushed as they happen: ``plan`` (tests to run),
``start`` (test id), ``result`` (a :class:`conformance.model.Record`), ``done``. The
parent kills the process group when a test runs past the timeout and starts a new worker
that skips what already ran, so a hung or crashed test costs only itself.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import os
import re
import resource
import signal
import sys
import time
import traceback
import types
import unittest
from typing import IO, Any, Callable

from conformance import model

ExcInfo = tuple[type[BaseException], BaseException, types.TracebackType]

_FIXTURE = re.compile(r"^(\w+) \((.+)\)$")


def resolve(spec: str) -> Any:
    """``package.module:attr.path`` -> the object."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class Events:
    def __init__(self, path: str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")

    def emit(self, ev: str, **fields: Any) -> None:
        fields["ev"] = ev
        fields["t"] = time.time()
        self._file.write(json.dumps(fields) + "\n")
        self._file.flush()


def _last_line(err: ExcInfo) -> str:
    lines = traceback.format_exception_only(err[0], err[1])
    text = (lines[-1] if lines else repr(err[1])).strip()
    return text[:300]


class RecordingResult(unittest.TestResult):
    """Folds unittest's callbacks (subtests included) into one outcome per test."""

    def __init__(
        self,
        events: Events,
        counters: Any,
        timeout: float,
        before_test: Callable[[], None] | None,
    ) -> None:
        super().__init__()
        self.events = events
        self.counters = counters
        self.timeout = timeout
        self.before_test = before_test
        self._current: unittest.TestCase | None = None
        self._marks: list[str] = []
        self._detail = ""
        self._t0 = 0.0

    # -- per test -----------------------------------------------------------------
    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self._current = test
        self._marks = []
        self._detail = ""
        self._t0 = time.monotonic()
        self.events.emit("start", id=model.short_id(test.id()))
        print(f"=== {test.id()}", file=sys.stderr, flush=True)
        if self.timeout > 0:
            margin = min(5.0, self.timeout / 10)
            faulthandler.dump_traceback_later(self.timeout - margin, file=sys.stderr)
        if self.before_test is not None:
            self.before_test()
        self.counters.reset()

    def stopTest(self, test: unittest.TestCase) -> None:
        faulthandler.cancel_dump_traceback_later()
        counts = self.counters.snapshot()
        super().stopTest(test)
        record = model.Record(
            id=model.short_id(test.id()),
            outcome=self._fold(),
            secs=round(time.monotonic() - self._t0, 3),
            detail=self._detail,
            **counts,
        )
        self.events.emit("result", **record.to_json())
        self._current = None

    def _fold(self) -> str:
        for outcome in (model.ERROR, model.FAIL, model.SKIP, model.XFAIL):
            if outcome in self._marks:
                return outcome
        return model.PASS

    def _mark(self, test: Any, outcome: str, detail: str, err: ExcInfo | None) -> None:
        owner = getattr(test, "test_case", test)  # a subtest reports to its test
        if err is not None:
            print(f"--- {outcome}: {test}", file=sys.stderr)
            traceback.print_exception(err[0], err[1], err[2], file=sys.stderr)
            sys.stderr.flush()
        if owner is self._current and self._current is not None:
            self._marks.append(outcome)
            if not self._detail or outcome in model.FAILING:
                self._detail = detail
            return
        # A class or module fixture (setUpClass, tearDownModule ...): no startTest.
        description = str(getattr(test, "description", test))
        match = _FIXTURE.match(description)
        ident = f"{match.group(2)}.<{match.group(1)}>" if match else description
        record = model.Record(id=model.short_id(ident), outcome=outcome, detail=detail)
        self.events.emit("result", **record.to_json())

    # -- unittest callbacks ---------------------------------------------------------
    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._mark(test, model.ERROR, _last_line(err), err)

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._mark(test, model.FAIL, _last_line(err), err)

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        owner = getattr(test, "test_case", test)
        if owner is self._current and test is not owner:
            return  # a skipped subtest does not make its test skipped
        self._mark(test, model.SKIP, f"skipped: {reason}"[:300], None)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._mark(test, model.XFAIL, "expected failure", None)

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._mark(test, model.FAIL, "unexpected success of @expectedFailure", None)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = model.FAIL if issubclass(err[0], test.failureException) else model.ERROR
            self._mark(subtest, kind, f"{subtest._subDescription()}: {_last_line(err)}"[:300], err)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="conformance.worker")
    p.add_argument("--module", required=True, help="test module name, e.g. test_events")
    p.add_argument("--mode", choices=model.MODES, required=True)
    p.add_argument("--loop-class", required=True, help="module:Class counted as 'our loop'")
    p.add_argument("--loop-factory", default="", help="module:callable (loop-under-test)")
    p.add_argument("--import", dest="imports", action="append", default=[])
    p.add_argument("--events", required=True)
    p.add_argument("--exclude", default="", help="file with short test ids to skip")
    p.add_argument("--timeout", type=float, default=0.0)
    return p.parse_args(argv)


def _normalise_process() -> None:
    """Undo what a background or CI launcher may have changed, and cap memory.

    A shell that starts a job in the background ignores SIGINT, and the ignore is
    inherited: then ``_thread.interrupt_main()`` does nothing and the stdlib tests that
    rely on it (test_runners) spin forever. Restore Python's own handler, as a process
    started from a terminal has. A runaway test is stopped by an address-space limit
    (``CONF_WORKER_MEM_GB``, default 8) instead of exhausting the machine.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    limit_gb = float(os.environ.get("CONF_WORKER_MEM_GB", "8"))
    if limit_gb > 0:
        limit = int(limit_gb * 1024**3)
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def run(args: argparse.Namespace, events: Events) -> None:
    _normalise_process()
    faulthandler.enable(file=sys.stderr, all_threads=True)
    for name in args.imports:  # before anything imports the tests
        importlib.import_module(name)

    support = importlib.import_module("test.support")
    setattr(support, "verbose", 0)  # as regrtest without -v

    from conformance import instrument, retarget

    loop_class = resolve(args.loop_class)
    counters = instrument.install(loop_class)
    instrument.install_testloop(counters)

    module_name = model.PREFIX + args.module
    try:
        module = importlib.import_module(module_name)
    except unittest.SkipTest as exc:
        events.emit("result", **model.Record(args.module, model.SKIP, detail=str(exc)).to_json())
        return

    loader = unittest.TestLoader()
    before_test: Callable[[], None] | None = None
    notes: list[str] = []
    if args.mode == "loop-under-test":
        import asyncio

        factory = resolve(args.loop_factory)
        classes, notes = retarget.plan(module, factory)
        tests = retarget.load(loader, classes)
        policy = retarget.make_policy_class(factory)()

        def before_test() -> None:
            if asyncio.get_event_loop_policy() is not policy:
                asyncio.set_event_loop_policy(policy)

    else:
        tests = retarget.flatten(loader.loadTestsFromModule(module))

    excluded: set[str] = set()
    if args.exclude:
        with open(args.exclude, encoding="utf-8") as f:
            excluded = {line.strip() for line in f if line.strip()}
    tests = [t for t in tests if model.short_id(t.id()) not in excluded]
    events.emit("plan", tests=len(tests), ids=[model.short_id(t.id()) for t in tests], notes=notes)

    result = RecordingResult(events, counters, args.timeout, before_test)
    unittest.TestSuite(tests).run(result)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    events = Events(args.events)
    try:
        run(args, events)
    except BaseException as exc:  # report, then let the parent decide
        traceback.print_exc()
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:300]
        events.emit("worker-error", detail=detail)
        sys.stderr.flush()
        os._exit(3)
    events.emit("done")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: a failed test may leave non-daemon threads behind.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
