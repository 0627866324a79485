"""GGUF's ternary formats: super-blocks of 256 values in {-1, 0, 1} times one fp16 scale.

Layouts (bytes, little-endian), as ggml's ``block_tq*`` structs store them:

======  =====  ======================================================================
format  bytes  layout
======  =====  ======================================================================
TQ1_0   54     qs[48] (five trits a byte), qh[4] (four trits a byte), d:f16
TQ2_0   66     qs[64] (four 2-bit fields a byte), d:f16
======  =====  ======================================================================

Value ``e`` is ``d * (t_e - 1)`` with its trit ``t_e`` in 0..2.

* TQ2_0: ``e = 128h + 32s + j`` reads bits ``2s, 2s+1`` of ``qs[32h + j]`` (as Q2_K).
* TQ1_0 packs trits in base 3 as fixed-point fractions: a byte holding trits
  ``t_0 .. t_4`` (``t_0`` the most significant) is ``ceil(256 * v / 243)`` for
  ``v = sum_p t_p * 3**(4 - p)``, and trit ``p`` comes back as
  ``((byte * 3**p mod 256) * 3) >> 8``. Values 0-159 are trit ``p = e // 32`` of
  ``qs[e % 32]``, values 160-239 trit ``p = (e - 160) // 16`` of ``qs[32 + (e - 160) % 16]``,
  values 240-255 trit ``p = (e - 240) // 4`` of ``qh[(e - 240) % 4]`` (four trits, ``t_4 = 0``).

The quantizers are ggml's reference ones, ``d = max |x|`` and ``t = round(x / d) + 1``, so
ternary data round-trips exactly and their bytes equal ``gguf.quants.quantize``'s, except that
a peak beyond fp16's range is stored as 65504 here, not as inf, and in blocks whose peak is under
about 1e-37 (``1 / d`` overflows: the legacy formats' exception) the levels differ but decode to
the same zeros, but for their sign.

>>> import numpy as np
>>> x = np.tile(np.float32([-0.5, 0, 0.5, 0.5]), 64)
>>> bool((TQ1_0.dequantize(TQ1_0.quantize(x)) == x).all())
True
"""

from __future__ import annotations

import numpy as np

from .format import block_format, read_f16, write_f16

__all__ = ["TQ1_0", "TQ2_0"]

QK_K = 256
_POW3 = np.array([1, 3, 9, 27, 81], np.uint8)
_F16_MAX = np.float32(65504)


def _trits(packed: np.ndarray, count: int) -> np.ndarray:
    """``(n, k)`` bytes -> ``(n, count * k)`` trits, trit ``p`` of byte ``j`` at ``p * k + j``."""
    shifted = packed[:, None, :] * _POW3[:count, None]  # uint8: wraps mod 256, as intended
    return ((shifted.astype(np.uint16) * 3) >> 8).reshape(packed.shape[0], -1)


def _decode_tq1_0(blocks: np.ndarray) -> np.ndarray:
    t = np.concatenate(
        [_trits(blocks[:, 0:32], 5), _trits(blocks[:, 32:48], 5), _trits(blocks[:, 48:52], 4)],
        axis=1,
    )
    return read_f16(blocks, 52) * (t.astype(np.float32) - np.float32(1))


def _decode_tq2_0(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    shifts = np.array([0, 2, 4, 6], np.uint8)[:, None]
    t = ((blocks[:, 0:64].reshape(n, 2, 1, 32) >> shifts) & 3).reshape(n, QK_K)
    return read_f16(blocks, 64) * (t.astype(np.float32) - np.float32(1))


def _ternarize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(d, t)``: ``d = max |x|`` per block and ``t = round(x / d) + 1`` (halves away from 0,
    ``x / d`` taken as ``x * (1 / d)`` as ggml does; 1 throughout a block of zeros)."""
    d = np.abs(x).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        ratio = x * np.where(d == 0, np.float32(0), np.float32(1) / d)
    t = np.where(ratio >= 0.5, 2, np.where(ratio <= -0.5, 0, 1)).astype(np.uint8)
    return np.minimum(d, _F16_MAX), t


def _pack_trits(t: np.ndarray, count: int) -> np.ndarray:
    """Inverse of _trits: ``(n, count, k)`` trits -> ``(n, k)`` bytes."""
    weights = (3 ** np.arange(4, 4 - count, -1)).astype(np.uint16)[:, None]
    v = (t.astype(np.uint16) * weights).sum(axis=1)
    return ((v * 256 + 242) // 243).astype(np.uint8)


def _encode_tq1_0(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    d, t = _ternarize(x)
    parts = [
        _pack_trits(t[:, 0:160].reshape(n, 5, 32), 5),
        _pack_trits(t[:, 160:240].reshape(n, 5, 16), 5),
        _pack_trits(t[:, 240:256].reshape(n, 4, 4), 4),
        write_f16(d),
    ]
    return np.concatenate(parts, axis=1)


def _encode_tq2_0(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    d, t = _ternarize(x)
    fields = t.reshape(n, 2, 4, 32) << np.array([0, 2, 4, 6], np.uint8)[:, None]
    return np.concatenate([np.bitwise_or.reduce(fields, axis=2).reshape(n, 64), write_f16(d)], 1)


_F16 = 2  # bytes of the fp16 scale
_TAIL = 16  # TQ1_0's last values, four trits to a byte in qh

# Bytes per block as the sum of the struct's fields (see the layout table above).
TQ1_0 = block_format(
    "tq1_0", 34, QK_K, (QK_K - _TAIL) // 5 + _TAIL // 4 + _F16, _decode_tq1_0, _encode_tq1_0
)
TQ2_0 = block_format("tq2_0", 35, QK_K, QK_K // 4 + _F16, _decode_tq2_0, _encode_tq2_0)
