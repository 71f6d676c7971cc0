"""The fuzz suite's independent judge: is an input legitimate, and is a report sane?

Written from the documents (docs/trace-format.md, docs/hardware.md, docs/ci.md,
docs/robustness.md), not from dfs-sim's loaders, which it never calls: a run that dfs-sim
accepted counts as legitimate only if these checks agree, and its report only if every number
is finite, non-negative and consistent with the input. Each check returns None when satisfied,
else the reason.
"""
from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import yaml

from dfs_sim import limits  # the documented bounds (policy); every check below is written here

REPO = Path(__file__).resolve().parents[2]
LAYER_KINDS = ("conv", "fc", "gate-embed", "lstm", "gate-fc", "pool")
VECTOR_KINDS = ("fc", "gate-embed", "lstm", "gate-fc")
RULES = ("unit", "shortcut", "full", "fixed")
METRICS = ("cycles", "latency_us", "energy_uj", "dram_bytes", "sram_bytes")


class Invalid(Exception):
    pass


def check(condition, reason: str):
    if not condition:
        raise Invalid(reason)


def verdict(function, *args) -> str | None:
    try:
        function(*args)
    except Invalid as err:
        return str(err)
    return None


def is_int(value) -> bool:
    return type(value) is int


def is_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------
# Documents.

def strict_json(text: str):
    def pairs(items):
        out = {}
        for key, value in items:
            check(key not in out, f"duplicate JSON key {key!r}")
            out[key] = value
        return out

    def constant(name):
        raise Invalid(f"JSON {name}")

    def integer(text):
        check(len(text.lstrip("-")) <= 19, "integer with too many digits")
        return int(text)

    def number(text):
        value = float(text)
        check(math.isfinite(value), "non-finite number")
        return value

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_int=integer,
                          parse_float=number)
    except (ValueError, RecursionError) as err:
        raise Invalid(f"not JSON: {type(err).__name__}") from None
    check(depth(data) <= limits.MAX_DEPTH, "nested too deep")
    return data


def depth(data) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            stack += [(v, level + 1) for v in value.values()]
            deepest = max(deepest, level)
        elif isinstance(value, list):
            stack += [(v, level + 1) for v in value]
            deepest = max(deepest, level)
    return deepest


def utf8_text(data: bytes) -> str:
    check(len(data) <= limits.MAX_TEXT_BYTES, "too large")
    check(b"\x00" not in data and data[:2] not in (b"\xff\xfe", b"\xfe\xff"), "not UTF-8 text")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise Invalid("not UTF-8") from None


def plain_yaml(data: bytes):
    """YAML that is plain data: no aliases, string keys once each, standard tags, bounded numbers."""
    text = utf8_text(data)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # the pure-Python composer: a second parser
    except (yaml.YAMLError, RecursionError) as err:
        raise Invalid(f"not YAML: {type(err).__name__}") from None
    if root is None:
        return None
    seen, stack = set(), [(root, 1)]
    allowed = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}
    while stack:
        node, level = stack.pop()
        check(id(node) not in seen, "YAML alias")
        seen.add(id(node))
        check(node.tag in allowed, f"YAML tag {node.tag}")
        if isinstance(node, yaml.MappingNode):
            check(level <= limits.MAX_DEPTH, "YAML nested too deep")
            keys = [k for k, _ in node.value]
            check(all(isinstance(k, yaml.ScalarNode) and k.tag.endswith(":str") for k in keys), "non-string key")
            check(len({k.value for k in keys}) == len(keys), "duplicate key")
            stack += [(v, level + 1) for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            check(level <= limits.MAX_DEPTH, "YAML nested too deep")
            stack += [(v, level + 1) for v in node.value]
        elif node.tag.endswith((":int", ":float")):
            check(len(node.value) <= 64, "huge number")
    try:
        value = yaml.load(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as err:
        raise Invalid(f"not YAML: {type(err).__name__}") from None
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, float):
            check(math.isfinite(item), "non-finite number")
        elif isinstance(item, int) and not isinstance(item, bool):
            check(abs(item) < 2**63, "integer beyond 64 bits")
    return value


# ----------------------------------------------------------------------------------------------
# Networks (docs/trace-format.md, "Network").

def network_ok(net) -> None:
    check(isinstance(net, dict), "network not a mapping")
    check(set(net) <= {"name", "description", "input_shape", "units", "layers", "meta", "format", "version"},
          "network: unknown key")
    check(isinstance(net.get("name"), str) and 0 < len(net["name"]) <= limits.MAX_NAME_CHARS, "network name")
    check(isinstance(net.get("description", ""), str), "network description")
    check(isinstance(net.get("meta", {}), dict), "network meta")
    units = net.get("units", [])
    check(isinstance(units, list) and len(units) <= limits.MAX_UNITS
          and all(isinstance(u, str) and 0 < len(u) <= limits.MAX_NAME_CHARS for u in units)
          and len(set(units)) == len(units), "units")
    shape = net.get("input_shape", [3, 32, 32])
    check(isinstance(shape, list) and len(shape) == 3 and all(is_int(v) and v > 0 for v in shape)
          and shape[0] <= limits.MAX_CHANNELS and max(shape[1:]) <= limits.MAX_SPATIAL, "input_shape")
    layers = net.get("layers")
    check(isinstance(layers, list) and 0 < len(layers) <= limits.MAX_LAYERS, "layers")
    names = []
    followed = set()
    for layer in layers:
        check(isinstance(layer, dict), "layer not a mapping")
        allowed = {"name", "kind", "c_in", "c_out", "h_in", "w_in", "h_out", "w_out", "kernel", "stride", "padding",
                   "groups", "unit", "precision", "w_bits", "a_bits", "macs", "weights", "reads_input",
                   "input_density", "output_density"}
        check(set(layer) <= allowed, "layer: unknown key")
        check(isinstance(layer.get("name"), str) and 0 < len(layer["name"]) <= limits.MAX_NAME_CHARS, "layer name")
        names.append(layer["name"])
        check(layer.get("kind") in LAYER_KINDS and isinstance(layer.get("kind"), str), "layer kind")
        f = {k: layer.get(k, d) for k, d in (("h_in", 1), ("w_in", 1), ("h_out", 1), ("w_out", 1), ("kernel", 1),
                                             ("stride", 1), ("padding", 0), ("groups", 1))}
        f["c_in"], f["c_out"] = layer.get("c_in"), layer.get("c_out")
        if layer.get("kind") == "pool" and "c_out" not in layer:
            f["c_out"] = f["c_in"]
        if layer.get("kind") not in VECTOR_KINDS:  # a missing output size is derived from the shape
            for axis in "hw":
                span = f[f"{axis}_in"] + 2 * f["padding"] - f["kernel"] if all(
                    is_int(f[k]) for k in (f"{axis}_in", "padding", "kernel")) else -1
                if f"{axis}_out" not in layer and span >= 0 and is_int(f["stride"]) and f["stride"] >= 1:
                    f[f"{axis}_out"] = span // f["stride"] + 1
        for key, value in f.items():
            check(is_int(value), f"layer {key} not an integer")
        bounds = {"c_in": limits.MAX_CHANNELS, "c_out": limits.MAX_CHANNELS, "groups": limits.MAX_CHANNELS}
        for key, value in f.items():
            check((0 if key == "padding" else 1) <= value <= bounds.get(key, limits.MAX_SPATIAL), f"layer {key} range")
        check(f["c_in"] % f["groups"] == 0 and f["c_out"] % f["groups"] == 0, "groups")
        kind = layer["kind"]
        if kind in VECTOR_KINDS:
            check(all(f[k] == 1 for k in ("h_in", "w_in", "h_out", "w_out", "kernel")), "vector layer not 1x1")
        else:
            for axis in "hw":
                span = f[f"{axis}_in"] + 2 * f["padding"] - f["kernel"]
                check(span >= 0 and f[f"{axis}_out"] == span // f["stride"] + 1, "output size")
        if kind == "pool":
            check(f["c_in"] == f["c_out"], "pool channels")
            macs = f["c_out"] * f["h_out"] * f["w_out"] * f["kernel"] ** 2
            weights = 0
        else:
            weights = f["c_out"] * (f["c_in"] // f["groups"]) * f["kernel"] ** 2
            macs = weights * f["h_out"] * f["w_out"]
        check(macs <= limits.MAX_LAYER_MACS, "layer MACs over the bound")
        padded = f["c_in"] * (f["h_in"] + 2 * f["padding"]) * (f["w_in"] + 2 * f["padding"])
        check(max(padded, f["c_out"] * f["h_out"] * f["w_out"]) <= limits.MAX_FMAP_ELEMENTS, "feature map bound")
        for key, expected in (("macs", macs), ("weights", weights)):
            if key in layer:
                check(is_int(layer[key]) and layer[key] == expected, f"{key} disagrees with the shape")
        rule = layer.get("precision", "full")
        check(isinstance(rule, str) and rule in RULES, "precision")
        unit = layer.get("unit")
        check(unit is None or (is_int(unit) and 0 <= unit < len(units)), "unit index")
        if rule in ("unit", "shortcut"):
            check(unit is not None, "gated layer without unit")
        if rule == "unit":
            followed.add(unit)
        if rule == "fixed":
            check(all(is_int(layer.get(k)) and 1 <= layer[k] <= limits.MAX_BITS for k in ("w_bits", "a_bits")),
                  "fixed bits")
        else:
            check("w_bits" not in layer and "a_bits" not in layer, "bits on a non-fixed layer")
        check(isinstance(layer.get("reads_input", False), bool), "reads_input")
        for key in ("input_density", "output_density"):
            if key in layer:
                check(type(layer[key]) in (int, float) and 0 < layer[key] <= 1, key)
    check(len(set(names)) == len(names), "layer names")
    check(followed >= set(range(len(units))), "a unit with no layer")


# ----------------------------------------------------------------------------------------------
# Traces (docs/trace-format.md).

def trace_members(data: bytes) -> dict:
    """The trace's arrays and header if it is a legitimate v1 trace, else Invalid."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as err:  # noqa: BLE001 - any failure to open is a verdict
        raise Invalid(f"not a zip: {type(err).__name__}") from None
    names = [i.orig_filename for i in infos]
    check(len(set(names)) == len(names), "duplicate members")
    allowed = {f"{m}.npy" for m in ("header", "decisions", "labels", "predictions", "gate_probs")}
    check(set(names) <= allowed and {"header.npy", "decisions.npy"} <= set(names), "member names")
    offsets = sorted((i.header_offset, i.header_offset + 30 + len(i.filename) + i.compress_size) for i in infos)
    check(all(a[1] <= b[0] for a, b in zip(offsets, offsets[1:])), "overlapping members")
    arrays = {}
    for info in infos:
        check(not info.flag_bits & 1, "encrypted")
        check(info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED), "compression method")
        try:
            raw = archive.read(info)  # checks the CRC
            arrays[info.filename[:-4]] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            check(len(raw) == info.file_size, "member size")
            stream = io.BytesIO(raw)
            version = np.lib.format.read_magic(stream)
            check(version in ((1, 0), (2, 0), (3, 0)), "npy version")
            header_len = stream.tell() + (2 if version == (1, 0) else 4) + int.from_bytes(
                raw[8:8 + (2 if version == (1, 0) else 4)], "little")
            check(header_len + arrays[info.filename[:-4]].nbytes == len(raw), "npy trailing bytes")
        except Invalid:
            raise
        except Exception as err:  # noqa: BLE001
            raise Invalid(f"member {info.filename} unreadable: {type(err).__name__}") from None
    # The memory-mapped reader also checks each local header agrees with the directory.
    for info in infos:
        local = data[info.header_offset:info.header_offset + 30]
        check(len(local) == 30 and local[:4] == b"PK\x03\x04", "local header")
        flags, method = int.from_bytes(local[6:8], "little"), int.from_bytes(local[8:10], "little")
        check(not flags & 1 and method == info.compress_type, "local header disagrees")
    header_bytes = arrays["header"]
    check(header_bytes.dtype == np.uint8 and header_bytes.ndim == 1, "header dtype")
    header = strict_json(utf8_text(header_bytes.tobytes()))
    header_ok(header)
    n, units, options = header["n_inputs"], len(header["network"].get("units", [])), len(header["options"])
    decisions = arrays["decisions"]
    check(decisions.dtype == np.uint8 and decisions.shape == (n, units), "decisions shape/dtype")
    check(decisions.size == 0 or int(decisions.max()) < options, "decision out of range")
    for key in ("labels", "predictions"):
        if key in arrays:
            values = arrays[key]
            check(values.dtype.kind in "iu" and values.dtype.itemsize <= 8 and values.shape == (n,), f"{key} shape")
            check(int(values.min()) >= 0 and int(values.max()) <= limits.MAX_LABEL, f"{key} range")
    if "gate_probs" in arrays:
        probs = arrays["gate_probs"]
        check(probs.dtype.kind == "f" and probs.dtype.itemsize in (2, 4) and probs.shape == (n, units, options),
              "gate_probs shape")
        check(bool(np.all((probs >= 0) & (probs <= 1))), "gate_probs range")
    return {**arrays, "header": header}


def header_ok(h) -> None:
    check(isinstance(h, dict), "header not an object")
    check(set(h) <= {"format", "version", "n_inputs", "network", "options", "budget", "provenance"}, "header keys")
    check(h.get("format") == "dfs-sim-trace" and h.get("version") == 1 and is_int(h.get("version")), "format/version")
    check(is_int(h.get("n_inputs")) and 1 <= h["n_inputs"] <= limits.MAX_INPUTS, "n_inputs")
    check(isinstance(h.get("provenance", {}), dict), "provenance")
    network_ok(h.get("network"))
    options = h.get("options")
    check(isinstance(options, list) and 1 <= len(options) <= limits.MAX_OPTIONS, "options")
    for o in options:
        check(isinstance(o, dict) and set(o) <= {"name", "weight_bits", "act_bits", "full_precision"}, "option keys")
        check(isinstance(o.get("name"), str) and 0 < len(o["name"]) <= limits.MAX_NAME_CHARS, "option name")
        w, a = o.get("weight_bits"), o.get("act_bits")
        check(is_int(w) and is_int(a) and 0 <= w <= 32 and 0 <= a <= 32 and (w == 0) == (a == 0), "option bits")
        full = o.get("full_precision", False)
        check(isinstance(full, bool) and not (full and w == 0), "full_precision")
    check(len({o["name"] for o in options}) == len(options), "option names")
    budget = h.get("budget")
    if budget is None:
        return
    check(isinstance(budget, dict), "budget type")
    if "metric" in budget:
        check(set(budget) <= {"metric", "pct", "cost"} and "pct" in budget, "budget keys")
        metric = budget["metric"]
        check(isinstance(metric, str) and metric.count("@") == 1 and all(p.strip() for p in metric.split("@")),
              "budget metric")
        check(isinstance(budget.get("cost", {}), dict), "budget cost")
        pct = budget["pct"]
    else:
        check(set(budget) <= {"computation_pct"}, "budget keys")
        pct = budget.get("computation_pct")
        if pct is None:
            return
    check(is_number(pct) and 0 <= pct <= 100, "budget pct")


def trace_report_agrees(members: dict, report: dict) -> None:
    header = members["header"]
    check(report["n_inputs"] == header["n_inputs"], "n_inputs differs from the trace")
    budget = header.get("budget")
    pct = None if budget is None else budget.get("pct", budget.get("computation_pct"))
    check((report["budget_pct"] is None) == (pct is None) and (pct is None or math.isclose(report["budget_pct"], pct)),
          "budget differs from the trace")
    options = header["options"]
    if header["network"].get("units"):
        cost = np.array([1.0 if o.get("full_precision") else o["weight_bits"] * o["act_bits"] / 1024 for o in options])
        expected = float(cost[members["decisions"]].mean() * 100)
        check(report["computation_pct"] is not None and math.isclose(report["computation_pct"], expected,
                                                                      rel_tol=1e-9, abs_tol=1e-9),
              "computation_pct differs from the decisions")
    if "labels" in members and "predictions" in members:
        accuracy = float((members["labels"].astype(np.int64) == members["predictions"].astype(np.int64)).mean() * 100)
        check(report["accuracy"] is not None and math.isclose(report["accuracy"], accuracy, abs_tol=1e-9),
              "accuracy differs from the labels")


# ----------------------------------------------------------------------------------------------
# Hardware configs (docs/hardware.md): the type and range rules of issue 11, checked here.

def hw_ok(config) -> None:
    check(isinstance(config, dict), "config not a mapping")
    check(isinstance(config.get("name"), str) and config["name"], "name")
    check(isinstance(config.get("description", ""), str), "description")
    check(is_number(config.get("clock_mhz")) and 1e-3 <= config["clock_mhz"] <= 1e5, "clock_mhz")
    check(isinstance(config.get("sources"), dict) and config["sources"], "sources")
    for section in ("array", "precision", "compute", "dram", "static", "storage"):
        check(isinstance(config.get(section), dict), f"{section}")
    array = config["array"]
    check(isinstance(array.get("spatial_reuse", True), bool), "spatial_reuse")
    check(isinstance(array.get("unroll"), dict) and all(is_int(v) and 1 <= v <= limits.MAX_CHANNELS
                                                        for v in array["unroll"].values()), "unroll")
    for value in (array.get("params") or {}).values():
        check(isinstance(value, str) or (is_int(value) and 0 <= value <= limits.MAX_CHANNELS), "params")
    for key in ("native_bits", "min_bits", "max_bits"):
        if key in config["precision"]:
            check(is_int(config["precision"][key]) and 1 <= config["precision"][key] <= limits.MAX_BITS, key)
    buffers = config.get("buffers")
    check(isinstance(buffers, list) and buffers, "buffers")
    for buffer in buffers:
        check(isinstance(buffer, dict) and isinstance(buffer.get("double_buffered", False), bool), "double_buffered")
        check(is_number(buffer.get("size_kb")) and buffer["size_kb"] > 0, "size_kb")
    batch = config.get("batch") or {}
    check(isinstance(batch, dict) and (is_int(batch.get("size", 1)) and 1 <= batch.get("size", 1) <= limits.MAX_BATCH),
          "batch size")


def hw_report_agrees(config: dict, report: dict, batch_override: int | None = None) -> None:
    check(report["hw"] == config["name"], "hw name differs")
    size = batch_override or (config.get("batch") or {}).get("size", 1)
    check(report["batch"]["size"] == size, "batch size differs")
    if size == 1:  # latency is the input's cycles at the config's clock
        metrics = report["metrics"]
        check(math.isclose(metrics["latency_us"]["mean"] * config["clock_mhz"], metrics["cycles"]["mean"],
                           rel_tol=1e-9, abs_tol=1e-9), "latency and cycles disagree with clock_mhz")


# ----------------------------------------------------------------------------------------------
# Reports (docs/report-format.md).

def report_ok(text: str) -> dict:
    report = strict_json(text)
    check(isinstance(report, dict) and report.get("schema") == "dfs-sim-report/1", "report schema")
    check(is_int(report.get("n_inputs")) and report["n_inputs"] >= 1, "report n_inputs")
    check(set(report["metrics"]) == set(METRICS), "report metrics")
    for name, stats in report["metrics"].items():
        for key in ("mean", "p50", "p95", "p99", "max", "full_precision"):
            check(is_number(stats[key]) and stats[key] >= 0, f"{name}.{key} not a finite non-negative number")
        tol = 1e-9 * max(stats["max"], 1.0)
        check(stats["p50"] <= stats["p95"] + tol and stats["p95"] <= stats["p99"] + tol
              and stats["p99"] <= stats["max"] + tol and stats["mean"] <= stats["max"] + tol, f"{name} percentiles")
        pct = stats["pct_of_full_precision"]
        check(pct is None or (is_number(pct) and pct >= 0), f"{name}.pct_of_full_precision")
    breakdown = report["energy_breakdown_uj"]
    check(all(is_number(v) and v >= 0 for v in breakdown.values()), "energy breakdown")
    check(math.isclose(sum(breakdown.values()), report["metrics"]["energy_uj"]["mean"], rel_tol=1e-6, abs_tol=1e-12),
          "energy breakdown does not sum to the mean energy")
    for key in ("computation_pct", "bitops_pct", "accuracy", "budget_pct"):
        value = report.get(key)
        check(value is None or (is_number(value) and 0 <= value <= 100 + 1e-9), f"report {key}")
    return report


def per_layer_ok(text: str) -> list:
    rows = strict_json(text)
    check(isinstance(rows, list) and rows, "per-layer rows")
    for row in rows:
        for key, value in row.items():
            if key.endswith(("_uj", "_bits", "cycles")) or key in ("ops", "macs"):
                check(value is None or (is_number(value) and value >= 0), f"per-layer {key}")
    return rows


# ----------------------------------------------------------------------------------------------
# Regress baselines (docs/ci.md) and the manifest.

def baseline_ok(data: bytes, directory: Path) -> None:
    base = strict_json(utf8_text(data))
    check(isinstance(base, dict) and set(base) <= {"schema", "cases"} and base.get("schema") == "dfs-sim-regress/1",
          "baseline schema")
    cases = base.get("cases")
    check(isinstance(cases, list) and cases, "cases must be a non-empty list")
    roots = [directory.resolve(), (REPO / "hw_configs").resolve(), (REPO / "traces").resolve()]
    for case in cases:
        check(isinstance(case, dict) and set(case) <= {"trace", "hw", "batch", "policy", "metrics"}, "case keys")
        for key in ("trace", "hw"):
            value = case.get(key)
            check(isinstance(value, str) and value and "\x00" not in value, f"case {key}")
            target = (directory / value).resolve()
            check(any(target.is_relative_to(r) for r in roots), f"case {key} outside the repository")
            check(target.is_file(), f"case {key} is not a file")
        batch = case.get("batch")
        check(batch is None or (is_int(batch) and 1 <= batch <= limits.MAX_BATCH), "case batch")
        check(case.get("policy") in (None, "lockstep", "bucketed"), "case policy")
        check(isinstance(case.get("metrics"), dict) and all(v is None or is_number(v)
                                                            for v in case["metrics"].values()), "case metrics")


def manifest_ok(data: bytes, directory: Path) -> None:
    manifest = strict_json(utf8_text(data))
    check(isinstance(manifest, dict), "manifest object")
    entries = manifest.get("traces")
    check(isinstance(entries, list) and entries, "manifest traces")
    for entry in entries:
        check(isinstance(entry, dict) and isinstance(entry.get("file"), str) and entry["file"], "manifest entry")
        check((directory / entry["file"]).resolve().is_relative_to((directory / "traces").resolve()),
              "manifest entry outside traces/")


def output_ok(argv: list[str]) -> None:
    """The command line's own numbers: budgets finite and non-negative, each once; batch in range."""
    seen = set()
    for flag, value in zip(argv, argv[1:]):
        if flag == "--budget":
            name, _, number = value.partition("=")
            check(name not in seen, "budget given twice")
            seen.add(name)
            try:
                parsed = float(number)
            except ValueError:
                raise Invalid("budget not a number") from None
            check(math.isfinite(parsed) and parsed >= 0, "budget not finite")
        if flag == "--batch":
            check(value.isdigit() and 1 <= int(value) <= limits.MAX_BATCH, "batch out of range")
        if flag == "-o":
            check(value and not os.path.isdir(value), "output is a directory")


def budgets_agree(argv: list[str], report: dict) -> None:
    given = {}
    for flag, value in zip(argv, argv[1:]):
        if flag == "--budget":
            name, _, number = value.partition("=")
            given[name] = float(number)
    absolute = report["budget"]["absolute"]
    check(set(absolute) == set(given), "budgets missing from the report")
    for name, limit in given.items():
        check(math.isclose(absolute[name]["budget"], limit), "budget value differs")
