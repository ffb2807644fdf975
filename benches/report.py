"""Turn a results dict (see ``run.py``) into the terminal table, Markdown and README section."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
README_BEGIN = "<!-- BEGIN RESULTS (written by benches/run.py) -->"
README_END = "<!-- END RESULTS -->"
NOTES_FILE = HERE / "row_notes.json"
OURS_PREFIX = "ours-"
REFERENCE = "asyncio"  # the implementation every ratio is taken against (impls.REFERENCE)
BASE_PREFIX = "base-"  # another build of ours (--base-python): the "before" of before/after
FIBER = "fiber_switch"
FIBER_TARGET_S = 250e-9
FLAT_LIMIT = 1.5  # largest/smallest per-op cost still called "flat"


def fmt_time(sec: float | None) -> str:
    if sec is None:
        return "-"
    if sec < 1e-6:
        return f"{sec * 1e9:.0f} ns"
    if sec < 1e-3:
        return f"{sec * 1e6:.2f} us"
    if sec < 1:
        return f"{sec * 1e3:.2f} ms"
    return f"{sec:.2f} s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def _label(data: dict[str, Any], name: str) -> str:
    return data["meta"]["impls"].get(name, {}).get("label", name)


def _short(reason: str | None, limit: int = 70) -> str:
    reason = " ".join((reason or "").split())
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def cell_text(cell: dict[str, Any], *, ratio: bool = True, md: bool = False,
              reason: bool = True) -> str:
    st = cell.get("status")
    if st == "ok":
        t = fmt_time(cell["median"])
        if ratio and "ratio" in cell:
            return f"**{fmt_ratio(cell['ratio'])}** ({t})" if md else f"{fmt_ratio(cell['ratio'])} ({t})"
        return t
    if st == "skip":
        return "—"
    if not md or not reason:
        return "n/a"  # the reasons are listed below the table
    return f"n/a ({_kind(cell)})"


def _kind(cell: dict[str, Any]) -> str:
    """A one-word reason for a table cell (the full reason is listed under "Not measured")."""
    st = cell.get("status")
    if st in ("timeout", "crash"):
        return str(st)
    head = (cell.get("reason") or str(st)).split(":")[0].strip()
    return head if len(head) <= 30 and " " not in head else _short(head, 30)


def _loop_impls(data: dict[str, Any]) -> list[str]:
    return [n for n in data["impls"] if data["meta"]["impls"][n]["mode"] not in ("greenlet", "fiber")]


def _pairs(data: dict[str, Any]) -> dict[str, str]:
    """ours-X -> base-X for each of our loops whose base build is in the run too."""
    names = set(data["impls"])
    return {n: BASE_PREFIX + n[len(OURS_PREFIX):] for n in names
            if n.startswith(OURS_PREFIX) and BASE_PREFIX + n[len(OURS_PREFIX):] in names}


def before_after_text(base: dict[str, Any], ours: dict[str, Any]) -> str:
    """One Markdown cell ``0.60x -> **0.45x** (1.20 us)``: the base build's ratio, then ours."""
    after = cell_text(ours, md=True)
    if ours.get("status") == "skip" and base.get("status") == "skip":
        return after
    if base.get("status") == "ok" and "ratio" in base:
        before = fmt_ratio(base["ratio"])
    elif base.get("status") == "skip":
        before = "—"
    else:
        before = f"n/a ({_kind(base)})"
    return f"{before} -> {after}"


def _fiber_impls(data: dict[str, Any]) -> list[str]:
    return [n for n in data["impls"] if data["meta"]["impls"][n]["mode"] in ("greenlet", "fiber")]


def _notes() -> dict[str, str]:
    try:
        return json.loads(NOTES_FILE.read_text())
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------


def verdict(wname: str, w: dict[str, Any], data: dict[str, Any]) -> str:
    """Whether our package meets the row's target, and if not why (row_notes.json)."""
    notes = _notes()
    if wname == FIBER:
        return _fiber_verdict(w, notes)
    size = w["sizes"].get(w["headline"], {})
    cells = {n: c for n, c in size.get("impls", {}).items()
             if n.startswith(OURS_PREFIX) and c.get("status") != "skip"}
    if not cells:
        return "not run (no `ours` implementation selected)"
    measured = {n: c for n, c in cells.items() if c.get("status") == "ok" and "ratio" in c}
    if not measured:
        n, c = next(iter(cells.items()))
        return f"⏳ not measured yet ({_kind(c)}; see Not measured)"
    misses = []
    for n, c in measured.items():
        bad = w.get("target_ratio") is not None and c["ratio"] > w["target_ratio"]
        zx = w.get("zero_extra")
        if zx:
            vals = [e.get(zx, 0) for e in c.get("extras", [])]
            if any(vals):
                misses.append(f"{_label(data, n)}: {max(vals)} {zx.replace('_', ' ')}")
        if bad:
            misses.append(f"{_label(data, n)} {fmt_ratio(c['ratio'])}")
    unmeasured = [n for n in cells if n not in measured]
    tail = f" ({', '.join(_label(data, n) for n in unmeasured)}: not measured yet)" if unmeasured else ""
    if not misses:
        return f"✅ meets{tail}"
    note = notes.get(wname) or "reason and fix: TODO (see the profile)"
    return f"❌ misses ({'; '.join(misses)}); {note}{tail}"


def _fiber_verdict(w: dict[str, Any], notes: dict[str, str]) -> str:
    ours = [s["impls"].get("ours-fiber") for s in w["sizes"].values()]
    ours = [c for c in ours if c]
    if not ours:
        return "not run (ours-fiber not selected)"
    ok = [c for c in ours if c.get("status") == "ok"]
    if not ok:
        return f"⏳ not measured yet ({_kind(ours[0])}; see Not measured)"
    meds = [c["median"] for c in ok]
    fast = max(meds) <= FIBER_TARGET_S
    flat = max(meds) / min(meds) <= FLAT_LIMIT
    if fast and flat:
        return "✅ meets"
    why = []
    if not fast:
        why.append(f"slowest depth {fmt_time(max(meds))}")
    if not flat:
        why.append(f"grows {max(meds) / min(meds):.2f}x with depth")
    return f"❌ misses ({', '.join(why)}); {notes.get(FIBER) or 'reason and fix: TODO'}"


# --------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------


def terminal(data: dict[str, Any]) -> str:
    loop_impls = _loop_impls(data)
    cols = ["workload"] + [_label(data, n) for n in loop_impls]
    rows = []
    for wname, w in data["workloads"].items():
        if wname == FIBER:
            continue
        size = w["sizes"].get(w["headline"], {})
        cells = size.get("impls", {})
        row = [wname]
        for n in loop_impls:
            c = cells.get(n, {"status": "skip"})
            if n == "asyncio" and c.get("status") == "ok":
                row.append(fmt_time(c["median"]))
            else:
                row.append(cell_text(c, ratio=True) if n != "asyncio" else cell_text(c))
        rows.append(row)
    lines = [_fixed_table(cols, rows)]
    # complexity
    for wname, w in data["workloads"].items():
        if len(w["sizes"]) < 2:
            continue
        labels = list(w["sizes"])
        crow = []
        names = loop_impls if wname != FIBER else _fiber_impls(data)
        for n in names:
            cells = [w["sizes"][lab]["impls"].get(n, {"status": "skip"}) for lab in labels]
            if all(c.get("status") == "skip" for c in cells):
                continue
            meds = [c.get("median") for c in cells if c.get("status") == "ok"]
            growth = f"{max(meds) / min(meds):.2f}" if len(meds) >= 2 else "-"
            crow.append([_label(data, n)] + [cell_text(c, ratio=False) for c in cells] + [growth])
        if crow:
            lines.append("")
            lines.append(f"{wname}: cost per {w['unit']} by size")
            lines.append(_fixed_table(["impl"] + labels + ["max/min"], crow))
    if "timers" in data["workloads"]:
        w = data["workloads"]["timers"]
        parts = []
        for n in loop_impls:
            cs = [w["sizes"][lab]["impls"].get(n, {}) for lab in w["sizes"]]
            vals = [str(max(e.get("out_of_order", 0) for e in c["extras"])) if c.get("status") == "ok"
                    else "-" for c in cs]
            parts.append(f"{_label(data, n)}: {'/'.join(vals)}")
        lines.append("")
        lines.append(f"timers fired out of order ({'/'.join(w['sizes'])}): " + "; ".join(parts))
    sc = data.get("syscalls") or {}
    if sc.get("impls"):
        lines.append("")
        lines.append("system calls per TCP echo round trip: " + "; ".join(
            f"{_label(data, n)} {c['per_round_trip']:.2f}" if c.get("status") == "ok"
            else f"{_label(data, n)} n/a" for n, c in sc["impls"].items()))
    reasons = _na_reasons(data)
    if reasons:
        lines.append("")
        lines.append("not measured:")
        lines += [f"  {k}: {v}" for k, v in reasons.items()]
    m = data["meta"]
    lines.append("")
    lines.append(f"{m['machine'].get('cpu_model', '?')}, {m['machine'].get('cores')} cores; "
                 f"{m['rounds']} rounds; {m['date']}")
    return "\n".join(lines)


def _fixed_table(cols: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
    out = ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(cols))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)))
    return "\n".join(out)


def _na_reasons(data: dict[str, Any]) -> dict[str, str]:
    """impl -> its distinct failure reasons, each with the cells it covers (one line)."""
    out: dict[str, dict[str, list[str]]] = {}
    for wname, w in data["workloads"].items():
        for lab, s in w["sizes"].items():
            for n, c in s["impls"].items():
                if c.get("status") in ("ok", "skip"):
                    continue
                r = f"{c.get('status')}: {_short(c.get('reason'), 140)}"
                out.setdefault(n, {}).setdefault(r, []).append(
                    wname if len(w["sizes"]) == 1 else f"{wname}[{lab}]")
    return {
        n: " | ".join(f"{r} ({', '.join(ks) if len(ks) < 6 else str(len(ks)) + ' cells'})"
                      for r, ks in by_reason.items())
        for n, by_reason in out.items()
    }


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _env_versions(data: dict[str, Any], name: str) -> dict[str, str]:
    """The package versions recorded for *name*'s interpreter (by environment; results written
    before that was keyed by interpreter path)."""
    m = data["meta"]
    imp = m["impls"].get(name, {})
    return m["versions"].get(imp.get("env") or "", m["versions"].get(imp.get("python") or "", {}))


def _build(v: dict[str, str]) -> str:
    """``0.1.0 (main @ 7c3e157)``: a build of our package, with its checkout when known."""
    out = v.get("trio-asyncio-rs", "not installed")
    if v.get("commit"):
        out += f" ({v['branch'] + ' @ ' if v.get('branch') else ''}{v['commit']})"
    return out


def _versions_line(data: dict[str, Any]) -> str:
    m = data["meta"]
    parts: dict[str, str] = {}
    for name, imp in m["impls"].items():
        v = _env_versions(data, name)
        if "python" in v:
            parts["CPython"] = v["python"]
        if imp["mode"] == "uvloop" and "uvloop" in v:
            parts["uvloop"] = v["uvloop"]
        if imp["mode"] == "rloop" and "rloop" in v:
            parts["rloop"] = v["rloop"]
        if name.startswith("trio-asyncio-0.16"):
            if "trio-asyncio" in v:
                parts["trio-asyncio"] = v["trio-asyncio"]
            if "trio" in v:
                parts["trio (t-a 0.16 venv)"] = v["trio"]
        if imp["mode"] == "greenlet" and "greenlet" in v:
            parts["greenlet"] = v["greenlet"]
        if name.startswith("ours"):
            parts["ours (trio-asyncio-rs)"] = _build(v)
            if "trio" in v:
                parts["trio (ours venv)"] = v["trio"]
        if name.startswith(BASE_PREFIX):
            parts["base, the build before (trio-asyncio-rs)"] = _build(v)
            if "trio" in v:
                parts["trio (base venv)"] = v["trio"]
    return ", ".join(f"{k} {v}" for k, v in parts.items())


def markdown(data: dict[str, Any]) -> str:
    m = data["meta"]
    mach = m["machine"]
    loop_impls = _loop_impls(data)
    L: list[str] = []
    L.append(f"Measured {m['date']} on {mach.get('cpu_model', '?')} "
             f"({mach.get('cpus', mach.get('cores'))} CPUs, {mach.get('cores_per_socket', '?')} "
             f"cores per socket{', ' + mach['hypervisor'] + ' guest' if mach.get('hypervisor') else ''}), "
             f"{mach.get('platform', '')}.")
    L.append("")
    L.append(f"Versions: {_versions_line(data)}.")
    L.append("")
    L.append(f"Command: `{m['command']}`; {m['rounds']} interleaved rounds per cell, samples of "
             f"~{m['target_seconds']} s; full run took {m.get('runtime_s', '?')} s."
             + (" **Smoke run: sizes are tiny, numbers mean nothing.**" if m.get("smoke") else ""))
    L.append("")
    L.append("### Speed: median cost per operation, as a ratio to stock asyncio in the same run")
    L.append("")
    pairs = _pairs(data)
    folded = set(pairs.values())
    table_impls = [n for n in loop_impls if n not in folded]
    L.append("Lower is better. Each cell: **ratio** (median cost per operation). `—`: the row does "
             "not apply to that loop. `n/a (reason)`: it could not be measured.")
    if pairs:
        L.append(f"Columns marked \"before -> after\": the base build "
                 f"({_build(_env_versions(data, next(iter(folded))))}) -> ours "
                 f"({_build(_env_versions(data, next(iter(pairs))))}), both measured in this run, "
                 "interleaved; the verdict judges ours only.")
    L.append("")
    hdr = (["workload", "per"]
           + [_label(data, n) + (" (before -> after)" if n in pairs else "") for n in table_impls]
           + ["our target", "verdict"])
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "---|" * len(hdr))
    for wname, w in data["workloads"].items():
        if wname == FIBER:
            continue
        size = w["sizes"].get(w["headline"], {})
        cells = size.get("impls", {})
        title = w["title"]
        if len(w["sizes"]) > 1:
            title += f" [{w['headline']}]"
        row = [title, w["unit"]]
        for n in table_impls:
            c = cells.get(n, {"status": "skip"})
            if n in pairs:
                row.append(before_after_text(cells.get(pairs[n], {"status": "skip"}), c))
            else:
                row.append(cell_text(c, md=True))
        row += [w.get("target", ""), verdict(wname, w, data)]
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    # Fiber
    if FIBER in data["workloads"]:
        w = data["workloads"][FIBER]
        names = _fiber_impls(data)
        if names:
            L.append("### Fiber switch round trip (parent -> fiber -> parent), by C-stack depth")
            L.append("")
            labels = list(w["sizes"])
            L.append("| implementation | " + " | ".join(labels) + " | max/min |")
            L.append("|---|" + "---|" * (len(labels) + 1))
            for n in names:
                cs = [w["sizes"][lab]["impls"].get(n, {"status": "skip"}) for lab in labels]
                meds = [c["median"] for c in cs if c.get("status") == "ok"]
                g = f"{max(meds) / min(meds):.2f}" if len(meds) >= 2 else "-"
                L.append(f"| {_label(data, n)} | " + " | ".join(cell_text(c, ratio=False, md=True, reason=False) for c in cs)
                         + f" | {g} |")
            L.append("")
            L.append(f"Target: {w.get('target')}. Verdict: {verdict(FIBER, w, data)}")
            L.append("")
    # Complexity
    comp = [(wn, w) for wn, w in data["workloads"].items() if len(w["sizes"]) > 1 and wn != FIBER]
    if comp:
        L.append("### Complexity: cost per operation at three sizes")
        L.append("")
        L.append("Flat is the goal: the max/min column is the largest cost per operation divided by "
                 "the smallest over the fixed sizes (1.00 = perfectly flat). A `—` at the largest "
                 f"size means its sample was estimated above the {m.get('max_sample_s', 10):.0f} s "
                 "budget from the previous size.")
        L.append("")
        for wname, w in comp:
            labels = [lab for lab, s in w["sizes"].items() if s.get("fixed_n") is not None
                      or s.get("param") is not None]
            L.append(f"**{wname}** (cost per {w['unit']})")
            L.append("")
            L.append("| implementation | " + " | ".join(labels) + " | max/min |")
            L.append("|---|" + "---|" * (len(labels) + 1))
            for n in loop_impls:
                cs = [w["sizes"][lab]["impls"].get(n, {"status": "skip"}) for lab in labels]
                if all(c.get("status") == "skip" and "too slow" not in (c.get("reason") or "")
                       for c in cs):
                    continue
                meds = [c["median"] for c in cs if c.get("status") == "ok"]
                g = f"{max(meds) / min(meds):.2f}" if len(meds) >= 2 else "-"
                L.append(f"| {_label(data, n)} | "
                         + " | ".join(cell_text(c, ratio=False, md=True, reason=False) for c in cs) + f" | {g} |")
            L.append("")
    if "timers" in data["workloads"]:
        w = data["workloads"]["timers"]
        labels = list(w["sizes"])
        L.append("**timers fired out of order** (a firing whose deadline is earlier than the "
                 "previous firing's; max over rounds)")
        L.append("")
        L.append("| implementation | " + " | ".join(labels) + " |")
        L.append("|---|" + "---|" * len(labels))
        for n in loop_impls:
            cs = [w["sizes"][lab]["impls"].get(n, {}) for lab in labels]
            if not any(c.get("status") == "ok" for c in cs):
                continue
            vals = []
            for lab, c in zip(labels, cs):
                if c.get("status") == "ok":
                    v = max(e.get("out_of_order", 0) for e in c["extras"])
                    vals.append(f"{v:,} of {_size_n(w, lab):,}")
                else:
                    vals.append("—" if c.get("status") == "skip" else "n/a")
            L.append(f"| {_label(data, n)} | " + " | ".join(vals) + " |")
        L.append("")
    L += syscalls_markdown(data)
    reasons = _na_reasons(data)
    if reasons:
        L.append("### Not measured")
        L.append("")
        for n, r in reasons.items():
            L.append(f"- **{_label(data, n)}**: {r}")
        L.append("")
    prof = data.get("profile")
    if prof and prof.get("summary"):
        L.append(f"### Profile of the worst row: {prof['impl']} / {prof['workload']} [{prof['size']}]")
        L.append("")
        L.append(f"py-spy, 500 Hz: collapsed stacks in `{prof['raw']}`"
                 + (f", flame graph in `{prof['svg']}`" if prof.get("svg") else "") + ".")
        L.append("")
        L.append(prof["summary"])
        L.append("")
    return "\n".join(L) + "\n"


def syscalls_markdown(data: dict[str, Any]) -> list[str]:
    """The "system calls per TCP echo round trip" table (``benches/syscalls.py`` via run.py)."""
    sc = data.get("syscalls")
    if not sc:
        return []
    L = ["### System calls per TCP echo round trip", ""]
    L.append(f"`{sc['method']}` (`benches/syscalls.py`), on the workload of the TCP echo row "
             "(Protocol, 1 KiB, 1 connection): a round trip is the client's write, the server's "
             "read and write, and the client's read, all in one loop.")
    L.append("")
    if sc.get("unavailable"):
        L += [f"Not measured: {sc['unavailable']}.", ""]
        return L
    ref = sc["impls"].get(REFERENCE, {})
    ref_total = ref.get("per_round_trip") if ref.get("status") == "ok" else None
    L.append("| implementation | system calls | vs asyncio | of which poll/epoll | by call |")
    L.append("|---|---|---|---|---|")
    for n, c in sc["impls"].items():
        if c.get("status") != "ok":
            L.append(f"| {_label(data, n)} | n/a ({_short(c.get('reason'), 60)}) | | | |")
            continue
        by = ", ".join(f"`{k}` {v:.2f}" for k, v in sorted(c["by_call"].items(), key=lambda kv: -kv[1])
                       if v >= 0.05)
        vs = f"{c['per_round_trip'] / ref_total:.2f}x" if ref_total else "-"
        L.append(f"| {_label(data, n)} | **{c['per_round_trip']:.2f}** | {vs} | "
                 f"{c['poll_family']:.2f} | {by} |")
    L.append("")
    return L


def _size_n(w: dict[str, Any], label: str) -> int:
    return int(w["sizes"][label].get("fixed_n") or 0)


def update_readme(path: Path, data: dict[str, Any]) -> None:
    text = path.read_text() if path.exists() else ""
    section = f"{README_BEGIN}\n{markdown(data)}{README_END}"
    if README_BEGIN in text and README_END in text:
        pre, _, rest = text.partition(README_BEGIN)
        _, _, post = rest.partition(README_END)
        text = pre + section + post
    else:
        text = text.rstrip() + "\n\n## Latest results\n\n" + section + "\n"
    path.write_text(text)


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------

_FRAME_RE = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    m = _FRAME_RE.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    short = "/".join(file.split("/")[-2:]) if "/" in file else file
    return f"{m.group('fn')} ({short})"


def summarize_collapsed(text: str, top: int = 12) -> str:
    """Summarise py-spy's raw (collapsed) output: top self and inclusive frames, in %."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        total += c
        if "_find_and_load" in stack:
            continue  # import time, not the workload
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        self_c[frames[-1]] += c
        for f in set(frames):
            incl_c[f] += c
    if not total:
        return "(no samples)"
    out = [f"{total} samples (imports left out).", "", "| self % | frame | | inclusive % | frame |", "|---|---|---|---|---|"]
    s_items = self_c.most_common(top)
    i_items = [(f, c) for f, c in incl_c.most_common(top * 3)
               if not f.startswith(("<module>", "main (", "run_cell", "_run_module"))][:top]
    for k in range(max(len(s_items), len(i_items))):
        a = s_items[k] if k < len(s_items) else ("", 0)
        b = i_items[k] if k < len(i_items) else ("", 0)
        out.append(f"| {100 * a[1] / total:.1f} | `{a[0]}` | | {100 * b[1] / total:.1f} | `{b[0]}` |")
    return "\n".join(out)
