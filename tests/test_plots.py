import numpy as np
import pandas as pd
import pytest

import dfs_sim
from dfs_sim.cli import main
from dfs_sim.plot.frontier import frontier_points, pareto_front

MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}


@pytest.fixture
def model_traces(make_trace):
    """A small 'trained model' at three budgets plus two static references, with labels."""
    traces = []
    for budget, p_full in ((20, 0.1), (40, 0.4), (60, 0.7)):
        rng = np.random.default_rng(budget)
        decisions = np.where(rng.random((50, 8)) < p_full, 3, 1)
        traces.append(make_trace(decisions=decisions, budget=budget, name=f"b{budget}.npz",
                                 provenance={"dataset": "toy"}))
    for option, index in (("8bit", 1), ("full", 3)):
        traces.append(make_trace(decisions=np.full((50, 8), index), budget=None, name=f"static_{option}.npz",
                                 provenance={"dataset": "toy", "forced_option": option}))
    return traces


def test_pareto_front():
    points = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.5], "y": [50.0, 70.0, 80.0, 60.0]})
    assert sorted(pareto_front(points)) == [0, 1, 2]


def test_frontier_points_and_lines(model_traces, tmp_path):
    traces = [dfs_sim.load_trace(t) for t in model_traces]
    points = frontier_points(traces, [dfs_sim.load_hw("stripes"), dfs_sim.load_hw("dadiannao")])
    assert len(points) == 10
    assert set(points["kind"]) == {"dfs", "static"}
    assert set(points[points.kind == "static"]["label"]) == {"all 8bit", "all full"}
    full = points[points.label == "all full"]
    assert np.allclose(full["x"], 100)  # the all-full reference is 100 % of full precision
    assert points["pareto"].any() and points["y_is_accuracy"].all()


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_frontier_writes_each_format(model_traces, tmp_path, suffix):
    out = tmp_path / f"frontier{suffix}"
    csv = tmp_path / "points.csv"
    assert main(["frontier", "--trace", *map(str, model_traces), "--hw", "stripes", "bitfusion", "-o", str(out),
                 "--csv", str(csv), "--x", "latency_p99_us"]) == 0
    assert out.read_bytes()[:5].startswith(MAGIC[suffix])
    frame = pd.read_csv(csv)
    assert {"trace", "hw", "accuracy_pct", "x_value", "x_pct_of_full_precision", "pareto"} <= set(frame.columns)
    assert set(frame["x_metric"]) == {"latency_p99_us"}


def test_unlabelled_traces_plot_against_budget(make_trace, tmp_path):
    traces = [make_trace(labels=False, budget=b, name=f"u{b}.npz") for b in (20, 50)]
    out = tmp_path / "f.png"
    assert main(["frontier", "--trace", *map(str, traces), "-o", str(out), "--absolute"]) == 0
    points = frontier_points([dfs_sim.load_trace(t) for t in traces], [dfs_sim.load_hw("stripes")])
    assert points["y"].tolist() == [20.0, 50.0] and not points["y_is_accuracy"].any()


def test_figures(model_traces, tmp_path):
    traces = list(map(str, model_traces))
    for args in (["decisions", "--trace", *traces[:3]],
                 ["latency", "--trace", *traces[:3], "--hw", "stripes", "--budget", "latency_us=50"],
                 ["energy", "--trace", traces[1], "--hw", "stripes", "dadiannao", "bitfusion"]):
        out = tmp_path / f"{args[0]}.png"
        assert main(["plot", *args, "-o", str(out)]) == 0
        assert out.read_bytes()[:4] == MAGIC[".png"]


def test_bad_figure_requests(model_traces, tmp_path):
    traces = list(map(str, model_traces))
    assert main(["frontier", "--trace", traces[0], "-o", str(tmp_path / "f.jpg")]) == 2
    assert main(["plot", "energy", "--trace", traces[0], "--hw", "nothing", "-o", str(tmp_path / "e.png")]) == 2
    assert main(["plot", "latency", "--trace", traces[0], "--budget", "energy_uj=3", "-o",
                 str(tmp_path / "l.png")]) == 2
    assert list(tmp_path.glob("*.png")) == [] and list(tmp_path.glob("*.jpg")) == []


def test_python_api(model_traces):
    trace = dfs_sim.load_trace(model_traces[1])
    result = dfs_sim.simulate(trace, dfs_sim.load_hw("stripes"), batch=4, policy="bucketed")
    assert isinstance(result.per_input, pd.DataFrame) and len(result.per_input) == 50
    assert isinstance(result.per_layer, pd.DataFrame) and len(result.per_layer) == len(trace.network.layers)
    frame = result.summary_frame
    assert (frame.section == "cycles").sum() == 7
    assert result.summary["batch"] == {"size": 4, "policy": "bucketed"}


def test_points_that_coincide_share_one_label():
    import pandas as pd

    from dfs_sim.plot.frontier import _coincident_labels

    panel = pd.DataFrame({"x": [10.0, 10.05, 50.0, 100.0], "y": [93.8, 93.81, 93.9, 10.0],
                          "label": ["30%", "20%", "40%", "100%"]})
    labels = _coincident_labels(panel.iloc[:3], panel, log_x=False)
    assert [text for _, text in labels] == ["20%, 30%", "40%"]
    # On a log axis closeness is relative: 10 and 10.05 still merge, 50 stays apart.
    assert [text for _, text in _coincident_labels(panel.iloc[:3], panel, log_x=True)] == ["20%, 30%", "40%"]
