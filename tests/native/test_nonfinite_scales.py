"""Blocks whose scales are NaN or infinite decode to the bits ``gguf.quants.dequantize`` gives,
NaN payloads included, on every format's compiled kernel (one thread and several)."""

from __future__ import annotations

import itertools

import gguf
import numpy as np
import pytest
from block_fields import F16_FIELDS

from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
from ember.engine.backends.native.kernels.out_of_range import ERROR
from ember.quant import FORMATS, GGUF_FORMATS

NONFINITE_F16 = [
    0x7C00,  # inf
    0xFC00,  # -inf
    0x7E00,  # quiet NaN
    0xFE01,  # negative quiet NaN with a payload
    0x7C01,  # signalling NaN
    0xFD55,  # negative signalling NaN with a payload
    0x3C00,  # 1, beside a NaN or infinite partner field
]

BYTE_SCALES = {"mxfp4": [0], "nvfp4": [0, 1, 2, 3]}
"""Byte offsets of the one-byte scales (E8M0, UE4M3). ggml decodes all 256 values of both to
finite scales; every value is checked all the same."""


def _set_f16(blocks: np.ndarray, at: int | str, bits: np.ndarray) -> None:
    """Write fp16 bit patterns at byte ``at`` of each block (IQ1_M: into the top nibbles of its
    four little-endian scale words at bytes 48-55)."""
    if at == "iq1_m":
        for k in range(4):
            top = ((bits >> (4 * k)) & 15).astype(np.uint8) << 4
            blocks[:, 49 + 2 * k] = (blocks[:, 49 + 2 * k] & 0x0F) | top
        return
    blocks[:, at : at + 2] = np.ascontiguousarray(bits, "<u2").view(np.uint8).reshape(-1, 2)


def nonfinite_blocks(name: str) -> np.ndarray:
    """Random blocks with every combination of `NONFINITE_F16` across the fp16 fields (every
    byte value at each byte scale), each combination four times over different bytes."""
    fmt = FORMATS[name]
    rng = np.random.default_rng(11)
    fields = F16_FIELDS[name]
    if fields:
        combos = np.array(list(itertools.product(NONFINITE_F16, repeat=len(fields))), np.uint16)
        combos = np.repeat(combos, 4, axis=0)
        blocks = rng.integers(0, 256, (len(combos), fmt.block_bytes), dtype=np.uint8)
        for i, at in enumerate(fields):
            _set_f16(blocks, at, combos[:, i])
        return blocks
    blocks = rng.integers(0, 256, (4 * 256, fmt.block_bytes), dtype=np.uint8)
    for i, at in enumerate(BYTE_SCALES[name]):
        blocks[:, at] = (np.arange(len(blocks)) + 67 * i) % 256
    return blocks


def test_every_format_has_its_scale_fields_listed():
    assert set(F16_FIELDS) == set(GGUF_FORMATS)
    assert {name for name, fields in F16_FIELDS.items() if not fields} == set(BYTE_SCALES)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("name", list(GGUF_FORMATS))
def test_nonfinite_scales_match_gguf_bit_for_bit(name, parallel):
    fmt = FORMATS[name]
    blocks = nonfinite_blocks(name)
    with np.errstate(invalid="ignore", over="ignore"):
        want = gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType[name.upper()])
    want = want.reshape(len(blocks), fmt.block_elements)
    assert np.isnan(want).any() or name in BYTE_SCALES
    ids = np.arange(len(blocks))
    out = np.empty_like(want)
    assert gather_dequantize(name, blocks, ids, 0, ERROR, out, parallel) == -1
    differ = np.flatnonzero(out.view(np.uint32) != want.view(np.uint32))
    assert differ.size == 0, (
        f"{differ.size} values differ, first at {differ[0]}: "
        f"{out.reshape(-1).view(np.uint32)[differ[0]]:#010x} != "
        f"{want.reshape(-1).view(np.uint32)[differ[0]]:#010x}"
    )
