import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from dfs_sim.engine import simulate
from dfs_sim.errors import InputError
from dfs_sim.hardware import config
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


# One bad value per section: its from_dict names the file and the field, on one line.
SOURCES = {"s": "a citation"}


@pytest.mark.parametrize("spec, data, message", [
    (config.ArraySpec, {"unroll": {"K": 0}, "source": "s"},
     "bitfusion.yaml: array.unroll.K: must be an integer in [1, 1048576], got 0"),
    (config.ArraySpec, {"unroll": {"K": 4}, "output_bits": 4.5, "source": "s"},
     "bitfusion.yaml: array.output_bits: must be an integer in [1, 64], got 4.5"),
    (config.PrecisionSpec, {"native_bits": 8, "min_bits": 9, "source": "s"},
     "bitfusion.yaml: precision.min_bits: must not exceed precision.max_bits"),
    (config.PrecisionSpec, {"native_bits": 8, "wider": "split", "source": "s"},
     "bitfusion.yaml: precision.wider: must be one of multi-pass, error, got 'split'"),
    (config.ComputeSpec, {"op": "MAC", "source": "s"},
     "bitfusion.yaml: compute: needs energy_pj_per_op and/or energy_pj_per_cycle"),
    (config.ComputeSpec, {"op": "MAC", "energy_pj_per_op": -1, "source": "s"},
     "bitfusion.yaml: compute.energy_pj_per_op: must be a number in [0, 1e+06], got -1"),
    (config.DramSpec, {"bandwidth_bits_per_cycle": 64, "energy_pj_per_bit": 20, "source": "s", "rlc_word_bits": 32},
     "bitfusion.yaml: dram.rlc_word_bits: must be an integer in [38, 4096] (a run, a 32-bit value and the end "
     "bit), got 32"),
    (config.DramSpec, {"energy_pj_per_bit": 20, "source": "s"},
     "bitfusion.yaml: dram.bandwidth_bits_per_cycle: is required"),
    (config.StaticSpec, {"power_mw": "low", "source": "s"},
     "bitfusion.yaml: static.power_mw: must be a number in [0, 1e+07], got 'low'"),
    (config.StorageSpec, {"weights": "zigzag"},
     "bitfusion.yaml: storage.weights: must be one of bit-plane, packed, fixed, got 'zigzag'"),
    (config.BatchSpec, {"size": 2, "policy": "random", "source": "s"},
     "bitfusion.yaml: batch.policy: must be one of lockstep, bucketed, grouped, got 'random'"),
    (config.MappingSpec, {"im2col": "always"}, "bitfusion.yaml: mapping.im2col: must be one of input-layers, never, "
                                               "got 'always'"),
    (config.MappingSpec, {"conventions": "bitfusion-sim", "weights_on_chip": "always"},
     "bitfusion.yaml: mapping.weights_on_chip: conflicts with conventions: bitfusion-sim, which moves every layer "
     "to and from DRAM"),
    (config.MappingSpec, {"colour": "red"}, "bitfusion.yaml: mapping.colour: unknown key"),
    (config.MappingSpec, {"objective": None}, "bitfusion.yaml: mapping.objective: must be one of cycles, energy, "
                                              "got None"),  # null is not "absent"
    (config.StaticSpec, {"power_mw": 3.0}, "bitfusion.yaml: static.source: numbers here (power_mw) need a source id"),
])
def test_each_section_names_its_bad_field(spec, data, message):
    with pytest.raises(InputError) as err:
        spec.from_dict(data, "bitfusion.yaml", SOURCES, {"native_bits": 8})
    assert str(err.value) == message


def test_a_buffer_names_its_index():
    data = {"name": "wbuf", "holds": ["weights", "weights"], "size_kb": 64, "read_pj_per_bit": 1,
            "write_pj_per_bit": 1, "source": "s"}
    with pytest.raises(InputError) as err:
        config.Buffer.from_dict(data, "hw.yaml", SOURCES, where="buffers[2]")
    assert str(err.value) == "hw.yaml: buffers[2].holds: must list distinct operands among weights, inputs, outputs"


def test_sections_read_their_keys_and_defaults():
    hw = load_hw("bitfusion_physical")
    raw = yaml.safe_load((config.shipped_configs_dir() / "bitfusion_physical.yaml").read_text())
    assert hw.dram.bandwidth_bits_per_cycle == raw["dram"]["bandwidth_bits_per_cycle"]
    assert hw.array.unroll == raw["array"]["unroll"] and hw.precision.max_bits == raw["precision"]["max_bits"]
    assert hw.buffers[0].size_bits == raw["buffers"][0]["size_kb"] * 8192
    assert (hw.batch.size, hw.batch.policy) == (raw["batch"]["size"], raw["batch"]["policy"])
    stripes = load_hw("stripes")  # storage.fixed_bits defaults to precision.native_bits
    assert stripes.storage.fixed_bits == stripes.precision.native_bits


def test_the_digest_reads_every_field_and_keeps_recorded_digests():
    read = set(config.DIGEST_FIELDS.values())
    for name, spec in config.SECTIONS.items():
        for f in dataclasses.fields(spec):
            assert f"{name}.{f.name}" in read, f"{name}.{f.name} is not in the digest"
    top = {f.name for f in dataclasses.fields(config.HwConfig)} - set(config.SECTIONS)
    assert top - read == {"path", "name", "description", "sources", "overrides", "raw"}
    # A trained checkpoint's cost table recorded the digest of the config it was computed on.
    recorded = json.loads((Path(__file__).parents[1] / "traces/checkpoints/static_search_lowbit.json").read_text())
    table = recorded["cost_table"]
    assert load_hw(table["hw"]).digest == table["hw_digest"]
    changed = load_hw("bitfusion_physical").replace({"batch.size": 4})
    assert changed.digest != table["hw_digest"]


@pytest.mark.parametrize("overrides", [
    {"array.unroll.K": 64},
    {"compute.array_lanes": 256, "static.power_mw": 2.5, "static.array_lanes": 128},
    {"array.vector_lanes": 7, "precision.native_bits": 4, "precision.max_bits": 4},
])
def test_replace_and_the_edited_yaml_give_the_same_numbers(overrides):
    base = load_hw("bitfusion_physical")
    data = copy.deepcopy(base.raw)
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        node = data.setdefault(section, {})
        *path, last = name.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    data["static"]["source"] = data["compute"]["source"]
    by_yaml, by_replace = hw_from_dict(data, "edited.yaml"), base.replace(overrides)
    for name in ("lanes", "vector_lanes", "compute_pj_per_cycle", "static_mw", "digest"):
        assert getattr(by_yaml, name) == getattr(by_replace, name), name
    assert by_replace.storage.fixed_bits == by_replace.precision.native_bits == by_yaml.storage.fixed_bits


def test_batch_and_policy_are_engine_arguments(make_trace):
    hw = load_hw("stripes")
    assert (hw.batch.size, hw.batch.policy) == (1, "lockstep") and not hasattr(hw, "with_batch")
    trace = make_trace(n=12)
    default = simulate(trace, hw)
    assert (default.batch, default.policy) == (1, "lockstep")
    run = simulate(trace, hw, batch=4, policy="bucketed")
    assert (run.batch, run.policy) == (4, "bucketed")
    assert run.summary["batch"] == {"size": 4, "policy": "bucketed"}
    assert not np.allclose(run.per_input["latency_us"], default.per_input["latency_us"])
    with pytest.raises(InputError) as err:
        simulate(trace, hw, policy="random")
    assert str(err.value) == "--policy: must be one of lockstep, bucketed, grouped, got 'random'"
    with pytest.raises(InputError) as err:
        simulate(trace, hw, batch=0)
    assert str(err.value) == "--batch: must be an integer in [1, 4096], got 0"
