import re

import numpy as np
import pandas as pd
import pytest

import dfs_sim
from dfs_sim.cli import main
from dfs_sim.plot import figures, frontier, layers, proxy
from dfs_sim.plot.common import describe
from dfs_sim.plot.frontier import frontier_points, pareto_front
from dfs_sim.plot.layout import (PointLabel, finish_layout, legend_covers_data, overlapping_texts, place_labels,
                                 texts_on_markers)
from dfs_sim.trace import write_trace

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]

MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml", ".jpg": b"\xff\xd8\xff"}
UNIT = re.compile(r"\((µJ|µs|B|cycles|%)|%")
HWS = ("dadiannao", "stripes", "loom", "bitfusion")


@pytest.fixture(scope="module")
def model_traces(tmp_path_factory, small_network):
    """A small 'trained model' at three budgets, a nested one, and static references (all 8-bit,
    all full, all skip at chance accuracy), with labels. Written once for the module's tests, which only
    read them (each writes its outputs into its own tmp_path)."""
    tmp_path = tmp_path_factory.mktemp("model_traces")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 60)

    def write(name, decisions, accuracy, budget=None, **provenance):
        predictions = np.where(np.arange(60) < round(accuracy * 60), labels, (labels + 1) % 10)
        return write_trace(tmp_path / name, network=small_network, options=dfs_sim.trace.default_options(),
                           decisions=decisions, labels=labels, predictions=predictions, budget_pct=budget,
                           provenance={"dataset": "fashion-mnist", "model": "DFS-resnet20 (stages [3, 3, 3])",
                                       **provenance})

    traces = []
    for budget, p_full, accuracy in ((20, 0.1, 0.9), (40, 0.4, 0.92), (60, 0.7, 0.93)):
        decisions = np.where(rng.random((60, 8)) < p_full, 3, 1)
        traces.append(write(f"b{budget}.npz", decisions, accuracy, budget))
    traces.append(write("b20_nested.npz", np.where(rng.random((60, 8)) < 0.1, 3, 1), 0.88, 20, nested=True))
    for option, index, accuracy in (("8bit", 1, 0.93), ("full", 3, 0.95), ("skip", 0, 0.1)):
        traces.append(write(f"static_{option}.npz", np.full((60, 8), index), accuracy, forced_option=option))
    return [str(t) for t in traces]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:4] == MAGIC[".png"]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def check_figure(fig, path, x_units: bool = True):
    """What every figure must do: a title, axis labels with units, a legend that covers no data,
    no text on other text; and come out as a PNG of sensible size."""
    from dfs_sim.plot.common import save_figure

    titles = [fig._suptitle.get_text() if fig._suptitle else ""]
    titles += [ax.get_title(loc=loc) for ax in fig.axes for loc in ("left", "center")]
    assert any(t.strip() for t in titles), "no title"
    assert not any("[" in t for t in titles), f"a title reads like a Python repr: {titles}"
    visible = [ax for ax in fig.axes if ax.get_visible()]
    fig.canvas.draw()
    for ax in visible:
        if any(t.get_visible() and t.get_text() for t in ax.get_yticklabels()):  # not a panel sharing its y axis
            assert UNIT.search(ax.get_ylabel()), f"y label without a unit: {ax.get_ylabel()!r}"
        if x_units and ax.get_xlabel():
            assert UNIT.search(ax.get_xlabel()), f"x label without a unit: {ax.get_xlabel()!r}"
    assert any(ax.get_xlabel() for ax in visible) or not x_units
    assert any(ax.get_legend() for ax in fig.axes) or fig.legends, "no legend"
    assert legend_covers_data(fig) == []
    assert overlapping_texts(fig) == []
    save_figure(fig, path)
    width, height = png_size(path)
    assert 600 <= width <= 4000 and 300 <= height <= 4000, (width, height)
    assert path.stat().st_size < 2_000_000


def test_pareto_front():
    points = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.5], "y": [50.0, 70.0, 80.0, 60.0]})
    assert sorted(pareto_front(points)) == [0, 1, 2]


def test_labels_are_readable_and_tell_nested_from_plain(model_traces):
    labels = [describe(dfs_sim.load_trace(t)) for t in model_traces]
    assert labels[0].series == "DFS-ResNet20, Fashion-MNIST"
    assert [lab.label for lab in labels[:4]] == ["20 %", "40 %", "60 %", "20 % nested"]
    assert labels[3].long == "budget 20 %, nested" and labels[3].line != labels[0].line
    assert [lab.label for lab in labels[4:]] == ["all 8-bit", "all full precision", "all skip"]


def test_frontier_points_and_lines(model_traces):
    traces = [dfs_sim.load_trace(t) for t in model_traces]
    points = frontier_points(traces, [dfs_sim.load_hw("stripes"), dfs_sim.load_hw("dadiannao")])
    assert len(points) == 14
    assert set(points["kind"]) == {"dfs", "static"}
    full = points[points.label == "all full precision"]
    assert np.allclose(full["x"], 100)  # the all-full reference is 100 % of full precision
    assert points["pareto"].any() and points["y_is_accuracy"].all()
    assert set(points["full_precision_bits"]) == {16}


def test_frontier_keeps_degenerate_references_off_the_axis(model_traces, tmp_path):
    traces = [dfs_sim.load_trace(t) for t in model_traces]
    points = frontier_points(traces, [dfs_sim.load_hw(h) for h in ("stripes", "bitfusion")])
    fig = frontier.build_frontier(points)
    ax = fig.axes[0]
    skip = points[points.label == "all skip"]["y"].max()
    assert skip < 20 and ax.get_ylim()[0] > 50  # the axis stays on the models that matter
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("all skip" in t and "off the axis" in t for t in legend)
    assert any("100 % = 32-bit" in t for t in legend) and any("100 % = 16-bit" in t for t in legend)
    assert "own full precision" in ax.get_xlabel()
    assert "as much on BitFusion as on Stripes" in fig._supxlabel.get_text()
    annotations = [t.get_text() for t in ax.texts]
    assert any("nested" in t for t in annotations)
    assert texts_on_markers(fig) == []
    check_figure(fig, tmp_path / "frontier.png")


def test_frontier_absolute_gives_each_accelerator_a_panel(model_traces, tmp_path):
    traces = [dfs_sim.load_trace(t) for t in model_traces]
    hws = [dfs_sim.load_hw(h) for h in ("stripes", "bitfusion")]
    points = frontier_points(traces, hws, relative=False)
    fig = frontier.build_frontier(points, relative=False)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2  # Bit Fusion spends tens of times Stripes' energy: one scale would flatten Stripes
    assert all(ax.get_xlabel() == "energy per inference (µJ)" for ax in panels)
    check_figure(fig, tmp_path / "frontier_abs.png")


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf", ".jpg"])
def test_frontier_writes_each_format(model_traces, tmp_path, suffix):
    out = tmp_path / f"frontier{suffix}"
    csv = tmp_path / "points.csv"
    assert main(["frontier", "--trace", *model_traces, "--hw", "stripes", "bitfusion", "-o", str(out),
                 "--csv", str(csv), "--x", "latency_p99_us"]) == 0
    assert out.read_bytes()[:5].startswith(MAGIC[suffix])
    frame = pd.read_csv(csv)
    assert {"trace", "hw", "accuracy_pct", "x_value", "x_pct_of_full_precision", "pareto"} <= set(frame.columns)
    assert set(frame["x_metric"]) == {"latency_p99_us"}
    # No repr noise such as 93.97999999999999: at most 12 significant digits.
    assert not re.search(r"\d\.\d{13,}", csv.read_text())


def test_same_figure_same_bytes(model_traces, tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in paths:
        assert main(["frontier", "--trace", *model_traces[:3], "-o", str(path)]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_unlabelled_traces_plot_against_budget(make_trace, tmp_path):
    traces = [make_trace(labels=False, budget=b, name=f"u{b}.npz") for b in (20, 50)]
    out = tmp_path / "f.png"
    assert main(["frontier", "--trace", *map(str, traces), "-o", str(out), "--absolute"]) == 0
    points = frontier_points([dfs_sim.load_trace(t) for t in traces], [dfs_sim.load_hw("stripes")])
    assert points["y"].tolist() == [20.0, 50.0] and not points["y_is_accuracy"].any()


def test_label_placement_avoids_every_other_label_and_marker(tmp_path):
    from dfs_sim.plot.common import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    rng = np.random.default_rng(1)
    xs, ys = 50 + rng.normal(0, 3, 14), 90 + rng.normal(0, 0.5, 14)
    ax.plot(xs, ys, "o")
    ax.set_xlim(0, 100)
    ax.set_ylim(85, 95)
    ax.set_title("labels")
    ax.set_xlabel("x (%)")
    ax.set_ylabel("y (%)")
    ax.legend(["points"], loc="lower left")
    finish_layout(fig)
    place_labels(ax, [PointLabel(x, y, f"{i * 10} % nested") for i, (x, y) in enumerate(zip(xs, ys))])
    assert overlapping_texts(fig) == []
    assert texts_on_markers(fig) == []


def test_proxy_figure(model_traces, tmp_path):
    traces = [dfs_sim.load_trace(t) for t in model_traces]
    hws = [dfs_sim.load_hw(h) for h in HWS]
    points = proxy.proxy_points(traces, hws)
    assert set(points["full_precision_bits"]) == {16, 32}
    full = points[points.label == "all full precision"]
    assert np.allclose(full["pct_of_reference"], 100)
    fig = proxy.build_proxy(points)
    assert any(t.get_text() == "what the proxy promises" for t in fig.axes[0].texts)
    check_figure(fig, tmp_path / "proxy.png")
    # Against one accelerator's full precision, Bit Fusion's 32-bit full precision shows what it costs.
    against = proxy.proxy_points(traces, hws, reference_hw=dfs_sim.load_hw("stripes"))
    bitfusion = against[(against.hw == "BitFusion") & (against.label == "all full precision")]
    assert bitfusion["pct_of_reference"].iloc[0] > 1000
    check_figure(proxy.build_proxy(against, "Stripes"), tmp_path / "proxy_stripes.png")


def test_proxy_cli_writes_figure_and_points(model_traces, tmp_path):
    out, csv = tmp_path / "proxy.jpg", tmp_path / "proxy.csv"
    assert main(["plot", "proxy", "--trace", *model_traces, "-o", str(out), "--csv", str(csv), "--metric", "cycles"]) == 0
    assert out.read_bytes()[:3] == MAGIC[".jpg"]
    frame = pd.read_csv(csv)
    assert set(frame["hw"]) == {"DaDianNao", "Stripes", "Loom", "BitFusion"} and set(frame["metric"]) == {"cycles"}


def test_decisions_figure(model_traces, tmp_path):
    traces = [dfs_sim.load_trace(t) for t in model_traces]
    fig = figures.build_decisions(traces)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0].startswith("budget 20 %") and titles[3].startswith("budget 20 %, nested")
    assert len(fig.axes) == len(traces)
    check_figure(fig, tmp_path / "decisions.png", x_units=False)
    fig = figures.build_decisions(traces, include_static=False)
    assert len(fig.axes) == 4
    # Stage boundaries: the two downsampling blocks of a ResNet-20 are marked.
    ticks = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
    assert sum("↓" in t for t in ticks) == 2
    check_figure(fig, tmp_path / "decisions_dfs.png", x_units=False)


def test_latency_figure(model_traces, tmp_path):
    traces = [dfs_sim.load_trace(t) for t in model_traces[:4]]
    hws = [dfs_sim.load_hw(h) for h in ("stripes", "bitfusion")]
    fig = figures.build_latency(traces, hws, budget_us=50.0)
    stripes, bitfusion = fig.axes[:2]
    assert "within 50.0 µs:" in stripes.get_title(loc="left")
    legend = [t.get_text() for t in bitfusion.get_legend().get_texts()]
    assert legend[:4] == ["budget 20 %", "budget 40 %", "budget 60 %", "budget 20 %, nested"]
    # The budget line is black, a colour no trace takes.
    budget = [line for line in stripes.get_lines() if line.get_linestyle() == "--"]
    traces_colors = {line.get_color() for line in stripes.get_lines() if line.get_linestyle() == "-"}
    assert budget and budget[0].get_color() == "black" and "black" not in traces_colors
    assert any(t.get_text().startswith("full precision") for t in stripes.texts)
    check_figure(fig, tmp_path / "latency.png")


def test_energy_figure_and_parts(model_traces, tmp_path):
    trace = dfs_sim.load_trace(model_traces[1])
    parts = figures.energy_parts(trace, [dfs_sim.load_hw(h) for h in HWS + ("eyeriss",)])
    assert {"sb", "nm", "wbuf", "ibuf", "obuf", "glb", "filters"} <= set(parts["config_name"])
    assert set(parts["component"]) <= set(figures.COMPONENT_COLORS)
    for scale in ("log", "linear", "relative"):
        fig = figures.build_energy(parts, describe(trace), scale)
        ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
        assert all("weights\n" in t for t in ticks)
        assert "budget 40 %" in fig._suptitle.get_text() and "batch" in fig._suptitle.get_text()
        assert fig.axes[0].get_yscale() == ("log" if scale == "log" else "linear")
        assert texts_on_markers(fig) == []
        check_figure(fig, tmp_path / f"energy_{scale}.png", x_units=False)


def test_layers_figure_names_the_hot_layer(model_traces, tmp_path):
    trace = dfs_sim.load_trace(model_traces[2])
    parts = layers.layer_parts(trace, [dfs_sim.load_hw("stripes"), dfs_sim.load_hw("bitfusion")])
    per_layer = dfs_sim.simulate(trace, "stripes").per_layer
    stripes = parts[parts.hw == "Stripes"].groupby("layer_index")["cycles"].sum()
    assert np.allclose(stripes.to_numpy(), per_layer["cycles"].to_numpy())  # the split adds up to the per-layer total
    fig = layers.build_layers(parts, trace)
    hottest = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(hottest) == 6 and all(t.startswith("hottest: ") for t in hottest)
    top = per_layer.loc[per_layer["cycles"].idxmax(), "layer"]
    assert hottest[0].startswith(f"hottest: {top},")
    check_figure(fig, tmp_path / "layers.png", x_units=False)  # x: layers in order


def test_figures_from_the_cli(model_traces, tmp_path):
    for args in (["decisions", "--trace", *model_traces[:3], "--no-static"],
                 ["latency", "--trace", *model_traces[:3], "--hw", "stripes", "--budget", "latency_us=50"],
                 ["energy", "--trace", model_traces[1], "--hw", "stripes", "dadiannao", "bitfusion",
                  "--csv", str(tmp_path / "energy.csv")],
                 ["layers", "--trace", model_traces[1], "--hw", "stripes"]):
        out = tmp_path / f"{args[0]}.png"
        assert main(["plot", *args, "-o", str(out)]) == 0
        assert out.read_bytes()[:4] == MAGIC[".png"]
    energy = pd.read_csv(tmp_path / "energy.csv")
    assert {"hw", "component", "config_name", "energy_uj", "weights_on_chip"} <= set(energy.columns)


def test_bad_figure_requests(model_traces, tmp_path):
    traces = model_traces
    assert main(["frontier", "--trace", traces[0], "-o", str(tmp_path / "f.gif")]) == 2
    assert main(["plot", "energy", "--trace", traces[0], "--hw", "nothing", "-o", str(tmp_path / "e.png")]) == 2
    assert main(["plot", "latency", "--trace", traces[0], "--budget", "energy_uj=3", "-o",
                 str(tmp_path / "l.png")]) == 2
    assert main(["plot", "decisions", "--trace", traces[4], "--no-static", "-o", str(tmp_path / "d.png")]) == 2
    assert list(tmp_path.glob("*.png")) == [] and list(tmp_path.glob("*.gif")) == []


def test_python_api(model_traces):
    trace = dfs_sim.load_trace(model_traces[1])
    result = dfs_sim.simulate(trace, dfs_sim.load_hw("stripes"), batch=4, policy="bucketed")
    assert isinstance(result.per_input, pd.DataFrame) and len(result.per_input) == 60
    assert isinstance(result.per_layer, pd.DataFrame) and len(result.per_layer) == len(trace.network.layers)
    frame = result.summary_frame
    assert (frame.section == "cycles").sum() == 7
    assert result.summary["batch"] == {"size": 4, "policy": "bucketed"}


def test_points_that_coincide_share_one_label():
    from dfs_sim.plot.frontier import _coincident_labels

    panel = pd.DataFrame({"x": [10.0, 10.05, 50.0, 100.0], "y": [93.8, 93.81, 93.9, 10.0],
                          "label": ["30 %", "20 %", "40 %", "100 %"]})
    labels = _coincident_labels(panel.iloc[:3], panel, log_x=False)
    assert [text for _, text in labels] == ["20 %, 30 %", "40 %"]
    # On a log axis closeness is relative: 10 and 10.05 still merge, 50 stays apart.
    assert [text for _, text in _coincident_labels(panel.iloc[:3], panel, log_x=True)] == ["20 %, 30 %", "40 %"]


def test_shipped_traces_figures_read_cleanly(tmp_path):
    """The README figure and the frontier on the real traces: many coinciding points, no collisions."""
    paper = sorted((REPO / "traces" / "paper").glob("*.npz"))
    fmnist = sorted((REPO / "traces").glob("fmnist_*.npz"))
    traces = [dfs_sim.load_trace(p) for p in paper + fmnist]
    hws = [dfs_sim.load_hw(h) for h in HWS]
    check_figure(proxy.build_proxy(proxy.proxy_points(traces, hws)), tmp_path / "proxy.png")
    # The frontier: every Fashion-MNIST trace but the loss-target family, which the shipped frontiers leave out
    # too (scripts/fmnist_traces.py figures): four DFS families and every static, three accelerators, one panel.
    fmnist_traces = [t for t, p in zip(traces[len(paper):], fmnist) if "_lowbit_loss_" not in p.name]
    fig = frontier.build_frontier(frontier_points(fmnist_traces, hws[1:]))
    assert texts_on_markers(fig) == []
    check_figure(fig, tmp_path / "frontier.png")


def test_each_per_block_static_has_its_own_marker():
    """Two per-block mixes on one figure are told apart; uniform statics keep their option's marker."""
    from dfs_sim.plot.common import static_marker

    mixes = ["per block skip/8/4/4/4/4/8/2", "per block skip/skip/4/4/4/4/4/2"]
    assert static_marker(mixes[0], mixes) != static_marker(mixes[1], mixes)
    assert static_marker("all 8-bit", mixes) == "^"
