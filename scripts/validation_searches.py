#!/usr/bin/env python3
"""The tiling searches `dfs-sim validate` reads instead of repeating them (dfs_sim/validation/searches/).

On a fresh install the search kernel takes about 10 s of CPU to compile, three times what the whole warm
`validate` takes; the targets' searches are fixed by the shipped networks and configs, so they ship as a
read-only search cache (dfs_sim/cost/cache.py), one file per hardware record, keyed by the search's own
code. `--check` (run by the tests) fails unless the shipped files are exactly what the search computes
now: every shipped entry is searched again and must give the same result, bit for bit, and `validate`
must find every entry it needs in them.

    python scripts/validation_searches.py            # rewrite dfs_sim/validation/searches/
    python scripts/validation_searches.py --check    # exit 1 if they are stale, incomplete or wrong
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from dfs_sim.cost import cache
from dfs_sim.cost.mapping import search_entries
from dfs_sim.cost.records import RESULT
from dfs_sim.validation import SEARCHES, all_targets, conventions_effect, unvalidated
from dfs_sim.validation import targets as targets_module


def run_validation() -> None:
    """Everything `dfs-sim validate` simulates, from scratch (the per-run memo is emptied first)."""
    targets_module._RUNS.clear()
    all_targets()
    unvalidated()
    conventions_effect()


def write(directory: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cache.clear_memory()
        with cache.searching_through(scratch):
            run_validation()
        cache.clear_memory()
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for path in sorted(Path(scratch).glob("search-*.npz")):
            shutil.copyfile(path, directory / path.name)


def wrong_results(directory: Path) -> list[str]:
    """Files of another search code, and entries the search now answers differently."""
    found = []
    for path in sorted(directory.glob("search-*.npz")):
        hardware, entries, results = cache.read_file(path)
        if cache.cache_file(directory, hardware).name != path.name:
            found.append(f"{path.name}: made by another search code or record layout")
            continue
        again = np.zeros(len(entries), dtype=RESULT)
        search_entries(entries, hardware, again)
        as_bytes = lambda records: records.view(np.uint8).reshape(len(entries), -1)  # noqa: E731
        changed = int((as_bytes(again) != as_bytes(results)).any(axis=1).sum())
        if changed:
            found.append(f"{path.name}: {changed} of {len(entries)} results differ from a fresh search")
    return found


def missing_entries(directory: Path) -> int:
    """How many entries `validate` searches that are not in `directory` (a changed search code renames every
    file, so then all are missing)."""
    cache.clear_memory()
    cache.take_counts()
    with cache.searching_through(directory, writable=False):
        run_validation()
    missing = cache.take_counts()["searched"]
    cache.clear_memory()
    return missing


def problems(directory: Path) -> list[str]:
    found = wrong_results(directory)
    missing = missing_entries(directory)
    if missing:
        found.append(f"validate searched {missing} entries that are not shipped")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the shipped searches are wrong")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(SEARCHES)
        for line in found:
            print(f"validation_searches: {line}", file=sys.stderr)
        if found:
            print("validation_searches: run `python scripts/validation_searches.py` and commit the result",
                  file=sys.stderr)
        return 1 if found else 0
    write(SEARCHES)
    files = sorted(SEARCHES.glob("search-*.npz"))
    print(f"wrote {len(files)} files, {sum(len(cache.read_file(p)[1]) for p in files)} searches, to {SEARCHES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
