"""Native lowerings of `softmax` and `logsoftmax`: in float64 (a float64 value in its own),
after subtracting the axis' largest value, rounded once to the value's dtype."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.softmax import LOGSOFTMAX, SOFTMAX

from .lowering import LoweringContext, StepFn, lowers
from .rounding import rounded

__all__ = ["lower_softmax"]


@lowers(SOFTMAX, LOGSOFTMAX)
def lower_softmax(ctx: LoweringContext, node: Node) -> StepFn:
    axis = node.attrs["axis"]
    log = node.op is LOGSOFTMAX
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x):
        if x.shape[axis] == 0:
            return np.empty(x.shape, dtype)
        x = x.astype(np.float64)
        with np.errstate(all="ignore"):  # -inf - -inf, inf - inf: NaN, as IEEE gives
            shifted = x - np.max(x, axis=axis, keepdims=True)
            if log:
                result = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
            else:
                e = np.exp(shifted)
                result = e / np.sum(e, axis=axis, keepdims=True)
        return rounded(result, dtype)

    return run
