"""The records the tiling search reads and writes. Every column is named here, and only here.

The search (`dfs_sim/cost/mapping.py`) takes three structured arrays, one dtype each:
- `ENTRY`: one (layer shape, stored bits, array mapping, residency) to cost;
- `HARDWARE`: one record of what every entry shares (buffers, DRAM link, energies, conventions);
- `RESULT`: what the search found for each entry: time, traffic per operand and the mapping itself.
Python fills and reads them by field name; numba reads them as records (`entry.oc`).
"""
from __future__ import annotations

import numpy as np

I8, F8 = np.int64, np.float64

ENTRY = np.dtype([
    # Layer shape, per group of a grouped convolution.
    ("batch", I8), ("oh", I8), ("ow", I8), ("h_in", I8), ("w_in", I8), ("kernel", I8), ("stride", I8),
    ("padding", I8), ("ic", I8), ("oc", I8),
    ("im2col", I8),  # 1: the kernel window and input channels form one unfolded reduction
    ("is_pool", I8), ("in_elems", I8), ("out_elems", I8), ("pool_ops", I8),
    # Stored bits of weights and input activations; partial sums (array.output_bits); the output as stored
    # for its consumer (docs/hardware.md, "Storage precision").
    ("w_bits", I8), ("a_bits", I8), ("psum_bits", I8), ("out_bits", I8),
    # The compute model's array mapping (dfs_sim/hardware/accelerators/base.py, ArrayMapping).
    ("u_k", I8), ("u_c", I8), ("u_p", I8), ("u_n", I8),
    ("cycles_per_step", F8), ("passes", F8), ("fill_per_pixel_fold", F8), ("fill_per_reduction_fold", F8),
    # 1 where the operand crosses DRAM, else 0; DRAM bits per raw bit of the input and output feature maps.
    ("w_dram", F8), ("i_dram", F8), ("o_dram", F8), ("in_code", F8), ("out_code", F8),
])

# Operand order wherever the search keeps one value per operand.
WEIGHTS, INPUTS, OUTPUTS = range(3)

PHYSICAL, BITFUSION_SIM = range(2)  # the order of dfs_sim.hardware.config.CONVENTIONS
DATAFLOW_AUTO = -1  # any other value: an index into DATAFLOW_NAMES
DATAFLOW_NAMES = ("input-stationary", "output-stationary", "weight-stationary")

HARDWARE = np.dtype([
    # Usable bits of the buffer holding each operand, and which buffer that is (operands in one buffer share it).
    ("cap_w", F8), ("cap_i", F8), ("cap_o", F8), ("buf_w", I8), ("buf_i", I8), ("buf_o", I8),
    ("dram_bits_per_cycle", F8),
    ("dataflow", I8),  # DATAFLOW_AUTO or an index into DATAFLOW_NAMES
    ("objective", I8),  # index into dfs_sim.hardware.config.OBJECTIVES: 0 cycles, 1 energy
    # pJ per bit of each operand's buffer, DRAM; pJ per compute cycle and per cycle of static power.
    ("e_w_read", F8), ("e_w_write", F8), ("e_i_read", F8), ("e_i_write", F8), ("e_o_read", F8), ("e_o_write", F8),
    ("e_dram", F8), ("e_cycle", F8), ("e_static", F8),
    ("vector_lanes", I8),
    ("conventions", I8),  # PHYSICAL or BITFUSION_SIM (dfs_sim.hardware.config.CONVENTIONS)
])

RESULT = np.dtype([
    ("cycles", F8), ("compute_cycles", F8), ("stall_cycles", F8), ("dram_read_bits", F8), ("dram_write_bits", F8),
    # Reads and writes of each operand's buffer (bits): array <-> buffer, and DRAM <-> buffer.
    ("w_read", F8), ("w_write", F8), ("i_read", F8), ("i_write", F8), ("o_read", F8), ("o_write", F8),
    # DRAM bits per operand: weights and inputs read, partial sums read back, outputs written.
    ("dram_w_read", F8), ("dram_i_read", F8), ("dram_o_read", F8), ("dram_o_write", F8),
    # The mapping: tile sizes, loop order (sum of (loop + 1) * 6**position, innermost at position 0; see
    # loop_order_names), spatial utilization of the array (useful MACs over lanes x array steps), operands kept
    # on chip across the whole layer (RESIDENT_BITS), dataflow.
    ("tile_b", I8), ("tile_oh", I8), ("tile_ow", I8), ("tile_ic", I8), ("tile_kernel_rows", I8), ("tile_oc", I8),
    ("loop_order", I8), ("utilization", F8), ("resident", I8), ("dataflow", I8),
])
# Result columns that scale with the number of groups of a grouped convolution.
ADDITIVE = ("cycles", "compute_cycles", "stall_cycles", "dram_read_bits", "dram_write_bits",
            "w_read", "w_write", "i_read", "i_write", "o_read", "o_write",
            "dram_w_read", "dram_i_read", "dram_o_read", "dram_o_write")
RESIDENT_BITS = {"weights": 1, "inputs": 2, "outputs": 4}

# Loops of the tiled nest and the operands each indexes.
LOOP_B, LOOP_OW, LOOP_OH, LOOP_IC, LOOP_OC = range(5)
LOOP_NAMES = ("B", "OW", "OH", "IC", "OC")


def loop_order_names(code: int) -> str:
    """'OC>IC>OH' (outermost first) for a RESULT.loop_order; '-' when every loop is a single tile."""
    loops = []
    while code:
        code, digit = divmod(int(code), 6)
        loops.append(LOOP_NAMES[digit - 1])
    return ">".join(reversed(loops)) or "-"


def resident_names(bits: int) -> str:
    return ",".join(name for name, bit in RESIDENT_BITS.items() if int(bits) & bit) or "-"
