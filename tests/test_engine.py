import dataclasses

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from dfs_sim import engine
from dfs_sim.cost.table import build_cost_table
from dfs_sim.engine import simulate
from dfs_sim.hardware.accelerators import MODELS
from dfs_sim.hardware.config import load_hw, shipped_configs
from dfs_sim.trace import Option, default_options, load_trace
from dfs_sim.workload.resnet import dfs_resnet

CONFIGS = [load_hw(p) for p in shipped_configs()]
NET = dfs_resnet((3, 3, 3), in_channels=1, input_size=28)
# Projections always at full precision: a skip then costs nothing, so cost is monotone in the option's
# bits from skip upward (with quantized projections a skip runs the projection at full precision,
# which on a bit-serial machine can cost more than the whole block at 1 or 2 bits).
NET_FULL_PROJECTION = dfs_resnet((3, 3, 3), in_channels=1, input_size=28, projection="full")


def _unit_totals(table, metric):
    return table.unit_cost[..., table.metric(metric)]


def test_stripes_conv_cycles_scale_with_activation_bits():
    hw = load_hw("stripes")
    options = (Option("skip", 0, 0), Option("4bit", 4, 4), Option("8bit", 8, 8), Option("full", 32, 32, True))
    table = build_cost_table(NET, options, hw, 1)
    names = [layer.name for layer in NET.layers]
    conv = names.index("block2.conv1")  # K=16, C=16, 28x28 output, 3x3
    cycles = table.layer_cost[conv, :, 0, table.metric("compute_cycles")]
    # ceil(16/256) * ceil(16/16) * ceil(784/16) * 9 taps * p cycles
    assert cycles.tolist() == [0, 49 * 9 * 4, 49 * 9 * 8, 49 * 9 * 16, 49 * 9 * 16]  # + the full reference
    stem = names.index("stem")
    assert table.layer_cost[stem, 0, 0, table.metric("compute_cycles")] == 49 * 9 * 16


def test_dadiannao_gains_nothing_below_16_bits():
    hw = load_hw("dadiannao")
    table = build_cost_table(NET, default_options(), hw, 1)
    cycles = _unit_totals(table, "cycles")[:, :, 0]
    assert np.allclose(cycles[:, 1], cycles[:, 2]) and np.allclose(cycles[:, 2], cycles[:, 3])
    # A skipped block costs nothing, except a downsampling block's projection, which then runs at full
    # precision: exactly its own cost in the full-precision case.
    proj = {NET.layers[i].unit: i for i, layer in enumerate(NET.layers) if layer.precision == "shortcut"}
    assert sorted(proj) == [2, 5]  # blocks 4 and 7 open stages 2 and 3
    for unit in range(NET.n_units):
        expected = table.layer_cost[proj[unit], -1, 0, table.metric("cycles")] if unit in proj else 0.0
        assert cycles[unit, 0] == expected > 0 or cycles[unit, 0] == expected == 0


def test_declared_full_precision_takes_multiple_passes():
    hw = load_hw("dadiannao")
    declared = dataclasses.replace(hw, precision=dataclasses.replace(hw.precision, full_precision="declared"))
    native = build_cost_table(NET, default_options(), hw, 1)
    wide = build_cost_table(NET, default_options(), declared, 1)
    m = native.metric("compute_cycles")
    assert np.allclose(wide.unit_cost[:, 3, 0, m], 4 * native.unit_cost[:, 3, 0, m])


option_bits = st.lists(st.integers(1, 32), min_size=2, max_size=5, unique=True).map(sorted)


def _datapath_widths(hw, bits):
    widths, _ = MODELS[hw.model].effective_bits(hw, np.array(bits), np.array(bits))
    return sorted({int(b) for b in widths})


def _assert_monotone(table, n_options, metrics):
    for metric in metrics:
        cost = table.unit_cost[:, :n_options, :, table.metric(metric)]
        assert np.all(np.diff(cost, axis=1) >= -1e-9 * np.abs(cost[:, 1:]).max()), metric
        assert np.all(cost[:, :1] <= cost.min(axis=1, keepdims=True) + 1e-9), metric


@settings(max_examples=25, deadline=None)
@given(bits=option_bits, batch=st.integers(1, 4))
@pytest.mark.parametrize("hw", CONFIGS, ids=lambda h: h.name)
def test_cost_never_decreases_with_bits_and_skip_is_cheapest(hw, bits, batch):
    # The mapper minimises cycles, so cycles (and the datapath's ops) never fall as bits grow; it may
    # trade DRAM traffic for cycles, so traffic alone need not be monotone (that is checked under an
    # energy objective below). Widths are those the datapath tells apart (Bit Fusion runs 5-8 bits alike):
    # between two widths it runs alike, the Bit Fusion memory model can stall less for the wider one,
    # since an operand that no longer fits on chip streams instead of being loaded up front.
    # A config that maps for energy (Eyeriss) may spend cycles to save energy; its energy is checked below.
    bits = _datapath_widths(hw, bits)
    options = (Option("skip", 0, 0), *(Option(f"b{b}", b, b) for b in bits))
    table = build_cost_table(NET_FULL_PROJECTION, options, hw, batch)
    # (A memory-bound layer may take a tiling with more compute cycles and fewer stalls: only the total,
    # which the mapper minimises, is monotone.)
    timed = ("cycles",) if hw.mapping.objective == "cycles" else ()
    _assert_monotone(table, len(options), (*timed, "ops"))
    # Weights and activations grown one at a time also never get cheaper.
    mixed = (Option("skip", 0, 0), Option("a", bits[0], bits[0]), Option("b", bits[0], bits[-1]),
             Option("c", bits[-1], bits[-1]))
    _assert_monotone(build_cost_table(NET_FULL_PROJECTION, mixed, hw, batch), 4, (*timed, "ops"))


@settings(max_examples=10, deadline=None)
@given(bits=option_bits)
@pytest.mark.parametrize("hw", CONFIGS, ids=lambda h: h.name)
def test_energy_never_decreases_with_bits_under_an_energy_objective(hw, bits):
    hw = dataclasses.replace(hw, mapping=dataclasses.replace(hw.mapping, objective="energy"))
    bits = _datapath_widths(hw, bits)
    options = (Option("skip", 0, 0), *(Option(f"b{b}", b, b) for b in bits))
    table = build_cost_table(NET_FULL_PROJECTION, options, hw, 2)
    energy = table.unit_cost[:, : len(options), :, [i for i, n in enumerate(table.metric_names)
                                                     if n.startswith("energy_")]].sum(-1)
    assert np.all(np.diff(energy, axis=1) >= -1e-6 * energy.max())


@pytest.mark.parametrize("hw", CONFIGS, ids=lambda h: h.name)
def test_energy_is_the_sum_of_its_parts(make_trace, hw):
    result = simulate(make_trace(n=40), hw, batch=4, policy="bucketed")
    summary = result.summary
    assert sum(summary["energy_breakdown_uj"].values()) == pytest.approx(summary["metrics"]["energy_uj"]["mean"])
    assert result.per_layer["energy_uj"].sum() == pytest.approx(summary["metrics"]["energy_uj"]["mean"])
    assert result.per_layer["cycles"].sum() == pytest.approx(summary["metrics"]["cycles"]["mean"])
    assert result.per_input["energy_uj"].sum() == pytest.approx(result.per_layer["energy_uj"].sum() * 40)


def test_batch_one_is_a_gather_over_the_table(make_trace):
    trace = load_trace(make_trace(n=100))
    hw = load_hw("stripes")
    result = simulate(trace, hw)
    table = result.table
    cycles = table.unit_cost[..., 0, table.metric("cycles")]
    expected = table.base_cost[0, table.metric("cycles")] + cycles[np.arange(NET.n_units), trace.decisions].sum(1)
    assert np.allclose(result.per_input["cycles"], expected)
    assert np.allclose(result.per_input["latency_us"], expected / hw.clock_mhz)


def test_lockstep_runs_the_batch_at_its_widest_choice(make_trace):
    decisions = np.zeros((2, NET.n_units), dtype=np.uint8)
    decisions[0, 0], decisions[1, 0] = 1, 3  # unit 0: 8-bit and full; every other unit skipped
    trace = load_trace(make_trace(decisions=decisions))
    hw = load_hw("stripes")
    lock = simulate(trace, hw, batch=2, policy="lockstep")
    bucket = simulate(trace, hw, batch=2, policy="bucketed")
    t = lock.table
    c = t.metric("cycles")
    # Skipped units still run their projection shortcuts (at full precision), as a batch of two.
    skipped2 = t.unit_cost[1:, 0, 1, c].sum()
    base2, base1 = t.base_cost[1, c] + skipped2, t.base_cost[0, c]
    full2 = t.unit_cost[0, 3, 1, c]
    assert np.allclose(lock.per_input["cycles"], (base2 + full2) / 2)
    assert np.allclose(lock.per_input["latency_us"] * hw.clock_mhz, base2 + full2)
    eight1, full1 = t.unit_cost[0, 1, 0, c], t.unit_cost[0, 3, 0, c]
    assert np.allclose(bucket.per_input["cycles"], [base2 / 2 + eight1, base2 / 2 + full1])
    assert np.allclose(bucket.per_input["latency_us"] * hw.clock_mhz, base2 + eight1 + full1)
    assert base1 > 0


def test_full_precision_reference_equals_an_all_full_trace(make_trace):
    hw = load_hw("dadiannao")
    result = simulate(make_trace(n=30), hw, batch=4)
    all_full = simulate(make_trace(decisions=np.full((30, NET.n_units), 3), name="full.npz"), hw, batch=4)
    for metric in ("cycles", "energy_uj", "dram_bytes", "sram_bytes"):
        assert result.summary["metrics"][metric]["full_precision"] == pytest.approx(
            all_full.summary["metrics"][metric]["mean"])
        assert all_full.summary["metrics"][metric]["pct_of_full_precision"] == pytest.approx(100)
    assert all_full.summary["computation_pct"] == pytest.approx(100)
    assert all_full.summary["bitops_pct"] == pytest.approx(100)


def test_proxy_measures(make_trace):
    trace = load_trace(make_trace(n=200))
    result = simulate(trace, "stripes")
    costs = np.array([0, 1 / 16, 1 / 4, 1])
    assert result.summary["computation_pct"] == pytest.approx(costs[trace.decisions].mean() * 100)
    skipped = simulate(make_trace(decisions=np.zeros((3, NET.n_units)), name="skip.npz"), "stripes")
    ungated = sum(layer.macs for layer in NET.layers if layer.precision != "unit")
    assert skipped.summary["bitops_pct"] == pytest.approx(100 * ungated / NET.total_macs)
    assert skipped.summary["computation_pct"] == 0


@pytest.mark.parametrize("policy", ["lockstep", "bucketed", "grouped"])
def test_same_numbers_whatever_the_thread_count(make_trace, policy, monkeypatch):
    monkeypatch.setattr(engine, "PARALLEL_MIN_INPUTS", 0)  # small traces would otherwise run on one thread
    trace = load_trace(make_trace(n=2000))
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        results.append(simulate(trace, "stripes", batch=8, policy=policy))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert results[0].per_input.equals(results[1].per_input)
    assert np.array_equal(results[0].totals, results[1].totals)


@pytest.mark.parametrize("policy", ["bucketed", "grouped"])
def test_chunking_does_not_change_results(make_trace, monkeypatch, policy):
    trace = load_trace(make_trace(n=1001))
    whole = simulate(trace, "stripes", batch=4, policy=policy)
    monkeypatch.setattr(engine, "CHUNK_INPUTS", 64)
    chunked = simulate(trace, "stripes", batch=4, policy=policy)
    assert np.allclose(whole.per_input.to_numpy(dtype=float), chunked.per_input.to_numpy(dtype=float))
    assert np.allclose(whole.totals, chunked.totals)


def test_grouped_batches_inputs_that_decided_alike(make_trace):
    """Two decision vectors, interleaved: lockstep runs every batch of 2 at both vectors' widest; grouped
    queues the four A inputs, then the four B inputs, so each batch shares one vector and every input pays
    what a batch of two of its own vector costs, per input (the training cost table's price)."""
    a, b = np.zeros(NET.n_units, dtype=np.uint8), np.full(NET.n_units, 3, dtype=np.uint8)
    a[0], b[0] = 1, 2
    decisions = np.array([a, b] * 4)
    hw = load_hw("bitfusion")
    grouped = simulate(load_trace(make_trace(decisions=decisions)), hw, batch=2, policy="grouped")
    t = grouped.table
    e = [i for i, name in enumerate(t.metric_names) if name.startswith("energy_")]
    pair_cost = [(t.base_cost[1] + t.unit_cost[np.arange(NET.n_units), v, 1].sum(0)) / 2 for v in (a, b)]
    expected = np.array([pair_cost[i % 2] for i in range(8)])
    assert np.allclose(grouped.per_input["energy_uj"], expected[:, e].sum(1) * 1e-6)  # in trace order
    assert np.allclose(grouped.per_input["cycles"], expected[:, t.metric("cycles")])
    # The same as each vector run alone as a static network at the same batch.
    for index, vector in enumerate((a, b)):
        alone = simulate(load_trace(make_trace(decisions=np.array([vector] * 4), name=f"{index}.npz")), hw, batch=2)
        assert np.allclose(alone.per_input["energy_uj"], expected[index, e].sum() * 1e-6)
    lockstep = simulate(load_trace(make_trace(decisions=decisions)), hw, batch=2, policy="lockstep")
    assert lockstep.per_input["energy_uj"].mean() > grouped.per_input["energy_uj"].mean()
    # Its gated blocks cost what the training cost table (engine.unit_costs, at the same batch) prices them.
    priced = engine.unit_costs(NET, default_options(), hw, "energy", batch=2)
    full = t.unit_cost[:, t.full_case, 1][:, e].sum(1).mean() / 2
    for index, vector in enumerate((a, b)):
        gated = expected[index, e].sum() - t.base_cost[1, e].sum() / 2
        assert gated == pytest.approx(priced[np.arange(NET.n_units), vector].sum() * full, rel=1e-9)


def test_accuracy_and_budgets(make_trace):
    trace = load_trace(make_trace(n=100))
    result = simulate(trace, "stripes", budgets={"latency_us": 10_000.0, "energy_uj": 0.0})
    s = result.summary
    assert s["accuracy"] == pytest.approx((trace.labels == trace.predictions).mean() * 100)
    assert s["budget"]["absolute"]["latency_us"]["share_over_pct"] == 0
    assert s["budget"]["absolute"]["energy_uj"]["share_over_pct"] == 100
    against = s["budget"]["against_target"]
    assert against["energy_uj"]["over_target_points"] == pytest.approx(
        s["metrics"]["energy_uj"]["pct_of_full_precision"] - 30.0)


def test_wider_than_supported_is_an_error_when_the_config_says_so(make_trace):
    from dfs_sim.errors import InputError

    hw = load_hw("dadiannao")
    strict = dataclasses.replace(hw, precision=dataclasses.replace(hw.precision, wider="error",
                                                                   full_precision="declared"))
    with pytest.raises(InputError, match="precision.max_bits"):
        simulate(make_trace(n=4), strict)


def test_paper_traces_reproduce_the_supplement(tmp_path):
    # Computation % implied by the per-block decision shares of DFS supplement Figs 12-15 (CIFAR-10
    # ResNet-74) renormalised over the plotted options: 30.29 / 40.12 / 51.83 % at budgets 30/40/50.
    # At budget 20 the figure draws block 36 at 8 *and* 16 bits; keeping 16 bits gives 19.18 %.
    # Only budget 30's block 33 skips (a real 0.11 residual).
    from dfs_sim.shipped_traces import TRACES_DIR

    expected = {20: 19.18, 30: 30.29, 40: 40.12, 50: 51.83}
    for budget, pct in expected.items():
        trace = load_trace(TRACES_DIR / "paper" / f"dfs_resnet74_cifar10_paper_b{budget}.npz")
        assert trace.n_inputs == 10_000 and trace.network.n_units == 35 and trace.labels is None
        assert trace.budget_pct == budget
        costs = np.array([o.computation_cost for o in trace.options])
        assert costs[trace.decisions].mean() * 100 == pytest.approx(pct, abs=0.01)
        skipping = (trace.decisions == 0).any(axis=1).mean()
        assert skipping == (pytest.approx(0.11, abs=0.001) if budget == 30 else 0.0)


def test_a_table_of_some_group_sizes_costs_them_as_the_full_table_does():
    hw = load_hw("bitfusion")  # batch 16 by default
    options = default_options()
    full = build_cost_table(NET, options, hw, 6)
    some = build_cost_table(NET, options, hw, 6, batch_sizes=(2,))
    assert some.costed.tolist() == [False, True, False, False, False, True]  # the largest always: its mapping
    np.testing.assert_array_equal(some.layer_cost[:, :, some.costed], full.layer_cost[:, :, some.costed])
    assert np.isnan(some.layer_cost[:, :, ~some.costed]).all() and np.isnan(some.unit_cost[:, :, ~some.costed]).all()
    assert some.mapping.tobytes() == full.mapping.tobytes()


def _static(network):
    from dfs_sim.workload.network import Network

    return Network("static", tuple(dataclasses.replace(layer, precision="fixed", w_bits=8, a_bits=8, unit=None)
                                   for layer in network.layers), (), network.input_shape)


@pytest.mark.parametrize("hw_name", ["stripes", "bitfusion", "eyeriss"])
def test_a_static_network_costs_what_a_trace_of_one_batch_of_it_costs(make_trace, hw_name):
    """simulate_network reads one batch's cost from the table, with no decisions or per-input kernels; it
    must give exactly what the general path gives for a decision-less trace of the same batch."""
    from dfs_sim.engine import simulate_network

    static = _static(NET)
    direct = simulate_network(static, hw_name, batch=4)  # reference: the network's own 8/8 bits
    traced = simulate(make_trace(n=4, network=static, decisions=np.zeros((4, 0), dtype=np.uint8), labels=False),
                      hw_name, batch=4, reference="8/8")
    assert direct.trace is None and direct.options == () and direct.n_inputs == 4
    pd.testing.assert_frame_equal(direct.per_input, traced.per_input)
    np.testing.assert_array_equal(direct.totals, traced.totals)
    np.testing.assert_array_equal(direct.layer_case_totals[:, 0], traced.layer_case_totals.sum(axis=1))
    np.testing.assert_array_equal(direct.layer_runs[:, 0], traced.layer_runs.sum(axis=1))
    np.testing.assert_array_equal(direct.reference_cost, traced.reference_cost)
    pd.testing.assert_frame_equal(direct.per_layer, traced.per_layer)
    assert direct.summary["metrics"] == traced.summary["metrics"]
    assert direct.summary["precision_mapping"]["cases"] == []  # a static network has no options to list


def test_grouped_leaves_a_decision_less_trace_in_trace_order(make_trace):
    """Without gated units there is nothing to group by: grouped runs exactly as bucketed."""
    static = _static(NET)
    path = make_trace(n=37, network=static, decisions=np.zeros((37, 0), dtype=np.uint8), labels=False)
    grouped = simulate(path, "bitfusion", batch=16, policy="grouped")
    bucketed = simulate(path, "bitfusion", batch=16, policy="bucketed")
    pd.testing.assert_frame_equal(grouped.per_input, bucketed.per_input)
    np.testing.assert_array_equal(grouped.totals, bucketed.totals)


def test_a_network_with_units_is_not_static(small_network):
    from dfs_sim.engine import simulate_network
    from dfs_sim.errors import InputError

    with pytest.raises(InputError, match="needs a trace"):
        simulate_network(small_network, "stripes")


def test_a_network_without_units_costs_only_the_batches_it_forms(make_trace, tmp_path):
    # Every batch is full but the last, whatever the policy: the results equal those of a table of every size.
    static = _static(NET)
    path = make_trace(n=11, network=static, decisions=np.zeros((11, 0), dtype=np.uint8))
    for policy in ("lockstep", "bucketed"):
        result = simulate(path, "stripes", batch=4, policy=policy)
        assert result.table.costed.tolist() == [False, False, True, True]
        every = engine.build_cost_table(static, result.trace.options, result.hw, 4)
        np.testing.assert_array_equal(result.table.layer_cost[:, :, 2:], every.layer_cost[:, :, 2:])
        assert np.isfinite(result.totals).all() and np.isfinite(result.per_input.drop(columns=["computation_pct"]).to_numpy(float)).all()
