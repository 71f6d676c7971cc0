"""`dfs-sim run --per-input`: one row per input with its cost, its decisions, label and prediction."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from dfs_sim.atomic import atomic_file
from dfs_sim.errors import InputError

PER_INPUT_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet"}


def per_input_frame(result) -> pd.DataFrame:
    """Per input: cost metrics (as in the summary), energy as % of the reference, how many units chose
    each option (`units_<option>`), every unit's option index (`decisions`, space-separated, in the
    order of the network's units), label, prediction and whether it was correct. A static network has
    no options and no decisions, so no such columns."""
    frame = result.per_input.copy()
    frame.insert(0, "input", np.arange(len(frame)))
    reference = result.summary["reference"]["metrics"]["energy_uj"]["value"]
    frame.insert(frame.columns.get_loc("energy_uj") + 1, "energy_pct_of_reference",
                 100.0 * frame["energy_uj"] / reference if reference else np.nan)
    if result.trace is not None:
        decisions = np.asarray(result.trace.decisions)
        for k, option in enumerate(result.options):
            frame[f"units_{option.name}"] = (decisions == k).sum(axis=1)
        frame["decisions"] = [" ".join(map(str, row)) for row in decisions.tolist()] if decisions.shape[1] else ""
    order = [c for c in frame.columns if c not in ("label", "prediction", "correct")]
    return frame[order + [c for c in ("label", "prediction", "correct") if c in frame.columns]]


def per_input_format(output: str | None, fmt: str | None) -> str:
    """The output's format: an explicit --format, else the output file's suffix, else CSV."""
    suffix = Path(output).suffix.lower() if output else ""
    if suffix == ".parquet":
        if fmt not in (None, "parquet"):
            raise InputError(output, None, f"a .parquet file cannot hold --format {fmt}")
        if importlib.util.find_spec("pyarrow") is None:
            raise InputError(output, None, "writing .parquet needs pyarrow (pip install pyarrow); or write .csv")
        return "parquet"
    return fmt or PER_INPUT_FORMATS.get(suffix, "csv")


def write_parquet(frame: pd.DataFrame, output: str) -> None:
    path = Path(output)
    if not path.parent.is_dir():
        raise InputError(path, None, "the output directory does not exist")
    with atomic_file(path) as handle:
        frame.to_parquet(handle, index=False)
