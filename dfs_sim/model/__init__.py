"""The DFS model in PyTorch: gated ResNet, three-stage training and trace emission.

This package is the only part of dfs-sim that imports torch. Importing `dfs_sim.model` (or
`dfs_sim.model.commands`) does not: torch is imported by the submodules that need it, so the
simulator works without the `model` extra installed.
"""
