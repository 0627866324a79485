"""Native lowering of `allreduce_sum`: each device gets its own array holding the total."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.allreduce import ALLREDUCE_SUM

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["device_total", "lower_allreduce_sum"]


@lowers(ALLREDUCE_SUM)
def lower_allreduce_sum(ctx: LoweringContext, node: Node) -> StepFn:
    copies = len(node.result_types)

    def run(rt, slot, first, *rest):
        total = device_total(rt.empty(slot, first.shape, first.dtype), first, rest)
        return total if copies == 1 else (total, *(total.copy() for _ in range(copies - 1)))

    return run


def device_total(out: np.ndarray, first: np.ndarray, rest: tuple[np.ndarray, ...]) -> np.ndarray:
    """`first` and every array of `rest` added into `out`, in device order (what
    `reducescatter_sum` splits too)."""
    np.copyto(out, first)
    for partial in rest:
        np.add(out, partial, out=out)
    return out
