"""Row decoders of the ternary formats (`ember.quant.ternary`): TQ1_0, TQ2_0."""

from __future__ import annotations

import numpy as np

from ..cache import jit
from .bytes import f32, half_at, opaque

__all__ = ["ROW_DECODERS"]


# ---- TQ1_0, TQ2_0: ternary super-blocks of 256 values -----------------------------------------
# Value ``d * (float(t) - 1)`` for trits t in 0..2 (layouts: ember.quant.ternary).


@jit()
def _row_tq2_0(src, dst, f16):
    n32 = opaque(32)
    for b in range(dst.size // 256):
        o, e = b * 66, b * 256
        d = half_at(src, o + 64, f16)
        for h in range(2):
            q_at = o + 32 * h
            v_at = e + 128 * h
            for j in range(n32):
                byte = src[q_at + j]
                dst[v_at + j] = d * (f32(byte & 3) - np.float32(1))
                dst[v_at + 32 + j] = d * (f32((byte >> 2) & 3) - np.float32(1))
                dst[v_at + 64 + j] = d * (f32((byte >> 4) & 3) - np.float32(1))
                dst[v_at + 96 + j] = d * (f32(byte >> 6) - np.float32(1))


@jit(inline="always")
def _trit(byte, power):
    """Trit ``p`` of a TQ1_0 byte, ``power`` being ``3**p``: the product wraps mod 256 (uint8,
    as in ggml), then ``(x * 3) >> 8`` reads the trit off the fixed-point fraction."""
    return (np.int32(np.uint8(np.int32(byte) * power)) * 3) >> 8


@jit(inline="always")
def _trits_tq1(src, q_at, dst, v_at, d, count, width):
    """``count`` trits of each of ``width`` bytes: trit ``p`` of byte ``j`` is value
    ``v_at + p * width + j``."""
    power = 1
    for p in range(count):
        for j in range(width):
            dst[v_at + p * width + j] = d * (f32(_trit(src[q_at + j], power)) - np.float32(1))
        power *= 3


@jit()
def _row_tq1_0(src, dst, f16):
    n32, n16 = opaque(32), opaque(16)
    for b in range(dst.size // 256):
        o, e = b * 54, b * 256
        d = half_at(src, o + 52, f16)
        _trits_tq1(src, o, dst, e, d, 5, n32)
        _trits_tq1(src, o + 32, dst, e + 160, d, 5, n16)
        _trits_tq1(src, o + 48, dst, e + 240, d, 4, 4)


ROW_DECODERS = {"tq1_0": _row_tq1_0, "tq2_0": _row_tq2_0}
