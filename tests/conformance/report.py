"""Summary tables (terminal and Markdown) of one run."""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

from conformance import model


@dataclasses.dataclass
class Counts:
    tests: int = 0
    skipped: int = 0
    on_loop: int = 0  # ran a loop of the class under test
    created: int = 0  # loop instances of that class built
    passed: int = 0
    failed: int = 0
    timeouts: int = 0
    crashes: int = 0
    testloop_only: int = 0  # ran on test_utils.TestLoop only: not re-targetable
    other_only: int = 0  # built another loop (a stdlib or mock loop), never ran ours

    @property
    def ran(self) -> int:
        return self.tests - self.skipped

    def add(self, record: model.Record) -> None:
        self.tests += 1
        self.created += record.created
        if record.outcome == model.SKIP:
            self.skipped += 1
        elif record.outcome in model.PASSING:
            self.passed += 1
        else:
            self.failed += 1
            self.timeouts += record.outcome == model.TIMEOUT
            self.crashes += record.outcome == model.CRASH
        if record.outcome != model.SKIP:
            self.on_loop += record.used_loop
            self.testloop_only += record.testloops > 0 and not record.used_loop
            self.other_only += (record.other_loops > 0 and record.testloops == 0
                                and not record.used_loop)


def count(records: Iterable[model.Record]) -> Counts:
    counts = Counts()
    for record in records:
        counts.add(record)
    return counts


HEADERS = ("side", "tests", "ran", "on loop", "loops built", "passed", "failed",
           "timeout", "crash", "skipped", "TestLoop only", "other loop only")


def _row(side: str, c: Counts) -> tuple[str, ...]:
    return (side, str(c.tests), str(c.ran), str(c.on_loop), str(c.created), str(c.passed),
            str(c.failed), str(c.timeouts), str(c.crashes), str(c.skipped), str(c.testloop_only), str(c.other_only))


def table(by_side: Mapping[str, Counts]) -> str:
    rows = [HEADERS] + [_row(side, c) for side, c in by_side.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(by_side: Mapping[str, Counts], per_module: Mapping[str, Mapping[str, Counts]]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(_row(side, c)) + " |" for side, c in by_side.items()]
    sides = list(by_side)
    out += ["", "| module | " + " | ".join(f"{s}: ran / on loop / passed / failed / skipped" for s in sides) + " |",
            "|---|" + "---|" * len(sides)]
    for module in sorted(per_module):
        cells = []
        for side in sides:
            c = per_module[module].get(side)
            cells.append("-" if c is None else f"{c.ran} / {c.on_loop} / {c.passed} / {c.failed} / {c.skipped}")
        out.append(f"| {module} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
