"""Pooled row lookups (`embedding_bag`, `embedding_bag_collection`: a single table's bags are
a collection of one feature): each bag's rows summed (each times its weight, when there are
weights), averaged or maxed in float32, in bag order, straight into the bag's output row;
parallel over samples. A float32 bag of ids known to be rows (no padding), weighted or not, is
summed in vector registers, up to 128 columns at a time (`_sum_tile`), and its output written once:
the same additions in the same order, without a load and a store of the output per row.

Tables are float32 rows, or bfloat16/float16 rows seen as uint16 and widened to float32 as
they are read (numba has no 16-bit floats), or quantized rows decoded one at a time: nothing
table-sized is made. `numpy_pool_bags` gives the kernels' results while they compile; there a
"positional" call pools rows already gathered (decoded quantized rows): position `j` reads
row `j`, and the ids only say which positions are padding.

Everything numba compiles lives in this one file (or in `compiled/`, whose every file stamps
the cache) on purpose: numba's on-disk cache checks only the source file of the function it
cached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import ml_dtypes
import numpy as np
from llvmlite import ir
from numba import carray, prange, types
from numba.core import cgutils
from numba.core.dispatcher import Dispatcher
from numba.extending import intrinsic

from ember.graph.ops.embedding_bag import bag_bounds

from . import background
from .compiled.cache import jit
from .compiled.decoders import decode_row
from .compiled.target import target_has
from .entry import compiled_entry
from .inputs import as_kernel_input
from .out_of_range import ERROR, ZERO

__all__ = [
    "KIND_BF16",
    "KIND_F16",
    "KIND_F32",
    "POOL_MAX",
    "POOL_MEAN",
    "POOL_SUM",
    "collection_kernels",
    "column_maxima",
    "first_unchecked",
    "numpy_pool_bags",
    "offset_bounds",
]

KIND_F32, KIND_BF16, KIND_F16 = 0, 1, 2
"""How a table's elements read as float32: as they are, or uint16 bits of bfloat16/float16."""

POOL_SUM, POOL_MEAN, POOL_MAX = 0, 1, 2

POOLS = {"sum": POOL_SUM, "mean": POOL_MEAN, "max": POOL_MAX}


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose bits are the uint32 `bits`."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@intrinsic
def _bits_of(typingctx, value):
    """The uint32 bits of the float32 `value`."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def _prefetch(typingctx, array, row, offset):
    """Ask for the cache line at byte ``offset`` of ``array[row]`` (a 2-D array)."""

    def codegen(context, builder, sig, args):
        arrayty = sig.args[0]
        data = context.make_array(arrayty)(context, builder, args[0])
        stride = builder.extract_value(data.strides, 0)
        base = builder.ptrtoint(data.data, ir.IntType(64))
        address = builder.add(builder.add(base, builder.mul(args[1], stride)), args[2])
        i8p = ir.IntType(8).as_pointer()
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [i8p] + [ir.IntType(32)] * 3)
        )
        i32 = ir.IntType(32)
        builder.call(fn, [builder.inttoptr(address, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, types.int64, types.int64), codegen


_AHEAD = 24
"""Rows asked for this many ids ahead: random rows come from memory, one at a time otherwise."""

_AHEAD_F32 = 12
"""The same for float32 rows of eight or more cache lines: 12 of them keep as many lines in
flight, and more ahead slowed rows from the cache (512-byte rows: 61 us a batch at 8 ahead,
62 at 12, 76 at 24; from memory, 100k rows, 439, 429 and 469 us)."""

_LANES = 16
"""float32 lanes of the vectors a bag's sum is held in (one AVX-512 register, or two AVX)."""

_AVX512 = target_has("avx512f")
"""32 vector registers of 16 lanes, against AVX's 16 of 8: room for a whole 128-column tile."""

ROW_FLOAT32, ROW_INT8, ROW_INT4 = 32, 8, 4
"""Rows `_sum_tile` reads: float32 values, or rowwise_int8 / rowwise_int4 rows (`ember.quant.
rowwise`: packed values, then scale and bias), decoded as their row decoders decode them."""


def _widest_tile(bits: int, weighted: bool) -> int:
    """Columns a bag's sum holds in registers at once. 128 are 16 registers of AVX (of its 16),
    or 8 of AVX-512's 32: with AVX they fit only where each row is added straight from memory
    (float32, unweighted); decoding or weighting a row needs registers of its own, and there
    the 16 sums spilled to the stack (cached int8 rows: 1.34-1.52x torch's time, against
    1.10-1.15x when the row is read in two tiles of 64 columns)."""
    return 128 if _AVX512 or (bits == ROW_FLOAT32 and not weighted) else 64


def _sum_tile(vectors: int, bits: int = ROW_FLOAT32, weighted: bool = False):
    """An intrinsic: ``out[column : column + vectors * 16]`` (at byte address ``out_row``)
    becomes the sum of the same columns of ``table`` rows ``ids[start:end]`` (the table at byte
    address ``table_at``, rows ``row_stride`` bytes apart and ``width`` values wide; every id a
    row), each lane added in float32 in bag order from 0, in registers: the output is written
    once, not once per row. A quantized row's values are decoded first, with the row decoder's
    operations (int8: one fma of the level, scale and bias; int4: the level times the fp16
    scale, plus the fp16 bias). ``weighted``: each row's values are first multiplied by its
    float32 weight, ``weights_at[j]`` (an address), and the product rounded, as
    `numpy_pool_bags` does. Each step also asks for the cache lines of the tile's columns of
    the row `_AHEAD` ids on (`_AHEAD_F32` for float32 rows), and for its byte ``tail`` unless
    that is negative (a quantized row's scale and bias, columns past the last tile): a fixed
    run of prefetches, not a loop, so that rows in cache cost little more than their adds."""
    vector = ir.VectorType(ir.FloatType(), _LANES)
    i64, i32, i8, i8p = ir.IntType(64), ir.IntType(32), ir.IntType(8), ir.IntType(8).as_pointer()

    @intrinsic
    def tile(
        typingctx, out_row, table_at, row_stride, ids, weights_at, start, end, column, width, tail
    ):
        def codegen(context, builder, sig, args):
            out_row, table_at, row_stride, ids_arg, weights_at, start, end, column, width, tail = (
                args
            )
            ids_array = context.make_array(sig.args[3])(context, builder, ids_arg)
            ids_count = builder.extract_value(ids_array.shape, 0)
            signed = sig.args[3].dtype.signed

            def pointer(address, offset, kind):
                return builder.inttoptr(builder.add(address, i64(offset)), kind.as_pointer())

            def row_at(position):
                value = builder.load(builder.gep(ids_array.data, [position]))
                if value.type.width < 64:
                    value = (builder.sext if signed else builder.zext)(value, i64)
                return builder.add(table_at, builder.mul(value, row_stride))

            def splat(x):
                one = builder.insert_element(ir.Constant(vector, None), x, i32(0))
                return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(i32, _LANES),
                                                                    [0] * _LANES))  # fmt: skip

            def values(row, v, scale, bias):
                """The row's 16 values from column ``column + 16 v``, as float32."""
                if bits == ROW_FLOAT32:
                    at = builder.add(row, builder.mul(column, i64(4)))
                    return builder.load(pointer(at, v * _LANES * 4, vector), align=4)
                if bits == ROW_INT8:
                    at = builder.add(row, column)
                    packed = builder.load(pointer(at, v * _LANES, ir.VectorType(i8, _LANES)),
                                          align=1)  # fmt: skip
                    fma = cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(vector, [vector] * 3),
                        f"llvm.fma.v{_LANES}f32",
                    )  # fmt: skip
                    return builder.call(fma, [builder.uitofp(packed, vector), scale, bias])
                at = builder.add(row, builder.lshr(column, i64(1)))
                pair = builder.load(pointer(at, v * _LANES // 2, ir.VectorType(i8, _LANES // 2)),
                                    align=1)  # fmt: skip
                low = builder.and_(pair, ir.Constant(pair.type, [15] * (_LANES // 2)))
                high = builder.lshr(pair, ir.Constant(pair.type, [4] * (_LANES // 2)))
                order = [k // 2 + (_LANES // 2) * (k % 2) for k in range(_LANES)]
                levels = builder.shuffle_vector(low, high, ir.Constant(ir.VectorType(i32, _LANES),
                                                                       order))  # fmt: skip
                return builder.fadd(builder.fmul(builder.uitofp(levels, vector), scale), bias)

            def nibbles(row, v, scale, bias):
                """Values of columns ``column + 16 v`` to ``+ 32`` of an int4 row, from its
                16 bytes widened once: the even columns (low nibbles), then the odd ones
                (high nibbles), each decoded as `values` decodes it."""
                at = builder.add(row, builder.lshr(column, i64(1)))
                packed = builder.load(pointer(at, v * _LANES // 2, ir.VectorType(i8, _LANES)),
                                      align=1)  # fmt: skip
                wide = builder.zext(packed, ir.VectorType(i32, _LANES))
                low = builder.and_(wide, ir.Constant(wide.type, [15] * _LANES))
                high = builder.lshr(wide, ir.Constant(wide.type, [4] * _LANES))
                return [builder.fadd(builder.fmul(builder.uitofp(levels, vector), scale), bias)
                        for levels in (low, high)]  # fmt: skip

            def scale_and_bias(row):
                if bits == ROW_FLOAT32:
                    return None, None
                if bits == ROW_INT8:
                    at = builder.add(row, width)
                    scale = builder.load(pointer(at, 0, ir.FloatType()), align=1)
                    return splat(scale), splat(
                        builder.load(pointer(at, 4, ir.FloatType()), align=1)
                    )
                at = builder.add(row, builder.lshr(width, i64(1)))
                half = ir.HalfType()
                scale = builder.fpext(builder.load(pointer(at, 0, half), align=1), ir.FloatType())
                bias = builder.fpext(builder.load(pointer(at, 2, half), align=1), ir.FloatType())
                return splat(scale), splat(bias)

            sums = [cgutils.alloca_once_value(builder, ir.Constant(vector, [0.0] * _LANES))
                    for _ in range(vectors)]  # fmt: skip
            # int4 rows of 32 columns or more: each 16 bytes widened once and split into even
            # and odd columns, summed apart and put back in order once per bag (a third
            # fewer operations a row than interleaving each 8 bytes' nibbles; same sums)
            split = bits == ROW_INT4 and vectors % 2 == 0
            prefetch = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0",
            )  # fmt: skip
            # the tile's own bytes of a row: a prefetch every 64 of them, unrolled, and one
            # at their last byte where rows are not aligned to cache lines
            first_byte = builder.udiv(builder.mul(column, i64(bits)), i64(8))
            span = vectors * _LANES * bits // 8
            offsets = [builder.add(first_byte, i64(k)) for k in range(0, span, 64)]
            last_byte = builder.add(first_byte, i64(span - 1))
            unaligned = builder.icmp_unsigned(
                "!=", builder.and_(builder.or_(builder.or_(table_at, row_stride), first_byte),
                                   i64(63)), i64(0))  # fmt: skip

            def ask(at):
                builder.call(prefetch, [builder.inttoptr(at, i8p), i32(0), i32(3), i32(1)])

            with cgutils.for_range(builder, builder.sub(end, start)) as loop:
                j = builder.add(start, loop.index)
                ahead = builder.add(j, i64(_AHEAD_F32 if bits == ROW_FLOAT32 else _AHEAD))
                with builder.if_then(builder.icmp_signed("<", ahead, ids_count), likely=True):
                    next_row = row_at(ahead)
                    for offset in offsets:
                        ask(builder.add(next_row, offset))
                    with builder.if_then(unaligned):
                        ask(builder.add(next_row, last_byte))
                    with builder.if_then(builder.icmp_signed(">=", tail, i64(0))):
                        ask(builder.add(next_row, tail))
                row = row_at(j)
                scale, bias = scale_and_bias(row)
                if weighted:
                    at = builder.add(weights_at, builder.mul(j, i64(4)))
                    weight = splat(builder.load(pointer(at, 0, ir.FloatType()), align=4))

                def add(total, x):
                    if weighted:
                        x = builder.fmul(x, weight)
                    builder.store(builder.fadd(builder.load(total), x), total)

                if split:
                    for v in range(0, vectors, 2):
                        low, high = nibbles(row, v, scale, bias)
                        add(sums[v], low)
                        add(sums[v + 1], high)
                else:
                    for v, total in enumerate(sums):
                        add(total, values(row, v, scale, bias))
            dst = builder.add(out_row, builder.mul(column, i64(4)))
            totals = [builder.load(total) for total in sums]
            if split:  # even and odd columns back in column order
                half = _LANES // 2
                for v in range(0, vectors, 2):
                    even, odd = totals[v], totals[v + 1]
                    for h in range(2):
                        order = [h * half + k // 2 + _LANES * (k % 2) for k in range(_LANES)]
                        totals[v + h] = builder.shuffle_vector(
                            even, odd, ir.Constant(ir.VectorType(i32, _LANES), order)
                        )
            for v, total in enumerate(totals):
                builder.store(total, pointer(dst, v * _LANES * 4, vector), align=4)
            return context.get_dummy_value()

        i = types.int64
        return types.void(i, i, i, ids, i, i, i, i, i, i), codegen

    return tile


def _bags_summer(bits: int, weighted: bool = False):
    """`_sum_tile`'s tiles over whole output rows: ``sum_bags(table, ids, weights, starts, base,
    first, stop, out, column, width, pool)`` sets ``out[b, column : column + width]``, for each
    bag ``b`` of ``first:stop`` (ids ``starts[base + b]`` to ``starts[base + b + 1]``), to the
    float32 sum, in bag order, of its rows (every id a row of ``table``; each times its weight
    in ``weights`` when ``weighted``), divided by the bag's size for a mean: 128, 64 or 16
    columns at a time in registers; bit for bit the row-at-a-time loop's sums. Quantized rows
    need a width of whole 16s; float32 ones add the last few columns alone.

    The loop over bags is in here, and touches the arrays only through addresses and scalar
    items: a call per bag, or a view per bag, would count references to every array on each
    bag (atomic operations, a quarter of the time of bags of cached rows)."""
    tile8, tile4, tile1 = (_sum_tile(v, bits, weighted) for v in (8, 4, 1))
    widest = _widest_tile(bits, weighted)

    @jit(nogil=True, inline="always")
    def sum_bags(table, ids, weights, starts, base, first, stop, out, column, width, pool):
        table_at, row_stride = table.ctypes.data, np.int64(table.strides[0])
        out_at, out_stride = out.ctypes.data + column * 4, np.int64(out.strides[0])
        weights_at = weights.ctypes.data
        # the row's last byte, asked for by the first tile: float32 columns past the last
        # tile, or a quantized row's scale and bias
        row_tail = table.shape[1] * table.itemsize - 1
        if bits == ROW_FLOAT32 and width % 16 == 0:
            row_tail = -1
        for b in range(first, stop):
            start, end = starts[base + b], starts[base + b + 1]
            out_row = out_at + b * out_stride
            c, tail = 0, row_tail
            while widest == 128 and c + 128 <= width:
                tile8(out_row, table_at, row_stride, ids, weights_at, start, end, c, width, tail)
                c, tail = c + 128, -1
            while c + 64 <= width:
                tile4(out_row, table_at, row_stride, ids, weights_at, start, end, c, width, tail)
                c, tail = c + 64, -1
            while c + 16 <= width:
                tile1(out_row, table_at, row_stride, ids, weights_at, start, end, c, width, tail)
                c, tail = c + 16, -1
            if bits == ROW_FLOAT32:
                for k in range(c, width):
                    total = np.float32(0.0)
                    for j in range(start, end):
                        x = table[np.int64(ids[j]), k]
                        total += weights[j] * x if weighted else x
                    out[b, column + k] = total
            if pool == POOL_MEAN and end - start > 1:
                n = np.float32(end - start)
                for k in range(column, column + width):
                    out[b, k] /= n

    return sum_bags


_sum_bags_f32 = _bags_summer(ROW_FLOAT32)
_sum_weighted_bags_f32 = _bags_summer(ROW_FLOAT32, weighted=True)
ROWS_SUMMED = {
    name: (_bags_summer(bits), _bags_summer(bits, weighted=True))
    for name, bits in (("rowwise_int8", ROW_INT8), ("rowwise_int4", ROW_INT4))
}
"""The quantized formats whose rows `_sum_tile` decodes itself, and their summers (unweighted,
weighted)."""


@jit(nogil=True, inline="always")
def _f16_to_f32_bits(h):
    """The float32 bits of the float16 bits `h` (exact: every float16 is a float32)."""
    sign = (h & 0x8000) << 16
    exponent = (h >> 10) & 0x1F
    mantissa = h & 0x3FF
    if exponent == 0x1F:  # inf, nan (payload kept)
        return np.uint32(sign | 0x7F800000 | (mantissa << 13))
    if exponent != 0:
        return np.uint32(sign | ((exponent + 112) << 23) | (mantissa << 13))
    if mantissa == 0:
        return np.uint32(sign)
    shifted = 113  # a subnormal: normalize it
    while (mantissa & 0x400) == 0:
        mantissa <<= 1
        shifted -= 1
    return np.uint32(sign | (shifted << 23) | ((mantissa & 0x3FF) << 13))


@jit(nogil=True)
def _offset_bounds(offsets, count, include_last):
    """``(valid, bounds)``: where each of the bags ``offsets`` describe over ``count`` ids
    starts, then where the last one ends (int64, one more than the bags; ``[0]`` for none);
    not valid where `bag_bounds` raises (not starting at 0, decreasing, past the ids)."""
    n = offsets.shape[0]
    bags = max(n - 1, 0) if include_last else n
    bounds = np.zeros(bags + 1, np.int64)
    if n == 0:
        return not include_last, bounds
    if offsets[0] != 0:
        return False, bounds
    for b in range(1, n):
        if offsets[b] < offsets[b - 1]:
            return False, bounds
    last = np.int64(offsets[n - 1])
    if last < 0 or last > count:  # negative: an unsigned offset beyond int64
        return False, bounds
    for b in range(bags):
        bounds[b] = offsets[b]
    if bags:
        bounds[bags] = offsets[bags] if include_last else count
    return True, bounds


def offset_bounds(offsets: np.ndarray, count: int, include_last: bool) -> np.ndarray:
    """`bag_bounds` in one compiled pass (numpy's takes ~7 us of a call): bag ``b`` is
    ``[bounds[b], bounds[b + 1])`` of the int64 ``bounds`` (bags follow each other; ``[0]``
    for no bag); bad offsets raise `bag_bounds`' error.

    >>> offset_bounds(np.array([0, 2, 2], np.int32), 5, False).tolist()
    [0, 2, 2, 5]
    >>> offset_bounds(np.array([0, 2, 2], np.int32), 5, True).tolist()
    [0, 2, 2]
    """
    if offsets.ndim != 1 or not offsets.flags.carray:
        offsets = as_kernel_input(np.ascontiguousarray(offsets.reshape(-1)))
    entry = _BOUNDS_ENTRIES.get(offsets.dtype)
    if entry is None and offsets.dtype.isnative:
        checker = _offsets_checker(offsets.dtype)
        if checker.ready or checker.request():
            entry = _BOUNDS_ENTRIES[offsets.dtype] = compiled_entry(
                _offset_bounds, (offsets, count, include_last)
            )
    if entry is not None:
        valid, bounds = entry(offsets, count, bool(include_last))
        if valid:
            return bounds
    starts, ends = bag_bounds(offsets, count, include_last)  # raises for bad offsets
    return np.append(starts, ends[-1:]) if starts.size else np.zeros(1, np.int64)


_BOUNDS_ENTRIES: dict[np.dtype, Callable] = {}
"""`_offset_bounds` compiled for offsets of each dtype (aligned, writeable, C-contiguous),
called without numba's dispatch."""


@functools.cache
def _offsets_checker(dtype: np.dtype) -> background.Kernel:
    return background.kernel(
        ("embedding_bag offsets", dtype),
        f"embedding_bag offsets ({dtype})",
        functools.partial(_offset_bounds, np.zeros(1, dtype), 0, False),
    )


# ---- collections: many tables' bags in one call ---------------------------------------------
# Tables are passed by address (`TABLE_*` columns of an int64 array) and seen as arrays inside
# the kernel, so one compiled kernel serves any number of tables of any widths.

TABLE_ADDRESS, TABLE_ROWS, TABLE_ROW_ELEMENTS, TABLE_KIND = range(4)
"""Columns of a collection's table array: a table's first byte, rows, elements (bytes, for a
quantized one) per row, and `KIND_*`."""

(FEATURE_INDEX, FEATURE_TABLE, FEATURE_POOL, FEATURE_PAD, FEATURE_OUT_OF_RANGE, FEATURE_COLUMN,
 FEATURE_WIDTH) = range(7)  # fmt: skip
"""Columns of a collection's feature array: the feature's row in the lengths, its table's
index, `POOL_*`, its padding id (-1: none), ZERO or CLAMP (or ERROR: every id was checked to be
a row), its first column in the output and its width."""


def _pointer_to(dtype: types.Type):
    """An intrinsic turning an int64 address into a pointer to ``dtype``, for `carray`."""

    @intrinsic
    def pointer(typingctx, address):
        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

        return types.CPointer(dtype)(types.int64), codegen

    return pointer


_f32_pointer, _u16_pointer, _u8_pointer = (
    _pointer_to(t) for t in (types.float32, types.uint16, types.uint8)
)


@jit(nogil=True)
def first_unchecked(tables, features, starts, ids, batch):
    """The position of the first id outside its table among the features marked ERROR (in
    feature order), or -1: whether any is outside found first, by a loop that vectorizes (over
    a slice: an index that might be negative would keep numba's wraparound in the loop, and
    the loop scalar). An unsigned id beyond int64 arrives negative: outside."""
    for f in range(features.shape[0]):
        if features[f, FEATURE_OUT_OF_RANGE] != ERROR:
            continue
        top = tables[features[f, FEATURE_TABLE], TABLE_ROWS] - 1
        index = features[f, FEATURE_INDEX]
        low, high = starts[index * batch], starts[(index + 1) * batch]
        mine = ids[low:high]
        outside = np.int64(0)  # negative once an id is: x < 0, or top - x < 0
        for j in range(mine.shape[0]):
            x = np.int64(mine[j])
            outside |= x | (top - x)
        if outside >= 0:
            continue
        for j in range(mine.shape[0]):
            x = np.int64(mine[j])
            if x < 0 or x > top:
                return low + j
    return -1


@jit(nogil=True, inline="always")
def _row_of(x, rows, unsigned, out_of_range):
    """The row the int64 ``x`` reads, or -1 for a zero row. An unsigned id too large for int64
    arrives negative and counts as above the table."""
    if x >= 0 and x < rows:
        return x
    if out_of_range == ZERO or rows == 0:
        return np.int64(-1)
    return np.int64(0) if x < 0 and not unsigned else rows - 1


@jit(nogil=True, inline="always")
def _prefetch_id(table, ids, ahead, limit):
    """Ask for the row of ``ids[ahead]`` (when it is one, before ``limit``)."""
    if ahead < limit:
        r = np.int64(ids[ahead])
        if r >= 0 and r < table.shape[0]:
            for line in range(0, table.shape[1] * table.itemsize, 64):
                _prefetch(table, r, np.int64(line))


@jit(nogil=True, inline="always")
def _prefetch_first(table, ids, low, ahead, limit):
    """Ask for the rows of a feature's first ``ahead`` ids from ``low`` at once: the rows that
    no step before them asked for (all of a small batch's)."""
    for j in range(low, min(low + ahead, limit)):
        _prefetch_id(table, ids, j, limit)


@jit(nogil=True, inline="always")
def _add_row(dst, row, kind, pool, first):
    """Pool one float32 (or `kind` 16-bit) row into ``dst``."""
    width = dst.shape[0]
    if pool == POOL_MAX:
        for k in range(width):
            x = _load_at(row, k, kind)
            if first or _takes_over(x, dst[k]):
                dst[k] = x
    elif kind == KIND_F32:
        for k in range(width):
            dst[k] += row[k]
    else:
        for k in range(width):
            dst[k] += _load_at(row, k, kind)


@jit(nogil=True, inline="always")
def _add_weighted_row(dst, row, kind, w):
    """Add ``w`` times one float32 (or `kind` 16-bit) row to ``dst`` (a sum's term, rounded
    to float32 before it is added, as `numpy_pool_bags` rounds it)."""
    if kind == KIND_F32:  # its own loop, which vectorizes
        for k in range(dst.shape[0]):
            dst[k] += w * row[k]
    else:
        for k in range(dst.shape[0]):
            dst[k] += w * _load_at(row, k, kind)


@jit(nogil=True, inline="always")
def _takes_over(x, best):
    """Whether `x` replaces `best` in a max, as IEEE 754-2019's `maximum` orders them, so that
    the result is the same whatever the order of the rows, and shards and backends agree: a
    larger value, the first NaN, which then stays (NaN anywhere in a bag makes its column NaN,
    not only where it comes first as in torch's `embedding_bag`), or +0 over -0 (XLA's order;
    torch keeps whichever zero comes first). Without branches, so that the loop vectorizes:
    equal floats whose bits differ are -0 and +0, and -0's bits are the greater."""
    return (best == best) & ((not x <= best) | ((x == best) & (_bits_of(best) > _bits_of(x))))


@jit(nogil=True, inline="always")
def _load_at(row, k, kind):
    if kind == KIND_F32:
        return np.float32(row[k])
    bits = np.uint32(row[k])
    if kind == KIND_BF16:
        return _f32_from_bits(np.uint32(bits << 16))
    return _f32_from_bits(_f16_to_f32_bits(bits))


@jit(nogil=True, inline="always")
def _add_zero_row(dst, pool, first):
    """A zero row: adds nothing, is a candidate +0 for max."""
    if pool == POOL_MAX:
        zero = np.float32(0.0)
        for k in range(dst.shape[0]):
            if first or _takes_over(zero, dst[k]):
                dst[k] = zero


@jit(nogil=True, inline="always")
def _finish(dst, pool, count):
    if pool == POOL_MEAN and count > 1:
        n = np.float32(count)
        for k in range(dst.shape[0]):
            dst[k] /= n


@jit(nogil=True)
def _collect_dense_feature(table, kind, feature, starts, base, ids, weights, unsigned, out, first,
                           stop):  # fmt: skip
    """Bags ``first:stop`` of one feature over a dense table; each row times its weight when
    there are ``weights`` (one per id; none: an empty array)."""
    pool, pad, out_of_range = feature[FEATURE_POOL], feature[FEATURE_PAD], feature[
        FEATURE_OUT_OF_RANGE]  # fmt: skip
    column, width = feature[FEATURE_COLUMN], feature[FEATURE_WIDTH]
    rows, limit = table.shape[0], starts[base + stop]
    weighted = weights.shape[0] > 0
    _prefetch_first(table, ids, starts[base + first], _AHEAD_F32, limit)
    if kind == KIND_F32 and pool != POOL_MAX and pad < 0 and out_of_range == ERROR:
        mine = ids[:limit]  # prefetches stay within this feature's ids
        if weighted:
            _sum_weighted_bags_f32(table, mine, weights, starts, base, first, stop, out, column,
                                   width, pool)  # fmt: skip
        else:
            _sum_bags_f32(table, mine, weights, starts, base, first, stop, out, column, width,
                          pool)  # fmt: skip
        return
    for b in range(first, stop):
        dst = out[b, column : column + width]
        dst[:] = 0.0
        count = 0
        for j in range(starts[base + b], starts[base + b + 1]):
            x = np.int64(ids[j])
            if pad >= 0 and x == pad:
                continue
            _prefetch_id(table, ids, j + _AHEAD_F32, limit)
            r = _row_of(x, rows, unsigned, out_of_range)
            if r < 0:
                _add_zero_row(dst, pool, count == 0)
            elif weighted:
                _add_weighted_row(dst, table[r], kind, weights[j])
            else:
                _add_row(dst, table[r], kind, pool, count == 0)
            count += 1
        _finish(dst, pool, count)


@jit(nogil=True)
def _collect_dense_span(tables, features, starts, ids, weights, unsigned, out, f16, first, stop):
    """Samples ``first:stop`` of every feature over dense tables (float32, or 16-bit kinds)."""
    batch = out.shape[0]
    for f in range(features.shape[0]):
        t = features[f, FEATURE_TABLE]
        address, rows = tables[t, TABLE_ADDRESS], tables[t, TABLE_ROWS]
        shape, kind = (rows, tables[t, TABLE_ROW_ELEMENTS]), tables[t, TABLE_KIND]
        base = features[f, FEATURE_INDEX] * batch
        if kind == KIND_F32:
            table32 = carray(_f32_pointer(address), shape)
            _collect_dense_feature(table32, kind, features[f], starts, base, ids, weights,
                                   unsigned, out, first, stop)  # fmt: skip
        else:
            table16 = carray(_u16_pointer(address), shape)
            _collect_dense_feature(table16, kind, features[f], starts, base, ids, weights,
                                   unsigned, out, first, stop)  # fmt: skip


@jit(nogil=True)
def _collect_dense_serial(tables, features, starts, ids, weights, unsigned, out, f16, chunks,
                         checks):  # fmt: skip
    bad = first_unchecked(tables, checks, starts, ids, out.shape[0])
    if bad >= 0:
        return bad
    _collect_dense_span(tables, features, starts, ids, weights, unsigned, out, f16, 0,
                        out.shape[0])  # fmt: skip
    return -1


@jit(nogil=True, parallel=True)
def _collect_dense_parallel(tables, features, starts, ids, weights, unsigned, out, f16, chunks,
                            checks):  # fmt: skip
    bad = first_unchecked(tables, checks, starts, ids, out.shape[0])
    if bad >= 0:
        return bad
    batch = out.shape[0]
    for c in prange(chunks):
        _collect_dense_span(tables, features, starts, ids, weights, unsigned, out, f16,
                            c * batch // chunks, (c + 1) * batch // chunks)  # fmt: skip
    return -1


@functools.cache
def collection_kernels(fmt: str | None) -> tuple[Dispatcher, Dispatcher]:
    """(serial, parallel) collection kernels for dense tables (``fmt`` None) or tables of the
    registry format ``fmt``, each ``kernel(tables, features, starts, ids, weights, unsigned, out,
    f16, chunks, checks)``: every feature's bags, samples split into ``chunks`` (parallel), each
    row times its weight when there are ``weights`` (float32, one per id; none: empty); -1. The
    features ``checks`` (rows of the same columns; none: nothing checked) are checked first
    (`first_unchecked`), in the same call, and the position of the first id outside its
    table is returned instead, before anything is written.

    A quantized row is decoded by its format's row decoder (`decode_row`) into a float32
    buffer of one row, then pooled from there: nothing larger than a row is made. Rowwise
    int8/int4 rows of checked ids (no padding, sum or mean, widths of whole 16s) are decoded
    and summed in registers instead (`ROWS_SUMMED`), to the same bits. ``fmt`` is a constant
    of these closures, so each compiles its own format's decoder alone.
    """
    if fmt is None:
        return _collect_dense_serial, _collect_dense_parallel
    fused = fmt in ROWS_SUMMED
    # typed in every kernel, called if fused
    sum_bags, sum_weighted_bags = ROWS_SUMMED.get(fmt, (_sum_bags_f32, _sum_weighted_bags_f32))

    @jit(nogil=True)
    def span(tables, features, starts, ids, weights, unsigned, out, f16, first, stop):
        batch = out.shape[0]
        weighted = weights.shape[0] > 0
        for f in range(features.shape[0]):
            feature, t = features[f], features[f, FEATURE_TABLE]
            rows, row_bytes = tables[t, TABLE_ROWS], tables[t, TABLE_ROW_ELEMENTS]
            table = carray(_u8_pointer(tables[t, TABLE_ADDRESS]), (rows, row_bytes))
            pool, pad = feature[FEATURE_POOL], feature[FEATURE_PAD]
            column, width = feature[FEATURE_COLUMN], feature[FEATURE_WIDTH]
            base = feature[FEATURE_INDEX] * batch
            limit = starts[base + stop]
            checked = feature[FEATURE_OUT_OF_RANGE] == ERROR
            _prefetch_first(table, ids, starts[base + first], _AHEAD, limit)
            if fused and checked and pool != POOL_MAX and pad < 0 and width % _LANES == 0:
                mine = ids[:limit]  # prefetches stay within this feature's ids
                if weighted:
                    sum_weighted_bags(table, mine, weights, starts, base, first, stop, out,
                                      column, width, pool)  # fmt: skip
                else:
                    sum_bags(table, mine, weights, starts, base, first, stop, out, column, width,
                             pool)  # fmt: skip
                continue
            decoded = np.empty(width, np.float32)
            for b in range(first, stop):
                dst = out[b, column : column + width]
                dst[:] = 0.0
                count = 0
                for j in range(starts[base + b], starts[base + b + 1]):
                    x = np.int64(ids[j])
                    if pad >= 0 and x == pad:
                        continue
                    _prefetch_id(table, ids, j + _AHEAD, limit)
                    r = _row_of(x, rows, unsigned, feature[FEATURE_OUT_OF_RANGE])
                    if r < 0:
                        _add_zero_row(dst, pool, count == 0)
                    else:
                        decode_row(fmt, table[r], decoded, f16)
                        if weighted:
                            _add_weighted_row(dst, decoded, KIND_F32, weights[j])
                        else:
                            _add_row(dst, decoded, KIND_F32, pool, count == 0)
                    count += 1
                _finish(dst, pool, count)

    @jit(nogil=True)
    def serial(tables, features, starts, ids, weights, unsigned, out, f16, chunks, checks):
        bad = first_unchecked(tables, checks, starts, ids, out.shape[0])
        if bad >= 0:
            return bad
        span(tables, features, starts, ids, weights, unsigned, out, f16, 0, out.shape[0])
        return -1

    @jit(nogil=True, parallel=True)
    def parallel(tables, features, starts, ids, weights, unsigned, out, f16, chunks, checks):
        bad = first_unchecked(tables, checks, starts, ids, out.shape[0])
        if bad >= 0:
            return bad
        batch = out.shape[0]
        for c in prange(chunks):
            span(tables, features, starts, ids, weights, unsigned, out, f16, c * batch // chunks,
                 (c + 1) * batch // chunks)  # fmt: skip
        return -1

    return serial, parallel


def numpy_pool_bags(
    table: np.ndarray,
    kind: int,
    ids: np.ndarray,
    positional: bool,
    starts: np.ndarray,
    ends: np.ndarray,
    weights: np.ndarray | None,
    pool: int,
    padding_idx: int | None,
    out_of_range: int,
    out: np.ndarray,
) -> None:
    """The kernels' results through numpy (the same float32 operations in the same order),
    while they compile."""
    vocab = table.shape[0]
    for b, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        bag = ids[start:end]
        keep = np.ones(bag.shape, bool) if padding_idx is None else bag != padding_idx
        if positional:
            rows = _as_float32(table[start:end][keep], kind)
        else:
            outside = (bag >= vocab) if bag.dtype.kind == "u" else (bag < 0) | (bag >= vocab)
            index = np.clip(bag, 0, max(vocab - 1, 0)).astype(np.int64)[keep]
            rows = _as_float32(table[index], kind)
        if weights is not None:
            rows = weights[start:end][keep][:, None] * rows
        if out_of_range == ZERO and not positional:  # adds nothing, whatever its weight
            rows[outside[keep]] = 0
        if pool == POOL_MAX:
            out[b] = column_maxima(rows) if len(rows) else 0
            continue
        total = np.zeros(out.shape[1], np.float32)
        for row in rows:  # in bag order
            total += row
        out[b] = total / np.float32(len(rows)) if pool == POOL_MEAN and len(rows) > 1 else total


def column_maxima(rows: np.ndarray) -> np.ndarray:
    """The maxima of `rows` over axis 0 in the kernels' order (`_takes_over`: IEEE 754-2019's
    `maximum`), whatever the rows' order: NaN anywhere gives NaN, and +0 is above -0 (numpy's
    max keeps whichever zero it meets last)."""
    best = rows.max(axis=0)
    positive_zero = ((rows == 0) & ~np.signbit(rows)).any(axis=0)
    best[(best == 0) & positive_zero] = 0.0
    return best


def _as_float32(rows: np.ndarray, kind: int) -> np.ndarray:
    if kind == KIND_BF16:
        return rows.view(ml_dtypes.bfloat16).astype(np.float32)
    if kind == KIND_F16:
        return rows.view(np.float16).astype(np.float32)
    return rows.astype(np.float32)
