"""MAX's reductions (`ops.sum`, `mean`, `prod`, and `max` / `min` of one value, also as
`TensorValue` methods) against numpy, on every backend: the axis kept as a dim of 1, integers
in their own dtype, narrow floats through float32, NaN and empty axes, and the errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Graph, TensorType, ops

REFERENCE = {
    "sum": lambda x, axis: np.sum(x, axis=axis, keepdims=True, dtype=x.dtype),
    "prod": lambda x, axis: np.prod(x, axis=axis, keepdims=True, dtype=x.dtype),
    "mean": lambda x, axis: np.mean(x, axis=axis, keepdims=True, dtype=x.dtype),
    "max": lambda x, axis: np.max(x, axis=axis, keepdims=True),
    "min": lambda x, axis: np.min(x, axis=axis, keepdims=True),
}


def _run(session, kind, x, axis):
    with Graph("r", input_types=[TensorType(DType.from_numpy(x.dtype), list(x.shape))]) as g:
        value = g.inputs[0]
        out = {"sum": ops.sum, "prod": ops.prod, "mean": ops.mean, "max": ops.max,
               "min": ops.min}[kind](value, axis=axis)  # fmt: skip
        shape = list(x.shape)
        shape[axis] = 1
        assert out.shape == shape and out.dtype == DType.from_numpy(x.dtype)
        g.output(out)
    return session.load(g).execute(x)[0].to_numpy()


@pytest.mark.parametrize("kind", list(REFERENCE))
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_floats_match_numpy(session, kind, axis):
    x = np.random.default_rng(1).standard_normal((3, 5, 4)).astype(np.float32)
    got, want = _run(session, kind, x, axis), REFERENCE[kind](x, axis)
    if kind in ("max", "min"):
        assert got.tobytes() == want.tobytes()
    else:  # the order of the sum is each backend's own: within float32 rounding
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16])
def test_integers_stay_in_their_dtype(session, kind, dtype):
    x = np.random.default_rng(2).integers(0, 100, (4, 6)).astype(dtype)
    got = _run(session, kind, x, 1)
    assert got.dtype == dtype and np.array_equal(got, REFERENCE[kind](x, 1))  # int8 wraps


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_narrow_floats_are_reduced_in_float32_and_rounded_once(session, dtype):
    x = (np.arange(1, 257, dtype=np.float32) / 7).astype(dtype).reshape(2, 128)
    got = _run(session, "sum", x, 1)
    want = x.astype(np.float32).sum(axis=1, keepdims=True).astype(dtype)
    assert got.dtype == dtype and np.allclose(
        got.astype(np.float32), want.astype(np.float32), rtol=1e-2
    )
    assert got.astype(np.float32).tolist() == want.astype(np.float32).tolist()


def test_nan_and_empty_axes(session):
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, -6.0]], np.float32)
    assert np.isnan(_run(session, "max", x, 1)[0, 0]) and _run(session, "max", x, 1)[1, 0] == 5
    assert np.isnan(_run(session, "sum", x, 1)[0, 0]) and _run(session, "min", x, 1)[1, 0] == -6
    empty = np.zeros((2, 0), np.float32)
    assert _run(session, "sum", empty, 1).tolist() == [[0.0], [0.0]]
    assert _run(session, "prod", empty, 1).tolist() == [[1.0], [1.0]]
    assert np.isnan(_run(session, "mean", empty, 1)).all()


@pytest.mark.parametrize("kind", ["max", "min"])
def test_max_and_min_are_the_values_at_argmax_and_argmin(session, kind):
    """The same bits on every backend: subnormals ranked as numbers (XLA's CPU code flushes
    them in float compares), the first of -0.0 and 0.0, the first NaN with its payload."""
    tiny = np.float32(1e-39)
    x = np.array([[tiny, -tiny, 0.0], [0.0, -0.0, -tiny], [-0.0, 0.0, tiny], [1.0, np.nan, 2.0]],
                 np.float32)  # fmt: skip
    x[3, 1] = np.frombuffer(np.uint32(0x7FC0_1234).tobytes(), np.float32)[0]  # a NaN payload
    pick = np.argmax if kind == "max" else np.argmin
    want = np.take_along_axis(x, pick(x, axis=1, keepdims=True), axis=1)
    assert _run(session, kind, x, 1).tobytes() == want.tobytes()


def test_a_symbolic_axis_found_empty_raises_for_max(session):
    with Graph("r", input_types=[TensorType(DType.float32, [2, "n"])]) as g:
        g.output(g.inputs[0].max(), g.inputs[0].min(axis=1), g.inputs[0].mean(axis=0))
    model = session.load(g)
    x = np.array([[1.0, 2.0], [3.0, 0.5]], np.float32)
    biggest, smallest, mean = (t.to_numpy() for t in model.execute(x))
    assert biggest.tolist() == [[2.0], [3.0]] and smallest.tolist() == [[1.0], [0.5]]
    assert mean.tolist() == [[2.0, 1.25]]
    with pytest.raises(ValueError, match=r"axis 1 of .* is empty; it has no largest value"):
        model.execute(np.zeros((2, 0), np.float32))


def test_max_and_min_of_two_values_stay_elementwise():
    with Graph("r", input_types=[TensorType(DType.float32, [2, 3])] * 2) as g:
        a, b = g.inputs
        assert ops.max(a, b).shape == [2, 3] and ops.min(a).shape == [2, 1]
        assert ops.max(a, axis=0).shape == [1, 3]
        with pytest.raises(ValueError, match="Axis not allowed for elementwise max"):
            ops.max(a, b, axis=0)


def test_integer_means_truncate_toward_zero_and_bools_pool_as_numpy(session):
    x = np.array([[-7, 2, 0], [7, -2, 1], [127, 127, 127], [-128, -128, 1]], np.int8)
    got = _run(session, "mean", x, 1)
    want = np.trunc(x.astype(np.float64).mean(axis=1, keepdims=True)).astype(np.int8)
    assert got.dtype == np.int8 and np.array_equal(got, want)  # summed wide: no wrap
    b = np.array([[True, True, False], [True, True, True], [False, False, False]])
    for kind, want in (("sum", b.any(1)), ("prod", b.all(1)), ("mean", b.all(1)),
                       ("max", b.any(1)), ("min", b.all(1))):  # fmt: skip
        assert _run(session, kind, b, 1).ravel().tolist() == want.tolist()


def test_elementwise_max_and_min_of_bools_and_maxs_module_names(session):
    import ember.graph.ops.reduction as reduction

    assert reduction.max is reduction.reduce_max and reduction.sum is reduction.reduce_sum
    a, b = np.array([True, False, False]), np.array([True, True, False])
    with Graph("r", input_types=[TensorType(DType.bool, [3])] * 2) as g:
        g.output(ops.max(*g.inputs), ops.min(*g.inputs))
    either, both = (t.to_numpy() for t in session.load(g).execute(a, b))
    assert either.tolist() == (a | b).tolist() and both.tolist() == (a & b).tolist()


def test_errors():
    types = [TensorType(DType.int32, [3]), TensorType(DType.float32, [0])]
    with Graph("bad", input_types=types) as g:
        ints, empty = g.inputs
        with pytest.raises(ValueError, match="empty; it has no smallest value"):
            ops.min(empty)
        with pytest.raises(IndexError, match="out of range"):
            ops.sum(ints, axis=1)
        with pytest.raises(ValueError, match="rank 1 or more"):
            ops.sum(ops.constant(3, DType.int32))
