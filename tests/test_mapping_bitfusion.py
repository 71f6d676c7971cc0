"""`mapping.conventions: bitfusion-sim` reproduces the Bit Fusion authors' simulator on configurations other
than the shipped one: their own published sweep (other array widths, a wider DRAM link, bigger buffers), and
the authors' optimizer run for this project on other row counts, narrow links and small buffers
(benchmarks/peers/bitfusion/)."""
import copy
import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dfs_sim.errors import InputError
from dfs_sim.hardware.config import hw_from_dict, load_hw, shipped_configs_dir
from dfs_sim.validation.targets import BITFUSION_NETWORKS, NETWORKS, _network_costs
from dfs_sim.workload.network import load_network

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "tests" / "data" / "bitfusion_sim_sweep.csv"
RUN_HERE = ROOT / "benchmarks" / "peers" / "bitfusion" / "bitfusion_sim_other_configs.csv"
QUANTITIES = (("cycles", "cycles"), ("stall_cycles", "memory_wait_cycles"), ("dram_read_bits", "dram_read_bits"),
              ("dram_write_bits", "dram_write_bits"))
CONFIG = ["N", "M", "bandwidth_bits_per_cycle", "wbuf_bytes", "ibuf_bytes", "obuf_bytes"]


def configured(n, m, bandwidth, wbuf, ibuf, obuf):
    """bitfusion.yaml with another array, DRAM link and buffer sizes (same energies per bit)."""
    hw = load_hw("bitfusion")
    sizes = {"wbuf": wbuf, "ibuf": ibuf, "obuf": obuf}
    buffers = tuple(dataclasses.replace(b, size_bits=int(sizes[b.name]) * 8) for b in hw.buffers)
    return dataclasses.replace(hw, array=dataclasses.replace(hw.array, unroll={"K": int(m), "C": int(n)}),
                               dram=dataclasses.replace(hw.dram, bandwidth_bits_per_cycle=float(bandwidth)),
                               buffers=buffers)


def mismatches(path):
    rows = pd.read_csv(path, comment="#")
    checked, wrong = 0, []
    for config, group in rows.groupby(CONFIG):
        hw = configured(*config)
        expected = group.set_index(["network", "layer"])
        for name in BITFUSION_NETWORKS:
            network = load_network(NETWORKS / f"bitfusion_{name}.yaml")
            costs = _network_costs(network, hw, 16)
            for layer in network.layers:
                theirs = expected.loc[(network.name, layer.name)]
                for ours_key, their_key in QUANTITIES:
                    checked += 1
                    if costs.loc[layer.name, ours_key] != theirs[their_key]:
                        wrong.append((config, network.name, layer.name, ours_key, costs.loc[layer.name, ours_key],
                                      theirs[their_key]))
    return checked, wrong


def test_published_sweep_is_reproduced_exactly():
    checked, wrong = mismatches(PUBLISHED)
    assert checked == 4 * 61 * 4 and wrong == []


def test_authors_optimizer_on_other_configurations_is_reproduced_exactly():
    checked, wrong = mismatches(RUN_HERE)
    assert checked == 4 * 61 * 4 and wrong == []


def test_bitfusion_config_selects_the_simulator_conventions_explicitly():
    raw = yaml.safe_load((shipped_configs_dir() / "bitfusion.yaml").read_text())
    assert raw["mapping"]["conventions"] == "bitfusion-sim"
    assert all(load_hw(path).mapping.conventions == "physical" for path in shipped_configs_dir().glob("*.yaml")
               if path.stem != "bitfusion")


@pytest.mark.parametrize("key", ["weights_on_chip", "activations_on_chip"])
def test_simulator_conventions_own_residency(key):
    # One source per rule: the conventions move every layer to and from DRAM; a residency knob beside them is
    # a contradiction, named with its field.
    data = copy.deepcopy(yaml.safe_load((shipped_configs_dir() / "bitfusion.yaml").read_text()))
    data["mapping"][key] = "always"
    with pytest.raises(InputError) as err:
        hw_from_dict(data, "hw.yaml")
    assert str(err.value).startswith(f"hw.yaml: mapping.{key}")
    data["mapping"]["conventions"] = "physical"
    assert hw_from_dict(data, "hw.yaml").residency("weights") in ("auto", "always")


def test_unknown_conventions_name_the_field():
    data = yaml.safe_load((shipped_configs_dir() / "bitfusion.yaml").read_text())
    data["mapping"]["conventions"] = "scale-sim"
    with pytest.raises(InputError, match="mapping.conventions"):
        hw_from_dict(data, "hw.yaml")
