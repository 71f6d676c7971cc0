"""The kernels give the same numbers compiled and as their own Python source (dfs_sim/cost/kernels.py), so a
fresh install may run small jobs without compiling."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfs_sim.cli import main
from dfs_sim.cost import kernels
from dfs_sim.cost import table as table_module
from dfs_sim.cost.table import build_cost_table
from dfs_sim.engine import simulate
from dfs_sim.hardware.config import load_hw, shipped_configs_dir
from dfs_sim.trace import default_options, load_trace
from dfs_sim.shipped_traces import shipped_default
from dfs_sim.workload.network import load_network
from dfs_sim.workload.resnet import dfs_resnet

NETWORKS = shipped_configs_dir() / "networks"


def _both(monkeypatch, build):
    monkeypatch.setenv(kernels.MODE_ENV, "python")
    python = build()
    monkeypatch.setenv(kernels.MODE_ENV, "compiled")
    return python, build()


# Every compute model and both conventions; small batches, since the Python search is ~1000x slower.
@pytest.mark.parametrize("hw,network,batch", [
    ("stripes", "resnet", 2), ("loom", "resnet", 2), ("bitsystolic_ws", "resnet", 1), ("unpu", "resnet", 1),
    ("dadiannao", "resnet", 1), ("bitfusion", "bitfusion_lenet5", 2), ("bitfusion_physical", "bitfusion_lenet5", 1),
    ("eyeriss", "bitfusion_lenet5", 1),
])
def test_search_is_the_same_compiled_and_interpreted(monkeypatch, hw, network, batch):
    config = load_hw(hw)
    net = dfs_resnet((1, 1, 1)) if network == "resnet" else load_network(NETWORKS / f"{network}.yaml")
    options = default_options((4, 8))
    python, compiled = _both(monkeypatch, lambda: build_cost_table(net, options, config, batch))
    assert python.mapping.tobytes() == compiled.mapping.tobytes()  # bit for bit, every field
    np.testing.assert_array_equal(python.layer_cost, compiled.layer_cost)
    assert np.isfinite(compiled.layer_cost).all() and compiled.layer_cost[..., 0].max() > 0


@pytest.mark.parametrize("batch,policy", [(1, "lockstep"), (4, "bucketed"), (4, "lockstep")])
def test_aggregation_is_the_same_compiled_and_interpreted(monkeypatch, batch, policy):
    trace = load_trace(shipped_default())
    # The aggregation kernels in both modes on one cost table: the search, compiled here, is compared with its
    # Python source above.
    monkeypatch.setattr(table_module, "search_entries", kernels.mapping.search_entries)
    python, compiled = _both(monkeypatch, lambda: simulate(trace, "stripes", batch=batch, policy=policy))
    pd.testing.assert_frame_equal(python.per_input, compiled.per_input, check_exact=True)
    np.testing.assert_array_equal(python.layer_case_totals, compiled.layer_case_totals)
    assert python.summary == compiled.summary


def test_auto_interprets_until_the_budget_is_spent_then_compiles(monkeypatch):
    """With no compiled code ready, the search runs as Python while the rest is predicted to fit its budget,
    then compiled; the table is the same as a compiled one."""
    net = load_network(NETWORKS / "bitfusion_lenet5.yaml")
    config = load_hw("bitfusion")
    monkeypatch.setenv(kernels.MODE_ENV, "compiled")
    compiled = build_cost_table(net, default_options(), config, 4)
    monkeypatch.setenv(kernels.MODE_ENV, "auto")
    monkeypatch.setattr(kernels, "compiled_ready", lambda kernel: False)
    monkeypatch.setattr(kernels, "_spent", {})
    monkeypatch.setattr(kernels, "_interpreted", {})
    monkeypatch.setattr(kernels, "INTERPRET_BUDGET_S", 0.05)
    calls = []
    compiled_search = kernels.mapping.search_entries
    monkeypatch.setattr(kernels.mapping, "search_entries",
                        lambda *args: calls.append(len(args[0])) or compiled_search(*args))
    mixed = build_cost_table(net, default_options(), config, 4)
    assert kernels._interpreted["search_entries"] >= 1  # some entries ran as Python ...
    assert len(calls) == 1 and calls[0] > 0  # ... and the rest, compiled, in one call
    assert mixed.mapping.tobytes() == compiled.mapping.tobytes()
    np.testing.assert_array_equal(mixed.layer_cost, compiled.layer_cost)


def test_a_kernel_with_compiled_code_ready_runs_compiled(monkeypatch):
    monkeypatch.setenv(kernels.MODE_ENV, "auto")
    kernels.compile_all()
    assert all(kernels.compiled_ready(k) for k in (kernels.mapping.search_entries, kernels.aggregate.per_input_costs,
                                                    kernels.aggregate.execution_counts, kernels.aggregate.gather_sum))
    assert not kernels._interpret("search_entries", kernels.mapping.search_entries)


def test_a_bad_mode_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv(kernels.MODE_ENV, "fast")
    assert main(["run", "--hw", "stripes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "DFS_SIM_KERNELS" in err[-1] and "auto, compiled, python" in err[-1]
