"""Loop-nest tiling search per (layer, precision, batch), in numba.

The tiled loops are batch (B), output columns and rows (OW, OH: one power-of-two tile size for
both) and input and output channels (IC, OC); the kernel window is never tiled. Tile sizes are
powers of two clamped to the loop bound, and for the channel loops also power-of-two multiples
of the array's lanes; a partial tile costs as much as a full one. A layer that reads the network
input may be unfolded im2col-style (kernel window x channels as one reduction). A tiling is
feasible when each operand's tile fits its share of its buffer (half of it when double-buffered).
For every feasible tiling and every order of the loops that have more than one tile, reuse is
promoted outward: walking from the innermost loop, a loop that does not index an operand keeps
it in place while it fits its buffer; once it no longer fits, every loop further out fetches it
again. Partial sums live at the output width and are fetched and written back with every visit.

Time: compute = tiles x per-tile array cycles. DRAM traffic overlaps compute (double buffering)
except the first fill of every operand and the last drain of the outputs, which are exposed:
stall = max(0, ceil(rest / bw) - compute) + ceil(first fill / bw) + ceil(last drain / bw).
The first fill is either the first tile of each operand (the default), or, as Bit Fusion's
simulator has it, everything an operand keeps on chip across loops (`mapping.exposed_fill: kept`);
the latter can make a slightly wider operand that no longer fits stall less.

Array <-> buffer traffic follows the cheapest of input-, output- and weight-stationary use of
the tile; an operand shared by several lanes is read once for all of them when the array has
spatial reuse (broadcast or forwarding), once per lane otherwise.

The search minimises cycles (ties: DRAM bits, then energy) or energy (ties: cycles, DRAM bits).
This is the Bit Fusion authors' mapper (Sharma et al., ISCA 2018, github hsharma35/bitfusion),
generalised to any array shape, precision scaling and memory configuration.

The pieces: `_tile_cycles` (array time of one tile), `_sram_bits` (array <-> buffer traffic of
one tile), `_promote_reuse` (what each operand keeps on chip across the loop order, hence what it
fetches), `_dram_and_stall` (DRAM bits and exposed transfer time), `_energy`; `search_layer` tries
every tiling and loop order with them. Records and their columns: `dfs_sim/cost/records.py`.
"""
from __future__ import annotations

import itertools

import numba as nb
import numpy as np

from dfs_sim.cost.records import BITFUSION_SIM, DATAFLOW_AUTO, INPUTS, OUTPUTS, WEIGHTS

# Loop indices and which operands each loop indexes (weights, inputs, outputs).
LOOP_B, LOOP_OW, LOOP_OH, LOOP_IC, LOOP_OC = range(5)
LOOP_NAMES = ("B", "OW", "OH", "IC", "OC")
INDEXES = np.array([
    # B  OW OH IC OC
    [0, 0, 0, 1, 1],  # weights
    [1, 1, 1, 1, 0],  # inputs
    [1, 1, 1, 0, 1],  # outputs
], dtype=np.int64)


def _permutation_tables() -> tuple[np.ndarray, np.ndarray]:
    tables = np.zeros((6, 120, 5), dtype=np.int64)
    counts = np.zeros(6, dtype=np.int64)
    for k in range(6):
        perms = list(itertools.permutations(range(k)))
        counts[k] = len(perms)
        for i, perm in enumerate(perms):
            tables[k, i, :k] = perm
    return tables, counts


PERMS, PERM_COUNTS = _permutation_tables()

# The search's pieces run millions of times per layer on arrays their caller owns: compiled without
# reference counting (numba's _nrt=False), which would otherwise cost more than the arithmetic, and the
# per-order pieces inlined into the loop that tries the orders.
piece = nb.njit(cache=True, _nrt=False)
inlined_piece = nb.njit(cache=True, _nrt=False, inline="always")


@piece
def _ceil_div(a, b):
    return -(-a // b)


@piece
def _levels(x):
    """Number of power-of-two tile candidates for a loop of bound x: ceil(log2 x) + 1."""
    n = 1
    while (1 << (n - 1)) < x:
        n += 1
    return n


@piece
def _n_channel_tiles(total, lanes, powers, multiples):
    return _levels(total) * powers + _levels(_ceil_div(total, lanes)) * multiples


@piece
def _channel_tile(i, total, lanes, powers, multiples):
    """Candidate i of a channel loop: the powers of two (if powers), then the power-of-two multiples of the
    lanes (if multiples; different when the lane count is not a power of two, and the only tiles that
    fill the array then). 0 marks a candidate already listed."""
    n_plain = _levels(total) * powers
    if i < n_plain:
        return min(1 << i, total)
    tile = min((1 << (i - n_plain)) * lanes, total)
    if powers and (tile == total or (tile & (tile - 1)) == 0):
        return 0
    return tile


@piece
def _tiles_fit(tile, hw):
    """Every buffer holds one tile of each operand it serves."""
    buf = (hw.buf_w, hw.buf_i, hw.buf_o)
    cap = (hw.cap_w, hw.cap_i, hw.cap_o)
    for x in range(3):
        total = 0.0
        for y in range(3):
            if buf[y] == buf[x]:
                total += tile[y]
        if total > cap[x]:
            return False
    return True


@piece
def _tile_cycles(e, b, t_oh, t_ow, ic, oc):
    """Array cycles of one tile: output-channel blocks x reduction steps x pixel steps, plus systolic
    fill and drain per fold."""
    taps = e.kernel * e.kernel
    if e.im2col:
        red_steps = _ceil_div(taps * ic, e.u_c)
    else:
        red_steps = taps * _ceil_div(ic, e.u_c)
    if e.u_n > 0:
        pixel_steps = _ceil_div(t_oh * t_ow, e.u_p) * _ceil_div(b, e.u_n)
    else:
        pixel_steps = _ceil_div(b * t_oh * t_ow, e.u_p)
    k_blocks = _ceil_div(oc, e.u_k)
    return (k_blocks * red_steps * pixel_steps * e.cycles_per_step * e.passes
            + k_blocks * pixel_steps * e.fill_per_pixel_fold
            + k_blocks * red_steps * e.fill_per_reduction_fold)


@piece
def _sram_bits(dataflow, e, hw, b, t_oh, t_ow, ic, oc):
    """Array <-> buffer bits of one tile under a dataflow: (weight reads, input reads, output reads = writes)."""
    taps = e.kernel * e.kernel
    unfolded = float(taps * ic * t_oh * t_ow * b)
    macs = unfolded * oc
    outputs = float(t_oh * t_ow * b * oc)
    weights = float(taps * ic * oc)
    if hw.conventions == BITFUSION_SIM:  # the simulator charges each lane its own access
        reuse_w = reuse_i = reuse_o = 1.0
    else:  # an operand shared by several lanes is read once for all of them
        reuse_w = float(e.u_p * max(e.u_n, 1))
        reuse_i = float(e.u_k)
        reuse_o = float(e.u_c)
    if dataflow == 0:  # input-stationary
        return macs * e.w_bits / reuse_w, unfolded * e.a_bits, macs * e.o_bits / reuse_o
    if dataflow == 1:  # output-stationary
        return macs * e.w_bits / reuse_w, macs * e.a_bits / reuse_i, outputs * e.o_bits
    return weights * e.w_bits, macs * e.a_bits / reuse_i, macs * e.o_bits / reuse_o  # weight-stationary


@piece
def _dataflow(e, hw, b, t_oh, t_ow, ic, oc):
    """The config's dataflow, or the one whose tile moves the fewest buffer bits (outputs read and written)."""
    if hw.dataflow != DATAFLOW_AUTO:
        return hw.dataflow
    best = 0
    lowest = np.inf
    for candidate in range(3):
        w, i, o = _sram_bits(candidate, e, hw, b, t_oh, t_ow, ic, oc)
        total = w + i + 2.0 * o
        if total < lowest:
            lowest = total
            best = candidate
    return best


@inlined_piece
def _promote_reuse(perms, p, n_active, active, n_tiles, tile, e, hw, cap, buf, t_oh, t_ow, fill, first, held, keep):
    """Walk the loop order from the innermost loop: a loop that does not index an operand reuses it
    while what the operand keeps on chip fits beside its buffer's other operands; past that, every
    outer loop fetches it again. Writes fill[x] (bits of x moved between DRAM and its buffer) and
    first[x] (what x keeps on chip: its exposed fill when the config says so). held and keep are scratch."""
    for x in range(3):
        fill[x] = tile[x]
        first[x] = tile[x]
        held[x] = tile[x]  # what each occupies on chip
        keep[x] = 1.0
    for position in range(n_active):  # innermost first
        loop = active[perms[n_active, p, position]]
        n = n_tiles[loop]
        for x in range(3):
            if not keep[x]:
                fill[x] *= n
                continue
            if INDEXES[x, loop] == 0:
                continue
            if x == INPUTS and hw.conventions != BITFUSION_SIM and (loop == LOOP_OW or loop == LOOP_OH):
                # Neighbouring input tiles overlap by the kernel's halo: with the inner loops' data still
                # on chip, only new rows load.
                t = t_ow if loop == LOOP_OW else t_oh
                fill[x] *= (e.kernel - e.stride + n * t * e.stride) / (e.kernel + (t - 1) * e.stride)
            else:
                fill[x] *= n
            occupied = fill[x]
            for y in range(3):
                if y != x and buf[y] == buf[x]:
                    occupied += held[y]
            if occupied > cap[x]:
                keep[x] = 0.0  # streams from here on: one tile on chip
            else:
                first[x] = fill[x]
                held[x] = fill[x]


@inlined_piece
def _dram_and_stall(e, hw, tile, fill, first, output_volume, compute):
    """DRAM bits read and written, partial sums read back, and stall cycles: transfers overlap compute
    except the exposed first fill and last drain."""
    # Outputs go back to DRAM once per visit; they come back only on revisits, except that Bit Fusion's
    # simulator also loads them before the first visit.
    sim = hw.conventions == BITFUSION_SIM
    psum_read = fill[OUTPUTS] if sim else fill[OUTPUTS] - output_volume
    dram_read = (fill[WEIGHTS] * e.w_dram + fill[INPUTS] * e.i_dram * e.in_code + psum_read * e.o_dram)
    dram_write = (fill[OUTPUTS] - output_volume + output_volume * e.out_code) * e.o_dram
    psum_first = 1.0 if sim else 0.0
    if sim:  # everything kept on chip loads before compute starts
        init = (first[WEIGHTS] * e.w_dram + first[INPUTS] * e.i_dram * e.in_code
                + first[OUTPUTS] * psum_first * e.o_dram)
        final = first[OUTPUTS] * e.o_dram * e.out_code
    else:  # only the first tile of each operand; the rest streams behind compute
        init = (tile[WEIGHTS] * e.w_dram + tile[INPUTS] * e.i_dram * e.in_code
                + tile[OUTPUTS] * psum_first * e.o_dram)
        final = tile[OUTPUTS] * e.o_dram * e.out_code
    bw = hw.dram_bits_per_cycle
    middle = dram_read + dram_write - init - final
    stall = max(0.0, np.ceil(middle / bw) - compute) + np.ceil(init / bw) + np.ceil(final / bw)
    return dram_read, dram_write, psum_read, stall


@inlined_piece
def _energy(e, hw, tiles, sram, fill, psum_read, dram_bits, compute, cycles):
    """pJ of one tiling and order: buffer traffic, DRAM, busy cycles and static power."""
    return (tiles * (sram[WEIGHTS] * hw.e_w_read + sram[INPUTS] * hw.e_i_read
                     + sram[OUTPUTS] * (hw.e_o_read + hw.e_o_write))
            + fill[WEIGHTS] * e.w_dram * hw.e_w_write + fill[INPUTS] * e.i_dram * hw.e_i_write
            + (psum_read * hw.e_o_write + fill[OUTPUTS] * hw.e_o_read) * e.o_dram
            + dram_bits * hw.e_dram + compute * hw.e_cycle + cycles * hw.e_static)


@nb.njit(cache=True)
def scratch():
    """Working arrays of one search: (floats [8, 3], integers [3, 5]); allocated by the caller so that the
    search itself never touches reference counts."""
    return np.zeros((8, 3)), np.zeros((3, 5), dtype=np.int64)


@piece
def search_layer(e, hw, perms, perm_counts, result, floats, ints):
    """Best tiling and loop order of one conv/fc entry; writes its RESULT record. Returns whether any
    tiling fits. floats, ints: scratch()."""
    taps = e.kernel * e.kernel
    best_key, tile, fill, first, sram, held, keep, cap = (floats[0], floats[1], floats[2], floats[3], floats[4],
                                                          floats[5], floats[6], floats[7])
    n_tiles, active, buf = ints[0], ints[1], ints[2]
    best_key[:] = np.inf
    cap[WEIGHTS], cap[INPUTS], cap[OUTPUTS] = hw.cap_w, hw.cap_i, hw.cap_o
    buf[WEIGHTS], buf[INPUTS], buf[OUTPUTS] = hw.buf_w, hw.buf_i, hw.buf_o
    result.cycles = np.inf
    # Bit Fusion's simulator tries powers of two, and for output channels of a layer that is not unfolded
    # only the power-of-two multiples of the array's columns.
    sim = 1 if hw.conventions == BITFUSION_SIM else 0
    oc_powers = 1 if (not sim or e.im2col) else 0
    oc_multiples = 1 if (not sim or not e.im2col) else 0
    big = max(e.oh, e.ow)
    for ib in range(_levels(e.batch)):
        b = min(1 << ib, e.batch)
        for io in range(_levels(big)):
            o = min(1 << io, big)
            t_oh = min(o, e.oh)
            t_ow = min(o, e.ow)
            for iic in range(_n_channel_tiles(e.ic, e.u_c, 1, 1 - sim)):
                ic = _channel_tile(iic, e.ic, e.u_c, 1, 1 - sim)
                if ic == 0:
                    continue
                if e.im2col:
                    tile[INPUTS] = float(t_oh * t_ow * taps * ic * b * e.a_bits)
                else:
                    tile[INPUTS] = float((e.kernel + (t_oh - 1) * e.stride) * (e.kernel + (t_ow - 1) * e.stride)
                                         * ic * b * e.a_bits)
                if tile[INPUTS] > hw.cap_i:
                    continue
                for ioc in range(_n_channel_tiles(e.oc, e.u_k, oc_powers, oc_multiples)):
                    oc = _channel_tile(ioc, e.oc, e.u_k, oc_powers, oc_multiples)
                    if oc == 0:
                        continue
                    tile[WEIGHTS] = float(_ceil_div(taps * ic, e.u_c) * e.u_c * oc * e.w_bits)
                    tile[OUTPUTS] = float(t_oh * t_ow * _ceil_div(oc, e.u_k) * e.u_k * b * e.o_bits)
                    if not _tiles_fit(tile, hw):
                        continue
                    n_tiles[LOOP_B] = _ceil_div(e.batch, b)
                    n_tiles[LOOP_OW] = _ceil_div(e.ow, t_ow)
                    n_tiles[LOOP_OH] = _ceil_div(e.oh, t_oh)
                    n_tiles[LOOP_IC] = _ceil_div(e.ic, ic)
                    n_tiles[LOOP_OC] = _ceil_div(e.oc, oc)
                    tiles = n_tiles[0] * n_tiles[1] * n_tiles[2] * n_tiles[3] * n_tiles[4]
                    output_volume = (tile[OUTPUTS] * n_tiles[LOOP_B] * n_tiles[LOOP_OW] * n_tiles[LOOP_OH]
                                     * n_tiles[LOOP_OC])
                    compute = float(tiles) * _tile_cycles(e, b, t_oh, t_ow, ic, oc)
                    if hw.objective == 0 and compute > best_key[0]:
                        continue  # cycles >= compute: cannot win
                    flow = _dataflow(e, hw, b, t_oh, t_ow, ic, oc)
                    sram[WEIGHTS], sram[INPUTS], sram[OUTPUTS] = _sram_bits(flow, e, hw, b, t_oh, t_ow, ic, oc)
                    k = 0
                    for loop in range(5):
                        if n_tiles[loop] > 1:
                            active[k] = loop
                            k += 1
                    for p in range(perm_counts[k]):
                        _promote_reuse(perms, p, k, active, n_tiles, tile, e, hw, cap, buf, t_oh, t_ow, fill, first, held, keep)
                        dram_read, dram_write, psum_read, stall = _dram_and_stall(e, hw, tile, fill, first,
                                                                                  output_volume, compute)
                        cycles = compute + stall
                        dram = dram_read + dram_write
                        energy = _energy(e, hw, tiles, sram, fill, psum_read, dram, compute, cycles)
                        if hw.objective == 0:
                            k0, k1, k2 = cycles, dram, energy
                        else:
                            k0, k1, k2 = energy, cycles, dram
                        if (k0 < best_key[0] or (k0 == best_key[0] and (k1 < best_key[1] or (
                                k1 == best_key[1] and k2 < best_key[2])))):
                            best_key[0], best_key[1], best_key[2] = k0, k1, k2
                            result.cycles = cycles
                            result.compute_cycles = compute
                            result.stall_cycles = stall
                            result.dram_read_bits = dram_read
                            result.dram_write_bits = dram_write
                            result.w_read = tiles * sram[WEIGHTS]
                            result.w_write = fill[WEIGHTS] * e.w_dram
                            result.i_read = tiles * sram[INPUTS]
                            result.i_write = fill[INPUTS] * e.i_dram
                            result.o_read = tiles * sram[OUTPUTS] + fill[OUTPUTS] * e.o_dram
                            result.o_write = tiles * sram[OUTPUTS] + psum_read * e.o_dram
                            result.dataflow = flow
    return best_key[0] < np.inf


@nb.njit(cache=True)
def pool_cost(e, hw, result):
    """Pooling: a vector-unit pass over the inputs, no weights, nothing to tile."""
    read_bits = float(e.batch * e.in_elems * e.a_bits)
    write_bits = float(e.batch * e.out_elems * e.a_bits)
    read = read_bits * e.i_dram * e.in_code
    write = write_bits * e.o_dram * e.out_code
    compute = float(_ceil_div(e.pool_ops * e.batch, hw.vector_lanes))
    bw = hw.dram_bits_per_cycle
    stall = np.ceil(read / bw) + np.ceil(write / bw)
    result.cycles = compute + stall
    result.compute_cycles = compute
    result.stall_cycles = stall
    result.dram_read_bits = read
    result.dram_write_bits = write
    result.i_read = read_bits
    result.i_write = read_bits * e.i_dram
    result.o_read = write_bits * e.o_dram
    result.o_write = write_bits
    result.dataflow = 1


@nb.njit(cache=True, parallel=True)
def search_entries(entries, hw, out):
    """Cost every ENTRY record on the HARDWARE record hw[0]; writes RESULT records into out (zeroed by the
    caller). out.cycles = inf marks an entry no tiling fits."""
    for i in nb.prange(entries.shape[0]):
        if entries[i].is_pool:
            pool_cost(entries[i], hw[0], out[i])
        else:
            floats, ints = scratch()
            search_layer(entries[i], hw[0], PERMS, PERM_COUNTS, out[i], floats, ints)
