"""Energy/accuracy frontiers: one point per (trace, accelerator)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dfs_sim.engine import simulate
from dfs_sim.plot.common import describe, pyplot, save_figure

X_AXES = {
    "energy_uj": ("energy per inference", "µJ"),
    "latency_us": ("mean latency", "µs"),
    "latency_p99_us": ("p99 latency", "µs"),
    "dram_bytes": ("DRAM traffic per inference", "B"),
    "computation_pct": ("computation (the paper's proxy)", "%"),
}
STATIC_MARKERS = {"full": "*", "16bit": "s", "8bit": "^", "skip": "v"}


def frontier_points(traces, hws, x: str = "energy_uj", relative: bool = True) -> pd.DataFrame:
    """Simulate every (trace, accelerator) pair; one row per point, with its Pareto flag."""
    rows = []
    for hw in hws:
        for trace in traces:
            result = simulate(trace, hw)
            s = result.summary
            label = describe(trace)
            if x == "computation_pct":
                value, full, unit = s["computation_pct"], 100.0, "%"
            else:
                metric = "latency_us" if x == "latency_p99_us" else x
                stats = s["metrics"][metric]
                value = stats["p99" if x == "latency_p99_us" else "mean"]
                full = stats["full_precision"]
                unit = X_AXES[x][1]
            relative_value = 100.0 * value / full if full else np.nan
            rows.append({
                "trace": trace.path, "series": label.series, "kind": label.kind, "label": label.label,
                "budget_pct": trace.budget_pct, "computation_pct": s["computation_pct"], "hw": hw.name,
                "accuracy_pct": s["accuracy"], "x_metric": x, "x_value": value, "x_unit": unit,
                "x_pct_of_full_precision": relative_value,
                "x": relative_value if relative and x != "computation_pct" else value,
            })
    frame = pd.DataFrame(rows)
    frame["y"] = frame["accuracy_pct"].where(frame["accuracy_pct"].notna(), frame["budget_pct"])
    frame["y_is_accuracy"] = frame["accuracy_pct"].notna()
    frame["pareto"] = False
    for (_, accuracy), group in frame.groupby(["hw", "y_is_accuracy"]):
        frame.loc[pareto_front(group), "pareto"] = accuracy  # the trade-off only exists against accuracy
    return frame


def pareto_front(group: pd.DataFrame) -> list:
    """Index of points no other point beats on both cost (lower x) and quality (higher y)."""
    keep = []
    for i, row in group.iterrows():
        dominated = ((group["x"] <= row["x"]) & (group["y"] >= row["y"])
                     & ((group["x"] < row["x"]) | (group["y"] > row["y"]))).any()
        if not dominated and np.isfinite(row["x"]) and np.isfinite(row["y"]):
            keep.append(i)
    return keep


def _coincident_labels(series: pd.DataFrame, panel: pd.DataFrame, log_x: bool) -> list[tuple[tuple, str]]:
    """One label per cluster of points closer than 1 % of the panel's x span and 2 % of its y span:
    budgets that cost the same on a machine would otherwise print on top of each other."""
    xs = np.log10(panel["x"].clip(lower=1e-12)) if log_x else panel["x"]
    x_span = max(xs.max() - xs.min(), 1e-12)
    y_span = max(panel["y"].max() - panel["y"].min(), 1e-12)
    clusters: list[list] = []
    for _, row in series.iterrows():
        x = np.log10(max(row["x"], 1e-12)) if log_x else row["x"]
        if clusters and abs(x - clusters[-1][-1][0]) <= 0.01 * x_span and \
                abs(row["y"] - clusters[-1][-1][1]["y"]) <= 0.02 * y_span:
            clusters[-1].append((x, row))
        else:
            clusters.append([(x, row)])
    return [((c[0][1]["x"], c[0][1]["y"]), ", ".join(sorted((r["label"] for _, r in c), key=_natural)))
            for c in clusters]


def _natural(label: str) -> tuple:
    """'20%' before '100%'."""
    head = label.rstrip("%")
    return (0, float(head), label) if head.replace(".", "", 1).isdigit() else (1, 0.0, label)


def plot_frontier(points: pd.DataFrame, output, x: str = "energy_uj", relative: bool = True):
    plt = pyplot()
    from matplotlib.lines import Line2D

    panels = [flag for flag in (True, False) if (points["y_is_accuracy"] == flag).any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.8 * len(panels), 5.2), squeeze=False)
    colors = {hw: f"C{i}" for i, hw in enumerate(dict.fromkeys(points["hw"]))}
    styles = {series: style for series, style in zip(dict.fromkeys(points["series"]), ("-", "--", ":", "-."))}
    name, unit = X_AXES[x]
    relative = relative and x != "computation_pct"
    xlabel = f"{name}, % of full precision on the same hardware" if relative else f"{name} ({unit})"
    for ax, accuracy in zip(axes[0], panels):
        panel = points[points["y_is_accuracy"] == accuracy]
        log_x = not relative and panel["x"].max() > 20 * max(panel["x"].min(), 1e-12)
        for (hw, series), group in panel.groupby(["hw", "series"], sort=False):
            dfs = group[group["kind"] == "dfs"].sort_values("x")
            ax.plot(dfs["x"], dfs["y"], marker="o", ls=styles.get(series, "-"), color=colors[hw], ms=6)
            for (px, py), labels in _coincident_labels(dfs, panel, log_x):
                ax.annotate(labels, (px, py), textcoords="offset points", xytext=(5, -11), fontsize=8,
                            color=colors[hw])
            for _, row in group[group["kind"] == "static"].iterrows():
                option = row["label"].removeprefix("all ")
                ax.plot(row["x"], row["y"], STATIC_MARKERS.get(option, "D"), color=colors[hw], ms=9,
                        mfc="white", mew=1.5)
        front = panel[panel["pareto"]]
        if len(front):
            ax.scatter(front["x"], front["y"], s=150, facecolors="none", edgecolors="black", lw=1.0, zorder=3)
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)" if accuracy else "trained budget (% computation)")
        ax.set_title(("accuracy against cost" if accuracy else "traces without labels: budget against cost")
                     + ("" if len(styles) > 1 else f"\n{next(iter(styles))}"), fontsize=9)
        ax.grid(alpha=0.3)
        # Legend: accelerators by colour, models by line style, static references by marker.
        handles = [Line2D([], [], color=c, marker="o", label=hw) for hw, c in colors.items()
                   if hw in set(panel["hw"])]
        if len(styles) > 1:
            handles += [Line2D([], [], color="gray", ls=st, label=series) for series, st in styles.items()
                        if series in set(panel["series"])]
        statics = panel[panel["kind"] == "static"]["label"].unique()
        handles += [Line2D([], [], ls="", marker=STATIC_MARKERS.get(label.removeprefix("all "), "D"), color="gray",
                           mfc="white", ms=8, label=f"static: {label}") for label in statics]
        if len(front):
            handles.append(Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec="black",
                                  label="Pareto front (per accelerator)"))
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3,
                  frameon=False)
    fig.tight_layout()
    return save_figure(fig, output)
