"""Row decoders for Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: one quantized row into float32.

Each is a small function of plain 1-D loops over one row's bytes and its output slice: numba
vectorizes those, where the same code inlined over 2-D arrays ran several times slower. The
float operations are ``ember.quant.legacy``'s, in its order and in float32 (no FMA contraction:
numba compiles without fast-math), so the values are bit-identical to the reference. ``f16`` is
the 65536-entry fp16 -> float32 table, so decoding a scale is one load.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["row_q4_0", "row_q4_1", "row_q5_0", "row_q5_1", "row_q8_0"]


@njit(cache=True, inline="always")
def _half(src, at, f16):
    """The little-endian fp16 at byte ``at`` of ``src``, as float32."""
    return f16[np.int64(src[at]) | (np.int64(src[at + 1]) << 8)]


@njit(cache=True, inline="always")
def _word(src, at):
    """The little-endian uint32 at byte ``at``, as int64."""
    return (
        np.int64(src[at])
        | (np.int64(src[at + 1]) << 8)
        | (np.int64(src[at + 2]) << 16)
        | (np.int64(src[at + 3]) << 24)
    )


@njit(cache=True)
def row_q4_0(src, dst, f16):
    for b in range(dst.size // 32):
        o, e = b * 18, b * 32
        d = _half(src, o, f16)
        for j in range(16):
            byte = np.int32(src[o + 2 + j])
            dst[e + j] = d * np.float32((byte & 15) - 8)
            dst[e + 16 + j] = d * np.float32((byte >> 4) - 8)


@njit(cache=True)
def row_q4_1(src, dst, f16):
    for b in range(dst.size // 32):
        o, e = b * 20, b * 32
        d = _half(src, o, f16)
        m = _half(src, o + 2, f16)
        for j in range(16):
            byte = np.int32(src[o + 4 + j])
            dst[e + j] = d * np.float32(byte & 15) + m
            dst[e + 16 + j] = d * np.float32(byte >> 4) + m


@njit(cache=True)
def row_q5_0(src, dst, f16):
    for b in range(dst.size // 32):
        o, e = b * 22, b * 32
        d = _half(src, o, f16)
        qh = _word(src, o + 2)
        for j in range(16):
            byte = np.int32(src[o + 6 + j])
            lo = (byte & 15) | np.int32(((qh >> j) & 1) << 4)
            hi = (byte >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
            dst[e + j] = d * np.float32(lo - 16)
            dst[e + 16 + j] = d * np.float32(hi - 16)


@njit(cache=True)
def row_q5_1(src, dst, f16):
    for b in range(dst.size // 32):
        o, e = b * 24, b * 32
        d = _half(src, o, f16)
        m = _half(src, o + 2, f16)
        qh = _word(src, o + 4)
        for j in range(16):
            byte = np.int32(src[o + 8 + j])
            lo = (byte & 15) | np.int32(((qh >> j) & 1) << 4)
            hi = (byte >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
            dst[e + j] = d * np.float32(lo) + m
            dst[e + 16 + j] = d * np.float32(hi) + m


@njit(cache=True)
def row_q8_0(src, dst, f16):
    for b in range(dst.size // 32):
        o, e = b * 34, b * 32
        d = _half(src, o, f16)
        for j in range(32):
            byte = np.int32(src[o + 2 + j])
            dst[e + j] = np.float32(byte - ((byte & 128) << 1)) * d
