"""Row decoders of the legacy formats (`ember.quant.legacy`): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..cache import jit
from .bytes import f32, half_at, opaque

__all__ = ["ROW_DECODERS"]


# ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: blocks of 32 values ------------------------------------------
# Byte j of qs holds value j in its low nibble and value j + 16 in its high one; bit j of the
# 5-bit formats' qh word is bit 4 of value j (layouts: ember.quant.legacy). An offset level
# ``q - 8`` is computed as ``float(q) - 8``: the same float32 exactly.


_I32 = ir.IntType(32)


@intrinsic
def _plus_min(typingctx, scaled, minimum):
    """``scaled + minimum`` in float32, NaN payloads as the reference's numpy gives them: where
    both are NaN, ``scaled``'s (quieted), as x86 returns its first operand's NaN. LLVM takes
    ``fadd`` as commutative and may swap the operands, so a NaN ``scaled`` is selected
    explicitly, on integers where the optimizer cannot fold the choice away."""

    def codegen(context, builder, sig, args):
        scaled, minimum = args
        total = builder.bitcast(builder.fadd(scaled, minimum), _I32)
        bits = builder.bitcast(scaled, _I32)
        magnitude = builder.and_(bits, _I32(0x7FFFFFFF))
        is_nan = builder.icmp_unsigned(">", magnitude, _I32(0x7F800000))
        quiet = builder.or_(bits, _I32(0x00400000))
        return builder.bitcast(builder.select(is_nan, quiet, total), ir.FloatType())

    if scaled == types.float32 and minimum == types.float32:
        return types.float32(types.float32, types.float32), codegen
    return None


@jit()
def _row_q4_0(src, dst, f16):
    n16 = opaque(16)
    for b in range(dst.size // 32):
        o, e = b * 18, b * 32
        d = half_at(src, o, f16)
        for j in range(n16):
            byte = src[o + 2 + j]
            dst[e + j] = d * (f32(byte & 15) - np.float32(8))
            dst[e + 16 + j] = d * (f32(byte >> 4) - np.float32(8))


@jit()
def _row_q4_1(src, dst, f16):
    n16 = opaque(16)
    for b in range(dst.size // 32):
        o, e = b * 20, b * 32
        d = half_at(src, o, f16)
        m = half_at(src, o + 2, f16)
        for j in range(n16):
            byte = src[o + 4 + j]
            dst[e + j] = _plus_min(d * f32(byte & 15), m)
            dst[e + 16 + j] = _plus_min(d * f32(byte >> 4), m)


_BIT4_SPREAD = np.array(
    [sum(((byte >> k) & 1) << (8 * k + 4) for k in range(8)) for byte in range(256)], np.uint64
)
"""For each byte of a ``qh`` word, its eight bits as eight bytes of 0 or 16 (bit 4 of a value)."""


@jit(inline="always")
def _spread_qh(src, at, spread, high64):
    """Bit j of the ``qh`` word at byte ``at`` as byte j (0 or 16) of ``high64``: four table
    loads, where shifting the word per value kept the loops from vectorizing (~1.45x slower)."""
    for k in range(4):
        high64[k] = spread[src[at + k]]


@jit()
def _row_q5_0(src, dst, f16):
    n16 = opaque(16)
    high64 = np.empty(4, np.uint64)
    high = high64.view(np.uint8)
    spread = _BIT4_SPREAD
    for b in range(dst.size // 32):
        o, e = b * 22, b * 32
        d = half_at(src, o, f16)
        _spread_qh(src, o + 2, spread, high64)
        for j in range(n16):
            byte = src[o + 6 + j]
            dst[e + j] = d * (f32((byte & 15) | high[j]) - np.float32(16))
            dst[e + 16 + j] = d * (f32((byte >> 4) | high[j + 16]) - np.float32(16))


@jit()
def _row_q5_1(src, dst, f16):
    n16 = opaque(16)
    high64 = np.empty(4, np.uint64)
    high = high64.view(np.uint8)
    spread = _BIT4_SPREAD
    for b in range(dst.size // 32):
        o, e = b * 24, b * 32
        d = half_at(src, o, f16)
        m = half_at(src, o + 2, f16)
        _spread_qh(src, o + 4, spread, high64)
        if m == m:  # no NaN minimum: a plain sum has one NaN operand at most (13 % faster)
            for j in range(n16):
                byte = src[o + 8 + j]
                dst[e + j] = d * f32((byte & 15) | high[j]) + m
                dst[e + 16 + j] = d * f32((byte >> 4) | high[j + 16]) + m
            continue
        for j in range(n16):
            byte = src[o + 8 + j]
            dst[e + j] = _plus_min(d * f32((byte & 15) | high[j]), m)
            dst[e + 16 + j] = _plus_min(d * f32((byte >> 4) | high[j + 16]), m)


@jit()
def _row_q8_0(src, dst, f16):
    n32 = opaque(32)
    for b in range(dst.size // 32):
        o, e = b * 34, b * 32
        d = half_at(src, o, f16)
        for j in range(n32):
            dst[e + j] = np.float32(np.int8(src[o + 2 + j])) * d


ROW_DECODERS = {
    "q4_0": _row_q4_0,
    "q4_1": _row_q4_1,
    "q5_0": _row_q5_0,
    "q5_1": _row_q5_1,
    "q8_0": _row_q8_0,
}
