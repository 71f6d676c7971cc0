"""The shipped traces and their manifest (traces/MANIFEST.json)."""
from __future__ import annotations

from pathlib import Path

from dfs_sim import jsonio
from dfs_sim.errors import input_boundary, require
from dfs_sim.resources import shipped

TRACES_DIR = shipped("traces")
MANIFEST = TRACES_DIR / "MANIFEST.json"
# `dfs-sim run` with no --trace uses this one when the manifest lists it, else the manifest's first.
PREFERRED_DEFAULT = "traces/fmnist_resnet20_b30.npz"


def manifest_entries() -> list[dict]:
    """The manifest's entries; each names a trace file inside the traces directory."""
    require(MANIFEST.is_file(), MANIFEST, None, "no trace manifest (the install lacks its shipped traces)")
    with input_boundary(MANIFEST, "a trace manifest"):
        data = jsonio.load(MANIFEST, "trace manifest")
        entries = data.get("traces") if isinstance(data, dict) else None
        require(isinstance(entries, list) and entries, MANIFEST, "traces", "must be a non-empty list")
        root = TRACES_DIR.resolve()
        for i, entry in enumerate(entries):
            require(isinstance(entry, dict) and isinstance(entry.get("file"), str) and entry["file"], MANIFEST,
                    f"traces[{i}].file", "must name a trace file")
            where = (TRACES_DIR.parent / entry["file"]).resolve()
            require(where.is_relative_to(root), MANIFEST, f"traces[{i}].file",
                    "must lie inside the traces directory")
        return entries


def shipped_default() -> Path:
    entries = manifest_entries()
    files = [entry["file"] for entry in entries]
    chosen = PREFERRED_DEFAULT if PREFERRED_DEFAULT in files else files[0]
    return TRACES_DIR.parent / chosen

