"""The LM head's ops: transpose, matmul, argmax, top_k and logsumexp. Their type rules and
build-time errors, then their results on every backend against numpy (float64 where a sum
is involved), with ties, NaN, signed zeros and infinities placed on purpose."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, Weight, ops
from ember.graph.ops.axis import AxisError


def graph(*types: TensorType) -> Graph:
    return Graph("head_ops", input_types=list(types))


def f32(*shape) -> TensorType:
    return TensorType(DType.float32, list(shape))


def run(session, build, *inputs):
    """Outputs of a graph built by `build(*graph_inputs)` from numpy `inputs`, as numpy."""
    types = [TensorType(DType.from_numpy(x.dtype), list(x.shape)) for x in inputs]
    with graph(*types) as g:
        outputs = build(*g.inputs)
        g.output(*(outputs if isinstance(outputs, tuple) else (outputs,)))
    return [r.to_numpy() for r in session.load(g).execute(*inputs)]


def reference_top_k(row: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest, by the documented rule: NaN first, then larger values, and the
    lower index first among equals (-0.0 equals 0.0)."""
    values = [float(v) for v in row]
    order = sorted(
        range(len(values)),
        key=lambda i: (0, 0.0, i) if math.isnan(values[i]) else (1, -values[i], i),
    )
    return order[:k]


# ---- type rules and build-time errors ----


def test_transpose_swaps_two_axes_and_checks_them():
    with graph(f32("batch", 4, 8)) as g:
        x = g.inputs[0]
        assert ops.transpose(x, 0, -1).shape == [8, 4, "batch"]
        assert x.T.shape == ["batch", 8, 4]
        assert x.transpose(1, 1) is x
        with pytest.raises(AxisError, match="axis 3 is out of range for a value of rank 3"):
            ops.transpose(x, 3, 0)
        with pytest.raises(IndexError):  # MAX's class: AxisError is also an IndexError
            ops.transpose(x, 0, -4)


def test_matmul_shapes_follow_max_and_numpy():
    with graph(f32("b", 3, 4), f32(4, 5), f32(4), f32(2, 1, 4, 6)) as g:
        a, b, v, batched = g.inputs
        assert ops.matmul(a, b).shape == ["b", 3, 5]
        assert (a @ b).shape == ["b", 3, 5]
        assert ops.matmul(a, v).shape == ["b", 3]
        assert ops.matmul(v, b).shape == [5]
        assert ops.matmul(v, v).shape == []
        assert ops.matmul(a, batched).shape == [2, "b", 3, 6]


def test_matmul_takes_a_float32_lhs_with_a_narrow_rhs_and_gives_float32():
    table = Weight("t", DType.bfloat16, [100, 8])
    with graph(f32("n", 8), TensorType(DType.float16, [8, 3])) as g:
        x, half = g.inputs
        logits = ops.matmul(x, ops.transpose(table, 0, 1))
        assert (logits.dtype, logits.shape) == (DType.float32, ["n", 100])
        assert ops.matmul(x, half).dtype == DType.float32
        assert ops.matmul(half.T, half).dtype == DType.float16


def test_matmul_errors_name_the_bad_operands():
    with graph(
        f32(3, 4),
        f32(5, 6),
        TensorType(DType.bfloat16, [3, 4]),
        TensorType(DType.int32, [4, 2]),
        TensorType(DType.float32, [4, 2], DeviceRef.CPU(1)),
    ) as g:
        a, wrong, narrow, ints, far = g.inputs
        with pytest.raises(ValueError, match=r"inner dims differ: lhs \[Dim\(3\), Dim\(4\)\]"):
            ops.matmul(a, wrong)
        assert ops.matmul(narrow, a.T).dtype == DType.float32  # promoted, as MAX does
        with pytest.raises(TypeError, match="dtypes float32 and int32, and neither holds"):
            ops.matmul(a, ints)
        with pytest.raises(ValueError, match="lhs lives on cpu:0 and rhs on cpu:1"):
            ops.matmul(a, far)
        with pytest.raises(ValueError, match="rank 1 or more"):
            ops.matmul(a, ops.constant(2.0, DType.float32))


def test_argmax_keeps_the_axis_as_size_one_in_int64():
    with graph(f32("b", 7, 5), TensorType(DType.int32, [4])) as g:
        x, ints = g.inputs
        assert (ops.argmax(x).shape, ops.argmax(x).dtype) == (["b", 7, 1], DType.int64)
        assert ops.argmax(x, axis=1).shape == ["b", 1, 5]
        assert ops.argmax(ints).shape == [1]
        with pytest.raises(AxisError, match="axis 3 is out of range"):
            ops.argmax(x, axis=3)
        assert ops.argmax(x > 0).shape == ["b", 7, 1]  # bools, as MAX takes them
        with pytest.raises(ValueError, match="is empty"):
            ops.argmax(x[:, 0:0, :], axis=1)


def test_a_symbolic_axis_too_short_at_execution_is_one_clear_error(session):
    """What the build-time checks say of a static axis, said at execution of a symbolic one,
    on every backend (not numpy's or XLA's own words)."""
    with graph(f32(2, "n")) as g:
        g.output(ops.argmax(g.inputs[0]), *ops.top_k(g.inputs[0], 3))
    model = session.load(g)
    with pytest.raises(ValueError, match=r"argmax: axis 1 of \(2, 0\) is empty"):
        model.execute(np.zeros((2, 0), np.float32))
    with pytest.raises(
        ValueError,
        match=r"top_k: k \(3\) cannot be larger than dimension size along axis 1 of \(2, 2\)",
    ):
        model.execute(np.zeros((2, 2), np.float32))
    assert model.execute(np.zeros((2, 3), np.float32))[0].to_numpy().shape == (2, 1)


def test_top_k_shapes_and_errors():
    with graph(f32("b", 10), TensorType(DType.int64, [10]), TensorType(DType.float64, [3])) as g:
        x, ints, wide = g.inputs
        values, ids = ops.top_k(x, 3)
        assert (values.shape, values.dtype, ids.shape, ids.dtype) == (
            ["b", 3],
            DType.float32,
            ["b", 3],
            DType.int64,
        )
        assert ops.top_k(x, 2, axis=0)[1].shape == [2, 10]  # a symbolic axis: checked at run
        for k in (0, 11, -1):
            with pytest.raises(ValueError, match=rf"k must be in \[1, 10\].*got {k}"):
                ops.top_k(x, k)
        with pytest.raises(TypeError, match=r"k must be an int, got 2\.0"):
            ops.top_k(x, 2.0)
        with pytest.raises(TypeError, match="top_k: takes a float value, got int64"):
            ops.top_k(ints, 2)
        with pytest.raises(TypeError, match=r"got float64 \(cast it first"):
            ops.top_k(wide, 2)


def test_logsumexp_gives_float32_and_keeps_the_axis():
    with graph(TensorType(DType.bfloat16, ["b", 6]), TensorType(DType.int32, [3])) as g:
        x, ints = g.inputs
        lse = ops.logsumexp(x)
        assert (lse.shape, lse.dtype) == (["b", 1], DType.float32)
        assert ops.logsumexp(x, axis=0).shape == [1, 6]
        with pytest.raises(TypeError, match="logsumexp: takes a float value, got int32"):
            ops.logsumexp(ints)


# ---- results on every backend ----


def test_transpose_and_matmul_match_numpy(session):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    narrow = rng.standard_normal((5, 4)).astype(ml_dtypes.bfloat16)
    out, swapped, mixed = run(
        session, lambda a, b, n: (a @ b, ops.transpose(a, 0, 2), a @ n.T), a, b, narrow
    )
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(swapped, np.transpose(a, (2, 1, 0)))
    expected = a.astype(np.float64) @ narrow.astype(np.float64).T
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("lhs", "rhs"), [((2, 0), (0, 3)), ((0,), (0, 2)), ((2, 0, 0), (0, 1)), ((1, 3, 0), (0, 1))]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32])
def test_a_product_over_nothing_is_zeros(session, lhs, rhs, dtype):
    """An inner dim of 0: every element an empty sum, as numpy gives it."""
    a, b = np.ones(lhs, dtype), np.ones(rhs, dtype)
    [out] = run(session, lambda a, b: a @ b, a, b)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, np.matmul(a, b))


def test_transpose_output_is_the_callers_own_copy(session):
    """A view of an input must not reach the caller: it would change with the input."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    [out] = run(session, lambda x: x.T, x)
    x[0, 0] = 99.0
    assert out[0, 0] == 0.0


def test_narrow_matmul_rounds_once_to_its_dtype(session):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 8)).astype(np.float16)
    b = rng.standard_normal((8, 2)).astype(np.float16)
    [out] = run(session, lambda a, b: a @ b, a, b)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(
        out, (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
    )


SPECIAL = np.array(
    [1.0, np.nan, 3.0, 3.0, -0.0, 0.0, np.inf, -np.inf, 3.0, np.nan, -1.0, 0.0], np.float32
)


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float16], ids=str)
def test_argmax_is_the_first_largest_and_nan_counts_as_largest(session, dtype):
    rows = np.stack(
        [
            SPECIAL,
            np.where(np.isnan(SPECIAL), 0.0, SPECIAL),  # no NaN: the first +inf
            np.where(np.isfinite(SPECIAL), SPECIAL, 2.0),  # ties at 3.0: the first one
            np.array([-0.0, 0.0] * 6, np.float32),  # -0.0 equals 0.0: index 0
        ]
    ).astype(dtype)
    [ids] = run(session, ops.argmax, rows)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids[:, 0], [1, 6, 2, 0])
    np.testing.assert_array_equal(ids[:, 0], np.argmax(rows.astype(np.float32), axis=-1))
    [by_column] = run(session, lambda x: ops.argmax(x, axis=0), rows)
    np.testing.assert_array_equal(by_column[0], np.argmax(rows.astype(np.float32), axis=0))


def test_subnormals_rank_above_zero_on_every_backend(session):
    """XLA's CPU code runs with subnormals flushed to zero; the order keys read bits."""
    rows = np.array([[0.0, 1e-40, -1e-40, 0.0], [-0.0, -1e-45, -2e-45, -0.0]], np.float32)
    [ids] = run(session, ops.argmax, rows)
    np.testing.assert_array_equal(ids[:, 0], [1, 0])
    values, top = run(session, lambda x: ops.top_k(x, 3), rows)
    np.testing.assert_array_equal(top, [[1, 0, 3], [0, 3, 1]])
    assert values.tobytes() == np.take_along_axis(rows, top, axis=1).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float16], ids=str)
def test_argmin_is_the_first_smallest_and_nan_counts_as_smallest(session, dtype):
    rows = np.stack(
        [
            SPECIAL,
            np.where(np.isnan(SPECIAL), 0.0, SPECIAL),  # no NaN: the first -inf
            np.where(np.isfinite(SPECIAL), SPECIAL, 2.0) * -1,  # ties at -3.0: the first one
            np.array([0.0, -0.0] * 6, np.float32),  # 0.0 equals -0.0: index 0
            np.array([0.0, 1e-40, -1e-40, -1e-45], np.float32).repeat(3),  # subnormals count
        ]
    ).astype(dtype)
    [ids] = run(session, ops.argmin, rows)
    assert ids.dtype == np.int64
    want = np.argmin(rows.astype(np.float32), axis=-1)
    np.testing.assert_array_equal(ids[:, 0], want)
    np.testing.assert_array_equal(want[:4], [1, 7, 2, 0])
    [by_column] = run(session, lambda x: ops.argmin(x, axis=0), rows)
    np.testing.assert_array_equal(by_column[0], np.argmin(rows.astype(np.float32), axis=0))


def test_argmin_of_ints_and_bools_and_its_errors(session):
    ints = np.array([[3, -7, 2, -7], [0, 0, 0, 0]], np.int64)
    bools = np.array([[True, False, False], [True, True, True]])
    [by_ints] = run(session, ops.argmin, ints)
    [by_bools] = run(session, ops.argmin, bools)
    np.testing.assert_array_equal(by_ints[:, 0], [1, 0])
    np.testing.assert_array_equal(by_bools[:, 0], [1, 0])
    with graph(f32("b", 7, 5)) as g:
        x = g.inputs[0]
        assert (ops.argmin(x, axis=1).shape, ops.argmin(x).dtype) == (["b", 1, 5], DType.int64)
        with pytest.raises(AxisError, match="axis 3 is out of range"):
            ops.argmin(x, axis=3)
        with pytest.raises(ValueError, match="is empty; it has no smallest value"):
            ops.argmin(x[:, 0:0, :], axis=1)


def test_argmax_of_bools_is_the_first_true(session):
    rows = np.array([[False, True, True], [False, False, False], [True, False, True]])
    [ids] = run(session, ops.argmax, rows)
    np.testing.assert_array_equal(ids[:, 0], [1, 0, 0])


@pytest.mark.parametrize("k", [1, 3, 5, 6, 12])
def test_top_k_follows_the_tie_and_nan_rule_across_the_kth_boundary(session, k):
    rows = np.stack([SPECIAL, SPECIAL[::-1].copy(), np.where(np.isnan(SPECIAL), 3.0, SPECIAL)])
    values, ids = run(session, lambda x: ops.top_k(x, k), rows)
    for row, got_values, got_ids in zip(rows, values, ids, strict=True):
        expected = reference_top_k(row, k)
        assert got_ids.tolist() == expected
        np.testing.assert_array_equal(got_values, row[expected])  # NaN equal to NaN here


def test_top_k_ties_on_the_boundary_keep_the_lowest_ids(session):
    """Many equal values straddling the k-th place: a partition alone would keep any of them."""
    rng = np.random.default_rng(2)
    rows = rng.integers(-3, 4, size=(16, 500)).astype(np.float32)
    for k in (1, 7, 64, 499, 500):
        values, ids = run(session, lambda x, k=k: ops.top_k(x, k), rows)
        order = np.argsort(-rows, axis=-1, kind="stable")[:, :k]
        np.testing.assert_array_equal(ids, order)
        np.testing.assert_array_equal(values, np.take_along_axis(rows, order, axis=-1))


def test_top_k_along_another_axis(session):
    rows = np.random.default_rng(3).integers(0, 5, size=(6, 3, 4)).astype(ml_dtypes.bfloat16)
    values, ids = run(session, lambda x: ops.top_k(x, 2, axis=0), rows)
    order = np.argsort(-rows.astype(np.float32), axis=0, kind="stable")[:2]
    np.testing.assert_array_equal(ids, order)
    assert values.dtype == rows.dtype
    np.testing.assert_array_equal(values, np.take_along_axis(rows, order, axis=0))


def test_logsumexp_matches_float64_and_never_overflows(session):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((5, 1000)) * 30).astype(np.float32)
    x[0] += 5000.0  # exp would overflow without the shift
    x[1] -= 5000.0  # and underflow to log(0)
    [lse] = run(session, ops.logsumexp, x)
    assert lse.shape == (5, 1) and lse.dtype == np.float32
    np.testing.assert_allclose(lse, reference_logsumexp(x, axis=-1), rtol=2e-6)
    columns = x[:, :4].T.copy()
    [by_column] = run(session, lambda x: ops.logsumexp(x, axis=0), columns)
    np.testing.assert_allclose(by_column, reference_logsumexp(columns, axis=0), rtol=2e-6)


@pytest.mark.filterwarnings("error")
def test_logsumexp_of_logits_a_float32_apart_is_exact_and_silent(session):
    """`x - max` past float32's range is -inf, whose exp is 0: the right sum, no warning."""
    rows = np.array([[2e38, -2e38, 1.0], [3e38, -3e38, -3e38]], np.float32)
    [lse] = run(session, ops.logsumexp, rows)
    np.testing.assert_array_equal(lse[:, 0], rows[:, 0])


def reference_logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    wide = x.astype(np.float64)
    peak = wide.max(axis=axis, keepdims=True)
    return peak + np.log(np.exp(wide - peak).sum(axis=axis, keepdims=True))


def test_logsumexp_of_infinities_and_nan(session):
    rows = np.array(
        [
            [-np.inf, -np.inf, -np.inf],
            [np.inf, 1.0, -np.inf],
            [np.nan, 1.0, 2.0],
            [-np.inf, 0.0, -np.inf],
        ],
        np.float32,
    )
    [lse] = run(session, ops.logsumexp, rows)
    assert lse[0, 0] == -np.inf and lse[1, 0] == np.inf and np.isnan(lse[2, 0])
    assert lse[3, 0] == 0.0


@pytest.mark.parametrize("op", [ops.argmax, ops.argmin])
def test_float64_subnormals_and_nan_rank_by_their_bits_on_every_backend(session, op):
    """XLA flushes float64 subnormals too: float64 values are ranked by 64-bit order keys."""
    rows = np.array([[0.0, -1e-310, 1e-310, 0.0], [1.0, np.nan, -np.inf, 2.0]], np.float64)
    [ids] = run(session, op, rows)
    reference = np.argmax if op is ops.argmax else np.argmin
    np.testing.assert_array_equal(ids[:, 0], reference(rows, axis=-1))
