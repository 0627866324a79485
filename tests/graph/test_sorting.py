"""MAX's `bottom_k`, `argsort` and `cumsum` on every backend, against Python's own sorts and
sums: ties to the lowest index in both directions, NaN above every number, -0.0 equal to 0.0,
integers exact, exclusive and reverse sums, and the errors."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Graph, TensorType, ops
from ember.graph.errors import GraphTypeError
from ember.graph.ops.axis import AxisError

SPECIAL = np.array(
    [2.0, np.nan, -0.0, 1.0, 0.0, 2.0, -np.inf, np.inf, 1.0, np.nan, -3.5, 0.0], np.float32
)


def run(session, build, x: np.ndarray, dims=None):
    types = [TensorType(DType.from_numpy(x.dtype), dims or list(x.shape))]
    with Graph("sorting", input_types=types) as g:
        outputs = build(g.inputs[0])
        g.output(*(outputs if isinstance(outputs, tuple) else (outputs,)))
    return [r.to_numpy() for r in session.load(g).execute(x)]


def ascending_order(values) -> list[int]:
    """The documented order: numbers ascending (-0.0 equal to 0.0), NaN after them, and the
    lower index first among equals."""
    values = [float(v) for v in values]
    return sorted(
        range(len(values)),
        key=lambda i: (1, 0.0, i) if math.isnan(values[i]) else (0, values[i], i),
    )


def descending_order(values) -> list[int]:
    values = [float(v) for v in values]
    return sorted(
        range(len(values)),
        key=lambda i: (0, 0.0, i) if math.isnan(values[i]) else (1, -values[i], i),
    )


@pytest.mark.parametrize("k", [1, 3, 6, 11, 12])
def test_bottom_k_keeps_the_smallest_first_and_nan_last(session, k):
    rows = np.stack([SPECIAL, SPECIAL[::-1].copy()])
    values, ids = run(session, lambda x: ops.bottom_k(x, k), rows)
    for row, got_values, got_ids in zip(rows, values, ids, strict=True):
        expected = ascending_order(row)[:k]
        assert got_ids.tolist() == expected
        np.testing.assert_array_equal(got_values, row[expected])


def test_bottom_k_ties_on_the_boundary_and_another_axis(session):
    rows = np.random.default_rng(0).integers(-3, 4, size=(5, 300)).astype(ml_dtypes.bfloat16)
    for k in (1, 50, 300):
        values, ids = run(session, lambda x, k=k: ops.bottom_k(x, k), rows)
        order = np.argsort(rows.astype(np.float32), axis=-1, kind="stable")[:, :k]
        np.testing.assert_array_equal(ids, order)
        assert values.dtype == rows.dtype
    values, ids = run(session, lambda x: ops.bottom_k(x, 2, axis=0), rows)
    np.testing.assert_array_equal(ids, np.argsort(rows.astype(np.float32), 0, kind="stable")[:2])


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, ml_dtypes.bfloat16, np.float16])
def test_argsort_of_floats_is_stable_both_ways(session, ascending, dtype):
    x = np.concatenate([SPECIAL, SPECIAL[::-1]]).astype(dtype)
    (order,) = run(session, lambda v: ops.argsort(v, ascending=ascending), x, ["n"])
    want = ascending_order(x) if ascending else descending_order(x)
    assert order.dtype == np.int64 and order.tolist() == want


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint64, np.int64])
def test_argsort_of_integers_is_stable_both_ways(session, dtype):
    info = np.iinfo(dtype)
    x = np.array([info.max, 3, info.min, 3, 0, info.max, 1, info.min], dtype)
    for ascending in (True, False):
        (order,) = run(session, lambda v, a=ascending: ops.argsort(v, ascending=a), x)
        values = [int(v) for v in x]
        want = sorted(range(len(x)), key=lambda i: (values[i] if ascending else -values[i], i))
        assert order.tolist() == want


def _cumsum_reference(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    moved = np.moveaxis(x.astype(np.float64), axis, -1)
    out = np.empty_like(moved)
    for index in np.ndindex(moved.shape[:-1]):
        row = list(moved[index])
        n = len(row)
        for i in range(n):
            part = row[i + 1 :] if reverse else row[:i]
            part = part if exclusive else (row[i:] if reverse else row[: i + 1])
            out[(*index, i)] = math.fsum(part)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [0, -1])
def test_cumsum_of_floats_within_the_sum_bound(session, exclusive, reverse, axis):
    x = np.random.default_rng(1).standard_normal((7, 33)).astype(np.float32)
    (got,) = run(session, lambda v: ops.cumsum(v, axis, exclusive, reverse), x)
    want = _cumsum_reference(x, axis, exclusive, reverse)
    n = x.shape[axis]  # summed in float64 (as MAX sums float32), then rounded once
    bound = np.spacing(np.abs(got)) / 2 + n * 2**-53 * _cumsum_reference(
        np.abs(x), axis, exclusive, reverse
    )
    assert got.dtype == np.float32 and (np.abs(got - want) <= bound).all()
    first = np.take(got, [n - 1 if reverse else 0], axis=axis)
    if exclusive:  # the sum of nothing: +0.0
        assert (first == 0).all() and not np.signbit(first).any()


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.int64])
def test_cumsum_of_integers_is_exact_and_wraps(session, dtype):
    x = np.random.default_rng(2).integers(0, 100, (3, 40)).astype(dtype)
    for exclusive in (False, True):
        for reverse in (False, True):
            (got,) = run(session, lambda v, e=exclusive, r=reverse: ops.cumsum(v, 1, e, r), x)
            want = _cumsum_reference(x, 1, exclusive, reverse).astype(np.int64)
            assert got.dtype == dtype
            assert got.tolist() == want.astype(dtype).tolist()  # int8 wraps as int8 does


def test_cumsum_of_float32_is_summed_in_float64_as_max_sums_it(session):
    """MAX's own case: 1024 times 1.1 drifts by 0.01 when summed in float32."""
    x = np.full(1024, 1.1, np.float32)
    (got,) = run(session, lambda v: ops.cumsum(v, axis=0), x)
    np.testing.assert_array_equal(got, np.cumsum(x.astype(np.float64)).astype(np.float32))


def test_cumsum_of_narrow_floats_is_summed_in_float32(session):
    x = np.full((1, 300), 1.0, ml_dtypes.bfloat16)  # 257 is no bfloat16: bf16 sums stall at 256
    (got,) = run(session, ops.cumsum, x)
    want = np.arange(1, 301, dtype=np.float32).astype(ml_dtypes.bfloat16)
    assert got.dtype == x.dtype and got.tolist() == want.reshape(1, 300).tolist()


def test_cumsum_of_a_symbolic_and_an_empty_axis(session):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (got,) = run(session, lambda v: ops.cumsum(v, axis=0, reverse=True), x, ["n", 3])
    assert got.tolist() == [[3.0, 5.0, 7.0], [3.0, 4.0, 5.0]]
    (empty,) = run(session, lambda v: ops.cumsum(v, exclusive=True), np.zeros((2, 0), np.float32))
    assert empty.shape == (2, 0)


def test_errors_at_build():
    with Graph("e", input_types=[TensorType(DType.float32, [4, 3]),
                                 TensorType(DType.bool, [4])]) as g:  # fmt: skip
        x, flags = g.inputs
        with pytest.raises(ValueError, match="rank 1"):
            ops.argsort(x)
        with pytest.raises(GraphTypeError, match="bool"):
            ops.argsort(flags)
        with pytest.raises(GraphTypeError, match="bool"):
            ops.cumsum(flags)
        with pytest.raises(AxisError):
            ops.cumsum(x, axis=2)
        with pytest.raises(ValueError, match=r"bottom_k: k must be in \[1, 3\]"):
            ops.bottom_k(x, 4)
        with pytest.raises(TypeError, match="bottom_k: takes one of"):
            ops.bottom_k(x.cast(DType.float64), 1)


def test_inf_sums_without_warnings_and_k_messages(session):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (got,) = run(session, ops.cumsum, np.array([np.inf, -np.inf, 1.0], np.float32))
    assert got[0] == np.inf and np.isnan(got[1:]).all()
    with Graph("k", input_types=[TensorType(DType.float32, ["n"])]) as g:
        with pytest.raises(ValueError, match="top_k: k must be at least 1, got 0"):
            ops.top_k(g.inputs[0], 0)
        g.output(*ops.bottom_k(g.inputs[0], 3))
    with pytest.raises(ValueError, match="bottom_k: k \\(3\\) cannot be larger"):
        session.load(g).execute(np.zeros(2, np.float32))
