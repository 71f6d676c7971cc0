import copy

import pytest
import yaml

from dfs_sim.errors import InputError
from dfs_sim.hardware.config import hw_from_dict, load_hw, shipped_configs


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.stem)
def test_every_shipped_config_validates_and_cites(path):
    config = load_hw(path)
    assert config.sources
    raw = yaml.safe_load(path.read_text())
    assert all(cite.strip() for cite in raw["sources"].values())


def test_load_by_name():
    assert load_hw("stripes").name == "Stripes"


def test_unknown_name_lists_shipped():
    with pytest.raises(InputError, match="shipped: .*stripes"):
        load_hw("nonexistent-accelerator")


def base():
    return yaml.safe_load((shipped_configs()[0].parent / "stripes.yaml").read_text())


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d["array"].update(lanes=4), "array.lanes"),
    (lambda d: d["array"]["unroll"].update(Q=4), "array.unroll.Q"),
    (lambda d: d["array"]["unroll"].update(K=0), "array.unroll.K"),
    (lambda d: d.update(clock_mhz="fast"), "clock_mhz"),
    (lambda d: d.update(clock_mhz=-5), "clock_mhz"),
    (lambda d: d["precision"].update(max_bits=64), "precision.max_bits"),
    (lambda d: d["precision"].update(min_bits=20), "precision.min_bits"),
    (lambda d: d["buffers"][0].update(size_kb=-1), "buffers[0].size_kb"),
    (lambda d: d["buffers"][0].update(holds=["inputs"]), "buffers"),
    (lambda d: d["storage"].update(weights="zigzag"), "storage.weights"),
    (lambda d: d["batch"].update(policy="random"), "batch.policy"),
    (lambda d: d["dram"].pop("source"), "dram.source"),
    (lambda d: d["dram"].update(source="nowhere"), "dram.source"),
    (lambda d: d["dram"].update(fmap_compression="zip"), "dram.fmap_compression"),
    (lambda d: d["dram"].update(fmap_compression="rlc", rlc_word_bits=32), "dram.rlc_word_bits"),
    (lambda d: d["dram"].update(rlc_run_bits=0), "dram.rlc_run_bits"),
    (lambda d: d.update(model="tpu"), "model"),
    (lambda d: d.pop("sources"), "sources"),
])
def test_bad_configs_name_the_field(mutate, field):
    data = copy.deepcopy(base())
    mutate(data)
    with pytest.raises(InputError) as err:
        hw_from_dict(data, "hw.yaml")
    assert str(err.value).startswith("hw.yaml: " + field)


def test_not_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(InputError, match="not valid YAML"):
        load_hw(path)
