"""`FastLookup`: a model that is one lookup of a weight by its one input, run in about a
microsecond of Python around the kernel.

A one-token lookup copies a few KiB; the general path (plan steps, a runtime, the buffer pool,
the kernel's argument checks) costs many times that. Here everything but the kernel call is
worked out once per ids shape: the output shape, the kernel's view of each output buffer, and a
few output buffers that are handed out again once nothing else refers to them (at most a few
per shape, up to `_SPARE_MAX_BYTES` each and `_SPARE_BYTES` per model: a pool's request costs
3-4 µs, a quarter of a 64-token lookup of cached rows). Outputs from `PARALLEL_MIN_BYTES` take
the parallel kernel; larger ones than spares hold take the session's buffer pool, which gives
idle memory back.

The caller (`Model.execute`) has checked the ids' dtype, shape and layout, and an ``out=``
array's layout and overlaps; anything this path does not cover returns None, and the caller
takes the general path.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ember.errors import out_of_range_error

from .buffer_pool import _REFCOUNTS_EXACT, ALIGNMENT, BufferPool
from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.lookup import RowLookup
from .threads import use_threads

__all__ = ["FastLookup"]

_MAX_SHAPES = 64
"""Ids shapes remembered per model; beyond them, the general path serves."""

_SPARES = 4
"""Spare output buffers kept per ids shape."""

_SPARE_MAX_BYTES = 16 << 20
"""Outputs up to this size get spares (512 float32 rows of 4096); larger ones the pool."""

_SPARE_BYTES = 64 << 20
"""Bytes of spares a model may keep in all, reserved per shape as shapes come."""

_FREE_ARRAY = 2
"""`sys.getrefcount` of a spare result array taken off its list: its entry, and the call's
own argument. A caller's Tensor or name would add one."""

_FREE_BUFFER = 3
"""`sys.getrefcount` of the memory under a free spare: its array's and the kernel view's
bases, and the argument. A caller's view of the result would add one."""


class _Shape:
    """What one ids shape needs: its output shape and spare output buffers."""

    __slots__ = ("large", "max_spares", "out_shape", "rows", "spares")

    def __init__(self, out_shape: tuple[int, ...], rows: int, large: bool, max_spares: int) -> None:
        self.out_shape = out_shape
        self.rows = rows
        self.large = large
        """Outputs from `PARALLEL_MIN_BYTES`: the parallel kernel."""
        self.max_spares = max_spares
        """Spares kept at most; none: results come from the session's pool."""
        self.spares: list[tuple[np.ndarray, np.ndarray]] = []


class FastLookup:
    """``fast(ids, out)`` -> the lookup's result (``out`` itself when given), or None."""

    def __init__(
        self,
        lookup: RowLookup,
        table: np.ndarray,
        mode: int,
        out_of_range: str,
        row_shape: tuple[int, ...],
        out_dtype: np.dtype,
        ids_dtype: np.dtype,
        pool: BufferPool,
        num_threads: int,
    ) -> None:
        self._lookup = lookup
        self._table = table
        self._rows = table.reshape(table.shape[0], math.prod(table.shape[1:]))
        self._offset = table.ctypes.data % ALIGNMENT if table.dtype == out_dtype else 0
        """Where spare outputs start modulo a cache line: where the table's rows do, when rows
        are copied as they are (a copy of cached rows ran 20 % faster with both ends at the
        same offset in their cache lines); decoded rows at a cache line."""
        self._pool = pool
        self._num_threads = num_threads
        self._mode = mode
        self._out_of_range = out_of_range
        self._row_shape = row_shape
        self._row_size = math.prod(row_shape)
        self._out_dtype = np.dtype(out_dtype)
        self._call = None
        self._parallel = None
        self._view: np.dtype | None = None
        self._cast_ids = np.dtype(ids_dtype) != lookup.ids_dtype
        """Ids in the graph's type, the kernel taking int64 (never uint64: see `create`)."""
        self._shapes: dict[tuple[int, ...], _Shape] = {}
        self._spare_bytes = 0
        """Bytes of spares the shapes so far may keep."""
        self._last_out: tuple = (None, None)
        """The last caller's ``out=`` array and the kernel's view of it."""

    @classmethod
    def create(
        cls,
        lookup: RowLookup,
        table: np.ndarray,
        mode: int,
        out_of_range: str,
        row_shape: tuple[int, ...],
        out_dtype: np.dtype,
        ids_dtype: np.dtype,
        pool: BufferPool,
        num_threads: int,
    ) -> FastLookup | None:
        """A fast path for the lookup, or None where it has none: uint64 ids that the kernel
        would need as int64 (the general path saturates them first)."""
        if np.dtype(ids_dtype) == np.uint64 and lookup.ids_dtype != ids_dtype:
            return None
        table = np.ascontiguousarray(table)
        return cls(
            lookup, table, mode, out_of_range, row_shape, out_dtype, ids_dtype, pool, num_threads
        )

    def __call__(self, ids: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
        call = self._call
        if call is None and (call := self._prepare()) is None:
            return None
        shape = self._shapes.get(ids.shape)
        if shape is None:
            return None
        if shape.large:
            return self._large(ids, out, shape)
        flat = ids if ids.ndim == 1 else ids.reshape(-1)
        if self._cast_ids:
            flat = flat.astype(np.int64)
        if out is not None:
            dtype = out.dtype
            if out.shape != shape.out_shape or (
                dtype is not self._out_dtype and dtype != self._out_dtype
            ):
                return None  # the general path says what is wrong
            bad = call(flat, self._out_view(out, shape))
            if bad >= 0:
                raise self._error(ids, flat, bad)
            return out
        spares = shape.spares
        result, target = self._free_spare(spares) or self._new_buffer(shape)
        bad = call(flat, target)
        if _REFCOUNTS_EXACT and len(spares) < shape.max_spares:
            spares.append((result, target))
        if bad >= 0:
            raise self._error(ids, flat, bad)
        return result

    def _large(self, ids: np.ndarray, out: np.ndarray | None, shape: _Shape) -> np.ndarray | None:
        if out is not None and (out.shape != shape.out_shape or out.dtype != self._out_dtype):
            return None
        call = self._parallel
        if call is None and (prepared := self._lookup.parallel_call(self._table, self._mode)):
            call = self._parallel = prepared[0]
        flat = ids if ids.ndim == 1 else ids.reshape(-1)
        spare = None
        if out is not None:
            result = out
        elif shape.max_spares:
            spare = self._free_spare(shape.spares) or self._new_buffer(shape)
            result = spare[0]
        else:
            result = self._pool.empty(shape.out_shape, self._out_dtype)
        use_threads(self._num_threads)
        if call is None:  # the parallel kernel is compiling: the lookup serves as it can
            rows = result.reshape(shape.rows, self._row_size)
            bad = self._lookup(self._rows, flat, 0, self._mode, rows, True)
        else:
            if self._cast_ids:
                flat = flat.astype(np.int64)
            if spare is not None:
                target = spare[1]
            elif out is not None:
                target = self._out_view(out, shape)
            else:
                target = self._kernel_view(result, shape.rows)
            bad = call(flat, target, self._num_threads)
        if spare is not None and _REFCOUNTS_EXACT and len(shape.spares) < shape.max_spares:
            shape.spares.append(spare)
        if bad >= 0:
            raise self._error(ids, flat, bad)
        return result

    @staticmethod
    def _free_spare(spares: list) -> tuple[np.ndarray, np.ndarray] | None:
        """A spare nothing else refers to, taken off the list (put back after the kernel has
        run: another thread must not take it meanwhile), or None."""
        for _ in range(2):  # a caller keeping the last result leaves the one before it free
            try:
                entry = spares.pop()
            except IndexError:
                return None
            if (
                sys.getrefcount(entry[0]) == _FREE_ARRAY
                and sys.getrefcount(entry[0].base) == _FREE_BUFFER
            ):
                return entry
            spares.insert(0, entry)  # the caller still holds it: for a later call
        return None

    def _out_view(self, out: np.ndarray, shape: _Shape) -> np.ndarray:
        """The kernel's view of a caller's ``out=`` array, kept for the same array's next call."""
        last = self._last_out
        if last[0] is out:
            return last[1]
        target = self._kernel_view(out, shape.rows)
        self._last_out = (out, target)
        return target

    def _prepare(self):
        """The compiled kernel call, once the kernel is ready."""
        prepared = self._lookup.serial_call(self._table, self._mode)
        if prepared is None:
            return None
        self._view = prepared[1]
        self._call = prepared[0]
        return self._call

    def _error(self, ids: np.ndarray, flat: np.ndarray, bad: int) -> Exception:
        size = self._table.shape[0]
        return out_of_range_error(ids.shape, bad, flat[bad], size, self._out_of_range)

    def accept(self, ids_shape: tuple[int, ...]) -> None:
        """Serve ids of this shape from now on (the general path has checked it)."""
        if ids_shape in self._shapes or len(self._shapes) >= _MAX_SHAPES:
            return
        rows = math.prod(ids_shape)
        nbytes = rows * self._row_size * self._out_dtype.itemsize
        spares = 0
        if nbytes <= _SPARE_MAX_BYTES:
            spares = min(_SPARES, (_SPARE_BYTES - self._spare_bytes) // max(nbytes, 1))
            self._spare_bytes += spares * nbytes
        large = nbytes >= PARALLEL_MIN_BYTES
        self._shapes.setdefault(
            ids_shape, _Shape((*ids_shape, *self._row_shape), rows, large, spares)
        )

    def _new_buffer(self, shape: _Shape) -> tuple[np.ndarray, np.ndarray]:
        """A result array at `_offset` modulo a cache line, and the kernel's view of it."""
        nbytes = shape.rows * self._row_size * self._out_dtype.itemsize
        buffer = np.empty(nbytes + ALIGNMENT, np.uint8)
        start = (self._offset - buffer.ctypes.data) % ALIGNMENT
        result = buffer[start : start + nbytes].view(self._out_dtype).reshape(shape.out_shape)
        return result, self._kernel_view(result, shape.rows)

    def _kernel_view(self, array: np.ndarray, rows: int) -> np.ndarray:
        return array.reshape(rows, self._row_size).view(self._view)
