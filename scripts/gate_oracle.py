"""What per-input decisions could spread to, and how far a model's gates are from it.

For a trained DFS checkpoint whose gates track the KL target, on the first --inputs test images:

- the oracle: each input's true KL(top path || option path) per gated block and option (every other
  block at the top option, as the target is computed in training), and the decisions that minimise
  the summed KL plus lam times each block's own cost (the exact Lagrangian of "least total KL at
  this mean cost"), lam set by bisection so that the mean cost lands on --budget. Those decisions
  are written as a trace on the checkpoint's network and simulated on --hw at batch 1, and the
  per-input energy spread (p95/p5) is reported. The network is then run with those decisions, for
  the oracle's accuracy and for each input's joint KL (every block at its decision) against the sum
  of its blocks' KLs measured alone, by cost group: where the per-block target stops describing
  what the decisions do together;
- the model: its own decisions (gates and calibrated decision bias) on the same inputs, simulated
  and run the same way;
- the gates: per block and cheaper option, the rank correlation between the gates' logit lead of
  that option over the top one and minus the true KL, and the two spreads (standard deviations);
- a linear probe: per block and option, a least-squares fit (ridge, two folds, each predicted by the
  fit on the other) from what the gate reads, the block input's per-channel mean, to the target the
  gates were trained on (centred over options, scaled and clipped as the checkpoint's training did);
  its rank correlation with minus the true KL, and its Lagrangian decisions, simulated and run as
  the oracle's. It tells whether the gates use what they see.

    python scripts/gate_oracle.py --checkpoint traces/checkpoints/dfs_lowbit_track_b14.pt \\
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


def cross_fitted_ridge(features: np.ndarray, target: np.ndarray, ridge: float = 1.0, folds: int = 2) -> np.ndarray:
    """Each input's prediction of target [n] from features [n, d] by a ridge least-squares fit (standardised
    features, an unpenalised intercept) on the other folds (contiguous), so that no input predicts itself."""
    n = len(target)
    prediction = np.empty(n)
    bounds = np.linspace(0, n, folds + 1).astype(int)
    for low, high in zip(bounds[:-1], bounds[1:]):
        fit = np.ones(n, bool)
        fit[low:high] = False
        mean, sd = features[fit].mean(0), features[fit].std(0)
        sd[sd == 0] = 1  # a feature constant where fitted (a dead channel) carries no weight
        design = np.hstack([(features - mean) / sd, np.ones((n, 1))])
        penalty = ridge * np.eye(design.shape[1])
        penalty[-1, -1] = 0
        weights = np.linalg.solve(design[fit].T @ design[fit] + penalty, design[fit].T @ target[fit])
        prediction[low:high] = design[low:high] @ weights
    return prediction


def percentile_groups(values: np.ndarray, share: float = 0.05):
    """Indices of the lowest `share` of values, the middle, and the highest `share` (ties in trace order)."""
    order = np.argsort(values, kind="stable")
    k = max(1, int(round(share * len(values))))
    return {"cheapest_5pct": order[:k], "middle": order[k:-k], "dearest_5pct": order[-k:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--trace", required=True, help="the checkpoint's emitted trace (its network and options)")
    parser.add_argument("--budget", type=float, required=True, help="%% of the checkpoint's own cost metric")
    parser.add_argument("--hw", default="bitfusion_physical", help="where the energy spreads are simulated")
    parser.add_argument("--inputs", type=int, default=5000, help="the first N test images")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args(argv)
    try:
        import torch

        import dfs_sim
        from dfs_sim.model.data import DATASETS
        from dfs_sim.model.train import (StageArgs, _eval_batches, _load, load_checkpoint, option_harm, setup,
                                         shaped_harm, stage_costs)

        started = time.perf_counter()
        device = setup(0, args.threads, "cpu")
        model, ckpt = load_checkpoint(args.checkpoint, device)
        model.eval()
        train_args = json.loads(ckpt["train"])
        stage = StageArgs(stage="dfs", out="", dataset=train_args["dataset"], data=train_args["data"])
        test_x, test_y = _load(stage, "test")
        batches = _eval_batches(test_x, test_y, DATASETS[stage.dataset], device, args.inputs)
        pooled = []  # per batch, what each gate reads: its block input's per-channel mean [batch, channels]
        hooks = [gate.register_forward_pre_hook(lambda _m, inp: pooled[-1].append(inp[0].mean((2, 3))))
                 for gate in model.gates]
        xs, ys, kl, gate_logits, top_log_probs, own = [], [], [], [], [], []
        with torch.no_grad():
            for x, y in batches.epoch():
                xs.append(x)
                ys.append(y)
                kl.append(option_harm(model, x, y, "kl"))
                pooled.append([])
                out = model(x, force=model.top_index)  # the path the KL is measured on
                gate_logits.append(out.gate_logits)
                top_log_probs.append(out.logits.log_softmax(1))
                own.append(model(x, gates=True).decisions)  # the model's own, with its calibrated bias
        for hook in hooks:
            hook.remove()
        x, y = torch.cat(xs), torch.cat(ys)
        kl, gate_logits, own = torch.cat(kl).numpy(), torch.cat(gate_logits).numpy(), torch.cat(own).numpy()
        top_log_probs = torch.cat(top_log_probs)
        features = [torch.cat([batch[unit] for batch in pooled]).numpy() for unit in range(model.n_units)]
        costs = stage_costs(model, train_args.get("cost", "proxy"), device)[0].numpy()
        source = dfs_sim.load_trace(args.trace)
        units = np.arange(model.n_units)

        def run(decisions):
            """Accuracy and per-input joint KL(top path || these decisions), each decision vector run as a group."""
            log_probs = torch.empty_like(top_log_probs)
            vectors, group = np.unique(decisions, axis=0, return_inverse=True)
            with torch.no_grad():
                for g, vector in enumerate(vectors):
                    rows = torch.from_numpy(np.flatnonzero(group.ravel() == g))
                    log_probs[rows] = model(x[rows], force=[int(k) for k in vector], gates=False).logits.log_softmax(1)
            joint = (top_log_probs.exp() * (top_log_probs - log_probs)).sum(1).numpy()
            return float((log_probs.argmax(1) == y).float().mean()) * 100, joint

        def summary(decisions, with_kl_groups=False):
            with tempfile.TemporaryDirectory() as tmp:
                trace = dfs_sim.write_trace(Path(tmp) / "decisions.npz", network=source.network,
                                            options=source.options, decisions=decisions)
                energy = dfs_sim.simulate(trace, args.hw, batch=1).per_input["energy_uj"].to_numpy()
            p5, p50, p95 = np.percentile(energy, [5, 50, 95])
            accuracy, joint = run(decisions)
            cost = costs[units[None], decisions].mean(1)
            result = {"cost_pct": round(float(100 * cost.mean()), 3), "accuracy_pct": round(accuracy, 2),
                      "energy_uj": {"p5": round(p5, 2), "p50": round(p50, 2), "p95": round(p95, 2),
                                    "p95_over_p5": round(p95 / p5, 3)},
                      "distinct_vectors": int(len(np.unique(decisions, axis=0)))}
            if with_kl_groups:  # where the sum of per-block KLs stops describing the decisions together
                summed = kl[np.arange(len(decisions))[:, None], units[None], decisions].sum(1)
                result["kl_by_cost"] = {name: {"cost_pct": round(float(100 * cost[rows].mean()), 2),
                                               "summed_block_kl": float(f"{summed[rows].mean():.3g}"),
                                               "joint_kl": float(f"{joint[rows].mean():.3g}")}
                                        for name, rows in percentile_groups(cost).items()}
            return result

        decisions, lam = lagrangian_decisions(kl, costs, args.budget)
        top = model.top_index
        target = shaped_harm(torch.from_numpy(kl), train_args.get("target_scale", 1.0),
                             train_args.get("target_shape", "linear")).numpy()
        target = np.clip(-(target - target.mean(-1, keepdims=True)), -train_args.get("loss_clip", np.inf),
                         train_args.get("loss_clip", np.inf))
        probe = np.stack([np.stack([cross_fitted_ridge(features[unit], target[:, unit, k])
                                    for k in range(len(model.options))], -1) for unit in units], 1)
        gates, probes = [], []
        for unit in units:
            for option in range(kl.shape[2]):
                if option == top:
                    continue
                lead = gate_logits[:, unit, option] - gate_logits[:, unit, top]
                name = model.options[option].name
                gates.append({"block": int(unit), "option": name,
                              "rho": round(rank_correlation(lead, -kl[:, unit, option]), 3),
                              "gate_lead_sd": round(float(lead.std()), 4),
                              "target_sd": round(float(kl[:, unit, option].std()), 6),
                              "kl_median": float(f"{np.median(kl[:, unit, option]):.3g}")})
                probes.append({"block": int(unit), "option": name, "rho": round(rank_correlation(
                    probe[:, unit, option] - probe[:, unit, top], -kl[:, unit, option]), 3)})
        probe_decisions, _ = lagrangian_decisions(-probe, costs, args.budget)
        shares = [np.bincount(decisions[:, u], minlength=len(model.options)) / len(decisions) for u in units]
        oracle = summary(decisions, with_kl_groups=True)
        oracle["shares"] = {model.options[o].name: [round(float(s[o]), 3) for s in shares]
                            for o in range(len(model.options))}
        result = {
            "checkpoint": Path(args.checkpoint).name, "inputs": len(decisions), "budget_pct": args.budget,
            "cost": train_args.get("cost", "proxy"), "hw": args.hw, "lambda": lam,
            "oracle": oracle,
            "model": summary(own, with_kl_groups=True),
            "gates": gates,
            "probe": {"features": "the gated block input's per-channel mean (what the gate reads)",
                      "decisions": summary(probe_decisions), "fit": probes},
            "time_s": round(time.perf_counter() - started, 1),
            "command": " ".join(["python", "scripts/gate_oracle.py", *(sys.argv[1:] if argv is None else argv)]),
        }
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, row in (("oracle", result["oracle"]), ("model", result["model"]),
                      ("probe", result["probe"]["decisions"])):
        print(f"{name}: {row['cost_pct']:.2f} % cost, {row['accuracy_pct']:.2f} % accurate, energy p95/p5 "
              f"{row['energy_uj']['p95_over_p5']:.3f} ({row['distinct_vectors']} vectors)")
    for name, fits in (("gates", gates), ("probe", probes)):
        rhos = [fit["rho"] for fit in fits]
        print(f"{name}: rank correlation with -KL {min(rhos):+.2f} to {max(rhos):+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
