"""UNPU (Lee et al., JSSC 2019): weights bit-serial through lookup tables, activations 16-bit.

A LUT-based bit-serial PE precomputes the partial sums of a group of activations; one weight
bit-plane of that group then indexes the table, so each LUT read does `lut_inputs` 1-bit x
16-bit products. Time per step scales with the weight bits (1..16); activations always take the
16-bit datapath. The published peaks (345.6 GOPS at 16-bit, 7372 GOPS at 1-bit weights: 21.3x,
not 16x) imply that a LUT read covers more activations in 1-bit mode (`lut_inputs_1bit`).
One op = one LUT read.
"""
from __future__ import annotations

import numpy as np

from dfs_sim.errors import InputError
from dfs_sim.hardware.accelerators.base import ArrayMapping, ComputeModel, Work, ceil_div, unrolled


class UNPU(ComputeModel):
    name = "unpu"
    serial = "weights (lookup tables)"
    params = ("lut_inputs", "lut_inputs_1bit")

    def validate(self, config) -> None:
        super().validate(config)
        for key in self.params:
            value = config.array.params.get(key)
            if not (isinstance(value, int) and 1 <= value <= 16):
                raise InputError(config.path, f"array.params.{key}", "must be an integer in [1, 16]")

    def effective_bits(self, config, w_bits, a_bits):
        # Weights: any width 1..16, one cycle per bit. Activations: the 16-bit datapath.
        return np.maximum(w_bits, config.precision.min_bits), np.maximum(a_bits, config.precision.native_bits)

    def _lut_inputs(self, config, work: Work) -> np.ndarray:
        p = config.array.params
        return np.where(work.w_bits == 1, p["lut_inputs_1bit"], p["lut_inputs"])

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        u_k, u_c, u_p, u_n = unrolled(config, len(work.macs))
        a_passes = ceil_div(work.a_bits, config.precision.native_bits)
        w_passes = ceil_div(work.w_bits, config.precision.max_bits)
        cycles = np.minimum(work.w_bits, config.precision.max_bits).astype(np.float64)
        return ArrayMapping(u_k=u_k, u_c=u_c * self._lut_inputs(config, work), u_p=u_p, u_n=u_n, cycles_per_step=cycles,
                            passes=a_passes * w_passes)

    def ops(self, config, work: Work) -> np.ndarray:
        return (work.macs * work.w_bits / self._lut_inputs(config, work)
                * ceil_div(work.a_bits, config.precision.native_bits))
