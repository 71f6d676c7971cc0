"""Stripes (Judd et al., MICRO 2016): activations bit-serial, weights 16-bit parallel.

A serial inner-product lane multiplies one activation bit by a 16-bit weight per cycle, so a
convolution step takes as many cycles as the activation has bits; 16x more windows run in
parallel than on DaDianNao to make up for it, which makes Stripes equal to DaDianNao at 16 bits
and 16/p times faster at p bits. Fully-connected layers have a single window per input, so the
window columns take different filters instead (weights time-multiplexed across columns): no
faster than DaDianNao at 16 bits (Sec. 4 of the paper). One op = one lane-cycle (1-bit
activation x 16-bit weight).
"""
from __future__ import annotations

import numpy as np

from dfs_sim.hardware.accelerators.base import ArrayMapping, ComputeModel, Work, passes, unrolled


class Stripes(ComputeModel):
    name = "stripes"
    serial = "activations"

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        u_k, u_c, u_p, u_n = unrolled(config, len(work.macs))
        vector = work.is_vector
        u_k = np.where(vector, u_k * u_p, u_k)  # window columns become filter columns
        u_p = np.where(vector, 1, u_p)
        return ArrayMapping(u_k, u_c, u_p, u_n, work.a_bits.astype(np.float64),
                            passes(work.w_bits, config.max_bits))

    def ops(self, config, work: Work) -> np.ndarray:
        return work.macs * work.a_bits * passes(work.w_bits, config.max_bits)
