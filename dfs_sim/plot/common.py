"""What the figures share: how a trace is labelled, and saving a figure safely."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfs_sim.atomic import atomic_file
from dfs_sim.errors import InputError
from dfs_sim.trace import Trace

FIGURE_FORMATS = (".png", ".svg", ".pdf")


@dataclass(frozen=True)
class TraceLabel:
    series: str  # traces of one model at several budgets share a series
    kind: str  # "dfs" (gated, at a budget) or "static" (decisions forced to one option)
    label: str  # "30%" or "all 8bit"


def describe(trace: Trace) -> TraceLabel:
    prov = trace.provenance
    dataset = prov.get("dataset")
    series = prov.get("model") or (f"{trace.network.name} on {dataset}" if dataset else trace.network.name)
    forced = prov.get("forced_option")
    if forced:
        return TraceLabel(series, "static", f"all {forced}")
    if trace.budget_pct is not None:
        return TraceLabel(series, "dfs", f"{trace.budget_pct:g}%")
    return TraceLabel(series, "static", trace.name)


def check_figure_path(output: str | Path) -> Path:
    path = Path(output)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise InputError(path, None, f"unknown figure format '{path.suffix}' (use {', '.join(FIGURE_FORMATS)})")
    if not path.parent.is_dir():
        raise InputError(path, None, "the output directory does not exist")
    return path


def save_figure(fig, output: str | Path) -> Path:
    """Write PNG, SVG or PDF by extension, atomically."""
    path = check_figure_path(output)
    try:
        with atomic_file(path) as handle:
            fig.savefig(handle, dpi=150, bbox_inches="tight", format=path.suffix.lstrip(".").lower())
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
