"""Every quantizing registry format's quantizer (`ember.quant.FORMATS[name].quantize`): its
bytes read back by gguf-py as we read them, its error within the bound it states below; the
quantizers ported from ggml byte for byte as gguf-py's; the decode-only formats saying so."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from conftest import assert_same_bits
from gguf import GGMLQuantizationType
from gguf import quants as gq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.quant import FORMATS, GGUF_FORMATS, kquants, legacy, ternary

QUANTIZABLE = [name for name, fmt in GGUF_FORMATS.items() if fmt.quantizable]
DECODE_ONLY = [name for name, fmt in GGUF_FORMATS.items() if not fmt.quantizable]
LEGACY = [name.lower() for name in legacy.__all__]
KQUANTS = [name.lower() for name in kquants.__all__]
TERNARY = [name.lower() for name in ternary.__all__]


@dataclass(frozen=True)
class Bounds:
    """What a quantizer promises."""

    rmse: float
    """Round-trip RMSE on standard normal data (:func:`normal`)."""
    worst: float
    """Largest round-trip |error| on the rows of :func:`special_rows`, over its block's peak."""
    past_fp16: bool = True
    """Finite where a block's scale exceeds fp16's range; ggml's legacy quantizers, which ours
    match byte for byte, store an inf scale there."""


# RMSE bounds: about 10% above the measured values (seed 11), so that a quantizer that gets
# worse fails. Worst-case bounds, over the block's peak |x|:
# - Q4_0/Q5_0: the peak maps to the most negative level, -8 (-16), so the other sign clamps a
#   level short: d = peak / 8 (/ 16). Q4_1/Q5_1: half a step of (max - min) / 15 (/ 31), and
#   max - min <= 2 peak. Q8_0: half of peak / 127, plus fp16's rounding of small scales.
# - K-quants (ember's own search, no closed form): measured 0.32 / 0.15 / 0.063 / 0.029 / 0.017.
# - IQ4_NL/IQ4_XS: half the widest gap of the 16 levels (12 of 127), plus the scale search's
#   slack. 16 levels over about +-2.5 sigma are 0.3 sigma apart, and they bunch up where
#   normal data is dense: RMSE below 0.08 (and IQ4_NL no worse than Q4_0, same 4.5 bits).
# - TQ: a value rounds to the nearer of 0 and +-d = fp16(peak). d = peak (~3 sigma) sends all
#   under 1.5 sigma to 0, ~0.8 sigma RMSE alone; ternary is for ternary-trained weights.
# - MXFP4: with u = 2**(floor(log2 peak) - 2) the codes reach 6u > peak * 3/4 and are at most
#   2u apart below it: half a gap, u <= peak / 4.
BOUNDS = {
    "q4_0": Bounds(0.095, 0.13, past_fp16=False),
    "q4_1": Bounds(0.087, 0.07, past_fp16=False),
    "q5_0": Bounds(0.047, 0.065, past_fp16=False),
    "q5_1": Bounds(0.042, 0.034, past_fp16=False),
    "q8_0": Bounds(0.006, 0.005, past_fp16=False),
    "q2_k": Bounds(0.29, 0.35),
    "q3_k": Bounds(0.16, 0.16),
    "q4_k": Bounds(0.078, 0.07),
    "q5_k": Bounds(0.039, 0.032),
    "q6_k": Bounds(0.019, 0.019),
    "iq4_nl": Bounds(0.08, 0.2),
    "iq4_xs": Bounds(0.08, 0.2),
    "tq1_0": Bounds(0.85, 0.5005),
    "tq2_0": Bounds(0.85, 0.5005),
    "mxfp4": Bounds(0.125, 0.25),
}


def gguf_type(name: str) -> GGMLQuantizationType:
    return GGMLQuantizationType[name.upper()]


def normal(rows: int = 32, width: int = 1024, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, width)).astype(np.float32)


def round_trip(name: str, x: np.ndarray) -> np.ndarray:
    return FORMATS[name].dequantize(FORMATS[name].quantize(x))


def rmse(name: str, x: np.ndarray) -> float:
    return float(np.sqrt(np.mean((round_trip(name, x) - x) ** 2)))


def block_peaks(x: np.ndarray, size: int) -> np.ndarray:
    blocks = x.reshape(-1, size)
    return np.repeat(np.abs(blocks).max(axis=1), size).reshape(x.shape)


def special_rows() -> dict[str, np.ndarray]:
    """Rows of 256 values that stress a quantizer's scale search."""
    rng = np.random.default_rng(9)
    return {
        "zero": np.zeros(256),
        "constant": np.full(256, 0.75),
        "negative": -np.abs(rng.standard_normal(256)),
        "positive": np.abs(rng.standard_normal(256)) + 3,
        "small": rng.standard_normal(256) * 1e-3,
        "large": rng.standard_normal(256) * 1e3,
        "outlier": np.where(np.arange(256) == 17, 50.0, rng.standard_normal(256)),
        "half_zero": np.where(np.arange(256) < 128, 0.0, rng.standard_normal(256)),
    }


# ---- every quantizer ------------------------------------------------------------------------


def test_every_quantizer_states_its_bounds():
    assert set(BOUNDS) == set(QUANTIZABLE)


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_rmse_on_normal_data(name):
    err = rmse(name, normal())
    assert err < BOUNDS[name].rmse, err


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_special_rows_within_bound(name):
    """Zeros stay zeros; every block within its stated fraction of its peak."""
    fmt = FORMATS[name]
    rows = special_rows()
    x = np.stack(list(rows.values())).astype(np.float32)
    back = round_trip(name, x)
    np.testing.assert_array_equal(back[0], 0)
    for k, key in enumerate(rows):
        peaks = block_peaks(x[k], fmt.block_elements)
        assert (np.abs(back[k] - x[k]) <= BOUNDS[name].worst * peaks + 1e-7).all(), key


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_tiny_and_huge_blocks_stay_finite(name):
    rng = np.random.default_rng(10)
    scales = [1e-30, 1e-9, 1e-6, 1e5, 1e9] if BOUNDS[name].past_fp16 else [1e-30, 1e-9, 1e-6]
    for scale in scales:
        x = (rng.standard_normal((2, 256)) * scale).astype(np.float32)
        assert np.isfinite(round_trip(name, x)).all(), scale


@pytest.mark.parametrize("name", QUANTIZABLE)
@pytest.mark.parametrize("scale", [1.0, 1e-3, 300.0])
def test_quantized_bytes_read_back_by_gguf(name, scale):
    """Our packing is GGUF's: gguf-py reads our bytes to the values we read."""
    fmt = FORMATS[name]
    blocks = fmt.quantize(normal(4, 512, seed=5) * np.float32(scale))
    assert blocks.dtype == np.uint8
    assert blocks.shape == (4, 512 // fmt.block_elements * fmt.block_bytes)
    assert_same_bits(
        fmt.dequantize(blocks), gq.dequantize(blocks, gguf_type(name)), nan_meets_nan=True
    )


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_quantize_shapes_and_dtypes(name):
    fmt = FORMATS[name]
    x = normal(6, fmt.block_elements).reshape(2, 3, fmt.block_elements)
    q = fmt.quantize(x)
    assert q.shape == (2, 3, fmt.block_bytes) and q.dtype == np.uint8
    np.testing.assert_array_equal(fmt.quantize(x.astype(np.float64)), q)
    assert fmt.quantize(np.zeros((0, fmt.block_elements), np.float32)).shape == (0, fmt.block_bytes)
    with pytest.raises(TypeError, match=f"{name}.*float"):
        fmt.quantize(np.zeros(fmt.block_elements, np.int32))
    with pytest.raises(ValueError, match=rf"{name}.*multiple of {fmt.block_elements}"):
        fmt.quantize(np.zeros((2, fmt.block_elements + 16), np.float32))


@pytest.mark.parametrize("name", DECODE_ONLY)
def test_decode_only_formats_say_how_to_quantize(name):
    fmt = FORMATS[name]
    with pytest.raises(NotImplementedError, match=rf"{name.upper()}.*llama-quantize"):
        fmt.quantize(np.zeros((2, fmt.block_elements), np.float32))


# ---- quantizers ported from ggml: byte for byte -----------------------------------------------


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
        ref = gq.quantize(x, gguf_type(name))
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
        ref = gq.quantize(x[None], gguf_type(name))
        ours = FORMATS[name].quantize(x[None])
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("name", LEGACY + TERNARY)
def test_blocks_too_small_for_a_finite_reciprocal_decode_as_ggufs_do(name):
    """Under about 1e-37, 1 / d overflows and gguf-py's levels are the platform's cast of inf
    and NaN: the bytes may differ, the decoded values may not (but for the sign of zero)."""
    fmt = FORMATS[name]
    n = fmt.block_elements
    for peak in (3e-38, 2e-38, 1e-38, 1e-40):
        x = (np.linspace(-1, 1, n) * peak).astype(np.float32)[None]
        with np.errstate(all="ignore"):
            ref = gq.dequantize(gq.quantize(x, gguf_type(name)), gguf_type(name))
        np.testing.assert_array_equal(fmt.dequantize(fmt.quantize(x)), ref)


def test_mxfp4_bytes_equal_ggufs_down_to_2_to_the_minus_125():
    """Below, gguf-py's exponent byte wraps to the top of its range (a block of zeros); ember
    clips it to the smallest scale and keeps what it can."""
    x = (np.linspace(-1, 1, 32) * 2.0**-125).astype(np.float32)[None]
    np.testing.assert_array_equal(FORMATS["mxfp4"].quantize(x), gq.quantize(x, gguf_type("mxfp4")))
    tiny = x * np.float32(0.5)
    with np.errstate(all="ignore"):
        ref = gq.dequantize(gq.quantize(tiny, gguf_type("mxfp4")), gguf_type("mxfp4"))
    ours = FORMATS["mxfp4"].dequantize(FORMATS["mxfp4"].quantize(tiny))
    assert not ref.any()  # gguf-py's block of zeros
    assert np.abs(ours - tiny).max() < np.abs(tiny).max() / 4


SCALES = [1.0, 1e-6, 1e-3, 1e3, 1e-30, 1e30]


@pytest.mark.parametrize(
    ("name", "scale"),
    [("mxfp4", s) for s in SCALES] + [(n, s) for n in TERNARY for s in SCALES[:4]],
)
def test_mxfp4_and_ternary_quantize_as_gguf(name, scale):
    """Byte for byte; TQ only within fp16's range (beyond it gguf stores an inf scale, we
    65504)."""
    x = normal(8, 512, seed=6) * np.float32(scale)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(FORMATS[name].quantize(x), gq.quantize(x, gguf_type(name)))


# ---- family properties ----------------------------------------------------------------------


def test_kquant_error_falls_as_bits_rise():
    x = normal()
    err = {name: rmse(name, x) for name in LEGACY + KQUANTS}
    chain = [err[name] for name in KQUANTS]
    assert chain == sorted(chain, reverse=True), err
    assert err["q4_k"] <= err["q4_0"], err
    assert err["q5_k"] <= err["q5_0"], err


def test_iq4_no_worse_than_q4_0():
    x = normal()
    assert rmse("iq4_nl", x) <= rmse("q4_0", x)
    assert rmse("iq4_xs", x) <= 1.05 * rmse("iq4_nl", x)  # 6-bit sub-block scales cost little


@pytest.mark.parametrize("name", TERNARY)
def test_ternary_data_comes_back_exactly(name):
    """Ternary data at any fp16-representable scale."""
    rng = np.random.default_rng(3)
    t = rng.integers(-1, 2, (8, 1024)).astype(np.float32)
    t[:, ::256] = 1  # every block reaches its scale
    for d in (np.float32(0.0137), np.float32(2.0**-20), np.float32(60000)):
        exact = t * np.float32(np.float16(d))
        np.testing.assert_array_equal(round_trip(name, exact), exact)


def test_mxfp4_data_comes_back_exactly():
    e2m1 = np.float32([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    values = np.random.default_rng(4).choice(np.concatenate([e2m1, -e2m1]), (8, 1024))
    values[:, ::32] = 6  # the block's largest code
    exact = (values * np.float32(2.0**-5)).astype(np.float32)
    np.testing.assert_array_equal(round_trip("mxfp4", exact), exact)


# ---- llama.cpp's own limits (tests/test-quantize-fns.cpp) -------------------------------------

_LLAMA_ROUND_TRIP_LIMIT = {"q2_k": 0.0075, "q3_k": 0.0040, "tq1_0": 0.01, "tq2_0": 0.01}
_LLAMA_DOT_LIMIT = {"q2_k": 0.04, "tq1_0": 0.15, "tq2_0": 0.15}


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_errors_within_llama_cpps_limits_on_its_data(name):
    """llama.cpp's data (0.1 + 2 cos(i), 4096 values) and its measures: the round trip's
    sqrt(sum d^2) / n, and a dot product with the next such vector, |w . y - x . y| / n, with
    `gguf` decoding ember's bytes (Q2_K's fit keeps its rows from shrinking toward zero, which
    biases such dot products)."""
    i = np.arange(4096, dtype=np.float32)
    x = (0.1 + 2 * np.cos(i).astype(np.float64)).astype(np.float32)
    y = (0.1 + 2 * np.cos(i + 1).astype(np.float64)).astype(np.float32)
    fmt = FORMATS[name]
    w = gq.dequantize(fmt.quantize(x[None]), GGMLQuantizationType(fmt.ggml_type))[0]
    round_trip = np.sqrt(np.sum((w.astype(np.float64) - x) ** 2)) / x.size
    dot = abs(w.astype(np.float64) @ y - x.astype(np.float64) @ y) / x.size
    assert round_trip < _LLAMA_ROUND_TRIP_LIMIT.get(name, 0.002), round_trip
    assert dot < _LLAMA_DOT_LIMIT.get(name, 0.02), dot


def test_q2_k_rows_store_at_most_a_little_more_error_than_the_plain_fit():
    """The polished, unshrunk fit trades a little error for less bias; where it would store
    over 2 % more than the plain fit (tiny rows, fp16-subnormal scales), the plain one stays."""
    rng = np.random.default_rng(3)
    x = np.concatenate([
        rng.standard_normal((64, 256)) * 1e-6,  # fp16-subnormal super-scales
        rng.standard_cauchy((64, 256)),  # heavy tails
        3.4 + 0.6 * rng.standard_normal((64, 256)),  # all positive
        rng.standard_normal((64, 256)) * 10.0 ** rng.uniform(-3, 3, (64, 1)),
    ]).astype(np.float32)  # fmt: skip

    def stored_error(blocks):
        decoded = gq.dequantize(blocks, GGMLQuantizationType.Q2_K).astype(np.float64)
        return np.square(decoded - x).sum(axis=1)

    plain = kquants._affine_levels(x, 16, 3, 15)
    plain_blocks = np.concatenate(
        [(plain[2] | (plain[3] << 4)).astype(np.uint8), kquants._pack_crumbs(plain[4]),
         kquants.write_f16(plain[0]), kquants.write_f16(plain[1])], axis=1,
    )  # fmt: skip
    ours, theirs = stored_error(FORMATS["q2_k"].quantize(x)), stored_error(plain_blocks)
    assert (ours <= theirs * 1.0201).all(), (ours / theirs).max()
    assert ours.sum() < theirs.sum()
