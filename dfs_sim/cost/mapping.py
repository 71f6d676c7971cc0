"""Loop-nest tiling search per (layer, precision, batch), in numba.

The tiled loops are batch (B), output columns and rows (OW, OH: one power-of-two tile size for
both) and input and output channels (IC, OC); the kernel window is never tiled. Tile sizes are
powers of two clamped to the loop bound, and for the channel loops also power-of-two multiples
of the array's lanes; a partial tile costs as much as a full one. A layer that reads the network
input may be unfolded im2col-style (kernel window x channels as one reduction). A tiling is feasible when each operand's tile fits its share of its
buffer (half of it when double-buffered). For every feasible tiling and every order of the
loops that have more than one tile, reuse is promoted outward: walking from the innermost
loop, a loop that does not index an operand keeps it in place while it fits its buffer; once it
no longer fits, every loop further out fetches it again. Partial sums live at the output width
and are fetched and written back with every visit.

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
"""
from __future__ import annotations

import itertools

import numba as nb
import numpy as np

# Loop indices and which operands each loop indexes (weights, inputs, outputs).
LOOP_B, LOOP_OW, LOOP_OH, LOOP_IC, LOOP_OC = range(5)
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

# Columns of the per-entry result.
OUT_FIELDS = ("cycles", "compute_cycles", "stall_cycles", "dram_read_bits", "dram_write_bits",
              "w_read", "w_write", "i_read", "i_write", "o_read", "o_write", "dataflow")
N_OUT = len(OUT_FIELDS)

# Search parameters shared by all entries, packed as float64 for the kernel.
(P_CAP_W, P_CAP_I, P_CAP_O, P_BW, P_REUSE_SPATIAL, P_DATAFLOW, P_OBJECTIVE, P_E_WR, P_E_WW, P_E_IR, P_E_IW,
 P_E_OR, P_E_OW, P_E_DRAM, P_E_CYCLE, P_E_STATIC, P_VECTOR_LANES, P_PSUM_FIRST_READ, P_EXPOSE_KEPT,
 P_BUF_W, P_BUF_I, P_BUF_O, P_HALO_SLIDE) = range(23)
N_PARAMS = 23


@nb.njit(cache=True)
def _ceil_div(a, b):
    return -(-a // b)


@nb.njit(cache=True)
def _levels(x):
    """Number of power-of-two tile candidates for a loop of bound x: ceil(log2 x) + 1."""
    n = 1
    while (1 << (n - 1)) < x:
        n += 1
    return n


@nb.njit(cache=True)
def _tiles_fit(w_tile, a_tile, o_tile, buf, cap):
    """Every buffer holds one tile of each operand it serves."""
    tiles = (w_tile, a_tile, o_tile)
    for x in range(3):
        total = 0.0
        for y in range(3):
            if buf[y] == buf[x]:
                total += tiles[y]
        if total > cap[x]:
            return False
    return True


@nb.njit(cache=True)
def _n_channel_tiles(total, lanes):
    return _levels(total) + _levels(_ceil_div(total, lanes))


@nb.njit(cache=True)
def _channel_tile(i, total, lanes):
    """Candidate i of a channel loop: the powers of two, then the power-of-two multiples of the lanes
    (different when the lane count is not a power of two, and the only tiles that fill the array
    then). 0 marks a candidate already listed."""
    n_plain = _levels(total)
    if i < n_plain:
        return min(1 << i, total)
    tile = min((1 << (i - n_plain)) * lanes, total)
    if tile == total or (tile & (tile - 1)) == 0:
        return 0
    return tile


@nb.njit(cache=True)
def _sram(dataflow, macs, unfolded, weights, outputs, w_bits, a_bits, o_bits, reuse_w, reuse_i, reuse_o, out):
    """Array <-> buffer bits for one tile: reads of weights and inputs, reads = writes of outputs."""
    if dataflow == 0:  # input-stationary
        out[0] = macs * w_bits / reuse_w
        out[1] = unfolded * a_bits
        out[2] = macs * o_bits / reuse_o
    elif dataflow == 1:  # output-stationary
        out[0] = macs * w_bits / reuse_w
        out[1] = macs * a_bits / reuse_i
        out[2] = outputs * o_bits
    else:  # weight-stationary
        out[0] = weights * w_bits
        out[1] = macs * a_bits / reuse_i
        out[2] = macs * o_bits / reuse_o


@nb.njit(cache=True)
def search_one(batch, oh, ow, kernel, stride, ic_total, oc_total, im2col, w_bits, a_bits, o_bits,
               u_k, u_c, u_p, u_n, cycles_per_step, passes, fill_pixel_fold, fill_reduction_fold,
               w_dram, i_dram, o_dram, in_code, out_code, params, perms, perm_counts, indexes, result):
    """Best tiling and loop order of one conv/fc entry; writes OUT_FIELDS into result.

    w/i/o_dram: 1 where the operand crosses DRAM, else 0. in_code/out_code: DRAM bits per raw bit
    of the input and the final output feature maps (compression); partial sums always move raw."""
    # Usable capacity of the buffer holding each operand; operands in one buffer share it.
    cap = np.array([params[P_CAP_W], params[P_CAP_I], params[P_CAP_O]])
    buf = np.array([int(params[P_BUF_W]), int(params[P_BUF_I]), int(params[P_BUF_O])])
    held = np.zeros(3)
    slide = params[P_HALO_SLIDE] > 0
    bw = params[P_BW]
    objective = int(params[P_OBJECTIVE])
    forced = int(params[P_DATAFLOW])
    first_read = params[P_PSUM_FIRST_READ] > 0
    expose_kept = params[P_EXPOSE_KEPT] > 0
    e_read = np.array([params[P_E_WR], params[P_E_IR], params[P_E_OR]])
    e_write = np.array([params[P_E_WW], params[P_E_IW], params[P_E_OW]])
    from_dram = np.array([w_dram, i_dram, o_dram])
    taps = kernel * kernel
    if params[P_REUSE_SPATIAL] > 0:
        reuse_w = float(u_p * max(u_n, 1))
        reuse_i = float(u_k)
        reuse_o = float(u_c)
    else:
        reuse_w = 1.0
        reuse_i = 1.0
        reuse_o = 1.0
    best_key = np.array([np.inf, np.inf, np.inf])
    result[:] = 0.0
    result[0] = np.inf
    n_tiles = np.zeros(5, dtype=np.int64)
    active = np.zeros(5, dtype=np.int64)
    fill = np.zeros(3)
    first = np.zeros(3)
    keep = np.zeros(3, dtype=np.bool_)
    sram = np.zeros(3)
    big = max(oh, ow)
    for ib in range(_levels(batch)):
        b = min(1 << ib, batch)
        for io in range(_levels(big)):
            o = min(1 << io, big)
            t_oh = min(o, oh)
            t_ow = min(o, ow)
            for iic in range(_n_channel_tiles(ic_total, u_c)):
                ic = _channel_tile(iic, ic_total, u_c)
                if ic == 0:
                    continue
                if im2col:
                    a_tile = float(t_oh * t_ow * taps * ic * b * a_bits)
                else:
                    a_tile = float((kernel + (t_oh - 1) * stride) * (kernel + (t_ow - 1) * stride) * ic * b * a_bits)
                if a_tile > cap[1]:
                    continue
                reduction = taps * ic
                red_steps = _ceil_div(reduction, u_c) if im2col else taps * _ceil_div(ic, u_c)
                for ioc in range(_n_channel_tiles(oc_total, u_k)):
                    oc = _channel_tile(ioc, oc_total, u_k)
                    if oc == 0:
                        continue
                    w_tile = float(_ceil_div(reduction, u_c) * u_c * oc * w_bits)
                    o_tile = float(t_oh * t_ow * _ceil_div(oc, u_k) * u_k * b * o_bits)
                    if not _tiles_fit(w_tile, a_tile, o_tile, buf, cap):
                        continue
                    n_tiles[LOOP_B] = _ceil_div(batch, b)
                    n_tiles[LOOP_OW] = _ceil_div(ow, t_ow)
                    n_tiles[LOOP_OH] = _ceil_div(oh, t_oh)
                    n_tiles[LOOP_IC] = _ceil_div(ic_total, ic)
                    n_tiles[LOOP_OC] = _ceil_div(oc_total, oc)
                    tiles = n_tiles[0] * n_tiles[1] * n_tiles[2] * n_tiles[3] * n_tiles[4]
                    output_volume = o_tile * n_tiles[LOOP_B] * n_tiles[LOOP_OW] * n_tiles[LOOP_OH] * n_tiles[LOOP_OC]
                    if u_n > 0:
                        pixel_steps = _ceil_div(t_oh * t_ow, u_p) * _ceil_div(b, u_n)
                    else:
                        pixel_steps = _ceil_div(b * t_oh * t_ow, u_p)
                    k_blocks = _ceil_div(oc, u_k)
                    tile_cycles = (k_blocks * red_steps * pixel_steps * cycles_per_step * passes
                                   + k_blocks * pixel_steps * fill_pixel_fold
                                   + k_blocks * red_steps * fill_reduction_fold)
                    compute = float(tiles) * tile_cycles
                    if objective == 0 and compute > best_key[0]:
                        continue  # cycles >= compute: cannot win
                    macs = float(taps * ic * t_oh * t_ow * b * oc)
                    unfolded = float(taps * ic * t_oh * t_ow * b)
                    outputs = float(t_oh * t_ow * b * oc)
                    weights = float(taps * ic * oc)
                    if forced >= 0:
                        flow = forced
                    else:
                        flow = 0
                        lowest = np.inf
                        for candidate in range(3):
                            _sram(candidate, macs, unfolded, weights, outputs, w_bits, a_bits, o_bits,
                                  reuse_w, reuse_i, reuse_o, sram)
                            total = sram[0] + sram[1] + 2.0 * sram[2]
                            if total < lowest:
                                lowest = total
                                flow = candidate
                    _sram(flow, macs, unfolded, weights, outputs, w_bits, a_bits, o_bits, reuse_w, reuse_i,
                          reuse_o, sram)
                    k = 0
                    for loop in range(5):
                        if n_tiles[loop] > 1:
                            active[k] = loop
                            k += 1
                    for p in range(perm_counts[k]):
                        fill[0], fill[1], fill[2] = w_tile, a_tile, o_tile
                        first[0], first[1], first[2] = w_tile, a_tile, o_tile
                        keep[:] = True
                        held[0], held[1], held[2] = w_tile, a_tile, o_tile  # what each occupies on chip
                        for position in range(k):  # innermost first
                            loop = active[perms[k, p, position]]
                            n = n_tiles[loop]
                            for x in range(3):
                                if keep[x]:
                                    if indexes[x, loop] == 1:
                                        if x == 1 and slide and (loop == LOOP_OW or loop == LOOP_OH):
                                            # Neighbouring input tiles overlap by the kernel's halo: with
                                            # the inner loops' data still on chip, only new rows load.
                                            t = t_ow if loop == LOOP_OW else t_oh
                                            fill[x] *= (kernel - stride + n * t * stride) / (kernel + (t - 1) * stride)
                                        else:
                                            fill[x] *= n
                                        occupied = fill[x]
                                        for y in range(3):
                                            if y != x and buf[y] == buf[x]:
                                                occupied += held[y]
                                        if occupied > cap[x]:
                                            keep[x] = False  # streams from here on: one tile on chip
                                        else:
                                            first[x] = fill[x]
                                            held[x] = fill[x]
                                else:
                                    fill[x] *= n
                        # Outputs go back to DRAM once per visit; they come back only on revisits, unless the
                        # accelerator (as Bit Fusion's simulator does) also loads them before the first visit.
                        psum_read = fill[2] if first_read else fill[2] - output_volume
                        dram_read = (fill[0] * from_dram[0] + fill[1] * from_dram[1] * in_code
                                     + psum_read * from_dram[2])
                        dram_write = (fill[2] - output_volume + output_volume * out_code) * from_dram[2]
                        if expose_kept:  # everything kept on chip loads before compute starts
                            init = (first[0] * from_dram[0] + first[1] * from_dram[1] * in_code
                                    + (first[2] if first_read else 0.0) * from_dram[2])
                            final = first[2] * from_dram[2] * out_code
                        else:  # only the first tile of each operand; the rest streams behind compute
                            init = (w_tile * from_dram[0] + a_tile * from_dram[1] * in_code
                                    + (o_tile if first_read else 0.0) * from_dram[2])
                            final = o_tile * from_dram[2] * out_code
                        middle = dram_read + dram_write - init - final
                        stall = max(0.0, np.ceil(middle / bw) - compute) + np.ceil(init / bw) + np.ceil(final / bw)
                        cycles = compute + stall
                        dram = dram_read + dram_write
                        energy = (tiles * (sram[0] * e_read[0] + sram[1] * e_read[1]
                                           + sram[2] * (e_read[2] + e_write[2]))
                                  + fill[0] * from_dram[0] * e_write[0] + fill[1] * from_dram[1] * e_write[1]
                                  + (psum_read * e_write[2] + fill[2] * e_read[2]) * from_dram[2]
                                  + dram * params[P_E_DRAM] + compute * params[P_E_CYCLE]
                                  + cycles * params[P_E_STATIC])
                        if objective == 0:
                            k0, k1, k2 = cycles, dram, energy
                        else:
                            k0, k1, k2 = energy, cycles, dram
                        if (k0 < best_key[0] or (k0 == best_key[0] and (k1 < best_key[1] or (
                                k1 == best_key[1] and k2 < best_key[2])))):
                            best_key[0], best_key[1], best_key[2] = k0, k1, k2
                            result[0] = cycles
                            result[1] = compute
                            result[2] = stall
                            result[3] = dram_read
                            result[4] = dram_write
                            result[5] = tiles * sram[0]
                            result[6] = fill[0] * from_dram[0]
                            result[7] = tiles * sram[1]
                            result[8] = fill[1] * from_dram[1]
                            result[9] = tiles * sram[2] + fill[2] * from_dram[2]
                            result[10] = tiles * sram[2] + psum_read * from_dram[2]
                            result[11] = flow
    return best_key[0] < np.inf


@nb.njit(cache=True, parallel=True)
def search_entries(shape, bits, mapping, flags, params, perms, perm_counts, indexes, out):
    """Search every entry. shape[e] = (batch, oh, ow, kernel, stride, ic, oc, im2col, is_pool, in_elems,
    out_elems, pool_ops); bits[e] = (w, a, o); mapping[e] = (u_k, u_c, u_p, u_n, cycles_per_step, passes,
    fill per pixel fold, fill per reduction fold); flags[e] = (weights, inputs, outputs from/to DRAM: 1 or 0;
    DRAM bits per raw bit of input and output feature maps). Writes out[e, OUT_FIELDS];
    out[e, 0] = inf marks an entry no tiling fits."""
    for e in nb.prange(shape.shape[0]):
        s = shape[e]
        row = out[e]
        if s[8] == 1:  # pooling: a vector-unit pass over the inputs, no weights, nothing to tile
            bw = params[P_BW]
            read = float(s[0] * s[9] * bits[e, 1]) * flags[e, 1] * flags[e, 3]
            write = float(s[0] * s[10] * bits[e, 1]) * flags[e, 2] * flags[e, 4]
            compute = float(_ceil_div(s[11] * s[0], int(params[P_VECTOR_LANES])))
            stall = np.ceil(read / bw) + np.ceil(write / bw)
            row[:] = 0.0
            row[0] = compute + stall
            row[1] = compute
            row[2] = stall
            row[3] = read
            row[4] = write
            row[7] = float(s[0] * s[9] * bits[e, 1])
            row[8] = float(s[0] * s[9] * bits[e, 1]) * flags[e, 1]
            row[9] = float(s[0] * s[10] * bits[e, 1]) * flags[e, 2]
            row[10] = float(s[0] * s[10] * bits[e, 1])
            row[11] = 1
            continue
        m = mapping[e]
        search_one(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7] == 1, bits[e, 0], bits[e, 1], bits[e, 2],
                   int(m[0]), int(m[1]), int(m[2]), int(m[3]), m[4], m[5], m[6], m[7],
                   flags[e, 0], flags[e, 1], flags[e, 2], flags[e, 3], flags[e, 4], params, perms, perm_counts,
                   indexes, row)
