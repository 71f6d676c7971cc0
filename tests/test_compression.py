"""Run-length coding of feature maps on the DRAM link (Eyeriss, JSSC 2017, Sec. IV-B)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfs_sim.cost.compression import dram_ratio, rlc_bits_per_value


def test_dense_data_costs_a_whole_pair_per_value():
    # Three (5-bit run, 16-bit level) pairs per 64-bit word: 21.3 bits for every 16-bit value.
    assert rlc_bits_per_value(1.0, 16) == pytest.approx(64 / 3)
    # 8-bit levels pack four 13-bit pairs.
    assert rlc_bits_per_value(1.0, 8) == pytest.approx(16)


def test_half_zeros():
    # A pair covers (1 - 0.5**32) / 0.5 values: just under two.
    assert rlc_bits_per_value(0.5, 16) == pytest.approx(64 / 3 * 0.5 / (1 - 0.5 ** 32))


def test_all_but_zero_density_is_one_pair_per_32_values():
    # Runs cap at 31 zeros, so even an all-zero map needs a pair per 32 values.
    assert rlc_bits_per_value(1e-12, 16) == pytest.approx(64 / 3 / 32, rel=1e-6)


@given(st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_fewer_zeros_never_code_smaller(a, b):
    low, high = sorted((a, b))
    assert rlc_bits_per_value(low, 16) <= rlc_bits_per_value(high, 16) + 1e-12


def test_ratio_is_one_without_compression_or_density():
    densities = np.array([0.3, np.nan])
    assert dram_ratio("none", densities, 16).tolist() == [1.0, 1.0]
    coded = dram_ratio("rlc", densities, 16)
    assert coded[1] == 1.0 and coded[0] == pytest.approx(rlc_bits_per_value(0.3, 16) / 16)
