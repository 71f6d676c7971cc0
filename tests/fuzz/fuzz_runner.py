"""Run one fuzz case through `dfs_sim.cli.main` (in-process, or as a subprocess) and judge it.

The README's contract: exit 2 with exactly one stderr line and no traceback, or exit 0 (1 for
`regress` drift) with a report the oracle agrees is legitimate; never a partial output file or
a temporary file left behind; never a file's content echoed; never longer than HANG_S.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

import fuzz_oracle as oracle
from fuzz_inputs import REPO, SECRET, Case

HANG_S = 10.0  # a case running longer than this is a hang
GUARD_S = 60.0  # the alarm that stops a runaway case
FAILURES = ("traceback", "hang", "partial", "garbage", "bad-refusal", "bad-exit", "leak", "warning")
_TEMP = re.compile(r"^\..*~.*~\d+~.*\.tmp$|^\..*\.[A-Za-z0-9_]{8}\.tmp$")


@dataclass
class Result:
    case: Case
    verdict: str  # "refused", "accepted", or one of FAILURES
    rc: object
    elapsed: float
    stderr: str
    detail: str = ""
    generic: bool = False  # refused by the catch-all boundary rather than a precise check

    @property
    def failed(self) -> bool:
        return self.verdict in FAILURES

    def describe(self) -> str:
        first = self.stderr.strip().splitlines()[:3]
        text = (f"{self.case.cls}#{self.case.index} [{self.case.note}] -> {self.verdict} (rc {self.rc}, "
                f"{self.elapsed:.2f} s) {self.detail} | argv {self.case.argv} | stderr {first}")
        return text if len(text) < 1500 else text[:1500] + "..."


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def prepare(case: Case, root: Path) -> tuple[Path, Path, list[str]]:
    directory = root / f"{case.cls}-{case.index}"
    out_dir = directory / "out"
    out_dir.mkdir(parents=True)
    shipped = os.path.relpath(REPO, directory).encode()
    for name, data in case.files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.replace(b"{SHIPPED}", shipped) if len(data) < 1 << 16 else data)
    for name, target in case.links.items():
        (directory / name).symlink_to(target)
    return directory, out_dir / "report.json", case.resolved_argv(directory, out_dir / "report.json")


def call_main(argv: list[str], manifest_dir: Path | None = None) -> tuple[object, str, str, float]:
    """(exit code or 'traceback'/'hang', stdout, stderr with any warnings, seconds)."""
    from dfs_sim import cli, shipped_traces

    saved = shipped_traces.MANIFEST, shipped_traces.TRACES_DIR
    if manifest_dir is not None:
        shipped_traces.TRACES_DIR = manifest_dir / "traces"
        shipped_traces.MANIFEST = shipped_traces.TRACES_DIR / "MANIFEST.json"
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, GUARD_S)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught, redirect_stdout(out), redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                rc = cli.main(argv)
            except SystemExit as exit_:
                rc = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except _Timeout:
                rc = "hang"
            except BaseException:  # noqa: BLE001 - an escaped exception is the finding
                rc = "traceback"
                err.write(traceback.format_exc())
        for warning in caught:
            err.write(f"{warning.category.__name__}: {warning.message}\n")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        shipped_traces.MANIFEST, shipped_traces.TRACES_DIR = saved
    return rc, out.getvalue(), err.getvalue(), time.perf_counter() - start


def call_subprocess(argv: list[str]) -> tuple[object, str, str, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "dfs_sim.cli", *argv], capture_output=True, text=True,
                              timeout=GUARD_S + 30, errors="replace")
    except subprocess.TimeoutExpired:
        return "hang", "", "", time.perf_counter() - start
    rc = done.returncode if "Traceback (most recent call last)" not in done.stderr else "traceback"
    return rc, done.stdout, done.stderr, time.perf_counter() - start


def run_case(case: Case, root: Path, subprocess_run: bool = False) -> Result:
    directory, out, argv = prepare(case, root)
    if subprocess_run:
        rc, stdout, stderr, elapsed = call_subprocess(argv)
    else:
        rc, stdout, stderr, elapsed = call_main(argv, directory if case.manifest else None)
    result = judge(case, directory, out, argv, rc, stdout, stderr, elapsed, timed=not subprocess_run)
    if not result.failed:
        shutil.rmtree(directory, ignore_errors=True)
    return result


def _leftovers(directory: Path, out: Path, expected: set[Path]) -> list[str]:
    found = []
    for path in [*directory.iterdir(), *out.parent.iterdir()]:
        if path.is_symlink() or path.name in ("out",):
            continue
        if _TEMP.match(path.name) or (path.parent == out.parent and path not in expected):
            found.append(str(path.relative_to(directory)))
    return found


def judge(case: Case, directory: Path, out: Path, argv, rc, stdout: str, stderr: str, elapsed: float,
          timed: bool = True) -> Result:
    def result(verdict, detail="", generic=False):
        return Result(case, verdict, rc, elapsed, stderr, detail, generic)

    if rc == "traceback":
        return result("traceback", stderr.strip().splitlines()[-1] if stderr.strip() else "")
    if rc == "hang" or (timed and elapsed > HANG_S):
        return result("hang")
    if SECRET in stdout or SECRET in stderr:
        return result("leak", "a file's content was echoed")
    output = out if str(out) in argv else None
    if rc == 2:
        lines = stderr.strip().splitlines()
        if len(lines) != 1 or "Traceback" in stderr or not lines[0].startswith("dfs-sim"):
            return result("bad-refusal", f"{len(lines)} stderr lines")
        left = _leftovers(directory, out, set())
        if left:
            return result("partial", f"left {left}")
        return result("refused", generic="cannot be read as" in lines[0])
    allowed = (0, 1) if case.kind == "baseline" else (0,)
    if rc not in allowed:
        return result("bad-exit")
    if any(not line.startswith("dfs-sim: ") for line in stderr.strip().splitlines()):
        return result("warning", "unexpected stderr on success")
    left = _leftovers(directory, out, {output} if output else set())
    if left:
        return result("partial", f"left {left}")
    if case.expect_refusal:
        return result("garbage", "the mutation makes the input invalid, yet it was accepted")
    if output is not None:
        if not output.is_file():
            return result("partial", "exit 0 without the output file")
        text = output.read_text()
    else:
        text = stdout
    reason = oracle.verdict(_check_accepted, case, directory, argv, rc, text, stderr)
    return result("garbage", reason) if reason else result("accepted")


def _option(argv, flag, default=None):
    return argv[argv.index(flag) + 1] if flag in argv else default


@cache  # the shipped files do not change during the run (test_fuzz.py checks it)
def _shipped_batch(hw: str) -> int:
    path = REPO / "hw_configs" / f"{hw}.yaml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return (data.get("batch") or {}).get("size", 1)


def _check_accepted(case: Case, directory: Path, argv, rc, text: str, stderr: str) -> None:
    subject = (directory / case.subject).read_bytes() if case.subject else None
    if case.kind == "baseline":
        oracle.baseline_ok(subject, directory)
        oracle.check(rc == 1 or "cases match" in stderr, "regress passed without saying so")
        oracle.check(rc == 0 or text.strip(), "regress drift without a table")
        return
    fmt = _option(argv, "--format", "table")
    if case.kind == "cli":
        oracle.output_ok(argv)
        if "--per-layer" in argv:
            if fmt == "json":
                oracle.per_layer_ok(text)
            return _check_text(text, fmt)
        if fmt != "json":
            return _check_text(text, fmt)
    report = oracle.report_ok(text)
    batch = _option(argv, "--batch")
    if case.kind == "trace":
        oracle.trace_report_agrees(oracle.trace_members(subject), report)
    elif case.kind == "hw":
        config = oracle.plain_yaml(subject)
        oracle.hw_ok(config)
        oracle.hw_report_agrees(config, report, int(batch) if batch else None)
    elif case.kind == "network":
        network = oracle.strict_json(oracle.utf8_text(subject)) if case.subject.endswith(".json") \
            else oracle.plain_yaml(subject)
        oracle.network_ok(network)
        expected = int(batch) if batch else _shipped_batch(_option(argv, "--hw"))
        oracle.check(report["n_inputs"] == expected, "a static network runs one batch")
    elif case.kind == "manifest":
        oracle.manifest_ok(subject, directory)
    elif case.kind == "cli":
        oracle.budgets_agree(argv, report)


def _check_text(text: str, fmt: str) -> None:
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        oracle.check(len(rows) > 1, "empty CSV")
        for row in rows[1:]:
            for cell in row:
                oracle.check(cell.strip().lower() not in ("inf", "-inf", "nan", "infinity"), "non-finite CSV cell")
    else:
        oracle.check(not re.search(r"\b(nan|inf|-inf)\b", text), "non-finite number in the table")
