"""`ops.concat` (MAX's): its type rule and errors, and its values on every backend."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Dim, Graph, TensorType, ops


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.int64, np.bool_])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_matches_numpy(session, dtype, axis):
    rng = np.random.default_rng(3)
    shapes = [(2, 3), (2, 3), (2, 3)]
    sizes = [1, 4, 0]  # along the axis: one value is empty there
    parts = []
    for shape, size in zip(shapes, sizes, strict=True):
        shape = list(shape)
        shape[axis] = size
        parts.append((rng.standard_normal(shape) * 3).astype(dtype))
    types = [TensorType(DType.from_numpy(p.dtype), list(p.shape)) for p in parts]
    with Graph("concat", input_types=types) as g:
        g.output(ops.concat(g.inputs, axis=axis))
    [got] = session.load(g).execute(*parts)
    want = np.concatenate(parts, axis=axis)
    assert got.to_numpy().dtype == want.dtype and got.to_numpy().tobytes() == want.tobytes()


def test_concat_of_symbolic_dims_adds_them(session):
    types = [TensorType(DType.int32, ["n", 2]), TensorType(DType.int32, [3, 2])]
    with Graph("concat", input_types=types) as g:
        joined = ops.concat(g.inputs)
        assert joined.shape == [Dim("n") + 3, 2]
        g.output(joined)
    a, b = np.arange(10, dtype=np.int32).reshape(5, 2), np.zeros((3, 2), np.int32)
    [got] = session.load(g).execute(a, b)
    np.testing.assert_array_equal(got.to_numpy(), np.concatenate([a, b]))


def test_concat_errors():
    types = [
        TensorType(DType.float32, [2, 3]),
        TensorType(DType.float32, [2, 4]),
        TensorType(DType.int32, [2, 3]),
        TensorType(DType.float32, [2, 3], DeviceRef.CPU(1)),
        TensorType(DType.float32, [2, 3, 1]),
    ]
    with Graph("bad", input_types=types) as g:
        x, wider, ints, elsewhere, deeper = g.inputs
        assert ops.concat([x, wider], axis=1).shape == [2, 7]
        with pytest.raises(ValueError, match="differ off axis 0, on axis 1"):
            ops.concat([x, wider])
        with pytest.raises(TypeError, match="dtypes differ"):
            ops.concat([x, ints])
        with pytest.raises(ValueError, match="same device"):
            ops.concat([x, elsewhere])
        with pytest.raises(ValueError, match="ranks differ"):
            ops.concat([x, deeper])
        with pytest.raises(IndexError, match="axis 2 is out of range"):
            ops.concat([x, x], axis=2)
        with pytest.raises(ValueError, match="at least one"):
            ops.concat([])
