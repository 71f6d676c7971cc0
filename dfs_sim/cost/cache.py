"""An on-disk cache of tiling-search results: `dfs-sim sweep --cache DIR` keeps it in DIR/search/, `dfs-sim
validate` reads the searches shipped for its targets (dfs_sim/validation/searches/), and any Python caller
can switch one on for a `with` block: searching_through(DIR).

The search is a pure function of one ENTRY record (layer shape, stored bits, batch, array mapping,
residency) and the HARDWARE record every entry of a config shares (buffers, DRAM link, energies,
dataflow, conventions), computed by the search's code (cost/mapping.py and the records it reads). So a
cache file holds, for one (HARDWARE record, search code) pair, the RESULT of every ENTRY searched under
it: a later run, or an overlapping sweep point (another trace, batch or policy on the same machine),
searches only the entries it has not seen. Files are NumPy archives of plain bytes (read with
allow_pickle=False) that also hold their HARDWARE record, so any file can be searched again and
compared; a file that is unreadable or of another layout is ignored and rewritten, so a damaged cache
costs time, not results.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
from pathlib import Path

import numpy as np

from dfs_sim.cost.records import ENTRY, HARDWARE, RESULT

# The search's own sources: a cached result is reused only by the search code that computed it, whatever
# else in dfs-sim changed.
SEARCH_SOURCES = ("cost/mapping.py", "cost/records.py")

_ACTIVE: dict = {"directory": None, "writable": True}
_MEMORY: dict[str, dict[bytes, bytes]] = {}  # per process: a file is read once
_COUNTS = {"searched": 0, "reused": 0}


@contextlib.contextmanager
def searching_through(directory: str | Path | None, *, writable: bool = True):
    """Search through the cache in `directory` (None: no cache) for the duration of a `with` block, then
    back to what was active before. A read-only cache (`writable=False`, e.g. one shipped inside the
    package) is read but never written."""
    before = dict(_ACTIVE)
    _ACTIVE.update(directory=None if directory is None else Path(directory), writable=writable)
    try:
        yield
    finally:
        _ACTIVE.update(before)


def active() -> Path | None:
    return _ACTIVE["directory"]


def _sources_digest(paths) -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def code_digest() -> str:
    """Of every source file of dfs_sim: a cached sweep point is reused only by the code that computed it."""
    return _sources_digest(Path(__file__).resolve().parents[1].rglob("*.py"))


@functools.cache
def search_digest() -> str:
    """Of the search's own sources (SEARCH_SOURCES)."""
    root = Path(__file__).resolve().parents[1]
    return _sources_digest(root / source for source in SEARCH_SOURCES)


def cache_file(directory: Path, hardware: np.ndarray) -> Path:
    key = hashlib.sha256(b"".join([hardware.tobytes(), repr(ENTRY.descr).encode(), repr(HARDWARE.descr).encode(),
                                   repr(RESULT.descr).encode(), search_digest().encode()])).hexdigest()[:24]
    return directory / f"search-{key}.npz"


def _read(path: Path) -> dict[bytes, bytes]:
    key = str(path)
    if key in _MEMORY:
        return _MEMORY[key]
    known: dict[bytes, bytes] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            entries, results = data["entries"], data["results"]
        if (entries.dtype == np.uint8 and results.dtype == np.uint8 and entries.ndim == results.ndim == 2
                and entries.shape[1] == ENTRY.itemsize and results.shape[1] == RESULT.itemsize
                and len(entries) == len(results)):
            known = {e.tobytes(): r.tobytes() for e, r in zip(entries, results)}
    except (OSError, ValueError, KeyError, EOFError):
        pass  # absent or damaged: searched afresh and rewritten
    _MEMORY[key] = known
    return known


def read_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cache file's HARDWARE record, ENTRY records and their RESULT records (to search them again)."""
    with np.load(path, allow_pickle=False) as data:
        return (data["hardware"].view(HARDWARE).ravel(), data["entries"].view(ENTRY).ravel(),
                data["results"].view(RESULT).ravel())


def _write(path: Path, hardware: np.ndarray, known: dict[bytes, bytes]) -> None:
    from dfs_sim.atomic import atomic_file

    entries = np.frombuffer(b"".join(known), dtype=np.uint8).reshape(len(known), ENTRY.itemsize)
    results = np.frombuffer(b"".join(known.values()), dtype=np.uint8).reshape(len(known), RESULT.itemsize)
    record = np.ascontiguousarray(hardware).view(np.uint8).reshape(-1, HARDWARE.itemsize)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as handle:
            np.savez(handle, hardware=record, entries=entries, results=results)
    except OSError:
        pass  # a full or read-only cache costs speed, not results


def cached_search(entries: np.ndarray, hardware: np.ndarray, search) -> np.ndarray:
    """RESULT records of distinct ENTRY records `entries`: those in the active cache read back, the rest
    found by `search(entries, out)` and added to it. Without an active cache, all are searched."""
    found = np.zeros(len(entries), dtype=RESULT)
    directory = active()
    if directory is None:
        search(entries, found)
        return found
    path = cache_file(directory, hardware)
    known = _read(path)
    keys = [row.tobytes() for row in np.ascontiguousarray(entries).view(np.uint8).reshape(len(entries), -1)]
    seen = np.array([key in known for key in keys], dtype=bool)
    hits, missing = np.flatnonzero(seen), np.flatnonzero(~seen)
    _COUNTS["reused"] += len(hits)
    _COUNTS["searched"] += len(missing)
    if len(hits):
        found[hits] = np.frombuffer(b"".join(known[keys[i]] for i in hits), dtype=RESULT)
    if len(missing):
        searched = np.zeros(len(missing), dtype=RESULT)
        search(entries[missing], searched)
        found[missing] = searched
        added = zip((keys[i] for i in missing), (r.tobytes() for r in searched))
        if not _ACTIVE["writable"]:
            known.update(added)  # remembered in this process only
            return found
        # Merge with what other processes wrote meanwhile, so concurrent workers lose nothing they agree on.
        _MEMORY.pop(str(path), None)
        merged = dict(_read(path))
        merged.update(added)
        merged.update(known)
        _MEMORY[str(path)] = merged
        _write(path, hardware, merged)
    return found


def take_counts() -> dict:
    """Entries searched and entries read back since the last call, in this process."""
    counts = dict(_COUNTS)
    _COUNTS.update(searched=0, reused=0)
    return counts


def clear_memory() -> None:
    """Forget what this process read, so the files are read again (tests)."""
    _MEMORY.clear()
