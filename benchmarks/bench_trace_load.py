"""What checking a memory-mapped trace costs: the streaming CRC against the rest of the read.

    python benchmarks/bench_trace_load.py [--inputs 1000000] [--repeat 5]

A synthetic DFS-ResNet74 trace (35 gated units, random decisions, 35 MB of decisions at 1M
inputs). In the same process, on the same (page-cached) file:
- `load_trace`: every check, the decisions memory-mapped, their CRC verified in 16 MB chunks;
- the CRC pass alone (the same chunked zlib.crc32 over the member's bytes, memory-mapped);
- the option-index check alone (chunked max over the memory map, what any validator must read);
- numpy's own `np.load(...)["decisions"]`, which reads the member into memory (checking its CRC).
"""
from __future__ import annotations

import argparse
import mmap
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dfs_sim.trace import _CRC_CHUNK, default_options, load_trace, write_trace
from dfs_sim.workload.resnet import dfs_resnet
from timing import best_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    network = dfs_resnet((12, 12, 12))
    rng = np.random.default_rng(0)
    decisions = rng.integers(0, 4, (args.inputs, network.n_units), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_trace(Path(tmp) / "big.npz", network=network, options=default_options(), decisions=decisions)
        info = next(i for i in zipfile.ZipFile(path).infolist() if i.filename == "decisions.npy")
        mapped = load_trace(path).decisions
        assert isinstance(mapped, np.memmap)

        start = info.header_offset + 30 + len(info.filename) + 20  # numpy writes a 20-byte zip64 extra field

        def crc_only():
            with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as whole:
                view, crc = memoryview(whole), 0
                for offset in range(start, start + info.file_size, _CRC_CHUNK):
                    crc = zlib.crc32(view[offset:min(offset + _CRC_CHUNK, start + info.file_size)], crc)
                view.release()
            assert crc == info.CRC

        def range_only():
            for start in range(0, len(mapped), 1 << 20):
                int(mapped[start:start + (1 << 20)].max())

        def numpy_load():
            with np.load(path, allow_pickle=False) as archive:
                int(archive["decisions"].max())

        times = {"load_trace": best_of(lambda: load_trace(path), args.repeat),
                 "crc": best_of(crc_only, args.repeat), "range": best_of(range_only, args.repeat),
                 "numpy": best_of(numpy_load, args.repeat)}
    mb = decisions.nbytes / 1e6
    print(f"| inputs | decisions (MB) | load_trace (s) | CRC pass (s) | CRC / load_trace | index check (s) "
          f"| np.load (s) | load_trace / np.load |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.inputs:,} | {mb:.0f} | {times['load_trace']:.3f} | {times['crc']:.3f} | "
          f"{times['crc'] / times['load_trace']:.2f} | {times['range']:.3f} | {times['numpy']:.3f} | "
          f"{times['load_trace'] / times['numpy']:.2f} |")


if __name__ == "__main__":
    main()
