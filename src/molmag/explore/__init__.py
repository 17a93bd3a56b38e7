"""Exploration of conformational space: PSO, 2D scans, magneto-structural correlations."""
