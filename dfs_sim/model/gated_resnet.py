"""The DFS gated CIFAR ResNet (basic blocks, widths 16/32/64).

The stem, block 1 and the classifier always run at full precision. Every later block is gated:
its gate reads the previous block's output (global average pool -> per-block 1x1 conv C->10 ->
one step of a shared LSTM(10, 10) -> shared Linear(10 -> options) -> softmax) and picks one
option by hard argmax. Gradients reach the gate through a straight-through estimator,
mask = hard - p.detach() + p, whose forward value is exactly the hard one-hot.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dfs_sim.errors import InputError, require
from dfs_sim.model.quant import QConv2d
from dfs_sim.trace import Option, default_options, options_from_list
from dfs_sim.workload.resnet import ARCHITECTURES, GATE_HIDDEN

BN_POLICIES = ("shared", "per-option")


@dataclass
class ModelConfig:
    depths: tuple[int, ...] = (3, 3, 3)
    widths: tuple[int, ...] = (16, 32, 64)
    in_channels: int = 3
    input_size: int = 32
    num_classes: int = 10
    options: list[dict] = field(default_factory=lambda: [o.to_dict() for o in default_options()])
    nested: bool = False  # b-bit codes are the top b bits of the widest code
    bn: str = "shared"  # one BN per conv for all bitwidths (as the reference), or one per option

    @property
    def arch(self) -> str:
        return next((k for k, v in ARCHITECTURES.items() if v == tuple(self.depths)),
                    f"resnet{2 + 2 * sum(self.depths)}")

    def option_objects(self) -> tuple[Option, ...]:
        return options_from_list(self.options, "model config", "options")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["depths"], out["widths"] = list(self.depths), list(self.widths)
        return out

    @classmethod
    def from_dict(cls, data: dict, source: object = "model config") -> "ModelConfig":
        require(isinstance(data, dict), source, "config", "must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(source, f"config.{sorted(unknown)[0]}", "unknown key")
        config = cls(**data)
        config.depths, config.widths = tuple(config.depths), tuple(config.widths)
        config.validate(source)
        return config

    def validate(self, source: object = "model config") -> None:
        require(len(self.depths) == len(self.widths) and all(d >= 1 for d in self.depths), source,
                "config.depths", "needs one positive depth per stage width")
        require(self.bn in BN_POLICIES, source, "config.bn", f"must be one of {', '.join(BN_POLICIES)}")
        options = self.option_objects()
        require(sum(o.full_precision for o in options) == 1, source, "config.options",
                "needs exactly one full-precision option (stage 2 trains the gates toward it)")
        for i, o in enumerate(options):
            require(o.weight_bits == o.act_bits, source, f"config.options[{i}]",
                    "DFS quantizes weights and activations to the same bitwidth")


def parse_options(text: str, source: object = "--options") -> list[dict]:
    """'skip,8,16,full' -> option dicts (skip, b-bit for each integer b, full precision)."""
    options = []
    for token in (t.strip() for t in text.split(",")):
        if token == "skip":
            options.append(Option("skip", 0, 0))
        elif token == "full":
            options.append(Option("full", 32, 32, True))
        elif token.isdigit() and 1 <= int(token) <= 31:
            options.append(Option(f"{int(token)}bit", int(token), int(token)))
        else:
            raise InputError(source, None, f"unknown option '{token}' (use skip, full or a bitwidth 1..31)")
    dicts = [o.to_dict() for o in options]
    options_from_list(dicts, source)  # uniqueness and range checks
    return dicts


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, n_bn: int):
        super().__init__()
        self.conv1 = QConv2d(c_in, c_out, 3, stride)
        self.bn1 = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(n_bn))
        self.conv2 = QConv2d(c_out, c_out, 3)
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(n_bn))
        self.proj = None
        if stride != 1 or c_in != c_out:
            self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """What a skipped block outputs: identity, or the full-precision projection + BN."""
        return x if self.proj is None else self.proj(x)

    def execute(self, x, shortcut, bits=None, top_bits=None, bn=0):
        out = F.relu(self.bn1[bn](self.conv1(x, bits, top_bits)))
        out = self.bn2[bn](self.conv2(out, bits, top_bits))
        return F.relu(out + shortcut)


class GateEmbed(nn.Module):
    """The per-block part of a gate: global average pool and a 1x1 conv C -> 10."""

    def __init__(self, channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Conv2d(channels, GATE_HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.pool(x)).flatten(1)


@dataclass
class Output:
    logits: torch.Tensor
    decisions: torch.Tensor  # [batch, gated blocks] option indices
    gate_logits: torch.Tensor | None  # [batch, gated blocks, options], None when gates did not run


class GatedResNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.options = config.option_objects()
        self.full_index = next(k for k, o in enumerate(self.options) if o.full_precision)
        executed = [k for k, o in enumerate(self.options) if not o.is_skip]
        widest = max((o.weight_bits for o in self.options if not (o.is_skip or o.full_precision)), default=None)
        # Per option: None for skip, else (bits or None for full, nested top bits, BN index).
        self.plan = []
        for k, o in enumerate(self.options):
            if o.is_skip:
                self.plan.append(None)
                continue
            bits = None if o.full_precision else o.weight_bits
            top = widest if (config.nested and bits is not None) else None
            self.plan.append((bits, top, executed.index(k) if config.bn == "per-option" else 0))
        self.register_buffer("costs", torch.tensor([o.computation_cost for o in self.options]), persistent=False)

        n_bn = len(executed) if config.bn == "per-option" else 1
        width = config.widths[0]
        self.stem = nn.Conv2d(config.in_channels, width, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        self.blocks = nn.ModuleList()
        self.gates = nn.ModuleList()
        channels = width
        for stage, (depth, width) in enumerate(zip(config.depths, config.widths)):
            for j in range(depth):
                if self.blocks:
                    self.gates.append(GateEmbed(channels))
                self.blocks.append(BasicBlock(channels, width, 2 if stage > 0 and j == 0 else 1, n_bn))
                channels = width
        self.lstm = nn.LSTMCell(GATE_HIDDEN, GATE_HIDDEN)  # shared by all gates
        self.gate_fc = nn.Linear(GATE_HIDDEN, len(self.options))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, config.num_classes)
        for m in [self.stem, *self.blocks.modules()]:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def n_units(self) -> int:
        return len(self.gates)

    def backbone_parameters(self):
        gate_ids = {id(p) for p in self.gate_parameters()}
        return [p for p in self.parameters() if id(p) not in gate_ids]

    def gate_parameters(self):
        return [*self.gates.parameters(), *self.lstm.parameters(), *self.gate_fc.parameters()]

    def forward(self, x: torch.Tensor, *, candidates: str = "chosen", force: int | None = None,
                gates: bool = True) -> Output:
        """Run the network.

        candidates="chosen" runs, per block, only the option each input chose (inputs grouped
        by decision); "all" runs every option and mixes them with the (straight-through) mask,
        which training needs so that the gate sees a gradient for every option. `force` pins
        every gated block to one option index; gates=False skips the gates (only with force).
        """
        require(candidates in ("chosen", "all"), "forward", "candidates", "must be 'chosen' or 'all'")
        require(gates or force is not None, "forward", "gates", "the gates may only be left out with force")
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.blocks[0].execute(x, self.blocks[0].shortcut(x))
        batch, state = x.shape[0], None
        all_logits, decisions = [], []
        for unit, block in enumerate(self.blocks[1:]):
            logits = None
            if gates:
                state = self.lstm(self.gates[unit](x), state)  # zero state at the first gate
                logits = self.gate_fc(state[0])
                all_logits.append(logits)
            if force is not None:
                choice = torch.full((batch,), force, dtype=torch.long, device=x.device)
            else:
                choice = logits.argmax(1)
            decisions.append(choice)
            if candidates == "all":
                mask = F.one_hot(choice, len(self.options)).to(x.dtype)
                if force is None and torch.is_grad_enabled():
                    p = logits.softmax(1)
                    mask = mask - p.detach() + p
                x = self._run_all(block, x, mask)
            else:
                x = self._run_chosen(block, x, choice)
        logits = self.fc(self.pool(x).flatten(1))
        stacked = torch.stack(all_logits, 1) if all_logits else None
        return Output(logits, torch.stack(decisions, 1), stacked)

    def _run(self, block, k, x, shortcut):
        plan = self.plan[k]
        return shortcut if plan is None else block.execute(x, shortcut, *plan)

    def _run_all(self, block, x, mask):
        shortcut = block.shortcut(x)
        out = 0
        for k in range(len(self.options)):
            out = out + mask[:, k, None, None, None] * self._run(block, k, x, shortcut)
        return out

    def _run_chosen(self, block, x, choice):
        shortcut = block.shortcut(x)
        present = torch.unique(choice).tolist()
        if len(present) == 1:
            return self._run(block, present[0], x, shortcut)
        out = None
        for k in present:
            index = (choice == k).nonzero().squeeze(1)
            # Advanced indexing and in-place index_copy_ keep channels_last (index_select and
            # out-of-place index_copy would return NCHW and force layout copies downstream).
            y = self._run(block, k, x[index], shortcut[index])
            if out is None:
                fmt = torch.channels_last if y.is_contiguous(memory_format=torch.channels_last) and \
                    not y.is_contiguous() else torch.contiguous_format
                out = torch.empty((x.shape[0], *y.shape[1:]), dtype=y.dtype, device=y.device, memory_format=fmt)
            out.index_copy_(0, index, y)
        return out

    def computation(self, decisions: torch.Tensor) -> torch.Tensor:
        """Per-input computation fraction: mean over gated blocks of the chosen option's cost."""
        return self.costs[decisions].mean(1)


_BN_KEY = re.compile(r"^(.*\.bn[12])\.(\d+)\.(.*)$")


def load_weights(model: GatedResNet, state_dict: dict) -> None:
    """Load a state_dict strictly; a shared-BN checkpoint fills every per-option BN."""
    state_dict = dict(state_dict)
    for key in model.state_dict():
        match = _BN_KEY.match(key)
        if key not in state_dict and match and f"{match[1]}.0.{match[3]}" in state_dict:
            state_dict[key] = state_dict[f"{match[1]}.0.{match[3]}"].clone()
    model.load_state_dict(state_dict, strict=True)
