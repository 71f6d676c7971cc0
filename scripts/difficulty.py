"""Do DFS models spend more on hard inputs? Per-input energy against the full-precision network's confidence.

Runs the shipped stage-2 network (traces/checkpoints/gates7.pt) at full precision over the test split
for each input's confidence (top softmax probability; low = hard), simulates each trace on each
accelerator, and plots the mean per-input energy in confidence bins (one panel per accelerator, one
line per trace, relative to the trace's mean), with the share of inputs in each bin. Writes the binned numbers and Spearman rank
correlations to JSON beside the figure:

    python scripts/difficulty.py --trace traces/fmnist_resnet20_lowbit_e12.npz traces/fmnist_resnet20_b30.npz \\
        --hw bitfusion_physical loom -o docs/figures/difficulty.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BINS = (0.0, 0.6, 0.9, 0.99, 0.999, 1.0 + 1e-9)  # confidence edges: hard on the left


def confidence(checkpoint: Path, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Top softmax probability and correctness of the full-precision network on the test split."""
    import torch

    from dfs_sim.model.data import DATASETS, DEFAULT_ROOTS, Batches, load_split
    from dfs_sim.model.gated_resnet import FULL
    from dfs_sim.model.train import load_checkpoint, setup

    device = setup(0, 1, "cpu")
    model, ckpt = load_checkpoint(checkpoint, device)
    model.eval()
    train = json.loads(ckpt["train"])
    images, labels = load_split(train["dataset"], train["data"] or DEFAULT_ROOTS[train["dataset"]], "test")
    batches = Batches(images[:n_inputs], labels[:n_inputs], DATASETS[train["dataset"]], 500, train=False,
                      device=device)
    top, correct = [], []
    with torch.no_grad():
        for x, y in batches.epoch():
            p = model(x, force=FULL, gates=False).logits.softmax(-1)
            top.append(p.max(1).values.numpy())
            correct.append((p.argmax(1) == y).numpy())
    return np.concatenate(top), np.concatenate(correct)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties sharing their mean rank (a constant gets one rank: no correlation)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return (first + (counts - 1) / 2)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    return 0.0 if ra.std() == 0 or rb.std() == 0 else float(np.corrcoef(ra, rb)[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", nargs="+", required=True)
    parser.add_argument("--hw", nargs="+", default=["bitfusion_physical", "loom"])
    parser.add_argument("--checkpoint", default=str(REPO / "traces" / "checkpoints" / "gates7.pt"))
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import dfs_sim

    traces = [dfs_sim.load_trace(t) for t in args.trace]
    n = traces[0].n_inputs
    conf, correct = confidence(Path(args.checkpoint), n)
    bin_of = np.digitize(conf, BINS[1:-1])
    labels = [f"<{BINS[1]:g}"] + [f"{lo:g}–{hi:g}" for lo, hi in zip(BINS[1:-2], BINS[2:-1])] + [f"≥{BINS[-2]:g}"]
    shares = [100 * float(np.mean(bin_of == k)) for k in range(len(labels))]
    fp_accuracy = [100 * float(correct[bin_of == k].mean()) if np.any(bin_of == k) else None
                   for k in range(len(labels))]
    report = {"checkpoint": Path(args.checkpoint).name, "n_inputs": n, "bins": labels,
              "share_of_inputs_pct": [round(s, 2) for s in shares],
              "full_precision_accuracy_pct": [None if a is None else round(a, 2) for a in fp_accuracy],
              "traces": {}}
    fig, axes = plt.subplots(1, len(args.hw), figsize=(5.6 * len(args.hw), 5.2), squeeze=False)
    for ax, hw in zip(axes[0], args.hw):
        for trace, path in zip(traces, args.trace):
            result = dfs_sim.simulate(path, hw, batch=1)  # batch 1: an input pays for its own decisions
            energy = result.per_input["energy_uj"].to_numpy()
            means = [float(energy[bin_of == k].mean()) if np.any(bin_of == k) else np.nan for k in range(len(labels))]
            rho = spearman(energy, -conf)
            entry = report["traces"].setdefault(Path(path).name, {})
            entry[hw] = {"mean_energy_uj": [round(m, 3) for m in means], "spearman_energy_vs_difficulty": round(rho, 3),
                         "hard_over_easy": round(means[0] / means[-1], 4)}
            static = len(np.unique(trace.decisions, axis=0)) == 1
            relative = [100 * m / energy.mean() for m in means]
            ax.plot(range(len(labels)), relative, marker="o", linestyle="--" if static else "-",
                    label=f"{trace.name}, mean {energy.mean():.1f} µJ" + (" (static)" if static else
                          f" (ρ = {rho:+.2f}; hardest/easiest {means[0] / means[-1]:.2f}×)"))
        ax.set_xticks(range(len(labels)), [f"{lab}\n{s:.0f} %" for lab, s in zip(labels, shares)], fontsize=8)
        ax.set_xlabel("full-precision confidence (share of test inputs)")
        ax.set_ylabel("energy per input, % of the trace's mean")
        ax.set_title(result.hw.name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.suptitle("Do hard inputs get more precision? Energy by input difficulty, batch 1\n(Fashion-MNIST test "
                 "split; ρ: Spearman rank correlation of energy with 1 − confidence)", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.output, dpi=130)
    Path(args.output).with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({t: {h: v["spearman_energy_vs_difficulty"] for h, v in e.items()}
                      for t, e in report["traces"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
