"""The static per-block precision a designer would choose, for the frontier against DFS.

Loads a trained DFS checkpoint (whose weights run every option) and searches, on the checkpoint's
validation split (all of it, or --val-limit images), under a cost (the proxy or METRIC@HW, as
`dfs-sim train --cost`), by one of dfs_sim.model.static_search's methods:

- `--method greedy` walks the greedy path and writes it as JSON: per step the option of every
  gated block, its validation accuracy and cost %;
- `--method sensitivity` measures the loss each block adds alone, ranks every mix by summed damage,
  and measures the `--candidates` best at each `--pick` target; the JSON holds the damage table
  and every measured candidate.

`--pick` names cost targets; for each, the most accurate point at or below it is listed under
"picks", with the `--force` string that emits its trace:

    python scripts/static_search.py --checkpoint runs/v2/dfs_lowbit_b14.pt --cost energy@bitfusion_physical \\
        --pick 14 12 10 8 -o runs/v2/mixed_lowbit.json
    dfs-sim trace --checkpoint runs/v2/dfs_lowbit_b14.pt --force 8bit,4bit,... -o traces/...npz
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from dfs_sim.errors import InputError


def cache_by_options(predict):
    """`predict` evaluated once per option vector (the damage table and the candidates share mixes)."""
    seen = {}

    def cached(options):
        key = tuple(options)
        if key not in seen:
            seen[key] = predict(list(options))
        return seen[key]
    return cached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--cost", default="proxy", help="proxy or METRIC@HW (e.g. energy@bitfusion_physical)")
    parser.add_argument("--method", choices=("greedy", "sensitivity"), default="greedy")
    parser.add_argument("--pick", type=float, nargs="*", default=[], help="cost targets (%%) to pick points for")
    parser.add_argument("--candidates", type=int, default=6,
                        help="sensitivity: mixes measured per target, least summed damage first")
    parser.add_argument("--val-limit", type=int, help="search on the first N validation images")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args(argv)
    try:
        from dfs_sim.errors import require
        from dfs_sim.model.data import DATASETS
        from dfs_sim.model.static_search import accuracy, block_damage, greedy_path, log_probs, pick, ranked_mixes
        from dfs_sim.model.train import (StageArgs, _eval_batches, _load, load_checkpoint, setup, split_train_val,
                                         stage_costs)

        device = setup(0, args.threads, "cpu")
        model, ckpt = load_checkpoint(args.checkpoint, device)
        model.eval()
        train_args = json.loads(ckpt["train"])
        stage = StageArgs(stage="dfs", out="", dataset=train_args["dataset"], data=train_args["data"])
        _, (val_x, val_y) = split_train_val(*_load(stage, "train"), train_args["val_size"])
        batches = _eval_batches(val_x, val_y, DATASETS[stage.dataset], device, args.val_limit)
        costs, info = stage_costs(model, args.cost, device)
        costs = costs.cpu().numpy()
        names = [o.name for o in model.options]
        started = time.perf_counter()
        result = {"checkpoint": Path(args.checkpoint).name, "method": args.method, "cost": args.cost,
                  "cost_table": info, "validation_images": len(batches.labels)}
        if args.method == "greedy":
            points = result["path"] = greedy_path(partial(accuracy, model, batches), costs, log=print)
        else:
            require(args.candidates > 0 and args.pick, "--candidates/--pick", None,
                    "the sensitivity search needs a positive --candidates and at least one --pick target")
            labels = batches.labels.to(device)
            predict = cache_by_options(partial(log_probs, model, batches))
            top = [int(np.argmax(row)) for row in costs]
            damage = block_damage(predict, labels, top, costs.shape[1])
            print("sensitivity: loss added per block and option (nats):\n" + np.array2string(damage, precision=4))
            points, seen = [], set()  # every measured candidate, in the order measured
            for target in args.pick:
                for mix in ranked_mixes(damage, costs, target, args.candidates):
                    if tuple(mix["options"]) not in seen:
                        seen.add(tuple(mix["options"]))
                        predicted = predict(mix["options"]).argmax(1)
                        mix["accuracy_pct"] = 100.0 * float((predicted == labels).double().mean())
                        points.append(mix)
                        print(f"sensitivity: {mix['options']} {mix['cost_pct']:.2f} % cost, damage "
                              f"{mix['damage']:.4f}, {mix['accuracy_pct']:.2f} % accuracy")
            result.update(damage=np.round(damage, 6).tolist(), candidates_per_target=args.candidates,
                          candidates=points)
        for point in points:
            point["force"] = ",".join(names[k] for k in point["options"])
        result["search_time_s"] = round(time.perf_counter() - started, 1)
        result["command"] = " ".join(["python", "scripts/static_search.py", *sys.argv[1:]] if argv is None else argv)
        result["picks"] = {f"{target:g}": pick(points, target) for target in args.pick}
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(points)} points; picks " + ", ".join(
        f"{t}: {p['cost_pct']:.2f} % cost, {p['accuracy_pct']:.2f} %" for t, p in result["picks"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
