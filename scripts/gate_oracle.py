"""What per-input decisions could spread to, and how far a model's gates are from it.

For a trained DFS checkpoint whose gates track the KL target, on the first --inputs test images:

- the oracle: each input's true KL(top path || option path) per gated block and option (every other
  block at the top option, as the target is computed in training), and the decisions that minimise
  the summed KL plus lam times each block's own cost (the exact Lagrangian of "least total KL at
  this mean cost"), lam set by bisection so that the mean cost lands on --budget. Those decisions
  are written as a trace on the checkpoint's network and simulated on --hw at batch 1, and the
  per-input energy spread (p95/p5) is reported. The oracle's accuracy is not measured (each block's
  KL is measured alone), so it bounds the spread a budget allows, not the model that would reach it;
- the gates: per block and cheaper option, the rank correlation between the gates' logit lead of
  that option over the top one and minus the true KL, and the two spreads (standard deviations).

    python scripts/gate_oracle.py --checkpoint traces/checkpoints/fmnist_resnet20_lowbit_track_e14.pt \\
        --trace traces/fmnist_resnet20_lowbit_track_e14.npz --budget 14 -o oracle_e14.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dfs_sim.errors import InputError


def lagrangian_decisions(harm: np.ndarray, costs: np.ndarray, budget_pct: float, iterations: int = 60):
    """Per input and block, the option minimising harm + lam * cost, with lam bisected so that the mean
    over inputs and blocks of the chosen cost lands at or just under budget_pct / 100. harm [n, U, O],
    costs [U, O]. Returns (decisions [n, U], lam)."""
    def decide(lam):
        return np.argmin(harm + lam * costs[None], axis=-1)

    def cost_pct(decisions):
        return 100 * costs[np.arange(costs.shape[0]), decisions].mean()

    low, high = 0.0, 1.0
    while cost_pct(decide(high)) > budget_pct and high < 1e12:
        high *= 4
    for _ in range(iterations):
        mid = (low + high) / 2
        low, high = (mid, high) if cost_pct(decide(mid)) > budget_pct else (low, mid)
    return decide(high), high


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties)."""
    import pandas as pd

    return float(np.corrcoef(pd.Series(a).rank(), pd.Series(b).rank())[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--trace", required=True, help="the checkpoint's emitted trace (its network and options)")
    parser.add_argument("--budget", type=float, required=True, help="%% of the checkpoint's own cost metric")
    parser.add_argument("--hw", default="bitfusion_physical", help="where the oracle's energy spread is simulated")
    parser.add_argument("--inputs", type=int, default=5000, help="the first N test images")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args(argv)
    try:
        import torch

        import dfs_sim
        from dfs_sim.model.data import DATASETS
        from dfs_sim.model.train import StageArgs, _eval_batches, _load, load_checkpoint, option_harm, setup, stage_costs

        started = time.perf_counter()
        device = setup(0, args.threads, "cpu")
        model, ckpt = load_checkpoint(args.checkpoint, device)
        model.eval()
        train_args = json.loads(ckpt["train"])
        stage = StageArgs(stage="dfs", out="", dataset=train_args["dataset"], data=train_args["data"])
        test_x, test_y = _load(stage, "test")
        batches = _eval_batches(test_x, test_y, DATASETS[stage.dataset], device, args.inputs)
        kl, gate_logits = [], []
        with torch.no_grad():
            for x, y in batches.epoch():
                kl.append(option_harm(model, x, y, "kl"))
                gate_logits.append(model(x, force=model.top_index).gate_logits)  # the path the KL is measured on
        kl, gate_logits = torch.cat(kl).numpy(), torch.cat(gate_logits).numpy()
        costs = stage_costs(model, train_args.get("cost", "proxy"), device)[0].numpy()
        decisions, lam = lagrangian_decisions(kl, costs, args.budget)

        source = dfs_sim.load_trace(args.trace)
        with tempfile.TemporaryDirectory() as tmp:
            oracle = dfs_sim.write_trace(Path(tmp) / "oracle.npz", network=source.network, options=source.options,
                                         decisions=decisions)
            energy = dfs_sim.simulate(oracle, args.hw, batch=1).per_input["energy_uj"].to_numpy()
        p5, p50, p95 = np.percentile(energy, [5, 50, 95])
        top = model.top_index
        gates = []
        for unit in range(kl.shape[1]):
            for option in range(kl.shape[2]):
                if option == top:
                    continue
                lead = gate_logits[:, unit, option] - gate_logits[:, unit, top]
                gates.append({"block": unit, "option": model.options[option].name,
                              "rho": round(rank_correlation(lead, -kl[:, unit, option]), 3),
                              "gate_lead_sd": round(float(lead.std()), 4),
                              "target_sd": round(float(kl[:, unit, option].std()), 6),
                              "kl_median": float(f"{np.median(kl[:, unit, option]):.3g}")})
        shares = [np.bincount(decisions[:, u], minlength=len(model.options)) / len(decisions)
                  for u in range(decisions.shape[1])]
        result = {
            "checkpoint": Path(args.checkpoint).name, "inputs": len(decisions), "budget_pct": args.budget,
            "cost": train_args.get("cost", "proxy"), "hw": args.hw, "lambda": lam,
            "oracle": {"cost_pct": round(float(100 * costs[np.arange(costs.shape[0]), decisions].mean()), 3),
                       "energy_uj": {"p5": round(p5, 2), "p50": round(p50, 2), "p95": round(p95, 2),
                                     "p95_over_p5": round(p95 / p5, 3)},
                       "distinct_vectors": int(len(np.unique(decisions, axis=0))),
                       "shares": {model.options[o].name: [round(float(s[o]), 3) for s in shares]
                                  for o in range(len(model.options))}},
            "gates": gates,
            "time_s": round(time.perf_counter() - started, 1),
            "command": " ".join(["python", "scripts/gate_oracle.py", *(sys.argv[1:] if argv is None else argv)]),
        }
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    o = result["oracle"]
    print(f"{args.out}: oracle at {o['cost_pct']:.2f} % cost: energy p95/p5 {o['energy_uj']['p95_over_p5']:.3f} "
          f"({o['distinct_vectors']} vectors); gates' rank correlation with -KL "
          f"{min(g['rho'] for g in gates):+.2f} to {max(g['rho'] for g in gates):+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
