"""The Pareto front of a sweep (`dfs-sim sweep --plot FIG`): energy against latency per input, one
panel per trace, each point coloured by its area; points outside the constraints in grey. Where the
traces carry labels and differ in accuracy (e.g. DFS models at several budgets), accuracy is a fourth
objective: the front is taken over every (point, trace) row together, and a last panel draws accuracy
against energy."""
from __future__ import annotations

from pathlib import Path

import numpy as np

PARETO_AXES = ("latency_us_mean", "energy_uj_mean")


def pareto_mask(*objectives: np.ndarray) -> np.ndarray:
    """True where no other point is at least as good on every objective and better on one (minimising)."""
    objectives = np.column_stack([o for o in objectives if o is not None])
    keep = np.ones(len(objectives), dtype=bool)
    for i, point in enumerate(objectives):
        better_or_equal = (objectives <= point).all(axis=1)
        strictly = (objectives < point).any(axis=1)
        keep[i] = not (better_or_equal & strictly).any()
    return keep


def accuracy_is_an_axis(table) -> bool:
    """Whether accuracy separates the rows that ran (points outside an area constraint did not): every
    trace has labels and they do not all score the same."""
    accuracy = table.loc[table["energy_uj_mean"].notna(), "accuracy"]
    return bool(len(accuracy)) and bool(accuracy.notna().all()) and accuracy.nunique() > 1


def accuracy_energy_front(table):
    """The feasible rows that ran and that no other is as accurate and cheaper than, cheapest first."""
    feasible = table[table["feasible"].astype(bool) & table["energy_uj_mean"].notna()]
    front = feasible[pareto_mask(feasible["energy_uj_mean"].to_numpy(float), -feasible["accuracy"].to_numpy(float))]
    return front.sort_values("energy_uj_mean", kind="stable")


def pareto_rows(table, with_area: bool = True):
    """The feasible rows on the energy-latency(-area) front: per trace, or, where accuracy is an axis,
    over all rows with accuracy maximised too (a cheaper point of a less accurate model does not hide
    a dearer point of a more accurate one)."""
    import pandas as pd

    feasible = table[table["feasible"].astype(bool)].dropna(subset=list(PARETO_AXES))
    with_accuracy = accuracy_is_an_axis(table)
    groups = [feasible] if with_accuracy else [group for _, group in feasible.groupby("trace", sort=False)]
    fronts = []
    for group in groups:
        objectives = [group[axis].to_numpy(float) for axis in PARETO_AXES]
        if with_area and group["area_mm2"].notna().all():
            objectives.append(group["area_mm2"].to_numpy(float))
        if with_accuracy:
            objectives.append(-group["accuracy"].to_numpy(float))
        fronts.append(group[pareto_mask(*objectives)])
    return pd.concat(fronts).sort_values(["point", "trace"], kind="stable") if fronts else feasible.iloc[:0]


def plot_pareto(table, output: str | Path) -> Path:
    from dfs_sim.plot.common import pyplot, save_figure

    from matplotlib.ticker import NullFormatter

    plt = pyplot()
    traces = list(dict.fromkeys(table["trace"]))
    with_accuracy = accuracy_is_an_axis(table)
    panels = len(traces) + with_accuracy
    columns = min(panels, 3)
    rows_of_panels = -(-panels // columns)
    fig, axes = plt.subplots(rows_of_panels, columns, figsize=(5.2 * columns + 1, 4.2 * rows_of_panels),
                             squeeze=False, constrained_layout=True)
    axes = axes.ravel()
    for ax in axes[panels:]:
        ax.set_visible(False)
    scatter = None
    for ax, trace in zip(axes, traces):
        rows = table[table["trace"] == trace]
        ok = rows["feasible"].astype(bool) & rows[PARETO_AXES[1]].notna()
        out = rows[~rows["feasible"].astype(bool) & rows[PARETO_AXES[1]].notna()]
        if len(out):  # outside a result constraint (an area constraint leaves its points unrun)
            ax.scatter(out[PARETO_AXES[0]], out[PARETO_AXES[1]], s=12, c="0.8", label="outside the constraints")
        colour = rows.loc[ok, "area_mm2"] if rows.loc[ok, "area_mm2"].notna().all() else None
        scatter = ax.scatter(rows.loc[ok, PARETO_AXES[0]], rows.loc[ok, PARETO_AXES[1]], s=16, c=colour,
                             cmap="viridis", label="feasible")
        feasible = rows[ok]
        edge = feasible[pareto_mask(*(feasible[a].to_numpy(float) for a in PARETO_AXES))].sort_values(PARETO_AXES[0])
        ax.step(edge[PARETO_AXES[0]], edge[PARETO_AXES[1]], where="post", color="tab:red", lw=1.2,
                label="energy-latency front")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overprint each other
        ax.set_xlabel("latency per input's batch, mean (µs)")
        ax.set_ylabel("energy per input, mean (µJ)")
        scored = rows.loc[ok, "accuracy"]
        accuracy = f", {scored.iloc[0]:.2f} % accurate" if len(scored) and scored.notna().all() else ""
        ax.set_title(Path(trace).name + accuracy, fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    if scatter is not None and scatter.get_array() is not None:
        fig.colorbar(scatter, ax=axes[:len(traces)].tolist(), label="area (mm²)")
    if with_accuracy:
        _accuracy_panel(axes[panels - 1], table, traces)
    return save_figure(fig, output)


def _accuracy_panel(ax, table, traces) -> None:
    """Accuracy against energy over every feasible (point, trace) row; the front maximises accuracy and
    minimises energy."""
    feasible = table[table["feasible"].astype(bool) & table["energy_uj_mean"].notna()]
    for trace in traces:
        rows = feasible[feasible["trace"] == trace]
        ax.scatter(rows["energy_uj_mean"], rows["accuracy"], s=14, label=Path(trace).stem)
    edge = accuracy_energy_front(table)
    ax.step(edge["energy_uj_mean"], edge["accuracy"], where="post", color="tab:red", lw=1.2,
            label="accuracy-energy front")
    ax.set_xlabel("energy per input, mean (µJ)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("accuracy against energy, all traces", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
