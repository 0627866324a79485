"""Waiting for the native kernels that loads compile in the background (see the README: until
a kernel is ready, its lookups run through numpy, with the same results), and for the large
weights they move into huge pages. For timing a model, or for a program that wants every
lookup at full speed before it starts serving."""

from __future__ import annotations

__all__ = ["wait_for_kernels"]


def wait_for_kernels(timeout: float | None = None) -> bool:
    """Wait up to ``timeout`` seconds (None: as long as it takes) until every kernel that a
    `load` or a lookup has asked for is compiled, and every large weight a load advised is in
    huge pages (`ember.engine.backends.native.huge_pages`); whether all of it is done."""
    import time

    from .backends.native import huge_pages
    from .backends.native.kernels import background

    deadline = None if timeout is None else time.monotonic() + timeout
    compiled = background.wait(timeout)
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    return huge_pages.wait(left) and compiled
