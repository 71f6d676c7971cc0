"""The numba aggregation kernels (dfs_sim/cost/aggregate.py) against a slow plain-Python reference.

The reference spells out the batch policies of docs/report-format.md one input and one batch at a
time: inputs run in batches of B consecutive inputs, the last one possibly smaller; per gated unit,
`lockstep` runs the whole batch once at the widest option any member chose, `bucketed` runs one
group per distinct decision, one after another. Each member pays its group's cost divided by the
group's size, plus an equal share of the layers that follow no decision; every member's latency
is the batch's total cycles. "Widest" orders options by (w*a, w, a), later options first on ties.
`grouped` (the engine's, not a kernel's) first sorts the inputs by decision vector, stably, then runs
bucketed; each input's charges come back in trace order.
"""
import numpy as np
import pytest

import dfs_sim
from dfs_sim.cost import aggregate
from dfs_sim.engine import _width_rank
from dfs_sim.trace import Option
from dfs_sim.workload.resnet import dfs_resnet

POLICIES = {"lockstep": aggregate.LOCKSTEP, "bucketed": aggregate.BUCKETED}
# Where the kernel writes each of the 4 per-input columns of unit_cost and base_cost (cycles, energy, DRAM, SRAM).
KERNEL_COLUMNS = (aggregate.OUT_CYCLES, aggregate.OUT_ENERGY, aggregate.OUT_DRAM, aggregate.OUT_SRAM)


def widest(cases, case_bits):
    return max(cases, key=lambda c: (case_bits[c][0] * case_bits[c][1], case_bits[c][0], case_bits[c][1], c))


def reference(decisions, batch, policy, case_bits, unit_cost, base_cost):
    """Per-input charges and latency, execution counts and batch-size counts, by the rules above.

    unit_cost[u][case][r - 1] and base_cost[r - 1] are cost vectors (any length) of a group of r inputs.
    Returns (charges [n, len], latency [n], runs {(u, case, r): count}, batches {r: count}, totals [len]).
    """
    n, n_units = decisions.shape
    if policy == "grouped":
        queue = sorted(range(n), key=lambda i: [int(d) for d in decisions[i]])  # Python's sort is stable
        charges, latency, runs, batches, totals = reference(decisions[queue], batch, "bucketed", case_bits,
                                                            unit_cost, base_cost)
        back = np.empty(n, dtype=int)
        back[queue] = np.arange(n)
        return charges[back], latency[back], runs, batches, totals
    width = len(base_cost[0])
    charges = [[0.0] * width for _ in range(n)]
    latency = [0.0] * n
    runs, batches = {}, {}
    totals = [0.0] * width
    for start in range(0, n, batch):
        members = list(range(start, min(start + batch, n)))
        r = len(members)
        batches[r] = batches.get(r, 0) + 1
        groups = [(None, members, base_cost[r - 1])]  # the layers that follow no decision
        for u in range(n_units):
            chosen = [int(decisions[i][u]) for i in members]
            if policy == "lockstep":
                case = widest(chosen, case_bits)
                groups.append(((u, case), members, unit_cost[u][case][r - 1]))
            else:
                for case in sorted(set(chosen)):
                    group = [i for i in members if decisions[i][u] == case]
                    groups.append(((u, case), group, unit_cost[u][case][len(group) - 1]))
        batch_cycles = 0.0
        for key, group, cost in groups:
            if key is not None:
                runs[key + (len(group),)] = runs.get(key + (len(group),), 0) + 1
            batch_cycles += cost[0]
            for m in range(width):
                totals[m] += cost[m]
                for i in group:
                    charges[i][m] += cost[m] / len(group)
        for i in members:
            latency[i] = batch_cycles
    return np.array(charges).reshape(n, width), np.array(latency), runs, batches, np.array(totals)


def random_case(rng):
    n_units = int(rng.integers(0, 7))
    options = int(rng.integers(1, 7))
    bits = [(0, 0)] + [tuple(int(b) for b in rng.choice([1, 2, 3, 4, 6, 8, 16], 2)) for _ in range(options - 1)]
    case_bits = np.array(bits[:options] + [(32, 32)], dtype=np.int64)  # the last case: the full reference
    rng.shuffle(case_bits[:-1])
    batch = int(rng.integers(1, 10))
    n = int(rng.integers(1, 5 * batch + 2))
    decisions = rng.integers(0, options, (n, n_units)).astype(np.uint8)
    unit_cost = rng.uniform(0.0, 1e6, (n_units, len(case_bits), batch, 4))
    base_cost = rng.uniform(0.0, 1e6, (batch, 4))
    return decisions, batch, case_bits, unit_cost, base_cost


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("seed", range(60))
def test_kernels_match_the_reference_on_random_inputs(policy, seed):
    rng = np.random.default_rng([seed, len(policy)])
    decisions, batch, case_bits, unit_cost, base_cost = random_case(rng)
    n, n_units = decisions.shape
    n_cases = len(case_bits)
    charges, latency, runs, batches, _ = reference(decisions, batch, policy, case_bits, unit_cost, base_cost)

    out = np.zeros((n, aggregate.N_OUT))
    aggregate.per_input_costs(decisions, batch, POLICIES[policy], _width_rank(case_bits), unit_cost, base_cost, out)
    for k, column in enumerate(KERNEL_COLUMNS):
        np.testing.assert_allclose(out[:, column], charges[:, k], rtol=1e-12, atol=0)
    np.testing.assert_allclose(out[:, aggregate.OUT_LATENCY], latency, rtol=1e-12, atol=0)

    hist = np.zeros((n_units, n_cases, batch), dtype=np.int64)
    sizes = np.zeros(batch, dtype=np.int64)
    aggregate.execution_counts(decisions, batch, POLICIES[policy], _width_rank(case_bits), n_cases, hist, sizes)
    expected_hist = np.zeros_like(hist)
    for (u, case, r), count in runs.items():
        expected_hist[u, case, r - 1] = count
    expected_sizes = np.zeros_like(sizes)
    for r, count in batches.items():
        expected_sizes[r - 1] = count
    assert np.array_equal(hist, expected_hist)
    assert np.array_equal(sizes, expected_sizes)
    assert sizes @ np.arange(1, batch + 1) == n


@pytest.mark.parametrize("policy", POLICIES)
def test_execution_counts_accumulate_over_chunks(policy):
    rng = np.random.default_rng(7)
    decisions = rng.integers(0, 4, (103, 5)).astype(np.uint8)  # ragged: 103 = 12 batches of 8 + 7
    rank = _width_rank(np.array([(0, 0), (8, 8), (4, 16), (32, 32)]))
    whole = np.zeros((5, 4, 8), dtype=np.int64), np.zeros(8, dtype=np.int64)
    aggregate.execution_counts(decisions, 8, POLICIES[policy], rank, 4, *whole)
    parts = np.zeros((5, 4, 8), dtype=np.int64), np.zeros(8, dtype=np.int64)
    for chunk in (decisions[:48], decisions[48:]):  # chunks of whole batches, as the engine cuts them
        aggregate.execution_counts(chunk, 8, POLICIES[policy], rank, 4, *parts)
    assert np.array_equal(whole[0], parts[0]) and np.array_equal(whole[1], parts[1])


def test_gather_sum_matches_a_loop():
    rng = np.random.default_rng(3)
    decisions = rng.integers(0, 5, (37, 6)).astype(np.uint8)
    table = rng.uniform(0, 10, (6, 5))
    out = np.zeros(37)
    aggregate.gather_sum(decisions, table, 2.5, out)
    expected = [2.5 + sum(table[u, decisions[i, u]] for u in range(6)) for i in range(37)]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=0)


def test_width_order_is_the_documented_one():
    bits = np.array([(0, 0), (16, 2), (8, 4), (4, 8), (32, 32), (4, 8)])
    rank = _width_rank(bits)
    # (w*a, w, a): skip < 4x8 < 4x8 (later) < 8x4 < 16x2 < 32x32.
    assert list(np.argsort(rank)) == [0, 3, 5, 2, 1, 4]
    for cases in ([1, 2, 3], [3, 5], [0, 4, 1]):
        assert widest(cases, bits) == max(cases, key=lambda c: rank[c])


OPTIONS = (Option("skip", 0, 0), Option("2bit", 2, 2), Option("4x8", 4, 8), Option("8x4", 8, 4),
           Option("8bit", 8, 8), Option("full", 32, 32, True))


@pytest.mark.parametrize("hw", ["bitfusion", "stripes", "bitsystolic_ws"])
@pytest.mark.parametrize("policy", [*POLICIES, "grouped"])
def test_simulate_matches_the_reference_end_to_end(tmp_path, hw, policy):
    network = dfs_resnet((2, 2, 2), in_channels=1, input_size=28, num_classes=10, n_options=len(OPTIONS))
    rng = np.random.default_rng(11)
    n, batch = 29, 6  # four full batches and a ragged one of 5
    # Correlated decisions, so that groups of every size occur in bucketed batches.
    decisions = np.where(rng.random((n, network.n_units)) < 0.5, rng.integers(0, len(OPTIONS), network.n_units),
                         rng.integers(0, len(OPTIONS), (n, network.n_units))).astype(np.uint8)
    path = dfs_sim.write_trace(tmp_path / "random.npz", network=network, options=OPTIONS, decisions=decisions)
    result = dfs_sim.simulate(path, hw, batch=batch, policy=policy)
    table = result.table
    case_bits = [(o.weight_bits, o.act_bits) for o in OPTIONS] + [(32, 32)]
    charges, latency, _, _, totals = reference(decisions, batch, policy, case_bits, table.unit_cost,
                                               table.base_cost)

    np.testing.assert_allclose(result.totals, totals, rtol=1e-9)
    np.testing.assert_allclose(result.layer_totals.sum(axis=0), totals, rtol=1e-9)
    names = table.metric_names
    energy = [i for i, name in enumerate(names) if name.startswith("energy_")]
    dram = [names.index("dram_read_bits"), names.index("dram_write_bits")]
    sram = [i for i, name in enumerate(names) if name.endswith(("_read_bits", "_write_bits")) and not name.startswith("dram_")]
    clock_hz = result.hw.clock_mhz * 1e6
    per_input = result.per_input
    np.testing.assert_allclose(per_input["cycles"], charges[:, names.index("cycles")], rtol=1e-9)
    np.testing.assert_allclose(per_input["latency_us"], latency / clock_hz * 1e6, rtol=1e-9)
    np.testing.assert_allclose(per_input["energy_uj"], charges[:, energy].sum(axis=1) * 1e-6, rtol=1e-9)
    np.testing.assert_allclose(per_input["dram_bytes"], charges[:, dram].sum(axis=1) / 8, rtol=1e-9)
    np.testing.assert_allclose(per_input["sram_bytes"], charges[:, sram].sum(axis=1) / 8, rtol=1e-9)
    # Charges add up to what the accelerator spent.
    assert per_input["cycles"].sum() == pytest.approx(totals[names.index("cycles")], rel=1e-9)
    # The two policies differ on this trace (so the test can tell them apart).
    other = dfs_sim.simulate(path, hw, batch=batch, policy="bucketed" if policy == "lockstep" else "lockstep")
    assert not np.allclose(other.per_input["cycles"], per_input["cycles"])
