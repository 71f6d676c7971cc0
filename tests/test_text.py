"""What users read: number formatting, the text report, help, and the README generator."""
import argparse
import importlib.util
import re

import pytest

from dfs_sim.cli import build_parser, main
from dfs_sim.hardware.config import shipped_configs
from dfs_sim.report.format import energy_breakdown_line, format_number, format_quantity, format_row, latency_note

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_numbers_read_well():
    assert format_number(227971) == "227,971" and format_number(84370.3) == "84,370"
    assert format_number(93.98) == "93.98" and format_number(300.0) == "300" and format_number(None) == "n/a"
    assert format_number(0.0001234) == "123.4e-6"  # engineering form, never 1.234e-04
    # One row, one form: never 8.437e+04 beside 227,971.
    assert format_row([84370.3, 227971.0, 56774.2]) == ["84,370", "227,971", "56,774"]
    assert format_row([33.73, 30.2, 5.0]) == ["33.73", "30.20", "5.00"]
    assert format_row([33.7, 1e-5]) == ["33.70", "10.00e-6"]  # a small value keeps its digits
    assert format_quantity(3657, "µJ") == "3.66 mJ" and format_quantity(0.000493, "µJ") == "493 pJ"
    assert format_quantity(25323254, "B") == "25.3 MB" and format_quantity(1.77e6, "cycles") == "1.77 M cycles"
    assert format_quantity(999.7, "µJ") == "1.00 mJ" and format_quantity(0, "µJ") == "0"


def test_energy_breakdown_names_components_in_words():
    summary = {"energy_breakdown_uj": {"compute": 29.6, "sb": 1.96, "nm": 0.49, "dram": 1.62, "static": 0.0},
               "energy_components": {"compute": "compute", "sb": "weight buffer", "nm": "activation buffer",
                                     "dram": "DRAM", "static": "static (leakage)"}}
    line = energy_breakdown_line(summary)
    assert line.startswith("compute 29.6 µJ (88 %), weight buffer 1.96 µJ (5.8 %), activation buffer 490 nJ")
    assert not re.search(r"\b(sb|nm)\b", line)


def test_latency_note_says_how_each_policy_shares_a_batch():
    assert latency_note({"size": 1, "policy": "grouped"}).startswith("latency_us: the input's own time")
    lockstep = latency_note({"size": 16, "policy": "lockstep"})
    assert "batch of 16 takes (lockstep)" in lockstep and "shared equally by its inputs" in lockstep
    for policy in ("bucketed", "grouped"):  # a block's group shares its cost, not the whole batch
        note = latency_note({"size": 16, "policy": policy})
        assert "shared by the inputs of the batch that ran it at the same option" in note
        assert ("wait to fill a batch is not counted" in note) == (policy == "grouped")


def test_report_table_reads_well(make_trace, capsys):
    assert main(["run", "--trace", str(make_trace()), "--hw", "bitfusion", "--budget", "latency_us=50"]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\de[+-]\d", out)  # no 8.437e+04
    assert re.search(r"\d{1,3},\d{3}", out)  # thousands separators
    assert "latency_us: the time the input's whole batch of 16 takes" in out
    assert "latency_us (the input's batch) <= 50" in out
    assert "weight buffer" in out and "wbuf" not in out


def test_csv_has_no_repr_noise(make_trace, capsys):
    assert main(["run", "--trace", str(make_trace(n=50)), "--hw", "stripes", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\d\.\d{13,}", out)


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_and_subcommand_has_help():
    parser = build_parser()
    for p in _parsers(parser):
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{p.prog} {choice.dest}: no help"
                continue
            assert action.help, f"{p.prog} {'/'.join(action.option_strings) or action.dest}: no help"
        text = p.format_help()
        assert "%%" not in text and "(default: None)" not in text, p.prog


def test_help_says_what_options_mean(capsys):
    parser = build_parser()
    helps = {p.prog: p.format_help() for p in _parsers(parser)}
    for name in (path.stem for path in shipped_configs()):
        assert name in re.sub(r"\s+", "", helps["dfs-sim run"])
    run = re.sub(r"\s+", " ", helps["dfs-sim run"])
    assert "lockstep runs the whole batch once at the widest option" in run and "bucketed splits" in run
    assert "latency_us is the time the input's whole batch takes" in run
    assert "(default: table)" in run
    frontier = re.sub(r"\s+", " ", helps["dfs-sim frontier"])
    for axis in ("energy_uj", "latency_p99_us", "dram_bytes", "computation_pct"):
        assert f"{axis}:" in frontier
    assert "(default: energy_uj)" in frontier
    assert "delta %)" in re.sub(r"\s+", " ", helps["dfs-sim regress"])
    assert "dadiannao stripes loom bitfusion" in re.sub(r"\s+", " ", helps["dfs-sim plot proxy"])


def _update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_generator_replaces_only_marked_blocks(monkeypatch):
    module = _update_readme()
    monkeypatch.setattr(module, "GENERATORS", {"a": lambda: "| x |\n|---|", "b": lambda: "42"})
    text = ("keep\n<!-- BEGIN generated:a -->\nold\n<!-- END generated:a -->\n"
            "n = <!-- BEGIN generated:b -->7<!-- END generated:b --> items\n")
    assert module.regenerate(text) == ("keep\n<!-- BEGIN generated:a -->\n| x |\n|---|\n<!-- END generated:a -->\n"
                                       "n = <!-- BEGIN generated:b -->42<!-- END generated:b --> items\n")
    with pytest.raises(SystemExit):
        module.regenerate("<!-- BEGIN generated:c -->x<!-- END generated:c -->")
    with pytest.raises(SystemExit):
        module.regenerate("no blocks")


def test_readme_tables_match_the_code(cached_validation, capsys):
    """README's numbers come from the shipped traces and the validation targets: `scripts/update_readme.py
    --check`, every block (CI runs it here, once; the targets are the session's, tests/conftest.py)."""
    module = _update_readme()
    assert module.main(["--check"]) == 0, "README.md is stale: run python scripts/update_readme.py\n" + \
        capsys.readouterr().out
    text = (REPO / "README.md").read_text()
    # The two set-up commands come first, then the figure.
    assert text.index("pip install -e . && dfs-sim run") < text.index("![") < text.index("## What it tells you")
    assert (REPO / "docs" / "figures" / "proxy.png").is_file()
