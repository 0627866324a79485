"""MAX's `repeat_interleave` on every backend, against Python's own repetition: int repeats
on any axis (and flattened), counts per element with zeros, TorchRec's lengths made into
each id's bag, and every count that does not fit, at build or at execution."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops
from ember.graph.errors import GraphTypeError


def _repeated(rows: list, counts: list[int]) -> list:
    return [row for row, count in zip(rows, counts, strict=True) for _ in range(count)]


def _run(session, build, *inputs, dims=None):
    types = [TensorType(DType.from_numpy(x.dtype), d or list(x.shape))
             for x, d in zip(inputs, dims or [None] * len(inputs), strict=True)]  # fmt: skip
    with Graph("repeat", input_types=types) as g:
        g.output(build(*g.inputs))
    model = session.load(g)
    return model, model.execute(*inputs)[0].to_numpy()


def test_int_repeats_on_each_axis_and_flattened(session):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    _, rows = _run(session, lambda v: ops.repeat_interleave(v, 2, axis=0), x)
    assert rows.tolist() == _repeated(x.tolist(), [2, 2])
    _, columns = _run(session, lambda v: ops.repeat_interleave(v, 3, axis=-1), x)
    assert columns.tolist() == [_repeated(row, [3, 3, 3]) for row in x.tolist()]
    _, flat = _run(session, lambda v: ops.repeat_interleave(v, 2), x)
    assert flat.tolist() == _repeated(x.ravel().tolist(), [2] * 6)


def test_counts_per_element_and_zero_counts(session):
    x = np.array([[1, 2], [3, 4], [5, 6]], np.int32)
    counts = np.array([2, 0, 3], np.int64)
    _, got = _run(session, lambda v, c: ops.repeat_interleave(v, c, axis=0, out_dim=5), x, counts)
    assert got.tolist() == _repeated(x.tolist(), [2, 0, 3])


def test_one_count_for_every_element(session):
    """MAX's test: a repeats value of one count, as torch broadcasts it."""
    x = np.array([1, 2, 3, 4], np.int64)
    _, got = _run(session, lambda v, c: ops.repeat_interleave(v, c, 0, out_dim=16), x,
                  np.array([4], np.int64))  # fmt: skip
    assert got.tolist() == _repeated(x.tolist(), [4] * 4)


def test_lengths_give_each_id_its_bag(session):
    """TorchRec's jagged layout: lengths per bag, ids concatenated; each id's bag index."""
    lengths = np.array([2, 0, 3, 1], np.int64)
    ids = np.arange(6, dtype=np.int64) * 10

    def build(lengths_value, ids_value):
        batch = lengths_value.shape[0]
        bags = ops.range(0, batch, 1, batch, dtype=DType.int64, device=DeviceRef.CPU())
        return ops.repeat_interleave(bags, lengths_value, axis=0, out_dim=ids_value.shape[0])

    model, got = _run(session, build, lengths, ids, dims=[["batch"], ["n"]])
    assert got.tolist() == [0, 0, 2, 2, 2, 3]
    with pytest.raises(ValueError, match="the repeats sum to 6, and out_dim is 5"):
        model.execute(lengths, ids[:5])
    with pytest.raises(ValueError, match="a repeat count is negative"):
        model.execute(np.array([4, -1, 2, 1], np.int64), ids)


def test_a_count_for_every_element_is_checked_at_execution(session):
    def build(v, c):
        return ops.repeat_interleave(v, c, axis=0, out_dim=4)

    model, got = _run(session, build, np.arange(2, dtype=np.float32), np.array([1, 3], np.int64),
                      dims=[["m"], ["k"]])  # fmt: skip
    assert got.tolist() == [0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="3 repeats for an axis of 2"):
        model.execute(np.arange(2, dtype=np.float32), np.array([1, 1, 2], np.int64))


def test_errors_at_build():
    types = [TensorType(DType.float32, [3, 2]), TensorType(DType.int64, [2])]
    with Graph("e", input_types=types) as g:
        x, counts = g.inputs
        with pytest.raises(ValueError, match="must be positive"):
            ops.repeat_interleave(x, 0)
        with pytest.raises(ValueError, match="not one count"):
            ops.repeat_interleave(x, counts, axis=0, out_dim=4)
        with pytest.raises(ValueError, match="need out_dim"):
            ops.repeat_interleave(x, counts, axis=1)
        with pytest.raises(GraphTypeError, match="integers"):
            ops.repeat_interleave(x, x, axis=1, out_dim=4)
        with pytest.raises(ValueError, match="no axis of a graph input"):
            ops.repeat_interleave(x, counts, axis=1, out_dim="z")


def test_an_out_dim_past_the_machine_is_refused_before_anything_is_made(session):
    def build(v, c):
        return ops.repeat_interleave(v, c, axis=0, out_dim=3 * 2**40)

    with pytest.raises(ValueError, match="out_dim"):
        _run(session, build, np.ones(3, np.float32), np.ones(3, np.int64))
    big = np.array([2**64 - 1, 1, 1], np.uint64)
    with pytest.raises(ValueError, match="negative, or the counts sum past their integer type"):
        _run(
            session,
            lambda v, c: ops.repeat_interleave(v, c, axis=0, out_dim=3),
            np.ones(3, np.float32),
            big,
        )


def test_counts_whose_sum_wraps_int64_and_a_negative_count_on_an_empty_axis(session):
    """Four counts of 2**62 sum to 2**64, which wraps to 0 in int64: that must not pass for
    an out_dim of 0 (numpy would be asked for 2**64 elements). A negative count is refused
    even where the axis is empty, as torch refuses it."""
    types = [TensorType(DType.float32, ["n"]), TensorType(DType.int64, ["r"]),
             TensorType(DType.int8, ["m"])]  # fmt: skip
    with Graph("wrap", input_types=types) as g:
        x, counts, sized = g.inputs
        g.output(ops.repeat_interleave(x, counts, axis=0, out_dim=sized.shape[0]))
    model = session.load(g)
    nothing = np.zeros(0, np.int8)
    for x, counts in ((np.ones(4, np.float32), [2**62]), (np.ones(4, np.float32), [2**62] * 4),
                      (np.ones(0, np.float32), [-1])):  # fmt: skip
        with pytest.raises(ValueError, match="negative, or the counts sum past their integer type"):
            model.execute(x, np.array(counts, np.int64), nothing)
