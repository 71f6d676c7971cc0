"""Bit-parallel datapath (DaDianNao, Eyeriss): every MAC takes the full native width.

Precision below the native width saves nothing; a wider operand takes extra passes
(a 32-bit operand on a 16-bit datapath: 2 passes per operand, 4 per MAC).
One op = one native-width MAC. `array.params.first_layer` says how the channel lanes take the
network input (base.FIRST_LAYER_MAPPINGS).
"""
from __future__ import annotations

import numpy as np

from dfs_sim.hardware.accelerators.base import ArrayMapping, FirstLayerMapped, Work, passes, unrolled


class BitParallel(FirstLayerMapped):
    name = "bit_parallel"

    def effective_bits(self, config, w_bits, a_bits):
        # Narrower operands occupy the full datapath anyway.
        return np.maximum(w_bits, config.precision.native_bits), np.maximum(a_bits, config.precision.native_bits)

    def _passes(self, config, work: Work) -> np.ndarray:
        return passes(work.w_bits, config.precision.max_bits) * passes(work.a_bits, config.precision.max_bits)

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        u_k, u_c, u_p, u_n = unrolled(config, len(work.macs))
        return ArrayMapping(u_k=u_k, u_c=u_c, u_p=u_p, u_n=u_n, cycles_per_step=np.ones(len(work.macs)),
                            passes=self._passes(config, work))

    def ops(self, config, work: Work) -> np.ndarray:
        return work.macs * self._passes(config, work)
