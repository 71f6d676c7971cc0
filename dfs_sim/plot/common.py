"""What the figures share: how a trace and an accelerator are named, and saving a figure safely."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dfs_sim.atomic import atomic_file
from dfs_sim.errors import InputError
from dfs_sim.trace import Trace

FIGURE_FORMATS = (".png", ".svg", ".pdf", ".jpg", ".jpeg")
DATASET_NAMES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10", "cifar-10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "cifar-100": "CIFAR-100", "svhn": "SVHN", "imagenet": "ImageNet"}
OPTION_NAMES = {"skip": "skip", "full": "full precision"}
# Figure colours: accelerators and traces take the first ones; black is kept for references
# (budgets, the y = x diagonal), so no trace can take a reference's colour.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
           "#d62728")
REFERENCE_COLOR = "black"
# Cost axes of the frontier and real-cost metrics of the proxy figure: (what, unit).
FRONTIER_AXES = {
    "energy_uj": ("energy per inference", "µJ"),
    "latency_us": ("mean latency of the input's batch", "µs"),
    "latency_p99_us": ("p99 latency of the input's batch", "µs"),
    "dram_bytes": ("DRAM traffic per inference", "B"),
    "computation_pct": ("computation (the paper's proxy)", "%"),
}
PROXY_METRICS = {
    "energy_uj": ("energy per inference", "µJ"),
    "cycles": ("cycles per inference", "cycles"),
    "latency_us": ("latency of the input's batch", "µs"),
    "dram_bytes": ("DRAM traffic per inference", "B"),
}


def palette(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def option_name(name: str) -> str:
    """'8bit' -> '8-bit', 'full' -> 'full precision'."""
    if name in OPTION_NAMES:
        return OPTION_NAMES[name]
    match = re.fullmatch(r"(\d+)\s*-?bits?", name)
    return f"{match.group(1)}-bit" if match else name


STATIC_MARKERS = {"full": "*", "16bit": "s", "8bit": "^", "4bit": "D", "2bit": "p", "skip": "v"}


PER_BLOCK_MARKERS = ("X", "P", "H", "8", "<", ">", "h")  # per-block mixed statics, one each in the order a figure lists them


def static_marker(label: str, per_block: list[str] | tuple = ()) -> str:
    """The marker of a static reference, by its option: 'all 8-bit' -> '^'; a per-block mix takes the next
    of PER_BLOCK_MARKERS by its place in `per_block` (the figure's per-block labels), so two mixes differ."""
    for option, marker in STATIC_MARKERS.items():
        if label == f"all {option_name(option)}":
            return marker
    if label.startswith("per block"):
        place = list(per_block).index(label) if label in per_block else 0
        return PER_BLOCK_MARKERS[place % len(PER_BLOCK_MARKERS)]
    return "d"


def per_block_labels(points) -> list[str]:
    """The per-block static labels of a figure's points, in order: what static_marker numbers."""
    statics = points.loc[points["kind"] == "static", "label"]
    return [label for label in dict.fromkeys(statics) if str(label).startswith("per block")]


@dataclass(frozen=True)
class TraceLabel:
    series: str  # the model: "DFS-ResNet20, Fashion-MNIST"; traces of one model at several budgets share it
    nested: bool  # nested quantization (b-bit codes are the top bits of the widest): a model of its own
    kind: str  # "dfs" (gated, at a budget) or "static" (decisions forced to one option)
    label: str  # short, for a point: "20 %", "20 % nested", "all 8-bit"
    long: str  # for a legend or a panel title: "budget 20 %", "budget 20 %, nested", "static: all 8-bit"

    @property
    def line(self) -> tuple[str, bool]:
        """The traces that form one line across budgets: one model, one quantization mode."""
        return self.series, self.nested


def model_name(trace: Trace) -> str:
    """A readable model name: 'DFS-ResNet20', not 'DFS-resnet20 (stages [3, 3, 3], widths [16, 32, 64])'."""
    raw = trace.provenance.get("model") or trace.network.name
    name = re.sub(r"\s*\(.*\)\s*$", "", str(raw)).strip() or trace.network.name
    return re.sub(r"resnet", "ResNet", name, flags=re.IGNORECASE)


def gate_family(provenance: dict) -> str | None:
    """'KL-target gates', 'KL-tracking gates' (they kept fitting it in stage 3): gates trained toward something
    other than the top option are another model family; None for the top target or no gates stage."""
    target = provenance.get("gate_target")
    if target in (None, "top"):
        return None
    return f"{'KL' if target == 'kl' else target}-" + ("tracking gates" if provenance.get("tracking_gates") else
                                                  "target gates")


def describe(trace: Trace) -> TraceLabel:
    prov = trace.provenance
    dataset = prov.get("dataset")
    series = model_name(trace)
    if dataset:
        series += f", {DATASET_NAMES.get(str(dataset).lower(), dataset)}"
    if prov.get("kind") == "paper-derived":
        series += " (paper's decisions)"
    if gate_family(prov):
        series += f", {gate_family(prov)}"
    nested = bool(prov.get("nested"))
    forced = prov.get("forced_option")
    if forced:
        per_block = str(forced).split(",")
        text = (f"all {option_name(forced)}" if len(per_block) == 1 else
                "per block " + "/".join(option_name(o).removesuffix("-bit") for o in per_block))
        return TraceLabel(series, False, "static", text, f"static: {text}")
    if trace.budget_pct is not None:
        # Budgets in different metrics are different models: a line each, named by the metric.
        if trace.budget_metric != "computation":
            series += f", budgets in {trace.budget_metric}"
        budget = f"{trace.budget_pct:g} %"
        return TraceLabel(series, nested, "dfs", budget + (" nested" if nested else ""),
                          f"budget {budget}" + (", nested" if nested else ""))
    return TraceLabel(series, nested, "static", trace.name, trace.name)


def full_precision_bits(result) -> int:
    """The bits 'full precision' means on this accelerator: 32 where it runs DFS's declared full
    precision (Bit Fusion, 4 x 4 slices of 8 bits), its native width (16) where it maps to that."""
    table = result.table
    return int(max(table.mapped_bits[table.full_case]))


def hw_label(result) -> str:
    """'Stripes (batch 1)'."""
    return f"{result.hw.name} (batch {result.batch})"


def side_legend(ax, handles, **kwargs):
    """A legend to the right of `ax`, its top level with the axes' top. Constrained layout makes
    room for it; a figure legend there would run into the suptitle."""
    options = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "frameon": False,
               "fontsize": 8, "title_fontsize": 8, "alignment": "left"}
    options.update(kwargs)
    return ax.legend(handles=handles, **options)


def thousands(axis) -> None:
    """Tick labels with thousands separators: 150,000, not 150000 or 1.5e5."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.6g}" if abs(value) < 1000 else f"{value:,.0f}"))


def log_ticks(axis, low: float, high: float) -> None:
    """A log axis labelled at 1 and 3 × 10^k when it spans under two decades (matplotlib labels only the
    powers of ten: one tick or none), thousands separated; minor ticks unlabelled (they overprint)."""
    import math

    from matplotlib.ticker import LogLocator, NullFormatter

    if math.log10(max(high, 1e-12) / max(low, 1e-12)) < 2:
        axis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
    thousands(axis)
    axis.set_minor_formatter(NullFormatter())


def engineering(axis, unit: str = "") -> None:
    """Tick labels in engineering form: 800 k, 1.2 M (with `unit`: 800 kB)."""
    from matplotlib.ticker import EngFormatter

    axis.set_major_formatter(EngFormatter(unit=unit, sep=" "))


def check_figure_path(output: str | Path) -> Path:
    path = Path(output)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise InputError(path, None, f"unknown figure format '{path.suffix}' (use {', '.join(FIGURE_FORMATS)})")
    if not path.parent.is_dir():
        raise InputError(path, None, "the output directory does not exist")
    return path


def save_figure(fig, output: str | Path) -> Path:
    """Write PNG, SVG, PDF or JPEG by extension, atomically."""
    path = check_figure_path(output)
    fmt = path.suffix.lstrip(".").lower()
    try:
        with atomic_file(path) as handle:
            # No timestamps or version strings in the file: the same inputs give the same bytes.
            metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
            fig.savefig(handle, dpi=150, bbox_inches="tight", format="jpeg" if fmt == "jpg" else fmt,
                        metadata=metadata)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
