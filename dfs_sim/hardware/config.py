"""Accelerator descriptions: a validated YAML schema (see docs/hardware.md).

Each YAML section is a frozen dataclass (ArraySpec, PrecisionSpec, ComputeSpec, Buffer, DramSpec,
StaticSpec, StorageSpec, BatchSpec, MappingSpec; the area's is AreaSpec in area.py) whose fields are
the section's keys, read by a small table of `Key`s: `hw.dram.bandwidth_bits_per_cycle` is the
`dram.bandwidth_bits_per_cycle` of the YAML and of `--set`. HwConfig composes them with the
top-level keys and the provenance (path, sources, overrides, the YAML data).

Every section that carries numbers names the entry of `sources:` it comes from, so a config
cannot hold an uncited number. Unknown keys, wrong types and impossible values are errors that
name the file and the field.

Derived configs: a YAML may `extends:` another (a shipped name or a path), overriding its keys;
`--set section.key=value` and `HwConfig.replace({...})` override keys of a loaded config. All three
edit the YAML data and parse it again. Every derived quantity (vector lanes, per-array energies,
area, the digest) is a property computed from the fields, so it follows any change.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

from dfs_sim.errors import InputError, existing_file, input_boundary, require, shown
from dfs_sim.errors import is_int as _is_int
from dfs_sim.hardware.area import AREA_KEYS, AreaSpec, area_from_dict
from dfs_sim.hardware.link_coding import COMPRESSIONS
from dfs_sim.limits import MAX_BATCH, MAX_BITS, MAX_CHANNELS, MAX_NAME_CHARS, MAX_OUTPUT_BITS
from dfs_sim.resources import shipped

OPERANDS = ("weights", "inputs", "outputs")
MAX_VALUE_BITS = 32  # widest stored operand a feature-map code must hold
UNROLL_DIMS = ("K", "C", "P", "N")  # output channels, input channels, output pixels, batch
STORAGE_LAYOUTS = ("bit-plane", "packed", "fixed")
BATCH_POLICIES = ("lockstep", "bucketed", "grouped")
OBJECTIVES = ("cycles", "energy")
DATAFLOWS = ("auto", "input-stationary", "output-stationary", "weight-stationary")
# How data movement is charged: what the hardware would do, or Bit Fusion's simulator's conventions
# (docs/hardware.md, "Conventions").
CONVENTIONS = ("physical", "bitfusion-sim")
RESIDENCIES = ("auto", "always", "never")
MAX_LANES = 1 << 24

REQUIRED = object()


@dataclass(frozen=True)
class Key:
    """How one YAML key is checked. `kind`: int, float (any number, kept as written), str, bool or dict;
    numbers lie in [low, high]; a key with `choices` must be one of them. `default`: REQUIRED (none), a
    value, or a function of the keys of the section read before it. `check(value, source, field)`: a
    rule of the key's own, returning the value to keep."""

    kind: type
    low: float = 0
    high: float = 0
    choices: tuple = ()
    default: object = REQUIRED
    check: Callable | None = None

    def checked(self, value: object, source: object, field: str) -> object:
        if self.choices:
            require(isinstance(value, str) and value in self.choices, source, field,
                    f"must be one of {', '.join(self.choices)}, got {shown(value)}")
        elif self.kind is bool:  # the string "false" or the number 0 is an error, not a truthy value
            require(isinstance(value, bool), source, field, f"must be true or false, got {shown(value)}")
        elif self.kind is str:
            require(isinstance(value, str) and (value != "" or self.default == ""), source, field,
                    f"must be a string, got {shown(value)}")
        elif self.kind in (dict, list):
            require(isinstance(value, self.kind), source, field,
                    f"must be a {'mapping' if self.kind is dict else 'list'}")
        else:  # the bounds say what is physically meaningful (and keep costs finite)
            integer = self.kind is int
            ok = _is_int(value) if integer else (isinstance(value, (int, float)) and not isinstance(value, bool))
            low, high = (int(self.low), int(self.high)) if integer else (f"{self.low:g}", f"{self.high:g}")
            require(ok and self.low <= value <= self.high, source, field,
                    f"must be {'an integer' if integer else 'a number'} in [{low}, {high}], got {shown(value)}")
            value = int(value) if integer else value
        return self.check(value, source, field) if self.check else value


def read_keys(keys: dict, data: dict, source: object, where: str, known: dict | None = None) -> dict:
    """The values of the keys of `data` (the mapping at `where`), each checked by its Key; an absent key
    takes its default (null is a value, an error, unless the default is null). `known`: values a default
    may depend on, besides the keys read before it."""
    got = dict(known or {})
    for name, key in keys.items():
        field = f"{where}.{name}" if where else name
        value = data.get(name)
        require(value is not None or key.default is not REQUIRED, source, field, "is required")
        if name not in data or (value is None and key.default is None):
            got[name] = key.default(got) if callable(key.default) else key.default
        else:
            got[name] = key.checked(value, source, field)
    return {name: got[name] for name in keys}


class Section:
    """A YAML section as a frozen dataclass: its fields are its keys, checked by KEYS."""

    KEYS: ClassVar[dict]
    NAME: ClassVar[str]

    @classmethod
    def from_dict(cls, data: object, source: object, sources: dict, known: dict | None = None, where: str = ""):
        where = where or cls.NAME
        require(isinstance(data, dict), source, where, "must be a mapping")
        _no_unknown(data, set(cls.KEYS) | {"source"}, source, where)
        _cited(data, where, sources, source)
        values = read_keys(cls.KEYS, data, source, where, known)
        return cls(**cls.finish(values, data, source, where))

    @classmethod
    def finish(cls, values: dict, data: dict, source: object, where: str) -> dict:
        """Rules between keys; the values to construct from."""
        return values


def _unroll(unroll: dict, source: object, field: str) -> dict:
    require(bool(unroll), source, field, f"must map dimensions ({', '.join(UNROLL_DIMS)}) to parallel lanes")
    for dim in unroll:
        require(dim in UNROLL_DIMS, source, f"{field}.{dim}", f"unknown dimension (use {', '.join(UNROLL_DIMS)})")
    return {dim: Key(int, 1, MAX_CHANNELS).checked(lanes, source, f"{field}.{dim}") for dim, lanes in unroll.items()}


def _params(params: dict, source: object, field: str) -> dict:
    for key, value in params.items():  # each model checks its own; these bounds keep its arithmetic in int64
        require(isinstance(value, str) or (_is_int(value) and 0 <= value <= MAX_CHANNELS), source,
                f"{field}.{key}", f"must be a string or an integer in [0, {MAX_CHANNELS}], got {shown(value)}")
    return dict(params)


@dataclass(frozen=True)
class ArraySpec(Section):
    NAME = "array"
    KEYS = {"unroll": Key(dict, check=_unroll), "vector_lanes": Key(int, 1, MAX_LANES, default=None),
            "output_bits": Key(int, 1, MAX_OUTPUT_BITS, default=32),
            "params": Key(dict, default=lambda got: {}, check=_params)}

    unroll: dict  # dimension (UNROLL_DIMS) -> parallel lanes
    vector_lanes: int | None  # as written; None: the K x P lanes (HwConfig.vector_lanes)
    output_bits: int  # the width partial sums are kept and written at
    params: dict  # the compute model's own parameters

    @property
    def lanes(self) -> int:
        total = 1
        for value in self.unroll.values():
            total *= value
        return total


@dataclass(frozen=True)
class PrecisionSpec(Section):
    NAME = "precision"
    KEYS = {"native_bits": Key(int, 1, MAX_BITS), "min_bits": Key(int, 1, MAX_BITS, default=1),
            "max_bits": Key(int, 1, MAX_BITS, default=lambda got: got["native_bits"]),
            "wider": Key(str, choices=("multi-pass", "error"), default="multi-pass"),
            "full_precision": Key(str, choices=("declared", "native"), default="declared")}

    native_bits: int
    min_bits: int
    max_bits: int
    wider: str  # wider operands than max_bits: "multi-pass" or "error"
    full_precision: str  # "declared" (full precision runs at its declared bits) or "native"

    @classmethod
    def finish(cls, values, data, source, where):
        require(values["min_bits"] <= values["max_bits"], source, f"{where}.min_bits",
                f"must not exceed {where}.max_bits")
        return values


@dataclass(frozen=True)
class ComputeSpec(Section):
    NAME = "compute"
    KEYS = {"energy_pj_per_op": Key(float, 0, 1e6, default=0.0), "op": Key(str),
            "energy_pj_per_cycle": Key(float, 0, 1e9, default=0.0),
            "array_lanes": Key(int, 1, MAX_LANES, default=None)}

    energy_pj_per_op: float
    op: str  # what one op is
    energy_pj_per_cycle: float  # as written, for array_lanes lanes (HwConfig.compute_pj_per_cycle scales it)
    array_lanes: int | None  # the lanes a per-array figure was stated for; None: it does not scale

    @classmethod
    def finish(cls, values, data, source, where):
        require("energy_pj_per_op" in data or "energy_pj_per_cycle" in data, source, where,
                "needs energy_pj_per_op and/or energy_pj_per_cycle")
        return {**values, "energy_pj_per_op": float(values["energy_pj_per_op"]),
                "energy_pj_per_cycle": float(values["energy_pj_per_cycle"])}


def _holds(holds: list, source: object, field: str) -> tuple:
    require(holds and all(isinstance(h, str) and h in OPERANDS for h in holds) and len(set(holds)) == len(holds),
            source, field, f"must list distinct operands among {', '.join(OPERANDS)}")
    return tuple(holds)


@dataclass(frozen=True)
class Buffer(Section):
    NAME = "buffers"
    KEYS = {"name": Key(str), "holds": Key(list, check=_holds), "size_kb": Key(float, 1e-3, 1e7),
            "read_pj_per_bit": Key(float, 0, 1e4), "write_pj_per_bit": Key(float, 0, 1e4),
            "double_buffered": Key(bool, default=False)}

    name: str
    holds: tuple[str, ...]
    size_bits: int
    read_pj_per_bit: float
    write_pj_per_bit: float
    double_buffered: bool

    @classmethod
    def finish(cls, values, data, source, where):
        size_kb = values.pop("size_kb")
        return {**values, "size_bits": int(round(size_kb * 8192))}


@dataclass(frozen=True)
class DramSpec(Section):
    NAME = "dram"
    KEYS = {"fmap_compression": Key(str, choices=COMPRESSIONS, default="none"),
            "rlc_run_bits": Key(int, 1, 16, default=5), "rlc_word_bits": Key(int, 1, 4096, default=64),
            "bandwidth_bits_per_cycle": Key(float, 1e-3, 1e7), "energy_pj_per_bit": Key(float, 0, 1e5)}

    fmap_compression: str  # how feature maps are coded on the link (dfs_sim/hardware/link_coding.py)
    rlc_run_bits: int
    rlc_word_bits: int
    bandwidth_bits_per_cycle: float
    energy_pj_per_bit: float

    @classmethod
    def finish(cls, values, data, source, where):
        low = values["rlc_run_bits"] + MAX_VALUE_BITS + 1
        word = values["rlc_word_bits"]
        require(word >= low, source, f"{where}.rlc_word_bits", f"must be an integer in [{low}, 4096] (a run, a "
                f"{MAX_VALUE_BITS}-bit value and the end bit), got {word}")
        return values


@dataclass(frozen=True)
class StaticSpec(Section):
    NAME = "static"
    KEYS = {"power_mw": Key(float, 0, 1e7), "array_lanes": Key(int, 1, MAX_LANES, default=None)}

    power_mw: float  # as written, for array_lanes lanes (HwConfig.static_mw scales it)
    array_lanes: int | None  # the lanes it was stated for; None: it does not scale


@dataclass(frozen=True)
class StorageSpec(Section):
    NAME = "storage"
    KEYS = {"weights": Key(str, choices=STORAGE_LAYOUTS, default="packed"),
            "activations": Key(str, choices=("packed", "fixed"), default="packed"),
            "fixed_bits": Key(int, 1, MAX_BITS, default=lambda got: got["native_bits"])}

    weights: str  # layout of stored weights
    activations: str
    fixed_bits: int  # the width a "fixed" layout stores at (default: precision.native_bits)


def check_batch_size(size: object, source: object = "--batch", field: str | None = None) -> int:
    return BatchSpec.KEYS["size"].checked(size, source, field)


def check_batch_policy(policy: object, source: object = "--policy", field: str | None = None) -> str:
    return BatchSpec.KEYS["policy"].checked(policy, source, field)


@dataclass(frozen=True)
class BatchSpec(Section):
    """The batch a run uses unless the engine is given another (simulate(batch=, policy=))."""

    NAME = "batch"
    KEYS = {"size": Key(int, 1, MAX_BATCH, default=1), "policy": Key(str, choices=BATCH_POLICIES, default="lockstep")}

    size: int
    policy: str

    def run(self, size: int | None = None, policy: str | None = None) -> "BatchSpec":
        """The batch of a run: `size` and `policy` where given (checked; errors name --batch and --policy),
        else these defaults."""
        return BatchSpec(self.size if size is None else check_batch_size(size),
                         self.policy if policy is None else check_batch_policy(policy))


@dataclass(frozen=True)
class MappingSpec(Section):
    NAME = "mapping"
    KEYS = {"objective": Key(str, choices=OBJECTIVES, default="cycles"),
            "dataflow": Key(str, choices=DATAFLOWS, default="auto"),
            "weights_on_chip": Key(str, choices=RESIDENCIES, default="auto"),
            "activations_on_chip": Key(str, choices=RESIDENCIES, default="auto"),
            "im2col": Key(str, choices=("input-layers", "never"), default="input-layers"),
            "conventions": Key(str, choices=CONVENTIONS, default="physical")}

    objective: str
    dataflow: str
    weights_on_chip: str
    activations_on_chip: str
    im2col: str
    conventions: str

    @classmethod
    def finish(cls, values, data, source, where):
        if values["conventions"] == "bitfusion-sim":
            for key in ("weights_on_chip", "activations_on_chip"):
                require(key not in data, source, f"{where}.{key}",
                        "conflicts with conventions: bitfusion-sim, which moves every layer to and from DRAM")
        return values


SECTIONS = {cls.NAME: cls for cls in (ArraySpec, PrecisionSpec, ComputeSpec, DramSpec, StaticSpec, StorageSpec,
                                      BatchSpec, MappingSpec)}
OPTIONAL_SECTIONS = ("batch", "mapping")


def _name_length(name: str, source: object, field: str) -> str:
    require(len(name) <= MAX_NAME_CHARS, source, field, f"must be at most {MAX_NAME_CHARS} characters")
    return name


def _known_model(model: str, source: object, field: str) -> str:
    from dfs_sim.hardware.accelerators import MODELS

    require(model in MODELS, source, field, f"unknown compute model '{model}' (known: {', '.join(sorted(MODELS))})")
    return model


TOP_KEYS = {"name": Key(str, check=_name_length), "description": Key(str, default=""),
            "model": Key(str, check=_known_model)}
TOP_NUMBERS = {"clock_mhz": Key(float, 1e-3, 1e5), "technology_nm": Key(int, 1, 1000)}
TOP_LEVEL = (set(TOP_KEYS) | set(TOP_NUMBERS) | set(SECTIONS)
             | {"extends", "buffers", "area", "sources", "source"})

# What the digest hashes, by the name it hashes it under. The names are those of the flat HwConfig
# before the sections, so the digests recorded in traces/ and traces/checkpoints/ stay valid;
# tests/test_hw_config.py checks that every field of every section is here.
DIGEST_FIELDS = {
    "model": "model", "technology_nm": "technology_nm", "clock_mhz": "clock_mhz",
    "unroll": "array.unroll", "stated_vector_lanes": "array.vector_lanes", "output_bits": "array.output_bits",
    "model_params": "array.params",
    "native_bits": "precision.native_bits", "min_bits": "precision.min_bits", "max_bits": "precision.max_bits",
    "wider": "precision.wider", "full_precision": "precision.full_precision",
    "compute_pj_per_op": "compute.energy_pj_per_op", "compute_op": "compute.op",
    "stated_pj_per_cycle": "compute.energy_pj_per_cycle", "compute_array_lanes": "compute.array_lanes",
    "buffers": "buffers",
    "fmap_compression": "dram.fmap_compression", "rlc_run_bits": "dram.rlc_run_bits",
    "rlc_word_bits": "dram.rlc_word_bits", "dram_bits_per_cycle": "dram.bandwidth_bits_per_cycle",
    "dram_pj_per_bit": "dram.energy_pj_per_bit",
    "stated_static_mw": "static.power_mw", "static_array_lanes": "static.array_lanes",
    "weight_layout": "storage.weights", "activation_layout": "storage.activations",
    "fixed_bits": "storage.fixed_bits",
    "batch_size": "batch.size", "batch_policy": "batch.policy",
    "objective": "mapping.objective", "dataflow": "mapping.dataflow", "weights_on_chip": "mapping.weights_on_chip",
    "activations_on_chip": "mapping.activations_on_chip", "im2col": "mapping.im2col",
    "conventions": "mapping.conventions",
    "area": "area",
}


@dataclass(frozen=True)
class HwConfig:
    path: str
    name: str
    model: str  # the compute model (dfs_sim/hardware/accelerators)
    description: str
    technology_nm: int
    clock_mhz: float
    array: ArraySpec
    precision: PrecisionSpec
    compute: ComputeSpec
    buffers: tuple[Buffer, ...]
    dram: DramSpec
    static: StaticSpec
    storage: StorageSpec
    batch: BatchSpec  # the defaults of simulate(batch=, policy=)
    mapping: MappingSpec
    area: AreaSpec | None  # dfs_sim/hardware/area.py computes the area from it and the fields above
    sources: dict
    overrides: tuple = ()  # ((dotted key, value), ...) applied by --set or replace(), in order
    raw: dict = dataclasses.field(default=None, repr=False, compare=False)  # the YAML data (after extends)

    # Derived quantities: properties, so that no change to the fields can leave them stale.
    @property
    def lanes(self) -> int:
        return self.array.lanes

    @property
    def vector_lanes(self) -> int:
        """Lanes of the vector unit (pooling, element-wise): array.vector_lanes, else K x P."""
        unroll = self.array.unroll
        return self.array.vector_lanes or max(unroll.get("K", 1) * unroll.get("P", 1), 1)

    @property
    def compute_pj_per_cycle(self) -> float:
        return self.compute.energy_pj_per_cycle * _lane_scale(self.lanes, self.compute.array_lanes)

    @property
    def static_mw(self) -> float:
        return self.static.power_mw * _lane_scale(self.lanes, self.static.array_lanes)

    @property
    def digest(self) -> str:
        """Of everything that determines a cost (not the name, path, description, sources or overrides)."""
        content = {name: self.get(path) for name, path in DIGEST_FIELDS.items()}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=repr).encode()).hexdigest()[:16]

    def get(self, dotted: str) -> object:
        """The field at a dotted path: get("dram.bandwidth_bits_per_cycle")."""
        value = self
        for part in dotted.split("."):
            value = getattr(value, part)
        return value

    @property
    def label(self) -> str:
        """The name, with the overrides that derived it: 'BitFusion [array.unroll.K=64]'."""
        if not self.overrides:
            return self.name
        return f"{self.name} [{' '.join(f'{k}={v}' for k, v in self.overrides)}]"

    def replace(self, overrides: dict) -> "HwConfig":
        """This config with `overrides` ({"array.unroll.K": 64, "buffers.wbuf.size_kb": 128, ...}) applied to
        its YAML data and parsed again: validated, and every derived quantity recomputed. Errors name the key."""
        parsed = None if self.raw is None else hw_from_dict(self.raw, self.path)
        require(parsed is not None and parsed == dataclasses.replace(self, overrides=()), self.path, None,
                "was changed with dataclasses.replace, so its YAML data no longer describes it: make every "
                "change through HwConfig.replace")
        return apply_overrides(self.raw, overrides, self.path, done=self.overrides)

    def residency(self, what: str) -> str:
        """'auto', 'always' or 'never': whether the weights (what='weights') or a layer's activations
        ('activations') stay on chip. Bit Fusion's simulator's conventions move every layer to and from DRAM."""
        if self.mapping.conventions == "bitfusion-sim":
            return "never"
        return self.mapping.weights_on_chip if what == "weights" else self.mapping.activations_on_chip

    def buffer_for(self, operand: str) -> Buffer:
        return next(b for b in self.buffers if operand in b.holds)


def load_hw(spec: str | Path | dict, overrides: dict | list | tuple | None = None) -> HwConfig:
    """Load a config by path, by the name of a shipped config (e.g. 'stripes'), or from its YAML data as a
    dict (an `extends:` in it is a shipped name or a path relative to the working directory); then apply
    `overrides`: a mapping of dotted keys to values, or --set strings 'section.key=value'."""
    if isinstance(spec, dict):
        source = f"<dict {shown(spec.get('name', ''))}>"
        data = resolve_extends(copy.deepcopy(spec), source, Path.cwd(), ())
    else:
        path = resolve_hw_path(spec)
        source = path
        with input_boundary(path, "a hardware config"):
            data = _load_resolved(path, ())
    if isinstance(overrides, (list, tuple)):
        overrides = parse_set(overrides)
    if overrides:
        return apply_overrides(data, overrides, source)
    with input_boundary(source, "a hardware config"):
        return hw_from_dict(data, source)


MAX_EXTENDS_DEPTH = 8


def _load_resolved(path: Path, chain: tuple) -> dict:
    from dfs_sim import yamlio

    data = yamlio.load(path, "hardware config")
    return resolve_extends(data, path, path.parent, chain + (path.resolve(),))


def resolve_extends(data: object, source: object, base_dir: Path, chain: tuple) -> object:
    """`data` merged over the config it `extends:` (recursively). The child's keys win; mappings merge key by
    key, buffers by name; a section's `source:` ids are the parent's and the child's together. A section the
    child writes numbers into must cite its own source, so an inherited citation never covers a new number."""
    if not isinstance(data, dict) or "extends" not in data:
        return data
    parent_ref = data["extends"]
    require(isinstance(parent_ref, str) and parent_ref.strip(), source, "extends",
            "must be the name of a shipped config or a path to a YAML")
    require(len(chain) < MAX_EXTENDS_DEPTH, source, "extends", f"more than {MAX_EXTENDS_DEPTH} levels deep")
    if Path(parent_ref).suffix.lower() in (".yaml", ".yml") or "/" in parent_ref:  # a path, relative to the child
        parent_path = base_dir / parent_ref
        try:
            existing_file(parent_path, "hardware config")
        except InputError as err:
            raise InputError(source, "extends", f"{shown(parent_ref)}: {err.message}") from None
    else:
        try:
            parent_path = resolve_hw_path(parent_ref)
        except InputError as err:
            raise InputError(source, "extends", err.message) from None
    require(parent_path.resolve() not in chain, source, "extends", f"{shown(parent_ref)} extends itself (a cycle)")
    with input_boundary(parent_path, "a hardware config"):
        parent = _load_resolved(parent_path, chain)
    require(isinstance(parent, dict), parent_path, None, "a hardware config must be a YAML mapping")
    child = {k: v for k, v in data.items() if k != "extends"}
    sources = {**(parent.get("sources") or {}), **(child.get("sources") or {})}
    _child_cites_its_numbers(child, sources, source)
    return _merged(parent, child)


def _child_cites_its_numbers(child: dict, sources: dict, source: object) -> None:
    _cited(child, "top level", sources, source, keys=("clock_mhz", "technology_nm"))
    for key, value in child.items():
        if (key in SECTIONS or key == "area") and isinstance(value, dict):
            _cited(value, key, sources, source)
    for i, raw in enumerate(child.get("buffers") or []):
        if isinstance(raw, dict):
            _cited(raw, f"buffers[{i}]", sources, source)


def _merged(parent: object, child: object, key: str = "") -> object:
    if key == "source":
        ids = [x for value in (parent, child) for x in (value if isinstance(value, list) else [value])]
        return list(dict.fromkeys(ids))
    if key == "buffers" and isinstance(parent, list) and isinstance(child, list):
        by_name = {b.get("name"): i for i, b in enumerate(parent) if isinstance(b, dict)}
        out = list(parent)
        for b in child:
            i = by_name.get(b.get("name")) if isinstance(b, dict) else None
            if i is None:
                out.append(b)
            else:
                out[i] = _merged(out[i], b)
        return out
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for k, v in child.items():
            out[k] = _merged(parent[k], v, k) if k in parent else v
        return out
    return child


def parse_set(items) -> dict:
    """--set strings 'section.key=value' as {dotted key: value}; the value is read as a YAML scalar or flow
    collection (64, 0.5, true, [weights], {K: 64})."""
    from dfs_sim import yamlio

    overrides = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        require(bool(sep) and key and all(key.split(".")), "--set", shown(item),
                "must be SECTION.KEY=VALUE, e.g. array.unroll.K=64")
        require(key not in overrides, "--set", key, "is given twice")
        overrides[key] = yamlio.loads(text, f"--set {key}") if text.strip() else ""
    return overrides


def apply_overrides(data: dict, overrides: dict, source: object, done: tuple = ()) -> HwConfig:
    """The config parsed from `data` with each dotted key set; an error names the --set key it comes from."""
    require(isinstance(overrides, dict), "--set", None, "overrides must map dotted keys to values")
    data = copy.deepcopy(data)
    for key, value in overrides.items():
        _set_path(data, key, value)
    try:
        config = hw_from_dict(data, source)
    except InputError as err:
        sections = {k.split(".")[0] for k in overrides}
        if (err.field or "").split(".")[0].split("[")[0] in sections:
            raise InputError("--set", err.field, f"{err.message} (in {source})") from None
        raise
    return dataclasses.replace(config, overrides=tuple(done) + tuple(overrides.items()))


def _set_path(data: dict, key: str, value: object) -> None:
    require(isinstance(key, str) and key and all(key.split(".")), "--set", shown(key),
            "must be a dotted key such as array.unroll.K")
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[:depth + 1])
        if isinstance(node, list):  # buffers: by name, or by index
            match = [b for b in node if isinstance(b, dict) and b.get("name") == part]
            if not match and part.isdigit() and int(part) < len(node):
                match = [node[int(part)]]
            names = ", ".join(str(b.get("name")) for b in node if isinstance(b, dict))
            require(bool(match), "--set", key, f"no buffer named {shown(part)} (buffers: {names})")
            node = match[0]
            continue
        require(isinstance(node, dict), "--set", key, f"{'.'.join(parts[:depth])} is a value, not a section")
        if part not in node:
            require(depth > 0 or part in TOP_LEVEL, "--set", key, f"unknown section {shown(part)}")
            node[part] = {}
        node = node[part]
        require(isinstance(node, (dict, list)), "--set", key, f"{where} is a value, not a section")
    require(isinstance(node, dict), "--set", key, f"{'.'.join(parts[:-1])} is a list; name a buffer, e.g. "
                                                  f"buffers.wbuf.size_kb")
    node[parts[-1]] = value


def shipped_configs_dir() -> Path:
    return shipped("hw_configs")


def shipped_configs() -> list[Path]:
    return sorted(shipped_configs_dir().glob("*.yaml"))


def resolve_hw_path(path_or_name: str | Path) -> Path:
    require(isinstance(path_or_name, (str, Path)) and str(path_or_name).strip(), "--hw", None,
            "must be a YAML path or the name of a shipped config")
    path = Path(path_or_name)
    if _lexists(path) and existing_file(path, "hardware config", quiet=True):
        return path
    if path.suffix == "" and path.parent == Path("."):
        shipped = shipped_configs_dir() / f"{path.name}.yaml"
        if shipped.is_file():
            return shipped
    if _lexists(path):
        existing_file(path, "hardware config")  # says what it is instead (a directory, a name too long)
    known = ", ".join(p.stem for p in shipped_configs())
    raise InputError(path, None, f"no such hardware config (shipped: {known})")


def _lexists(path: Path) -> bool:
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # a name the system cannot look up: existing_file says why
    return True


def _lane_scale(lanes: int, stated_for: int | None) -> float:
    return 1.0 if stated_for is None else lanes / stated_for


def hw_from_dict(data: object, source: object) -> HwConfig:
    require(isinstance(data, dict), source, None, "a hardware config must be a YAML mapping")
    require("extends" not in data, source, "extends", "is resolved when a file or dict is loaded (load_hw), "
                                                      "not afterwards: --set and replace() cannot change it")
    _no_unknown(data, TOP_LEVEL, source, "")
    sources = data.get("sources")
    require(isinstance(sources, dict) and sources, source, "sources",
            "must map source ids to citations (every number needs a source)")
    for key, cite in sources.items():
        require(isinstance(key, str), source, "sources", "source ids must be strings")
        require(isinstance(cite, str) and cite.strip(), source, f"sources.{key}", "must be a citation string")

    top = read_keys(TOP_KEYS, data, source, "")
    _cited(data, "top level", sources, source, keys=tuple(TOP_NUMBERS))
    top.update(read_keys(TOP_NUMBERS, data, source, ""))
    top["clock_mhz"] = float(top["clock_mhz"])

    def section(name: str, **known):
        value = data.get(name)
        return SECTIONS[name].from_dict({} if value is None and name in OPTIONAL_SECTIONS else value,
                                        source, sources, known)

    array, precision, compute = section("array"), section("precision"), section("compute")
    buffers = _buffers(data.get("buffers"), source, sources)
    dram, static = section("dram"), section("static")
    storage = section("storage", native_bits=precision.native_bits)
    batch, mapping = section("batch"), section("mapping")
    area = {} if data.get("area") is None else data["area"]
    require(isinstance(area, dict), source, "area", "must be a mapping")
    _no_unknown(area, AREA_KEYS, source, "area")
    _cited(area, "area", sources, source)
    config = HwConfig(
        path=str(source), **top, array=array, precision=precision, compute=compute, buffers=buffers, dram=dram,
        static=static, storage=storage, batch=batch, mapping=mapping,
        area=area_from_dict(area, [b.name for b in buffers], source), sources=dict(sources), raw=data)
    from dfs_sim.hardware.accelerators import MODELS

    MODELS[config.model].validate(config)
    return config


def _buffers(raw_buffers: object, source: object, sources: dict) -> tuple[Buffer, ...]:
    require(isinstance(raw_buffers, list) and raw_buffers, source, "buffers", "must be a non-empty list")
    buffers = tuple(Buffer.from_dict(raw, source, sources, where=f"buffers[{i}]") for i, raw in enumerate(raw_buffers))
    for operand in OPERANDS:
        holders = [b.name for b in buffers if operand in b.holds]
        require(len(holders) == 1, source, "buffers",
                f"{operand} must be held by exactly one buffer (held by {holders or 'none'})")
    require(len({b.name for b in buffers}) == len(buffers), source, "buffers", "buffer names must be unique")
    return buffers


def _no_unknown(mapping: dict, known: set, source: object, where: str) -> None:
    unknown = set(mapping) - known
    if unknown:
        first = sorted(map(str, unknown))[0]
        raise InputError(source, f"{where}.{first}" if where else first, "unknown key")


def _cited(mapping: dict, where: str, sources: dict, source: object, keys=None) -> None:
    """A mapping that holds numbers must say which `sources:` entry they come from."""
    numeric = [k for k, v in mapping.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and (keys is None or k in keys)]
    numeric += [k for k, v in mapping.items() if isinstance(v, dict) and k not in ("params",)
                and any(isinstance(x, (int, float)) for x in v.values()) and (keys is None or k in keys)]
    if not numeric:
        return
    cite = mapping.get("source")
    field_name = f"{where}.source" if where != "top level" else "source"
    require(cite is not None, source, field_name, f"numbers here ({', '.join(numeric)}) need a source id")
    cites = cite if isinstance(cite, list) else [cite]
    require(len(cites) > 0, source, field_name, f"numbers here ({', '.join(numeric)}) need a source id")
    for c in cites:
        require(isinstance(c, str) and c in sources, source, field_name, f"{shown(c)} is not an id in sources:")


