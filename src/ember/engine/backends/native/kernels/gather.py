"""Row gather over dense tables, with the bounds check fused into the copy.

Rows move as raw bytes, so one compiled kernel per id dtype serves every element type (float32,
bfloat16, float8, bool, ...), each row by the C library's ``memcpy``. Outputs of
``STREAM_MIN_BYTES`` or more are written with 64-byte non-temporal stores instead, eight rows at
once, interleaved, to keep enough memory streams in flight: they skip reading each destination
line before writing it, a third of the traffic of a plain copy, and do not evict the cache for
an output that would not fit in it anyway.

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
import math
import platform

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import config, get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .entry import compiled_entry
from .inputs import as_kernel_input
from .launch import PARALLEL_LAUNCH, launch
from .modes import MODE_CLAMP, MODE_ERROR, MODE_SKIP, MODE_WRAP, MODE_ZERO

__all__ = [
    "PARALLEL_MIN_BYTES",
    "STREAM_MIN_BYTES",
    "gather_rows",
    "parallel_gather_call",
    "serial_gather_call",
]

PARALLEL_MIN_BYTES = 512 * 1024
"""Output size from which ``parallel=True`` is suggested (a caller's choice, not applied here).

Measured on two cores with 8-16 KiB rows: with numba's pool just used, two threads win from
about 128 KiB (64 rows of 8 KiB: 16 us against 24 us on one thread); when it has idled for a
millisecond, waking it costs tens of microseconds and two threads win from 0.5-1 MiB. After
longer idling the wake-up can cost far more on a loaded machine.
"""

STREAM_MIN_BYTES = 2 * 1024 * 1024
"""Output size from which rows are written with non-temporal stores.

The kernel alone gains from them above about 256 KiB (to 20 GB/s against 16 with plain stores at
2 MiB); below a core's L2 (2 MiB) plain stores are kept, as they leave the output in the cache for
whatever reads it next.
"""

_STREAM_MIN_ROW_BYTES = 512
"""Shorter rows lose with streaming (measured): their unaligned head and tail are a large part."""

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


def _move_int(nbytes: int):
    """An intrinsic copying one unaligned ``nbytes``-byte integer between two addresses."""

    @intrinsic
    def move(typingctx, dst, src):
        def codegen(context, builder, sig, args):
            dst, src = args
            pointer = ir.IntType(8 * nbytes).as_pointer()
            value = builder.load(builder.inttoptr(src, pointer), align=1)
            builder.store(value, builder.inttoptr(dst, pointer), align=1)
            return context.get_dummy_value()

        return types.void(types.int64, types.int64), codegen

    return move


_move8, _move4, _move2, _move1 = (_move_int(n) for n in (8, 4, 2, 1))


@njit(inline="always")
def _copy_small(dst, src, nbytes):
    """Copy fewer than 64 bytes in at most ten moves: a ``memcpy`` call costs more per row."""
    end = nbytes & -8
    for k in range(0, end, 8):
        _move8(dst + k, src + k)
    if nbytes & 4:
        _move4(dst + end, src + end)
        end += 4
    if nbytes & 2:
        _move2(dst + end, src + end)
        end += 2
    if nbytes & 1:
        _move1(dst + end, src + end)


@intrinsic
def _memcpy(typingctx, dst, src, nbytes):
    """``memcpy`` between two addresses: the C library's copy beats eight interleaved rows of
    plain 64-byte moves by 8-25 % on outputs that stay in the cache (measured, 8-16 KiB rows)."""

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
    """Copy 64 bytes with non-temporal stores: they bypass the cache and skip reading the
    destination line first, and need a 64-byte aligned ``dst``. One AVX-512 store, or split."""

    def codegen(context, builder, sig, args):
        dst, src = args
        vec = ir.VectorType(_I64, _LANES).as_pointer()
        for part in range(8 // _LANES):
            step = ir.Constant(_I64, part * _LANES * 8)
            value = builder.load(builder.inttoptr(builder.add(src, step), vec), align=1)
            target = builder.inttoptr(builder.add(dst, step), vec)
            store = builder.store(value, target, align=_LANES * 8)
            store.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
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


_GROUP = 8
"""Rows streamed together. One 16 KiB row at a time reaches 14-16 GB/s against a 20-21 GB/s
copy on two cores; eight interleaved rows keep more streams in flight and reach 17-20 GB/s."""

_BLOCK = 512
"""Bytes of one row copied before moving to the next row of the group."""


@njit(inline="always")
def _stream_rows(dsts, srcs, heads, count, nbytes):
    """Stream ``count`` rows of ``nbytes`` from ``srcs`` to ``dsts``, interleaved in blocks.

    Rows move in 64-byte units; each row first copies its head up to a 64-byte aligned
    destination in smaller moves (``heads`` is scratch space for where its units start), and
    its last partial unit that way too.
    """
    for r in range(count):
        heads[r] = min((-dsts[r]) & 63, nbytes)
        _copy_small(dsts[r], srcs[r], heads[r])
    for block in range(0, nbytes, _BLOCK):
        for r in range(count):
            dst, src = dsts[r] + heads[r], srcs[r] + heads[r]
            stop = min(block + _BLOCK, (nbytes - heads[r]) & -64)
            for k in range(block, stop, 64):
                _stream64(dst + k, src + k)
    for r in range(count):
        end = heads[r] + ((nbytes - heads[r]) & -64)
        _copy_small(dsts[r] + end, srcs[r] + end, nbytes - end)


_ZERO = -1
_BAD = -2
_SKIP = -3


@njit(inline="always")
def _resolve(x, rows, limits, mode):
    """The row id ``x`` reads, or ``_ZERO`` or ``_BAD``; ``limits`` unpacks ``_bounds``.

    A tuple rather than the array itself: an array passed down is reference-counted per id.
    """
    lo, hi, wrap_lo, wrap_hi, above_lo, above_hi, row0, wrap_row0 = limits
    if x >= lo and x <= hi:
        return np.int64(x - lo) + row0
    if mode == MODE_ZERO:
        return _ZERO
    if mode == MODE_SKIP:
        return _SKIP
    if mode == MODE_CLAMP:
        return rows - 1 if x >= above_lo and x <= above_hi else 0
    if mode == MODE_WRAP and x >= wrap_lo and x <= wrap_hi:
        return np.int64(x - wrap_lo) + wrap_row0
    return _BAD


@njit(cache=True)
def _gather_span(table, ids, out, start, stop, bounds, mode, stream):
    """Gather ``ids[start:stop]``; return the first bad position or -1."""
    rows, row_bytes = table.shape
    table_at = _address(table)
    out_at = _address(out)
    b = bounds
    limits = (b[0], b[1], b[2], b[3], b[4], b[5], np.int64(b[6]), np.int64(b[7]))
    dsts = np.empty(_GROUP, np.int64)
    srcs = np.empty(_GROUP, np.int64)
    heads = np.empty(_GROUP, np.int64)
    count = 0
    for i in range(start, stop):
        row = _resolve(ids[i], rows, limits, mode)
        if row == _BAD:
            return i
        if row == _SKIP:
            continue
        dst = out_at + i * row_bytes
        if row == _ZERO:
            _zero(dst, row_bytes)
            continue
        if row_bytes < 64:
            _copy_small(dst, table_at + row * row_bytes, row_bytes)
            continue
        if not stream:
            _memcpy(dst, table_at + row * row_bytes, row_bytes)
            continue
        dsts[count] = dst
        srcs[count] = table_at + row * row_bytes
        count += 1
        if count == _GROUP:
            _stream_rows(dsts, srcs, heads, count, row_bytes)
            count = 0
    _stream_rows(dsts, srcs, heads, count, row_bytes)
    return -1


@njit(cache=True, nogil=True)
def _gather_serial(table, ids, out, bounds, mode, stream):
    """One thread: no pool to wake, for lookups too small to repay it."""
    bad = _gather_span(table, ids, out, 0, ids.size, bounds, mode, stream)
    if stream:
        _fence()
    return bad


@njit(cache=True, parallel=True, nogil=True)
def _gather_parallel(table, ids, out, bounds, mode, stream, chunks):
    """``chunks`` contiguous spans of ids, one per thread; the first bad position of any wins."""
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
def _bounds(dtype: np.dtype, offset: int, rows: int) -> np.ndarray:
    """The id intervals ``_gather_span`` tests, clipped to what ``dtype`` can hold.

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
    bounds = np.array(
        [lo, hi, wrap_lo, wrap_hi, above_lo, above_hi, row0, wrap_row0],
        np.uint64 if dtype.kind == "u" else np.int64,
    )
    bounds.flags.writeable = False
    return bounds


def serial_gather_call(table: np.ndarray, ids_dtype: np.dtype, mode: int):
    """``call(ids, out)``: what `gather_rows(table, ids, 0, mode, out)` does, without its
    checks, for callers that have made sure of them: a C-contiguous ``table``, writeable
    C-contiguous 1-D ``ids`` of ``ids_dtype`` (native byte order), a writeable C-contiguous
    ``out`` of ``table``'s row bytes viewed as uint8, too small to stream."""
    table, bounds, mode, sample = _direct_args(table, ids_dtype, mode)
    kernel = compiled_entry(_gather_serial, (table, *sample, bounds, mode, False))

    def call(ids: np.ndarray, out: np.ndarray) -> int:
        return kernel(table, ids, out, bounds, mode, False)

    return call


def parallel_gather_call(table: np.ndarray, ids_dtype: np.dtype, mode: int):
    """``call(ids, out, threads)``: what `gather_rows(table, ids, 0, mode, out, True)` does
    on ``threads`` threads, without its checks (the caller's part as for
    `serial_gather_call`, at any output size)."""
    table, bounds, mode, sample = _direct_args(table, ids_dtype, mode)
    with PARALLEL_LAUNCH:
        kernel = compiled_entry(_gather_parallel, (table, *sample, bounds, mode, False, 1))
    serial = compiled_entry(_gather_serial, (table, *sample, bounds, mode, False))
    wide = _HAVE_STREAM and table.shape[1] >= _STREAM_MIN_ROW_BYTES

    def call(ids: np.ndarray, out: np.ndarray, threads: int) -> int:
        stream = wide and out.nbytes >= STREAM_MIN_BYTES
        return launch(
            lambda: kernel(table, ids, out, bounds, mode, stream, min(ids.size, threads)),
            lambda: serial(table, ids, out, bounds, mode, stream),
        )

    return call


def _direct_args(table: np.ndarray, ids_dtype: np.dtype, mode: int) -> tuple:
    """The fixed arguments of a direct kernel call (the table as uint8 rows, its bounds, the
    mode) and sample ids and output of the types the call will pass."""
    rows = table.shape[0]
    if mode == MODE_CLAMP and rows == 0:
        mode = MODE_ERROR
    table = np.ascontiguousarray(table)
    table = as_kernel_input(table.reshape(rows, math.prod(table.shape[1:])).view(np.uint8))
    sample = (np.zeros(0, ids_dtype), np.zeros((0, table.shape[1]), np.uint8))
    return table, _bounds(np.dtype(ids_dtype), 0, rows), mode, sample


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
    ``row + rows`` and stops at any other, ``MODE_SKIP`` leaves the output row as it was.
    ``parallel`` splits the ids over numba's threads; it pays for waking them from about
    ``PARALLEL_MIN_BYTES`` of output.

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
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if mode not in (MODE_ERROR, MODE_ZERO, MODE_CLAMP, MODE_WRAP, MODE_SKIP):
        raise ValueError(f"unknown out-of-range mode {mode}")
    rows = table.shape[0]
    if mode == MODE_CLAMP and rows == 0:
        mode = MODE_ERROR
    if ids.size == 0:
        return -1
    if not (ids.flags.c_contiguous and ids.dtype.isnative):
        ids = np.ascontiguousarray(ids, ids.dtype.newbyteorder("="))
    ids = as_kernel_input(ids)
    # Raw bytes: one compiled kernel per id dtype serves every element type.
    table = as_kernel_input(table.view(np.uint8))
    stream = (
        _HAVE_STREAM and out.nbytes >= STREAM_MIN_BYTES and table.shape[1] >= _STREAM_MIN_ROW_BYTES
    )
    args = (table, ids, out.view(np.uint8), _bounds(ids.dtype, int(offset), rows), mode, stream)
    if parallel:
        # get_num_threads() inside the kernel would keep numba from caching it.
        chunks = min(ids.size, get_num_threads())
        return int(launch(lambda: _gather_parallel(*args, chunks), lambda: _gather_serial(*args)))
    return int(_gather_serial(*args))
