"""Derived configs: `extends:`, `--set` and HwConfig.replace / load_hw(dict) give the same machine and the same
numbers; every derived quantity follows the overridden values; bad input is one line naming the key."""
import dataclasses
import json

import pytest
import yaml

from dfs_sim.cli import main
from dfs_sim.engine import simulate
from dfs_sim.errors import InputError
from dfs_sim.hardware.area import area_of
from dfs_sim.hardware.config import load_hw, shipped_configs_dir
from dfs_sim.trace import load_trace

SETS = ["array.unroll.K=64", "dram.bandwidth_bits_per_cycle=384", "buffers.wbuf.size_kb=128"]
OVERRIDES = {"array.unroll.K": 64, "dram.bandwidth_bits_per_cycle": 384, "buffers.wbuf.size_kb": 128}


def _child_yaml(tmp_path, parent="bitfusion_physical"):
    child = {
        "extends": parent, "name": "BitFusion 2x",
        "array": {"unroll": {"K": 64}, "source": "study"},
        "dram": {"bandwidth_bits_per_cycle": 384, "source": "study"},
        "buffers": [{"name": "wbuf", "size_kb": 128, "source": "study"}],
        "sources": {"study": "this test: twice the columns, bandwidth and weight buffer"},
    }
    path = tmp_path / "bf2x.yaml"
    path.write_text(yaml.safe_dump(child))
    return path


def _numbers(summary):
    return {m: summary["metrics"][m]["mean"] for m in summary["metrics"]} | {
        "area": summary["area"]["total_mm2"], "fp_energy": summary["metrics"]["energy_uj"]["full_precision"]}


def test_extends_set_and_replace_are_the_same_machine_with_the_same_numbers(tmp_path, make_trace):
    base = load_hw("bitfusion_physical")
    by_extends = load_hw(_child_yaml(tmp_path))
    by_set = load_hw("bitfusion_physical", SETS)
    by_replace = base.replace(OVERRIDES)
    raw = yaml.safe_load((shipped_configs_dir() / "bitfusion_physical.yaml").read_text())
    by_dict = load_hw(raw, SETS)
    assert by_extends.digest == by_set.digest == by_replace.digest == by_dict.digest != base.digest
    trace = load_trace(make_trace(n=48))
    results = [_numbers(simulate(trace, hw).summary) for hw in (by_extends, by_set, by_replace, by_dict)]
    assert results[0] == results[1] == results[2] == results[3]
    assert results[0] != _numbers(simulate(trace, base).summary)
    # and through the command line: --set and the extends file print the same report numbers
    outs = []
    for argv in (["--hw", str(_child_yaml(tmp_path))], ["--hw", "bitfusion_physical"] + [
            x for s in SETS for x in ("--set", s)]):
        out = tmp_path / "r.json"
        assert main(["run", "--trace", str(trace.path), "--format", "json", "-o", str(out)] + argv) == 0
        outs.append(_numbers(json.loads(out.read_text())))
    assert outs[0] == outs[1] == results[0]


def test_derived_quantities_follow_the_overrides():
    base = load_hw("bitfusion_physical")
    wide = base.replace({"array.unroll.K": 64})
    assert wide.vector_lanes == 2 * base.vector_lanes
    assert wide.compute_pj_per_cycle == pytest.approx(2 * base.compute_pj_per_cycle)  # per-array: array_lanes 512
    assert area_of(wide).components_mm2["array"] == pytest.approx(2 * area_of(base).components_mm2["array"])
    # dataclasses.replace recomputes them too: they are properties, not constructor arguments
    also = dataclasses.replace(base, array=dataclasses.replace(base.array, unroll={"K": 64, "C": 16}))
    assert (also.vector_lanes, also.compute_pj_per_cycle, also.digest) == (wide.vector_lanes,
                                                                           wide.compute_pj_per_cycle, wide.digest)
    with pytest.raises(TypeError, match="vector_lanes"):
        dataclasses.replace(base, vector_lanes=7)
    bitsystolic = load_hw("bitsystolic_ws")
    bigger = bitsystolic.replace({"array.unroll.K": 32, "array.params.columns": 32})
    assert bigger.static_mw == pytest.approx(2 * bitsystolic.static_mw)  # leakage per PE, stated for 256
    # a figure that is not per-array (energy per op) does not scale
    assert bigger.compute.energy_pj_per_op == bitsystolic.compute.energy_pj_per_op
    assert wide.label == "BitFusion (physical) [array.unroll.K=64]"


def test_replace_refuses_a_config_changed_behind_its_back():
    hw = load_hw("bitfusion_physical")
    changed = dataclasses.replace(hw, dram=dataclasses.replace(hw.dram, bandwidth_bits_per_cycle=1.0))
    with pytest.raises(InputError, match="dataclasses.replace"):
        changed.replace({"array.unroll.K": 64})


def test_extends_inherits_sources_and_new_numbers_cite_theirs(tmp_path):
    hw = load_hw(_child_yaml(tmp_path))
    assert {"bitfusion-paper", "study"} <= set(hw.sources)
    assert hw.name == "BitFusion 2x" and hw.buffers[0].size_bits == 128 * 8192
    assert hw.buffers[1].size_bits == load_hw("bitfusion_physical").buffers[1].size_bits
    uncited = tmp_path / "uncited.yaml"
    uncited.write_text(yaml.safe_dump({"extends": "bitfusion_physical", "dram": {"bandwidth_bits_per_cycle": 384}}))
    with pytest.raises(InputError) as err:
        load_hw(uncited)
    assert (err.value.source, err.value.field) == (str(uncited), "dram.source")
    grandchild = tmp_path / "gc.yaml"
    grandchild.write_text(yaml.safe_dump({"extends": "bf2x.yaml", "name": "gc"}))  # a path beside it
    assert load_hw(grandchild).digest == hw.digest


@pytest.mark.parametrize("child, field, words", [
    ({"extends": "no_such_config"}, "extends", "no such hardware config"),
    ({"extends": 3}, "extends", "must be the name"),
    ({"extends": "loop.yaml"}, "extends", "cycle"),
    ({"extends": "missing.yaml"}, "extends", "no such hardware config"),
    ({"extends": "bitfusion_physical", "array": {"unroll": {"Q": 4}, "source": "bitfusion-paper"}},
     "array.unroll.Q", "unknown dimension"),
])
def test_bad_extends_names_the_file_and_field(tmp_path, child, field, words):
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(child))
    with pytest.raises(InputError) as err:
        load_hw(path)
    assert err.value.field == field and words in err.value.message


@pytest.mark.parametrize("item, field, words", [
    ("array.unroll.K=abc", "array.unroll.K", "must be an integer"),
    ("array.unroll.K=0", "array.unroll.K", "must be an integer"),
    ("colour=1", "colour", "unknown key"),
    ("dram.bandwidth_bits_per_cycl=3", "dram.bandwidth_bits_per_cycl", "unknown key"),
    ("buffers.sram.size_kb=3", "buffers.sram.size_kb", "no buffer named"),
    ("clock_mhz.x=3", "clock_mhz.x", "is a value"),
    ("nosuch.x=3", "nosuch.x", "unknown section"),
    ("extends=bitfusion", "extends", "is resolved when"),
    ("array.unroll.K", "'array.unroll.K'", "SECTION.KEY=VALUE"),
])
def test_bad_set_is_one_line_naming_the_flag_and_key(capsys, item, field, words):
    with pytest.raises(InputError) as err:
        load_hw("bitfusion_physical", [item])
    assert err.value.source == "--set" and err.value.field == field and words in err.value.message
    assert main(["run", "--hw", "bitfusion_physical", "--set", item]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "--set" in captured.err


def test_side_by_side_has_a_column_per_config(capsys, tmp_path, make_trace):
    trace = make_trace(n=32)
    assert main(["run", "--trace", str(trace), "--hw", "bitfusion_physical", "bitsystolic_ws", "stripes"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("per input"))
    assert all(name in header for name in ("BitFusion (physical)", "BitSystolic-WS", "Stripes"))
    for row in ("energy_uj % of FP", "area", "energy x delay"):
        assert any(line.startswith(row) for line in out.splitlines()), row
    csv_out = tmp_path / "s.csv"
    assert main(["run", "--trace", str(trace), "--hw", "bitfusion_physical", "stripes", "--format", "csv",
                 "-o", str(csv_out)]) == 0
    import pandas as pd

    frame = pd.read_csv(csv_out).set_index("quantity")
    single = tmp_path / "one.json"
    assert main(["run", "--trace", str(trace), "--hw", "bitfusion_physical", "--format", "json",
                 "-o", str(single)]) == 0
    alone = json.loads(single.read_text())
    column = frame["BitFusion (physical)"]
    assert float(column["energy_uj"]) == pytest.approx(alone["metrics"]["energy_uj"]["mean"], rel=1e-9)
    assert float(column["area"]) == pytest.approx(alone["area"]["total_mm2"], rel=1e-9)
    assert float(column["energy x delay"]) == pytest.approx(
        alone["metrics"]["energy_uj"]["mean"] * alone["metrics"]["latency_us"]["mean"], rel=1e-9)
    assert pd.isna(frame.loc["area", "Stripes"])  # no area: section
    assert main(["run", "--trace", str(trace), "--hw", "stripes", "loom", "--per-layer"]) == 2
