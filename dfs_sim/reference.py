"""The reference a run is measured against: what "100 %" means in reports and figures.

- `full`: every layer at full precision, as the accelerator runs it (32/32 bits declared; 16/16 on a
  machine whose config maps full precision to its native width). For a trace without fixed-bit
  layers this is `metrics.full_precision`: every gated unit at full precision.
- `native`: every layer at the accelerator's native width (`precision.max_bits`, e.g. 8/8 on
  Bit Fusion, 16/16 on Stripes).
- `W/A`, e.g. `8/8` or `4/8`: every layer at W-bit weights and A-bit activations.

Every layer of the table runs in the reference, gates and fixed-bit layers included, so "% of 8/8"
compares against the same network run at 8/8 throughout. Traces default to `full`; a static network
defaults to its own highest declared precision (the widest weight and activation bits of its layers,
or `full` if a layer runs at full precision), and the report says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dfs_sim.errors import InputError
from dfs_sim.limits import FULL_PRECISION_BITS
from dfs_sim.workload.network import MAX_BITS, Network

REFERENCE_HELP = ("what 100 %% means: full (every layer at full precision, as the accelerator runs it), native (every "
                  "layer at the accelerator's native width), or W/A bits for every layer, e.g. 8/8 or 4/8 (default: "
                  "full for traces; a static network's own highest declared precision)")


@dataclass(frozen=True)
class Reference:
    spec: str  # "full", "native" or "W/A"
    weight_bits: int | None = None
    act_bits: int | None = None
    origin: str = "--reference"  # or why the default was chosen

    @property
    def is_full(self) -> bool:
        return self.spec == "full"

    def bits(self, hw) -> tuple[int, int] | None:
        """(weight, activation) bits every layer runs at; None for full precision (the options' mapping)."""
        if self.spec == "native":
            return hw.precision.max_bits, hw.precision.max_bits
        if self.spec == "full":
            return None
        return self.weight_bits, self.act_bits

    def describe(self, hw) -> str:
        """'8/8 bits (every layer)', 'full precision (every layer; runs at 16/16 bits on Stripes)'."""
        if self.spec == "full":
            bits = hw.precision.max_bits if hw.precision.full_precision == "native" else FULL_PRECISION_BITS
            runs = f"{bits}/{bits}"
            return f"full precision (every layer; runs at {runs} bits on {hw.name})"
        w, a = self.bits(hw)
        what = f"native width of {hw.name}, {w}/{a} bits" if self.spec == "native" else f"{w}/{a} bits"
        return f"{what} (every layer)"

    def label(self, hw) -> str:
        """Short, for a figure's legend: 'full precision (16-bit)', '8/8 bits', 'native 8/8 bits'."""
        if self.spec == "full":
            native = hw.precision.full_precision == "native"
            return f"full precision ({hw.precision.max_bits if native else FULL_PRECISION_BITS}-bit)"
        w, a = self.bits(hw)
        return f"{'native ' if self.spec == 'native' else ''}{w}/{a} bits"

    def to_dict(self, hw) -> dict:
        bits = self.bits(hw)
        return {"spec": self.spec, "origin": self.origin, "description": self.describe(hw),
                "bits": None if bits is None else list(bits)}


FULL = Reference("full", origin="default: full precision")


def parse_reference(text: str | None, source: str = "--reference") -> Reference | None:
    """'full', 'native' or 'W/A' (e.g. '8/8'); None stays None (the default)."""
    if text is None or isinstance(text, Reference):
        return text
    value = str(text).strip().lower()
    if value in ("full", "native"):
        return Reference(value)
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", value)
    if match:
        w, a = int(match[1]), int(match[2])
        if not (1 <= w <= MAX_BITS and 1 <= a <= MAX_BITS):
            raise InputError(source, None, f"bits '{text}' out of range: weight and activation bits lie in "
                                           f"[1, {MAX_BITS}]")
        return Reference(f"{w}/{a}", w, a)
    raise InputError(source, None, f"'{text}' is not a reference: use full, native or weight/activation bits "
                                   f"such as 8/8 (to measure against another accelerator: plot proxy --reference-hw)")


def static_default(network: Network) -> Reference:
    """A static network's own highest declared precision: full if a layer runs at full precision,
    else the widest weight and the widest activation bits of its fixed layers."""
    fixed = [layer for layer in network.layers if layer.precision == "fixed"]
    if len(fixed) < len(network.layers):
        return Reference("full", origin="default: the network's highest declared precision, full precision")
    w, a = max(layer.w_bits for layer in fixed), max(layer.a_bits for layer in fixed)
    return Reference(f"{w}/{a}", w, a, origin=f"default: the network's highest declared precision, {w}/{a}")


def reference_network(network: Network, reference: Reference, hw) -> Network | None:
    """The network with every layer at the reference, without units; None when that is exactly the
    cost table's full-precision case: full precision and no layer at fixed bits, or a static network
    whose layers all run at the reference's bits already."""
    bits = reference.bits(hw)
    if reference.is_full and all(layer.precision != "fixed" for layer in network.layers):
        return None
    if bits is not None and not network.n_units and all(
            layer.precision == "fixed" and (layer.w_bits, layer.a_bits) == bits for layer in network.layers):
        return None
    if bits is not None and max(bits) > hw.precision.max_bits and hw.precision.wider == "error":
        raise InputError("--reference", None, f"{reference.spec} needs more than the {hw.precision.max_bits} bits "
                                              f"{hw.name} runs (precision.wider: error in {hw.path})")
    if bits is None:
        layers = [replace(layer, unit=None, precision="full", w_bits=0, a_bits=0) for layer in network.layers]
    else:
        layers = [replace(layer, unit=None, precision="fixed", w_bits=bits[0], a_bits=bits[1])
                  for layer in network.layers]
    return Network(f"{network.name} at {reference.spec}", tuple(layers), (), network.input_shape,
                   network.description, dict(network.meta))
