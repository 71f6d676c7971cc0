"""docs/notebook.ipynb runs from top to bottom (trace -> simulate -> frontier), in a kernel of this
interpreter, so it cannot rot."""
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

DOCS = Path(__file__).resolve().parents[1] / "docs"
KERNEL = "dfs-sim-tests"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernelspec that runs this very interpreter (the venv's python), found before any other."""
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dfs-sim tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


def test_notebook_executes(kernel):
    notebook = nbformat.read(DOCS / "notebook.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    client = nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=300,
                                     resources={"metadata": {"path": str(DOCS)}})
    client.execute()
    outputs = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(output.output_type == "error" for cell in outputs for output in cell)
    simulated = outputs[1][0]["data"]
    assert "text/html" in simulated and "<table>" in simulated["text/html"]  # SimResult._repr_html_
    assert simulated["text/plain"].startswith("<SimResult fmnist_resnet20_b20 on Stripes")
    assert "image/png" in outputs[-1][0]["data"]  # the frontier
