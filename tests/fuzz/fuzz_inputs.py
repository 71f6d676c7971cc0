"""Seeded mutations of dfs-sim's shipped inputs: traces, hardware configs, networks, the regress
baseline, the trace manifest and command lines (the fuzz suite, tests/fuzz/test_fuzz.py).

Every generator takes a `random.Random` and the shipped inputs and returns a Case: files to write
into a fresh directory and the command line to run on them. Nothing here knows how dfs-sim
validates; the oracle (fuzz_oracle.py) decides independently what an accepted run must satisfy.
"""
from __future__ import annotations

import copy
import io
import json
import os
import random
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
TRACE_MEMBERS = ("header", "decisions", "labels", "predictions", "gate_probs")
SHIPPED_TRACES = ("traces/fmnist_resnet20_b30.npz", "traces/fmnist_resnet20_static_8bit.npz",
                  "traces/paper/dfs_resnet74_cifar10_paper_b30.npz")
CHEAP_HW = ("stripes", "dadiannao", "loom", "unpu", "bitsystolic_os")
LARGE_INPUTS = 40_000  # x 35 units = 1.4 MB of decisions: memory-mapped


@dataclass
class Case:
    cls: str
    index: int
    kind: str  # what the oracle checks: trace, hw, network, baseline, cli, manifest
    argv: list[str]  # "{dir}" is the case's directory, "{out}" the output file
    files: dict[str, bytes] = field(default_factory=dict)
    subject: str | None = None  # the mutated file (the oracle re-validates it)
    note: str = ""
    links: dict[str, str] = field(default_factory=dict)  # symbolic links to make: name -> target
    expect_refusal: bool = False  # the mutation alone makes the input invalid
    manifest: bool = False  # run with the trace manifest pointed at {dir}
    in_process_only: bool = False

    def resolved_argv(self, directory: Path, out: Path) -> list[str]:
        return [a.replace("{dir}", str(directory)).replace("{out}", str(out)) for a in self.argv]


# ----------------------------------------------------------------------------------------------
# The shipped inputs, read once.

class Seeds:
    @cached_property
    def traces(self) -> dict[str, bytes]:
        return {name: (REPO / name).read_bytes() for name in SHIPPED_TRACES}

    @cached_property
    def large_trace(self) -> bytes:
        """A DFS-ResNet74 trace of 40,000 inputs (the paper trace tiled): its decisions are mapped."""
        members = read_members(self.traces[SHIPPED_TRACES[2]])
        header = json.loads(members["header"].tobytes())
        decisions = np.tile(members["decisions"], (LARGE_INPUTS // len(members["decisions"]), 1))
        header["n_inputs"] = len(decisions)
        members["decisions"] = decisions
        members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        return write_members(members)

    @cached_property
    def hw_texts(self) -> dict[str, str]:
        return {p.stem: p.read_text() for p in sorted((REPO / "hw_configs").glob("*.yaml"))}

    @cached_property
    def network_texts(self) -> dict[str, str]:
        return {p.stem: p.read_text() for p in sorted((REPO / "hw_configs" / "networks").glob("*.yaml"))}

    @cached_property
    def baseline(self) -> dict:
        return json.loads((REPO / "tests" / "cost_baseline.json").read_text())

    @cached_property
    def manifest(self) -> dict:
        return json.loads((REPO / "traces" / "MANIFEST.json").read_text())


# ----------------------------------------------------------------------------------------------
# Zip and .npy surgery.

@dataclass
class ZipEntry:
    name: str
    local: int  # offset of the local header
    central: int  # offset of the central directory entry
    data: int  # offset of the member's bytes
    size: int  # compressed size


@cache
def _parsed_yaml(text: str):
    return yaml.safe_load(text)


def parsed_yaml(text: str):
    """yaml.safe_load(text) for a shipped file's text: each text is parsed once, and every case gets its own
    copy to mutate."""
    return copy.deepcopy(_parsed_yaml(text))


def zip_layout(data: bytes) -> tuple[list[ZipEntry], int, int]:
    """Entries, central directory offset and end-of-directory offset of a (numpy-written) zip."""
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    entries, pos = [], cd_offset
    while pos < cd_offset + cd_size and data[pos:pos + 4] == b"PK\x01\x02":
        csize = struct.unpack_from("<I", data, pos + 20)[0]
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        local = struct.unpack_from("<I", data, pos + 42)[0]
        name = data[pos + 46:pos + 46 + name_len].decode("utf-8", "replace")
        local_name, local_extra = struct.unpack_from("<HH", data, local + 26)
        entries.append(ZipEntry(name, local, pos, local + 30 + local_name + local_extra, csize))
        pos += 46 + name_len + extra_len + comment_len
    return entries, cd_offset, eocd


def read_members(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=allow_pickle)
    return buffer.getvalue()


def write_entries(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some cases
        with zipfile.ZipFile(buffer, "w", compression=method) as archive:
            for name, payload in entries:
                archive.writestr(name, payload)
    return buffer.getvalue()


def write_members(members: dict[str, np.ndarray], method: int = zipfile.ZIP_STORED) -> bytes:
    return write_entries([(f"{k}.npy", npy_bytes(v)) for k, v in members.items()], method)


def header_of(members: dict[str, np.ndarray]) -> dict:
    return json.loads(members["header"].tobytes())


def with_header_text(members: dict[str, np.ndarray], text: str) -> dict[str, np.ndarray]:
    out = dict(members)
    out["header"] = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    return out


def patch(data: bytes, offset: int, payload: bytes) -> bytes:
    return data[:offset] + payload + data[offset + len(payload):]


def flip(data: bytes, rng: random.Random, count: int, low: int = 0, high: int | None = None) -> bytes:
    buffer = bytearray(data)
    high = len(buffer) if high is None else high
    for _ in range(count):
        at = rng.randrange(low, max(high, low + 1))
        buffer[at] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
    return bytes(buffer)


# ----------------------------------------------------------------------------------------------
# Generic data mutations (JSON and YAML documents as Python data).

def leaf_paths(data, prefix=()) -> list[tuple]:
    """Every path to a value (containers included) in nested dicts and lists."""
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += leaf_paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += leaf_paths(value, prefix + (i,))
    return out


def get_at(data, path):
    for key in path:
        data = data[key]
    return data


def set_at(data, path, value):
    if not path:
        return value
    get_at(data, path[:-1])[path[-1]] = value
    return data


def delete_at(data, path):
    if path:
        parent = get_at(data, path[:-1])
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return data


TYPE_SWAPS = (True, False, None, "", "x", "true", "false", "0", "1", "16", "yes", 0, 1, -1, 0.5, 1.0, 16.0,
              [], [1], {}, {"a": 1}, "nan", "1e400", 2**31, -(2**31), 10**6)
HUGE_NUMBERS = (2**31 - 1, 2**31, 2**32, 2**40, 2**44, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
                -1, -(2**63), 0, 1e15, 1e300, -1e300, 5e-324, -0.0, 4.5)


def mutate_data(data, rng: random.Random, numbers_only: bool = False) -> tuple[object, str]:
    """Replace, drop or add one value somewhere in `data` (a deep copy is changed)."""
    data = copy.deepcopy(data)
    paths = leaf_paths(data)
    if numbers_only:
        paths = [p for p in paths if isinstance(get_at(data, p), (int, float)) and not isinstance(get_at(data, p), bool)]
        if not paths:
            return data, "no numbers"
        path = rng.choice(paths)
        value = rng.choice(HUGE_NUMBERS)
        return set_at(data, path, value), f"{path} = {value!r}"
    path = rng.choice(paths[1:] or paths)
    action = rng.random()
    if action < 0.7:
        value = copy.deepcopy(rng.choice(TYPE_SWAPS))
        return set_at(data, path, value), f"{path} = {value!r}"
    if action < 0.85 and path:
        return delete_at(data, path), f"del {path}"
    parent = get_at(data, path[:-1]) if path else data
    if isinstance(parent, dict):
        parent[rng.choice(["colour", "unknown_key", "Name", "", " "])] = rng.choice(TYPE_SWAPS)
        return data, f"unknown key under {path[:-1]}"
    if isinstance(parent, list):
        parent.append(copy.deepcopy(rng.choice(parent) if parent else 1))
        return data, f"appended to {path[:-1]}"
    return data, "unchanged"


def nested(depth: int, rng: random.Random) -> tuple[str, str]:
    """JSON text (also flow YAML) nested `depth` deep: lists or mappings."""
    if rng.random() < 0.5:
        return "[" * depth + "1" + "]" * depth, "list"
    return '{"a": ' * depth + "1" + "}" * depth, "mapping"


NEST_DEPTHS = (33, 40, 100, 999, 1001, 5000, 100_000)


def json_with_raw(data, path, raw: str) -> str:
    """`data` as JSON text with the value at `path` replaced by raw text (huge numbers, NaN, nesting)."""
    marker = "__RAW_VALUE_MARKER__"
    text = json.dumps(set_at(copy.deepcopy(data), path, marker))
    return text.replace(json.dumps(marker), raw, 1)


# ----------------------------------------------------------------------------------------------
# Traces.

def _trace_case(cls, i, data: bytes, note: str, rng: random.Random, expect_refusal=False, hw=None) -> Case:
    hw = hw or rng.choice(CHEAP_HW)
    return Case(cls, i, "trace", ["run", "--trace", "{dir}/t.npz", "--hw", hw, "--format", "json", "-o", "{out}"],
                {"t.npz": data}, "t.npz", note, expect_refusal=expect_refusal)


def _pick_trace(rng: random.Random, seeds: Seeds) -> bytes:
    return seeds.traces[rng.choice(SHIPPED_TRACES)]


def gen_trace_byte_flip(rng, i, seeds):
    data = _pick_trace(rng, seeds)
    entries, cd, eocd = zip_layout(data)
    where = rng.random()
    if where < 0.3:  # zip structure: local headers, central directory, end record
        entry = rng.choice(entries)
        spans = [(entry.local, entry.local + 30), (cd, len(data))]
        low, high = rng.choice(spans)
        note = "zip structure"
    elif where < 0.5:  # an .npy header
        entry = rng.choice(entries)
        low, high = entry.data, entry.data + 128
        note = f"npy header of {entry.name}"
    elif where < 0.7:  # the JSON header's text
        entry = next(e for e in entries if e.name == "header.npy")
        low, high = entry.data + 128, entry.data + entry.size
        note = "header JSON"
    else:
        low, high, note = 0, len(data), "anywhere"
    count = rng.choice((1, 1, 1, 2, 4, 8))
    # A flip inside a member fails its CRC; one in the zip structure may hit a field readers ignore
    # (a timestamp, an attribute), which leaves the trace legitimate: there the oracle decides.
    return _trace_case("trace.byte_flip", i, flip(data, rng, count, low, high), f"{count} flips in {note}", rng,
                       expect_refusal=note not in ("zip structure", "anywhere"))


def gen_trace_truncate(rng, i, seeds):
    data = _pick_trace(rng, seeds)
    if rng.random() < 0.8:
        cut = rng.choice((0, 1, 4, 22, 100, rng.randrange(len(data)), len(data) - 1, len(data) - 22))
        return _trace_case("trace.truncate", i, data[:cut], f"cut at {cut} of {len(data)}", rng, expect_refusal=True)
    extra = rng.choice((b"\x00", b"PK\x05\x06" + bytes(18), os.urandom(64), data[:1000]))
    return _trace_case("trace.truncate", i, data + extra, f"{len(extra)} bytes appended", rng)


def gen_trace_member_surgery(rng, i, seeds):
    data = _pick_trace(rng, seeds)
    members = read_members(data)
    op = rng.choice(("drop", "duplicate", "rename", "swap", "dtype", "shape", "pickle", "fortran", "compress",
                     "reorder", "big-endian", "empty", "extra"))
    refuse = True
    entries = [(f"{k}.npy", npy_bytes(v)) for k, v in members.items()]
    method = zipfile.ZIP_STORED
    if op == "drop":
        name = rng.choice(list(members))
        refuse = name in ("header", "decisions")
        entries = [e for e in entries if e[0] != f"{name}.npy"]
        note = f"dropped {name}"
    elif op == "duplicate":
        entry = rng.choice(entries)
        entries.insert(rng.randrange(len(entries) + 1), (entry[0], rng.choice((entry[1], npy_bytes(np.zeros(3))))))
        note = f"duplicated {entry[0]}"
    elif op == "rename":
        index = rng.randrange(len(entries))
        new = rng.choice(("extra.npy", "decisions", "HEADER.npy", "labels.npz", "../decisions.npy", "gate_probs.npy.npy",
                          "décisions.npy"))
        note = f"renamed {entries[index][0]} to {new!r}"
        entries[index] = (new, entries[index][1])
    elif op == "swap":
        a, b = rng.sample(range(len(entries)), 2)
        entries[a], entries[b] = (entries[a][0], entries[b][1]), (entries[b][0], entries[a][1])
        note = f"swapped {entries[a][0]} and {entries[b][0]}"
        refuse = {entries[a][0], entries[b][0]} != {"labels.npy", "predictions.npy"}  # alike: legitimate
    elif op == "dtype":
        name = rng.choice(list(members))
        dtype = rng.choice((np.int64, np.uint16, np.float32, np.float64, np.int8, np.bool_, np.complex64, "S1",
                            np.uint64))
        members[name] = members[name].astype(dtype)
        entries = [(f"{k}.npy", npy_bytes(v)) for k, v in members.items()]
        ok_int = name in ("labels", "predictions") and np.dtype(dtype).kind in "iu"
        ok_float = name == "gate_probs" and np.dtype(dtype) == np.float32
        refuse = not (ok_int or ok_float)
        note = f"{name} as {np.dtype(dtype)}"
    elif op == "shape":
        name = rng.choice(list(members))
        array = members[name]
        choice = rng.choice(("rows", "transpose", "flatten", "add-dim", "drop-row"))
        if choice == "rows":
            array = array[: max(len(array) - rng.choice((1, 10, 1000)), 0)]
        elif choice == "transpose":
            array = array.T
        elif choice == "flatten":
            array = array.reshape(-1)
        elif choice == "add-dim":
            array = array[None]
        else:
            array = np.concatenate([array, array[:1]])
        refuse = array.shape != members[name].shape
        members[name] = np.ascontiguousarray(array)
        entries = [(f"{k}.npy", npy_bytes(v)) for k, v in members.items()]
        note = f"{name}: {choice}"
    elif op == "pickle":
        name = rng.choice([k for k in ("labels", "decisions", "header") if k in members])
        objects = np.empty(4, dtype=object)
        objects[:] = [{"x": 1}] * 4
        entries = [(n, npy_bytes(objects, allow_pickle=True) if n == f"{name}.npy" else b) for n, b in entries]
        note = f"{name} pickled"
    elif op == "fortran":
        name = rng.choice(list(members))
        entries = [(n, npy_bytes(np.asfortranarray(members[n[:-4]])) if n == f"{name}.npy" else b)
                   for n, b in entries]
        refuse = False
        note = f"{name} in Fortran order"
    elif op == "compress":
        method = rng.choice((zipfile.ZIP_DEFLATED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA))
        refuse = method != zipfile.ZIP_DEFLATED
        note = f"all members compressed with method {method}"
    elif op == "reorder":
        rng.shuffle(entries)
        refuse = False
        note = "members reordered"
    elif op == "big-endian":
        name = rng.choice([k for k in ("labels", "predictions", "gate_probs") if k in members] or ["header"])
        entries = [(n, npy_bytes(members[n[:-4]].astype(members[n[:-4]].dtype.newbyteorder(">")))
                    if n == f"{name}.npy" else b) for n, b in entries]
        refuse = False  # a big-endian array is the same numbers (and a uint8 header has no byte order)
        note = f"{name} big-endian"
    elif op == "empty":
        name = rng.choice(list(members))
        entries = [(n, npy_bytes(members[name][:0]) if n == f"{name}.npy" else b) for n, b in entries]
        note = f"{name} empty"
    else:
        entries.append((rng.choice(("notes.txt", "extra.npy", "__MACOSX/._decisions.npy", " ")), b"hello"))
        note = "an extra member"
    return _trace_case("trace.member_surgery", i, write_entries(entries, method), f"{op}: {note}", rng,
                       expect_refusal=refuse)


def gen_trace_header_types(rng, i, seeds):
    members = read_members(_pick_trace(rng, seeds))
    header, note = mutate_data(header_of(members), rng)
    text = json.dumps(header)
    return _trace_case("trace.header_types", i, write_members(with_header_text(members, text)), note, rng)


def gen_trace_header_numbers(rng, i, seeds):
    members = read_members(_pick_trace(rng, seeds))
    header = header_of(members)
    paths = [p for p in leaf_paths(header) if isinstance(get_at(header, p), (int, float))
             and not isinstance(get_at(header, p), bool)]
    path = rng.choice(paths)
    raw = rng.choice(("1" + "0" * 5000, "-" + "9" * 4301, "1e999", "-1e999", "NaN", "Infinity", "-Infinity",
                      "1" + "0" * 30, "18446744073709551615", "9223372036854775808", "-1", "0", "1.5", "2e0",
                      "1e308", "4e-320", "-0"))
    text = json_with_raw(header, path, raw)
    return _trace_case("trace.header_numbers", i, write_members(with_header_text(members, text)),
                       f"{path} = {raw[:30]}", rng)


def gen_trace_header_nesting(rng, i, seeds):
    members = read_members(_pick_trace(rng, seeds))
    header = header_of(members)
    containers = [p for p in leaf_paths(header) if isinstance(get_at(header, p), (dict, list))]
    path = rng.choice(containers)
    depth = rng.choice(NEST_DEPTHS)
    raw, what = nested(depth, rng)
    target = get_at(header, path)
    inner = path + (("deep",) if isinstance(target, dict) else (len(target),))
    if isinstance(target, list):
        target.append(None)
    text = json_with_raw(header, inner, raw)
    return _trace_case("trace.header_nesting", i, write_members(with_header_text(members, text)),
                       f"{what} {depth} deep at {inner}", rng, expect_refusal=depth > 32)


BUDGETS = ({"computation_pct": True}, {"computation_pct": False}, {"computation_pct": "30"}, {"computation_pct": None},
           {"computation_pct": 101}, {"computation_pct": -0.5}, {"computation_pct": 30, "extra": 1},
           {"metric": "energy@bitfusion", "pct": 30, "cost": {}}, {"metric": "energy@bitfusion", "pct": 30},
           {"metric": "energy", "pct": 30}, {"metric": "a@b@c", "pct": 30}, {"metric": "@x", "pct": 30},
           {"metric": "energy@bitfusion"}, {"pct": 30}, {"metric": "energy@bitfusion", "pct": True},
           {"metric": "energy@bitfusion", "pct": 30, "cost": []}, {"metric": 7, "pct": 30},
           {"metric": "cycles@stripes", "pct": 100, "cost": {"digest": "x", "batch": 1}}, [], "30", 30, True,
           {}, {"metric": "energy@bitfusion", "pct": 30, "cost": {"a": [[[[]]]]}}, {"metric": " @ ", "pct": 5},
           {"metric": "energy@bitfusion", "pct": 30, "cost": {"table": [[0.5]]}},
           {"metric": "energy@bitfusion", "pct": 30, "cost": {"table": [[[0.5]]]}},
           {"metric": "energy@bitfusion", "pct": 30, "cost": {"table": []}},
           {"metric": "energy@bitfusion", "pct": 30, "cost": {"table": [[1e300, -1]]}},
           {"metric": "energy@bitfusion", "pct": 30, "cost": {"table": None}})


def gen_trace_budget(rng, i, seeds):
    members = read_members(_pick_trace(rng, seeds))
    header = header_of(members)
    header["budget"] = copy.deepcopy(rng.choice(BUDGETS))
    return _trace_case("trace.budget", i, write_members(with_header_text(members, json.dumps(header))),
                       f"budget = {header['budget']!r}", rng)


def gen_trace_arrays(rng, i, seeds):
    members = read_members(seeds.traces[rng.choice(SHIPPED_TRACES[:2])])
    header = header_of(members)
    op = rng.choice(("decision-range", "labels-huge", "labels-negative", "preds-huge", "probs-nan", "probs-range",
                     "n_inputs", "units", "labels-int64-ok", "zero-inputs"))
    refuse = True
    n = len(members["decisions"])
    if op == "decision-range":
        members["decisions"] = members["decisions"].copy()
        members["decisions"][rng.randrange(n), rng.randrange(members["decisions"].shape[1])] = \
            rng.choice((len(header["options"]), 255, 200))
    elif op in ("labels-huge", "preds-huge"):
        key = "labels" if op == "labels-huge" else "predictions"
        values = members[key].astype(rng.choice((np.uint64, np.int64, np.uint32)))
        values[rng.randrange(n)] = rng.choice((2**64 - 1, 2**63 - 1, 2**31, 2**32 - 1)) % (
            np.iinfo(values.dtype).max + 1)
        members[key] = values
    elif op == "labels-negative":
        members["labels"] = members["labels"].copy()
        members["labels"][rng.randrange(n)] = -rng.choice((1, 2**31))
    elif op in ("probs-nan", "probs-range"):
        if "gate_probs" not in members:
            members["gate_probs"] = np.full((n, header["network"]["units"].__len__(), len(header["options"])), 0.25,
                                            dtype=np.float16)
        probs = members["gate_probs"].copy()
        probs[rng.randrange(n)] = rng.choice((np.nan, np.inf, -0.1, 1.5)) if op == "probs-nan" or rng.random() < .5 \
            else 2.0
        members["gate_probs"] = probs
    elif op == "n_inputs":
        header["n_inputs"] = rng.choice((n - 1, n + 1, 0, 1, 2 * n))
    elif op == "units":
        header["network"]["units"] = header["network"]["units"][:-1]
    elif op == "labels-int64-ok":
        members["labels"] = members["labels"].astype(np.int64)
        refuse = False
    else:
        header["n_inputs"] = 0
        members = {k: (v[:0] if k != "header" else v) for k, v in members.items()}
    members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return _trace_case("trace.arrays", i, write_members(members), op, rng, expect_refusal=refuse)


def gen_trace_zip_anomaly(rng, i, seeds):
    data = _pick_trace(rng, seeds)
    entries, cd, eocd = zip_layout(data)
    entry = rng.choice(entries)
    op = rng.choice(("encrypt-cd", "encrypt-local", "encrypt-both", "method-99", "method-lzma", "method-bzip2",
                     "real-lzma", "cd-garbage", "eocd-offset", "eocd-count", "crc", "cd-size", "local-name",
                     "data-descriptor", "comment"))
    refuse = True
    if op.startswith("encrypt"):
        if op != "encrypt-local":
            data = patch(data, entry.central + 8, struct.pack("<H", struct.unpack_from("<H", data, entry.central + 8)[0] | 1))
        if op != "encrypt-cd":
            data = patch(data, entry.local + 6, struct.pack("<H", struct.unpack_from("<H", data, entry.local + 6)[0] | 1))

    elif op.startswith("method-"):
        method = {"method-99": 99, "method-lzma": 14, "method-bzip2": 12}[op]
        data = patch(data, entry.central + 10, struct.pack("<H", method))
        if rng.random() < 0.5:
            data = patch(data, entry.local + 8, struct.pack("<H", method))
    elif op == "real-lzma":
        members = read_members(data)
        data = write_members(members, zipfile.ZIP_LZMA)
    elif op == "cd-garbage":  # may hit a field readers ignore (a timestamp): the oracle decides
        data = flip(data, rng, rng.choice((1, 3, 10)), cd, eocd)
        refuse = False
    elif op == "eocd-offset":
        data = patch(data, eocd + 16, struct.pack("<I", rng.choice((0, cd - 1, cd + 1, len(data), 2**32 - 1))))
    elif op == "eocd-count":
        count = rng.choice((0, len(entries) - 1, len(entries) + 1, 65535))
        data = patch(data, eocd + 8, struct.pack("<HH", count, count))
        refuse = False  # readers go by the directory's size; a wrong count alone changes nothing
    elif op == "crc":
        data = patch(data, entry.central + 16, struct.pack("<I", rng.randrange(2**32)))
    elif op == "cd-size":
        delta = rng.choice((-1, 1, -10, 100, -entry.size))
        size = max(entry.size + delta, 0)
        data = patch(data, entry.central + 20, struct.pack("<II", size, size))
    elif op == "local-name":
        data = patch(data, entry.local + 30, b"X")
    elif op == "data-descriptor":
        data = patch(data, entry.central + 8, struct.pack("<H", struct.unpack_from("<H", data, entry.central + 8)[0] | 8))
        refuse = False
    else:
        comment = rng.choice((b"hello", b"\x00" * 10, b"PK\x05\x06"))
        data = patch(data, eocd + 20, struct.pack("<H", len(comment))) + comment
        refuse = False  # an archive comment is legitimate; one that fakes an end record may confuse readers
    return _trace_case("trace.zip_anomaly", i, data, f"{op} on {entry.name}", rng, expect_refusal=refuse)


def _damage_npy(member: bytes, rng: random.Random) -> tuple[bytes, str, bool]:
    """Damage a .npy member's header; returns (bytes, what, must be refused)."""
    major = member[6]
    width = 2 if major == 1 else 4
    length = int.from_bytes(member[8:8 + width], "little")
    text = member[8 + width:8 + width + length].decode("latin1")
    body = member[8 + width + length:]
    op = rng.choice(("magic", "version", "length", "length-huge", "descr", "shape-negative", "shape-float",
                     "shape-nested", "fortran-int", "missing-key", "extra-key", "unbalanced", "unterminated",
                     "non-ascii", "expression", "v2-consistent", "deep", "big-int"))
    refuse = True

    def rebuild(new_text: str, version=(major, 0)) -> bytes:
        encoded = new_text.encode("latin1", "replace")
        w = 2 if version[0] == 1 else 4
        return b"\x93NUMPY" + bytes(version) + len(encoded).to_bytes(w, "little") + encoded + body

    if op == "magic":
        out = b"\x93NUMPZ" + member[6:]
    elif op == "version":
        out = member[:6] + bytes(rng.choice(((4, 0), (1, 1), (0, 0), (255, 255)))) + member[8:]
    elif op == "length":
        out = member[:8] + (length + rng.choice((-1, 1, -10, 16))).to_bytes(width, "little") + member[8 + width:]
    elif op == "length-huge":
        out = member[:8] + (2**width * 8 - 1).to_bytes(width, "little") + member[8 + width:]
    elif op == "descr":
        out = rebuild(text.replace(text[text.index("'descr'"):text.index(",")], rng.choice(
            ("'descr': 'xyz'", "'descr': '|O'", "'descr': [('a', '<i4')]", "'descr': '<U10'", "'descr': 5",
             "'descr': '<M8[s]'", "'descr': '|V8'"))))
    elif op == "shape-negative":
        out = rebuild(text.replace("'shape': (", "'shape': (-1, " if "," in text.split("'shape': (")[1].split(")")[0]
                                   else "'shape': (-"))
    elif op == "shape-float":
        out = rebuild(text.replace("'shape': (", "'shape': (1.5, "))
    elif op == "shape-nested":
        out = rebuild(text.replace("'shape': (", "'shape': ((1,), "))
    elif op == "fortran-int":
        out = rebuild(text.replace("'fortran_order': False", "'fortran_order': 0"))
    elif op == "missing-key":
        out = rebuild(text.replace("'fortran_order': False, ", ""))
    elif op == "extra-key":
        out = rebuild(text.replace("{", "{'extra': 1, ", 1))
    elif op == "unbalanced":
        out = rebuild(text.replace("}", "", 1))
    elif op == "unterminated":
        out = rebuild(text.replace("'descr': '", "'descr': \"", 1))
    elif op == "non-ascii":
        out = rebuild(text.replace("'descr'", "'d\xe9scr'"))
    elif op == "expression":
        out = rebuild(text.replace("'shape': (", "'shape': (__import__('os').getpid(), "))
    elif op == "v2-consistent":
        out = rebuild(text, (2, 0))
        refuse = False
    elif op == "deep":
        out = rebuild(text.replace("'shape': (", "'shape': (" + "(" * 300 + ")" * 300 + ", "))
    else:
        out = rebuild(text.replace("'shape': (", "'shape': (" + "9" * 5000 + ", "))
    return out, op, refuse


def gen_trace_npy_header(rng, i, seeds):
    data = _pick_trace(rng, seeds)
    entries, _, _ = zip_layout(data)
    members = [(e.name, data[e.data:e.data + e.size]) for e in entries]
    index = rng.randrange(len(members))
    damaged, op, refuse = _damage_npy(members[index][1], rng)
    members[index] = (members[index][0], damaged)
    return _trace_case("trace.npy_header", i, write_entries(members), f"{op} in {members[index][0]}", rng,
                       expect_refusal=refuse)


def gen_trace_mmap(rng, i, seeds):
    """The memory-mapped path: decisions over 1 MB, damaged in place."""
    data = seeds.large_trace
    entries, cd, eocd = zip_layout(data)
    entry = next(e for e in entries if e.name == "decisions.npy")
    op = rng.choice(("flip-data", "flip-data", "short-member", "shape-negative", "dtype", "crc", "cd-size",
                     "local-method", "past-cd", "intact"))
    refuse = op != "intact"
    if op == "flip-data":
        data = flip(data, rng, rng.choice((1, 1, 3)), entry.data + 128, entry.data + entry.size)
    elif op == "short-member":
        members = read_members(data)
        members["decisions"] = members["decisions"][:-rng.choice((1, 10, 1000))]
        data = write_members(members)  # header still says 40,000 inputs
    elif op in ("shape-negative", "dtype"):
        member = data[entry.data:entry.data + entry.size]
        text = member[10:10 + int.from_bytes(member[8:10], "little")]
        new = text.replace(b"(40000,", b"(-1,") if op == "shape-negative" else text.replace(b"|u1", b"<u2")
        new = new.ljust(len(text))
        data = patch(data, entry.data + 10, new)
    elif op == "crc":
        data = patch(data, entry.central + 16, struct.pack("<I", rng.randrange(2**32)))
    elif op == "cd-size":
        size = entry.size + rng.choice((-350, -1, 1, 350))
        data = patch(data, entry.central + 20, struct.pack("<II", size, size))
    elif op == "local-method":
        data = patch(data, entry.local + 8, struct.pack("<H", 8))
    elif op == "past-cd":
        size = entry.size + (eocd - entry.data)
        data = patch(data, entry.central + 20, struct.pack("<II", size, size))
    return _trace_case("trace.mmap", i, data, op, rng, expect_refusal=refuse)


# ----------------------------------------------------------------------------------------------
# YAML documents (hardware configs, networks).

def yaml_text_mutation(text: str, rng: random.Random) -> tuple[bytes, str, bool]:
    """Text-level damage; returns (bytes, what, must be refused)."""
    lines = text.splitlines(keepends=True)
    op = rng.choice(("flip", "truncate", "dup-line", "drop-line", "indent", "tab", "control", "bom", "crlf"))
    refuse = False
    if op == "flip":
        data = flip(text.encode(), rng, rng.choice((1, 2, 5)))
    elif op == "truncate":
        data = text.encode()[:rng.randrange(len(text))]
    elif op == "dup-line":
        candidates = [k for k, line in enumerate(lines) if ":" in line and not line.lstrip().startswith(("#", "-"))
                      and not line.rstrip().endswith(":")]
        k = rng.choice(candidates)
        lines.insert(k + 1, lines[k])
        data = "".join(lines).encode()
        op = f"dup-line {k + 1}"  # a repeated key, unless the line sits inside a block string
    elif op == "drop-line":
        del lines[rng.randrange(len(lines))]
        data = "".join(lines).encode()
    elif op == "indent":
        k = rng.randrange(len(lines))
        lines[k] = " " + lines[k]
        data = "".join(lines).encode()
    elif op == "tab":
        k = rng.randrange(len(lines))
        lines[k] = "\t" + lines[k]
        data = "".join(lines).encode()
    elif op == "control":
        at = rng.randrange(len(text))
        data = (text[:at] + rng.choice(("\x00", "\x07", "\x1b", "\ufffe", "\x85")) + text[at:]).encode("utf-8",
                                                                                                        "surrogatepass")
    elif op == "bom":
        data = b"\xef\xbb\xbf" + text.encode()
    else:
        data = text.replace("\n", "\r\n").encode()
    return data, op, refuse


def yaml_key_mutation(data: dict, rng: random.Random) -> tuple[bytes, str]:
    text = yaml.safe_dump(data, sort_keys=False)
    lines = text.splitlines(keepends=True)
    op = rng.choice(("int-key", "null-key", "bool-key", "float-key", "complex-key", "merge", "int-key-nested",
                     "on-key", "dup-top"))
    top = [k for k, line in enumerate(lines) if line[:1].isalpha()]
    # The first key of a block mapping (its parent line ends with ':'), never a line inside a string.
    nested_lines = [k for k, line in enumerate(lines) if k and lines[k - 1].rstrip().endswith(":")
                    and re.match(r"^ +[A-Za-z_][\w-]*:( |$)", line)]
    if op == "int-key":
        insert, at = "1: x\n", rng.choice(top)
    elif op == "null-key":
        insert, at = "null: x\n", rng.choice(top)
    elif op == "bool-key":
        insert, at = "true: 1\n", rng.choice(top)
    elif op == "float-key":
        insert, at = "1.5: 1\n", rng.choice(top)
    elif op == "complex-key":
        insert, at = rng.choice(("? [a, b]\n: 1\n", "? {a: 1}\n: 2\n")), rng.choice(top)
    elif op == "merge":
        insert, at = "<<: {colour: red}\n", rng.choice(top)
    elif op == "on-key":
        insert, at = "on: 1\n", rng.choice(top)
    elif op == "dup-top":
        at = rng.choice(top)
        insert = lines[at] if not lines[at].rstrip().endswith(":") else lines[at] + "  {}\n"
        if lines[at].rstrip().endswith(":"):
            insert = lines[at].rstrip("\n") + " {}\n"
    else:
        at = rng.choice(nested_lines or top)
        indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
        insert = f"{indent}{rng.choice(('2', 'null', 'false', '3.5'))}: 1\n"
    lines.insert(at, insert)
    return "".join(lines).encode(), op


def yaml_alias_mutation(data: dict, rng: random.Random) -> tuple[bytes, str]:
    text = yaml.safe_dump(data, sort_keys=False)
    op = rng.choice(("bomb", "bomb", "benign", "anchor-only", "scalar-alias", "self"))
    if op == "bomb":
        levels = rng.choice((3, 5, 9))
        bomb = "lol_0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
        for k in range(1, levels):
            bomb += f"lol_{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]\n"
        key = rng.choice(("description", "name", "meta", "colour"))
        text = bomb + text + f"{key}: *a{levels - 1}\n" if key not in data else bomb + _replace_top(text, key,
                                                                                                   f"*a{levels - 1}")
        return text.encode(), f"alias bomb, {levels} levels, in {key}"
    if op == "benign":
        key = next(iter(data))
        return (f"x_anchor: &v {json.dumps(data[key])}\n" + _replace_top(text, key, "*v")).encode(), f"alias {key}"
    if op == "anchor-only":
        return text.replace(":", ": &anchor1", 1).encode(), "an anchor, no alias"
    if op == "scalar-alias":
        return ("a: &s 5\nb: *s\n" + text).encode(), "scalar alias"
    return ("loop: &l [*l]\n" + text).encode(), "self reference"


def _replace_top(text: str, key: str, value: str) -> str:
    lines = text.splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        if skipping and (line.startswith(" ") or line.startswith("-")):
            continue
        skipping = False
        if line.startswith(f"{key}:"):
            out.append(f"{key}: {value}\n")
            skipping = True
        else:
            out.append(line)
    return "".join(out)


def encoding_mutation(text: str, rng: random.Random, seeds: Seeds) -> tuple[bytes, str, bool]:
    op = rng.choice(("latin-1", "utf-16-le", "utf-16-be", "utf-16-nobom", "utf-32", "npz", "random", "utf-8-bom",
                     "cp1252", "nul"))
    accented = text.replace("description: ", "description: caf\u00e9 r\u00e9sum\u00e9 ", 1) \
        if "description: " in text else "# caf\u00e9\n" + text
    if op == "latin-1":
        return accented.encode("latin-1", "replace"), op, True
    if op == "cp1252":
        return accented.replace("caf\u00e9", "\u201ccaf\u00e9\u201d").encode("cp1252", "replace"), op, True
    if op == "utf-16-le":
        return b"\xff\xfe" + text.encode("utf-16-le"), op, True
    if op == "utf-16-be":
        return b"\xfe\xff" + text.encode("utf-16-be"), op, True
    if op == "utf-16-nobom":
        return text.encode("utf-16-le"), op, True
    if op == "utf-32":
        return text.encode("utf-32"), op, True
    if op == "npz":
        return seeds.traces[SHIPPED_TRACES[1]], op, True
    if op == "random":
        return random.Random(rng.random()).randbytes(rng.choice((10, 1000, 50_000))), op, True
    if op == "utf-8-bom":
        return b"\xef\xbb\xbf" + accented.encode(), op, False
    at = rng.randrange(len(text))
    return (text[:at] + "\x00" + text[at:]).encode(), op, True


def nesting_mutation(data: dict, rng: random.Random) -> tuple[bytes, str, bool]:
    depth = rng.choice(NEST_DEPTHS)
    key = rng.choice(("description", "meta", "colour", "name"))
    if rng.random() < 0.6:
        raw, what = nested(depth, rng)
        body = yaml.safe_dump({k: v for k, v in data.items() if k != key}, sort_keys=False)
        return (body + f"{key}: {raw}\n").encode(), f"flow {what} {depth} deep in {key}", depth > 32
    depth = min(depth, 3000)  # block nesting grows quadratically in text
    block = "".join("  " * k + f"k{k}:\n" for k in range(depth)) + "  " * depth + "v\n"
    body = yaml.safe_dump({k: v for k, v in data.items() if k != key}, sort_keys=False)
    return (body + f"{key}:\n" + "".join("  " + line + "\n" for line in block.splitlines())).encode(), \
        f"block mapping {depth} deep in {key}", depth > 31


def huge_number_text(data: dict, rng: random.Random) -> tuple[bytes, str]:
    paths = [p for p in leaf_paths(data) if isinstance(get_at(data, p), (int, float))
             and not isinstance(get_at(data, p), bool)]
    path = rng.choice(paths)
    raw = rng.choice(("1" + "0" * 5000, "9" * 4301, "0x" + "f" * 40, "1e400", ".inf", "-.inf", ".nan", "1_000_000",
                      "0b" + "1" * 70, "1" + "0" * 19, "-9223372036854775809", "1:30:00", "0o777", "+12", "1e3"))
    marker = "RAWMARKER"
    text = yaml.safe_dump(set_at(copy.deepcopy(data), path, marker), sort_keys=False)
    return text.replace(marker, raw, 1).encode(), f"{path} = {raw[:24]}"


def _yaml_dump(data) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _hw_case(cls, i, data: bytes, note: str, rng, seeds, refuse=False) -> Case:
    trace = rng.choice(("traces/fmnist_resnet20_static_8bit.npz", "traces/fmnist_resnet20_b30.npz"))
    return Case(cls, i, "hw", ["run", "--hw", "{dir}/hw.yaml", "--trace", str(REPO / trace), "--format", "json",
                               "-o", "{out}"], {"hw.yaml": data}, "hw.yaml", note, expect_refusal=refuse)


def _hw_seed(rng, seeds) -> tuple[str, str]:
    name = rng.choice([n for n in seeds.hw_texts if n != "eyeriss"] + ["eyeriss"])
    return name, seeds.hw_texts[name]


def gen_hw_text(rng, i, seeds):
    name, text = _hw_seed(rng, seeds)
    data, op, refuse = yaml_text_mutation(text, rng)
    return _hw_case("hw.text", i, data, f"{name}: {op}", rng, seeds, refuse)


BOOL_SWAPS = ("false", "true", "False", "no", 0, 1, "0", None, [], "yes")


def gen_hw_types(rng, i, seeds):
    name, text = _hw_seed(rng, seeds)
    data = parsed_yaml(text)
    if rng.random() < 0.3:  # a true/false field given something else
        buffer = rng.randrange(len(data["buffers"]))
        target = rng.choice((("buffers", buffer, "double_buffered"), ("array", "spatial_reuse")))
        value = rng.choice(BOOL_SWAPS)
        set_at(data, target, value)
        return _hw_case("hw.types", i, _yaml_dump(data), f"{name}: {target} = {value!r}", rng, seeds, True)
    if rng.random() < 0.15:
        value = rng.choice((["a"], {"a": 1}, 5, None, True, 1.5))
        data["description"] = value
        return _hw_case("hw.types", i, _yaml_dump(data), f"{name}: description = {value!r}", rng, seeds,
                        value is not None)
    data, note = mutate_data(data, rng)
    return _hw_case("hw.types", i, _yaml_dump(data), f"{name}: {note}", rng, seeds)


def gen_hw_numbers(rng, i, seeds):
    name, text = _hw_seed(rng, seeds)
    data = parsed_yaml(text)
    if rng.random() < 0.5:
        body, note = huge_number_text(data, rng)
        return _hw_case("hw.numbers", i, body, f"{name}: {note}", rng, seeds)
    data, note = mutate_data(data, rng, numbers_only=True)
    return _hw_case("hw.numbers", i, _yaml_dump(data), f"{name}: {note}", rng, seeds)


def gen_hw_keys(rng, i, seeds):
    name, text = _hw_seed(rng, seeds)
    if rng.random() < 0.2:  # an integer key among the citations
        data = text.replace("sources:\n", "sources:\n  7: \"a citation\"\n", 1)
        return _hw_case("hw.keys", i, data.encode(), f"{name}: int key under sources", rng, seeds, True)
    body, op = yaml_key_mutation(parsed_yaml(text), rng)
    return _hw_case("hw.keys", i, body, f"{name}: {op}", rng, seeds, True)


def gen_hw_aliases(rng, i, seeds):
    name, text = _hw_seed(rng, seeds)
    body, note = yaml_alias_mutation(parsed_yaml(text), rng)
    return _hw_case("hw.aliases", i, body, f"{name}: {note}", rng, seeds, "anchor" not in note)


def gen_hw_encoding(rng, i, seeds):
    name, text = _hw_seed(rng, seeds)
    body, op, refuse = encoding_mutation(text, rng, seeds)
    return _hw_case("hw.encoding", i, body, f"{name}: {op}", rng, seeds, refuse)


def gen_hw_nesting(rng, i, seeds):
    name, text = _hw_seed(rng, seeds)
    body, note, refuse = nesting_mutation(parsed_yaml(text), rng)
    return _hw_case("hw.nesting", i, body, f"{name}: {note}", rng, seeds, refuse)


def _net_case(cls, i, data: bytes, note: str, rng, refuse=False, suffix=".yaml") -> Case:
    hw = rng.choice(("stripes", "bitfusion", "dadiannao", "eyeriss"))
    name = f"net{suffix}"
    argv = ["run", "--network", "{dir}/" + name, "--hw", hw, "--format", "json", "-o", "{out}"]
    if rng.random() < 0.2:
        argv += ["--batch", str(rng.choice((1, 2, 4)))]
    return Case(cls, i, "network", argv, {name: data}, name, note, expect_refusal=refuse)


def _net_seed(rng, seeds) -> tuple[str, str]:
    small = [n for n in seeds.network_texts if n in ("bitfusion_lenet5", "bitfusion_cifar10", "bitfusion_svhn",
                                                      "bitfusion_rnn", "bitfusion_lstm", "stripes_alexnet",
                                                      "eyeriss_alexnet_conv", "bitfusion_vgg7", "stripes_vgg_19")]
    name = rng.choice(small)
    return name, seeds.network_texts[name]


def gen_net_types(rng, i, seeds):
    name, text = _net_seed(rng, seeds)
    data = parsed_yaml(text)
    if rng.random() < 0.6:  # inside a layer: where the numbers are
        layer = rng.randrange(len(data["layers"]))
        sub, note = mutate_data(data["layers"][layer], rng)
        data["layers"][layer] = sub
        note = f"layers[{layer}]: {note}"
    else:
        data, note = mutate_data(data, rng)
    return _net_case("net.types", i, _yaml_dump(data), f"{name}: {note}", rng)


def gen_net_numbers(rng, i, seeds):
    name, text = _net_seed(rng, seeds)
    data = parsed_yaml(text)
    layer = rng.randrange(len(data["layers"]))
    op = rng.random()
    if op < 0.35:  # the overflow: a huge size with the MAC count left to derive
        key = rng.choice(("c_in", "c_out", "h_in", "w_in", "kernel", "groups", "stride", "padding"))
        value = rng.choice((2**20 + 1, 2**31, 2**40, 2**44, 2**62, 2**63 - 1, 2**63, 2**64))
        data["layers"][layer][key] = value
        data["layers"][layer].pop("macs", None)
        data["layers"][layer].pop("weights", None)
        return _net_case("net.numbers", i, _yaml_dump(data), f"{name}: layers[{layer}].{key} = {value}, no macs", rng,
                         True)
    if op < 0.5:
        data["layers"][layer]["macs"] = rng.choice((-1, -2, 0, 2**63))
        return _net_case("net.numbers", i, _yaml_dump(data), f"{name}: layers[{layer}].macs negative/huge", rng, True)
    if op < 0.75:
        body, note = huge_number_text(data, rng)
        return _net_case("net.numbers", i, body, f"{name}: {note}", rng)
    sub, note = mutate_data(data["layers"][layer], rng, numbers_only=True)
    data["layers"][layer] = sub
    return _net_case("net.numbers", i, _yaml_dump(data), f"{name}: layers[{layer}]: {note}", rng)


def gen_net_text(rng, i, seeds):
    name, text = _net_seed(rng, seeds)
    data = parsed_yaml(text)
    op = rng.choice(("text", "text", "keys", "aliases", "encoding", "nesting", "json"))
    if op == "text":
        body, what, refuse = yaml_text_mutation(text, rng)
    elif op == "keys":
        (body, what), refuse = yaml_key_mutation(data, rng), True
    elif op == "aliases":
        body, what = yaml_alias_mutation(data, rng)
        refuse = "anchor" not in what
    elif op == "encoding":
        body, what, refuse = encoding_mutation(text, rng, seeds)
    elif op == "nesting":
        body, what, refuse = nesting_mutation(data, rng)
    else:
        return gen_net_json(rng, i, seeds, data, name)
    return _net_case("net.text", i, body, f"{name}: {op}: {what}", rng, refuse)


def gen_net_json(rng, i, seeds, data=None, name=None):
    if data is None:
        name, text = _net_seed(rng, seeds)
        data = parsed_yaml(text)
    text = json.dumps(data)
    op = rng.choice(("dup", "nan", "big", "deep", "trailing", "types"))
    refuse = True
    if op == "dup":
        text = text.replace('"name": ', '"name": "dup", "name": ', 1)
    elif op == "nan":
        text = text.replace('"c_in": ', '"c_in": NaN, "x": ', 1)
    elif op == "big":
        text = text.replace('"c_out": ', '"c_out": ' + "9" * rng.choice((20, 5000)) + ', "y": ', 1)
    elif op == "deep":
        raw, _ = nested(rng.choice(NEST_DEPTHS), rng)
        text = text[:-1] + ', "meta2": ' + raw + "}"
    elif op == "trailing":
        text += rng.choice((",", "}", " x", "\n\n"))
        refuse = not text.endswith("\n\n")
    else:
        data, what = mutate_data(data, rng)
        text = json.dumps(data)
        refuse = False
    return _net_case("net.text", i, text.encode(), f"{name}: json {op}", rng, refuse, suffix=".json")


# ----------------------------------------------------------------------------------------------
# Regress baselines.

SECRET = "dfs-sim-fuzz-secret-line: do not echo"


def _baseline_case(cls, i, data: bytes, note: str, refuse=False, links=None, extra_files=None) -> Case:
    files = {"baseline.json": data, "secret.txt": (SECRET + "\n").encode()}
    files.update(extra_files or {})
    return Case(cls, i, "baseline", ["regress", "--baseline", "{dir}/baseline.json"], files, "baseline.json", note,
                links=links or {}, expect_refusal=refuse)


def _one_case_baseline(rng, seeds) -> dict:
    cheap = [c for c in seeds.baseline["cases"] if "bitfusion" not in c["hw"] and "eyeriss" not in c["hw"]]
    case = copy.deepcopy(rng.choice(cheap))
    for key in ("trace", "hw"):  # the case directory lives elsewhere: point back at the shipped file
        case[key] = "{SHIPPED}/" + os.path.normpath(os.path.join("tests", case[key]))
    return {"schema": seeds.baseline["schema"], "cases": [case]}


def _baseline_bytes(data: dict) -> bytes:
    return json.dumps(data, indent=1).encode()


def gen_baseline_types(rng, i, seeds):
    data = _one_case_baseline(rng, seeds)
    if rng.random() < 0.3:
        value = rng.choice((True, False, 0, -1, 4097, 2**63, "16", 1.5, [], {}))
        data["cases"][0]["batch"] = value
        return _baseline_case("baseline.types", i, _baseline_bytes(data), f"batch = {value!r}", True)
    case = data["cases"][0]
    sub, note = mutate_data({k: v for k, v in case.items() if k not in ("trace", "hw")}, rng)
    data["cases"][0] = {"trace": case["trace"], "hw": case["hw"], **sub} if isinstance(sub, dict) else sub
    return _baseline_case("baseline.types", i, _baseline_bytes(data), note)


def gen_baseline_paths(rng, i, seeds):
    data = _one_case_baseline(rng, seeds)
    key = rng.choice(("trace", "hw"))
    links = {}
    choice = rng.choice(("etc-shadow", "etc-passwd", "absolute", "secret-outside", "symlink-out", "dir", "self",
                         "missing", "nul", "long", "empty", "hw-as-trace", "dotdot-inside"))
    refuse = True
    value = {"etc-shadow": "../../../../../../../../etc/shadow", "etc-passwd": "/etc/passwd",
             "absolute": "/proc/self/environ", "secret-outside": "../secret.txt", "symlink-out": "link.npz",
             "dir": ".", "self": "baseline.json", "missing": "nope.npz", "nul": "a\x00b", "long": "x" * 5000,
             "empty": "", "hw-as-trace": data["cases"][0]["hw"], "dotdot-inside": "sub/../secret.txt"}[choice]
    if choice == "symlink-out":
        links["link.npz"] = "/etc/passwd"
    if key == "hw" and choice == "hw-as-trace":
        value = data["cases"][0]["trace"]
    data["cases"][0][key] = value
    return _baseline_case("baseline.paths", i, _baseline_bytes(data), f"{key} = {choice}", refuse, links)


def gen_baseline_structure(rng, i, seeds):
    data = _one_case_baseline(rng, seeds)
    op = rng.choice(("empty-cases", "cases-dict", "no-cases", "schema", "unknown-top", "unknown-case", "metric-str",
                     "metric-bool", "metric-nan", "metric-huge", "no-metrics", "drift", "policy", "extra-case"))
    refuse = op not in ("drift", "extra-case")
    if op == "empty-cases":
        data["cases"] = []
    elif op == "cases-dict":
        data["cases"] = {"0": data["cases"][0]}
    elif op == "no-cases":
        del data["cases"]
    elif op == "schema":
        data["schema"] = rng.choice(("dfs-sim-regress/2", None, 1, ""))
    elif op == "unknown-top":
        data["colour"] = 1
    elif op == "unknown-case":
        data["cases"][0]["colour"] = 1
    elif op == "metric-str":
        data["cases"][0]["metrics"]["cycles.mean"] = "fast"
    elif op == "metric-bool":
        data["cases"][0]["metrics"]["cycles.mean"] = True
    elif op == "metric-nan":
        text = _baseline_bytes(data).decode().replace('"cycles.mean": ', '"cycles.mean": NaN, "x": ', 1)
        return _baseline_case("baseline.structure", i, text.encode(), op, True)
    elif op == "metric-huge":
        text = _baseline_bytes(data).decode().replace('"cycles.mean": ', '"cycles.mean": 1e999, "x": ', 1)
        return _baseline_case("baseline.structure", i, text.encode(), op, True)
    elif op == "no-metrics":
        del data["cases"][0]["metrics"]
    elif op == "drift":
        metric = rng.choice(list(data["cases"][0]["metrics"]))
        value = data["cases"][0]["metrics"][metric]
        data["cases"][0]["metrics"][metric] = value * 1.5 + 1 if isinstance(value, (int, float)) else 1.0
    elif op == "policy":
        data["cases"][0]["policy"] = rng.choice(("random", 1, True, ""))
    else:
        data["cases"].append(copy.deepcopy(data["cases"][0]))
    return _baseline_case("baseline.structure", i, _baseline_bytes(data), op, refuse)


def gen_baseline_text(rng, i, seeds):
    data = _one_case_baseline(rng, seeds)
    text = _baseline_bytes(data).decode()
    op = rng.choice(("flip", "truncate", "dup-key", "deep", "encoding", "big-int", "bom", "binary"))
    refuse = True
    if op == "flip":
        body = flip(text.encode(), rng, rng.choice((1, 3)))
        refuse = False
    elif op == "truncate":
        body = text.encode()[:rng.randrange(len(text))]
    elif op == "dup-key":
        body = text.replace('"schema": ', '"schema": "x", "schema": ', 1).encode()
    elif op == "deep":
        raw, _ = nested(rng.choice(NEST_DEPTHS), rng)
        body = (text.rstrip()[:-1] + ', "deep": ' + raw + "}").encode()
    elif op == "encoding":
        body = b"\xff\xfe" + text.encode("utf-16-le") if rng.random() < 0.5 else \
            text.replace("schema", "sch\u00e9ma").encode("latin-1")
    elif op == "big-int":
        body = text.replace('"n_inputs": ', '"n_inputs": ' + "9" * 5000 + ', "z": ', 1).encode()
    elif op == "bom":
        body = b"\xef\xbb\xbf" + text.encode()
        refuse = False
    else:
        body = seeds.traces[SHIPPED_TRACES[1]][:5000]
    return _baseline_case("baseline.text", i, body, op, refuse)


# ----------------------------------------------------------------------------------------------
# The trace manifest (dfs-sim run without --trace).

def gen_manifest(rng, i, seeds):
    data = copy.deepcopy(seeds.manifest)
    entry = {"file": "traces/t.npz", "model": "fuzz"}
    data["traces"] = [entry] + [e for e in data["traces"][:2]]
    op = rng.choice(("ok", "types", "escape", "absolute", "empty", "not-list", "dup", "truncate", "nan", "deep",
                     "missing-file"))
    refuse = op not in ("ok", "types")
    if op == "types":
        data, note = mutate_data(data, rng)
        refuse = False
    elif op == "escape":
        entry["file"] = rng.choice(("../../../../etc/passwd", "traces/../../secret.txt", "traces/../traces/../../x"))
    elif op == "absolute":
        entry["file"] = "/etc/passwd"
    elif op == "empty":
        data["traces"] = []
    elif op == "not-list":
        data["traces"] = {"a": entry}
    elif op == "missing-file":
        entry["file"] = "traces/missing.npz"
    text = json.dumps(data)
    if op == "dup":
        text = text.replace('"traces": ', '"traces": [], "traces": ', 1)
    elif op == "truncate":
        text = text[:rng.randrange(len(text))]
    elif op == "nan":
        text = text.replace('"model": ', '"model": NaN, "m": ', 1)
    elif op == "deep":
        raw, _ = nested(rng.choice(NEST_DEPTHS), rng)
        text = text[:-1] + ', "deep": ' + raw + "}"
        refuse = True
    files = {"traces/MANIFEST.json": text.encode(), "traces/t.npz": seeds.traces[SHIPPED_TRACES[1]],
             "secret.txt": (SECRET + "\n").encode()}
    return Case("manifest", i, "manifest", ["run", "--hw", rng.choice(CHEAP_HW), "--format", "json", "-o", "{out}"],
                files, "traces/MANIFEST.json", op, expect_refusal=refuse, manifest=True, in_process_only=True)


# ----------------------------------------------------------------------------------------------
# Command lines.

def gen_cli(rng, i, seeds):
    trace = "{dir}/in.npz"  # a copy: no output choice below may ever name a shipped file
    command = rng.choice(("run", "run", "run", "run", "regress", "validate", "frontier", "plot"))
    argv: list[str]
    files = {"in.npz": seeds.traces[SHIPPED_TRACES[1]]}
    notes = []
    out_choice = rng.choice(("ok", "ok", "ok", "stdout", "dir", "empty", "missing-dir", "proc", "long", "devnull",
                             "trailing-slash", "input", "file-as-dir"))
    out = {"ok": "{out}", "stdout": None, "dir": "{dir}", "empty": "", "missing-dir": "{dir}/no/such/dir/r.json",
           "proc": "/proc/dfs-sim-fuzz.json", "long": "{dir}/" + "r" * 300 + ".json", "devnull": "/dev/null",
           "trailing-slash": "{dir}/r.json/", "input": trace, "file-as-dir": "{dir}/secret.txt/r.json"}[out_choice]
    files["secret.txt"] = b"x\n"
    notes.append(f"-o {out_choice}")
    if command == "run":
        argv = ["run"]
        if rng.random() < 0.85:
            argv += ["--trace", rng.choice((trace, trace, trace, "{dir}", "", "{dir}/missing.npz", "/dev/null"))]
        elif rng.random() < 0.5:
            argv += ["--network", str(REPO / "hw_configs/networks/bitfusion_lenet5.yaml")]
        if rng.random() < 0.8:
            argv += ["--hw", rng.choice(("stripes", "dadiannao", "bitfusion", "nonexistent", "", "{dir}",
                                         str(REPO / "hw_configs" / "loom.yaml"), "../stripes", "/dev/zero"))]
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            metric = rng.choice(("latency_us", "energy_uj", "cycles", "computation_pct", "dram_bytes", "speed"))
            value = rng.choice(("50", "0", "-0", "1e3", "inf", "-inf", "nan", "NaN", "1e400", "-1", "abc", "",
                                "1_000", " 7 ", "0x10", "1e-400"))
            argv += ["--budget", rng.choice((f"{metric}={value}", f"{metric}{value}", f"={value}", f"{metric}="))]
        if rng.random() < 0.4:
            argv += ["--batch", rng.choice(("1", "4", "16", "0", "-1", "4097", str(2**63), "1e3", "abc", "2.5",
                                            "9" * 5000))]
        if rng.random() < 0.3:
            argv += ["--policy", rng.choice(("lockstep", "bucketed", "random", ""))]
        argv += ["--format", rng.choice(("json", "json", "csv", "table", "xml"))]
        if rng.random() < 0.2:
            argv += ["--per-layer"]
    elif command == "regress":
        argv = ["regress", "--baseline", rng.choice((str(REPO / "tests" / "missing.json"), "{dir}", "",
                                                     "{dir}/secret.txt"))]
        if rng.random() < 0.6:
            argv += ["--rtol", rng.choice(("inf", "nan", "-1", "abc", "1e-6", "1e400"))]
        out = None
    elif command == "validate":
        argv = ["validate"]
        if out_choice in ("ok", "stdout", "input"):  # only refusals: validation itself is slow
            out, out_choice = "{dir}", "dir"
    else:
        figure_out = {"ok": "{dir}/no/f.png", "stdout": "{dir}/f.xyz"}.get(out_choice, out)
        argv = ["frontier", "--trace", trace] if command == "frontier" else ["plot", "decisions", "--trace", trace]
        argv += ["-o", figure_out if figure_out is not None else "{dir}/f.xyz"]
        out = None
        if command == "frontier" and rng.random() < 0.5:
            argv += ["--csv", rng.choice(("{dir}", "", "/proc/x.csv"))]
    if out is not None:
        argv += ["-o", out]
    return Case("cli.args", i, "cli", argv, files, None, "; ".join(notes) + f"; {command}")


GENERATORS = {
    "trace.byte_flip": gen_trace_byte_flip,
    "trace.truncate": gen_trace_truncate,
    "trace.member_surgery": gen_trace_member_surgery,
    "trace.header_types": gen_trace_header_types,
    "trace.header_numbers": gen_trace_header_numbers,
    "trace.header_nesting": gen_trace_header_nesting,
    "trace.budget": gen_trace_budget,
    "trace.arrays": gen_trace_arrays,
    "trace.zip_anomaly": gen_trace_zip_anomaly,
    "trace.npy_header": gen_trace_npy_header,
    "trace.mmap": gen_trace_mmap,
    "hw.text": gen_hw_text,
    "hw.types": gen_hw_types,
    "hw.numbers": gen_hw_numbers,
    "hw.keys": gen_hw_keys,
    "hw.aliases": gen_hw_aliases,
    "hw.encoding": gen_hw_encoding,
    "hw.nesting": gen_hw_nesting,
    "net.types": gen_net_types,
    "net.numbers": gen_net_numbers,
    "net.text": gen_net_text,
    "baseline.types": gen_baseline_types,
    "baseline.paths": gen_baseline_paths,
    "baseline.structure": gen_baseline_structure,
    "baseline.text": gen_baseline_text,
    "manifest": gen_manifest,
    "cli.args": gen_cli,
}


def make_case(cls: str, index: int, seeds: Seeds, seed: int = 11) -> Case:
    rng = random.Random(f"{seed}:{cls}:{index}")
    case = GENERATORS[cls](rng, index, seeds)
    case.cls, case.index = cls, index
    return case

