"""The fused quantized head kernel: blocks decoded in registers and dotted with every token.

Checked bit for bit against the dense kernel (`rowdot`) over the table as
`gguf.quants.dequantize` decodes it, which is itself checked against float64; and against
itself: a row's logit must not depend on which rows, tokens or threads a call covers.
"""

from __future__ import annotations

import numpy as np
import pytest
from block_fields import F16_FIELDS, set_f16
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

from ember.engine.backends.native.kernels.quantized_rowdot import (
    FUSED_FORMATS,
    ROW_BLOCK,
    quantized_rowdot,
)
from ember.engine.backends.native.kernels.rowdot import rowdot
from ember.quant import FORMATS
from ember.quant.samples import sample_table


def decoded(fmt, table):
    values = gguf_dequantize(table, GGMLQuantizationType(FORMATS[fmt].ggml_type))
    return np.ascontiguousarray(values, dtype=np.float32)


def logits_of(fmt, hidden, table, parallel=True):
    out = np.full((hidden.shape[0], table.shape[0]), np.nan, np.float32)
    quantized_rowdot(fmt, hidden, table, out, parallel=parallel)
    return out


def dense_logits(hidden, table):
    out = np.empty((hidden.shape[0], table.shape[0]), np.float32)
    rowdot(hidden, table, out)
    return out


@pytest.mark.parametrize("fmt", FUSED_FORMATS)
@pytest.mark.parametrize("tokens", [1, 3, 4, 9])
def test_logits_are_the_dense_kernels_over_the_decoded_table_bit_for_bit(fmt, tokens):
    """Rows in fours, pairs and singles, tokens in groups of four and alone, both kernels."""
    table = sample_table(fmt, 2 * ROW_BLOCK + 7, 512, seed=tokens)
    hidden = np.random.default_rng(tokens).standard_normal((tokens, 512)).astype(np.float32)
    expected = dense_logits(hidden, decoded(fmt, table))
    for parallel in (True, False):
        np.testing.assert_array_equal(
            logits_of(fmt, hidden, table, parallel).view(np.uint32), expected.view(np.uint32)
        )


NONFINITE_F16 = np.array([0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0xFD55, 0x3C00], np.uint16)
"""inf, -inf, NaNs of either sign with and without payloads, and 1 beside them."""


@pytest.mark.parametrize("fmt", FUSED_FORMATS)
def test_nan_and_infinite_scales_give_the_dense_kernels_logits(fmt):
    """A block's NaN or infinite scale, alone or beside another, makes the logits the dense
    kernel makes over the decoded table: NaN where it has NaN (of whichever payload the sums
    met first), the same bits everywhere else."""
    table = sample_table(fmt, 2 * ROW_BLOCK + 3, 512, seed=5)
    block_bytes = FORMATS[fmt].block_bytes
    blocks = table.reshape(-1, block_bytes)
    rng = np.random.default_rng(6)
    chosen = rng.random(len(blocks)) < 0.25
    changed = blocks[chosen]
    for at in F16_FIELDS[fmt]:
        set_f16(changed, at, rng.choice(NONFINITE_F16, len(changed)))
    blocks[chosen] = changed
    hidden = np.random.default_rng(7).standard_normal((5, 512)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        expected = dense_logits(hidden, decoded(fmt, table))
    assert np.isnan(expected).any() and np.isfinite(expected).any()
    nan = np.isnan(expected)
    for parallel in (True, False):
        logits = logits_of(fmt, hidden, table, parallel)
        np.testing.assert_array_equal(np.isnan(logits), nan)
        np.testing.assert_array_equal(logits[~nan].view(np.uint32), expected[~nan].view(np.uint32))


@pytest.mark.parametrize("fmt", FUSED_FORMATS)
def test_a_row_range_gives_the_same_bits_as_the_full_table(fmt):
    """What a vocabulary shard computes is the slice of the unsharded logits, bit for bit."""
    table = sample_table(fmt, 3 * ROW_BLOCK + 5, 256, seed=7)
    hidden = np.random.default_rng(8).standard_normal((6, 256)).astype(np.float32)
    full = logits_of(fmt, hidden, table)
    for start, stop in [(0, 1), (1, 3), (3, 200), (ROW_BLOCK - 1, 2 * ROW_BLOCK + 2)]:
        shard = logits_of(fmt, hidden, np.ascontiguousarray(table[start:stop]))
        np.testing.assert_array_equal(shard.view(np.uint32), full[:, start:stop].view(np.uint32))
    for tokens in ([0], [5], [1, 2, 3, 4, 5]):  # a token's logits do not depend on the batch
        alone = logits_of(fmt, np.ascontiguousarray(hidden[tokens]), table)
        np.testing.assert_array_equal(alone.view(np.uint32), full[tokens].view(np.uint32))


def test_nan_in_the_hidden_states_makes_that_tokens_logits_nan():
    table = sample_table("q8_0", 5, 64, seed=1)
    hidden = np.ones((2, 64), np.float32)
    hidden[1, 40] = np.nan
    logits = logits_of("q8_0", hidden, table)
    assert np.isfinite(logits[0]).all() and np.isnan(logits[1]).all()


def test_bad_arguments_are_clear_errors():
    table = sample_table("q4_k", 3, 256)
    hidden, out = np.zeros((2, 256), np.float32), np.empty((2, 3), np.float32)
    with pytest.raises(ValueError, match="no fused kernel for 'q5_k'"):
        quantized_rowdot("q5_k", hidden, table, out)
    with pytest.raises(TypeError, match="hidden and out must be float32 and the table uint8"):
        quantized_rowdot("q4_k", hidden.astype(np.float64), table, out)
    with pytest.raises(ValueError, match=r"hidden \(2, 512\), q4_k table \(3, 144\)"):
        quantized_rowdot("q4_k", np.zeros((2, 512), np.float32), table, out)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        quantized_rowdot("q4_k", np.zeros((256, 2), np.float32).T, table, out)


@pytest.mark.parametrize("fmt", FUSED_FORMATS)
def test_random_blocks_give_the_dense_kernels_bits(fmt):
    """Blocks of random bytes (every level, every 6-bit scale and minimum, in every position
    of a block) with finite fp16 scales of either sign, against gguf's decoding."""
    spec = FORMATS[fmt]
    rng = np.random.default_rng(3)
    blocks = 4
    table = rng.integers(0, 256, (2 * ROW_BLOCK + 3, blocks * spec.block_bytes), dtype=np.uint8)
    halves = {"q4_k": (0, 2), "q6_k": (208,), "q8_0": (0,)}[fmt]
    view = table.reshape(table.shape[0], blocks, spec.block_bytes)
    for at in halves:  # scales of either sign, from tiny to large, never inf or NaN
        scale = rng.standard_normal(view.shape[:2]) * 10.0 ** rng.integers(-6, 3, view.shape[:2])
        view[:, :, at : at + 2] = (
            scale.astype(np.float16).view(np.uint8).reshape(*view.shape[:2], 2)
        )
    hidden = rng.standard_normal((5, blocks * spec.block_elements)).astype(np.float32)
    expected = dense_logits(hidden, decoded(fmt, table))
    assert np.isfinite(expected).all()
    for parallel in (True, False):
        np.testing.assert_array_equal(
            logits_of(fmt, hidden, table, parallel).view(np.uint32), expected.view(np.uint32)
        )
