"""Special functions numpy lacks, elementwise over 1-D float64 arrays: the C library's `erf`
and `erfc`, as Python's `math.erf` and `math.erfc` call them, so that each gives their bits.

>>> out = np.empty(3)
>>> erf_into(np.array([0.0, 1.0, -np.inf]), out)
>>> out.round(6).tolist()
[0.0, 0.842701, -1.0]
"""

from __future__ import annotations

import math

import numpy as np  # noqa: F401 - used by the doctest

from .cache import jit

__all__ = ["erf_into", "erfc_into"]


@jit()
def erf_into(x, out):
    for i in range(x.size):
        out[i] = math.erf(x[i])


@jit()
def erfc_into(x, out):
    """``1 - erf(x)``, without the cancellation where `erf(x)` is near 1."""
    for i in range(x.size):
        out[i] = math.erfc(x[i])
