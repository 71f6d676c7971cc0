"""End to end on real data: three training stages on a Fashion-MNIST subset, then trace emission."""
import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dfs_sim.cli import main  # noqa: E402
from dfs_sim.errors import InputError  # noqa: E402
from dfs_sim.model import train  # noqa: E402
from dfs_sim.trace import load_trace  # noqa: E402
from dfs_sim.workload.resnet import dfs_resnet  # noqa: E402

SUBSET = Path(__file__).resolve().parents[1] / "data" / "fashion_mnist_subset.npz"
COMMON = ["--data", str(SUBSET), "--batch-size", "64", "--threads", "1", "--no-progress", "--val-size", "128"]
INHERIT = COMMON[2:]  # later stages default to the previous stage's data
BUDGET = 25.0


def cli(*argv):
    return main([str(a) for a in argv])  # the real `dfs-sim` entry point


def log_rows(checkpoint):
    with open(Path(checkpoint).with_suffix(".csv")) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    paths = {stage: root / f"{stage}.pt" for stage in ("backbone", "gates", "dfs")}
    assert cli("train", "--stage", "backbone", "-o", paths["backbone"], "--arch", "2,1,1", "--epochs", 3,
               "--max-batches", 6, *COMMON) == 0
    assert cli("train", "--stage", "gates", "--init", paths["backbone"], "-o", paths["gates"], "--epochs", 3,
               "--lr", 0.2, *INHERIT) == 0
    assert cli("train", "--stage", "dfs", "--init", paths["gates"], "-o", paths["dfs"], "--budget", BUDGET,
               "--beta", 20, "--epochs", 2, "--max-batches", 4, "--lr", 0.1, *INHERIT) == 0
    return paths


def test_stages_log_accuracy_and_computation(chain):
    rows = log_rows(chain["backbone"])
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(float(r["val_computation_pct"]) == 100 for r in rows)
    assert float(rows[-1]["val_accuracy_pct"]) > 25  # well above chance after 18 steps
    gates = log_rows(chain["gates"])
    assert float(gates[-1]["val_computation_pct"]) == 100  # trained toward full execution
    _, ckpt = train.load_checkpoint(chain["dfs"])
    assert ckpt["done"] and "optimizer" not in ckpt
    assert json.loads(ckpt["train"])["data"] == str(SUBSET)  # inherited from the previous stages
    assert set(json.loads(ckpt["stage_times"])) == {"backbone", "gates", "dfs"}


def test_computation_moves_toward_the_budget(chain):
    start = float(log_rows(chain["gates"])[-1]["val_computation_pct"])
    end = float(log_rows(chain["dfs"])[-1]["val_cost_pct"])
    assert abs(end - BUDGET) < abs(start - BUDGET) - 20
    # The budget controller then lands the validation split on the budget.
    _, ckpt = train.load_checkpoint(chain["dfs"])
    metrics = json.loads(ckpt["metrics"])
    assert abs(metrics["val"]["cost_pct"] - BUDGET) < abs(end - BUDGET) + 1e-9
    assert metrics["test"]["n"] == 256 and metrics["selected_epoch"] in (1, 2)


def test_resumed_training_equals_uninterrupted(tmp_path, monkeypatch):
    args = ["train", "--stage", "backbone", "--arch", "1,1,1", "--epochs", 2, "--max-batches", 2, *COMMON]
    assert cli(*args, "-o", tmp_path / "straight.pt") == 0
    real_save, calls = train.save_checkpoint, []

    def crash_on_second_save(path, payload):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("simulated crash while saving epoch 2")
        real_save(path, payload)

    monkeypatch.setattr(train, "save_checkpoint", crash_on_second_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        cli(*args, "-o", tmp_path / "resumed.pt")
    monkeypatch.setattr(train, "save_checkpoint", real_save)
    assert train.load_checkpoint(tmp_path / "resumed.pt")[1]["epoch"] == 1
    assert cli(*args, "-o", tmp_path / "resumed.pt") == 0
    straight = torch.load(tmp_path / "straight.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert [r["epoch"] for r in log_rows(tmp_path / "resumed.pt")] == ["1", "2"]


def test_exploration_trains_the_options_the_gates_do_not_choose(chain, tmp_path):
    """--explore runs random options for a share of (input, block) pairs: deterministic, and it trains what the
    gates alone would not (here, with gates still at full precision, the quantized paths' batch norms)."""
    args = ["train", "--stage", "dfs", "--init", chain["gates"], "--budget", BUDGET, "--beta", 20, "--epochs", 1,
            "--max-batches", 2, "--lr", 0.1, "--bn", "per-option", *INHERIT]
    for name in ("plain", "explored", "again"):
        extra = [] if name == "plain" else ["--explore", 0.5]
        assert cli(*args, "--controller-gain", 0, "-o", tmp_path / f"{name}.pt", *extra) == 0
    states = {name: torch.load(tmp_path / f"{name}.pt", weights_only=True)["state_dict"]
              for name in ("plain", "explored", "again")}
    assert all(torch.equal(states["explored"][k], states["again"][k]) for k in states["explored"])
    changed = [k for k in states["plain"] if not torch.equal(states["plain"][k], states["explored"][k])]
    assert any(".bns." in k or "bn" in k for k in changed), changed
    assert cli(*args, "-o", tmp_path / "bad.pt", "--explore", 1.5) == 2
    assert cli("train", "--stage", "gates", "--init", chain["backbone"], "-o", tmp_path / "g.pt", "--explore", 0.2,
               *INHERIT) == 2


def test_ranked_gate_target_orders_every_option_by_cost(chain, tmp_path):
    out = tmp_path / "ranked.pt"
    assert cli("train", "--stage", "gates", "--init", chain["backbone"], "-o", out, "--gate-target", "ranked",
               "--epochs", 3, "--lr", 0.2, *INHERIT) == 0
    model, _ = train.load_checkpoint(out)
    from dfs_sim.model.data import DATASETS, load_split

    spec = DATASETS["fashion-mnist"]
    images = load_split("fashion-mnist", SUBSET, "test")[0][:64].float() / 255
    images = (images - torch.tensor(spec.mean).view(1, -1, 1, 1)) / torch.tensor(spec.std).view(1, -1, 1, 1)
    with torch.no_grad():
        logits = model.eval()(images, force=model.top_index).gate_logits.mean((0, 1))
    assert [model.options[k].name for k in model.cost_order] == ["skip", "8bit", "16bit", "full"]
    assert (logits[model.cost_order].diff() > 0).all(), logits  # every option leads the next cheaper one
    assert cli("train", "--stage", "dfs", "--init", out, "-o", tmp_path / "d.pt", "--budget", 20,
               "--gate-target", "ranked", *INHERIT) == 2  # the dfs stage tracks per-input targets only
    assert cli("train", "--stage", "gates", "--init", chain["backbone"], "-o", tmp_path / "s.pt", "--gate-target",
               "ranked", "--target-scale", 10, *INHERIT) == 2  # scales per-input targets only
    assert cli("train", "--stage", "gates", "--init", chain["dfs"], "-o", tmp_path / "s.pt", "--gate-target",
               "kl", "--target-scale", 0, *INHERIT) == 2
    assert cli("train", "--stage", "gates", "--init", chain["dfs"], "-o", tmp_path / "s.pt", "--gate-target",
               "prob", "--target-shape", "log1p", *INHERIT) == 2  # log1p shapes non-negative harms only


def test_log1p_target_is_linear_below_one_over_the_scale_and_compressed_above():
    harm = torch.tensor([0.0, 1e-5, 1e-3, 0.1, 1.0])
    assert torch.allclose(train.shaped_harm(harm, 150.0, "linear"), 150 * harm)
    shaped = train.shaped_harm(harm, 150.0, "log1p")
    assert torch.allclose(shaped, torch.log1p(150 * harm))
    assert shaped[1] == pytest.approx(150e-5, rel=1e-3)  # below 1/scale: log1p(x) = x - x^2/2 + ...
    assert shaped[4] == pytest.approx(5.017, abs=1e-3)  # 150 scaled, compressed to log(151)
    assert (shaped.diff() > 0).all()  # still ranks every input's harm


@pytest.mark.parametrize("target_name", train.PER_INPUT_TARGETS)
def test_per_input_gate_target_learns_what_each_option_does(chain, tmp_path, target_name):
    """Refitted to a trained DFS network, per-input gates rank the options per input by what each does in
    its block: their centred logits follow the centred negative harm (added loss, lost true-class
    probability, or KL from the top path) on held-out inputs."""
    out = tmp_path / "loss.pt"
    assert cli("train", "--stage", "gates", "--init", chain["dfs"], "-o", out, "--gate-target", target_name,
               "--epochs", 3, "--lr", 0.5, *INHERIT) == 0
    model, ckpt = train.load_checkpoint(out)
    assert list(json.loads(ckpt["stage_times"])) == ["backbone", "gates", "dfs", "gates 2"]
    assert len(json.loads(ckpt["commands"])) == 4
    assert not model.decision_bias.any()  # the dfs stage's budget bias does not carry over
    from dfs_sim.model.data import DATASETS, load_split

    spec = DATASETS["fashion-mnist"]
    images, labels = load_split("fashion-mnist", SUBSET, "test")
    images = (images[:128].float() / 255 - torch.tensor(spec.mean).view(1, -1, 1, 1)) / \
        torch.tensor(spec.std).view(1, -1, 1, 1)
    model.eval()
    target = -train.option_harm(model, images, labels[:128].long(), target_name)
    with torch.no_grad():
        logits = model(images, force=model.top_index).gate_logits

    def centred(t):
        return (t - t.mean(-1, keepdim=True)).flatten()

    fitted = torch.corrcoef(torch.stack([centred(logits), centred(target)]))[0, 1]
    fresh_logits = train._with_new_gates(model, train.StageArgs(stage="gates", out=""), "cpu").eval()(
        images, force=model.top_index).gate_logits.detach()
    fresh = torch.corrcoef(torch.stack([centred(fresh_logits), centred(target)]))[0, 1]
    # measured: 0.29 against -0.11 (loss), 0.26 against -0.16 (prob), 0.75 against -0.29 (kl)
    assert fitted > 0.2 and fitted > fresh + 0.3, (fitted, fresh)
    assert cli("train", "--stage", "dfs", "--init", out, "-o", tmp_path / "d.pt", "--budget", BUDGET, "--epochs", 1,
               "--max-batches", 2, "--freeze-gates", *INHERIT) == 0
    assert cli("trace", "--checkpoint", tmp_path / "d.pt", "-o", tmp_path / "d.npz", "--limit", 64, "--threads", 1,
               "--no-progress") == 0
    emitted = load_trace(tmp_path / "d.npz")
    assert emitted.provenance["gate_target"] == target_name and emitted.provenance["frozen_gates"] is True
    from dfs_sim.plot.common import describe

    shown_as = "KL" if target_name == "kl" else target_name
    assert f"{shown_as}-target gates" in describe(emitted).series  # its own line on a frontier
    assert cli("train", "--stage", "gates", "--init", chain["dfs"], "-o", tmp_path / "top.pt", *INHERIT) == 2


def test_frozen_gates_keep_their_weights_while_the_backbone_trains(chain, tmp_path):
    out = tmp_path / "frozen.pt"
    assert cli("train", "--stage", "dfs", "--init", chain["gates"], "-o", out, "--budget", BUDGET, "--epochs", 1,
               "--max-batches", 2, "--lr", 0.1, "--freeze-gates", *INHERIT) == 0
    before = torch.load(chain["gates"], weights_only=True)["state_dict"]
    after = torch.load(out, weights_only=True)["state_dict"]
    gates = [k for k in before if k.startswith(("gates.", "lstm.", "gate_fc."))]
    assert gates and all(torch.equal(before[k], after[k]) for k in gates)
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert after["decision_bias"].any()  # the controller alone moved the decisions to the budget
    assert cli("train", "--stage", "gates", "--init", chain["backbone"], "-o", tmp_path / "g.pt", "--freeze-gates",
               *INHERIT) == 2


def test_tracking_gates_fit_the_kl_target_of_the_network_as_it_fine_tunes(chain, tmp_path):
    """In the dfs stage, --gate-target kl keeps the gates fitting KL(top path || option path), recomputed on the
    fine-tuning network: the gates move, they learn only that fit (the task loss does not reach them), and the
    emitted trace says which gates it ran."""
    gates = tmp_path / "kl_gates.pt"
    assert cli("train", "--stage", "gates", "--init", chain["dfs"], "-o", gates, "--gate-target", "kl",
               "--epochs", 2, "--lr", 0.5, *INHERIT) == 0
    args = train.StageArgs(stage="dfs", out="", budget=BUDGET, gate_target="kl", target_scale=10.0, explore=0.25)
    model, _ = train.load_checkpoint(gates)
    model.train()
    from dfs_sim.model.data import DATASETS, load_split

    spec = DATASETS["fashion-mnist"]
    images, labels = load_split("fashion-mnist", SUBSET, "train")
    x = (images[:16].float() / 255 - torch.tensor(spec.mean).view(1, -1, 1, 1)) / torch.tensor(spec.std).view(1, -1, 1, 1)
    costs, _ = train.stage_costs(model, "proxy", "cpu")
    loss, _, _, gate_fit = train._step(model, args, x, labels[:16].long(), costs, explorer=torch.Generator())
    assert gate_fit is not None and gate_fit.item() > 0
    gate_params, backbone = model.gate_parameters(), model.backbone_parameters()
    task_grads = torch.autograd.grad(loss, backbone, retain_graph=True, allow_unused=True)
    fit_grads = torch.autograd.grad(gate_fit, gate_params, retain_graph=True, allow_unused=True)
    train._backward(loss, gate_fit, gate_params)
    assert any(g is not None and g.abs().sum() > 0 for g in fit_grads)
    for p, g in [*zip(gate_params, fit_grads), *zip(backbone, task_grads)]:  # each part learns its own loss
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    assert model.training  # the target's passes ran in eval mode, which they leave

    out = tmp_path / "tracking.pt"
    assert cli("train", "--stage", "dfs", "--init", gates, "-o", out, "--budget", BUDGET, "--epochs", 1,
               "--max-batches", 3, "--gate-target", "kl", "--target-scale", 10, "--gate-lr", 0.5, "--target-inputs",
               16, *INHERIT) == 0
    before = torch.load(gates, weights_only=True)["state_dict"]
    after = torch.load(out, weights_only=True)["state_dict"]
    gate_keys = [k for k in before if k.startswith(("gates.", "lstm.", "gate_fc."))]
    assert not all(torch.equal(before[k], after[k]) for k in gate_keys)
    assert cli("trace", "--checkpoint", out, "-o", tmp_path / "t.npz", "--limit", 64, "--threads", 1,
               "--no-progress") == 0
    emitted = load_trace(tmp_path / "t.npz")
    assert emitted.provenance["tracking_gates"] is True and emitted.provenance["gate_target"] == "kl"
    from dfs_sim.plot.common import describe

    assert "KL-tracking gates" in describe(emitted).series
    budget = ["--budget", BUDGET]
    for bad in (budget + ["--freeze-gates"], ["--static", "8bit"], budget + ["--gate-lr", 0],
                budget + ["--target-inputs", 0]):
        assert cli("train", "--stage", "dfs", "--init", gates, "-o", tmp_path / "x.pt", "--gate-target", "kl", *bad,
                   *INHERIT) == 2, bad
    assert cli("train", "--stage", "dfs", "--init", gates, "-o", tmp_path / "x.pt", "--budget", BUDGET, "--gate-lr",
               0.1, *INHERIT) == 2  # a gate rate needs tracking gates


def test_trace_emission(chain, tmp_path):
    out = tmp_path / "dfs.npz"
    assert cli("trace", "--checkpoint", chain["dfs"], "--data", SUBSET, "-o", out, "--threads", 1,
               "--no-progress") == 0
    trace = load_trace(out)
    assert trace.provenance["gate_target"] == "top" and trace.provenance["frozen_gates"] is False
    with np.load(SUBSET, allow_pickle=False) as data:
        labels = data["test_labels"]
    assert trace.n_inputs == len(labels) == 256
    assert np.array_equal(trace.labels, labels)
    assert trace.decisions.shape == (256, 3)
    assert trace.gate_probs.dtype == np.float16 and trace.gate_probs.shape == (256, 3, 4)
    assert np.allclose(trace.gate_probs.astype(np.float32).sum(-1), 1, atol=1e-2)
    probs = trace.gate_probs.astype(np.float32)
    chosen = np.take_along_axis(probs, trace.decisions[..., None].astype(np.int64), -1)[..., 0]
    assert np.all(chosen >= probs.max(-1) - 2e-3)  # the argmax, up to float16 rounding of near-ties
    assert trace.budget_pct == BUDGET
    expected = dfs_resnet((2, 1, 1), in_channels=1, input_size=28, num_classes=10, n_options=4)
    shapes = tuple(replace(layer, input_density=None, output_density=None) for layer in trace.network.layers)
    assert shapes == expected.layers and trace.network.units == expected.units
    prov = trace.provenance
    for key in ("checkpoint_sha256", "dataset", "split", "command", "seed", "nested", "bn_policy", "git_commit",
                "tool_version", "training_commands", "training_time_s"):
        assert key in prov
    assert prov["split"] == "test" and prov["nested"] is False and prov["bn_policy"] == "shared"
    assert len(prov["training_commands"]) == 3
    costs = np.array([o.computation_cost for o in trace.options])
    assert prov["computation_pct"] == pytest.approx(100 * costs[trace.decisions].mean(), abs=1e-3)
    assert prov["accuracy_pct"] == pytest.approx(100 * np.mean(trace.labels == trace.predictions), abs=1e-3)

    again = tmp_path / "again.npz"  # emission is deterministic; the data defaults to the checkpoint's
    assert cli("trace", "--checkpoint", chain["dfs"], "-o", again, "--threads", 1, "--no-progress") == 0
    second = load_trace(again)
    for key in ("decisions", "predictions", "gate_probs"):
        assert np.array_equal(getattr(trace, key), getattr(second, key))


def test_trace_records_feature_map_densities(chain, tmp_path):
    from dfs_sim.model.data import DATASETS, Batches, load_split

    out = tmp_path / "full.npz"
    assert cli("trace", "--checkpoint", chain["dfs"], "--data", SUBSET, "-o", out, "--force", "full",
               "--threads", 1, "--no-progress") == 0
    layers = {layer.name: layer for layer in load_trace(out).network.layers}
    # The stem reads the image (never coded); every conv after it reads a measured post-ReLU map.
    assert layers["stem"].input_density is None
    convs = [layer for name, layer in layers.items() if layer.kind == "conv" and name != "stem"]
    assert convs and all(0 < layer.input_density <= 1 and 0 < layer.output_density <= 1 for layer in convs)
    assert layers["stem"].output_density == layers["block1.conv1"].input_density
    assert layers["block1.conv1"].output_density == layers["block1.conv2"].input_density
    assert layers["block1.conv2"].output_density == layers["block2.conv1"].input_density  # block 2 always runs
    assert layers["gate2.embed"].input_density is None  # vectors are not coded

    # Independently: the stem's post-ReLU output over the whole split.
    model, _ = train.load_checkpoint(chain["dfs"])
    model.eval()
    images, labels = load_split("fashion-mnist", SUBSET, "test")
    nonzero = total = 0
    with torch.no_grad():
        for x, _ in Batches(images, labels, DATASETS["fashion-mnist"], 128, train=False).epoch():
            fmap = torch.relu(model.stem_bn(model.stem(x)))
            nonzero += int(torch.count_nonzero(fmap))
            total += fmap.numel()
    assert layers["stem"].output_density == pytest.approx(nonzero / total, abs=1e-4)


def test_chosen_only_trace_equals_all_candidates(chain):
    from dfs_sim.model.data import DATASETS, Batches, load_split

    model, _ = train.load_checkpoint(chain["dfs"])
    images, labels = load_split("fashion-mnist", SUBSET, "test")
    batches = Batches(images, labels, DATASETS["fashion-mnist"], 128, train=False)
    chosen = train.predict(model, batches, candidates="chosen")
    every = train.predict(model, batches, candidates="all")
    assert np.array_equal(chosen["decisions"], every["decisions"])
    assert np.array_equal(chosen["predictions"], every["predictions"])


@pytest.mark.parametrize("option,index", [("full", 3), ("8bit", 1), ("16", 2), ("skip", 0)])
def test_static_traces_pin_every_block(chain, tmp_path, option, index):
    out = tmp_path / f"static_{option}.npz"
    assert cli("trace", "--checkpoint", chain["gates"], "--data", SUBSET, "-o", out, "--force", option,
               "--limit", 64, "--threads", 1, "--no-progress") == 0
    trace = load_trace(out)
    assert trace.n_inputs == 64 and np.all(trace.decisions == index)
    assert trace.budget_pct is None and trace.gate_probs is None
    assert trace.provenance["forced_option"] == trace.options[index].name


def test_bad_input_is_one_input_error(chain, tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    cases = [
        ["train", "--stage", "backbone", "-o", tmp_path / "x.pt", "--data", tmp_path / "nowhere"],
        ["train", "--stage", "gates", "-o", tmp_path / "y.pt", "--data", SUBSET],
        ["train", "--stage", "dfs", "--init", chain["gates"], "-o", tmp_path / "z.pt", "--data", SUBSET],
        ["train", "--stage", "backbone", "-o", tmp_path / "w.pt", "--data", SUBSET, "--options", "skip,half,full"],
        ["trace", "--checkpoint", bogus, "--data", SUBSET, "-o", tmp_path / "t.npz"],
        ["trace", "--checkpoint", chain["gates"], "--data", SUBSET, "-o", tmp_path / "t.npz", "--force", "3bit"],
        ["trace", "--checkpoint", chain["gates"], "--dataset", "cifar10", "--data", tmp_path, "-o",
         tmp_path / "t.npz"],
    ]
    messages = ["nothing is downloaded", "pass --init", "budget", "unknown option 'half'",
                "not a loadable dfs-sim checkpoint", "unknown option '3bit'", "binary release"]
    for argv, message in zip(cases, messages):
        assert cli(*argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError):
        train.load_checkpoint(tmp_path / "missing.pt")


def test_low_bit_set_trained_against_real_energy_and_static_references(chain, tmp_path):
    """Fresh gates for {skip, 2, 4, 8} on the same backbone, stage 3 against Bit Fusion energy, a static
    quantization-aware reference, and per-block static traces."""
    gates, dfs, static = tmp_path / "gates_lb.pt", tmp_path / "dfs_lb.pt", tmp_path / "static_4.pt"
    assert cli("train", "--stage", "gates", "--init", chain["backbone"], "-o", gates, "--options", "skip,2,4,8",
               "--epochs", 2, "--lr", 0.2, *INHERIT) == 0
    model, _ = train.load_checkpoint(gates)
    assert [o.name for o in model.options] == ["skip", "2bit", "4bit", "8bit"]
    assert float(log_rows(gates)[-1]["val_computation_pct"]) == pytest.approx(100 * (8 / 32) ** 2)  # all at 8 bits
    assert cli("train", "--stage", "dfs", "--init", gates, "-o", dfs, "--budget", 15, "--cost", "energy@bitfusion",
               "--beta", 20, "--epochs", 1, "--max-batches", 3, "--lr", 0.1, *INHERIT) == 0
    out = tmp_path / "lb.npz"
    assert cli("trace", "--checkpoint", dfs, "-o", out, "--threads", 1, "--no-progress") == 0
    trace = load_trace(out)
    assert trace.budget_metric == "energy@bitfusion" and trace.budget_pct == 15
    _, ckpt = train.load_checkpoint(dfs)
    table = np.array(json.loads(ckpt["cost"])["table"])
    achieved = table[np.arange(table.shape[0]), trace.decisions].mean(1).mean() * 100
    assert achieved == pytest.approx(json.loads(ckpt["metrics"])["test"]["cost_pct"], abs=1e-3)

    assert cli("train", "--stage", "dfs", "--init", gates, "-o", static, "--static", "4bit", "--epochs", 1,
               "--max-batches", 2, *INHERIT) == 0
    pinned = tmp_path / "static_4.npz"
    assert cli("trace", "--checkpoint", static, "-o", pinned, "--threads", 1, "--no-progress") == 0
    assert np.all(load_trace(pinned).decisions == 2) and load_trace(pinned).budget_pct is None
    mixed = tmp_path / "mixed.npz"
    assert cli("trace", "--checkpoint", gates, "-o", mixed, "--force", "8,4,2", "--limit", 32, "--threads", 1,
               "--no-progress") == 0
    assert load_trace(mixed).decisions.tolist() == [[3, 2, 1]] * 32
    assert load_trace(mixed).provenance["forced_option"] == "8bit,4bit,2bit"


def test_registering_the_commands_does_not_import_torch():
    code = ("import argparse, sys; from dfs_sim.model import commands; p = argparse.ArgumentParser(); "
            "commands.register(p.add_subparsers()); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def _script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[2] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_static_search_script_picks_the_most_accurate_measured_mix_within_each_target(chain, tmp_path):
    from dfs_sim.model.static_search import accuracy
    from dfs_sim.model.train import _eval_batches, _load, load_checkpoint, split_train_val

    script = _script("static_search")
    model, ckpt = load_checkpoint(chain["dfs"], "cpu")
    args = json.loads(ckpt["train"])
    stage = train.StageArgs(stage="dfs", out="", dataset=args["dataset"], data=args["data"])
    _, (val_x, val_y) = split_train_val(*_load(stage, "train"), args["val_size"])
    batches = _eval_batches(val_x, val_y, train.DATASETS[args["dataset"]], "cpu")
    for method in ("greedy", "sensitivity"):
        out = tmp_path / f"{method}.json"
        assert script.main(["--checkpoint", str(chain["dfs"]), "--cost", "energy@bitfusion_physical", "--method",
                            method, "--pick", "60", "30", "--candidates", "3", "-o", str(out)]) == 0
        result = json.loads(out.read_text())
        points = result["path" if method == "greedy" else "candidates"]
        assert result["validation_images"] == 128 and len(points) >= 2
        if method == "greedy":  # from every block at its dearest option to every block at its cheapest
            assert points[0]["cost_pct"] == max(p["cost_pct"] for p in points)
            assert points[-1]["cost_pct"] == min(p["cost_pct"] for p in points)
        else:
            assert np.array(result["damage"]).shape == (model.n_units, len(model.options))
        for point in points:  # each measured accuracy is the pinned network's, as the greedy search measures it
            assert point["accuracy_pct"] == pytest.approx(accuracy(model, batches, point["options"]), abs=1e-9)
        assert all(any(p["cost_pct"] <= float(t) for p in points) for t in result["picks"])  # no target unmet
        for target, chosen in result["picks"].items():
            within = [p for p in points if p["cost_pct"] <= float(target) + 1e-9]
            assert chosen["accuracy_pct"] == max(p["accuracy_pct"] for p in within)
            assert chosen["cost_pct"] <= float(target) + 1e-9


def test_oracle_decisions_lower_first_the_input_an_option_harms_least():
    """One block, skip (cost 0) or 8 bits (cost 1); skipping harms input A 0.1 and input B 1.0. At half the
    cost one input may skip: A, the one it harms less. At the full cost neither skips; at none, both do."""
    lagrangian_decisions = _script("gate_oracle").lagrangian_decisions
    harm = np.array([[[0.1, 0.0]], [[1.0, 0.0]]])
    costs = np.array([[0.0, 1.0]])
    decisions, lam = lagrangian_decisions(harm, costs, 50)
    assert decisions[:, 0].tolist() == [0, 1] and 0.1 <= lam <= 1.0
    assert lagrangian_decisions(harm, costs, 100)[0][:, 0].tolist() == [1, 1]
    assert lagrangian_decisions(harm, costs, 0)[0][:, 0].tolist() == [0, 0]


def test_gate_oracle_script_reports_the_oracle_spread_and_the_gates_fit(chain, tmp_path):
    trace = tmp_path / "dfs.npz"
    assert cli("trace", "--checkpoint", chain["dfs"], "-o", trace, "--limit", 64, "--threads", 1, "--no-progress") == 0
    out = tmp_path / "oracle.json"
    assert _script("gate_oracle").main(["--checkpoint", str(chain["dfs"]), "--trace", str(trace), "--budget", "40",
                                        "--inputs", "64", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    model, _ = train.load_checkpoint(chain["dfs"])
    assert result["inputs"] == 64 and result["oracle"]["cost_pct"] <= 40 + 1e-9
    energy = result["oracle"]["energy_uj"]
    assert energy["p5"] <= energy["p50"] <= energy["p95"] and energy["p95_over_p5"] >= 1
    assert len(result["gates"]) == model.n_units * (len(model.options) - 1)
    assert all(-1 <= g["rho"] <= 1 for g in result["gates"])
    shares = np.array(list(result["oracle"]["shares"].values()))
    assert np.allclose(shares.sum(0), 1, atol=2e-3)
    # The model's own decisions are the trace's: the same accuracy, run through the forced decision groups.
    emitted = load_trace(trace)
    assert result["model"]["accuracy_pct"] == pytest.approx(100 * np.mean(emitted.predictions == emitted.labels),
                                                            abs=0.005)
    assert result["model"]["distinct_vectors"] == len(np.unique(emitted.decisions, axis=0))
    for row in (result["oracle"], result["model"]):
        groups = row["kl_by_cost"]
        assert groups["cheapest_5pct"]["cost_pct"] <= groups["middle"]["cost_pct"] <= groups["dearest_5pct"]["cost_pct"]
    assert len(result["probe"]["fit"]) == len(result["gates"])
    assert result["probe"]["decisions"]["cost_pct"] <= 40 + 1e-9


def test_cross_fitted_ridge_predicts_each_fold_from_the_other():
    """An exact line, y = 3x - 2, is recovered on each fold from the other (no ridge); a target that is
    the inputs' own noise, unrelated to the feature, is not: no input predicts itself."""
    cross_fitted_ridge = _script("gate_oracle").cross_fitted_ridge
    x = np.arange(10.0)[:, None]
    assert np.allclose(cross_fitted_ridge(x, 3 * x[:, 0] - 2, ridge=0.0), 3 * x[:, 0] - 2)
    noise = np.random.default_rng(0).normal(size=200)
    features = np.hstack([noise[:, None], np.zeros((200, 1))])  # the zero column: constant, no weight
    features[:100, 0] = 0  # the first fold's feature says nothing; the fit on it predicts its mean
    predicted = cross_fitted_ridge(features, noise, ridge=1e-9)
    assert np.allclose(predicted[100:], noise[:100].mean())


def test_percentile_groups_split_off_the_cheapest_and_dearest_share():
    groups = _script("gate_oracle").percentile_groups(np.arange(40.0)[::-1])
    assert sorted(groups["cheapest_5pct"].tolist()) == [38, 39] and sorted(groups["dearest_5pct"].tolist()) == [0, 1]
    assert len(groups["middle"]) == 36
