"""The `dfs-sim` command line."""
from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

from dfs_sim.errors import InputError, shown
from dfs_sim.output import check_output_path, write_output

DEFAULT_HW = "stripes"


def default_trace() -> Path:
    """The shipped trace `dfs-sim run` uses when none is given (first in the manifest)."""
    from dfs_sim.shipped_traces import shipped_default

    return shipped_default()


def display_path(path: Path | str) -> str:
    """A path relative to the working directory when it lies below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse_number(text: str, option: str, field: str | None = None) -> float:
    """A finite, non-negative number from the command line (inf, nan and 1e400 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(option, field, f"{shown(text)} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise InputError(option, field, f"must be a finite, non-negative number, got {shown(text)}")
    return value


def parse_budgets(items: list[str] | None) -> dict[str, float]:
    from dfs_sim.report.summary import BUDGET_METRICS

    budgets = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError("--budget", item, "must be METRIC=VALUE, e.g. latency_us=50")
        if name not in BUDGET_METRICS:
            raise InputError("--budget", name, f"unknown metric (use {', '.join(BUDGET_METRICS)})")
        if name in budgets:
            raise InputError("--budget", name, "is given twice")
        budgets[name] = parse_number(value, "--budget", name)
    return budgets


def check_report(result, per_layer: bool, source: str) -> None:
    """The whole report is finite, or the run is refused (a strict JSON reader could not read it)."""
    import numpy as np

    from dfs_sim.jsonio import first_non_finite

    if per_layer:
        frame = result.per_layer
        for column in frame.select_dtypes("number").columns:
            values = frame[column].to_numpy(dtype=np.float64)
            if np.isinf(values).any():
                where = f"per_layer.{column}"
                break
        else:
            return
    else:
        where = first_non_finite(result.summary)
        if where is None:
            return
    raise InputError(source, where, "is not finite: these inputs exceed what the cost model can represent")


def cmd_run(args: argparse.Namespace) -> int:
    from dfs_sim.engine import simulate, simulate_network
    from dfs_sim.hardware.config import check_batch_size, load_hw, resolve_hw_path
    from dfs_sim.report.format import render_frame, render_summary
    from dfs_sim.trace import load_trace
    from dfs_sim.workload.network import load_network

    from dfs_sim.reference import parse_reference

    budgets = parse_budgets(args.budget)
    reference = parse_reference(args.reference)
    if args.batch is not None:
        check_batch_size(args.batch)
    if args.per_input and args.per_layer:
        raise InputError("--per-input", None, "give either --per-input or --per-layer, not both")
    if args.per_input:
        from dfs_sim.report.inputs import per_input_format

        args.format = per_input_format(args.output, args.format)
    if args.trace is not None and args.network is not None:
        raise InputError("--network", None, "give either --trace or --network, not both")
    notes = []
    hw_names = args.hw
    if hw_names is None:
        hw_names = [DEFAULT_HW]
        notes.append(f"no --hw given; using hw_configs/{DEFAULT_HW}.yaml")
    if len(hw_names) > 1:
        return _run_side_by_side(args, hw_names, budgets, reference, notes)
    hw_name = hw_names[0]
    output = check_output_path(args.output, inputs=(args.trace, args.network, resolve_hw_path(hw_name)))
    if args.network is not None:
        # A static network runs like a trace whose inputs all take the same path: --batch and
        # --policy apply (the policy cannot change its cost), and so do absolute budgets on the
        # hardware metrics; computation_pct counts gated units, which a static network has none of.
        network = load_network(args.network)
        hw = load_hw(hw_name, args.overrides)
        if network.n_units:
            raise InputError(args.network, "units", "a network with gated units needs a trace (--trace)")
        if "computation_pct" in budgets:
            raise InputError("--budget", "computation_pct", "a static network (--network) has no gated units, "
                                                            "so no computation percentage; budget another metric")
        result = simulate_network(network, hw, batch=args.batch, policy=args.policy, budgets=budgets,
                                  reference=reference)
        source = f"{args.network} on {hw.path}"
    else:
        trace_path = args.trace
        if trace_path is None:
            trace_path = default_trace()
            notes.insert(0, f"no --trace given; using the shipped trace {display_path(trace_path)}")
        hw = load_hw(hw_name, args.overrides)
        trace = load_trace(display_path(trace_path))
        if "computation_pct" in budgets and not trace.network.n_units:
            raise InputError("--budget", "computation_pct", "this trace's network has no gated units, so no "
                                                            "computation percentage; budget another metric")
        result = simulate(trace, hw, batch=args.batch, policy=args.policy, budgets=budgets, reference=reference)
        source = f"{trace.path} on {hw.path}"
    check_report(result, args.per_layer, source)
    for note in notes:  # only once the inputs are known good, so an error stays a single line
        print(f"dfs-sim: {note}", file=sys.stderr)
    fmt = args.format or "table"
    if args.per_input:
        from dfs_sim.report.inputs import per_input_frame, write_parquet

        frame = per_input_frame(result)
        if fmt == "parquet":
            write_parquet(frame, str(output))
            return 0
        text = render_frame(frame, fmt)
    elif args.per_layer:
        text = render_frame(result.per_layer_cases, fmt)
    else:
        text = render_summary(result.summary, fmt)
    write_output(text, None if output is None else str(output))
    return 0


def _load_all(traces, hws, overrides=None):
    from dfs_sim.hardware.config import load_hw
    from dfs_sim.trace import load_trace

    return [load_trace(t) for t in traces or []], [load_hw(h, overrides) for h in hws or []]


def _run_side_by_side(args, hw_names, budgets, reference, notes) -> int:
    """`run --hw a b c`: one table, a column per config (cost, % of full precision, area, energy x delay)."""
    from dfs_sim.engine import simulate
    from dfs_sim.report.format import render_side_by_side
    from dfs_sim.trace import load_trace

    for flag, given in (("--network", args.network), ("--per-layer", args.per_layer),
                        ("--per-input", args.per_input)):
        if given:
            raise InputError(flag, None, "compares one config at a time; give a single --hw")
    trace_path = args.trace
    if trace_path is None:
        trace_path = default_trace()
        notes.insert(0, f"no --trace given; using the shipped trace {display_path(trace_path)}")
    _, hws = _load_all([], hw_names, args.overrides)
    output = check_output_path(args.output, inputs=[args.trace] + [hw.path for hw in hws])
    trace = load_trace(display_path(trace_path))
    if "computation_pct" in budgets and not trace.network.n_units:
        raise InputError("--budget", "computation_pct", "this trace's network has no gated units, so no "
                                                        "computation percentage; budget another metric")
    summaries = []
    for hw in hws:
        result = simulate(trace, hw, batch=args.batch, policy=args.policy, budgets=budgets, reference=reference)
        check_report(result, False, f"{trace.path} on {hw.path}")
        summaries.append(result.summary)
    for note in notes:
        print(f"dfs-sim: {note}", file=sys.stderr)
    write_output(render_side_by_side(summaries, args.format or "table"), None if output is None else str(output))
    return 0


def _write_csv(frame, path: str | None) -> None:
    from dfs_sim.report.format import CSV_FLOAT

    if path:
        write_output(frame.to_csv(index=False, float_format=CSV_FLOAT), path)


def cmd_frontier(args: argparse.Namespace) -> int:
    from dfs_sim.plot.common import check_figure_path
    from dfs_sim.plot.frontier import frontier_points, plot_frontier

    check_output_path(args.output, inputs=args.trace)
    check_figure_path(args.output)
    check_output_path(args.csv, inputs=args.trace, option="--csv")
    from dfs_sim.reference import parse_reference

    reference = parse_reference(args.reference)
    traces, hws = _load_all(args.trace, args.hw or [DEFAULT_HW], args.overrides)
    points = frontier_points(traces, hws, x=args.x, relative=not args.absolute, reference=reference)
    _write_csv(points.drop(columns=["x", "y"]), args.csv)
    plot_frontier(points, args.output, x=args.x, relative=not args.absolute)
    print(f"dfs-sim: wrote {args.output} ({len(points)} points)" + (f" and {args.csv}" if args.csv else ""),
          file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from dfs_sim.plot.common import check_figure_path

    check_output_path(args.output, inputs=args.trace)
    check_figure_path(args.output)
    check_output_path(getattr(args, "csv", None), inputs=args.trace, option="--csv")
    batch = {"batch": getattr(args, "batch", None), "policy": getattr(args, "policy", None)}
    if getattr(args, "batch", None) is not None:
        from dfs_sim.hardware.config import check_batch_size

        check_batch_size(args.batch)
    if getattr(args, "reference", None) is not None:
        from dfs_sim.reference import parse_reference

        batch["reference"] = parse_reference(args.reference)
    if args.figure == "proxy":
        from dfs_sim.hardware.config import load_hw
        from dfs_sim.plot.proxy import plot_proxy

        traces, hws = _load_all(args.trace, args.hw, args.overrides)
        on = None if args.reference_hw is None else load_hw(args.reference_hw)
        points = plot_proxy(traces, hws, args.output, metric=args.metric, reference_hw=on, **batch)
        _write_csv(points, args.csv)
    elif args.figure == "decisions":
        from dfs_sim.plot.figures import plot_decisions

        traces, _ = _load_all(args.trace, [])
        plot_decisions(traces, args.output, include_static=not args.no_static)
    elif args.figure == "latency":
        from dfs_sim.plot.figures import plot_latency

        budgets = parse_budgets(args.budget)
        unknown = set(budgets) - {"latency_us"}
        if unknown:
            raise InputError("--budget", sorted(unknown)[0], "the latency figure draws latency_us budgets only")
        traces, hws = _load_all(args.trace, args.hw or [DEFAULT_HW], args.overrides)
        plot_latency(traces, hws, args.output, budget_us=budgets.get("latency_us"), **batch)
    elif args.figure == "energy":
        from dfs_sim.plot.figures import plot_energy

        traces, hws = _load_all(args.trace, args.hw or [DEFAULT_HW], args.overrides)
        frame = plot_energy(traces[0], hws, args.output, scale=args.scale, **batch)
        _write_csv(frame, args.csv)
    else:
        from dfs_sim.plot.layers import plot_layers

        traces, hws = _load_all(args.trace, args.hw or [DEFAULT_HW], args.overrides)
        frame = plot_layers(traces[0], hws, args.output, **batch)
        _write_csv(frame, args.csv)
    print(f"dfs-sim: wrote {args.output}" + (f" and {args.csv}" if getattr(args, "csv", None) else ""),
          file=sys.stderr)
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from dfs_sim import regress
    from dfs_sim.jsonio import dumps

    path = Path(args.baseline)
    rtol = regress.DEFAULT_RTOL if args.rtol is None else parse_number(args.rtol, "--rtol")
    if args.update:
        check_output_path(str(path), option="--baseline")
    if args.trace or args.hw or args.overrides:
        if not (args.update and args.trace and args.hw):
            raise InputError("--trace/--hw", None, "add cases with --update and both --trace and --hw (and --set "
                                                   "for derived configs)")
        from dfs_sim.hardware.config import parse_set

        data = regress.add_cases(path, args.trace, args.hw, parse_set(args.overrides or []))
        write_output(dumps(data, indent=1) + "\n", str(path))
    fresh, changes = regress.regress(path, rtol)
    table = regress.format_changes(changes)
    n_cases = len(fresh["cases"])
    if args.update:
        write_output(dumps(fresh, indent=1) + "\n", str(path))
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from dfs_sim.sweep import Progress, best_points, load_spec, run_sweep

    spec = load_spec(args.spec)
    output = args.output or spec.output
    if output is None:
        raise InputError("-o", None, f"give a result file (-o results.parquet or .csv) or an output: key in {args.spec}")
    if args.workers is not None and not 1 <= args.workers <= 1024:
        raise InputError("--workers", None, f"must be in [1, 1024], got {args.workers}")
    path = check_output_path(output, inputs=[args.spec, *spec.traces])
    if args.plot is not None:
        from dfs_sim.plot.common import check_figure_path

        check_output_path(args.plot, inputs=[args.spec, *spec.traces], option="--plot")
        check_figure_path(args.plot)
    cache = None
    if args.cache is not None:
        cache = Path(args.cache)
        if cache.exists() and not cache.is_dir():
            raise InputError(cache, None, "is not a directory (--cache)")
    done = run_sweep(spec, path, workers=args.workers, scheduler=args.scheduler, backend=args.backend,
                     progress=None if args.no_progress else Progress, cache=cache)
    resumed = f", {done['points_resumed']} point(s) resumed" if done["points_resumed"] else ""
    if cache is not None:
        resumed += (f", {done['cache_hits']} result(s) from the cache, {done['entries_reused']} of "
                    f"{done['entries_reused'] + done['entries_searched']} tiling searches reused")
    print(f"dfs-sim: wrote {path}: {done['points']} points x {len(spec.traces)} trace(s) = {done['rows']} rows, "
          f"{int(done['table']['feasible'].astype(bool).sum())} feasible, {done['seconds']:.1f} s on "
          f"{done['executor'] or 'nothing (all resumed)'}{resumed}", file=sys.stderr)
    for line in best_points(done["table"], spec.axes):
        print(line)
    if args.plot is not None:
        from dfs_sim.sweep_plot import pareto_rows, plot_pareto

        plot_pareto(done["table"], args.plot)
        print(f"dfs-sim: wrote {args.plot} ({len(pareto_rows(done['table']))} rows on the energy-latency-area front)",
              file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from dfs_sim.cost.cache import searching_through
    from dfs_sim.report.format import render_validation
    from dfs_sim.validation import COVERAGE, SEARCHES, all_targets, conventions_effect, unvalidated

    check_output_path(args.output)
    # The targets' tiling searches ship with the package (read-only, keyed by the search code), so a fresh
    # install does not compile the search kernel to repeat them; --fresh searches every tiling again.
    with searching_through(None if args.fresh else SEARCHES, writable=False):
        targets = all_targets()
        rows = [t.to_dict() for t in targets]
        text = render_validation(rows, args.format)
        if args.format == "table":
            text += _validation_epilogue(targets, unvalidated(), COVERAGE, conventions_effect())
    write_output(text, args.output)
    # A failed target fails CI, like cost drift; so does a known failure that passes (its note is stale).
    return 0 if all(t.as_expected for t in targets) else 1


def _validation_epilogue(targets, comparisons, coverage, effects) -> str:
    """Known failures with their reasons, published figures the model does not reproduce, how much Bit
    Fusion's simulator conventions move its results, then what each shipped config is and is not
    validated against."""
    lines = []
    known = [t for t in targets if t.known_failure]
    if known:
        lines.append("\nknown failures (docs/validation.md):")
        for t in known:
            state = "STALE, passes now: retire its note" if t.passed else "fails as expected"
            lines.append(f"  {t.target}: {state}; {t.known_failure}")
    unexpected = [t for t in targets if not t.passed and not t.known_failure]
    if unexpected:
        lines.append(f"\n{len(unexpected)} target(s) fail unexpectedly")
    lines.append("\nnot validated, published vs ours (docs/validation.md):")
    for c in comparisons:
        lines.append(f"  {c.quantity}: published {c.published:g}, ours {c.simulated:.3g}; {c.reason}")
    lines.append("\nBit Fusion's networks: its simulator's conventions against the physical rules (8 networks, "
                 "batch 16; docs/hardware.md):")
    for e in effects:
        lines.append(f"  {e.variant}, {e.quantity}: {e.conventions:.4g} -> {e.physical:.4g} ({e.change_pct:+.1f} %)")
    width = max(len(c.config) for c in coverage)
    lines.append("\ncoverage (config: validated against | not validated):")
    for c in coverage:
        lines.append(f"  {c.config:<{width}}  {c.validated} | NOT: {c.not_validated}")
    return "\n".join(lines) + "\n"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default; an option without one (None, off) says in its
    help what happens when it is left out."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        if isinstance(action.default, (list, tuple)):
            return f"{action.help} (default: {' '.join(map(str, action.default)).replace('%', '%%')})"
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, like every other bad input."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


PROXY_DEFAULT_HW = ["dadiannao", "stripes", "loom", "bitfusion"]
FIGURE_HELP = "figure file: .png, .svg, .pdf or .jpg"
POLICY_HELP = ("how a batch runs a gated block whose inputs chose different options: lockstep runs the whole "
               "batch once at the widest option any member chose; bucketed splits the batch by decision and runs "
               "each group at its own option, one after another; grouped first orders the inputs by their whole "
               "decision vector, so that inputs that decided alike share a batch, then runs bucketed (a throughput "
               "scheduler; the wait to fill a batch is not counted) (default: the config's policy)")
BATCH_HELP = "inputs per batch (default: the config's batch, e.g. 1 on Stripes, 16 on Bit Fusion)"
LATENCY_BUDGET = ("latency_us is the time the input's whole batch takes (at batch 16 every input waits for all "
                  "16), not the input's share of it")


def _hw_help(what: str) -> str:
    from dfs_sim.hardware.config import shipped_configs

    names = ", ".join(path.stem for path in shipped_configs())
    return f"{what}: a YAML path or a shipped name ({names})"


def _x_help() -> str:
    from dfs_sim.plot.common import FRONTIER_AXES as X_AXES

    text = "cost axis: " + "; ".join(f"{key}: {name} ({unit})" for key, (name, unit) in X_AXES.items())
    return text.replace("%", "%%")  # argparse formats help with %


SET_HELP = ("override a key of every --hw config, e.g. array.unroll.K=64, dram.bandwidth_bits_per_cycle=384, "
            "buffers.wbuf.size_kb=128 (repeatable; derived numbers such as per-array energy and area follow; "
            "docs/hardware.md, Derived configs)")


def _add_set(parser) -> None:
    parser.add_argument("--set", action="append", dest="overrides", metavar="SECTION.KEY=VALUE", help=SET_HELP)


def _add_batch(parser) -> None:
    parser.add_argument("--batch", type=int, help=BATCH_HELP)
    from dfs_sim.hardware.config import BATCH_POLICIES

    parser.add_argument("--policy", choices=BATCH_POLICIES, help=POLICY_HELP)


def build_parser() -> argparse.ArgumentParser:
    from dfs_sim import __version__
    from dfs_sim.report.format import FORMATS
    from dfs_sim.reference import REFERENCE_HELP
    from dfs_sim.plot.common import PROXY_METRICS as METRICS
    from dfs_sim.regress import DEFAULT_RTOL

    parser = _Parser(
        prog="dfs-sim",
        description="What dynamic-precision (DFS) inference really costs on bit-serial and precision-scalable "
                    "accelerators.")
    parser.add_argument("--version", action="version", version=f"dfs-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="simulate a trace on an accelerator and report its cost",
                         description="Simulate every input of a trace on an accelerator; report cycles, latency, "
                                     "energy and traffic against full precision and the trained budget. "
                                     + LATENCY_BUDGET + ".")
    run.add_argument("--trace", help="trace file (.npz) (default: a shipped trace, named on stderr)")
    run.add_argument("--network", help="a static network file (YAML/JSON, per-layer precisions) instead of a trace; "
                                       "--batch, --policy and --budget apply (not --budget computation_pct)")
    run.add_argument("--hw", nargs="+", metavar="H",
                     help=_hw_help("accelerator") + f"; several print one table with a column per config "
                                                    f"(default: {DEFAULT_HW})")
    _add_set(run)
    _add_batch(run)
    run.add_argument("--budget", action="append", metavar="METRIC=VALUE",
                     help="absolute per-input budget, e.g. energy_uj=2 or latency_us=60000 (repeatable); the report "
                          "counts the inputs over it. " + LATENCY_BUDGET)
    run.add_argument("--reference", metavar="full|native|W/A", help=REFERENCE_HELP)
    run.add_argument("--format", choices=FORMATS,
                     help="output format (default: table). With --per-input the default follows the -o suffix "
                          "(.csv, .json, .parquet), else csv")
    run.add_argument("-o", "--output", help="write here instead of stdout (--per-input: .csv, .json, or .parquet "
                                            "with pyarrow installed)")
    run.add_argument("--per-layer", action="store_true", help="report per layer instead of the summary")
    run.add_argument("--per-input", action="store_true",
                     help="report one row per input instead of the summary: cost, energy as %% of the reference, "
                          "options chosen, label, prediction")
    run.set_defaults(handler=cmd_run)

    frontier = sub.add_parser("frontier", help="plot accuracy (or budget) against cost for traces x accelerators",
                              description="One point per (trace, accelerator): accuracy against a cost axis. Traces "
                                          "of one model at several budgets form a line per accelerator; static "
                                          "references are their own markers; the Pareto front is marked. "
                                          "Degenerate references (all skip) sit on the lower edge, named in the legend, so the "
                                          "accuracy axis stays on the models that matter.")
    frontier.add_argument("--trace", nargs="+", required=True, metavar="T", help="trace files (.npz)")
    frontier.add_argument("--hw", nargs="+", metavar="H", help=_hw_help("accelerators") + f" (default: {DEFAULT_HW})")
    _add_set(frontier)
    frontier.add_argument("-o", "--output", required=True, help=FIGURE_HELP)
    frontier.add_argument("--x", default="energy_uj", choices=("energy_uj", "latency_us", "latency_p99_us",
                                                                "dram_bytes", "computation_pct"), help=_x_help())
    frontier.add_argument("--absolute", action="store_true",
                          help="absolute cost (one panel per accelerator where their scales differ more than 10x), "
                               "not %% of each accelerator's own full precision")
    frontier.add_argument("--reference", metavar="full|native|W/A", help=REFERENCE_HELP)
    frontier.add_argument("--csv", metavar="POINTS", help="also write the points as CSV")
    frontier.set_defaults(handler=cmd_frontier)

    plot = sub.add_parser("plot", help="figures: proxy against real cost, decision shares, latency CDFs, energy "
                                       "breakdowns, per-layer costs",
                          description="Draw one figure (FIGURE --help for its options).")
    figures = plot.add_subparsers(dest="figure", required=True, metavar="FIGURE", parser_class=_Parser)
    proxy = figures.add_parser("proxy", help="the paper's computation %% against the real cost, per accelerator",
                               description="x: the paper's computation percentage; y: the real cost as a share of "
                                           "the reference; one line per accelerator across a model's budgets, "
                                           "static references as markers, and y = x: what the proxy promises.")
    proxy.add_argument("--trace", nargs="+", required=True, metavar="T", help="trace files (.npz)")
    proxy.add_argument("--hw", nargs="+", metavar="H", default=PROXY_DEFAULT_HW, help=_hw_help("accelerators"))
    proxy.add_argument("--metric", choices=tuple(METRICS), default="energy_uj",
                       help="the real cost: " + "; ".join(f"{k}: {name}" for k, (name, _) in METRICS.items()))
    proxy.add_argument("--reference-hw", metavar="H",
                       help="run the reference on accelerator H for every line (default: each accelerator's own "
                            "reference, e.g. full precision at 16 bits on Stripes, 32 on Bit Fusion)")
    proxy.add_argument("--csv", metavar="POINTS", help="also write the points as CSV")
    decisions = figures.add_parser("decisions", help="share of each option per gated block, one panel per trace")
    decisions.add_argument("--trace", nargs="+", required=True, metavar="T", help="trace files (.npz)")
    decisions.add_argument("--no-static", action="store_true",
                           help="leave out static traces (every input at one option: a single-colour panel)")
    latency = figures.add_parser("latency", help="latency CDF per trace, one panel per accelerator",
                                 description="Share of inputs whose batch finishes within each latency. "
                                             + LATENCY_BUDGET + ".")
    latency.add_argument("--trace", nargs="+", required=True, metavar="T", help="trace files (.npz)")
    latency.add_argument("--hw", nargs="+", metavar="H", help=_hw_help("accelerators") + f" (default: {DEFAULT_HW})")
    latency.add_argument("--budget", action="append", metavar="latency_us=VALUE",
                         help="draw a latency budget and say which share of inputs meets it")
    energy = figures.add_parser("energy", help="energy per inference by component, one bar per accelerator")
    energy.add_argument("--trace", required=True, nargs=1, metavar="T", help="one trace file (.npz)")
    energy.add_argument("--hw", nargs="+", metavar="H", help=_hw_help("accelerators") + f" (default: {DEFAULT_HW})")
    energy.add_argument("--scale", choices=("log", "linear", "relative"), default="log",
                        help="energy axis: log (accelerators 100x apart stay readable), linear, or relative (each "
                             "bar as %% of its accelerator's full precision)")
    energy.add_argument("--csv", metavar="PARTS", help="also write the breakdown (with the config's buffer names) "
                                                       "as CSV")
    layers = figures.add_parser("layers", help="cycles, energy and DRAM traffic per layer, split by option",
                                description="Per-layer cost of one trace, stacked by the option each layer ran at; "
                                            "the hottest layer is named.")
    layers.add_argument("--trace", required=True, nargs=1, metavar="T", help="one trace file (.npz)")
    layers.add_argument("--hw", nargs="+", metavar="H", help=_hw_help("accelerators") + f" (default: {DEFAULT_HW})")
    layers.add_argument("--csv", metavar="LAYERS", help="also write the per-layer, per-option costs as CSV")
    for figure in (proxy, latency, energy):
        figure.add_argument("--reference", metavar="full|native|W/A", help=REFERENCE_HELP)
    for figure in (proxy, latency, energy, layers):
        _add_set(figure)
    for figure in (proxy, decisions, latency, energy, layers):
        figure.add_argument("-o", "--output", required=True, help=FIGURE_HELP)
        if figure is not decisions:
            _add_batch(figure)
        figure.set_defaults(handler=cmd_plot)

    regress = sub.add_parser("regress", help="check cost numbers against a committed baseline (for CI)",
                             description="Recompute every case of a baseline and list each number that moved "
                                         "(metric, old, new, delta %). Exit 1 on drift beyond --rtol, 0 otherwise.")
    regress.add_argument("--baseline", required=True, help="baseline JSON (paths in it are relative to it)")
    regress.add_argument("--rtol", help=f"relative tolerance (default: {DEFAULT_RTOL:g})")
    regress.add_argument("--update", action="store_true", help="rewrite the baseline and say what changed")
    regress.add_argument("--trace", nargs="+", metavar="T", help="with --update and --hw: add these cases")
    regress.add_argument("--hw", nargs="+", metavar="H", help="with --update and --trace: add these cases")
    _add_set(regress)
    regress.set_defaults(handler=cmd_regress)

    sweep = sub.add_parser("sweep", help="sweep derived configs over traces, batches and policies (docs/sweeps.md)",
                           description="Run every point of a sweep spec (a base config, grid and random axes of "
                                       "dotted config keys, batch sizes, policies, constraints such as area_mm2 <= 10) "
                                       "on every trace; write one row per (point, trace) to Parquet or CSV and print the best "
                                       "feasible point per objective. Chunks run on Dask (a local cluster, or "
                                       "--scheduler) and are kept as they finish: rerunning an interrupted sweep "
                                       "resumes it.")
    sweep.add_argument("spec", help="sweep spec (YAML)")
    sweep.add_argument("-o", "--output", help="result file, .parquet (needs pyarrow) or .csv (default: the spec's "
                                              "output:)")
    sweep.add_argument("--plot", metavar="FIG", help="also draw energy against latency per trace, coloured by area, "
                                                     "with the Pareto front: " + FIGURE_HELP)
    sweep.add_argument("--cache", metavar="DIR", help="keep each (config, trace, batch, policy) result and every "
                                                     "tiling-search result here, and reuse them in later sweeps "
                                                     "(keyed by what determines them and the code; default: none)")
    sweep.add_argument("--workers", type=int, help="local worker processes (default: the machine's cores)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786 "
                                                              "(its workers must see the traces' paths)")
    sweep.add_argument("--backend", choices=("auto", "dask", "processes"), default="auto",
                       help="auto: Dask when installed, else a local process pool")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines on stderr")
    sweep.set_defaults(handler=cmd_sweep)

    validate = sub.add_parser("validate", help="check the cost models against published results",
                              description="Run every validation target (Bit Fusion's simulator per layer, Bit Fusion "
                                          "over Eyeriss, Stripes over DaDianNao, Loom's precision scaling, Eyeriss DRAM "
                                          "traffic, UNPU peak), print published value, ours, error and pass/fail, then "
                                          "what each accelerator is not validated against. Exit code 1 if a target fails "
                                          "other than for its documented reason, or a documented failure passes.")
    validate.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    validate.add_argument("-o", "--output", help="write here instead of stdout")
    validate.add_argument("--fresh", action="store_true",
                          help="search every tiling again instead of reading the searches shipped for these targets "
                               "(the same numbers; slower on a fresh install, which compiles the search kernel)")
    validate.set_defaults(handler=cmd_validate)

    try:
        from dfs_sim.model.commands import register
    except ImportError:  # the model package is optional
        register = None
    if register is not None:
        register(sub)
    return parser


@functools.lru_cache(maxsize=1)
def _parser() -> argparse.ArgumentParser:
    return build_parser()  # built once per process: parsing leaves it unchanged


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputError as err:
        print(f"dfs-sim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
