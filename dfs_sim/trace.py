"""Trace format v1: one self-describing `.npz` file per trace (see docs/trace-format.md).

Members (plain `.npy`, stored uncompressed so large traces can be memory-mapped; deflated members,
as `np.savez_compressed` writes them, are read into memory):
  header       uint8   UTF-8 JSON: format, version, network, options, budget, provenance, n_inputs
  decisions    uint8   [inputs, gated units]: the option index chosen per input and unit
  labels       int32   [inputs]            optional
  predictions  int32   [inputs]            optional
  gate_probs   float16/float32 [inputs, units, options]   optional
Nothing is pickled; the reader never unpickles. Every read check is listed in
docs/trace-format.md ("Validation"); the bounds are dfs_sim/limits.py.
"""
from __future__ import annotations

import ast
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from mmap import ACCESS_READ
from mmap import mmap as memory_map
from pathlib import Path

import numpy as np

from dfs_sim import jsonio
from dfs_sim.atomic import atomic_file
from dfs_sim.errors import READ_ERRORS, InputError, existing_file, input_boundary, is_int, require, shown
from dfs_sim.limits import (FULL_PRECISION_BITS, MAX_BITS, MAX_COMPRESSED_MEMBER_BYTES, MAX_HEADER_BYTES, MAX_INPUTS,
                            MAX_BUDGET_COST, MAX_LABEL, MAX_NAME_CHARS, MAX_NPY_HEADER_BYTES, MAX_OPTIONS)
from dfs_sim.resources import local_or_shipped
from dfs_sim.workload.network import Network, network_from_dict

FORMAT_NAME = "dfs-sim-trace"
FORMAT_VERSION = 1
_MEMBERS = ("header", "decisions", "labels", "predictions", "gate_probs")
_CHECK_CHUNK = 1 << 20  # rows validated at a time, so huge traces stay in bounded memory
_MMAP_OVER = 1 << 20  # stored members larger than this are memory-mapped
_UNSUPPORTED_ZIP_FLAGS = 0x20 | 0x40 | 0x2000  # general-purpose bits 5, 6, 13
_CRC_CHUNK = 64 << 20  # bytes per zlib.crc32 call while checking a memory-mapped member's CRC
# What each member may hold: dtype kinds and sizes, and dimensions.
_MEMBER_DTYPES = {"header": ("u", (1,)), "decisions": ("u", (1,)), "labels": ("iu", (1, 2, 4, 8)),
                  "predictions": ("iu", (1, 2, 4, 8)), "gate_probs": ("f", (2, 4))}
_MEMBER_NDIM = {"header": 1, "decisions": 2, "labels": 1, "predictions": 1, "gate_probs": 3}


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
        return (self.weight_bits / FULL_PRECISION_BITS) * (self.act_bits / FULL_PRECISION_BITS)

    def to_dict(self) -> dict:
        return {"name": self.name, "weight_bits": self.weight_bits, "act_bits": self.act_bits,
                "full_precision": self.full_precision}


def default_options(bits=(8, 16)) -> tuple[Option, ...]:
    """DFS's option set behind the paper's figures: skip, 8-bit, 16-bit, full precision."""
    full = Option("full", FULL_PRECISION_BITS, FULL_PRECISION_BITS, True)
    return (Option("skip", 0, 0), *(Option(f"{b}bit", b, b) for b in bits), full)


def options_from_list(raw: object, source: object, where: str = "options") -> tuple[Option, ...]:
    require(isinstance(raw, list) and 1 <= len(raw) <= MAX_OPTIONS, source, where,
            f"must be a list of 1 to {MAX_OPTIONS} options")
    options = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        require(isinstance(item, dict), source, at, "must be a mapping")
        unknown = set(item) - {"name", "weight_bits", "act_bits", "full_precision"}
        if unknown:
            raise InputError(source, f"{at}.{sorted(map(str, unknown))[0]}", "unknown key")
        name = item.get("name")
        require(isinstance(name, str) and 0 < len(name) <= MAX_NAME_CHARS, source, f"{at}.name",
                f"must be a string of 1 to {MAX_NAME_CHARS} characters")
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
    # For a real-cost budget, the cost it counted [units, options] (header.budget.cost.table): each option's
    # cost in each gated block over the mean of a gated block's full-precision cost, so that the budget's own
    # metric for an input is the mean over blocks of its chosen cells. None for the proxy or without a table.
    budget_cost_table: np.ndarray | None = None

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
    """Validate and write a v1 trace atomically (no partial file is ever left at `path`).

    `budget_metric`/`budget_cost`: what the budget counts (see Trace.budget_metric) and, for a real
    cost, how it was computed (accelerator config digest, batch, normalisation)."""
    path = Path(path)
    options = tuple(options)
    decisions = np.asarray(decisions)
    require(decisions.ndim == 2 and decisions.shape[1] == network.n_units, path, "decisions",
            f"must have shape (inputs, {network.n_units}), got {decisions.shape}")
    require(decisions.size == 0 or (_integral(decisions) and decisions.min() >= 0 and decisions.max() < len(options)),
            path, "decisions", f"option indices must be integers in [0, {len(options)})")
    arrays = {"decisions": decisions.astype(np.uint8)}
    n = decisions.shape[0]
    for key, values in (("labels", labels), ("predictions", predictions)):
        if values is not None:
            values = np.asarray(values)
            require(values.shape == (n,), path, key, f"must have shape ({n},), got {values.shape}")
            require(values.size == 0 or (_integral(values) and values.min() >= 0 and values.max() <= MAX_LABEL),
                    path, key,
                    f"must be class indices in [0, {MAX_LABEL}]")
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
    text = jsonio.dumps(header, indent=1)
    _parse_header(jsonio.loads(text, path, "header"), path)
    arrays["header"] = np.frombuffer(text.encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as handle:
        np.savez(handle, **arrays)
    return path


def _integral(values: np.ndarray) -> bool:
    if np.issubdtype(values.dtype, np.integer):
        return True
    return np.issubdtype(values.dtype, np.floating) and bool(np.all(np.isfinite(values) & (values == np.round(values))))


def load_trace(path: str | Path, *, mmap: bool = True) -> Trace:
    """Read and fully validate a trace. Large stored members are memory-mapped when `mmap` is true."""
    path = existing_file(local_or_shipped(path), "trace file")
    with input_boundary(path, "a dfs-sim trace"):
        return _load(path, mmap)


def _load(path: Path, mmap: bool) -> Trace:
    try:
        archive = zipfile.ZipFile(path)
    except READ_ERRORS:  # zipfile raises a dozen types for damaged archives
        raise InputError(path, None, "not a dfs-sim trace (not an .npz archive, or truncated or damaged)") from None
    with archive:
        members = _members(path, archive)
        header = _read_member(path, archive, members["header"], mmap=False)
        require(header.size <= MAX_HEADER_BYTES, path, "header", f"is larger than {MAX_HEADER_BYTES >> 20} MB")
        text = jsonio.decode_text(header.tobytes(), path, "JSON header", field="header")
        network, options, budget, provenance, n = _parse_header(jsonio.loads(text, path, "header"), path)
        arrays = {key: _read_member(path, archive, members[key], mmap=mmap)
                  for key in ("decisions", "labels", "predictions", "gate_probs") if key in members}
    decisions = arrays["decisions"]
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
            require(values.shape == (n,), path, key, f"must have shape ({n},), got {values.shape}")
            for start in range(0, n, _CHECK_CHUNK):
                chunk = values[start:start + _CHECK_CHUNK]
                require(int(chunk.min()) >= 0 and int(chunk.max()) <= MAX_LABEL, path, key,
                        f"must be class indices in [0, {MAX_LABEL}]")
    probs = arrays.get("gate_probs")
    if probs is not None:
        require(probs.shape == (n, network.n_units, len(options)), path, "gate_probs",
                f"must have shape ({n}, {network.n_units}, {len(options)}), got {probs.shape}")
        for start in range(0, n, _CHECK_CHUNK):
            chunk = probs[start:start + _CHECK_CHUNK]
            require(bool(np.all((chunk >= 0) & (chunk <= 1))), path, "gate_probs", "must lie in [0, 1]")
    return Trace(str(path), network, options, decisions, arrays.get("labels"), arrays.get("predictions"), probs,
                 budget[0], provenance, budget[1], budget[2])


def _members(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, each checked against what a trace may hold and how."""
    members: dict[str, zipfile.ZipInfo] = {}
    infos = archive.infolist()
    for info in infos:
        key = info.filename.removesuffix(".npy")
        if key not in _MEMBERS or not info.filename.endswith(".npy") or info.orig_filename != info.filename:
            raise InputError(path, info.filename, "unknown member in trace (members are header.npy, "
                                                  "decisions.npy, labels.npy, predictions.npy, gate_probs.npy)")
        require(key not in members, path, key, "appears twice in the archive")
        require(not info.flag_bits & 0x1, path, key, "is encrypted; dfs-sim reads plain .npz archives")
        require(not info.flag_bits & _UNSUPPORTED_ZIP_FLAGS, path, key,
                "uses a zip feature dfs-sim does not read (strong encryption, patched data or a masked directory)")
        require(info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED), path, key,
                f"uses zip compression method {info.compress_type}; a trace member is stored (np.savez) or "
                f"deflated (np.savez_compressed)")
        require(info.compress_type == zipfile.ZIP_STORED or info.file_size <= MAX_COMPRESSED_MEMBER_BYTES, path, key,
                f"is compressed and over {MAX_COMPRESSED_MEMBER_BYTES >> 20} MB; store it uncompressed (np.savez) "
                f"so it can be memory-mapped")
        members[key] = info
    for key in ("header", "decisions"):
        require(key in members, path, key, "missing from trace")
    # Members may not overlap: a member whose directory entry runs into the next one is damaged.
    spans = sorted((info.header_offset, info.header_offset + 30 + len(info.orig_filename) + info.compress_size,
                    key) for key, info in members.items())
    for (_, end, key), (start, _, _) in zip(spans, spans[1:]):
        require(end <= start, path, key, "overlaps the next member: the archive's directory is damaged")
    return members


def _budget_header(pct, metric: str, cost: dict | None):
    if pct is None:
        return None
    if metric == "computation":
        return {"computation_pct": float(pct)}
    return {"metric": metric, "pct": float(pct), "cost": cost or {}}


def _parse_header(meta: object, path: Path):
    require(isinstance(meta, dict), path, "header", "must be a JSON object")
    require(meta.get("format") == FORMAT_NAME and isinstance(meta.get("format"), str), path, "header.format",
            f"must be '{FORMAT_NAME}'")
    version = meta.get("version")
    require(is_int(version) and version == FORMAT_VERSION, path, "header.version",
            f"unsupported trace version {shown(version)} (this dfs-sim reads version {FORMAT_VERSION})")
    unknown = set(meta) - {"format", "version", "n_inputs", "network", "options", "budget", "provenance"}
    if unknown:
        raise InputError(path, f"header.{sorted(unknown)[0]}", "unknown key")
    n = meta.get("n_inputs")
    require(is_int(n) and 1 <= n <= MAX_INPUTS, path, "header.n_inputs",
            f"must be an integer in [1, {MAX_INPUTS}] (a trace records at least one input)")
    require("network" in meta, path, "header.network", "is required")
    network = network_from_dict(meta["network"], path)
    options = options_from_list(meta.get("options"), path, "header.options")
    budget_pct, budget_metric = _parse_budget(meta.get("budget"), path)
    table = _budget_cost_table(meta.get("budget"), path, network.n_units, len(options))
    provenance = meta.get("provenance", {})
    require(isinstance(provenance, dict), path, "header.provenance", "must be a JSON object")
    return network, options, (budget_pct, budget_metric, table), provenance, n


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
        require(isinstance(metric, str) and len(metric) <= MAX_NAME_CHARS and metric.count("@") == 1
                and all(part.strip() for part in metric.split("@")), path,
                "header.budget.metric", "must be 'METRIC@HW', e.g. 'energy@bitfusion'")
        require("pct" in budget, path, "header.budget.pct", "is required with a metric")
        require(isinstance(budget.get("cost", {}), dict), path, "header.budget.cost", "must be a JSON object")
        key, value = "pct", budget["pct"]
    require(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100, path,
            f"header.budget.{key}", f"must be a percentage in [0, 100], got {shown(value)}")
    return float(value), metric


def _budget_cost_table(budget: object, path: Path, n_units: int, n_options: int) -> np.ndarray | None:
    """header.budget.cost.table of a real-cost budget (already checked by _parse_budget to be a dict), if any."""
    if not isinstance(budget, dict) or "metric" not in budget or "table" not in budget.get("cost", {}):
        return None
    rows = budget["cost"]["table"]
    field = "header.budget.cost.table"
    require(isinstance(rows, list) and len(rows) == n_units and n_units > 0, path, field,
            f"must be a list of {n_units} rows, one per gated block")
    for row in rows:
        require(isinstance(row, list) and len(row) == n_options, path, field,
                f"each row must hold {n_options} costs, one per option")
        require(all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= MAX_BUDGET_COST
                    for v in row), path, field, f"costs must be numbers in [0, {MAX_BUDGET_COST:,}]")
    return np.array(rows, dtype=float)


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, mmap: bool) -> np.ndarray:
    """Read one .npy member, checked against its zip entry; memory-map it in place when it is
    stored, large and `mmap` is set (then its CRC is verified by streaming it once)."""
    field_name = info.filename.removesuffix(".npy")
    if mmap and info.compress_type == zipfile.ZIP_STORED and info.file_size > _MMAP_OVER:
        return _map_member(path, archive, info, field_name)
    with open(path, "rb") as handle:
        _local_header(handle, path, info, field_name)
    try:
        with archive.open(info) as handle:
            shape, fortran, dtype, header_len = _read_npy_header(handle, path, field_name)
            count, nbytes = _data_size(path, field_name, info, shape, dtype, header_len)
            raw = handle.read(nbytes + 1)  # one byte more: reading to the end makes zipfile check the CRC
    except zipfile.BadZipFile:
        raise InputError(path, field_name, "is damaged (its CRC or zip header does not match)") from None
    except (EOFError, zlib.error, OSError):
        raise InputError(path, field_name, "is truncated or its compressed data are damaged") from None
    require(len(raw) == nbytes, path, field_name,
            f"holds {len(raw)} bytes of data but its .npy header declares {nbytes}")
    array = np.frombuffer(raw, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def _local_header(handle, path: Path, info: zipfile.ZipInfo, field_name: str) -> int:
    """Check a member's local zip header against the archive's directory; returns where its data start."""
    require(info.header_offset >= 0, path, field_name, "the archive's directory points before its start")
    handle.seek(info.header_offset)
    local = handle.read(30)
    require(len(local) == 30 and local[:4] == b"PK\x03\x04", path, field_name, "corrupt archive entry")
    flags, method, name_len, extra_len = struct.unpack("<6xHH16xHH", local)
    name = handle.read(name_len)
    require(not flags & 0x1 and method == info.compress_type, path, field_name,
            "its local zip header disagrees with the archive's directory (encryption or compression)")
    require(name == info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"), path, field_name,
            "its local zip header names another member")
    return info.header_offset + 30 + name_len + extra_len


def _map_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, field_name: str) -> np.ndarray:
    archive_end = getattr(archive, "start_dir", None) or path.stat().st_size  # data end where the directory starts
    with open(path, "rb") as handle:
        start = _local_header(handle, path, info, field_name)
        require(info.compress_size == info.file_size and start + info.file_size <= archive_end, path, field_name,
                "runs past the end of the archive's data: the trace is truncated or its directory is damaged")
        handle.seek(start)
        shape, fortran, dtype, header_len = _read_npy_header(handle, path, field_name)
        _data_size(path, field_name, info, shape, dtype, header_len)
        require(start + info.file_size <= os.fstat(handle.fileno()).st_size, path, field_name, "is truncated")
        # The CRC straight from the page cache (a memory map: no copy), in chunks, one pass.
        crc = 0
        with memory_map(handle.fileno(), 0, access=ACCESS_READ) as whole:
            view = memoryview(whole)
            try:
                for offset in range(start, start + info.file_size, _CRC_CHUNK):
                    crc = zlib.crc32(view[offset:min(offset + _CRC_CHUNK, start + info.file_size)], crc)
            finally:
                view.release()
    require(crc == info.CRC, path, field_name, "fails its CRC check: the member's bytes are damaged")
    return np.memmap(path, dtype=dtype, mode="r", offset=start + header_len, shape=shape,
                     order="F" if fortran else "C")


def _data_size(path: Path, field_name: str, info: zipfile.ZipInfo, shape: tuple, dtype: np.dtype,
               header_len: int) -> tuple[int, int]:
    """Elements and bytes the .npy header declares, which must fill the zip entry exactly."""
    count = 1
    for dim in shape:
        count *= dim
    nbytes = count * dtype.itemsize
    if header_len + nbytes != info.file_size:
        shortfall = "is truncated: its" if header_len + nbytes > info.file_size else "has trailing bytes: its"
        raise InputError(path, field_name, f"{shortfall} zip entry holds {info.file_size - header_len} bytes of "
                                           f"data but its .npy header declares shape {shape} of {dtype} "
                                           f"({nbytes} bytes)")
    return count, nbytes


def _read_npy_header(handle, path: Path, field_name: str) -> tuple[tuple, bool, np.dtype, int]:
    """Parse a .npy header strictly: (shape, fortran order, dtype, header length in bytes).

    Only plain numeric dtypes this member may hold; shapes of non-negative integers of the
    member's rank. Never evaluates more than a Python literal, never unpickles."""
    def bad(message: str):
        raise InputError(path, field_name, f"not a valid .npy member ({message})")

    magic = handle.read(8)
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
        bad("bad magic bytes")
    major, minor = magic[6], magic[7]
    if major not in (1, 2, 3) or minor != 0:
        bad(f"unsupported format version {major}.{minor}")
    width = 2 if major == 1 else 4
    raw = handle.read(width)
    if len(raw) != width:
        bad("truncated header")
    length = int.from_bytes(raw, "little")
    if length > MAX_NPY_HEADER_BYTES:
        bad(f"header of {length} bytes, over the limit of {MAX_NPY_HEADER_BYTES}")
    text = handle.read(length)
    if len(text) != length:
        bad("truncated header")
    try:
        meta = ast.literal_eval(text.decode("latin1" if major < 3 else "utf8"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        bad("damaged header")
    if not (isinstance(meta, dict) and set(meta) == {"descr", "fortran_order", "shape"}):
        bad("header must hold exactly descr, fortran_order and shape")
    descr, fortran, shape = meta["descr"], meta["fortran_order"], meta["shape"]
    if not isinstance(descr, str):
        bad("structured dtypes are not allowed")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, SyntaxError):
        bad(f"unknown dtype {shown(descr)}")
    kinds, sizes = _MEMBER_DTYPES.get(field_name, ("", ()))
    if dtype.hasobject or dtype.kind not in kinds or dtype.itemsize not in sizes:
        require(False, path, field_name, f"has dtype {dtype} ({dtype.str}); a trace's {field_name} is "
                                         + {"header": "uint8", "decisions": "uint8", "gate_probs": "float16/float32"}
                                         .get(field_name, "integer"))
    if not isinstance(fortran, bool):
        bad("fortran_order must be True or False")
    ndim = _MEMBER_NDIM.get(field_name)
    if not (isinstance(shape, tuple) and len(shape) == ndim and all(is_int(d) and d >= 0 for d in shape)):
        require(False, path, field_name, f"has shape {shown(shape)}; a trace's {field_name} is a {ndim}-D array "
                                         f"of non-negative sizes")
    return shape, fortran, dtype, 6 + 2 + width + length
