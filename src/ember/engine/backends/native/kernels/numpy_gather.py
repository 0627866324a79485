"""`gather_rows` in plain numpy: the same contract and results, with nothing to compile.

It serves lookups while the compiled kernels are still compiling (seconds, on a first run),
so a first `execute` never waits for a compiler.

>>> table = np.arange(12, dtype=np.float32).reshape(4, 3)
>>> out = np.empty((3, 3), np.float32)
>>> numpy_gather_rows(table, np.array([3, 0, 9]), 0, ZERO, out)
-1
>>> out
array([[ 9., 10., 11.],
       [ 0.,  1.,  2.],
       [ 0.,  0.,  0.]], dtype=float32)
>>> numpy_gather_rows(table, np.array([3, -1, 9]), 0, WRAP, out)
2
"""

from __future__ import annotations

import numpy as np

from .id_range import first_outside, within
from .out_of_range import CLAMP, CODES, ERROR, WRAP, ZERO

__all__ = ["numpy_gather_rows"]


def numpy_gather_rows(
    table: np.ndarray, ids: np.ndarray, offset: int, out_of_range: int, out: np.ndarray
) -> int:
    """Copy ``table[ids[i] - offset]`` into ``out[i]``; return the first bad position or -1.

    ``out_of_range`` as in `gather_rows`; with ``ERROR`` or ``WRAP`` and a bad id nothing is
    written. Ids are compared in their own type, so no id wraps into range.
    """
    if out_of_range not in CODES:
        raise ValueError(f"unknown out-of-range mode {out_of_range}")
    rows = table.shape[0]
    if out_of_range == CLAMP and rows == 0:
        out_of_range = ERROR
    if out_of_range in (ERROR, WRAP):
        low = offset - rows if out_of_range == WRAP else offset
        bad = first_outside(ids, low, offset + rows - 1)
        if bad >= 0:
            return bad
    inside = within(ids, offset, offset + rows - 1)
    source = np.zeros(ids.shape, np.int64)
    source[inside] = _rows(ids[inside], offset)
    outside = ~inside
    if out_of_range == WRAP:
        source[outside] = _rows(ids[outside], offset - rows)
        outside[:] = False
    if out_of_range == CLAMP:
        source[outside & (ids > offset)] = rows - 1  # below the table: row 0, as set
        outside[:] = False
    if not outside.any():
        np.take(table, source, axis=0, out=out)
        return -1
    kept = ~outside
    out[kept] = table[source[kept]]
    if out_of_range == ZERO:
        out[outside] = 0
    return -1


def _rows(ids: np.ndarray, row0_id: int) -> np.ndarray:
    """``ids - row0_id`` as int64 rows, for ids known to give rows in [0, rows), without
    overflow: the difference is taken in 64 bits of the ids' signedness from the smallest id
    the dtype holds (``row0_id`` itself may lie outside it)."""
    if ids.size == 0:
        return np.zeros(0, np.int64)
    wide = np.uint64 if ids.dtype.kind == "u" else np.int64
    start = max(row0_id, int(np.iinfo(ids.dtype).min))
    return (ids.astype(wide) - wide(start)).astype(np.int64) + (start - row0_id)
