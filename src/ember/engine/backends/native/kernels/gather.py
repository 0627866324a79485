"""`gather_rows`: the row gather over dense tables, host side (argument checks, the choice of
kernel, direct calls); the kernels are `compiled.gather_kernels`.

Rows move as raw bytes, so one compiled kernel per id dtype serves every element type. Outputs
of `device.COPY_STREAM_MIN_BYTES` or more (on one thread), of `PARALLEL_STREAM_MIN_BYTES` or
more (on several) are written with non-temporal stores.

>>> import numpy as np
>>> table = np.arange(12, dtype=np.float32).reshape(4, 3)
>>> out = np.empty((3, 3), np.float32)
>>> gather_rows(table, np.array([3, 0, 9]), 0, ZERO, out)
-1
>>> out
array([[ 9., 10., 11.],
       [ 0.,  1.,  2.],
       [ 0.,  0.,  0.]], dtype=float32)
>>> gather_rows(table, np.array([3, 0, 9]), 0, ERROR, out)
2
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads

from .compiled import device
from .compiled.gather_kernels import gather_parallel, gather_serial
from .compiled.resolve import bounds
from .entry import compiled_entry
from .inputs import as_kernel_input
from .launch import PARALLEL_LAUNCH, launch, try_parallel
from .out_of_range import CODES, ERROR, ZERO  # noqa: F401 - ERROR, ZERO: the doctest

__all__ = ["PARALLEL_MIN_BYTES", "gather_rows", "parallel_gather_call", "serial_gather_call"]

PARALLEL_MIN_BYTES = 512 * 1024
"""Output size from which ``parallel=True`` is suggested (a caller's choice, not applied here).

Measured on two cores with 8-16 KiB rows: with numba's pool just used, two threads win from
about 128 KiB (64 rows of 8 KiB: 16 us against 24 us on one thread); when it has idled for a
millisecond, waking it costs tens of microseconds and two threads win from 0.5-1 MiB. After
longer idling the wake-up can cost far more on a loaded machine.

At 64 rows of 16 KiB (1 MiB, 128256 x 4096 float32, fast path, interleaved medians) one
thread beat two only when the rows were already cached (28.4 against 31.0 us); for fresh rows
two threads won by far (48.2 against 76.8 us), bfloat16 alike (26.5 against 39.5): kept here.
Measured again on OpenMP's threads (kernels alone, beside torch): two win cached rows too,
64 float32 rows 16.8 against 28.4 us, 64 bfloat16 rows (512 KiB) 8.9 against 15.5.
"""


PARALLEL_STREAM_MIN_BYTES = 16 * 1024 * 1024
"""Output size from which a gather on more than one thread streams its stores (one thread:
`device.COPY_STREAM_MIN_BYTES`).

Streamed stores go to memory; plain ones leave the output in the cache, where a reused output
buffer already is. Two threads, 128256 x 4096 table, same process, interleaved medians: rows
already cached, 512 bfloat16 rows (4 MiB) 162 us streamed against 66 us plain, 1024 (8 MiB)
327 against 186, 512 float32 rows (8 MiB) 343 against 170; fresh rows 8 MiB and below within
noise either way (473 against 405 us, 195 against 216); from 16 MiB streaming wins both (1024
float32 rows: 705 against 754 us cached, 965 against 1137 fresh). One thread gains from
streaming from 2 MiB on fresh rows (1.3-1.6x), so its threshold stays there."""


def _streams(out_bytes: int, row_bytes: int, parallel: bool = False) -> bool:
    """Whether a gather writing ``out_bytes`` in rows of ``row_bytes`` streams its stores, on
    one thread or (``parallel``) more."""
    start = PARALLEL_STREAM_MIN_BYTES if parallel else device.COPY_STREAM_MIN_BYTES
    return (
        device.HAVE_STREAM and out_bytes >= start and row_bytes >= device.COPY_STREAM_MIN_ROW_BYTES
    )


def serial_gather_call(table: np.ndarray, ids_dtype: np.dtype, out_of_range: int):
    """``call(ids, out)``: what `gather_rows(table, ids, 0, out_of_range, out)` does, without
    its checks, for callers that have made sure of them: a C-contiguous ``table``, writeable
    C-contiguous 1-D ``ids`` of ``ids_dtype`` (native byte order), a writeable C-contiguous
    ``out`` of ``table``'s row bytes viewed as uint8, too small to stream."""
    table, id_bounds, sample = _direct_args(table, ids_dtype)
    kernel = compiled_entry(gather_serial, (table, *sample, id_bounds, out_of_range, False))

    def call(ids: np.ndarray, out: np.ndarray) -> int:
        return kernel(table, ids, out, id_bounds, out_of_range, False)

    return call


def parallel_gather_call(table: np.ndarray, ids_dtype: np.dtype, out_of_range: int):
    """``call(ids, out, threads)``: what `gather_rows(table, ids, 0, out_of_range, out, True)`
    does on ``threads`` threads, without its checks (the caller's part as for
    `serial_gather_call`, at any output size)."""
    table, id_bounds, sample = _direct_args(table, ids_dtype)
    args = (table, *sample, id_bounds, out_of_range, False)
    with PARALLEL_LAUNCH:
        kernel = compiled_entry(gather_parallel, (*args, 1))
    serial = compiled_entry(gather_serial, args)
    wide = _streams(1 << 62, table.shape[1])
    stream_from, stream_parallel_from = device.COPY_STREAM_MIN_BYTES, PARALLEL_STREAM_MIN_BYTES

    def call(ids: np.ndarray, out: np.ndarray, threads: int) -> int:
        # `launch` spelled out: its closures and numba's thread count cost ~1.5 us a call
        if try_parallel(threads):
            try:
                stream = wide and out.nbytes >= stream_parallel_from
                return kernel(
                    table, ids, out, id_bounds, out_of_range, stream, min(ids.size, threads)
                )
            finally:
                PARALLEL_LAUNCH.release()
        stream = wide and out.nbytes >= stream_from
        return serial(table, ids, out, id_bounds, out_of_range, stream)

    return call


def _direct_args(table: np.ndarray, ids_dtype: np.dtype) -> tuple:
    """The fixed arguments of a direct kernel call (the table as uint8 rows, its bounds) and
    sample ids and output of the types the call will pass."""
    rows = table.shape[0]
    table = np.ascontiguousarray(table)
    table = as_kernel_input(table.reshape(rows, math.prod(table.shape[1:])).view(np.uint8))
    sample = (np.zeros(0, ids_dtype), np.zeros((0, table.shape[1]), np.uint8))
    return table, bounds(np.dtype(ids_dtype), 0, rows), sample


def gather_rows(
    table: np.ndarray,
    ids: np.ndarray,
    offset: int,
    out_of_range: int,
    out: np.ndarray,
    parallel: bool = False,
) -> int:
    """Copy ``table[ids[i] - offset]`` into ``out[i]``; return the first bad position or -1.

    An id whose row falls outside ``[0, rows)`` is handled by ``out_of_range`` (see
    `out_of_range`): ``ERROR`` stops and returns its position (``out`` is then partly
    written), ``ZERO`` writes a zero row, ``CLAMP`` copies the nearest end row, ``WRAP`` maps
    rows in ``[-rows, -1]`` to ``row + rows`` and stops at any other, ``SKIP`` leaves the
    output row as it was. ``parallel`` splits the ids over numba's threads; it pays for waking
    them from about ``PARALLEL_MIN_BYTES`` of output.

    Raises:
        TypeError: ``ids`` is not integer, or ``out`` has another dtype than ``table``.
        ValueError: shapes or layouts do not fit, or ``out_of_range`` is unknown.
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
    if out_of_range not in CODES:
        raise ValueError(f"unknown out-of-range mode {out_of_range}")
    if ids.size == 0:
        return -1
    if not (ids.flags.c_contiguous and ids.dtype.isnative):
        ids = np.ascontiguousarray(ids, ids.dtype.newbyteorder("="))
    ids = as_kernel_input(ids)
    # Raw bytes: one compiled kernel per id dtype serves every element type.
    table = as_kernel_input(table.view(np.uint8))
    id_bounds = bounds(ids.dtype, int(offset), table.shape[0])
    args = (table, ids, out.view(np.uint8), id_bounds, out_of_range)
    stream = _streams(out.nbytes, table.shape[1])
    if parallel:
        # get_num_threads() inside the kernel would keep numba from caching it.
        threads = get_num_threads()
        chunks = min(ids.size, threads)
        wide = _streams(out.nbytes, table.shape[1], parallel=True)
        return int(
            launch(
                lambda: gather_parallel(*args, wide, chunks),
                lambda: gather_serial(*args, stream),
                threads,
            )
        )
    return int(gather_serial(*args, stream))
