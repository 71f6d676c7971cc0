"""Compute models, one file each. To add an accelerator: write a ComputeModel subclass in its
own module, register it here, and describe an instance in hw_configs/<name>.yaml."""
from dfs_sim.hardware.accelerators.base import ComputeModel
from dfs_sim.hardware.accelerators.bitfusion import BitFusion
from dfs_sim.hardware.accelerators.bitsystolic import BitSystolic
from dfs_sim.hardware.accelerators.loom import Loom
from dfs_sim.hardware.accelerators.unpu import UNPU
from dfs_sim.hardware.accelerators.bit_parallel import BitParallel
from dfs_sim.hardware.accelerators.stripes import Stripes

MODELS: dict[str, ComputeModel] = {model.name: model for model in (BitParallel(), Stripes(), BitFusion(), Loom(), UNPU(), BitSystolic())}

__all__ = ["MODELS", "ComputeModel"]
