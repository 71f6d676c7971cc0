"""`dfs-sim plot decisions|latency|energy`."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dfs_sim.engine import simulate
from dfs_sim.errors import InputError
from dfs_sim.plot.common import (REFERENCE_COLOR, describe, model_name, option_name, palette, pyplot, save_figure,
                                 side_legend, log_ticks, thousands)
from dfs_sim.plot.layout import finish_layout, label_vertical_line
from dfs_sim.report.format import format_quantity

SKIP_COLOR = "#f2a33a"  # amber: a skip is a decision worth seeing, not a gap
FULL_COLOR = "#08306b"
# Energy components (summary["energy_components"] names) in stacking order, with their colours.
COMPONENT_COLORS = {"compute": "#1b9e77", "weight buffer": "#7570b3", "activation buffer": "#e7298a",
                    "output buffer": "#66a61e", "shared buffer": "#a6761d", "DRAM": "#d95f02",
                    "static (leakage)": "#666666"}


def option_colors(options) -> list[str]:
    """Skip amber, full precision navy, b-bit options in blues that darken with b."""
    import matplotlib

    blues = matplotlib.colormaps["Blues"]
    widths = sorted({o.weight_bits for o in options if not o.is_skip and not o.full_precision})
    colors = []
    for option in options:
        if option.is_skip:
            colors.append(SKIP_COLOR)
        elif option.full_precision:
            colors.append(FULL_COLOR)
        else:
            rank = widths.index(option.weight_bits) / max(len(widths) - 1, 1)
            colors.append(blues(0.3 + 0.4 * rank))
    return colors


def decision_shares(trace) -> np.ndarray:
    """[units, options]: the share of inputs that chose each option at each gated block."""
    n_units = trace.network.n_units
    counts = np.zeros((n_units, len(trace.options)))
    for start in range(0, trace.n_inputs, 1 << 18):
        chunk = np.asarray(trace.decisions[start:start + (1 << 18)])
        for u in range(n_units):
            counts[u] += np.bincount(chunk[:, u], minlength=len(trace.options))
    return counts / max(trace.n_inputs, 1)


def downsampling_units(network) -> list[int]:
    """Gated blocks that downsample (a stride-2 layer): each starts a stage."""
    return sorted({layer.unit for layer in network.layers if layer.unit is not None and layer.stride > 1})


def plot_decisions(traces, output, include_static: bool = True):
    return save_figure(build_decisions(traces, include_static), output)


def build_decisions(traces, include_static: bool = True):
    """Share of each option per gated block, stacked, one panel per trace (the DFS supplement's Figs 12-15)."""
    plt = pyplot()
    from matplotlib.patches import Patch

    labels = [describe(trace) for trace in traces]
    keep = [(t, lab) for t, lab in zip(traces, labels) if include_static or lab.kind != "static"]
    if not keep:
        raise InputError("--trace", None, "every trace is static and --no-static leaves nothing to draw")
    one_series = len({lab.series for _, lab in keep}) == 1
    one_network = len({(t.network.name, t.network.n_units) for t, _ in keep}) == 1
    fig, axes = plt.subplots(len(keep), 1, figsize=(10, 1.9 * len(keep) + 1.1), squeeze=False, sharex=one_network,
                             layout="constrained")
    handles = {}
    for ax, (trace, label) in zip(axes[:, 0], keep):
        shares = decision_shares(trace)
        n_units = trace.network.n_units
        blocks = np.arange(n_units)
        bottom = np.zeros(n_units)
        for o, (option, color) in enumerate(zip(trace.options, option_colors(trace.options))):
            chosen = np.flatnonzero(shares[:, o])
            ax.bar(blocks[chosen], shares[chosen, o], bottom=bottom[chosen], color=color, width=0.85)
            bottom += shares[:, o]
            handles.setdefault(option_name(option.name), Patch(color=color, label=option_name(option.name)))
        for u in downsampling_units(trace.network):
            ax.axvline(u - 0.5, color=REFERENCE_COLOR, lw=1.2, ls=(0, (4, 2)))
        computation = float((shares * [o.computation_cost for o in trace.options]).sum(axis=1).mean() * 100)
        title = label.long + (f" (computation {computation:.1f} %)" if label.kind == "dfs" else "")
        ax.set_title(title if one_series else f"{label.series}: {title}", fontsize=9, loc="left")
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 0.5, 1], ["0", "50", "100"])
        ax.set_ylabel("inputs (%)", fontsize=9)
        ax.set_xlim(-0.6, n_units - 0.4)
        if ax is axes[-1, 0] or not one_network:
            ticks = _block_ticks(trace.network)
            downsampling = downsampling_units(trace.network)
            ax.set_xticks(ticks, [trace.network.units[u].removeprefix("block") + ("↓" if u in downsampling else "")
                                  for u in ticks])
    axes[-1, 0].set_xlabel("gated residual block (block 1 is not gated); ↓ downsampling block, dashed line: stage "
                           "boundary")
    side_legend(axes[0, 0], list(handles.values()), fontsize=9, title="option chosen", title_fontsize=9)
    if one_series:
        fig.suptitle(f"{keep[0][1].series}: which option each gated block runs at", fontsize=11, x=0.01,
                     ha="left")
    else:
        fig.suptitle("Which option each gated block runs at", fontsize=11, x=0.01, ha="left")
    finish_layout(fig)
    return fig


def _block_ticks(network) -> list[int]:
    """Every block when they fit, else every n-th, always including the downsampling blocks."""
    n_units = network.n_units
    step = max(1, math.ceil(n_units / 24))
    special = set(downsampling_units(network))
    ticks = [u for u in range(n_units) if u % step == 0 and all(abs(u - s) >= step for s in special if s != u)]
    return sorted(set(ticks) | special)


def latency_shares(latency: np.ndarray, budget_us: float) -> float:
    return 100.0 * float(np.count_nonzero(latency <= budget_us)) / max(len(latency), 1)


def plot_latency(traces, hws, output, budget_us=None, batch=None, policy=None, reference=None):
    return save_figure(build_latency(traces, hws, budget_us, batch, policy, reference), output)


def build_latency(traces, hws, budget_us=None, batch=None, policy=None, reference=None):
    """Per-input latency CDF per trace, one panel per accelerator; a dotted line at the reference's
    latency (dfs_sim/reference.py; default full precision)."""
    plt = pyplot()
    from matplotlib.lines import Line2D

    labels = [describe(trace) for trace in traces]
    one_series = len({label.series for label in labels}) == 1
    fig, axes = plt.subplots(1, len(hws), figsize=(5.2 * len(hws) + 2.8, 4.6), squeeze=False, layout="constrained")
    references = []  # (axes, latency, text) labelled once the layout is fixed
    for ax, hw in zip(axes[0], hws):
        shares, full = [], {}
        for i, trace in enumerate(traces):
            result = simulate(trace, hw, batch=batch, policy=policy, reference=reference)
            latency = np.sort(result.per_input["latency_us"].to_numpy())
            ax.step(latency, np.arange(1, len(latency) + 1) / len(latency), where="post", color=palette(i), lw=1.6)
            full.setdefault(model_name(trace), result.summary["reference"]["metrics"]["latency_us"]["value"])
            reference_name = "full precision" if result.reference.is_full else result.reference.label(hw)
            if budget_us is not None:
                shares.append(latency_shares(latency, budget_us))
        for network, value in full.items():
            ax.axvline(value, color="dimgray", ls=":", lw=1.4)
            name = reference_name + (f", {network}" if len(full) > 1 else "")
            references.append((ax, value, f"{name}: {format_quantity(value, 'µs')}"))
        if budget_us is not None:
            ax.axvline(budget_us, color=REFERENCE_COLOR, ls="--", lw=1.6)
        low, high = ax.get_xlim()
        middle = (low + high) / 2
        if high - low < 0.02 * middle:  # near-equal latencies (a fixed-precision machine): do not magnify noise
            ax.set_xlim(0.99 * middle, 1.01 * middle)
        ax.set_xlabel("latency of the input's batch (µs)")
        thousands(ax.xaxis)
        ax.set_ylabel("inputs finished within it (%)")
        ax.set_ylim(0, 1.02)
        ax.set_yticks(np.linspace(0, 1, 6), [f"{v:.0f}" for v in np.linspace(0, 100, 6)])
        ax.grid(alpha=0.3)
        title = f"{hw.name}, batch {result.batch} ({result.policy})"
        if budget_us is not None:
            title += f"\nwithin {format_quantity(budget_us, 'µs')}: " + " / ".join(f"{s:.0f} %" for s in shares) + \
                " of inputs"
        ax.set_title(title, fontsize=9, loc="left")
    handles = [Line2D([], [], color=palette(i), lw=1.6, label=label.long if one_series else
                      f"{label.series}: {label.long}") for i, label in enumerate(labels)]
    handles.append(Line2D([], [], color="dimgray", ls=":", lw=1.4, label=f"{reference_name}, same accelerator"))
    if budget_us is not None:
        handles.append(Line2D([], [], color=REFERENCE_COLOR, ls="--", lw=1.6,
                              label=f"latency budget {format_quantity(budget_us, 'µs')}"))
    side_legend(axes[0, -1], handles,
                title="traces (shares in the titles\nfollow this order)" if budget_us is not None else None)
    suptitle = f"{labels[0].series}: latency per input" if one_series else "Latency per input"
    fig.suptitle(suptitle, fontsize=11, x=0.01, ha="left")
    finish_layout(fig)
    for ax, value, text in references:
        label_vertical_line(ax, value, text)
    return fig


def energy_parts(trace, hws, batch=None, policy=None, reference=None) -> pd.DataFrame:
    """One row per (accelerator, energy component): the config's name, the human one, µJ per input;
    with the total, full precision's, and the reference's (dfs_sim/reference.py; default full)."""
    rows = []
    for hw in hws:
        result = simulate(trace, hw, batch=batch, policy=policy, reference=reference)
        s = result.summary
        full = s["metrics"]["energy_uj"]["full_precision"]
        against = s["reference"]["metrics"]["energy_uj"]["value"]
        against_name = "full precision" if result.reference.is_full else result.reference.label(hw)
        total = s["metrics"]["energy_uj"]["mean"]
        for key, value in s["energy_breakdown_uj"].items():
            rows.append({"hw": hw.name, "batch": result.batch, "policy": result.policy,
                         "weights_on_chip": s["weights_resident_on_chip"], "component": s["energy_components"][key],
                         "config_name": key, "energy_uj": value, "share_pct": 100.0 * value / total if total else 0.0,
                         "total_uj": total, "full_precision_uj": full, "reference": against_name,
                         "reference_uj": against})
    return pd.DataFrame(rows)


def plot_energy(trace, hws, output, scale: str = "log", batch=None, policy=None, reference=None) -> pd.DataFrame:
    parts = energy_parts(trace, hws, batch, policy, reference)
    save_figure(build_energy(parts, describe(trace), scale), output)
    return parts


def build_energy(parts: pd.DataFrame, label, scale: str = "log"):
    """Energy per inference by component, one bar per accelerator; beside it, where the energy goes."""
    plt = pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    hws = list(dict.fromkeys(parts["hw"]))
    per_hw = parts.groupby(["hw", "component"], sort=False)["energy_uj"].sum().unstack(fill_value=0.0).reindex(hws)
    components = [c for c in COMPONENT_COLORS if c in per_hw.columns and per_hw[c].any()]
    components += [c for c in per_hw.columns if c not in components and per_hw[c].any()]
    first = parts.groupby("hw", sort=False).first().reindex(hws)
    totals, full = first["total_uj"].to_numpy(), first["reference_uj"].to_numpy()
    against = first["reference"].iloc[0] if "reference" in first else "full precision"
    fig, (ax, share_ax) = plt.subplots(1, 2, figsize=(max(10, 1.3 * len(hws) + 5.5), 5.6), layout="constrained",
                                       gridspec_kw={"width_ratios": [3, 2]})
    positions = np.arange(len(hws))
    relative = scale == "relative"
    norm = 100.0 / full if relative else np.ones(len(hws))
    bottom, share_bottom = np.zeros(len(hws)), np.zeros(len(hws))
    for c, component in enumerate(components):
        color = COMPONENT_COLORS.get(component, palette(c))
        values = per_hw[component].to_numpy()
        if scale != "log":  # stacked bars would misstate the parts on a log axis: there the bar is the total
            ax.bar(positions, values * norm, bottom=bottom, color=color, width=0.6)
        share_ax.bar(positions, 100 * values / totals, bottom=share_bottom, color=color, width=0.6)
        bottom += values * norm
        share_bottom += 100 * values / totals
    if scale == "log":
        ax.bar(positions, totals, color="#8da0cb", width=0.6)
        ax.set_yscale("log")
    tops = np.maximum(totals * norm, full * norm)
    ax.plot(positions, full * norm, ls="", marker="_", ms=34, mew=2.2, color=REFERENCE_COLOR, zorder=3)
    for x, total, reference, top in zip(positions, totals, full, tops):
        text = f"{100 * total / reference:.0f} %" if relative else \
            f"{format_quantity(total, 'µJ')}\n{100 * total / reference:.0f} %"
        ax.annotate(text, (x, top), xytext=(0, 6), textcoords="offset points", ha="center", va="bottom", fontsize=8)
    if scale == "log":
        ax.set_ylim(min(totals.min(), full.min()) / 2, tops.max() * 8)
        ax.set_ylabel("energy per inference (µJ, log scale)")
        log_ticks(ax.yaxis, *ax.get_ylim())
    elif relative:
        ax.set_ylim(0, tops.max() * 1.25)
        ax.set_ylabel(f"energy per inference, % of {against} on the same accelerator")
    else:
        ax.set_ylim(0, tops.max() * 1.25)
        ax.set_ylabel("energy per inference (µJ)")
        thousands(ax.yaxis)
    names = [f"{hw}\nbatch {first.loc[hw, 'batch']}\nweights\n{'on chip' if first.loc[hw, 'weights_on_chip'] else 'from DRAM'}"
             for hw in hws]
    ax.set_xticks(positions, names, fontsize=8)
    share_ax.set_xticks(positions, hws, fontsize=8, rotation=30, ha="right", rotation_mode="anchor")
    for axis in (ax, share_ax):
        axis.set_xlim(-0.6, len(hws) - 0.4)
    share_ax.set_ylabel("share of the accelerator's energy (%)")
    share_ax.set_ylim(0, 100)
    ax.set_title("per inference" + (" (bars: total)" if scale == "log" else "") + "\nlabels: "
                 + ("" if relative else "energy and ") + f"% of {against}, same accelerator",
                 fontsize=9, loc="left")
    share_ax.set_title("where the energy goes", fontsize=9, loc="left")
    batches = dict.fromkeys(f"batch {b} ({p})" for b, p in zip(first["batch"], first["policy"]))
    batch_text = next(iter(batches)) if len(batches) == 1 else "each accelerator at its own batch (under its name)"
    fig.suptitle(f"{label.series}, {label.long}: energy per inference, {batch_text}", fontsize=10, x=0.01,
                 ha="left")
    handles = [Patch(color=COMPONENT_COLORS.get(c, palette(i)), label=c) for i, c in enumerate(components)]
    if scale == "log":
        handles.insert(0, Patch(color="#8da0cb", label="total (left)"))
    handles.append(Line2D([], [], ls="", marker="_", ms=16, mew=2.2, color=REFERENCE_COLOR,
                          label=f"{against}, same accelerator"))
    side_legend(share_ax, handles)
    finish_layout(fig)
    return fig
