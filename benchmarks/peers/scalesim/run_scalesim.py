#!/usr/bin/env python3
"""Run SCALE-Sim 3.0.0 on the cross-check layers and store its cycles in dfs_sim/validation/scalesim_layers.csv.

SCALE-Sim (Samajdar et al., github.com/scalesim-project/scale-sim-v2, PyPI `scalesim`) is an
independent, trace-driven simulator of systolic arrays. It is never a dependency of dfs-sim: this
script makes its own virtual environment (`--venv`), writes SCALE-Sim's inputs (a conv topology
CSV, a layout CSV and a .cfg) into a temporary folder, runs one layer at a time in that
environment (this same file with `--worker`), and appends one CSV row per run. The CSV ships
inside the package, so `dfs-sim validate` and the tests read it without SCALE-Sim installed.

    python benchmarks/peers/scalesim/run_scalesim.py                    # all runs not yet in the CSV
    python benchmarks/peers/scalesim/run_scalesim.py --only resnet20_c1 --fresh -o one_layer.csv
    python benchmarks/peers/scalesim/run_scalesim.py --report      # ours vs SCALE-Sim, markdown (needs dfs_sim)

Each run is resumable: rows already in the output CSV are skipped. See README.md for timings.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DEFAULT_CSV = REPO / "dfs_sim" / "validation" / "scalesim_layers.csv"
DEFAULT_VENV = HERE / ".venv"  # git-ignored (.venv/)
SCALESIM_VERSION = "3.0.0"
SCALESIM_REQUIREMENTS = (f"scalesim=={SCALESIM_VERSION}", "numpy<2.4")  # what scalesim 3.0.0 needs

ARRAY_ROWS = ARRAY_COLS = 16  # hw_configs/bitsystolic_{os,ws}.yaml: array.params rows/columns
DATAFLOWS = ("os", "ws")

# Layer shapes: (name, network and layer it comes from, c_in, c_out, h_in (= w_in, unpadded),
# kernel, stride, padding, reads the network input). AlexNet's conv2 and conv5 are grouped (two
# groups); one group is listed, since a grouped conv runs its groups one after another.
LAYERS = (
    ("alexnet_conv1", "AlexNet conv1 (stem, 11x11/4, 55x55 out)", 3, 96, 227, 11, 4, 0, True),
    ("alexnet_conv2_g", "AlexNet conv2, one of two groups (5x5, 27x27 out)", 48, 128, 27, 5, 1, 2, False),
    ("alexnet_conv5_g", "AlexNet conv5, one of two groups (3x3, 13x13 out)", 192, 128, 13, 3, 1, 1, False),
    ("vgg16_conv1_1", "VGG-16 conv1_1 (stem, 3x3, 224x224 out)", 3, 64, 224, 3, 1, 1, True),
    ("resnet18_conv2", "ResNet-18 conv2_x 3x3 (56x56 out)", 64, 64, 56, 3, 1, 1, False),
    ("resnet18_conv3", "ResNet-18 conv3_x 3x3 (28x28 out)", 128, 128, 28, 3, 1, 1, False),
    ("resnet18_conv4", "ResNet-18 conv4_x 3x3 (14x14 out)", 256, 256, 14, 3, 1, 1, False),
    ("resnet18_conv5_1", "ResNet-18 conv5_1 3x3/2 (14x14 -> 7x7)", 256, 512, 14, 3, 2, 1, False),
    ("resnet18_down3", "ResNet-18 conv3_1 projection 1x1/2 (56x56 -> 28x28)", 64, 128, 56, 1, 2, 0, False),
    ("resnet50_1x1_56", "ResNet-50 conv2_x 1x1 expansion (56x56 out)", 64, 256, 56, 1, 1, 0, False),
    ("resnet50_1x1_7", "ResNet-50 conv5_x 1x1 reduction (7x7 out)", 2048, 512, 7, 1, 1, 0, False),
    ("resnet20_c1", "ResNet-20 (Fashion-MNIST) stage 1 3x3 (28x28 out)", 16, 16, 28, 3, 1, 1, False),
    ("resnet20_c3_1", "ResNet-20 (Fashion-MNIST) stage 3 first 3x3/2 (14x14 -> 7x7)", 32, 64, 14, 3, 2, 1, False),
    ("resnet18_fc", "ResNet-18 fc 512 -> 1000", 512, 1000, 1, 1, 1, 0, False),
    ("resnet20_fc", "ResNet-20 fc 64 -> 10", 64, 10, 1, 1, 1, 0, False),
    ("alexnet_fc8", "AlexNet fc8 4096 -> 1000", 4096, 1000, 1, 1, 1, 0, False),
)

# SCALE-Sim's memories hold 1-byte words. "shipped" gives them the element capacity of the YAMLs'
# buffers at the compared precision (2-bit weights and activations, packed; 32-bit outputs):
# IBUF 32 KB -> 128 K inputs, WBUF 64 KB -> 256 K weights, OBUF 16 KB -> 4 K outputs; and the
# DRAM link of 192 bits/cycle -> 96 inputs, 96 weights, 6 outputs per cycle (SCALE-Sim gives each
# operand its own port; dfs-sim shares one link). "unbounded" holds any of these layers whole.
BUFFER_CONFIGS = {
    "shipped": {"ifmap_kb": 128, "filter_kb": 256, "ofmap_kb": 4, "ifmap_bw": 96, "filter_bw": 96, "ofmap_bw": 6},
    "unbounded": {"ifmap_kb": 65536, "filter_kb": 65536, "ofmap_kb": 65536,
                  "ifmap_bw": 96, "filter_bw": 96, "ofmap_bw": 6},
}

SHAPE_FIELDS = ("layer", "source", "c_in", "c_out", "h_in", "w_in", "kernel", "stride", "padding", "h_out",
                "w_out", "reads_input")
RUN_FIELDS = ("dataflow", "array_rows", "array_cols", "buffers", "ifmap_sram_kb", "filter_sram_kb",
              "ofmap_sram_kb", "ifmap_dram_words_per_cycle", "filter_dram_words_per_cycle",
              "ofmap_dram_words_per_cycle")
RESULT_FIELDS = ("compute_cycles", "stall_cycles", "total_cycles", "total_cycles_incl_prefetch",
                 "ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ifmap_dram_reads",
                 "filter_dram_reads", "ofmap_dram_writes", "scalesim_version", "run_seconds")
FIELDS = SHAPE_FIELDS + RUN_FIELDS + RESULT_FIELDS


def layer_shape(entry) -> dict:
    name, source, c_in, c_out, h_in, kernel, stride, padding, reads_input = entry
    h_out = (h_in + 2 * padding - kernel) // stride + 1
    return {"layer": name, "source": source, "c_in": c_in, "c_out": c_out, "h_in": h_in, "w_in": h_in,
            "kernel": kernel, "stride": stride, "padding": padding, "h_out": h_out, "w_out": h_out,
            "reads_input": int(reads_input)}


def scalesim_ifmap_side(shape: dict) -> int:
    """The input side SCALE-Sim gets: it does not pad, and it rounds the output side up, ceil((H - k + s) / s),
    where a framework rounds down; so it gets the part of the padded map the outputs use."""
    return (shape["h_out"] - 1) * shape["stride"] + shape["kernel"]


def scalesim_inputs(shape: dict, dataflow: str, buffers: dict, folder: Path) -> tuple[Path, Path, Path]:
    """Write SCALE-Sim's topology, layout and config files for one run; return their paths."""
    topology = folder / "topology.csv"
    used = scalesim_ifmap_side(shape)
    topology.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                        "Num Filter, Strides,\n"
                        f"{shape['layer']}, {used}, {used}, {shape['kernel']}, {shape['kernel']}, "
                        f"{shape['c_in']}, {shape['c_out']}, {shape['stride']},\n")
    layout = folder / "layout.csv"  # read even when no custom layout is used
    layout.write_text("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height "
                      "Intraline Factor, Filter Width Intraline Factor, Channel Intraline Factor, Num Filter "
                      "Intraline Factor,\n"
                      f"{shape['layer']}, 1, 1, 1, 1, 1, 1,\n")
    config = folder / "scale.cfg"
    config.write_text(f"""[general]
run_name = crosscheck

[architecture_presets]
ArrayHeight = {ARRAY_ROWS}
ArrayWidth = {ARRAY_COLS}
ifmapsramszkB = {buffers['ifmap_kb']}
filtersramszkB = {buffers['filter_kb']}
ofmapsramszkB = {buffers['ofmap_kb']}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {buffers['ofmap_bw']}
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = {buffers['ifmap_bw']}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = {buffers['filter_bw']}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = USER
UseRamulatorTrace = False
""")
    return topology, layout, config


def worker(config: str, topology: str, layout: str, out_dir: str) -> None:
    """Runs inside SCALE-Sim's venv: simulate one layer, print its numbers as JSON on the last line."""
    from importlib.metadata import version

    from scalesim.scale_sim import scalesim

    sim = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology, layout=layout)
    sim.run_scale(top_path=out_dir)
    layer = sim.runner.single_layer_sim_object_list[0]
    overall, total, stall, *_ = layer.get_compute_report_items()
    detail = layer.get_detail_report_items()
    print(json.dumps({
        "ofmap_side": [int(v) for v in sim.topo.get_layer_ofmap_dims(0)],
        # Rows of the demand matrices = cycles of the stall-free array, fill and drain included.
        "compute_cycles": int(layer.compute_system.ofmap_demand_matrix.shape[0]),
        "stall_cycles": int(stall), "total_cycles": int(total), "total_cycles_incl_prefetch": int(overall),
        "ifmap_sram_reads": int(detail[2]), "filter_sram_reads": int(detail[5]), "ofmap_sram_writes": int(detail[8]),
        "ifmap_dram_reads": int(detail[11]), "filter_dram_reads": int(detail[14]),
        "ofmap_dram_writes": int(detail[17]), "scalesim_version": version("scalesim"),
    }))


def ensure_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        print(f"creating SCALE-Sim venv in {path}", flush=True)
        venv.create(path, with_pip=True)
    probe = subprocess.run([str(python), "-c", "import scalesim, numpy; from importlib.metadata import version; "
                            "print(version('scalesim'))"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != SCALESIM_VERSION:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *SCALESIM_REQUIREMENTS], check=True)
    return python


def run_one(python: Path, shape: dict, dataflow: str, buffer_name: str) -> dict:
    buffers = BUFFER_CONFIGS[buffer_name]
    with tempfile.TemporaryDirectory(prefix="scalesim-") as folder:
        topology, layout, config = scalesim_inputs(shape, dataflow, buffers, Path(folder))
        start = time.perf_counter()
        done = subprocess.run([str(python), __file__, "--worker", str(config), str(topology), str(layout),
                               str(Path(folder) / "out")], capture_output=True, text=True, cwd=folder)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"SCALE-Sim failed on {shape['layer']} {dataflow} {buffer_name}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result.pop("ofmap_side") != [shape["h_out"], shape["w_out"]]:
        raise RuntimeError(f"SCALE-Sim computed another output size for {shape['layer']}")
    row = dict(shape)
    row.update({"dataflow": dataflow, "array_rows": ARRAY_ROWS, "array_cols": ARRAY_COLS, "buffers": buffer_name,
                "ifmap_sram_kb": buffers["ifmap_kb"], "filter_sram_kb": buffers["filter_kb"],
                "ofmap_sram_kb": buffers["ofmap_kb"], "ifmap_dram_words_per_cycle": buffers["ifmap_bw"],
                "filter_dram_words_per_cycle": buffers["filter_bw"], "ofmap_dram_words_per_cycle": buffers["ofmap_bw"]})
    row.update(result)
    row["run_seconds"] = round(seconds, 1)
    return row


HEADER = """# SCALE-Sim {version} (pip scalesim), {rows}x{cols} systolic array, one layer a run, batch 1, 1-byte words.
# Its input map is the part of the padded map the outputs use: (h_out - 1) * stride + kernel rows and columns.
# Made by benchmarks/peers/scalesim/run_scalesim.py (see README.md there); do not edit by hand.
# compute_cycles: rows of SCALE-Sim's demand matrices (stall-free, fill and drain included);
# stall_cycles, total_cycles, total_cycles_incl_prefetch: its COMPUTE_REPORT; *_sram_*, *_dram_*: words.
"""


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def write_rows(path: Path, rows: list[dict]) -> None:
    order = {(entry[0], flow, buf): i for i, (entry, flow, buf) in enumerate(
        (e, f, b) for b in BUFFER_CONFIGS for e in LAYERS for f in DATAFLOWS)}
    rows = sorted(rows, key=lambda r: order.get((r["layer"], r["dataflow"], r["buffers"]), len(order)))
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        f.write(HEADER.format(version=SCALESIM_VERSION, rows=ARRAY_ROWS, cols=ARRAY_COLS))
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def report() -> str:
    """Markdown table: our compute cycles against SCALE-Sim's for every stored layer and dataflow."""
    from dfs_sim.validation.scalesim import VARIANTS, comparison

    tables = {variant: comparison(variant).set_index(["layer", "dataflow"]) for variant in VARIANTS}
    lines = ["| layer | flow | SCALE-Sim compute | ours, unbounded | ours, unbounded buffers | ours, shipped | "
             "SCALE-Sim total, shipped | ours total, shipped |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for key, row in tables["shipped"].iterrows():
        cells = [f"{tables[v].loc[key, 'ours_compute']:,.0f} ({tables[v].loc[key, 'compute_delta_pct']:+.1f} %)"
                 for v in ("unbounded", "unbounded-buffers", "shipped")]
        total = 100.0 * (row["ours_total"] / row["scalesim_total"] - 1.0)
        lines.append(f"| {key[0]} | {key[1].upper()} | {row['scalesim_compute']:,} | " + " | ".join(cells)
                     + f" | {row['scalesim_total']:,} | {row['ours_total']:,.0f} ({total:+.1f} %) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="SCALE-Sim's own venv (made if missing)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--only", nargs="*", help="layer names (default: all)")
    parser.add_argument("--buffers", nargs="*", choices=tuple(BUFFER_CONFIGS), default=list(BUFFER_CONFIGS))
    parser.add_argument("--dataflows", nargs="*", choices=DATAFLOWS, default=list(DATAFLOWS))
    parser.add_argument("--fresh", action="store_true", help="ignore rows already in the output")
    parser.add_argument("--report", action="store_true",
                        help="print ours vs SCALE-Sim from the stored CSV, run nothing")
    args = parser.parse_args(argv)
    if args.report:
        print(report())
        return 0
    python = ensure_venv(args.venv)
    rows = [] if args.fresh else read_rows(args.output)
    done = {(r["layer"], r["dataflow"], r["buffers"]) for r in rows}
    for buffer_name in args.buffers:
        for entry in LAYERS:
            if args.only and entry[0] not in args.only:
                continue
            for dataflow in args.dataflows:
                if (entry[0], dataflow, buffer_name) in done:
                    continue
                row = run_one(python, layer_shape(entry), dataflow, buffer_name)
                print(f"{row['layer']:18s} {dataflow} {buffer_name:9s} compute {row['compute_cycles']:>9} "
                      f"stall {row['stall_cycles']:>8} total {row['total_cycles']:>9}  {row['run_seconds']:7.1f} s",
                      flush=True)
                rows.append(row)
                write_rows(args.output, rows)  # after every run: a killed sweep resumes where it stopped
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:])
    else:
        sys.exit(main())
