"""`ops.gather_nd` (MAX's): its type rule and errors at build, and its values on every backend
against numpy's advanced indexing, batch dims, negative and out-of-range indices included."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.errors import OutOfRangeError
from ember.graph import DeviceRef, Graph, TensorType, ops


def reference(source: np.ndarray, indices: np.ndarray, batch_dims: int) -> np.ndarray:
    """Element by element, from the definition."""
    k = indices.shape[-1]
    lead = indices.shape[:-1]
    out = np.empty((*lead, *source.shape[batch_dims + k :]), source.dtype)
    for position in np.ndindex(*lead):
        vector = [int(i) for i in indices[position]]
        vector = [i + source.shape[batch_dims + j] if i < 0 else i for j, i in enumerate(vector)]
        out[position] = source[(*position[:batch_dims], *vector)]
    return out


def run(session, source, indices, batch_dims=0):
    types = [
        TensorType(DType.from_numpy(source.dtype), list(source.shape)),
        TensorType(DType.from_numpy(indices.dtype), list(indices.shape)),
    ]
    with Graph("gather_nd", input_types=types) as g:
        g.output(ops.gather_nd(*g.inputs, batch_dims=batch_dims))
    return session.load(g).execute(source, indices)[0].to_numpy()


CASES = [  # source shape, indices shape (the last: k), batch_dims
    ((5, 7), (3, 2), 0),  # elements
    ((5, 7, 4), (3, 1), 0),  # rows
    ((5, 7, 4), (2, 3, 2), 0),  # slices, indices of rank 3
    ((3, 5, 7, 4), (3, 6, 2), 1),  # a batch dim
    ((2, 3, 5, 4), (2, 3, 4, 1), 2),  # two batch dims
    ((5, 7), (0, 2), 0),  # no index vectors
    ((3, 5), (3, 2, 0), 1),  # empty index vectors: whole slices
    ((4, 5), (3, 0), 0),  # empty index vectors, no batch dim: the whole input, thrice
    ((4, 5), (0,), 0),  # one empty vector: the whole input
    ((5, 7), (2,), 0),  # one full vector: a scalar
]


@pytest.mark.parametrize(("source_shape", "indices_shape", "batch_dims"), CASES)
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.uint8])
def test_gather_nd_matches_the_definition(
    session, source_shape, indices_shape, batch_dims, index_dtype
):
    rng = np.random.default_rng(sum(source_shape))
    source = rng.standard_normal(source_shape).astype(np.float32)
    dims = source_shape[batch_dims : batch_dims + indices_shape[-1]]
    columns = [rng.integers(0, d, indices_shape[:-1]) for d in dims]
    indices = np.stack(columns, axis=-1) if columns else np.zeros(indices_shape, np.int64)
    if index_dtype != np.uint8 and indices.size:
        indices[(0,) * (indices.ndim - 1)] -= np.array(dims)  # negative: from the end
    indices = indices.astype(index_dtype).reshape(indices_shape)
    got = run(session, source, indices, batch_dims)
    want = reference(source, indices, batch_dims)
    assert got.shape == want.shape and got.tobytes() == want.tobytes()
    source[...] = 0  # the result is the caller's own, whatever the input becomes
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("index_dtype", [np.int8, np.uint64])
def test_narrow_and_wide_index_types_index_a_long_dim(session, index_dtype):
    """int8's -1 on a dim of 200 is 199, which int8 cannot hold; uint64 ids compare as they
    are."""
    source = np.arange(600, dtype=np.float32).reshape(200, 3)
    indices = np.array([[-1, 2], [127, 0]] if index_dtype == np.int8 else [[199, 2], [127, 0]])
    got = run(session, source, indices.astype(index_dtype))
    np.testing.assert_array_equal(got, [source[199, 2], source[127, 0]])
    with pytest.raises(OutOfRangeError, match="id 18446744073709551615 at position"):
        run(session, source, np.array([[2**64 - 1, 0]], np.uint64))


def test_gather_nd_of_bfloat16_keeps_its_bits(session):
    source = np.arange(24, dtype=np.float32).reshape(4, 6).astype(ml_dtypes.bfloat16)
    indices = np.array([[3, 5], [0, 0], [-1, -6]], np.int64)
    got = run(session, source, indices)
    assert got.dtype == ml_dtypes.bfloat16
    assert got.tobytes() == source[[3, 0, 3], [5, 0, 0]].tobytes()


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([[0, 7]], r"id 7 at position \(0,\) is out of range: axis 1 has size 7"),
        ([[1, 1], [-6, 0]], r"id -6 at position \(1,\) is out of range: the table has 5 rows"),
    ],
)
def test_an_index_outside_its_dim_raises_naming_it(session, indices, message):
    source = np.zeros((5, 7), np.float32)
    with pytest.raises(OutOfRangeError, match=message):
        run(session, source, np.array(indices, np.int64))


def test_the_type_rule_and_its_errors():
    types = [
        TensorType(DType.bfloat16, ["a", "b", "c", "d", "e"]),
        TensorType(DType.int32, ["a", "f", 3]),
        TensorType(DType.float32, ["a", 3]),
        TensorType(DType.int64, ["a", "k"]),
        TensorType(DType.int64, ["x", 2]),
        TensorType(DType.int64, [2], DeviceRef.CPU(1)),
    ]
    with Graph("types", input_types=types) as g:
        source, indices, floats, symbolic, other_batch, elsewhere = g.inputs
        out = ops.gather_nd(source, indices, batch_dims=1)
        assert (out.dtype, out.shape) == (DType.bfloat16, ["a", "f", "e"])
        assert ops.gather_nd(source, indices).shape == ["a", "f", "d", "e"]
        with pytest.raises(TypeError, match="integer dtype"):
            ops.gather_nd(source, floats)
        with pytest.raises(ValueError, match="integer dtype"):  # MAX's class, too
            ops.gather_nd(source, floats)
        with pytest.raises(ValueError, match="must be static"):
            ops.gather_nd(source, symbolic)
        with pytest.raises(ValueError, match="batch_dims must be an int >= 0"):
            ops.gather_nd(source, indices, batch_dims=-1)
        with pytest.raises(ValueError, match="leaves indices"):
            ops.gather_nd(source, indices, batch_dims=3)
        with pytest.raises(ValueError, match="need an input of rank 5 or more"):
            ops.gather_nd(source[:, :, :, :, 0], indices, batch_dims=2)
        with pytest.raises(ValueError, match="must have the same first 1 dims"):
            ops.gather_nd(source, other_batch, batch_dims=1)
        with pytest.raises(ValueError, match="same device"):
            ops.gather_nd(source, elsewhere)
        with pytest.raises(ValueError, match="last axis"):
            ops.gather_nd(source, ops.constant(1, DType.int64))
