"""MAX's `nn.clamp` on every backend, against `numpy.clip`: both bounds, one, none; floats
with NaN and infinities, and int16; a bound the dtype cannot hold is refused."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.graph import Graph, TensorType
from ember.graph.errors import GraphTypeError


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_against_numpy_clip(session, dtype):
    x = np.arange(100, dtype=dtype).reshape(10, 10)
    if dtype == np.float32:
        x.flat[:3] = [np.nan, -np.inf, np.inf]
    with Graph("clamp", input_types=[TensorType(DType.from_numpy(x.dtype), [10, 10])]) as g:
        v = g.inputs[0]
        g.output(nn.clamp(v, min=10, max=20), nn.clamp(v), nn.clamp(v, min=10), nn.clamp(v, max=50))
    both, none, low, high = (t.to_numpy() for t in session.load(g).execute(x))
    np.testing.assert_array_equal(both, np.clip(x, 10, 20))
    np.testing.assert_array_equal(none, x)
    np.testing.assert_array_equal(low, np.clip(x, 10, None))
    np.testing.assert_array_equal(high, np.clip(x, None, 50))
    assert both.dtype == dtype


def test_a_bound_the_dtype_cannot_hold():
    with (
        Graph("bad", input_types=[TensorType(DType.int8, [3])]) as g,
        pytest.raises(GraphTypeError),
    ):
        nn.clamp(g.inputs[0], max=300)
