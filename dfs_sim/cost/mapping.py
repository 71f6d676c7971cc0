"""Loop-nest tiling search per (layer, precision, batch), in numba.

The tiled loops are batch (B), output columns and rows (OW, OH), input channels with the kernel's
rows (IC) and output channels (OC). For each tiling that fits the buffers (an operand's tile fits
its share of its buffer, half of it when double-buffered; operands of one buffer share it) and
each order of the loops with more than one tile, reuse is promoted outward: walking from the
innermost loop, a loop that does not index an operand reuses it in place while what the operand
keeps on chip still fits; once it no longer fits, every loop further out fetches it again.

Two sets of rules (`mapping.conventions`, docs/hardware.md):

physical (default): what the hardware moves.
- Tiles take any size that covers the loop: the search tries the sizes that split a loop into
  1, 2, 3, ... nearly equal tiles (channel tiles in whole blocks of the array's lanes; below one
  block only where no whole block fits); the last tile is costed at its real size. Spatial tiles
  are whole output rows, and a row is split only at one row per tile.
- Where the kernel's weights for a block of lanes do not fit, the IC loop also splits the
  kernel's rows (the largest part that fits); each part reads its own input rows.
- Padding of the array costs cycles, never traffic or buffer space: buffers and DRAM hold real
  channels, rows and pixels; the zero-padding border of the input is never fetched, nor rows a
  stride larger than the kernel skips.
- Partial sums live in the output buffer at `array.output_bits`; one that leaves before it is
  complete goes to DRAM and comes back at that width. A finished output goes to DRAM once, at the
  precision its consumer stores it in (ENTRY.out_bits).
- Neighbouring input tiles share the kernel's halo while they stay on chip.
- Array <-> buffer traffic follows the dataflow (the config's, or the cheapest in buffer energy
  per tiling): a broadcast operand is read once for the lanes actually busy; the stationary
  operand loads into the array once per fold, and stays there across the innermost loops that do
  not index it while what they change stays on chip; consecutive pixel tiles of the innermost
  loops stream through the array as one.
- Time: compute = sum over tiles of array cycles (+ systolic fill per fold load); DRAM transfers
  overlap compute entirely (double buffering; a layer's first fill and last drain overlap its
  neighbours), so cycles = max(compute, DRAM bits / bandwidth).
- Ranking (cycles objective): cycles, then DRAM bits, busy cycles, energy, fewest tiles; (energy
  objective): energy, cycles, DRAM bits, busy cycles, fewest tiles.

bitfusion-sim: Bit Fusion's simulator (Sharma et al., ISCA 2018; github.com/hsharma35/bitfusion,
optimizer.py), reproduced exactly: power-of-two tiles (square in space) where a partial tile
costs a full one; weights and outputs padded to the array; outputs written at the output width;
every input tile fetched whole (halo refetched); partial sums loaded before every visit, the
first included; everything an operand keeps on chip loaded before compute starts, and the last
output drain exposed after it; each lane charged its own buffer access, under the cheapest (in
bits) of input-, output- and weight-stationary use of each tile. Ranking: cycles, DRAM bits,
energy (energy objective: energy, cycles, DRAM bits).

The pieces: candidate tile sizes (`_physical_candidates`, `_simulator_candidates`), `_describe`
(one tiling: trips, tile bits, reuse factors, step sums), `_buffer_bits` (array <-> buffer
traffic), `_compute_cycles`, `_promote_reuse` (what each operand keeps on chip, hence what it
fetches), `_dram_and_stall`, `_energy`, `_lower_bound` (prunes tilings and orders that cannot
win); `search_layer` tries every tiling, `_try_orders` its loop orders. Records: `records.py`.
"""
from __future__ import annotations

import itertools

import numba as nb
import numpy as np

from dfs_sim.cost.records import (BITFUSION_SIM, DATAFLOW_AUTO, INPUTS, LOOP_B, LOOP_IC, LOOP_OC, LOOP_OH, LOOP_OW,
                                  OUTPUTS, RESIDENT_BITS, WEIGHTS)

IS, OS, WS = range(3)  # dataflows, as records.DATAFLOW_NAMES
INDEXES = np.array([
    # B  OW OH IC OC
    [0, 0, 0, 1, 1],  # weights
    [1, 1, 1, 1, 0],  # inputs
    [1, 1, 1, 0, 1],  # outputs
], dtype=np.int64)
PIXEL_RANK = np.array([2, 0, 1, -1, -1], dtype=np.int64)  # physical order of the pixel loops: B > OH > OW
MAX_CANDIDATES = 128
RESIDENT_W, RESIDENT_I, RESIDENT_O = RESIDENT_BITS["weights"], RESIDENT_BITS["inputs"], RESIDENT_BITS["outputs"]


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


@inlined_piece
def _ceil_div(a, b):
    return -(-a // b)


@inlined_piece
def _levels(x):
    """Number of power-of-two tile candidates for a loop of bound x: ceil(log2 x) + 1."""
    n = 1
    while (1 << (n - 1)) < x:
        n += 1
    return n


@inlined_piece
def _split_count(i):
    """The i-th number of tiles tried for a loop: 1 to 6, then three per octave (8, 10, 12, 16, 20, 24, ...)."""
    if i < 6:
        return i + 1
    base = 1 << ((i - 6) // 3 + 3)
    return base + ((i - 6) % 3) * (base // 4)


@piece
def _physical_candidates(n, lanes, out):
    """Tile sizes for a loop of extent n over `lanes` lanes, largest first: whole blocks of lanes split into
    1, 2, 3, ... nearly equal tiles, then sizes below one block (which leave lanes idle). Returns how many,
    and how many of them are whole blocks."""
    blocks = _ceil_div(n, lanes)
    count = 0
    last = 0
    i = 0
    while count < MAX_CANDIDATES:
        k = min(_split_count(i), blocks)
        t = min(n, lanes * _ceil_div(blocks, k))
        if t != last:
            out[count] = t
            count += 1
            last = t
        if k == blocks:
            break
        i += 1
    aligned = count
    top = min(n, lanes)
    i = 1
    while lanes > 1 and top > 1 and count < MAX_CANDIDATES:
        k = min(_split_count(i), top)
        t = _ceil_div(top, k)
        if t != last:
            out[count] = t
            count += 1
            last = t
        if k == top:
            break
        i += 1
    return count, aligned


@piece
def _simulator_candidates(n, lanes, powers, multiples, out):
    """Bit Fusion's optimizer's tile sizes, smallest first: powers of two clamped to n (if powers), then
    power-of-two multiples of the lanes (if multiples) not already listed. Returns how many."""
    count = 0
    if powers:
        for i in range(_levels(n)):
            out[count] = min(1 << i, n)
            count += 1
    for i in range(_levels(_ceil_div(n, lanes)) if multiples else 0):
        t = min((1 << i) * lanes, n)
        if powers and (t == n or (t & (t - 1)) == 0):
            continue
        out[count] = t
        count += 1
    return count


@inlined_piece
def _tile_sum(extent, t, lanes):
    """Sum over the tiles of size t covering `extent` of ceil(tile / lanes): the last tile at its real size."""
    full = extent // t
    rest = extent - full * t
    return full * _ceil_div(t, lanes) + (_ceil_div(rest, lanes) if rest else 0)


@inlined_piece
def _rows_read(first_out, last_out, stride, taps, padding, size_in):
    """Input rows (or columns) that output rows first_out..last_out read, inside the real input: the
    zero-padding border is never fetched, nor, when the stride exceeds the kernel, the rows it skips."""
    lo = first_out * stride - padding
    hi = last_out * stride - padding + taps
    if stride <= taps:
        return max(0, min(size_in, hi) - max(0, lo))
    total = 0
    for o in range(first_out, last_out + 1):
        start = o * stride - padding
        total += max(0, min(size_in, start + taps) - max(0, start))
    return total


@piece
def _window_sum(extent, t, stride, taps, padding, size_in):
    """Input rows (or columns) fetched when every output tile of size t fetches its own window: the inner
    tiles' windows whole, the tiles at either edge clipped."""
    n = _ceil_div(extent, t)
    if stride > taps or n <= 4:
        total = 0
        for i in range(n):
            total += _rows_read(i * t, min(extent, i * t + t) - 1, stride, taps, padding, size_in)
        return total
    total = 0
    first = 0  # tiles from the start whose window the border clips
    while first < n and first * t * stride - padding < 0:
        total += _rows_read(first * t, min(extent, first * t + t) - 1, stride, taps, padding, size_in)
        first += 1
    last = n - 1  # and from the end
    while last >= first and (min(extent, last * t + t) - 1) * stride - padding + taps > size_in:
        total += _rows_read(last * t, min(extent, last * t + t) - 1, stride, taps, padding, size_in)
        last -= 1
    for i in range(first, last + 1):  # inner tiles: whole windows (the last one may be a partial tile)
        length = min(extent, i * t + t) - i * t
        total += (length - 1) * stride + taps
    return total


@inlined_piece
def _window(t, stride, taps, size_in):
    """Input rows one inner output tile of size t reads (what its buffer must hold)."""
    if stride > taps:
        return min(size_in, t * taps)
    return min(size_in, (t - 1) * stride + taps)


@inlined_piece
def _pixel_steps(e, b, t_oh, t_ow):
    if e.u_n > 0:
        return _ceil_div(t_oh * t_ow, e.u_p) * _ceil_div(b, e.u_n)
    return _ceil_div(b * t_oh * t_ow, e.u_p)


@piece
def _pixel_step_sum(e, b, t_oh, t_ow):
    """Sum over the pixel tiles (batch x rows x columns) of array pixel steps, partial tiles at real size."""
    total = 0
    for sb in range(2):
        nb_ = e.batch // b if sb == 0 else (1 if e.batch % b else 0)
        size_b = b if sb == 0 else e.batch % b
        for sh in range(2):
            nh = e.oh // t_oh if sh == 0 else (1 if e.oh % t_oh else 0)
            size_h = t_oh if sh == 0 else e.oh % t_oh
            for sw in range(2):
                nw = e.ow // t_ow if sw == 0 else (1 if e.ow % t_ow else 0)
                size_w = t_ow if sw == 0 else e.ow % t_ow
                count = nb_ * nh * nw
                if count:
                    total += count * _pixel_steps(e, size_b, size_h, size_w)
    return total


@inlined_piece
def _reduction_steps(e, ic):
    """Array reduction steps of one tile of ic input channels over the whole kernel window."""
    taps = e.kernel * e.kernel
    if e.im2col:
        return _ceil_div(taps * ic, e.u_c)
    return taps * _ceil_div(ic, e.u_c)


@inlined_piece
def _input_bits(e, sim, b, t_oh, t_ow, kr, ic):
    """Bits of one input tile (as _describe computes them)."""
    if sim:
        if e.im2col:
            return float(t_oh * t_ow * e.kernel * e.kernel * ic * b * e.a_bits)
        return float((e.kernel + (t_oh - 1) * e.stride) * (e.kernel + (t_ow - 1) * e.stride) * ic * b * e.a_bits)
    return float(_window(t_oh, e.stride, kr, e.h_in) * _window(t_ow, e.stride, e.kernel, e.w_in) * ic * b * e.a_bits)


@inlined_piece
def _tile_bits(e, sim, b, t_oh, t_ow, kr, ic, oc, tile):
    """Each operand's bits in one tile (what its buffer must hold): weights and outputs padded to the array
    under Bit Fusion's simulator's conventions, real elsewhere."""
    tile[INPUTS] = _input_bits(e, sim, b, t_oh, t_ow, kr, ic)
    if sim:
        tile[WEIGHTS] = float(_ceil_div(e.kernel * e.kernel * ic, e.u_c) * e.u_c * oc * e.w_bits)
        tile[OUTPUTS] = float(t_oh * t_ow * _ceil_div(oc, e.u_k) * e.u_k * b * e.psum_bits)
    else:
        tile[WEIGHTS] = float(kr * e.kernel * ic * oc * e.w_bits)
        tile[OUTPUTS] = float(t_oh * t_ow * oc * b * e.psum_bits)


@inlined_piece
def _tiles_fit(tile, cap, buf):
    """Every buffer holds one tile of each operand it serves."""
    for x in range(3):
        total = 0.0
        for y in range(3):
            if buf[y] == buf[x]:
                total += tile[y]
        if total > cap[x]:
            return False
    return True


@piece
def _describe(e, sim, b, t_oh, t_ow, kr, ic, oc, n, tile, span, fetch, totals):
    """One tiling: loop trip counts n, each operand's tile bits, and per (operand, loop) the factor by which
    its bits grow when the loop runs inside what it keeps on chip (span) or outside it (fetch). totals gets
    (distinct output bits at partial-sum width, output count, weights, unfolded inputs, reduction-step sum,
    output-channel-block sum, pixel-step sum tile by tile, kernel-row parts, pixel-step sum when consecutive
    pixel tiles stream through the array as one)."""
    taps = e.kernel * e.kernel
    n_kr = _ceil_div(e.kernel, kr)
    n[LOOP_B] = _ceil_div(e.batch, b)
    n[LOOP_OW] = _ceil_div(e.ow, t_ow)
    n[LOOP_OH] = _ceil_div(e.oh, t_oh)
    n[LOOP_IC] = _ceil_div(e.ic, ic) * n_kr
    n[LOOP_OC] = _ceil_div(e.oc, oc)
    for x in range(3):
        for loop in range(5):
            span[x, loop] = 1.0
            fetch[x, loop] = float(n[loop])  # a loop that does not index x fetches it again on every trip
    _tile_bits(e, sim, b, t_oh, t_ow, kr, ic, oc, tile)
    if sim:  # everything as n whole tiles, padded to the array; inputs refetch their halo
        for x in range(3):
            for loop in range(5):
                if INDEXES[x, loop]:
                    span[x, loop] = float(n[loop])
        totals[0] = tile[OUTPUTS] * n[LOOP_B] * n[LOOP_OW] * n[LOOP_OH] * n[LOOP_OC]
        totals[4] = float(n[LOOP_IC] * _reduction_steps(e, ic))
        totals[5] = float(n[LOOP_OC] * _ceil_div(oc, e.u_k))
        totals[6] = float(n[LOOP_B] * n[LOOP_OH] * n[LOOP_OW] * _pixel_steps(e, b, t_oh, t_ow))
    else:
        rows = _window(t_oh, e.stride, kr, e.h_in)
        cols = _window(t_ow, e.stride, e.kernel, e.w_in)
        # Inputs: in space, a kept loop loads the union of its windows, a streaming one each window whole.
        span[INPUTS, LOOP_OH] = _rows_read(0, e.oh - 1, e.stride, kr, e.padding, e.h_in) / rows
        span[INPUTS, LOOP_OW] = _rows_read(0, e.ow - 1, e.stride, e.kernel, e.padding, e.w_in) / cols
        fetch[INPUTS, LOOP_OH] = _window_sum(e.oh, t_oh, e.stride, kr, e.padding, e.h_in) / rows
        fetch[INPUTS, LOOP_OW] = _window_sum(e.ow, t_ow, e.stride, e.kernel, e.padding, e.w_in) / cols
        span[INPUTS, LOOP_B] = fetch[INPUTS, LOOP_B] = e.batch / b
        # IC: channels, and the parts of the kernel's rows, each part reading its own input rows.
        part_rows = 0
        for part in range(n_kr):
            part_rows += _window(t_oh, e.stride, min(kr, e.kernel - part * kr), e.h_in)
        span[INPUTS, LOOP_IC] = (e.ic / ic) * _window(t_oh, e.stride, e.kernel, e.h_in) / rows
        fetch[INPUTS, LOOP_IC] = (e.ic / ic) * part_rows / rows
        span[WEIGHTS, LOOP_IC] = fetch[WEIGHTS, LOOP_IC] = (taps * e.ic) / (kr * e.kernel * ic)
        span[WEIGHTS, LOOP_OC] = fetch[WEIGHTS, LOOP_OC] = e.oc / oc
        span[OUTPUTS, LOOP_B] = fetch[OUTPUTS, LOOP_B] = e.batch / b
        span[OUTPUTS, LOOP_OH] = fetch[OUTPUTS, LOOP_OH] = e.oh / t_oh
        span[OUTPUTS, LOOP_OW] = fetch[OUTPUTS, LOOP_OW] = e.ow / t_ow
        span[OUTPUTS, LOOP_OC] = fetch[OUTPUTS, LOOP_OC] = e.oc / oc
        totals[0] = float(e.batch * e.oh * e.ow * e.oc * e.psum_bits)
        if e.im2col:
            totals[4] = float((e.ic // ic) * _reduction_steps(e, ic)
                              + (_reduction_steps(e, e.ic % ic) if e.ic % ic else 0))
        else:
            totals[4] = float(taps * _tile_sum(e.ic, ic, e.u_c))
        totals[5] = float(_tile_sum(e.oc, oc, e.u_k))
        totals[6] = float(_pixel_step_sum(e, b, t_oh, t_ow))
    totals[8] = totals[6] if sim else float(_pixel_steps(e, e.batch, e.oh, e.ow))
    totals[1] = float(e.batch * e.oh * e.ow * e.oc)
    totals[2] = float(taps * e.ic * e.oc)
    totals[3] = float(taps * e.ic * e.batch * e.oh * e.ow)
    totals[7] = float(n_kr)


@piece
def _buffer_bits(flow, e, sim, n, tile_macs, totals, pixel_sum, fold_o, fold_w):
    """Array <-> buffer bits of the whole layer under a dataflow: (weight reads, input reads, output reads =
    writes). pixel_sum: array pixel steps; fold_o, fold_w: how often each output (OS) or weight (WS) fold is
    loaded into the array."""
    if sim:  # per tile, every lane its own access, times the tiles
        tiles = float(n[0] * n[1] * n[2] * n[3] * n[4])
        macs, unfolded, outputs, weights = tile_macs[0], tile_macs[1], tile_macs[2], tile_macs[3]
        if flow == IS:
            return tiles * macs * e.w_bits, tiles * unfolded * e.a_bits, tiles * macs * e.psum_bits
        if flow == OS:
            return tiles * macs * e.w_bits, tiles * macs * e.a_bits, tiles * outputs * e.psum_bits
        return tiles * weights * e.w_bits, tiles * macs * e.a_bits, tiles * macs * e.psum_bits
    # A weight is read once per pixel step it serves, an input once per block of output channels, an output
    # once per reduction step (or fold load when stationary).
    outputs, weights, unfolded = totals[1], totals[2], totals[3]
    red_sum, k_sum = totals[4], totals[5]
    if flow == IS:
        return weights * pixel_sum * e.w_bits, unfolded * n[LOOP_OC] * e.a_bits, outputs * red_sum * e.psum_bits
    if flow == OS:
        return weights * pixel_sum * e.w_bits, unfolded * k_sum * e.a_bits, outputs * fold_o * e.psum_bits
    return weights * fold_w * e.w_bits, unfolded * k_sum * e.a_bits, outputs * red_sum * e.psum_bits


@inlined_piece
def _compute_cycles(e, totals, pixel_sum, fold_o, fold_w):
    """Array cycles: blocks of output channels x reduction steps x pixel steps, each cycles_per_step x passes,
    plus systolic fill and drain per output fold load (pixel folds) and weight fold load (reduction folds)."""
    return (totals[4] * totals[5] * pixel_sum * e.cycles_per_step * e.passes
            + totals[5] * pixel_sum * fold_o * e.fill_per_pixel_fold
            + totals[5] * totals[4] * fold_w * e.fill_per_reduction_fold)


@inlined_piece
def _promote_reuse(perms, p, k, active, n, tile, span, fetch, cap, buf, traffic, foot, held, keep, folds,
                   single_fold):
    """Walk the loop order from the innermost loop: a loop that does not index an operand reuses it while what
    the operand keeps on chip fits beside its buffer's other operands; past that, every outer loop fetches
    it again. Writes traffic[x] (bits of x between DRAM and its buffer) and foot[x] (what x keeps on chip).
    folds gets how often each output fold (OS) and weight fold (WS) loads into the array: once per tile,
    except across the innermost loops that do not index it while what they change stays on chip (for weight
    folds: the partial sums of the tiles streamed past them, unless single_fold: the layer has one weight
    fold, which never leaves the array); and
    folds[2] = 1 when every pixel loop is innermost, so that consecutive pixel tiles stream through the
    array as one (a fold of pixel lanes may straddle two tiles of the double-buffered buffers)."""
    for x in range(3):
        traffic[x] = tile[x]
        foot[x] = tile[x]
        held[x] = tile[x]
        keep[x] = 1.0
    folds[0] = 1.0  # output folds (a loop over IC)
    folds[1] = 1.0  # weight folds (loops over B, OH, OW)
    folds[2] = 1.0
    run_o = 1.0
    run_w = 1.0
    pixel_loops = 0
    for position in range(k):
        if PIXEL_RANK[active[position]] >= 0:
            pixel_loops += 1
    for position in range(k):  # innermost first
        loop = active[perms[k, p, position]]
        trips = n[loop]
        if position < pixel_loops and PIXEL_RANK[loop] < 0:
            folds[2] = 0.0
        for x in range(3):
            if not keep[x]:
                traffic[x] *= fetch[x, loop]
                continue
            if INDEXES[x, loop] == 0:
                continue
            grown = foot[x] * span[x, loop]
            occupied = grown
            for y in range(3):
                if y != x and buf[y] == buf[x]:
                    occupied += held[y]
            if occupied > cap[x]:
                keep[x] = 0.0  # streams from here on: one tile on chip, each loop trip fetches its own
                traffic[x] *= fetch[x, loop]
            else:
                foot[x] = grown
                held[x] = grown
                traffic[x] *= span[x, loop]
        if loop == LOOP_IC:
            if not (run_o > 0 and keep[WEIGHTS] and keep[INPUTS]):
                folds[0] *= trips
            run_o = 0.0
        else:
            run_o = 0.0
        if loop == LOOP_B or loop == LOOP_OH or loop == LOOP_OW:
            if not (run_w > 0 and (keep[OUTPUTS] or single_fold)):
                folds[1] *= trips
                run_w = 0.0
        else:
            run_w = 0.0


@inlined_piece
def _dram_and_stall(e, hw, sim, traffic, foot, totals, compute):
    """DRAM bits (weights, inputs, partial sums read back, outputs written) and stall cycles: transfers overlap
    compute (double buffering). Under the physical rules that includes the first fill and the last drain,
    which overlap the neighbouring layers' tiles; Bit Fusion's simulator exposes everything an operand keeps
    on chip before compute starts, and the last output drain."""
    out_bits = totals[0]
    w_read = traffic[WEIGHTS] * e.w_dram
    i_read = traffic[INPUTS] * e.i_dram * e.in_code
    if sim:  # partial sums load before every visit; outputs leave at the output width
        o_read = traffic[OUTPUTS] * e.o_dram
        o_write = (traffic[OUTPUTS] - out_bits + out_bits * e.out_code) * e.o_dram
    else:  # partial sums leave and return at their width; the finished output leaves once, as stored
        o_read = (traffic[OUTPUTS] - out_bits) * e.o_dram
        o_write = (traffic[OUTPUTS] - out_bits + totals[1] * e.out_bits * e.out_code) * e.o_dram
        # Whole bits: the traffic factors are ratios of extents, and rounding noise must not rank mappings.
        w_read, i_read, o_read, o_write = np.round(w_read), np.round(i_read), np.round(o_read), np.round(o_write)
    bw = hw.dram_bits_per_cycle
    total = w_read + i_read + o_read + o_write
    if not sim:
        return w_read, i_read, o_read, o_write, max(0.0, np.ceil(total / bw) - compute)
    init = foot[WEIGHTS] * e.w_dram + foot[INPUTS] * e.i_dram * e.in_code + foot[OUTPUTS] * e.o_dram
    final = foot[OUTPUTS] * e.o_dram * e.out_code
    stall = max(0.0, np.ceil((total - init - final) / bw) - compute) + np.ceil(init / bw) + np.ceil(final / bw)
    return w_read, i_read, o_read, o_write, stall


@inlined_piece
def _energy(e, hw, array_bits, traffic, o_read, dram_bits, compute, cycles):
    """pJ of one tiling and order: buffer traffic (array side, fills from DRAM, drains to it), DRAM, busy
    cycles and static power."""
    return (array_bits[WEIGHTS] * hw.e_w_read + array_bits[INPUTS] * hw.e_i_read
            + array_bits[OUTPUTS] * (hw.e_o_read + hw.e_o_write)
            + traffic[WEIGHTS] * e.w_dram * hw.e_w_write + traffic[INPUTS] * e.i_dram * hw.e_i_write
            + o_read * hw.e_o_write + traffic[OUTPUTS] * e.o_dram * hw.e_o_read
            + dram_bits * hw.e_dram + compute * hw.e_cycle + cycles * hw.e_static)


@piece
def _lower_bound(e, hw, tile, span, fetch, n, totals, cap, array_bits, compute, by_outer):
    """A bound no loop order of this tiling can beat under the physical rules (cycles, or energy under the
    energy objective): every operand crosses DRAM at least once and every fold loads into the array at
    least once. Besides, the outermost loop with more than one trip fetches again, on each trip, the
    operand it does not index (B, OH, OW: weights; IC: partial sums, read and written; OC: inputs) unless
    all of that operand fits its buffer: by_outer[loop] gets the bound of the orders with that loop
    outermost. Returns the least of them."""
    least_w = tile[WEIGHTS]
    least_i = tile[INPUTS]
    for loop in range(5):
        if INDEXES[WEIGHTS, loop]:
            least_w *= min(span[WEIGHTS, loop], fetch[WEIGHTS, loop])
        if INDEXES[INPUTS, loop]:
            least_i *= min(span[INPUTS, loop], fetch[INPUTS, loop])
    least_o = totals[1] * e.out_bits * e.out_code
    dram = least_w * e.w_dram + least_i * e.i_dram * e.in_code + least_o * e.o_dram
    sram = (array_bits[WEIGHTS] * hw.e_w_read + array_bits[INPUTS] * hw.e_i_read
            + array_bits[OUTPUTS] * (hw.e_o_read + hw.e_o_write)
            + least_w * e.w_dram * hw.e_w_write + least_i * e.i_dram * hw.e_i_write + totals[0] * e.o_dram * hw.e_o_read)
    least = np.inf
    for loop in range(5):
        extra_bits = 0.0  # the refetch when this loop is outermost, in DRAM bits and buffer pJ
        extra_pj = 0.0
        if n[loop] > 1:
            if loop == LOOP_IC:
                if totals[0] > cap[OUTPUTS]:
                    extra_bits = (n[loop] - 1) * 2.0 * totals[0] * e.o_dram
                    extra_pj = extra_bits / 2.0 * (hw.e_o_write + hw.e_o_read)
            elif loop == LOOP_OC:
                if least_i > cap[INPUTS]:
                    extra_bits = (n[loop] - 1) * least_i * e.i_dram * e.in_code
                    extra_pj = (n[loop] - 1) * least_i * e.i_dram * hw.e_i_write
            elif least_w > cap[WEIGHTS]:
                extra_bits = (n[loop] - 1) * least_w * e.w_dram
                extra_pj = extra_bits * hw.e_w_write
        bits = np.floor(dram + extra_bits)
        cycles = max(compute, np.ceil(bits / hw.dram_bits_per_cycle))
        if hw.objective == 0:
            by_outer[loop] = cycles
        else:
            by_outer[loop] = (sram + extra_pj + bits * hw.e_dram + compute * hw.e_cycle + cycles * hw.e_static)
        if n[loop] > 1 or least == np.inf:
            least = min(least, by_outer[loop])
    return least


@inlined_piece
def _better(keys, best):
    """keys ranks strictly before best, lexicographically."""
    for i in range(6):
        if keys[i] < best[i]:
            return True
        if keys[i] > best[i]:
            return False
    return False


@inlined_piece
def _canonical(perms, p, k, active):
    """Physical rules try the pixel loops only in the order B > OH > OW (rows slide inside images)."""
    rank = -1
    for position in range(k):
        loop = active[perms[k, p, position]]
        if PIXEL_RANK[loop] >= 0:
            if PIXEL_RANK[loop] < rank:
                return False
            rank = PIXEL_RANK[loop]
    return True


@nb.njit(cache=True)
def scratch():
    """Working arrays of one search, allocated by the caller so that the search never touches reference
    counts: floats [18, 10], integers [4, 8], candidate tile sizes [6, MAX_CANDIDATES]."""
    return (np.zeros((18, 10)), np.zeros((4, 8), dtype=np.int64),
            np.zeros((6, MAX_CANDIDATES), dtype=np.int64))


@piece
def search_layer(e, hw, perms, perm_counts, result, floats, ints, cands):
    """Best tiling and loop order of one conv/fc entry; writes its RESULT record. Returns whether any
    tiling fits. floats, ints, cands: scratch()."""
    best_key, tile, traffic, foot, held, keep, cap = (floats[0], floats[1], floats[2], floats[3], floats[4],
                                                      floats[5], floats[6])
    totals, tile_macs, array_bits, folds = floats[7], floats[8], floats[9], floats[10]
    span, fetch, by_outer = floats[11:14, :5], floats[14:17, :5], floats[17]
    n, active, buf = ints[0], ints[1], ints[2]
    best_key[:6] = np.inf
    cap[WEIGHTS], cap[INPUTS], cap[OUTPUTS] = hw.cap_w, hw.cap_i, hw.cap_o
    buf[WEIGHTS], buf[INPUTS], buf[OUTPUTS] = hw.buf_w, hw.buf_i, hw.buf_o
    result.cycles = np.inf
    sim = 1 if hw.conventions == BITFUSION_SIM else 0
    cand_b, cand_oh, cand_ow, cand_ic, cand_oc, cand_kr = cands[0], cands[1], cands[2], cands[3], cands[4], cands[5]
    # Typed constants: a literal 1 or 0 would compile each candidate piece once more per literal argument.
    one, zero = np.int64(1), np.int64(0)
    if sim:
        # Bit Fusion's optimizer: powers of two, square in space; for output channels of a layer that is not
        # unfolded, only the power-of-two multiples of the array's columns.
        count_b = _simulator_candidates(e.batch, one, one, zero, cand_b)
        count_oh = _simulator_candidates(max(e.oh, e.ow), one, one, zero, cand_oh)
        count_ic = _simulator_candidates(e.ic, e.u_c, one, zero, cand_ic)
        count_oc = _simulator_candidates(e.oc, e.u_k, one if e.im2col else zero, zero if e.im2col else one, cand_oc)
        count_kr = 1
        cand_kr[0] = e.kernel
        aligned_ic, aligned_oc = count_ic, count_oc
    else:
        count_b = _physical_candidates(e.batch, one, cand_b)[0]
        count_oh = _physical_candidates(e.oh, one, cand_oh)[0]
        count_ow = _physical_candidates(e.ow, one, cand_ow)[0]
        count_ic, aligned_ic = _physical_candidates(e.ic, one if e.im2col else e.u_c, cand_ic)
        count_oc, aligned_oc = _physical_candidates(e.oc, e.u_k, cand_oc)
        count_kr = _physical_candidates(e.kernel, one, cand_kr)[0]
        if e.im2col:  # one unfolded reduction: the kernel is not split
            count_kr = 1
    taps = e.kernel * e.kernel
    lanes = float(e.u_k * e.u_c * e.u_p * max(e.u_n, 1))
    for ib in range(count_b):
        b = cand_b[ib]
        for ih in range(count_oh):
            for iw in range(1 if sim else (count_ow if cand_oh[ih] == 1 else 1)):
                if sim:
                    t_oh = min(cand_oh[ih], e.oh)
                    t_ow = min(cand_oh[ih], e.ow)
                else:
                    t_oh = cand_oh[ih]
                    t_ow = cand_ow[iw]
                # Channel tiles below one block of lanes only where no whole block fits.
                any_ic = False
                for iic in range(count_ic):
                    if iic >= aligned_ic and any_ic:
                        break
                    ic = cand_ic[iic]
                    if _input_bits(e, sim, b, t_oh, t_ow, cand_kr[count_kr - 1], ic) > hw.cap_i:
                        continue  # not even the smallest input tile fits
                    any_oc = False
                    for ioc in range(count_oc):
                        if ioc >= aligned_oc and any_oc:
                            break
                        oc = cand_oc[ioc]
                        found = False
                        for ikr in range(count_kr):  # the kernel's rows: the largest part that fits
                            kr = cand_kr[ikr]
                            _tile_bits(e, sim, b, t_oh, t_ow, kr, ic, oc, tile)
                            if _tiles_fit(tile, cap, buf):
                                found = True
                                break
                        if not found:
                            continue
                        _describe(e, sim, b, t_oh, t_ow, kr, ic, oc, n, tile, span, fetch, totals)
                        any_oc = True
                        any_ic = True
                        _try_orders(e, hw, sim, perms, perm_counts, b, t_oh, t_ow, kr, ic, oc, taps, lanes, n,
                                    active, tile, span, fetch, cap, buf, traffic, foot, held, keep, folds, totals,
                                    tile_macs, array_bits, by_outer, best_key, result)
    return best_key[0] < np.inf


@piece
def _try_orders(e, hw, sim, perms, perm_counts, b, t_oh, t_ow, kr, ic, oc, taps, lanes, n, active, tile, span,
                fetch, cap, buf, traffic, foot, held, keep, folds, totals, tile_macs, array_bits, by_outer, best_key,
                result):
    """Every loop order of one tiling that fits; keeps the best in result."""
    n_red = float(n[LOOP_IC])
    n_pix = float(n[LOOP_B] * n[LOOP_OH] * n[LOOP_OW])
    fold_o_least = n_red if sim else 1.0
    fold_w_least = n_pix if sim else 1.0
    least_compute = _compute_cycles(e, totals, totals[8], fold_o_least, fold_w_least)
    if hw.objective == 0:  # cycles >= what no order can beat
        if sim and least_compute > best_key[0]:
            return
        if not sim and _lower_bound(e, hw, tile, span, fetch, n, totals, cap, array_bits, least_compute,
                                    by_outer) > best_key[0]:
            return
    # The dataflow: the config's, or else the one whose array <-> buffer traffic costs least: in buffer energy
    # with every fold loaded once (physical), in bits with every fold reloaded per tile (Bit Fusion's
    # simulator, which chooses per tile).
    tile_macs[1] = float(taps * ic * t_oh * t_ow * b)
    tile_macs[0] = tile_macs[1] * oc
    tile_macs[2] = float(t_oh * t_ow * b * oc)
    tile_macs[3] = float(taps * ic * oc)
    flow = hw.dataflow
    if flow == DATAFLOW_AUTO:
        lowest = np.inf
        for candidate in range(3):
            if sim:
                w, i, o = _buffer_bits(candidate, e, sim, n, tile_macs, totals, totals[6], n_red, n_pix)
                cost = w + i + 2.0 * o
            else:
                w, i, o = _buffer_bits(candidate, e, sim, n, tile_macs, totals, totals[8], 1.0, 1.0)
                cost = w * hw.e_w_read + i * hw.e_i_read + o * (hw.e_o_read + hw.e_o_write)
            if cost < lowest:
                lowest = cost
                flow = candidate
    array_bits[WEIGHTS], array_bits[INPUTS], array_bits[OUTPUTS] = _buffer_bits(
        flow, e, sim, n, tile_macs, totals, totals[8], fold_o_least, fold_w_least)
    if hw.objective == 1 and not sim and _lower_bound(e, hw, tile, span, fetch, n, totals, cap, array_bits,
                                                      least_compute, by_outer) > best_key[0]:
        return  # energy >= what no order can beat
    k = 0
    for loop in range(5):
        if n[loop] > 1:
            active[k] = loop
            k += 1
    for p in range(perm_counts[k]):
        if not sim and (not _canonical(perms, p, k, active) or by_outer[active[perms[k, p, k - 1]]] > best_key[0]):
            continue
        _promote_reuse(perms, p, k, active, n, tile, span, fetch, cap, buf, traffic, foot, held, keep, folds,
                       totals[4] * totals[5] == 1.0)
        if sim:
            fold_o, fold_w, pixel_sum = n_red, n_pix, totals[6]
        else:
            fold_o, fold_w = folds[0], folds[1]
            pixel_sum = totals[8] if folds[2] else totals[6]
            array_bits[WEIGHTS], array_bits[INPUTS], array_bits[OUTPUTS] = _buffer_bits(
                flow, e, sim, n, tile_macs, totals, pixel_sum, fold_o, fold_w)
        compute = _compute_cycles(e, totals, pixel_sum, fold_o, fold_w)
        w_read, i_read, o_read, o_write, stall = _dram_and_stall(e, hw, sim, traffic, foot, totals, compute)
        cycles = compute + stall
        dram = w_read + i_read + o_read + o_write
        energy = _energy(e, hw, array_bits, traffic, o_read, dram, compute, cycles)
        tiles = float(n[0] * n[1] * n[2] * n[3] * n[4])
        if sim:  # Bit Fusion's simulator: cycles, then energy (DRAM bits break what its ties leave)
            keys = (cycles, dram, energy, 0.0, 0.0, 0.0) if hw.objective == 0 else (energy, cycles, dram, 0.0, 0.0, 0.0)
        else:
            # Energy to a thousandth of a pJ: rounding noise of equal mappings must not decide; at last equal
            # costs go to the fewest tiles. Under the cycles objective, busy cycles come before energy: a
            # DRAM-bound layer need not keep the array busy longer.
            joules = np.round(energy, 3)
            if hw.objective == 0:
                keys = (cycles, dram, compute, joules, tiles, 0.0)
            else:
                keys = (joules, cycles, dram, compute, tiles, 0.0)
        if not _better(keys, best_key):
            continue
        for i in range(6):
            best_key[i] = keys[i]
        result.cycles = cycles
        result.compute_cycles = compute
        result.stall_cycles = stall
        result.dram_read_bits = w_read + i_read + o_read
        result.dram_write_bits = o_write
        result.dram_w_read = w_read
        result.dram_i_read = i_read
        result.dram_o_read = o_read
        result.dram_o_write = o_write
        result.w_read = array_bits[WEIGHTS]
        result.w_write = traffic[WEIGHTS] * e.w_dram
        result.i_read = array_bits[INPUTS]
        result.i_write = traffic[INPUTS] * e.i_dram
        result.o_read = array_bits[OUTPUTS] + traffic[OUTPUTS] * e.o_dram
        result.o_write = array_bits[OUTPUTS] + o_read
        result.dataflow = flow
        result.tile_b, result.tile_oh, result.tile_ow = b, t_oh, t_ow
        result.tile_ic, result.tile_kernel_rows, result.tile_oc = ic, kr, oc
        code = 0
        scale = 1
        for position in range(k):
            code += (active[perms[k, p, position]] + 1) * scale
            scale *= 6
        result.loop_order = code
        result.utilization = totals[3] * e.oc / (lanes * totals[4] * totals[5] * pixel_sum)
        result.resident = ((RESIDENT_W if keep[WEIGHTS] else 0) + (RESIDENT_I if keep[INPUTS] else 0)
                           + (RESIDENT_O if keep[OUTPUTS] else 0))


@nb.njit(cache=True)
def pool_cost(e, hw, result):
    """Pooling: a vector-unit pass over the inputs, no weights, nothing to tile. Outputs are written as stored
    (Bit Fusion's conventions: at the input's width)."""
    read_bits = float(e.batch * e.in_elems * e.a_bits)
    write_bits = float(e.batch * e.out_elems * (e.a_bits if hw.conventions == BITFUSION_SIM else e.out_bits))
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
    result.dram_i_read = read
    result.dram_o_write = write
    result.i_read = read_bits
    result.i_write = read_bits * e.i_dram
    result.o_read = write_bits * e.o_dram
    result.o_write = write_bits
    result.dataflow = OS
    result.tile_b, result.tile_oh, result.tile_ow, result.tile_ic, result.tile_oc = e.batch, e.oh, e.ow, e.ic, e.oc
    result.tile_kernel_rows = e.kernel
    result.utilization = e.pool_ops * e.batch / (compute * hw.vector_lanes) if compute else 0.0
    result.resident = RESIDENT_I | RESIDENT_O


@nb.njit(cache=True)
def search_entries(entries, hw, out):
    """Cost every ENTRY record on the HARDWARE record hw[0]; writes RESULT records into out (zeroed by the
    caller). out.cycles = inf marks an entry no tiling fits."""
    for i in range(entries.shape[0]):
        if entries[i].is_pool:
            pool_cost(entries[i], hw[0], out[i])
        else:
            floats, ints, cands = scratch()
            search_layer(entries[i], hw[0], PERMS, PERM_COUNTS, out[i], floats, ints, cands)
