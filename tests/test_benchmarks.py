"""The tiling-search benchmark calls the numba kernel directly: it must keep up with its signature."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mapping_benchmark_runs():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_mapping.py")], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| Bit Fusion benchmarks")]
    assert rows and float(rows[0].split("|")[4]) > 0  # ms per search
