"""Trace format v1: one self-describing `.npz` file per trace (see docs/trace-format.md).

Members (plain `.npy`, stored uncompressed so large traces can be memory-mapped):
  header       uint8   UTF-8 JSON: format, version, network, options, budget, provenance, n_inputs
  decisions    uint8   [inputs, gated units]: the option index chosen per input and unit
  labels       int32   [inputs]            optional
  predictions  int32   [inputs]            optional
  gate_probs   float16/float32 [inputs, units, options]   optional
Nothing is pickled; the reader never unpickles.
"""
from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfs_sim.atomic import atomic_file
from dfs_sim.errors import InputError, require
from dfs_sim.workload.network import MAX_BITS, Network, network_from_dict

FORMAT_NAME = "dfs-sim-trace"
FORMAT_VERSION = 1
_MEMBERS = ("header", "decisions", "labels", "predictions", "gate_probs")
_CHECK_CHUNK = 1 << 20  # rows validated at a time, so huge traces stay in bounded memory


@dataclass(frozen=True)
class Option:
    """One choice a gate can make: skip (0/0 bits), b-bit, or full precision."""

    name: str
    weight_bits: int
    act_bits: int
    full_precision: bool = False

    @property
    def is_skip(self) -> bool:
        return self.weight_bits == 0

    @property
    def computation_cost(self) -> float:
        """The DFS paper's per-block cost: (b/32)^2, skip 0, full precision 1."""
        if self.full_precision:
            return 1.0
        return (self.weight_bits / 32.0) * (self.act_bits / 32.0)

    def to_dict(self) -> dict:
        return {"name": self.name, "weight_bits": self.weight_bits, "act_bits": self.act_bits,
                "full_precision": self.full_precision}


def default_options(bits=(8, 16)) -> tuple[Option, ...]:
    """DFS's option set behind the paper's figures: skip, 8-bit, 16-bit, full precision."""
    return (Option("skip", 0, 0), *(Option(f"{b}bit", b, b) for b in bits), Option("full", 32, 32, True))


def options_from_list(raw: object, source: object, where: str = "options") -> tuple[Option, ...]:
    require(isinstance(raw, list) and 1 <= len(raw) <= 255, source, where, "must be a list of 1 to 255 options")
    options = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        require(isinstance(item, dict), source, at, "must be a mapping")
        unknown = set(item) - {"name", "weight_bits", "act_bits", "full_precision"}
        if unknown:
            raise InputError(source, f"{at}.{sorted(unknown)[0]}", "unknown key")
        name = item.get("name")
        require(isinstance(name, str) and name, source, f"{at}.name", "must be a non-empty string")
        bits = []
        for key in ("weight_bits", "act_bits"):
            value = item.get(key)
            require(isinstance(value, int) and not isinstance(value, bool), source, f"{at}.{key}",
                    "must be an integer")
            require(0 <= value <= MAX_BITS, source, f"{at}.{key}",
                    f"bitwidth {value} out of range [0, {MAX_BITS}]")
            bits.append(value)
        require((bits[0] == 0) == (bits[1] == 0), source, f"{at}.weight_bits",
                "skip is 0 weight bits and 0 activation bits; one without the other is not an option")
        full = item.get("full_precision", False)
        require(isinstance(full, bool), source, f"{at}.full_precision", "must be true or false")
        require(not (full and bits[0] == 0), source, f"{at}.full_precision", "a skip cannot be full precision")
        options.append(Option(name, bits[0], bits[1], full))
    names = [o.name for o in options]
    require(len(set(names)) == len(names), source, where, "option names must be unique")
    return tuple(options)


@dataclass
class Trace:
    """A loaded trace. Arrays may be read-only memory maps; don't write to them."""

    path: str
    network: Network
    options: tuple[Option, ...]
    decisions: np.ndarray
    labels: np.ndarray | None = None
    predictions: np.ndarray | None = None
    gate_probs: np.ndarray | None = None
    budget_pct: float | None = None
    provenance: dict = field(default_factory=dict)
    # What the budget counts: "computation" (the paper's proxy) or a real cost, "METRIC@HW"
    # (e.g. "energy@bitfusion": the gated blocks' energy on that accelerator, as a share of their
    # energy at full precision).
    budget_metric: str = "computation"

    @property
    def n_inputs(self) -> int:
        return int(self.decisions.shape[0])

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else self.network.name

    @property
    def has_accuracy(self) -> bool:
        return self.labels is not None and self.predictions is not None


def write_trace(path: str | Path, *, network: Network, options, decisions, labels=None, predictions=None,
                gate_probs=None, budget_pct: float | None = None, budget_metric: str = "computation",
                budget_cost: dict | None = None, provenance: dict | None = None) -> Path:
    """`budget_metric`/`budget_cost`: what the budget counts (see Trace.budget_metric) and, for a real
    cost, how it was computed (accelerator config digest, batch, normalisation)."""
    """Validate and write a v1 trace atomically (no partial file is ever left at `path`)."""
    path = Path(path)
    options = tuple(options)
    decisions = np.asarray(decisions)
    require(decisions.ndim == 2 and decisions.shape[1] == network.n_units, path, "decisions",
            f"must have shape (inputs, {network.n_units}), got {decisions.shape}")
    require(decisions.size == 0 or (decisions.min() >= 0 and decisions.max() < len(options)), path,
            "decisions", f"option indices must lie in [0, {len(options)})")
    arrays = {"decisions": decisions.astype(np.uint8)}
    n = decisions.shape[0]
    for key, values in (("labels", labels), ("predictions", predictions)):
        if values is not None:
            values = np.asarray(values)
            require(values.shape == (n,), path, key, f"must have shape ({n},), got {values.shape}")
            arrays[key] = values.astype(np.int32)
    if gate_probs is not None:
        gate_probs = np.asarray(gate_probs)
        require(gate_probs.shape == (n, network.n_units, len(options)), path, "gate_probs",
                f"must have shape ({n}, {network.n_units}, {len(options)})")
        arrays["gate_probs"] = gate_probs.astype(np.float16 if gate_probs.dtype == np.float16 else np.float32)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "n_inputs": int(n),
        "network": network.to_dict(),
        "options": [o.to_dict() for o in options],
        "budget": _budget_header(budget_pct, budget_metric, budget_cost),
        "provenance": provenance or {},
    }
    # Round-trip the header through the validator before anything touches the disk.
    _parse_header(header, path)
    arrays["header"] = np.frombuffer(json.dumps(header, indent=1).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as handle:
        np.savez(handle, **arrays)
    return path


def load_trace(path: str | Path, *, mmap: bool = True) -> Trace:
    """Read and fully validate a trace. Large members are memory-mapped when `mmap` is true."""
    path = Path(path)
    require(path.exists(), path, None, "no such trace file")
    require(path.is_file(), path, None, "is not a file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise InputError(path, None, "not a dfs-sim trace (not an .npz archive, or truncated)") from None
    with archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        unknown = set(members) - set(_MEMBERS)
        if unknown:
            raise InputError(path, sorted(unknown)[0], "unknown member in trace")
        for key in ("header", "decisions"):
            require(key in members, path, key, "missing from trace")
        header = _read_member(path, archive, members["header"], mmap=False)
        require(header.dtype == np.uint8 and header.ndim == 1, path, "header", "must be uint8 JSON bytes")
        try:
            meta = json.loads(header.tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError(path, "header", "is not valid UTF-8 JSON") from None
        network, options, budget, provenance, n = _parse_header(meta, path)
        arrays = {key: _read_member(path, archive, members[key], mmap=mmap)
                  for key in ("decisions", "labels", "predictions", "gate_probs") if key in members}
    decisions = arrays["decisions"]
    require(decisions.dtype == np.uint8, path, "decisions", f"must be uint8, got {decisions.dtype}")
    require(decisions.shape == (n, network.n_units), path, "decisions",
            f"shape {decisions.shape} does not match header (n_inputs={n}, units={network.n_units})")
    for start in range(0, n, _CHECK_CHUNK):
        chunk = decisions[start:start + _CHECK_CHUNK]
        if chunk.size and int(chunk.max()) >= len(options):
            row = start + int(np.argmax((chunk >= len(options)).any(axis=1)))
            raise InputError(path, "decisions", f"input {row} chooses option {int(chunk[row - start].max())} "
                                                f"but the trace defines {len(options)} options")
    for key in ("labels", "predictions"):
        if key in arrays:
            values = arrays[key]
            require(np.issubdtype(values.dtype, np.integer), path, key, f"must be integers, got {values.dtype}")
            require(values.shape == (n,), path, key, f"must have shape ({n},), got {values.shape}")
            require(n == 0 or int(values.min()) >= 0, path, key, "must be non-negative class indices")
    probs = arrays.get("gate_probs")
    if probs is not None:
        require(probs.dtype in (np.float16, np.float32), path, "gate_probs", "must be float16 or float32")
        require(probs.shape == (n, network.n_units, len(options)), path, "gate_probs",
                f"must have shape ({n}, {network.n_units}, {len(options)}), got {probs.shape}")
        for start in range(0, n, _CHECK_CHUNK):
            chunk = probs[start:start + _CHECK_CHUNK]
            require(bool(np.all((chunk >= 0) & (chunk <= 1))), path, "gate_probs", "must lie in [0, 1]")
    return Trace(str(path), network, options, decisions, arrays.get("labels"), arrays.get("predictions"), probs,
                 budget[0], provenance, budget[1])


def _budget_header(pct, metric: str, cost: dict | None):
    if pct is None:
        return None
    if metric == "computation":
        return {"computation_pct": float(pct)}
    return {"metric": metric, "pct": float(pct), "cost": cost or {}}


def _parse_header(meta: object, path: Path):
    require(isinstance(meta, dict), path, "header", "must be a JSON object")
    require(meta.get("format") == FORMAT_NAME, path, "header.format", f"must be '{FORMAT_NAME}'")
    version = meta.get("version")
    require(version == FORMAT_VERSION, path, "header.version",
            f"unsupported trace version {version!r} (this dfs-sim reads version {FORMAT_VERSION})")
    unknown = set(meta) - {"format", "version", "n_inputs", "network", "options", "budget", "provenance"}
    if unknown:
        raise InputError(path, f"header.{sorted(unknown)[0]}", "unknown key")
    n = meta.get("n_inputs")
    require(isinstance(n, int) and not isinstance(n, bool) and n >= 0, path, "header.n_inputs",
            "must be a non-negative integer")
    require("network" in meta, path, "header.network", "is required")
    network = network_from_dict(meta["network"], path)
    options = options_from_list(meta.get("options"), path, "header.options")
    budget_pct, budget_metric = _parse_budget(meta.get("budget"), path)
    provenance = meta.get("provenance", {})
    require(isinstance(provenance, dict), path, "header.provenance", "must be a JSON object")
    return network, options, (budget_pct, budget_metric), provenance, n


def _parse_budget(budget: object, path: Path) -> tuple[float | None, str]:
    """null, {"computation_pct": p} (the proxy), or {"metric": "METRIC@HW", "pct": p, "cost": {...}}."""
    if budget is None:
        return None, "computation"
    require(isinstance(budget, dict), path, "header.budget", "must be null or a JSON object")
    if "metric" not in budget:
        require(set(budget) <= {"computation_pct"}, path, "header.budget",
                "must be null, {\"computation_pct\": p} or {\"metric\": \"METRIC@HW\", \"pct\": p, \"cost\": {...}}")
        key, value, metric = "computation_pct", budget.get("computation_pct"), "computation"
        if value is None:
            return None, metric
    else:
        unknown = set(budget) - {"metric", "pct", "cost"}
        require(not unknown, path, f"header.budget.{sorted(unknown)[0]}" if unknown else None, "unknown key")
        metric = budget["metric"]
        require(isinstance(metric, str) and metric.count("@") == 1 and all(metric.split("@")), path,
                "header.budget.metric", "must be 'METRIC@HW', e.g. 'energy@bitfusion'")
        require(isinstance(budget.get("cost", {}), dict), path, "header.budget.cost", "must be a JSON object")
        key, value = "pct", budget.get("pct")
    require(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100, path,
            f"header.budget.{key}", "must be a percentage in [0, 100]")
    return float(value), metric


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, mmap: bool) -> np.ndarray:
    """Read one .npy member; memory-map it in place when it is stored uncompressed."""
    field_name = info.filename.removesuffix(".npy")
    if mmap and info.compress_type == zipfile.ZIP_STORED and info.file_size > (1 << 20):
        with open(path, "rb") as handle:
            handle.seek(info.header_offset)
            local = handle.read(30)
            require(len(local) == 30 and local[:4] == b"PK\x03\x04", path, field_name, "corrupt archive entry")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            handle.seek(start)
            shape, fortran, dtype = _read_npy_header(handle, path, field_name)
            offset = handle.tell()
        require(dtype.hasobject is False, path, field_name, "object arrays are not allowed")
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        require(expected <= path.stat().st_size, path, field_name, "is truncated")
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    try:
        with archive.open(info) as handle:
            data = handle.read()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(path, field_name, f"cannot be read ({err})") from None
    buffer = io.BytesIO(data)
    shape, fortran, dtype = _read_npy_header(buffer, path, field_name)
    require(dtype.hasobject is False, path, field_name, "object arrays are not allowed")
    count = int(np.prod(shape))
    raw = buffer.read()
    require(len(raw) == count * dtype.itemsize, path, field_name, "is truncated")
    array = np.frombuffer(raw, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def _read_npy_header(handle, path: Path, field_name: str):
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(handle)
        return np.lib.format.read_array_header_2_0(handle)
    except ValueError as err:
        raise InputError(path, field_name, f"not a valid .npy member ({err})") from None
