"""Three-stage DFS training, checkpoints and evaluation.

Stage "backbone": the ResNet at full precision (gates unused).
Stage "gates":    backbone frozen; activation ranges calibrated; the gates learn to choose the
                  most expensive option (full precision) everywhere, by a hinge loss with a margin
                  so that they are decided but not saturated.
Stage "dfs":      joint training at a budget with every candidate computed:
                  loss = CE + beta * sign * cost, where cost is the mean over inputs and gated
                  blocks of mask . cost table (the straight-through mask; the proxy (b/32)^2,
                  skip 0, full 1, or a real cost from dfs-sim's cost tables, `--cost
                  energy@bitfusion`) and sign is -1 while the batch's hard cost is at or below the
                  budget and +1 above it. The epoch with the best validation accuracy within
                  `--tolerance` of the budget is kept, and a budget controller then shifts the
                  gates' decision bias so the validation split lands on the budget.
A validation split carved from the training split (`--val-size`, the same for every stage) does
all selection; the test split is evaluated once, at the end. Each stage writes its checkpoint
after every epoch and resumes from it when rerun.
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

from dfs_sim.atomic import atomic_file
from dfs_sim.errors import InputError, input_boundary, require
from dfs_sim.model.data import DATASETS, DEFAULT_ROOTS, Batches, load_split
from dfs_sim.model.gated_resnet import (FULL, LEGACY_RECIPE, GatedResNet, ModelConfig, load_weights, parse_options,
                                        resolve_force)
from dfs_sim.workload.resnet import ARCHITECTURES

STAGES = ("backbone", "gates", "dfs")
CHECKPOINT_FORMAT = "dfs-sim-model"
SCHEDULES = ("cosine", "step")
DEFAULT_SCHEDULE = {"backbone": "cosine", "gates": "cosine", "dfs": "step"}
PER_INPUT_TARGETS = ("loss", "prob", "kl")  # gate targets computed per input, from each option's effect on it
GATE_TARGETS = ("top", "ranked", *PER_INPUT_TARGETS)
TARGET_SHAPES = ("linear", "log1p")  # how a per-input harm becomes the gates' regression target (shaped_harm)
VAL_SEED = 12345  # the validation split is the same for every training seed and every stage


@dataclass
class StageArgs:
    stage: str
    out: str
    dataset: str | None = None  # None: the previous stage's (fashion-mnist for a new backbone)
    data: str | None = None  # None: the previous stage's, else the dataset's default location
    init: str | None = None  # the previous stage's checkpoint (gates, dfs)
    arch: str = "resnet20"  # backbone stage only: resnet20/38/74 or stage depths "3,3,3"
    options: str | None = None  # backbone or gates stage, e.g. "skip,8,16,full"
    nested: bool | None = None  # None keeps the previous stage's choice
    bn: str | None = None  # "shared" or "per-option"; None keeps the previous stage's choice
    gate_init: str | None = None  # backbone or gates stage: "reference" (default) or "pytorch"
    act_range: str | None = None  # backbone stage: "reference" (default) or "batch"
    projection: str | None = None  # backbone stage: "quantized" (default) or "full"
    fixed_bits: int | None = None  # backbone or gates stage: the undecided layers' bits (None: full precision)
    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str | None = None  # "cosine" or "step"; None: cosine for backbone and gates, step for dfs
    lr_steps: str = "0.5,0.75"  # step schedule: fractions of training at which the rate drops 10x
    budget: float | None = None  # target percentage of the --cost metric (dfs)
    cost: str = "proxy"  # "proxy" ((b/32)^2) or "METRIC@HW", e.g. "energy@bitfusion" (dfs)
    static: str | None = None  # dfs stage: train a static reference with these options pinned ("4bit" or per block)
    beta: float = 0.1
    tolerance: float = 2.0  # dfs: epochs whose validation cost is within this many points of the budget compete
    controller_gain: float = 0.5  # dfs: online budget controller, lam += gain * (batch cost - budget); 0: off
    val_size: int | None = None  # None: the previous stage's (5000 for a new backbone)
    calibration_batches: int = 20  # gates stage: batches that calibrate never-set activation ranges
    gate_margin: float = 1.0  # gates stage: the top option's logit lead at which the hinge stops pushing
    gate_target: str = "top"  # gates stage: one of GATE_TARGETS (the top option leads; every option leads the
    # cheaper; each logit learns minus the loss, or the true class's probability drop, its option adds per input);
    # dfs stage: a per-input target that the gates keep fitting, on the network as it fine-tunes
    loss_clip: float = 4.0  # per-input targets: the scaled target (nats) is clipped to this
    target_scale: float = 1.0  # per-input targets: the harm is multiplied by this before the fit
    target_shape: str = "linear"  # per-input targets: one of TARGET_SHAPES, applied to the scaled harm
    target_inputs: int = 32  # dfs stage, per-input target: inputs per batch whose target is computed
    gate_lr: float | None = None  # dfs stage, per-input target: the gates' learning rate (None: --lr)
    explore: float = 0.0  # dfs stage: share of (input, block) pairs that run a random option (every path trains)
    freeze_gates: bool = False  # dfs stage: only the backbone trains; the controller alone moves the decisions
    max_batches: int | None = None  # per epoch; None = the whole split
    eval_limit: int | None = None  # evaluate on the first N validation (and test) inputs only
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
    with atomic_file(path) as handle:
        torch.save(payload, handle)


def load_checkpoint(path: str | Path, device="cpu", **overrides) -> tuple[GatedResNet, dict]:
    """Load a checkpoint safely (weights_only=True) and rebuild its model, optionally with
    `nested` or `bn` changed (neither changes which weights exist beyond per-option BN copies)."""
    path = Path(path)
    require(path.is_file(), path, None, "no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for bad or unsafe files
        raise InputError(path, None, f"not a loadable dfs-sim checkpoint ({str(err).splitlines()[0]})") from None
    with input_boundary(path, "a dfs-sim checkpoint"):  # malformed fields: one line, not a traceback
        require(isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT, path, "format",
                f"not a {CHECKPOINT_FORMAT} checkpoint")
        for key in ("config", "state_dict", "stage", "epoch", "done", "train", "stage_times"):
            require(key in ckpt, path, key, "missing from checkpoint")
        # A checkpoint from before the recipe choices existed used the legacy recipe.
        config = ModelConfig.from_dict({**LEGACY_RECIPE, **json.loads(ckpt["config"]), **overrides}, path)
        model = GatedResNet(config)
        try:
            load_weights(model, ckpt["state_dict"])
        except RuntimeError as err:
            raise InputError(path, "state_dict", f"does not fit its config ({str(err).splitlines()[0]})") from None
    return model.to(device), ckpt


@torch.no_grad()
def predict(model: GatedResNet, batches: Batches, *, force=None, candidates: str = "chosen",
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
            probs.append((out.gate_logits + model.decision_bias).softmax(-1).half().cpu())
        seen += len(y)
    result = {"predictions": torch.cat(preds).numpy(), "labels": torch.cat(labels).numpy(),
              "decisions": torch.cat(decisions).numpy()}
    if gate_probs:
        result["gate_probs"] = torch.cat(probs).numpy()
    if limit is not None:
        result = {k: v[:limit] for k, v in result.items()}
    return result


def summarize(model: GatedResNet, result: dict, costs: torch.Tensor | None = None) -> dict:
    """Accuracy, proxy computation % and (with `costs` [units, options]) the real-cost % of a prediction."""
    decisions = torch.from_numpy(result["decisions"])
    summary = {"accuracy_pct": float(100 * np.mean(result["predictions"] == result["labels"])),
               "computation_pct": float(100 * model.computation(decisions).mean()) if len(decisions) else 0.0,
               "n": int(len(result["labels"]))}
    if costs is not None:
        summary["cost_pct"] = float(100 * model.computation(decisions, costs.cpu()).mean()) if len(decisions) else 0.0
    return summary


def split_train_val(images: torch.Tensor, labels: torch.Tensor, val_size: int):
    """Carve a fixed validation split off the training split (the same one for every stage and seed)."""
    require(0 <= val_size < len(labels), "--val-size", None, f"must lie in [0, {len(labels)})")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(VAL_SEED))
    val, train = order[:val_size].sort().values, order[val_size:].sort().values
    return (images[train], labels[train]), (images[val], labels[val])


def _load(args: StageArgs, split: str):
    root = args.data or DEFAULT_ROOTS.get(args.dataset)
    require(root is not None, "--data", None, f"{args.dataset} needs --data (nothing is downloaded)")
    return load_split(args.dataset, root, split)


def _eval_batches(images, labels, spec, device, limit=None) -> Batches:
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return Batches(images, labels, spec, 500, train=False, device=device)


def stage_costs(model: GatedResNet, cost: str, device) -> tuple[torch.Tensor, dict | None]:
    """The [units, options] cost table stage 3 trains against, and how it was made (None: the proxy)."""
    if cost == "proxy":
        return model.costs.expand(model.n_units, -1).clone(), None
    require(cost.count("@") == 1 and all(cost.split("@")), "--cost", None,
            f"must be 'proxy' or 'METRIC@HW' (e.g. energy@bitfusion), got '{cost}'")
    import dfs_sim
    from dfs_sim.model.layer_table import derive_network

    metric, hw_name = cost.split("@")
    hw = dfs_sim.load_hw(hw_name)
    table = dfs_sim.unit_costs(derive_network(model), model.options, hw, metric)
    info = {"metric": metric, "hw": hw_name, "hw_name": hw.name, "hw_digest": hw.digest, "batch": hw.batch.size,
            "normalised": "each cell / the mean over gated blocks of a block's full-precision cost",
            "table": np.round(table, 6).tolist()}
    return torch.tensor(table, dtype=torch.float32, device=device), info


@torch.no_grad()
def calibrate_ranges(model: GatedResNet, batches: Batches, n_batches: int) -> int:
    """Set every never-set activation range (convs and the classifier) from full-precision runs over
    `n_batches` training batches (the reference statistic, averaged); returns how many layers were
    calibrated."""
    from dfs_sim.model.quant import QConv2d, QLinear

    convs = [m for m in model.modules() if isinstance(m, (QConv2d, QLinear)) and not bool(m.act_seen)]
    if not convs:
        return 0
    was_training = model.training
    model.eval()
    for conv in convs:
        conv.calibrating = True
    try:
        for step, (x, _) in enumerate(batches.epoch(0)):
            if step >= n_batches:
                break
            model(x, force=FULL, gates=False)
    finally:
        for conv in convs:
            conv.finish_calibration()
        model.train(was_training)
    return len(convs)


@torch.no_grad()
def option_cost_scale(costs: torch.Tensor) -> torch.Tensor:
    """Each option's mean cost over blocks, divided by the spread between the dearest and the cheapest
    option. lam then reads in logits whatever the metric: the proxy's spread is 1 (skip 0, full 1),
    but Bit Fusion's energy spreads only 0.011-0.158 of full precision, where an unscaled lam would
    need to reach ~20 before it moved a decision."""
    mean = costs.mean(0)
    spread = float(mean.max() - mean.min())
    return mean / spread if spread > 0 else mean


def set_decision_bias(model: GatedResNet, costs: torch.Tensor, lam: float) -> None:
    """decision bias = -lam * option_cost_scale: lam > 0 favours cheaper options."""
    model.decision_bias.copy_(-lam * option_cost_scale(costs).to(model.decision_bias.device))


def calibrate_budget(model: GatedResNet, batches: Batches, costs: torch.Tensor, budget_pct: float,
                     start: float = 0.0, steps: int = 14) -> tuple[float, dict]:
    """The budget controller's last word: the lam (see set_decision_bias) at which the validation
    split's cost lands on the budget, by bisection from `start` (cost falls as lam grows)."""
    def measure(lam: float) -> dict:
        set_decision_bias(model, costs, lam)
        return summarize(model, predict(model, batches), costs)

    first = measure(start)
    if abs(first["cost_pct"] - budget_pct) < 0.05:
        return start, first
    # Widen until the budget is bracketed (logits are O(1..10)).
    width = 0.25
    low, high = start - width, start + width
    while measure(high)["cost_pct"] > budget_pct and high - start < 1e4:
        high = start + (high - start) * 4
    while measure(low)["cost_pct"] < budget_pct and start - low < 1e4:
        low = start - (start - low) * 4
    best = (abs(first["cost_pct"] - budget_pct), start, first)
    for _ in range(steps):
        mid = (low + high) / 2
        result = measure(mid)
        if abs(result["cost_pct"] - budget_pct) < best[0]:
            best = (abs(result["cost_pct"] - budget_pct), mid, result)
        if result["cost_pct"] > budget_pct:
            low = mid
        else:
            high = mid
    set_decision_bias(model, costs, best[1])
    return best[1], best[2]


def run_stage(args: StageArgs) -> dict:
    """Train one stage (resuming from `args.out` if it holds an unfinished run); return final metrics."""
    from tqdm import tqdm

    require(args.stage in STAGES, "--stage", None, f"must be one of {', '.join(STAGES)}")
    require(args.dataset in (None, *DATASETS), "--dataset", None, f"unknown dataset '{args.dataset}'")
    require(args.epochs >= 1, "--epochs", None, "must be >= 1")
    require(args.schedule in (None, *SCHEDULES), "--schedule", None, f"must be one of {', '.join(SCHEDULES)}")
    if args.stage == "dfs" and args.static is None:
        require(args.budget is not None and 0 <= args.budget <= 100, "--budget", None,
                "the dfs stage needs a budget in [0, 100] percent (or --static OPTIONS)")
    require(args.static is None or (args.stage == "dfs" and args.budget is None), "--static", None,
            "trains a static reference in the dfs stage, without a budget")
    if args.stage != "dfs":
        require(args.cost == "proxy", "--cost", None, "only the dfs stage trains against a cost")
    require(args.gate_target in GATE_TARGETS, "--gate-target", None, f"must be one of {', '.join(GATE_TARGETS)}")
    tracking = args.stage == "dfs" and args.gate_target in PER_INPUT_TARGETS
    require(args.gate_target == "top" or args.stage == "gates" or tracking, "--gate-target", None,
            "applies to the gates stage (and, as loss, prob or kl, to the dfs stage)")
    require(not tracking or (args.static is None and not args.freeze_gates), "--gate-target", None,
            "in the dfs stage trains the gates toward it: not with --static or --freeze-gates")
    require(args.target_inputs >= 1, "--target-inputs", None, "must be >= 1")
    require(args.gate_lr is None or (tracking and args.gate_lr > 0), "--gate-lr", None,
            "is a positive learning rate for gates that track a per-input target in the dfs stage")
    require(args.loss_clip > 0, "--loss-clip", None, "must be positive")
    require(args.target_scale > 0, "--target-scale", None, "must be positive")
    require(args.target_shape in TARGET_SHAPES, "--target-shape", None, f"must be one of {', '.join(TARGET_SHAPES)}")
    require(args.target_shape == "linear" or args.gate_target in ("loss", "kl"), "--target-shape", None,
            "log1p applies to the non-negative per-input gate targets (loss, kl)")
    require(args.target_scale == 1 or args.gate_target in PER_INPUT_TARGETS, "--target-scale", None,
            "applies to the per-input gate targets (loss, prob, kl)")
    require(not args.freeze_gates or (args.stage == "dfs" and args.static is None), "--freeze-gates", None,
            "applies to the dfs stage (not with --static)")
    require(0 <= args.explore < 1, "--explore", None, "must be a share in [0, 1)")
    require(args.explore == 0 or (args.stage == "dfs" and args.static is None), "--explore", None,
            "explores the gates' options in the dfs stage (not with --static)")
    if args.stage != "backbone":
        for flag in ("act_range", "projection", "arch"):
            value = getattr(args, flag)
            require(value is None or (flag == "arch" and value == "resnet20"), f"--{flag.replace('_', '-')}", None,
                    "is fixed by the backbone stage")
    if args.stage == "dfs":
        for flag in ("options", "gate_init", "fixed_bits"):
            require(getattr(args, flag) is None, f"--{flag.replace('_', '-')}", None, "is fixed by the gates stage")
    steps_at = _lr_steps(args.lr_steps)
    device = setup(args.seed, args.threads, args.device)
    out = Path(args.out)

    best_state, best, lam = None, None, 0.0
    if out.exists():
        model, ckpt = load_checkpoint(out, device)
        require(ckpt["stage"] == args.stage, out, "stage", f"holds stage '{ckpt['stage']}', not '{args.stage}'")
        if ckpt["done"]:
            print(f"{out}: stage {args.stage} already complete ({ckpt['epoch']} epochs); nothing to do")
            return json.loads(ckpt.get("metrics", "{}"))
        prior_times, prior_commands = json.loads(ckpt["stage_times"]), _commands(ckpt)[:-1]
        time_key = list(prior_times)[-1]  # this stage's, written last
        start_epoch, elapsed = int(ckpt["epoch"]), float(ckpt["elapsed_s"])
        previous = json.loads(ckpt["train"])
        args = replace(args, dataset=args.dataset or previous["dataset"], data=args.data or previous["data"],
                       val_size=previous.get("val_size", 0) if args.val_size is None else args.val_size)
        if "best_state_dict" in ckpt:
            best_state, best = ckpt["best_state_dict"], json.loads(ckpt["best"])
        lam = float(ckpt.get("controller_lambda", 0.0))
        print(f"{out}: resuming stage {args.stage} after epoch {start_epoch}")
    else:
        ckpt, start_epoch, elapsed = None, 0, 0.0
        if args.stage == "backbone":
            args = replace(args, dataset=args.dataset or "fashion-mnist",
                           val_size=5000 if args.val_size is None else args.val_size)
            model, prior_times, prior_commands = _fresh_model(args, DATASETS[args.dataset]), {}, []
            time_key = args.stage
        else:
            require(args.init is not None, "--init", None, f"stage {args.stage} starts from the previous "
                                                             "stage's checkpoint: pass --init")
            overrides = {k: v for k, v in (("nested", args.nested), ("bn", args.bn)) if v is not None}
            model, init = load_checkpoint(args.init, device, **overrides)
            want = STAGES[STAGES.index(args.stage) - 1]
            # Loss-target gates may also be fitted afresh to a trained DFS network, whose every path has trained.
            refit = args.stage == "gates" and args.gate_target in PER_INPUT_TARGETS and init["stage"] == "dfs"
            require((init["stage"] == want or refit) and init["done"], args.init, "stage",
                    f"must be a finished '{want}' checkpoint" + (" (or 'dfs', with --gate-target loss, prob or kl)"
                                                                  if args.stage == "gates" else ""))
            if refit or (args.stage == "gates" and any(v is not None for v in (args.options, args.gate_init,
                                                                               args.fixed_bits))):
                model = _with_new_gates(model, args, device)
            prior_times, prior_commands = json.loads(init["stage_times"]), _commands(init)
            # A stage run again (gates refitted, then dfs again) is timed under its own key.
            time_key = args.stage if args.stage not in prior_times else \
                f"{args.stage} {1 + sum(k.split()[0] == args.stage for k in prior_times)}"
            previous = json.loads(init["train"])
            inherited = previous.get("val_size", 0)
            require(args.val_size in (None, inherited), "--val-size", None,
                    f"the validation split is fixed by the backbone stage ({inherited})")
            args = replace(args, dataset=args.dataset or previous["dataset"], data=args.data or previous["data"],
                           val_size=inherited)
    spec = DATASETS[args.dataset]
    # NCHW, not channels_last: on one or two CPU threads a ResNet-20 step with every candidate runs
    # 1.4x faster (3.1 vs 4.4 s); inference is 1.3x slower, but one format everywhere keeps emitted
    # traces bit-identical to the training's own final evaluation.
    model = model.to(device)
    config = model.config
    require((spec.channels, spec.size, spec.classes) == (config.in_channels, config.input_size, config.num_classes),
            args.dataset, None, "does not match the checkpoint's input shape or class count")
    schedule_name = args.schedule or DEFAULT_SCHEDULE[args.stage]

    (train_x, train_y), (val_x, val_y) = split_train_val(*_load(args, "train"), args.val_size)
    train_batches = Batches(train_x, train_y, spec, args.batch_size, train=True, seed=args.seed, device=device)
    if len(val_y):
        val_batches = _eval_batches(val_x, val_y, spec, device, args.eval_limit)
    else:  # no validation split (e.g. a quick test): select on the training split, said in the log
        val_batches = _eval_batches(train_x, train_y, spec, device, args.eval_limit or 2000)
    steps_per_epoch = min(len(train_batches), args.max_batches or len(train_batches))
    costs, cost_info = stage_costs(model, args.cost, device) if args.stage == "dfs" else (None, None)
    pinned = None if args.static is None else resolve_force(model, args.static, "--static")
    # The online budget controller (dfs): the decision bias follows lam (set_decision_bias), and lam
    # integrates each batch's cost error, so training runs at the budget from the first steps and the
    # quantized paths that the budget needs get trained; the sign rule then shapes the gates.
    controlled = args.stage == "dfs" and pinned is None and args.controller_gain > 0
    if controlled:  # the cost error in units of the options' spread, as lam is (option_cost_scale)
        option_mean = costs.mean(0)
        cost_spread = float(option_mean.max() - option_mean.min()) or 1.0

    if args.stage == "gates" and start_epoch == 0:
        n = calibrate_ranges(model, train_batches, args.calibration_batches)
        if n:
            print(f"calibrated the activation ranges of {n} layers on {args.calibration_batches} training batches")

    if args.stage == "gates":
        for p in model.backbone_parameters():
            p.requires_grad_(False)
        params = model.gate_parameters()
    elif args.freeze_gates:
        for p in model.gate_parameters():
            p.requires_grad_(False)
        params = model.backbone_parameters()
    elif args.stage == "backbone":
        params = model.backbone_parameters()
    elif tracking:
        params = [{"params": model.backbone_parameters()},
                  {"params": model.gate_parameters(), "lr": args.gate_lr or args.lr}]
    else:
        params = list(model.parameters())
    gate_params = model.gate_parameters()
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                                nesterov=True)
    total = args.epochs * steps_per_epoch
    if schedule_name == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * step / total))  # noqa: E731
    else:
        factor = lambda step: 0.1 ** sum(step >= f * total for f in steps_at)  # noqa: E731
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])

    log_path = out.with_suffix(".csv")
    fields = ["stage", "epoch", "lr", "train_loss", "train_accuracy_pct", "train_cost_pct",
              "val_accuracy_pct", "val_computation_pct", "val_cost_pct", "epoch_time_s"]
    if start_epoch == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w", newline="") as handle:
            csv.writer(handle).writerow(fields)

    metrics = {}
    for epoch in range(start_epoch, args.epochs):
        started = time.perf_counter()
        model.train(args.stage != "gates")  # a frozen backbone keeps its BN statistics and ranges
        sums = np.zeros(4)  # loss, correct, cost, inputs
        # Exploration draws from its own generator, seeded per epoch as the batches are, so a resumed run
        # explores exactly as the uninterrupted one.
        explorer = torch.Generator().manual_seed(args.seed * 1_000_003 + epoch) if args.explore else None
        bar = tqdm(train_batches.epoch(epoch), total=steps_per_epoch, disable=not args.progress,
                   desc=f"{args.stage} {epoch + 1}/{args.epochs}", mininterval=10)
        for step, (x, y) in enumerate(bar):
            if step >= steps_per_epoch:
                break
            if controlled:
                set_decision_bias(model, costs, lam)
            loss, correct, cost, gate_fit = _step(model, args, x, y, costs, pinned, explorer)
            if controlled:
                lam += args.controller_gain * (cost - args.budget / 100) / cost_spread
            optimizer.zero_grad(set_to_none=True)
            _backward(loss, gate_fit, gate_params)
            optimizer.step()
            schedule.step()
            sums += (loss.item() * len(y), correct, cost * len(y), len(y))
            bar.set_postfix(loss=f"{sums[0] / sums[3]:.3f}", acc=f"{100 * sums[1] / sums[3]:.1f}",
                            cost=f"{100 * sums[2] / sums[3]:.1f}", refresh=False)
        bar.close()
        force = FULL if args.stage == "backbone" else pinned
        val = summarize(model, predict(model, val_batches, force=force), costs)
        val.setdefault("cost_pct", val["computation_pct"])
        elapsed += time.perf_counter() - started
        row = [args.stage, epoch + 1, optimizer.param_groups[0]["lr"], sums[0] / sums[3], 100 * sums[1] / sums[3],
               100 * sums[2] / sums[3], val["accuracy_pct"], val["computation_pct"], val["cost_pct"],
               round(time.perf_counter() - started, 2)]
        if args.stage == "dfs":
            candidate = {"epoch": epoch + 1, **val}
            if _better(candidate, best, args.budget, args.tolerance):
                best = candidate
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        done = epoch + 1 == args.epochs
        payload = {
            "format": CHECKPOINT_FORMAT, "version": 1, "stage": args.stage, "epoch": epoch + 1, "done": done,
            "config": json.dumps(config.to_dict()), "train": json.dumps(asdict(args)),
            "elapsed_s": elapsed, "stage_times": json.dumps({**prior_times, time_key: round(elapsed, 1)}),
            "commands": json.dumps(prior_commands + [args.command]),
            "state_dict": model.state_dict(), "controller_lambda": lam,
        }
        if cost_info is not None:
            payload["cost"] = json.dumps(cost_info)
        if done:
            finish_started = time.perf_counter()
            if best_state is not None:
                model.load_state_dict(best_state)
            metrics = {"selected_epoch": best["epoch"] if best else epoch + 1}
            if args.stage == "dfs" and pinned is None:
                start = _lambda_of(model, costs)
                final_lam, calibrated = calibrate_budget(model, val_batches, costs, args.budget, start=start)
                metrics.update(decision_bias_lambda=final_lam, val=calibrated)
            else:
                metrics["val"] = val
            test_x, test_y = _load(args, "test")
            test_batches = _eval_batches(test_x, test_y, spec, device, args.eval_limit)
            metrics["test"] = summarize(model, predict(model, test_batches, force=force), costs)
            elapsed += time.perf_counter() - finish_started
            payload.update(state_dict=model.state_dict(), elapsed_s=elapsed, metrics=json.dumps(metrics),
                           stage_times=json.dumps({**prior_times, time_key: round(elapsed, 1)}))
        else:  # a finished checkpoint drops the optimizer state and the candidate copy to stay small
            payload["optimizer"], payload["scheduler"] = optimizer.state_dict(), schedule.state_dict()
            if best_state is not None:
                payload["best_state_dict"], payload["best"] = best_state, json.dumps(best)
        save_checkpoint(out, payload)
        with open(log_path, "a", newline="") as handle:
            csv.writer(handle).writerow([f"{v:.4f}" if isinstance(v, float) else v for v in row])
        print(f"{args.stage} epoch {epoch + 1}/{args.epochs}: train loss {row[3]:.4f} acc {row[4]:.2f}% "
              f"cost {row[5]:.1f}% | val acc {val['accuracy_pct']:.2f}% comp {val['computation_pct']:.1f}% "
              f"cost {val['cost_pct']:.1f}% | {row[9]:.0f}s", flush=True)
    if metrics:
        test = metrics["test"]
        print(f"{args.stage} done: epoch {metrics['selected_epoch']} kept; test acc {test['accuracy_pct']:.2f}% "
              f"comp {test['computation_pct']:.2f}%" + (f" cost {test['cost_pct']:.2f}%" if "cost_pct" in test else ""),
              flush=True)
    return metrics


def _better(candidate: dict, best: dict | None, budget: float | None, tolerance: float) -> bool:
    """Checkpoint selection on the validation split: within tolerance of the budget beats outside it;
    within (or without a budget), higher accuracy wins; outside, closer to the budget wins."""
    def key(entry):
        gap = 0.0 if budget is None else abs(entry["cost_pct"] - budget)
        return (0, -entry["accuracy_pct"]) if gap <= tolerance else (1, gap)
    return best is None or key(candidate) < key(best)


def _lambda_of(model: GatedResNet, costs: torch.Tensor) -> float:
    """The lam that model.decision_bias was set with (0 when the bias is zero)."""
    option_cost = option_cost_scale(costs).to(model.decision_bias.device)
    k = int(torch.argmax(option_cost))
    return float(-model.decision_bias[k] / option_cost[k]) if float(option_cost[k]) > 0 else 0.0


def _lr_steps(text: str) -> list[float]:
    try:
        steps = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError("--lr-steps", None, f"must be fractions like 0.5,0.75, got '{text}'") from None
    require(all(0 < f < 1 for f in steps), "--lr-steps", None, "fractions must lie in (0, 1)")
    return steps


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
              "nested": bool(args.nested), "bn": args.bn or "shared", "gate_init": args.gate_init or "reference",
              "act_range": args.act_range or "reference", "projection": args.projection or "quantized",
              "fixed_bits": args.fixed_bits}
    if args.options is not None:
        config["options"] = parse_options(args.options)
    return GatedResNet(ModelConfig.from_dict(config, "command line"))


def _with_new_gates(model: GatedResNet, args: StageArgs, device) -> GatedResNet:
    """The backbone of `model` under a new option set, gate initialisation or fixed bits, with fresh
    gates (seeded): a full-precision backbone serves any of them."""
    config = model.config.to_dict()
    if args.options is not None:
        config["options"] = parse_options(args.options)
    if args.gate_init is not None:
        config["gate_init"] = args.gate_init
    if args.fixed_bits is not None:
        config["fixed_bits"] = args.fixed_bits
    torch.manual_seed(args.seed)
    fresh = GatedResNet(ModelConfig.from_dict(config, "command line")).to(device)
    gate_keys = {k for k in fresh.state_dict() if k.startswith(("gates.", "lstm.", "gate_fc.", "decision_bias"))}
    backbone = {k: v for k, v in model.state_dict().items() if k not in gate_keys and not k.startswith(
        ("gates.", "lstm.", "gate_fc.", "decision_bias"))}
    missing, unexpected = fresh.load_state_dict(backbone, strict=False)
    require(not unexpected and set(missing) <= gate_keys, args.init, "state_dict",
            "its backbone does not fit the new option set")
    return fresh


def option_harm(model: GatedResNet, x, y, target: str) -> torch.Tensor:
    """Per input, gated block and option [batch, units, options]: what that option in that block, every other
    at the top, does to the input. loss: the cross-entropy; prob: the true class's probability lost, -exp(-CE)
    (bounded, and near zero on inputs the network is sure of either way); kl: KL(top path || this path), how
    far the prediction moves, label-free and largest where the network is unsure, so hard inputs buy bits."""
    logits = model.option_logits(x)
    if target == "kl":
        top = logits[:, :, model.top_index:model.top_index + 1].log_softmax(-1)
        return (top.exp() * (top - logits.log_softmax(-1))).sum(-1)
    labels = y[:, None, None].expand(logits.shape[:-1])
    losses = F.cross_entropy(logits.flatten(0, 2), labels.flatten(), reduction="none").view(labels.shape)
    return losses if target == "loss" else -torch.exp(-losses)


def _step(model: GatedResNet, args: StageArgs, x, y, costs, pinned=None, explorer=None):
    """One stage-specific forward; returns (loss, correct count, batch cost fraction, the gates' own fit loss
    or None): tracking gates (a per-input target in the dfs stage) learn only the fit, the rest only the loss."""
    if pinned is not None:  # a static reference: its options pinned, trained (quantization-aware) on CE alone
        out = model(x, force=pinned, gates=False)
        cost = float(model.computation(out.decisions, costs).mean())
        return F.cross_entropy(out.logits, y), int((out.logits.argmax(1) == y).sum()), cost, None
    if args.stage == "backbone":
        out = model(x, force=FULL, gates=False)
        return F.cross_entropy(out.logits, y), int((out.logits.argmax(1) == y).sum()), 1.0, None
    if args.stage == "gates":
        out = model(x, force=model.top_index)
        gate_logits = out.gate_logits.flatten(0, 1)
        computation = float(model.computation(out.gate_logits.argmax(-1)).mean())
        if args.gate_target in PER_INPUT_TARGETS:
            loss = _gate_fit(out.gate_logits, option_harm(model, x, y, args.gate_target), args)
        # A hinge, not cross-entropy: it stops pushing once the top option leads by the margin, so
        # the gates choose it everywhere without saturating their softmax (stage 3 must move them).
        elif args.gate_target == "ranked":  # and each option leads the next cheaper one by the margin
            ranked = gate_logits[:, model.cost_order]
            loss = F.relu(args.gate_margin - (ranked[:, 1:] - ranked[:, :-1])).sum(1).mean()
        else:
            target = torch.full((len(gate_logits),), model.top_index, device=x.device)
            loss = F.multi_margin_loss(gate_logits, target, margin=args.gate_margin)
        return loss, int((out.logits.argmax(1) == y).sum()), computation, None
    harm = _current_harm(model, args, x, y) if args.gate_target in PER_INPUT_TARGETS else None
    out = model(x, candidates="all", explore=args.explore, generator=explorer)
    gate_fit = None if harm is None else _gate_fit(out.gate_logits[:len(harm)], harm, args)
    p = (out.gate_logits + model.decision_bias).softmax(-1)  # the distribution the decision is the argmax of
    mask = F.one_hot(out.decisions, len(model.options)).to(p.dtype) - p.detach() + p
    soft_cost = (mask * costs).sum(-1).mean()
    cost = float(model.computation(out.decisions, costs).mean())
    sign = -1.0 if 100 * cost <= args.budget else 1.0
    loss = F.cross_entropy(out.logits, y) + args.beta * sign * soft_cost
    return loss, int((out.logits.argmax(1) == y).sum()), cost, gate_fit


def _current_harm(model: GatedResNet, args: StageArgs, x, y) -> torch.Tensor:
    """Tracking gates' target on the first --target-inputs inputs, on the network as it is now. Eval mode, as the
    gates stage computes it, so that the other options' passes leave the batch norms and ranges alone."""
    n = min(args.target_inputs, len(y))
    model.eval()
    with torch.no_grad():
        harm = option_harm(model, x[:n], y[:n], args.gate_target)
    model.train()
    return harm


def _backward(loss, gate_fit, gate_params) -> None:
    """Gradients: tracking gates (gate_fit not None) learn their target alone, and the rest learns the loss."""
    if gate_fit is not None:
        gate_grads = torch.autograd.grad(gate_fit, gate_params, retain_graph=True, allow_unused=True)
    loss.backward()
    if gate_fit is not None:
        for p, grad in zip(gate_params, gate_grads):
            p.grad = grad


def shaped_harm(harm: torch.Tensor, scale: float, shape: str) -> torch.Tensor:
    """The per-input harm the gates regress on. linear: scale * harm. log1p: log(1 + scale * harm), the same
    below 1/scale and compressed above it: KL's per-input tail (a few inputs 100x the median) otherwise drags a
    robust fit to the median, and the small differences that decide a high budget are lost."""
    scaled = scale * harm
    return scaled if shape == "linear" else torch.log1p(scaled.clamp_min(0))


def _gate_fit(gate_logits, harm, args: StageArgs):
    """Each option's logit learns, up to a shift per block, minus the scaled harm its option does to this input
    (see option_harm). Stage 3's decision, argmax(logit - lam * cost), then trades that against cost per input."""
    harm = shaped_harm(harm, args.target_scale, args.target_shape)
    target = -(harm - harm.mean(-1, keepdim=True))
    centred = gate_logits - gate_logits.mean(-1, keepdim=True)
    return F.smooth_l1_loss(centred, target.clamp(-args.loss_clip, args.loss_clip))
