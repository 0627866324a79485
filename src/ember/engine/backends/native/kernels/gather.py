"""Row gather over dense tables, with the bounds check fused into the copy.

Rows move as raw bytes (``llvm.memcpy``), so one compiled kernel per id dtype serves every element
type (float32, bfloat16, float8, bool, ...). Outputs larger than ``STREAM_MIN_BYTES`` are written
with 64-byte non-temporal stores: they skip the read-for-ownership of each destination line, which
is a third of the memory traffic of a plain copy.

>>> import numpy as np
>>> table = np.arange(12, dtype=np.float32).reshape(4, 3)
>>> out = np.empty((3, 3), np.float32)
>>> gather_rows(table, np.array([3, 0, 9]), 0, MODE_ZERO, out)
-1
>>> out
array([[ 9., 10., 11.],
       [ 0.,  1.,  2.],
       [ 0.,  0.,  0.]], dtype=float32)
>>> gather_rows(table, np.array([3, 0, 9]), 0, MODE_ERROR, out)
2
"""

from __future__ import annotations

import functools
import platform

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import config, get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .modes import MODE_CLAMP, MODE_ERROR, MODE_WRAP, MODE_ZERO

__all__ = ["PARALLEL_MIN_BYTES", "STREAM_MIN_BYTES", "gather_rows"]

PARALLEL_MIN_BYTES = 256 * 1024
"""Output size above which two threads beat one, counting the pool's wake-up after idling."""

STREAM_MIN_BYTES = 8 * 1024 * 1024
"""Output size above which non-temporal stores beat plain ones (measured)."""

_STREAM_MIN_ROW_BYTES = 256
"""Shorter rows spend too much on their unaligned head and tail to gain from streaming."""

_HAVE_STREAM = platform.machine().lower() in ("x86_64", "amd64")
"""Streaming stores, and the ``sfence`` that orders them, are used on x86-64 only."""


def _vector_lanes() -> int:
    """Lanes of i64 per store that the target compiles to one instruction (AVX-512, AVX, SSE2)."""
    if config.CPU_FEATURES is not None:
        features = config.CPU_FEATURES
    elif config.CPU_NAME not in (None, "host"):
        return 2
    else:
        features = llvm_binding.get_host_cpu_features().flatten()
    if "+avx512f" in features:
        return 8
    return 4 if "+avx" in features else 2


_LANES = _vector_lanes()
_I8P = ir.IntType(8).as_pointer()
_I64 = ir.IntType(64)


@intrinsic
def _address(typingctx, array):
    """The address of an array's first byte, for byte arithmetic across rows."""

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, _I64)

    return types.int64(array), codegen


@intrinsic
def _copy(typingctx, dst, src, nbytes):
    """``memcpy`` between two byte addresses."""

    def codegen(context, builder, sig, args):
        dst, src, nbytes = args
        cgutils.raw_memcpy(
            builder, builder.inttoptr(dst, _I8P), builder.inttoptr(src, _I8P), nbytes, 1
        )
        return context.get_dummy_value()

    return types.void(types.int64, types.int64, types.int64), codegen


@intrinsic
def _zero(typingctx, dst, nbytes):
    """``memset(dst, 0, nbytes)``."""

    def codegen(context, builder, sig, args):
        dst, nbytes = args
        cgutils.memset(builder, builder.inttoptr(dst, _I8P), nbytes, 0)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


@intrinsic
def _stream64(typingctx, dst, src):
    """Copy 64 bytes to a 64-byte aligned ``dst`` with non-temporal stores, bypassing the cache."""

    def codegen(context, builder, sig, args):
        dst, src = args
        vec = ir.VectorType(_I64, _LANES)
        nontemporal = builder.module.add_metadata([ir.IntType(32)(1)])
        for part in range(8 // _LANES):
            step = ir.Constant(_I64, part * _LANES * 8)
            value = builder.load(
                builder.inttoptr(builder.add(src, step), vec.as_pointer()), align=1
            )
            store = builder.store(
                value, builder.inttoptr(builder.add(dst, step), vec.as_pointer()), align=_LANES * 8
            )
            store.set_metadata("nontemporal", nontemporal)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


@intrinsic
def _fence(typingctx):
    """``sfence``: makes the weakly ordered non-temporal stores visible before later stores.

    LLVM lowers its own ``fence`` to ``lock or`` on x86-64, which the ISA does not document as
    ordering non-temporal stores; elsewhere streaming is off and a plain fence stands in.
    """

    def codegen(context, builder, sig, args):
        if _HAVE_STREAM:
            sfence = ir.FunctionType(ir.VoidType(), [])
            builder.call(
                cgutils.get_or_insert_function(builder.module, sfence, "llvm.x86.sse.sfence"), []
            )
        else:
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True)
def _copy_row(dst, src, nbytes, stream):
    """Copy one row; streamed rows copy their unaligned head and tail with plain stores."""
    if not stream:
        _copy(dst, src, nbytes)
        return
    head = min((-dst) & 63, nbytes)
    _copy(dst, src, head)
    end = head + ((nbytes - head) & -64)
    for k in range(head, end, 64):
        _stream64(dst + k, src + k)
    _copy(dst + end, src + end, nbytes - end)


@njit(cache=True)
def _gather_span(table, ids, out, start, stop, bounds, mode, stream):
    """Gather ``ids[start:stop]``; return the first bad position or -1.

    ``bounds`` holds three inclusive id intervals (empty when lo > hi) in the id's own domain,
    so no subtraction can overflow: in range, wrapping, and above the table (for clamping),
    then the rows the first two start at.
    """
    lo, hi, wrap_lo, wrap_hi, above_lo, above_hi, row0, wrap_row0 = bounds
    rows, row_bytes = table.shape
    table_at = _address(table)
    out_at = _address(out)
    for i in range(start, stop):
        x = ids[i]
        dst = out_at + i * row_bytes
        if x >= lo and x <= hi:
            row = np.int64(x - lo) + row0
        elif mode == MODE_ZERO:
            _zero(dst, row_bytes)
            continue
        elif mode == MODE_CLAMP:
            row = rows - 1 if x >= above_lo and x <= above_hi else 0
        elif mode == MODE_WRAP and x >= wrap_lo and x <= wrap_hi:
            row = np.int64(x - wrap_lo) + wrap_row0
        else:
            return i
        _copy_row(dst, table_at + row * row_bytes, row_bytes, stream)
    return -1


@njit(cache=True)
def _gather_serial(table, ids, out, bounds, mode, stream):
    bad = _gather_span(table, ids, out, 0, ids.size, bounds, mode, stream)
    if stream:
        _fence()
    return bad


@njit(cache=True, parallel=True)
def _gather_parallel(table, ids, out, bounds, mode, stream, chunks):
    n = ids.size
    first_bad = np.empty(chunks, np.int64)
    for c in prange(chunks):
        start = c * n // chunks
        stop = (c + 1) * n // chunks
        first_bad[c] = _gather_span(table, ids, out, start, stop, bounds, mode, stream)
        if stream:
            _fence()
    for c in range(chunks):
        if first_bad[c] >= 0:
            return first_bad[c]
    return -1


@functools.lru_cache(maxsize=1024)
def _bounds(dtype: np.dtype, offset: int, rows: int) -> tuple:
    """The id intervals ``_gather_span`` tests, clipped to what ``dtype`` can hold."""
    info = np.iinfo(dtype)
    wide = np.uint64 if dtype.kind == "u" else np.int64

    def clip(lo: int, hi: int) -> tuple:
        lo, hi = max(lo, info.min), min(hi, info.max)
        return (wide(lo), wide(hi), lo) if lo <= hi else (wide(1), wide(0), None)

    lo, hi, first = clip(offset, offset + rows - 1)
    wrap_lo, wrap_hi, wrap_first = clip(offset - rows, offset - 1)
    above_lo, above_hi, _ = clip(offset + rows, info.max)
    row0 = 0 if first is None else first - offset
    wrap_row0 = 0 if wrap_first is None else wrap_first - offset + rows
    return (lo, hi, wrap_lo, wrap_hi, above_lo, above_hi, np.int64(row0), np.int64(wrap_row0))


def gather_rows(
    table: np.ndarray,
    ids: np.ndarray,
    offset: int,
    mode: int,
    out: np.ndarray,
    parallel: bool = False,
) -> int:
    """Copy ``table[ids[i] - offset]`` into ``out[i]``; return the first bad position or -1.

    An id whose row falls outside ``[0, rows)`` is handled by ``mode``: ``MODE_ERROR`` stops and
    returns its position (``out`` is then partly written), ``MODE_ZERO`` writes a zero row,
    ``MODE_CLAMP`` copies the nearest end row, ``MODE_WRAP`` maps rows in ``[-rows, -1]`` to
    ``row + rows`` and stops at any other. ``parallel`` splits the ids over numba's threads; it
    pays for waking them only above ``PARALLEL_MIN_BYTES`` of output.

    Raises:
        TypeError: ``ids`` is not integer, or ``out`` has another dtype than ``table``.
        ValueError: shapes or layouts do not fit, or ``mode`` is unknown.
    """
    if table.ndim != 2 or not table.flags.c_contiguous:
        raise ValueError(f"table must be a C-contiguous 2-D array, got shape {table.shape}")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be a 1-D integer array, got {ids.ndim}-D {ids.dtype}")
    if out.dtype != table.dtype:
        raise TypeError(f"out has dtype {out.dtype}, table has {table.dtype}")
    if out.shape != (ids.size, table.shape[1]) or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be C-contiguous of shape {(ids.size, table.shape[1])}, got {out.shape}"
        )
    if mode not in (MODE_ERROR, MODE_ZERO, MODE_CLAMP, MODE_WRAP):
        raise ValueError(f"unknown out-of-range mode {mode}")
    rows = table.shape[0]
    if mode == MODE_CLAMP and rows == 0:
        mode = MODE_ERROR
    if ids.size == 0:
        return -1
    if not (ids.flags.c_contiguous and ids.dtype.isnative):
        ids = np.ascontiguousarray(ids, ids.dtype.newbyteorder("="))
    # Raw bytes: one compiled kernel per id dtype serves every element type.
    table = table.view(np.uint8)
    stream = (
        _HAVE_STREAM and out.nbytes >= STREAM_MIN_BYTES and table.shape[1] >= _STREAM_MIN_ROW_BYTES
    )
    args = (table, ids, out.view(np.uint8), _bounds(ids.dtype, int(offset), rows), mode, stream)
    if parallel:
        # get_num_threads() inside the kernel would keep numba from caching it.
        return int(_gather_parallel(*args, min(ids.size, 4 * get_num_threads())))
    return int(_gather_serial(*args))
