"""Q4_K and Q6_K blocks as the integer head kernels (`int8_rowdot`, `amx_rowdot`) read them,
in LLVM IR: unsigned levels (Q4_K 0..15, Q6_K 0..63) laid out for the CPU's byte dot
products, and each sub-block's float32 scale (and Q4_K's minimum), made by the same float32
operations on every CPU, so that the logits do not depend on which kernel made them."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import cgutils

from .target import target_has

__all__ = [
    "AVX2_LANES",
    "BLOCK",
    "BLOCK_BYTES",
    "DECODERS",
    "F32",
    "FSUMS",
    "I8",
    "I32",
    "Q4_K",
    "Q6_K",
    "SUMS",
    "VNNI",
    "VNNI_LANE_AT",
    "array_data",
    "broadcast",
    "call_intrinsic",
    "constant",
    "load_at",
    "pointer_at",
    "shuffle",
]

Q4_K, Q6_K = 0, 1
"""The kinds of block, as the kernels' literal arguments name them."""

BLOCK = 256
"""Values of a block (of the table's, and of the activations' scales: llama.cpp's Q8_K)."""

BLOCK_BYTES = {Q4_K: 144, Q6_K: 210}

I8, I32 = ir.IntType(8), ir.IntType(32)
F32 = ir.FloatType()
SUMS = ir.VectorType(I32, 16)
FSUMS = ir.VectorType(F32, 16)

VNNI = target_has("avx512bw", "avx512vnni")
"""Whether each 4-byte product sum is AVX-512 VNNI's one ``vpdpbusd``; else AVX2's
``vpmaddubsw`` and ``vpmaddwd`` make the same sums (`int8_rowdot`), from levels laid out
for AVX2 (`AVX2_LANES`)."""


def array_data(context, builder, array_type, value):
    """The data pointer of a numba array argument."""
    return context.make_array(array_type)(context, builder, value).data


def constant(value: int, kind: ir.Type = I32) -> ir.Constant:
    return ir.Constant(kind, value)


def _lanes(values) -> ir.Constant:
    return ir.Constant(SUMS, list(values))


def shuffle(builder, a, b, lanes):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(I32, len(lanes)), lanes))


def pointer_at(builder, base, offset, kind):
    return builder.bitcast(builder.gep(base, [offset]), kind.as_pointer())


def load_at(builder, base, offset, kind, align=1):
    return builder.load(pointer_at(builder, base, offset, kind), align=align)


def _half(builder, block, offset, f16):
    """The fp16 at ``block + offset`` as float32, through numpy's conversion table."""
    index = builder.zext(load_at(builder, block, constant(offset), ir.IntType(16)), I32)
    return builder.load(builder.gep(f16, [index]))


def broadcast(builder, value, count=16):
    vector = builder.insert_element(
        ir.Constant(ir.VectorType(value.type, 1), None), value, constant(0)
    )
    return shuffle(builder, vector, vector, [0] * count)


def call_intrinsic(builder, name, result, arguments):
    signature = ir.FunctionType(result, [a.type for a in arguments])
    return builder.call(cgutils.get_or_insert_function(builder.module, signature, name), arguments)


def _bytes(value: int) -> ir.Constant:
    return _lanes([value * 0x01010101] * 16)


def _q4_k_decode(builder, block, f16):
    """Levels 0..15 (4 vectors of 16 lanes, lane ``j`` of vector ``k`` holding values
    ``32 (j % 8) + 16 (j // 8) + 4 k .. + 3``: lanes ``j`` and ``j + 8`` share sub-block
    ``j % 8``), and its ``d * sc`` and ``-dmin * m`` in lanes ``j`` and ``j + 8``."""
    packed = load_at(builder, block, constant(4), ir.VectorType(I8, 16))
    low = ir.Constant(ir.VectorType(ir.IntType(1), 8), [1] * 4 + [0] * 4)
    eight = ir.VectorType(I8, 8)

    def splat(value):
        return ir.Constant(eight, [value] * 8)

    def six_bits(first, second, high_nibble):
        a = shuffle(builder, packed, packed, first)
        b = shuffle(builder, packed, packed, second)
        top = builder.shl(builder.lshr(b, splat(6)), splat(4))
        bottom = builder.lshr(a, splat(4)) if high_nibble else builder.and_(a, splat(15))
        return builder.select(low, builder.and_(a, splat(63)), builder.or_(bottom, top))

    sc = six_bits([0, 1, 2, 3, 8, 9, 10, 11], [0, 1, 2, 3, 0, 1, 2, 3], False)
    m = six_bits([4, 5, 6, 7, 8, 9, 10, 11], [4, 5, 6, 7, 4, 5, 6, 7], True)
    d = broadcast(builder, _half(builder, block, 0, f16))
    dmin = broadcast(builder, builder.fneg(_half(builder, block, 2, f16)))
    twice = [j % 8 for j in range(16)]
    scales = builder.fmul(d, builder.uitofp(shuffle(builder, sc, sc, twice), FSUMS))
    minimums = builder.fmul(dmin, builder.uitofp(shuffle(builder, m, m, twice), FSUMS))
    # qs: 4 chunks of 32 bytes; chunk c's low nibbles are sub-block 2c, its high ones 2c + 1
    if not VNNI:
        return _q4_k_unpacked(builder, block), scales, minimums
    first = load_at(builder, block, constant(16), SUMS)
    second = load_at(builder, block, constant(80), SUMS)
    shifts = _lanes(4 * (j % 2) for j in range(16))
    levels = []
    for k in range(4):
        words = shuffle(
            builder, first, second, [8 * ((j % 8) // 2) + 4 * (j // 8) + k for j in range(16)]
        )
        levels.append(builder.and_(builder.lshr(words, shifts), _bytes(15)))
    return levels, scales, minimums


AVX2_LANES = {
    Q4_K: np.array([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]),
    Q6_K: np.array([8 * h + s for h in (0, 1) for s in (0, 2, 4, 6, 1, 3, 5, 7)]),
}
"""Without VNNI, the lane (of the VNNI layout) whose values lane ``j`` of the levels holds: the
order in which 32-bit unpacks leave them (`_regrouped`). The integer sums are put back in the
VNNI layout's order before any float work, which is then the same."""

VNNI_LANE_AT = {
    kind: np.arange(16) if VNNI else np.argsort(lanes) for kind, lanes in AVX2_LANES.items()
}
"""Where the levels' lanes hold the VNNI layout's lane ``j``."""


def _q6_k_decode(builder, block, f16):
    """Levels 0..63 (4 vectors of 16 lanes, lane ``j`` of vector ``k`` holding values
    ``16 j + 4 k .. + 3``, sub-block ``j``; without VNNI, `AVX2_LANES` says which) and
    ``d * sc`` per lane (of sub-block ``j`` always)."""
    sc = builder.sext(load_at(builder, block, constant(192), ir.VectorType(I8, 16)), SUMS)
    d = broadcast(builder, _half(builder, block, 208, f16))
    scales = builder.fmul(d, builder.sitofp(sc, FSUMS))
    if not VNNI:
        return _q6_k_unpacked(builder, block), scales, None
    low_bits = [load_at(builder, block, constant(64 * h), SUMS) for h in range(2)]
    high_bits = load_at(builder, block, constant(128), SUMS)
    quarter = [(j % 8) // 2 for j in range(16)]
    nibble_shifts = _lanes(4 * (q // 2) for q in quarter)
    rotations = _lanes((4 - 2 * q) % 32 for q in quarter)
    fshl = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(SUMS, [SUMS] * 3), "llvm.fshl.v16i32"
    )
    levels = []
    for k in range(4):
        lows = shuffle(builder, *low_bits, [16 * (j // 8) + 8 * (quarter[j] % 2) + 4 * (j % 2) + k
                                             for j in range(16)])  # fmt: skip
        highs = shuffle(builder, high_bits, high_bits,
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
            load_at(builder, block, constant(at), _EIGHT)
            for at in (64 * h, 64 * h + 32, 128 + 32 * h)
        )
        runs = [  # values 32 r .. 32 r + 31 of the half: a nibble, then two high bits
            builder.or_(
                builder.and_(_shifted_left(builder, low, -nibble), _bytes_of(0x0F)),
                builder.and_(_shifted_left(builder, high, 4 - 2 * r), _bytes_of(0x30)),
            )
            for r, (low, nibble) in enumerate([(low_a, 0), (low_b, 0), (low_a, 4), (low_b, 4)])
        ]
        by_half.append(_regrouped(builder, runs))
    return [shuffle(builder, by_half[0][k], by_half[1][k], list(range(16))) for k in range(4)]


def _q4_k_unpacked(builder, block):
    """AVX2's Q4_K levels: each 32-byte chunk's low and high nibbles (sub-blocks 2c and
    2c + 1, in order) by byte-wise masks, then `_regrouped` four sub-blocks at a time."""
    sub_blocks = []
    for c in range(4):
        chunk = load_at(builder, block, constant(16 + 32 * c), _EIGHT)
        sub_blocks.append(builder.and_(chunk, _bytes_of(0x0F)))
        sub_blocks.append(builder.and_(_shifted_left(builder, chunk, -4), _bytes_of(0x0F)))
    first, last = _regrouped(builder, sub_blocks[:4]), _regrouped(builder, sub_blocks[4:])
    return [shuffle(builder, first[k], last[k], list(range(16))) for k in range(4)]


_EIGHT = ir.VectorType(I32, 8)


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
        shuffle(builder, runs[x], runs[x + 1], lanes) for x in (0, 2) for lanes in unpack_32
    )
    return [shuffle(builder, x, y, lanes) for x, y in ((t0, t2), (t1, t3)) for lanes in unpack_64]


DECODERS = {Q4_K: _q4_k_decode, Q6_K: _q6_k_decode}
