"""`ops.range` (MAX's): lengths worked out at build, values against numpy's `arange` and the
``start + i * step`` rule, every form of argument, and every error, on every backend."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Dim, Graph, TensorType, ops
from ember.graph.errors import GraphTypeError

CPU = DeviceRef.CPU()

INT_CASES = [(0, 5, 1), (5, 0, -1), (0, 0, 1), (-5, 0, 1), (0, -5, -1), (0, 5, 2), (0, 5, 10),
             (7, 2, -2), (3, 1, 1)]  # fmt: skip


def _run(session, graph, *inputs):
    return [t.to_numpy() for t in session.load(graph).execute(*inputs)]


@pytest.mark.parametrize(("start", "stop", "step"), INT_CASES)
@pytest.mark.parametrize("dtype", [DType.int8, DType.int32, DType.int64])
def test_numbers_give_numpys_arange(session, start, stop, step, dtype):
    with Graph("range", input_types=()) as g:
        out = ops.range(start, stop, step, dtype=dtype, device=CPU)
        assert out.shape == [len(range(start, stop, step))] and out.dtype == dtype
        g.output(out)
    [got] = _run(session, g)
    want = np.arange(start, stop, step, dtype=dtype.to_numpy())
    assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize(("start", "stop", "step"), INT_CASES)
def test_graph_values_with_out_dim(session, start, stop, step):
    count = len(range(start, stop, step))
    types = [TensorType(DType.int32, [])] * 3
    with Graph("range", input_types=types) as g:
        out = ops.range(*g.inputs, out_dim=count, dtype=DType.int64, device=CPU)
        assert out.shape == [count]
        g.output(out)
    [got] = _run(session, g, *(np.int32(v) for v in (start, stop, step)))
    assert got.dtype == np.int64 and np.array_equal(got, np.arange(start, stop, step))


def test_int64_extremes_are_exact(session):
    top = 2**63 - 1
    with Graph("range", input_types=[TensorType(DType.int64, [])]) as g:
        g.output(ops.range(g.inputs[0], top, 2**62, out_dim=4, dtype=DType.int64, device=CPU))
    [got] = _run(session, g, np.int64(-(2**63)))
    assert got.tolist() == [-(2**63), -(2**62), 0, 2**62]


def test_symbolic_dims_are_their_sizes_at_each_execution(session):
    with Graph("positions", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as g:
        seq = g.inputs[0].shape[1]
        up = ops.range(0, seq, dtype=DType.int64, device=CPU)
        down = ops.range(seq, 0, -1, dtype=DType.int32, device=CPU)
        odd = ops.range(1, seq, 2, dtype=DType.int64, device=CPU)
        assert up.shape == [Dim("seq")] and down.shape == [Dim("seq")]
        g.output(up, down, odd)
    model = session.load(g)
    for seq in (1, 4, 7):
        up, down, odd = (t.to_numpy() for t in model.execute(np.zeros((2, seq), np.int64)))
        assert up.tolist() == list(range(seq)) and down.tolist() == list(range(seq, 0, -1))
        assert odd.tolist() == list(range(1, seq, 2))


@pytest.mark.parametrize("dtype", [DType.float32, DType.float64, DType.float16, DType.bfloat16])
def test_floats_are_start_plus_i_times_step(session, dtype):
    """The length is numpy's (from the ends and step in the dtype); value i is computed in
    float32 (float64 for float64), then rounded to the dtype."""
    np_dtype = dtype.to_numpy()
    work = np.float64 if dtype is DType.float64 else np.float32
    with Graph("range", input_types=[TensorType(DType.float64, [])]) as g:
        fixed = ops.range(0.1, 100.3, 0.1, dtype=dtype, device=CPU)
        given = ops.range(g.inputs[0], 1.8, 0.3, out_dim=4, dtype=dtype, device=CPU)
        g.output(fixed, given)
    fixed, given = _run(session, g, np.float64(0.7))
    for got, (start, stop, step) in ((fixed, (0.1, 100.3, 0.1)), (given, (0.7, 1.8, 0.3))):
        start, stop, step = (
            np.asarray(v).astype(np_dtype).astype(np.float64) for v in (start, stop, step)
        )
        count = int(np.ceil((stop - start) / step))
        i = np.arange(count, dtype=work)
        want = (start.astype(work) + i * step.astype(work)).astype(np_dtype)
        assert got.dtype == np_dtype and got.tobytes() == want.tobytes()


def test_numbers_are_cast_and_devices_taken_from_drivers(session):
    from ember.driver import CPU as HostCPU

    with Graph("range", input_types=()) as g:
        out = ops.range(np.int64(2), 5.0, dtype=DType.float32, device=HostCPU())
        assert out.device == CPU
        g.output(out)
    [got] = _run(session, g)
    assert got.tolist() == [2.0, 3.0, 4.0] and got.dtype == np.float32


def test_build_errors():
    with Graph("bad", input_types=[TensorType(DType.int64, []), TensorType(DType.int64, [2])]):
        scalar, vector = Graph.current.inputs
        with pytest.raises(ValueError, match="step must not be 0"):
            ops.range(0, 5, 0, dtype=DType.int64, device=CPU)
        with pytest.raises(ValueError, match="Dynamic ranges must provide an explicit out_dim"):
            ops.range(0, scalar, dtype=DType.int64, device=CPU)
        with pytest.raises(ValueError, match="range expected scalar values as inputs"):
            ops.range(0, vector, out_dim=2, dtype=DType.int64, device=CPU)
        with pytest.raises(ValueError, match="make 3 values, but out_dim is 2"):
            ops.range(0, 5, 2, out_dim=2, dtype=DType.int64, device=CPU)
        with pytest.raises(TypeError, match="integer or float DType"):
            ops.range(0, 5, dtype=DType.bool, device=CPU)
        with pytest.raises(TypeError, match="a number, a dim or a scalar graph value"):
            ops.range(0, [5], dtype=DType.int64, device=CPU)
        with pytest.raises(GraphTypeError, match="does not fit"):  # MAX raises ValueError
            ops.range(0, 300, dtype=DType.int8, device=CPU)
        with pytest.raises(ValueError, match="no axis of a graph input"):
            ops.range(0, scalar, out_dim="unbound", dtype=DType.int64, device=CPU)
    with Graph("bad", input_types=[TensorType(DType.int64, ["n"])]) as g:
        n = g.inputs[0].shape[0]
        with pytest.raises(ValueError, match="float cannot be combined with a symbolic dim"):
            ops.range(0.5, n, dtype=DType.float32, device=CPU)


def test_a_wrong_length_at_execution_raises(session):
    types = [TensorType(DType.int64, []), TensorType(DType.int64, ["n"])]
    with Graph("range", input_types=types) as g:
        g.output(ops.range(0, g.inputs[0], 1, out_dim="n", dtype=DType.int64, device=CPU))
    model = session.load(g)
    [got] = model.execute(np.int64(3), np.zeros(3, np.int64))
    assert got.to_numpy().tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="make 4 values, but out_dim is 3"):
        model.execute(np.int64(4), np.zeros(3, np.int64))


def test_a_step_of_zero_or_an_infinite_end_at_execution_raises(session):
    types = [TensorType(DType.float32, []), TensorType(DType.float32, [])]
    with Graph("range", input_types=types) as g:
        g.output(
            ops.range(0.0, g.inputs[0], g.inputs[1], out_dim=2, dtype=DType.float32, device=CPU)
        )
    model = session.load(g)
    assert model.execute(np.float32(1), np.float32(0.5))[0].to_numpy().tolist() == [0.0, 0.5]
    for stop, step in ((1.0, 0.0), (np.inf, 1.0), (np.nan, 1.0)):
        with pytest.raises(ValueError, match="no finite length"):
            model.execute(np.float32(stop), np.float32(step))


def test_a_dim_too_large_for_the_dtype_raises(session):
    with Graph("range", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(ops.range(g.inputs[0].shape[0], 0, -1, dtype=DType.int8, device=CPU))
    model = session.load(g)
    assert model.execute(np.zeros(3, np.int64))[0].to_numpy().tolist() == [3, 2, 1]
    with pytest.raises(ValueError, match="outside int8"):
        model.execute(np.zeros(200, np.int64))


def test_bfloat16_has_its_numpy_type(session):
    with Graph("range", input_types=()) as g:
        g.output(ops.range(0, 3, dtype=DType.bfloat16, device=CPU))
    [got] = _run(session, g)
    assert got.dtype == ml_dtypes.bfloat16 and got.astype(np.float32).tolist() == [0, 1, 2]


def test_unsigned_graph_value_ends_are_counted_unsigned(session):
    types = [
        TensorType(DType.uint64, []),
        TensorType(DType.uint32, []),
        TensorType(DType.uint32, []),
    ]
    with Graph("range", input_types=types) as g:
        wide, low, high = g.inputs
        g.output(ops.range(low, high, 1, out_dim=2, dtype=DType.uint32, device=CPU),
                 ops.range(wide, 20, 5, out_dim=0, dtype=DType.uint64, device=CPU))  # fmt: skip
    model = session.load(g)
    pair, empty = model.execute(np.uint64(2**64 - 1), np.uint32(2**31 - 1), np.uint32(2**31 + 1))
    assert pair.to_numpy().tolist() == [2**31 - 1, 2**31] and empty.to_numpy().size == 0
    with pytest.raises(ValueError, match="make 0 values, but out_dim is 2"):
        model.execute(np.uint64(0), np.uint32(2**32 - 1), np.uint32(5))


def test_float_graph_value_ends_are_counted_in_float64(session):
    """`ceil((stop - start) / step)` in float64 on every backend, as numpy's `arange` counts."""
    with Graph("range", input_types=[TensorType(DType.float32, [])]) as g:
        g.output(ops.range(0.8724998, g.inputs[0], 2.8058665, 15, dtype=DType.float32, device=CPU))
    [got] = session.load(g).execute(np.float32(40.154633))
    assert got.to_numpy().shape == (15,)


def test_an_integer_range_over_a_symbolic_dim_of_floats(session):
    with Graph("range", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(ops.range(0, g.inputs[0].shape[0], 1, dtype=DType.float32, device=CPU))
    [got] = session.load(g).execute(np.zeros(3, np.int64))
    assert got.to_numpy().tolist() == [0.0, 1.0, 2.0]


def test_no_finite_length_and_backwards_symbolic_ranges_are_clear_errors(session):
    with Graph("bad", input_types=()):
        for end in (float("inf"), float("nan")):
            with pytest.raises(ValueError, match="make no finite length"):
                ops.range(0.0, end, 1.0, dtype=DType.float32, device=CPU)
    with Graph("range", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(ops.range(0, g.inputs[0].shape[0] - 1, 1, dtype=DType.int64, device=CPU))
    model = session.load(g)
    assert model.execute(np.zeros(3, np.int64))[0].to_numpy().tolist() == [0, 1]
    with pytest.raises(ValueError, match="its length is -1 at this execution"):
        model.execute(np.zeros(0, np.int64))


def test_a_range_over_a_dim_an_input_on_another_device_binds(session):
    """Position ids made on cpu:1 for tokens that arrive on cpu:0, at two lengths in turn."""
    types = [TensorType(DType.float32, ["n"]), TensorType(DType.float32, [2], DeviceRef.CPU(1))]
    with Graph("positions", input_types=types) as g:
        tokens = g.inputs[0]
        g.output(ops.range(0, tokens.shape[0], 1, tokens.shape[0], dtype=DType.int64,
                           device=DeviceRef.CPU(1)))  # fmt: skip
    model = session.load(g)
    for n in (3, 5, 3):
        (positions,) = model.execute(np.zeros(n, np.float32), np.zeros(2, np.float32))
        assert positions.device.id == 1 and positions.to_numpy().tolist() == list(range(n))
