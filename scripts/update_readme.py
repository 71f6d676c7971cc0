#!/usr/bin/env python3
"""Regenerate every number, table and figure of README.md from the shipped traces and configs.

README.md marks what this script owns:

    <!-- BEGIN generated:NAME -->...<!-- END generated:NAME -->

Each NAME has a generator below; the text between the markers is replaced by what it returns
(a marker pair on its own lines holds block text, one inside a line holds inline text). The
figures go to docs/figures/. `--check` changes nothing and exits 1 when README.md is out of date
(CI runs it, so the README cannot drift from the code); it does not compare figure bytes, which
depend on the platform's fonts, only that each referenced figure exists.

    python scripts/update_readme.py            # rewrite README.md and docs/figures/*.png
    python scripts/update_readme.py --check    # exit 1 if README.md would change
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import textwrap
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures"
BLOCK = re.compile(r"<!-- BEGIN generated:(?P<name>[\w-]+) -->(?P<body>.*?)<!-- END generated:(?P=name) -->", re.S)

FMNIST_PREFIX = "traces/fmnist_resnet20_"
FMNIST = FMNIST_PREFIX + "{}.npz"
FMNIST_ROWS = ("b20", "b30", "b50", "static_8bit", "lowbit_e14", "lowbit_e12", "lowbit_e10", "lowbit_e8",
               "lowbit_loss_e14", "lowbit_loss_e12", "lowbit_loss_e10", "lowbit_loss_e8",
               "lowbit_kl_e14", "lowbit_kl_e12", "lowbit_kl_e10", "lowbit_kl_e8",
               "lowbit_track_e14", "lowbit_track_e12", "lowbit_track_e10", "lowbit_track_e8",
               "lowbit_static_8bit", "lowbit_static_4bit", "lowbit_static_2bit")
PAPER_B20 = "traces/paper/dfs_resnet74_cifar10_paper_b20.npz"
# (shipped config, README name, what it is): the tables' accelerators.
ACCELERATORS = (("dadiannao", "DaDianNao", "bit-parallel 16-bit"), ("stripes", "Stripes", "bit-serial activations"),
                ("loom", "Loom", "bit-serial weights and activations"),
                ("bitfusion_physical", "Bit Fusion", None))
PROXY_TRACES = ("traces/paper/*.npz", FMNIST_PREFIX + "*.npz")
PROXY_FIGURE = "docs/figures/proxy.png"


@cache
def trace(path: str):
    import dfs_sim

    return dfs_sim.load_trace(ROOT / path)


@cache
def summary(path: str, hw: str) -> tuple[dict, int]:
    """The summary of a shipped trace on a shipped config at the config's own batch and policy."""
    import dfs_sim

    result = dfs_sim.simulate(trace(path), hw)
    return result.summary, result.batch


@cache
def distinct_vectors(row: str) -> int:
    """How many different per-input decision vectors a shipped Fashion-MNIST trace holds."""
    from dfs_sim.report.dynamics import decision_diversity

    t = trace(FMNIST.format(row))
    return decision_diversity(t.decisions, len(t.options))["distinct_vectors"]


def fill(text: str) -> str:
    """Wrap prose as the README does, at 100 columns, never inside a `code span` or between a number and its %."""
    glued = re.sub(r"`[^`]*`", lambda m: m[0].replace(" ", "\0"), text).replace(" %", "\0%")  # "8 %" stays whole
    return textwrap.fill(glued, 100, break_long_words=False, break_on_hyphens=False).replace("\0", " ")


def pct(value: float) -> str:
    """'89.8 %', and '100 %' for a cost that equals full precision."""
    return "100 %" if round(value, 1) == 100 else f"{value:.1f} %"


def batches_text(path: str) -> str:
    """'batch 1 (Bit Fusion: 16)': each accelerator runs at its config's batch."""
    sizes = {name: summary(path, config)[1] for config, name, _ in ACCELERATORS}
    common = max(set(sizes.values()), key=list(sizes.values()).count)
    others = [f"{name}: {size}" for name, size in sizes.items() if size != common]
    return f"batch {common}" + (f" ({', '.join(others)})" if others else "")


def fmnist_table() -> str:
    from dfs_sim.plot.common import describe, gate_family

    first = trace(FMNIST.format(FMNIST_ROWS[0]))
    lines = [fill(f"Fashion-MNIST DFS-ResNet20 models trained here (`traces/`, {first.n_inputs:,} test images "
                  f"each), {batches_text(FMNIST.format(FMNIST_ROWS[0]))}; cost as a share of the same network at "
                  f"full precision on the same accelerator:"), "",
             "| trace | accuracy | computation % (proxy) | "
             + " | ".join(f"{name} energy" for _, name, _ in ACCELERATORS) + " |",
             "|---" * (3 + len(ACCELERATORS)) + "|"]
    for row in _shipped(FMNIST_ROWS):
        path = FMNIST.format(row)
        label = describe(trace(path))
        name = f"DFS, {label.long}" if label.kind == "dfs" else f"static, {label.label}"
        if label.kind == "dfs" and trace(path).budget_metric == "energy@bitfusion_physical":
            name += " of Bit Fusion energy"
        if gate_family(trace(path).provenance):
            name = f"{name} (skip/2/4/8, {gate_family(trace(path).provenance)})"
        elif row.startswith("lowbit_"):
            name = f"{name} (skip/2/4/8" + (", trained)" if label.kind != "dfs" else ")")
        elif label.kind != "dfs":
            name += " (the full-precision network, quantized)"
        else:
            name += " (seven options)"
        s, _ = summary(path, ACCELERATORS[0][0])
        cells = [name, f"{s['accuracy']:.2f} %", f"{s['computation_pct']:.1f}"]
        cells += [pct(summary(path, config)[0]["metrics"]["energy_uj"]["pct_of_full_precision"])
                  for config, _, _ in ACCELERATORS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def proxy_promise() -> str:
    """'3.3–5.2×': what the paper-derived traces' computation % promises (100 / computation %)."""
    import glob

    ratios = sorted(100 / summary(str(Path(p).relative_to(ROOT)), "stripes")[0]["computation_pct"]
                    for p in glob.glob(str(ROOT / "traces/paper/*.npz")))
    return f"{ratios[0]:.1f}–{ratios[-1]:.1f}×"


def paper_table() -> str:
    t = trace(PAPER_B20)
    lines = [f"DFS-ResNet74 on CIFAR-10 with the paper's own decisions (`traces/paper/`, budget {t.budget_pct:g} %):",
             "", "| accelerator | computation % (proxy) | cycles, % of full precision | energy, % of full precision |",
             "|---|---|---|---|"]
    for config, name, what in ACCELERATORS:
        s, batch = summary(PAPER_B20, config)
        detail = what or f"batch {batch}"
        lines.append(f"| {name} ({detail}) | {s['computation_pct']:.1f} | "
                     f"{s['metrics']['cycles']['pct_of_full_precision']:.1f} | "
                     f"{s['metrics']['energy_uj']['pct_of_full_precision']:.1f} |")
    return "\n".join(lines)


def _shipped(names) -> list[str]:
    return [name for name in names if (ROOT / FMNIST.format(name)).is_file()]


def _difficulty_text(rows: list[str]) -> str:
    """How energy follows input difficulty for the rows that scripts/difficulty.py measured (its JSON beside
    docs/figures/difficulty.png): Spearman rho of per-input Bit Fusion energy with 1 - confidence."""
    path = FIGURES / "difficulty.json"
    measured = json.loads(path.read_text())["traces"] if path.is_file() else {}
    rhos = {row: measured[Path(FMNIST.format(row)).name]["bitfusion_physical"]["spearman_energy_vs_difficulty"]
            for row in rows if Path(FMNIST.format(row)).name in measured}
    if not rhos:
        return ""
    trend = ("rising with" if min(rhos.values()) > 0 else "falling with" if max(rhos.values()) < 0 else
             "not following")
    return (f", energy {trend} input difficulty (Spearman ρ " + ", ".join(
        f"{rho:+.2f} at {trace(FMNIST.format(row)).budget_pct:g} %" for row, rho in rhos.items()) + ")")


def shipped_traces() -> str:
    """The Fashion-MNIST models' numbers in the 'Shipped traces' paragraph."""
    backbone = trace(FMNIST.format("static_full"))
    backbone_accuracy = summary(FMNIST.format("static_full"), "stripes")[0]["accuracy"]
    budgets = _shipped(f"b{b}" for b in (20, 30, 40, 50))
    comp = [summary(FMNIST.format(b), "stripes")[0]["computation_pct"] for b in budgets]
    gap = max(abs(summary(FMNIST.format(m), "stripes")[0]["accuracy"] - backbone_accuracy) for m in budgets)
    lowbit = _shipped(f"lowbit_e{b}" for b in (14, 12, 10, 8))
    energy = [summary(FMNIST.format(b), "stripes")[0] for b in lowbit]
    loss = _shipped(f"lowbit_loss_e{b}" for b in (14, 12, 10, 8))
    assert backbone.provenance.get("forced_option") == "full"
    text = (f"full-precision backbone {backbone_accuracy:.2f} %; with the released code's seven options, proxy "
            "budgets " + "/".join(f"{trace(FMNIST.format(b)).budget_pct:g}" for b in budgets) + " % land at "
            + "/".join(f"{c:.1f}" for c in comp) + f" % computation within {gap:.2f} points of the backbone's "
            "accuracy; with skip/2/4/8 bits, energy budgets on Bit Fusion of "
            + "/".join(f"{trace(FMNIST.format(b)).budget_pct:g}" for b in lowbit) + " % reach "
            + "/".join(f"{s['accuracy']:.2f}" for s in energy) + " % accuracy")
    if loss:
        vectors = [distinct_vectors(b) for b in loss]
        text += (", and with gates trained toward each option's added loss, "
                 + "/".join(f"{summary(FMNIST.format(b), 'stripes')[0]['accuracy']:.2f}" for b in loss)
                 + f" % with {min(vectors)}–{max(vectors)} distinct per-input decision vectors")
    for family, what in (("kl", "gates trained toward how far each option moves the prediction (KL)"),
                         ("track", "gates that keep fitting KL through stage 3 (KL-tracking)")):
        rows = _shipped(f"lowbit_{family}_e{b}" for b in (14, 12, 10, 8))
        if not rows:
            continue
        from dfs_sim.report.dynamics import trace_dynamics

        spreads = [trace_dynamics(batch1_result(b, "bitfusion_physical"))["energy_uj"]["p95_over_p5"] for b in rows]
        text += (f"; with {what}, " + "/".join(f"{summary(FMNIST.format(b), 'stripes')[0]['accuracy']:.2f}"
                                               for b in rows)
                 + f" % with per-input energy spreads of {min(spreads):.2f}–{max(spreads):.2f}× (p95/p5) on Bit "
                 "Fusion" + _difficulty_text(rows))
    return text


DYNAMIC_HW = (("bitfusion_physical", "Bit Fusion (physical data movement)"), ("loom", "Loom"), ("stripes", "Stripes"))
# The low-bit set's static references: every static low-bit trace in traces/MANIFEST.json, in its order (uniform
# precision, then each per-block search's mixes; scripts/fmnist_traces.py writes it).
LOWBIT_STATICS = [entry["file"].removeprefix(FMNIST_PREFIX).removesuffix(".npz")
                  for entry in json.loads((ROOT / "traces" / "MANIFEST.json").read_text())["traces"]
                  if entry["kind"] == "static" and entry["file"].startswith(FMNIST_PREFIX + "lowbit_")]
# (option set, its DFS traces, its static references)
OPTION_SETS = (
    ("seven options, proxy budgets", [f"b{b}" for b in (50, 40, 30, 20)], ["static_full", "static_16bit", "static_8bit"]),
    ("skip/2/4/8, energy budgets", [f"lowbit_e{b}" for b in (14, 12, 10, 8)], LOWBIT_STATICS),
    ("skip/2/4/8, loss-target gates", [f"lowbit_loss_e{b}" for b in (14, 12, 10, 8)], LOWBIT_STATICS),
    ("skip/2/4/8, KL-target gates", [f"lowbit_kl_e{b}" for b in (14, 12, 10, 8)], LOWBIT_STATICS),
    ("skip/2/4/8, KL-tracking gates", [f"lowbit_track_e{b}" for b in (14, 12, 10, 8)], LOWBIT_STATICS),
)


def _static_name(row: str) -> str:
    return (row.replace("lowbit_", "").replace("static_", "").replace("mixed_e", "greedy mix ≤")
            .replace("sensitivity_e", "sensitivity mix ≤"))


def _family(row: str) -> str:
    """The option set a DFS row belongs to, as OPTION_SETS names it."""
    return next(name for name, dfs_rows, _ in OPTION_SETS if row in dfs_rows)


def _batching_text() -> str:
    """What Bit Fusion's own batch (16, lockstep: a block runs the batch at the widest option chosen in it) does to
    the most diverse shipped low-bit model at 10 %, against batch 1 and a bucketed schedule."""
    import dfs_sim

    rows = _shipped(f"lowbit_{family}e10" for family in ("", "loss_", "kl_", "track_"))
    if not rows:
        return ""
    row, config = max(rows, key=distinct_vectors), "bitfusion_physical"
    batch = dfs_sim.load_hw(config).batch

    def energy(result_summary):
        return result_summary["metrics"]["energy_uj"]["mean"]

    bucketed = energy(bucketed_summary(row, config))
    static = FMNIST.format("lowbit_static_4bit")
    return (f" Batching changes the answer: at Bit Fusion's own batch of {batch.size} in {batch.policy} (a gated "
            "block runs the whole batch at the widest option any input chose), the most diverse 10 % model "
            f"({_family(row)}) costs {energy(summary(FMNIST.format(row), config)[0]):.1f} µJ per input against "
            f"{energy(batch1_summary(row, config)):.1f} at batch 1; bucketed (each decision group at its own "
            f"option), {bucketed:.1f} µJ. Uniform 4-bit costs "
            f"{energy(batch1_summary('lowbit_static_4bit', config)):.1f} µJ at batch 1 and "
            f"{energy(summary(static, config)[0]):.1f} at batch {batch.size}." + _unbeaten_by_schedule(config))


def _unbeaten_by_schedule(config: str) -> str:
    """How many low-bit DFS models no static network beats on `config`, at batch 1 and at the config's batch in
    lockstep and bucketed (the statics at the same batch: one option vector, so either policy)."""
    import dfs_sim

    batch = dfs_sim.load_hw(config).batch
    dfs_rows = [row for _, rows, statics in OPTION_SETS if statics is LOWBIT_STATICS for row in _shipped(rows)]
    schedules = {"at batch 1": batch1_summary,
                 f"at batch {batch.size} in lockstep": lambda row, hw: summary(FMNIST.format(row), hw)[0],
                 f"at batch {batch.size} bucketed": bucketed_summary}
    counts = []
    for schedule, summarise in schedules.items():
        statics = [(row, *energy_and_accuracy(summarise(row, config))) for row in _shipped(LOWBIT_STATICS)]
        counts.append((sum(not beaten_by(*energy_and_accuracy(summarise(row, config)), statics) for row in dfs_rows),
                       schedule))
    (first, at_first), *rest = counts
    return (f" Counted the same way on {dict(DYNAMIC_HW)[config].split(' (')[0]}, {first} of the {len(dfs_rows)} "
            f"low-bit DFS models are not beaten {at_first}, " + " and ".join(f"{n} {at}" for n, at in rest)
            + " (against the static networks at the same batch).")


def energy_and_accuracy(result_summary: dict) -> tuple[float, float]:
    """A simulated trace's point on the verdict's axes: mean energy per input (µJ) and accuracy (%)."""
    return result_summary["metrics"]["energy_uj"]["mean"], result_summary["accuracy"]


def beaten_by(energy: float, accuracy: float, statics: list[tuple]) -> list[tuple]:
    """The static networks (row, energy, accuracy) that beat a DFS model: no more energy, at least as accurate."""
    return [st for st in statics if st[1] <= energy and st[2] >= accuracy]


@cache
def bucketed_summary(row: str, config: str) -> dict:
    """A shipped Fashion-MNIST trace at the config's batch, each decision group run at its own option."""
    import dfs_sim

    return dfs_sim.simulate(trace(FMNIST.format(row)), config, policy="bucketed").summary


def dynamic_vs_static() -> str:
    """Does a DFS model beat every static network of its option set? Pareto test per accelerator."""
    lines = [fill("Does DFS beat static precision? Each DFS model against the static networks of its option set "
                  "(uniform precision; for the low-bit set also trained as long as the DFS models, and per-block "
                  "mixed precision picked on the validation split by a greedy and a sensitivity-ranked search), mean "
                  "energy per test input at batch 1. A DFS model is *beaten* when a static network uses no more "
                  "energy and is at least as accurate:"), "",
             "| option set | accelerator | DFS model: energy µJ, accuracy → the static network that beats it |",
             "|---|---|---|"]
    not_beaten, compared = {}, 0  # DFS row -> accelerators where no static network beats it
    for set_name, dfs_rows, static_rows in OPTION_SETS:
        dfs_rows, static_rows = _shipped(dfs_rows), _shipped(static_rows)
        for config, name in DYNAMIC_HW:
            def point(row):
                return energy_and_accuracy(batch1_summary(row, config))
            statics = [(row, *point(row)) for row in static_rows]
            cells = []
            for row in dfs_rows:
                energy, accuracy = point(row)
                compared += 1
                rivals = beaten_by(energy, accuracy, statics)
                label = f"{trace(FMNIST.format(row)).budget_pct:g} %: {energy:.1f}, {accuracy:.2f} %"
                if rivals:
                    best = min(rivals, key=lambda st: st[1])
                    cells.append(f"{label} → {_static_name(best[0])} ({best[1]:.1f}, {best[2]:.2f} %)")
                else:
                    not_beaten.setdefault(row, []).append(name.split(" (")[0])
                    cells.append(f"{label} → **not beaten**")
            lines.append(f"| {set_name} | {name} | {'<br>'.join(cells)} |")
    if not not_beaten:
        verdict = ("**No.** On this data set every DFS model is beaten on every accelerator by a static network "
                   "that costs less energy and is at least as accurate.")
    else:
        where = "; ".join(f"{_family(row)} at {trace(FMNIST.format(row)).budget_pct:g} % "
                          f"({distinct_vectors(row)} distinct decision vectors) on {', '.join(hws)}"
                          for row, hws in not_beaten.items())
        verdict = (f"**In {sum(map(len, not_beaten.values()))} of {compared} comparisons**, all from the models "
                   f"marked **not beaten**: {where}. Their static rivals are uniform precision and the picks of "
                   "two per-block searches (greedy; sensitivity-ranked, where every mix is ranked but only the best "
                   "ranked are measured); neither measures every mix, so a better static mix may exist. Every other "
                   "DFS model is beaten.")
    verdict += _batching_text()
    return "\n".join(lines + ["", fill(verdict + " Why, and what was reached against the targets: "
                                        "[docs/model.md](docs/model.md#shipped-models-and-traces-fashion-mnist-dfs-resnet20).")])


@cache
def batch1_result(row: str, config: str):
    """A shipped Fashion-MNIST trace simulated at batch 1, where each input pays for its own decisions."""
    import dfs_sim

    return dfs_sim.simulate(trace(FMNIST.format(row)), config, batch=1)


def batch1_summary(row: str, config: str) -> dict:
    return batch1_result(row, config).summary


def _target(targets: list[dict], prefix: str) -> dict:
    matches = [t for t in targets if t["target"].startswith(prefix)]
    if len(matches) != 1:
        raise SystemExit(f"update_readme: expected one validation target starting '{prefix}', found {len(matches)}")
    return matches[0]


def validate_summary() -> str:
    from dfs_sim.validation import all_targets
    from dfs_sim.validation.targets import BITFUSION_SOURCE

    objects = all_targets()
    targets = [t.to_dict() for t in objects]
    simulator = [t for t in targets if t["source"] == BITFUSION_SOURCE]
    layers = len({t["target"].rsplit(": ", 1)[0] for t in simulator})
    worst = max(abs(t["error_pct"]) for t in simulator)
    agreement = "identical" if worst == 0 else f"within {worst:.2g} % in"
    speed, energy = (_target(targets, f"Bit Fusion over Eyeriss: geomean {what}") for what in ("speedup",
                                                                                              "energy reduction"))
    stripes = _target(targets, "Stripes over DaDianNao: speedup")
    alexnet, vgg = (_target(targets, f"Eyeriss DRAM accesses per MAC, {net}") for net in ("AlexNet", "VGG-16"))
    passed = sum(t["pass"] for t in targets)
    known = sum(1 for t in objects if t.known_failure and not t.passed)
    if passed == len(targets):
        verdict = f"All {len(targets)} targets pass."
    elif passed + known == len(targets):
        verdict = (f"{passed} of {len(targets)} targets pass; the other {known} fail for documented reasons, and "
                   "the command ends with what is not validated.")
    else:
        verdict = f"{passed} of {len(targets)} targets pass; `dfs-sim validate` lists the failures."
    return (f"`dfs-sim validate` checks the models against published results: Bit Fusion's own simulator on\n"
            f"{layers} layers ({agreement} cycles, memory-wait cycles and DRAM traffic), Bit Fusion over Eyeriss\n"
            f"({speed['simulated']:.2f}× / {energy['simulated']:.2f}× against the paper's {speed['published']:g}× / "
            f"{energy['published']:g}×), Stripes over DaDianNao ({stripes['simulated']:.2f}× against "
            f"{stripes['published']:g}×),\nLoom's scaling with weight and activation precision, UNPU's peak "
            f"throughput, and Eyeriss's measured DRAM accesses per MAC\n({alexnet['simulated']:.3g} / "
            f"{vgg['simulated']:.3g} against {alexnet['published']:g} / {vgg['published']:g}, with feature maps "
            f"run-length coded on the DRAM link at\ntheir measured sparsity). {verdict}\nSee "
            f"[docs/validation.md](docs/validation.md).")


def latency_budget_example() -> str:
    """A `--budget latency_us=` example that separates inputs: about the batch latency's median."""
    import numpy as np

    import dfs_sim

    result = dfs_sim.simulate(trace(PAPER_B20), "bitfusion", batch=16, policy="bucketed")
    latency = result.per_input["latency_us"].to_numpy()
    median = float(np.median(latency))
    budget = float(f"{median:.2g}")
    over = 100.0 * np.count_nonzero(latency > budget) / len(latency)
    return (f"```bash\ndfs-sim run --trace {PAPER_B20} --hw bitfusion --batch 16 --policy bucketed \\\n"
            f"    --budget latency_us={budget:g}    # latency_us: the input's whole batch of 16; {over:.0f} % of "
            f"inputs over\n```")


def proxy_figure() -> str:
    """The README figure's Markdown; `render_figures` draws it."""
    return (f"![The paper's computation % against energy as a share of full precision on DaDianNao, Stripes, Loom "
            f"and Bit Fusion]({PROXY_FIGURE})\n\n"
            + fill("*x: the paper's computation %; y: energy per inference as a share of full precision on the same "
                   "accelerator. The dashed diagonal is what the proxy promises. Drawn by "
                   "`dfs-sim plot proxy --trace traces/paper/*.npz traces/*.npz -o proxy.png`.*"))


GENERATORS = {
    "proxy-figure": proxy_figure,
    "fmnist-table": fmnist_table,
    "paper-table": paper_table,
    "latency-budget-example": latency_budget_example,
    "validate-summary": validate_summary,
    "shipped-traces": shipped_traces,
    "dynamic-vs-static": dynamic_vs_static,
    "proxy-promise": proxy_promise,
}


def render_figures() -> list[Path]:
    import dfs_sim
    from dfs_sim.plot.proxy import plot_proxy

    FIGURES.mkdir(parents=True, exist_ok=True)
    paths = [p for pattern in PROXY_TRACES for p in sorted(ROOT.glob(pattern))]
    traces = [trace(str(p.relative_to(ROOT))) for p in paths]
    hws = [dfs_sim.load_hw(config) for config, _, _ in ACCELERATORS]
    plot_proxy(traces, hws, ROOT / PROXY_FIGURE)
    return [ROOT / PROXY_FIGURE]


def regenerate(text: str, names=None) -> str:
    """README text with each generated block (or only those in `names`) rewritten."""
    seen = set()

    def replace(match: re.Match) -> str:
        name = match["name"]
        seen.add(name)
        if name not in GENERATORS:
            raise SystemExit(f"update_readme: README.md has a block 'generated:{name}' that no generator makes")
        if names is not None and name not in names:
            return match[0]
        body = GENERATORS[name]()
        if match["body"].startswith("\n"):  # a block: markers on their own lines
            body = f"\n{body}\n"
        return f"<!-- BEGIN generated:{name} -->{body}<!-- END generated:{name} -->"

    out = BLOCK.sub(replace, text)
    missing = set(names or GENERATORS) - seen
    if missing:
        raise SystemExit(f"update_readme: README.md lacks the block(s) {', '.join(sorted(missing))}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 (with a diff) if README.md is out of date")
    parser.add_argument("--no-figures", action="store_true", help="rewrite README.md only, not docs/figures/")
    args = parser.parse_args(argv)
    old = README.read_text()
    new = regenerate(old)
    if args.check:
        absent = [p for p in re.findall(r"\]\((docs/figures/[^)]+)\)", new) if not (ROOT / p).is_file()]
        if new != old or absent:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "README.md",
                                                       "README.md (regenerated)"))
            for path in absent:
                print(f"update_readme: {path} is missing")
            print("update_readme: README.md is out of date; run python scripts/update_readme.py and commit",
                  file=sys.stderr)
            return 1
        print("update_readme: README.md is up to date", file=sys.stderr)
        return 0
    if new != old:
        README.write_text(new)
    figures = [] if args.no_figures else render_figures()
    print(f"update_readme: {'rewrote' if new != old else 'kept'} README.md"
          + (f"; drew {', '.join(str(p.relative_to(ROOT)) for p in figures)}" if figures else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
