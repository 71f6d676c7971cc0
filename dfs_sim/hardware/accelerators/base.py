"""The interface every compute model implements, and the work it is asked to cost.

A compute model says how an accelerator's array runs a layer at (weight bits, activation bits):
how many lanes it brings to each loop dimension, how many cycles one array step takes, how many
passes a too-wide operand needs, and how many ops (each costing `compute.energy_pj_per_op`) the
math spends. Tiling, data movement and time are the engine's job (`dfs_sim/cost/mapping.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dfs_sim.errors import InputError
from dfs_sim.workload.network import LAYER_KINDS, Layer, Network

KIND_CODES = {kind: code for code, kind in enumerate(LAYER_KINDS)}  # the kernels see kinds as these codes
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
    return [np.full(size, config.array.unroll.get(d, 0 if d == "N" else 1), dtype=np.int64) for d in dims]


class ComputeModel:
    """Subclass per accelerator style; register it in `dfs_sim.hardware.accelerators.MODELS`."""

    name = "base"
    #: which operand(s) the datapath takes bit by bit; reports show it.
    serial = "none"
    #: model-specific keys allowed under array.params
    params: tuple[str, ...] = ()

    def validate(self, config) -> None:
        """Check model-specific parameters (config.array.params)."""
        for key in config.array.params:
            if key not in self.params:
                raise InputError(config.path, f"array.params.{key}", f"unknown parameter for model '{self.name}'")

    def effective_bits(self, config, w_bits: np.ndarray, a_bits: np.ndarray):
        """Operand widths the datapath really runs at (e.g. rounded up to what it supports)."""
        return np.maximum(w_bits, config.precision.min_bits), np.maximum(a_bits, config.precision.min_bits)

    def array_network(self, config, network: Network) -> Network:
        """The network as the array runs it (e.g. a stem relaid in memory); the cost engine tiles this."""
        return network

    def array_mapping(self, config, work: Work) -> ArrayMapping:
        raise NotImplementedError

    def ops(self, config, work: Work) -> np.ndarray:
        """Energy-bearing ops per entry (what `compute.op` names)."""
        raise NotImplementedError


# How an array whose reduction lanes take input channels maps a layer that reads the network input
# (`array.params.first_layer`). A 3-channel image fills 3 of 16 lanes when the lanes take channels.
# - stride-fold: the host lays the image out with each stride x stride block of pixels as channels
#   (space-to-depth), so a k x k stride-s conv on c channels runs as a ceil(k/s) x ceil(k/s) stride-1
#   conv on c*s*s channels: same outputs, no duplicated data, no extra hardware. DNNsim, the Stripes
#   group's simulator, does this (github.com/isakedo/DNNsim, base/src/Array.cpp,
#   reshape_first_layer_act/_wgt). A stride-1 stem is left as it is.
# - channels: the lanes take the image's channels as they come.
# Unfolding the kernel window into the reduction (im2col, kernel taps on lanes as BitSim charges it)
# duplicates the input k*k/(s*s) times; that is `mapping.im2col: input-layers`, which moves the
# unfolded input.
FIRST_LAYER_MAPPINGS = ("stride-fold", "channels")


class FirstLayerMapped(ComputeModel):
    """A compute model whose lanes take input channels: `array.params.first_layer` says how its
    input-reading convolutions are mapped (FIRST_LAYER_MAPPINGS)."""
    params = ("first_layer",)

    def validate(self, config) -> None:
        super().validate(config)
        value = config.array.params.get("first_layer", FIRST_LAYER_MAPPINGS[0])
        if value not in FIRST_LAYER_MAPPINGS:
            raise InputError(config.path, "array.params.first_layer",
                             f"must be one of {', '.join(FIRST_LAYER_MAPPINGS)}")

    def array_network(self, config, network: Network) -> Network:
        """The network with its input-reading convolutions stride-folded, when the config asks for it."""
        if config.array.params.get("first_layer", FIRST_LAYER_MAPPINGS[0]) != "stride-fold":
            return network
        layers = tuple(fold_stride_into_channels(layer) if network.reads_network_input(i) and layer.kind == "conv"
                       and layer.stride > 1 and layer.groups == 1 else layer
                       for i, layer in enumerate(network.layers))
        return replace(network, layers=layers)


def fold_stride_into_channels(layer: Layer) -> Layer:
    """A k x k, stride-s conv as the equivalent ceil(k/s) x ceil(k/s) stride-1 conv on c*s*s channels of a
    (padded) input whose s x s pixel blocks became channels. MACs stay the real ones; the folded kernel's
    zero taps (ceil(k/s)*s > k) are stored and take lanes, as they would on the chip."""
    s = layer.stride
    kernel = -(-layer.kernel // s)
    # The folded input covers the padded image, and always every window of the folded kernel.
    h_in = max(-(-(layer.h_in + 2 * layer.padding) // s), layer.h_out + kernel - 1)
    w_in = max(-(-(layer.w_in + 2 * layer.padding) // s), layer.w_out + kernel - 1)
    return replace(layer, c_in=layer.c_in * s * s, h_in=h_in, w_in=w_in, kernel=kernel, stride=1, padding=0,
                   weights=layer.c_out * layer.c_in * s * s * kernel * kernel)
