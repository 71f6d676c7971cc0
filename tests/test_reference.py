"""--reference: what "% of reference" compares against, for traces and static networks."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dfs_sim
from dfs_sim.cli import main
from dfs_sim.errors import InputError
from dfs_sim.reference import parse_reference
from dfs_sim.workload.network import Network, load_network

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "traces" / "fmnist_resnet20_b20.npz"

# A static 4-bit network as a user would write it: no h_out/w_out, macs or weights.
STATIC_4BIT = """\
name: small-4bit
input_shape: [1, 28, 28]
layers:
  - {name: conv1, kind: conv, c_in: 1, c_out: 32, h_in: 28, w_in: 28, kernel: 3, padding: 1, precision: fixed, w_bits: 4, a_bits: 4, reads_input: true}
  - {name: pool1, kind: pool, c_in: 32, h_in: 28, w_in: 28, kernel: 2, stride: 2, precision: fixed, w_bits: 4, a_bits: 4}
  - {name: conv2, kind: conv, c_in: 32, c_out: 64, h_in: 14, w_in: 14, kernel: 3, padding: 1, precision: fixed, w_bits: 4, a_bits: 4}
  - {name: fc, kind: fc, c_in: 12544, c_out: 10, precision: fixed, w_bits: 4, a_bits: 4}
"""


@pytest.fixture
def static_4bit(tmp_path):
    path = tmp_path / "small_4bit.yaml"
    path.write_text(STATIC_4BIT)
    return path


def at_bits(network: Network, w: int, a: int) -> Network:
    return replace(network, layers=tuple(replace(layer, w_bits=w, a_bits=a) for layer in network.layers))


@pytest.mark.parametrize("text,spec,bits", [("full", "full", None), ("native", "native", None),
                                            ("8/8", "8/8", (8, 8)), (" 4 / 16 ", "4/16", (4, 16))])
def test_parse(text, spec, bits):
    reference = parse_reference(text)
    assert reference.spec == spec and (None if bits is None else (reference.weight_bits, reference.act_bits)) == bits


@pytest.mark.parametrize("text,words", [("8", "not a reference"), ("0/8", "out of range"), ("8/33", "out of range"),
                                        ("stripes", "--reference-hw")])
def test_bad_references_are_one_line(text, words):
    with pytest.raises(InputError) as err:
        parse_reference(text)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_static_4bit_network_against_8_8_shows_its_real_saving(static_4bit):
    network = load_network(static_4bit)
    own = dfs_sim.simulate_network(network, "stripes")
    reference = own.summary["reference"]
    assert reference["spec"] == "4/4" and "highest declared precision" in reference["origin"]
    assert reference["metrics"]["energy_uj"]["pct"] == pytest.approx(100)  # against itself: 100 %, and it says so
    against_8 = dfs_sim.simulate_network(network, "stripes", reference="8/8")
    pct = against_8.summary["reference"]["metrics"]
    # The reference is the same network with every layer at 8/8, simulated on its own.
    eight = dfs_sim.simulate_network(at_bits(network, 8, 8), "stripes")
    for metric in ("cycles", "energy_uj", "dram_bytes"):
        assert pct[metric]["value"] == pytest.approx(eight.summary["metrics"][metric]["mean"], rel=1e-12)
        assert pct[metric]["pct"] == pytest.approx(100 * own.summary["metrics"][metric]["mean"] /
                                                   eight.summary["metrics"][metric]["mean"])
    assert pct["cycles"]["pct"] < 60  # Stripes is bit-serial in activations: 4 of 8 bits, plus fixed costs
    assert pct["energy_uj"]["pct"] < 100
    # The full-precision numbers of the schema are unchanged: a static network is its own full precision.
    assert against_8.summary["metrics"]["energy_uj"]["pct_of_full_precision"] == pytest.approx(100)


def test_cli_names_the_reference_in_text_and_json(static_4bit, capsys):
    assert main(["run", "--network", str(static_4bit), "--hw", "loom", "--reference", "8/8"]) == 0
    text = capsys.readouterr().out
    assert "% of ref" in text and "reference: 8/8 bits (every layer) (--reference)" in text
    assert main(["run", "--network", str(static_4bit), "--hw", "loom", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reference"]["spec"] == "4/4" and summary["reference"]["bits"] == [4, 4]
    assert summary["reference"]["origin"].startswith("default")


def test_trace_default_is_full_precision_and_unchanged():
    result = dfs_sim.simulate(str(TRACE), "stripes")
    reference = result.summary["reference"]
    assert reference["spec"] == "full" and reference["origin"].startswith("default")
    for metric, stats in result.summary["metrics"].items():
        assert reference["metrics"][metric]["value"] == stats["full_precision"]
        assert reference["metrics"][metric]["pct"] == stats["pct_of_full_precision"]
    explicit = dfs_sim.simulate(str(TRACE), "stripes", reference="full").summary["reference"]
    assert explicit["metrics"] == reference["metrics"]  # same numbers, named as asked


def test_native_is_the_accelerators_own_width():
    trace = dfs_sim.load_trace(str(TRACE))
    native = dfs_sim.simulate(trace, "bitfusion", reference="native").summary["reference"]
    eight = dfs_sim.simulate(trace, "bitfusion", reference="8/8").summary["reference"]
    assert native["bits"] == [8, 8] and native["metrics"] == eight["metrics"]
    full = dfs_sim.simulate(trace, "bitfusion").summary["reference"]
    # Bit Fusion runs DFS's 32-bit full precision as 4 x 4 slices of 8 bits: far dearer than 8/8.
    assert full["metrics"]["cycles"]["value"] > 10 * native["metrics"]["cycles"]["value"]
    stripes = dfs_sim.simulate(trace, "stripes", reference="native").summary["reference"]
    assert stripes["bits"] == [16, 16]


def test_frontier_and_figures_take_the_reference(tmp_path):
    points = tmp_path / "points.csv"
    assert main(["frontier", "--trace", str(TRACE), "--hw", "stripes", "bitfusion", "-o", str(tmp_path / "f.png"),
                 "--csv", str(points), "--reference", "8/8"]) == 0
    frame = pd.read_csv(points)
    assert set(frame["reference"]) == {"8/8"}
    assert np.allclose(frame["x_pct_of_reference"], 100 * frame["x_value"] / frame["x_reference"])
    parts = tmp_path / "energy.csv"
    assert main(["plot", "energy", "--trace", str(TRACE), "--hw", "stripes", "--scale", "relative", "--reference",
                 "8/8", "-o", str(tmp_path / "e.png"), "--csv", str(parts)]) == 0
    assert set(pd.read_csv(parts)["reference"]) == {"8/8 bits"}
    assert main(["plot", "proxy", "--trace", str(TRACE), "--hw", "stripes", "--reference", "native",
                 "-o", str(tmp_path / "p.png"), "--csv", str(tmp_path / "p.csv")]) == 0
    assert set(pd.read_csv(tmp_path / "p.csv")["reference_spec"]) == {"native"}
    assert main(["plot", "latency", "--trace", str(TRACE), "--hw", "stripes", "--reference", "8/8",
                 "-o", str(tmp_path / "l.png")]) == 0


def test_plot_proxy_points_the_old_accelerator_reference_to_the_new_flag(tmp_path, capsys):
    assert main(["plot", "proxy", "--trace", str(TRACE), "--reference", "stripes", "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "--reference-hw" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.png").exists()


def test_per_input_csv_has_one_row_per_input(tmp_path):
    out = tmp_path / "inputs.csv"
    assert main(["run", "--trace", str(TRACE), "--hw", "stripes", "--per-input", "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    trace = dfs_sim.load_trace(str(TRACE))
    assert len(frame) == trace.n_inputs
    for column in ("input", "cycles", "latency_us", "energy_uj", "energy_pct_of_reference", "dram_bytes",
                   "computation_pct", "decisions", "label", "prediction", "correct"):
        assert column in frame.columns
    counts = frame[[f"units_{o.name}" for o in trace.options]].to_numpy()
    assert np.all(counts.sum(axis=1) == trace.network.n_units)
    assert np.array_equal(frame["label"], trace.labels) and np.array_equal(frame["prediction"], trace.predictions)
    first = np.array(frame["decisions"].iloc[0].split(), dtype=int)
    assert np.array_equal(first, trace.decisions[0])
    result = dfs_sim.simulate(trace, "stripes")
    assert frame["energy_uj"].mean() == pytest.approx(result.summary["metrics"]["energy_uj"]["mean"])


def test_per_input_json_and_parquet(tmp_path, capsys):
    out = tmp_path / "inputs.json"
    assert main(["run", "--network", str(ROOT / "hw_configs" / "networks" / "bitfusion_lenet5.yaml"), "--hw",
                 "bitfusion", "--per-input", "-o", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 16 and "energy_uj" in rows[0]  # one batch of the static network
    parquet = tmp_path / "inputs.parquet"
    code = main(["run", "--trace", str(TRACE), "--per-input", "-o", str(parquet)])
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert code == 2
        err = capsys.readouterr().err
        assert "pyarrow" in err and len(err.strip().splitlines()) == 1 and not parquet.exists()
    else:
        assert code == 0 and len(pd.read_parquet(parquet)) == dfs_sim.load_trace(str(TRACE)).n_inputs


def test_per_input_and_per_layer_are_exclusive(capsys):
    assert main(["run", "--trace", str(TRACE), "--per-input", "--per-layer"]) == 2
    assert "not both" in capsys.readouterr().err


def test_notebook_view_of_a_result():
    result = dfs_sim.simulate(str(TRACE), "stripes")
    text = repr(result)
    assert len(text) < 200 and "Stripes" in text and "% of full precision" in text
    html = result._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and "energy_uj" in html and "reference" in html
    assert len(html) < 5000


def test_dir_lists_the_lazy_api():
    names = dir(dfs_sim)
    for name in ("simulate", "load_trace", "load_hw", "SimResult", "simulate_network", "load_network"):
        assert name in names


def test_reference_and_per_input_do_not_import_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from dfs_sim.cli import main; "
            f"assert main(['run', '--trace', {str(TRACE)!r}, '--reference', '8/8', '--per-input', '-o', "
            f"{str(tmp_path / 'inputs.csv')!r}]) == 0; "
            f"assert main(['run', '--network', {str(ROOT / 'hw_configs' / 'networks' / 'bitfusion_lenet5.yaml')!r}, "
            "'--hw', 'bitfusion', '--reference', 'native', '--format', 'json', '-o', " + repr(str(tmp_path / "r.json"))
            + "]) == 0; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
