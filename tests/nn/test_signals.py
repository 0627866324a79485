"""MAX's multi-device code with its signal buffers, on CPU devices: `nn.Signals`' buffer types
among a graph's inputs, its buffers given to the vocabulary-parallel lookup, `allreduce.sum`,
`allgather` and `distributed_broadcast` as MAX passes them, and `execute` given the buffers;
results against numpy. A buffer is no op's operand, and says so."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU, Buffer
from ember.dtype import DType
from ember.graph import BufferType, BufferValue, DeviceRef, Graph, TensorType, ops


@pytest.mark.parametrize("count", [1, 2, 3])
def test_max_s_multi_device_pattern_runs_on_cpu_devices(session, count):
    devices = [DeviceRef.CPU(i) for i in range(count)]
    signals = nn.Signals(devices)
    layer = nn.VocabParallelEmbedding(50, 8, DType.float32, devices, name="embed")
    types = [TensorType(DType.int64, ["n"]), *signals.input_types()]
    with Graph("max_style", input_types=types) as g:
        ids, *signal_inputs = g.inputs
        buffers = [v.buffer for v in signal_inputs]
        rows = layer(ids.tensor, buffers)
        summed = ops.allreduce.sum(rows, buffers)
        gathered = ops.allgather(rows, buffers, axis=1)
        copies = ops.distributed_broadcast(rows[0] * 3, buffers)
        g.output(*rows, *summed, *gathered, *copies)
    table = np.random.default_rng(count).standard_normal((50, 8)).astype(np.float32)
    model = session.load(g, {"embed": table})
    assert model.devices == [CPU(i) for i in range(count)]
    ids_array = np.array([0, 49, 17, 17, 3], np.int64)
    results = model.execute(ids_array, *signals.buffers())
    rows, summed, gathered, copies = (results[k * count : (k + 1) * count] for k in range(4))
    want = table[ids_array]
    for k, device in enumerate(devices):
        assert rows[k].device == summed[k].device == copies[k].device == CPU(device.id)
        np.testing.assert_array_equal(rows[k].to_numpy(), want)
        np.testing.assert_allclose(summed[k].to_numpy(), want * count, rtol=1e-6)
        np.testing.assert_array_equal(gathered[k].to_numpy(), np.concatenate([want] * count, 1))
        np.testing.assert_array_equal(copies[k].to_numpy(), want * 3)


def test_max_s_allreduce_layer(session):
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    signals = nn.Signals(devices)
    layer = nn.Allreduce(num_accelerators=2)
    types = [TensorType(DType.float32, [3], d) for d in devices]
    with Graph("sum", input_types=[*types, *signals.input_types()]) as g:
        values, buffers = g.inputs[:2], g.inputs[2:]
        g.output(*layer(values, [b.buffer for b in buffers]))
    a, b = np.arange(3, dtype=np.float32), np.full(3, 10, np.float32)
    for total in session.load(g).execute(a, b, *signals.buffers()):
        assert total.to_numpy().tolist() == (a + b).tolist()
    with pytest.raises(ValueError, match="At least one accelerator"):
        nn.Allreduce(0)
    with Graph("three", input_types=types) as g, pytest.raises(ValueError, match="2 inputs for 3"):
        nn.Allreduce(3)(g.inputs)


def test_signal_buffers_are_checked_as_inputs(session):
    signals = nn.Signals([DeviceRef.CPU(0)])
    with Graph("g", input_types=[TensorType(DType.float32, [2]), *signals.input_types()]) as g:
        g.output(g.inputs[0] * 2)
    model = session.load(g)
    x = np.array([1, 2], np.float32)
    np.testing.assert_array_equal(model.execute(x, *signals.buffers())[0].to_numpy(), x * 2)
    with pytest.raises(ValueError, match="input 1: axis 0 must be 1"):
        model.execute(x, Buffer.zeros((3,), DType.uint8))
    with pytest.raises(TypeError, match="takes 2 inputs, got 1"):
        model.execute(x)


def test_a_buffer_is_no_op_s_operand():
    signals = nn.Signals([DeviceRef.CPU(0)])
    with Graph("g", input_types=[TensorType(DType.float32, [1]), *signals.input_types()]) as g:
        x, buffer = g.inputs
        assert isinstance(buffer, BufferValue) and buffer.buffer is buffer
        assert buffer.type == BufferType(DType.uint8, [1], DeviceRef.CPU(0))
        with pytest.raises(TypeError, match="is a buffer"):
            buffer + 1
        with pytest.raises(TypeError, match="is a buffer, not a tensor"):
            _ = buffer.tensor
        with pytest.raises(TypeError, match="is a tensor, not a buffer"):
            _ = x.buffer
        with pytest.raises(TypeError, match="devices or signal_buffers, not both"):
            ops.distributed_broadcast(x, [DeviceRef.CPU(1)], signal_buffers=[buffer])


def test_buffer_types_and_bad_signals():
    buffer = BufferType(DType.uint8, [4], DeviceRef.CPU(1))
    assert buffer != TensorType(DType.uint8, [4], DeviceRef.CPU(1)) == buffer.as_tensor()
    assert buffer.cast(DType.int8) == BufferType(DType.int8, [4], DeviceRef.CPU(1))
    assert len({buffer, buffer.as_tensor()}) == 2
    with pytest.raises(ValueError, match="at least one device"):
        nn.Signals([])
    with pytest.raises(ValueError, match="each device once"):
        nn.Signals([DeviceRef.CPU(0), DeviceRef.CPU(0)])
    with pytest.raises(TypeError, match=r"expected an ember\.driver device"):
        nn.Signals(["cpu:0"])
