"""`dfs-sim regress`: guard cost numbers in CI against a committed baseline.

A baseline lists cases (trace, hardware config, batch, policy) and the numbers of their JSON
summary. `regress` recomputes every case and reports each number that moved beyond a relative
tolerance. Paths in a baseline are relative to the baseline file, and must lie inside the
repository that holds it (or dfs-sim's shipped hw_configs/ and traces/): a baseline cannot make
dfs-sim read, or quote, files elsewhere.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from dfs_sim import jsonio
from dfs_sim.errors import InputError, input_boundary, require
from dfs_sim.hardware.config import check_batch_policy, check_batch_size

SCHEMA = "dfs-sim-regress/1"
DEFAULT_RTOL = 1e-6


@dataclass
class Change:
    case: str
    metric: str
    old: object
    new: object

    @property
    def delta_pct(self) -> float | None:
        if isinstance(self.old, (int, float)) and isinstance(self.new, (int, float)) and self.old:
            return 100.0 * (self.new - self.old) / abs(self.old)
        return None


def flatten_summary(summary: dict) -> dict:
    """The summary's numbers as a flat {name: value} mapping (what a baseline stores)."""
    flat = {key: summary[key] for key in ("n_inputs", "computation_pct", "bitops_pct", "accuracy", "budget_pct")}
    for metric, stats in summary["metrics"].items():
        for stat, value in stats.items():
            flat[f"{metric}.{stat}"] = value
    for part, value in summary["energy_breakdown_uj"].items():
        flat[f"energy_breakdown_uj.{part}"] = value
    return flat


CASE_KEYS = ("trace", "hw", "set", "batch", "policy")


def case_name(case: dict) -> str:
    derived = " ".join(f"{k}={v}" for k, v in (case.get("set") or {}).items())
    extra = "".join(f", {k} {case[k]}" for k in ("batch", "policy") if case.get(k) is not None)
    return f"{Path(case['trace']).name} on {Path(case['hw']).stem}{f' [{derived}]' if derived else ''}{extra}"


def _case_key(case: dict) -> tuple:
    return (case["trace"], case["hw"], tuple(sorted((case.get("set") or {}).items())), case.get("batch"),
            case.get("policy"))


def load_baseline(path: Path) -> dict:
    """Read and check a baseline: schema, a non-empty list of cases, every path confined."""
    with input_boundary(path, "a regress baseline"):
        return _check_baseline(jsonio.load(path, "regress baseline"), path)


def _check_baseline(data: object, path: Path) -> dict:
    require(isinstance(data, dict), path, None, "a baseline must be a JSON object")
    unknown = set(data) - {"schema", "cases"}
    require(not unknown, path, sorted(unknown)[0] if unknown else None, "unknown key")
    require(data.get("schema") == SCHEMA, path, "schema", f"must be '{SCHEMA}'")
    cases = data.get("cases")
    require(isinstance(cases, list) and cases, path, "cases",
            "must be a non-empty list (a baseline without cases guards nothing)")
    roots = allowed_roots(path)
    for i, case in enumerate(cases):
        where = f"cases[{i}]"
        require(isinstance(case, dict), path, where, "must be an object")
        unknown = set(case) - {*CASE_KEYS, "metrics"}
        if unknown:
            raise InputError(path, f"{where}.{sorted(unknown)[0]}", "unknown key")
        for key in ("trace", "hw"):
            require(isinstance(case.get(key), str) and case[key] and "\x00" not in case[key], path, f"{where}.{key}",
                    "must be a path relative to the baseline")
            confined(path.parent / case[key], roots, path, f"{where}.{key}")
        overrides = case.get("set")
        require(overrides is None or (isinstance(overrides, dict) and all(
            isinstance(k, str) and k and not isinstance(v, (dict, list)) for k, v in overrides.items())), path,
            f"{where}.set", "must be null or an object of dotted config keys to values (--set)")
        if case.get("batch") is not None:  # null: the config's
            check_batch_size(case["batch"], path, f"{where}.batch")
        if case.get("policy") is not None:
            check_batch_policy(case["policy"], path, f"{where}.policy")
        metrics = case.get("metrics")
        require(isinstance(metrics, dict), path, f"{where}.metrics", "must be an object")
        for name, value in metrics.items():
            require(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value)), path, f"{where}.metrics.{name}",
                    "must be a number or null")
    return data


def allowed_roots(baseline: Path) -> list[Path]:
    """Where a baseline's cases may point: the repository holding the baseline (its nearest
    ancestor with a .git entry, else the baseline's own directory) and dfs-sim's shipped data."""
    from dfs_sim.hardware.config import shipped_configs_dir
    from dfs_sim.shipped_traces import TRACES_DIR

    home = baseline.resolve().parent
    repo = next((d for d in (home, *home.parents) if (d / ".git").exists()), home)
    return [repo, shipped_configs_dir().resolve(), TRACES_DIR.resolve()]


def confined(target: Path, roots: list[Path], source: object, field: str) -> Path:
    """`target` resolved (symbolic links followed), which must lie under one of `roots`."""
    try:
        resolved = target.resolve()
    except (OSError, RuntimeError, ValueError):  # a symbolic-link loop, a NUL byte
        raise InputError(source, field, "cannot be resolved to a file") from None
    require(any(resolved.is_relative_to(root) for root in roots), source, field,
            "points outside the baseline's repository and dfs-sim's shipped data; a baseline may only "
            "name files inside them")
    return resolved


def compute_case(case: dict, base_dir: Path) -> dict:
    from dfs_sim.engine import simulate

    from dfs_sim.hardware.config import load_hw

    hw = load_hw(str(base_dir / case["hw"]), case.get("set") or None)
    result = simulate(str(base_dir / case["trace"]), hw, batch=case.get("batch"), policy=case.get("policy"))
    return flatten_summary(result.summary)


def differs(old, new, rtol: float) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) > rtol * max(abs(old), abs(new), 1e-300)


def regress(path: Path, rtol: float = DEFAULT_RTOL) -> tuple[dict, list[Change]]:
    """Recompute every case; return the fresh baseline and the numbers that moved beyond `rtol`."""
    baseline = load_baseline(path)
    base_dir = path.parent
    changes, fresh = [], []
    for case in baseline["cases"]:
        name = case_name(case)
        try:
            new = compute_case(case, base_dir)
        except InputError as err:
            raise InputError(path, f"case '{name}'", str(err)) from None
        for metric in sorted(set(case["metrics"]) | set(new)):
            old_value, new_value = case["metrics"].get(metric), new.get(metric)
            if metric not in case["metrics"] or metric not in new or differs(old_value, new_value, rtol):
                changes.append(Change(name, metric, old_value, new_value))
        fresh.append({**{k: case.get(k) for k in CASE_KEYS if k != "set" or case.get("set")}, "metrics": new})
    return {"schema": SCHEMA, "cases": fresh}, changes


def add_cases(path: Path, traces: list[str], hws: list[str], overrides: dict | None = None) -> dict:
    """A baseline (existing or new) with every (trace, hw) pair added, paths relative to the baseline;
    `overrides` (--set) make each added config a derived one, stored with the case."""
    from dfs_sim.hardware.config import load_hw, resolve_hw_path

    data = load_baseline(path) if path.exists() else {"schema": SCHEMA, "cases": []}
    have = {_case_key(c) for c in data["cases"]}
    base = path.parent.resolve()
    roots = allowed_roots(path)
    for trace in traces:
        for hw in hws:
            hw_path = resolve_hw_path(hw)
            pair = (os.path.relpath(confined(Path(trace), roots, "--trace", trace), base),
                    os.path.relpath(confined(hw_path, roots, "--hw", hw), base))
            if overrides:
                load_hw(hw_path, overrides)  # a bad --set is refused before the baseline is written
            case = {"trace": pair[0], "hw": pair[1], **({"set": dict(overrides)} if overrides else {}), "batch": None,
                    "policy": None, "metrics": {}}
            if _case_key(case) not in have:
                data["cases"].append(case)
                have.add(_case_key(case))
    return data


def format_changes(changes: list[Change]) -> str:
    if not changes:
        return ""
    rows = [("case", "metric", "old", "new", "Δ %")]
    for change in changes:
        delta = change.delta_pct
        rows.append((change.case, change.metric, _fmt(change.old), _fmt(change.new),
                     "" if delta is None else f"{delta:+.4g}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) if i < 2 else cell.rjust(width) for i, (cell, width) in
                       enumerate(zip(row, widths))) for row in rows]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)
