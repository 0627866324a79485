"""float32 rows rounded to bfloat16 or float16 bits (`to_bf16`, `to_f16`), bit for bit as
``ml_dtypes`` and numpy round."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .cache import jit

__all__ = ["to_bf16", "to_f16"]

_I16 = ir.IntType(16)
_I32 = ir.IntType(32)
_F32_IR = ir.FloatType()


def _c(value: int) -> ir.Constant:
    return ir.Constant(_I32, value)


# ---- float32 -> bfloat16 / float16 ------------------------------------------------------------
# Written as LLVM IR on 32-bit lanes: numba widens its integer arithmetic to 64 bits, which
# halves the vector width.


@intrinsic
def _bf16_bits(typingctx, x):
    """float32 -> bfloat16 bits, rounded to nearest even; NaN -> the quiet NaN of its sign.
    Equal to ``ml_dtypes``' ``astype(bfloat16)`` for every input."""

    def codegen(context, builder, sig, args):
        u = builder.bitcast(args[0], _I32)
        lsb = builder.and_(builder.lshr(u, _c(16)), _c(1))
        rounded = builder.lshr(builder.add(builder.add(u, _c(0x7FFF)), lsb), _c(16))
        nan = builder.or_(builder.and_(builder.lshr(u, _c(16)), _c(0x8000)), _c(0x7FC0))
        is_nan = builder.icmp_unsigned(">", builder.and_(u, _c(0x7FFFFFFF)), _c(0x7F800000))
        return builder.trunc(builder.select(is_nan, nan, rounded), _I16)

    if x == types.float32:
        return types.uint16(types.float32), codegen
    return None


@intrinsic
def _f16_bits(typingctx, x):
    """float32 -> float16 bits, rounded to nearest even, branch-free. Equal to numpy's
    ``astype(float16)`` for every input, NaN payloads included (numpy keeps the top ten payload
    bits, and at least one)."""

    def codegen(context, builder, sig, args):
        u = builder.bitcast(args[0], _I32)
        sign = builder.and_(builder.lshr(u, _c(16)), _c(0x8000))
        a = builder.and_(u, _c(0x7FFFFFFF))
        # Normal halves: rebias the exponent, drop 13 mantissa bits rounding to even; inf above.
        lsb = builder.and_(builder.lshr(a, _c(13)), _c(1))
        normal = builder.lshr(builder.add(builder.add(a, _c(0xFFF - 0x38000000)), lsb), _c(13))
        normal = builder.select(builder.icmp_unsigned(">", normal, _c(0x7C00)), _c(0x7C00), normal)
        # Subnormal halves: |x| * 2**24 (exact) rounded to an integer by the FPU, to even.
        below = builder.icmp_unsigned("<", a, _c(0x38800000))
        scaled = builder.fmul(
            builder.bitcast(builder.select(below, a, _c(0x38800000)), _F32_IR),
            ir.Constant(_F32_IR, 2.0**24),
        )
        rint = builder.module.declare_intrinsic("llvm.rint", [_F32_IR])
        tiny = builder.fptoui(builder.call(rint, [scaled]), _I32)
        # inf and NaN.
        payload = builder.lshr(builder.and_(a, _c(0x7FFFFF)), _c(13))
        payload = builder.select(builder.icmp_unsigned("<", payload, _c(1)), _c(1), payload)
        is_nan = builder.icmp_unsigned(">", a, _c(0x7F800000))
        special = builder.or_(_c(0x7C00), builder.select(is_nan, payload, _c(0)))
        body = builder.select(below, tiny, normal)
        body = builder.select(builder.icmp_unsigned(">=", a, _c(0x7F800000)), special, body)
        return builder.trunc(builder.or_(sign, body), _I16)

    if x == types.float32:
        return types.uint16(types.float32), codegen
    return None


@jit()
def to_bf16(src, dst):
    for j in range(src.size):
        dst[j] = _bf16_bits(src[j])


@jit()
def to_f16(src, dst):
    for j in range(src.size):
        dst[j] = _f16_bits(src[j])
