"""Native lowering of `concat`: numpy's, into a new array."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.concat import CONCAT

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_concat"]


@lowers(CONCAT)
def lower_concat(ctx: LoweringContext, node: Node) -> StepFn:
    axis = node.attrs["axis"]

    def run(rt, slot, *values):
        return np.concatenate(values, axis=axis)

    return run
