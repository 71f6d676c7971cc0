import numpy as np
import pytest

from dfs_sim.errors import InputError
from dfs_sim.workload.network import network_from_dict
from dfs_sim.workload.resnet import dfs_resnet


def macs(network):
    return {layer.name: layer.macs for layer in network.layers}


def test_resnet38_reference_mac_counts():
    # Reference counts for DFS's ResNet-38 at 32x32 (issue 2): stem, regular block, downsampling block, FC.
    net = dfs_resnet((6, 6, 6))
    m = macs(net)
    assert m["stem"] == 442_368
    assert m["block2.conv1"] + m["block2.conv2"] == 4_718_592  # regular block, stage 1
    assert m["block8.conv1"] + m["block8.conv2"] == 4_718_592  # regular block, stage 2
    assert m["block7.conv1"] + m["block7.conv2"] == 3_538_944  # downsampling block
    assert m["block7.proj"] == 131_072
    assert m["block13.conv1"] + m["block13.conv2"] == 3_538_944
    assert m["fc"] == 640


def test_gating_follows_dfs():
    for depths, gated in (((6, 6, 6), 17), ((12, 12, 12), 35)):
        net = dfs_resnet(depths)
        assert net.n_units == gated
        rules = {layer.name: (layer.unit, layer.precision) for layer in net.layers}
        assert rules["stem"] == (None, "full")
        assert rules["block1.conv1"] == (None, "full") and rules["block1.conv2"] == (None, "full")
        assert rules["fc"] == (None, "full")
        assert rules["block2.conv1"] == (0, "unit")
        ds = depths[0] + 1
        # A downsampling block's projection runs at the block's precision, and at full precision when
        # the block is skipped (it computes the residual either way).
        assert rules[f"block{ds}.proj"] == (ds - 2, "shortcut")
        legacy = {layer.name: layer.precision for layer in dfs_resnet(depths, projection="full").layers}
        assert legacy[f"block{ds}.proj"] == "full"
        # Each gated block has its gate: pool, 1x1 conv C->10, LSTM(10,10) step, Linear(10->options).
        gate = [layer for layer in net.layers if layer.name.startswith(f"gate{ds}.")]
        assert [g.kind for g in gate] == ["pool", "gate-embed", "lstm", "gate-fc"]
        assert gate[1].c_in == 16 and gate[1].c_out == 10 and gate[1].macs == 160
        assert gate[2].macs == 4 * 10 * 20 and gate[3].macs == 40
        assert all(g.precision == "full" and g.unit is None for g in gate)


def test_input_size_is_a_parameter():
    net = dfs_resnet((3, 3, 3), in_channels=1, input_size=28)
    sizes = {layer.name: layer.h_out for layer in net.layers}
    assert sizes["stem"] == 28 and sizes["block4.conv1"] == 14 and sizes["block7.conv1"] == 7
    assert net.layers[0].c_in == 1


def test_round_trip_through_dict():
    net = dfs_resnet((3, 3, 3))
    assert network_from_dict(net.to_dict()) == net


def test_densities_round_trip_and_default_to_unknown():
    data = dfs_resnet((3, 3, 3)).to_dict()
    data["layers"][1].update(input_density=0.5, output_density=1)
    net = network_from_dict(data)
    assert network_from_dict(net.to_dict()) == net
    densities = net.column("input_density")
    assert densities[1] == 0.5 and np.isnan(densities[0]) and net.column("output_density")[1] == 1.0


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["layers"][0].update(macs=1), "macs"),
    (lambda d: d["layers"][0].update(h_out=31), "h_out"),
    (lambda d: d["layers"][0].update(kind="attention"), "kind"),
    (lambda d: d["layers"][0].update(colour="red"), "colour"),
    (lambda d: d["layers"][5].update(unit=99), "unit"),
    (lambda d: d["layers"][0].update(c_in=0), "c_in"),
    (lambda d: d.update(units=d["units"] + ["ghost"]), "units"),
    (lambda d: d["layers"][1].update(input_density=0), "input_density"),
    (lambda d: d["layers"][1].update(output_density=1.5), "output_density"),
    (lambda d: d["layers"][1].update(output_density="sparse"), "output_density"),
])
def test_bad_networks_name_the_field(mutate, field):
    data = dfs_resnet((3, 3, 3)).to_dict()
    mutate(data)
    with pytest.raises(InputError) as err:
        network_from_dict(data, "net.json")
    assert "net.json" in str(err.value) and field in str(err.value)
