"""Area: every shipped figure follows from its cited table, the area follows the config's fields, and the
loader refuses uncited or malformed area sections."""
import csv
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from dfs_sim.cli import main
from dfs_sim.errors import InputError
from dfs_sim.hardware import area
from dfs_sim.hardware.config import hw_from_dict, load_hw, shipped_configs_dir

# The steering repo's reference data, beside the checkout when it is there (never committed here).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "bitfusion"
BITFUSION_DENSITIES = {"wbuf": (128, 0), "ibuf": (2048, 0), "obuf": (512, 1)}


@pytest.mark.parametrize("name, block", [("bitfusion", (8, 2)), ("bitfusion_physical", (8, 2)),
                                         ("bitsystolic_os", (2, 2)), ("bitsystolic_ws", (2, 2))])
def test_array_and_buffers_come_from_synthesis_and_cacti(name, block):
    spec = load_hw(name).area
    assert spec.technology_nm == 45
    assert spec.lane_um2 == pytest.approx(area.lane_um2_from_block(*block), rel=1e-6)
    for buffer, bank in BITFUSION_DENSITIES.items():
        assert spec.buffer_mm2_per_kb[buffer] == pytest.approx(area.sram_mm2_per_kb(*bank), rel=1e-6)


@pytest.mark.parametrize("name", ["loom", "loom_2b"])
def test_loom_counts_its_borrowed_buffers_scaled_and_says_what_is_missing(name):
    hw = load_hw(name)
    got = area.area_of(hw)
    assert not got.complete and "array" in got.not_included and "array" not in got.components_mm2
    assert got.scaled_from_nm == 45 and got.technology_nm == 65
    expected = sum(b.size_bits / 8192 * area.sram_mm2_per_kb(*BITFUSION_DENSITIES[b.name]) for b in hw.buffers)
    assert got.total_mm2 == pytest.approx(expected * (65 / 45) ** 2)


def test_published_wholes_and_configs_without_area():
    assert area.area_of(load_hw("unpu")).components_mm2 == {"die": 16.0}
    assert area.area_of(load_hw("eyeriss")).total_mm2 == pytest.approx(area.EYERISS_CORE_MM2_65NM)
    assert area.scaled(area.EYERISS_CORE_MM2_65NM, 65, 45) == pytest.approx(area.BITFUSION_SIM_EYERISS_BUDGET_MM2)
    for name in ("stripes", "dadiannao"):
        assert area.area_of(load_hw(name)) is None


def test_bitfusion_matches_its_simulators_area_model():
    got = area.area_of(load_hw("bitfusion"))
    assert got.complete and got.scaled_from_nm is None
    for part, published in area.BITFUSION_SIM_AREA_MM2.items():
        assert got.components_mm2[part] == pytest.approx(published, rel=1e-6)


def test_area_follows_the_fields_not_the_load():
    hw = load_hw("bitfusion_physical")
    base = area.area_of(hw)
    wider = area.area_of(replace(hw, array=replace(hw.array, unroll={"K": 64, "C": 16})))
    assert wider.components_mm2["array"] == pytest.approx(2 * base.components_mm2["array"])
    bigger = replace(hw, buffers=tuple(replace(b, size_bits=2 * b.size_bits) for b in hw.buffers))
    assert area.area_of(bigger).components_mm2["wbuf"] == pytest.approx(2 * base.components_mm2["wbuf"])


@pytest.mark.skipif(not SHARED.is_dir(), reason="the Bit Fusion reference data is not beside this checkout")
def test_tables_equal_the_bit_fusion_repository_rows():
    with open(SHARED / "cacti_sweep.csv") as handle:
        cacti = {(int(float(r["size (bytes)"])), int(r["read-write port"])): float(r["area_mm^2"])
                 for r in csv.DictReader(handle)}
    for key, value in area.CACTI_45NM_AREA_MM2.items():
        assert cacti[key] == pytest.approx(value, rel=1e-6), key
    with open(SHARED / "systolic_array_synth.csv") as handle:
        synth = {(int(r["N"]), int(r["M"]), int(r["Max Precision (bits)"]), int(r["Min Precision (bits)"])):
                 float(r["Area (um^2)"]) for r in csv.DictReader(handle)}
    for key, value in area.PE_SYNTH_45NM_AREA_UM2.items():
        assert synth[key] == pytest.approx(value, rel=1e-9), key


def _bitfusion_dict():
    return yaml.safe_load((shipped_configs_dir() / "bitfusion_physical.yaml").read_text())


@pytest.mark.parametrize("change, field", [
    (lambda a: a.pop("source"), "area.source"),
    (lambda a: a.update(lane_um2=-1), "area.lane_um2"),
    (lambda a: a.update(lane_um2="big"), "area.lane_um2"),
    (lambda a: a["buffer_mm2_per_kb"].update(sram=0.1), "area.buffer_mm2_per_kb.sram"),
    (lambda a: a.update(colour=1), "area.colour"),
    (lambda a: a.pop("technology_nm"), "area.technology_nm"),
    (lambda a: a.update(published_mm2={"wbuf": 1.0}), "area.published_mm2.'wbuf'"),
    (lambda a: a.update(source="nowhere"), "area.source"),
])
def test_bad_area_sections_name_the_field(change, field):
    data = _bitfusion_dict()
    change(data["area"])
    with pytest.raises(InputError) as err:
        hw_from_dict(data, "x.yaml")
    assert err.value.field == field and err.value.source == "x.yaml"


def test_run_reports_area_in_every_format(capsys, tmp_path):
    out = tmp_path / "r.json"
    assert main(["run", "--hw", "bitfusion_physical", "--format", "json", "-o", str(out)]) == 0
    import json

    report = json.loads(out.read_text())
    assert report["area"]["total_mm2"] == pytest.approx(2.14098641856, rel=1e-6)
    assert report["area"]["complete"] is True
    assert main(["run", "--hw", "bitfusion_physical", "--format", "csv"]) == 0
    assert "area,total_mm2,2.14098" in capsys.readouterr().out
    assert main(["run", "--hw", "stripes"]) == 0
    assert "area      not modelled" in capsys.readouterr().out
