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


class QConv2d(nn.Conv2d):
    """A bias-free conv that can quantize its weights and its input to the same bitwidth.

    The input range is the batch min/max in training and a running (EMA) range in eval, so
    evaluation of one input never depends on the rest of its batch. The running range is
    updated on every training call, full precision included, so a backbone trained only at
    full precision is already calibrated for quantized evaluation.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, momentum: float = 0.1):
        super().__init__(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self.momentum = momentum
        self.register_buffer("act_min", torch.zeros(()))
        self.register_buffer("act_max", torch.zeros(()))
        self.register_buffer("act_seen", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor, bits: int | None = None, top_bits: int | None = None) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = torch.aminmax(x.detach())
                if bool(self.act_seen):
                    self.act_min.lerp_(lo, self.momentum)
                    self.act_max.lerp_(hi, self.momentum)
                else:
                    self.act_min.copy_(lo)
                    self.act_max.copy_(hi)
                    self.act_seen.fill_(True)
        else:
            lo, hi = self.act_min, self.act_max
        weight = self.weight
        if bits is not None:
            x = fake_quantize(x, bits, lo, hi, top_bits)
            w_lo, w_hi = torch.aminmax(weight.detach())
            weight = fake_quantize(weight, bits, w_lo, w_hi, top_bits)
        return F.conv2d(x, weight, None, self.stride, self.padding)
