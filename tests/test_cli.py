import json
import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest

from dfs_sim.cli import main
from dfs_sim.workload.network import Network

REPORT_KEYS = {"trace", "hw", "n_inputs", "budget_pct", "computation_pct", "bitops_pct", "accuracy", "metrics",
               "energy_breakdown_uj", "fmap_compression"}
METRIC_KEYS = {"mean", "p50", "p95", "p99", "max", "full_precision", "pct_of_full_precision"}


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dfs_sim.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_run_without_arguments_uses_and_names_shipped_defaults():
    done = run_cli("run")
    assert done.returncode == 0, done.stderr
    assert "using the shipped trace" in done.stderr and "hw_configs/stripes.yaml" in done.stderr
    assert "cycles" in done.stdout and "% of FP" in done.stdout


def test_json_report_is_stable(make_trace, capsys):
    assert main(["run", "--trace", str(make_trace()), "--hw", "dadiannao", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert REPORT_KEYS <= set(report)
    assert set(report["metrics"]) == {"cycles", "latency_us", "energy_uj", "dram_bytes", "sram_bytes"}
    for stats in report["metrics"].values():
        assert set(stats) == METRIC_KEYS
    assert report["hw"] == "DaDianNao" and report["n_inputs"] == 64


def test_measured_densities_code_feature_maps_on_eyeriss(make_trace, small_network, capsys):
    # A trace whose layer table carries densities (as `dfs-sim trace` records them) moves fewer
    # DRAM bytes on a config that run-length codes feature maps, and the report says for how many layers.
    layers = tuple(replace(layer, input_density=0.4, output_density=0.4) if layer.kind == "conv" and i > 0
                   else layer for i, layer in enumerate(small_network.layers))
    sparse = Network(small_network.name, layers, small_network.units, small_network.input_shape)
    reports = {}
    for name, network in (("raw", small_network), ("coded", sparse)):
        path = make_trace(network=network, name=f"{name}.npz")
        assert main(["run", "--trace", str(path), "--hw", "eyeriss", "--format", "json"]) == 0
        reports[name] = json.loads(capsys.readouterr().out)
    coded = reports["coded"]["fmap_compression"]
    assert coded["scheme"] == "rlc" and coded["layers_with_densities"] == sum(l.kind == "conv" for l in layers) - 1
    assert reports["raw"]["fmap_compression"]["layers_with_densities"] == 0
    raw_bytes, coded_bytes = (reports[k]["metrics"]["dram_bytes"]["mean"] for k in ("raw", "coded"))
    assert coded_bytes < 0.9 * raw_bytes
    assert main(["run", "--trace", str(make_trace(network=sparse, name="t2.npz")), "--hw", "eyeriss"]) == 0
    assert "rlc-coded on the DRAM link" in capsys.readouterr().out


def test_per_layer_csv_to_file(make_trace, tmp_path):
    out = tmp_path / "layers.csv"
    assert main(["run", "--trace", str(make_trace()), "--per-layer", "--format", "csv", "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    assert {"layer", "kind", "cycles", "stall_cycles", "dram_read_bits", "energy_uj"} <= set(frame.columns)
    # ResNet-20 as DFS gates it: stem, 18 convs, 2 projections, 8 gates x 4, pool, fc; a gated layer has a row
    # per option it runs at.
    assert frame.layer.nunique() == 55


def test_csv_summary_and_budget_flags(make_trace, capsys):
    assert main(["run", "--trace", str(make_trace()), "--format", "csv", "--budget", "latency_us=1",
                 "--batch", "4", "--policy", "bucketed"]) == 0
    rows = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    absolute = rows[rows.section == "budget_absolute"]
    assert absolute.value.astype(float).tolist() == [100.0]


@pytest.mark.parametrize("args, needle", [
    (["run", "--trace", "missing.npz"], "missing.npz: no such trace file"),
    (["run", "--hw", "nothing"], "nothing: no such hardware config"),
    (["run", "--budget", "speed=3"], "--budget: speed: unknown metric"),
    (["run", "--budget", "latency_us=abc"], "not a number"),
    (["run", "--batch", "0"], "--batch"),
    (["run", "--format", "xml"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path):
    out = tmp_path / "report.txt"
    done = run_cli(*args, "-o", str(out))
    assert done.returncode == 2
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_bad_trace_content_is_one_line(make_trace, tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(make_trace().read_bytes()[:300])
    done = run_cli("run", "--trace", str(path))
    assert done.returncode == 2 and str(path) in done.stderr and len(done.stderr.splitlines()) == 1
