"""`dfs-sim validate`: the cost models against results published outside this project.

The targets live in `targets.py`; the data they compare with (the Bit Fusion simulator's per-layer
results, its Eyeriss baseline) in the CSV files beside it. `docs/validation.md` lists every target,
its source and tolerance, and what is not validated.
"""
from dfs_sim.validation.targets import (COVERAGE, DATA, NETWORKS, SEARCHES, Comparison, ConventionEffect, Coverage, Target,
                                        all_targets, conventions_effect, unvalidated)

__all__ = ["COVERAGE", "DATA", "NETWORKS", "SEARCHES", "Comparison", "ConventionEffect", "Coverage", "Target", "all_targets",
           "conventions_effect", "unvalidated"]
