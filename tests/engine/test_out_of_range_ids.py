"""`out_of_range_ids`, the host-side check every backend shares: which ids lie outside the
table, compared exactly (against Python integers here), and the error naming the first."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ember.errors import OutOfRangeError, out_of_range_ids

DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.uint64]


def reference(ids: np.ndarray, size: int, wrap: bool) -> np.ndarray:
    low = -size if wrap else 0
    return np.array([not low <= int(i) < size for i in ids.reshape(-1)]).reshape(ids.shape)


@st.composite
def ids_and_size(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    info = np.iinfo(dtype)
    size = draw(st.integers(0, 300))
    edges = [info.min, info.max, 0, size - 1, size, -size, -size - 1]
    value = st.one_of(
        st.sampled_from([e for e in edges if info.min <= e <= info.max]),
        st.integers(int(info.min), int(info.max)),
    )
    shape = draw(st.sampled_from([(0,), (5,), (2, 3), ()]))
    values = draw(st.lists(value, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(values, dtype).reshape(shape), size


@given(ids_and_size(), st.sampled_from(["zero", "clamp"]))
def test_marks_exactly_the_ids_outside_the_table(case, out_of_range):
    ids, size = case
    want = reference(ids, size, wrap=False)
    got = out_of_range_ids(ids, size, out_of_range)
    if not want.any():
        assert got is None
    else:
        np.testing.assert_array_equal(got, want)


@given(ids_and_size(), st.sampled_from(["error", "wrap"]))
def test_raises_for_the_first_id_outside_the_table(case, out_of_range):
    ids, size = case
    want = reference(ids, size, wrap=out_of_range == "wrap")
    if not want.any():
        assert out_of_range_ids(ids, size, out_of_range) is None
        return
    at = int(np.flatnonzero(want)[0])
    position = np.unravel_index(at, ids.shape)
    with pytest.raises(OutOfRangeError) as raised:
        out_of_range_ids(ids, size, out_of_range)
    assert f"id {int(ids.reshape(-1)[at])} at position {tuple(map(int, position))}" in str(
        raised.value
    )


def test_the_error_names_the_axis_the_ids_index():
    ids = np.array([[0, 2**64 - 1]], np.uint64)
    with pytest.raises(OutOfRangeError, match=rf"id {2**64 - 1} at position \(0, 1\).*axis 2"):
        out_of_range_ids(ids, 7, "error", axis=2)
    with pytest.raises(IndexError, match=r"\[-7, 7\)"):
        out_of_range_ids(np.array([-8], np.int8), 7, "wrap", axis=0)
