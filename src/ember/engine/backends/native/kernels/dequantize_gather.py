"""`gather_dequantize`: gather rows of a block-quantized table and dequantize only those rows,
in one pass; host side (argument checks, the choice of kernel, direct calls). The kernels are
`compiled.dequantize_kernels`; values are bit-identical to ``ember.quant``'s reference
``dequantize(table[ids])``, hence to ``gguf.quants.dequantize``.

>>> import numpy as np
>>> from ember.quant import get_format
>>> rows = np.zeros((2, 32), np.float32)
>>> rows[:, 0], rows[1, 1:3] = 127, [5, -6]  # a peak of 127: scale 1, exact values
>>> table = get_format("q8_0").quantize(rows)
>>> out = np.empty((3, 32), np.float32)
>>> gather_dequantize("q8_0", table, np.array([1, 0, 5]), 0, ZERO, out, False)
-1
>>> out[:, :3]
array([[127.,   5.,  -6.],
       [127.,   0.,   0.],
       [  0.,   0.,   0.]], dtype=float32)
>>> gather_dequantize("q8_0", table, np.array([1, 0, 5]), 0, ERROR, out, False)
2
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from numba import get_num_threads

from ember.quant import FORMATS, QuantFormat, row_values

from .compiled import device
from .compiled.decoders import ROW_DECODERS
from .compiled.decoders.bytes import F16_TO_F32
from .compiled.dequantize_kernels import BF16, F16, F32, kernels
from .compiled.resolve import bounds
from .entry import compiled_entry
from .inputs import as_kernel_input
from .launch import PARALLEL_LAUNCH, launch
from .out_of_range import ERROR, ZERO  # noqa: F401 - the doctest
from .reference_gather import reference_gather

__all__ = ["gather_dequantize", "parallel_dequantize_call", "serial_dequantize_call"]

_OUT_KINDS = {
    np.dtype(np.float32): F32,
    np.dtype(ml_dtypes.bfloat16): BF16,
    np.dtype(np.float16): F16,
}

_INT64 = np.dtype(np.int64)
_I64_MAX = int(np.iinfo(np.int64).max)


def _streams(out_bytes: int, row_bytes: int) -> bool:
    """Whether a lookup writing ``out_bytes`` in rows of ``row_bytes`` streams its stores."""
    return (
        device.HAVE_STREAM
        and out_bytes >= device.DECODE_STREAM_MIN_BYTES
        and row_bytes >= device.DECODE_STREAM_MIN_ROW_BYTES
    )


def gather_dequantize(
    fmt_name: str,
    table: np.ndarray,
    ids: np.ndarray,
    offset: int,
    out_of_range: int,
    out: np.ndarray,
    parallel: bool,
) -> int:
    """Write ``dequantize(table[ids[i] - offset])`` to ``out[i]`` for every ``i``.

    Ids whose row falls outside ``[0, rows)`` follow ``out_of_range`` (see `out_of_range`):
    with ``ERROR``, or an unknown code, nothing is decoded and the first bad position is
    returned (``out`` is then unspecified). ``parallel`` splits the ids over numba's threads,
    worth it for large outputs; the caller decides. A registry format without a compiled
    decoder is decoded by its reference decoder (`reference_gather`).

    Returns:
        -1 when every id was usable, else the position of the first one that was not.

    Raises:
        TypeError: the table is not uint8, the ids not integers, or ``out`` of another dtype.
        ValueError: unknown format, or arrays whose shape or layout do not fit.
    """
    name = str(fmt_name).lower()
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(f"unknown quantization format {fmt_name!r}; known: {', '.join(FORMATS)}")
    table = _as_table(table, fmt)
    hidden = row_values(fmt, table.shape[1])
    ids = _as_ids(ids)
    kind = _OUT_KINDS.get(out.dtype)
    if kind is None:
        raise TypeError(f"output dtype must be float32, float16 or bfloat16, got {out.dtype}")
    if out.shape != (ids.size, hidden):
        raise ValueError(f"output shape {out.shape} != ({ids.size}, {hidden}) for {name}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("output must be a writeable C-contiguous array")
    if name not in ROW_DECODERS:
        return reference_gather(fmt, table, ids, offset, out_of_range, out)
    if ids.size == 0:
        return -1
    out = out.view(np.float32 if kind == F32 else np.uint16).view(np.ndarray)
    stream = _streams(out.nbytes, out.shape[1] * out.itemsize)
    # get_num_threads() inside the kernel would keep numba from caching it.
    chunks = min(ids.size, 4 * get_num_threads()) if parallel else 1
    run = kernels(name)[kind == F32, bool(parallel)]
    id_bounds = bounds(_INT64, int(offset), table.shape[0])
    args = (table, ids, id_bounds, int(out_of_range), out, F16_TO_F32, kind, stream, chunks)
    if not parallel:
        return int(run(*args))
    serial = kernels(name)[kind == F32, False]
    return int(launch(lambda: run(*args), lambda: serial(*args)))


def serial_dequantize_call(
    fmt_name: str, table: np.ndarray, out_dtype: np.dtype, out_of_range: int
):
    """``call(ids, out)``: what `gather_dequantize(fmt_name, table, ids, 0, out_of_range, out,
    False)` does, without its checks, for callers that have made sure of them: a valid
    C-contiguous ``table``, writeable C-contiguous 1-D int64 ``ids``, a writeable C-contiguous
    2-D ``out`` of ``out_dtype`` seen as ``view`` (float32 or uint16), too small to stream.

    Returns:
        ``(call, view)``, or None for a format without a compiled decoder.
    """
    direct = _Direct.of(fmt_name, table, out_dtype, out_of_range)
    if direct is None:
        return None
    run = direct.entry(parallel=False)
    table, id_bounds, code, kind = direct.table, direct.bounds, direct.out_of_range, direct.kind

    def call(ids: np.ndarray, out: np.ndarray) -> int:
        return run(table, ids, id_bounds, code, out, F16_TO_F32, kind, False, 1)

    return call, direct.view


def parallel_dequantize_call(
    fmt_name: str, table: np.ndarray, out_dtype: np.dtype, out_of_range: int
):
    """``(call(ids, out, threads), view)``: what `gather_dequantize(fmt_name, table, ids, 0,
    out_of_range, out, True)` does on ``threads`` threads, without its checks (the caller's
    part as for `serial_dequantize_call`, at any output size); None without a compiled
    decoder."""
    direct = _Direct.of(fmt_name, table, out_dtype, out_of_range)
    if direct is None:
        return None
    with PARALLEL_LAUNCH:
        run = direct.entry(parallel=True)
    serial = direct.entry(parallel=False)
    table, id_bounds, code, kind = direct.table, direct.bounds, direct.out_of_range, direct.kind

    def call(ids: np.ndarray, out: np.ndarray, threads: int) -> int:
        stream = _streams(out.nbytes, out.shape[1] * out.itemsize)
        args = (table, ids, id_bounds, code, out, F16_TO_F32, kind, stream)
        return launch(lambda: run(*args, min(ids.size, 4 * threads)), lambda: serial(*args, 1))

    return call, direct.view


class _Direct:
    """What the direct calls of one format's kernels pass besides the ids and the output."""

    def __init__(self, fmt: str, table: np.ndarray, kind: int, out_of_range: int) -> None:
        self.fmt, self.table, self.kind, self.out_of_range = fmt, table, kind, int(out_of_range)
        self.bounds = bounds(_INT64, 0, table.shape[0])
        self.view = np.dtype(np.float32 if kind == F32 else np.uint16)

    @classmethod
    def of(cls, fmt_name: str, table: np.ndarray, out_dtype: np.dtype, out_of_range: int):
        """None for a format without a compiled decoder or an output dtype it does not write."""
        kind = _OUT_KINDS.get(np.dtype(out_dtype))
        if fmt_name not in ROW_DECODERS or kind is None:
            return None
        return cls(fmt_name, _as_table(table, FORMATS[fmt_name]), kind, out_of_range)

    def entry(self, parallel: bool):
        """The compiled kernel's entry point (compiled now if need be)."""
        sample = (np.zeros(0, np.int64), self.bounds, self.out_of_range)
        out = np.zeros((0, 1), self.view)
        kernel = kernels(self.fmt)[self.kind == F32, parallel]
        return compiled_entry(kernel, (self.table, *sample, out, F16_TO_F32, self.kind, False, 1))


def _as_table(table: np.ndarray, fmt: QuantFormat) -> np.ndarray:
    if table.dtype != np.uint8:
        raise TypeError(f"a {fmt.name} table holds uint8 blocks, got {table.dtype}")
    if table.ndim != 2:
        raise ValueError(f"a {fmt.name} table is 2-D (rows, row_bytes), got shape {table.shape}")
    row_values(fmt, table.shape[1])  # raises ValueError unless a whole row
    if not table.flags.c_contiguous:
        raise ValueError("the table must be C-contiguous (copying it would defeat the gather)")
    return as_kernel_input(table if type(table) is np.ndarray else table.view(np.ndarray))


def _as_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as contiguous int64, the one type the kernels compile for; uint64 ids beyond int64
    saturate (still past any table, never wrapping to a negative id)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got {ids.dtype}")
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
    if ids.dtype == np.uint64:
        ids = np.minimum(ids, np.uint64(_I64_MAX))
    return as_kernel_input(np.ascontiguousarray(ids, dtype=np.int64))
