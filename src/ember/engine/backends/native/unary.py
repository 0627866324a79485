"""Native lowerings of the functions of one value (`graph/ops/unary.py`): a float value is
computed in float64 (or its own float64) and rounded once to its dtype, so that float32 and
narrower results are the correctly rounded ones (but for ties of the double rounding); IEEE
results (inf, NaN) without numpy's warnings."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.unary import (
    ACOS,
    ATANH,
    CEIL,
    COS,
    ERF,
    EXP,
    FLOOR,
    GELU,
    GELU_QUICK,
    GELU_TANH,
    IS_INF,
    IS_NAN,
    LOG,
    LOG1P,
    RELU,
    ROUND,
    RSQRT,
    SIGMOID,
    SILU,
    SIN,
    SQRT,
    TANH,
    TRUNC,
)

from .kernels.special import erf, erfc
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["FLOAT64_FUNCTIONS", "lower_predicate", "lower_relu", "lower_unary"]

_SQRT_2_OVER_PI = np.sqrt(2 / np.pi)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


FLOAT64_FUNCTIONS = {
    EXP: np.exp,
    LOG: np.log,
    LOG1P: np.log1p,
    SQRT: np.sqrt,
    RSQRT: lambda x: 1 / np.sqrt(x),
    TANH: np.tanh,
    ATANH: np.arctanh,
    SIN: np.sin,
    COS: np.cos,
    ACOS: np.arccos,
    ERF: erf,
    FLOOR: np.floor,
    CEIL: np.ceil,
    ROUND: np.rint,  # halves to even
    TRUNC: np.trunc,
    SIGMOID: _sigmoid,
    SILU: lambda x: x * _sigmoid(x),
    GELU: lambda x: 0.5 * x * erfc(-x * np.sqrt(0.5)),  # erfc: no cancellation below 0
    # 0.5 * (1 + tanh(u)) is sigmoid(2 u), which keeps its digits where tanh(u) nears -1
    GELU_TANH: lambda x: x * _sigmoid(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3)),
    GELU_QUICK: lambda x: x * _sigmoid(1.702 * x),
}
"""Each float function, on float64 arrays."""


@lowers(*FLOAT64_FUNCTIONS)
def lower_unary(ctx: LoweringContext, node: Node) -> StepFn:
    fn = FLOAT64_FUNCTIONS[node.op]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x):
        with np.errstate(all="ignore"):
            return np.asarray(fn(x.astype(np.float64))).astype(dtype)

    return run


@lowers(RELU)
def lower_relu(ctx: LoweringContext, node: Node) -> StepFn:
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x):
        keep = x > 0
        if x.dtype.kind not in "iu":
            keep |= x != x  # NaN stays
        return np.where(keep, x, np.zeros((), dtype))

    return run


@lowers(IS_NAN, IS_INF)
def lower_predicate(ctx: LoweringContext, node: Node) -> StepFn:
    test = np.isnan if node.op is IS_NAN else np.isinf

    def run(rt, slot, x):
        if x.dtype.kind in "biu":
            return np.zeros(x.shape, np.bool_)
        return test(x.astype(np.float64))

    return run
