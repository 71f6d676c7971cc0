"""The Pareto front of a sweep (`dfs-sim sweep --plot FIG`): energy against latency per input, one
panel per trace, each point coloured by its area; points outside the constraints in grey."""
from __future__ import annotations

from pathlib import Path

import numpy as np

PARETO_AXES = ("latency_us_mean", "energy_uj_mean")


def pareto_mask(x: np.ndarray, y: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
    """True where no other point is at least as good on every objective and better on one (minimising)."""
    objectives = np.column_stack([x, y] if z is None else [x, y, z])
    keep = np.ones(len(objectives), dtype=bool)
    for i, point in enumerate(objectives):
        better_or_equal = (objectives <= point).all(axis=1)
        strictly = (objectives < point).any(axis=1)
        keep[i] = not (better_or_equal & strictly).any()
    return keep


def pareto_rows(table, with_area: bool = True):
    """The feasible rows on the energy-latency(-area) front, per trace."""
    import pandas as pd

    fronts = []
    feasible = table[table["feasible"].astype(bool)].dropna(subset=list(PARETO_AXES))
    for _, group in feasible.groupby("trace", sort=False):
        area = group["area_mm2"].to_numpy(float) if with_area and group["area_mm2"].notna().all() else None
        mask = pareto_mask(group[PARETO_AXES[0]].to_numpy(float), group[PARETO_AXES[1]].to_numpy(float), area)
        fronts.append(group[mask])
    return pd.concat(fronts) if fronts else feasible.iloc[:0]


def plot_pareto(table, output: str | Path) -> Path:
    from dfs_sim.plot.common import pyplot, save_figure

    plt = pyplot()
    traces = list(dict.fromkeys(table["trace"]))
    fig, axes = plt.subplots(1, len(traces), figsize=(5.2 * len(traces) + 1, 4.2), squeeze=False,
                             constrained_layout=True)
    front = pareto_rows(table, with_area=False)
    scatter = None
    for ax, trace in zip(axes[0], traces):
        rows = table[table["trace"] == trace]
        ok = rows["feasible"].astype(bool) & rows[PARETO_AXES[1]].notna()
        out = rows[~rows["feasible"].astype(bool) & rows[PARETO_AXES[1]].notna()]
        if len(out):  # outside a result constraint (an area constraint leaves its points unrun)
            ax.scatter(out[PARETO_AXES[0]], out[PARETO_AXES[1]], s=12, c="0.8", label="outside the constraints")
        colour = rows.loc[ok, "area_mm2"] if rows.loc[ok, "area_mm2"].notna().all() else None
        scatter = ax.scatter(rows.loc[ok, PARETO_AXES[0]], rows.loc[ok, PARETO_AXES[1]], s=16, c=colour,
                             cmap="viridis", label="feasible")
        edge = front[front["trace"] == trace].sort_values(PARETO_AXES[0])
        ax.step(edge[PARETO_AXES[0]], edge[PARETO_AXES[1]], where="post", color="tab:red", lw=1.2,
                label="energy-latency front")
        ax.set_xscale("log")
        ax.set_xlabel("latency per input's batch, mean (µs)")
        ax.set_ylabel("energy per input, mean (µJ)")
        ax.set_title(Path(trace).name, fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    if scatter is not None and scatter.get_array() is not None:
        fig.colorbar(scatter, ax=axes[0].tolist(), label="area (mm²)")
    return save_figure(fig, output)
