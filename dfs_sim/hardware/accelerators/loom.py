"""Loom (Sharify et al., DAC 2018): weights and activations both bit-serial.

Each lane multiplies k bits of a weight by k bits of an activation per cycle (k = 1, or 2 in the
2-bit variant, `array.params.bits_per_cycle`), so a convolution step takes ceil(Pw/k)*ceil(Pa/k)
cycles; the array has (16/k)^2 times the lanes of the bit-parallel design it matches at 16 bits.
Fully-connected layers have one window per input, so the window columns take activation bits in
parallel instead and time scales with the weight precision only: ceil(Pw/k) * ceil(Pa/(k*columns)).
One op = one lane-cycle (a k-bit by k-bit product into the adder tree).
"""
from __future__ import annotations

import numpy as np

from dfs_sim.errors import InputError
from dfs_sim.hardware.accelerators.base import ArrayMapping, ComputeModel, Work, ceil_div, unrolled


class Loom(ComputeModel):
    name = "loom"
    serial = "weights and activations"
    params = ("bits_per_cycle",)

    def validate(self, config) -> None:
        super().validate(config)
        k = config.array.params.get("bits_per_cycle", 1)
        if k not in (1, 2, 4):
            raise InputError(config.path, "array.params.bits_per_cycle", "must be 1, 2 or 4")

    def _steps(self, config, work: Work):
        k = config.array.params.get("bits_per_cycle", 1)
        return ceil_div(work.w_bits, k), ceil_div(work.a_bits, k), k

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        u_k, u_c, u_p, u_n = unrolled(config, len(work.macs))
        w_steps, a_steps, k = self._steps(config, work)
        vector = work.is_vector
        conv_cycles = w_steps * a_steps
        fc_cycles = w_steps * ceil_div(work.a_bits, k * u_p)  # columns take activation bits in parallel
        cycles = np.where(vector, fc_cycles, conv_cycles).astype(np.float64)
        return ArrayMapping(u_k=u_k, u_c=u_c, u_p=np.where(vector, 1, u_p), u_n=u_n, cycles_per_step=cycles,
                            passes=np.ones(len(work.macs)))

    def ops(self, config, work: Work) -> np.ndarray:
        w_steps, a_steps, _ = self._steps(config, work)
        return (work.macs * w_steps * a_steps).astype(np.float64)
