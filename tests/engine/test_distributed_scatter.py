"""MAX's `distributed_scatter` on CPU devices, both backends: each group of devices gets its
chunk, named by signal buffers as MAX names them; and MAX's refusals."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops


@pytest.mark.parametrize(("devices", "chunks"), [(4, 2), (3, 2), (2, 2), (3, 1), (3, 3)])
def test_each_group_of_devices_gets_its_chunk(session, devices, chunks):
    refs = [DeviceRef.CPU(i) for i in range(devices)]
    signals = nn.Signals(refs)
    types = [TensorType(DType.int64, [k + 1]) for k in range(chunks)]
    with Graph("scatter", input_types=[*types, *signals.input_types()]) as g:
        parts, buffers = g.inputs[:chunks], g.inputs[chunks:]
        g.output(*ops.distributed_scatter(parts, [b.buffer for b in buffers]))
    arrays = [np.arange(k + 1) * 10 + k for k in range(chunks)]
    results = session.load(g).execute(*arrays, *signals.buffers())
    group = -(-devices // chunks)
    for i, result in enumerate(results):
        assert result.device == CPU(i)
        assert result.to_numpy().tolist() == arrays[min(i // group, chunks - 1)].tolist()


def test_refusals():
    refs = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    types = [TensorType(DType.int64, [2]), TensorType(DType.int64, [2], refs[1])]
    with Graph("errors", input_types=types) as g:
        here, there = g.inputs
        with pytest.raises(ValueError, match="at least 1 input chunk"):
            ops.distributed_scatter([], refs)
        with pytest.raises(ValueError, match="on the same device"):
            ops.distributed_scatter([here, there], refs)
        with pytest.raises(ValueError, match="unique devices"):
            ops.distributed_scatter([here], [refs[0], refs[0]])
        with pytest.raises(ValueError, match="not found in signal buffer devices"):
            ops.distributed_scatter([there], [refs[0], DeviceRef.CPU(2)])
        with pytest.raises(TypeError, match="expected signal buffers"):
            ops.distributed_scatter([here], ["cpu:0"])
        with pytest.raises(ValueError, match="3 chunks for 2 devices"):
            ops.distributed_scatter([here, here, here], refs)
