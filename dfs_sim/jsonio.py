"""Strict JSON in and out, and the bounded text reader every document loader shares.

In: duplicate keys, NaN/Infinity, numbers that are not finite or have more than
MAX_INT_DIGITS digits, and nesting deeper than MAX_DEPTH are errors naming the source.
Out: `dumps` refuses NaN and infinities (`allow_nan=False`), so a report is always valid JSON.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from dfs_sim.errors import InputError, existing_file, require, shown
from dfs_sim.limits import MAX_DEPTH, MAX_INT_DIGITS, MAX_TEXT_BYTES


class _Refused(ValueError):
    """Raised from inside json's hooks; turned into an InputError by `loads`."""


def read_text(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """A document's text: a regular file, at most `limit` bytes, UTF-8 (an optional BOM is dropped)."""
    path = existing_file(path, what)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise InputError(path, None, f"cannot be read ({err.strerror or type(err).__name__})") from None
    require(len(data) <= limit, path, None, f"is larger than {limit >> 20} MB; not a {what}")
    return decode_text(data, path, what)


def decode_text(data: bytes, source: object, what: str, field: str | None = None) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(source, field, f"is UTF-16 text; save the {what} as UTF-8")
    require(b"\x00" not in data, source, field, f"is binary, not a {what}")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise InputError(source, field, f"is not UTF-8 text (invalid byte at offset {err.start}); "
                                        f"save the {what} as UTF-8") from None


def _pairs(pairs):
    data = {}
    for key, value in pairs:
        if key in data:
            raise _Refused(f"duplicate key {shown(key)}")
        data[key] = value
    return data


def _constant(name):
    raise _Refused(f"{name} is not a number JSON allows")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits is beyond the limit of {MAX_INT_DIGITS}")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {shown(text, 24)} is out of range")
    return value


def loads(text: str, source: object, field: str | None = None) -> object:
    """Parse strict JSON; any problem is one InputError naming `source` (and `field`)."""
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_int,
                          parse_float=_float)
    except _Refused as err:
        raise InputError(source, field, f"not valid JSON ({err})") from None
    except json.JSONDecodeError as err:
        raise InputError(source, field, f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") \
            from None
    except RecursionError:
        raise InputError(source, field, f"not valid JSON (nested deeper than {MAX_DEPTH} levels)") from None
    check_depth(data, source, field)
    return data


def load(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> object:
    return loads(read_text(path, what, limit), path)


def check_depth(data: object, source: object, field: str | None = None) -> None:
    """Refuse documents nested deeper than MAX_DEPTH (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            require(depth <= MAX_DEPTH, source, field, f"is nested deeper than {MAX_DEPTH} levels")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))


def dumps(data: object, **kwargs) -> str:
    """json.dumps that refuses NaN and infinities instead of writing invalid JSON."""
    return json.dumps(data, allow_nan=False, **kwargs)


def first_non_finite(data: object, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite float in a nested report, or None."""
    stack = [(data, path)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return at or "(top level)"
        if isinstance(value, dict):
            stack.extend((v, f"{at}.{k}" if at else str(k)) for k, v in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, f"{at}[{i}]") for i, v in reversed(list(enumerate(value))))
    return None

