"""How dynamic a trace is: the diversity of its per-input decisions and the spread of its cost.

A model whose gates ignore the input makes one decision vector for every input and costs the same
for all of them; the point of DFS is the opposite. These numbers say which one a trace is:

- distinct decision vectors, and the share of inputs that make the most common one;
- per gated block, the entropy (bits) of its decision over the inputs (0: constant);
- per metric, p5 / p50 / p95 over inputs and the p95/p5 ratio (1.0: every input costs the same).
"""
from __future__ import annotations

import numpy as np

SPREAD_PERCENTILES = (5, 50, 95)


def decision_diversity(decisions: np.ndarray, n_options: int) -> dict:
    """Diversity of a [inputs, units] decision matrix (option indices)."""
    decisions = np.asarray(decisions)
    n, units = decisions.shape
    if n == 0 or units == 0:
        return {"distinct_vectors": int(n > 0), "top_vector_share_pct": 100.0 if n else None,
                "block_entropy_bits": [0.0] * units, "mean_block_entropy_bits": 0.0, "varying_blocks": 0}
    _, counts = np.unique(decisions, axis=0, return_counts=True)
    entropy = []
    for unit in range(units):
        p = np.bincount(decisions[:, unit].astype(np.int64), minlength=n_options) / n
        p = p[p > 0]
        entropy.append(float(-(p * np.log2(p)).sum()) + 0.0)  # + 0.0: no "-0.0" for a constant block
    return {
        "distinct_vectors": int(len(counts)),
        "top_vector_share_pct": float(100.0 * counts.max() / n),
        "block_entropy_bits": [round(e, 4) for e in entropy],
        "mean_block_entropy_bits": round(float(np.mean(entropy)), 4),
        "varying_blocks": int(sum(e > 0 for e in entropy)),
    }


def spread(values) -> dict:
    """p5 / p50 / p95 of per-input values and the p95/p5 ratio."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {f"p{q}": None for q in SPREAD_PERCENTILES} | {"p95_over_p5": None}
    low, mid, high = np.percentile(values, SPREAD_PERCENTILES)
    return {"p5": float(low), "p50": float(mid), "p95": float(high),
            "p95_over_p5": float(high / low) if low > 0 else None}


def trace_dynamics(result, metrics=("energy_uj", "cycles")) -> dict:
    """Decision diversity of a simulated trace, and the per-input spread of its cost on that hardware."""
    trace = result.trace
    if trace is None:
        raise ValueError("a static network has no decisions: simulate a trace")
    out = decision_diversity(trace.decisions, len(trace.options))
    out["hw"] = result.hw.name
    out["batch"] = result.batch
    for metric in metrics:
        out[metric] = spread(result.per_input[metric].to_numpy())
    return out
