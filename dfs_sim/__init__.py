"""dfs-sim: what dynamic-precision inference really costs on bit-serial and precision-scalable accelerators."""
__version__ = "0.1.0"
