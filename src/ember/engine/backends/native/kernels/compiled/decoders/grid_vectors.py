"""Vector intrinsics of the grid i-quant decoders: eight values from lattice grid rows, signs
and a scale in one 8-lane vector, where LLVM left the same loops scalar."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["grid4x2", "grid8", "grid8_delta"]

_I32 = ir.IntType(32)
_F32_IR = ir.FloatType()


def _c(value: int) -> ir.Constant:
    return ir.Constant(_I32, value)


_V4F32 = ir.VectorType(_F32_IR, 4)
_V8F32 = ir.VectorType(_F32_IR, 8)
_I64 = ir.IntType(64)


def _splat8(builder, x):
    v = builder.insert_element(ir.Constant(_V8F32, None), x, _c(0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, 8), [0] * 8))


def _load_row(context, builder, aty, array, row, vty):
    """Row ``row`` of a C-contiguous float32 array with ``vty.count`` columns, as a vector."""
    data = context.make_array(aty)(context, builder, array).data
    at = builder.gep(data, [builder.mul(row, ir.Constant(_I64, vty.count))])
    return builder.load(builder.bitcast(at, vty.as_pointer()), align=4)


def _store8(context, builder, aty, array, at, value):
    data = context.make_array(aty)(context, builder, array).data
    builder.store(value, builder.bitcast(builder.gep(data, [at]), _V8F32.as_pointer()), align=4)


def _f32_arrays(*arrays):
    return all(isinstance(a, types.Array) and a.dtype == types.float32 for a in arrays)


@intrinsic
def grid8(typingctx, grid, g, signs, s, dst, at, scale):
    """``dst[at:at + 8] = scale * grid[g] * signs[s]`` (rows of 8 float32; no bounds checks):
    one 8-lane vector, where LLVM left the same loop scalar."""
    if not _f32_arrays(grid, signs, dst):
        return None

    def codegen(context, builder, sig, args):
        grid, g, signs, s, dst, at, scale = args
        row = _load_row(context, builder, sig.args[0], grid, g, _V8F32)
        sign = _load_row(context, builder, sig.args[2], signs, s, _V8F32)
        value = builder.fmul(builder.fmul(_splat8(builder, scale), row), sign)
        _store8(context, builder, sig.args[4], dst, at, value)
        return context.get_dummy_value()

    i64, f32 = types.int64, types.float32
    return types.void(grid, i64, signs, i64, dst, i64, f32), codegen


@intrinsic
def grid4x2(typingctx, grid, g0, g1, signs, s, dst, at, scale):
    """As `grid8` with the 8 grid values from two rows of 4 (IQ3): ``grid[g0], grid[g1]``."""
    if not _f32_arrays(grid, signs, dst):
        return None

    def codegen(context, builder, sig, args):
        grid, g0, g1, signs, s, dst, at, scale = args
        r0 = _load_row(context, builder, sig.args[0], grid, g0, _V4F32)
        r1 = _load_row(context, builder, sig.args[0], grid, g1, _V4F32)
        row = builder.shuffle_vector(r0, r1, ir.Constant(ir.VectorType(_I32, 8), list(range(8))))
        sign = _load_row(context, builder, sig.args[3], signs, s, _V8F32)
        value = builder.fmul(builder.fmul(_splat8(builder, scale), row), sign)
        _store8(context, builder, sig.args[5], dst, at, value)
        return context.get_dummy_value()

    i64, f32 = types.int64, types.float32
    return types.void(grid, i64, i64, signs, i64, dst, i64, f32), codegen


@intrinsic
def grid8_delta(typingctx, grid, g, delta, dst, at, scale):
    """``dst[at:at + 8] = scale * (grid[g] + delta)`` (IQ1), as one vector."""
    if not _f32_arrays(grid, dst):
        return None

    def codegen(context, builder, sig, args):
        grid, g, delta, dst, at, scale = args
        row = _load_row(context, builder, sig.args[0], grid, g, _V8F32)
        value = builder.fmul(_splat8(builder, scale), builder.fadd(row, _splat8(builder, delta)))
        _store8(context, builder, sig.args[3], dst, at, value)
        return context.get_dummy_value()

    i64, f32 = types.int64, types.float32
    return types.void(grid, i64, f32, dst, i64, f32), codegen
