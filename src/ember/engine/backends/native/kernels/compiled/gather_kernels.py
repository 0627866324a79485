"""The compiled row gather over dense tables, with the bounds check fused into the copy.

Rows move as raw bytes, so one compiled kernel per id dtype serves every element type (float32,
bfloat16, float8, bool, ...): short rows in a few moves, others by the C library's ``memcpy``,
or, when ``stream`` is set, with non-temporal stores, eight rows at once, interleaved, to keep
enough memory streams in flight. Host side: `kernels.gather`.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .cache import jit
from .device import STREAM_GROUP, address, copy_small, fence, memcpy, stream_rows, zero
from .resolve import BAD, SKIP_ROW, ZERO_ROW, limits, resolve

__all__ = ["gather_parallel", "gather_serial"]


@jit()
def _gather_span(table, ids, out, start, stop, bounds, out_of_range, stream):
    """Gather ``ids[start:stop]``; return the first bad position or -1."""
    rows, row_bytes = table.shape
    table_at = address(table)
    out_at = address(out)
    id_limits = limits(bounds)
    dsts = np.empty(STREAM_GROUP, np.int64)
    srcs = np.empty(STREAM_GROUP, np.int64)
    heads = np.empty(STREAM_GROUP, np.int64)
    count = 0
    for i in range(start, stop):
        row = resolve(ids[i], rows, id_limits, out_of_range)
        if row == BAD:
            return i
        if row == SKIP_ROW:
            continue
        dst = out_at + i * row_bytes
        if row == ZERO_ROW:
            zero(dst, row_bytes)
            continue
        if row_bytes < 64:
            copy_small(dst, table_at + row * row_bytes, row_bytes)
            continue
        if not stream:
            memcpy(dst, table_at + row * row_bytes, row_bytes)
            continue
        dsts[count] = dst
        srcs[count] = table_at + row * row_bytes
        count += 1
        if count == STREAM_GROUP:
            stream_rows(dsts, srcs, heads, count, row_bytes)
            count = 0
    stream_rows(dsts, srcs, heads, count, row_bytes)
    return -1


@jit(nogil=True)
def gather_serial(table, ids, out, bounds, out_of_range, stream):
    """One thread: no pool to wake, for lookups too small to repay it."""
    bad = _gather_span(table, ids, out, 0, ids.size, bounds, out_of_range, stream)
    if stream:
        fence()
    return bad


@jit(parallel=True, nogil=True)
def gather_parallel(table, ids, out, bounds, out_of_range, stream, chunks):
    """``chunks`` contiguous spans of ids, one per thread; the first bad position of any wins."""
    n = ids.size
    first_bad = np.empty(chunks, np.int64)
    for c in prange(chunks):
        start = c * n // chunks
        stop = (c + 1) * n // chunks
        first_bad[c] = _gather_span(table, ids, out, start, stop, bounds, out_of_range, stream)
        if stream:
            fence()
    for c in range(chunks):
        if first_bad[c] >= 0:
            return first_bad[c]
    return -1
