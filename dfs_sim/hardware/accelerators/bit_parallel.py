"""Bit-parallel datapath (DaDianNao, Eyeriss): every MAC takes the full native width.

Precision below the native width saves nothing; a wider operand takes extra passes
(a 32-bit operand on a 16-bit datapath: 2 passes per operand, 4 per MAC).
One op = one native-width MAC.
"""
from __future__ import annotations

import numpy as np

from dfs_sim.hardware.accelerators.base import ComputeModel, Work, array_steps, passes, pool_cycles


class BitParallel(ComputeModel):
    name = "bit_parallel"

    def effective_bits(self, config, w_bits, a_bits):
        # Narrower operands occupy the full datapath anyway.
        return np.maximum(w_bits, config.native_bits), np.maximum(a_bits, config.native_bits)

    def compute(self, config, work: Work):
        n_passes = passes(work.w_bits, config.max_bits) * passes(work.a_bits, config.max_bits)
        cycles = array_steps(work, config.unroll) * n_passes
        ops = work.macs * n_passes
        pool = work.is_pool
        cycles = np.where(pool, pool_cycles(work, config.vector_lanes), cycles)
        ops = np.where(pool, work.macs, ops)
        return cycles, ops
