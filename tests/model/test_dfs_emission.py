"""The DFS GatedResNet goes through the generic recorder: its traces equal the old emission's."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dfs_sim.model import emit  # noqa: E402
from dfs_sim.model.data import DATASETS, Batches  # noqa: E402
from dfs_sim.model.gated_resnet import GatedResNet, ModelConfig, resolve_force  # noqa: E402
from dfs_sim.model.train import predict  # noqa: E402
from dfs_sim.trace import load_trace, write_trace  # noqa: E402
from dfs_sim.workload.resnet import dfs_resnet  # noqa: E402

SPEC = DATASETS["fashion-mnist"]
ROOT = Path(__file__).resolve().parents[2]
SUBSET = ROOT / "tests" / "data" / "fashion_mnist_subset.npz"


def mixed_model(seed=0, **overrides):
    """A small calibrated GatedResNet whose gates choose different options for different inputs."""
    torch.manual_seed(seed)
    config = dict(depths=(2, 1, 1), in_channels=1, input_size=12, num_classes=10)
    model = GatedResNet(ModelConfig.from_dict({**config, **overrides}))
    x = torch.rand(32, 1, 12, 12) * 3 - 1
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x, candidates="all")
        model.gate_fc.weight.normal_(0, 4)
        for gate in model.gates:
            gate.embed.weight.normal_(0, 2)
        model.eval()
        x, _ = next(iter(batches().epoch()))
        model.decision_bias.copy_(-model(x).gate_logits.mean((0, 1)))  # centred: inputs disagree
    return model


def batches(n=96, seed=1):
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (n, 1, 12, 12), generator=generator)
    brightness = torch.rand(n, 1, 1, 1, generator=generator)  # per image, so that gates disagree
    images = (noise * brightness).to(torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return Batches(images, labels, SPEC, 40, train=False)  # 40 does not divide 96: a ragged last batch


def legacy(model, data, force, gate_probs):
    probe = emit._LegacyDensityProbe(model)
    try:
        result = predict(model, data, force=force, gate_probs=gate_probs)
    finally:
        probe.close()
    return probe.annotate(emit._legacy_derive_network(model)), result


def recorded(model, data, force, gate_probs):
    recorder = emit.dfs_recorder(model)
    with recorder.measure() as probe:
        result = predict(model, data, force=force, gate_probs=gate_probs)
    recorder.check_runs(probe, result["decisions"])
    return emit.derive_network(model, probe), result


CASES = [
    ({}, None, True),  # gated: mixed decisions, gate probabilities
    ({}, "8bit", False),  # forced without gates: gate pools never run, densities come from the next block
    ({}, "skip", False),  # every gated block skipped: its convs never run
    ({}, "full", True),  # forced, gates run
    ({}, "8,skip,16", False),  # one option per block
    ({"projection": "full"}, None, True),
    ({"nested": True, "bn": "per-option"}, None, True),
    ({"options": [{"name": "skip", "weight_bits": 0, "act_bits": 0, "full_precision": False},
                  {"name": "2bit", "weight_bits": 2, "act_bits": 2, "full_precision": False},
                  {"name": "4bit", "weight_bits": 4, "act_bits": 4, "full_precision": False}]}, None, True),
    ({"depths": (1, 2, 2)}, None, True),
]


@pytest.mark.parametrize("overrides,force,gate_probs", CASES)
def test_recorded_table_and_densities_equal_the_old_emission(overrides, force, gate_probs):
    model = mixed_model(**overrides)
    force_index = None if force is None else resolve_force(model, force)
    old_network, old = legacy(model, batches(), force_index, gate_probs)
    new_network, new = recorded(model, batches(), force_index, gate_probs)
    assert new_network.layers == old_network.layers  # shapes, rules, units and densities
    assert new_network.to_dict() == old_network.to_dict()
    for key in old:
        assert np.array_equal(old[key], new[key])
    densities = [layer.input_density for layer in new_network.layers if layer.input_density is not None]
    assert densities and all(0 < d <= 1 for d in densities)
    if force is None:
        assert len(np.unique(new["decisions"], axis=0)) > 1  # the case exercises mixed decisions


@pytest.mark.parametrize("checkpoint,force", [("dfs_b20.pt", None), ("gates.pt", "8bit")])
def test_emitted_trace_equals_the_old_emission(tmp_path, checkpoint, force):
    """A shipped checkpoint on real images through emit_trace: every member of the written trace equals
    what the old emission writes."""
    from dfs_sim.model import train
    from dfs_sim.model.data import load_split

    path = ROOT / "traces" / "checkpoints" / checkpoint
    out, _ = emit.emit_trace(checkpoint=path, out=tmp_path / "new.npz", data=str(SUBSET), force=force,
                             batch_size=100, progress=False, threads=1)
    new = load_trace(out)
    model, _ = train.load_checkpoint(path)
    model.eval()
    images, labels = load_split("fashion-mnist", SUBSET, "test")
    force_index = None if force is None else resolve_force(model, force)
    network, result = legacy(model, Batches(images, labels, SPEC, 100, train=False), force_index, force is None)
    old = write_trace(tmp_path / "old.npz", network=network, options=model.options, decisions=result["decisions"],
                      labels=result["labels"], predictions=result["predictions"],
                      gate_probs=result.get("gate_probs"), budget_pct=new.budget_pct, provenance=new.provenance)
    with np.load(out, allow_pickle=False) as a, np.load(old, allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key


@pytest.mark.parametrize("depths,channels,size,classes,options", [
    ((3, 3, 3), 1, 28, 10, 4), ((6, 6, 6), 3, 32, 10, 4), ((12, 12, 12), 3, 32, 100, 7), ((2, 1, 3), 3, 32, 10, 4)])
def test_recorder_table_is_dfs_resnet(depths, channels, size, classes, options):
    from dfs_sim.model.gated_resnet import parse_options

    names = {4: "skip,8,16,full", 7: "skip,8,10,12,14,16,full"}[options]
    model = GatedResNet(ModelConfig(depths=depths, in_channels=channels, input_size=size, num_classes=classes,
                                    options=parse_options(names)))
    network = emit.derive_network(model)
    expected = dfs_resnet(depths, in_channels=channels, input_size=size, num_classes=classes, n_options=options)
    assert tuple(replace(layer, input_density=None, output_density=None) for layer in network.layers) == \
        expected.layers
    assert network.units == expected.units and network.input_shape == expected.input_shape
