"""Worked example 1: a small CNN with an early exit, recorded as a dfs-sim trace.

Every input runs the stem and an early classifier head. When the head is confident (its top
softmax probability reaches THRESHOLD) the input exits there; otherwise it runs the rest of the
network (a residual block with a depthwise-separable conv) and the final head. The rest is one
unit with two options, "exit" (skip) and "full" (run it at full precision), so a trace says, per
input, whether it paid for the rest.

    python docs/examples/early_exit.py --data tests/data/fashion_mnist_subset.npz -o early_exit.npz
    dfs-sim run --trace early_exit.npz --hw stripes

Trains in a few seconds on the 512-image subset (one CPU thread); `--data` also takes the full
Fashion-MNIST IDX directory (docs/model.md, Data).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dfs_sim.model.data import DATASETS, Batches, load_split
from dfs_sim.model.recorder import Recorder
from dfs_sim.trace import Option

THRESHOLD = 0.7  # exit when the early head's top probability reaches this
OPTIONS = (Option("exit", 0, 0), Option("full", 32, 32, full_precision=True))
SUBSET = Path(__file__).resolve().parents[2] / "tests" / "data" / "fashion_mnist_subset.npz"


def conv_bn(c_in: int, c_out: int, kernel: int = 3, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class Rest(nn.Module):
    """What an input that does not exit still runs: conv, a residual depthwise-separable block, head."""

    def __init__(self, channels: int = 32, width: int = 64, classes: int = 10):
        super().__init__()
        self.expand = conv_bn(channels, width)
        self.depthwise = conv_bn(width, width, 3, groups=width)
        self.pointwise = conv_bn(width, width, 1)
        self.head = nn.Linear(width, classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.expand(h)
        y = self.pointwise(self.depthwise(y)) + y  # residual add: fused into the pointwise conv's write-back
        return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1))


@dataclass
class ExitOutput:
    logits: torch.Tensor  # the early head's for inputs that exited, the final head's for the others
    early: torch.Tensor
    exited: torch.Tensor  # bool per input


class EarlyExitCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(1, 16), nn.MaxPool2d(2), conv_bn(16, 32), nn.MaxPool2d(2))  # 28 -> 7
        self.early_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))
        self.rest = Rest(32, 64, classes)

    def both_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: every input through both heads."""
        h = self.stem(x)
        return self.early_head(h), self.rest(h)

    def forward(self, x: torch.Tensor, threshold: float = THRESHOLD) -> ExitOutput:
        """Inference: inputs whose early head is confident stop there; only the others run the rest."""
        h = self.stem(x)
        early = self.early_head(h)
        exited = early.softmax(1).amax(1) >= threshold
        logits = early.clone()
        if not bool(exited.all()):
            logits[~exited] = self.rest(h[~exited])
        return ExitOutput(logits, early, exited)


def train(model: nn.Module, data: Path, epochs: int = 25, seed: int = 0) -> float:
    """Both heads, jointly (the sum of their cross-entropies); returns the wall time in seconds."""
    torch.manual_seed(seed)
    images, labels = load_split("fashion-mnist", data, "train")
    batches = Batches(images, labels, DATASETS["fashion-mnist"], 64, train=True, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=epochs * len(batches))
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        for x, y in batches.epoch(epoch):
            early, final = model.both_heads(x)
            loss = F.cross_entropy(early, y) + F.cross_entropy(final, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return time.perf_counter() - start


def recorder(model: EarlyExitCNN) -> Recorder:
    """The rest of the network is the one unit; the stem and the early head always run."""
    rec = Recorder(model, (1, 28, 28), OPTIONS, name="early-exit-cnn",
                   description="Fashion-MNIST CNN with an early exit (docs/examples/early_exit.py)",
                   run_all=lambda m, x: m(x, threshold=2.0))  # a threshold no input reaches: every layer runs
    rec.unit("rest", model.rest)
    return rec


def main(out: Path, data: Path = SUBSET, seed: int = 0, threshold: float = THRESHOLD) -> dict:
    """Train, record the test split as a trace at `out`, and return accuracies, exit share and timing."""
    torch.manual_seed(seed)
    model = EarlyExitCNN()
    train_s = train(model, data, seed=seed)
    images, labels = load_split("fashion-mnist", data, "test")
    test = Batches(images, labels, DATASETS["fashion-mnist"], 128, train=False)
    path, summary = recorder(model).record(
        out, test.epoch(), forward=lambda m, x: m(x, threshold=threshold),
        decide=lambda output: (~output.exited).long(),  # 0: exit (skip the rest), 1: run the rest
        predict=lambda output: output.logits.argmax(1),
        provenance={"model": "early-exit CNN", "dataset": "fashion-mnist", "split": "test", "seed": seed,
                    "threshold": threshold, "command": f"python docs/examples/early_exit.py -o {out}",
                    "training_time_s": round(train_s, 1)})
    model.eval()
    with torch.no_grad():
        early = sum(int((model(x, 2.0).early.argmax(1) == y).sum()) for x, y in test.epoch())
        final = sum(int((model(x, 2.0).logits.argmax(1) == y).sum()) for x, y in test.epoch())
    return {"trace": path, "train_s": train_s, "accuracy_pct": summary["accuracy_pct"],
            "early_head_accuracy_pct": 100 * early / len(labels), "final_head_accuracy_pct": 100 * final / len(labels),
            "exit_share_pct": summary["option_shares_pct"]["rest"]["exit"], "n": summary["n"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("early_exit.npz"), help="trace to write")
    parser.add_argument("--data", type=Path, default=SUBSET, help="Fashion-MNIST .npz or IDX directory")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="exit confidence")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = main(args.out, args.data, args.seed, args.threshold)
    print(", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
