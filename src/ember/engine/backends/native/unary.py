"""Native lowerings of the functions of one value (`graph/ops/unary.py`): a float value is
computed in float64 (or its own float64) and rounded once to its dtype (`rounding.rounded`), so
that float32 and narrower results are the float64 result's nearest; IEEE results (inf, NaN)
without numpy's warnings."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops import unary as op

from .kernels.special import erf, erfc
from .lowering import LoweringContext, StepFn, lowers
from .rounding import rounded

__all__ = ["FLOAT64_FUNCTIONS", "lower_predicate", "lower_relu", "lower_unary"]

_SQRT_2_OVER_PI = np.sqrt(2 / np.pi)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


FLOAT64_FUNCTIONS = {
    op.EXP: np.exp,
    op.LOG: np.log,
    op.LOG1P: np.log1p,
    op.SQRT: np.sqrt,
    op.RSQRT: lambda x: 1 / np.sqrt(x),
    op.TANH: np.tanh,
    op.ATANH: np.arctanh,
    op.SIN: np.sin,
    op.COS: np.cos,
    op.ACOS: lambda x: np.arccos(np.clip(x, -1, 1)),  # clamped first, as MAX does
    op.ERF: erf,
    op.FLOOR: np.floor,
    op.CEIL: np.ceil,
    op.ROUND: np.rint,  # halves to even
    op.TRUNC: np.trunc,
    op.SIGMOID: _sigmoid,
    op.SILU: lambda x: x * _sigmoid(x),
    op.GELU: lambda x: 0.5 * x * erfc(-x * np.sqrt(0.5)),  # erfc: no cancellation below 0
    # 0.5 * (1 + tanh(u)) is sigmoid(2 u), which keeps its digits where tanh(u) nears -1
    op.GELU_TANH: lambda x: x * _sigmoid(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3)),
    op.GELU_QUICK: lambda x: x * _sigmoid(1.702 * x),
}
"""Each float function, on float64 arrays."""


@lowers(*FLOAT64_FUNCTIONS)
def lower_unary(ctx: LoweringContext, node: Node) -> StepFn:
    fn = FLOAT64_FUNCTIONS[node.op]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x):
        with np.errstate(all="ignore"):
            return rounded(fn(x.astype(np.float64)), dtype)

    return run


@lowers(op.RELU)
def lower_relu(ctx: LoweringContext, node: Node) -> StepFn:
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x):
        with np.errstate(invalid="ignore"):  # bfloat16 NaN compared
            keep = x > 0
            if x.dtype.kind not in "iu":
                keep |= x != x  # NaN stays
        return np.where(keep, x, np.zeros((), dtype))

    return run


@lowers(op.IS_NAN, op.IS_INF)
def lower_predicate(ctx: LoweringContext, node: Node) -> StepFn:
    test = np.isnan if node.op is op.IS_NAN else np.isinf

    def run(rt, slot, x):
        if x.dtype.kind in "biu":
            return np.zeros(x.shape, np.bool_)
        with np.errstate(invalid="ignore"):  # a NaN of bfloat16 widened
            return np.asarray(test(x.astype(np.float64)))

    return run
