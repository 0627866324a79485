"""GGUF's i-quants: values snapped to a fixed lattice grid (IQ1/IQ2/IQ3) or to a non-uniform
16-level table (IQ4), with fp16 super-scales and small integer sub-block scales.

Layouts (bytes, little-endian), as ggml's ``block_iq*`` structs store them; ``d`` is fp16,
``u16``/``u32`` little-endian words, "groups" are the runs of 8 (IQ1/IQ2) or 4 (IQ3) values one
grid point covers, sub-blocks are the 32 values one scale nibble covers unless said otherwise:

=======  =====  ==========================================================================
format   bytes  layout
=======  =====  ==========================================================================
IQ2_XXS  66     d, 8 x (u32 grid: four 8-bit indices; u32 aux: four 7-bit sign indices at
                bits 0/7/14/21, scale s at bits 28-31)
IQ2_XS   74     d, qs[32] u16 (9-bit grid index | 7-bit sign index << 9), scales[8] (one
                nibble per 16 values, low nibble first)
IQ2_S    82     d, qs[32] (grid index bits 0-7), signs[32] (one bit per value), qh[8] (index
                bits 8-9: group g at bits 2(g%4) of byte g//4), scales[8] (as IQ2_XS)
IQ3_XXS  98     d, qs[64] (8-bit grid index per 4 values), 8 x u32 aux (as IQ2_XXS)
IQ3_S    110    d, qs[64] (index bits 0-7), qh[8] (index bit 8: group g at bit g%8 of byte
                g//8), signs[32], scales[4] (one nibble per sub-block)
IQ1_S    50     d, qs[32] (index bits 0-7), 8 x u16 qh (index bits 8-10 of group k at bits
                3k, scale s at bits 12-14, delta sign at bit 15)
IQ1_M    56     qs[32] (index bits 0-7), qh[16] (a nibble per group: index bits 8-10, delta
                sign at bit 3), 4 x u16 scales (four 3-bit scales per 64 values, one per 16,
                at bits 3k; the four top nibbles, first word lowest, are d's 16 bits)
IQ4_NL   18     d, qs[16]          (32 values: low nibbles 0-15, high nibbles 16-31)
IQ4_XS   136    d, u16 scales_h (bits 2i, 2i+1: top bits of sub-block i's scale),
                scales_l[4] (low nibbles, sub-block i at nibble i%2 of byte i//2),
                qs[128] (sub-block i: qs[16i:16i+16] as IQ4_NL)
=======  =====  ==========================================================================

Values (``grid``/``signs`` as in :mod:`ember.quant.grids`; a sign index picks one of the 128
even-parity patterns of ``KSIGNS``, a sign bit set means minus):

* IQ2_XXS, IQ2_XS, IQ2_S: ``d * (0.5 + s) * 0.25 * grid * sign``
* IQ3_XXS: ``d * (0.5 + s) * 0.5 * grid * sign``; IQ3_S: ``d * (1 + 2s) * grid * sign``
* IQ1_S, IQ1_M: ``d * (2s + 1) * (grid + delta)``, ``delta`` = -1/8 if its bit is set else +1/8
* IQ4_NL: ``d * IQ4NL_VALUES[q]``; IQ4_XS: ``d * (s - 32) * IQ4NL_VALUES[q]``, ``s`` 6 bits

Every factor is an fp16 or a short dyadic number (a few significant bits), so each product is
exact in float32 and any evaluation order is bit-exact against ``gguf.quants.dequantize``.

Only IQ4_NL and IQ4_XS quantize here (a small search for each block's scale). The grid formats
need a search over the lattice guided by an importance matrix, which is llama.cpp's job.

>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal(256).astype(np.float32)
>>> bool(np.sqrt(np.mean((IQ4_XS.dequantize(IQ4_XS.quantize(x)) - x) ** 2)) < 0.1)
True
"""

from __future__ import annotations

import numpy as np

from .format import QuantFormat, block_format, read_f16, write_f16
from .grids import (
    BYTE_SIGNS,
    GRIDS_F32,
    IQ4NL_VALUES,
    KSIGN_PATTERNS,
)

__all__ = ["IQ1_M", "IQ1_S", "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ3_S", "IQ3_XXS", "IQ4_NL", "IQ4_XS"]

QK_K = 256
_F16_MAX = np.float32(65504)
_F16_TINY = np.float32(2.0**-24)  # the smallest fp16 subnormal

_NL = IQ4NL_VALUES.astype(np.float32)


# ---- unpacking ------------------------------------------------------------------------------


def _words(field: np.ndarray, dtype: str) -> np.ndarray:
    """Bytes ``(n, k)`` as little-endian ``dtype`` words ``(n, k / size)``."""
    return np.ascontiguousarray(field).view(dtype)


def _nibble_pairs(field: np.ndarray) -> np.ndarray:
    """``(n, k)`` bytes -> ``(n, 2k)`` nibbles, each byte's low nibble first."""
    return np.stack([field & 0x0F, field >> 4], axis=-1).reshape(field.shape[0], -1)


def _halves(field: np.ndarray) -> np.ndarray:
    """Runs of 16 bytes -> 32 values each: low nibbles are values 0-15, high nibbles 16-31."""
    return np.concatenate([field & 0x0F, field >> 4], axis=-1)


def _per_bits(field: np.ndarray, width: int) -> np.ndarray:
    """``(n, k)`` bytes -> ``(n, k * 8 / width)`` fields of ``width`` bits, lowest first."""
    shifts = np.arange(0, 8, width, dtype=np.uint8)
    return ((field[:, :, None] >> shifts) & ((1 << width) - 1)).reshape(field.shape[0], -1)


def _aux_words(aux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IQ2_XXS/IQ3_XXS aux words ``(n, 8)`` -> (scale nibble as float32 ``(n, 8)``, signs
    ``(n, 8, 4, 8)``: four groups of eight)."""
    sign_index = (aux[:, :, None] >> np.array([0, 7, 14, 21], np.uint32)) & 0x7F
    return (aux >> 28).astype(np.float32), KSIGN_PATTERNS[sign_index]


def _decode_iq2_xxs(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    d = read_f16(blocks, 0)
    payload = blocks[:, 2:66].reshape(n, 8, 8)
    s, signs = _aux_words(_words(payload[:, :, 4:], "<u4").reshape(n, 8))
    grid = GRIDS_F32["iq2_xxs"][payload[:, :, :4]]  # (n, 8, 4, 8)
    scale = d * (np.float32(0.5) + s) * np.float32(0.25)
    return (scale[:, :, None, None] * grid * signs).reshape(n, QK_K)


def _decode_iq2_xs(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    d = read_f16(blocks, 0)
    qs = _words(blocks[:, 2:66], "<u2")  # (n, 32)
    grid = GRIDS_F32["iq2_xs"][qs & 0x1FF] * KSIGN_PATTERNS[qs >> 9]
    scale = d * (np.float32(0.5) + _nibble_pairs(blocks[:, 66:74])) * np.float32(0.25)
    return (scale[:, :, None] * grid.reshape(n, 16, 16)).reshape(n, QK_K)


def _decode_iq2_s(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    d = read_f16(blocks, 0)
    index = blocks[:, 2:34] | (_per_bits(blocks[:, 66:74], 2).astype(np.uint16) << 8)
    grid = GRIDS_F32["iq2_s"][index] * BYTE_SIGNS[blocks[:, 34:66]]  # (n, 32, 8)
    scale = d * (np.float32(0.5) + _nibble_pairs(blocks[:, 74:82])) * np.float32(0.25)
    return (scale[:, :, None] * grid.reshape(n, 16, 16)).reshape(n, QK_K)


def _decode_iq3_xxs(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    d = read_f16(blocks, 0)
    s, signs = _aux_words(_words(blocks[:, 66:98], "<u4"))
    grid = GRIDS_F32["iq3_xxs"][blocks[:, 2:66]].reshape(n, 8, 4, 8)
    scale = d * (np.float32(0.5) + s) * np.float32(0.5)
    return (scale[:, :, None, None] * grid * signs).reshape(n, QK_K)


def _decode_iq3_s(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    d = read_f16(blocks, 0)
    index = blocks[:, 2:66] | (_per_bits(blocks[:, 66:74], 1).astype(np.uint16) << 8)
    values = GRIDS_F32["iq3_s"][index].reshape(n, 32, 8) * BYTE_SIGNS[blocks[:, 74:106]]
    scale = d * (2 * _nibble_pairs(blocks[:, 106:110]) + 1).astype(np.float32)
    return (scale[:, :, None] * values.reshape(n, 8, 32)).reshape(n, QK_K)


def _deltas(bit: np.ndarray) -> np.ndarray:
    return np.where(bit != 0, np.float32(-0.125), np.float32(0.125))


def _decode_iq1_s(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    d = read_f16(blocks, 0)
    qh = _words(blocks[:, 34:50], "<u2")  # (n, 8), one per sub-block
    high = (qh[:, :, None] >> np.array([0, 3, 6, 9], np.uint16)) & 7
    index = blocks[:, 2:34].reshape(n, 8, 4) | (high << 8)
    values = GRIDS_F32["iq1_s"][index] + _deltas(qh & 0x8000)[:, :, None, None]  # (n, 8, 4, 8)
    scale = d * (2 * ((qh >> 12) & 7) + 1).astype(np.float32)
    return (scale[:, :, None, None] * values).reshape(n, QK_K)


def _decode_iq1_m(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    words = _words(blocks[:, 48:56], "<u2")  # (n, 4)
    d_bits = np.bitwise_or.reduce((words >> 12) << np.array([0, 4, 8, 12], np.uint16), axis=1)
    d = d_bits.view(np.float16).astype(np.float32)[:, None]
    s = ((words[:, :, None] >> np.array([0, 3, 6, 9], np.uint16)) & 7).reshape(n, 16)
    nib = _nibble_pairs(blocks[:, 32:48])  # (n, 32), one per group of 8
    index = blocks[:, 0:32] | ((nib & 7).astype(np.uint16) << 8)
    values = GRIDS_F32["iq1_s"][index] + _deltas(nib & 8)[:, :, None]  # (n, 32, 8)
    scale = d * (2 * s + 1).astype(np.float32)  # (n, 16), one per 16 values
    return (scale[:, :, None] * values.reshape(n, 16, 16)).reshape(n, QK_K)


def _decode_iq4_nl(blocks: np.ndarray) -> np.ndarray:
    return read_f16(blocks, 0) * _NL[_halves(blocks[:, 2:18])]


def _iq4_xs_scales(blocks: np.ndarray) -> np.ndarray:
    """The eight signed 6-bit sub-block scales, as int16 ``(n, 8)``."""
    high = (_words(blocks[:, 2:4], "<u2") >> np.arange(0, 16, 2, dtype=np.uint16)) & 3
    return (_nibble_pairs(blocks[:, 4:8]) | (high << 4)).astype(np.int16) - 32


def _decode_iq4_xs(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    scale = read_f16(blocks, 0) * _iq4_xs_scales(blocks).astype(np.float32)
    values = _NL[_halves(blocks[:, 8:136].reshape(n, 8, 16))]  # (n, 8, 32)
    return (scale[:, :, None] * values).reshape(n, QK_K)


# ---- quantizing (IQ4 only) ------------------------------------------------------------------

_NL_MIDPOINTS = (_NL[1:] + _NL[:-1]) / np.float32(2)


def _nearest_nl(ratio: np.ndarray) -> np.ndarray:
    """Index of the IQ4_NL level nearest each ``x / scale`` (ties to the lower level)."""
    return np.searchsorted(_NL_MIDPOINTS, ratio).astype(np.uint8)


def _levels_for(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Nearest level indices for ``x`` ``(..., L)`` at ``scale`` ``(...)``; level 1 (index 8,
    the one nearest zero) wherever the scale is 0."""
    safe = np.where(scale != 0, scale, np.float32(1))[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        q = _nearest_nl(x / safe)
    return np.where(scale[..., None] != 0, q, np.uint8(8))


def _fit_nl(x: np.ndarray, steps: int = 8) -> np.ndarray:
    """Per group of ``x`` ``(..., L)``: a float scale ``a`` with ``x ~ a * IQ4NL_VALUES[q]``.

    Candidate scales map the group's signed peak onto ``-127 + t`` for ``t`` in
    ``-steps..steps`` (the table's long end is negative, so a positive peak gets a negative
    scale); each rounds the group to its nearest levels, least squares rescales it, and the
    candidate that explains most of the group's energy wins.
    """
    at = np.argmax(np.abs(x), axis=-1)[..., None]
    peak = np.take_along_axis(x, at, axis=-1)[..., 0]
    x64 = x.astype(np.float64)  # sums of squares of any float32 stay finite
    best_a = np.zeros(peak.shape)
    best_gain = np.full(peak.shape, -1.0)
    for t in range(-steps, steps + 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            guess = np.where(peak != 0, peak / np.float32(t - 127), np.float32(0))
        v = _NL[_levels_for(x, guess)].astype(np.float64)
        sxv = np.einsum("...l,...l->...", x64, v)
        svv = np.einsum("...l,...l->...", v, v)  # > 0: no level is 0
        gain = sxv * sxv / svv  # squared error = sum(x^2) - gain
        better = gain > best_gain
        best_gain = np.where(better, gain, best_gain)
        best_a = np.where(better, sxv / svv, best_a)
    return best_a.astype(np.float32)


def _f16(d: np.ndarray) -> np.ndarray:
    """``d`` rounded to fp16 (as float32), clipped to its finite range."""
    return np.clip(d, -_F16_MAX, _F16_MAX).astype(np.float16).astype(np.float32)


def _pick(x: np.ndarray, scales: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Of candidate scales (each shaped like ``x`` ``(..., L)`` without its last axis), which
    one, per group, reconstructs the group best from its nearest levels; returns the winner's
    position in ``scales`` and its level indices."""
    levels = np.stack([_levels_for(x, scale) for scale in scales])
    with np.errstate(over="ignore", invalid="ignore"):
        errors = [
            np.square(scale[..., None] * _NL[q] - x).sum(axis=-1)
            for scale, q in zip(scales, levels, strict=True)
        ]
    best = np.argmin(np.stack(errors), axis=0)
    return best, np.take_along_axis(levels, best[None, ..., None], axis=0)[0]


def _pack_halves(q: np.ndarray) -> np.ndarray:
    """Inverse of _halves: ``(..., 32)`` indices -> ``(..., 16)`` bytes."""
    return q[..., :16] | (q[..., 16:] << 4)


def _encode_iq4_nl(x: np.ndarray) -> np.ndarray:
    """The fitted scale rounded to fp16; where that flushes it to 0, the smallest fp16 of its
    sign is tried too (IQ4_NL has no zero level, so a scale of 0 is the only way to zeros)."""
    a = _fit_nl(x)
    d = _f16(a)
    candidates = [d, np.where(d == 0, np.copysign(_F16_TINY, a), d)]
    best, q = _pick(x, candidates)
    d = np.choose(best, candidates)[:, None]
    return np.concatenate([write_f16(d), _pack_halves(q)], axis=1)


def _encode_iq4_xs(x: np.ndarray) -> np.ndarray:
    """Each sub-block's best float scale; those eight quantized against one fp16 ``d`` (the
    largest onto -32, the end with the extra level, ``d`` never flushed to 0 while they are not
    all 0); each integer scale rounded, one below and one above tried, and the one whose
    nearest levels reconstruct its sub-block best kept."""
    n = x.shape[0]
    xs = x.reshape(n, 8, 32)
    a = _fit_nl(xs)
    wanted = np.take_along_axis(a, np.argmax(np.abs(a), axis=1)[:, None], axis=1) / np.float32(-32)
    d = _f16(wanted)
    d = np.where((d == 0) & (wanted != 0), np.copysign(_F16_TINY, wanted), d)
    with np.errstate(divide="ignore", invalid="ignore"):
        s0 = np.where(d != 0, np.rint(a / np.where(d != 0, d, 1)), 0)
    tries = [np.clip(s0 + step, -32, 31).astype(np.int16) for step in (-1, 0, 1)]
    best, q = _pick(xs, [d * s.astype(np.float32) for s in tries])
    six = (np.choose(best, tries) + 32).astype(np.uint8)
    high = np.bitwise_or.reduce(
        (six >> 4).astype(np.uint16) << np.arange(0, 16, 2, dtype=np.uint16), axis=1
    )
    low = (six[:, 0::2] & 0x0F) | ((six[:, 1::2] & 0x0F) << 4)
    parts = [write_f16(d), high.astype("<u2").view(np.uint8).reshape(n, 2), low]
    return np.concatenate([*parts, _pack_halves(q).reshape(n, 128)], axis=1)


def _grid_format(name: str, ggml_type: int, block_bytes: int, decode) -> QuantFormat:
    """A 256-value grid i-quant: decoded here, quantized only by llama.cpp."""
    return block_format(name, ggml_type, QK_K, block_bytes, decode, None, _GRID_NOT_WRITTEN)


_GRID_NOT_WRITTEN = (
    "a grid i-quant needs a lattice search guided by an importance matrix; quantize with "
    "llama.cpp's llama-quantize"
)


_F16 = 2  # bytes of one fp16 scale
_U16, _U32 = 2, 4  # bytes of one packed word

# Bytes per block as the sum of the struct's fields (see the layout table above).
IQ2_XXS = _grid_format("iq2_xxs", 16, _F16 + QK_K // 32 * (_U32 + _U32), _decode_iq2_xxs)
IQ2_XS = _grid_format("iq2_xs", 17, _F16 + QK_K // 8 * _U16 + QK_K // 32, _decode_iq2_xs)
IQ2_S = _grid_format(
    "iq2_s", 22, _F16 + QK_K // 8 + QK_K // 8 + QK_K // 32 + QK_K // 32, _decode_iq2_s
)
IQ3_XXS = _grid_format("iq3_xxs", 18, _F16 + QK_K // 4 + QK_K // 32 * _U32, _decode_iq3_xxs)
IQ3_S = _grid_format(
    "iq3_s", 21, _F16 + QK_K // 4 + QK_K // 32 + QK_K // 8 + QK_K // 64, _decode_iq3_s
)
IQ1_S = _grid_format("iq1_s", 19, _F16 + QK_K // 8 + QK_K // 32 * _U16, _decode_iq1_s)
IQ1_M = _grid_format("iq1_m", 29, QK_K // 8 + QK_K // 16 + QK_K // 64 * _U16, _decode_iq1_m)
IQ4_NL = block_format("iq4_nl", 20, 32, _F16 + 16, _decode_iq4_nl, _encode_iq4_nl)
IQ4_XS = block_format(
    "iq4_xs", 23, QK_K, _F16 + _U16 + QK_K // 64 + QK_K // 2, _decode_iq4_xs, _encode_iq4_xs
)
