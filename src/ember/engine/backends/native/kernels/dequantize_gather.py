"""Gather rows of a block-quantized table and dequantize only those rows, in one pass.

The table stays as GGUF stores it, uint8 ``(rows, row_bytes)``. Each id's row is decoded by a
small per-format function of plain 1-D loops (numba vectorizes those; the same work inlined over
2-D arrays ran several times slower), straight into the output, or into an L1-sized float32
buffer that is rounded to bfloat16/float16 and, for large outputs, streamed to memory with
non-temporal stores. Values are bit-identical to ``ember.quant``'s reference
``dequantize(table[ids])``, hence to ``gguf.quants.dequantize``: the same float32 operations in
the same order (numba compiles without fast-math, so nothing is fused into an FMA).

Everything numba compiles lives in this one file on purpose: numba's on-disk cache checks only
the source file of the function it cached, so a decoder imported from a sibling module could be
edited without the cached kernels noticing.

>>> import numpy as np
>>> from ember.quant import get_format
>>> rows = np.zeros((2, 32), np.float32)
>>> rows[:, 0], rows[1, 1:3] = 127, [5, -6]  # a peak of 127: scale 1, exact values
>>> table = get_format("q8_0").quantize(rows)
>>> out = np.empty((3, 32), np.float32)
>>> gather_dequantize("q8_0", table, np.array([1, 0, 5]), 0, MODE_ZERO, out, False)
-1
>>> out[:, :3]
array([[127.,   5.,  -6.],
       [127.,   0.,   0.],
       [  0.,   0.,   0.]], dtype=float32)
>>> gather_dequantize("q8_0", table, np.array([1, 0, 5]), 0, MODE_ERROR, out, False)
2
"""

from __future__ import annotations

import functools
import platform

import ml_dtypes
import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.core.dispatcher import Dispatcher
from numba.extending import intrinsic

from ember.quant import FORMATS
from ember.quant.grids import (
    BYTE_SIGNS,
    E8M0_HALF,
    FP4_E2M1_X2,
    GRIDS_F32,
    IQ4NL_VALUES,
    KSIGN_PATTERNS,
    UE4M3_HALF,
)

from .entry import compiled_entry
from .inputs import as_kernel_input
from .launch import PARALLEL_LAUNCH, launch
from .modes import MODE_CLAMP, MODE_ERROR, MODE_SKIP, MODE_WRAP, MODE_ZERO
from .reference_gather import reference_gather

__all__ = [
    "MODE_CLAMP",
    "MODE_ERROR",
    "MODE_SKIP",
    "MODE_WRAP",
    "MODE_ZERO",
    "gather_dequantize",
    "parallel_dequantize_call",
    "serial_dequantize_call",
]

# name -> (code the kernels branch on, values per block, bytes per block)
_CODES = {
    "q4_0": 0,
    "q4_1": 1,
    "q5_0": 2,
    "q5_1": 3,
    "q8_0": 4,
    "q2_k": 5,
    "q3_k": 6,
    "q4_k": 7,
    "q5_k": 8,
    "q6_k": 9,
    "iq4_nl": 10,
    "iq4_xs": 11,
    "mxfp4": 12,
    "nvfp4": 13,
    "tq2_0": 14,
    "tq1_0": 15,
    "iq3_s": 16,
    "iq3_xxs": 17,
    "iq2_xxs": 18,
    "iq2_xs": 19,
    "iq2_s": 20,
    "iq1_s": 21,
    "iq1_m": 22,
}
"""The compiled row decoder of each format (`_decode_row` dispatches on it)."""

_FORMATS = {
    name: (code, FORMATS[name].block_elements, FORMATS[name].block_bytes)
    for name, code in _CODES.items()
}
"""Format name -> (decoder code, values per block, bytes per block): sizes from the registry."""

_F32, _BF16, _F16 = 0, 1, 2
_OUT_KINDS = {
    np.dtype(np.float32): _F32,
    np.dtype(ml_dtypes.bfloat16): _BF16,
    np.dtype(np.float16): _F16,
}

_F16_TO_F32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
"""Every fp16 bit pattern as float32, converted by numpy exactly as the reference converts."""

STREAM_MIN_BYTES = 8 * 1024 * 1024
"""Output size above which non-temporal stores beat plain ones (the output no longer fits the
cache a consumer would read it from)."""

_STREAM_MIN_ROW_BYTES = 256
"""Shorter output rows spend too much on their unaligned ends to gain from streaming."""

_HAVE_STREAM = platform.machine().lower() in ("x86_64", "amd64")
"""Non-temporal stores plus a fence have the ordering relied on here on x86-64."""

_I16 = ir.IntType(16)
_I32 = ir.IntType(32)
_F32_IR = ir.FloatType()


def _c(value: int) -> ir.Constant:
    return ir.Constant(_I32, value)


# ---- reading a row's bytes --------------------------------------------------------------------


@intrinsic
def _opaque(typingctx, value):
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


@njit(cache=True, inline="always")
def _half_at(src, at, f16):
    """The little-endian fp16 at byte ``at`` of ``src``, as float32 (via the lookup table
    ``f16``, which holds numpy's own conversion of every bit pattern)."""
    return f16[np.int64(src[at]) | (np.int64(src[at + 1]) << 8)]


@njit(cache=True, inline="always")
def _f32(level):
    """A small non-negative integer as float32, through uint8: numba computes integers in 64
    bits, and the narrowing lets LLVM convert them on 32-bit lanes (~1.5x faster decoding)."""
    return np.float32(np.uint8(level))


# ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: blocks of 32 values ------------------------------------------
# Byte j of qs holds value j in its low nibble and value j + 16 in its high one; bit j of the
# 5-bit formats' qh word is bit 4 of value j (layouts: ember.quant.legacy). An offset level
# ``q - 8`` is computed as ``float(q) - 8``: the same float32 exactly.


@njit(cache=True)
def _row_q4_0(src, dst, f16):
    n16 = _opaque(16)
    for b in range(dst.size // 32):
        o, e = b * 18, b * 32
        d = _half_at(src, o, f16)
        for j in range(n16):
            byte = src[o + 2 + j]
            dst[e + j] = d * (_f32(byte & 15) - np.float32(8))
            dst[e + 16 + j] = d * (_f32(byte >> 4) - np.float32(8))


@njit(cache=True)
def _row_q4_1(src, dst, f16):
    n16 = _opaque(16)
    for b in range(dst.size // 32):
        o, e = b * 20, b * 32
        d = _half_at(src, o, f16)
        m = _half_at(src, o + 2, f16)
        for j in range(n16):
            byte = src[o + 4 + j]
            dst[e + j] = d * _f32(byte & 15) + m
            dst[e + 16 + j] = d * _f32(byte >> 4) + m


_BIT4_SPREAD = np.array(
    [sum(((byte >> k) & 1) << (8 * k + 4) for k in range(8)) for byte in range(256)], np.uint64
)
"""For each byte of a ``qh`` word, its eight bits as eight bytes of 0 or 16 (bit 4 of a value)."""


@njit(cache=True, inline="always")
def _spread_qh(src, at, spread, high64):
    """Bit j of the ``qh`` word at byte ``at`` as byte j (0 or 16) of ``high64``: four table
    loads, where shifting the word per value kept the loops from vectorizing (~1.45x slower)."""
    for k in range(4):
        high64[k] = spread[src[at + k]]


@njit(cache=True)
def _row_q5_0(src, dst, f16):
    n16 = _opaque(16)
    high64 = np.empty(4, np.uint64)
    high = high64.view(np.uint8)
    spread = _BIT4_SPREAD
    for b in range(dst.size // 32):
        o, e = b * 22, b * 32
        d = _half_at(src, o, f16)
        _spread_qh(src, o + 2, spread, high64)
        for j in range(n16):
            byte = src[o + 6 + j]
            dst[e + j] = d * (_f32((byte & 15) | high[j]) - np.float32(16))
            dst[e + 16 + j] = d * (_f32((byte >> 4) | high[j + 16]) - np.float32(16))


@njit(cache=True)
def _row_q5_1(src, dst, f16):
    n16 = _opaque(16)
    high64 = np.empty(4, np.uint64)
    high = high64.view(np.uint8)
    spread = _BIT4_SPREAD
    for b in range(dst.size // 32):
        o, e = b * 24, b * 32
        d = _half_at(src, o, f16)
        m = _half_at(src, o + 2, f16)
        _spread_qh(src, o + 4, spread, high64)
        for j in range(n16):
            byte = src[o + 8 + j]
            dst[e + j] = d * _f32((byte & 15) | high[j]) + m
            dst[e + 16 + j] = d * _f32((byte >> 4) | high[j + 16]) + m


@njit(cache=True)
def _row_q8_0(src, dst, f16):
    n32 = _opaque(32)
    for b in range(dst.size // 32):
        o, e = b * 34, b * 32
        d = _half_at(src, o, f16)
        for j in range(n32):
            dst[e + j] = np.float32(np.int8(src[o + 2 + j])) * d


# ---- Q2_K .. Q6_K: super-blocks of 256 values ------------------------------------------------
# Per super-block the scales are decoded once per sub-block (``d * sc`` and ``dmin * m`` rounded
# to float32 first, as the reference does), then a branch-free loop over 16 or 32 bytes writes
# the values. Bit positions: ember.quant.kquants.


@njit(cache=True)
def _row_q2_k(src, dst, f16):
    n16 = _opaque(16)
    for b in range(dst.size // 256):
        o, e = b * 84, b * 256
        d = _half_at(src, o + 80, f16)
        dmin = _half_at(src, o + 82, f16)
        for h in range(2):
            for s in range(4):
                # 32 values from one 2-bit plane: two sub-blocks of 16, done side by side.
                shift = 2 * s
                sc0 = src[o + 8 * h + 2 * s]
                sc1 = src[o + 8 * h + 2 * s + 1]
                dl0, ml0 = d * _f32(sc0 & 15), dmin * _f32(sc0 >> 4)
                dl1, ml1 = d * _f32(sc1 & 15), dmin * _f32(sc1 >> 4)
                q_at = o + 16 + 32 * h
                v_at = e + 128 * h + 32 * s
                for j in range(n16):
                    q0 = (src[q_at + j] >> shift) & 3
                    q1 = (src[q_at + 16 + j] >> shift) & 3
                    dst[v_at + j] = dl0 * _f32(q0) - ml0
                    dst[v_at + 16 + j] = dl1 * _f32(q1) - ml1


@njit(cache=True, inline="always")
def _scale_q3_k(src, o, i):
    """Sub-block ``i``'s signed 6-bit scale, from the 12 bytes at ``o``."""
    low = (np.int32(src[o + (i & 7)]) >> (4 * (i >> 3))) & 15
    high = (np.int32(src[o + 8 + (i & 3)]) >> (2 * (i >> 2))) & 3
    return (low | (high << 4)) - 32


@njit(cache=True)
def _row_q3_k(src, dst, f16):
    n16 = _opaque(16)
    for b in range(dst.size // 256):
        o, e = b * 110, b * 256
        d = _half_at(src, o + 108, f16)
        for h in range(2):
            for s in range(4):
                shift = 2 * s
                bit = 4 * h + s
                dl0 = d * np.float32(_scale_q3_k(src, o + 96, 8 * h + 2 * s))
                dl1 = d * np.float32(_scale_q3_k(src, o + 96, 8 * h + 2 * s + 1))
                q_at = o + 32 + 32 * h
                v_at = e + 128 * h + 32 * s
                for j in range(n16):
                    # level = low bits - 4, plus 4 where the hmask bit is set: 0..7 offset by 4
                    u0 = ((src[q_at + j] >> shift) & 3) | (((src[o + j] >> bit) & 1) << 2)
                    u1 = ((src[q_at + 16 + j] >> shift) & 3) | (((src[o + 16 + j] >> bit) & 1) << 2)
                    dst[v_at + j] = dl0 * (_f32(u0) - np.float32(4))
                    dst[v_at + 16 + j] = dl1 * (_f32(u1) - np.float32(4))


@njit(cache=True, inline="always")
def _scale_min_k4(src, o, j):
    """Sub-block ``j``'s 6-bit scale and minimum, from the 12 bytes at ``o`` (Q4_K, Q5_K)."""
    if j < 4:
        sc = np.int32(src[o + j]) & 63
        m = np.int32(src[o + j + 4]) & 63
    else:
        sc = (np.int32(src[o + j + 4]) & 15) | ((np.int32(src[o + j - 4]) >> 6) << 4)
        m = (np.int32(src[o + j + 4]) >> 4) | ((np.int32(src[o + j]) >> 6) << 4)
    return sc, m


@njit(cache=True)
def _row_q4_k(src, dst, f16):
    n32 = _opaque(32)
    for b in range(dst.size // 256):
        o, e = b * 144, b * 256
        d = _half_at(src, o, f16)
        dmin = _half_at(src, o + 2, f16)
        for c in range(4):
            sc1, m1 = _scale_min_k4(src, o + 4, 2 * c)
            sc2, m2 = _scale_min_k4(src, o + 4, 2 * c + 1)
            d1, dm1 = d * np.float32(sc1), dmin * np.float32(m1)
            d2, dm2 = d * np.float32(sc2), dmin * np.float32(m2)
            q_at = o + 16 + 32 * c
            v_at = e + 64 * c
            for j in range(n32):
                byte = src[q_at + j]
                dst[v_at + j] = d1 * _f32(byte & 15) - dm1
                dst[v_at + 32 + j] = d2 * _f32(byte >> 4) - dm2


@njit(cache=True, inline="always")
def _scale_min_k(src, o, j, d, dmin):
    """Sub-block ``j``'s ``d * sc`` and ``dmin * m``, each rounded to float32."""
    sc, m = _scale_min_k4(src, o, j)
    return d * np.float32(sc), dmin * np.float32(m)


@njit(cache=True)
def _row_q5_k(src, dst, f16):
    """One loop over the 32 high-bit bytes, each giving one bit to each of the 8 sub-blocks
    (twice as fast here as a loop per pair of sub-blocks)."""
    n32 = _opaque(32)
    for b in range(dst.size // 256):
        o, e = b * 176, b * 256
        d = _half_at(src, o, f16)
        dmin = _half_at(src, o + 2, f16)
        d0, m0 = _scale_min_k(src, o + 4, 0, d, dmin)
        d1, m1 = _scale_min_k(src, o + 4, 1, d, dmin)
        d2, m2 = _scale_min_k(src, o + 4, 2, d, dmin)
        d3, m3 = _scale_min_k(src, o + 4, 3, d, dmin)
        d4, m4 = _scale_min_k(src, o + 4, 4, d, dmin)
        d5, m5 = _scale_min_k(src, o + 4, 5, d, dmin)
        d6, m6 = _scale_min_k(src, o + 4, 6, d, dmin)
        d7, m7 = _scale_min_k(src, o + 4, 7, d, dmin)
        q = o + 48
        for j in range(n32):
            hb = src[o + 16 + j]
            x0, x1, x2, x3 = src[q + j], src[q + 32 + j], src[q + 64 + j], src[q + 96 + j]
            dst[e + j] = d0 * _f32((x0 & 15) | ((hb & 1) << 4)) - m0
            dst[e + 32 + j] = d1 * _f32((x0 >> 4) | ((hb & 2) << 3)) - m1
            dst[e + 64 + j] = d2 * _f32((x1 & 15) | ((hb & 4) << 2)) - m2
            dst[e + 96 + j] = d3 * _f32((x1 >> 4) | ((hb & 8) << 1)) - m3
            dst[e + 128 + j] = d4 * _f32((x2 & 15) | (hb & 16)) - m4
            dst[e + 160 + j] = d5 * _f32((x2 >> 4) | ((hb & 32) >> 1)) - m5
            dst[e + 192 + j] = d6 * _f32((x3 & 15) | ((hb & 64) >> 2)) - m6
            dst[e + 224 + j] = d7 * _f32((x3 >> 4) | ((hb & 128) >> 3)) - m7


@njit(cache=True)
def _row_q6_k(src, dst, f16):
    for b in range(dst.size // 256):
        o, e = b * 210, b * 256
        d = _half_at(src, o + 208, f16)
        for h in range(2):
            ql_at = o + 64 * h
            qh_at = o + 128 + 32 * h
            for half in range(2):
                sc_at = o + 192 + 8 * h + half
                d0 = d * np.float32(np.int8(src[sc_at]))
                d1 = d * np.float32(np.int8(src[sc_at + 2]))
                d2 = d * np.float32(np.int8(src[sc_at + 4]))
                d3 = d * np.float32(np.int8(src[sc_at + 6]))
                v_at = e + 128 * h
                for j in range(16 * half, 16 * half + 16):
                    a = src[ql_at + j]
                    c = src[ql_at + 32 + j]
                    hb = src[qh_at + j]
                    u0 = (a & 15) | ((hb & 3) << 4)
                    u1 = (c & 15) | (((hb >> 2) & 3) << 4)
                    u2 = (a >> 4) | (((hb >> 4) & 3) << 4)
                    u3 = (c >> 4) | (((hb >> 6) & 3) << 4)
                    dst[v_at + j] = d0 * (_f32(u0) - np.float32(32))
                    dst[v_at + 32 + j] = d1 * (_f32(u1) - np.float32(32))
                    dst[v_at + 64 + j] = d2 * (_f32(u2) - np.float32(32))
                    dst[v_at + 96 + j] = d3 * (_f32(u3) - np.float32(32))


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
    if _HAVE_STREAM:  # x86-64: SSSE3 is part of every x86-64 CPU numba targets here
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
def _nibbles16(typingctx, levels, src, at, dst, to, scale):
    """``dst[to + j] = scale * levels[src[at + j] & 15]`` and ``dst[to + 16 + j] = scale *
    levels[src[at + j] >> 4]`` for ``j < 16`` (``levels``: 16 int8; no bounds checks)."""
    return _nibbles_signature(levels, src, at, dst, to, scale), _nibbles_codegen(16)


@intrinsic
def _nibbles8(typingctx, levels, src, at, dst, to, scale):
    """As `_nibbles16` for 8 bytes: low nibbles to ``dst[to:to + 8]``, high ones to
    ``dst[to + 8:to + 16]``."""
    return _nibbles_signature(levels, src, at, dst, to, scale), _nibbles_codegen(8)


# ---- IQ4_NL, IQ4_XS: 16 non-uniform levels -----------------------------------------------------
# A value is ``scale * IQ4NL_VALUES[q]`` (layouts: ember.quant.iquants), 32 at a time.

_NL_I8 = np.array(IQ4NL_VALUES, np.int8)


@njit(cache=True)
def _row_iq4_nl(src, dst, f16):
    levels = _NL_I8
    for b in range(dst.size // 32):
        o = b * 18
        _nibbles16(levels, src, o + 2, dst, b * 32, _half_at(src, o, f16))


@njit(cache=True)
def _row_iq4_xs(src, dst, f16):
    levels = _NL_I8
    for b in range(dst.size // 256):
        o, e = b * 136, b * 256
        d = _half_at(src, o, f16)
        high = np.int64(src[o + 2]) | (np.int64(src[o + 3]) << 8)
        for i in range(8):
            low = (np.int64(src[o + 4 + i // 2]) >> (4 * (i & 1))) & 15
            six = low | (((high >> (2 * i)) & 3) << 4)
            _nibbles16(levels, src, o + 8 + 16 * i, dst, e + 32 * i, d * np.float32(six - 32))


# ---- MXFP4, NVFP4: E2M1 values times a power-of-two or FP8 scale ------------------------------
# ggml's doubled E2M1 integers times half the block scale (layouts and the special codes:
# ember.quant.fp4); code 8 is the integer 0, so it decodes to +0 times the scale.

_FP4_I8 = np.array(FP4_E2M1_X2, np.int8)


@njit(cache=True)
def _row_mxfp4(src, dst, f16):
    levels, scales = _FP4_I8, E8M0_HALF
    for b in range(dst.size // 32):
        o = b * 17
        _nibbles16(levels, src, o + 1, dst, b * 32, scales[src[o]])


@njit(cache=True)
def _row_nvfp4(src, dst, f16):
    levels, scales = _FP4_I8, UE4M3_HALF
    for b in range(dst.size // 64):
        o, e = b * 36, b * 64
        for s in range(4):
            _nibbles8(levels, src, o + 4 + 8 * s, dst, e + 16 * s, scales[src[o + s]])


# ---- TQ1_0, TQ2_0: ternary super-blocks of 256 values -----------------------------------------
# Value ``d * (float(t) - 1)`` for trits t in 0..2 (layouts: ember.quant.ternary).


@njit(cache=True)
def _row_tq2_0(src, dst, f16):
    n32 = _opaque(32)
    for b in range(dst.size // 256):
        o, e = b * 66, b * 256
        d = _half_at(src, o + 64, f16)
        for h in range(2):
            q_at = o + 32 * h
            v_at = e + 128 * h
            for j in range(n32):
                byte = src[q_at + j]
                dst[v_at + j] = d * (_f32(byte & 3) - np.float32(1))
                dst[v_at + 32 + j] = d * (_f32((byte >> 2) & 3) - np.float32(1))
                dst[v_at + 64 + j] = d * (_f32((byte >> 4) & 3) - np.float32(1))
                dst[v_at + 96 + j] = d * (_f32(byte >> 6) - np.float32(1))


@njit(cache=True, inline="always")
def _trit(byte, power):
    """Trit ``p`` of a TQ1_0 byte, ``power`` being ``3**p``: the product wraps mod 256 (uint8,
    as in ggml), then ``(x * 3) >> 8`` reads the trit off the fixed-point fraction."""
    return (np.int32(np.uint8(np.int32(byte) * power)) * 3) >> 8


@njit(cache=True, inline="always")
def _trits_tq1(src, q_at, dst, v_at, d, count, width):
    """``count`` trits of each of ``width`` bytes: trit ``p`` of byte ``j`` is value
    ``v_at + p * width + j``."""
    power = 1
    for p in range(count):
        for j in range(width):
            dst[v_at + p * width + j] = d * (_f32(_trit(src[q_at + j], power)) - np.float32(1))
        power *= 3


@njit(cache=True)
def _row_tq1_0(src, dst, f16):
    n32, n16 = _opaque(32), _opaque(16)
    for b in range(dst.size // 256):
        o, e = b * 54, b * 256
        d = _half_at(src, o + 52, f16)
        _trits_tq1(src, o, dst, e, d, 5, n32)
        _trits_tq1(src, o + 32, dst, e + 160, d, 5, n16)
        _trits_tq1(src, o + 48, dst, e + 240, d, 4, 4)


# ---- grid i-quants: IQ3_S, IQ3_XXS, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M ----------------------
# Each group of 8 values (IQ3: two grid points of 4) is a row of a lattice grid, times signs and
# a sub-block scale (layouts and formulas: ember.quant.iquants). Every factor has a few
# significant bits and the products are exact, so grouping them differently from the reference
# gives the same float32: here ``(scale * grid) * sign``, signs as +-1 tables.

# numba freezes module-level arrays into the kernels as constants: one name per table.
_GRID_IQ2XXS = GRIDS_F32["iq2_xxs"]
_GRID_IQ2XS = GRIDS_F32["iq2_xs"]
_GRID_IQ2S = GRIDS_F32["iq2_s"]
_GRID_IQ3XXS = GRIDS_F32["iq3_xxs"]
_GRID_IQ3S = GRIDS_F32["iq3_s"]
_GRID_IQ1S = GRIDS_F32["iq1_s"]
_BYTE_SIGNS = BYTE_SIGNS
_KSIGN_SIGNS = KSIGN_PATTERNS


@njit(cache=True, inline="always")
def _u16_at(src, at):
    return np.int64(src[at]) | (np.int64(src[at + 1]) << 8)


@njit(cache=True, inline="always")
def _u32_at(src, at):
    return _u16_at(src, at) | (_u16_at(src, at + 2) << 16)


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
def _grid8(typingctx, grid, g, signs, s, dst, at, scale):
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
def _grid4x2(typingctx, grid, g0, g1, signs, s, dst, at, scale):
    """As `_grid8` with the 8 grid values from two rows of 4 (IQ3): ``grid[g0], grid[g1]``."""
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
def _grid8_delta(typingctx, grid, g, delta, dst, at, scale):
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


@njit(cache=True)
def _row_iq2_xxs(src, dst, f16):
    grid, signs = _GRID_IQ2XXS, _KSIGN_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 66, b * 256
        d = _half_at(src, o, f16)
        for ib in range(8):
            at = o + 2 + 8 * ib
            aux = _u32_at(src, at + 4)
            scale = d * (np.float32(0.5) + np.float32(aux >> 28)) * np.float32(0.25)
            for g in range(4):
                s = (aux >> (7 * g)) & 127
                _grid8(grid, src[at + g], signs, s, dst, e + 32 * ib + 8 * g, scale)


@njit(cache=True)
def _row_iq2_xs(src, dst, f16):
    grid, signs = _GRID_IQ2XS, _KSIGN_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 74, b * 256
        d = _half_at(src, o, f16)
        for ib in range(16):
            nib = (np.int64(src[o + 66 + ib // 2]) >> (4 * (ib & 1))) & 15
            scale = d * (np.float32(0.5) + np.float32(nib)) * np.float32(0.25)
            for g in range(2):
                w = _u16_at(src, o + 2 + 4 * ib + 2 * g)
                _grid8(grid, w & 511, signs, w >> 9, dst, e + 16 * ib + 8 * g, scale)


@njit(cache=True)
def _row_iq2_s(src, dst, f16):
    grid, signs = _GRID_IQ2S, _BYTE_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 82, b * 256
        d = _half_at(src, o, f16)
        for ib in range(16):
            nib = (np.int64(src[o + 74 + ib // 2]) >> (4 * (ib & 1))) & 15
            scale = d * (np.float32(0.5) + np.float32(nib)) * np.float32(0.25)
            for h in range(2):
                g = 2 * ib + h
                high = (np.int64(src[o + 66 + g // 4]) >> (2 * (g & 3))) & 3
                index = np.int64(src[o + 2 + g]) | (high << 8)
                _grid8(grid, index, signs, src[o + 34 + g], dst, e + 8 * g, scale)


@njit(cache=True)
def _row_iq3_xxs(src, dst, f16):
    grid, signs = _GRID_IQ3XXS, _KSIGN_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 98, b * 256
        d = _half_at(src, o, f16)
        for ib in range(8):
            aux = _u32_at(src, o + 66 + 4 * ib)
            scale = d * (np.float32(0.5) + np.float32(aux >> 28)) * np.float32(0.5)
            for g in range(4):
                at = o + 2 + 8 * ib + 2 * g
                s = (aux >> (7 * g)) & 127
                _grid4x2(grid, src[at], src[at + 1], signs, s, dst, e + 32 * ib + 8 * g, scale)


@njit(cache=True)
def _row_iq3_s(src, dst, f16):
    grid, signs = _GRID_IQ3S, _BYTE_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 110, b * 256
        d = _half_at(src, o, f16)
        for ib in range(8):
            nib = (np.int64(src[o + 106 + ib // 2]) >> (4 * (ib & 1))) & 15
            scale = d * np.float32(2 * nib + 1)
            qh = np.int64(src[o + 66 + ib])
            for g in range(4):
                p = 8 * ib + 2 * g  # the first of the group's two grid points
                g0 = np.int64(src[o + 2 + p]) | (((qh >> (2 * g)) & 1) << 8)
                g1 = np.int64(src[o + 3 + p]) | (((qh >> (2 * g + 1)) & 1) << 8)
                s = src[o + 74 + 4 * ib + g]
                _grid4x2(grid, g0, g1, signs, s, dst, e + 32 * ib + 8 * g, scale)


@njit(cache=True, inline="always")
def _delta(bit):
    return np.float32(-0.125) if bit else np.float32(0.125)


@njit(cache=True)
def _row_iq1_s(src, dst, f16):
    grid = _GRID_IQ1S
    for b in range(dst.size // 256):
        o, e = b * 50, b * 256
        d = _half_at(src, o, f16)
        for ib in range(8):
            qh = _u16_at(src, o + 34 + 2 * ib)
            scale = d * np.float32(2 * ((qh >> 12) & 7) + 1)
            delta = _delta(qh & 0x8000)
            for g in range(4):
                index = np.int64(src[o + 2 + 4 * ib + g]) | (((qh >> (3 * g)) & 7) << 8)
                _grid8_delta(grid, index, delta, dst, e + 32 * ib + 8 * g, scale)


@njit(cache=True)
def _row_iq1_m(src, dst, f16):
    grid = _GRID_IQ1S
    for b in range(dst.size // 256):
        o, e = b * 56, b * 256
        w0, w1 = _u16_at(src, o + 48), _u16_at(src, o + 50)
        w2, w3 = _u16_at(src, o + 52), _u16_at(src, o + 54)
        d_bits = (w0 >> 12) | ((w1 >> 12) << 4) | ((w2 >> 12) << 8) | ((w3 >> 12) << 12)
        d = f16[d_bits]
        for m in range(16):  # 16 values per 3-bit scale
            w = _u16_at(src, o + 48 + 2 * (m // 4))
            scale = d * np.float32(2 * ((w >> (3 * (m & 3))) & 7) + 1)
            nib = np.int64(src[o + 32 + m])
            for h in range(2):
                g = 2 * m + h
                n = (nib >> (4 * h)) & 15
                index = np.int64(src[o + g]) | ((n & 7) << 8)
                _grid8_delta(grid, index, _delta(n & 8), dst, e + 8 * g, scale)


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


# ---- streaming stores -------------------------------------------------------------------------

_I8P = ir.IntType(8).as_pointer()
_LINE = ir.VectorType(ir.IntType(64), 8)  # one 64-byte cache line


@intrinsic
def _memcpy(typingctx, dst, src, nbytes):
    """``memcpy`` between two addresses."""

    def codegen(context, builder, sig, args):
        dst, src, nbytes = args
        to, frm = builder.inttoptr(dst, _I8P), builder.inttoptr(src, _I8P)
        cgutils.raw_memcpy(builder, to, frm, nbytes, 1)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64, types.int64), codegen


@intrinsic
def _stream_line(typingctx, dst, src):
    """Copy 64 bytes to a 64-byte aligned ``dst`` with a non-temporal store: the line goes to
    memory without first being read into the cache (a third of a plain store's traffic)."""

    def codegen(context, builder, sig, args):
        dst, src = args
        line = builder.load(builder.inttoptr(src, _LINE.as_pointer()), align=1)
        store = builder.store(line, builder.inttoptr(dst, _LINE.as_pointer()), align=64)
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


@intrinsic
def _fence(typingctx):
    """``sfence``: orders the weakly ordered non-temporal stores before anything that follows
    (LLVM's own ``fence`` becomes ``lock or`` on x86-64, which the ISA does not document as
    ordering them; off x86-64 streaming is disabled and a plain fence stands in)."""

    def codegen(context, builder, sig, args):
        if _HAVE_STREAM:
            sfence = ir.FunctionType(ir.VoidType(), [])
            builder.call(
                cgutils.get_or_insert_function(builder.module, sfence, "llvm.x86.sse.sfence"), []
            )
        else:
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _prefetch(typingctx, address):
    """Hint the cache to start loading the line at ``address`` (no fault if it is invalid)."""

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        read, keep, data = _c(0), _c(3), _c(1)
        builder.call(fn, [builder.inttoptr(args[0], _I8P), read, keep, data])
        return context.get_dummy_value()

    return types.void(types.int64), codegen


@njit(cache=True)
def _stream_row(dst, src, nbytes):
    """Copy ``nbytes`` from ``src`` to ``dst``: whole aligned lines streamed, the ends plain."""
    head = min((-dst) & 63, nbytes)
    _memcpy(dst, src, head)
    end = head + ((nbytes - head) & -64)
    for k in range(head, end, 64):
        _stream_line(dst + k, src + k)
    _memcpy(dst + end, src + end, nbytes - end)


# ---- per row --------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _decode_row(code, src, dst, f16):
    """Inlined into each format's own kernels (see `_kernels`), where ``code`` is a constant:
    numba prunes the other branches, so a kernel compiles only its format's decoder."""
    if code == 0:
        _row_q4_0(src, dst, f16)
    elif code == 1:
        _row_q4_1(src, dst, f16)
    elif code == 2:
        _row_q5_0(src, dst, f16)
    elif code == 3:
        _row_q5_1(src, dst, f16)
    elif code == 4:
        _row_q8_0(src, dst, f16)
    elif code == 5:
        _row_q2_k(src, dst, f16)
    elif code == 6:
        _row_q3_k(src, dst, f16)
    elif code == 7:
        _row_q4_k(src, dst, f16)
    elif code == 8:
        _row_q5_k(src, dst, f16)
    elif code == 9:
        _row_q6_k(src, dst, f16)
    elif code == 10:
        _row_iq4_nl(src, dst, f16)
    elif code == 11:
        _row_iq4_xs(src, dst, f16)
    elif code == 12:
        _row_mxfp4(src, dst, f16)
    elif code == 13:
        _row_nvfp4(src, dst, f16)
    elif code == 14:
        _row_tq2_0(src, dst, f16)
    elif code == 15:
        _row_tq1_0(src, dst, f16)
    elif code == 16:
        _row_iq3_s(src, dst, f16)
    elif code == 17:
        _row_iq3_xxs(src, dst, f16)
    elif code == 18:
        _row_iq2_xxs(src, dst, f16)
    elif code == 19:
        _row_iq2_xs(src, dst, f16)
    elif code == 20:
        _row_iq2_s(src, dst, f16)
    elif code == 21:
        _row_iq1_s(src, dst, f16)
    else:
        _row_iq1_m(src, dst, f16)


@njit(cache=True)
def _to_bf16(src, dst):
    for j in range(src.size):
        dst[j] = _bf16_bits(src[j])


@njit(cache=True)
def _to_f16(src, dst):
    for j in range(src.size):
        dst[j] = _f16_bits(src[j])


@njit(cache=True, inline="always")
def _resolve(x, bounds, rows, mode):
    """The row for id ``x``: >= 0 to read, -1 for a zero row, -2 for a bad id, -3 to leave
    the output row untouched.

    ``bounds`` are inclusive id intervals, compared in the id's own domain so that no
    subtraction can overflow: ids of the table, ids that wrap, and the rows they start at.
    """
    lo, hi, wrap_lo, wrap_hi, row0, wrap_row0 = bounds
    if x >= lo and x <= hi:
        return x - lo + row0
    if mode == MODE_ZERO:
        return -1
    if mode == MODE_SKIP:
        return -3
    if mode == MODE_CLAMP and rows > 0:
        return 0 if x < lo else rows - 1
    if mode == MODE_WRAP and x >= wrap_lo and x <= wrap_hi:
        return x - wrap_lo + wrap_row0
    return -2


@njit(cache=True)
def _first_bad(ids, bounds, rows, mode):
    """One cheap pass before any row is decoded: with it, the parallel loop needs no way to
    stop and the first bad position is exact."""
    for i in range(ids.size):
        if _resolve(ids[i], bounds, rows, mode) == -2:
            return i
    return -1


@njit(cache=True, inline="always")
def _prefetch_row(table, r):
    """Start loading row ``r`` (if it is one) while the current row is decoded and written: the
    random row reads then overlap the streaming of the output."""
    if r >= 0:
        address = table.ctypes.data + r * table.shape[1]
        for k in range(0, table.shape[1], 64):
            _prefetch(address + k)


# ---- spans of ids -----------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _span_f32(code, table, ids, bounds, mode, out, f16, stream, start, stop):
    """Rows ``start:stop`` into float32 ``out``: decoded in place, or into an L1-resident
    buffer that is then streamed out."""
    hidden = out.shape[1]
    nbytes = hidden * 4
    base = out.ctypes.data
    buf = np.empty(hidden if stream else 0, np.float32)
    for i in range(start, stop):
        r = _resolve(ids[i], bounds, table.shape[0], mode)
        if i + 1 < stop:
            _prefetch_row(table, _resolve(ids[i + 1], bounds, table.shape[0], mode))
        if r == -3:
            continue
        if r < 0:
            out[i, :] = 0
        elif stream:
            _decode_row(code, table[r], buf, f16)
            _stream_row(base + i * nbytes, buf.ctypes.data, nbytes)
        else:
            _decode_row(code, table[r], out[i], f16)
    if stream:
        _fence()


@njit(cache=True, inline="always")
def _span_narrow(code, table, ids, bounds, mode, out, f16, kind, stream, start, stop):
    """Rows ``start:stop`` into bfloat16/float16 ``out`` (seen as uint16), through a float32
    buffer."""
    hidden = out.shape[1]
    nbytes = hidden * 2
    base = out.ctypes.data
    buf = np.empty(hidden, np.float32)
    half = np.empty(hidden if stream else 0, np.uint16)
    for i in range(start, stop):
        r = _resolve(ids[i], bounds, table.shape[0], mode)
        if i + 1 < stop:
            _prefetch_row(table, _resolve(ids[i + 1], bounds, table.shape[0], mode))
        if r == -3:
            continue
        if r < 0:
            out[i, :] = 0
            continue
        _decode_row(code, table[r], buf, f16)
        dst = half if stream else out[i]
        if kind == _BF16:
            _to_bf16(buf, dst)
        else:
            _to_f16(buf, dst)
        if stream:
            _stream_row(base + i * nbytes, half.ctypes.data, nbytes)
    if stream:
        _fence()


@functools.cache
def _kernels(code: int) -> dict[tuple[bool, bool], Dispatcher]:
    """One format's entry kernels, by (float32 output, parallel).

    ``code`` is a constant of these closures, so each compiles one row decoder rather than all
    of them (seconds less on a cold cache); numba caches a closure per value of ``code``.
    Each kernel compiles on its first call only.
    """

    @njit(cache=True, nogil=True)
    def gather_f32(table, ids, bounds, mode, out, f16, kind, stream, chunks):
        bad = _first_bad(ids, bounds, table.shape[0], mode)
        if bad < 0:
            _span_f32(code, table, ids, bounds, mode, out, f16, stream, 0, ids.size)
        return bad

    @njit(cache=True, nogil=True)
    def gather_narrow(table, ids, bounds, mode, out, f16, kind, stream, chunks):
        bad = _first_bad(ids, bounds, table.shape[0], mode)
        if bad < 0:
            _span_narrow(code, table, ids, bounds, mode, out, f16, kind, stream, 0, ids.size)
        return bad

    @njit(cache=True, parallel=True, nogil=True)
    def gather_f32_parallel(table, ids, bounds, mode, out, f16, kind, stream, chunks):
        bad = _first_bad(ids, bounds, table.shape[0], mode)
        if bad >= 0:
            return bad
        n = ids.size
        for c in prange(chunks):
            start, stop = c * n // chunks, (c + 1) * n // chunks
            _span_f32(code, table, ids, bounds, mode, out, f16, stream, start, stop)
        return -1

    @njit(cache=True, parallel=True, nogil=True)
    def gather_narrow_parallel(table, ids, bounds, mode, out, f16, kind, stream, chunks):
        bad = _first_bad(ids, bounds, table.shape[0], mode)
        if bad >= 0:
            return bad
        n = ids.size
        for c in prange(chunks):
            start, stop = c * n // chunks, (c + 1) * n // chunks
            _span_narrow(code, table, ids, bounds, mode, out, f16, kind, stream, start, stop)
        return -1

    return {
        (True, False): gather_f32,
        (True, True): gather_f32_parallel,
        (False, False): gather_narrow,
        (False, True): gather_narrow_parallel,
    }


# ---- entry point ------------------------------------------------------------------------------


def gather_dequantize(
    fmt_name: str,
    table: np.ndarray,
    ids: np.ndarray,
    offset: int,
    mode: int,
    out: np.ndarray,
    parallel: bool,
) -> int:
    """Write ``dequantize(table[ids[i] - offset])`` to ``out[i]`` for every ``i``.

    Ids whose row falls outside ``[0, rows)`` follow ``mode`` (see ``modes``): with
    ``MODE_ERROR``, or an unknown mode, nothing is decoded and the first bad position is
    returned (``out`` is then unspecified). ``parallel`` splits the ids over numba's threads,
    worth it for large outputs; the caller decides.

    Returns:
        -1 when every id was usable, else the position of the first one that was not.

    Raises:
        TypeError: the table is not uint8, the ids not integers, or ``out`` of another dtype.
        ValueError: unknown format, or arrays whose shape or layout do not fit.
    """
    spec = _FORMATS.get(str(fmt_name).lower())
    if spec is None:
        fmt = FORMATS.get(str(fmt_name).lower())
        if fmt is None:
            known = ", ".join(FORMATS)
            raise ValueError(f"unknown quantization format {fmt_name!r}; known: {known}")
        return _reference(fmt, table, ids, offset, mode, out, parallel)
    code, block_elements, block_bytes = spec
    table = _as_table(table, fmt_name, block_bytes)
    hidden = table.shape[1] // block_bytes * block_elements
    ids = _as_ids(ids)
    kind = _OUT_KINDS.get(out.dtype)
    if kind is None:
        raise TypeError(f"output dtype must be float32, float16 or bfloat16, got {out.dtype}")
    if out.shape != (ids.size, hidden):
        raise ValueError(f"output shape {out.shape} != ({ids.size}, {hidden}) for {fmt_name}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("output must be a writeable C-contiguous array")
    if ids.size == 0:
        return -1
    out = out.view(np.float32 if kind == _F32 else np.uint16).view(np.ndarray)
    row_nbytes = out.shape[1] * out.itemsize
    stream = _HAVE_STREAM and out.nbytes >= STREAM_MIN_BYTES and row_nbytes >= _STREAM_MIN_ROW_BYTES
    # get_num_threads() inside the kernel would keep numba from caching it.
    chunks = min(ids.size, 4 * get_num_threads()) if parallel else 1
    run = _kernels(code)[kind == _F32, bool(parallel)]
    bounds = _bounds(int(offset), table.shape[0])
    args = (table, ids, bounds, int(mode), out, _F16_TO_F32, kind, stream, chunks)
    if not parallel:
        return int(run(*args))
    serial = _kernels(code)[kind == _F32, False]
    return int(launch(lambda: run(*args), lambda: serial(*args)))


def serial_dequantize_call(fmt_name: str, table: np.ndarray, out_dtype: np.dtype, mode: int):
    """``call(ids, out)``: what `gather_dequantize(fmt_name, table, ids, 0, mode, out, False)`
    does, without its checks, for callers that have made sure of them: a valid C-contiguous
    ``table``, writeable C-contiguous 1-D int64 ``ids``, a writeable C-contiguous 2-D ``out``
    of ``out_dtype`` seen as ``view`` (float32 or uint16), too small to stream.

    Returns:
        ``(call, view)``, or None for a format without a compiled decoder.
    """
    direct = _Direct.of(fmt_name, table, out_dtype, mode)
    if direct is None:
        return None
    run = direct.entry(parallel=False)
    table, bounds, mode, kind = direct.table, direct.bounds, direct.mode, direct.kind

    def call(ids: np.ndarray, out: np.ndarray) -> int:
        return run(table, ids, bounds, mode, out, _F16_TO_F32, kind, False, 1)

    return call, direct.view


def parallel_dequantize_call(fmt_name: str, table: np.ndarray, out_dtype: np.dtype, mode: int):
    """``(call(ids, out, threads), view)``: what `gather_dequantize(fmt_name, table, ids, 0,
    mode, out, True)` does on ``threads`` threads, without its checks (the caller's part as for
    `serial_dequantize_call`, at any output size); None without a compiled decoder."""
    direct = _Direct.of(fmt_name, table, out_dtype, mode)
    if direct is None:
        return None
    with PARALLEL_LAUNCH:
        run = direct.entry(parallel=True)
    serial = direct.entry(parallel=False)
    table, bounds, mode, kind = direct.table, direct.bounds, direct.mode, direct.kind

    def call(ids: np.ndarray, out: np.ndarray, threads: int) -> int:
        stream = _HAVE_STREAM and out.nbytes >= STREAM_MIN_BYTES
        stream = stream and out.shape[1] * out.itemsize >= _STREAM_MIN_ROW_BYTES
        args = (table, ids, bounds, mode, out, _F16_TO_F32, kind, stream)
        return launch(lambda: run(*args, min(ids.size, 4 * threads)), lambda: serial(*args, 1))

    return call, direct.view


class _Direct:
    """What the direct calls of one format's kernels pass besides the ids and the output."""

    def __init__(self, code: int, table: np.ndarray, kind: int, mode: int) -> None:
        self.code, self.table, self.kind, self.mode = code, table, kind, int(mode)
        self.bounds = _bounds(0, table.shape[0])
        self.view = np.dtype(np.float32 if kind == _F32 else np.uint16)

    @classmethod
    def of(cls, fmt_name: str, table: np.ndarray, out_dtype: np.dtype, mode: int):
        """None for a format without a compiled decoder or an output dtype it does not write."""
        spec = _FORMATS.get(fmt_name)
        kind = _OUT_KINDS.get(np.dtype(out_dtype))
        if spec is None or kind is None:
            return None
        return cls(spec[0], _as_table(table, fmt_name, spec[2]), kind, mode)

    def entry(self, parallel: bool):
        """The compiled kernel's entry point (compiled now if need be)."""
        sample = (np.zeros(0, np.int64), self.bounds, self.mode, np.zeros((0, 1), self.view))
        kernel = _kernels(self.code)[self.kind == _F32, parallel]
        return compiled_entry(kernel, (self.table, *sample, _F16_TO_F32, self.kind, False, 1))


_I64_MIN, _I64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def _reference(fmt, table, ids, offset, mode, out, parallel) -> int:
    """A registry format with no compiled decoder: the same checks, then bytes + reference."""
    table = _as_table(table, fmt.name, fmt.block_bytes)
    if out.dtype not in _OUT_KINDS:
        raise TypeError(f"output dtype must be float32, float16 or bfloat16, got {out.dtype}")
    hidden = table.shape[1] // fmt.block_bytes * fmt.block_elements
    if out.shape != (np.asarray(ids).size, hidden):
        raise ValueError(f"output shape {out.shape} != ({np.asarray(ids).size}, {hidden})")
    return reference_gather(fmt, table, np.asarray(ids), offset, mode, out, parallel)


def _bounds(offset: int, rows: int) -> tuple:
    """The id intervals of the table and of wrapping ids, clipped to int64, and the rows their
    first ids map to (empty intervals as lo > hi)."""

    def clip(lo: int, hi: int, first_row: int) -> tuple:
        clipped_lo, clipped_hi = max(lo, _I64_MIN), min(hi, _I64_MAX)
        if clipped_lo > clipped_hi:
            return 1, 0, 0
        return clipped_lo, clipped_hi, first_row + clipped_lo - lo

    lo, hi, row0 = clip(offset, offset + rows - 1, 0)
    wrap_lo, wrap_hi, wrap_row0 = clip(offset - rows, offset - 1, 0)
    return tuple(np.int64(v) for v in (lo, hi, wrap_lo, wrap_hi, row0, wrap_row0))


def _as_table(table: np.ndarray, fmt_name: str, block_bytes: int) -> np.ndarray:
    if table.dtype != np.uint8:
        raise TypeError(f"a {fmt_name} table holds uint8 blocks, got {table.dtype}")
    if table.ndim != 2:
        raise ValueError(f"a {fmt_name} table is 2-D (rows, row_bytes), got shape {table.shape}")
    if table.shape[1] % block_bytes:
        raise ValueError(
            f"{fmt_name} rows are whole blocks of {block_bytes} bytes; "
            f"{table.shape[1]} bytes is not a multiple of {block_bytes}"
        )
    if not table.flags.c_contiguous:
        raise ValueError("the table must be C-contiguous (copying it would defeat the gather)")
    return as_kernel_input(table if type(table) is np.ndarray else table.view(np.ndarray))


def _as_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as contiguous int64, the one type the kernels compile for; uint64 ids beyond int64
    saturate (still past any table, never wrapping to a negative id)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got {ids.dtype}")
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
    if ids.dtype == np.uint64:
        ids = np.minimum(ids, np.uint64(_I64_MAX))
    return as_kernel_input(np.ascontiguousarray(ids, dtype=np.int64))
