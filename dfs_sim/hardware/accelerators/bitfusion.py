"""Bit Fusion (Sharma et al., ISCA 2018): 2-bit BitBricks fused into Fusion Units.

A Fusion Unit does one 8x8-bit MAC per cycle, or floor(8/max(a,2)) * floor(8/max(w,2)) narrower
ones: operands round up to 2, 4 or 8 bits (a 1-bit operand runs as 2-bit). The array's rows
reduce over input channels, so fusion multiplies the reduction lanes. An operand wider than 8
bits is split into 8-bit slices that take one pass each (16x16 bits: 4 passes). The authors'
simulator has no such case and fails on it (a zero throughput factor); slicing is how a fixed
8-bit fusion datapath computes wider products. One op = one MAC; Bit Fusion's energy is charged
per busy array cycle instead (compute.energy_pj_per_cycle).
"""
from __future__ import annotations

import numpy as np

from dfs_sim.hardware.accelerators.base import ArrayMapping, ComputeModel, Work, passes, unrolled


class BitFusion(ComputeModel):
    name = "bitfusion"
    serial = "none (spatially fused bit-bricks)"

    def effective_bits(self, config, w_bits, a_bits):
        return _fused_width(config, w_bits), _fused_width(config, a_bits)

    def fusion(self, config, work: Work) -> tuple[np.ndarray, np.ndarray]:
        """(MACs per Fusion Unit per cycle, passes) at the entry's bits."""
        top = config.precision.max_bits
        narrow = (top // np.minimum(work.a_bits, top)) * (top // np.minimum(work.w_bits, top))
        return narrow, passes(work.a_bits, top) * passes(work.w_bits, top)

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        u_k, u_c, u_p, u_n = unrolled(config, len(work.macs))
        per_unit, n_passes = self.fusion(config, work)
        return ArrayMapping(u_k=u_k, u_c=u_c * per_unit, u_p=u_p, u_n=u_n, cycles_per_step=np.ones(len(work.macs)),
                            passes=n_passes)

    def ops(self, config, work: Work) -> np.ndarray:
        return work.macs.astype(np.float64)


def _fused_width(config, bits):
    """Round up to a width the bricks fuse to (2, 4, 8), or to whole 8-bit slices when wider."""
    bits = np.maximum(np.asarray(bits), config.precision.min_bits)
    top = config.precision.max_bits
    fused = top // (top // np.minimum(bits, top))
    return np.where(bits > top, passes(bits, top) * top, fused)
