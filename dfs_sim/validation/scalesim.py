"""The bit-serial systolic array against SCALE-Sim, an independent systolic-array simulator.

`scalesim_layers.csv` holds SCALE-Sim 3.0.0's cycles for 16 layers on a 16x16 array, output- and
weight-stationary, with memories sized like `hw_configs/bitsystolic_{os,ws}.yaml` ("shipped") and
with memories that hold any layer whole ("unbounded"). It is made by
`benchmarks/peers/scalesim/run_scalesim.py`, which runs SCALE-Sim in its own virtual environment;
nothing here needs SCALE-Sim installed.

At 2-bit weights and activations one MAC takes one cycle on the 2-bit-slice PEs, so the array is
a plain systolic array and its compute cycles compare directly with SCALE-Sim's. Each layer is
costed as it is inside a network: a stem reads the network input (and may be unfolded im2col),
any other layer follows a producer (a 1x1 identity pool here, costed separately and left out).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from dfs_sim.engine import simulate_network
from dfs_sim.hardware.config import HwConfig, load_hw
from dfs_sim.validation.record import Target
from dfs_sim.workload.network import Layer, Network

CSV = Path(__file__).resolve().parent / "scalesim_layers.csv"
HW_NAMES = {"os": "bitsystolic_os", "ws": "bitsystolic_ws"}
COMPARED_BITS = 2  # one 2x2-bit slice product per MAC: one cycle, as in SCALE-Sim
UNBOUNDED_KB = 1 << 20  # 1 GB per buffer: holds any of these layers whole
UNBOUNDED_LINK = 1e12  # DRAM bits per cycle: no transfer is long enough to reward splitting a layer
TOLERANCE_PCT = 5.0
# Our configurations, each with the SCALE-Sim runs it is compared with:
# - shipped: the YAMLs as they are;
# - unbounded: every buffer and the DRAM link unbounded, so nothing makes the search split a layer
#   and only the fold arithmetic is left (the first fill and last drain our model exposes would
#   otherwise still favour small tiles);
# - unbounded-buffers: unbounded buffers, the shipped 192-bit link.
VARIANTS = {"shipped": "shipped", "unbounded": "unbounded", "unbounded-buffers": "unbounded"}
SOURCE = ("SCALE-Sim {version} (pip scalesim; github.com/scalesim-project/scale-sim-v2), {array} array, "
          "{flow}, {buffers} buffers: compute cycles at 2-bit weights and activations")
FLOW_NAMES = {"os": "output-stationary", "ws": "weight-stationary"}


def scalesim_layers() -> pd.DataFrame:
    return pd.read_csv(CSV, comment="#")


def hw_for(dataflow: str, variant: str) -> HwConfig:
    """The shipped array config of one dataflow, as it is or with unbounded memories (see VARIANTS)."""
    hw = load_hw(HW_NAMES[dataflow])
    if variant == "shipped":
        return hw
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    big = tuple(replace(b, size_bits=UNBOUNDED_KB * 8192) for b in hw.buffers)
    link = UNBOUNDED_LINK if variant == "unbounded" else hw.dram.bandwidth_bits_per_cycle
    return replace(hw, name=f"{hw.name} ({variant})", buffers=big,
                   dram=replace(hw.dram, bandwidth_bits_per_cycle=link))


def layer_network(row, bits: int = COMPARED_BITS) -> tuple[Network, str]:
    """A network that runs the row's layer at `bits` weight and activation bits, and the layer's name in it."""
    kind = "fc" if row["h_out"] == 1 and row["kernel"] == 1 and row["h_in"] == 1 else "conv"
    layer = Layer(row["layer"], kind, int(row["c_in"]), int(row["c_out"]), int(row["h_in"]), int(row["w_in"]),
                  int(row["h_out"]), int(row["w_out"]), kernel=int(row["kernel"]), stride=int(row["stride"]),
                  padding=int(row["padding"]), precision="fixed", w_bits=bits, a_bits=bits,
                  reads_input=bool(row["reads_input"]))
    shape = (layer.c_in, layer.h_in, layer.w_in)
    if layer.reads_input:
        return Network(layer.name, (layer,), (), shape), layer.name
    producer = Layer("producer", "pool", layer.c_in, layer.c_in, layer.h_in, layer.w_in, layer.h_in, layer.w_in,
                     precision="fixed", w_bits=bits, a_bits=bits, reads_input=True)
    return Network(layer.name, (producer, layer), (), shape), layer.name


def comparison(variant: str = "shipped", bits: int = COMPARED_BITS) -> pd.DataFrame:
    """One row per SCALE-Sim run the variant compares with: its cycles and ours (at `bits` weight and
    activation bits), same layer, array and dataflow."""
    rows = []
    for _, theirs in scalesim_layers().iterrows():
        if theirs["buffers"] != VARIANTS[variant]:
            continue
        network, name = layer_network(theirs, bits)
        ours = simulate_network(network, hw_for(theirs["dataflow"], variant), batch=1)
        ours = ours.per_layer.set_index("layer").loc[name]
        rows.append({
            "layer": name, "dataflow": theirs["dataflow"], "variant": variant, "scalesim_buffers": theirs["buffers"],
            "scalesim_compute": int(theirs["compute_cycles"]), "ours_compute": float(ours["compute_cycles"]),
            "scalesim_stall": int(theirs["stall_cycles"]), "ours_stall": float(ours["stall_cycles"]),
            "scalesim_total": int(theirs["total_cycles"]), "ours_total": float(ours["cycles"]),
            "array": f"{int(theirs['array_rows'])}x{int(theirs['array_cols'])}",
            "scalesim_version": str(theirs["scalesim_version"]),
        })
    frame = pd.DataFrame(rows)
    frame["compute_delta_pct"] = 100.0 * (frame["ours_compute"] / frame["scalesim_compute"] - 1.0)
    return frame


# Weight-stationary layers whose pixels do not fit the shipped 16 KB OBUF beside one weight fold.
WS_SPILLS = ("alexnet_conv1", "alexnet_conv2_g", "alexnet_conv5_g", "vgg16_conv1_1", "resnet18_conv2", "resnet18_conv3",
             "resnet18_conv4", "resnet18_down3", "resnet50_1x1_56", "resnet20_c1")
WS_SPILL_REASON = ("two strategies for a 16 KB OBUF: SCALE-Sim streams every pixel through each weight fold and "
                   "spills the unfinished sums to memory, which it books as stall cycles (its total is about twice "
                   "its compute); our search tiles the pixels so the sums stay in the OBUF and pays the fold's "
                   "fill once per tile: 19-41 % more compute cycles, 23-58 % fewer total cycles "
                   "(benchmarks/peers/scalesim/README.md)")


def scalesim_targets(variant: str = "shipped") -> list[Target]:
    """Compute cycles of every stored layer and dataflow within 5 % of SCALE-Sim's."""
    table = comparison(variant)
    return [Target(f"BitSystolic-{row.dataflow.upper()} {row.layer} vs SCALE-Sim: compute cycles ({row.variant})",
                   SOURCE.format(version=row.scalesim_version, array=row.array, flow=FLOW_NAMES[row.dataflow],
                                 buffers=row.scalesim_buffers),
                   float(row.scalesim_compute), float(row.ours_compute), TOLERANCE_PCT,
                   known_failure=WS_SPILL_REASON if (variant == "shipped" and row.dataflow == "ws"
                                                     and row.layer in WS_SPILLS) else "")
            for row in table.itertuples()]
