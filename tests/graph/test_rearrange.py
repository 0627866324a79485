"""MAX's `flatten`, `permute`, `tile`, `outer`, `split` and `chunk` against numpy, on every
backend, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Dim, Graph, TensorType, ops

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def _run(session, build, *arrays, types=None):
    types = types or [TensorType(DType.from_numpy(a.dtype), list(a.shape)) for a in arrays]
    with Graph("r", input_types=types) as g:
        outs = build(*g.inputs)
        g.output(*(outs if isinstance(outs, list) else [outs]))
    return [t.to_numpy() for t in session.load(g).execute(*arrays)]


def test_flatten_and_permute(session):
    def build(x):
        return [x.flatten(), ops.flatten(x, 1), ops.flatten(x, 0, 1), x.permute([2, 0, 1]),
                ops.permute(x, [-1, 1, 0])]  # fmt: skip

    got = _run(session, build, X)
    want = [X.reshape(-1), X.reshape(2, 12), X.reshape(6, 4), X.transpose(2, 0, 1),
            X.transpose(2, 1, 0)]  # fmt: skip
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_flatten_of_symbolic_dims_and_a_scalar(session):
    types = [TensorType(DType.float32, ["batch", "seq", 4]), TensorType(DType.int32, [])]
    with Graph("r", input_types=types) as g:
        tokens = ops.flatten(g.inputs[0], 0, 1)
        assert tokens.shape == [Dim("batch") * Dim("seq"), 4]
        assert ops.flatten(g.inputs[1]).shape == [1]
        g.output(tokens, ops.flatten(g.inputs[1]))
    tokens, scalar = (t.to_numpy() for t in session.load(g).execute(X, np.int32(7)))
    assert np.array_equal(tokens, X.reshape(6, 4)) and scalar.tolist() == [7]


def test_tile_outer_split_chunk(session):
    v, w = np.array([1, 2, 3], np.int32), np.array([0.5, -1.0], np.float32)

    def build(x, a, b):
        return [ops.tile(x, [2, 1, 3]), ops.outer(b, b), *ops.split(x, [1, 0, 2], axis=1),
                *ops.chunk(x, 2, axis=-1), ops.tile(a, [1])]  # fmt: skip

    got = _run(session, build, X, v, w)
    want = [np.tile(X, (2, 1, 3)), np.outer(w, w), X[:, :1], X[:, 1:1], X[:, 1:], X[..., :2],
            X[..., 2:], v]  # fmt: skip
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def test_tile_by_a_symbolic_count(session):
    types = [TensorType(DType.int64, [1, 2]), TensorType(DType.int64, ["n"])]
    with Graph("r", input_types=types) as g:
        g.output(ops.tile(g.inputs[0], ["n", 2]))
    [got] = session.load(g).execute(np.array([[4, 5]]), np.zeros(3, np.int64))
    assert np.array_equal(got.to_numpy(), np.tile([[4, 5]], (3, 2)))


def test_errors():
    with Graph("bad", input_types=[TensorType(DType.float32, [2, 3, "n"])]) as g:
        x = g.inputs[0]
        with pytest.raises(ValueError, match="start_dim cannot come after end_dim"):
            ops.flatten(x, 2, 1)
        with pytest.raises(IndexError, match="out of range"):
            ops.flatten(x, 3)
        with pytest.raises(ValueError, match="does not match the number of dims"):
            ops.permute(x, [0, 1])
        with pytest.raises(ValueError, match="duplicate dimensions"):
            ops.permute(x, [0, 0, 1])
        with pytest.raises(ValueError, match="must match"):
            ops.tile(x, [2, 2])
        with pytest.raises(ValueError, match="Repeats must all be positive"):
            ops.tile(x, [0, 1, 1])
        with pytest.raises(ValueError, match="outer expected 1d-tensors"):
            ops.outer(x, x)
        with pytest.raises(ValueError, match="Split sizes must sum to dimension value"):
            ops.split(x, [1, 1], axis=1)
        with pytest.raises(ValueError, match="must statically divide"):
            ops.chunk(x, 2, axis=1)
        with pytest.raises(TypeError, match="the axis must be static"):
            ops.chunk(x, 2, axis=2)  # a symbolic axis
        assert ops.split(x, []) == []
        with pytest.raises(ValueError, match=r"Split sizes must be positive: sizes=\[4, -1\]"):
            ops.split(x, [4, -1], axis=1)
        with pytest.raises(IndexError, match=r"Axis must be in range \[-3, 3\), got 3"):
            ops.split(x, [3], axis=3)
        with pytest.raises(TypeError, match="split sizes must be static"):
            ops.split(x, ["n"], axis=2)


def test_reshape_infers_minus_one_beside_expression_dims(session):
    """`-1` is what times the other dims gives the element count, also for expressions
    (`flatten`'s `n * m`, `concat`'s sums) where it divides exactly."""
    with Graph("r", input_types=[TensorType(DType.float32, ["n", "m", 2])]) as g:
        tokens = ops.flatten(g.inputs[0], 0, 1)
        rows = ops.reshape(tokens, ["n", -1])
        flat = ops.reshape(ops.concat([tokens, tokens]), [-1])
        assert rows.shape == ["n", Dim("m") * 2] and flat.shape == [Dim("n") * Dim("m") * 4]
        with pytest.raises(ValueError, match="cannot infer -1"):
            ops.reshape(tokens, [Dim("n") + 1, -1])  # n + 1 divides no count of n * m * 2
        g.output(rows, flat)
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    rows, flat = (t.to_numpy() for t in session.load(g).execute(x))
    assert np.array_equal(rows, x.reshape(2, 6)) and np.array_equal(flat, np.tile(x.ravel(), 2))
