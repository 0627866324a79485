"""The dense LM-head kernel: float32 dot products of hidden states with a table's rows.

Checked against a float64 numpy reference within the bound the kernel's summation order
gives, and bit for bit against itself: a row's logit must not depend on which rows, tokens or
threads a call covers (so that a vocabulary-sharded head equals the unsharded one).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from conftest import assert_within_dot_bound
from numba import njit

from ember.engine.backends.native.kernels.compiled.dense_dot import (
    CHUNK,
    CHUNK_GROUPS,
    CHUNK_MIN_TOKENS,
)
from ember.engine.backends.native.kernels.rowdot import (
    LANES,
    ROW_BLOCK,
    rowdot,
    widen_float16,
)

EPS32 = float(np.finfo(np.float32).eps)
TABLE_DTYPES = [np.float32, ml_dtypes.bfloat16, np.float16]


def logits_of(hidden, table, parallel=True):
    out = np.full((hidden.shape[0], table.shape[0]), np.nan, np.float32)
    rowdot(hidden, table, out, parallel=parallel)
    return out


@pytest.mark.parametrize("dtype", TABLE_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("width", [1, LANES - 1, LANES, LANES + 1, 100, 4096 + 7])
def test_logits_match_float64_within_the_dot_bound(dtype, width):
    rng = np.random.default_rng(width)
    table = rng.standard_normal((3 * ROW_BLOCK + 5, width)).astype(dtype)
    hidden = rng.standard_normal((9, width)).astype(np.float32)  # groups of 4, and a rest
    assert_within_dot_bound(logits_of(hidden, table), hidden, table)


@pytest.mark.parametrize("dtype", TABLE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_row_range_gives_the_same_bits_as_the_full_table(dtype):
    """What a vocabulary shard computes is the slice of the unsharded logits, bit for bit,
    however the range falls on row pairs, thread blocks and token groups."""
    rng = np.random.default_rng(7)
    table = rng.standard_normal((5 * ROW_BLOCK + 3, 4096 + 5)).astype(dtype)
    hidden = rng.standard_normal((7, table.shape[1])).astype(np.float32)
    full = logits_of(hidden, table)
    for start, stop in [(0, 1), (1, 2), (3, 200), (ROW_BLOCK - 1, 3 * ROW_BLOCK + 1), (1, 323)]:
        for parallel in (True, False):
            shard = logits_of(hidden, table[start:stop], parallel)
            np.testing.assert_array_equal(
                shard.view(np.uint32), full[:, start:stop].view(np.uint32)
            )
    for tokens in ([0], [6], [1, 2, 3, 4, 5]):  # a token's logits do not depend on the batch
        alone = logits_of(np.ascontiguousarray(hidden[tokens]), table)
        np.testing.assert_array_equal(alone.view(np.uint32), full[tokens].view(np.uint32))


@pytest.mark.parametrize("dtype", TABLE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_large_batch_taken_a_chunk_of_the_width_at_a_time_has_each_tokens_bits(dtype):
    """From `CHUNK_MIN_TOKENS` grouped tokens the row pairs run a `CHUNK` of the width at a
    time (a partial last chunk, then the tail elements here), `CHUNK_GROUPS` token groups a
    pass: a token's logits are the bits it gets with a few others."""
    rng = np.random.default_rng(8)
    width = 2 * CHUNK + 3 * LANES + 5
    table = rng.standard_normal((ROW_BLOCK + 7, width)).astype(dtype)
    tokens = 4 * CHUNK_GROUPS + CHUNK_MIN_TOKENS + 2  # two passes of token groups, a rest
    hidden = rng.standard_normal((tokens, width)).astype(np.float32)
    batch = logits_of(hidden, table)
    for parallel in (True, False):
        assert_within_dot_bound(logits_of(hidden, table, parallel), hidden, table)
    for t in range(0, hidden.shape[0], 4):  # four tokens at a time: whole rows at once
        few = logits_of(np.ascontiguousarray(hidden[t : t + 4]), table)
        np.testing.assert_array_equal(few.view(np.uint32), batch[t : t + 4].view(np.uint32))


def test_nan_and_inf_in_the_hidden_states_follow_ieee():
    """NaN times anything, 0 included, is NaN: a token with a NaN has every logit NaN."""
    table = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
    hidden = np.array([[np.nan, 1.0], [np.inf, 2.0]], np.float32)
    logits = logits_of(hidden, table)
    assert np.isnan(logits[0]).all()
    assert logits[1, 0] == np.inf and np.isnan(logits[1, 1:]).all()  # inf * 0 is NaN


@njit
def _widen_all(bits, out):
    for i in range(bits.size):
        out[i] = widen_float16(bits[i])


def test_float16_widens_exactly_for_every_bit_pattern():
    bits = np.arange(1 << 16, dtype=np.uint16)
    out = np.empty(bits.size, np.float32)
    _widen_all(bits.view(np.int16), out)  # the kernel reads float16 tables as int16
    expected = bits.view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("width", [LANES, LANES + 1])
def test_bfloat16_rows_widen_exactly_in_the_kernel(width):
    """Every finite bfloat16 read by the kernel itself (its vector loads, and the scalar tail
    when the width leaves one): one-hot hidden states pick each table value out exactly."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    wide = bits.view(ml_dtypes.bfloat16).astype(np.float32)
    values = np.where(np.isfinite(wide), wide, 0).astype(ml_dtypes.bfloat16)
    table = np.zeros((values.size // LANES, width), ml_dtypes.bfloat16)
    table[:, :LANES] = values.reshape(-1, LANES)
    hidden = np.eye(width, dtype=np.float32)
    logits = logits_of(hidden, table)
    np.testing.assert_array_equal(logits, table.astype(np.float32).T)  # -0.0 sums to 0.0


def test_bad_arguments_are_clear_errors():
    hidden, table = np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32)
    out = np.empty((2, 3), np.float32)
    with pytest.raises(TypeError, match="hidden and out must be float32"):
        rowdot(hidden.astype(np.float64), table, out)
    with pytest.raises(TypeError, match="the table must be one of"):
        rowdot(hidden, table.astype(np.float64), out)
    with pytest.raises(ValueError, match=r"hidden \(2, 4\), table \(3, 5\) and out \(2, 3\)"):
        rowdot(hidden, np.zeros((3, 5), np.float32), out)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        rowdot(hidden, np.zeros((4, 3), np.float32).T, out)
