"""ember.quant against gguf-py: dequantize bit for bit, legacy quantize byte for byte, K-quant
quantizers by their error."""

from __future__ import annotations

import numpy as np
import pytest
from block_fields import F16_FIELDS, SPECIAL_F16
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.quant import FORMATS, QuantFormat, get_format, row_bytes

# The legacy and K-quant families (the other registry formats: tests/quant/test_new_formats.py).
LEGACY = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0"]
KQUANTS = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"]
NAMES = LEGACY + KQUANTS


def gguf_type(name: str) -> GGMLQuantizationType:
    return GGMLQuantizationType[name.upper()]


def assert_same_floats(ours: np.ndarray, ref: np.ndarray) -> None:
    """Identical float32 bits, except that a NaN only has to meet a NaN."""
    assert ours.dtype == ref.dtype == np.float32
    assert ours.shape == ref.shape
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours.view(np.uint32)[~nan], ref.view(np.uint32)[~nan])


def random_blocks(name: str, n_blocks: int, seed: int) -> np.ndarray:
    fmt = FORMATS[name]
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n_blocks, fmt.block_bytes), dtype=np.uint8)


# ---- registry -------------------------------------------------------------------------------


def test_registry_matches_gguf_sizes():
    from gguf.constants import GGML_QUANT_SIZES

    assert set(LEGACY + KQUANTS) <= set(FORMATS)
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, QuantFormat)
        assert fmt.name == name
        assert (fmt.block_elements, fmt.block_bytes) == GGML_QUANT_SIZES[gguf_type(name)]


def test_get_format_any_case_and_unknown():
    assert get_format("Q4_K") is FORMATS["q4_k"]
    with pytest.raises(ValueError, match=r"known: q4_0, q4_1.*q6_k"):
        get_format("q7_k")


def test_row_bytes():
    assert row_bytes(FORMATS["q4_k"], 4096) == 16 * 144
    assert row_bytes(FORMATS["q8_0"], 64) == 68
    with pytest.raises(ValueError, match=r"q4_k.*256"):
        row_bytes(FORMATS["q4_k"], 4000)


# ---- dequantize -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_random_bytes_bit_exact(name):
    fmt = FORMATS[name]
    blocks = random_blocks(name, 3 * 5 * 4, seed=len(name) + fmt.block_bytes)
    data = blocks.reshape(3, 5, 4 * fmt.block_bytes)
    with np.errstate(all="ignore"):
        ref = gguf_dequantize(data, gguf_type(name))
    ours = fmt.dequantize(data)
    assert ours.shape == (3, 5, 4 * fmt.block_elements)
    assert_same_floats(ours, ref)


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_special_scales_bit_exact(name):
    fmt = FORMATS[name]
    fields = F16_FIELDS[name]
    # Every special value in every fp16 field, against every other special value.
    combos = [(a, b) for a in SPECIAL_F16 for b in SPECIAL_F16]
    blocks = random_blocks(name, len(combos), seed=7)
    for k, (a, b) in enumerate(combos):
        for field, value in zip(fields, (a, b), strict=False):
            blocks[k, field : field + 2] = [value & 0xFF, value >> 8]
    with np.errstate(all="ignore"):
        ref = gguf_dequantize(blocks, gguf_type(name))
    assert_same_floats(fmt.dequantize(blocks), ref)


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_extreme_quants(name):
    """All-zero and all-0xFF payloads: the lowest and highest level of every field."""
    fmt = FORMATS[name]
    blocks = np.zeros((4, fmt.block_bytes), np.uint8)
    blocks[1] = 0xFF
    blocks[2:] = 0xFF
    for field in F16_FIELDS[name]:
        blocks[2:, field : field + 2] = [[0xFF, 0x7B], [0x00, 0x3C]]  # 65504, 1.0
    ref = gguf_dequantize(blocks, gguf_type(name))
    assert_same_floats(fmt.dequantize(blocks), ref)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_dequantize_property(name, data):
    fmt = FORMATS[name]
    n = data.draw(st.integers(1, 3))
    raw = data.draw(st.binary(min_size=n * fmt.block_bytes, max_size=n * fmt.block_bytes))
    blocks = np.frombuffer(raw, np.uint8).reshape(1, n * fmt.block_bytes)
    with np.errstate(all="ignore"):
        ref = gguf_dequantize(blocks, gguf_type(name))
    assert_same_floats(fmt.dequantize(blocks), ref)


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_shapes(name):
    fmt = FORMATS[name]
    one = random_blocks(name, 1, seed=1)[0]
    assert fmt.dequantize(one).shape == (fmt.block_elements,)
    assert fmt.dequantize(np.zeros((0, 2 * fmt.block_bytes), np.uint8)).shape == (
        0,
        2 * fmt.block_elements,
    )
    # A strided view (a gathered column slice) decodes like its copy.
    wide = random_blocks(name, 6, seed=2).reshape(3, 2 * fmt.block_bytes)
    view = wide[:, fmt.block_bytes :]
    assert_same_floats(fmt.dequantize(view), fmt.dequantize(view.copy()))


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_errors(name):
    fmt = FORMATS[name]
    with pytest.raises(TypeError, match=f"{name}.*uint8"):
        fmt.dequantize(np.zeros((2, fmt.block_bytes), np.int8))
    with pytest.raises(ValueError, match=rf"{name}.*multiple of {fmt.block_bytes}"):
        fmt.dequantize(np.zeros((2, fmt.block_bytes + 1), np.uint8))
    with pytest.raises(ValueError, match="scalar"):
        fmt.dequantize(np.uint8(3))


# ---- quantize -------------------------------------------------------------------------------


def legacy_inputs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((24, 64)).astype(np.float32)
    x[1] *= 1e-3
    x[2] *= 1e3
    x[3] = 0  # zero blocks: d = 0
    x[4] = 0.25  # constant blocks
    x[5] = np.round(x[5] * 4) / 4  # many ties in the rounding
    x[6] = np.abs(x[6])  # one-signed
    x[7] = -np.abs(x[7])
    x[8, :32] = x[8, 0]  # the peak repeated (argmax ties)
    x[9, 3] = 1e4  # one outlier
    x[10] = rng.uniform(-65504 * 8, 65504 * 8, 64)  # scales beyond fp16: inf d
    x[11] = rng.standard_normal(64) * 1e-12
    return x


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_quantize_matches_gguf(name):
    fmt = FORMATS[name]
    x = legacy_inputs(seed=3)
    with np.errstate(all="ignore"):
        ref = gguf_quantize(x, gguf_type(name))
        ours = fmt.quantize(x)
    assert ours.dtype == np.uint8
    assert ours.shape == (24, 2 * fmt.block_bytes)
    np.testing.assert_array_equal(ours, ref)


def magnitudes_from(values: list[float]) -> np.ndarray:
    """Finite float32 with no magnitude below 1e-20, where ggml's 1/d would overflow to inf
    (then the uint8 cast of inf or NaN is undefined, in gguf-py as in C)."""
    x = np.array(values, np.float32)
    return np.where(np.abs(x) < 1e-20, np.float32(0), x)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(LEGACY),
    values=st.lists(
        st.floats(-1e6, 1e6, width=32, allow_subnormal=False), min_size=32, max_size=32
    ),
)
def test_legacy_quantize_property(name, values):
    x = magnitudes_from(values)
    with np.errstate(all="ignore"):
        ref = gguf_quantize(x[None], gguf_type(name))
        ours = FORMATS[name].quantize(x[None])
    np.testing.assert_array_equal(ours, ref)


def rmse(name: str, x: np.ndarray) -> float:
    fmt = FORMATS[name]
    return float(np.sqrt(np.mean((fmt.dequantize(fmt.quantize(x)) - x) ** 2)))


def test_rmse_falls_as_bits_rise():
    x = np.random.default_rng(11).standard_normal((32, 1024)).astype(np.float32)
    err = {name: rmse(name, x) for name in NAMES}
    chain = [err[name] for name in KQUANTS]
    assert chain == sorted(chain, reverse=True), err
    assert err["q4_k"] <= err["q4_0"], err
    assert err["q5_k"] <= err["q5_0"], err
    assert err["q6_k"] < 0.03 and err["q2_k"] < 0.35, err


@pytest.mark.parametrize("name", KQUANTS)
def test_kquant_bytes_read_back_by_gguf(name):
    """Our packing is GGUF's: gguf-py reads our bytes to the values we read."""
    x = np.random.default_rng(5).standard_normal((4, 512)).astype(np.float32)
    blocks = FORMATS[name].quantize(x)
    assert blocks.shape == (4, 2 * FORMATS[name].block_bytes)
    assert_same_floats(FORMATS[name].dequantize(blocks), gguf_dequantize(blocks, gguf_type(name)))


KQUANT_WORST = {"q2_k": 0.5, "q3_k": 0.3, "q4_k": 0.12, "q5_k": 0.06, "q6_k": 0.03}


@pytest.mark.parametrize("name", KQUANTS)
def test_kquant_special_blocks(name):
    fmt = FORMATS[name]
    rng = np.random.default_rng(9)
    rows = {
        "zero": np.zeros(256),
        "constant": np.full(256, 0.75),
        "negative": -np.abs(rng.standard_normal(256)),
        "positive": np.abs(rng.standard_normal(256)) + 3,
        "tiny": rng.standard_normal(256) * 1e-6,
        "large": rng.standard_normal(256) * 1e3,
        "outlier": np.where(np.arange(256) == 17, 50.0, rng.standard_normal(256)),
        "half_zero": np.where(np.arange(256) < 128, 0.0, rng.standard_normal(256)),
    }
    x = np.stack(list(rows.values())).astype(np.float32)
    back = fmt.dequantize(fmt.quantize(x))
    assert np.isfinite(back).all()
    np.testing.assert_array_equal(back[0], 0)
    for k, key in enumerate(rows):
        spread = x[k].max() - min(x[k].min(), 0)
        assert np.abs(back[k] - x[k]).max() <= KQUANT_WORST[name] * spread + 1e-7, (key, name)


@pytest.mark.parametrize("name", NAMES)
def test_quantize_shapes_and_dtypes(name):
    fmt = FORMATS[name]
    x = np.random.default_rng(2).standard_normal((2, 3, fmt.block_elements)).astype(np.float32)
    q = fmt.quantize(x)
    assert q.shape == (2, 3, fmt.block_bytes) and q.dtype == np.uint8
    np.testing.assert_array_equal(fmt.quantize(x.astype(np.float64)), q)
    assert fmt.quantize(np.zeros((0, fmt.block_elements), np.float32)).shape == (0, fmt.block_bytes)
    with pytest.raises(TypeError, match=f"{name}.*float"):
        fmt.quantize(np.zeros(fmt.block_elements, np.int32))
    with pytest.raises(ValueError, match=rf"{name}.*multiple of {fmt.block_elements}"):
        fmt.quantize(np.zeros((2, fmt.block_elements + 16), np.float32))
