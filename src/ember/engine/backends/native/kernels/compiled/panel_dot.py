"""The dense head for many tokens on AVX's 16 vector registers: the dot products of
`dense_dot`'s tiles, bit for bit, computed a lane at a time over packed panels of rows.

`dot_lanes`' order gives each dot product 32 running sums, one per lane ``l``, which takes
the elements ``k = l mod 32`` in turn. The row tiles keep all 32 sums of every (row, token)
pair they compute: four of AVX's sixteen registers a pair, so no tile has room to reuse its
loads, and at 64 tokens the head ran below a GEMM's speed. Here a tile takes one lane at a
time: 24 rows (three vectors of 8) and 4 tokens, twelve sums in registers, each step one
broadcast of a token's element against each row vector. Each lane still takes its elements
in turn from the same zeros, so after all 32 lanes the sums are the row tiles' own; they are
then added in `dot_lanes`' tree and the tail elements follow in turn.

The rows are first copied into a panel, ``panel[l, j, r] = table[r, 32 j + l]`` (narrow
floats widened exactly), and the tokens once per call into ``xp[l, j, t]``, so that a lane's
steps read consecutive memory. A panel's lanes lie one step more apart than they need: rows
of 4 KiB multiples and lanes 12 KiB apart put every load and store of the copy at one
address modulo 4 KiB, which the CPU takes for a dependence (copying 24 cached rows: 39 to 22
us, Zen 3).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .cache import jit
from .dense_dot import widen_bfloat16, widen_float16
from .dot_lanes import F32, LANES, multiply_add

__all__ = [
    "PANEL_ROWS",
    "TASK_ROWS",
    "TOKEN_BLOCK",
    "pack_tokens",
    "panel_buffers",
    "panel_rowdot_parallel",
    "panel_rowdot_serial",
    "panel_span",
]

_WIDTH = 8
"""float32 values in one AVX register."""

_ROW_VECTORS = 3
PANEL_ROWS = _ROW_VECTORS * _WIDTH
"""Rows a panel holds: three vectors, which with four tokens make twelve sums in registers,
one register for the broadcast token element and three for the rows (cached panels, one
thread: 4 x 24 ran 77-83 GFLOP/s against 69 for 6 x 16 and 60 for 5 x 16)."""

_TOKEN_TILE = 4
TOKEN_BLOCK = 64
"""Tokens whose lane sums a panel keeps at once (``LANES x TOKEN_BLOCK x PANEL_ROWS`` floats,
192 KiB); more tokens reuse the packed panel block by block."""

TASK_ROWS = 8 * PANEL_ROWS
"""Rows (eight panels) a thread packs and computes per parallel step."""

_VECTOR = ir.VectorType(F32, _WIDTH)


def _index(value: int) -> ir.Constant:
    return ir.Constant(ir.IntType(64), value)


def _vector_at(builder: ir.IRBuilder, base: ir.Value, index: ir.Value) -> ir.Value:
    """A pointer to the vector of floats at ``base[index]`` (aligned as a float only)."""
    return builder.bitcast(builder.gep(base, [index]), _VECTOR.as_pointer())


@intrinsic
def _lane_tile(typingctx, panel, xp, sums, lane, token, slot):
    """The 4 x 24 lane sums of lane ``lane`` for tokens ``token .. token + 3`` of ``xp``
    against the panel's rows, stored in ``sums[lane, slot .. slot + 3]``; each sum starts
    at zero and takes the lane's elements in turn."""
    if not all(
        a.layout == "C" and a.dtype == types.float32 and a.ndim == 3 for a in (panel, xp, sums)
    ):
        return None

    def codegen(context, builder, sig, args):
        panel_a, xp_a, sums_a = (
            context.make_array(kind)(context, builder, value)
            for kind, value in zip(sig.args[:3], args[:3], strict=True)
        )
        lane, token, slot = (
            context.cast(builder, v, t, types.int64)
            for v, t in zip(args[3:], sig.args[3:], strict=True)
        )
        steps = builder.extract_value(xp_a.shape, 1)
        tokens = builder.extract_value(xp_a.shape, 2)
        stride = builder.extract_value(panel_a.shape, 1)  # steps and a padding step
        plane = builder.mul(lane, builder.mul(stride, _index(PANEL_ROWS)))
        rows = builder.gep(panel_a.data, [plane])
        first = builder.add(builder.mul(lane, builder.mul(steps, tokens)), token)
        elements = builder.gep(xp_a.data, [first])
        zeros = ir.Constant(_VECTOR, [0.0] * _WIDTH)
        accs = [
            cgutils.alloca_once_value(builder, zeros) for _ in range(_TOKEN_TILE * _ROW_VECTORS)
        ]
        broadcast = ir.Constant(ir.VectorType(ir.IntType(32), _WIDTH), [0] * _WIDTH)
        one = ir.Constant(ir.VectorType(F32, 1), None)
        with cgutils.for_range(builder, steps, intp=steps.type) as loop:
            row = builder.gep(rows, [builder.mul(loop.index, _index(PANEL_ROWS))])
            ws = [
                builder.load(_vector_at(builder, row, _index(_WIDTH * g)), align=4)
                for g in range(_ROW_VECTORS)
            ]
            step = builder.gep(elements, [builder.mul(loop.index, tokens)])
            for t in range(_TOKEN_TILE):
                x = builder.load(builder.gep(step, [_index(t)]))
                x = builder.insert_element(one, x, ir.Constant(ir.IntType(32), 0))
                x = builder.shuffle_vector(x, x, broadcast)
                for g in range(_ROW_VECTORS):
                    acc = accs[t * _ROW_VECTORS + g]
                    builder.store(multiply_add(builder, x, ws[g], builder.load(acc)), acc)
        slots = builder.extract_value(sums_a.shape, 1)
        out = builder.gep(
            sums_a.data,
            [builder.mul(builder.add(builder.mul(lane, slots), slot), _index(PANEL_ROWS))],
        )
        for t in range(_TOKEN_TILE):
            for g in range(_ROW_VECTORS):
                pointer = _vector_at(builder, out, _index(t * PANEL_ROWS + g * _WIDTH))
                builder.store(builder.load(accs[t * _ROW_VECTORS + g]), pointer, align=4)
        return context.get_dummy_value()

    return types.none(panel, xp, sums, lane, token, slot), codegen


@intrinsic
def _fused(typingctx, x, w, acc):
    """``x * w + acc`` as `dot_lanes.multiply_add` makes it (one rounding where the CPU has
    fused multiply-adds), for the tail elements."""
    if not all(a == types.float32 for a in (x, w, acc)):
        return None

    def codegen(context, builder, sig, args):
        return multiply_add(builder, *args)

    return types.float32(x, w, acc), codegen


def _element(table, row, column):
    """``table[row, column]`` as float32, widened exactly from bfloat16 (uint16 bits) or
    float16 (int16 bits)."""


@overload(_element, inline="always")
def _element_impl(table, row, column):
    if table.dtype == types.uint16:
        return lambda table, row, column: widen_bfloat16(table[row, column])
    if table.dtype == types.int16:
        return lambda table, row, column: widen_float16(table[row, column])
    return lambda table, row, column: table[row, column]


@jit(nogil=True)
def pack_tokens(hidden):
    """``xp[l, j, t] = hidden[t, 32 j + l]`` over the full lane rounds, tokens padded with zeros
    to a whole tile."""
    tokens, width = hidden.shape
    steps = width // LANES
    padded = -(-tokens // _TOKEN_TILE) * _TOKEN_TILE
    xp = np.zeros((LANES, steps, padded), np.float32)
    for t in range(tokens):
        for j in range(steps):
            for lane in range(LANES):
                xp[lane, j, t] = hidden[t, j * LANES + lane]
    return xp


_UNPACK = ([0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15])
_PAIRS = ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15])
_HALVES = ([0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15])


def _transposed(builder: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """Eight vectors of eight as their columns: unpacks, then pairs, within 128-bit halves,
    then the halves swapped (AVX's usual 24 shuffles)."""

    def shuffle(a, b, lanes):
        return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), 8), lanes))

    t = [shuffle(rows[i - i % 2], rows[i - i % 2 + 1], _UNPACK[i % 2]) for i in range(8)]
    u = [shuffle(t[b + i // 2], t[b + i // 2 + 2], _PAIRS[i % 2]) for b in (0, 4) for i in range(4)]
    return [shuffle(u[q % 4], u[q % 4 + 4], _HALVES[q // 4]) for q in range(8)]


@intrinsic
def _pack_square(typingctx, table, row, column, panel, step, slot):
    """``panel[l, step, slot + i] = table[row + i, column + l - column % 32]`` for the eight
    rows ``i`` and eight columns from ``column`` (a multiple of 8): eight row loads, one
    transpose, eight stores. bfloat16 (uint16 bits) widens exactly as it loads."""
    if table.dtype not in (types.float32, types.uint16) or table.layout != "C":
        return None

    def codegen(context, builder, sig, args):
        table_a = context.make_array(sig.args[0])(context, builder, args[0])
        panel_a = context.make_array(sig.args[3])(context, builder, args[3])
        row, column, step, slot = (
            context.cast(builder, args[i], sig.args[i], types.int64) for i in (1, 2, 4, 5)
        )
        width = builder.extract_value(table_a.shape, 1)
        bits = table_a.data.type.pointee == ir.IntType(16)
        kind = ir.VectorType(ir.IntType(16), 8) if bits else _VECTOR
        rows = []
        for i in range(8):
            index = builder.add(builder.mul(builder.add(row, _index(i)), width), column)
            value = builder.load(
                builder.bitcast(builder.gep(table_a.data, [index]), kind.as_pointer()), align=2
            )
            if bits:
                wide = ir.VectorType(ir.IntType(32), 8)
                value = builder.shl(builder.zext(value, wide), ir.Constant(wide, [16] * 8))
                value = builder.bitcast(value, _VECTOR)
            rows.append(value)
        steps = builder.extract_value(panel_a.shape, 1)
        lane = builder.srem(column, _index(LANES))
        for q, vector in enumerate(_transposed(builder, rows)):
            plane = builder.mul(builder.add(lane, _index(q)), steps)
            index = builder.add(builder.mul(builder.add(plane, step), _index(PANEL_ROWS)), slot)
            builder.store(vector, _vector_at(builder, panel_a.data, index), align=4)
        return context.get_dummy_value()

    return types.none(table, row, column, panel, step, slot), codegen


def _pack_panel(table, start, count, panel):
    """``panel[l, j, r] = table[start + r, 32 j + l]`` for ``r < count``, zero beyond."""


@overload(_pack_panel, inline="always")
def _pack_panel_impl(table, start, count, panel):
    squares = table.dtype in (types.float32, types.uint16)  # float16 widens a value at a time

    def pack(table, start, count, panel):
        steps = table.shape[1] // LANES
        if squares and count == PANEL_ROWS:
            for square in range(0, PANEL_ROWS, 8):  # eight rows read in step at a time
                for j in range(steps):
                    for lane in range(0, LANES, 8):
                        _pack_square(table, start + square, j * LANES + lane, panel, j, square)
            return
        for r in range(count, PANEL_ROWS):
            panel[:, :, r] = 0.0
        for r in range(count):
            for j in range(steps):
                for lane in range(LANES):
                    panel[lane, j, r] = _element(table, start + r, j * LANES + lane)

    return pack


@jit(nogil=True)
def _finish(hidden, table, out, start, count, sums, first_token, tokens):
    """The logits of the panel's rows for ``tokens`` tokens from ``first_token``: each pair's
    32 lane sums added in `dot_lanes`' tree (every pair's level at once: the same sums), then
    its tail elements in turn."""
    flat = sums.reshape(LANES, -1)
    half = LANES // 2
    while half >= 1:
        for lane in range(half):
            for i in range(tokens * PANEL_ROWS):
                flat[lane, i] = flat[lane, i] + flat[lane + half, i]
        half //= 2
    width = hidden.shape[1]
    for t in range(tokens):
        for r in range(count):
            total = sums[0, t, r]
            for k in range(width - width % LANES, width):
                total = _fused(hidden[first_token + t, k], _element(table, start + r, k), total)
            out[first_token + t, start + r] = total


@jit(nogil=True)
def panel_span(hidden, xp, table, out, start, stop, panel, sums):
    """Logits of rows ``[start, stop)``, a panel at a time, every token block against it."""
    tokens = hidden.shape[0]
    padded = xp.shape[2]
    for first in range(start, stop, PANEL_ROWS):
        count = min(PANEL_ROWS, stop - first)
        _pack_panel(table, first, count, panel)
        for block in range(0, padded, TOKEN_BLOCK):
            block_tokens = min(TOKEN_BLOCK, padded - block)
            for lane in range(LANES):
                for slot in range(0, block_tokens, _TOKEN_TILE):
                    _lane_tile(panel, xp, sums, lane, block + slot, slot)
            real = min(block_tokens, tokens - block)
            _finish(hidden, table, out, first, count, sums, block, real)


@jit(nogil=True)
def panel_buffers(width):
    """A thread's panel and lane sums for rows of ``width`` values."""
    panel = np.empty((LANES, width // LANES + 1, PANEL_ROWS), np.float32)
    sums = np.empty((LANES, TOKEN_BLOCK, PANEL_ROWS), np.float32)
    return panel, sums


@jit(nogil=True)
def panel_rowdot_serial(hidden, table, out):
    """`rowdot_serial`'s logits, bit for bit, a panel at a time."""
    xp = pack_tokens(hidden)
    panel, sums = panel_buffers(hidden.shape[1])
    panel_span(hidden, xp, table, out, 0, table.shape[0], panel, sums)


@jit(nogil=True, parallel=True)
def panel_rowdot_parallel(hidden, table, out):
    """`rowdot_parallel`'s logits, bit for bit: each thread packs and computes
    ``TASK_ROWS`` rows at a time."""
    xp = pack_tokens(hidden)
    rows = table.shape[0]
    for i in prange((rows + TASK_ROWS - 1) // TASK_ROWS):
        panel, sums = panel_buffers(hidden.shape[1])
        start = i * TASK_ROWS
        panel_span(hidden, xp, table, out, start, min(start + TASK_ROWS, rows), panel, sums)
