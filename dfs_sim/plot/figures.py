"""`dfs-sim plot decisions|latency|energy`."""
from __future__ import annotations

import numpy as np

from dfs_sim.engine import simulate
from dfs_sim.plot.common import describe, pyplot, save_figure

OPTION_COLORS = {"skip": "#d9d9d9", "full": "#08306b"}
OTHER_COLORS = ["#fdae6b", "#e6550d", "#9ecae1", "#3182bd", "#a1d99b", "#31a354"]


def option_colors(options) -> list[str]:
    colors, others = [], iter(OTHER_COLORS)
    for option in options:
        colors.append(OPTION_COLORS.get(option.name) or next(others, "#999999"))
    return colors


def plot_decisions(traces, output):
    """Share of each option per gated block, stacked, one panel per trace (the DFS supplement's Figs 12-15)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 2.3 * len(traces) + 0.6), squeeze=False, sharex=True)
    for ax, trace in zip(axes[:, 0], traces):
        n_units = trace.network.n_units
        counts = np.zeros((n_units, len(trace.options)))
        for start in range(0, trace.n_inputs, 1 << 18):
            chunk = np.asarray(trace.decisions[start:start + (1 << 18)])
            for u in range(n_units):
                counts[u] += np.bincount(chunk[:, u], minlength=len(trace.options))
        shares = counts / max(trace.n_inputs, 1)
        blocks = np.arange(n_units)
        bottom = np.zeros(n_units)
        for o, (option, color) in enumerate(zip(trace.options, option_colors(trace.options))):
            ax.bar(blocks, shares[:, o], bottom=bottom, color=color, width=0.85, label=option.name)
            bottom += shares[:, o]
        label = describe(trace)
        computation = float((shares * [o.computation_cost for o in trace.options]).sum(axis=1).mean() * 100)
        title = f"{label.series}, {label.label}" + (f" (computation {computation:.1f} %)" if label.kind == "dfs" else "")
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of inputs")
        ax.set_xlim(-0.6, n_units - 0.4)
        step = max(1, n_units // 18)
        ax.set_xticks(blocks[::step], [u.removeprefix("block") for u in trace.network.units[::step]])
    axes[-1, 0].set_xlabel("gated block (residual block index; block 1 is not gated)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", ncol=len(names), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save_figure(fig, output)


def plot_latency(traces, hw, output, budget_us=None, batch=None, policy=None):
    """Per-input latency CDF per trace on one accelerator."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4 + 0.2 * len(traces)))
    labels = [describe(trace) for trace in traces]
    one_series = len({label.series for label in labels}) == 1
    for i, (trace, label) in enumerate(zip(traces, labels)):
        result = simulate(trace, hw, batch=batch, policy=policy)
        latency = np.sort(result.per_input["latency_us"].to_numpy())
        share = np.arange(1, len(latency) + 1) / len(latency)
        name = label.label if one_series else f"{label.label} ({label.series})"
        ax.step(latency, share, where="post", color=f"C{i}", label=name)
        ax.axvline(result.summary["metrics"]["latency_us"]["full_precision"], color=f"C{i}", ls=":", lw=1)
    if budget_us is not None:
        ax.axvline(budget_us, color="red", ls="--", lw=1.5, label=f"latency budget {budget_us:g} µs")
    low, high = ax.get_xlim()
    middle = (low + high) / 2
    if high - low < 0.02 * middle:  # near-equal latencies (a fixed-precision machine): do not magnify noise
        ax.set_xlim(0.99 * middle, 1.01 * middle)
    ax.set_xlabel(f"latency per input on {hw.name} (µs); dotted: full precision")
    ax.set_ylabel("share of inputs at or below")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    ax.set_title((f"{labels[0].series}\n" if one_series else "") + f"batch {result.batch}, {result.policy}",
                 fontsize=9, loc="left")
    fig.tight_layout()
    return save_figure(fig, output)


def plot_energy(trace, hws, output, batch=None, policy=None):
    """Energy per inference split by component, one bar per accelerator."""
    plt = pyplot()
    breakdowns, names, full = [], [], []
    for hw in hws:
        result = simulate(trace, hw, batch=batch, policy=policy)
        breakdowns.append(result.summary["energy_breakdown_uj"])
        names.append(hw.name)
        full.append(result.summary["metrics"]["energy_uj"]["full_precision"])
    components = list(dict.fromkeys(["compute"] + [c for b in breakdowns for c in b if c not in ("dram", "static")]
                                    + ["dram", "static"]))
    totals = np.array([sum(b.values()) for b in breakdowns])
    fig, (ax, share_ax) = plt.subplots(1, 2, figsize=(max(9, 0.9 * len(hws) + 4), 5.4),
                                       gridspec_kw={"width_ratios": [3, 2]})
    positions = np.arange(len(hws))
    bottom = np.zeros(len(hws))
    share_bottom = np.zeros(len(hws))
    palette = plt.get_cmap("tab20")
    for c, component in enumerate(components):
        values = np.array([b.get(component, 0.0) for b in breakdowns])
        if not values.any():
            continue
        label = {"compute": "compute", "dram": "DRAM", "static": "static (leakage)"}.get(component,
                                                                                          f"buffer: {component}")
        ax.bar(positions, values, bottom=bottom, color=palette(c % 20), label=label, width=0.65)
        share_ax.bar(positions, 100 * values / totals, bottom=share_bottom, color=palette(c % 20), width=0.65)
        bottom += values
        share_bottom += 100 * values / totals
    ax.scatter(positions, full, marker="_", s=600, color="black", zorder=3, label="full precision, same hardware")
    for x, total, reference in zip(positions, bottom, full):
        ax.annotate(f"{100 * total / reference:.0f} %", (x, total), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=8)
    for axis in (ax, share_ax):
        axis.set_xticks(positions, names, rotation=25, ha="right")
    ax.set_ylabel("energy per inference (µJ)")
    share_ax.set_ylabel("share of the accelerator's energy (%)")
    share_ax.set_ylim(0, 100)
    label = describe(trace)
    # The trace's description spans the figure: as an axes title it ran into the right panel's.
    fig.suptitle(f"{label.series}, {label.label}", fontsize=10, x=0.01, ha="left")
    ax.set_title("per inference; labels: % of the full-precision energy", fontsize=9, loc="left")
    share_ax.set_title("where the energy goes", fontsize=9, loc="left")
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=5, frameon=False)
    return save_figure(fig, output)
