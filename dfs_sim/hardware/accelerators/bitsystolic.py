"""A bit-serial systolic array in the spirit of BitSystolic (Yang & Li, 2021).

R x C processing elements, each multiplying 2-bit slices of a weight and an activation per cycle
(`array.params.slice_bits`), so one MAC takes ceil(Pw/2)*ceil(Pa/2) cycles (2..8 bits natively,
wider operands in more passes). Two dataflows (`array.params.dataflow`):
- output-stationary: rows take output pixels, columns output channels, the reduction streams in
  time; every fold (a block of pixels x channels) pays R + C - 2 cycles to fill and drain;
- weight-stationary: rows take the reduction (input channels), columns output channels, pixels
  stream in time; every fold (a block of reduction x channels) pays 2R + C - 2 cycles.
Fill and drain follow the systolic-array simulator SCALE-Sim (v2): cycles per fold are
R + C + T - 2 (OS) and 2R + C + T - 2 (WS) for T streamed steps; folds do not overlap.
One op = one PE-cycle on a 2x2-bit slice product.
"""
from __future__ import annotations

import numpy as np

from dfs_sim.errors import InputError
from dfs_sim.hardware.accelerators.base import ArrayMapping, ComputeModel, Work, ceil_div, passes

DATAFLOWS = ("output-stationary", "weight-stationary")


class BitSystolic(ComputeModel):
    name = "bitsystolic"
    serial = "weights and activations, in 2-bit slices"
    params = ("rows", "columns", "slice_bits", "dataflow")

    def validate(self, config) -> None:
        super().validate(config)
        p = config.array.params
        for key in ("rows", "columns", "slice_bits"):
            if not (isinstance(p.get(key), int) and p[key] >= 1):
                raise InputError(config.path, f"array.params.{key}", "must be a positive integer")
        if p.get("dataflow") not in DATAFLOWS:
            raise InputError(config.path, "array.params.dataflow", f"must be one of {', '.join(DATAFLOWS)}")
        if config.array.unroll != {"K": p["columns"]} | ({"P": p["rows"]} if p["dataflow"] == DATAFLOWS[0]
                                                   else {"C": p["rows"]}):
            raise InputError(config.path, "array.unroll", "must map columns to K and rows to P (output-stationary) "
                                                          "or to C (weight-stationary)")

    def _slices(self, config, work: Work):
        k = config.array.params["slice_bits"]
        top = config.precision.max_bits
        within = ceil_div(np.minimum(work.w_bits, top), k) * ceil_div(np.minimum(work.a_bits, top), k)
        return within, passes(work.w_bits, top) * passes(work.a_bits, top)

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        p = config.array.params
        rows, cols = p["rows"], p["columns"]
        size = len(work.macs)
        within, n_passes = self._slices(config, work)
        ones = np.ones(size, dtype=np.int64)
        if p["dataflow"] == DATAFLOWS[0]:
            return ArrayMapping(u_k=cols * ones, u_c=ones, u_p=rows * ones, u_n=0 * ones,
                                cycles_per_step=within.astype(np.float64), passes=n_passes,
                                fill_per_pixel_fold=float(rows + cols - 2))
        return ArrayMapping(u_k=cols * ones, u_c=rows * ones, u_p=ones, u_n=0 * ones,
                            cycles_per_step=within.astype(np.float64), passes=n_passes,
                            fill_per_reduction_fold=float(2 * rows + cols - 2))

    def ops(self, config, work: Work) -> np.ndarray:
        within, n_passes = self._slices(config, work)
        return (work.macs * within * n_passes).astype(np.float64)
