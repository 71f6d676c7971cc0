"""Tiny layers counted by hand, one per accelerator style (in the manner of Timeloop's unit tests).

Every case is the same small convolution, run alone (so it reads its input from DRAM and writes its
output there) at batch 1: 3x3 kernel, padding 1, a 4x4 input and output, C = 16 input channels and
K = 32 output channels (10 on Bit Fusion, to show padding). With P = 16 output pixels:
  weights     W = 3*3*16*32 = 4608
  reduction   9 taps x 16 channels = 144 per output
  unfolded    U = 144 * 16 pixels = 2304 input reads if each output reads its receptive field once
  outputs     O = 16 * 32 = 512; input elements 4*4*16 = 256 (the zero border is never fetched)
Array time = KS x RS x PS x cycles_per_step (+ systolic fill), KS = blocks of output-channel lanes,
RS = reduction steps, PS = pixel steps. Buffer reads follow the dataflow (mapping.py):
  output-stationary  weights W x PS, inputs U x KS, outputs O (read and written once)
  weight-stationary  weights W,      inputs U x KS, outputs O x RS
Every layer here fits its buffers in one tile, so each operand crosses DRAM at most once and the
stall is max(0, ceil(DRAM bits / bandwidth) - compute).
"""
import dataclasses

import pytest

from dfs_sim.engine import simulate_network
from dfs_sim.hardware.config import load_hw
from dfs_sim.workload.network import Layer, Network


def tiny(hw, c_out=32, w_bits=8, a_bits=8, **mapping):
    hw = load_hw(hw)  # channels on the lanes, not unfolded:
    hw = dataclasses.replace(hw, mapping=dataclasses.replace(hw.mapping, im2col="never", **mapping))
    layer = Layer("conv", "conv", 16, c_out, 4, 4, 4, 4, kernel=3, stride=1, padding=1, precision="fixed",
                  w_bits=w_bits, a_bits=a_bits)
    row = simulate_network(Network("tiny", (layer,), (), (16, 4, 4)), hw, batch=1).per_layer_cases
    assert len(row) == 1
    return row.iloc[0]


def check(row, expected):
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-12, abs=1e-9), key


def test_bit_parallel_dadiannao():
    row = tiny("dadiannao", w_bits=16, a_bits=16)
    check(row, {
        # 256 output-channel lanes (KS = ceil(32/256) = 1), 16 input-channel lanes (RS = 9 taps x ceil(16/16)),
        # one window at a time (PS = 16 pixels): 1 x 9 x 16 = 144 steps of 1 cycle.
        "compute_cycles": 144,
        # Weights stay in SB for good (weights_on_chip: always); the layer reads its input and writes its
        # output (the network's last, at array.output_bits = 16): 256 x 16 = 4096 and 512 x 16 = 8192 bits.
        # 12288 bits / 104.5 per cycle = 118 cycles < 144: no stall.
        "dram_read_bits": 4096, "dram_write_bits": 8192, "dram_weights_read_bits": 0, "stall_cycles": 0,
        "cycles": 144,
        # Cheapest dataflow in buffer energy: weight-stationary, W x 16 = 73728 bits read from SB once;
        # NM holds inputs and outputs: inputs U x KS x 16 = 36864 + outputs O x RS x 16 = 73728 (accumulated
        # once per reduction step) + the output's drain to DRAM 8192 = 118784 read; written: the input's
        # fill 4096 + outputs 73728 = 77824.
        "sb_read_bits": 73728, "sb_write_bits": 0, "nm_read_bits": 118784, "nm_write_bits": 77824,
        "ops": 16 * 32 * 144,  # one 16-bit MAC each
        "utilization": 73728 / (256 * 16 * 144),  # 32 of 256 output lanes busy: 0.125
    })
    assert row["dataflow"] == "weight-stationary" and row["loop_order"] == "-"
    assert (row["tile_oh"], row["tile_ow"], row["tile_ic"], row["tile_oc"]) == (4, 4, 16, 32)


def test_stripes_activations_bit_serial():
    row = tiny("stripes", w_bits=16, a_bits=8)
    check(row, {
        # 16 windows on the pixel lanes (PS = ceil(16/16) = 1), KS = 1, RS = 9; 8 cycles per step (8-bit
        # activations bit-serial): 72 cycles.
        "compute_cycles": 72,
        # DRAM: input 256 x 8 = 2048 (activations stored at 8 bits), output 512 x 16 = 8192: 10240 bits /
        # 104.5 = 98 cycles (ceil), so 98 - 72 = 26 stall cycles.
        "dram_read_bits": 2048, "dram_write_bits": 8192, "stall_cycles": 26, "cycles": 98,
        # Output-stationary: weights W x PS x 16 = 73728 from SB; NM reads inputs U x KS x 8 = 18432, outputs
        # 512 x 16 = 8192 and their drain 8192 (34816); writes the input's fill 2048 and outputs 8192.
        "sb_read_bits": 73728, "nm_read_bits": 34816, "nm_write_bits": 10240,
        "ops": 73728 * 8,  # lane-cycles: MACs x activation bits
    })
    assert row["dataflow"] == "output-stationary"


def test_loom_both_operands_bit_serial():
    row = tiny("loom", w_bits=8, a_bits=8)
    check(row, {
        # 128 filter lanes x 16 channel lanes x 16 window lanes: KS = 1, RS = 9, PS = 1; 8 x 8 = 64 cycles per
        # step: 576 cycles.
        "compute_cycles": 576, "cycles": 576, "stall_cycles": 0,
        # Weights fit WBUF for good (36864 bits <= 262144): never from DRAM. Input 256 x 8, output 512 x 16.
        "dram_weights_read_bits": 0, "dram_read_bits": 2048, "dram_write_bits": 8192,
        # Output-stationary: W x PS x 8 = 36864; U x KS x 8 = 18432; outputs 512 x 16 = 8192 read (+ drain
        # 8192) and written.
        "wbuf_read_bits": 36864, "ibuf_read_bits": 18432, "ibuf_write_bits": 2048,
        "obuf_read_bits": 16384, "obuf_write_bits": 8192,
        "ops": 73728 * 64,
        "utilization": 73728 / (128 * 16 * 16 * 9),  # 32 of 128 filters, 16 of 16 windows busy: 0.25
    })


def test_bitfusion_simulator_conventions_pad_and_reload():
    row = tiny("bitfusion", c_out=10)
    check(row, {
        # 32 columns (KS = 1), 16 rows x 1 (8-bit: no fusion gain): RS = 9, one pixel per step: PS = 16.
        "compute_cycles": 144,
        # The simulator's conventions: weights from DRAM every layer, 9 x 16 x 10 x 8 = 11520 bits; the input
        # tile with its zero border (3 + 3)^2 x 16 x 8 = 4608; outputs padded to the 32 columns at 32 bits,
        # 4 x 4 x 32 x 32 = 16384, loaded before the first visit too and written back.
        "dram_weights_read_bits": 11520, "dram_inputs_read_bits": 4608, "dram_psums_read_bits": 16384,
        "dram_outputs_write_bits": 16384, "dram_read_bits": 11520 + 4608 + 16384, "dram_write_bits": 16384,
        # Everything kept on chip is exposed before compute (32512 bits / 192 = 170 cycles, ceil) and the
        # output drain after (16384 / 192 = 86): 256 stall cycles, nothing left to overlap.
        "stall_cycles": 170 + 86, "cycles": 144 + 256,
        # Each lane its own buffer access: MACs x bits = 23040 x 8 for weights and inputs; outputs read and
        # written once per tile at 32 bits (160 x 32) plus the DRAM reload and drain (16384 each).
        "wbuf_read_bits": 23040 * 8, "ibuf_read_bits": 23040 * 8, "obuf_read_bits": 5120 + 16384,
        "obuf_write_bits": 5120 + 16384,
    })


def test_bitfusion_physical_rules():
    row = tiny("bitfusion", c_out=10, conventions="physical")
    check(row, {
        "compute_cycles": 144, "cycles": 144, "stall_cycles": 0,
        # Weights fit WBUF (11520 bits): on chip for good. The input without its border, 256 x 8 = 2048; the 10
        # real output channels, 160 x 32 = 5120 (the last layer writes at array.output_bits).
        "dram_weights_read_bits": 0, "dram_read_bits": 2048, "dram_write_bits": 5120, "dram_psums_read_bits": 0,
        # Output-stationary with one pixel lane: each weight once per pixel step, 1440 x 16 x 8 = 184320; inputs
        # once per block of columns, 2304 x 1 x 8 = 18432; outputs once (5120) plus their drain.
        "wbuf_read_bits": 184320, "ibuf_read_bits": 18432, "obuf_read_bits": 10240, "obuf_write_bits": 5120,
        "utilization": 23040 / (32 * 16 * 144),  # 10 of 32 columns busy: 0.3125
    })
    assert row["output_stored_bits"] == 32 and row["tile_oc"] == 10


def test_unpu_weights_bit_serial_through_lookup_tables():
    row = tiny("unpu", w_bits=4, a_bits=16)
    check(row, {
        # 64 output-channel lanes (KS = 1), 72 groups x 3 activations per LUT read = 216 reduction lanes
        # (RS = 9 x ceil(16/216) = 9), one pixel per step (PS = 16); 4 cycles per step (4-bit weights): 576.
        "compute_cycles": 576, "cycles": 576,
        # Activations stored at 16 bits (fixed): input 256 x 16 = 4096; output 512 x 16 = 8192.
        "dram_read_bits": 4096, "dram_write_bits": 8192, "dram_weights_read_bits": 0,
        # Output-stationary (cheaper in buffer energy than weight-stationary here): W x PS x 4 = 294912;
        # U x KS x 16 = 36864; outputs 8192 read (+ drain 8192) and written.
        "wbuf_read_bits": 294912, "ibuf_read_bits": 36864, "ibuf_write_bits": 4096,
        "obuf_read_bits": 16384, "obuf_write_bits": 8192,
        "ops": 73728 * 4 / 3,  # LUT reads: MACs x weight bits / activations per read
    })


def test_systolic_output_stationary_matches_scale_sim_folds():
    row = tiny("bitsystolic_os")
    check(row, {
        # 16 rows take pixels (PS = 1), 16 columns output channels (KS = 2), the reduction streams (RS = 144);
        # ceil(8/2) x ceil(8/2) = 16 cycles per MAC: 2 x 144 x 1 x 16 = 4608, plus R + C - 2 = 30 per output
        # fold (2 folds): 4668. SCALE-Sim: 2 folds x (R + C + T - 2) with T = 144 x 16 = 2 x 2334 = 4668.
        "compute_cycles": 4668, "cycles": 4668,
        # Output at 32 bits (the last layer): 512 x 32 = 16384.
        "dram_read_bits": 2048, "dram_write_bits": 16384,
        # W x PS x 8 = 36864; U x KS x 8 = 36864; outputs 512 x 32 = 16384 (+ drain 16384).
        "wbuf_read_bits": 36864, "ibuf_read_bits": 36864, "obuf_read_bits": 32768, "obuf_write_bits": 16384,
        "utilization": 1.0,
    })
    assert row["dataflow"] == "output-stationary"


def test_systolic_weight_stationary_matches_scale_sim_folds():
    row = tiny("bitsystolic_ws")
    check(row, {
        # 16 rows take input channels (RS = 9 x ceil(16/16) = 9), 16 columns output channels (KS = 2), pixels
        # stream (PS = 16): 2 x 9 x 16 x 16 = 4608, plus 2R + C - 2 = 46 per weight fold (18 folds): 5436.
        # SCALE-Sim: 18 folds x (2R + C + T - 2) with T = 16 x 16 = 18 x 302 = 5436.
        "compute_cycles": 5436, "cycles": 5436,
        "dram_read_bits": 2048, "dram_write_bits": 16384,
        # Weights once into the array, W x 8 = 36864; U x KS x 8 = 36864; outputs accumulated once per
        # reduction step, 512 x 9 x 32 = 147456 (+ drain 16384).
        "wbuf_read_bits": 36864, "ibuf_read_bits": 36864, "obuf_read_bits": 147456 + 16384,
        "obuf_write_bits": 147456,
    })
    assert row["dataflow"] == "weight-stationary"


def test_worked_example_of_docs_hardware_md():
    # docs/hardware.md, "A layer worked through by hand": BitSystolic-OS, a 3x3 convolution 16 -> 32 channels on
    # 14 x 14 (padding 1) at 8/8 bits, alone in its network.
    hw = load_hw("bitsystolic_os")
    layer = Layer("conv", "conv", 16, 32, 14, 14, 14, 14, kernel=3, stride=1, padding=1, precision="fixed",
                  w_bits=8, a_bits=8)
    row = simulate_network(Network("example", (layer,), (), (16, 14, 14)), hw, batch=1).per_layer_cases.iloc[0]
    # Mapping: partial sums (32-bit) of 7 rows x 14 x 16 channels fill OBUF's 8 KB half, so 2 x 2 tiles, output
    # channels outermost; the input (25088 bits) and the weights stay on chip throughout.
    assert (row["tile_b"], row["tile_oh"], row["tile_ow"], row["tile_ic"], row["tile_kernel_rows"],
            row["tile_oc"]) == (1, 7, 14, 16, 3, 16)
    assert row["loop_order"] == "OC>OH" and row["resident"] == "weights,inputs"
    assert row["dataflow"] == "output-stationary" and row["output_stored_bits"] == 32
    check(row, {
        # 13 pixel folds (196 pixels on 16 rows, the two 7-row tiles back to back) x 2 blocks of 16 channels,
        # each streaming 144 reduction steps x 16 cycles = 2304 plus R + C - 2 = 30: 26 x 2334.
        "compute_cycles": 26 * 2334, "cycles": 60684, "stall_cycles": 0,
        # DRAM: the input once (14 x 14 x 16 x 8), the result once (14 x 14 x 32 x 32); 225792 / 192 = 1176
        # cycles, hidden under compute.
        "dram_inputs_read_bits": 25088, "dram_outputs_write_bits": 200704, "dram_weights_read_bits": 0,
        # Buffers: each weight once per pixel fold (4608 x 13 x 8); each window read once per channel block
        # (28224 x 2 x 8); each output written once and read once more to leave for DRAM.
        "wbuf_read_bits": 479232, "ibuf_read_bits": 451584, "ibuf_write_bits": 25088,
        "obuf_write_bits": 200704, "obuf_read_bits": 401408,
        "utilization": 903168 / (16 * 16 * 2 * 144 * 13),
        # Energy (uJ): 14450688 slice products x 0.0575 pJ; 60684 cycles x 0.725 mW / 500 MHz; 225792 DRAM bits x
        # 15 pJ; buffer bits x their CACTI pJ per bit.
        "energy_compute_uj": 14450688 * 0.0575e-6, "energy_static_uj": 60684 * 0.725 / 500 * 1e-3,
        "energy_dram_uj": 225792 * 15e-6, "energy_wbuf_uj": 479232 * 0.021373e-6,
        "energy_ibuf_uj": (451584 * 0.059472 + 25088 * 0.113716) * 1e-6,
        "energy_obuf_uj": (401408 * 0.033163 + 200704 * 0.073094) * 1e-6,
    })
