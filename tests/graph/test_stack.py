"""`ops.stack` (MAX's): values of one shape joined along a new axis, against numpy's `stack`."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Dim, Graph, TensorType, ops


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_matches_numpy(session, axis):
    parts = [np.arange(6, dtype=np.int32).reshape(2, 3) * k for k in range(3)]
    with Graph("s", input_types=[TensorType(DType.int32, [2, 3])] * 3) as g:
        out = ops.stack(g.inputs, axis=axis)
        g.output(out)
    [got] = session.load(g).execute(*parts)
    want = np.stack(parts, axis=axis)
    assert out.shape == list(want.shape) and np.array_equal(got.to_numpy(), want)


def test_one_value_and_symbolic_dims(session):
    with Graph("s", input_types=[TensorType(DType.float32, ["n"])]) as g:
        one = ops.stack([g.inputs[0]])
        pair = ops.stack([g.inputs[0], g.inputs[0] * 2], axis=1)
        assert one.shape == [1, Dim("n")] and pair.shape == [Dim("n"), 2]
        g.output(one, pair)
    x = np.arange(4, dtype=np.float32)
    one, pair = (t.to_numpy() for t in session.load(g).execute(x))
    assert np.array_equal(one, x[None]) and np.array_equal(pair, np.stack([x, 2 * x], axis=1))


def test_errors():
    types = [
        TensorType(DType.float32, [2, 3]),
        TensorType(DType.float32, [3, 2]),
        TensorType(DType.int32, [2, 3]),
    ]
    with Graph("bad", input_types=types):
        x, other, ints = Graph.current.inputs
        with pytest.raises(ValueError, match="Expected at least one value to stack"):
            ops.stack([])
        with pytest.raises(ValueError, match="one shape"):
            ops.stack([x, other])
        with pytest.raises(ValueError, match="All inputs to stack must have the same dtype"):
            ops.stack([x, ints])  # MAX's ValueError (and a TypeError)
        with pytest.raises(IndexError, match=r"Axis out of range .*\[-3, 2\], but got 3"):
            ops.stack([x, x], axis=3)  # MAX's IndexError and words
        with pytest.raises(IndexError, match="out of range"):
            ops.stack([x, x], axis=-4)
