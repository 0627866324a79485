"""The devices JAX sees: host CPUs, and accelerators (GPUs or TPUs) when a plugin is installed."""

from __future__ import annotations

import functools

import jax

__all__ = ["accelerators", "host_devices"]


@functools.cache
def host_devices() -> list[jax.Device]:
    return jax.devices("cpu")


@functools.cache
def accelerators() -> list[jax.Device]:
    """JAX's default devices when they are not CPUs, else none."""
    devices = jax.devices()
    return [] if devices[0].platform == "cpu" else devices
