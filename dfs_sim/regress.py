"""`dfs-sim regress`: guard cost numbers in CI against a committed baseline.

A baseline lists cases (trace, hardware config, batch, policy) and the numbers of their JSON
summary. `regress` recomputes every case and reports each number that moved beyond a relative
tolerance. Paths in a baseline are relative to the baseline file.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from dfs_sim.errors import InputError, require

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


def case_name(case: dict) -> str:
    extra = "".join(f", {k} {case[k]}" for k in ("batch", "policy") if case.get(k) is not None)
    return f"{Path(case['trace']).name} on {Path(case['hw']).stem}{extra}"


def load_baseline(path: Path) -> dict:
    require(path.is_file(), path, None, "no such baseline file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, None, f"not valid JSON ({str(err).splitlines()[0]})") from None
    require(isinstance(data, dict), path, None, "a baseline must be a JSON object")
    require(data.get("schema") == SCHEMA, path, "schema", f"must be '{SCHEMA}'")
    cases = data.get("cases")
    require(isinstance(cases, list), path, "cases", "must be a list")
    for i, case in enumerate(cases):
        where = f"cases[{i}]"
        require(isinstance(case, dict), path, where, "must be an object")
        unknown = set(case) - {"trace", "hw", "batch", "policy", "metrics"}
        if unknown:
            raise InputError(path, f"{where}.{sorted(unknown)[0]}", "unknown key")
        for key in ("trace", "hw"):
            require(isinstance(case.get(key), str) and case[key], path, f"{where}.{key}", "must be a path")
        require(case.get("batch") is None or (isinstance(case["batch"], int) and case["batch"] >= 1), path,
                f"{where}.batch", "must be null or a positive integer")
        require(case.get("policy") in (None, "lockstep", "bucketed"), path, f"{where}.policy",
                "must be null, 'lockstep' or 'bucketed'")
        metrics = case.get("metrics")
        require(isinstance(metrics, dict), path, f"{where}.metrics", "must be an object")
        for name, value in metrics.items():
            require(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value)), path, f"{where}.metrics.{name}",
                    "must be a number or null")
    return data


def compute_case(case: dict, base_dir: Path) -> dict:
    from dfs_sim.engine import simulate

    result = simulate(str(base_dir / case["trace"]), str(base_dir / case["hw"]), batch=case.get("batch"),
                      policy=case.get("policy"))
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
        fresh.append({**{k: case.get(k) for k in ("trace", "hw", "batch", "policy")}, "metrics": new})
    return {"schema": SCHEMA, "cases": fresh}, changes


def add_cases(path: Path, traces: list[str], hws: list[str]) -> dict:
    """A baseline (existing or new) with every (trace, hw) pair added, paths relative to the baseline."""
    from dfs_sim.hardware.config import resolve_hw_path

    data = load_baseline(path) if path.exists() else {"schema": SCHEMA, "cases": []}
    have = {(c["trace"], c["hw"], c.get("batch"), c.get("policy")) for c in data["cases"]}
    base = path.parent.resolve()
    for trace in traces:
        for hw in hws:
            hw_path = resolve_hw_path(hw)
            pair = (os.path.relpath(Path(trace).resolve(), base), os.path.relpath(hw_path.resolve(), base))
            if (*pair, None, None) not in have:
                data["cases"].append({"trace": pair[0], "hw": pair[1], "batch": None, "policy": None, "metrics": {}})
                have.add((*pair, None, None))
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
