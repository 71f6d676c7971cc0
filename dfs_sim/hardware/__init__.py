"""Hardware: accelerator descriptions (YAML) and one compute model per accelerator style."""
from dfs_sim.hardware.config import HwConfig, load_hw

__all__ = ["HwConfig", "load_hw"]
