"""The DFS gated CIFAR ResNet (basic blocks, widths 16/32/64).

The stem, block 1 and the classifier always run at full precision. Every later block is gated:
its gate reads the previous block's output (global average pool -> per-block 1x1 conv C->10 ->
one step of a shared LSTM(10, 10) -> shared Linear(10 -> options) -> softmax) and picks one
option by hard argmax. Gradients reach the gate through a straight-through estimator,
mask = hard - p.detach() + p, whose forward value is exactly the hard one-hot.

A downsampling block's 1x1 projection runs at the block's bitwidth when the block runs
(`projection="quantized"`, as the reference's `downsample(x, bit)`) and at full precision when it
is skipped.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dfs_sim.errors import InputError, require
from dfs_sim.model.quant import ACT_RANGES, QConv2d, QLinear
from dfs_sim.trace import Option, default_options, options_from_list
from dfs_sim.workload.resnet import GATE_HIDDEN, arch_name

BN_POLICIES = ("shared", "per-option")
GATE_INITS = ("reference", "pytorch")
PROJECTIONS = ("quantized", "full")
FULL = "full"  # forward(force=FULL): every gated block at full precision, whatever the option set
# What a checkpoint written before these choices existed used (its config lacks the keys).
LEGACY_RECIPE = {"gate_init": "pytorch", "act_range": "batch", "projection": "full"}


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
    gate_init: str = "reference"  # the reference's normal(0, sqrt(2/n)) gate weights, or PyTorch's defaults
    act_range: str = "reference"  # how training tracks activation ranges (dfs_sim.model.quant.QConv2d)
    projection: str = "quantized"  # a downsampling projection at the block's bits, or always full
    fixed_bits: int | None = None  # the layers no gate decides (stem, block 1, classifier, a skipped block's
    #                                projection) run at this many bits; None: at full precision

    @property
    def arch(self) -> str:
        return arch_name(self.depths)

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
        for key, allowed in (("bn", BN_POLICIES), ("gate_init", GATE_INITS), ("act_range", ACT_RANGES),
                             ("projection", PROJECTIONS)):
            require(getattr(self, key) in allowed, source, f"config.{key}", f"must be one of {', '.join(allowed)}")
        options = self.option_objects()
        require(sum(o.full_precision for o in options) <= 1, source, "config.options",
                "may hold at most one full-precision option")
        require(any(not o.is_skip for o in options), source, "config.options",
                "needs an option that runs the block (stage 2 trains the gates toward the most expensive one)")
        for i, o in enumerate(options):
            require(o.weight_bits == o.act_bits, source, f"config.options[{i}]",
                    "DFS quantizes weights and activations to the same bitwidth")
        require(self.fixed_bits is None or (isinstance(self.fixed_bits, int) and 1 <= self.fixed_bits <= 31), source,
                "config.fixed_bits", "must be null or a bitwidth in [1, 31]")
        require(self.fixed_bits is None or self.projection == "quantized", source, "config.fixed_bits",
                "needs quantized projections (a skipped block's projection runs at fixed_bits)")


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
    def __init__(self, c_in: int, c_out: int, stride: int, n_bn: int, act_range: str, projection: str):
        super().__init__()
        self.conv1 = QConv2d(c_in, c_out, 3, stride, act_range)
        self.bn1 = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(n_bn))
        self.conv2 = QConv2d(c_out, c_out, 3, 1, act_range)
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(n_bn))
        self.quantized_projection = projection == "quantized"
        self.proj = None
        if stride != 1 or c_in != c_out:
            conv = QConv2d(c_in, c_out, 1, stride, act_range) if self.quantized_projection else \
                nn.Conv2d(c_in, c_out, 1, stride, bias=False)
            self.proj = nn.Sequential(conv, nn.BatchNorm2d(c_out))

    def shortcut(self, x: torch.Tensor, bits: int | None = None, top_bits: int | None = None) -> torch.Tensor:
        """The residual path: identity, or the projection + BN, at `bits` when the projection is
        quantized (a skipped block's shortcut runs at full precision: bits None)."""
        if self.proj is None:
            return x
        if not self.quantized_projection:
            return self.proj(x)
        return self.proj[1](self.proj[0](x, bits, top_bits))

    def execute(self, x, shortcut, bits=None, top_bits=None, bn=0):
        out = F.relu(self.bn1[bn](self.conv1(x, bits, top_bits)))
        out = self.bn2[bn](self.conv2(out, bits, top_bits))
        return F.relu(out + shortcut)


class GateEmbed(nn.Module):
    """The per-block part of a gate: global average pool and a 1x1 conv C -> 10."""

    def __init__(self, channels: int, init: str):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Conv2d(channels, GATE_HIDDEN, 1)
        if init == "reference":  # normal(0, sqrt(2 / (k*k*out))), the reference's conv init
            nn.init.normal_(self.embed.weight, 0.0, math.sqrt(2.0 / GATE_HIDDEN))

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
        self.costs_list = [o.computation_cost for o in self.options]
        # Options from the cheapest to full precision, else the most expensive one: stage 2 trains the gates
        # toward the last (the top option), or to keep this order (--gate-target ranked).
        self.cost_order = sorted(range(len(self.options)), key=lambda k: (self.options[k].full_precision,
                                                                          self.costs_list[k]))
        self.top_index = self.cost_order[-1]
        executed = [k for k, o in enumerate(self.options) if not o.is_skip]
        widest = max((o.weight_bits for o in self.options if not (o.is_skip or o.full_precision)), default=None)
        bn_of = (lambda k: executed.index(k)) if config.bn == "per-option" else (lambda k: 0)
        # Per option: None for skip, else (bits or None for full, nested top bits, BN index).
        self.plan = []
        for k, o in enumerate(self.options):
            if o.is_skip:
                self.plan.append(None)
                continue
            bits = None if o.full_precision else o.weight_bits
            top = widest if (config.nested and bits is not None) else None
            self.plan.append((bits, top, bn_of(k)))
        full = next((k for k, o in enumerate(self.options) if o.full_precision), None)
        self.full_plan = (None, None, 0 if full is None else bn_of(full))
        self.register_buffer("costs", torch.tensor(self.costs_list), persistent=False)
        # Added to the gate logits before the argmax; set by the budget controller
        # (dfs_sim.model.train.calibrate_budget), zero while training.
        self.register_buffer("decision_bias", torch.zeros(len(self.options)))

        n_bn = len(executed) if config.bn == "per-option" else 1
        width = config.widths[0]
        self.stem = QConv2d(config.in_channels, width, 3, 1, config.act_range)
        self.stem_bn = nn.BatchNorm2d(width)
        self.blocks = nn.ModuleList()
        self.gates = nn.ModuleList()
        channels = width
        for stage, (depth, width) in enumerate(zip(config.depths, config.widths)):
            for j in range(depth):
                if self.blocks:
                    self.gates.append(GateEmbed(channels, config.gate_init))
                self.blocks.append(BasicBlock(channels, width, 2 if stage > 0 and j == 0 else 1, n_bn,
                                              config.act_range, config.projection))
                channels = width
        self.lstm = nn.LSTMCell(GATE_HIDDEN, GATE_HIDDEN)  # shared by all gates
        self.gate_fc = nn.Linear(GATE_HIDDEN, len(self.options))
        if config.gate_init == "reference":  # normal(0, sqrt(2 / (out*in))), the reference's Linear init
            nn.init.normal_(self.gate_fc.weight, 0.0, math.sqrt(2.0 / (len(self.options) * GATE_HIDDEN)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = QLinear(channels, config.num_classes, config.act_range)
        for m in [self.stem, *self.blocks.modules()]:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def n_units(self) -> int:
        return len(self.gates)

    @property
    def full_index(self) -> int | None:
        """The full-precision option, if the option set has one."""
        return next((k for k, o in enumerate(self.options) if o.full_precision), None)

    def backbone_parameters(self):
        gate_ids = {id(p) for p in self.gate_parameters()}
        return [p for p in self.parameters() if id(p) not in gate_ids]

    def gate_parameters(self):
        return [*self.gates.parameters(), *self.lstm.parameters(), *self.gate_fc.parameters()]

    def forward(self, x: torch.Tensor, *, candidates: str = "chosen", force=None, gates: bool = True,
                explore: float = 0.0, generator: torch.Generator | None = None) -> Output:
        """Run the network.

        candidates="chosen" runs, per block, only the option each input chose (inputs grouped
        by decision); "all" runs every option and mixes them with the (straight-through) mask,
        which training needs so that the gate sees a gradient for every option. `force` pins
        every gated block to one option index, to a per-block list of option indices, or (FULL)
        to full precision whatever the option set (decisions then read -1); gates=False skips
        the gates (only with force).

        `explore` (training, candidates="all"): each input's block runs, with this probability, an option
        drawn uniformly from the set (from `generator`) instead of the gate's choice, so every option's
        path trains even where the gates never choose it; the returned decisions stay the gates' own.
        """
        require(candidates in ("chosen", "all"), "forward", "candidates", "must be 'chosen' or 'all'")
        require(gates or force is not None, "forward", "gates", "the gates may only be left out with force")
        require(force != FULL or candidates == "chosen", "forward", "force", "full precision runs chosen-only")
        require(explore == 0 or (candidates == "all" and force is None), "forward", "explore",
                "exploration mixes every candidate under the gates' decisions")
        fixed = None if force == FULL else self.config.fixed_bits  # what the undecided layers run at
        x = self._stem(x, fixed)
        batch, state = x.shape[0], None
        all_logits, decisions = [], []
        for unit, block in enumerate(self.blocks[1:]):
            logits = None
            if gates:
                state = self.lstm(self.gates[unit](x), state)  # zero state at the first gate
                logits = self.gate_fc(state[0])
                all_logits.append(logits)
            if force == FULL:
                decisions.append(torch.full((batch,), -1, dtype=torch.long, device=x.device))
                x = block.execute(x, block.shortcut(x), *self.full_plan)
                continue
            if force is not None:
                pinned = force[unit] if isinstance(force, (list, tuple)) else force
                choice = torch.full((batch,), pinned, dtype=torch.long, device=x.device)
            else:
                choice = (logits + self.decision_bias).argmax(1)
            decisions.append(choice)
            if explore:
                drawn = torch.randint(len(self.options), (batch,), generator=generator).to(x.device)
                flip = (torch.rand(batch, generator=generator) < explore).to(x.device)
                choice = torch.where(flip, drawn, choice)
            if candidates == "all":
                mask = F.one_hot(choice, len(self.options)).to(x.dtype)
                if force is None and torch.is_grad_enabled():
                    p = logits.softmax(1)
                    mask = mask - p.detach() + p
                x = self._run_all(block, x, mask)
            else:
                x = self._run_chosen(block, x, choice)
        stacked = torch.stack(all_logits, 1) if all_logits else None
        return Output(self._head(x, fixed), torch.stack(decisions, 1), stacked)

    def _stem(self, x: torch.Tensor, fixed) -> torch.Tensor:
        """The undecided front: the stem conv and the first (ungated) block, at `fixed` bits."""
        x = F.relu(self.stem_bn(self.stem(x, fixed)))
        return self.blocks[0].execute(x, self.blocks[0].shortcut(x, fixed), fixed)

    def _head(self, x: torch.Tensor, fixed) -> torch.Tensor:
        """The classifier's logits from the last block's features, at `fixed` bits."""
        return self.fc(self.pool(x).flatten(1), fixed)

    @torch.no_grad()
    def option_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per input, gated block and option [batch, units, options, classes]: the classifier's logits with that
        block at that option and every other gated block at the top option. Blocks before the changed one are
        run once; each (block, option) pair reruns only the blocks after it."""
        fixed = self.config.fixed_bits
        h = self._stem(x, fixed)
        inputs = []
        for block in self.blocks[1:]:
            inputs.append(h)
            h = self._run(block, self.top_index, h)

        def logits_from(unit, h):
            for block in self.blocks[unit + 1:]:
                h = self._run(block, self.top_index, h)
            return self._head(h, fixed)

        top = logits_from(self.n_units, h)
        logits = top[:, None, None].repeat(1, self.n_units, len(self.options), 1)
        for unit, block_input in enumerate(inputs):
            for k in range(len(self.options)):
                if k != self.top_index:
                    logits[:, unit, k] = logits_from(unit + 1, self._run(self.blocks[unit + 1], k, block_input))
        return logits

    def _run(self, block, k, x, shortcuts=None):
        """Option k on x. A skip outputs the shortcut at `fixed_bits` (full precision by default); a
        b-bit option runs its projection at b bits. `shortcuts` caches them by bits for _run_all."""
        plan = self.plan[k]
        bits, top = (self.config.fixed_bits, None) if plan is None else plan[:2]
        if shortcuts is not None and (bits, top) in shortcuts:
            shortcut = shortcuts[bits, top]
        else:
            shortcut = block.shortcut(x, bits, top)
            if shortcuts is not None:
                shortcuts[bits, top] = shortcut
        return shortcut if plan is None else block.execute(x, shortcut, *plan)

    def _run_all(self, block, x, mask):
        shortcuts, out = {}, 0
        for k in range(len(self.options)):
            out = out + mask[:, k, None, None, None] * self._run(block, k, x, shortcuts)
        return out

    def _run_chosen(self, block, x, choice):
        present = torch.unique(choice).tolist()
        if len(present) == 1:
            return self._run(block, present[0], x)
        out = None
        for k in present:
            index = (choice == k).nonzero().squeeze(1)
            # Advanced indexing and in-place index_copy_ keep channels_last (index_select and
            # out-of-place index_copy would return NCHW and force layout copies downstream).
            y = self._run(block, k, x[index])
            if out is None:
                fmt = torch.channels_last if y.is_contiguous(memory_format=torch.channels_last) and \
                    not y.is_contiguous() else torch.contiguous_format
                out = torch.empty((x.shape[0], *y.shape[1:]), dtype=y.dtype, device=y.device, memory_format=fmt)
            out.index_copy_(0, index, y)
        return out

    def computation(self, decisions: torch.Tensor, costs: torch.Tensor | None = None) -> torch.Tensor:
        """Per-input mean over gated blocks of the chosen option's cost: the proxy (b/32)^2 by
        default, or `costs` [units, options]; a full-precision run (-1) costs 1."""
        if costs is None:
            chosen = self.costs[decisions.clamp_min(0)]
        else:
            chosen = costs.gather(1, decisions.clamp_min(0).T).T
        return torch.where(decisions < 0, torch.ones_like(chosen), chosen).mean(1)


def resolve_force(model: GatedResNet, text: str, flag: str = "--force"):
    """Option indices from '8bit' / 'full' / '8' (every gated block) or one per block, '8,8,4,skip,...'."""
    def index(name: str) -> int:
        for k, option in enumerate(model.options):
            if name == option.name or (name.isdigit() and not option.full_precision
                                       and option.weight_bits == int(name)):
                return k
        raise InputError(flag, None, f"unknown option '{name}' (this model has "
                                     f"{', '.join(o.name for o in model.options)})")

    indices = [index(token.strip()) for token in text.split(",")]
    if len(indices) == 1:
        return indices[0]
    require(len(indices) == model.n_units, flag, None,
            f"gives {len(indices)} options: give one, or one per gated block ({model.n_units})")
    return indices


_BN_KEY = re.compile(r"^(.*\.bn[12])\.(\d+)\.(.*)$")


def load_weights(model: GatedResNet, state_dict: dict) -> None:
    """Load a state_dict strictly; a shared-BN checkpoint fills every per-option BN."""
    state_dict = dict(state_dict)
    # Older checkpoints: no decision bias, and a plain conv stem and linear classifier (no input range).
    fresh = model.state_dict()
    for key in ("decision_bias", *(f"{m}.{b}" for m in ("stem", "fc") for b in ("act_min", "act_max", "act_seen"))):
        state_dict.setdefault(key, fresh[key].clone())
    for key in model.state_dict():
        match = _BN_KEY.match(key)
        if key not in state_dict and match and f"{match[1]}.0.{match[3]}" in state_dict:
            state_dict[key] = state_dict[f"{match[1]}.0.{match[3]}"].clone()
    model.load_state_dict(state_dict, strict=True)
