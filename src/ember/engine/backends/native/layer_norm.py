"""Native lowering of `layer_norm`: the last axis reduced in float64 (each row first scaled by
a power of two, exactly, so that no square overflows), the result rounded once."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.layer_norm import LAYER_NORM, check_features

from .lowering import LoweringContext, StepFn, lowers
from .rounding import rounded

__all__ = ["lower_layer_norm", "scaled_rows"]


@lowers(LAYER_NORM)
def lower_layer_norm(ctx: LoweringContext, node: Node) -> StepFn:
    epsilon = node.attrs["epsilon"]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x, gamma, beta):
        check_features("layer_norm", x.shape[-1], gamma=gamma.shape[0], beta=beta.shape[0])
        if x.shape[-1] == 0:
            return np.empty(x.shape, dtype)
        with np.errstate(all="ignore"):  # inf and NaN rows: NaN, as IEEE gives
            v, exponent = scaled_rows(x.astype(np.float64))
            centered = v - np.mean(v, axis=-1, keepdims=True)
            variance = np.mean(centered * centered, axis=-1, keepdims=True)
            normalized = centered / np.sqrt(variance + np.ldexp(epsilon, -2 * exponent))
            normalized[centered == 0] = 0  # a scaled epsilon can underflow to 0: not 0 / 0
            y = normalized * gamma.astype(np.float64) + beta.astype(np.float64)
        return rounded(y, dtype)

    return run


def scaled_rows(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(v * 2**-e, e)` per row along the last axis, `e >= 0` the exponent of the row's
    largest magnitude: the rows' squares cannot overflow, and the scaling is exact. (Rows of
    small values are left as they are: scaled up, epsilon would overflow instead.)"""
    _, exponent = np.frexp(np.max(np.abs(v), axis=-1, keepdims=True))
    exponent = np.maximum(exponent, 0)
    return np.ldexp(v, -exponent), exponent
