"""Where the shipped data lives: hw_configs/ and traces/.

A checkout keeps them at the top of the repository, where users browse them; a wheel carries the same tree
as dfs_sim/_data/ (pyproject.toml maps it in). Every lookup of shipped data goes through `shipped`."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_root() -> Path:
    """The directory that holds hw_configs/ and traces/: the installed package's _data/, else the checkout."""
    packaged = Path(str(files("dfs_sim"))) / "_data"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1]


def shipped(*parts: str) -> Path:
    """A path inside the shipped data, e.g. shipped("hw_configs", "stripes.yaml")."""
    return data_root().joinpath(*parts)


SHIPPED_DIRS = ("hw_configs", "traces")


def local_or_shipped(path: str | Path) -> str | Path:
    """`path` itself, unless it is a relative path under hw_configs/ or traces/ that does not exist here and names
    a shipped file: then that file. So the README's `traces/...` and `hw_configs/networks/...` paths work from any
    directory, as `--hw stripes` does. Anything else comes back unchanged for the caller to report."""
    if not isinstance(path, (str, Path)):
        return path
    relative = Path(path)
    try:
        if relative.is_absolute() or not relative.parts or relative.parts[0] not in SHIPPED_DIRS or \
                relative.exists() or relative.is_symlink():
            return path
        root = data_root().resolve()
        candidate = root.joinpath(*relative.parts).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return candidate
    except (OSError, ValueError):  # a name the system cannot look up: the caller's check says why
        pass
    return path
