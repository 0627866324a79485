"""The head kernel for every format: rows decoded a few at a time into each thread's buffer,
then dotted by `rowdot`'s tiles. Bit for bit the dense kernel over the table as
`gguf.quants.dequantize` decodes it, whichever rows a call covers."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

from ember.engine.backends.native.kernels.decoded_rowdot import (
    DECODE_ROWS,
    ROW_BLOCK,
    decoded_rowdot,
)
from ember.engine.backends.native.kernels.rowdot import rowdot
from ember.quant import FORMATS
from ember.quant.samples import sample_table


def logits_of(fmt, hidden, table, parallel=True):
    out = np.full((hidden.shape[0], table.shape[0]), np.nan, np.float32)
    decoded_rowdot(fmt, hidden, np.ascontiguousarray(table), out, parallel=parallel)
    return out


@pytest.mark.parametrize("fmt", ["q4_0", "q5_k", "iq4_xs", "tq2_0"])
def test_logits_are_the_dense_kernels_over_the_decoded_table_bit_for_bit(fmt):
    table = sample_table(fmt, 2 * ROW_BLOCK + DECODE_ROWS + 3, 256, seed=1)
    hidden = np.random.default_rng(2).standard_normal((5, 256)).astype(np.float32)
    decoded = gguf_dequantize(table, GGMLQuantizationType(FORMATS[fmt].ggml_type))
    expected = np.empty((5, table.shape[0]), np.float32)
    rowdot(hidden, np.ascontiguousarray(decoded, dtype=np.float32), expected)
    for parallel in (True, False):
        got = logits_of(fmt, hidden, table, parallel)
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    for start, stop in [(0, 1), (3, DECODE_ROWS + 5), (ROW_BLOCK - 2, table.shape[0])]:
        shard = logits_of(fmt, hidden, table[start:stop])
        np.testing.assert_array_equal(
            shard.view(np.uint32), expected[:, start:stop].view(np.uint32)
        )


def test_bad_arguments_are_clear_errors():
    table = sample_table("q5_k", 3, 256)
    hidden, out = np.zeros((2, 256), np.float32), np.empty((2, 3), np.float32)
    with pytest.raises(ValueError, match="unknown format 'q9_z'"):
        decoded_rowdot("q9_z", hidden, table, out)
    with pytest.raises(TypeError, match="hidden and out must be float32 and the table uint8"):
        decoded_rowdot("q5_k", hidden, table.view(np.int8), out)
    with pytest.raises(ValueError, match=r"hidden \(2, 512\), q5_k table \(3, 176\)"):
        decoded_rowdot("q5_k", np.zeros((2, 512), np.float32), table, out)
