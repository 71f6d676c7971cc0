"""Worked example 2: per-input precision chosen by a confidence rule, recorded as a dfs-sim trace.

One quantization-aware CNN runs every input with 2-bit weights and 4-bit activations. When that
cheap pass is unsure (its top softmax probability is below THRESHOLD), the input runs again with
8-bit weights and activations and the 8-bit answer counts. In the layer table the cheap pass is a set
of layers at fixed 2/4 bits (weight/activation) that every input runs, and the re-run is one unit
with the options "sure" (skip) and "8bit".

The two passes share their weights: the model holds the network once and two thin wrappers that
run it at 4 and at 8 bits. Marking the wrappers tells the recorder which call is which pass.

    python docs/examples/confidence_cascade.py --data tests/data/fashion_mnist_subset.npz -o cascade.npz
    dfs-sim run --trace cascade.npz --hw bitfusion

`static_network(model, bits)` records the same network at one precision without the cascade: what
a static 2/4-bit or 8/8-bit deployment costs (`dfs_sim.simulate_network`), to set the cascade against.
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
from dfs_sim.model.quant import QConv2d, fake_quantize
from dfs_sim.model.recorder import Recorder
from dfs_sim.trace import Option
from dfs_sim.workload.network import Network

THRESHOLD = 0.6  # re-run at 8 bits when the cheap pass's top probability is below this
CHEAP_BITS, PRECISE_BITS = (2, 4), (8, 8)  # (weight, activation) bits of each pass
OPTIONS = (Option("sure", 0, 0), Option("8bit", *PRECISE_BITS))
SUBSET = Path(__file__).resolve().parents[2] / "tests" / "data" / "fashion_mnist_subset.npz"


class WAConv(QConv2d):
    """QConv2d (dfs_sim/model/quant.py) with separate weight and activation bits: `bits` = (w, a)."""

    def forward(self, x: torch.Tensor, bits: tuple[int, int]) -> torch.Tensor:
        w_bits, a_bits = bits
        if self.training:
            with torch.no_grad():
                self._update(*self._statistic(x.detach()))
        x = fake_quantize(x, a_bits, self.act_min, self.act_max)
        w_lo, w_hi = torch.aminmax(self.weight.detach())
        return F.conv2d(x, fake_quantize(self.weight, w_bits, w_lo, w_hi), None, self.stride, self.padding)


class QuantCNN(nn.Module):
    """Three quantizable convs and a quantizable classifier, written as a 1x1 conv over the pooled
    features; `bits` = (weight, activation) bits of every layer. Each precision has its own batch
    norm (as DFS's --bn per-option): the two passes' activations differ in scale. At inference a
    batch norm folds into its conv's weights, so it costs nothing either way."""

    def __init__(self, classes: int = 10, precisions=(CHEAP_BITS, PRECISE_BITS)):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = WAConv(1, 16, 3), WAConv(16, 32, 3), WAConv(32, 64, 3)
        self.bn = nn.ModuleDict({_key(bits): nn.ModuleList(nn.BatchNorm2d(c) for c in (16, 32, 64))
                                 for bits in precisions})
        self.classifier = WAConv(64, classes, 1)

    def forward(self, x: torch.Tensor, bits: tuple[int, int]) -> torch.Tensor:
        bn1, bn2, bn3 = self.bn[_key(bits)]
        x = F.max_pool2d(F.relu(bn1(self.conv1(x, bits))), 2)  # 28 -> 14
        x = F.max_pool2d(F.relu(bn2(self.conv2(x, bits))), 2)  # 14 -> 7
        x = F.relu(bn3(self.conv3(x, bits)))
        return self.classifier(x.mean((2, 3), keepdim=True), bits).flatten(1)


def _key(bits: tuple[int, int]) -> str:
    return f"w{bits[0]}a{bits[1]}"


class AtBits(nn.Module):
    """The shared network run at fixed bits: one wrapper per pass."""

    def __init__(self, net: QuantCNN, bits: tuple[int, int]):
        super().__init__()
        self.net, self.bits = net, bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.bits)


@dataclass
class CascadeOutput:
    logits: torch.Tensor  # the 8-bit answer where the input was re-run, the cheap one elsewhere
    cheap: torch.Tensor
    rerun: torch.Tensor  # bool per input


class Cascade(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = QuantCNN(classes)
        self.cheap = AtBits(self.net, CHEAP_BITS)
        self.precise = AtBits(self.net, PRECISE_BITS)

    def forward(self, x: torch.Tensor, threshold: float = THRESHOLD) -> CascadeOutput:
        cheap = self.cheap(x)
        rerun = cheap.softmax(1).amax(1) < threshold
        logits = cheap.clone()
        if bool(rerun.any()):
            logits[rerun] = self.precise(x[rerun])
        return CascadeOutput(logits, cheap, rerun)


def train(model: Cascade, data: Path, epochs: int = 25, seed: int = 0) -> float:
    """Quantization-aware training of the shared weights at both precisions (the sum of the two
    passes' cross-entropies); returns the wall time in seconds."""
    torch.manual_seed(seed)
    images, labels = load_split("fashion-mnist", data, "train")
    batches = Batches(images, labels, DATASETS["fashion-mnist"], 64, train=True, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=epochs * len(batches))
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        for x, y in batches.epoch(epoch):
            loss = F.cross_entropy(model.cheap(x), y) + F.cross_entropy(model.precise(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return time.perf_counter() - start


def recorder(model: Cascade) -> Recorder:
    """The cheap pass at fixed bits, the 8-bit re-run as the unit; the classifier recorded as fc."""
    rec = Recorder(model, (1, 28, 28), OPTIONS, name="confidence-cascade-cnn",
                   description="Fashion-MNIST CNN: a 2/4-bit pass, re-run at 8/8 bits when unsure "
                               "(docs/examples/confidence_cascade.py)",
                   run_all=lambda m, x: m(x, threshold=2.0))  # every input unsure: both passes run
    rec.fixed(model.cheap, w_bits=CHEAP_BITS[0], a_bits=CHEAP_BITS[1])
    rec.unit("rerun", model.precise)
    rec.kind(model.net.classifier, "fc")
    return rec


def static_network(model: Cascade, bits: tuple[int, int]) -> Network:
    """The same network at one precision for every input, without the cascade: the static reference."""
    rec = Recorder(model.net, (1, 28, 28), name=f"quant-cnn-{bits[0]}-{bits[1]}bit", run_all=lambda m, x: m(x, bits))
    rec.fixed(model.net, w_bits=bits[0], a_bits=bits[1])
    rec.kind(model.net.classifier, "fc")
    return rec.network()


def main(out: Path, data: Path = SUBSET, seed: int = 0, threshold: float = THRESHOLD) -> dict:
    """Train, record the test split as a trace at `out`, and return accuracies, re-run share, timing
    and the model (for static references)."""
    torch.manual_seed(seed)
    model = Cascade()
    train_s = train(model, data, seed=seed)
    images, labels = load_split("fashion-mnist", data, "test")
    test = Batches(images, labels, DATASETS["fashion-mnist"], 128, train=False)
    path, summary = recorder(model).record(
        out, test.epoch(), forward=lambda m, x: m(x, threshold=threshold),
        decide=lambda output: output.rerun.long(),  # 0: sure after the cheap pass, 1: re-run at 8 bits
        predict=lambda output: output.logits.argmax(1),
        provenance={"model": "confidence cascade CNN (2/4-bit pass, 8/8-bit re-run)", "dataset": "fashion-mnist",
                    "split": "test", "seed": seed, "threshold": threshold,
                    "command": f"python docs/examples/confidence_cascade.py -o {out}",
                    "training_time_s": round(train_s, 1)})
    model.eval()
    correct = {CHEAP_BITS: 0, PRECISE_BITS: 0}
    with torch.no_grad():
        for x, y in test.epoch():
            for bits in correct:
                correct[bits] += int((model.net(x, bits).argmax(1) == y).sum())
    return {"trace": path, "model": model, "train_s": train_s, "accuracy_pct": summary["accuracy_pct"],
            "accuracy_cheap_pct": 100 * correct[CHEAP_BITS] / len(labels),
            "accuracy_8bit_pct": 100 * correct[PRECISE_BITS] / len(labels),
            "rerun_share_pct": summary["option_shares_pct"]["rerun"]["8bit"], "n": summary["n"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("cascade.npz"), help="trace to write")
    parser.add_argument("--data", type=Path, default=SUBSET, help="Fashion-MNIST .npz or IDX directory")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="re-run below this confidence")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = main(args.out, args.data, args.seed, args.threshold)
    print(", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
                    if k != "model"))
