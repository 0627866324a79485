"""The numpy row gather that serves while kernels compile gives what the compiled kernel gives:
the same bytes, the same first bad position, for every id dtype, mode and offset."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gather_kernel import ID_DTYPES, random_table, reference, tricky_ids

from ember.engine.backends.native.kernels.gather import gather_rows
from ember.engine.backends.native.kernels.numpy_gather import numpy_gather_rows
from ember.engine.backends.native.kernels.out_of_range import CLAMP as MODE_CLAMP
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR
from ember.engine.backends.native.kernels.out_of_range import SKIP as MODE_SKIP
from ember.engine.backends.native.kernels.out_of_range import WRAP as MODE_WRAP
from ember.engine.backends.native.kernels.out_of_range import ZERO as MODE_ZERO

MODES = [MODE_ERROR, MODE_ZERO, MODE_CLAMP, MODE_WRAP, MODE_SKIP]


def both(table, ids, offset, mode):
    """(first bad, bytes) from the compiled kernel and from numpy, on the same prefilled out."""
    results = []
    for gather in (gather_rows, numpy_gather_rows):
        out = np.full((ids.size, table.shape[1]), 7, table.dtype)
        args = (table, ids, offset, mode, out) + ((False,) if gather is gather_rows else ())
        bad = gather(*args)
        results.append((bad, out.view(np.uint8).tobytes() if bad < 0 else None))
    return results


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("id_dtype", ID_DTYPES)
def test_matches_the_compiled_kernel(id_dtype, mode):
    rng = np.random.default_rng(11)
    rows = 13
    info = np.iinfo(id_dtype)
    table = random_table(rng, rows, 3, np.float32)
    offsets = {0, 3, -3, 100, -100, 2**40, -(2**40), info.max, info.min, info.max - 5, 2**70}
    for offset in sorted(offsets):
        for _ in range(4):
            ids = tricky_ids(rng, id_dtype, offset, rows, 29)
            compiled, numpy = both(table, ids, offset, mode)
            assert numpy == compiled, (offset, ids)


@pytest.mark.parametrize("mode", [MODE_ERROR, MODE_ZERO, MODE_CLAMP, MODE_WRAP])
def test_matches_a_reference_in_python_integers(mode):
    rng = np.random.default_rng(5)
    table = random_table(rng, 9, 4, np.float16)
    ids = tricky_ids(rng, np.int16, 2, 9, 50)
    expected, expected_bad = reference(table, ids, 2, mode)
    out = np.zeros_like(expected)
    assert numpy_gather_rows(table, ids, 2, mode, out) == expected_bad
    if expected_bad < 0:
        assert out.tobytes() == expected.tobytes()


@settings(max_examples=200, deadline=None)
@given(
    dtype=st.sampled_from(ID_DTYPES),
    mode=st.sampled_from(MODES),
    rows=st.integers(0, 6),
    far=st.integers(-(2**65), 2**65),
    near=st.integers(-8, 8),
    data=st.data(),
)
def test_any_ids_and_offset(dtype, mode, rows, far, near, data):
    info = np.iinfo(dtype)
    values = data.draw(st.lists(st.integers(int(info.min), int(info.max)), max_size=12))
    offset = values[0] + near if values and near % 3 else far  # mostly near an id
    ids = np.array(values, dtype)
    table = np.arange(rows * 2, dtype=np.int32).reshape(rows, 2)
    compiled, numpy = both(table, ids, offset, mode)
    assert numpy == compiled


def test_empty_table_clamps_as_an_error():
    table = np.zeros((0, 2), np.float32)
    out = np.zeros((1, 2), np.float32)
    assert numpy_gather_rows(table, np.array([0]), 0, MODE_CLAMP, out) == 0


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown out-of-range mode"):
        numpy_gather_rows(np.zeros((1, 1)), np.array([0]), 0, 99, np.zeros((1, 1)))
