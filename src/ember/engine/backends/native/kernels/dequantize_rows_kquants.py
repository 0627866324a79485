"""Row decoders for Q2_K, Q3_K, Q4_K, Q5_K and Q6_K: one quantized row into float32.

Same shape as the legacy decoders: per super-block the scales are decoded once per sub-block
(``d * sc`` and ``dmin * m`` rounded to float32 first, as ``ember.quant.kquants`` does), then a
plain loop over 16 or 32 bytes writes the values with no branch inside. The bit positions are
documented in ``ember.quant.kquants``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .dequantize_rows_legacy import _half

__all__ = ["row_q2_k", "row_q3_k", "row_q4_k", "row_q5_k", "row_q6_k"]


@njit(cache=True)
def row_q2_k(src, dst, f16):
    for b in range(dst.size // 256):
        o, e = b * 84, b * 256
        d = _half(src, o + 80, f16)
        dmin = _half(src, o + 82, f16)
        for h in range(2):
            for s in range(4):
                shift = 2 * s
                for half in range(2):
                    sc = np.int32(src[o + 8 * h + 2 * s + half])
                    dl = d * np.float32(sc & 15)
                    ml = dmin * np.float32(sc >> 4)
                    q_at = o + 16 + 32 * h + 16 * half
                    v_at = e + 128 * h + 32 * s + 16 * half
                    for j in range(16):
                        q = (np.int32(src[q_at + j]) >> shift) & 3
                        dst[v_at + j] = dl * np.float32(q) - ml


@njit(cache=True, inline="always")
def _scale_q3_k(src, o, i):
    """Sub-block ``i``'s signed 6-bit scale, from the 12 bytes at ``o``."""
    low = (np.int32(src[o + (i & 7)]) >> (4 * (i >> 3))) & 15
    high = (np.int32(src[o + 8 + (i & 3)]) >> (2 * (i >> 2))) & 3
    return (low | (high << 4)) - 32


@njit(cache=True)
def row_q3_k(src, dst, f16):
    for b in range(dst.size // 256):
        o, e = b * 110, b * 256
        d = _half(src, o + 108, f16)
        for h in range(2):
            for s in range(4):
                shift = 2 * s
                bit = 4 * h + s
                for half in range(2):
                    dl = d * np.float32(_scale_q3_k(src, o + 96, 8 * h + 2 * s + half))
                    q_at = o + 32 + 32 * h + 16 * half
                    m_at = o + 16 * half
                    v_at = e + 128 * h + 32 * s + 16 * half
                    for j in range(16):
                        low = (np.int32(src[q_at + j]) >> shift) & 3
                        set_ = (np.int32(src[m_at + j]) >> bit) & 1
                        dst[v_at + j] = dl * np.float32(low - 4 + 4 * set_)


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
def row_q4_k(src, dst, f16):
    for b in range(dst.size // 256):
        o, e = b * 144, b * 256
        d = _half(src, o, f16)
        dmin = _half(src, o + 2, f16)
        for c in range(4):
            sc1, m1 = _scale_min_k4(src, o + 4, 2 * c)
            sc2, m2 = _scale_min_k4(src, o + 4, 2 * c + 1)
            d1, dm1 = d * np.float32(sc1), dmin * np.float32(m1)
            d2, dm2 = d * np.float32(sc2), dmin * np.float32(m2)
            q_at = o + 16 + 32 * c
            v_at = e + 64 * c
            for j in range(32):
                byte = np.int32(src[q_at + j])
                dst[v_at + j] = d1 * np.float32(byte & 15) - dm1
                dst[v_at + 32 + j] = d2 * np.float32(byte >> 4) - dm2


@njit(cache=True)
def row_q5_k(src, dst, f16):
    for b in range(dst.size // 256):
        o, e = b * 176, b * 256
        d = _half(src, o, f16)
        dmin = _half(src, o + 2, f16)
        for c in range(4):
            sc1, m1 = _scale_min_k4(src, o + 4, 2 * c)
            sc2, m2 = _scale_min_k4(src, o + 4, 2 * c + 1)
            d1, dm1 = d * np.float32(sc1), dmin * np.float32(m1)
            d2, dm2 = d * np.float32(sc2), dmin * np.float32(m2)
            q_at = o + 48 + 32 * c
            v_at = e + 64 * c
            for j in range(32):
                byte = np.int32(src[q_at + j])
                high = np.int32(src[o + 16 + j]) >> (2 * c)
                lo = (byte & 15) | ((high & 1) << 4)
                hi = (byte >> 4) | ((high & 2) << 3)
                dst[v_at + j] = d1 * np.float32(lo) - dm1
                dst[v_at + 32 + j] = d2 * np.float32(hi) - dm2


@njit(cache=True, inline="always")
def _int8(byte):
    v = np.int32(byte)
    return v - ((v & 128) << 1)


@njit(cache=True)
def row_q6_k(src, dst, f16):
    for b in range(dst.size // 256):
        o, e = b * 210, b * 256
        d = _half(src, o + 208, f16)
        for h in range(2):
            ql_at = o + 64 * h
            qh_at = o + 128 + 32 * h
            for half in range(2):
                sc_at = o + 192 + 8 * h + half
                d0 = d * np.float32(_int8(src[sc_at]))
                d1 = d * np.float32(_int8(src[sc_at + 2]))
                d2 = d * np.float32(_int8(src[sc_at + 4]))
                d3 = d * np.float32(_int8(src[sc_at + 6]))
                v_at = e + 128 * h
                for j in range(16 * half, 16 * half + 16):
                    a = np.int32(src[ql_at + j])
                    c = np.int32(src[ql_at + 32 + j])
                    hb = np.int32(src[qh_at + j])
                    q0 = ((a & 15) | ((hb & 3) << 4)) - 32
                    q1 = ((c & 15) | (((hb >> 2) & 3) << 4)) - 32
                    q2 = ((a >> 4) | (((hb >> 4) & 3) << 4)) - 32
                    q3 = ((c >> 4) | (((hb >> 6) & 3) << 4)) - 32
                    dst[v_at + j] = d0 * np.float32(q0)
                    dst[v_at + 32 + j] = d1 * np.float32(q1)
                    dst[v_at + 64 + j] = d2 * np.float32(q2)
                    dst[v_at + 96 + j] = d3 * np.float32(q3)
