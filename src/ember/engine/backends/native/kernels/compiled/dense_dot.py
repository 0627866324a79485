"""The dense head's compiled kernels (`kernels.rowdot` is their host side): tiles of rows and
tokens whose dot products are summed in `dot_lanes`' one order, and the spans, serial and
parallel kernels that run them. bfloat16 rows are widened to float32 exactly as they are loaded
(a shift of their bits); float16 rows, a pair at a time, into a buffer of the thread's.
`decoded_rowdot` runs `rowdot_span` over rows it has just decoded."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .cache import jit
from .dot_lanes import F32 as _F32
from .dot_lanes import LANES
from .dot_lanes import VECTOR as _VECTOR
from .dot_lanes import multiply_add as _multiply_add
from .dot_lanes import sum_lanes as _sum_lanes

__all__ = [
    "ROW_BLOCK",
    "rowdot_parallel",
    "rowdot_serial",
    "rowdot_span",
    "widen_bfloat16",
    "widen_float16",
]

ROW_BLOCK = 64
"""Rows a thread takes at a time."""

TOKEN_GROUP = 4
"""Tokens dotted with a pair of rows at once: each loaded row element serves four tokens, each
token element two rows."""

CHUNK = 1024
"""Elements of the width a tile takes at a time from `CHUNK_MIN_TOKENS` tokens: a float32 row
pair and token group of 1024 are 24 KiB, in the first-level cache while the tile runs."""

CHUNK_GROUPS = 16
"""Token groups whose lane sums a span carries between chunks at once: 64 tokens (their
sums, 512 KiB for 64 rows, stay in the second-level cache; more tokens are more passes)."""

CHUNK_MIN_TOKENS = 32
"""Grouped tokens from which a span's row pairs run a chunk of the width at a time: 128256 x
4096, two threads, 4-18 % faster at 32 and 64 tokens (float32 and bfloat16), slower at 8 (the
rows then stream from memory; chunks break the stream), level at 16; one thread, 2048 rows,
0.86 / 0.88 / 0.85 of the time at 64 / 512 / 2048 tokens."""


def _load(builder: ir.IRBuilder, row: ir.Value, index: ir.Value, pointer: ir.Type) -> ir.Value:
    """The lanes of `row` from element `index` on, aligned only as their elements are (rows
    start anywhere)."""
    return builder.load(builder.bitcast(builder.gep(row, [index]), pointer), align=2)


def _widened(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """float32 values as they are, bfloat16 ones (16-bit integers, lanes or one) widened
    exactly: their bits followed by 16 zeros."""
    kind = value.type.element if isinstance(value.type, ir.VectorType) else value.type
    if kind != ir.IntType(16):
        return value
    if isinstance(value.type, ir.VectorType):
        wide, real = ir.VectorType(ir.IntType(32), LANES), _VECTOR
        sixteen = ir.Constant(wide, [16] * LANES)
    else:
        wide, real, sixteen = ir.IntType(32), _F32, ir.Constant(ir.IntType(32), 16)
    return builder.bitcast(builder.shl(builder.zext(value, wide), sixteen), real)


def _tile_rows(context, builder, sig, args, rows: int, tokens: int):
    """``(w_rows, x_rows, width)``: pointers to the tile's rows of ``w`` (argument 0, from row
    argument 1) and of ``x`` (argument 2, from token argument 3), and their width."""
    w_array = context.make_array(sig.args[0])(context, builder, args[0])
    x_array = context.make_array(sig.args[2])(context, builder, args[2])
    width = builder.extract_value(w_array.shape, 1)
    intp = width.type

    def starts(data, first, count):
        return [builder.gep(data, [builder.mul(builder.add(first, intp(i)), width)])
                for i in range(count)]  # fmt: skip

    return starts(w_array.data, args[1], rows), starts(x_array.data, args[3], tokens), width


def _lane_steps(builder, w_rows, x_rows, sums, start, stop, bfloat16: bool) -> None:
    """Each ``sums[i * len(x_rows) + k]`` (running lane sums, in allocas) takes the products
    of row ``i`` and token ``k`` over elements ``[start, stop)``, a lane vector at a time."""
    intp = start.type
    pointer = _VECTOR.as_pointer()
    w_pointer = ir.VectorType(ir.IntType(16), LANES).as_pointer() if bfloat16 else pointer
    pairs = [(i, k) for i in range(len(w_rows)) for k in range(len(x_rows))]
    with cgutils.for_range_slice(builder, start, stop, intp(LANES), intp) as (i, _):
        ws = [_widened(builder, _load(builder, p, i, w_pointer)) for p in w_rows]
        xs = [_load(builder, p, i, pointer) for p in x_rows]
        for s, (a, b) in zip(sums, pairs, strict=True):
            builder.store(_multiply_add(builder, xs[b], ws[a], builder.load(s)), s)


def _ended(builder, w_rows, x_rows, lanes: list, width) -> list:
    """The dot products whose running lane sums are `lanes` (over the width's whole lane
    vectors): lanes added in their tree, then the tail elements in turn."""
    intp = width.type
    totals = [cgutils.alloca_once_value(builder, _sum_lanes(builder, v)) for v in lanes]
    full = builder.sub(width, builder.srem(width, intp(LANES)))
    pairs = [(i, k) for i in range(len(w_rows)) for k in range(len(x_rows))]
    with cgutils.for_range_slice(builder, full, width, intp(1), intp) as (i, _):
        for s, (a, b) in zip(totals, pairs, strict=True):
            xi = builder.load(builder.gep(x_rows[b], [i]))
            wi = _widened(builder, builder.load(builder.gep(w_rows[a], [i])))
            builder.store(_multiply_add(builder, xi, wi, builder.load(s)), s)
    return [builder.load(s) for s in totals]


def _readable(w, x) -> bool:
    """Whether the tiles read these matrices: C-contiguous, float32 tokens, float32 or
    bfloat16 (as uint16) rows."""
    return (
        w.layout == "C"
        and x.layout == "C"
        and x.dtype == types.float32
        and w.dtype in (types.float32, types.uint16)
    )


def _stored_sums(context, builder, sig, args, at: int, count: int) -> list:
    """Pointers to the ``count`` lane vectors at ``sums[slot:]`` (array argument ``at``, slot
    argument ``at + 1``)."""
    sums_p = context.make_array(sig.args[at])(context, builder, args[at]).data
    slot = args[at + 1]
    return [builder.bitcast(builder.gep(sums_p, [builder.add(slot, slot.type(n * LANES))]),
                            _VECTOR.as_pointer()) for n in range(count)]  # fmt: skip


def _dot_tile(rows: int, tokens: int):
    """An intrinsic ``(w, r, x, t) -> tuple of rows * tokens float32``: the dot products of rows
    ``w[r : r + rows]`` with tokens ``x[t : t + tokens]`` (row-major order), each in the one
    fixed order of the module docstring. ``w`` and ``x`` are C-contiguous float32 matrices of
    one width."""

    @intrinsic
    def dot_tile(typingctx, w, r, x, t):
        if not _readable(w, x):
            return None
        result = types.UniTuple(types.float32, rows * tokens)

        def codegen(context, builder, sig, args):
            w_rows, x_rows, width = _tile_rows(context, builder, sig, args, rows, tokens)
            zeros = ir.Constant(_VECTOR, [0.0] * LANES)
            sums = [cgutils.alloca_once_value(builder, zeros) for _ in range(rows * tokens)]
            full = builder.sub(width, builder.srem(width, width.type(LANES)))
            _lane_steps(builder, w_rows, x_rows, sums, width.type(0), full, w.dtype == types.uint16)
            lanes = [builder.load(s) for s in sums]
            values = _ended(builder, w_rows, x_rows, lanes, width)
            return context.make_tuple(builder, result, values)

        return result(w, r, x, t), codegen

    return dot_tile


def _chunk_tile(rows: int, tokens: int):
    """An intrinsic ``(w, r, x, t, k0, k1, sums, slot, fresh)``: `_dot_tile`'s running lane
    sums carried over elements ``[k0, k1)`` (whole lane vectors), starting from
    ``sums[slot:]`` (from zero when ``fresh``) and stored back there; `_finish_tile` ends
    them. Each lane takes its elements in the same turn as in `_dot_tile`, so a dot product
    done a chunk of the width at a time has its bits."""

    @intrinsic
    def chunk_tile(typingctx, w, r, x, t, k0, k1, sums, slot, fresh):
        if not _readable(w, x):
            return None

        def codegen(context, builder, sig, args):
            w_rows, x_rows, _ = _tile_rows(context, builder, sig, args, rows, tokens)
            stored = _stored_sums(context, builder, sig, args, 6, rows * tokens)
            zeros = ir.Constant(_VECTOR, [0.0] * LANES)
            sums = [cgutils.alloca_once(builder, _VECTOR) for _ in stored]
            for s, p in zip(sums, stored, strict=True):  # a fresh tile reads none of it
                builder.store(builder.select(args[8], zeros, builder.load(p, align=4)), s)
            _lane_steps(builder, w_rows, x_rows, sums, args[4], args[5], w.dtype == types.uint16)
            for s, p in zip(sums, stored, strict=True):
                builder.store(builder.load(s), p, align=4)
            return context.get_dummy_value()

        return types.none(w, r, x, t, k0, k1, sums, slot, fresh), codegen

    return chunk_tile


def _finish_tile(rows: int, tokens: int):
    """An intrinsic ``(w, r, x, t, sums, slot) -> tuple of rows * tokens float32``: the dot
    products whose lane sums `_chunk_tile` carried over the width's whole lane vectors, each
    ended as `_dot_tile` ends it (lanes added in their tree, then the tail elements)."""

    @intrinsic
    def finish_tile(typingctx, w, r, x, t, sums, slot):
        if not _readable(w, x):
            return None
        result = types.UniTuple(types.float32, rows * tokens)

        def codegen(context, builder, sig, args):
            w_rows, x_rows, width = _tile_rows(context, builder, sig, args, rows, tokens)
            stored = _stored_sums(context, builder, sig, args, 4, rows * tokens)
            lanes = [builder.load(p, align=4) for p in stored]
            values = _ended(builder, w_rows, x_rows, lanes, width)
            return context.make_tuple(builder, result, values)

        return result(w, r, x, t, sums, slot), codegen

    return finish_tile


_dot_1x1 = _dot_tile(1, 1)
_dot_1x4 = _dot_tile(1, TOKEN_GROUP)
_dot_2x1 = _dot_tile(2, 1)
_dot_2x4 = _dot_tile(2, TOKEN_GROUP)
_chunk_2x4, _finish_2x4 = _chunk_tile(2, TOKEN_GROUP), _finish_tile(2, TOKEN_GROUP)


@intrinsic
def _float_from_bits(typingctx, bits):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _F32)

    return types.float32(types.uint32), codegen


@intrinsic
def _bits_of_float(typingctx, value):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@jit(inline="always")
def widen_bfloat16(bits):
    """A bfloat16 (its 16 bits) as float32, exactly: its bits followed by 16 zeros."""
    return _float_from_bits(np.uint32(bits) << np.uint32(16))


@jit(inline="always")
def widen_float16(bits):
    """A float16 (its 16 bits) as float32, exactly, subnormals included; a NaN keeps its sign
    and payload (as numpy's ``astype(float32)`` does)."""
    h = np.uint32(bits)
    magnitude = (h & np.uint32(0x7FFF)) << np.uint32(13)
    exponent = magnitude & np.uint32(0x0F800000)
    out = magnitude + np.uint32(0x38000000)  # rebias the exponent: (127 - 15) << 23
    if exponent == np.uint32(0x0F800000):  # inf or NaN: the largest exponent
        out += np.uint32(0x38000000)
    elif exponent == 0:  # zero or subnormal: renormalized by a float subtraction (exact)
        out = _bits_of_float(
            _float_from_bits(out + np.uint32(0x00800000)) - _float_from_bits(np.uint32(0x38800000))
        )
    return _float_from_bits(out | ((h & np.uint32(0x8000)) << np.uint32(16)))


def _widened_rows(table, r, count, buffer):
    """Rows ``table[r : r + count]`` as a matrix the tiles read and the index of the first: the
    table itself when it is float32 or bfloat16 (as uint16), float16 rows (as int16) widened
    into ``buffer``."""


@overload(_widened_rows, inline="always")
def _widened_rows_impl(table, r, count, buffer):
    if table.dtype in (types.float32, types.uint16):  # the tiles widen bfloat16 as they read
        return lambda table, r, count, buffer: (table, r)

    def widened(table, r, count, buffer):
        for i in range(count):
            source, target = table[r + i], buffer[i]
            for j in range(source.shape[0]):
                target[j] = widen_float16(source[j])
        return buffer, 0

    return widened


def _buffer_rows(table):
    """Rows of the buffer a span widens ``table``'s rows into: ``ROW_BLOCK`` for float16
    (int16) tables, none for the others."""


@overload(_buffer_rows, inline="always")
def _buffer_rows_impl(table):
    rows = ROW_BLOCK if table.dtype == types.int16 else 0
    return lambda table: rows


@jit(nogil=True)
def _chunked_pairs(hidden, w, shift, out, start, stop, grouped, full):
    """`rowdot_span`'s row pairs ``[start, stop)`` against its grouped tokens, the width a
    `CHUNK` at a time so that a chunk of a token group and of a row pair stay in the
    first-level cache (a 4096-wide float32 row pair and token group are 96 KiB); each
    pair's lane sums wait in ``sums`` between chunks, for `CHUNK_GROUPS` token groups at a
    time (at most 512 KiB for a span of 64 rows)."""
    groups = grouped // TOKEN_GROUP
    pairs = (stop - start) // 2
    tile = 2 * TOKEN_GROUP * LANES
    sums = np.empty(pairs * CHUNK_GROUPS * tile, np.float32)
    for g0 in range(0, groups, CHUNK_GROUPS):
        g1 = min(g0 + CHUNK_GROUPS, groups)
        for k0 in range(0, full, CHUNK):
            k1 = min(k0 + CHUNK, full)
            for g in range(g0, g1):
                for p in range(pairs):
                    _chunk_2x4(w, shift + start + 2 * p, hidden, g * TOKEN_GROUP, k0, k1, sums,
                               (p * CHUNK_GROUPS + g - g0) * tile, k0 == 0)  # fmt: skip
        for g in range(g0, g1):
            t = g * TOKEN_GROUP
            for p in range(pairs):
                r = start + 2 * p
                d = _finish_2x4(w, shift + r, hidden, t, sums, (p * CHUNK_GROUPS + g - g0) * tile)
                for k in range(TOKEN_GROUP):
                    out[t + k, r] = d[k]
                    out[t + k, r + 1] = d[TOKEN_GROUP + k]


@jit(nogil=True)
def rowdot_span(hidden, table, out, start, stop, buffer):
    """Logits of rows ``[start, stop)`` into ``out[:, start:stop]`` (at most ``ROW_BLOCK`` rows
    for a float16 table, widened once into ``buffer``): tokens in groups, each group against
    the span's rows in pairs, so that a group's hidden states stay in the cache while the rows
    pass (the order of each dot product is the same in every tile shape)."""
    tokens = hidden.shape[0]
    grouped = tokens - tokens % TOKEN_GROUP
    w, first = _widened_rows(table, start, stop - start, buffer)
    pairs = start + (stop - start) // 2 * 2
    full = hidden.shape[1] - hidden.shape[1] % LANES
    if grouped >= CHUNK_MIN_TOKENS and full >= 2 * CHUNK:
        _chunked_pairs(hidden, w, first - start, out, start, pairs, grouped, full)
        grouped_pairs = start  # the row pairs of the grouped tokens are done
    else:
        grouped_pairs = pairs
    for t in range(0, grouped, TOKEN_GROUP):
        for r in range(start, grouped_pairs, 2):
            d = _dot_2x4(w, first + r - start, hidden, t)
            for k in range(TOKEN_GROUP):
                out[t + k, r] = d[k]
                out[t + k, r + 1] = d[TOKEN_GROUP + k]
        if pairs < stop:
            d4 = _dot_1x4(w, first + pairs - start, hidden, t)
            for k in range(TOKEN_GROUP):
                out[t + k, pairs] = d4[k]
    for t in range(grouped, tokens):
        for r in range(start, pairs, 2):
            d2 = _dot_2x1(w, first + r - start, hidden, t)
            out[t, r], out[t, r + 1] = d2[0], d2[1]
        if pairs < stop:
            out[t, pairs] = _dot_1x1(w, first + pairs - start, hidden, t)[0]


@jit(nogil=True)
def rowdot_serial(hidden, table, out):
    rows = table.shape[0]
    buffer = np.empty((_buffer_rows(table), table.shape[1]), np.float32)
    for start in range(0, rows, ROW_BLOCK):
        rowdot_span(hidden, table, out, start, min(start + ROW_BLOCK, rows), buffer)


@jit(nogil=True, parallel=True)
def rowdot_parallel(hidden, table, out):
    rows = table.shape[0]
    for block in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
        buffer = np.empty((_buffer_rows(table), table.shape[1]), np.float32)
        start = block * ROW_BLOCK
        rowdot_span(hidden, table, out, start, min(start + ROW_BLOCK, rows), buffer)
