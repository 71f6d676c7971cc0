"""The static per-block precision a designer would choose, to compare DFS against.

Given trained weights that run every option (a DFS model, trained with every candidate), a cost
table [blocks, options] (the proxy or a real cost from dfs-sim) and a validation split, a greedy
search walks from every block at its most expensive option down to every block at its cheapest:
at each step it moves the one block whose next cheaper option loses the least validation accuracy
per point of cost saved (ties: more cost saved, then the earlier block). The path is a static
Pareto frontier of accuracy against cost; a designer picks the point that meets a cost target.

A greedy path never revisits a choice. The sensitivity search, in the manner of HAWQ's integer
program, measures each block's damage alone (the validation loss it adds when only that block is
lowered from the all-top network; negative where lowering helps, as skipping a block can on
weights trained with skips) and, taking damage as additive, enumerates every per-block mix: at
each cost target the mixes of least summed damage become candidates, and the most accurate of
them on the validation split is the pick. Additivity is the model's one assumption; the pick is
measured, not predicted.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from dfs_sim.errors import require
from dfs_sim.model.gated_resnet import GatedResNet

MAX_MIXES = 10_000_000  # the sensitivity search enumerates every mix: 4 options on 11 blocks, 7 on 8


@torch.no_grad()
def accuracy(model: GatedResNet, batches, pinned: list[int]) -> float:
    model.eval()
    correct = total = 0
    for x, y in batches.epoch():
        out = model(x, force=pinned, gates=False)
        correct += int((out.logits.argmax(1) == y).sum())
        total += len(y)
    return 100.0 * correct / max(total, 1)


@torch.no_grad()
def log_probs(model: GatedResNet, batches, pinned: list[int]) -> torch.Tensor:
    """[inputs, classes] log-probabilities of the network with each block pinned to pinned[block]."""
    model.eval()
    return torch.cat([torch.log_softmax(model(x, force=pinned, gates=False).logits.double(), 1)
                      for x, _ in batches.epoch()])


def block_damage(predict, labels: torch.Tensor, top: list[int], n_options: int) -> np.ndarray:
    """[blocks, options] the mean cross-entropy added when only that block runs that option, from all-top.

    `predict(options)` returns log-probabilities [inputs, classes]; top[block] is its most expensive option."""
    def loss(options):
        return -float(predict(options).gather(1, labels.view(-1, 1)).mean())

    reference = loss(top)
    damage = np.zeros((len(top), n_options))
    for block, option in itertools.product(range(len(top)), range(n_options)):
        if option != top[block]:
            damage[block, option] = loss(top[:block] + [option] + top[block + 1:]) - reference
    return damage


def ranked_mixes(damage: np.ndarray, costs: np.ndarray, target_pct: float, count: int) -> list[dict]:
    """The `count` per-block mixes of least summed damage whose cost % is at or below the target.

    Every mix is enumerated (ties: more cost, then the lexicographically smaller option vector)."""
    costs, damage = np.asarray(costs, dtype=np.float64), np.asarray(damage, dtype=np.float64)
    n_blocks, n_options = costs.shape
    require(n_options ** n_blocks <= MAX_MIXES, "sensitivity search", "cost table",
            f"{n_options} options on {n_blocks} blocks make {n_options ** n_blocks:,} mixes, more than "
            f"{MAX_MIXES:,} to enumerate; use the greedy path")
    mixes = np.array(list(itertools.product(range(n_options), repeat=n_blocks)), dtype=np.int64)
    blocks = np.arange(n_blocks)
    cost = 100.0 * costs[blocks, mixes].mean(1)
    total = damage[blocks, mixes].sum(1)
    within = np.flatnonzero(cost <= target_pct + 1e-9)
    # lexsort: the last key sorts first; enumeration order is lexicographic, so the index breaks ties.
    order = within[np.lexsort((within, -cost[within], total[within]))][:count]
    return [{"options": mixes[i].tolist(), "cost_pct": float(cost[i]), "damage": float(total[i])} for i in order]


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
