"""`nn.Linear` on every backend: dense weights against float64 numpy within the float32 dot
bound, a bias, quantized weights against `gguf.quants.dequantize` then float64 products, and
a recommendation model's MLP over pooled bags; names and bad declarations."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from conftest import assert_within_dot_bound
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

import ember.nn as nn
from ember.dtype import DType
from ember.graph import Graph, QuantizationEncoding, TensorType, ops
from ember.quant import FORMATS
from ember.quant.samples import sample_table


def test_dense_linear_with_a_bias(session):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((10, 64)).astype(np.float32)
    bias = rng.standard_normal(10).astype(np.float32)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    layer = nn.Linear(64, 10, DType.float32, has_bias=True, name="fc")
    plain = nn.Linear(64, 10, DType.float32)
    plain.weight = layer.weight  # the same weight, no bias
    with Graph("fc", input_types=[TensorType(DType.float32, ["batch", 64])]) as g:
        g.output(layer(g.inputs[0]), plain(g.inputs[0]))
    with_bias, without = (r.to_numpy() for r in session.load(
        g, {"fc.weight": weight, "fc.bias": bias}).execute(x))  # fmt: skip
    assert_within_dot_bound(without, x, weight)
    assert_within_dot_bound(with_bias - bias, x, weight)  # the bias added once, in float32
    np.testing.assert_allclose(with_bias, without + bias, rtol=0, atol=1e-6)


def test_a_bfloat16_weight_under_float32_inputs(session):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((7, 32)).astype(ml_dtypes.bfloat16)
    x = rng.standard_normal((3, 32)).astype(np.float32)
    with Graph("fc", input_types=[TensorType(DType.float32, [3, 32])]) as g:
        g.output(nn.Linear(32, 7, DType.bfloat16)(g.inputs[0]))
    got = session.load(g, {"weight": weight}).execute(x)[0].to_numpy()
    assert got.dtype == np.float32
    assert_within_dot_bound(got, x, weight.astype(np.float32))


@pytest.mark.parametrize("name", ["q4_k", "q8_0", "q6_k"])
def test_quantized_weights_are_read_block_by_block(session, name):
    encoding = QuantizationEncoding[name.upper()]
    blocks = sample_table(name, 40, 512, seed=2)
    bias = np.linspace(-1, 1, 40).astype(np.float32)
    x = np.random.default_rng(3).standard_normal((4, 512)).astype(ml_dtypes.bfloat16)
    layer = nn.Linear(blocks.shape[1], 40, DType.uint8, has_bias=True,
                      quantization_encoding=encoding, name="out")  # fmt: skip
    with Graph("q", input_types=[TensorType(DType.bfloat16, [4, 512])]) as g:
        g.output(layer(g.inputs[0]))
    got = session.load(g, {"out.weight": blocks, "out.bias": bias}).execute(x)[0].to_numpy()
    table = gguf_dequantize(blocks, GGMLQuantizationType(FORMATS[name].ggml_type))
    assert got.dtype == np.float32 and got.shape == (4, 40)
    assert_within_dot_bound(got - bias, x.astype(np.float32), table)


def test_an_mlp_over_pooled_bags(session):
    """A recommendation model's top: pooled features, a hidden layer, relu, one logit, sigmoid."""
    rng = np.random.default_rng(4)
    items = rng.standard_normal((100, 16)).astype(np.float32)
    w1, b1 = (
        rng.standard_normal((8, 16)).astype(np.float32),
        rng.standard_normal(8).astype(np.float32),
    )
    w2, b2 = (
        rng.standard_normal((1, 8)).astype(np.float32),
        rng.standard_normal(1).astype(np.float32),
    )
    bag = nn.EmbeddingBag(100, 16, DType.float32, name="items", mode="mean")
    hidden, out = nn.Linear(16, 8, DType.float32, has_bias=True, name="l1"), nn.Linear(
        8, 1, DType.float32, has_bias=True, name="l2")  # fmt: skip
    with Graph("ctr", input_types=[TensorType(DType.int64, ["batch", 3])]) as g:
        g.output(ops.sigmoid(out(ops.relu(hidden(bag(g.inputs[0]))))))
    registry = {"items": items, "l1.weight": w1, "l1.bias": b1, "l2.weight": w2, "l2.bias": b2}
    ids = rng.integers(0, 100, (6, 3))
    got = session.load(g, registry).execute(ids)[0].to_numpy()
    pooled = items[ids].astype(np.float64).mean(axis=1)
    logit = np.maximum(pooled @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-logit)), rtol=1e-5, atol=1e-6)


def test_bad_declarations_and_inputs():
    with pytest.raises(ValueError, match="in_dim must be a positive int"):
        nn.Linear(0, 4, DType.float32)
    with pytest.raises(TypeError, match="uint8"):
        nn.Linear(144, 4, DType.float32, quantization_encoding=QuantizationEncoding.Q4_K)
    layer = nn.Linear(8, 4, DType.float32)
    with (
        Graph("g", input_types=[TensorType(DType.float32, [2, 9])]) as g,
        pytest.raises(ValueError),
    ):
        layer(g.inputs[0])
