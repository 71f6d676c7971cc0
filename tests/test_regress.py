import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dfs_sim.cli import main
from dfs_sim.hardware.config import shipped_configs
from dfs_sim.trace import load_trace, write_trace
from dfs_sim.shipped_traces import manifest_entries

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "tests" / "cost_baseline.json"


def test_committed_baseline_covers_every_shipped_trace_and_config():
    cases = json.loads(BASELINE.read_text())["cases"]
    covered = {((BASELINE.parent / c["trace"]).resolve(), (BASELINE.parent / c["hw"]).resolve()) for c in cases}
    for entry in manifest_entries():
        for config in shipped_configs():
            assert ((REPO / entry["file"]).resolve(), config.resolve()) in covered, (entry["file"], config.name)


def test_unchanged_tree_passes(capsys):
    assert main(["regress", "--baseline", str(BASELINE)]) == 0
    assert "cases match" in capsys.readouterr().err


def _small_baseline(tmp_path, make_trace):
    trace = make_trace(n=40)
    hw = tmp_path / "hw.yaml"
    shutil.copy(REPO / "hw_configs" / "stripes.yaml", hw)
    baseline = tmp_path / "baseline.json"
    assert main(["regress", "--baseline", str(baseline), "--update", "--trace", str(trace), "--hw", str(hw)]) == 0
    assert main(["regress", "--baseline", str(baseline)]) == 0
    return baseline, trace, hw


def test_perturbed_energy_table_fails_with_the_energy_rows(tmp_path, make_trace, capsys):
    baseline, _, hw = _small_baseline(tmp_path, make_trace)
    config = yaml.safe_load(hw.read_text())
    config["compute"]["energy_pj_per_op"] *= 1.01
    hw.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert main(["regress", "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    moved = {line.split()[3] for line in out.splitlines()[1:]}
    assert "energy_uj.mean" in moved and "energy_breakdown_uj.compute" in moved
    assert not any(m.startswith(("cycles", "latency", "dram", "sram", "computation")) for m in moved)
    # A looser tolerance lets a 1 % compute-energy change through (compute is under 100 % of the energy).
    assert main(["regress", "--baseline", str(baseline), "--rtol", "0.02"]) == 0


def test_changed_decision_fails(tmp_path, make_trace, capsys):
    baseline, trace_path, _ = _small_baseline(tmp_path, make_trace)
    trace = load_trace(trace_path, mmap=False)
    decisions = np.array(trace.decisions)
    decisions[0, 0] = (decisions[0, 0] + 1) % len(trace.options)
    write_trace(trace_path, network=trace.network, options=trace.options, decisions=decisions, labels=trace.labels,
                predictions=trace.predictions, budget_pct=trace.budget_pct, provenance=trace.provenance)
    capsys.readouterr()
    assert main(["regress", "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "computation_pct" in out and "cycles.mean" in out
    assert main(["regress", "--baseline", str(baseline), "--update"]) == 0
    assert main(["regress", "--baseline", str(baseline)]) == 0


def test_corrupted_baselines_are_one_line_errors(tmp_path, make_trace, capsys):
    baseline, _, _ = _small_baseline(tmp_path, make_trace)
    good = json.loads(baseline.read_text())
    variants = {
        "truncated": baseline.read_text()[:100],
        "schema": json.dumps({**good, "schema": "other"}),
        "metric": json.dumps({**good, "cases": [{**good["cases"][0], "metrics": {"cycles.mean": "fast"}}]}),
        "missing trace": json.dumps({**good, "cases": [{**good["cases"][0], "trace": "nope.npz"}]}),
    }
    for name, text in variants.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        capsys.readouterr()
        assert main(["regress", "--baseline", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert str(path) in err and len(err.strip().splitlines()) == 1, name
    # What a user sees from the console: exit 2 and the one line, no traceback.
    done = subprocess.run([sys.executable, "-m", "dfs_sim.cli", "regress", "--baseline", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and str(path) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_derived_config_cases_store_their_overrides(tmp_path, make_trace, capsys):
    """--set adds derived-config cases; the baseline keeps the overrides, so the check rebuilds the same machine."""
    from dfs_sim.engine import simulate
    from dfs_sim.hardware.config import load_hw
    from dfs_sim.regress import flatten_summary

    baseline, trace, hw = _small_baseline(tmp_path, make_trace)
    assert main(["regress", "--baseline", str(baseline), "--update", "--trace", str(trace), "--hw", str(hw),
                 "--set", "dram.bandwidth_bits_per_cycle=4"]) == 0
    cases = json.loads(baseline.read_text())["cases"]
    assert len(cases) == 2 and cases[1]["set"] == {"dram.bandwidth_bits_per_cycle": 4} and "set" not in cases[0]
    derived = simulate(str(trace), load_hw(str(hw), {"dram.bandwidth_bits_per_cycle": 4}))
    assert cases[1]["metrics"] == flatten_summary(derived.summary)
    assert cases[1]["metrics"]["latency_us.mean"] != cases[0]["metrics"]["latency_us.mean"]
    capsys.readouterr()
    assert main(["regress", "--baseline", str(baseline)]) == 0
    # Editing the stored override moves the derived case's numbers, and only those.
    data = json.loads(baseline.read_text())
    data["cases"][1]["set"]["dram.bandwidth_bits_per_cycle"] = 2
    baseline.write_text(json.dumps(data))
    assert main(["regress", "--baseline", str(baseline)]) == 1
    assert all("[dram.bandwidth_bits_per_cycle=2]" in line for line in capsys.readouterr().out.splitlines()[1:])
    data["cases"][1]["set"] = {"array.unroll.K": [1]}
    baseline.write_text(json.dumps(data))
    assert main(["regress", "--baseline", str(baseline)]) == 2
    assert main(["regress", "--baseline", str(baseline), "--set", "array.unroll.K=4"]) == 2  # --set only adds cases
