"""The wheel stands on its own: built from the checkout, installed into a fresh venv and run from a directory
outside the checkout, it finds its shipped hardware configs, traces, networks and validation data."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _files(*which: str) -> list[str]:
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", *which], capture_output=True, text=True)
    if listed.returncode != 0 or not listed.stdout:
        pytest.skip("not a git checkout")
    return listed.stdout.split("\n")[:-1]


def _run(argv, cwd, env=None):
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, python, dfs-sim script, a working directory outside the checkout, env)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy of what git would commit (tracked files and new ones not ignored), so that a stale
    # build/ directory in the checkout cannot slip old modules into the wheel.
    source = tmp / "source"
    for name in _files("--cached", "--others", "--exclude-standard"):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    # The running environment's setuptools builds it when it is new enough (fast, offline); else pip's
    # isolated build fetches one, as a user's `pip wheel .` does.
    try:
        import setuptools
        isolation = [] if int(setuptools.__version__.split(".")[0]) >= 68 else None
    except ImportError:
        isolation = None
    flags = ["--no-build-isolation"] if isolation is not None else []
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *flags, "-w", tmp / "dist", source], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("dfs_sim-*.whl")

    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
         cwd=tmp)
    # Dependencies (numpy, numba, pandas, ...) come from the running environment, appended after the fresh
    # site-packages; a path listed in a .pth file does not run that directory's own .pth files, so the
    # running environment's editable dfs_sim stays invisible.
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).stdout.strip())
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_outer_deps.pth").write_text("".join(f"{p}\n" for p in sorted(outer)))

    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return wheel, python, env_dir / "bin" / "dfs-sim", elsewhere, env


def test_wheel_holds_the_package_and_its_data(installed):
    wheel = installed[0]
    names = {name for name in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in name}
    shipped = _files("--cached", "--others", "--exclude-standard", "dfs_sim", "hw_configs", "traces")
    expected = {name if name.startswith("dfs_sim/") else f"dfs_sim/_data/{name}" for name in shipped
                if not name.startswith("traces/checkpoints/")}  # checkpoints stay out: the wheel needs no torch
    assert names == expected
    assert "dfs_sim/py.typed" in names


def test_installed_wheel_runs_outside_the_checkout(installed):
    _, python, script, elsewhere, env = installed
    where = _run([python, "-c", "import dfs_sim; print(dfs_sim.__file__)"], elsewhere, env).stdout.strip()
    assert Path(where).is_relative_to(python.parents[1]), f"imported dfs_sim from {where}, not the fresh install"

    run = _run([script, "run", "--format", "json"], elsewhere, env)
    assert "using the shipped trace" in run.stderr and '"cycles"' in run.stdout

    # The README's Python example, verbatim: a shipped name for the hardware, a traces/ path for the trace.
    example = re.search(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    _run([python, "-c", example + "\nassert result.summary and len(result.per_input) == trace.n_inputs\n"],
         elsewhere, env)
    _run([python, "-c", "import dfs_sim; assert dfs_sim.load_hw('stripes').name"], elsewhere, env)


def test_installed_wheel_validates(installed):
    _, python, script, elsewhere, env = installed
    done = _run([script, "validate"], elsewhere, env)  # exits 1 when a target is not as expected
    assert "Bit Fusion" in done.stdout
