"""Atomic file writes: output appears whole or not at all, even when an error stops the writer.

The temporary file lives beside the target (so the final rename is atomic) and is named
`.NAME~HOST~PID~RANDOM.tmp`. A writer killed outright (SIGKILL, power loss) cannot remove it, so
every write first removes the temporary files of earlier writes to the same target whose
process, on this host, is gone. Temporary files in the older `.NAME.RANDOM.tmp` form, which name
no process, are removed once they are an hour old.
"""
from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

_NAME_CHARS = 100  # of the target's name kept in the temporary name, so it stays within NAME_MAX
_LEGACY_STALE_S = 3600.0


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:32] or "host"


def temp_prefix(path: Path, pid: int | None = None) -> str:
    return f".{path.name[:_NAME_CHARS]}~{_host()}~{os.getpid() if pid is None else pid}~"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or an odd number: leave the file alone
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove leftovers of killed writers of `path`; returns what was removed."""
    removed = []
    short = path.name[:_NAME_CHARS]
    host = _host()
    legacy = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{8}\.tmp")
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        name = candidate.name
        if not (name.startswith(f".{short}") and name.endswith(".tmp")):
            continue
        parts = name.rsplit("~", 3)
        stale = False
        if len(parts) == 4 and parts[0] == f".{short}" and parts[1] == host and parts[2].isdigit():
            stale = int(parts[2]) != os.getpid() and not _pid_alive(int(parts[2]))
        elif legacy.fullmatch(name):
            try:
                stale = time.time() - candidate.stat().st_mtime > _LEGACY_STALE_S
            except OSError:
                stale = False
        if stale:
            try:
                candidate.unlink()
                removed.append(candidate)
            except OSError:
                pass
    return removed


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb"):
    """Yield a handle to a temporary file beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
