"""Trace emission: the layer table derived from the model itself, per-input decisions, provenance."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch

import dfs_sim
from dfs_sim.errors import require
from dfs_sim.hashing import file_sha256
from dfs_sim.model.data import DATASETS, DEFAULT_ROOTS, Batches, load_split
from dfs_sim.model.gated_resnet import GatedResNet, resolve_force
from dfs_sim.model.layer_table import derive_network, dfs_recorder
from dfs_sim.model.train import _commands, load_checkpoint, predict, setup, summarize


def _option_names(model: GatedResNet, force) -> str:
    if isinstance(force, list):
        return ",".join(model.options[k].name for k in force)
    return model.options[force].name


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "dfs_sim"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def emit_trace(*, checkpoint, out, data=None, dataset=None, split="test", force=None, nested=None,
               gate_probs=True, limit=None, batch_size=500, seed=0, threads=None, device="auto", progress=True,
               command="") -> tuple[Path, dict]:
    """Run a checkpoint over a split, running only each input's chosen options, and write a trace."""
    device = setup(seed, threads, device)
    overrides = {} if nested is None else {"nested": nested}
    model, ckpt = load_checkpoint(checkpoint, device, **overrides)
    model = model.eval()  # NCHW, as in training (dfs_sim.model.train.run_stage)
    train_args = json.loads(ckpt["train"])
    dataset = dataset or train_args.get("dataset")
    require(dataset in DATASETS, "--dataset", None, f"unknown dataset '{dataset}'")
    same_dataset = dataset == train_args.get("dataset")
    root = data or (train_args.get("data") if same_dataset else None) or DEFAULT_ROOTS.get(dataset)
    require(root is not None, "--data", None, f"{dataset} needs --data (nothing is downloaded)")
    images, labels = load_split(dataset, root, split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    batches = Batches(images, labels, DATASETS[dataset], batch_size, train=False, device=device)
    force = force or train_args.get("static")  # a static model runs its own pinned options
    force_index = None if force is None else resolve_force(model, force)
    want_probs = gate_probs and force_index is None  # under forcing the gates' opinions are moot
    recorder = dfs_recorder(model)
    with recorder.measure() as probe:
        result = predict(model, batches, force=force_index, gate_probs=want_probs, progress=progress)
    recorder.check_runs(probe, result["decisions"])
    summary = summarize(model, result)
    network = derive_network(model, probe)
    budget = train_args.get("budget") if ckpt["stage"] == "dfs" and force_index is None else None
    cost = train_args.get("cost", "proxy")
    budget_metric = "computation" if cost == "proxy" else cost
    budget_cost = json.loads(ckpt["cost"]) if budget is not None and "cost" in ckpt else None
    provenance = {
        "source": "dfs-sim trace (trained PyTorch model)",
        "model": f"DFS-{model.config.arch} (stages {list(model.config.depths)}, widths {list(model.config.widths)})",
        "checkpoint": Path(checkpoint).name,
        "checkpoint_sha256": file_sha256(checkpoint),
        "stage": ckpt["stage"],
        "dataset": dataset,
        "split": split,
        "n_inputs": summary["n"],
        "command": command,
        "seed": seed,
        "training_seed": train_args.get("seed"),
        "training_commands": _commands(ckpt),
        "training_time_s": json.loads(ckpt["stage_times"]),
        "nested": model.config.nested,
        "bn_policy": model.config.bn,
        "recipe": {key: getattr(model.config, key) for key in ("gate_init", "act_range", "projection")},
        "gate_target": _gate_target(_commands(ckpt)),
        "frozen_gates": bool(train_args.get("freeze_gates")),
        "tracking_gates": train_args.get("stage") == "dfs" and train_args.get("gate_target", "top") != "top",
        "decision_bias": [round(float(v), 6) for v in model.decision_bias],
        "rounding": "deterministic round-half-to-even (weights: tensor min/max; activations: running range)",
        "inference": "chosen option only, inputs grouped by decision",
        "densities": "per layer, the non-zero share of the feature maps it reads and writes over this split",
        "forced_option": None if force_index is None else _option_names(model, force_index),
        "accuracy_pct": round(summary["accuracy_pct"], 4),
        "computation_pct": round(summary["computation_pct"], 4),
        "git_commit": git_commit(),
        "tool_version": dfs_sim.__version__,
        "torch_version": torch.__version__,
    }
    path = recorder.write(out, network=network, decisions=result["decisions"], labels=result["labels"],
                          predictions=result["predictions"], gate_probs=result.get("gate_probs"), budget_pct=budget,
                          budget_metric=budget_metric, budget_cost=budget_cost, provenance=provenance)
    return path, summary


def _gate_target(commands: list[str]) -> str | None:
    """What the gates last trained toward: the --gate-target of the last gates stage (top by default) or of a
    later dfs stage whose gates tracked one; None without a gates stage."""
    gates = [c.split() for c in commands if "--stage gates" in c or ("--stage dfs" in c and "--gate-target" in c)]
    if not gates:
        return None
    tokens = gates[-1]
    return tokens[tokens.index("--gate-target") + 1] if "--gate-target" in tokens else "top"
