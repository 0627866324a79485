"""MAX's functions of one value (`ops.exp` ... `ops.gelu`, `is_nan`, `is_inf`) and `softmax` /
`logsoftmax`, on every backend, against Python's `math` in float64 rounded once: natively
within 1 unit in the last place; on `xla` (float32 arithmetic) within the bounds
`graph/ops/unary.py` and `graph/ops/softmax.py` state; floor, ceil, round, trunc, sqrt, relu
and the predicates bit for bit; IEEE values at the edges of each domain, without warnings."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest
from conftest import assert_same_bits

from ember.dtype import DType
from ember.graph import Graph, TensorType, ops
from ember.graph.errors import GraphTypeError

_C = math.sqrt(2 / math.pi)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x > -700 else 0.0


# name: (the op, the float64 reference, inputs where float32 results are normal numbers)
FUNCTIONS = {
    "exp": (ops.exp, math.exp, ("uniform", -80, 80)),
    "log": (ops.log, math.log, ("log", -30, 30)),
    "log1p": (ops.log1p, math.log1p, ("uniform", -0.999, 100)),
    "sqrt": (ops.sqrt, math.sqrt, ("log", -30, 30)),
    "rsqrt": (ops.rsqrt, lambda x: 1 / math.sqrt(x), ("log", -30, 30)),
    "tanh": (ops.tanh, math.tanh, ("uniform", -12, 12)),
    "atanh": (ops.atanh, math.atanh, ("uniform", -0.999, 0.999)),
    "sin": (ops.sin, math.sin, ("uniform", -100, 100)),
    "cos": (ops.cos, math.cos, ("uniform", -100, 100)),
    "acos": (ops.acos, math.acos, ("uniform", -1, 1)),
    "erf": (ops.erf, math.erf, ("uniform", -6, 6)),
    "sigmoid": (ops.sigmoid, _sigmoid, ("uniform", -80, 80)),
    "silu": (ops.silu, lambda x: x * _sigmoid(x), ("uniform", -80, 80)),
    "gelu": (ops.gelu, lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2)), ("uniform", -12, 12)),
    "gelu_tanh": (
        lambda v: ops.gelu(v, approximate="tanh"),
        # 0.5 * (1 + tanh(u)) == 1 / (1 + exp(-2u)), without tanh's cancellation near -1
        lambda x: x * _sigmoid(2 * _C * (x + 0.044715 * x**3)),
        ("uniform", -9, 12),  # below, results are subnormal
    ),
    "gelu_quick": (
        lambda v: ops.gelu(v, approximate="quick"),
        lambda x: x * _sigmoid(1.702 * x),
        ("uniform", -40, 40),
    ),
}


def _inputs(spread: tuple, n: int = 4000, seed: int = 0) -> np.ndarray:
    kind, lo, hi = spread
    rng = np.random.default_rng(seed)
    if kind == "log":
        return (10.0 ** rng.uniform(lo, hi, n)).astype(np.float32)
    x = rng.uniform(lo, hi, n)
    return np.concatenate([x, x / 1000, [0.0, lo, hi]]).astype(np.float32)


def _run(session, make, x: np.ndarray) -> np.ndarray:
    with Graph("u", input_types=[TensorType(DType.from_numpy(x.dtype), list(x.shape))]) as g:
        out = make(g.inputs[0])
        g.output(out)
    return session.load(g).execute(x)[0].to_numpy()


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """How many float32 values lie between `got` and `want`, on one ordered line."""

    def ordered(a):
        bits = np.asarray(a, np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    return np.abs(ordered(got) - ordered(want))


ACTIVATIONS = ("sigmoid", "silu", "gelu", "gelu_tanh", "gelu_quick")


def _condition(reference, x: np.ndarray) -> np.ndarray:
    """`|x f'(x) / f(x)|`: how many units a relative error of one unit in `x` costs `f(x)`."""
    h = 1e-7
    up = np.array([reference(float(v) * (1 + h)) for v in x])
    down = np.array([reference(float(v) * (1 - h)) for v in x])
    at = np.array([reference(float(v)) for v in x])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(np.abs((up - down) / (2 * h) / at), nan=0.0)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float32_results_are_near_the_exact_ones(session, backend, name):
    make, reference, spread = FUNCTIONS[name]
    x = _inputs(spread)
    got = _run(session, make, x)
    want = np.array([reference(float(v)) for v in x]).astype(np.float32)
    assert got.dtype == np.float32 and got.shape == x.shape
    if backend == "native":
        allowed = 1
    elif name in ACTIVATIONS:  # their float32 arguments are rounded before the function
        allowed = 8 + 4 * _condition(reference, x)
    else:
        allowed = 8
    error = _ulps(got, want)
    assert (error <= allowed).all(), (name, int(error.max()))


def test_gelu_keeps_its_digits_far_below_zero(session):
    """Where erf(x / sqrt 2) and tanh(u) round to -1 a formula through them gives -0.0: each
    backend goes through erfc and a sigmoid, so that the small results keep their digits."""
    for approximate, reference, at in [("none", "gelu", -10.0), ("tanh", "gelu_tanh", -6.0)]:
        x = np.array([at, at - 1, at + 1], np.float32)
        got = _run(session, lambda v, a=approximate: ops.gelu(v, approximate=a), x)
        want = np.array([FUNCTIONS[reference][1](float(v)) for v in x], np.float32)
        allowed = 8 + 4 * _condition(FUNCTIONS[reference][1], x)
        assert (got < 0).all() and (_ulps(got, want) <= allowed).all(), (approximate, got, want)


EDGES = {
    "exp": ([-np.inf, np.inf, np.nan, 100.0, -110.0], [0.0, np.inf, np.nan, np.inf, 0.0]),
    "log": ([0.0, -0.0, -1.0, np.inf, 1.0], [-np.inf, -np.inf, np.nan, np.inf, 0.0]),
    "log1p": ([-1.0, -2.0, np.inf, 0.0], [-np.inf, np.nan, np.inf, 0.0]),
    "sqrt": ([-1.0, -0.0, np.inf, 4.0], [np.nan, -0.0, np.inf, 2.0]),
    "rsqrt": ([0.0, np.inf, -1.0, 4.0], [np.inf, 0.0, np.nan, 0.5]),
    "tanh": ([np.inf, -np.inf, 0.0, np.nan], [1.0, -1.0, 0.0, np.nan]),
    "atanh": ([1.0, -1.0, 2.0, 0.0], [np.inf, -np.inf, np.nan, 0.0]),
    "acos": ([2.0, 1.0, -1.5, np.nan], [0.0, 0.0, np.float32(math.pi), np.nan]),  # clamped
    "sin": ([np.inf, 0.0], [np.nan, 0.0]),
    "cos": ([-np.inf, 0.0], [np.nan, 1.0]),
    "erf": ([np.inf, -np.inf, 0.0], [1.0, -1.0, 0.0]),
    "sigmoid": ([np.inf, -np.inf, np.nan, 0.0], [1.0, 0.0, np.nan, 0.5]),
    "silu": ([np.inf, 0.0, np.nan], [np.inf, 0.0, np.nan]),
    "gelu": ([np.inf, 0.0, np.nan], [np.inf, 0.0, np.nan]),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_domain_edges_give_ieee_values_without_warnings(session, name):
    x, want = (np.array(v, np.float32) for v in EDGES[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _run(session, FUNCTIONS[name][0], x)
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[want == 0]).tolist() == np.signbit(want[want == 0]).tolist()


EXACT = {
    "floor": (ops.floor, np.floor),
    "ceil": (ops.ceil, np.ceil),
    "round": (ops.round, np.rint),
    "trunc": (ops.trunc, np.trunc),
    "sqrt": (ops.sqrt, np.sqrt),
    "relu": (ops.relu, lambda x: np.where((x > 0) | np.isnan(x), x, np.float32(0))),
    "is_nan": (ops.is_nan, np.isnan),
    "is_inf": (ops.is_inf, np.isinf),
}


@pytest.mark.parametrize("name", list(EXACT))
def test_exact_functions_match_numpy_bit_for_bit(session, name):
    """Halves round to the even integer; -0.0 keeps its sign where IEEE keeps it (relu gives
    +0.0); inf and NaN pass through; no subnormals (`xla` on a CPU counts them as 0)."""
    halves = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 1e30, -1e30, 8388609.0]
    x = np.array([*halves, -0.0, 0.0, np.inf, -np.inf, np.nan, -3.7, 2.2, 1e-30], np.float32)
    x = np.concatenate([x, np.random.default_rng(3).standard_normal(500).astype(np.float32) * 9])
    make, reference = EXACT[name]
    with np.errstate(invalid="ignore"):
        want = reference(x)
    assert_same_bits(_run(session, make, x), want)


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
@pytest.mark.parametrize("name", ["exp", "tanh", "gelu", "sigmoid"])
def test_narrow_floats_are_computed_wide_and_rounded(session, dtype, name):
    make, reference, _ = FUNCTIONS[name]
    x = np.linspace(-6, 6, 301).astype(dtype)
    got = _run(session, make, x)
    want = np.array([reference(float(v)) for v in x.astype(np.float64)]).astype(dtype)
    assert got.dtype == dtype
    bits = 7 if dtype is ml_dtypes.bfloat16 else 10  # the mantissa's stored bits
    _, exponent = np.frexp(want.astype(np.float64))
    step = np.maximum(
        np.ldexp(1.0, exponent - 1 - bits), float(ml_dtypes.finfo(dtype).smallest_subnormal)
    )
    error = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert (error <= step).all(), name  # within one step of the dtype


@pytest.mark.parametrize("name", ["exp", "log", "erf", "gelu", "tanh"])
def test_float64_is_computed_in_float64(session, name):
    make, reference, spread = FUNCTIONS[name]
    x = _inputs(spread, n=500).astype(np.float64)
    got = _run(session, make, x)
    want = np.array([reference(float(v)) for v in x])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)  # float32: 1e-7


def test_integers_relu_and_predicates(session):
    x = np.array([[-3, 0, 7]], np.int32)
    assert _run(session, ops.relu, x).tolist() == [[0, 0, 7]]
    assert _run(session, ops.relu, x).dtype == np.int32
    assert _run(session, ops.is_nan, x).tolist() == [[False] * 3]
    assert _run(session, ops.is_inf, np.array([True])).tolist() == [False]


def _softmax_reference(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    moved = np.moveaxis(x.astype(np.float64), axis, -1)
    out = np.empty_like(moved)
    for index in np.ndindex(moved.shape[:-1]):
        row = moved[index]
        peak = max(row)
        total = math.fsum(math.exp(v - peak) for v in row)
        out[index] = [(v - peak) - math.log(total) if log else math.exp(v - peak) / total
                      for v in row]  # fmt: skip
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_logsoftmax_match_float64(session, backend, log, axis):
    x = (np.random.default_rng(4).standard_normal((6, 5, 7)) * 8).astype(np.float32)
    x[0, 0, :] += 1000  # no overflow: the largest value is subtracted first
    make = ops.logsoftmax if log else ops.softmax
    got = _run(session, lambda v: make(v, axis=axis), x)
    want = _softmax_reference(x, axis, log).astype(np.float32)
    assert got.dtype == np.float32 and got.shape == x.shape
    if backend == "native":
        assert _ulps(got, want).max() <= 1
    elif log:
        shifted = x - np.max(x, axis=axis, keepdims=True)
        assert (np.abs(got - want) <= 2**-20 * (1 + np.abs(shifted))).all()
    else:
        np.testing.assert_allclose(got, want, rtol=2**-16, atol=0)


def test_softmax_of_masked_rows(session):
    """-inf entries get probability 0 (log: -inf); a row of -inf alone, or with +inf or NaN,
    is NaN throughout, as torch and JAX give it."""
    x = np.array(
        [[0.0, -np.inf, 0.0], [-np.inf] * 3, [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0]], np.float32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = _run(session, ops.softmax, x)
        logp = _run(session, ops.logsoftmax, x)
    assert p[0].tolist() == [0.5, 0.0, 0.5] and logp[0, 1] == -np.inf
    assert np.isnan(p[1:]).all() and np.isnan(logp[1:]).all()


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_softmax_of_narrow_floats_rounds_once(session, dtype):
    x = np.linspace(-4, 4, 24).reshape(3, 8).astype(dtype)
    got = _run(session, ops.softmax, x)
    want = _softmax_reference(x, -1, False).astype(dtype)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2**-7)


def test_errors_at_build():
    with Graph("e", input_types=[TensorType(DType.int32, [3]), TensorType(DType.bool, [3])]) as g:
        ints, bools = g.inputs
        for fn in (ops.exp, ops.floor, ops.sqrt, ops.sigmoid, ops.gelu):
            with pytest.raises(GraphTypeError, match="floating-point"):
                fn(ints)
        with pytest.raises(TypeError, match="floating-point"):
            ops.tanh(bools)
        with pytest.raises(GraphTypeError, match="bool"):
            ops.relu(bools)
        with pytest.raises(ValueError, match="Invalid approximation method"):
            ops.gelu(ints.cast(DType.float32), approximate="fast")
        with pytest.raises(TypeError, match="float"):
            ops.softmax(ints)
        with pytest.raises(ops.AxisError):
            ops.logsoftmax(ints.cast(DType.float32), axis=1)
        with pytest.raises(ValueError, match="scalar"):
            ops.softmax(np.float32(1.0))


def test_rank_0_predicates_and_bfloat16_nan_payloads(session):
    """A scalar's predicate is an array a DLPack consumer takes; bfloat16 NaNs of any payload
    pass relu and the predicates without numpy's warnings."""
    nan = _run(session, ops.is_nan, np.array(np.nan, np.float32))
    assert nan.shape == () and bool(nan)
    with Graph("s", input_types=[TensorType(DType.float32, [])]) as g:
        g.output(ops.is_inf(g.inputs[0]))
    result = session.load(g).execute(np.array(np.inf, np.float32))[0]
    assert np.from_dlpack(result).tolist() is True
    payloads = np.array([0x7FC0, 0xFF81, 0x7F81, 0x3F80], np.uint16).view(ml_dtypes.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        relu = _run(session, ops.relu, payloads)
        flags = _run(session, ops.is_nan, payloads)
    assert np.isnan(relu[:3].astype(np.float32)).all() and relu[3] == 1
    assert flags.tolist() == [True, True, True, False]
