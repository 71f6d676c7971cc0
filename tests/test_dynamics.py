import numpy as np
import pytest

from dfs_sim.engine import simulate
from dfs_sim.report.dynamics import decision_diversity, spread, trace_dynamics


def test_diversity_by_hand():
    decisions = np.array([[0, 1], [0, 1], [0, 2], [0, 3]])
    d = decision_diversity(decisions, 4)
    assert d["distinct_vectors"] == 3 and d["top_vector_share_pct"] == 50.0
    # block 1 is constant (0 bits); block 2 takes options 1, 1, 2, 3: -(0.5 log 0.5 + 2 * 0.25 log 0.25) = 1.5
    assert d["block_entropy_bits"] == [0.0, 1.5] and d["varying_blocks"] == 1
    assert d["mean_block_entropy_bits"] == 0.75


def test_a_static_trace_has_no_diversity():
    d = decision_diversity(np.full((100, 8), 2), 4)
    assert d["distinct_vectors"] == 1 and d["top_vector_share_pct"] == 100.0 and d["varying_blocks"] == 0


def test_spread():
    s = spread(np.arange(1, 101))
    assert s["p50"] == pytest.approx(50.5) and s["p95_over_p5"] == pytest.approx(95.05 / 5.95)
    assert spread(np.full(10, 3.0))["p95_over_p5"] == 1.0
    assert spread([])["p5"] is None


def test_trace_dynamics_spreads_with_the_decisions(make_trace):
    varied = trace_dynamics(simulate(make_trace(n=200), "stripes"))
    assert varied["distinct_vectors"] > 150 and varied["energy_uj"]["p95_over_p5"] > 1.2
    constant = trace_dynamics(simulate(make_trace(decisions=np.full((50, 8), 3), name="c.npz"), "stripes"))
    assert constant["energy_uj"]["p95_over_p5"] == pytest.approx(1.0)
    assert constant["distinct_vectors"] == 1
