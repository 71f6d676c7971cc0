"""The shipped traces and their manifest (traces/MANIFEST.json)."""
from __future__ import annotations

import json
from pathlib import Path

from dfs_sim.errors import InputError, require

TRACES_DIR = Path(__file__).resolve().parents[1] / "traces"
MANIFEST = TRACES_DIR / "MANIFEST.json"
# `dfs-sim run` with no --trace uses this one when the manifest lists it, else the manifest's first.
PREFERRED_DEFAULT = "traces/fmnist_resnet20_b30.npz"


def manifest_entries() -> list[dict]:
    require(MANIFEST.is_file(), MANIFEST, None, "no trace manifest (is this a dfs-sim checkout?)")
    try:
        data = json.loads(MANIFEST.read_text())
    except json.JSONDecodeError as err:
        raise InputError(MANIFEST, None, f"not valid JSON ({err})") from None
    entries = data.get("traces") if isinstance(data, dict) else None
    require(isinstance(entries, list) and entries, MANIFEST, "traces", "must be a non-empty list")
    return entries


def shipped_path(entry: dict) -> Path:
    return TRACES_DIR.parent / entry["file"]


def shipped_default() -> Path:
    entries = manifest_entries()
    files = [entry["file"] for entry in entries]
    chosen = PREFERRED_DEFAULT if PREFERRED_DEFAULT in files else files[0]
    return TRACES_DIR.parent / chosen
