"""Rules that several modules apply agree, because each is defined once: the architecture's name, what counts as
an integer, the batch policies, the full-precision width."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from dfs_sim.cli import build_parser
from dfs_sim.cost.table import precision_cases
from dfs_sim.errors import InputError
from dfs_sim.hardware.config import BATCH_POLICIES, hw_from_dict, load_hw, shipped_configs_dir
from dfs_sim.limits import FULL_PRECISION_BITS
from dfs_sim.regress import SCHEMA, _check_baseline
from dfs_sim.trace import default_options
from dfs_sim.workload.network import network_from_dict
from dfs_sim.workload.resnet import dfs_resnet


@pytest.mark.parametrize("depths,widths", [((3, 3, 3), (16, 32, 64)), ((12, 12, 12), (16, 32, 64)),
                                           ((2, 1, 1), (16, 32, 64)), ((1, 2, 3, 4), (8, 16, 32, 64))])
def test_resnet_name_counts_its_weight_layers(depths, widths):
    """resnetN: N is the stem, two convs per block and the classifier (not the projections, not the gates)."""
    network = dfs_resnet(depths, widths=widths)
    main_path = [layer for layer in network.layers
                 if layer.kind == "fc" or (layer.kind == "conv" and not layer.name.endswith(".proj"))]
    assert network.name == f"resnet{len(main_path)}"


def test_resnet_refuses_stages_without_widths():
    with pytest.raises(ValueError, match="4 stage depths but 3 stage widths"):
        dfs_resnet((1, 2, 3, 4))


def test_the_model_names_its_architecture_as_the_workload_does():
    pytest.importorskip("torch")
    from dfs_sim.model.gated_resnet import ModelConfig

    for depths in ((3, 3, 3), (2, 1, 1), (1, 2, 3)):
        assert ModelConfig(depths=depths).arch == dfs_resnet(depths).name


NETWORK = {"name": "n", "layers": [{"name": "fc", "kind": "fc", "c_in": 8, "c_out": 4, "precision": "fixed",
                                    "w_bits": 8, "a_bits": 8}]}


def _stripes() -> dict:
    return yaml.safe_load((shipped_configs_dir() / "stripes.yaml").read_text())


@pytest.mark.parametrize("value,accepted", [(8, True), (np.int64(8), True), (True, False), (8.0, False)])
def test_network_and_hardware_loaders_agree_on_integers(value, accepted):
    network = copy.deepcopy(NETWORK)
    network["layers"][0]["c_in"] = value
    hw = _stripes()
    hw["array"]["output_bits"] = value * 2 if accepted else value
    outcomes = []
    for load, data in ((network_from_dict, network), (hw_from_dict, hw)):
        try:
            load(data, "test")
            outcomes.append(True)
        except InputError:
            outcomes.append(False)
    assert outcomes == [accepted, accepted]


def test_batch_policies_are_one_list():
    (run,) = [action for action in build_parser()._subparsers._group_actions[0].choices["run"]._actions
              if "--policy" in action.option_strings]
    assert tuple(run.choices) == BATCH_POLICIES
    case = {"trace": "t.npz", "hw": "h.yaml", "batch": 4, "policy": BATCH_POLICIES[-1], "metrics": {}}
    with pytest.raises(InputError) as refused:
        _check_baseline({"schema": SCHEMA, "cases": [dict(case, policy="greedy")]}, Path("b.json"))
    assert all(policy in str(refused.value) for policy in BATCH_POLICIES)


def test_full_precision_is_one_width():
    full = default_options()[-1]
    assert full.full_precision and (full.weight_bits, full.act_bits) == (FULL_PRECISION_BITS, FULL_PRECISION_BITS)
    assert full.computation_cost == 1.0 and default_options()[2].computation_cost == (16 / FULL_PRECISION_BITS) ** 2
    declared, _ = precision_cases(default_options(), load_hw("bitfusion"))
    assert tuple(declared[-1]) == (FULL_PRECISION_BITS, FULL_PRECISION_BITS)


def test_the_first_layer_reads_the_input_marked_or_not():
    """The cost table (DRAM input, im2col) and the stride-fold of the first layer both follow
    Network.reads_network_input: marking the first layer changes nothing, marking another layer does."""
    from dataclasses import replace

    from dfs_sim.cost.table import build_cost_table
    from dfs_sim.hardware.accelerators import MODELS
    from dfs_sim.workload.network import Layer, Network

    def network(marked_first: bool, marked_second: bool) -> Network:
        return Network("two", (Layer("stem", "conv", 3, 16, 32, 32, 16, 16, 3, 2, 1, precision="fixed", w_bits=8,
                                     a_bits=8, reads_input=marked_first),
                               Layer("conv", "conv", 16, 16, 16, 16, 16, 16, 3, 1, 1, precision="fixed", w_bits=8,
                                     a_bits=8, reads_input=marked_second)), ())

    stripes = load_hw("stripes")
    options = default_options()
    tables = {marks: build_cost_table(network(*marks), options, stripes, 1) for marks in
              ((False, False), (True, False), (True, True))}
    np.testing.assert_array_equal(tables[False, False].layer_cost, tables[True, False].layer_cost)
    assert not np.array_equal(tables[True, False].layer_cost[1], tables[True, True].layer_cost[1])
    folded = MODELS["stripes"].array_network(stripes, network(False, False)).layers[0]
    assert replace(folded, reads_input=True) == MODELS["stripes"].array_network(stripes, network(True, False)).layers[0]
    assert folded.stride == 1 and folded.c_in == 3 * 2 * 2  # stride 2 folded into 4x the channels
