"""dfs-sim: what dynamic-precision inference really costs on bit-serial and precision-scalable accelerators.

    import dfs_sim
    trace = dfs_sim.load_trace("traces/paper/dfs_resnet74_cifar10_paper_b30.npz")
    hw = dfs_sim.load_hw("stripes")                  # a shipped name or a YAML path
    result = dfs_sim.simulate(trace, hw, batch=16, policy="bucketed")
    result.summary          # dict: what `dfs-sim run --format json` prints
    result.summary_frame    # the same as a (section, name, value) DataFrame
    result.per_input        # DataFrame: one row per input
    result.per_layer        # DataFrame: one row per layer (per-input means)
"""
__version__ = "0.1.0"

_API = {
    "load_trace": ("dfs_sim.trace", "load_trace"),
    "write_trace": ("dfs_sim.trace", "write_trace"),
    "load_hw": ("dfs_sim.hardware.config", "load_hw"),
    "load_network": ("dfs_sim.workload.network", "load_network"),
    "simulate": ("dfs_sim.engine", "simulate"),
    "simulate_network": ("dfs_sim.engine", "simulate_network"),
    "unit_costs": ("dfs_sim.engine", "unit_costs"),
    "SimResult": ("dfs_sim.engine", "SimResult"),
    "InputError": ("dfs_sim.errors", "InputError"),
}
__all__ = sorted(_API)


def __dir__():
    return sorted(set(globals()) | set(_API))


def __getattr__(name):
    # Imported on first use, so `dfs-sim --help` and the trace reader don't pay for numba and pandas.
    if name in _API:
        import importlib

        module, attribute = _API[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'dfs_sim' has no attribute {name!r}")
