"""The numba kernels, run compiled, or as their own Python source while compiling would cost more than the work.

numba compiles a kernel on its first call and caches the machine code on disk. On a fresh install that first
compilation dwarfs a small job: the tiling search takes about 10 s of CPU to compile and the aggregation
kernels about 4 s (benchmarks/README.md, "First run"), while the default `dfs-sim run` does 25 searches
(about 0.25 s as Python) and aggregates 10,000 inputs (about 0.2 s). So a kernel with no compiled code ready
(in this process or in numba's cache) runs as Python, the very functions numba would compile, each calling
the others' Python source, as long as the work predicted fits in what is left of INTERPRET_BUDGET_S of CPU
for that kernel in this process; otherwise it compiles, and runs compiled from then on (and loads from the
cache in later processes). The numbers are the same either way (tests/test_kernels.py).

DFS_SIM_KERNELS=compiled compiles on first use, as plain numba does; =python always interprets (slow: for
tests and benchmarks); =auto (the default) is the rule above.
"""
from __future__ import annotations

import os
import time
import types
from pathlib import Path

import numpy as np
from numba.core.registry import CPUDispatcher

from dfs_sim.cost import aggregate, mapping
from dfs_sim.errors import InputError

MODE_ENV = "DFS_SIM_KERNELS"
MODES = ("auto", "compiled", "python")
INTERPRET_BUDGET_S = 1.5  # CPU seconds of Python per kernel and process before it compiles instead
# Python CPU seconds per decision (input x gated unit) of an aggregation kernel, to predict whether a call fits
# the budget: about 0.8 us measured on a busy 2-core machine (benchmarks/README.md).
PYTHON_S_PER_DECISION = 1e-6

_spent: dict[str, float] = {}  # Python CPU seconds each kernel has run for in this process
_interpreted: dict[str, int] = {}  # entries the search has run as Python in this process
_twins: dict[str, dict] = {}


def mode() -> str:
    chosen = os.environ.get(MODE_ENV) or "auto"
    if chosen not in MODES:
        raise InputError(MODE_ENV, None, f"must be one of {', '.join(MODES)}")
    return chosen


def python_twin(module: types.ModuleType) -> dict:
    """The module's namespace with every compiled function replaced by its Python source; the replacements
    call one another, so a whole kernel runs as Python without touching the module itself."""
    namespace = dict(vars(module))
    for name, value in vars(module).items():
        if isinstance(value, CPUDispatcher):
            source = value.py_func
            namespace[name] = types.FunctionType(source.__code__, namespace, source.__name__, source.__defaults__,
                                                 source.__closure__)
    return namespace


def _twin(module: types.ModuleType, name: str):
    if module.__name__ not in _twins:
        _twins[module.__name__] = python_twin(module)
    return _twins[module.__name__][name]


def compiled_ready(kernel) -> bool:
    """Whether calling `kernel` costs no compilation: compiled in this process, or found in numba's disk cache
    (or numba is off, NUMBA_DISABLE_JIT=1, and there is nothing to compile)."""
    if not isinstance(kernel, CPUDispatcher) or kernel.signatures:
        return True
    index = getattr(getattr(getattr(kernel, "_cache", None), "_cache_file", None), "_index_path", None)
    return index is not None and Path(index).is_file()


def _interpret(name: str, kernel, predicted_s: float = 0.0) -> bool:
    chosen = mode()
    if chosen != "auto":
        return chosen == "python"
    return not compiled_ready(kernel) and _spent.get(name, 0.0) + predicted_s < INTERPRET_BUDGET_S


def _charge(name: str, start: float) -> None:
    _spent[name] = _spent.get(name, 0.0) + time.process_time() - start


def search_entries(entries: np.ndarray, hw: np.ndarray, out: np.ndarray) -> None:
    """mapping.search_entries: entry by entry as Python while the search's budget lasts, the rest compiled."""
    kernel = mapping.search_entries
    python = _twin(mapping, "search_entries")
    records, hw_record, results = (array.view(np.recarray) for array in (entries, hw, out))  # Python reads e.oc
    for i in range(len(entries)):
        # Predict the rest from the Python time per entry so far: a job that cannot finish within the budget
        # compiles at once instead of spending the budget first.
        done = _interpreted.get("search_entries", 0)
        per_entry = _spent.get("search_entries", 0.0) / done if done else 0.0
        if not _interpret("search_entries", kernel, per_entry * (len(entries) - i)):
            kernel(entries[i:], hw, out[i:])
            return
        start = time.process_time()
        python(records[i:i + 1], hw_record, results[i:i + 1])
        _charge("search_entries", start)
        _interpreted["search_entries"] = done + 1


def _aggregate(name: str, decisions: np.ndarray, *args) -> None:
    if _interpret(name, getattr(aggregate, name), decisions.size * PYTHON_S_PER_DECISION):
        start = time.process_time()
        _twin(aggregate, name)(decisions, *args)
        _charge(name, start)
    else:
        getattr(aggregate, name)(decisions, *args)


def per_input_costs(decisions, batch, policy, rank, unit_cost, base_cost, out) -> None:
    _aggregate("per_input_costs", decisions, batch, policy, rank, unit_cost, base_cost, out)


def execution_counts(decisions, batch, policy, rank, n_cases, hist, batch_sizes) -> None:
    _aggregate("execution_counts", decisions, batch, policy, rank, n_cases, hist, batch_sizes)


def gather_sum(decisions, table, base, out) -> None:
    _aggregate("gather_sum", decisions, table, base, out)


def read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view: decisions reach the kernels read-only whether memory-mapped or not, so each kernel
    compiles one specialisation, not one per writeability."""
    view = array.view()
    view.flags.writeable = False
    return view


def compile_all() -> None:
    """Compile every kernel now (or load it from the cache), e.g. before timing anything."""
    from dfs_sim.cost.records import ENTRY, HARDWARE, RESULT

    mapping.search_entries(np.zeros(0, ENTRY), np.zeros(1, HARDWARE), np.zeros(0, RESULT))
    decisions = read_only(np.zeros((1, 1), dtype=np.uint8))
    aggregate.per_input_costs(decisions, 1, aggregate.LOCKSTEP, np.zeros(1, dtype=np.int64),
                              np.zeros((1, 1, 1, 4)), np.zeros((1, 4)), np.zeros((1, aggregate.N_OUT)))
    aggregate.execution_counts(decisions, 1, aggregate.LOCKSTEP, np.zeros(1, dtype=np.int64), 1,
                               np.zeros((1, 1, 1), dtype=np.int64), np.zeros(1, dtype=np.int64))
    aggregate.gather_sum(decisions, np.zeros((1, 1)), 0.0, np.zeros(1))
