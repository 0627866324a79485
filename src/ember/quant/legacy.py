"""The first GGUF block formats: 32 values per block, one fp16 scale (and for ``_1`` a minimum).

Layouts (bytes, little-endian), as ggml's ``block_q*`` structs store them:

======  =====  ============================================================
format  bytes  layout
======  =====  ============================================================
Q4_0    18     d:f16, qs[16]            value j = d * (q_j - 8)
Q4_1    20     d:f16, m:f16, qs[16]     value j = d * q_j + m
Q5_0    22     d:f16, qh[4], qs[16]     value j = d * (q_j - 16)
Q5_1    24     d:f16, m:f16, qh[4], qs  value j = d * q_j + m
Q8_0    34     d:f16, qs[32] int8       value j = q_j * d
======  =====  ============================================================

In ``qs`` byte ``j`` holds value ``j`` in its low nibble and value ``j + 16`` in its high nibble;
for the 5-bit formats bit ``j`` of the little-endian uint32 ``qh`` is bit 4 of value ``j``.

The quantizers reproduce ggml's reference ones (``quantize_row_q*_ref``) operation for
operation in float32, so their bytes equal ``gguf.quants.quantize``'s for finite inputs, except
in blocks so small (largest magnitude under about 1e-37) that the reciprocal of their scale
overflows float32: there gguf-py casts inf and NaN to integers, which numpy leaves to the
platform (and C to undefined behaviour), and ember's levels decode to the same values, zeros,
but for the sign of a zero.

>>> import numpy as np
>>> x = np.linspace(-1, 1, 32, dtype=np.float32)
>>> Q8_0.quantize(x).shape, float(np.abs(Q8_0.dequantize(Q8_0.quantize(x)) - x).max()) < 0.01
((34,), True)
"""

from __future__ import annotations

import numpy as np

from .format import block_format, read_f16, write_f16

__all__ = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]

_BLOCK = 32
_HALF = _BLOCK // 2


# ---- unpacking ------------------------------------------------------------------------------


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """16 bytes -> 32 values in 0..15: low nibbles are values 0..15, high nibbles 16..31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _fifth_bits(qh: np.ndarray) -> np.ndarray:
    """4 bytes (a little-endian uint32) -> bit j of it, as 0 or 16, for each of 32 values."""
    return np.unpackbits(qh, axis=1, bitorder="little") << 4


def _decode_q4_0(blocks: np.ndarray) -> np.ndarray:
    d = read_f16(blocks, 0)
    q = _nibbles(blocks[:, 2:18]).astype(np.float32) - np.float32(8)
    return d * q


def _decode_q4_1(blocks: np.ndarray) -> np.ndarray:
    d, m = read_f16(blocks, 0), read_f16(blocks, 2)
    q = _nibbles(blocks[:, 4:20]).astype(np.float32)
    return d * q + m


def _decode_q5_0(blocks: np.ndarray) -> np.ndarray:
    d = read_f16(blocks, 0)
    q = (_nibbles(blocks[:, 6:22]) | _fifth_bits(blocks[:, 2:6])).astype(np.float32)
    return d * (q - np.float32(16))


def _decode_q5_1(blocks: np.ndarray) -> np.ndarray:
    d, m = read_f16(blocks, 0), read_f16(blocks, 2)
    q = (_nibbles(blocks[:, 8:24]) | _fifth_bits(blocks[:, 4:8])).astype(np.float32)
    return d * q + m


def _decode_q8_0(blocks: np.ndarray) -> np.ndarray:
    d = read_f16(blocks, 0)
    return blocks[:, 2:34].view(np.int8).astype(np.float32) * d


# ---- packing --------------------------------------------------------------------------------


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    """32 values in 0..31 -> 16 bytes holding their low four bits (the inverse of _nibbles)."""
    return (q[:, :_HALF] & 0x0F) | ((q[:, _HALF:] & 0x0F) << 4)


def _pack_fifth_bits(q: np.ndarray) -> np.ndarray:
    return np.packbits((q >> 4) & 1, axis=1, bitorder="little")


def _reciprocal(d: np.ndarray) -> np.ndarray:
    """1/d, and 0 where d is 0 (a block of zeros quantizes to zeros, as in ggml)."""
    with np.errstate(divide="ignore"):
        return np.where(d == 0, np.float32(0), np.float32(1) / d)


def _signed_peak(x: np.ndarray) -> np.ndarray:
    """Per block, the value of largest magnitude with its sign (the first one on ties)."""
    at = np.argmax(np.abs(x), axis=1)
    return np.take_along_axis(x, at[:, None], axis=1)


def _levels(scaled: np.ndarray, top: int) -> np.ndarray:
    """ggml's ``(int)(x + 0.5)``-style truncation of already offset values, capped at ``top``."""
    return np.clip(np.trunc(scaled), 0, top).astype(np.uint8)


def _encode_symmetric(x: np.ndarray, half_range: int) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0/Q5_0: the peak maps to -half_range; returns (d, levels in 0..2*half_range-1)."""
    d = _signed_peak(x) / np.float32(-half_range)
    q = _levels(x * _reciprocal(d) + np.float32(half_range + 0.5), 2 * half_range - 1)
    return d, q


def _encode_affine(x: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q4_1/Q5_1: [min, max] spread over 0..top; returns (d, min, levels)."""
    lo = x.min(axis=1, keepdims=True)
    hi = x.max(axis=1, keepdims=True)
    d = (hi - lo) / np.float32(top)
    q = _levels((x - lo) * _reciprocal(d) + np.float32(0.5), top)
    return d, lo, q


def _encode_q4_0(x: np.ndarray) -> np.ndarray:
    d, q = _encode_symmetric(x, 8)
    return np.concatenate([write_f16(d), _pack_nibbles(q)], axis=1)


def _encode_q4_1(x: np.ndarray) -> np.ndarray:
    d, lo, q = _encode_affine(x, 15)
    return np.concatenate([write_f16(d), write_f16(lo), _pack_nibbles(q)], axis=1)


def _encode_q5_0(x: np.ndarray) -> np.ndarray:
    d, q = _encode_symmetric(x, 16)
    return np.concatenate([write_f16(d), _pack_fifth_bits(q), _pack_nibbles(q)], axis=1)


def _encode_q5_1(x: np.ndarray) -> np.ndarray:
    d, lo, q = _encode_affine(x, 31)
    parts = [write_f16(d), write_f16(lo), _pack_fifth_bits(q), _pack_nibbles(q)]
    return np.concatenate(parts, axis=1)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C's roundf, exactly: v + 0.5 would round twice in float32 near x.49999997."""
    a = np.abs(v)
    whole = np.floor(a)
    whole += (a - whole) >= np.float32(0.5)
    return np.copysign(whole, v)


def _encode_q8_0(x: np.ndarray) -> np.ndarray:
    d = np.abs(x).max(axis=1, keepdims=True) / np.float32(127)
    q = _round_half_away(x * _reciprocal(d)).astype(np.int8)
    return np.concatenate([write_f16(d), q.view(np.uint8)], axis=1)


_F16 = 2  # bytes of one fp16 scale or minimum

# Bytes per block as the sum of the struct's fields (see the layout table above).
Q4_0 = block_format("q4_0", 2, _BLOCK, _F16 + _HALF, _decode_q4_0, _encode_q4_0)
Q4_1 = block_format("q4_1", 3, _BLOCK, 2 * _F16 + _HALF, _decode_q4_1, _encode_q4_1)
Q5_0 = block_format("q5_0", 6, _BLOCK, _F16 + 4 + _HALF, _decode_q5_0, _encode_q5_0)
Q5_1 = block_format("q5_1", 7, _BLOCK, 2 * _F16 + 4 + _HALF, _decode_q5_1, _encode_q5_1)
Q8_0 = block_format("q8_0", 8, _BLOCK, _F16 + _BLOCK, _decode_q8_0, _encode_q8_0)
