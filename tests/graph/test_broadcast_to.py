"""`ops.broadcast_to` (MAX's): numpy's rule over static and symbolic dims, a shape given as a
graph value with `out_dims`, and the errors, on every backend."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ember.driver import CPU
from ember.dtype import DType
from ember.graph import DeviceRef, Dim, Graph, TensorType, ops


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


MAX_MESSAGE = (
    "[broadcast_to] input dimension at index 0 (6) must be either 1 or equal to corresponding "
    "output dimension at index 1 (7)"
)


def test_a_static_dim_against_a_symbolic_one_is_checked_at_execution(session):
    types = [TensorType(DType.int32, [2]), TensorType(DType.int32, ["m", "n"]),
             TensorType(DType.int32, ["k"])]  # fmt: skip
    with Graph("b", input_types=types) as g:
        pair, _grid, any_length = g.inputs
        g.output(ops.broadcast_to(pair, ["m", "n"]), ops.broadcast_to(any_length, [3, 2]))
    model = session.load(g)
    pair = np.array([4, 5], np.int32)
    wide, tall = model.execute(pair, np.zeros((3, 2), np.int32), np.ones(2, np.int32))
    assert np.array_equal(wide.to_numpy(), np.tile(pair, (3, 1))) and tall.to_numpy().shape == (
        3,
        2,
    )
    assert model.execute(pair, np.zeros((1, 2), np.int32), np.ones(1, np.int32))[
        1
    ].to_numpy().shape == (3, 2)
    with pytest.raises(
        ValueError, match=r"index 0 \(2\) must be either 1 or equal to .* index 1 \(3\)"
    ):
        model.execute(pair, np.zeros((1, 3), np.int32), np.ones(2, np.int32))
    with pytest.raises(
        ValueError, match=r"index 0 \(5\) must be either 1 or equal to .* index 1 \(2\)"
    ):
        model.execute(pair, np.zeros((1, 2), np.int32), np.ones(5, np.int32))


def test_errors():
    types = [TensorType(DType.float32, [6]), TensorType(DType.float32, ["d0"]),
             TensorType(DType.int64, [2]), TensorType(DType.float32, [2])]  # fmt: skip
    with Graph("bad", input_types=types):
        six, d0, shape, floats = Graph.current.inputs
        with pytest.raises(ValueError, match=re.escape(MAX_MESSAGE)):  # MAX's own words
            ops.broadcast_to(six, [6, 7])
        with pytest.raises(ValueError, match=r"index 0 \(d0\) .* at index 1 \(d2\)"):
            ops.broadcast_to(d0, ["d1", "d2"])  # two symbolic dims never match, as in MAX
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


def test_a_dim_an_input_on_another_device_binds(session):
    """An empty copy of that input stands in on the op's device: no data travels."""
    types = [TensorType(DType.float32, [1]), TensorType(DType.float32, ["n"], DeviceRef.CPU(1))]
    with Graph("elsewhere", input_types=types) as g:
        g.output(ops.broadcast_to(g.inputs[0], ["n"]))
    got = session.load(g).execute(np.full(1, 7, np.float32), np.zeros(3, np.float32))[0]
    assert got.device == CPU() and got.to_numpy().tolist() == [7.0] * 3


def test_a_narrow_shape_value_and_a_negative_dim_are_clear_errors(session):
    types = [TensorType(DType.float32, [1]), TensorType(DType.int8, [1]),
             TensorType(DType.float32, ["n"])]  # fmt: skip
    with Graph("b", input_types=types) as g:
        x, shape, _ = g.inputs
        g.output(ops.broadcast_to(x, shape, [200]))  # no int8 shape value says 200
    with pytest.raises(ValueError, match=r"shape value is \[100\] at this execution, but out_dims"):
        inputs = np.ones(1, np.float32), np.array([100], np.int8), np.ones(2, np.float32)
        session.load(g).execute(*inputs)
    with Graph("b", input_types=types) as g:
        g.output(ops.broadcast_to(g.inputs[0], [Dim("n") - 2]))
    model = session.load(g)
    assert model.execute(np.ones(1, np.float32), np.array([0], np.int8), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="dim n - 2 is -1 at this execution; a size is never"):
        model.execute(np.ones(1, np.float32), np.array([0], np.int8), np.ones(1, np.float32))
