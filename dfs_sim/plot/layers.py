"""`dfs-sim plot layers`: cycles, energy and DRAM traffic per layer, split by the option each layer ran at."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dfs_sim.engine import simulate
from dfs_sim.plot.common import describe, engineering, option_name, pyplot, save_figure, side_legend
from dfs_sim.plot.figures import option_colors
from dfs_sim.plot.layout import PointLabel, finish_layout, place_labels

NOT_GATED = "not gated (always runs)"
NOT_GATED_COLOR = "#a0a0a0"
# (column of the per-layer frame, row label, unit for the axis)
ROWS = (("cycles", "cycles per input", "cycles"), ("energy_uj", "energy per input", "µJ"),
        ("dram_bytes", "DRAM traffic per input", "B"))


def layer_parts(trace, hws, batch=None, policy=None) -> pd.DataFrame:
    """One row per (accelerator, layer, option it ran at): per-input cycles, energy and DRAM bytes."""
    rows = []
    for hw in hws:
        result = simulate(trace, hw, batch=batch, policy=policy)
        table = result.table
        totals = result.layer_case_totals / max(result.n_inputs, 1)  # [layers, cases, metrics]
        energy = [i for i, name in enumerate(table.metric_names) if name.startswith("energy_")]
        dram = [table.metric("dram_read_bits"), table.metric("dram_write_bits")]
        cycles = totals[..., table.metric("cycles")]
        energy_uj = totals[..., energy].sum(-1) * 1e-6
        dram_bytes = totals[..., dram].sum(-1) / 8
        for index, layer in enumerate(trace.network.layers):
            gated = layer.follows_unit
            cases = range(len(trace.options)) if gated else (0,)
            for c in cases:
                rows.append({"hw": hw.name, "batch": result.batch, "policy": result.policy, "layer_index": index,
                             "layer": layer.name, "kind": layer.kind,
                             "option": option_name(trace.options[c].name) if gated else NOT_GATED,
                             "cycles": cycles[index, c], "energy_uj": energy_uj[index, c],
                             "dram_bytes": dram_bytes[index, c]})
    return pd.DataFrame(rows)


def plot_layers(trace, hws, output, batch=None, policy=None) -> pd.DataFrame:
    parts = layer_parts(trace, hws, batch, policy)
    save_figure(build_layers(parts, trace), output)
    return parts


def build_layers(parts: pd.DataFrame, trace):
    plt = pyplot()
    from matplotlib.patches import Patch

    hws = list(dict.fromkeys(parts["hw"]))
    colors = dict(zip((option_name(o.name) for o in trace.options), option_colors(trace.options)))
    colors[NOT_GATED] = NOT_GATED_COLOR
    order = [name for name in colors if (parts["option"] == name).any()]
    layers = trace.network.layers
    n_layers = len(layers)
    # One block of three rows (cycles, energy, DRAM) per accelerator, all on one layer axis.
    fig, axes = plt.subplots(len(ROWS) * len(hws), 1, figsize=(min(16, max(9, 0.045 * n_layers + 5)),
                                                              1.9 * len(ROWS) * len(hws) + 1.2),
                             squeeze=False, sharex=True, layout="constrained")
    pending = []
    for block, hw in enumerate(hws):
        frame = parts[parts["hw"] == hw]
        for row, (metric, name, unit) in enumerate(ROWS):
            ax = axes[block * len(ROWS) + row, 0]
            table = frame.pivot_table(index="layer_index", columns="option", values=metric, aggfunc="sum",
                                      fill_value=0.0).reindex(range(n_layers), fill_value=0.0)
            bottom = np.zeros(n_layers)
            for option in order:
                if option in table:
                    values = table[option].to_numpy()
                    ran = np.flatnonzero(values)  # no empty bars: a deep network has hundreds of layers
                    ax.bar(ran, values[ran], bottom=bottom[ran], width=0.9, color=colors[option], linewidth=0)
                    bottom += values
            total = bottom.sum()
            hot = int(np.argmax(bottom))
            if total > 0:
                ax.bar([hot], [bottom[hot]], width=0.9, fill=False, edgecolor="black", linewidth=1.2)
                pending.append((ax, PointLabel(hot, bottom[hot], f"hottest: {layers[hot].name}, "
                                               f"{100 * bottom[hot] / total:.0f} % of the {name.split(' per')[0]}")))
            ax.set_ylim(0, max(bottom.max(), 1e-12) * 1.4)
            ax.set_ylabel(f"{name.replace(' per input', '')}\nper input ({unit})", fontsize=8)
            if unit != "µJ":
                engineering(ax.yaxis)
            ax.grid(axis="y", alpha=0.3)
            ax.set_xlim(-1, n_layers)
            if row == 0:
                first = frame.iloc[0]
                ax.set_title(f"{hw}, batch {first['batch']} ({first['policy']})", fontsize=10, loc="left")
    ticks = _layer_ticks(trace.network)
    axes[-1, 0].set_xticks(ticks, [layers[i].name.split(".")[0].replace("gate", "block") for i in ticks],
                           rotation=90, fontsize=7)
    axes[-1, 0].set_xlabel("layer, in execution order (ticks: each labelled block's first layer, its gate)",
                           fontsize=9)
    label = describe(trace)
    fig.suptitle(f"{label.series}, {label.long}: cost per layer, split by the option it ran at", fontsize=11,
                 x=0.01, ha="left")
    side_legend(axes[0, 0], [Patch(color=colors[o], label=o) for o in order], title="layer ran at")
    finish_layout(fig)
    for ax, point in pending:
        bars = [p.get_window_extent() for p in ax.patches]
        place_labels(ax, [point], extra_obstacles=bars)
    return fig


def _layer_ticks(network) -> list[int]:
    """The first layer of each block (its gate, or its first conv), thinned to about 24 ticks."""
    starts, seen = [], set()
    for index, layer in enumerate(network.layers):
        block = layer.name.split(".")[0].replace("gate", "block")  # a gate belongs to the block it decides
        if block not in seen:
            seen.add(block)
            starts.append(index)
    step = max(1, math.ceil(len(starts) / 24))
    return starts[::step]
