"""Silicon area (mm²) of an accelerator config, from cited synthesis, CACTI and published figures.

A config's `area:` section holds per-unit figures, each citing a `sources:` entry like every other
number; the area is computed from the config's own fields whenever it is asked for, so a derived
config (a bigger array, bigger buffers) gets its own area:

    area:
      technology_nm: 45                 # the node the figures below are at
      lane_um2: 1734.5522               # per lane of array.unroll (the product of its values)
      buffer_mm2_per_kb: {wbuf: 0.011992, ibuf: 0.007566, obuf: 0.015207}
      published_mm2: {die: 16}          # blocks published as a whole: they do not scale
      not_included: the PE array (no published figure reachable)
      source: [bitfusion-synth, bitfusion-cacti]

A buffer grows by adding banks of the same size, so its area is its size times the density of its
bank. Figures at another node than the config's are scaled by (node / figures' node)², the ideal
scaling the Bit Fusion authors apply to Eyeriss's area (BITFUSION_NOTEBOOK). The tables below are
the rows the shipped configs draw on; tests/test_area.py checks every shipped figure against them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dfs_sim.errors import require, shown

# Bit Fusion repository, bitfusion/sram/cacti_sweep.csv (copy: shared/data/bitfusion/cacti_sweep.csv; CACTI-7, 45 nm, itrs-hp, 4-byte blocks, one bank):
# (bank bytes, read-write port) -> area_mm^2.
CACTI_45NM_AREA_MM2 = {
    (128, 0): 0.00149898,
    (512, 1): 0.00760331,
    (1024, 0): 0.00882362,
    (2048, 0): 0.015132,
    (4096, 0): 0.0300607,
    (4096, 1): 0.0485739,
    (8192, 0): 0.0575061,
    (16384, 0): 0.108577,
}

# Bit Fusion repository, results/systolic_array_synth.csv (copy: shared/data/bitfusion/systolic_array_synth.csv; 45 nm, 500 MHz): (N, M, max bits, min bits) -> um².
PE_SYNTH_45NM_AREA_UM2 = {
    (1, 1, 2, 2): 124.8912,
    (4, 4, 2, 2): 1297.069191,
    (4, 4, 8, 2): 27752.83558,
    (4, 4, 8, 8): 8171.729995,
    (4, 4, 16, 16): 26870.48336,
}

# Bit Fusion repository, bitfusion-generate-graphs.ipynb (the Eyeriss comparison): Eyeriss's 3.5 mm x 3.5 mm
# core at 65 nm, scaled to 45 nm as 3.5*3.5*45*45/65/65 = 5.8713 mm², the "area budget"; the authors'
# simulator's get_area() for the Eyeriss-comparison Bit Fusion (16 x 32, 8/2 bits, WBUF 64 KB, IBUF 32 KB,
# OBUF 16 KB) prints (core, WBUF, IBUF, OBUF) = (0.8880907385600001, 0.76747776, 0.242112, 0.24330592)
# mm², total 2.14098641856, with "Warning: BitFusion Area is outside 10% of eyeriss".
BITFUSION_NOTEBOOK = "Bit Fusion repository, bitfusion-generate-graphs.ipynb (Eyeriss comparison cell)"
EYERISS_CORE_MM2_65NM = 3.5 * 3.5
BITFUSION_SIM_AREA_MM2 = {"array": 0.8880907385600001, "wbuf": 0.76747776, "ibuf": 0.242112, "obuf": 0.24330592}
BITFUSION_SIM_EYERISS_BUDGET_MM2 = 5.87130177515

AREA_KEYS = {"technology_nm", "lane_um2", "buffer_mm2_per_kb", "published_mm2", "not_included", "source"}


def sram_mm2_per_kb(bank_bytes: int, read_write_port: int = 0) -> float:
    """Area per KB of a buffer built from CACTI banks of `bank_bytes` (45 nm)."""
    return CACTI_45NM_AREA_MM2[(bank_bytes, read_write_port)] / (bank_bytes / 1024)


def lane_um2_from_block(max_bits: int, min_bits: int) -> float:
    """Area of one unit of a synthesized 4x4 array (45 nm). Arrays the table does not list are the 4x4
    block scaled by N*M/16, as the Bit Fusion simulator's get_area() does."""
    return PE_SYNTH_45NM_AREA_UM2[(4, 4, max_bits, min_bits)] / 16


def scaled(mm2: float, from_nm: float, to_nm: float) -> float:
    """Ideal area scaling between nodes, (to/from)² (BITFUSION_NOTEBOOK scales Eyeriss this way)."""
    return mm2 * (to_nm / from_nm) ** 2


@dataclass(frozen=True)
class AreaSpec:
    """The `area:` section: per-unit figures at `technology_nm`."""

    technology_nm: float
    lane_um2: float | None = None
    buffer_mm2_per_kb: dict = field(default_factory=dict)
    published_mm2: dict = field(default_factory=dict)
    not_included: str = ""


@dataclass(frozen=True)
class Area:
    """A config's area at its own node: the total and what it is made of."""

    total_mm2: float
    components_mm2: dict
    technology_nm: float
    scaled_from_nm: float | None
    complete: bool
    not_included: str

    def to_dict(self) -> dict:
        return {"total_mm2": self.total_mm2, "components_mm2": dict(self.components_mm2),
                "technology_nm": self.technology_nm, "scaled_from_nm": self.scaled_from_nm,
                "complete": self.complete, "not_included": self.not_included or None}


def area_from_dict(section: dict, buffer_names, source: object) -> AreaSpec | None:
    """Check an `area:` mapping (already checked for unknown keys and citations by the config loader)."""
    if not section:
        return None

    def number(value, where: str, low: float = 0.0, high: float = 1e9) -> float:
        require(isinstance(value, (int, float)) and not isinstance(value, bool) and low < value <= high,
                source, f"area.{where}", f"must be a number in ({low:g}, {high:g}], got {shown(value)}")
        return float(value)

    require("technology_nm" in section, source, "area.technology_nm", "is required: the node the figures are at")
    node = number(section["technology_nm"], "technology_nm", high=1000)
    lane = section.get("lane_um2")
    densities = section.get("buffer_mm2_per_kb", {})
    published = section.get("published_mm2", {})
    for key, value in (("buffer_mm2_per_kb", densities), ("published_mm2", published)):
        require(isinstance(value, dict), source, f"area.{key}", "must map names to numbers")
    for name, value in densities.items():
        require(name in buffer_names, source, f"area.buffer_mm2_per_kb.{name}",
                f"is not a buffer of this config (buffers: {', '.join(buffer_names)})")
        number(value, f"buffer_mm2_per_kb.{name}")
    for name, value in published.items():
        require(isinstance(name, str) and name not in buffer_names and name != "array", source,
                f"area.published_mm2.{shown(name)}", "must name a block other than the array or a buffer")
        number(value, f"published_mm2.{name}", high=1e5)
    not_included = section.get("not_included", "")
    require(isinstance(not_included, str), source, "area.not_included", "must say what is left out, as text")
    require(lane is not None or densities or published, source, "area",
            "needs lane_um2, buffer_mm2_per_kb or published_mm2")
    return AreaSpec(node, None if lane is None else number(lane, "lane_um2", high=1e9),
                    {k: float(v) for k, v in densities.items()}, {k: float(v) for k, v in published.items()},
                    not_included.strip())


def area_of(hw) -> Area | None:
    """The config's area, computed from its current fields (array size, buffer sizes); None without an
    `area:` section."""
    spec = getattr(hw, "area", None)
    if spec is None:
        return None
    parts = {}
    if spec.lane_um2 is not None:
        parts["array"] = hw.lanes * spec.lane_um2 * 1e-6
    sizes_kb = {b.name: b.size_bits / 8192 for b in hw.buffers}
    for name, density in spec.buffer_mm2_per_kb.items():
        parts[name] = sizes_kb[name] * density
    parts.update(spec.published_mm2)
    node = float(hw.technology_nm)
    scaled_from = None if node == spec.technology_nm else spec.technology_nm
    if scaled_from is not None:
        parts = {name: scaled(value, scaled_from, node) for name, value in parts.items()}
    return Area(sum(parts.values()), parts, node, scaled_from, not spec.not_included, spec.not_included)
