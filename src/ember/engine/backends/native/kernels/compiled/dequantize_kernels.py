"""The compiled gather + dequantize of block-quantized tables, one format's kernels at a time.

The table stays as GGUF stores it, uint8 ``(rows, row_bytes)``. Each id's row is decoded by its
format's row decoder (`decoders`) straight into the output, or into an L1-sized float32 buffer
that is rounded to bfloat16/float16 and, when ``stream`` is set, streamed to memory with
non-temporal stores. Host side: `kernels.dequantize_gather`.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange
from numba.core.dispatcher import Dispatcher

from .cache import jit
from .decoders import decode_row
from .device import fence, prefetch, stream_row
from .narrow import to_bf16, to_f16
from .resolve import SKIP_ROW, first_bad, limits, resolve

__all__ = ["BF16", "F16", "F32", "kernels"]

F32, BF16, F16 = 0, 1, 2
"""Output kinds, the kernels' ``kind`` argument (the narrow kernels write BF16 or F16)."""


@jit(inline="always")
def _prefetch_row(table, r):
    """Start loading row ``r`` (if it is one) while the current row is decoded and written: the
    random row reads then overlap the streaming of the output."""
    if r >= 0:
        address = table.ctypes.data + r * table.shape[1]
        for k in range(0, table.shape[1], 64):
            prefetch(address + k)


@jit(inline="always")
def _span_f32(fmt, table, ids, id_limits, out_of_range, out, f16, stream, start, stop):
    """Rows ``start:stop`` into float32 ``out``: decoded in place, or into an L1-resident
    buffer that is then streamed out."""
    hidden = out.shape[1]
    nbytes = hidden * 4
    base = out.ctypes.data
    rows = table.shape[0]
    buf = np.empty(hidden if stream else 0, np.float32)
    for i in range(start, stop):
        r = resolve(ids[i], rows, id_limits, out_of_range)
        if i + 1 < stop:
            _prefetch_row(table, resolve(ids[i + 1], rows, id_limits, out_of_range))
        if r == SKIP_ROW:
            continue
        if r < 0:
            out[i, :] = 0
        elif stream:
            decode_row(fmt, table[r], buf, f16)
            stream_row(base + i * nbytes, buf.ctypes.data, nbytes)
        else:
            decode_row(fmt, table[r], out[i], f16)
    if stream:
        fence()


@jit(inline="always")
def _span_narrow(fmt, table, ids, id_limits, out_of_range, out, f16, kind, stream, start, stop):
    """Rows ``start:stop`` into bfloat16/float16 ``out`` (seen as uint16), through a float32
    buffer."""
    hidden = out.shape[1]
    nbytes = hidden * 2
    base = out.ctypes.data
    rows = table.shape[0]
    buf = np.empty(hidden, np.float32)
    half = np.empty(hidden if stream else 0, np.uint16)
    for i in range(start, stop):
        r = resolve(ids[i], rows, id_limits, out_of_range)
        if i + 1 < stop:
            _prefetch_row(table, resolve(ids[i + 1], rows, id_limits, out_of_range))
        if r == SKIP_ROW:
            continue
        if r < 0:
            out[i, :] = 0
            continue
        decode_row(fmt, table[r], buf, f16)
        dst = half if stream else out[i]
        if kind == BF16:
            to_bf16(buf, dst)
        else:
            to_f16(buf, dst)
        if stream:
            stream_row(base + i * nbytes, half.ctypes.data, nbytes)
    if stream:
        fence()


@functools.cache
def kernels(fmt: str) -> dict[tuple[bool, bool], Dispatcher]:
    """Format ``fmt``'s entry kernels, by (float32 output, parallel):
    ``kernel(table, ids, bounds, out_of_range, out, f16, kind, stream, chunks)`` returns -1, or
    the first bad position (then nothing is written).

    ``fmt`` is a constant of these closures, so each compiles its own format's row decoder
    alone (seconds less on a cold cache); numba caches a closure per value of ``fmt``. Each
    kernel compiles on its first call only.
    """

    @jit(nogil=True)
    def gather_f32(table, ids, bounds, out_of_range, out, f16, kind, stream, chunks):
        id_limits = limits(bounds)
        bad = first_bad(ids, table.shape[0], id_limits, out_of_range)
        if bad < 0:
            _span_f32(fmt, table, ids, id_limits, out_of_range, out, f16, stream, 0, ids.size)
        return bad

    @jit(nogil=True)
    def gather_narrow(table, ids, bounds, out_of_range, out, f16, kind, stream, chunks):
        id_limits = limits(bounds)
        bad = first_bad(ids, table.shape[0], id_limits, out_of_range)
        if bad < 0:
            _span_narrow(
                fmt, table, ids, id_limits, out_of_range, out, f16, kind, stream, 0, ids.size
            )
        return bad

    @jit(parallel=True, nogil=True)
    def gather_f32_parallel(table, ids, bounds, out_of_range, out, f16, kind, stream, chunks):
        id_limits = limits(bounds)
        bad = first_bad(ids, table.shape[0], id_limits, out_of_range)
        if bad >= 0:
            return bad
        n = ids.size
        for c in prange(chunks):
            start, stop = c * n // chunks, (c + 1) * n // chunks
            _span_f32(fmt, table, ids, id_limits, out_of_range, out, f16, stream, start, stop)
        return -1

    @jit(parallel=True, nogil=True)
    def gather_narrow_parallel(table, ids, bounds, out_of_range, out, f16, kind, stream, chunks):
        id_limits = limits(bounds)
        bad = first_bad(ids, table.shape[0], id_limits, out_of_range)
        if bad >= 0:
            return bad
        n = ids.size
        for c in prange(chunks):
            start, stop = c * n // chunks, (c + 1) * n // chunks
            _span_narrow(
                fmt, table, ids, id_limits, out_of_range, out, f16, kind, stream, start, stop
            )
        return -1

    return {
        (True, False): gather_f32,
        (True, True): gather_f32_parallel,
        (False, False): gather_narrow,
        (False, True): gather_narrow_parallel,
    }
