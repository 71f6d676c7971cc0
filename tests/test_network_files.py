"""Network files users write: derivable fields optional, given ones checked, the documented example loads."""
import re
from pathlib import Path

import pytest
import yaml

import dfs_sim
from dfs_sim.cli import main
from dfs_sim.errors import InputError
from dfs_sim.workload.network import load_network, network_from_dict

ROOT = Path(__file__).resolve().parents[1]


def docs_example() -> dict:
    text = (ROOT / "docs" / "networks.md").read_text()
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))


def test_the_documented_minimal_example_loads_without_derivable_fields():
    raw = docs_example()
    assert not any(key in layer for layer in raw["layers"] for key in ("h_out", "w_out", "macs", "weights"))
    network = network_from_dict(raw, "docs/networks.md")
    conv1, pool1, conv2, fc = network.layers
    assert (conv1.h_out, conv1.w_out, conv1.macs, conv1.weights) == (28, 28, 32 * 28 * 28 * 9, 32 * 9)
    assert (pool1.c_out, pool1.h_out, pool1.w_out) == (32, 14, 14)
    assert conv2.h_out == 14 and fc.macs == 12544 * 10
    assert dfs_sim.simulate_network(network, "loom").summary["metrics"]["energy_uj"]["mean"] > 0


@pytest.mark.parametrize("field,value,message", [
    ("h_out", 27, "is 27 but input 28, kernel 3, stride 1, padding 1 give 28"),
    ("w_out", 14, "is 14 but input 28"),
    ("macs", 5, "is 5 but the shape gives 225792"),
    ("weights", 1, "is 1 but the shape gives 288"),
])
def test_given_derivable_fields_must_agree(tmp_path, capsys, field, value, message):
    raw = docs_example()
    raw["layers"][0][field] = value
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as err:
        load_network(path)
    assert f"layers[0] (conv1).{field}" in str(err.value) and message in str(err.value)
    assert main(["run", "--network", str(path), "--hw", "stripes"]) == 2
    err_text = capsys.readouterr().err
    assert message in err_text and len(err_text.strip().splitlines()) == 1


def test_shipped_networks_still_load_with_every_field_given():
    for path in sorted((ROOT / "hw_configs" / "networks").glob("*.yaml")):
        assert load_network(path).layers


def test_the_documented_table_by_hand_writes_a_trace_that_simulates(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "recorder.md").read_text()
    snippet = text[text.index("## Without PyTorch"):]
    code = re.search(r"```python\n(.*?)```", snippet, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/recorder.md", "exec"), {})
    result = dfs_sim.simulate(str(tmp_path / "tiny.npz"), "loom")
    assert result.n_inputs == 1000 and result.summary["metrics"]["energy_uj"]["pct_of_full_precision"] < 100
