"""The fuzz suite: seeded mutations of every input kind, each run through `dfs_sim.cli.main`.

CI runs DEFAULT_CASES cases (under two minutes on a 2-core machine). The long mode runs more:
    DFS_SIM_FUZZ_CASES=20000 python -m pytest -q tests/fuzz/test_fuzz.py
Set DFS_SIM_FUZZ_REPORT=path.json to write the per-class counts (docs/robustness.md records them),
and DFS_SIM_FUZZ_SEED to draw other cases (default 11).
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict

import pytest

from fuzz_inputs import GENERATORS, REPO, Seeds, make_case
from fuzz_runner import FAILURES, run_case

DEFAULT_CASES = 2000
CASES = int(os.environ.get("DFS_SIM_FUZZ_CASES", DEFAULT_CASES))
SEED = int(os.environ.get("DFS_SIM_FUZZ_SEED", 11))
# Relative share of the cases per class: cheap refusals weigh more than classes that often run a
# whole simulation.
WEIGHTS = {
    "trace.byte_flip": 8, "trace.truncate": 4, "trace.member_surgery": 6, "trace.header_types": 6,
    "trace.header_numbers": 4, "trace.header_nesting": 3, "trace.budget": 3, "trace.arrays": 4,
    "trace.zip_anomaly": 6, "trace.npy_header": 6, "trace.mmap": 3,
    "hw.text": 5, "hw.types": 5, "hw.numbers": 4, "hw.keys": 3, "hw.aliases": 3, "hw.encoding": 3, "hw.nesting": 2,
    "net.types": 4, "net.numbers": 4, "net.text": 4,
    "baseline.types": 2, "baseline.paths": 2, "baseline.structure": 2, "baseline.text": 2,
    "manifest": 2, "cli.args": 5,
}
assert set(WEIGHTS) == set(GENERATORS)
SUBPROCESS_SAMPLE = max(4, CASES // 400)  # cases also run as a real `python -m dfs_sim.cli`


def class_counts(total: int) -> dict[str, int]:
    """Cases per class in proportion to WEIGHTS (at least 10 each), adding up to at least `total`."""
    weight_sum = sum(WEIGHTS.values())
    counts = {cls: max(10, total * weight // weight_sum) for cls, weight in WEIGHTS.items()}
    for cls in sorted(WEIGHTS, key=WEIGHTS.get, reverse=True)[:max(0, total - sum(counts.values()))]:
        counts[cls] += 1
    return counts


COUNTS = class_counts(CASES)
STATS: dict[str, Counter] = defaultdict(Counter)
TIMES: dict[str, float] = defaultdict(float)
SLOWEST: dict[str, float] = defaultdict(float)
GENERIC_EXAMPLES: dict[str, list] = defaultdict(list)  # refusals by the catch-all boundary, for diagnosis


@pytest.fixture(scope="session")
def seeds():
    return Seeds()


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Compile the numba kernels before any case is timed: on a fresh clone (CI) the first simulation
    pays the compilation, which HANG_S is not meant to measure."""
    from dfs_sim.cost import kernels

    kernels.compile_all()  # small simulations alone would run as Python (dfs_sim/cost/kernels.py)


def _shipped_state() -> dict:
    files = [p for folder in ("traces", "hw_configs") for p in sorted((REPO / folder).rglob("*")) if p.is_file()]
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files + [REPO / "tests" / "cost_baseline.json"]}


@pytest.fixture(scope="module", autouse=True)
def shipped_files_untouched():
    """No case may write into the repository (an output path must never name a shipped file)."""
    before = _shipped_state()
    yield
    after = _shipped_state()
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:5]


@pytest.fixture(scope="session", autouse=True)
def fuzz_report():
    yield
    path = os.environ.get("DFS_SIM_FUZZ_REPORT")
    if path and STATS:
        report = {"cases": CASES, "seed": SEED, "classes": {
            cls: {**STATS[cls], "seconds": round(TIMES[cls], 2), "slowest_s": round(SLOWEST[cls], 3)}
            for cls in sorted(STATS)}, "generic_examples": GENERIC_EXAMPLES}
        with open(path, "w") as handle:
            json.dump(report, handle, indent=1)


def test_every_class_has_cases():
    assert sum(COUNTS.values()) >= min(CASES, DEFAULT_CASES)


@pytest.mark.parametrize("cls", sorted(GENERATORS))
def test_fuzz(cls, seeds, tmp_path):
    failures = []
    for index in range(COUNTS[cls]):
        case = make_case(cls, index, seeds, SEED)
        start = time.perf_counter()
        result = run_case(case, tmp_path)
        TIMES[cls] += time.perf_counter() - start
        SLOWEST[cls] = max(SLOWEST[cls], result.elapsed)
        STATS[cls][result.verdict] += 1
        STATS[cls]["cases"] += 1
        STATS[cls]["generic_refusals"] += result.generic
        if result.generic and len(GENERIC_EXAMPLES[cls]) < 3:
            GENERIC_EXAMPLES[cls].append(f"{case.note}: {result.stderr.strip()[-200:]}")
        if result.failed:
            failures.append(result)
    assert not failures, f"{len(failures)} of {COUNTS[cls]} cases broke the contract:\n" + "\n".join(
        r.describe() for r in failures[:10])


def test_fuzz_subprocess_sample(seeds, tmp_path):
    """A few cases as a real process: the exit code and stderr a user sees, not just main()'s."""
    classes = sorted(c for c in GENERATORS if c != "manifest")
    failures = []
    for k in range(SUBPROCESS_SAMPLE):
        cls = classes[(k * 7) % len(classes)]
        case = make_case(cls, 100_000 + k, seeds, SEED)
        in_process = run_case(case, tmp_path / "in")
        real = run_case(case, tmp_path / "sub", subprocess_run=True)
        STATS["subprocess"][real.verdict] += 1
        STATS["subprocess"]["cases"] += 1
        if real.failed or real.verdict != in_process.verdict:
            failures.append(f"{real.describe()} (in-process: {in_process.verdict})")
    assert not failures, "\n".join(failures)


FAILURE_VERDICTS = FAILURES
