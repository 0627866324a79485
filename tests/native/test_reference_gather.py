"""The fallback for formats without a compiled decoder (bytes gathered, then `ember.quant`'s
reference decoder) behaves exactly as the compiled kernels do: same values, modes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_bits
from test_dequantize_gather import DTYPES, NAMES, make_table

from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
from ember.engine.backends.native.kernels.out_of_range import CLAMP as MODE_CLAMP
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR
from ember.engine.backends.native.kernels.out_of_range import SKIP as MODE_SKIP
from ember.engine.backends.native.kernels.out_of_range import WRAP as MODE_WRAP
from ember.engine.backends.native.kernels.out_of_range import ZERO as MODE_ZERO
from ember.engine.backends.native.kernels.reference_gather import reference_gather
from ember.quant import FORMATS

MODES = [MODE_ERROR, MODE_ZERO, MODE_CLAMP, MODE_WRAP, MODE_SKIP]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_reference_gather_matches_the_compiled_kernel(name, mode, dtype):
    table = make_table(name, seed=3)
    fmt = FORMATS[name]
    hidden = table.shape[1] // fmt.block_bytes * fmt.block_elements
    ids = np.array([5, 3, 12, 0, 2, 6]) if mode != MODE_ERROR else np.array([5, 3, 4, 2])
    outs = []
    for decode in (reference_gather, None):
        out = np.full((ids.size, hidden), 7, dtype)
        if decode is None:
            bad = gather_dequantize(name, table, ids, 2, mode, out, False)
        else:
            bad = decode(fmt, table, ids, 2, mode, out)
        outs.append((bad, out))
    (bad, got), (want_bad, want) = outs
    assert bad == want_bad
    if bad < 0:
        assert_same_bits(got, want, nan_meets_nan=True)


def test_a_bad_id_stops_the_fallback_at_its_position():
    table = make_table("q4_k")
    out = np.zeros((3, 512), np.float32)
    assert reference_gather(FORMATS["q4_k"], table, np.array([1, 99, 2]), 0, MODE_ERROR, out) == 1
