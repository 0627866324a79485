"""Native lowering of `argmin`: numpy's, which takes the first of equal values and the first
NaN, exactly the op's rule."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.argmax import empty_axis_error
from ember.graph.ops.argmin import ARGMIN

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_argmin"]


@lowers(ARGMIN)
def lower_argmin(ctx: LoweringContext, node: Node) -> StepFn:
    axis = node.attrs["axis"]

    def run(rt, slot, x):
        if x.shape[axis] == 0:  # a symbolic axis, empty in this call
            raise empty_axis_error("argmin", axis, x.shape, "smallest")
        if x.dtype.kind == "V":  # bfloat16 and the other narrow floats widen exactly
            x = x.astype(np.float32)
        return np.argmin(x, axis=axis, keepdims=True).astype(np.int64, copy=False)

    return run
