"""`BagCollection`: the host side of a collection's pooling, many tables' bags per call.

Features are grouped by how their tables' rows read: every dense table (float32, bfloat16,
float16) in one group, and one group per quantized format. Each group is one kernel call
(`bag.collection_kernels`) over all of its features and samples, so a batch over dense tables
is one call, and a batch over tables of `k` formats is `k` calls: numba compiles one kernel per
row decoder, and a call cannot hold two. Until a group's kernel is compiled (or for a format
with no compiled row decoder) numpy pools it, with the same float32 operations in the same
order: quantized rows decoded by the format's reference decoder.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from numba import get_num_threads

from ember.quant import FORMATS, row_bytes

from . import background
from .bag import (
    FEATURE_COLUMN,
    FEATURE_INDEX,
    FEATURE_OUT_OF_RANGE,
    FEATURE_PAD,
    FEATURE_POOL,
    FEATURE_TABLE,
    FEATURE_WIDTH,
    KIND_BF16,
    KIND_F16,
    KIND_F32,
    POOL_SUM,
    TABLE_ADDRESS,
    TABLE_KIND,
    TABLE_ROW_ELEMENTS,
    TABLE_ROWS,
    collection_kernels,
    first_unchecked,
    numpy_pool_bags,
)
from .compiled.decoders import ROW_DECODERS
from .compiled.decoders.bytes import F16_TO_F32
from .entry import compiled_entry
from .id_range import first_outside
from .inputs import as_kernel_input
from .launch import PARALLEL_LAUNCH, try_parallel
from .out_of_range import ERROR, ZERO

__all__ = ["BagCollection", "TableSpec"]

_NONE = np.zeros((0, 7), np.int64)
"""No feature: what a kernel call checks when it checks nothing."""

_UNWEIGHTED = np.zeros(0, np.float32)
"""No weights: what a kernel call is given for unweighted bags."""


@dataclass(frozen=True)
class TableSpec:
    """How a table's rows read: `fmt` None and a `KIND_*` for dense rows (16-bit ones seen as
    uint16), or the registry format of uint8 rows."""

    fmt: str | None
    kind: int = KIND_F32

    @classmethod
    def of(cls, dtype: str, fmt: str | None) -> TableSpec:
        """The spec of a table of dtype `dtype` (a `DType` value such as "bfloat16"), or of
        uint8 rows of the registry format `fmt` where one is given."""
        return cls(fmt) if fmt else cls(None, _DENSE_KINDS[dtype])

    def rows(self, table: np.ndarray) -> np.ndarray:
        """`table` as the kernels read it: 16-bit float rows as their uint16 bits."""
        return table.view(np.uint16) if self.fmt is None and self.kind != KIND_F32 else table


_DENSE_KINDS = {"float32": KIND_F32, "bfloat16": KIND_BF16, "float16": KIND_F16}


class BagCollection:
    """Pools the features of a collection: ``features`` is an int64 `(features, 7)` array of
    the `FEATURE_*` columns over ``tables``; ids are of ``ids_dtype``."""

    def __init__(self, tables: list[TableSpec], features: np.ndarray, ids_dtype: np.dtype):
        self._tables = tables
        table_array = np.zeros((len(tables), 4), np.int64)
        table_array[:, TABLE_KIND] = [spec.kind for spec in tables]
        ids_dtype = np.dtype(ids_dtype).newbyteorder("=")
        self._unsigned = ids_dtype.kind == "u"
        self._features = np.ascontiguousarray(features)
        self._checker = background.kernel(
            ("embedding_bag_collection ids", ids_dtype),
            f"embedding_bag_collection id check ({ids_dtype} ids)",
            _warm_up_check(ids_dtype),
        )
        self._groups: list[_Group] = []
        for fmt in dict.fromkeys(tables[t].fmt for t in features[:, FEATURE_TABLE]):
            mine = [f for f, t in enumerate(features[:, FEATURE_TABLE]) if tables[t].fmt == fmt]
            self._groups.append(_Group(fmt, np.ascontiguousarray(features[mine]), ids_dtype))
        self._binding: tuple[list[np.ndarray], np.ndarray] = ([], table_array)
        """The tables last bound (kept alive here) and the array of their addresses and
        shapes: reading an address costs ~1 us a table, and the same weights come back at
        every call. Replaced whole, never written in place: another thread's kernel may be
        reading the array it was given."""

    def __call__(
        self,
        tables: list[np.ndarray],
        ids: np.ndarray,
        starts: np.ndarray,
        out: np.ndarray,
        parallel: bool,
        check: bool = False,
        weights: np.ndarray | None = None,
    ) -> int:
        """Every feature's bags into the float32 ``out`` `(batch, widths)`: bag ``(f, b)`` is
        ``ids[starts[f * batch + b]:starts[f * batch + b + 1]]`` (the starts checked already;
        ids outside a table are ZERO or CLAMP, as each feature says), each row times its
        weight in ``weights`` (one per id, of any float dtype and shape; sum pooling only) when
        given; -1.
        ``parallel`` is a wish. Features marked ERROR hold rows only; with ``check`` that is
        checked first (one compiled pass over their ids), and the position of the first id
        outside its table is returned instead, before anything is written."""
        table_array = self._bind(tables)
        ids = as_kernel_input(ids)  # one compiled kernel for read-only ids and weights too
        if weights is None:
            weights = _UNWEIGHTED
        else:
            weights = as_kernel_input(np.ascontiguousarray(weights.reshape(-1), np.float32))
        first = self._groups[0]
        checks = _NONE
        if check and first.compiled and first.serial.ready:  # the first call checks them all
            checks = self._features
        elif check:
            bad = self._first_unchecked(table_array, ids, starts, out.shape[0])
            if bad >= 0:
                return bad
        for group in self._groups:
            bad = group(table_array, tables, self._tables, ids, weights, self._unsigned, starts,
                        out, parallel, checks)  # fmt: skip
            if bad >= 0:
                return bad
            checks = _NONE
        return -1

    def _bind(self, tables: list[np.ndarray]) -> np.ndarray:
        """The table array with the addresses and shapes of ``tables``."""
        bound, table_array = self._binding
        if len(bound) == len(tables) and all(map(operator.is_, bound, tables)):
            return table_array
        table_array = table_array.copy()
        for t, table in enumerate(tables):
            table_array[t, TABLE_ADDRESS] = table.ctypes.data
            table_array[t, TABLE_ROWS], table_array[t, TABLE_ROW_ELEMENTS] = table.shape
        self._binding = (list(tables), table_array)
        return table_array

    def _first_unchecked(self, table_array, ids, starts, batch) -> int:
        if self._checker.ready or self._checker.request():
            return first_unchecked(table_array, self._features, starts, ids, batch)
        for feature in self._features:  # numpy, while the check compiles
            if feature[FEATURE_OUT_OF_RANGE] == ERROR:
                rows = int(table_array[feature[FEATURE_TABLE], TABLE_ROWS])
                index = feature[FEATURE_INDEX]
                low, high = int(starts[index * batch]), int(starts[(index + 1) * batch])
                bad = first_outside(ids[low:high], 0, rows - 1)
                if bad >= 0:
                    return low + bad
        return -1


class _Group:
    """The features whose tables share ``fmt``: their kernels, or numpy."""

    def __init__(self, fmt: str | None, features: np.ndarray, ids_dtype: np.dtype) -> None:
        self.fmt, self.features = fmt, features
        self.compiled = fmt is None or fmt in ROW_DECODERS
        if not self.compiled:
            return
        self.kernels = collection_kernels(fmt)
        self.serial, self.parallel = (
            background.kernel(
                ("embedding_bag_collection", fmt, ids_dtype, parallel),
                f"embedding_bag_collection ({fmt or 'dense'} tables, {ids_dtype} ids"
                f"{', parallel' if parallel else ''})",
                _warm_up(fmt, ids_dtype, parallel),
            )
            for parallel in (False, True)
        )
        self.serial.request()
        self._entry = None
        """The compiled serial kernel, called without numba's dispatch (~0.6 us a call): every
        argument is of one type (the ids' and weights' layouts checked per call; the rest are
        made here, C-contiguous, of fixed dtypes)."""

    def __call__(self, table_array, tables, specs, ids, weights, unsigned, starts, out, parallel,
                 checks):  # fmt: skip
        """Pools the group's features; -1, or the first id of the features ``checks`` outside
        its table (checked by the kernel, when compiled, before it writes anything)."""
        if not (self.compiled and self.serial.ready):
            for feature in self.features:
                _numpy_feature(feature, tables, specs, ids, weights, starts, out)
            return -1
        serial, parallel_kernel = self.kernels
        args = (table_array, self.features, starts, ids, weights, unsigned, out, F16_TO_F32)
        if parallel:
            threads = get_num_threads()
            if threads > 1 and self.parallel.request() and try_parallel(threads):
                try:
                    return parallel_kernel(*args, threads, checks)
                finally:
                    PARALLEL_LAUNCH.release()
        if not (ids.flags.carray and weights.flags.carray):
            return serial(*args, 1, checks)  # numba types other layouts apart
        entry = self._entry
        if entry is None:
            entry = self._entry = compiled_entry(serial, (*args, 1, checks))
        return entry(*args, 1, checks)


def _numpy_feature(feature, tables, specs, ids, weights, starts, out) -> None:
    """One feature's bags through numpy: `numpy_pool_bags`, quantized rows decoded first."""
    t, width, column = feature[FEATURE_TABLE], feature[FEATURE_WIDTH], feature[FEATURE_COLUMN]
    batch = out.shape[0]
    index = feature[FEATURE_INDEX]
    bounds = starts[index * batch : (index + 1) * batch + 1]
    low, high = int(bounds[0]), int(bounds[-1])
    mine, table, spec = ids[low:high], tables[t], specs[t]
    weights = weights[low:high] if weights.size else None
    pad = None if feature[FEATURE_PAD] < 0 else int(feature[FEATURE_PAD])
    out_of_range, pool = int(feature[FEATURE_OUT_OF_RANGE]), int(feature[FEATURE_POOL])
    target = out[:, column : column + width]
    if spec.fmt is None:
        numpy_pool_bags(table, spec.kind, mine, False, bounds[:-1] - low, bounds[1:] - low,
                        weights, pool, pad, out_of_range, target)  # fmt: skip
        return
    vocab = table.shape[0]
    outside = (mine >= vocab) if mine.dtype.kind == "u" else (mine < 0) | (mine >= vocab)
    decoded = FORMATS[spec.fmt].dequantize(table[np.clip(mine, 0, vocab - 1).astype(np.int64)])
    if out_of_range == ZERO:  # an id outside adds nothing, whatever its weight
        decoded[outside] = 0
        if weights is not None:
            weights = np.where(outside, np.float32(0), weights)
    numpy_pool_bags(decoded, KIND_F32, mine, True, bounds[:-1] - low, bounds[1:] - low, weights,
                    pool, pad, out_of_range, target)  # fmt: skip


def _warm_up_check(ids_dtype: np.dtype):
    """A check of one feature's one id: numba compiles (or loads) `first_unchecked`."""
    tables = np.array([[0, 1, 1, KIND_F32]], np.int64)
    features = np.array([[0, 0, POOL_SUM, -1, ERROR, 0, 1]], np.int64)
    starts, ids = np.array([0, 1], np.int64), np.zeros(1, ids_dtype)
    return lambda: first_unchecked(tables, features, starts, ids, 1)


def _warm_up(fmt: str | None, ids_dtype: np.dtype, parallel: bool):
    """A call on one bag of one row: numba compiles (or loads) the kernel."""
    width = 1 if fmt is None else FORMATS[fmt].block_elements
    if fmt is None:
        table = np.zeros((1, 1), np.float32)
    else:
        table = np.zeros((1, row_bytes(FORMATS[fmt], width)), np.uint8)
    features = np.array([[0, 0, POOL_SUM, -1, ZERO, 0, width]], np.int64)
    starts, ids = np.array([0, 1], np.int64), np.zeros(1, ids_dtype)
    out = np.empty((1, width), np.float32)
    kernel = collection_kernels(fmt)[int(parallel)]

    def warm() -> None:
        tables = np.array([[table.ctypes.data, 1, table.shape[1], KIND_F32]], np.int64)
        kernel(tables, features, starts, ids, _UNWEIGHTED, False, out, F16_TO_F32, 1, features)

    return warm
