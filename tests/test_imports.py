"""Imports point one way. Each module belongs to a layer and imports only from its own layer or lower ones, and
no chain of imports, at module level or inside a function, leads back to where it started."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dfs_sim"

# Lowest first. A module's layer is that of the longest prefix listed; a new module must be placed here.
LAYERS = (
    ("base", ("dfs_sim", "dfs_sim.errors", "dfs_sim.limits", "dfs_sim.atomic", "dfs_sim.jsonio", "dfs_sim.yamlio",
              "dfs_sim.resources", "dfs_sim.output", "dfs_sim.hashing")),
    ("workload", ("dfs_sim.workload",)),
    ("hardware", ("dfs_sim.hardware",)),
    ("trace", ("dfs_sim.trace", "dfs_sim.shipped_traces", "dfs_sim.reference")),
    ("cost", ("dfs_sim.cost",)),
    ("report", ("dfs_sim.report",)),  # renders a result; the engine attaches its summary and frames
    ("engine", ("dfs_sim.engine",)),
    ("analyses", ("dfs_sim.plot", "dfs_sim.regress", "dfs_sim.validation", "dfs_sim.sweep", "dfs_sim.sweep_plot")),
    ("model", ("dfs_sim.model",)),  # trains, records and emits traces; the only place torch is imported
    ("cli", ("dfs_sim.cli",)),
)


# Cycles not yet broken, each with why; the test fails once one is gone, so that its entry goes too.
KNOWN_CYCLES: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank)
    assert best is not None and (best[0] > len("dfs_sim") or module == "dfs_sim"), \
        f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}"
    return best[1]


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(dfs_sim modules it imports, top-level names of every other package it imports), wherever the import
    statement stands."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            # `from dfs_sim import jsonio` imports the module dfs_sim.jsonio; `from dfs_sim import x` otherwise
            # imports the package.
            names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                     for alias in node.names]
        else:
            continue
        for name in names:
            if name == "dfs_sim" or name.startswith("dfs_sim."):
                while name not in MODULES:  # `import dfs_sim.cost.table as t` names a module; strip attributes
                    name = name.rpartition(".")[0]
                if name != module:
                    inside.add(name)
            else:
                outside.add(name.partition(".")[0])
    return inside, outside


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer_and_imports_none_above_it():
    upward = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
              for module, (inside, _) in GRAPH.items() for target in sorted(inside)
              if layer_of(target) > layer_of(module)]
    assert upward == []


def test_no_import_cycles():
    edges = {module: inside for module, (inside, _) in GRAPH.items()}
    cycles, state, stack = [], {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert sorted(cycles) == sorted(KNOWN_CYCLES)


def test_only_the_model_package_imports_torch():
    offenders = [module for module, (_, outside) in GRAPH.items()
                 if "torch" in outside and not (module == "dfs_sim.model" or module.startswith("dfs_sim.model."))]
    assert offenders == []
    assert any("torch" in outside for _, outside in GRAPH.values())  # the scan sees torch where it is imported


def test_the_scan_sees_imports_inside_functions():
    # dfs_sim.cli imports its model subcommands inside a function; a scan of module level alone would miss it
    # and every lazy upward import with it.
    assert "dfs_sim.model.commands" in GRAPH["dfs_sim.cli"][0]
    assert layer_of("dfs_sim.cost.table") < layer_of("dfs_sim.engine") < layer_of("dfs_sim.cli")
