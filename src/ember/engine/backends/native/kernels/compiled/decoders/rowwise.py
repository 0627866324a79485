"""Row decoders of the rowwise formats (`ember.quant.rowwise`): ROWWISE_INT8, _INT4, _INT2.

A row is its packed values, then its scale and bias; the row's width is ``dst.size``, so the
scale sits right after ``dst.size / values-per-byte`` bytes. INT8 rounds ``q * scale + bias``
once, with LLVM's ``fma`` (the FMA unit, or libm's exact ``fmaf`` without one), as torch does;
the INT4 and INT2 products (fp16 scale times a 4-bit level) are exact, so a plain multiply and
add gives the same float32.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..cache import jit
from .bytes import f32, half_at, u32_at

__all__ = ["ROW_DECODERS"]


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` in float32, rounded once."""

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    if a == types.float32 and b == types.float32 and c == types.float32:
        return types.float32(types.float32, types.float32, types.float32), codegen
    return None


@intrinsic
def _float_bits(typingctx, word):
    """The float32 whose bits are the low 32 of the integer ``word``."""

    def codegen(context, builder, sig, args):
        low = builder.trunc(args[0], ir.IntType(32))
        return builder.bitcast(low, ir.FloatType())

    if isinstance(word, types.Integer):
        return types.float32(word), codegen
    return None


@jit()
def _row_int8(src, dst, f16):
    n = dst.size
    scale = _float_bits(u32_at(src, n))
    bias = _float_bits(u32_at(src, n + 4))
    for j in range(n):
        dst[j] = _fma(f32(src[j]), scale, bias)


@jit()
def _row_int4(src, dst, f16):
    packed = dst.size // 2
    scale = half_at(src, packed, f16)
    bias = half_at(src, packed + 2, f16)
    for i in range(packed):
        byte = src[i]
        dst[2 * i] = f32(byte & 15) * scale + bias
        dst[2 * i + 1] = f32(byte >> 4) * scale + bias


@jit()
def _row_int2(src, dst, f16):
    packed = dst.size // 4
    scale = half_at(src, packed, f16)
    bias = half_at(src, packed + 2, f16)
    for i in range(packed):
        byte = src[i]
        for k in range(4):
            dst[4 * i + k] = f32((byte >> (2 * k)) & 3) * scale + bias


ROW_DECODERS = {
    "rowwise_int8": _row_int8,
    "rowwise_int4": _row_int4,
    "rowwise_int2": _row_int2,
}
