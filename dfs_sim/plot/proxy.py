"""`dfs-sim plot proxy`: what the paper's computation percentage promises against what the hardware charges."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from dfs_sim.engine import simulate
from dfs_sim.plot.common import (PROXY_METRICS, REFERENCE_COLOR, describe, full_precision_bits, palette,
                                 log_ticks, per_block_labels, pyplot, save_figure, side_legend, static_marker)
from dfs_sim.plot.layout import finish_layout

PANELS_PER_ROW = 3  # one panel per model family; more wrap onto further rows
PROXY_AXIS = "computation % (the paper's proxy: skip 0, b bits (b/32)², full precision 1)"


def proxy_points(traces, hws, metric: str = "energy_uj", reference_hw=None, batch=None, policy=None,
                 reference=None) -> pd.DataFrame:
    """One row per (trace, accelerator): the proxy and the real cost as a share of the reference.

    `reference` (dfs_sim/reference.py): what 100 % is, default full precision (what it means on each
    accelerator: 16 bits on Stripes, 32 on Bit Fusion). `reference_hw` None: the reference on each
    accelerator itself; an HwConfig: the same trace at the reference on that accelerator.
    """
    rows = []
    for trace in traces:
        label = describe(trace)
        base = None
        if reference_hw is not None:
            base = simulate(trace, reference_hw, batch=batch, policy=policy,
                            reference=reference).summary["reference"]["metrics"][metric]["value"]
        for hw in hws:
            result = simulate(trace, hw, batch=batch, policy=policy, reference=reference)
            stats = result.summary["metrics"][metric]
            own = result.summary["reference"]["metrics"][metric]["value"]
            denominator = own if base is None else base
            rows.append({
                "trace": trace.path, "series": label.series, "nested": label.nested, "kind": label.kind,
                "label": label.label, "hw": hw.name, "batch": result.batch, "policy": result.policy,
                "full_precision_bits": full_precision_bits(result), "reference_spec": result.reference.spec,
                "reference_label": result.reference.label(hw),
                "computation_pct": result.summary["computation_pct"], "metric": metric, "value": stats["mean"],
                "full_precision": stats["full_precision"], "reference": denominator,
                "pct_of_reference": 100.0 * stats["mean"] / denominator if denominator else np.nan,
            })
    return pd.DataFrame(rows)


def reference_text(points: pd.DataFrame, reference_name: str | None) -> str:
    full = points["reference_spec"].iloc[0] == "full"
    what = "full precision" if full else f"the network at {points['reference_label'].iloc[0]}"
    if reference_name is None:
        return f"% of {what} on the same accelerator"
    bits = points.loc[points["hw"] == reference_name, "full_precision_bits"]
    return f"% of full precision ({bits.iloc[0]}-bit) on {reference_name}" if full and len(bits) else \
        f"% of {what} on {reference_name}"


def build_proxy(points: pd.DataFrame, reference_name: str | None = None):
    """The figure: one panel per model, one line per accelerator across the model's budgets."""
    plt = pyplot()
    from matplotlib.lines import Line2D

    metric = points["metric"].iloc[0]
    series_names = list(dict.fromkeys(points["series"]))
    per_block = per_block_labels(points)
    cols = min(len(series_names), PANELS_PER_ROW)
    rows = -(-len(series_names) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5.6 * cols + 2.6, 5.0 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    for ax in grid.flat[len(series_names):]:
        ax.set_visible(False)
    axes = grid.reshape(1, -1)[:, :len(series_names)]
    hws = list(dict.fromkeys(points["hw"]))
    colors = {hw: palette(i) for i, hw in enumerate(hws)}
    top = max(105.0, float(np.nanmax(points["pct_of_reference"])) * 1.05)
    log_y = reference_name is not None and top > 1000
    for ax, series in zip(axes[0], series_names):
        panel = points[points["series"] == series]
        diagonal = np.linspace(0.5, 100, 200)  # sampled: on a log y axis the line is a curve
        ax.plot(diagonal, diagonal, color=REFERENCE_COLOR, ls="--", lw=1.2, zorder=1)
        for i, hw in enumerate(hws):
            # Accelerators often cost the same (100 % at budgets that only mix 16-bit and full
            # precision): each is drawn narrower than the one before, so coinciding lines show as stripes.
            layer = len(hws) - 1 - i
            rows = panel[panel["hw"] == hw]
            for nested, line in rows[rows["kind"] == "dfs"].groupby("nested"):
                line = line.sort_values("computation_pct")
                ax.plot(line["computation_pct"], line["pct_of_reference"], color=colors[hw], marker="o",
                        ls="--" if nested else "-", mfc="white" if nested else colors[hw], ms=5 + 1.5 * layer,
                        lw=1.5 + 1.5 * layer, zorder=3 + i)
            for _, row in rows[rows["kind"] == "static"].iterrows():
                ax.plot(row["computation_pct"], row["pct_of_reference"], static_marker(row["label"], per_block),
                        color=colors[hw], mfc="white", mew=1.5, ms=8 + 2 * layer, zorder=3 + i)
        ax.set_xlim(-3, 105)
        if log_y:
            ax.set_yscale("log")
            ax.set_ylim(max(0.5, float(np.nanmin(points["pct_of_reference"])) / 2), top * 1.5)
            log_ticks(ax.yaxis, *ax.get_ylim())
        else:
            ax.set_ylim(0, top)
        ax.set_title(textwrap.fill(series, 60), fontsize=10, loc="left")
        ax.set_xlabel(PROXY_AXIS, fontsize=9)
        ax.grid(alpha=0.3)
    name, _ = PROXY_METRICS[metric]
    for row in grid:
        row[0].set_ylabel(f"{name}, {reference_text(points, reference_name)}")
    handles = []
    for hw in hws:
        row = points[points["hw"] == hw].iloc[0]
        against = f"{row['full_precision_bits']}-bit" if row["reference_spec"] == "full" else row["reference_label"]
        note = f"100 % = {against}, batch {row['batch']}" if reference_name is None else f"batch {row['batch']}"
        handles.append(Line2D([], [], color=colors[hw], marker="o", label=f"{hw} ({note})"))
    handles.append(Line2D([], [], color=REFERENCE_COLOR, ls="--", label="y = x: what the proxy promises"))
    if points["nested"].any():
        handles.append(Line2D([], [], color="gray", ls="--", marker="o", mfc="white", label="nested quantization"))
    for label in dict.fromkeys(points.loc[points["kind"] == "static", "label"]):
        handles.append(Line2D([], [], ls="", marker=static_marker(label, per_block), color="gray", mfc="white", ms=8,
                              label=f"static: {label}"))
    side_legend(grid[0, -1], handles,
                title="lines: one model across its budgets\n(drawn widest first: lines that coincide show as stripes)")
    fig.suptitle(f"The proxy against the hardware: {name} of DFS models", fontsize=11, x=0.01, ha="left")
    finish_layout(fig)
    for ax in axes[0]:
        label_diagonal(ax)
    return fig


def label_diagonal(ax) -> None:
    """'what the proxy promises' along the y = x line, just below it."""
    (x0, y0), (x1, y1) = ax.transData.transform([(55, 55), (61, 61)])
    angle = np.arctan2(y1 - y0, x1 - x0)
    ax.annotate("what the proxy promises", (58, 58), xytext=(9 * np.sin(angle), -9 * np.cos(angle)),
                textcoords="offset points", rotation=float(np.degrees(angle)), rotation_mode="anchor",
                ha="center", va="center", fontsize=9, color=REFERENCE_COLOR)


def plot_proxy(traces, hws, output, metric="energy_uj", reference_hw=None, batch=None, policy=None, reference=None):
    points = proxy_points(traces, hws, metric, reference_hw, batch, policy, reference)
    save_figure(build_proxy(points, None if reference_hw is None else reference_hw.name), output)
    return points
