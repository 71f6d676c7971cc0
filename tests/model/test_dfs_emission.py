"""The DFS GatedResNet goes through the generic recorder: its traces equal the old emission's.

The old emission derived the table with hand-written hooks (held equal to dfs_resnet) and measured
densities with OldDensityProbe below; the commit that replaced it ran these tests against the old
code itself before deleting it."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dfs_sim.model import emit, layer_table  # noqa: E402
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


class OldDensityProbe:
    """The old emission's density probe (dfs_sim/model/emit.py before the recorder), kept verbatim as
    this test's oracle.

    Counts the non-zero share of feature maps as the model runs, to record per-layer densities.

    Each stored map is measured where a layer reads it: a conv's input (over the inputs that run
    it), and every block's output at the next gate's pooling or the final pooling, which see it for
    every input whether or not the block ran. A layer's output density is that of the map it
    writes: the next conv's input after the stem and a block's first conv, the block output after
    its second conv and projection.
    """

    def __init__(self, model):
        self.model = model
        self.counts: dict = {}
        readers = [model.pool] + [gate.pool for gate in model.gates]
        for block in model.blocks:
            readers += [block.conv1, block.conv2] + ([block.proj[0]] if block.proj is not None else [])
        self.handles = [m.register_forward_pre_hook(self._count) for m in readers]

    def _count(self, module, inputs):
        x = inputs[0]
        tally = self.counts.setdefault(module, [0, 0])
        tally[0] += int(torch.count_nonzero(x))
        tally[1] += x.numel()

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()

    def density(self, module) -> float | None:
        nonzero, total = self.counts.get(module, (0, 0))
        return round(nonzero / total, 4) if total else None

    def annotate(self, network):
        """The network with each conv and pooling layer's measured input and output densities."""
        model = self.model
        block_out = []  # block i's output is read by gate i+1's pooling, the last one by the final pooling
        for index in range(1, len(model.blocks) + 1):
            if index == len(model.blocks):
                block_out.append(self.density(model.pool))
                continue
            after = model.blocks[index]  # without gates (forced runs), the next block's readers stand in
            readers = [model.gates[index - 1].pool] + ([after.proj[0]] if after.proj is not None else [])
            measured = [d for d in map(self.density, readers + [after.conv1]) if d is not None]
            block_out.append(measured[0] if measured else None)
        densities = {"stem": (None, self.density(model.blocks[0].conv1)), "pool": (block_out[-1], None)}
        for index, block in enumerate(model.blocks, start=1):
            out = block_out[index - 1]
            densities[f"block{index}.conv1"] = (self.density(block.conv1), self.density(block.conv2))
            densities[f"block{index}.conv2"] = (self.density(block.conv2), out)
            if block.proj is not None:
                densities[f"block{index}.proj"] = (self.density(block.proj[0]), out)
            if index > 1:
                densities[f"gate{index}.pool"] = (block_out[index - 2], None)
        def with_densities(layer):
            density_in, density_out = densities.get(layer.name, (None, None))
            return replace(layer, input_density=density_in, output_density=density_out)

        return replace(network, layers=tuple(map(with_densities, network.layers)), meta=dict(network.meta))


def old_table(model):
    """The old derive_network's table: dfs_resnet (test_recorder_table_is_dfs_resnet and, before it,
    test_gated_resnet held the old derivation to it) with the old description."""
    c = model.config
    network = dfs_resnet(c.depths, in_channels=c.in_channels, input_size=c.input_size, num_classes=c.num_classes,
                         n_options=len(model.options), widths=c.widths, name=c.arch, projection=c.projection)
    return replace(network, description=f"DFS-{c.arch} derived from the PyTorch model: stages {list(c.depths)}, "
                                        f"widths {list(c.widths)}, input {c.in_channels}x{c.input_size}x"
                                        f"{c.input_size}, {model.n_units} gated blocks, {len(model.options)} options")


def legacy(model, data, force, gate_probs):
    probe = OldDensityProbe(model)
    try:
        result = predict(model, data, force=force, gate_probs=gate_probs)
    finally:
        probe.close()
    return probe.annotate(old_table(model)), result


def recorded(model, data, force, gate_probs):
    recorder = layer_table.dfs_recorder(model)
    with recorder.measure() as probe:
        result = predict(model, data, force=force, gate_probs=gate_probs)
    recorder.check_runs(probe, result["decisions"])
    return layer_table.derive_network(model, probe), result


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


@pytest.mark.parametrize("checkpoint,force", [("dfs7_b50.pt", None), ("gates7.pt", "8bit")])
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
    network = layer_table.derive_network(model)
    expected = dfs_resnet(depths, in_channels=channels, input_size=size, num_classes=classes, n_options=options)
    assert tuple(replace(layer, input_density=None, output_density=None) for layer in network.layers) == \
        expected.layers
    assert network.units == expected.units and network.input_shape == expected.input_shape
