"""Backends: each lowers graph ops to kernels on its devices."""
