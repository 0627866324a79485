"""MAX's `band_part` on every backend against numpy's triangles (`np.tril`, `np.triu`): each
band, `exclude`, batches of matrices, symbolic sizes, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Graph, TensorType, ops


def _reference(x: np.ndarray, lower: int | None, upper: int | None, exclude: bool) -> np.ndarray:
    ones = np.ones(x.shape[-2:], bool)
    band = ones
    if lower is not None:
        band = band & np.triu(ones, -lower)
    if upper is not None:
        band = band & np.tril(ones, upper)
    return np.where(~band if exclude else band, x, np.zeros((), x.dtype))


@pytest.mark.parametrize("lower", [None, 0, 1, 3])
@pytest.mark.parametrize("upper", [None, 0, 2])
@pytest.mark.parametrize("exclude", [False, True])
def test_band_part_matches_numpy(session, lower, upper, exclude):
    x = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5) + 1
    with Graph("band", input_types=[TensorType(DType.float32, ["batch", "m", "n"])]) as g:
        g.output(ops.band_part(g.inputs[0], lower, upper, exclude))
    got = session.load(g).execute(x)[0].to_numpy()
    assert got.tolist() == _reference(x, lower, upper, exclude).tolist()


def test_causal_mask_of_ints(session):
    x = np.ones((3, 3), np.int32)
    with Graph("causal", input_types=[TensorType(DType.int32, [3, 3])]) as g:
        g.output(ops.band_part(g.inputs[0], num_upper=0))
    assert session.load(g).execute(x)[0].to_numpy().tolist() == np.tril(x).tolist()


def test_minus_one_is_the_whole_triangle_as_in_max(session):
    x = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    with Graph("causal", input_types=[TensorType(DType.float32, [3, 4])]) as g:
        g.output(ops.band_part(g.inputs[0], num_lower=-1, num_upper=0))
    assert session.load(g).execute(x)[0].to_numpy().tolist() == np.tril(x).tolist()


def test_band_part_errors():
    with Graph(
        "e", input_types=[TensorType(DType.float32, [3, 4]), TensorType(DType.float32, [3])]
    ) as g:
        matrix, vector = g.inputs
        with pytest.raises(ValueError, match="at least 2 dimensions"):
            ops.band_part(vector)
        with pytest.raises(ValueError, match="must be non-negative"):
            ops.band_part(matrix, num_lower=-2)
        with pytest.raises(ValueError, match="out of bounds for dimension size 3"):
            ops.band_part(matrix, num_lower=3)
        with pytest.raises(ValueError, match="out of bounds for dimension size 4"):
            ops.band_part(matrix, num_upper=4)
