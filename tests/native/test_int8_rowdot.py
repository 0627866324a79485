"""The 8-bit-activation head kernel (`int8_activations=True`): logits within the bound its
docstring derives of a float64 product with the table as `gguf.quants.dequantize` decodes it,
and a row's logit the same whichever rows and tokens a call covers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_within_int8_bound
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

from ember.engine.backends.native.kernels.int8_rowdot import (
    BLOCK,
    INT8_FORMATS,
    ROW_BLOCK,
    int8_rowdot,
    quantize_activations,
)
from ember.engine.backends.native.kernels.quantized_rowdot import quantized_rowdot
from ember.quant import FORMATS
from ember.quant.samples import sample_table

pytestmark = pytest.mark.skipif(not INT8_FORMATS, reason="the CPU lacks AVX2")


def decoded(fmt, table):
    return gguf_dequantize(table, GGMLQuantizationType(FORMATS[fmt].ggml_type)).astype(np.float64)


def logits_of(fmt, hidden, table, parallel=True):
    out = np.full((hidden.shape[0], table.shape[0]), np.nan, np.float32)
    int8_rowdot(fmt, hidden, table, out, parallel=parallel)
    return out


def states(tokens, width, seed):
    hidden = np.random.default_rng(seed).standard_normal((tokens, width)).astype(np.float32)
    hidden[0, 3] = 40.0  # an outlier: its block's other values keep few levels
    if tokens > 1:
        hidden[1, :BLOCK] = 0.0  # an all-zero block
    return hidden


@pytest.mark.parametrize("fmt", INT8_FORMATS)
@pytest.mark.parametrize("tokens", [1, 2, 3, 5])
def test_logits_are_within_the_derived_bound_of_float64(fmt, tokens):
    table = sample_table(fmt, 2 * ROW_BLOCK + 9, 1024, seed=tokens)  # three spans, the last short
    hidden = states(tokens, 1024, seed=tokens)
    exact = np.empty((tokens, table.shape[0]), np.float32)
    quantized_rowdot(fmt, hidden, table, exact)
    for parallel in (True, False):
        logits = logits_of(fmt, hidden, table, parallel)
        assert_within_int8_bound(logits, hidden, decoded(fmt, table), block=BLOCK)
        assert np.abs(logits - exact).max() > 1e-3  # quantized, not taken as they are


@pytest.mark.parametrize("fmt", INT8_FORMATS)
def test_a_row_range_gives_the_same_bits_as_the_full_table(fmt):
    table = sample_table(fmt, 2 * ROW_BLOCK + 5, 512, seed=3)
    hidden = states(4, 512, seed=4)
    full = logits_of(fmt, hidden, table)
    for start, stop in [(0, 1), (2, 70), (63, 197)]:
        shard = logits_of(fmt, hidden, np.ascontiguousarray(table[start:stop]))
        np.testing.assert_array_equal(shard.view(np.uint32), full[:, start:stop].view(np.uint32))
    for first, stop in [(2, 3), (1, 3), (0, 3)]:  # fewer tokens than a tile: rows one by one
        alone = logits_of(fmt, np.ascontiguousarray(hidden[first:stop]), table)
        np.testing.assert_array_equal(alone.view(np.uint32), full[first:stop].view(np.uint32))


def test_activations_are_levels_in_range_with_one_scale_per_block():
    hidden = states(3, 512, seed=5)
    hidden[2, 300] = np.nan
    xq, dx, sums = quantize_activations(hidden)
    assert xq.dtype == np.int8 and np.abs(xq.astype(np.int32)).max() == 127
    assert dx.shape == (3, 2) and dx[1, 0] == 0 and np.isnan(dx[2, 1])
    blocks = hidden[0].reshape(2, BLOCK)
    np.testing.assert_allclose(dx[0], np.abs(blocks).max(axis=1) / 127, rtol=1e-7)
    assert np.abs(xq[0] * np.repeat(dx[0], BLOCK) - hidden[0]).max() <= dx[0].max() / 2 + 1e-6
    assert sums.dtype == np.int32
    np.testing.assert_array_equal(sums, xq.reshape(3, 32, 16).sum(axis=-1, dtype=np.int64))


def test_a_subnormal_scale_keeps_every_level_in_range_and_its_sign():
    """Under ``127 * 2**-126`` a block's scale is subnormal: rounded to nearest it may fall
    short of ``max|x| / 127``, and the largest level past 127 would wrap to a negative int8."""
    rng = np.random.default_rng(8)
    for absmax in (2.5e-43, 1e-40, 3e-39, 1e-37, 1.2e-36):
        hidden = (rng.uniform(-1, 1, (1, BLOCK)) * absmax).astype(np.float32)
        hidden[0, :2] = [absmax, -absmax]
        xq, dx, _ = quantize_activations(hidden)
        assert np.abs(xq.astype(np.int32)).max() <= 127
        assert xq[0, 0] > 0 > xq[0, 1] and (np.sign(xq) * np.sign(hidden) >= 0).all()
        assert np.abs(xq[0].astype(np.float64) * dx[0, 0] - hidden[0]).max() <= dx[0, 0] / 2


def test_nan_in_the_hidden_states_makes_that_tokens_logits_nan():
    table = sample_table("q4_k", 4, 512, seed=6)
    hidden = states(2, 512, seed=7)
    hidden[1, 400] = np.nan
    logits = logits_of("q4_k", hidden, table)
    assert np.isfinite(logits[0]).all() and np.isnan(logits[1]).all()


def test_a_format_without_an_integer_kernel_is_a_clear_error():
    with pytest.raises(ValueError, match="no integer kernel for 'q8_0'"):
        int8_rowdot("q8_0", np.zeros((1, 32), np.float32), np.zeros((1, 34), np.uint8),
                    np.zeros((1, 1), np.float32))  # fmt: skip
