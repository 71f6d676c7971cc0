"""The interface every compute model implements, and the work it is asked to cost.

A compute model answers one question: for a layer run at (weight bits, activation bits) on a
batch, how many array cycles does the math take and how many ops (each costing
`compute.energy_pj_per_op`) does it spend? Data movement is the engine's job, not the model's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfs_sim.errors import InputError

KIND_CODES = {"conv": 0, "fc": 1, "gate-embed": 2, "lstm": 3, "gate-fc": 4, "pool": 5}
POOL = KIND_CODES["pool"]
VECTOR_KINDS = np.array([KIND_CODES[k] for k in ("fc", "gate-embed", "lstm", "gate-fc")])


@dataclass
class Work:
    """Entries to cost, one per (layer, weight bits, activation bits, batch); all arrays of equal length."""

    kind: np.ndarray  # KIND_CODES
    k: np.ndarray  # output channels per group
    c: np.ndarray  # input channels per group
    groups: np.ndarray
    p: np.ndarray  # output pixels (h_out * w_out)
    taps: np.ndarray  # kernel * kernel
    n: np.ndarray  # batch
    macs: np.ndarray  # for the whole batch
    w_bits: np.ndarray  # effective, after the hardware's precision mapping
    a_bits: np.ndarray

    @property
    def is_vector(self) -> np.ndarray:
        return np.isin(self.kind, VECTOR_KINDS)

    @property
    def is_pool(self) -> np.ndarray:
        return self.kind == POOL


def ceil_div(a, b):
    return -(-np.asarray(a, dtype=np.int64) // np.asarray(b, dtype=np.int64))


def array_steps(work: Work, unroll: dict) -> np.ndarray:
    """Temporal steps of a spatially unrolled array: one step covers one tile of every unrolled dim.

    Without an `N` axis the batch is folded into the pixel axis: windows of different inputs are
    just more windows to an array that parallelises over windows.
    """
    pixels = work.p if "N" in unroll else work.p * work.n
    steps = (ceil_div(work.k, unroll.get("K", 1)) * ceil_div(work.c, unroll.get("C", 1))
             * ceil_div(pixels, unroll.get("P", 1)) * work.taps * work.groups)
    if "N" in unroll:
        steps = steps * ceil_div(work.n, unroll["N"])
    return steps


def passes(bits: np.ndarray, width: int) -> np.ndarray:
    """How many times an operand of `bits` must go through a `width`-bit datapath."""
    return ceil_div(np.maximum(bits, 1), width)


def pool_cycles(work: Work, vector_lanes: int) -> np.ndarray:
    return ceil_div(work.macs, vector_lanes)


class ComputeModel:
    """Subclass per accelerator style; register it in `dfs_sim.hardware.accelerators.MODELS`."""

    name = "base"
    #: which operand(s) run bit-serially; used by reports and docs.
    serial = "none"

    def validate(self, config) -> None:
        """Check model-specific parameters (config.model_params) and unroll dimensions."""
        if config.model_params:
            key = sorted(config.model_params)[0]
            raise InputError(config.path, f"array.params.{key}", f"unknown parameter for model '{self.name}'")

    def effective_bits(self, config, w_bits: np.ndarray, a_bits: np.ndarray):
        """Operand widths the datapath really runs at (e.g. rounded up to what it supports)."""
        return np.maximum(w_bits, config.min_bits), np.maximum(a_bits, config.min_bits)

    def compute(self, config, work: Work) -> tuple[np.ndarray, np.ndarray]:
        """Return (cycles, ops) per entry of `work`."""
        raise NotImplementedError
