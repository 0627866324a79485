"""Which table row an id reads: the id intervals of a table (`bounds`, built on the host) and
their test in the kernels (`resolve`), in one layout for every kernel.

Ids are compared in their own type against intervals clipped to what that type holds, so no
subtraction overflows and no huge id wraps into range.

>>> b = bounds(np.dtype(np.uint8), 250, 4)  # ids 250..253; 246..249 wrap
>>> [resolve(x, 4, limits(b), WRAP) for x in (np.uint8(251), np.uint8(247), np.uint8(3))]
[1, 1, -2]
"""

from __future__ import annotations

import functools

import numpy as np

from ..out_of_range import CLAMP, SKIP, WRAP, ZERO
from .cache import jit

__all__ = ["BAD", "SKIP_ROW", "ZERO_ROW", "bounds", "first_bad", "limits", "resolve"]

ZERO_ROW = -1
"""`resolve`: write a zero row."""
BAD = -2
"""`resolve`: the id has no row; the kernel stops."""
SKIP_ROW = -3
"""`resolve`: leave the output row untouched."""


@functools.lru_cache(maxsize=1024)
def bounds(dtype: np.dtype, offset: int, rows: int) -> np.ndarray:
    """The id intervals `resolve` tests for ids of ``dtype`` on a table of ``rows`` rows whose
    first id is ``offset``, clipped to what ``dtype`` holds (an empty one as ``(1, 0)``):
    ``[lo, hi, wrap_lo, wrap_hi, above_lo, above_hi, row0, wrap_row0]``, where ``row0`` and
    ``wrap_row0`` are the rows ``lo`` and ``wrap_lo`` read.

    An array rather than a tuple: numba dispatches on it in a third of the time.
    """
    info = np.iinfo(dtype)

    def clip(lo: int, hi: int) -> tuple:
        lo, hi = max(lo, info.min), min(hi, info.max)
        return (lo, hi) if lo <= hi else (1, 0)

    lo, hi = clip(offset, offset + rows - 1)
    wrap_lo, wrap_hi = clip(offset - rows, offset - 1)
    above_lo, above_hi = clip(offset + rows, info.max)
    row0 = lo - offset if lo <= hi else 0
    wrap_row0 = wrap_lo - offset + rows if wrap_lo <= wrap_hi else 0
    limits = np.array(
        [lo, hi, wrap_lo, wrap_hi, above_lo, above_hi, row0, wrap_row0],
        np.uint64 if dtype.kind == "u" else np.int64,
    )
    limits.flags.writeable = False
    return limits


@jit(inline="always")
def limits(bounds):
    """`bounds` as the tuple `resolve` takes: an array passed down would be reference-counted
    per id."""
    b = bounds
    return (b[0], b[1], b[2], b[3], b[4], b[5], np.int64(b[6]), np.int64(b[7]))


@jit(inline="always")
def resolve(x, rows, limits, out_of_range):
    """The row id ``x`` reads, or `ZERO_ROW`, `SKIP_ROW` or `BAD`, under ``out_of_range``."""
    lo, hi, wrap_lo, wrap_hi, above_lo, above_hi, row0, wrap_row0 = limits
    if x >= lo and x <= hi:
        return np.int64(x - lo) + row0
    if out_of_range == ZERO:
        return ZERO_ROW
    if out_of_range == SKIP:
        return SKIP_ROW
    if out_of_range == CLAMP and rows > 0:
        return rows - 1 if x >= above_lo and x <= above_hi else 0
    if out_of_range == WRAP and x >= wrap_lo and x <= wrap_hi:
        return np.int64(x - wrap_lo) + wrap_row0
    return BAD


@jit()
def first_bad(ids, rows, limits, out_of_range):
    """The first position whose id is `BAD`, or -1: one cheap pass before any row is written,
    for kernels whose parallel loop has no way to stop."""
    for i in range(ids.size):
        if resolve(ids[i], rows, limits, out_of_range) == BAD:
            return i
    return -1
