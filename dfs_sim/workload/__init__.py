"""Workloads: networks as ordered layer tables, and the built-in DFS ResNets."""
from dfs_sim.workload.network import Layer, Network, load_network, network_from_dict
from dfs_sim.workload.resnet import dfs_resnet

__all__ = ["Layer", "Network", "load_network", "network_from_dict", "dfs_resnet"]
