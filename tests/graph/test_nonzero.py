"""MAX's `nonzero` on every backend, against `numpy.argwhere`: ranks 1-3, floats with NaN and
-0.0, bools, the coordinates fed to `gather_nd`, a count other than `out_dim`, and a new name
for the count (native)."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Dim, Graph, TensorType, ops


def _model(session, x: np.ndarray, out_dim):
    with Graph("nonzero", input_types=[TensorType(DType.from_numpy(x.dtype), list(x.shape))]) as g:
        g.output(ops.nonzero(g.inputs[0], out_dim=out_dim))
    return session.load(g)


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.bool_])
def test_against_argwhere(session, shape, dtype):
    rng = np.random.default_rng(sum(shape))
    x = (rng.integers(-1, 2, shape) * rng.random(shape) * 4).astype(dtype)
    if dtype == np.float32:
        x.flat[0], x.flat[1] = np.nan, -0.0
    want = np.argwhere(x)
    got = _model(session, x, len(want)).execute(x)[0].to_numpy()
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_subnormal_values_are_nonzero(session, dtype):
    """XLA's CPU code compares subnormals as zero; numpy (and ember) count them."""
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([tiny, 1.0, 0.0, -0.0, -tiny, np.nan], dtype)
    want = np.argwhere(x)
    np.testing.assert_array_equal(_model(session, x, len(want)).execute(x)[0].to_numpy(), want)


def test_the_count_is_checked_and_feeds_gather_nd(session):
    types = [TensorType(DType.bool, ["seq"]), TensorType(DType.float32, ["kept", 2])]
    with Graph("kept", input_types=types) as g:
        keep, rows = g.inputs
        places = ops.nonzero(keep, out_dim=rows.shape[0])
        table = ops.constant(np.arange(12, dtype=np.float32).reshape(6, 2), DType.float32)
        g.output(ops.gather_nd(table, places) + rows)
    model = session.load(g)
    keep = np.array([0, 1, 0, 0, 1, 1], bool)
    got = model.execute(keep, np.zeros((3, 2), np.float32))[0].to_numpy()
    np.testing.assert_array_equal(got, np.arange(12, dtype=np.float32).reshape(6, 2)[keep])
    with pytest.raises(ValueError, match="3 elements are nonzero, and out_dim is 2"):
        model.execute(keep, np.zeros((2, 2), np.float32))


def test_a_new_name_is_bound_by_the_count_natively():
    """MAX's "newly generated dimension": natively the count binds it at each execution, for
    the nodes after (a constant's too); XLA compiles static shapes and refuses it by name."""
    from ember.engine import InferenceSession

    with Graph("fresh", input_types=[TensorType(DType.int32, [5])]) as g:
        places = ops.nonzero(g.inputs[0], out_dim="nnz")
        assert places.shape == ["nnz", 1]
        fixed = ops.nonzero(ops.constant(np.int32([0, 1, 1, 0, 1]), DType.int32), "m")
        g.output(places.reshape(["nnz"]) * 10, fixed.reshape(["m"]))
    model = InferenceSession(backend="native").load(g)
    for data in ([0, 3, 0, 3, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]):
        x = np.array(data, np.int32)
        scaled, fixed = (t.to_numpy() for t in model.execute(x))
        assert scaled.tolist() == (np.flatnonzero(x) * 10).tolist()
        assert fixed.tolist() == [1, 2, 4]
    with pytest.raises(ValueError, match="out_dim 'nnz' is bound by no graph input"):
        InferenceSession(backend="xla").load(g)  # at load, before any execution


def test_errors(session):
    with pytest.raises(ValueError, match="nonzero: 2 elements are nonzero, and out_dim is 1"):
        _model(session, np.array([0, 1, 2], np.int32), 1).execute(np.array([0, 1, 2], np.int32))
    huge = np.array([0, 1, 2], np.int32)
    refused = "out_dim 3298534883328 asks for a result of|out_dim is 3298534883328"
    with pytest.raises(ValueError, match=refused):  # XLA: before anything is made
        _model(session, huge, 3 * 2**40).execute(huge)
    with Graph("e", input_types=[TensorType(DType.int32, []), TensorType(DType.int32, [3])]) as g:
        scalar, vector = g.inputs
        with pytest.raises(ValueError, match="Scalar inputs not supported"):
            ops.nonzero(scalar, out_dim=1)
        with pytest.raises(ValueError, match="no axis of a graph input"):
            ops.nonzero(vector, out_dim=Dim("nnz") * 2)
