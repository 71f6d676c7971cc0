import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from dfs_sim.errors import InputError  # noqa: E402
from dfs_sim.model.layer_table import derive_network  # noqa: E402
from dfs_sim.model.gated_resnet import GatedResNet, ModelConfig, load_weights, parse_options  # noqa: E402
from dfs_sim.workload.resnet import dfs_resnet  # noqa: E402


def small_model(seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(depths=(2, 1, 1), in_channels=1, input_size=12, num_classes=10)  # small maps: fast
    return GatedResNet(ModelConfig.from_dict({**config, **overrides}))


def calibrate(model, x):
    """Give the BN statistics and activation ranges sensible values, then switch to eval."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x, candidates="all")
    return model.eval()


def mixed_gates(model):
    """Large random gate weights so that different inputs choose different options."""
    with torch.no_grad():
        model.gate_fc.weight.normal_(0, 4)
        for gate in model.gates:
            gate.embed.weight.normal_(0, 2)
    return model


def reference_backbone(model, x):
    """A plain full-precision ResNet forward written out with functional ops."""
    def bn(m, t):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    x = F.relu(bn(model.stem_bn, F.conv2d(x, model.stem.weight, padding=1)))
    for block in model.blocks:
        out = F.relu(bn(block.bn1[0], F.conv2d(x, block.conv1.weight, stride=block.conv1.stride, padding=1)))
        out = bn(block.bn2[0], F.conv2d(out, block.conv2.weight, padding=1))
        shortcut = x if block.proj is None else bn(block.proj[1], F.conv2d(x, block.proj[0].weight,
                                                                         stride=block.proj[0].stride))
        x = F.relu(out + shortcut)
    return model.fc(x.mean((2, 3)))


def test_output_shapes():
    model = calibrate(small_model(), torch.randn(16, 1, 12, 12))
    out = model(torch.randn(5, 1, 12, 12))
    assert out.logits.shape == (5, 10)
    assert out.decisions.shape == (5, 3) and out.decisions.dtype == torch.long
    assert out.gate_logits.shape == (5, 3, 4)


def test_same_seed_same_model_and_same_outputs():
    a, b = small_model(seed=3), small_model(seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    x = torch.randn(8, 1, 12, 12)
    a.eval()
    with torch.no_grad():
        assert torch.equal(a(x).logits, a(x).logits)


def test_full_precision_forcing_equals_the_plain_backbone():
    x = torch.randn(16, 1, 12, 12)
    model = calibrate(small_model(), x)
    with torch.no_grad():
        forced = model(x, force=model.full_index, gates=False).logits
        forced_with_gates = model(x, force=model.full_index).logits
        expected = reference_backbone(model, x)
    assert torch.allclose(forced, expected, atol=1e-5)
    assert torch.equal(forced, forced_with_gates)


def test_skip_is_identity_or_the_projection():
    model = calibrate(small_model(), torch.randn(16, 1, 12, 12))
    skip = next(k for k, o in enumerate(model.options) if o.is_skip)
    x = torch.rand(4, 16, 12, 12)
    identity_block = model.blocks[1]  # block2: gated, no downsampling
    assert identity_block.proj is None
    with torch.no_grad():
        assert torch.equal(model._run_chosen(identity_block, x, torch.full((4,), skip)), x)
        down = model.blocks[2]  # block3: stride 2, projection shortcut
        assert torch.equal(model._run_chosen(down, x, torch.full((4,), skip)), down.proj(x))


def test_chosen_only_inference_equals_all_candidates():
    x = torch.randn(64, 1, 12, 12)
    model = mixed_gates(calibrate(small_model(), x))
    with torch.no_grad():
        chosen = model(x, candidates="chosen")
        every = model(x, candidates="all")
    assert len(torch.unique(chosen.decisions)) >= 3  # the grouping is really exercised
    assert torch.equal(chosen.decisions, every.decisions)
    assert torch.equal(chosen.logits.argmax(1), every.logits.argmax(1))
    assert torch.allclose(chosen.logits, every.logits, atol=1e-5)


def test_straight_through_mask_trains_the_gates():
    model = mixed_gates(small_model())
    model.train()
    out = model(torch.randn(16, 1, 12, 12), candidates="all")
    F.cross_entropy(out.logits, torch.randint(0, 10, (16,))).backward()
    assert model.gate_fc.weight.grad.abs().sum() > 0
    assert model.lstm.weight_ih.grad.abs().sum() > 0


def test_exploration_runs_other_options_but_reports_the_gates_decisions():
    x = torch.randn(64, 1, 12, 12)
    model = calibrate(small_model(), x)  # untrained gates: every input chooses the same option per block
    with torch.no_grad():
        plain = model(x, candidates="all")
        explored = [model(x, candidates="all", explore=0.5, generator=torch.Generator().manual_seed(7))
                    for _ in range(2)]
        # Every input explored at every block: the network's output is that of the drawn options.
        drawn = model(x, candidates="all", explore=0.999999, generator=torch.Generator().manual_seed(7))
    for out in (*explored, drawn):  # the gates' own argmax, on the features exploration led to
        assert torch.equal(out.decisions, (out.gate_logits + model.decision_bias).argmax(-1))
        assert torch.equal(out.decisions[:, 0], plain.decisions[:, 0])  # the first gate reads unexplored features
    assert torch.equal(explored[0].logits, explored[1].logits)  # reproducible from the generator
    assert not torch.allclose(explored[0].logits, plain.logits)
    assert not torch.allclose(drawn.logits, explored[0].logits)
    with pytest.raises(InputError, match="explore"):
        model(x, explore=0.5)  # only over all candidates, where the mask mixes them


@pytest.mark.parametrize("options,fixed_bits", [("skip,8,16,full", None), ("skip,2,4,8", 8)])
def test_option_logits_are_the_logits_of_one_block_changed(options, fixed_bits):
    """option_logits[:, u, k] is the classifier's output with gated block u at option k, every other at the top."""
    x = torch.randn(12, 1, 12, 12)
    model = calibrate(small_model(options=parse_options(options), fixed_bits=fixed_bits), x)
    logits = model.option_logits(x)
    assert logits.shape == (12, model.n_units, len(model.options), 10)
    with torch.no_grad():
        for unit in range(model.n_units):
            for k in range(len(model.options)):
                force = [model.top_index] * model.n_units
                force[unit] = k
                expected = model(x, force=force, gates=False).logits
                assert torch.allclose(logits[:, unit, k], expected, atol=1e-5), (unit, k)
    assert not torch.allclose(logits[:, 0, 0], logits[:, 0, model.top_index])  # the changes really change


@pytest.mark.parametrize("depths,channels,size,classes,options,fixed_bits", [
    ((3, 3, 3), 1, 28, 10, "skip,8,16,full", None),
    ((6, 6, 6), 3, 32, 10, "skip,4,6,8,full", None),
    ((12, 12, 12), 3, 32, 100, "skip,8,10,12,14,16,full", None),
    ((2, 1, 1), 1, 28, 10, "skip,8,full", None),
    ((3, 3, 3), 1, 28, 10, "skip,2,4,8", 8),
])
def test_derived_layer_table_equals_dfs_resnet(depths, channels, size, classes, options, fixed_bits):
    model = GatedResNet(ModelConfig(depths=depths, in_channels=channels, input_size=size, num_classes=classes,
                                    options=parse_options(options), fixed_bits=fixed_bits))
    derived = derive_network(model)
    expected = dfs_resnet(depths, in_channels=channels, input_size=size, num_classes=classes,
                          n_options=len(model.options), fixed_bits=fixed_bits)
    assert derived.layers == expected.layers
    assert derived.units == expected.units
    assert derived.input_shape == expected.input_shape


def test_option_parsing_and_validation():
    assert [o["name"] for o in parse_options("skip,4,6,8,full")] == ["skip", "4bit", "6bit", "8bit", "full"]
    with pytest.raises(InputError, match="unknown option 'half'"):
        parse_options("skip,half,full")
    with pytest.raises(InputError, match="unique"):
        parse_options("skip,8,8,full")
    assert [o.name for o in ModelConfig.from_dict({"options": parse_options("skip,2,4,8")}).option_objects()] == \
        ["skip", "2bit", "4bit", "8bit"]  # a low-bit set needs no full-precision option
    with pytest.raises(InputError, match="at most one full-precision option"):
        ModelConfig.from_dict({"options": parse_options("skip,8,full") + [{**parse_options("full")[0], "name": "fp"}]})
    with pytest.raises(InputError, match="needs an option that runs the block"):
        ModelConfig.from_dict({"options": parse_options("skip")})
    with pytest.raises(InputError, match="unknown key"):
        ModelConfig.from_dict({"depth": [3, 3, 3]})


def test_per_option_bn_loads_a_shared_bn_checkpoint():
    x = torch.randn(16, 1, 12, 12)
    shared = calibrate(small_model(), x)
    per_option = small_model(seed=1, bn="per-option")
    load_weights(per_option, shared.state_dict())
    per_option.eval()
    assert len(per_option.blocks[1].bn1) == 3  # one per executed option: 8bit, 16bit, full
    with torch.no_grad():
        for k in range(len(shared.options)):
            assert torch.equal(per_option(x, force=k).logits, shared(x, force=k).logits)


def test_option_harm_of_each_target():
    """loss is the cross-entropy of each one-block change; prob the true class's probability, negated; kl is
    zero on the top option, positive elsewhere, and needs no label."""
    from dfs_sim.model.train import option_harm

    x, y = torch.randn(12, 1, 12, 12), torch.randint(0, 10, (12,))
    model = calibrate(small_model(options=parse_options("skip,2,4,8"), fixed_bits=8), x)
    logits = model.option_logits(x)
    loss = option_harm(model, x, y, "loss")
    assert torch.allclose(loss[:, 1, 0], F.cross_entropy(logits[:, 1, 0], y, reduction="none"))
    assert torch.allclose(option_harm(model, x, y, "prob"), -torch.exp(-loss))
    kl = option_harm(model, x, y, "kl")
    assert torch.equal(kl, option_harm(model, x, torch.zeros_like(y), "kl"))
    assert torch.allclose(kl[:, :, model.top_index], torch.zeros(()), atol=1e-6)
    top = logits[:, 2, model.top_index].log_softmax(-1)
    expected = F.kl_div(logits[:, 2, 0].log_softmax(-1), top, log_target=True, reduction="none").sum(-1)
    assert torch.allclose(kl[:, 2, 0], expected, atol=1e-6) and (kl[:, 2, 0] > 0).all()
