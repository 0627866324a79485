"""`nibbles16` and `nibbles8`: 4-bit codes through a 16-entry int8 table, times a scale, 16
values per byte shuffle (the IQ4 and FP4 decoders)."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..device import HAVE_STREAM

__all__ = ["nibbles8", "nibbles16"]

_I32 = ir.IntType(32)
_F32_IR = ir.FloatType()


def _c(value: int) -> ir.Constant:
    return ir.Constant(_I32, value)


# ---- 16-level tables: one byte shuffle per 16 values ------------------------------------------
# IQ4_NL/IQ4_XS levels and MXFP4/NVFP4's doubled E2M1 codes are 16-entry int8 tables. A scalar
# lookup per value keeps LLVM from vectorizing (or leaves it gathers, ~2x slower than Q4_0);
# ``pshufb`` looks up 16 nibbles at once, then the int8 levels widen to float32 and take the
# scale: ``scale * float(level)``, the reference's one product, so the same float32.

_V8I8 = ir.VectorType(ir.IntType(8), 8)
_V16I8 = ir.VectorType(ir.IntType(8), 16)
_V16I32 = ir.VectorType(_I32, 16)
_V16F32 = ir.VectorType(_F32_IR, 16)


def _lookup16(builder, table, index):
    """``table[index]`` lane by lane for two <16 x i8> vectors (indices 0..15)."""
    if HAVE_STREAM:  # x86-64: SSSE3 is part of every x86-64 CPU numba targets here
        fnty = ir.FunctionType(_V16I8, [_V16I8, _V16I8])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.ssse3.pshuf.b.128")
        return builder.call(fn, [table, index])
    out = ir.Constant(_V16I8, None)
    for k in range(16):
        lane = builder.extract_element(table, builder.extract_element(index, _c(k)))
        out = builder.insert_element(out, lane, _c(k))
    return out


def _nibbles_codegen(width):
    """Code for ``(levels, src, at, dst, to, scale)``, writing ``2 * width`` float32 to
    ``dst[to:]``: ``scale * levels[n]`` for the low nibbles of ``src[at:at + width]``, then for
    their high nibbles (``width`` 16, or 8 with both halves in one vector)."""

    def codegen(context, builder, sig, args):
        levels, src, at, dst, to, scale = args

        def data(i, array):
            return context.make_array(sig.args[i])(context, builder, array).data

        table = builder.load(builder.bitcast(data(0, levels), _V16I8.as_pointer()), align=1)
        raw = builder.gep(data(1, src), [at])
        if width == 16:
            q = builder.load(builder.bitcast(raw, _V16I8.as_pointer()), align=1)
            halves = [
                builder.and_(q, ir.Constant(_V16I8, [15] * 16)),
                builder.lshr(q, ir.Constant(_V16I8, [4] * 16)),
            ]
        else:
            q8 = builder.load(builder.bitcast(raw, _V8I8.as_pointer()), align=1)
            q = builder.shuffle_vector(q8, q8, ir.Constant(_V16I32, list(range(16))))
            nib = builder.lshr(q, ir.Constant(_V16I8, [0] * 8 + [4] * 8))
            halves = [builder.and_(nib, ir.Constant(_V16I8, [15] * 16))]
        splat = builder.insert_element(ir.Constant(_V16F32, None), scale, _c(0))
        splat = builder.shuffle_vector(splat, splat, ir.Constant(_V16I32, [0] * 16))
        out = builder.gep(data(3, dst), [to])
        for h, index in enumerate(halves):
            level = builder.sext(_lookup16(builder, table, index), _V16I32)
            value = builder.fmul(splat, builder.sitofp(level, _V16F32))
            at_h = builder.gep(out, [ir.Constant(ir.IntType(64), 16 * h)])
            builder.store(value, builder.bitcast(at_h, _V16F32.as_pointer()), align=4)
        return context.get_dummy_value()

    return codegen


def _nibbles_signature(levels, src, at, dst, to, scale):
    arrays = (levels, src, dst)
    if not all(isinstance(a, types.Array) and a.ndim == 1 for a in arrays):
        return None
    if (levels.dtype, src.dtype, dst.dtype) != (types.int8, types.uint8, types.float32):
        return None
    return types.void(levels, src, types.int64, dst, types.int64, types.float32)


@intrinsic
def nibbles16(typingctx, levels, src, at, dst, to, scale):
    """``dst[to + j] = scale * levels[src[at + j] & 15]`` and ``dst[to + 16 + j] = scale *
    levels[src[at + j] >> 4]`` for ``j < 16`` (``levels``: 16 int8; no bounds checks)."""
    return _nibbles_signature(levels, src, at, dst, to, scale), _nibbles_codegen(16)


@intrinsic
def nibbles8(typingctx, levels, src, at, dst, to, scale):
    """As `nibbles16` for 8 bytes: low nibbles to ``dst[to:to + 8]``, high ones to
    ``dst[to + 8:to + 16]``."""
    return _nibbles_signature(levels, src, at, dst, to, scale), _nibbles_codegen(8)
