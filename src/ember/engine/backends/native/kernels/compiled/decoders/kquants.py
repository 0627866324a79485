"""Row decoders of the k-quants (`ember.quant.kquants`): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K."""

from __future__ import annotations

import numpy as np

from ..cache import jit
from .bytes import f32, half_at, opaque

__all__ = ["ROW_DECODERS"]


# ---- Q2_K .. Q6_K: super-blocks of 256 values ------------------------------------------------
# Per super-block the scales are decoded once per sub-block (``d * sc`` and ``dmin * m`` rounded
# to float32 first, as the reference does), then a branch-free loop over 16 or 32 bytes writes
# the values. Bit positions: ember.quant.kquants.


@jit()
def _row_q2_k(src, dst, f16):
    n16 = opaque(16)
    for b in range(dst.size // 256):
        o, e = b * 84, b * 256
        d = half_at(src, o + 80, f16)
        dmin = half_at(src, o + 82, f16)
        for h in range(2):
            for s in range(4):
                # 32 values from one 2-bit plane: two sub-blocks of 16, done side by side.
                shift = 2 * s
                sc0 = src[o + 8 * h + 2 * s]
                sc1 = src[o + 8 * h + 2 * s + 1]
                dl0, ml0 = d * f32(sc0 & 15), dmin * f32(sc0 >> 4)
                dl1, ml1 = d * f32(sc1 & 15), dmin * f32(sc1 >> 4)
                q_at = o + 16 + 32 * h
                v_at = e + 128 * h + 32 * s
                for j in range(n16):
                    q0 = (src[q_at + j] >> shift) & 3
                    q1 = (src[q_at + 16 + j] >> shift) & 3
                    dst[v_at + j] = dl0 * f32(q0) - ml0
                    dst[v_at + 16 + j] = dl1 * f32(q1) - ml1


@jit(inline="always")
def _scale_q3_k(src, o, i):
    """Sub-block ``i``'s signed 6-bit scale, from the 12 bytes at ``o``."""
    low = (np.int32(src[o + (i & 7)]) >> (4 * (i >> 3))) & 15
    high = (np.int32(src[o + 8 + (i & 3)]) >> (2 * (i >> 2))) & 3
    return (low | (high << 4)) - 32


@jit()
def _row_q3_k(src, dst, f16):
    n16 = opaque(16)
    for b in range(dst.size // 256):
        o, e = b * 110, b * 256
        d = half_at(src, o + 108, f16)
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
                    dst[v_at + j] = dl0 * (f32(u0) - np.float32(4))
                    dst[v_at + 16 + j] = dl1 * (f32(u1) - np.float32(4))


@jit(inline="always")
def _scale_min_k4(src, o, j):
    """Sub-block ``j``'s 6-bit scale and minimum, from the 12 bytes at ``o`` (Q4_K, Q5_K)."""
    if j < 4:
        sc = np.int32(src[o + j]) & 63
        m = np.int32(src[o + j + 4]) & 63
    else:
        sc = (np.int32(src[o + j + 4]) & 15) | ((np.int32(src[o + j - 4]) >> 6) << 4)
        m = (np.int32(src[o + j + 4]) >> 4) | ((np.int32(src[o + j]) >> 6) << 4)
    return sc, m


@jit()
def _row_q4_k(src, dst, f16):
    n32 = opaque(32)
    for b in range(dst.size // 256):
        o, e = b * 144, b * 256
        d = half_at(src, o, f16)
        dmin = half_at(src, o + 2, f16)
        for c in range(4):
            sc1, m1 = _scale_min_k4(src, o + 4, 2 * c)
            sc2, m2 = _scale_min_k4(src, o + 4, 2 * c + 1)
            d1, dm1 = d * np.float32(sc1), dmin * np.float32(m1)
            d2, dm2 = d * np.float32(sc2), dmin * np.float32(m2)
            q_at = o + 16 + 32 * c
            v_at = e + 64 * c
            for j in range(n32):
                byte = src[q_at + j]
                dst[v_at + j] = d1 * f32(byte & 15) - dm1
                dst[v_at + 32 + j] = d2 * f32(byte >> 4) - dm2


@jit(inline="always")
def _scale_min_k(src, o, j, d, dmin):
    """Sub-block ``j``'s ``d * sc`` and ``dmin * m``, each rounded to float32."""
    sc, m = _scale_min_k4(src, o, j)
    return d * np.float32(sc), dmin * np.float32(m)


@jit()
def _row_q5_k(src, dst, f16):
    """One loop over the 32 high-bit bytes, each giving one bit to each of the 8 sub-blocks
    (twice as fast here as a loop per pair of sub-blocks)."""
    n32 = opaque(32)
    for b in range(dst.size // 256):
        o, e = b * 176, b * 256
        d = half_at(src, o, f16)
        dmin = half_at(src, o + 2, f16)
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
            dst[e + j] = d0 * f32((x0 & 15) | ((hb & 1) << 4)) - m0
            dst[e + 32 + j] = d1 * f32((x0 >> 4) | ((hb & 2) << 3)) - m1
            dst[e + 64 + j] = d2 * f32((x1 & 15) | ((hb & 4) << 2)) - m2
            dst[e + 96 + j] = d3 * f32((x1 >> 4) | ((hb & 8) << 1)) - m3
            dst[e + 128 + j] = d4 * f32((x2 & 15) | (hb & 16)) - m4
            dst[e + 160 + j] = d5 * f32((x2 >> 4) | ((hb & 32) >> 1)) - m5
            dst[e + 192 + j] = d6 * f32((x3 & 15) | ((hb & 64) >> 2)) - m6
            dst[e + 224 + j] = d7 * f32((x3 >> 4) | ((hb & 128) >> 3)) - m7


@jit()
def _row_q6_k(src, dst, f16):
    for b in range(dst.size // 256):
        o, e = b * 210, b * 256
        d = half_at(src, o + 208, f16)
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
                    dst[v_at + j] = d0 * (f32(u0) - np.float32(32))
                    dst[v_at + 32 + j] = d1 * (f32(u1) - np.float32(32))
                    dst[v_at + 64 + j] = d2 * (f32(u2) - np.float32(32))
                    dst[v_at + 96 + j] = d3 * (f32(u3) - np.float32(32))


ROW_DECODERS = {
    "q2_k": _row_q2_k,
    "q3_k": _row_q3_k,
    "q4_k": _row_q4_k,
    "q5_k": _row_q5_k,
    "q6_k": _row_q6_k,
}
