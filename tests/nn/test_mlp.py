"""`nn.MLP` (MAX's gated feed-forward block) against a float64 numpy reference: every
activation, biases, MAX's swiglu limit, GGUF-quantized weights, and its refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember import nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS

HIDDEN, FFL = 32, 64


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(x)


REFERENCE = {
    "silu": lambda x: x / (1 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


def _run(session, mlp, arrays, x):
    mlp.load_state_dict(arrays)
    input_type = TensorType(DType.float32, ["batch", HIDDEN], DeviceRef.CPU())
    graph = Graph("mlp", mlp, input_types=[input_type])
    return session.load(graph, weights_registry=mlp.state_dict()).execute(x)[0].to_numpy()


def _arrays(rng, has_bias):
    arrays = {
        "gate_proj.weight": rng.standard_normal((FFL, HIDDEN)) / 4,
        "up_proj.weight": rng.standard_normal((FFL, HIDDEN)) / 4,
        "down_proj.weight": rng.standard_normal((HIDDEN, FFL)) / 4,
    }
    if has_bias:
        arrays |= {
            "gate_proj.bias": rng.standard_normal(FFL),
            "up_proj.bias": rng.standard_normal(FFL),
            "down_proj.bias": rng.standard_normal(HIDDEN),
        }
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def _reference(arrays, x, activation, limit=0.0):
    w = {k: v.astype(np.float64) for k, v in arrays.items()}
    x = x.astype(np.float64)

    def proj(name, v):
        return v @ w[f"{name}.weight"].T + w.get(f"{name}.bias", 0.0)

    gate, up = REFERENCE[activation](proj("gate_proj", x)), proj("up_proj", x)
    if limit:
        gate, up = np.minimum(gate, limit), np.clip(up, -limit, limit)
    return proj("down_proj", gate * up)


@pytest.mark.parametrize("activation", sorted(REFERENCE))
@pytest.mark.parametrize("has_bias", [False, True])
def test_each_activation_matches_a_float64_reference(session, activation, has_bias):
    rng = np.random.default_rng(len(activation) + has_bias)
    arrays = _arrays(rng, has_bias)
    x = rng.standard_normal((3, HIDDEN)).astype(np.float32)
    mlp = nn.MLP(DType.float32, None, HIDDEN, FFL, [DeviceRef.CPU()], has_bias=has_bias,
                 activation_function=activation)  # fmt: skip
    got = _run(session, mlp, arrays, x)
    np.testing.assert_allclose(got, _reference(arrays, x, activation), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("limit", [0.5, 2.0])
def test_swiglu_limit_caps_the_gate_and_clips_up(session, limit):
    rng = np.random.default_rng(7)
    arrays = _arrays(rng, False)
    x = (3 * rng.standard_normal((4, HIDDEN))).astype(np.float32)
    mlp = nn.MLP(DType.float32, None, HIDDEN, FFL, [DeviceRef.CPU()], swiglu_limit=limit)
    got = _run(session, mlp, arrays, x)
    want = _reference(arrays, x, "silu", limit)
    assert not np.allclose(want, _reference(arrays, x, "silu"))  # the limit acts
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_quantized_weights_read_as_gguf_decodes_them(session):
    rng = np.random.default_rng(3)
    fmt = FORMATS["q8_0"]
    dense = {"gate_proj.weight": (FFL, HIDDEN), "up_proj.weight": (FFL, HIDDEN),
             "down_proj.weight": (HIDDEN, FFL)}  # fmt: skip
    blocks = {k: fmt.quantize(rng.standard_normal(s).astype(np.float32)) for k, s in dense.items()}
    decoded = {k: fmt.dequantize(v) for k, v in blocks.items()}
    x = rng.standard_normal((2, HIDDEN)).astype(np.float32)
    mlp = nn.MLP(DType.uint8, QuantizationEncoding.Q8_0, HIDDEN, FFL, [DeviceRef.CPU()])
    got = _run(session, mlp, blocks, x)
    np.testing.assert_allclose(got, _reference(decoded, x, "silu"), rtol=5e-4, atol=5e-4)


def test_refusals():
    cpu = [DeviceRef.CPU()]
    with pytest.raises(ValueError, match=r"Unrecognized activation function name \(swish\)"):
        nn.MLP(DType.float32, None, HIDDEN, FFL, cpu, activation_function="swish")
    with pytest.raises(ValueError, match="no device"):
        nn.MLP(DType.float32, None, HIDDEN, FFL, [])
    with pytest.raises(ValueError, match="is_sharding"):
        nn.MLP(DType.float32, None, HIDDEN, FFL, cpu, is_sharding=True)
    with pytest.raises(ValueError, match="swiglu_limit"):
        nn.MLP(DType.float32, None, HIDDEN, FFL, cpu, swiglu_limit=float("nan"))
    assert nn.activation_function_from_name("relu") is not None
