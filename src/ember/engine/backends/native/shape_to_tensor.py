"""Native lowering of `shape_to_tensor`: the sizes bound for this execution, as an array."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.shape_to_tensor import SHAPE_TO_TENSOR

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_shape_to_tensor"]


@lowers(SHAPE_TO_TENSOR)
def lower_shape_to_tensor(ctx: LoweringContext, node: Node) -> StepFn:
    """The node's inputs only order its step after them; their data is not read."""
    shape = node.attrs["shape"]

    def run(rt, slot, *inputs):
        return np.array(shape.evaluate(rt.bindings), np.int64)

    return run
