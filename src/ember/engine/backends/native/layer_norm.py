"""Native lowering of `layer_norm`: the last axis reduced in float64, the result rounded once."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.layer_norm import LAYER_NORM

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_layer_norm"]


@lowers(LAYER_NORM)
def lower_layer_norm(ctx: LoweringContext, node: Node) -> StepFn:
    epsilon = node.attrs["epsilon"]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x, gamma, beta):
        if x.shape[-1] == 0:
            return np.empty(x.shape, dtype)
        x = x.astype(np.float64)
        with np.errstate(all="ignore"):  # inf and NaN rows: NaN, as IEEE gives
            centered = x - np.mean(x, axis=-1, keepdims=True)
            variance = np.mean(centered * centered, axis=-1, keepdims=True)
            normalized = centered / np.sqrt(variance + epsilon)
            y = normalized * gamma.astype(np.float64) + beta.astype(np.float64)
        return y.astype(dtype)

    return run
