"""Where a command's output goes: checked before any work is done, written atomically."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from dfs_sim.atomic import atomic_file, temp_prefix
from dfs_sim.errors import InputError


def check_output_path(output: str | None, inputs=(), option: str = "-o") -> Path | None:
    """Refuse an output path that cannot take the file, before any work is done: empty, a
    directory, a device or other non-regular file, a missing or unwritable directory, a name the
    file system cannot hold, or one of the run's own inputs."""
    if output is None:
        return None
    if not str(output):
        raise InputError(option, None, "the output path is empty")
    path = Path(output)
    try:
        return _check_output_path(path, str(output), inputs)
    except InputError:
        raise
    except (OSError, ValueError) as err:  # a name the system cannot look up: too long, a NUL byte, a loop
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise InputError(path, None, f"cannot be used as an output ({reason})") from None


def _check_output_path(path: Path, output: str, inputs) -> Path:
    try:
        name_max = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(path.name)) > name_max:
        raise InputError(path.parent / (path.name[:40] + "..."), None,
                         f"the file name is {len(os.fsencode(path.name))} bytes; the file system allows {name_max}")
    if output.endswith(os.sep) or path.is_dir():
        raise InputError(path, None, "is a directory; give a file name to write")
    if path.exists() and not path.is_file():
        raise InputError(path, None, "is not a regular file; dfs-sim writes files (omit -o to print)")
    if not path.parent.is_dir():
        raise InputError(path, None, "the output directory does not exist")
    for source in inputs:
        if source is not None and Path(source).exists() and path.resolve() == Path(source).resolve():
            raise InputError(path, None, "is also an input of this run; write the output elsewhere")
    try:  # the only sure test of writability (read-only mounts, permissions, quotas)
        handle, probe = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise InputError(path, None, f"cannot be written ({err.strerror or type(err).__name__})") from None
    return path


def write_output(text: str, output: str | None) -> None:
    """Print, or write atomically: an error midway never leaves a partial file."""
    if output is None:
        sys.stdout.write(text)
        return
    path = check_output_path(output)
    with atomic_file(path, "w") as handle:
        handle.write(text)
