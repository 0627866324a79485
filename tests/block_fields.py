"""Test data about block layouts shared by the format, kernel and XLA tests: where each format
keeps its fp16 scales, how to write them, and the fp16 values worth putting there."""

import numpy as np

F16_FIELDS = {
    "q4_0": [0],
    "q4_1": [0, 2],
    "q5_0": [0],
    "q5_1": [0, 2],
    "q8_0": [0],
    "q2_k": [80, 82],
    "q3_k": [108],
    "q4_k": [0, 2],
    "q5_k": [0, 2],
    "q6_k": [208],
    "iq4_nl": [0],
    "iq4_xs": [0],
    "tq2_0": [64],
    "tq1_0": [52],
    "iq3_s": [0],
    "iq3_xxs": [0],
    "iq2_xxs": [0],
    "iq2_xs": [0],
    "iq2_s": [0],
    "iq1_s": [0],
    "iq1_m": ["iq1_m"],  # d's 16 bits are the top nibbles of the four scale words at 48-55
    "mxfp4": [],
    "nvfp4": [],
}
"""Byte offsets of each block's fp16 fields (scales and minimums); MXFP4 and NVFP4 scale by a
byte instead."""


def set_f16(blocks, at, bits) -> None:
    """Write the fp16 bit patterns ``bits`` ``(n,)`` into field ``at`` (an `F16_FIELDS` entry) of
    each block of ``blocks`` ``(n, block_bytes)``; IQ1_M's ``"iq1_m"``: the top nibbles of its
    four little-endian scale words."""
    bits = np.asarray(bits, np.uint16)
    if at == "iq1_m":
        for k in range(4):
            top = ((bits >> (4 * k)) & 15).astype(np.uint8) << 4
            blocks[:, 49 + 2 * k] = (blocks[:, 49 + 2 * k] & 0x0F) | top
        return
    blocks[:, at : at + 2] = np.ascontiguousarray(bits, "<u2").view(np.uint8).reshape(-1, 2)


SPECIAL_F16 = [
    0x0000,  # +0
    0x8000,  # -0
    0x0001,  # smallest subnormal
    0x83FF,  # largest subnormal, negative
    0x0400,  # smallest normal
    0x3C00,  # 1
    0x7BFF,  # 65504
    0xFBFF,  # -65504
    0x7C00,  # inf
    0xFC00,  # -inf
    0x7E00,  # quiet NaN
    0x7C01,  # signalling NaN
]
"""fp16 bit patterns for the scale fields' edge cases."""
