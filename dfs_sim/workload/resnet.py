"""The CIFAR ResNets that DFS uses, with the layers exactly as DFS gates them.

Stem conv, block 1 and the classifier run at full precision; blocks 2..N are gated. Before
each gated block sits its gate: a global average pool of the previous block's output, a
per-block 1x1 conv C->10, one step of a shared LSTM(10, 10) and a shared Linear(10 -> options).
A downsampling block's 1x1 projection runs at the block's precision, and at full precision when
the block is skipped (`projection="quantized"`, rule "shortcut"), or always at full precision
(`projection="full"`).
"""
from __future__ import annotations

from dfs_sim.workload.network import Layer, Network

GATE_HIDDEN = 10
ARCHITECTURES = {
    "resnet20": (3, 3, 3),
    "resnet38": (6, 6, 6),
    "resnet74": (12, 12, 12),
}


def arch_name(depths) -> str:
    """resnet20/38/74 for the standard depths, else resnet{2 + 2 * blocks} (stem, 2 convs per block, fc)."""
    return next((k for k, v in ARCHITECTURES.items() if v == tuple(depths)), f"resnet{2 + 2 * sum(depths)}")


def _conv(name, c_in, c_out, size_in, kernel, stride, unit=None, precision="full", reads_input=False, **bits):
    padding = kernel // 2
    size_out = (size_in + 2 * padding - kernel) // stride + 1
    return Layer(name, "conv", c_in, c_out, size_in, size_in, size_out, size_out, kernel, stride, padding,
                 unit=unit, precision=precision, reads_input=reads_input, **bits)


def _global_pool(name, channels, size):
    return Layer(name, "pool", channels, channels, size, size, 1, 1, kernel=size)


def gate_layers(index: int, channels: int, size: int, n_options: int) -> list[Layer]:
    """The gate that decides block `index`, reading the previous block's output."""
    return [
        _global_pool(f"gate{index}.pool", channels, size),
        Layer(f"gate{index}.embed", "gate-embed", channels, GATE_HIDDEN),
        # One LSTM step: four gates, each over [input, hidden].
        Layer(f"gate{index}.lstm", "lstm", 2 * GATE_HIDDEN, 4 * GATE_HIDDEN),
        Layer(f"gate{index}.fc", "gate-fc", GATE_HIDDEN, n_options),
    ]


def dfs_resnet(depths=(6, 6, 6), *, in_channels: int = 3, input_size: int = 32, num_classes: int = 10,
               n_options: int = 4, widths=(16, 32, 64), name: str | None = None,
               projection: str = "quantized", fixed_bits: int | None = None) -> Network:
    """`fixed_bits`: the layers no gate decides (stem, block 1, classifier, and a skipped block's
    projection) run at that many bits instead of full precision."""
    fixed = {} if fixed_bits is None else {"precision": "fixed", "w_bits": fixed_bits, "a_bits": fixed_bits}
    if name is None:
        name = arch_name(depths)
    layers = [_conv("stem", in_channels, widths[0], input_size, 3, 1, reads_input=True, **fixed)]
    units: list[str] = []
    channels, size, index = widths[0], input_size, 0
    if len(depths) != len(widths):  # zip would drop the stages without a width, and the name would count them
        raise ValueError(f"{len(depths)} stage depths but {len(widths)} stage widths")
    for stage, (depth, width) in enumerate(zip(depths, widths)):
        for j in range(depth):
            index += 1
            stride = 2 if (stage > 0 and j == 0) else 1
            gated = index > 1
            unit = None
            if gated:
                unit = len(units)
                units.append(f"block{index}")
                layers += gate_layers(index, channels, size, n_options)
            rule = {"precision": "unit"} if gated else {"precision": "full", **fixed}
            out_size = (size + 2 - 3) // stride + 1
            layers.append(_conv(f"block{index}.conv1", channels, width, size, 3, stride, unit, **rule))
            layers.append(_conv(f"block{index}.conv2", width, width, out_size, 3, 1, unit, **rule))
            if stride != 1 or channels != width:
                if gated and projection == "quantized":
                    skip_bits = {} if fixed_bits is None else {"w_bits": fixed_bits, "a_bits": fixed_bits}
                    proj_rule = {"precision": "shortcut", **skip_bits}
                else:
                    proj_rule = {"precision": "full", **fixed}
                layers.append(_conv(f"block{index}.proj", channels, width, size, 1, stride, unit, **proj_rule))
            channels, size = width, out_size
    layers.append(_global_pool("pool", channels, size))
    layers.append(Layer("fc", "fc", channels, num_classes, **fixed))
    description = (f"DFS-{name}: stages {list(depths)}, widths {list(widths)}, input {in_channels}x{input_size}x"
                   f"{input_size}, {len(units)} gated blocks, {n_options} options")
    return Network(name, tuple(layers), tuple(units), (in_channels, input_size, input_size), description)
