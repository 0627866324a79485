"""Native lowering of `logsumexp`: `m + log(sum(exp(x - m)))` through numpy in float32."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.logsumexp import LOGSUMEXP

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_logsumexp"]


@lowers(LOGSUMEXP)
def lower_logsumexp(ctx: LoweringContext, node: Node) -> StepFn:
    axis = node.attrs["axis"]

    def run(rt, slot, x):
        x = x.astype(np.promote_types(x.dtype, np.float32) if x.dtype.kind == "f" else np.float32)
        if x.shape[axis] == 0:
            return np.full((*x.shape[:axis], 1, *x.shape[axis + 1 :]), -np.inf, np.float32)
        peak = np.max(x, axis=axis, keepdims=True)
        shift = np.where(np.isfinite(peak), peak, 0)  # all -inf, or +inf: no inf - inf
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # -inf, 0: exact
            total = np.sum(np.exp(x - shift), axis=axis, keepdims=True)
            return (np.log(total) + shift).astype(np.float32)

    return run
