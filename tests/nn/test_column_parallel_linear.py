"""MAX's `ColumnParallelLinear` on CPU devices, both backends: a tied head over an embedding's
weight (dense and Q8_0) gives every device logits bit-identical to the unsharded head's, a
bias splits with the rows, and MAX's refusals hold."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, ops
from ember.quant.samples import sample_table


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("encoding", [None, "q8_0"])
def test_a_tied_head_equals_the_unsharded_head_on_every_device(session, count, encoding):
    devices = [DeviceRef.CPU(i) for i in range(count)]
    if encoding is None:
        table = np.random.default_rng(count).standard_normal((50, 32)).astype(np.float32)
        embedding = nn.EmbeddingV2(50, 32, DType.float32, name="tok")
        head = nn.ColumnParallelLinear(32, 50, DType.float32, devices, tied_weight=embedding.weight)
    else:
        table = sample_table(encoding, 50, 32, seed=count)
        quantized = QuantizationEncoding[encoding.upper()]
        embedding = nn.EmbeddingV2(50, table.shape[1], DType.uint8, None, quantized, "tok")
        head = nn.ColumnParallelLinear(table.shape[1], 50, DType.uint8, devices,
                                       tied_weight=embedding.weight,
                                       quantization_encoding=quantized)  # fmt: skip
    signals = nn.Signals(devices)
    with Graph("tied", input_types=[TensorType(DType.int64, ["n"]), *signals.input_types()]) as g:
        ids, *buffers = g.inputs
        hidden = embedding(ids)
        logits = head(ops.distributed_broadcast(hidden, devices), [b.buffer for b in buffers])
        g.output(*logits, nn.LMHead(embedding)(hidden))
    model = session.load(g, {"tok": table})
    *sharded, whole = model.execute(np.array([3, 0, 49, 3]), *signals.buffers())
    assert [s.device for s in sharded] == [CPU(i) for i in range(count)]
    for logits in sharded:
        assert logits.to_numpy().tobytes() == whole.to_numpy().tobytes()


def test_a_bias_splits_with_the_rows(session):
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    layer = nn.ColumnParallelLinear(8, 5, DType.float32, devices, has_bias=True, name="fc")
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((5, 8)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    with Graph("fc", input_types=[TensorType(DType.float32, [3, 8])]) as g:
        g.output(*layer(g.inputs[0]))
    for y in session.load(g, {"fc.weight": weight, "fc.bias": bias}).execute(x):
        np.testing.assert_allclose(y.to_numpy(), x @ weight.T + bias, rtol=1e-5, atol=1e-5)


def test_refusals():
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    embedding = nn.EmbeddingV2(50, 32, DType.float32, name="tok")
    with pytest.raises(ValueError, match="non-empty devices"):
        nn.ColumnParallelLinear(32, 50, DType.float32, [])
    with pytest.raises(ValueError, match="float8 and bias are both unsupported"):
        nn.ColumnParallelLinear(32, 50, DType.float32, devices, embedding.weight, has_bias=True)
    with pytest.raises(ValueError, match="float8 and bias are both unsupported"):
        nn.ColumnParallelLinear(32, 50, DType.float32, devices, embedding.weight, quant_config={})
    nn.ColumnParallelLinear(32, 50, DType.float32, devices, quant_config={})  # MAX's empty one
    with pytest.raises(NotImplementedError, match="float8 scaling"):
        nn.Linear(32, 50, DType.float32, quant_config={"weight_scale": 1})
    with pytest.raises(ValueError, match="the tied weight 'tok' is"):
        nn.ColumnParallelLinear(32, 49, DType.float32, devices, tied_weight=embedding.weight)
    layer = nn.ColumnParallelLinear(32, 50, DType.float32, devices, tied_weight=embedding.weight)
    with (
        Graph("g", input_types=[TensorType(DType.float32, [1, 32])] * 3) as g,
        pytest.raises(ValueError, match="3 inputs for 2 devices"),
    ):
        layer(list(g.inputs))
