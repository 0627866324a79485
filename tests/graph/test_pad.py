"""MAX's `pad` on every backend against a reference that maps each output position to its
source position (not numpy's `pad`): constant, reflect (wider than the axis too) and edge,
symbolic dims, every dtype kind, and the errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Graph, TensorType, ops
from ember.graph.errors import GraphTypeError


def _source(i: int, before: int, n: int, mode: str) -> int | None:
    """The input position output position `i` copies along an axis, None for the fill."""
    j = i - before
    if mode == "constant":
        return j if 0 <= j < n else None
    if mode == "edge":
        return min(max(j, 0), n - 1)
    if n == 1:
        return 0
    period = 2 * (n - 1)  # reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
    j %= period
    return j if j < n else period - j


def _reference(x: np.ndarray, widths: list[int], mode: str, value) -> np.ndarray:
    out = x
    for axis in range(x.ndim):
        before, after = widths[2 * axis], widths[2 * axis + 1]
        n = out.shape[axis]
        sources = [_source(i, before, n, mode) for i in range(before + n + after)]
        taken = np.take(out, [s if s is not None else 0 for s in sources], axis=axis)
        fill = np.array([s is None for s in sources]).reshape(
            [-1 if a == axis else 1 for a in range(x.ndim)]
        )
        out = np.where(fill, np.asarray(value).astype(x.dtype), taken)
    return out


def _run(session, x, widths, mode="constant", value=0, dims=None):
    with Graph(
        "pad", input_types=[TensorType(DType.from_numpy(x.dtype), dims or list(x.shape))]
    ) as g:
        g.output(ops.pad(g.inputs[0], widths, mode=mode, value=value))
    return session.load(g).execute(x)[0].to_numpy()


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("widths", [[1, 2, 0, 3], [0, 0, 5, 0], [4, 4, 7, 6]])
def test_pad_matches_the_position_map(session, mode, widths):
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    got = _run(session, x, widths, mode, value=-7.25)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, _reference(x, widths, mode, -7.25))


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.bool_, ml_dtypes.bfloat16])
def test_pad_keeps_every_dtype(session, dtype):
    x = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    got = _run(session, x, [1, 0, 0, 2], value=1)
    assert got.dtype == x.dtype
    assert got.tolist() == _reference(x, [1, 0, 0, 2], "constant", 1).tolist()


def test_pad_of_symbolic_dims_and_empty_axes(session):
    ids = np.array([[3, 4, 5]], np.int64)
    got = _run(session, ids, [0, 0, 0, 2], value=-1, dims=["batch", "seq"])
    assert got.tolist() == [[3, 4, 5, -1, -1]]
    empty = np.zeros((2, 0), np.float32)
    assert _run(session, empty, [0, 0, 1, 1], value=9).tolist() == [[9, 9], [9, 9]]
    with pytest.raises(ValueError, match="mode 'edge' cannot pad axis 1: it is empty"):
        _run(session, empty, [0, 0, 1, 0], mode="edge")


def test_pad_errors_at_build():
    with Graph("e", input_types=[TensorType(DType.int8, [2, 3])]) as g:
        x = g.inputs[0]
        with pytest.raises(ValueError, match="unsupported padding mode 'wrap'"):
            ops.pad(x, [0, 0, 0, 1], mode="wrap")
        with pytest.raises(ValueError, match="two ints per axis"):
            ops.pad(x, [0, 1])
        with pytest.raises(ValueError, match="non-negative"):
            ops.pad(x, [0, 0, -1, 1])
        with pytest.raises(GraphTypeError, match="does not fit"):
            ops.pad(x, [0, 0, 0, 1], value=300)
        with pytest.raises(GraphTypeError, match="not an integer"):
            ops.pad(x, [0, 0, 0, 1], value=0.5)
        with pytest.raises(TypeError, match="value must be a number"):
            ops.pad(x, [0, 0, 0, 1], value="0")


def test_a_scalar_has_nothing_to_pad(session):
    assert _run(session, np.array(2.5, np.float32), []).tolist() == 2.5
    with (
        Graph("e", input_types=[TensorType(DType.float32, [2])]) as g,
        pytest.raises(ValueError, match="two ints per axis"),
    ):
        ops.pad(g.inputs[0], None)
