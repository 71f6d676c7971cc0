"""`dfs-sim sweep SPEC.yaml`: a design-space sweep over derived configs (docs/sweeps.md).

The spec names traces, a base config, parameter axes (grid lists and ranges, random samples with a
seed), batch sizes, policies and constraints. Every point is a derived config (HwConfig.replace's
dotted keys), validated in the driver before any work starts, so a bad axis value is one error naming
the spec and the axis. Points run in chunks on Dask (a LocalCluster sized to the machine, or
`--scheduler ADDRESS`), or on a local process pool where Dask is not installed; each finished chunk is
written at once under OUTPUT.parts/, so an interrupted sweep resumes where it stopped, and the final
CSV is the chunks in point order: the same bytes whatever the number of workers.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dfs_sim.errors import InputError, input_boundary, require, shown

SPEC_KEYS = {"traces", "base", "grid", "random", "batch", "policy", "constraints", "chunk", "output"}
RANDOM_KINDS = ("uniform", "integers", "choice")
MAX_POINTS = 1_000_000
MAX_RANGE_VALUES = 100_000
RESULT_FORMATS = (".parquet", ".csv")
DEFAULT_CHUNK = 16  # points per task: enough to amortise a worker's start-up and trace loading
SUMMARY_METRICS = ("cycles", "latency_us", "energy_uj", "dram_bytes", "sram_bytes")
STATS = ("mean", "p50", "p95", "p99", "max", "full_precision", "pct_of_full_precision")
# Checked on the config, before a point runs; the others on its results.
CONFIG_CONSTRAINTS = ("area_mm2",)
_CONSTRAINT = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|<|>|==)\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")
_OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
        "==": lambda a, b: a == b}


@dataclass(frozen=True)
class Constraint:
    text: str
    name: str
    op: str
    bound: float

    def holds(self, value) -> bool:
        return value is not None and not (isinstance(value, float) and math.isnan(value)) \
            and _OPS[self.op](value, self.bound)


@dataclass(frozen=True)
class Point:
    index: int
    overrides: dict  # dotted key -> value
    batch: int | None
    policy: str | None


@dataclass(frozen=True)
class SweepSpec:
    path: str
    traces: tuple[str, ...]  # resolved paths
    base: str  # as written
    base_data: dict  # the base config's YAML data, extends resolved
    axes: tuple[str, ...]  # dotted keys, grid then random, in spec order
    random_axes: tuple[str, ...]
    points: tuple[Point, ...]
    constraints: tuple[Constraint, ...]
    chunk: int
    output: str | None

    @property
    def digest(self) -> str:
        """What determines the result rows: a partial result resumes only under the same digest."""
        content = {"traces": self.traces, "base": self.base_data, "axes": self.axes, "chunk": self.chunk,
                   "points": [(p.index, sorted(p.overrides.items()), p.batch, p.policy) for p in self.points],
                   "constraints": [c.text for c in self.constraints]}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def load_spec(path: str | Path) -> SweepSpec:
    from dfs_sim import yamlio
    from dfs_sim.errors import existing_file

    path = Path(path)
    existing_file(path, "sweep spec")
    with input_boundary(path, "a sweep spec"):
        data = yamlio.load(path, "sweep spec")
        return spec_from_dict(data, path)


def spec_from_dict(data: object, path: Path) -> SweepSpec:
    from dfs_sim.hardware.config import load_hw, resolve_extends

    require(isinstance(data, dict), path, None, "a sweep spec must be a YAML mapping")
    unknown = sorted(set(data) - SPEC_KEYS)
    require(not unknown, path, unknown[0] if unknown else None, f"unknown key (use {', '.join(sorted(SPEC_KEYS))})")
    here = path.parent
    traces = data.get("traces")
    require(isinstance(traces, list) and traces and all(isinstance(t, str) and t for t in traces), path, "traces",
            "must list trace files (.npz), relative to the spec")
    resolved = []
    for i, trace in enumerate(traces):
        candidate = here / trace
        require(candidate.is_file(), path, f"traces[{i}]", f"no such trace file {shown(trace)} (relative to the spec)")
        resolved.append(os.path.normpath(candidate))
    require(len(set(resolved)) == len(resolved), path, "traces", "names a trace twice")
    base = data.get("base")
    require(isinstance(base, str) and base.strip(), path, "base", "must be a shipped config name or a YAML path")
    try:
        base_data = resolve_extends({"extends": base}, path, here, ())
    except InputError as err:
        raise InputError(path, "base", err.message if err.field == "extends" else str(err)) from None
    load_hw(base_data)  # the base itself is valid

    grid = data.get("grid", {})
    require(isinstance(grid, dict), path, "grid", "must map dotted config keys to lists or {range: [start, stop, step]}")
    grid_values = {key: _grid_axis(value, path, f"grid.{key}") for key, value in grid.items()}
    random = data.get("random", {})
    require(isinstance(random, dict), path, "random", "must be a mapping: n, seed, axes")
    samples, random_keys = _random_samples(random, path)
    overlap = sorted(set(grid_values) & set(random_keys))
    require(not overlap, path, f"random.axes.{overlap[0]}" if overlap else None, "is also a grid axis")
    from dfs_sim.hardware.config import check_batch_policy, check_batch_size

    batches = _list_of(data.get("batch"), path, "batch", check_batch_size)
    policies = _list_of(data.get("policy"), path, "policy", check_batch_policy)
    constraints = _constraints(data.get("constraints", []), path)
    chunk = data.get("chunk", DEFAULT_CHUNK)
    require(isinstance(chunk, int) and not isinstance(chunk, bool) and 1 <= chunk <= 10_000, path, "chunk",
            f"must be an integer in [1, 10000] (points per task), got {shown(chunk)}")
    output = data.get("output")
    require(output is None or (isinstance(output, str) and output), path, "output",
            "must be a result path ending in .parquet or .csv")
    if output is not None:
        require(Path(output).suffix in RESULT_FORMATS, path, "output",
                f"must end in .parquet or .csv, got {shown(output)}")

    n_points = math.prod(len(v) for v in grid_values.values()) * max(len(samples), 1) * len(batches) * len(policies)
    require(n_points <= MAX_POINTS, path, "grid", f"{n_points:,} points; at most {MAX_POINTS:,} in one sweep")
    points = []
    grid_keys = list(grid_values)
    for combo in itertools.product(*(grid_values[k] for k in grid_keys)):
        for sample in samples or [{}]:
            for batch in batches:
                for policy in policies:
                    overrides = dict(zip(grid_keys, combo)) | sample
                    points.append(Point(len(points), overrides, batch, policy))
    spec = SweepSpec(str(path), tuple(resolved), base, base_data, tuple(grid_keys) + tuple(random_keys),
                     tuple(random_keys), tuple(points), tuple(constraints), chunk, None if output is None else str(here / output))
    return spec


def _grid_axis(value: object, path: Path, field: str) -> list:
    if isinstance(value, list):
        require(bool(value), path, field, "must list at least one value")
        require(all(not isinstance(v, (dict, list)) for v in value), path, field, "values must be scalars")
        require(len(set(map(repr, value))) == len(value), path, field, "lists a value twice")
        return list(value)
    require(isinstance(value, dict) and set(value) == {"range"}, path, field,
            "must be a list of values or {range: [start, stop, step]}")
    bounds = value["range"]
    require(isinstance(bounds, list) and len(bounds) == 3 and all(_is_number(b) for b in bounds), path,
            f"{field}.range", "must be [start, stop, step] (stop included)")
    start, stop, step = bounds
    require(step > 0 and stop >= start, path, f"{field}.range", "needs step > 0 and stop >= start")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    require(count <= MAX_RANGE_VALUES, path, f"{field}.range", f"{count:,} values; at most {MAX_RANGE_VALUES:,}")
    integer = all(isinstance(b, int) for b in bounds)
    return [start + i * step if integer else round(start + i * step, 12) for i in range(count)]


def _random_samples(random: dict, path: Path) -> tuple[list[dict], list[str]]:
    if not random:
        return [], []
    import numpy as np

    unknown = sorted(set(random) - {"n", "seed", "axes"})
    require(not unknown, path, f"random.{unknown[0]}" if unknown else None, "unknown key (use n, seed, axes)")
    n, seed, axes = random.get("n"), random.get("seed"), random.get("axes")
    require(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_POINTS, path, "random.n",
            f"must be the number of samples, an integer in [1, {MAX_POINTS:,}]")
    require(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, path, "random.seed",
            "is required (a non-negative integer): the same seed draws the same points")
    require(isinstance(axes, dict) and axes, path, "random.axes",
            "must map dotted config keys to {uniform: [lo, hi]}, {integers: [lo, hi]} or {choice: [...]}")
    draws = []
    for key, dist in axes.items():
        field = f"random.axes.{key}"
        require(isinstance(dist, dict) and len(dist) == 1 and next(iter(dist)) in RANDOM_KINDS, path, field,
                f"must be one of {{{': ..}, {'.join(RANDOM_KINDS)}: ..}}")
        kind, args = next(iter(dist.items()))
        if kind == "choice":
            require(isinstance(args, list) and args and all(not isinstance(a, (dict, list)) for a in args), path,
                    f"{field}.choice", "must list the values to draw from")
        else:
            require(isinstance(args, list) and len(args) == 2 and all(_is_number(a) for a in args)
                    and args[0] <= args[1], path, f"{field}.{kind}", "must be [low, high] with low <= high")
            if kind == "integers":
                require(all(isinstance(a, int) for a in args), path, f"{field}.integers", "bounds must be integers")
        draws.append((key, kind, args))
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):  # one draw per axis per sample, in spec order: the seed fixes every point
        sample = {}
        for key, kind, args in draws:
            if kind == "uniform":
                sample[key] = float(rng.uniform(args[0], args[1]))
            elif kind == "integers":
                sample[key] = int(rng.integers(args[0], args[1] + 1))
            else:
                sample[key] = args[int(rng.integers(len(args)))]
        samples.append(sample)
    return samples, [key for key, _, _ in draws]


def _list_of(value, path: Path, field: str, check) -> list:
    """A spec value or list of values, each checked by `check(value, source, field)` (the config's own rule)."""
    if value is None:
        return [None]  # the config's own
    values = value if isinstance(value, list) else [value]
    require(bool(values), path, field, "must be a value or a non-empty list of them")
    for i, v in enumerate(values):
        check(v, path, f"{field}[{i}]" if isinstance(value, list) else field)
    return values


def _constraints(items, path: Path) -> list[Constraint]:
    require(isinstance(items, list), path, "constraints", "must list conditions such as 'area_mm2 <= 10'")
    allowed = set(CONFIG_CONSTRAINTS) | set(result_columns())
    out = []
    for i, text in enumerate(items):
        match = _CONSTRAINT.match(text) if isinstance(text, str) else None
        require(match is not None, path, f"constraints[{i}]", f"must be 'NAME OP NUMBER' (OP one of <=, >=, <, >, ==), "
                                                             f"got {shown(text)}")
        name, op, bound = match.groups()
        require(name in allowed, path, f"constraints[{i}]",
                f"unknown quantity {shown(name)} (use area_mm2 or a result column, e.g. energy_uj_mean)")
        out.append(Constraint(text.strip(), name, op, float(bound)))
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def result_columns() -> list[str]:
    """The metric columns of a result row, after the point's own columns."""
    columns = ["accuracy", "computation_pct", "bitops_pct"]
    for metric in SUMMARY_METRICS:
        columns += [f"{metric}_{stat}" for stat in STATS]
    return columns + ["energy_delay_uj_us", "energy_delay_pct_of_full_precision"]


def columns_for(spec: SweepSpec) -> list[str]:
    return (["point", "trace"] + list(spec.axes) + ["batch", "policy", "hw", "hw_digest", "area_mm2",
                                                     "area_complete", "feasible"] + result_columns())


def check_points(spec: SweepSpec) -> dict[int, tuple[float | None, bool, bool, str, str]]:
    """Every point's config, validated before any work: {point: (area, complete, meets the config
    constraints, config digest, label)}. A bad axis value is one error naming the spec and the axis."""
    from dfs_sim.hardware.area import area_of
    from dfs_sim.hardware.config import load_hw

    config_constraints = [c for c in spec.constraints if c.name in CONFIG_CONSTRAINTS]
    checked = {}
    for point in spec.points:
        try:
            hw = load_hw(spec.base_data, point.overrides)
        except InputError as err:
            field = err.field or ""
            keys = ([k for k in point.overrides if k == field] or
                    [k for k in point.overrides if k.split(".")[0] == field.split(".")[0].split("[")[0]] or
                    list(point.overrides))
            where = "random.axes" if keys and keys[0] in spec.random_axes else "grid"
            raise InputError(spec.path, f"{where}.{keys[0]}" if keys else None,
                             f"point {point.index} ({_describe(point)}): {field}: {err.message}") from None
        area = area_of(hw)
        for c in config_constraints:
            require(area is not None and area.complete, spec.path, "constraints",
                    f"{c.text!r}: {hw.name} has no complete area ({'no area: section' if area is None else area.not_included});"
                    f" docs/hardware.md, Area")
        total = None if area is None else area.total_mm2
        checked[point.index] = (total, None if area is None else area.complete,
                                all(c.holds(total) for c in config_constraints), hw.digest, hw.label)
    return checked


def _describe(point: Point) -> str:
    parts = [f"{k}={v}" for k, v in point.overrides.items()]
    parts += [f"batch={point.batch}"] if point.batch is not None else []
    parts += [f"policy={point.policy}"] if point.policy is not None else []
    return ", ".join(parts) or "the base config"


# --- workers -------------------------------------------------------------------------------------

_TRACES: dict = {}  # per worker process: a trace is read once, not once per point


def run_chunk(task: dict) -> dict:
    """One chunk of points on every trace: {"rows": in (point, trace) order, "cache_hits": points read back,
    "entries_searched"/"entries_reused": tiling-search entries}. Runs in a worker. With a cache directory, a
    (config, trace, batch, policy) costed before by this code is read back from DIR/points/, and every
    tiling-search result from DIR/search/ (dfs_sim/cost/cache.py), so a new trace or batch on a known
    machine searches only what it has not seen."""
    from dfs_sim.cost import cache as search_cache
    from dfs_sim.engine import simulate
    from dfs_sim.hardware.config import load_hw
    from dfs_sim.trace import load_trace

    cache = Path(task["cache"]) if task.get("cache") else None
    search_cache.take_counts()
    rows, hits = [], 0
    with search_cache.searching_through(None if cache is None else cache / "search"):
        for index, overrides, batch, policy, area, complete, feasible, digest, label in task["points"]:
            hw = None  # built only for a point that is simulated: a cached one needs its digest alone
            for trace_path in task["traces"]:
                row = {"point": index, "trace": trace_path, **{k: overrides.get(k) for k in task["axes"]},
                       "batch": batch, "policy": policy, "hw": label, "hw_digest": digest, "area_mm2": area,
                       "area_complete": complete, "feasible": feasible}
                if feasible:
                    stored = None
                    if cache is not None:
                        key = json.dumps([digest, task["trace_digests"][trace_path], batch, policy, task["code"]])
                        stored = cache / "points" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
                    values = _cached(stored)
                    if values is None:
                        hw = hw or load_hw(task["base_data"], overrides or None)
                        if trace_path not in _TRACES:
                            _TRACES[trace_path] = load_trace(trace_path)
                        summary = simulate(_TRACES[trace_path], hw, batch=batch, policy=policy).summary
                        values = summary_values(summary) | {"batch": summary["batch"]["size"],
                                                            "policy": summary["batch"]["policy"]}
                        if stored is not None:
                            _store(stored, values)
                    else:
                        hits += 1
                    row.update(values)
                rows.append(row)
    counts = search_cache.take_counts()
    return {"rows": rows, "cache_hits": hits, "entries_searched": counts["searched"],
            "entries_reused": counts["reused"]}


CACHED_KEYS = set(result_columns()) | {"batch", "policy"}


def _cached(path: Path | None) -> dict | None:
    """A cached result, or None (absent, unreadable, or not a complete result: then it is recomputed)."""
    if path is None:
        return None
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) and set(values) == CACHED_KEYS else None


def _store(path: Path, values: dict) -> None:
    from dfs_sim.atomic import atomic_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "w") as handle:
            json.dump(values, handle)  # floats round-trip exactly: a cached row equals a computed one
    except OSError:
        pass  # a full or read-only cache costs speed, not results


def summary_values(summary: dict) -> dict:
    values = {"accuracy": summary["accuracy"], "computation_pct": summary["computation_pct"],
              "bitops_pct": summary["bitops_pct"]}
    for metric in SUMMARY_METRICS:
        for stat in STATS:
            values[f"{metric}_{stat}"] = summary["metrics"][metric][stat]
    energy, latency = summary["metrics"]["energy_uj"], summary["metrics"]["latency_us"]
    values["energy_delay_uj_us"] = energy["mean"] * latency["mean"]
    values["energy_delay_pct_of_full_precision"] = energy["pct_of_full_precision"] * latency["pct_of_full_precision"] / 100
    return values


# --- executors -----------------------------------------------------------------------------------

class DaskExecutor:
    """Chunks on Dask: a LocalCluster of `workers` single-threaded processes, or the cluster at `scheduler`."""

    name = "dask"

    def __init__(self, workers: int, scheduler: str | None):
        import logging

        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="5s")
            except (OSError, TimeoutError, ValueError) as err:
                raise InputError("--scheduler", None, f"cannot reach {shown(scheduler, 80)}: "
                                                      f"{type(err).__name__}") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR,
                                        env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
            self.client = Client(self.cluster)

    def run(self, tasks: list[dict]):
        from distributed import as_completed

        futures = {self.client.submit(run_chunk, task, pure=False): task["chunk"] for task in tasks}
        for future, result in as_completed(futures, with_results=True):
            yield futures[future], result

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class ProcessPoolExecutor:
    """The same interface on a local process pool, where Dask is not installed."""

    name = "process pool"

    def __init__(self, workers: int, scheduler: str | None):
        import concurrent.futures
        import multiprocessing

        require(scheduler is None, "--scheduler", None, "needs Dask: pip install 'dfs-sim[sweep]'")
        self.pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=_one_thread,
                                                           mp_context=multiprocessing.get_context("spawn"))

    def run(self, tasks: list[dict]):
        import concurrent.futures

        futures = {self.pool.submit(run_chunk, task): task["chunk"] for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()

    def close(self):
        self.pool.shutdown(cancel_futures=True)


def _one_thread() -> None:
    """A worker process is one core: numba, imported after this, starts one thread."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"


def make_executor(workers: int, scheduler: str | None, backend: str = "auto"):
    if backend == "processes":
        return ProcessPoolExecutor(workers, scheduler)
    try:
        import distributed  # noqa: F401
    except ImportError:
        if backend == "dask":
            raise InputError("--backend", None, "dask is not installed: pip install 'dfs-sim[sweep]'") from None
        return ProcessPoolExecutor(workers, scheduler)
    return DaskExecutor(workers, scheduler)


# --- the sweep -----------------------------------------------------------------------------------

def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def result_format(output: Path) -> str:
    """'parquet' or 'csv', from the output's suffix; Parquet needs pyarrow (the sweep extra)."""
    suffix = output.suffix
    require(suffix in RESULT_FORMATS, output, None, "a sweep result must end in .parquet or .csv")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError(output, None, "Parquet needs pyarrow: pip install 'dfs-sim[sweep]', or write .csv") from None
    return suffix[1:]


def write_table(frame, path: Path, fmt: str) -> None:
    """Atomically; Parquet keeps every float exactly, CSV at the report's precision."""
    from dfs_sim.atomic import atomic_file
    from dfs_sim.report.format import CSV_FLOAT

    if fmt == "parquet":
        with atomic_file(path) as handle:
            _parquet_safe(frame).to_parquet(handle, index=False, engine="pyarrow")
    else:
        with atomic_file(path, "w") as handle:
            frame.to_csv(handle, index=False, float_format=CSV_FLOAT)


def read_table(path: Path):
    """A sweep result or part, Parquet or CSV by its suffix."""
    import pandas as pd

    return pd.read_parquet(path, engine="pyarrow") if path.suffix == ".parquet" else \
        pd.read_csv(path, keep_default_na=True)


def _parquet_safe(frame):
    """An axis of mixed types ({choice: [16, 'auto']}) is written as text: a Parquet column has one type."""
    frame = frame.copy()
    for column in frame.columns[frame.dtypes == object]:
        kinds = {type(v) for v in frame[column] if v is not None and v == v}
        if len(kinds) > 1:
            frame[column] = frame[column].map(lambda v: v if v is None or v != v else str(v))
    return frame


def chunk_task(spec: SweepSpec, checked: dict, points, chunk: int = 0, cache: Path | None = None) -> dict:
    """What run_chunk needs for `points` (check_points' result for each rides along)."""
    return {"chunk": chunk, "base_data": spec.base_data, "traces": list(spec.traces), "axes": list(spec.axes),
            "points": [(p.index, p.overrides, p.batch, p.policy) + checked[p.index] for p in points],
            "cache": None if cache is None else str(cache)}


def run_sweep(spec: SweepSpec, output: Path, *, workers: int | None = None, scheduler: str | None = None,
              backend: str = "auto", progress=None, cache: Path | None = None) -> dict:
    """Run every point not already in OUTPUT.parts/, then write OUTPUT (Parquet or CSV by its suffix, point
    order). Returns counts. `progress`: a factory such as Progress, called as progress(total, done) and then
    with the points of each chunk as it finishes. `cache`: a directory of whole results (keyed by config
    digest, trace contents, batch, policy and code) and tiling-search results (keyed by the search's
    hardware record and code), reused by later sweeps."""
    import pandas as pd

    from dfs_sim.atomic import atomic_file
    from dfs_sim.cost.cache import code_digest
    from dfs_sim.hashing import file_sha256

    fmt = result_format(output)
    checked = check_points(spec)
    parts = parts_dir(output)
    stamp = parts / "spec.json"
    if parts.is_dir():
        previous = _read_stamp(stamp)
        require(previous == spec.digest, parts, None,
                "holds a partial result of a different sweep (its spec or base config changed); delete it to "
                "start over")
    else:
        parts.mkdir()
        with atomic_file(stamp, "w") as handle:
            json.dump({"digest": spec.digest, "spec": spec.path}, handle)

    def part(chunk: int) -> Path:
        return parts / f"chunk-{chunk:06d}.{fmt}"

    tasks = []
    for start in range(0, len(spec.points), spec.chunk):
        chunk = start // spec.chunk
        if part(chunk).is_file():
            continue
        tasks.append(chunk_task(spec, checked, spec.points[start:start + spec.chunk], chunk, cache))
    if cache is not None and tasks:
        cache.mkdir(parents=True, exist_ok=True)
        shared = {"trace_digests": {t: file_sha256(t) for t in spec.traces}, "code": code_digest()}
        for task in tasks:
            task.update(shared)
    columns = columns_for(spec)
    n_chunks = math.ceil(len(spec.points) / spec.chunk)
    done_before = n_chunks - len(tasks)
    began = time.monotonic()
    executor_name = None
    counts = {"cache_hits": 0, "entries_searched": 0, "entries_reused": 0}
    points_resumed = len(spec.points) - sum(len(task["points"]) for task in tasks)
    if tasks:
        executor = make_executor(workers or os.cpu_count() or 1, scheduler, backend)
        executor_name = executor.name
        bar = None if progress is None else progress(len(spec.points), points_resumed)
        try:
            for chunk, result in executor.run(tasks):
                frame = pd.DataFrame(result["rows"], columns=columns)
                for key in counts:
                    counts[key] += result[key]
                write_table(frame, part(chunk), fmt)
                if bar is not None:
                    bar(len(frame) // len(spec.traces))
        finally:
            if bar is not None:
                bar.close()
            executor.close()
    table = pd.concat([read_table(part(chunk)) for chunk in range(n_chunks)], ignore_index=True)
    table = table.sort_values(["point", "trace"], kind="stable", ignore_index=True)
    _apply_result_constraints(table, spec.constraints)
    write_table(table, output, fmt)
    shutil.rmtree(parts)
    return {"points": len(spec.points), "rows": len(table), "chunks_run": len(tasks), "chunks_resumed": done_before,
            "points_resumed": points_resumed,
            **counts, "seconds": time.monotonic() - began, "executor": executor_name, "table": table}


def _read_stamp(stamp: Path) -> str | None:
    try:
        return json.loads(stamp.read_text()).get("digest")
    except (OSError, ValueError, AttributeError):
        return None


def _apply_result_constraints(table, constraints) -> None:
    for c in constraints:
        if c.name in CONFIG_CONSTRAINTS:
            continue
        holds = table[c.name].map(lambda v: c.holds(float(v)) if v == v else False)
        table["feasible"] = table["feasible"].astype(bool) & holds


BEST_OBJECTIVES = ("energy_uj_mean", "latency_us_mean", "energy_delay_uj_us", "area_mm2")


def best_points(table, axes) -> list[str]:
    """One line per objective and trace: the feasible point that minimises it; where accuracy is an axis,
    then the accuracy-energy front over all traces, cheapest first."""
    from dfs_sim.sweep_plot import accuracy_energy_front, accuracy_is_an_axis

    def params(row) -> str:
        return (", ".join(f"{k}={row[k]}" for k in axes) or "the base config") + f", batch {row['batch']}, {row['policy']}"

    lines = []
    feasible = table[table["feasible"].astype(bool)]
    for trace, group in feasible.groupby("trace", sort=False):
        for objective in BEST_OBJECTIVES:
            values = group[objective].dropna()
            if values.empty:
                continue
            row = group.loc[values.idxmin()]
            lines.append(f"best {objective} on {Path(trace).name}: {row[objective]:.6g} at point {int(row['point'])} "
                         f"({params(row)})")
    if accuracy_is_an_axis(table):
        for _, row in accuracy_energy_front(table).iterrows():
            lines.append(f"accuracy-energy front: {row['accuracy']:.2f} % at {row['energy_uj_mean']:.6g} uJ, "
                         f"{Path(row['trace']).name} at point {int(row['point'])} ({params(row)})")
    return lines


def _terminal_width(stream) -> int:
    """Columns of the terminal `stream` writes to; 0 if it is not one (or one of no size, where a bar draws
    nothing)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
    except (AttributeError, OSError, ValueError):
        return 0


class Progress:
    """Points done, points per second and the ETA on stderr: a tqdm bar on a terminal, otherwise (a log, CI,
    a terminal of no size, or without tqdm) a line at most every 10 s."""

    def __init__(self, total: int, done: int = 0, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.done, self.began, self.last = total, done, time.monotonic(), 0.0
        self.start_done = done
        self.bar = None
        if _terminal_width(self.stream) > 0:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=done, unit="point", file=self.stream, mininterval=0.5,
                                desc="dfs-sim sweep", dynamic_ncols=True)

    def __call__(self, points: int) -> None:
        self.done += points
        if self.bar is not None:
            self.bar.update(points)
            return
        now = time.monotonic()
        if self.done < self.total and now - self.last < 10.0:
            return
        self.last = now
        rate = (self.done - self.start_done) / max(now - self.began, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        print(f"dfs-sim: sweep: {self.done}/{self.total} points, {rate:.1f} points/s, ETA {eta:.0f} s",
              file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
