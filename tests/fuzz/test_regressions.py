"""One regression test per class of malformed input in issue 11, in the issue's order.

Each reproduces the issue's example and checks the README contract: exit 2 with one stderr line
naming the file and the field, no traceback, no output file; or, where the input is legitimate,
finite numbers.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import yaml

from dfs_sim import jsonio, limits
from dfs_sim.atomic import atomic_file, remove_stale_temps, temp_prefix
from dfs_sim.cli import check_report, main
from dfs_sim.errors import InputError
from dfs_sim.trace import load_trace
from fuzz_inputs import REPO, patch, read_members, with_header_text, write_entries, write_members, zip_layout

STRIPES_VGG = REPO / "hw_configs" / "networks" / "stripes_vgg_19.yaml"
STRIPES = REPO / "hw_configs" / "stripes.yaml"
PAPER = REPO / "traces" / "paper" / "dfs_resnet74_cifar10_paper_b30.npz"
FMNIST = REPO / "traces" / "fmnist_resnet20_b30.npz"


def refused(capsys, argv, *needles, out=None):
    """Run the CLI in-process; assert exit 2, one stderr line holding every needle, no output file."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    if out is not None:
        assert not out.exists()
    return lines[0]


def header_edit(source, tmp_path, edit, name="t.npz"):
    members = read_members(source.read_bytes())
    header = json.loads(members["header"].tobytes())
    text = edit(header)
    members = with_header_text(members, text if isinstance(text, str) else json.dumps(header))
    path = tmp_path / name
    path.write_bytes(write_members(members))
    return path


# ---- Arithmetic overflow: sizes are bounded; what is accepted cannot wrap ----------------------

@pytest.mark.parametrize("c_in", [2**40, 2**44, 2**63])
def test_huge_layer_without_macs_is_refused(tmp_path, capsys, c_in):
    data = yaml.safe_load(STRIPES_VGG.read_text())
    data["layers"][1]["c_in"] = c_in
    del data["layers"][1]["macs"]
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "r.json"
    line = refused(capsys, ["run", "--network", str(path), "--hw", "stripes", "-o", str(out)], str(path),
                   "layers[1]", "c_in", out=out)
    assert ("out of range" if c_in < 2**63 else "does not fit in 64 bits") in line


@pytest.mark.parametrize("model", ["bitfusion", "loom", "stripes"])
def test_cost_arithmetic_at_the_bounds_is_exact_and_finite(model):
    """The largest layer the bounds allow, at the largest batch and widest operands: every cost is
    finite and non-negative, and the op count is the exact product (it would wrap in int64 if the
    bounds were looser)."""
    from dfs_sim.cost.table import cost_entries, metric_names
    from dfs_sim.hardware.config import load_hw
    from dfs_sim.workload.network import Layer, Network

    side = 256
    channels = 1024
    conv = Layer("big", "conv", channels, channels, side, side, side, side, kernel=3, padding=1, precision="fixed",
                 w_bits=limits.MAX_BITS, a_bits=limits.MAX_BITS)
    fc = Layer("wide", "fc", limits.MAX_CHANNELS, limits.MAX_CHANNELS, precision="fixed", w_bits=limits.MAX_BITS,
               a_bits=limits.MAX_BITS)
    assert fc.macs == limits.MAX_LAYER_MACS and conv.macs <= limits.MAX_LAYER_MACS
    network = Network("extreme", (conv, fc))
    hw = load_hw(model)
    bits = np.full(2, limits.MAX_BITS)
    batch = np.full(2, limits.MAX_BATCH)
    values, _ = cost_entries(network, hw, np.arange(2), bits, bits, bits, batch, weights_resident=False)
    names = metric_names(hw)
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    macs = [conv.macs * limits.MAX_BATCH, fc.macs * limits.MAX_BATCH]  # exact Python integers
    if model == "bitfusion":  # one op per MAC
        assert values[:, names.index("ops")].tolist() == [float(m) for m in macs]
    lanes = np.prod(list(hw.array.unroll.values()))
    assert np.all(values[:, names.index("cycles")] >= np.array(macs, dtype=float) / lanes / 16)
    # Weights cross DRAM at least once, at their full width.
    assert values[1, names.index("dram_read_bits")] >= fc.weights * limits.MAX_BITS


# ---- YAML alias bomb ----------------------------------------------------------------------------

def test_alias_bomb_is_refused_at_once(tmp_path, capsys):
    bomb = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for k in range(1, 9):
        bomb += f"a{k}: &a{k} [" + ",".join([f"*a{k - 1}"] * 9) + "]\n"
    config = yaml.safe_load(STRIPES.read_text())
    del config["description"]
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb + yaml.safe_dump(config) + "description: *a8\n")
    assert path.stat().st_size < 10_000
    start = time.perf_counter()
    refused(capsys, ["run", "--hw", str(path)], str(path), "aliases")
    assert time.perf_counter() - start < 2


# ---- Silent type laxity ---------------------------------------------------------------------------

def test_string_false_is_not_true(tmp_path, capsys):
    data = yaml.safe_load(STRIPES.read_text())
    data["buffers"][0]["double_buffered"] = "false"
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    refused(capsys, ["run", "--hw", str(path)], "buffers[0].double_buffered", "true or false")


def test_duplicate_key_is_refused(tmp_path, capsys):
    text = STRIPES.read_text()
    path = tmp_path / "hw.yaml"
    path.write_text(text.replace("clock_mhz:", "clock_mhz: 1\nclock_mhz:", 1))
    refused(capsys, ["run", "--hw", str(path)], "clock_mhz", "duplicate key")


@pytest.mark.parametrize("edit, field", [
    (lambda h: h.update(budget={"computation_pct": True}), "header.budget.computation_pct"),
    (lambda h: h.update(version=True), "header.version"),
    (lambda h: h.update(n_inputs=True), "header.n_inputs"),
    (lambda h: h["network"]["layers"][3].update(macs=-1), "macs"),
    (lambda h: h["options"][1].update(full_precision="false"), "full_precision"),
])
def test_lax_header_values_are_refused(tmp_path, capsys, edit, field):
    path = header_edit(FMNIST, tmp_path, edit)
    refused(capsys, ["run", "--trace", str(path)], str(path), field)


def test_macs_minus_one_in_a_network_file_is_refused(tmp_path, capsys):
    data = yaml.safe_load(STRIPES_VGG.read_text())
    data["layers"][0]["macs"] = -1
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data))
    refused(capsys, ["run", "--network", str(path)], "layers[0] (conv1_1).macs", "omit it")


@pytest.mark.parametrize("value", [2**64 - 1, 2**31, -1])
def test_label_ranges_are_checked(tmp_path, capsys, value):
    members = read_members(FMNIST.read_bytes())
    labels = members["labels"].astype(np.uint64 if value > 0 else np.int64)
    labels[5] = value
    members["labels"] = labels
    path = tmp_path / "t.npz"
    path.write_bytes(write_members(members))
    refused(capsys, ["run", "--trace", str(path)], "labels", "class indices")


# ---- Non-UTF-8 files ----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "npz"])
@pytest.mark.parametrize("option", ["--hw", "--network"])
def test_non_utf8_documents_are_one_line(tmp_path, capsys, encoding, option):
    source = STRIPES if option == "--hw" else STRIPES_VGG
    text = source.read_text().replace("name:", "# caf\u00e9 r\u00e9sum\u00e9\nname:", 1)
    path = tmp_path / "doc.yaml"
    path.write_bytes(FMNIST.read_bytes() if encoding == "npz" else text.encode(encoding))
    line = refused(capsys, ["run", option, str(path)], str(path))
    assert {"latin-1": "not UTF-8", "utf-16": "UTF-16", "npz": "binary"}[encoding] in line


def test_utf8_with_bom_is_accepted(tmp_path, capsys):
    path = tmp_path / "hw.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + STRIPES.read_bytes())
    assert main(["run", "--hw", str(path), "--format", "json"]) == 0


# ---- Mixed-type mapping keys ----------------------------------------------------------------------

@pytest.mark.parametrize("insert, where", [("1: x\n", "top"), ("  7: a citation\n", "sources"),
                                           ("null: x\n", "top"), ("<<: {colour: red}\n", "top")])
def test_non_string_keys_are_refused(tmp_path, capsys, insert, where):
    text = STRIPES.read_text()
    text = insert + text if where == "top" else text.replace("sources:\n", "sources:\n" + insert, 1)
    path = tmp_path / "hw.yaml"
    path.write_text(text)
    refused(capsys, ["run", "--hw", str(path)], str(path), "keys must be strings")


# ---- Zip container anomalies -------------------------------------------------------------------------

def _directory_patch(data: bytes, member: str, offset: int, value: bytes, local_offset: int | None = None) -> bytes:
    entries, _, _ = zip_layout(data)
    entry = next(e for e in entries if e.name == member)
    data = patch(data, entry.central + offset, value)
    if local_offset is not None:
        data = patch(data, entry.local + local_offset, value)
    return data


@pytest.mark.parametrize("member", ["decisions.npy", "header.npy"])
@pytest.mark.parametrize("anomaly, needle", [
    ("encrypted", "encrypted"), ("method-99", "compression method 99"), ("lzma-flag", "compression method 14"),
])
def test_zip_member_anomalies(tmp_path, capsys, member, anomaly, needle):
    data = FMNIST.read_bytes()
    if anomaly == "encrypted":
        data = _directory_patch(data, member, 8, b"\x01\x00", 6)
    else:
        method = 99 if anomaly == "method-99" else 14
        data = _directory_patch(data, member, 10, method.to_bytes(2, "little"), 8)
    path = tmp_path / "t.npz"
    path.write_bytes(data)
    refused(capsys, ["run", "--trace", str(path)], str(path), member[:-4], needle)


def test_real_lzma_archive_is_refused(tmp_path, capsys):
    path = tmp_path / "t.npz"
    path.write_bytes(write_members(read_members(FMNIST.read_bytes()), zipfile.ZIP_LZMA))
    refused(capsys, ["run", "--trace", str(path)], "compression method 14")


def test_deflated_archive_is_read(tmp_path, capsys):
    path = tmp_path / "t.npz"
    members = read_members(FMNIST.read_bytes())
    np.savez_compressed(path, **members)
    assert main(["run", "--trace", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_inputs"] == 10_000


def test_corrupted_central_directory(tmp_path, capsys):
    data = FMNIST.read_bytes()
    _, directory, end = zip_layout(data)
    for k, offset in enumerate((0, 10, 42, 46)):
        path = tmp_path / f"t{k}.npz"
        path.write_bytes(patch(data, directory + offset, b"\xff\xff\xff\xff"))
        refused(capsys, ["run", "--trace", str(path)], str(path))


@pytest.mark.parametrize("damage, needle", [
    (lambda t: t.replace(b"'descr'", b"('descr'"), "damaged header"),  # numpy: tokenize.TokenError
    (lambda t: t.replace(b"'shape': (", b"'shape': (\"oops, "), "damaged header"),
    (lambda t: t.replace(b"<i4", b"|O8"), "dtype"),
])
def test_npy_header_damage(tmp_path, capsys, damage, needle):
    data = FMNIST.read_bytes()
    entries, _, _ = zip_layout(data)
    members = [(e.name, data[e.data:e.data + e.size]) for e in entries]
    name, member = members[1]  # labels.npy
    length = int.from_bytes(member[8:10], "little")
    text = damage(member[10:10 + length])
    members[1] = (name, member[:8] + len(text).to_bytes(2, "little") + text + member[10 + length:])
    path = tmp_path / "t.npz"
    path.write_bytes(write_entries(members))
    refused(capsys, ["run", "--trace", str(path)], str(path), "labels", needle)


def test_npy_header_length_over_the_limit_is_one_line(tmp_path, capsys):
    data = FMNIST.read_bytes()
    entries, _, _ = zip_layout(data)
    members = [(e.name, data[e.data:e.data + e.size]) for e in entries]
    name, member = members[1]
    members[1] = (name, b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little") + member[10:])
    path = tmp_path / "t.npz"
    path.write_bytes(write_entries(members))
    refused(capsys, ["run", "--trace", str(path)], "labels", "over the limit")


# ---- Huge integers and deep nesting ----------------------------------------------------------------

@pytest.mark.parametrize("raw, needle", [("1" + "0" * 5000, "digits"), ("[" * 100_000 + "]" * 100_000, "nested"),
                                         ("NaN", "NaN"), ("1e999", "out of range")])
def test_header_numbers_and_nesting(tmp_path, capsys, raw, needle):
    path = header_edit(FMNIST, tmp_path, lambda h: json.dumps(h).replace('"n_inputs": ', f'"x": {raw}, "n_inputs": '))
    refused(capsys, ["run", "--trace", str(path)], str(path), "header", needle)


@pytest.mark.parametrize("value, needle", [("1" + "0" * 5000, "out of range"), ("[" * 100_000 + "]" * 100_000, "nest"),
                                           ("0x" + "f" * 40, "64 bits"), (".inf", "finite")])
def test_yaml_numbers_and_nesting(tmp_path, capsys, value, needle):
    path = tmp_path / "hw.yaml"
    path.write_text(STRIPES.read_text().replace("clock_mhz: ", f"clock_mhz: {value}\nx_clock: ", 1))
    refused(capsys, ["run", "--hw", str(path)], str(path), needle)


# ---- The memory-mapped path ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def large_trace(tmp_path_factory):
    """DFS-ResNet74, 40,000 inputs: 1.4 MB of decisions, memory-mapped."""
    members = read_members(PAPER.read_bytes())
    header = json.loads(members["header"].tobytes())
    members["decisions"] = np.tile(members["decisions"], (4, 1))
    header["n_inputs"] = 40_000
    members = with_header_text(members, json.dumps(header))
    path = tmp_path_factory.mktemp("large") / "large.npz"
    path.write_bytes(write_members(members))
    assert isinstance(load_trace(path).decisions, np.memmap)
    return path


def test_every_flipped_byte_in_a_mapped_member_is_caught(large_trace, tmp_path):
    data = large_trace.read_bytes()
    entry = next(e for e in zip_layout(data)[0] if e.name == "decisions.npy")
    rng = np.random.default_rng(0)
    for k, at in enumerate(rng.integers(entry.data + 128, entry.data + entry.size, 25)):
        flipped = bytearray(data)
        flipped[at] ^= 1 << int(rng.integers(8))
        path = tmp_path / f"f{k}.npz"
        path.write_bytes(bytes(flipped))
        with pytest.raises(InputError, match="decisions: fails its CRC check"):
            load_trace(path)


def test_mapped_member_shape_and_size_are_checked(large_trace, tmp_path):
    data = large_trace.read_bytes()
    entry = next(e for e in zip_layout(data)[0] if e.name == "decisions.npy")
    negative = data.replace(b"'shape': (40000, 35)", b"'shape': (-1, 35)   ", 1)
    path = tmp_path / "negative.npz"
    path.write_bytes(negative)
    with pytest.raises(InputError, match=r"decisions: has shape \(-1, 35\)"):
        load_trace(path)
    members = read_members(data)
    members["decisions"] = members["decisions"][:-10]  # 10 rows short; the header still says 40,000
    path = tmp_path / "short.npz"
    path.write_bytes(write_members(members))
    with pytest.raises(InputError, match=r"decisions: shape \(39990, 35\) does not match header"):
        load_trace(path)
    # The same damage made in place: the zip entry is 350 bytes shorter than its .npy header says.
    size = (entry.size - 350).to_bytes(4, "little")
    path = tmp_path / "cut.npz"
    path.write_bytes(patch(patch(data, entry.central + 20, size), entry.central + 24, size))
    with pytest.raises(InputError, match="decisions: is truncated"):
        load_trace(path)


# ---- Zero inputs --------------------------------------------------------------------------------------

def test_zero_inputs_are_refused(tmp_path, capsys):
    members = {k: v[:0] if k != "header" else v for k, v in read_members(FMNIST.read_bytes()).items()}
    header = json.loads(members["header"].tobytes())
    header["n_inputs"] = 0
    path = tmp_path / "t.npz"
    path.write_bytes(write_members(with_header_text(members, json.dumps(header))))
    refused(capsys, ["run", "--trace", str(path)], "header.n_inputs", "at least one input")


# ---- Output that is not JSON ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "-1"])
def test_non_finite_budgets_are_refused(capsys, value):
    refused(capsys, ["run", "--budget", f"latency_us={value}"], "--budget: latency_us", "finite")


def test_reports_are_strict_json(capsys):
    assert main(["run", "--format", "json", "--budget", "latency_us=100"]) == 0
    text = capsys.readouterr().out
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a report"))
    with pytest.raises(ValueError):
        jsonio.dumps({"x": float("inf")})


def test_a_non_finite_report_is_refused():
    class Result:
        summary = {"metrics": {"energy_uj": {"mean": float("inf")}}}

    with pytest.raises(InputError, match="metrics.energy_uj.mean: is not finite"):
        check_report(Result(), per_layer=False, source="t.npz on hw.yaml")


# ---- Output paths ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("output, needle", [
    ("{dir}", "is a directory"), ("", "empty"), ("/proc/dfs-sim-report.json", "cannot be written"),
    ("{dir}/" + "r" * 300 + ".json", "file name is 305 bytes"), ("{dir}/missing/r.json", "does not exist"),
    ("/dev/null", "not a regular file"), (str(FMNIST), "is also an input"),
])
def test_bad_output_paths_fail_before_simulating(tmp_path, capsys, monkeypatch, output, needle):
    import dfs_sim.engine

    monkeypatch.setattr(dfs_sim.engine, "simulate", lambda *a, **k: pytest.fail("simulated before checking -o"))
    refused(capsys, ["run", "--trace", str(FMNIST), "-o", output.replace("{dir}", str(tmp_path))], needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_killed_writer_leaves_no_temp_file_behind(tmp_path):
    target = tmp_path / "report.json"
    script = ("import sys, time\nfrom dfs_sim.atomic import atomic_file\n"
              "with atomic_file(sys.argv[1], 'w') as h:\n    h.write('partial'); h.flush(); print('ready', flush=True)"
              "; time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and not target.exists()  # what a SIGKILL leaves
    legacy = tmp_path / ".report.json.abcd1234.tmp"  # the older temp-name form, an hour old
    legacy.write_text("x")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    alive = tmp_path / (temp_prefix(target, pid=1) + "live.tmp")  # pid 1 is running: not ours to remove
    alive.write_text("x")
    with atomic_file(target, "w") as handle:
        handle.write("whole")
    assert target.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["report.json", alive.name])
    assert remove_stale_temps(target) == []


# ---- Regress baselines ----------------------------------------------------------------------------------------

@pytest.fixture
def repo_baseline(tmp_path):
    """A one-case baseline inside a repository (a directory with .git), a secret file beside it."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("root:$6$SECRET-HASH:19000:0:99999:7:::\n")
    base = json.loads((REPO / "tests" / "cost_baseline.json").read_text())
    case = copy.deepcopy(next(c for c in base["cases"] if "static_8bit" in c["trace"] and "stripes" in c["hw"]))
    for key in ("trace", "hw"):
        case[key] = os.path.relpath((REPO / "tests" / case[key]).resolve(), repo)
    return repo / "baseline.json", {"schema": base["schema"], "cases": [case]}


def test_regress_batch_must_be_an_integer(repo_baseline, capsys):
    path, data = repo_baseline
    data["cases"][0]["batch"] = True
    path.write_text(json.dumps(data))
    refused(capsys, ["regress", "--baseline", str(path)], "cases[0].batch", "integer")


@pytest.mark.parametrize("target", ["../../../../../../../../etc/shadow", "../secret.txt", "/etc/passwd", "link"])
def test_regress_paths_are_confined_and_never_echoed(repo_baseline, capsys, target):
    path, data = repo_baseline
    if target == "link":
        (path.parent / "link").symlink_to(path.parent.parent / "secret.txt")
    data["cases"][0]["hw"] = target
    path.write_text(json.dumps(data))
    line = refused(capsys, ["regress", "--baseline", str(path)], "cases[0].hw", "outside")
    assert "SECRET" not in line and "root:" not in line


def test_regress_needs_cases(repo_baseline, capsys):
    path, data = repo_baseline
    data["cases"] = []
    path.write_text(json.dumps(data))
    refused(capsys, ["regress", "--baseline", str(path)], "cases", "non-empty")


def test_regress_baseline_inside_the_repository_passes(repo_baseline, capsys):
    path, data = repo_baseline
    path.write_text(json.dumps(data))
    assert main(["regress", "--baseline", str(path)]) == 0


# ---- --network with --budget and --policy ---------------------------------------------------------------------

def test_network_honours_budget_and_policy(capsys):
    network = REPO / "hw_configs" / "networks" / "bitfusion_lenet5.yaml"
    assert main(["run", "--network", str(network), "--hw", "bitfusion", "--format", "json", "--policy", "bucketed",
                 "--batch", "4", "--budget", "latency_us=1", "--budget", "energy_uj=1e9"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["batch"] == {"size": 4, "policy": "bucketed"} and report["n_inputs"] == 4
    absolute = report["budget"]["absolute"]
    assert absolute["latency_us"]["n_over"] == 4 and absolute["energy_uj"]["n_over"] == 0
    refused(capsys, ["run", "--network", str(network), "--budget", "computation_pct=20"], "computation_pct",
            "no gated units")
