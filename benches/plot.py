"""Plot ratios to stock asyncio per workload (ratios.png) and cost vs size (complexity.png).

    python benches/plot.py benches/results/results.json benches/results

Runs in the ``peers`` venv (matplotlib); ``run.py`` calls it after a run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "uvloop": "#4c72b0",
    "rloop": "#8172b3",
    "trio-asyncio-0.16-sync": "#dd8452",
    "trio-asyncio-0.16-async": "#c44e52",
    "ours-sync": "#55a868",
    "ours-async": "#2e7d32",
    "asyncio": "#777777",
    "base-sync": "#55a868",
    "base-async": "#2e7d32",
}


def _pairs(data: dict) -> dict:
    """ours-X -> base-X when both are in the run (the base build is drawn on ours' bar)."""
    names = set(data["impls"])
    return {n: "base-" + n[5:] for n in names
            if n.startswith("ours-") and "base-" + n[5:] in names}


def ratios_png(data: dict, out: Path) -> Path:
    pairs = _pairs(data)
    impls = [n for n in data["impls"]
             if data["meta"]["impls"][n]["mode"] not in ("greenlet", "fiber") and n != "asyncio"
             and n not in pairs.values()]
    rows = [(w, d) for w, d in data["workloads"].items() if w != "fiber_switch"]
    fig, ax = plt.subplots(figsize=(max(10, 0.9 * len(rows) + 3), 5.5))
    width = 0.8 / max(1, len(impls))
    for i, name in enumerate(impls):
        xs, ys = [], []
        for k, (w, d) in enumerate(rows):
            c = d["sizes"].get(d["headline"], {}).get("impls", {}).get(name, {})
            if c.get("status") == "ok" and "ratio" in c:
                xs.append(k - 0.4 + width * (i + 0.5))
                ys.append(c["ratio"])
        ax.bar(xs, ys, width, label=data["meta"]["impls"][name]["label"],
               color=COLORS.get(name))
        if name in pairs:
            # The base build ("before") as an outline at its ratio, on the same slot as ours.
            bx, by = [], []
            for k, (w, d) in enumerate(rows):
                c = d["sizes"].get(d["headline"], {}).get("impls", {}).get(pairs[name], {})
                if c.get("status") == "ok" and "ratio" in c:
                    bx.append(k - 0.4 + width * (i + 0.5))
                    by.append(c["ratio"])
            ax.bar(bx, by, width, fill=False, edgecolor="black", linewidth=0.9,
                   linestyle=(0, (2, 1)))
        for k, (w, d) in enumerate(rows):
            c = d["sizes"].get(d["headline"], {}).get("impls", {}).get(name, {})
            if c.get("status") not in (None, "ok", "skip"):
                ax.text(k - 0.4 + width * (i + 0.5), 0.02, "n/a", rotation=90, ha="center",
                        va="bottom", fontsize=7, color=COLORS.get(name, "black"),
                        transform=ax.get_xaxis_transform())
    for k, (w, d) in enumerate(rows):
        t = d.get("target_ratio")
        if t:
            ax.hlines(t, k - 0.45, k + 0.45, colors="black", linestyles="dashed", linewidth=1.2,
                      label="our target" if k == 0 else None)
    ax.axhline(1.0, color="#777777", linewidth=1, label="stock asyncio (1.0)")
    ax.set_yscale("log")
    lo = min([0.03] + [b.get_height() * 0.8 for b in ax.patches if b.get_height() > 0])
    ax.set_ylim(bottom=lo)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([w for w, _ in rows], rotation=35, ha="right")
    ax.set_ylabel("cost per operation / stock asyncio (log, lower is better)")
    m = data["meta"]
    ax.set_title(f"Same-run ratios to stock asyncio - {m['machine'].get('cpu_model', '')}, "
                 f"{m['machine'].get('cores')} cores, {m['date']}", fontsize=10)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=COLORS.get(n), label=data["meta"]["impls"][n]["label"]) for n in impls]
    if pairs:
        handles.append(Patch(fill=False, edgecolor="black", linestyle=(0, (2, 1)),
                             label="before (base build), on ours' bar"))
    handles += [Line2D([], [], color="black", linestyle="dashed", label="our target"),
                Line2D([], [], color="#777777", label="stock asyncio (1.0)")]
    ax.legend(handles=handles, fontsize=8, ncol=8, loc="upper center",
              bbox_to_anchor=(0.5, -0.28))
    ax.grid(axis="y", which="both", alpha=0.25)
    fig.tight_layout()
    path = out / "ratios.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def complexity_png(data: dict, out: Path) -> Path | None:
    comp = [(w, d) for w, d in data["workloads"].items()
            if len([s for s in d["sizes"].values() if s.get("fixed_n") or s.get("param") is not None]) > 1]
    if not comp:
        return None
    fig, axes = plt.subplots(1, len(comp), figsize=(4.2 * len(comp), 4))
    if len(comp) == 1:
        axes = [axes]
    for ax, (w, d) in zip(axes, comp):
        labels = [lab for lab, s in d["sizes"].items()
                  if s.get("fixed_n") or s.get("param") is not None]
        for name in data["impls"]:
            xs, ys = [], []
            for k, lab in enumerate(labels):
                c = d["sizes"][lab]["impls"].get(name, {})
                if c.get("status") == "ok":
                    xs.append(k)
                    ys.append(c["median"] * 1e6)
            if ys:
                ax.plot(xs, ys, marker="o", label=data["meta"]["impls"][name]["label"],
                        color=COLORS.get(name),
                        linestyle="--" if name.startswith("base-") else "-")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels)
        ax.set_yscale("log")
        ax.set_title(w, fontsize=10)
        ax.set_ylabel(f"us per {d['unit']}")
        ax.grid(alpha=0.25, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("Cost per operation by size (flat is the goal)", fontsize=10)
    fig.tight_layout()
    path = out / "complexity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    data = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(sys.argv[1]).parent
    paths = [ratios_png(data, out), complexity_png(data, out)]
    print("wrote " + ", ".join(str(p) for p in paths if p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
