"""Numba kernels that turn per-input decisions into per-input costs, honouring the batch policy.

Inputs run in batches of B consecutive inputs (the last may be smaller). Per gated unit:
- lockstep: the batch runs the unit once, at the widest option any member chose;
- bucketed: the batch splits by decision and each group runs at its own option, one after another.
(The engine's `grouped` policy reorders the inputs by decision vector, then batches them bucketed.)
Each member is charged its group's cost divided by the group size (amortized cycles, energy and
traffic); every member's latency is the batch's total cycles, since the batch advances block by
block together. With B = 1 both policies reduce to a gather over the cost table.
"""
from __future__ import annotations

import numba as nb
import numpy as np

LOCKSTEP, BUCKETED = 0, 1
# Per-input outputs of the kernel.
OUT_CYCLES, OUT_LATENCY, OUT_ENERGY, OUT_DRAM, OUT_SRAM = range(5)
N_OUT = 5


@nb.njit(cache=True, parallel=True)
def per_input_costs(decisions, batch, policy, rank, unit_cost, base_cost, out):
    """decisions [n, U] uint8; unit_cost [U, cases, B, 4]; base_cost [B, 4]; out [n, 5] (written)."""
    n, n_units = decisions.shape
    n_batches = (n + batch - 1) // batch
    n_cases = unit_cost.shape[1]
    for b in nb.prange(n_batches):
        start = b * batch
        stop = min(start + batch, n)
        r = stop - start
        latency = base_cost[r - 1, 0]
        for i in range(start, stop):
            out[i, OUT_CYCLES] = base_cost[r - 1, 0] / r
            out[i, OUT_ENERGY] = base_cost[r - 1, 1] / r
            out[i, OUT_DRAM] = base_cost[r - 1, 2] / r
            out[i, OUT_SRAM] = base_cost[r - 1, 3] / r
        if r == 1:
            for u in range(n_units):
                c = decisions[start, u]
                out[start, OUT_CYCLES] += unit_cost[u, c, 0, 0]
                out[start, OUT_ENERGY] += unit_cost[u, c, 0, 1]
                out[start, OUT_DRAM] += unit_cost[u, c, 0, 2]
                out[start, OUT_SRAM] += unit_cost[u, c, 0, 3]
                latency += unit_cost[u, c, 0, 0]
        elif policy == LOCKSTEP:
            for u in range(n_units):
                widest = decisions[start, u]
                for i in range(start + 1, stop):
                    c = decisions[i, u]
                    if rank[c] > rank[widest]:
                        widest = c
                latency += unit_cost[u, widest, r - 1, 0]
                for i in range(start, stop):
                    out[i, OUT_CYCLES] += unit_cost[u, widest, r - 1, 0] / r
                    out[i, OUT_ENERGY] += unit_cost[u, widest, r - 1, 1] / r
                    out[i, OUT_DRAM] += unit_cost[u, widest, r - 1, 2] / r
                    out[i, OUT_SRAM] += unit_cost[u, widest, r - 1, 3] / r
        else:
            counts = np.zeros(n_cases, dtype=np.int64)
            for u in range(n_units):
                counts[:] = 0
                for i in range(start, stop):
                    counts[decisions[i, u]] += 1
                for c in range(n_cases):
                    if counts[c] > 0:
                        latency += unit_cost[u, c, counts[c] - 1, 0]
                for i in range(start, stop):
                    c = decisions[i, u]
                    k = counts[c]
                    out[i, OUT_CYCLES] += unit_cost[u, c, k - 1, 0] / k
                    out[i, OUT_ENERGY] += unit_cost[u, c, k - 1, 1] / k
                    out[i, OUT_DRAM] += unit_cost[u, c, k - 1, 2] / k
                    out[i, OUT_SRAM] += unit_cost[u, c, k - 1, 3] / k
        for i in range(start, stop):
            out[i, OUT_LATENCY] = latency


@nb.njit(cache=True)
def execution_counts(decisions, batch, policy, rank, n_cases, hist, batch_sizes):
    """Accumulate how often each unit ran each case at each group size, and the batch sizes seen.

    hist [U, cases, B] and batch_sizes [B] are int64 and accumulated into (so chunks can be added).
    """
    n, n_units = decisions.shape
    counts = np.zeros(n_cases, dtype=np.int64)
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        r = stop - start
        batch_sizes[r - 1] += 1
        for u in range(n_units):
            if policy == LOCKSTEP or r == 1:
                widest = decisions[start, u]
                for i in range(start + 1, stop):
                    c = decisions[i, u]
                    if rank[c] > rank[widest]:
                        widest = c
                hist[u, widest, r - 1] += 1
            else:
                counts[:] = 0
                for i in range(start, stop):
                    counts[decisions[i, u]] += 1
                for c in range(n_cases):
                    if counts[c] > 0:
                        hist[u, c, counts[c] - 1] += 1


@nb.njit(cache=True, parallel=True)
def gather_sum(decisions, table, base, out):
    """out[i] = base + sum_u table[u, decisions[i, u]]: hardware-independent per-input measures."""
    n, n_units = decisions.shape
    for i in nb.prange(n):
        total = base
        for u in range(n_units):
            total += table[u, decisions[i, u]]
        out[i] = total
