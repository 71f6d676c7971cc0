"""The strict readers (dfs_sim/yamlio.py, dfs_sim/jsonio.py), the bounds (dfs_sim/limits.py) as
docs/robustness.md documents them, and atomic writes."""
import re
from pathlib import Path

import pytest
import yaml

from dfs_sim import jsonio, limits, yamlio
from dfs_sim.atomic import atomic_file, temp_prefix
from dfs_sim.errors import InputError, one_line, shown

REPO = Path(__file__).resolve().parents[1]
SHIPPED_YAML = sorted((REPO / "hw_configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: p.stem)
def test_strict_yaml_reads_every_shipped_file_as_safe_load_does(path):
    assert yamlio.load(path, "document") == yaml.safe_load(path.read_text())


@pytest.mark.parametrize("text, value", [
    ("a: yes\nb: 0x10\nc: 1_000\nd: 2020-01-01\ne: ~\nf: 1.5e+3\ng: '1'\n",
     {"a": True, "b": 16, "c": 1000, "d": "2020-01-01", "e": None, "f": 1500.0, "g": "1"}),
    ("a: &anchor 1\n", {"a": 1}),  # an anchor nothing refers to is harmless
    ("", None),
])
def test_strict_yaml_keeps_safe_load_semantics(text, value):
    assert yamlio.loads(text, "doc.yaml") == value


@pytest.mark.parametrize("text, needle", [
    ("a: 1\na: 2\n", "a: duplicate key (line 2)"),
    ("a: {b: 1, b: 2}\n", "a.b: duplicate key"),
    ("1: x\n", "keys must be strings, found a key of type int"),
    ("a: &x [1]\nb: *x\n", "b: aliases"),
    ("a: !!binary aGVsbG8=\n", "a: tag"),
    ("a: !!python/name:os.system x\n", "a: tag"),
    ("a: .nan\n", "a: '.nan' is not a finite number"),
    ("a: 9223372036854775808\n", "a: integer '9223372036854775808' does not fit in 64 bits"),
    ("a: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 32 levels"),
    ("a: [\n", "not valid YAML (did not find expected node content"),
])
def test_strict_yaml_refusals_name_the_field(text, needle):
    with pytest.raises(InputError) as err:
        yamlio.loads(text, "doc.yaml")
    assert str(err.value).startswith("doc.yaml: ") and needle in str(err.value)


@pytest.mark.parametrize("text, needle", [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"), ('{"a": NaN}', "NaN is not a number JSON allows"),
    ('{"a": 1e999}', "out of range"), ('{"a": ' + "1" * 20 + "}", "20 digits"),
    ("[" * 33 + "]" * 33, "nested deeper than 32 levels"), ("[" * 100_000 + "]" * 100_000, "nested deeper"),
    ('{"a": 1', "not valid JSON (Expecting"),
])
def test_strict_json_refusals(text, needle):
    with pytest.raises(InputError) as err:
        jsonio.loads(text, "doc.json")
    assert needle in str(err.value)


def test_json_out_refuses_non_finite_numbers():
    assert jsonio.dumps({"a": [1.5, None]}) == '{"a": [1.5, null]}'
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            jsonio.dumps({"a": bad})
    assert jsonio.first_non_finite({"a": {"b": [1.0, float("nan")]}}) == "a.b[1]"
    assert jsonio.first_non_finite({"a": {"b": [1.0, None]}}) is None


@pytest.mark.parametrize("data, needle", [(b"\xff\xfea\x00", "UTF-16"), (b"caf\xe9: 1", "not UTF-8 text"),
                                          (b"PK\x03\x04\x00\x00", "binary")])
def test_documents_must_be_utf8_text(tmp_path, data, needle):
    path = tmp_path / "doc.yaml"
    path.write_bytes(data)
    with pytest.raises(InputError, match=needle):
        yamlio.load(path, "document")


def test_messages_are_one_escaped_line():
    err = InputError("file\nname", "key\rwith\x1bescape", "value " + "x" * 1000)
    assert "\n" not in str(err) and "\r" not in str(err) and "\x1b" not in str(err)
    assert len(str(err)) < 700
    assert shown("secret " * 100).endswith("...") and len(shown("a" * 100)) <= 43
    assert one_line("tab\there") == "tab\\there"


def test_bounds_table_in_the_docs_is_limits_py():
    """docs/robustness.md's bounds table lists every constant of dfs_sim/limits.py with its value."""
    text = (REPO / "docs" / "robustness.md").read_text()
    rows = dict(re.findall(r"^\| `(MAX_[A-Z_]+)` \| ([^|]+) \|", text, re.M))
    constants = {name: value for name, value in vars(limits).items() if name.startswith("MAX_")}
    assert set(rows) == set(constants)
    for name, value in constants.items():
        assert int(rows[name].replace(",", "").split()[0]) == value, name


def test_temporary_names_stay_within_name_max(tmp_path):
    target = tmp_path / ("r" * 250)
    assert len(temp_prefix(target)) < 160
    with atomic_file(target, "w") as handle:
        handle.write("x")
    assert target.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == [target.name]
