"""Expectations files: which test ids are expected not to pass, and why.

One line per test id: ``<id> <outcome> <reason-tag ...>``, where outcome is one of
``fail``, ``error``, ``timeout``, ``crash`` or ``flaky`` (``flaky`` accepts any result).
Lines starting with ``#`` are comments. Ids are short: ``test_x.Class.test_y``. An id
ending in ``.*`` (``test_x.Class.*``) is a prefix pattern; patterns are only allowed with
``flaky`` (a class whose tests fail at random, one or another on each run).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Mapping

from conformance import model

FLAKY = "flaky"
ALLOWED = model.FAILING | {FLAKY}


@dataclasses.dataclass(frozen=True)
class Entry:
    id: str
    outcome: str
    tag: str


@dataclasses.dataclass
class Comparison:
    unexpected_failures: list[model.Record] = dataclasses.field(default_factory=list)
    unexpected_passes: list[tuple[Entry, model.Record]] = dataclasses.field(default_factory=list)
    stale: list[Entry] = dataclasses.field(default_factory=list)  # listed, but did not run
    changed: list[tuple[Entry, model.Record]] = dataclasses.field(default_factory=list)
    expected: int = 0  # failures that were listed (or excused by the stock baseline)
    excused: int = 0  # failures excused because stock asyncio fails them too

    @property
    def ok(self) -> bool:
        return not (self.unexpected_failures or self.unexpected_passes or self.stale)

    @property
    def problems(self) -> int:
        return len(self.unexpected_failures) + len(self.unexpected_passes) + len(self.stale)


def module_of(test_id: str) -> str:
    return test_id.split(".", 1)[0]


def load(path: Path) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    if not path.exists():
        return entries
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1] not in ALLOWED:
            raise ValueError(f"{path}:{number}: expected '<id> <{'|'.join(sorted(ALLOWED))}> <tag>'")
        if parts[0].endswith(".*") and parts[1] != FLAKY:
            raise ValueError(f"{path}:{number}: a '.*' pattern must be marked {FLAKY}")
        entries[parts[0]] = Entry(parts[0], parts[1], parts[2] if len(parts) > 2 else "untriaged")
    return entries


def lookup(expected: Mapping[str, Entry], test_id: str) -> Entry | None:
    """The entry for ``test_id``: its own line, else a matching flaky ``.*`` pattern."""
    entry = expected.get(test_id)
    if entry is not None:
        return entry
    for key, candidate in expected.items():
        if key.endswith(".*") and test_id.startswith(key[:-1]):
            return candidate
    return None


def save(path: Path, entries: Mapping[str, Entry], header: Iterable[str]) -> None:
    lines = [f"# {h}".rstrip() for h in header]
    width = max((len(e.id) for e in entries.values()), default=0)
    for entry in sorted(entries.values(), key=lambda e: e.id):
        lines.append(f"{entry.id:<{width}}  {entry.outcome:<7}  {entry.tag}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def compare(
    records: Mapping[str, model.Record],
    expected: Mapping[str, Entry],
    modules_run: set[str],
    excused: set[str] = frozenset(),  # type: ignore[assignment]
) -> Comparison:
    result = Comparison()
    for record in records.values():
        entry = lookup(expected, record.id)
        if record.outcome in model.FAILING:
            if entry is not None:
                result.expected += 1
                if entry.outcome not in (FLAKY, record.outcome):
                    result.changed.append((entry, record))
            elif record.id in excused:
                result.expected += 1
                result.excused += 1
            else:
                result.unexpected_failures.append(record)
        elif record.outcome in model.PASSING and entry is not None and entry.outcome != FLAKY:
            result.unexpected_passes.append((entry, record))
    for entry in expected.values():
        if module_of(entry.id) not in modules_run:
            continue
        if entry.id.endswith(".*"):
            if not any(k.startswith(entry.id[:-1]) for k in records):
                result.stale.append(entry)
            continue
        found = records.get(entry.id)
        if entry.outcome != FLAKY and (found is None or found.outcome == model.SKIP):
            result.stale.append(entry)
    return result


def updated(
    records: Mapping[str, model.Record],
    old: Mapping[str, Entry],
    modules_run: set[str],
    excused: set[str],
    default_tag: str,
) -> dict[str, Entry]:
    """The expectations that make ``records`` match, keeping the tags already written."""
    new = {k: e for k, e in old.items() if module_of(k) not in modules_run}
    for key, entry in old.items():
        if key.endswith(".*"):
            if any(k.startswith(key[:-1]) for k in records):
                new[key] = entry
            continue
        record = records.get(key)
        if entry.outcome == FLAKY and record is not None and record.outcome != model.SKIP:
            new[key] = entry
    for record in records.values():
        if record.outcome not in model.FAILING or record.id in excused:
            continue
        if lookup(new, record.id) is not None:
            continue
        previous = old.get(record.id)
        tag = previous.tag if previous is not None else default_tag
        new[record.id] = Entry(record.id, record.outcome, tag)
    return new
