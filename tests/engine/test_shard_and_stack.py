"""MAX's `shard_and_stack` on CPU devices, both backends, against numpy: each device holds
its equal piece of every input, stacked; and the errors MAX raises."""

from __future__ import annotations

import numpy as np
import pytest

from ember.driver import CPU
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops
from ember.graph.errors import GraphTypeError


@pytest.mark.parametrize(("shape", "axis", "n"), [((10, 4), 0, 2), ((3, 12), -1, 3), ((4,), 0, 4)])
def test_each_device_holds_its_piece_of_every_input(session, shape, axis, n):
    devices = [DeviceRef.CPU(i) for i in range(n)]
    inputs = [
        np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 100 * k for k in range(3)
    ]
    with Graph("shard", input_types=[TensorType(DType.float32, list(shape))] * 3) as g:
        g.output(*ops.shard_and_stack(g.inputs, devices, axis=axis))
    results = session.load(g).execute(*inputs)
    pieces = [np.array_split(x, n, axis=axis) for x in inputs]
    for i, result in enumerate(results):
        assert result.device == CPU(i)
        np.testing.assert_array_equal(result.to_numpy(), np.stack([p[i] for p in pieces]))


def test_errors():
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    types = [TensorType(DType.float32, [5, 4]), TensorType(DType.float32, ["n", 4]),
             TensorType(DType.int32, [5, 4]),
             TensorType(DType.float32, [5, 4], devices[1])]  # fmt: skip
    with Graph("errors", input_types=types) as g:
        odd, symbolic, ints, elsewhere = g.inputs
        with pytest.raises(ValueError, match="evenly divisible by number of devices"):
            ops.shard_and_stack([odd], devices)
        with pytest.raises(ValueError, match="must be static"):
            ops.shard_and_stack([symbolic], devices)
        with pytest.raises(ValueError, match="at least one input"):
            ops.shard_and_stack([], devices)
        with pytest.raises(ValueError, match="at least one device"):
            ops.shard_and_stack([odd], [])
        with pytest.raises(ValueError, match="share one device"):
            ops.shard_and_stack([odd, elsewhere], [devices[0]])
        with pytest.raises(GraphTypeError):
            ops.shard_and_stack([odd, ints], [devices[0]])
        with pytest.raises(TypeError, match="a list of DeviceRefs"):
            ops.shard_and_stack([odd], devices[1])
