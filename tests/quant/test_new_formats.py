"""The i-quant, ternary and 4-bit float formats (ember.quant.iquants, .ternary, .fp4) against
gguf-py: their tables equal its own, dequantize bit for bit on random bytes and on every special
scale, quantizers within stated error bounds and read back by gguf-py as we read them."""

from __future__ import annotations

import numpy as np
import pytest
from block_fields import F16_FIELDS, SPECIAL_F16
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.quant import FORMATS, grids
from ember.quant.fp4 import MXFP4, NVFP4
from ember.quant.iquants import (
    IQ1_M,
    IQ1_S,
    IQ2_S,
    IQ2_XS,
    IQ2_XXS,
    IQ3_S,
    IQ3_XXS,
    IQ4_NL,
    IQ4_XS,
)
from ember.quant.legacy import Q4_0
from ember.quant.ternary import TQ1_0, TQ2_0

NEW = {
    fmt.name: fmt
    for fmt in (
        IQ4_NL,
        IQ4_XS,
        IQ3_XXS,
        IQ3_S,
        IQ2_XXS,
        IQ2_XS,
        IQ2_S,
        IQ1_S,
        IQ1_M,
        TQ1_0,
        TQ2_0,
        MXFP4,
        NVFP4,
    )
}
NAMES = list(NEW)
QUANTIZABLE = ["iq4_nl", "iq4_xs", "tq1_0", "tq2_0", "mxfp4"]
DECODE_ONLY = [name for name in NAMES if name not in QUANTIZABLE]

# Byte offset of each block's fp16 scale (IQ1_M spreads its fp16 over four nibbles: see put_d).
F16_AT = {
    name: F16_FIELDS[name][0] for name in NAMES if F16_FIELDS[name][:1] not in ([], ["iq1_m"])
}


def gguf_type(name: str) -> GGMLQuantizationType:
    return GGMLQuantizationType[name.upper()]


def gguf_dequantize(blocks: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return gq.dequantize(blocks, gguf_type(name))


def assert_same_floats(ours: np.ndarray, ref: np.ndarray) -> None:
    """Identical float32 bits, except that a NaN only has to meet a NaN."""
    assert ours.dtype == ref.dtype == np.float32
    assert ours.shape == ref.shape
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours.view(np.uint32)[~nan], ref.view(np.uint32)[~nan])


def put_d(name: str, blocks: np.ndarray, bits: np.ndarray) -> None:
    """Write fp16 bit patterns ``bits`` ``(n,)`` as each block's fp16 scale ``d``."""
    bits = np.asarray(bits, np.uint16)
    if name == "iq1_m":  # d's nibble k is the top nibble of the k-th u16 of the scales
        words = blocks[:, 48:56].copy().view("<u2")
        nibbles = (bits[:, None] >> np.array([0, 4, 8, 12], np.uint16)) & 0xF
        blocks[:, 48:56] = ((words & 0x0FFF) | (nibbles << 12)).view(np.uint8)
    else:
        at = F16_AT[name]
        blocks[:, at : at + 2] = bits.astype("<u2")[:, None].view(np.uint8)


def random_blocks(name: str, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, NEW[name].block_bytes), np.uint8)


def with_sane_scales(name: str, blocks: np.ndarray, seed: int) -> np.ndarray:
    """``blocks`` with finite, moderate scales: fp16 in +-[2**-10, 4], E8M0 bytes 100-154
    (2**-27..2**27), UE4M3 bytes other than 0x7F with bit 7 clear."""
    rng = np.random.default_rng(seed)
    n = blocks.shape[0]
    blocks = blocks.copy()
    if name == "mxfp4":
        blocks[:, 0] = rng.integers(100, 155, n)
    elif name == "nvfp4":
        blocks[:, 0:4] = rng.integers(0, 0x7F, (n, 4))
    else:
        d = rng.uniform(2**-10, 4, n) * rng.choice([-1, 1], n)
        put_d(name, blocks, d.astype(np.float16).view(np.uint16))
    return blocks


# ---- registry and tables --------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_formats_are_gguf_types(name):
    fmt = NEW[name]
    ggml = GGMLQuantizationType(fmt.ggml_type)
    assert ggml.name.lower() == name
    assert GGML_QUANT_SIZES[ggml] == (fmt.block_elements, fmt.block_bytes)


@pytest.mark.parametrize("name", NAMES)
def test_registered(name):
    assert FORMATS[name] is NEW[name]


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
def test_dequantize_sane_scales_bit_exact(name):
    fmt = NEW[name]
    blocks = with_sane_scales(name, random_blocks(name, 60, seed=1), seed=2)
    data = blocks.reshape(3, 5, 4 * fmt.block_bytes)
    ours = fmt.dequantize(data)
    assert ours.shape == (3, 5, 4 * fmt.block_elements)
    assert np.isfinite(ours).all()
    assert_same_floats(ours, gguf_dequantize(data, name))


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_random_bytes_bit_exact(name):
    blocks = random_blocks(name, 500, seed=3)
    assert_same_floats(NEW[name].dequantize(blocks), gguf_dequantize(blocks, name))


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("mxfp4", "nvfp4")])
def test_dequantize_special_f16_scales_bit_exact(name):
    """Every special fp16 in the scale, each over four random payloads."""
    bits = np.repeat(SPECIAL_F16, 4)
    blocks = random_blocks(name, len(bits), seed=4)
    put_d(name, blocks, bits)
    assert_same_floats(NEW[name].dequantize(blocks), gguf_dequantize(blocks, name))


def test_mxfp4_every_e8m0_bit_exact():
    """All 256 scale bytes (0: 2**-127, halved a float32 subnormal; 255: 2**128, not NaN as
    in the OCP spec), with random codes and with the largest ones (±12: inf at the top)."""
    blocks = np.concatenate(
        [random_blocks("mxfp4", 256, seed=5), np.full((256, 17), 0x77, np.uint8)]
    )
    blocks[:, 0] = np.tile(np.arange(256), 2)
    ours = MXFP4.dequantize(blocks)
    assert_same_floats(ours, gguf_dequantize(blocks, "mxfp4"))
    assert np.isinf(ours[255 + 256]).all() and not np.isnan(ours).any()


def test_nvfp4_every_ue4m3_bit_exact():
    """Every byte in each of the four sub-block scales: 0x00 and 0x7F decode to 0, 0x80 (-0)
    to 0, subnormals 0x01-0x07, 0x7E the largest finite, bit 7 ignored (0xFF reads as 480)."""
    blocks = np.concatenate(
        [random_blocks("nvfp4", 256, seed=6), np.full((256, 36), 0xFF, np.uint8)]
    )
    shifts = np.arange(4) * 67  # a different byte in each position of a block
    blocks[:, 0:4] = np.tile((np.arange(256)[:, None] + shifts) % 256, (2, 1))
    ours = NVFP4.dequantize(blocks)
    assert_same_floats(ours, gguf_dequantize(blocks, "nvfp4"))
    assert np.isfinite(ours).all()


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_extreme_payloads_bit_exact(name):
    """All-zero and all-0xFF bytes, and both with the scale forced to 65504 and to 1."""
    fmt = NEW[name]
    blocks = np.zeros((6, fmt.block_bytes), np.uint8)
    blocks[1::2] = 0xFF
    if name not in ("mxfp4", "nvfp4"):
        put_d(name, blocks[2:4], [0x7BFF, 0x7BFF])
        put_d(name, blocks[4:6], [0x3C00, 0x3C00])
    assert_same_floats(fmt.dequantize(blocks), gguf_dequantize(blocks, name))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_dequantize_property(name, data):
    fmt = NEW[name]
    n = data.draw(st.integers(1, 3))
    raw = data.draw(st.binary(min_size=n * fmt.block_bytes, max_size=n * fmt.block_bytes))
    blocks = np.frombuffer(raw, np.uint8).reshape(1, n * fmt.block_bytes)
    assert_same_floats(fmt.dequantize(blocks), gguf_dequantize(blocks, name))


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_shapes_and_views(name):
    fmt = NEW[name]
    one = random_blocks(name, 1, seed=7)[0]
    assert fmt.dequantize(one).shape == (fmt.block_elements,)
    assert fmt.dequantize(np.zeros((0, fmt.block_bytes), np.uint8)).shape == (
        0,
        fmt.block_elements,
    )
    wide = random_blocks(name, 6, seed=8).reshape(3, 2 * fmt.block_bytes)
    view = wide[:, fmt.block_bytes :]  # strided rows: the u16/u32 views must not assume layout
    assert_same_floats(fmt.dequantize(view), fmt.dequantize(view.copy()))


# ---- quantize -------------------------------------------------------------------------------


def normal(rows: int = 32, width: int = 1024, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, width)).astype(np.float32)


def round_trip(fmt, x: np.ndarray) -> np.ndarray:
    return fmt.dequantize(fmt.quantize(x))


def rmse(fmt, x: np.ndarray) -> float:
    return float(np.sqrt(np.mean((round_trip(fmt, x) - x) ** 2)))


@pytest.mark.parametrize("name", QUANTIZABLE)
@pytest.mark.parametrize("scale", [1.0, 1e-3, 300.0])
def test_quantized_bytes_read_back_by_gguf(name, scale):
    """Our packing is GGUF's: gguf-py reads our bytes to the values we read."""
    fmt = NEW[name]
    blocks = fmt.quantize(normal(4, 512, seed=5) * np.float32(scale))
    assert blocks.dtype == np.uint8 and blocks.shape == (
        4,
        512 // fmt.block_elements * fmt.block_bytes,
    )
    assert_same_floats(fmt.dequantize(blocks), gguf_dequantize(blocks, name))


SCALES = [1.0, 1e-6, 1e-3, 1e3, 1e-30, 1e30]


@pytest.mark.parametrize(
    ("name", "scale"),
    [("mxfp4", s) for s in SCALES] + [(n, s) for n in ("tq1_0", "tq2_0") for s in SCALES[:4]],
)
def test_reference_quantizers_match_gguf_bytes(name, scale):
    """TQ1_0, TQ2_0 and MXFP4 quantize as ggml's reference quantizers (gguf-py ports them),
    byte for byte; TQ only within fp16's range (beyond it gguf stores an inf scale, we 65504)."""
    x = normal(8, 512, seed=6) * np.float32(scale)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(NEW[name].quantize(x), gq.quantize(x, gguf_type(name)))


# RMSE on standard normal data, measured 0.075 / 0.076 / 0.81 / 0.81 / 0.115 (seed 11).
# IQ4_NL/IQ4_XS: 16 levels over about +-2.5 sigma per 32 values are 0.3 sigma apart on average,
#   uniform rounding error of that spacing is ~0.3/sqrt(12) ~ 0.09, and the levels bunch up
#   where normal data is dense: below 0.08 (and IQ4_NL no worse than Q4_0, same 4.5 bits).
# TQ: d = max|x| (~3 sigma over 256 values) sends everything under 1.5 sigma to 0: that alone is
#   ~0.8 sigma; ternary is meant for ternary-trained weights (exact below): below 0.85.
# MXFP4: E2M1 keeps one mantissa bit, steps of a quarter to a third of the value near the top
#   and a power-of-two scale that wastes up to half the range: below 0.125.
RMSE_BOUND = {"iq4_nl": 0.08, "iq4_xs": 0.08, "tq1_0": 0.85, "tq2_0": 0.85, "mxfp4": 0.125}


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_rmse_on_normal_data(name):
    err = rmse(NEW[name], normal())
    assert err < RMSE_BOUND[name], err


def test_iq4_no_worse_than_q4_0():
    x = normal()
    assert rmse(IQ4_NL, x) <= rmse(Q4_0, x)
    assert rmse(IQ4_XS, x) <= 1.05 * rmse(IQ4_NL, x)  # 6-bit sub-block scales cost little


def block_peaks(x: np.ndarray, size: int) -> np.ndarray:
    blocks = x.reshape(-1, size)
    return np.repeat(np.abs(blocks).max(axis=1), size).reshape(x.shape)


@pytest.mark.parametrize("name", ["tq1_0", "tq2_0"])
def test_ternary_worst_case_and_exact(name):
    """|error| <= max|x| * (1/2 + 2**-11) per block: a value rounds to the nearer of 0 and
    +-d = fp16(max|x|); ternary data (any fp16-representable scale) comes back exactly."""
    fmt = NEW[name]
    x = normal(8, 1024)
    bound = block_peaks(x, 256) * np.float32(0.5 + 2.0**-11)
    assert (np.abs(round_trip(fmt, x) - x) <= bound).all()
    rng = np.random.default_rng(3)
    t = rng.integers(-1, 2, (8, 1024)).astype(np.float32)
    t[:, ::256] = 1  # every block reaches its scale
    for d in (np.float32(0.0137), np.float32(2.0**-20), np.float32(60000)):
        exact = t * np.float32(np.float16(d))
        np.testing.assert_array_equal(round_trip(fmt, exact), exact)


def test_mxfp4_worst_case_and_exact():
    """|error| <= max|x| / 4 per block: with u = 2**(floor(log2 max|x|) - 2) the codes reach
    6u > max|x| * 3/4 and are at most 2u apart below 6u (half a gap: u <= max|x| / 4)."""
    x = normal(8, 1024)
    assert (np.abs(round_trip(MXFP4, x) - x) <= block_peaks(x, 32) / 4).all()
    e2m1 = np.float32([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    values = np.random.default_rng(4).choice(np.concatenate([e2m1, -e2m1]), (8, 1024))
    values[:, ::32] = 6  # the block's largest code
    exact = (values * np.float32(2.0**-5)).astype(np.float32)
    np.testing.assert_array_equal(round_trip(MXFP4, exact), exact)


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_quantize_special_blocks(name):
    """Zeros stay zeros; blocks within fp16's comfortable range stay within a fraction of
    their spread; beyond it (tiny, huge) the result is still finite."""
    fmt = NEW[name]
    rng = np.random.default_rng(9)
    rows = {
        "zero": np.zeros(256),
        "constant": np.full(256, 0.75),
        "negative": -np.abs(rng.standard_normal(256)),
        "positive": np.abs(rng.standard_normal(256)) + 3,
        "small": rng.standard_normal(256) * 1e-3,
        "large": rng.standard_normal(256) * 1e3,
        "outlier": np.where(np.arange(256) == 17, 50.0, rng.standard_normal(256)),
        "half_zero": np.where(np.arange(256) < 128, 0.0, rng.standard_normal(256)),
        "tiny": rng.standard_normal(256) * 1e-9,
        "huge": rng.standard_normal(256) * 1e9,
    }
    x = np.stack(list(rows.values())).astype(np.float32)
    back = round_trip(fmt, x)
    assert np.isfinite(back).all()
    np.testing.assert_array_equal(back[0], 0)
    # Per block: IQ4 within 0.2 of its peak (half its widest level gap, 12 of 127, plus the
    # scale search's slack), TQ within 1/2 and MXFP4 within 1/4 (the bounds above).
    worst = {"iq4_nl": 0.2, "iq4_xs": 0.2, "tq1_0": 0.5005, "tq2_0": 0.5005, "mxfp4": 0.25}[name]
    for k, key in enumerate(list(rows)[:8]):
        peaks = block_peaks(x[k], fmt.block_elements)
        assert (np.abs(back[k] - x[k]) <= worst * peaks + 1e-7).all(), key


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_quantize_shapes_and_dtypes(name):
    fmt = NEW[name]
    x = normal(6, fmt.block_elements).reshape(2, 3, fmt.block_elements)
    q = fmt.quantize(x)
    assert q.shape == (2, 3, fmt.block_bytes) and q.dtype == np.uint8
    np.testing.assert_array_equal(fmt.quantize(x.astype(np.float64)), q)
    assert fmt.quantize(np.zeros((0, fmt.block_elements), np.float32)).shape == (0, fmt.block_bytes)
    with pytest.raises(TypeError, match=f"{name}.*float"):
        fmt.quantize(np.zeros(fmt.block_elements, np.int32))


@pytest.mark.parametrize("name", DECODE_ONLY)
def test_decode_only_formats_say_how_to_quantize(name):
    fmt = NEW[name]
    with pytest.raises(NotImplementedError, match=rf"{name.upper()}.*llama-quantize"):
        fmt.quantize(np.zeros((2, fmt.block_elements), np.float32))
