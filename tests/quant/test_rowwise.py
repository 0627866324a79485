"""The rowwise formats' references (`ember.quant.rowwise`): decoders against an independent
per-value reference (exact rational arithmetic for INT8's single rounding), quantizers against
torch's prepack ops byte for byte, and decoders against torch's unpack ops bit for bit."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from conftest import assert_same_bits

from ember.graph import QuantizationEncoding
from ember.quant import FORMATS, row_bytes
from ember.quant.rowwise import from_fbgemm_tbe

NAMES = ["rowwise_int8", "rowwise_int4", "rowwise_int2"]
BITS = {"rowwise_int8": 8, "rowwise_int4": 4, "rowwise_int2": 2}
TORCH_OPS = {
    "rowwise_int8": ("embedding_bag_byte_prepack", "embedding_bag_byte_unpack"),
    "rowwise_int4": ("embedding_bag_4bit_prepack", "embedding_bag_4bit_unpack"),
    "rowwise_int2": ("embedding_bag_2bit_prepack", "embedding_bag_2bit_unpack"),
}


def nearest_float32(exact: Fraction) -> np.float32:
    """``exact`` rounded to float32, ties to even, chosen among the float32 neighbours of its
    float64 approximation by exact distance."""
    guess = np.float32(float(exact))
    candidates = [np.nextafter(guess, np.float32(-np.inf)), guess]
    candidates.append(np.nextafter(guess, np.float32(np.inf)))
    finite = [c for c in candidates if np.isfinite(c)]
    return min(finite, key=lambda c: (abs(Fraction(float(c)) - exact), int(c.view(np.uint32)) & 1))


def reference_row(name: str, row: np.ndarray) -> np.ndarray:
    """One row decoded value by value, from the layout alone."""
    bits = BITS[name]
    tail = 8 if bits == 8 else 4
    scale_type = "<f4" if bits == 8 else "<f2"
    scale, bias = (float(v) for v in row[-tail:].copy().view(scale_type))
    levels = [(int(byte) >> shift) & ((1 << bits) - 1) for byte in row[:-tail]
              for shift in range(0, 8, bits)]  # fmt: skip
    return np.array(
        [nearest_float32(Fraction(q) * Fraction(scale) + Fraction(bias)) for q in levels],
        np.float32,
    )


def random_rows(name: str, n: int, values: int, seed: int) -> np.ndarray:
    """Random levels with finite scales and biases of every magnitude (INT8: float32 exponents
    from 2**-100 to 2**100, so that the product and the bias often differ widely)."""
    rng = np.random.default_rng(seed)
    fmt = FORMATS[name]
    rows = rng.integers(0, 256, (n, row_bytes(fmt, values)), dtype=np.uint8)
    if name == "rowwise_int8":
        tail = rng.standard_normal((n, 2)) * np.exp2(rng.integers(-100, 100, (n, 2)))
        tail[::7, 1] = 0
        rows[:, -8:] = tail.astype("<f4").view(np.uint8)
    else:
        tail = rng.standard_normal((n, 2)) * np.exp2(rng.integers(-20, 12, (n, 2)))
        rows[:, -4:] = tail.astype("<f2").view(np.uint8)
    return rows


def float_rows(n: int, width: int, seed: int) -> np.ndarray:
    """Rows of many magnitudes, with the corner cases torch's quantizers treat apart."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, width)) * np.exp2(rng.integers(-30, 20, (n, 1)))
    x[0] = 0  # no range
    x[1] = 3.25  # a constant row
    x[2, ::2] = 1e-7  # fp16 underflow of the scale
    x[3] *= 1e6  # past fp16: INT4/INT2 scales and biases overflow
    x[4, 1] = -np.inf
    return x.astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_decoder_matches_the_per_value_reference(name):
    rows = random_rows(name, 40, 16, seed=1)
    got = FORMATS[name].dequantize(rows)
    assert got.shape == (40, 16) and got.dtype == np.float32
    for row, values in zip(rows, got, strict=True):
        assert_same_bits(values, reference_row(name, row))


def test_int8_rounds_once():
    """3 * (1 + 2**-23) lies halfway between two float32s; a tiny negative bias decides the
    single rounding (down), where rounding the product first goes up (to even)."""
    row = np.zeros(9 + 8, np.uint8)
    row[:9] = 3
    row[9:] = np.array([1 + 2.0**-23, -(2.0**-60)], "<f4").view(np.uint8)
    got = FORMATS["rowwise_int8"].dequantize(row)
    assert got[0] == np.float32(3 + 2.0**-22)
    assert np.float32(3) * np.float32(1 + 2.0**-23) - np.float32(2.0**-60) == 3 + 2.0**-21
    assert_same_bits(got, reference_row("rowwise_int8", row))


@pytest.mark.parametrize("name", NAMES)
def test_layout_by_hand(name):
    """Levels 0..top in order, scale 0.5, bias -1: value j is level j / 2 - 1."""
    bits = BITS[name]
    top = (1 << bits) - 1
    levels = np.arange(8 * 8 // bits) % (top + 1)
    packed = np.zeros(len(levels) * bits // 8, np.uint8)
    for j, level in enumerate(levels):
        packed[j * bits // 8] |= level << (j * bits % 8)
    scales = np.array([0.5, -1], "<f4" if bits == 8 else "<f2").view(np.uint8)
    got = FORMATS[name].dequantize(np.concatenate([packed, scales]))
    np.testing.assert_array_equal(got, levels / 2 - 1)


@pytest.mark.parametrize("name", NAMES)
def test_quantize_round_trips_within_half_a_step(name):
    x = np.random.default_rng(2).standard_normal((50, 64)).astype(np.float32)
    fmt = FORMATS[name]
    packed = fmt.quantize(x)
    assert packed.shape == (50, row_bytes(fmt, 64)) and packed.dtype == np.uint8
    step = (x.max(1) - x.min(1)) / ((1 << BITS[name]) - 1)
    error = np.abs(fmt.dequantize(packed) - x).max(1)
    assert (error <= step * 0.5 + 1e-3 * np.abs(x).max(1)).all()  # + fp16 rounding of the bias


@pytest.mark.parametrize("name", NAMES)
def test_a_row_holding_nan_decodes_to_nan_and_leaves_the_others(name):
    """torch's bytes for such a row depend on where the NaN falls in its vectors; here the NaN
    reaches the row's scale and bias."""
    x = np.arange(64, dtype=np.float32).reshape(2, 32)
    x[0, 3] = np.nan
    decoded = FORMATS[name].dequantize(FORMATS[name].quantize(x))
    assert np.isnan(decoded[0]).all() and not np.isnan(decoded[1]).any()


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_errors(name):
    fmt = FORMATS[name]
    per_byte = 8 // BITS[name]
    x = np.random.default_rng(3).standard_normal((2, 3, 8)).astype(np.float32)
    packed = fmt.quantize(x)
    assert packed.shape == (2, 3, row_bytes(fmt, 8))
    assert fmt.dequantize(packed).shape == (2, 3, 8)
    assert fmt.quantize(np.zeros((0, 8), np.float32)).shape == (0, row_bytes(fmt, 8))
    with pytest.raises(TypeError, match=rf"{name} dequantize takes uint8"):
        fmt.dequantize(packed.view(np.int8))
    with pytest.raises(TypeError, match=rf"{name} quantize takes float"):
        fmt.quantize(np.zeros((2, 8), np.int32))
    with pytest.raises(ValueError, match=rf"{name}.*no room for values"):
        fmt.dequantize(packed[..., -fmt.row_tail_bytes :])
    if per_byte > 1:
        with pytest.raises(ValueError, match=rf"{name} packs {per_byte} values a byte.*9 values"):
            fmt.quantize(np.zeros((2, 9), np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_encodings_size_rows_and_reject_rows_without_values(name):
    encoding = QuantizationEncoding[name.upper()]
    fmt = FORMATS[name]
    assert encoding.is_rowwise and not encoding.is_gguf
    assert encoding.row_bytes(128) == row_bytes(fmt, 128)
    assert encoding.hidden_size(row_bytes(fmt, 128)) == 128
    with pytest.raises(ValueError, match=rf"{name}.*no room for values"):
        encoding.hidden_size(fmt.row_tail_bytes)
    with pytest.raises(ValueError, match=rf"{encoding.value} rows are not whole blocks"):
        _ = encoding.block_parameters


# ---- against torch --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch's prepack and unpack ops are the reference")


@pytest.mark.parametrize("width", [8, 64, 100, 256])
@pytest.mark.parametrize("name", NAMES)
def test_quantize_equals_torch_prepack(torch, name, width):
    x = float_rows(300, width, seed=width)
    prepack = getattr(torch.ops.quantized, TORCH_OPS[name][0])
    want = prepack(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(FORMATS[name].quantize(x), want)


@pytest.mark.parametrize("name", NAMES)
def test_quantize_equals_torch_prepack_on_infinite_rows(torch, name):
    """A row of one infinity has the largest finite float32 at its other end (FBGEMM's
    minimum and maximum start there)."""
    inf = np.inf
    x = np.array([[inf] * 4, [-inf] * 4, [-inf, 1, 2, inf], [1, 2, inf, 3]], np.float32)
    prepack = getattr(torch.ops.quantized, TORCH_OPS[name][0])
    want = prepack(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(FORMATS[name].quantize(x), want)


@pytest.mark.parametrize("name", NAMES)
def test_quantize_of_bfloat16_and_float16_inputs_equals_torch_on_their_float32(torch, name):
    x = float_rows(20, 32, seed=5)[5:].astype(np.float16)
    prepack = getattr(torch.ops.quantized, TORCH_OPS[name][0])
    want = prepack(torch.from_numpy(x.astype(np.float32))).numpy()
    np.testing.assert_array_equal(FORMATS[name].quantize(x), want)


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_equals_torch_unpack(torch, name):
    unpack = getattr(torch.ops.quantized, TORCH_OPS[name][1])
    prepack = getattr(torch.ops.quantized, TORCH_OPS[name][0])
    packed = prepack(torch.from_numpy(float_rows(300, 64, seed=6))).numpy()
    random = random_rows(name, 2000, 32, seed=7)
    for rows in (packed, random):
        want = unpack(torch.from_numpy(rows)).numpy()
        assert_same_bits(FORMATS[name].dequantize(rows), want, nan_meets_nan=True)


# ---- FBGEMM's table-batched layout ------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_rows_from_fbgemm_tbe_keep_the_values_and_the_float16_scale_and_bias(name):
    rng = np.random.default_rng(8)
    values = rng.integers(0, 256, (50, 32 * BITS[name] // 8), dtype=np.uint8)
    halves = (rng.standard_normal((50, 2)) * np.exp2(rng.integers(-20, 12, (50, 2)))).astype("<f2")
    rows = from_fbgemm_tbe(values, halves.view(np.uint8), name.upper())
    for same in (QuantizationEncoding[name.upper()], FORMATS[name]):
        assert from_fbgemm_tbe(values, halves.view(np.uint8), same).tobytes() == rows.tobytes()
    tail = 8 if name == "rowwise_int8" else 4
    assert rows.shape == (50, values.shape[1] + tail) and rows.dtype == np.uint8
    np.testing.assert_array_equal(rows[:, :-tail], values)
    scale_type = "<f4" if tail == 8 else "<f2"
    np.testing.assert_array_equal(
        rows[:, -tail:].copy().view(scale_type), halves.astype(scale_type)
    )
    decoded = FORMATS[name].dequantize(rows)
    for row, want in zip(rows[:5], decoded[:5], strict=True):
        assert_same_bits(reference_row(name, row), want)


def test_fbgemm_tbe_rows_of_the_wrong_kind_are_clear_errors():
    values, scale_bias = np.zeros((3, 8), np.uint8), np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match="a format of rowwise_int8, rowwise_int4, rowwise_int2"):
        from_fbgemm_tbe(values, scale_bias, "q4_k")
    with pytest.raises(ValueError, match=r"values are uint8 rows .* got float32"):
        from_fbgemm_tbe(values.astype(np.float32), scale_bias, "rowwise_int8")
    with pytest.raises(ValueError, match=r"scale_bias is uint8 of shape \(3, 4\)"):
        from_fbgemm_tbe(values, scale_bias[:2], "rowwise_int4")
