"""MAX's `reducescatter.sum` on CPU devices, both backends, against numpy's sum split as MAX
splits it (`numpy.array_split`: the first `size % n` devices take one more): every axis,
ragged and empty runs, integers exact, MAX's signal buffers taken, and the errors MAX raises.
A tied head refuses its runs as it refuses a scattering lookup's."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops


def _model(session, shape, n, dtype=DType.float32, axis=0, signals=False):
    devices = [DeviceRef.CPU(i) for i in range(n)]
    types = [TensorType(dtype, list(shape), d) for d in devices]
    buffers = nn.Signals(devices) if signals else None
    with Graph(
        "reducescatter", input_types=[*types, *(buffers.input_types() if signals else [])]
    ) as g:
        values, rest = g.inputs[:n], g.inputs[n:]
        g.output(*ops.reducescatter.sum(values, [v.buffer for v in rest] or None, axis=axis))
    return session.load(g), buffers


@pytest.mark.parametrize(
    ("shape", "n", "axis"),
    [((8, 3), 2, 0), ((5, 3), 2, 0), ((4, 7), 3, 1), ((2, 5, 4), 3, -2), ((2, 3), 4, 0),
     ((6,), 1, 0), ((0, 2), 2, 0), ((3, 0), 2, 0)],
)  # fmt: skip
def test_each_device_gets_its_run_of_the_sum(session, shape, n, axis):
    rng = np.random.default_rng(n * 10 + len(shape))
    inputs = [rng.integers(-1000, 1000, shape).astype(np.int32) for _ in range(n)]
    model, _ = _model(session, shape, n, DType.int32, axis)
    results = model.execute(*inputs)
    runs = np.array_split(np.sum(inputs, axis=0, dtype=np.int32), n, axis=axis)
    assert [r.device for r in results] == [CPU(i) for i in range(n)]
    for result, run in zip(results, runs, strict=True):
        assert result.to_numpy().shape == run.shape
        np.testing.assert_array_equal(result.to_numpy(), run)


def test_floats_with_signal_buffers_as_max_passes_them(session):
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((7, 16)).astype(np.float32) for _ in range(3)]
    model, signals = _model(session, (7, 16), 3, signals=True)
    results = model.execute(*inputs, *signals.buffers())
    runs = np.array_split(np.sum(np.array(inputs, np.float64), axis=0), 3)
    for result, run in zip(results, runs, strict=True):
        np.testing.assert_allclose(result.to_numpy(), run, rtol=1e-6, atol=1e-6)


def test_symbolic_dims_split_at_execution(session):
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    types = [TensorType(DType.float32, ["batch", 4], d) for d in devices]
    with Graph("symbolic", input_types=types) as g:
        first, second = ops.reducescatter.sum(g.inputs)
        assert first.shape[0].evaluate({"batch": 5}) == 3
        assert second.shape[0].evaluate({"batch": 5}) == 2
        g.output(first, second)
    model = session.load(g)
    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    got = [r.to_numpy() for r in model.execute(x, x)]
    np.testing.assert_array_equal(np.concatenate(got), 2 * x)


def test_errors_at_build():
    on_0, on_1 = DeviceRef.CPU(0), DeviceRef.CPU(1)
    types = [TensorType(DType.float32, [4, 2], on_0), TensorType(DType.float32, [4, 3], on_1),
             TensorType(DType.int32, [4, 2], on_1), TensorType(DType.bool, [2], on_0),
             TensorType(DType.bool, [2], on_1), TensorType(DType.float32, [], on_1)]  # fmt: skip
    with Graph("errors", input_types=types) as g:
        a, wide, ints, flag_0, flag_1, scalar = g.inputs
        with pytest.raises(ValueError, match="each input must be on its own device"):
            ops.reducescatter.sum([a, a])
        with pytest.raises(ValueError, match="must have the same shape"):
            ops.reducescatter.sum([a, wide])
        with pytest.raises(TypeError, match="dtypes differ"):
            ops.reducescatter.sum([a, ints])
        with pytest.raises(TypeError, match="got bool values"):
            ops.reducescatter.sum([flag_0, flag_1])
        with pytest.raises(ValueError, match="got a scalar"):
            ops.reducescatter.sum([a.reshape([8])[0], scalar])
        with pytest.raises(ValueError, match="at least one input"):
            ops.reducescatter.sum([])
        with pytest.raises(TypeError, match="signal_buffers"):
            ops.reducescatter.sum([a], 1)


def test_a_head_refuses_the_runs_of_a_reduce_scatter():
    emb = nn.VocabParallelEmbedding(64, 8, DType.float32, [DeviceRef.CPU(0), DeviceRef.CPU(1)])
    types = [TensorType(DType.float32, [4, 8], DeviceRef.CPU(i)) for i in range(2)]
    with Graph("head", input_types=types) as g:
        runs = ops.reducescatter.sum(g.inputs)
        with pytest.raises(ValueError, match=r"reducescatter\.sum, which leave each device"):
            nn.LMHead(emb, output="argmax")(runs)
