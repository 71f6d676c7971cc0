import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dfs_sim.model.quant import QConv2d, fake_quantize  # noqa: E402


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_values_lie_on_the_grid_and_keep_the_range(bits):
    x = torch.linspace(-1.3, 2.1, 1001)
    lo, hi = x.min(), x.max()
    y = fake_quantize(x, bits, lo, hi)
    scale = (hi - lo) / (2 ** bits - 1)
    codes = (y - lo) / scale
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert len(torch.unique(codes.round())) <= 2 ** bits
    assert y.min() == pytest.approx(float(lo)) and y.max() == pytest.approx(float(hi), rel=1e-6)
    assert torch.max(torch.abs(y - x)) <= scale / 2 + 1e-6


def test_rounding_is_deterministic_and_gradient_is_straight_through():
    x = torch.randn(4096, requires_grad=True)
    y1 = fake_quantize(x, 4, x.detach().min(), x.detach().max())
    y2 = fake_quantize(x, 4, x.detach().min(), x.detach().max())
    assert torch.equal(y1, y2)
    y1.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_nested_code_is_the_top_bits_of_the_widest_code(bits):
    widest = 16
    x = torch.rand(5000, dtype=torch.float64) * 3 - 1
    lo, hi = x.min(), x.max()
    scale = (hi - lo) / (2 ** widest - 1)
    wide_codes = np.clip(np.round(((x - lo) / scale).numpy()), 0, 2 ** widest - 1).astype(np.int64)
    y = fake_quantize(x, bits, lo, hi, top_bits=widest)
    step = 2 ** (widest - bits)
    # Dequantized at the centre of its bucket of wide codes: code_b * step + (step - 1) / 2.
    codes = (((y - lo) / scale).numpy() - (step - 1) / 2) / step
    assert np.allclose(codes, np.round(codes), atol=1e-6)
    assert np.array_equal(np.round(codes).astype(np.int64), wide_codes >> (widest - bits))


def test_eval_activation_range_makes_each_input_independent_of_its_batch():
    torch.manual_seed(0)
    conv = QConv2d(3, 4, 3)
    conv.train()
    for _ in range(5):
        conv(torch.randn(8, 3, 6, 6), bits=4)
    assert bool(conv.act_seen) and conv.act_min < 0 < conv.act_max
    conv.eval()
    x = torch.randn(8, 3, 6, 6)
    with torch.no_grad():
        whole = conv(x, bits=4)
        alone = conv(x[:1], bits=4)
    assert torch.allclose(whole[:1], alone, atol=1e-6)
