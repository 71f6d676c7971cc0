"""Stripes (Judd et al., MICRO 2016): activations bit-serial, weights 16-bit parallel.

A serial inner-product lane multiplies one activation bit by a 16-bit weight per cycle, so a
convolution step takes as many cycles as the activation has bits; 16x more windows run in
parallel than on DaDianNao to make up for it, which makes Stripes equal to DaDianNao at 16 bits
and 16/p times faster at p bits.

Fully-connected layers have one window per input. The window columns then take different filters
in turn, as DNNsim (the Stripes group's simulator, core/src/Stripes.cpp, FC_MULTIPLEX_COLUMNS) does:
a new column starts every cycle, each busy for p cycles, so the array consumes one column of weights
per cycle, as many as DaDianNao does, and an FC step (all filter rows x 16 lanes) takes max(1, p/16)
cycles: DaDianNao's rate at any p <= 16 and any output count. With a batch, the columns can instead
take different inputs sharing the weights (p cycles for 16 inputs), whichever is faster.

One op = one lane-cycle (1-bit activation x 16-bit weight). `array.params.first_layer` says how the
lanes take the network input (base.FIRST_LAYER_MAPPINGS).
"""
from __future__ import annotations

import numpy as np

from dfs_sim.hardware.accelerators.base import ArrayMapping, FirstLayerMapped, Work, ceil_div, passes, unrolled


class Stripes(FirstLayerMapped):
    name = "stripes"
    serial = "activations"

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        u_k, u_c, u_p, u_n = unrolled(config, len(work.macs))
        a_bits = work.a_bits.astype(np.float64)
        columns = u_p
        # FC, columns over filters: one weight column per cycle, each column busy a_bits cycles.
        filters_rate = np.maximum(1.0, a_bits / columns)
        # FC, columns over the batch's inputs: a_bits cycles for `columns` inputs.
        batch_faster = ceil_div(work.n, columns) * a_bits < work.n * filters_rate
        vector = work.is_vector
        over_filters = vector & ~batch_faster
        return ArrayMapping(u_k=u_k, u_c=u_c, u_p=np.where(over_filters, 1, u_p), u_n=u_n,
                            cycles_per_step=np.where(over_filters, filters_rate, a_bits),
                            passes=passes(work.w_bits, config.precision.max_bits))

    def ops(self, config, work: Work) -> np.ndarray:
        return work.macs * work.a_bits * passes(work.w_bits, config.precision.max_bits)
