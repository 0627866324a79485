"""`RowLookup`: the row gather of one lookup (dense, or block-quantized and decoded), through
its compiled kernel once that is ready and through numpy until then (see `background`).

Both paths give the same bits: numpy copies the same rows, and the quantized path decodes them
with `ember.quant`'s reference decoders, which the compiled ones match bit for bit.

>>> lookup = RowLookup(None, np.dtype(np.int64), np.dtype(np.float32))
>>> table = np.arange(6, dtype=np.float32).reshape(3, 2)
>>> out = np.empty((2, 2), np.float32)
>>> lookup(table, np.array([2, 0]), 0, ERROR, out, False), out.tolist()
(-1, [[4.0, 5.0], [0.0, 1.0]])
"""

from __future__ import annotations

import numpy as np

from ember.quant import FORMATS, row_bytes

from . import background
from .dequantize_gather import (
    gather_dequantize,
    parallel_dequantize_call,
    serial_dequantize_call,
)
from .gather import gather_rows, parallel_gather_call, serial_gather_call
from .numpy_gather import numpy_gather_rows
from .out_of_range import ERROR
from .reference_gather import reference_gather

__all__ = ["RowLookup"]


class RowLookup:
    """Rows of a ``fmt`` table (None: a dense one) for ids of ``ids_dtype``, into
    ``out_dtype``; creating it asks for its single-threaded kernel."""

    def __init__(self, fmt: str | None, ids_dtype: np.dtype, out_dtype: np.dtype) -> None:
        self._fmt = fmt
        self._format = None if fmt is None else FORMATS[fmt]
        ids_dtype = np.dtype(ids_dtype).newbyteorder("=")
        self.ids_dtype = ids_dtype if fmt is None else np.dtype(np.int64)
        """The ids `serial_call`'s function takes."""
        self._out_dtype = np.dtype(out_dtype)
        what = "row gather" if fmt is None else f"{fmt} to {out_dtype} lookup"
        self.serial, self.parallel = (
            background.kernel(
                (fmt, ids_dtype, out_dtype, parallel),
                f"{what} ({ids_dtype} ids{', parallel' if parallel else ''})",
                self._warm_up(ids_dtype, out_dtype, parallel),
            )
            for parallel in (False, True)
        )
        self.serial.request()

    def __call__(
        self,
        table: np.ndarray,
        ids: np.ndarray,
        offset: int,
        out_of_range: int,
        out: np.ndarray,
        parallel: bool,
    ) -> int:
        """`gather_rows` / `gather_dequantize`: -1, or the first bad position. ``parallel``
        is a wish: until the parallel kernel is compiled, one thread serves."""
        if parallel and not self.parallel.ready:
            parallel = self.parallel.request()
        if self.serial.ready:
            if self._fmt is None:
                return gather_rows(table, ids, offset, out_of_range, out, parallel)
            return gather_dequantize(self._fmt, table, ids, offset, out_of_range, out, parallel)
        if self._format is None:
            return numpy_gather_rows(table, ids, offset, out_of_range, out)
        return reference_gather(self._format, table, ids, offset, out_of_range, out)

    def serial_call(self, table: np.ndarray, out_of_range: int) -> tuple | None:
        """``(call(ids, out), view)``: the compiled single-thread kernel over ``table``, for
        callers that check arguments themselves (1-D ids of `ids_dtype`, ``out`` 2-D seen as
        ``view``, small enough not to stream); None until it is compiled."""
        if not self.serial.ready:
            return None
        if self._fmt is None:
            return serial_gather_call(table, self.ids_dtype, out_of_range), np.dtype(np.uint8)
        return serial_dequantize_call(self._fmt, table, self._out_dtype, out_of_range)

    def parallel_call(self, table: np.ndarray, out_of_range: int) -> tuple | None:
        """``(call(ids, out, threads), view)``: the compiled parallel kernel, as `serial_call`
        gives the single-thread one (at any output size); None until it is compiled (and
        asked for, by this call)."""
        if not self.parallel.request():
            return None
        if self._fmt is None:
            return parallel_gather_call(table, self.ids_dtype, out_of_range), np.dtype(np.uint8)
        return parallel_dequantize_call(self._fmt, table, self._out_dtype, out_of_range)

    def _warm_up(self, ids_dtype: np.dtype, out_dtype: np.dtype, parallel: bool):
        """A call of the compiled path on one row: numba compiles (or loads) its kernel. The
        parallel kernels are prepared rather than called, as a call may run single-threaded
        while another thread's parallel kernel runs."""
        ids = np.zeros(1, ids_dtype)
        if self._format is None:
            table = np.zeros((1, 1), out_dtype)
            if parallel:
                return lambda: parallel_gather_call(table, ids_dtype, ERROR)
            return lambda: gather_rows(table, ids, 0, ERROR, np.empty_like(table), False)
        table = np.zeros((1, row_bytes(self._format, self._format.block_elements)), np.uint8)
        out = np.empty((1, self._format.block_elements), out_dtype)

        def warm() -> None:
            if not parallel or not parallel_dequantize_call(self._fmt, table, out_dtype, ERROR):
                gather_dequantize(self._fmt, table, ids, 0, ERROR, out, parallel)

        return warm
