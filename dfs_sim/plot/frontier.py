"""Energy/accuracy frontiers: one point per (trace, accelerator)."""
from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd

from dfs_sim.engine import simulate
from dfs_sim.plot.common import (FRONTIER_AXES, describe, full_precision_bits, palette, pyplot, save_figure,
                                 log_ticks, per_block_labels, side_legend, static_marker)
from dfs_sim.plot.layout import PointLabel, finish_layout, place_labels
from dfs_sim.report.format import format_quantity

# An accuracy this many points below the panel's best is a degenerate reference (all-skip guesses
# at 10 %): drawn below the axis, so the axis stays on the models that matter.
OFF_AXIS_POINTS = 10.0
# One per DFS model drawn as a line, cycled past five; "--" is kept for nested quantization.
LINE_STYLES = ("-", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
PANEL_SCALE_RATIO = 10.0  # absolute costs that differ more than this across accelerators get a panel each


def frontier_points(traces, hws, x: str = "energy_uj", relative: bool = True, reference=None) -> pd.DataFrame:
    """Simulate every (trace, accelerator) pair; one row per point, with its Pareto flag. A relative x
    is a share of `reference` (dfs_sim/reference.py; default full precision) on the same accelerator."""
    rows = []
    for hw in hws:
        for trace in traces:
            result = simulate(trace, hw, reference=reference)
            s = result.summary
            label = describe(trace)
            if x == "computation_pct":
                value, full, unit = s["computation_pct"], 100.0, "%"
            else:
                metric = "latency_us" if x == "latency_p99_us" else x
                stats = s["metrics"][metric]
                value = stats["p99" if x == "latency_p99_us" else "mean"]
                full = stats["full_precision"]
                unit = FRONTIER_AXES[x][1]
                against = s["reference"]["metrics"][metric]["value"]
            relative_value = 100.0 * value / against if x != "computation_pct" and against else np.nan
            rows.append({
                "trace": trace.path, "series": label.series, "nested": label.nested, "kind": label.kind,
                "label": label.label, "budget_pct": trace.budget_pct, "computation_pct": s["computation_pct"],
                "hw": hw.name, "batch": result.batch, "full_precision_bits": full_precision_bits(result),
                "accuracy_pct": s["accuracy"], "x_metric": x, "x_value": value, "x_unit": unit,
                "x_full_precision": full, "x_pct_of_full_precision": 100.0 * value / full if full else np.nan,
                "reference": result.reference.spec, "reference_label": result.reference.label(hw),
                "x_reference": against if x != "computation_pct" else np.nan, "x_pct_of_reference": relative_value,
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
    for _, row in series.sort_values("x").iterrows():
        x = np.log10(max(row["x"], 1e-12)) if log_x else row["x"]
        if clusters and abs(x - clusters[-1][-1][0]) <= 0.01 * x_span and \
                abs(row["y"] - clusters[-1][-1][1]["y"]) <= 0.02 * y_span:
            clusters[-1].append((x, row))
        else:
            clusters.append([(x, row)])
    return [((c[0][1]["x"], c[0][1]["y"]), ", ".join(sorted((r["label"] for _, r in c), key=_natural)))
            for c in clusters]


def _natural(label: str) -> tuple:
    """'20 %' before '100 %', '20 %' before '20 % nested'."""
    match = re.match(r"\s*(\d+(?:\.\d+)?)", label)
    return (0, float(match.group(1)), label) if match else (1, 0.0, label)


def _merge_across(labels: list[PointLabel], x_span: float, y_span: float, log_x: bool) -> list[PointLabel]:
    """Accelerators whose points coincide (all at 100 % of their own full precision, say) share one
    label, in grey, instead of printing the same text on top of itself."""
    merged: list[tuple[PointLabel, set]] = []
    for label in labels:
        x = np.log10(max(label.x, 1e-12)) if log_x else label.x
        for kept, colors in merged:
            kx = np.log10(max(kept.x, 1e-12)) if log_x else kept.x
            if kept.text == label.text and abs(kx - x) <= 0.01 * x_span and abs(kept.y - label.y) <= 0.02 * y_span:
                colors.add(label.color)
                break
        else:
            merged.append((PointLabel(label.x, label.y, label.text, label.color), {label.color}))
    for kept, colors in merged:
        if len(colors) > 1:
            kept.color = "dimgray"
    return [kept for kept, _ in merged]


def _panels(points: pd.DataFrame, relative: bool) -> list[tuple[bool, str | None]]:
    """(y is accuracy, accelerator or None for all) per panel."""
    panels = []
    for accuracy in (True, False):
        group = points[points["y_is_accuracy"] == accuracy]
        if group.empty:
            continue
        scales = group[group["x"] > 0].groupby("hw", sort=False)["x"].median()
        if not relative and len(scales) > 1 and scales.max() > PANEL_SCALE_RATIO * scales.min():
            panels += [(accuracy, hw) for hw in dict.fromkeys(group["hw"])]
        else:
            panels.append((accuracy, None))
    return panels


def _off_axis(panel: pd.DataFrame, accuracy: bool) -> pd.Series:
    if not accuracy:
        return pd.Series(False, index=panel.index)
    return panel["y"] < panel["y"].max() - OFF_AXIS_POINTS


def x_label(x: str, relative: bool, reference: str = "full") -> str:
    name, unit = FRONTIER_AXES[x]
    if x == "computation_pct":
        return f"{name}, % of every gated block at full precision (32 bits)"
    if relative and reference == "full":
        return f"{name}, % of full precision on the same accelerator\n(100 % is that accelerator's own full " \
               f"precision: see the legend)"
    if relative:
        what = "the accelerator's native width" if reference == "native" else f"{reference} bits"
        return f"{name}, % of the same network at {what}\n(every layer, on the same accelerator: see the legend)"
    return f"{name} ({unit})"


def build_frontier(points: pd.DataFrame, x: str = "energy_uj", relative: bool = True):
    plt = pyplot()
    from matplotlib.lines import Line2D

    relative = relative and x != "computation_pct"
    panels = _panels(points, relative)
    columns = 2 if len(panels) == 4 else min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(5.2 * columns + 3.2, 4.8 * rows + 0.6), squeeze=False,
                             layout="constrained")
    for spare in grid.flat[len(panels):]:
        spare.set_visible(False)
    axes = grid.reshape(1, -1)[:, :len(panels)]
    hws = list(dict.fromkeys(points["hw"]))
    colors = {hw: palette(i) for i, hw in enumerate(hws)}
    series_names = list(dict.fromkeys(points["series"]))
    # Line styles name the models drawn as lines (DFS budgets); a series of static references alone draws none.
    line_series = list(dict.fromkeys(points.loc[points["kind"] == "dfs", "series"]))
    styles = {s: LINE_STYLES[i % len(LINE_STYLES)] for i, s in enumerate(line_series)}
    per_block = per_block_labels(points)
    pending = []  # (axes, labels) placed once the layout is fixed
    off_axis = {}  # label -> legend text of references drawn on the lower edge
    for ax, (accuracy, only_hw) in zip(axes[0], panels):
        panel = points[points["y_is_accuracy"] == accuracy]
        if only_hw is not None:
            panel = panel[panel["hw"] == only_hw]
        off = _off_axis(panel, accuracy)
        shown, below = panel[~off], panel[off]
        log_x = not relative and shown["x"].max() > 20 * max(shown["x"].min(), 1e-12)
        labels = []
        for (hw, series, nested), group in shown.groupby(["hw", "series", "nested"], sort=False):
            dfs = group[group["kind"] == "dfs"].sort_values("x")
            if len(dfs):
                ax.plot(dfs["x"], dfs["y"], marker="o", ls="--" if nested else styles[series], color=colors[hw],
                        ms=6, mfc="white" if nested else colors[hw], zorder=3)
            labels += [PointLabel(px, py, text, colors[hw]) for (px, py), text in _coincident_labels(dfs, shown, log_x)]
            for _, row in group[group["kind"] == "static"].iterrows():
                ax.plot(row["x"], row["y"], static_marker(row["label"], per_block), color=colors[hw], ms=9,
                        mfc="white", mew=1.5, zorder=3)
        front = shown[shown["pareto"]]
        if len(front):
            ax.scatter(front["x"], front["y"], s=150, facecolors="none", edgecolors="black", lw=1.0, zorder=4)
        if log_x:
            ax.set_xscale("log")
            log_ticks(ax.xaxis, shown["x"].min(), shown["x"].max())
        low, high = shown["y"].min(), shown["y"].max()
        pad = max(0.15 * (high - low), 0.05)
        ax.set_ylim(low - pad, high + pad)
        if len(below):
            ax.set_ylim(low - 2 * pad, high + pad)
            floor = low - 2 * pad
            for _, row in below.iterrows():
                ax.plot(row["x"], floor, "v", color=colors[row["hw"]], ms=9, mfc="white", mew=1.5, clip_on=False,
                        zorder=5)
            for name, group in below.groupby("label", sort=False):
                span = ", ".join(dict.fromkeys(f"{v:.1f} %" for v in group["y"]))
                off_axis[name] = f"{name}: {span} accuracy, off the axis (on its lower edge)"
        ax.set_xlabel(x_label(x, relative, points["reference"].iloc[0] if "reference" in points else "full"),
                      fontsize=9)
        ax.set_ylabel("test accuracy (%)" if accuracy else "trained budget (% computation)")
        what = "accuracy" if accuracy else "budget (traces without labels)"
        ax.set_title(f"{what} against cost" + (f" on {only_hw}" if only_hw else ""), fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        xs = np.log10(shown["x"].clip(lower=1e-12)) if log_x else shown["x"]
        pending.append((ax, _merge_across(labels, max(xs.max() - xs.min(), 1e-12),
                                          max(shown["y"].max() - shown["y"].min(), 1e-12), log_x)))
    # Legend: accelerators by colour (with what 100 % means there), models by line style, static
    # references by marker.
    handles = []
    for hw in hws:
        rows = points[points["hw"] == hw]
        note = f"batch {rows['batch'].iloc[0]}"
        if relative:
            against = f"{rows['full_precision_bits'].iloc[0]}-bit" if rows["reference"].iloc[0] == "full" else \
                rows["reference_label"].iloc[0]
            note = f"100 % = {against}" + (
                f", {format_quantity(rows['x_reference'].iloc[0], FRONTIER_AXES[x][1])}"
                if rows["series"].nunique() == 1 else "") + f"; {note}"
        handles.append(Line2D([], [], color=colors[hw], marker="o", label=f"{hw} ({note})"))
    if len(series_names) > 1:
        handles += [Line2D([], [], color="gray", ls=styles[s], label=s) for s in line_series]
    if points["nested"].any():
        handles.append(Line2D([], [], color="gray", ls="--", marker="o", mfc="white", label="nested quantization"))
    for label in dict.fromkeys(points.loc[points["kind"] == "static", "label"]):
        handles.append(Line2D([], [], ls="", marker=static_marker(label, per_block), color="gray", mfc="white", ms=8,
                              label=f"static: {off_axis.get(label, label)}"))
    for label, text in off_axis.items():
        if label not in set(points.loc[points["kind"] == "static", "label"]):
            handles.append(Line2D([], [], ls="", marker="v", color="gray", mfc="white", ms=8, label=text))
    if points["pareto"].any():
        handles.append(Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec="black",
                              label="Pareto front (per accelerator)"))
    side_legend(grid[0, -1], handles)
    named = line_series or series_names  # one name fits a title; more are in the legend
    title = named[0] if len(named) == 1 else f"{len(named)} {'DFS ' if line_series else ''}models"
    fig.suptitle(f"{title}: accuracy against {FRONTIER_AXES[x][0]}", fontsize=11, x=0.01, ha="left")
    if relative:
        full = points.groupby(["series", "hw"])["x_reference"].first()
        ratios = full.groupby("series").agg(lambda v: v.max() / v.min() if v.min() > 0 else np.nan)
        if (ratios > 2).any():
            series = ratios.idxmax()
            cheap, dear = full[series].idxmin(), full[series].idxmax()
            fig.supxlabel(textwrap.fill(
                f"Each accelerator is scaled to its own reference. On {series}, the reference costs "
                f"{ratios[series]:.0f}× as much on {dear} as on {cheap} ({FRONTIER_AXES[x][0]}): use --absolute "
                f"to compare accelerators.", 100), fontsize=8, x=0.01, ha="left")
    finish_layout(fig)
    for ax, labels in pending:
        place_labels(ax, labels)
    return fig


def plot_frontier(points: pd.DataFrame, output, x: str = "energy_uj", relative: bool = True):
    return save_figure(build_frontier(points, x, relative), output)
