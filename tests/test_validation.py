"""`dfs-sim validate`: pinned results against published figures (the sources are in the targets)."""
import json
from dataclasses import replace

import pandas as pd
import pytest

from dfs_sim import validation
from dfs_sim.cli import main
from dfs_sim.engine import simulate_network
from dfs_sim.hardware.config import load_hw
from dfs_sim.workload.network import load_network


@pytest.fixture(scope="module")
def targets():
    return {t.target: t for t in validation.all_targets()}


def test_bitfusion_simulator_reproduced_per_layer(targets):
    layers = [t for t in targets.values() if t.source == validation.BITFUSION_SOURCE]
    assert len(layers) == 61 * 4
    # The published per-layer values are matched exactly, not just within the 1 % tolerance.
    assert max(abs(t.error_pct) for t in layers) < 1e-9


def test_bitfusion_over_eyeriss(targets):
    speedup = targets["Bit Fusion over Eyeriss: geomean speedup"]
    energy = targets["Bit Fusion over Eyeriss: geomean energy reduction"]
    assert speedup.published == 3.9 and speedup.simulated == pytest.approx(3.925, abs=0.001) and speedup.passed
    assert energy.published == 5.1 and energy.simulated == pytest.approx(5.116, abs=0.001) and energy.passed


def test_stripes_over_dadiannao(targets):
    (target,) = [t for t in targets.values() if t.target.startswith("Stripes over DaDianNao")]
    assert target.published == 1.92 and target.simulated == pytest.approx(1.804, abs=0.001) and target.passed


def test_unpu_peaks(targets):
    for bits, gops in ((16, 345.6), (1, 7372.0)):
        target = targets[f"UNPU peak throughput, {bits}-bit weights (GOPS)"]
        assert target.published == gops and target.passed


def test_eyeriss_dram_traffic(targets):
    # JSSC 2017: 0.0029 (AlexNet) and 0.0035 (VGG-16) accesses per MAC, feature maps run-length coded.
    alexnet = targets["Eyeriss DRAM accesses per MAC, AlexNet CONV1-5, batch 4"]
    vgg = targets["Eyeriss DRAM accesses per MAC, VGG-16 CONV layers, batch 3"]
    assert vgg.simulated == pytest.approx(0.003828, rel=1e-3) and vgg.passed
    # Under the physical rules (no zero border fetched, no padded output channels written) AlexNet moves 4.7 %
    # less than before and lands 15.07 % below the measurement: just outside the 15 % tolerance
    # (docs/hardware.md, Validation).
    assert alexnet.simulated == pytest.approx(0.002463, rel=1e-3) and not alexnet.passed


def test_eyeriss_dram_traffic_needs_the_coded_link():
    # The same mapping search with the link moving feature maps raw is 27 % (AlexNet) and 31 % (VGG-16) above
    # the published figures, outside the targets' 15 %: the agreement comes from modelling the compression.
    raw = replace(load_hw("eyeriss"), fmap_compression="none")
    for name, batch, published in (("eyeriss_alexnet_conv", 4, 0.0029), ("eyeriss_vgg16_conv", 3, 0.0035)):
        network = load_network(validation.NETWORKS / f"{name}.yaml")
        per_mac = _dram_bits(network, raw, batch).sum() / 16 / (network.total_macs * batch)
        assert per_mac > 1.15 * published


def test_eyeriss_conv5_feature_map_saving_matches_the_paper():
    # JSSC 2017 Sec. IV-B: run-length coding saves "nearly 75 %" of CONV5's feature-map DRAM accesses. Measured
    # on one mapping: the energy-optimal mappings of a coded and a raw link differ (the coded link lets the
    # search refetch cheap coded inputs rather than raw weights), so comparing two searches would mix the
    # code's saving with the change of mapping.
    from dfs_sim.cost.compression import dram_ratio

    hw = load_hw("eyeriss")
    network = load_network(validation.NETWORKS / "eyeriss_alexnet_conv.yaml")
    conv5 = simulate_network(network, hw, batch=4).per_layer.set_index("layer").loc["CONV5"]
    layer = network.layers[-1]
    coded = conv5["dram_inputs_read_bits"] + conv5["dram_outputs_write_bits"] - conv5["dram_psums_read_bits"]
    raw = (conv5["dram_inputs_read_bits"] / dram_ratio("rlc", layer.input_density, 16)
           + (conv5["dram_outputs_write_bits"] - conv5["dram_psums_read_bits"]) / dram_ratio("rlc", layer.output_density, 16))
    assert 0.65 < 1 - coded / raw < 0.80


def _dram_bits(network, hw, batch, fmaps_only=False):
    result = simulate_network(network, hw, batch=batch)
    metric = result.table.metric
    totals = result.layer_totals
    bits = totals[:, metric("dram_read_bits")] + totals[:, metric("dram_write_bits")]
    if fmaps_only:  # weights come from DRAM into the filter buffer, uncoded
        bits = bits - totals[:, metric("filters_write_bits")]
    return bits


def test_validate_json(capsys):
    assert main(["validate", "--format", "json"]) == 1  # the Eyeriss AlexNet DRAM target (see above)
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 61 * 4 + 7 + 6
    assert [row["target"] for row in rows if not row["pass"]] == ["Eyeriss DRAM accesses per MAC, AlexNet CONV1-5, batch 4"]
    assert set(rows[0]) == {"target", "source", "published", "simulated", "error_pct", "tolerance_pct", "pass"}


def test_validate_table(capsys):
    assert main(["validate"]) == 1
    text = capsys.readouterr().out
    assert "244/244 targets within 1 %" in text and "256/257 targets pass" in text


def test_physical_rules_rows_report_how_much_the_conventions_matter(targets):
    rows = [t for t in targets.values() if t.source == validation.PHYSICAL_RULES]
    assert len(rows) == 6
    for row in rows:  # the physical rules move less and take less time than the simulator's conventions
        assert row.simulated < row.published and row.passed


def test_static_network_per_layer_csv(tmp_path):
    out = tmp_path / "lenet.csv"
    assert main(["run", "--network", "hw_configs/networks/bitfusion_lenet5.yaml", "--hw", "bitfusion",
                 "--per-layer", "--format", "csv", "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    expected = {"cycles", "stall_cycles", "dram_read_bits", "dram_write_bits", "wbuf_read_bits", "wbuf_write_bits",
                "ibuf_read_bits", "obuf_write_bits", "energy_compute_uj", "energy_dram_uj", "energy_uj"}
    assert expected <= set(frame.columns)
    published = pd.read_csv(validation.HERE / "bitfusion_sim_layers.csv", comment="#")
    lenet = published[published.network == "LeNet-5"].set_index("layer")
    # Per input; the published simulator reports per batch of 16.
    assert (frame.set_index("layer").cycles * 16).to_dict() == pytest.approx(lenet.cycles.to_dict())


def test_static_network_batch_override(capsys):
    args = ["run", "--network", "hw_configs/networks/bitfusion_lenet5.yaml", "--hw", "bitfusion", "--format",
            "json"]
    assert main(args + ["--batch", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    sixteen = json.loads(capsys.readouterr().out)
    assert one["batch"]["size"] == 1 and sixteen["batch"]["size"] == 16
    # Batching amortises weight traffic: DRAM bytes per input fall.
    assert sixteen["metrics"]["dram_bytes"]["mean"] < one["metrics"]["dram_bytes"]["mean"]


def test_network_with_gates_needs_a_trace(tmp_path, small_network):
    path = tmp_path / "gated.json"
    path.write_text(json.dumps(small_network.to_dict()))
    assert main(["run", "--network", str(path)]) == 2


def test_validate_fails_when_a_target_fails(monkeypatch, capsys):
    off = validation.Target("made-up target", "nowhere", 1.0, 1.5, 10.0)  # 50 % off, 10 % allowed
    monkeypatch.setattr(validation, "all_targets", lambda: [off])
    assert main(["validate"]) == 1
    assert "FAIL" in capsys.readouterr().out
