"""Quantized LM-head logits, fused: ``logits[t, v] = dot(hidden[t], decode(table[v]))`` read
straight from the blocks of Q4_K, Q6_K and Q8_0 tables, each block decoded in registers and
dotted with every token while it is there; no decoded row is ever written to memory.

Exact: a block's values are decoded bit for bit as `gguf.quants.dequantize` (and ember's row
decoders) make them, from the same float32 operations in the same order, and each dot product is
summed in `compiled.dot_lanes`' one order, the dense head's: the logits equal `rowdot`'s over
the decoded table bit for bit, and a row's logit is the same whichever rows a call covers. (A
NaN logit is NaN in both; which NaN payload it carries is not specified: where a product and a
sum are both NaN, the multiply-add's operand order picks one.)
Blocks hold a multiple of ``LANES`` values, so a block's values fill whole lane vectors.

>>> import numpy as np
>>> from ember.quant import FORMATS
>>> table = FORMATS["q8_0"].quantize(np.arange(64, dtype=np.float32).reshape(2, 32))
>>> logits = np.empty((1, 2), np.float32)
>>> quantized_rowdot("q8_0", np.ones((1, 32), np.float32), table, logits)
>>> logits  # 0 + 1 + ... + 31 = 496 and 32 + ... + 63 = 1520, as quantized
array([[ 496.09375, 1524.     ]], dtype=float32)
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ember.quant import FORMATS

from .compiled.cache import jit
from .compiled.decoders.bytes import F16_TO_F32
from .compiled.device import prefetch_bytes
from .compiled.dot_lanes import LANES, VECTOR, lane_indices, multiply_add, sum_lanes
from .compiled.target import target_has
from .launch import launch

__all__ = ["FUSED_FORMATS", "ROW_BLOCK", "quantized_rowdot"]

ROW_BLOCK = 64
"""Rows a thread takes at a time."""

Q4_K, Q6_K, Q8_0 = 0, 1, 2
_KINDS = {"q4_k": Q4_K, "q6_k": Q6_K, "q8_0": Q8_0}
FUSED_FORMATS = tuple(_KINDS)
"""The formats decoded in registers; the others decode rows into a scratch buffer first."""

_BLOCK_BYTES = {kind: FORMATS[name].block_bytes for name, kind in _KINDS.items()}
_BLOCK_VALUES = {kind: FORMATS[name].block_elements for name, kind in _KINDS.items()}
_I8, _I32 = ir.IntType(8), ir.IntType(32)
_SIXTEEN = ir.VectorType(VECTOR.element, 16)


_AVX512 = target_has("avx512f")
"""Whether Q4_K's levels are looked up with AVX-512's ``vpermps`` (about 1.5x fewer
instructions than converting and scaling each), and the tiles sized for its 32 registers."""

_HAS_AVX2 = target_has("avx2")
"""Without AVX-512, Q4_K's packed bytes are widened to 32-bit words 8 at a time straight from
memory (one instruction each with AVX2), their nibbles split on the words, where splitting them
on the bytes took a shuffle and a widening per 8 values (cached batch-1 rows: 0.146 to
0.113-0.120 ns a value, one thread)."""


# ---- decoding a block's values into lane vectors (LLVM IR) ---------------------------------
# A block is decoded in steps of a few lane vectors, each multiplied into the sums as soon as it
# is made, so that several rows' steps stay in registers at once. Scales are decoded in vectors
# too; fp16 scales are read through `F16_TO_F32`, numpy's own conversion.


def _constant(builder: ir.IRBuilder, value: int) -> ir.Constant:
    return ir.Constant(_I32, value)


def _load_bytes(builder: ir.IRBuilder, block: ir.Value, offset: int, count: int = LANES):
    """``count`` bytes from ``block + offset``, unaligned."""
    kind = ir.VectorType(_I8, count)
    pointer = builder.bitcast(builder.gep(block, [_constant(builder, offset)]), kind.as_pointer())
    return builder.load(pointer, align=1)


def _half(builder: ir.IRBuilder, block: ir.Value, offset: int, f16: ir.Value) -> ir.Value:
    """The little-endian fp16 at ``block + offset`` as float32, through the table ``f16``."""
    pointer = builder.bitcast(builder.gep(block, [_constant(builder, offset)]),
                              ir.IntType(16).as_pointer())  # fmt: skip
    index = builder.zext(builder.load(pointer, align=1), _I32)
    return builder.load(builder.gep(f16, [index]))


def _bytes(value: int, count: int = LANES) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I8, count), [value] * count)


def _floats(value: float, count: int = LANES) -> ir.Constant:
    return ir.Constant(ir.VectorType(VECTOR.element, count), [value] * count)


def _shuffle(builder: ir.IRBuilder, vector: ir.Value, lanes: list[int]) -> ir.Value:
    mask = ir.Constant(ir.VectorType(_I32, len(lanes)), lanes)
    return builder.shuffle_vector(vector, vector, mask)


def _broadcast(builder: ir.IRBuilder, value: ir.Value, count: int) -> ir.Value:
    vector = ir.Constant(ir.VectorType(value.type, 1), None)
    vector = builder.insert_element(vector, value, _constant(builder, 0))
    return _shuffle(builder, vector, [0] * count)


class _Q4K:
    """Sub-block ``j`` (32 values): ``(d * sc_j) * q - dmin * m_j``, as ``_row_q4_k``; byte
    ``i`` of each 32-byte run holds value ``i`` of one sub-block (low nibble) and of the next."""

    steps = 4

    @staticmethod
    def scales(builder, block, f16):
        packed = _load_bytes(builder, block, 4, 16)  # 12 bytes of 6-bit scales and minimums
        low = ir.Constant(ir.VectorType(ir.IntType(1), 8), [1] * 4 + [0] * 4)

        def six_bits(first, second, high_nibble):
            a, b = _shuffle(builder, packed, first), _shuffle(builder, packed, second)
            top = builder.shl(builder.lshr(b, _bytes(6, 8)), _bytes(4, 8))
            bottom = (
                builder.lshr(a, _bytes(4, 8)) if high_nibble else builder.and_(a, _bytes(15, 8))
            )
            return builder.select(low, builder.and_(a, _bytes(63, 8)), builder.or_(bottom, top))

        sc = six_bits([0, 1, 2, 3, 8, 9, 10, 11], [0, 1, 2, 3, 0, 1, 2, 3], False)
        m = six_bits([4, 5, 6, 7, 8, 9, 10, 11], [4, 5, 6, 7, 4, 5, 6, 7], True)
        eight = ir.VectorType(VECTOR.element, 8)
        d = _broadcast(builder, _half(builder, block, 0, f16), 8)
        dmin = _broadcast(builder, _half(builder, block, 2, f16), 8)
        scales = (builder.fmul(d, builder.uitofp(sc, eight)),
                  builder.fmul(dmin, builder.uitofp(m, eight)))  # fmt: skip
        if not _AVX512:  # minimums negated (0 - m: a NaN keeps its sign), one multiply-add
            scales = (scales[0], builder.fsub(_floats(0.0, 8), scales[1]))
        # Kept in memory: each use is a broadcast load (folded into an AVX-512 multiply).
        return tuple(_stored(builder, vector) for vector in scales)

    @staticmethod
    def step(builder, block, scales, c):
        d, m = scales
        if _AVX512:  # each sub-block's 16 values made once, then looked up by nibble
            tables = [_sixteen_values(builder, d, m, j) for j in (2 * c, 2 * c + 1)]
            looked_up = [[], []]
            for half in (0, 1):  # 16 bytes widened once; the lookup reads 4 bits
                wide = _widened(builder, _load_bytes(builder, block, 16 + 32 * c + 16 * half, 16))
                nibbles = (wide, builder.lshr(wide, ir.Constant(wide.type, [4] * 16)))
                for j in (0, 1):
                    looked_up[j].append(_permute(builder, tables[j], nibbles[j]))
            return [builder.shuffle_vector(low, high, lane_indices(0, LANES))
                    for low, high in looked_up]  # fmt: skip
        if _HAS_AVX2:  # 8 bytes at a time widened from memory, nibbles split on the words
            words = [_widened(builder, _load_bytes(builder, block, 16 + 32 * c + 8 * i, 8))
                     for i in range(LANES // 8)]  # fmt: skip
            fifteen, four = (ir.Constant(words[0].type, [n] * 8) for n in (15, 4))
            halves = [_joined(builder, [builder.and_(w, fifteen) for w in words]),
                      _joined(builder, [builder.lshr(w, four) for w in words])]  # fmt: skip
        else:
            packed = _load_bytes(builder, block, 16 + 32 * c)
            halves = [builder.and_(packed, _bytes(15)), builder.lshr(packed, _bytes(4))]
        values = []  # (d * sc) * q is exact (11 + 6 + 4 bits): one rounding, as the decoder's
        for j, half in zip((2 * c, 2 * c + 1), halves, strict=True):
            level = builder.uitofp(half, VECTOR)
            scale, minimum = (_broadcast_at(builder, p, j, LANES) for p in (d, m))
            values.append(multiply_add(builder, scale, level, minimum))
        return values


def _stored(builder: ir.IRBuilder, vector: ir.Value) -> ir.Value:
    """A pointer to ``vector``'s floats, stored on the stack and hidden from LLVM behind an
    empty inline-asm barrier, so that each use is a broadcast load folded into an instruction
    (a store forwarded to shuffles costs a shuffle per use)."""
    slot = cgutils.alloca_once(builder, vector.type)
    builder.store(vector, slot)
    pointer = builder.bitcast(slot, VECTOR.element.as_pointer())
    hide = ir.InlineAsm(ir.FunctionType(pointer.type, [pointer.type]), "", "=r,0")
    return builder.call(hide, [pointer])


def _broadcast_at(builder: ir.IRBuilder, floats: ir.Value, index: int, count: int) -> ir.Value:
    """``floats[index]`` (a `_stored` pointer) in ``count`` lanes: one broadcast load."""
    return _broadcast(
        builder, builder.load(builder.gep(floats, [_constant(builder, index)])), count
    )


def _sixteen_values(builder: ir.IRBuilder, d: ir.Value, m: ir.Value, j: int) -> ir.Value:
    """Sub-block ``j``'s value for each 4-bit level ``q``: ``d[j] * q - m[j]`` (``d`` and
    ``m`` point at the block's 8 scales and minimums), the very float32 operations of the row
    decoder."""
    levels = ir.Constant(_SIXTEEN, [float(q) for q in range(16)])
    scale, minimum = (builder.load(builder.gep(p, [ir.Constant(_I32, j)])) for p in (d, m))
    scaled = builder.fmul(_broadcast(builder, scale, 16), levels)
    return builder.fsub(scaled, _broadcast(builder, minimum, 16))


def _widened(builder: ir.IRBuilder, packed: ir.Value) -> ir.Value:
    """Bytes (16, or 8 for one AVX register) as 32-bit words, behind an empty inline-asm
    barrier: LLVM would otherwise move the high nibbles' shift back onto the bytes and widen
    twice."""
    wide = builder.zext(packed, ir.VectorType(_I32, packed.type.count))
    hide = ir.InlineAsm(ir.FunctionType(wide.type, [wide.type]), "", "=v,0")
    return builder.call(hide, [wide])


def _joined(builder: ir.IRBuilder, pieces: list[ir.Value]) -> ir.Value:
    """Vectors of equal length, one after another, as one vector."""
    while len(pieces) > 1:
        count = 2 * pieces[0].type.count
        pieces = [builder.shuffle_vector(a, b, lane_indices(0, count))
                  for a, b in zip(pieces[::2], pieces[1::2], strict=True)]  # fmt: skip
    return pieces[0]


def _permute(builder: ir.IRBuilder, values: ir.Value, indices: ir.Value) -> ir.Value:
    """``values[indices & 15]`` lane by lane (AVX-512's ``vpermps``, which reads 4 bits)."""
    signature = ir.FunctionType(_SIXTEEN, [_SIXTEEN, ir.VectorType(_I32, 16)])
    permute = cgutils.get_or_insert_function(
        builder.module, signature, "llvm.x86.avx512.permvar.sf.512"
    )
    return builder.call(permute, [values, indices])


class _Q6K:
    """Value ``(d * sc) * (u - 32)``, ``u`` a low nibble and two high bits, as ``_row_q6_k``;
    each 16 values (half a lane vector) have their own scale."""

    steps = 2

    @staticmethod
    def scales(builder, block, f16):
        sc = builder.sitofp(_load_bytes(builder, block, 192, 16), ir.VectorType(VECTOR.element, 16))
        scales = builder.fmul(_broadcast(builder, _half(builder, block, 208, f16), 16), sc)
        return _stored(builder, scales)  # each use a broadcast load (below)

    @staticmethod
    def step(builder, block, scales, h):
        low0 = _load_bytes(builder, block, 64 * h)
        low1 = _load_bytes(builder, block, 64 * h + 32)
        high = _load_bytes(builder, block, 128 + 32 * h)
        nibbles = (
            builder.and_(low0, _bytes(15)),
            builder.and_(low1, _bytes(15)),
            builder.lshr(low0, _bytes(4)),
            builder.lshr(low1, _bytes(4)),
        )
        values = []
        for k, nibble in enumerate(nibbles):
            bits = builder.and_(builder.lshr(high, _bytes(2 * k)), _bytes(3))
            level = builder.or_(nibble, builder.shl(bits, _bytes(4)))
            centered = builder.sitofp(builder.sub(level, _bytes(32)), VECTOR)  # u - 32, exact
            first = 8 * h + 2 * k
            halves = [_broadcast_at(builder, scales, first + i, LANES // 2) for i in (0, 1)]
            scale = builder.shuffle_vector(*halves, lane_indices(0, LANES))
            values.append(builder.fmul(scale, centered))
        return values


class _Q80:
    """``q * d``, as ``_row_q8_0``."""

    steps = 1

    @staticmethod
    def scales(builder, block, f16):
        return _broadcast(builder, _half(builder, block, 0, f16), LANES)

    @staticmethod
    def step(builder, block, scales, _):
        return [builder.fmul(builder.sitofp(_load_bytes(builder, block, 2), VECTOR), scales)]


_DECODERS = {Q4_K: _Q4K, Q6_K: _Q6K, Q8_0: _Q80}


def _dot_tile(rows: int, tokens: int):
    """An intrinsic ``(kind, table, r, x, t, f16) -> tuple of rows * tokens float32``: the dot
    products of decoded rows ``table[r : r + rows]`` with tokens ``x[t : t + tokens]``
    (row-major order), each in `dot_lanes`' order, every block decoded once for all tokens."""

    @intrinsic
    def dot_tile(typingctx, kind, table, r, x, t, f16):
        if not isinstance(kind, types.IntegerLiteral):
            return None
        decoder = _DECODERS[kind.literal_value]
        block_bytes = _BLOCK_BYTES[kind.literal_value]
        block_values = _BLOCK_VALUES[kind.literal_value]
        result = types.UniTuple(types.float32, rows * tokens)

        def codegen(context, builder, sig, args):
            table_array = context.make_array(sig.args[1])(context, builder, args[1])
            x_array = context.make_array(sig.args[3])(context, builder, args[3])
            f16_array = context.make_array(sig.args[5])(context, builder, args[5])
            row_bytes = builder.extract_value(table_array.shape, 1)
            width = builder.extract_value(x_array.shape, 1)
            intp = width.type
            row0, token0 = args[2], args[4]
            row_starts = [
                builder.gep(table_array.data, [builder.mul(builder.add(row0, intp(i)), row_bytes)])
                for i in range(rows)
            ]
            x_rows = [
                builder.gep(x_array.data, [builder.mul(builder.add(token0, intp(k)), width)])
                for k in range(tokens)
            ]
            zeros = ir.Constant(VECTOR, [0.0] * LANES)
            sums = [[cgutils.alloca_once_value(builder, zeros) for _ in range(tokens)]
                    for _ in range(rows)]  # fmt: skip
            blocks = builder.udiv(row_bytes, intp(block_bytes))
            pointer = VECTOR.as_pointer()
            with cgutils.for_range(builder, blocks, intp=intp) as loop:
                b = loop.index
                starts = [builder.gep(p, [builder.mul(b, intp(block_bytes))]) for p in row_starts]
                ahead = builder.mul(row_bytes, intp(rows))
                for p in starts:  # the next tile's rows, read while this one is decoded
                    prefetch_bytes(builder, builder.gep(p, [ahead]), block_bytes)
                scales = [decoder.scales(builder, p, f16_array.data) for p in starts]
                first = builder.mul(b, intp(block_values))
                for step in range(decoder.steps):
                    values = [decoder.step(builder, p, sc, step)
                              for p, sc in zip(starts, scales, strict=True)]  # fmt: skip
                    for v in range(len(values[0])):
                        at = builder.add(first, intp((len(values[0]) * step + v) * LANES))
                        xs = [builder.load(builder.bitcast(builder.gep(p, [at]), pointer), align=4)
                              for p in x_rows]  # fmt: skip
                        for i in range(rows):
                            for k in range(tokens):
                                total = builder.load(sums[i][k])
                                total = multiply_add(builder, xs[k], values[i][v], total)
                                builder.store(total, sums[i][k])
            totals = [sum_lanes(builder, builder.load(s)) for row in sums for s in row]
            return context.make_tuple(builder, result, totals)

        return result(kind, table, r, x, t, f16), codegen

    return dot_tile


TOKEN_GROUP = 4
"""Tokens dotted with the same rows at once: each block decoded once for all of them."""

GROUP_ROWS = 2 if _AVX512 else 1
"""Rows dotted with a group of tokens at once. A dot product's ``LANES`` sums are 2 of
AVX-512's 32 registers, but 4 of AVX's 16: the AVX-512 tiles (2 rows with 4 tokens, 4 rows
with one) spilled sums to the stack on AVX, a load and a store around a multiply-add, so there
a group of tokens meets one row at a time, and a token two rows. One thread, cached rows, ns a
value and token at batch 16, AVX-512's tiles / 1 x 2 / 1 x 4: Q4_K 0.074-0.078 / 0.077-0.082
/ 0.069-0.071, Q6_K 0.068-0.085 / 0.085-0.087 / 0.065-0.068, Q8_0 0.062-0.083 / 0.055 /
0.054: a block decoded for four tokens is worth the few sums that still spill."""

ROW_GROUP = 4 if _AVX512 else 2
"""Rows dotted with one token at once: enough independent sums to hide the multiply-adds'
latency (each row's sums are one chain per lane)."""

_dot_1x1 = _dot_tile(1, 1)
_dot_rows_x1 = _dot_tile(ROW_GROUP, 1)
_dot_1xgroup = _dot_tile(1, TOKEN_GROUP)
_dot_rows_xgroup = _dot_tile(GROUP_ROWS, TOKEN_GROUP)


# ---- the kernels ---------------------------------------------------------------------------


@jit(nogil=True)
def _span(kind, table, hidden, out, start, stop, f16):
    """Logits of rows ``[start, stop)`` into ``out[:, start:stop]``: tokens in groups, each
    group against `GROUP_ROWS` rows at a time, then the other tokens one at a time against
    `ROW_GROUP` rows at a time."""
    tokens = hidden.shape[0]
    grouped = tokens - tokens % TOKEN_GROUP
    for t in range(0, grouped, TOKEN_GROUP):
        r = start
        while r < stop:
            if stop - r >= GROUP_ROWS:
                d = _dot_rows_xgroup(kind, table, r, hidden, t, f16)
                for i in range(GROUP_ROWS):
                    for k in range(TOKEN_GROUP):
                        out[t + k, r + i] = d[i * TOKEN_GROUP + k]
                r += GROUP_ROWS
            else:
                d1 = _dot_1xgroup(kind, table, r, hidden, t, f16)
                for k in range(TOKEN_GROUP):
                    out[t + k, r] = d1[k]
                r += 1
    for t in range(grouped, tokens):
        r = start
        while r < stop:
            if stop - r >= ROW_GROUP:
                q = _dot_rows_x1(kind, table, r, hidden, t, f16)
                for i in range(ROW_GROUP):
                    out[t, r + i] = q[i]
                r += ROW_GROUP
            else:
                out[t, r] = _dot_1x1(kind, table, r, hidden, t, f16)[0]
                r += 1


@jit(nogil=True)
def _serial(kind, table, hidden, out, f16):
    rows = table.shape[0]
    for start in range(0, rows, ROW_BLOCK):
        _span(kind, table, hidden, out, start, min(start + ROW_BLOCK, rows), f16)


@jit(nogil=True, parallel=True)
def _parallel(kind, table, hidden, out, f16):
    rows = table.shape[0]
    for block in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
        start = block * ROW_BLOCK
        _span(kind, table, hidden, out, start, min(start + ROW_BLOCK, rows), f16)


@jit(nogil=True)
def _serial_q4_k(table, hidden, out, f16):
    _serial(Q4_K, table, hidden, out, f16)


@jit(nogil=True)
def _serial_q6_k(table, hidden, out, f16):
    _serial(Q6_K, table, hidden, out, f16)


@jit(nogil=True)
def _serial_q8_0(table, hidden, out, f16):
    _serial(Q8_0, table, hidden, out, f16)


@jit(nogil=True)
def _parallel_q4_k(table, hidden, out, f16):
    _parallel(Q4_K, table, hidden, out, f16)


@jit(nogil=True)
def _parallel_q6_k(table, hidden, out, f16):
    _parallel(Q6_K, table, hidden, out, f16)


@jit(nogil=True)
def _parallel_q8_0(table, hidden, out, f16):
    _parallel(Q8_0, table, hidden, out, f16)


_KERNELS = {
    "q4_k": (_serial_q4_k, _parallel_q4_k),
    "q6_k": (_serial_q6_k, _parallel_q6_k),
    "q8_0": (_serial_q8_0, _parallel_q8_0),
}


def quantized_rowdot(
    fmt: str, hidden: np.ndarray, table: np.ndarray, out: np.ndarray, parallel: bool = True
) -> None:
    """``out[t, v] = dot(hidden[t], decode(table[v]))``: float32 `hidden` `(tokens, width)`
    against `fmt`'s uint8 blocks `(vocab, row bytes)` holding `width` values a row, into float32
    `out` `(tokens, vocab)`; all three C-contiguous. Parallel over rows when the cores are free.

    Raises:
        ValueError: `fmt` is not one of `FUSED_FORMATS`, or the arrays do not fit together.
        TypeError: a dtype is not the one expected.
    """
    if fmt not in _KERNELS:
        raise ValueError(f"quantized_rowdot: no fused kernel for {fmt!r}; one of {FUSED_FORMATS}")
    if hidden.dtype != np.float32 or out.dtype != np.float32 or table.dtype != np.uint8:
        raise TypeError(
            "quantized_rowdot: hidden and out must be float32 and the table uint8, got "
            f"{hidden.dtype}, {out.dtype}, {table.dtype}"
        )
    kind = _KINDS[fmt]
    if (
        hidden.ndim != 2
        or table.ndim != 2
        or table.shape[1] % _BLOCK_BYTES[kind]
        or hidden.shape[1] != table.shape[1] // _BLOCK_BYTES[kind] * _BLOCK_VALUES[kind]
        or out.shape != (hidden.shape[0], table.shape[0])
    ):
        raise ValueError(
            f"quantized_rowdot: hidden {hidden.shape}, {fmt} table {table.shape} and out "
            f"{out.shape} do not fit ((tokens, width), (vocab, row bytes), (tokens, vocab))"
        )
    if not (hidden.flags.c_contiguous and table.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("quantized_rowdot: hidden, table and out must be C-contiguous")
    if out.size == 0:
        return
    serial, parallel_kernel = _KERNELS[fmt]
    if not parallel or table.shape[0] < 2 * ROW_BLOCK:
        serial(table, hidden, out, F16_TO_F32)
        return
    launch(
        lambda: parallel_kernel(table, hidden, out, F16_TO_F32),
        lambda: serial(table, hidden, out, F16_TO_F32),
    )
