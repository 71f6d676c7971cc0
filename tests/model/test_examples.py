"""The two worked examples of docs/recorder.md, trained on real Fashion-MNIST images, recorded, and
simulated on every shipped accelerator."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dfs_sim  # noqa: E402
from dfs_sim.hardware.config import shipped_configs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = [path.stem for path in shipped_configs()]


def example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "docs" / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def early_exit(tmp_path_factory):
    module = example("early_exit")
    return module, module.main(tmp_path_factory.mktemp("early") / "early_exit.npz")


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    module = example("confidence_cascade")
    return module, module.main(tmp_path_factory.mktemp("cascade") / "cascade.npz")


def test_early_exit_example(early_exit):
    module, result = early_exit
    trace = dfs_sim.load_trace(result["trace"])
    assert trace.n_inputs == result["n"] == 256
    assert result["accuracy_pct"] > 60  # chance is 10 %
    assert 5 < result["exit_share_pct"] < 95  # the exit really splits the inputs
    assert trace.network.units == ("rest",) and [o.name for o in trace.options] == ["exit", "full"]
    layers = {layer.name: layer for layer in trace.network.layers}
    assert layers["rest.depthwise.0"].groups == layers["rest.depthwise.0"].c_in == 64  # depthwise
    assert all(layer.unit == 0 for name, layer in layers.items() if name.startswith("rest."))
    assert all(layer.precision == "full" and layer.unit is None for name, layer in layers.items()
               if name.startswith(("stem", "early_head")))
    assert trace.has_accuracy and 100 * np.mean(trace.labels == trace.predictions) == result["accuracy_pct"]
    assert all(0 < layer.input_density <= 1 for layer in trace.network.layers
               if layer.kind == "conv" and not layer.reads_input)


def test_confidence_cascade_example(cascade):
    module, result = cascade
    trace = dfs_sim.load_trace(result["trace"])
    assert trace.n_inputs == 256
    assert result["accuracy_pct"] > result["accuracy_cheap_pct"]  # re-running the unsure inputs pays off
    assert 5 < result["rerun_share_pct"] < 95
    cheap = [layer for layer in trace.network.layers if layer.name.startswith("cheap.")]
    rerun = [layer for layer in trace.network.layers if layer.name.startswith("precise.")]
    assert len(cheap) == len(rerun) == 7  # 3 convs, 2 max pools, a spatial mean, the classifier
    assert all((layer.precision, layer.w_bits, layer.a_bits) == ("fixed", 2, 4) for layer in cheap)
    assert all((layer.precision, layer.unit) == ("unit", 0) for layer in rerun)
    assert cheap[-1].kind == "fc" and rerun[0].reads_input
    assert [(o.weight_bits, o.act_bits) for o in trace.options] == [(0, 0), (8, 8)]


@pytest.mark.parametrize("hw", HARDWARE)
def test_example_traces_simulate_on_every_accelerator(early_exit, cascade, hw):
    early = dfs_sim.simulate(early_exit[1]["trace"], hw)
    rerun = dfs_sim.simulate(cascade[1]["trace"], hw)
    for result in (early, rerun):
        frame = result.per_input
        assert len(frame) == 256
        for metric in ("cycles", "energy_uj", "dram_bytes", "latency_us"):
            assert np.all(np.isfinite(frame[metric])) and np.all(frame[metric] > 0)
    # Exits only save: never above running every input to the end.
    assert early.summary["reference"]["metrics"]["energy_uj"]["pct"] <= 100 + 1e-9
    if early.batch == 1:  # per input, without a batch to share: an input that exits costs less
        exited = early.trace.decisions[:, 0] == 0
        assert early.per_input["energy_uj"][exited].max() < early.per_input["energy_uj"][~exited].min()
        reran = rerun.trace.decisions[:, 0] == 1
        assert rerun.per_input["energy_uj"][~reran].max() < rerun.per_input["energy_uj"][reran].min()
    # The static networks the cascade is set against simulate too, and 2/4 bits never cost more than 8/8.
    low = dfs_sim.simulate_network(cascade[0].static_network(cascade[1]["model"], (2, 4)), hw)
    high = dfs_sim.simulate_network(cascade[0].static_network(cascade[1]["model"], (8, 8)), hw)
    assert low.mean("energy_compute_pj") <= high.mean("energy_compute_pj") * (1 + 1e-9)
