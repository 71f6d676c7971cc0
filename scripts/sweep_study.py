#!/usr/bin/env python3
"""Run the two sweep studies of docs/sweeps.md and regenerate their tables and figures.

    python scripts/sweep_study.py [--workers 2]

docs/examples/sweep_bitfusion.yaml (array shape, DRAM bandwidth, batch and policy at <= 2.2 mm²) and
docs/examples/sweep_accuracy.yaml (DFS and static models on the same shapes, accuracy as an axis). The text
between <!-- BEGIN generated:NAME --> and <!-- END generated:NAME --> in docs/sweeps.md is replaced; the
figures go to docs/figures/. The findings around the tables are prose: reread them when the numbers move.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "sweeps.md"
EXAMPLES = ROOT / "docs" / "examples"
FIGURES = ROOT / "docs" / "figures"


def run(spec_name: str, workers: int, figure: str):
    from dfs_sim.sweep import best_points, load_spec, run_sweep
    from dfs_sim.sweep_plot import plot_pareto

    spec = load_spec(EXAMPLES / spec_name)
    with tempfile.TemporaryDirectory() as tmp:
        done = run_sweep(spec, Path(tmp) / "result.parquet", workers=workers)
    table = done["table"]
    plot_pareto(table, FIGURES / figure)
    return spec, table, done, best_points(table, spec.axes)


def shape_table(table) -> str:
    """Energy per input at 192 DRAM bits per cycle, per feasible array shape, batch and policy."""
    rows = table[table["feasible"] & (table["dram.bandwidth_bits_per_cycle"] == 192)]
    columns = [(1, "lockstep", "batch 1"), (16, "lockstep", "batch 16 lockstep"), (16, "bucketed", "batch 16 bucketed")]
    lines = ["| K × C units | area (mm²) | " + " | ".join(c[2] for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    best = rows["energy_uj_mean"].min()
    for (k, c), group in rows.groupby(["array.unroll.K", "array.unroll.C"]):
        cells = []
        for batch, policy, _ in columns:
            value = group[(group["batch"] == batch) & (group["policy"] == policy)]["energy_uj_mean"]
            cells.append("—" if value.empty else (f"**{value.iloc[0]:.1f}**" if value.iloc[0] == best
                                                  else f"{value.iloc[0]:.1f}"))
        shipped = " (shipped)" if (k, c) == (32, 16) else ""
        lines.append(f"| {k} × {c}{shipped} | {group['area_mm2'].iloc[0]:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_table(table) -> str:
    """Per model: accuracy, and its cheapest feasible machine's energy and latency."""
    from dfs_sim.sweep_plot import pareto_rows

    front = pareto_rows(table)
    on_front = set(zip(front["point"], front["trace"]))
    lines = ["| model | accuracy (%) | cheapest machine (K × C, batch) | energy (µJ) | latency (µs) | rows on the front |",
             "|---|---|---|---|---|---|"]
    feasible = table[table["feasible"]]
    for trace, group in feasible.groupby("trace", sort=False):
        row = group.loc[group["energy_uj_mean"].idxmin()]
        count = sum((p, trace) in on_front for p in group["point"])
        lines.append(f"| {Path(trace).stem.removeprefix('fmnist_resnet20_')} | {row['accuracy']:.2f} | "
                     f"{int(row['array.unroll.K'])} × {int(row['array.unroll.C'])}, {int(row['batch'])} | "
                     f"{row['energy_uj_mean']:.1f} | {row['latency_us_mean']:.0f} | {count} of {len(group)} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN generated:{name} -->\n).*?(<!-- END generated:{name} -->)", re.S)
    if not pattern.search(text):
        sys.exit(f"{DOC}: no generated:{name} block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    spec, table, done, _ = run("sweep_bitfusion.yaml", args.workers, "sweep_bitfusion_pareto.png")
    summary = (f"{done['points']} points, {int(table['feasible'].sum())} within the area; energy per input (µJ) "
               f"at 192 DRAM bits per cycle:\n\n{shape_table(table)}")
    _, accuracy, done2, best = run("sweep_accuracy.yaml", args.workers, "sweep_accuracy_pareto.png")
    front = "\n".join(f"    {line}" for line in best if line.startswith("accuracy-energy front"))
    study2 = (f"{done2['points']} machines × {accuracy['trace'].nunique()} models = {done2['rows']} rows:\n\n"
              f"{accuracy_table(accuracy)}\n\nThe accuracy-energy front `dfs-sim sweep` prints, cheapest first:\n\n"
              f"{front}")
    text = DOC.read_text()
    text = replace_block(text, "sweep-shapes", summary)
    text = replace_block(text, "sweep-accuracy", study2)
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)} and docs/figures/sweep_{{bitfusion,accuracy}}_pareto.png")


if __name__ == "__main__":
    main()
