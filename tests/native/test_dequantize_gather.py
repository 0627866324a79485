"""The fused gather + dequantize kernels against ember.quant's reference on ``table[rows]``."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from conftest import assert_same_bits

from ember.engine.backends.native.kernels.compiled import device
from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
from ember.engine.backends.native.kernels.out_of_range import CLAMP as MODE_CLAMP
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR
from ember.engine.backends.native.kernels.out_of_range import WRAP as MODE_WRAP
from ember.engine.backends.native.kernels.out_of_range import ZERO as MODE_ZERO
from ember.quant import FORMATS, GGUF_FORMATS

NAMES = list(GGUF_FORMATS)
DTYPES = [np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)]
ROWS = 7


def make_table(name: str, seed: int = 0, rows: int = ROWS) -> np.ndarray:
    """Random bytes (NaN, inf and subnormal scales included) with a few sane rows."""
    fmt = FORMATS[name]
    rng = np.random.default_rng(seed)
    n_blocks = 2 if fmt.block_elements >= 64 else 3
    table = rng.integers(0, 256, (rows, n_blocks * fmt.block_bytes), dtype=np.uint8)
    if fmt.quantizable:
        sane = rng.standard_normal((2, n_blocks * fmt.block_elements)).astype(np.float32)
        table[:2] = fmt.quantize(sane)
    return table


def expected(name: str, table: np.ndarray, rows: list[int | None], dtype) -> np.ndarray:
    """Reference rows; None stands for a zero row."""
    fmt = FORMATS[name]
    hidden = table.shape[1] // fmt.block_bytes * fmt.block_elements
    ref = np.zeros((len(rows), hidden), np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            with np.errstate(all="ignore"):
                ref[i] = fmt.dequantize(table[r])
    with np.errstate(all="ignore"):
        return ref.astype(dtype)


def run(name, table, ids, offset, mode, dtype, parallel):
    fmt = FORMATS[name]
    hidden = table.shape[1] // fmt.block_bytes * fmt.block_elements
    out = np.full((len(ids), hidden), 7, dtype)
    bad = gather_dequantize(name, table, np.asarray(ids), offset, mode, out, parallel)
    return bad, out


# ---- every format, dtype and threading, ids in range -----------------------------------------


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_matches_reference(name, dtype, parallel):
    table = make_table(name, seed=len(name))
    ids = np.array([3, 0, 6, 1, 1, 5, 2, 4, 0, 6, 3])
    bad, out = run(name, table, ids, 0, MODE_ERROR, dtype, parallel)
    assert bad == -1
    assert_same_bits(out, expected(name, table, list(ids), dtype), nan_meets_nan=True)


# ---- modes ------------------------------------------------------------------------------------

OFFSET = 100
IDS = [100, 99, 106, 107, 93, 92, 250, 103, -5]  # rows 0, -1, 6, 7, -7, -8, 150, 3, -105
ROWS_BY_MODE = {
    MODE_ZERO: [0, None, 6, None, None, None, None, 3, None],
    MODE_CLAMP: [0, 0, 6, 6, 0, 0, 6, 3, 0],
}


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", [MODE_ZERO, MODE_CLAMP])
def test_zero_and_clamp(name, dtype, mode, parallel):
    table = make_table(name, seed=3)
    bad, out = run(name, table, IDS, OFFSET, mode, dtype, parallel)
    assert bad == -1
    assert_same_bits(out, expected(name, table, ROWS_BY_MODE[mode], dtype), nan_meets_nan=True)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_wrap(name, parallel):
    table = make_table(name, seed=4)
    ids = [100, 99, 106, 93, 103]  # rows 0, -1, 6, -7, 3
    bad, out = run(name, table, ids, OFFSET, MODE_WRAP, np.float32, parallel)
    assert bad == -1
    assert_same_bits(out, expected(name, table, [0, 6, 6, 0, 3], np.float32), nan_meets_nan=True)
    # Beyond [-rows, rows) wrapping stops like an error: row 7 at 3, row -8 at 5.
    for bad_ids, first in (([100, 99, 101, 107, 92], 3), ([100, 99, 101, 106, 93, 92, 250], 5)):
        assert run(name, table, bad_ids, OFFSET, MODE_WRAP, np.float32, parallel)[0] == first


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("name", ["q4_0", "q6_k"])
@pytest.mark.parametrize("mode", [MODE_ERROR, 9, -1])
def test_error_reports_first_bad_position(name, mode, parallel):
    """Unknown modes behave as MODE_ERROR; in parallel the first bad position still wins."""
    table = make_table(name, seed=5)
    ids = np.full(200, 2)
    ids[[150, 37, 199, 120]] = [7, -1, 1000, 8]
    bad, _ = run(name, table, ids, 0, mode, np.float32, parallel)
    assert bad == 37
    good = np.arange(40) % ROWS
    bad, out = run(name, table, good, 0, mode, np.float32, parallel)
    assert bad == -1
    assert_same_bits(out, expected(name, table, list(good), np.float32), nan_meets_nan=True)


def test_empty_table_and_ids():
    empty = np.zeros((0, 18), np.uint8)
    assert run("q4_0", empty, [0, 1], 0, MODE_ZERO, np.float32, False)[1].any() == np.False_
    assert run("q4_0", empty, [0], 0, MODE_CLAMP, np.float32, True)[0] == 0
    assert run("q4_0", empty, np.zeros(0, np.int32), 0, MODE_ERROR, np.float32, True)[0] == -1


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
)
def test_any_integer_ids(dtype):
    table = make_table("q8_0", seed=6)
    ids = np.array([6, 0, 3], dtype)
    bad, out = run("q8_0", table, ids, 0, MODE_ERROR, np.float32, False)
    assert bad == -1
    assert_same_bits(out, expected("q8_0", table, [6, 0, 3], np.float32), nan_meets_nan=True)
    if dtype == np.uint64:  # above int64's range: out of range, never a negative id
        huge = np.array([1, 2**64 - 1], np.uint64)
        assert run("q8_0", table, huge, 0, MODE_WRAP, np.float32, False)[0] == 1


# ---- streamed stores --------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["q4_1", "q5_k"])
def test_streamed_output_unaligned(monkeypatch, name, dtype, parallel):
    """Non-temporal stores (large outputs) write the same values, at any output alignment."""
    monkeypatch.setattr(device, "DECODE_STREAM_MIN_BYTES", 0)
    table = make_table(name, seed=8)
    fmt = FORMATS[name]
    hidden = table.shape[1] // fmt.block_bytes * fmt.block_elements
    ids = np.array([5, 1, 0, 1000, 2, 6, 4, 3, 3])
    for skip in (0, 1, 3):
        backing = np.zeros(len(ids) * hidden + skip, dtype)
        out = backing[skip:].reshape(len(ids), hidden)
        bad = gather_dequantize(name, table, ids, 0, MODE_ZERO, out, parallel)
        assert bad == -1
        rows = [5, 1, 0, None, 2, 6, 4, 3, 3]
        assert_same_bits(out, expected(name, table, rows, dtype), nan_meets_nan=True)
        assert not backing[:skip].any()


# ---- argument checks --------------------------------------------------------------------------


def test_argument_errors():
    table = make_table("q4_k")
    out = np.zeros((2, 512), np.float32)  # cast below: no garbage NaNs
    ids = np.array([0, 1])
    with pytest.raises(ValueError, match="unknown quantization format 'q9_k'"):
        gather_dequantize("q9_k", table, ids, 0, MODE_ERROR, out, False)
    with pytest.raises(TypeError, match="uint8"):
        gather_dequantize("q4_k", table.view(np.int8), ids, 0, MODE_ERROR, out, False)
    with pytest.raises(ValueError, match="multiple of 144"):
        gather_dequantize("q4_k", table[:, :200], ids, 0, MODE_ERROR, out, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        gather_dequantize("q4_k", table[::2], ids, 0, MODE_ERROR, out, False)
    with pytest.raises(TypeError, match="integer"):
        gather_dequantize("q4_k", table, ids.astype(float), 0, MODE_ERROR, out, False)
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        gather_dequantize("q4_k", table, ids, 0, MODE_ERROR, out.astype(np.float64), False)
    with pytest.raises(ValueError, match="shape"):
        gather_dequantize("q4_k", table, ids, 0, MODE_ERROR, out[:, :256], False)
    with pytest.raises(ValueError, match="C-contiguous"):
        gather_dequantize(
            "q4_k", table, ids, 0, MODE_ERROR, np.empty((512, 2), np.float32).T, False
        )


def test_extreme_ids_and_offsets_do_not_overflow():
    table = make_table("q4_0", seed=10)
    lowest, highest = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    ids = np.array([lowest, highest, 5, lowest + 3], np.int64)
    bad, out = run("q4_0", table, ids, 3, MODE_CLAMP, np.float32, False)
    assert bad == -1
    assert_same_bits(out, expected("q4_0", table, [0, 6, 2, 0], np.float32), nan_meets_nan=True)
    assert run("q4_0", table, ids, 3, MODE_WRAP, np.float32, False)[0] == 0
    # A table whose ids reach past int64 (offset near the top): the ids that exist still map.
    bad, out = run(
        "q4_0", table, np.array([highest - 1]), highest - 3, MODE_ERROR, np.float32, True
    )
    assert bad == -1
    assert_same_bits(out, expected("q4_0", table, [2], np.float32), nan_meets_nan=True)
    bad, out = run("q4_0", table, np.array([lowest]), lowest - 2, MODE_ERROR, np.float32, False)
    assert bad == -1
    assert_same_bits(out, expected("q4_0", table, [2], np.float32), nan_meets_nan=True)
