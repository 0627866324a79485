"""Row decoders of the i-quants (`ember.quant.iquants`): IQ4_NL and IQ4_XS, whose 16 levels go
through a byte shuffle, and the grid i-quants IQ3_S, IQ3_XXS, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
IQ1_M."""

from __future__ import annotations

import numpy as np

from ember.quant.grids import BYTE_SIGNS, GRIDS_F32, IQ4NL_VALUES, KSIGN_PATTERNS

from ..cache import jit
from .bytes import half_at, u16_at, u32_at
from .grid_vectors import grid4x2, grid8, grid8_delta
from .nibbles import nibbles16

__all__ = ["ROW_DECODERS"]


# ---- IQ4_NL, IQ4_XS: 16 non-uniform levels -----------------------------------------------------
# A value is ``scale * IQ4NL_VALUES[q]`` (layouts: ember.quant.iquants), 32 at a time.

_NL_I8 = np.array(IQ4NL_VALUES, np.int8)


@jit()
def _row_iq4_nl(src, dst, f16):
    levels = _NL_I8
    for b in range(dst.size // 32):
        o = b * 18
        nibbles16(levels, src, o + 2, dst, b * 32, half_at(src, o, f16))


@jit()
def _row_iq4_xs(src, dst, f16):
    levels = _NL_I8
    for b in range(dst.size // 256):
        o, e = b * 136, b * 256
        d = half_at(src, o, f16)
        high = np.int64(src[o + 2]) | (np.int64(src[o + 3]) << 8)
        for i in range(8):
            low = (np.int64(src[o + 4 + i // 2]) >> (4 * (i & 1))) & 15
            six = low | (((high >> (2 * i)) & 3) << 4)
            nibbles16(levels, src, o + 8 + 16 * i, dst, e + 32 * i, d * np.float32(six - 32))


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


@jit()
def _row_iq2_xxs(src, dst, f16):
    grid, signs = _GRID_IQ2XXS, _KSIGN_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 66, b * 256
        d = half_at(src, o, f16)
        for ib in range(8):
            at = o + 2 + 8 * ib
            aux = u32_at(src, at + 4)
            scale = d * (np.float32(0.5) + np.float32(aux >> 28)) * np.float32(0.25)
            for g in range(4):
                s = (aux >> (7 * g)) & 127
                grid8(grid, src[at + g], signs, s, dst, e + 32 * ib + 8 * g, scale)


@jit()
def _row_iq2_xs(src, dst, f16):
    grid, signs = _GRID_IQ2XS, _KSIGN_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 74, b * 256
        d = half_at(src, o, f16)
        for ib in range(16):
            nib = (np.int64(src[o + 66 + ib // 2]) >> (4 * (ib & 1))) & 15
            scale = d * (np.float32(0.5) + np.float32(nib)) * np.float32(0.25)
            for g in range(2):
                w = u16_at(src, o + 2 + 4 * ib + 2 * g)
                grid8(grid, w & 511, signs, w >> 9, dst, e + 16 * ib + 8 * g, scale)


@jit()
def _row_iq2_s(src, dst, f16):
    grid, signs = _GRID_IQ2S, _BYTE_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 82, b * 256
        d = half_at(src, o, f16)
        for ib in range(16):
            nib = (np.int64(src[o + 74 + ib // 2]) >> (4 * (ib & 1))) & 15
            scale = d * (np.float32(0.5) + np.float32(nib)) * np.float32(0.25)
            for h in range(2):
                g = 2 * ib + h
                high = (np.int64(src[o + 66 + g // 4]) >> (2 * (g & 3))) & 3
                index = np.int64(src[o + 2 + g]) | (high << 8)
                grid8(grid, index, signs, src[o + 34 + g], dst, e + 8 * g, scale)


@jit()
def _row_iq3_xxs(src, dst, f16):
    grid, signs = _GRID_IQ3XXS, _KSIGN_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 98, b * 256
        d = half_at(src, o, f16)
        for ib in range(8):
            aux = u32_at(src, o + 66 + 4 * ib)
            scale = d * (np.float32(0.5) + np.float32(aux >> 28)) * np.float32(0.5)
            for g in range(4):
                at = o + 2 + 8 * ib + 2 * g
                s = (aux >> (7 * g)) & 127
                grid4x2(grid, src[at], src[at + 1], signs, s, dst, e + 32 * ib + 8 * g, scale)


@jit()
def _row_iq3_s(src, dst, f16):
    grid, signs = _GRID_IQ3S, _BYTE_SIGNS
    for b in range(dst.size // 256):
        o, e = b * 110, b * 256
        d = half_at(src, o, f16)
        for ib in range(8):
            nib = (np.int64(src[o + 106 + ib // 2]) >> (4 * (ib & 1))) & 15
            scale = d * np.float32(2 * nib + 1)
            qh = np.int64(src[o + 66 + ib])
            for g in range(4):
                p = 8 * ib + 2 * g  # the first of the group's two grid points
                g0 = np.int64(src[o + 2 + p]) | (((qh >> (2 * g)) & 1) << 8)
                g1 = np.int64(src[o + 3 + p]) | (((qh >> (2 * g + 1)) & 1) << 8)
                s = src[o + 74 + 4 * ib + g]
                grid4x2(grid, g0, g1, signs, s, dst, e + 32 * ib + 8 * g, scale)


@jit(inline="always")
def _delta(bit):
    return np.float32(-0.125) if bit else np.float32(0.125)


@jit()
def _row_iq1_s(src, dst, f16):
    grid = _GRID_IQ1S
    for b in range(dst.size // 256):
        o, e = b * 50, b * 256
        d = half_at(src, o, f16)
        for ib in range(8):
            qh = u16_at(src, o + 34 + 2 * ib)
            scale = d * np.float32(2 * ((qh >> 12) & 7) + 1)
            delta = _delta(qh & 0x8000)
            for g in range(4):
                index = np.int64(src[o + 2 + 4 * ib + g]) | (((qh >> (3 * g)) & 7) << 8)
                grid8_delta(grid, index, delta, dst, e + 32 * ib + 8 * g, scale)


@jit()
def _row_iq1_m(src, dst, f16):
    grid = _GRID_IQ1S
    for b in range(dst.size // 256):
        o, e = b * 56, b * 256
        w0, w1 = u16_at(src, o + 48), u16_at(src, o + 50)
        w2, w3 = u16_at(src, o + 52), u16_at(src, o + 54)
        d_bits = (w0 >> 12) | ((w1 >> 12) << 4) | ((w2 >> 12) << 8) | ((w3 >> 12) << 12)
        d = f16[d_bits]
        for m in range(16):  # 16 values per 3-bit scale
            w = u16_at(src, o + 48 + 2 * (m // 4))
            scale = d * np.float32(2 * ((w >> (3 * (m & 3))) & 7) + 1)
            nib = np.int64(src[o + 32 + m])
            for h in range(2):
                g = 2 * m + h
                n = (nib >> (4 * h)) & 15
                index = np.int64(src[o + g]) | ((n & 7) << 8)
                grid8_delta(grid, index, _delta(n & 8), dst, e + 8 * g, scale)


ROW_DECODERS = {
    "iq4_nl": _row_iq4_nl,
    "iq4_xs": _row_iq4_xs,
    "iq3_xxs": _row_iq3_xxs,
    "iq3_s": _row_iq3_s,
    "iq2_xxs": _row_iq2_xxs,
    "iq2_xs": _row_iq2_xs,
    "iq2_s": _row_iq2_s,
    "iq1_s": _row_iq1_s,
    "iq1_m": _row_iq1_m,
}
