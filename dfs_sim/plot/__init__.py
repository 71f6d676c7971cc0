"""Figures: energy/accuracy frontiers, decision shares, latency CDFs, energy breakdowns (matplotlib)."""
