"""Chosen-only vs all-candidates DFS inference, timed in the same process on the same inputs.

"all candidates" runs every option of every gated block and mixes them with the one-hot mask
(what training computes); "chosen only" runs, per block, just the option each input chose,
with the batch's inputs grouped by decision (what `dfs-sim trace` runs). Both must predict the
same labels; the script checks that and reports the speed ratio. It also times the network with
every gated block forced to skip — the part no gate can save (stem, block 1, projections,
classifier) — and reports the speedup of the gated part alone, (all − fixed) / (chosen − fixed).

    python benchmarks/bench_inference.py runs/fmnist/dfs_b30.pt [more checkpoints] --inputs 2000
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from dfs_sim.model.data import DATASETS, DEFAULT_ROOTS, Batches, load_split
from dfs_sim.model.train import load_checkpoint, predict, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", help="dataset directory or .npz (default: the checkpoint's dataset default)")
    parser.add_argument("--inputs", type=int, default=2000, help="first N test inputs")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| checkpoint | budget % | computation % | accuracy % | all candidates (s) | chosen only (s) | speedup "
          "| ungated part (s) | gated-part speedup | same predictions |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in args.checkpoints:
        model, ckpt = load_checkpoint(path)
        model = model.to(memory_format=torch.channels_last).eval()
        dataset = json.loads(ckpt["train"])["dataset"]
        images, labels = load_split(dataset, args.data or DEFAULT_ROOTS[dataset], "test")
        batches = Batches(images[:args.inputs], labels[:args.inputs], DATASETS[dataset], args.batch_size,
                          train=False, channels_last=True)
        skip = next(k for k, o in enumerate(model.options) if o.is_skip)
        runs = {"all": dict(candidates="all"), "chosen": dict(candidates="chosen"), "fixed": dict(force=skip)}
        times = {mode: [] for mode in runs}
        results = {}
        for _ in range(args.repeat):  # interleaved, so drifting machine load hits all alike
            for mode, kwargs in runs.items():
                start = time.perf_counter()
                results[mode] = predict(model, batches, **kwargs)
                times[mode].append(time.perf_counter() - start)
        same = all(np.array_equal(results["all"][k], results["chosen"][k]) for k in ("predictions", "decisions"))
        summary = summarize(model, results["chosen"])
        t_all, t_chosen, t_fixed = (statistics.median(times[mode]) for mode in ("all", "chosen", "fixed"))
        budget = json.loads(ckpt["train"]).get("budget")
        print(f"| {path} | {budget} | {summary['computation_pct']:.1f} | {summary['accuracy_pct']:.2f} | "
              f"{t_all:.2f} | {t_chosen:.2f} | {t_all / t_chosen:.2f}x | {t_fixed:.2f} | "
              f"{(t_all - t_fixed) / (t_chosen - t_fixed):.2f}x | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
