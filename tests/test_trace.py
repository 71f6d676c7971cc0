import json

import numpy as np
import pytest

from dfs_sim.errors import InputError
from dfs_sim.trace import Option, default_options, load_trace, write_trace


def rewrite(path, out, **changes):
    """Copy a trace's members, applying changes: a header dict transform or replacement arrays."""
    with np.load(path, allow_pickle=False) as data:
        members = {k: data[k] for k in data.files}
    header = json.loads(members["header"].tobytes())
    if "header" in changes:
        changes.pop("header")(header)
    members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    members.update(changes)
    np.savez(out, **members)
    return out


def test_round_trip(make_trace, small_network):
    path = make_trace(n=50)
    trace = load_trace(path)
    assert trace.n_inputs == 50
    assert trace.network == small_network
    assert trace.options == default_options()
    assert trace.budget_pct == 30.0 and trace.provenance == {"test": True}
    assert trace.decisions.dtype == np.uint8 and trace.decisions.shape == (50, 8)
    assert trace.has_accuracy


def test_options_may_differ_between_weights_and_activations(make_trace):
    options = (Option("skip", 0, 0), Option("w4a8", 4, 8), Option("full", 32, 32, True))
    trace = load_trace(make_trace(options=options))
    assert trace.options[1].weight_bits == 4 and trace.options[1].act_bits == 8
    assert trace.options[1].computation_cost == pytest.approx(4 / 32 * 8 / 32)


def test_large_members_are_memory_mapped(make_trace):
    path = make_trace(n=200_000, labels=False)
    trace = load_trace(path)
    assert isinstance(trace.decisions, np.memmap)
    assert trace.decisions[123_456].tolist() == load_trace(path, mmap=False).decisions[123_456].tolist()


def test_writer_leaves_nothing_on_error(tmp_path, small_network):
    bad = np.full((4, small_network.n_units), 7)  # option 7 of 4
    with pytest.raises(InputError, match="decisions"):
        write_trace(tmp_path / "x.npz", network=small_network, options=default_options(), decisions=bad)
    assert list(tmp_path.iterdir()) == []


def _expect(path, field):
    with pytest.raises(InputError) as err:
        load_trace(path)
    message = str(err.value)
    assert str(path) in message and field in message and "\n" not in message
    return message


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.npz", "no such trace")


def test_not_a_trace(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello")
    _expect(path, "not a dfs-sim trace")


def test_truncated_trace(make_trace, tmp_path):
    path = make_trace(n=200_000, labels=False)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _expect(cut, "truncated")


def test_real_cost_budget_keeps_its_table(make_trace, tmp_path):
    """A real-cost budget's table [units, options] is kept on load, for the landed value in its own metric."""
    table = [[0.0, 0.1 * u, 0.2 * u, 1.0] for u in range(8)]
    trace = load_trace(rewrite(make_trace(), tmp_path / "e.npz", header=lambda h: h.update(budget=_energy_budget(table))))
    assert trace.budget_metric == "energy@bitfusion" and trace.budget_pct == 12
    assert np.array_equal(trace.budget_cost_table, table)
    assert load_trace(make_trace()).budget_cost_table is None  # the proxy needs none


def _energy_budget(table):
    return {"metric": "energy@bitfusion", "pct": 12, "cost": {"metric": "energy", "table": table}}


@pytest.mark.parametrize("transform, field", [
    (lambda h: h.update(version=2), "header.version"),
    (lambda h: h.update(format="other"), "header.format"),
    (lambda h: h.update(colour=1), "header.colour"),
    (lambda h: h["options"][1].update(weight_bits=33, act_bits=33), "header.options[1].weight_bits"),
    (lambda h: h["options"][1].update(weight_bits=0), "header.options[1].weight_bits"),
    (lambda h: h["options"][1].update(bogus=1), "header.options[1].bogus"),
    (lambda h: h.update(n_inputs=3), "decisions"),
    (lambda h: h["network"]["layers"][0].update(c_out=17), "network.layers[0]"),
    (lambda h: h.update(budget={"computation_pct": 140}), "header.budget.computation_pct"),
    (lambda h: h.update(budget=_energy_budget([[0.1] * 4] * 7)), "header.budget.cost.table"),
    (lambda h: h.update(budget=_energy_budget([[0.1] * 3] * 8)), "header.budget.cost.table"),
    (lambda h: h.update(budget=_energy_budget([[0.1, 0.2, -0.3, 1.0]] * 8)), "header.budget.cost.table"),
    (lambda h: h.update(budget=_energy_budget([[0.1, 0.2, True, 1.0]] * 8)), "header.budget.cost.table"),
    (lambda h: h.update(budget=_energy_budget("0.1")), "header.budget.cost.table"),
])
def test_bad_headers(make_trace, tmp_path, transform, field):
    _expect(rewrite(make_trace(), tmp_path / "bad.npz", header=transform), field)


@pytest.mark.parametrize("arrays, field", [
    ({"decisions": np.full((64, 8), 9, dtype=np.uint8)}, "decisions"),
    ({"decisions": np.zeros((64, 8), dtype=np.int64)}, "decisions"),
    ({"decisions": np.zeros((64, 7), dtype=np.uint8)}, "decisions"),
    ({"labels": np.zeros(63, dtype=np.int32)}, "labels"),
    ({"labels": np.zeros(64, dtype=np.float32)}, "labels"),
    ({"gate_probs": np.full((64, 8, 4), 2.0, dtype=np.float32)}, "gate_probs"),
    ({"extra": np.zeros(3)}, "extra"),
])
def test_bad_arrays(make_trace, tmp_path, arrays, field):
    _expect(rewrite(make_trace(), tmp_path / "bad.npz", **arrays), field)


def test_pickled_members_are_refused(make_trace, tmp_path):
    objects = np.empty(64, dtype=object)
    objects[:] = [{} for _ in range(64)]
    path = tmp_path / "pickled.npz"
    with np.load(make_trace(), allow_pickle=False) as data:
        members = {k: data[k] for k in data.files}
    members["labels"] = objects
    np.savez(path, **members)
    _expect(path, "labels")
