"""The recorder on hand-built models: derived layer tables, refusals, rules, densities, run checks."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import dfs_sim  # noqa: E402
from dfs_sim.cli import main  # noqa: E402
from dfs_sim.errors import InputError  # noqa: E402
from dfs_sim.model.recorder import Recorder  # noqa: E402
from dfs_sim.trace import Option, load_trace  # noqa: E402
from dfs_sim.workload.network import Layer, load_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class Zoo(nn.Module):
    """Every layer kind the recorder costs: conv, grouped and depthwise conv, a residual add, max and
    average pooling (modules and functions), a functional conv, a spatial mean, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.grouped = nn.Conv2d(16, 32, 3, padding=1, groups=4)
        self.depthwise = nn.Conv2d(32, 32, 5, stride=2, padding=2, groups=32)
        self.pointwise = nn.Conv2d(32, 32, 1)
        self.pool = nn.MaxPool2d(2)
        self.extra = nn.Parameter(torch.randn(8, 32, 3, 3))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.avg_pool2d(F.relu(self.grouped(x)), 2)  # 16 -> 8
        y = F.relu(self.depthwise(x))  # 8 -> 4
        y = self.pointwise(y) + y  # residual add
        y = self.pool(y)  # 4 -> 2
        y = F.conv2d(y, self.extra, padding=1)
        return self.fc(y.mean((2, 3)))


def test_layer_table_of_every_costed_kind():
    recorder = Recorder(Zoo(), (3, 16, 16), name="zoo")
    network = recorder.network()
    expected = [
        Layer("stem", "conv", 3, 16, 16, 16, 16, 16, 3, 1, 1, reads_input=True),
        Layer("grouped", "conv", 16, 32, 16, 16, 16, 16, 3, 1, 1, 4),
        Layer("avg_pool2d", "pool", 32, 32, 16, 16, 8, 8, 2, 2, 0),
        Layer("depthwise", "conv", 32, 32, 8, 8, 4, 4, 5, 2, 2, 32),
        Layer("pointwise", "conv", 32, 32, 4, 4, 4, 4, 1, 1, 0),
        Layer("pool", "pool", 32, 32, 4, 4, 2, 2, 2, 2, 0),
        Layer("conv2d", "conv", 32, 8, 2, 2, 2, 2, 3, 1, 1),
        Layer("mean", "pool", 8, 8, 2, 2, 1, 1, 2, 1, 0),
        Layer("fc", "fc", 8, 10),
    ]
    assert network.layers == tuple(expected)
    assert network.name == "zoo" and network.units == () and network.input_shape == (3, 16, 16)
    assert network.layers[3].macs == 32 * 4 * 4 * 25  # depthwise: one input channel per output
    assert recorder.fused == {"BatchNorm2d": 1, "relu": 3, "add": 1}  # what the table leaves out, and why


def refusal(module, shape=(3, 8, 8), **kwargs):
    with pytest.raises(InputError) as err:
        Recorder(module, shape, **kwargs).network()
    message = str(err.value)
    assert "\n" not in message
    return message


class Wrap(nn.Module):
    def __init__(self, inner, then=None):
        super().__init__()
        self.inner, self.then = inner, then

    def forward(self, x):
        y = self.inner(x)
        return self.then(y) if self.then else y


@pytest.mark.parametrize("module,words", [
    (nn.Conv2d(3, 4, (3, 1)), ["non-square kernel"]),
    (nn.Conv2d(3, 4, 3, dilation=2, padding=2), ["dilation"]),
    (nn.ConvTranspose2d(3, 4, 3), ["conv_transpose2d", "cannot cost"]),
    (Wrap(nn.Flatten(2), nn.LayerNorm(64)), ["layer_norm"]),
    (Wrap(nn.Upsample(scale_factor=2)), ["interpolate"]),
    (Wrap(nn.GroupNorm(1, 3)), ["group_norm"]),
    (Wrap(nn.Flatten(2), nn.Linear(64, 4)), ["linear layer to a 3-d tensor"]),
])
def test_refuses_what_the_cost_model_cannot_cost(module, words):
    message = refusal(module)
    for word in words:
        assert word in message


def test_refuses_attention_recurrent_layers_and_matmul():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            tokens = x.flatten(2).transpose(1, 2)
            return self.attn(tokens, tokens, tokens)[0]

    assert "attn" in refusal(Attention(), (8, 4, 4))

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 8, batch_first=True)

        def forward(self, x):
            return self.rnn(x.flatten(2).transpose(1, 2))[0]

    assert "rnn" in refusal(Recurrent(), (8, 4, 4))

    class Matmul(nn.Module):
        def forward(self, x):
            return x @ x.transpose(2, 3)

    assert "matmul" in refusal(Matmul(), (3, 4, 4))

    class Embedding(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(10, 4)

        def forward(self, x):
            return self.table(x.long().flatten(1))

    assert "embedding" in refusal(Embedding(), (1, 2, 2))


def test_a_channel_reduction_over_a_feature_map_is_refused():
    class ChannelMean(nn.Module):
        def forward(self, x):
            return x.mean(1)

    assert "only a global mean or max" in refusal(ChannelMean())


class Gated(nn.Module):
    """A stem, then a block with a projection shortcut that the model skips for some inputs; its own
    gating output says which option each input ran (skip, or one of two precisions)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.block = nn.ModuleDict({"conv": nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                    "proj": nn.Conv2d(8, 16, 1, stride=2)})
        self.head = nn.Linear(16, 4)

    def forward(self, x, run=None):
        h = F.relu(self.stem(x))
        short = self.block["proj"](h)
        run = x[:, 0, 0, 0] > -0.5 if run is None else run
        out = short.clone()
        if bool(run.any()):
            out[run] = F.relu(self.block["conv"](h[run])) + short[run]
        choice = torch.where(run, 1 + (x[:, 0, 0, 1] > 0).long(), 0)  # 0 skip, 1 w4a8, 2 full
        return self.head(out.mean((2, 3))), choice


def gated_recorder(model, options=(Option("skip", 0, 0), Option("w4a8", 4, 8), Option("full", 32, 32, True))):
    recorder = Recorder(model, (1, 8, 8), options, name="gated")
    recorder.unit("block", model.block)
    recorder.shortcut(model.block["proj"])
    recorder.fixed(model.head, w_bits=8, a_bits=8)
    return recorder


def test_units_and_precision_rules_follow_the_marks():
    network = gated_recorder(Gated()).network()
    rules = {layer.name: (layer.precision, layer.unit, layer.w_bits, layer.a_bits) for layer in network.layers}
    assert rules == {"stem": ("full", None, 0, 0), "block.proj": ("shortcut", 0, 0, 0),
                     "block.conv": ("unit", 0, 0, 0), "mean": ("full", None, 0, 0), "head": ("fixed", None, 8, 8)}
    assert network.units == ("block",)


def test_marking_errors_are_one_line():
    model = Gated()
    with pytest.raises(InputError, match="registered twice"):
        Recorder(model, (1, 8, 8)).unit("a", model.stem).unit("a", model.head)
    with pytest.raises(InputError, match="not a submodule"):
        Recorder(model, (1, 8, 8)).unit("a", nn.Conv2d(1, 1, 1))
    with pytest.raises(InputError, match="lies in no unit"):
        Recorder(model, (1, 8, 8)).shortcut(model.stem).network()
    holder = Wrap(nn.Conv2d(1, 1, 1))
    holder.unused = nn.Conv2d(1, 1, 1)
    with pytest.raises(InputError, match="no layer ran while deriving"):
        Recorder(holder, (1, 4, 4)).unit("u", holder.unused).network()


def sample(n=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=generator), torch.randint(0, 4, (n,), generator=generator)


def test_record_writes_a_trace_with_asymmetric_options_that_simulates(tmp_path):
    model = Gated()
    x, y = sample()
    path, summary = gated_recorder(model).record(
        tmp_path / "gated.npz", [(x[i:i + 16], y[i:i + 16]) for i in range(0, len(x), 16)],
        decide=lambda out: out[1], predict=lambda out: out[0].argmax(1))  # the model's own gating output
    trace = load_trace(path)
    with torch.no_grad():
        logits, choice = model(x)
    assert trace.n_inputs == 48 and np.array_equal(trace.decisions[:, 0], choice.numpy())
    assert np.array_equal(trace.predictions, logits.argmax(1).numpy()) and np.array_equal(trace.labels, y.numpy())
    assert len(np.unique(trace.decisions)) == 3
    assert summary["option_shares_pct"]["block"]["skip"] == pytest.approx(100 * np.mean(choice.numpy() == 0))
    assert [(o.weight_bits, o.act_bits) for o in trace.options] == [(0, 0), (4, 8), (32, 32)]
    result = dfs_sim.simulate(trace, "loom")  # Loom scales with weight and activation bits
    cases = {c["option"]: c["declared_bits"] for c in result.summary["precision_mapping"]["cases"]}
    assert cases["w4a8"] == [4, 8]
    assert trace.provenance["source"] == "dfs_sim.model.recorder"


def test_decisions_must_match_what_the_model_ran(tmp_path):
    model = Gated()
    x, y = sample(16)
    recorder = gated_recorder(model)
    with pytest.raises(InputError) as err:  # the block ran for every input, the decisions say half skipped
        recorder.record(tmp_path / "t.npz", [(x, y)], forward=lambda m, bx: m(bx, torch.ones(len(bx), dtype=bool)),
                        decide=lambda out: torch.arange(len(out[1])) % 2, predict=lambda out: out[0].argmax(1))
    assert "block.conv" in str(err.value) and "ran for 16 inputs" in str(err.value) and "say 8" in str(err.value)
    assert not (tmp_path / "t.npz").exists()


def test_densities_are_the_nonzero_share_of_the_maps_each_layer_reads_and_writes():
    model = Gated()
    x, y = sample(40)
    run = torch.arange(40) < 25
    recorder = gated_recorder(model)
    with recorder.measure() as probe:
        with torch.no_grad():
            model(x, run)
    recorder.check_runs(probe, run.long().numpy()[:, None] * 2)  # skip, or full precision
    layers = {layer.name: layer for layer in recorder.network(probe).layers}
    with torch.no_grad():
        h = F.relu(model.stem(x))
        conv_in = h[run]
        short = model.block["proj"](h)
        out = short.clone()
        out[run] = F.relu(model.block["conv"](conv_in)) + short[run]

    def density(t):
        return round(int(torch.count_nonzero(t)) / t.numel(), 4)

    assert layers["stem"].input_density is None  # reads the network input
    assert layers["stem"].output_density == density(h)  # measured where the projection reads it first
    assert layers["block.proj"].input_density == density(h)
    assert layers["block.conv"].input_density == density(conv_in)  # over the 25 inputs that ran it
    assert layers["block.conv"].output_density == density(out)  # the block output, where the mean reads it
    assert layers["block.proj"].output_density == density(out)
    assert layers["mean"].input_density == density(out) and layers["mean"].output_density is None
    assert layers["head"].input_density is None  # vectors carry no density


def test_shared_modules_under_two_wrappers_are_two_sets_of_layers():
    class AtScale(nn.Module):
        def __init__(self, net, scale):
            super().__init__()
            self.net, self.scale = net, scale

        def forward(self, x):
            return self.net(x * self.scale)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                nn.Linear(4, 2))
            self.first, self.second = AtScale(net, 1.0), AtScale(net, 2.0)

        def forward(self, x):
            return self.first(x) + self.second(x)

    model = Twice()
    recorder = Recorder(model, (1, 6, 6), (Option("skip", 0, 0), Option("8bit", 8, 8)))
    recorder.fixed(model.first, w_bits=4, a_bits=4)
    recorder.unit("second", model.second)
    network = recorder.network()
    assert [(layer.name, layer.precision) for layer in network.layers] == [
        ("first.net.0", "fixed"), ("first.net.2", "fixed"), ("first.net.4", "fixed"),
        ("second.net.0", "unit"), ("second.net.2", "unit"), ("second.net.4", "unit")]
    assert network.layers[0].reads_input and network.layers[3].reads_input  # x * 2.0 is still the input


def test_a_layer_that_only_runs_while_recording_is_refused():
    class Sometimes(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 1), nn.Conv2d(2, 2, 1)

        def forward(self, x, deep=False):
            x = self.a(x)
            return self.b(x) if deep else x

    model = Sometimes()
    recorder = Recorder(model, (1, 4, 4))
    with pytest.raises(InputError, match="run_all must run every layer"):
        with recorder.measure():
            with torch.no_grad():
                model(torch.zeros(2, 1, 4, 4), deep=True)


def test_network_from_torch_writes_a_loadable_yaml(tmp_path):
    models = tmp_path / "mymodels.py"
    models.write_text("import torch.nn as nn\n"
                      "def small():\n"
                      "    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
                      "                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.AdaptiveAvgPool2d(1),\n"
                      "                         nn.Flatten(), nn.Linear(8, 10))\n")
    out = tmp_path / "net.yaml"
    assert main(["network", "--from-torch", f"{models}:small", "--input-shape", "1,28,28", "--bits", "4/4",
                 "-o", str(out)]) == 0
    layer_lines = [line for line in out.read_text().splitlines() if line.startswith("  - ")]
    assert len(layer_lines) == 5 and not any("h_out" in line or "macs" in line for line in layer_lines)
    network = load_network(out)
    assert [layer.kind for layer in network.layers] == ["conv", "pool", "conv", "pool", "fc"]
    assert all(layer.precision == "fixed" and layer.w_bits == 4 for layer in network.layers)
    assert network.layers[2].groups == 8 and network.layers[1].h_out == 14
    result = dfs_sim.simulate_network(network, "stripes", reference="8/8")
    assert result.summary["reference"]["metrics"]["energy_uj"]["pct"] < 100  # 4 bits cost less than 8


def test_network_from_torch_errors_are_one_line(tmp_path, capsys):
    cases = [(["--from-torch", "nowhere_module_xyz:f", "--input-shape", "1,8,8"], "cannot import"),
             (["--from-torch", "torch.nn:Conv2dd", "--input-shape", "1,8,8"], "has no attribute"),
             (["--from-torch", "torch.nn:Conv2d", "--input-shape", "1,8"], "C,H,W"),
             (["--from-torch", "torch.nn:Identity", "--input-shape", "1,8,8"], "ran no layer")]
    for argv, message in cases:
        assert main(["network", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_network_from_torch_without_torch_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None; from dfs_sim.cli import main; "
            "sys.exit(main(['network', '--from-torch', 'x:y', '--input-shape', '1,8,8']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "dfs-sim[model]" in done.stderr and len(done.stderr.strip().splitlines()) == 1
