"""Uniform fake quantization with a straight-through backward.

Weights and activations are quantized per tensor, asymmetric over [min, max], with
deterministic round-half-to-even. (The reference DFS code passes `num_chunks` into the
`stochastic` slot of its quantizer, so its activations are stochastically rounded even at
evaluation time; here rounding is deterministic in training and inference alike.)

Nested mode: every b-bit code is the top b bits of the widest (B-bit) code, i.e.
q_b = q_B >> (B - b), dequantized at the centre of its bucket. A weight tensor stored as B bit
planes can then run at b bits by fetching only its top b planes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fake_quantize(x: torch.Tensor, bits: int, lo: torch.Tensor, hi: torch.Tensor,
                  top_bits: int | None = None) -> torch.Tensor:
    """Quantize `x` to `bits` over [lo, hi] and dequantize; the gradient passes straight through.

    With `top_bits` (nested mode) the value is first coded with `top_bits` bits and then keeps
    only the top `bits` of that code.
    """
    return _FakeQuantize.apply(x, bits, lo, hi, top_bits)


class _FakeQuantize(torch.autograd.Function):
    # A Function rather than x + (q(x) - x).detach(): in-place arithmetic on one new tensor and
    # no extra graph nodes, since this is most of the per-element work of a quantized block.
    @staticmethod
    def forward(ctx, x, bits, lo, hi, top_bits):
        code_bits = top_bits if top_bits is not None else bits
        levels = 2.0 ** code_bits - 1
        scale = (hi - lo).clamp_min(1e-8) / levels
        q = (x - lo).div_(scale).round_().clamp_(0, levels)
        if code_bits > bits:
            step = 2.0 ** (code_bits - bits)
            q.div_(step).floor_().mul_(step).add_((step - 1) / 2)  # keep the top `bits` of the code
        return q.mul_(scale).add_(lo)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None, None, None


ACT_RANGES = ("reference", "batch")


class _ActivationRange:
    """The running input range of a quantizable layer, and how training updates it (`act_range`).

    In eval the range is a running one, so one input's result never depends on the rest of its
    batch. In training:

    - "reference" (the DFS reference's QuantMeasure): the batch statistic is the mean over samples
      of each sample's min and max, which clips outliers; running = 0.1 * running + 0.9 * batch;
      updated only when the layer quantizes. A network trained only at full precision therefore
      needs `calibrate_ranges` before it can run quantized.
    - "batch" (this project's first recipe): the batch's global min and max; running =
      0.9 * running + 0.1 * batch; updated on every training call, full precision included.
    """

    def _init_range(self, act_range: str) -> None:
        assert act_range in ACT_RANGES, act_range
        self.act_range = act_range
        self.calibrating = False  # set by calibrate_ranges: accumulate the statistic, don't quantize
        self.register_buffer("act_min", torch.zeros(()))
        self.register_buffer("act_max", torch.zeros(()))
        self.register_buffer("act_seen", torch.zeros((), dtype=torch.bool))
        self._sums = None

    def _statistic(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.act_range == "batch":
            return torch.aminmax(x)
        lo, hi = torch.aminmax(x.flatten(1), dim=1)
        return lo.mean(), hi.mean()

    def _update(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        weight = 0.1 if self.act_range == "batch" else 0.9  # of the new batch statistic
        if bool(self.act_seen):
            self.act_min.lerp_(lo, weight)
            self.act_max.lerp_(hi, weight)
        else:
            self.act_min.copy_(lo)
            self.act_max.copy_(hi)
            self.act_seen.fill_(True)

    def _quantized_operands(self, x: torch.Tensor, bits: int | None, top_bits: int | None):
        """The input and weight this call computes with: fake-quantized to `bits`, or as they are."""
        if self.calibrating:
            with torch.no_grad():
                lo, hi = self._statistic(x.detach())
                n = x.shape[0]
                sums = self._sums if self._sums is not None else [0.0, 0.0, 0]
                self._sums = [sums[0] + float(lo) * n, sums[1] + float(hi) * n, sums[2] + n]
            return x, self.weight
        if self.training and (bits is not None or self.act_range == "batch"):
            with torch.no_grad():
                lo, hi = self._statistic(x.detach())
                self._update(lo, hi)
        else:
            lo, hi = self.act_min, self.act_max
        weight = self.weight
        if bits is not None:
            x = fake_quantize(x, bits, lo, hi, top_bits)
            w_lo, w_hi = torch.aminmax(weight.detach())
            weight = fake_quantize(weight, bits, w_lo, w_hi, top_bits)
        return x, weight

    def finish_calibration(self) -> None:
        """Set the running range to the mean statistic over every input seen while calibrating."""
        if self._sums is not None and self._sums[2] > 0:
            lo, hi, n = self._sums
            self.act_min.fill_(lo / n)
            self.act_max.fill_(hi / n)
            self.act_seen.fill_(True)
        self._sums = None
        self.calibrating = False


class QConv2d(_ActivationRange, nn.Conv2d):
    """A bias-free conv that can quantize its weights and its input to the same bitwidth."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, act_range: str = "reference"):
        super().__init__(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self._init_range(act_range)

    def forward(self, x: torch.Tensor, bits: int | None = None, top_bits: int | None = None) -> torch.Tensor:
        x, weight = self._quantized_operands(x, bits, top_bits)
        return F.conv2d(x, weight, None, self.stride, self.padding)


class QLinear(_ActivationRange, nn.Linear):
    """A linear layer that can quantize its weights and its input to the same bitwidth (its bias stays
    at full precision: it is added once per output, in the accumulator)."""

    def __init__(self, c_in: int, c_out: int, act_range: str = "reference"):
        super().__init__(c_in, c_out)
        self._init_range(act_range)

    def forward(self, x: torch.Tensor, bits: int | None = None) -> torch.Tensor:
        x, weight = self._quantized_operands(x, bits, None)
        return F.linear(x, weight, self.bias)
