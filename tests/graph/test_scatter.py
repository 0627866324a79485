"""MAX's scatters on every backend, against Python loops over the updates in order: plain
(the last update of a repeated target kept), add, mul, max and min; along each axis, with
negative and repeated indices; scatter_nd of rows and elements; the errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ember.dtype import DType
from ember.errors import OutOfRangeError
from ember.graph import Graph, TensorType, ops
from ember.graph.errors import GraphTypeError

COMBINE = {
    None: lambda old, new: new,
    "add": lambda old, new: old + new,
    "mul": lambda old, new: old * new,
    "max": lambda old, new: new if (new > old or np.isnan(new)) and not np.isnan(old) else old,
    "min": lambda old, new: new if (new < old or np.isnan(new)) and not np.isnan(old) else old,
}
FUNCTIONS = {None: ops.scatter, "add": ops.scatter_add, "mul": ops.scatter_mul,
             "max": ops.scatter_max, "min": ops.scatter_min}  # fmt: skip
ND = {None: ops.scatter_nd, "add": ops.scatter_nd_add, "mul": ops.scatter_nd_mul,
      "max": ops.scatter_nd_max, "min": ops.scatter_nd_min}  # fmt: skip


def _run(session, build, *inputs):
    types = [TensorType(DType.from_numpy(a.dtype), list(a.shape)) for a in inputs]
    with Graph("scatter", input_types=types) as g:
        g.output(build(*g.inputs))
    return session.load(g).execute(*inputs)[0].to_numpy()


def _reference(x, updates, indices, axis, reduction):
    out = x.copy()
    for p in itertools.product(*(range(n) for n in updates.shape)):
        q = list(p)
        q[axis] = int(indices[p]) % x.shape[axis]
        out[tuple(q)] = COMBINE[reduction](out[tuple(q)], updates[p])
    return out


@pytest.mark.parametrize("reduction", [None, "add", "mul", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scatter_matches_a_loop_over_the_updates(session, reduction, axis):
    rng = np.random.default_rng(0)
    x = rng.integers(-5, 5, (4, 5)).astype(np.float32)
    shape = (3, 5) if axis == 0 else (4, 3)
    updates = rng.integers(-5, 5, shape).astype(np.float32)
    size = x.shape[axis]
    indices = rng.integers(-size, size, shape).astype(np.int64)  # repeats and negatives
    got = _run(
        session, lambda a, b, c: FUNCTIONS[reduction](a, b, c, axis=axis), x, updates, indices
    )
    assert got.tolist() == _reference(x, updates, indices, axis % 2, reduction).tolist()


@pytest.mark.parametrize("reduction", [None, "add", "max"])
def test_scatter_nd_of_rows_and_of_elements(session, reduction):
    rng = np.random.default_rng(1)
    table = rng.integers(0, 9, (6, 3)).astype(np.int32)
    rows = np.array([[4], [1], [4], [-1]], np.int64)
    new_rows = rng.integers(0, 9, (4, 3)).astype(np.int32)
    got = _run(session, lambda a, b, c: ND[reduction](a, b, c), table, new_rows, rows)
    want = table.copy()
    for row, update in zip(rows[:, 0], new_rows, strict=True):
        for c in range(3):
            want[row % 6, c] = COMBINE[reduction](want[row % 6, c], update[c])
    assert got.tolist() == want.tolist()
    cells = np.array([[0, 2], [5, 0], [0, 2]], np.int32)
    values = np.array([7, 8, 9], np.int32)
    got = _run(session, lambda a, b, c: ND[reduction](a, b, c), table, values, cells)
    want = table.copy()
    for (r, c), v in zip(cells, values, strict=True):
        want[r, c] = COMBINE[reduction](want[r, c], v)
    assert got.tolist() == want.tolist()


def test_nan_and_an_index_out_of_range(session):
    x = np.zeros((2, 3), np.float32)
    updates = np.array([[np.nan, 1.0, 2.0]], np.float32)
    indices = np.array([[1, 0, 1]], np.int64)
    got = _run(session, lambda a, b, c: ops.scatter_max(a, b, c, axis=0), x, updates, indices)
    assert np.isnan(got[1, 0]) and got[0, 1] == 1 and got[1, 2] == 2
    with pytest.raises(OutOfRangeError, match="id 2 at position"):
        _run(session, lambda a, b, c: ops.scatter(a, b, c, axis=0), x, updates,
             np.array([[0, 2, 1]], np.int64))  # fmt: skip
    with pytest.raises(OutOfRangeError, match="id -3"):
        _run(session, ops.scatter_nd, x, np.ones((1, 3), np.float32), np.array([[-3]], np.int64))


def test_errors_at_build():
    types = [TensorType(DType.float32, [4, 3]), TensorType(DType.float32, [2, 3]),
             TensorType(DType.int64, [2, 3]), TensorType(DType.bool, [4, 3])]  # fmt: skip
    with Graph("e", input_types=types) as g:
        x, updates, indices, flags = g.inputs
        with pytest.raises(ValueError, match="must match"):
            ops.scatter(x, indices, indices)
        with pytest.raises(GraphTypeError, match="int32 or int64"):
            ops.scatter(x, updates, updates)
        with pytest.raises(ValueError, match="share one shape"):
            ops.scatter(x, updates, indices[:, :2])
        with pytest.raises(ValueError, match="reach past"):
            ops.scatter(updates, x, ops.cast(x, DType.int64), axis=1)
        with pytest.raises(ValueError, match="index length"):
            ops.scatter_nd(x, updates, indices)
        with pytest.raises(ValueError, match="updates must be of shape"):
            ops.scatter_nd(x, updates, indices[:, :2])
        with pytest.raises(GraphTypeError, match="bool"):
            ops.scatter_add(flags, flags, ops.cast(flags, DType.int64))
