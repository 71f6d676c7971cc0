"""Writing network files people read and edit: only what the shape does not determine."""
from __future__ import annotations

import json

from dfs_sim.workload.network import _VECTOR_KINDS, Layer, Network

_DEFAULTS = {"kernel": 1, "stride": 1, "padding": 0, "groups": 1, "precision": "full"}


def compact_layer(layer: Layer) -> dict:
    """A layer without its derivable fields (h_out, w_out, macs, weights; a pool's c_out) and defaults."""
    out = {"name": layer.name, "kind": layer.kind, "c_in": layer.c_in}
    if layer.kind != "pool":
        out["c_out"] = layer.c_out
    if layer.kind not in _VECTOR_KINDS:
        out.update(h_in=layer.h_in, w_in=layer.w_in)
        for key in ("kernel", "stride", "padding", "groups"):
            if getattr(layer, key) != _DEFAULTS[key]:
                out[key] = getattr(layer, key)
    if layer.unit is not None:
        out["unit"] = layer.unit
    out["precision"] = layer.precision
    if layer.precision == "fixed":
        out.update(w_bits=layer.w_bits, a_bits=layer.a_bits)
    if layer.reads_input:
        out["reads_input"] = True
    for key in ("input_density", "output_density"):
        if getattr(layer, key) is not None:
            out[key] = getattr(layer, key)
    return out


def network_text(network: Network, fmt: str = "yaml", header: str = "") -> str:
    """The network as YAML (one layer per line, derivable fields left out) or JSON (every field)."""
    if fmt == "json":
        return json.dumps(network.to_dict(), indent=1) + "\n"
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"name: {json.dumps(network.name)}", f"description: {json.dumps(network.description)}",
              f"input_shape: {json.dumps(list(network.input_shape))}", f"units: {json.dumps(list(network.units))}",
              "layers:"]
    for layer in network.layers:
        fields = ", ".join(f"{key}: {json.dumps(value)}" for key, value in compact_layer(layer).items())
        lines.append(f"  - {{{fields}}}")
    if network.meta:
        lines.append(f"meta: {json.dumps(network.meta)}")
    return "\n".join(lines) + "\n"
