"""Feature-map compression on the DRAM link.

Eyeriss (Chen et al., JSSC 2017, Sec. IV-B) run-length codes every feature map it moves to or
from DRAM, except the network's input: a 5-bit run of zeros (at most 31) is followed by one value
stored as is (the level), three (run, level) pairs share a 64-bit word and the word's last bit
marks the end of the code. Weights are not coded.

What the code costs depends on how many values are zero, a property of the data rather than the
layer shape, so a network file may give each layer's `input_density` and `output_density` (the
fraction of non-zero values). A layer without them moves its feature maps raw.

Model: zeros fall independently with probability z = 1 - d. A pair covers a run of G zeros
(geometric, capped at 31) and the value after it, so it covers on average
(1 - z^32) / d values, and a value costs word_bits / pairs_per_word * d / (1 - z^32) bits. At
d = 1 that is 64/3 = 21.3 bits for a 16-bit value: coding dense data costs more than moving it raw,
as it does on the chip. Real feature maps cluster their zeros, which long runs code more cheaply;
Eyeriss reports its code within 5-10 % of the entropy limit on AlexNet.
"""
from __future__ import annotations

import numpy as np


def rlc_bits_per_value(density, value_bits, run_bits: int = 5, word_bits: int = 64) -> np.ndarray:
    """Expected coded bits per value of a feature map whose non-zero fraction is `density`."""
    density = np.asarray(density, dtype=np.float64)
    value_bits = np.asarray(value_bits, dtype=np.int64)
    pairs_per_word = (word_bits - 1) // (run_bits + value_bits)  # the last bit ends the code
    max_run = (1 << run_bits) - 1
    with np.errstate(divide="ignore"):  # density 1: log(0) = -inf, and the run never starts
        no_full_run = -np.expm1((max_run + 1) * np.log1p(-density))  # 1 - z^32, exact for small density
    values_per_pair = no_full_run / density
    return word_bits / pairs_per_word / values_per_pair


def dram_ratio(compression: str, density, value_bits, run_bits: int = 5, word_bits: int = 64) -> np.ndarray:
    """DRAM bits moved per raw feature-map bit: 1 where nothing is coded or the density is unknown (NaN)."""
    density = np.asarray(density, dtype=np.float64)
    value_bits = np.broadcast_to(np.asarray(value_bits, dtype=np.int64), density.shape)
    ratio = np.ones(density.shape)
    if compression == "none":
        return ratio
    known = ~np.isnan(density)
    ratio[known] = rlc_bits_per_value(density[known], value_bits[known], run_bits, word_bits) / value_bits[known]
    return ratio
