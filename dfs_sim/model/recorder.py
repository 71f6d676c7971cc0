"""Record any PyTorch model as a dfs-sim network and its per-input decisions as a v1 trace.

The layer table is derived by running the model once (on one all-zero input, along a path that
executes every layer: `run_all`) with forward hooks on every module and a torch function mode that
sees every torch operation the model calls outside its layers:

- layers the cost model costs: `nn.Conv2d` (grouped and depthwise included) and `F.conv2d`,
  `nn.Linear`/`F.linear`, `nn.LSTMCell` (one step), max and average pooling (modules, functions,
  and `x.mean((2, 3))` as a global average pool);
- free: what an inference accelerator folds into the weights or fuses into the write-back of the
  layer that produced the map: batch norm, activation functions, dropout, reshapes, indexing,
  residual adds and other elementwise arithmetic, and the bookkeeping a dynamic model does on
  small tensors (argmax, softmax, comparisons, indexing by decision);
- anything else (attention, matmul, transposed or 1-d/3-d convolutions, normalisations that compute
  statistics at run time, interpolation, embeddings, recurrent sequence layers, unknown ops) is
  refused with an InputError naming the layer and the op: the cost model cannot cost it, and a
  layer table without it would understate the cost.

The user marks the units whose precision varies per input (`unit`), and optionally layers that
follow a unit but run at full precision when it is skipped (`shortcut`), always run at full
precision (`full`, the default) or run at fixed bits (`fixed`). Decisions come from a function of
the model's output (its gating outputs, an exit flag, a confidence rule). While the model runs over
a dataset, the recorder counts the non-zero share of every feature map where a layer reads it, and
checks that each layer ran for exactly the inputs the decisions say.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from dfs_sim.errors import InputError, require
from dfs_sim.trace import Option, write_trace
from dfs_sim.workload.network import LAYER_KINDS, MAX_BITS, Layer, Network, check_layer

FULL_OPTION = Option("full", 32, 32, True)
_INPUT = -1  # producer tag of the network's input

# Leaf modules: the layers the cost model costs, and those folded or fused into them.
_LAYER_MODULES = (nn.Conv2d, nn.Linear, nn.LSTMCell, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                  nn.AdaptiveMaxPool2d)
_FUSED_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU,
                  nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid,
                  nn.Tanh, nn.Softplus, nn.Softmax, nn.LogSoftmax)
_FREE_MODULES = _FUSED_MODULES + (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.Flatten, nn.Unflatten)

# Torch operations (by name, without a trailing in-place underscore) that cost nothing on an
# accelerator: fused into the producing layer's write-back, folded into weights, or bookkeeping.
_FREE_OPS = frozenset("""
    add sub rsub mul div true_divide floor_divide neg abs pow exp log sqrt rsqrt reciprocal square
    sigmoid tanh relu relu6 leaky_relu hardtanh hardswish hardsigmoid silu gelu elu selu celu softplus mish prelu
    clamp clip clamp_min clamp_max round floor ceil trunc sign where maximum minimum lerp addcmul addcdiv
    batch_norm dropout dropout2d alpha_dropout feature_alpha_dropout softmax log_softmax
    __add__ __radd__ __iadd__ __sub__ __rsub__ __isub__ __mul__ __rmul__ __imul__ __truediv__ __rtruediv__
    __itruediv__ __floordiv__ __neg__ __pos__ __abs__ __pow__ __rpow__ __mod__ __and__ __or__ __xor__ __invert__
    __iand__ __ior__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __bool__ __len__ __iter__ __index__ __int__
    __float__ __format__ __repr__ __hash__ __contains__ __getitem__ __setitem__ __get__ __set__ __array__
    __reversed__ __deepcopy__ __reduce_ex__
    view view_as reshape reshape_as flatten unflatten squeeze unsqueeze permute transpose t contiguous expand
    expand_as repeat cat concat concatenate stack hstack vstack split chunk unbind narrow select index_select
    gather scatter masked_fill masked_select masked_scatter nonzero unique index_copy index_put index_add
    index_fill one_hot pad clone detach to type type_as float half double long int bool short byte char
    cpu cuda size dim ndimension numel nelement is_contiguous is_floating_point data_ptr item tolist numpy
    element_size stride storage_offset requires_grad register_hook retain_grad get_device
    new_zeros new_empty new_full new_ones new_tensor zeros_like ones_like empty_like full_like rand_like randn_like
    zeros ones empty full arange linspace tensor as_tensor from_numpy empty_strided
    argmax argmin topk sort argsort all any count_nonzero eq ne lt le gt ge isfinite isnan isinf
    logical_and logical_or logical_not logical_xor bitwise_and bitwise_or bitwise_not bitwise_xor
    copy fill zero normal uniform bernoulli random exponential multinomial rand randn randint randperm
    broadcast_to broadcast_tensors meshgrid tril triu diag flip fliplr roll cumsum cumprod
""".split())
# Free ops that move data without computing new values: their result is the operands' map.
_MOVEMENT_OPS = frozenset("""
    __getitem__ __setitem__ view view_as reshape reshape_as flatten unflatten squeeze unsqueeze permute transpose t
    contiguous expand expand_as repeat cat concat concatenate stack hstack vstack split chunk unbind narrow select
    index_select gather scatter masked_fill masked_select masked_scatter index_copy index_put index_fill pad clone
    detach to type type_as float half double broadcast_to flip roll
""".split())
# Free ops that compute on a feature map: what the layer table leaves out (Recorder.fused says which).
_ELEMENTWISE = frozenset("""
    add sub rsub mul div truediv true_divide neg abs pow exp log sqrt rsqrt reciprocal square sigmoid tanh relu relu6
    leaky_relu hardtanh hardswish hardsigmoid silu gelu elu selu celu softplus mish prelu clamp clip clamp_min
    clamp_max where maximum minimum lerp addcmul addcdiv batch_norm softmax log_softmax
""".split())
# Reductions: free on vectors (logits, gate outputs); on a feature map only a spatial mean or max
# is costable, as a global pooling layer.
_REDUCTIONS = frozenset("sum mean max min amax amin aminmax std var norm prod logsumexp median mode".split())


@dataclass
class _Mark:
    unit: str | None = None
    rule: str | None = None
    bits: tuple[int, int] | None = None


@dataclass
class _Record:
    """One layer seen while deriving: its shape, where it sits, what it reads and who reads it."""

    key: tuple[str, str]  # (module path, functional op or ""): how the recording pass recognises it
    path: str
    op: str
    call: int  # how many earlier layers share the key
    kind: str
    shape: dict
    unit: str | None
    rule: str
    bits: tuple[int, int] | None
    reads_input: bool
    producers: frozenset = frozenset()  # layers that wrote the map it reads
    readers: list = field(default_factory=list)  # layers that read the map it writes, in execution order


@dataclass
class Counts:
    """Per recorded key: non-zero and total elements of the map read, and the inputs that ran it."""

    nonzero: int = 0
    total: int = 0
    inputs: int = 0


class Recorder:
    """Derive the layer table of `model` and record its per-input decisions as a trace.

    `input_shape` is (channels, height, width) of one input. `options` are the choices a unit's
    decision indexes (default: full precision only, for a model without units). `run_all(model, x)`
    calls the model so that every layer runs (default `model(x)`); a dynamic model passes whatever
    disables its skipping, e.g. `lambda m, x: m(x, threshold=2.0)`. `names(path, call)` renames a
    layer (default: the module path, `#2`, `#3`... for repeated calls of one module).
    """

    def __init__(self, model: nn.Module, input_shape, options=(FULL_OPTION,), *, name: str | None = None,
                 description: str = "", run_all: Callable | None = None,
                 names: Callable[[str, int], str] | None = None):
        require(isinstance(model, nn.Module), "recorder", "model", "must be a torch.nn.Module")
        shape = tuple(int(v) for v in input_shape)
        require(len(shape) == 3 and all(v > 0 for v in shape), "recorder", "input_shape",
                f"must be (channels, height, width) of positive integers, got {tuple(input_shape)}")
        self.model = model
        self.input_shape = shape
        self.options = tuple(options)
        self.name = name or type(model).__name__
        self.description = description
        self.run_all = run_all or (lambda m, x: m(x))
        self.names = names
        self.units: list[str] = []
        self._marks: dict[nn.Module, _Mark] = {}
        self._kinds: dict[nn.Module, str] = {}
        self._records: list[_Record] | None = None
        self.fused: dict[str, int] = {}  # elementwise work on feature maps left out of the table, by op or module

    # -- marking ----------------------------------------------------------------------------------
    def _mark(self, modules, **changes) -> None:
        require(self._records is None, "recorder", "marks", "mark units and layers before deriving the network")
        for module in modules:
            require(isinstance(module, nn.Module), "recorder", "modules", f"expected nn.Module, got {type(module)}")
            require(any(module is m for m in self.model.modules()), "recorder", "modules",
                    f"{type(module).__name__} is not a submodule of the model")
            mark = self._marks.setdefault(module, _Mark())
            for key, value in changes.items():
                setattr(mark, key, value)

    def unit(self, name: str, *modules: nn.Module) -> "Recorder":
        """A unit whose option the decisions choose per input; every layer inside `modules` follows it
        (skipped when it chose skip). Units are numbered in the order they are registered."""
        require(isinstance(name, str) and name, "recorder", "unit", "needs a non-empty name")
        require(name not in self.units, "recorder", f"unit '{name}'", "is registered twice")
        require(modules, "recorder", f"unit '{name}'", "names no module")
        self.units.append(name)
        self._mark(modules, unit=name, rule="unit")
        return self

    def shortcut(self, *modules: nn.Module, w_bits: int | None = None, a_bits: int | None = None) -> "Recorder":
        """Layers that follow their enclosing unit's option, and run at full precision when it is
        skipped (a downsampling projection that computes the residual path either way), or at
        `w_bits`/`a_bits` when given."""
        bits = None
        if w_bits is not None or a_bits is not None:
            for key, value in (("w_bits", w_bits), ("a_bits", a_bits)):
                require(isinstance(value, int) and 1 <= value <= MAX_BITS, "recorder", key,
                        f"a shortcut's bits when skipped must both lie in [1, {MAX_BITS}]")
            bits = (w_bits, a_bits)
        self._mark(modules, rule="shortcut", bits=bits)
        return self

    def full(self, *modules: nn.Module) -> "Recorder":
        """Layers that always run at full precision (the default for unmarked layers)."""
        self._mark(modules, rule="full")
        return self

    def fixed(self, *modules: nn.Module, w_bits: int, a_bits: int) -> "Recorder":
        """Layers that always run, at fixed weight and activation bits (they need not be equal)."""
        for key, bits in (("w_bits", w_bits), ("a_bits", a_bits)):
            require(isinstance(bits, int) and 1 <= bits <= MAX_BITS, "recorder", key, f"must lie in [1, {MAX_BITS}]")
        self._mark(modules, rule="fixed", bits=(w_bits, a_bits))
        return self

    def kind(self, module: nn.Module, kind: str) -> "Recorder":
        """Record a module's layer under another kind of the cost model (e.g. `gate-embed`, `gate-fc`)."""
        require(kind in LAYER_KINDS, "recorder", "kind", f"must be one of {', '.join(LAYER_KINDS)}")
        self._mark([module])
        self._kinds[module] = kind
        return self

    # -- derivation -------------------------------------------------------------------------------
    def network(self, probe: "Probe | None" = None) -> Network:
        """The layer table; with a probe that watched the model run, with measured densities."""
        records = self._derive()
        unit_index = {name: i for i, name in enumerate(self.units)}
        for name in self.units:
            require(any(r.unit == name and r.rule == "unit" for r in records), "recorder", f"unit '{name}'",
                    "marks modules in which no layer ran while deriving (does run_all execute it?)")
        densities = _densities(records, probe) if probe is not None else {}
        calls: dict[tuple, int] = {}
        for r in records:
            calls[r.key] = calls.get(r.key, 0) + 1
        layers = []
        for i, r in enumerate(records):
            name = self.names(r.path, r.call) if self.names else _default_name(r, calls[r.key])
            density_in, density_out = densities.get(i, (None, None))
            layer = Layer(name, r.kind, unit=None if r.unit is None else unit_index[r.unit], precision=r.rule,
                          w_bits=r.bits[0] if r.bits else 0, a_bits=r.bits[1] if r.bits else 0,
                          reads_input=r.reads_input, input_density=density_in, output_density=density_out,
                          **r.shape)
            check_layer(layer, "recorder", f"layer '{name}'")
            layers.append(layer)
        names = [layer.name for layer in layers]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        require(duplicate is None, "recorder", "names", f"two layers are named '{duplicate}'")
        return Network(self.name, tuple(layers), tuple(self.units), self.input_shape, self.description)

    def _derive(self) -> list[_Record]:
        if self._records is None:
            self._records = _Derivation(self).run()
        return self._records

    # -- recording --------------------------------------------------------------------------------
    @contextmanager
    def measure(self):
        """Count feature-map densities and layer runs while the model runs inside the block."""
        probe = Probe(self, self._derive())
        try:
            with probe.active():
                yield probe
        finally:
            probe.close()

    def check_runs(self, probe: "Probe", decisions: np.ndarray) -> None:
        """Every layer must have run for exactly the inputs the decisions say: a unit's layers for the
        inputs that did not skip it, a shortcut and every other layer for all inputs (or, for layers
        outside units, for none: gates a forced run leaves out). Raises InputError otherwise."""
        records = self._derive()
        decisions = np.asarray(decisions)
        n = len(decisions)
        skip = np.array([o.is_skip for o in self.options])
        runs = {name: int(np.count_nonzero(~skip[decisions[:, u]])) for u, name in enumerate(self.units)}
        expected: dict[tuple, int] = {}
        outside: dict[tuple, bool] = {}
        for r in records:
            expected[r.key] = expected.get(r.key, 0) + (runs[r.unit] if r.rule == "unit" else n)
            outside[r.key] = outside.get(r.key, True) and r.rule not in ("unit", "shortcut")
        for key, want in expected.items():
            got = probe.counts.get(key, Counts()).inputs
            if got == want or (got == 0 and outside[key]):
                continue
            first = next(r for r in records if r.key == key)
            what = f"unit '{first.unit}' ({first.rule})" if first.rule in ("unit", "shortcut") else \
                f"precision '{first.rule}'"
            raise InputError("recorder", f"layer '{_default_name(first, 1)}'",
                             f"ran for {got} inputs but its rule, {what}, and the decisions say {want}: mark the "
                             f"modules of each unit, and return decisions that match what the model ran")

    def write(self, out, *, decisions, probe: "Probe | None" = None, labels=None, predictions=None, gate_probs=None,
              budget_pct=None, budget_metric: str = "computation", budget_cost=None, provenance=None,
              network: Network | None = None, check: bool = True) -> Path:
        """Write the trace: the layer table (with the probe's densities) and the per-input arrays."""
        decisions = np.asarray(decisions)
        require(decisions.ndim == 2 and decisions.shape[1] == len(self.units), "recorder", "decisions",
                f"must have shape (inputs, {len(self.units)} units), got {decisions.shape}")
        require(decisions.size == 0 or (decisions.min() >= 0 and decisions.max() < len(self.options)), "recorder",
                "decisions", f"option indices must lie in [0, {len(self.options)})")
        if check and probe is not None:
            self.check_runs(probe, decisions)
        network = network or self.network(probe)
        return write_trace(out, network=network, options=self.options, decisions=decisions, labels=labels,
                           predictions=predictions, gate_probs=gate_probs, budget_pct=budget_pct,
                           budget_metric=budget_metric, budget_cost=budget_cost, provenance=provenance)

    @torch.no_grad()
    def record(self, out, batches, *, decide: Callable, forward: Callable | None = None,
               predict: Callable | None = None, probs: Callable | None = None, budget_pct=None,
               provenance: dict | None = None) -> tuple[Path, dict]:
        """Run the model over `batches` ((inputs, labels) pairs, or inputs alone) and write a trace.

        `forward(model, x)` runs one batch (default `model(x)`); `decide(output)` returns the option
        index per input and unit, shape (batch, units); `predict(output)` the class per input
        (default: argmax of the output); `probs(output)` optional per-unit option probabilities.
        Returns the trace path and a summary (inputs, accuracy, share of inputs per unit and option).
        """
        forward = forward or (lambda m, x: m(x))
        predict = predict or (lambda output: output.argmax(1))
        was_training = self.model.training
        self.model.eval()
        decisions, labels, predictions, gate_probs = [], [], [], []
        try:
            with self.measure() as probe:
                for batch in batches:
                    x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
                    output = forward(self.model, x)
                    chosen = _numpy(decide(output)).astype(np.int64).reshape(len(x), len(self.units))
                    decisions.append(chosen)
                    predictions.append(_numpy(predict(output)).astype(np.int64))
                    if y is not None:
                        labels.append(_numpy(y).astype(np.int64))
                    if probs is not None:
                        gate_probs.append(_numpy(probs(output)).astype(np.float32))
        finally:
            self.model.train(was_training)
        decisions = np.concatenate(decisions) if decisions else np.zeros((0, len(self.units)), dtype=np.int64)
        predictions = np.concatenate(predictions) if predictions else None
        labels = np.concatenate(labels) if labels else None
        summary = {"n": int(len(decisions))}
        if labels is not None and predictions is not None and len(labels):
            summary["accuracy_pct"] = float(100 * np.mean(labels == predictions))
        summary["option_shares_pct"] = {
            unit: {o.name: float(100 * np.mean(decisions[:, u] == k)) if len(decisions) else 0.0
                   for k, o in enumerate(self.options)} for u, unit in enumerate(self.units)}
        prov = {"source": "dfs_sim.model.recorder", "fused_into_layers": dict(self.fused),
                "densities": "per layer, the non-zero share of the feature maps it reads and writes over these inputs",
                **(provenance or {})}
        path = self.write(out, decisions=decisions, probe=probe, labels=labels, predictions=predictions,
                          gate_probs=np.concatenate(gate_probs) if gate_probs else None, budget_pct=budget_pct,
                          provenance=prov)
        return path, summary


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _default_name(record: _Record, calls: int) -> str:
    base = record.path or "model"
    if record.op:
        base = f"{record.path}.{record.op}" if record.path else record.op
    return base if calls == 1 or record.call == 0 else f"{base}#{record.call + 1}"


def _op_name(func) -> str:
    special = {F.max_pool2d: "max_pool2d", F.adaptive_max_pool2d: "adaptive_max_pool2d", torch.unique: "unique",
               F.max_pool1d: "max_pool1d", F.adaptive_max_pool1d: "adaptive_max_pool1d", F.fractional_max_pool2d:
               "fractional_max_pool2d", F.max_pool3d: "max_pool3d"}
    for known, name in special.items():
        if func is known:
            return name
    name = getattr(func, "__name__", None) or repr(func)
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _tensors(value):
    """Every tensor in a (nested) argument structure."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _pair(value, what: str, where: str) -> int:
    """One int from an int or a square pair; non-square kernels, strides and paddings are refused."""
    if isinstance(value, (tuple, list)):
        require(len(set(value)) == 1, "recorder", where, f"has a non-square {what} {tuple(value)}: the cost model "
                                                         f"takes square kernels, strides and paddings")
        value = value[0]
    return int(value)


class _Paths:
    """Every module's qualified names (a shared module has several), for naming and marking."""

    def __init__(self, model: nn.Module):
        self.by_module: dict[nn.Module, list[str]] = {}
        self.by_path: dict[str, nn.Module] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            self.by_module.setdefault(module, []).append(path)
            self.by_path[path] = module

    def path(self, module: nn.Module, stack: list[nn.Module]) -> str:
        """The name under which `module` runs now: of its names, the one whose ancestors are running."""
        candidates = self.by_module.get(module)
        if not candidates:
            return ""
        if len(candidates) == 1:
            return candidates[0]
        running = {id(m) for m in stack}

        def score(path):
            parts = path.split(".")
            return sum(id(self.by_path[".".join(parts[:i])]) in running for i in range(1, len(parts)))

        return max(candidates, key=score)

    def ancestry(self, path: str) -> list[nn.Module]:
        """The module at `path` and its ancestors up to the model itself, innermost first."""
        parts = path.split(".") if path else []
        return [self.by_path[".".join(parts[:i])] for i in range(len(parts), -1, -1)]


class _Derivation(TorchFunctionMode):
    """One forward pass that records every layer, what it reads and who reads what it writes."""

    def __init__(self, recorder: Recorder):
        super().__init__()
        self.recorder = recorder
        self.paths = _Paths(recorder.model)
        self.stack: list[nn.Module] = []
        self.records: list[_Record] = []
        self.calls: dict[tuple, int] = {}
        self.tags: dict[int, frozenset] = {}
        self.alive: list[torch.Tensor] = []  # keeps tagged tensors alive, so their ids stay theirs
        self.read: set[int] = set()  # layers whose written map some layer has read (a stored map)
        self.busy = False
        self.input: torch.Tensor | None = None

    def run(self) -> list[_Record]:
        model = self.recorder.model
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(1, *self.recorder.input_shape, device=device)
        self.input = x
        self._tag(x, frozenset([_INPUT]))
        handles = []
        for module in dict.fromkeys(model.modules()):
            handles.append(module.register_forward_pre_hook(self._enter))
            handles.append(module.register_forward_hook(self._leave))
        was_training = model.training
        try:
            model.eval()
            with torch.no_grad(), self:
                self.recorder.run_all(model, x)
        finally:
            for handle in handles:
                handle.remove()
            model.train(was_training)
        require(self.records, "recorder", "model", "ran no layer the cost model costs")
        return self.records

    # -- tensors and who wrote them ---------------------------------------------------------------
    def _tag(self, tensor: torch.Tensor, producers: frozenset) -> None:
        self.tags[id(tensor)] = producers
        self.alive.append(tensor)

    def _producers(self, tensor) -> frozenset:
        return self.tags.get(id(tensor), frozenset())

    def _fresh(self, args, op: str = "") -> frozenset:
        """Who wrote the result of a free op. One operand, or data movement (indexing, reshapes,
        concatenation): the same map, the same writers. Arithmetic on several operands (a residual
        add) writes a new map: its writers are the operands' writers whose maps are not stored yet
        (read by some layer); a stored map added in keeps its own readers. Integer and boolean tensors
        (indices, masks, decisions) select data but are not data."""
        tensors = [t for t in _tensors(args) if t.is_floating_point()]
        out = set()
        for tensor in tensors:
            producers = self._producers(tensor)
            if len(tensors) > 1 and op not in _MOVEMENT_OPS:
                producers = {p for p in producers if p not in self.read}
            out |= producers
        return frozenset(out)

    def _reads(self, index: int, tensor: torch.Tensor) -> None:
        producers = self._producers(tensor)
        self.records[index].producers = producers - {_INPUT}
        for p in producers - {_INPUT}:
            self.records[p].readers.append(index)
            self.read.add(p)

    # -- modules ----------------------------------------------------------------------------------
    def _leaf(self) -> nn.Module | None:
        return next((m for m in reversed(self.stack) if isinstance(m, _LAYER_MODULES + _FREE_MODULES)), None)

    def _enter(self, module, args):
        if not self.busy:
            self.stack.append(module)

    def _inside_leaf(self) -> bool:
        return any(isinstance(m, _LAYER_MODULES + _FREE_MODULES) for m in self.stack[:-1])

    def _leave(self, module, args, output):
        if self.busy:
            return
        try:
            if self._inside_leaf():
                return
            if isinstance(module, _FREE_MODULES):
                if isinstance(module, _FUSED_MODULES) and any(t.dim() == 4 for t in _tensors(args)):
                    self._fused(type(module).__name__)
                self._propagate(args, output)
            elif isinstance(module, _LAYER_MODULES):
                self.busy = True
                try:
                    self._module_layer(module, args, output)
                finally:
                    self.busy = False
        finally:
            self.stack.pop()

    def _fused(self, name: str) -> None:
        self.recorder.fused[name] = self.recorder.fused.get(name, 0) + 1

    def _propagate(self, args, output) -> None:
        fresh = self._fresh(args)
        inputs = list(_tensors(args))
        for tensor in _tensors(output):
            in_place = any(tensor is t for t in inputs)  # the map keeps its writers
            self._tag(tensor, fresh | (self._producers(tensor) - self.read) if in_place else fresh)

    def _module_layer(self, module, args, output) -> None:
        x = args[0]
        path = self.paths.path(module, self.stack)
        where = f"layer '{path}'"
        if isinstance(module, nn.Conv2d):
            require(module.dilation in ((1, 1), 1), "recorder", where, f"has dilation {module.dilation}: the cost "
                                                                        "model takes dilation 1")
            require(module.padding_mode == "zeros", "recorder", where, "pads other than with zeros")
            shape = self._conv_shape(x, output, module.weight, module.stride, module.padding, module.groups, where)
        elif isinstance(module, nn.Linear):
            shape = self._linear_shape(x, module.in_features, module.out_features, where)
        elif isinstance(module, nn.LSTMCell):
            shape = {"c_in": module.input_size + module.hidden_size, "c_out": 4 * module.hidden_size}
            output = output[0]  # (h, c): the hidden state is what the next layer reads
        else:
            shape = self._pool_shape(x, output, module, where)
        kind = self.recorder._kinds.get(module) or ("conv" if isinstance(module, nn.Conv2d) else
                                                     "fc" if isinstance(module, nn.Linear) else
                                                     "lstm" if isinstance(module, nn.LSTMCell) else "pool")
        if kind not in ("conv", "pool"):  # vector kinds are 1x1
            require(all(shape.get(k, 1) == 1 for k in ("h_in", "w_in", "h_out", "w_out", "kernel")), "recorder",
                    where, f"is recorded as a {kind} layer but has a spatial map or kernel")
            shape = {"c_in": shape["c_in"], "c_out": shape["c_out"]}
        self._add_layer(path, "", kind, shape, x, output)

    def _add_layer(self, path: str, op: str, kind: str, shape: dict, x, output) -> None:
        unit, rule, bits = self._rule(path)
        key = (path, op)
        call = self.calls.get(key, 0)
        self.calls[key] = call + 1
        reads_input = x is self.input or _INPUT in self._producers(x) and not (self._producers(x) - {_INPUT})
        self.records.append(_Record(key, path, op, call, kind, shape, unit, rule, bits, reads_input))
        index = len(self.records) - 1
        self._reads(index, x)
        for tensor in _tensors(output):
            self._tag(tensor, frozenset([index]))

    def _rule(self, path: str):
        """(unit, rule, bits) from the innermost marks of the layer's module and its ancestors."""
        unit = rule = bits = None
        for module in self.paths.ancestry(path):
            mark = self.recorder._marks.get(module)
            if mark is None:
                continue
            if rule is None and mark.rule is not None:
                rule, bits = mark.rule, mark.bits
            if unit is None and mark.unit is not None:
                unit = mark.unit
        rule = rule or "full"
        if rule in ("unit", "shortcut"):
            require(unit is not None, "recorder", f"layer '{path}'", f"is marked {rule} but lies in no unit")
        return unit, rule, bits

    # -- shapes -----------------------------------------------------------------------------------
    def _conv_shape(self, x, output, weight, stride, padding, groups, where) -> dict:
        require(x.dim() == 4, "recorder", where, f"reads a {x.dim()}-d tensor: the cost model takes 2-d "
                                                 f"convolutions over (batch, channels, height, width)")
        kernel = _pair(tuple(weight.shape[2:]), "kernel", where)
        if isinstance(padding, str):
            padding = 0 if padding == "valid" else (kernel - 1) // 2
        c_in, h_in, w_in = x.shape[1:]
        c_out, h_out, w_out = output.shape[1:]
        return {"c_in": int(c_in), "c_out": int(c_out), "h_in": int(h_in), "w_in": int(w_in), "h_out": int(h_out),
                "w_out": int(w_out), "kernel": kernel, "stride": _pair(stride, "stride", where),
                "padding": _pair(padding, "padding", where), "groups": int(groups)}

    def _linear_shape(self, x, c_in, c_out, where) -> dict:
        require(x.dim() == 2, "recorder", where, f"applies a linear layer to a {x.dim()}-d tensor: the cost "
                                                 f"model's fully-connected layers take one vector per input")
        return {"c_in": int(c_in), "c_out": int(c_out)}

    def _pool_shape(self, x, output, module, where) -> dict:
        require(x.dim() == 4, "recorder", where, "pools a tensor that is not (batch, channels, height, width)")
        channels, h_in, w_in = (int(v) for v in x.shape[1:])
        h_out, w_out = (int(v) for v in output.shape[2:])
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return self._adaptive(channels, h_in, w_in, h_out, w_out, where)
        dilation = getattr(module, "dilation", 1)
        require(_pair(dilation, "dilation", where) == 1, "recorder", where, "pools with dilation")
        kernel = _pair(module.kernel_size, "kernel", where)
        stride = _pair(module.stride if module.stride is not None else kernel, "stride", where)
        return {"c_in": channels, "c_out": channels, "h_in": h_in, "w_in": w_in, "h_out": h_out, "w_out": w_out,
                "kernel": kernel, "stride": stride, "padding": _pair(module.padding, "padding", where)}

    def _adaptive(self, channels, h_in, w_in, h_out, w_out, where) -> dict:
        require(h_in == w_in and h_out == w_out, "recorder", where, "pools a non-square map")
        if h_out == 1:  # global pooling: one window over the whole map
            kernel, stride = h_in, 1
        else:
            require(h_in % h_out == 0, "recorder", where, f"pools {h_in}x{w_in} to {h_out}x{w_out}: adaptive "
                                                         f"pooling is costed only when the windows tile the map")
            kernel = stride = h_in // h_out
        return {"c_in": channels, "c_out": channels, "h_in": h_in, "w_in": w_in, "h_out": h_out, "w_out": w_out,
                "kernel": kernel, "stride": stride, "padding": 0}

    # -- every other torch operation --------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self.busy or self._leaf() is not None:
            return result
        self.busy = True
        try:
            self._operation(func, args, kwargs, result)
        finally:
            self.busy = False
        return result

    def _operation(self, func, args, kwargs, result) -> None:
        op = _op_name(func)
        owner = self.stack[-1] if self.stack else None
        path = self.paths.path(owner, self.stack) if owner is not None else ""
        where = f"layer '{path + '.' if path else ''}{op}'"
        if func is F.conv2d or func is torch.conv2d:
            names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
            call = {**dict(zip(names, args)), **kwargs}
            require(_pair(call.get("dilation", 1), "dilation", where) == 1, "recorder", where, "has dilation")
            shape = self._conv_shape(call["input"], result, call["weight"], call.get("stride", 1),
                                     call.get("padding", 0), call.get("groups", 1), where)
            self._add_layer(path, "conv2d", "conv", shape, call["input"], result)
        elif func is F.linear:
            weight = kwargs.get("weight", args[1] if len(args) > 1 else None)
            shape = self._linear_shape(args[0], weight.shape[1], weight.shape[0], where)
            self._add_layer(path, "linear", "fc", shape, args[0], result)
        elif func in (F.max_pool2d, F.avg_pool2d):
            names = ("input", "kernel_size", "stride", "padding") + (("dilation",) if func is F.max_pool2d else ())
            call = {**dict(zip(names, args)), **kwargs}
            pool = SimpleNamespace(kernel_size=call["kernel_size"], stride=call.get("stride") or None,
                                   padding=call.get("padding", 0), dilation=call.get("dilation", 1))
            out = result[0] if isinstance(result, tuple) else result
            self._add_layer(path, op, "pool", self._pool_shape(call["input"], out, pool, where), call["input"], out)
        elif func in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            out = result[0] if isinstance(result, tuple) else result
            x = args[0]
            require(x.dim() == 4, "recorder", where, "pools a tensor that is not (batch, channels, height, width)")
            shape = self._adaptive(int(x.shape[1]), int(x.shape[2]), int(x.shape[3]), int(out.shape[2]),
                                   int(out.shape[3]), where)
            self._add_layer(path, op, "pool", shape, x, out)
        elif op in _REDUCTIONS and self._is_map(args) and not (len(args) > 1 and isinstance(args[1], torch.Tensor)):
            self._map_reduction(op, path, where, args, kwargs, result)
        elif op in _FREE_OPS or op in _REDUCTIONS:
            name = op.strip("_").removeprefix("i").removeprefix("r") if op.startswith("__") else op
            if name in _ELEMENTWISE and any(t.dim() == 4 for t in _tensors(args)):
                self._fused(name)
            fresh = self._fresh((args, kwargs), op)
            raw = getattr(func, "__name__", "")
            in_place = raw == "__setitem__" or (raw.endswith("_") and not raw.endswith("__"))
            target = args[0] if in_place and args and isinstance(args[0], torch.Tensor) else None
            if target is not None:  # the target map keeps its writers and gains the new ones
                self._tag(target, fresh | (self._producers(target) - self.read))
            for tensor in _tensors(result):
                if tensor is not target:
                    self._tag(tensor, fresh)
        else:
            owner_type = f" (in {type(owner).__name__})" if owner is not None else ""
            raise InputError("recorder", where, f"calls torch '{op}'{owner_type}, which the cost model cannot cost (it costs "
                                                f"conv2d, linear, LSTM-cell and pooling layers; elementwise ops are "
                                                f"fused into them)")

    @staticmethod
    def _is_map(args) -> bool:
        x = args[0] if args else None
        return isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[2] * x.shape[3] > 1

    def _map_reduction(self, op, path, where, args, kwargs, result) -> None:
        """A reduction over a feature map: a spatial mean or max is a global pooling layer."""
        x = args[0]
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
        spatial = sorted(d % 4 for d in dims) == [2, 3]
        require(op in ("mean", "amax", "max") and spatial, "recorder", where,
                f"reduces a feature map with '{op}' over dims {dims}: the cost model costs only a global mean or "
                f"max over height and width (a pooling layer)")
        out = result[0] if isinstance(result, tuple) else result
        shape = self._adaptive(int(x.shape[1]), int(x.shape[2]), int(x.shape[3]), 1, 1, where)
        self._add_layer(path, op, "pool", shape, x, out)


def _densities(records: list[_Record], probe: "Probe") -> dict[int, tuple]:
    """(input density, output density) per layer, from the maps the probe counted.

    A layer's input density is that of the map it reads, where it read it; its output density that
    of the map it writes, at the first of its readers that ran. A layer outside units that never
    ran while recording (a gate left out by a forced run) still costs its reads: it takes the
    density of the map it reads as measured at that map's readers. Only feature maps (conv and
    pooling layers, more than one pixel) carry densities; the network's input has none.
    """
    measured = {key: round(c.nonzero / c.total, 4) for key, c in probe.counts.items() if c.total}

    def written(index):
        return next((measured[records[r].key] for r in records[index].readers if records[r].key in measured), None)

    out = {}
    for i, r in enumerate(records):
        if r.kind not in ("conv", "pool"):
            continue
        shape = r.shape
        density_in = None
        if not r.reads_input and shape["h_in"] * shape["w_in"] > 1:
            density_in = measured.get(r.key)
            if density_in is None and r.rule not in ("unit", "shortcut") and r.producers:
                density_in = written(min(r.producers))
        density_out = written(i) if shape["h_out"] * shape["w_out"] > 1 else None
        out[i] = (density_in, density_out)
    return out


class Probe:
    """While active: per recorded key, the non-zero and total elements a layer reads and the inputs
    it ran for. Layers called by module are counted by hooks; functional layers by a function mode."""

    def __init__(self, recorder: Recorder, records: list[_Record]):
        self.recorder = recorder
        self.records = records
        self.counts: dict[tuple, Counts] = {}
        self.paths = _Paths(recorder.model)
        self.keys = {r.key for r in records}
        self.maps = {r.key for r in records if r.kind in ("conv", "pool") and not r.reads_input}
        self.functional = any(r.op for r in records)
        self.stack: list[nn.Module] = []
        self.handles = []

    @contextmanager
    def active(self):
        model = self.recorder.model
        for module in dict.fromkeys(model.modules()):
            self.handles.append(module.register_forward_pre_hook(self._enter))
            self.handles.append(module.register_forward_hook(self._leave))
        if self.functional:
            with _CountingMode(self):
                yield self
        else:
            yield self

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def count(self, key: tuple, x: torch.Tensor) -> None:
        tally = self.counts.setdefault(key, Counts())
        tally.inputs += int(x.shape[0])
        if key in self.maps:
            tally.nonzero += int(torch.count_nonzero(x))
            tally.total += x.numel()

    def _enter(self, module, args):
        self.stack.append(module)
        if isinstance(module, _LAYER_MODULES) and not any(isinstance(m, _LAYER_MODULES + _FREE_MODULES)
                                                          for m in self.stack[:-1]):
            key = (self.paths.path(module, self.stack), "")
            if key not in self.keys:
                raise InputError("recorder", f"layer '{key[0]}'", "ran while recording but not while deriving the "
                                                                   "layer table: run_all must run every layer")
            self.count(key, args[0])

    def _leave(self, module, args, output):
        self.stack.pop()


class _CountingMode(TorchFunctionMode):
    """Counts the functional layers (F.conv2d, pooling functions, spatial means) while recording."""

    _LAYER_FUNCS = (F.conv2d, torch.conv2d, F.linear, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
                    F.adaptive_max_pool2d)

    def __init__(self, probe: Probe):
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        probe = self.probe
        inside = any(isinstance(m, _LAYER_MODULES + _FREE_MODULES) for m in probe.stack)
        if not inside:
            op = _op_name(func)
            is_layer = any(func is f for f in self._LAYER_FUNCS) or (op in _REDUCTIONS and _Derivation._is_map(args))
            if is_layer:
                owner = probe.stack[-1] if probe.stack else None
                path = probe.paths.path(owner, probe.stack) if owner is not None else ""
                key = (path, op)
                if key in probe.keys:
                    probe.count(key, args[0] if args else kwargs["input"])
        return func(*args, **kwargs)
