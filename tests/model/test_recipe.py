"""The reference recipe's pieces, each against a hand computation: activation-range statistic,
calibration, gate initialisation, quantized projection, option sets without full precision,
the validation split, and checkpoint selection."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dfs_sim.model import train  # noqa: E402
from dfs_sim.model.gated_resnet import FULL, GatedResNet, ModelConfig, parse_options, resolve_force  # noqa: E402
from dfs_sim.model.quant import QConv2d, QLinear, fake_quantize  # noqa: E402
from dfs_sim.errors import InputError  # noqa: E402


def model(**overrides):
    torch.manual_seed(0)
    config = dict(depths=(2, 1, 1), in_channels=1, input_size=12, num_classes=10)
    return GatedResNet(ModelConfig.from_dict({**config, **overrides}))


def test_reference_range_is_the_mean_of_per_sample_extremes_with_weight_0_9_on_the_new_batch():
    conv = QConv2d(1, 1, 3, act_range="reference").train()
    x = torch.stack([torch.full((1, 4, 4), v) for v in (1.0, 3.0)])
    x[0, 0, 0, 0], x[1, 0, 0, 0] = -2.0, 7.0  # sample extremes: (-2, 1) and (3, 7)
    conv(x)  # full precision: the reference updates only when it quantizes
    assert not bool(conv.act_seen)
    conv(x, bits=8)
    assert (float(conv.act_min), float(conv.act_max)) == (0.5, 4.0)  # means of (-2, 3) and (1, 7)
    conv(x + 10, bits=8)
    assert float(conv.act_min) == pytest.approx(0.1 * 0.5 + 0.9 * 10.5)
    assert float(conv.act_max) == pytest.approx(0.1 * 4.0 + 0.9 * 14.0)


def test_batch_range_is_the_legacy_global_extremes_updated_on_every_call():
    conv = QConv2d(1, 1, 3, act_range="batch").train()
    x = torch.linspace(-1, 5, 32).view(2, 1, 4, 4)
    conv(x)
    assert (float(conv.act_min), float(conv.act_max)) == (-1.0, 5.0)
    conv(x * 2)
    assert float(conv.act_max) == pytest.approx(0.9 * 5 + 0.1 * 10)


def test_calibration_sets_never_set_ranges_from_full_precision_runs():
    from dfs_sim.model.data import DATASETS, Batches

    net = model()
    images = (torch.rand(64, 1, 12, 12) * 255).to(torch.uint8)
    batches = Batches(images, torch.zeros(64, dtype=torch.long), DATASETS["fashion-mnist"], 16, train=False)
    convs = [m for m in net.modules() if isinstance(m, (QConv2d, QLinear))]  # the classifier too
    assert not any(bool(c.act_seen) for c in convs)
    assert train.calibrate_ranges(net, batches, 3) == len(convs)
    assert all(bool(c.act_seen) and float(c.act_max) > float(c.act_min) for c in convs)
    # Block 1's conv reads the post-ReLU stem output: the mean of per-sample minima is 0; and its max is
    # the mean over the 48 calibration inputs of each one's largest stem activation.
    first = net.blocks[0].conv1
    assert float(first.act_min) == 0.0
    net.eval()  # calibration ran the network in eval mode (BN running statistics)
    with torch.no_grad():
        x = (images[:48].float() / 255 - 0.2860) / 0.3530
        stem = torch.relu(net.stem_bn(net.stem(x)))
    assert float(first.act_max) == pytest.approx(float(stem.flatten(1).amax(1).mean()), rel=1e-5)
    assert train.calibrate_ranges(net, batches, 3) == 0  # already set: left alone


def test_reference_gate_initialisation_has_the_reference_spread():
    net = model(options=parse_options("skip,8,10,12,14,16,full"))
    fc = net.gate_fc.weight.detach()
    embeds = torch.cat([g.embed.weight.detach().flatten() for g in net.gates])
    assert fc.std().item() == pytest.approx(math.sqrt(2 / 70), rel=0.3)  # normal(0, sqrt(2/(7*10)))
    assert embeds.std().item() == pytest.approx(math.sqrt(2 / 10), rel=0.15)  # normal(0, sqrt(2/10))
    default = model(gate_init="pytorch").gate_fc.weight.detach()
    assert default.abs().max() <= 1 / math.sqrt(10) + 1e-6  # PyTorch's uniform(-1/sqrt(in), 1/sqrt(in))


def test_quantized_projection_runs_at_the_block_bits_and_full_precision_when_skipped():
    net = model()
    down = net.blocks[2]  # block 3: stride 2 with a projection
    net.train()
    x = torch.randn(8, 16, 12, 12)
    down.shortcut(x, 8)  # sets the projection's range
    net.eval()
    q = down.shortcut(x, 4)
    conv = down.proj[0]
    lo, hi = conv.act_min, conv.act_max
    w = fake_quantize(conv.weight, 4, *torch.aminmax(conv.weight))
    expected = down.proj[1](torch.nn.functional.conv2d(fake_quantize(x, 4, lo, hi), w, stride=2))
    assert torch.allclose(q, expected, atol=1e-6)
    skip = next(k for k, o in enumerate(net.options) if o.is_skip)
    assert torch.equal(net._run_chosen(down, x, torch.full((8,), skip)), down.proj(x))  # full precision
    legacy = model(projection="full").blocks[2]
    assert not legacy.quantized_projection and isinstance(legacy.proj[0], torch.nn.Conv2d)


def test_low_bit_option_set_without_full_precision():
    net = model(options=parse_options("skip,2,4,8"))
    assert net.full_index is None and net.options[net.top_index].name == "8bit"
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(4, 1, 12, 12), force=FULL, gates=False)
    assert torch.all(out.decisions == -1)
    assert torch.all(net.computation(out.decisions) == 1.0)  # full precision counts as 1, whatever the set
    assert resolve_force(net, "2bit") == 1 and resolve_force(net, "4") == 2
    assert resolve_force(net, "8,4,2") == [3, 2, 1]
    with pytest.raises(InputError, match="unknown option 'full'"):
        resolve_force(net, "full")
    with pytest.raises(InputError, match="one per gated block"):
        resolve_force(net, "8,4")


def test_the_validation_split_is_fixed_disjoint_and_seed_independent():
    images = torch.arange(100).view(100, 1, 1, 1).to(torch.uint8)
    labels = torch.arange(100)
    (tx, ty), (vx, vy) = train.split_train_val(images, labels, 20)
    assert len(vy) == 20 and len(ty) == 80 and set(ty.tolist()).isdisjoint(vy.tolist())
    torch.manual_seed(123)
    (_, ty2), (_, vy2) = train.split_train_val(images, labels, 20)
    assert torch.equal(vy, vy2) and torch.equal(ty, ty2)
    with pytest.raises(InputError, match="--val-size"):
        train.split_train_val(images, labels, 100)


def test_checkpoint_selection_prefers_accuracy_within_tolerance_then_closeness():
    def entry(acc, cost):
        return {"accuracy_pct": acc, "cost_pct": cost}

    assert train._better(entry(90, 31.5), entry(92, 36), budget=30, tolerance=2)  # within beats outside
    assert train._better(entry(92, 28.5), entry(90, 31.5), budget=30, tolerance=2)  # within: accuracy
    assert not train._better(entry(95, 40), entry(80, 35), budget=30, tolerance=2)  # outside: closeness
    assert train._better(entry(91, 0), entry(90, 0), budget=None, tolerance=2)  # static: accuracy alone


def test_real_cost_table_comes_from_the_simulator():
    import dfs_sim
    from dfs_sim.model.layer_table import derive_network

    net = model(options=parse_options("skip,2,4,8"))
    costs, info = train.stage_costs(net, "energy@bitfusion", "cpu")
    expected = dfs_sim.unit_costs(derive_network(net), net.options, "bitfusion", "energy")
    assert np.allclose(costs.numpy(), expected, rtol=1e-6)
    assert costs.shape == (net.n_units, 4) and info["metric"] == "energy" and info["hw"] == "bitfusion"
    assert np.all(np.diff(costs.numpy()[:, 1:], axis=1) >= 0)  # more bits never cost less energy here
    proxy, none = train.stage_costs(net, "proxy", "cpu")
    assert none is None and torch.allclose(proxy[0], net.costs)
    with pytest.raises(InputError, match="METRIC@HW"):
        train.stage_costs(net, "energy", "cpu")


def test_greedy_static_search_lowers_the_cheapest_loss_per_cost_first():
    from dfs_sim.model.static_search import greedy_path, pick

    costs = np.array([[0.0, 0.2, 1.0], [0.0, 0.2, 1.0]])  # per block: skip, low, high
    # Block 0 is robust (lowering it loses little), block 1 fragile.
    loss = {(0, 2): 0.1, (0, 1): 5.0, (0, 0): 50.0, (1, 2): 0.0, (1, 1): 20.0, (1, 0): 60.0}

    def evaluate(options):
        return 90.0 - sum(loss[(b, k)] for b, k in enumerate(options)) + loss[(0, 2)]

    path = greedy_path(evaluate, costs, log=lambda _: None)
    # Step 1: block 0 loses 4.9 points for 40 saved (0.12/point), block 1 20 for 40 (0.5): block 0.
    # Step 2: block 0 would lose 45 for 10 (4.5/point), block 1 20 for 40: block 1. Step 3: block 0
    # 45 for 10, block 1 40 for 10: block 1. Then block 0.
    assert [p["options"] for p in path] == [[2, 2], [1, 2], [1, 1], [1, 0], [0, 0]]
    assert [round(p["cost_pct"], 1) for p in path] == [100.0, 60.0, 20.0, 10.0, 0.0]
    assert [round(p["accuracy_pct"], 1) for p in path] == [90.0, 85.1, 65.1, 25.1, -19.9]
    assert pick(path, 55)["options"] == [1, 1] and pick(path, 100)["options"] == [2, 2]


def test_sensitivity_search_ranks_every_mix_by_summed_damage_within_the_target():
    from dfs_sim.errors import InputError
    from dfs_sim.model.static_search import ranked_mixes

    costs = np.array([[0.0, 0.2, 1.0], [0.0, 0.2, 1.0]])  # per block: skip, low, high
    damage = np.array([[5.0, 1.0, 0.0], [9.0, 0.5, 0.0]])
    # At 60 %: (high, high) costs 100 % and is out; of the rest, by summed damage: (high, low) 0.5,
    # (low, high) 1.0, (low, low) 1.5, (skip, high) 5.0.
    ranked = ranked_mixes(damage, costs, 60, 3)
    assert [m["options"] for m in ranked] == [[2, 1], [1, 2], [1, 1]]
    assert [round(m["cost_pct"], 6) for m in ranked] == [60.0, 60.0, 20.0]
    assert [m["damage"] for m in ranked] == [0.5, 1.0, 1.5]
    # Equal damage: the dearer mix first (60 %, then 50 %), then the earlier vector.
    tied = ranked_mixes(np.zeros((2, 3)), costs, 60, 4)
    assert [m["options"] for m in tied] == [[1, 2], [2, 1], [0, 2], [2, 0]]
    assert ranked_mixes(damage, costs, -1, 3) == []
    with pytest.raises(InputError, match="mixes, more than"):
        ranked_mixes(np.zeros((12, 4)), np.ones((12, 4)), 50, 1)


def test_block_damage_is_the_loss_one_lowered_block_adds_to_the_all_top_network():
    from dfs_sim.model.static_search import block_damage

    half = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=torch.float64))
    # Block 0 at option 0: sure of class 0 (right on input 0, wrong on input 1); block 1 at option 0: no change.
    lowered = {(0, 2): torch.log(torch.tensor([[0.9, 0.1], [0.9, 0.1]], dtype=torch.float64))}

    def predict(options):
        return lowered.get(tuple(options), half)

    damage = block_damage(predict, torch.tensor([0, 1]), top=[1, 2], n_options=3)
    # Cross-entropy: ln 2 from all-top; lowered, (-ln 0.9 - ln 0.1) / 2.
    assert damage[0, 0] == pytest.approx((-np.log(0.9) - np.log(0.1)) / 2 - np.log(2))
    assert damage[0, 1] == 0 and damage[1].tolist() == [0.0, 0.0, 0.0]
    # Lowering a block can help: then its damage is negative.
    helped = block_damage(predict, torch.tensor([0, 0]), top=[1, 2], n_options=3)
    assert helped[0, 0] == pytest.approx(-np.log(0.9) - np.log(2)) and helped[0, 0] < 0


def test_fixed_bits_quantize_the_layers_no_gate_decides():
    from dfs_sim.workload.resnet import dfs_resnet

    x = torch.randn(16, 1, 12, 12)
    low = model(options=parse_options("skip,2,4,8"), fixed_bits=8)
    plain = model(options=parse_options("skip,2,4,8"))
    plain.load_state_dict(low.state_dict())
    for net in (low, plain):  # ranges from quantized training passes, then eval
        net.train()
        with torch.no_grad():
            net(x, candidates="all")
        net.eval()
    plain.load_state_dict(low.state_dict())
    with torch.no_grad():
        skip_all = [0] * low.n_units
        fixed = low(x, force=skip_all, gates=False).logits
        full = plain(x, force=skip_all, gates=False).logits
        # Everything quantized by hand: the stem, block 1, the two skipped projections and the classifier at 8 bits.
        q = lambda t, m: fake_quantize(t, 8, m.act_min, m.act_max)  # noqa: E731
        w = lambda m: fake_quantize(m.weight, 8, *torch.aminmax(m.weight))  # noqa: E731
        h = torch.relu(low.stem_bn(torch.nn.functional.conv2d(q(x, low.stem), w(low.stem), padding=1)))
        h = low.blocks[0].execute(h, h, 8)
        for block in low.blocks[1:]:
            h = block.shortcut(h, 8)
        by_hand = torch.nn.functional.linear(q(h.mean((2, 3)), low.fc), w(low.fc), low.fc.bias)
    assert torch.allclose(fixed, by_hand, atol=1e-5) and not torch.allclose(fixed, full)
    rules = {layer.name: (layer.precision, layer.w_bits) for layer in dfs_resnet((2, 1, 1), fixed_bits=8).layers}
    assert rules["stem"] == rules["block1.conv1"] == rules["fc"] == ("fixed", 8)
    assert rules["block3.proj"] == ("shortcut", 8) and rules["block2.conv1"] == ("unit", 0)
    proj = next(layer for layer in dfs_resnet((2, 1, 1), fixed_bits=8).layers if layer.name == "block3.proj")
    cases = np.array([[0, 0], [2, 2], [8, 8], [32, 32]])  # skip, 2, 8, the full-precision reference
    assert proj.case_bits(cases).tolist() == [[8, 8], [2, 2], [8, 8], [32, 32]]
