"""Native lowering of `reducescatter_sum`: each device its own copy of its run of the total."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.reducescatter import REDUCESCATTER_SUM, run_bounds

from .collectives import device_total
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_reducescatter_sum"]


@lowers(REDUCESCATTER_SUM)
def lower_reducescatter_sum(ctx: LoweringContext, node: Node) -> StepFn:
    axis, n = node.attrs["axis"], len(node.result_types)

    def run(rt, slot, first, *rest):
        total = device_total(np.empty_like(first), first, rest)
        runs = run_bounds(first.shape[axis], n)
        parts = tuple(
            np.ascontiguousarray(total[(slice(None),) * axis + (slice(a, b),)]) for a, b in runs
        )
        return parts[0] if n == 1 else parts

    return run
