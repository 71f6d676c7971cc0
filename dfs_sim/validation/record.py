"""One validation target: a published figure, what dfs-sim computes for it, and the tolerance between them."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Target:
    target: str
    source: str
    published: float
    simulated: float
    tolerance_pct: float
    #: why this target is expected to fail (docs/validation.md); validate fails if it passes after all,
    #: so that a fix elsewhere retires the note instead of leaving it stale.
    known_failure: str = ""

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.simulated - self.published) / self.published

    @property
    def passed(self) -> bool:
        return abs(self.error_pct) <= self.tolerance_pct + 1e-9

    def to_dict(self) -> dict:
        out = {key: (float(v) if isinstance(v, (float, np.floating)) else v) for key, v in asdict(self).items()}
        out["error_pct"] = float(self.error_pct)
        out["pass"] = bool(self.passed)
        order = ("target", "source", "published", "simulated", "error_pct", "tolerance_pct", "pass", "known_failure")
        return {key: out[key] for key in order}

    @property
    def as_expected(self) -> bool:
        """Passes, or fails for its stated reason."""
        return self.passed != bool(self.known_failure)
