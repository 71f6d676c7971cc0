"""Trace emission: the layer table derived from the model itself, per-input decisions, provenance."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import torch

import dfs_sim
from dfs_sim.errors import require
from dfs_sim.model.data import DATASETS, DEFAULT_ROOTS, Batches, load_split
from dfs_sim.model.gated_resnet import FULL, GatedResNet, resolve_force
from dfs_sim.model.recorder import Recorder
from dfs_sim.model.train import _commands, load_checkpoint, predict, setup, summarize
from dfs_sim.workload.network import Network


def _dfs_layer_name(path: str, call: int) -> str:
    """The names of dfs_sim.workload.resnet.dfs_resnet: block3.conv1, block3.proj, gate3.embed, gate3.lstm."""
    match = re.fullmatch(r"blocks\.(\d+)\.(conv1|conv2|proj)(?:\.0)?", path)
    if match:
        return f"block{int(match[1]) + 1}.{match[2]}"
    match = re.fullmatch(r"gates\.(\d+)\.(pool|embed)", path)
    if match:
        return f"gate{int(match[1]) + 2}.{match[2]}"
    if path in ("lstm", "gate_fc"):  # shared by every gate, one call per gate
        return f"gate{call + 2}.{'lstm' if path == 'lstm' else 'fc'}"
    return path


def dfs_recorder(model: GatedResNet) -> Recorder:
    """The recorder for a GatedResNet: blocks 2.. are the units, each decided by its gate; a
    downsampling projection follows its block (full precision, or the model's fixed bits, when
    skipped) or, with `projection="full"`, always runs at full precision; with `fixed_bits` the
    stem, block 1 and the classifier run at those bits."""
    config = model.config
    description = (f"DFS-{config.arch} derived from the PyTorch model: stages {list(config.depths)}, widths "
                   f"{list(config.widths)}, input {config.in_channels}x{config.input_size}x{config.input_size}, "
                   f"{model.n_units} gated blocks, {len(model.options)} options")
    recorder = Recorder(model, (config.in_channels, config.input_size, config.input_size), model.options,
                        name=config.arch, description=description, names=_dfs_layer_name,
                        run_all=lambda m, x: m(x, force=FULL))  # full precision, gates run: every layer fires
    skip_bits = {} if config.fixed_bits is None else {"w_bits": config.fixed_bits, "a_bits": config.fixed_bits}
    if skip_bits:  # the layers no gate decides run at the model's fixed bits
        recorder.fixed(model.stem, model.blocks[0], model.fc, **skip_bits)
    for index, block in enumerate(model.blocks[1:], start=2):
        recorder.unit(f"block{index}", block)
        if block.proj is not None:
            if block.quantized_projection:
                recorder.shortcut(block.proj, **skip_bits)
            else:
                recorder.full(block.proj)
    for gate in model.gates:
        recorder.kind(gate.embed, "gate-embed")
    recorder.kind(model.gate_fc, "gate-fc")
    return recorder


def dfs_order(network: Network) -> Network:
    """DFS's table lists a block's projection after its convs (the model runs it first)."""
    layers, held = [], {}
    for layer in network.layers:
        block, _, part = layer.name.rpartition(".")
        if part == "proj":
            held[block] = layer
            continue
        layers.append(layer)
        if part == "conv2" and block in held:
            layers.append(held.pop(block))
    return replace(network, layers=tuple(layers), meta=dict(network.meta))


def derive_network(model: GatedResNet, probe=None) -> Network:
    """The layer table of a GatedResNet, derived by the recorder from forward hooks on one input;
    names, order, kinds, units and precision rules follow dfs_sim.workload.resnet.dfs_resnet."""
    recorder = probe.recorder if probe is not None else dfs_recorder(model)
    return dfs_order(recorder.network(probe))


def _option_names(model: GatedResNet, force) -> str:
    if isinstance(force, list):
        return ",".join(model.options[k].name for k in force)
    return model.options[force].name


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
