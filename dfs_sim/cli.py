"""The `dfs-sim` command line."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        text = render_frame(result.per_layer, args.format)
    else:
        text = render_summary(result.summary, args.format)
    write_output(text, args.output)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from dfs_sim.report.format import render_validation
    from dfs_sim.validation import all_targets

    targets = [t.to_dict() for t in all_targets()]
    write_output(render_validation(targets, args.format), args.output)
    return 0


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

    validate = sub.add_parser("validate", help="check the cost models against published results",
                              description="Run every validation target (Bit Fusion's simulator per layer, Bit Fusion "
                                          "over Eyeriss, Stripes over DaDianNao, Eyeriss DRAM traffic, UNPU peak) "
                                          "and print published value, ours, error and pass/fail.")
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
