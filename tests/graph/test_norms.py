"""MAX's `layer_norm` and `rms_norm` (Llama's and Gemma's variants) on every backend, against
float64 references summed exactly (`math.fsum`), rounded where each variant rounds."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Graph, TensorType, ops
from ember.graph.errors import GraphTypeError

BF16 = ml_dtypes.bfloat16


def _run(session, make, x: np.ndarray, dims=None) -> np.ndarray:
    dims = dims or list(x.shape)
    with Graph("n", input_types=[TensorType(DType.from_numpy(x.dtype), dims)]) as g:
        g.output(make(g.inputs[0]))
    return session.load(g).execute(x)[0].to_numpy()


def _rows(x: np.ndarray):
    flat = x.astype(np.float64).reshape(-1, x.shape[-1])
    return flat, x.shape[-1]


def _layer_norm_reference(x, gamma, beta, epsilon) -> np.ndarray:
    flat, n = _rows(x)
    out = np.empty_like(flat)
    for i, row in enumerate(flat):
        mean = math.fsum(row) / n
        variance = math.fsum((v - mean) ** 2 for v in row) / n
        out[i] = (row - mean) / math.sqrt(variance + epsilon) * gamma + beta
    return out.reshape(x.shape)


def _normalized(x, epsilon) -> np.ndarray:
    flat, n = _rows(x)
    roots = np.array([math.sqrt(math.fsum(v * v for v in row) / n + epsilon) for row in flat])
    return (flat / roots[:, None]).reshape(x.shape)


def _ulps(got, want, dtype) -> np.ndarray:
    bits = {np.float32: (np.int32, 0x7FFFFFFF), BF16: (np.int16, 0x7FFF)}[dtype]

    def ordered(a):
        b = np.asarray(a, dtype).view(bits[0]).astype(np.int64)
        return np.where(b < 0, -(b & bits[1]), b)

    return np.abs(ordered(got) - ordered(want))


@pytest.mark.parametrize("dtype", [np.float32, BF16])
def test_layer_norm_matches_float64(session, backend, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 5, 384)) * 3 + 1).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, 384).astype(np.float32)
    beta = rng.standard_normal(384).astype(np.float32)
    got = _run(session, lambda v: ops.layer_norm(v, gamma, beta, 1e-12), x)
    want = _layer_norm_reference(x, gamma.astype(np.float64), beta.astype(np.float64), 1e-12)
    assert got.dtype == dtype and got.shape == x.shape
    if backend == "native" or dtype is BF16:  # one rounding (xla's float32 error is below bf16's)
        assert _ulps(got, want.astype(dtype), dtype).max() <= 1
    else:
        bound = 2**-19 * (np.abs(gamma) * np.abs(want - beta) + np.abs(beta) + 1)
        assert (np.abs(got - want) <= bound).all(), np.max(np.abs(got - want) / bound)


def test_layer_norm_of_symbolic_tokens_and_edge_rows(session):
    x = np.array([[2.0, 2.0, 2.0, 2.0], [1.0, np.inf, 0.0, 0.0], [0.0, 1.0, 2.0, 3.0]], np.float32)
    gamma, beta = np.full(4, 2.0, np.float32), np.arange(4, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _run(session, lambda v: ops.layer_norm(v, gamma, beta, 1e-5), x, ["tokens", 4])
    assert got[0].tolist() == beta.tolist()  # no variance: beta alone
    assert np.isnan(got[1]).all()
    want = _layer_norm_reference(x[2:], 2.0, beta.astype(np.float64), 1e-5)
    np.testing.assert_allclose(got[2:], want, rtol=1e-6)


@pytest.mark.parametrize("wide_product", [False, True])
def test_rms_norm_rounds_where_its_variant_rounds(session, wide_product):
    """Llama's variant rounds the normalized value to bfloat16 before the weight, Gemma's
    multiplies first: each matches its own reference, and the two differ somewhere."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 256)) * 2).astype(BF16)
    weight = rng.uniform(-2, 2, 256).astype(BF16)
    offset = 1.0 if wide_product else 0.0
    got = _run(
        session,
        lambda v: ops.rms_norm(v, weight, 1e-6, offset, multiply_before_cast=wide_product),
        x,
    )
    normalized = _normalized(x, 1e-6)
    scale = weight.astype(np.float64) + offset
    if not wide_product:
        normalized = normalized.astype(BF16).astype(np.float64)
    want = (normalized * scale).astype(BF16)
    assert got.dtype == BF16 and _ulps(got, want, BF16).max() <= 1
    other = normalized.astype(BF16).astype(np.float64) if wide_product else _normalized(x, 1e-6)
    assert (_ulps((other * scale).astype(BF16), want, BF16) > 0).any()  # the variants differ


def test_rms_norm_float32_and_zero_rows(session, backend):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 64)).astype(np.float32)
    x[0] = 0.0
    weight = rng.uniform(0.5, 1.5, 64).astype(np.float32)
    got = _run(session, lambda v: ops.rms_norm(v, weight, 1e-6), x)
    want = (_normalized(x, 1e-6).astype(np.float32).astype(np.float64) * weight).astype(np.float32)
    assert got[0].tolist() == [0.0] * 64
    assert _ulps(got, want, np.float32).max() <= (1 if backend == "native" else 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nan = _run(session, lambda v: ops.rms_norm(v, weight, 0.0), np.zeros((1, 64), np.float32))
    assert np.isnan(nan).all()  # 0 / 0 without epsilon


def test_norm_errors_at_build():
    with Graph("e", input_types=[TensorType(DType.float32, ["t", 8]),
                                 TensorType(DType.int32, ["t", 8])]) as g:  # fmt: skip
        x, ints = g.inputs
        ones = np.ones(8, np.float32)
        with pytest.raises(ValueError, match=r"must be \[8\]"):
            ops.layer_norm(x, np.ones(7, np.float32), ones, 1e-5)
        with pytest.raises(ValueError, match="beta"):
            ops.layer_norm(x, ones, np.ones((1, 8), np.float32), 1e-5)
        with pytest.raises(GraphTypeError, match="floats"):
            ops.rms_norm(x, np.ones(8, np.int32), 1e-6)
        with pytest.raises(ValueError, match="positive"):
            ops.layer_norm(x, ones, ones, 0.0)
        with pytest.raises(ValueError, match="0 or more"):
            ops.rms_norm(x, ones, -1e-6)
        with pytest.raises(TypeError, match="float"):
            ops.layer_norm(ints, ones, ones, 1e-5)
        with pytest.raises(ValueError, match="scalar"):
            ops.rms_norm(np.float32(1.0), ones[:1], 1e-6)


def test_a_symbolic_last_dimension_is_checked_at_execution(session):
    """As MAX does, a static weight meets a symbolic dimension at build; at execution a
    mismatch is one clear error on every backend, never a broadcast or a crash."""
    weight = np.ones(6, np.float32)
    with Graph("n", input_types=[TensorType(DType.float32, ["t", "h"])]) as g:
        x = g.inputs[0]
        g.output(ops.rms_norm(x, weight, 1e-6), ops.layer_norm(x, weight, weight, 1e-5))
    model = session.load(g)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    rms, layer = (r.to_numpy() for r in model.execute(x))
    np.testing.assert_allclose(rms, _normalized(x, 1e-6), rtol=1e-6)
    np.testing.assert_allclose(layer, _layer_norm_reference(x, 1.0, 1.0, 1e-5), rtol=1e-6)
    with pytest.raises(
        ValueError, match="weight has 6 values, and the input's last dimension is 5"
    ):
        model.execute(np.ones((2, 5), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, BF16])
def test_constant_and_huge_rows(session, dtype):
    """A row of one value gives beta exactly (its variance is 0, not an ulp squared); rows of
    values near float32's largest neither overflow nor vanish."""
    beta = np.linspace(-1, 1, 7).astype(np.float32)
    gamma = np.full(7, 3.0, np.float32)
    rows = np.array([[1000.0] * 7, [3.25] * 7, [3e38] * 7])  # the last: epsilon scaled to 0
    huge = np.array([[1e30, -2e30, 3e30, 0, 1e29, -1e30, 2e30]]).astype(dtype)
    got = _run(session, lambda v: ops.layer_norm(v, gamma, beta, 1e-12), rows.astype(dtype))
    assert got.astype(np.float32).tolist() == [beta.astype(dtype).astype(np.float32).tolist()] * 3
    bound = 2**-6 if dtype is BF16 else 1e-5
    got = _run(session, lambda v: ops.layer_norm(v, gamma, beta, 1e-12), huge)
    want = _layer_norm_reference(huge, gamma.astype(np.float64), beta.astype(np.float64), 1e-12)
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=bound)
    rms = _run(session, lambda v: ops.rms_norm(v, np.ones(7, np.float32), 1e-6), huge)
    np.testing.assert_allclose(rms.astype(np.float64), _normalized(huge, 0.0), rtol=bound)


def test_norm_arguments_are_checked():
    with Graph("e", input_types=[TensorType(DType.float32, [2, 4])]) as g:
        x, ones = g.inputs[0], np.ones(4, np.float32)
        for epsilon in ("1e-5", None, True):
            with pytest.raises(TypeError, match="epsilon must be a number"):
                ops.layer_norm(x, ones, ones, epsilon)
        for epsilon in (np.inf, np.nan):
            with pytest.raises(ValueError, match="epsilon must be finite"):
                ops.rms_norm(x, ones, epsilon)
        with pytest.raises(TypeError, match="weight_offset must be a number"):
            ops.rms_norm(x, ones, 1e-6, weight_offset="1")
        with pytest.raises(ValueError, match="weight_offset must be finite"):
            ops.rms_norm(x, ones, 1e-6, weight_offset=np.nan)
        with pytest.raises(TypeError, match="multiply_before_cast must be a bool"):
            ops.rms_norm(x, ones, 1e-6, multiply_before_cast="no")
        with pytest.raises(GraphTypeError, match="float"):
            ops.layer_norm(x.cast(DType.int32), ones, ones, 1e-5)
