"""One error type for every kind of bad input, and the boundary that turns read failures into it.

The CLI turns an InputError into a single line on stderr and exit code 2; the message always
names the file (or source) and the field at fault. Messages never quote a file's content beyond
a short, escaped key or value (`shown`), so a path pointing at a secret cannot leak it.
"""
from __future__ import annotations

import lzma
import struct
import tokenize
import zipfile
import zlib
from contextlib import contextmanager
from numbers import Integral

_MAX_MESSAGE_CHARS = 400


def is_int(value: object) -> bool:
    """An integer as every loader accepts one: Python's or numpy's, never a bool (true is not a count)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def one_line(text: object, limit: int = _MAX_MESSAGE_CHARS) -> str:
    """`text` with control characters escaped and its length bounded: always one printable line."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + "..."
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(value: object, limit: int = 40) -> str:
    """A user-supplied key or value as it may appear in a message: repr, escaped, at most `limit` chars."""
    text = repr(value)
    return one_line(text if len(text) <= limit else text[:limit] + "...")


class InputError(ValueError):
    """Bad user input: a missing file, wrong format, unknown key, impossible value."""

    def __init__(self, source: object, field: str | None, message: str):
        self.source = one_line(source)
        self.field = None if field is None else one_line(field, 200)
        self.message = one_line(message)
        where = f"{self.source}: {self.field}" if self.field else self.source
        super().__init__(f"{where}: {self.message}")


def require(condition: bool, source: object, field: str | None, message: str) -> None:
    if not condition:
        raise InputError(source, field, message)


def existing_file(path, what: str, quiet: bool = False):
    """`path` (a Path) if it names an existing regular file, else one InputError saying what is
    wrong: missing, a directory or device, or a name the system cannot look up (too long, a loop).
    `quiet`: return None instead of raising."""
    from pathlib import Path

    path = Path(path)
    try:
        exists, regular = path.exists(), path.is_file()
    except (OSError, ValueError) as err:  # ValueError: an embedded NUL byte
        if quiet:
            return None
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise InputError(path, None, f"cannot be looked up ({reason})") from None
    if quiet:
        return path if regular else None
    require(exists, path, None, f"no such {what}")
    require(regular, path, None, f"is not a regular file (a {what} is expected)")
    return path


# What reading and validating malformed bytes can raise, besides InputError: decoding, zip and
# numpy container errors, numbers past a limit, nesting past the interpreter's recursion limit.
# Deliberately not caught: AttributeError, NameError, AssertionError, ImportError and the like,
# which are bugs, not bad input.
READ_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, MemoryError,
               EOFError, OSError, RuntimeError, zipfile.BadZipFile, zipfile.LargeZipFile, lzma.LZMAError,
               zlib.error, struct.error, tokenize.TokenError, SyntaxError)


@contextmanager
def input_boundary(source: object, what: str):
    """Turn anything reading or validating `source` raises into one InputError naming it.

    Loaders raise precise InputErrors themselves; this catches what slips past them. The message
    names only the exception type: exception texts can quote file content."""
    try:
        yield
    except InputError:
        raise
    except READ_ERRORS as err:
        raise InputError(source, None, f"cannot be read as {what} ({type(err).__name__})") from None
