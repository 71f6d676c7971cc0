"""Accelerator descriptions: a validated YAML schema (see docs/hardware.md).

Every section that carries numbers names the entry of `sources:` it comes from, so a config
cannot hold an uncited number. Unknown keys, wrong types and impossible values are errors that
name the file and the field.

Derived configs: a YAML may `extends:` another (a shipped name or a path), overriding its keys;
`--set section.key=value` and `HwConfig.replace({...})` override keys of a loaded config. All three
edit the YAML data and parse it again, so every derived quantity (vector lanes, per-array energies,
area, the digest) follows the overridden values; `dataclasses.replace` recomputes them too, since
they are not constructor arguments.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

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
BATCH_POLICIES = ("lockstep", "bucketed")
OBJECTIVES = ("cycles", "energy")
DATAFLOWS = ("auto", "input-stationary", "output-stationary", "weight-stationary")
# How data movement is charged: what the hardware would do, or Bit Fusion's simulator's conventions
# (docs/hardware.md, "Conventions").
CONVENTIONS = ("physical", "bitfusion-sim")

_SCHEMA_KEYS = {
    "top": {"extends", "name", "model", "description", "technology_nm", "clock_mhz", "array", "precision", "compute",
            "buffers", "dram", "static", "storage", "batch", "mapping", "area", "sources", "source"},
    "array": {"unroll", "vector_lanes", "output_bits", "params", "source"},
    "precision": {"native_bits", "min_bits", "max_bits", "wider", "full_precision", "source"},
    "compute": {"energy_pj_per_op", "op", "energy_pj_per_cycle", "array_lanes", "source"},
    "buffer": {"name", "holds", "size_kb", "read_pj_per_bit", "write_pj_per_bit", "double_buffered", "source"},
    "dram": {"bandwidth_bits_per_cycle", "energy_pj_per_bit", "fmap_compression", "rlc_run_bits", "rlc_word_bits",
             "source"},
    "static": {"power_mw", "array_lanes", "source"},
    "storage": {"weights", "activations", "fixed_bits", "source"},
    "batch": {"size", "policy", "source"},
    "mapping": {"objective", "dataflow", "weights_on_chip", "activations_on_chip", "im2col", "conventions", "source"},
    "area": AREA_KEYS,
}


@dataclass(frozen=True)
class Buffer:
    name: str
    holds: tuple[str, ...]
    size_bits: int
    read_pj_per_bit: float
    write_pj_per_bit: float
    double_buffered: bool


@dataclass(frozen=True)
class HwConfig:
    path: str
    name: str
    model: str
    description: str
    technology_nm: int
    clock_mhz: float
    unroll: dict
    model_params: dict
    native_bits: int
    min_bits: int
    max_bits: int
    wider: str  # "multi-pass" or "error"
    full_precision: str  # "declared" or "native"
    compute_pj_per_op: float
    stated_pj_per_cycle: float  # compute.energy_pj_per_cycle as written
    compute_op: str
    buffers: tuple[Buffer, ...]
    dram_bits_per_cycle: float
    dram_pj_per_bit: float
    stated_static_mw: float  # static.power_mw as written
    weight_layout: str
    activation_layout: str
    fixed_bits: int
    batch_size: int
    batch_policy: str
    objective: str
    output_bits: int = 32
    dataflow: str = "auto"
    weights_on_chip: str = "auto"
    activations_on_chip: str = "auto"
    im2col: str = "input-layers"
    conventions: str = "physical"
    fmap_compression: str = "none"
    rlc_run_bits: int = 5
    rlc_word_bits: int = 64
    sources: dict = field(default_factory=dict)
    area: AreaSpec | None = None  # dfs_sim/hardware/area.py computes the area from it and the fields above
    stated_vector_lanes: int | None = None  # array.vector_lanes; None: the K x P lanes
    # The lane count a per-array figure (compute.energy_pj_per_cycle, static.power_mw) was stated for;
    # None: the figure does not scale with the array.
    compute_array_lanes: int | None = None
    static_array_lanes: int | None = None
    overrides: tuple = ()  # ((dotted key, value), ...) applied by --set or replace(), in order
    raw: dict = field(default=None, repr=False, compare=False)  # the YAML data (after extends) it was parsed from
    # Derived from the fields above, never passed in: dataclasses.replace() recomputes them.
    vector_lanes: int = field(init=False)
    compute_pj_per_cycle: float = field(init=False)
    static_mw: float = field(init=False)
    digest: str = field(init=False)  # of everything that determines a cost (not the name, path or sources)

    def __post_init__(self):
        lanes = self.lanes
        derived = {
            "vector_lanes": self.stated_vector_lanes or max(self.unroll.get("K", 1) * self.unroll.get("P", 1), 1),
            "compute_pj_per_cycle": self.stated_pj_per_cycle * _lane_scale(lanes, self.compute_array_lanes),
            "static_mw": self.stated_static_mw * _lane_scale(lanes, self.static_array_lanes),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)
        content = {f.name: getattr(self, f.name) for f in fields(self)
                   if f.init and f.name not in ("path", "name", "description", "sources", "overrides", "raw")}
        object.__setattr__(self, "digest", hashlib.sha256(
            json.dumps(content, sort_keys=True, default=repr).encode()).hexdigest()[:16])

    @property
    def lanes(self) -> int:
        total = 1
        for value in self.unroll.values():
            total *= value
        return total

    @property
    def label(self) -> str:
        """The name, with the overrides that derived it: 'BitFusion [array.unroll.K=64]'."""
        if not self.overrides:
            return self.name
        return f"{self.name} [{' '.join(f'{k}={v}' for k, v in self.overrides)}]"

    def replace(self, overrides: dict) -> "HwConfig":
        """This config with `overrides` ({"array.unroll.K": 64, "buffers.wbuf.size_kb": 128, ...}) applied to
        its YAML data and parsed again: validated, and every derived quantity recomputed. Errors name the key.
        The batch size and policy (with_batch) carry over unless overridden."""
        import dataclasses

        run = {"batch_size": self.batch_size, "batch_policy": self.batch_policy}
        parsed = None if self.raw is None else hw_from_dict(self.raw, self.path)
        require(parsed is not None and dataclasses.replace(parsed, **run) == _without_overrides(self), self.path,
                None, "was changed with dataclasses.replace, so its YAML data no longer describes it: make every "
                      "change through HwConfig.replace")
        config = apply_overrides(self.raw, overrides, self.path, done=self.overrides)
        keep = {name: value for (name, key), value in zip((("batch_size", "batch.size"),
                                                            ("batch_policy", "batch.policy")), run.values())
                if key not in overrides}
        return dataclasses.replace(config, **keep)

    def residency(self, what: str) -> str:
        """'auto', 'always' or 'never': whether the weights (what='weights') or a layer's activations
        ('activations') stay on chip. Bit Fusion's simulator's conventions move every layer to and from DRAM."""
        if self.conventions == "bitfusion-sim":
            return "never"
        return self.weights_on_chip if what == "weights" else self.activations_on_chip

    def buffer_for(self, operand: str) -> Buffer:
        return next(b for b in self.buffers if operand in b.holds)

    def with_batch(self, size: int | None = None, policy: str | None = None) -> "HwConfig":
        from dataclasses import replace

        # These override the config, so errors name the override, not the file.
        if size is not None:
            check_batch_size(size)
        if policy is not None:
            require(policy in BATCH_POLICIES, "--policy", None, f"must be one of {', '.join(BATCH_POLICIES)}")
        return replace(self, batch_size=size or self.batch_size, batch_policy=policy or self.batch_policy)


def check_batch_size(size: object, source: str = "--batch") -> int:
    require(_is_int(size) and 1 <= size <= MAX_BATCH, source, None,
            f"must be an integer in [1, {MAX_BATCH}], got {shown(size)}")
    return size


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
        if key in _SCHEMA_KEYS and isinstance(value, dict):
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
    import dataclasses

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
            require(depth > 0 or part in _SCHEMA_KEYS["top"], "--set", key, f"unknown section {shown(part)}")
            node[part] = {}
        node = node[part]
        require(isinstance(node, (dict, list)), "--set", key, f"{where} is a value, not a section")
    require(isinstance(node, dict), "--set", key, f"{'.'.join(parts[:-1])} is a list; name a buffer, e.g. "
                                                  f"buffers.wbuf.size_kb")
    node[parts[-1]] = value


def _lane_scale(lanes: int, stated_for: int | None) -> float:
    return 1.0 if stated_for is None else lanes / stated_for


def _without_overrides(config: HwConfig) -> HwConfig:
    import dataclasses

    return dataclasses.replace(config, overrides=())


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


def hw_from_dict(data: object, source: object) -> HwConfig:
    require(isinstance(data, dict), source, None, "a hardware config must be a YAML mapping")
    require("extends" not in data, source, "extends", "is resolved when a file or dict is loaded (load_hw), "
                                                      "not afterwards: --set and replace() cannot change it")
    _no_unknown(data, "top", source, "")
    sources = data.get("sources")
    require(isinstance(sources, dict) and sources, source, "sources",
            "must map source ids to citations (every number needs a source)")
    for key, cite in sources.items():
        require(isinstance(key, str), source, "sources", "source ids must be strings")
        require(isinstance(cite, str) and cite.strip(), source, f"sources.{key}", "must be a citation string")

    def section(key: str, required: bool = True) -> dict:
        value = data.get(key)
        if value is None and not required:
            return {}
        require(isinstance(value, dict), source, key, "must be a mapping")
        _no_unknown(value, key, source, f"{key}.")
        _cited(value, key, sources, source)
        return value

    name = _get(data, "name", str, source)
    require(len(name) <= MAX_NAME_CHARS, source, "name", f"must be at most {MAX_NAME_CHARS} characters")
    description = data.get("description", "")
    require(isinstance(description, str), source, "description", "must be a string")
    from dfs_sim.hardware.accelerators import MODELS

    model = _get(data, "model", str, source)
    require(model in MODELS, source, "model", f"unknown compute model '{model}' (known: {', '.join(sorted(MODELS))})")
    _cited(data, "top level", sources, source, keys=("clock_mhz", "technology_nm"))
    clock = _number(data, "clock_mhz", source, "", low=1e-3, high=1e5)
    tech = _number(data, "technology_nm", source, "", low=1, high=1000, integer=True)

    array = section("array")
    unroll = array.get("unroll")
    require(isinstance(unroll, dict) and unroll, source, "array.unroll",
            f"must map dimensions ({', '.join(UNROLL_DIMS)}) to parallel lanes")
    for dim, lanes in unroll.items():
        require(dim in UNROLL_DIMS, source, f"array.unroll.{dim}", f"unknown dimension (use {', '.join(UNROLL_DIMS)})")
        require(_is_int(lanes) and 1 <= lanes <= MAX_CHANNELS, source, f"array.unroll.{dim}",
                f"must be an integer in [1, {MAX_CHANNELS}]")
    vector_lanes = array.get("vector_lanes")
    if vector_lanes is not None:
        vector_lanes = _number(array, "vector_lanes", source, "array.", low=1, high=1 << 24, integer=True)
    params = array.get("params", {})
    require(isinstance(params, dict), source, "array.params", "must be a mapping")
    for key, value in params.items():  # each model checks its own; these bounds keep its arithmetic in int64
        require(isinstance(value, str) or (_is_int(value) and 0 <= value <= MAX_CHANNELS), source,
                f"array.params.{key}", f"must be a string or an integer in [0, {MAX_CHANNELS}], got {shown(value)}")
    output_bits = _number(array, "output_bits", source, "array.", low=1, high=MAX_OUTPUT_BITS, integer=True,
                          default=32)

    precision = section("precision")
    native = _number(precision, "native_bits", source, "precision.", low=1, high=MAX_BITS, integer=True)
    min_bits = _number(precision, "min_bits", source, "precision.", low=1, high=MAX_BITS, integer=True, default=1)
    max_bits = _number(precision, "max_bits", source, "precision.", low=1, high=MAX_BITS, integer=True,
                       default=native)
    require(min_bits <= max_bits, source, "precision.min_bits", "must not exceed precision.max_bits")
    wider = precision.get("wider", "multi-pass")
    require(wider in ("multi-pass", "error"), source, "precision.wider", "must be 'multi-pass' or 'error'")
    full = precision.get("full_precision", "declared")
    require(full in ("declared", "native"), source, "precision.full_precision", "must be 'declared' or 'native'")

    compute = section("compute")
    compute_pj = _number(compute, "energy_pj_per_op", source, "compute.", low=0, high=1e6, default=0.0)
    cycle_pj = _number(compute, "energy_pj_per_cycle", source, "compute.", low=0, high=1e9, default=0.0)
    require("energy_pj_per_op" in compute or "energy_pj_per_cycle" in compute, source, "compute",
            "needs energy_pj_per_op and/or energy_pj_per_cycle")
    compute_lanes = _lanes_stated(compute, "compute", source)
    op = compute.get("op", "")
    require(isinstance(op, str) and op, source, "compute.op", "must describe what one op is")

    raw_buffers = data.get("buffers")
    require(isinstance(raw_buffers, list) and raw_buffers, source, "buffers", "must be a non-empty list")
    buffers = []
    for i, raw in enumerate(raw_buffers):
        where = f"buffers[{i}]"
        require(isinstance(raw, dict), source, where, "must be a mapping")
        _no_unknown(raw, "buffer", source, f"{where}.")
        _cited(raw, where, sources, source)
        bname = _get(raw, "name", str, source, where + ".")
        holds = raw.get("holds")
        require(isinstance(holds, list) and holds and all(isinstance(h, str) and h in OPERANDS for h in holds)
                and len(set(holds)) == len(holds), source, f"{where}.holds",
                f"must list distinct operands among {', '.join(OPERANDS)}")
        size_kb = _number(raw, "size_kb", source, f"{where}.", low=1e-3, high=1e7)
        buffers.append(Buffer(bname, tuple(holds), int(round(size_kb * 8192)),
                              _number(raw, "read_pj_per_bit", source, f"{where}.", low=0, high=1e4),
                              _number(raw, "write_pj_per_bit", source, f"{where}.", low=0, high=1e4),
                              _bool(raw, "double_buffered", source, f"{where}.", default=False)))
    for operand in OPERANDS:
        holders = [b.name for b in buffers if operand in b.holds]
        require(len(holders) == 1, source, "buffers",
                f"{operand} must be held by exactly one buffer (held by {holders or 'none'})")
    require(len({b.name for b in buffers}) == len(buffers), source, "buffers", "buffer names must be unique")

    dram = section("dram")
    compression = dram.get("fmap_compression", "none")
    require(compression in COMPRESSIONS, source, "dram.fmap_compression", f"must be one of {', '.join(COMPRESSIONS)}")
    run_bits = _number(dram, "rlc_run_bits", source, "dram.", low=1, high=16, integer=True, default=5)
    word_bits = _number(dram, "rlc_word_bits", source, "dram.", low=run_bits + MAX_VALUE_BITS + 1, high=4096,
                        integer=True, default=64)
    static = section("static")
    static_lanes = _lanes_stated(static, "static", source)
    storage = section("storage")
    w_layout = storage.get("weights", "packed")
    require(w_layout in STORAGE_LAYOUTS, source, "storage.weights", f"must be one of {', '.join(STORAGE_LAYOUTS)}")
    a_layout = storage.get("activations", "packed")
    require(a_layout in ("packed", "fixed"), source, "storage.activations", "must be 'packed' or 'fixed'")
    fixed_bits = _number(storage, "fixed_bits", source, "storage.", low=1, high=MAX_BITS, integer=True,
                         default=native)
    batch = section("batch", required=False)
    batch_size = _number(batch, "size", source, "batch.", low=1, high=MAX_BATCH, integer=True, default=1)
    policy = batch.get("policy", "lockstep")
    require(policy in BATCH_POLICIES, source, "batch.policy", f"must be one of {', '.join(BATCH_POLICIES)}")
    mapping = section("mapping", required=False)
    objective = mapping.get("objective", "cycles")
    require(objective in OBJECTIVES, source, "mapping.objective", f"must be one of {', '.join(OBJECTIVES)}")
    dataflow = mapping.get("dataflow", "auto")
    require(dataflow in DATAFLOWS, source, "mapping.dataflow", f"must be one of {', '.join(DATAFLOWS)}")
    residency = {}
    for key in ("weights_on_chip", "activations_on_chip"):
        residency[key] = mapping.get(key, "auto")
        require(residency[key] in ("auto", "always", "never"), source, f"mapping.{key}",
                "must be 'auto', 'always' or 'never'")
    im2col = mapping.get("im2col", "input-layers")
    require(im2col in ("input-layers", "never"), source, "mapping.im2col", "must be 'input-layers' or 'never'")
    conventions = mapping.get("conventions", "physical")
    require(conventions in CONVENTIONS, source, "mapping.conventions", f"must be one of {', '.join(CONVENTIONS)}")
    if conventions == "bitfusion-sim":
        for key in ("weights_on_chip", "activations_on_chip"):
            require(key not in mapping, source, f"mapping.{key}",
                    "conflicts with conventions: bitfusion-sim, which moves every layer to and from DRAM")

    config = HwConfig(
        path=str(source), name=name, model=model, description=description,
        technology_nm=int(tech), clock_mhz=float(clock), unroll={k: int(v) for k, v in unroll.items()},
        stated_vector_lanes=None if vector_lanes is None else int(vector_lanes), model_params=dict(params), native_bits=int(native), min_bits=int(min_bits),
        max_bits=int(max_bits), wider=wider, full_precision=full, compute_pj_per_op=float(compute_pj),
        stated_pj_per_cycle=float(cycle_pj), compute_array_lanes=compute_lanes, compute_op=op, buffers=tuple(buffers),
        dram_bits_per_cycle=_number(dram, "bandwidth_bits_per_cycle", source, "dram.", low=1e-3, high=1e7),
        dram_pj_per_bit=_number(dram, "energy_pj_per_bit", source, "dram.", low=0, high=1e5),
        stated_static_mw=_number(static, "power_mw", source, "static.", low=0, high=1e7), static_array_lanes=static_lanes,
        weight_layout=w_layout, activation_layout=a_layout, fixed_bits=int(fixed_bits),
        batch_size=int(batch_size), batch_policy=policy, objective=objective, output_bits=int(output_bits),
        dataflow=dataflow, weights_on_chip=residency["weights_on_chip"],
        activations_on_chip=residency["activations_on_chip"], im2col=im2col, conventions=conventions,
        fmap_compression=compression, rlc_run_bits=int(run_bits), rlc_word_bits=int(word_bits),
        sources=dict(sources), area=area_from_dict(section("area", required=False), [b.name for b in buffers], source),
        raw=data,
    )
    MODELS[model].validate(config)
    return config


def _lanes_stated(section: dict, where: str, source: object) -> int | None:
    """`array_lanes`: the lane count a per-array figure in `section` was stated for (it then scales with the
    config's lanes); absent: the figure does not scale."""
    if "array_lanes" not in section:
        return None
    return int(_number(section, "array_lanes", source, f"{where}.", low=1, high=1 << 24, integer=True))


def _no_unknown(mapping: dict, schema: str, source: object, prefix: str) -> None:
    unknown = set(mapping) - _SCHEMA_KEYS[schema]
    if unknown:
        raise InputError(source, f"{prefix}{sorted(map(str, unknown))[0]}", "unknown key")


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


def _get(mapping: dict, key: str, kind: type, source: object, prefix: str = "") -> object:
    value = mapping.get(key)
    require(isinstance(value, kind) and value != "", source, f"{prefix}{key}",
            f"is required and must be a {'string' if kind is str else kind.__name__}, got {shown(value)}")
    return value


def _bool(mapping: dict, key: str, source: object, prefix: str, *, default: bool) -> bool:
    """A true/false field: the string "false" or the number 0 is an error, not a truthy value."""
    value = mapping.get(key, default)
    require(isinstance(value, bool), source, f"{prefix}{key}", f"must be true or false, got {shown(value)}")
    return value


def _number(mapping: dict, key: str, source: object, prefix: str, *, low: float, high: float,
            integer: bool = False, default=None):
    """A number in [low, high]; the bounds say what is physically meaningful (and keep costs finite)."""
    value = mapping.get(key, default)
    require(value is not None, source, f"{prefix}{key}", "is required")
    ok = _is_int(value) if integer else (isinstance(value, (int, float)) and not isinstance(value, bool))
    require(ok, source, f"{prefix}{key}", f"must be {'an integer' if integer else 'a number'}, got {shown(value)}")
    require(low <= value <= high, source, f"{prefix}{key}", f"{shown(value)} is out of range [{low:g}, {high:g}]")
    return value
