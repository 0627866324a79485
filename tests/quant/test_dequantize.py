"""Every registry format's reference decoder (`ember.quant.FORMATS[name].dequantize`) against
gguf-py, bit for bit: on random bytes, on every special scale, on extreme payloads; and the
decode tables of `ember.quant.grids` equal gguf-py's own."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from block_fields import F16_FIELDS, SPECIAL_F16, set_f16
from conftest import assert_same_bits
from gguf import GGMLQuantizationType
from gguf import quants as gq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.quant import FORMATS, GGUF_FORMATS, grids

NAMES = list(GGUF_FORMATS)
WITH_F16 = [name for name in NAMES if F16_FIELDS[name]]  # MXFP4, NVFP4: byte scales, below


def gguf_dequantize(blocks: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return gq.dequantize(blocks, GGMLQuantizationType[name.upper()])


def random_blocks(name: str, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, FORMATS[name].block_bytes), np.uint8)


def with_sane_scales(name: str, blocks: np.ndarray, seed: int) -> np.ndarray:
    """``blocks`` with finite, moderate scales: every fp16 field in +-[2**-10, 4], E8M0 bytes
    100-154 (2**-27..2**27), UE4M3 bytes other than 0x7F with bit 7 clear."""
    rng = np.random.default_rng(seed)
    n = blocks.shape[0]
    blocks = blocks.copy()
    if name == "mxfp4":
        blocks[:, 0] = rng.integers(100, 155, n)
    elif name == "nvfp4":
        blocks[:, 0:4] = rng.integers(0, 0x7F, (n, 4))
    for at in F16_FIELDS[name]:
        d = rng.uniform(2**-10, 4, n) * rng.choice([-1, 1], n)
        set_f16(blocks, at, d.astype(np.float16).view(np.uint16))
    return blocks


def test_every_format_has_its_scale_fields_listed():
    assert set(F16_FIELDS) == set(GGUF_FORMATS)


# ---- decode tables --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("IQ2XXS_GRID", gq.IQ2_XXS),
        ("IQ2XS_GRID", gq.IQ2_XS),
        ("IQ2S_GRID", gq.IQ2_S),
        ("IQ3XXS_GRID", gq.IQ3_XXS),
        ("IQ3S_GRID", gq.IQ3_S),
        ("IQ1S_GRID", gq.IQ1_S),
        ("IQ1S_GRID", gq.IQ1_M),
    ],
)
def test_grids_equal_gguf(ours, theirs):
    theirs.init_grid()
    table = getattr(grids, ours)
    assert table.dtype == np.int8 and not table.flags.writeable
    np.testing.assert_array_equal(table.astype(np.float32), theirs.grid.reshape(theirs.grid_shape))


def test_small_tables_equal_gguf():
    np.testing.assert_array_equal(grids.KSIGNS, np.frombuffer(gq.IQ2_XXS.ksigns, np.uint8))
    np.testing.assert_array_equal(grids.IQ4NL_VALUES, gq.IQ4_NL.kvalues)
    np.testing.assert_array_equal(grids.FP4_E2M1_X2, gq.MXFP4.kvalues)
    np.testing.assert_array_equal(grids.FP4_E2M1_X2, gq.NVFP4.kvalues)
    # ggml's "-0" code is an integer 0; a true E2M1 decode would give -0.0 and other bits.
    assert grids.FP4_E2M1_X2[8] == 0


# ---- dequantize -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_sane_scales_bit_exact(name):
    fmt = FORMATS[name]
    blocks = with_sane_scales(name, random_blocks(name, 60, seed=1), seed=2)
    data = blocks.reshape(3, 5, 4 * fmt.block_bytes)
    ours = fmt.dequantize(data)
    assert ours.shape == (3, 5, 4 * fmt.block_elements)
    assert np.isfinite(ours).all()
    assert_same_bits(ours, gguf_dequantize(data, name), nan_meets_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_random_bytes_bit_exact(name):
    """Fully random bytes: NaN and inf scales included."""
    blocks = random_blocks(name, 500, seed=3)
    assert_same_bits(
        FORMATS[name].dequantize(blocks), gguf_dequantize(blocks, name), nan_meets_nan=True
    )


@pytest.mark.parametrize("name", WITH_F16)
def test_special_f16_scales_bit_exact(name):
    """Every special fp16 in every fp16 field, against every other in the next field (one-field
    formats: each special value over twelve random payloads)."""
    fields = F16_FIELDS[name]
    combos = np.array(list(itertools.product(SPECIAL_F16, repeat=2)), np.uint16)
    blocks = random_blocks(name, len(combos), seed=4)
    for k, at in enumerate(fields):
        set_f16(blocks, at, combos[:, k])
    assert_same_bits(
        FORMATS[name].dequantize(blocks), gguf_dequantize(blocks, name), nan_meets_nan=True
    )


def test_mxfp4_every_e8m0_bit_exact():
    """All 256 scale bytes (0: 2**-127, halved a float32 subnormal; 255: 2**128, not NaN as
    in the OCP spec), with random codes and with the largest ones (±12: inf at the top)."""
    blocks = np.concatenate(
        [random_blocks("mxfp4", 256, seed=5), np.full((256, 17), 0x77, np.uint8)]
    )
    blocks[:, 0] = np.tile(np.arange(256), 2)
    ours = FORMATS["mxfp4"].dequantize(blocks)
    assert_same_bits(ours, gguf_dequantize(blocks, "mxfp4"), nan_meets_nan=True)
    assert np.isinf(ours[255 + 256]).all() and not np.isnan(ours).any()


def test_nvfp4_every_ue4m3_bit_exact():
    """Every byte in each of the four sub-block scales: 0x00 and 0x7F decode to 0, 0x80 (-0)
    to 0, subnormals 0x01-0x07, 0x7E the largest finite, bit 7 ignored (0xFF reads as 480)."""
    blocks = np.concatenate(
        [random_blocks("nvfp4", 256, seed=6), np.full((256, 36), 0xFF, np.uint8)]
    )
    shifts = np.arange(4) * 67  # a different byte in each position of a block
    blocks[:, 0:4] = np.tile((np.arange(256)[:, None] + shifts) % 256, (2, 1))
    ours = FORMATS["nvfp4"].dequantize(blocks)
    assert_same_bits(ours, gguf_dequantize(blocks, "nvfp4"), nan_meets_nan=True)
    assert np.isfinite(ours).all()


@pytest.mark.parametrize("name", NAMES)
def test_extreme_payloads_bit_exact(name):
    """All-zero and all-0xFF bytes (the lowest and highest level of every field), and both
    with every fp16 field 65504 and 1."""
    fmt = FORMATS[name]
    blocks = np.zeros((6, fmt.block_bytes), np.uint8)
    blocks[1::2] = 0xFF
    for at in F16_FIELDS[name]:
        set_f16(blocks[2:], at, [0x7BFF, 0x7BFF, 0x3C00, 0x3C00])
    assert_same_bits(fmt.dequantize(blocks), gguf_dequantize(blocks, name), nan_meets_nan=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_dequantize_property(name, data):
    fmt = FORMATS[name]
    n = data.draw(st.integers(1, 3))
    raw = data.draw(st.binary(min_size=n * fmt.block_bytes, max_size=n * fmt.block_bytes))
    blocks = np.frombuffer(raw, np.uint8).reshape(1, n * fmt.block_bytes)
    assert_same_bits(fmt.dequantize(blocks), gguf_dequantize(blocks, name), nan_meets_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_views(name):
    fmt = FORMATS[name]
    one = random_blocks(name, 1, seed=7)[0]
    assert fmt.dequantize(one).shape == (fmt.block_elements,)
    empty = np.zeros((0, 2 * fmt.block_bytes), np.uint8)
    assert fmt.dequantize(empty).shape == (0, 2 * fmt.block_elements)
    wide = random_blocks(name, 6, seed=8).reshape(3, 2 * fmt.block_bytes)
    view = wide[:, fmt.block_bytes :]  # strided rows: the u16/u32 views must not assume layout
    assert_same_bits(fmt.dequantize(view), fmt.dequantize(view.copy()), nan_meets_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_errors(name):
    fmt = FORMATS[name]
    with pytest.raises(TypeError, match=f"{name}.*uint8"):
        fmt.dequantize(np.zeros((2, fmt.block_bytes), np.int8))
    with pytest.raises(ValueError, match=rf"{name}.*multiple of {fmt.block_bytes}"):
        fmt.dequantize(np.zeros((2, fmt.block_bytes + 1), np.uint8))
    with pytest.raises(ValueError, match="scalar"):
        fmt.dequantize(np.uint8(3))
