"""The shipped Fashion-MNIST traces: emit them from the trained checkpoints, and keep their manifest.

    python scripts/fmnist_traces.py ship --runs runs/v2   # copy finished checkpoints, emit every trace
    python scripts/fmnist_traces.py manifest              # rewrite the Fashion-MNIST manifest entries
    python scripts/fmnist_traces.py manifest --check      # exit 1 if the manifest disagrees with the traces
    python scripts/fmnist_traces.py figures               # docs/figures/frontier_*.png, difficulty.png

`ship` copies each finished checkpoint of scripts/train_fmnist.sh into traces/checkpoints/ (machine
paths in its recorded commands made repository-relative) and runs `dfs-sim trace` on the test split.
The mixed-precision static references come from scripts/static_search.py, whose result JSON is
shipped beside the checkpoints. `manifest` reads every trace back and records, per trace, what the
model is, its accuracy and budget, and how dynamic it is (dfs_sim.report.dynamics): distinct decision
vectors, the top vector's share, each block's decision entropy, and per-input energy and cycles
(p5 / p50 / p95, batch 1) on Bit Fusion (physical data movement) and Loom.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO / "traces"
CHECKPOINTS = TRACES / "checkpoints"
MANIFEST = TRACES / "MANIFEST.json"
PREFIX = "traces/fmnist_resnet20_"
DYNAMICS_HW = ("bitfusion_physical", "loom")
# The static per-block searches shipped beside the checkpoints: (result file, trace name prefix, the method)
LOWBIT_SEARCHES = (
    ("static_search_lowbit.json", "mixed", "a greedy per-block search"),
    ("static_search_lowbit_sensitivity.json", "sensitivity",
     "the measured best of the mixes of least summed per-block sensitivity (the validation loss each block "
     "adds alone, summed over every mix)"),
)

SEVEN = "options skip/8/10/12/14/16/full (the released code's), proxy budget"
LOWBIT = "options skip/2/4/8 with the undecided layers at 8 bits, budget in Bit Fusion (physical) energy"


def _specs() -> list[dict]:
    """Every shipped Fashion-MNIST trace: its name, checkpoint, forced options and description."""
    specs = [dict(name=f"b{b}", checkpoint=f"dfs7_b{b}.pt", kind="dfs",
                  notes=f"DFS, {SEVEN} {b} % of full-precision computation.") for b in (50, 40, 30, 20)]
    specs += [dict(name=f"static_{option}", checkpoint="gates7.pt", force=option, kind="static",
                   notes=f"Static reference: every gated block at '{option}' through the stage-2 network (the "
                         "backbone with calibrated activation ranges; no quantization-aware training).")
              for option in ("full", "16bit", "8bit", "skip")]
    specs += [dict(name=f"lowbit_e{b}", checkpoint=f"dfs_lowbit_b{b}.pt", kind="dfs",
                   notes=f"DFS, {LOWBIT} {b} % of the gated blocks' full-precision energy.") for b in (14, 12, 10, 8)]
    gate_families = {  # the low-bit families whose gates learnt a per-input target: what their gates are
        "loss": "loss-target gates (refitted, per input, to the loss each option adds in its block, on a network "
                "whose every path trained) frozen in stage 3, where the budget controller alone moves the decisions",
        "kl": "KL-target gates (refitted, per input, to how far each option in its block moves the prediction, "
              "KL(top path || this path), scaled by 150, on a network whose every path trained) frozen in stage 3, "
              "where the budget controller alone moves the decisions",
        "track": "KL-tracking gates: the KL-target family's gates keep fitting KL(top path || this path), scaled by "
                 "150, in stage 3, recomputed each step on 32 inputs of the fine-tuning network (their only "
                 "gradient); the budget controller sets the bias, and the backbone learns the task",
    }
    specs += [dict(name=f"lowbit_{family}_e{b}", checkpoint=f"dfs_lowbit_{family}_b{b}.pt", kind="dfs",
                   notes=f"DFS, {LOWBIT} {b} % of the gated blocks' full-precision energy; {gates}.")
              for family, gates in gate_families.items() for b in (14, 12, 10, 8)]
    specs += [dict(name=f"lowbit_static_{option}", checkpoint=f"static_lowbit_{option}.pt", kind="static",
                   notes=f"Static reference, every gated block at {option}, trained quantization-aware as long "
                         "as the DFS models (--static).") for option in ("8bit", "4bit", "2bit")]
    # Several targets can pick one mix (the most accurate at or below each): ship each mix once, named after
    # the first search and the tightest target that picked it.
    shipped_mixes = set()
    for search_file, prefix, how in LOWBIT_SEARCHES:
        search = CHECKPOINTS / search_file
        if not search.is_file():
            continue
        result = json.loads(search.read_text())
        tightest = {}
        for target, point in sorted(result["picks"].items(), key=lambda item: -float(item[0])):
            if point is not None and point["force"] not in shipped_mixes:
                tightest[point["force"]] = (target, point)
        shipped_mixes |= set(tightest)
        for target, point in tightest.values():
            specs.append(dict(name=f"lowbit_{prefix}_e{target}", checkpoint=result["checkpoint"], force=point["force"],
                              kind="static",
                              notes=f"Static mixed precision a designer would pick at {target} % energy: the most "
                                    f"accurate point at or below it on {how} over the validation split "
                                    f"(scripts/static_search.py, {search_file}), run on the DFS model's weights "
                                    "with its gates overridden."))
    return specs


def lowbit_statics() -> list[str]:
    """The low-bit option set's static references: uniform precision, then each search's mixes."""
    return [spec["name"] for spec in _specs() if spec["kind"] == "static" and spec["name"].startswith("lowbit_")]


def _relative(text: str) -> str:
    return text.replace(str(REPO) + "/", "")


def copy_checkpoint(source: Path, target: Path) -> None:
    """Copy a finished checkpoint, its recorded commands and arguments made repository-relative."""
    import torch

    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    if not ckpt.get("done"):
        raise SystemExit(f"{source}: not a finished checkpoint")
    for key in ("commands", "train"):
        if key in ckpt:
            ckpt[key] = _relative(ckpt[key])
    tmp = target.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(target)


def ship(runs: Path, only: list[str] | None) -> None:
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    for spec in _specs():
        if only and spec["name"] not in only:
            continue
        source, checkpoint = runs / spec["checkpoint"], CHECKPOINTS / spec["checkpoint"]
        if source.is_file():
            copy_checkpoint(source, checkpoint)
        if not checkpoint.is_file():
            print(f"skip {spec['name']}: no {spec['checkpoint']}", flush=True)
            continue
        out = f"{PREFIX}{spec['name']}.npz"
        argv = ["dfs-sim", "trace", "--checkpoint", str(checkpoint.relative_to(REPO)), "-o", out,
                "--threads", "1", "--no-progress"]
        if spec.get("force"):
            argv += ["--force", spec["force"]]
        print(" ".join(argv), flush=True)
        subprocess.run(argv, cwd=REPO, check=True)


def _entry(spec: dict) -> dict:
    import dfs_sim
    from dfs_sim.report.dynamics import trace_dynamics

    path = REPO / f"{PREFIX}{spec['name']}.npz"
    trace = dfs_sim.load_trace(path)
    prov = trace.provenance
    options = "/".join(o.name for o in trace.options)
    dynamics = {}
    for hw in DYNAMICS_HW:
        found = trace_dynamics(dfs_sim.simulate(path, hw, batch=1), metrics=("energy_uj", "cycles"))
        if not dynamics:
            dynamics = {k: found[k] for k in ("distinct_vectors", "top_vector_share_pct", "varying_blocks",
                                              "block_entropy_bits")}
            dynamics["top_vector_share_pct"] = round(dynamics["top_vector_share_pct"], 2)
        dynamics[hw] = {metric: {k: None if v is None else round(v, 4) for k, v in found[metric].items()}
                        for metric in ("energy_uj", "cycles")}
    budget = None if trace.budget_pct is None else {"metric": trace.budget_metric, "pct": trace.budget_pct}
    commands = [*prov["training_commands"], prov["command"]]
    return {
        "file": f"{PREFIX}{spec['name']}.npz",
        "kind": spec["kind"],
        "model": f"{prov['model']}, options {options}",
        "dataset": "Fashion-MNIST",
        "split": prov["split"],
        "n_inputs": trace.n_inputs,
        "budget_pct": trace.budget_pct,
        "budget": budget,
        "computation_pct": round(prov["computation_pct"], 2),
        "accuracy_pct": round(prov["accuracy_pct"], 2),
        "training_time_s": prov["training_time_s"],
        "seed": prov["seed"],
        "command": " && ".join(commands),
        "checkpoint": f"traces/checkpoints/{prov['checkpoint']} (sha256 {prov['checkpoint_sha256'][:12]}...)",
        "dynamics": dynamics,
        "notes": spec["notes"] + f" BN {prov['bn_policy']}.",
    }


MODEL_DOC = REPO / "docs" / "model.md"
RESULTS_BLOCK = ("<!-- BEGIN generated:fmnist-results -->", "<!-- END generated:fmnist-results -->")


def results_table(entries: list[dict]) -> str:
    """The docs/model.md results table, from the manifest entries."""
    head = ("| trace | budget | computation % | accuracy % | distinct decision vectors | top vector % | "
            "varying blocks | energy p95/p5, Bit Fusion (physical) | energy p95/p5, Loom |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for e in entries:
        budget = "—" if e["budget"] is None else f"{e['budget']['pct']:g} % " + e["budget"]["metric"].replace("@", " on ")
        d = e["dynamics"]
        spreads = [d[hw]["energy_uj"]["p95_over_p5"] for hw in DYNAMICS_HW]
        lines.append(f"| `{Path(e['file']).name}` | {budget} | {e['computation_pct']:.2f} | {e['accuracy_pct']:.2f} | "
                     f"{d['distinct_vectors']} | {d['top_vector_share_pct']:.1f} | {d['varying_blocks']} | "
                     + " | ".join("—" if v is None else f"{v:.3f}" for v in spreads) + " |")
    return "\n".join(lines)


def _with_results(doc: str, entries: list[dict]) -> str:
    begin, end = RESULTS_BLOCK
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{results_table(entries)}\n{end}{tail}"


def manifest(check: bool) -> int:
    data = json.loads(MANIFEST.read_text())
    others = [e for e in data["traces"] if not e["file"].startswith(PREFIX)]
    ours = [_entry(spec) for spec in _specs() if (REPO / f"{PREFIX}{spec['name']}.npz").is_file()]
    shipped = sorted(p.relative_to(REPO).as_posix() for p in TRACES.glob("fmnist_resnet20_*.npz"))
    if sorted(e["file"] for e in ours) != shipped:
        print(f"traces without a spec: {sorted(set(shipped) - {e['file'] for e in ours})}", file=sys.stderr)
        return 1
    new = {"traces": others + ours}
    doc = MODEL_DOC.read_text()
    new_doc = _with_results(doc, json.loads(json.dumps(ours)))
    if check and new_doc != doc:
        print("docs/model.md: the results table disagrees with the traces; rerun: python scripts/fmnist_traces.py "
              "manifest", file=sys.stderr)
        return 1
    if check:
        old = [e for e in data["traces"] if e["file"].startswith(PREFIX)]
        if old != json.loads(json.dumps(ours)):
            for before, after in zip(old, ours):
                if before != after:
                    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                    print(f"{after['file']}: manifest disagrees on {keys}", file=sys.stderr)
            if len(old) != len(ours):
                print(f"manifest lists {len(old)} Fashion-MNIST traces, traces/ holds {len(ours)}", file=sys.stderr)
            print("rerun: python scripts/fmnist_traces.py manifest", file=sys.stderr)
            return 1
        print(f"{MANIFEST.relative_to(REPO)}: {len(ours)} Fashion-MNIST entries agree with their traces")
        return 0
    MANIFEST.write_text(json.dumps(new, indent=1) + "\n")
    MODEL_DOC.write_text(new_doc)
    print(f"{MANIFEST.relative_to(REPO)}: {len(ours)} Fashion-MNIST entries written")
    return 0


FIGURES = "docs/figures"
FRONTIER_HW = ("bitfusion_physical", "loom", "stripes")


def figures() -> None:
    """docs/model.md's figures: frontiers per accelerator (energy and latency) and energy by difficulty."""
    def shipped(names):
        return [t for t in (f"{PREFIX}{n}.npz" for n in names) if (REPO / t).is_file()]

    seven = shipped(("b50", "b40", "b30", "b20", "static_full", "static_16bit", "static_8bit"))
    statics = shipped(lowbit_statics())
    family = {name: shipped(f"lowbit_{name}e{b}" for b in (14, 12, 10, 8)) for name in ("", "kl_", "track_")}
    # The overview draws both option sets, the low-bit one with its most dynamic family (KL-tracking gates); the
    # low-bit figures zoom on the cluster near 100 uJ with the top-, KL-target and KL-tracking families. The
    # loss-target family is in the README tables only: the KL-target one is as cheap and more accurate.
    overview = seven + (family["track_"] or family["kl_"] or family[""]) + statics
    zoom = family[""] + family["kl_"] + family["track_"] + statics
    runs = []
    for hw in FRONTIER_HW:  # one figure per accelerator and axis
        for axis in ("energy_uj", "latency_us"):
            runs.append(["dfs-sim", "frontier", "--trace", *overview, "--hw", hw, "--x", axis, "--absolute",
                         "-o", f"{FIGURES}/frontier_{hw}_{axis.split('_')[0]}.png"])
            runs.append(["dfs-sim", "frontier", "--trace", *zoom, "--hw", hw, "--x", axis, "--absolute",
                         "-o", f"{FIGURES}/frontier_{hw}_{axis.split('_')[0]}_lowbit.png"])
    dfs = shipped(("lowbit_e10", "lowbit_loss_e10", "lowbit_kl_e10", "lowbit_track_e10", "b30"))
    runs.append([sys.executable, "scripts/difficulty.py", "--trace", *dfs, f"{PREFIX}lowbit_static_8bit.npz",
                 "--hw", "bitfusion_physical", "loom", "-o", f"{FIGURES}/difficulty.png"])
    for argv in runs:
        print(" ".join(argv), flush=True)
        subprocess.run(argv, cwd=REPO, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_ship = sub.add_parser("ship", help="copy finished checkpoints and emit their traces")
    p_ship.add_argument("--runs", type=Path, default=REPO / "runs" / "v2")
    p_ship.add_argument("--only", nargs="*", help="trace names (e.g. b30 lowbit_e12)")
    p_manifest = sub.add_parser("manifest", help="rewrite (or --check) the Fashion-MNIST manifest entries")
    p_manifest.add_argument("--check", action="store_true")
    sub.add_parser("figures", help="draw docs/model.md's frontier and difficulty figures")
    args = parser.parse_args(argv)
    if args.command == "figures":
        figures()
        return 0
    if args.command == "ship":
        ship(args.runs, args.only)
        return 0
    return manifest(args.check)


if __name__ == "__main__":
    sys.exit(main())
