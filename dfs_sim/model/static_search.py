"""The static per-block precision a designer would choose, to compare DFS against.

Given trained weights that run every option (a DFS model, trained with every candidate), a cost
table [blocks, options] (the proxy or a real cost from dfs-sim) and a validation split, a greedy
search walks from every block at its most expensive option down to every block at its cheapest:
at each step it moves the one block whose next cheaper option loses the least validation accuracy
per point of cost saved (ties: more cost saved, then the earlier block). The path is a static
Pareto frontier of accuracy against cost; a designer picks the point that meets a cost target.
"""
from __future__ import annotations

import numpy as np
import torch

from dfs_sim.model.gated_resnet import GatedResNet


@torch.no_grad()
def accuracy(model: GatedResNet, batches, pinned: list[int]) -> float:
    model.eval()
    correct = total = 0
    for x, y in batches.epoch():
        out = model(x, force=pinned, gates=False)
        correct += int((out.logits.argmax(1) == y).sum())
        total += len(y)
    return 100.0 * correct / max(total, 1)


def greedy_path(evaluate, costs: np.ndarray, log=print) -> list[dict]:
    """Per-block option vectors from most to least expensive, with accuracy and cost %.

    `evaluate(options)` returns the validation accuracy of the network with each block pinned to
    options[block] (e.g. functools.partial(accuracy, model, batches))."""
    costs = np.asarray(costs, dtype=np.float64)
    n_blocks, n_options = costs.shape
    # Each block's options from most to least expensive (its own costs: a skip on a downsampling
    # block still runs the projection).
    order = [sorted(range(n_options), key=lambda k, b=b: (-costs[b, k], k)) for b in range(n_blocks)]
    level = [0] * n_blocks

    def state():
        return [order[b][level[b]] for b in range(n_blocks)]

    def cost_pct(pinned):
        return 100.0 * float(np.mean(costs[np.arange(n_blocks), pinned]))

    pinned = state()
    current = evaluate(pinned)
    path = [{"options": pinned, "accuracy_pct": current, "cost_pct": cost_pct(pinned)}]
    log(f"static search: start {path[-1]['cost_pct']:.2f} % cost, {current:.2f} % accuracy")
    while any(level[b] + 1 < n_options for b in range(n_blocks)):
        best = None
        for b in range(n_blocks):
            if level[b] + 1 >= n_options:
                continue
            trial = state()
            trial[b] = order[b][level[b] + 1]
            saved = cost_pct(pinned) - cost_pct(trial)
            acc = evaluate(trial)
            loss = current - acc
            key = (loss / max(saved, 1e-9), -saved, b)
            if best is None or key < best[0]:
                best = (key, b, acc)
        _, block, current = best
        level[block] += 1
        pinned = state()
        path.append({"options": pinned, "accuracy_pct": current, "cost_pct": cost_pct(pinned)})
        log(f"static search: block {block} -> option {pinned[block]}: {path[-1]['cost_pct']:.2f} % cost, "
            f"{current:.2f} % accuracy")
    return path


def pick(path: list[dict], target_pct: float) -> dict:
    """The most accurate point of the path whose cost is at or below the target (what a designer picks)."""
    within = [p for p in path if p["cost_pct"] <= target_pct + 1e-9]
    if not within:
        return min(path, key=lambda p: p["cost_pct"])
    return max(within, key=lambda p: (p["accuracy_pct"], p["cost_pct"]))
