"""Native lowering of `allreduce_sum`: each device gets its own array holding the total."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.allreduce import ALLREDUCE_SUM

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_allreduce_sum"]


@lowers(ALLREDUCE_SUM)
def lower_allreduce_sum(ctx: LoweringContext, node: Node) -> StepFn:
    copies = len(node.result_types)

    def run(rt, slot, first, *rest):
        total = rt.empty(slot, first.shape, first.dtype)
        np.copyto(total, first)
        for partial in rest:
            np.add(total, partial, out=total)
        return total if copies == 1 else (total, *(total.copy() for _ in range(copies - 1)))

    return run
