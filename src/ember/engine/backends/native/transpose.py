"""Native lowering of `transpose`: numpy's view with the axes permuted, no copy."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.transpose import TRANSPOSE

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_transpose"]


@lowers(TRANSPOSE)
def lower_transpose(ctx: LoweringContext, node: Node) -> StepFn:
    permutation = node.attrs["permutation"]

    def run(rt, slot, x):
        return np.transpose(x, permutation)

    return run
