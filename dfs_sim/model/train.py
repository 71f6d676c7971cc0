"""Three-stage DFS training, checkpoints and evaluation.

Stage "backbone": the ResNet at full precision (gates unused).
Stage "gates":    backbone frozen; the gates learn to choose full precision everywhere.
Stage "dfs":      joint training at a computation budget with every candidate computed:
                  loss = CE + beta * sign * computation, where computation is the mean over
                  inputs and gated blocks of mask . cost (the straight-through mask, cost
                  (b/32)^2, skip 0, full 1) and sign is -1 while the batch's hard computation
                  percentage is at or below the budget and +1 above it.
Each stage writes its checkpoint after every epoch and resumes from it when rerun.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dfs_sim.errors import InputError, require
from dfs_sim.model.data import DATASETS, DEFAULT_ROOTS, Batches, load_split
from dfs_sim.model.gated_resnet import GatedResNet, ModelConfig, load_weights, parse_options
from dfs_sim.workload.resnet import ARCHITECTURES

STAGES = ("backbone", "gates", "dfs")
CHECKPOINT_FORMAT = "dfs-sim-model"


@dataclass
class StageArgs:
    stage: str
    out: str
    dataset: str | None = None  # None: the previous stage's (fashion-mnist for a new backbone)
    data: str | None = None  # None: the previous stage's, else the dataset's default location
    init: str | None = None  # the previous stage's checkpoint (gates, dfs)
    arch: str = "resnet20"  # backbone stage only: resnet20/38/74 or stage depths "3,3,3"
    options: str | None = None  # backbone stage only, e.g. "skip,8,16,full"
    nested: bool | None = None  # None keeps the previous stage's choice
    bn: str | None = None  # "shared" or "per-option"; None keeps the previous stage's choice
    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    budget: float | None = None  # target computation percentage (dfs)
    beta: float = 0.1
    max_batches: int | None = None  # per epoch; None = the whole split
    eval_limit: int | None = None  # evaluate on the first N test inputs only
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    progress: bool = True
    command: str = ""


def setup(seed: int, threads: int | None = None, device: str = "auto") -> torch.device:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    # warn_only: index_copy has no deterministic CUDA kernel; on the CPU everything here is.
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def save_checkpoint(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, device="cpu", **overrides) -> tuple[GatedResNet, dict]:
    """Load a checkpoint safely (weights_only=True) and rebuild its model, optionally with
    `nested` or `bn` changed (neither changes which weights exist beyond per-option BN copies)."""
    path = Path(path)
    require(path.is_file(), path, None, "no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for bad or unsafe files
        raise InputError(path, None, f"not a loadable dfs-sim checkpoint ({str(err).splitlines()[0]})") from None
    require(isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT, path, "format",
            f"not a {CHECKPOINT_FORMAT} checkpoint")
    for key in ("config", "state_dict", "stage", "epoch", "done", "train", "stage_times"):
        require(key in ckpt, path, key, "missing from checkpoint")
    config = ModelConfig.from_dict({**json.loads(ckpt["config"]), **overrides}, path)
    model = GatedResNet(config)
    try:
        load_weights(model, ckpt["state_dict"])
    except RuntimeError as err:
        raise InputError(path, "state_dict", f"does not fit its config ({str(err).splitlines()[0]})") from None
    return model.to(device), ckpt


@torch.no_grad()
def predict(model: GatedResNet, batches: Batches, *, force: int | None = None, candidates: str = "chosen",
            gate_probs: bool = False, limit: int | None = None, progress: bool = False):
    """Per-input predictions, decisions and (optionally) gate probabilities as numpy arrays."""
    from tqdm import tqdm

    model.eval()
    preds, labels, decisions, probs, seen = [], [], [], [], 0
    for x, y in tqdm(batches.epoch(), total=len(batches), disable=not progress, desc="eval", mininterval=5):
        if limit is not None and seen >= limit:
            break
        out = model(x, candidates=candidates, force=force, gates=force is None or gate_probs)
        preds.append(out.logits.argmax(1).cpu())
        labels.append(y.cpu())
        decisions.append(out.decisions.cpu())
        if gate_probs:
            probs.append(out.gate_logits.softmax(-1).half().cpu())
        seen += len(y)
    result = {"predictions": torch.cat(preds).numpy(), "labels": torch.cat(labels).numpy(),
              "decisions": torch.cat(decisions).numpy()}
    if gate_probs:
        result["gate_probs"] = torch.cat(probs).numpy()
    if limit is not None:
        result = {k: v[:limit] for k, v in result.items()}
    return result


def summarize(model: GatedResNet, result: dict) -> dict:
    costs = model.costs.cpu().numpy()
    return {"accuracy_pct": float(100 * np.mean(result["predictions"] == result["labels"])),
            "computation_pct": float(100 * costs[result["decisions"]].mean()),
            "n": int(len(result["labels"]))}


def _batches(args: StageArgs, split: str, spec, device, train: bool) -> Batches:
    root = args.data or DEFAULT_ROOTS.get(args.dataset)
    require(root is not None, "--data", None, f"{args.dataset} needs --data (nothing is downloaded)")
    images, labels = load_split(args.dataset, root, split)
    return Batches(images, labels, spec, args.batch_size if train else 500, train=train, seed=args.seed,
                   device=device, channels_last=True)


def run_stage(args: StageArgs) -> dict:
    """Train one stage (resuming from `args.out` if it holds an unfinished run); return final metrics."""
    from tqdm import tqdm

    require(args.stage in STAGES, "--stage", None, f"must be one of {', '.join(STAGES)}")
    require(args.dataset in (None, *DATASETS), "--dataset", None, f"unknown dataset '{args.dataset}'")
    require(args.epochs >= 1, "--epochs", None, "must be >= 1")
    if args.stage == "dfs":
        require(args.budget is not None and 0 <= args.budget <= 100, "--budget", None,
                "the dfs stage needs a computation budget in [0, 100] percent")
    device = setup(args.seed, args.threads, args.device)
    out = Path(args.out)

    if out.exists():
        model, ckpt = load_checkpoint(out, device)
        require(ckpt["stage"] == args.stage, out, "stage", f"holds stage '{ckpt['stage']}', not '{args.stage}'")
        if ckpt["done"]:
            print(f"{out}: stage {args.stage} already complete ({ckpt['epoch']} epochs); nothing to do")
            return json.loads(ckpt.get("metrics", "{}"))
        prior_times, prior_commands = json.loads(ckpt["stage_times"]), _commands(ckpt)[:-1]
        start_epoch, elapsed = int(ckpt["epoch"]), float(ckpt["elapsed_s"])
        print(f"{out}: resuming stage {args.stage} after epoch {start_epoch}")
    else:
        ckpt, start_epoch, elapsed = None, 0, 0.0
        if args.stage == "backbone":
            args = replace(args, dataset=args.dataset or "fashion-mnist")
            model, prior_times, prior_commands = _fresh_model(args, DATASETS[args.dataset]), {}, []
        else:
            require(args.init is not None, "--init", None, f"stage {args.stage} starts from the previous "
                                                             "stage's checkpoint: pass --init")
            require(args.options is None, "--options", None, "the option set is fixed by the backbone stage")
            overrides = {k: v for k, v in (("nested", args.nested), ("bn", args.bn)) if v is not None}
            model, init = load_checkpoint(args.init, device, **overrides)
            want = STAGES[STAGES.index(args.stage) - 1]
            require(init["stage"] == want and init["done"], args.init, "stage",
                    f"must be a finished '{want}' checkpoint")
            prior_times, prior_commands = json.loads(init["stage_times"]), _commands(init)
            previous = json.loads(init["train"])
            args = replace(args, dataset=args.dataset or previous["dataset"], data=args.data or previous["data"])
    if ckpt is not None:  # resuming: the same data as before unless told otherwise
        previous = json.loads(ckpt["train"])
        args = replace(args, dataset=args.dataset or previous["dataset"], data=args.data or previous["data"])
    spec = DATASETS[args.dataset]
    model = model.to(device).to(memory_format=torch.channels_last)
    config = model.config
    require((spec.channels, spec.size, spec.classes) == (config.in_channels, config.input_size, config.num_classes),
            args.dataset, None, "does not match the checkpoint's input shape or class count")

    train_batches = _batches(args, "train", spec, device, train=True)
    test_batches = _batches(args, "test", spec, device, train=False)
    steps_per_epoch = min(len(train_batches), args.max_batches or len(train_batches))

    if args.stage == "gates":
        for p in model.backbone_parameters():
            p.requires_grad_(False)
        params = model.gate_parameters()
    elif args.stage == "backbone":
        params = model.backbone_parameters()
    else:
        params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                                nesterov=True)
    total = args.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])

    log_path = out.with_suffix(".csv")
    fields = ["stage", "epoch", "lr", "train_loss", "train_accuracy_pct", "train_computation_pct",
              "test_accuracy_pct", "test_computation_pct", "epoch_time_s"]
    if start_epoch == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w", newline="") as handle:
            csv.writer(handle).writerow(fields)

    metrics = {}
    for epoch in range(start_epoch, args.epochs):
        started = time.perf_counter()
        model.train(args.stage != "gates")  # a frozen backbone keeps its BN statistics and ranges
        sums = np.zeros(4)  # loss, correct, computation, inputs
        bar = tqdm(train_batches.epoch(epoch), total=steps_per_epoch, disable=not args.progress,
                   desc=f"{args.stage} {epoch + 1}/{args.epochs}", mininterval=10)
        for step, (x, y) in enumerate(bar):
            if step >= steps_per_epoch:
                break
            loss, correct, computation = _step(model, args, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            sums += (loss.item() * len(y), correct, computation * len(y), len(y))
            bar.set_postfix(loss=f"{sums[0] / sums[3]:.3f}", acc=f"{100 * sums[1] / sums[3]:.1f}",
                            comp=f"{100 * sums[2] / sums[3]:.1f}", refresh=False)
        bar.close()
        force = model.full_index if args.stage == "backbone" else None
        metrics = summarize(model, predict(model, test_batches, force=force, limit=args.eval_limit))
        elapsed += time.perf_counter() - started
        row = [args.stage, epoch + 1, optimizer.param_groups[0]["lr"], sums[0] / sums[3], 100 * sums[1] / sums[3],
               100 * sums[2] / sums[3], metrics["accuracy_pct"], metrics["computation_pct"],
               round(time.perf_counter() - started, 2)]
        done = epoch + 1 == args.epochs
        payload = {
            "format": CHECKPOINT_FORMAT, "version": 1, "stage": args.stage, "epoch": epoch + 1, "done": done,
            "config": json.dumps(config.to_dict()), "train": json.dumps(asdict(args)),
            "elapsed_s": elapsed, "stage_times": json.dumps({**prior_times, args.stage: round(elapsed, 1)}),
            "commands": json.dumps(prior_commands + [args.command]),
            "metrics": json.dumps(metrics), "state_dict": model.state_dict(),
        }
        if not done:  # a finished checkpoint drops the optimizer state to stay small
            payload["optimizer"], payload["scheduler"] = optimizer.state_dict(), schedule.state_dict()
        save_checkpoint(out, payload)
        with open(log_path, "a", newline="") as handle:
            csv.writer(handle).writerow([f"{v:.4f}" if isinstance(v, float) else v for v in row])
        print(f"{args.stage} epoch {epoch + 1}/{args.epochs}: train loss {row[3]:.4f} acc {row[4]:.2f}% "
              f"comp {row[5]:.1f}% | test acc {metrics['accuracy_pct']:.2f}% comp {metrics['computation_pct']:.1f}% "
              f"| {row[8]:.0f}s", flush=True)
    return metrics


def _commands(ckpt: dict) -> list[str]:
    """The commands that produced a checkpoint, one per stage."""
    return json.loads(ckpt["commands"]) if "commands" in ckpt else [json.loads(ckpt["train"])["command"]]


def _fresh_model(args: StageArgs, spec) -> GatedResNet:
    if args.arch in ARCHITECTURES:
        depths = ARCHITECTURES[args.arch]
    else:
        try:
            depths = tuple(int(d) for d in args.arch.split(","))
        except ValueError:
            raise InputError("--arch", None, f"'{args.arch}' is neither {', '.join(ARCHITECTURES)} "
                                             "nor stage depths like 3,3,3") from None
    config = {"depths": depths, "in_channels": spec.channels, "input_size": spec.size, "num_classes": spec.classes,
              "nested": bool(args.nested), "bn": args.bn or "shared"}
    if args.options is not None:
        config["options"] = parse_options(args.options)
    return GatedResNet(ModelConfig.from_dict(config, "command line"))


def _step(model: GatedResNet, args: StageArgs, x, y):
    """One stage-specific forward; returns (loss, correct count, batch computation fraction)."""
    if args.stage == "backbone":
        out = model(x, force=model.full_index, gates=False)
        return F.cross_entropy(out.logits, y), int((out.logits.argmax(1) == y).sum()), 1.0
    if args.stage == "gates":
        out = model(x, force=model.full_index)
        gate_logits = out.gate_logits.flatten(0, 1)
        target = torch.full((len(gate_logits),), model.full_index, device=x.device)
        computation = float(model.computation(out.gate_logits.argmax(-1)).mean())
        return F.cross_entropy(gate_logits, target), int((out.logits.argmax(1) == y).sum()), computation
    out = model(x, candidates="all")
    p = out.gate_logits.softmax(-1)
    mask = F.one_hot(out.decisions, len(model.options)).to(p.dtype) - p.detach() + p
    soft_computation = (mask * model.costs).sum(-1).mean()
    computation = float(model.computation(out.decisions).mean())
    sign = -1.0 if 100 * computation <= args.budget else 1.0
    loss = F.cross_entropy(out.logits, y) + args.beta * sign * soft_computation
    return loss, int((out.logits.argmax(1) == y).sum()), computation
