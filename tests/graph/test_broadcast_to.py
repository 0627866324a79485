"""`ops.broadcast_to` (MAX's): numpy's rule over static and symbolic dims, a shape given as a
graph value with `out_dims`, and the errors, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops


@pytest.mark.parametrize(
    ("source", "target"),
    [((3,), (2, 3)), ((1, 3), (4, 3)), ((2, 1), (2, 5)), ((), (2, 2)), ((1,), (0,)),
     ((2, 3), (2, 3)), ((1, 1, 2), (3, 4, 2))],
)  # fmt: skip
def test_matches_numpy(session, source, target):
    x = np.arange(int(np.prod(source)), dtype=np.float32).reshape(source)
    with Graph("b", input_types=[TensorType(DType.float32, list(source))]) as g:
        out = ops.broadcast_to(g.inputs[0], list(target))
        assert out.shape == list(target)
        g.output(out)
    [got] = session.load(g).execute(x)
    got = got.to_numpy()
    assert got.flags.c_contiguous and np.array_equal(got, np.broadcast_to(x, target))


def test_symbolic_target_dims_take_their_sizes_from_the_inputs(session):
    types = [TensorType(DType.int64, [1]), TensorType(DType.int64, ["batch", "seq"])]
    with Graph("b", input_types=types) as g:
        k = g.inputs[0]
        per_token = ops.broadcast_to(k, ["batch", "seq"])
        bias = ops.constant(np.array([[1.5, 2.5]], np.float32), DType.float32).broadcast_to(
            ["batch", 2]
        )
        g.output(per_token, bias)
    model = session.load(g)
    for batch, seq in ((1, 1), (3, 4)):
        per_token, bias = (
            t.to_numpy() for t in model.execute(np.array([7]), np.zeros((batch, seq), np.int64))
        )
        assert np.array_equal(per_token, np.full((batch, seq), 7))
        assert np.array_equal(bias, np.tile([[1.5, 2.5]], (batch, 1)))


def test_a_shape_value_with_out_dims_is_checked_at_execution(session):
    types = [
        TensorType(DType.bfloat16, ["n"]),
        TensorType(DType.int64, [2]),
        TensorType(DType.int64, ["m", "n"]),
    ]
    with Graph("b", input_types=types) as g:
        x, shape, _ = g.inputs
        out = ops.broadcast_to(x, shape, out_dims=["m", "n"])
        assert out.shape == ["m", "n"] and out.dtype == DType.bfloat16
        g.output(out)
    model = session.load(g)
    x = np.arange(3).astype(DType.bfloat16.to_numpy())
    [got] = model.execute(x, np.array([2, 3]), np.zeros((2, 3), np.int64))
    assert np.array_equal(got.to_numpy(), np.broadcast_to(x, (2, 3)))
    with pytest.raises(
        ValueError, match=r"shape value is \[4, 3\] at this execution, but out_dims are \[2, 3\]"
    ):
        model.execute(x, np.array([4, 3]), np.zeros((2, 3), np.int64))


def test_errors():
    types = [TensorType(DType.float32, [6]), TensorType(DType.float32, ["d0"]),
             TensorType(DType.int64, [2]), TensorType(DType.float32, [2])]  # fmt: skip
    with Graph("bad", input_types=types):
        six, d0, shape, floats = Graph.current.inputs
        with pytest.raises(ValueError, match=r"dim Dim\(6\) of axis 0 is neither 1 nor Dim\(7\)"):
            ops.broadcast_to(six, [6, 7])
        with pytest.raises(ValueError, match="neither 1 nor"):
            ops.broadcast_to(d0, ["d1", "d2"])
        with pytest.raises(ValueError, match="more dims than the target"):
            ops.broadcast_to(six, [])
        with pytest.raises(ValueError, match="needs out_dims"):
            ops.broadcast_to(six, shape)
        with pytest.raises(ValueError, match="one size for each of out_dims"):
            ops.broadcast_to(six, shape, out_dims=[1, 2, 6])
        with pytest.raises(TypeError, match="holds integers"):
            ops.broadcast_to(six, floats, out_dims=[2, 6])
        with pytest.raises(ValueError, match="no axis of a graph input"):
            ops.broadcast_to(six, ["unbound", 6])
    with (
        Graph(
            "elsewhere",
            input_types=[
                TensorType(DType.float32, [1]),
                TensorType(DType.float32, ["n"], DeviceRef.CPU(1)),
            ],
        ),
        pytest.raises(ValueError, match="no axis of a graph input on cpu:0"),
    ):
        ops.broadcast_to(Graph.current.inputs[0], ["n"])
