"""The layer table of a GatedResNet, derived by the recorder (dfs_sim/model/recorder.py) from forward hooks:
the network that traces, stage 3's real-cost budget (train --cost METRIC@HW) and the simulator share."""
from __future__ import annotations

import re
from dataclasses import replace

from dfs_sim.model.gated_resnet import FULL, GatedResNet
from dfs_sim.model.recorder import Recorder
from dfs_sim.workload.network import Network


def _dfs_layer_name(path: str, call: int) -> str:
    """The names of dfs_sim.workload.resnet.dfs_resnet: block3.conv1, block3.proj, gate3.embed, gate3.lstm."""
    match = re.fullmatch(r"blocks\.(\d+)\.(conv1|conv2|proj)(?:\.0)?", path)
    if match:
        return f"block{int(match[1]) + 1}.{match[2]}"
    match = re.fullmatch(r"gates\.(\d+)\.(pool|embed)", path)
    if match:
        return f"gate{int(match[1]) + 2}.{match[2]}"
    if path in ("lstm", "gate_fc"):  # shared by every gate, one call per gate
        return f"gate{call + 2}.{'lstm' if path == 'lstm' else 'fc'}"
    return path


def dfs_recorder(model: GatedResNet) -> Recorder:
    """The recorder for a GatedResNet: blocks 2.. are the units, each decided by its gate; a
    downsampling projection follows its block (full precision, or the model's fixed bits, when
    skipped) or, with `projection="full"`, always runs at full precision; with `fixed_bits` the
    stem, block 1 and the classifier run at those bits."""
    config = model.config
    description = (f"DFS-{config.arch} derived from the PyTorch model: stages {list(config.depths)}, widths "
                   f"{list(config.widths)}, input {config.in_channels}x{config.input_size}x{config.input_size}, "
                   f"{model.n_units} gated blocks, {len(model.options)} options")
    recorder = Recorder(model, (config.in_channels, config.input_size, config.input_size), model.options,
                        name=config.arch, description=description, names=_dfs_layer_name,
                        run_all=lambda m, x: m(x, force=FULL))  # full precision, gates run: every layer fires
    skip_bits = {} if config.fixed_bits is None else {"w_bits": config.fixed_bits, "a_bits": config.fixed_bits}
    if skip_bits:  # the layers no gate decides run at the model's fixed bits
        recorder.fixed(model.stem, model.blocks[0], model.fc, **skip_bits)
    for index, block in enumerate(model.blocks[1:], start=2):
        recorder.unit(f"block{index}", block)
        if block.proj is not None:
            if block.quantized_projection:
                recorder.shortcut(block.proj, **skip_bits)
            else:
                recorder.full(block.proj)
    for gate in model.gates:
        recorder.kind(gate.embed, "gate-embed")
    recorder.kind(model.gate_fc, "gate-fc")
    return recorder


def dfs_order(network: Network) -> Network:
    """DFS's table lists a block's projection after its convs (the model runs it first)."""
    layers, held = [], {}
    for layer in network.layers:
        block, _, part = layer.name.rpartition(".")
        if part == "proj":
            held[block] = layer
            continue
        layers.append(layer)
        if part == "conv2" and block in held:
            layers.append(held.pop(block))
    return replace(network, layers=tuple(layers), meta=dict(network.meta))


def derive_network(model: GatedResNet, probe=None) -> Network:
    """The layer table of a GatedResNet, derived by the recorder from forward hooks on one input;
    names, order, kinds, units and precision rules follow dfs_sim.workload.resnet.dfs_resnet."""
    recorder = probe.recorder if probe is not None else dfs_recorder(model)
    return dfs_order(recorder.network(probe))
