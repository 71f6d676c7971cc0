"""Strict YAML: the one loader behind every dfs-sim YAML document (hardware configs, networks).

`yaml.safe_load` semantics (YAML 1.1 scalars, libyaml's parser when installed), except that a
document must be plain data, the JSON data model:
- no aliases (`*name`): an alias bomb expands a few KB into gigabytes;
- mapping keys are strings, each once: `1: x`, `null: x`, `<<: ...` and a repeated key are errors;
- no tags beyond str, int, float, bool, null, list and mapping (`!!set`, `!!binary`, `!!python/...`
  are errors); a timestamp-like scalar stays the string it is written as;
- integers fit in int64 and floats are finite (`.inf`, `.nan`, `1e400` are errors);
- nesting is at most MAX_DEPTH levels.
Every error is one InputError naming the source, the field path and the line.
"""
from __future__ import annotations

import math
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from dfs_sim.errors import InputError, shown
from dfs_sim.jsonio import read_text
from dfs_sim.limits import MAX_DEPTH, MAX_TEXT_BYTES

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}
_MAX_INT = 2**63 - 1
_MAX_SCALAR_CHARS_FOR_NUMBER = 64  # int() of thousands of digits is slow and past Python's limit


class _Refused(Exception):
    def __init__(self, field: str | None, message: str, node=None):
        self.field, self.message = field, message
        self.line = node.start_mark.line + 1 if node is not None and node.start_mark else None


class _StrictConstructor(SafeConstructor):
    paths: dict[int, str] = {}  # node id -> field path, filled by _check_tree before construction

    def construct_yaml_int(self, node):
        value = super().construct_yaml_int(node)
        if abs(value) > _MAX_INT:
            raise _Refused(self.paths.get(id(node)), f"integer {shown(node.value, 24)} does not fit in 64 bits", node)
        return value

    def construct_yaml_float(self, node):
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise _Refused(self.paths.get(id(node)), f"{shown(node.value, 24)} is not a finite number", node)
        return value

    def construct_yaml_timestamp(self, node):
        return self.construct_scalar(node)  # a date is data here, not a datetime


_StrictConstructor.add_constructor(_TAG + "int", _StrictConstructor.construct_yaml_int)
_StrictConstructor.add_constructor(_TAG + "float", _StrictConstructor.construct_yaml_float)
_StrictConstructor.add_constructor(_TAG + "timestamp", _StrictConstructor.construct_yaml_timestamp)

try:
    from yaml.cyaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    CParser = None

if CParser is not None:
    class _Loader(CParser, _StrictConstructor, Resolver):
        def __init__(self, stream):
            CParser.__init__(self, stream)
            _StrictConstructor.__init__(self)
            Resolver.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, Composer, _StrictConstructor, Resolver):
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _StrictConstructor.__init__(self)
            Resolver.__init__(self)


def _check_tree(root) -> dict[int, str]:
    """Aliases, key types, duplicate keys, tags and depth, walked without recursion (so an
    alias bomb is refused at its first alias, before anything expands). Returns each node's path."""
    seen: dict[int, str] = {}
    stack = [(root, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if id(node) in seen:
            raise _Refused(path or None, "aliases (*name) are not allowed; write the value out")
        seen[id(node)] = path or None
        if node.tag not in _PLAIN_TAGS:
            raise _Refused(path or None, f"tag {shown(node.tag, 60)} is not allowed (plain data only)", node)
        if isinstance(node, ScalarNode):
            if node.tag in (_TAG + "int", _TAG + "float") and len(node.value) > _MAX_SCALAR_CHARS_FOR_NUMBER:
                raise _Refused(path or None, f"a number of {len(node.value)} characters is out of range", node)
            continue
        if depth >= MAX_DEPTH:
            raise _Refused(path or None, f"is nested deeper than {MAX_DEPTH} levels", node)
        if isinstance(node, SequenceNode):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in reversed(list(enumerate(node.value))))
            continue
        assert isinstance(node, MappingNode)
        keys, children = set(), []
        for key_node, value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _TAG + "str"):
                what = "a merge key (<<)" if key_node.tag == _TAG + "merge" else \
                    f"a key of type {key_node.tag.removeprefix(_TAG)}" if isinstance(key_node, ScalarNode) \
                    else "a list or mapping as a key"
                raise _Refused(path or None, f"keys must be strings, found {what}", key_node)
            if key_node.value in keys:
                raise _Refused(f"{path}.{key_node.value}" if path else key_node.value, "duplicate key", key_node)
            keys.add(key_node.value)
            children.append((value_node, f"{path}.{key_node.value}" if path else key_node.value, depth + 1))
        stack.extend(reversed(children))
    return seen


def loads(text: str, source: object) -> object:
    """Parse one strict YAML document (see the module docstring); errors name `source`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        loader.paths = _check_tree(node)
        return loader.construct_document(node)
    except _Refused as err:
        at = f" (line {err.line})" if err.line else ""
        raise InputError(source, err.field, f"{err.message}{at}") from None
    except yaml.reader.ReaderError as err:
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise InputError(source, None, f"not valid YAML (character U+{code:04X} at offset {err.position} is not "
                                       f"allowed)") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(source, None, f"not valid YAML ({err.problem or err.context}{at})") from None
    except yaml.YAMLError as err:
        raise InputError(source, None, f"not valid YAML ({type(err).__name__})") from None
    except RecursionError:
        raise InputError(source, None, f"not valid YAML (nested deeper than {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()


def load(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> object:
    """Read and parse a YAML file: a regular UTF-8 file of at most `limit` bytes."""
    return loads(read_text(path, what, limit), path)
