"""The network: an ordered table of layers, each tied to a gated unit or run at a fixed precision.

A *gated unit* is what a DFS gate decides about (one residual block). Every layer either
follows its unit's decision (`precision="unit"`), follows it but runs at full precision when the
unit is skipped (`precision="shortcut"`: a downsampling block's projection, which computes the
residual path whether or not the block runs), always runs at full precision (`precision="full"`,
e.g. the stem or the gates), or runs at fixed per-layer bits (`precision="fixed"`, used by static
quantized networks).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from dfs_sim.errors import InputError, input_boundary, is_int, require, shown
from dfs_sim.limits import (MAX_BITS, MAX_CHANNELS, MAX_FMAP_ELEMENTS, MAX_LAYER_MACS, MAX_LAYERS, MAX_NAME_CHARS,
                            MAX_SPATIAL, MAX_UNITS)
from dfs_sim.resources import local_or_shipped

LAYER_KINDS = ("conv", "fc", "gate-embed", "lstm", "gate-fc", "pool")
PRECISION_RULES = ("unit", "shortcut", "full", "fixed")
UNIT_RULES = ("unit", "shortcut")  # rules under which a layer's cost depends on its unit's decision

# Kinds computed as a matrix-vector product on 1x1 spatial data.
_VECTOR_KINDS = ("fc", "gate-embed", "lstm", "gate-fc")


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    c_in: int
    c_out: int
    h_in: int = 1
    w_in: int = 1
    h_out: int = 1
    w_out: int = 1
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    unit: int | None = None
    precision: str = "full"
    # precision="fixed": the bits the layer runs at; precision="shortcut": the bits it runs at when its unit
    # is skipped (0: full precision); other rules carry none.
    w_bits: int = 0
    a_bits: int = 0
    macs: int = -1  # derived when left at -1
    weights: int = -1
    reads_input: bool = False  # reads the network's input (mappers may unfold it: im2col)
    # Fraction of non-zero values in the input / output feature map, where the data are known;
    # a DRAM link that compresses feature maps needs them (dfs_sim/cost/compression.py).
    input_density: float | None = None
    output_density: float | None = None

    @property
    def follows_unit(self) -> bool:
        return self.precision in UNIT_RULES

    def case_bits(self, cases: np.ndarray) -> np.ndarray:
        """(weight, activation) bits this layer runs at in each precision case: `cases` rows are a
        unit's options then the full-precision reference (last row); (0, 0) = does not run."""
        cases = np.asarray(cases)
        if self.precision == "unit":
            return cases.copy()
        if self.precision == "shortcut":
            skipped = (cases == 0).all(axis=1)
            when_skipped = cases[-1] if self.w_bits == 0 else np.array([self.w_bits, self.a_bits])
            return np.where(skipped[:, None], when_skipped, cases)
        if self.precision == "fixed":
            return np.tile([self.w_bits, self.a_bits], (len(cases), 1))
        return np.tile(cases[-1], (len(cases), 1))

    def __post_init__(self):
        if self.macs < 0:
            object.__setattr__(self, "macs", expected_macs(self))
        if self.weights < 0:
            object.__setattr__(self, "weights", expected_weights(self))


def expected_macs(layer: Layer) -> int:
    if layer.kind == "pool":  # one add per input element of each window
        return layer.c_out * layer.h_out * layer.w_out * layer.kernel * layer.kernel
    per_output = (layer.c_in // max(layer.groups, 1)) * layer.kernel * layer.kernel
    return layer.c_out * layer.h_out * layer.w_out * per_output


def expected_weights(layer: Layer) -> int:
    if layer.kind == "pool":
        return 0
    return layer.c_out * (layer.c_in // max(layer.groups, 1)) * layer.kernel * layer.kernel


@dataclass(frozen=True)
class Network:
    """An ordered layer table plus the names of its gated units (index = unit id)."""

    name: str
    layers: tuple[Layer, ...]
    units: tuple[str, ...] = ()
    input_shape: tuple[int, int, int] = (3, 32, 32)  # C, H, W
    description: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def reads_network_input(self, index: int) -> bool:
        """Whether layer `index` reads the network's input (from DRAM; a mapper may unfold it): a layer marked
        reads_input, and the first layer whether or not it is marked."""
        return self.layers[index].reads_input or index == 0

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def column(self, name: str) -> np.ndarray:
        """One field of every layer as an array (cached: the table is immutable)."""
        cache = self.__dict__.setdefault("_columns", {})
        if name not in cache:
            cache[name] = self._column(name)
            cache[name].flags.writeable = False
        return cache[name]

    def _column(self, name: str) -> np.ndarray:
        values = [getattr(layer, name) for layer in self.layers]
        if name == "unit":
            return np.array([-1 if v is None else v for v in values], dtype=np.int64)
        if name in ("name", "kind", "precision"):
            return np.array(values, dtype=object)
        if name in _DENSITY_FIELDS:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        return np.array(values, dtype=np.int64)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "input_shape": list(self.input_shape),
            "units": list(self.units),
            "layers": [_layer_to_dict(layer) for layer in self.layers],
            "meta": self.meta,
        }


def _layer_to_dict(layer: Layer) -> dict:
    out = asdict(layer)
    if not layer.reads_input:
        out.pop("reads_input")
    for key in _DENSITY_FIELDS:
        if out[key] is None:
            out.pop(key)
    if layer.precision != "fixed" and not (layer.precision == "shortcut" and layer.w_bits):
        out.pop("w_bits")
        out.pop("a_bits")
    return out


_LAYER_FIELDS = {f.name: f for f in fields(Layer)}
_DENSITY_FIELDS = ("input_density", "output_density")
_INT_FIELDS = [name for name in _LAYER_FIELDS
               if name not in ("name", "kind", "unit", "precision", "reads_input") + _DENSITY_FIELDS]


# Bounds per integer field (dfs_sim/limits.py says why); macs and weights are checked against the shape.
_FIELD_RANGES = {"c_in": (1, MAX_CHANNELS), "c_out": (1, MAX_CHANNELS), "h_in": (1, MAX_SPATIAL),
                 "w_in": (1, MAX_SPATIAL), "h_out": (1, MAX_SPATIAL), "w_out": (1, MAX_SPATIAL),
                 "kernel": (1, MAX_SPATIAL), "stride": (1, MAX_SPATIAL), "padding": (0, MAX_SPATIAL),
                 "groups": (1, MAX_CHANNELS), "macs": (0, MAX_LAYER_MACS), "weights": (0, MAX_LAYER_MACS),
                 "w_bits": (1, MAX_BITS), "a_bits": (1, MAX_BITS)}


def _name(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS


def network_from_dict(data: object, source: object = "<network>") -> Network:
    """Build and validate a network from its JSON/YAML form; errors name the source and field."""
    require(isinstance(data, dict), source, "network", "must be a mapping")
    unknown = set(data) - {"name", "description", "input_shape", "units", "layers", "meta", "format", "version"}
    require(not unknown, source, f"network.{sorted(map(str, unknown))[0]}" if unknown else None, "unknown key")
    name = data.get("name")
    require(_name(name), source, "network.name", f"must be a string of 1 to {MAX_NAME_CHARS} characters")
    units = data.get("units", [])
    require(isinstance(units, list) and len(units) <= MAX_UNITS and all(_name(u) for u in units), source,
            "network.units", f"must be a list of at most {MAX_UNITS} names of 1 to {MAX_NAME_CHARS} characters")
    require(len(set(units)) == len(units), source, "network.units", "names must be unique")
    shape = data.get("input_shape", [3, 32, 32])
    require(isinstance(shape, list) and len(shape) == 3 and all(is_int(v) and v > 0 for v in shape)
            and shape[0] <= MAX_CHANNELS and max(shape[1:]) <= MAX_SPATIAL, source, "network.input_shape",
            f"must be [channels, height, width] of positive integers (at most {MAX_CHANNELS} channels and "
            f"{MAX_SPATIAL} pixels)")
    raw_layers = data.get("layers")
    require(isinstance(raw_layers, list) and 0 < len(raw_layers) <= MAX_LAYERS, source, "network.layers",
            f"must be a list of 1 to {MAX_LAYERS} layers")
    layers = [_layer_from_dict(raw, i, len(units), source) for i, raw in enumerate(raw_layers)]
    names = [layer.name for layer in layers]
    require(len(set(names)) == len(names), source, "network.layers", "layer names must be unique")
    for u, unit_name in enumerate(units):
        require(any(layer.unit == u and layer.precision == "unit" for layer in layers), source,
                f"network.units[{u}]", f"gated unit '{unit_name}' has no layer that follows its decision")
    meta = data.get("meta", {})
    require(isinstance(meta, dict), source, "network.meta", "must be a mapping")
    description = data.get("description", "")
    require(isinstance(description, str), source, "network.description", "must be a string")
    return Network(name, tuple(layers), tuple(units), tuple(int(v) for v in shape), description, meta)


def _layer_from_dict(raw: object, index: int, n_units: int, source: object) -> Layer:
    where = f"network.layers[{index}]"
    require(isinstance(raw, dict), source, where, "must be a mapping")
    unknown = set(raw) - set(_LAYER_FIELDS)
    if unknown:
        raise InputError(source, f"{where}.{sorted(map(str, unknown))[0]}", "unknown key")
    for key in ("name", "kind", "c_in") + (() if raw.get("kind") == "pool" else ("c_out",)):
        require(key in raw, source, f"{where}.{key}", "is required")
    require(_name(raw["name"]), source, f"{where}.name", f"must be a string of 1 to {MAX_NAME_CHARS} characters")
    where = f"network.layers[{index}] ({raw['name']})"
    require(isinstance(raw["kind"], str) and raw["kind"] in LAYER_KINDS, source, f"{where}.kind",
            f"must be one of {', '.join(LAYER_KINDS)}")
    values = dict(raw)
    for key in _INT_FIELDS:
        if key in raw:
            low, high = _FIELD_RANGES[key]
            value = raw[key]
            require(is_int(value), source, f"{where}.{key}", f"must be an integer, got {shown(value)}")
            hint = " (omit it to derive it from the shape)" if key in ("macs", "weights") else ""
            require(low <= value <= high, source, f"{where}.{key}", f"{value} is out of range [{low}, {high}]{hint}")
            values[key] = int(value)
    if "reads_input" in values:
        require(isinstance(values["reads_input"], bool), source, f"{where}.reads_input", "must be true or false")
    for key in _DENSITY_FIELDS:
        if key in values:
            value = values[key]
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1, source,
                    f"{where}.{key}", f"must be a fraction of non-zero values in (0, 1], got {shown(value)}")
            values[key] = float(value)
    precision = values.get("precision", "full")
    require(isinstance(precision, str) and precision in PRECISION_RULES, source, f"{where}.precision",
            f"must be one of {', '.join(PRECISION_RULES)}")
    unit = values.get("unit")
    if unit is not None:
        require(is_int(unit) and 0 <= unit < n_units, source, f"{where}.unit",
                f"must be a gated-unit index in [0, {n_units}) or null")
        values["unit"] = int(unit)
    if precision in UNIT_RULES:
        require(unit is not None, source, f"{where}.unit", f"a layer with precision '{precision}' needs a gated unit")
    if precision == "fixed":
        for key in ("w_bits", "a_bits"):
            require(key in values, source, f"{where}.{key}", f"fixed precision needs {key} in [1, {MAX_BITS}]")
    elif precision == "shortcut" and ("w_bits" in values or "a_bits" in values):
        for key in ("w_bits", "a_bits"):  # the bits it runs at when its unit skips
            require(key in values, source, f"{where}.{key}", "a shortcut layer gives both w_bits and a_bits, or "
                                                            "neither (full precision when its unit skips)")
    elif "w_bits" in values or "a_bits" in values:
        raise InputError(source, f"{where}.w_bits", "only layers with precision 'fixed' or 'shortcut' carry bits")
    _derive_fields(values)
    layer = Layer(**values)
    check_layer(layer, source, where)
    return layer


def _derive_fields(values: dict) -> None:
    """Fill in what the shape determines and the file left out: a pool's c_out (= c_in), h_out and
    w_out of conv and pool layers; macs and weights are derived by Layer itself. Given fields are
    kept, and check_layer holds them to the shape."""
    if values["kind"] == "pool":
        values.setdefault("c_out", values["c_in"])
    if values["kind"] in _VECTOR_KINDS:
        return
    for axis in ("h", "w"):
        size_in = values.get(f"{axis}_in", 1)
        if f"{axis}_out" not in values and is_int(size_in):
            span = size_in + 2 * values.get("padding", 0) - values.get("kernel", 1)
            stride = values.get("stride", 1)
            if span >= 0 and is_int(stride) and stride >= 1:
                values[f"{axis}_out"] = span // stride + 1


def check_layer(layer: Layer, source: object, where: str) -> None:
    for key in ("c_in", "c_out", "h_in", "w_in", "h_out", "w_out", "kernel", "stride", "groups"):
        require(getattr(layer, key) >= 1, source, f"{where}.{key}", "must be >= 1")
    require(layer.padding >= 0, source, f"{where}.padding", "must be >= 0")
    require(layer.c_in % layer.groups == 0 and layer.c_out % layer.groups == 0, source, f"{where}.groups",
            "must divide c_in and c_out")
    if layer.kind in _VECTOR_KINDS:
        for key in ("h_in", "w_in", "h_out", "w_out", "kernel"):
            require(getattr(layer, key) == 1, source, f"{where}.{key}", f"must be 1 for a {layer.kind} layer")
    else:
        for axis in ("h", "w"):
            size_in = getattr(layer, f"{axis}_in")
            span = size_in + 2 * layer.padding - layer.kernel
            require(span >= 0, source, f"{where}.kernel", "is larger than the padded input")
            require(getattr(layer, f"{axis}_out") == span // layer.stride + 1, source, f"{where}.{axis}_out",
                    f"is {getattr(layer, f'{axis}_out')} but input {size_in}, kernel {layer.kernel}, "
                    f"stride {layer.stride}, padding {layer.padding} give {span // layer.stride + 1}")
    if layer.kind == "pool":
        require(layer.c_out == layer.c_in, source, f"{where}.c_out", "a pool layer keeps its channels")
    # Bounds on what the cost code multiplies (dfs_sim/limits.py): exact Python integers here.
    padded = layer.c_in * (layer.h_in + 2 * layer.padding) * (layer.w_in + 2 * layer.padding)
    require(padded <= MAX_FMAP_ELEMENTS and layer.c_out * layer.h_out * layer.w_out <= MAX_FMAP_ELEMENTS, source,
            f"{where}.c_in", f"feature maps over {MAX_FMAP_ELEMENTS:.3g} elements per input are beyond the limit")
    require(expected_macs(layer) <= MAX_LAYER_MACS, source, f"{where}.macs",
            f"the shape gives {expected_macs(layer)} MACs per input, over the limit of {MAX_LAYER_MACS}")
    require(layer.macs == expected_macs(layer), source, f"{where}.macs",
            f"is {layer.macs} but the shape gives {expected_macs(layer)}")
    require(layer.weights == expected_weights(layer), source, f"{where}.weights",
            f"is {layer.weights} but the shape gives {expected_weights(layer)}")


def load_network(path: str | Path) -> Network:
    """Read a network file: strict JSON (`.json`) or strict YAML (anything else)."""
    from dfs_sim import jsonio, yamlio

    path = Path(local_or_shipped(path))
    with input_boundary(path, "a network file"):
        data = jsonio.load(path, "network file") if path.suffix == ".json" else yamlio.load(path, "network file")
        return network_from_dict(data, path)
