"""Quantized LM-head logits with 8-bit activations (``int8_activations=True``): integer dot
products of the table's levels with the hidden states quantized per block of 256 values, as
llama.cpp's Q8_K activations, with float32 scales applied once per sub-block.

Each token's hidden states are cut into blocks of 256 values; a block is ``dx * xq`` with
``dx = max|x| / 127`` and ``xq = rint(x / dx)`` in ``[-127, 127]``, stored in the order the
kernel reads (each 64-byte vector holds 4 values of each group of 16).

The kernel works as a matrix product: a tile of `ROWS` rows is decoded once into unsigned
levels (Q4_K 0..15, Q6_K 0..63) and float32 scales, then dotted with `TOKENS` tokens at a
time, whose float32 lane sums per row stay in registers over the row's blocks (a call
with fewer tokens decodes one row at a time in registers instead). Per block, AVX-512 VNNI's
``vpdpbusd`` sums the products of levels and ``xq`` of each group of 16 values into one
32-bit lane (exact). Q6_K's lane is a sub-block: it is converted to float32 and added times
``d * sc * dx`` (the sub-block's scale, exact in float32, times the token's), its offset of
32 entering the integer sum as ``-32 * sum(xq)``. Q4_K's two lanes of a sub-block of 32 are
added first, so that two tokens share one vector of float32 work; its minimums add
``-dmin * m`` times ``dx * sum(xq)`` of the sub-block. A logit adds its lanes in a fixed
tree: every row and token gets the same operations whatever rows and tokens a call covers.

Without VNNI (AVX2), ``vpmaddubsw`` then ``vpmaddwd`` make the same exact sums, and the levels
are made from the bytes as stored, regrouped by unpacks that never cross 128-bit halves (the
activations laid out to match); the sums are put back in the VNNI layout's lane order before
any float work, so the logits are the same bits on either CPU. Under 4 tokens each block asks
for the next row's while it is decoded.

Error bound: rounding moves each ``x_i`` by at most ``dx / 2 = max|x|_block / 254``, so a
logit differs from the exact ``sum_i w_i x_i`` (``w`` as gguf decodes it) by at most
``sum_blocks max|x|_block / 254 * sum_(i in block) |w_i|``, plus float32 rounding of the
scale products and of each lane's running sum over ``width / 256`` blocks (a few ulps of
``sum_i |w_i x_i|``, counting Q4_K's ``d * sc * q`` and ``dmin * m`` terms apart, times that
count). The integer sums are exact. The bound is for blocks whose scale ``dx`` is a normal
float32 (max ``|x|`` from ``127 * 2**-126``, about 1.5e-36, up): below, ``dx`` and its
products are subnormal and keep fewer bits, so their rounding is no longer a few ulps.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .compiled.cache import jit
from .compiled.decoders.bytes import F16_TO_F32
from .compiled.device import prefetch_bytes
from .compiled.target import target_has
from .launch import launch

__all__ = ["BLOCK", "INT8_FORMATS", "int8_rowdot", "quantize_activations"]

BLOCK = 256
"""Hidden values per activation scale (llama.cpp's Q8_K block)."""

GROUP = 16
"""Values per 32-bit integer lane: one scale (and Q4_K minimum) applies to each."""

ROWS = 3
"""Rows decoded together; each token's levels are loaded once for them."""

TOKENS = 4
"""Tokens dotted together with a tile's rows (a call's last tokens go one at a time)."""

ROW_BLOCK = 96


"""Rows a thread takes at a time."""

Q4_K, Q6_K = 0, 1
_KINDS = {"q4_k": Q4_K, "q6_k": Q6_K}
_BLOCK_BYTES = {Q4_K: 144, Q6_K: 210}

_I8, _I32 = ir.IntType(8), ir.IntType(32)
_F32 = ir.FloatType()
_SUMS = ir.VectorType(_I32, 16)
_FSUMS = ir.VectorType(_F32, 16)
_LEVELS = ir.VectorType(_I8, 64)


_VNNI = target_has("avx512bw", "avx512vnni")
"""Whether each 4-byte product sum is AVX-512 VNNI's one ``vpdpbusd``; else AVX2's
``vpmaddubsw`` and ``vpmaddwd`` make the same sums (`_dot_bytes`)."""

INT8_FORMATS = tuple(_KINDS) if _VNNI or target_has("avx2") else ()
"""The formats with an integer kernel on this CPU (it needs AVX2, and is fastest with AVX-512
VNNI; the integer sums, and so the logits, are the same bits either way); without AVX2 they
compute exactly, as without ``int8_activations``."""


def quantize_activations(hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xq, dx, sums)`` of float32 `hidden` `(tokens, width)`: int8 levels, the float32 scale
    of each block of 256 values `(tokens, width / 256)` and the int32 sum of the levels of each
    16 values `(tokens, width / 16)`. A block with a NaN or an infinity gets a NaN scale (its
    logits are NaN), an all-zero block the scale 0. A scale below float32's normal range
    (blocks whose max ``|x|`` is under ``127 * 2**-126``) is rounded up where rounding to
    nearest fell short, so that no level passes 127 (as int8 it would change sign)."""
    tokens, width = hidden.shape
    blocks = hidden.reshape(tokens, width // BLOCK, BLOCK)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        absmax = np.abs(blocks).max(axis=-1, keepdims=True)
        dx = (absmax / np.float32(127)).astype(np.float32)
        short = (dx < np.finfo(np.float32).tiny) & (dx * np.float32(127) < absmax)  # exact
        dx[short] = np.nextafter(dx[short], np.float32(np.inf))
        dx[~np.isfinite(absmax)] = np.nan
        levels = np.where(dx > 0, np.rint(blocks / dx), 0)
    xq = np.nan_to_num(levels).astype(np.int8).reshape(tokens, width)
    sums = xq.reshape(tokens, width // GROUP, GROUP).sum(axis=-1, dtype=np.int32)
    return xq, np.ascontiguousarray(dx[..., 0]), sums


def _kernel_activations(kind: int, hidden: np.ndarray):
    """``(xq, dx, per_group)`` as the kernel reads them, block-major so that a block's tokens
    lie together: ``xq`` `(blocks, tokens, 256)` in `_q4_k_decode`'s or `_q6_k_decode`'s
    order, ``dx`` `(blocks, tokens)`, and `(blocks, tokens, 16)`: Q6_K's ``-32 * sum(xq)``
    per group of 16 (int32), Q4_K's ``dx * sum(xq)`` per sub-block of 32, then ``dx`` 8
    times (float32)."""
    xq, dx, sums = quantize_activations(hidden)
    tokens, width = xq.shape
    blocks = width // BLOCK
    sums = sums.reshape(tokens, blocks, BLOCK // GROUP).transpose(1, 0, 2)
    dx = np.ascontiguousarray(dx.T)
    if kind == Q4_K:  # lane j: sub-block j % 8, its half j // 8
        order = xq.reshape(tokens, blocks, 8, 2, 4, 4).transpose(1, 0, 4, 3, 2, 5)
        halves = sums.reshape(blocks, tokens, 8, 2).sum(axis=-1, dtype=np.int32)
        scaled = (halves * dx[..., None]).astype(np.float32)
        per_group = np.concatenate([scaled, np.repeat(dx[..., None], 8, axis=-1)], axis=-1)
    else:  # lane j: values 16 j ..
        order = xq.reshape(tokens, blocks, BLOCK // 16, 4, 4).transpose(1, 0, 3, 2, 4)
        per_group = sums * np.int32(-32)
    order = order.reshape(blocks, tokens, 4, 16, 4)  # (block, token, vector, lane, byte)
    if not _VNNI:
        order = order[:, :, :, _AVX2_LANES[kind]]
    return (
        np.ascontiguousarray(order.reshape(blocks, tokens, BLOCK)),
        dx,
        np.ascontiguousarray(per_group),
    )


# ---- LLVM IR ---------------------------------------------------------------------------------


def _const(value: int, kind: ir.Type = _I32) -> ir.Constant:
    return ir.Constant(kind, value)


def _lanes(values) -> ir.Constant:
    return ir.Constant(_SUMS, list(values))


def _shuffle(builder, a, b, lanes):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, len(lanes)), lanes))


def _pointer(builder, base, offset, kind):
    return builder.bitcast(builder.gep(base, [offset]), kind.as_pointer())


def _load(builder, base, offset, kind, align=1):
    return builder.load(_pointer(builder, base, offset, kind), align=align)


def _half(builder, block, offset, f16):
    """The fp16 at ``block + offset`` as float32, through numpy's conversion table."""
    index = builder.zext(_load(builder, block, _const(offset), ir.IntType(16)), _I32)
    return builder.load(builder.gep(f16, [index]))


def _broadcast(builder, value, count=16):
    vector = builder.insert_element(
        ir.Constant(ir.VectorType(value.type, 1), None), value, _const(0)
    )
    return _shuffle(builder, vector, vector, [0] * count)


def _call(builder, name, result, arguments):
    signature = ir.FunctionType(result, [a.type for a in arguments])
    return builder.call(cgutils.get_or_insert_function(builder.module, signature, name), arguments)


def _bytes(value: int) -> ir.Constant:
    return _lanes([value * 0x01010101] * 16)


def _q4_k_decode(builder, block, f16):
    """Levels 0..15 (4 vectors of 16 lanes, lane ``j`` of vector ``k`` holding values
    ``32 (j % 8) + 16 (j // 8) + 4 k .. + 3``: lanes ``j`` and ``j + 8`` share sub-block
    ``j % 8``), and its ``d * sc`` and ``-dmin * m`` in lanes ``j`` and ``j + 8``."""
    packed = _load(builder, block, _const(4), ir.VectorType(_I8, 16))
    low = ir.Constant(ir.VectorType(ir.IntType(1), 8), [1] * 4 + [0] * 4)
    eight = ir.VectorType(_I8, 8)

    def splat(value):
        return ir.Constant(eight, [value] * 8)

    def six_bits(first, second, high_nibble):
        a = _shuffle(builder, packed, packed, first)
        b = _shuffle(builder, packed, packed, second)
        top = builder.shl(builder.lshr(b, splat(6)), splat(4))
        bottom = builder.lshr(a, splat(4)) if high_nibble else builder.and_(a, splat(15))
        return builder.select(low, builder.and_(a, splat(63)), builder.or_(bottom, top))

    sc = six_bits([0, 1, 2, 3, 8, 9, 10, 11], [0, 1, 2, 3, 0, 1, 2, 3], False)
    m = six_bits([4, 5, 6, 7, 8, 9, 10, 11], [4, 5, 6, 7, 4, 5, 6, 7], True)
    d = _broadcast(builder, _half(builder, block, 0, f16))
    dmin = _broadcast(builder, builder.fneg(_half(builder, block, 2, f16)))
    twice = [j % 8 for j in range(16)]
    scales = builder.fmul(d, builder.uitofp(_shuffle(builder, sc, sc, twice), _FSUMS))
    minimums = builder.fmul(dmin, builder.uitofp(_shuffle(builder, m, m, twice), _FSUMS))
    # qs: 4 chunks of 32 bytes; chunk c's low nibbles are sub-block 2c, its high ones 2c + 1
    if not _VNNI:
        return _q4_k_unpacked(builder, block), scales, minimums
    first = _load(builder, block, _const(16), _SUMS)
    second = _load(builder, block, _const(80), _SUMS)
    shifts = _lanes(4 * (j % 2) for j in range(16))
    levels = []
    for k in range(4):
        words = _shuffle(
            builder, first, second, [8 * ((j % 8) // 2) + 4 * (j // 8) + k for j in range(16)]
        )
        levels.append(builder.and_(builder.lshr(words, shifts), _bytes(15)))
    return levels, scales, minimums


_AVX2_LANES = {
    Q4_K: np.array([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]),
    Q6_K: np.array([8 * h + s for h in (0, 1) for s in (0, 2, 4, 6, 1, 3, 5, 7)]),
}
"""Without VNNI, the lane (of the VNNI layout) whose values lane ``j`` of the levels holds: the
order in which 32-bit unpacks leave them (`_regrouped`). The integer sums are put back in the
VNNI layout's order before any float work, which is then the same."""

_VNNI_LANE_AT = {
    kind: np.arange(16) if _VNNI else np.argsort(lanes) for kind, lanes in _AVX2_LANES.items()
}
"""Where the levels' lanes hold the VNNI layout's lane ``j``."""


def _q6_k_decode(builder, block, f16):
    """Levels 0..63 (4 vectors of 16 lanes, lane ``j`` of vector ``k`` holding values
    ``16 j + 4 k .. + 3``, sub-block ``j``; without VNNI, `_AVX2_LANES` says which) and
    ``d * sc`` per lane (of sub-block ``j`` always)."""
    sc = builder.sext(_load(builder, block, _const(192), ir.VectorType(_I8, 16)), _SUMS)
    d = _broadcast(builder, _half(builder, block, 208, f16))
    scales = builder.fmul(d, builder.sitofp(sc, _FSUMS))
    if not _VNNI:
        return _q6_k_unpacked(builder, block), scales, None
    low_bits = [_load(builder, block, _const(64 * h), _SUMS) for h in range(2)]
    high_bits = _load(builder, block, _const(128), _SUMS)
    quarter = [(j % 8) // 2 for j in range(16)]
    nibble_shifts = _lanes(4 * (q // 2) for q in quarter)
    rotations = _lanes((4 - 2 * q) % 32 for q in quarter)
    fshl = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_SUMS, [_SUMS] * 3), "llvm.fshl.v16i32"
    )
    levels = []
    for k in range(4):
        lows = _shuffle(builder, *low_bits, [16 * (j // 8) + 8 * (quarter[j] % 2) + 4 * (j % 2) + k
                                             for j in range(16)])  # fmt: skip
        highs = _shuffle(builder, high_bits, high_bits,
                         [8 * (j // 8) + 4 * (j % 2) + k for j in range(16)])  # fmt: skip
        low = builder.and_(builder.lshr(lows, nibble_shifts), _bytes(15))
        high = builder.and_(builder.call(fshl, [highs, highs, rotations]), _bytes(0x30))
        levels.append(builder.or_(low, high))
    return levels, scales, None


def _q6_k_unpacked(builder, block):
    """AVX2's Q6_K levels: each half block's four runs of 32 values made with byte-wise
    operations from the bytes as stored (no lane crossing), then `_regrouped`."""
    by_half = []
    for h in range(2):
        low_a, low_b, high = (
            _load(builder, block, _const(at), _EIGHT) for at in (64 * h, 64 * h + 32, 128 + 32 * h)
        )
        runs = [  # values 32 r .. 32 r + 31 of the half: a nibble, then two high bits
            builder.or_(
                builder.and_(_shifted_left(builder, low, -nibble), _bytes_of(0x0F)),
                builder.and_(_shifted_left(builder, high, 4 - 2 * r), _bytes_of(0x30)),
            )
            for r, (low, nibble) in enumerate([(low_a, 0), (low_b, 0), (low_a, 4), (low_b, 4)])
        ]
        by_half.append(_regrouped(builder, runs))
    return [_shuffle(builder, by_half[0][k], by_half[1][k], list(range(16))) for k in range(4)]


def _q4_k_unpacked(builder, block):
    """AVX2's Q4_K levels: each 32-byte chunk's low and high nibbles (sub-blocks 2c and
    2c + 1, in order) by byte-wise masks, then `_regrouped` four sub-blocks at a time."""
    sub_blocks = []
    for c in range(4):
        chunk = _load(builder, block, _const(16 + 32 * c), _EIGHT)
        sub_blocks.append(builder.and_(chunk, _bytes_of(0x0F)))
        sub_blocks.append(builder.and_(_shifted_left(builder, chunk, -4), _bytes_of(0x0F)))
    first, last = _regrouped(builder, sub_blocks[:4]), _regrouped(builder, sub_blocks[4:])
    return [_shuffle(builder, first[k], last[k], list(range(16))) for k in range(4)]


_EIGHT = ir.VectorType(_I32, 8)


def _bytes_of(value: int) -> ir.Constant:
    return ir.Constant(_EIGHT, [value * 0x01010101] * 8)


def _shifted_left(builder, value, bits: int):
    """32-bit lanes shifted left by `bits` (right by ``-bits``)."""
    if bits >= 0:
        return builder.shl(value, ir.Constant(_EIGHT, [bits] * 8))
    return builder.lshr(value, ir.Constant(_EIGHT, [-bits] * 8))


def _regrouped(builder, runs):
    """Four vectors of 8 32-bit groups ``r[0..7]`` as four vectors ``k``: ``[r0[k], r1[k],
    r2[k], r3[k], r0[4 + k], .., r3[4 + k]]``, by 32-bit then 64-bit unpacks (which stay
    within 128-bit halves: no lane crossing)."""
    unpack_32 = ([0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15])
    unpack_64 = ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15])
    t0, t1, t2, t3 = (
        _shuffle(builder, runs[x], runs[x + 1], lanes) for x in (0, 2) for lanes in unpack_32
    )
    return [_shuffle(builder, x, y, lanes) for x, y in ((t0, t2), (t1, t3)) for lanes in unpack_64]


_DECODERS = {Q4_K: _q4_k_decode, Q6_K: _q6_k_decode}


def _data(context, builder, array_type, value):
    return context.make_array(array_type)(context, builder, value).data


@intrinsic
def _decode_block(typingctx, kind, row, at, levels, scales, minimums, slot, f16):
    """Decodes table block ``row[at:]`` into ``levels[256 * slot:]`` and its group scales
    (and Q4_K's minimums) into ``scales[16 * slot:]`` (``minimums[16 * slot:]``)."""
    if not isinstance(kind, types.IntegerLiteral):
        return None
    decode = _DECODERS[kind.literal_value]

    def codegen(context, builder, sig, args):
        row_p, levels_p, scales_p, minimums_p, f16_p = (
            _data(context, builder, sig.args[i], args[i]) for i in (1, 3, 4, 5, 7)
        )
        at, slot = args[2], args[6]
        intp = slot.type
        vectors, group_scales, group_minimums = decode(builder, builder.gep(row_p, [at]), f16_p)
        start = builder.mul(slot, intp(BLOCK))
        for k, vector in enumerate(vectors):
            target = _pointer(builder, levels_p, builder.add(start, intp(64 * k)), _SUMS)
            builder.store(vector, target, align=1)
        groups = builder.mul(slot, intp(BLOCK // GROUP))
        builder.store(group_scales, _pointer(builder, scales_p, groups, _FSUMS), align=4)
        if group_minimums is not None:
            builder.store(group_minimums, _pointer(builder, minimums_p, groups, _FSUMS), align=4)
        return context.get_dummy_value()

    return types.none(kind, row, at, levels, scales, minimums, slot, f16), codegen


def _lane_total(builder, lanes, first=0, width=16):
    """Lanes ``first .. first + width - 1`` added in a fixed tree: halves, quarters, ..."""
    while width > 1:
        width //= 2
        lanes = builder.fadd(
            _shuffle(builder, lanes, lanes, list(range(first, first + width))),
            _shuffle(builder, lanes, lanes, list(range(first + width, first + 2 * width))),
        )
        first = 0
    return builder.extract_element(lanes, _const(0))


def _vpdpbusd(builder, start, levels, x):
    """``start`` plus the 4-byte products of `levels` and `x`, in two chains (the next
    product need not wait for these)."""
    chains = [start, ir.Constant(_SUMS, [0] * 16)]
    for k in range(4):
        chains[k % 2] = _dot_bytes(builder, chains[k % 2], levels[k], x[k])
    return builder.add(*chains)


def _lane_sums(builder, kind, start, levels, x):
    """``start`` plus the integer sums of `levels` and `x`, lane ``j`` that of the VNNI
    layout's lane ``j``."""
    if _VNNI:
        return _vpdpbusd(builder, start, levels, x)
    sums = _vpdpbusd(builder, ir.Constant(_SUMS, [0] * 16), levels, x)
    return builder.add(start, _shuffle(builder, sums, sums, list(_VNNI_LANE_AT[kind])))


def _dot_bytes(builder, total, levels, x):
    """``total`` plus, in each 32-bit lane, the sum of the products of its 4 unsigned
    `levels` and signed `x` bytes (``vpdpbusd``). Without VNNI: ``vpmaddubsw`` adds pairs of
    products into 16 bits, which never saturate here (levels <= 63, ``|x| <= 127``: at most
    16002), and ``vpmaddwd`` by ones adds pairs of those: the same exact sums."""
    if _VNNI:
        return _call(builder, "llvm.x86.avx512.vpdpbusd.512", _SUMS, [total, levels, x])
    words = ir.VectorType(ir.IntType(16), 16)
    ones = ir.Constant(words, [1] * 16)
    halves = []
    for h in range(2):
        lanes = list(range(32 * h, 32 * h + 32))
        level_half, x_half = (_shuffle(builder, v, v, lanes) for v in (levels, x))
        pairs = _call(builder, "llvm.x86.avx2.pmadd.ub.sw", words, [level_half, x_half])
        quads = _call(builder, "llvm.x86.avx2.pmadd.wd", ir.VectorType(_I32, 8), [pairs, ones])
        halves.append(quads)
    return builder.add(total, _shuffle(builder, *halves, list(range(16))))


def _emit_tile(context, builder, q4_k, rows, count, weights, arrays, first, out_p):
    """The logits of `rows` rows and `count` tokens from ``first`` into ``out_p[r * count +
    t]``; ``weights(b)`` gives each row's block ``b`` as (levels, scales, minimums).

    Q4_K takes tokens in pairs (the last alone pairs with itself): lanes ``j`` and ``j + 8``
    share a sub-block, so one token's 16 integer lanes fold into 8, and a pair's float32
    work is one vector: lanes 0..7 the first token's, 8..15 the second's. Q6_K keeps 16
    lanes (16 sub-blocks) per token."""
    xq_p, dx_p, group_p = (_data(context, builder, kind, value) for kind, value in arrays)
    dx_type, dx_value = arrays[1]
    blocks, all_tokens = cgutils.unpack_tuple(
        builder, context.make_array(dx_type)(context, builder, dx_value).shape
    )
    intp = first.type
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_FSUMS, [_FSUMS] * 3), "llvm.fma.v16f32"
    )
    if q4_k:
        groups = [(t, min(t + 1, count - 1)) for t in range(0, count, 2)]
    else:
        groups = [(t,) for t in range(count)]
    zeros = ir.Constant(_FSUMS, [0.0] * 16)
    sums = [[cgutils.alloca_once_value(builder, zeros) for _ in groups]
            for _ in range(rows)]  # fmt: skip
    eight = ir.VectorType(_F32, 8)
    with cgutils.for_range(builder, blocks, intp=intp) as loop:
        b = loop.index

        def token_at(t):
            return builder.add(builder.mul(b, all_tokens), builder.add(first, intp(t)))

        def x_of(t):
            at = builder.mul(token_at(t), intp(BLOCK))
            return [_load(builder, xq_p, builder.add(at, intp(64 * k)), _LEVELS) for k in range(4)]

        row_levels, row_scales, row_minimums = weights(b)
        for g, group in enumerate(groups):
            xs = {t: x_of(t) for t in group}
            if q4_k:
                halves = [
                    [_load(builder, group_p, builder.add(builder.mul(token_at(t), intp(16)),
                                                         intp(8 * h)), eight, align=4)
                     for t in group]
                    for h in range(2)
                ]  # fmt: skip
                level_sums, scale_x = (_shuffle(builder, *pair, list(range(16))) for pair in
                                       (halves[0], halves[1]))  # fmt: skip
            else:
                token = token_at(group[0])
                scale_x = _broadcast(builder, builder.load(builder.gep(dx_p, [token])))
                start = _load(builder, group_p, builder.mul(token, intp(16)), _SUMS, align=4)
            for r in range(rows):
                if q4_k:  # the pairs' shuffles also put AVX2's lanes back in order
                    none = ir.Constant(_SUMS, [0] * 16)
                    totals = {t: _vpdpbusd(builder, none, row_levels[r], xs[t]) for t in group}
                    a, c = (totals[t] for t in group)
                    at = _VNNI_LANE_AT[Q4_K]
                    low = _shuffle(builder, a, c, [*at[:8], *(16 + at[:8])])
                    high = _shuffle(builder, a, c, [*at[8:], *(16 + at[8:])])
                    total = builder.add(low, high)
                else:
                    total = _lane_sums(builder, Q6_K, start, row_levels[r], xs[group[0]])
                running = builder.load(sums[r][g])
                scale = builder.fmul(row_scales[r], scale_x)
                running = builder.call(fma, [builder.sitofp(total, _FSUMS), scale, running])
                if q4_k:
                    running = builder.call(fma, [row_minimums[r], level_sums, running])
                builder.store(running, sums[r][g])
    for r in range(rows):
        for g, group in enumerate(groups):
            lanes = builder.load(sums[r][g])
            for half, t in enumerate(group):
                total = (_lane_total(builder, lanes, 8 * half, 8) if q4_k
                         else _lane_total(builder, lanes))  # fmt: skip
                builder.store(total, builder.gep(out_p, [intp(r * count + t)]))


def _literals(*values) -> bool:
    return all(isinstance(value, types.IntegerLiteral) for value in values)


@intrinsic
def _tile(typingctx, kind, tokens, levels, scales, minimums, xq, dx, per_group, first, out):
    """``out[r * tokens + t]``: the logit of decoded row ``r < ROWS`` (`_decode_block`'s slot
    ``b * ROWS + r`` for block ``b``) and token ``first + t``."""
    if not _literals(kind, tokens):
        return None
    q4_k = kind.literal_value == Q4_K

    def codegen(context, builder, sig, args):
        levels_p, scales_p, minimums_p, out_p = (
            _data(context, builder, sig.args[i], args[i]) for i in (2, 3, 4, 9)
        )
        intp = args[8].type

        def weights(b):
            row_levels, row_scales, row_minimums = [], [], []
            for r in range(ROWS):
                slot = builder.add(builder.mul(b, intp(ROWS)), intp(r))
                at = builder.mul(slot, intp(BLOCK))
                row_levels.append([_load(builder, levels_p, builder.add(at, intp(64 * k)),
                                         _LEVELS) for k in range(4)])  # fmt: skip
                at = builder.mul(slot, intp(BLOCK // GROUP))
                row_scales.append(_load(builder, scales_p, at, _FSUMS, align=4))
                if q4_k:
                    row_minimums.append(_load(builder, minimums_p, at, _FSUMS, align=4))
            return row_levels, row_scales, row_minimums

        arrays = [(sig.args[i], args[i]) for i in (5, 6, 7)]
        _emit_tile(
            context, builder, q4_k, ROWS, tokens.literal_value, weights, arrays, args[8], out_p
        )
        return context.get_dummy_value()

    return (
        types.none(kind, tokens, levels, scales, minimums, xq, dx, per_group, first, out),
        codegen,
    )


@intrinsic
def _fused_tile(typingctx, kind, tokens, row, xq, dx, per_group, first, out, f16):
    """`_tile` for one row of the table, decoded block by block in registers: calls with
    fewer than `TOKENS` tokens, where decoding into a buffer would not pay (and several rows
    read at once stream from memory slower than one)."""
    if not _literals(kind, tokens):
        return None
    q4_k, decode = kind.literal_value == Q4_K, _DECODERS[kind.literal_value]
    block_bytes = _BLOCK_BYTES[kind.literal_value]

    def codegen(context, builder, sig, args):
        row_p, out_p, f16_p = (_data(context, builder, sig.args[i], args[i]) for i in (2, 7, 8))
        intp = args[6].type
        row_bytes = builder.extract_value(
            context.make_array(sig.args[2])(context, builder, args[2]).shape, 0
        )

        def weights(b):
            block = builder.gep(row_p, [builder.mul(b, intp(block_bytes))])
            prefetch_bytes(builder, builder.gep(block, [row_bytes]), block_bytes)  # next row's
            levels, scales, minimums = decode(builder, block, f16_p)
            return [[builder.bitcast(v, _LEVELS) for v in levels]], [scales], [minimums]

        arrays = [(sig.args[i], args[i]) for i in (3, 4, 5)]
        _emit_tile(context, builder, q4_k, 1, tokens.literal_value, weights, arrays, args[6], out_p)
        return context.get_dummy_value()

    return types.none(kind, tokens, row, xq, dx, per_group, first, out, f16), codegen


@jit(nogil=True)
def _fused_span(kind, table, xq, dx, per_group, out, start, stop, f16):
    tokens = dx.shape[1]
    logits = np.empty(TOKENS, np.float32)
    for r in range(start, stop):
        if tokens == 1:
            _fused_tile(kind, 1, table[r], xq, dx, per_group, 0, logits, f16)
        elif tokens == 2:
            _fused_tile(kind, 2, table[r], xq, dx, per_group, 0, logits, f16)
        else:
            _fused_tile(kind, 3, table[r], xq, dx, per_group, 0, logits, f16)
        for t in range(tokens):
            out[t, r] = logits[t]


@jit(nogil=True)
def _span(kind, table, xq, dx, per_group, out, start, stop, f16):
    block_bytes = 144 if kind == Q4_K else 210
    blocks, tokens = dx.shape
    if tokens < TOKENS:
        _fused_span(kind, table, xq, dx, per_group, out, start, stop, f16)
        return
    levels = np.empty(blocks * ROWS * BLOCK, np.uint8)
    scales = np.empty(blocks * ROWS * (BLOCK // GROUP), np.float32)
    minimums = np.empty_like(scales)
    logits = np.empty(ROWS * TOKENS, np.float32)
    for first_row in range(start, stop, ROWS):
        rows = min(ROWS, stop - first_row)
        for r in range(ROWS):
            row = table[first_row + min(r, rows - 1)]  # a short tile repeats its last row
            for b in range(blocks):
                _decode_block(kind, row, b * block_bytes, levels, scales, minimums,
                              b * ROWS + r, f16)  # fmt: skip
        t = 0
        while t + TOKENS <= tokens:
            _tile(kind, TOKENS, levels, scales, minimums, xq, dx, per_group, t, logits)
            for r in range(rows):
                for i in range(TOKENS):
                    out[t + i, first_row + r] = logits[r * TOKENS + i]
            t += TOKENS
        while t < tokens:
            _tile(kind, 1, levels, scales, minimums, xq, dx, per_group, t, logits)
            for r in range(rows):
                out[t, first_row + r] = logits[r]
            t += 1


@jit(nogil=True, parallel=True)
def _parallel(kind, table, xq, dx, per_group, out, f16):
    rows = table.shape[0]
    for block in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
        start = block * ROW_BLOCK
        _span(kind, table, xq, dx, per_group, out, start, min(start + ROW_BLOCK, rows), f16)


@jit(nogil=True)
def _serial_q4_k(table, xq, dx, per_group, out, f16):
    _span(Q4_K, table, xq, dx, per_group, out, 0, table.shape[0], f16)


@jit(nogil=True)
def _serial_q6_k(table, xq, dx, per_group, out, f16):
    _span(Q6_K, table, xq, dx, per_group, out, 0, table.shape[0], f16)


@jit(nogil=True)
def _parallel_q4_k(table, xq, dx, per_group, out, f16):
    _parallel(Q4_K, table, xq, dx, per_group, out, f16)


@jit(nogil=True)
def _parallel_q6_k(table, xq, dx, per_group, out, f16):
    _parallel(Q6_K, table, xq, dx, per_group, out, f16)


_KERNELS = {"q4_k": (_serial_q4_k, _parallel_q4_k), "q6_k": (_serial_q6_k, _parallel_q6_k)}


def int8_rowdot(
    fmt: str, hidden: np.ndarray, table: np.ndarray, out: np.ndarray, parallel: bool = True
) -> None:
    """``out[t, v] ~ dot(hidden[t], decode(table[v]))`` with `hidden` quantized to 8 bits per
    block of 256 (the module's bound); arrays as `quantized_rowdot` takes them.

    Raises:
        ValueError: `fmt` is not one of `INT8_FORMATS`, or the arrays do not fit together.
    """
    if fmt not in INT8_FORMATS:
        raise ValueError(f"int8_rowdot: no integer kernel for {fmt!r}; one of {INT8_FORMATS}")
    kind = _KINDS[fmt]
    block_bytes = _BLOCK_BYTES[kind]
    if (
        hidden.ndim != 2
        or table.shape[1] % block_bytes
        or hidden.shape[1] != table.shape[1] // block_bytes * BLOCK
        or out.shape != (hidden.shape[0], table.shape[0])
    ):
        raise ValueError(
            f"int8_rowdot: hidden {hidden.shape}, {fmt} table {table.shape} and out "
            f"{out.shape} do not fit ((tokens, width), (vocab, row bytes), (tokens, vocab))"
        )
    if out.size == 0:
        return
    shifts = _shifts(hidden)
    if shifts is not None:
        hidden = np.ldexp(hidden, -shifts[:, None])
    xq, dx, per_group = _kernel_activations(kind, hidden)
    serial, parallel_kernel = _KERNELS[fmt]
    if not parallel or table.shape[0] < 2 * ROW_BLOCK:
        serial(table, xq, dx, per_group, out, F16_TO_F32)
    else:
        launch(
            lambda: parallel_kernel(table, xq, dx, per_group, out, F16_TO_F32),
            lambda: serial(table, xq, dx, per_group, out, F16_TO_F32),
        )
    if shifts is not None:
        out[...] = np.ldexp(out, shifts[:, None])


_LARGEST = 100
"""Tokens whose values reach ``2**_LARGEST`` are scaled down by a power of two first."""


def _shifts(hidden: np.ndarray) -> np.ndarray | None:
    """Per token, the power of two that brings its largest finite value under
    ``2**_LARGEST`` (0 for most), or None where every token is under it: near float32's
    largest values the scale products overflowed to inf (or NaN) before they cancelled.
    Scaling by a power of two is exact where values stay normal floats, so the kernel then
    makes the same levels and products, each scaled, and the logits scaled back are the bits
    it would give without overflow; a block of the same token more than ``2**100`` times
    smaller may fall below the normal range and keep fewer bits of its levels (its share of
    the logit is then too small to show)."""
    magnitudes = np.abs(hidden)
    if magnitudes.size == 0 or magnitudes.max() < np.float32(2.0**_LARGEST):
        return None  # every call but those near float32's range (NaN and inf go on below)
    with np.errstate(invalid="ignore"):
        largest = np.max(np.where(np.isfinite(magnitudes), magnitudes, 0), axis=1)
    if not (largest >= np.float32(2.0**_LARGEST)).any():
        return None
    return np.maximum(np.frexp(largest)[1] - _LARGEST, 0).astype(np.int32)
