"""Stripes (Judd et al., MICRO 2016): activations bit-serial, weights 16-bit parallel.

A serial inner-product lane multiplies one activation bit by a 16-bit weight per cycle, so a
convolution step takes as many cycles as the activation has bits; 16x more windows run in
parallel than on DaDianNao to make up for it, which makes Stripes equal to DaDianNao at 16 bits
and 16/p times faster at p bits. Fully-connected layers have one window per input, so the
window lanes sit idle; Stripes then runs them no faster than its bit-parallel baseline (Sec. 4
of the paper). One op = one lane-cycle (1-bit activation x 16-bit weight).
"""
from __future__ import annotations

import numpy as np

from dfs_sim.hardware.accelerators.base import ComputeModel, Work, array_steps, passes, pool_cycles


class Stripes(ComputeModel):
    name = "stripes"
    serial = "activations"

    def compute(self, config, work: Work):
        weight_passes = passes(work.w_bits, config.max_bits)
        serial_cycles = array_steps(work, config.unroll) * work.a_bits * weight_passes
        # Fully-connected: the bit-parallel fallback, one window per cycle on the K x C lanes.
        bit_parallel = dict(config.unroll)
        bit_parallel.pop("P", None)
        parallel_cycles = (array_steps(work, bit_parallel) * weight_passes
                           * passes(work.a_bits, config.max_bits))
        cycles = np.where(work.is_vector, np.minimum(serial_cycles, parallel_cycles), serial_cycles)
        ops = work.macs * work.a_bits * weight_passes
        pool = work.is_pool
        cycles = np.where(pool, pool_cycles(work, config.vector_lanes), cycles)
        ops = np.where(pool, work.macs, ops)
        return cycles, ops
