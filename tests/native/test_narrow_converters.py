"""The native kernels' float32 -> bfloat16 / float16 converters, bit for bit.

`dequantize_gather` rounds its float32 rows to bfloat16 or float16 with `_to_bf16` / `_to_f16`.
Their docstrings claim: bfloat16 is "rounded to nearest even; NaN -> the quiet NaN of its sign.
Equal to ``ml_dtypes``' ``astype(bfloat16)`` for every input", and float16 is "rounded to
nearest even ... Equal to numpy's ``astype(float16)`` for every input, NaN payloads included
(numpy keeps the top ten payload bits, and at least one)". Both claims are documented, so NaN
payloads are compared exactly here, against the libraries and against hand-written bits.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.engine.backends.native.kernels.compiled import device
from ember.engine.backends.native.kernels.compiled.decoders.bytes import F16_TO_F32 as _F16_TO_F32
from ember.engine.backends.native.kernels.compiled.narrow import to_bf16 as _to_bf16
from ember.engine.backends.native.kernels.compiled.narrow import to_f16 as _to_f16
from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR
from ember.quant import FORMATS

SIGN = 0x8000_0000

# (float32 bits, bfloat16 bits, float16 bits): written by hand from IEEE 754 round-to-nearest-
# even and the documented NaN rules, not computed by a library. Negative twins are added below.
CASES = [
    # zeros and infinities
    (0x0000_0000, 0x0000, 0x0000),
    (0x7F80_0000, 0x7F80, 0x7C00),
    # NaNs: bfloat16 gives the canonical quiet NaN; float16 keeps the top ten payload bits (at
    # least one), so a signalling NaN stays signalling (quiet bit 0x0200 clear)
    (0x7F80_0001, 0x7FC0, 0x7C01),  # smallest payload: below the kept bits, so forced to 1
    (0x7F80_1FFF, 0x7FC0, 0x7C01),  # payload only in the dropped 13 bits
    (0x7F80_2000, 0x7FC0, 0x7C01),  # lowest kept payload bit
    (0x7FA0_0000, 0x7FC0, 0x7D00),  # signalling, payload 0x100
    (0x7FBF_FFFF, 0x7FC0, 0x7DFF),  # largest signalling NaN
    (0x7FC0_0000, 0x7FC0, 0x7E00),  # the default quiet NaN
    (0x7FC0_0001, 0x7FC0, 0x7E00),
    (0x7FD5_5555, 0x7FC0, 0x7EAA),
    (0x7FFF_FFFF, 0x7FC0, 0x7FFF),
    # float32 subnormals: bfloat16 has the same exponent range, float16 flushes them to zero
    (0x0000_0001, 0x0000, 0x0000),
    (0x0000_7FFF, 0x0000, 0x0000),
    (0x0000_8000, 0x0000, 0x0000),  # tie, 0 is even
    (0x0000_8001, 0x0001, 0x0000),
    (0x0001_8000, 0x0002, 0x0000),  # tie, 1 is odd: up to 2
    (0x0040_0000, 0x0040, 0x0000),
    (0x007F_7FFF, 0x007F, 0x0000),
    (0x007F_8000, 0x0080, 0x0000),  # tie into the smallest normal
    (0x007F_FFFF, 0x0080, 0x0000),  # largest float32 subnormal
    (0x0080_0000, 0x0080, 0x0000),  # smallest float32 normal
    # values that become float16 subnormals (1 ulp = 2**-24)
    (0x3300_0000, 0x3300, 0x0000),  # 0.5 ulp: tie, 0 is even
    (0x3300_0001, 0x3300, 0x0001),
    (0x3340_0000, 0x3340, 0x0001),  # 0.75 ulp
    (0x3380_0000, 0x3380, 0x0001),  # 1 ulp: the smallest float16 subnormal
    (0x33C0_0000, 0x33C0, 0x0002),  # 1.5 ulp: tie, up to 2
    (0x3420_0000, 0x3420, 0x0002),  # 2.5 ulp: tie, down to 2
    (0x387F_C000, 0x3880, 0x03FF),  # 1023 ulp: the largest float16 subnormal
    (0x387F_DFFF, 0x3880, 0x03FF),
    (0x387F_E000, 0x3880, 0x0400),  # 1023.5 ulp: tie, into the smallest normal
    (0x3880_0000, 0x3880, 0x0400),  # 2**-14
    (0x3880_1000, 0x3880, 0x0400),  # tie above it, 0x400 is even
    (0x3880_1001, 0x3880, 0x0401),
    (0x3880_3000, 0x3880, 0x0402),  # tie, 0x401 is odd
    # the largest finite values and overflow
    (0x7F7F_0000, 0x7F7F, 0x7C00),  # bfloat16's largest finite
    (0x7F7E_8000, 0x7F7E, 0x7C00),  # tie, 0x7F7E is even
    (0x7F7F_7FFF, 0x7F7F, 0x7C00),
    (0x7F7F_8000, 0x7F80, 0x7C00),  # tie, 0x7F7F is odd: overflows to inf
    (0x7F7F_FFFF, 0x7F80, 0x7C00),  # float32's largest finite
    (0x477F_E000, 0x4780, 0x7BFF),  # 65504, float16's largest finite
    (0x477F_E001, 0x4780, 0x7BFF),
    (0x477F_EFFF, 0x4780, 0x7BFF),
    (0x477F_F000, 0x4780, 0x7C00),  # 65520: tie, 0x7BFF is odd: overflows to inf
    (0x4780_0000, 0x4780, 0x7C00),  # 65536
    # ties in the normal range (round half to even) and carries into the exponent
    (0x3F80_8000, 0x3F80, 0x3C04),  # 1 + 2**-8: bfloat16 tie, 0x3F80 even
    (0x3F80_8001, 0x3F81, 0x3C04),
    (0x3F81_8000, 0x3F82, 0x3C0C),  # bfloat16 tie, 0x3F81 odd
    (0x3F80_1000, 0x3F80, 0x3C00),  # 1 + 2**-11: float16 tie, 0x3C00 even
    (0x3F80_1001, 0x3F80, 0x3C01),
    (0x3F80_3000, 0x3F80, 0x3C02),  # float16 tie, 0x3C01 odd
    (0x3FFF_8000, 0x4000, 0x3FFC),  # bfloat16 tie carrying into the exponent
    (0x3FFF_F000, 0x4000, 0x4000),  # float16 tie carrying into the exponent
    (0x3F80_0000, 0x3F80, 0x3C00),  # 1.0
]
CASES += [(f32 | SIGN, bf | 0x8000, f16 | 0x8000) for f32, bf, f16 in CASES]

F32_BITS = np.array([c[0] for c in CASES], np.uint32)
BF16_BITS = np.array([c[1] for c in CASES], np.uint16)
F16_BITS = np.array([c[2] for c in CASES], np.uint16)


def to_bf16(bits: np.ndarray) -> np.ndarray:
    src = np.ascontiguousarray(bits, np.uint32).view(np.float32)
    dst = np.full(src.size, 0xDEAD, np.uint16)
    _to_bf16(src, dst)
    return dst


def to_f16(bits: np.ndarray) -> np.ndarray:
    src = np.ascontiguousarray(bits, np.uint32).view(np.float32)
    dst = np.full(src.size, 0xDEAD, np.uint16)
    _to_f16(src, dst)
    return dst


def ml_dtypes_bf16(bits: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return bits.view(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)


def numpy_f16(bits: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return bits.view(np.float32).astype(np.float16).view(np.uint16)


def assert_bits(got: np.ndarray, want: np.ndarray, src: np.ndarray) -> None:
    assert got.dtype == want.dtype == np.uint16 and got.shape == want.shape
    wrong = np.flatnonzero(got != want)
    if wrong.size:
        rows = [f"{src[i]:#010x} -> {got[i]:#06x}, want {want[i]:#06x}" for i in wrong[:8]]
        raise AssertionError(f"{wrong.size} of {got.size} differ:\n" + "\n".join(rows))


def assert_nan_keeps_sign(src: np.ndarray, got: np.ndarray, exponent_mask: int) -> None:
    """The required minimum, payload aside: NaN -> NaN of the same sign."""
    nan = (src & 0x7FFF_FFFF) > 0x7F80_0000
    mantissa = ~exponent_mask & 0x7FFF
    assert ((got[nan] & exponent_mask) == exponent_mask).all()
    assert ((got[nan] & mantissa) != 0).all()
    np.testing.assert_array_equal(got[nan] >> 15, (src[nan] >> 31).astype(np.uint16))


# ---- hand-written bits ----------------------------------------------------------------------


def test_the_cases_cover_what_they_claim():
    nan = (F32_BITS & 0x7FFF_FFFF) > 0x7F80_0000
    assert nan.sum() >= 18 and (F32_BITS[nan] >> 31).sum() == nan.sum() // 2
    subnormal = ((F32_BITS & 0x7F80_0000) == 0) & ((F32_BITS & 0x7F_FFFF) != 0)
    assert subnormal.sum() >= 16
    assert 0x7BFF in F16_BITS and 0x7F7F in BF16_BITS  # the largest finite outputs
    assert 0x0001 in F16_BITS and 0x03FF in F16_BITS and 0x0001 in BF16_BITS


def test_bf16_matches_hand_written_bits():
    assert_bits(to_bf16(F32_BITS), BF16_BITS, F32_BITS)


def test_f16_matches_hand_written_bits():
    assert_bits(to_f16(F32_BITS), F16_BITS, F32_BITS)


def test_the_libraries_agree_with_the_hand_written_bits():
    """So that the comparisons below against the libraries test the same thing."""
    assert_bits(ml_dtypes_bf16(F32_BITS), BF16_BITS, F32_BITS)
    assert_bits(numpy_f16(F32_BITS), F16_BITS, F32_BITS)


def test_nans_stay_nans_of_their_sign():
    nan = (F32_BITS & 0x7FFF_FFFF) > 0x7F80_0000
    for bits in (F32_BITS[nan], F32_BITS[nan] | SIGN, F32_BITS[nan] & ~np.uint32(SIGN)):
        assert_nan_keeps_sign(bits, to_bf16(bits), 0x7F80)
        assert_nan_keeps_sign(bits, to_f16(bits), 0x7C00)
    negative = np.array([0xFFC0_0000, 0xFF80_0001, 0xFFFF_FFFF], np.uint32)
    assert (to_bf16(negative) == 0xFFC0).all()
    np.testing.assert_array_equal(to_f16(negative), np.array([0xFE00, 0xFC01, 0xFFFF], np.uint16))


def test_bf16_nan_is_the_quiet_nan_of_its_sign():
    """The docstring: 'NaN -> the quiet NaN of its sign' (the payload is dropped)."""
    nan = (F32_BITS & 0x7FFF_FFFF) > 0x7F80_0000
    want = np.where(F32_BITS[nan] >> 31 == 1, 0xFFC0, 0x7FC0).astype(np.uint16)
    assert_bits(to_bf16(F32_BITS[nan]), want, F32_BITS[nan])


def test_f16_nan_keeps_the_top_ten_payload_bits():
    """The docstring: numpy's rule, the top ten payload bits and at least one."""
    rng = np.random.default_rng(0)
    payload = rng.integers(1, 1 << 23, 4096, dtype=np.uint32)
    sign = rng.integers(0, 2, 4096, dtype=np.uint32) << 31
    bits = sign | 0x7F80_0000 | payload
    kept = np.maximum(payload >> 13, 1)
    want = ((sign >> 16) | 0x7C00 | kept).astype(np.uint16)
    assert_bits(to_f16(bits), want, bits)


# ---- against ml_dtypes and numpy -------------------------------------------------------------


def boundary_patterns() -> np.ndarray:
    """Every exponent and sign, with mantissas at and around each format's rounding points."""
    low = [0x0, 0x1, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001,
           0xC000, 0xE000, 0xF000, 0xFFFF]  # fmt: skip
    high = [0x00, 0x01, 0x02, 0x3F, 0x40, 0x7E, 0x7F]  # the mantissa's top 7 bits
    mantissas = {(h << 16 | lo) & 0x7F_FFFF for h in high for lo in low}
    mantissas |= {(0x7F_FFFF ^ m) for m in list(mantissas)}
    exponents = np.arange(256, dtype=np.uint32) << 23
    m = np.array(sorted(mantissas), np.uint32)
    bits = (exponents[:, None] | m[None, :]).reshape(-1)
    return np.concatenate([bits, bits | SIGN])


def test_boundaries_match_the_libraries():
    bits = boundary_patterns()
    assert bits.size > 80_000
    assert_bits(to_bf16(bits), ml_dtypes_bf16(bits), bits)
    assert_bits(to_f16(bits), numpy_f16(bits), bits)


def test_a_large_random_sample_matches_the_libraries():
    bits = np.random.default_rng(2024).integers(0, 1 << 32, 1 << 22, dtype=np.uint32)
    assert_bits(to_bf16(bits), ml_dtypes_bf16(bits), bits)
    assert_bits(to_f16(bits), numpy_f16(bits), bits)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64))
def test_random_bit_patterns_match_the_libraries(patterns):
    bits = np.array(patterns, np.uint32)
    bf16, f16 = to_bf16(bits), to_f16(bits)
    assert_bits(bf16, ml_dtypes_bf16(bits), bits)
    assert_bits(f16, numpy_f16(bits), bits)
    assert_nan_keeps_sign(bits, bf16, 0x7F80)
    assert_nan_keeps_sign(bits, f16, 0x7C00)


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_subnormal=True))
def test_random_floats_match_the_libraries(value):
    bits = np.array([value], np.float32).view(np.uint32)
    assert_bits(to_bf16(bits), ml_dtypes_bf16(bits), bits)
    assert_bits(to_f16(bits), numpy_f16(bits), bits)


def test_every_float16_survives_a_round_trip_through_float32():
    """`_F16_TO_F32` (the scales' decoding) then `_to_f16`: every pattern, NaNs included."""
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    widened = _F16_TO_F32.view(np.uint32)
    want = halves.view(np.float16).astype(np.float32).view(np.uint32)
    np.testing.assert_array_equal(widened, want)
    assert_bits(to_f16(widened), halves, widened)


# ---- through the kernel: a Q8_0 gather into bfloat16 / float16 --------------------------------


def q8_0_table_of_every_scale() -> np.ndarray:
    """65536 rows of eight Q8_0 blocks: row r has fp16 scale r (NaNs, infinities, subnormals
    included) and the levels -128..127, so its values are every level times that scale."""
    rows = 1 << 16
    table = np.empty((rows, 8, 34), np.uint8)
    table[:, :, 0:2] = np.arange(rows, dtype="<u2").view(np.uint8).reshape(rows, 1, 2)
    table[:, :, 2:] = np.arange(-128, 128, dtype=np.int8).view(np.uint8).reshape(1, 8, 32)
    return table.reshape(rows, 8 * 34)


@pytest.fixture(scope="module")
def every_scale():
    table = q8_0_table_of_every_scale()
    with np.errstate(all="ignore"):
        wide = FORMATS["q8_0"].dequantize(table)
    return table, wide


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("count", [64, 1 << 16], ids=["small", "streamed"])
def test_q8_0_gather_rounds_like_the_libraries(every_scale, dtype, count, parallel):
    table, wide = every_scale
    ids = np.random.default_rng(count).permutation(1 << 16)[:count]
    ids[0] = 0x7C01  # a signalling fp16 NaN scale
    ids[1 % count] = 0xFE01  # a negative quiet one with a payload
    out = np.full((count, 256), 7, dtype)
    if count > 64:  # big enough for the kernel's non-temporal path, where it has one
        assert out.nbytes >= device.DECODE_STREAM_MIN_BYTES
    assert gather_dequantize("q8_0", table, ids, 0, MODE_ERROR, out, parallel) == -1
    src = np.ascontiguousarray(wide[ids]).view(np.uint32).reshape(-1)
    want = ml_dtypes_bf16(src) if dtype is ml_dtypes.bfloat16 else numpy_f16(src)
    got = out.view(np.uint16).reshape(-1)
    assert_bits(got, want, src)
    assert_nan_keeps_sign(src, got, 0x7F80 if dtype is ml_dtypes.bfloat16 else 0x7C00)
    assert ((src & 0x7FFF_FFFF) > 0x7F80_0000).any()  # NaNs really went through
