"""Data movement and energy per (layer, precision, batch): a numba kernel over table entries.

Two levels below the array: on-chip buffers and DRAM. Operands move at their storage width.
- Weights stay on chip for good when the whole network's weights fit the weight buffer;
  otherwise each batch fetches them, and when a layer's weights or inputs overflow their
  buffer the cheaper of two loop orders is taken (re-stream inputs per weight tile, or weights
  per input tile).
- Activations stay on chip between layers when a layer's inputs and outputs fit; the network's
  input image is always read from DRAM and its output written back.
- The array reads each weight once per block of pixels it covers in parallel, each input once
  per block of output channels, and writes each output once (partial sums stay in the PEs).
- DRAM transfers overlap compute (double buffering): a layer takes max(compute, transfer) cycles;
  the excess is stall.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from dfs_sim.hardware.config import HwConfig


@dataclass
class MoveParams:
    n_buffers: int
    operand_buffer: np.ndarray  # [weights, inputs, outputs] -> buffer index
    capacity: np.ndarray  # usable bits per operand (shared buffers split evenly)
    shared_io: bool  # inputs and outputs share one buffer
    io_capacity: float  # usable bits of that shared buffer
    read_pj: np.ndarray  # per buffer
    write_pj: np.ndarray
    unroll_k: int
    unroll_p: int
    unroll_n: int  # 0: batch folds into pixels
    dram_bits_per_cycle: float
    dram_pj_per_bit: float
    compute_pj_per_op: float
    static_pj_per_cycle: float
    weights_resident: bool

    @classmethod
    def from_config(cls, hw: HwConfig, weights_resident: bool) -> "MoveParams":
        names = [b.name for b in hw.buffers]
        operand_buffer = np.array([names.index(hw.buffer_for(op).name) for op in ("weights", "inputs", "outputs")])
        capacity = []
        for op in ("weights", "inputs", "outputs"):
            buffer = hw.buffer_for(op)
            capacity.append(buffer.size_bits / (2 if buffer.double_buffered else 1) / len(buffer.holds))
        io = hw.buffer_for("inputs")
        shared = io.name == hw.buffer_for("outputs").name
        return cls(
            n_buffers=len(hw.buffers), operand_buffer=operand_buffer, capacity=np.array(capacity, dtype=np.float64),
            shared_io=shared, io_capacity=io.size_bits / (2 if io.double_buffered else 1) * (
                (("inputs" in io.holds) + ("outputs" in io.holds)) / len(io.holds)),
            read_pj=np.array([b.read_pj_per_bit for b in hw.buffers]),
            write_pj=np.array([b.write_pj_per_bit for b in hw.buffers]),
            unroll_k=hw.unroll.get("K", 1), unroll_p=hw.unroll.get("P", 1), unroll_n=hw.unroll.get("N", 0),
            dram_bits_per_cycle=hw.dram_bits_per_cycle, dram_pj_per_bit=hw.dram_pj_per_bit,
            compute_pj_per_op=hw.compute_pj_per_op,
            # mW / MHz = nJ per cycle = 1000 pJ per cycle
            static_pj_per_cycle=hw.static_mw / hw.clock_mhz * 1000.0,
            weights_resident=weights_resident,
        )


def data_movement(p: MoveParams, compute_cycles, ops, k_total, c_total, pixels, taps, batch, weight_count,
                  in_elems, out_elems, macs, w_store, a_store, is_first, is_last, is_pool) -> np.ndarray:
    as_i = lambda x: np.ascontiguousarray(x, dtype=np.int64)  # noqa: E731
    return _data_movement(
        p.n_buffers, p.operand_buffer.astype(np.int64), p.capacity, p.shared_io, p.io_capacity, p.read_pj,
        p.write_pj, p.unroll_k, p.unroll_p, p.unroll_n, p.dram_bits_per_cycle, p.dram_pj_per_bit,
        p.compute_pj_per_op, p.static_pj_per_cycle, p.weights_resident,
        np.ascontiguousarray(compute_cycles, dtype=np.float64), np.ascontiguousarray(ops, dtype=np.float64),
        as_i(k_total), as_i(c_total), as_i(pixels), as_i(taps), as_i(batch), as_i(weight_count), as_i(in_elems),
        as_i(out_elems), as_i(macs), as_i(w_store), as_i(a_store), as_i(is_first), as_i(is_last), as_i(is_pool))


@nb.njit(cache=True)
def _ceil_div(a, b):
    return -(-a // b)


@nb.njit(cache=True)
def _data_movement(n_buffers, operand_buffer, capacity, shared_io, io_capacity, read_pj, write_pj, unroll_k,
                   unroll_p, unroll_n, dram_bpc, dram_pj, compute_pj, static_pj_per_cycle, weights_resident,
                   compute_cycles, ops, k_total, c_total, pixels, taps, batch, weight_count, in_elems, out_elems,
                   macs, w_store, a_store, is_first, is_last, is_pool):
    n = compute_cycles.shape[0]
    n_metrics = 5 + 2 * n_buffers + 2 + n_buffers + 2
    out = np.zeros((n, n_metrics))
    wb, ib, ob = operand_buffer[0], operand_buffer[1], operand_buffer[2]
    for e in range(n):
        r = batch[e]
        w_bits = float(weight_count[e] * w_store[e])
        i_bits = float(r * in_elems[e] * a_store[e])
        o_bits = float(r * out_elems[e] * a_store[e])
        if shared_io:
            on_chip = i_bits + o_bits <= io_capacity
        else:
            on_chip = i_bits <= capacity[1] and o_bits <= capacity[2]
        in_from_dram = is_first[e] == 1 or not on_chip
        out_to_dram = is_last[e] == 1 or not on_chip
        i_src = i_bits if in_from_dram else 0.0
        if weights_resident:
            w_dram = 0.0
            i_dram = i_src
        else:
            w_tiles = max(1.0, np.ceil(w_bits / capacity[0]))
            i_tiles = max(1.0, np.ceil(i_bits / capacity[1]))
            inputs_restreamed = w_bits + i_src * w_tiles
            weights_restreamed = w_bits * i_tiles + i_src
            if inputs_restreamed <= weights_restreamed:
                w_dram, i_dram = w_bits, i_src * w_tiles
            else:
                w_dram, i_dram = w_bits * i_tiles, i_src
        o_dram = o_bits if out_to_dram else 0.0

        # Array <-> buffer traffic.
        if unroll_n > 0:
            pixel_blocks = _ceil_div(pixels[e], unroll_p) * _ceil_div(r, unroll_n)
        else:
            pixel_blocks = _ceil_div(pixels[e] * r, unroll_p)
        w_reads = w_bits * pixel_blocks
        if is_pool[e] == 1:
            i_reads = float(macs[e] * a_store[e])
        else:
            i_reads = float(macs[e] // k_total[e] * a_store[e] * _ceil_div(k_total[e], unroll_k))
        o_writes = o_bits

        dram_read = w_dram + i_dram
        dram_write = o_dram
        transfer = (dram_read + dram_write) / dram_bpc
        cycles = max(compute_cycles[e], transfer)
        out[e, 0] = cycles
        out[e, 1] = compute_cycles[e]
        out[e, 2] = cycles - compute_cycles[e]
        out[e, 3] = dram_read
        out[e, 4] = dram_write
        reads = np.zeros(n_buffers)
        writes = np.zeros(n_buffers)
        reads[wb] += w_reads
        writes[wb] += w_dram
        reads[ib] += i_reads
        writes[ib] += i_dram
        writes[ob] += o_writes
        reads[ob] += o_dram
        for b in range(n_buffers):
            out[e, 5 + 2 * b] = reads[b]
            out[e, 6 + 2 * b] = writes[b]
        base = 5 + 2 * n_buffers
        out[e, base] = ops[e]
        out[e, base + 1] = ops[e] * compute_pj
        for b in range(n_buffers):
            out[e, base + 2 + b] = reads[b] * read_pj[b] + writes[b] * write_pj[b]
        out[e, base + 2 + n_buffers] = (dram_read + dram_write) * dram_pj
        out[e, base + 3 + n_buffers] = cycles * static_pj_per_cycle
    return out
