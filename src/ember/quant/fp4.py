"""GGUF's 4-bit float formats: E2M1 values (sign, two exponent bits, one mantissa bit) times a
power-of-two (MXFP4) or FP8 (NVFP4) block scale.

Layouts (bytes), as ggml's ``block_mxfp4`` / ``block_nvfp4`` structs store them:

======  ======  =====  ================================================================
format  values  bytes  layout
======  ======  =====  ================================================================
MXFP4   32      17     e (E8M0), qs[16]: low nibbles values 0-15, high nibbles 16-31
NVFP4   64      36     d[4] (UE4M3, one per 16 values), qs[32]: values 16s..16s+15 in
                       qs[8s:8s+8], low nibbles first 8, high nibbles last 8
======  ======  =====  ================================================================

ggml stores E2M1 doubled, as the integers ``FP4_E2M1_X2`` (0, 1, 2, 3, 4, 6, 8, 12 and their
negatives), and halves every scale to compensate; the products are exact, so these decoders are
bit-exact against ``gguf.quants.dequantize``. Two consequences worth knowing:

* Code 8 ("-0") decodes to +0 times the scale, not to -0.
* The scales follow ggml, not the OCP/NVIDIA specs, at their special codes: E8M0 ``e`` is
  ``2**(e - 127)`` for every byte (255 is 2**128, halved 2**127, not NaN); UE4M3 ignores bit
  7 (no sign), reads ``e >> 3 & 15`` as exponent (bias 7, subnormal at 0) and ``e & 7`` as
  mantissa, and both 0x00 and 0x7F (E4M3's NaN) decode to 0 (0xFF reads as 480).

MXFP4's quantizer is the OCP reference one, as gguf-py's: ``e = floor(log2 max |x|) - 2 + 127``
(log2 in float32), then each value's nearest code, ties to the smaller magnitude. The bytes equal
gguf-py's for finite blocks whose largest magnitude is at least ``2**-125``; below it, gguf-py's
exponent wraps past 0 to 254 or 255 and the block decodes to zeros, where ember clips it to 0,
the smallest scale, and keeps the values it can.
NVFP4 is decode only (no NVFP4 quantizer here).

>>> import numpy as np
>>> x = np.float32([0, 0.5, 1, 1.5, 2, 3, 4, 6] * 4)
>>> MXFP4.dequantize(MXFP4.quantize(x)).tolist() == x.tolist()
True
"""

from __future__ import annotations

import numpy as np

from .format import block_format
from .grids import E8M0_HALF, FP4_E2M1_X2, UE4M3_HALF

__all__ = ["MXFP4", "NVFP4"]

_FP4 = FP4_E2M1_X2.astype(np.float32)


def _decode_mxfp4(blocks: np.ndarray) -> np.ndarray:
    q = blocks[:, 1:17]
    return E8M0_HALF[blocks[:, :1]] * _FP4[np.concatenate([q & 0x0F, q >> 4], axis=1)]


def _decode_nvfp4(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    q = blocks[:, 4:36].reshape(n, 4, 8)
    values = _FP4[np.concatenate([q & 0x0F, q >> 4], axis=2)]  # (n, 4, 16)
    return (UE4M3_HALF[blocks[:, 0:4]][:, :, None] * values).reshape(n, 64)


_MAGNITUDE_MIDPOINTS = (_FP4[1:8] + _FP4[:7]) / np.float32(2)  # between 0, 1, 2, 3, 4, 6, 8, 12


def _encode_mxfp4(x: np.ndarray) -> np.ndarray:
    amax = np.abs(x).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(amax > 0, np.floor(np.log2(amax)) - 2 + 127, 0)
    e = np.nan_to_num(np.clip(e, 0, 254)).astype(np.uint8)  # clipped: beyond float32's range
    with np.errstate(invalid="ignore"):
        magnitude = np.searchsorted(_MAGNITUDE_MIDPOINTS, np.abs(x) / E8M0_HALF[e])
    code = (magnitude | np.where((x < 0) & (magnitude > 0), 8, 0)).astype(np.uint8)
    return np.concatenate([e, code[:, :16] | (code[:, 16:] << 4)], axis=1)


# Bytes per block as the sum of the struct's fields (see the layout table above).
MXFP4 = block_format("mxfp4", 39, 32, 1 + 32 // 2, _decode_mxfp4, _encode_mxfp4)
NVFP4 = block_format(
    "nvfp4",
    40,
    64,
    64 // 16 + 64 // 2,
    _decode_nvfp4,
    None,
    "its FP8 sub-block scales need a search ember does not have; quantize with llama.cpp's "
    "llama-quantize",
)
