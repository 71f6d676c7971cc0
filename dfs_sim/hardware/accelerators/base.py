"""The interface every compute model implements, and the work it is asked to cost.

A compute model says how an accelerator's array runs a layer at (weight bits, activation bits):
how many lanes it brings to each loop dimension, how many cycles one array step takes, how many
passes a too-wide operand needs, and how many ops (each costing `compute.energy_pj_per_op`) the
math spends. Tiling, data movement and time are the engine's job (`dfs_sim/cost/mapping.py`).
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
    macs: np.ndarray  # for the whole batch
    n: np.ndarray  # batch
    w_bits: np.ndarray  # effective, after the hardware's precision mapping
    a_bits: np.ndarray

    @property
    def is_vector(self) -> np.ndarray:
        return np.isin(self.kind, VECTOR_KINDS)

    @property
    def is_pool(self) -> np.ndarray:
        return self.kind == POOL


@dataclass
class ArrayMapping:
    """Per entry: lanes per loop dimension (u_n = 0: the batch shares the pixel lanes), cycles one array
    step takes, passes for operands wider than the datapath, and fixed cycles a systolic array spends
    filling and draining per fold: once per (output-channel block, pixel block) when the reduction runs
    in time (output-stationary), once per (output-channel block, reduction block) when pixels run in
    time (weight-stationary)."""

    u_k: np.ndarray
    u_c: np.ndarray
    u_p: np.ndarray
    u_n: np.ndarray
    cycles_per_step: np.ndarray
    passes: np.ndarray
    fill_per_pixel_fold: np.ndarray | float = 0.0
    fill_per_reduction_fold: np.ndarray | float = 0.0


def ceil_div(a, b):
    return -(-np.asarray(a, dtype=np.int64) // np.asarray(b, dtype=np.int64))


def passes(bits, width) -> np.ndarray:
    """How many times an operand of `bits` must go through a `width`-bit datapath."""
    return ceil_div(np.maximum(bits, 1), width)


def unrolled(config, size: int, dims=("K", "C", "P", "N")) -> list[np.ndarray]:
    """The config's lanes per dimension, broadcast to `size` entries (N = 0 when not unrolled)."""
    return [np.full(size, config.unroll.get(d, 0 if d == "N" else 1), dtype=np.int64) for d in dims]


class ComputeModel:
    """Subclass per accelerator style; register it in `dfs_sim.hardware.accelerators.MODELS`."""

    name = "base"
    #: which operand(s) the datapath takes bit by bit; reports show it.
    serial = "none"
    #: model-specific keys allowed under array.params
    params: tuple[str, ...] = ()

    def validate(self, config) -> None:
        """Check model-specific parameters (config.model_params)."""
        for key in config.model_params:
            if key not in self.params:
                raise InputError(config.path, f"array.params.{key}", f"unknown parameter for model '{self.name}'")

    def effective_bits(self, config, w_bits: np.ndarray, a_bits: np.ndarray):
        """Operand widths the datapath really runs at (e.g. rounded up to what it supports)."""
        return np.maximum(w_bits, config.min_bits), np.maximum(a_bits, config.min_bits)

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        raise NotImplementedError

    def ops(self, config, work: Work) -> np.ndarray:
        """Energy-bearing ops per entry (what `compute.op` names)."""
        raise NotImplementedError
