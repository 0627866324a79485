"""Row decoders of the FP4 formats (`ember.quant.fp4`): MXFP4, NVFP4."""

from __future__ import annotations

import numpy as np

from ember.quant.grids import E8M0_HALF, FP4_E2M1_X2, UE4M3_HALF

from ..cache import jit
from .nibbles import nibbles8, nibbles16

__all__ = ["ROW_DECODERS"]


# ---- MXFP4, NVFP4: E2M1 values times a power-of-two or FP8 scale ------------------------------
# ggml's doubled E2M1 integers times half the block scale (layouts and the special codes:
# ember.quant.fp4); code 8 is the integer 0, so it decodes to +0 times the scale.

_FP4_I8 = np.array(FP4_E2M1_X2, np.int8)


@jit()
def _row_mxfp4(src, dst, f16):
    levels, scales = _FP4_I8, E8M0_HALF
    for b in range(dst.size // 32):
        o = b * 17
        nibbles16(levels, src, o + 1, dst, b * 32, scales[src[o]])


@jit()
def _row_nvfp4(src, dst, f16):
    levels, scales = _FP4_I8, UE4M3_HALF
    for b in range(dst.size // 64):
        o, e = b * 36, b * 64
        for s in range(4):
            nibbles8(levels, src, o + 4 + 8 * s, dst, e + 16 * s, scales[src[o + s]])


ROW_DECODERS = {"mxfp4": _row_mxfp4, "nvfp4": _row_nvfp4}
