import numpy as np
import pytest

from dfs_sim.trace import default_options, write_trace
from dfs_sim.workload.resnet import dfs_resnet

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_network():
    """DFS-ResNet20 on 28x28 single-channel inputs (a frozen Network: shared by every test)."""
    return dfs_resnet((3, 3, 3), in_channels=1, input_size=28, num_classes=10, n_options=4)


@pytest.fixture
def make_trace(tmp_path, small_network):
    """Write a random trace of the small ResNet; returns its path."""

    def make(n=64, seed=0, network=None, options=None, labels=True, budget=30.0, name="t.npz", decisions=None,
             provenance=None):
        network = network or small_network
        options = options or default_options()
        rng = np.random.default_rng(seed)
        if decisions is None:
            decisions = rng.integers(0, len(options), (n, network.n_units))
        n = len(decisions)
        kwargs = {}
        if labels:
            kwargs = {"labels": rng.integers(0, 10, n), "predictions": rng.integers(0, 10, n)}
        return write_trace(tmp_path / name, network=network, options=options, decisions=decisions,
                           budget_pct=budget, provenance=provenance or {"test": True}, **kwargs)

    return make


@pytest.fixture(scope="session")
def validation_run():
    """Every validation target, the unvalidated comparisons and the conventions rows, built once per test
    run: what `dfs-sim validate` computes (tests/test_validation.py checks the functions themselves)."""
    from dfs_sim import validation

    return {"targets": validation.all_targets(), "unvalidated": validation.unvalidated(),
            "conventions": validation.conventions_effect()}


@pytest.fixture
def cached_validation(monkeypatch, validation_run):
    """`dfs-sim validate` (and whatever else asks dfs_sim.validation) in-process on the session's results."""
    from dfs_sim import validation

    monkeypatch.setattr(validation, "all_targets", lambda: list(validation_run["targets"]))
    monkeypatch.setattr(validation, "unvalidated", lambda: list(validation_run["unvalidated"]))
    monkeypatch.setattr(validation, "conventions_effect", lambda: list(validation_run["conventions"]))
