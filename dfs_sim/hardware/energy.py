"""Energy tables the shipped configs draw on, with their sources, and the derivations they use.

The YAML configs hold plain numbers (so a user can edit one without code); tests check that each
shipped number follows from these tables.
"""
from __future__ import annotations

# M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, pJ.
HOROWITZ_45NM_PJ = {
    "int8_add": 0.03, "int32_add": 0.1, "int8_mult": 0.2, "int32_mult": 3.1,
    "fp16_add": 0.4, "fp32_add": 0.9, "fp16_mult": 1.1, "fp32_mult": 3.7,
    "sram_8kb_read_64b": 10.0, "sram_32kb_read_64b": 20.0, "sram_1mb_read_64b": 100.0,
    "dram_read_64b_low": 1300.0, "dram_read_64b_high": 2600.0,
}

# CACTI-7, 45 nm itrs-hp, 4-byte blocks: the rows of Bit Fusion's cacti_sweep.csv
# (github.com/hsharma35/bitfusion, bitfusion/sram/cacti_sweep.csv):
# (bank bytes, read-write port) -> (read nJ, write nJ, leakage mW) per 32-bit access.
CACTI_45NM_32BIT = {
    (128, 0): (0.000684, 0.000925, 0.249588),
    (512, 1): (0.001061, 0.002339, 1.03183),
    (1024, 0): (0.001133, 0.003296, 1.78934),
    (2048, 0): (0.001903, 0.003639, 3.22997),
    (4096, 0): (0.00343, 0.00431, 7.30186),
    (4096, 1): (0.003983, 0.005051, 8.23828),
    (8192, 0): (0.006392, 0.005563, 13.6943),
    (16384, 0): (0.009982, 0.008421, 27.127),
}

# 45 nm synthesis at 500 MHz of systolic arrays of Fusion Units / fixed-precision PEs, from Bit Fusion's
# results/systolic_array_synth.csv: (N, M, max bits, min bits) -> (dynamic nW, leakage nW).
PE_SYNTH_45NM_500MHZ = {
    (1, 1, 2, 2): (28742.0, 2832.7),
    (4, 4, 8, 2): (3673500.0, 949240.0),
    (4, 4, 8, 8): (1627500.0, 257700.0),
    (4, 4, 16, 16): (4821500.0, 912260.0),
}


def int_mult_pj(bits: int) -> float:
    """Integer multiply energy, quadratic in width through Horowitz's 8-bit and 32-bit points."""
    return HOROWITZ_45NM_PJ["int8_mult"] * (bits / 8) ** 2


def int_add_pj(bits: int) -> float:
    """Integer add energy, linear in width between Horowitz's 8-bit and 32-bit points."""
    lo, hi = HOROWITZ_45NM_PJ["int8_add"], HOROWITZ_45NM_PJ["int32_add"]
    return lo + (hi - lo) * (bits - 8) / 24


def int_mac_pj(bits: int, accumulator_bits: int = 32) -> float:
    return int_mult_pj(bits) + int_add_pj(accumulator_bits)


def dram_pj_per_bit(which: str = "low") -> float:
    return HOROWITZ_45NM_PJ[f"dram_read_64b_{which}"] / 64


def cacti_pj_per_bit(bank_bytes: int, read_write_port: int = 0) -> tuple[float, float]:
    """(read, write) pJ per bit of a 32-bit-word SRAM bank."""
    read_nj, write_nj, _ = CACTI_45NM_32BIT[(bank_bytes, read_write_port)]
    return read_nj * 1000 / 32, write_nj * 1000 / 32


def pe_array_pj_per_cycle(n: int, m: int, max_bits: int, min_bits: int, clock_mhz: float = 500.0) -> float:
    """Dynamic energy per cycle of an N x M array, scaled from the synthesized 4x4 (or 1x1) block."""
    for (sn, sm, hi, lo), (dynamic_nw, _) in PE_SYNTH_45NM_500MHZ.items():
        if (hi, lo) == (max_bits, min_bits) and (sn, sm) in ((4, 4), (1, 1)):
            return dynamic_nw * 1e-9 * (n * m) / (sn * sm) / (clock_mhz * 1e6) * 1e12
    raise KeyError((max_bits, min_bits))
