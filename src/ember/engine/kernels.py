"""Waiting for the native kernels that loads compile in the background (see the README: until
a kernel is ready, its lookups run through numpy, with the same results). For timing a model,
or for a program that wants every lookup compiled before it starts serving."""

from __future__ import annotations

__all__ = ["wait_for_kernels"]


def wait_for_kernels(timeout: float | None = None) -> bool:
    """Wait up to ``timeout`` seconds (None: as long as it takes) until every kernel that a
    `load` or a lookup has asked for is compiled; whether they all are."""
    from .backends.native.kernels import background

    return background.wait(timeout)
