"""Numba kernels of the native CPU backend: plain functions over numpy arrays."""
