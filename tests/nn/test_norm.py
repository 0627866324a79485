"""`nn.RMSNorm` and `nn.LayerNorm` in the pipelines they serve, on every backend: the final
norm before a tied head's greedy ids (Gemma's RMSNorm), and an encoder's embedding sum under
LayerNorm, against numpy in float64; their weights' names, and bad declarations."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops


def _rms(x: np.ndarray, eps: float) -> np.ndarray:
    rows = x.astype(np.float64).reshape(-1, x.shape[-1])
    roots = [math.sqrt(math.fsum(v * v for v in row) / len(row) + eps) for row in rows]
    return (rows / np.array(roots)[:, None]).reshape(x.shape)


def test_gemma_final_norm_then_the_tied_head(session):
    rng = np.random.default_rng(0)
    vocab, hidden = 500, 64
    table = rng.standard_normal((vocab, hidden)).astype(np.float32)
    norm_weight = rng.uniform(-0.5, 0.5, hidden).astype(np.float32)
    states = rng.standard_normal((6, hidden)).astype(np.float32) * 7
    embedding = nn.EmbeddingV2(vocab, hidden, DType.float32, name="token_embd.weight")
    norm = nn.RMSNorm(hidden, DType.float32, eps=1e-6, weight_offset=1.0, name="output_norm")
    head = nn.LMHead(embedding, output="top_k", k=3)
    with Graph("decode", input_types=[TensorType(DType.float32, ["tokens", hidden])]) as g:
        g.output(*head(norm(g.inputs[0])))
    registry = {"token_embd.weight": table, "output_norm.weight": norm_weight}
    values, ids = (r.to_numpy() for r in session.load(g, registry).execute(states))
    normalized = _rms(states, 1e-6) * (norm_weight.astype(np.float64) + 1.0)
    logits = normalized @ table.astype(np.float64).T
    want = np.argsort(-logits, axis=1, kind="stable")[:, :3]
    assert ids.tolist() == want.tolist()
    np.testing.assert_allclose(values, np.take_along_axis(logits, want, 1), rtol=1e-4)


def test_rms_norm_casts_its_weight_to_the_input_dtype_as_max_does(session):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 32)).astype(ml_dtypes.bfloat16)
    weight = rng.uniform(0.5, 1.5, 32).astype(np.float32)  # not bfloat16 values
    norm = nn.RMSNorm(32, DType.float32, multiply_before_cast=False)  # Llama's
    with Graph("n", input_types=[TensorType(DType.bfloat16, [3, 32])]) as g:
        g.output(norm(g.inputs[0]))
    got = session.load(g, {"weight": weight}).execute(x)[0].to_numpy()
    rounded = _rms(x, 1e-6).astype(ml_dtypes.bfloat16).astype(np.float64)
    want = (rounded * weight.astype(ml_dtypes.bfloat16).astype(np.float64)).astype(x.dtype)
    assert got.dtype == x.dtype and got.tolist() == want.tolist()


@pytest.mark.parametrize("use_bias", [True, False])
def test_an_encoder_s_embedding_sum_under_layer_norm(session, use_bias):
    rng = np.random.default_rng(2)
    words = rng.standard_normal((100, 48)).astype(np.float32)
    positions = rng.standard_normal((16, 48)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 48).astype(np.float32)
    beta = rng.standard_normal(48).astype(np.float32)
    word_layer = nn.EmbeddingV2(100, 48, DType.float32, name="word_embeddings.weight")
    position_layer = nn.EmbeddingV2(16, 48, DType.float32, name="position_embeddings.weight")
    norm = nn.LayerNorm(48, [DeviceRef.CPU()], DType.float32, 1e-12, use_bias, name="LayerNorm")
    assert sorted(norm.raw_state_dict()) == ["LayerNorm.bias", "LayerNorm.weight"][not use_bias :]
    ids = np.array([[5, 17, 99, 0]], np.int64)
    with Graph("encode", input_types=[TensorType(DType.int64, [1, "seq"])]) as g:
        tokens = g.inputs[0]
        where = ops.range(
            0, tokens.shape[1], 1, tokens.shape[1], dtype=DType.int64, device=DeviceRef.CPU()
        )
        g.output(norm(word_layer(tokens) + position_layer(where)))
    registry = {"word_embeddings.weight": words, "position_embeddings.weight": positions,
                "LayerNorm.weight": gamma, "LayerNorm.bias": beta}  # fmt: skip
    if not use_bias:
        del registry["LayerNorm.bias"]
    got = session.load(g, registry).execute(ids)[0].to_numpy()
    summed = words[ids[0]] + positions[:4]  # float32, as the graph adds them
    centered = summed.astype(np.float64) - summed.astype(np.float64).mean(axis=1, keepdims=True)
    normalized = centered / np.sqrt((centered**2).mean(axis=1, keepdims=True) + 1e-12)
    want = normalized * gamma + (beta if use_bias else 0)
    np.testing.assert_allclose(got[0], want, rtol=2e-6, atol=2e-6)


def test_bad_declarations():
    with pytest.raises(ValueError, match="must be a positive int"):
        nn.RMSNorm(0, DType.float32)
    with pytest.raises(ValueError, match="must be a positive int"):
        nn.LayerNorm(2.5, [DeviceRef.CPU()], DType.float32)
    norm = nn.RMSNorm(8, DType.float32)
    with (
        Graph("g", input_types=[TensorType(DType.float32, [2, 9])]) as g,
        pytest.raises(ValueError, match=r"must be \[9\]"),
    ):
        norm(g.inputs[0])


@pytest.mark.parametrize("dtype", [DType.float32, DType.bfloat16])
def test_constant_layer_norm_has_no_weights_and_normalizes(session, dtype):
    norm = nn.ConstantLayerNorm((16,), DeviceRef.CPU(), dtype, eps=1e-5)
    assert norm.raw_state_dict() == {}
    x = np.random.default_rng(2).standard_normal((3, 16)).astype(dtype.to_numpy())
    graph = Graph("norm", norm, input_types=[TensorType(dtype, ["n", 16], DeviceRef.CPU())])
    got = session.load(graph).execute(x)[0].to_numpy()
    rows = x.astype(np.float64)
    centred = rows - rows.mean(axis=1, keepdims=True)
    want = centred / np.sqrt((centred**2).mean(axis=1, keepdims=True) + 1e-5)
    assert got.dtype == x.dtype
    tolerance = 1e-5 if dtype is DType.float32 else 1e-2
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tolerance, atol=tolerance)
    with pytest.raises(ValueError, match="must be a positive int"):
        nn.ConstantLayerNorm((4, 4), DeviceRef.CPU(), DType.float32)
