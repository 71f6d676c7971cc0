"""The `dfs-sim` command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfs_sim.atomic import atomic_file
from dfs_sim.errors import InputError

DEFAULT_HW = "stripes"


def default_trace() -> Path:
    """The shipped trace `dfs-sim run` uses when none is given (first in the manifest)."""
    from dfs_sim.traces import shipped_default

    return shipped_default()


def display_path(path: Path | str) -> str:
    """A path relative to the working directory when it lies below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def write_output(text: str, output: str | None) -> None:
    """Print, or write atomically: an error midway never leaves a partial file."""
    if output is None:
        sys.stdout.write(text)
        return
    path = Path(output)
    if not path.parent.is_dir():
        raise InputError(path, None, "the output directory does not exist")
    with atomic_file(path, "w") as handle:
        handle.write(text)


def parse_budgets(items: list[str] | None) -> dict[str, float]:
    from dfs_sim.report.summary import BUDGET_METRICS

    budgets = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError("--budget", item, "must be METRIC=VALUE, e.g. latency_us=50")
        if name not in BUDGET_METRICS:
            raise InputError("--budget", name, f"unknown metric (use {', '.join(BUDGET_METRICS)})")
        try:
            budgets[name] = float(value)
        except ValueError:
            raise InputError("--budget", name, f"'{value}' is not a number") from None
        if not budgets[name] >= 0:
            raise InputError("--budget", name, "must be a non-negative number")
    return budgets


def cmd_run(args: argparse.Namespace) -> int:
    from dfs_sim.engine import simulate, simulate_network
    from dfs_sim.hardware.config import load_hw
    from dfs_sim.report.format import render_frame, render_summary
    from dfs_sim.trace import load_trace
    from dfs_sim.workload.network import load_network

    budgets = parse_budgets(args.budget)
    if args.batch is not None and args.batch < 1:
        raise InputError("--batch", None, f"must be >= 1, got {args.batch}")
    if args.trace is not None and args.network is not None:
        raise InputError("--network", None, "give either --trace or --network, not both")
    notes = []
    hw_name = args.hw
    if hw_name is None:
        hw_name = DEFAULT_HW
        notes.append(f"no --hw given; using hw_configs/{DEFAULT_HW}.yaml")
    if args.network is not None:
        network = load_network(args.network)
        hw = load_hw(hw_name)
        if network.n_units:
            raise InputError(args.network, "units", "a network with gated units needs a trace (--trace)")
        result = simulate_network(network, hw, batch=args.batch)
    else:
        trace_path = args.trace
        if trace_path is None:
            trace_path = default_trace()
            notes.insert(0, f"no --trace given; using the shipped trace {display_path(trace_path)}")
        hw = load_hw(hw_name)
        trace = load_trace(display_path(trace_path))
        result = simulate(trace, hw, batch=args.batch, policy=args.policy, budgets=budgets)
    for note in notes:  # only once the inputs are known good, so an error stays a single line
        print(f"dfs-sim: {note}", file=sys.stderr)
    if args.per_layer:
        text = render_frame(result.per_layer_cases, args.format)
    else:
        text = render_summary(result.summary, args.format)
    write_output(text, args.output)
    return 0


def _load_all(traces, hws):
    from dfs_sim.hardware.config import load_hw
    from dfs_sim.trace import load_trace

    return [load_trace(t) for t in traces or []], [load_hw(h) for h in hws or []]


def cmd_frontier(args: argparse.Namespace) -> int:
    from dfs_sim.plot.common import check_figure_path
    from dfs_sim.plot.frontier import frontier_points, plot_frontier

    check_figure_path(args.output)
    if args.csv and not Path(args.csv).parent.is_dir():
        raise InputError(args.csv, None, "the output directory does not exist")
    traces, hws = _load_all(args.trace, args.hw or [DEFAULT_HW])
    points = frontier_points(traces, hws, x=args.x, relative=not args.absolute)
    if args.csv:
        write_output(points.drop(columns=["x", "y"]).to_csv(index=False), args.csv)
    plot_frontier(points, args.output, x=args.x, relative=not args.absolute)
    print(f"dfs-sim: wrote {args.output} ({len(points)} points)" + (f" and {args.csv}" if args.csv else ""),
          file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from dfs_sim.plot import figures
    from dfs_sim.plot.common import check_figure_path

    check_figure_path(args.output)
    if args.figure == "decisions":
        traces, _ = _load_all(args.trace, [])
        figures.plot_decisions(traces, args.output)
    elif args.figure == "latency":
        budgets = parse_budgets(args.budget)
        unknown = set(budgets) - {"latency_us"}
        if unknown:
            raise InputError("--budget", sorted(unknown)[0], "the latency figure draws latency_us budgets only")
        traces, (hw,) = _load_all(args.trace, [args.hw or DEFAULT_HW])
        figures.plot_latency(traces, hw, args.output, budget_us=budgets.get("latency_us"), batch=args.batch,
                             policy=args.policy)
    else:
        traces, hws = _load_all(args.trace, args.hw or [DEFAULT_HW])
        if len(traces) != 1:
            raise InputError("--trace", None, "the energy figure takes one trace")
        figures.plot_energy(traces[0], hws, args.output, batch=args.batch, policy=args.policy)
    print(f"dfs-sim: wrote {args.output}", file=sys.stderr)
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    import json

    from dfs_sim import regress

    path = Path(args.baseline)
    if args.rtol is not None and not args.rtol >= 0:
        raise InputError("--rtol", None, "must be a non-negative number")
    rtol = regress.DEFAULT_RTOL if args.rtol is None else args.rtol
    if args.trace or args.hw:
        if not (args.update and args.trace and args.hw):
            raise InputError("--trace/--hw", None, "add cases with --update and both --trace and --hw")
        data = regress.add_cases(path, args.trace, args.hw)
        write_output(json.dumps(data, indent=1) + "\n", str(path))
    fresh, changes = regress.regress(path, rtol)
    table = regress.format_changes(changes)
    n_cases = len(fresh["cases"])
    if args.update:
        write_output(json.dumps(fresh, indent=1) + "\n", str(path))
        print(f"dfs-sim: updated {path}: {n_cases} cases, {len(changes)} numbers changed", file=sys.stderr)
        sys.stdout.write(table)
        return 0
    if changes:
        sys.stdout.write(table)
        print(f"dfs-sim: {len(changes)} numbers moved beyond rtol {rtol:g} in {path} ({n_cases} cases); "
              f"if intended, rerun with --update and commit the baseline", file=sys.stderr)
        return 1
    print(f"dfs-sim: {n_cases} cases match {path} (rtol {rtol:g})", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from dfs_sim.report.format import render_validation
    from dfs_sim.validation import all_targets

    targets = [t.to_dict() for t in all_targets()]
    write_output(render_validation(targets, args.format), args.output)
    return 0 if all(t["pass"] for t in targets) else 1  # a failed target fails CI, like cost drift


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dfs-sim",
        description="What dynamic-precision (DFS) inference really costs on bit-serial and precision-scalable "
                    "accelerators.")
    from dfs_sim import __version__

    parser.add_argument("--version", action="version", version=f"dfs-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="simulate a trace on an accelerator and report its cost",
                         description="Simulate every input of a trace on an accelerator; report cycles, latency, "
                                     "energy and traffic against full precision and the trained budget.")
    run.add_argument("--trace", help="trace file (.npz); default: a shipped trace")
    run.add_argument("--network", help="a static network file (YAML/JSON, per-layer precisions) instead of a trace")
    run.add_argument("--hw", help=f"hardware config: a YAML path or a shipped name (default: {DEFAULT_HW})")
    run.add_argument("--batch", type=int, help="batch size (overrides the config)")
    run.add_argument("--policy", choices=("lockstep", "bucketed"), help="batch policy (overrides the config)")
    run.add_argument("--budget", action="append", metavar="METRIC=VALUE",
                     help="absolute per-input budget, e.g. latency_us=50 or energy_uj=2 (repeatable)")
    run.add_argument("--format", choices=("table", "json", "csv"), default="table")
    run.add_argument("-o", "--output", help="write here instead of stdout")
    run.add_argument("--per-layer", action="store_true", help="report per layer instead of the summary")
    run.set_defaults(handler=cmd_run)

    frontier = sub.add_parser("frontier", help="plot accuracy (or budget) against cost for traces x accelerators",
                              description="One point per (trace, accelerator): accuracy against a cost axis. Traces "
                                          "of one model at several budgets form a line per accelerator; static "
                                          "references are their own markers; the Pareto front is marked.")
    frontier.add_argument("--trace", nargs="+", required=True, metavar="T", help="trace files")
    frontier.add_argument("--hw", nargs="+", metavar="H", help=f"accelerators (default: {DEFAULT_HW})")
    frontier.add_argument("-o", "--output", required=True, help="figure: .png, .svg or .pdf")
    frontier.add_argument("--x", default="energy_uj", choices=("energy_uj", "latency_us", "latency_p99_us",
                                                                "dram_bytes", "computation_pct"))
    frontier.add_argument("--absolute", action="store_true", help="absolute cost, not %% of full precision")
    frontier.add_argument("--csv", metavar="POINTS", help="also write the points as CSV")
    frontier.set_defaults(handler=cmd_frontier)

    plot = sub.add_parser("plot", help="figures: decision shares, latency CDFs, energy breakdowns")
    figures = plot.add_subparsers(dest="figure", required=True, metavar="FIGURE", parser_class=_Parser)
    decisions = figures.add_parser("decisions", help="share of each option per gated block, one panel per trace")
    decisions.add_argument("--trace", nargs="+", required=True, metavar="T")
    latency = figures.add_parser("latency", help="per-input latency CDF per trace on one accelerator")
    latency.add_argument("--trace", nargs="+", required=True, metavar="T")
    latency.add_argument("--hw", metavar="H", help=f"one accelerator (default: {DEFAULT_HW})")
    latency.add_argument("--budget", action="append", metavar="latency_us=VALUE", help="draw a latency budget")
    energy = figures.add_parser("energy", help="energy per inference by component, one bar per accelerator")
    energy.add_argument("--trace", required=True, nargs=1, metavar="T")
    energy.add_argument("--hw", nargs="+", metavar="H", help=f"accelerators (default: {DEFAULT_HW})")
    for figure in (decisions, latency, energy):
        figure.add_argument("-o", "--output", required=True, help="figure: .png, .svg or .pdf")
        if figure is not decisions:
            figure.add_argument("--batch", type=int, help="batch size (overrides the configs)")
            figure.add_argument("--policy", choices=("lockstep", "bucketed"))
        figure.set_defaults(handler=cmd_plot)

    regress = sub.add_parser("regress", help="check cost numbers against a committed baseline (for CI)",
                             description="Recompute every case of a baseline and list each number that moved "
                                         "(metric, old, new, delta %%). Exit 1 on drift beyond --rtol, 0 otherwise.")
    regress.add_argument("--baseline", required=True, help="baseline JSON (paths in it are relative to it)")
    regress.add_argument("--rtol", type=float, help="relative tolerance (default 1e-6)")
    regress.add_argument("--update", action="store_true", help="rewrite the baseline and say what changed")
    regress.add_argument("--trace", nargs="+", metavar="T", help="with --update and --hw: add these cases")
    regress.add_argument("--hw", nargs="+", metavar="H", help="with --update and --trace: add these cases")
    regress.set_defaults(handler=cmd_regress)

    validate = sub.add_parser("validate", help="check the cost models against published results",
                              description="Run every validation target (Bit Fusion's simulator per layer, Bit Fusion "
                                          "over Eyeriss, Stripes over DaDianNao, Eyeriss DRAM traffic, UNPU peak) "
                                          "and print published value, ours, error and pass/fail. Exit code 1 if any target fails.")
    validate.add_argument("--format", choices=("table", "json"), default="table")
    validate.add_argument("-o", "--output", help="write here instead of stdout")
    validate.set_defaults(handler=cmd_validate)

    try:
        from dfs_sim.model.commands import register
    except ImportError:  # the model package is optional
        register = None
    if register is not None:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except InputError as err:
        print(f"dfs-sim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
