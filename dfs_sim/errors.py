"""One error type for every kind of bad input.

The CLI turns it into a single line on stderr and exit code 2; the message always
names the file (or source) and the field at fault.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a missing file, wrong format, unknown key, impossible value."""

    def __init__(self, source: object, field: str | None, message: str):
        self.source = str(source)
        self.field = field
        self.message = message
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {message}")


def require(condition: bool, source: object, field: str | None, message: str) -> None:
    if not condition:
        raise InputError(source, field, message)
