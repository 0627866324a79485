"""Reading a quantized row's bytes in the decoders: fp16 scales, little-endian words, small
integers as float32, and a loop bound hidden from the optimizer."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..cache import jit

__all__ = ["F16_TO_F32", "f32", "half_at", "opaque", "u16_at", "u32_at"]

F16_TO_F32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
"""Every fp16 bit pattern as float32, converted by numpy exactly as the reference converts."""


@intrinsic
def opaque(typingctx, value):
    """``value`` unchanged, but unknown to the optimizer.

    A loop over a constant 16 or 32 bytes gets fully unrolled by LLVM and then left scalar (the
    SLP vectorizer gives up on it); with the trip count hidden the loop vectorizer takes it and
    the row decodes about four times faster.
    """

    def codegen(context, builder, sig, args):
        fn = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
        return builder.call(ir.InlineAsm(fn, "", "=r,0", side_effect=False), [args[0]])

    if isinstance(value, types.Integer):
        return types.int64(types.int64), codegen
    return None


@jit(inline="always")
def half_at(src, at, f16):
    """The little-endian fp16 at byte ``at`` of ``src``, as float32 (via the lookup table
    ``f16``, which holds numpy's own conversion of every bit pattern)."""
    return f16[np.int64(src[at]) | (np.int64(src[at + 1]) << 8)]


@jit(inline="always")
def f32(level):
    """A small non-negative integer as float32, through uint8: numba computes integers in 64
    bits, and the narrowing lets LLVM convert them on 32-bit lanes (~1.5x faster decoding)."""
    return np.float32(np.uint8(level))


@jit(inline="always")
def u16_at(src, at):
    return np.int64(src[at]) | (np.int64(src[at + 1]) << 8)


@jit(inline="always")
def u32_at(src, at):
    return u16_at(src, at) | (u16_at(src, at + 2) << 16)
